/* providers: placeholder until worker/providers/ lands (issue 3). */
#include "check.h"

void test_providers(void)
{
}

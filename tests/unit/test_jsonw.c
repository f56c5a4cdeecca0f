/* jsonw: placeholder until the writer exists. */
#include "check.h"

void test_jsonw(void)
{
}

/* placeholder */
#include "check.h"
void test_stats(void) {}

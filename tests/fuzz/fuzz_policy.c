/*
 * libFuzzer target: the YAML tree builder and the policy binder must turn
 * any bytes into a policy or located errors, never a crash or a leak.
 */
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ydoc_errors errs = {0};
    struct policy *p = policy_parse("fuzz.yaml", (const char *)data, size, NULL, &errs);
    policy_release(p);
    ydoc_errors_release(&errs);
    return 0;
}

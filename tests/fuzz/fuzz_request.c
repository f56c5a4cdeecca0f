/*
 * libFuzzer target: the request decoder must refuse or accept any bytes
 * without crashing, leaking or reading out of bounds; an accepted request
 * must route.
 */
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "request.h"
#include "router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct policy *policy;
    if (!policy) {
        static const char text[] =
            "models:\n"
            "  a: { provider: p, model: a-1, price: { input: 3, output: 15 } }\n"
            "  b: { provider: p, model: b-1, price: { input: 0.0375, output: 0.15 } }\n"
            "routes:\n  t: [a, b]\n  default: [b]\n";
        struct ydoc_errors errs = {0};
        policy = policy_parse("fuzz.yaml", text, sizeof text - 1, NULL, &errs);
        ydoc_errors_release(&errs);
    }
    struct request *req = NULL;
    struct err e;
    if (request_decode((const char *)data, size, 1 << 20, &req, &e) == 0) {
        struct plan plan;
        request_compact(req); /* what dispatch routes: the fields without the document */
        router_plan(policy, req, &plan);
        router_plan_release(&plan);
        request_free(req);
    }
    return 0;
}

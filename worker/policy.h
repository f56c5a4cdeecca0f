/*
 * policy: policy.yaml, the routing policy: models and their prices, routes
 * from task tag to ordered candidates, budget rules. Immutable once loaded;
 * a reload builds a new one and swaps the pointer (in-flight messages keep
 * the policy they started with, so a policy is reference counted).
 */
#ifndef SWITCHYARD_POLICY_H
#define SWITCHYARD_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "cost.h"
#include "ydoc.h"

#define POLICY_MAX_CANDIDATES 16

struct policy_model {
    char *name;     /* the policy's own name, e.g. "opus" */
    char *provider; /* a provider name from worker.yaml */
    char *model;    /* the provider's model id */
    struct cost_prices prices;
    uint32_t max_output_tokens; /* the model's own cap; 0 = none known */
    /* limits: {...} of the model's entry; a field is -1 when the entry does
     * not set it (then the provider's model_limits in worker.yaml hold) */
    struct config_rate_limits limits;
};

/* What a route does when its candidate is rate limited. */
enum policy_on_rate_limit {
    POLICY_RATE_LIMIT_WAIT,     /* wait in Kafka for the model (batch; the default) */
    POLICY_RATE_LIMIT_FALLBACK, /* take the next candidate now (latency-sensitive) */
};

struct policy_route {
    char *task;
    enum policy_on_rate_limit on_rate_limit;
    size_t candidates[POLICY_MAX_CANDIDATES]; /* indexes into models, best first */
    size_t ncandidates;
};

enum policy_over_budget { POLICY_DOWNGRADE, POLICY_REJECT };

struct policy {
    unsigned refs;
    struct policy_model *models;
    size_t nmodels;
    struct policy_route *routes;
    size_t nroutes;
    const struct policy_route *default_route; /* NULL: unknown tags are rejected */
    uint64_t default_budget_nusd;
    enum policy_over_budget over_budget;
    uint32_t min_output_tokens;     /* a candidate that cannot afford this many is skipped */
    uint32_t input_bytes_per_token; /* input estimate; 1 is a strict bound for byte BPE */
    struct text_index *route_index; /* task -> index in routes, for policy_route_find */
};

struct text_index;

/* Loads `path`. When cfg is not NULL, every model's provider must exist in
 * it. Returns NULL when there is any error, each appended to *errs.
 * New reference (refs = 1): release with policy_release.
 * Thread-safe: keeps no state outside what it returns and logs nothing,
 * so a reload may run it on another thread (cfg is only read). */
struct policy *policy_load(const char *path, const struct config *cfg, struct ydoc_errors *errs);
/* Same from memory, `name` standing in for the file name. */
struct policy *policy_parse(const char *name, const char *text, size_t len,
                            const struct config *cfg, struct ydoc_errors *errs);

struct policy *policy_retain(struct policy *p);
void policy_release(struct policy *p);

/* Borrowed: the route for `task` (exact match), or NULL. */
const struct policy_route *policy_route_find(const struct policy *p, const char *task);

#endif

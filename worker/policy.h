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

/* The request fields a model may be unable to honour, as a route's reason
 * names them ("unsupported: seed") and as a model's `unsupported: [...]`
 * lists them. images: any image part; image_url: an image by an http(s)
 * URL (a data: URL is bytes, not a URL to fetch). */
enum policy_field {
    POLICY_FIELD_TOP_P,
    POLICY_FIELD_STOP,
    POLICY_FIELD_SEED,
    POLICY_FIELD_RESPONSE_FORMAT,
    POLICY_FIELD_TOOLS,
    POLICY_FIELD_TOOL_CHOICE,
    POLICY_FIELD_IMAGES,
    POLICY_FIELD_IMAGE_URL,
    POLICY_FIELD_REASONING,
    POLICY_FIELD_TEMPERATURE,
    POLICY_NFIELDS
};

struct policy_model {
    char *name;     /* the policy's own name, e.g. "opus" */
    char *provider; /* a provider name from worker.yaml */
    char *model;    /* the provider's model id */
    /* the provider's type, from worker.yaml; loaded without a config, the
     * type whose name the provider's name is ("openai", "anthropic", ...),
     * else PROVIDER_NTYPES: unknown, so only `unsupported` narrows it */
    enum provider_type type;
    uint32_t unsupported; /* bit (1u << enum policy_field) per field it cannot honour */
    struct cost_prices prices;
    /* the prices.yaml entry the price came from (`price: {entry: ...}`)
     * and its date, for the cost records; NULL and "" when typed inline */
    char *price_entry;
    char price_date[11];
    uint32_t max_output_tokens; /* the model's own cap; 0 = none known */
    /* the provider may bill a cache write for this model's calls, so a
     * budget prices every input token at the dearest write rate: types
     * anthropic and bedrock unless `cache_writes: false`, others only with
     * `cache_writes: true` */
    int cache_writes;
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
    uint32_t image_tokens;          /* input estimate of one image part (1600) */
    struct text_index *route_index; /* task -> index in routes, for policy_route_find */
    struct text_index *model_index; /* name -> index in models, for policy_model_find */
};

struct text_index;

/* Loads `path`. When cfg is not NULL, every model's provider must exist in
 * it. A model's `price: {entry: NAME, ...}` is looked up in the price table
 * named by the policy's `prices: PATH` (relative to the policy's
 * directory; default prices.yaml beside it), read afresh on every load, so
 * a reload re-reads it too. Returns NULL when there is any error, each appended to *errs.
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
/* Borrowed: the model named `name` (exact match), or NULL. */
const struct policy_model *policy_model_find(const struct policy *p, const char *name);

/* "top_p", "seed", ...; NULL for a value that is no field. Static. */
const char *policy_field_name(enum policy_field f);

#endif

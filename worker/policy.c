/*
 * policy: policy.yaml -> struct policy. Every error is located; a route
 * naming a model that does not exist, or a model naming a provider that
 * worker.yaml lacks, is an error at the line that names it. Prices are
 * converted exactly (decimal text -> nano-USD per million tokens): never
 * through a double.
 */
#include "policy.h"

#include "prices.h"
#include "text.h"

#include <libgen.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const top_keys[] = {"models", "routes", "budget", "prices", NULL};
static const char *const model_keys[] = {"provider",          "model",  "price",
                                         "max_output_tokens", "limits", "unsupported",
                                         "cache_writes",      NULL};
/* in the order of enum policy_field */
static const char *const field_names[POLICY_NFIELDS + 1] = {
    "top_p",  "stop",      "seed",      "response_format", "tools", "tool_choice",
    "images", "image_url", "reasoning", "temperature",     NULL};
static const char *const model_limit_keys[] = {"requests_per_minute", "tokens_per_minute",
                                               "max_concurrent", NULL};
static const char *const route_keys[] = {"candidates", "on_rate_limit", NULL};
/* in the order of enum policy_on_rate_limit */
static const char *const on_rate_limit_names[] = {"wait", "fallback", NULL};
/* beside the categories, in a model's price mapping */
static const char *const price_extra_keys[] = {"entry", NULL};
static const char *const budget_keys[] = {"default_usd",       "over_budget",
                                          "min_output_tokens", "input_bytes_per_token",
                                          "image_tokens",      NULL};
static const char *const over_budget_names[] = {"downgrade", "reject", NULL};

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

const char *policy_field_name(enum policy_field f)
{
    return (unsigned)f < POLICY_NFIELDS ? field_names[f] : NULL;
}

/* unsupported: [seed, tools]: the fields this model cannot honour on top
 * of what its provider type cannot (a vLLM server behind an OpenAI-shaped
 * API, a text-only model). */
static void policy_bind_unsupported(struct ydoc *doc, const struct ydoc_node *seq,
                                    const char *model_what, struct policy_model *m)
{
    char what[112];
    snprintf(what, sizeof what, "%.80s.unsupported", model_what);
    if (ydoc_expect_seq(doc, seq, what) < 0)
        return;
    for (size_t i = 0; i < seq->count; i++) {
        const struct ydoc_node *v = seq->items[i];
        const char *name;
        if (ydoc_string(doc, v, "unsupported", &name) < 0)
            continue;
        int f = 0;
        while (field_names[f] && strcmp(field_names[f], name) != 0)
            f++;
        if (!field_names[f]) {
            const char *near = text_nearest(name, field_names);
            ydoc_error(doc, v,
                       "%s: unknown field \"%.64s\"%s%s%s (the fields: top_p, stop, seed, "
                       "response_format, tools, tool_choice, images, image_url, reasoning, "
                       "temperature)",
                       what, name, near ? ", did you mean \"" : "", near ? near : "",
                       near ? "\"?" : "");
            continue;
        }
        if (m->unsupported & (1u << f))
            ydoc_error(doc, v, "%s: \"%s\" is listed twice", what, name);
        m->unsupported |= 1u << f;
    }
}

/* The provider's type: worker.yaml says it; without a config, a provider
 * named after a type is taken to be of that type (test policies), and any
 * other is unknown (no type rule, only the model's own list). */
static enum provider_type policy_provider_type(const struct config *cfg, const char *provider)
{
    if (cfg) {
        const struct config_provider *cp = config_provider_find(cfg, provider);
        return cp ? cp->type : PROVIDER_NTYPES;
    }
    for (int t = 0; t < PROVIDER_NTYPES; t++)
        if (strcmp(provider_type_name((enum provider_type)t), provider) == 0)
            return (enum provider_type)t;
    return PROVIDER_NTYPES;
}

/* The price table, loaded the first time a model names an entry (or at
 * once when the policy says `prices:`); its errors are kept apart, since
 * they name another file. */
struct policy_prices {
    const char *policy_file;
    const struct ydoc_node *path_node; /* the policy's prices: value, or NULL */
    struct prices *table;
    int tried;
    struct ydoc_errors errs;
};

static struct prices *policy_prices_table(struct ydoc *doc, struct policy_prices *pp)
{
    if (pp->tried)
        return pp->table;
    pp->tried = 1;
    const char *rel = "prices.yaml";
    if (pp->path_node && ydoc_string(doc, pp->path_node, "prices", &rel) < 0)
        return NULL;
    char *path = NULL, *dir = strdup(pp->policy_file);
    if (!dir)
        return NULL;
    int n =
        rel[0] == '/' ? asprintf(&path, "%s", rel) : asprintf(&path, "%s/%s", dirname(dir), rel);
    if (n < 0)
        path = NULL;
    free(dir);
    if (!path)
        return NULL;
    size_t before = pp->errs.count;
    pp->table = prices_load(path, &pp->errs);
    if (!pp->table && pp->errs.count == before)
        ydoc_error(doc, pp->path_node, "prices: could not load \"%.200s\"", path);
    free(path);
    return pp->table;
}

/* price: {entry: NAME, output: 14}: the entry's rates, tiers and date with
 * any figure written beside it in place of the entry's base rate (tiers
 * keep the table's rates). */
static void policy_bind_price_entry(struct ydoc *doc, const struct ydoc_node *v,
                                    const uint64_t rates[COST_NCAT], uint32_t have,
                                    struct policy_prices *pp, struct policy_model *m)
{
    const char *name;
    if (ydoc_string(doc, v, "entry", &name) < 0)
        return;
    struct prices *table = policy_prices_table(doc, pp);
    if (!table) {
        ydoc_error(doc, v, "entry: \"%.100s\" cannot be priced: the price table did not load",
                   name);
        return;
    }
    const struct prices_entry *e = prices_find(table, name);
    if (!e) {
        char near[320];
        prices_nearest(table, name, near, sizeof near);
        ydoc_error(doc, v, "entry: no price entry \"%.100s\"%s%s%s", name,
                   near[0] ? " (nearest: " : " (see the price table's entries)", near,
                   near[0] ? ")" : "");
        return;
    }
    uint64_t merged[COST_NCAT];
    for (int c = 0; c < COST_NCAT; c++)
        merged[c] = (have & (1u << c)) ? rates[c] : e->rates[c];
    m->prices = e->prices;
    prices_resolve(merged, have | e->have, m->prices.nusd_per_mtok);
    m->price_entry = strdup(e->name);
    memcpy(m->price_date, e->date, sizeof m->price_date);
}

static void policy_bind_price(struct ydoc *doc, const struct ydoc_node *map,
                              struct policy_prices *pp, struct policy_model *m)
{
    uint64_t rates[COST_NCAT] = {0};
    uint32_t have = 0;
    if (prices_bind_rates(doc, map, "price", price_extra_keys, rates, &have) > 0 &&
        map->type != YDOC_MAP)
        return;
    const struct ydoc_node *entry = ydoc_get(map, "entry");
    if (entry) {
        policy_bind_price_entry(doc, entry, rates, have, pp, m);
        return;
    }
    for (int c = COST_INPUT; c <= COST_OUTPUT; c++)
        if (!(have & (1u << c)) && !ydoc_get(map, cost_category_name((enum cost_category)c)))
            ydoc_error(doc, map, "price: missing \"%s\" (USD per million tokens)",
                       cost_category_name((enum cost_category)c));
    /* unpriced categories cost what the provider bills them as by default:
     * cache traffic as input, reasoning as output */
    prices_resolve(rates, have, m->prices.nusd_per_mtok);
}

/* limits: {...} of a model; a field it does not set stays -1, so that 0
 * can say "no limit for this model" over the provider's model_limits. */
static void policy_bind_model_limits(struct ydoc *doc, const struct ydoc_node *map,
                                     const char *model_what, struct policy_model *m)
{
    int64_t *slots[] = {&m->limits.requests_per_minute, &m->limits.tokens_per_minute,
                        &m->limits.max_concurrent};
    for (size_t i = 0; i < 3; i++)
        *slots[i] = -1;
    if (!map)
        return;
    char what[96];
    snprintf(what, sizeof what, "%.80s.limits", model_what);
    if (ydoc_expect_map(doc, map, what) < 0)
        return;
    ydoc_check_keys(doc, map, model_limit_keys, what);
    for (size_t i = 0; model_limit_keys[i]; i++) {
        const struct ydoc_node *v = ydoc_get(map, model_limit_keys[i]);
        int64_t n;
        /* 0 = no limit; 10^12 a minute is more than any provider sells */
        if (v && ydoc_int(doc, v, model_limit_keys[i], 0, 1000000000000LL, &n) == 0)
            *slots[i] = n;
    }
}

static void policy_bind_model(struct ydoc *doc, const struct ydoc_node *k,
                              const struct ydoc_node *map, const struct config *cfg,
                              struct policy_prices *pp, struct policy_model *m)
{
    m->name = xstrdup(k->value);
    m->type = PROVIDER_NTYPES;
    char what[96];
    snprintf(what, sizeof what, "models.%.64s", k->value);
    policy_bind_model_limits(doc, ydoc_get(map, "limits"), what, m);
    if (ydoc_expect_map(doc, map, what) < 0)
        return;
    ydoc_check_keys(doc, map, model_keys, what);
    const struct ydoc_node *v;
    const char *s;
    if (!(v = ydoc_get(map, "provider")))
        ydoc_error(doc, map, "%s: missing \"provider\"", what);
    else if (ydoc_string(doc, v, "provider", &s) == 0) {
        m->provider = xstrdup(s);
        m->type = policy_provider_type(cfg, s);
        if (cfg && !config_provider_find(cfg, s)) {
            /* names the first few, and says how many more: a file with many
             * models naming a missing provider must not cost models x providers */
            char list[256] = "";
            size_t shown = 0;
            for (; shown < cfg->nproviders && shown < 4; shown++) {
                size_t used = strlen(list);
                snprintf(list + used, sizeof list - used, "%s%.40s", shown ? ", " : "",
                         cfg->providers[shown].name);
            }
            if (shown < cfg->nproviders) {
                size_t used = strlen(list);
                snprintf(list + used, sizeof list - used, " and %zu more", cfg->nproviders - shown);
            }
            ydoc_error(doc, v, "provider: unknown provider \"%.64s\" (worker.yaml has: %s)", s,
                       list);
        }
    }
    if (!(v = ydoc_get(map, "model")))
        ydoc_error(doc, map, "%s: missing \"model\" (the provider's model id)", what);
    else if (ydoc_string(doc, v, "model", &s) == 0)
        m->model = xstrdup(s);
    if (!(v = ydoc_get(map, "price")))
        ydoc_error(doc, map, "%s: missing \"price\"", what);
    else
        policy_bind_price(doc, v, pp, m);
    int64_t cap;
    if ((v = ydoc_get(map, "max_output_tokens")) &&
        ydoc_int(doc, v, "max_output_tokens", 1, 10000000, &cap) == 0)
        m->max_output_tokens = (uint32_t)cap;
    if ((v = ydoc_get(map, "unsupported")))
        policy_bind_unsupported(doc, v, what, m);
    /* the providers that bill cache writes; an OpenAI-shaped server that
     * does says so in the policy */
    m->cache_writes = m->type == PROVIDER_ANTHROPIC || m->type == PROVIDER_BEDROCK;
    if ((v = ydoc_get(map, "cache_writes")))
        ydoc_bool(doc, v, "cache_writes", &m->cache_writes);
}

static void policy_bind_models(struct ydoc *doc, const struct ydoc_node *map,
                               const struct config *cfg, struct policy_prices *pp, struct policy *p)
{
    if (ydoc_expect_map(doc, map, "models") < 0)
        return;
    if (map->count == 0)
        ydoc_error(doc, map, "models: expected at least one model");
    p->models = calloc(map->count ? map->count : 1, sizeof *p->models);
    if (!p->models)
        return;
    for (size_t i = 0; i < map->count; i++) {
        const struct ydoc_node *k = ydoc_key_at(map, i);
        if (k->type == YDOC_SCALAR)
            policy_bind_model(doc, k, ydoc_value_at(map, i), cfg, pp, &p->models[p->nmodels++]);
    }
}

/* The first model of that name (a duplicate is an error of its own). */
static int policy_model_index(const struct text_index *models, const char *name, size_t *out)
{
    size_t i = text_index_find(models, name);
    if (i == TEXT_INDEX_NONE)
        return -1;
    *out = i;
    return 0;
}

/* A route is `task: [a, b]`, or `task: {candidates: [a, b], on_rate_limit:
 * wait|fallback}`; both bind to the same candidates. */
static void policy_bind_route(struct ydoc *doc, const struct ydoc_node *k,
                              const struct ydoc_node *value, struct policy *p,
                              const struct text_index *models, struct policy_route *r)
{
    r->task = xstrdup(k->value);
    r->on_rate_limit = POLICY_RATE_LIMIT_WAIT;
    char what[96];
    snprintf(what, sizeof what, "routes.%.64s", k->value);
    const struct ydoc_node *seq = value;
    if (value && value->type == YDOC_MAP) {
        ydoc_check_keys(doc, value, route_keys, what);
        const struct ydoc_node *v;
        int choice;
        if ((v = ydoc_get(value, "on_rate_limit")) &&
            ydoc_enum(doc, v, "on_rate_limit", on_rate_limit_names, &choice) == 0)
            r->on_rate_limit = (enum policy_on_rate_limit)choice;
        if (!(seq = ydoc_get(value, "candidates"))) {
            ydoc_error(doc, value, "%s: missing \"candidates\" (a list of models, best first)",
                       what);
            return;
        }
    }
    char seq_what[112];
    snprintf(seq_what, sizeof seq_what, "%s%s", what, seq == value ? "" : ".candidates");
    if (!seq || ydoc_expect_seq(doc, seq, seq_what) < 0)
        return;
    if (seq->count == 0)
        ydoc_error(doc, seq, "%s: expected at least one model", what);
    if (seq->count > POLICY_MAX_CANDIDATES)
        ydoc_error(doc, seq, "%s: expected at most %d candidates", what, POLICY_MAX_CANDIDATES);
    const char *names[256];
    size_t nnames = 0;
    for (size_t i = 0; i < p->nmodels && nnames < 255; i++)
        if (p->models[i].name)
            names[nnames++] = p->models[i].name;
    names[nnames] = NULL;
    for (size_t i = 0; i < seq->count && r->ncandidates < POLICY_MAX_CANDIDATES; i++) {
        const struct ydoc_node *v = seq->items[i];
        const char *name;
        size_t idx;
        if (ydoc_string(doc, v, "candidate", &name) < 0)
            continue;
        if (policy_model_index(models, name, &idx) < 0) {
            const char *near = text_nearest(name, names);
            ydoc_error(doc, v, "%s: unknown model \"%.64s\"%s%s%s", what, name,
                       near ? " (did you mean \"" : " (not under models:)", near ? near : "",
                       near ? "\"?)" : "");
            continue;
        }
        int dup = 0;
        for (size_t j = 0; j < r->ncandidates; j++)
            dup |= r->candidates[j] == idx;
        if (dup) {
            ydoc_error(doc, v, "%s: \"%.64s\" is listed twice", what, name);
            continue;
        }
        r->candidates[r->ncandidates++] = idx;
    }
}

static void policy_bind_routes(struct ydoc *doc, const struct ydoc_node *map, struct policy *p)
{
    if (ydoc_expect_map(doc, map, "routes") < 0)
        return;
    p->routes = calloc(map->count ? map->count : 1, sizeof *p->routes);
    if (!p->routes || !p->model_index)
        return;
    for (size_t i = 0; i < map->count; i++) {
        const struct ydoc_node *k = ydoc_key_at(map, i);
        if (k->type != YDOC_SCALAR)
            continue;
        struct policy_route *r = &p->routes[p->nroutes++];
        policy_bind_route(doc, k, ydoc_value_at(map, i), p, p->model_index, r);
        if (strcmp(k->value, "default") == 0)
            p->default_route = r;
    }
}

/* Models by name, for routes and policy_model_find: the first of a name
 * (a duplicate is an error of its own). */
static int policy_index_models(struct policy *p)
{
    if (!(p->model_index = text_index_new(p->nmodels)))
        return -1;
    for (size_t i = 0; i < p->nmodels; i++)
        if (p->models[i].name &&
            text_index_add(p->model_index, p->models[i].name, i) == TEXT_INDEX_NONE)
            return -1;
    return 0;
}

/* Routes by task, for policy_route_find: the first route of a name. */
static int policy_index_routes(struct policy *p)
{
    if (!(p->route_index = text_index_new(p->nroutes)))
        return -1;
    for (size_t i = 0; i < p->nroutes; i++)
        if (p->routes[i].task &&
            text_index_add(p->route_index, p->routes[i].task, i) == TEXT_INDEX_NONE)
            return -1;
    return 0;
}

static void policy_bind_budget(struct ydoc *doc, const struct ydoc_node *map, struct policy *p)
{
    p->default_budget_nusd = 50000000; /* 0.05 USD */
    p->over_budget = POLICY_DOWNGRADE;
    p->min_output_tokens = 16;
    p->input_bytes_per_token = 3;
    p->image_tokens = 1600; /* Anthropic's documented most for one image */
    if (!map)
        return;
    if (ydoc_expect_map(doc, map, "budget") < 0)
        return;
    ydoc_check_keys(doc, map, budget_keys, "budget");
    const struct ydoc_node *v;
    uint64_t usd;
    int choice;
    int64_t n;
    if ((v = ydoc_get(map, "default_usd")) &&
        ydoc_decimal_e9(doc, v, "default_usd", COST_MAX_BUDGET / 1000000000u, &usd) == 0) {
        if (usd == 0)
            ydoc_error(doc, v, "default_usd: expected more than 0");
        p->default_budget_nusd = usd;
    }
    if ((v = ydoc_get(map, "over_budget")) &&
        ydoc_enum(doc, v, "over_budget", over_budget_names, &choice) == 0)
        p->over_budget = (enum policy_over_budget)choice;
    if ((v = ydoc_get(map, "min_output_tokens")) &&
        ydoc_int(doc, v, "min_output_tokens", 1, 1000000, &n) == 0)
        p->min_output_tokens = (uint32_t)n;
    if ((v = ydoc_get(map, "input_bytes_per_token")) &&
        ydoc_int(doc, v, "input_bytes_per_token", 1, 16, &n) == 0)
        p->input_bytes_per_token = (uint32_t)n;
    if ((v = ydoc_get(map, "image_tokens")) &&
        ydoc_int(doc, v, "image_tokens", 1, 1000000, &n) == 0)
        p->image_tokens = (uint32_t)n;
}

static struct policy *policy_bind(struct ydoc *doc, const struct config *cfg,
                                  struct ydoc_errors *errs)
{
    struct policy *p = calloc(1, sizeof *p);
    const struct ydoc_node *root = doc->root, *v;
    struct policy_prices pp = {.policy_file = doc->file};
    if (!p)
        goto out;
    p->refs = 1;
    if (!root || ydoc_expect_map(doc, root, "the policy") < 0)
        goto out;
    ydoc_check_keys(doc, root, top_keys, "the policy");
    /* a table named outright is checked even when no model uses it */
    if ((pp.path_node = ydoc_get(root, "prices")))
        policy_prices_table(doc, &pp);
    if ((v = ydoc_get(root, "models")))
        policy_bind_models(doc, v, cfg, &pp, p);
    else
        ydoc_error(doc, root, "missing \"models\"");
    if (policy_index_models(p) < 0)
        ydoc_error(doc, NULL, "out of memory");
    if ((v = ydoc_get(root, "routes")))
        policy_bind_routes(doc, v, p);
    else
        ydoc_error(doc, root, "missing \"routes\"");
    policy_bind_budget(doc, ydoc_get(root, "budget"), p);
    if (policy_index_routes(p) < 0)
        ydoc_error(doc, NULL, "out of memory");
out:
    if (doc->errs.count > 0 || pp.errs.count > 0 || !root) {
        policy_release(p);
        p = NULL;
    }
    ydoc_take_errors(doc, errs);
    /* the table's own errors after the policy's: they name its file */
    for (size_t i = 0; i < pp.errs.count; i++) {
        if (errs->count == errs->cap) {
            size_t cap = errs->cap ? errs->cap * 2 : 8;
            char **lines = realloc(errs->lines, cap * sizeof *lines);
            if (!lines)
                break;
            errs->lines = lines;
            errs->cap = cap;
        }
        errs->lines[errs->count++] = pp.errs.lines[i];
        pp.errs.lines[i] = NULL;
    }
    ydoc_errors_release(&pp.errs);
    prices_free(pp.table);
    ydoc_free(doc);
    return p;
}

struct policy *policy_load(const char *path, const struct config *cfg, struct ydoc_errors *errs)
{
    struct ydoc *doc = ydoc_load(path);
    return doc ? policy_bind(doc, cfg, errs) : NULL;
}

struct policy *policy_parse(const char *name, const char *text, size_t len,
                            const struct config *cfg, struct ydoc_errors *errs)
{
    struct ydoc *doc = ydoc_parse(name, text, len);
    return doc ? policy_bind(doc, cfg, errs) : NULL;
}

struct policy *policy_retain(struct policy *p)
{
    if (p)
        p->refs++;
    return p;
}

void policy_release(struct policy *p)
{
    if (!p || --p->refs > 0)
        return;
    for (size_t i = 0; i < p->nmodels; i++) {
        free(p->models[i].name);
        free(p->models[i].provider);
        free(p->models[i].model);
        free(p->models[i].price_entry);
    }
    free(p->models);
    for (size_t i = 0; i < p->nroutes; i++)
        free(p->routes[i].task);
    free(p->routes);
    text_index_free(p->route_index);
    text_index_free(p->model_index);
    free(p);
}

const struct policy_route *policy_route_find(const struct policy *p, const char *task)
{
    size_t i = p->route_index ? text_index_find(p->route_index, task) : TEXT_INDEX_NONE;
    return i == TEXT_INDEX_NONE ? NULL : &p->routes[i];
}

const struct policy_model *policy_model_find(const struct policy *p, const char *name)
{
    size_t i = p->model_index ? text_index_find(p->model_index, name) : TEXT_INDEX_NONE;
    return i == TEXT_INDEX_NONE ? NULL : &p->models[i];
}

/*
 * preflight: what start-up would refuse, found without starting: the
 * environment (API keys, "${ENV}" secrets), librdkafka's verdict on every
 * kafka value, and whether the default budget can pay for any route.
 * Never connects to anything, never prints a value read from the
 * environment (only variable names), and never decides a route itself:
 * affordability is the router's (router_fit), so this check and routing
 * cannot disagree.
 */
#include "preflight.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "redact.h"
#include "request.h"
#include "router.h"
#include "ydoc.h"

/* The file a problem is located in: parsed again only for positions. */
struct preflight_file {
    const char *path;
    struct ydoc *doc; /* NULL when out of memory */
};

static const struct ydoc_node *preflight_root(const struct preflight_file *f)
{
    return f->doc ? f->doc->root : NULL;
}

static void preflight_add(struct preflight_report *r, const char *event,
                          const struct preflight_file *f, const struct ydoc_node *node,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void preflight_add(struct preflight_report *r, const char *event,
                          const struct preflight_file *f, const struct ydoc_node *node,
                          const char *fmt, ...)
{
    if (r->count == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        struct preflight_problem *items = realloc(r->items, cap * sizeof *items);
        if (!items)
            return;
        r->items = items;
        r->cap = cap;
    }
    char *msg = NULL, *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (asprintf(&line, "%s:%d:%d: %s", f->path, node ? node->line : 1, node ? node->column : 1,
                 msg) < 0)
        line = NULL;
    free(msg);
    if (!line)
        return;
    r->items[r->count++] = (struct preflight_problem){.event = event, .line = line};
}

/* --- kafka: the conf objects built as at start ----------------------------- */

struct preflight_kafka {
    const struct config *cfg;
    const struct preflight_file *file;
    struct preflight_report *out;
};

static void preflight_kafka_bad(void *ctx, size_t property, const char *msg)
{
    struct preflight_kafka *k = ctx;
    const struct ydoc_node *node = NULL;
    if (property < k->cfg->nkafka)
        node = ydoc_get(ydoc_get(preflight_root(k->file), "kafka"), k->cfg->kafka[property].name);
    else /* one of switchyard's own settings: the section is all there is to point at */
        node = ydoc_get(preflight_root(k->file), "kafka");
    preflight_add(k->out, "kafka_config", k->file, node, "%s", msg);
}

/* --- API keys: as worker_run reads them ------------------------------------ */

static int preflight_provider_used(const struct policy *policy, const char *provider)
{
    for (size_t m = 0; m < policy->nmodels; m++)
        if (strcmp(policy->models[m].provider, provider) == 0)
            return 1;
    return 0;
}

const char *preflight_secret_problem(const char *value)
{
    if (!value || !*value)
        return "is not set or empty";
    size_t len = 0;
    for (const char *k = value; *k; k++, len++)
        if ((unsigned char)*k < 0x21 || *k == 0x7f)
            /* a CR or LF would inject a header */
            return "holds a control character or space";
    return len > REDACT_MAX_SECRET ? "is longer than the longest secret switchyard can redact"
                                   : NULL;
}

const char *const preflight_aws_vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                          "AWS_SESSION_TOKEN", NULL};

/* SigV4 providers sign with the AWS credentials: the key id and the secret
 * must be set, the session token may be (temporary credentials). */
static void preflight_aws(const struct config_provider *p, const struct preflight_file *f,
                          const struct ydoc_node *at, struct preflight_report *out)
{
    for (size_t v = 0; preflight_aws_vars[v]; v++) {
        const char *value = getenv(preflight_aws_vars[v]);
        const char *why = preflight_secret_problem(value);
        if (why && !(v == 2 && (!value || !*value)))
            preflight_add(out, !value || !*value ? "missing_api_key" : "bad_api_key", f, at,
                          "provider %s signs its calls (auth: sigv4): %s %s", p->name,
                          preflight_aws_vars[v], why);
    }
}

static void preflight_keys(const struct config *cfg, const struct policy *policy,
                           const struct preflight_file *f, struct preflight_report *out)
{
    const struct ydoc_node *providers = ydoc_get(preflight_root(f), "providers");
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const struct config_provider *p = &cfg->providers[i];
        if (!preflight_provider_used(policy, p->name))
            continue; /* a provider no model uses needs no key */
        if (p->auth == CONFIG_AUTH_SIGV4) {
            preflight_aws(p, f, ydoc_get(ydoc_get(providers, p->name), "type"), out);
            continue;
        }
        const struct ydoc_node *at = ydoc_get(ydoc_get(providers, p->name), "api_key_env");
        /* the name is printed only when it cannot be a pasted key */
        const char *var = config_name_may_be_secret(p->api_key_env)
                              ? "(the name api_key_env gives is withheld: it looks like a key)"
                              : p->api_key_env;
        const char *key = getenv(p->api_key_env);
        if (!key || !*key) {
            preflight_add(out, "missing_api_key", f, at,
                          "provider %s: the environment variable that api_key_env names (%s) "
                          "is not set or empty",
                          p->name, var);
            continue;
        }
        size_t len = 0;
        int control = 0;
        for (const char *k = key; *k; k++, len++)
            control |= (unsigned char)*k < 0x21 || *k == 0x7f;
        if (control)
            /* a CR or LF would inject a header; the key is not shown */
            preflight_add(out, "bad_api_key", f, at,
                          "provider %s: the key in %s holds a control character or space", p->name,
                          var);
        else if (len > REDACT_MAX_SECRET)
            preflight_add(out, "bad_api_key", f, at,
                          "provider %s: the key in %s is longer than %d bytes", p->name, var,
                          REDACT_MAX_SECRET);
    }
}

/* --- the default budget ---------------------------------------------------- */

/* nUSD as a plain decimal USD figure: 7100 -> "0.0000071". */
static void preflight_usd(uint64_t nusd, char *out, size_t size)
{
    int n = snprintf(out, size, "%llu.%09llu", (unsigned long long)(nusd / 1000000000u),
                     (unsigned long long)(nusd % 1000000000u));
    while (n > 0 && (size_t)n < size && out[n - 1] == '0')
        out[--n] = '\0';
    if (n > 0 && (size_t)n < size && out[n - 1] == '.')
        out[--n] = '\0';
}

/* A request with no budget of its own gets default_usd. Some route must be
 * able to take one: with over_budget: downgrade any of its candidates, with
 * reject its first. Judged by the router for the smallest request there is
 * (one empty message), so a budget refused here is refused for every
 * request. */
static void preflight_budget(const struct policy *policy, const struct preflight_file *f,
                             struct preflight_report *out)
{
    struct request smallest = {.nmessages = 1};
    uint64_t input = router_estimate_input(policy, &smallest);
    const struct policy_route *cheapest = NULL;
    size_t cheapest_model = 0;
    uint64_t cheapest_nusd = UINT64_MAX;
    for (size_t r = 0; r < policy->nroutes; r++) {
        const struct policy_route *route = &policy->routes[r];
        size_t n =
            policy->over_budget == POLICY_REJECT && route->ncandidates ? 1 : route->ncandidates;
        for (size_t c = 0; c < n; c++) {
            const struct policy_model *m = &policy->models[route->candidates[c]];
            if (router_fit(policy, m, input, input, 0, 0, policy->default_budget_nusd) > 0)
                return;
            if (m->max_output_tokens && m->max_output_tokens < policy->min_output_tokens)
                continue; /* no budget would do: min_output_tokens is the problem */
            uint64_t need = router_worst_case(m, input, input, policy->min_output_tokens);
            if (need < cheapest_nusd) {
                cheapest_nusd = need;
                cheapest = route;
                cheapest_model = route->candidates[c];
            }
        }
    }
    if (policy->nroutes == 0)
        return;
    const struct ydoc_node *budget = ydoc_get(preflight_root(f), "budget");
    const struct ydoc_node *at = ydoc_get(budget, "default_usd");
    char have[32], need[32];
    preflight_usd(policy->default_budget_nusd, have, sizeof have);
    const char *only = policy->over_budget == POLICY_REJECT
                           ? " (over_budget is reject: only each route's first candidate counts)"
                           : "";
    if (!cheapest) {
        preflight_add(out, "budget_unaffordable", f, at ? at : budget,
                      "budget.default_usd: no route can take a request whatever the budget: "
                      "each candidate's max_output_tokens is below min_output_tokens (%u)%s",
                      policy->min_output_tokens, only);
        return;
    }
    preflight_usd(cheapest_nusd, need, sizeof need);
    preflight_add(out, "budget_unaffordable", f, at ? at : budget,
                  "budget.default_usd: %s USD affords no route, not even for the smallest "
                  "request (%llu input tokens) and min_output_tokens (%u)%s; the cheapest is "
                  "route \"%.64s\" (%.64s), which needs %s USD",
                  have, (unsigned long long)input, policy->min_output_tokens, only, cheapest->task,
                  policy->models[cheapest_model].name, need);
}

size_t preflight_run(const struct config *cfg, const struct policy *policy, const char *config_path,
                     const char *policy_path, struct preflight_report *out)
{
    size_t before = out->count;
    struct preflight_file worker_file = {.path = config_path, .doc = ydoc_load(config_path)};
    struct preflight_file policy_file = {.path = policy_path, .doc = ydoc_load(policy_path)};
    struct preflight_kafka k = {.cfg = cfg, .file = &worker_file, .out = out};
    kafka_conf_check(cfg, preflight_kafka_bad, &k);
    preflight_keys(cfg, policy, &worker_file, out);
    preflight_budget(policy, &policy_file, out);
    ydoc_free(worker_file.doc);
    ydoc_free(policy_file.doc);
    return out->count - before;
}

void preflight_report_release(struct preflight_report *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->items[i].line);
    free(r->items);
    r->items = NULL;
    r->count = r->cap = 0;
}

/*
 * config and policy loading: the shipped files load with exact values, and
 * every case in tests/data/bad-config/ prints exactly its .expected lines.
 * A case is two files: NAME.yaml and NAME.expected; NAME starting with
 * "policy-" is loaded as a policy (with config/worker.yaml for provider
 * names), "worker-" as a worker configuration.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "policy.h"

#define BAD_DIR "tests/data/bad-config/"

static void test_config_shipped(void)
{
    struct ydoc_errors errs = {0};
    struct config *cfg = config_load("config/worker.yaml", &errs);
    ok(cfg && errs.count == 0, "config/worker.yaml loads (%zu errors)", errs.count);
    if (!cfg)
        return;
    ok(strcmp(cfg->topic_requests, "llm.requests") == 0, "requests topic");
    ok(strcmp(cfg->topic_dead_letter, "llm.requests.dlq") == 0, "dead-letter topic");
    const struct config_provider *a = config_provider_find(cfg, "anthropic");
    ok(a && a->type == PROVIDER_ANTHROPIC && strcmp(a->api_key_env, "ANTHROPIC_API_KEY") == 0,
       "anthropic provider with its key's variable name");
    ok(a && a->timeout_ms == 300000 && a->connect_timeout_ms == 10000, "provider timeouts");
    const struct config_provider *o = config_provider_find(cfg, "openai");
    ok(o && o->connect_timeout_ms == 10000, "unset provider timeout takes the default");
    ok(cfg->limits.max_in_flight == 10000 && cfg->limits.max_message_bytes == 1048576, "limits");
    ok(cfg->metrics_listen && strcmp(cfg->metrics_listen, "127.0.0.1:9464") == 0, "metrics");
    ok(!cfg->metrics_tenant_label && cfg->metrics_max_tenants == 100 && !cfg->log_requests &&
           !cfg->log_bodies,
       "opt-ins off by default: no tenant label (100 tenants when on), no request log, no bodies");
    ok(cfg->costs_reserve == 1, "costs.reserve is on by default");
    ok(cfg->limits.queue_per_model == 256 && cfg->limits.rate_limit_max_wait_ms == 600000,
       "queue_per_model and rate_limit_max_wait_ms");
    ok(o && o->circuit.failures == 5 && o->circuit.window_ms == 10000 &&
           o->limits.requests_per_minute == 0 && o->model_limits.max_concurrent == 0,
       "shipped providers: default circuit, no configured rate limits");

    struct policy *p = policy_load("config/policy.yaml", cfg, &errs);
    ok(p && errs.count == 0, "config/policy.yaml loads");
    if (p) {
        const struct policy_model *opus = &p->models[0];
        ok(strcmp(opus->name, "opus") == 0 && strcmp(opus->model, "claude-opus-4-1") == 0,
           "first model is opus");
        ok(opus->prices.nusd_per_mtok[COST_INPUT] == 15000000000u &&
               opus->prices.nusd_per_mtok[COST_OUTPUT] == 75000000000u &&
               opus->prices.nusd_per_mtok[COST_CACHE_READ] == 1500000000u &&
               opus->prices.nusd_per_mtok[COST_CACHE_WRITE] == 18750000000u,
           "opus prices exact");
        ok(opus->prices.nusd_per_mtok[COST_REASONING] == 75000000000u,
           "unpriced reasoning costs as output");
        const struct policy_model *nano = &p->models[5];
        ok(nano->prices.nusd_per_mtok[COST_CACHE_READ] == 25000000u &&
               nano->prices.nusd_per_mtok[COST_CACHE_WRITE] == 100000000u,
           "0.025 exact; unpriced cache_write costs as input");
        ok(p->default_route && strcmp(p->default_route->task, "default") == 0, "default route");
        const struct policy_route *r = policy_route_find(p, "planning");
        ok(r && r->ncandidates == 3 && r->candidates[0] == 0, "planning route: opus first");
        ok(p->default_budget_nusd == 50000000u && p->over_budget == POLICY_DOWNGRADE,
           "budget defaults");
        int unset = 1;
        for (size_t i = 0; i < p->nmodels; i++)
            unset &= p->models[i].limits.requests_per_minute == -1 &&
                     p->models[i].limits.tokens_per_minute == -1 &&
                     p->models[i].limits.max_concurrent == -1;
        ok(unset, "shipped models set no limits of their own (-1)");
        ok(r && r->on_rate_limit == POLICY_RATE_LIMIT_WAIT, "a listed route waits on rate limits");
    }
    policy_release(p);
    config_free(cfg);
    ydoc_errors_release(&errs);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs one case; returns the error lines (with the directory stripped),
 * joined by newlines. */
static char *run_case(const char *name, const struct config *good_cfg, int *loaded)
{
    char path[512];
    snprintf(path, sizeof path, BAD_DIR "%s", name);
    struct ydoc_errors errs = {0};
    if (strncmp(name, "policy-", 7) == 0) {
        struct policy *p = policy_load(path, good_cfg, &errs);
        *loaded = p != NULL;
        policy_release(p);
    } else {
        struct config *cfg = config_load(path, &errs);
        *loaded = cfg != NULL;
        config_free(cfg);
    }
    size_t size = 1;
    for (size_t i = 0; i < errs.count; i++)
        size += strlen(errs.lines[i]) + 1;
    char *out = calloc(1, size);
    for (size_t i = 0; out && i < errs.count; i++) {
        const char *line = errs.lines[i];
        if (strncmp(line, BAD_DIR, strlen(BAD_DIR)) == 0)
            line += strlen(BAD_DIR);
        strcat(out, line);
        strcat(out, "\n");
    }
    ydoc_errors_release(&errs);
    return out;
}

static void test_config_costs(void)
{
    struct ydoc_errors errs = {0};
    struct config *cfg = config_load("tests/data/config/costs-off.yaml", &errs);
    ok(cfg && cfg->costs_reserve == 0, "costs: {reserve: false} turns reservations off (%s)",
       errs.count ? errs.lines[0] : "");
    config_free(cfg);
    ydoc_errors_release(&errs);
}

static void test_config_bad_cases(void)
{
    struct ydoc_errors errs = {0};
    struct config *good = config_load("config/worker.yaml", &errs);
    ydoc_errors_release(&errs);
    DIR *d = opendir(BAD_DIR);
    ok(d != NULL, "%s exists", BAD_DIR);
    if (!d) {
        config_free(good);
        return;
    }
    char *names[512];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 512) {
        size_t len = strlen(de->d_name);
        if (len > 5 && strcmp(de->d_name + len - 5, ".yaml") == 0)
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    ok(n >= 20, "at least 20 bad-config cases (%zu)", n);
    for (size_t i = 0; i < n; i++) {
        char expected_path[512];
        snprintf(expected_path, sizeof expected_path, BAD_DIR "%.*s.expected",
                 (int)(strlen(names[i]) - 5), names[i]);
        char *expected = check_read_file(expected_path, NULL);
        int loaded = 0;
        char *got = run_case(names[i], good, &loaded);
        ok(expected != NULL, "%s has an .expected file", names[i]);
        ok(!loaded, "%s is refused", names[i]);
        ok(expected && got && strcmp(expected, got) == 0, "%s errors:\n--- expected\n%s--- got\n%s",
           names[i], expected ? expected : "", got ? got : "");
        free(expected);
        free(got);
        free(names[i]);
    }
    config_free(good);
}

/* tests/data/config/secret-names.txt: "secret NAME" or "name NAME" a line */
static void test_config_secret_names(void)
{
    char *text = check_read_file("tests/data/config/secret-names.txt", NULL);
    ok(text != NULL, "tests/data/config/secret-names.txt");
    int secrets = 0, names = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        char *name = strchr(line, ' ');
        if (!name)
            continue;
        *name++ = '\0';
        int want = strcmp(line, "secret") == 0;
        secrets += want;
        names += !want;
        ok(config_name_may_be_secret(name) == want, "%s: %s", name,
           want ? "may be a secret" : "a plain name");
    }
    ok(secrets >= 15 && names >= 15, "cases of both kinds (%d, %d)", secrets, names);
    free(text);

    static const struct {
        const char *id;
        int ok;
    } ids[] = {{"worker-1", 1},  {"a", 1},         {"", 0},           {"has space", 0},
               {"tab\there", 0}, {"new\nline", 0}, {"caf\xc3\xa9", 0}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        ok(config_worker_id_ok(ids[i].id) == ids[i].ok, "worker_id case %zu", i);
    char id[CONFIG_WORKER_ID_MAX + 2];
    memset(id, 'w', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    ok(!config_worker_id_ok(id), "a worker_id of 128 bytes is refused");
    id[CONFIG_WORKER_ID_MAX] = '\0';
    ok(config_worker_id_ok(id), "a worker_id of 127 bytes is accepted");
}

/* A ${NAME} of 1,200 characters is an environment reference, kept whole. */
static void test_config_long_env_ref(void)
{
    struct ydoc_errors errs = {0};
    struct config *cfg = config_load("tests/data/config/long-env-ref.yaml", &errs);
    ok(cfg && errs.count == 0, "a long ${NAME} loads (%s)", errs.count ? errs.lines[0] : "");
    const char *v = NULL;
    for (size_t i = 0; cfg && i < cfg->nkafka; i++)
        if (strcmp(cfg->kafka[i].name, "sasl.password") == 0)
            v = cfg->kafka[i].value;
    ok(v && strlen(v) == 3 + 14 + 1200 && v[strlen(v) - 1] == '}', "kept whole (%zu bytes)",
       v ? strlen(v) : 0);
    config_free(cfg);
    ydoc_errors_release(&errs);
}

static int limits_are(const struct config_rate_limits *l, int64_t rpm, int64_t tpm, int64_t conc)
{
    return l->requests_per_minute == rpm && l->tokens_per_minute == tpm &&
           l->max_concurrent == conc;
}

static int circuit_is(const struct config_circuit *c, int64_t failures, int64_t percent,
                      int64_t min_calls, int64_t window_ms, int64_t open_ms, int64_t probes)
{
    return c->failures == failures && c->failure_percent == percent && c->min_calls == min_calls &&
           c->window_ms == window_ms && c->open_ms == open_ms && c->probes == probes;
}

/* tests/data/config/pressure-*.yaml: rate limits, circuits and route forms
 * that load, with every value as written or as its default. */
static void test_config_pressure(void)
{
    struct ydoc_errors errs = {0};
    struct config *cfg = config_load("tests/data/config/pressure-worker.yaml", &errs);
    ok(cfg && errs.count == 0, "pressure-worker.yaml loads (%s)", errs.count ? errs.lines[0] : "");
    if (!cfg) {
        ydoc_errors_release(&errs);
        return;
    }
    const struct config_provider *o = config_provider_find(cfg, "openai"),
                                 *a = config_provider_find(cfg, "anthropic"),
                                 *l = config_provider_find(cfg, "local"),
                                 *d = config_provider_find(cfg, "plain");
    ok(o && a && l && d, "four providers");
    if (o && a && l && d) {
        ok(limits_are(&o->limits, 3000, 0, 0), "openai: limits as written");
        ok(limits_are(&o->model_limits, 0, 0, 64), "openai: model_limits, unset fields 0");
        ok(circuit_is(&o->circuit, 3, 50, 20, 10000, 100, 1), "openai: circuit, unset defaults");
        const int64_t t = 1000000000000LL;
        ok(limits_are(&a->limits, t, t, 0) && limits_are(&a->model_limits, t, t, t),
           "anthropic: 10^12 accepted everywhere");
        ok(circuit_is(&a->circuit, 1000, 100, 100000, 3600000, 3600000, 1000),
           "anthropic: the largest circuit values");
        ok(circuit_is(&l->circuit, 1, 1, 1, 1000, 100, 1), "local: the smallest circuit values");
        ok(limits_are(&d->limits, 0, 0, 0) && limits_are(&d->model_limits, 0, 0, 0) &&
               circuit_is(&d->circuit, 5, 50, 20, 10000, 5000, 1),
           "plain: nothing set, the defaults");
    }
    ok(cfg->limits.max_in_flight == 100 && cfg->limits.queue_per_model == 100,
       "queue_per_model's default follows a lower max_in_flight (%lld)",
       (long long)cfg->limits.queue_per_model);
    ok(cfg->limits.rate_limit_max_wait_ms == 1000, "rate_limit_max_wait_ms as written");

    struct policy *p = policy_load("tests/data/config/pressure-policy.yaml", cfg, &errs);
    ok(p && errs.count == 0, "pressure-policy.yaml loads (%s)", errs.count ? errs.lines[0] : "");
    if (p && p->nmodels == 4) {
        ok(limits_are(&p->models[0].limits, 500, 30000, 8), "full: a model's limits as written");
        ok(limits_are(&p->models[1].limits, -1, 0, -1),
           "partial: 0 is kept (no limit), the unset fields are -1");
        ok(limits_are(&p->models[2].limits, -1, -1, -1), "none: no limits: all -1");
        ok(limits_are(&p->models[3].limits, -1, -1, -1), "empty: limits {}: all -1");
        const struct policy_route *listed = policy_route_find(p, "listed"),
                                  *latency = policy_route_find(p, "latency"),
                                  *batch = policy_route_find(p, "batch"),
                                  *plainmap = policy_route_find(p, "plainmap");
        ok(listed && listed->ncandidates == 2 && listed->candidates[0] == 0 &&
               listed->candidates[1] == 1 && listed->on_rate_limit == POLICY_RATE_LIMIT_WAIT,
           "a list: candidates in order, waits");
        ok(latency && latency->ncandidates == 2 && latency->candidates[0] == 1 &&
               latency->candidates[1] == 2 && latency->on_rate_limit == POLICY_RATE_LIMIT_FALLBACK,
           "a map with on_rate_limit: fallback");
        ok(batch && batch->ncandidates == 1 && batch->candidates[0] == 2 &&
               batch->on_rate_limit == POLICY_RATE_LIMIT_WAIT,
           "a map with on_rate_limit: wait");
        ok(plainmap && plainmap->ncandidates == 2 && plainmap->candidates[0] == 3 &&
               plainmap->candidates[1] == 0 && plainmap->on_rate_limit == POLICY_RATE_LIMIT_WAIT,
           "a map without on_rate_limit waits (block list)");
        ok(p->default_route && p->default_route->ncandidates == 1, "default route");
    } else {
        ok(0, "pressure-policy.yaml: four models (%zu)", p ? p->nmodels : 0);
    }
    policy_release(p);

    /* the same route in both forms binds the same candidates */
    static const char list_form[] =
        "models:\n"
        "  m: {provider: openai, model: x, price: {input: 1, output: 2}}\n"
        "  n: {provider: local, model: y, price: {input: 1, output: 2}}\n"
        "routes:\n"
        "  default: [n, m]\n";
    static const char map_form[] =
        "models:\n"
        "  m: {provider: openai, model: x, price: {input: 1, output: 2}}\n"
        "  n: {provider: local, model: y, price: {input: 1, output: 2}}\n"
        "routes:\n"
        "  default: {on_rate_limit: fallback, candidates: [n, m]}\n";
    struct policy *pl = policy_parse("list.yaml", list_form, sizeof list_form - 1, cfg, &errs);
    struct policy *pm = policy_parse("map.yaml", map_form, sizeof map_form - 1, cfg, &errs);
    ok(pl && pm && errs.count == 0, "both forms parse (%s)", errs.count ? errs.lines[0] : "");
    if (pl && pm) {
        const struct policy_route *rl = pl->default_route, *rm = pm->default_route;
        ok(rl && rm && rl->ncandidates == 2 && rm->ncandidates == 2 &&
               memcmp(rl->candidates, rm->candidates, sizeof rl->candidates) == 0 &&
               rl->candidates[0] == 1,
           "list and map forms: the same candidates");
        ok(rl && rm && rl->on_rate_limit == POLICY_RATE_LIMIT_WAIT &&
               rm->on_rate_limit == POLICY_RATE_LIMIT_FALLBACK,
           "only on_rate_limit differs");
    }
    policy_release(pl);
    policy_release(pm);
    config_free(cfg);
    ydoc_errors_release(&errs);
}

void test_config(void)
{
    test_config_shipped();
    test_config_costs();
    test_config_bad_cases();
    test_config_secret_names();
    test_config_long_env_ref();
    test_config_pressure();
}

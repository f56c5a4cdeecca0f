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

void test_config(void)
{
    test_config_shipped();
    test_config_bad_cases();
    test_config_secret_names();
    test_config_long_env_ref();
}

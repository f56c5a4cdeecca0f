/*
 * switchyard: argument parsing and wiring. No logic lives here.
 *
 *   switchyard --check-config --config worker.yaml --policy policy.yaml
 *   switchyard --plan --config worker.yaml --policy policy.yaml < requests.jsonl
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "policy.h"
#include "preflight.h"
#include "request.h"
#include "router.h"
#include "worker.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: switchyard --check-config --config FILE --policy FILE\n"
            "       switchyard --plan --config FILE --policy FILE [< requests.jsonl]\n"
            "       switchyard [--config FILE] [--policy FILE] [--exit-when-idle MS]\n"
            "\n"
            "  --check-config  validate both files without connecting; exit 0 or print\n"
            "                  every error as file:line:column and exit 1\n"
            "  --plan          dry run: read request messages, one JSON document per\n"
            "                  line, and print the routing plan of each as a JSON line\n"
            "  (no mode)       run the worker until SIGTERM/SIGINT; SIGHUP reloads the policy\n"
            "  --exit-when-idle MS  stop (gracefully) after MS ms with nothing to do\n"
            "  --config FILE   worker configuration (default config/worker.yaml)\n"
            "  --policy FILE   routing policy (default config/policy.yaml)\n"
            "  --version, --help\n");
}

/* The environment is checked before anything else: a value that is set
 * but wrong is refused, never ignored. An empty value counts as unset. */
static int check_environment(void)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    const char *level = getenv("SWITCHYARD_LOG_LEVEL");
    if (level && *level) {
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(level, levels[i]) == 0)
                found = i;
        if (found < 0) {
            fprintf(stderr, "switchyard: SWITCHYARD_LOG_LEVEL: expected one of debug, info, "
                            "warn, error\n");
            return -1;
        }
        log_set_level((enum log_level)found);
    }
    /* not echoed: it may hold anything, control characters included */
    const char *id = getenv("SWITCHYARD_WORKER_ID");
    if (id && *id && !config_worker_id_ok(id)) {
        fprintf(stderr,
                "switchyard: SWITCHYARD_WORKER_ID: expected 1 to %d printable ASCII "
                "characters, without spaces or control characters\n",
                CONFIG_WORKER_ID_MAX);
        return -1;
    }
    return 0;
}

/* Loads both files, printing every error; NULL on any. */
static int load_all(const char *config_path, const char *policy_path, struct config **cfg,
                    struct policy **policy)
{
    struct ydoc_errors errs = {0};
    *cfg = config_load(config_path, &errs);
    /* the policy is checked even when worker.yaml has errors, so that one
     * run shows every mistake; provider names are then not cross-checked */
    *policy = policy_load(policy_path, *cfg, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    int bad = errs.count > 0 || !*cfg || !*policy;
    ydoc_errors_release(&errs);
    return bad ? -1 : 0;
}

/* What start would refuse, for --check-config (located lines on stderr)
 * and for the start itself (the same lines as error events): one function,
 * so the two cannot drift. -1 when anything was found. */
static int preflight(int check, const struct config *cfg, const struct policy *policy,
                     const char *config_path, const char *policy_path)
{
    struct preflight_report report = {0};
    size_t n = preflight_run(cfg, policy, config_path, policy_path, &report);
    for (size_t i = 0; i < report.count; i++) {
        if (check)
            fprintf(stderr, "%s\n", report.items[i].line);
        else
            log_error(report.items[i].event, "%s", report.items[i].line);
    }
    preflight_report_release(&report);
    return n ? -1 : 0;
}

static json_t *plan_to_json(const struct policy *policy, const struct request *req,
                            const struct plan *plan)
{
    json_t *route = json_array();
    for (size_t i = 0; i < plan->ncandidates; i++) {
        const struct router_candidate *c = &plan->candidates[i];
        json_t *entry =
            json_pack("{s:s, s:s, s:s}", "model", policy->models[c->model].name, "decision",
                      c->decision == ROUTER_TAKEN ? "taken" : "skipped", "reason", c->reason);
        if (c->decision == ROUTER_TAKEN) {
            json_object_set_new(entry, "max_tokens", json_integer(c->max_tokens));
            json_object_set_new(entry, "worst_case_nusd",
                                json_integer((json_int_t)c->worst_case_nusd));
        }
        json_array_append_new(route, entry);
    }
    json_t *out =
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:o}", "id", req->id, "task", req->task, "outcome",
                  router_outcome_name(plan->outcome), "budget_nusd", (json_int_t)plan->budget_nusd,
                  "input_tokens", (json_int_t)plan->input_tokens, "route", route);
    if (plan->outcome != ROUTER_OK)
        json_object_set_new(out, "reason", json_string(plan->reason));
    if (plan->pinned)
        json_object_set_new(out, "pinned", json_true());
    if (plan->route)
        json_object_set_new(out, "on_rate_limit",
                            json_string(plan->route->on_rate_limit == POLICY_RATE_LIMIT_FALLBACK
                                            ? "fallback"
                                            : "wait"));
    return out;
}

static int run_plan(const struct config *cfg, const struct policy *policy)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int bad = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        struct request *req;
        struct err e = {0};
        json_t *out;
        if (request_decode(line, (size_t)n, (size_t)cfg->limits.max_message_bytes, &req, &e) < 0) {
            out = json_pack("{s:i, s:{s:s, s:s}}", "line", (int)lineno, "error", "code", e.code,
                            "message", e.msg);
            bad = 1;
        } else {
            struct plan plan;
            router_plan(policy, req, &plan);
            out = plan_to_json(policy, req, &plan);
            request_free(req);
        }
        char *text = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (text)
            puts(text);
        free(text);
        json_decref(out);
    }
    free(line);
    return bad;
}

int main(int argc, char **argv)
{
    enum { MODE_RUN, MODE_CHECK, MODE_PLAN } mode = MODE_RUN;
    long long idle_ms = 0;
    const char *config_path = "config/worker.yaml", *policy_path = "config/policy.yaml";
    static const struct option options[] = {{"check-config", no_argument, NULL, 'k'},
                                            {"plan", no_argument, NULL, 'p'},
                                            {"config", required_argument, NULL, 'c'},
                                            {"policy", required_argument, NULL, 'P'},
                                            {"version", no_argument, NULL, 'V'},
                                            {"help", no_argument, NULL, 'h'},
                                            {"exit-when-idle", required_argument, NULL, 'i'},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:P:h", options, NULL)) != -1) {
        switch (opt) {
        case 'k':
            mode = MODE_CHECK;
            break;
        case 'p':
            mode = MODE_PLAN;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'P':
            policy_path = optarg;
            break;
        case 'i':
            idle_ms = strtoll(optarg, NULL, 10);
            if (idle_ms <= 0) {
                fprintf(stderr, "switchyard: --exit-when-idle: expected milliseconds > 0\n");
                return 2;
            }
            break;
        case 'V':
            printf("switchyard %s\n", SWITCHYARD_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }

    if (check_environment() < 0)
        return 2;
    struct config *cfg;
    struct policy *policy;
    int rc = 1;
    if (load_all(config_path, policy_path, &cfg, &policy) < 0)
        goto out;
    if (mode != MODE_PLAN &&
        preflight(mode == MODE_CHECK, cfg, policy, config_path, policy_path) < 0)
        goto out;
    if (mode == MODE_CHECK) {
        printf("%s: ok\n%s: ok (%zu models, %zu routes)\n", config_path, policy_path,
               policy->nmodels, policy->nroutes);
        rc = 0;
    } else if (mode == MODE_PLAN) {
        rc = run_plan(cfg, policy);
    } else {
        rc = worker_run(cfg, policy, policy_path, (uint64_t)idle_ms);
    }
out:
    policy_release(policy);
    config_free(cfg);
    return rc;
}

/*
 * switchyard: argument parsing and wiring. No logic lives here.
 *
 *   switchyard --check-config --config worker.yaml --policy policy.yaml
 *   switchyard --plan --config worker.yaml --policy policy.yaml < requests.jsonl
 *   switchyard cost-report --input costs.jsonl --by tenant,day --format csv
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "costread.h"
#include "costreport.h"
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
            "       switchyard cost-report (--input FILE | --config FILE [--from TIME]\n"
            "                   [--to TIME] [--timeout MS]) [--by COLUMNS] [--format F]\n"
            "\n"
            "  --check-config  validate both files without connecting; exit 0 or print\n"
            "                  every error as file:line:column and exit 1\n"
            "  --plan          dry run: read request messages, one JSON document per\n"
            "                  line, and print the routing plan of each as a JSON line\n"
            "  (no mode)       run the worker until SIGTERM/SIGINT; SIGHUP reloads the policy\n"
            "  --exit-when-idle MS  stop (gracefully) after MS ms with nothing to do\n"
            "  cost-report     totals of cost records: see switchyard cost-report --help\n"
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
            if (router_plan(policy, req, &plan) < 0)
                abort(); /* out of memory */
            out = plan_to_json(policy, req, &plan);
            router_plan_release(&plan);
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

static void cost_report_usage(FILE *out)
{
    fprintf(out, "usage: switchyard cost-report --input FILE [--by COLUMNS] [--format FORMAT]\n"
                 "       switchyard cost-report --config FILE [--from TIME] [--to TIME]\n"
                 "                              [--timeout MS] [--by COLUMNS] [--format FORMAT]\n"
                 "\n"
                 "Totals of cost records, de-duplicated on call_id (a settled record wins over\n"
                 "a reserved one), summed exactly in integer nano-USD.\n"
                 "\n"
                 "  --input FILE    JSON lines of cost records (\"-\": standard input)\n"
                 "  --config FILE   read the costs topic (topics.costs) of this worker.yaml,\n"
                 "                  with its kafka: connection settings; every partition is\n"
                 "                  assigned (the worker's group is never joined, nothing is\n"
                 "                  committed) and read up to the end offsets seen at start\n"
                 "  --from TIME     records whose Kafka timestamp is at or after TIME\n"
                 "  --to TIME       records whose Kafka timestamp is before TIME\n"
                 "                  TIME: 2025-11-25, 2025-11-25T10:00:00Z (UTC) or ms since\n"
                 "                  the epoch\n"
                 "  --timeout MS    give up (exit 1, no totals) when the topic is not read to\n"
                 "                  its end offsets within MS ms (default 60000)\n"
                 "  --by COLUMNS    group by any of tenant,task,model,provider,day,metadata.KEY\n"
                 "                  (comma-separated, in the order of the columns; day is the\n"
                 "                  UTC date of ts_ms); default: totals only\n"
                 "  --format F      table (USD with nine decimals, the default), csv or json\n"
                 "                  (nano-USD integers)\n"
                 "\n"
                 "Each group and the total show records read, settled calls, cost, usage by\n"
                 "category, and open reservations (a reserved record and no settled one):\n"
                 "\"not yet settled, at most X\". Records that are not cost records are counted,\n"
                 "reported on stderr with their position and never summed.\n"
                 "Exit status: 0; 1 when some records were bad (the totals are still printed)\n"
                 "or the input could not be read; 2 on a usage error.\n");
}

/* switchyard cost-report ...: argv[0] is "cost-report". */
static int cost_report(int argc, char **argv)
{
    const char *input = NULL, *config_path = NULL, *by_spec = "";
    struct costread_range range = {.from_ms = -1, .to_ms = -1, .timeout_ms = 60000};
    enum costreport_format format = COSTREPORT_TABLE;
    static const struct option options[] = {{"input", required_argument, NULL, 'I'},
                                            {"config", required_argument, NULL, 'c'},
                                            {"from", required_argument, NULL, 'f'},
                                            {"to", required_argument, NULL, 't'},
                                            {"by", required_argument, NULL, 'b'},
                                            {"format", required_argument, NULL, 'F'},
                                            {"timeout", required_argument, NULL, 'T'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'I':
            input = optarg;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'f':
        case 't':
            if (costreport_time_parse(optarg, opt == 'f' ? &range.from_ms : &range.to_ms) < 0) {
                fprintf(stderr,
                        "switchyard cost-report: --%s: expected an ISO 8601 UTC time "
                        "(2025-11-25T10:00:00Z) or ms since the epoch\n",
                        opt == 'f' ? "from" : "to");
                return 2;
            }
            break;
        case 'b':
            by_spec = optarg;
            break;
        case 'F':
            if (costreport_format_parse(optarg, &format) < 0) {
                fprintf(stderr, "switchyard cost-report: --format: expected table, csv or json\n");
                return 2;
            }
            break;
        case 'T':
            range.timeout_ms = strtoll(optarg, NULL, 10);
            if (range.timeout_ms <= 0) {
                fprintf(stderr, "switchyard cost-report: --timeout: expected milliseconds > 0\n");
                return 2;
            }
            break;
        case 'h':
            cost_report_usage(stdout);
            return 0;
        default:
            cost_report_usage(stderr);
            return 2;
        }
    }
    const char *wrong = NULL;
    if (optind < argc)
        wrong = "unexpected arguments";
    else if (!input == !config_path)
        wrong = "give either --input FILE or --config FILE";
    else if (input && (range.from_ms >= 0 || range.to_ms >= 0))
        wrong = "--from and --to select records of the topic (--config), not of a file";
    else if (range.from_ms >= 0 && range.to_ms >= 0 && range.to_ms <= range.from_ms)
        wrong = "--to must be after --from";
    if (wrong) {
        fprintf(stderr, "switchyard cost-report: %s\n", wrong);
        cost_report_usage(stderr);
        return 2;
    }
    struct costreport_by by;
    char why[512];
    if (costreport_by_parse(by_spec, &by, why, sizeof why) < 0) {
        fprintf(stderr, "switchyard cost-report: %s\n", why);
        return 2;
    }
    struct costreport *report = costreport_new(&by);
    costreport_by_release(&by);
    struct config *cfg = NULL;
    FILE *in = NULL;
    int rc = 1;
    if (!report)
        goto out;
    if (input) {
        in = strcmp(input, "-") == 0 ? stdin : fopen(input, "r");
        if (!in) {
            fprintf(stderr, "switchyard cost-report: %s: cannot open\n", input);
            goto out;
        }
        if (costread_file(in, input, report) < 0)
            goto out;
    } else {
        struct ydoc_errors errs = {0};
        cfg = config_load(config_path, &errs);
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        ydoc_errors_release(&errs);
        if (!cfg)
            goto out;
        if (costread_topic(cfg, &range, report, why, sizeof why) < 0) {
            fprintf(stderr, "switchyard cost-report: %s\n", why);
            goto out;
        }
    }
    if (costreport_write(report, format, stdout) < 0) {
        fprintf(stderr, "switchyard cost-report: the totals could not be written (or exceed "
                        "2^63 - 1)\n");
        goto out;
    }
    uint64_t bad = costreport_bad(report);
    if (bad)
        fprintf(stderr, "switchyard cost-report: %llu bad record%s (not counted in the totals)\n",
                (unsigned long long)bad, bad == 1 ? "" : "s");
    rc = bad ? 1 : 0;
out:
    if (in && in != stdin)
        fclose(in);
    config_free(cfg);
    costreport_free(report);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "cost-report") == 0) {
        if (check_environment() < 0)
            return 2;
        return cost_report(argc - 1, argv + 1);
    }
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

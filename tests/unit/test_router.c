/*
 * router: the table in tests/data/router/cases.txt, plus the invariant
 * that every taken candidate's worst case fits the budget.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "router.h"

#define ROUTER_DIR "tests/data/router/"

static struct request *make_request(const char *task, const char *budget, const char *max_tokens,
                                    long bytes)
{
    size_t size = (size_t)bytes + 256;
    char *json = malloc(size);
    int n = snprintf(json, size,
                     "{\"id\":\"r\",\"task\":\"%s\",\"messages\":[{\"role\":\"user\","
                     "\"content\":\"",
                     task);
    memset(json + n, 'x', (size_t)bytes);
    n += (int)bytes;
    n += snprintf(json + n, size - (size_t)n, "\"}]");
    if (strcmp(budget, "-") != 0)
        n += snprintf(json + n, size - (size_t)n, ",\"budget_usd\":%s", budget);
    if (strcmp(max_tokens, "-") != 0)
        n += snprintf(json + n, size - (size_t)n, ",\"max_tokens\":%s", max_tokens);
    snprintf(json + n, size - (size_t)n, "}");
    struct request *req = NULL;
    struct err e = {0};
    if (request_decode(json, strlen(json), 1 << 20, &req, &e) < 0)
        fprintf(stderr, "bad test request: %s\n", e.msg);
    free(json);
    return req;
}

/* "OUTCOME MODEL=N ..." for the plan, to compare with the table */
static void describe(const struct policy *p, const struct plan *plan, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "%s", router_outcome_name(plan->outcome));
    for (size_t i = 0; i < plan->ncandidates && used < size; i++) {
        const struct router_candidate *c = &plan->candidates[i];
        if (c->decision == ROUTER_TAKEN)
            used += (size_t)snprintf(out + used, size - used, " %s=%u", p->models[c->model].name,
                                     c->max_tokens);
        else
            used += (size_t)snprintf(out + used, size - used, " %s=skip", p->models[c->model].name);
    }
}

static struct policy *load_policy(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, ROUTER_DIR "%s.yaml", name);
    struct ydoc_errors errs = {0};
    struct policy *p = policy_load(path, NULL, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    ydoc_errors_release(&errs);
    return p;
}

void test_router(void)
{
    struct policy *downgrade = load_policy("downgrade"), *reject = load_policy("reject");
    ok(downgrade && reject, "router policies load");
    FILE *f = fopen(ROUTER_DIR "cases.txt", "r");
    ok(f != NULL, "cases.txt opens");
    if (!f || !downgrade || !reject)
        goto out;
    char line[512];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        char pol[32], task[80], budget[32], max_tokens[32], expected[400];
        long bytes;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "%31s %79s %31s %31s %ld -> %399[^\n]", pol, task, budget, max_tokens,
                   &bytes, expected) != 6) {
            ok(0, "unreadable case: %s", line);
            continue;
        }
        cases++;
        struct policy *p = strcmp(pol, "reject") == 0 ? reject : downgrade;
        struct request *req = make_request(task, budget, max_tokens, bytes);
        if (!ok(req != NULL, "case request decodes: %s", line))
            continue;
        struct plan plan;
        router_plan(p, req, &plan);
        char got[400];
        describe(p, &plan, got, sizeof got);
        ok(strcmp(got, expected) == 0, "%s\n    expected: %s\n    got:      %s", line, expected,
           got);
        int fits = 1, explained = plan.outcome == ROUTER_OK || plan.reason[0] != '\0';
        for (size_t i = 0; i < plan.ncandidates; i++) {
            const struct router_candidate *c = &plan.candidates[i];
            explained &= c->reason[0] != '\0';
            if (c->decision == ROUTER_TAKEN)
                fits &= c->worst_case_nusd <= plan.budget_nusd;
        }
        ok(fits, "%s: every taken candidate's worst case fits the budget", line);
        ok(explained, "%s: every decision has a reason", line);
        if (strcmp(task, "no-such-task") == 0 && plan.outcome == ROUTER_OK)
            ok(plan.used_default, "%s: unknown task used the default route", line);
        request_free(req);
    }
    ok(cases >= 20, "at least 20 router cases (%d)", cases);
out:
    if (f)
        fclose(f);
    policy_release(downgrade);
    policy_release(reject);
}

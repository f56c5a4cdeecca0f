/*
 * router: the table in tests/data/router/cases.txt, plus the invariants
 * that every taken candidate's worst case fits the budget (and holds the
 * reasoning budget), that every decision has a reason, that a candidate
 * skipped for a field says exactly "unsupported: FIELD", and that a
 * pinned plan says so in its other reasons; that reasons name a tier or
 * a cache-write rate when one priced the worst case (caching.yaml), and
 * that a tier follows the prompt's byte bound.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "request_flags.h"
#include "router.h"

#define ROUTER_DIR "tests/data/router/"
#define ROUTER_MAX_POLICIES 8

struct router_table {
    char names[ROUTER_MAX_POLICIES][32];
    struct policy *policies[ROUTER_MAX_POLICIES];
    size_t npolicies;
    int cases;
};

/* The policy tests/data/router/NAME.yaml, loaded once. */
static struct policy *router_policy(struct router_table *t, const char *name)
{
    for (size_t i = 0; i < t->npolicies; i++)
        if (strcmp(t->names[i], name) == 0)
            return t->policies[i];
    if (t->npolicies == ROUTER_MAX_POLICIES)
        return NULL;
    char path[256];
    snprintf(path, sizeof path, ROUTER_DIR "%s.yaml", name);
    struct ydoc_errors errs = {0};
    struct policy *p = policy_load(path, NULL, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    ydoc_errors_release(&errs);
    ok(p != NULL, "router policy %s loads", name);
    snprintf(t->names[t->npolicies], sizeof t->names[0], "%s", name);
    t->policies[t->npolicies++] = p;
    return p;
}

/* "0.002805" USD -> nano-USD, exactly; -1 when it is no plain decimal
 * with at most 9 decimals. */
static int router_budget(const char *s, uint64_t *nusd)
{
    uint64_t whole = 0, frac = 0, scale = 1000000000u;
    for (; *s >= '0' && *s <= '9'; s++)
        whole = whole * 10 + (uint64_t)(*s - '0');
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9' && scale > 1; s++)
            scale /= 10, frac += (uint64_t)(*s - '0') * scale;
    *nusd = whole * 1000000000u + frac;
    return *s == '\0' ? 0 : -1;
}

/* "OUTCOME MODEL=N|MODEL=skip|MODEL=unsupported:FIELD ..." for the plan,
 * to compare with the table */
static void describe(const struct policy *p, const struct plan *plan, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "%s", router_outcome_name(plan->outcome));
    for (size_t i = 0; i < plan->ncandidates && used < size; i++) {
        const struct router_candidate *c = &plan->candidates[i];
        const char *name = p->models[c->model].name;
        if (c->decision == ROUTER_TAKEN)
            used += (size_t)snprintf(out + used, size - used, " %s=%u", name, c->max_tokens);
        else if (c->unsupported != POLICY_NFIELDS)
            used += (size_t)snprintf(out + used, size - used, " %s=unsupported:%s", name,
                                     policy_field_name(c->unsupported));
        else
            used += (size_t)snprintf(out + used, size - used, " %s=skip", name);
    }
}

/* The invariants every plan keeps, whatever the table expects. */
static void router_invariants(const struct policy *p, const struct request *req,
                              const struct plan *plan, const char *line)
{
    int fits = 1, explained = plan->outcome == ROUTER_OK || plan->reason[0] != '\0';
    int exact = 1, pinned = 1, thinks = 1;
    /* the plan's block holds its candidates and their reasons, no more
     * (not POLICY_MAX_CANDIDATES reasons at full size): every request in
     * flight keeps one */
    size_t need = plan->ncandidates * sizeof *plan->candidates + strlen(plan->reason) + 1;
    const char *end = (const char *)plan->block + plan->ncandidates * sizeof *plan->candidates;
    for (size_t i = 0; i < plan->ncandidates; i++) {
        const struct router_candidate *c = &plan->candidates[i];
        need += strlen(c->reason) + 1;
        explained &= c->reason[0] != '\0';
        if (c->decision == ROUTER_TAKEN) {
            fits &= c->worst_case_nusd <= plan->budget_nusd;
            thinks &= c->reasoning_budget == req->reasoning_budget &&
                      (!req->reasoning_budget ||
                       c->max_tokens >= req->reasoning_budget + p->min_output_tokens);
        }
        if (c->unsupported != POLICY_NFIELDS) {
            char want[64];
            snprintf(want, sizeof want, "unsupported: %s", policy_field_name(c->unsupported));
            exact &= c->decision == ROUTER_SKIPPED && strcmp(c->reason, want) == 0;
        } else if (plan->pinned)
            pinned &= strncmp(c->reason, "pinned", 6) == 0;
    }
    ok(fits, "%s: every taken candidate's worst case fits the budget", line);
    ok(thinks, "%s: every taken candidate sends the reasoning budget and holds it", line);
    ok(explained, "%s: every decision has a reason", line);
    ok(exact, "%s: a candidate skipped for a field says exactly \"unsupported: FIELD\"", line);
    ok(pinned, "%s: a pinned plan's other reasons start with \"pinned\"", line);
    ok(plan->pinned == (req->nmodels > 0), "%s: the plan records whether it is pinned", line);
    int inside = plan->reason >= end && plan->reason < (const char *)plan->block + need;
    for (size_t i = 0; i < plan->ncandidates; i++)
        inside &= plan->candidates[i].reason >= end &&
                  plan->candidates[i].reason < (const char *)plan->block + need;
    ok(plan->block && inside && malloc_usable_size(plan->block) < need + 32,
       "%s: one block of %zu bytes holds the plan (%zu usable)", line, need,
       plan->block ? malloc_usable_size(plan->block) : 0);
}

static void router_case(char *line, int lineno, void *ctx)
{
    struct router_table *t = ctx;
    char copy[600];
    snprintf(copy, sizeof copy, "cases.txt:%d: %s", lineno, line);
    char *arrow = strstr(line, " -> ");
    char pol[32], task[80], budget[32], max_tokens[32], flags[400] = "-";
    long bytes;
    if (!arrow) {
        ok(0, "%s: unreadable case", copy);
        return;
    }
    *arrow = '\0';
    char *expected = arrow + 4, *reason = strstr(expected, " | ");
    if (reason) {
        *reason = '\0';
        reason += 3;
    }
    int n =
        sscanf(line, "%31s %79s %31s %31s %ld %399s", pol, task, budget, max_tokens, &bytes, flags);
    struct policy *p = router_policy(t, pol);
    struct request_flags rf;
    uint64_t nusd = 0;
    if (!ok((n == 5 || n == 6) && bytes >= 0 && p, "%s: readable, its policy loads", copy) ||
        !ok(request_flags_fill(&rf, task, (size_t)bytes, flags) == 0, "%s: flags read", copy) ||
        !ok(strcmp(budget, "-") == 0 || router_budget(budget, &nusd) == 0, "%s: budget", copy))
        return;
    t->cases++;
    struct request *req = &rf.req;
    if (strcmp(budget, "-") != 0)
        req->has_budget = 1, req->budget_nusd = nusd;
    if (strcmp(max_tokens, "-") != 0)
        req->max_tokens = (uint32_t)strtoul(max_tokens, NULL, 10);
    struct plan plan;
    router_plan(p, req, &plan);
    char got[400];
    describe(p, &plan, got, sizeof got);
    ok(strcmp(got, expected) == 0, "%s\n    expected: %s\n    got:      %s", copy, expected, got);
    if (reason)
        ok(strstr(plan.reason, reason) != NULL, "%s\n    reason should hold: %s\n    got: %s", copy,
           reason, plan.reason);
    router_invariants(p, req, &plan, copy);
    if (strcmp(task, "no-such-task") == 0 && plan.outcome == ROUTER_OK && !plan.pinned)
        ok(plan.used_default, "%s: unknown task used the default route", copy);
    router_plan_release(&plan);
    router_plan_release(&plan);
    ok(!plan.block && !plan.candidates && plan.ncandidates == 0,
       "%s: a released plan is empty, and releasing it again is safe", copy);
}

/* The reason of candidate `name` in plan. */
static const char *router_reason(const struct policy *p, const struct plan *plan, const char *name)
{
    for (size_t i = 0; i < plan->ncandidates; i++)
        if (strcmp(p->models[plan->candidates[i].model].name, name) == 0)
            return plan->candidates[i].reason;
    return "";
}

/* Reasons say what priced a worst case beyond the base rates; a tier
 * applies when the strict byte bound of the prompt may exceed its
 * threshold, whatever the estimate says. */
static void router_pricing(struct router_table *t)
{
    struct policy *p = router_policy(t, "caching");
    struct request_flags rf;
    char none[] = "-";
    if (!p || request_flags_fill(&rf, "chat", 293, none) < 0)
        return;
    struct plan plan;
    router_plan(p, &rf.req, &plan);
    ok(strstr(router_reason(p, &plan, "claude"), "; input at the one-hour cache-write rate"),
       "claude's reason names the one-hour write rate: %s", router_reason(p, &plan, "claude"));
    ok(strstr(router_reason(p, &plan, "br"), "; input at the cache-write rate"),
       "Bedrock's reason names the write rate: %s", router_reason(p, &plan, "br"));
    ok(!strstr(router_reason(p, &plan, "gpt"), "cache-write") &&
           !strstr(router_reason(p, &plan, "nowrite"), "cache-write") &&
           !strstr(router_reason(p, &plan, "claude"), "tier"),
       "no write rate where none is billed, no tier where none is: %s",
       router_reason(p, &plan, "gpt"));

    /* a tier above 200,000 tokens at twice every rate, on nowrite: 199,993
     * bytes is a prompt of at most 200,000 tokens, one byte more may
     * exceed it */
    struct policy_model *m = &p->models[1];
    struct cost_prices saved = m->prices;
    m->prices.ntiers = 1;
    m->prices.tiers[0].above_input_tokens = 200000;
    for (int c = 0; c < COST_NCAT; c++)
        m->prices.tiers[0].nusd_per_mtok[c] = 2 * m->prices.nusd_per_mtok[c];
    rf.req.has_budget = 1;
    rf.req.budget_nusd = 10000000000u; /* 10 USD */
    rf.req.content_bytes = 199993;
    router_plan_release(&plan);
    router_plan(p, &rf.req, &plan);
    /* (10^16 - 200000 x 3 x 10^9) / (15 x 10^9) = 626666 */
    ok(plan.prompt_bound == 200000 && plan.candidates[1].max_tokens == 626666 &&
           !strstr(plan.candidates[1].reason, "tier"),
       "at the threshold: base rates (%u, %s)", plan.candidates[1].max_tokens,
       plan.candidates[1].reason);
    rf.req.content_bytes = 199994;
    router_plan_release(&plan);
    router_plan(p, &rf.req, &plan);
    /* (10^16 - 200001 x 6 x 10^9) / (30 x 10^9) = 293333 */
    ok(plan.candidates[1].max_tokens == 293333 &&
           strstr(plan.candidates[1].reason, "; at tier 1 (the prompt may exceed 200000 tokens)"),
       "one token over: tier 1, and the reason says so (%u, %s)", plan.candidates[1].max_tokens,
       plan.candidates[1].reason);
    uint32_t fit = router_fit(p, m, plan.input_tokens, plan.prompt_bound, 0, 0, 10000000000u);
    ok(fit == 293333, "router_fit prices it the same (%u)", fit);
    /* at 3 bytes a token the estimate is 66,672 tokens, but the prompt may
     * hold 200,001: the tier applies */
    p->input_bytes_per_token = 3;
    router_plan_release(&plan);
    router_plan(p, &rf.req, &plan);
    ok(plan.input_tokens == 66672 && plan.prompt_bound == 200001 &&
           strstr(plan.candidates[1].reason, "at tier 1"),
       "the tier follows the byte bound, not the estimate (%llu, %llu: %s)",
       (unsigned long long)plan.input_tokens, (unsigned long long)plan.prompt_bound,
       plan.candidates[1].reason);
    p->input_bytes_per_token = 1;
    m->prices = saved;
    router_plan_release(&plan);
}

void test_router(void)
{
    struct router_table t = {0};
    check_each_line(ROUTER_DIR "cases.txt", router_case, &t);
    ok(t.cases >= 45, "at least 45 router cases (%d)", t.cases);

    /* the estimate: bytes, framing and images at the policy's price */
    struct policy *p = router_policy(&t, "caps");
    struct request_flags rf;
    char flags[] = "image_data,image_url=https://example.com/x.png";
    if (p && request_flags_fill(&rf, "chat", 300, flags) == 0) {
        ok(router_estimate_input(p, &rf.req) == 100 + 4 + 3 + 2 * 1000,
           "two images cost 2 x image_tokens of input (%llu)",
           (unsigned long long)router_estimate_input(p, &rf.req));
        ok(p->image_tokens == 1000, "caps.yaml sets image_tokens 1000");
    }
    struct policy *d = router_policy(&t, "downgrade");
    ok(d && d->image_tokens == 1600, "image_tokens defaults to 1600");

    router_pricing(&t);

    /* a model's provider type comes from worker.yaml; without it, from a
     * provider named after a type, else unknown */
    struct ydoc_errors errs = {0};
    struct config *cfg = config_load("tests/data/config/pressure-worker.yaml", &errs);
    const char *pp = "tests/data/config/pressure-policy.yaml";
    struct policy *with = cfg ? policy_load(pp, cfg, &errs) : NULL;
    struct policy *without = policy_load(pp, NULL, &errs);
    ok(with && without && errs.count == 0, "pressure-policy.yaml loads with and without a config");
    if (with && without && with->nmodels == 4 && without->nmodels == 4) {
        ok(with->models[2].type == PROVIDER_OPENAI && with->models[1].type == PROVIDER_ANTHROPIC,
           "with worker.yaml: provider \"local\" is of its configured type openai");
        ok(without->models[2].type == PROVIDER_NTYPES && without->models[0].type == PROVIDER_OPENAI,
           "without: \"local\" has no type, \"openai\" is openai");
    }
    policy_release(with);
    policy_release(without);
    config_free(cfg);
    ydoc_errors_release(&errs);
    for (size_t i = 0; i < t.npolicies; i++)
        policy_release(t.policies[i]);
}

/*
 * router: (policy, request) -> plan. Pure and deterministic: the same
 * inputs always give the same plan, so the table in tests/data/router/
 * pins every decision. Spend never exceeds the budget when the provider
 * honours max_tokens and the input estimate holds: every taken candidate's
 * worst case is computed exactly and checked against the budget, at the
 * dearest rate any token may be billed at (a tier the prompt may reach, a
 * cache write, reasoning inside the output cap); tests/unit/test_budget.c
 * checks it over random policies and requests. A
 * candidate that cannot honour a field of the request is never taken:
 * the router must not send what a provider would refuse or silently drop.
 */
#include "router.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/provider.h"

#define ROUTER_TOKENS_PER_MESSAGE 4 /* role and framing, per turn */
#define ROUTER_TOKENS_REPLY 3       /* priming of the assistant's reply */
#define ROUTER_MAX_TOKENS_CAP 1000000u
#define ROUTER_MORE_ROOM 40 /* kept at the end of a listing reason for "and N more" */

const char *router_outcome_name(enum router_outcome o)
{
    switch (o) {
    case ROUTER_OK:
        return "ok";
    case ROUTER_NO_ROUTE:
        return "no_route";
    case ROUTER_OVER_BUDGET:
        return "over_budget";
    case ROUTER_UNKNOWN_MODEL:
        return "unknown_model";
    case ROUTER_UNSUPPORTED:
        return "unsupported";
    }
    return "unknown";
}

uint64_t router_estimate_input(const struct policy *policy, const struct request *req)
{
    uint64_t bpt = policy->input_bytes_per_token;
    uint64_t turns = req->nmessages + (req->system ? 1 : 0);
    return (req->content_bytes + bpt - 1) / bpt + turns * ROUTER_TOKENS_PER_MESSAGE +
           ROUTER_TOKENS_REPLY + (uint64_t)req->nimages * policy->image_tokens;
}

uint64_t router_prompt_bound(const struct policy *policy, const struct request *req)
{
    uint64_t turns = req->nmessages + (req->system ? 1 : 0);
    return (uint64_t)req->content_bytes + turns * ROUTER_TOKENS_PER_MESSAGE + ROUTER_TOKENS_REPLY +
           (uint64_t)req->nimages * policy->image_tokens;
}

void router_worst_rates(const struct policy_model *model, uint64_t prompt_bound,
                        struct cost_prices *out)
{
    cost_worst_rates(&model->prices, prompt_bound, model->cache_writes, out);
    /* any provider may bill part of the prompt as a cache read */
    if (out->nusd_per_mtok[COST_CACHE_READ] > out->nusd_per_mtok[COST_INPUT])
        out->nusd_per_mtok[COST_INPUT] = out->nusd_per_mtok[COST_CACHE_READ];
}

uint64_t router_worst_case(const struct policy_model *model, uint64_t input_tokens,
                           uint64_t prompt_bound, uint64_t max_output)
{
    struct cost_prices w;
    router_worst_rates(model, prompt_bound, &w);
    return cost_worst_case(&w, input_tokens, max_output);
}

/* The output cap a model allows on its own, whatever the budget. */
static uint64_t router_model_cap(const struct policy_model *model, uint32_t requested_max)
{
    uint64_t cap = ROUTER_MAX_TOKENS_CAP;
    if (model->max_output_tokens && model->max_output_tokens < cap)
        cap = model->max_output_tokens;
    if (requested_max && requested_max < cap)
        cap = requested_max;
    return cap;
}

uint32_t router_fit(const struct policy *policy, const struct policy_model *model,
                    uint64_t input_tokens, uint64_t prompt_bound, uint32_t requested_max,
                    uint32_t reasoning_budget, uint64_t budget_nusd)
{
    struct cost_prices w;
    router_worst_rates(model, prompt_bound, &w);
    uint64_t affordable = cost_max_output(&w, input_tokens, budget_nusd);
    uint64_t cap = router_model_cap(model, requested_max);
    /* thinking is inside the output cap: the answer still needs its minimum */
    uint64_t need = (uint64_t)reasoning_budget + policy->min_output_tokens;
    if (reasoning_budget && cap < need)
        return 0;
    if (requested_max) /* the caller asked for this many: all of it must fit */
        return affordable >= cap ? (uint32_t)cap : 0;
    if (affordable < need || cap < need)
        return 0;
    return (uint32_t)(affordable < cap ? affordable : cap);
}

/* What, beyond the base rates, priced a candidate's worst case: "; at
 * tier 1 (the prompt may exceed 200000 tokens)", "; input at the one-hour
 * cache-write rate", both, or "". */
static void router_pricing_note(const struct policy_model *m, uint64_t prompt_bound, char *out,
                                size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    unsigned tier = cost_tier_for(&m->prices, prompt_bound, NULL);
    if (tier)
        used = (size_t)snprintf(out, size, "; at tier %u (the prompt may exceed %llu tokens)", tier,
                                (unsigned long long)m->prices.tiers[tier - 1].above_input_tokens);
    struct cost_prices w, plain;
    router_worst_rates(m, prompt_bound, &w);
    cost_worst_rates(&m->prices, prompt_bound, 0, &plain);
    uint64_t in = w.nusd_per_mtok[COST_INPUT];
    if (!m->cache_writes || used >= size || in <= plain.nusd_per_mtok[COST_INPUT] ||
        in == plain.nusd_per_mtok[COST_CACHE_READ])
        return;
    snprintf(out + used, size - used, "; input at the %scache-write rate",
             in == w.nusd_per_mtok[COST_CACHE_WRITE] ? "" : "one-hour ");
}

static void router_explain_skip(const struct policy *policy, const struct policy_model *model,
                                uint64_t input_tokens, uint64_t prompt_bound,
                                const struct request *req, uint64_t budget_nusd, const char *prefix,
                                char *out, size_t size)
{
    char note[112];
    router_pricing_note(model, prompt_bound, note, sizeof note);
    uint32_t requested_max = req->max_tokens, reasoning = req->reasoning_budget;
    uint64_t cap = router_model_cap(model, requested_max);
    uint64_t need = requested_max ? cap : policy->min_output_tokens;
    if (reasoning && !requested_max)
        need += reasoning;
    if (router_worst_case(model, input_tokens, prompt_bound, 0) > budget_nusd)
        snprintf(out, size,
                 "%sover budget: %llu input tokens alone cost more than the budget of %llu "
                 "nUSD%s",
                 prefix, (unsigned long long)input_tokens, (unsigned long long)budget_nusd, note);
    else if (reasoning && cap < (uint64_t)reasoning + policy->min_output_tokens)
        snprintf(out, size,
                 "%sover budget: the reasoning budget of %u tokens and %u output tokens do not "
                 "fit %s of %llu",
                 prefix, reasoning, policy->min_output_tokens,
                 requested_max && requested_max == cap ? "max_tokens" : "max_output_tokens",
                 (unsigned long long)cap);
    else if (reasoning)
        snprintf(out, size,
                 "%sover budget: worst case for %llu output tokens (reasoning budget %u "
                 "included) is %llu nUSD, budget %llu nUSD%s",
                 prefix, (unsigned long long)need, reasoning,
                 (unsigned long long)router_worst_case(model, input_tokens, prompt_bound, need),
                 (unsigned long long)budget_nusd, note);
    else
        snprintf(out, size,
                 "%sover budget: worst case for %llu output tokens is %llu nUSD, budget %llu "
                 "nUSD%s",
                 prefix, (unsigned long long)need,
                 (unsigned long long)router_worst_case(model, input_tokens, prompt_bound, need),
                 (unsigned long long)budget_nusd, note);
}

/* The first field the model cannot honour as req uses it, or
 * POLICY_NFIELDS: the policy's own list for the model, then its provider
 * type's rules (none when the type is unknown). */
static enum policy_field router_unsupported(const struct policy_model *m, const struct request *req)
{
    for (int f = 0; f < POLICY_NFIELDS; f++)
        if ((m->unsupported & (1u << f)) && provider_field_used((enum policy_field)f, req))
            return (enum policy_field)f;
    const char *name =
        m->type < PROVIDER_NTYPES ? provider_unsupported(m->type, m->model, req) : NULL;
    for (int f = 0; name && f < POLICY_NFIELDS; f++)
        if (strcmp(policy_field_name((enum policy_field)f), name) == 0)
            return (enum policy_field)f;
    return POLICY_NFIELDS;
}

/* Appends to a reason only what fits whole, keeping `keep` bytes free;
 * 0, or -1 when it did not fit (nothing appended). */
__attribute__((format(printf, 5, 6))) static int router_append(char *out, size_t size, size_t keep,
                                                               size_t *used, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *used, size - *used, fmt, ap);
    va_end(ap);
    if (n < 0 || *used + (size_t)n + keep >= size) {
        out[*used] = '\0';
        return -1;
    }
    *used += (size_t)n;
    return 0;
}

/* "no candidate can honour the request: seed (opus, sonnet); image_url
 * (gemini)": every field with the candidates it ruled out, as far as the
 * reason holds, then how many candidates were left unnamed. */
static void router_explain_unsupported(const struct policy *policy, const struct plan *plan,
                                       char *out, size_t size)
{
    size_t used = 0, unnamed = plan->ncandidates;
    int groups = 0, in_group = 0;
    router_append(out, size, 0, &used, "no candidate can honour the request:");
    for (int f = 0; f < POLICY_NFIELDS; f++) {
        for (size_t i = 0; i < plan->ncandidates; i++) {
            const struct router_candidate *c = &plan->candidates[i];
            const char *name = policy->models[c->model].name;
            if (c->unsupported != (enum policy_field)f)
                continue;
            int rc = in_group ? router_append(out, size, ROUTER_MORE_ROOM, &used, ", %.64s", name)
                              : router_append(out, size, ROUTER_MORE_ROOM, &used, "%s%s (%.64s",
                                              groups ? "; " : " ",
                                              policy_field_name(c->unsupported), name);
            if (rc < 0)
                goto more;
            in_group = 1;
            unnamed--;
        }
        if (in_group) {
            router_append(out, size, 0, &used, ")");
            in_group = 0;
            groups++;
        }
    }
    return;
more:
    snprintf(out + used, size - used, "%s ... and %zu more candidates", in_group ? ")" : "",
             unnamed);
}

/* What router_plan decides, before it is packed into the plan's block:
 * every reason at its full bound, on the stack. */
struct router_scratch {
    struct plan plan; /* candidates points at cand */
    struct router_candidate cand[POLICY_MAX_CANDIDATES];
    char reasons[POLICY_MAX_CANDIDATES][ROUTER_REASON_MAX];
    char reason[ROUTER_REASON_MAX];
};

static void router_decide(const struct policy *policy, const struct request *req,
                          struct router_scratch *s)
{
    struct plan *plan = &s->plan;
    memset(s, 0, sizeof *s);
    plan->candidates = s->cand;
    plan->budget_nusd = req->has_budget ? req->budget_nusd : policy->default_budget_nusd;
    plan->input_tokens = router_estimate_input(policy, req);
    plan->prompt_bound = router_prompt_bound(policy, req);
    plan->pinned = req->nmodels > 0;

    const struct policy_route *route = policy_route_find(policy, req->task);
    if (!route) {
        route = policy->default_route;
        plan->used_default = 1;
    }
    plan->route = route;
    if (!route && !plan->pinned) {
        plan->outcome = ROUTER_NO_ROUTE;
        snprintf(s->reason, sizeof s->reason,
                 "no route for task \"%.64s\" and the policy has no default route", req->task);
        return;
    }
    if (plan->pinned)
        plan->used_default = 0; /* the route only lends its on_rate_limit */

    size_t models[POLICY_MAX_CANDIDATES], nmodels = 0, nunknown = 0;
    const char *unknown = NULL;
    if (!plan->pinned) {
        memcpy(models, route->candidates, route->ncandidates * sizeof *models);
        nmodels = route->ncandidates;
    }
    for (size_t i = 0; i < req->nmodels && i < POLICY_MAX_CANDIDATES; i++) {
        const struct policy_model *m = policy_model_find(policy, req->models[i]);
        if (m)
            models[nmodels++] = (size_t)(m - policy->models);
        else if (nunknown++ == 0)
            unknown = req->models[i];
    }
    if (nunknown) {
        plan->outcome = ROUTER_UNKNOWN_MODEL;
        snprintf(s->reason, sizeof s->reason,
                 "the request pins model \"%.64s\", which the policy does not have (%zu of "
                 "the %zu pinned names are unknown)",
                 unknown, nunknown, req->nmodels);
        return;
    }

    const char *prefix = plan->pinned ? "pinned; " : "";
    size_t taken = 0, nunsupported = 0;
    const struct policy_model *best = NULL; /* first candidate that honours the request */
    int best_skipped = 0;
    for (size_t i = 0; i < nmodels; i++) {
        char *reason = s->reasons[plan->ncandidates];
        struct router_candidate *c = &plan->candidates[plan->ncandidates++];
        const struct policy_model *m = &policy->models[models[i]];
        c->model = models[i];
        c->unsupported = POLICY_NFIELDS;
        if (best && best_skipped && policy->over_budget == POLICY_REJECT) {
            c->decision = ROUTER_SKIPPED;
            snprintf(reason, ROUTER_REASON_MAX,
                     "%snot considered: \"%.64s\" is over budget and over_budget is reject", prefix,
                     best->name);
            continue;
        }
        if ((c->unsupported = router_unsupported(m, req)) != POLICY_NFIELDS) {
            /* exact, even when pinned: consumers match on it */
            c->decision = ROUTER_SKIPPED;
            snprintf(reason, ROUTER_REASON_MAX, "unsupported: %s",
                     policy_field_name(c->unsupported));
            nunsupported++;
            continue;
        }
        uint32_t cap = router_fit(policy, m, plan->input_tokens, plan->prompt_bound,
                                  req->max_tokens, req->reasoning_budget, plan->budget_nusd);
        if (!best)
            best = m, best_skipped = cap == 0;
        if (cap == 0) {
            c->decision = ROUTER_SKIPPED;
            router_explain_skip(policy, m, plan->input_tokens, plan->prompt_bound, req,
                                plan->budget_nusd, prefix, reason, ROUTER_REASON_MAX);
            continue;
        }
        c->decision = ROUTER_TAKEN;
        c->max_tokens = cap;
        c->reasoning_budget = req->reasoning_budget;
        c->worst_case_nusd = router_worst_case(m, plan->input_tokens, plan->prompt_bound, cap);
        char note[112];
        router_pricing_note(m, plan->prompt_bound, note, sizeof note);
        snprintf(reason, ROUTER_REASON_MAX,
                 "%sfits: up to %u output tokens, worst case %llu of %llu nUSD%s", prefix, cap,
                 (unsigned long long)c->worst_case_nusd, (unsigned long long)plan->budget_nusd,
                 note);
        taken++;
    }
    if (taken > 0) {
        plan->outcome = ROUTER_OK;
        return;
    }
    if (nunsupported == plan->ncandidates) {
        plan->outcome = ROUTER_UNSUPPORTED;
        router_explain_unsupported(policy, plan, s->reason, sizeof s->reason);
        return;
    }
    plan->outcome = ROUTER_OVER_BUDGET;
    char also[64] = "";
    if (nunsupported)
        snprintf(also, sizeof also, " (%zu cannot honour the request)", nunsupported);
    if (req->reasoning_budget && req->max_tokens &&
        req->max_tokens < (uint64_t)req->reasoning_budget + policy->min_output_tokens)
        snprintf(s->reason, sizeof s->reason,
                 "over budget: max_tokens %u cannot hold the reasoning budget of %u tokens and "
                 "%u output tokens",
                 req->max_tokens, req->reasoning_budget, policy->min_output_tokens);
    else if (policy->over_budget == POLICY_REJECT && best)
        snprintf(s->reason, sizeof s->reason,
                 "over budget: \"%.64s\" does not fit %llu nUSD and over_budget is reject%s",
                 best->name, (unsigned long long)plan->budget_nusd, also);
    else if (plan->pinned)
        snprintf(s->reason, sizeof s->reason,
                 "over budget: none of the %zu pinned models fits %llu nUSD%s", plan->ncandidates,
                 (unsigned long long)plan->budget_nusd, also);
    else
        snprintf(s->reason, sizeof s->reason,
                 "over budget: none of the %zu candidates for task \"%.64s\" fits %llu nUSD%s",
                 plan->ncandidates, req->task, (unsigned long long)plan->budget_nusd, also);
}

int router_plan(const struct policy *policy, const struct request *req, struct plan *plan)
{
    /* decided at full bounds on the stack, then kept at the size it needs:
     * a plan lives for as long as its request is in flight */
    struct router_scratch s;
    router_decide(policy, req, &s);
    size_t n = s.plan.ncandidates, text = strlen(s.reason) + 1;
    for (size_t i = 0; i < n; i++)
        text += strlen(s.reasons[i]) + 1;
    *plan = s.plan;
    plan->candidates = NULL;
    plan->block = malloc(n * sizeof *plan->candidates + text);
    if (!plan->block) {
        memset(plan, 0, sizeof *plan);
        plan->outcome = ROUTER_NO_ROUTE;
        plan->reason = "out of memory";
        return -1;
    }
    plan->candidates = n ? plan->block : NULL;
    char *at = (char *)plan->block + n * sizeof *plan->candidates;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(s.reasons[i]) + 1;
        plan->candidates[i] = s.cand[i];
        plan->candidates[i].reason = memcpy(at, s.reasons[i], len);
        at += len;
    }
    plan->reason = memcpy(at, s.reason, strlen(s.reason) + 1);
    return 0;
}

void router_plan_release(struct plan *plan)
{
    free(plan->block);
    memset(plan, 0, sizeof *plan);
}

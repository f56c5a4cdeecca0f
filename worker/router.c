/*
 * router: (policy, request) -> plan. Pure and deterministic: the same
 * inputs always give the same plan, so the table in tests/data/router/
 * pins every decision. Spend never exceeds the budget when the provider
 * honours max_tokens and the input estimate holds: every taken candidate's
 * worst case is computed exactly and checked against the budget.
 */
#include "router.h"

#include <stdio.h>
#include <string.h>

#define ROUTER_TOKENS_PER_MESSAGE 4 /* role and framing, per turn */
#define ROUTER_TOKENS_REPLY 3       /* priming of the assistant's reply */
#define ROUTER_MAX_TOKENS_CAP 1000000u

const char *router_outcome_name(enum router_outcome o)
{
    switch (o) {
    case ROUTER_OK:
        return "ok";
    case ROUTER_NO_ROUTE:
        return "no_route";
    case ROUTER_OVER_BUDGET:
        return "over_budget";
    }
    return "unknown";
}

uint64_t router_estimate_input(const struct policy *policy, const struct request *req)
{
    uint64_t bpt = policy->input_bytes_per_token;
    uint64_t turns = req->nmessages + (req->system ? 1 : 0);
    return (req->content_bytes + bpt - 1) / bpt + turns * ROUTER_TOKENS_PER_MESSAGE +
           ROUTER_TOKENS_REPLY;
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
                    uint64_t input_tokens, uint32_t requested_max, uint64_t budget_nusd)
{
    uint64_t affordable = cost_max_output(&model->prices, input_tokens, budget_nusd);
    uint64_t cap = router_model_cap(model, requested_max);
    if (requested_max) /* the caller asked for this many: all of it must fit */
        return affordable >= cap ? (uint32_t)cap : 0;
    if (affordable < policy->min_output_tokens || cap < policy->min_output_tokens)
        return 0;
    return (uint32_t)(affordable < cap ? affordable : cap);
}

static void router_explain_skip(const struct policy *policy, const struct policy_model *model,
                                uint64_t input_tokens, uint32_t requested_max, uint64_t budget_nusd,
                                char *out, size_t size)
{
    uint64_t need =
        requested_max ? router_model_cap(model, requested_max) : policy->min_output_tokens;
    if (cost_worst_case(&model->prices, input_tokens, 0) > budget_nusd)
        snprintf(out, size,
                 "over budget: %llu input tokens alone cost more than the budget of %llu nUSD",
                 (unsigned long long)input_tokens, (unsigned long long)budget_nusd);
    else
        snprintf(out, size,
                 "over budget: worst case for %llu output tokens is %llu nUSD, budget %llu nUSD",
                 (unsigned long long)need,
                 (unsigned long long)cost_worst_case(&model->prices, input_tokens, need),
                 (unsigned long long)budget_nusd);
}

void router_plan(const struct policy *policy, const struct request *req, struct plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->budget_nusd = req->has_budget ? req->budget_nusd : policy->default_budget_nusd;
    plan->input_tokens = router_estimate_input(policy, req);

    const struct policy_route *route = policy_route_find(policy, req->task);
    if (!route) {
        route = policy->default_route;
        plan->used_default = 1;
    }
    if (!route) {
        plan->outcome = ROUTER_NO_ROUTE;
        snprintf(plan->reason, sizeof plan->reason,
                 "no route for task \"%.64s\" and the policy has no default route", req->task);
        return;
    }
    plan->route = route;

    size_t taken = 0;
    for (size_t i = 0; i < route->ncandidates; i++) {
        struct router_candidate *c = &plan->candidates[plan->ncandidates++];
        const struct policy_model *m = &policy->models[route->candidates[i]];
        c->model = route->candidates[i];
        uint32_t cap =
            router_fit(policy, m, plan->input_tokens, req->max_tokens, plan->budget_nusd);
        int rejecting = policy->over_budget == POLICY_REJECT && i > 0 &&
                        plan->candidates[0].decision == ROUTER_SKIPPED;
        if (rejecting) {
            c->decision = ROUTER_SKIPPED;
            snprintf(c->reason, sizeof c->reason,
                     "not considered: the first candidate is over budget and over_budget is "
                     "reject");
        } else if (cap == 0) {
            c->decision = ROUTER_SKIPPED;
            router_explain_skip(policy, m, plan->input_tokens, req->max_tokens, plan->budget_nusd,
                                c->reason, sizeof c->reason);
        } else {
            c->decision = ROUTER_TAKEN;
            c->max_tokens = cap;
            c->worst_case_nusd = cost_worst_case(&m->prices, plan->input_tokens, cap);
            snprintf(c->reason, sizeof c->reason,
                     "fits: up to %u output tokens, worst case %llu of %llu nUSD", cap,
                     (unsigned long long)c->worst_case_nusd, (unsigned long long)plan->budget_nusd);
            taken++;
        }
    }
    if (taken > 0) {
        plan->outcome = ROUTER_OK;
        return;
    }
    plan->outcome = ROUTER_OVER_BUDGET;
    const struct policy_model *first = &policy->models[route->candidates[0]];
    if (policy->over_budget == POLICY_REJECT)
        snprintf(plan->reason, sizeof plan->reason,
                 "over budget: \"%.64s\" does not fit %llu nUSD and over_budget is reject",
                 first->name, (unsigned long long)plan->budget_nusd);
    else
        snprintf(plan->reason, sizeof plan->reason,
                 "over budget: none of the %zu candidates for task \"%.64s\" fits %llu nUSD",
                 route->ncandidates, req->task, (unsigned long long)plan->budget_nusd);
}

/*
 * router: a pure function from (policy, request) to an ordered plan of
 * candidates, each with the max_tokens it may use so that its worst-case
 * cost fits the budget. No I/O, no clock, no allocation.
 */
#ifndef SWITCHYARD_ROUTER_H
#define SWITCHYARD_ROUTER_H

#include <stdint.h>

#include "policy.h"
#include "request.h"

/* What the router decided about one candidate of the route. */
enum router_decision {
    ROUTER_TAKEN,   /* in the plan */
    ROUTER_SKIPPED, /* left out: over budget */
};

struct router_candidate {
    size_t model; /* index into policy->models */
    enum router_decision decision;
    uint32_t max_tokens;      /* taken: the cap to send to the provider */
    uint64_t worst_case_nusd; /* taken: cost if every allowed token is used */
    char reason[160];         /* why taken or skipped, for the result's route */
};

enum router_outcome {
    ROUTER_OK,          /* at least one candidate taken */
    ROUTER_NO_ROUTE,    /* unknown task and no default route */
    ROUTER_OVER_BUDGET, /* nothing fits (or, with over_budget: reject, the best does not) */
};

struct plan {
    enum router_outcome outcome;
    const struct policy_route *route; /* NULL for ROUTER_NO_ROUTE */
    int used_default;                 /* the task had no route of its own */
    uint64_t budget_nusd;
    uint64_t input_tokens; /* the estimate every candidate was priced with */
    struct router_candidate candidates[POLICY_MAX_CANDIDATES]; /* route order */
    size_t ncandidates;
    char reason[256]; /* for NO_ROUTE / OVER_BUDGET: one sentence */
};

/* Fills *plan. The plan borrows from policy; keep a reference to it for as
 * long as the plan is used. */
void router_plan(const struct policy *policy, const struct request *req, struct plan *plan);

/* The input-token estimate for req under policy: ceil(bytes / bytes per
 * token) plus framing overhead per message. */
uint64_t router_estimate_input(const struct policy *policy, const struct request *req);

/* Fit one model into budget_nusd given the input estimate and the
 * request's own max_tokens (0 = none): returns the max_tokens it may use,
 * or 0 when it cannot afford policy->min_output_tokens (or the requested
 * max_tokens). Used again by dispatch for fallbacks, with what is left of
 * the budget after billable attempts. */
uint32_t router_fit(const struct policy *policy, const struct policy_model *model,
                    uint64_t input_tokens, uint32_t requested_max, uint64_t budget_nusd);

const char *router_outcome_name(enum router_outcome o);

#endif

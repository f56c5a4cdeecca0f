/*
 * router: a pure function from (policy, request) to an ordered plan of
 * candidates, each with the max_tokens it may use so that its worst-case
 * cost fits the budget. No I/O, no clock; its one allocation is the plan's
 * own (sized to the route, not to POLICY_MAX_CANDIDATES: a plan lives as
 * long as its request is in flight).
 */
#ifndef SWITCHYARD_ROUTER_H
#define SWITCHYARD_ROUTER_H

#include <stdint.h>

#include "policy.h"
#include "request.h"

/* What the router decided about one candidate of the route. */
enum router_decision {
    ROUTER_TAKEN,   /* in the plan */
    ROUTER_SKIPPED, /* left out: over budget, or it cannot honour a field of the request */
};

struct router_candidate {
    size_t model; /* index into policy->models */
    enum router_decision decision;
    uint32_t max_tokens;      /* taken: the cap to send to the provider */
    uint64_t worst_case_nusd; /* taken: cost if every allowed token is used */
    /* taken: the thinking budget to send (provider_call.reasoning_budget):
     * the request's, never lowered (max_tokens holds it and min_output
     * more); 0 = no reasoning */
    uint32_t reasoning_budget;
    /* skipped because it cannot honour a field: that field, else
     * POLICY_NFIELDS; the reason is then exactly "unsupported: FIELD" */
    enum policy_field unsupported;
    const char *reason; /* why taken or skipped, for the result's route; in the plan's block */
};

/* The longest reason the router writes, with its NUL: every one it
 * formats fits whole (names are cut at 64 bytes, numbers are bounded). */
#define ROUTER_REASON_MAX 256

enum router_outcome {
    ROUTER_OK,            /* at least one candidate taken */
    ROUTER_NO_ROUTE,      /* unknown task and no default route */
    ROUTER_OVER_BUDGET,   /* nothing fits (or, with over_budget: reject, the best does not) */
    ROUTER_UNKNOWN_MODEL, /* the request pins a model the policy does not have */
    ROUTER_UNSUPPORTED,   /* every candidate cannot honour some field of the request */
};

struct plan {
    enum router_outcome outcome;
    /* the task's route (its on_rate_limit holds for pinned models too);
     * NULL for ROUTER_NO_ROUTE, and for a pinned request whose task has
     * none (then wait) */
    const struct policy_route *route;
    int used_default; /* the task had no route of its own */
    /* the request pinned its models ("model"): the candidates are those,
     * in the request's order, not the route's */
    int pinned;
    uint64_t budget_nusd;
    uint64_t input_tokens; /* the estimate every candidate was priced with */
    uint64_t prompt_bound; /* router_prompt_bound: the tiers every candidate was priced at */
    /* route (or pinned) order; ncandidates of them, in the plan's block */
    struct router_candidate *candidates;
    size_t ncandidates;
    /* when not ROUTER_OK: one sentence, the error result's message ("" when
     * OK); in the plan's block */
    const char *reason;
    /* owned: one allocation holding the candidates and every reason's
     * text; release with router_plan_release */
    void *block;
};

/* Fills *plan: 0, or -1 when out of memory (then *plan holds nothing, is
 * ROUTER_NO_ROUTE with reason "out of memory", and release is still
 * safe). The plan borrows from policy; keep a reference to it for as long
 * as the plan is used. Release with router_plan_release.
 * Precedence: a pinned name the policy lacks is UNKNOWN_MODEL before
 * anything is priced; a candidate that cannot honour a field is skipped
 * before it is priced ("unsupported: FIELD"); the outcome is UNSUPPORTED
 * only when every candidate was skipped so, and OVER_BUDGET when some
 * candidate that honours the request is over budget (more budget would
 * serve it: that is the actionable error). With over_budget: reject, the
 * first candidate that honours the request is the one that must fit. */
int router_plan(const struct policy *policy, const struct request *req, struct plan *plan);

/* Frees what router_plan allocated and empties *plan; safe on a zeroed or
 * already released plan. */
void router_plan_release(struct plan *plan);

/* The input-token estimate for req under policy: ceil(bytes / bytes per
 * token) plus framing overhead per message, plus policy->image_tokens for
 * each image part. */
uint64_t router_estimate_input(const struct policy *policy, const struct request *req);

/* A strict upper bound on the prompt's tokens: every content byte a token
 * (a byte-level BPE token is never shorter than a byte), plus the
 * estimate's framing and policy->image_tokens per image part. The
 * estimate prices the input tokens; this bound chooses the tiers, since a
 * tier reprices the whole call and an estimate just under its threshold
 * may be wrong. */
uint64_t router_prompt_bound(const struct policy *policy, const struct request *req);

/* The flat rates every worst case of model is priced with (router_plan,
 * router_fit, preflight): cost_worst_rates over the tiers a prompt of up to
 * prompt_bound tokens may reach, with model->cache_writes as
 * may_write_cache, and the input rate raised to the cache-read rate when
 * a policy prices reads above input. Pure. */
void router_worst_rates(const struct policy_model *model, uint64_t prompt_bound,
                        struct cost_prices *out);

/* Worst-case cost of a call of model with input_tokens of input (the
 * estimate) and max_output tokens of output, at router_worst_rates for
 * prompt_bound; rounded up to the nano-USD, saturating. */
uint64_t router_worst_case(const struct policy_model *model, uint64_t input_tokens,
                           uint64_t prompt_bound, uint64_t max_output);

/* Fit one model into budget_nusd given the input estimate, the prompt
 * bound (router_prompt_bound; tiers), the request's own max_tokens (0 =
 * none) and its thinking budget (0 = none; thinking counts inside the
 * output cap at every provider): returns the max_tokens it may use, or 0
 * when it cannot afford policy->min_output_tokens (or the requested
 * max_tokens), or when the cap cannot hold reasoning_budget +
 * policy->min_output_tokens. Priced at router_worst_rates. Used again by
 * dispatch for fallbacks, with what is left of the budget after billable
 * attempts. */
uint32_t router_fit(const struct policy *policy, const struct policy_model *model,
                    uint64_t input_tokens, uint64_t prompt_bound, uint32_t requested_max,
                    uint32_t reasoning_budget, uint64_t budget_nusd);

const char *router_outcome_name(enum router_outcome o);

#endif

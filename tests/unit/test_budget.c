/*
 * budget: the property that a budget is a guarantee. Over random policies
 * (1-6 models, random prices for every category, 0-3 tiers, random
 * provider types and cache_writes flags), random requests (text, images,
 * max_tokens, reasoning budgets) and random budgets, every plan keeps:
 * (a) no taken candidate can cost more than the budget, whatever usage
 *     the provider bills while honouring max_tokens: the prompt's tokens
 *     (up to the estimate, which is the strict byte bound when
 *     input_bytes_per_token is 1) all input, all cache reads or, where the
 *     provider may write a cache, all five-minute or all one-hour writes;
 *     the output all output or all reasoning; priced by cost_compute at
 *     the tier that prompt falls in (the extreme splits: cost is linear in
 *     each count within a tier, so no split costs more);
 * (b) the candidates taken are exactly those that fit, recomputed here
 *     from the rule in README (not through router_fit): the first taken is
 *     the first in route order that fits, and each is sent the most
 *     max_tokens that fits;
 * (c) the same for router_fit with a random amount already spent.
 * The seed is printed; BUDGET_SEED=N repeats a run, BUDGET_CASES=N
 * changes its length. Also: the policy's cache_writes flag.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "request_flags.h"
#include "router.h"

#define BUDGET_CASES 100000
#define BUDGET_SEED 20261102u
#define BUDGET_MAX_MODELS 6
#define BUDGET_OUT_CAP 1000000u /* README: max_tokens is at most 10^6 */
#define BUDGET_SHOWN 5          /* failing cases printed per property */

__extension__ typedef unsigned __int128 u128;

static uint64_t budget_state;

/* splitmix64: small, and the same sequence on every machine */
static uint64_t rnd(void)
{
    uint64_t z = (budget_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static uint64_t rnd_in(uint64_t lo, uint64_t hi)
{
    return lo + rnd() % (hi - lo + 1);
}

/* spread over orders of magnitude: [0, 10^digits) with every size likely */
static uint64_t rnd_log(unsigned digits)
{
    uint64_t scale = 1;
    for (uint64_t d = rnd_in(0, digits); d > 0; d--)
        scale *= 10;
    return rnd() % scale;
}

/* a price in nUSD per Mtok: free, a round figure, or any to the nano */
static uint64_t rnd_price(void)
{
    switch (rnd_in(0, 9)) {
    case 0:
        return 0;
    case 1:
    case 2:
        return rnd_in(1, 200) * 50000000u; /* 0.05 to 10 USD */
    default:
        return rnd_log(12); /* up to 1,000 USD per Mtok */
    }
}

struct budget_case {
    struct policy policy;
    struct policy_model models[BUDGET_MAX_MODELS];
    char names[BUDGET_MAX_MODELS][24];
    struct policy_route route;
    struct request_flags rf;
    char flags[64];
    uint64_t estimate, bound;
};

static void budget_random_prices(struct cost_prices *p)
{
    memset(p, 0, sizeof *p);
    for (int c = 0; c < COST_NCAT; c++)
        p->nusd_per_mtok[c] = rnd_price();
    p->ntiers = rnd_in(0, 3);
    uint64_t above = 0;
    for (size_t i = 0; i < p->ntiers; i++) {
        above += rnd_in(1, 200000);
        p->tiers[i].above_input_tokens = above;
        /* mostly dearer than the base (real tiers are), sometimes anything */
        int scaled = rnd_in(0, 3) != 0;
        uint64_t num = rnd_in(10, 30);
        for (int c = 0; c < COST_NCAT; c++)
            p->tiers[i].nusd_per_mtok[c] = scaled ? p->nusd_per_mtok[c] * num / 10 : rnd_price();
    }
}

static void budget_random_case(struct budget_case *k)
{
    memset(k, 0, sizeof *k);
    struct policy *p = &k->policy;
    size_t n = rnd_in(1, BUDGET_MAX_MODELS);
    for (size_t i = 0; i < n; i++) {
        struct policy_model *m = &k->models[i];
        snprintf(k->names[i], sizeof k->names[i], "m%zu", i);
        m->name = k->names[i];
        m->provider = k->names[i];
        m->type = (enum provider_type)rnd_in(0, PROVIDER_NTYPES); /* NTYPES: unknown */
        /* claude-shaped ids, so that Bedrock takes reasoning too */
        m->model = rnd_in(0, 1) ? "us.anthropic.claude-x" : "model-x";
        budget_random_prices(&m->prices);
        m->max_output_tokens = rnd_in(0, 2) ? 0 : (uint32_t)rnd_in(1, 200000);
        /* the provider types' default, or the policy's flag either way */
        m->cache_writes = m->type == PROVIDER_ANTHROPIC || m->type == PROVIDER_BEDROCK;
        if (rnd_in(0, 4) == 0)
            m->cache_writes = (int)rnd_in(0, 1);
    }
    /* the route: the models in a random order, some maybe twice */
    size_t nc = rnd_in(1, n + 1);
    for (size_t i = 0; i < nc; i++)
        k->route.candidates[i] = rnd_in(0, n - 1);
    k->route.ncandidates = nc;
    k->route.task = "default";
    p->models = k->models;
    p->nmodels = n;
    p->default_route = &k->route;
    p->over_budget = rnd_in(0, 3) ? POLICY_DOWNGRADE : POLICY_REJECT;
    p->min_output_tokens = (uint32_t)rnd_in(1, 300);
    p->input_bytes_per_token = rnd_in(0, 2) ? 1 : (uint32_t)rnd_in(2, 4);
    p->image_tokens = (uint32_t)rnd_in(1, 3000);
    p->default_budget_nusd = rnd_log(10);

    uint32_t reasoning = rnd_in(0, 2) ? 0 : (uint32_t)rnd_in(1024, 40000);
    if (reasoning)
        snprintf(k->flags, sizeof k->flags, "reasoning=%" PRIu32, reasoning);
    else
        snprintf(k->flags, sizeof k->flags, "-");
    /* flags that make a request "invalid" here are none: fill cannot fail */
    request_flags_fill(&k->rf, "some-task", (size_t)rnd_log(7), k->flags);
    struct request *req = &k->rf.req;
    req->nimages = rnd_in(0, 3) ? 0 : rnd_in(1, 4);
    if (rnd_in(0, 3) == 0) {
        req->system = "s";
        req->system_len = 1;
    }
    req->max_tokens = rnd_in(0, 1) ? 0 : (uint32_t)rnd_in(1, rnd_in(0, 1) ? 2000 : 1100000);
    req->has_budget = rnd_in(0, 4) != 0;
    req->budget_nusd = rnd_log(12);

    /* the estimate and the strict bound, as README states them */
    uint64_t turns = req->nmessages + (req->system ? 1 : 0);
    uint64_t framing = turns * 4 + 3 + (uint64_t)req->nimages * p->image_tokens;
    uint64_t bpt = p->input_bytes_per_token;
    /* a quarter of the cases: a prompt at a threshold of the route's first
     * model, or one token over it, where an off-by-one would show */
    const struct cost_prices *first = &k->models[k->route.candidates[0]].prices;
    if (first->ntiers && rnd_in(0, 3) == 0) {
        uint64_t at = first->tiers[rnd_in(0, first->ntiers - 1)].above_input_tokens + rnd_in(0, 1);
        if (at >= framing)
            req->content_bytes = at - framing;
    }
    k->estimate = (req->content_bytes + bpt - 1) / bpt + framing;
    k->bound = req->content_bytes + framing;
}

/* The flat worst rates of README, computed here on their own: each
 * category at its dearest over the base and every tier the bound may
 * exceed; input at the dearest of input, cache read and (when the provider
 * may write a cache) both write rates; output at the dearer of output and
 * reasoning. */
static void budget_rates(const struct policy_model *m, uint64_t bound, uint64_t *in, uint64_t *out)
{
    uint64_t r[COST_NCAT];
    memcpy(r, m->prices.nusd_per_mtok, sizeof r);
    for (size_t i = 0; i < m->prices.ntiers; i++)
        for (int c = 0; c < COST_NCAT; c++)
            if (bound > m->prices.tiers[i].above_input_tokens &&
                m->prices.tiers[i].nusd_per_mtok[c] > r[c])
                r[c] = m->prices.tiers[i].nusd_per_mtok[c];
    *in = r[COST_INPUT] > r[COST_CACHE_READ] ? r[COST_INPUT] : r[COST_CACHE_READ];
    if (m->cache_writes) {
        if (r[COST_CACHE_WRITE] > *in)
            *in = r[COST_CACHE_WRITE];
        if (r[COST_CACHE_WRITE_1H] > *in)
            *in = r[COST_CACHE_WRITE_1H];
    }
    *out = r[COST_OUTPUT] > r[COST_REASONING] ? r[COST_OUTPUT] : r[COST_REASONING];
}

/* The max_tokens a model may be sent under budget, by README's rule, or 0
 * when it does not fit. */
static uint32_t budget_expected_fit(const struct budget_case *k, const struct policy_model *m,
                                    uint64_t budget)
{
    const struct request *req = &k->rf.req;
    uint64_t in, out;
    budget_rates(m, k->bound, &in, &out);
    u128 limit = (u128)budget * 1000000u, spent_in = (u128)k->estimate * in;
    uint64_t cap = BUDGET_OUT_CAP;
    if (m->max_output_tokens && m->max_output_tokens < cap)
        cap = m->max_output_tokens;
    if (req->max_tokens && req->max_tokens < cap)
        cap = req->max_tokens;
    u128 most = spent_in > limit ? 0 : out == 0 ? (u128)cap : (limit - spent_in) / out;
    int affords_input = spent_in <= limit;
    uint64_t need = (uint64_t)req->reasoning_budget + k->policy.min_output_tokens;
    if (req->reasoning_budget && cap < need)
        return 0;
    if (req->max_tokens)
        return affords_input && most >= cap ? (uint32_t)cap : 0;
    if (!affords_input || most < need || cap < need)
        return 0;
    return (uint32_t)(most < cap ? most : cap);
}

/* The dearest usage the provider may bill for a call of max_tokens
 * output: for every prompt size at which the tier changes (a threshold
 * below the estimate) and the estimate itself, every extreme split. */
static uint64_t budget_dearest(const struct budget_case *k, const struct policy_model *m,
                               uint32_t max_tokens)
{
    static const enum cost_category ins[] = {COST_INPUT, COST_CACHE_READ, COST_CACHE_WRITE,
                                             COST_CACHE_WRITE_1H};
    static const enum cost_category outs[] = {COST_OUTPUT, COST_REASONING};
    uint64_t sizes[COST_MAX_TIERS + 1], dearest = 0;
    size_t nsizes = 0;
    sizes[nsizes++] = k->estimate;
    for (size_t i = 0; i < m->prices.ntiers; i++)
        if (m->prices.tiers[i].above_input_tokens < k->estimate)
            sizes[nsizes++] = m->prices.tiers[i].above_input_tokens;
    for (size_t s = 0; s < nsizes; s++)
        for (size_t a = 0; a < (m->cache_writes ? 4u : 2u); a++)
            for (size_t b = 0; b < 2; b++) {
                struct cost_usage u = {0};
                u.tokens[ins[a]] = sizes[s];
                u.tokens[outs[b]] = max_tokens;
                uint64_t nusd = UINT64_MAX;
                cost_compute(&m->prices, &u, &nusd);
                if (nusd > dearest)
                    dearest = nusd;
            }
    return dearest;
}

struct budget_stats {
    long cases, taken, fallbacks, tiered, cache_priced, failed[4];
    char first[4][BUDGET_SHOWN][200];
};

static void budget_fail(struct budget_stats *st, int prop, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void budget_fail(struct budget_stats *st, int prop, const char *fmt, ...)
{
    if (st->failed[prop] < BUDGET_SHOWN) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->first[prop][st->failed[prop]], sizeof st->first[0][0], fmt, ap);
        va_end(ap);
    }
    st->failed[prop]++;
}

static void budget_one(struct budget_stats *st)
{
    static struct budget_case k; /* big: keep it off the stack */
    budget_random_case(&k);
    const struct policy *p = &k.policy;
    const struct request *req = &k.rf.req;
    uint64_t budget = req->has_budget ? req->budget_nusd : p->default_budget_nusd;
    /* half the cases: a budget at the edge of some candidate's worst case */
    if (rnd_in(0, 1)) {
        const struct policy_model *m = &p->models[k.route.candidates[0]];
        uint64_t in, out, n = req->max_tokens ? req->max_tokens : p->min_output_tokens;
        budget_rates(m, k.bound, &in, &out);
        u128 micro = (u128)k.estimate * in + (u128)(n + req->reasoning_budget) * out;
        u128 edge = micro / 1000000u + (micro % 1000000u != 0);
        if (edge < COST_MAX_BUDGET) {
            budget = (uint64_t)edge + rnd_in(0, 2) - (edge > 0);
            k.rf.req.has_budget = 1;
            k.rf.req.budget_nusd = budget;
        }
    }
    struct plan plan;
    router_plan(p, req, &plan);
    st->cases++;
    if (plan.input_tokens != k.estimate || plan.prompt_bound != k.bound)
        budget_fail(st, 1, "estimate %" PRIu64 "/%" PRIu64 ", expected %" PRIu64 "/%" PRIu64,
                    plan.input_tokens, plan.prompt_bound, k.estimate, k.bound);

    int first_fits = -1; /* over_budget reject: whether the first that honours fits */
    long first_taken = -1, first_fitting = -1;
    for (size_t i = 0; i < plan.ncandidates; i++) {
        const struct router_candidate *c = &plan.candidates[i];
        const struct policy_model *m = &p->models[c->model];
        if (c->unsupported != POLICY_NFIELDS)
            continue; /* a capability decision, tested by test_router */
        uint32_t want = budget_expected_fit(&k, m, budget);
        if (first_fits < 0)
            first_fits = want > 0;
        if (p->over_budget == POLICY_REJECT && !first_fits)
            want = 0;
        if (want && first_fitting < 0)
            first_fitting = (long)i;
        if (c->decision == ROUTER_TAKEN && first_taken < 0)
            first_taken = (long)i;
        uint32_t got = c->decision == ROUTER_TAKEN ? c->max_tokens : 0;
        if (got != want)
            budget_fail(st, 1, "candidate %zu (%s): sent max_tokens %" PRIu32 ", expected %" PRIu32,
                        i, m->name, got, want);
        if (c->decision == ROUTER_TAKEN) {
            st->taken++;
            uint64_t dearest = budget_dearest(&k, m, c->max_tokens);
            if (dearest > budget || dearest > c->worst_case_nusd)
                budget_fail(st, 0,
                            "candidate %zu (%s): a usage costs %" PRIu64 " nUSD, budget %" PRIu64
                            ", worst case said %" PRIu64,
                            i, m->name, dearest, budget, c->worst_case_nusd);
            st->tiered += strstr(c->reason, "at tier") != NULL;
            st->cache_priced += strstr(c->reason, "cache-write rate") != NULL;
        }
        /* (c) a fallback after some billable attempts */
        uint64_t spent = rnd_in(0, budget), left = budget - spent;
        uint32_t fit = router_fit(p, m, plan.input_tokens, plan.prompt_bound, req->max_tokens,
                                  req->reasoning_budget, left);
        uint32_t want_left = budget_expected_fit(&k, m, left);
        if (fit != want_left)
            budget_fail(st, 3,
                        "router_fit %s with %" PRIu64 " left: %" PRIu32 ", expected %" PRIu32,
                        m->name, left, fit, want_left);
        if (fit) {
            st->fallbacks++;
            uint64_t dearest = budget_dearest(&k, m, fit);
            if (dearest > left)
                budget_fail(st, 3,
                            "router_fit %s: a usage costs %" PRIu64 " nUSD, %" PRIu64 " left",
                            m->name, dearest, left);
        }
    }
    if (first_taken != first_fitting)
        budget_fail(st, 2, "first taken %ld, first that fits %ld", first_taken, first_fitting);
    if ((plan.outcome == ROUTER_OK) != (first_fitting >= 0))
        budget_fail(st, 2, "outcome %s, but a candidate fits: %d",
                    router_outcome_name(plan.outcome), first_fitting >= 0);
    router_plan_release(&plan);
}

/* cache_writes: by provider type, or the policy's word either way */
static void budget_flag(void)
{
    static const char yaml[] =
        "models:\n"
        "  a: { provider: anthropic, model: x, price: { input: 1, output: 2 } }\n"
        "  b: { provider: bedrock, model: x, price: { input: 1, output: 2 } }\n"
        "  c: { provider: openai, model: x, price: { input: 1, output: 2 } }\n"
        "  d: { provider: anthropic, model: x, price: { input: 1, output: 2 }, cache_writes: "
        "false }\n"
        "  e: { provider: local, model: x, price: { input: 1, output: 2 }, cache_writes: true }\n"
        "routes:\n  default: [a]\n";
    struct ydoc_errors errs = {0};
    struct policy *p = policy_parse("flag.yaml", yaml, sizeof yaml - 1, NULL, &errs);
    ok(p && p->nmodels == 5, "a policy with cache_writes flags loads");
    if (p && p->nmodels == 5) {
        ok(p->models[0].cache_writes && p->models[1].cache_writes && !p->models[2].cache_writes,
           "cache_writes defaults to true for anthropic and bedrock, false for openai");
        ok(!p->models[3].cache_writes && p->models[4].cache_writes,
           "cache_writes: false and true override the provider type");
    }
    policy_release(p);
    ydoc_errors_release(&errs);
    static const char bad[] = "models:\n"
                              "  a: { provider: anthropic, model: x, price: { input: 1, output: "
                              "2 }, cache_writes: maybe }\n"
                              "routes:\n  default: [a]\n";
    p = policy_parse("bad.yaml", bad, sizeof bad - 1, NULL, &errs);
    ok(!p && errs.count == 1 && strstr(errs.lines[0], "cache_writes"),
       "cache_writes: maybe is an error naming the key (%s)", errs.count ? errs.lines[0] : "none");
    policy_release(p);
    ydoc_errors_release(&errs);
}

void test_budget(void)
{
    budget_flag();
    const char *s = getenv("BUDGET_SEED"), *n = getenv("BUDGET_CASES");
    uint64_t seed = s ? strtoull(s, NULL, 10) : BUDGET_SEED;
    long cases = n ? strtol(n, NULL, 10) : BUDGET_CASES;
    budget_state = seed;
    printf("budget: seed %" PRIu64 ", %ld cases (BUDGET_SEED=%" PRIu64 " repeats it)\n", seed,
           cases, seed);
    static struct budget_stats st;
    memset(&st, 0, sizeof st);
    for (long i = 0; i < cases; i++)
        budget_one(&st);
    static const char *const props[4] = {
        "(a) no usage a taken candidate may bill costs more than the budget",
        "(b) each candidate is sent exactly the max_tokens README's rule allows",
        "(b) the first taken candidate is the first in route order that fits",
        "(c) router_fit with part of the budget spent: the same rule, and no usage costs more "
        "than what is left"};
    for (int prop = 0; prop < 4; prop++) {
        for (long i = 0; i < st.failed[prop] && i < BUDGET_SHOWN; i++)
            printf("    %s\n", st.first[prop][i]);
        ok(st.failed[prop] == 0, "%s: %ld of %ld cases fail (seed %" PRIu64 ")", props[prop],
           st.failed[prop], st.cases, seed);
    }
    printf("budget: %ld candidates taken, %ld fallbacks fit, %ld priced at a tier, %ld with "
           "input at a cache-write rate\n",
           st.taken, st.fallbacks, st.tiered, st.cache_priced);
    /* the random cases reach what they are for, or they prove little */
    ok(cases < BUDGET_CASES || (st.taken > cases / 4 && st.tiered > cases / 100 &&
                                st.cache_priced > cases / 100 && st.fallbacks > cases / 4),
       "the cases take candidates, reach tiers and cache-write rates, and fit fallbacks");
}

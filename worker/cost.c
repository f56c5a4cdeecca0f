/*
 * cost: exact sums in integers. A price p (nUSD per Mtok) is split into
 * whole nano-USD per token (p / 10^6) and the remainder in millionths of a
 * nano-USD (p % 10^6), so tokens x price never needs more than 64 bits
 * within the caps of cost.h. Never round before the final sum.
 */
#include "cost.h"

#define MILLION 1000000ull

const char *cost_category_name(enum cost_category c)
{
    static const char *const names[COST_NCAT] = {"input",       "output",    "cache_read",
                                                 "cache_write", "reasoning", "cache_write_1h"};
    return (unsigned)c < COST_NCAT ? names[c] : "unknown";
}

uint64_t cost_prompt_tokens(const struct cost_usage *usage)
{
    /* each count is capped at COST_MAX_TOKENS (< 2^32): no overflow */
    return usage->tokens[COST_INPUT] + usage->tokens[COST_CACHE_READ] +
           usage->tokens[COST_CACHE_WRITE] + usage->tokens[COST_CACHE_WRITE_1H];
}

unsigned cost_tier_for(const struct cost_prices *prices, uint64_t prompt_tokens,
                       const uint64_t **rates)
{
    unsigned tier = 0;
    for (size_t i = 0; i < prices->ntiers && i < COST_MAX_TIERS; i++)
        if (prompt_tokens > prices->tiers[i].above_input_tokens)
            tier = (unsigned)i + 1;
    if (rates)
        *rates = tier ? prices->tiers[tier - 1].nusd_per_mtok : prices->nusd_per_mtok;
    return tier;
}

int cost_compute(const struct cost_prices *prices, const struct cost_usage *usage, uint64_t *nusd)
{
    uint64_t whole = 0, micro = 0; /* nUSD, and millionths of a nUSD */
    for (int c = 0; c < COST_NCAT; c++)
        if (usage->tokens[c] > COST_MAX_TOKENS)
            return -1;
    const uint64_t *rates;
    cost_tier_for(prices, cost_prompt_tokens(usage), &rates);
    for (int c = 0; c < COST_NCAT; c++) {
        uint64_t t = usage->tokens[c], p = rates[c];
        if (t > COST_MAX_TOKENS || p > COST_MAX_PRICE)
            return -1;
        /* t < 2^32 and p / 10^6 <= 10^8: the products stay below 2^59 */
        whole += t * (p / MILLION);
        micro += t * (p % MILLION);
    }
    *nusd = whole + micro / MILLION + (micro % MILLION >= MILLION / 2);
    return 0;
}

void cost_worst_rates(const struct cost_prices *prices, uint64_t input_bound, int may_write_cache,
                      struct cost_prices *out)
{
    struct cost_prices w = {0};
    for (int c = 0; c < COST_NCAT; c++)
        w.nusd_per_mtok[c] = prices->nusd_per_mtok[c];
    /* a tier applies once the prompt exceeds its threshold: one the bound
     * may exceed may apply */
    for (size_t i = 0; i < prices->ntiers && i < COST_MAX_TIERS; i++)
        if (input_bound > prices->tiers[i].above_input_tokens)
            for (int c = 0; c < COST_NCAT; c++)
                if (prices->tiers[i].nusd_per_mtok[c] > w.nusd_per_mtok[c])
                    w.nusd_per_mtok[c] = prices->tiers[i].nusd_per_mtok[c];
    if (may_write_cache) {
        uint64_t *in = &w.nusd_per_mtok[COST_INPUT];
        if (w.nusd_per_mtok[COST_CACHE_WRITE] > *in)
            *in = w.nusd_per_mtok[COST_CACHE_WRITE];
        if (w.nusd_per_mtok[COST_CACHE_WRITE_1H] > *in)
            *in = w.nusd_per_mtok[COST_CACHE_WRITE_1H];
    }
    *out = w;
}

/* a x b, or UINT64_MAX on overflow */
static uint64_t cost_mul_sat(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t cost_output_price(const struct cost_prices *prices)
{
    uint64_t out = prices->nusd_per_mtok[COST_OUTPUT];
    uint64_t reasoning = prices->nusd_per_mtok[COST_REASONING];
    return reasoning > out ? reasoning : out;
}

uint64_t cost_max_output(const struct cost_prices *prices, uint64_t input_tokens,
                         uint64_t budget_nusd)
{
    /* all in millionths of a nUSD: budget x 10^6 >= in x p_in + out x p_out */
    uint64_t limit = cost_mul_sat(budget_nusd, MILLION);
    uint64_t in = cost_mul_sat(input_tokens, prices->nusd_per_mtok[COST_INPUT]);
    if (limit == UINT64_MAX || in == UINT64_MAX || in > limit)
        return 0;
    uint64_t p_out = cost_output_price(prices);
    if (p_out == 0)
        return UINT64_MAX;
    return (limit - in) / p_out;
}

uint64_t cost_worst_case(const struct cost_prices *prices, uint64_t input_tokens,
                         uint64_t max_output)
{
    uint64_t in = cost_mul_sat(input_tokens, prices->nusd_per_mtok[COST_INPUT]);
    uint64_t out = cost_mul_sat(max_output, cost_output_price(prices));
    uint64_t sum;
    if (in == UINT64_MAX || out == UINT64_MAX || __builtin_add_overflow(in, out, &sum))
        return UINT64_MAX;
    return sum / MILLION + (sum % MILLION != 0);
}

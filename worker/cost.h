/*
 * cost: integer nano-USD arithmetic. No floating point touches a figure
 * that is summed.
 *
 * Units: prices are nano-USD per million tokens (the policy's "USD per
 * million tokens" scaled exactly by 10^9); costs are nano-USD (1e-9 USD).
 * A record's cost is the exact sum over its categories, rounded once, half
 * up, to the nano-USD; worst-case (budget) checks round up instead.
 */
#ifndef SWITCHYARD_COST_H
#define SWITCHYARD_COST_H

#include <stddef.h>
#include <stdint.h>

/* Disjoint token categories: input excludes cache reads and writes,
 * output excludes reasoning. Providers' counts are normalized into these
 * before any price is applied. */
enum cost_category {
    COST_INPUT,
    COST_OUTPUT,
    COST_CACHE_READ,
    COST_CACHE_WRITE, /* a cache write that lives five minutes (Anthropic's default) */
    COST_REASONING,
    COST_CACHE_WRITE_1H, /* a cache write that lives an hour (Anthropic: twice input) */
    COST_NCAT
};

#define COST_MAX_TIERS 4

#define COST_MAX_TOKENS 0xFFFFFFFFull     /* per category, per attempt */
#define COST_MAX_PRICE 100000000000000ull /* 100,000 USD per Mtok, in nUSD/Mtok */
#define COST_MAX_BUDGET 1000000000000ull  /* 1,000 USD, in nUSD */

/* Rates that replace the base ones for a whole call whose prompt holds
 * more than above_input_tokens tokens (Anthropic's and Gemini's long
 * context prices: every token of such a call, output included, at the
 * tier's rate). */
struct cost_tier {
    uint64_t above_input_tokens;
    uint64_t nusd_per_mtok[COST_NCAT];
};

struct cost_prices {
    uint64_t nusd_per_mtok[COST_NCAT];      /* the base rates */
    struct cost_tier tiers[COST_MAX_TIERS]; /* thresholds strictly ascending */
    size_t ntiers;
};

struct cost_usage {
    uint64_t tokens[COST_NCAT];
};

/* The JSON field name of a category ("input", "cache_read", ...). */
const char *cost_category_name(enum cost_category c);

/* The prompt's tokens: input, cache reads and cache writes (what a tier's
 * threshold is compared with). */
uint64_t cost_prompt_tokens(const struct cost_usage *usage);

/* The tier a call whose prompt holds prompt_tokens is billed at: 0 for
 * the base rates, i + 1 for tiers[i] (the last whose threshold it
 * exceeds); *rates (when not NULL) points at that tier's rates. Pure. */
unsigned cost_tier_for(const struct cost_prices *prices, uint64_t prompt_tokens,
                       const uint64_t **rates);

/* *nusd = sum of tokens x the rates of the tier the usage falls in,
 * rounded half up. Returns -1 when a token count exceeds COST_MAX_TOKENS
 * or a price COST_MAX_PRICE (nothing summed can then overflow); 0
 * otherwise. */
int cost_compute(const struct cost_prices *prices, const struct cost_usage *usage, uint64_t *nusd);

/* The flat rates (no tiers) a worst case is priced with, for a call whose
 * prompt may hold up to input_bound tokens: each category at its dearest
 * over the base and every tier whose threshold input_bound may exceed;
 * and, when the provider may write a cache (may_write_cache), the input
 * rate at the dearest of input and both cache-write rates, since any
 * input token may be billed as a write. cost_max_output and
 * cost_worst_case then bound what the call can cost. Pure. */
void cost_worst_rates(const struct cost_prices *prices, uint64_t input_bound, int may_write_cache,
                      struct cost_prices *out);

/* The most output tokens a call may use so that
 *   input_tokens x input price + output x max(output, reasoning price)
 * stays within budget_nusd (exactly, before rounding), at the base rates
 * of prices (pass cost_worst_rates' for a bound that holds with tiers and
 * cache writes). 0 when even the input does not fit; UINT64_MAX when
 * output is free. */
uint64_t cost_max_output(const struct cost_prices *prices, uint64_t input_tokens,
                         uint64_t budget_nusd);

/* Worst-case cost of a call (input at the input price, every output token
 * at the dearer of output and reasoning), rounded up to the nano-USD.
 * Saturates at UINT64_MAX. */
uint64_t cost_worst_case(const struct cost_prices *prices, uint64_t input_tokens,
                         uint64_t max_output);

#endif

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

#include <stdint.h>

/* Disjoint token categories: input excludes cache reads and writes,
 * output excludes reasoning. Providers' counts are normalized into these
 * before any price is applied. */
enum cost_category {
    COST_INPUT,
    COST_OUTPUT,
    COST_CACHE_READ,
    COST_CACHE_WRITE,
    COST_REASONING,
    COST_NCAT
};

#define COST_MAX_TOKENS 0xFFFFFFFFull     /* per category, per attempt */
#define COST_MAX_PRICE 100000000000000ull /* 100,000 USD per Mtok, in nUSD/Mtok */
#define COST_MAX_BUDGET 1000000000000ull  /* 1,000 USD, in nUSD */

struct cost_prices {
    uint64_t nusd_per_mtok[COST_NCAT];
};

struct cost_usage {
    uint64_t tokens[COST_NCAT];
};

/* The JSON field name of a category ("input", "cache_read", ...). */
const char *cost_category_name(enum cost_category c);

/* *nusd = sum of tokens x price, rounded half up. Returns -1 when a token
 * count exceeds COST_MAX_TOKENS or a price COST_MAX_PRICE (nothing summed
 * can then overflow); 0 otherwise. */
int cost_compute(const struct cost_prices *prices, const struct cost_usage *usage, uint64_t *nusd);

/* The most output tokens a call may use so that
 *   input_tokens x input price + output x max(output, reasoning price)
 * stays within budget_nusd (exactly, before rounding). 0 when even the
 * input does not fit; UINT64_MAX when output is free. */
uint64_t cost_max_output(const struct cost_prices *prices, uint64_t input_tokens,
                         uint64_t budget_nusd);

/* Worst-case cost of a call (input at the input price, every output token
 * at the dearer of output and reasoning), rounded up to the nano-USD.
 * Saturates at UINT64_MAX. */
uint64_t cost_worst_case(const struct cost_prices *prices, uint64_t input_tokens,
                         uint64_t max_output);

#endif

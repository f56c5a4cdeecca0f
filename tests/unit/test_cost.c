/*
 * cost: exact nano-USD arithmetic. The reference computations here are
 * independent of cost.c (128-bit products, closed forms), so a wrong
 * split, carry or rounding in cost.c shows up as a mismatch.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "cost.h"

__extension__ typedef unsigned __int128 u128;

/* xorshift64*: deterministic pseudo-random numbers for property checks */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

#define USD_PER_MTOK(whole, thousandths)                                                           \
    ((uint64_t)(whole)*1000000000u + (uint64_t)(thousandths)*1000000u)

static void test_cost_example(void)
{
    /* claude-opus-4-1: 15 / 75 / 1.50 / 18.75 USD per Mtok */
    struct cost_prices opus = {.nusd_per_mtok = {USD_PER_MTOK(15, 0), USD_PER_MTOK(75, 0),
                                                 USD_PER_MTOK(1, 500), USD_PER_MTOK(18, 750),
                                                 USD_PER_MTOK(75, 0)}};
    struct cost_usage u = {{1000, 500, 2000, 100, 0}};
    uint64_t nusd = 0;
    ok(cost_compute(&opus, &u, &nusd) == 0, "opus usage computes");
    /* 1000x15000 + 500x75000 + 2000x1500 + 100x18750 nUSD */
    ok(nusd == 57375000u, "opus example = 57375000 nUSD, got %llu", (unsigned long long)nusd);
}

static void test_cost_rounding(void)
{
    /* 0.0375 USD/Mtok = 37.5 nUSD per token: the half is rounded up, once */
    struct cost_prices p = {.nusd_per_mtok = {37500000u, 0, 0, 0, 0}};
    static const struct {
        uint64_t tokens, nusd;
    } cases[] = {{0, 0}, {1, 38}, {2, 75}, {3, 113}, {4, 150}, {1000001, 37500038}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cost_usage u = {{cases[i].tokens, 0, 0, 0, 0}};
        uint64_t nusd = 0;
        cost_compute(&p, &u, &nusd);
        ok(nusd == cases[i].nusd, "%llu tokens at 37.5 nUSD = %llu, got %llu",
           (unsigned long long)cases[i].tokens, (unsigned long long)cases[i].nusd,
           (unsigned long long)nusd);
    }
    /* the fraction is summed across categories before rounding:
     * 1 token at 0.4 nUSD + 1 token at 0.1 nUSD = 0.5 -> 1, not 0 + 0 */
    struct cost_prices q = {.nusd_per_mtok = {400000u, 100000u, 0, 0, 0}};
    struct cost_usage u = {{1, 1, 0, 0, 0}};
    uint64_t nusd = 0;
    cost_compute(&q, &u, &nusd);
    ok(nusd == 1, "fractions add up before rounding, got %llu", (unsigned long long)nusd);
}

static void test_cost_limits(void)
{
    struct cost_prices p = {.nusd_per_mtok = {COST_MAX_PRICE, COST_MAX_PRICE, COST_MAX_PRICE,
                                              COST_MAX_PRICE, COST_MAX_PRICE, COST_MAX_PRICE}};
    struct cost_usage u = {{COST_MAX_TOKENS, COST_MAX_TOKENS, COST_MAX_TOKENS, COST_MAX_TOKENS,
                            COST_MAX_TOKENS, COST_MAX_TOKENS}};
    uint64_t nusd = 0;
    ok(cost_compute(&p, &u, &nusd) == 0, "largest allowed usage x price computes");
    u128 want = (u128)COST_MAX_TOKENS * COST_MAX_PRICE * COST_NCAT / 1000000u;
    ok(nusd == (uint64_t)want, "largest allowed cost exact");
    u.tokens[COST_OUTPUT] = COST_MAX_TOKENS + 1;
    ok(cost_compute(&p, &u, &nusd) == -1, "token count over the cap is refused");
    u.tokens[COST_OUTPUT] = 1;
    p.nusd_per_mtok[COST_INPUT] = COST_MAX_PRICE + 1;
    ok(cost_compute(&p, &u, &nusd) == -1, "price over the cap is refused");
}

/* 1,000,000 records whose exact sum has a closed form: record i (1-based)
 * uses input i, output 2i+1, cache_read i mod 7, cache_write i mod 3,
 * reasoning i mod 5 tokens. */
static uint64_t sum_mod(uint64_t n, uint64_t m)
{
    /* sum of (i mod m) for i = 1..n */
    uint64_t q = n / m, r = n % m;
    return q * (m * (m - 1) / 2) + r * (r + 1) / 2;
}

static void test_cost_million(void)
{
    const uint64_t n = 1000000;
    struct cost_prices p = {.nusd_per_mtok = {USD_PER_MTOK(0, 75), USD_PER_MTOK(18, 750),
                                              USD_PER_MTOK(1, 500), USD_PER_MTOK(3, 750),
                                              USD_PER_MTOK(15, 0)}};
    uint64_t total = 0;
    int failures = 0;
    for (uint64_t i = 1; i <= n; i++) {
        struct cost_usage u = {{i, 2 * i + 1, i % 7, i % 3, i % 5}};
        uint64_t nusd;
        failures += cost_compute(&p, &u, &nusd) != 0;
        total += nusd;
    }
    ok(failures == 0, "every record computes");
    uint64_t per_tok[COST_NCAT];
    for (int c = 0; c < COST_NCAT; c++)
        per_tok[c] = p.nusd_per_mtok[c] / 1000000u; /* whole nUSD per token */
    uint64_t sum_i = n * (n + 1) / 2;
    uint64_t want = per_tok[COST_INPUT] * sum_i + per_tok[COST_OUTPUT] * (2 * sum_i + n) +
                    per_tok[COST_CACHE_READ] * sum_mod(n, 7) +
                    per_tok[COST_CACHE_WRITE] * sum_mod(n, 3) +
                    per_tok[COST_REASONING] * sum_mod(n, 5);
    ok(total == want, "sum over 1e6 records = closed form %llu, got %llu", (unsigned long long)want,
       (unsigned long long)total);
}

/* Random usage and prices (with fractional nano-USD per token) against a
 * 128-bit reference: sum the exact products, round half up once. */
static void test_cost_random(void)
{
    int mismatches = 0;
    for (int k = 0; k < 1000000; k++) {
        struct cost_prices p;
        struct cost_usage u;
        u128 exact = 0;
        for (int c = 0; c < COST_NCAT; c++) {
            p.nusd_per_mtok[c] = rng() % (COST_MAX_PRICE + 1);
            u.tokens[c] = (k & 1) ? rng() % (COST_MAX_TOKENS + 1) : rng() % 100000;
            exact += (u128)p.nusd_per_mtok[c] * u.tokens[c];
        }
        uint64_t want = (uint64_t)((exact + 500000u) / 1000000u), got = 0;
        if (cost_compute(&p, &u, &got) != 0 || got != want)
            mismatches++;
    }
    ok(mismatches == 0, "1e6 random records match the 128-bit reference (%d mismatches)",
       mismatches);
}

/* cost_max_output is the largest n with worst_case(n) <= budget. */
static void test_cost_max_output(void)
{
    int bad = 0;
    for (int k = 0; k < 200000; k++) {
        struct cost_prices p = {.nusd_per_mtok = {0}};
        p.nusd_per_mtok[COST_INPUT] = rng() % 100000000000u;
        p.nusd_per_mtok[COST_OUTPUT] = 1 + rng() % 200000000000u;
        p.nusd_per_mtok[COST_REASONING] = (k % 3 == 0) ? rng() % 300000000000u : 0;
        uint64_t in = rng() % 200000, budget = rng() % COST_MAX_BUDGET;
        uint64_t n = cost_max_output(&p, in, budget);
        if (n == 0) {
            if (cost_worst_case(&p, in, 0) <= budget && cost_worst_case(&p, in, 1) <= budget)
                bad++;
            continue;
        }
        if (cost_worst_case(&p, in, n) > budget || cost_worst_case(&p, in, n + 1) <= budget)
            bad++;
    }
    ok(bad == 0, "max_output is the exact largest fit for 200000 random cases (%d bad)", bad);
    struct cost_prices free_out = {.nusd_per_mtok = {1000, 0, 0, 0, 0}};
    ok(cost_max_output(&free_out, 10, 100) == UINT64_MAX, "free output is unlimited");
    ok(cost_max_output(&free_out, 1000000000, 1) == 0, "input alone over budget -> 0");
    /* reasoning dearer than output: the worst case uses the dearer price */
    struct cost_prices r = {.nusd_per_mtok = {0, 1000000, 0, 0, 3000000}};
    ok(cost_max_output(&r, 0, 3) == 1, "reasoning price bounds the output, got %llu",
       (unsigned long long)cost_max_output(&r, 0, 3));
}

void test_cost(void)
{
    test_cost_example();
    test_cost_rounding();
    test_cost_limits();
    test_cost_million();
    test_cost_random();
    test_cost_max_output();
    ok(strcmp(cost_category_name(COST_CACHE_WRITE), "cache_write") == 0, "category names");
}

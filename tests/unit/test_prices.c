/*
 * prices: the shipped table loads with the figures the providers publish;
 * every case under tests/data/prices/bad/ and every policy-*.yaml with an
 * .expected file prints exactly those lines (file:line:column); a policy
 * binds entries, overrides beside them, inline prices and the default
 * table path; dates are real dates (tests/data/prices/dates.txt).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cost.h"
#include "policy.h"
#include "prices.h"

#define DATA "tests/data/prices/"
#define USD(whole, billionths) ((uint64_t)(whole)*1000000000u + (uint64_t)(billionths))

static char *join_errors(struct ydoc_errors *errs)
{
    size_t size = 1;
    for (size_t i = 0; i < errs->count; i++)
        size += strlen(errs->lines[i]) + 1;
    char *out = calloc(1, size);
    for (size_t i = 0; out && i < errs->count; i++) {
        strcat(out, errs->lines[i]);
        strcat(out, "\n");
    }
    return out;
}

static void test_prices_shipped(void)
{
    struct ydoc_errors errs = {0};
    struct prices *p = prices_load("config/prices.yaml", &errs);
    ok(p && errs.count == 0, "config/prices.yaml loads (%s)", errs.count ? errs.lines[0] : "");
    ydoc_errors_release(&errs);
    if (!p)
        return;
    size_t per_type[PROVIDER_NTYPES + 1] = {0};
    int dated = 1;
    for (size_t i = 0; i < p->count; i++) {
        const struct prices_entry *e = &p->entries[i];
        per_type[e->type]++;
        dated &= prices_date_valid(e->date) && strncmp(e->source, "https://", 8) == 0 &&
                 e->batch_discount_percent == 50;
    }
    for (int t = 0; t < PROVIDER_NTYPES; t++)
        ok(per_type[t] >= 1, "config/prices.yaml prices %s models (%zu)",
           provider_type_name((enum provider_type)t), per_type[t]);
    ok(dated, "every entry has a real date, an https source and its batch discount");

    /* Anthropic's published Sonnet 4.5 figures: both cache-write rates and
     * the long-context tier above 200,000 prompt tokens */
    const struct prices_entry *s = prices_find(p, "anthropic/claude-sonnet-4-5");
    ok(s && s->type == PROVIDER_ANTHROPIC && strcmp(s->model, "claude-sonnet-4-5") == 0,
       "anthropic/claude-sonnet-4-5 is there");
    if (s) {
        const uint64_t *r = s->prices.nusd_per_mtok;
        ok(r[COST_INPUT] == USD(3, 0) && r[COST_OUTPUT] == USD(15, 0) &&
               r[COST_CACHE_READ] == USD(0, 300000000) &&
               r[COST_CACHE_WRITE] == USD(3, 750000000) && r[COST_CACHE_WRITE_1H] == USD(6, 0) &&
               r[COST_REASONING] == USD(15, 0),
           "sonnet 4.5 base: 3 / 15 / 0.30 / 3.75 (5 min) / 6 (1 h), reasoning as output");
        ok(s->prices.ntiers == 1 && s->prices.tiers[0].above_input_tokens == 200000 &&
               s->prices.tiers[0].nusd_per_mtok[COST_INPUT] == USD(6, 0) &&
               s->prices.tiers[0].nusd_per_mtok[COST_OUTPUT] == USD(22, 500000000) &&
               s->prices.tiers[0].nusd_per_mtok[COST_CACHE_WRITE_1H] == USD(12, 0),
           "sonnet 4.5 above 200k: 6 / 22.50, hour-long writes 12");
        /* both sides of the threshold: the prompt counts cache traffic */
        struct cost_usage at = {{100000, 1000, 50000, 30000, 0, 20000}};
        struct cost_usage over = {{100001, 1000, 50000, 30000, 0, 20000}};
        uint64_t a = 0, b = 0;
        ok(cost_compute(&s->prices, &at, &a) == 0 && cost_compute(&s->prices, &over, &b) == 0,
           "sonnet usages compute");
        /* 100000x3000 + 1000x15000 + 50000x300 + 30000x3750 + 20000x6000 */
        ok(a == 562500000u, "200,000 prompt tokens: base rates (%llu)", (unsigned long long)a);
        /* 100001x6000 + 1000x22500 + 50000x600 + 30000x7500 + 20000x12000 */
        ok(b == 1117506000u, "200,001 prompt tokens: the tier's, whole call (%llu)",
           (unsigned long long)b);
        ok(cost_tier_for(&s->prices, cost_prompt_tokens(&over), NULL) == 1 &&
               cost_tier_for(&s->prices, cost_prompt_tokens(&at), NULL) == 0,
           "cost_tier_for: 0 at the threshold, 1 above");
    }
    const struct prices_entry *g = prices_find(p, "gemini/gemini-2.5-pro");
    ok(g && g->prices.ntiers == 1 && g->prices.tiers[0].above_input_tokens == 200000 &&
           g->prices.nusd_per_mtok[COST_INPUT] == USD(1, 250000000) &&
           g->prices.tiers[0].nusd_per_mtok[COST_OUTPUT] == USD(15, 0),
       "gemini 2.5 pro: 1.25 in, 15 out above 200k");
    ok(prices_find(p, "anthropic/claude-sonnet-4.5") == NULL, "no near-miss lookups");
    char near[256];
    prices_nearest(p, "anthropic/claude-sonet-4-5", near, sizeof near);
    ok(strcmp(near, "\"anthropic/claude-sonnet-4-5\"") == 0, "nearest entry: %s", near);
    prices_free(p);
}

static void test_prices_small(void)
{
    struct ydoc_errors errs = {0};
    struct prices *p = prices_load(DATA "small.yaml", &errs);
    ok(p && errs.count == 0, "small.yaml loads");
    ydoc_errors_release(&errs);
    if (!p)
        return;
    const struct prices_entry *l = prices_find(p, "anthropic/long");
    ok(l && strcmp(l->date, "2024-02-29") == 0 && l->batch_discount_percent == 50 &&
           strcmp(l->source, "https://www.anthropic.com/pricing#api") == 0,
       "entry date, source, batch discount");
    /* the second tier writes only input: the rest is the base's as written */
    ok(l && l->prices.ntiers == 2 && l->prices.tiers[1].above_input_tokens == 1000000 &&
           l->prices.tiers[1].nusd_per_mtok[COST_INPUT] == USD(9, 0) &&
           l->prices.tiers[1].nusd_per_mtok[COST_OUTPUT] == USD(15, 0) &&
           l->prices.tiers[1].nusd_per_mtok[COST_CACHE_WRITE_1H] == USD(6, 0),
       "a tier's unwritten categories: the base's written rates");
    const struct prices_entry *f = prices_find(p, "openai/flat");
    ok(f && f->prices.nusd_per_mtok[COST_CACHE_READ] == USD(0, 400000000) &&
           f->prices.nusd_per_mtok[COST_CACHE_WRITE_1H] == USD(0, 400000000) &&
           f->prices.nusd_per_mtok[COST_REASONING] == USD(1, 600000000) && f->prices.ntiers == 0,
       "unwritten categories: cache as input, reasoning as output");
    prices_free(p);
}

/* every NAME.yaml in dir with a NAME.expected (prefix-filtered) */
static void run_expected(const char *dir, const char *prefix, int as_policy)
{
    DIR *d = opendir(dir);
    ok(d != NULL, "%s exists", dir);
    if (!d)
        return;
    struct dirent *de;
    size_t n = 0;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0 ||
            strncmp(de->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char yaml[512], expected_path[512];
        snprintf(yaml, sizeof yaml, "%s%s", dir, de->d_name);
        snprintf(expected_path, sizeof expected_path, "%s%.*s.expected", dir, (int)(len - 5),
                 de->d_name);
        char *expected = check_read_file(expected_path, NULL);
        if (!expected && as_policy)
            continue; /* a policy that loads: checked by value below */
        n++;
        struct ydoc_errors errs = {0};
        int loaded;
        if (as_policy) {
            struct policy *pol = policy_load(yaml, NULL, &errs);
            loaded = pol != NULL;
            policy_release(pol);
        } else {
            struct prices *p = prices_load(yaml, &errs);
            loaded = p != NULL;
            prices_free(p);
        }
        char *got = join_errors(&errs);
        ok(!loaded, "%s is refused", yaml);
        ok(expected && got && strcmp(expected, got) == 0, "%s: expected\n%sgot\n%s", yaml,
           expected ? expected : "(no .expected)\n", got ? got : "");
        free(got);
        free(expected);
        ydoc_errors_release(&errs);
    }
    closedir(d);
    ok(n >= 3, "%s%s*: at least 3 cases (%zu)", dir, prefix, n);
}

static void test_prices_policy(void)
{
    struct ydoc_errors errs = {0};
    struct policy *p = policy_load(DATA "policy-entries.yaml", NULL, &errs);
    ok(p && errs.count == 0, "policy-entries.yaml loads (%s)", errs.count ? errs.lines[0] : "");
    ydoc_errors_release(&errs);
    if (p) {
        const struct policy_model *l = policy_model_find(p, "long");
        ok(l && l->price_entry && strcmp(l->price_entry, "anthropic/long") == 0 &&
               strcmp(l->price_date, "2024-02-29") == 0 && l->prices.ntiers == 2 &&
               l->prices.nusd_per_mtok[COST_CACHE_WRITE_1H] == USD(6, 0),
           "an entry: its rates, tiers, name and date");
        const struct policy_model *c = policy_model_find(p, "cheaper");
        ok(c && c->prices.nusd_per_mtok[COST_OUTPUT] == USD(14, 0) &&
               c->prices.nusd_per_mtok[COST_CACHE_WRITE] == USD(3, 500000000) &&
               c->prices.nusd_per_mtok[COST_INPUT] == USD(3, 0) &&
               c->prices.nusd_per_mtok[COST_CACHE_WRITE_1H] == USD(6, 0) &&
               c->prices.tiers[0].nusd_per_mtok[COST_OUTPUT] == USD(22, 500000000),
           "overrides replace base figures; written ones and tiers stay the entry's");
        const struct policy_model *f = policy_model_find(p, "flat");
        ok(f && f->prices.nusd_per_mtok[COST_INPUT] == USD(0, 300000000) &&
               f->prices.nusd_per_mtok[COST_CACHE_READ] == USD(0, 300000000),
           "an input override carries to the categories billed as input");
        const struct policy_model *i = policy_model_find(p, "inline");
        ok(i && !i->price_entry && i->price_date[0] == '\0' && i->prices.ntiers == 0 &&
               i->prices.nusd_per_mtok[COST_REASONING] == USD(2, 0),
           "an inline price: no entry, no date");
        policy_release(p);
    }
    p = policy_load(DATA "default/policy.yaml", NULL, &errs);
    ok(p && errs.count == 0, "default/policy.yaml finds prices.yaml beside it");
    ydoc_errors_release(&errs);
    const struct policy_model *pro = p ? policy_model_find(p, "pro") : NULL;
    ok(pro && pro->price_entry && strcmp(pro->price_date, "2025-12-31") == 0 &&
           pro->prices.nusd_per_mtok[COST_CACHE_READ] == USD(0, 125000000),
       "the default table's entry binds");
    policy_release(p);
    p = policy_load("config/policy.yaml", NULL, &errs);
    const struct policy_model *sonnet = p ? policy_model_find(p, "sonnet") : NULL;
    ok(sonnet && sonnet->price_entry &&
           strcmp(sonnet->price_entry, "anthropic/claude-sonnet-4-5") == 0 &&
           sonnet->prices.ntiers == 1,
       "config/policy.yaml prices sonnet from config/prices.yaml, with its tier");
    ydoc_errors_release(&errs);
    policy_release(p);
    run_expected(DATA, "policy-", 1);
}

static void date_line(char *line, int lineno, void *ctx)
{
    (void)ctx;
    char date[64];
    int want;
    if (sscanf(line, "%63s %d", date, &want) != 2) {
        ok(0, "dates.txt:%d: malformed", lineno);
        return;
    }
    ok(prices_date_valid(date) == want, "dates.txt:%d: %s is %s", lineno, date,
       want ? "a date" : "no date");
}

void test_prices(void)
{
    test_prices_shipped();
    test_prices_small();
    run_expected(DATA "bad/", "", 0);
    test_prices_policy();
    ok(check_each_line(DATA "dates.txt", date_line, NULL) >= 10, "dates.txt has the cases");
}

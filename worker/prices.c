/*
 * prices: prices.yaml -> struct prices, every mistake located (file:line:
 * column) and reported in one run. Figures go from decimal text to nUSD
 * per Mtok exactly, never through a double. Must never read a policy,
 * reach the network or log: it only turns a file into figures.
 */
#include "prices.h"

#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const top_keys[] = {"entries", NULL};
static const char *const entry_keys[] = {
    "provider", "model", "date", "source", "price", "tiers", "batch_discount_percent", NULL};
static const char *const tier_keys[] = {"above_input_tokens", "price", NULL};
/* in the order of enum cost_category */
static const char *const rate_keys[COST_NCAT + 1] = {
    "input", "output", "cache_read", "cache_write", "reasoning", "cache_write_1h", NULL};

int prices_date_valid(const char *s)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
            /* every digit checked above: read them directly */
#define DIGITS2(p) (((p)[0] - '0') * 10 + ((p)[1] - '0'))
    int y = DIGITS2(s) * 100 + DIGITS2(s + 2), m = DIGITS2(s + 5), d = DIGITS2(s + 8);
#undef DIGITS2
    if (y < 2000 || m < 1 || m > 12 || d < 1)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m - 1] + (m == 2 && leap);
}

void prices_resolve(const uint64_t rates[COST_NCAT], uint32_t have, uint64_t out[COST_NCAT])
{
    for (int c = 0; c < COST_NCAT; c++)
        out[c] = rates[c];
#define HAVE(c) (have & (1u << (c)))
    if (!HAVE(COST_CACHE_READ))
        out[COST_CACHE_READ] = out[COST_INPUT];
    if (!HAVE(COST_CACHE_WRITE))
        out[COST_CACHE_WRITE] = out[COST_INPUT];
    if (!HAVE(COST_REASONING))
        out[COST_REASONING] = out[COST_OUTPUT];
    /* after the five-minute rate: it falls back on that one */
    if (!HAVE(COST_CACHE_WRITE_1H))
        out[COST_CACHE_WRITE_1H] = out[COST_CACHE_WRITE];
#undef HAVE
}

int prices_bind_rates(struct ydoc *doc, const struct ydoc_node *map, const char *what,
                      const char *const *extra_keys, uint64_t rates[COST_NCAT], uint32_t *have)
{
    int bad = 0;
    if (ydoc_expect_map(doc, map, what) < 0)
        return 1;
    const char *allowed[COST_NCAT + 8];
    size_t n = 0;
    for (int c = 0; c < COST_NCAT; c++)
        allowed[n++] = rate_keys[c];
    for (size_t i = 0; extra_keys && extra_keys[i] && n < COST_NCAT + 7; i++)
        allowed[n++] = extra_keys[i];
    allowed[n] = NULL;
    bad += ydoc_check_keys(doc, map, allowed, what);
    for (int c = 0; c < COST_NCAT; c++) {
        const struct ydoc_node *v = ydoc_get(map, rate_keys[c]);
        if (!v)
            continue;
        if (ydoc_decimal_e9(doc, v, rate_keys[c], COST_MAX_PRICE / 1000000000u, &rates[c]) < 0)
            bad++;
        else
            *have |= 1u << c;
    }
    return bad;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void prices_bind_tiers(struct ydoc *doc, const struct ydoc_node *seq, const char *what,
                              struct prices_entry *e)
{
    char twhat[160];
    snprintf(twhat, sizeof twhat, "%s.tiers", what);
    if (ydoc_expect_seq(doc, seq, twhat) < 0)
        return;
    if (seq->count > COST_MAX_TIERS)
        ydoc_error(doc, seq, "%s: expected at most %d tiers, got %zu", twhat, COST_MAX_TIERS,
                   seq->count);
    for (size_t i = 0; i < seq->count && i < COST_MAX_TIERS; i++) {
        const struct ydoc_node *t = seq->items[i], *v;
        if (ydoc_expect_map(doc, t, twhat) < 0)
            continue;
        ydoc_check_keys(doc, t, tier_keys, twhat);
        struct cost_tier *tier = &e->prices.tiers[e->prices.ntiers];
        int64_t above = 0;
        if (!(v = ydoc_get(t, "above_input_tokens")))
            ydoc_error(doc, t, "%s: missing \"above_input_tokens\"", twhat);
        else if (ydoc_int(doc, v, "above_input_tokens", 1, (int64_t)COST_MAX_TOKENS, &above) == 0 &&
                 e->prices.ntiers > 0 &&
                 (uint64_t)above <= e->prices.tiers[e->prices.ntiers - 1].above_input_tokens)
            ydoc_error(
                doc, v,
                "above_input_tokens: expected more than the tier before's %llu "
                "(thresholds ascend)",
                (unsigned long long)e->prices.tiers[e->prices.ntiers - 1].above_input_tokens);
        /* a category the tier does not write: the base's when written
         * there, else the tier's own default (its input, its output) */
        uint64_t rates[COST_NCAT] = {0};
        uint32_t have = 0;
        if (!(v = ydoc_get(t, "price")))
            ydoc_error(doc, t, "%s: missing \"price\"", twhat);
        else
            prices_bind_rates(doc, v, "price", NULL, rates, &have);
        for (int c = 0; c < COST_NCAT; c++)
            if (!(have & (1u << c)) && (e->have & (1u << c))) {
                rates[c] = e->rates[c];
                have |= 1u << c;
            }
        tier->above_input_tokens = (uint64_t)above;
        prices_resolve(rates, have, tier->nusd_per_mtok);
        e->prices.ntiers++;
    }
}

static void prices_bind_entry(struct ydoc *doc, const struct ydoc_node *k,
                              const struct ydoc_node *map, struct prices_entry *e)
{
    e->name = xstrdup(k->value);
    e->type = PROVIDER_NTYPES;
    char what[128];
    snprintf(what, sizeof what, "entries.%.100s", k->value);
    if (ydoc_expect_map(doc, map, what) < 0)
        return;
    ydoc_check_keys(doc, map, entry_keys, what);
    const struct ydoc_node *v;
    const char *s;
    if (!(v = ydoc_get(map, "provider")))
        ydoc_error(doc, map, "%s: missing \"provider\" (a provider type)", what);
    else if (ydoc_string(doc, v, "provider", &s) == 0) {
        const char *types[PROVIDER_NTYPES + 1];
        for (int t = 0; t < PROVIDER_NTYPES; t++) {
            types[t] = provider_type_name((enum provider_type)t);
            if (strcmp(types[t], s) == 0)
                e->type = (enum provider_type)t;
        }
        types[PROVIDER_NTYPES] = NULL;
        if (e->type == PROVIDER_NTYPES) {
            const char *near = text_nearest(s, types);
            ydoc_error(doc, v, "provider: unknown provider type \"%.64s\"%s%s%s", s,
                       near ? ", did you mean \"" : "", near ? near : "", near ? "\"?" : "");
        }
    }
    if (!(v = ydoc_get(map, "model")))
        ydoc_error(doc, map, "%s: missing \"model\" (the provider's model id)", what);
    else if (ydoc_string(doc, v, "model", &s) == 0)
        e->model = xstrdup(s);
    if (!(v = ydoc_get(map, "date")))
        ydoc_error(doc, map, "%s: missing \"date\" (YYYY-MM-DD the figures were taken)", what);
    else if (ydoc_string(doc, v, "date", &s) == 0) {
        if (!prices_date_valid(s))
            ydoc_error(doc, v, "date: expected a date YYYY-MM-DD, got \"%.32s\"", s);
        else
            memcpy(e->date, s, sizeof e->date);
    }
    if (!(v = ydoc_get(map, "source")))
        ydoc_error(doc, map, "%s: missing \"source\" (the provider's pricing page)", what);
    else if (ydoc_string(doc, v, "source", &s) == 0) {
        if (strncmp(s, "https://", 8) != 0)
            ydoc_error(doc, v, "source: expected an https:// URL, got \"%.64s\"", s);
        e->source = xstrdup(s);
    }
    int64_t pct;
    if ((v = ydoc_get(map, "batch_discount_percent")) &&
        ydoc_int(doc, v, "batch_discount_percent", 0, 100, &pct) == 0)
        e->batch_discount_percent = (uint32_t)pct;
    if (!(v = ydoc_get(map, "price")))
        ydoc_error(doc, map, "%s: missing \"price\"", what);
    else {
        prices_bind_rates(doc, v, "price", NULL, e->rates, &e->have);
        for (int c = COST_INPUT; c <= COST_OUTPUT; c++)
            if (v->type == YDOC_MAP && !ydoc_get(v, rate_keys[c]))
                ydoc_error(doc, v, "price: missing \"%s\" (USD per million tokens)", rate_keys[c]);
    }
    prices_resolve(e->rates, e->have, e->prices.nusd_per_mtok);
    if ((v = ydoc_get(map, "tiers")))
        prices_bind_tiers(doc, v, what, e);
}

static struct prices *prices_bind(struct ydoc *doc, struct ydoc_errors *errs)
{
    struct prices *p = calloc(1, sizeof *p);
    const struct ydoc_node *root = doc->root, *map;
    if (!p)
        goto out;
    if (!root || ydoc_expect_map(doc, root, "the price table") < 0)
        goto out;
    ydoc_check_keys(doc, root, top_keys, "the price table");
    if (!(map = ydoc_get(root, "entries"))) {
        ydoc_error(doc, root, "missing \"entries\"");
        goto out;
    }
    if (ydoc_expect_map(doc, map, "entries") < 0)
        goto out;
    if (map->count > PRICES_MAX_ENTRIES) {
        ydoc_error(doc, map, "entries: expected at most %d, got %zu", PRICES_MAX_ENTRIES,
                   map->count);
        goto out;
    }
    p->entries = calloc(map->count ? map->count : 1, sizeof *p->entries);
    p->names = calloc(map->count + 1, sizeof *p->names);
    p->index = text_index_new(map->count);
    if (!p->entries || !p->names || !p->index) {
        ydoc_error(doc, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < map->count; i++) {
        const struct ydoc_node *k = ydoc_key_at(map, i);
        if (k->type != YDOC_SCALAR) {
            ydoc_error(doc, k, "entries: expected an entry name");
            continue;
        }
        struct prices_entry *e = &p->entries[p->count];
        prices_bind_entry(doc, k, ydoc_value_at(map, i), e);
        if (!e->name)
            continue;
        size_t idx = text_index_add(p->index, e->name, p->count);
        if (idx == TEXT_INDEX_NONE)
            ydoc_error(doc, NULL, "out of memory");
        else if (idx != p->count)
            ydoc_error(doc, k, "entries: \"%.100s\" is listed twice", e->name);
        p->names[p->count++] = e->name;
    }
out:
    if (doc->errs.count > 0 || !root) {
        prices_free(p);
        p = NULL;
    }
    ydoc_take_errors(doc, errs);
    ydoc_free(doc);
    return p;
}

struct prices *prices_load(const char *path, struct ydoc_errors *errs)
{
    struct ydoc *doc = ydoc_load(path);
    return doc ? prices_bind(doc, errs) : NULL;
}

struct prices *prices_parse(const char *name, const char *text, size_t len,
                            struct ydoc_errors *errs)
{
    struct ydoc *doc = ydoc_parse(name, text, len);
    return doc ? prices_bind(doc, errs) : NULL;
}

void prices_free(struct prices *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++) {
        free(p->entries[i].name);
        free(p->entries[i].model);
        free(p->entries[i].source);
    }
    free(p->entries);
    free(p->names);
    text_index_free(p->index);
    free(p);
}

const struct prices_entry *prices_find(const struct prices *p, const char *name)
{
    size_t i = p->index ? text_index_find(p->index, name) : TEXT_INDEX_NONE;
    return i == TEXT_INDEX_NONE ? NULL : &p->entries[i];
}

void prices_nearest(const struct prices *p, const char *name, char *buf, size_t size)
{
    if (size == 0)
        return;
    buf[0] = '\0';
    const char *near = p->names ? text_nearest(name, p->names) : NULL;
    if (near) {
        snprintf(buf, size, "\"%s\"", near);
        return;
    }
    const char *slash = strchr(name, '/');
    size_t plen = slash ? (size_t)(slash - name) + 1 : 0, shown = 0;
    for (size_t i = 0; plen && i < p->count && shown < 3; i++) {
        if (strncmp(p->entries[i].name, name, plen) != 0)
            continue;
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s\"%s\"", shown ? ", " : "", p->entries[i].name);
        shown++;
    }
}

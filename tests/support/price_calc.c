/*
 * price_calc: prices usages with the worker's own table loader
 * (worker/prices.c) and arithmetic (worker/cost.c), for
 * tests/cli/check_prices.sh to compare with @pydantic/genai-prices.
 *
 * usage: price_calc PRICES.yaml          JSON lines on stdin -> stdout
 *        price_calc PRICES.yaml --list   one JSON line per entry
 * In:  {"entry": NAME, "usage": {"input": N, "output": N, "cache_read": N,
 *       "cache_write": N, "cache_write_1h": N, "reasoning": N}}
 *       (our categories: disjoint; absent = 0)
 * Out: {"cost_nusd": N, "tier": T} or {"error": "..."}.
 * --list: {"name","provider","model","date","source","thresholds":[...],
 *          "batch_discount_percent"}.
 * Never touches the network; exits 1 when the table does not load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "prices.h"

static json_t *price_one(const struct prices *table, const json_t *in)
{
    const char *name = json_string_value(json_object_get(in, "entry"));
    const json_t *u = json_object_get(in, "usage");
    if (!name || !json_is_object(u))
        return json_pack("{s:s}", "error", "expected {\"entry\": string, \"usage\": {...}}");
    const struct prices_entry *e = prices_find(table, name);
    if (!e)
        return json_pack("{s:s}", "error", "no such entry");
    struct cost_usage usage = {{0}};
    for (int c = 0; c < COST_NCAT; c++) {
        const json_t *v = json_object_get(u, cost_category_name((enum cost_category)c));
        if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
            return json_pack("{s:s}", "error", "usage: expected non-negative integers");
        usage.tokens[c] = v ? (uint64_t)json_integer_value(v) : 0;
    }
    uint64_t nusd;
    if (cost_compute(&e->prices, &usage, &nusd) < 0)
        return json_pack("{s:s}", "error", "usage beyond the caps of cost.h");
    unsigned tier = cost_tier_for(&e->prices, cost_prompt_tokens(&usage), NULL);
    return json_pack("{s:I, s:i}", "cost_nusd", (json_int_t)nusd, "tier", (int)tier);
}

static void list(const struct prices *table)
{
    for (size_t i = 0; i < table->count; i++) {
        const struct prices_entry *e = &table->entries[i];
        json_t *th = json_array();
        for (size_t t = 0; t < e->prices.ntiers; t++)
            json_array_append_new(th,
                                  json_integer((json_int_t)e->prices.tiers[t].above_input_tokens));
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:i}", "name", e->name, "provider",
                              provider_type_name(e->type), "model", e->model, "date", e->date,
                              "source", e->source, "thresholds", th, "batch_discount_percent",
                              (int)e->batch_discount_percent);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: price_calc PRICES.yaml [--list] < usages.jsonl\n");
        return 2;
    }
    struct ydoc_errors errs = {0};
    struct prices *table = prices_load(argv[1], &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    ydoc_errors_release(&errs);
    if (!table)
        return 1;
    if (argc > 2 && strcmp(argv[2], "--list") == 0) {
        list(table);
        prices_free(table);
        return 0;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        json_error_t jerr;
        json_t *in = json_loadb(line, (size_t)n, 0, &jerr);
        json_t *out = in ? price_one(table, in) : json_pack("{s:s}", "error", jerr.text);
        char *s = out ? json_dumps(out, JSON_COMPACT) : NULL;
        printf("%s\n", s ? s : "{\"error\":\"out of memory\"}");
        free(s);
        json_decref(out);
        json_decref(in);
    }
    free(line);
    prices_free(table);
    return 0;
}

/*
 * prices: config/prices.yaml, the dated price table a policy's models name
 * instead of typing figures: per entry the provider type and model id, USD
 * per million tokens by category with tiers, the batch discount, the date
 * the figures were taken and their public source.
 *
 * A price mapping here and in the policy reads alike: the categories of
 * cost.h, decimals scaled exactly to nUSD per Mtok. Unwritten categories
 * cost what the provider bills them as (prices_resolve).
 */
#ifndef SWITCHYARD_PRICES_H
#define SWITCHYARD_PRICES_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "cost.h"
#include "ydoc.h"

#define PRICES_MAX_ENTRIES 4096

struct prices_entry {
    char *name;              /* "anthropic/claude-sonnet-4-5" */
    enum provider_type type; /* the provider type it is priced for */
    char *model;             /* the provider's model id */
    char date[11];           /* YYYY-MM-DD the figures were taken */
    char *source;            /* the provider's public pricing page */
    /* the base rates as written (bit c of `have` set when category c is),
     * kept so that a policy override resolves the unwritten ones again */
    uint64_t rates[COST_NCAT];
    uint32_t have;
    struct cost_prices prices;       /* resolved: every category, tiers */
    uint32_t batch_discount_percent; /* recorded only: switchyard calls no batch API */
};

struct prices {
    struct prices_entry *entries;
    size_t count;
    const char **names;       /* entries' names, NULL-terminated (borrowed) */
    struct text_index *index; /* name -> index in entries */
};

/* Loads `path`. Returns NULL when there is any error, each appended to
 * *errs as "file:line:column: ...". Free with prices_free. Pure: keeps no
 * state and logs nothing (a policy reload runs it on another thread). */
struct prices *prices_load(const char *path, struct ydoc_errors *errs);
/* Same from memory, `name` standing in for the file name. */
struct prices *prices_parse(const char *name, const char *text, size_t len,
                            struct ydoc_errors *errs);
void prices_free(struct prices *p);

/* Borrowed: the entry named `name` (exact match), or NULL. */
const struct prices_entry *prices_find(const struct prices *p, const char *name);
/* Writes into buf (always NUL-terminated, truncated to size) the entries
 * nearest to `name` for an error message: the nearest by edit distance,
 * else up to three of the same provider type prefix ("anthropic/..."),
 * quoted and comma-separated; "" when there is none. */
void prices_nearest(const struct prices *p, const char *name, char *buf, size_t size);

/* Binds a price mapping's category keys (input, output, cache_read,
 * cache_write, cache_write_1h, reasoning) into rates[], setting bit c of
 * *have for each written; reports keys outside those and `extra_keys`
 * (NULL-terminated, may be NULL) as unknown, with a suggestion. `what`
 * names the mapping in messages. Returns the number of errors. */
int prices_bind_rates(struct ydoc *doc, const struct ydoc_node *map, const char *what,
                      const char *const *extra_keys, uint64_t rates[COST_NCAT], uint32_t *have);
/* out[c] = rates[c] where written, else what the provider bills the
 * category as: cache reads and writes as input, reasoning as output, an
 * hour-long cache write as a five-minute one. Pure. */
void prices_resolve(const uint64_t rates[COST_NCAT], uint32_t have, uint64_t out[COST_NCAT]);
/* 1 when `s` is a real calendar date written YYYY-MM-DD. Pure. */
int prices_date_valid(const char *s);

#endif

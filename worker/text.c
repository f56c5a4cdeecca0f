/*
 * text: string helpers, and the hash index the loaders look names up in.
 * No I/O, no global state (loaders run on a reload thread too).
 */
#include "text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t text_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return (size_t)-1;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *text_nearest(const char *name, const char *const *choices)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; choices[i]; i++) {
        size_t d = text_edit_distance(name, choices[i]);
        if (d < best_d) {
            best_d = d;
            best = choices[i];
        }
    }
    /* a plausible typo: at most 2 edits, and fewer than a third of the word */
    if (best && best_d <= 2 && best_d * 3 <= strlen(name) + 1)
        return best;
    return NULL;
}

int text_is_visible_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '!' || s[i] > '~')
            return 0;
    return 1;
}

struct text_index_slot {
    const char *key; /* NULL: empty */
    size_t value;
    uint64_t hash;
};

struct text_index {
    struct text_index_slot *slots;
    size_t mask; /* slot count - 1; the count is a power of two */
    size_t count;
    uint64_t seed;
};

/* FNV-1a from a per-index seed: the keys come from the operator's own
 * files, so this is about spread, not about hash flooding. */
static uint64_t text_hash(uint64_t seed, const char *s)
{
    uint64_t h = 14695981039346656037ull ^ seed;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static int text_index_alloc(struct text_index *idx, size_t nslots)
{
    idx->slots = calloc(nslots, sizeof *idx->slots);
    if (!idx->slots)
        return -1;
    idx->mask = nslots - 1;
    idx->count = 0;
    return 0;
}

struct text_index *text_index_new(size_t hint)
{
    struct text_index *idx = calloc(1, sizeof *idx);
    if (!idx)
        return NULL;
    size_t n = 16;
    while (n / 2 < hint && n < ((size_t)1 << 40))
        n *= 2;
    idx->seed = (uint64_t)(uintptr_t)idx * 0x9e3779b97f4a7c15ull;
    if (text_index_alloc(idx, n) < 0) {
        free(idx);
        return NULL;
    }
    return idx;
}

void text_index_free(struct text_index *idx)
{
    if (!idx)
        return;
    free(idx->slots);
    free(idx);
}

/* The slot holding key, or the empty slot where it would go. */
static struct text_index_slot *text_index_slot(const struct text_index *idx, const char *key,
                                               uint64_t h)
{
    size_t i = (size_t)h & idx->mask;
    while (idx->slots[i].key && (idx->slots[i].hash != h || strcmp(idx->slots[i].key, key) != 0))
        i = (i + 1) & idx->mask;
    return &idx->slots[i];
}

/* Keeps the table at most half full, so probes stay short. */
static int text_index_reserve(struct text_index *idx)
{
    if (idx->count + 1 <= (idx->mask + 1) / 2)
        return 0;
    struct text_index old = *idx;
    if (text_index_alloc(idx, (old.mask + 1) * 2) < 0) {
        *idx = old;
        return -1;
    }
    for (size_t i = 0; i <= old.mask; i++)
        if (old.slots[i].key) {
            *text_index_slot(idx, old.slots[i].key, old.slots[i].hash) = old.slots[i];
            idx->count++;
        }
    free(old.slots);
    return 0;
}

/* The slot for key, made when absent (key NULL in it then); NULL when out
 * of memory. */
static struct text_index_slot *text_index_upsert(struct text_index *idx, const char *key)
{
    uint64_t h = text_hash(idx->seed, key);
    struct text_index_slot *s = text_index_slot(idx, key, h);
    if (s->key)
        return s;
    if (text_index_reserve(idx) < 0)
        return NULL;
    s = text_index_slot(idx, key, h);
    s->hash = h;
    return s;
}

size_t text_index_add(struct text_index *idx, const char *key, size_t value)
{
    struct text_index_slot *s = text_index_upsert(idx, key);
    if (!s)
        return TEXT_INDEX_NONE;
    if (!s->key) {
        s->key = key;
        s->value = value;
        idx->count++;
    }
    return s->value;
}

int text_index_set(struct text_index *idx, const char *key, size_t value)
{
    struct text_index_slot *s = text_index_upsert(idx, key);
    if (!s)
        return -1;
    if (!s->key) {
        s->key = key;
        idx->count++;
    }
    s->value = value;
    return 0;
}

size_t text_index_find(const struct text_index *idx, const char *key)
{
    const struct text_index_slot *s = text_index_slot(idx, key, text_hash(idx->seed, key));
    return s->key ? s->value : TEXT_INDEX_NONE;
}

/*
 * text: small string helpers shared by the loaders and the decoder.
 */
#ifndef SWITCHYARD_TEXT_H
#define SWITCHYARD_TEXT_H

#include <stddef.h>

/* The name in `choices` (NULL-terminated) nearest to `name` by edit
 * distance, or NULL when none is close enough to be a plausible typo. */
const char *text_nearest(const char *name, const char *const *choices);

/* 1 when every byte of s[0..len) is in the printable ASCII range '!'..'~'. */
int text_is_visible_ascii(const char *s, size_t len);

/* A hash index from NUL-terminated strings to numbers, so that looking
 * names up in a large file stays linear. It grows as keys are added (the
 * callers' own caps bound how many). Keys are borrowed: they must outlive
 * the index. Not thread-safe: one index per caller. */
#define TEXT_INDEX_NONE ((size_t)-1)
struct text_index;
/* `hint`: the expected number of keys (0 if unknown). NULL when out of
 * memory. Free with text_index_free. */
struct text_index *text_index_new(size_t hint);
void text_index_free(struct text_index *idx);
/* Adds key -> value unless key is present. Returns the value now held for
 * key (the earlier one when present), or TEXT_INDEX_NONE when out of memory. */
size_t text_index_add(struct text_index *idx, const char *key, size_t value);
/* Adds or replaces key -> value. Returns 0, or -1 when out of memory. */
int text_index_set(struct text_index *idx, const char *key, size_t value);
/* The value for key, or TEXT_INDEX_NONE. */
size_t text_index_find(const struct text_index *idx, const char *key);

#endif

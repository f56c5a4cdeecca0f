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

#endif

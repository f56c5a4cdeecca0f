/*
 * jscan: a reader of one JSON text in place, for the few fields a reply
 * is read for, with no tree and no allocation. It validates the whole
 * text, and DECLINES (-1) whenever it cannot be sure that jansson
 * (json_loadb, JSON_ALLOW_NUL) reads the text the same way: a \u escape,
 * a number of more than 18 characters or with an exponent of more than 2
 * digits, nesting deeper than JSCAN_MAX_DEPTH, an escape in a key. A caller that declines falls
 * back to jansson, which then gives the answer or the error: jscan must never accept what jansson
 * refuses, nor read a value jansson reads otherwise.
 */
#ifndef SWITCHYARD_JSCAN_H
#define SWITCHYARD_JSCAN_H

#include <stddef.h>
#include <stdint.h>

#define JSCAN_MAX_DEPTH 64

struct jscan {
    const char *p, *end;
    unsigned depth;
    int first; /* in the object or array entered last, nothing read yet */
};

/* A string's bytes between its quotes (borrowed from the text), escapes
 * not yet undone (escaped says whether there are any). */
struct jscan_str {
    const char *s;
    size_t len;
    int escaped;
};

enum jscan_type {
    JSCAN_OBJECT,
    JSCAN_ARRAY,
    JSCAN_STRING,
    JSCAN_INTEGER, /* a number without fraction or exponent: jansson's integer */
    JSCAN_REAL,
    JSCAN_TRUE,
    JSCAN_FALSE,
    JSCAN_NULL,
};

void jscan_init(struct jscan *s, const char *text, size_t len);
/* The type of the value at the reader (whitespace skipped); -1 at the end
 * of the text or at a byte no value starts with. */
int jscan_peek(struct jscan *s);
/* Enters the object or array at the reader. 0, or -1. */
int jscan_enter(struct jscan *s, char open);
/* The next member of the entered object: 1 with *key (no escapes, else
 * -1) and the reader at its value; 0 at its end (left); -1. */
int jscan_member(struct jscan *s, const char **key, size_t *klen);
/* The next element of the entered array: 1 with the reader at it; 0 at
 * its end (left); -1. */
int jscan_element(struct jscan *s);
/* Reads a string, an integer (into *v), or skips any value. 0, or -1. */
int jscan_string(struct jscan *s, struct jscan_str *out);
int jscan_integer(struct jscan *s, int64_t *v);
int jscan_skip(struct jscan *s);
/* 0 when only whitespace is left. */
int jscan_finish(struct jscan *s);
/* Undoes a validated string's escapes into out (str->len + 1 bytes),
 * NUL-terminated; the decoded length. Pure. */
size_t jscan_unescape(const struct jscan_str *str, char *out);

#endif

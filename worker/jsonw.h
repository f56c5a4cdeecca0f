/*
 * jsonw: compact JSON written straight into one growable buffer, for the
 * records switchyard publishes per message (no jansson tree, one
 * allocation in the common case). Output is what jansson's
 * json_dumps(JSON_COMPACT) writes for the same values: strings escape ",
 * \ and control characters (\b \f \n \r \t, else \u00XX in upper-case
 * hex), everything else (DEL, "/", non-ASCII) is copied as is.
 *
 * Strings are bytes with a length (NUL bytes are written as \u0000).
 * Invalid UTF-8 is never written: each byte that does not start a valid
 * sequence (by jansson's rules: no overlong forms, no surrogates, nothing
 * above U+10FFFF) is written as U+FFFD, and jsonw_replaced() counts them.
 *
 * Errors are sticky: after running out of memory, growing past `max`, or a
 * misuse (a close without an open), every call does nothing and
 * jsonw_finish returns NULL. Commas and colons are the writer's: the
 * caller writes keys and values in order.
 */
#ifndef SWITCHYARD_JSONW_H
#define SWITCHYARD_JSONW_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum jsonw_error {
    JSONW_OK,
    JSONW_NOMEM,    /* an allocation failed */
    JSONW_TOO_LONG, /* the text would pass max bytes */
    JSONW_MISUSE,   /* a close without an open, or finish with one open */
    JSONW_DUMP,     /* jansson could not dump a spliced value */
};

struct jsonw {
    char *buf; /* owned; NUL-terminated once finished */
    size_t len, alloc;
    size_t hint;     /* bytes of the first allocation */
    size_t max;      /* bytes of text at most (the NUL not counted) */
    unsigned depth;  /* objects and arrays open */
    int comma;       /* the next key or value follows another */
    size_t replaced; /* invalid UTF-8 bytes written as U+FFFD */
    enum jsonw_error error;
};

/* A point to go back to (jsonw_rewind). */
struct jsonw_mark {
    size_t len;
    unsigned depth;
    int comma;
    size_t replaced;
};

/* An empty writer whose text may grow to max bytes; hint: bytes to
 * allocate at the first write (0: a default). Allocates nothing yet. */
void jsonw_init(struct jsonw *w, size_t hint, size_t max);
/* Frees the buffer unless jsonw_finish handed it over. */
void jsonw_release(struct jsonw *w);

void jsonw_object_open(struct jsonw *w);
void jsonw_object_close(struct jsonw *w);
void jsonw_array_open(struct jsonw *w);
void jsonw_array_close(struct jsonw *w);

/* An object's key (NUL-terminated, escaped as a string). */
void jsonw_key(struct jsonw *w, const char *key);
/* A string value: NUL-terminated (NULL writes null), or n bytes. */
void jsonw_string(struct jsonw *w, const char *s);
void jsonw_string_n(struct jsonw *w, const char *s, size_t n);
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_uint(struct jsonw *w, uint64_t v);
void jsonw_bool(struct jsonw *w, int v); /* nonzero: true */
void jsonw_null(struct jsonw *w);
/* A real as jansson dumps one: "%.17g" (so 0.2 is 0.20000000000000001),
 * a '.' whatever the locale, ".0" when it would read back as an integer,
 * an exponent without '+' or leading zeros ("1e20", "1e-5"). Not finite:
 * JSONW_MISUSE, as jansson refuses it. */
void jsonw_real(struct jsonw *w, double v);
/* Marks the writer failed with e, unless it failed already (the first
 * error stays): for a caller whose own part of a value failed (out of
 * memory building a string), so that jsonw_finish returns NULL. */
void jsonw_fail(struct jsonw *w, enum jsonw_error e);
/* The compact JSON of v (any JSON value; NULL writes null), dumped by
 * jansson straight into the buffer. Borrowed. */
void jsonw_json(struct jsonw *w, const json_t *v);
/* As jsonw_json, but when v's text is more than limit bytes nothing is
 * written (the writer is as before the call) and 1 is returned; else 0.
 * The dump stops at the limit: a large value costs limit bytes at most. */
int jsonw_json_upto(struct jsonw *w, const json_t *v, size_t limit);

/* "key": value in one call each. */
void jsonw_kstring(struct jsonw *w, const char *key, const char *s);
void jsonw_kint(struct jsonw *w, const char *key, int64_t v);
void jsonw_kuint(struct jsonw *w, const char *key, uint64_t v);
void jsonw_kbool(struct jsonw *w, const char *key, int v);

struct jsonw_mark jsonw_mark(const struct jsonw *w);
/* Drops what was written since m (m must come from this writer, with no
 * error since). */
void jsonw_rewind(struct jsonw *w, struct jsonw_mark m);

/* Hands over the text (NUL-terminated, malloc'd: the caller frees it),
 * *len its bytes; NULL when an error happened or an object or array is
 * still open (w->error says which). The writer is empty afterwards. */
char *jsonw_finish(struct jsonw *w, size_t *len);

/* Bytes of s (n of them) that jsonw would write as U+FFFD: 0 when s is
 * valid UTF-8, as jansson's json_stringn would accept it. Pure. */
size_t jsonw_utf8_invalid(const char *s, size_t n);

#endif

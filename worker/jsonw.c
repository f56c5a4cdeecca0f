/*
 * jsonw: a streaming writer of compact JSON, byte for byte what jansson's
 * compact dump writes for the same values, so that records written here
 * and records jansson wrote before are the same bytes. It must never
 * write invalid UTF-8 or a text longer than its max, and never build a
 * tree: a json_t is only ever dumped straight into the buffer.
 */
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strings are escaped in chunks of this many input bytes, each chunk's
 * worst case (6 bytes out per byte in) reserved at once; the buffer may
 * then pass max by at most JSONW_SLACK before the length check fails the
 * writer, which keeps the reservation independent of the input's size. */
#define JSONW_CHUNK 1024u
#define JSONW_SLACK (6u * JSONW_CHUNK + 16u)
#define JSONW_DEFAULT_HINT 1024u
#define JSONW_SHRINK 1024u

void jsonw_init(struct jsonw *w, size_t hint, size_t max)
{
    /* room for the slack and the NUL without overflow */
    size_t top = SIZE_MAX / 2;
    *w = (struct jsonw){.hint = hint ? hint : JSONW_DEFAULT_HINT, .max = max < top ? max : top};
}

void jsonw_release(struct jsonw *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->alloc = 0;
}

void jsonw_fail(struct jsonw *w, enum jsonw_error e)
{
    if (w->error == JSONW_OK)
        w->error = e;
}

/* Room for need more bytes and a NUL; need is at most JSONW_SLACK and
 * len at most max, so the allocation stays under max + JSONW_SLACK + 1. */
static int jsonw_reserve(struct jsonw *w, size_t need)
{
    if (w->error)
        return 0;
    if (w->len + need + 1 <= w->alloc)
        return 1;
    size_t want = w->alloc ? w->alloc * 2 : w->hint;
    if (want < w->len + need + 1)
        want = w->len + need + 1;
    if (want > w->max + JSONW_SLACK + 1)
        want = w->max + JSONW_SLACK + 1;
    char *b = realloc(w->buf, want);
    if (!b) {
        jsonw_fail(w, JSONW_NOMEM);
        return 0;
    }
    w->buf = b;
    w->alloc = want;
    return 1;
}

static int jsonw_check_len(struct jsonw *w)
{
    if (w->len > w->max)
        jsonw_fail(w, JSONW_TOO_LONG);
    return w->error == JSONW_OK;
}

static void jsonw_put(struct jsonw *w, const char *p, size_t n)
{
    while (n > 0 && !w->error) {
        size_t k = n < JSONW_SLACK ? n : JSONW_SLACK;
        if (!jsonw_reserve(w, k))
            return;
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        p += k;
        n -= k;
        jsonw_check_len(w);
    }
}

/* Before a key, or a value that is no object's value: a comma after a
 * sibling. */
static void jsonw_sep(struct jsonw *w)
{
    if (w->comma)
        jsonw_put(w, ",", 1);
}

/* The length of the valid UTF-8 sequence at s (avail bytes), or 0:
 * jansson's rules (utf8_check_first, utf8_check_full). */
static size_t jsonw_utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, v = c & 0x1Fu;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, v = c & 0x0Fu;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, v = c & 0x07u;
    else
        return 0; /* a continuation byte, an overlong lead (C0, C1), or F5..FF */
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0u) != 0x80u)
            return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return n;
}

size_t jsonw_utf8_invalid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        size_t k = jsonw_utf8_seq(u + i, n - i);
        if (k)
            i += k;
        else
            bad++, i++;
    }
    return bad;
}

static const char jsonw_hex[] = "0123456789ABCDEF";

/* The string literal of s: jansson's escapes (dump.c, dump_string without
 * JSON_ESCAPE_SLASH or JSON_ENSURE_ASCII). */
static void jsonw_quoted(struct jsonw *w, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    jsonw_put(w, "\"", 1);
    size_t i = 0;
    while (i < n && !w->error) {
        size_t stop = n - i < JSONW_CHUNK ? n : i + JSONW_CHUNK;
        /* a sequence starting before stop may end past it: it writes no
         * more bytes than it reads, within the slack */
        if (!jsonw_reserve(w, 6u * (stop - i) + 4u))
            return;
        char *out = w->buf + w->len;
        while (i < stop) {
            unsigned char c = u[i];
            if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
                *out++ = (char)c;
                i++;
                continue;
            }
            if (c >= 0x80) {
                size_t k = jsonw_utf8_seq(u + i, n - i);
                if (k) {
                    memcpy(out, u + i, k);
                    out += k;
                    i += k;
                } else {
                    memcpy(out, "\xEF\xBF\xBD", 3);
                    out += 3;
                    w->replaced++;
                    i++;
                }
                continue;
            }
            *out++ = '\\';
            switch (c) {
            case '"':
                *out++ = '"';
                break;
            case '\\':
                *out++ = '\\';
                break;
            case '\b':
                *out++ = 'b';
                break;
            case '\f':
                *out++ = 'f';
                break;
            case '\n':
                *out++ = 'n';
                break;
            case '\r':
                *out++ = 'r';
                break;
            case '\t':
                *out++ = 't';
                break;
            default:
                memcpy(out, "u00", 3);
                out[3] = jsonw_hex[c >> 4];
                out[4] = jsonw_hex[c & 0xFu];
                out += 5;
            }
            i++;
        }
        w->len = (size_t)(out - w->buf);
        jsonw_check_len(w);
    }
    jsonw_put(w, "\"", 1);
}

static void jsonw_open(struct jsonw *w, char c)
{
    jsonw_sep(w);
    jsonw_put(w, &c, 1);
    w->depth++;
    w->comma = 0;
}

static void jsonw_close(struct jsonw *w, char c)
{
    if (w->depth == 0) {
        jsonw_fail(w, JSONW_MISUSE);
        return;
    }
    jsonw_put(w, &c, 1);
    w->depth--;
    w->comma = 1;
}

void jsonw_object_open(struct jsonw *w)
{
    jsonw_open(w, '{');
}

void jsonw_object_close(struct jsonw *w)
{
    jsonw_close(w, '}');
}

void jsonw_array_open(struct jsonw *w)
{
    jsonw_open(w, '[');
}

void jsonw_array_close(struct jsonw *w)
{
    jsonw_close(w, ']');
}

void jsonw_key(struct jsonw *w, const char *key)
{
    jsonw_sep(w);
    jsonw_quoted(w, key, strlen(key));
    jsonw_put(w, ":", 1);
    w->comma = 0;
}

void jsonw_string_n(struct jsonw *w, const char *s, size_t n)
{
    jsonw_sep(w);
    jsonw_quoted(w, s, n);
    w->comma = 1;
}

void jsonw_string(struct jsonw *w, const char *s)
{
    if (s)
        jsonw_string_n(w, s, strlen(s));
    else
        jsonw_null(w);
}

void jsonw_uint(struct jsonw *w, uint64_t v)
{
    char digits[20];
    size_t at = sizeof digits;
    do {
        digits[--at] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jsonw_sep(w);
    jsonw_put(w, digits + at, sizeof digits - at);
    w->comma = 1;
}

void jsonw_int(struct jsonw *w, int64_t v)
{
    if (v >= 0) {
        jsonw_uint(w, (uint64_t)v);
        return;
    }
    jsonw_sep(w);
    jsonw_put(w, "-", 1);
    w->comma = 0;
    jsonw_uint(w, 0 - (uint64_t)v); /* INT64_MIN too */
}

void jsonw_real(struct jsonw *w, double v)
{
    char buf[48];
    int n = isfinite(v) ? snprintf(buf, sizeof buf, "%.17g", v) : -1;
    if (n <= 0 || (size_t)n >= sizeof buf - 3) {
        jsonw_fail(w, JSONW_MISUSE);
        return;
    }
    size_t len = (size_t)n;
    /* a locale's decimal comma, as jansson's from_locale undoes it */
    for (size_t i = 0; i < len; i++)
        if (buf[i] != '-' && buf[i] != '+' && buf[i] != 'e' && (buf[i] < '0' || buf[i] > '9'))
            buf[i] = '.';
    /* a dot or an exponent, or it would read back as an integer */
    if (!memchr(buf, '.', len) && !memchr(buf, 'e', len)) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    char *exp = memchr(buf, 'e', len);
    if (exp) { /* "1e+20" as "1e20", "1e-05" as "1e-5" */
        char *start = exp + 1, *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - buf));
            len -= (size_t)(end - start);
        }
    }
    jsonw_sep(w);
    jsonw_put(w, buf, len);
    w->comma = 1;
}

void jsonw_bool(struct jsonw *w, int v)
{
    jsonw_sep(w);
    if (v)
        jsonw_put(w, "true", 4);
    else
        jsonw_put(w, "false", 5);
    w->comma = 1;
}

void jsonw_null(struct jsonw *w)
{
    jsonw_sep(w);
    jsonw_put(w, "null", 4);
    w->comma = 1;
}

struct jsonw_dump {
    struct jsonw *w;
    size_t start, limit;
    int over;
};

static int jsonw_dump_cb(const char *buffer, size_t size, void *data)
{
    struct jsonw_dump *d = data;
    if (d->w->len - d->start + size > d->limit) {
        d->over = 1;
        return -1;
    }
    jsonw_put(d->w, buffer, size);
    return d->w->error ? -1 : 0;
}

int jsonw_json_upto(struct jsonw *w, const json_t *v, size_t limit)
{
    if (w->error)
        return 0;
    if (!v) {
        if (limit < 4)
            return 1;
        jsonw_null(w);
        return 0;
    }
    struct jsonw_mark m = jsonw_mark(w);
    jsonw_sep(w);
    struct jsonw_dump d = {.w = w, .start = w->len, .limit = limit};
    int rc = json_dump_callback(v, jsonw_dump_cb, &d, JSON_COMPACT | JSON_ENCODE_ANY);
    if (d.over) {
        jsonw_rewind(w, m);
        return 1;
    }
    if (rc != 0)
        jsonw_fail(w, JSONW_DUMP);
    w->comma = 1;
    return 0;
}

void jsonw_json(struct jsonw *w, const json_t *v)
{
    jsonw_json_upto(w, v, SIZE_MAX);
}

void jsonw_kstring(struct jsonw *w, const char *key, const char *s)
{
    jsonw_key(w, key);
    jsonw_string(w, s);
}

void jsonw_kint(struct jsonw *w, const char *key, int64_t v)
{
    jsonw_key(w, key);
    jsonw_int(w, v);
}

void jsonw_kuint(struct jsonw *w, const char *key, uint64_t v)
{
    jsonw_key(w, key);
    jsonw_uint(w, v);
}

void jsonw_kbool(struct jsonw *w, const char *key, int v)
{
    jsonw_key(w, key);
    jsonw_bool(w, v);
}

struct jsonw_mark jsonw_mark(const struct jsonw *w)
{
    return (struct jsonw_mark){
        .len = w->len, .depth = w->depth, .comma = w->comma, .replaced = w->replaced};
}

void jsonw_rewind(struct jsonw *w, struct jsonw_mark m)
{
    if (w->error || m.len > w->len) {
        jsonw_fail(w, JSONW_MISUSE);
        return;
    }
    w->len = m.len;
    w->depth = m.depth;
    w->comma = m.comma;
    w->replaced = m.replaced;
}

char *jsonw_finish(struct jsonw *w, size_t *len)
{
    if (!w->error && w->depth != 0)
        jsonw_fail(w, JSONW_MISUSE);
    if (!jsonw_reserve(w, 0))
        return NULL;
    char *text = w->buf;
    text[w->len] = '\0';
    /* the text may wait long in a producer's queue: give back what
     * doubling left over (a shrink in place, as a rule) */
    if (w->alloc - w->len - 1 >= JSONW_SHRINK) {
        char *b = realloc(text, w->len + 1);
        if (b)
            text = b;
    }
    *len = w->len;
    w->buf = NULL;
    w->len = w->alloc = 0;
    w->depth = 0;
    w->comma = 0;
    return text;
}

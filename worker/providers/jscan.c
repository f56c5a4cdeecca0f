/*
 * jscan: reads the fields a provider reply is read for straight from its
 * text, validating all of it, without building a jansson tree (a tree of
 * a 700-byte reply is some 80 allocations and most of a reply's cost).
 * It must never accept a text jansson refuses or read a value otherwise
 * than jansson: where it is not sure, it declines and the caller asks
 * jansson. It never allocates and never writes to the text.
 */
#include "providers/jscan.h"

#include <string.h>

#include "jsonw.h"

/* Longest number read: 18 digits cannot overflow an int64 (jansson's
 * integer) nor a double, so no text jansson refuses for overflow is
 * accepted. */
#define JSCAN_MAX_NUMBER 18

void jscan_init(struct jscan *s, const char *text, size_t len)
{
    *s = (struct jscan){.p = text, .end = text + len};
}

/* JSON's whitespace: space, tab, line feed, carriage return. */
static void jscan_ws(struct jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

int jscan_peek(struct jscan *s)
{
    jscan_ws(s);
    if (s->p == s->end)
        return -1;
    switch (*s->p) {
    case '{':
        return JSCAN_OBJECT;
    case '[':
        return JSCAN_ARRAY;
    case '"':
        return JSCAN_STRING;
    case 't':
        return JSCAN_TRUE;
    case 'f':
        return JSCAN_FALSE;
    case 'n':
        return JSCAN_NULL;
    default:
        break;
    }
    if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) {
        const char *q = s->p;
        while (q < s->end && ((*q >= '0' && *q <= '9') || *q == '-'))
            q++;
        return q < s->end && (*q == '.' || *q == 'e' || *q == 'E') ? JSCAN_REAL : JSCAN_INTEGER;
    }
    return -1;
}

int jscan_enter(struct jscan *s, char open)
{
    jscan_ws(s);
    if (s->p == s->end || *s->p != open || s->depth >= JSCAN_MAX_DEPTH)
        return -1;
    s->p++;
    s->depth++;
    s->first = 1;
    return 0;
}

/* Before a member or element: ',' (then one follows; none before the
 * first) or the close. 1 for one more, 0 at the close (left), -1. A
 * value read after this cannot have been the first: a nested close
 * leaves first 0 for the enclosing one, which had this value. */
static int jscan_next(struct jscan *s, char close)
{
    int first = s->first;
    s->first = 0;
    jscan_ws(s);
    if (s->p == s->end)
        return -1;
    if (*s->p == close) {
        s->p++;
        s->depth--;
        return 0;
    }
    if (!first) {
        if (*s->p != ',')
            return -1;
        s->p++;
        jscan_ws(s);
        if (s->p < s->end && *s->p == close)
            return -1; /* a trailing comma */
    }
    return 1;
}

int jscan_string(struct jscan *s, struct jscan_str *out)
{
    jscan_ws(s);
    if (s->p == s->end || *s->p != '"')
        return -1;
    const char *start = ++s->p;
    int escaped = 0, wide = 0;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return -1; /* a control character: jansson refuses it */
        if (c >= 0x80) {
            wide = 1;
        } else if (c == '\\') {
            if (s->p + 1 == s->end)
                return -1;
            /* \u is left to jansson: surrogates, NUL, and their rules */
            if (!strchr("\"\\/bfnrt", s->p[1]) || s->p[1] == '\0')
                return -1;
            escaped = 1;
            s->p++;
        }
        s->p++;
    }
    if (s->p == s->end)
        return -1;
    size_t len = (size_t)(s->p - start);
    /* jansson's UTF-8 rules, as jsonw applies them */
    if (wide && jsonw_utf8_invalid(start, len) != 0)
        return -1;
    s->p++;
    *out = (struct jscan_str){.s = start, .len = len, .escaped = escaped};
    return 0;
}

int jscan_member(struct jscan *s, const char **key, size_t *klen)
{
    int rc = jscan_next(s, '}');
    if (rc <= 0)
        return rc;
    struct jscan_str k;
    if (jscan_string(s, &k) < 0 || k.escaped)
        return -1;
    jscan_ws(s);
    if (s->p == s->end || *s->p != ':')
        return -1;
    s->p++;
    *key = k.s;
    *klen = k.len;
    return 1;
}

int jscan_element(struct jscan *s)
{
    return jscan_next(s, ']');
}

/* 1 when a number or literal ending at q ends there: the text's end, or
 * whitespace or a separator follows. */
static int jscan_ends(const struct jscan *s, const char *q)
{
    return q == s->end || *q == ' ' || *q == '\t' || *q == '\r' || *q == '\n' || *q == ',' ||
           *q == ']' || *q == '}';
}

/* A number by JSON's grammar, at most JSCAN_MAX_NUMBER characters; *v
 * its value when it is an integer. -1 for anything else. */
static int jscan_number(struct jscan *s, int64_t *v, int *integer)
{
    jscan_ws(s);
    const char *q = s->p, *start = s->p;
    int neg = 0;
    if (q < s->end && *q == '-')
        neg = 1, q++;
    if (q == s->end || *q < '0' || *q > '9')
        return -1;
    uint64_t n = 0;
    if (*q == '0') {
        q++;
    } else {
        while (q < s->end && *q >= '0' && *q <= '9' && q - start <= JSCAN_MAX_NUMBER)
            n = n * 10 + (uint64_t)(*q++ - '0');
    }
    *integer = 1;
    if (q < s->end && *q == '.') {
        *integer = 0;
        if (++q == s->end || *q < '0' || *q > '9')
            return -1;
        while (q < s->end && *q >= '0' && *q <= '9' && q - start <= JSCAN_MAX_NUMBER)
            q++;
    }
    if (q < s->end && (*q == 'e' || *q == 'E')) {
        *integer = 0;
        q++;
        if (q < s->end && (*q == '+' || *q == '-'))
            q++;
        const char *digits = q;
        if (q == s->end || *q < '0' || *q > '9')
            return -1;
        while (q < s->end && *q >= '0' && *q <= '9' && q - start <= JSCAN_MAX_NUMBER)
            q++;
        /* at most 1e99 times 18 digits: no overflow to infinity, which
         * jansson refuses ("1e999") */
        if (q - digits > 2)
            return -1;
    }
    if (q - start > JSCAN_MAX_NUMBER)
        return -1;
    /* a number runs into nothing but a separator: "1x", "01" are not
     * JSON (jansson reads them as an invalid token) */
    if (!jscan_ends(s, q))
        return -1;
    s->p = q;
    *v = neg ? -(int64_t)n : (int64_t)n;
    return 0;
}

int jscan_integer(struct jscan *s, int64_t *v)
{
    int integer;
    struct jscan save = *s;
    if (jscan_number(s, v, &integer) < 0 || !integer) {
        *s = save;
        return -1;
    }
    return 0;
}

static int jscan_literal(struct jscan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    /* "nullx" is an invalid token */
    return jscan_ends(s, s->p) ? 0 : -1;
}

int jscan_skip(struct jscan *s)
{
    int type = jscan_peek(s), rc;
    const char *key;
    size_t klen;
    struct jscan_str str;
    int64_t v;
    int integer;
    switch (type) {
    case JSCAN_OBJECT:
        if (jscan_enter(s, '{') < 0)
            return -1;
        while ((rc = jscan_member(s, &key, &klen)) == 1)
            if (jscan_skip(s) < 0)
                return -1;
        return rc;
    case JSCAN_ARRAY:
        if (jscan_enter(s, '[') < 0)
            return -1;
        while ((rc = jscan_element(s)) == 1)
            if (jscan_skip(s) < 0)
                return -1;
        return rc;
    case JSCAN_STRING:
        return jscan_string(s, &str);
    case JSCAN_INTEGER:
    case JSCAN_REAL:
        return jscan_number(s, &v, &integer);
    case JSCAN_TRUE:
        return jscan_literal(s, "true");
    case JSCAN_FALSE:
        return jscan_literal(s, "false");
    case JSCAN_NULL:
        return jscan_literal(s, "null");
    default:
        return -1;
    }
}

int jscan_finish(struct jscan *s)
{
    jscan_ws(s);
    return s->p == s->end && s->depth == 0 ? 0 : -1;
}

size_t jscan_unescape(const struct jscan_str *str, char *out)
{
    if (!str->escaped) {
        memcpy(out, str->s, str->len);
        out[str->len] = '\0';
        return str->len;
    }
    size_t o = 0;
    for (size_t i = 0; i < str->len; i++) {
        char c = str->s[i];
        if (c == '\\') {
            c = str->s[++i];
            switch (c) {
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            default:
                break;
            }
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return o;
}

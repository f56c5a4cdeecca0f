/*
 * jsonw: strings against tests/data/jsonw/strings.txt (escapes, invalid
 * UTF-8, the bound), then against jansson's own dump of the same bytes
 * (random strings, long ones across the writer's chunks), then values,
 * nesting, splicing, marks and misuse. Every text written is parsed back
 * by jansson.
 */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "jsonw.h"

/* The table's spelling: \xNN a byte, \\ a backslash, '' nothing. */
static size_t jsonw_unspell(const char *s, char *out)
{
    size_t n = 0;
    if (strcmp(s, "''") == 0)
        return 0;
    while (*s) {
        if (s[0] == '\\' && s[1] == '\\')
            out[n++] = '\\', s += 2;
        else if (s[0] == '\\' && s[1] == 'x') {
            char hex[3] = {s[2], s[3], 0};
            out[n++] = (char)strtoul(hex, NULL, 16);
            s += 4;
        } else
            out[n++] = *s++;
    }
    return n;
}

/* in with U+FFFD for each byte jsonw replaces, to compare a parse with */
static size_t jsonw_expect_parsed(const char *in, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        /* the longest valid sequence at i: jsonw_utf8_invalid of it is 0 */
        size_t len = 0;
        for (size_t l = 1; l <= 4 && i + l <= n && !len; l++)
            if (jsonw_utf8_invalid(in + i, l) == 0)
                len = l;
        if (len) {
            memcpy(out + k, in + i, len);
            k += len;
            i += len;
        } else {
            memcpy(out + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    return k;
}

/* Parses text (a JSON string) and checks it holds want (wn bytes). */
static int jsonw_parses_to(const char *text, size_t len, const char *want, size_t wn)
{
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    int same = json_is_string(j) && json_string_length(j) == wn &&
               memcmp(json_string_value(j), want, wn) == 0;
    json_decref(j);
    return same;
}

static void jsonw_case(char *line, int lineno, void *ctx)
{
    int *cases = ctx;
    char max_s[32], in_s[256], out_s[256];
    if (!ok(sscanf(line, "%31s %255s -> %255s", max_s, in_s, out_s) == 3,
            "strings.txt:%d: MAX INPUT -> OUTPUT", lineno))
        return;
    (*cases)++;
    char in[256], want[256], parsed[800];
    size_t n = jsonw_unspell(in_s, in);
    size_t max = strcmp(max_s, "-") == 0 ? SIZE_MAX : strtoul(max_s, NULL, 10);
    struct jsonw w;
    jsonw_init(&w, 0, max);
    jsonw_string_n(&w, in, n);
    size_t len = 0;
    char *got = jsonw_finish(&w, &len);
    if (strcmp(out_s, "too_long") == 0) {
        ok(!got && w.error == JSONW_TOO_LONG, "strings.txt:%d: too long (error %d)", lineno,
           (int)w.error);
    } else {
        size_t wn = jsonw_unspell(out_s, want);
        ok(got && len == wn && memcmp(got, want, wn) == 0, "strings.txt:%d: writes %s (got %s)",
           lineno, out_s, got ? got : "(null)");
        size_t pn = jsonw_expect_parsed(in, n, parsed);
        ok(got && jsonw_parses_to(got, len, parsed, pn), "strings.txt:%d: parses back", lineno);
        ok(w.replaced == jsonw_utf8_invalid(in, n), "strings.txt:%d: %zu replaced", lineno,
           w.replaced);
    }
    free(got);
    jsonw_release(&w);
}

/* jansson's compact dump of the string (NULL when it refuses the bytes). */
static char *jsonw_jansson(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    return text;
}

static char *jsonw_one(const char *s, size_t n, size_t *len)
{
    struct jsonw w;
    jsonw_init(&w, 16, SIZE_MAX);
    jsonw_string_n(&w, s, n);
    char *text = jsonw_finish(&w, len);
    jsonw_release(&w);
    return text;
}

/* Random strings over pieces that matter; wherever jansson accepts the
 * bytes, the two dumps are the same bytes, and every dump parses back. */
static void jsonw_against_jansson(void)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         " ",
                                         "\"",
                                         "\\",
                                         "/",
                                         "\n",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "\x80",
                                         "\xc3",
                                         "\xed\xa0\x80",
                                         "\xf4\x90\x80\x80",
                                         "\xff"};
    size_t npieces = sizeof pieces / sizeof pieces[0];
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    int same = 1, valid = 0, parsed = 1;
    char buf[4096 * 4], expect[4096 * 12];
    for (int round = 0; round < 3000; round++) {
        size_t n = 0;
        /* mostly short; every 100th long enough to cross several chunks */
        size_t count = round % 100 == 0 ? 3000 : (size_t)(round % 23);
        for (size_t k = 0; k < count; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            const char *p = pieces[(seed >> 33) % npieces];
            /* half the rounds valid only: the first 13 pieces */
            if (round % 2 == 0)
                p = pieces[(seed >> 33) % 13];
            size_t pl = strlen(p);
            memcpy(buf + n, p, pl);
            n += pl;
        }
        if (round % 3 == 0 && n > 0)
            buf[n / 2] = '\0'; /* a NUL inside */
        size_t len = 0;
        char *ours = jsonw_one(buf, n, &len);
        char *theirs = jsonw_jansson(buf, n);
        if (theirs) {
            valid++;
            if (!ours || strlen(theirs) != len || memcmp(ours, theirs, len) != 0) {
                if (same)
                    ok(0, "round %d: jansson %s, jsonw %s", round, theirs, ours ? ours : "");
                same = 0;
            }
        }
        size_t en = jsonw_expect_parsed(buf, n, expect);
        if (!ours || !jsonw_parses_to(ours, len, expect, en))
            parsed = 0;
        free(ours);
        free(theirs);
    }
    ok(same, "every string jansson accepts: the same bytes as jansson's dump");
    ok(valid >= 1500, "at least half the strings were valid (%d)", valid);
    ok(parsed, "every string written parses back to itself (U+FFFD for invalid bytes)");
}

/* Writes a document of every kind of value and compares it with jansson's
 * dump of the same tree. */
static void jsonw_values(void)
{
    json_t *meta = json_pack("{s:[i, f, s, n, b], s:{}, s:[]}", "a", 1, 2.5, "x\ny", 1, "o", "e");
    struct jsonw w;
    jsonw_init(&w, 8, SIZE_MAX); /* tiny hint: grows several times */
    jsonw_object_open(&w);
    jsonw_kint(&w, "min", INT64_MIN);
    jsonw_kint(&w, "max", INT64_MAX);
    jsonw_kint(&w, "neg", -42);
    jsonw_kuint(&w, "zero", 0);
    jsonw_kuint(&w, "u64", INT64_MAX);
    jsonw_kbool(&w, "t", 7);
    jsonw_kbool(&w, "f", 0);
    jsonw_key(&w, "n");
    jsonw_null(&w);
    jsonw_kstring(&w, "null_string", NULL);
    jsonw_key(&w, "k\"ey\n");
    jsonw_array_open(&w);
    jsonw_array_open(&w);
    jsonw_array_close(&w);
    jsonw_object_open(&w);
    jsonw_object_close(&w);
    jsonw_int(&w, -1);
    jsonw_string(&w, "s");
    jsonw_json(&w, meta);
    jsonw_json(&w, NULL);
    jsonw_array_close(&w);
    jsonw_key(&w, "meta");
    jsonw_json(&w, meta);
    jsonw_key(&w, "scalar");
    jsonw_json(&w, json_object_get(meta, "a"));
    jsonw_object_close(&w);
    size_t len = 0;
    char *got = jsonw_finish(&w, &len);
    jsonw_release(&w);
    const char *want =
        "{\"min\":-9223372036854775808,\"max\":9223372036854775807,\"neg\":-42,"
        "\"zero\":0,\"u64\":9223372036854775807,\"t\":true,\"f\":false,\"n\":null,"
        "\"null_string\":null,\"k\\\"ey\\n\":[[],{},-1,\"s\",{\"a\":[1,2.5,\"x\\ny\","
        "null,true],\"o\":{},\"e\":[]},null],\"meta\":{\"a\":[1,2.5,\"x\\ny\",null,"
        "true],\"o\":{},\"e\":[]},\"scalar\":[1,2.5,\"x\\ny\",null,true]}";
    ok(got && strcmp(got, want) == 0 && len == strlen(want), "every kind of value\n got:  %s",
       got ? got : "(null)");
    json_t *back = got ? json_loadb(got, len, 0, NULL) : NULL;
    ok(back && json_equal(json_object_get(back, "meta"), meta), "the spliced value parses back");
    json_decref(back);
    free(got);

    /* the largest: jansson parses no integer past int64, so strtoull does */
    jsonw_init(&w, 0, SIZE_MAX);
    jsonw_uint(&w, UINT64_MAX);
    got = jsonw_finish(&w, &len);
    jsonw_release(&w);
    ok(got && strcmp(got, "18446744073709551615") == 0 && strtoull(got, NULL, 10) == UINT64_MAX,
       "UINT64_MAX (got %s)", got ? got : "(null)");
    free(got);

    /* upto: the metadata's compact text is 51 bytes */
    char *mtext = json_dumps(meta, JSON_COMPACT);
    size_t mlen = strlen(mtext);
    for (size_t limit = mlen - 1; limit <= mlen; limit++) {
        jsonw_init(&w, 0, SIZE_MAX);
        jsonw_array_open(&w);
        jsonw_int(&w, 1);
        int over = jsonw_json_upto(&w, meta, limit);
        jsonw_int(&w, 2);
        jsonw_array_close(&w);
        got = jsonw_finish(&w, &len);
        jsonw_release(&w);
        char expect[200];
        snprintf(expect, sizeof expect, limit < mlen ? "[1,2]" : "[1,%s,2]", mtext);
        ok(got && over == (limit < mlen) && strcmp(got, expect) == 0,
           "upto %zu of %zu bytes: %s (got %s)", limit, mlen, expect, got ? got : "(null)");
        free(got);
    }
    free(mtext);

    /* a mark: the key and value written after it are dropped */
    jsonw_init(&w, 0, SIZE_MAX);
    jsonw_object_open(&w);
    jsonw_kint(&w, "a", 1);
    struct jsonw_mark m = jsonw_mark(&w);
    jsonw_key(&w, "b");
    jsonw_object_open(&w);
    jsonw_kint(&w, "c", 2);
    jsonw_rewind(&w, m);
    jsonw_kbool(&w, "d", 1);
    jsonw_object_close(&w);
    got = jsonw_finish(&w, &len);
    jsonw_release(&w);
    ok(got && strcmp(got, "{\"a\":1,\"d\":true}") == 0, "rewind to a mark (got %s)",
       got ? got : "(null)");
    free(got);
    json_decref(meta);
}

static void jsonw_errors(void)
{
    struct jsonw w;
    size_t len = 0;
    jsonw_init(&w, 0, SIZE_MAX);
    jsonw_object_close(&w);
    jsonw_object_open(&w);
    jsonw_object_close(&w);
    char *got = jsonw_finish(&w, &len);
    ok(!got && w.error == JSONW_MISUSE, "a close without an open fails the writer for good");
    jsonw_release(&w);

    jsonw_init(&w, 0, SIZE_MAX);
    jsonw_array_open(&w);
    got = jsonw_finish(&w, &len);
    ok(!got && w.error == JSONW_MISUSE, "finish with an array open fails");
    jsonw_release(&w);

    /* the bound holds over a long string: nothing past it is kept */
    size_t n = 100000;
    char *big = malloc(n);
    memset(big, '\n', n); /* 2 bytes out per byte in */
    jsonw_init(&w, 0, 50000);
    jsonw_string_n(&w, big, n);
    jsonw_int(&w, 1);
    got = jsonw_finish(&w, &len);
    ok(!got && w.error == JSONW_TOO_LONG && w.alloc <= 50000 + 7 * 1024 + 32,
       "a string past the bound: too long, the buffer within the bound and one chunk (%zu)",
       w.alloc);
    jsonw_release(&w);
    jsonw_init(&w, 0, 2 * n + 2);
    jsonw_string_n(&w, big, n);
    got = jsonw_finish(&w, &len);
    ok(got && len == 2 * n + 2 && got[len] == '\0', "exactly at the bound: written (%zu)", len);
    free(got);
    jsonw_release(&w);
    /* a spliced value past the bound */
    json_t *s = json_stringn(big, n);
    jsonw_init(&w, 0, 1000);
    jsonw_json(&w, s);
    got = jsonw_finish(&w, &len);
    ok(!got && w.error == JSONW_TOO_LONG, "a spliced value past the bound: too long");
    jsonw_release(&w);
    json_decref(s);
    free(big);
}

/* A real in a streamed body is the bytes jansson dumps for it (the
 * bodies were jansson trees; a temperature of 0.2 is 0.20000000000000001
 * either way); a value JSON cannot hold fails the body. */
static void jsonw_reals(void)
{
    static const double values[] = {
        0.0,  -0.0, 1.0,  2.0,  0.2,  0.25, 0.1,     0.7,    1e-5,    1e-7,     1.5e-300,     1e15,
        1e16, 1e17, 1e20, 1e21, 1e22, -0.5, 1.0 / 3, 5e-324, DBL_MAX, -DBL_MAX, 123456789.125};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        struct jsonw w;
        jsonw_init(&w, 0, 1024);
        jsonw_array_open(&w);
        jsonw_int(&w, 1);
        jsonw_real(&w, values[i]);
        jsonw_array_close(&w);
        size_t len;
        char *got = jsonw_finish(&w, &len);
        json_t *tree = json_pack("[i, f]", 1, values[i]);
        char *want = json_dumps(tree, JSON_COMPACT);
        ok(got && want && strcmp(got, want) == 0, "real %.17g: %s, jansson %s", values[i],
           got ? got : "(failed)", want ? want : "(failed)");
        free(got);
        free(want);
        json_decref(tree);
        jsonw_release(&w);
    }
    const double bad[] = {INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < 3; i++) {
        struct jsonw w;
        jsonw_init(&w, 0, 1024);
        jsonw_array_open(&w);
        jsonw_real(&w, bad[i]);
        jsonw_array_close(&w);
        size_t len;
        char *got = jsonw_finish(&w, &len);
        ok(got == NULL && w.error != JSONW_OK, "real %g: no JSON for it, the writer fails", bad[i]);
        free(got);
        jsonw_release(&w);
    }
}

void test_jsonw(void)
{
    int cases = 0;
    check_each_line("tests/data/jsonw/strings.txt", jsonw_case, &cases);
    ok(cases >= 30, "at least 30 string cases (%d)", cases);
    jsonw_against_jansson();
    jsonw_values();
    jsonw_errors();
    jsonw_reals();
}

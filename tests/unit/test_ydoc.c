/*
 * ydoc: positions, duplicate keys, aliases, and the exact decimal reader
 * that prices go through; huge generated documents (the lookups must stay
 * right when they go through indexes) and files that are not files.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "text.h"
#include "ydoc.h"

static struct ydoc *parse(const char *text)
{
    return ydoc_parse("t.yaml", text, strlen(text));
}

static void test_ydoc_positions(void)
{
    struct ydoc *doc = parse("a: 1\nb:\n  c: [x, y]\n  d: {e: f}\n");
    ok(doc && doc->root && doc->errs.count == 0, "parses");
    const struct ydoc_node *b = ydoc_get(doc->root, "b");
    const struct ydoc_node *c = ydoc_get(b, "c");
    ok(c && c->type == YDOC_SEQ && c->count == 2, "c is a list of 2");
    ok(c && c->line == 3 && c->column == 6, "c at 3:6, got %d:%d", c ? c->line : 0,
       c ? c->column : 0);
    const struct ydoc_node *y = c->items[1];
    ok(y->line == 3 && y->column == 10 && strcmp(y->value, "y") == 0, "y at 3:10");
    const struct ydoc_node *e = ydoc_get(ydoc_get(b, "d"), "e");
    ok(e && e->line == 4 && e->column == 10, "e's value at 4:10");
    ydoc_free(doc);
}

static void test_ydoc_errors(void)
{
    struct ydoc_errors errs = {0};
    struct ydoc *doc = parse("a: 1\na: 2\n");
    ydoc_take_errors(doc, &errs);
    ok(errs.count == 1 &&
           strcmp(errs.lines[0], "t.yaml:2:1: duplicate key \"a\" (first at line 1)") == 0,
       "duplicate key located: %s", errs.count ? errs.lines[0] : "(none)");
    ydoc_free(doc);
    ydoc_errors_release(&errs);

    doc = parse("a: [1, 2\nb: 3\n");
    ydoc_take_errors(doc, &errs);
    ok(errs.count == 1 && strncmp(errs.lines[0], "t.yaml:2:2: YAML syntax error", 29) == 0,
       "syntax error located: %s", errs.count ? errs.lines[0] : "(none)");
    ok(doc->root == NULL, "no tree after a syntax error");
    ydoc_free(doc);
    ydoc_errors_release(&errs);

    doc = parse("");
    ydoc_take_errors(doc, &errs);
    ok(errs.count == 1 && strstr(errs.lines[0], "empty"), "empty file is an error");
    ydoc_free(doc);
    ydoc_errors_release(&errs);

    doc = parse("a: *nope\n");
    ydoc_take_errors(doc, &errs);
    ok(errs.count == 1, "an unknown alias is an error");
    ydoc_free(doc);
    ydoc_errors_release(&errs);

    doc = parse("x: 1\n---\ny: 2\n");
    ydoc_take_errors(doc, &errs);
    ok(errs.count == 1 && strstr(errs.lines[0], "one YAML document"), "two documents refused");
    ydoc_free(doc);
    ydoc_errors_release(&errs);
}

static void test_ydoc_alias(void)
{
    struct ydoc *doc = parse("base: &p {input: 1}\nother: *p\n");
    const struct ydoc_node *o = ydoc_get(doc->root, "other");
    ok(o && o->type == YDOC_MAP && ydoc_get(o, "input"), "alias resolves to the anchored map");
    ydoc_free(doc);
}

static void test_ydoc_decimal(void)
{
    static const struct {
        const char *text;
        int ok;
        uint64_t e9;
    } cases[] = {
        {"0.075", 1, 75000000u},
        {"18.75", 1, 18750000000u},
        {"15", 1, 15000000000u},
        {"15.00", 1, 15000000000u},
        {"0.000000001", 1, 1u},
        {"100000", 1, 100000000000000u},
        {"0.0000000001", 0, 0},
        {"1e-3", 0, 0},
        {"-1", 0, 0},
        {".5", 0, 0},
        {"1.", 0, 0},
        {"100001", 0, 0},
        {"cheap", 0, 0},
        {"'0.5'", 0, 0},
        {"1.5.5", 0, 0},
        {"0x10", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "p: %s\n", cases[i].text);
        struct ydoc *doc = parse(text);
        uint64_t v = 0;
        int rc = ydoc_decimal_e9(doc, ydoc_get(doc->root, "p"), "p", 100000, &v);
        ok((rc == 0) == cases[i].ok && (!cases[i].ok || v == cases[i].e9), "decimal %s -> %s %llu",
           cases[i].text, cases[i].ok ? "ok" : "error", (unsigned long long)v);
        ok(cases[i].ok || doc->errs.count == 1, "decimal %s: one located error", cases[i].text);
        ydoc_free(doc);
    }
}

static void test_ydoc_ints_and_keys(void)
{
    struct ydoc *doc = parse("n: 12\nm: \"12\"\nk: 1.5\nbig: 99999999999999999999\n");
    int64_t v = 0;
    ok(ydoc_int(doc, ydoc_get(doc->root, "n"), "n", 0, 100, &v) == 0 && v == 12, "int 12");
    ok(ydoc_int(doc, ydoc_get(doc->root, "m"), "m", 0, 100, &v) < 0, "quoted int refused");
    ok(ydoc_int(doc, ydoc_get(doc->root, "k"), "k", 0, 100, &v) < 0, "1.5 is not an int");
    ok(ydoc_int(doc, ydoc_get(doc->root, "big"), "big", 0, 100, &v) < 0, "overflow refused");
    ok(ydoc_int(doc, ydoc_get(doc->root, "n"), "n", 0, 10, &v) < 0, "over the max refused");
    ok(doc->errs.count == 4, "four errors recorded, got %zu", doc->errs.count);
    ydoc_free(doc);

    static const char *const keys[] = {"routes", "models", "budget", NULL};
    ok(text_nearest("rotues", keys) && strcmp(text_nearest("rotues", keys), "routes") == 0,
       "rotues -> routes");
    ok(text_nearest("modles", keys) && strcmp(text_nearest("modles", keys), "models") == 0,
       "modles -> models");
    ok(text_nearest("zebra", keys) == NULL, "no suggestion for an unrelated word");
}

/* Appends to a growing text buffer (tests only: abort on no memory). */
struct textbuf {
    char *s;
    size_t len, cap;
};

static void tb_printf(struct textbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tb_printf(struct textbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n >= 0 && b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap ? b->cap * 2 : 4096;
        b->s = realloc(b->s, b->cap);
        if (!b->s)
            abort();
    }
}

/* 60,000 keys in one mapping, one of them repeated at the end: the one
 * duplicate is found, at its own line, naming the first. */
static void test_ydoc_huge_mapping(void)
{
    enum { N = 60000 };
    struct textbuf b = {0};
    for (int i = 0; i < N; i++)
        tb_printf(&b, "key%d: %d\n", i, i);
    tb_printf(&b, "key12345: again\n");
    struct ydoc *doc = ydoc_parse("big.yaml", b.s, b.len);
    struct ydoc_errors errs = {0};
    ok(doc && doc->root && doc->root->count == N + 1, "60,001 pairs parsed");
    ydoc_take_errors(doc, &errs);
    ok(errs.count == 1 &&
           strcmp(errs.lines[0], "big.yaml:60001:1: duplicate key \"key12345\" (first at line "
                                 "12346)") == 0,
       "the one duplicate, located: %s", errs.count ? errs.lines[0] : "(none)");
    const struct ydoc_node *v = ydoc_get(doc->root, "key59999");
    ok(v && strcmp(v->value, "59999") == 0, "the last key's value");
    ydoc_free(doc);
    ydoc_errors_release(&errs);
    free(b.s);
}

/* 20,000 anchors, 50,000 aliases to them: each alias is its anchor's node,
 * and a redefined anchor means its latest node from there on. */
static void test_ydoc_many_aliases(void)
{
    enum { ANCHORS = 20000, ALIASES = 50000 };
    struct textbuf b = {0};
    tb_printf(&b, "anchors:\n");
    for (int i = 0; i < ANCHORS; i++)
        tb_printf(&b, "  - &a%d v%d\n", i, i);
    tb_printf(&b, "aliases:\n");
    for (int i = 0; i < ALIASES; i++)
        tb_printf(&b, "  - *a%d\n", (int)(((long)i * 7919) % ANCHORS));
    tb_printf(&b, "again: &a5 redefined\nlater: *a5\n");
    struct ydoc *doc = ydoc_parse("aliases.yaml", b.s, b.len);
    ok(doc && doc->root && doc->errs.count == 0, "parses (%zu errors)", doc ? doc->errs.count : 0);
    const struct ydoc_node *anchors = ydoc_get(doc->root, "anchors");
    const struct ydoc_node *aliases = ydoc_get(doc->root, "aliases");
    ok(anchors && anchors->count == ANCHORS && aliases && aliases->count == ALIASES,
       "both lists complete");
    int right = 0;
    for (size_t i = 0; aliases && anchors && i < aliases->count; i++)
        right += aliases->items[i] == anchors->items[((long)i * 7919) % ANCHORS];
    ok(right == ALIASES, "every alias is its anchor's node (%d of %d)", right, ALIASES);
    const struct ydoc_node *later = ydoc_get(doc->root, "later");
    ok(later && strcmp(later->value, "redefined") == 0, "a redefined anchor: the latest wins");
    ydoc_free(doc);
    free(b.s);
}

/* Errors come out sorted by position even when found out of order (an
 * inner mapping is checked before the one holding it). */
static void test_ydoc_error_order(void)
{
    struct textbuf b = {0};
    for (int i = 0; i < 40; i++)
        tb_printf(&b, "k%d: 1\nk%d: 2\n", i, i); /* outer duplicates, lines 2, 4, ... 80 */
    tb_printf(&b, "inner:\n");
    for (int i = 0; i < 40; i++)
        tb_printf(&b, "  x%d: 1\n  x%d: 2\n", i, i); /* inner duplicates, found first */
    struct ydoc *doc = ydoc_parse("o.yaml", b.s, b.len);
    struct ydoc_errors errs = {0};
    ydoc_take_errors(doc, &errs);
    int sorted = errs.count == 80;
    for (size_t i = 0; sorted && i < errs.count; i++) {
        char want[96];
        snprintf(want, sizeof want, "o.yaml:%zu:%d: duplicate key", 2 * i + 2 + (i >= 40),
                 i >= 40 ? 3 : 1);
        sorted = strncmp(errs.lines[i], want, strlen(want)) == 0;
        if (!sorted)
            ok(0, "error %zu: want %s..., got %s", i, want, errs.lines[i]);
    }
    ok(sorted, "80 errors in position order (%zu)", errs.count);
    ydoc_free(doc);
    ydoc_errors_release(&errs);
    free(b.s);
}

/* Files that are not regular files are refused at once, never read. */
static void test_ydoc_not_regular(void)
{
    struct ydoc_errors errs = {0};
    struct ydoc *doc = ydoc_load("tests");
    ydoc_take_errors(doc, &errs);
    ok(errs.count == 1 && strcmp(errs.lines[0], "tests:1:1: not a regular file (a directory)") == 0,
       "a directory is refused: %s", errs.count ? errs.lines[0] : "(none)");
    ydoc_free(doc);
    ydoc_errors_release(&errs);
    doc = ydoc_load("/dev/null");
    ydoc_take_errors(doc, &errs);
    ok(errs.count == 1 &&
           strcmp(errs.lines[0], "/dev/null:1:1: not a regular file (a character device)") == 0,
       "a device is refused: %s", errs.count ? errs.lines[0] : "(none)");
    ydoc_free(doc);
    ydoc_errors_release(&errs);
}

void test_ydoc(void)
{
    test_ydoc_positions();
    test_ydoc_errors();
    test_ydoc_alias();
    test_ydoc_decimal();
    test_ydoc_ints_and_keys();
    test_ydoc_huge_mapping();
    test_ydoc_many_aliases();
    test_ydoc_error_order();
    test_ydoc_not_regular();
}

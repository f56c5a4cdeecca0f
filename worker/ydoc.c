/*
 * ydoc: YAML -> positioned tree (libyaml events), and the typed readers the
 * config and policy loaders bind with.
 *
 * Never echo a scalar into a message without bounding it: values can be
 * long, and a misplaced secret must not travel far (callers that might hold
 * a secret never pass it to these readers' messages).
 *
 * Every step is linear in the size of the file (keys and anchors are found
 * through hash indexes, errors are merge-sorted), and nothing here keeps
 * state outside the document: a policy is loaded on a reload thread.
 */
#include "ydoc.h"

#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define YDOC_MAX_BYTES (4u << 20) /* config files are small; refuse more */
#define YDOC_MAX_NODES 200000u
#define YDOC_MAX_DEPTH 64u

static void *ydoc_grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *np = realloc(p, ncap * size);
    if (!np)
        return NULL;
    *cap = ncap;
    return np;
}

static int ydoc_errors_push(struct ydoc_errors *errs, char *line)
{
    char **lines = ydoc_grow(errs->lines, &errs->cap, errs->count + 1, sizeof *lines);
    if (!lines)
        return -1;
    errs->lines = lines;
    errs->lines[errs->count++] = line;
    return 0;
}

int ydoc_error(struct ydoc *doc, const struct ydoc_node *node, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    int line = node ? node->line : 1, col = node ? node->column : 1;
    size_t n = strlen(doc->file) + strlen(msg) + 48;
    char *line_text = malloc(n);
    if (!line_text)
        return -1;
    snprintf(line_text, n, "%s:%d:%d: %s", doc->file, line, col, msg);
    if (ydoc_errors_push(&doc->errs, line_text) < 0)
        free(line_text);
    return -1;
}

/* Position of "file:L:C: " parsed back, for sorting. */
static void ydoc_error_pos(const char *s, size_t flen, long *line, long *col)
{
    char *end;
    *line = strtol(s + flen + 1, &end, 10);
    *col = strtol(end + 1, NULL, 10);
}

struct ydoc_sorted {
    long line, col;
    char *text;
};

/* Stable merge sort by position: a file can hold many errors (one per
 * duplicate key), and they arrive mostly but not always in order. */
static void ydoc_sort_errors(struct ydoc_sorted *a, struct ydoc_sorted *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    ydoc_sort_errors(a, tmp, h);
    ydoc_sort_errors(a + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int right_first = a[j].line < a[i].line || (a[j].line == a[i].line && a[j].col < a[i].col);
        tmp[k++] = right_first ? a[j++] : a[i++];
    }
    while (i < h)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

size_t ydoc_take_errors(struct ydoc *doc, struct ydoc_errors *out)
{
    char **e = doc->errs.lines;
    size_t n = doc->errs.count, flen = strlen(doc->file);
    struct ydoc_sorted *sorted = n ? calloc(2 * n, sizeof *sorted) : NULL;
    if (sorted) {
        for (size_t i = 0; i < n; i++) {
            ydoc_error_pos(e[i], flen, &sorted[i].line, &sorted[i].col);
            sorted[i].text = e[i];
        }
        ydoc_sort_errors(sorted, sorted + n, n);
        for (size_t i = 0; i < n; i++)
            e[i] = sorted[i].text;
        free(sorted);
    } /* out of memory: moved unsorted rather than lost */
    size_t moved = 0;
    for (size_t i = 0; i < n; i++) {
        if (ydoc_errors_push(out, e[i]) == 0)
            moved++;
        else
            free(e[i]);
    }
    doc->errs.count = 0;
    return moved;
}

void ydoc_errors_release(struct ydoc_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        free(errs->lines[i]);
    free(errs->lines);
    errs->lines = NULL;
    errs->count = errs->cap = 0;
}

static struct ydoc_node *ydoc_node_new(struct ydoc *doc, enum ydoc_type type,
                                       const yaml_mark_t *mark)
{
    if (doc->nnodes >= YDOC_MAX_NODES)
        return NULL;
    struct ydoc_node **nodes =
        ydoc_grow(doc->nodes, &doc->nodes_cap, doc->nnodes + 1, sizeof(struct ydoc_node *));
    if (!nodes)
        return NULL;
    doc->nodes = nodes;
    struct ydoc_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->type = type;
    n->line = (int)mark->line + 1;
    n->column = (int)mark->column + 1;
    doc->nodes[doc->nnodes++] = n;
    return n;
}

struct anchor {
    char *name;
    struct ydoc_node *node;
};

struct builder {
    struct ydoc *doc;
    struct ydoc_node *stack[YDOC_MAX_DEPTH];
    size_t nitems[YDOC_MAX_DEPTH]; /* items appended so far, per open node */
    size_t depth;
    struct anchor *anchors;
    size_t nanchors, anchors_cap;
    struct text_index *anchor_index; /* name -> latest index in anchors */
    int docs;
};

static int builder_anchor(struct builder *b, const yaml_char_t *name, struct ydoc_node *n)
{
    if (!name)
        return 0;
    struct anchor *a = ydoc_grow(b->anchors, &b->anchors_cap, b->nanchors + 1, sizeof *a);
    if (!a)
        return -1;
    b->anchors = a;
    char *copy = strdup((const char *)name);
    if (!copy)
        return -1;
    b->anchors[b->nanchors].name = copy;
    b->anchors[b->nanchors].node = n;
    b->nanchors++;
    /* a name defined again means its latest node from here on */
    if (!b->anchor_index && !(b->anchor_index = text_index_new(64)))
        return -1;
    return text_index_set(b->anchor_index, copy, b->nanchors - 1);
}

/* Adds a finished node to the open collection (or makes it the root). */
static int builder_add(struct builder *b, struct ydoc_node *n)
{
    if (b->depth == 0) {
        if (b->doc->root)
            return -1;
        b->doc->root = n;
        return 0;
    }
    struct ydoc_node *p = b->stack[b->depth - 1];
    size_t *k = &b->nitems[b->depth - 1];
    struct ydoc_node **items = ydoc_grow(p->items, &p->cap, *k + 1, sizeof(struct ydoc_node *));
    if (!items)
        return -1;
    p->items = items;
    p->items[(*k)++] = n;
    p->count = p->type == YDOC_MAP ? *k / 2 : *k;
    /* a complex key is reported, not fatal: binding skips it */
    if (p->type == YDOC_MAP && *k % 2 == 1 && n->type != YDOC_SCALAR)
        ydoc_error(b->doc, n, "expected a plain key, got %s",
                   n->type == YDOC_MAP ? "a mapping" : "a list");
    return 0;
}

static int builder_push(struct builder *b, struct ydoc_node *n)
{
    if (builder_add(b, n) < 0)
        return -1;
    if (b->depth >= YDOC_MAX_DEPTH) {
        ydoc_error(b->doc, n, "nested deeper than %u levels", YDOC_MAX_DEPTH);
        return -1;
    }
    b->stack[b->depth] = n;
    b->nitems[b->depth] = 0;
    b->depth++;
    return 0;
}

static void builder_dup_error(struct ydoc *doc, const struct ydoc_node *k,
                              const struct ydoc_node *prev)
{
    ydoc_error(doc, k, "duplicate key \"%.64s\" (first at line %d)", k->value, prev->line);
}

/* Reports duplicate keys in a finished mapping, each against the first
 * key of that name. Small mappings are scanned; large ones go through an
 * index, so a mapping of 100,000 keys costs 100,000 lookups. */
static void builder_check_dups(struct ydoc *doc, const struct ydoc_node *map)
{
    struct text_index *idx = map->count > 16 ? text_index_new(map->count) : NULL;
    for (size_t i = 0; idx && i < map->count; i++) {
        const struct ydoc_node *k = map->items[2 * i];
        if (k->type != YDOC_SCALAR)
            continue;
        size_t first = text_index_add(idx, k->value, i);
        if (first == TEXT_INDEX_NONE) { /* out of memory: scan instead */
            text_index_free(idx);
            idx = NULL;
            break;
        }
        if (first != i)
            builder_dup_error(doc, k, map->items[2 * first]);
    }
    if (idx) {
        text_index_free(idx);
        return;
    }
    for (size_t i = 1; i < map->count; i++) {
        const struct ydoc_node *k = map->items[2 * i];
        if (k->type != YDOC_SCALAR)
            continue;
        for (size_t j = 0; j < i; j++) {
            const struct ydoc_node *prev = map->items[2 * j];
            if (prev->type == YDOC_SCALAR && strcmp(prev->value, k->value) == 0) {
                builder_dup_error(doc, k, prev);
                break;
            }
        }
    }
}

static int ydoc_build(struct ydoc *doc, yaml_parser_t *parser)
{
    struct builder b = {.doc = doc};
    int rc = -1;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(parser, &ev)) {
            yaml_mark_t m = parser->problem_mark;
            struct ydoc_node at = {.line = (int)m.line + 1, .column = (int)m.column + 1};
            ydoc_error(doc, &at, "YAML syntax error: %s%s%s",
                       parser->problem ? parser->problem : "unreadable", parser->context ? " " : "",
                       parser->context ? parser->context : "");
            goto out;
        }
        struct ydoc_node *n = NULL;
        int stop = 0, bad = 0;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            stop = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++b.docs > 1) {
                struct ydoc_node at = {.line = (int)ev.start_mark.line + 1,
                                       .column = (int)ev.start_mark.column + 1};
                ydoc_error(doc, &at, "expected one YAML document, found a second");
                bad = 1;
            }
            break;
        case YAML_SCALAR_EVENT:
            n = ydoc_node_new(doc, YDOC_SCALAR, &ev.start_mark);
            if (!n || !(n->value = malloc(ev.data.scalar.length + 1))) {
                bad = 1;
                break;
            }
            memcpy(n->value, ev.data.scalar.value, ev.data.scalar.length);
            n->value[ev.data.scalar.length] = '\0';
            if (memchr(n->value, '\0', ev.data.scalar.length)) {
                ydoc_error(doc, n, "a NUL character is not allowed in a value");
                bad = 1;
                break;
            }
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            if (builder_anchor(&b, ev.data.scalar.anchor, n) < 0 || builder_add(&b, n) < 0)
                bad = 1;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            int is_map = ev.type == YAML_MAPPING_START_EVENT;
            n = ydoc_node_new(doc, is_map ? YDOC_MAP : YDOC_SEQ, &ev.start_mark);
            const yaml_char_t *anchor =
                is_map ? ev.data.mapping_start.anchor : ev.data.sequence_start.anchor;
            if (!n || builder_anchor(&b, anchor, n) < 0 || builder_push(&b, n) < 0)
                bad = 1;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (b.depth > 0) {
                struct ydoc_node *done = b.stack[--b.depth];
                if (done->type == YDOC_MAP)
                    builder_check_dups(doc, done);
            }
            break;
        case YAML_ALIAS_EVENT: {
            struct ydoc_node *target = NULL;
            size_t at_index =
                b.anchor_index ? text_index_find(b.anchor_index, (const char *)ev.data.alias.anchor)
                               : TEXT_INDEX_NONE;
            if (at_index != TEXT_INDEX_NONE)
                /* the index only holds anchors already set */
                /* NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign) */
                target = b.anchors[at_index].node;
            if (!target) {
                struct ydoc_node at = {.line = (int)ev.start_mark.line + 1,
                                       .column = (int)ev.start_mark.column + 1};
                ydoc_error(doc, &at, "unknown alias \"*%.64s\"", ev.data.alias.anchor);
                bad = 1;
            } else if (builder_add(&b, target) < 0) {
                bad = 1;
            }
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (bad) {
            if (doc->errs.count == 0)
                ydoc_error(doc, NULL, "file too large or too complex to parse");
            goto out;
        }
        if (stop)
            break;
    }
    rc = 0;
out:
    text_index_free(b.anchor_index);
    for (size_t i = 0; i < b.nanchors; i++)
        free(b.anchors[i].name);
    free(b.anchors);
    return rc;
}

static struct ydoc *ydoc_new(const char *name)
{
    struct ydoc *doc = calloc(1, sizeof *doc);
    if (!doc)
        return NULL;
    doc->file = strdup(name);
    if (!doc->file) {
        free(doc);
        return NULL;
    }
    return doc;
}

struct ydoc *ydoc_parse(const char *name, const char *text, size_t len)
{
    struct ydoc *doc = ydoc_new(name);
    if (!doc)
        return NULL;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        ydoc_free(doc);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (ydoc_build(doc, &parser) < 0)
        doc->root = NULL;
    else if (!doc->root)
        ydoc_error(doc, NULL, "the file is empty; expected a mapping");
    yaml_parser_delete(&parser);
    return doc;
}

/* strerror is not required to be thread-safe; the GNU strerror_r is */
static const char *ydoc_strerror(int err, char *buf, size_t size)
{
    return strerror_r(err, buf, size);
}

static const char *ydoc_file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return "not a file";
}

/* Reads at most YDOC_MAX_BYTES + 1 bytes of a regular file into *buf.
 * Opened without blocking and checked before reading: a FIFO or a device
 * given as a config file would otherwise block start-up (or a reload
 * thread) for ever. Returns the length, or -1 with the error recorded. */
static long ydoc_read_file(struct ydoc *doc, const char *path, char **buf)
{
    long rc = -1;
    char ebuf[128];
    *buf = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        ydoc_error(doc, NULL, "cannot open: %s", ydoc_strerror(errno, ebuf, sizeof ebuf));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        ydoc_error(doc, NULL, "cannot read the file: %s", ydoc_strerror(errno, ebuf, sizeof ebuf));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ydoc_error(doc, NULL, "not a regular file (%s)", ydoc_file_kind(st.st_mode));
        goto out;
    }
    if (st.st_size > (off_t)YDOC_MAX_BYTES) {
        ydoc_error(doc, NULL, "the file is larger than 4 MiB");
        goto out;
    }
    if (!(*buf = malloc(YDOC_MAX_BYTES + 1)))
        goto out;
    /* the size may change under us: read to the end, up to one byte over */
    size_t len = 0;
    while (len <= YDOC_MAX_BYTES) {
        ssize_t n = read(fd, *buf + len, YDOC_MAX_BYTES + 1 - len);
        if (n == 0)
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ydoc_error(doc, NULL, "cannot read the file: %s",
                       ydoc_strerror(errno, ebuf, sizeof ebuf));
            goto out;
        }
        len += (size_t)n;
    }
    if (len > YDOC_MAX_BYTES) {
        ydoc_error(doc, NULL, "the file is larger than 4 MiB");
        goto out;
    }
    rc = (long)len;
out:
    if (rc < 0) {
        free(*buf);
        *buf = NULL;
    }
    close(fd);
    return rc;
}

struct ydoc *ydoc_load(const char *path)
{
    struct ydoc *doc = ydoc_new(path);
    if (!doc)
        return NULL;
    char *buf;
    long len = ydoc_read_file(doc, path, &buf);
    if (len < 0) {
        if (doc->errs.count == 0) { /* out of memory */
            ydoc_free(doc);
            return NULL;
        }
        return doc;
    }
    ydoc_free(doc);
    doc = ydoc_parse(path, buf, (size_t)len);
    free(buf);
    return doc;
}

void ydoc_free(struct ydoc *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->nnodes; i++) {
        free(doc->nodes[i]->value);
        free(doc->nodes[i]->items);
        free(doc->nodes[i]);
    }
    free(doc->nodes);
    ydoc_errors_release(&doc->errs);
    free(doc->file);
    free(doc);
}

static const char *ydoc_type_name(const struct ydoc_node *n)
{
    switch (n->type) {
    case YDOC_MAP:
        return "a mapping";
    case YDOC_SEQ:
        return "a list";
    case YDOC_SCALAR:
        break;
    }
    return "a value";
}

/* "got ..." text for a message: scalars quoted and bounded. */
static void ydoc_got(const struct ydoc_node *n, char *buf, size_t size)
{
    if (n->type != YDOC_SCALAR)
        snprintf(buf, size, "%s", ydoc_type_name(n));
    else if (n->plain && n->value[0] == '\0')
        snprintf(buf, size, "nothing");
    else
        snprintf(buf, size, "%s\"%.40s%s\"", n->plain ? "" : "a quoted string ", n->value,
                 strlen(n->value) > 40 ? "..." : "");
}

int ydoc_expect_map(struct ydoc *doc, const struct ydoc_node *node, const char *what)
{
    char got[64] = "nothing";
    if (node && node->type == YDOC_MAP)
        return 0;
    if (node)
        ydoc_got(node, got, sizeof got);
    return ydoc_error(doc, node, "%s: expected a mapping, got %s", what, got);
}

int ydoc_expect_seq(struct ydoc *doc, const struct ydoc_node *node, const char *what)
{
    char got[64] = "nothing";
    if (node && node->type == YDOC_SEQ)
        return 0;
    if (node)
        ydoc_got(node, got, sizeof got);
    return ydoc_error(doc, node, "%s: expected a list, got %s", what, got);
}

int ydoc_check_keys(struct ydoc *doc, const struct ydoc_node *map, const char *const *allowed,
                    const char *what)
{
    int bad = 0;
    for (size_t i = 0; i < map->count; i++) {
        const struct ydoc_node *k = map->items[2 * i];
        if (k->type != YDOC_SCALAR)
            continue; /* reported by the parser */
        int known = 0;
        for (size_t j = 0; allowed[j] && !known; j++)
            known = strcmp(allowed[j], k->value) == 0;
        if (known)
            continue;
        bad++;
        const char *near = text_nearest(k->value, allowed);
        if (near)
            ydoc_error(doc, k, "unknown key \"%.64s\" in %s (did you mean \"%s\"?)", k->value, what,
                       near);
        else
            ydoc_error(doc, k, "unknown key \"%.64s\" in %s", k->value, what);
    }
    return bad;
}

const struct ydoc_node *ydoc_get(const struct ydoc_node *map, const char *key)
{
    if (!map || map->type != YDOC_MAP)
        return NULL;
    for (size_t i = 0; i < map->count; i++) {
        const struct ydoc_node *k = map->items[2 * i];
        if (k->type == YDOC_SCALAR && strcmp(k->value, key) == 0)
            return map->items[2 * i + 1];
    }
    return NULL;
}

const struct ydoc_node *ydoc_key_at(const struct ydoc_node *map, size_t i)
{
    return map->items[2 * i];
}

const struct ydoc_node *ydoc_value_at(const struct ydoc_node *map, size_t i)
{
    return map->items[2 * i + 1];
}

static int ydoc_type_error(struct ydoc *doc, const struct ydoc_node *n, const char *key,
                           const char *expected)
{
    char got[64];
    ydoc_got(n, got, sizeof got);
    return ydoc_error(doc, n, "%s: expected %s, got %s", key, expected, got);
}

int ydoc_string(struct ydoc *doc, const struct ydoc_node *node, const char *key, const char **out)
{
    if (node->type != YDOC_SCALAR || (node->plain && node->value[0] == '\0') ||
        (node->plain && strcmp(node->value, "~") == 0) ||
        (node->plain && strcmp(node->value, "null") == 0))
        return ydoc_type_error(doc, node, key, "a string");
    *out = node->value;
    return 0;
}

int ydoc_int(struct ydoc *doc, const struct ydoc_node *node, const char *key, int64_t min,
             int64_t max, int64_t *out)
{
    char expected[96];
    snprintf(expected, sizeof expected, "an integer from %lld to %lld", (long long)min,
             (long long)max);
    if (node->type != YDOC_SCALAR || !node->plain)
        return ydoc_type_error(doc, node, key, expected);
    const char *s = node->value;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno == ERANGE || s[0] == ' ' || v < min || v > max)
        return ydoc_type_error(doc, node, key, expected);
    *out = v;
    return 0;
}

int ydoc_bool(struct ydoc *doc, const struct ydoc_node *node, const char *key, int *out)
{
    if (node->type == YDOC_SCALAR && node->plain) {
        if (strcmp(node->value, "true") == 0)
            return *out = 1, 0;
        if (strcmp(node->value, "false") == 0)
            return *out = 0, 0;
    }
    return ydoc_type_error(doc, node, key, "true or false");
}

int ydoc_enum(struct ydoc *doc, const struct ydoc_node *node, const char *key,
              const char *const *choices, int *out)
{
    if (node->type == YDOC_SCALAR)
        for (int i = 0; choices[i]; i++)
            if (strcmp(choices[i], node->value) == 0)
                return *out = i, 0;
    char expected[160] = "one of";
    for (int i = 0; choices[i]; i++) {
        size_t used = strlen(expected);
        snprintf(expected + used, sizeof expected - used, "%s \"%s\"", i ? "," : "", choices[i]);
    }
    return ydoc_type_error(doc, node, key, expected);
}

int ydoc_decimal_e9(struct ydoc *doc, const struct ydoc_node *node, const char *key,
                    uint64_t max_whole, uint64_t *out)
{
    char expected[96];
    snprintf(expected, sizeof expected, "a decimal number from 0 to %llu with at most 9 decimals",
             (unsigned long long)max_whole);
    if (node->type != YDOC_SCALAR || !node->plain)
        return ydoc_type_error(doc, node, key, expected);
    const char *s = node->value;
    uint64_t whole = 0, frac = 0;
    int digits = 0, fdigits = 0;
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        whole = whole * 10 + (uint64_t)(*s - '0');
        if (whole > max_whole)
            return ydoc_type_error(doc, node, key, expected);
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, fdigits++) {
            if (fdigits == 9)
                return ydoc_type_error(doc, node, key, expected);
            frac = frac * 10 + (uint64_t)(*s - '0');
        }
        if (fdigits == 0)
            return ydoc_type_error(doc, node, key, expected);
    }
    if (*s != '\0' || digits == 0)
        return ydoc_type_error(doc, node, key, expected);
    for (int i = fdigits; i < 9; i++)
        frac *= 10;
    *out = whole * 1000000000u + frac;
    return 0;
}

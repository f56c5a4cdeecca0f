/*
 * ydoc: a YAML document parsed once into a tree whose every node keeps its
 * line and column, plus the helpers that bind that tree to our structs and
 * collect located errors ("file:line:column: what was expected").
 *
 * Errors are collected, not returned one at a time: a loader keeps binding
 * after a bad value so that one run reports every mistake in a file.
 */
#ifndef SWITCHYARD_YDOC_H
#define SWITCHYARD_YDOC_H

#include <stddef.h>
#include <stdint.h>

enum ydoc_type { YDOC_SCALAR, YDOC_MAP, YDOC_SEQ };

struct ydoc_node {
    enum ydoc_type type;
    int line, column; /* 1-based, where the node starts */
    char *value;      /* scalar text, NUL-terminated (NULL for map/seq) */
    int plain;        /* scalar written without quotes */
    /* seq: items[i]; map: items[2i] is a key (scalar), items[2i+1] its value */
    struct ydoc_node **items;
    size_t count; /* seq: number of items; map: number of pairs */
    size_t cap;
};

/* Located error lines, "file:line:col: message". */
struct ydoc_errors {
    char **lines;
    size_t count, cap;
};

/* Frees the lines; the struct itself is the caller's. */
void ydoc_errors_release(struct ydoc_errors *errs);

struct ydoc {
    char *file;             /* as given to ydoc_load, for messages */
    struct ydoc_node *root; /* NULL when the file did not parse */
    struct ydoc_errors errs;
    struct ydoc_node **nodes; /* every node, owned here (aliases share) */
    size_t nnodes, nodes_cap;
};

/* Parses `path`. Always returns a document (NULL only when out of memory);
 * read or syntax errors are in doc->errors and doc->root is then NULL.
 * Free with ydoc_free. */
struct ydoc *ydoc_load(const char *path);
/* Same, from memory; `name` stands in for the file name in messages. */
struct ydoc *ydoc_parse(const char *name, const char *text, size_t len);
void ydoc_free(struct ydoc *doc);

/* Records an error at `node` (or at 1:1 when node is NULL); returns -1. */
int ydoc_error(struct ydoc *doc, const struct ydoc_node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sorts the document's errors by position (stable) and appends them to
 * *out, leaving the document with none. Returns how many were moved. */
size_t ydoc_take_errors(struct ydoc *doc, struct ydoc_errors *out);

/* Map helpers. `what` names the mapping in messages ("the policy", "price").
 * ydoc_expect_map: node must be a mapping; else error, returns -1.
 * ydoc_check_keys: reports every key not in `allowed` (NULL-terminated),
 *   suggesting the nearest allowed key; returns the number of bad keys. */
int ydoc_expect_map(struct ydoc *doc, const struct ydoc_node *node, const char *what);
int ydoc_expect_seq(struct ydoc *doc, const struct ydoc_node *node, const char *what);
int ydoc_check_keys(struct ydoc *doc, const struct ydoc_node *map, const char *const *allowed,
                    const char *what);
/* Borrowed: the value for `key` in `map`, or NULL. */
const struct ydoc_node *ydoc_get(const struct ydoc_node *map, const char *key);
/* Borrowed: the key node of pair i / its value. */
const struct ydoc_node *ydoc_key_at(const struct ydoc_node *map, size_t i);
const struct ydoc_node *ydoc_value_at(const struct ydoc_node *map, size_t i);

/* Typed scalar readers: each reports "key: expected ..., got ..." at the
 * node and returns -1 when the value does not fit; 0 on success. */
int ydoc_string(struct ydoc *doc, const struct ydoc_node *node, const char *key, const char **out);
int ydoc_int(struct ydoc *doc, const struct ydoc_node *node, const char *key, int64_t min,
             int64_t max, int64_t *out);
int ydoc_bool(struct ydoc *doc, const struct ydoc_node *node, const char *key, int *out);
/* One of `choices` (NULL-terminated); *out = its index. */
int ydoc_enum(struct ydoc *doc, const struct ydoc_node *node, const char *key,
              const char *const *choices, int *out);
/* A plain decimal like 0.075 or 18.75 (no exponent, no sign), scaled
 * exactly by 10^9: "0.075" -> 75000000. Up to 9 fractional digits;
 * at most `max_whole` before the point. */
int ydoc_decimal_e9(struct ydoc *doc, const struct ydoc_node *node, const char *key,
                    uint64_t max_whole, uint64_t *out);

#endif

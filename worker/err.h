/*
 * err: the one error value the whole worker passes up.
 *
 * The kind tells the caller what to do; only the event loop (or main, for
 * start-up) logs an error and acts on it. A function either handles an
 * error or fills one and returns, never both.
 */
#ifndef SWITCHYARD_ERR_H
#define SWITCHYARD_ERR_H

#include <stdarg.h>

enum err_kind {
    ERR_NONE = 0,
    ERR_INPUT,     /* a bad message: dead-letter it */
    ERR_UPSTREAM,  /* a provider said no for good: next candidate */
    ERR_TRANSIENT, /* may work later: retry or fall back */
    ERR_CONFIG,    /* refuse to start, or to reload */
    ERR_FATAL,     /* exit */
};

struct err {
    enum err_kind kind;
    char code[32]; /* short machine-readable code, e.g. "too_large" */
    char msg[480]; /* one sentence for a human */
};

/* Fills *e (when e is not NULL) and returns -1, so callers can write
 * `return err_set(e, ERR_INPUT, "too_large", "...")`. */
int err_set(struct err *e, enum err_kind kind, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

const char *err_kind_name(enum err_kind kind);

#endif

/*
 * metrics: the operator's HTTP endpoint, served from the event loop.
 *
 *   GET /metrics  Prometheus text exposition (format 0.0.4), rendered by
 *                 the owner's callback at each scrape
 *   GET /healthz  200 while the loop turns
 *   GET /readyz   200, or 503 when the owner says it is not ready
 *
 * HTTP/1.1, one request per connection (Connection: close), HEAD too.
 * Nothing blocks the loop: non-blocking sockets, a partial write resumes
 * when the socket can take more. Bounded: at most METRICS_MAX_CONNS open
 * connections, a request head of at most 8 KiB, and a deadline per
 * connection; a slow or hostile client costs a slot, never the worker.
 */
#ifndef SWITCHYARD_METRICS_H
#define SWITCHYARD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "loop.h"

#define METRICS_MAX_CONNS 32
#define METRICS_CONN_TIMEOUT_MS 5000

/* A growing text buffer the render callback writes into. On allocation
 * failure it stops growing and the scrape answers 500. */
struct metrics_buf {
    char *data;
    size_t len, cap;
    int failed;
};

void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a Prometheus label value: backslash, double quote and
 * newline escaped. */
void metrics_label(struct metrics_buf *b, const char *s);

struct metrics_handlers {
    void (*render)(void *ctx, struct metrics_buf *out);
    /* 1 when ready; *why says why not (a short static string) */
    int (*ready)(void *ctx, const char **why);
};

struct metrics;

/* Listens on `where`: "HOST:PORT", HOST a numeric IPv4 or IPv6 address
 * (the latter in brackets) or a name; port 0 picks a free one. NULL with
 * e filled (ERR_CONFIG) when the address cannot be bound. */
struct metrics *metrics_new(struct loop *loop, const char *where,
                            const struct metrics_handlers *handlers, void *ctx, struct err *e);
/* Closes the listener and every open connection. Accepts NULL. */
void metrics_free(struct metrics *m);
/* The bound address as "HOST:PORT" (with the port the kernel chose). */
const char *metrics_address(const struct metrics *m);

#endif

/*
 * http: libcurl multi, driven by the loop through curl's socket API
 * (no curl_multi_poll, which walks every transfer on each wake-up).
 * Transfers are spread over shards, each its own multi handle holding a
 * bounded number of transfers, so curl's connection-reuse search stays
 * short however many calls are in flight. HTTP/2 is used where the server
 * offers it over TLS, with multiplexing.
 */
#ifndef SWITCHYARD_HTTP_H
#define SWITCHYARD_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "loop.h"
#include "ratelimit.h"

struct http;
struct http_transfer;
typedef void (*http_done_cb)(struct http_transfer *t);

struct http_transfer {
    /* set by the caller before http_submit; all borrowed until done */
    const char *url;
    char *const *headers; /* "Name: value" */
    size_t nheaders;
    const char *body;
    size_t body_len;
    long timeout_ms;
    long connect_timeout_ms;
    http_done_cb done; /* called once, from the loop, unless cancelled */
    void *data;

    /* filled when done */
    long status;         /* HTTP status; 0 when no response arrived */
    int transport_error; /* curl's code; 0 = a complete response */
    char error[256];     /* for a transport error: what happened */
    char *response;      /* owned by the transfer until http_transfer_release */
    size_t response_len;
    int64_t retry_after_ms;       /* from retry-after-ms or Retry-After; -1 when absent */
    struct ratelimit_hints hints; /* the reply's rate-limit headers */
    uint64_t latency_ms;

    /* private */
    void *easy;
    struct http_shard *shard;
    uint64_t started_ms;
    size_t response_cap;
    void *slist;
    LIST_ENTRY(http_transfer) link; /* running transfers */
};

struct http_options {
    size_t transfers_per_shard; /* 0 = default (64) */
    size_t max_response_bytes;  /* 0 = default (8 MiB) */
};

struct http *http_new(struct loop *loop, const struct http_options *opt);
/* Cancels every transfer still running (their callbacks are not called). */
void http_free(struct http *http);

/* Starts t. 0, or -1 with t->error set (then done is not called). */
int http_submit(struct http *http, struct http_transfer *t);
/* Stops t if it is running; its callback will not be called. */
void http_cancel(struct http *http, struct http_transfer *t);
/* Frees what a finished transfer holds (the response buffer). */
void http_transfer_release(struct http_transfer *t);

#endif

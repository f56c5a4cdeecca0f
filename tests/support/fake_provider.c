/*
 * fake_provider.c - a fake LLM provider for switchyard's end-to-end tests,
 * demo and benchmarks.
 *
 * It speaks OpenAI Chat Completions (and Azure OpenAI's deployment path) and
 * Anthropic Messages over real HTTP/1.1 on a loopback address, with token
 * usage computed by a fixed rule (so tests can predict exact costs), a
 * configurable latency, and injected faults: error statuses with
 * Retry-After, timeouts, dropped connections, truncated, malformed and slow
 * bodies. A status fault with echo_key:N answers a long error message
 * (N + key + 120 bytes, one word around the key, like a real provider
 * quoting a value) that holds, at byte N, the API key the request carried
 * (Authorization: Bearer, api-key or x-api-key): the tests' way to check
 * that no piece of a key a provider echoes ever leaves the worker. One thread, one epoll loop and a
 * binary min-heap of due times: it serves tens of thousands of requests a second and ten thousand
 * open keep-alive connections.
 *
 * Faults never answered: `timeout` and `hang` are the same behaviour under
 * two names (scenarios say which they test): the request is read, no byte
 * of a reply is ever sent, later requests on that connection are read and
 * ignored, and the connection stays open until the client closes it; the
 * log line (status null) is written at once. `stall` sends the head and half
 * the body, then nothing, keeping the connection open the same way (a reply
 * that hangs midway); `truncate` sends as much then closes; `slow` sends the
 * whole reply, head first, in 20 pieces 50 ms apart.
 *
 * Rate limits, like the providers' (--limit MODEL:rpm=N[,tpm=N]
 * [,window=rolling|fixed][,headers=0|1], MODEL "*" for every model without
 * a rule of its own, each model its own buckets): buckets per (API key as
 * the request carried it, model), so two clients with one key share them.
 * rolling (default): a token bucket of capacity N refilled continuously at
 * N a minute; fixed: N per minute counted from the window's first request.
 * A call costs one request and, for tpm, its input estimate (the rule
 * below) plus its max_completion_tokens / max_tokens (0 when absent),
 * taken at admission. A call over either limit is answered 429 at once (no
 * latency, no fault) in the provider's shape: OpenAI
 * {"error":{"message":"Rate limit reached for M in organization org-fake on
 * requests per min (RPM): Limit N, Used U, Requested 1. Please try again in
 * D. ...","type":"requests"|"tokens","param":null,"code":"rate_limit_exceeded"}}
 * with retry-after (whole seconds, rounded up, at least 1) and
 * retry-after-ms (exact); Anthropic {"type":"error","error":{"type":
 * "rate_limit_error","message":...}} with retry-after. With headers=1 every
 * reply to an admitted or refused call of a limited model carries the
 * provider's headers: OpenAI x-ratelimit-{limit,remaining,reset}-{requests,
 * tokens} (reset: a Go duration until the bucket is full again, "0s",
 * "17ms", "1.5s", "6m0s"); Anthropic anthropic-ratelimit-{requests,tokens,
 * input-tokens,output-tokens}-{limit,remaining,reset} (reset: RFC 3339 UTC
 * when full again; the three token families show the one tpm bucket). Only
 * the limits a rule sets get headers. headers=0 sends none of them; 429s
 * keep retry-after (and retry-after-ms).
 *
 * Control while it runs (not logged, no seq, not in requests_total, never
 * limited): POST /control {"limits":["SPEC",...]} replaces the --limit
 * rules (a bucket whose model's numbers changed starts full with the new
 * ones; one whose model lost its rule goes), {"faults":["MODEL:KIND[@COUNT]",
 * ...]} replaces the --fault rules, {"clear":true} removes both first; all
 * or nothing: 200 with {"limits":[...],"faults":[...]} (faults with the
 * counts they have left), or 400 {"error":"why"}. GET /control shows the
 * rules. GET /stats adds "rate_limited" and "models": {MODEL: {"requests",
 * "rate_limited", "status": {"200": n, "429": n, "none": n}}}. Log lines
 * of provider calls carry "model", and a refused call "rate_limited": true
 * with status 429.
 *
 * It must never: listen on anything but loopback, connect anywhere, block
 * (no sleep, no blocking socket call: latency is a timer), or let a client
 * grow a buffer past its cap (request head 64 KiB, body 8 MiB, 64
 * pipelined requests awaiting their replies, 100,000 rate-limit buckets
 * after which all start afresh, 1,024 models counted by name in /stats).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define FAKE_HEAD_MAX ((size_t)64 * 1024)       /* request line + headers */
#define FAKE_BODY_MAX ((size_t)8 * 1024 * 1024) /* Content-Length */
#define FAKE_READ_CHUNK ((size_t)64 * 1024)
/* a request in progress plus one read of the next ones */
#define FAKE_IN_MAX (FAKE_HEAD_MAX + FAKE_BODY_MAX + FAKE_READ_CHUNK)
#define FAKE_OUT_MAX ((size_t)64 * 1024 * 1024)
#define FAKE_OUT_HIGH ((size_t)1024 * 1024) /* unsent bytes that hold replies back */
#define FAKE_QUEUE_MAX 64                   /* requests awaiting their reply, per connection */
#define FAKE_HEADERS_MAX 128
#define FAKE_RULES_MAX 64
#define FAKE_LINGER_MS 2000 /* after a closing reply, wait this long for the client's EOF */
#define FAKE_SLOW_STEP_MS 50
#define FAKE_SLOW_CHUNKS 20 /* x 50 ms: a slow body takes about 1 s */
#define FAKE_LOG_FLUSH_MS 100
#define FAKE_WORDS_MAX 256
#define FAKE_DIRECTIVE_MAX 1000000000L
#define FAKE_NO_INDEX SIZE_MAX
#define FAKE_ECHO_MAX 4096 /* echo_key:N, N at most this */
#define FAKE_LIMITS_MAX 64
#define FAKE_LIMIT_NUM_MAX 1000000000u /* rpm / tpm at most this */
#define FAKE_MINUTE_MS UINT64_C(60000)
#define FAKE_BUCKETS_MAX ((size_t)100000) /* (key, model) pairs; past it all start afresh */
#define FAKE_MODELS_MAX 1024              /* models counted by name in /stats */
#define FAKE_EXTRA_MAX ((size_t)2048)     /* rate-limit headers of one reply */

enum fake_fault_kind {
    FAKE_FAULT_NONE,
    FAKE_FAULT_STATUS,
    FAKE_FAULT_TIMEOUT,
    FAKE_FAULT_CLOSE,
    FAKE_FAULT_TRUNCATE,
    FAKE_FAULT_MALFORMED,
    FAKE_FAULT_SLOW,
    FAKE_FAULT_HANG,
    FAKE_FAULT_STALL,
};

struct fake_fault {
    enum fake_fault_kind kind;
    int status;       /* FAKE_FAULT_STATUS: 400..599 */
    long retry_after; /* seconds; -1: default (1 for 429, else no header) */
    long echo_key;    /* FAKE_FAULT_STATUS: the request's key at this byte of
                         the error message; -1: no echo */
};

/* --fault MODEL:KIND[@COUNT] */
struct fake_rule {
    char *model; /* "*" matches every model */
    struct fake_fault fault;
    long remaining; /* requests still to fault; -1: all */
};

/* --limit MODEL:rpm=N[,tpm=N][,window=rolling|fixed][,headers=0|1] */
struct fake_limit {
    char *model;       /* "*": every model without a rule of its own, each its own buckets */
    uint64_t rpm, tpm; /* per minute; 0: that limit is off */
    bool fixed;        /* a window from the first request, else a rolling token bucket */
    bool headers;      /* send the provider's rate-limit headers */
};

/* One limit of a bucket. */
struct fake_meter {
    uint64_t level; /* rolling: what is left, in 1/60000 of a request or token */
    uint64_t stamp; /* rolling: when level was last refilled; fixed: the window's start */
    uint64_t used;  /* fixed: taken in the window */
    bool open;      /* fixed: a window is running */
};

/* The buckets of one (API key, model). */
struct fake_bucket {
    struct fake_bucket *next;
    uint64_t hash;
    size_t model_len, key_len;
    uint64_t rpm, tpm; /* the rule the meters were filled for */
    bool fixed;
    struct fake_meter req, tok;
    char id[]; /* model, NUL, key */
};

struct fake_options {
    const char *host;
    unsigned port;
    const char *ready_file;
    const char *log_path;
    uint64_t latency_ms;
    uint64_t jitter_ms;
    uint64_t seed;
    uint64_t output_tokens;
    struct fake_rule rules[FAKE_RULES_MAX];
    size_t nrules;
    struct fake_limit limits[FAKE_LIMITS_MAX];
    size_t nlimits;
};

enum fake_route {
    FAKE_ROUTE_OPENAI,
    FAKE_ROUTE_AZURE,
    FAKE_ROUTE_ANTHROPIC,
    FAKE_ROUTE_HEALTHZ,
    FAKE_ROUTE_STATS,
    FAKE_ROUTE_CONTROL,
    FAKE_ROUTE_OTHER,
    FAKE_ROUTE_COUNT,
};

static const char *const fake_route_names[FAKE_ROUTE_COUNT] = {
    "/v1/chat/completions",
    "/openai/deployments/{deployment}/chat/completions",
    "/v1/messages",
    "/healthz",
    "/stats",
    "/control",
    "other",
};

enum fake_api { FAKE_API_OPENAI, FAKE_API_ANTHROPIC };

enum fake_action {
    FAKE_ACT_SEND,
    FAKE_ACT_SLOW,
    FAKE_ACT_TRUNCATE,
    FAKE_ACT_CLOSE,
    FAKE_ACT_TIMEOUT,
    FAKE_ACT_STALL,
};

/* What happens once the output buffer is empty. */
enum fake_after {
    FAKE_AFTER_NONE,
    FAKE_AFTER_CLOSE,  /* close at once (faults) */
    FAKE_AFTER_LINGER, /* shut down writing, drain input, then close */
};

struct fake_buf {
    char *data;
    size_t off; /* data[off..len) is pending */
    size_t len;
    size_t cap;
};

/* One request's answer, waiting in its connection's queue until due. */
struct fake_reply {
    struct fake_reply *next;
    enum fake_action action;
    enum fake_route route;
    int status;        /* status line sent; 0: never answers */
    bool close_after;  /* the request asked for Connection: close */
    bool resolved;     /* logged and counted */
    bool rate_limited; /* a 429 of --limit */
    json_t *mstats;    /* the model's counters in /stats; borrowed, NULL: none */
    uint64_t due;      /* monotonic ms */
    char *data;        /* head then body */
    size_t head_len;
    size_t len;
    size_t sent; /* FAKE_ACT_SLOW: bytes of data already queued for output */
    json_t *log; /* entry to write when resolved; NULL when not logging */
};

struct fake_conn {
    struct fake_conn *prev, *next;
    int fd;
    uint64_t serial;
    uint64_t nreq;
    uint32_t events;   /* epoll interest now registered */
    size_t heap_index; /* FAKE_NO_INDEX when no timer */
    uint64_t due;      /* monotonic ms, when in the heap */
    struct fake_buf in, out;
    size_t scanned;  /* pending input searched for the end of the head */
    size_t head_len; /* of the request in progress, when need > 0 */
    size_t need;     /* head + body bytes of the request in progress; 0: head not seen */
    bool discard;    /* a reply that ends the connection is queued: ignore input */
    bool peer_eof;
    bool draining; /* write side shut down, waiting for EOF or linger_due */
    uint64_t linger_due;
    enum fake_after after;
    struct fake_reply *head, *tail;
    size_t queued;
};

struct fake_stats {
    uint64_t requests;
    uint64_t faults;
    uint64_t by_route[FAKE_ROUTE_COUNT];
    uint64_t by_status[FAKE_ROUTE_COUNT][600]; /* [0]: never answered */
    uint64_t conns_open;
    uint64_t conns_max;
    uint64_t conns_total;
    uint64_t rate_limited;
};

struct fake_server {
    struct fake_options opt;
    int epfd, lfd, sfd, spare_fd;
    FILE *log;
    bool log_dirty;
    uint64_t log_flushed_at; /* monotonic ms */
    struct fake_conn **heap; /* min-heap of connections by due */
    size_t heap_len, heap_cap;
    struct fake_conn *conns;
    uint64_t rng;
    uint64_t seq;
    uint64_t conn_serial;
    struct fake_stats stats;
    json_t *models;             /* model -> {requests, rate_limited, status}; owned */
    struct fake_bucket **slots; /* (key, model) buckets, chained by hash */
    size_t nslots, nbuckets;
    bool stop;
    char scratch[FAKE_READ_CHUNK];
    char dump[FAKE_READ_CHUNK];
};

struct fake_header {
    char *name; /* lower-cased in place */
    size_t name_len;
    char *value;
    size_t value_len;
};

struct fake_head {
    char *method;
    size_t method_len;
    char *target;
    size_t target_len;
    int minor; /* HTTP/1.minor */
    bool keep_alive;
    bool expect_continue;
    uint64_t content_length;
    size_t nheaders;
    struct fake_header headers[FAKE_HEADERS_MAX];
};

struct fake_request {
    const struct fake_head *head; /* NULL when the head could not be read */
    uint64_t seq;
    enum fake_route route;
    const char *path, *query, *deployment;
    size_t path_len, query_len, deployment_len;
    const char *body;
    size_t body_len;
    json_t *json; /* parsed body or NULL; owned */
    json_t *log;  /* log entry under construction or NULL; owned */
};

struct fake_outcome {
    int status;   /* 0: nothing is sent */
    json_t *json; /* JSON reply body; owned */
    char *raw;    /* non-JSON reply body; owned */
    size_t raw_len;
    const char *content_type;
    const char *id_header; /* header carrying a request id, or NULL */
    long retry_after;      /* seconds for Retry-After; -1: none */
    long latency;          /* ms from #latency=; -1: the configured latency */
    bool provider;         /* a provider endpoint: latency applies */
    struct fake_fault fault;
    uint64_t delay_ms;
    bool rate_limited;          /* a 429 of --limit: no latency */
    json_t *mstats;             /* the model's counters; borrowed */
    char extra[FAKE_EXTRA_MAX]; /* more header lines, each ending in CRLF */
    size_t extra_len;
};

struct fake_directives {
    long out, cached, cache_write, reasoning, latency; /* -1: absent */
    bool has_fault;
    struct fake_fault fault;
};

static int fake_tag_listen, fake_tag_signal; /* epoll tags: their addresses */

static const char *const fake_words[] = {
    "switchyard", "routes", "each",    "request", "to",      "the",       "best",  "model",
    "that",       "fits",   "its",     "budget",  "and",     "reports",   "what",  "it",
    "cost",       "so",     "finance", "can",     "add",     "up",        "every", "token",
    "by",         "tenant", "task",    "day",     "without", "surprises", "or",    "guesswork",
};

static void fake_conn_close(struct fake_server *srv, struct fake_conn *c);

/* ---- small helpers ---- */

static uint64_t fake_clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t fake_mono_ms(void)
{
    return fake_clock_ms(CLOCK_MONOTONIC);
}

/* splitmix64: a tiny, seedable generator, good enough for jitter */
static uint64_t fake_rand(struct fake_server *srv)
{
    uint64_t z = (srv->rng += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static bool fake_eq(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);

    return n == m && memcmp(s, lit, m) == 0;
}

static bool fake_prefix(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);

    return n >= m && memcmp(s, lit, m) == 0;
}

static bool fake_is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Parses s[0..n) as a decimal number <= max; -1 if it is not one. */
static int fake_parse_num(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!fake_is_digit(s[i]))
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

/* A JSON string for bytes that may not be UTF-8: offending bytes become '?'.
 * Return value: new reference (null on allocation failure). */
static json_t *fake_json_text(const char *s, size_t n)
{
    json_t *v = json_stringn(s, n);
    char *copy;

    if (v != NULL)
        return v;
    copy = malloc(n + 1);
    if (copy == NULL)
        return json_null();
    for (size_t i = 0; i < n; i++)
        copy[i] = (s[i] > 0 && (unsigned char)s[i] < 0x80) ? s[i] : '?';
    v = json_stringn(copy, n);
    free(copy);
    return v != NULL ? v : json_null();
}

/* ---- buffers ---- */

static size_t fake_buf_pending(const struct fake_buf *b)
{
    return b->len - b->off;
}

/* Makes room for n more bytes, the buffer never exceeding limit;
 * -1 when it would, or when memory runs out. */
static int fake_buf_reserve(struct fake_buf *b, size_t n, size_t limit)
{
    size_t cap;
    char *p;

    if (b->off > 0 && b->cap - b->len < n) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len >= n)
        return 0;
    if (n > limit - b->len)
        return -1;
    cap = b->cap != 0 ? b->cap : 2048;
    while (cap - b->len < n)
        cap *= 2;
    if (cap > limit)
        cap = limit;
    p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int fake_buf_append(struct fake_buf *b, const char *p, size_t n, size_t limit)
{
    if (fake_buf_reserve(b, n, limit) != 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static void fake_buf_release(struct fake_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Drops n pending bytes; an emptied buffer gives its memory back, so ten
 * thousand idle connections cost no buffers. */
static void fake_buf_consume(struct fake_buf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len)
        fake_buf_release(b);
}

/* ---- timers: a binary min-heap of connections by due time ---- */

static bool fake_heap_less(const struct fake_server *srv, size_t i, size_t j)
{
    return srv->heap[i]->due < srv->heap[j]->due;
}

static void fake_heap_swap(struct fake_server *srv, size_t i, size_t j)
{
    struct fake_conn *t = srv->heap[i];

    srv->heap[i] = srv->heap[j];
    srv->heap[j] = t;
    srv->heap[i]->heap_index = i;
    srv->heap[j]->heap_index = j;
}

static void fake_heap_up(struct fake_server *srv, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!fake_heap_less(srv, i, parent))
            break;
        fake_heap_swap(srv, i, parent);
        i = parent;
    }
}

static void fake_heap_down(struct fake_server *srv, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < srv->heap_len && fake_heap_less(srv, l, m))
            m = l;
        if (r < srv->heap_len && fake_heap_less(srv, r, m))
            m = r;
        if (m == i)
            break;
        fake_heap_swap(srv, i, m);
        i = m;
    }
}

/* The heap always has room for every open connection (fake_conn_open grows
 * it), so arming cannot fail. */
static void fake_timer_arm(struct fake_server *srv, struct fake_conn *c, uint64_t due)
{
    bool earlier;

    if (c->heap_index == FAKE_NO_INDEX) {
        c->due = due;
        c->heap_index = srv->heap_len;
        srv->heap[srv->heap_len++] = c;
        fake_heap_up(srv, c->heap_index);
        return;
    }
    if (due == c->due)
        return;
    earlier = due < c->due;
    c->due = due;
    if (earlier)
        fake_heap_up(srv, c->heap_index);
    else
        fake_heap_down(srv, c->heap_index);
}

static void fake_timer_disarm(struct fake_server *srv, struct fake_conn *c)
{
    size_t i = c->heap_index;

    if (i == FAKE_NO_INDEX)
        return;
    c->heap_index = FAKE_NO_INDEX;
    srv->heap_len--;
    if (i == srv->heap_len)
        return;
    srv->heap[i] = srv->heap[srv->heap_len];
    srv->heap[i]->heap_index = i;
    fake_heap_up(srv, i);
    fake_heap_down(srv, i);
}

/* ---- faults ---- */

/* KIND: status:NNN[,retry_after:S][,echo_key:N] | timeout | hang | close | truncate |
 * malformed | slow | stall */
static int fake_fault_parse(const char *s, size_t n, struct fake_fault *f)
{
    struct fake_fault r = {FAKE_FAULT_NONE, 0, -1, -1};
    size_t i = 0;

    while (i <= n) {
        size_t j = i;
        const char *item = s + i;
        size_t len;
        enum fake_fault_kind kind = FAKE_FAULT_NONE;
        uint64_t v;

        while (j < n && s[j] != ',')
            j++;
        len = j - i;
        if (fake_eq(item, len, "timeout"))
            kind = FAKE_FAULT_TIMEOUT;
        else if (fake_eq(item, len, "close"))
            kind = FAKE_FAULT_CLOSE;
        else if (fake_eq(item, len, "truncate"))
            kind = FAKE_FAULT_TRUNCATE;
        else if (fake_eq(item, len, "malformed"))
            kind = FAKE_FAULT_MALFORMED;
        else if (fake_eq(item, len, "slow"))
            kind = FAKE_FAULT_SLOW;
        else if (fake_eq(item, len, "hang"))
            kind = FAKE_FAULT_HANG;
        else if (fake_eq(item, len, "stall"))
            kind = FAKE_FAULT_STALL;
        else if (fake_prefix(item, len, "status:")) {
            if (fake_parse_num(item + 7, len - 7, 599, &v) != 0 || v < 400)
                return -1;
            kind = FAKE_FAULT_STATUS;
            r.status = (int)v;
        } else if (fake_prefix(item, len, "retry_after:")) {
            if (r.retry_after >= 0 || fake_parse_num(item + 12, len - 12, 86400, &v) != 0)
                return -1;
            r.retry_after = (long)v;
        } else if (fake_prefix(item, len, "echo_key:")) {
            if (r.echo_key >= 0 || fake_parse_num(item + 9, len - 9, FAKE_ECHO_MAX, &v) != 0)
                return -1;
            r.echo_key = (long)v;
        } else {
            return -1;
        }
        if (kind != FAKE_FAULT_NONE) {
            if (r.kind != FAKE_FAULT_NONE)
                return -1;
            r.kind = kind;
        }
        i = j + 1;
    }
    if (r.kind == FAKE_FAULT_NONE ||
        ((r.retry_after >= 0 || r.echo_key >= 0) && r.kind != FAKE_FAULT_STATUS))
        return -1;
    *f = r;
    return 0;
}

static const char *fake_fault_format(const struct fake_fault *f, char *buf, size_t cap)
{
    switch (f->kind) {
    case FAKE_FAULT_STATUS: {
        int n = snprintf(buf, cap, "status:%d", f->status);
        if (f->retry_after >= 0 && n > 0 && (size_t)n < cap)
            n += snprintf(buf + n, cap - (size_t)n, ",retry_after:%ld", f->retry_after);
        if (f->echo_key >= 0 && n > 0 && (size_t)n < cap)
            snprintf(buf + n, cap - (size_t)n, ",echo_key:%ld", f->echo_key);
        return buf;
    }
    case FAKE_FAULT_TIMEOUT:
        return "timeout";
    case FAKE_FAULT_CLOSE:
        return "close";
    case FAKE_FAULT_TRUNCATE:
        return "truncate";
    case FAKE_FAULT_MALFORMED:
        return "malformed";
    case FAKE_FAULT_SLOW:
        return "slow";
    case FAKE_FAULT_HANG:
        return "hang";
    case FAKE_FAULT_STALL:
        return "stall";
    case FAKE_FAULT_NONE:
        break;
    }
    return NULL;
}

/* MODEL:KIND[@COUNT]. MODEL may itself hold ':' ("llama3:8b"): the split is
 * at the first ':' after which a valid KIND follows. */
static int fake_rule_parse(const char *spec, struct fake_rule *rule)
{
    size_t n = strlen(spec);
    const char *at = strrchr(spec, '@');
    long count = -1;
    uint64_t v;

    if (at != NULL && fake_parse_num(at + 1, strlen(at + 1), 1000000000, &v) == 0) {
        count = (long)v;
        n = (size_t)(at - spec);
    }
    for (size_t i = 1; i < n; i++) {
        struct fake_fault f;

        if (spec[i] != ':' || fake_fault_parse(spec + i + 1, n - i - 1, &f) != 0)
            continue;
        rule->model = strndup(spec, i);
        if (rule->model == NULL)
            return -1;
        rule->fault = f;
        rule->remaining = count;
        return 0;
    }
    return -1;
}

/* The fault for a request: its #fault= directive, else the first --fault
 * rule for its model that has requests left (and that rule uses one up). */
static struct fake_fault fake_fault_pick(struct fake_server *srv, const char *model,
                                         const struct fake_directives *d)
{
    struct fake_fault none = {FAKE_FAULT_NONE, 0, -1, -1};

    if (d->has_fault)
        return d->fault;
    for (size_t i = 0; i < srv->opt.nrules; i++) {
        struct fake_rule *rule = &srv->opt.rules[i];

        if (rule->remaining == 0)
            continue;
        if (strcmp(rule->model, "*") != 0 && strcmp(rule->model, model) != 0)
            continue;
        if (rule->remaining > 0)
            rule->remaining--;
        return rule->fault;
    }
    return none;
}

/* ---- directives: #name=value in the last user message ---- */

static void fake_directives_init(struct fake_directives *d)
{
    memset(d, 0, sizeof *d);
    d->out = d->cached = d->cache_write = d->reasoning = d->latency = -1;
}

static bool fake_is_fault_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || fake_is_digit(ch) || ch == ':' ||
           ch == ',' || ch == '_';
}

/* Later directives override earlier ones; unknown names and bad values are
 * ignored (plain text may hold a '#'). */
static void fake_directives_scan(const char *s, size_t n, struct fake_directives *d)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = i + 1, name, name_len, v;
        long num = 0;

        if (s[i] != '#')
            continue;
        name = j;
        while (j < n && ((s[j] >= 'a' && s[j] <= 'z') || s[j] == '_'))
            j++;
        name_len = j - name;
        if (name_len == 0 || j >= n || s[j] != '=')
            continue;
        v = ++j;
        if (fake_eq(s + name, name_len, "fault")) {
            struct fake_fault f;

            while (j < n && fake_is_fault_char(s[j]))
                j++;
            if (fake_fault_parse(s + v, j - v, &f) == 0) {
                d->fault = f;
                d->has_fault = true;
            }
            continue;
        }
        while (j < n && fake_is_digit(s[j]) && num <= FAKE_DIRECTIVE_MAX) {
            num = num * 10 + (s[j] - '0');
            j++;
        }
        if (j == v)
            continue;
        if (num > FAKE_DIRECTIVE_MAX)
            num = FAKE_DIRECTIVE_MAX;
        if (fake_eq(s + name, name_len, "out"))
            d->out = num;
        else if (fake_eq(s + name, name_len, "cached"))
            d->cached = num;
        else if (fake_eq(s + name, name_len, "cache_write"))
            d->cache_write = num;
        else if (fake_eq(s + name, name_len, "reasoning"))
            d->reasoning = num;
        else if (fake_eq(s + name, name_len, "latency"))
            d->latency = num;
    }
}

static bool fake_is_text_part(json_t *part)
{
    const char *type = json_string_value(json_object_get(part, "type"));

    return type != NULL && strcmp(type, "text") == 0 &&
           json_is_string(json_object_get(part, "text"));
}

static void fake_directives_from(json_t *messages, struct fake_directives *d)
{
    json_t *m, *last = NULL, *content, *part;
    size_t i;

    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));

        if (role != NULL && strcmp(role, "user") == 0)
            last = m;
    }
    if (last == NULL)
        return;
    content = json_object_get(last, "content");
    if (json_is_string(content)) {
        fake_directives_scan(json_string_value(content), json_string_length(content), d);
        return;
    }
    json_array_foreach(content, i, part)
    {
        if (fake_is_text_part(part)) {
            json_t *text = json_object_get(part, "text");

            fake_directives_scan(json_string_value(text), json_string_length(text), d);
        }
    }
}

/* ---- usage ---- */

static uint64_t fake_tokens(uint64_t bytes)
{
    return (bytes + 3) / 4;
}

/* Text bytes of a content: a string, or an array of {type: text, text}
 * parts (other parts count nothing). */
static uint64_t fake_content_bytes(json_t *content)
{
    uint64_t n = 0;
    json_t *part;
    size_t i;

    if (json_is_string(content))
        return json_string_length(content);
    json_array_foreach(content, i, part)
    {
        if (fake_is_text_part(part))
            n += json_string_length(json_object_get(part, "text"));
    }
    return n;
}

/* sum over messages of ceil(content bytes / 4) + 3, plus ceil(system bytes / 4) */
static uint64_t fake_input_tokens(json_t *messages, json_t *system)
{
    uint64_t n = 0;
    json_t *m;
    size_t i;

    json_array_foreach(messages, i, m) n +=
        fake_tokens(fake_content_bytes(json_object_get(m, "content"))) + 3;
    if (system != NULL)
        n += fake_tokens(fake_content_bytes(system));
    return n;
}

static size_t fake_reply_text(char *buf, size_t cap, uint64_t seq, uint64_t tokens)
{
    size_t n = (size_t)snprintf(buf, cap, "fake reply");
    uint64_t words = tokens < FAKE_WORDS_MAX ? tokens : FAKE_WORDS_MAX;
    size_t nwords = sizeof fake_words / sizeof fake_words[0];

    for (uint64_t i = 0; i < words; i++) {
        const char *w = fake_words[(seq + i * 7) % nwords];
        size_t wl = strlen(w);

        if (n + 1 + wl >= cap)
            break;
        buf[n++] = ' ';
        memcpy(buf + n, w, wl);
        n += wl;
    }
    buf[n] = '\0';
    return n;
}

/* ---- replies ---- */

static const char *fake_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 529:
        return "Overloaded";
    default:
        return status < 500 ? "Client Error" : "Server Error";
    }
}

static const char *fake_anthropic_error_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 504:
        return "timeout_error";
    case 529:
        return "overloaded_error";
    default:
        return status < 500 ? "invalid_request_error" : "api_error";
    }
}

/* Sets an error reply in the provider's own shape.
 * OpenAI: {"error":{"message","type","param","code"}}
 * Anthropic: {"type":"error","error":{"type","message"},"request_id"} */
static void fake_fail(struct fake_outcome *o, enum fake_api api, int status, const char *message,
                      const char *param, const char *code, uint64_t seq)
{
    json_decref(o->json);
    o->status = status;
    if (api == FAKE_API_ANTHROPIC) {
        char rid[48];

        snprintf(rid, sizeof rid, "req_fake%016" PRIx64, seq);
        o->json =
            json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "error", "error", "type",
                      fake_anthropic_error_type(status), "message", message, "request_id", rid);
        return;
    }
    const char *type = "invalid_request_error";

    if (status == 429) {
        type = "requests";
        if (code == NULL)
            code = "rate_limit_exceeded";
    } else if (status >= 500) {
        type = "server_error";
    }
    o->json = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", message, "type", type,
                        "param", param, "code", code);
}

static const char *fake_fault_message(enum fake_api api, int status)
{
    switch (status) {
    case 429:
        return api == FAKE_API_OPENAI
                   ? "Rate limit reached for requests (injected by fake_provider). "
                     "Please try again in 1s."
                   : "Number of requests has exceeded your rate limit "
                     "(injected by fake_provider).";
    case 500:
        return api == FAKE_API_OPENAI
                   ? "The server had an error while processing your request. Sorry "
                     "about that! (injected by fake_provider)"
                   : "Internal server error (injected by fake_provider)";
    case 503:
        return "The server is overloaded or not ready yet (injected by fake_provider).";
    case 529:
        return "Overloaded (injected by fake_provider)";
    default:
        return "Error injected by fake_provider";
    }
}

static const struct fake_header *fake_header_get(const struct fake_head *h, const char *name)
{
    for (size_t i = 0; h != NULL && i < h->nheaders; i++) {
        if (fake_eq(h->headers[i].name, h->headers[i].name_len, name))
            return &h->headers[i];
    }
    return NULL;
}

static bool fake_header_present(const struct fake_head *h, const char *name)
{
    const struct fake_header *v = fake_header_get(h, name);

    return v != NULL && v->value_len > 0;
}

/* The key a request carries: Bearer token, api-key or x-api-key. */
static const char *fake_request_key(const struct fake_head *h, size_t *len)
{
    const struct fake_header *v = fake_header_get(h, "authorization");

    if (v != NULL && v->value_len > 7 && strncasecmp(v->value, "bearer ", 7) == 0) {
        *len = v->value_len - 7;
        return v->value + 7;
    }
    v = fake_header_get(h, "x-api-key");
    if (v == NULL)
        v = fake_header_get(h, "api-key");
    if (v != NULL) {
        *len = v->value_len;
        return v->value;
    }
    *len = 6;
    return "(none)";
}

/* echo_key:N: filler words up to byte N, the key glued to them (a long
 * word, as when a provider quotes a value), then more words. NULL on
 * allocation failure. */
static char *fake_echo_message(const struct fake_head *h, long at)
{
    static const char filler[] =
        "Incorrect API key provided (injected by fake_provider): the value received was "
        "quoted back as providers do when a key is malformed or revoked; check the key in "
        "your configuration, rotate it if it was exposed, and try again with a valid key. ";
    static const char tail[] =
        "=received. You can find your API keys in your account settings (injected by "
        "fake_provider).";
    size_t klen, n = 0, at_n = (size_t)at;
    const char *key = fake_request_key(h, &klen);
    char *msg = malloc(at_n + klen + sizeof tail);

    if (msg == NULL)
        return NULL;
    while (n < at_n) {
        size_t take = at_n - n < sizeof filler - 1 ? at_n - n : sizeof filler - 1;

        memcpy(msg + n, filler, take);
        n += take;
    }
    memcpy(msg + n, key, klen);
    memcpy(msg + n + klen, tail, sizeof tail);
    return msg;
}

/* Applies a status fault: the error reply, and Retry-After for 429 (1 s
 * unless retry_after says otherwise) or whenever retry_after is given. */
static void fake_fail_fault(struct fake_outcome *o, enum fake_api api, const struct fake_fault *f,
                            const struct fake_request *req)
{
    uint64_t seq = req->seq;
    char *echo = f->echo_key >= 0 ? fake_echo_message(req->head, f->echo_key) : NULL;

    fake_fail(o, api, f->status, echo != NULL ? echo : fake_fault_message(api, f->status), NULL,
              NULL, seq);
    free(echo);
    if (f->retry_after >= 0)
        o->retry_after = f->retry_after;
    else if (f->status == 429)
        o->retry_after = 1;
}

/* ---- rate limits: --limit rules and per-(key, model) buckets ---- */

/* rpm=N | tpm=N | window=rolling|fixed | headers=0|1, comma-separated, at
 * least one of rpm and tpm. */
static int fake_limit_spec_parse(const char *s, size_t n, struct fake_limit *l)
{
    struct fake_limit r = {NULL, 0, 0, false, true};
    bool seen_window = false, seen_headers = false;
    size_t i = 0;

    while (i <= n) {
        size_t j = i, len;
        const char *item = s + i;
        uint64_t v;

        while (j < n && s[j] != ',')
            j++;
        len = j - i;
        if (fake_prefix(item, len, "rpm=") || fake_prefix(item, len, "tpm=")) {
            uint64_t *dst = item[0] == 'r' ? &r.rpm : &r.tpm;

            if (*dst != 0 || fake_parse_num(item + 4, len - 4, FAKE_LIMIT_NUM_MAX, &v) != 0 ||
                v == 0)
                return -1;
            *dst = v;
        } else if (fake_eq(item, len, "window=rolling") || fake_eq(item, len, "window=fixed")) {
            if (seen_window)
                return -1;
            seen_window = true;
            r.fixed = item[7] == 'f';
        } else if (fake_eq(item, len, "headers=0") || fake_eq(item, len, "headers=1")) {
            if (seen_headers)
                return -1;
            seen_headers = true;
            r.headers = item[8] == '1';
        } else {
            return -1;
        }
        i = j + 1;
    }
    if (r.rpm == 0 && r.tpm == 0)
        return -1;
    *l = r;
    return 0;
}

/* MODEL:SPEC; MODEL may hold ':' (the split is at the first ':' after which
 * a valid SPEC follows). */
static int fake_limit_parse(const char *spec, struct fake_limit *l)
{
    size_t n = strlen(spec);

    for (size_t i = 1; i < n; i++) {
        struct fake_limit r;

        if (spec[i] != ':' || fake_limit_spec_parse(spec + i + 1, n - i - 1, &r) != 0)
            continue;
        r.model = strndup(spec, i);
        if (r.model == NULL)
            return -1;
        *l = r;
        return 0;
    }
    return -1;
}

/* Adds a parsed rule to limits[0..*n); -1 (the rule freed) when its model
 * already has one or the table is full. */
static int fake_limit_add(struct fake_limit *limits, size_t *n, struct fake_limit *l)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(limits[i].model, l->model) == 0) {
            free(l->model);
            return -1;
        }
    }
    if (*n == FAKE_LIMITS_MAX) {
        free(l->model);
        return -1;
    }
    limits[(*n)++] = *l;
    return 0;
}

/* Return value: new reference (NULL on allocation failure). */
static json_t *fake_limit_json(const struct fake_limit *l)
{
    char tpm[32] = "", rpm[32] = "";

    if (l->rpm != 0)
        snprintf(rpm, sizeof rpm, "rpm=%" PRIu64 ",", l->rpm);
    if (l->tpm != 0)
        snprintf(tpm, sizeof tpm, "tpm=%" PRIu64 ",", l->tpm);
    return json_sprintf("%s:%s%swindow=%s,headers=%d", l->model, rpm, tpm,
                        l->fixed ? "fixed" : "rolling", l->headers ? 1 : 0);
}

static const struct fake_limit *fake_limit_find(const struct fake_server *srv, const char *model)
{
    const struct fake_limit *star = NULL;

    for (size_t i = 0; i < srv->opt.nlimits; i++) {
        const struct fake_limit *l = &srv->opt.limits[i];

        if (strcmp(l->model, model) == 0)
            return l;
        if (strcmp(l->model, "*") == 0)
            star = l;
    }
    return star;
}

static void fake_meter_init(struct fake_meter *m, uint64_t limit, uint64_t now)
{
    m->level = limit * FAKE_MINUTE_MS;
    m->stamp = now;
    m->used = 0;
    m->open = false;
}

/* Brings a meter up to now: a rolling bucket refills at limit per minute up
 * to limit; a fixed window that has run a minute ends. */
static void fake_meter_refill(struct fake_meter *m, uint64_t limit, bool fixed, uint64_t now)
{
    uint64_t elapsed = now - m->stamp, full = limit * FAKE_MINUTE_MS;

    if (fixed) {
        if (m->open && elapsed >= FAKE_MINUTE_MS) {
            m->open = false;
            m->used = 0;
        }
        return;
    }
    if (elapsed > FAKE_MINUTE_MS)
        elapsed = FAKE_MINUTE_MS; /* a minute fills any bucket: no overflow */
    m->level += elapsed * limit;
    if (m->level > full)
        m->level = full;
    m->stamp = now;
}

static uint64_t fake_meter_left(const struct fake_meter *m, uint64_t limit, bool fixed)
{
    return fixed ? limit - m->used : m->level / FAKE_MINUTE_MS;
}

static bool fake_meter_fits(const struct fake_meter *m, uint64_t limit, bool fixed, uint64_t cost)
{
    if (cost > limit)
        return false;
    return fixed ? limit - m->used >= cost : m->level >= cost * FAKE_MINUTE_MS;
}

static void fake_meter_take(struct fake_meter *m, bool fixed, uint64_t cost, uint64_t now)
{
    if (!fixed) {
        m->level -= cost * FAKE_MINUTE_MS;
        return;
    }
    if (!m->open) {
        m->open = true;
        m->stamp = now;
    }
    m->used += cost;
}

/* ms until the meter is full again */
static uint64_t fake_meter_reset_ms(const struct fake_meter *m, uint64_t limit, bool fixed,
                                    uint64_t now)
{
    if (fixed)
        return m->open && m->used > 0 ? m->stamp + FAKE_MINUTE_MS - now : 0;
    return (limit * FAKE_MINUTE_MS - m->level + limit - 1) / limit;
}

/* ms until cost fits (a cost over the limit never does: until full) */
static uint64_t fake_meter_wait_ms(const struct fake_meter *m, uint64_t limit, bool fixed,
                                   uint64_t cost, uint64_t now)
{
    if (cost > limit)
        return fake_meter_reset_ms(m, limit, fixed, now);
    if (fixed)
        return limit - m->used >= cost ? 0 : m->stamp + FAKE_MINUTE_MS - now;
    if (m->level >= cost * FAKE_MINUTE_MS)
        return 0;
    return (cost * FAKE_MINUTE_MS - m->level + limit - 1) / limit;
}

static void fake_bucket_fill(struct fake_bucket *b, const struct fake_limit *l, uint64_t now)
{
    b->rpm = l->rpm;
    b->tpm = l->tpm;
    b->fixed = l->fixed;
    fake_meter_init(&b->req, l->rpm, now);
    fake_meter_init(&b->tok, l->tpm, now);
}

static void fake_buckets_clear(struct fake_server *srv)
{
    for (size_t i = 0; i < srv->nslots; i++) {
        while (srv->slots[i] != NULL) {
            struct fake_bucket *b = srv->slots[i];

            srv->slots[i] = b->next;
            free(b);
        }
    }
    srv->nbuckets = 0;
}

/* After the rules changed: a bucket whose model now has other numbers starts
 * full with them; one whose model has no rule any more goes. */
static void fake_buckets_rules_changed(struct fake_server *srv)
{
    uint64_t now = fake_mono_ms();

    for (size_t i = 0; i < srv->nslots; i++) {
        struct fake_bucket **pp = &srv->slots[i];

        while (*pp != NULL) {
            struct fake_bucket *b = *pp;
            const struct fake_limit *l = fake_limit_find(srv, b->id);

            if (l == NULL) {
                *pp = b->next;
                free(b);
                srv->nbuckets--;
                continue;
            }
            if (l->rpm != b->rpm || l->tpm != b->tpm || l->fixed != b->fixed)
                fake_bucket_fill(b, l, now);
            pp = &b->next;
        }
    }
}

static uint64_t fake_hash(const char *model, const char *key, size_t key_len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */

    for (const char *p = model; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * UINT64_C(0x100000001b3);
    h *= UINT64_C(0x100000001b3); /* the NUL between them */
    for (size_t i = 0; i < key_len; i++)
        h = (h ^ (unsigned char)key[i]) * UINT64_C(0x100000001b3);
    return h;
}

static int fake_slots_grow(struct fake_server *srv)
{
    size_t n = srv->nslots != 0 ? srv->nslots * 2 : 256;
    struct fake_bucket **slots = calloc(n, sizeof *slots);

    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < srv->nslots; i++) {
        while (srv->slots[i] != NULL) {
            struct fake_bucket *b = srv->slots[i];

            srv->slots[i] = b->next;
            b->next = slots[b->hash & (n - 1)];
            slots[b->hash & (n - 1)] = b;
        }
    }
    free(srv->slots);
    srv->slots = slots;
    srv->nslots = n;
    return 0;
}

/* The bucket of (key, model), made full for rule l when new. NULL on
 * allocation failure. */
static struct fake_bucket *fake_bucket_get(struct fake_server *srv, const struct fake_limit *l,
                                           const char *model, const char *key, size_t key_len,
                                           uint64_t now)
{
    uint64_t h = fake_hash(model, key, key_len);
    size_t model_len = strlen(model);
    struct fake_bucket *b;

    for (b = srv->nslots != 0 ? srv->slots[h & (srv->nslots - 1)] : NULL; b != NULL; b = b->next) {
        if (b->hash == h && b->model_len == model_len && b->key_len == key_len &&
            memcmp(b->id, model, model_len) == 0 &&
            memcmp(b->id + model_len + 1, key, key_len) == 0)
            return b;
    }
    if (srv->nbuckets >= FAKE_BUCKETS_MAX) {
        fprintf(stderr, "fake_provider: %zu rate-limit buckets: all start afresh\n", srv->nbuckets);
        fake_buckets_clear(srv);
    }
    if (srv->nbuckets >= srv->nslots && fake_slots_grow(srv) != 0)
        return NULL;
    b = calloc(1, sizeof *b + model_len + 1 + key_len + 1);
    if (b == NULL)
        return NULL;
    b->hash = h;
    b->model_len = model_len;
    b->key_len = key_len;
    memcpy(b->id, model, model_len);
    memcpy(b->id + model_len + 1, key, key_len);
    fake_bucket_fill(b, l, now);
    b->next = srv->slots[h & (srv->nslots - 1)];
    srv->slots[h & (srv->nslots - 1)] = b;
    srv->nbuckets++;
    return b;
}

/* A duration as Go prints one (OpenAI's x-ratelimit-reset-*): "0s", "17ms",
 * "1.5s", "6m0s", "1h0m0s". */
static void fake_go_duration(char *buf, size_t cap, uint64_t ms)
{
    uint64_t h = ms / 3600000;
    unsigned m = (unsigned)(ms / 60000 % 60), s = (unsigned)(ms / 1000 % 60);
    unsigned frac = (unsigned)(ms % 1000);
    char sec[16];

    if (ms < 1000) {
        snprintf(buf, cap, ms == 0 ? "0s" : "%" PRIu64 "ms", ms);
        return;
    }
    if (frac == 0) {
        snprintf(sec, sizeof sec, "%u", s % 60);
    } else {
        int n = snprintf(sec, sizeof sec, "%u.%03u", s % 60, frac % 1000);

        while (n > 0 && sec[n - 1] == '0')
            sec[--n] = '\0';
    }
    if (h > 0)
        snprintf(buf, cap, "%" PRIu64 "h%um%ss", h, m % 60, sec);
    else if (m > 0)
        snprintf(buf, cap, "%um%ss", m % 60, sec);
    else
        snprintf(buf, cap, "%ss", sec);
}

/* RFC 3339 UTC, whole seconds rounded up (Anthropic's *-reset) */
static void fake_rfc3339(char *buf, size_t cap, uint64_t in_ms)
{
    uint64_t at = fake_clock_ms(CLOCK_REALTIME) + in_ms;
    time_t t = (time_t)((at + 999) / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Appends "name: value\r\n" to the reply's extra header lines. The lines are
 * a bounded set of names with numbers, well within FAKE_EXTRA_MAX; should
 * one ever not fit, the program stops rather than send a cut header. */
static void fake_extra_add(struct fake_outcome *o, const char *name, const char *value)
{
    int n = snprintf(o->extra + o->extra_len, sizeof o->extra - o->extra_len, "%s: %s\r\n", name,
                     value);

    if (n < 0 || (size_t)n >= sizeof o->extra - o->extra_len) {
        fprintf(stderr, "fake_provider: header %s does not fit FAKE_EXTRA_MAX\n", name);
        abort();
    }
    o->extra_len += (size_t)n;
}

static void fake_extra_num(struct fake_outcome *o, const char *name, uint64_t v)
{
    char num[24];

    snprintf(num, sizeof num, "%" PRIu64, v);
    fake_extra_add(o, name, num);
}

/* The provider's rate-limit headers for one meter: OpenAI
 * x-ratelimit-{limit,remaining,reset}-WHAT, Anthropic
 * anthropic-ratelimit-WHAT-{limit,remaining,reset}. */
static void fake_meter_headers(struct fake_outcome *o, enum fake_api api, const char *what,
                               const struct fake_meter *m, uint64_t limit, bool fixed, uint64_t now)
{
    char name[64], value[64];
    uint64_t reset = fake_meter_reset_ms(m, limit, fixed, now);

    if (api == FAKE_API_OPENAI) {
        snprintf(name, sizeof name, "x-ratelimit-limit-%s", what);
        fake_extra_num(o, name, limit);
        snprintf(name, sizeof name, "x-ratelimit-remaining-%s", what);
        fake_extra_num(o, name, fake_meter_left(m, limit, fixed));
        snprintf(name, sizeof name, "x-ratelimit-reset-%s", what);
        fake_go_duration(value, sizeof value, reset);
        fake_extra_add(o, name, value);
        return;
    }
    snprintf(name, sizeof name, "anthropic-ratelimit-%s-limit", what);
    fake_extra_num(o, name, limit);
    snprintf(name, sizeof name, "anthropic-ratelimit-%s-remaining", what);
    fake_extra_num(o, name, fake_meter_left(m, limit, fixed));
    snprintf(name, sizeof name, "anthropic-ratelimit-%s-reset", what);
    fake_rfc3339(value, sizeof value, reset);
    fake_extra_add(o, name, value);
}

static void fake_limit_headers(struct fake_outcome *o, enum fake_api api,
                               const struct fake_bucket *b, uint64_t now)
{
    if (b->rpm != 0)
        fake_meter_headers(o, api, "requests", &b->req, b->rpm, b->fixed, now);
    if (b->tpm == 0)
        return;
    fake_meter_headers(o, api, "tokens", &b->tok, b->tpm, b->fixed, now);
    if (api == FAKE_API_ANTHROPIC) { /* one token budget stands for all three */
        fake_meter_headers(o, api, "input-tokens", &b->tok, b->tpm, b->fixed, now);
        fake_meter_headers(o, api, "output-tokens", &b->tok, b->tpm, b->fixed, now);
    }
}

/* The 429 of a limit, in the provider's shape, with Retry-After (whole
 * seconds, rounded up, at least 1) and, for OpenAI, retry-after-ms. */
static void fake_limit_refuse(struct fake_outcome *o, enum fake_api api, const char *model,
                              bool tokens, uint64_t limit, uint64_t used, uint64_t cost,
                              uint64_t wait_ms, uint64_t seq)
{
    char wait[64], msg[512];
    const char *what = tokens ? "tokens" : "requests";

    fake_go_duration(wait, sizeof wait, wait_ms);
    if (api == FAKE_API_OPENAI) {
        if (cost > limit)
            snprintf(msg, sizeof msg,
                     "Request too large for %s in organization org-fake on %s per min (%s): "
                     "Limit %" PRIu64 ", Requested %" PRIu64
                     ". The input or output tokens must be reduced in order to run successfully. "
                     "Visit https://platform.openai.com/account/rate-limits to learn more.",
                     model, what, tokens ? "TPM" : "RPM", limit, cost);
        else
            snprintf(msg, sizeof msg,
                     "Rate limit reached for %s in organization org-fake on %s per min (%s): "
                     "Limit %" PRIu64 ", Used %" PRIu64 ", Requested %" PRIu64
                     ". Please try again in %s. Visit "
                     "https://platform.openai.com/account/rate-limits to learn more.",
                     model, what, tokens ? "TPM" : "RPM", limit, used, cost, wait);
        json_decref(o->json);
        o->json = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg, "type", what,
                            "param", "code", "rate_limit_exceeded");
        o->status = 429;
        fake_extra_num(o, "retry-after-ms", wait_ms);
    } else {
        snprintf(msg, sizeof msg,
                 "This request would exceed the rate limit for your organization (org-fake) of "
                 "%" PRIu64 " %s per minute. For details, refer to: "
                 "https://docs.claude.com/en/api/rate-limits. You can see the response headers "
                 "for current usage. Please reduce the prompt length or the maximum tokens "
                 "requested, or try again later.",
                 limit, tokens ? "tokens" : "requests");
        fake_fail(o, api, 429, msg, NULL, NULL, seq);
    }
    o->retry_after = wait_ms == 0 ? 1 : (long)((wait_ms + 999) / 1000);
    o->rate_limited = true;
}

/* Admission of a provider call under the model's --limit rule: cost is one
 * request and `tokens` tokens (the input estimate plus the output cap),
 * taken from the (key, model) buckets at once as OpenAI does. Returns 1
 * when the call was refused (o holds the 429), else 0; either way o gets
 * the rate-limit headers when the rule sends them. */
static int fake_limit_admit(struct fake_server *srv, const struct fake_request *req,
                            struct fake_outcome *o, enum fake_api api, const char *model,
                            uint64_t tokens)
{
    const struct fake_limit *l = fake_limit_find(srv, model);
    struct fake_bucket *b;
    size_t key_len;
    const char *key;
    uint64_t now = fake_mono_ms();
    bool req_ok, tok_ok;

    if (l == NULL)
        return 0;
    key = fake_request_key(req->head, &key_len);
    b = fake_bucket_get(srv, l, model, key, key_len, now);
    if (b == NULL)
        return 0; /* out of memory: not limited rather than a made-up 429 */
    if (b->rpm != 0)
        fake_meter_refill(&b->req, b->rpm, b->fixed, now);
    if (b->tpm != 0)
        fake_meter_refill(&b->tok, b->tpm, b->fixed, now);
    req_ok = b->rpm == 0 || fake_meter_fits(&b->req, b->rpm, b->fixed, 1);
    tok_ok = b->tpm == 0 || fake_meter_fits(&b->tok, b->tpm, b->fixed, tokens);
    if (!req_ok)
        fake_limit_refuse(o, api, model, false, b->rpm,
                          b->rpm - fake_meter_left(&b->req, b->rpm, b->fixed), 1,
                          fake_meter_wait_ms(&b->req, b->rpm, b->fixed, 1, now), req->seq);
    else if (!tok_ok)
        fake_limit_refuse(o, api, model, true, b->tpm,
                          b->tpm - fake_meter_left(&b->tok, b->tpm, b->fixed), tokens,
                          fake_meter_wait_ms(&b->tok, b->tpm, b->fixed, tokens, now), req->seq);
    if (req_ok && tok_ok) {
        if (b->rpm != 0)
            fake_meter_take(&b->req, b->fixed, 1, now);
        if (b->tpm != 0)
            fake_meter_take(&b->tok, b->fixed, tokens, now);
    }
    if (l->headers)
        fake_limit_headers(o, api, b, now);
    if (req->log != NULL && o->rate_limited)
        json_object_set_new(req->log, "rate_limited", json_true());
    return req_ok && tok_ok ? 0 : 1;
}

/* The model's counters in /stats, counting one more request; models past
 * FAKE_MODELS_MAX share "(other)". Return value: borrowed (NULL on
 * allocation failure). */
static json_t *fake_model_count(struct fake_server *srv, const struct fake_request *req,
                                const char *model)
{
    json_t *m = json_object_get(srv->models, model);

    if (req->log != NULL)
        json_object_set_new(req->log, "model", fake_json_text(model, strlen(model)));
    if (m == NULL && json_object_size(srv->models) >= FAKE_MODELS_MAX)
        m = json_object_get(srv->models, model = "(other)");
    if (m == NULL) {
        m = json_pack("{s:I, s:I, s:{}}", "requests", (json_int_t)0, "rate_limited", (json_int_t)0,
                      "status");
        if (m == NULL || json_object_set_new(srv->models, model, m) != 0)
            return NULL; /* also a name that is not UTF-8: not counted by name */
    }
    json_integer_set(json_object_get(m, "requests"),
                     json_integer_value(json_object_get(m, "requests")) + 1);
    return m;
}

/* A reply of the model is final: count its status (0: never answered). */
static void fake_model_status(json_t *m, int status, bool rate_limited)
{
    char key[16];
    json_t *by = json_object_get(m, "status"), *n;

    if (status == 0)
        snprintf(key, sizeof key, "none");
    else
        snprintf(key, sizeof key, "%d", status);
    n = json_object_get(by, key);
    if (n != NULL)
        json_integer_set(n, json_integer_value(n) + 1);
    else
        json_object_set_new(by, key, json_integer(1));
    if (rate_limited) {
        n = json_object_get(m, "rate_limited");
        json_integer_set(n, json_integer_value(n) + 1);
    }
}

/* Authorization: Bearer <non-empty token> */
static bool fake_has_bearer(const struct fake_head *h)
{
    const struct fake_header *v = fake_header_get(h, "authorization");

    if (v == NULL || v->value_len <= 7 || strncasecmp(v->value, "bearer ", 7) != 0)
        return false;
    for (size_t i = 7; i < v->value_len; i++) {
        if (v->value[i] != ' ' && v->value[i] != '\t')
            return true;
    }
    return false;
}

static bool fake_query_has(const struct fake_request *req, const char *name)
{
    size_t n = strlen(name);
    const char *q = req->query;
    size_t left = req->query_len;

    while (q != NULL && left > 0) {
        const char *amp = memchr(q, '&', left);
        size_t len = amp != NULL ? (size_t)(amp - q) : left;

        if (len > n && memcmp(q, name, n) == 0 && q[n] == '=')
            return true;
        if (amp == NULL)
            break;
        left -= len + 1;
        q = amp + 1;
    }
    return false;
}

/* The max output tokens field: absent/null -> *cap stays; -1 if malformed. */
static int fake_cap_get(json_t *body, const char *field, uint64_t *cap, bool *seen)
{
    json_t *v = json_object_get(body, field);

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *cap = (uint64_t)json_integer_value(v);
    *seen = true;
    return 0;
}

static uint64_t fake_output_tokens(const struct fake_server *srv, const struct fake_directives *d,
                                   uint64_t cap)
{
    uint64_t n = d->out >= 0 ? (uint64_t)d->out : srv->opt.output_tokens;

    return n < cap ? n : cap;
}

static uint64_t fake_directive(long v)
{
    return v > 0 ? (uint64_t)v : 0;
}

/* POST /v1/chat/completions and Azure's /openai/deployments/{d}/chat/completions */
static void fake_openai(struct fake_server *srv, const struct fake_request *req,
                        struct fake_outcome *o)
{
    bool azure = req->route == FAKE_ROUTE_AZURE;
    json_t *body = req->json, *messages, *m, *reply;
    const char *model;
    char *model_owned = NULL;
    uint64_t cap = UINT64_MAX, input, out, cached, reasoning;
    bool capped = false;
    struct fake_directives d;
    char id[64], text[4096];
    size_t i, text_len;

    o->id_header = "x-request-id";
    if (!fake_has_bearer(req->head) && !(azure && fake_header_present(req->head, "api-key"))) {
        fake_fail(
            o, FAKE_API_OPENAI, 401,
            azure
                ? "Access denied due to missing subscription key. Make sure to include an api-key "
                  "header when making requests to an API."
                : "You didn't provide an API key. You need to provide your API key in an "
                  "Authorization "
                  "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            NULL, NULL, req->seq);
        return;
    }
    if (azure && !fake_query_has(req, "api-version")) {
        fake_fail(o, FAKE_API_OPENAI, 400, "Missing required query parameter: api-version",
                  "api-version", NULL, req->seq);
        return;
    }
    if (!json_is_object(body)) {
        fake_fail(o, FAKE_API_OPENAI, 400,
                  "We could not parse the JSON body of your request. The OpenAI API expects a JSON "
                  "object.",
                  NULL, NULL, req->seq);
        return;
    }
    model = json_string_value(json_object_get(body, "model"));
    if (model == NULL && azure) {
        model_owned = strndup(req->deployment, req->deployment_len);
        model = model_owned;
    }
    if (model == NULL) {
        fake_fail(o, FAKE_API_OPENAI, 400, "you must provide a model parameter", "model", NULL,
                  req->seq);
        goto out;
    }
    messages = json_object_get(body, "messages");
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        fake_fail(o, FAKE_API_OPENAI, 400, "'messages' must be a non-empty array", "messages", NULL,
                  req->seq);
        goto out;
    }
    json_array_foreach(messages, i, m)
    {
        if (!json_is_string(json_object_get(m, "role"))) {
            fake_fail(o, FAKE_API_OPENAI, 400, "each message needs a string 'role'", "messages",
                      NULL, req->seq);
            goto out;
        }
    }
    if (fake_cap_get(body, "max_completion_tokens", &cap, &capped) != 0) {
        fake_fail(o, FAKE_API_OPENAI, 400,
                  "Invalid 'max_completion_tokens': expected a non-negative integer",
                  "max_completion_tokens", "invalid_value", req->seq);
        goto out;
    }
    if (!capped && fake_cap_get(body, "max_tokens", &cap, &capped) != 0) {
        fake_fail(o, FAKE_API_OPENAI, 400, "Invalid 'max_tokens': expected a non-negative integer",
                  "max_tokens", "invalid_value", req->seq);
        goto out;
    }
    o->mstats = fake_model_count(srv, req, model);
    if (fake_limit_admit(srv, req, o, FAKE_API_OPENAI, model,
                         fake_input_tokens(messages, NULL) + (capped ? cap : 0)) != 0)
        goto out;

    fake_directives_init(&d);
    fake_directives_from(messages, &d);
    o->latency = d.latency;
    o->fault = fake_fault_pick(srv, model, &d);
    if (o->fault.kind == FAKE_FAULT_STATUS) {
        fake_fail_fault(o, FAKE_API_OPENAI, &o->fault, req);
        goto out;
    }
    if (o->fault.kind == FAKE_FAULT_TIMEOUT || o->fault.kind == FAKE_FAULT_HANG ||
        o->fault.kind == FAKE_FAULT_CLOSE)
        goto out;

    /* cached tokens are INSIDE prompt_tokens, reasoning INSIDE completion_tokens */
    input = fake_input_tokens(messages, NULL);
    out = fake_output_tokens(srv, &d, cap);
    cached = fake_directive(d.cached);
    reasoning = fake_directive(d.reasoning);
    text_len = fake_reply_text(text, sizeof text, req->seq, out);
    snprintf(id, sizeof id, "chatcmpl-fake%016" PRIx64, req->seq);
    reply = json_pack(
        "{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s%, s:n, s:[]}, s:n, s:s}],"
        " s:{s:I, s:I, s:I, s:{s:I, s:I}, s:{s:I, s:I, s:I, s:I}}, s:s, s:s}",
        "id", id, "object", "chat.completion", "created", (json_int_t)time(NULL), "model", model,
        "choices", "index", 0, "message", "role", "assistant", "content", text, text_len, "refusal",
        "annotations", "logprobs", "finish_reason", out == cap ? "length" : "stop", "usage",
        "prompt_tokens", (json_int_t)(input + cached), "completion_tokens",
        (json_int_t)(out + reasoning), "total_tokens",
        (json_int_t)(input + cached + out + reasoning), "prompt_tokens_details", "cached_tokens",
        (json_int_t)cached, "audio_tokens", (json_int_t)0, "completion_tokens_details",
        "reasoning_tokens", (json_int_t)reasoning, "audio_tokens", (json_int_t)0,
        "accepted_prediction_tokens", (json_int_t)0, "rejected_prediction_tokens", (json_int_t)0,
        "service_tier", "default", "system_fingerprint", "fp_fake");
    if (reply == NULL) {
        fake_fail(o, FAKE_API_OPENAI, 500, "fake_provider could not build its reply", NULL, NULL,
                  req->seq);
        goto out;
    }
    o->status = 200;
    o->json = reply;
out:
    free(model_owned);
}

/* POST /v1/messages */
static void fake_anthropic(struct fake_server *srv, const struct fake_request *req,
                           struct fake_outcome *o)
{
    json_t *body = req->json, *messages, *max_tokens, *m, *reply;
    const char *model;
    uint64_t cap, input, out;
    struct fake_directives d;
    char id[64], text[4096];
    size_t i, text_len;

    o->id_header = "request-id";
    if (!fake_header_present(req->head, "x-api-key")) {
        fake_fail(o, FAKE_API_ANTHROPIC, 401, "x-api-key header is required", NULL, NULL, req->seq);
        return;
    }
    if (!fake_header_present(req->head, "anthropic-version")) {
        fake_fail(o, FAKE_API_ANTHROPIC, 401, "anthropic-version header is required", NULL, NULL,
                  req->seq);
        return;
    }
    if (!json_is_object(body)) {
        fake_fail(o, FAKE_API_ANTHROPIC, 400, "The request body is not a valid JSON object", NULL,
                  NULL, req->seq);
        return;
    }
    model = json_string_value(json_object_get(body, "model"));
    if (model == NULL) {
        fake_fail(o, FAKE_API_ANTHROPIC, 400, "model: Field required", NULL, NULL, req->seq);
        return;
    }
    messages = json_object_get(body, "messages");
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        fake_fail(o, FAKE_API_ANTHROPIC, 400, "messages: Field required (a non-empty list)", NULL,
                  NULL, req->seq);
        return;
    }
    json_array_foreach(messages, i, m)
    {
        if (!json_is_string(json_object_get(m, "role"))) {
            fake_fail(o, FAKE_API_ANTHROPIC, 400, "messages: each message needs a string role",
                      NULL, NULL, req->seq);
            return;
        }
    }
    max_tokens = json_object_get(body, "max_tokens");
    if (max_tokens == NULL) {
        fake_fail(o, FAKE_API_ANTHROPIC, 400, "max_tokens: Field required", NULL, NULL, req->seq);
        return;
    }
    if (!json_is_integer(max_tokens) || json_integer_value(max_tokens) < 1) {
        fake_fail(o, FAKE_API_ANTHROPIC, 400, "max_tokens: Input should be an integer >= 1", NULL,
                  NULL, req->seq);
        return;
    }
    cap = (uint64_t)json_integer_value(max_tokens);
    o->mstats = fake_model_count(srv, req, model);
    if (fake_limit_admit(srv, req, o, FAKE_API_ANTHROPIC, model,
                         fake_input_tokens(messages, json_object_get(body, "system")) + cap) != 0)
        return;

    fake_directives_init(&d);
    fake_directives_from(messages, &d);
    o->latency = d.latency;
    o->fault = fake_fault_pick(srv, model, &d);
    if (o->fault.kind == FAKE_FAULT_STATUS) {
        fake_fail_fault(o, FAKE_API_ANTHROPIC, &o->fault, req);
        return;
    }
    if (o->fault.kind == FAKE_FAULT_TIMEOUT || o->fault.kind == FAKE_FAULT_HANG ||
        o->fault.kind == FAKE_FAULT_CLOSE)
        return;

    /* cache reads and writes are SEPARATE from input_tokens */
    input = fake_input_tokens(messages, json_object_get(body, "system"));
    out = fake_output_tokens(srv, &d, cap);
    text_len = fake_reply_text(text, sizeof text, req->seq, out);
    snprintf(id, sizeof id, "msg_fake%016" PRIx64, req->seq);
    reply = json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s%}], s:s, s:n, s:{s:I, s:I, s:I, s:I}}",
                      "id", id, "type", "message", "role", "assistant", "model", model, "content",
                      "type", "text", "text", text, text_len, "stop_reason",
                      out == cap ? "max_tokens" : "end_turn", "stop_sequence", "usage",
                      "input_tokens", (json_int_t)input, "output_tokens", (json_int_t)out,
                      "cache_creation_input_tokens", (json_int_t)fake_directive(d.cache_write),
                      "cache_read_input_tokens", (json_int_t)fake_directive(d.cached));
    if (reply == NULL) {
        fake_fail(o, FAKE_API_ANTHROPIC, 500, "fake_provider could not build its reply", NULL, NULL,
                  req->seq);
        return;
    }
    o->status = 200;
    o->json = reply;
}

/* "200", or "none" for requests never answered */
static void fake_status_key(char *buf, size_t cap, int status)
{
    if (status == 0)
        snprintf(buf, cap, "none");
    else
        snprintf(buf, cap, "%d", status);
}

/* GET /stats. Return value: new reference (NULL on allocation failure). */
static json_t *fake_stats_json(const struct fake_server *srv)
{
    const struct fake_stats *st = &srv->stats;
    json_t *root, *paths, *statuses;
    uint64_t totals[600] = {0};
    char key[16];

    root = json_object();
    paths = json_object();
    statuses = json_object();
    if (root == NULL || paths == NULL || statuses == NULL)
        goto fail;
    for (int r = 0; r < FAKE_ROUTE_COUNT; r++) {
        json_t *p, *by;

        if (st->by_route[r] == 0)
            continue;
        p = json_object();
        by = json_object();
        if (p == NULL || by == NULL) {
            json_decref(p);
            json_decref(by);
            goto fail;
        }
        for (int s = 0; s < 600; s++) {
            if (st->by_status[r][s] == 0)
                continue;
            totals[s] += st->by_status[r][s];
            fake_status_key(key, sizeof key, s);
            json_object_set_new(by, key, json_integer((json_int_t)st->by_status[r][s]));
        }
        json_object_set_new(p, "total", json_integer((json_int_t)st->by_route[r]));
        json_object_set_new(p, "status", by);
        json_object_set_new(paths, fake_route_names[r], p);
    }
    for (int s = 0; s < 600; s++) {
        if (totals[s] == 0)
            continue;
        fake_status_key(key, sizeof key, s);
        json_object_set_new(statuses, key, json_integer((json_int_t)totals[s]));
    }
    json_object_set_new(root, "requests_total", json_integer((json_int_t)st->requests));
    json_object_set_new(root, "requests", paths);
    json_object_set_new(root, "status", statuses);
    json_object_set_new(root, "faults", json_integer((json_int_t)st->faults));
    json_object_set_new(root, "rate_limited", json_integer((json_int_t)st->rate_limited));
    json_object_set_new(root, "models", json_deep_copy(srv->models));
    json_object_set_new(root, "open_connections", json_integer((json_int_t)st->conns_open));
    json_object_set_new(root, "max_open_connections", json_integer((json_int_t)st->conns_max));
    json_object_set_new(root, "connections_total", json_integer((json_int_t)st->conns_total));
    return root;
fail:
    json_decref(root);
    json_decref(paths);
    json_decref(statuses);
    return NULL;
}

/* The rule set /control answers with. Return value: new reference (NULL on
 * allocation failure). */
static json_t *fake_rules_json(const struct fake_server *srv)
{
    json_t *limits = json_array(), *faults = json_array();
    char buf[64];

    for (size_t i = 0; limits != NULL && i < srv->opt.nlimits; i++)
        json_array_append_new(limits, fake_limit_json(&srv->opt.limits[i]));
    for (size_t i = 0; faults != NULL && i < srv->opt.nrules; i++) {
        const struct fake_rule *r = &srv->opt.rules[i];
        const char *kind = fake_fault_format(&r->fault, buf, sizeof buf);

        if (r->remaining >= 0)
            json_array_append_new(faults, json_sprintf("%s:%s@%ld", r->model, kind, r->remaining));
        else
            json_array_append_new(faults, json_sprintf("%s:%s", r->model, kind));
    }
    return json_pack("{s:o?, s:o?}", "limits", limits, "faults", faults);
}

static void fake_rules_free(struct fake_rule *rules, size_t n, struct fake_limit *limits,
                            size_t nlimits)
{
    for (size_t i = 0; i < n; i++)
        free(rules[i].model);
    for (size_t i = 0; i < nlimits; i++)
        free(limits[i].model);
}

/* A list of rule strings from the control body; -1 with *why set when it
 * is not one. Parsed rules go to the arrays the caller owns. */
static int fake_control_list(json_t *list, const char *name, struct fake_rule *rules, size_t *n,
                             struct fake_limit *limits, size_t *nlimits, char *why, size_t cap)
{
    json_t *v;
    size_t i;

    if (!json_is_array(list)) {
        snprintf(why, cap, "'%s' must be an array of strings", name);
        return -1;
    }
    json_array_foreach(list, i, v)
    {
        const char *spec = json_string_value(v);

        if (spec == NULL) {
            snprintf(why, cap, "'%s' must be an array of strings", name);
            return -1;
        }
        if (limits != NULL) {
            struct fake_limit l;

            if (fake_limit_parse(spec, &l) != 0) {
                snprintf(why, cap,
                         "bad limit %.200s (want MODEL:rpm=N[,tpm=N][,window=rolling|fixed]"
                         "[,headers=0|1])",
                         spec);
                return -1;
            }
            if (fake_limit_add(limits, nlimits, &l) != 0) {
                snprintf(why, cap, "limit %.200s: its model has a rule already, or over %d rules",
                         spec, FAKE_LIMITS_MAX);
                return -1;
            }
        } else {
            if (*n == FAKE_RULES_MAX) {
                snprintf(why, cap, "at most %d faults", FAKE_RULES_MAX);
                return -1;
            }
            if (fake_rule_parse(spec, &rules[*n]) != 0) {
                snprintf(why, cap, "bad fault %.200s (want MODEL:KIND[@COUNT])", spec);
                return -1;
            }
            (*n)++;
        }
    }
    return 0;
}

/* POST /control {"limits": [...], "faults": [...], "clear": true}: every
 * list given replaces its rules, clear empties both first; all or nothing.
 * GET /control: the rules as they stand. */
static void fake_control(struct fake_server *srv, const struct fake_request *req,
                         struct fake_outcome *o)
{
    struct fake_rule rules[FAKE_RULES_MAX];
    struct fake_limit limits[FAKE_LIMITS_MAX];
    size_t nrules = 0, nlimits = 0;
    json_t *body = req->json, *v, *lim, *flt;
    bool clear = false;
    const char *k;
    char why[512] = "";

    if (fake_eq(req->head->method, req->head->method_len, "GET"))
        goto answer;
    if (!json_is_object(body)) {
        snprintf(why, sizeof why, "the body must be a JSON object");
        goto bad;
    }
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "clear") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(why, sizeof why, "'clear' must be true or false");
                goto bad;
            }
            clear = json_is_true(v);
        } else if (strcmp(k, "limits") != 0 && strcmp(k, "faults") != 0) {
            snprintf(why, sizeof why, "unknown field '%.100s' (limits, faults, clear)", k);
            goto bad;
        }
    }
    lim = json_object_get(body, "limits");
    flt = json_object_get(body, "faults");
    if (lim == NULL && flt == NULL && !clear) {
        snprintf(why, sizeof why, "nothing to do: give limits, faults or clear");
        goto bad;
    }
    if ((lim != NULL &&
         fake_control_list(lim, "limits", NULL, NULL, limits, &nlimits, why, sizeof why) != 0) ||
        (flt != NULL &&
         fake_control_list(flt, "faults", rules, &nrules, NULL, NULL, why, sizeof why) != 0))
        goto bad;
    if (clear || lim != NULL) {
        fake_rules_free(NULL, 0, srv->opt.limits, srv->opt.nlimits);
        memcpy(srv->opt.limits, limits, nlimits * sizeof *limits);
        srv->opt.nlimits = nlimits;
        fake_buckets_rules_changed(srv);
    }
    if (clear || flt != NULL) {
        fake_rules_free(srv->opt.rules, srv->opt.nrules, NULL, 0);
        memcpy(srv->opt.rules, rules, nrules * sizeof *rules);
        srv->opt.nrules = nrules;
    }
answer:
    o->status = 200;
    o->json = fake_rules_json(srv);
    return;
bad:
    fake_rules_free(rules, nrules, limits, nlimits);
    o->status = 400;
    o->json = json_pack("{s:s}", "error", why);
}

static uint64_t fake_delay(struct fake_server *srv, long latency)
{
    uint64_t ms;

    if (latency >= 0)
        return (uint64_t)latency;
    ms = srv->opt.latency_ms;
    if (srv->opt.jitter_ms > 0)
        ms += fake_rand(srv) % (srv->opt.jitter_ms + 1);
    return ms;
}

static void fake_dispatch(struct fake_server *srv, const struct fake_request *req,
                          struct fake_outcome *o)
{
    char msg[160];

    switch (req->route) {
    case FAKE_ROUTE_OPENAI:
    case FAKE_ROUTE_AZURE:
        o->provider = true;
        fake_openai(srv, req, o);
        break;
    case FAKE_ROUTE_ANTHROPIC:
        o->provider = true;
        fake_anthropic(srv, req, o);
        break;
    case FAKE_ROUTE_HEALTHZ:
        o->status = 200;
        o->raw = strdup("ok");
        o->raw_len = o->raw != NULL ? 2 : 0;
        o->content_type = "text/plain";
        break;
    case FAKE_ROUTE_STATS:
        o->status = 200;
        o->json = fake_stats_json(srv);
        break;
    case FAKE_ROUTE_CONTROL:
        fake_control(srv, req, o);
        break;
    default:
        snprintf(
            msg, sizeof msg, "Invalid URL (%.*s %.*s)",
            req->head != NULL ? (int)(req->head->method_len > 16 ? 16 : req->head->method_len) : 0,
            req->head != NULL ? req->head->method : "",
            (int)(req->path_len > 100 ? 100 : req->path_len), req->path != NULL ? req->path : "");
        fake_fail(o, FAKE_API_OPENAI, 404, msg, NULL, NULL, req->seq);
        break;
    }
    if (o->provider && !o->rate_limited) /* a real provider refuses at once */
        o->delay_ms = fake_delay(srv, o->latency);
}

/* ---- HTTP request heads ---- */

static bool fake_is_tchar(char ch)
{
    return ch > 0x20 && ch < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", ch) == NULL;
}

/* Whether a comma-separated header value holds token (case-insensitive). */
static bool fake_has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token), i = 0;

    while (i < n) {
        size_t j = i, s, e;

        while (j < n && v[j] != ',')
            j++;
        s = i;
        e = j;
        while (s < e && (v[s] == ' ' || v[s] == '\t'))
            s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
            return true;
        i = j + 1;
    }
    return false;
}

/* Parses the head p[0..len), which ends with CRLF CRLF, lower-casing header
 * names in place. Returns 0, or the status to refuse the request with;
 * what was read before an error stays filled in (for the log). */
static int fake_head_parse(char *p, size_t len, struct fake_head *h)
{
    char *end = p + len - 2; /* the final empty line */
    char *line = p, *eol, *sp;
    bool has_length = false, has_te = false, too_large = false;
    bool conn_close = false, conn_keep = false;

    h->method = h->target = NULL;
    h->method_len = h->target_len = 0;
    h->minor = 1;
    h->keep_alive = true;
    h->expect_continue = false;
    h->content_length = 0;
    h->nheaders = 0;

    eol = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
    sp = memchr(line, ' ', (size_t)(eol - line));
    if (sp == NULL || sp == line)
        return 400;
    h->method = line;
    h->method_len = (size_t)(sp - line);
    for (size_t i = 0; i < h->method_len; i++) {
        if (!fake_is_tchar(line[i]))
            return 400;
    }
    line = sp + 1;
    sp = memchr(line, ' ', (size_t)(eol - line));
    if (sp == NULL || sp == line)
        return 400;
    for (char *q = line; q < sp; q++) {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            return 400;
    }
    h->target = line;
    h->target_len = (size_t)(sp - line);
    line = sp + 1;
    if (fake_eq(line, (size_t)(eol - line), "HTTP/1.1"))
        h->minor = 1;
    else if (fake_eq(line, (size_t)(eol - line), "HTTP/1.0"))
        h->minor = 0;
    else if (fake_prefix(line, (size_t)(eol - line), "HTTP/"))
        return 505;
    else
        return 400;

    for (line = eol + 2; line < end; line = eol + 2) {
        struct fake_header *hd;
        char *colon, *v, *ve;

        eol = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
        if (*line == ' ' || *line == '\t')
            return 400; /* obsolete line folding */
        colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL || colon == line)
            return 400;
        for (char *q = line; q < colon; q++) {
            if (!fake_is_tchar(*q))
                return 400;
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        }
        if (h->nheaders == FAKE_HEADERS_MAX)
            return 431;
        v = colon + 1;
        ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        hd = &h->headers[h->nheaders++];
        hd->name = line;
        hd->name_len = (size_t)(colon - line);
        hd->value = v;
        hd->value_len = (size_t)(ve - v);

        if (fake_eq(hd->name, hd->name_len, "content-length")) {
            uint64_t n;

            if (fake_parse_num(v, hd->value_len, UINT64_MAX / 16, &n) != 0) {
                bool digits = hd->value_len > 0;

                for (size_t i = 0; i < hd->value_len; i++)
                    digits = digits && fake_is_digit(v[i]);
                if (!digits)
                    return 400;
                too_large = true; /* a huge number */
                continue;
            }
            if (has_length && n != h->content_length)
                return 400;
            has_length = true;
            h->content_length = n;
            if (n > FAKE_BODY_MAX)
                too_large = true;
        } else if (fake_eq(hd->name, hd->name_len, "transfer-encoding")) {
            has_te = true;
        } else if (fake_eq(hd->name, hd->name_len, "connection")) {
            conn_close = conn_close || fake_has_token(v, hd->value_len, "close");
            conn_keep = conn_keep || fake_has_token(v, hd->value_len, "keep-alive");
        } else if (fake_eq(hd->name, hd->name_len, "expect")) {
            h->expect_continue = fake_has_token(v, hd->value_len, "100-continue");
        }
    }
    h->keep_alive = h->minor == 1 ? !conn_close : (conn_keep && !conn_close);
    if (has_te)
        return 411; /* only Content-Length bodies */
    if (too_large)
        return 413;
    return 0;
}

static enum fake_route fake_route_match(const struct fake_head *h, struct fake_request *req)
{
    bool post = fake_eq(h->method, h->method_len, "POST");
    bool get = fake_eq(h->method, h->method_len, "GET");
    const char *p = req->path;
    size_t n = req->path_len;
    static const char prefix[] = "/openai/deployments/", suffix[] = "/chat/completions";

    if (post && fake_eq(p, n, "/v1/chat/completions"))
        return FAKE_ROUTE_OPENAI;
    if (post && fake_eq(p, n, "/v1/messages"))
        return FAKE_ROUTE_ANTHROPIC;
    if (get && fake_eq(p, n, "/healthz"))
        return FAKE_ROUTE_HEALTHZ;
    if (get && fake_eq(p, n, "/stats"))
        return FAKE_ROUTE_STATS;
    if ((get || post) && fake_eq(p, n, "/control"))
        return FAKE_ROUTE_CONTROL;
    if (post && n > sizeof prefix - 1 + sizeof suffix - 1 && fake_prefix(p, n, prefix) &&
        memcmp(p + n - (sizeof suffix - 1), suffix, sizeof suffix - 1) == 0) {
        const char *dep = p + sizeof prefix - 1;
        size_t dep_len = n - (sizeof prefix - 1) - (sizeof suffix - 1);

        if (memchr(dep, '/', dep_len) == NULL) {
            req->deployment = dep;
            req->deployment_len = dep_len;
            return FAKE_ROUTE_AZURE;
        }
    }
    return FAKE_ROUTE_OTHER;
}

/* ---- the log: one JSON line per request ---- */

static void fake_log_write(struct fake_server *srv, json_t *entry)
{
    if (srv->log == NULL)
        return;
    json_dumpf(entry, srv->log, JSON_COMPACT);
    fputc('\n', srv->log);
    srv->log_dirty = true;
}

static void fake_log_flush(struct fake_server *srv, uint64_t now)
{
    if (srv->log != NULL)
        fflush(srv->log);
    srv->log_dirty = false;
    srv->log_flushed_at = now;
}

/* Return value: new reference (NULL on allocation failure). status, fault,
 * delay_ms and response are added when the reply is decided. */
static json_t *fake_log_begin(const struct fake_conn *c, const struct fake_request *req)
{
    const struct fake_head *h = req->head;
    json_t *e = json_object(), *headers = json_object();

    if (e == NULL || headers == NULL) {
        json_decref(e);
        json_decref(headers);
        return NULL;
    }
    json_object_set_new(e, "ts_ms", json_integer((json_int_t)fake_clock_ms(CLOCK_REALTIME)));
    json_object_set_new(e, "seq", json_integer((json_int_t)req->seq));
    json_object_set_new(e, "conn", json_integer((json_int_t)c->serial));
    json_object_set_new(e, "req", json_integer((json_int_t)c->nreq));
    json_object_set_new(e, "method",
                        h != NULL && h->method != NULL ? fake_json_text(h->method, h->method_len)
                                                       : json_null());
    json_object_set_new(e, "path",
                        req->path != NULL ? fake_json_text(req->path, req->path_len) : json_null());
    json_object_set_new(
        e, "query", req->query != NULL ? fake_json_text(req->query, req->query_len) : json_null());
    for (size_t i = 0; h != NULL && i < h->nheaders; i++) {
        const struct fake_header *hd = &h->headers[i];
        json_t *old = json_object_getn(headers, hd->name, hd->name_len);

        if (old != NULL) { /* repeated header: join the values as one list */
            size_t ol = json_string_length(old);
            char *joined = malloc(ol + 2 + hd->value_len);

            if (joined == NULL)
                continue;
            memcpy(joined, json_string_value(old), ol);
            memcpy(joined + ol, ", ", 2);
            memcpy(joined + ol + 2, hd->value, hd->value_len);
            json_object_setn_new(headers, hd->name, hd->name_len,
                                 fake_json_text(joined, ol + 2 + hd->value_len));
            free(joined);
        } else {
            json_object_setn_new(headers, hd->name, hd->name_len,
                                 fake_json_text(hd->value, hd->value_len));
        }
    }
    json_object_set_new(e, "headers", headers);
    if (req->json != NULL) {
        json_object_set(e, "body", req->json);
    } else {
        json_object_set_new(e, "body", json_null());
        if (req->body_len > 0)
            json_object_set_new(e, "body_raw", fake_json_text(req->body, req->body_len));
    }
    return e;
}

/* ---- connections: queue, output, timers ---- */

static void fake_reply_free(struct fake_reply *r)
{
    if (r == NULL)
        return;
    json_decref(r->log);
    free(r->data);
    free(r);
}

/* The reply's outcome is final: count it and write its log line. */
static void fake_reply_resolve(struct fake_server *srv, struct fake_reply *r)
{
    r->resolved = true;
    srv->stats.by_status[r->route][r->status]++;
    if (r->rate_limited)
        srv->stats.rate_limited++;
    if (r->mstats != NULL)
        fake_model_status(r->mstats, r->status, r->rate_limited);
    if (r->log != NULL) {
        fake_log_write(srv, r->log);
        json_decref(r->log);
        r->log = NULL;
    }
}

/* The connection went away before the reply started. */
static void fake_reply_abandon(struct fake_server *srv, struct fake_reply *r)
{
    r->status = 0;
    if (r->log != NULL) {
        json_object_set_new(r->log, "status", json_null());
        json_object_set_new(r->log, "response", json_null());
        json_object_del(r->log, "response_raw");
        json_object_set_new(r->log, "abandoned", json_true());
    }
    fake_reply_resolve(srv, r);
}

static struct fake_reply *fake_queue_pop(struct fake_conn *c)
{
    struct fake_reply *r = c->head;

    c->head = r->next;
    if (c->head == NULL)
        c->tail = NULL;
    c->queued--;
    return r;
}

static size_t fake_head_format(char *buf, size_t cap, const struct fake_outcome *o, size_t body_len,
                               bool close_after, uint64_t seq)
{
    int n = snprintf(buf, cap,
                     "HTTP/1.1 %d %s\r\n"
                     "content-type: %s\r\n"
                     "content-length: %zu\r\n"
                     "connection: %s\r\n",
                     o->status, fake_reason(o->status),
                     o->content_type != NULL ? o->content_type : "application/json", body_len,
                     close_after ? "close" : "keep-alive");
    size_t len = n > 0 ? (size_t)n : 0;

    if (o->id_header != NULL && len < cap) {
        n = snprintf(buf + len, cap - len, "%s: req_fake%016" PRIx64 "\r\n", o->id_header, seq);
        len += n > 0 ? (size_t)n : 0;
    }
    if (o->retry_after >= 0 && len < cap) {
        n = snprintf(buf + len, cap - len, "retry-after: %ld\r\n", o->retry_after);
        len += n > 0 ? (size_t)n : 0;
    }
    if (o->extra_len > 0 && o->extra_len < cap - len) {
        memcpy(buf + len, o->extra, o->extra_len);
        len += o->extra_len;
    }
    if (len < cap) {
        n = snprintf(buf + len, cap - len, "\r\n");
        len += n > 0 ? (size_t)n : 0;
    }
    return len < cap ? len : cap - 1;
}

static enum fake_action fake_action_of(enum fake_fault_kind kind)
{
    switch (kind) {
    case FAKE_FAULT_TIMEOUT:
    case FAKE_FAULT_HANG:
        return FAKE_ACT_TIMEOUT;
    case FAKE_FAULT_STALL:
        return FAKE_ACT_STALL;
    case FAKE_FAULT_CLOSE:
        return FAKE_ACT_CLOSE;
    case FAKE_FAULT_TRUNCATE:
        return FAKE_ACT_TRUNCATE;
    case FAKE_FAULT_SLOW:
        return FAKE_ACT_SLOW;
    default:
        return FAKE_ACT_SEND;
    }
}

/* Turns an outcome into a queued reply (bytes ready, due time set) and
 * completes its log entry. Takes the request's log entry; the outcome stays
 * the caller's. */
static void fake_enqueue(struct fake_server *srv, struct fake_conn *c, struct fake_request *req,
                         struct fake_outcome *o, bool close_after)
{
    struct fake_reply *r = calloc(1, sizeof *r);
    char *dumped = NULL, head[768 + FAKE_EXTRA_MAX], fault_buf[64];
    const char *body = o->raw, *fault;
    size_t body_len = o->raw_len, head_len;
    json_t *e;

    if (r == NULL)
        goto oom;
    r->route = req->route;
    r->close_after = close_after;
    r->rate_limited = o->rate_limited;
    r->mstats = o->mstats;
    r->action = fake_action_of(o->fault.kind);
    r->due = fake_mono_ms() + o->delay_ms;
    if (r->action != FAKE_ACT_TIMEOUT && r->action != FAKE_ACT_CLOSE && o->status > 0) {
        if (o->json != NULL) {
            body_len = json_dumpb(o->json, srv->dump, sizeof srv->dump, JSON_COMPACT);
            body = srv->dump;
            if (body_len > sizeof srv->dump) {
                dumped = json_dumps(o->json, JSON_COMPACT);
                body = dumped;
                body_len = dumped != NULL ? strlen(dumped) : 0;
            }
        }
        if (o->fault.kind == FAKE_FAULT_MALFORMED)
            body_len /= 2; /* half a JSON object is never JSON */
        head_len = fake_head_format(head, sizeof head, o, body_len, close_after, req->seq);
        r->data = malloc(head_len + body_len);
        if (r->data == NULL)
            goto oom;
        memcpy(r->data, head, head_len);
        if (body_len > 0)
            memcpy(r->data + head_len, body, body_len);
        r->head_len = head_len;
        r->len = head_len + body_len;
        r->status = o->status;
    }

    e = req->log;
    req->log = NULL;
    if (e != NULL) {
        bool json_reply = r->status > 0 && o->json != NULL && o->fault.kind != FAKE_FAULT_MALFORMED;

        fault = fake_fault_format(&o->fault, fault_buf, sizeof fault_buf);
        json_object_set_new(e, "status", r->status > 0 ? json_integer(r->status) : json_null());
        json_object_set_new(e, "fault", fault != NULL ? json_string(fault) : json_null());
        json_object_set_new(e, "delay_ms", json_integer((json_int_t)o->delay_ms));
        json_object_set_new(e, "response", json_reply ? json_incref(o->json) : json_null());
        if (r->status > 0 && !json_reply)
            json_object_set_new(e, "response_raw", fake_json_text(body, body_len));
        r->log = e;
    }
    if (o->fault.kind != FAKE_FAULT_NONE)
        srv->stats.faults++;
    if (r->action == FAKE_ACT_TIMEOUT)
        fake_reply_resolve(srv, r); /* it never answers: say so now */
    if (c->tail != NULL)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->queued++;
    if (r->action == FAKE_ACT_TIMEOUT || r->action == FAKE_ACT_CLOSE ||
        r->action == FAKE_ACT_TRUNCATE || r->action == FAKE_ACT_STALL || close_after)
        c->discard = true;
    free(dumped);
    return;
oom:
    free(dumped);
    fake_reply_free(r);
    fprintf(stderr, "fake_provider: out of memory, dropping connection %" PRIu64 "\n", c->serial);
    c->discard = true;
    c->after = FAKE_AFTER_CLOSE;
}

static void fake_request_init(struct fake_server *srv, struct fake_conn *c,
                              struct fake_request *req, const struct fake_head *h, const char *body,
                              size_t body_len)
{
    memset(req, 0, sizeof *req);
    req->head = h;
    req->route = FAKE_ROUTE_OTHER;
    req->body = body;
    req->body_len = body_len;
    c->nreq++;
    if (h != NULL && h->target != NULL) {
        const char *q = memchr(h->target, '?', h->target_len);

        req->path = h->target;
        req->path_len = q != NULL ? (size_t)(q - h->target) : h->target_len;
        if (q != NULL) {
            req->query = q + 1;
            req->query_len = h->target_len - req->path_len - 1;
        }
        if (h->method != NULL)
            req->route = fake_route_match(h, req);
    }
    if (body_len > 0)
        req->json = json_loadb(body, body_len, JSON_DECODE_ANY, NULL);
    srv->stats.by_route[req->route]++;
    if (req->route == FAKE_ROUTE_CONTROL)
        return; /* the test's own channel: no seq, no log line, not in requests_total */
    req->seq = ++srv->seq;
    srv->stats.requests++;
    if (srv->log != NULL)
        req->log = fake_log_begin(c, req);
}

static void fake_request_release(struct fake_request *req)
{
    json_decref(req->json);
    json_decref(req->log);
}

static void fake_outcome_init(struct fake_outcome *o)
{
    memset(o, 0, sizeof *o);
    o->retry_after = -1;
    o->latency = -1;
    o->fault.kind = FAKE_FAULT_NONE;
    o->fault.retry_after = -1;
    o->fault.echo_key = -1;
}

static void fake_outcome_release(struct fake_outcome *o)
{
    json_decref(o->json);
    free(o->raw);
}

/* A complete request: answer it (into the queue). */
static void fake_conn_request(struct fake_server *srv, struct fake_conn *c,
                              const struct fake_head *h, const char *body, size_t body_len)
{
    struct fake_request req;
    struct fake_outcome o;

    fake_request_init(srv, c, &req, h, body, body_len);
    fake_outcome_init(&o);
    fake_dispatch(srv, &req, &o);
    fake_enqueue(srv, c, &req, &o, !h->keep_alive);
    fake_outcome_release(&o);
    fake_request_release(&req);
}

/* A request refused at the HTTP level: answer with status, then close. */
static void fake_conn_refuse(struct fake_server *srv, struct fake_conn *c,
                             const struct fake_head *h, int status)
{
    struct fake_request req;
    struct fake_outcome o;
    const char *msg;

    switch (status) {
    case 411:
        msg = "A request body must have a Content-Length (chunked bodies are not accepted)";
        break;
    case 413:
        msg = "Request too large: head over 64 KiB or body over 8 MiB";
        break;
    case 431:
        msg = "Too many header fields";
        break;
    case 505:
        msg = "HTTP version not supported";
        break;
    default:
        msg = "Malformed HTTP request";
        break;
    }
    fake_request_init(srv, c, &req, h, NULL, 0);
    fake_outcome_init(&o);
    fake_fail(&o, req.route == FAKE_ROUTE_ANTHROPIC ? FAKE_API_ANTHROPIC : FAKE_API_OPENAI, status,
              msg, NULL, NULL, req.seq);
    fake_enqueue(srv, c, &req, &o, true);
    fake_outcome_release(&o);
    fake_request_release(&req);
}

/* Reads complete requests from data[0..len) into the queue; returns the
 * bytes used. Stops at an incomplete request, a full queue, or a reply that
 * ends the connection. */
static size_t fake_conn_parse(struct fake_server *srv, struct fake_conn *c, char *data, size_t len)
{
    static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    size_t used = 0;
    struct fake_head h;

    while (!c->discard && c->queued < FAKE_QUEUE_MAX && used < len) {
        char *p = data + used;
        size_t avail = len - used;

        if (c->need == 0) {
            size_t from, head_len;
            char *end;
            int status;

            if (*p == '\r' || *p == '\n') { /* empty lines between requests (RFC 9112 2.2) */
                used++;
                continue;
            }
            from = c->scanned > 3 ? c->scanned - 3 : 0;
            end = memmem(p + from, avail - from, "\r\n\r\n", 4);
            if (end == NULL) {
                c->scanned = avail;
                if (avail > FAKE_HEAD_MAX)
                    fake_conn_refuse(srv, c, NULL, 413);
                break;
            }
            head_len = (size_t)(end - p) + 4;
            if (head_len > FAKE_HEAD_MAX) {
                fake_conn_refuse(srv, c, NULL, 413);
                break;
            }
            status = fake_head_parse(p, head_len, &h);
            if (status != 0) {
                fake_conn_refuse(srv, c, &h, status);
                break;
            }
            c->head_len = head_len;
            c->need = head_len + h.content_length;
            /* send 100 only when no earlier reply is owed, to keep order */
            if (avail < c->need && h.expect_continue && c->queued == 0 &&
                fake_buf_append(&c->out, continue_line, sizeof continue_line - 1, FAKE_OUT_MAX) !=
                    0) {
                c->discard = true;
                c->after = FAKE_AFTER_CLOSE;
                break;
            }
        }
        if (avail < c->need)
            break;
        fake_head_parse(p, c->head_len, &h);
        fake_conn_request(srv, c, &h, p + c->head_len, c->need - c->head_len);
        used += c->need;
        c->need = 0;
        c->scanned = 0;
    }
    return used;
}

/* Moves due replies to the output buffer, in request order. */
static void fake_conn_advance(struct fake_server *srv, struct fake_conn *c, uint64_t now)
{
    struct fake_reply *r;

    while ((r = c->head) != NULL && c->after == FAKE_AFTER_NONE &&
           fake_buf_pending(&c->out) < FAKE_OUT_HIGH) {
        int rc = 0;

        if (r->action == FAKE_ACT_TIMEOUT || now < r->due)
            break;
        if (!r->resolved)
            fake_reply_resolve(srv, r);
        switch (r->action) {
        case FAKE_ACT_SEND:
            rc = fake_buf_append(&c->out, r->data, r->len, FAKE_OUT_MAX);
            break;
        case FAKE_ACT_TRUNCATE: /* full Content-Length, half the body, then EOF */
            rc = fake_buf_append(&c->out, r->data, r->head_len + (r->len - r->head_len) / 2,
                                 FAKE_OUT_MAX);
            c->after = FAKE_AFTER_CLOSE;
            break;
        case FAKE_ACT_CLOSE:
            c->after = FAKE_AFTER_CLOSE;
            break;
        case FAKE_ACT_STALL: /* full Content-Length, half the body, then nothing, ever */
            rc = fake_buf_append(&c->out, r->data, r->head_len + (r->len - r->head_len) / 2,
                                 FAKE_OUT_MAX);
            break;
        case FAKE_ACT_SLOW: {
            size_t body_len = r->len - r->head_len;
            size_t step = (body_len + FAKE_SLOW_CHUNKS - 1) / FAKE_SLOW_CHUNKS;
            size_t want = r->sent == 0 ? r->head_len + (step > 0 ? step : 1) : step;

            if (want > r->len - r->sent)
                want = r->len - r->sent;
            rc = fake_buf_append(&c->out, r->data + r->sent, want, FAKE_OUT_MAX);
            r->sent += want;
            if (rc == 0 && r->sent < r->len) {
                r->due = now + FAKE_SLOW_STEP_MS;
                continue; /* not due any more: the loop ends */
            }
            break;
        }
        case FAKE_ACT_TIMEOUT:
            break;
        }
        if (rc != 0)
            c->after = FAKE_AFTER_CLOSE;
        else if (r->close_after && c->after == FAKE_AFTER_NONE && r->action != FAKE_ACT_STALL)
            c->after = FAKE_AFTER_LINGER;
        fake_reply_free(fake_queue_pop(c));
    }
}

/* Writes what it can; then closes, or starts the lingering close, when the
 * output is done. Returns -1 when the connection was closed (c is freed). */
static int fake_conn_flush(struct fake_server *srv, struct fake_conn *c, uint64_t now)
{
    while (fake_buf_pending(&c->out) > 0) {
        ssize_t n = send(c->fd, c->out.data + c->out.off, fake_buf_pending(&c->out), MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            fake_conn_close(srv, c);
            return -1;
        }
        fake_buf_consume(&c->out, (size_t)n);
    }
    if (c->after == FAKE_AFTER_CLOSE) {
        fake_conn_close(srv, c);
        return -1;
    }
    if (c->after == FAKE_AFTER_LINGER && !c->draining) {
        /* close gently: a client still sending would otherwise get a RST
         * that can destroy the reply before it reads it */
        shutdown(c->fd, SHUT_WR);
        c->draining = true;
        c->discard = true;
        c->linger_due = now + FAKE_LINGER_MS;
        fake_buf_release(&c->in);
    }
    if (c->peer_eof && (c->draining || c->head == NULL || c->head->action == FAKE_ACT_TIMEOUT)) {
        fake_conn_close(srv, c);
        return -1;
    }
    return 0;
}

static int fake_conn_rearm(struct fake_server *srv, struct fake_conn *c)
{
    uint32_t want = 0;

    if (!c->peer_eof && (c->discard || c->queued < FAKE_QUEUE_MAX))
        want |= EPOLLIN;
    if (fake_buf_pending(&c->out) > 0)
        want |= EPOLLOUT;
    if (want != c->events) {
        struct epoll_event ev = {.events = want, .data.ptr = c};

        if (epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
            fake_conn_close(srv, c);
            return -1;
        }
        c->events = want;
    }
    if (c->draining)
        fake_timer_arm(srv, c, c->linger_due);
    else if (c->head != NULL && c->after == FAKE_AFTER_NONE &&
             c->head->action != FAKE_ACT_TIMEOUT && fake_buf_pending(&c->out) < FAKE_OUT_HIGH)
        fake_timer_arm(srv, c, c->head->due);
    else
        fake_timer_disarm(srv, c);
    return 0;
}

/* Sends what is due, resumes parsing held-back input, writes, rearms.
 * Returns -1 when the connection was closed (c is freed). */
static int fake_conn_service(struct fake_server *srv, struct fake_conn *c)
{
    uint64_t now = fake_mono_ms();

    for (;;) {
        size_t before, used;

        fake_conn_advance(srv, c, now);
        if (c->discard || c->queued >= FAKE_QUEUE_MAX || fake_buf_pending(&c->in) == 0)
            break;
        before = c->queued;
        used = fake_conn_parse(srv, c, c->in.data + c->in.off, fake_buf_pending(&c->in));
        fake_buf_consume(&c->in, used);
        if (c->queued == before)
            break;
    }
    if (c->discard)
        fake_buf_release(&c->in);
    if (fake_conn_flush(srv, c, now) != 0)
        return -1;
    return fake_conn_rearm(srv, c);
}

/* Returns -1 when the connection was closed (c is freed). */
static int fake_conn_read(struct fake_server *srv, struct fake_conn *c)
{
    for (int round = 0; round < 8; round++) {
        ssize_t n;
        size_t got, used;

        if (!c->discard && c->queued >= FAKE_QUEUE_MAX)
            break; /* backpressure: leave it in the socket */
        n = recv(c->fd, srv->scratch, sizeof srv->scratch, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            fake_conn_close(srv, c);
            return -1;
        }
        if (n == 0) {
            if (c->draining) {
                fake_conn_close(srv, c);
                return -1;
            }
            c->peer_eof = true;
            break;
        }
        got = (size_t)n;
        if (c->discard)
            continue;
        if (fake_buf_pending(&c->in) == 0) {
            /* the common case: whole requests in one read, no copy */
            used = fake_conn_parse(srv, c, srv->scratch, got);
            if (used < got && !c->discard &&
                fake_buf_append(&c->in, srv->scratch + used, got - used, FAKE_IN_MAX) != 0) {
                fake_conn_close(srv, c);
                return -1;
            }
        } else {
            if (fake_buf_append(&c->in, srv->scratch, got, FAKE_IN_MAX) != 0) {
                fake_conn_close(srv, c);
                return -1;
            }
            used = fake_conn_parse(srv, c, c->in.data + c->in.off, fake_buf_pending(&c->in));
            fake_buf_consume(&c->in, used);
        }
        if (c->discard)
            fake_buf_release(&c->in);
        if (got < sizeof srv->scratch)
            break;
    }
    return 0;
}

static int fake_conn_open(struct fake_server *srv, int fd)
{
    struct fake_conn *c;
    struct epoll_event ev;
    int one = 1;

    if (srv->stats.conns_open + 1 > srv->heap_cap) {
        size_t cap = srv->heap_cap != 0 ? srv->heap_cap * 2 : 1024;
        struct fake_conn **heap = realloc(srv->heap, cap * sizeof *heap);

        if (heap == NULL)
            return -1;
        srv->heap = heap;
        srv->heap_cap = cap;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    c->fd = fd;
    c->serial = ++srv->conn_serial;
    c->heap_index = FAKE_NO_INDEX;
    c->events = EPOLLIN;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(c);
        return -1;
    }
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->stats.conns_open++;
    srv->stats.conns_total++;
    if (srv->stats.conns_open > srv->stats.conns_max)
        srv->stats.conns_max = srv->stats.conns_open;
    return 0;
}

static void fake_conn_close(struct fake_server *srv, struct fake_conn *c)
{
    fake_timer_disarm(srv, c);
    close(c->fd);
    while (c->head != NULL) {
        struct fake_reply *r = fake_queue_pop(c);

        if (!r->resolved)
            fake_reply_abandon(srv, r);
        fake_reply_free(r);
    }
    fake_buf_release(&c->in);
    fake_buf_release(&c->out);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    srv->stats.conns_open--;
    free(c);
}

static void fake_accept(struct fake_server *srv)
{
    for (int i = 0; i < 256; i++) {
        int fd = accept4(srv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && srv->spare_fd >= 0) {
                /* out of descriptors: take one connection and drop it, or
                 * the level-triggered listener would spin */
                close(srv->spare_fd);
                fd = accept(srv->lfd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            return;
        }
        if (fake_conn_open(srv, fd) != 0)
            close(fd);
    }
}

/* ---- the loop ---- */

static int fake_loop_timeout(const struct fake_server *srv, uint64_t now)
{
    uint64_t wait = UINT64_MAX;

    if (srv->heap_len > 0)
        wait = srv->heap[0]->due > now ? srv->heap[0]->due - now : 0;
    if (srv->log_dirty) {
        uint64_t at = srv->log_flushed_at + FAKE_LOG_FLUSH_MS;
        uint64_t w = at > now ? at - now : 0;

        if (w < wait)
            wait = w;
    }
    if (wait == UINT64_MAX)
        return -1;
    return wait > INT_MAX ? INT_MAX : (int)wait;
}

static void fake_run(struct fake_server *srv)
{
    struct epoll_event evs[256];

    while (!srv->stop) {
        uint64_t now = fake_mono_ms();
        int n = epoll_wait(srv->epfd, evs, 256, fake_loop_timeout(srv, now));

        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("fake_provider: epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            struct fake_conn *c = tag;
            uint32_t e = evs[i].events;

            if (tag == &fake_tag_listen) {
                fake_accept(srv);
            } else if (tag == &fake_tag_signal) {
                struct signalfd_siginfo si;

                while (read(srv->sfd, &si, sizeof si) == (ssize_t)sizeof si)
                    srv->stop = true;
            } else if (e & (EPOLLERR | EPOLLHUP)) {
                fake_conn_close(srv, c);
            } else if (!(e & EPOLLIN) || fake_conn_read(srv, c) == 0) {
                fake_conn_service(srv, c);
            }
        }
        now = fake_mono_ms();
        while (srv->heap_len > 0 && srv->heap[0]->due <= now) {
            struct fake_conn *c = srv->heap[0];

            fake_timer_disarm(srv, c);
            if (c->draining)
                fake_conn_close(srv, c);
            else
                fake_conn_service(srv, c);
        }
        if (srv->log_dirty && now - srv->log_flushed_at >= FAKE_LOG_FLUSH_MS)
            fake_log_flush(srv, now);
    }
}

/* ---- start-up ---- */

static void fake_usage(FILE *f)
{
    fputs(
        "usage: fake_provider [--host 127.0.0.1] [--port 0] [--ready-file PATH] [--log PATH]\n"
        "                     [--latency-ms N] [--jitter-ms N] [--seed N] [--output-tokens N]\n"
        "                     [--fault MODEL:KIND[@COUNT]]...\n"
        "                     [--limit "
        "MODEL:rpm=N[,tpm=N][,window=rolling|fixed][,headers=0|1]]...\n"
        "KIND: status:NNN[,retry_after:S][,echo_key:N] | timeout | hang | close | truncate |\n"
        "      malformed | slow | stall   (echo_key:N: the request's API key at byte N of a\n"
        "      long error message, N <= 4096; timeout = hang: never answers, keeps the\n"
        "      connection until the client closes it; stall: head and half the body, then\n"
        "      nothing; slow: the whole reply over about 1 s)\n"
        "--limit: per (API key, model) buckets; at least one of rpm, tpm (1..1000000000);\n"
        "      rolling (default): token bucket refilled at N/min; fixed: N per minute from\n"
        "      the window's first request; tokens = input estimate + max_tokens. Over a\n"
        "      limit: 429 at once, in the provider's shape, with retry-after. headers=1\n"
        "      (default): every reply of the model carries the provider's rate-limit\n"
        "      headers. A model's own rule wins over '*'; one rule per model.\n"
        "MODEL '*' matches every model. Listens on loopback only.\n"
        "POST /control {\"limits\":[SPEC...], \"faults\":[MODEL:KIND[@COUNT]...], \"clear\":true}\n"
        "      replaces rules while running (GET /control shows them); GET /stats counts.\n",
        f);
}

static int fake_options_parse(struct fake_options *opt, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"ready-file", required_argument, NULL, 'r'},
        {"log", required_argument, NULL, 'l'},
        {"latency-ms", required_argument, NULL, 'L'},
        {"jitter-ms", required_argument, NULL, 'J'},
        {"seed", required_argument, NULL, 'S'},
        {"output-tokens", required_argument, NULL, 'o'},
        {"fault", required_argument, NULL, 'f'},
        {"limit", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    uint64_t v;

    opt->host = "127.0.0.1";
    opt->output_tokens = 16;
    opt->seed = 1;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            opt->host = optarg;
            break;
        case 'p':
            if (fake_parse_num(optarg, strlen(optarg), 65535, &v) != 0)
                goto bad_number;
            opt->port = (unsigned)v;
            break;
        case 'r':
            opt->ready_file = optarg;
            break;
        case 'l':
            opt->log_path = optarg;
            break;
        case 'L':
        case 'J':
        case 'o':
            if (fake_parse_num(optarg, strlen(optarg), FAKE_DIRECTIVE_MAX, &v) != 0)
                goto bad_number;
            if (ch == 'L')
                opt->latency_ms = v;
            else if (ch == 'J')
                opt->jitter_ms = v;
            else
                opt->output_tokens = v;
            break;
        case 'S':
            if (fake_parse_num(optarg, strlen(optarg), UINT64_MAX / 16, &opt->seed) != 0)
                goto bad_number;
            break;
        case 'f':
            if (opt->nrules == FAKE_RULES_MAX) {
                fprintf(stderr, "fake_provider: at most %d --fault options\n", FAKE_RULES_MAX);
                return -1;
            }
            if (fake_rule_parse(optarg, &opt->rules[opt->nrules]) != 0) {
                fprintf(stderr,
                        "fake_provider: bad --fault %s (want MODEL:KIND[@COUNT], KIND one of "
                        "status:NNN[,retry_after:S][,echo_key:N] timeout hang close truncate "
                        "malformed slow stall)\n",
                        optarg);
                return -1;
            }
            opt->nrules++;
            break;
        case 'm': {
            struct fake_limit l;

            if (fake_limit_parse(optarg, &l) != 0) {
                fprintf(stderr,
                        "fake_provider: bad --limit %s (want "
                        "MODEL:rpm=N[,tpm=N][,window=rolling|fixed][,headers=0|1], N 1..%u, at "
                        "least one of rpm and tpm)\n",
                        optarg, FAKE_LIMIT_NUM_MAX);
                return -1;
            }
            if (fake_limit_add(opt->limits, &opt->nlimits, &l) != 0) {
                fprintf(stderr,
                        "fake_provider: --limit %s: its model has a rule already, or over %d "
                        "rules\n",
                        optarg, FAKE_LIMITS_MAX);
                return -1;
            }
            break;
        }
        case 'H':
            fake_usage(stdout);
            exit(0);
        default:
            fake_usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fake_provider: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    return 0;
bad_number:
    fprintf(stderr, "fake_provider: bad number %s\n", optarg);
    return -1;
}

/* Fills addr for host, which must be a loopback address; -1 if it is not. */
static int fake_loopback_addr(const char *host, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof *ss);
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        if ((ntohl(in4->sin_addr.s_addr) >> 24) != 127)
            return -1;
        in4->sin_family = AF_INET;
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return -1;
        in6->sin6_family = AF_INET6;
        *len = sizeof *in6;
        return 0;
    }
    return -1;
}

/* Writes "HOST:PORT\n" to path through a temporary file and rename, so a
 * reader never sees a partial address. */
static int fake_ready_write(const char *path, const char *addr)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    FILE *f = NULL;
    int rc = -1;

    if (tmp == NULL)
        goto out;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "w");
    if (f == NULL)
        goto out;
    fprintf(f, "%s\n", addr);
    if (fclose(f) != 0) {
        f = NULL;
        goto out_unlink;
    }
    f = NULL;
    if (rename(tmp, path) != 0)
        goto out_unlink;
    rc = 0;
    goto out;
out_unlink:
    unlink(tmp);
out:
    if (rc != 0)
        fprintf(stderr, "fake_provider: cannot write ready file %s: %s\n", path, strerror(errno));
    free(tmp);
    return rc;
}

static void fake_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            perror("fake_provider: setrlimit(RLIMIT_NOFILE)");
    }
}

static int fake_start(struct fake_server *srv)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    struct epoll_event ev;
    sigset_t set;
    char host[INET6_ADDRSTRLEN], addr[INET6_ADDRSTRLEN + 16];
    unsigned port;
    int one = 1;

    srv->rng = srv->opt.seed;
    if (fake_loopback_addr(srv->opt.host, &ss, &sl) != 0) {
        fprintf(stderr, "fake_provider: refusing --host %s: only loopback (127.0.0.0/8, ::1)\n",
                srv->opt.host);
        return -1;
    }
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)srv->opt.port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)srv->opt.port);

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        goto fail;
    srv->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    srv->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (srv->sfd < 0 || srv->epfd < 0 || srv->lfd < 0)
        goto fail;
    setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(srv->lfd, (struct sockaddr *)&ss, sl) != 0 || listen(srv->lfd, 65535) != 0)
        goto fail;
    sl = sizeof ss;
    if (getsockname(srv->lfd, (struct sockaddr *)&ss, &sl) != 0)
        goto fail;
    ev.events = EPOLLIN;
    ev.data.ptr = &fake_tag_listen;
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->lfd, &ev) != 0)
        goto fail;
    ev.data.ptr = &fake_tag_signal;
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->sfd, &ev) != 0)
        goto fail;
    if (srv->opt.log_path != NULL) {
        srv->log = fopen(srv->opt.log_path, "a");
        if (srv->log == NULL) {
            fprintf(stderr, "fake_provider: cannot open log %s: %s\n", srv->opt.log_path,
                    strerror(errno));
            return -1;
        }
        setvbuf(srv->log, NULL, _IOFBF, (size_t)1 << 20);
    }

    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host);
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(addr, sizeof addr, "%s:%u", host, port);
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof host);
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(addr, sizeof addr, "[%s]:%u", host, port);
    }
    printf("listening=%s\n", addr);
    fflush(stdout);
    if (srv->opt.ready_file != NULL && fake_ready_write(srv->opt.ready_file, addr) != 0)
        return -1;
    return 0;
fail:
    perror("fake_provider: start");
    return -1;
}

static void fake_release(struct fake_server *srv)
{
    while (srv->conns != NULL)
        fake_conn_close(srv, srv->conns); /* logs replies never sent */
    if (srv->log != NULL) {
        fflush(srv->log);
        fclose(srv->log);
        srv->log = NULL;
    }
    if (srv->lfd >= 0)
        close(srv->lfd);
    if (srv->sfd >= 0)
        close(srv->sfd);
    if (srv->epfd >= 0)
        close(srv->epfd);
    if (srv->spare_fd >= 0)
        close(srv->spare_fd);
    free(srv->heap);
    fake_rules_free(srv->opt.rules, srv->opt.nrules, srv->opt.limits, srv->opt.nlimits);
    fake_buckets_clear(srv);
    free(srv->slots);
    json_decref(srv->models);
}

int main(int argc, char **argv)
{
    static struct fake_server srv; /* large: scratch buffers and status counters */
    int rc = 1;

    srv.epfd = srv.lfd = srv.sfd = srv.spare_fd = -1;
    srv.models = json_object();
    if (srv.models == NULL)
        goto out;
    if (fake_options_parse(&srv.opt, argc, argv) != 0) {
        rc = 2;
        goto out;
    }
    fake_raise_nofile();
    if (fake_start(&srv) != 0)
        goto out;
    fake_run(&srv);
    rc = srv.stop ? 0 : 1;
out:
    fake_release(&srv);
    return rc;
}

/*
 * fake_provider.c - a fake LLM provider for switchyard's end-to-end tests,
 * demo and benchmarks.
 *
 * It speaks, over real HTTP/1.1 on a loopback address, each provider's
 * public wire format, with token usage computed by a fixed rule (so tests
 * can predict exact costs), a configurable latency, and injected faults:
 *   POST /v1/chat/completions                        OpenAI (Bearer)
 *   POST /openai/deployments/{d}/chat/completions    Azure: ?api-version= required
 *        (400 MissingApiVersionParameter), api-key or Bearer; model = {d}
 *   POST /openai/v1/chat/completions                 Azure v1: model in the body
 *   POST /v1/messages                                Anthropic (x-api-key, anthropic-version)
 *   POST /v1beta/models/{model}:generateContent      Gemini (x-goog-api-key or ?key=; else 403)
 *   POST /model/{modelId}/converse                   Bedrock Converse, modelId %-decoded;
 *        a Bearer API key, or SigV4's SHAPE (Credential=AKID/YYYYMMDD/REGION/bedrock/
 *        aws4_request, sorted SignedHeaders with host and x-amz-date, each present,
 *        x-amz-date of that day, 64-hex Signature; never the signature itself); else 403
 * Errors come in each provider's shape: OpenAI {"error":{message,type,param,
 * code}} (Azure's own: {"error":{code,message}}), Anthropic {"type":"error",
 * ...}, Gemini {"error":{code,message,status}} (429: details RetryInfo
 * retryDelay, no Retry-After), Bedrock {"message"} + x-amzn-ErrorType.
 *
 * Each format checks what its provider checks, 400 in its shape otherwise:
 * fields the provider does not have (e.g. "seed" to Anthropic, "topK" in
 * Bedrock's inferenceConfig, "additionalProperties" in Gemini's
 * responseSchema), sampling ranges (temperature 0..2 OpenAI/Gemini, 0..1
 * Anthropic/Bedrock; top_p 0..1; stop <= 4 OpenAI, <= 5 Gemini), tool
 * declarations and tool_choice, tool calls answered by tool results in the
 * next turn (and no result without its call), images (base64 that decodes,
 * a known media type; OpenAI/Anthropic also take http(s) URLs, Gemini only
 * inline data (png jpeg webp heic heif), Bedrock bytes), reasoning (OpenAI
 * reasoning_effort, and then no max_tokens; Anthropic thinking
 * budget_tokens >= 1024 and < max_tokens, temperature 1, no forced tool;
 * Gemini thinkingConfig; Bedrock thinking in additionalModelRequestFields
 * for "anthropic." models only); OpenAI json_object needs the word "json"
 * in the messages.
 *
 * Usage: input = sum over messages of ceil(text bytes / 4) + 3, plus
 * ceil(system bytes / 4), plus FAKE_IMAGE_TOKENS (85) per image part;
 * output = --output-tokens or #out=N, capped by the request's max tokens
 * (at the cap: length / max_tokens / MAX_TOKENS). #cached=N, #cache_write=N,
 * #reasoning=N in each provider's own accounting: OpenAI cached inside
 * prompt_tokens, reasoning inside completion_tokens; Anthropic cache apart
 * from input_tokens (thinking inside output_tokens when enabled), and
 * #cache_write_1h=N one-hour writes (Anthropic only: in
 * cache_creation_input_tokens with the five-minute ones, split in
 * usage.cache_creation); Gemini
 * promptTokenCount INCLUDES cachedContentTokenCount, thoughtsTokenCount
 * apart from candidatesTokenCount, total = all; Bedrock inputTokens
 * EXCLUDES cacheRead/WriteInputTokens, total = all.
 *
 * Tools: #tool=NAME in the last user text (unless a tool result ends the
 * conversation), or a tool choice forcing a tool (named; required/any: the
 * first), answers one call whose arguments are a minimal instance of the
 * tool's schema (required properties: "" 0 false [] {} null, or the first
 * enum / const, minimum, minLength, minItems; $ref and anyOf followed),
 * output tokens = ceil(JSON bytes / 4): OpenAI tool_calls + finish
 * tool_calls, Anthropic tool_use, Gemini functionCall (finishReason STOP),
 * Bedrock toolUse (stopReason tool_use). Structured output (OpenAI
 * json_schema / json_object, Gemini responseMimeType application/json with
 * responseSchema / responseJsonSchema): the text is that minimal instance
 * ({} without a schema), cut to 4 bytes a token at the cap.
 *
 * Faults (--fault, #fault=) and limits (--limit) apply to every route. A
 * status fault with echo_key:N answers a long error message
 * (N + key + 120 bytes, one word around the key, like a real provider
 * quoting a value) that holds, at byte N, the API key the request carried
 * (Bearer, api-key, x-api-key, x-goog-api-key, ?key=, SigV4's AKID): the
 * tests' way to check that no piece of a key a provider echoes ever leaves
 * the worker. `content_filter` refuses as the provider does: Azure 400
 * {"error":{"code":"content_filter",...,"innererror":{"code":
 * "ResponsibleAIPolicyViolation","content_filter_result":{...}}}}, OpenAI
 * 200 finish_reason content_filter (content null), Anthropic 200
 * stop_reason refusal (no content), Gemini 200 promptFeedback.blockReason
 * SAFETY (no candidates), Bedrock 200 stopReason content_filtered. One
 * thread, one epoll loop and a binary min-heap of due times: it serves tens
 * of thousands of requests a second and ten thousand open keep-alive
 * connections.
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
 * retry-after-ms (exact); Azure {"error":{"code":"429","message":"Requests
 * to the ChatCompletions_Create Operation ... Please retry after N
 * seconds..."}} with both; Anthropic {"type":"error","error":{"type":
 * "rate_limit_error","message":...}} with retry-after; Gemini 429
 * RESOURCE_EXHAUSTED with details QuotaFailure, Help and RetryInfo
 * retryDelay ("7s", "1.500s") and no header; Bedrock 429 x-amzn-ErrorType
 * ThrottlingException and nothing else. With headers=1 every reply to an
 * admitted or refused call of a limited model carries the provider's
 * headers: OpenAI x-ratelimit-{limit,remaining,reset}-{requests,tokens}
 * (reset: a Go duration until the bucket is full again, "0s", "17ms",
 * "1.5s", "6m0s"); Azure x-ratelimit-remaining-{requests,tokens} only;
 * Anthropic anthropic-ratelimit-{requests,tokens,input-tokens,
 * output-tokens}-{limit,remaining,reset} (reset: RFC 3339 UTC when full
 * again; the three token families show the one tpm bucket); Gemini and
 * Bedrock none. Only the limits a rule sets get headers. headers=0 sends
 * none of them; 429s keep retry-after (and retry-after-ms).
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
 * of provider calls carry "api" (openai|azure|anthropic|gemini|bedrock),
 * "request" (the parsed JSON body, as "body"), "model" (once the request is
 * valid; Bedrock's decoded), and a refused call "rate_limited": true with
 * status 429.
 *
 * It must never: listen on anything but loopback, connect anywhere, block
 * (no sleep, no blocking socket call: latency is a timer), or let a client
 * grow a buffer past its cap (request head 64 KiB, body 8 MiB, 64
 * pipelined requests awaiting their replies, 100,000 rate-limit buckets
 * after which all start afresh, 1,024 models counted by name in /stats,
 * 128 tools a request, schemas followed 32 levels deep).
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
#include <stdarg.h>
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
#define FAKE_IMAGE_TOKENS 85              /* input tokens of one image, whatever its size */
#define FAKE_TOOLS_MAX 128                /* tools of one request (OpenAI's limit) */
#define FAKE_SCHEMA_DEPTH 32              /* nesting of a schema the fake follows */
#define FAKE_NAME_MAX 64                  /* a tool name in #tool= */

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
    FAKE_FAULT_CONTENT_FILTER,
};

struct fake_fault {
    enum fake_fault_kind kind;
    int status;       /* FAKE_FAULT_STATUS: 400..599 */
    long retry_after; /* seconds; -1: default (1 for 429, else no header) */
    long echo_key;    /* FAKE_FAULT_STATUS: the request's key at this byte of
                         the error message; -1: no echo */
    long every;       /* --fault rules only: the fault hits the Nth, 2Nth, ...
                         call the rule matches, the others pass (every:2 = half
                         the calls, interleaved as a flaky provider's are); 0: each */
};

/* --fault MODEL:KIND[@COUNT] */
struct fake_rule {
    char *model; /* "*" matches every model */
    struct fake_fault fault;
    long remaining;     /* requests still to fault; -1: all */
    unsigned long seen; /* calls the rule matched (every:N counts them) */
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
    FAKE_ROUTE_AZURE_V1,
    FAKE_ROUTE_ANTHROPIC,
    FAKE_ROUTE_GEMINI,
    FAKE_ROUTE_BEDROCK,
    FAKE_ROUTE_HEALTHZ,
    FAKE_ROUTE_STATS,
    FAKE_ROUTE_CONTROL,
    FAKE_ROUTE_OTHER,
    FAKE_ROUTE_COUNT,
};

static const char *const fake_route_names[FAKE_ROUTE_COUNT] = {
    "/v1/chat/completions",
    "/openai/deployments/{deployment}/chat/completions",
    "/openai/v1/chat/completions",
    "/v1/messages",
    "/v1beta/models/{model}:generateContent",
    "/model/{modelId}/converse",
    "/healthz",
    "/stats",
    "/control",
    "other",
};

enum fake_api {
    FAKE_API_OPENAI,
    FAKE_API_ANTHROPIC,
    FAKE_API_AZURE,
    FAKE_API_GEMINI,
    FAKE_API_BEDROCK
};

static const char *const fake_api_names[] = {"openai", "anthropic", "azure", "gemini", "bedrock"};

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
    const char *path, *query,
        *deployment; /* deployment: Azure's, Gemini's model, Bedrock's modelId */
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
    const char *id_header;  /* header carrying a request id, or NULL */
    const char *error_type; /* Bedrock's x-amzn-ErrorType, or NULL */
    long retry_after;       /* seconds for Retry-After; -1: none */
    long latency;           /* ms from #latency=; -1: the configured latency */
    bool provider;          /* a provider endpoint: latency applies */
    struct fake_fault fault;
    uint64_t delay_ms;
    bool rate_limited;          /* a 429 of --limit: no latency */
    json_t *mstats;             /* the model's counters; borrowed */
    char extra[FAKE_EXTRA_MAX]; /* more header lines, each ending in CRLF */
    size_t extra_len;
};

struct fake_directives {
    long out, cached, cache_write, cache_write_1h, reasoning, latency; /* -1: absent */
    bool has_fault;
    struct fake_fault fault;
    char tool[FAKE_NAME_MAX + 1]; /* #tool=NAME; "" when absent */
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
 * malformed | slow | stall, each optionally with ,every:N (a --fault rule's) */
static int fake_fault_parse(const char *s, size_t n, struct fake_fault *f)
{
    struct fake_fault r = {FAKE_FAULT_NONE, 0, -1, -1, 0};
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
        else if (fake_eq(item, len, "content_filter"))
            kind = FAKE_FAULT_CONTENT_FILTER;
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
        } else if (fake_prefix(item, len, "every:")) {
            if (r.every > 0 || fake_parse_num(item + 6, len - 6, 1000000, &v) != 0 || v < 2)
                return -1;
            r.every = (long)v;
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
            n += snprintf(buf + n, cap - (size_t)n, ",echo_key:%ld", f->echo_key);
        if (f->every > 0 && n > 0 && (size_t)n < cap)
            snprintf(buf + n, cap - (size_t)n, ",every:%ld", f->every);
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
    case FAKE_FAULT_CONTENT_FILTER:
        return "content_filter";
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
 * rule for its model that has requests left (and that rule uses one up;
 * a rule with every:N answers most calls with no fault, and only the
 * faulted ones use up its count). */
static struct fake_fault fake_fault_pick(struct fake_server *srv, const char *model,
                                         const struct fake_directives *d)
{
    struct fake_fault none = {FAKE_FAULT_NONE, 0, -1, -1, 0};

    if (d->has_fault)
        return d->fault;
    for (size_t i = 0; i < srv->opt.nrules; i++) {
        struct fake_rule *rule = &srv->opt.rules[i];

        if (rule->remaining == 0)
            continue;
        if (strcmp(rule->model, "*") != 0 && strcmp(rule->model, model) != 0)
            continue;
        if (rule->fault.every > 0 && ++rule->seen % (unsigned long)rule->fault.every != 0)
            return none;
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
    d->out = d->cached = d->cache_write = d->cache_write_1h = d->reasoning = d->latency = -1;
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
        /* a name: letters and '_', then digits too (cache_write_1h) */
        while (j < n &&
               ((s[j] >= 'a' && s[j] <= 'z') || s[j] == '_' || (j > name && fake_is_digit(s[j]))))
            j++;
        name_len = j - name;
        if (name_len == 0 || j >= n || s[j] != '=')
            continue;
        v = ++j;
        if (fake_eq(s + name, name_len, "tool")) {
            while (j < n && (fake_is_fault_char(s[j]) || s[j] == '-') && s[j] != ':' && s[j] != ',')
                j++;
            if (j > v && j - v <= FAKE_NAME_MAX) {
                memcpy(d->tool, s + v, j - v);
                d->tool[j - v] = '\0';
            }
            continue;
        }
        if (fake_eq(s + name, name_len, "fault")) {
            struct fake_fault f;

            while (j < n && fake_is_fault_char(s[j]))
                j++;
            if (fake_fault_parse(s + v, j - v, &f) == 0 && f.every == 0) {
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
        else if (fake_eq(s + name, name_len, "cache_write_1h"))
            d->cache_write_1h = num;
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

/* Scans the directives in a message's content. typed: OpenAI's and
 * Anthropic's content, a string or {type: text, text} parts; otherwise
 * Gemini's parts and Bedrock's blocks, where any string text counts. */
static void fake_content_directives(json_t *content, bool typed, struct fake_directives *d)
{
    json_t *part;
    size_t i;

    if (typed && json_is_string(content))
        fake_directives_scan(json_string_value(content), json_string_length(content), d);
    json_array_foreach(json_is_array(content) ? content : NULL, i, part)
    {
        json_t *t = json_object_get(part, "text");

        if (typed ? fake_is_text_part(part) : json_is_string(t))
            fake_directives_scan(json_string_value(t), json_string_length(t), d);
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

/* google.rpc.Code name of an HTTP status, as Google's APIs pair them */
static const char *fake_gemini_status(int status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 409:
        return "ABORTED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 499:
        return "CANCELLED";
    case 501:
        return "NOT_IMPLEMENTED";
    case 503:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return status < 500 ? "FAILED_PRECONDITION" : "INTERNAL";
    }
}

/* x-amzn-ErrorType of a Bedrock runtime status */
static const char *fake_bedrock_error_type(int status)
{
    switch (status) {
    case 403:
        return "AccessDeniedException";
    case 404:
        return "ResourceNotFoundException";
    case 408:
        return "ModelTimeoutException";
    case 424:
        return "ModelErrorException";
    case 429:
        return "ThrottlingException";
    case 503:
        return "ServiceUnavailableException";
    default:
        return status < 500 ? "ValidationException" : "InternalServerException";
    }
}

/* Sets an error reply in the provider's own shape.
 * OpenAI (and Azure's validation errors): {"error":{"message","type","param","code"}}
 * Anthropic: {"type":"error","error":{"type","message"},"request_id"}
 * Gemini: {"error":{"code": N,"message","status"}}
 * Bedrock: {"message"} with x-amzn-ErrorType (code, when given, names it) */
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
    if (api == FAKE_API_GEMINI) {
        o->json = json_pack("{s:{s:i, s:s, s:s}}", "error", "code", status, "message", message,
                            "status", fake_gemini_status(status));
        return;
    }
    if (api == FAKE_API_BEDROCK) {
        o->json = json_pack("{s:s}", "message", message);
        o->error_type = code != NULL ? code : fake_bedrock_error_type(status);
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

/* Azure's own errors (keys, api-version, quotas, faults): {"error":{"code","message"}}
 * with code a string ("401", "429", "MissingApiVersionParameter"). */
static void fake_fail_azure(struct fake_outcome *o, int status, const char *code,
                            const char *message)
{
    char num[16];

    if (code == NULL) {
        snprintf(num, sizeof num, "%d", status);
        code = num;
    }
    json_decref(o->json);
    o->status = status;
    o->json = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
}

/* A duration as protobuf's JSON mapping prints one: "7s", "1.500s". */
static void fake_proto_duration(char *buf, size_t cap, uint64_t ms)
{
    if (ms % 1000 == 0)
        snprintf(buf, cap, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, cap, "%" PRIu64 ".%03us", ms / 1000, (unsigned)(ms % 1000));
}

/* Appends Gemini's RetryInfo (and, for a quota, QuotaFailure) to a 429's
 * error.details: Gemini sends no Retry-After header, the delay is here. */
static void fake_gemini_retry(struct fake_outcome *o, uint64_t ms, const char *model,
                              uint64_t limit, bool tokens)
{
    json_t *err = json_object_get(o->json, "error"), *details = json_array();
    char delay[48], value[24];

    if (err == NULL || details == NULL) {
        json_decref(details);
        return;
    }
    if (model != NULL) {
        snprintf(value, sizeof value, "%" PRIu64, limit);
        json_array_append_new(
            details,
            json_pack(
                "{s:s, s:[{s:s, s:s, s:{s:s, s:s}, s:s}]}", "@type",
                "type.googleapis.com/google.rpc.QuotaFailure", "violations", "quotaMetric",
                tokens ? "generativelanguage.googleapis.com/generate_content_input_token_count"
                       : "generativelanguage.googleapis.com/generate_content_requests",
                "quotaId",
                tokens ? "GenerateContentInputTokensPerModelPerMinute"
                       : "GenerateRequestsPerMinutePerProjectPerModel",
                "quotaDimensions", "location", "global", "model", model, "quotaValue", value));
        json_array_append_new(details,
                              json_pack("{s:s, s:[{s:s, s:s}]}", "@type",
                                        "type.googleapis.com/google.rpc.Help", "links",
                                        "description", "Learn more about Gemini API quotas", "url",
                                        "https://ai.google.dev/gemini-api/docs/rate-limits"));
    }
    fake_proto_duration(delay, sizeof delay, ms);
    json_array_append_new(details, json_pack("{s:s, s:s}", "@type",
                                             "type.googleapis.com/google.rpc.RetryInfo",
                                             "retryDelay", delay));
    json_object_set_new(err, "details", details);
}

static const char *fake_fault_message(enum fake_api api, int status)
{
    switch (status) {
    case 429:
        switch (api) {
        case FAKE_API_OPENAI:
            return "Rate limit reached for requests (injected by fake_provider). "
                   "Please try again in 1s.";
        case FAKE_API_GEMINI:
            return "Resource has been exhausted (e.g. check quota). (injected by fake_provider)";
        case FAKE_API_BEDROCK:
            return "Too many requests, please wait before trying again. (injected by "
                   "fake_provider)";
        default:
            return "Number of requests has exceeded your rate limit "
                   "(injected by fake_provider).";
        }
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

/* The value of query parameter name (not decoded), or NULL. */
static const char *fake_query_get(const struct fake_request *req, const char *name, size_t *len)
{
    size_t n = strlen(name);
    const char *q = req->query;
    size_t left = req->query_len;

    while (q != NULL && left > 0) {
        const char *amp = memchr(q, '&', left);
        size_t l = amp != NULL ? (size_t)(amp - q) : left;

        if (l > n && memcmp(q, name, n) == 0 && q[n] == '=') {
            *len = l - n - 1;
            return q + n + 1;
        }
        if (amp == NULL)
            break;
        left -= l + 1;
        q = amp + 1;
    }
    return NULL;
}

static bool fake_query_has(const struct fake_request *req, const char *name)
{
    size_t len;

    return fake_query_get(req, name, &len) != NULL;
}

/* The key a request carries: Bearer token, api-key, x-api-key,
 * x-goog-api-key, ?key=, or a SigV4 access key id. */
static const char *fake_request_key(const struct fake_request *req, size_t *len)
{
    const struct fake_head *h = req->head;
    const struct fake_header *v = fake_header_get(h, "authorization");
    const char *q;

    if (v != NULL && v->value_len > 7 && strncasecmp(v->value, "bearer ", 7) == 0) {
        *len = v->value_len - 7;
        return v->value + 7;
    }
    if (v != NULL && fake_prefix(v->value, v->value_len, "AWS4-HMAC-SHA256 Credential=")) {
        const char *akid = v->value + 28, *end = v->value + v->value_len;
        const char *slash = memchr(akid, '/', (size_t)(end - akid));

        *len = slash != NULL ? (size_t)(slash - akid) : (size_t)(end - akid);
        return akid;
    }
    v = fake_header_get(h, "x-api-key");
    if (v == NULL)
        v = fake_header_get(h, "api-key");
    if (v == NULL)
        v = fake_header_get(h, "x-goog-api-key");
    if (v != NULL) {
        *len = v->value_len;
        return v->value;
    }
    q = fake_query_get(req, "key", len);
    if (q != NULL)
        return q;
    *len = 6;
    return "(none)";
}

/* echo_key:N: filler words up to byte N, the key glued to them (a long
 * word, as when a provider quotes a value), then more words. NULL on
 * allocation failure. */
static char *fake_echo_message(const struct fake_request *req, long at)
{
    static const char filler[] =
        "Incorrect API key provided (injected by fake_provider): the value received was "
        "quoted back as providers do when a key is malformed or revoked; check the key in "
        "your configuration, rotate it if it was exposed, and try again with a valid key. ";
    static const char tail[] =
        "=received. You can find your API keys in your account settings (injected by "
        "fake_provider).";
    size_t klen, n = 0, at_n = (size_t)at;
    const char *key = fake_request_key(req, &klen);
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

/* Applies a status fault: the error reply in the format's shape. Retry-After
 * for 429 (1 s unless retry_after says otherwise) or whenever retry_after is
 * given; Gemini says it in RetryInfo instead, Bedrock only when given. */
static void fake_fail_fault(struct fake_outcome *o, enum fake_api api, const struct fake_fault *f,
                            const struct fake_request *req)
{
    char *echo = f->echo_key >= 0 ? fake_echo_message(req, f->echo_key) : NULL;
    const char *msg = echo != NULL ? echo : fake_fault_message(api, f->status);
    long retry = f->retry_after >= 0 ? f->retry_after : (f->status == 429 ? 1 : -1);

    if (api == FAKE_API_AZURE)
        fake_fail_azure(o, f->status, NULL, msg);
    else
        fake_fail(o, api, f->status, msg, NULL, NULL, req->seq);
    free(echo);
    if (api == FAKE_API_GEMINI) {
        if (f->status == 429)
            fake_gemini_retry(o, (uint64_t)retry * 1000, NULL, 0, false);
        return;
    }
    if (api == FAKE_API_BEDROCK && f->retry_after < 0)
        return;
    o->retry_after = retry;
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
 * x-ratelimit-{limit,remaining,reset}-WHAT, Azure only
 * x-ratelimit-remaining-WHAT, Anthropic
 * anthropic-ratelimit-WHAT-{limit,remaining,reset}; Gemini and Bedrock
 * send none. */
static void fake_meter_headers(struct fake_outcome *o, enum fake_api api, const char *what,
                               const struct fake_meter *m, uint64_t limit, bool fixed, uint64_t now)
{
    char name[64], value[64];
    uint64_t reset = fake_meter_reset_ms(m, limit, fixed, now);

    if (api == FAKE_API_OPENAI || api == FAKE_API_AZURE) {
        if (api == FAKE_API_OPENAI) {
            snprintf(name, sizeof name, "x-ratelimit-limit-%s", what);
            fake_extra_num(o, name, limit);
        }
        snprintf(name, sizeof name, "x-ratelimit-remaining-%s", what);
        fake_extra_num(o, name, fake_meter_left(m, limit, fixed));
        if (api == FAKE_API_OPENAI) {
            snprintf(name, sizeof name, "x-ratelimit-reset-%s", what);
            fake_go_duration(value, sizeof value, reset);
            fake_extra_add(o, name, value);
        }
        return;
    }
    if (api != FAKE_API_ANTHROPIC)
        return;
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

/* The 429 of a limit, in the provider's shape: Retry-After (whole seconds,
 * rounded up, at least 1) for OpenAI, Azure and Anthropic, retry-after-ms
 * too for OpenAI and Azure; Gemini's delay is in the body's RetryInfo;
 * Bedrock says nothing of when. */
static void fake_limit_refuse(struct fake_outcome *o, enum fake_api api, const char *model,
                              bool tokens, uint64_t limit, uint64_t used, uint64_t cost,
                              uint64_t wait_ms, uint64_t seq)
{
    char wait[64], msg[768];
    const char *what = tokens ? "tokens" : "requests";
    long secs = wait_ms == 0 ? 1 : (long)((wait_ms + 999) / 1000);

    fake_go_duration(wait, sizeof wait, wait_ms);
    o->rate_limited = true;
    switch (api) {
    case FAKE_API_OPENAI:
        if (cost > limit)
            snprintf(msg, sizeof msg,
                     "Request too large for %.200s in organization org-fake on %s per min (%s): "
                     "Limit %" PRIu64 ", Requested %" PRIu64
                     ". The input or output tokens must be reduced in order to run successfully. "
                     "Visit https://platform.openai.com/account/rate-limits to learn more.",
                     model, what, tokens ? "TPM" : "RPM", limit, cost);
        else
            snprintf(msg, sizeof msg,
                     "Rate limit reached for %.200s in organization org-fake on %s per min (%s): "
                     "Limit %" PRIu64 ", Used %" PRIu64 ", Requested %" PRIu64
                     ". Please try again in %s. Visit "
                     "https://platform.openai.com/account/rate-limits to learn more.",
                     model, what, tokens ? "TPM" : "RPM", limit, used, cost, wait);
        json_decref(o->json);
        o->json = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg, "type", what,
                            "param", "code", "rate_limit_exceeded");
        o->status = 429;
        fake_extra_num(o, "retry-after-ms", wait_ms);
        break;
    case FAKE_API_AZURE:
        snprintf(
            msg, sizeof msg,
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
            "2024-10-21 have exceeded %s rate limit of your current OpenAI S0 pricing tier. "
            "Please retry after %ld second%s. Please go here: https://aka.ms/oai/quotaincrease "
            "if you would like to further increase the default rate limit.",
            tokens ? "token" : "call", secs, secs == 1 ? "" : "s");
        fake_fail_azure(o, 429, NULL, msg);
        fake_extra_num(o, "retry-after-ms", wait_ms);
        break;
    case FAKE_API_GEMINI:
        snprintf(msg, sizeof msg,
                 "You exceeded your current quota, please check your plan and billing details. "
                 "For more information on this error, head to: "
                 "https://ai.google.dev/gemini-api/docs/rate-limits. Please retry in %ss.",
                 wait);
        fake_fail(o, api, 429, msg, NULL, NULL, seq);
        fake_gemini_retry(o, wait_ms, model, limit, tokens);
        return;
    case FAKE_API_BEDROCK:
        fake_fail(o, api, 429, "Too many requests, please wait before trying again.", NULL, NULL,
                  seq);
        return;
    case FAKE_API_ANTHROPIC:
        snprintf(msg, sizeof msg,
                 "This request would exceed the rate limit for your organization (org-fake) of "
                 "%" PRIu64 " %s per minute. For details, refer to: "
                 "https://docs.claude.com/en/api/rate-limits. You can see the response headers "
                 "for current usage. Please reduce the prompt length or the maximum tokens "
                 "requested, or try again later.",
                 limit, tokens ? "tokens" : "requests");
        fake_fail(o, api, 429, msg, NULL, NULL, seq);
        break;
    }
    o->retry_after = secs;
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
    key = fake_request_key(req, &key_len);
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

/* A max output tokens value: absent (NULL) -> *cap stays; an integer of at
 * least min -> *cap; -1 for anything else. */
static int fake_cap_take(json_t *v, json_int_t min, uint64_t *cap, bool *seen)
{
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return -1;
    *cap = (uint64_t)json_integer_value(v);
    *seen = true;
    return 0;
}

/* The max output tokens field: absent/null -> *cap stays; -1 if malformed. */
static int fake_cap_get(json_t *body, const char *field, uint64_t *cap, bool *seen)
{
    json_t *v = json_object_get(body, field);

    return fake_cap_take(json_is_null(v) ? NULL : v, 0, cap, seen);
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

/* ---- request features: what every format asks for in its own shape ----
 *
 * Each format's parser checks a request as its provider does (answering
 * 400 in the provider's shape) and fills one struct fake_call; one core
 * then admits it (limits), picks its fault and computes the answer, which
 * the format renders. */

struct fake_tool {
    const char *name; /* borrowed from the request body */
    json_t *schema;   /* the parameters' JSON Schema; borrowed, NULL: none */
};

struct fake_call {
    enum fake_api api;
    const char *model; /* borrowed */
    uint64_t input;    /* input estimate: text tokens + FAKE_IMAGE_TOKENS per image */
    uint64_t images;
    uint64_t cap; /* output cap; UINT64_MAX: none */
    bool capped;
    struct fake_directives d;
    bool have_directives;
    struct fake_tool tools[FAKE_TOOLS_MAX];
    size_t ntools;
    long forced;     /* index of the tool the tool choice forces; -1: none */
    bool tools_off;  /* tool choice "none" */
    bool after_tool; /* the last turn is a tool result: #tool= does not apply */
    bool json_reply; /* structured output: the text is a minimal instance of schema */
    json_t *schema;  /* borrowed; NULL with json_reply: {} */
    bool thinking;   /* Anthropic thinking: a thinking block, reasoning inside output */
};

/* What the model answers. */
struct fake_answer {
    const struct fake_tool *tool; /* the tool called, or NULL */
    json_t *args;                 /* its arguments; owned */
    char *text;                   /* owned; NULL with a tool call */
    size_t text_len;
    uint64_t out; /* output tokens, reasoning apart */
    bool length;  /* stopped at the cap */
    uint64_t cached, cache_write, cache_write_1h, reasoning;
};

static void fake_call_init(struct fake_call *call, enum fake_api api)
{
    memset(call, 0, sizeof *call);
    call->api = api;
    call->cap = UINT64_MAX;
    call->forced = -1;
    fake_directives_init(&call->d);
}

/* Fails the request with 400 in the format's shape; always -1. */
__attribute__((format(printf, 6, 7))) static int fake_reject(struct fake_outcome *o,
                                                             enum fake_api api, uint64_t seq,
                                                             const char *param, const char *code,
                                                             const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fake_fail(o, api, 400, msg, param, code, seq);
    return -1;
}

/* RFC 4648 base64 with padding, at least one quantum */
static bool fake_base64_ok(const char *s, size_t n)
{
    size_t pad = 0;

    if (n == 0 || n % 4 != 0)
        return false;
    while (pad < 2 && s[n - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++) {
        char ch = s[i];

        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || fake_is_digit(ch) ||
              ch == '+' || ch == '/'))
            return false;
    }
    return true;
}

static bool fake_in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; s != NULL && list[i] != NULL; i++) {
        if (strcmp(s, list[i]) == 0)
            return true;
    }
    return false;
}

static const char *const fake_image_types[] = {"image/png", "image/jpeg", "image/gif", "image/webp",
                                               NULL};

/* The first key of obj not in list, or NULL. */
static const char *fake_unknown_key(json_t *obj, const char *const *list)
{
    const char *k;
    json_t *v;

    json_object_foreach(obj, k, v)
    {
        if (!fake_in_list(k, list))
            return k;
    }
    return NULL;
}

/* 0: a number within [lo, hi] or absent; -1: not a number; 1: out of range */
static int fake_range(json_t *v, double lo, double hi)
{
    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return -1;
    return json_number_value(v) < lo || json_number_value(v) > hi ? 1 : 0;
}

static bool fake_tool_name_ok(const char *s, size_t max)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || fake_is_digit(s[i]) ||
              s[i] == '_' || s[i] == '-'))
            return false;
    }
    return true;
}

static long fake_tool_find(const struct fake_call *call, const char *name)
{
    for (size_t i = 0; name != NULL && i < call->ntools; i++) {
        if (strcmp(call->tools[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

/* Adds a tool; -1 when the table is full or the name is taken. */
static int fake_tool_add(struct fake_call *call, const char *name, json_t *schema)
{
    if (call->ntools == FAKE_TOOLS_MAX || fake_tool_find(call, name) >= 0)
        return -1;
    call->tools[call->ntools].name = name;
    call->tools[call->ntools].schema = schema;
    call->ntools++;
    return 0;
}

/* A minimal instance of a JSON Schema (or of Gemini's OpenAPI subset, whose
 * types are upper-case): const, else the first enum value, else by type the
 * required properties, minItems items, a string of minLength, minimum, false
 * or null. $ref into the root ("#/$defs/X") and the first of anyOf / oneOf /
 * allOf are followed. Return value: new reference (NULL on allocation
 * failure). */
static json_t *fake_schema_min(json_t *root, json_t *s, int depth)
{
    json_t *v, *t;
    const char *type = NULL, *ref;
    static const char *const combos[] = {"anyOf", "oneOf", "allOf", "any_of"};

    if (depth > FAKE_SCHEMA_DEPTH || !json_is_object(s))
        return json_object();
    if ((v = json_object_get(s, "const")) != NULL)
        return json_deep_copy(v);
    v = json_object_get(s, "enum");
    if (json_array_size(v) > 0)
        return json_deep_copy(json_array_get(v, 0));
    ref = json_string_value(json_object_get(s, "$ref"));
    if (ref != NULL) {
        json_t *target = root;
        const char *p = ref + 1;

        if (ref[0] != '#')
            return json_object();
        while (target != NULL && *p == '/') {
            const char *e = strchr(p + 1, '/');
            size_t n = e != NULL ? (size_t)(e - p - 1) : strlen(p + 1);

            target = json_object_getn(target, p + 1, n);
            p += n + 1;
        }
        return fake_schema_min(root, target, depth + 1);
    }
    for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++) {
        v = json_object_get(s, combos[i]);
        if (json_array_size(v) > 0)
            return fake_schema_min(root, json_array_get(v, 0), depth + 1);
    }
    t = json_object_get(s, "type");
    if (json_is_array(t)) {
        size_t i;

        json_array_foreach(t, i, v)
        {
            type = json_string_value(v);
            if (type != NULL && strcasecmp(type, "null") != 0)
                break;
        }
    } else {
        type = json_string_value(t);
    }
    if (type == NULL)
        type = json_object_get(s, "items") != NULL ? "array" : "object";
    if (strcasecmp(type, "object") == 0) {
        json_t *o = json_object(), *props = json_object_get(s, "properties"), *name;
        size_t i;

        json_array_foreach(json_object_get(s, "required"), i, name)
        {
            const char *k = json_string_value(name);

            if (k != NULL && o != NULL)
                json_object_set_new(o, k,
                                    fake_schema_min(root, json_object_get(props, k), depth + 1));
        }
        return o;
    }
    if (strcasecmp(type, "array") == 0) {
        json_t *a = json_array(), *n = json_object_get(s, "minItems");
        json_int_t count = json_is_integer(n) ? json_integer_value(n) : 0;

        for (json_int_t i = 0; a != NULL && i < count && i < 16; i++)
            json_array_append_new(a, fake_schema_min(root, json_object_get(s, "items"), depth + 1));
        return a;
    }
    if (strcasecmp(type, "string") == 0) {
        json_t *n = json_object_get(s, "minLength");
        json_int_t len = json_is_integer(n) ? json_integer_value(n) : 0;
        char buf[65];

        if (len < 0)
            len = 0;
        if (len > 64)
            len = 64;
        memset(buf, 'a', (size_t)len);
        return json_stringn(buf, (size_t)len);
    }
    if (strcasecmp(type, "integer") == 0 || strcasecmp(type, "number") == 0) {
        json_t *m = json_object_get(s, "minimum");

        if (json_is_number(m) && json_number_value(m) > 0) {
            double d = json_number_value(m);
            json_int_t i = d < 1e15 ? (json_int_t)d : (json_int_t)1e15;

            if ((double)i < d)
                i++;
            return json_integer(i);
        }
        return json_integer(0);
    }
    if (strcasecmp(type, "boolean") == 0)
        return json_false();
    if (strcasecmp(type, "null") == 0)
        return json_null();
    return json_object();
}

/* ---- the core: admission, fault, answer ---- */

/* Cuts s[0..n) to at most max bytes on a UTF-8 boundary. */
static size_t fake_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* Output: a tool call when #tool=NAME names a declared tool (and no tool
 * result ends the conversation) or the tool choice forces one (its
 * arguments a minimal instance of its schema, the output tokens those of
 * their JSON); else for structured output a minimal instance of the schema
 * as compact JSON (cut at 4 bytes a token when the cap is reached); else
 * the fake words. -1 on allocation failure. */
static int fake_answer_make(struct fake_server *srv, const struct fake_request *req,
                            const struct fake_call *call, struct fake_answer *a)
{
    const struct fake_directives *d = &call->d;
    long idx = -1;
    char *dumped;
    size_t len;
    uint64_t n;

    memset(a, 0, sizeof *a);
    a->cached = fake_directive(d->cached);
    a->cache_write = fake_directive(d->cache_write);
    a->cache_write_1h = fake_directive(d->cache_write_1h);
    a->reasoning = fake_directive(d->reasoning);
    if (!call->tools_off) {
        if (d->tool[0] != '\0' && !call->after_tool)
            idx = fake_tool_find(call, d->tool);
        if (idx < 0)
            idx = call->forced;
    }
    if (idx >= 0) {
        const struct fake_tool *t = &call->tools[idx];

        a->tool = t;
        a->args = fake_schema_min(t->schema, t->schema, 0);
        if (a->args != NULL && !json_is_object(a->args)) {
            json_decref(a->args);
            a->args = json_object();
        }
        if (a->args == NULL)
            return -1;
        dumped = json_dumps(a->args, JSON_COMPACT);
        len = dumped != NULL ? strlen(dumped) : 0;
        free(dumped);
        n = d->out >= 0 ? (uint64_t)d->out : fake_tokens(len);
        a->out = n < call->cap ? n : call->cap;
        return 0;
    }
    if (call->json_reply) {
        json_t *inst =
            call->schema != NULL ? fake_schema_min(call->schema, call->schema, 0) : json_object();

        a->text = inst != NULL ? json_dumps(inst, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(inst);
        if (a->text == NULL)
            return -1;
        a->text_len = strlen(a->text);
        n = d->out >= 0 ? (uint64_t)d->out : fake_tokens(a->text_len);
        if (n >= call->cap) {
            a->out = call->cap;
            a->length = true;
            if (call->cap < SIZE_MAX / 4)
                a->text_len = fake_utf8_cut(a->text, a->text_len, (size_t)call->cap * 4);
            a->text[a->text_len] = '\0';
        } else {
            a->out = n;
        }
        return 0;
    }
    a->text = malloc(4096);
    if (a->text == NULL)
        return -1;
    a->out = fake_output_tokens(srv, d, call->cap);
    a->text_len = fake_reply_text(a->text, 4096, req->seq, a->out);
    a->length = a->out == call->cap;
    return 0;
}

static void fake_answer_release(struct fake_answer *a)
{
    json_decref(a->args);
    free(a->text);
}

/* Counts the model, admits the call under its limit, picks its fault and
 * applies a status fault. Returns 1 when the call goes on to an answer (or
 * a content_filter refusal, o->fault says), 0 when o is final. */
static int fake_admit(struct fake_server *srv, const struct fake_request *req,
                      struct fake_outcome *o, const struct fake_call *call)
{
    o->mstats = fake_model_count(srv, req, call->model);
    if (fake_limit_admit(srv, req, o, call->api, call->model,
                         call->input + (call->capped ? call->cap : 0)) != 0)
        return 0;
    o->latency = call->d.latency;
    o->fault = fake_fault_pick(srv, call->model, &call->d);
    if (o->fault.kind == FAKE_FAULT_STATUS) {
        fake_fail_fault(o, call->api, &o->fault, req);
        return 0;
    }
    if (o->fault.kind == FAKE_FAULT_TIMEOUT || o->fault.kind == FAKE_FAULT_HANG ||
        o->fault.kind == FAKE_FAULT_CLOSE)
        return 0;
    return 1;
}

/* Sets a built 200 reply, or a 500 when building failed. */
static void fake_succeed(struct fake_outcome *o, enum fake_api api, json_t *reply, uint64_t seq)
{
    if (reply == NULL) {
        fake_fail(o, api, 500, "fake_provider could not build its reply", NULL, NULL, seq);
        return;
    }
    json_decref(o->json);
    o->status = 200;
    o->json = reply;
}

typedef void fake_render_fn(struct fake_outcome *o, const struct fake_request *req,
                            const struct fake_call *call, const struct fake_answer *a);

/* The end of a valid call: admission and fault, then the answer rendered in
 * the format's shape (a content filter renders with no answer made). */
static void fake_respond(struct fake_server *srv, const struct fake_request *req,
                         struct fake_outcome *o, struct fake_call *call, fake_render_fn *render)
{
    struct fake_answer a;

    memset(&a, 0, sizeof a);
    if (fake_admit(srv, req, o, call) == 0)
        return;
    if (o->fault.kind != FAKE_FAULT_CONTENT_FILTER && fake_answer_make(srv, req, call, &a) != 0)
        fake_fail(o, call->api, 500, "fake_provider ran out of memory", NULL, NULL, req->seq);
    else
        render(o, req, call, &a);
    fake_answer_release(&a);
}

/* ---- OpenAI Chat Completions, and Azure OpenAI's two paths ---- */

/* CreateChatCompletionRequest's properties (OpenAI's OpenAPI description) */
static const char *const fake_openai_fields[] = {
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "messages",
    "metadata",
    "modalities",
    "model",
    "moderation",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "prompt_cache_options",
    "prompt_cache_retention",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
    "data_sources", /* Azure's "on your data"; accepted on Azure paths only */
    NULL};

/* An image_url part: an http(s) URL, or a data: URL of a known image type
 * whose payload is base64. */
static int fake_openai_image(struct fake_outcome *o, struct fake_call *call, json_t *part,
                             size_t mi, size_t pi, uint64_t seq)
{
    json_t *iu = json_object_get(part, "image_url");
    const char *url = json_string_value(json_object_get(iu, "url"));
    const char *detail = json_string_value(json_object_get(iu, "detail"));
    char param[96];

    snprintf(param, sizeof param, "messages.[%zu].content.[%zu].image_url", mi, pi);
    if (url == NULL)
        return fake_reject(o, call->api, seq, param, "invalid_type",
                           "Invalid type for 'messages[%zu].content[%zu].image_url.url': expected "
                           "a string.",
                           mi, pi);
    if (detail != NULL && strcmp(detail, "auto") != 0 && strcmp(detail, "low") != 0 &&
        strcmp(detail, "high") != 0)
        return fake_reject(o, call->api, seq, param, "invalid_value",
                           "Invalid value: '%.64s'. Supported values are: 'auto', 'low', and "
                           "'high'.",
                           detail);
    if (strncmp(url, "data:", 5) == 0) {
        const char *semi = strstr(url, ";base64,");
        char type[32];
        size_t tl = semi != NULL ? (size_t)(semi - url - 5) : 0;

        if (semi == NULL || tl >= sizeof type)
            return fake_reject(o, call->api, seq, param, "invalid_image_url",
                               "Invalid image URL: a data URL must be data:<media "
                               "type>;base64,<data>.");
        memcpy(type, url + 5, tl);
        type[tl] = '\0';
        if (!fake_in_list(type, fake_image_types))
            return fake_reject(o, call->api, seq, param, "invalid_image_format",
                               "You uploaded an unsupported image. Please make sure your image "
                               "is below 20 MB in size and is of one the following formats: "
                               "['png', 'jpeg', 'gif', 'webp'].");
        if (!fake_base64_ok(semi + 8, strlen(semi + 8)))
            return fake_reject(o, call->api, seq, param, "invalid_image_url",
                               "Invalid base64 image_url.");
    } else if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        return fake_reject(o, call->api, seq, param, "invalid_image_url",
                           "Invalid image URL: '%.64s'. Expected a base64-encoded data URL "
                           "with an image MIME type (e.g. 'data:image/png;base64,...') or an "
                           "http(s) URL.",
                           url);
    }
    call->images++;
    return 0;
}

/* Text bytes and images of one message's content; -1 when a part is bad. */
static int fake_openai_content(struct fake_outcome *o, struct fake_call *call, json_t *content,
                               size_t mi, const char *role, uint64_t seq, uint64_t *bytes)
{
    json_t *part;
    size_t i;

    if (content == NULL || json_is_null(content) || json_is_string(content)) {
        *bytes += json_string_length(content);
        return 0;
    }
    if (!json_is_array(content))
        return fake_reject(o, call->api, seq, "messages", "invalid_type",
                           "Invalid type for 'messages[%zu].content': expected one of a string "
                           "or array of objects.",
                           mi);
    json_array_foreach(content, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));

        if (type != NULL && strcmp(type, "text") == 0 &&
            json_is_string(json_object_get(part, "text"))) {
            *bytes += json_string_length(json_object_get(part, "text"));
        } else if (type != NULL && strcmp(type, "image_url") == 0 && strcmp(role, "user") == 0) {
            if (fake_openai_image(o, call, part, mi, i, seq) != 0)
                return -1;
        } else if (type != NULL &&
                   (strcmp(type, "refusal") == 0 ||
                    (strcmp(role, "user") == 0 &&
                     (strcmp(type, "input_audio") == 0 || strcmp(type, "file") == 0)))) {
            continue;
        } else {
            return fake_reject(o, call->api, seq, "messages", "invalid_value",
                               "Invalid value: '%.40s'. Supported values are: 'text', "
                               "'image_url', 'input_audio', 'refusal', and 'file'. (in "
                               "messages[%zu].content[%zu], role %.20s)",
                               type != NULL ? type : "(none)", mi, i, role);
        }
    }
    return 0;
}

/* Whether the tool message at messages[at+1..end) answers id */
static bool fake_openai_answered(json_t *messages, size_t from, size_t end, const char *id)
{
    for (size_t k = from; k < end; k++) {
        const char *tid =
            json_string_value(json_object_get(json_array_get(messages, k), "tool_call_id"));

        if (tid != NULL && strcmp(tid, id) == 0)
            return true;
    }
    return false;
}

/* An assistant turn's tool_calls must each be answered by the tool
 * messages that follow it (at..end). */
static int fake_openai_calls_closed(struct fake_outcome *o, const struct fake_call *call,
                                    json_t *messages, size_t at, size_t end, uint64_t seq)
{
    json_t *tc;
    size_t i;

    json_array_foreach(json_object_get(json_array_get(messages, at), "tool_calls"), i, tc)
    {
        const char *id = json_string_value(json_object_get(tc, "id"));

        if (id == NULL || !fake_openai_answered(messages, at + 1, end, id))
            return fake_reject(o, call->api, seq, "messages", NULL,
                               "An assistant message with 'tool_calls' must be followed by tool "
                               "messages responding to each 'tool_call_id'. The following "
                               "tool_call_ids did not have response messages: %.100s",
                               id != NULL ? id : "(none)");
    }
    return 0;
}

static int fake_openai_messages(struct fake_outcome *o, struct fake_call *call, json_t *messages,
                                uint64_t seq, bool *mentions_json)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant",
                                        "tool",   "function",  NULL};
    json_t *m;
    size_t i, calls_at = SIZE_MAX, last_user = SIZE_MAX;

    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content"), *tc;
        uint64_t bytes = 0;
        size_t k;

        if (role == NULL)
            return fake_reject(o, call->api, seq, "messages", NULL,
                               "Missing required parameter: 'messages[%zu].role'.", i);
        if (!fake_in_list(role, roles))
            return fake_reject(o, call->api, seq, "messages", "invalid_value",
                               "Invalid value: '%.40s'. Supported values are: 'system', "
                               "'assistant', 'user', 'tool', and 'function'.",
                               role);
        if (strcmp(role, "tool") == 0) {
            const char *id = json_string_value(json_object_get(m, "tool_call_id"));

            if (id == NULL)
                return fake_reject(o, call->api, seq, "messages", NULL,
                                   "Missing required parameter: 'messages[%zu].tool_call_id'.", i);
            if (calls_at == SIZE_MAX)
                return fake_reject(o, call->api, seq, "messages", NULL,
                                   "Invalid parameter: messages with role 'tool' must be a "
                                   "response to a preceeding message with 'tool_calls'.");
            json_array_foreach(json_object_get(json_array_get(messages, calls_at), "tool_calls"), k,
                               tc)
            {
                const char *cid = json_string_value(json_object_get(tc, "id"));

                if (cid != NULL && strcmp(cid, id) == 0)
                    break;
            }
            if (k ==
                json_array_size(json_object_get(json_array_get(messages, calls_at), "tool_calls")))
                return fake_reject(o, call->api, seq, "messages", NULL,
                                   "Invalid parameter: messages with role 'tool' must be a "
                                   "response to a preceeding message with 'tool_calls' (no "
                                   "call %.100s).",
                                   id);
        } else {
            if (calls_at != SIZE_MAX &&
                fake_openai_calls_closed(o, call, messages, calls_at, i, seq) != 0)
                return -1;
            calls_at = SIZE_MAX;
        }
        if (strcmp(role, "assistant") == 0 && (tc = json_object_get(m, "tool_calls")) != NULL) {
            json_t *c;

            if (!json_is_array(tc) || json_array_size(tc) == 0)
                return fake_reject(o, call->api, seq, "messages", "invalid_type",
                                   "Invalid 'messages[%zu].tool_calls': expected a non-empty "
                                   "array.",
                                   i);
            json_array_foreach(tc, k, c)
            {
                json_t *fn = json_object_get(c, "function");

                if (!json_is_string(json_object_get(c, "id")) ||
                    !json_is_string(json_object_get(fn, "name")))
                    return fake_reject(o, call->api, seq, "messages", NULL,
                                       "Missing required parameter: "
                                       "'messages[%zu].tool_calls[%zu].id' or '.function.name'.",
                                       i, k);
                if (!json_is_string(json_object_get(fn, "arguments")))
                    return fake_reject(o, call->api, seq, "messages", "invalid_type",
                                       "Invalid type for "
                                       "'messages[%zu].tool_calls[%zu].function.arguments': "
                                       "expected a string, but got another type instead.",
                                       i, k);
            }
            calls_at = i;
        } else if (content == NULL && strcmp(role, "assistant") != 0) {
            return fake_reject(o, call->api, seq, "messages", NULL,
                               "Missing required parameter: 'messages[%zu].content'.", i);
        }
        if (fake_openai_content(o, call, content, i, role, seq, &bytes) != 0)
            return -1;
        call->input += fake_tokens(bytes) + 3;
        if (strcmp(role, "user") == 0 && bytes > 0)
            last_user = i;
        if (json_is_string(content) && strcasestr(json_string_value(content), "json") != NULL)
            *mentions_json = true;
        json_array_foreach(json_is_array(content) ? content : NULL, k, tc)
        {
            const char *t = json_string_value(json_object_get(tc, "text"));

            if (t != NULL && strcasestr(t, "json") != NULL)
                *mentions_json = true;
        }
    }
    if (calls_at != SIZE_MAX &&
        fake_openai_calls_closed(o, call, messages, calls_at, json_array_size(messages), seq) != 0)
        return -1;
    m = json_array_get(messages, json_array_size(messages) - 1);
    call->after_tool = strcmp(json_string_value(json_object_get(m, "role")), "tool") == 0;
    if (last_user != SIZE_MAX)
        fake_content_directives(json_object_get(json_array_get(messages, last_user), "content"),
                                true, &call->d);
    call->input += call->images * FAKE_IMAGE_TOKENS;
    return 0;
}

static int fake_openai_tools(struct fake_outcome *o, struct fake_call *call, json_t *body,
                             uint64_t seq)
{
    json_t *tools = json_object_get(body, "tools"), *choice = json_object_get(body, "tool_choice");
    json_t *t;
    size_t i;

    if (tools != NULL && (!json_is_array(tools) || json_array_size(tools) == 0))
        return fake_reject(o, call->api, seq, "tools", "empty_array",
                           "Invalid 'tools': empty array. Expected an array with minimum length "
                           "1, but got an empty array instead.");
    if (json_array_size(tools) > FAKE_TOOLS_MAX)
        return fake_reject(o, call->api, seq, "tools", "array_above_max_length",
                           "Invalid 'tools': array too long. Expected an array with maximum "
                           "length 128, but got an array with length %zu instead.",
                           json_array_size(tools));
    json_array_foreach(tools, i, t)
    {
        json_t *fn = json_object_get(t, "function"), *params = json_object_get(fn, "parameters");
        const char *name = json_string_value(json_object_get(fn, "name"));
        const char *type = json_string_value(json_object_get(t, "type"));

        if (type == NULL || strcmp(type, "function") != 0 || !json_is_object(fn))
            return fake_reject(o, call->api, seq, "tools", "invalid_value",
                               "Invalid value for 'tools[%zu].type': expected 'function' with a "
                               "'function' object.",
                               i);
        if (!fake_tool_name_ok(name, 64))
            return fake_reject(o, call->api, seq, "tools", "invalid_value",
                               "Invalid 'tools[%zu].function.name': string does not match "
                               "pattern. Expected a string that matches the pattern "
                               "'^[a-zA-Z0-9_-]{1,64}$'.",
                               i);
        if (params != NULL && !json_is_object(params))
            return fake_reject(o, call->api, seq, "tools", "invalid_type",
                               "Invalid type for 'tools[%zu].function.parameters': expected an "
                               "object.",
                               i);
        if (fake_tool_add(call, name, params) != 0)
            return fake_reject(o, call->api, seq, "tools", NULL,
                               "Invalid 'tools': tool names must be unique (%.64s).", name);
    }
    if (choice == NULL)
        return 0;
    if (tools == NULL)
        return fake_reject(o, call->api, seq, "tool_choice", NULL,
                           "Invalid value for 'tool_choice': 'tool_choice' is only allowed when "
                           "'tools' are specified.");
    if (json_is_string(choice)) {
        const char *c = json_string_value(choice);

        if (strcmp(c, "none") == 0)
            call->tools_off = true;
        else if (strcmp(c, "required") == 0)
            call->forced = 0;
        else if (strcmp(c, "auto") != 0)
            return fake_reject(o, call->api, seq, "tool_choice", "invalid_value",
                               "Invalid value: '%.40s'. Supported values are: 'none', 'auto', "
                               "and 'required'.",
                               c);
        return 0;
    }
    const char *type = json_string_value(json_object_get(choice, "type"));
    const char *name =
        json_string_value(json_object_get(json_object_get(choice, "function"), "name"));

    if (type == NULL || strcmp(type, "function") != 0 || name == NULL)
        return fake_reject(o, call->api, seq, "tool_choice", "invalid_value",
                           "Invalid 'tool_choice': expected 'none', 'auto', 'required' or "
                           "{\"type\": \"function\", \"function\": {\"name\": ...}}.");
    call->forced = fake_tool_find(call, name);
    if (call->forced < 0)
        return fake_reject(o, call->api, seq, "tool_choice", NULL,
                           "Invalid 'tool_choice': function '%.64s' not found in 'tools'.", name);
    return 0;
}

/* sampling, reasoning and response_format */
static int fake_openai_options(struct fake_outcome *o, struct fake_call *call, json_t *body,
                               uint64_t seq, bool mentions_json)
{
    static const struct {
        const char *name;
        double lo, hi;
    } ranges[] = {{"temperature", 0, 2},
                  {"top_p", 0, 1},
                  {"presence_penalty", -2, 2},
                  {"frequency_penalty", -2, 2}};
    static const char *const efforts[] = {"none", "minimal", "low", "medium", "high", NULL};
    json_t *stop = json_object_get(body, "stop"), *rf = json_object_get(body, "response_format");
    json_t *seed = json_object_get(body, "seed"), *v;
    const char *effort;
    size_t i;

    for (i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        v = json_object_get(body, ranges[i].name);
        switch (fake_range(v, ranges[i].lo, ranges[i].hi)) {
        case -1:
            return fake_reject(o, call->api, seq, ranges[i].name, "invalid_type",
                               "Invalid type for '%s': expected a decimal, but got another type "
                               "instead.",
                               ranges[i].name);
        case 1:
            return fake_reject(o, call->api, seq, ranges[i].name,
                               json_number_value(v) > ranges[i].hi ? "decimal_above_max_value"
                                                                   : "decimal_below_min_value",
                               "Invalid '%s': decimal %s value. Expected a value %s %g, but got "
                               "%g instead.",
                               ranges[i].name,
                               json_number_value(v) > ranges[i].hi ? "above maximum"
                                                                   : "below minimum",
                               json_number_value(v) > ranges[i].hi ? "<=" : ">=",
                               json_number_value(v) > ranges[i].hi ? ranges[i].hi : ranges[i].lo,
                               json_number_value(v));
        default:
            break;
        }
    }
    if (seed != NULL && !json_is_null(seed) && !json_is_integer(seed))
        return fake_reject(o, call->api, seq, "seed", "invalid_type",
                           "Invalid type for 'seed': expected an integer, but got another type "
                           "instead.");
    if (stop != NULL && !json_is_null(stop) && !json_is_string(stop)) {
        if (!json_is_array(stop))
            return fake_reject(o, call->api, seq, "stop", "invalid_type",
                               "Invalid type for 'stop': expected one of a string or array of "
                               "strings.");
        if (json_array_size(stop) > 4)
            return fake_reject(o, call->api, seq, "stop", "array_above_max_length",
                               "Invalid 'stop': array too long. Expected an array with maximum "
                               "length 4, but got an array with length %zu instead.",
                               json_array_size(stop));
        json_array_foreach(stop, i, v)
        {
            if (!json_is_string(v))
                return fake_reject(o, call->api, seq, "stop", "invalid_type",
                                   "Invalid type for 'stop[%zu]': expected a string.", i);
        }
    }
    v = json_object_get(body, "reasoning_effort");
    effort = json_string_value(v);
    if (v != NULL && !json_is_null(v) && !fake_in_list(effort, efforts))
        return fake_reject(o, call->api, seq, "reasoning_effort", "invalid_value",
                           "Invalid value: '%.40s'. Supported values are: 'none', 'minimal', "
                           "'low', 'medium', and 'high'.",
                           effort != NULL ? effort : "(not a string)");
    /* the reasoning models refuse max_tokens */
    if (effort != NULL && json_object_get(body, "max_tokens") != NULL)
        return fake_reject(o, call->api, seq, "max_tokens", "unsupported_parameter",
                           "Unsupported parameter: 'max_tokens' is not supported with this "
                           "model. Use 'max_completion_tokens' instead.");
    if (rf == NULL || json_is_null(rf))
        return 0;
    const char *type = json_string_value(json_object_get(rf, "type"));

    if (type != NULL && strcmp(type, "text") == 0)
        return 0;
    if (type != NULL && strcmp(type, "json_object") == 0) {
        if (!mentions_json)
            return fake_reject(o, call->api, seq, "messages", NULL,
                               "'messages' must contain the word 'json' in some form, to use "
                               "'response_format' of type 'json_object'.");
        call->json_reply = true;
        return 0;
    }
    if (type == NULL || strcmp(type, "json_schema") != 0)
        return fake_reject(o, call->api, seq, "response_format.type", "invalid_value",
                           "Invalid value: '%.40s'. Supported values are: 'text', "
                           "'json_object', and 'json_schema'.",
                           type != NULL ? type : "(none)");
    json_t *js = json_object_get(rf, "json_schema");

    if (!json_is_object(js) || json_object_get(js, "name") == NULL)
        return fake_reject(o, call->api, seq, "response_format.json_schema.name", NULL,
                           "Missing required parameter: 'response_format.json_schema.name'.");
    if (!fake_tool_name_ok(json_string_value(json_object_get(js, "name")), 64))
        return fake_reject(o, call->api, seq, "response_format.json_schema.name", "invalid_value",
                           "Invalid 'response_format.json_schema.name': string does not match "
                           "pattern. Expected a string that matches the pattern "
                           "'^[a-zA-Z0-9_-]+$'.");
    v = json_object_get(js, "schema");
    if (v != NULL && !json_is_object(v))
        return fake_reject(o, call->api, seq, "response_format.json_schema.schema", "invalid_type",
                           "Invalid type for 'response_format.json_schema.schema': expected an "
                           "object.");
    call->json_reply = true;
    call->schema = v;
    return 0;
}

static void fake_openai_render(struct fake_outcome *o, const struct fake_request *req,
                               const struct fake_call *call, const struct fake_answer *a)
{
    bool filtered = o->fault.kind == FAKE_FAULT_CONTENT_FILTER;
    uint64_t out = filtered ? 0 : a->out, reasoning = filtered ? 0 : a->reasoning;
    json_t *message, *reply;
    const char *finish;
    char id[64];

    if (filtered) {
        message = json_pack("{s:s, s:n, s:n, s:[]}", "role", "assistant", "content", "refusal",
                            "annotations");
        finish = "content_filter";
    } else if (a->tool != NULL) {
        char *args = json_dumps(a->args, JSON_COMPACT);

        snprintf(id, sizeof id, "call_fake%016" PRIx64, req->seq);
        message = args == NULL ? NULL
                               : json_pack("{s:s, s:n, s:n, s:[], s:[{s:s, s:s, s:{s:s, s:s}}]}",
                                           "role", "assistant", "content", "refusal", "annotations",
                                           "tool_calls", "id", id, "type", "function", "function",
                                           "name", a->tool->name, "arguments", args);
        free(args);
        finish = "tool_calls";
    } else {
        message = json_pack("{s:s, s:s%, s:n, s:[]}", "role", "assistant", "content", a->text,
                            a->text_len, "refusal", "annotations");
        finish = a->length ? "length" : "stop";
    }
    snprintf(id, sizeof id, "chatcmpl-fake%016" PRIx64, req->seq);
    /* cached tokens are INSIDE prompt_tokens, reasoning INSIDE completion_tokens */
    reply = json_pack(
        "{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s}],"
        " s:{s:I, s:I, s:I, s:{s:I, s:I}, s:{s:I, s:I, s:I, s:I}}, s:s, s:s}",
        "id", id, "object", "chat.completion", "created", (json_int_t)time(NULL), "model",
        call->model, "choices", "index", 0, "message", message, "logprobs", "finish_reason", finish,
        "usage", "prompt_tokens", (json_int_t)(call->input + a->cached), "completion_tokens",
        (json_int_t)(out + reasoning), "total_tokens",
        (json_int_t)(call->input + a->cached + out + reasoning), "prompt_tokens_details",
        "cached_tokens", (json_int_t)a->cached, "audio_tokens", (json_int_t)0,
        "completion_tokens_details", "reasoning_tokens", (json_int_t)reasoning, "audio_tokens",
        (json_int_t)0, "accepted_prediction_tokens", (json_int_t)0, "rejected_prediction_tokens",
        (json_int_t)0, "service_tier", "default", "system_fingerprint", "fp_fake");
    fake_succeed(o, call->api, reply, req->seq);
}

/* POST /v1/chat/completions, Azure's /openai/deployments/{d}/chat/completions
 * (?api-version= required; the deployment is the model) and Azure's
 * /openai/v1/chat/completions (the model in the body) */
static void fake_openai(struct fake_server *srv, const struct fake_request *req,
                        struct fake_outcome *o)
{
    bool azure = req->route == FAKE_ROUTE_AZURE || req->route == FAKE_ROUTE_AZURE_V1;
    enum fake_api api = azure ? FAKE_API_AZURE : FAKE_API_OPENAI;
    json_t *body = req->json, *messages;
    char *model_owned = NULL;
    bool mentions_json = false;
    const char *unknown;
    struct fake_call call;
    struct fake_answer a;

    memset(&a, 0, sizeof a);
    fake_call_init(&call, api);
    o->id_header = "x-request-id";
    if (!fake_has_bearer(req->head) && !(azure && fake_header_present(req->head, "api-key"))) {
        if (azure)
            fake_fail_azure(o, 401, NULL,
                            "Access denied due to missing subscription key. Make sure to include "
                            "an api-key header when making requests to an API.");
        else
            fake_fail(o, api, 401,
                      "You didn't provide an API key. You need to provide your API key in an "
                      "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                      "YOUR_KEY).",
                      NULL, NULL, req->seq);
        return;
    }
    if (req->route == FAKE_ROUTE_AZURE && !fake_query_has(req, "api-version")) {
        fake_fail_azure(o, 400, "MissingApiVersionParameter",
                        "The api-version query parameter (?api-version=) is required for all "
                        "requests.");
        return;
    }
    if (!json_is_object(body)) {
        fake_fail(o, api, 400,
                  "We could not parse the JSON body of your request. The OpenAI API expects a JSON "
                  "object.",
                  NULL, NULL, req->seq);
        return;
    }
    unknown = fake_unknown_key(body, fake_openai_fields);
    if (unknown == NULL && !azure && json_object_get(body, "data_sources") != NULL)
        unknown = "data_sources";
    if (unknown != NULL) {
        fake_reject(o, api, req->seq, NULL, NULL, "Unrecognized request argument supplied: %.100s",
                    unknown);
        return;
    }
    call.model = json_string_value(json_object_get(body, "model"));
    if (req->route == FAKE_ROUTE_AZURE) {
        model_owned = strndup(req->deployment, req->deployment_len);
        call.model = model_owned;
    }
    if (call.model == NULL) {
        fake_fail(o, api, 400, "you must provide a model parameter", "model", NULL, req->seq);
        goto out;
    }
    messages = json_object_get(body, "messages");
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        fake_fail(o, api, 400, "'messages' must be a non-empty array", "messages", NULL, req->seq);
        goto out;
    }
    if (fake_cap_get(body, "max_completion_tokens", &call.cap, &call.capped) != 0) {
        fake_fail(o, api, 400, "Invalid 'max_completion_tokens': expected a non-negative integer",
                  "max_completion_tokens", "invalid_value", req->seq);
        goto out;
    }
    if (!call.capped && fake_cap_get(body, "max_tokens", &call.cap, &call.capped) != 0) {
        fake_fail(o, api, 400, "Invalid 'max_tokens': expected a non-negative integer",
                  "max_tokens", "invalid_value", req->seq);
        goto out;
    }
    if (fake_openai_messages(o, &call, messages, req->seq, &mentions_json) != 0 ||
        fake_openai_tools(o, &call, body, req->seq) != 0 ||
        fake_openai_options(o, &call, body, req->seq, mentions_json) != 0)
        goto out;
    if (fake_admit(srv, req, o, &call) == 0)
        goto out;
    if (o->fault.kind == FAKE_FAULT_CONTENT_FILTER && azure) {
        fake_fail_azure(o, 400, "content_filter", "");
        json_decref(o->json);
        o->json = json_pack(
            "{s:{s:s, s:s, s:s, s:i, s:{s:s, s:{s:{s:b, s:s}, s:{s:b, s:b}, s:{s:b, s:s},"
            " s:{s:b, s:s}, s:{s:b, s:s}}}}}",
            "error", "code", "content_filter", "message",
            "The response was filtered due to the prompt triggering Azure OpenAI's content "
            "management policy. Please modify your prompt and retry. To learn more about our "
            "content filtering policies please read our documentation: "
            "https://go.microsoft.com/fwlink/?linkid=2198766",
            "param", "prompt", "status", 400, "innererror", "code", "ResponsibleAIPolicyViolation",
            "content_filter_result", "hate", "filtered", 1, "severity", "high", "jailbreak",
            "filtered", 0, "detected", 0, "self_harm", "filtered", 0, "severity", "safe", "sexual",
            "filtered", 0, "severity", "safe", "violence", "filtered", 0, "severity", "safe");
        goto out;
    }
    if (fake_answer_make(srv, req, &call, &a) != 0) {
        fake_fail(o, api, 500, "fake_provider ran out of memory", NULL, NULL, req->seq);
        goto out;
    }
    fake_openai_render(o, req, &call, &a);
out:
    fake_answer_release(&a);
    free(model_owned);
}

/* ---- Anthropic Messages ---- */

static const char *const fake_anthropic_fields[] = {"model",
                                                    "messages",
                                                    "max_tokens",
                                                    "system",
                                                    "metadata",
                                                    "stop_sequences",
                                                    "stream",
                                                    "temperature",
                                                    "top_p",
                                                    "top_k",
                                                    "tools",
                                                    "tool_choice",
                                                    "thinking",
                                                    "service_tier",
                                                    "container",
                                                    "mcp_servers",
                                                    "context_management",
                                                    NULL};

/* An image block: source base64 (known media type, base64 data), url or file */
static int fake_anthropic_image(struct fake_outcome *o, struct fake_call *call, json_t *block,
                                size_t mi, size_t bi, uint64_t seq)
{
    json_t *src = json_object_get(block, "source");
    const char *type = json_string_value(json_object_get(src, "type"));
    const char *mt = json_string_value(json_object_get(src, "media_type"));
    json_t *data = json_object_get(src, "data");

    if (type != NULL && strcmp(type, "base64") == 0) {
        if (!fake_in_list(mt, fake_image_types))
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "messages.%zu.content.%zu.image.source.base64.media_type: Input "
                               "should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
                               mi, bi);
        if (!json_is_string(data) ||
            !fake_base64_ok(json_string_value(data), json_string_length(data)))
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "messages.%zu.content.%zu.image.source.base64.data: The image "
                               "data is not valid base64.",
                               mi, bi);
    } else if (type != NULL && strcmp(type, "url") == 0) {
        const char *url = json_string_value(json_object_get(src, "url"));

        if (url == NULL || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "messages.%zu.content.%zu.image.source.url.url: Input should be "
                               "a valid URL",
                               mi, bi);
    } else if (type == NULL || strcmp(type, "file") != 0) {
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "messages.%zu.content.%zu.image.source: Input tag '%.40s' found using "
                           "'type' does not match any of the expected tags: 'base64', 'file', "
                           "'url'",
                           mi, bi, type != NULL ? type : "(none)");
    }
    call->images++;
    return 0;
}

/* Whether message m has a block of type whose id_key is id */
static bool fake_anthropic_has_block(json_t *m, const char *type, const char *id_key,
                                     const char *id)
{
    json_t *b;
    size_t i;

    json_array_foreach(json_object_get(m, "content"), i, b)
    {
        const char *btype = json_string_value(json_object_get(b, "type"));
        const char *bid = json_string_value(json_object_get(b, id_key));

        if (btype != NULL && strcmp(btype, type) == 0 && bid != NULL && strcmp(bid, id) == 0)
            return true;
    }
    return false;
}

/* Whether message m (an assistant turn) has a tool_use block with id */
static bool fake_anthropic_has_use(json_t *m, const char *id)
{
    return fake_anthropic_has_block(m, "tool_use", "id", id);
}

/* Whether message m (a user turn) has a tool_result block for id */
static bool fake_anthropic_has_result(json_t *m, const char *id)
{
    return fake_anthropic_has_block(m, "tool_result", "tool_use_id", id);
}

static int fake_anthropic_messages(struct fake_outcome *o, struct fake_call *call, json_t *messages,
                                   uint64_t seq)
{
    json_t *m, *b;
    size_t i, k, last_user = SIZE_MAX, n = json_array_size(messages);

    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        bool user = role != NULL && strcmp(role, "user") == 0, results = false;
        uint64_t bytes = 0;

        if (role == NULL || (!user && strcmp(role, "assistant") != 0))
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "messages.%zu.role: Input should be 'user' or 'assistant'", i);
        if (json_is_string(content)) {
            bytes = json_string_length(content);
        } else if (!json_is_array(content)) {
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "messages.%zu.content: Input should be a valid list or string", i);
        }
        json_array_foreach(json_is_array(content) ? content : NULL, k, b)
        {
            const char *type = json_string_value(json_object_get(b, "type"));

            if (type == NULL) {
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "messages.%zu.content.%zu.type: Field required", i, k);
            } else if (strcmp(type, "text") == 0) {
                bytes += json_string_length(json_object_get(b, "text"));
            } else if (strcmp(type, "image") == 0 && user) {
                if (fake_anthropic_image(o, call, b, i, k, seq) != 0)
                    return -1;
            } else if (strcmp(type, "tool_use") == 0 && !user) {
                if (!json_is_string(json_object_get(b, "id")) ||
                    !json_is_string(json_object_get(b, "name")) ||
                    !json_is_object(json_object_get(b, "input")))
                    return fake_reject(o, call->api, seq, NULL, NULL,
                                       "messages.%zu.content.%zu.tool_use: id, name and input "
                                       "(an object) are required",
                                       i, k);
                if (!fake_anthropic_has_result(json_array_get(messages, i + 1),
                                               json_string_value(json_object_get(b, "id"))))
                    return fake_reject(o, call->api, seq, NULL, NULL,
                                       "messages.%zu: `tool_use` ids were found without "
                                       "`tool_result` blocks immediately after: %.100s. Each "
                                       "`tool_use` block must have a corresponding "
                                       "`tool_result` block in the next message.",
                                       i, json_string_value(json_object_get(b, "id")));
            } else if (strcmp(type, "tool_result") == 0 && user) {
                const char *id = json_string_value(json_object_get(b, "tool_use_id"));
                json_t *rc = json_object_get(b, "content");

                if (id == NULL || i == 0 ||
                    !fake_anthropic_has_use(json_array_get(messages, i - 1), id))
                    return fake_reject(o, call->api, seq, NULL, NULL,
                                       "messages.%zu.content.%zu: unexpected `tool_use_id` found "
                                       "in `tool_result` blocks: %.100s. Each `tool_result` "
                                       "block must have a corresponding `tool_use` block in the "
                                       "previous message.",
                                       i, k, id != NULL ? id : "(none)");
                results = true;
                bytes += fake_content_bytes(rc);
            } else if (strcmp(type, "thinking") != 0 && strcmp(type, "redacted_thinking") != 0 &&
                       strcmp(type, "document") != 0 && strcmp(type, "search_result") != 0) {
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "messages.%zu.content.%zu: Input tag '%.40s' found using "
                                   "'type' does not match any of the expected tags for a %s "
                                   "message",
                                   i, k, type, role);
            }
        }
        call->input += fake_tokens(bytes) + 3;
        if (user && (json_is_string(content) || fake_content_bytes(content) > 0))
            last_user = i;
        if (i == n - 1)
            call->after_tool = results;
    }
    if (last_user != SIZE_MAX)
        fake_content_directives(json_object_get(json_array_get(messages, last_user), "content"),
                                true, &call->d);
    call->input += call->images * FAKE_IMAGE_TOKENS;
    return 0;
}

/* tools, tool_choice, thinking and sampling */
static int fake_anthropic_options(struct fake_outcome *o, struct fake_call *call, json_t *body,
                                  uint64_t seq)
{
    json_t *tools = json_object_get(body, "tools"), *choice = json_object_get(body, "tool_choice");
    json_t *thinking = json_object_get(body, "thinking"), *t, *v;
    json_t *temp = json_object_get(body, "temperature"), *stops;
    const char *ctype;
    size_t i;

    if (fake_range(temp, 0, 1) != 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "temperature: Input should be less than or equal to 1 (and at least "
                           "0)");
    if (fake_range(json_object_get(body, "top_p"), 0, 1) != 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "top_p: Input should be less than or equal to 1 (and at least 0)");
    v = json_object_get(body, "top_k");
    if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 0))
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "top_k: Input should be greater than or equal to 0");
    stops = json_object_get(body, "stop_sequences");
    if (stops != NULL && !json_is_array(stops))
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "stop_sequences: Input should be a valid list");
    json_array_foreach(stops, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "stop_sequences.%zu: each stop sequence must be a non-empty "
                               "string",
                               i);
    }
    if (thinking != NULL) {
        const char *type = json_string_value(json_object_get(thinking, "type"));
        json_t *budget = json_object_get(thinking, "budget_tokens");

        if (type != NULL && strcmp(type, "enabled") == 0) {
            if (!json_is_integer(budget) || json_integer_value(budget) < 1024)
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "thinking.enabled.budget_tokens: Input should be greater than "
                                   "or equal to 1024");
            if ((uint64_t)json_integer_value(budget) >= call->cap)
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "`max_tokens` must be greater than `thinking.budget_tokens`. "
                                   "Please consult our documentation at "
                                   "https://docs.claude.com/en/docs/build-with-claude/"
                                   "extended-thinking#max-tokens-and-context-window-size");
            if (temp != NULL && json_number_value(temp) != 1.0)
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "`temperature` may only be set to 1 when thinking is enabled. "
                                   "Please consult our documentation at "
                                   "https://docs.claude.com/en/docs/build-with-claude/"
                                   "extended-thinking#feature-compatibility");
            if (json_object_get(body, "top_k") != NULL)
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "`top_k` is not compatible with thinking enabled.");
            call->thinking = true;
        } else if (type == NULL || strcmp(type, "disabled") != 0) {
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "thinking: Input tag '%.40s' found using 'type' does not match any "
                               "of the expected tags: 'disabled', 'enabled'",
                               type != NULL ? type : "(none)");
        }
    }
    if (tools != NULL && !json_is_array(tools))
        return fake_reject(o, call->api, seq, NULL, NULL, "tools: Input should be a valid list");
    json_array_foreach(tools, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        const char *type = json_string_value(json_object_get(t, "type"));
        json_t *schema = json_object_get(t, "input_schema");

        if (type != NULL && strcmp(type, "custom") != 0) {
            if (name != NULL)
                fake_tool_add(call, name, NULL); /* a server tool: never called by the fake */
            continue;
        }
        if (!fake_tool_name_ok(name, 128))
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "tools.%zu.custom.name: String should match pattern "
                               "'^[a-zA-Z0-9_-]{1,128}$'",
                               i);
        if (!json_is_object(schema) ||
            strcmp(json_string_value(json_object_get(schema, "type")) != NULL
                       ? json_string_value(json_object_get(schema, "type"))
                       : "",
                   "object") != 0)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "tools.%zu.custom.input_schema: Field required (a JSON Schema "
                               "with type 'object')",
                               i);
        if (fake_tool_add(call, name, schema) != 0)
            return fake_reject(o, call->api, seq, NULL, NULL, "tools: Tool names must be unique.");
    }
    if (choice == NULL)
        return 0;
    ctype = json_string_value(json_object_get(choice, "type"));
    if (ctype == NULL ||
        !fake_in_list(ctype, (const char *const[]){"auto", "any", "tool", "none", NULL}))
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "tool_choice: Input tag '%.40s' found using 'type' does not match any "
                           "of the expected tags: 'auto', 'any', 'tool', 'none'",
                           ctype != NULL ? ctype : "(none)");
    if (tools == NULL && strcmp(ctype, "none") != 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "tool_choice: tool_choice may only be specified while providing tools.");
    if (call->thinking && (strcmp(ctype, "any") == 0 || strcmp(ctype, "tool") == 0))
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "Thinking may not be enabled when tool_choice forces tool use.");
    if (strcmp(ctype, "none") == 0) {
        call->tools_off = true;
    } else if (strcmp(ctype, "any") == 0) {
        call->forced = call->ntools > 0 && call->tools[0].schema != NULL ? 0 : -1;
    } else if (strcmp(ctype, "tool") == 0) {
        const char *name = json_string_value(json_object_get(choice, "name"));

        call->forced = fake_tool_find(call, name);
        if (call->forced < 0)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "tool_choice.tool.name: Tool '%.64s' not found in provided tools",
                               name != NULL ? name : "(none)");
    }
    return 0;
}

static void fake_anthropic_render(struct fake_outcome *o, const struct fake_request *req,
                                  const struct fake_call *call, const struct fake_answer *a)
{
    bool filtered = o->fault.kind == FAKE_FAULT_CONTENT_FILTER;
    json_t *content = json_array(), *reply;
    uint64_t out = filtered ? 0 : a->out + (call->thinking ? a->reasoning : 0);
    const char *stop;
    char id[64];

    if (content == NULL) {
        fake_succeed(o, call->api, NULL, req->seq);
        return;
    }
    if (filtered) {
        stop = "refusal";
    } else {
        if (call->thinking)
            json_array_append_new(content,
                                  json_pack("{s:s, s:s, s:s}", "type", "thinking", "thinking",
                                            "The fake provider thinks briefly.", "signature",
                                            "ZmFrZS1zaWduYXR1cmU="));
        if (a->tool != NULL) {
            snprintf(id, sizeof id, "toolu_fake%016" PRIx64, req->seq);
            json_array_append_new(content,
                                  json_pack("{s:s, s:s, s:s, s:O}", "type", "tool_use", "id", id,
                                            "name", a->tool->name, "input", a->args));
            stop = "tool_use";
        } else {
            json_array_append_new(
                content, json_pack("{s:s, s:s%}", "type", "text", "text", a->text, a->text_len));
            stop = a->length ? "max_tokens" : "end_turn";
        }
    }
    snprintf(id, sizeof id, "msg_fake%016" PRIx64, req->seq);
    /* cache reads and writes are SEPARATE from input_tokens; thinking is
     * output; cache_creation splits the writes by how long they live */
    reply = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:s, s:n, s:{s:I, s:I, s:I, s:I, s:{s:I, s:I}}}", "id", id,
        "type", "message", "role", "assistant", "model", call->model, "content", content,
        "stop_reason", stop, "stop_sequence", "usage", "input_tokens", (json_int_t)call->input,
        "output_tokens", (json_int_t)out, "cache_creation_input_tokens",
        (json_int_t)(a->cache_write + a->cache_write_1h), "cache_read_input_tokens",
        (json_int_t)a->cached, "cache_creation", "ephemeral_5m_input_tokens",
        (json_int_t)a->cache_write, "ephemeral_1h_input_tokens", (json_int_t)a->cache_write_1h);
    fake_succeed(o, call->api, reply, req->seq);
}

/* POST /v1/messages */
static void fake_anthropic(struct fake_server *srv, const struct fake_request *req,
                           struct fake_outcome *o)
{
    json_t *body = req->json, *messages, *max_tokens, *system;
    const char *unknown;
    struct fake_call call;

    fake_call_init(&call, FAKE_API_ANTHROPIC);
    o->id_header = "request-id";
    if (!fake_header_present(req->head, "x-api-key")) {
        fake_fail(o, call.api, 401, "x-api-key header is required", NULL, NULL, req->seq);
        return;
    }
    if (!fake_header_present(req->head, "anthropic-version")) {
        fake_fail(o, call.api, 401, "anthropic-version header is required", NULL, NULL, req->seq);
        return;
    }
    if (!json_is_object(body)) {
        fake_fail(o, call.api, 400, "The request body is not a valid JSON object", NULL, NULL,
                  req->seq);
        return;
    }
    unknown = fake_unknown_key(body, fake_anthropic_fields);
    if (unknown != NULL) {
        fake_reject(o, call.api, req->seq, NULL, NULL, "%.100s: Extra inputs are not permitted",
                    unknown);
        return;
    }
    call.model = json_string_value(json_object_get(body, "model"));
    if (call.model == NULL) {
        fake_fail(o, call.api, 400, "model: Field required", NULL, NULL, req->seq);
        return;
    }
    messages = json_object_get(body, "messages");
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        fake_fail(o, call.api, 400, "messages: Field required (a non-empty list)", NULL, NULL,
                  req->seq);
        return;
    }
    max_tokens = json_object_get(body, "max_tokens");
    if (max_tokens == NULL) {
        fake_fail(o, call.api, 400, "max_tokens: Field required", NULL, NULL, req->seq);
        return;
    }
    if (fake_cap_take(max_tokens, 1, &call.cap, &call.capped) != 0) {
        fake_fail(o, call.api, 400, "max_tokens: Input should be an integer >= 1", NULL, NULL,
                  req->seq);
        return;
    }
    system = json_object_get(body, "system");
    if (system != NULL && !json_is_string(system) && !json_is_array(system)) {
        fake_fail(o, call.api, 400, "system: Input should be a valid string or list", NULL, NULL,
                  req->seq);
        return;
    }
    call.input = fake_tokens(fake_content_bytes(system));
    if (fake_anthropic_messages(o, &call, messages, req->seq) != 0 ||
        fake_anthropic_options(o, &call, body, req->seq) != 0)
        return;
    fake_respond(srv, req, o, &call, fake_anthropic_render);
}

/* ---- Google Gemini generateContent ---- */

/* A field by its JSON name or its proto name (Google's JSON parser takes
 * both: "inlineData" and "inline_data"). Return value: borrowed. */
static json_t *fake_gget(json_t *obj, const char *camel, const char *snake)
{
    json_t *v = json_object_get(obj, camel);

    return v != NULL ? v : json_object_get(obj, snake);
}

static int fake_gemini_unknown(struct fake_outcome *o, json_t *obj, const char *const *known,
                               const char *at, uint64_t seq)
{
    const char *k = json_is_object(obj) ? fake_unknown_key(obj, known) : NULL;

    if (k == NULL)
        return 0;
    if (at == NULL)
        return fake_reject(o, FAKE_API_GEMINI, seq, NULL, NULL,
                           "Invalid JSON payload received. Unknown name \"%.100s\": Cannot find "
                           "field.",
                           k);
    return fake_reject(o, FAKE_API_GEMINI, seq, NULL, NULL,
                       "Invalid JSON payload received. Unknown name \"%.100s\" at '%s': Cannot "
                       "find field.",
                       k, at);
}

/* Gemini's Schema (an OpenAPI subset): keys it does not have are refused,
 * e.g. additionalProperties or $schema of a JSON Schema sent as
 * responseSchema or parameters. */
static int fake_gemini_schema(struct fake_outcome *o, json_t *s, const char *at, int depth,
                              uint64_t seq)
{
    static const char *const known[] = {"type",
                                        "format",
                                        "title",
                                        "description",
                                        "nullable",
                                        "enum",
                                        "maxItems",
                                        "minItems",
                                        "properties",
                                        "required",
                                        "minProperties",
                                        "maxProperties",
                                        "minLength",
                                        "maxLength",
                                        "pattern",
                                        "example",
                                        "anyOf",
                                        "any_of",
                                        "propertyOrdering",
                                        "property_ordering",
                                        "default",
                                        "items",
                                        "minimum",
                                        "maximum",
                                        "max_items",
                                        "min_items",
                                        NULL};
    json_t *v;
    const char *k;
    size_t i;

    if (!json_is_object(s) || depth > FAKE_SCHEMA_DEPTH)
        return 0;
    if (fake_gemini_unknown(o, s, known, at, seq) != 0)
        return -1;
    json_object_foreach(json_object_get(s, "properties"), k, v)
    {
        if (fake_gemini_schema(o, v, at, depth + 1, seq) != 0)
            return -1;
    }
    if (fake_gemini_schema(o, json_object_get(s, "items"), at, depth + 1, seq) != 0)
        return -1;
    json_array_foreach(fake_gget(s, "anyOf", "any_of"), i, v)
    {
        if (fake_gemini_schema(o, v, at, depth + 1, seq) != 0)
            return -1;
    }
    return 0;
}

static bool fake_gemini_part_has(json_t *content, const char *camel, const char *snake)
{
    json_t *p;
    size_t i;

    json_array_foreach(json_object_get(content, "parts"), i, p)
    {
        if (fake_gget(p, camel, snake) != NULL)
            return true;
    }
    return false;
}

static size_t fake_gemini_count(json_t *content, const char *camel, const char *snake)
{
    json_t *p;
    size_t i, n = 0;

    json_array_foreach(json_object_get(content, "parts"), i, p)
    {
        if (fake_gget(p, camel, snake) != NULL)
            n++;
    }
    return n;
}

static int fake_gemini_contents(struct fake_outcome *o, struct fake_call *call, json_t *contents,
                                uint64_t seq)
{
    static const char *const part_keys[] = {"text",
                                            "inlineData",
                                            "inline_data",
                                            "fileData",
                                            "file_data",
                                            "functionCall",
                                            "function_call",
                                            "functionResponse",
                                            "function_response",
                                            "thought",
                                            "thoughtSignature",
                                            "thought_signature",
                                            "executableCode",
                                            "executable_code",
                                            "codeExecutionResult",
                                            "code_execution_result",
                                            "videoMetadata",
                                            "video_metadata",
                                            NULL};
    static const char *const gemini_images[] = {"image/png",  "image/jpeg", "image/webp",
                                                "image/heic", "image/heif", NULL};
    json_t *c, *p;
    size_t i, k, last_user = SIZE_MAX;

    if (!json_is_array(contents) || json_array_size(contents) == 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "* GenerateContentRequest.contents: contents is not specified");
    json_array_foreach(contents, i, c)
    {
        const char *role = json_string_value(json_object_get(c, "role"));
        json_t *parts = json_object_get(c, "parts");
        bool user = role == NULL || strcmp(role, "user") == 0;
        uint64_t bytes = 0;

        if (role != NULL && !user && strcmp(role, "model") != 0 && strcmp(role, "function") != 0)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "Please use a valid role: user, model.");
        if (!json_is_array(parts) || json_array_size(parts) == 0)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "* GenerateContentRequest.contents[%zu].parts: contents.parts "
                               "must not be empty.",
                               i);
        if (fake_gemini_part_has(c, "functionResponse", "function_response")) {
            json_t *prev = i > 0 ? json_array_get(contents, i - 1) : NULL;

            if (prev == NULL || !fake_gemini_part_has(prev, "functionCall", "function_call"))
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "Please ensure that function response turn comes immediately "
                                   "after a function call turn.");
            if (fake_gemini_count(prev, "functionCall", "function_call") !=
                fake_gemini_count(c, "functionResponse", "function_response"))
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "Please ensure that the number of function response parts is "
                                   "equal to the number of function call parts of the function "
                                   "call turn.");
        }
        json_array_foreach(parts, k, p)
        {
            json_t *inl = fake_gget(p, "inlineData", "inline_data");
            json_t *file = fake_gget(p, "fileData", "file_data");
            char at[64];

            snprintf(at, sizeof at, "contents[%zu].parts[%zu]", i, k);
            if (fake_gemini_unknown(o, p, part_keys, at, seq) != 0)
                return -1;
            bytes += json_string_length(json_object_get(p, "text"));
            if (inl != NULL) {
                const char *mt = json_string_value(fake_gget(inl, "mimeType", "mime_type"));
                json_t *data = json_object_get(inl, "data");

                if (!json_is_string(data) ||
                    !fake_base64_ok(json_string_value(data), json_string_length(data)))
                    return fake_reject(o, call->api, seq, NULL, NULL,
                                       "Invalid value at '%s.inline_data.data' (TYPE_BYTES), "
                                       "Base64 decoding failed",
                                       at);
                if (!fake_in_list(mt, gemini_images))
                    return fake_reject(o, call->api, seq, NULL, NULL,
                                       "Unsupported MIME type: %.60s", mt != NULL ? mt : "(none)");
                call->images++;
            }
            if (file != NULL) {
                const char *uri = json_string_value(fake_gget(file, "fileUri", "file_uri"));

                if (uri == NULL ||
                    strncmp(uri, "https://generativelanguage.googleapis.com/", 42) != 0)
                    return fake_reject(o, call->api, seq, NULL, NULL,
                                       "Invalid or unsupported file uri: %.100s",
                                       uri != NULL ? uri : "(none)");
                call->images++;
            }
        }
        call->input += fake_tokens(bytes) + 3;
        if (user && bytes > 0)
            last_user = i;
    }
    c = json_array_get(contents, json_array_size(contents) - 1);
    call->after_tool = fake_gemini_part_has(c, "functionResponse", "function_response");
    if (last_user != SIZE_MAX)
        fake_content_directives(json_object_get(json_array_get(contents, last_user), "parts"),
                                false, &call->d);
    call->input += call->images * FAKE_IMAGE_TOKENS;
    return 0;
}

static int fake_gemini_tools(struct fake_outcome *o, struct fake_call *call, json_t *body,
                             uint64_t seq)
{
    json_t *tools = json_object_get(body, "tools"), *t, *fd;
    json_t *fcc = fake_gget(fake_gget(body, "toolConfig", "tool_config"), "functionCallingConfig",
                            "function_calling_config");
    json_t *allowed = fake_gget(fcc, "allowedFunctionNames", "allowed_function_names");
    const char *mode = json_string_value(json_object_get(fcc, "mode"));
    size_t i, k;

    if (tools != NULL && !json_is_array(tools))
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "Invalid JSON payload received. 'tools': expected a list.");
    json_array_foreach(tools, i, t)
    {
        json_array_foreach(fake_gget(t, "functionDeclarations", "function_declarations"), k, fd)
        {
            const char *name = json_string_value(json_object_get(fd, "name"));
            json_t *params = json_object_get(fd, "parameters");
            json_t *js = fake_gget(fd, "parametersJsonSchema", "parameters_json_schema");
            char at[96];

            if (name == NULL || strlen(name) > 64 || strlen(name) == 0)
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "* GenerateContentRequest.tools[%zu].function_declarations[%zu]"
                                   ".name: Invalid function name. Must start with a letter or an "
                                   "underscore. Must be alphameric (a-z, A-Z, 0-9), underscores "
                                   "(_), dots (.), colons (:), or dashes (-), with a maximum "
                                   "length of 64.",
                                   i, k);
            if (params != NULL && js != NULL)
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "* GenerateContentRequest.tools[%zu].function_declarations[%zu]"
                                   ": parameters and parameters_json_schema cannot both be set",
                                   i, k);
            snprintf(at, sizeof at, "tools[%zu].function_declarations[%zu].parameters", i, k);
            if (fake_gemini_schema(o, params, at, 0, seq) != 0)
                return -1;
            if (fake_tool_add(call, name, params != NULL ? params : js) != 0)
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "* GenerateContentRequest.tools: duplicate function name "
                                   "%.64s (or over 128 functions)",
                                   name);
        }
    }
    if (mode == NULL) {
        if (json_object_get(fcc, "mode") != NULL)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "Invalid value at 'tool_config.function_calling_config.mode'");
    } else if (strcmp(mode, "NONE") == 0) {
        call->tools_off = true;
    } else if (strcmp(mode, "ANY") == 0) {
        const char *first = json_string_value(json_array_get(allowed, 0));

        call->forced = first != NULL ? fake_tool_find(call, first) : (call->ntools > 0 ? 0 : -1);
        if (first != NULL && call->forced < 0)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "* GenerateContentRequest.tool_config.function_calling_config."
                               "allowed_function_names: function %.64s is not declared",
                               first);
    } else if (strcmp(mode, "AUTO") != 0 && strcmp(mode, "VALIDATED") != 0 &&
               strcmp(mode, "MODE_UNSPECIFIED") != 0) {
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "Invalid value at 'tool_config.function_calling_config.mode' "
                           "(type.googleapis.com/"
                           "google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "
                           "\"%.40s\"",
                           mode);
    }
    if (allowed != NULL && (mode == NULL || strcmp(mode, "ANY") != 0))
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "* GenerateContentRequest.tool_config.function_calling_config."
                           "allowed_function_names: only allowed when mode is ANY");
    return 0;
}

static int fake_gemini_config(struct fake_outcome *o, struct fake_call *call, json_t *gc,
                              uint64_t seq)
{
    static const char *const known[] = {"stopSequences",
                                        "stop_sequences",
                                        "responseMimeType",
                                        "response_mime_type",
                                        "responseSchema",
                                        "response_schema",
                                        "responseJsonSchema",
                                        "response_json_schema",
                                        "candidateCount",
                                        "candidate_count",
                                        "maxOutputTokens",
                                        "max_output_tokens",
                                        "temperature",
                                        "topP",
                                        "top_p",
                                        "topK",
                                        "top_k",
                                        "seed",
                                        "presencePenalty",
                                        "presence_penalty",
                                        "frequencyPenalty",
                                        "frequency_penalty",
                                        "responseLogprobs",
                                        "response_logprobs",
                                        "logprobs",
                                        "enableEnhancedCivicAnswers",
                                        "enable_enhanced_civic_answers",
                                        "responseModalities",
                                        "response_modalities",
                                        "speechConfig",
                                        "speech_config",
                                        "thinkingConfig",
                                        "thinking_config",
                                        "mediaResolution",
                                        "media_resolution",
                                        NULL};
    json_t *v, *schema, *jschema, *tc;
    const char *mime;
    size_t i;

    if (gc == NULL)
        return 0;
    if (!json_is_object(gc))
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "Invalid JSON payload received. 'generation_config': expected an "
                           "object.");
    if (fake_gemini_unknown(o, gc, known, "generation_config", seq) != 0)
        return -1;
    v = fake_gget(gc, "maxOutputTokens", "max_output_tokens");
    if (fake_cap_take(v, 1, &call->cap, &call->capped) != 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "* GenerateContentRequest.generation_config.max_output_tokens: "
                           "max_output_tokens must be positive.");
    if (fake_range(json_object_get(gc, "temperature"), 0, 2) != 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "* GenerateContentRequest.generation_config.temperature: temperature "
                           "must be in the range [0.0, 2.0]");
    if (fake_range(fake_gget(gc, "topP", "top_p"), 0, 1) != 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "* GenerateContentRequest.generation_config.top_p: top_p must be in "
                           "the range [0.0, 1.0]");
    v = fake_gget(gc, "candidateCount", "candidate_count");
    if (v != NULL && (!json_is_integer(v) || json_integer_value(v) != 1))
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "* GenerateContentRequest.generation_config.candidate_count: only "
                           "candidate_count 1 is served (the fake answers one candidate)");
    v = json_object_get(gc, "seed");
    if (v != NULL && !json_is_integer(v))
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "Invalid value at 'generation_config.seed' (TYPE_INT32)");
    v = fake_gget(gc, "stopSequences", "stop_sequences");
    if (v != NULL && (!json_is_array(v) || json_array_size(v) > 5))
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "* GenerateContentRequest.generation_config.stop_sequences: at most 5 "
                           "stop sequences");
    json_array_foreach(v, i, tc)
    {
        if (!json_is_string(tc))
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "Invalid value at 'generation_config.stop_sequences[%zu]' "
                               "(TYPE_STRING)",
                               i);
    }
    tc = fake_gget(gc, "thinkingConfig", "thinking_config");
    if (tc != NULL) {
        static const char *const tknown[] = {"thinkingBudget",
                                             "thinking_budget",
                                             "includeThoughts",
                                             "include_thoughts",
                                             "thinkingLevel",
                                             "thinking_level",
                                             NULL};
        json_t *budget = fake_gget(tc, "thinkingBudget", "thinking_budget");

        if (fake_gemini_unknown(o, tc, tknown, "generation_config.thinking_config", seq) != 0)
            return -1;
        if (budget != NULL && (!json_is_integer(budget) || json_integer_value(budget) < -1 ||
                               json_integer_value(budget) > 32768))
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "The thinking budget is invalid. Please choose a value between -1 "
                               "and 32768.");
    }
    mime = json_string_value(fake_gget(gc, "responseMimeType", "response_mime_type"));
    schema = fake_gget(gc, "responseSchema", "response_schema");
    jschema = fake_gget(gc, "responseJsonSchema", "response_json_schema");
    if (mime != NULL && strcmp(mime, "text/plain") != 0 && strcmp(mime, "application/json") != 0 &&
        strcmp(mime, "text/x.enum") != 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "* GenerateContentRequest.generation_config.response_mime_type: "
                           "allowed mimetypes are `text/plain`, `application/json`, and "
                           "`text/x.enum`.");
    if (schema != NULL && jschema != NULL)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "* GenerateContentRequest.generation_config: response_schema and "
                           "response_json_schema cannot both be set.");
    if ((schema != NULL || jschema != NULL) && (mime == NULL || strcmp(mime, "text/plain") == 0))
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "* GenerateContentRequest.generation_config.response_mime_type: "
                           "response_mime_type must be application/json or text/x.enum when a "
                           "response schema is set.");
    if (fake_gemini_schema(o, schema, "generation_config.response_schema", 0, seq) != 0)
        return -1;
    if (mime != NULL && strcmp(mime, "text/plain") != 0) {
        call->json_reply = true;
        call->schema = schema != NULL ? schema : jschema;
    }
    return 0;
}

static void fake_gemini_render(struct fake_outcome *o, const struct fake_request *req,
                               const struct fake_call *call, const struct fake_answer *a)
{
    json_t *usage, *reply, *part;
    char id[64];

    snprintf(id, sizeof id, "fake%016" PRIx64, req->seq);
    /* promptTokenCount INCLUDES cachedContentTokenCount; thoughts are apart
     * from candidatesTokenCount; the total counts all of them */
    if (o->fault.kind == FAKE_FAULT_CONTENT_FILTER) {
        reply = json_pack(
            "{s:{s:s, s:[{s:s, s:s, s:b}]}, s:{s:I, s:I}, s:s, s:s}", "promptFeedback",
            "blockReason", "SAFETY", "safetyRatings", "category", "HARM_CATEGORY_HATE_SPEECH",
            "probability", "HIGH", "blocked", 1, "usageMetadata", "promptTokenCount",
            (json_int_t)(call->input + a->cached), "totalTokenCount",
            (json_int_t)(call->input + a->cached), "modelVersion", call->model, "responseId", id);
        fake_succeed(o, call->api, reply, req->seq);
        return;
    }
    usage = json_pack("{s:I, s:I, s:I}", "promptTokenCount", (json_int_t)(call->input + a->cached),
                      "candidatesTokenCount", (json_int_t)a->out, "totalTokenCount",
                      (json_int_t)(call->input + a->cached + a->out + a->reasoning));
    if (usage != NULL && call->d.cached >= 0)
        json_object_set_new(usage, "cachedContentTokenCount", json_integer((json_int_t)a->cached));
    if (usage != NULL && call->d.reasoning >= 0)
        json_object_set_new(usage, "thoughtsTokenCount", json_integer((json_int_t)a->reasoning));
    if (a->tool != NULL)
        part = json_pack("{s:{s:s, s:O}}", "functionCall", "name", a->tool->name, "args", a->args);
    else
        part = json_pack("{s:s%}", "text", a->text, a->text_len);
    reply = json_pack("{s:[{s:{s:[o], s:s}, s:s, s:i}], s:o, s:s, s:s}", "candidates", "content",
                      "parts", part, "role", "model", "finishReason",
                      a->tool == NULL && a->length ? "MAX_TOKENS" : "STOP", "index", 0,
                      "usageMetadata", usage, "modelVersion", call->model, "responseId", id);
    fake_succeed(o, call->api, reply, req->seq);
}

/* POST /v1beta/models/{model}:generateContent */
static void fake_gemini(struct fake_server *srv, const struct fake_request *req,
                        struct fake_outcome *o)
{
    static const char *const known[] = {"contents",
                                        "systemInstruction",
                                        "system_instruction",
                                        "tools",
                                        "toolConfig",
                                        "tool_config",
                                        "safetySettings",
                                        "safety_settings",
                                        "generationConfig",
                                        "generation_config",
                                        "cachedContent",
                                        "cached_content",
                                        "labels",
                                        "model",
                                        NULL};
    json_t *body = req->json, *si, *p;
    char *model = NULL;
    struct fake_call call;
    uint64_t sys_bytes = 0;
    size_t i;

    fake_call_init(&call, FAKE_API_GEMINI);
    if (!fake_header_present(req->head, "x-goog-api-key") && !fake_query_has(req, "key")) {
        fake_fail(o, call.api, 403,
                  "Method doesn't allow unregistered callers (callers without established "
                  "identity). Please use API Key or other form of API consumer identity to call "
                  "this API.",
                  NULL, NULL, req->seq);
        return;
    }
    if (!json_is_object(body)) {
        fake_fail(o, call.api, 400, "Invalid JSON payload received. Expected an object.", NULL,
                  NULL, req->seq);
        return;
    }
    if (fake_gemini_unknown(o, body, known, NULL, req->seq) != 0)
        return;
    model = strndup(req->deployment, req->deployment_len);
    if (model == NULL) {
        fake_fail(o, call.api, 500, "fake_provider ran out of memory", NULL, NULL, req->seq);
        return;
    }
    call.model = model;
    si = fake_gget(body, "systemInstruction", "system_instruction");
    json_array_foreach(json_object_get(si, "parts"), i, p) sys_bytes +=
        json_string_length(json_object_get(p, "text"));
    call.input = fake_tokens(sys_bytes);
    if (fake_gemini_contents(o, &call, json_object_get(body, "contents"), req->seq) != 0 ||
        fake_gemini_tools(o, &call, body, req->seq) != 0 ||
        fake_gemini_config(o, &call, fake_gget(body, "generationConfig", "generation_config"),
                           req->seq) != 0)
        goto out;
    fake_respond(srv, req, o, &call, fake_gemini_render);
out:
    free(model);
}

/* ---- AWS Bedrock Converse ---- */

static bool fake_all(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++) {
        if (!(fake_is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              strchr(set, s[i]) != NULL) ||
            s[i] == '\0')
            return false;
    }
    return n > 0;
}

/* The value of NAME= in a SigV4 Authorization (up to ',' or the end) */
static const char *fake_sigv4_field(const char *v, size_t n, const char *name, size_t *len)
{
    size_t nl = strlen(name);

    for (size_t i = 0; i + nl < n; i++) {
        if ((i == 0 || v[i - 1] == ' ' || v[i - 1] == ',') && memcmp(v + i, name, nl) == 0 &&
            v[i + nl] == '=') {
            const char *s = v + i + nl + 1, *e = memchr(s, ',', n - i - nl - 1);

            *len = e != NULL ? (size_t)(e - s) : n - i - nl - 1;
            return s;
        }
    }
    return NULL;
}

/* The shape of AWS's auth, not its signature: a Bearer API key, or
 * "AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/REGION/bedrock/aws4_request,
 * SignedHeaders=a;b, Signature=<64 hex>" with x-amz-date of that day,
 * SignedHeaders sorted and holding host and x-amz-date, and every header
 * it lists present. 0, or -1 with o holding the 403. */
static int fake_bedrock_auth(struct fake_outcome *o, const struct fake_request *req)
{
    static const char scheme[] = "AWS4-HMAC-SHA256 ";
    const struct fake_header *auth = fake_header_get(req->head, "authorization");
    const struct fake_header *date = fake_header_get(req->head, "x-amz-date");
    const char *v, *cred, *sh, *sig, *why = NULL;
    size_t n, cl, shl, sl;
    char msg[256];

    if (auth == NULL) {
        fake_fail(o, FAKE_API_BEDROCK, 403, "Missing Authentication Token", NULL,
                  "MissingAuthenticationTokenException", req->seq);
        return -1;
    }
    if (fake_has_bearer(req->head))
        return 0;
    v = auth->value;
    n = auth->value_len;
    if (!fake_prefix(v, n, scheme)) {
        why = "Authorization header requires the AWS4-HMAC-SHA256 scheme or a Bearer API key.";
        goto bad;
    }
    cred = fake_sigv4_field(v, n, "Credential", &cl);
    sh = fake_sigv4_field(v, n, "SignedHeaders", &shl);
    sig = fake_sigv4_field(v, n, "Signature", &sl);
    if (cred == NULL || sh == NULL || sig == NULL) {
        why = "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
              "parameters.";
        goto bad;
    }
    {
        const char *parts[5];
        size_t lens[5], k = 0, start = 0;

        for (size_t i = 0; i <= cl && k < 5; i++) {
            if (i == cl || cred[i] == '/') {
                parts[k] = cred + start;
                lens[k++] = i - start;
                start = i + 1;
            }
        }
        if (k != 5 || memchr(parts[4], '/', cl - (size_t)(parts[4] - cred)) != NULL ||
            !fake_all(parts[0], lens[0], "") || lens[1] != 8 || !fake_all(parts[1], 8, "") ||
            !fake_all(parts[2], lens[2], "-") || !fake_eq(parts[3], lens[3], "bedrock") ||
            !fake_eq(parts[4], lens[4], "aws4_request")) {
            why = "Credential should be scoped to a valid region and to the service 'bedrock': "
                  "AKID/YYYYMMDD/REGION/bedrock/aws4_request.";
            goto bad;
        }
        if (date == NULL) {
            why = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                  "header.";
            goto bad;
        }
        if (date->value_len != 16 || date->value[8] != 'T' || date->value[15] != 'Z' ||
            memcmp(date->value, parts[1], 8) != 0) {
            why = "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                  "date from HTTP (x-amz-date: YYYYMMDDTHHMMSSZ).";
            goto bad;
        }
    }
    {
        const char *prev = NULL;
        size_t prev_len = 0, start = 0;
        bool host = false, amzdate = false;

        for (size_t i = 0; i <= shl; i++) {
            const char *name = sh + start;
            size_t len = i - start;
            char lower[128];

            if (i < shl && sh[i] != ';')
                continue;
            start = i + 1;
            if (len == 0 || len >= sizeof lower || !fake_all(name, len, "-") ||
                (prev != NULL &&
                 (memcmp(prev, name, len < prev_len ? len : prev_len) > 0 ||
                  (memcmp(prev, name, len < prev_len ? len : prev_len) == 0 && prev_len >= len)))) {
                why = "SignedHeaders must be lower-case header names, sorted, separated by ';'.";
                goto bad;
            }
            for (size_t j = 0; j < len; j++) {
                if (name[j] >= 'A' && name[j] <= 'Z') {
                    why = "SignedHeaders must be lower-case header names, sorted, separated by "
                          "';'.";
                    goto bad;
                }
            }
            memcpy(lower, name, len);
            lower[len] = '\0';
            if (!fake_header_present(req->head, lower)) {
                snprintf(msg, sizeof msg,
                         "The request signature lists header '%s' in SignedHeaders, but the "
                         "request does not carry it.",
                         lower);
                why = msg;
                goto bad;
            }
            host = host || strcmp(lower, "host") == 0;
            amzdate = amzdate || strcmp(lower, "x-amz-date") == 0;
            prev = name;
            prev_len = len;
        }
        if (!host) {
            why = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.";
            goto bad;
        }
        if (!amzdate) {
            why = "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.";
            goto bad;
        }
    }
    if (sl != 64 || !fake_all(sig, sl, "")) {
        why = "Signature must be 64 lower-case hexadecimal characters.";
        goto bad;
    }
    for (size_t i = 0; i < sl; i++) {
        if (!fake_is_digit(sig[i]) && !(sig[i] >= 'a' && sig[i] <= 'f')) {
            why = "Signature must be 64 lower-case hexadecimal characters.";
            goto bad;
        }
    }
    return 0;
bad:
    fake_fail(o, FAKE_API_BEDROCK, 403, why, NULL, "IncompleteSignatureException", req->seq);
    return -1;
}

/* Decodes %XX in s[0..n); NULL when a sequence is bad (or out of memory). */
static char *fake_url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t k = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[k++] = s[i];
            continue;
        }
        if (i + 2 >= n) {
            free(out);
            return NULL;
        }
        unsigned v = 0;

        for (size_t j = 1; j <= 2; j++) {
            char ch = s[i + j];

            v <<= 4;
            if (fake_is_digit(ch))
                v |= (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f')
                v |= (unsigned)(ch - 'a' + 10);
            else if (ch >= 'A' && ch <= 'F')
                v |= (unsigned)(ch - 'A' + 10);
            else {
                free(out);
                return NULL;
            }
        }
        if (v == 0) {
            free(out);
            return NULL;
        }
        out[k++] = (char)v;
        i += 2;
    }
    out[k] = '\0';
    return out;
}

static int fake_bedrock_messages(struct fake_outcome *o, struct fake_call *call, json_t *messages,
                                 uint64_t seq, bool *tool_blocks)
{
    static const char *const block_keys[] = {"text",
                                             "image",
                                             "document",
                                             "video",
                                             "toolUse",
                                             "toolResult",
                                             "guardContent",
                                             "cachePoint",
                                             "reasoningContent",
                                             "citationsContent",
                                             NULL};
    static const char *const formats[] = {"png", "jpeg", "gif", "webp", NULL};
    json_t *m, *b;
    size_t i, k, last_user = SIZE_MAX, n = json_array_size(messages);
    const char *prev_role = NULL;

    if (!json_is_array(messages) || n == 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "A conversation must start with a user message. Try again with a "
                           "conversation that starts with a user message.");
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        bool user = role != NULL && strcmp(role, "user") == 0;
        size_t uses = 0, results = 0;
        uint64_t bytes = 0;

        if (role == NULL || (!user && strcmp(role, "assistant") != 0))
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "1 validation error detected: Value '%.40s' at "
                               "'messages.%zu.member.role' failed to satisfy constraint: Member "
                               "must satisfy enum value set: [user, assistant]",
                               role != NULL ? role : "null", i + 1);
        if (i == 0 && !user)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "A conversation must start with a user message. Try again with a "
                               "conversation that starts with a user message.");
        if (prev_role != NULL && strcmp(prev_role, role) == 0)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "A conversation must alternate between user and assistant roles. "
                               "Make sure the conversation alternates between user and "
                               "assistant turns and try again.");
        prev_role = role;
        if (!json_is_array(content) || json_array_size(content) == 0)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "1 validation error detected: Value at 'messages.%zu.member."
                               "content' failed to satisfy constraint: Member must have length "
                               "greater than or equal to 1",
                               i + 1);
        json_array_foreach(content, k, b)
        {
            const char *key =
                json_object_size(b) == 1 ? fake_unknown_key(b, (const char *[]){NULL}) : NULL;
            json_t *v = key != NULL ? json_object_get(b, key) : NULL;

            if (key == NULL || !fake_in_list(key, block_keys))
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "The content block at messages.%zu.content.%zu must hold "
                                   "exactly one of text, image, document, video, toolUse, "
                                   "toolResult, guardContent, cachePoint, reasoningContent.",
                                   i, k);
            if (strcmp(key, "text") == 0) {
                bytes += json_string_length(v);
            } else if (strcmp(key, "image") == 0) {
                const char *fmt = json_string_value(json_object_get(v, "format"));
                json_t *src = json_object_get(v, "source"),
                       *bytes_v = json_object_get(src, "bytes");

                if (!user || !fake_in_list(fmt, formats))
                    return fake_reject(o, call->api, seq, NULL, NULL,
                                       "1 validation error detected: Value '%.20s' at "
                                       "'messages.%zu.member.content.%zu.member.image.format' "
                                       "failed to satisfy constraint: Member must satisfy enum "
                                       "value set: [png, jpeg, gif, webp] (images in user turns "
                                       "only)",
                                       fmt != NULL ? fmt : "null", i + 1, k + 1);
                if (bytes_v != NULL
                        ? !json_is_string(bytes_v) || !fake_base64_ok(json_string_value(bytes_v),
                                                                      json_string_length(bytes_v))
                        : json_object_get(src, "s3Location") == NULL)
                    return fake_reject(o, call->api, seq, NULL, NULL,
                                       "Unable to parse image bytes at "
                                       "messages.%zu.content.%zu.image.source: expected base64 "
                                       "bytes (or an s3Location).",
                                       i, k);
                call->images++;
            } else if (strcmp(key, "toolUse") == 0) {
                if (user || !json_is_string(json_object_get(v, "toolUseId")) ||
                    !json_is_string(json_object_get(v, "name")) ||
                    json_object_get(v, "input") == NULL)
                    return fake_reject(o, call->api, seq, NULL, NULL,
                                       "messages.%zu.content.%zu.toolUse: toolUseId, name and "
                                       "input are required, in assistant turns only",
                                       i, k);
                uses++;
                *tool_blocks = true;
            } else if (strcmp(key, "toolResult") == 0) {
                const char *id = json_string_value(json_object_get(v, "toolUseId"));
                json_t *prev = i > 0 ? json_object_get(json_array_get(messages, i - 1), "content")
                                     : NULL,
                       *pb;
                bool found = false;
                size_t j;

                json_array_foreach(prev, j, pb)
                {
                    const char *pid = json_string_value(
                        json_object_get(json_object_get(pb, "toolUse"), "toolUseId"));

                    found = found || (id != NULL && pid != NULL && strcmp(id, pid) == 0);
                }
                if (!user || !found)
                    return fake_reject(o, call->api, seq, NULL, NULL,
                                       "The model returned the following errors: messages.%zu."
                                       "content.%zu: unexpected `tool_use_id` found in "
                                       "`tool_result` blocks: %.100s. Each `tool_result` block "
                                       "must have a corresponding `tool_use` block in the "
                                       "previous message.",
                                       i, k, id != NULL ? id : "(none)");
                json_array_foreach(json_object_get(v, "content"), j, pb) bytes +=
                    json_string_length(json_object_get(pb, "text"));
                results++;
                *tool_blocks = true;
            }
        }
        if (results > 0) {
            json_t *prev = json_object_get(json_array_get(messages, i - 1), "content"), *pb;
            size_t j, prev_uses = 0;

            json_array_foreach(prev, j, pb) prev_uses += json_object_get(pb, "toolUse") != NULL;
            if (results > prev_uses)
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "The number of toolResult blocks at messages.%zu.content "
                                   "exceeds the number of toolUse blocks of previous turn.",
                                   i);
        }
        (void)uses;
        call->input += fake_tokens(bytes) + 3;
        if (user && bytes > 0 && results == 0)
            last_user = i;
        if (i == n - 1)
            call->after_tool = results > 0;
    }
    if (last_user != SIZE_MAX)
        fake_content_directives(json_object_get(json_array_get(messages, last_user), "content"),
                                false, &call->d);
    call->input += call->images * FAKE_IMAGE_TOKENS;
    return 0;
}

static int fake_bedrock_options(struct fake_outcome *o, struct fake_call *call, json_t *body,
                                uint64_t seq, bool tool_blocks)
{
    static const char *const ic_known[] = {"maxTokens", "temperature", "topP", "stopSequences",
                                           NULL};
    json_t *ic = json_object_get(body, "inferenceConfig"),
           *tc = json_object_get(body, "toolConfig");
    json_t *amrf = json_object_get(body, "additionalModelRequestFields"), *v, *t;
    json_t *choice = json_object_get(tc, "toolChoice"), *thinking;
    bool anthropic = strstr(call->model, "anthropic.") != NULL;
    const char *k;
    size_t i;

    if (ic != NULL && (k = fake_unknown_key(ic, ic_known)) != NULL)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "1 validation error detected: Unknown field '%.60s' at "
                           "'inferenceConfig' (use additionalModelRequestFields for "
                           "model-specific fields)",
                           k);
    v = json_object_get(ic, "maxTokens");
    if (fake_cap_take(v, 1, &call->cap, &call->capped) != 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "1 validation error detected: Value at 'inferenceConfig.maxTokens' "
                           "failed to satisfy constraint: Member must have value greater than "
                           "or equal to 1");
    if (fake_range(json_object_get(ic, "temperature"), 0, 1) != 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "1 validation error detected: Value at 'inferenceConfig.temperature' "
                           "failed to satisfy constraint: Member must have value less than or "
                           "equal to 1");
    if (fake_range(json_object_get(ic, "topP"), 0, 1) != 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "1 validation error detected: Value at 'inferenceConfig.topP' failed "
                           "to satisfy constraint: Member must have value less than or equal to "
                           "1");
    v = json_object_get(ic, "stopSequences");
    json_array_foreach(v, i, t)
    {
        if (!json_is_string(t) || json_string_length(t) == 0)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "1 validation error detected: Value at "
                               "'inferenceConfig.stopSequences' failed to satisfy constraint: "
                               "Member must satisfy constraint: [Member must have length greater "
                               "than or equal to 1]");
    }
    if (amrf != NULL && !json_is_object(amrf))
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "additionalModelRequestFields must be a JSON object");
    json_object_foreach(amrf, k, v)
    {
        bool ok = anthropic ? fake_in_list(k, (const char *const[]){"thinking", "top_k",
                                                                    "anthropic_beta", NULL})
                            : strcmp(k, "thinking") != 0 && strcmp(k, "seed") != 0;

        if (!ok)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "The model returned the following errors: Malformed input "
                               "request: #: extraneous key [%.60s] is not permitted, please "
                               "reformat your input and try again.",
                               k);
    }
    thinking = json_object_get(amrf, "thinking");
    if (thinking != NULL) {
        const char *type = json_string_value(json_object_get(thinking, "type"));
        json_t *budget = json_object_get(thinking, "budget_tokens");
        json_t *temp = json_object_get(ic, "temperature");

        if (type != NULL && strcmp(type, "enabled") == 0) {
            if (!json_is_integer(budget) || json_integer_value(budget) < 1024)
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "The model returned the following errors: "
                                   "thinking.enabled.budget_tokens: Input should be greater than "
                                   "or equal to 1024");
            if (call->capped && (uint64_t)json_integer_value(budget) >= call->cap)
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "The model returned the following errors: `max_tokens` must "
                                   "be greater than `thinking.budget_tokens`.");
            if (temp != NULL && json_number_value(temp) != 1.0)
                return fake_reject(o, call->api, seq, NULL, NULL,
                                   "The model returned the following errors: `temperature` may "
                                   "only be set to 1 when thinking is enabled.");
            call->thinking = true;
        } else if (type == NULL || strcmp(type, "disabled") != 0) {
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "The model returned the following errors: thinking: Input tag "
                               "'%.40s' found using 'type' does not match any of the expected "
                               "tags: 'disabled', 'enabled'",
                               type != NULL ? type : "(none)");
        }
    }
    if (tc == NULL) {
        if (tool_blocks)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "The toolConfig field must be defined when using toolUse and "
                               "toolResult content blocks.");
        return 0;
    }
    if (!json_is_array(json_object_get(tc, "tools")) ||
        json_array_size(json_object_get(tc, "tools")) == 0)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "1 validation error detected: Value at 'toolConfig.tools' failed to "
                           "satisfy constraint: Member must have length greater than or equal "
                           "to 1");
    json_array_foreach(json_object_get(tc, "tools"), i, t)
    {
        json_t *spec = json_object_get(t, "toolSpec");
        const char *name = json_string_value(json_object_get(spec, "name"));
        json_t *schema = json_object_get(json_object_get(spec, "inputSchema"), "json");

        if (spec == NULL && json_object_get(t, "cachePoint") != NULL)
            continue;
        if (!fake_tool_name_ok(name, 64) || !json_is_object(schema))
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "1 validation error detected: toolConfig.tools.%zu.toolSpec needs "
                               "a name matching [a-zA-Z0-9_-]{1,64} and inputSchema.json (an "
                               "object)",
                               i + 1);
        if (fake_tool_add(call, name, schema) != 0)
            return fake_reject(o, call->api, seq, NULL, NULL,
                               "The toolConfig tools must have unique names (%.64s).", name);
    }
    if (choice == NULL)
        return 0;
    if (json_object_get(choice, "auto") != NULL && json_object_size(choice) == 1)
        return 0;
    if (call->thinking)
        return fake_reject(o, call->api, seq, NULL, NULL,
                           "The model returned the following errors: Thinking may not be enabled "
                           "when tool_choice forces tool use.");
    if (json_object_get(choice, "any") != NULL && json_object_size(choice) == 1) {
        call->forced = 0;
        return 0;
    }
    if (json_object_get(choice, "tool") != NULL && json_object_size(choice) == 1) {
        const char *name =
            json_string_value(json_object_get(json_object_get(choice, "tool"), "name"));

        call->forced = fake_tool_find(call, name);
        if (call->forced >= 0)
            return 0;
    }
    return fake_reject(o, call->api, seq, NULL, NULL,
                       "toolConfig.toolChoice must be exactly one of auto, any, or tool with the "
                       "name of a tool in toolConfig.tools.");
}

static void fake_bedrock_render(struct fake_outcome *o, const struct fake_request *req,
                                const struct fake_call *call, const struct fake_answer *a)
{
    bool filtered = o->fault.kind == FAKE_FAULT_CONTENT_FILTER;
    json_t *content = json_array(), *reply;
    uint64_t out = filtered ? 0 : a->out + (call->thinking ? a->reasoning : 0);
    const char *stop;
    char id[64];

    if (content == NULL) {
        fake_succeed(o, call->api, NULL, req->seq);
        return;
    }
    if (filtered) {
        stop = "content_filtered";
    } else {
        if (call->thinking)
            json_array_append_new(content, json_pack("{s:{s:{s:s, s:s}}}", "reasoningContent",
                                                     "reasoningText", "text",
                                                     "The fake provider thinks briefly.",
                                                     "signature", "ZmFrZS1zaWduYXR1cmU="));
        if (a->tool != NULL) {
            snprintf(id, sizeof id, "tooluse_fake%016" PRIx64, req->seq);
            json_array_append_new(content, json_pack("{s:{s:s, s:s, s:O}}", "toolUse", "toolUseId",
                                                     id, "name", a->tool->name, "input", a->args));
            stop = "tool_use";
        } else {
            json_array_append_new(content, json_pack("{s:s%}", "text", a->text, a->text_len));
            stop = a->length ? "max_tokens" : "end_turn";
        }
    }
    /* inputTokens EXCLUDES cache reads and writes; the total counts them all;
     * metrics.latencyMs is set when the delay is known */
    reply =
        json_pack("{s:{s:{s:s, s:o}}, s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:i}}", "output",
                  "message", "role", "assistant", "content", content, "stopReason", stop, "usage",
                  "inputTokens", (json_int_t)call->input, "outputTokens", (json_int_t)out,
                  "totalTokens", (json_int_t)(call->input + out + a->cached + a->cache_write),
                  "cacheReadInputTokens", (json_int_t)a->cached, "cacheWriteInputTokens",
                  (json_int_t)a->cache_write, "metrics", "latencyMs", 0);
    fake_succeed(o, call->api, reply, req->seq);
}

/* POST /model/{modelId}/converse (modelId URL-encoded) */
static void fake_bedrock(struct fake_server *srv, const struct fake_request *req,
                         struct fake_outcome *o)
{
    static const char *const known[] = {"messages",        "system",
                                        "inferenceConfig", "toolConfig",
                                        "guardrailConfig", "additionalModelRequestFields",
                                        "promptVariables", "additionalModelResponseFieldPaths",
                                        "requestMetadata", "performanceConfig",
                                        "serviceTier",     NULL};
    json_t *body = req->json, *s;
    char *model = NULL;
    const char *k;
    struct fake_call call;
    bool tool_blocks = false;
    uint64_t sys_bytes = 0;
    size_t i;

    fake_call_init(&call, FAKE_API_BEDROCK);
    o->id_header = "x-amzn-RequestId";
    if (fake_bedrock_auth(o, req) != 0)
        return;
    model = fake_url_decode(req->deployment, req->deployment_len);
    if (model == NULL || model[0] == '\0') {
        fake_reject(o, call.api, req->seq, NULL, NULL,
                    "The provided model identifier is invalid (bad URL encoding).");
        goto out;
    }
    call.model = model;
    if (!json_is_object(body)) {
        fake_fail(o, call.api, 400, "Unable to parse the request body as a JSON object.", NULL,
                  "SerializationException", req->seq);
        goto out;
    }
    if ((k = fake_unknown_key(body, known)) != NULL) {
        fake_reject(o, call.api, req->seq, NULL, NULL,
                    "1 validation error detected: Unknown field '%.60s' in the Converse request",
                    k);
        goto out;
    }
    s = json_object_get(body, "system");
    if (s != NULL && !json_is_array(s)) {
        fake_reject(o, call.api, req->seq, NULL, NULL,
                    "1 validation error detected: 'system' must be a list of content blocks");
        goto out;
    }
    json_array_foreach(s, i, body) sys_bytes += json_string_length(json_object_get(body, "text"));
    body = req->json;
    call.input = fake_tokens(sys_bytes);
    if (fake_bedrock_messages(o, &call, json_object_get(body, "messages"), req->seq,
                              &tool_blocks) != 0 ||
        fake_bedrock_options(o, &call, body, req->seq, tool_blocks) != 0)
        goto out;
    fake_respond(srv, req, o, &call, fake_bedrock_render);
out:
    free(model);
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

static enum fake_api fake_route_api(enum fake_route route)
{
    switch (route) {
    case FAKE_ROUTE_AZURE:
    case FAKE_ROUTE_AZURE_V1:
        return FAKE_API_AZURE;
    case FAKE_ROUTE_ANTHROPIC:
        return FAKE_API_ANTHROPIC;
    case FAKE_ROUTE_GEMINI:
        return FAKE_API_GEMINI;
    case FAKE_ROUTE_BEDROCK:
        return FAKE_API_BEDROCK;
    default:
        return FAKE_API_OPENAI;
    }
}

static void fake_dispatch(struct fake_server *srv, const struct fake_request *req,
                          struct fake_outcome *o)
{
    char msg[160];

    switch (req->route) {
    case FAKE_ROUTE_OPENAI:
    case FAKE_ROUTE_AZURE:
    case FAKE_ROUTE_AZURE_V1:
        o->provider = true;
        fake_openai(srv, req, o);
        break;
    case FAKE_ROUTE_ANTHROPIC:
        o->provider = true;
        fake_anthropic(srv, req, o);
        break;
    case FAKE_ROUTE_GEMINI:
        o->provider = true;
        fake_gemini(srv, req, o);
        break;
    case FAKE_ROUTE_BEDROCK:
        o->provider = true;
        fake_bedrock(srv, req, o);
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
    if (req->route == FAKE_ROUTE_BEDROCK && o->status == 200)
        json_object_set_new(json_object_get(o->json, "metrics"), "latencyMs",
                            json_integer((json_int_t)o->delay_ms));
    if (o->provider && req->log != NULL) {
        json_object_set_new(req->log, "api",
                            json_string(fake_api_names[fake_route_api(req->route)]));
        json_object_set(req->log, "request", req->json != NULL ? req->json : json_null());
    }
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

/* PREFIX SEGMENT SUFFIX with a non-empty SEGMENT holding no '/': the
 * segment goes to req->deployment. */
static bool fake_route_segment(const char *p, size_t n, const char *prefix, const char *suffix,
                               struct fake_request *req)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);

    if (n <= pl + sl || !fake_prefix(p, n, prefix) || memcmp(p + n - sl, suffix, sl) != 0 ||
        memchr(p + pl, '/', n - pl - sl) != NULL)
        return false;
    req->deployment = p + pl;
    req->deployment_len = n - pl - sl;
    return true;
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
    if (post && fake_eq(p, n, "/openai/v1/chat/completions"))
        return FAKE_ROUTE_AZURE_V1;
    if (post && fake_route_segment(p, n, "/v1beta/models/", ":generateContent", req))
        return FAKE_ROUTE_GEMINI;
    if (post && fake_route_segment(p, n, "/model/", "/converse", req))
        return FAKE_ROUTE_BEDROCK;
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
    if (o->error_type != NULL && len < cap) {
        n = snprintf(buf + len, cap - len, "x-amzn-ErrorType: %s\r\n", o->error_type);
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
    fake_fail(&o, fake_route_api(req.route), status, msg, NULL, NULL, req.seq);
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
    /* a reply's log line reaches the file before its bytes leave: a
     * provider killed (SIGKILL) right after answering has the call in its
     * log, as a real provider's bill would (the tests count billed calls
     * from it) */
    if (srv->log_dirty && fake_buf_pending(&c->out) > 0)
        fake_log_flush(srv, now);
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
        "routes: POST /v1/chat/completions (OpenAI), /openai/deployments/D/chat/completions\n"
        "      ?api-version= and /openai/v1/chat/completions (Azure), /v1/messages (Anthropic),\n"
        "      /v1beta/models/M:generateContent (Gemini), /model/ID/converse (Bedrock)\n"
        "directives in the last user text: #out=N #cached=N #cache_write=N #reasoning=N\n"
        "      #cache_write_1h=N (Anthropic: one-hour cache writes)\n"
        "      #latency=MS #fault=KIND #tool=NAME (call that declared tool); images: 85 tokens\n"
        "KIND: status:NNN[,retry_after:S][,echo_key:N] | timeout | hang | close | truncate |\n"
        "      malformed | slow | stall | content_filter (the provider's refusal)\n"
        "      (echo_key:N: the request's API key at byte N of a\n"
        "      long error message, N <= 4096; timeout = hang: never answers, keeps the\n"
        "      connection until the client closes it; stall: head and half the body, then\n"
        "      nothing; slow: the whole reply over about 1 s); a --fault rule's KIND may\n"
        "      add ,every:N (N >= 2): only every Nth call of its model faults, every:2 = half\n"
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
                        "malformed slow stall content_filter, each with an optional ,every:N)\n",
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

/*
 * ratelimit: how fast one provider lane (a provider and one of its models,
 * or a whole provider) may be called, so that a provider's rate limit is
 * backpressure and not a failure. Pure: the caller passes the clock and
 * what each call cost and returned; nothing here reads a clock, sleeps or
 * logs (tests/data/ratelimit/ pins the rules, and a virtual-time
 * simulation against fixed-window and rolling providers pins convergence).
 *
 * Four dimensions, each a per-minute rate: requests, tokens (input +
 * output), input tokens, output tokens (Anthropic limits the last two
 * apart). The rate in force for a dimension is the smallest of
 *   - what is configured (worker.yaml, the policy),
 *   - what the provider last reported as its limit (rate-limit headers),
 *   - for requests, what AIMD allows: cut on a 429, grown back while
 *     calls succeed (additive increase, multiplicative decrease),
 * and 0 means no limit is known in that dimension. Each dimension is a
 * token bucket refilled continuously at its rate, holding at most a short
 * burst, synchronised down to what the provider says remains, and blocked
 * until the provider's reset when it says nothing remains or answers 429
 * with Retry-After. Tokens are reserved before a call (the input estimate
 * plus max_tokens) and corrected by the real usage when the reply comes.
 */
#ifndef SWITCHYARD_RATELIMIT_H
#define SWITCHYARD_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

enum ratelimit_dim {
    RATELIMIT_REQUESTS,
    RATELIMIT_TOKENS,
    RATELIMIT_INPUT_TOKENS,
    RATELIMIT_OUTPUT_TOKENS,
    RATELIMIT_NDIMS
};

/* ---- what a reply's headers say ---- */

struct ratelimit_hint {
    int64_t limit;     /* per minute; -1 when not given */
    int64_t remaining; /* -1 when not given */
    int64_t reset_ms;  /* from the reply until the bucket is full again (OpenAI) or
                          until the given time (Anthropic, RFC 3339); -1 when not given */
};

struct ratelimit_hints {
    struct ratelimit_hint dim[RATELIMIT_NDIMS];
    int64_t retry_after_ms;   /* retry-after-ms, else Retry-After (seconds or an HTTP
                                 date); -1 when absent */
    int retry_after_ms_given; /* retry-after-ms was seen: Retry-After, coarser,
                                 no longer overrides it, in either order */
};

void ratelimit_hints_init(struct ratelimit_hints *h);
/* One response header line ("Name: value", with or without the CRLF),
 * as curl's header callback gives it. Understands OpenAI's
 * x-ratelimit-{limit,remaining,reset}-{requests,tokens} (reset as a Go
 * duration: "1s", "6m0s", "20ms", "1h2m3.5s"), Anthropic's
 * anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
 * {limit,remaining,reset} (reset as an RFC 3339 time, made relative to
 * now_wall_ms), retry-after-ms and Retry-After. Names are matched without
 * regard to case; a value that does not parse is ignored (never guessed).
 * Returns 1 when the line was one of these and parsed, else 0. */
int ratelimit_hints_header(struct ratelimit_hints *h, const char *line, size_t len,
                           int64_t now_wall_ms);
/* A Go-style duration ("20ms", "1.5s", "6m0s", "1h"; a bare number is
 * seconds) -> *ms, rounded up. 0, or -1 when it does not parse. */
int ratelimit_parse_duration(const char *s, size_t n, int64_t *ms);

/* ---- the limiter ---- */

/* Configured limits; 0 = none. */
struct ratelimit_limits {
    uint64_t requests_per_minute;
    uint64_t tokens_per_minute;
    uint64_t max_concurrent;
};

/* What a call reserves before it starts, and what it really used. */
struct ratelimit_cost {
    uint64_t input_tokens;
    uint64_t output_tokens;
};

#define RATELIMIT_WAIT_CALL INT64_MAX /* only a call ending can make room */

struct ratelimit {
    struct ratelimit_limits configured;
    int learn; /* 1: headers and 429s adjust it (a model lane); 0: configured only */
    double learned[RATELIMIT_NDIMS];           /* the provider's last reported limit; 0 = none */
    double level[RATELIMIT_NDIMS];             /* units available now; may go below 0 */
    int64_t blocked_until_ms[RATELIMIT_NDIMS]; /* nothing remains before this */
    int64_t updated_ms;                        /* when the levels were last refilled */
    double aimd_rpm;                           /* requests/min AIMD allows; 0 = no 429 yet */
    int64_t last_cut_ms;                       /* 429s of calls sent before this do not cut again */
    int64_t retry_until_ms;                    /* Retry-After: no call before this */
    uint64_t in_flight;
    /* calls started recently, to know the rate being sent when the first
     * 429 comes: a ring of per-second counts */
    uint32_t sent_ring[64];
    int64_t sent_ring_sec;
    /* counts, for metrics */
    uint64_t rate_limited; /* 429s seen */
    uint64_t cuts;         /* multiplicative decreases applied */
    /* units reserved by the calls in flight: a reply's remaining was
     * counted before most of them reached the provider */
    double pending[RATELIMIT_NDIMS];
    int64_t first_sent_ms; /* the first call ever started; INT64_MIN = none */
    /* calls answered (not 429) per second, same layout as sent_ring: what
     * the provider accepted lately bounds how far one storm cuts */
    uint32_t ok_ring[64];
    int64_t ok_ring_sec;
};

/* AIMD: a 429 of a call sent after the last cut cuts the requests rate to
 * BETA times the rate in force, or the rate being sent over the last 10 s
 * when that is lower or nothing is in force; from 10 s of history on, the
 * cut lands between BETA and 1 times what was answered over the last
 * minute. Each success while the requests bucket is below half full (the
 * rate is what holds calls back) adds STEP requests/min, up to the
 * configured or learned ceiling, where AIMD is cleared. Chosen by the
 * simulation in tests/unit/test_ratelimit.c (its output prints the figures). */
#define RATELIMIT_AIMD_BETA 0.8
#define RATELIMIT_AIMD_STEP_RPM 0.25
/* The longest a reply's Retry-After or reset blocks a lane: a provider's
 * (or a hostile) "come back tomorrow" stalls it for an hour at most. */
#define RATELIMIT_MAX_BLOCK_MS 3600000

void ratelimit_init(struct ratelimit *r, const struct ratelimit_limits *configured, int learn,
                    int64_t now_ms);
/* Changes the configured limits (a policy reload), keeping what was learned. */
void ratelimit_configure(struct ratelimit *r, const struct ratelimit_limits *configured);
/* How long before a call reserving c may start: 0 = now, a number of ms,
 * or RATELIMIT_WAIT_CALL when only the end of a call in flight can make
 * room (max_concurrent). A call larger than a whole bucket waits only
 * until that bucket is full, never for ever. Does not change r. */
int64_t ratelimit_wait(const struct ratelimit *r, const struct ratelimit_cost *c, int64_t now_ms);
/* The call starts now: reserves c (one request, its tokens, a concurrent slot). */
void ratelimit_start(struct ratelimit *r, const struct ratelimit_cost *c, int64_t now_ms);

/* How a call ended, for ratelimit_end. */
struct ratelimit_outcome {
    const struct ratelimit_cost *reserved; /* as given to ratelimit_start */
    const struct ratelimit_cost *used;     /* the real usage; NULL when none was
                                              reported (the tokens are given back) */
    int rate_limited;                      /* the provider answered 429 */
    int succeeded;                         /* an answer (grows the AIMD rate) */
    int64_t sent_ms;                       /* when the call started */
    const struct ratelimit_hints *hints;   /* from its headers; NULL for none */
};
/* The call ended: frees its slot; corrects its tokens (used - reserved, or
 * all back when used is NULL). With learn: a reported limit becomes the
 * learned one; a reported remaining R lowers the level to R less what is
 * still in flight; R = 0 blocks the dimension until its reset when that is
 * a fixed window's (sooner than an empty continuous bucket refills),
 * else for one unit's time; a 429 empties the requests bucket, applies
 * Retry-After (RATELIMIT_MAX_BLOCK_MS at most) and cuts AIMD. Borrows o. */
void ratelimit_end(struct ratelimit *r, const struct ratelimit_outcome *o, int64_t now_ms);
/* The rate in force in dimension d (per minute; 0 = no limit known). */
double ratelimit_rate(const struct ratelimit *r, enum ratelimit_dim d);
const char *ratelimit_dim_name(enum ratelimit_dim d);

#endif

/*
 * retry: the decision after a provider call that did not answer. Pure: the
 * caller passes the counts, the clock, the limits and a random number for
 * the jitter, and applies what comes back (tests/data/retry/cases.txt pins
 * every rule).
 *
 * Rules, in order:
 *   stopping                          -> abandon (no new call after a signal)
 *   rate limited (a 429): it is backpressure, not a failure: it spends
 *   neither max_attempts nor the candidate's retries, and the call waits
 *   for its model (delay = rate_wait_ms) unless
 *     the route says on_rate_limit: fallback -> fall back
 *     now + delay >= deadline           -> fall back (waiting would miss it)
 *     rate_waited_ms + delay > rate_limit_max_wait_ms,
 *     or rate_limited_calls > RETRY_MAX_RATE_LIMITED -> fall back
 *   (why "rate_limited" for each), a fall back with no next candidate
 *   being a give up;
 *   attempts >= max_attempts          -> give up
 *   not retryable, or this candidate's
 *   tries > retries_per_candidate     -> fall back
 *   Retry-After > backoff_max_ms      -> fall back (asked to wait too long)
 *   now + delay >= deadline           -> fall back (a retry would miss it)
 *   otherwise                         -> retry after delay
 * where delay = jitter in [cap/2, cap], cap = min(backoff_max_ms,
 * backoff_initial_ms x 2^(tries-1)), raised to Retry-After when that is
 * longer. A fall back with no next candidate is a give up.
 */
#ifndef SWITCHYARD_RETRY_H
#define SWITCHYARD_RETRY_H

#include <stddef.h>
#include <stdint.h>

enum retry_action {
    RETRY_SAME,      /* call the same candidate again after delay_ms */
    RETRY_FALL_BACK, /* call the next candidate now */
    RETRY_GIVE_UP,   /* no call left: an error result */
    RETRY_ABANDON,   /* stopping: the offset stays uncommitted for the next owner */
};

/* 429s one request may receive in all: with a provider that answers 429
 * without ever saying how long to wait, this is what ends the waiting. */
#define RETRY_MAX_RATE_LIMITED 100

struct retry_input {
    int rate_limited;            /* the provider answered 429 (a rate limit, not a quota) */
    int fall_back_on_rate_limit; /* the route says on_rate_limit: fallback */
    uint64_t rate_wait_ms;       /* rate limited: how long the model asks to wait */
    uint64_t rate_waited_ms;     /* rate limited: how long the request has already waited */
    uint64_t rate_limit_max_wait_ms;
    unsigned rate_limited_calls; /* 429s so far, this one included */
    int retryable;               /* the failure may pass (429, 5xx, timeout, ...) */
    int64_t retry_after_ms;      /* what the provider asked; -1 when it did not */
    unsigned tries_on_current;   /* calls made to this candidate, this one included (>= 1) */
    size_t attempts;             /* calls made for the request, this one included */
    int has_next;                /* a later candidate of the plan was taken by the router */
    int stopping;                /* the worker is draining to stop */
    int64_t now_ms;              /* ms since the epoch */
    int64_t deadline_ms;         /* the request's deadline; -1 for none */
    uint64_t max_attempts, retries_per_candidate, backoff_initial_ms, backoff_max_ms;
    uint64_t random; /* any 64-bit random number: the jitter */
};

struct retry_decision {
    enum retry_action action;
    uint64_t delay_ms; /* RETRY_SAME only */
    const char *why;   /* static: "retry", "not_retryable", "retries_spent",
                          "retry_after_too_long", "deadline", "max_attempts",
                          "no_candidate_left", "stopping", "rate_limited",
                          "rate_limited_wait" (a 429: wait for the model) */
};

struct retry_decision retry_decide(const struct retry_input *in);
const char *retry_action_name(enum retry_action a);

#endif

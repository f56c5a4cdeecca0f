/*
 * breaker: the circuit breaker of one provider lane (a provider and one of
 * its models). Pure: the caller passes the clock and each call's outcome
 * (tests/data/breaker/ pins every transition).
 *
 *   closed    -> open       `failures` consecutive failures, or at least
 *                           failure_percent % of the calls that ended in the
 *                           last window_ms, once it holds min_calls
 *   open      -> half_open  open_ms after opening (on the next
 *                           breaker_allow)
 *   half_open -> closed     a probe succeeds
 *   half_open -> open       a probe fails (open_ms starts again)
 * While open no call is allowed; while half open at most `probes` calls
 * are in flight. A failure is what says the provider is unwell: a 5xx,
 * a timeout, a connection error, a malformed or truncated body. A 429 and
 * a 4xx caused by the request itself say nothing about it (ignored).
 */
#ifndef SWITCHYARD_BREAKER_H
#define SWITCHYARD_BREAKER_H

#include <stdint.h>

struct breaker_config {
    uint32_t failures;        /* consecutive failures that open it */
    uint32_t failure_percent; /* 1..100 */
    uint32_t min_calls;       /* calls in the window before the ratio counts */
    uint32_t window_ms;
    uint32_t open_ms;
    uint32_t probes; /* calls let through at once while half open */
};

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };
enum breaker_outcome { BREAKER_SUCCESS, BREAKER_FAILURE, BREAKER_IGNORE };

#define BREAKER_SLOTS 10 /* the window, in slots of window_ms / 10 */

struct breaker {
    enum breaker_state state;
    uint32_t consecutive; /* failures in a row */
    uint32_t ok[BREAKER_SLOTS], failed[BREAKER_SLOTS];
    int64_t slot_start_ms[BREAKER_SLOTS];
    int64_t opened_ms;
    uint32_t probes_out;     /* probes in flight while half open */
    uint64_t transitions[3]; /* into each state, for metrics */
};

void breaker_init(struct breaker *b);
/* May a call start now? 1: yes (while half open it is a probe: *probe set
 * to 1, and it must be recorded with probe = 1); 0: no. *changed is set
 * to 1 when this call moved the state (open -> half open), else 0. */
int breaker_allow(struct breaker *b, const struct breaker_config *c, int64_t now_ms, int *probe,
                  int *changed);
/* Would a call be refused now? (For a job about to queue; changes nothing.) */
int breaker_refuses(const struct breaker *b, const struct breaker_config *c, int64_t now_ms);
/* A call ended. probe: it was let through as a probe. Returns 1 when the
 * state changed (then b->state is the new one), else 0. A call that
 * started before the circuit opened and ends while it is open or half
 * open changes nothing. */
int breaker_record(struct breaker *b, const struct breaker_config *c, int64_t now_ms,
                   enum breaker_outcome o, int probe);
/* The outcome of a call: http_status 0 with transport_error set is a
 * connection error or a timeout; malformed: a 2xx whose body could not be
 * read as an answer. */
enum breaker_outcome breaker_classify(long http_status, int transport_error, int malformed);
const char *breaker_state_name(enum breaker_state s);

#endif

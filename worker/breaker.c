/*
 * breaker: the circuit breaker of one provider lane. Decides, never acts:
 * no clock read, no I/O, no logging (the caller logs each transition, as
 * breaker_allow and breaker_record report them).
 *
 * The failure ratio is kept in a ring of BREAKER_SLOTS slots, each
 * window_ms / BREAKER_SLOTS long and stamped with its start; a slot whose
 * stamp is not the current one is zeroed when it is next written, and
 * skipped when the window is summed, so no timer ever sweeps it. Only
 * outcomes that end while closed are counted: while open or half open the
 * probes alone decide, and the counts start afresh on every close.
 */
#include "breaker.h"

#include <stddef.h>
#include <string.h>

const char *breaker_state_name(enum breaker_state s)
{
    switch (s) {
    case BREAKER_CLOSED:
        return "closed";
    case BREAKER_OPEN:
        return "open";
    case BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}

/* A slot start that no clock reading produces: the slot is empty. */
#define BREAKER_NO_SLOT INT64_MIN

static void breaker_clear_counts(struct breaker *b)
{
    b->consecutive = 0;
    memset(b->ok, 0, sizeof b->ok);
    memset(b->failed, 0, sizeof b->failed);
    for (size_t i = 0; i < BREAKER_SLOTS; i++)
        b->slot_start_ms[i] = BREAKER_NO_SLOT;
}

void breaker_init(struct breaker *b)
{
    memset(b, 0, sizeof *b);
    b->state = BREAKER_CLOSED;
    breaker_clear_counts(b);
}

static int64_t breaker_slot_ms(const struct breaker_config *c)
{
    int64_t ms = (int64_t)c->window_ms / BREAKER_SLOTS;
    return ms > 0 ? ms : 1; /* a window under 10 ms still has slots */
}

/* The start of the slot holding now_ms (floor, also for negative times). */
static int64_t breaker_slot_start(int64_t now_ms, int64_t slot_ms)
{
    int64_t r = now_ms % slot_ms;
    return now_ms - (r < 0 ? r + slot_ms : r);
}

static size_t breaker_slot_index(int64_t start, int64_t slot_ms)
{
    int64_t n = (start / slot_ms) % BREAKER_SLOTS;
    return (size_t)(n < 0 ? n + BREAKER_SLOTS : n);
}

/* The state's own thresholds: 0 from a config nobody checked would open
 * on nothing (failures) or never let a probe through (probes). */
static uint32_t breaker_at_least_1(uint32_t v)
{
    return v ? v : 1;
}

static void breaker_enter(struct breaker *b, enum breaker_state s, int64_t now_ms)
{
    b->state = s;
    b->transitions[s]++;
    b->probes_out = 0;
    if (s == BREAKER_OPEN)
        b->opened_ms = now_ms;
    if (s != BREAKER_HALF_OPEN)
        breaker_clear_counts(b); /* opened: start afresh when closed; closed: a clean slate */
}

static int breaker_open_elapsed(const struct breaker *b, const struct breaker_config *c,
                                int64_t now_ms)
{
    return now_ms - b->opened_ms >= (int64_t)c->open_ms;
}

int breaker_allow(struct breaker *b, const struct breaker_config *c, int64_t now_ms, int *probe,
                  int *changed)
{
    int moved = 0, is_probe = 0, allowed = 0;
    if (b->state == BREAKER_OPEN && breaker_open_elapsed(b, c, now_ms)) {
        breaker_enter(b, BREAKER_HALF_OPEN, now_ms);
        moved = 1;
    }
    switch (b->state) {
    case BREAKER_CLOSED:
        allowed = 1;
        break;
    case BREAKER_OPEN:
        break;
    case BREAKER_HALF_OPEN:
        if (b->probes_out < breaker_at_least_1(c->probes)) {
            b->probes_out++;
            allowed = is_probe = 1;
        }
        break;
    }
    if (probe)
        *probe = is_probe;
    if (changed)
        *changed = moved;
    return allowed;
}

int breaker_refuses(const struct breaker *b, const struct breaker_config *c, int64_t now_ms)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        return 0;
    case BREAKER_OPEN:
        return !breaker_open_elapsed(b, c, now_ms);
    case BREAKER_HALF_OPEN:
        return b->probes_out >= breaker_at_least_1(c->probes);
    }
    return 0;
}

/* A closed-state outcome into the window; 1 when the ratio rule now holds. */
static int breaker_count(struct breaker *b, const struct breaker_config *c, int64_t now_ms,
                         enum breaker_outcome o)
{
    int64_t slot_ms = breaker_slot_ms(c);
    int64_t start = breaker_slot_start(now_ms, slot_ms);
    size_t i = breaker_slot_index(start, slot_ms);
    if (b->slot_start_ms[i] != start) {
        b->slot_start_ms[i] = start;
        b->ok[i] = b->failed[i] = 0;
    }
    if (o == BREAKER_FAILURE)
        b->failed[i]++;
    else
        b->ok[i]++;

    /* the window: the slots that started within the last BREAKER_SLOTS
     * slot lengths, the current one included */
    uint64_t ok = 0, failed = 0;
    int64_t span = slot_ms * BREAKER_SLOTS;
    for (size_t j = 0; j < BREAKER_SLOTS; j++) {
        if (b->slot_start_ms[j] == BREAKER_NO_SLOT || b->slot_start_ms[j] > start ||
            start - b->slot_start_ms[j] >= span)
            continue;
        ok += b->ok[j];
        failed += b->failed[j];
    }
    uint64_t total = ok + failed;
    return total > 0 && total >= c->min_calls &&
           failed * 100 >= (uint64_t)breaker_at_least_1(c->failure_percent) * total;
}

int breaker_record(struct breaker *b, const struct breaker_config *c, int64_t now_ms,
                   enum breaker_outcome o, int probe)
{
    switch (b->state) {
    case BREAKER_OPEN:
        return 0; /* started before it opened, or a probe of an earlier half open */
    case BREAKER_HALF_OPEN:
        if (!probe)
            return 0; /* started before it opened: the probes decide */
        if (o == BREAKER_IGNORE) {
            if (b->probes_out > 0)
                b->probes_out--;
            return 0;
        }
        breaker_enter(b, o == BREAKER_SUCCESS ? BREAKER_CLOSED : BREAKER_OPEN, now_ms);
        return 1;
    case BREAKER_CLOSED:
        break;
    }
    if (o == BREAKER_IGNORE)
        return 0; /* a 429 or the request's own fault: neither breaks nor mends a run */
    if (o == BREAKER_SUCCESS)
        b->consecutive = 0;
    else if (b->consecutive < UINT32_MAX)
        b->consecutive++;
    int ratio = breaker_count(b, c, now_ms, o);
    if (b->consecutive >= breaker_at_least_1(c->failures) || ratio) {
        breaker_enter(b, BREAKER_OPEN, now_ms);
        return 1;
    }
    return 0;
}

enum breaker_outcome breaker_classify(long http_status, int transport_error, int malformed)
{
    if (transport_error)
        return BREAKER_FAILURE; /* no answer, a timeout, or a body cut short */
    if (http_status >= 200 && http_status <= 299)
        return malformed ? BREAKER_FAILURE : BREAKER_SUCCESS;
    if (http_status >= 500 && http_status <= 599)
        return BREAKER_FAILURE; /* 500, 502, 503, 504, 529 overloaded ... */
    /* 429 is the rate limiter's; 400, 401, 403, 404, 413, 422 are the
     * request's or the key's; 0 without a transport error is a call we
     * cancelled ourselves: none says the provider is unwell */
    return BREAKER_IGNORE;
}

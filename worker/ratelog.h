/*
 * ratelog: a bound on log lines from repeating paths. Per cause, the first
 * occurrence is logged at once; later ones are logged at most once per
 * interval, and the line that is logged says how many were suppressed
 * since the previous one. Pure: the caller passes the time, so a table of
 * cases pins the behaviour (tests/data/ratelog/cases.txt).
 *
 * Not thread-safe: a caller on another thread holds its own lock.
 */
#ifndef SWITCHYARD_RATELOG_H
#define SWITCHYARD_RATELOG_H

#include <stddef.h>
#include <stdint.h>

/* One cause. Zero-initialised with an interval is ready to use:
 * struct ratelog r = {.interval_ms = 10000}; */
struct ratelog {
    uint64_t interval_ms;
    uint64_t last_ms;    /* when a line was last allowed */
    uint64_t suppressed; /* occurrences since then not logged */
    int seen;
};

/* One occurrence at now_ms. Returns 1 when the caller should log a line
 * now, with *suppressed set to how many occurrences were not logged since
 * the previous line (0 for the first); 0 when it should stay silent. */
int ratelog_allow(struct ratelog *r, uint64_t now_ms, uint64_t *suppressed);

#define RATELOG_MAX_KEYS 64

/* Several causes told apart by a short text key (an error name, a
 * provider/model pair). Past RATELOG_MAX_KEYS distinct keys, the rest
 * share one bucket: memory stays bounded whatever the input. */
struct ratelog_set {
    uint64_t interval_ms;
    size_t nkeys;
    struct {
        char key[96];
        struct ratelog r;
    } slots[RATELOG_MAX_KEYS];
    struct ratelog overflow;
};

int ratelog_allow_key(struct ratelog_set *s, const char *key, uint64_t now_ms,
                      uint64_t *suppressed);

#endif

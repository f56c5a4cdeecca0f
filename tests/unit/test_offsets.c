/*
 * offsets: the committable offset checked at every step against a
 * brute-force model (a plain array of per-offset flags), over random
 * arrival gaps and in-order, reverse and random completion orders;
 * refusals; bounded memory; commit metadata against an independent
 * encoder, round trips, caps, and hostile strings.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "offsets.h"

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ------------------------------------------------------------------ */
/* The model: one flag per offset from `start`, nothing clever. */

enum { UNTRACKED, PENDING, DONE };

struct model {
    int64_t start;
    unsigned char *flag; /* flag[k] for offset start + k */
    size_t span, size;   /* offsets used, allocated */
    int64_t *tracked;    /* the tracked offsets, in order */
    size_t ntracked, tracked_size;
    int64_t highest; /* highest tracked, or start - 1 */
    size_t cursor;   /* every flag below it is UNTRACKED or DONE */
    size_t pending;
};

static void model_init(struct model *m, int64_t start)
{
    memset(m, 0, sizeof *m);
    m->start = start;
    m->highest = start - 1;
}

static void model_release(struct model *m)
{
    free(m->flag);
    free(m->tracked);
}

static void model_track(struct model *m, int64_t offset)
{
    size_t k = (size_t)(offset - m->start);
    if (k >= m->size) {
        size_t size = m->size ? m->size : 1024;
        while (size <= k)
            size *= 2;
        m->flag = realloc(m->flag, size);
        if (!m->flag)
            abort();
        memset(m->flag + m->size, UNTRACKED, size - m->size);
        m->size = size;
    }
    if (m->ntracked == m->tracked_size) {
        m->tracked_size = m->tracked_size ? 2 * m->tracked_size : 1024;
        m->tracked = realloc(m->tracked, m->tracked_size * sizeof *m->tracked);
        if (!m->tracked)
            abort();
    }
    m->tracked[m->ntracked++] = offset;
    m->flag[k] = PENDING;
    m->span = k + 1;
    m->highest = offset;
    m->pending++;
}

static int model_state(const struct model *m, int64_t offset)
{
    if (offset < m->start || (size_t)(offset - m->start) >= m->span)
        return UNTRACKED;
    return m->flag[offset - m->start];
}

static void model_done(struct model *m, int64_t offset)
{
    m->flag[offset - m->start] = DONE;
    m->pending--;
}

/* index of the first tracked offset >= offset */
static size_t model_lower_bound(const struct model *m, int64_t offset)
{
    size_t lo = 0, hi = m->ntracked;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->tracked[mid] < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* held: every tracked offset from the first pending one */
static size_t model_held(const struct model *m, int64_t committable)
{
    return m->pending ? m->ntracked - model_lower_bound(m, committable) : 0;
}

/* committable, the slow way: scan every flag from the start */
static int64_t model_committable_scan(const struct model *m)
{
    for (size_t k = 0; k < m->span; k++)
        if (m->flag[k] == PENDING)
            return m->start + (int64_t)k;
    return m->highest + 1;
}

/* the same, from a cursor that only moves forward (offsets never rewind) */
static int64_t model_committable(struct model *m)
{
    while (m->cursor < m->span && m->flag[m->cursor] != PENDING)
        m->cursor++;
    return m->cursor < m->span ? m->start + (int64_t)m->cursor : m->highest + 1;
}

/* The safety property itself, over the whole model: nothing pending below
 * the committable offset, and it is not past the highest tracked + 1. */
static int model_safe(const struct model *m, int64_t committable)
{
    if (committable > m->highest + 1 || committable < m->start)
        return 0;
    for (size_t k = 0; k < m->span && m->start + (int64_t)k < committable; k++)
        if (m->flag[k] == PENDING)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* An encoder of the metadata format written from the format's text, and
 * the ranges it should hold, from the model. */

struct range {
    int64_t first, count;
};

/* Done ranges above the committable offset: runs of done tracked offsets
 * not separated by a pending one (untracked offsets inside a run belong to
 * it). Returns how many (at most max). */
static size_t model_ranges(const struct model *m, int64_t committable, struct range *r, size_t max)
{
    size_t n = 0;
    int open = 0;
    for (size_t i = model_lower_bound(m, committable); i < m->ntracked; i++) {
        int64_t off = m->tracked[i];
        int s = model_state(m, off);
        if (s == PENDING) {
            open = 0;
        } else if (s == DONE) {
            if (!open) {
                if (n == max)
                    abort();
                r[n].first = off;
                r[n].count = 0;
                n++;
                open = 1;
            }
            r[n - 1].count = off - r[n - 1].first + 1;
        }
    }
    return n;
}

static size_t spell36(uint64_t v, char *out)
{
    /* digits by repeated division, written right to left */
    char tmp[32];
    char *p = tmp + sizeof tmp;
    *--p = '\0';
    do {
        int d = (int)(v % 36);
        *--p = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= 36;
    } while (v);
    size_t n = strlen(p);
    memcpy(out, p, n);
    return n;
}

/* The metadata string for ranges r at committed with room for cap - 1
 * bytes; *fit = how many ranges made it. */
static size_t spell_metadata(const struct range *r, size_t n, int64_t committed, size_t cap,
                             char *out, size_t *fit)
{
    *fit = 0;
    if (cap == 0)
        return 0;
    out[0] = '\0';
    if (cap < 5)
        return 0;
    size_t len = (size_t)sprintf(out, "sy1:");
    int64_t end = committed;
    for (size_t i = 0; i < n; i++) {
        char item[64];
        size_t k = 0;
        if (i > 0)
            item[k++] = ',';
        k += spell36((uint64_t)(r[i].first - end), item + k);
        item[k++] = '+';
        k += spell36((uint64_t)r[i].count, item + k);
        if (len + k > cap - 1)
            break;
        memcpy(out + len, item, k);
        len += k;
        out[len] = '\0';
        end = r[i].first + r[i].count;
        (*fit)++;
    }
    return len;
}

static int printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '!' || s[i] > '~')
            return 0;
    return 1;
}

/* Checks o's metadata at one cap against the model. Returns the number of
 * problems; *truncated set when not every range fitted. */
static int check_metadata(const struct offsets *o, const struct model *m, size_t cap,
                          int *truncated)
{
    enum { MAXR = 1 << 16 };
    static struct range want[MAXR];
    static struct offsets_range got[MAXR];
    static char md[8192], spelt[8192];
    int bad = 0;
    int64_t committed = offsets_committable(o);
    size_t nwant = model_ranges(m, committed, want, MAXR), fit;
    size_t slen = spell_metadata(want, nwant, committed, cap, spelt, &fit);
    memset(md, 'X', sizeof md);
    size_t len = offsets_encode_metadata(o, md, cap);
    if (cap == 0)
        return len != 0 || md[0] != 'X';
    if (len >= cap || md[len] != '\0' || !printable(md, len))
        bad++;
    if (len != slen || memcmp(md, spelt, len) != 0)
        bad++;
    *truncated = fit < nwant;
    if (cap < 5)
        return bad + (len != 0);
    int n = offsets_decode_metadata(md, len, committed, got, MAXR);
    if (n < 0 || (size_t)n != fit)
        return bad + 1;
    for (size_t i = 0; i < fit; i++)
        if (got[i].first != want[i].first || got[i].count != want[i].count)
            bad++;
    /* what matters to the next owner: nothing pending is said to be done */
    for (size_t i = 0; i < fit; i++)
        for (int64_t off = got[i].first; off < got[i].first + got[i].count; off++)
            if (model_state(m, off) == PENDING)
                bad++;
    return bad;
}

/* ------------------------------------------------------------------ */

static void test_offsets_rules(void)
{
    ok(offsets_new(-1) == NULL, "a negative start is refused");
    offsets_free(NULL);
    struct offsets *o = offsets_new(5);
    ok(o != NULL, "new");
    ok(offsets_committable(o) == 5 && offsets_pending(o) == 0 && offsets_held(o) == 0,
       "nothing tracked: commit the start");
    ok(offsets_track(o, 4) == -1, "below the start is a rewind");
    ok(offsets_track(o, -3) == -1, "a negative offset is refused");
    ok(offsets_track(o, 5) == 0 && offsets_track(o, 9) == 0, "track 5 and 9 (a gap)");
    ok(offsets_track(o, 9) == -1, "a repeat is refused");
    ok(offsets_track(o, 7) == -1, "a rewind into the gap is refused");
    ok(offsets_track(o, 5) == -1, "a rewind to the first is refused");
    ok(offsets_pending(o) == 2 && offsets_held(o) == 2 && offsets_committable(o) == 5,
       "refusals change nothing");
    ok(offsets_done(o, 6) == -1, "an untracked offset in a gap cannot be done");
    ok(offsets_done(o, 4) == -1 && offsets_done(o, 10) == -1,
       "offsets below and above the window cannot be done");
    ok(offsets_done(o, 9) == 0, "9 done");
    ok(offsets_done(o, 9) == -1, "done twice refused");
    ok(offsets_committable(o) == 5, "5 still pending: commit 5, not past it");
    ok(offsets_pending(o) == 1 && offsets_held(o) == 2, "one pending, two held");
    ok(offsets_done(o, 5) == 0 && offsets_committable(o) == 10,
       "all done: commit one past the highest (the gap is skipped)");
    ok(offsets_pending(o) == 0 && offsets_held(o) == 0, "nothing held");
    ok(offsets_done(o, 5) == -1, "a dropped done offset cannot be done again");
    ok(offsets_track(o, 9) == -1 && offsets_track(o, 10) == 0, "after the drop: order kept");
    ok(offsets_track(o, INT64_MAX) == -1, "INT64_MAX is refused (no offset after it)");
    ok(offsets_track(o, INT64_MAX - 1) == 0, "INT64_MAX - 1 is tracked");
    ok(offsets_done(o, INT64_MAX - 1) == 0 && offsets_committable(o) == 10,
       "10 pending below INT64_MAX - 1");
    ok(offsets_done(o, 10) == 0 && offsets_committable(o) == INT64_MAX,
       "then the commit is INT64_MAX");
    offsets_free(o);

    o = offsets_new(0);
    ok(offsets_committable(o) == 0 && offsets_capacity(o) == 0, "no ring before the first track");
    ok(offsets_track(o, 0) == 0 && offsets_done(o, 0) == 0 && offsets_committable(o) == 1,
       "offset 0");
    offsets_free(o);
}

/* Tracks n offsets with random gaps from start; returns them (malloc'd). */
static int64_t *track_with_gaps(struct offsets *o, struct model *m, int64_t start, size_t n,
                                int *wrong)
{
    int64_t *offs = malloc(n * sizeof *offs);
    int64_t off = start;
    for (size_t i = 0; i < n; i++) {
        off += (i == 0) ? 0 : 1 + (rng() % 4 == 0 ? (int64_t)(rng() % 6) : 0);
        offs[i] = off;
        *wrong += offsets_track(o, off) != 0;
        model_track(m, off);
    }
    return offs;
}

static void test_offsets_in_order(void)
{
    const size_t n = 100000;
    struct offsets *o = offsets_new(100);
    struct model m;
    model_init(&m, 100);
    int wrong = 0;
    int64_t *offs = track_with_gaps(o, &m, 100, n, &wrong);
    ok(wrong == 0, "in order: %zu offsets with gaps tracked", n);
    for (size_t i = 0; i < n; i++) {
        wrong += offsets_done(o, offs[i]) != 0;
        model_done(&m, offs[i]);
        int64_t want = i + 1 < n ? offs[i + 1] : offs[n - 1] + 1;
        wrong += offsets_committable(o) != want;
        wrong += offsets_committable(o) != model_committable(&m);
        wrong += offsets_held(o) != n - 1 - i || offsets_pending(o) != n - 1 - i;
    }
    ok(wrong == 0, "in order: committable is the next tracked one at every step (%d wrong)", wrong);
    ok(offsets_committable(o) == model_committable_scan(&m), "in order: the scan agrees");
    ok(offsets_capacity(o) == 64, "in order: the ring shrank back to its minimum (%zu)",
       offsets_capacity(o));
    free(offs);
    model_release(&m);
    offsets_free(o);
}

static void test_offsets_reverse_order(void)
{
    const size_t n = 100000;
    struct offsets *o = offsets_new(7);
    struct model m;
    model_init(&m, 7);
    int wrong = 0;
    int64_t *offs = track_with_gaps(o, &m, 9, n, &wrong);
    ok(wrong == 0 && offsets_committable(o) == 9,
       "reverse: tracked, the commit waits at the first");
    for (size_t i = n; i-- > 0;) {
        wrong += offsets_done(o, offs[i]) != 0;
        model_done(&m, offs[i]);
        int64_t want = i > 0 ? offs[0] : offs[n - 1] + 1;
        wrong += offsets_committable(o) != want;
        wrong += offsets_committable(o) != model_committable(&m);
        wrong += offsets_pending(o) != i;
        wrong += offsets_held(o) != (i > 0 ? n : 0);
    }
    ok(wrong == 0, "reverse: nothing committable until the first is done (%d wrong)", wrong);
    ok(offsets_committable(o) == offs[n - 1] + 1 && offsets_held(o) == 0,
       "reverse: then one past the highest, nothing held");
    ok(offsets_capacity(o) == 64, "reverse: the ring shrank back to its minimum (%zu)",
       offsets_capacity(o));
    free(offs);
    model_release(&m);
    offsets_free(o);
}

/* Random tracks, completions and refused operations against the model.
 * window: the most pending at once (0: unbounded). */
static void run_random(int64_t start, int ops, size_t window, int track_percent, const char *name)
{
    struct offsets *o = offsets_new(start);
    struct model m;
    model_init(&m, start);
    int64_t *pend = malloc((size_t)ops * sizeof *pend); /* pending offsets, any order */
    size_t npend = 0;
    int64_t next = start;
    int wrong = 0, unsafe = 0, refusals = 0, memory = 0, mdbad = 0, truncated_rounds = 0;
    size_t max_held = 0;
    for (int op = 0; op < ops; op++) {
        uint64_t r = rng() % 100;
        int full = window && npend >= window;
        if (r < 3) {
            /* refused: a rewind or repeat, a done twice, an untracked one */
            int64_t c = offsets_committable(o);
            size_t held = offsets_held(o), pending = offsets_pending(o);
            if (m.highest >= start)
                wrong += offsets_track(o, m.highest - (int64_t)(rng() % 3)) != -1;
            int64_t probe = start + (int64_t)(rng() % (uint64_t)(next - start + 2));
            if (model_state(&m, probe) != PENDING)
                wrong += offsets_done(o, probe) != -1;
            wrong += offsets_committable(o) != c || offsets_held(o) != held ||
                     offsets_pending(o) != pending;
            refusals++;
        } else if (npend == 0 || (!full && r < (uint64_t)track_percent)) {
            if (m.highest >= start)
                next = m.highest + 1 + (rng() % 4 == 0 ? (int64_t)(rng() % 9) : 0);
            wrong += offsets_track(o, next) != 0;
            model_track(&m, next);
            pend[npend++] = next;
        } else {
            size_t i = (size_t)(rng() % npend);
            int64_t off = pend[i];
            pend[i] = pend[--npend];
            wrong += offsets_done(o, off) != 0;
            model_done(&m, off);
        }
        int64_t c = offsets_committable(o);
        wrong += c != model_committable(&m);
        wrong += offsets_pending(o) != m.pending;
        wrong += offsets_held(o) != model_held(&m, c);
        /* memory follows what is held: at least a quarter used */
        size_t cap = offsets_capacity(o);
        memory += cap > 64 && cap > 4 * offsets_held(o);
        if (offsets_held(o) > max_held)
            max_held = offsets_held(o);
        if (op % 1000 == 999) {
            unsafe += !model_safe(&m, c);
            wrong += c != model_committable_scan(&m);
        }
        if (op % 997 == 0) {
            int t1 = 0, t2 = 0;
            mdbad += check_metadata(o, &m, 4000, &t1);
            mdbad += check_metadata(o, &m, (size_t)(rng() % 60), &t2);
            truncated_rounds += t2;
        }
    }
    ok(wrong == 0, "%s: committable, pending and held match the model over %d ops (%d wrong)", name,
       ops, wrong);
    ok(unsafe == 0, "%s: never past a pending offset (%d)", name, unsafe);
    ok(refusals > 0, "%s: %d rounds of refused operations changed nothing", name, refusals);
    ok(memory == 0, "%s: the ring is never more than 4x what it holds (%d)", name, memory);
    ok(mdbad == 0, "%s: metadata matches the model along the way (%d bad)", name, mdbad);
    ok(window == 0 || max_held > window / 2, "%s: the window filled (%zu held at most)", name,
       max_held);
    (void)truncated_rounds;
    /* drain: the commit then reaches one past the highest */
    while (npend) {
        int64_t off = pend[--npend];
        offsets_done(o, off);
        model_done(&m, off);
    }
    ok(offsets_committable(o) == m.highest + 1 && offsets_held(o) == 0 && offsets_capacity(o) <= 64,
       "%s: drained, committable one past the highest, ring back to its minimum", name);
    free(pend);
    model_release(&m);
    offsets_free(o);
}

static void test_offsets_random(void)
{
    run_random(1000, 400000, 0, 52, "random, unbounded");
    run_random(0, 300000, 256, 60, "random, 256 in flight");
    run_random(5, 300000, 5000, 55, "random, 5000 in flight");
    run_random((int64_t)1 << 60, 200000, 3, 50, "random, 3 in flight, offsets near 2^60");
}

static void test_offsets_bounded(void)
{
    struct offsets *o = offsets_new(0);
    size_t max_held = 0, max_cap = 0;
    for (int64_t i = 0; i < 1000000; i++) {
        offsets_track(o, i);
        if (i >= 8)
            offsets_done(o, i - 8); /* 8 in flight, finishing in order */
        if (offsets_held(o) > max_held)
            max_held = offsets_held(o);
        if (offsets_capacity(o) > max_cap)
            max_cap = offsets_capacity(o);
    }
    ok(max_held <= 9, "1e6 messages with 8 in flight hold at most 9 entries (%zu)", max_held);
    ok(max_cap == 64, "and the ring never grows past its minimum of 64 (%zu)", max_cap);
    ok(offsets_committable(o) == 1000000 - 8, "committable follows");

    /* a burst: 200000 in flight, finished in random order, then back to
     * a trickle: the memory is given back */
    int64_t base = 2000000;
    size_t n = 200000;
    int64_t *pend = malloc(n * sizeof *pend);
    for (int64_t i = 1000000 - 8; i < 1000000; i++)
        offsets_done(o, i);
    for (size_t i = 0; i < n; i++) {
        pend[i] = base + (int64_t)i * 3;
        offsets_track(o, pend[i]);
    }
    ok(offsets_capacity(o) >= n && offsets_capacity(o) <= 2 * n, "burst: the ring grew (%zu)",
       offsets_capacity(o));
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng() % i);
        int64_t t = pend[j];
        pend[j] = pend[i - 1];
        pend[i - 1] = t;
    }
    int shrank_in_time = 1;
    for (size_t i = 0; i < n; i++) {
        offsets_done(o, pend[i]);
        size_t cap = offsets_capacity(o);
        if (cap > 64 && cap > 4 * offsets_held(o))
            shrank_in_time = 0;
    }
    ok(shrank_in_time, "burst: the ring shrinks as the window drains");
    ok(offsets_held(o) == 0 && offsets_capacity(o) == 64 &&
           offsets_committable(o) == base + (int64_t)(n - 1) * 3 + 1,
       "burst: drained to the minimum ring, commit past the last");
    free(pend);
    offsets_free(o);
}

/* ------------------------------------------------------------------ */
/* Metadata */

/* Builds a window whose metadata is the given ranges at committed:
 * committed pending, each range's ends done, a pending offset between
 * ranges (the format's gaps are >= 1, so there is room for it). */
static struct offsets *window_of(int64_t committed, const struct offsets_range *r, size_t n)
{
    struct offsets *o = offsets_new(committed);
    if (n > 0)
        offsets_track(o, committed);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            offsets_track(o, r[i - 1].first + r[i - 1].count);
        int64_t last = r[i].first + r[i].count - 1;
        offsets_track(o, r[i].first);
        offsets_done(o, r[i].first);
        if (last != r[i].first) {
            offsets_track(o, last);
            offsets_done(o, last);
        }
    }
    return o;
}

static void test_offsets_metadata_model(void)
{
    int bad = 0, truncated = 0, full = 0, rounds = 3000;
    for (int round = 0; round < rounds; round++) {
        int64_t start = round % 10 == 0 ? INT64_MAX - 100000000 - (int64_t)(rng() % 1000)
                                        : (int64_t)(rng() % 1000000);
        struct offsets *o = offsets_new(start);
        struct model m;
        model_init(&m, start);
        size_t n = 1 + (size_t)(rng() % 600);
        int percent = 10 + (int)(rng() % 90);
        int64_t off = start + (int64_t)(rng() % 3);
        /* some windows with long gaps (compacted logs): long gap numbers */
        int64_t maxgap = round % 20 == 0 ? 100000 : 40;
        for (size_t i = 0; i < n; i++) {
            off += 1 + (rng() % 8 == 0 ? (int64_t)(rng() % (uint64_t)maxgap) : 0);
            offsets_track(o, off);
            model_track(&m, off);
        }
        for (size_t i = 0; i < m.ntracked; i++)
            if ((int)(rng() % 100) < percent) {
                offsets_done(o, m.tracked[i]);
                model_done(&m, m.tracked[i]);
            }
        int t = 0;
        bad += check_metadata(o, &m, 4000, &t);
        full += !t;
        bad += check_metadata(o, &m, (size_t)(rng() % 120), &t);
        truncated += t;
        model_release(&m);
        offsets_free(o);
    }
    ok(bad == 0,
       "metadata: %d random windows, encoded as the format says, printable, under the cap, "
       "decoded back to the same ranges (%d bad)",
       rounds, bad);
    ok(full > rounds / 2, "most fit whole in 4000 bytes (%d)", full);
    ok(truncated > rounds / 4, "small caps keep a prefix of the ranges (%d rounds)", truncated);
}

static void test_offsets_metadata_limits(void)
{
    /* the worst case: done and pending alternating, 5000 of each */
    struct offsets *o = offsets_new(0);
    for (int64_t i = 0; i < 10000; i++)
        offsets_track(o, i);
    for (int64_t i = 1; i < 10000; i += 2)
        offsets_done(o, i);
    char md[4096];
    size_t len = offsets_encode_metadata(o, md, 4000);
    ok(len <= 3999 && len > 3990 && strlen(md) == len,
       "5000 ranges: capped at 3999 bytes, nearly full (%zu)", len);
    struct offsets_range r[1200];
    int n = offsets_decode_metadata(md, len, 0, r, 1200);
    int good = n > 900;
    for (int i = 0; good && i < n; i++)
        good = r[i].first == 2 * i + 1 && r[i].count == 1;
    ok(good, "5000 ranges: a prefix of %d decodes exactly", n);
    ok(offsets_decode_metadata(md, len, 0, r, 1000) == n, "the consumer's 1000 slots hold them");
    ok(offsets_decode_metadata(md, len, 0, r, 10) == 10 && r[9].first == 19,
       "fewer slots: the first ones, in order");
    ok(offsets_decode_metadata(md, len, 0, r, 0) == 0, "no slots: 0, still checked");
    char tiny[8];
    memset(tiny, 'X', sizeof tiny);
    ok(offsets_encode_metadata(o, tiny, 4) == 0 && tiny[0] == '\0', "cap 4: an empty string");
    ok(offsets_encode_metadata(o, tiny, 5) == 4 && strcmp(tiny, "sy1:") == 0,
       "cap 5: the header only");
    ok(offsets_encode_metadata(o, tiny, 8) == 7 && strcmp(tiny, "sy1:1+1") == 0,
       "cap 8: one range");
    memset(tiny, 'X', sizeof tiny);
    ok(offsets_encode_metadata(o, tiny, 0) == 0 && tiny[0] == 'X', "cap 0: nothing written");
    offsets_free(o);

    /* at the top of the offset space */
    o = offsets_new(INT64_MAX - 10);
    offsets_track(o, INT64_MAX - 10);
    offsets_track(o, INT64_MAX - 3);
    offsets_track(o, INT64_MAX - 1);
    offsets_done(o, INT64_MAX - 3);
    offsets_done(o, INT64_MAX - 1);
    len = offsets_encode_metadata(o, md, sizeof md);
    ok(strcmp(md, "sy1:7+3") == 0, "near INT64_MAX: \"%s\"", md);
    n = offsets_decode_metadata(md, len, INT64_MAX - 10, r, 4);
    ok(n == 1 && r[0].first == INT64_MAX - 3 && r[0].count == 3, "and back");
    offsets_free(o);

    /* the largest numbers the format allows */
    char big[64];
    snprintf(big, sizeof big, "sy1:1y2p0ij32e8e7+1"); /* INT64_MAX in base 36 */
    ok(offsets_decode_metadata(big, strlen(big), 0, r, 4) == -1,
       "a range ending past INT64_MAX is refused");
    snprintf(big, sizeof big, "sy1:1y2p0ij32e8e6+1");
    n = offsets_decode_metadata(big, strlen(big), 0, r, 4);
    ok(n == 1 && r[0].first == INT64_MAX - 1 && r[0].count == 1, "one ending at INT64_MAX is not");
    snprintf(big, sizeof big, "sy1:1+1y2p0ij32e8e6");
    n = offsets_decode_metadata(big, strlen(big), 0, r, 4);
    ok(n == 1 && r[0].first == 1 && r[0].count == INT64_MAX - 1, "a range of INT64_MAX - 1");
    ok(offsets_decode_metadata(big, strlen(big), 1, r, 4) == -1, "which cannot start at 2");
}

/* s with bytes outside printable ASCII as \xNN, for messages */
static const char *escape(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= ' ' && c <= '~')
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
    }
    out[n] = '\0';
    return out;
}

static void test_offsets_metadata_known(void)
{
    struct offsets_range r[8];
    ok(offsets_decode_metadata("sy1:", 4, 10, r, 4) == 0, "no ranges");
    ok(offsets_decode_metadata("sy1:2+3,a+1", 11, 10, r, 4) == 2 && r[0].first == 12 &&
           r[0].count == 3 && r[1].first == 25 && r[1].count == 1,
       "ranges are relative: 12..14, then 25");
    ok(offsets_decode_metadata("sy1:2+3,a+1 trailing", 11, 10, r, 4) == 2,
       "only len bytes are read");
    ok(offsets_decode_metadata("sy1:1+1,1+1,1+1,1+1,1+1", 23, 0, r, 4) == 4 && r[3].first == 7,
       "more ranges than slots: the first ones");
    ok(offsets_decode_metadata("sy1:1+1,1+1,1+1,1+1,1+", 22, 0, r, 4) == -1,
       "but the whole string is checked");
    ok(offsets_decode_metadata("sy1:2+3", 7, -1, r, 4) == -1, "a negative commit is refused");

    /* the encoder writes the example of the header */
    struct offsets *o = offsets_new(10);
    for (int64_t x = 10; x <= 26; x++)
        if (x != 11 && x != 20)
            offsets_track(o, x);
    for (int64_t x = 12; x <= 14; x++)
        offsets_done(o, x);
    offsets_done(o, 25);
    char md[64];
    offsets_encode_metadata(o, md, sizeof md);
    ok(strcmp(md, "sy1:2+3,a+1") == 0, "10 pending, 12..14 and 25 done: \"%s\"", md);
    offsets_done(o, 10);
    offsets_encode_metadata(o, md, sizeof md);
    ok(offsets_committable(o) == 15 && strcmp(md, "sy1:a+1") == 0,
       "10 done: commit 15, metadata relative to it: \"%s\"", md);
    /* 19 done, 20 never delivered, 21 done: one range across the gap */
    offsets_done(o, 19);
    offsets_done(o, 21);
    offsets_encode_metadata(o, md, sizeof md);
    ok(strcmp(md, "sy1:4+3,3+1") == 0, "a range spans a gap in the log: \"%s\"", md);
    offsets_free(o);

    static const char *const hostile[] = {
        "",
        "sy1",
        "sy2:1+1",
        "SY1:1+1",
        "sy1;1+1",
        "sy1:+1",
        "sy1:1+",
        "sy1:1",
        "sy1:1+1+1",
        "sy1:1+0",
        "sy1:0+1",
        "sy1:01+1",
        "sy1:1+01",
        "sy1:00+1",
        "sy1:1+1,",
        "sy1:,1+1",
        "sy1:1+1,,1+1",
        "sy1:1+1;2+2",
        "sy1: 1+1",
        "sy1:1+1 ",
        "sy1:1+1\n",
        "sy1:A+1",
        "sy1:1+B",
        "sy1:-1+1",
        "sy1:1+-1",
        "sy1:1-1",
        "sy1:zzzzzzzzzzzzzz+1",
        "sy1:1+zzzzzzzzzzzzzz",
        "sy1:1y2p0ij32e8e8+1",
        "sy1:1+1,1y2p0ij32e8e6+1",
        " sy1:1+1",
        "sy1:\xc3\xa9+1",
        "sy1:1+1,\x7f",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        char shown[128];
        ok(offsets_decode_metadata(hostile[i], strlen(hostile[i]), 0, r, 4) == -1,
           "malformed metadata refused: \"%s\"", escape(hostile[i], shown, sizeof shown));
    }
    ok(offsets_decode_metadata("sy1:1+1\0", 8, 0, r, 4) == -1, "an embedded NUL is refused");
    ok(offsets_decode_metadata("sy1:\0+1", 7, 0, r, 4) == -1, "a NUL as a digit is refused");
    ok(offsets_decode_metadata(NULL, 0, 0, r, 4) == -1, "NULL is refused");
    ok(offsets_decode_metadata("sy1:1+1", 3, 0, r, 4) == -1, "a cut header is refused");
    ok(offsets_decode_metadata("sy1:1+1", 6, 0, r, 4) == -1, "a cut range is refused");
}

/* Random strings near the format: the decoder refuses them or returns
 * ranges that are sorted, disjoint, above the commit, in range, and that
 * the encoder spells back byte for byte. */
static void test_offsets_metadata_random_strings(void)
{
    static const char alphabet[] = "sy1:+,0129az+,+,  AZ-\x01\xff";
    int bad = 0, accepted = 0, with_ranges = 0, rounds = 200000;
    char s[64], back[128];
    struct offsets_range r[32];
    for (int round = 0; round < rounds; round++) {
        size_t len = 0;
        if (rng() % 8)
            len = (size_t)sprintf(s, "sy1:");
        if (rng() % 2) {
            /* noise */
            size_t extra = (size_t)(rng() % 24);
            for (size_t i = 0; i < extra && len < sizeof s; i++)
                s[len++] = alphabet[rng() % (sizeof alphabet - 1)];
        } else {
            /* ranges of random digits (long ones overflow), then perhaps
             * one byte changed or the end cut */
            size_t items = (size_t)(rng() % 5);
            for (size_t i = 0; i < items && len + 32 < sizeof s; i++) {
                if (i > 0)
                    s[len++] = ',';
                for (int half = 0; half < 2; half++) {
                    size_t digits = 1 + (size_t)(rng() % (rng() % 8 ? 3 : 14));
                    for (size_t d = 0; d < digits; d++)
                        s[len++] = "0123456789abcdefghijklmnopqrstuvwxyz"[rng() % 36];
                    if (half == 0)
                        s[len++] = '+';
                }
            }
            if (len > 0 && rng() % 4 == 0)
                s[rng() % len] = alphabet[rng() % (sizeof alphabet - 1)];
            if (len > 0 && rng() % 8 == 0)
                len = (size_t)(rng() % len);
        }
        int64_t committed =
            rng() % 5 == 0 ? INT64_MAX - (int64_t)(rng() % 1000) : (int64_t)(rng() % 1000);
        int n = offsets_decode_metadata(s, len, committed, r, 32);
        if (n < 0)
            continue;
        accepted++;
        with_ranges += n > 0;
        int64_t end = committed;
        for (int i = 0; i < n; i++) {
            if (r[i].first <= end || r[i].count < 1 || r[i].count > INT64_MAX - r[i].first)
                bad++;
            end = r[i].first + r[i].count;
        }
        if (n < 32) {
            struct offsets *o = window_of(committed, r, (size_t)n);
            size_t blen = offsets_encode_metadata(o, back, sizeof back);
            bad += offsets_committable(o) != committed;
            bad += blen != len || memcmp(back, s, len) != 0;
            offsets_free(o);
        }
    }
    ok(bad == 0, "random strings: accepted ones are well-formed and spelt back (%d bad)", bad);
    ok(accepted < rounds && with_ranges > 1000,
       "random strings: %d of %d accepted, %d of them with ranges", accepted, rounds, with_ranges);
}

static void test_offsets_ranges_contain(void)
{
    struct offsets_range r[64];
    int bad = 0;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(rng() % 64);
        int64_t at = (int64_t)(rng() % 50);
        for (size_t i = 0; i < n; i++) {
            at += 1 + (int64_t)(rng() % 10);
            r[i].first = at;
            r[i].count = 1 + (int64_t)(rng() % 5);
            at += r[i].count;
        }
        for (int64_t x = 0; x < at + 5; x++) {
            int want = 0;
            for (size_t i = 0; i < n; i++)
                want |= x >= r[i].first && x < r[i].first + r[i].count;
            bad += offsets_ranges_contain(r, n, x) != want;
        }
    }
    ok(bad == 0, "ranges_contain agrees with a linear scan (%d bad)", bad);
    ok(!offsets_ranges_contain(NULL, 0, 5), "no ranges contain nothing");
    struct offsets_range top = {INT64_MAX - 2, 2};
    ok(offsets_ranges_contain(&top, 1, INT64_MAX - 1) && !offsets_ranges_contain(&top, 1, 0) &&
           !offsets_ranges_contain(&top, 1, INT64_MAX),
       "ranges_contain at the top of the offset space");
}

/* What a new owner does: decode the commit's metadata, and mark done the
 * offsets it lists as they arrive; the commit then reaches where the old
 * owner's work ended, without redoing any of it. */
static void test_offsets_handover(void)
{
    struct offsets *old = offsets_new(100);
    for (int64_t x = 100; x < 200; x++)
        offsets_track(old, x);
    for (int64_t x = 101; x < 200; x++)
        if (x % 7 != 0)
            offsets_done(old, x);
    char md[4000];
    size_t len = offsets_encode_metadata(old, md, sizeof md);
    int64_t committed = offsets_committable(old);
    struct offsets_range r[1000];
    int n = offsets_decode_metadata(md, len, committed, r, 1000);
    struct offsets *fresh = offsets_new(committed);
    int redone = 0, wrong = 0;
    for (int64_t x = committed; x < 200; x++) {
        offsets_track(fresh, x);
        if (n > 0 && offsets_ranges_contain(r, (size_t)n, x))
            wrong += offsets_done(fresh, x) != 0 || offsets_done(old, x) != -1;
        else
            redone++;
    }
    ok(committed == 100 && redone == 15, "handover: only the unfinished 15 are redone (%d)",
       redone);
    ok(wrong == 0, "handover: every skipped one was done by the old owner");
    offsets_free(old);
    offsets_free(fresh);
}

void test_offsets(void)
{
    test_offsets_rules();
    test_offsets_in_order();
    test_offsets_reverse_order();
    test_offsets_random();
    test_offsets_bounded();
    test_offsets_metadata_known();
    test_offsets_metadata_limits();
    test_offsets_metadata_model();
    test_offsets_metadata_random_strings();
    test_offsets_ranges_contain();
    test_offsets_handover();
}

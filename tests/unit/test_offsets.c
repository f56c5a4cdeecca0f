/*
 * offsets: the committable offset checked at every step against a
 * brute-force model, over random arrival gaps and completion orders;
 * bounded memory; commit metadata round trips.
 */
#include <stdint.h>
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

#define MODEL_MAX 200000

/* brute force: the tracked offsets and their flags, in arrival order */
static int64_t model_off[MODEL_MAX];
static unsigned char model_done[MODEL_MAX];
static size_t model_n;

static int64_t model_committable(int64_t start)
{
    for (size_t i = 0; i < model_n; i++)
        if (!model_done[i])
            return model_off[i];
    return model_n ? model_off[model_n - 1] + 1 : start;
}

static void test_offsets_random(void)
{
    const int64_t start = 1000;
    struct offsets *o = offsets_new(start);
    int64_t next = start;
    size_t first_open = 0; /* model entries before this are all done */
    int wrong = 0, ops = 0;
    size_t model_pending = 0;
    ok(offsets_committable(o) == start, "nothing tracked: commit the start");
    while (model_n < MODEL_MAX && ops < 400000) {
        ops++;
        int track = (rng() % 100) < 52 || first_open == model_n;
        if (track) {
            next += 1 + (int64_t)(rng() % 4 == 0 ? rng() % 5 : 0); /* gaps */
            if (offsets_track(o, next) != 0)
                wrong++;
            model_off[model_n] = next;
            model_done[model_n++] = 0;
            model_pending++;
        } else {
            /* finish a random pending one, biased to recent ones */
            size_t span = model_n - first_open;
            size_t i = first_open + (size_t)(rng() % span);
            while (model_done[i])
                i = first_open + (size_t)(rng() % span);
            if (offsets_done(o, model_off[i]) != 0)
                wrong++;
            model_done[i] = 1;
            model_pending--;
            while (first_open < model_n && model_done[first_open])
                first_open++;
        }
        if (offsets_committable(o) != model_committable(start))
            wrong++;
        if (offsets_pending(o) != model_pending)
            wrong++;
    }
    ok(wrong == 0, "committable and pending match the model over %d random ops (%d wrong)",
       ops, wrong);
    ok(offsets_held(o) == model_n - first_open, "only entries from the first pending are held");
    offsets_free(o);
}

static void test_offsets_rules(void)
{
    struct offsets *o = offsets_new(5);
    ok(offsets_track(o, 4) == -1, "below the start is a rewind");
    ok(offsets_track(o, 5) == 0 && offsets_track(o, 9) == 0, "track 5 and 9 (a gap)");
    ok(offsets_track(o, 9) == -1 && offsets_track(o, 7) == -1, "repeats and rewinds refused");
    ok(offsets_done(o, 6) == -1, "an untracked offset cannot be done");
    ok(offsets_done(o, 9) == 0, "9 done");
    ok(offsets_done(o, 9) == -1, "done twice refused");
    ok(offsets_committable(o) == 5, "5 still pending: commit 5");
    ok(offsets_done(o, 5) == 0 && offsets_committable(o) == 10,
       "all done: commit one past the highest (the gap is skipped)");
    ok(offsets_pending(o) == 0 && offsets_held(o) == 0, "nothing held");
    offsets_free(o);
    offsets_free(NULL);
}

static void test_offsets_bounded(void)
{
    struct offsets *o = offsets_new(0);
    size_t max_held = 0;
    for (int64_t i = 0; i < 1000000; i++) {
        offsets_track(o, i);
        if (i >= 8)
            offsets_done(o, i - 8); /* 8 in flight, finishing in order */
        if (offsets_held(o) > max_held)
            max_held = offsets_held(o);
    }
    ok(max_held <= 9, "1e6 messages with 8 in flight hold at most 9 entries (%zu)", max_held);
    ok(offsets_committable(o) == 1000000 - 8, "committable follows");
    offsets_free(o);
}

static void test_offsets_metadata(void)
{
    int bad = 0, truncated = 0;
    for (int round = 0; round < 2000; round++) {
        struct offsets *o = offsets_new(0);
        int64_t off = (int64_t)(rng() % 1000000);
        int n = 2 + (int)(rng() % 400);
        int64_t *tracked = malloc((size_t)n * sizeof *tracked);
        for (int i = 0; i < n; i++) {
            off += 1 + (int64_t)(rng() % 3 == 0 ? rng() % 1000 : 0);
            tracked[i] = off;
            offsets_track(o, off);
        }
        for (int i = 1; i < n; i++) /* the first stays pending */
            if (rng() % 3)
                offsets_done(o, tracked[i]);
        size_t cap = round % 2 ? 4000 : 8 + (size_t)(rng() % 60);
        char md[4000];
        size_t len = offsets_encode_metadata(o, md, cap);
        if (len >= cap || strlen(md) != len || memcmp(md, "sy1:", 4) != 0)
            bad++;
        for (size_t i = 0; i < len; i++)
            if (md[i] < '!' || md[i] > '~')
                bad++;
        struct offsets_range r[512];
        int nr = offsets_decode_metadata(md, len, offsets_committable(o), r, 512);
        if (nr < 0) {
            bad++;
        } else {
            /* every decoded offset that is a tracked one must be done; and
             * with room enough, every done one must be decoded */
            int64_t covered = 0;
            for (int i = 1; i < n; i++) {
                int in = 0;
                for (int j = 0; j < nr; j++)
                    in |= tracked[i] >= r[j].first && tracked[i] < r[j].first + r[j].count;
                if (in && (offsets_done(o, tracked[i]) != -1))
                    bad++; /* decoded as done but was pending (done now succeeded) */
                covered += in;
            }
            size_t done_count = (size_t)(n - 1) - (offsets_pending(o) - 1);
            if (cap == 4000 && (size_t)covered != done_count && len + 40 < cap)
                bad++;
            if ((size_t)covered < done_count)
                truncated++;
        }
        free(tracked);
        offsets_free(o);
    }
    ok(bad == 0, "metadata: bounded, printable, and decodes to done offsets only (%d bad)", bad);
    ok(truncated > 0, "small caps keep a prefix of the ranges (%d rounds)", truncated);

    struct offsets_range r[4];
    static const char *const hostile[] = {"", "sy1", "sy2:1+1", "sy1:+1", "sy1:1+0", "sy1:1+",
                                          "sy1:1+1,", "sy1:1+1;2+2", "sy1:zzzzzzzzzzzzzzzz+1",
                                          "sy1:1+1,1+1,1+1,1+1,1+1", "sy1:A+1"};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++)
        ok(offsets_decode_metadata(hostile[i], strlen(hostile[i]), 10, r, 4) == -1,
           "malformed metadata refused: \"%s\"", hostile[i]);
    ok(offsets_decode_metadata("sy1:", 4, 10, r, 4) == 0, "no ranges");
    ok(offsets_decode_metadata("sy1:2+3,a+1", 11, 10, r, 4) == 2 && r[0].first == 12 &&
           r[0].count == 3 && r[1].first == 25 && r[1].count == 1,
       "ranges are relative: 12..14, then 25");
}

void test_offsets(void)
{
    test_offsets_rules();
    test_offsets_random();
    test_offsets_bounded();
    test_offsets_metadata();
}

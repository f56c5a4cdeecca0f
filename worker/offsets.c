/*
 * offsets: a ring buffer of (offset, done) entries in increasing offset
 * order, one per partition. The done prefix is dropped as it forms, so the
 * ring holds only what is in flight plus the done entries above the oldest
 * pending one; it grows by doubling and shrinks by halving, so memory
 * follows that window (which the caller's in-flight cap bounds). Finding
 * an offset is a binary search: completions arrive in any order.
 *
 * It must never report a committable offset past one that was tracked and
 * is not done, and never accept an offset that would break the order the
 * search relies on. Pure: no I/O.
 */
#include "offsets.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define OFFSETS_MIN_CAP 64 /* entries; a power of two, as every capacity */
#define OFFSETS_MAGIC "sy1:"
#define OFFSETS_MAGIC_LEN 4

struct offsets_entry {
    int64_t offset;
    unsigned char done;
};

struct offsets {
    struct offsets_entry *ring; /* NULL until the first track */
    size_t head, count, cap;    /* entries head .. head+count-1, mod cap */
    size_t pending;             /* entries not done */
    int64_t next;               /* one past the highest tracked, or the start */
};

struct offsets *offsets_new(int64_t next)
{
    if (next < 0)
        return NULL;
    struct offsets *o = calloc(1, sizeof *o);
    if (o)
        o->next = next;
    return o;
}

void offsets_free(struct offsets *o)
{
    if (!o)
        return;
    free(o->ring);
    free(o);
}

/* The i-th held entry, 0 = the oldest. cap is a power of two. */
static struct offsets_entry *offsets_entry(const struct offsets *o, size_t i)
{
    return &o->ring[(o->head + i) & (o->cap - 1)];
}

/* Moves the held entries to a ring of cap entries (>= count), oldest
 * first. On allocation failure the old ring stays. */
static int offsets_resize(struct offsets *o, size_t cap)
{
    struct offsets_entry *ring = malloc(cap * sizeof *ring);
    if (!ring)
        return -1;
    for (size_t i = 0; i < o->count; i++)
        ring[i] = *offsets_entry(o, i);
    free(o->ring);
    o->ring = ring;
    o->head = 0;
    o->cap = cap;
    return 0;
}

int offsets_track(struct offsets *o, int64_t offset)
{
    /* INT64_MAX is refused so that offset + 1 (the next commit) exists */
    if (offset < 0 || offset == INT64_MAX || offset < o->next)
        return -1;
    if (o->count == o->cap) {
        if (o->cap > SIZE_MAX / 2 / sizeof *o->ring)
            return -2;
        if (offsets_resize(o, o->cap ? o->cap * 2 : OFFSETS_MIN_CAP) < 0)
            return -2;
    }
    struct offsets_entry *e = offsets_entry(o, o->count);
    e->offset = offset;
    e->done = 0;
    o->count++;
    o->pending++;
    o->next = offset + 1;
    return 0;
}

int offsets_done(struct offsets *o, int64_t offset)
{
    /* the first held entry >= offset */
    size_t lo = 0, hi = o->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (offsets_entry(o, mid)->offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == o->count)
        return -1;
    struct offsets_entry *e = offsets_entry(o, lo);
    if (e->offset != offset || e->done)
        return -1;
    e->done = 1;
    o->pending--;
    /* drop the done prefix: the held window always starts pending */
    while (o->count > 0 && o->ring[o->head].done) {
        o->head = (o->head + 1) & (o->cap - 1);
        o->count--;
    }
    /* give a burst's memory back: halve while at most a quarter full, so
     * at least half of the new ring is free and a window hovering near a
     * boundary cannot resize at every call */
    size_t cap = o->cap;
    while (cap > OFFSETS_MIN_CAP && o->count <= cap / 4)
        cap /= 2;
    if (cap != o->cap)
        (void)offsets_resize(o, cap); /* on failure keep the larger ring */
    return 0;
}

int64_t offsets_committable(const struct offsets *o)
{
    return o->count > 0 ? o->ring[o->head].offset : o->next;
}

size_t offsets_pending(const struct offsets *o)
{
    return o->pending;
}

size_t offsets_held(const struct offsets *o)
{
    return o->count;
}

size_t offsets_capacity(const struct offsets *o)
{
    return o->cap;
}

static const char offsets_digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* Writes v (>= 1) in base 36, most significant digit first; returns the
 * number of digits (at most 13 for an int64_t). */
static size_t offsets_put36(uint64_t v, char *out)
{
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = offsets_digits[v % 36];
        v /= 36;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t offsets_encode_metadata(const struct offsets *o, char *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    buf[0] = '\0';
    if (cap < OFFSETS_MAGIC_LEN + 1)
        return 0;
    memcpy(buf, OFFSETS_MAGIC, OFFSETS_MAGIC_LEN);
    size_t len = OFFSETS_MAGIC_LEN;
    /* held[0] is pending (the done prefix is dropped), so the first range
     * starts at least one past the committable offset, and a pending entry
     * separates any two ranges: every gap is >= 1 */
    int64_t prev_end = offsets_committable(o); /* one past the previous range */
    size_t i = 0;
    while (i < o->count) {
        while (i < o->count && !offsets_entry(o, i)->done)
            i++;
        if (i == o->count)
            break;
        int64_t first = offsets_entry(o, i)->offset, last = first;
        /* consecutive done entries make one range: the offsets between
         * them were never delivered, so they are not messages */
        while (i + 1 < o->count && offsets_entry(o, i + 1)->done)
            last = offsets_entry(o, ++i)->offset;
        i++;
        char item[2 + 2 * 13]; /* ",", gap, "+", length */
        size_t n = 0;
        if (len > OFFSETS_MAGIC_LEN)
            item[n++] = ',';
        n += offsets_put36((uint64_t)(first - prev_end), item + n);
        item[n++] = '+';
        n += offsets_put36((uint64_t)(last - first) + 1, item + n);
        if (n > cap - 1 - len)
            break; /* a prefix of the ranges: the rest is redone */
        memcpy(buf + len, item, n);
        len += n;
        prev_end = last + 1;
    }
    buf[len] = '\0';
    return len;
}

/* Reads a base-36 number >= 1 without a leading zero, at most INT64_MAX. */
static int offsets_get36(const char **p, const char *end, int64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    for (; s < end; s++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (*s >= 'a' && *s <= 'z')
            d = *s - 'a' + 10;
        else
            break;
        if (d == 0 && s == *p)
            return -1; /* a leading zero, or zero itself */
        if (v > ((uint64_t)INT64_MAX - (uint64_t)d) / 36)
            return -1;
        v = v * 36 + (uint64_t)d;
    }
    if (s == *p)
        return -1;
    *p = s;
    *out = (int64_t)v;
    return 0;
}

int offsets_decode_metadata(const char *md, size_t len, int64_t committed,
                            struct offsets_range *out, size_t max)
{
    if (!md || committed < 0 || len < OFFSETS_MAGIC_LEN ||
        memcmp(md, OFFSETS_MAGIC, OFFSETS_MAGIC_LEN) != 0)
        return -1;
    if (max > INT_MAX)
        max = INT_MAX;
    const char *p = md + OFFSETS_MAGIC_LEN, *end = md + len;
    int64_t prev_end = committed; /* one past the previous range */
    size_t n = 0, stored = 0;
    while (p < end) {
        int64_t gap, count;
        if (n > 0 && *p++ != ',')
            return -1;
        if (offsets_get36(&p, end, &gap) < 0 || p == end || *p++ != '+' ||
            offsets_get36(&p, end, &count) < 0)
            return -1;
        /* first = prev_end + gap and first + count must not overflow */
        if (gap > INT64_MAX - prev_end || count > INT64_MAX - prev_end - gap)
            return -1;
        int64_t first = prev_end + gap;
        if (stored < max) {
            out[stored].first = first;
            out[stored].count = count;
            stored++;
        }
        prev_end = first + count;
        n++;
    }
    return (int)stored;
}

int offsets_ranges_contain(const struct offsets_range *ranges, size_t n, int64_t offset)
{
    /* the last range starting at or before offset */
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ranges[mid].first <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* unsigned: offset - first cannot overflow (offset >= first here) */
    return lo > 0 &&
           (uint64_t)offset - (uint64_t)ranges[lo - 1].first < (uint64_t)ranges[lo - 1].count;
}

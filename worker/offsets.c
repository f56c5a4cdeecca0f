/*
 * offsets: a ring buffer of (offset, done) in increasing offset order. The
 * done prefix is dropped as it forms, so memory is bounded by what is in
 * flight plus the done entries above the oldest pending one. Finding an
 * offset is a binary search: completions arrive in any order.
 */
#include "offsets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct offsets {
    int64_t *off;
    unsigned char *done;
    size_t head, count, cap; /* ring: entries head .. head+count-1 (mod cap) */
    size_t pending;
    int64_t next; /* one past the highest tracked, or the start */
};

struct offsets *offsets_new(int64_t next)
{
    struct offsets *o = calloc(1, sizeof *o);
    if (o)
        o->next = next;
    return o;
}

void offsets_free(struct offsets *o)
{
    if (!o)
        return;
    free(o->off);
    free(o->done);
    free(o);
}

static size_t offsets_at(const struct offsets *o, size_t i)
{
    return (o->head + i) % o->cap;
}

static int offsets_grow(struct offsets *o)
{
    size_t cap = o->cap ? o->cap * 2 : 64;
    int64_t *off = malloc(cap * sizeof *off);
    unsigned char *done = malloc(cap);
    if (!off || !done) {
        free(off);
        free(done);
        return -1;
    }
    for (size_t i = 0; i < o->count; i++) {
        off[i] = o->off[offsets_at(o, i)];
        done[i] = o->done[offsets_at(o, i)];
    }
    free(o->off);
    free(o->done);
    o->off = off;
    o->done = done;
    o->head = 0;
    o->cap = cap;
    return 0;
}

int offsets_track(struct offsets *o, int64_t offset)
{
    if (offset < o->next || (o->count > 0 && offset <= o->off[offsets_at(o, o->count - 1)]))
        return -1;
    if (o->count == o->cap && offsets_grow(o) < 0)
        return -1;
    size_t i = offsets_at(o, o->count);
    o->off[i] = offset;
    o->done[i] = 0;
    o->count++;
    o->pending++;
    o->next = offset + 1;
    return 0;
}

int offsets_done(struct offsets *o, int64_t offset)
{
    size_t lo = 0, hi = o->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->off[offsets_at(o, mid)] < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == o->count || o->off[offsets_at(o, lo)] != offset || o->done[offsets_at(o, lo)])
        return -1;
    o->done[offsets_at(o, lo)] = 1;
    o->pending--;
    while (o->count > 0 && o->done[o->head]) {
        o->head = (o->head + 1) % o->cap;
        o->count--;
    }
    return 0;
}

int64_t offsets_committable(const struct offsets *o)
{
    return o->count > 0 ? o->off[o->head] : o->next;
}

size_t offsets_pending(const struct offsets *o)
{
    return o->pending;
}

size_t offsets_held(const struct offsets *o)
{
    return o->count;
}

static size_t offsets_base36(uint64_t v, char *out)
{
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
        v /= 36;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t offsets_encode_metadata(const struct offsets *o, char *buf, size_t cap)
{
    if (cap < 5)
        return 0;
    memcpy(buf, "sy1:", 4);
    size_t len = 4;
    int64_t prev_end = offsets_committable(o); /* one past the previous range */
    size_t i = 0;
    while (i < o->count) {
        while (i < o->count && !o->done[offsets_at(o, i)])
            i++;
        if (i == o->count)
            break;
        int64_t first = o->off[offsets_at(o, i)], last = first;
        /* a range: consecutive done entries (gaps between tracked offsets
         * are not messages, so they belong to the range) */
        while (i + 1 < o->count && o->done[offsets_at(o, i + 1)])
            last = o->off[offsets_at(o, ++i)];
        i++;
        char item[40];
        size_t n = 0;
        if (len > 4)
            item[n++] = ',';
        n += offsets_base36((uint64_t)(first - prev_end), item + n);
        item[n++] = '+';
        n += offsets_base36((uint64_t)(last - first + 1), item + n);
        if (len + n + 1 > cap)
            break;
        memcpy(buf + len, item, n);
        len += n;
        prev_end = last + 1;
    }
    buf[len] = '\0';
    return len;
}

static int offsets_parse36(const char **p, const char *end, int64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;
    if (s == end)
        return -1;
    for (; s < end; s++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (*s >= 'a' && *s <= 'z')
            d = *s - 'a' + 10;
        else
            break;
        if (v > (uint64_t)INT64_MAX / 36)
            return -1;
        v = v * 36 + (uint64_t)d;
        if (v > (uint64_t)INT64_MAX)
            return -1;
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
    const char *p = md, *end = md + len;
    if (len < 4 || memcmp(md, "sy1:", 4) != 0 || committed < 0)
        return -1;
    p += 4;
    int64_t prev_end = committed;
    size_t n = 0;
    while (p < end) {
        int64_t gap, count;
        if (n > 0 && *p++ != ',')
            return -1;
        if (offsets_parse36(&p, end, &gap) < 0 || p == end || *p++ != '+' ||
            offsets_parse36(&p, end, &count) < 0 || count == 0)
            return -1;
        if (gap > INT64_MAX - prev_end || count > INT64_MAX - prev_end - gap)
            return -1;
        if (n == max)
            return -1;
        out[n].first = prev_end + gap;
        out[n].count = count;
        prev_end = out[n].first + count;
        n++;
    }
    return (int)n;
}

/*
 * libFuzzer target for offsets:
 * - hostile commit metadata is refused, or parsed into sorted, disjoint
 *   ranges above the commit that the encoder spells back byte for byte;
 * - an operation sequence derived from the bytes (track with gaps, done in
 *   any order, refused operations, metadata at any cap) agrees at every
 *   step with a brute-force model: the committable offset never passes a
 *   pending one, memory follows what is held, metadata never names a
 *   pending offset and never exceeds its cap.
 * Any disagreement aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "offsets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const int64_t starts[] = {
    0, 1, 1000, (int64_t)1 << 40, INT64_MAX - 100000, INT64_MAX - 1, INT64_MAX};

/* A window whose metadata must be exactly these ranges at committed. */
static struct offsets *window_of(int64_t committed, const struct offsets_range *r, size_t n)
{
    struct offsets *o = offsets_new(committed);
    CHECK(o);
    if (n > 0)
        CHECK(offsets_track(o, committed) == 0);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            CHECK(offsets_track(o, r[i - 1].first + r[i - 1].count) == 0);
        int64_t last = r[i].first + r[i].count - 1;
        CHECK(offsets_track(o, r[i].first) == 0 && offsets_done(o, r[i].first) == 0);
        if (last != r[i].first)
            CHECK(offsets_track(o, last) == 0 && offsets_done(o, last) == 0);
    }
    return o;
}

static void fuzz_decode(const char *md, size_t len, int64_t committed)
{
    size_t max = len / 3 + 1; /* more than any string of len bytes holds */
    struct offsets_range *r = malloc(max * sizeof *r);
    CHECK(r);
    int n = offsets_decode_metadata(md, len, committed, r, max);
    if (n >= 0) {
        CHECK((size_t)n < max);
        int64_t end = committed;
        for (int i = 0; i < n; i++) {
            CHECK(r[i].first > end && r[i].count >= 1 && r[i].count <= INT64_MAX - r[i].first);
            CHECK(offsets_ranges_contain(r, (size_t)n, r[i].first));
            CHECK(offsets_ranges_contain(r, (size_t)n, r[i].first + r[i].count - 1));
            CHECK(!offsets_ranges_contain(r, (size_t)n, r[i].first - 1));
            end = r[i].first + r[i].count;
        }
        /* fewer slots: the same first ranges */
        struct offsets_range few[2];
        int m = offsets_decode_metadata(md, len, committed, few, 2);
        CHECK(m == (n < 2 ? n : 2));
        for (int i = 0; i < m; i++)
            CHECK(few[i].first == r[i].first && few[i].count == r[i].count);
        /* one spelling per meaning */
        struct offsets *o = window_of(committed, r, (size_t)n);
        char *back = malloc(len + 1);
        CHECK(back);
        size_t blen = offsets_encode_metadata(o, back, len + 1);
        CHECK(offsets_committable(o) == committed);
        CHECK(blen == len && memcmp(back, md, len) == 0);
        free(back);
        offsets_free(o);
    }
    free(r);
}

/* digits of v in base 36 */
static size_t width36(uint64_t v)
{
    size_t n = 1;
    while (v >= 36) {
        v /= 36;
        n++;
    }
    return n;
}

struct model {
    int64_t *off;        /* tracked offsets, in order */
    unsigned char *done; /* and their flags */
    size_t n, first_open, pending;
    int64_t start;
};

static int64_t model_committable(struct model *m)
{
    while (m->first_open < m->n && m->done[m->first_open])
        m->first_open++;
    if (m->first_open < m->n)
        return m->off[m->first_open];
    return m->n ? m->off[m->n - 1] + 1 : m->start;
}

static void check_metadata(const struct offsets *o, struct model *m, size_t cap)
{
    static char md[8192];
    static struct offsets_range r[4096];
    int64_t committed = offsets_committable(o);
    memset(md, 'X', cap + 1);
    size_t len = offsets_encode_metadata(o, md, cap);
    if (cap == 0) {
        CHECK(len == 0 && md[0] == 'X');
        return;
    }
    CHECK(len < cap && md[len] == '\0' && strlen(md) == len);
    for (size_t i = 0; i < len; i++)
        CHECK(md[i] >= '!' && md[i] <= '~');
    if (cap < 5) {
        CHECK(len == 0);
        return;
    }
    int nr = offsets_decode_metadata(md, len, committed, r, 4096);
    CHECK(nr >= 0);
    /* the model's ranges: runs of done tracked offsets from the first
     * pending; the encoded ones are a prefix of them, as long as fits */
    size_t k = 0, i = m->first_open;
    int64_t end = committed;
    while (i < m->n) {
        while (i < m->n && !m->done[i])
            i++;
        if (i == m->n)
            break;
        int64_t first = m->off[i];
        while (i + 1 < m->n && m->done[i + 1])
            i++;
        int64_t count = m->off[i] - first + 1;
        i++;
        if (k == (size_t)nr) {
            /* the first range left out did not fit */
            size_t item = (k > 0) + width36((uint64_t)(first - end)) + 1 + width36((uint64_t)count);
            CHECK(len + item > cap - 1);
            return;
        }
        CHECK(r[k].first == first && r[k].count == count);
        end = first + count;
        k++;
    }
    CHECK(k == (size_t)nr);
}

static void fuzz_ops(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    struct model m = {0};
    m.start = starts[data[0] % (sizeof starts / sizeof starts[0])];
    m.off = malloc(size * sizeof *m.off);
    m.done = malloc(size);
    CHECK(m.off && m.done);
    struct offsets *o = offsets_new(m.start);
    CHECK(o);
    for (size_t p = 1; p < size; p++) {
        uint8_t b = data[p];
        int64_t highest = m.n ? m.off[m.n - 1] : m.start - 1;
        switch (b & 3) {
        case 0:
        case 1: { /* track, perhaps after a gap */
            int64_t gap = ((b >> 2) & 3) == 3 ? (int64_t)(b >> 4) * 1000 : (b >> 2) & 3;
            int64_t next = m.n ? highest + 1 : m.start;
            if (next > INT64_MAX - 1 - gap) {
                /* nothing after INT64_MAX could be committed */
                CHECK(offsets_track(o, INT64_MAX) == -1);
                break;
            }
            next += gap;
            CHECK(offsets_track(o, next) == 0);
            m.off[m.n] = next;
            m.done[m.n++] = 0;
            m.pending++;
            break;
        }
        case 2: { /* done, counted back from the newest: maybe done already */
            if (!m.n)
                break;
            size_t i = m.n - 1 - (size_t)(b >> 2) % m.n;
            int rc = offsets_done(o, m.off[i]);
            CHECK(rc == (m.done[i] ? -1 : 0));
            if (!m.done[i]) {
                m.done[i] = 1;
                m.pending--;
            }
            break;
        }
        default:
            switch ((b >> 2) & 3) {
            case 0: { /* refused: a rewind, or done of something untracked */
                if (m.n) {
                    CHECK(offsets_track(o, highest - (b >> 4)) == -1);
                    if (highest < INT64_MAX - 16)
                        CHECK(offsets_done(o, highest + 1 + (b >> 4)) == -1);
                }
                CHECK(offsets_track(o, -1 - (int64_t)(b >> 4)) == -1);
                break;
            }
            case 1: /* the oldest pending finishes: the prefix moves */
                model_committable(&m);
                if (m.first_open < m.n) {
                    CHECK(offsets_done(o, m.off[m.first_open]) == 0);
                    m.done[m.first_open] = 1;
                    m.pending--;
                }
                break;
            case 2: /* metadata at a cap from the byte */
                model_committable(&m);
                check_metadata(o, &m, (size_t)(b >> 4) * (b & 0x80 ? 256 : 3));
                break;
            default: /* metadata at the consumer's cap */
                model_committable(&m);
                check_metadata(o, &m, 4000);
                break;
            }
        }
        int64_t c = offsets_committable(o);
        CHECK(c == model_committable(&m));
        CHECK(offsets_pending(o) == m.pending);
        size_t held = m.pending ? m.n - m.first_open : 0;
        CHECK(offsets_held(o) == held);
        CHECK(offsets_capacity(o) <= 64 || offsets_capacity(o) <= 4 * held);
    }
    /* the safety property, the slow way */
    int64_t c = offsets_committable(o);
    for (size_t i = 0; i < m.n; i++)
        CHECK(m.done[i] || m.off[i] >= c);
    offsets_free(o);
    free(m.off);
    free(m.done);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode((const char *)data, size, 1000);
    if (size > 0)
        fuzz_decode((const char *)data + 1, size - 1,
                    starts[data[0] % (sizeof starts / sizeof starts[0])]);
    fuzz_ops(data, size);
    return 0;
}

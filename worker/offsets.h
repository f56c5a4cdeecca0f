/*
 * offsets: one partition's window of in-flight offsets. Messages arrive in
 * increasing offset order (with gaps: compaction, transaction markers,
 * aborted records) and finish in any order; the committable offset is the
 * first one not done. Pure: no I/O, no clock, no globals; fuzzed.
 *
 * Commit metadata (offsets_encode_metadata / offsets_decode_metadata)
 * names the offsets above the committed one that are done already, so that
 * a partition's next owner skips them instead of paying for their LLM
 * calls again. The format, version 1, printable ASCII:
 *
 *   metadata = "sy1:" [ range *( "," range ) ]
 *   range    = gap "+" length
 *   gap, length: base 36, digits 0-9 a-z (lowercase), no leading zero,
 *                value >= 1, at most INT64_MAX
 *
 * The first range starts `gap` offsets after the committed offset, each
 * next one `gap` offsets after the end (exclusive) of the previous one;
 * a range covers `length` offsets. So ranges are sorted, disjoint, not
 * adjacent, and never cover the committed offset itself (the first one
 * not done). Example, committed at 10: "sy1:2+3,a+1" = 12..14 and 25.
 * A range may span offsets that were never delivered (gaps in the log):
 * they are not messages, so saying they are done is harmless.
 * Each string has exactly one spelling, so decode then encode gives the
 * same bytes back.
 */
#ifndef SWITCHYARD_OFFSETS_H
#define SWITCHYARD_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

struct offsets;

/* `next`: the first offset the consumer will deliver (the committed
 * position), >= 0. New object, or NULL when out of memory or next < 0;
 * free with offsets_free (accepts NULL). */
struct offsets *offsets_new(int64_t next);
void offsets_free(struct offsets *o);

/* A received message is now in flight. Amortized O(1). Returns 0; -1 when
 * offset is not above every offset tracked so far nor at least `next`
 * (a rewind: the caller starts a new window), or is negative or
 * INT64_MAX; -2 when out of memory. On -1 and -2 the window is unchanged:
 * the message is NOT tracked, and must not be processed as if it were
 * (a later commit would pass it). */
int offsets_track(struct offsets *o, int64_t offset);

/* Its outputs are acknowledged by the broker. O(log n), plus amortized
 * O(1) to drop the done prefix. Returns 0, or -1 when offset is not
 * tracked or is done already. */
int offsets_done(struct offsets *o, int64_t offset);

/* The offset to commit (Kafka's "next to consume"): the smallest tracked
 * offset not done; with none pending, one past the highest tracked (or
 * `next` if nothing was tracked). Never past unfinished work. O(1). */
int64_t offsets_committable(const struct offsets *o);
/* Tracked and not done. */
size_t offsets_pending(const struct offsets *o);
/* Entries held: the pending ones, plus the done ones above the first
 * pending (the done prefix is dropped as it forms). */
size_t offsets_held(const struct offsets *o);
/* Entries the ring can hold before it grows (for tests and metrics). It
 * shrinks again when the window drains, so memory follows what is held,
 * not its peak. */
size_t offsets_capacity(const struct offsets *o);

/* Writes the commit metadata for a commit at offsets_committable(o) into
 * buf: at most cap - 1 bytes plus a NUL. When every range does not fit,
 * the longest prefix of whole ranges that does (still correct: the new
 * owner redoes more). Returns the length written, without the NUL; 0
 * (an empty string, when cap >= 1) if cap < 5, too small for "sy1:".
 * O(held). */
size_t offsets_encode_metadata(const struct offsets *o, char *buf, size_t cap);

struct offsets_range {
    int64_t first; /* first done offset */
    int64_t count; /* >= 1; first + count <= INT64_MAX */
};

/* Parses metadata (len bytes, no NUL needed) written for a commit at
 * `committed`. The whole string is checked; its first `max` ranges (or
 * fewer: all of them) are written to out, sorted. Returns the number
 * written (at most max and INT_MAX), or -1 when md is not such metadata
 * or committed < 0. Hostile input is safe (fuzzed). */
int offsets_decode_metadata(const char *md, size_t len, int64_t committed,
                            struct offsets_range *out, size_t max);

/* Whether offset lies in one of the n sorted, disjoint ranges (as decoded
 * above): the previous owner finished it, so the new one may mark it done
 * without doing the work. O(log n). */
int offsets_ranges_contain(const struct offsets_range *ranges, size_t n, int64_t offset);

#endif

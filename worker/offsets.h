/*
 * offsets: one partition's window of in-flight offsets. Messages arrive in
 * increasing offset order (with gaps: compaction, transaction markers) and
 * finish in any order; the committable offset is the first one not done.
 * Pure: no I/O, no clock; fuzzed.
 */
#ifndef SWITCHYARD_OFFSETS_H
#define SWITCHYARD_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

struct offsets;

/* `next`: the first offset the consumer will deliver. New object, or NULL
 * when out of memory; free with offsets_free (accepts NULL). */
struct offsets *offsets_new(int64_t next);
void offsets_free(struct offsets *o);

/* A received message is now in flight. -1 when offset is not above every
 * offset tracked so far (a rewind: the caller starts a new window). */
int offsets_track(struct offsets *o, int64_t offset);
/* Its outputs are acknowledged. -1 when not tracked, or done already. */
int offsets_done(struct offsets *o, int64_t offset);

/* The offset to commit (Kafka's "next to consume"): the smallest tracked
 * offset not done; with none pending, one past the highest tracked (or
 * `next` if nothing was tracked). Never past unfinished work. */
int64_t offsets_committable(const struct offsets *o);
/* Tracked and not done. */
size_t offsets_pending(const struct offsets *o);
/* Entries held (pending, plus done ones above the first pending). */
size_t offsets_held(const struct offsets *o);

/* Commit metadata naming the offsets above the committable one that are
 * done already, so a new owner can skip them instead of paying for their
 * LLM calls again. Format: "sy1:" then comma-separated ranges "G+L" in
 * base 36, G = gap from the end of the previous range (the first from the
 * committable offset), L = length. Writes at most cap - 1 bytes plus NUL;
 * when every range does not fit, a prefix of them (still correct: the new
 * owner redoes more). Returns the length written (0 if cap < 5). */
size_t offsets_encode_metadata(const struct offsets *o, char *buf, size_t cap);

struct offsets_range {
    int64_t first; /* first done offset */
    int64_t count;
};

/* Parses metadata written by offsets_encode_metadata for a commit at
 * `committed`. Returns the number of ranges (at most max) written to out,
 * or -1 when md is not such metadata (hostile input is safe: fuzzed). */
int offsets_decode_metadata(const char *md, size_t len, int64_t committed,
                            struct offsets_range *out, size_t max);

#endif

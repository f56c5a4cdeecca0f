/*
 * commit: what one partition's commits say and remember. Building a
 * commit (the done prefix plus, in the commit's metadata, the finished
 * offsets above it), recognising the errors that mean "the group is
 * rebalancing", loading a previous owner's metadata at assignment (the
 * skip ranges) and the lookup in them, and noticing a commit that stopped
 * moving while the partition holds work (a stall).
 *
 * The consumer owns one struct commit_part per partition and decides when
 * to commit; this module never calls the broker except to read the
 * committed offsets at assignment (commit_load_skips).
 */
#ifndef SWITCHYARD_COMMIT_H
#define SWITCHYARD_COMMIT_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "offsets.h"
#include "ratelog.h"

#define COMMIT_METADATA_MAX 4000 /* offset commit metadata, under the broker's cap */

struct commit_part {
    int64_t committed; /* last offset we committed; -1 none */
    /* the group's committed offset read at assignment (a previous owner's); -1 none */
    int64_t group_committed;
    int64_t acked_ms; /* wall ms of the last commit acknowledged, or of the assignment */
    uint64_t md_hash; /* and a hash of its metadata */
    /* done by the previous owner above its committed offset (from the
     * commit's metadata): skipped, not paid for twice. Owned. */
    struct offsets_range *skip;
    size_t nskip;
    /* progress of the committable offset, for the stall report */
    int64_t progress_offset; /* the committable offset when it last moved */
    uint64_t progress_ms;    /* monotonic ms it last moved, or work began */
    int stalled;
    struct ratelog stall_log;
};

/* Ready to use (nothing committed, no skips). */
void commit_part_init(struct commit_part *cp);
/* Frees the skips and forgets what was committed (a new ownership). */
void commit_part_reset(struct commit_part *cp);

/* Adds (topic, partition) to l at o's committable offset, with the done
 * offsets above it as metadata, when either moved since the last commit
 * (the same offset is committed again when more work above it is done, so
 * that a new owner knows to skip it). Returns 1 when added. */
int commit_part_add(struct commit_part *cp, const struct offsets *o, const char *topic,
                    int32_t partition, rd_kafka_topic_partition_list_t *l);

/* The commit error means the group is rebalancing (our generation is
 * over): commits should wait for the next assignment. */
int commit_rebalancing_error(rd_kafka_resp_err_t err);

/* Reads the committed offsets of newly assigned partitions and, from their
 * metadata, the offsets the previous owner finished above them; find maps
 * a partition id to its state (NULL: ignored). One synchronous round trip
 * per rebalance, bounded by timeout_ms. Returns the ranges loaded. */
size_t commit_load_skips(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts,
                         struct commit_part *(*find)(void *ctx, int32_t partition), void *ctx,
                         int timeout_ms);

/* The previous owner finished offset: skip it. */
int commit_skippable(const struct commit_part *cp, int64_t offset);

/* One look at a partition's progress at now_ms (monotonic): committable is
 * its committable offset, holding whether it holds work (in flight, or
 * done above unfinished work). Pure. Returns 1 when it is stalled: it has
 * held work and its committable offset has not moved for stalled_ms;
 * *stuck_ms is set to how long. cp->stalled follows the result. */
int commit_stall_check(struct commit_part *cp, int64_t committable, int holding, uint64_t now_ms,
                       uint64_t stalled_ms, uint64_t *stuck_ms);

#endif

/*
 * commit: a partition's commits and the metadata they carry. A commit says
 * the contiguous done prefix and, in its metadata, the done offsets above
 * it (offsets.h documents the format), so that a new owner skips what was
 * finished instead of paying for it twice. Never commits past unfinished
 * work: the offset is always offsets_committable. Never decides when to
 * commit (the consumer does) and never logs per message.
 */
#include "commit.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

void commit_part_init(struct commit_part *cp)
{
    *cp =
        (struct commit_part){.committed = -1, .group_committed = -1, .progress_offset = INT64_MIN};
}

void commit_part_reset(struct commit_part *cp)
{
    free(cp->skip);
    struct ratelog keep = cp->stall_log; /* the bound outlives an ownership */
    commit_part_init(cp);
    cp->stall_log = keep;
}

int commit_part_add(struct commit_part *cp, const struct offsets *o, const char *topic,
                    int32_t partition, rd_kafka_topic_partition_list_t *l)
{
    int64_t next = offsets_committable(o);
    char md[COMMIT_METADATA_MAX];
    size_t n = offsets_encode_metadata(o, md, sizeof md);
    uint64_t hash = 1469598103934665603ull; /* FNV-1a of the metadata */
    for (size_t i = 0; i < n; i++)
        hash = (hash ^ (unsigned char)md[i]) * 1099511628211ull;
    if (next < cp->committed || (next == cp->committed && hash == cp->md_hash))
        return 0;
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(l, topic, partition);
    tp->offset = next;
    if (n > 0 && (tp->metadata = malloc(n)) != NULL) {
        memcpy(tp->metadata, md, n);
        tp->metadata_size = n;
    }
    cp->committed = next;
    cp->md_hash = hash;
    return 1;
}

int commit_rebalancing_error(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
           err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
           err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID;
}

size_t commit_load_skips(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts,
                         struct commit_part *(*find)(void *ctx, int32_t partition), void *ctx,
                         int timeout_ms)
{
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, q, timeout_ms);
    size_t total = 0;
    if (err) {
        log_warn("committed_unknown", "cannot read committed offsets: %s; nothing skipped",
                 rd_kafka_err2str(err));
        goto out;
    }
    for (int i = 0; i < q->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &q->elems[i];
        struct commit_part *cp = find(ctx, tp->partition);
        log_debug("committed_metadata", "partition %d offset %lld err %d metadata %zu bytes",
                  tp->partition, (long long)tp->offset, (int)tp->err, tp->metadata_size);
        if (cp && !tp->err && tp->offset >= 0)
            cp->group_committed = tp->offset; /* for the metrics */
        if (!cp || tp->err || tp->offset < 0 || !tp->metadata || tp->metadata_size == 0)
            continue;
        struct offsets_range ranges[COMMIT_METADATA_MAX / 4];
        int n = offsets_decode_metadata(tp->metadata, tp->metadata_size, tp->offset, ranges,
                                        sizeof ranges / sizeof ranges[0]);
        if (n <= 0)
            continue;
        struct offsets_range *skip = malloc((size_t)n * sizeof *skip);
        if (!skip)
            continue;
        memcpy(skip, ranges, (size_t)n * sizeof *skip);
        free(cp->skip);
        cp->skip = skip;
        cp->nskip = (size_t)n;
        total += (size_t)n;
    }
out:
    rd_kafka_topic_partition_list_destroy(q);
    return total;
}

int commit_skippable(const struct commit_part *cp, int64_t offset)
{
    return offsets_ranges_contain(cp->skip, cp->nskip, offset);
}

int commit_stall_check(struct commit_part *cp, int64_t committable, int holding, uint64_t now_ms,
                       uint64_t stalled_ms, uint64_t *stuck_ms)
{
    *stuck_ms = 0;
    if (!holding || cp->progress_offset != committable || now_ms < cp->progress_ms) {
        /* idle, or moved: the clock starts again */
        cp->progress_offset = committable;
        cp->progress_ms = now_ms;
        cp->stalled = 0;
        if (!holding)
            cp->progress_offset = INT64_MIN; /* work that begins later starts its own clock */
        return 0;
    }
    *stuck_ms = now_ms - cp->progress_ms;
    cp->stalled = *stuck_ms >= stalled_ms;
    return cp->stalled;
}

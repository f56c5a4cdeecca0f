/*
 * consumer: the Kafka consumer in its group. It owns the assignment, the
 * per-partition offset windows, pause/resume for the in-flight caps, and
 * commits (built by commit.c): only the contiguous done prefix of each
 * partition, only for partitions it still owns, never after losing them.
 */
#ifndef SWITCHYARD_CONSUMER_H
#define SWITCHYARD_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "loop.h"

struct consumer;

struct consumer_handlers {
    /* A new message to work on. The handler owns msg (destroy it with
     * rd_kafka_message_destroy) and must call consumer_finished exactly
     * once for it, with this generation, when its outputs are acked. */
    void (*message)(void *ctx, rd_kafka_message_t *msg, uint32_t generation);
    /* librdkafka raised a fatal error (e.g. a static member fenced by
     * another with the same group.instance.id): the consumer is dead and
     * the worker must stop. Called once; why is librdkafka's text. May be
     * NULL. */
    void (*fatal)(void *ctx, const char *why);
};

struct consumer *consumer_new(struct loop *loop, const struct config *cfg,
                              const struct consumer_handlers *handlers, void *ctx, struct err *e);

/* The message at (partition, offset) is finished: its result, cost records
 * or dead letter are acknowledged. A generation that is no longer current
 * (the partition was lost or revoked since) is ignored. */
void consumer_finished(struct consumer *c, int32_t partition, uint32_t generation, int64_t offset);

/* delta messages of (partition, generation) began (+) or ceased (-) to
 * wait in a model queue that is full: while any does, the partition is
 * paused, so the backlog waits in Kafka. A generation that is no longer
 * current is ignored (a new ownership starts with no pressure). c may be
 * NULL. */
void consumer_pressure(struct consumer *c, int32_t partition, uint32_t generation, int delta);

/* Stops taking new messages (shutdown has begun). c may be NULL. */
void consumer_stop_fetching(struct consumer *c);
/* Partitions currently assigned to this worker (0 for a NULL c: the
 * consumer does not exist before the start-up check passes). */
size_t consumer_assigned(const struct consumer *c);

/* For /readyz: 1 only while the worker is in its group (an assignment
 * callback, even an empty one, for the current generation) and the
 * cluster is reachable (no "all brokers down" since a broker last
 * answered: a fetch, a commit, a rebalance, or the broker state in the
 * statistics). Else 0 with *why set (static text). c may be NULL (not
 * created yet: 0). */
int consumer_ready(const struct consumer *c, const char **why);
/* For metrics: the cluster answers (0 for NULL); in the group (0 for NULL). */
int consumer_kafka_up(const struct consumer *c);
int consumer_in_group(const struct consumer *c);
/* One assigned partition, for metrics. Offsets are -1 when not known. */
struct consumer_partition_info {
    int32_t id;
    int paused;             /* by us, for the in-flight caps or a full model queue */
    int pressed;            /* its messages wait in a full model queue */
    size_t in_flight;       /* received, not finished */
    int64_t committed;      /* the group's: this worker's last commit, else the one
                               read at assignment; -1 none */
    int64_t last_commit_ms; /* wall ms of the last acknowledged commit, or of the
                               assignment when none since */
    int64_t position;       /* the first offset not finished (what a commit would say) */
    int64_t high_watermark; /* the log end, as of the last fetch (no broker call) */
    int stalled;            /* holds work and `position` has not moved for
                               limits.stalled_partition_ms */
    uint64_t stalled_ms;    /* how long it has not moved, when stalled; else 0 */
};
/* Fills out with up to max assigned partitions; returns how many (0 for a
 * NULL c). */
size_t consumer_partitions(const struct consumer *c, struct consumer_partition_info *out,
                           size_t max);
/* Messages skipped because a previous owner had finished them (0 for NULL). */
uint64_t consumer_skipped(const struct consumer *c);
/* Commits every owned partition's done prefix, synchronously. */
void consumer_commit_now(struct consumer *c, int timeout_ms);
/* Leaves the group (bounded by timeout_ms) and frees. */
void consumer_free(struct consumer *c, int timeout_ms);

#endif

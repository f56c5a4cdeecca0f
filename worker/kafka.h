/*
 * kafka: what the consumer and the producer share: a librdkafka conf built
 * from worker.yaml, and waking the loop when a librdkafka queue has events
 * (librdkafka writes to a pipe when a queue turns non-empty).
 */
#ifndef SWITCHYARD_KAFKA_H
#define SWITCHYARD_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "err.h"
#include "loop.h"

enum kafka_role { KAFKA_CONSUMER, KAFKA_PRODUCER };

/* A conf from worker.yaml's kafka section, "${ENV}" values expanded,
 * keeping the properties that matter to `role`. New object, or NULL with
 * e set. */
rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, enum kafka_role role, struct err *e);

/* rd_kafka_conf_set with our error value: 0, or -1 with e set. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, struct err *e);

struct kafka_wake {
    struct loop *loop;
    rd_kafka_queue_t *queue; /* borrowed */
    int fds[2];
    struct loop_io io;
    void (*cb)(void *data);
    void *data;
};

/* Calls cb(data) from the loop whenever queue gets events; cb must serve
 * the queue until it is empty (or re-arm itself). 0, or -1 with e set. */
int kafka_wake_start(struct kafka_wake *w, struct loop *loop, rd_kafka_queue_t *queue,
                     void (*cb)(void *data), void *data, struct err *e);
/* Stops it (safe on a zeroed or never-started struct). */
void kafka_wake_stop(struct kafka_wake *w);

#endif

/*
 * probe: the start-up check, before the worker consumes: the Kafka cluster
 * answers, and the four topics (requests, results, costs, dead_letter)
 * exist, within limits.startup_timeout_ms. It runs on a thread of its own
 * with a short-lived client, so that the loop (signals, /readyz) keeps
 * running meanwhile, and hands its result to the loop through a pipe.
 */
#ifndef SWITCHYARD_PROBE_H
#define SWITCHYARD_PROBE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "config.h"
#include "err.h"
#include "loop.h"

#define KAFKA_PROBE_TOPICS 4

struct kafka_probe_result {
    int reachable;     /* the cluster answered a metadata request */
    const char *error; /* when not reachable: the last error (borrowed, valid
                          during the callback) */
    /* the configured topics the cluster does not have, in the order
     * requests, results, costs, dead_letter (borrowed from cfg) */
    const char *missing[KAFKA_PROBE_TOPICS];
    size_t nmissing;
    long long elapsed_ms;
};

struct kafka_probe;

/* Starts the check. done(data, r) is called once, from the loop, when it
 * ends: reachable with the missing topics, or not reachable at the
 * deadline. While the cluster does not answer, a warning naming
 * bootstrap.servers is logged (rate-bounded). cfg must outlive the probe.
 * New object (free with kafka_probe_free), or NULL with e set. */
struct kafka_probe *kafka_probe_start(struct loop *loop, const struct config *cfg,
                                      void (*done)(void *data, const struct kafka_probe_result *r),
                                      void *data, struct err *e);

/* Stops the check if it still runs (done is then not called) and frees.
 * Returns within about a second (one metadata attempt). NULL is fine. */
void kafka_probe_free(struct kafka_probe *p);

/* The missing topics among `want` in a metadata answer (pure; for tests).
 * Fills missing (up to nwant entries, borrowed from want) and returns how
 * many. A topic listed with an error (e.g. unknown) counts as missing. */
size_t kafka_probe_missing(const struct rd_kafka_metadata *md, const char *const *want,
                           size_t nwant, const char **missing);

#endif

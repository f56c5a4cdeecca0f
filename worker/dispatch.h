/*
 * dispatch: one request's life. A message becomes a job: decode (bad ->
 * dead letter), route (no fit -> error result), then the plan's candidates
 * in order, each with retries and backoff for transient failures (the
 * decision is retry.c's), until one answers or none is left; then its
 * result and cost records are produced, and when the broker has
 * acknowledged them all, the owner is told the input is finished.
 *
 * Dispatch knows nothing of the consumer or the worker: it is handed its
 * clients and callbacks. The decisions it takes are pure functions tested
 * from tables of cases (retry_decide, the router, the rate limiter, the
 * circuit breaker; tests/data/) and the connection queue against a model
 * (unit/pqueue); dispatch itself is driven only end to end, on the mock
 * cluster with the fake provider (tests/e2e/test_dispatch.py and others).
 */
#ifndef SWITCHYARD_DISPATCH_H
#define SWITCHYARD_DISPATCH_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <sys/queue.h>

#include "breaker.h"
#include "config.h"
#include "http.h"
#include "job.h"
#include "loop.h"
#include "policy.h"
#include "pqueue.h"
#include "producer.h"
#include "ratelimit.h"
#include "ratelog.h"
#include "stats.h"

/* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (NULL when
 * unset), as the process environment held them at start. */
struct dispatch_aws_credentials {
    const char *access_key_id, *secret_access_key, *session_token;
};

/* A provider of worker.yaml, as dispatch calls it. */
struct dispatch_provider {
    const struct config_provider *cfg;
    const struct provider_ops *ops;
    char *api_key; /* from the environment; never logged */
    /* auth sigv4: the AWS credentials, from the environment; never logged */
    char *aws_access_key_id, *aws_secret_access_key, *aws_session_token;
    struct pqueue slots;      /* max_connections */
    struct ratelimit limiter; /* the provider-wide limits (configured only) */
    struct stats_provider stats;
};

/* One model of one provider: its calls wait here, in order, for the rate
 * limit (configured, and learned from the provider's headers and 429s),
 * and pass its circuit breaker. Lanes live as long as the dispatch. */
struct dispatch_lane {
    struct dispatch *dispatch;
    struct dispatch_provider *provider;
    char *model; /* the provider's model id */
    struct ratelimit limiter;
    struct breaker breaker;
    struct breaker_config circuit;
    TAILQ_HEAD(, job) waiting; /* in order; a rate-limited call goes back first */
    size_t nwaiting;
    int full;    /* waiting reached queue_per_model: its partitions are paused */
    int pumping; /* lane_pump is on the stack */
    struct loop_timer timer;
    uint64_t rate_limited;  /* 429s */
    uint64_t waited;        /* calls that had to wait for the limit */
    uint64_t circuit_skips; /* candidates skipped because the circuit was open */
};

struct dispatch_options {
    struct loop *loop;
    const struct config *cfg;
    struct http *http;
    struct producer *producer;
    const char *worker_id;
    struct policy *policy; /* retained by dispatch */
    /* parallel to cfg->providers: each provider's key, or NULL (copied) */
    const char *const *api_keys;
    /* the AWS credentials SigV4 providers sign with (copied; NULL: none) */
    const struct dispatch_aws_credentials *aws;
    /* the input at (partition, offset) is finished: its outputs are
     * acknowledged; generation as given to dispatch_message */
    void (*finished)(void *ctx, int32_t partition, uint32_t generation, int64_t offset);
    /* an output cannot be delivered in any form (the topics refuse even a
     * bounded dead letter): the worker must stop; why says what to fix */
    void (*undeliverable)(void *ctx, const char *why);
    /* delta inputs of (partition, generation) began (+) or ceased (-) to
     * wait in a full lane: the owner pauses the partition while any does.
     * May be NULL. */
    void (*pressure)(void *ctx, int32_t partition, uint32_t generation, int delta);
    void *ctx;
};

/* What dispatch counts beyond stats (for metrics). */
struct dispatch_counters {
    uint64_t abandoned;        /* jobs dropped unfinished while stopping */
    uint64_t outputs_replaced; /* refused outputs replaced by deliverable ones */
    uint64_t outputs_undeliverable;
    uint64_t reply_topic_results;   /* results sent to a request's allowed kafka_replyTopic */
    uint64_t reply_topics_refused;  /* requests whose kafka_replyTopic is not on the list */
    uint64_t reply_headers_skipped; /* headers too long to copy onto a result or cost record */
};

struct dispatch {
    struct loop *loop;
    const struct config *cfg;
    struct http *http;
    struct producer *producer;
    const char *worker_id;
    struct policy *policy;               /* for new jobs; running ones retain their own */
    struct dispatch_provider *providers; /* parallel to cfg->providers */
    struct dispatch_lane **lanes;        /* one per provider and model id met */
    size_t nlanes, lanes_cap;
    TAILQ_HEAD(, job) jobs;
    size_t njobs;
    int stopping;
    struct stats stats;
    struct dispatch_counters counters;
    struct ratelog_set trouble; /* provider trouble, per provider/model/kind */
    uint64_t random_state;
    void (*finished)(void *ctx, int32_t partition, uint32_t generation, int64_t offset);
    void (*undeliverable)(void *ctx, const char *why);
    void (*pressure)(void *ctx, int32_t partition, uint32_t generation, int delta);
    void *ctx;
};

/* New dispatch, or NULL with e set. */
struct dispatch *dispatch_new(const struct dispatch_options *o, struct err *e);
/* Frees every job left (their inputs are not finished) and the dispatch.
 * Call before freeing the consumer whose messages the jobs hold. */
void dispatch_free(struct dispatch *d);

/* A new message to work on; dispatch owns msg from here. */
void dispatch_message(struct dispatch *d, rd_kafka_message_t *msg, uint32_t generation);

/* New jobs use p (retained); running jobs keep theirs. */
void dispatch_set_policy(struct dispatch *d, struct policy *p);

/* Stopping: no provider call starts from now on (no retry, no fall back,
 * none waiting for a connection); jobs waiting to call are abandoned at
 * once, calls in flight may still finish and publish. */
void dispatch_stop(struct dispatch *d);
/* The grace is over: calls still in flight are cancelled and their jobs
 * abandoned. Jobs whose outputs wait for acknowledgements stay. Returns
 * how many were abandoned. */
size_t dispatch_abandon_calls(struct dispatch *d);

#endif

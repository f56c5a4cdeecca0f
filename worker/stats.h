/*
 * stats: what the worker counts for operators, and its rendering as
 * Prometheus text for the metrics endpoint. Counting is a few additions
 * per attempt; rendering happens only when scraped.
 *
 * Costs are exported in integer nano-USD (switchyard_model_cost_nanousd_total).
 * Prometheus stores float64, exact up to 2^53 nUSD (about 9 million USD) per
 * series: plenty for alerting; finance sums the cost topic, not this.
 */
#ifndef SWITCHYARD_STATS_H
#define SWITCHYARD_STATS_H

#include <stdint.h>

#include "consumer.h"
#include "cost.h"
#include "metrics.h"

/* How a provider call ended, from the worker's side. */
enum stats_outcome {
    OUTCOME_OK,
    OUTCOME_RATE_LIMITED, /* HTTP 429 */
    OUTCOME_SERVER_ERROR, /* HTTP 5xx (incl. Anthropic's 529) */
    OUTCOME_CLIENT_ERROR, /* other HTTP 4xx */
    OUTCOME_MALFORMED,    /* 2xx whose body could not be used */
    OUTCOME_TIMEOUT,
    OUTCOME_TRANSPORT, /* connection refused, reset, TLS, ... */
    OUTCOME_COUNT
};

#define STATS_LATENCY_BUCKETS 12

/* Per policy model, by name (a reload may add models; counts survive). */
struct stats_model {
    char *name, *provider;
    uint64_t attempts[OUTCOME_COUNT];
    uint64_t tokens[COST_NCAT];
    uint64_t cost_nusd, cost_records;
};

/* Per provider of worker.yaml. */
struct stats_provider {
    uint64_t latency_buckets[STATS_LATENCY_BUCKETS]; /* not cumulative */
    uint64_t latency_count, latency_sum_ms;
};

struct stats {
    int64_t started_ms; /* ms since the epoch */
    uint64_t received, results_ok, results_error, dead_letters, cost_records;
    uint64_t retries, fallbacks;
    uint64_t cost_nusd;
    uint64_t reloads_ok, reloads_failed;
    struct stats_model *models;
    size_t nmodels;
};

struct attempt;
struct policy_model;

/* One provider call of model m, through the provider counted in sp, ended. */
void stats_attempt(struct stats *s, struct stats_provider *sp, const struct policy_model *m,
                   const struct attempt *a);
/* One cost record was produced for a billable attempt. */
void stats_cost(struct stats *s, const struct policy_model *m, const struct attempt *a);
void stats_release(struct stats *s);

/* A provider as the metrics show it. */
struct stats_provider_view {
    const char *name;
    size_t in_flight, queued;
    const struct stats_provider *counts;
};

/* A lane (a provider and one of its models) as the metrics show it:
 * its rate limit and its circuit. */
struct stats_lane_view {
    const char *provider, *model; /* the provider's name and model id */
    size_t waiting;               /* calls waiting for the rate limit */
    int full;                     /* waiting reached queue_per_model: partitions paused */
    double rate[4];               /* per minute in force: requests, tokens, input, output; 0 none */
    uint64_t rate_limited;        /* 429s */
    uint64_t waited;              /* calls that waited for the limit */
    uint64_t circuit_skips;       /* candidates skipped while the circuit was open */
    int circuit_state;            /* 0 closed, 1 open, 2 half open */
    const uint64_t *transitions;  /* [3]: into closed, open, half open */
};

/* What a scrape shows: a read-only snapshot the owner fills. */
struct stats_view {
    const char *worker_id, *version;
    const struct stats *stats;
    size_t jobs_in_flight, producer_unacknowledged, partitions_assigned;
    int stopping, ready, kafka_up, in_group;
    uint64_t skipped;
    uint64_t abandoned, outputs_replaced, outputs_undeliverable;
    const char *topic_requests;
    const struct consumer_partition_info *partitions;
    size_t npartitions;
    const struct stats_provider_view *providers;
    size_t nproviders;
    const struct stats_lane_view *lanes;
    size_t nlanes;
};

void stats_render(const struct stats_view *v, struct metrics_buf *out);

#endif

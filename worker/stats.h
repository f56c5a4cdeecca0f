/*
 * stats: what the worker counts for operators, and its rendering as
 * Prometheus text for the metrics endpoint. Counting is a few additions
 * per attempt; rendering happens only when scraped.
 *
 * Costs are exported in integer nano-USD (switchyard_model_cost_nanousd_total)
 * and in USD, Prometheus' base unit (switchyard_model_cost_usd_total, the
 * same count written as a decimal). Prometheus stores float64, exact up to
 * 2^53 nUSD (about 9 million USD) per series: plenty for alerting; finance
 * sums the cost topic, not this.
 *
 * Label values are bounded: error codes are the schemas' closed sets (any
 * other code is counted as "other"), tenants at most max_tenants (the rest
 * as "other"), models and providers what the configuration names.
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
/* result.schema.json's error codes, and "other" */
#define STATS_RESULT_CODES 10
/* dead_letter.schema.json's codes, and "other" */
#define STATS_DEAD_LETTER_CODES 8
/* a tenant's name as tracked (request.c allows 128 bytes) */
#define STATS_TENANT_OTHER "other"

/* Per tenant, when metrics.tenant_label is on. */
struct stats_tenant {
    char *name; /* "" for requests without a tenant */
    uint64_t results_ok, results_error;
    uint64_t cost_nusd;
};

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

/* Why a reservation (costs.reserve) did not lead to its call. */
enum stats_reserve_failure {
    STATS_RESERVE_REFUSED,  /* the cost topic refused it for good */
    STATS_RESERVE_TIMEOUT,  /* not acknowledged within the bound */
    STATS_RESERVE_DEADLINE, /* the request's deadline passed while it waited */
    STATS_RESERVE_FAILURES
};
#define STATS_RESERVE_BUCKETS 10

struct stats {
    int64_t started_ms; /* ms since the epoch */
    uint64_t received, results_ok, results_error, dead_letters, cost_records;
    uint64_t retries, fallbacks;
    uint64_t cost_nusd;
    uint64_t reloads_ok, reloads_failed;
    uint64_t results_by_code[STATS_RESULT_CODES];           /* error results */
    uint64_t dead_letters_by_code[STATS_DEAD_LETTER_CODES]; /* sums to dead_letters */
    struct stats_model *models;
    size_t nmodels;
    /* at most max_tenants as stats_result was told; the rest in tenant_other */
    struct stats_tenant *tenants;
    size_t ntenants;
    struct stats_tenant tenant_other;
    /* costs.reserve */
    uint64_t reservations;         /* reserved records published */
    uint64_t reservations_settled; /* settled records of reserved calls produced */
    uint64_t reservations_failed[STATS_RESERVE_FAILURES];
    uint64_t reserve_wait_buckets[STATS_RESERVE_BUCKETS]; /* not cumulative */
    uint64_t reserve_wait_count, reserve_wait_sum_ms;
};

struct attempt;
struct policy_model;

/* One provider call of model m, through the provider counted in sp, ended. */
void stats_attempt(struct stats *s, struct stats_provider *sp, const struct policy_model *m,
                   const struct attempt *a);
/* One cost record was produced for a billable attempt. */
void stats_cost(struct stats *s, const struct policy_model *m, const struct attempt *a);
struct job;
/* The job's result was produced: counted by status and, for an error, by
 * job->error_code; with max_tenants > 0 also under its tenant (with its
 * billable attempts' cost), at most max_tenants of them, the rest under
 * "other". */
void stats_result(struct stats *s, const struct job *job, size_t max_tenants);
/* The job's result, counted by stats_result, was replaced by an error
 * result with code (result_too_large): its count moves there, so that the
 * counts by code stay those of the results topic. Same max_tenants. */
void stats_result_replaced(struct stats *s, const struct job *job, const char *code,
                           size_t max_tenants);
/* A reservation's acknowledgement (or refusal) came after ms. */
void stats_reserve_wait(struct stats *s, uint64_t ms);
/* An invalid message went to the dead-letter topic, for code. */
void stats_dead_letter(struct stats *s, const char *code);
void stats_release(struct stats *s);

/* What /proc/self/stat says, for the process_* metrics. */
struct stats_proc {
    uint64_t utime_ticks, stime_ticks; /* CPU time, in clock ticks */
    uint64_t start_ticks;              /* start, in clock ticks after boot */
    uint64_t vsize_bytes;
    uint64_t rss_pages;
};
/* Parses the text of /proc/<pid>/stat (the command name may hold spaces
 * and parentheses: the fields are counted after the last ')'). 0, or -1
 * when it does not have them. Pure. */
int stats_parse_proc_stat(const char *text, struct stats_proc *out);

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
    uint64_t reply_topic_results, reply_topics_refused, reply_headers_skipped;
    int64_t now_ms;   /* wall ms of the scrape: partitions' commit ages */
    int tenant_label; /* metrics.tenant_label: render the per-tenant series */
    int process;      /* render the process_* metrics (from /proc/self) */
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

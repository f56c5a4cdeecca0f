/*
 * dispatch: one request's life. A message becomes a job: decode (bad ->
 * dead letter), route (no fit -> error result), then the plan's candidates
 * in order, each with retries and backoff for transient failures, until one
 * answers or none is left; then its result and cost records are produced,
 * and when the broker has acknowledged them all, the input offset is done.
 */
#ifndef SWITCHYARD_DISPATCH_H
#define SWITCHYARD_DISPATCH_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "config.h"
#include "cost.h"
#include "err.h"
#include "http.h"
#include "loop.h"
#include "policy.h"
#include "providers/provider.h"
#include "request.h"
#include "router.h"

#define DISPATCH_MAX_ATTEMPTS 32

enum attempt_status { ATTEMPT_OK, ATTEMPT_ERROR, ATTEMPT_TIMEOUT };

/* One provider call. */
struct attempt {
    size_t model; /* index into the job's policy->models */
    enum attempt_status status;
    long http_status; /* 0: no HTTP response */
    uint64_t latency_ms;
    int billable;
    struct cost_usage usage; /* when billable */
    uint64_t cost_nusd;      /* when billable */
    int64_t ts_ms;           /* when it ended, ms since the epoch */
    char error_code[32];
    char error_msg[256];
};

/* What happened to each candidate of the route, for the result. */
enum route_fate { FATE_TAKEN, FATE_SKIPPED, FATE_FAILED, FATE_NOT_REACHED };

struct worker; /* main's wiring: config, policy, clients */

struct job {
    struct worker *worker;
    struct job *prev, *next;      /* the worker's live jobs */
    struct job *queue_next;       /* waiting for a provider connection */
    rd_kafka_message_t *msg;      /* the input; owned until the job ends */
    uint32_t generation;
    int64_t received_ms;          /* ms since the epoch */
    struct policy *policy;        /* retained: a reload does not change a job */
    struct request *req;          /* NULL for a dead letter */
    struct err input_error;       /* why it is a dead letter */
    struct plan plan;
    enum route_fate fate[POLICY_MAX_CANDIDATES];
    char *fate_reason[POLICY_MAX_CANDIDATES]; /* NULL: the router's reason */
    size_t current;               /* index into plan.candidates */
    unsigned tries_on_current;
    struct attempt *attempts; /* grown as calls are made: most need one */
    size_t nattempts, attempts_cap;
    uint64_t spent_nusd;          /* billable so far: the budget left shrinks */
    int ok;                       /* the final status */
    char error_code[32];
    char error_msg[256];
    struct provider_reply reply;  /* the answer, when ok */
    size_t answered_by;           /* attempt index of the answer */
    struct provider_http call;    /* the current HTTP request */
    struct http_transfer transfer;
    int transfer_running;
    int waiting_slot;             /* queued for its provider's connection cap */
    struct loop_timer backoff;
    unsigned outputs_pending;
    int64_t completed_ms;
};

/* The job's request id (or "" for an undecodable message). */
const char *job_id(const struct job *job);

#endif

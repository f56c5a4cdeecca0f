/*
 * job: the record of one request's life, shared by dispatch (which drives
 * it), output (which encodes it) and stats (which counts it). Data only:
 * no function here does anything but name a field.
 */
#ifndef SWITCHYARD_JOB_H
#define SWITCHYARD_JOB_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <sys/queue.h>

#include "cost.h"
#include "err.h"
#include "http.h"
#include "loop.h"
#include "policy.h"
#include "pqueue.h"
#include "providers/provider.h"
#include "ratelimit.h"
#include "request.h"
#include "router.h"

#define JOB_MAX_ATTEMPTS 32
#define JOB_CALL_ID_LEN 36 /* a UUID's text form */

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
    /* unique across workers and restarts (UUIDv7), made before the call
     * is sent: consumers de-duplicate cost records on it */
    char call_id[JOB_CALL_ID_LEN + 1];
    char error_code[32];
    char error_msg[256]; /* the provider's words, redacted and bounded */
    /* costs.reserve: the record output_cost makes is the call's
     * reservation ("reserved", reserved_nusd, usage 0), not its settlement */
    int reservation;
    uint64_t reserved_nusd; /* the call's worst case, when reservation */
    size_t number;          /* a reserved call never made: the attempt number it reserved as */
};

/* What happened to each candidate of the route, for the result. */
enum route_fate { FATE_TAKEN, FATE_SKIPPED, FATE_FAILED, FATE_NOT_REACHED };

/* What an output of the job is, so that one the broker refuses for good
 * can be replaced by one that can be delivered. */
enum job_output_kind {
    JOB_OUTPUT_RESULT,      /* the result */
    JOB_OUTPUT_COST,        /* a cost record */
    JOB_OUTPUT_DEAD_LETTER, /* the input, dead-lettered */
};

struct job;

struct job_output {
    struct job *job;
    enum job_output_kind kind;
    size_t attempt;    /* JOB_OUTPUT_COST: index into job->attempts (job->unmade when unmade) */
    int unmade;        /* JOB_OUTPUT_COST: settles a reserved call that was never made */
    unsigned replaced; /* times a refused version was replaced */
    const char *topic; /* where the current version went */
    size_t len;        /* bytes of the current version's value */
    int undelivered;   /* given up: no version of it was accepted */
};

struct dispatch;
struct dispatch_lane;

/* A reserved cost record in the producer's hands (costs.reserve): the
 * delivery report's opaque. Owned by the report: the job may end first (a
 * stop, a deadline), and then only the report frees it. */
struct job_reservation {
    struct job *job; /* NULL once the job no longer waits for it */
    int64_t sent_ms; /* loop ms when it was published */
};

struct job {
    struct dispatch *dispatch;
    TAILQ_ENTRY(job) link;    /* the dispatch's live jobs */
    struct pqueue_entry slot; /* waiting for a provider connection */
    rd_kafka_message_t *msg;  /* the input; owned until the job ends */
    uint32_t generation;
    int64_t received_ms;     /* ms since the epoch */
    struct policy *policy;   /* retained: a reload does not change a job */
    struct request *req;     /* NULL for a dead letter */
    struct err *input_error; /* why it is a dead letter (owned; NULL for any other job) */
    struct plan plan;        /* owned: router_plan_release */
    uint8_t fate[POLICY_MAX_CANDIDATES];      /* enum route_fate of each plan candidate */
    char *fate_reason[POLICY_MAX_CANDIDATES]; /* NULL: the router's reason */
    size_t current;                           /* index into plan.candidates */
    unsigned tries_on_current;
    struct attempt *attempts; /* grown as calls are made: most need one */
    size_t nattempts, attempts_cap;
    uint64_t spent_nusd; /* billable so far: the budget left shrinks */
    int ok;              /* the final status */
    int last_rejected;   /* the last failure was the provider refusing the request itself */
    char error_code[32];
    char *error_msg;             /* owned; set with error_code when the job fails, else NULL */
    struct provider_reply reply; /* the answer, when ok */
    size_t answered_by;          /* attempt index of the answer */
    char next_call_id[JOB_CALL_ID_LEN + 1]; /* the call being made */
    struct provider_http call;              /* the current HTTP request */
    uint32_t call_max_tokens;               /* the cap it was built with */
    struct http_transfer transfer;
    int transfer_running;
    struct loop_timer backoff; /* a retry's delay, or the watch on a wait in the lane */
    /* the lane (provider and model) of the current candidate: its calls
     * wait there in order for the rate limit and pass its circuit */
    struct dispatch_lane *lane;
    TAILQ_ENTRY(job) lane_link;
    int lane_queued;                /* waits in lane->waiting */
    int lane_front;                 /* the next wait goes first: it was rate limited */
    int pressing;                   /* counted in its partition's pressure (a full lane) */
    int64_t lane_since_ms;          /* loop ms when its wait began */
    uint64_t rate_waited_ms;        /* waited for rate limits so far, all lanes */
    unsigned rate_limited_calls;    /* 429s received */
    struct ratelimit_cost reserved; /* what the current call reserved */
    int call_started;               /* the current call holds its reservation */
    int probe;                      /* the current call is a half-open circuit's probe */
    int64_t sent_ms;                /* loop ms when the current call left the lane */
    /* costs.reserve: the current call's reservation waits for its
     * acknowledgement (the job holds its connection slot meanwhile) */
    struct job_reservation *reservation;
    int reserve_acked;   /* the current call's reservation is acknowledged: it may go */
    int reserve_pending; /* the current call has a reservation on its way or on the topic */
    /* reserved calls never made (refused by a stop of the wait, a deadline,
     * a transport that would not start): each is settled at cost 0 */
    struct attempt *unmade;
    size_t nunmade, unmade_cap;
    /* where its result goes (the results topic, or an allowed reply topic:
     * borrowed from the config); NULL until the first result is sent */
    const char *result_topic;
    struct job_output *outputs; /* once finished: result + cost records, or the dead letter */
    size_t noutputs;
    unsigned outputs_pending; /* sent and not yet settled */
    int64_t completed_ms;
};

/* The job's request id (or "" for an undecodable message). */
static inline const char *job_id(const struct job *job)
{
    return job->req ? job->req->id : "";
}

#endif

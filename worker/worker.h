/*
 * worker: the running process. Owns the loop, the Kafka clients, the HTTP
 * engine, the current policy, and every live job; handles signals
 * (SIGTERM/SIGINT: drain and exit; SIGHUP: reload the policy).
 */
#ifndef SWITCHYARD_WORKER_H
#define SWITCHYARD_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "consumer.h"
#include "dispatch.h"
#include "http.h"
#include "loop.h"
#include "metrics.h"
#include "policy.h"
#include "producer.h"
#include "stats.h"

#define SWITCHYARD_VERSION "0.1.0"

struct worker_provider {
    const struct config_provider *cfg;
    const struct provider_ops *ops;
    char *api_key;     /* from the environment; never logged */
    size_t in_flight;  /* calls running, capped by cfg->max_connections */
    struct job *waiting, **waiting_tail; /* calls waiting for a slot */
    size_t nwaiting;
    struct stats_provider stats;
};

struct worker {
    struct loop *loop;
    const struct config *cfg;
    const char *policy_path;
    struct policy *policy; /* current; jobs retain their own */
    struct http *http;
    struct producer *producer;
    struct consumer *consumer;
    struct metrics *metrics; /* NULL without metrics.listen */
    struct worker_provider *providers; /* parallel to cfg->providers */
    char worker_id[128];
    struct job *jobs; /* live */
    size_t njobs;
    int stopping;
    uint64_t stop_deadline_ms;
    int signal_fd;
    struct loop_io signals;
    struct loop_timer drain_timer;
    struct stats stats;
    uint64_t exit_when_idle_ms; /* >0: exit after this long with no work (tests, demo) */
    uint64_t idle_since_ms;
};

/* Runs the worker until it is told to stop. Returns the exit status. */
int worker_run(const struct config *cfg, struct policy *policy, const char *policy_path,
               uint64_t exit_when_idle_ms);

/* The provider a policy model calls; NULL if worker.yaml lacks it. */
struct worker_provider *worker_provider_for(struct worker *w, const struct policy_model *m);

#endif

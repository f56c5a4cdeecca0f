/*
 * kafka: what the consumer, the producer and the start-up probe share: a
 * librdkafka conf built from worker.yaml (with librdkafka's own log lines
 * routed through our JSON log), the rate-bounded warning for connection
 * errors, and waking the loop when a librdkafka queue has events
 * (librdkafka writes to a pipe when a queue turns non-empty).
 */
#ifndef SWITCHYARD_KAFKA_H
#define SWITCHYARD_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "loop.h"

enum kafka_role { KAFKA_CONSUMER, KAFKA_PRODUCER };

/* A conf from worker.yaml's kafka section, "${ENV}" values expanded (any
 * length), keeping the properties that matter to `role`, with a log
 * callback that writes librdkafka's lines as "kafka_log" JSON events. New
 * object, or NULL with e set. */
rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, enum kafka_role role, struct err *e);

/* --check-config's and the start's check of the kafka section, offline:
 * builds the conf objects the producer and the consumer start from (each
 * property their role keeps, "${ENV}" expanded, set on a fresh conf exactly
 * as kafka_conf_new sets it; then switchyard's own fixed settings) and
 * destroys them. Calls bad(ctx, i, msg) once for each property i of
 * cfg->kafka that either conf refuses, msg being "kafka: \"NAME\": ..."
 * (the variable that is not set, or librdkafka's own text, which never
 * quotes a value that came from the environment); i = cfg->nkafka for one
 * of switchyard's own settings. Returns how many. Connects to nothing. */
size_t kafka_conf_check(const struct config *cfg,
                        void (*bad)(void *ctx, size_t property, const char *msg), void *ctx);

/* rd_kafka_conf_set with our error value: 0, or -1 with e set. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, struct err *e);

/* The value of kafka property `name` in worker.yaml, "${ENV}" expanded:
 * borrowed (from cfg or the environment), NULL when not set. *var is set to
 * the variable's name (allocated, the caller frees it) when the value is a
 * "${ENV}" reference, else NULL; var may be NULL. */
const char *kafka_config_value(const struct config *cfg, const char *name, char **var);

/* syslog level (0 emerg .. 7 debug) -> ours: 0-3 error, 4 warn, 5-6 info,
 * 7 debug. */
enum log_level kafka_log_level(int syslog_level);

/* Whether a librdkafka error event means the cluster cannot be reached or
 * we cannot log in (all brokers down, transport, resolve, authentication,
 * SSL): what an operator must fix in bootstrap.servers or the security
 * settings. */
int kafka_error_is_connectivity(int err);

/* Logs a client error event as a warning naming bootstrap.servers and what
 * to check, at most one line per cause per 10 s with the count suppressed
 * (thread-safe). Other errors are logged as plain warnings, bounded the
 * same way. `client` names the client ("consumer", "producer"). */
void kafka_error_warn(const struct config *cfg, const char *client, int err, const char *reason);

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

/* rd_kafka_destroy_flags, waiting at most timeout_ms for it: past that
 * the destroy goes on in a thread of its own and -1 is returned (only
 * for a process about to exit). 0 when it finished in time. */
int kafka_destroy_bounded(rd_kafka_t *rk, int flags, int timeout_ms);

/* A fault-injection count for tests from the environment variable name
 * (SWITCHYARD_FAULT_*): *out = 0 when unset; -1 with e set when it is not
 * a number from 0 to 1e9 (a typo must not silently test nothing). */
int kafka_fault_env(const char *name, long *out, struct err *e);

#endif

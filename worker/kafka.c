/*
 * kafka: shared librdkafka plumbing. Never set here what at-least-once
 * depends on; the consumer and the producer set those themselves. Never
 * copy a configured value into a fixed buffer (a PEM certificate in an
 * environment variable is several KiB), and never log a value: only
 * bootstrap.servers is named in messages.
 */
#include "kafka.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ratelog.h"

/* Properties only one side understands; librdkafka warns about the rest. */
static const char *const consumer_only[] = {"group.id",
                                            "partition.assignment.strategy",
                                            "session.timeout.ms",
                                            "group.instance.id",
                                            "auto.offset.reset",
                                            "max.poll.interval.ms",
                                            "heartbeat.interval.ms",
                                            "fetch.wait.max.ms",
                                            "fetch.min.bytes",
                                            "fetch.max.bytes",
                                            "max.partition.fetch.bytes",
                                            "fetch.error.backoff.ms",
                                            "queued.min.messages",
                                            "queued.max.messages.kbytes",
                                            "isolation.level",
                                            NULL};
static const char *const producer_only[] = {"message.timeout.ms",
                                            "compression.type",
                                            "compression.level",
                                            "linger.ms",
                                            "queue.buffering.max.ms",
                                            "queue.buffering.max.messages",
                                            "queue.buffering.max.kbytes",
                                            "batch.num.messages",
                                            "batch.size",
                                            "sticky.partitioning.linger.ms",
                                            NULL};

/* Latency-aware defaults, set before worker.yaml's properties (which win).
 * librdkafka's own are tuned for batch throughput: a fetch that finds no
 * message waits up to 500 ms where the broker does not answer it early
 * (librdkafka's mock cluster; Kafka itself answers as soon as a message
 * lands), and a produced record lingers 5 ms for company. A request's
 * cost reservation is acknowledged before its call, and its result then
 * lingers again: 10 ms a request on those two alone. At a few thousand
 * records a second, batches fill while a produce request is out anyway.
 * config/worker.yaml shows both, with the same reasons. */
static const char *const consumer_defaults[][2] = {{"fetch.wait.max.ms", "10"}, {NULL, NULL}};
static const char *const producer_defaults[][2] = {{"linger.ms", "1"}, {NULL, NULL}};

static int kafka_in(const char *name, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

/* librdkafka's log and error lines come from its own threads: the rate
 * bounds they share are guarded by this lock. */
static pthread_mutex_t kafka_log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ratelog_set kafka_log_rate = {.interval_ms = 10000};
static struct ratelog_set kafka_error_rate = {.interval_ms = 10000};

static int kafka_rate_allow(struct ratelog_set *set, const char *key, uint64_t *suppressed)
{
    pthread_mutex_lock(&kafka_log_lock);
    int allow = ratelog_allow_key(set, key, loop_clock_ms(), suppressed);
    pthread_mutex_unlock(&kafka_log_lock);
    return allow;
}

enum log_level kafka_log_level(int syslog_level)
{
    if (syslog_level <= 3)
        return LOG_ERROR;
    if (syslog_level == 4)
        return LOG_WARN;
    if (syslog_level <= 6)
        return LOG_INFO;
    return LOG_DEBUG;
}

/* Every librdkafka line as a JSON event. Warnings and errors repeat on
 * every reconnect: one line per client and facility per interval. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum log_level ours = kafka_log_level(level);
    const char *name = rk ? rd_kafka_name(rk) : "rdkafka";
    uint64_t suppressed = 0;
    if (ours >= LOG_WARN) {
        char key[96];
        snprintf(key, sizeof key, "%s|%s", name, fac);
        if (!kafka_rate_allow(&kafka_log_rate, key, &suppressed))
            return;
    }
    if (suppressed)
        log_event(ours, "kafka_log", "%s %s: %s (%llu more %s lines suppressed)", name, fac, buf,
                  (unsigned long long)suppressed, fac);
    else
        log_event(ours, "kafka_log", "%s %s: %s", name, fac, buf);
}

int kafka_error_is_connectivity(int err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
        return 1;
    default:
        return 0;
    }
}

static const char *kafka_error_advice(int err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__RESOLVE:
        return "check the host names in bootstrap.servers and DNS";
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
        return "check security.protocol, sasl.mechanisms, sasl.username and the password";
    case RD_KAFKA_RESP_ERR__SSL:
        return "check security.protocol, ssl.ca.location and the client certificate";
    default:
        return "check bootstrap.servers, that the brokers are running and that their "
               "listeners are reachable from here";
    }
}

void kafka_error_warn(const struct config *cfg, const char *client, int err, const char *reason)
{
    const char *ename = rd_kafka_err2name((rd_kafka_resp_err_t)err);
    char key[96];
    snprintf(key, sizeof key, "%s|%s", client, ename);
    uint64_t suppressed = 0;
    if (!kafka_rate_allow(&kafka_error_rate, key, &suppressed))
        return;
    char more[64] = "";
    if (suppressed)
        snprintf(more, sizeof more, " (%llu more suppressed)", (unsigned long long)suppressed);
    if (!kafka_error_is_connectivity(err)) {
        log_warn("kafka_error", "%s: %s: %s%s", client, ename, reason, more);
        return;
    }
    const char *servers = kafka_config_value(cfg, "bootstrap.servers", NULL);
    log_warn("kafka_unreachable",
             "%s: cannot reach the Kafka cluster at bootstrap.servers "
             "\"%s\" (%s: %s); %s%s",
             client, servers ? servers : "(not set)", ename, reason, kafka_error_advice(err), more);
}

/* The value of one property, "${ENV}" expanded: borrowed, NULL when the
 * variable is unset; *var as kafka_config_value says. */
static const char *kafka_property_value(const struct config_kafka_property *p, char **var)
{
    if (var)
        *var = NULL;
    const char *value = p->value;
    size_t n = strlen(value);
    if (n > 3 && value[0] == '$' && value[1] == '{' && value[n - 1] == '}') {
        /* no copy of the value: a PEM certificate or a long secret is
         * passed to librdkafka whole */
        char *v = strndup(value + 2, n - 3);
        const char *env = v ? getenv(v) : NULL;
        if (var)
            *var = v;
        else
            free(v);
        return env;
    }
    return value;
}

const char *kafka_config_value(const struct config *cfg, const char *name, char **var)
{
    if (var)
        *var = NULL;
    for (size_t i = 0; i < cfg->nkafka; i++)
        if (strcmp(cfg->kafka[i].name, name) == 0)
            return kafka_property_value(&cfg->kafka[i], var);
    return NULL;
}

/* librdkafka's text without its trailing line break, and with `value`
 * (from the environment: it may be a secret put under the wrong property)
 * never quoted: each "value" becomes "${VAR}". New string, NULL when out
 * of memory. */
static char *kafka_refusal_text(const char *errstr, const char *value, const char *var)
{
    size_t n = strlen(errstr);
    while (n > 0 && (errstr[n - 1] == '\n' || errstr[n - 1] == '\r' || errstr[n - 1] == ' '))
        n--;
    size_t vlen = value ? strlen(value) : 0;
    /* each replacement is at most strlen(var) + 5 bytes ("${VAR}" quoted) */
    size_t cap = n + 1 + (var ? (strlen(var) + 5) * (n / 3 + 1) : 0);
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        if (var && vlen && errstr[i] == '"' && i + vlen + 2 <= n &&
            memcmp(errstr + i + 1, value, vlen) == 0 && errstr[i + vlen + 1] == '"') {
            size_t vn = strlen(var);
            memcpy(o, "\"${", 3);
            memcpy(o + 3, var, vn);
            memcpy(o + 3 + vn, "}\"", 2);
            o += vn + 5;
            i += vlen + 2;
            continue;
        }
        *o++ = errstr[i++];
    }
    *o = '\0';
    return out;
}

/* Sets cfg->kafka[i] on conf, "${ENV}" expanded: 0, or -1 with e set to
 * "kafka: \"NAME\": why". The one place a configured property reaches a
 * conf: the worker's start and --check-config both come through here. */
static int kafka_conf_put(rd_kafka_conf_t *conf, const struct config *cfg, size_t i, struct err *e)
{
    const char *name = cfg->kafka[i].name;
    char *var = NULL;
    const char *value = kafka_property_value(&cfg->kafka[i], &var);
    int rc = 0;
    char errstr[512];
    if (!value) {
        rc = err_set(e, ERR_CONFIG, "kafka_config",
                     "kafka: \"%.64s\": environment variable %s is not set", name,
                     var ? var : "(name unreadable)");
    } else if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        char *why = kafka_refusal_text(errstr, value, var);
        rc = err_set(e, ERR_CONFIG, "kafka_config", "kafka: \"%.64s\": librdkafka refuses %s: %s",
                     name, var ? "the value of its variable" : "the value",
                     why ? why : "(out of memory)");
        free(why);
    }
    free(var);
    return rc;
}

/* Whether property `name` goes into the conf of `role`. */
static int kafka_for_role(const char *name, enum kafka_role role)
{
    return !kafka_in(name, role == KAFKA_CONSUMER ? producer_only : consumer_only);
}

rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, enum kafka_role role, struct err *e)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    const char *const(*defaults)[2] =
        role == KAFKA_PRODUCER ? producer_defaults : consumer_defaults;
    for (size_t j = 0; defaults[j][0]; j++) {
        if (kafka_conf_set(conf, defaults[j][0], defaults[j][1], e) < 0) {
            rd_kafka_conf_destroy(conf); /* a librdkafka without it: older than 2.0.2 */
            return NULL;
        }
    }
    for (size_t i = 0; i < cfg->nkafka; i++) {
        if (!kafka_for_role(cfg->kafka[i].name, role))
            continue;
        if (kafka_conf_put(conf, cfg, i, e) < 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

/* Switchyard's own settings that hold whatever worker.yaml says, as
 * producer_new and consumer_new set them over kafka_conf_new's conf (the
 * ones they set only when worker.yaml does not are left out: worker.yaml's
 * value is then the one checked). */
static const char *const producer_own[][2] = {
    {"enable.idempotence", "true"}, {"acks", "all"}, {NULL, NULL}};
static const char *const consumer_own[][2] = {{"enable.auto.commit", "false"},
                                              {"enable.auto.offset.store", "false"},
                                              {"enable.partition.eof", "false"},
                                              {NULL, NULL}};

size_t kafka_conf_check(const struct config *cfg,
                        void (*bad)(void *ctx, size_t property, const char *msg), void *ctx)
{
    static const enum kafka_role roles[] = {KAFKA_PRODUCER, KAFKA_CONSUMER};
    rd_kafka_conf_t *confs[2] = {rd_kafka_conf_new(), rd_kafka_conf_new()};
    size_t nbad = 0;
    for (size_t i = 0; i < cfg->nkafka; i++) {
        /* a property both roles refuse is reported once */
        for (size_t r = 0; r < 2; r++) {
            struct err e = {0};
            if (!kafka_for_role(cfg->kafka[i].name, roles[r]) ||
                kafka_conf_put(confs[r], cfg, i, &e) == 0)
                continue;
            bad(ctx, i, e.msg);
            nbad++;
            break;
        }
    }
    for (size_t r = 0; r < 2; r++) {
        const char *const(*own)[2] = roles[r] == KAFKA_PRODUCER ? producer_own : consumer_own;
        for (size_t j = 0; own[j][0]; j++) {
            struct err e = {0};
            if (kafka_conf_set(confs[r], own[j][0], own[j][1], &e) < 0) {
                bad(ctx, cfg->nkafka, e.msg);
                nbad++;
            }
        }
        rd_kafka_conf_destroy(confs[r]);
    }
    return nbad;
}

int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, struct err *e)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return err_set(e, ERR_CONFIG, "kafka_config", "kafka %s: %s", name, errstr);
    return 0;
}

static void kafka_woken(struct loop_io *io, unsigned events)
{
    (void)events;
    struct kafka_wake *w = io->data;
    char buf[256];
    while (read(w->fds[0], buf, sizeof buf) > 0)
        ;
    w->cb(w->data);
}

int kafka_wake_start(struct kafka_wake *w, struct loop *loop, rd_kafka_queue_t *queue,
                     void (*cb)(void *data), void *data, struct err *e)
{
    *w = (struct kafka_wake){.loop = loop, .queue = queue, .fds = {-1, -1}, .cb = cb, .data = data};
    if (pipe2(w->fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return err_set(e, ERR_FATAL, "pipe", "cannot create a pipe");
    rd_kafka_queue_io_event_enable(queue, w->fds[1], "!", 1);
    w->io = (struct loop_io){.fd = w->fds[0], .cb = kafka_woken, .data = w};
    if (loop_io_set(loop, &w->io, LOOP_READ) < 0)
        return err_set(e, ERR_FATAL, "epoll", "cannot watch a pipe");
    return 0;
}

void kafka_wake_stop(struct kafka_wake *w)
{
    if (w->queue)
        rd_kafka_queue_io_event_enable(w->queue, -1, NULL, 0);
    if (w->io.events)
        loop_io_set(w->loop, &w->io, 0);
    for (int i = 0; i < 2; i++) /* > 0: a zeroed struct must not close stdin */
        if (w->fds[i] > 0)
            close(w->fds[i]);
    w->queue = NULL;
    w->fds[0] = w->fds[1] = -1;
}

struct kafka_destroy_job {
    rd_kafka_t *rk;
    int flags;
};

static void *kafka_destroy_thread(void *arg)
{
    struct kafka_destroy_job *job = arg;
    rd_kafka_destroy_flags(job->rk, job->flags);
    free(job);
    return NULL;
}

int kafka_destroy_bounded(rd_kafka_t *rk, int flags, int timeout_ms)
{
    struct kafka_destroy_job *job = malloc(sizeof *job);
    pthread_t th;
    if (!job) {
        rd_kafka_destroy_flags(rk, flags);
        return 0;
    }
    *job = (struct kafka_destroy_job){.rk = rk, .flags = flags};
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals stay with the main thread */
    int rc = pthread_create(&th, NULL, kafka_destroy_thread, job);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        kafka_destroy_thread(job);
        return 0;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(th, NULL, &until) == 0)
        return 0;
    /* librdkafka waits for a coordinator that does not answer (a commit
     * still pending, a group it cannot leave): the process is about to
     * exit and must not wait with it */
    pthread_detach(th);
    return -1;
}

int kafka_fault_env(const char *name, long *out, struct err *e)
{
    const char *v = getenv(name);
    *out = 0;
    if (!v || !*v)
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < 0 || n > 1000000000 || v[0] < '0' || v[0] > '9')
        return err_set(e, ERR_CONFIG, "environment", "%s: expected a number of times (0 to 1e9)",
                       name);
    *out = n;
    return 0;
}

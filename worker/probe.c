/*
 * probe: the bounded start-up check. One thread, one short-lived producer
 * handle (never the worker's own clients, whose callbacks run on the
 * loop), metadata requests for all topics (all_topics=1 never asks the
 * broker to auto-create anything) every second until one is answered or
 * the deadline passes. It must never block the loop: the loop only reads
 * a pipe and joins a thread that has already written its result.
 */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"
#include "ratelog.h"

#define PROBE_ATTEMPT_MS 1000 /* one metadata request; also the bound on kafka_probe_free */
#define PROBE_WARN_MS 5000    /* "not reachable yet", at most this often */

struct kafka_probe {
    struct loop *loop;
    const struct config *cfg;
    void (*done)(void *data, const struct kafka_probe_result *r);
    void *data;
    pthread_t thread;
    int thread_running; /* started and not joined */
    atomic_int stop;
    int fds[2];
    struct loop_io io;
    struct kafka_probe_result result;
    char error[640]; /* room for librdkafka's 512-byte errstr and our words */
};

size_t kafka_probe_missing(const struct rd_kafka_metadata *md, const char *const *want,
                           size_t nwant, const char **missing)
{
    size_t n = 0;
    for (size_t w = 0; w < nwant; w++) {
        int found = 0;
        for (int t = 0; md && t < md->topic_cnt && !found; t++)
            found = strcmp(md->topics[t].topic, want[w]) == 0 &&
                    md->topics[t].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
                    md->topics[t].err != RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
        if (!found)
            missing[n++] = want[w];
    }
    return n;
}

/* The probe's own client: its connection errors are what the probe
 * reports itself, once per interval; librdkafka's detail goes to debug. */
static void probe_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    log_debug("kafka_probe_error", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void probe_sleep_until(struct kafka_probe *p, uint64_t until_ms)
{
    while (!atomic_load(&p->stop) && loop_clock_ms() < until_ms) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void probe_check(struct kafka_probe *p)
{
    const struct config *cfg = p->cfg;
    const char *servers = kafka_config_value(cfg, "bootstrap.servers", NULL);
    uint64_t start = loop_clock_ms();
    uint64_t deadline = start + (uint64_t)cfg->limits.startup_timeout_ms;
    struct ratelog warn = {.interval_ms = PROBE_WARN_MS};
    struct err e = {0};
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, KAFKA_PRODUCER, &e);
    if (!conf || kafka_conf_set(conf, "allow.auto.create.topics", "false", &e) < 0) {
        snprintf(p->error, sizeof p->error, "%s", e.msg);
        goto out;
    }
    rd_kafka_conf_set_error_cb(conf, probe_error_cb);
    char errstr[512];
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        snprintf(p->error, sizeof p->error, "cannot create a Kafka client: %s", errstr);
        goto out;
    }
    conf = NULL;
    snprintf(p->error, sizeof p->error, "no answer");
    while (!atomic_load(&p->stop)) {
        uint64_t now = loop_clock_ms();
        if (now >= deadline)
            break;
        uint64_t slot = deadline - now < PROBE_ATTEMPT_MS ? deadline - now : PROBE_ATTEMPT_MS;
        const struct rd_kafka_metadata *md = NULL;
        uint64_t attempt_start = now;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, (int)slot);
        if (!err) {
            const char *want[KAFKA_PROBE_TOPICS] = {cfg->topic_requests, cfg->topic_results,
                                                    cfg->topic_costs, cfg->topic_dead_letter};
            p->result.reachable = 1;
            p->result.nmissing =
                kafka_probe_missing(md, want, KAFKA_PROBE_TOPICS, p->result.missing);
            rd_kafka_metadata_destroy(md);
            break;
        }
        snprintf(p->error, sizeof p->error, "%s", rd_kafka_err2str(err));
        uint64_t suppressed = 0;
        now = loop_clock_ms();
        if (ratelog_allow(&warn, now, &suppressed))
            log_warn("kafka_not_reachable_yet",
                     "the Kafka cluster at bootstrap.servers \"%s\" does not answer yet (%s); "
                     "waiting up to %llu ms more before giving up",
                     servers ? servers : "(not set)", p->error,
                     (unsigned long long)(deadline > now ? deadline - now : 0));
        /* an attempt that failed at once must not turn into a busy loop */
        probe_sleep_until(p, attempt_start + slot);
    }
out:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (rk)
        rd_kafka_destroy(rk);
    p->result.error = p->result.reachable ? NULL : p->error;
    p->result.elapsed_ms = (long long)(loop_clock_ms() - start);
}

static void *probe_thread(void *arg)
{
    struct kafka_probe *p = arg;
    probe_check(p);
    ssize_t w = write(p->fds[1], "!", 1);
    (void)w;
    return NULL;
}

static void probe_woken(struct loop_io *io, unsigned events)
{
    (void)events;
    struct kafka_probe *p = io->data;
    char c;
    if (read(p->fds[0], &c, 1) != 1)
        return;
    loop_io_set(p->loop, &p->io, 0);
    /* the thread has written its result and returns: a join that does not
     * wait, and that makes its writes visible here */
    pthread_join(p->thread, NULL);
    p->thread_running = 0;
    if (!atomic_load(&p->stop))
        p->done(p->data, &p->result);
}

struct kafka_probe *kafka_probe_start(struct loop *loop, const struct config *cfg,
                                      void (*done)(void *data, const struct kafka_probe_result *r),
                                      void *data, struct err *e)
{
    struct kafka_probe *p = calloc(1, sizeof *p);
    if (!p) {
        err_set(e, ERR_FATAL, "oom", "out of memory");
        return NULL;
    }
    *p =
        (struct kafka_probe){.loop = loop, .cfg = cfg, .done = done, .data = data, .fds = {-1, -1}};
    atomic_init(&p->stop, 0);
    if (pipe2(p->fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        err_set(e, ERR_FATAL, "pipe", "cannot create a pipe: %s", strerror(errno));
        goto fail;
    }
    p->io = (struct loop_io){.fd = p->fds[0], .cb = probe_woken, .data = p};
    if (loop_io_set(loop, &p->io, LOOP_READ) < 0) {
        err_set(e, ERR_FATAL, "epoll", "cannot watch a pipe");
        goto fail;
    }
    int rc = pthread_create(&p->thread, NULL, probe_thread, p);
    if (rc != 0) {
        err_set(e, ERR_FATAL, "thread", "cannot start the start-up check: %s", strerror(rc));
        goto fail;
    }
    p->thread_running = 1;
    return p;
fail:
    kafka_probe_free(p);
    return NULL;
}

void kafka_probe_free(struct kafka_probe *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    if (p->thread_running)
        pthread_join(p->thread, NULL);
    if (p->io.events)
        loop_io_set(p->loop, &p->io, 0);
    for (int i = 0; i < 2; i++)
        if (p->fds[i] >= 0)
            close(p->fds[i]);
    free(p);
}

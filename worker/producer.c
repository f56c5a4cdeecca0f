/*
 * producer: outputs go to Kafka through one idempotent producer. Each
 * output is an allocated record holding its bytes until acknowledged:
 * delivery errors and a full local queue are retried from memory, never
 * dropped, and never sent to the LLM provider again.
 */
#include "producer.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define PRODUCER_RETRY_MS 100
#define PRODUCER_POLL_MS 100

struct output {
    const char *topic; /* borrowed from the config, which outlives us */
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    rd_kafka_headers_t *headers; /* a copy is handed to each send */
    producer_acked_cb acked;
    void *opaque;
    unsigned failures;
    struct output *next; /* in the waiting list */
};

struct producer {
    struct loop *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *main_queue;
    int pipe_fds[2];
    struct loop_io wake;
    struct loop_timer poll_timer, retry_timer;
    struct output *waiting, **waiting_tail; /* to (re)send */
    size_t pending;
};

static void producer_output_free(struct output *o)
{
    free(o->key);
    free(o->value);
    if (o->headers)
        rd_kafka_headers_destroy(o->headers);
    free(o);
}

static void producer_wait(struct producer *p, struct output *o)
{
    o->next = NULL;
    *p->waiting_tail = o;
    p->waiting_tail = &o->next;
    if (!loop_timer_armed(&p->retry_timer))
        loop_timer_start(p->loop, &p->retry_timer, PRODUCER_RETRY_MS);
}

/* 0 sent; 1 the local queue is full (try later); -1 refused for good */
static int producer_try(struct producer *p, struct output *o)
{
    rd_kafka_headers_t *h = o->headers ? rd_kafka_headers_copy(o->headers) : NULL;
    /* rd_kafka_produceva, not producev: the RD_KAFKA_V_ macros are GNU
     * statement expressions, which -Wpedantic refuses */
    rd_kafka_vu_t vus[6] = {
        {.vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = o->topic},
        {.vtype = RD_KAFKA_VTYPE_KEY, .u.mem = {o->key, o->key_len}},
        {.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {o->value, o->value_len}},
        {.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY},
        {.vtype = RD_KAFKA_VTYPE_OPAQUE, .u.ptr = o},
        {.vtype = RD_KAFKA_VTYPE_HEADERS, .u.headers = h},
    };
    rd_kafka_error_t *error = rd_kafka_produceva(p->rk, vus, h ? 6 : 5);
    if (!error)
        return 0; /* h is owned by librdkafka now */
    rd_kafka_resp_err_t err = rd_kafka_error_code(error);
    rd_kafka_error_destroy(error);
    if (h)
        rd_kafka_headers_destroy(h);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return 1;
    log_error("produce_refused", "topic %s: %s", o->topic, rd_kafka_err2str(err));
    return -1;
}

static void producer_flush_waiting(struct producer *p)
{
    while (p->waiting) {
        struct output *o = p->waiting;
        int rc = producer_try(p, o);
        if (rc == 1)
            break; /* still full: backpressure, try on the next tick */
        p->waiting = o->next;
        if (!p->waiting)
            p->waiting_tail = &p->waiting;
        if (rc < 0) {
            /* e.g. message too large for the broker: keep it and retry;
             * losing an output is never an option, and the log says why */
            o->failures++;
            producer_wait(p, o);
            break;
        }
    }
    if (p->waiting && !loop_timer_armed(&p->retry_timer))
        loop_timer_start(p->loop, &p->retry_timer, PRODUCER_RETRY_MS);
}

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct producer *p = opaque;
    struct output *o = msg->_private;
    if (msg->err) {
        if (o->failures++ % 10 == 0)
            log_warn("delivery_failed", "topic %s: %s; sending again", o->topic,
                     rd_kafka_err2str(msg->err));
        producer_wait(p, o);
        return;
    }
    p->pending--;
    producer_acked_cb acked = o->acked;
    void *arg = o->opaque;
    producer_output_free(o);
    acked(arg);
}

void producer_poll(struct producer *p)
{
    rd_kafka_poll(p->rk, 0);
    producer_flush_waiting(p);
}

static void producer_woken(struct loop_io *io, unsigned events)
{
    (void)events;
    struct producer *p = io->data;
    char buf[256];
    while (read(p->pipe_fds[0], buf, sizeof buf) > 0)
        ;
    producer_poll(p);
}

static void producer_tick(struct loop_timer *t)
{
    struct producer *p = t->data;
    producer_poll(p);
    loop_timer_start(p->loop, &p->poll_timer, PRODUCER_POLL_MS);
}

static void producer_retry(struct loop_timer *t)
{
    producer_flush_waiting(t->data);
}

static int producer_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                        struct err *e)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return err_set(e, ERR_CONFIG, "kafka_config", "producer %s: %s", name, errstr);
    return 0;
}

rd_kafka_conf_t *producer_base_conf(const struct config *cfg, int consumer, struct err *e)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < cfg->nkafka; i++) {
        const char *name = cfg->kafka[i].name, *value = cfg->kafka[i].value;
        /* group.id and friends only matter to the consumer; librdkafka
         * warns about consumer properties on a producer, so skip them */
        if (!consumer && (strcmp(name, "group.id") == 0 ||
                          strcmp(name, "partition.assignment.strategy") == 0 ||
                          strcmp(name, "session.timeout.ms") == 0 ||
                          strcmp(name, "group.instance.id") == 0 ||
                          strcmp(name, "auto.offset.reset") == 0 ||
                          strcmp(name, "max.poll.interval.ms") == 0 ||
                          strcmp(name, "heartbeat.interval.ms") == 0))
            continue;
        if (consumer && (strcmp(name, "message.timeout.ms") == 0 ||
                         strcmp(name, "compression.type") == 0 ||
                         strcmp(name, "linger.ms") == 0 ||
                         strcmp(name, "queue.buffering.max.ms") == 0 ||
                         strcmp(name, "batch.num.messages") == 0))
            continue;
        char expanded[1024];
        size_t n = strlen(value);
        if (n > 3 && value[0] == '$' && value[1] == '{' && value[n - 1] == '}') {
            char var[256];
            snprintf(var, sizeof var, "%.*s", (int)(n - 3), value + 2);
            const char *env = getenv(var);
            if (!env) {
                rd_kafka_conf_destroy(conf);
                err_set(e, ERR_CONFIG, "kafka_config",
                        "kafka %s: environment variable %s is not set", name, var);
                return NULL;
            }
            snprintf(expanded, sizeof expanded, "%s", env);
            value = expanded;
        }
        if (producer_set(conf, name, value, e) < 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

struct producer *producer_new(struct loop *loop, const struct config *cfg, struct err *e)
{
    struct producer *p = calloc(1, sizeof *p);
    if (!p) {
        err_set(e, ERR_FATAL, "oom", "out of memory");
        return NULL;
    }
    p->loop = loop;
    p->pipe_fds[0] = p->pipe_fds[1] = -1;
    p->waiting_tail = &p->waiting;
    rd_kafka_conf_t *conf = producer_base_conf(cfg, 0, e);
    if (!conf)
        goto fail;
    if (producer_set(conf, "enable.idempotence", "true", e) < 0 ||
        producer_set(conf, "acks", "all", e) < 0) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, producer_dr_cb);
    rd_kafka_conf_set_opaque(conf, p);
    char errstr[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        err_set(e, ERR_CONFIG, "kafka", "cannot create the producer: %s", errstr);
        goto fail;
    }
    if (pipe2(p->pipe_fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        err_set(e, ERR_FATAL, "pipe", "cannot create a pipe");
        goto fail;
    }
    p->main_queue = rd_kafka_queue_get_main(p->rk);
    rd_kafka_queue_io_event_enable(p->main_queue, p->pipe_fds[1], "p", 1);
    p->wake.fd = p->pipe_fds[0];
    p->wake.cb = producer_woken;
    p->wake.data = p;
    loop_io_set(loop, &p->wake, LOOP_READ);
    p->poll_timer.cb = producer_tick;
    p->poll_timer.data = p;
    p->retry_timer.cb = producer_retry;
    p->retry_timer.data = p;
    loop_timer_start(loop, &p->poll_timer, PRODUCER_POLL_MS);
    return p;
fail:
    producer_free(p, 0);
    return NULL;
}

int producer_send(struct producer *p, const char *topic, const char *key, size_t key_len,
                  char *value, size_t value_len, rd_kafka_headers_t *headers,
                  producer_acked_cb acked, void *opaque)
{
    struct output *o = calloc(1, sizeof *o);
    char *key_copy = malloc(key_len + 1);
    if (!o || !key_copy) {
        free(o);
        free(key_copy);
        free(value);
        if (headers)
            rd_kafka_headers_destroy(headers);
        return -1;
    }
    memcpy(key_copy, key, key_len);
    key_copy[key_len] = '\0';
    *o = (struct output){.topic = topic, .key = key_copy, .key_len = key_len, .value = value,
                         .value_len = value_len, .headers = headers, .acked = acked,
                         .opaque = opaque};
    p->pending++;
    if (p->waiting || producer_try(p, o) != 0)
        producer_wait(p, o);
    return 0;
}

size_t producer_pending(const struct producer *p)
{
    return p->pending;
}

size_t producer_flush(struct producer *p, int timeout_ms)
{
    int64_t deadline = loop_wall_ms() + timeout_ms;
    do {
        producer_flush_waiting(p);
        rd_kafka_flush(p->rk, 100);
        rd_kafka_poll(p->rk, 0);
    } while (p->pending > 0 && loop_wall_ms() < deadline);
    return p->pending;
}

size_t producer_free(struct producer *p, int timeout_ms)
{
    if (!p)
        return 0;
    size_t lost = 0;
    if (p->rk) {
        lost = producer_flush(p, timeout_ms);
        /* outputs still in librdkafka are purged; their reports free them */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        p->waiting_tail = &p->waiting; /* reports of purged outputs now re-queue here */
        rd_kafka_poll(p->rk, 0);
    }
    while (p->waiting) {
        struct output *o = p->waiting;
        p->waiting = o->next;
        producer_output_free(o);
    }
    if (p->wake.events)
        loop_io_set(p->loop, &p->wake, 0);
    loop_timer_stop(p->loop, &p->poll_timer);
    loop_timer_stop(p->loop, &p->retry_timer);
    if (p->main_queue)
        rd_kafka_queue_destroy(p->main_queue);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    if (p->pipe_fds[0] >= 0)
        close(p->pipe_fds[0]);
    if (p->pipe_fds[1] >= 0)
        close(p->pipe_fds[1]);
    free(p);
    return lost;
}

/*
 * producer: outputs go to Kafka through one idempotent producer. Each
 * output is an allocated record holding its bytes until acknowledged:
 * delivery errors and a full local queue are retried from memory, never
 * dropped, and never sent to the LLM provider again.
 */
#include "producer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
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
    struct kafka_wake wake;
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

static void producer_woken(void *data)
{
    producer_poll(data);
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

struct producer *producer_new(struct loop *loop, const struct config *cfg, struct err *e)
{
    struct producer *p = calloc(1, sizeof *p);
    if (!p) {
        err_set(e, ERR_FATAL, "oom", "out of memory");
        return NULL;
    }
    p->loop = loop;
    p->waiting_tail = &p->waiting;
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, KAFKA_PRODUCER, e);
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
    p->main_queue = rd_kafka_queue_get_main(p->rk);
    if (kafka_wake_start(&p->wake, loop, p->main_queue, producer_woken, p, e) < 0)
        goto fail;
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
    kafka_wake_stop(&p->wake);
    loop_timer_stop(p->loop, &p->poll_timer);
    loop_timer_stop(p->loop, &p->retry_timer);
    if (p->main_queue)
        rd_kafka_queue_destroy(p->main_queue);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    free(p);
    return lost;
}

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
    producer_done_cb acked;
    void *opaque;
    unsigned failures;
    unsigned generation;  /* of the librdkafka instance it was handed to */
    struct output *next;  /* in the waiting list */
    struct output *prev_sent, *next_sent; /* while librdkafka holds it */
};

struct producer {
    struct loop *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *main_queue;
    struct kafka_wake wake;
    struct loop_timer poll_timer, retry_timer;
    struct output *waiting, **waiting_tail; /* to (re)send */
    struct output *sent;                   /* handed to librdkafka, not reported */
    size_t pending;
    rd_kafka_conf_t *conf;  /* template: a fatal error means a new instance */
    unsigned generation;    /* instances created so far */
    int fatal;              /* the current instance raised a fatal error */
    /* fault injection for tests: SWITCHYARD_FAULT_PRODUCER_FATAL_AFTER=N
     * raises librdkafka's own test fatal error after N acknowledgements */
    long fatal_after;
    unsigned long acks;
    struct loop_timer restart_timer;
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
    if (!p->rk)
        return 1; /* between instances: wait */
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
    if (!error) { /* h is owned by librdkafka now */
        o->generation = p->generation;
        o->prev_sent = NULL;
        o->next_sent = p->sent;
        if (p->sent)
            p->sent->prev_sent = o;
        p->sent = o;
        return 0;
    }
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

static void producer_unlink_sent(struct producer *p, struct output *o)
{
    if (o->prev_sent)
        o->prev_sent->next_sent = o->next_sent;
    else
        p->sent = o->next_sent;
    if (o->next_sent)
        o->next_sent->prev_sent = o->prev_sent;
    o->prev_sent = o->next_sent = NULL;
}

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct producer *p = opaque;
    struct output *o = msg->_private;
    if (o->generation != p->generation)
        return; /* a report from a failed instance: the output is re-sent already */
    producer_unlink_sent(p, o);
    if (msg->err) {
        if (o->failures++ % 10 == 0)
            log_warn("delivery_failed", "topic %s: %s; sending again", o->topic,
                     rd_kafka_err2str(msg->err));
        producer_wait(p, o);
        return;
    }
    p->pending--;
    if (p->fatal_after > 0 && ++p->acks == (unsigned long)p->fatal_after)
        rd_kafka_test_fatal_error(p->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                  "injected by SWITCHYARD_FAULT_PRODUCER_FATAL_AFTER");
    producer_done_cb acked = o->acked;
    void *arg = o->opaque;
    producer_output_free(o);
    acked(arg, RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct producer *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        log_error("producer_fatal", "%s; recreating the producer and sending again what was "
                  "not acknowledged", why);
        p->fatal = 1;
        return;
    }
    log_warn("kafka_error", "producer: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
             reason);
}

static int producer_start(struct producer *p, struct err *e);

/* librdkafka 2.0.2's idempotent producer can fail fatally (e.g. after a
 * broker outage). The outputs it held are sent again from memory through a
 * new instance; the provider is never called again for them. An output the
 * old instance did deliver may land twice: consumers de-duplicate on id. */
static void producer_restart(struct producer *p)
{
    struct err e = {0};
    kafka_wake_stop(&p->wake);
    p->generation++; /* reports from the old instance are ignored from now */
    if (p->rk) {
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 0);
        rd_kafka_queue_destroy(p->main_queue);
        p->main_queue = NULL;
        rd_kafka_destroy(p->rk);
        p->rk = NULL;
    }
    while (p->sent) {
        struct output *o = p->sent;
        producer_unlink_sent(p, o);
        producer_wait(p, o);
    }
    p->fatal = 0;
    if (producer_start(p, &e) < 0) {
        log_error("producer_restart_failed", "%s; trying again", e.msg);
        loop_timer_start(p->loop, &p->restart_timer, 1000);
        return;
    }
    log_info("producer_restarted", "%zu outputs to send again", p->pending);
    producer_flush_waiting(p);
}

static void producer_restart_fired(struct loop_timer *t)
{
    producer_restart(t->data);
}

void producer_poll(struct producer *p)
{
    if (!p->rk)
        return; /* between instances: the restart timer brings one back */
    rd_kafka_poll(p->rk, 0);
    if (p->fatal) {
        producer_restart(p);
        return;
    }
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

static int producer_start(struct producer *p, struct err *e)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(p->conf);
    char errstr[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        return err_set(e, ERR_CONFIG, "kafka", "cannot create the producer: %s", errstr);
    }
    p->main_queue = rd_kafka_queue_get_main(p->rk);
    return kafka_wake_start(&p->wake, p->loop, p->main_queue, producer_woken, p, e);
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
    p->poll_timer = (struct loop_timer){.cb = producer_tick, .data = p};
    p->retry_timer = (struct loop_timer){.cb = producer_retry, .data = p};
    p->restart_timer = (struct loop_timer){.cb = producer_restart_fired, .data = p};
    const char *fault = getenv("SWITCHYARD_FAULT_PRODUCER_FATAL_AFTER");
    p->fatal_after = fault ? strtol(fault, NULL, 10) : 0;
    p->conf = kafka_conf_new(cfg, KAFKA_PRODUCER, e);
    if (!p->conf)
        goto fail;
    if (kafka_conf_set(p->conf, "enable.idempotence", "true", e) < 0 ||
        kafka_conf_set(p->conf, "acks", "all", e) < 0)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(p->conf, producer_dr_cb);
    rd_kafka_conf_set_error_cb(p->conf, producer_error_cb);
    rd_kafka_conf_set_opaque(p->conf, p);
    if (producer_start(p, e) < 0)
        goto fail;
    loop_timer_start(loop, &p->poll_timer, PRODUCER_POLL_MS);
    return p;
fail:
    producer_free(p, 0);
    return NULL;
}

int producer_send(struct producer *p, const char *topic, const char *key, size_t key_len,
                  char *value, size_t value_len, rd_kafka_headers_t *headers,
                  producer_done_cb acked, void *opaque)
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

size_t producer_max_message_bytes(const struct producer *p)
{
    (void)p;
    return 1000000; /* librdkafka's default message.max.bytes */
}

size_t producer_pending(const struct producer *p)
{
    return p->pending;
}

size_t producer_flush(struct producer *p, int timeout_ms)
{
    int64_t deadline = loop_wall_ms() + timeout_ms;
    if (!p->rk)
        return p->pending;
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
    size_t lost = p->rk ? producer_flush(p, timeout_ms) : p->pending;
    p->generation++; /* from here on, no report touches an output */
    kafka_wake_stop(&p->wake);
    if (p->rk) {
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 0);
        rd_kafka_queue_destroy(p->main_queue);
        rd_kafka_destroy(p->rk);
    }
    while (p->sent) {
        struct output *o = p->sent;
        producer_unlink_sent(p, o);
        producer_output_free(o);
    }
    while (p->waiting) {
        struct output *o = p->waiting;
        p->waiting = o->next;
        producer_output_free(o);
    }
    loop_timer_stop(p->loop, &p->poll_timer);
    loop_timer_stop(p->loop, &p->retry_timer);
    loop_timer_stop(p->loop, &p->restart_timer);
    if (p->conf)
        rd_kafka_conf_destroy(p->conf);
    free(p);
    return lost;
}

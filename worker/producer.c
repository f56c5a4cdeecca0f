/*
 * producer: outputs go to Kafka through one idempotent producer. Each
 * output is an allocated record holding its bytes until the broker
 * acknowledges it or refuses it for good. Transient failures and a full
 * local queue are retried from memory, with backoff; a permanent refusal is
 * handed back to the caller once. Never: call the LLM provider, drop an
 * output without telling the caller, loop without a bound (in the retry
 * path or in the flush), or log on a repeating path without a rate bound.
 */
#include "producer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "delivery.h"
#include "kafka.h"
#include "log.h"
#include "ratelog.h"

#define PRODUCER_POLL_MS 100
#define PRODUCER_RESTART_RETRY_MS 1000

/* Backoff after a transient failure, per output: 100 ms, doubling with
 * each failure in a row of that output, up to 5 s. Per output, because a
 * cause can be per partition (a leader moving): healthy outputs are not
 * slowed down, and their acknowledgements do not reset a sick one. */
#define PRODUCER_BACKOFF_INITIAL_MS 100
#define PRODUCER_BACKOFF_MAX_MS 5000

/* One log line per cause (event and error name) per interval, with the
 * count of what was not logged. */
#define PRODUCER_LOG_INTERVAL_MS 10000

/*
 * message.max.bytes: what switchyard may send, so that only the broker's
 * own limit (the topic's max.message.bytes) can refuse an output for size.
 *   limits.max_message_bytes  an input, echoed whole in a dead letter, or
 *                             its id and metadata echoed in a result;
 *   PRODUCER_REPLY_BYTES      a result's output text, at most the provider's
 *                             reply, which http.c caps at 8 MiB
 *                             (HTTP_DEFAULT_MAX_RESPONSE; the worker uses
 *                             the default);
 *   PRODUCER_ENVELOPE_BYTES   the rest of a result: up to 32 attempts with
 *                             their error text and fallback reasons, usage,
 *                             cost, field names, plus record framing and
 *                             dead-letter headers (each a few KB at most).
 * A kafka: message.max.bytes larger than this is kept (the operator knows
 * the cluster takes more); a smaller one is raised: it would refuse locally
 * what the broker may well take, and when the broker's limit is smaller,
 * its MSG_SIZE_TOO_LARGE is permanent and handled the same way.
 */
#define PRODUCER_REPLY_BYTES ((size_t)8 << 20)
#define PRODUCER_ENVELOPE_BYTES ((size_t)256 << 10)
#define PRODUCER_MESSAGE_MAX_CEILING ((size_t)1000000000) /* librdkafka's range */

struct output {
    TAILQ_ENTRY(output) link; /* in exactly one of waiting, sent, refused */
    const char *topic;        /* borrowed from the caller, which outlives us */
    char *key;                /* NULL: a null key */
    size_t key_len;
    char *value; /* NULL: a null value */
    size_t value_len;
    rd_kafka_headers_t *headers; /* a copy is handed to each send */
    producer_done_cb done;
    void *opaque;
    rd_kafka_resp_err_t refused_err; /* on the refused list: why */
    unsigned failures;               /* transient failures in a row */
    uint64_t due_ms;                 /* monotonic: not sent before */
    unsigned generation;             /* of the librdkafka instance holding it */
};

TAILQ_HEAD(output_list, output);

struct producer {
    struct loop *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *main_queue;
    struct kafka_wake wake;
    struct loop_timer poll_timer, report_timer, restart_timer;
    struct output_list waiting; /* to (re)send, each at its due_ms */
    struct output_list sent;    /* handed to librdkafka, not reported */
    struct output_list refused; /* refused when produced, not yet reported */
    uint64_t next_due_ms;       /* no waiting output is due before this */
    size_t pending;             /* on any of the three lists */
    size_t max_message_bytes;
    const struct config *cfg; /* borrowed: outlives the producer */
    rd_kafka_conf_t *conf;    /* template: a fatal error means a new instance */
    unsigned generation;      /* instances created so far */
    int fatal;                /* the current instance raised a fatal error */
    /* fault injection for tests: SWITCHYARD_FAULT_PRODUCER_FATAL_AFTER=N
     * raises librdkafka's own test fatal error after N acknowledgements */
    long fatal_after;
    /* SWITCHYARD_FAULT_PRODUCER_RESTART_FAILS=N: the first N restarts
     * fail as a failed rd_kafka_new would */
    long restart_fails;
    unsigned long acks;
    struct ratelog_set logs;
    /* the output topics' handles, held once the start-up check has seen
     * the topics (producer_prepare_topics): creating one asks for its
     * metadata at once, so the first output (a cost reservation that a
     * provider call waits for) does not wait for that lookup; held any
     * earlier, that lookup could have a broker auto-create a topic the
     * check is about to report missing */
    rd_kafka_topic_t *topics[3];
    int topics_wanted;
};

/* Logs a warning for one occurrence of (event, err), if the rate bound
 * allows; the line says how many were not logged since the last one. */
static void producer_log(struct producer *p, const char *event, rd_kafka_resp_err_t err,
                         const char *topic, const char *detail)
{
    char key[96];
    uint64_t suppressed;
    snprintf(key, sizeof key, "%s:%s", event, rd_kafka_err2name(err));
    if (!ratelog_allow_key(&p->logs, key, loop_clock_ms(), &suppressed))
        return;
    log_warn(event, "%s%s%s: %s; %s (%" PRIu64 " more like this since the last line)",
             topic ? "topic " : "", topic ? topic : "", topic ? "" : "producer",
             rd_kafka_err2name(err), detail, suppressed);
}

static void producer_output_free(struct output *o)
{
    free(o->key);
    free(o->value);
    if (o->headers)
        rd_kafka_headers_destroy(o->headers);
    free(o);
}

static uint64_t producer_backoff_ms(unsigned failures)
{
    uint64_t ms = PRODUCER_BACKOFF_INITIAL_MS;
    for (unsigned i = 1; i < failures && ms < PRODUCER_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < PRODUCER_BACKOFF_MAX_MS ? ms : PRODUCER_BACKOFF_MAX_MS;
}

static void producer_wait(struct producer *p, struct output *o, uint64_t due_ms)
{
    o->due_ms = due_ms;
    if (TAILQ_EMPTY(&p->waiting) || due_ms < p->next_due_ms)
        p->next_due_ms = due_ms;
    TAILQ_INSERT_TAIL(&p->waiting, o, link);
}

/* A transient failure: back off, then send again from memory. */
static void producer_retry_later(struct producer *p, struct output *o, const char *event,
                                 rd_kafka_resp_err_t err)
{
    o->failures++;
    uint64_t delay = producer_backoff_ms(o->failures);
    char detail[64];
    snprintf(detail, sizeof detail, "sending again in %" PRIu64 " ms", delay);
    producer_log(p, event, err, o->topic, detail);
    producer_wait(p, o, loop_clock_ms() + delay);
}

/* Refused when produced: reported from the loop, never from inside
 * producer_send, so a caller's done callback never runs under its own
 * producer_send call. */
static void producer_refuse_later(struct producer *p, struct output *o, rd_kafka_resp_err_t err)
{
    producer_log(p, "produce_refused", err, o->topic, "dropped, the caller replaces it");
    o->refused_err = err;
    TAILQ_INSERT_TAIL(&p->refused, o, link);
    loop_timer_start(p->loop, &p->report_timer, 0);
}

enum producer_try { TRY_SENT, TRY_FULL, TRY_FAILED, TRY_REFUSED };

static enum producer_try producer_try(struct producer *p, struct output *o,
                                      rd_kafka_resp_err_t *errp)
{
    if (!p->rk)
        return TRY_FULL; /* between instances: wait */
    rd_kafka_headers_t *h = o->headers ? rd_kafka_headers_copy(o->headers) : NULL;
    /* rd_kafka_produceva, not producev: the RD_KAFKA_V_ macros are GNU
     * statement expressions, which -Wpedantic refuses. A NULL pointer is
     * a null key or value; a non-NULL one of length 0 is empty. */
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
        TAILQ_INSERT_TAIL(&p->sent, o, link);
        return TRY_SENT;
    }
    rd_kafka_resp_err_t err = rd_kafka_error_code(error);
    rd_kafka_error_destroy(error);
    if (h)
        rd_kafka_headers_destroy(h);
    *errp = err;
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return TRY_FULL; /* backpressure, not a failure */
    return delivery_classify(err) == DELIVERY_PERMANENT ? TRY_REFUSED : TRY_FAILED;
}

/* Sends the waiting outputs that are due, in order, until librdkafka's
 * queue is full. One pass over the list: no output is tried twice. */
static void producer_send_due(struct producer *p)
{
    uint64_t now = loop_clock_ms();
    if (TAILQ_EMPTY(&p->waiting) || p->next_due_ms > now)
        return;
    uint64_t next = UINT64_MAX;
    struct output *o, *tmp;
    int full = 0;
    /* glibc's <sys/queue.h> has no TAILQ_FOREACH_SAFE */
    for (o = TAILQ_FIRST(&p->waiting); o; o = tmp) {
        tmp = TAILQ_NEXT(o, link);
        if (full || o->due_ms > now) {
            if (o->due_ms < next)
                next = o->due_ms;
            continue;
        }
        rd_kafka_resp_err_t err = 0;
        TAILQ_REMOVE(&p->waiting, o, link);
        switch (producer_try(p, o, &err)) {
        case TRY_SENT:
            break;
        case TRY_FULL: /* back where it was; retried when space frees */
            if (tmp)
                TAILQ_INSERT_BEFORE(tmp, o, link);
            else
                TAILQ_INSERT_TAIL(&p->waiting, o, link);
            full = 1;
            if (o->due_ms < next)
                next = o->due_ms;
            break;
        case TRY_FAILED: /* at the tail, after tmp: not seen again this pass */
            producer_retry_later(p, o, "produce_failed", err);
            if (o->due_ms < next)
                next = o->due_ms;
            break;
        case TRY_REFUSED:
            producer_refuse_later(p, o, err);
            break;
        }
    }
    p->next_due_ms = next;
}

/* Hands produce-time refusals to their callbacks. Only those refused
 * before this call: a replacement refused again waits for the next turn. */
static void producer_report_refused(struct producer *p)
{
    struct output_list todo = TAILQ_HEAD_INITIALIZER(todo);
    TAILQ_CONCAT(&todo, &p->refused, link);
    struct output *o;
    while ((o = TAILQ_FIRST(&todo)) != NULL) {
        TAILQ_REMOVE(&todo, o, link);
        producer_done_cb done = o->done;
        void *opaque = o->opaque;
        rd_kafka_resp_err_t err = o->refused_err;
        p->pending--;
        producer_output_free(o);
        done(opaque, err);
    }
}

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct producer *p = opaque;
    struct output *o = msg->_private;
    if (o->generation != p->generation)
        return; /* a report from a failed instance: the output is re-sent already */
    TAILQ_REMOVE(&p->sent, o, link);
    if (msg->err && delivery_classify(msg->err) == DELIVERY_TRANSIENT) {
        producer_retry_later(p, o, "delivery_failed", msg->err);
        return;
    }
    if (msg->err)
        producer_log(p, "delivery_refused", msg->err, o->topic, "dropped, the caller replaces it");
    p->pending--;
    if (!msg->err && p->fatal_after > 0 && ++p->acks == (unsigned long)p->fatal_after)
        rd_kafka_test_fatal_error(p->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                  "injected by SWITCHYARD_FAULT_PRODUCER_FATAL_AFTER");
    producer_done_cb done = o->done;
    void *arg = o->opaque;
    producer_output_free(o);
    done(arg, msg->err);
}

static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct producer *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        log_error("producer_fatal",
                  "%s; recreating the producer and sending again what was "
                  "not acknowledged",
                  why);
        p->fatal = 1;
        return;
    }
    /* all brokers down, transport errors, authentication: librdkafka keeps
     * trying by itself and raises these on every attempt; the consumer's
     * errors go the same way (one line per cause per interval, naming
     * bootstrap.servers and what to check) */
    kafka_error_warn(p->cfg, "producer", err, reason);
}

static int producer_start(struct producer *p, struct err *e);

/* Ends the current librdkafka instance without waiting for any broker:
 * what it holds is purged, its reports are ignored (the generation moves
 * on), and its outputs stay on our lists. */
static void producer_stop(struct producer *p)
{
    p->generation++;
    kafka_wake_stop(&p->wake);
    if (!p->rk)
        return;
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                              RD_KAFKA_PURGE_F_NON_BLOCKING);
    rd_kafka_poll(p->rk, 0);
    for (size_t i = 0; i < sizeof p->topics / sizeof p->topics[0]; i++)
        if (p->topics[i]) {
            rd_kafka_topic_destroy(p->topics[i]);
            p->topics[i] = NULL;
        }
    rd_kafka_queue_destroy(p->main_queue);
    p->main_queue = NULL;
    rd_kafka_destroy(p->rk);
    p->rk = NULL;
}

/* librdkafka 2.0.2's idempotent producer can fail fatally (e.g. after a
 * broker outage). The outputs it held are sent again from memory through a
 * new instance; the provider is never called again for them. An output the
 * old instance did deliver may land twice: consumers de-duplicate on id. */
static void producer_restart(struct producer *p)
{
    struct err e = {0};
    producer_stop(p);
    uint64_t now = loop_clock_ms();
    struct output *o;
    while ((o = TAILQ_FIRST(&p->sent)) != NULL) {
        TAILQ_REMOVE(&p->sent, o, link);
        producer_wait(p, o, now);
    }
    p->fatal = 0;
    if (p->restart_fails > 0) {
        p->restart_fails--;
        err_set(&e, ERR_CONFIG, "kafka",
                "cannot create the producer: injected by SWITCHYARD_FAULT_PRODUCER_RESTART_FAILS");
        log_error("producer_restart_failed", "%s; trying again in %d ms", e.msg,
                  PRODUCER_RESTART_RETRY_MS);
        loop_timer_start(p->loop, &p->restart_timer, PRODUCER_RESTART_RETRY_MS);
        return;
    }
    if (producer_start(p, &e) < 0) {
        log_error("producer_restart_failed", "%s; trying again", e.msg);
        loop_timer_start(p->loop, &p->restart_timer, PRODUCER_RESTART_RETRY_MS);
        return;
    }
    log_info("producer_restarted", "%zu outputs to send again", p->pending);
    producer_send_due(p);
}

static void producer_restart_fired(struct loop_timer *t)
{
    producer_restart(t->data);
}

void producer_poll(struct producer *p)
{
    if (p->rk) /* else between instances: the restart timer brings one back */
        rd_kafka_poll(p->rk, 0);
    if (p->fatal) {
        producer_restart(p);
        return;
    }
    producer_report_refused(p);
    producer_send_due(p);
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

static void producer_report_fired(struct loop_timer *t)
{
    producer_report_refused(t->data);
}

/* Holds the output topics' handles: creating one asks for its metadata at
 * once (NULL on failure: the first output asks instead). */
static void producer_topics_open(struct producer *p)
{
    const char *names[] = {p->cfg->topic_results, p->cfg->topic_costs, p->cfg->topic_dead_letter};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i] && !p->topics[i])
            p->topics[i] = rd_kafka_topic_new(p->rk, names[i], NULL);
}

void producer_prepare_topics(struct producer *p)
{
    p->topics_wanted = 1;
    if (p->rk)
        producer_topics_open(p);
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
    if (p->topics_wanted)
        producer_topics_open(p);
    return kafka_wake_start(&p->wake, p->loop, p->main_queue, producer_woken, p, e);
}

/* Sets message.max.bytes (see PRODUCER_REPLY_BYTES above). */
static int producer_size_limit(struct producer *p, const struct config *cfg, struct err *e)
{
    size_t want =
        (size_t)cfg->limits.max_message_bytes + PRODUCER_REPLY_BYTES + PRODUCER_ENVELOPE_BYTES;
    char have[32];
    size_t have_size = sizeof have;
    if (rd_kafka_conf_get(p->conf, "message.max.bytes", have, &have_size) == RD_KAFKA_CONF_OK) {
        unsigned long long set = strtoull(have, NULL, 10);
        if (set > want)
            want = (size_t)set;
    }
    if (want > PRODUCER_MESSAGE_MAX_CEILING)
        want = PRODUCER_MESSAGE_MAX_CEILING;
    char value[32];
    snprintf(value, sizeof value, "%zu", want);
    if (kafka_conf_set(p->conf, "message.max.bytes", value, e) < 0)
        return -1;
    p->max_message_bytes = want;
    return 0;
}

struct producer *producer_new(struct loop *loop, const struct config *cfg, struct err *e)
{
    struct producer *p = calloc(1, sizeof *p);
    if (!p) {
        err_set(e, ERR_FATAL, "oom", "out of memory");
        return NULL;
    }
    p->cfg = cfg;
    p->loop = loop;
    TAILQ_INIT(&p->waiting);
    TAILQ_INIT(&p->sent);
    TAILQ_INIT(&p->refused);
    p->wake.fds[0] = p->wake.fds[1] = -1;
    p->logs.interval_ms = PRODUCER_LOG_INTERVAL_MS;
    p->poll_timer = (struct loop_timer){.cb = producer_tick, .data = p};
    p->report_timer = (struct loop_timer){.cb = producer_report_fired, .data = p};
    p->restart_timer = (struct loop_timer){.cb = producer_restart_fired, .data = p};
    if (kafka_fault_env("SWITCHYARD_FAULT_PRODUCER_FATAL_AFTER", &p->fatal_after, e) < 0 ||
        kafka_fault_env("SWITCHYARD_FAULT_PRODUCER_RESTART_FAILS", &p->restart_fails, e) < 0)
        goto fail;
    p->conf = kafka_conf_new(cfg, KAFKA_PRODUCER, e);
    if (!p->conf)
        goto fail;
    if (kafka_conf_set(p->conf, "enable.idempotence", "true", e) < 0 ||
        kafka_conf_set(p->conf, "acks", "all", e) < 0 || producer_size_limit(p, cfg, e) < 0)
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
                  char *value, size_t value_len, rd_kafka_headers_t *headers, producer_done_cb done,
                  void *opaque)
{
    struct output *o = calloc(1, sizeof *o);
    char *key_copy = key ? malloc(key_len + 1) : NULL;
    if (!o || (key && !key_copy)) {
        free(o);
        free(key_copy);
        free(value);
        if (headers)
            rd_kafka_headers_destroy(headers);
        return -1;
    }
    if (key) {
        memcpy(key_copy, key, key_len);
        key_copy[key_len] = '\0';
    }
    *o = (struct output){.topic = topic,
                         .key = key_copy,
                         .key_len = key ? key_len : 0,
                         .value = value,
                         .value_len = value ? value_len : 0,
                         .headers = headers,
                         .done = done,
                         .opaque = opaque};
    p->pending++;
    /* behind outputs that wait for queue space, to keep their order */
    uint64_t now = loop_clock_ms();
    if (!TAILQ_EMPTY(&p->waiting) && p->next_due_ms <= now) {
        producer_wait(p, o, now);
        return 0;
    }
    rd_kafka_resp_err_t err = 0;
    switch (producer_try(p, o, &err)) {
    case TRY_SENT:
        break;
    case TRY_FULL:
        producer_wait(p, o, now);
        break;
    case TRY_FAILED:
        producer_retry_later(p, o, "produce_failed", err);
        break;
    case TRY_REFUSED:
        producer_refuse_later(p, o, err);
        break;
    }
    return 0;
}

size_t producer_max_message_bytes(const struct producer *p)
{
    return p->max_message_bytes;
}

size_t producer_pending(const struct producer *p)
{
    return p->pending;
}

/*
 * Each turn waits in librdkafka for at most PRODUCER_POLL_MS and never
 * past the deadline, so the loop ends within timeout_ms plus one turn
 * (and one restart, which purges without waiting for brokers).
 */
size_t producer_flush(struct producer *p, int timeout_ms)
{
    uint64_t deadline = loop_clock_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (p->fatal || !p->rk)
            producer_restart(p);
        producer_report_refused(p);
        producer_send_due(p);
        uint64_t now = loop_clock_ms();
        if (p->pending == 0 || now >= deadline || !p->rk)
            break;
        uint64_t wait = deadline - now;
        if (wait > PRODUCER_POLL_MS)
            wait = PRODUCER_POLL_MS;
        if (!TAILQ_EMPTY(&p->waiting) && p->next_due_ms > now && p->next_due_ms - now < wait)
            wait = p->next_due_ms - now;
        if (wait == 0)
            wait = 1;
        /* rd_kafka_flush sends at once what lingers; with nothing queued
         * it would return at once, so poll (which waits) instead */
        if (rd_kafka_outq_len(p->rk) > 0)
            rd_kafka_flush(p->rk, (int)wait);
        else
            rd_kafka_poll(p->rk, (int)wait);
    }
    return p->pending;
}

static void producer_list_free(struct output_list *list)
{
    struct output *o;
    while ((o = TAILQ_FIRST(list)) != NULL) {
        TAILQ_REMOVE(list, o, link);
        producer_output_free(o);
    }
}

size_t producer_free(struct producer *p, int timeout_ms)
{
    if (!p)
        return 0;
    size_t lost = p->rk ? producer_flush(p, timeout_ms) : p->pending;
    producer_stop(p); /* from here on, no report touches an output */
    producer_list_free(&p->sent);
    producer_list_free(&p->waiting);
    producer_list_free(&p->refused);
    loop_timer_stop(p->loop, &p->poll_timer);
    loop_timer_stop(p->loop, &p->report_timer);
    loop_timer_stop(p->loop, &p->restart_timer);
    if (p->conf)
        rd_kafka_conf_destroy(p->conf);
    free(p);
    return lost;
}

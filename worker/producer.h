/*
 * producer: the idempotent Kafka producer (acks=all) and its delivery
 * reports. An output is kept in memory until the broker acknowledges it or
 * refuses it for good. A transient failure (time-out, brokers down, leader
 * change) is sent again from memory with backoff, so such an output is
 * lost only if the worker stops first (and then its input offset is not
 * committed, so the next owner redoes it). A permanent refusal (too large,
 * invalid record, unknown topic or partition, not authorized: see
 * delivery.h) is reported to the caller once and the output dropped.
 */
#ifndef SWITCHYARD_PRODUCER_H
#define SWITCHYARD_PRODUCER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "config.h"
#include "err.h"
#include "loop.h"

struct producer;

/* Called exactly once per output sent with producer_send.
 * err == 0: acknowledged by the broker; otherwise refused for a permanent
 * reason (delivery_classify) and dropped: the caller must replace it with
 * an output that can be delivered (a replacement refused again must not be
 * replaced again, or a topic that refuses everything loops).
 * Always called from the loop, producer_poll or producer_flush, never from
 * inside producer_send; the callback may call producer_send. Not called for
 * outputs still held when producer_free returns (they are counted in its
 * return value instead). */
typedef void (*producer_done_cb)(void *opaque, rd_kafka_resp_err_t err);

/* The producer's message.max.bytes is set to what switchyard may send (see
 * producer.c), or to the kafka: section's message.max.bytes if larger.
 * cfg is borrowed for the producer's whole life (its error lines name
 * bootstrap.servers from it). */
struct producer *producer_new(struct loop *loop, const struct config *cfg, struct err *e);

/* Sends what waits and serves delivery reports (done callbacks included)
 * for up to timeout_ms, or until nothing is pending. Returns within
 * timeout_ms plus one librdkafka poll (at most 100 ms) and a producer
 * restart, even with every broker down. Returns the outputs still
 * unacknowledged. */
size_t producer_flush(struct producer *p, int timeout_ms);

/* Flushes up to timeout_ms, then purges what librdkafka still holds and
 * frees, without blocking on any broker. Returns the number of outputs that
 * were still unacknowledged (lost to this worker; their inputs are not
 * committed); their done callbacks are not called. NULL is a no-op. */
size_t producer_free(struct producer *p, int timeout_ms);

/* Queues one output to topic (borrowed: it must outlive the producer).
 * key: NULL sends a null key; otherwise key_len bytes, copied (key_len 0:
 * an empty key). value: NULL (value_len 0) sends a null value, a
 * tombstone; otherwise value_len bytes, owned by the producer from now on
 * (malloc'd; value_len 0 with a non-NULL value: an empty value). headers
 * (may be NULL) are owned by the producer from now on. Ownership passes
 * on success and on failure. done is called once, later (see above).
 * The output is refused as too large when key + value + headers exceed
 * producer_max_message_bytes. Returns 0, or -1 when out of memory (then
 * done is never called). */
int producer_send(struct producer *p, const char *topic, const char *key, size_t key_len,
                  char *value, size_t value_len, rd_kafka_headers_t *headers, producer_done_cb done,
                  void *opaque);

/* The producer's message.max.bytes: a replacement output must fit in it. */
size_t producer_max_message_bytes(const struct producer *p);

/* Outputs queued, in flight or refused and not yet reported. */
size_t producer_pending(const struct producer *p);

/* Serves delivery reports now (also done from the loop on wake-ups). */
void producer_poll(struct producer *p);

/* The output topics exist (the start-up check saw them): ask for their
 * metadata now, and after each restart, rather than on the first output. */
void producer_prepare_topics(struct producer *p);

#endif

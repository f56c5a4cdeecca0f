/*
 * producer: the idempotent Kafka producer (acks=all) and its delivery
 * reports. An output is kept in memory until the broker acknowledges it;
 * a failed delivery is sent again, so the only way an output is not
 * delivered is that the worker stops first (and then its input offset is
 * not committed, so the next owner redoes it).
 */
#ifndef SWITCHYARD_PRODUCER_H
#define SWITCHYARD_PRODUCER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "config.h"
#include "err.h"
#include "loop.h"

struct producer;

/* Called once per output: err == 0 when the broker acknowledged it;
 * otherwise it was refused for a permanent reason and dropped, and the
 * caller must replace it with an output that can be delivered. */
typedef void (*producer_done_cb)(void *opaque, rd_kafka_resp_err_t err);

struct producer *producer_new(struct loop *loop, const struct config *cfg, struct err *e);
/* Sends what waits and serves delivery reports for up to timeout_ms, or
 * until nothing is pending. Returns the outputs still unacknowledged. */
size_t producer_flush(struct producer *p, int timeout_ms);

/* Flushes up to timeout_ms, then frees. Returns the number of outputs that
 * were still unacknowledged (lost to this worker; their inputs are not
 * committed). */
size_t producer_free(struct producer *p, int timeout_ms);

/* Queues one output. Takes ownership of value (malloc'd) and headers
 * (may be NULL), always, on success and failure. key is copied. */
int producer_send(struct producer *p, const char *topic, const char *key, size_t key_len,
                  char *value, size_t value_len, rd_kafka_headers_t *headers,
                  producer_done_cb done, void *opaque);

/* The largest output the producer sends (message.max.bytes). */
size_t producer_max_message_bytes(const struct producer *p);

/* Outputs queued or in flight, not yet acknowledged. */
size_t producer_pending(const struct producer *p);

/* Serves delivery reports now (also done from the loop on wake-ups). */
void producer_poll(struct producer *p);

#endif

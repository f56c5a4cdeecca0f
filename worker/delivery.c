/*
 * delivery: sorts Kafka errors into "send again" and "never", for the
 * producer. It must never call an error permanent unless the same bytes to
 * the same topic cannot succeed however long we wait: a permanent class
 * makes the caller drop the output and replace it with a smaller one.
 *
 * librdkafka (INTRODUCTION.md, "Producer message delivery failure") retries
 * temporary errors itself, up to message.timeout.ms, and reports only
 * permanent errors and temporary ones that ran out of time. So a report of
 * a temporary error means "the cluster did not take it in time", and the
 * output is kept and sent again from memory.
 */
#include "delivery.h"

enum delivery_class delivery_classify(rd_kafka_resp_err_t err)
{
    switch (err) {
    /* Too large. The local check before sending (message.max.bytes) and
     * the broker's (the topic's max.message.bytes) both report
     * MSG_SIZE_TOO_LARGE; librdkafka has no local code for it. */
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    /* Records the broker will never store: corrupt (INVALID_MSG is Kafka's
     * CORRUPT_MESSAGE), refused by a validation rule, a null key on a
     * compacted topic (INVALID_RECORD), a timestamp out of range, a format
     * or codec the topic does not take, a topic policy. */
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE:
    /* No such topic or partition. Right after a topic is created it is
     * briefly unknown, but librdkafka holds the message through that
     * window itself: locally for topic.metadata.propagation.max.ms (30 s)
     * before __UNKNOWN_TOPIC, and a broker's UNKNOWN_TOPIC_OR_PART on
     * Produce triggers a metadata refresh and a retry inside librdkafka.
     * By the time one of these reaches us it has already been waited out,
     * so it is permanent. TOPIC_EXCEPTION is an invalid topic name. */
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    /* Not allowed. An ACL can change, but nothing in switchyard changes
     * it, and an output waiting for an operator holds its partition. */
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
        return DELIVERY_PERMANENT;
    default:
        /* Time-outs, transport, leader changes, not enough replicas,
         * __QUEUE_FULL (backpressure), __PURGE_* (we purged), __FATAL (the
         * producer is recreated and sends again), authentication (the
         * cluster is unreachable until credentials work). */
        return DELIVERY_TRANSIENT;
    }
}

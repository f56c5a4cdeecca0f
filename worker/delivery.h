/*
 * delivery: what a librdkafka produce or delivery error means for an
 * output. Pure: a table of cases pins it (tests/data/delivery/cases.txt).
 */
#ifndef SWITCHYARD_DELIVERY_H
#define SWITCHYARD_DELIVERY_H

#include <librdkafka/rdkafka.h>

enum delivery_class {
    DELIVERY_TRANSIENT, /* send the same bytes again later: it may go through */
    DELIVERY_PERMANENT, /* sending these bytes again can never succeed */
};

/* The class of err, an error from rd_kafka_produceva or a delivery report.
 * Anything not known to be permanent is transient, including codes added
 * after librdkafka 2.0.2 and 0 (which is not an error: callers test it
 * first): keeping an output is always safe, dropping one is not. */
enum delivery_class delivery_classify(rd_kafka_resp_err_t err);

#endif

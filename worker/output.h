/*
 * output: the bytes switchyard publishes. Results and cost records are
 * JSON matching schemas/result.schema.json and schemas/cost.schema.json;
 * dead letters are the input's own bytes with x-error-* and Kafka
 * Connect's __connect.errors.* headers (schemas/dead_letter.schema.json).
 */
#ifndef SWITCHYARD_OUTPUT_H
#define SWITCHYARD_OUTPUT_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "dispatch.h"

/* New malloc'd JSON text (compact), *len set; NULL when out of memory. */
char *output_result(const struct job *job, const char *worker_id, size_t *len);
char *output_cost(const struct job *job, const struct attempt *a, size_t attempt_number,
                  const char *worker_id, size_t *len);
/* New headers: the input's own, then the error's. */
rd_kafka_headers_t *output_dead_letter_headers(const struct job *job, const char *worker_id);

#endif

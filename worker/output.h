/*
 * output: the bytes switchyard publishes. Results and cost records are
 * JSON matching schemas/result.schema.json and schemas/cost.schema.json;
 * dead letters are the input's own bytes with x-error-* and Kafka
 * Connect's __connect.errors.* headers (schemas/dead_letter.schema.json).
 * Also the pure rule for what replaces an output the broker refuses.
 */
#ifndef SWITCHYARD_OUTPUT_H
#define SWITCHYARD_OUTPUT_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "job.h"

/* A dead letter too large for its topic keeps this much of the input. */
#define OUTPUT_DEAD_LETTER_PREFIX (64u << 10)
/* Room kept for a dead letter's headers (the input's own and ours). */
#define OUTPUT_DEAD_LETTER_ENVELOPE (32u << 10)

/* New malloc'd JSON text (compact), *len set; NULL when out of memory.
 * With replace_code set, the result is an error result with that code and
 * message that drops the output text and the metadata (what could not be
 * delivered) and keeps everything else. */
char *output_result(const struct job *job, const char *worker_id, const char *replace_code,
                    const char *replace_msg, size_t *len);
char *output_cost(const struct job *job, const struct attempt *a, size_t attempt_number,
                  const char *worker_id, size_t *len);

struct output_dead_letter {
    const char *code, *message; /* x-error-code / -message */
    size_t original_len;        /* bytes of the input's value */
    int truncated;              /* the value is a prefix of the input's */
};
/* New headers: the input's own, then the error's. */
rd_kafka_headers_t *output_dead_letter_headers(const struct job *job, const char *worker_id,
                                               const struct output_dead_letter *dl);

/* What replaces an output of `kind` refused for good, after it was
 * replaced `replaced` times already:
 *   result:      too large -> an error result (result_too_large); any other
 *                refusal, or a refused replacement -> a dead letter of the
 *                input pointing at its offset, then a bounded one
 *   cost record: a dead letter (cost_undeliverable), then a bounded one
 *   dead letter: a bounded one (a prefix of the input), then headers only
 * and then nothing: give up (the worker stops; the input stays unfinished). */
enum output_replacement {
    OUTPUT_ERROR_RESULT,
    OUTPUT_DEAD_LETTER,
    OUTPUT_BOUNDED_DEAD_LETTER,
    OUTPUT_GIVE_UP,
};
enum output_replacement output_replace(enum job_output_kind kind, unsigned replaced,
                                       rd_kafka_resp_err_t err);
const char *output_replacement_name(enum output_replacement r);
const char *output_kind_name(enum job_output_kind kind);

/* The error message of a result_too_large result: its size, why it was
 * refused, and what was dropped. */
void output_too_large_message(const struct job *job, size_t result_len, const char *why, char *out,
                              size_t cap);

#endif

/*
 * output: the bytes switchyard publishes. Results and cost records are
 * JSON matching schemas/result.schema.json and schemas/cost.schema.json;
 * dead letters are the input's own bytes with x-error-* and Kafka
 * Connect's __connect.errors.* headers (schemas/dead_letter.schema.json).
 * Also the pure rule for what replaces an output the broker refuses.
 */
#ifndef SWITCHYARD_OUTPUT_H
#define SWITCHYARD_OUTPUT_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "config.h"
#include "job.h"

/* A dead letter too large for its topic keeps this much of the input. */
#define OUTPUT_DEAD_LETTER_PREFIX (64u << 10)
/* Room kept for a dead letter's headers (the input's own and ours). */
#define OUTPUT_DEAD_LETTER_ENVELOPE (32u << 10)

/* A result or cost record longer than this is not written (librdkafka's
 * largest message: it could never be sent). */
#define OUTPUT_RECORD_MAX ((size_t)1000000000)

/* New malloc'd JSON text (compact), *len set; NULL when out of memory (or
 * longer than OUTPUT_RECORD_MAX). Invalid UTF-8 in a string (an error
 * message cut inside a character) is written as U+FFFD (jsonw.h).
 * With replace_code set, the result is an error result with that code and
 * message that drops the output text and the metadata (what could not be
 * delivered) and keeps everything else. */
char *output_result(const struct job *job, const char *worker_id, const char *replace_code,
                    const char *replace_msg, size_t *len);
/* The JSON a reply's text holds, for output.json: with response_format
 * json_object a JSON object, with json_schema any JSON value (not checked
 * against the schema: the provider is asked to follow it, and the
 * consumer owns the schema). Duplicate keys make it no JSON (a consumer
 * could not tell which one holds). New reference; NULL when the text is
 * no such JSON, with `why` (cap bytes) saying why for output.json_error,
 * and the finish reason when it explains it (cut at max_tokens, filtered,
 * tool calls instead of an answer). NULL with why "" for format TEXT.
 * Pure. */
json_t *output_reply_json(enum request_format format, const char *text, size_t len,
                          enum provider_finish finish, char *why, size_t cap);

/* Bytes of compact JSON of the request's metadata a cost record carries;
 * larger metadata is left out and the record says "metadata_truncated". */
#define OUTPUT_COST_METADATA_MAX 4096u

/* New malloc'd cost record (compact JSON) for call a of the job, *len set;
 * NULL when out of memory (or longer than OUTPUT_RECORD_MAX). "kind" is "reserved" (with
 * "reserved_nusd") when a->reservation is set, else "settled"; a reservation's usage and cost are
 * a's, which the caller leaves 0. Carries the request's metadata (see OUTPUT_COST_METADATA_MAX). */
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

/* Request-reply (README, "Request-reply"). Spring Kafka's
 * ReplyingKafkaTemplate names its reply topic in kafka_replyTopic (the
 * topic's UTF-8 bytes) and correlates on kafka_correlationId (16 raw bytes
 * of a UUID); Kafka's Java clients read a repeated header's last value
 * (Headers.lastHeader), and so do these. */
#define OUTPUT_REPLY_TOPIC_HEADER "kafka_replyTopic"
/* A header value longer than this is not copied onto results and cost
 * records: a trace context or correlation id is far shorter. */
#define OUTPUT_COPY_HEADER_MAX 1024u

/* New headers for a result or a cost record of the request whose headers
 * are `in` (borrowed; NULL: none): for each name of cfg->reply.copy_headers,
 * in that order, the request's last header of that name, its value byte
 * for byte (a null value stays null, an empty one empty). A value longer
 * than OUTPUT_COPY_HEADER_MAX is not copied: *skipped counts such headers
 * and *skipped_name names the first (borrowed from cfg). NULL when nothing
 * is copied (or out of memory). Pure. */
rd_kafka_headers_t *output_reply_headers(const struct config *cfg, const rd_kafka_headers_t *in,
                                         size_t *skipped, const char **skipped_name);

/* Where the result of the request whose headers are `in` goes. Borrowed
 * (lives as long as cfg): the allow-list's own copy of the topic the
 * request's last kafka_replyTopic names, when that topic is on
 * cfg->reply.topics; otherwise cfg->topic_results. *refused is 1 when the
 * request named a reply topic that is not on the list (or no topic at
 * all: an empty or null value); then `named` (cap bytes, 256 hold any)
 * says what it named: the topic, or how many bytes that are no topic
 * name. Pure. */
const char *output_result_topic(const struct config *cfg, const rd_kafka_headers_t *in,
                                int *refused, char *named, size_t cap);

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

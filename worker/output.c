/*
 * output: encoding only. Field names and shapes follow schemas/; the e2e
 * tests validate every published record against those files, so a change
 * here without a schema change fails the build. Results and cost records
 * are written by jsonw, straight into their buffer: building a jansson
 * tree per record was a fifth of a message's CPU. The bytes must stay
 * those tests/data/output/records.txt holds (what the tree wrote).
 */
#include "output.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jsonw.h"
#include "loop.h"

static const char *const fate_names[] = {"taken", "skipped", "failed", "not_reached"};
static const char *const attempt_status_names[] = {"ok", "error", "timeout"};

/* cache_write_1h appears only in records of calls that made hour-long
 * cache writes: the five categories every record has stay the whole
 * record for everyone else */
static int output_category_shown(enum cost_category c, const struct cost_usage *u)
{
    return c != COST_CACHE_WRITE_1H || u->tokens[COST_CACHE_WRITE_1H] > 0;
}

/* {category: tokens} of the categories shown */
static void output_usage(struct jsonw *w, const char *key, const struct cost_usage *u)
{
    jsonw_key(w, key);
    jsonw_object_open(w);
    for (int c = 0; c < COST_NCAT; c++)
        if (output_category_shown((enum cost_category)c, u))
            jsonw_kuint(w, cost_category_name((enum cost_category)c), u->tokens[c]);
    jsonw_object_close(w);
}

/* The rates of the tier the usage fell in, as applied. */
static void output_prices(struct jsonw *w, const char *key, const struct cost_prices *p,
                          const struct cost_usage *u)
{
    const uint64_t *rates;
    cost_tier_for(p, cost_prompt_tokens(u), &rates);
    jsonw_key(w, key);
    jsonw_object_open(w);
    for (int c = 0; c < COST_NCAT; c++)
        if (output_category_shown((enum cost_category)c, u))
            jsonw_kuint(w, cost_category_name((enum cost_category)c), rates[c]);
    jsonw_object_close(w);
}

static const struct policy_model *output_model(const struct job *job, size_t i)
{
    return &job->policy->models[i];
}

static const char *output_provider_type(const struct job *job, size_t model)
{
    return output_model(job, model)->provider;
}

/* What a finish reason says about a reply that is no JSON. */
static const char *output_finish_why(enum provider_finish finish)
{
    switch (finish) {
    case PROVIDER_FINISH_LENGTH:
        return " (finish_reason length: the reply was cut at max_tokens)";
    case PROVIDER_FINISH_CONTENT_FILTER:
        return " (finish_reason content_filter)";
    case PROVIDER_FINISH_TOOL_CALLS:
        return " (finish_reason tool_calls: the model called tools instead)";
    case PROVIDER_FINISH_STOP:
    case PROVIDER_FINISH_OTHER:
        break;
    }
    return "";
}

json_t *output_reply_json(enum request_format format, const char *text, size_t len,
                          enum provider_finish finish, char *why, size_t cap)
{
    if (cap)
        why[0] = '\0';
    if (format == REQUEST_FORMAT_TEXT)
        return NULL;
    const char *because = output_finish_why(finish);
    if (!text || !len) {
        snprintf(why, cap, "the reply has no text%s", because);
        return NULL;
    }
    json_error_t error;
    json_t *json = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &error);
    if (!json) {
        snprintf(why, cap, "the reply is not JSON: %s at character %d%s", error.text,
                 error.position, because);
        return NULL;
    }
    if (format == REQUEST_FORMAT_JSON && !json_is_object(json)) {
        snprintf(why, cap, "the reply is JSON but not an object, as json_object asks%s", because);
        json_decref(json);
        return NULL;
    }
    return json;
}

/* output: {text, finish_reason, tool_calls?, json | json_error?} */
static void output_answer(struct jsonw *w, const struct job *job)
{
    const struct provider_reply *r = &job->reply;
    jsonw_key(w, "output");
    jsonw_object_open(w);
    jsonw_key(w, "text");
    jsonw_string_n(w, r->text ? r->text : "", r->text ? r->text_len : 0);
    jsonw_kstring(w, "finish_reason", provider_finish_name(r->finish));
    if (r->tool_calls && json_array_size(r->tool_calls) > 0) {
        jsonw_key(w, "tool_calls");
        jsonw_json(w, r->tool_calls);
    }
    if (job->req->format != REQUEST_FORMAT_TEXT) {
        char why[256];
        json_t *json =
            output_reply_json(job->req->format, r->text, r->text_len, r->finish, why, sizeof why);
        if (json) {
            jsonw_key(w, "json");
            jsonw_json(w, json);
            json_decref(json);
        } else
            /* jansson's words may quote bytes of the text: not always UTF-8 */
            jsonw_kstring(w, "json_error",
                          jsonw_utf8_invalid(why, strlen(why)) ? "the reply is not JSON" : why);
    }
    jsonw_object_close(w);
}

/* {code, message} under key */
static void output_error(struct jsonw *w, const char *code, const char *message)
{
    jsonw_key(w, "error");
    jsonw_object_open(w);
    jsonw_kstring(w, "code", code);
    jsonw_kstring(w, "message", message);
    jsonw_object_close(w);
}

static char *output_finish(struct jsonw *w, size_t *len)
{
    char *text = jsonw_finish(w, len);
    jsonw_release(w);
    return text;
}

char *output_result(const struct job *job, const char *worker_id, const char *replace_code,
                    const char *replace_msg, size_t *len)
{
    int ok = job->ok && !replace_code;
    const struct request *req = job->req;
    struct cost_usage total = {{0}};
    uint64_t cost = 0;
    for (size_t i = 0; i < job->nattempts; i++) {
        const struct attempt *a = &job->attempts[i];
        if (a->billable) {
            for (int c = 0; c < COST_NCAT; c++)
                total.tokens[c] += a->usage.tokens[c];
            cost += a->cost_nusd;
        }
    }
    /* the text, and its JSON once more: the rest is small */
    size_t text = ok && job->reply.text ? job->reply.text_len : 0;
    size_t hint = 1024 + 256 * (job->nattempts + job->plan.ncandidates) +
                  (req->format != REQUEST_FORMAT_TEXT ? 2 : 1) * (text + text / 8);
    struct jsonw w;
    jsonw_init(&w, hint, OUTPUT_RECORD_MAX);
    jsonw_object_open(&w);
    jsonw_kint(&w, "version", 1);
    jsonw_kstring(&w, "id", req->id);
    jsonw_kstring(&w, "status", ok ? "ok" : "error");
    jsonw_kstring(&w, "task", req->task);
    if (req->tenant)
        jsonw_kstring(&w, "tenant", req->tenant);
    if (job->nattempts > 0) {
        size_t last = job->ok ? job->answered_by : job->nattempts - 1;
        const struct policy_model *m = output_model(job, job->attempts[last].model);
        jsonw_kstring(&w, "model", m->name);
        jsonw_kstring(&w, "provider", m->provider);
        jsonw_kstring(&w, "provider_model",
                      job->ok && job->reply.model ? job->reply.model : m->model);
    }
    if (ok)
        output_answer(&w, job);
    output_usage(&w, "usage", &total);
    jsonw_kuint(&w, "cost_nusd", cost);
    jsonw_kuint(&w, "budget_nusd", job->plan.budget_nusd);

    jsonw_key(&w, "attempts");
    jsonw_array_open(&w);
    for (size_t i = 0; i < job->nattempts; i++) {
        const struct attempt *a = &job->attempts[i];
        jsonw_object_open(&w);
        jsonw_kuint(&w, "attempt", (uint64_t)i + 1);
        jsonw_kstring(&w, "call_id", a->call_id);
        jsonw_kstring(&w, "model", output_model(job, a->model)->name);
        jsonw_kstring(&w, "provider", output_provider_type(job, a->model));
        jsonw_kstring(&w, "status", attempt_status_names[a->status]);
        jsonw_kint(&w, "http_status", a->http_status);
        jsonw_kuint(&w, "latency_ms", a->latency_ms);
        jsonw_kuint(&w, "cost_nusd", a->cost_nusd);
        jsonw_kbool(&w, "billable", a->billable);
        if (a->error_code[0])
            output_error(&w, a->error_code, a->error_msg);
        jsonw_object_close(&w);
    }
    jsonw_array_close(&w);

    jsonw_key(&w, "route");
    jsonw_array_open(&w);
    for (size_t i = 0; i < job->plan.ncandidates; i++) {
        const struct router_candidate *c = &job->plan.candidates[i];
        jsonw_object_open(&w);
        jsonw_kstring(&w, "model", output_model(job, c->model)->name);
        jsonw_kstring(&w, "decision", fate_names[job->fate[i]]);
        jsonw_kstring(&w, "reason", job->fate_reason[i] ? job->fate_reason[i] : c->reason);
        if (c->decision == ROUTER_TAKEN) {
            jsonw_kuint(&w, "max_tokens", c->max_tokens);
            jsonw_kuint(&w, "worst_case_nusd", c->worst_case_nusd);
        }
        jsonw_object_close(&w);
    }
    jsonw_array_close(&w);
    if (job->plan.pinned)
        jsonw_kbool(&w, "pinned", 1);
    if (!ok)
        output_error(&w, replace_code ? replace_code : job->error_code,
                     replace_code ? replace_msg : job->error_msg);
    if (req->metadata && !replace_code) {
        jsonw_key(&w, "metadata");
        jsonw_json(&w, req->metadata);
    }
    jsonw_kint(&w, "received_at_ms", job->received_ms);
    jsonw_kint(&w, "completed_at_ms", job->completed_ms);
    jsonw_kstring(&w, "worker", worker_id);
    jsonw_key(&w, "source");
    jsonw_object_open(&w);
    jsonw_kstring(&w, "topic", rd_kafka_topic_name(job->msg->rkt));
    jsonw_kint(&w, "partition", job->msg->partition);
    jsonw_kint(&w, "offset", job->msg->offset);
    jsonw_object_close(&w);
    jsonw_object_close(&w);
    return output_finish(&w, len);
}

/* The request's metadata on a cost record, so that a batch can be costed
 * without joining the results: as is when its compact JSON (the record's
 * own encoding) is at most OUTPUT_COST_METADATA_MAX bytes, else only
 * "metadata_truncated": true (a prefix of JSON would be no JSON). The
 * dump stops at the bound: larger metadata costs no more than that. */
static void output_cost_metadata(struct jsonw *w, const json_t *metadata)
{
    struct jsonw_mark m = jsonw_mark(w);
    jsonw_key(w, "metadata");
    if (jsonw_json_upto(w, metadata, OUTPUT_COST_METADATA_MAX) == 0)
        return;
    jsonw_rewind(w, m);
    jsonw_kbool(w, "metadata_truncated", 1);
}

char *output_cost(const struct job *job, const struct attempt *a, size_t attempt_number,
                  const char *worker_id, size_t *len)
{
    const struct request *req = job->req;
    const struct policy_model *m = output_model(job, a->model);
    struct jsonw w;
    jsonw_init(&w, 1024, OUTPUT_RECORD_MAX);
    jsonw_object_open(&w);
    jsonw_kint(&w, "version", 1);
    jsonw_kstring(&w, "id", req->id);
    jsonw_kstring(&w, "call_id", a->call_id);
    jsonw_kuint(&w, "attempt", attempt_number);
    jsonw_kstring(&w, "task", req->task);
    jsonw_kstring(&w, "model", m->name);
    jsonw_kstring(&w, "provider", m->provider);
    jsonw_kstring(&w, "provider_model",
                  a == &job->attempts[job->answered_by] && job->reply.model ? job->reply.model
                                                                            : m->model);
    jsonw_kstring(&w, "status", a->status == ATTEMPT_OK ? "ok" : "error");
    output_usage(&w, "usage", &a->usage);
    output_prices(&w, "prices_nusd_per_mtok", &m->prices, &a->usage);
    jsonw_kuint(&w, "cost_nusd", a->cost_nusd);
    jsonw_kuint(&w, "budget_nusd", job->plan.budget_nusd);
    jsonw_kint(&w, "ts_ms", a->ts_ms);
    jsonw_kstring(&w, "worker", worker_id);
    if (req->tenant)
        jsonw_kstring(&w, "tenant", req->tenant);
    if (req->metadata)
        output_cost_metadata(&w, req->metadata);
    /* the rates above are this tier's; finance checks them against the
     * named, dated entry */
    jsonw_kuint(&w, "price_tier", cost_tier_for(&m->prices, cost_prompt_tokens(&a->usage), NULL));
    if (m->price_entry) {
        jsonw_kstring(&w, "price_entry", m->price_entry);
        jsonw_kstring(&w, "price_date", m->price_date);
    }
    /* a settled record supersedes the reservation with its call_id */
    jsonw_kstring(&w, "kind", a->reservation ? "reserved" : "settled");
    if (a->reservation)
        jsonw_kuint(&w, "reserved_nusd", a->reserved_nusd);
    jsonw_object_close(&w);
    return output_finish(&w, len);
}

static void output_header(rd_kafka_headers_t *h, const char *name, const char *value)
{
    rd_kafka_header_add(h, name, -1, value, -1);
}

rd_kafka_headers_t *output_dead_letter_headers(const struct job *job, const char *worker_id,
                                               const struct output_dead_letter *dl)
{
    rd_kafka_headers_t *in = NULL;
    rd_kafka_headers_t *h;
    if (rd_kafka_message_headers(job->msg, &in) == RD_KAFKA_RESP_ERR_NO_ERROR && in)
        h = rd_kafka_headers_copy(in);
    else
        h = rd_kafka_headers_new(14);
    char partition[16], offset[24], ts[24], class_name[64], original[24];
    snprintf(partition, sizeof partition, "%d", (int)job->msg->partition);
    snprintf(offset, sizeof offset, "%" PRId64, job->msg->offset);
    snprintf(ts, sizeof ts, "%" PRId64, job->completed_ms ? job->completed_ms : loop_wall_ms());
    snprintf(class_name, sizeof class_name, "switchyard.error.%s", dl->code);
    snprintf(original, sizeof original, "%zu", dl->original_len);
    const char *topic = rd_kafka_topic_name(job->msg->rkt);
    output_header(h, "x-error-code", dl->code);
    output_header(h, "x-error-message", dl->message);
    output_header(h, "x-error-topic", topic);
    output_header(h, "x-error-partition", partition);
    output_header(h, "x-error-offset", offset);
    output_header(h, "x-error-worker", worker_id);
    output_header(h, "x-error-ts-ms", ts);
    if (dl->truncated) {
        /* the value is a prefix: the whole input is at the source offset
         * (while the topic's retention keeps it) */
        output_header(h, "x-error-truncated", "true");
        output_header(h, "x-error-original-bytes", original);
    }
    output_header(h, "__connect.errors.topic", topic);
    output_header(h, "__connect.errors.partition", partition);
    output_header(h, "__connect.errors.offset", offset);
    output_header(h, "__connect.errors.exception.class.name", class_name);
    output_header(h, "__connect.errors.exception.message", dl->message);
    return h;
}

rd_kafka_headers_t *output_reply_headers(const struct config *cfg, const rd_kafka_headers_t *in,
                                         size_t *skipped, const char **skipped_name)
{
    rd_kafka_headers_t *out = NULL;
    *skipped = 0;
    *skipped_name = NULL;
    for (size_t i = 0; in && i < cfg->reply.ncopy_headers; i++) {
        const char *name = cfg->reply.copy_headers[i];
        const void *value;
        size_t size;
        if (rd_kafka_header_get_last(in, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        if (size > OUTPUT_COPY_HEADER_MAX) {
            if ((*skipped)++ == 0)
                *skipped_name = name;
            continue;
        }
        if (!out && !(out = rd_kafka_headers_new(cfg->reply.ncopy_headers)))
            return NULL;
        /* a null value is added as null: value NULL, size 0 */
        rd_kafka_header_add(out, name, -1, value, value ? (ssize_t)size : 0);
    }
    return out;
}

/* Kafka's topic alphabet; the allow-list holds only such names. */
static int output_topic_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 249)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

const char *output_result_topic(const struct config *cfg, const rd_kafka_headers_t *in,
                                int *refused, char *named, size_t cap)
{
    const void *value;
    size_t size;
    *refused = 0;
    if (cap)
        named[0] = '\0';
    if (!in || rd_kafka_header_get_last(in, OUTPUT_REPLY_TOPIC_HEADER, &value, &size) !=
                   RD_KAFKA_RESP_ERR_NO_ERROR)
        return cfg->topic_results;
    const char *topic = value ? config_reply_topic_find(cfg, value, size) : NULL;
    if (topic)
        return topic;
    *refused = 1;
    /* only a topic name is echoed: the value is the requester's bytes */
    if (value && output_topic_name_ok(value, size))
        snprintf(named, cap, "%.*s", (int)size, (const char *)value);
    else if (value)
        snprintf(named, cap, "%zu bytes that are no topic name", size);
    else
        snprintf(named, cap, "a null value");
    return cfg->topic_results;
}

static int output_too_large_error(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

enum output_replacement output_replace(enum job_output_kind kind, unsigned replaced,
                                       rd_kafka_resp_err_t err)
{
    switch (kind) {
    case JOB_OUTPUT_RESULT:
        if (replaced == 0)
            return output_too_large_error(err) ? OUTPUT_ERROR_RESULT : OUTPUT_DEAD_LETTER;
        if (replaced == 1)
            return OUTPUT_DEAD_LETTER;
        return replaced == 2 ? OUTPUT_BOUNDED_DEAD_LETTER : OUTPUT_GIVE_UP;
    case JOB_OUTPUT_COST:
    case JOB_OUTPUT_DEAD_LETTER:
        if (replaced == 0)
            return OUTPUT_DEAD_LETTER;
        return replaced == 1 ? OUTPUT_BOUNDED_DEAD_LETTER : OUTPUT_GIVE_UP;
    }
    return OUTPUT_GIVE_UP;
}

const char *output_replacement_name(enum output_replacement r)
{
    switch (r) {
    case OUTPUT_ERROR_RESULT:
        return "an error result (result_too_large)";
    case OUTPUT_DEAD_LETTER:
        return "a dead letter of the input (at most 64 KiB of it)";
    case OUTPUT_BOUNDED_DEAD_LETTER:
        return "a dead letter of headers only";
    case OUTPUT_GIVE_UP:
        break;
    }
    return "nothing";
}

const char *output_kind_name(enum job_output_kind kind)
{
    switch (kind) {
    case JOB_OUTPUT_RESULT:
        return "result";
    case JOB_OUTPUT_COST:
        return "cost record";
    case JOB_OUTPUT_DEAD_LETTER:
        return "dead letter";
    }
    return "output";
}

void output_too_large_message(const struct job *job, size_t result_len, const char *why, char *out,
                              size_t cap)
{
    size_t text = job->ok && job->reply.text ? job->reply.text_len : 0;
    size_t meta = 0;
    if (job->req && job->req->metadata) {
        char *m = json_dumps(job->req->metadata, JSON_COMPACT);
        meta = m ? strlen(m) : 0;
        free(m);
    }
    snprintf(out, cap,
             "the result (%zu bytes) could not be published: %s; dropped: output text (%zu "
             "bytes), metadata (%zu bytes); %s",
             result_len, why, text, meta,
             job->ok ? "the provider answered and was billed: see attempts and cost_nusd"
                     : "the request was not answered");
}

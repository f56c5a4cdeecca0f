/*
 * output: encoding only. Field names and shapes follow schemas/; the e2e
 * tests validate every published record against those files, so a change
 * here without a schema change fails the build.
 */
#include "output.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
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

static json_t *output_usage(const struct cost_usage *u)
{
    json_t *o = json_object();
    for (int c = 0; c < COST_NCAT; c++)
        if (output_category_shown((enum cost_category)c, u))
            json_object_set_new(o, cost_category_name((enum cost_category)c),
                                json_integer((json_int_t)u->tokens[c]));
    return o;
}

/* The rates of the tier the usage fell in, as applied. */
static json_t *output_prices(const struct cost_prices *p, const struct cost_usage *u)
{
    const uint64_t *rates;
    cost_tier_for(p, cost_prompt_tokens(u), &rates);
    json_t *o = json_object();
    for (int c = 0; c < COST_NCAT; c++)
        if (output_category_shown((enum cost_category)c, u))
            json_object_set_new(o, cost_category_name((enum cost_category)c),
                                json_integer((json_int_t)rates[c]));
    return o;
}

static char *output_dump(json_t *o, size_t *len)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text)
        *len = strlen(text);
    return text;
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
static json_t *output_answer(const struct job *job)
{
    const struct provider_reply *r = &job->reply;
    json_t *o =
        json_pack("{s:s%, s:s}", "text", r->text ? r->text : "", r->text ? r->text_len : (size_t)0,
                  "finish_reason", provider_finish_name(r->finish));
    if (!o)
        return NULL;
    if (r->tool_calls && json_array_size(r->tool_calls) > 0)
        json_object_set(o, "tool_calls", r->tool_calls);
    if (job->req->format != REQUEST_FORMAT_TEXT) {
        char why[256];
        json_t *json =
            output_reply_json(job->req->format, r->text, r->text_len, r->finish, why, sizeof why);
        if (json)
            json_object_set_new(o, "json", json);
        else {
            /* jansson's words may quote bytes of the text: not always UTF-8 */
            json_t *msg = json_string(why);
            json_object_set_new(o, "json_error", msg ? msg : json_string("the reply is not JSON"));
        }
    }
    return o;
}

char *output_result(const struct job *job, const char *worker_id, const char *replace_code,
                    const char *replace_msg, size_t *len)
{
    int ok = job->ok && !replace_code;
    const struct request *req = job->req;
    json_t *o = json_object();
    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "id", json_string(req->id));
    json_object_set_new(o, "status", json_string(ok ? "ok" : "error"));
    json_object_set_new(o, "task", json_string(req->task));
    if (req->tenant)
        json_object_set_new(o, "tenant", json_string(req->tenant));

    struct cost_usage total = {{0}};
    uint64_t cost = 0;
    json_t *attempts = json_array();
    for (size_t i = 0; i < job->nattempts; i++) {
        const struct attempt *a = &job->attempts[i];
        json_t *e = json_pack(
            "{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:b}", "attempt", (json_int_t)i + 1,
            "call_id", a->call_id, "model", output_model(job, a->model)->name, "provider",
            output_provider_type(job, a->model), "status", attempt_status_names[a->status],
            "http_status", (json_int_t)a->http_status, "latency_ms", (json_int_t)a->latency_ms,
            "cost_nusd", (json_int_t)a->cost_nusd, "billable", a->billable);
        if (a->error_code[0])
            json_object_set_new(
                e, "error",
                json_pack("{s:s, s:s}", "code", a->error_code, "message", a->error_msg));
        json_array_append_new(attempts, e);
        if (a->billable) {
            for (int c = 0; c < COST_NCAT; c++)
                total.tokens[c] += a->usage.tokens[c];
            cost += a->cost_nusd;
        }
    }
    if (job->nattempts > 0) {
        size_t last = job->ok ? job->answered_by : job->nattempts - 1;
        const struct policy_model *m = output_model(job, job->attempts[last].model);
        json_object_set_new(o, "model", json_string(m->name));
        json_object_set_new(o, "provider", json_string(m->provider));
        json_object_set_new(o, "provider_model",
                            json_string(job->ok && job->reply.model ? job->reply.model : m->model));
    }
    if (ok)
        json_object_set_new(o, "output", output_answer(job));
    json_object_set_new(o, "usage", output_usage(&total));
    json_object_set_new(o, "cost_nusd", json_integer((json_int_t)cost));
    json_object_set_new(o, "budget_nusd", json_integer((json_int_t)job->plan.budget_nusd));
    json_object_set_new(o, "attempts", attempts);

    json_t *route = json_array();
    for (size_t i = 0; i < job->plan.ncandidates; i++) {
        const struct router_candidate *c = &job->plan.candidates[i];
        json_t *e = json_pack("{s:s, s:s, s:s}", "model", output_model(job, c->model)->name,
                              "decision", fate_names[job->fate[i]], "reason",
                              job->fate_reason[i] ? job->fate_reason[i] : c->reason);
        if (c->decision == ROUTER_TAKEN) {
            json_object_set_new(e, "max_tokens", json_integer(c->max_tokens));
            json_object_set_new(e, "worst_case_nusd", json_integer((json_int_t)c->worst_case_nusd));
        }
        json_array_append_new(route, e);
    }
    json_object_set_new(o, "route", route);
    if (job->plan.pinned)
        json_object_set_new(o, "pinned", json_true());
    if (!ok)
        json_object_set_new(o, "error",
                            json_pack("{s:s, s:s}", "code",
                                      replace_code ? replace_code : job->error_code, "message",
                                      replace_code ? replace_msg : job->error_msg));
    if (req->metadata && !replace_code)
        json_object_set(o, "metadata", req->metadata);
    json_object_set_new(o, "received_at_ms", json_integer(job->received_ms));
    json_object_set_new(o, "completed_at_ms", json_integer(job->completed_ms));
    json_object_set_new(o, "worker", json_string(worker_id));
    json_object_set_new(o, "source",
                        json_pack("{s:s, s:i, s:I}", "topic", rd_kafka_topic_name(job->msg->rkt),
                                  "partition", (int)job->msg->partition, "offset",
                                  (json_int_t)job->msg->offset));
    return output_dump(o, len);
}

/* The request's metadata on a cost record, so that a batch can be costed
 * without joining the results: as is when its compact JSON (the record's
 * own encoding) is at most OUTPUT_COST_METADATA_MAX bytes, else only
 * "metadata_truncated": true (a prefix of JSON would be no JSON). */
static void output_cost_metadata(json_t *o, json_t *metadata)
{
    if (json_dumpb(metadata, NULL, 0, JSON_COMPACT) <= OUTPUT_COST_METADATA_MAX)
        json_object_set(o, "metadata", metadata);
    else
        json_object_set_new(o, "metadata_truncated", json_true());
}

char *output_cost(const struct job *job, const struct attempt *a, size_t attempt_number,
                  const char *worker_id, size_t *len)
{
    const struct request *req = job->req;
    const struct policy_model *m = output_model(job, a->model);
    json_t *o = json_pack(
        "{s:i, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:I, "
        "s:I, s:s}",
        "version", 1, "id", req->id, "call_id", a->call_id, "attempt", (json_int_t)attempt_number,
        "task", req->task, "model", m->name, "provider", m->provider, "provider_model",
        a == &job->attempts[job->answered_by] && job->reply.model ? job->reply.model : m->model,
        "status", a->status == ATTEMPT_OK ? "ok" : "error", "usage", output_usage(&a->usage),
        "prices_nusd_per_mtok", output_prices(&m->prices, &a->usage), "cost_nusd",
        (json_int_t)a->cost_nusd, "budget_nusd", (json_int_t)job->plan.budget_nusd, "ts_ms",
        (json_int_t)a->ts_ms, "worker", worker_id);
    if (o && req->tenant)
        json_object_set_new(o, "tenant", json_string(req->tenant));
    if (o && req->metadata)
        output_cost_metadata(o, req->metadata);
    if (o) {
        /* the rates above are this tier's; finance checks them against
         * the named, dated entry */
        json_object_set_new(
            o, "price_tier",
            json_integer(cost_tier_for(&m->prices, cost_prompt_tokens(&a->usage), NULL)));
        if (m->price_entry) {
            json_object_set_new(o, "price_entry", json_string(m->price_entry));
            json_object_set_new(o, "price_date", json_string(m->price_date));
        }
        /* a settled record supersedes the reservation with its call_id */
        json_object_set_new(o, "kind", json_string(a->reservation ? "reserved" : "settled"));
        if (a->reservation)
            json_object_set_new(o, "reserved_nusd", json_integer((json_int_t)a->reserved_nusd));
    }
    return output_dump(o, len);
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

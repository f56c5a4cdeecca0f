/*
 * anthropic: the Messages API. Usage rule (DESIGN 6): cache reads and
 * cache writes are reported SEPARATELY from input_tokens; thinking is
 * billed inside output_tokens. System turns go to the top-level "system".
 * Pure: builds bytes and reads bytes, never touches the network.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/adapter.h"

#define ANTHROPIC_VERSION "2023-06-01"

/* The request's system text and every system-role message, joined. */
static char *anthropic_system(const struct request *req, size_t *len)
{
    size_t n = req->system ? req->system_len : 0;
    for (size_t i = 0; i < req->nmessages; i++)
        if (req->messages[i].role == REQUEST_SYSTEM)
            n += req->messages[i].content_len + 2;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    size_t used = 0;
    if (req->system) {
        memcpy(s, req->system, req->system_len);
        used = req->system_len;
    }
    for (size_t i = 0; i < req->nmessages; i++) {
        const struct request_message *m = &req->messages[i];
        if (m->role != REQUEST_SYSTEM)
            continue;
        if (used > 0) {
            memcpy(s + used, "\n\n", 2);
            used += 2;
        }
        memcpy(s + used, m->content, m->content_len);
        used += m->content_len;
    }
    s[used] = '\0';
    *len = used;
    return s;
}

static int anthropic_build(const struct provider_call *call, struct provider_http *out,
                           struct err *e)
{
    const struct request *req = call->req;
    json_t *messages = json_array();
    int failed = messages == NULL;
    for (size_t i = 0; !failed && i < req->nmessages; i++) {
        const struct request_message *m = &req->messages[i];
        if (m->role == REQUEST_SYSTEM)
            continue;
        /* s% takes a length: content may hold NUL bytes */
        failed = json_array_append_new(messages,
                                       json_pack("{s:s, s:s%}", "role", request_role_name(m->role),
                                                 "content", m->content, m->content_len)) < 0;
    }
    if (!failed && json_array_size(messages) == 0) {
        json_decref(messages);
        return err_set(e, ERR_INPUT, "no_turns",
                       "Anthropic needs at least one user or assistant message; this request "
                       "has only system text");
    }
    size_t system_len = 0;
    char *system = failed ? NULL : anthropic_system(req, &system_len);
    json_t *body = NULL;
    if (failed || !system)
        json_decref(messages);
    else /* "o": json_pack takes messages, even when it fails */
        body = json_pack("{s:s, s:I, s:o}", "model", call->model, "max_tokens",
                         (json_int_t)call->max_tokens, "messages", messages);
    if (body && system_len > 0 &&
        json_object_set_new(body, "system", json_stringn(system, system_len)) < 0) {
        json_decref(body);
        body = NULL;
    }
    free(system);
    if (body && req->has_temperature &&
        json_object_set_new(body, "temperature", json_real(req->temperature)) < 0) {
        json_decref(body);
        body = NULL;
    }
    if (adapter_body(out, body) < 0 || adapter_url(out, call->base_url, "/v1/messages") < 0 ||
        adapter_header(out, "x-api-key", call->api_key ? call->api_key : "") < 0 ||
        adapter_header(out, "anthropic-version",
                       call->api_version ? call->api_version : ANTHROPIC_VERSION) < 0 ||
        adapter_header(out, "content-type", "application/json") < 0) {
        provider_http_release(out);
        return err_set(e, ERR_FATAL, "oom", "out of memory building the request");
    }
    return 0;
}

static enum provider_finish anthropic_finish(const char *reason)
{
    if (!reason)
        return PROVIDER_FINISH_OTHER;
    if (strcmp(reason, "end_turn") == 0 || strcmp(reason, "stop_sequence") == 0)
        return PROVIDER_FINISH_STOP;
    if (strcmp(reason, "max_tokens") == 0)
        return PROVIDER_FINISH_LENGTH;
    if (strcmp(reason, "tool_use") == 0)
        return PROVIDER_FINISH_TOOL_CALLS;
    if (strcmp(reason, "refusal") == 0)
        return PROVIDER_FINISH_CONTENT_FILTER;
    return PROVIDER_FINISH_OTHER;
}

/* {"type":"error","error":{"type","message"}}. The error type refines
 * the status where the status alone is ambiguous. */
static int anthropic_error(long status, json_t *root, const char *body, size_t len, struct err *e)
{
    const json_t *error = json_object_get(root, "error");
    const char *type = json_string_value(json_object_get(error, "type"));
    const json_t *m = json_object_get(error, "message");
    const char *msg = json_string_value(m);
    size_t msg_len = msg ? json_string_length(m) : 0;
    if (!msg && !root && len > 0) { /* a proxy's HTML page, say: quote its start */
        msg = body;
        msg_len = len;
    }
    const char *code = NULL;
    if (type && strcmp(type, "overloaded_error") == 0)
        code = "overloaded";
    else if (type && strcmp(type, "rate_limit_error") == 0)
        code = "rate_limited";
    int rc = adapter_status_error(status, code, msg, msg_len, e);
    json_decref(root);
    return rc;
}

/* A total: present, and a non-negative integer (null is not a count). */
static int anthropic_total(const json_t *usage, const char *key, uint64_t *out)
{
    return json_is_integer(json_object_get(usage, key)) ? adapter_count(usage, key, out) : -1;
}

static int anthropic_parse(long status, const char *body, size_t len, struct provider_reply *out,
                           struct err *e)
{
    /* JSON_ALLOW_NUL: a model may emit U+0000, and the text keeps it */
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
    if (status < 200 || status > 299)
        return anthropic_error(status, root, body, len, e);
    const json_t *content = json_object_get(root, "content");
    const json_t *usage = json_object_get(root, "usage");
    uint64_t input, output, cache_read, cache_write;
    /* the cache counts are absent on models and accounts without prompt
     * caching, and null on some replies: both mean 0 */
    if (!json_is_array(content) || !json_is_object(usage) ||
        anthropic_total(usage, "input_tokens", &input) < 0 ||
        anthropic_total(usage, "output_tokens", &output) < 0 ||
        adapter_count(usage, "cache_read_input_tokens", &cache_read) < 0 ||
        adapter_count(usage, "cache_creation_input_tokens", &cache_write) < 0) {
        json_decref(root);
        /* possibly billed, but for what we cannot tell: never invent a
         * cost; a retry gets a reply we can account for (see openai.c) */
        return err_set(e, ERR_TRANSIENT, "malformed_reply",
                       "reply not understood: no content, or usage counts missing or not "
                       "non-negative integers");
    }
    /* the answer is every "text" block, in order; thinking, tool_use and
     * other blocks are not text (thinking is billed in output_tokens) */
    size_t total = 0;
    for (size_t i = 0; i < json_array_size(content); i++) {
        const json_t *block = json_array_get(content, i);
        const char *type = json_string_value(json_object_get(block, "type"));
        if (type && strcmp(type, "text") == 0)
            total += json_string_length(json_object_get(block, "text"));
    }
    const char *model = json_string_value(json_object_get(root, "model"));
    out->text = malloc(total + 1);
    if (!out->text || (model && !(out->model = strdup(model)))) {
        provider_reply_release(out);
        json_decref(root);
        return err_set(e, ERR_FATAL, "oom", "out of memory");
    }
    for (size_t i = 0; i < json_array_size(content); i++) {
        const json_t *block = json_array_get(content, i);
        const char *type = json_string_value(json_object_get(block, "type"));
        const json_t *text = json_object_get(block, "text");
        if (type && strcmp(type, "text") == 0 && json_is_string(text)) {
            memcpy(out->text + out->text_len, json_string_value(text), json_string_length(text));
            out->text_len += json_string_length(text);
        }
    }
    out->text[out->text_len] = '\0';
    out->finish = anthropic_finish(json_string_value(json_object_get(root, "stop_reason")));
    out->usage.tokens[COST_INPUT] = input;
    out->usage.tokens[COST_OUTPUT] = output; /* thinking included: billed as output */
    out->usage.tokens[COST_CACHE_READ] = cache_read;
    out->usage.tokens[COST_CACHE_WRITE] = cache_write;
    out->usage.tokens[COST_REASONING] = 0;
    json_decref(root);
    return 0;
}

const struct provider_ops anthropic_ops = {"anthropic", anthropic_build, anthropic_parse};

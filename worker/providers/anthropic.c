/*
 * anthropic: the Messages API. Usage rule (DESIGN 6): cache reads and
 * cache writes are reported SEPARATELY from input_tokens; thinking is
 * billed inside output_tokens; usage.cache_creation splits the writes
 * into five-minute and one-hour ones, which are priced apart. System
 * turns go to the top-level "system". Pure: builds bytes and reads
 * bytes, never touches the network.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/adapter.h"

#define ANTHROPIC_VERSION "2023-06-01"

/* The request's system text and every system-role message, joined. */
static char *anthropic_system(const struct request *req, size_t *len)
{
    size_t n = req->system ? req->system_len : 0, used = 0;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (req->system) {
        memcpy(s, req->system, req->system_len);
        used = req->system_len;
    }
    for (size_t i = 0; i < req->nmessages; i++) {
        if (req->messages[i].role != REQUEST_SYSTEM)
            continue;
        size_t tlen;
        char *text = adapter_message_text(&req->messages[i], &tlen);
        char *grown = text ? realloc(s, used + 2 + tlen + 1) : NULL;
        if (!grown) {
            free(text);
            free(s);
            return NULL;
        }
        s = grown;
        if (used > 0) {
            memcpy(s + used, "\n\n", 2);
            used += 2;
        }
        memcpy(s + used, text, tlen);
        used += tlen;
        free(text);
    }
    s[used] = '\0';
    *len = used;
    return s;
}

/* A URL image is fetched by Anthropic; a data: URL is not a URL it
 * fetches, so it travels as the base64 source it is. */
static void anthropic_image(struct jsonw *w, const struct request_part *part)
{
    const char *mt = part->media_type, *data = part->text;
    size_t mt_len = mt ? strlen(mt) : 0, data_len = part->text_len;
    jsonw_object_open(w);
    jsonw_kstring(w, "type", "image");
    jsonw_key(w, "source");
    jsonw_object_open(w);
    if (part->type == REQUEST_PART_IMAGE_URL &&
        adapter_data_url(part->text, part->text_len, &mt, &mt_len, &data, &data_len) < 0) {
        jsonw_kstring(w, "type", "url");
        jsonw_key(w, "url");
        jsonw_string_n(w, part->text, part->text_len);
    } else {
        jsonw_kstring(w, "type", "base64");
        jsonw_key(w, "media_type");
        jsonw_string_n(w, mt, mt_len);
        jsonw_key(w, "data");
        jsonw_string_n(w, data, data_len);
    }
    jsonw_object_close(w);
    jsonw_object_close(w);
}

/* A user or assistant turn: a plain string when it is one, else blocks
 * (text, images, then the assistant's tool_use calls). */
static void anthropic_turn(struct jsonw *w, const struct request_message *m)
{
    jsonw_object_open(w);
    jsonw_kstring(w, "role", m->role == REQUEST_ASSISTANT ? "assistant" : "user");
    jsonw_key(w, "content");
    if (m->content && m->ntool_calls == 0) {
        jsonw_string_n(w, m->content, m->content_len);
        jsonw_object_close(w);
        return;
    }
    jsonw_array_open(w);
    /* Anthropic refuses an empty text block: a turn that only calls
     * tools and says "" says nothing */
    if (m->content && m->content_len > 0) {
        jsonw_object_open(w);
        jsonw_kstring(w, "type", "text");
        jsonw_key(w, "text");
        jsonw_string_n(w, m->content, m->content_len);
        jsonw_object_close(w);
    }
    if (!m->content)
        adapter_w_parts(w, m, anthropic_image);
    for (size_t i = 0; i < m->ntool_calls; i++) {
        const struct request_tool_call *c = &m->tool_calls[i];
        jsonw_object_open(w);
        jsonw_kstring(w, "type", "tool_use");
        jsonw_kstring(w, "id", c->id);
        jsonw_kstring(w, "name", c->name);
        jsonw_key(w, "input");
        jsonw_json(w, c->arguments);
        jsonw_object_close(w);
    }
    jsonw_array_close(w);
    jsonw_object_close(w);
}

/* Tool turns answer in a user turn of tool_result blocks; consecutive
 * tool turns share one, as the API asks (all results of one assistant
 * turn's calls in the next user turn): *open says that turn is still
 * open, for the next tool turn to add to. */
static void anthropic_tool_result(struct jsonw *w, int *open, const struct request_message *m)
{
    if (!*open) {
        jsonw_object_open(w);
        jsonw_kstring(w, "role", "user");
        jsonw_key(w, "content");
        jsonw_array_open(w);
        *open = 1;
    }
    jsonw_object_open(w);
    jsonw_kstring(w, "type", "tool_result");
    jsonw_kstring(w, "tool_use_id", m->tool_call_id);
    jsonw_key(w, "content");
    if (m->content) {
        jsonw_string_n(w, m->content, m->content_len);
    } else {
        size_t len;
        char *text = adapter_message_text(m, &len);
        if (text)
            jsonw_string_n(w, text, len);
        else
            jsonw_fail(w, JSONW_NOMEM);
        free(text);
    }
    jsonw_object_close(w);
}

static void anthropic_messages(struct jsonw *w, const struct request *req)
{
    int open = 0;
    jsonw_array_open(w);
    for (size_t i = 0; i < req->nmessages; i++) {
        const struct request_message *m = &req->messages[i];
        if (m->role == REQUEST_SYSTEM)
            continue;
        if (m->role == REQUEST_TOOL) {
            anthropic_tool_result(w, &open, m);
            continue;
        }
        if (open) { /* the results turn ends: its array, then its object */
            jsonw_array_close(w);
            jsonw_object_close(w);
            open = 0;
        }
        anthropic_turn(w, m);
    }
    if (open) {
        jsonw_array_close(w);
        jsonw_object_close(w);
    }
    jsonw_array_close(w);
}

/* The format tool's input_schema (adapter_format_schema's value). */
static void anthropic_format_schema(struct jsonw *w, const struct request *req)
{
    if (req->format == REQUEST_FORMAT_JSON_SCHEMA && req->schema) {
        jsonw_json(w, req->schema);
        return;
    }
    jsonw_object_open(w);
    jsonw_kstring(w, "type", "object");
    jsonw_object_close(w);
}

/* The request's tools, then the format tool that stands for
 * response_format (adapter.h, ADAPTER_FORMAT_TOOL). */
static void anthropic_tools(struct jsonw *w, const struct request *req)
{
    jsonw_array_open(w);
    for (size_t i = 0; i < req->ntools; i++) {
        const struct request_tool *t = &req->tools[i];
        jsonw_object_open(w);
        jsonw_kstring(w, "name", t->name);
        /* input_schema is required: no parameters is an object of none */
        jsonw_key(w, "input_schema");
        if (t->parameters) {
            jsonw_json(w, t->parameters);
        } else {
            jsonw_object_open(w);
            jsonw_kstring(w, "type", "object");
            jsonw_object_close(w);
        }
        if (t->description)
            jsonw_kstring(w, "description", t->description);
        jsonw_object_close(w);
    }
    if (req->format != REQUEST_FORMAT_TEXT) {
        /* schema_name is at most 64 characters: the text fits */
        char desc[512];
        if (req->format == REQUEST_FORMAT_JSON_SCHEMA)
            snprintf(desc, sizeof desc,
                     "Give your final answer by calling this tool: its input is the answer, "
                     "following the JSON schema \"%s\".",
                     req->schema_name);
        else
            snprintf(desc, sizeof desc,
                     "Give your final answer by calling this tool: its input is the answer, a "
                     "JSON object.");
        jsonw_object_open(w);
        jsonw_kstring(w, "name", ADAPTER_FORMAT_TOOL);
        jsonw_key(w, "description");
        /* the schema's own description says what the answer means */
        if (req->schema_description) {
            size_t dlen = strlen(desc), slen = strlen(req->schema_description);
            char *joined = malloc(dlen + 1 + slen);
            if (joined) {
                memcpy(joined, desc, dlen);
                joined[dlen] = ' ';
                memcpy(joined + dlen + 1, req->schema_description, slen);
                jsonw_string_n(w, joined, dlen + 1 + slen);
                free(joined);
            } else {
                jsonw_fail(w, JSONW_NOMEM);
            }
        } else {
            jsonw_string(w, desc);
        }
        jsonw_key(w, "input_schema");
        anthropic_format_schema(w, req);
        jsonw_object_close(w);
    }
    jsonw_array_close(w);
}

/* {"type": type} or {"type": type, "name": name}. */
static void anthropic_choice(struct jsonw *w, const char *type, const char *name)
{
    jsonw_key(w, "tool_choice");
    jsonw_object_open(w);
    jsonw_kstring(w, "type", type);
    if (name)
        jsonw_kstring(w, "name", name);
    jsonw_object_close(w);
}

/* Nothing when the default (auto) applies. With response_format, the
 * format tool is forced, unless the request names a tool of its own (that
 * one is) or lets the model call one of its tools ("any": a tool, or the
 * answer through the format tool). Thinking admits auto and none only:
 * with reasoning the format tool is offered, not forced (and the router
 * keeps required/named choices away from reasoning requests). */
static void anthropic_tool_choice(struct jsonw *w, const struct request *req, int thinking)
{
    enum request_tool_choice c = req->tool_choice;
    if (req->format != REQUEST_FORMAT_TEXT) {
        if (thinking)
            return;
        if (c == REQUEST_TOOL_CHOICE_NAMED)
            anthropic_choice(w, "tool", req->tool_choice_name);
        else if (req->ntools > 0 && c != REQUEST_TOOL_CHOICE_NONE)
            anthropic_choice(w, "any", NULL);
        else
            anthropic_choice(w, "tool", ADAPTER_FORMAT_TOOL);
        return;
    }
    switch (c) {
    case REQUEST_TOOL_CHOICE_NONE:
        anthropic_choice(w, "none", NULL);
        break;
    case REQUEST_TOOL_CHOICE_REQUIRED:
        anthropic_choice(w, "any", NULL);
        break;
    case REQUEST_TOOL_CHOICE_NAMED:
        anthropic_choice(w, "tool", req->tool_choice_name);
        break;
    case REQUEST_TOOL_CHOICE_AUTO:
        break;
    }
}

/* 1 when some message is a user, assistant or tool turn. */
static int anthropic_has_turns(const struct request *req)
{
    for (size_t i = 0; i < req->nmessages; i++)
        if (req->messages[i].role != REQUEST_SYSTEM)
            return 1;
    return 0;
}

/* The top-level "system": the request's system text and every system-role
 * message, joined; nothing when that is empty. */
static void anthropic_w_system(struct jsonw *w, const struct request *req)
{
    int joined = 0;
    for (size_t i = 0; i < req->nmessages && !joined; i++)
        joined = req->messages[i].role == REQUEST_SYSTEM;
    if (!joined) { /* the common case: written from the request, no copy */
        if (req->system && req->system_len > 0) {
            jsonw_key(w, "system");
            jsonw_string_n(w, req->system, req->system_len);
        }
        return;
    }
    size_t len = 0;
    char *system = anthropic_system(req, &len);
    if (!system) {
        jsonw_fail(w, JSONW_NOMEM);
        return;
    }
    if (len > 0) {
        jsonw_key(w, "system");
        jsonw_string_n(w, system, len);
    }
    free(system);
}

/* The keys come in the order the jansson tree this replaced dumped them:
 * model, max_tokens, messages, system, sampling, tools, tool_choice,
 * thinking. */
static int anthropic_build(const struct provider_call *call, struct provider_http *out,
                           struct err *e)
{
    const struct request *req = call->req;
    if (adapter_format_tool_clash(req))
        return err_set(e, ERR_INPUT, "reserved_tool_name",
                       "the tool name \"%s\" is reserved for response_format on Anthropic",
                       ADAPTER_FORMAT_TOOL);
    if (!anthropic_has_turns(req))
        return err_set(e, ERR_INPUT, "no_turns",
                       "Anthropic needs at least one user or assistant message; this request "
                       "has only system text");
    struct jsonw w;
    adapter_body_init(&w, req);
    jsonw_object_open(&w);
    jsonw_kstring(&w, "model", call->model);
    jsonw_kuint(&w, "max_tokens", call->max_tokens);
    jsonw_key(&w, "messages");
    anthropic_messages(&w, req);
    anthropic_w_system(&w, req);
    adapter_w_sampling(&w, req, "top_p", "stop_sequences");
    if (req->ntools > 0 || req->format != REQUEST_FORMAT_TEXT) {
        jsonw_key(&w, "tools");
        anthropic_tools(&w, req);
    }
    anthropic_tool_choice(&w, req, call->reasoning_budget > 0);
    if (call->reasoning_budget > 0) {
        jsonw_key(&w, "thinking");
        jsonw_object_open(&w);
        jsonw_kstring(&w, "type", "enabled");
        jsonw_kuint(&w, "budget_tokens", call->reasoning_budget);
        jsonw_object_close(&w);
    }
    jsonw_object_close(&w);
    if (adapter_body_finish(out, &w) < 0 || adapter_url(out, call->base_url, "/v1/messages") < 0 ||
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
    size_t msg_len;
    const char *msg = adapter_error_message(m, root, body, len, &msg_len);
    const char *code = NULL;
    if (type && strcmp(type, "overloaded_error") == 0)
        code = "overloaded";
    else if (type && strcmp(type, "rate_limit_error") == 0)
        code = "rate_limited";
    int rc = adapter_status_error(status, code, msg, msg_len, e);
    json_decref(root);
    return rc;
}

/* cache_creation_input_tokens split by usage.cache_creation (absent on
 * older replies: every write is then a five-minute one). A breakdown that
 * does not add up to the total is not understood: -1. */
static int anthropic_cache_writes(const json_t *usage, uint64_t total, uint64_t *five_min,
                                  uint64_t *one_hour)
{
    const json_t *split = json_object_get(usage, "cache_creation");
    *five_min = total;
    *one_hour = 0;
    if (!split || json_is_null(split))
        return 0;
    const json_t *m5 = json_object_get(split, "ephemeral_5m_input_tokens");
    const json_t *h1 = json_object_get(split, "ephemeral_1h_input_tokens");
    uint64_t a, b;
    if (!json_is_object(split) || adapter_count(split, "ephemeral_5m_input_tokens", &a) < 0 ||
        adapter_count(split, "ephemeral_1h_input_tokens", &b) < 0)
        return -1;
    int has5 = m5 && !json_is_null(m5), has1 = h1 && !json_is_null(h1);
    if (has5 && has1)
        return a + b == total ? (*five_min = a, *one_hour = b, 0) : -1;
    if (has1) /* the rest of the total lives five minutes */
        return b <= total ? (*five_min = total - b, *one_hour = b, 0) : -1;
    if (has5)
        return a <= total ? (*five_min = a, *one_hour = total - a, 0) : -1;
    return 0;
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
    uint64_t input, output, cache_read, cache_write, write_5m, write_1h;
    /* the cache counts are absent on models and accounts without prompt
     * caching, and null on some replies: both mean 0 */
    if (!json_is_array(content) || !json_is_object(usage) ||
        adapter_total(usage, "input_tokens", &input) < 0 ||
        adapter_total(usage, "output_tokens", &output) < 0 ||
        adapter_count(usage, "cache_read_input_tokens", &cache_read) < 0 ||
        adapter_count(usage, "cache_creation_input_tokens", &cache_write) < 0 ||
        anthropic_cache_writes(usage, cache_write, &write_5m, &write_1h) < 0) {
        json_decref(root);
        /* possibly billed, but for what we cannot tell: never invent a
         * cost; a retry gets a reply we can account for (see openai.c) */
        return err_set(e, ERR_TRANSIENT, "malformed_reply",
                       "reply not understood: no content, or usage counts missing, not "
                       "non-negative integers, or cache_creation not adding up to "
                       "cache_creation_input_tokens");
    }
    /* the answer is every "text" block, in order; thinking and
     * redacted_thinking blocks are not text (thinking is billed in
     * output_tokens); tool_use blocks are calls, except the format
     * tool's, whose input is the answer */
    size_t total = 0, i;
    const json_t *block, *format_input = NULL;
    json_t *calls = json_array();
    const char *why = calls ? NULL : "out of memory";
    json_array_foreach(content, i, block)
    {
        const char *type = json_string_value(json_object_get(block, "type"));
        if (why || !type)
            continue;
        if (strcmp(type, "text") == 0) {
            total += json_string_length(json_object_get(block, "text"));
        } else if (strcmp(type, "tool_use") == 0) {
            const char *id = json_string_value(json_object_get(block, "id"));
            const char *name = json_string_value(json_object_get(block, "name"));
            json_t *args = json_object_get(block, "input");
            if (!id || !name || !json_is_object(args))
                why = "a tool_use block without id, name or an object input";
            else if (strcmp(name, ADAPTER_FORMAT_TOOL) == 0)
                format_input = args;
            else if (adapter_tool_call(calls, id, name, args) < 0)
                why = "out of memory";
        }
    }
    if (why) {
        json_decref(calls);
        json_decref(root);
        return err_set(e, ERR_TRANSIENT, "malformed_reply", "reply not understood: %s", why);
    }
    const char *model = json_string_value(json_object_get(root, "model"));
    if (adapter_answer_text(out, format_input, total) < 0 ||
        (model && !(out->model = strdup(model)))) {
        json_decref(calls);
        provider_reply_release(out);
        json_decref(root);
        return err_set(e, ERR_FATAL, "oom", "out of memory");
    }
    json_array_foreach(content, i, block)
    {
        const char *type = json_string_value(json_object_get(block, "type"));
        if (!format_input && type && strcmp(type, "text") == 0)
            adapter_answer_append(out, json_object_get(block, "text"));
    }
    out->text[out->text_len] = '\0';
    adapter_answer_calls(out, calls,
                         anthropic_finish(json_string_value(json_object_get(root, "stop_reason"))),
                         format_input != NULL);
    out->usage.tokens[COST_INPUT] = input;
    out->usage.tokens[COST_OUTPUT] = output; /* thinking included: billed as output */
    out->usage.tokens[COST_CACHE_READ] = cache_read;
    out->usage.tokens[COST_CACHE_WRITE] = write_5m;
    out->usage.tokens[COST_CACHE_WRITE_1H] = write_1h;
    out->usage.tokens[COST_REASONING] = 0;
    json_decref(root);
    return 0;
}

const struct provider_ops anthropic_ops = {"anthropic", anthropic_build, anthropic_parse, NULL};

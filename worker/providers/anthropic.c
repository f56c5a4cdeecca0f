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
static json_t *anthropic_image(const struct request_part *part)
{
    const char *mt = part->media_type, *data = part->text;
    size_t mt_len = mt ? strlen(mt) : 0, data_len = part->text_len;
    if (part->type == REQUEST_PART_IMAGE_URL &&
        adapter_data_url(part->text, part->text_len, &mt, &mt_len, &data, &data_len) < 0)
        return json_pack("{s:s, s:{s:s, s:s%}}", "type", "image", "source", "type", "url", "url",
                         part->text, part->text_len);
    return json_pack("{s:s, s:{s:s, s:s%, s:s%}}", "type", "image", "source", "type", "base64",
                     "media_type", mt, mt_len, "data", data, data_len);
}

/* A user or assistant turn: a plain string when it is one, else blocks
 * (text, images, then the assistant's tool_use calls). */
static json_t *anthropic_turn(const struct request_message *m)
{
    const char *role = m->role == REQUEST_ASSISTANT ? "assistant" : "user";
    if (m->content && m->ntool_calls == 0)
        return json_pack("{s:s, s:s%}", "role", role, "content", m->content, m->content_len);
    json_t *blocks = json_array();
    int failed = blocks == NULL;
    /* Anthropic refuses an empty text block: a turn that only calls
     * tools and says "" says nothing */
    if (!failed && m->content && m->content_len > 0)
        failed = json_array_append_new(blocks, json_pack("{s:s, s:s%}", "type", "text", "text",
                                                         m->content, m->content_len)) < 0;
    if (!failed && !m->content)
        failed = adapter_parts(blocks, m, anthropic_image) < 0;
    for (size_t i = 0; !failed && i < m->ntool_calls; i++) {
        const struct request_tool_call *c = &m->tool_calls[i];
        failed = json_array_append_new(blocks, json_pack("{s:s, s:s, s:s, s:O}", "type", "tool_use",
                                                         "id", c->id, "name", c->name, "input",
                                                         c->arguments)) < 0;
    }
    if (failed) {
        json_decref(blocks);
        return NULL;
    }
    return json_pack("{s:s, s:o}", "role", role, "content", blocks);
}

/* Tool turns answer in a user turn of tool_result blocks; consecutive
 * tool turns share one, as the API asks (all results of one assistant
 * turn's calls in the next user turn). */
static int anthropic_tool_result(json_t *messages, json_t **open_results,
                                 const struct request_message *m)
{
    size_t len;
    char *text = adapter_message_text(m, &len);
    json_t *block = text ? json_pack("{s:s, s:s, s:s%}", "type", "tool_result", "tool_use_id",
                                     m->tool_call_id, "content", text, len)
                         : NULL;
    free(text);
    if (!block)
        return -1;
    if (*open_results)
        return json_array_append_new(*open_results, block);
    json_t *results = json_pack("[o]", block);
    if (!results)
        return -1;
    *open_results = results; /* borrowed from the turn that holds it */
    return json_array_append_new(messages,
                                 json_pack("{s:s, s:o}", "role", "user", "content", results));
}

static json_t *anthropic_messages(const struct request *req)
{
    json_t *messages = json_array(), *open_results = NULL;
    int failed = messages == NULL;
    for (size_t i = 0; !failed && i < req->nmessages; i++) {
        const struct request_message *m = &req->messages[i];
        if (m->role == REQUEST_SYSTEM)
            continue;
        if (m->role == REQUEST_TOOL) {
            failed = anthropic_tool_result(messages, &open_results, m) < 0;
            continue;
        }
        open_results = NULL;
        failed = json_array_append_new(messages, anthropic_turn(m)) < 0;
    }
    if (failed) {
        json_decref(messages);
        return NULL;
    }
    return messages;
}

/* The request's tools, then the format tool that stands for
 * response_format (adapter.h, ADAPTER_FORMAT_TOOL). */
static json_t *anthropic_tools(const struct request *req)
{
    json_t *tools = json_array();
    for (size_t i = 0; tools && i < req->ntools; i++) {
        const struct request_tool *t = &req->tools[i];
        /* input_schema is required: no parameters is an object of none */
        json_t *tool = json_pack("{s:s, s:o}", "name", t->name, "input_schema",
                                 t->parameters ? json_incref(t->parameters)
                                               : json_pack("{s:s}", "type", "object"));
        if (tool && t->description &&
            json_object_set_new(tool, "description", json_string(t->description)) < 0) {
            json_decref(tool);
            tool = NULL;
        }
        if (json_array_append_new(tools, tool) < 0) {
            json_decref(tools);
            tools = NULL;
        }
    }
    if (tools && req->format != REQUEST_FORMAT_TEXT) {
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
        json_t *tool = json_pack("{s:s, s:s, s:o}", "name", ADAPTER_FORMAT_TOOL, "description",
                                 desc, "input_schema", adapter_format_schema(req));
        /* the schema's own description says what the answer means */
        if (tool && req->schema_description) {
            json_t *d = json_pack("s++", desc, " ", req->schema_description);
            if (json_object_set_new(tool, "description", d) < 0) {
                json_decref(tool);
                tool = NULL;
            }
        }
        if (json_array_append_new(tools, tool) < 0) {
            json_decref(tools);
            tools = NULL;
        }
    }
    return tools;
}

/* NULL when the default (auto) applies. With response_format, the format
 * tool is forced, unless the request names a tool of its own (that one
 * is) or lets the model call one of its tools ("any": a tool, or the
 * answer through the format tool). Thinking admits auto and none only:
 * with reasoning the format tool is offered, not forced (and the router
 * keeps required/named choices away from reasoning requests). */
static json_t *anthropic_tool_choice(const struct request *req, int thinking)
{
    enum request_tool_choice c = req->tool_choice;
    if (req->format != REQUEST_FORMAT_TEXT) {
        if (thinking)
            return NULL;
        if (c == REQUEST_TOOL_CHOICE_NAMED)
            return json_pack("{s:s, s:s}", "type", "tool", "name", req->tool_choice_name);
        if (req->ntools > 0 && c != REQUEST_TOOL_CHOICE_NONE)
            return json_pack("{s:s}", "type", "any");
        return json_pack("{s:s, s:s}", "type", "tool", "name", ADAPTER_FORMAT_TOOL);
    }
    switch (c) {
    case REQUEST_TOOL_CHOICE_NONE:
        return json_pack("{s:s}", "type", "none");
    case REQUEST_TOOL_CHOICE_REQUIRED:
        return json_pack("{s:s}", "type", "any");
    case REQUEST_TOOL_CHOICE_NAMED:
        return json_pack("{s:s, s:s}", "type", "tool", "name", req->tool_choice_name);
    case REQUEST_TOOL_CHOICE_AUTO:
        break;
    }
    return NULL;
}

static int anthropic_build(const struct provider_call *call, struct provider_http *out,
                           struct err *e)
{
    const struct request *req = call->req;
    if (adapter_format_tool_clash(req))
        return err_set(e, ERR_INPUT, "reserved_tool_name",
                       "the tool name \"%s\" is reserved for response_format on Anthropic",
                       ADAPTER_FORMAT_TOOL);
    json_t *messages = anthropic_messages(req);
    if (messages && json_array_size(messages) == 0) {
        json_decref(messages);
        return err_set(e, ERR_INPUT, "no_turns",
                       "Anthropic needs at least one user or assistant message; this request "
                       "has only system text");
    }
    size_t system_len = 0;
    char *system = messages ? anthropic_system(req, &system_len) : NULL;
    json_t *body = NULL;
    if (!system)
        json_decref(messages);
    else /* "o": json_pack takes messages, even when it fails */
        body = json_pack("{s:s, s:I, s:o}", "model", call->model, "max_tokens",
                         (json_int_t)call->max_tokens, "messages", messages);
    int failed = body == NULL;
    if (!failed && system_len > 0)
        failed = json_object_set_new(body, "system", json_stringn(system, system_len)) < 0;
    free(system);
    if (!failed)
        failed = adapter_sampling(body, req, "top_p", "stop_sequences") < 0;
    if (!failed && (req->ntools > 0 || req->format != REQUEST_FORMAT_TEXT))
        failed = json_object_set_new(body, "tools", anthropic_tools(req)) < 0;
    json_t *choice = failed ? NULL : anthropic_tool_choice(req, call->reasoning_budget > 0);
    if (!failed && choice)
        failed = json_object_set_new(body, "tool_choice", choice) < 0;
    if (!failed && call->reasoning_budget > 0)
        failed = json_object_set_new(body, "thinking",
                                     json_pack("{s:s, s:I}", "type", "enabled", "budget_tokens",
                                               (json_int_t)call->reasoning_budget)) < 0;
    if (failed) {
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

/*
 * openai: Chat Completions, which OpenAI, vLLM, Ollama, llama.cpp and most
 * gateways speak. Usage rule (DESIGN 6): cached tokens are INSIDE
 * prompt_tokens and reasoning tokens INSIDE completion_tokens; both are
 * taken out so that the categories are disjoint before any price applies.
 * Pure: builds bytes and reads bytes, never touches the network.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/adapter.h"

static int openai_append(json_t *messages, const char *role, const char *content, size_t len)
{
    /* s% takes a length: content may hold NUL bytes */
    return json_array_append_new(messages,
                                 json_pack("{s:s, s:s%}", "role", role, "content", content, len));
}

static int openai_build(const struct provider_call *call, struct provider_http *out, struct err *e)
{
    const struct request *req = call->req;
    json_t *messages = json_array();
    int failed = messages == NULL;
    if (!failed && req->system)
        failed = openai_append(messages, "system", req->system, req->system_len) < 0;
    for (size_t i = 0; !failed && i < req->nmessages; i++)
        failed = openai_append(messages, request_role_name(req->messages[i].role),
                               req->messages[i].content, req->messages[i].content_len) < 0;
    if (failed) {
        json_decref(messages);
        return err_set(e, ERR_FATAL, "oom", "out of memory building the request");
    }
    /* max_tokens by default: every compatible server (vLLM, Ollama,
     * llama.cpp) understands it; OpenAI's reasoning (o-series) models refuse
     * it and need max_completion_tokens (worker.yaml's max_tokens_field) */
    json_t *body = json_pack("{s:s, s:o, s:I, s:b}", "model", call->model, "messages", messages,
                             call->max_tokens_field ? call->max_tokens_field : "max_tokens",
                             (json_int_t)call->max_tokens, "stream", 0);
    if (body && req->has_temperature &&
        json_object_set_new(body, "temperature", json_real(req->temperature)) < 0) {
        json_decref(body);
        body = NULL;
    }
    /* a local server (Ollama, llama.cpp) may need no key: no header then,
     * rather than "Bearer " with nothing after it */
    char *auth = NULL;
    if (call->api_key && *call->api_key) {
        size_t n = strlen(call->api_key) + sizeof "Bearer ";
        if ((auth = malloc(n)))
            snprintf(auth, n, "Bearer %s", call->api_key);
    }
    int rc = adapter_body(out, body); /* takes body */
    if (rc == 0)
        rc = adapter_url(out, call->base_url, "/chat/completions");
    if (rc == 0 && call->api_key && *call->api_key)
        rc = auth ? adapter_header(out, "Authorization", auth) : -1;
    if (rc == 0)
        rc = adapter_header(out, "Content-Type", "application/json");
    if (auth) {
        memset(auth, 0, strlen(auth)); /* no stray copy of the key in freed memory */
        free(auth);
    }
    if (rc < 0) {
        provider_http_release(out);
        return err_set(e, ERR_FATAL, "oom", "out of memory building the request");
    }
    return 0;
}

static enum provider_finish openai_finish(const char *reason)
{
    if (!reason)
        return PROVIDER_FINISH_OTHER;
    if (strcmp(reason, "stop") == 0)
        return PROVIDER_FINISH_STOP;
    if (strcmp(reason, "length") == 0)
        return PROVIDER_FINISH_LENGTH;
    if (strcmp(reason, "content_filter") == 0)
        return PROVIDER_FINISH_CONTENT_FILTER;
    /* function_call: the legacy name of tool_calls */
    if (strcmp(reason, "tool_calls") == 0 || strcmp(reason, "function_call") == 0)
        return PROVIDER_FINISH_TOOL_CALLS;
    return PROVIDER_FINISH_OTHER;
}

static int openai_malformed(json_t *root, struct err *e, const char *why)
{
    json_decref(root);
    /* The provider may have billed this call, but we cannot know for what:
     * we must never invent a cost (nor price a guess), so the reply is not
     * an answer. ERR_TRANSIENT: a retry gets a reply we can account for. */
    return err_set(e, ERR_TRANSIENT, "malformed_reply", "reply not understood: %s", why);
}

/* A total: present, and a non-negative integer (null is not a count). */
static int openai_total(const json_t *usage, const char *key, uint64_t *out)
{
    return json_is_integer(json_object_get(usage, key)) ? adapter_count(usage, key, out) : -1;
}

/* A count inside an optional details object: absent or null mean 0 (vLLM,
 * Ollama and older OpenAI replies have no details). */
static int openai_detail(const json_t *usage, const char *details, const char *key, uint64_t *out)
{
    const json_t *d = json_object_get(usage, details);
    if (d && !json_is_null(d) && !json_is_object(d))
        return -1;
    return adapter_count(d, key, out);
}

/* {"error":{"message","type","code"}}; vLLM sends {"object":"error",
 * "message",...} and Ollama {"error":"..."}: take the message wherever it is. */
static int openai_error(long status, json_t *root, const char *body, size_t len, struct err *e)
{
    const json_t *error = json_object_get(root, "error");
    const json_t *m = json_is_string(error) ? error : json_object_get(error, "message");
    if (!json_is_string(m))
        m = json_object_get(root, "message");
    const char *msg = json_string_value(m);
    size_t msg_len = msg ? json_string_length(m) : 0;
    if (!msg && !root && len > 0) { /* an HTML page from a proxy, say: quote its start */
        msg = body;
        msg_len = len;
    }
    const char *code = json_string_value(json_object_get(error, "code"));
    const char *type = json_string_value(json_object_get(error, "type"));
    int quota = (code && strcmp(code, "insufficient_quota") == 0) ||
                (type && strcmp(type, "insufficient_quota") == 0);
    int rc = adapter_status_error(status, status == 429 && quota ? "quota_exhausted" : NULL, msg,
                                  msg_len, e);
    /* a 429 for an exhausted quota or billing limit: retrying cannot help */
    if (status == 429 && quota && e)
        e->kind = ERR_UPSTREAM;
    json_decref(root);
    return rc;
}

static int openai_parse(long status, const char *body, size_t len, struct provider_reply *out,
                        struct err *e)
{
    /* JSON_ALLOW_NUL: a model may emit U+0000, and the text keeps it */
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
    if (status < 200 || status > 299)
        return openai_error(status, root, body, len, e);
    if (!json_is_object(root))
        return openai_malformed(root, e, "not a JSON object");
    const json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    const json_t *message = json_object_get(choice, "message");
    const json_t *content = json_object_get(message, "content");
    const json_t *refusal = json_object_get(message, "refusal");
    const json_t *usage = json_object_get(root, "usage");
    if (!json_is_object(message))
        return openai_malformed(root, e, "no choices[0].message");
    if (content && !json_is_null(content) && !json_is_string(content))
        return openai_malformed(root, e, "choices[0].message.content is not a string");
    if (!json_is_object(usage))
        return openai_malformed(root, e, "no usage");
    uint64_t prompt, completion, cached, reasoning;
    if (openai_total(usage, "prompt_tokens", &prompt) < 0 ||
        openai_total(usage, "completion_tokens", &completion) < 0 ||
        openai_detail(usage, "prompt_tokens_details", "cached_tokens", &cached) < 0 ||
        openai_detail(usage, "completion_tokens_details", "reasoning_tokens", &reasoning) < 0)
        return openai_malformed(root, e, "usage counts missing or not non-negative integers");
    /* the parts cannot exceed their totals: a subtraction would wrap, and
     * any clamp would be a cost we made up */
    if (cached > prompt || reasoning > completion)
        return openai_malformed(root, e, "cached or reasoning tokens exceed their totals");
    out->finish = openai_finish(json_string_value(json_object_get(choice, "finish_reason")));
    const char *text = "";
    size_t text_len = 0;
    if (json_is_string(content)) {
        text = json_string_value(content);
        text_len = json_string_length(content);
    } else if (json_is_string(refusal)) {
        /* content null, refusal set: the model declined; say so */
        text = json_string_value(refusal);
        text_len = json_string_length(refusal);
        out->finish = PROVIDER_FINISH_CONTENT_FILTER;
    }
    const char *model = json_string_value(json_object_get(root, "model"));
    if (adapter_text(out, text, text_len) < 0 || (model && !(out->model = strdup(model)))) {
        provider_reply_release(out);
        json_decref(root);
        return err_set(e, ERR_FATAL, "oom", "out of memory");
    }
    out->usage.tokens[COST_INPUT] = prompt - cached;
    out->usage.tokens[COST_CACHE_READ] = cached;
    out->usage.tokens[COST_CACHE_WRITE] = 0; /* OpenAI does not bill cache writes */
    out->usage.tokens[COST_OUTPUT] = completion - reasoning;
    out->usage.tokens[COST_REASONING] = reasoning;
    json_decref(root);
    return 0;
}

const struct provider_ops openai_ops = {"openai", openai_build, openai_parse};

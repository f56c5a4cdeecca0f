/*
 * openai: Chat Completions, which OpenAI, vLLM, Ollama, llama.cpp and most
 * gateways speak. Usage rule (DESIGN 6): cached tokens are INSIDE
 * prompt_tokens and reasoning tokens INSIDE completion_tokens; both are
 * taken out so that the categories are disjoint before any price applies.
 */
#include <stdio.h>
#include <string.h>

#include "providers/adapter.h"

static int openai_build(const struct provider_call *call, struct provider_http *out,
                        struct err *e)
{
    const struct request *req = call->req;
    json_t *messages = json_array();
    if (req->system)
        json_array_append_new(messages,
                              json_pack("{s:s, s:s%}", "role", "system", "content",
                                        req->system, req->system_len));
    for (size_t i = 0; i < req->nmessages; i++)
        json_array_append_new(messages,
                              json_pack("{s:s, s:s%}", "role",
                                        request_role_name(req->messages[i].role), "content",
                                        req->messages[i].content,
                                        req->messages[i].content_len));
    /* max_tokens, not max_completion_tokens: every OpenAI-compatible server
     * understands it */
    json_t *body = json_pack("{s:s, s:o, s:i, s:b}", "model", call->model, "messages",
                             messages, "max_tokens", (int)call->max_tokens, "stream", 0);
    if (body && req->has_temperature)
        json_object_set_new(body, "temperature", json_real(req->temperature));
    char auth[600];
    snprintf(auth, sizeof auth, "Bearer %s", call->api_key);
    if (adapter_body(out, body) < 0 || adapter_url(out, call->base_url, "/chat/completions") < 0 ||
        adapter_header(out, "Authorization", auth) < 0 ||
        adapter_header(out, "Content-Type", "application/json") < 0) {
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
    if (strcmp(reason, "tool_calls") == 0 || strcmp(reason, "function_call") == 0)
        return PROVIDER_FINISH_TOOL_CALLS;
    return PROVIDER_FINISH_OTHER;
}

static int openai_malformed(json_t *root, struct err *e, const char *why)
{
    json_decref(root);
    /* the provider may have billed this call, but we cannot know what for:
     * never invent a cost; a retry gets a reply we can account for */
    return err_set(e, ERR_TRANSIENT, "malformed_reply", "reply not understood: %s", why);
}

static int openai_parse(long status, const char *body, size_t len, struct provider_reply *out,
                        struct err *e)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    if (status < 200 || status > 299) {
        const json_t *error = json_object_get(root, "error");
        const char *msg = json_string_value(json_object_get(error, "message"));
        const char *code = json_string_value(json_object_get(error, "code"));
        int rc;
        if (status == 429 && code && strcmp(code, "insufficient_quota") == 0)
            rc = err_set(e, ERR_UPSTREAM, "quota_exhausted", "HTTP 429: %.200s",
                         msg ? msg : "quota exhausted");
        else
            rc = adapter_status_error(status, NULL, msg, e);
        json_decref(root);
        return rc;
    }
    if (!json_is_object(root))
        return openai_malformed(root, e, "not a JSON object");
    const json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    const json_t *message = json_object_get(choice, "message");
    const json_t *content = json_object_get(message, "content");
    const json_t *refusal = json_object_get(message, "refusal");
    const json_t *usage = json_object_get(root, "usage");
    if (!json_is_object(message) || !json_is_object(usage))
        return openai_malformed(root, e, "no choices[0].message or no usage");
    uint64_t prompt, completion, cached, reasoning;
    if (adapter_count(usage, "prompt_tokens", &prompt) < 0 ||
        adapter_count(usage, "completion_tokens", &completion) < 0 ||
        adapter_count(json_object_get(usage, "prompt_tokens_details"), "cached_tokens",
                      &cached) < 0 ||
        adapter_count(json_object_get(usage, "completion_tokens_details"), "reasoning_tokens",
                      &reasoning) < 0 ||
        !json_object_get(usage, "prompt_tokens") ||
        !json_object_get(usage, "completion_tokens"))
        return openai_malformed(root, e, "usage counts missing or not integers");
    if (cached > prompt || reasoning > completion)
        return openai_malformed(root, e, "cached or reasoning tokens exceed their totals");
    out->finish = openai_finish(json_string_value(json_object_get(choice, "finish_reason")));
    const char *text = "";
    size_t text_len = 0;
    if (json_is_string(content)) {
        text = json_string_value(content);
        text_len = json_string_length(content);
    } else if (json_is_string(refusal)) {
        text = json_string_value(refusal);
        text_len = json_string_length(refusal);
        out->finish = PROVIDER_FINISH_CONTENT_FILTER;
    }
    if (adapter_text(out, text, text_len) < 0) {
        json_decref(root);
        return err_set(e, ERR_FATAL, "oom", "out of memory");
    }
    out->usage.tokens[COST_INPUT] = prompt - cached;
    out->usage.tokens[COST_CACHE_READ] = cached;
    out->usage.tokens[COST_CACHE_WRITE] = 0;
    out->usage.tokens[COST_OUTPUT] = completion - reasoning;
    out->usage.tokens[COST_REASONING] = reasoning;
    const char *model = json_string_value(json_object_get(root, "model"));
    out->model = model ? strdup(model) : NULL;
    json_decref(root);
    return 0;
}

const struct provider_ops openai_ops = {"openai", openai_build, openai_parse};

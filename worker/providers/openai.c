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
#include "providers/jscan.h"

static const char *openai_role(enum request_role role)
{
    switch (role) {
    case REQUEST_SYSTEM:
        return "system";
    case REQUEST_ASSISTANT:
        return "assistant";
    case REQUEST_TOOL:
        return "tool";
    case REQUEST_USER:
        break;
    }
    return "user";
}

/* An image given as bytes travels as a data: URL: Chat Completions has no
 * other form for it. */
static void openai_image(struct jsonw *w, const struct request_part *part)
{
    jsonw_object_open(w);
    jsonw_kstring(w, "type", "image_url");
    jsonw_key(w, "image_url");
    jsonw_object_open(w);
    jsonw_key(w, "url");
    if (part->type == REQUEST_PART_IMAGE_URL) {
        jsonw_string_n(w, part->text, part->text_len);
    } else {
        size_t mlen = strlen(part->media_type), n = 5 + mlen + 8 + part->text_len;
        char *url = malloc(n);
        if (url) {
            memcpy(url, "data:", 5);
            memcpy(url + 5, part->media_type, mlen);
            memcpy(url + 5 + mlen, ";base64,", 8);
            memcpy(url + 13 + mlen, part->text, part->text_len);
            jsonw_string_n(w, url, n);
            free(url);
        } else {
            jsonw_fail(w, JSONW_NOMEM);
        }
    }
    jsonw_object_close(w);
    jsonw_object_close(w);
}

/* Arguments travel as a JSON string (the API's shape), compact: dumped
 * once into scratch (reused from call to call), then written as the
 * string. */
static void openai_tool_calls(struct jsonw *w, const struct request_message *m,
                              struct jsonw *scratch)
{
    jsonw_array_open(w);
    for (size_t i = 0; i < m->ntool_calls; i++) {
        const struct request_tool_call *c = &m->tool_calls[i];
        struct jsonw_mark empty = jsonw_mark(scratch);
        jsonw_json(scratch, c->arguments);
        jsonw_object_open(w);
        jsonw_kstring(w, "id", c->id);
        jsonw_kstring(w, "type", "function");
        jsonw_key(w, "function");
        jsonw_object_open(w);
        jsonw_kstring(w, "name", c->name);
        jsonw_key(w, "arguments");
        if (scratch->error == JSONW_OK) {
            jsonw_string_n(w, scratch->buf, scratch->len);
            jsonw_rewind(scratch, empty);
        } else {
            jsonw_fail(w, scratch->error);
        }
        jsonw_object_close(w);
        jsonw_object_close(w);
    }
    jsonw_array_close(w);
}

/* A string stays a string (what every compatible server reads); parts
 * become Chat Completions parts; no content (an assistant turn that only
 * calls tools) writes no "content". */
static void openai_message(struct jsonw *w, const struct request_message *m, struct jsonw *scratch)
{
    jsonw_object_open(w);
    jsonw_kstring(w, "role", openai_role(m->role));
    if (m->content) {
        jsonw_key(w, "content");
        jsonw_string_n(w, m->content, m->content_len);
    } else if (m->nparts > 0) {
        jsonw_key(w, "content");
        jsonw_array_open(w);
        adapter_w_parts(w, m, openai_image);
        jsonw_array_close(w);
    }
    if (m->role == REQUEST_ASSISTANT && m->ntool_calls > 0) {
        jsonw_key(w, "tool_calls");
        openai_tool_calls(w, m, scratch);
    }
    if (m->role == REQUEST_TOOL)
        jsonw_kstring(w, "tool_call_id", m->tool_call_id);
    jsonw_object_close(w);
}

static void openai_tools(struct jsonw *w, const struct request *req)
{
    jsonw_array_open(w);
    for (size_t i = 0; i < req->ntools; i++) {
        const struct request_tool *t = &req->tools[i];
        jsonw_object_open(w);
        jsonw_kstring(w, "type", "function");
        jsonw_key(w, "function");
        jsonw_object_open(w);
        jsonw_kstring(w, "name", t->name);
        if (t->description)
            jsonw_kstring(w, "description", t->description);
        /* no parameters: the API reads that as a function of no arguments */
        if (t->parameters) {
            jsonw_key(w, "parameters");
            jsonw_json(w, t->parameters);
        }
        jsonw_object_close(w);
        jsonw_object_close(w);
    }
    jsonw_array_close(w);
}

static void openai_response_format(struct jsonw *w, const struct request *req)
{
    jsonw_object_open(w);
    if (req->format == REQUEST_FORMAT_JSON) {
        jsonw_kstring(w, "type", "json_object");
    } else {
        jsonw_kstring(w, "type", "json_schema");
        jsonw_key(w, "json_schema");
        jsonw_object_open(w);
        jsonw_kstring(w, "name", req->schema_name);
        jsonw_key(w, "schema");
        jsonw_json(w, req->schema);
        if (req->schema_description)
            jsonw_kstring(w, "description", req->schema_description);
        if (req->schema_strict)
            jsonw_kbool(w, "strict", 1);
        jsonw_object_close(w);
    }
    jsonw_object_close(w);
}

static void openai_tool_choice(struct jsonw *w, const struct request *req)
{
    switch (req->tool_choice) {
    case REQUEST_TOOL_CHOICE_NONE:
        jsonw_string(w, "none");
        return;
    case REQUEST_TOOL_CHOICE_REQUIRED:
        jsonw_string(w, "required");
        return;
    case REQUEST_TOOL_CHOICE_NAMED:
        jsonw_object_open(w);
        jsonw_kstring(w, "type", "function");
        jsonw_key(w, "function");
        jsonw_object_open(w);
        jsonw_kstring(w, "name", req->tool_choice_name);
        jsonw_object_close(w);
        jsonw_object_close(w);
        return;
    case REQUEST_TOOL_CHOICE_AUTO:
        break;
    }
    jsonw_string(w, "auto");
}

static const char *openai_effort(enum request_effort effort)
{
    return effort == REQUEST_EFFORT_LOW      ? "low"
           : effort == REQUEST_EFFORT_MEDIUM ? "medium"
                                             : "high";
}

/* The keys come in the order the jansson tree this replaced dumped them
 * (its insertion order): messages, the cap, stream, model, sampling,
 * seed, response_format, tools, tool_choice, reasoning_effort. */
int openai_chat_body(const struct provider_call *call, int with_model, struct provider_http *out,
                     struct err *e)
{
    const struct request *req = call->req;
    struct jsonw w, scratch;
    adapter_body_init(&w, req);
    jsonw_init(&scratch, 256, ADAPTER_BODY_MAX);
    jsonw_object_open(&w);
    jsonw_key(&w, "messages");
    jsonw_array_open(&w);
    if (req->system) {
        jsonw_object_open(&w);
        jsonw_kstring(&w, "role", "system");
        jsonw_key(&w, "content");
        jsonw_string_n(&w, req->system, req->system_len);
        jsonw_object_close(&w);
    }
    for (size_t i = 0; i < req->nmessages; i++)
        openai_message(&w, &req->messages[i], &scratch);
    jsonw_array_close(&w);
    jsonw_release(&scratch);
    int reasoning = req->reasoning_effort != REQUEST_EFFORT_NONE;
    /* max_tokens by default: every compatible server (vLLM, Ollama,
     * llama.cpp) understands it; OpenAI's reasoning (o-series) models refuse
     * it and need max_completion_tokens (worker.yaml's max_tokens_field),
     * which a request asking for reasoning therefore always gets */
    const char *cap = reasoning                ? "max_completion_tokens"
                      : call->max_tokens_field ? call->max_tokens_field
                                               : "max_tokens";
    jsonw_kuint(&w, cap, call->max_tokens);
    jsonw_kbool(&w, "stream", 0);
    if (with_model)
        jsonw_kstring(&w, "model", call->model);
    adapter_w_sampling(&w, req, "top_p", "stop");
    if (req->has_seed)
        jsonw_kint(&w, "seed", req->seed);
    if (req->format != REQUEST_FORMAT_TEXT) {
        jsonw_key(&w, "response_format");
        openai_response_format(&w, req);
    }
    if (req->ntools > 0) {
        jsonw_key(&w, "tools");
        openai_tools(&w, req);
    }
    /* "auto" is the default with tools: left out, since some compatible
     * servers (vLLM) refuse an explicit "auto" unless started for it */
    if (req->ntools > 0 && req->tool_choice != REQUEST_TOOL_CHOICE_AUTO) {
        jsonw_key(&w, "tool_choice");
        openai_tool_choice(&w, req);
    }
    if (reasoning)
        jsonw_kstring(&w, "reasoning_effort", openai_effort(req->reasoning_effort));
    jsonw_object_close(&w);
    if (adapter_body_finish(out, &w) < 0)
        return err_set(e, ERR_FATAL, "oom", "out of memory building the request");
    return 0;
}

static int openai_build(const struct provider_call *call, struct provider_http *out, struct err *e)
{
    if (openai_chat_body(call, 1, out, e) < 0)
        return -1;
    /* a local server (Ollama, llama.cpp) may need no key: no header then,
     * rather than "Bearer " with nothing after it */
    char *auth = NULL;
    if (call->api_key && *call->api_key) {
        size_t n = strlen(call->api_key) + sizeof "Bearer ";
        if ((auth = malloc(n)))
            snprintf(auth, n, "Bearer %s", call->api_key);
    }
    int rc = adapter_url(out, call->base_url, "/chat/completions");
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

/* reason[0..len): NULL for none. */
static enum provider_finish openai_finish(const char *reason, size_t len)
{
#define OPENAI_IS(word) (len == sizeof(word) - 1 && memcmp(reason, word, len) == 0)
    if (!reason)
        return PROVIDER_FINISH_OTHER;
    if (OPENAI_IS("stop"))
        return PROVIDER_FINISH_STOP;
    if (OPENAI_IS("length"))
        return PROVIDER_FINISH_LENGTH;
    if (OPENAI_IS("content_filter"))
        return PROVIDER_FINISH_CONTENT_FILTER;
    /* function_call: the legacy name of tool_calls */
    if (OPENAI_IS("tool_calls") || OPENAI_IS("function_call"))
        return PROVIDER_FINISH_TOOL_CALLS;
    return PROVIDER_FINISH_OTHER;
#undef OPENAI_IS
}

static int openai_malformed(json_t *root, struct err *e, const char *why)
{
    json_decref(root);
    /* The provider may have billed this call, but we cannot know for what:
     * we must never invent a cost (nor price a guess), so the reply is not
     * an answer. ERR_TRANSIENT: a retry gets a reply we can account for. */
    return err_set(e, ERR_TRANSIENT, "malformed_reply", "reply not understood: %s", why);
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
    size_t msg_len;
    const char *msg = adapter_error_message(m, root, body, len, &msg_len);
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

/* message.tool_calls -> provider_reply.tool_calls. Arguments come as a
 * JSON string; a compatible server that sends the object itself is taken
 * at its word. NULL with *why set when a call is not understood. */
static json_t *openai_reply_calls(const json_t *list, const char **why)
{
    json_t *calls = json_array();
    size_t i;
    const json_t *c;
    json_array_foreach(list, i, c)
    {
        const json_t *fn = json_object_get(c, "function");
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        const json_t *a = json_object_get(fn, "arguments");
        const char *type = json_string_value(json_object_get(c, "type"));
        if (!id || !name || (type && strcmp(type, "function") != 0)) {
            *why = "a tool call without id, function name, or of a type other than function";
            goto bad;
        }
        json_t *args = json_is_string(a) ? json_loadb(json_string_value(a), json_string_length(a),
                                                      JSON_ALLOW_NUL, NULL)
                                         : json_incref((json_t *)a);
        if (!json_is_object(args)) {
            json_decref(args);
            *why = "a tool call's arguments are not a JSON object";
            goto bad;
        }
        int rc = adapter_tool_call(calls, id, name, args);
        json_decref(args);
        if (rc < 0) {
            *why = "out of memory";
            goto bad;
        }
    }
    return calls;
bad:
    json_decref(calls);
    return NULL;
}

int openai_chat_parse_tree(long status, const char *body, size_t len, struct provider_reply *out,
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
    if (adapter_total(usage, "prompt_tokens", &prompt) < 0 ||
        adapter_total(usage, "completion_tokens", &completion) < 0 ||
        openai_detail(usage, "prompt_tokens_details", "cached_tokens", &cached) < 0 ||
        openai_detail(usage, "completion_tokens_details", "reasoning_tokens", &reasoning) < 0)
        return openai_malformed(root, e, "usage counts missing or not non-negative integers");
    /* the parts cannot exceed their totals: a subtraction would wrap, and
     * any clamp would be a cost we made up */
    if (cached > prompt || reasoning > completion)
        return openai_malformed(root, e, "cached or reasoning tokens exceed their totals");
    const json_t *tool_calls = json_object_get(message, "tool_calls");
    json_t *calls = NULL;
    if (tool_calls && !json_is_null(tool_calls) && !json_is_array(tool_calls))
        return openai_malformed(root, e, "choices[0].message.tool_calls is not an array");
    if (json_array_size(tool_calls) > 0) {
        const char *why = "";
        if (!(calls = openai_reply_calls(tool_calls, &why)))
            return openai_malformed(root, e, why);
    }
    out->tool_calls = calls;
    /* strlen: a reason is compared as jansson's NUL-terminated value */
    const char *reason = json_string_value(json_object_get(choice, "finish_reason"));
    out->finish = openai_finish(reason, reason ? strlen(reason) : 0);
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

/* --- the reply read in place (jscan): what openai_chat_parse_tree reads
 * from a usable reply, without a tree. Anything it is not sure of (a
 * reply that the tree would refuse, tool calls, an escape it leaves to
 * jansson) is declined, and the tree reads the reply. --- */

struct openai_fields {
    struct jscan_str content, refusal, finish, model;
    int content_string, refusal_string, finish_string, model_string;
    int message, usage, prompt_seen, completion_seen;
    int64_t prompt, completion, cached, reasoning;
};

/* The key k[0..n) is word (a literal); a second time is declined: jansson
 * keeps the last of duplicate keys, and the reader would have read the
 * first. */
static int openai_key(const char *k, size_t n, const char *word, size_t wlen, unsigned bit,
                      unsigned *seen, int *dup)
{
    if (n != wlen || memcmp(k, word, n) != 0)
        return 0;
    if (*seen & bit)
        *dup = 1;
    *seen |= bit;
    return 1;
}
#define OPENAI_KEY(word, bit) openai_key(k, n, word, sizeof(word) - 1, bit, &seen, &dup)

/* A count as adapter_count reads it: null (when nullable) is 0, else an
 * integer from 0 to COST_MAX_TOKENS. */
static int openai_fast_count(struct jscan *s, int nullable, int64_t *v)
{
    int type = jscan_peek(s);
    if (type == JSCAN_NULL && nullable) {
        *v = 0;
        return jscan_skip(s);
    }
    if (type != JSCAN_INTEGER || jscan_integer(s, v) < 0 || *v < 0 ||
        (uint64_t)*v > COST_MAX_TOKENS)
        return -1;
    return 0;
}

/* A details object (null: none), and its count named want. */
static int openai_fast_details(struct jscan *s, const char *want, size_t wlen, int64_t *v)
{
    int type = jscan_peek(s), rc, dup = 0;
    unsigned seen = 0;
    const char *k;
    size_t n;
    *v = 0;
    if (type == JSCAN_NULL)
        return jscan_skip(s);
    if (type != JSCAN_OBJECT || jscan_enter(s, '{') < 0)
        return -1;
    while ((rc = jscan_member(s, &k, &n)) == 1) {
        if (openai_key(k, n, want, wlen, 1, &seen, &dup))
            rc = dup ? -1 : openai_fast_count(s, 1, v);
        else
            rc = jscan_skip(s);
        if (rc < 0)
            return -1;
    }
    return rc;
}

static int openai_fast_usage(struct jscan *s, struct openai_fields *f)
{
    unsigned seen = 0;
    int dup = 0, rc;
    const char *k;
    size_t n;
    if (jscan_peek(s) != JSCAN_OBJECT || jscan_enter(s, '{') < 0)
        return -1;
    f->usage = 1;
    while ((rc = jscan_member(s, &k, &n)) == 1) {
        if (OPENAI_KEY("prompt_tokens", 1))
            rc = openai_fast_count(s, 0, &f->prompt), f->prompt_seen = 1;
        else if (OPENAI_KEY("completion_tokens", 2))
            rc = openai_fast_count(s, 0, &f->completion), f->completion_seen = 1;
        else if (OPENAI_KEY("prompt_tokens_details", 4))
            rc = openai_fast_details(s, "cached_tokens", 13, &f->cached);
        else if (OPENAI_KEY("completion_tokens_details", 8))
            rc = openai_fast_details(s, "reasoning_tokens", 16, &f->reasoning);
        else
            rc = jscan_skip(s);
        if (rc < 0 || dup)
            return -1;
    }
    return rc;
}

static int openai_fast_message(struct jscan *s, struct openai_fields *f)
{
    unsigned seen = 0;
    int dup = 0, rc;
    const char *k;
    size_t n;
    if (jscan_peek(s) != JSCAN_OBJECT || jscan_enter(s, '{') < 0)
        return -1;
    f->message = 1;
    while ((rc = jscan_member(s, &k, &n)) == 1) {
        int type = jscan_peek(s);
        if (OPENAI_KEY("content", 1)) {
            f->content_string = type == JSCAN_STRING;
            rc = f->content_string    ? jscan_string(s, &f->content)
                 : type == JSCAN_NULL ? jscan_skip(s)
                                      : -1;
        } else if (OPENAI_KEY("refusal", 2)) {
            f->refusal_string = type == JSCAN_STRING;
            rc = f->refusal_string ? jscan_string(s, &f->refusal) : jscan_skip(s);
        } else if (OPENAI_KEY("tool_calls", 4)) {
            /* calls are the tree's: only none, or an empty list, here */
            rc = type == JSCAN_NULL ? jscan_skip(s)
                 : type == JSCAN_ARRAY && jscan_enter(s, '[') == 0
                     ? (jscan_element(s) == 0 ? 0 : -1)
                     : -1;
        } else {
            rc = jscan_skip(s);
        }
        if (rc < 0 || dup)
            return -1;
    }
    return rc;
}

static int openai_fast_choice(struct jscan *s, struct openai_fields *f)
{
    unsigned seen = 0;
    int dup = 0, rc;
    const char *k;
    size_t n;
    if (jscan_peek(s) != JSCAN_OBJECT || jscan_enter(s, '{') < 0)
        return -1;
    while ((rc = jscan_member(s, &k, &n)) == 1) {
        if (OPENAI_KEY("message", 1)) {
            rc = openai_fast_message(s, f);
        } else if (OPENAI_KEY("finish_reason", 2)) {
            f->finish_string = jscan_peek(s) == JSCAN_STRING;
            rc = f->finish_string ? jscan_string(s, &f->finish) : jscan_skip(s);
            if (f->finish_string && f->finish.escaped)
                rc = -1; /* compared as it stands: an escape is the tree's */
        } else {
            rc = jscan_skip(s);
        }
        if (rc < 0 || dup)
            return -1;
    }
    return rc;
}

/* The choices: the first read, the rest skipped. */
static int openai_fast_choices(struct jscan *s, struct openai_fields *f)
{
    int rc;
    if (jscan_peek(s) != JSCAN_ARRAY || jscan_enter(s, '[') < 0 || jscan_element(s) != 1 ||
        openai_fast_choice(s, f) < 0)
        return -1;
    while ((rc = jscan_element(s)) == 1)
        if (jscan_skip(s) < 0)
            return -1;
    return rc;
}

/* 0 with the fields of a reply the tree would read as an answer; -1
 * (declined) otherwise. */
static int openai_fast_read(const char *body, size_t len, struct openai_fields *f)
{
    struct jscan s;
    unsigned seen = 0;
    int dup = 0, rc;
    const char *k;
    size_t n;
    jscan_init(&s, body, len);
    if (jscan_peek(&s) != JSCAN_OBJECT || jscan_enter(&s, '{') < 0)
        return -1;
    while ((rc = jscan_member(&s, &k, &n)) == 1) {
        if (OPENAI_KEY("choices", 1)) {
            rc = openai_fast_choices(&s, f);
        } else if (OPENAI_KEY("usage", 2)) {
            rc = openai_fast_usage(&s, f);
        } else if (OPENAI_KEY("model", 4)) {
            f->model_string = jscan_peek(&s) == JSCAN_STRING;
            rc = f->model_string ? jscan_string(&s, &f->model) : jscan_skip(&s);
        } else {
            rc = jscan_skip(&s);
        }
        if (rc < 0 || dup)
            return -1;
    }
    if (rc < 0 || jscan_finish(&s) < 0)
        return -1;
    /* what the tree would refuse as malformed: it says so, not this */
    if (!f->message || !f->usage || !f->prompt_seen || !f->completion_seen ||
        f->cached > f->prompt || f->reasoning > f->completion)
        return -1;
    return 0;
}
#undef OPENAI_KEY

/* A copy of a string read in place, its escapes undone. */
static char *openai_fast_copy(const struct jscan_str *str, size_t *len)
{
    char *out = malloc(str->len + 1);
    if (out)
        *len = jscan_unescape(str, out);
    return out;
}

int openai_chat_read(const char *body, size_t len, struct provider_reply *out, struct err *e)
{
    struct openai_fields f = {0};
    if (openai_fast_read(body, len, &f) < 0)
        return 1;
    out->finish = openai_finish(f.finish_string ? f.finish.s : NULL, f.finish.len);
    static const struct jscan_str empty = {"", 0, 0};
    const struct jscan_str *text = &empty;
    if (f.content_string) {
        text = &f.content;
    } else if (f.refusal_string) {
        /* content null, refusal set: the model declined; say so */
        text = &f.refusal;
        out->finish = PROVIDER_FINISH_CONTENT_FILTER;
    }
    size_t model_len;
    out->text = openai_fast_copy(text, &out->text_len);
    if (!out->text || (f.model_string && !(out->model = openai_fast_copy(&f.model, &model_len)))) {
        provider_reply_release(out);
        return err_set(e, ERR_FATAL, "oom", "out of memory");
    }
    out->usage.tokens[COST_INPUT] = (uint64_t)(f.prompt - f.cached);
    out->usage.tokens[COST_CACHE_READ] = (uint64_t)f.cached;
    out->usage.tokens[COST_CACHE_WRITE] = 0; /* OpenAI does not bill cache writes */
    out->usage.tokens[COST_OUTPUT] = (uint64_t)(f.completion - f.reasoning);
    out->usage.tokens[COST_REASONING] = (uint64_t)f.reasoning;
    return 0;
}

int openai_chat_parse(long status, const char *body, size_t len, struct provider_reply *out,
                      struct err *e)
{
    if (status >= 200 && status <= 299) {
        int rc = openai_chat_read(body, len, out, e);
        if (rc <= 0)
            return rc;
    }
    return openai_chat_parse_tree(status, body, len, out, e);
}

const struct provider_ops openai_ops = {"openai", openai_build, openai_chat_parse, NULL};

/*
 * gemini: Google's Gemini API, generateContent (v1beta). Usage rule
 * (DESIGN 6): promptTokenCount INCLUDES cachedContentTokenCount, and
 * thoughtsTokenCount is reported APART from candidatesTokenCount; both are
 * normalized into disjoint categories before any price applies. The key
 * travels in the x-goog-api-key header, never as ?key= in the URL: URLs
 * end up in logs. Pure: builds bytes and reads bytes, never touches the
 * network, never quotes the key.
 *
 * What each rule relies on (Google's documentation, checked for issue 10):
 *  [api]  ai.google.dev/api ("Authentication"): every request carries the
 *         x-goog-api-key header; POST {base}/v1beta/models/{model}:generateContent.
 *  [ref]  the v1beta reference, ai.google.dev/api/generate-content, as the
 *         generated clients mirror it (google-genai, generativelanguage_v1beta):
 *         GenerationConfig (maxOutputTokens, temperature, topP, stopSequences,
 *         seed, responseMimeType, responseJsonSchema: "an alternative to
 *         responseSchema that accepts JSON Schema"; responseSchema takes an
 *         OpenAPI 3.0 subset, so a request's JSON Schema goes to
 *         responseJsonSchema), ThinkingConfig.thinkingBudget,
 *         FunctionDeclaration.parametersJsonSchema ("the parameters to the
 *         function in JSON Schema format ... mutually exclusive with
 *         parameters", which again takes the OpenAPI subset),
 *         FunctionCallingConfig (mode AUTO|ANY|NONE; allowedFunctionNames
 *         "only when the mode is ANY"), FunctionResponse.response ("use
 *         'output' key to specify function output"), UsageMetadata
 *         (promptTokenCount: "when cachedContent is set, this is still the
 *         total effective prompt size meaning this includes the number of
 *         tokens in the cached content"; thoughtsTokenCount; toolUsePrompt-
 *         TokenCount), Candidate.FinishReason, PromptFeedback.BlockReason
 *         ("if set, the prompt was blocked and no candidates are returned").
 *  [err]  ai.google.dev/gemini-api/docs/troubleshooting: 400 INVALID_ARGUMENT,
 *         400 FAILED_PRECONDITION, 403 PERMISSION_DENIED, 404 NOT_FOUND,
 *         429 RESOURCE_EXHAUSTED, 500 INTERNAL, 503 UNAVAILABLE,
 *         504 DEADLINE_EXCEEDED; the body is google.rpc.Status
 *         ({"error":{"code","message","status","details"}}).
 * Replies are proto3 JSON: a count that is 0 is left out, so an absent
 * count means 0 (a reply whose thoughts ate maxOutputTokens has no
 * candidatesTokenCount at all).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/adapter.h"

#define GEMINI_MODEL_MAX 128 /* bytes of a model id put in the URL path */

/* A model id goes into the URL path: only what Google's ids are made of
 * ("gemini-2.5-flash", "gemini-2.0-flash-001"), so that nothing in it can
 * change the path or the query. A leading "models/" (the resource name
 * the API itself reports) is accepted and dropped. */
static const char *gemini_model_id(const char *model)
{
    if (!model)
        return NULL;
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    size_t n = strlen(model);
    if (n == 0 || n > GEMINI_MODEL_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = model[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return NULL;
    }
    return model;
}

static json_t *gemini_text(const char *text, size_t len)
{
    /* s% takes a length: text may hold NUL bytes */
    return json_pack("{s:s%}", "text", text, len);
}

#define GEMINI_OOM(e) err_set(e, ERR_FATAL, "oom", "out of memory building the request")

/* Appends m's parts to parts: text, images as inlineData (Gemini takes no
 * image URL; a data: URL is its bytes). -1 with e set. */
static int gemini_content_parts(const struct request_message *m, json_t *parts, struct err *e)
{
    for (size_t i = 0; i < m->nparts; i++) {
        const struct request_part *p = &m->parts[i];
        json_t *part = NULL;
        const char *mt, *data;
        size_t mt_len, data_len;
        switch (p->type) {
        case REQUEST_PART_TEXT:
            part = gemini_text(p->text, p->text_len);
            break;
        case REQUEST_PART_IMAGE_DATA:
            part = json_pack("{s:{s:s, s:s%}}", "inlineData", "mimeType", p->media_type, "data",
                             p->text, p->text_len);
            break;
        case REQUEST_PART_IMAGE_URL:
            /* a data: URL is its bytes */
            if (adapter_data_url(p->text, p->text_len, &mt, &mt_len, &data, &data_len) < 0)
                return err_set(e, ERR_INPUT, "unsupported",
                               "unsupported: image_url (Gemini takes images as inline data; "
                               "an http(s) URL cannot be sent)");
            part = json_pack("{s:{s:s%, s:s%}}", "inlineData", "mimeType", mt, mt_len, "data", data,
                             data_len);
            break;
        }
        if (json_array_append_new(parts, part) < 0)
            return GEMINI_OOM(e);
    }
    return 0;
}

/* A tool result as FunctionResponse.response: a JSON object as is, any
 * other text under "output" ([ref]: "use 'output' key to specify function
 * output"; the whole object is the output when it has no such key). */
static json_t *gemini_tool_result(const struct request_message *m)
{
    size_t used; /* text parts are pieces of one result: joined as they are */
    char *text = adapter_message_text(m, &used);
    if (!text)
        return NULL;
    /* duplicate keys would be ambiguous: such text stays text */
    json_t *obj = json_loadb(text, used, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(obj)) {
        json_decref(obj);
        obj = json_pack("{s:s%}", "output", text, used);
    }
    free(text);
    return obj;
}

/* contents[] and the system parts. Consecutive tool turns become ONE user
 * turn: Gemini pairs the function responses of a turn with the function
 * calls of the model turn before it, and rejects a count that differs. */
static int gemini_contents(const struct request *req, json_t *contents, json_t *system,
                           struct err *e)
{
    if (req->system && json_array_append_new(system, gemini_text(req->system, req->system_len)) < 0)
        return GEMINI_OOM(e);
    json_t *tool_turn = NULL; /* borrowed: the parts of the open tool turn */
    for (size_t i = 0; i < req->nmessages; i++) {
        const struct request_message *m = &req->messages[i];
        if (m->role == REQUEST_SYSTEM) {
            for (size_t j = 0; j < m->nparts; j++) {
                const struct request_part *p = &m->parts[j];
                if (p->type == REQUEST_PART_TEXT &&
                    json_array_append_new(system, gemini_text(p->text, p->text_len)) < 0)
                    return GEMINI_OOM(e);
            }
            continue;
        }
        if (m->role == REQUEST_TOOL) {
            if (!m->tool_name)
                return err_set(e, ERR_INPUT, "invalid_request",
                               "messages[%zu]: a tool turn whose call is unknown (Gemini answers "
                               "a call by its tool's name)",
                               i);
            if (!tool_turn) {
                json_t *turn = json_pack("{s:s, s:[]}", "role", "user", "parts");
                if (json_array_append_new(contents, turn) < 0)
                    return GEMINI_OOM(e);
                tool_turn = json_object_get(turn, "parts");
            }
            json_t *result = gemini_tool_result(m);
            json_t *part = result ? json_pack("{s:{s:s, s:o}}", "functionResponse", "name",
                                              m->tool_name, "response", result)
                                  : NULL;
            if (json_array_append_new(tool_turn, part) < 0)
                return GEMINI_OOM(e);
            continue;
        }
        tool_turn = NULL;
        json_t *parts = json_array();
        json_t *turn =
            parts ? json_pack("{s:s, s:o}", "role", m->role == REQUEST_ASSISTANT ? "model" : "user",
                              "parts", parts)
                  : NULL;
        if (json_array_append_new(contents, turn) < 0)
            return GEMINI_OOM(e);
        if (gemini_content_parts(m, parts, e) < 0)
            return -1;
        for (size_t j = 0; j < m->ntool_calls; j++) {
            const struct request_tool_call *c = &m->tool_calls[j];
            json_t *args = c->arguments ? json_incref(c->arguments) : json_object();
            if (json_array_append_new(parts, json_pack("{s:{s:s, s:o}}", "functionCall", "name",
                                                       c->name, "args", args)) < 0)
                return GEMINI_OOM(e);
        }
    }
    return 0;
}

/* generationConfig: the cap always, the rest when the request asks. */
static json_t *gemini_generation_config(const struct provider_call *call)
{
    const struct request *req = call->req;
    json_t *g = json_pack("{s:I}", "maxOutputTokens", (json_int_t)call->max_tokens);
    int failed = g == NULL;
    if (!failed)
        failed = adapter_sampling(g, req, "topP", "stopSequences") < 0;
    if (!failed && req->has_seed)
        failed = json_object_set_new(g, "seed", json_integer((json_int_t)req->seed)) < 0;
    if (!failed && req->format != REQUEST_FORMAT_TEXT)
        failed = json_object_set_new(g, "responseMimeType", json_string("application/json")) < 0;
    /* json_object mode is the MIME type alone: any JSON; a schema goes to
     * responseJsonSchema, which takes JSON Schema ([ref]) */
    if (!failed && req->format == REQUEST_FORMAT_JSON_SCHEMA && req->schema)
        failed = json_object_set(g, "responseJsonSchema", req->schema) < 0;
    /* 0 = no reasoning asked for: nothing sent, the model's default holds
     * (a budget of 0 is refused by models that always think) */
    if (!failed && call->reasoning_budget > 0)
        failed = json_object_set_new(
                     g, "thinkingConfig",
                     json_pack("{s:I}", "thinkingBudget", (json_int_t)call->reasoning_budget)) < 0;
    if (failed) {
        json_decref(g);
        return NULL;
    }
    return g;
}

/* tools [{functionDeclarations}] and toolConfig.functionCallingConfig. */
static int gemini_tools(const struct request *req, json_t *body)
{
    json_t *decls = json_array();
    if (!decls)
        return -1;
    for (size_t i = 0; i < req->ntools; i++) {
        const struct request_tool *t = &req->tools[i];
        json_t *d = json_pack("{s:s}", "name", t->name);
        if (d && t->description &&
            json_object_set_new(d, "description", json_string(t->description)) < 0) {
            json_decref(d);
            d = NULL;
        }
        /* a tool without parameters takes none: left unset ([ref]) */
        if (d && t->parameters && json_object_set(d, "parametersJsonSchema", t->parameters) < 0) {
            json_decref(d);
            d = NULL;
        }
        if (json_array_append_new(decls, d) < 0) {
            json_decref(decls);
            return -1;
        }
    }
    static const char *const modes[] = {[REQUEST_TOOL_CHOICE_AUTO] = "AUTO",
                                        [REQUEST_TOOL_CHOICE_NONE] = "NONE",
                                        [REQUEST_TOOL_CHOICE_REQUIRED] = "ANY",
                                        [REQUEST_TOOL_CHOICE_NAMED] = "ANY"};
    json_t *fcc = json_pack("{s:s}", "mode", modes[req->tool_choice]);
    /* a named tool: ANY, limited to that one name */
    if (fcc && req->tool_choice == REQUEST_TOOL_CHOICE_NAMED &&
        json_object_set_new(fcc, "allowedFunctionNames",
                            json_pack("[s]", req->tool_choice_name ? req->tool_choice_name : "")) <
            0) {
        json_decref(fcc);
        fcc = NULL;
    }
    if (json_object_set_new(body, "tools", json_pack("[{s:o}]", "functionDeclarations", decls)) <
            0 ||
        json_object_set_new(body, "toolConfig", json_pack("{s:o}", "functionCallingConfig", fcc)) <
            0)
        return -1;
    return 0;
}

static int gemini_build(const struct provider_call *call, struct provider_http *out, struct err *e)
{
    const struct request *req = call->req;
    const char *model = gemini_model_id(call->model);
    if (!model)
        return err_set(e, ERR_INPUT, "bad_model",
                       "a Gemini model id is letters, digits, '-', '.' and '_' (up to %d bytes)",
                       GEMINI_MODEL_MAX);
    int rc = -1;
    json_t *contents = json_array(), *system = json_array(), *body = NULL;
    char *path = NULL;
    if (!contents || !system) {
        GEMINI_OOM(e);
        goto out;
    }
    if (gemini_contents(req, contents, system, e) < 0)
        goto out;
    if (json_array_size(contents) == 0) {
        err_set(e, ERR_INPUT, "no_turns",
                "Gemini needs at least one user or assistant message; this request has only "
                "system text");
        goto out;
    }
    body = json_pack("{s:O, s:o*}", "contents", contents, "generationConfig",
                     gemini_generation_config(call));
    if (!body || !json_object_get(body, "generationConfig") ||
        (json_array_size(system) > 0 &&
         json_object_set_new(body, "systemInstruction", json_pack("{s:O}", "parts", system)) < 0) ||
        (req->ntools > 0 && gemini_tools(req, body) < 0)) {
        GEMINI_OOM(e);
        goto out;
    }
    size_t n = strlen("/v1beta/models/") + strlen(model) + strlen(":generateContent") + 1;
    if (!(path = malloc(n))) {
        GEMINI_OOM(e);
        goto out;
    }
    snprintf(path, n, "/v1beta/models/%s:generateContent", model);
    int failed = adapter_body(out, body); /* takes body */
    body = NULL;
    if (failed == 0)
        failed = adapter_url(out, call->base_url, path);
    /* [api]: the header, not ?key=; a local fake may need no key */
    if (failed == 0 && call->api_key && *call->api_key)
        failed = adapter_header(out, "x-goog-api-key", call->api_key);
    if (failed == 0)
        failed = adapter_header(out, "Content-Type", "application/json");
    if (failed < 0) {
        provider_http_release(out);
        GEMINI_OOM(e);
        goto out;
    }
    rc = 0;
out:
    free(path);
    json_decref(body);
    json_decref(system);
    json_decref(contents);
    return rc;
}

static int gemini_malformed(json_t *root, struct err *e, const char *why)
{
    json_decref(root);
    /* possibly billed, but for what we cannot tell: never invent a cost;
     * a retry gets a reply we can account for (see openai.c) */
    return err_set(e, ERR_TRANSIENT, "malformed_reply", "reply not understood: %s", why);
}

/* [ref] Candidate.FinishReason. The blocked ones are content filters;
 * LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL and the rest are "other". */
static enum provider_finish gemini_finish(const char *reason)
{
    static const char *const filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"};
    if (!reason)
        return PROVIDER_FINISH_OTHER;
    if (strcmp(reason, "STOP") == 0)
        return PROVIDER_FINISH_STOP;
    if (strcmp(reason, "MAX_TOKENS") == 0)
        return PROVIDER_FINISH_LENGTH;
    for (size_t i = 0; i < sizeof filtered / sizeof filtered[0]; i++)
        if (strcmp(reason, filtered[i]) == 0)
            return PROVIDER_FINISH_CONTENT_FILTER;
    return PROVIDER_FINISH_OTHER;
}

/* The google.rpc.Status of an error body: {"error":{...}}, or the same in
 * a one-element array (what the streaming endpoint and some proxies send). */
static const json_t *gemini_status(const json_t *root)
{
    return json_object_get(json_is_array(root) ? json_array_get(root, 0) : root, "error");
}

/* The first entry of error.details whose @type is type.googleapis.com/TYPE. */
static const json_t *gemini_detail(const json_t *error, const char *type)
{
    const json_t *details = json_object_get(error, "details");
    for (size_t i = 0; i < json_array_size(details); i++) {
        const json_t *d = json_array_get(details, i);
        const char *t = json_string_value(json_object_get(d, "@type"));
        if (t && strncmp(t, "type.googleapis.com/", 20) == 0 && strcmp(t + 20, type) == 0)
            return d;
    }
    return NULL;
}

/* A 429 whose QuotaFailure names a per-day quota (quotaId
 * "GenerateRequestsPerDayPerProjectPerModel-FreeTier"): the quota comes
 * back the next day, not within any retry's backoff. */
static int gemini_daily_quota(const json_t *error)
{
    const json_t *violations =
        json_object_get(gemini_detail(error, "google.rpc.QuotaFailure"), "violations");
    for (size_t i = 0; i < json_array_size(violations); i++) {
        const char *id =
            json_string_value(json_object_get(json_array_get(violations, i), "quotaId"));
        if (id && strstr(id, "PerDay"))
            return 1;
    }
    return 0;
}

static int gemini_error(long status, json_t *root, const char *body, size_t len, struct err *e)
{
    const json_t *error = gemini_status(root);
    const json_t *m = json_object_get(error, "message");
    size_t msg_len;
    const char *msg = adapter_error_message(m, root, body, len, &msg_len);
    const char *rpc = json_string_value(json_object_get(error, "status"));
    const char *reason =
        json_string_value(json_object_get(gemini_detail(error, "google.rpc.ErrorInfo"), "reason"));
    const char *code = NULL;
    int quota = status == 429 && gemini_daily_quota(error);
    if (quota)
        code = "quota_exhausted";
    else if (reason && strcmp(reason, "API_KEY_INVALID") == 0)
        code = "auth"; /* Google says so with a 400 INVALID_ARGUMENT */
    else if (rpc && strcmp(rpc, "FAILED_PRECONDITION") == 0)
        code = "failed_precondition"; /* [err]: free tier not in this country: billing */
    int rc = adapter_status_error(status, code, msg, msg_len, e);
    if (quota && e)
        e->kind = ERR_UPSTREAM;
    json_decref(root);
    return rc;
}

/* The reply's calls, normalized; NULL (and *ok 0) when one is malformed.
 * Gemini's functionCall may carry an id; when it does not, the id is
 * "call_<index>", the index counting calls in the reply: deterministic,
 * so a retried reply names its calls the same way. */
static json_t *gemini_tool_calls(const json_t *parts, int *ok)
{
    json_t *calls = NULL;
    size_t index = 0;
    *ok = 1;
    for (size_t i = 0; i < json_array_size(parts); i++) {
        const json_t *fc = json_object_get(json_array_get(parts, i), "functionCall");
        if (!fc)
            continue;
        const char *name = json_string_value(json_object_get(fc, "name"));
        const json_t *args = json_object_get(fc, "args");
        const char *id = json_string_value(json_object_get(fc, "id"));
        if (!json_is_object(fc) || !name ||
            (args && !json_is_null(args) && !json_is_object(args))) {
            *ok = 0;
            break;
        }
        char made[32];
        if (!id || !*id) {
            snprintf(made, sizeof made, "call_%zu", index);
            id = made;
        }
        index++;
        json_t *call = json_pack("{s:s, s:s, s:o}", "id", id, "name", name, "arguments",
                                 json_is_object(args) ? json_deep_copy(args) : json_object());
        if (!calls)
            calls = json_array();
        if (json_array_append_new(calls, call) < 0) {
            *ok = -1; /* out of memory */
            break;
        }
    }
    if (*ok != 1) {
        json_decref(calls);
        return NULL;
    }
    return calls;
}

static int gemini_parse(long status, const char *body, size_t len, struct provider_reply *out,
                        struct err *e)
{
    /* JSON_ALLOW_NUL: a model may emit U+0000, and the text keeps it */
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
    if (status < 200 || status > 299)
        return gemini_error(status, root, body, len, e);
    if (!json_is_object(root))
        return gemini_malformed(root, e, "not a JSON object");
    const json_t *usage = json_object_get(root, "usageMetadata");
    if (!json_is_object(usage))
        return gemini_malformed(root, e, "no usageMetadata");
    uint64_t prompt, cached, candidates, thoughts, tool_use;
    /* the prompt is never empty: its count must be there */
    if (adapter_total(usage, "promptTokenCount", &prompt) < 0 ||
        adapter_count(usage, "cachedContentTokenCount", &cached) < 0 ||
        adapter_count(usage, "candidatesTokenCount", &candidates) < 0 ||
        adapter_count(usage, "thoughtsTokenCount", &thoughts) < 0 ||
        adapter_count(usage, "toolUsePromptTokenCount", &tool_use) < 0)
        return gemini_malformed(root, e, "usage counts missing or not non-negative integers");
    /* the cached part is inside the prompt: more would wrap the
     * subtraction, and any clamp would be a cost we made up */
    if (cached > prompt)
        return gemini_malformed(root, e, "cachedContentTokenCount exceeds promptTokenCount");
    /* toolUsePromptTokenCount: what built-in tools (search, code execution)
     * fed back to the model, read as prompt and billed as input; outside
     * promptTokenCount. This adapter sends no built-in tool, so it is 0
     * unless the model has one of its own. */
    if (prompt - cached + tool_use > COST_MAX_TOKENS)
        return gemini_malformed(root, e, "input tokens beyond range");

    const json_t *cands = json_object_get(root, "candidates");
    if (cands && !json_is_array(cands))
        return gemini_malformed(root, e, "candidates is not an array");
    const json_t *cand = json_array_get(cands, 0);
    const json_t *parts = NULL;
    enum provider_finish finish;
    if (!cand) {
        /* [ref] PromptFeedback: a blocked prompt has no candidates; its
         * prompt tokens are still counted (billed): a content filter, with
         * its usage, not an error */
        const char *blocked = json_string_value(
            json_object_get(json_object_get(root, "promptFeedback"), "blockReason"));
        if (!blocked)
            return gemini_malformed(root, e, "no candidates and no promptFeedback.blockReason");
        finish = PROVIDER_FINISH_CONTENT_FILTER;
    } else {
        const json_t *content = json_object_get(cand, "content");
        parts = json_object_get(content, "parts");
        /* a SAFETY stop may come with no content at all */
        if (!json_is_object(cand) || (content && !json_is_object(content)) ||
            (parts && !json_is_array(parts)))
            return gemini_malformed(root, e, "candidates[0].content.parts is not an array");
        finish = gemini_finish(json_string_value(json_object_get(cand, "finishReason")));
    }
    /* the answer is every text part that is not a thought, in order */
    size_t total = 0;
    for (size_t i = 0; i < json_array_size(parts); i++) {
        const json_t *part = json_array_get(parts, i);
        const json_t *text = json_object_get(part, "text");
        if (text && !json_is_string(text))
            return gemini_malformed(root, e, "a text part is not a string");
        if (text && !json_is_true(json_object_get(part, "thought")))
            total += json_string_length(text);
    }
    int calls_ok;
    json_t *calls = gemini_tool_calls(parts, &calls_ok);
    if (calls_ok == 0)
        return gemini_malformed(root, e, "a functionCall without a name, or args not an object");
    const char *model = json_string_value(json_object_get(root, "modelVersion"));
    out->text = malloc(total + 1);
    if (calls_ok < 0 || !out->text || (model && !(out->model = strdup(model)))) {
        json_decref(calls);
        provider_reply_release(out);
        json_decref(root);
        return err_set(e, ERR_FATAL, "oom", "out of memory");
    }
    for (size_t i = 0; i < json_array_size(parts); i++) {
        const json_t *part = json_array_get(parts, i);
        if (!json_is_true(json_object_get(part, "thought")))
            adapter_answer_append(out, json_object_get(part, "text"));
    }
    out->text[out->text_len] = '\0';
    out->tool_calls = calls;
    /* Gemini ends a turn that calls functions with STOP */
    out->finish = calls && finish == PROVIDER_FINISH_STOP ? PROVIDER_FINISH_TOOL_CALLS : finish;
    out->usage.tokens[COST_INPUT] = prompt - cached + tool_use;
    out->usage.tokens[COST_CACHE_READ] = cached;
    out->usage.tokens[COST_CACHE_WRITE] = 0; /* explicit caches are billed by storage, apart */
    out->usage.tokens[COST_OUTPUT] = candidates;
    out->usage.tokens[COST_REASONING] = thoughts; /* apart from candidates: billed as output */
    json_decref(root);
    return 0;
}

/* google.protobuf.Duration in JSON: decimal seconds, up to 9 fractional
 * digits, then "s" ("7s", "1.5s", "0.000340s"); at most 315,576,000,000
 * seconds (12 digits). Rounded up to the ms: waiting less than asked buys
 * another 429. -1 when s is not one. */
static int64_t gemini_duration_ms(const char *s)
{
    if (!s)
        return -1;
    int64_t seconds = 0, nanos = 0;
    size_t i = 0, digits = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (++digits > 12)
            return -1;
        seconds = seconds * 10 + (s[i] - '0');
    }
    if (digits == 0)
        return -1;
    if (s[i] == '.') {
        size_t frac = 0;
        for (i++; s[i] >= '0' && s[i] <= '9'; i++) {
            if (++frac > 9)
                return -1;
            nanos = nanos * 10 + (s[i] - '0');
        }
        if (frac == 0)
            return -1;
        for (; frac < 9; frac++)
            nanos *= 10;
    }
    if (s[i] != 's' || s[i + 1] != '\0')
        return -1;
    return seconds * 1000 + (nanos + 999999) / 1000000;
}

int64_t gemini_retry_delay_ms(const char *body, size_t len)
{
    json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL;
    const json_t *info = gemini_detail(gemini_status(root), "google.rpc.RetryInfo");
    int64_t ms = gemini_duration_ms(json_string_value(json_object_get(info, "retryDelay")));
    json_decref(root);
    return ms;
}

const struct provider_ops gemini_ops = {"gemini", gemini_build, gemini_parse,
                                        gemini_retry_delay_ms};

/*
 * bedrock: Amazon Bedrock's Converse API (POST /model/{modelId}/converse),
 * signed with SigV4 (sigv4.h) or sent with a Bedrock API key as a bearer
 * token. Usage rule: inputTokens EXCLUDES the cache, so input, cache
 * reads (cacheReadInputTokens) and cache writes (cacheWriteInputTokens)
 * are already disjoint; Claude's thinking is billed inside outputTokens.
 * response_format goes through a forced tool whose input is the answer
 * (as on Anthropic); images go as bytes only (no URL source).
 * Pure: builds bytes and reads bytes, never touches the network or the
 * clock (the signing time is call->now_s).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/adapter.h"
#include "sigv4.h"

/* response_format's tool is Anthropic's, ADAPTER_FORMAT_TOOL (adapter.h):
 * a reply's call of that name is the answer. */
#define BEDROCK_SERVICE "bedrock" /* the SigV4 signing name of bedrock-runtime */

/* --- build ------------------------------------------------------------ */

/* Converse's image format for a media type; NULL when it takes none. */
static const char *bedrock_image_format(const char *media_type, size_t len)
{
    static const char *const types[][2] = {{"image/png", "png"},
                                           {"image/jpeg", "jpeg"},
                                           {"image/jpg", "jpeg"},
                                           {"image/gif", "gif"},
                                           {"image/webp", "webp"}};
    for (size_t i = 0; media_type && i < sizeof types / sizeof types[0]; i++)
        if (strlen(types[i][0]) == len && strncmp(media_type, types[i][0], len) == 0)
            return types[i][1];
    return NULL;
}

/* {"image":{"format":F,"source":{"bytes":base64}}}: Converse's JSON
 * carries a blob as base64, so the request's base64 goes as it is. NULL
 * with e set when the part cannot go to Bedrock. */
static json_t *bedrock_image(const struct request_part *p, struct err *e)
{
    const char *mt = p->media_type, *data = p->text;
    size_t mt_len = mt ? strlen(mt) : 0, data_len = p->text_len;
    if (p->type == REQUEST_PART_IMAGE_URL &&
        adapter_data_url(p->text, p->text_len, &mt, &mt_len, &data, &data_len) < 0) {
        err_set(e, ERR_INPUT, "unsupported",
                "unsupported: image_url (Bedrock takes images as bytes: a data: URL or "
                "media_type and data)");
        return NULL;
    }
    const char *format = bedrock_image_format(mt, mt_len);
    if (!format) {
        err_set(e, ERR_INPUT, "unsupported",
                "unsupported: images of type %.*s (Bedrock takes png, jpeg, gif and webp)",
                (int)(mt_len > 64 ? 64 : mt_len), mt ? mt : "");
        return NULL;
    }
    json_t *img = json_pack("{s:{s:s, s:{s:s%}}}", "image", "format", format, "source", "bytes",
                            data, data_len);
    if (!img)
        err_set(e, ERR_FATAL, "oom", "out of memory building the request");
    return img;
}

static int bedrock_append(json_t *array, json_t *item)
{
    return item ? json_array_append_new(array, item) : -1;
}

/* A message's parts as Converse content blocks (a string content is one
 * text part). */
static int bedrock_parts(const struct request_message *m, json_t *blocks, struct err *e)
{
    for (size_t i = 0; i < m->nparts; i++) {
        const struct request_part *p = &m->parts[i];
        json_t *block = p->type == REQUEST_PART_TEXT
                            ? json_pack("{s:s%}", "text", p->text, p->text_len)
                            : bedrock_image(p, e);
        if (!block && p->type != REQUEST_PART_TEXT)
            return -1; /* e is set */
        if (bedrock_append(blocks, block) < 0)
            return err_set(e, ERR_FATAL, "oom", "out of memory building the request");
    }
    return 0;
}

/* The blocks one turn adds, in Converse's roles: an assistant turn's text
 * and toolUse blocks; a tool turn's toolResult (sent as a user turn). */
static int bedrock_turn(const struct request_message *m, json_t *blocks, struct err *e)
{
    if (m->role == REQUEST_TOOL) {
        json_t *content = json_array();
        if (!content)
            return err_set(e, ERR_FATAL, "oom", "out of memory building the request");
        if (bedrock_parts(m, content, e) < 0) {
            json_decref(content);
            return -1;
        }
        return bedrock_append(blocks, json_pack("{s:{s:s, s:o}}", "toolResult", "toolUseId",
                                                m->tool_call_id ? m->tool_call_id : "", "content",
                                                content)) < 0
                   ? err_set(e, ERR_FATAL, "oom", "out of memory building the request")
                   : 0;
    }
    if (bedrock_parts(m, blocks, e) < 0)
        return -1;
    for (size_t i = 0; i < m->ntool_calls; i++) {
        const struct request_tool_call *c = &m->tool_calls[i];
        if (bedrock_append(blocks, json_pack("{s:{s:s, s:s, s:O}}", "toolUse", "toolUseId", c->id,
                                             "name", c->name, "input", c->arguments)) < 0)
            return err_set(e, ERR_FATAL, "oom", "out of memory building the request");
    }
    return 0;
}

/* Converse's messages: system turns left out (they go to "system"); tool
 * turns are user turns carrying toolResult blocks; consecutive turns of
 * the same role are merged, since Converse wants user and assistant to
 * alternate (several tool results answer one assistant turn). Sets
 * *tool_blocks when a toolUse or toolResult block is sent (Converse then
 * requires toolConfig). */
static json_t *bedrock_messages(const struct request *req, int *tool_blocks, struct err *e)
{
    json_t *messages = json_array();
    if (!messages) {
        err_set(e, ERR_FATAL, "oom", "out of memory building the request");
        return NULL;
    }
    const char *last_role = NULL;
    json_t *last = NULL; /* borrowed: the content of the last message */
    for (size_t i = 0; i < req->nmessages; i++) {
        const struct request_message *m = &req->messages[i];
        if (m->role == REQUEST_SYSTEM)
            continue;
        const char *role = m->role == REQUEST_ASSISTANT ? "assistant" : "user";
        *tool_blocks |= m->role == REQUEST_TOOL || m->ntool_calls > 0;
        if (!last || strcmp(role, last_role) != 0) {
            json_t *msg = json_pack("{s:s, s:[]}", "role", role, "content");
            if (bedrock_append(messages, msg) < 0) {
                json_decref(messages);
                err_set(e, ERR_FATAL, "oom", "out of memory building the request");
                return NULL;
            }
            last = json_object_get(msg, "content");
            last_role = role;
        }
        if (bedrock_turn(m, last, e) < 0) {
            json_decref(messages);
            return NULL;
        }
    }
    return messages;
}

/* [{"text": system}, {"text": each system turn}] (empty texts left out:
 * Converse refuses a blank text block). */
static json_t *bedrock_system(const struct request *req)
{
    json_t *system = json_array();
    int failed = system == NULL;
    if (!failed && req->system && req->system_len > 0)
        failed =
            bedrock_append(system, json_pack("{s:s%}", "text", req->system, req->system_len)) < 0;
    for (size_t i = 0; !failed && i < req->nmessages; i++) {
        const struct request_message *m = &req->messages[i];
        if (m->role != REQUEST_SYSTEM)
            continue;
        for (size_t p = 0; !failed && p < m->nparts; p++)
            if (m->parts[p].type == REQUEST_PART_TEXT && m->parts[p].text_len > 0)
                failed = bedrock_append(system, json_pack("{s:s%}", "text", m->parts[p].text,
                                                          m->parts[p].text_len)) < 0;
    }
    if (failed) {
        json_decref(system);
        return NULL;
    }
    return system;
}

static json_t *bedrock_inference(const struct provider_call *call)
{
    const struct request *req = call->req;
    json_t *cfg = json_pack("{s:I}", "maxTokens", (json_int_t)call->max_tokens);
    int failed = cfg == NULL;
    if (!failed)
        failed = adapter_sampling(cfg, req, "topP", "stopSequences") < 0;
    if (failed) {
        json_decref(cfg);
        return NULL;
    }
    return cfg;
}

/* {"toolSpec":{"name","description"?,"inputSchema":{"json":schema}}} */
static json_t *bedrock_tool_spec(const char *name, const char *description, json_t *schema)
{
    /* inputSchema is required: no parameters is an object of none */
    json_t *s =
        schema ? json_incref(schema) : json_pack("{s:s, s:{}}", "type", "object", "properties");
    json_t *spec =
        json_pack("{s:{s:s, s:{s:o}}}", "toolSpec", "name", name, "inputSchema", "json", s);
    if (spec && description &&
        json_object_set_new(json_object_get(spec, "toolSpec"), "description",
                            json_string(description)) < 0) {
        json_decref(spec);
        return NULL;
    }
    return spec;
}

/* toolConfig: the request's tools, then the format tool; toolChoice as
 * Anthropic's adapter decides it (Converse's auto/any/tool are the same
 * three). Converse has no "none": with tool_choice none the tools are
 * left out, unless earlier turns carry tool blocks, which Converse
 * refuses without toolConfig (the tools are then sent, choice left to the
 * model). Thinking admits no forced choice: with reasoning the format
 * tool is offered, not forced. *out NULL = no toolConfig. */
static int bedrock_tool_config(const struct request *req, int thinking, int tool_blocks,
                               json_t **out)
{
    *out = NULL;
    int format = req->format != REQUEST_FORMAT_TEXT;
    enum request_tool_choice c = req->tool_choice;
    if (!format && (req->ntools == 0 || (c == REQUEST_TOOL_CHOICE_NONE && !tool_blocks)))
        return 0;
    json_t *tools = json_array();
    for (size_t i = 0; tools && i < req->ntools; i++)
        if (bedrock_append(tools, bedrock_tool_spec(req->tools[i].name, req->tools[i].description,
                                                    req->tools[i].parameters)) < 0) {
            json_decref(tools);
            tools = NULL;
        }
    if (tools && format) {
        json_t *schema = adapter_format_schema(req);
        json_t *desc = req->schema_description
                           ? json_pack("s+",
                                       "Give your final answer by calling this tool: its input "
                                       "is the answer, a JSON object. ",
                                       req->schema_description)
                           : json_string("Give your final answer by calling this tool: its "
                                         "input is the answer, a JSON object.");
        json_t *spec = schema && desc
                           ? bedrock_tool_spec(ADAPTER_FORMAT_TOOL, json_string_value(desc), schema)
                           : NULL;
        json_decref(schema);
        json_decref(desc);
        if (bedrock_append(tools, spec) < 0) {
            json_decref(tools);
            tools = NULL;
        }
    }
    json_t *cfg = tools ? json_pack("{s:o}", "tools", tools) : NULL;
    if (!cfg)
        return -1;
    json_t *choice = NULL;
    if (format) {
        if (thinking)
            choice = NULL;
        else if (c == REQUEST_TOOL_CHOICE_NAMED)
            choice = json_pack("{s:{s:s}}", "tool", "name", req->tool_choice_name);
        else if (req->ntools > 0 && c != REQUEST_TOOL_CHOICE_NONE)
            choice = json_pack("{s:{}}", "any");
        else
            choice = json_pack("{s:{s:s}}", "tool", "name", ADAPTER_FORMAT_TOOL);
    } else if (c == REQUEST_TOOL_CHOICE_REQUIRED) {
        choice = json_pack("{s:{}}", "any");
    } else if (c == REQUEST_TOOL_CHOICE_NAMED) {
        choice = json_pack("{s:{s:s}}", "tool", "name", req->tool_choice_name);
    } /* auto: Converse's default, left out (not every model takes toolChoice) */
    int needed =
        format ? !thinking : c == REQUEST_TOOL_CHOICE_REQUIRED || c == REQUEST_TOOL_CHOICE_NAMED;
    if ((needed && !choice) || (choice && json_object_set_new(cfg, "toolChoice", choice) < 0)) {
        json_decref(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

/* "/model/{modelId}/converse", the id URI-encoded as AWS's SDKs encode a
 * path label (every byte but the unreserved): an id's ':' and an ARN's
 * '/' travel as %3A and %2F, and SigV4 encodes the path once more. */
static char *bedrock_path(const char *model)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(model);
    char *p = malloc(sizeof "/model/" - 1 + 3 * n + sizeof "/converse");
    if (!p)
        return NULL;
    size_t o = 0;
    memcpy(p, "/model/", 7);
    o = 7;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)model[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            p[o++] = (char)c;
        } else {
            p[o++] = '%';
            p[o++] = hex[c >> 4];
            p[o++] = hex[c & 15];
        }
    }
    memcpy(p + o, "/converse", sizeof "/converse");
    return p;
}

/* Bedrock's Claude models take a thinking budget; no other model does. */
static int bedrock_claude(const char *model)
{
    return strstr(model, "anthropic.") != NULL;
}

static json_t *bedrock_body(const struct provider_call *call, struct err *e)
{
    const struct request *req = call->req;
    int tool_blocks = 0;
    json_t *messages = bedrock_messages(req, &tool_blocks, e);
    if (!messages)
        return NULL;
    if (json_array_size(messages) == 0) {
        json_decref(messages);
        err_set(e, ERR_INPUT, "no_turns",
                "Bedrock needs at least one user or assistant message; this request has only "
                "system text");
        return NULL;
    }
    int thinking = call->reasoning_budget > 0;
    json_t *system = bedrock_system(req), *inference = bedrock_inference(call), *tools = NULL;
    json_t *body = json_pack("{s:o}", "messages", messages);
    int failed = !body || !system || !inference ||
                 bedrock_tool_config(req, thinking, tool_blocks, &tools) < 0;
    if (!failed && json_array_size(system) > 0)
        failed = json_object_set(body, "system", system) < 0;
    if (!failed)
        failed = json_object_set(body, "inferenceConfig", inference) < 0;
    if (!failed && tools)
        failed = json_object_set(body, "toolConfig", tools) < 0;
    if (!failed && thinking)
        failed =
            json_object_set_new(body, "additionalModelRequestFields",
                                json_pack("{s:{s:s, s:I}}", "thinking", "type", "enabled",
                                          "budget_tokens", (json_int_t)call->reasoning_budget)) < 0;
    json_decref(system);
    json_decref(inference);
    json_decref(tools);
    if (failed) {
        json_decref(body);
        err_set(e, ERR_FATAL, "oom", "out of memory building the request");
        return NULL;
    }
    return body;
}

static int bedrock_build(const struct provider_call *call, struct provider_http *out, struct err *e)
{
    const struct request *req = call->req;
    /* what capabilities.c keeps away from Bedrock, refused here too rather
     * than dropped in silence */
    if (req->has_seed)
        return err_set(e, ERR_INPUT, "unsupported", "unsupported: seed (Bedrock takes none)");
    if (call->reasoning_budget > 0 && !bedrock_claude(call->model))
        return err_set(e, ERR_INPUT, "unsupported",
                       "unsupported: reasoning (on Bedrock only Anthropic's models take a "
                       "thinking budget)");
    if (adapter_format_tool_clash(req))
        return err_set(e, ERR_INPUT, "reserved_tool_name",
                       "the tool name \"%s\" is reserved for response_format on Bedrock",
                       ADAPTER_FORMAT_TOOL);
    json_t *body = bedrock_body(call, e);
    if (!body)
        return -1;
    char *path = bedrock_path(call->model);
    int rc = -1;
    if (!path || adapter_body(out, body) < 0 || adapter_url(out, call->base_url, path) < 0 ||
        adapter_header(out, "content-type", "application/json") < 0) {
        err_set(e, ERR_FATAL, "oom", "out of memory building the request");
        goto out;
    }
    if (call->auth == CONFIG_AUTH_BEARER || call->auth == CONFIG_AUTH_API_KEY) {
        /* a Bedrock API key: a bearer token, no signature */
        const char *key = call->api_key ? call->api_key : "";
        size_t klen = strlen(key);
        char *value = malloc(sizeof "Bearer " + klen);
        if (value) {
            memcpy(value, "Bearer ", sizeof "Bearer " - 1);
            memcpy(value + sizeof "Bearer " - 1, key, klen + 1);
        }
        int hrc = value ? adapter_header(out, "authorization", value) : -1;
        free(value);
        if (hrc < 0) {
            err_set(e, ERR_FATAL, "oom", "out of memory building the request");
            goto out;
        }
        rc = 0;
        goto out;
    }
    /* SigV4 (the type's default): signed over exactly what is sent */
    const struct sigv4_header signed_headers[] = {{"content-type", "application/json"}};
    struct sigv4_input in = {.method = "POST",
                             .url = out->url,
                             .headers = signed_headers,
                             .nheaders = 1,
                             .body = out->body,
                             .body_len = out->body_len,
                             .region = call->region,
                             .service = BEDROCK_SERVICE,
                             .access_key_id = call->access_key_id,
                             .secret_access_key = call->secret_access_key,
                             .session_token = call->session_token,
                             .now_s = call->now_s,
                             /* as AWS's JavaScript SDK sends it */
                             .content_sha256 = 1};
    struct sigv4_output sig;
    if (sigv4_sign(&in, &sig, e) < 0)
        goto out;
    rc = 0;
    for (size_t i = 0; rc == 0 && i < sig.nheaders; i++) {
        /* "name: value" lines: split for adapter_header */
        char *colon = strchr(sig.headers[i], ':');
        *colon = '\0';
        rc = adapter_header(out, sig.headers[i], colon + 2);
        *colon = ':';
    }
    sigv4_output_release(&sig);
    if (rc < 0)
        err_set(e, ERR_FATAL, "oom", "out of memory building the request");
out:
    free(path);
    if (rc < 0)
        provider_http_release(out);
    return rc;
}

/* --- parse ------------------------------------------------------------ */

static enum provider_finish bedrock_finish(const char *reason)
{
    if (!reason)
        return PROVIDER_FINISH_OTHER;
    if (strcmp(reason, "end_turn") == 0 || strcmp(reason, "stop_sequence") == 0)
        return PROVIDER_FINISH_STOP;
    if (strcmp(reason, "max_tokens") == 0 || strcmp(reason, "model_context_window_exceeded") == 0)
        return PROVIDER_FINISH_LENGTH;
    if (strcmp(reason, "tool_use") == 0)
        return PROVIDER_FINISH_TOOL_CALLS;
    if (strcmp(reason, "guardrail_intervened") == 0 || strcmp(reason, "content_filtered") == 0)
        return PROVIDER_FINISH_CONTENT_FILTER;
    return PROVIDER_FINISH_OTHER;
}

/* AWS's error types (x-amzn-ErrorType, or "__type" in some bodies), as
 * code and whether a retry can help; the status decides when the body
 * names none (parse() sees no headers). */
static const struct bedrock_error_type {
    const char *name;
    const char *code;
    int transient;
} bedrock_error_types[] = {
    {"ThrottlingException", "rate_limited", 1},
    {"ModelNotReadyException", "not_ready", 1},
    {"ModelTimeoutException", "timeout", 1},
    {"ModelErrorException", "model_error", 1},
    {"InternalServerException", "server_error", 1},
    {"ServiceUnavailableException", "unavailable", 1},
    {"ValidationException", "bad_request", 0},
    {"AccessDeniedException", "auth", 0},
    {"UnrecognizedClientException", "auth", 0},
    {"InvalidSignatureException", "auth", 0},
    {"IncompleteSignatureException", "auth", 0},
    {"ExpiredTokenException", "auth", 0},
    {"ResourceNotFoundException", "not_found", 0},
    /* a quota is not a rate: waiting seconds does not lift it */
    {"ServiceQuotaExceededException", "quota", 0},
};

/* "com.amazon.coral.validate#ValidationException:http://..." ->
 * ValidationException */
static const struct bedrock_error_type *bedrock_error_type(const char *type)
{
    if (!type)
        return NULL;
    const char *hash = strrchr(type, '#');
    const char *name = hash ? hash + 1 : type;
    size_t n = strcspn(name, ":");
    for (size_t i = 0; i < sizeof bedrock_error_types / sizeof bedrock_error_types[0]; i++)
        if (strlen(bedrock_error_types[i].name) == n &&
            strncmp(name, bedrock_error_types[i].name, n) == 0)
            return &bedrock_error_types[i];
    return NULL;
}

/* {"message": "..."} (Bedrock), {"Message": ...} or {"__type", "message"}
 * (other AWS front ends). */
static int bedrock_error(long status, json_t *root, const char *body, size_t len, struct err *e)
{
    const json_t *m = json_object_get(root, "message");
    if (!json_is_string(m))
        m = json_object_get(root, "Message");
    size_t msg_len;
    const char *msg = adapter_error_message(m, root, body, len, &msg_len);
    const struct bedrock_error_type *t =
        bedrock_error_type(json_string_value(json_object_get(root, "__type")));
    const char *code = t ? t->code : NULL;
    if (!t && status == 424) /* ModelErrorException's status */
        code = "model_error";
    else if (!t && status == 429 && msg &&
             memmem(msg, msg_len, "not ready", 9)) /* ModelNotReadyException */
        code = "not_ready";
    int rc = adapter_status_error(status, code, msg, msg_len, e);
    /* where AWS's type or status says more than the generic status rule:
     * 424 (the model failed this time) is worth a retry */
    if (t)
        e->kind = t->transient ? ERR_TRANSIENT : ERR_UPSTREAM;
    else if (status == 424)
        e->kind = ERR_TRANSIENT;
    json_decref(root);
    return rc;
}

static int bedrock_malformed(json_t *root, json_t *calls, const char *why, struct err *e)
{
    json_decref(calls);
    json_decref(root);
    /* possibly billed, but for what we cannot tell: never invent a cost;
     * a retry gets a reply we can account for (see openai.c) */
    return err_set(e, ERR_TRANSIENT, "malformed_reply", "reply not understood: %s", why);
}

static int bedrock_parse(long status, const char *body, size_t len, struct provider_reply *out,
                         struct err *e)
{
    /* JSON_ALLOW_NUL: a model may emit U+0000, and the text keeps it */
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
    if (status < 200 || status > 299)
        return bedrock_error(status, root, body, len, e);
    const json_t *content =
        json_object_get(json_object_get(json_object_get(root, "output"), "message"), "content");
    const json_t *usage = json_object_get(root, "usage");
    uint64_t input, output, cache_read, cache_write, total;
    if (!json_is_array(content) || !json_is_object(usage) ||
        adapter_total(usage, "inputTokens", &input) < 0 ||
        adapter_total(usage, "outputTokens", &output) < 0 ||
        adapter_count(usage, "cacheReadInputTokens", &cache_read) < 0 ||
        adapter_count(usage, "cacheWriteInputTokens", &cache_write) < 0 ||
        adapter_count(usage, "totalTokens", &total) < 0)
        return bedrock_malformed(root, NULL,
                                 "no output.message.content, or usage counts missing or not "
                                 "non-negative integers",
                                 e);
    /* totalTokens counts input and output (and the cache): a part above it
     * is a reply we cannot account for */
    if (json_is_integer(json_object_get(usage, "totalTokens")) && (input > total || output > total))
        return bedrock_malformed(root, NULL, "a usage count exceeds totalTokens", e);
    /* the answer is every text block, in order; reasoningContent blocks
     * are not text (billed in outputTokens); toolUse blocks are calls,
     * except the format tool's, whose input is the answer */
    size_t total_text = 0, i;
    const json_t *block, *format_input = NULL;
    json_t *calls = json_array();
    if (!calls)
        return bedrock_malformed(root, NULL, "out of memory", e);
    json_array_foreach(content, i, block)
    {
        const json_t *text = json_object_get(block, "text");
        const json_t *use = json_object_get(block, "toolUse");
        if (json_is_string(text)) {
            total_text += json_string_length(text);
        } else if (use) {
            const char *id = json_string_value(json_object_get(use, "toolUseId"));
            const char *name = json_string_value(json_object_get(use, "name"));
            json_t *args = json_object_get(use, "input");
            if (!id || !name || !json_is_object(args))
                return bedrock_malformed(root, calls,
                                         "a toolUse block without toolUseId, name or an object "
                                         "input",
                                         e);
            if (strcmp(name, ADAPTER_FORMAT_TOOL) == 0)
                format_input = args;
            else if (adapter_tool_call(calls, id, name, args) < 0)
                return bedrock_malformed(root, calls, "out of memory", e);
        }
    }
    if (adapter_answer_text(out, format_input, total_text) < 0) {
        json_decref(calls);
        provider_reply_release(out);
        json_decref(root);
        return err_set(e, ERR_FATAL, "oom", "out of memory");
    }
    json_array_foreach(content, i, block)
    {
        if (!format_input)
            adapter_answer_append(out, json_object_get(block, "text"));
    }
    out->text[out->text_len] = '\0';
    adapter_answer_calls(out, calls,
                         bedrock_finish(json_string_value(json_object_get(root, "stopReason"))),
                         format_input != NULL);
    out->usage.tokens[COST_INPUT] = input; /* the cache is not in it */
    out->usage.tokens[COST_OUTPUT] = output;
    out->usage.tokens[COST_CACHE_READ] = cache_read;
    /* Converse has no TTL split: its writes are priced as five-minute ones */
    out->usage.tokens[COST_CACHE_WRITE] = cache_write;
    out->usage.tokens[COST_CACHE_WRITE_1H] = 0;
    out->usage.tokens[COST_REASONING] = 0; /* thinking is inside outputTokens */
    json_decref(root);
    return 0;
}

const struct provider_ops bedrock_ops = {"bedrock", bedrock_build, bedrock_parse, NULL};

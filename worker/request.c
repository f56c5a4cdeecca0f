/*
 * request: bytes -> struct request, or a precise reason why not. The rules
 * here and in schemas/request.schema.json must never disagree: the tests
 * run every example in schemas/examples/request/ through both. Only what
 * JSON Schema cannot say is checked here alone (unique tool names, a named
 * tool_choice among tools, a tool turn answering an earlier call); the
 * schema's description lists it. Never copies input text: every string in
 * struct request points into the decoded tree, and every array it
 * allocates is capped by a REQUEST_MAX_* bound.
 */
#include "request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

static const char *const request_fields[] = {"id",          "task",
                                             "budget_usd",  "tenant",
                                             "messages",    "system",
                                             "max_tokens",  "temperature",
                                             "deadline_ms", "metadata",
                                             "top_p",       "stop",
                                             "seed",        "response_format",
                                             "tools",       "tool_choice",
                                             "model",       "reasoning",
                                             NULL};
static const char *const role_names[] = {"system", "user", "assistant", "tool", NULL};
static const char *const message_fields[] = {"role", "content", "tool_calls", "tool_call_id", NULL};
static const char *const part_fields[] = {"type", "text", "url", "media_type", "data", NULL};
static const char *const part_types[] = {"text", "image", NULL};
static const char *const media_types[] = {"image/png", "image/jpeg", "image/gif", "image/webp",
                                          NULL};
static const char *const tool_call_fields[] = {"id", "name", "arguments", NULL};
static const char *const tool_fields[] = {"name", "description", "parameters", NULL};
static const char *const tool_choice_fields[] = {"name", NULL};
static const char *const tool_choice_names[] = {"auto", "none", "required", NULL};
static const char *const format_fields[] = {"type", "json_schema", NULL};
static const char *const format_types[] = {"text", "json_object", "json_schema", NULL};
static const char *const json_schema_fields[] = {"name", "description", "schema", "strict", NULL};
static const char *const reasoning_fields[] = {"effort", "budget_tokens", NULL};
static const char *const effort_names[] = {"none", "low", "medium", "high", NULL};

const char *request_role_name(enum request_role role)
{
    return (unsigned)role < 4 ? role_names[role] : "unknown";
}

const char *request_effort_name(enum request_effort effort)
{
    return (unsigned)effort < 4 ? effort_names[effort] : "unknown";
}

uint32_t request_effort_budget(enum request_effort effort)
{
    switch (effort) {
    case REQUEST_EFFORT_LOW:
        return 1024;
    case REQUEST_EFFORT_MEDIUM:
        return 4096;
    case REQUEST_EFFORT_HIGH:
        return 16384;
    case REQUEST_EFFORT_NONE:
        break;
    }
    return 0;
}

enum request_effort request_budget_effort(uint32_t budget_tokens)
{
    if (budget_tokens == 0)
        return REQUEST_EFFORT_NONE;
    if (budget_tokens <= 1024)
        return REQUEST_EFFORT_LOW;
    if (budget_tokens <= 4096)
        return REQUEST_EFFORT_MEDIUM;
    return REQUEST_EFFORT_HIGH;
}

/* Nesting depth of arrays and objects, counted on the raw bytes so that a
 * hostile document is refused before the parser recurses into it. */
static int request_depth_ok(const char *s, size_t len)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > REQUEST_MAX_DEPTH)
                return 0;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 1;
}

static int bad(struct err *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct err *e, const char *field, const char *fmt, ...)
{
    char what[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return err_set(e, ERR_INPUT, "invalid_request", "%s: %s", field, what);
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "something else";
}

static int expect_pattern_string(const json_t *v, const char *field, size_t max, int first_alnum,
                                 const char **out, struct err *e)
{
    if (!json_is_string(v))
        return bad(e, field, "expected a string, got %s", json_kind(v));
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > max) {
        char why[96];
        snprintf(why, sizeof why, "expected 1 to %zu characters, got %zu", max, n);
        return bad(e, field, "%s", why);
    }
    if (first_alnum) {
        /* task: ^[A-Za-z0-9][A-Za-z0-9._-]*$ */
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
            if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
                return bad(e, field, "%s",
                           "expected a letter or digit, then letters, digits, '.', '_' or '-'");
        }
    } else if (!text_is_visible_ascii(s, n)) {
        return bad(e, field, "%s", "expected printable ASCII without spaces");
    }
    *out = s;
    return 0;
}

/* JSON Schema's "integer": any number with no fractional part. */
static int json_as_integer(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(int64_t)d) {
            *out = (int64_t)d;
            return 0;
        }
    }
    return -1;
}

static int expect_integer(const json_t *v, const char *field, int64_t min, int64_t max,
                          int64_t *out, struct err *e)
{
    char why[96];
    snprintf(why, sizeof why, "expected an integer from %lld to %lld", (long long)min,
             (long long)max);
    if (json_as_integer(v, out) < 0 || *out < min || *out > max)
        return bad(e, field, "%s", why);
    return 0;
}

/* Index of the string v in names (compared with the length: "user\u0000x"
 * is not "user"), or -1. */
static int string_in(const json_t *v, const char *const *names)
{
    if (!json_is_string(v))
        return -1;
    for (int k = 0; names[k]; k++)
        if (json_string_length(v) == strlen(names[k]) &&
            memcmp(json_string_value(v), names[k], strlen(names[k])) == 0)
            return k;
    return -1;
}

/* The first key of obj that is not in `known`, reported as path.key with a
 * "did you mean" when a known name is a plausible typo of it, else with
 * `has` (which names the known fields). */
static int check_keys(const json_t *obj, const char *path, const char *const *known,
                      const char *has, struct err *e)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        int found = 0;
        for (size_t i = 0; known[i] && !found; i++)
            found = strcmp(key, known[i]) == 0;
        if (found)
            continue;
        char field[256];
        snprintf(field, sizeof field, "%.96s.%.64s", path, key);
        const char *near = text_nearest(key, known);
        if (near)
            return bad(e, field, "unknown field (did you mean \"%s\"?)", near);
        return bad(e, field, "unknown field (%s)", has);
    }
    return 0;
}

/* A tool's, a tool call's or a schema's name: ^[A-Za-z0-9_-]{1,64}$, the
 * charset every provider accepts for a function name. */
static int expect_name(const json_t *v, const char *field, const char **out, struct err *e)
{
    if (!json_is_string(v))
        return bad(e, field, "expected a string, got %s", json_kind(v));
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    int okay = n >= 1 && n <= REQUEST_NAME_MAX;
    for (size_t i = 0; i < n && okay; i++) {
        char c = s[i];
        okay = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    }
    if (!okay)
        return bad(e, field, "expected 1 to %d letters, digits, '_' or '-'", REQUEST_NAME_MAX);
    *out = s;
    return 0;
}

/* Bytes of v written as compact JSON: what a provider reads of a tool, an
 * argument object or a schema. Nothing is allocated. */
static size_t compact_len(const json_t *v)
{
    char scratch[1];
    return json_dumpb(v, scratch, 0, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* RFC 4648 base64 with padding, at least one quantum: the regex
 * (?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)
 * of the schema. */
static int is_base64(const char *s, size_t n)
{
    if (n == 0 || n % 4 != 0)
        return 0;
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < n - pad; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return 0;
    }
    return 1;
}

static int has_prefix(const char *s, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n >= p && memcmp(s, prefix, p) == 0;
}

/* An image URL: http(s):// and printable ASCII without spaces, or a data:
 * URL of one of the four image types with base64 data. */
static int is_image_url(const char *s, size_t n)
{
    for (size_t k = 0; media_types[k]; k++) {
        char prefix[48];
        snprintf(prefix, sizeof prefix, "data:%s;base64,", media_types[k]);
        if (has_prefix(s, n, prefix))
            return is_base64(s + strlen(prefix), n - strlen(prefix));
    }
    size_t p = has_prefix(s, n, "https://") ? 8 : has_prefix(s, n, "http://") ? 7 : 0;
    return p && n > p && text_is_visible_ascii(s + p, n - p);
}

static int request_part(struct request *r, struct request_message *rm, const char *path,
                        const json_t *p, struct request_part *out, struct err *e)
{
    char field[256];
    if (!json_is_object(p))
        return bad(e, path, "expected an object, got %s", json_kind(p));
    if (check_keys(p, path, part_fields,
                   "a part has type, and text, or url, or media_type and data", e) < 0)
        return -1;
    const json_t *type = json_object_get(p, "type"), *text = json_object_get(p, "text"),
                 *url = json_object_get(p, "url"), *media = json_object_get(p, "media_type"),
                 *data = json_object_get(p, "data");
    snprintf(field, sizeof field, "%.96s.type", path);
    if (!type)
        return bad(e, field, "missing");
    int t = string_in(type, part_types);
    if (t < 0)
        return bad(e, field, "expected one of \"text\", \"image\"");
    if (t == 0) {
        const char *extra = url ? "url" : media ? "media_type" : data ? "data" : NULL;
        if (extra) {
            snprintf(field, sizeof field, "%.96s.%s", path, extra);
            return bad(e, field, "not allowed in a text part");
        }
        snprintf(field, sizeof field, "%.96s.text", path);
        if (!text)
            return bad(e, field, "missing");
        if (!json_is_string(text))
            return bad(e, field, "expected a string, got %s", json_kind(text));
        out->type = REQUEST_PART_TEXT;
        out->text = json_string_value(text);
        out->text_len = json_string_length(text);
        r->content_bytes += out->text_len;
        return 0;
    }
    /* providers take images from the user only */
    if (rm->role != REQUEST_USER)
        return bad(e, path, "an image is only allowed in a user turn (role is \"%s\")",
                   request_role_name(rm->role));
    if (text) {
        snprintf(field, sizeof field, "%.96s.text", path);
        return bad(e, field, "not allowed in an image part");
    }
    if (url && (media || data))
        return bad(e, path, "expected either url, or media_type and data, not both");
    if (url) {
        snprintf(field, sizeof field, "%.96s.url", path);
        if (!json_is_string(url))
            return bad(e, field, "expected a string, got %s", json_kind(url));
        if (!is_image_url(json_string_value(url), json_string_length(url)))
            return bad(e, field,
                       "expected an http:// or https:// URL, or a data:image/(png|jpeg|gif|webp)"
                       ";base64, URL with padded base64 data");
        out->type = REQUEST_PART_IMAGE_URL;
        out->text = json_string_value(url);
        out->text_len = json_string_length(url);
    } else {
        if (!media && !data)
            return bad(e, path, "an image part needs url, or media_type and data");
        snprintf(field, sizeof field, "%.96s.media_type", path);
        if (!media)
            return bad(e, field, "missing (required with data)");
        int m = string_in(media, media_types);
        if (m < 0)
            return bad(e, field,
                       "expected one of \"image/png\", \"image/jpeg\", \"image/gif\", "
                       "\"image/webp\"");
        snprintf(field, sizeof field, "%.96s.data", path);
        if (!data)
            return bad(e, field, "missing (required with media_type)");
        if (!json_is_string(data))
            return bad(e, field, "expected a string, got %s", json_kind(data));
        if (!is_base64(json_string_value(data), json_string_length(data)))
            return bad(e, field, "expected base64 (RFC 4648, padded), at least 4 characters");
        out->type = REQUEST_PART_IMAGE_DATA;
        out->text = json_string_value(data);
        out->text_len = json_string_length(data);
        out->media_type = media_types[m];
    }
    rm->has_image = 1;
    r->has_image = 1;
    r->nimages++;
    return 0;
}

static int request_content(struct request *r, struct request_message *rm, const char *path,
                           const json_t *content, struct err *e)
{
    if (json_is_string(content)) {
        rm->parts = calloc(1, sizeof *rm->parts);
        if (!rm->parts)
            return err_set(e, ERR_FATAL, "oom", "out of memory");
        rm->content = json_string_value(content);
        rm->content_len = json_string_length(content);
        rm->parts[0] = (struct request_part){REQUEST_PART_TEXT, rm->content, rm->content_len, NULL};
        rm->nparts = 1;
        r->content_bytes += rm->content_len;
        return 0;
    }
    if (!json_is_array(content))
        return bad(e, path, "expected a string or an array of parts, got %s", json_kind(content));
    size_t n = json_array_size(content);
    if (n == 0 || n > REQUEST_MAX_PARTS)
        return bad(e, path, "expected 1 to %d parts, got %zu", REQUEST_MAX_PARTS, n);
    rm->parts = calloc(n, sizeof *rm->parts);
    if (!rm->parts)
        return err_set(e, ERR_FATAL, "oom", "out of memory");
    for (size_t j = 0; j < n; j++) {
        char field[256];
        snprintf(field, sizeof field, "%.96s[%zu]", path, j);
        if (request_part(r, rm, field, json_array_get(content, j), &rm->parts[j], e) < 0)
            return -1;
        rm->nparts++;
    }
    return 0;
}

static int request_tool_calls(struct request *r, struct request_message *rm, const char *path,
                              const json_t *v, struct err *e)
{
    if (!json_is_array(v))
        return bad(e, path, "expected an array, got %s", json_kind(v));
    size_t n = json_array_size(v);
    if (n == 0 || n > REQUEST_MAX_TOOL_CALLS)
        return bad(e, path, "expected 1 to %d tool calls, got %zu", REQUEST_MAX_TOOL_CALLS, n);
    rm->tool_calls = calloc(n, sizeof *rm->tool_calls);
    if (!rm->tool_calls)
        return err_set(e, ERR_FATAL, "oom", "out of memory");
    for (size_t k = 0; k < n; k++) {
        const json_t *c = json_array_get(v, k), *id, *name, *args;
        struct request_tool_call *tc = &rm->tool_calls[k];
        char base[200], field[256];
        snprintf(base, sizeof base, "%.96s[%zu]", path, k);
        if (!json_is_object(c))
            return bad(e, base, "expected an object, got %s", json_kind(c));
        if (check_keys(c, base, tool_call_fields, "a tool call has id, name and arguments", e) < 0)
            return -1;
        snprintf(field, sizeof field, "%.96s.id", base);
        if (!(id = json_object_get(c, "id")))
            return bad(e, field, "missing");
        if (expect_pattern_string(id, field, 256, 0, &tc->id, e) < 0)
            return -1;
        snprintf(field, sizeof field, "%.96s.name", base);
        if (!(name = json_object_get(c, "name")))
            return bad(e, field, "missing");
        if (expect_name(name, field, &tc->name, e) < 0)
            return -1;
        snprintf(field, sizeof field, "%.96s.arguments", base);
        if (!(args = json_object_get(c, "arguments")))
            return bad(e, field, "missing");
        if (!json_is_object(args))
            return bad(e, field, "expected an object, got %s", json_kind(args));
        tc->arguments = (json_t *)args;
        r->content_bytes += compact_len(args);
        rm->ntool_calls++;
    }
    return 0;
}

/* The name of the call `id` answers: the latest earlier assistant turn
 * that made a call of that id (ids may repeat across turns: Gemini gives
 * none, and its adapter numbers them per reply). NULL when none did. */
static const char *request_call_name(const struct request *r, size_t before, const char *id)
{
    for (size_t i = before; i-- > 0;) {
        const struct request_message *m = &r->messages[i];
        for (size_t k = 0; k < m->ntool_calls; k++)
            if (strcmp(m->tool_calls[k].id, id) == 0)
                return m->tool_calls[k].name;
    }
    return NULL;
}

static int request_message(struct request *r, size_t i, const json_t *m, struct err *e)
{
    char path[64], field[96];
    snprintf(path, sizeof path, "messages[%zu]", i);
    if (!json_is_object(m))
        return bad(e, path, "expected an object, got %s", json_kind(m));
    if (check_keys(m, path, message_fields,
                   "a message has role, content, tool_calls and tool_call_id", e) < 0)
        return -1;
    const json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content"),
                 *calls = json_object_get(m, "tool_calls"),
                 *call_id = json_object_get(m, "tool_call_id");
    snprintf(field, sizeof field, "%s.role", path);
    if (!role)
        return bad(e, field, "missing");
    int found = string_in(role, role_names);
    if (found < 0)
        return bad(e, field, "expected one of \"system\", \"user\", \"assistant\", \"tool\"");
    /* counted now so that request_free releases what the turn allocates */
    struct request_message *rm = &r->messages[r->nmessages++];
    rm->role = (enum request_role)found;
    snprintf(field, sizeof field, "%s.content", path);
    if (content) {
        if (request_content(r, rm, field, content, e) < 0)
            return -1;
    } else if (!(calls && rm->role == REQUEST_ASSISTANT)) {
        return bad(e, field, "missing");
    }
    snprintf(field, sizeof field, "%s.tool_calls", path);
    if (calls && rm->role != REQUEST_ASSISTANT)
        return bad(e, field, "only allowed in an assistant turn");
    if (calls && request_tool_calls(r, rm, field, calls, e) < 0)
        return -1;
    snprintf(field, sizeof field, "%s.tool_call_id", path);
    if (rm->role != REQUEST_TOOL) {
        if (call_id)
            return bad(e, field, "only allowed in a tool turn");
        return 0;
    }
    if (!call_id)
        return bad(e, field, "missing (required in a tool turn)");
    if (expect_pattern_string(call_id, field, 256, 0, &rm->tool_call_id, e) < 0)
        return -1;
    if (!(rm->tool_name = request_call_name(r, i, rm->tool_call_id)))
        return bad(e, field, "answers no tool call of an earlier assistant turn");
    return 0;
}

static int request_messages(struct request *r, const json_t *v, struct err *e)
{
    if (!json_is_array(v))
        return bad(e, "messages", "expected an array, got %s", json_kind(v));
    size_t n = json_array_size(v);
    if (n == 0 || n > REQUEST_MAX_MESSAGES)
        return bad(e, "messages", "%s", "expected 1 to 1000 messages");
    r->messages = calloc(n, sizeof *r->messages);
    if (!r->messages)
        return err_set(e, ERR_FATAL, "oom", "out of memory");
    for (size_t i = 0; i < n; i++)
        if (request_message(r, i, json_array_get(v, i), e) < 0)
            return -1;
    return 0;
}

static int request_stop(struct request *r, const json_t *v, struct err *e)
{
    if (json_is_string(v)) {
        if (json_string_length(v) == 0)
            return bad(e, "stop", "expected a non-empty string");
        r->stop[0] = json_string_value(v);
        r->stop_len[0] = json_string_length(v);
        r->nstop = 1;
        return 0;
    }
    if (!json_is_array(v))
        return bad(e, "stop", "expected a string or an array of strings, got %s", json_kind(v));
    size_t n = json_array_size(v);
    if (n == 0 || n > REQUEST_MAX_STOP)
        return bad(e, "stop", "expected 1 to %d strings, got %zu", REQUEST_MAX_STOP, n);
    for (size_t k = 0; k < n; k++) {
        const json_t *s = json_array_get(v, k);
        char field[32];
        snprintf(field, sizeof field, "stop[%zu]", k);
        if (!json_is_string(s))
            return bad(e, field, "expected a string, got %s", json_kind(s));
        if (json_string_length(s) == 0)
            return bad(e, field, "expected a non-empty string");
        r->stop[k] = json_string_value(s);
        r->stop_len[k] = json_string_length(s);
        r->nstop++;
    }
    return 0;
}

static int request_response_format(struct request *r, const json_t *v, struct err *e)
{
    const char *path = "response_format";
    if (!json_is_object(v))
        return bad(e, path, "expected an object, got %s", json_kind(v));
    if (check_keys(v, path, format_fields, "response_format has type and json_schema", e) < 0)
        return -1;
    const json_t *type = json_object_get(v, "type"), *js = json_object_get(v, "json_schema");
    if (!type)
        return bad(e, "response_format.type", "missing");
    int t = string_in(type, format_types);
    if (t < 0)
        return bad(e, "response_format.type",
                   "expected one of \"text\", \"json_object\", \"json_schema\"");
    r->format = (enum request_format)t;
    if (t != REQUEST_FORMAT_JSON_SCHEMA) {
        if (js)
            return bad(e, "response_format.json_schema",
                       "only allowed when type is \"json_schema\"");
        return 0;
    }
    path = "response_format.json_schema";
    if (!js)
        return bad(e, path, "missing (required when type is \"json_schema\")");
    if (!json_is_object(js))
        return bad(e, path, "expected an object, got %s", json_kind(js));
    if (check_keys(js, path, json_schema_fields,
                   "json_schema has name, description, schema and strict", e) < 0)
        return -1;
    const json_t *name = json_object_get(js, "name"), *desc = json_object_get(js, "description"),
                 *schema = json_object_get(js, "schema"), *strict = json_object_get(js, "strict");
    if (!name)
        return bad(e, "response_format.json_schema.name", "missing");
    if (expect_name(name, "response_format.json_schema.name", &r->schema_name, e) < 0)
        return -1;
    if (desc && !json_is_string(desc))
        return bad(e, "response_format.json_schema.description", "expected a string, got %s",
                   json_kind(desc));
    r->schema_description = desc ? json_string_value(desc) : NULL;
    if (!schema)
        return bad(e, "response_format.json_schema.schema", "missing");
    if (!json_is_object(schema))
        return bad(e, "response_format.json_schema.schema", "expected an object, got %s",
                   json_kind(schema));
    r->schema = (json_t *)schema;
    if (strict && !json_is_boolean(strict))
        return bad(e, "response_format.json_schema.strict", "expected a boolean, got %s",
                   json_kind(strict));
    r->schema_strict = json_is_true(strict);
    r->content_bytes += compact_len(js);
    return 0;
}

static int request_tools(struct request *r, const json_t *v, struct err *e)
{
    if (!json_is_array(v))
        return bad(e, "tools", "expected an array, got %s", json_kind(v));
    size_t n = json_array_size(v);
    if (n == 0 || n > REQUEST_MAX_TOOLS)
        return bad(e, "tools", "expected 1 to %d tools, got %zu", REQUEST_MAX_TOOLS, n);
    r->tools = calloc(n, sizeof *r->tools);
    if (!r->tools)
        return err_set(e, ERR_FATAL, "oom", "out of memory");
    for (size_t k = 0; k < n; k++) {
        const json_t *t = json_array_get(v, k), *name, *desc, *params;
        struct request_tool *rt = &r->tools[k];
        char base[32], field[64];
        snprintf(base, sizeof base, "tools[%zu]", k);
        if (!json_is_object(t))
            return bad(e, base, "expected an object, got %s", json_kind(t));
        if (check_keys(t, base, tool_fields, "a tool has name, description and parameters", e) < 0)
            return -1;
        snprintf(field, sizeof field, "%.96s.name", base);
        if (!(name = json_object_get(t, "name")))
            return bad(e, field, "missing");
        if (expect_name(name, field, &rt->name, e) < 0)
            return -1;
        /* JSON Schema cannot say that a property of the items is unique */
        for (size_t j = 0; j < k; j++)
            if (r->tools[j].name && strcmp(r->tools[j].name, rt->name) == 0)
                return bad(e, field, "\"%s\" is also the name of tools[%zu] (names must be unique)",
                           rt->name, j);
        snprintf(field, sizeof field, "%s.description", base);
        if ((desc = json_object_get(t, "description")) && !json_is_string(desc))
            return bad(e, field, "expected a string, got %s", json_kind(desc));
        rt->description = desc ? json_string_value(desc) : NULL;
        snprintf(field, sizeof field, "%s.parameters", base);
        if ((params = json_object_get(t, "parameters")) && !json_is_object(params))
            return bad(e, field, "expected an object, got %s", json_kind(params));
        rt->parameters = (json_t *)params;
        r->ntools++;
    }
    r->content_bytes += compact_len(v);
    return 0;
}

static int request_tool_choice(struct request *r, const json_t *v, struct err *e)
{
    if (!r->ntools)
        return bad(e, "tool_choice", "only allowed with tools");
    int c = string_in(v, tool_choice_names);
    if (c >= 0) {
        r->tool_choice = (enum request_tool_choice)c;
    } else if (json_is_object(v)) {
        if (check_keys(v, "tool_choice", tool_choice_fields, "tool_choice has name", e) < 0)
            return -1;
        const json_t *name = json_object_get(v, "name");
        if (!name)
            return bad(e, "tool_choice.name", "missing");
        if (expect_name(name, "tool_choice.name", &r->tool_choice_name, e) < 0)
            return -1;
        int known = 0;
        for (size_t k = 0; k < r->ntools && !known; k++)
            known = strcmp(r->tools[k].name, r->tool_choice_name) == 0;
        if (!known)
            return bad(e, "tool_choice.name", "\"%s\" is not the name of one of tools",
                       r->tool_choice_name);
        r->tool_choice = REQUEST_TOOL_CHOICE_NAMED;
    } else {
        return bad(e, "tool_choice",
                   "expected \"auto\", \"none\", \"required\" or {\"name\": TOOL}, got %s",
                   json_kind(v));
    }
    r->content_bytes += compact_len(v);
    return 0;
}

static int request_model(struct request *r, const json_t *v, struct err *e)
{
    if (json_is_string(v)) {
        if (expect_pattern_string(v, "model", 128, 0, &r->models[0], e) < 0)
            return -1;
        r->nmodels = 1;
        return 0;
    }
    if (!json_is_array(v))
        return bad(e, "model", "expected a string or an array of strings, got %s", json_kind(v));
    size_t n = json_array_size(v);
    if (n == 0 || n > REQUEST_MAX_MODELS)
        return bad(e, "model", "expected 1 to %d model names, got %zu", REQUEST_MAX_MODELS, n);
    for (size_t k = 0; k < n; k++) {
        char field[32];
        snprintf(field, sizeof field, "model[%zu]", k);
        if (expect_pattern_string(json_array_get(v, k), field, 128, 0, &r->models[k], e) < 0)
            return -1;
        for (size_t j = 0; j < k; j++)
            if (strcmp(r->models[j], r->models[k]) == 0)
                return bad(e, field, "\"%s\" is listed twice (as model[%zu])", r->models[k], j);
        r->nmodels++;
    }
    return 0;
}

static int request_reasoning(struct request *r, const json_t *v, struct err *e)
{
    if (!json_is_object(v))
        return bad(e, "reasoning", "expected an object, got %s", json_kind(v));
    if (check_keys(v, "reasoning", reasoning_fields, "reasoning has effort or budget_tokens", e) <
        0)
        return -1;
    const json_t *effort = json_object_get(v, "effort"),
                 *budget = json_object_get(v, "budget_tokens");
    if (!effort == !budget)
        return bad(e, "reasoning", "expected exactly one of effort and budget_tokens, got %s",
                   effort ? "both" : "neither");
    if (effort) {
        int k = string_in(effort, effort_names);
        if (k <= REQUEST_EFFORT_NONE)
            return bad(e, "reasoning.effort", "expected one of \"low\", \"medium\", \"high\"");
        r->reasoning_effort = (enum request_effort)k;
        r->reasoning_budget = request_effort_budget(r->reasoning_effort);
        return 0;
    }
    int64_t n = 0;
    if (expect_integer(budget, "reasoning.budget_tokens", 1024, 1000000, &n, e) < 0)
        return -1;
    r->reasoning_budget = (uint32_t)n;
    r->reasoning_effort = request_budget_effort(r->reasoning_budget);
    return 0;
}

static int request_fields_check(struct request *r, struct err *e)
{
    const json_t *root = r->root, *v;
    const char *key;
    json_t *val;
    int64_t n = 0;

    /* unknown fields first: a misspelt "max_token" must not silently fall
     * back to a default that spends money */
    json_object_foreach(r->root, key, val)
    {
        int known = 0;
        for (size_t i = 0; request_fields[i] && !known; i++)
            known = strcmp(key, request_fields[i]) == 0;
        if (!known) {
            const char *near = text_nearest(key, request_fields);
            char field[80];
            snprintf(field, sizeof field, "%.64s", key);
            if (near)
                return bad(e, field, "unknown field (did you mean \"%s\"?)", near);
            return bad(e, field, "%s", "unknown field");
        }
    }
    if (!(v = json_object_get(root, "id")))
        return bad(e, "id", "%s", "missing (required)");
    if (expect_pattern_string(v, "id", 256, 0, &r->id, e) < 0)
        return -1;
    if (!(v = json_object_get(root, "task")))
        return bad(e, "task", "%s", "missing (required)");
    if (expect_pattern_string(v, "task", 64, 1, &r->task, e) < 0)
        return -1;
    if (!(v = json_object_get(root, "messages")))
        return bad(e, "messages", "%s", "missing (required)");
    if (request_messages(r, v, e) < 0)
        return -1;
    if ((v = json_object_get(root, "tenant")) &&
        expect_pattern_string(v, "tenant", 128, 0, &r->tenant, e) < 0)
        return -1;
    if ((v = json_object_get(root, "budget_usd"))) {
        if (!json_is_number(v))
            return bad(e, "budget_usd", "expected a number, got %s", json_kind(v));
        double usd = json_number_value(v);
        if (!(usd > 0 && usd <= 1000))
            return bad(e, "budget_usd", "%s", "expected more than 0 and at most 1000");
        /* nearest nano-USD: a double holds 15 significant digits, more than
         * a budget of at most 1000 USD to the nano needs */
        r->has_budget = 1;
        r->budget_nusd = (uint64_t)(usd * 1e9 + 0.5);
    }
    if ((v = json_object_get(root, "system"))) {
        if (!json_is_string(v))
            return bad(e, "system", "expected a string, got %s", json_kind(v));
        r->system = json_string_value(v);
        r->system_len = json_string_length(v);
        r->content_bytes += r->system_len;
    }
    if ((v = json_object_get(root, "max_tokens"))) {
        if (expect_integer(v, "max_tokens", 1, 1000000, &n, e) < 0)
            return -1;
        r->max_tokens = (uint32_t)n;
    }
    if ((v = json_object_get(root, "temperature"))) {
        if (!json_is_number(v))
            return bad(e, "temperature", "expected a number, got %s", json_kind(v));
        double t = json_number_value(v);
        if (!(t >= 0 && t <= 2))
            return bad(e, "temperature", "%s", "expected a number from 0 to 2");
        r->has_temperature = 1;
        r->temperature = t;
    }
    if ((v = json_object_get(root, "deadline_ms"))) {
        if (expect_integer(v, "deadline_ms", 0, 253402300799999, &r->deadline_ms, e) < 0)
            return -1;
    }
    if ((v = json_object_get(root, "metadata"))) {
        if (!json_is_object(v))
            return bad(e, "metadata", "expected an object, got %s", json_kind(v));
        r->metadata = (json_t *)v;
    }
    if ((v = json_object_get(root, "top_p"))) {
        if (!json_is_number(v))
            return bad(e, "top_p", "expected a number, got %s", json_kind(v));
        double p = json_number_value(v);
        if (!(p >= 0 && p <= 1))
            return bad(e, "top_p", "%s", "expected a number from 0 to 1");
        r->has_top_p = 1;
        r->top_p = p;
    }
    if ((v = json_object_get(root, "stop")) && request_stop(r, v, e) < 0)
        return -1;
    if ((v = json_object_get(root, "seed"))) {
        if (expect_integer(v, "seed", 0, 2147483647, &r->seed, e) < 0)
            return -1;
        r->has_seed = 1;
    }
    if ((v = json_object_get(root, "response_format")) && request_response_format(r, v, e) < 0)
        return -1;
    if ((v = json_object_get(root, "tools")) && request_tools(r, v, e) < 0)
        return -1;
    if ((v = json_object_get(root, "tool_choice")) && request_tool_choice(r, v, e) < 0)
        return -1;
    if ((v = json_object_get(root, "model")) && request_model(r, v, e) < 0)
        return -1;
    if ((v = json_object_get(root, "reasoning")) && request_reasoning(r, v, e) < 0)
        return -1;
    return 0;
}

int request_decode(const char *data, size_t len, size_t max_bytes, struct request **out,
                   struct err *e)
{
    *out = NULL;
    if (len > max_bytes)
        return err_set(e, ERR_INPUT, "too_large", "message is %zu bytes; the limit is %zu", len,
                       max_bytes);
    if (!request_depth_ok(data, len))
        return err_set(e, ERR_INPUT, "too_deep", "nested deeper than %d levels", REQUEST_MAX_DEPTH);
    json_error_t jerr;
    json_t *root =
        json_loadb(data, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_invalid_utf8)
            return err_set(e, ERR_INPUT, "invalid_utf8", "not valid UTF-8 at byte %d",
                           jerr.position);
        /* jansson reports an escape that is no character ("\ud800", "\udc00",
         * a high surrogate not followed by a low one) as a syntax error
         * whose text starts "invalid Unicode"; the contract calls it
         * invalid_utf8: it cannot be written as UTF-8 */
        if (json_error_code(&jerr) == json_error_invalid_syntax &&
            strncmp(jerr.text, "invalid Unicode", 15) == 0)
            return err_set(e, ERR_INPUT, "invalid_utf8",
                           "not valid UTF-8: an escape that is no Unicode character (a lone "
                           "surrogate) at line %d column %d",
                           jerr.line, jerr.column);
        return err_set(e, ERR_INPUT, "invalid_json", "not valid JSON: %s at line %d column %d",
                       jerr.text, jerr.line, jerr.column);
    }
    if (!json_is_object(root)) {
        err_set(e, ERR_INPUT, "invalid_request", "expected a JSON object, got %s", json_kind(root));
        json_decref(root);
        return -1;
    }
    struct request *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(root);
        return err_set(e, ERR_FATAL, "oom", "out of memory");
    }
    r->root = root;
    r->deadline_ms = -1;
    if (request_fields_check(r, e) < 0) {
        request_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

/* Copies of the request's strings, back to back: a first pass (base
 * NULL) only counts their bytes, a second copies them. */
struct request_text {
    char *base;
    size_t used;
};

static const char *request_keep(struct request_text *t, const char *s, size_t len)
{
    if (!s)
        return NULL;
    if (!t->base) {
        t->used += len + 1;
        return s;
    }
    char *to = t->base + t->used;
    memcpy(to, s, len);
    to[len] = '\0';
    t->used += len + 1;
    return to;
}

static const char *request_keep_str(struct request_text *t, const char *s)
{
    return request_keep(t, s, s ? strlen(s) : 0);
}

/* Re-points every string of r at t (see request_compact). */
static void request_keep_all(struct request *r, struct request_text *t)
{
    r->id = request_keep_str(t, r->id);
    r->task = request_keep_str(t, r->task);
    r->tenant = request_keep_str(t, r->tenant);
    r->system = request_keep(t, r->system, r->system_len);
    for (size_t k = 0; k < r->nstop; k++)
        r->stop[k] = request_keep(t, r->stop[k], r->stop_len[k]);
    r->schema_name = request_keep_str(t, r->schema_name);
    r->schema_description = request_keep_str(t, r->schema_description);
    r->tool_choice_name = request_keep_str(t, r->tool_choice_name);
    for (size_t k = 0; k < r->nmodels; k++)
        r->models[k] = request_keep_str(t, r->models[k]);
    for (size_t k = 0; k < r->ntools; k++) {
        r->tools[k].name = request_keep_str(t, r->tools[k].name);
        r->tools[k].description = request_keep_str(t, r->tools[k].description);
    }
    for (size_t i = 0; i < r->nmessages; i++) {
        struct request_message *m = &r->messages[i];
        const char *content = m->content;
        m->content = request_keep(t, m->content, m->content_len);
        for (size_t k = 0; k < m->nparts; k++) {
            struct request_part *p = &m->parts[k];
            /* a string content is its own one part: one copy for both */
            if (content && p->text == content)
                p->text = m->content;
            else
                p->text = request_keep(t, p->text, p->text_len);
            /* media_type names one of the static media_types */
        }
        for (size_t k = 0; k < m->ntool_calls; k++) {
            m->tool_calls[k].id = request_keep_str(t, m->tool_calls[k].id);
            m->tool_calls[k].name = request_keep_str(t, m->tool_calls[k].name);
        }
        m->tool_call_id = request_keep_str(t, m->tool_call_id);
        /* the name of a call an earlier turn made: that turn's copy */
        if (t->base && m->tool_name)
            m->tool_name = request_call_name(r, i, m->tool_call_id);
    }
}

static void request_hold(json_t *v, int hold)
{
    if (hold)
        json_incref(v);
    else
        json_decref(v);
}

/* The JSON values the request exposes, referenced (hold) or released. */
static void request_hold_values(struct request *r, int hold)
{
    for (size_t i = 0; i < r->nmessages; i++)
        for (size_t k = 0; k < r->messages[i].ntool_calls; k++)
            request_hold(r->messages[i].tool_calls[k].arguments, hold);
    for (size_t k = 0; k < r->ntools; k++)
        request_hold(r->tools[k].parameters, hold);
    request_hold(r->schema, hold);
    request_hold(r->metadata, hold);
}

int request_compact(struct request *r)
{
    if (!r->root)
        return 0;
    struct request_text t = {0};
    request_keep_all(r, &t);
    if (!(t.base = malloc(t.used ? t.used : 1)))
        return -1;
    t.used = 0;
    request_keep_all(r, &t);
    r->text = t.base;
    request_hold_values(r, 1);
    json_decref(r->root);
    r->root = NULL;
    return 0;
}

void request_free(struct request *req)
{
    if (!req)
        return;
    if (!req->root)
        request_hold_values(req, 0); /* compacted: the values it kept */
    for (size_t i = 0; i < req->nmessages; i++) {
        free(req->messages[i].parts);
        free(req->messages[i].tool_calls);
    }
    free(req->messages);
    free(req->tools);
    json_decref(req->root);
    free(req->text);
    free(req);
}

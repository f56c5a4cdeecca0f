/*
 * request: bytes -> struct request, or a precise reason why not. The rules
 * here and in schemas/request.schema.json must never disagree: the tests
 * run every example in schemas/examples/request/ through both.
 */
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

static const char *const request_fields[] = {"id",          "task",     "budget_usd", "tenant",
                                             "messages",    "system",   "max_tokens", "temperature",
                                             "deadline_ms", "metadata", NULL};
static const char *const role_names[] = {"system", "user", "assistant", NULL};

const char *request_role_name(enum request_role role)
{
    return (unsigned)role < 3 ? role_names[role] : "unknown";
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

static int bad(struct err *e, const char *field, const char *fmt, const char *arg)
{
    char what[256];
    snprintf(what, sizeof what, fmt, arg);
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
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(v, i);
        char field[64];
        snprintf(field, sizeof field, "messages[%zu]", i);
        if (!json_is_object(m))
            return bad(e, field, "expected an object, got %s", json_kind(m));
        const char *key;
        const json_t *val;
        json_object_foreach((json_t *)m, key, val)
        {
            if (strcmp(key, "role") != 0 && strcmp(key, "content") != 0) {
                snprintf(field, sizeof field, "messages[%zu].%.32s", i, key);
                return bad(e, field, "%s", "unknown field (a message has role and content)");
            }
        }
        const json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        snprintf(field, sizeof field, "messages[%zu].role", i);
        if (!role)
            return bad(e, field, "%s", "missing");
        /* compared with the length: "user\u0000x" is not "user" */
        int found = -1;
        for (int k = 0; role_names[k] && json_is_string(role); k++)
            if (json_string_length(role) == strlen(role_names[k]) &&
                memcmp(json_string_value(role), role_names[k], strlen(role_names[k])) == 0)
                found = k;
        if (found < 0)
            return bad(e, field, "%s", "expected one of \"system\", \"user\", \"assistant\"");
        snprintf(field, sizeof field, "messages[%zu].content", i);
        if (!content)
            return bad(e, field, "%s", "missing");
        if (!json_is_string(content))
            return bad(e, field, "expected a string, got %s", json_kind(content));
        struct request_message *rm = &r->messages[r->nmessages++];
        rm->role = (enum request_role)found;
        rm->content = json_string_value(content);
        rm->content_len = json_string_length(content);
        r->content_bytes += rm->content_len;
    }
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

void request_free(struct request *req)
{
    if (!req)
        return;
    json_decref(req->root);
    free(req->messages);
    free(req);
}

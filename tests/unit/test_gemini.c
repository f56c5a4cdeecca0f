/*
 * gemini: the Gemini adapter against real-shaped exchanges.
 * tests/data/providers/gemini/reply/<case>/{status,body,expected} (the
 * same files test_providers.c reads and checks, outcome line included;
 * here expected.tool_calls and expected.retry_ms), build/<case>/ (old-style requests the decoder
 * reads today), full.txt (the request with every field, built by hand and checked field by field)
 * and retry_delay.txt (gemini_retry_delay_ms).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "providers/adapter.h"
#include "providers/provider.h"

#define GEMINI_DIR "tests/data/providers/gemini/"
/* shaped like a real key, as test_providers.c's: build cases expect it */
#define TEST_KEY "sk-proj-T3stK3y0123456789abcdefXYZ"
#define GOOGLE_KEY "AIzaSyD-T3stK3y0123456789abcdefXYZ012"

static const struct provider_ops *ops(void)
{
    return provider_ops_for(PROVIDER_GEMINI);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t list_dirs(const char *dir, char **names, size_t max)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) && n < max)
        if (de->d_name[0] != '.')
            names[n++] = strdup(de->d_name);
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    return n;
}

static char *read_in(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%.500s/%.100s", dir, name);
    return check_read_file(path, len);
}

static size_t run_replies(void)
{
    char dir[] = GEMINI_DIR "reply", *names[128];
    size_t n = list_dirs(dir, names, 128), with_calls = 0, with_delay = 0;
    for (size_t i = 0; i < n; i++) {
        char cdir[512];
        snprintf(cdir, sizeof cdir, "%.250s/%.250s", dir, names[i]);
        size_t len = 0;
        char *status = read_in(cdir, "status", NULL), *body = read_in(cdir, "body", &len);
        char *want_calls = read_in(cdir, "expected.tool_calls", NULL);
        char *want_delay = read_in(cdir, "expected.retry_ms", NULL);
        struct provider_reply r = {0};
        struct err e = {0};
        int rc = ops()->parse(status ? strtol(status, NULL, 10) : 0, body ? body : "", len, &r, &e);
        /* the outcome line (expected) is test_providers.c's, for every type */
        ok(rc == 0 || (strlen(e.msg) > 0 && r.text == NULL && r.tool_calls == NULL),
           "%s: an error says what happened and owns nothing", cdir);
        /* tool calls: exactly the expected ones, or none at all */
        json_t *want = want_calls ? json_loads(want_calls, 0, NULL) : NULL;
        if (want_calls)
            with_calls++;
        char *dumped = r.tool_calls ? json_dumps(r.tool_calls, JSON_COMPACT) : NULL;
        ok(want_calls ? json_equal(want, r.tool_calls) : r.tool_calls == NULL, "%s: tool calls %s",
           cdir, dumped ? dumped : "(none)");
        free(dumped);
        json_decref(want);
        if (want_delay) {
            with_delay++;
            int64_t ms = gemini_retry_delay_ms(body ? body : "", len);
            ok(ms == strtoll(want_delay, NULL, 10), "%s: retry delay %lld ms", cdir, (long long)ms);
        }
        provider_reply_release(&r);
        free(status);
        free(body);
        free(want_calls);
        free(want_delay);
        free(names[i]);
    }
    ok(with_calls >= 2 && with_delay >= 5, "reply cases with tool calls (%zu) and delays (%zu)",
       with_calls, with_delay);
    return n;
}

/* "key value" lines of the call file */
static const char *call_get(const char *call, const char *key, char *buf, size_t size)
{
    size_t klen = strlen(key);
    for (const char *p = call; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ') {
            size_t n = strcspn(p + klen + 1, "\n");
            snprintf(buf, size, "%.*s", (int)n, p + klen + 1);
            return buf;
        }
    }
    return NULL;
}

static size_t run_builds(void)
{
    char dir[] = GEMINI_DIR "build", *names[64];
    size_t n = list_dirs(dir, names, 64);
    for (size_t i = 0; i < n; i++) {
        char cdir[512];
        snprintf(cdir, sizeof cdir, "%.250s/%.250s", dir, names[i]);
        size_t len;
        char *json = read_in(cdir, "request.json", &len), *call_text = read_in(cdir, "call", NULL);
        struct request *req = NULL;
        struct err e = {0};
        if (!ok(json && call_text && request_decode(json, len, 1 << 20, &req, &e) == 0,
                "%s: request decodes", cdir)) {
            free(json);
            free(call_text);
            free(names[i]);
            continue;
        }
        char model[128], max[32], base[256], key[128];
        const char *api_key = call_get(call_text, "api_key", key, sizeof key);
        if (!api_key)
            api_key = TEST_KEY;
        else if (strcmp(api_key, "-") == 0)
            api_key = "";
        struct provider_call call = {
            .req = req,
            .base_url = call_get(call_text, "base_url", base, sizeof base),
            .model = call_get(call_text, "model", model, sizeof model),
            .max_tokens =
                (uint32_t)strtoul(call_get(call_text, "max_tokens", max, sizeof max), NULL, 10),
            .api_key = api_key};
        struct provider_http http = {0};
        int rc = ops()->build(&call, &http, &e);
        char *want_error = read_in(cdir, "expected.error", NULL);
        if (want_error) {
            char got[128];
            snprintf(got, sizeof got, "%s %s\n", err_kind_name(e.kind), e.code);
            ok(rc < 0 && strcmp(got, want_error) == 0 && http.url == NULL && http.body == NULL &&
                   http.nheaders == 0,
               "%s: refused as %s, owning nothing (got %s)", cdir, want_error, got);
        } else {
            char *want_url = read_in(cdir, "expected.url", NULL);
            char *want_headers = read_in(cdir, "expected.headers", NULL);
            char *want_body = read_in(cdir, "expected.json", NULL);
            ok(rc == 0, "%s: builds", cdir);
            char url[600];
            snprintf(url, sizeof url, "%s\n", http.url ? http.url : "");
            ok(want_url && strcmp(url, want_url) == 0, "%s: url %s", cdir, url);
            char headers[2048] = "";
            for (size_t h = 0; h < http.nheaders; h++) {
                strncat(headers, http.headers[h], sizeof headers - strlen(headers) - 2);
                strcat(headers, "\n");
            }
            ok(want_headers && strcmp(headers, want_headers) == 0, "%s: headers\n%s", cdir,
               headers);
            ok(!http.url || !strstr(http.url, "key="), "%s: no key in the URL", cdir);
            json_t *got =
                http.body ? json_loadb(http.body, http.body_len, JSON_ALLOW_NUL, NULL) : NULL;
            json_t *want = want_body ? json_loads(want_body, JSON_ALLOW_NUL, NULL) : NULL;
            ok(got && want && json_equal(got, want), "%s: body %s", cdir,
               http.body ? http.body : "(none)");
            json_decref(got);
            json_decref(want);
            free(want_url);
            free(want_headers);
            free(want_body);
        }
        free(want_error);
        provider_http_release(&http);
        request_free(req);
        free(json);
        free(call_text);
        free(names[i]);
    }
    return n;
}

/* The request with every field, by hand: the decoder of the new fields
 * lands in parallel, and struct request is the contract. Borrowed JSON
 * lives in `owned` until the test ends. */
struct full {
    struct request req;
    struct request_message msgs[6];
    struct request_part user_parts[3];
    struct request_tool_call calls[2];
    struct request_tool tools[2];
    json_t *owned[8];
    size_t nowned;
};

static json_t *keep(struct full *f, const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    ok(j != NULL, "fixture JSON parses: %s", text);
    f->owned[f->nowned++] = j;
    return j;
}

static void text_message(struct request_message *m, enum request_role role, const char *text)
{
    m->role = role;
    m->content = text;
    m->content_len = strlen(text);
}

static void full_init(struct full *f)
{
    memset(f, 0, sizeof *f);
    struct request *r = &f->req;
    r->id = "full";
    r->task = "extract";
    r->system = "You are a careful assistant.";
    r->system_len = strlen(r->system);
    text_message(&f->msgs[0], REQUEST_SYSTEM, "Follow the house style.");
    f->user_parts[0] = (struct request_part){
        REQUEST_PART_TEXT, "Describe the image, then check the weather.", 0, NULL};
    f->user_parts[0].text_len = strlen(f->user_parts[0].text);
    f->user_parts[1] =
        (struct request_part){REQUEST_PART_IMAGE_DATA, "iVBORw0KGgo=", 12, "image/png"};
    f->user_parts[2] = (struct request_part){REQUEST_PART_IMAGE_URL,
                                             "data:image/jpeg;base64,/9j/4AAQSkZJRg==", 0, NULL};
    f->user_parts[2].text_len = strlen(f->user_parts[2].text);
    f->msgs[1] = (struct request_message){
        .role = REQUEST_USER, .parts = f->user_parts, .nparts = 3, .has_image = 1};
    f->calls[0] = (struct request_tool_call){"call_a", "get_weather",
                                             keep(f, "{\"city\":\"Oslo\",\"unit\":\"c\"}")};
    f->calls[1] = (struct request_tool_call){"call_b", "get_time", keep(f, "{}")};
    text_message(&f->msgs[2], REQUEST_ASSISTANT, "Checking.");
    f->msgs[2].tool_calls = f->calls;
    f->msgs[2].ntool_calls = 2;
    text_message(&f->msgs[3], REQUEST_TOOL, "{\"temp_c\": 4, \"sky\": \"snow\"}");
    f->msgs[3].tool_call_id = "call_a";
    f->msgs[3].tool_name = "get_weather";
    text_message(&f->msgs[4], REQUEST_TOOL, "09:30");
    f->msgs[4].tool_call_id = "call_b";
    f->msgs[4].tool_name = "get_time";
    text_message(&f->msgs[5], REQUEST_USER, "Thanks. Answer as JSON.");
    r->messages = f->msgs;
    r->nmessages = 6;
    r->max_tokens = 8192;
    r->has_temperature = 1;
    r->temperature = 0.7;
    r->has_top_p = 1;
    r->top_p = 0.9;
    r->stop[0] = "END";
    r->stop_len[0] = 3;
    r->stop[1] = "STOP HERE";
    r->stop_len[1] = 9;
    r->nstop = 2;
    r->has_seed = 1;
    r->seed = 42;
    r->format = REQUEST_FORMAT_JSON_SCHEMA;
    r->schema_name = "weather_summary";
    r->schema_strict = 1;
    r->schema = keep(f, "{\"type\":\"object\",\"properties\":{\"summary\":{\"type\":\"string\"},"
                        "\"temp_c\":{\"type\":\"number\"}},\"required\":[\"summary\",\"temp_c\"],"
                        "\"additionalProperties\":false}");
    f->tools[0] = (struct request_tool){
        "get_weather", "Current weather for a city.",
        keep(f, "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
                "\"unit\":{\"enum\":[\"c\",\"f\"]}},\"required\":[\"city\"]}")};
    f->tools[1] = (struct request_tool){"get_time", NULL, NULL};
    r->tools = f->tools;
    r->ntools = 2;
    r->tool_choice = REQUEST_TOOL_CHOICE_NAMED;
    r->tool_choice_name = "get_weather";
    r->has_image = 1;
    r->nimages = 2;
    r->reasoning_effort = REQUEST_EFFORT_MEDIUM;
    r->reasoning_budget = 4096;
    r->deadline_ms = -1;
}

static void full_release(struct full *f)
{
    for (size_t i = 0; i < f->nowned; i++)
        json_decref(f->owned[i]);
}

static struct provider_call full_call(const struct request *req)
{
    return (struct provider_call){.req = req,
                                  .base_url = "https://generativelanguage.googleapis.com",
                                  .model = "gemini-2.5-pro",
                                  .max_tokens = 8192,
                                  .api_key = GOOGLE_KEY,
                                  /* the router lowered 4096 to fit: the call's budget is sent */
                                  .reasoning_budget = 2048};
}

/* The value at a path like "contents[2].parts[0]" ("$" = the root);
 * borrowed; NULL when absent. */
static json_t *at_path(json_t *root, const char *path)
{
    json_t *cur = root;
    const char *p = path;
    if (strcmp(p, "$") == 0)
        return root;
    while (cur && *p) {
        if (*p == '[') {
            char *end;
            size_t index = strtoul(p + 1, &end, 10);
            cur = json_array_get(cur, index);
            p = *end == ']' ? end + 1 : end;
        } else {
            if (*p == '.')
                p++;
            size_t n = strcspn(p, ".[");
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)n, p);
            cur = json_object_get(cur, key);
            p += n;
        }
    }
    return cur;
}

static void check_full_line(char *line, int lineno, void *ctx)
{
    json_t *body = ctx;
    char *space = strchr(line, ' ');
    if (!ok(space != NULL, "full.txt:%d: a path and a value", lineno))
        return;
    *space = '\0';
    const char *value = space + 1;
    char *mark = strchr(line, '#');
    if (mark)
        *mark++ = '\0';
    json_t *got = at_path(body, line);
    if (mark && strcmp(mark, "size") == 0) {
        ok(json_is_array(got) && json_array_size(got) == strtoul(value, NULL, 10),
           "full.txt:%d: %s has %s elements (%zu)", lineno, line, value, json_array_size(got));
        return;
    }
    json_t *want = json_loads(value, JSON_DECODE_ANY, NULL);
    if (mark && strcmp(mark, "keys") == 0) {
        json_t *keys = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(got, k, v) json_array_append_new(keys, json_string(k));
        /* sorted, as the file lists them */
        size_t nk = json_array_size(keys);
        for (size_t i = 0; i + 1 < nk; i++)
            for (size_t j = 0; j + 1 < nk - i; j++)
                if (strcmp(json_string_value(json_array_get(keys, j)),
                           json_string_value(json_array_get(keys, j + 1))) > 0) {
                    json_t *a = json_incref(json_array_get(keys, j));
                    json_array_set(keys, j, json_array_get(keys, j + 1));
                    json_array_set_new(keys, j + 1, a);
                }
        char *dumped = json_dumps(keys, JSON_COMPACT);
        ok(want && json_equal(keys, want), "full.txt:%d: %s has keys %s (got %s)", lineno,
           *line ? line : "$", value, dumped);
        free(dumped);
        json_decref(keys);
    } else {
        char *dumped = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        ok(want && got && json_equal(got, want), "full.txt:%d: %s = %s (got %s)", lineno, line,
           value, dumped ? dumped : "(absent)");
        free(dumped);
    }
    json_decref(want);
}

static void test_full_request(void)
{
    struct full f;
    full_init(&f);
    struct provider_call call = full_call(&f.req);
    struct provider_http http = {0};
    struct err e = {0};
    int rc = ops()->build(&call, &http, &e);
    ok(rc == 0, "the full request builds (%s)", e.msg);
    ok(http.url && strcmp(http.url, "https://generativelanguage.googleapis.com/v1beta/models/"
                                    "gemini-2.5-pro:generateContent") == 0,
       "POST {base}/v1beta/models/{model}:generateContent: %s", http.url ? http.url : "");
    ok(http.nheaders == 2 && strcmp(http.headers[0], "x-goog-api-key: " GOOGLE_KEY) == 0 &&
           strcmp(http.headers[1], "Content-Type: application/json") == 0,
       "the key in x-goog-api-key, and the content type");
    ok(http.url && !strstr(http.url, "key=") && !strstr(http.url, GOOGLE_KEY),
       "never the key in the URL");
    ok(http.body && !strstr(http.body, GOOGLE_KEY), "nor in the body");
    json_t *body = http.body ? json_loadb(http.body, http.body_len, 0, NULL) : NULL;
    int lines = body ? check_each_line(GEMINI_DIR "full.txt", check_full_line, body) : 0;
    ok(lines >= 25, "full.txt: %d fields checked", lines);
    json_decref(body);
    provider_http_release(&http);
    full_release(&f);
}

/* A built body of req as JSON (owned), or NULL with *e set. */
static json_t *build_body(const struct request *req, uint32_t budget, struct err *e)
{
    struct provider_call call = full_call(req);
    call.reasoning_budget = budget;
    struct provider_http http = {0};
    json_t *body = NULL;
    if (ops()->build(&call, &http, e) == 0)
        body = json_loadb(http.body, http.body_len, JSON_ALLOW_NUL, NULL);
    provider_http_release(&http);
    return body;
}

/* Each mapping decision alone, on variants of the full request. */
static void test_build_variants(void)
{
    struct full f;
    struct err e;
    json_t *body;

    /* tool_choice: auto, none, required (ANY without names) */
    static const struct {
        enum request_tool_choice choice;
        const char *want;
    } choices[] = {
        {REQUEST_TOOL_CHOICE_AUTO, "{\"functionCallingConfig\":{\"mode\":\"AUTO\"}}"},
        {REQUEST_TOOL_CHOICE_NONE, "{\"functionCallingConfig\":{\"mode\":\"NONE\"}}"},
        {REQUEST_TOOL_CHOICE_REQUIRED, "{\"functionCallingConfig\":{\"mode\":\"ANY\"}}"},
    };
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++) {
        full_init(&f);
        f.req.tool_choice = choices[i].choice;
        f.req.tool_choice_name = NULL;
        body = build_body(&f.req, 0, &e);
        json_t *want = json_loads(choices[i].want, 0, NULL);
        ok(body && json_equal(json_object_get(body, "toolConfig"), want), "tool_choice %d -> %s",
           (int)choices[i].choice, choices[i].want);
        json_decref(want);
        json_decref(body);
        full_release(&f);
    }

    /* no tools: neither tools nor toolConfig; json_object: the MIME type
     * alone; no reasoning: no thinkingConfig; nothing unasked for */
    full_init(&f);
    f.req.ntools = 0;
    f.req.tool_choice = REQUEST_TOOL_CHOICE_AUTO;
    f.req.format = REQUEST_FORMAT_JSON;
    f.req.schema = NULL;
    f.req.has_top_p = f.req.has_seed = f.req.has_temperature = 0;
    f.req.nstop = 0;
    body = build_body(&f.req, 0, &e);
    json_t *gen = json_object_get(body, "generationConfig");
    ok(body && !json_object_get(body, "tools") && !json_object_get(body, "toolConfig"),
       "no tools: no tools, no toolConfig");
    ok(json_object_size(gen) == 2 &&
           json_integer_value(json_object_get(gen, "maxOutputTokens")) == 8192 &&
           strcmp(json_string_value(json_object_get(gen, "responseMimeType")),
                  "application/json") == 0,
       "json_object: responseMimeType alone; no schema, no thinkingConfig, no sampling");
    json_decref(body);
    /* text format: no responseMimeType */
    f.req.format = REQUEST_FORMAT_TEXT;
    body = build_body(&f.req, 0, &e);
    ok(body && json_object_size(json_object_get(body, "generationConfig")) == 1,
       "text: generationConfig holds the cap only");
    json_decref(body);
    full_release(&f);

    /* an http(s) image URL cannot be sent: refused, nothing owned */
    static const char *const refused[] = {"https://example.com/cat.png",
                                          "http://example.com/cat.png", "data:image/png,%89PNG",
                                          "data:;base64,AAAA"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        full_init(&f);
        f.user_parts[2].text = refused[i];
        f.user_parts[2].text_len = strlen(refused[i]);
        struct provider_call call = full_call(&f.req);
        struct provider_http http = {0};
        e = (struct err){0};
        int rc = ops()->build(&call, &http, &e);
        ok(rc == -1 && e.kind == ERR_INPUT && strcmp(e.code, "unsupported") == 0 &&
               strncmp(e.msg, "unsupported: image_url", 22) == 0 && http.url == NULL &&
               http.body == NULL && http.nheaders == 0,
           "image %s: ERR_INPUT unsupported: image_url, owning nothing (%s)", refused[i], e.msg);
        full_release(&f);
    }

    /* a tool result that is JSON but not an object, or has duplicate keys,
     * stays text under "output" */
    static const char *const texts[] = {"[1,2]", "4", "\"x\"", "{\"a\":1,\"a\":2}", "{broken"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        full_init(&f);
        text_message(&f.msgs[3], REQUEST_TOOL, texts[i]);
        f.msgs[3].tool_name = "get_weather";
        body = build_body(&f.req, 0, &e);
        json_t *resp = at_path(body, "contents[2].parts[0].functionResponse.response");
        ok(resp && json_object_size(resp) == 1 &&
               strcmp(json_string_value(json_object_get(resp, "output")), texts[i]) == 0,
           "tool result %s: kept as text under \"output\"", texts[i]);
        json_decref(body);
        full_release(&f);
    }

    /* a user turn between tool turns splits them: each group answers its
     * own model turn */
    full_init(&f);
    struct request_message msgs[4] = {0};
    memcpy(msgs, &f.msgs[2], 3 * sizeof msgs[0]); /* assistant, tool, tool */
    text_message(&msgs[3], REQUEST_USER, "Go on.");
    struct request_message swapped[4] = {msgs[0], msgs[1], msgs[3], msgs[2]};
    f.req.messages = swapped;
    f.req.nmessages = 4;
    body = build_body(&f.req, 0, &e);
    char *dumped = body ? json_dumps(json_object_get(body, "contents"), JSON_COMPACT) : NULL;
    ok(body && json_array_size(json_object_get(body, "contents")) == 4 &&
           json_array_size(at_path(body, "contents[1].parts")) == 1 &&
           json_array_size(at_path(body, "contents[3].parts")) == 1,
       "tool, user, tool: three turns after the model's, not one: %s (%s)",
       dumped ? dumped : "(none)", e.msg);
    free(dumped);
    json_decref(body);
    full_release(&f);

    /* a tool turn whose call is unknown (no tool_name): refused */
    full_init(&f);
    f.msgs[3].tool_name = NULL;
    body = build_body(&f.req, 0, &e);
    ok(!body && e.kind == ERR_INPUT, "a tool turn without its tool's name is refused (%s)", e.code);
    full_release(&f);

    /* a NUL inside a stop sequence and a text part is kept */
    full_init(&f);
    f.req.stop[0] = "E\0D";
    f.req.stop_len[0] = 3;
    body = build_body(&f.req, 0, &e);
    json_t *stop0 = at_path(body, "generationConfig.stopSequences[0]");
    ok(stop0 && json_string_length(stop0) == 3 && memcmp(json_string_value(stop0), "E\0D", 3) == 0,
       "a stop sequence keeps its NUL byte");
    json_decref(body);
    full_release(&f);
}

static void check_delay_line(char *line, int lineno, void *ctx)
{
    (void)ctx;
    char *space = strchr(line, ' ');
    if (!ok(space != NULL, "retry_delay.txt:%d: a value and a delay", lineno))
        return;
    *space = '\0';
    json_t *doc = json_pack("{s:{s:i, s:s, s:s, s:[{s:s, s:s}]}}", "error", "code", 429, "message",
                            "Resource has been exhausted (e.g. check quota).", "status",
                            "RESOURCE_EXHAUSTED", "details", "@type",
                            "type.googleapis.com/google.rpc.RetryInfo", "retryDelay", space + 1);
    char *body = json_dumps(doc, JSON_COMPACT);
    int64_t ms = gemini_retry_delay_ms(body, strlen(body));
    ok(ms == strtoll(line, NULL, 10), "retry_delay.txt:%d: \"%s\" -> %s ms (got %lld)", lineno,
       space + 1, line, (long long)ms);
    free(body);
    json_decref(doc);
}

static void test_retry_delay(void)
{
    int n = check_each_line(GEMINI_DIR "retry_delay.txt", check_delay_line, NULL);
    ok(n >= 15, "retry_delay.txt: %d cases", n);
    static const char *const none[] = {
        "",
        "not json",
        "{}",
        "{\"error\":{\"code\":429,\"details\":[{\"@type\":\"type.googleapis.com/"
        "google.rpc.Help\"}]}}",
        "{\"error\":{\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
        "\"retryDelay\":7}]}}",
        /* OpenAI's and Anthropic's shapes have no RetryInfo */
        "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"code\":"
        "\"rate_limit_exceeded\"}}",
        "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow\"}}",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        ok(gemini_retry_delay_ms(none[i], strlen(none[i])) == -1, "no delay in %s", none[i]);
    ok(gemini_retry_delay_ms(NULL, 0) == -1, "no body, no delay");
    /* len bounds the read: the body need not end with NUL */
    const char *two = "{\"error\":{\"details\":[{\"@type\":\"type.googleapis.com/"
                      "google.rpc.RetryInfo\",\"retryDelay\":\"3s\"}]}}GARBAGE";
    ok(gemini_retry_delay_ms(two, strlen(two) - 7) == 3000, "len bounds the body");
}

/* DESIGN 6 for Gemini, pinned apart from the data files. */
static void test_usage_rule(void)
{
    const char *g = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}],\"role\":"
                    "\"model\"},\"finishReason\":\"STOP\"}],\"usageMetadata\":{"
                    "\"promptTokenCount\":1000,\"cachedContentTokenCount\":800,"
                    "\"candidatesTokenCount\":200,\"thoughtsTokenCount\":300,"
                    "\"totalTokenCount\":1500}}";
    struct provider_reply r = {0};
    struct err e = {0};
    ok(ops()->parse(200, g, strlen(g), &r, &e) == 0 && r.usage.tokens[COST_INPUT] == 200 &&
           r.usage.tokens[COST_CACHE_READ] == 800 && r.usage.tokens[COST_OUTPUT] == 200 &&
           r.usage.tokens[COST_REASONING] == 300 && r.usage.tokens[COST_CACHE_WRITE] == 0,
       "Gemini: cached inside prompt, thoughts apart from candidates");
    ok(r.model == NULL && r.tool_calls == NULL, "no modelVersion, no calls: none reported");
    provider_reply_release(&r);

    /* a model may emit U+0000: kept, and counted */
    const char *nul = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\\u0000\"},"
                      "{\"text\":\"b\"}],\"role\":\"model\"},\"finishReason\":\"STOP\"}],"
                      "\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":2}}";
    ok(ops()->parse(200, nul, strlen(nul), &r, &e) == 0 && r.text_len == 3 &&
           memcmp(r.text, "a\0b", 4) == 0,
       "NUL kept in the text");
    provider_reply_release(&r);
}

/* Gemini's error shape with a key in the message: never in e->msg. */
static void test_key_not_echoed(void)
{
    static const long statuses[] = {0, 400, 401, 403, 404, 429, 500, 502, 503, 504};
    static const char *const echoes[] = {
        "API key not valid: " GOOGLE_KEY,
        "Incorrect API key provided: " TEST_KEY ".",
        "key=" TEST_KEY,
    };
    int leaks = 0, checked = 0;
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        for (size_t j = 0; j < sizeof echoes / sizeof echoes[0]; j++) {
            json_t *doc = json_pack("{s:{s:i, s:s, s:s}}", "error", "code", (int)statuses[i],
                                    "message", echoes[j], "status", "INVALID_ARGUMENT");
            char *body = json_dumps(doc, JSON_COMPACT);
            struct provider_reply r = {0};
            struct err e = {0};
            int rc = ops()->parse(statuses[i], body, strlen(body), &r, &e);
            checked++;
            if (rc != -1 || strstr(e.msg, TEST_KEY) || strstr(e.msg, "sk-")) {
                leaks++;
                ok(0, "HTTP %ld: key in e->msg: %s", statuses[i], e.msg);
            }
            free(body);
            json_decref(doc);
        }
    ok(leaks == 0 && checked == 30, "no sk- key reaches e->msg (%d error replies)", checked);
    /* the message is quoted */
    const char *b = "{\"error\":{\"code\":503,\"message\":\"The model is overloaded. Please try "
                    "again later.\",\"status\":\"UNAVAILABLE\"}}";
    struct provider_reply r = {0};
    struct err e = {0};
    ops()->parse(503, b, strlen(b), &r, &e);
    ok(strcmp(e.msg, "HTTP 503: The model is overloaded. Please try again later.") == 0,
       "the provider's message is quoted: %s", e.msg);
}

void test_gemini(void)
{
    ok(ops() != NULL && strcmp(ops()->type, "gemini") == 0, "the gemini adapter is in the table");
    size_t replies = run_replies();
    size_t builds = run_builds();
    ok(replies >= 40, "reply cases (%zu)", replies);
    ok(builds >= 8, "build cases (%zu)", builds);
    test_full_request();
    test_build_variants();
    test_retry_delay();
    test_usage_rule();
    test_key_not_echoed();
}

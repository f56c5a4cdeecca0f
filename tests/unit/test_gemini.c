/*
 * gemini: the Gemini adapter against real-shaped exchanges.
 * tests/data/providers/gemini/reply/ and build/ are test_providers.c's
 * (outcome lines with tool calls, requests sent, error shapes, keys);
 * here what is Gemini's own: expected.retry_ms of the reply cases,
 * full.json with full.txt (the request with every field, decoded by
 * request_decode, and its body checked field by field) and retry_delay.txt
 * (gemini_retry_delay_ms).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "providers/adapter.h"
#include "providers/provider.h"

#define GEMINI_DIR "tests/data/providers/gemini/"
#define GOOGLE_KEY "AIzaSyD-T3stK3y0123456789abcdefXYZ012"

static const struct provider_ops *ops(void)
{
    return provider_ops_for(PROVIDER_GEMINI);
}

/* The reply cases' outcome lines (tool calls included) are
 * test_providers.c's; here the wait a 429 asks for. */
static void run_retry_delays(void)
{
    char dir[] = GEMINI_DIR "reply", *names[128];
    size_t n = check_list_dir(dir, names, 128, NULL), with_delay = 0;
    for (size_t i = 0; i < n; i++) {
        char cdir[512];
        snprintf(cdir, sizeof cdir, "%.250s/%.250s", dir, names[i]);
        size_t len = 0;
        char *want_delay = check_read_in(cdir, "expected.retry_ms", NULL);
        char *body = want_delay ? check_read_in(cdir, "body", &len) : NULL;
        if (want_delay) {
            with_delay++;
            int64_t ms = gemini_retry_delay_ms(body ? body : "", len);
            ok(ms == strtoll(want_delay, NULL, 10), "%s: retry delay %lld ms", cdir, (long long)ms);
        }
        free(body);
        free(want_delay);
        free(names[i]);
    }
    ok(with_delay >= 5, "reply cases with delays (%zu)", with_delay);
}

/* The request with every field (full.json), as request_decode reads it.
 * A variant changes f->req, a copy of the decoded struct whose arrays
 * and strings are the decoded request's (freed by full_release). */
struct full {
    struct request *decoded;
    struct request req;
};

static void full_init(struct full *f)
{
    size_t len = 0;
    char *json = check_read_file(GEMINI_DIR "full.json", &len);
    struct err e = {0};
    static const struct request none;
    f->decoded = NULL;
    ok(json && request_decode(json, len, 1 << 20, &f->decoded, &e) == 0, "full.json decodes (%s)",
       e.msg);
    f->req = f->decoded ? *f->decoded : none;
    free(json);
}

static void full_release(struct full *f)
{
    request_free(f->decoded);
    f->decoded = NULL;
}

/* A string content, as request_decode gives it: one TEXT part on it. */
static void text_message(struct request_message *m, struct request_part *part,
                         enum request_role role, const char *text)
{
    m->role = role;
    m->content = text;
    m->content_len = strlen(text);
    *part = (struct request_part){REQUEST_PART_TEXT, text, m->content_len, NULL};
    m->parts = part;
    m->nparts = 1;
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
        /* refused by request_decode too; the adapter refuses them on its own */
        struct request_part *url = &f.req.messages[1].parts[2];
        url->text = refused[i];
        url->text_len = strlen(refused[i]);
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
        struct request_message *tool = &f.req.messages[3];
        text_message(tool, tool->parts, REQUEST_TOOL, texts[i]);
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
    struct request_part go_on;
    memcpy(msgs, &f.req.messages[2], 3 * sizeof msgs[0]); /* assistant, tool, tool */
    text_message(&msgs[3], &go_on, REQUEST_USER, "Go on.");
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
    f.req.messages[3].tool_name = NULL;
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
}

void test_gemini(void)
{
    ok(ops() != NULL && strcmp(ops()->type, "gemini") == 0, "the gemini adapter is in the table");
    run_retry_delays();
    test_full_request();
    test_build_variants();
    test_retry_delay();
    test_usage_rule();
}

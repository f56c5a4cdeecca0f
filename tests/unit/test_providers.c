/*
 * providers: every case directory under tests/data/providers/<type>/ is a
 * real-shaped exchange. reply/<case>/{status,body,expected}: the reply's
 * normalized text, finish and usage, or its classification. build/<case>/
 * {request.json,call,expected.*}: the exact URL, headers and body sent
 * (byte for byte: expected.json's keys in the order they are sent), or
 * the refusal (expected.error); a SigV4 case's signature is checked to
 * cover exactly the URL and body sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "providers/adapter.h"
#include "providers/provider.h"
#include "redact.h"
#include "redact_keys.h"
#include "sigv4.h"

/* every adapter passes the checks below; test_gemini.c and test_bedrock.c
 * keep only what is their provider's own */
static const enum provider_type test_types[] = {PROVIDER_OPENAI, PROVIDER_ANTHROPIC, PROVIDER_AZURE,
                                                PROVIDER_GEMINI, PROVIDER_BEDROCK};
#define TEST_NTYPES (sizeof test_types / sizeof test_types[0])

#define PROVIDERS_DIR "tests/data/providers/"
/* shaped like a real project key, so that redaction is tested on the
 * real thing; build cases expect it in their headers */
#define TEST_KEY "sk-proj-T3stK3y0123456789abcdefXYZ"
/* what OpenAI's 401 shows of it: prefix and last four, middle masked */
#define TEST_KEY_MASKED "sk-proj-************************fXYZ"

/* An error body carrying message, in type's shape: Anthropic's
 * {"type":"error","error":{...}}, Gemini's google.rpc.Status, Bedrock's
 * {"message":...}, else OpenAI's {"error":{...}} (Azure's). New
 * reference. */
static json_t *error_body(enum provider_type type, const char *message)
{
    switch (type) {
    case PROVIDER_ANTHROPIC:
        return json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
                         "authentication_error", "message", message);
    case PROVIDER_GEMINI:
        return json_pack("{s:{s:i, s:s, s:s}}", "error", "code", 400, "message", message, "status",
                         "INVALID_ARGUMENT");
    case PROVIDER_BEDROCK:
        return json_pack("{s:s}", "message", message);
    default:
        return json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", message, "type",
                         "invalid_request_error", "param", "code", "invalid_api_key");
    }
}

static void describe_reply(int rc, const struct provider_reply *r, const struct err *e, char *out,
                           size_t size)
{
    if (rc < 0) {
        snprintf(out, size, "error kind=%s code=%s\n",
                 e->kind == ERR_TRANSIENT  ? "transient"
                 : e->kind == ERR_UPSTREAM ? "upstream"
                                           : err_kind_name(e->kind),
                 e->code);
        return;
    }
    char *calls = r->tool_calls ? json_dumps(r->tool_calls, JSON_COMPACT) : NULL;
    snprintf(out, size,
             "ok finish=%s input=%llu output=%llu cache_read=%llu cache_write=%llu"
             "%s%.0llu reasoning=%llu model=%s%s%s text=%s\n",
             provider_finish_name(r->finish), (unsigned long long)r->usage.tokens[COST_INPUT],
             (unsigned long long)r->usage.tokens[COST_OUTPUT],
             (unsigned long long)r->usage.tokens[COST_CACHE_READ],
             (unsigned long long)r->usage.tokens[COST_CACHE_WRITE],
             /* shown only when billed, as on cost records */
             r->usage.tokens[COST_CACHE_WRITE_1H] ? " cache_write_1h=" : "",
             (unsigned long long)r->usage.tokens[COST_CACHE_WRITE_1H],
             (unsigned long long)r->usage.tokens[COST_REASONING], r->model ? r->model : "-",
             calls ? " tool_calls=" : "", calls ? calls : "", r->text);
    free(calls);
}

static size_t run_replies(enum provider_type type)
{
    char dir[256], *names[128];
    snprintf(dir, sizeof dir, PROVIDERS_DIR "%s/reply", provider_type_name(type));
    size_t n = check_list_dir(dir, names, 128, NULL);
    const struct provider_ops *ops = provider_ops_for(type);
    for (size_t i = 0; i < n; i++) {
        char cdir[512];
        snprintf(cdir, sizeof cdir, "%.250s/%.250s", dir, names[i]);
        size_t len = 0;
        char *status = check_read_in(cdir, "status", NULL),
             *body = check_read_in(cdir, "body", &len);
        char *expected = check_read_in(cdir, "expected", NULL);
        struct provider_reply r = {0};
        struct err e = {0};
        int rc = ops->parse(status ? strtol(status, NULL, 10) : 0, body ? body : "", len, &r, &e);
        char got[2048];
        describe_reply(rc, &r, &e, got, sizeof got);
        ok(expected && strcmp(expected, got) == 0, "%s:\n    expected: %s    got:      %s", cdir,
           expected ? expected : "(missing)\n", got);
        ok(rc == 0 || strlen(e.msg) > 0, "%s: an error says what happened", cdir);
        ok(rc == 0 || (!strstr(e.msg, TEST_KEY) && !strstr(e.msg, "fXYZ") && !strstr(e.msg, "sk-")),
           "%s: no key in the message: %s", cdir, e.msg);
        ok(rc == 0 || (r.text == NULL && r.tool_calls == NULL),
           "%s: nothing to release after an error", cdir);
        provider_reply_release(&r);
        free(status);
        free(body);
        free(expected);
        free(names[i]);
    }
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

static const char *header_value(const struct provider_http *http, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < http->nheaders; i++)
        if (strncmp(http->headers[i], name, n) == 0 && http->headers[i][n] == ':')
            return http->headers[i] + n + 2;
    return NULL;
}

/* A SigV4 build's Authorization signs exactly the URL and body sent (a
 * body changed after signing fails here, though its JSON is the same). */
static void check_signed(const char *cdir, enum provider_type type,
                         const struct provider_call *call, const struct provider_http *http)
{
    /* the signing name of each type that signs */
    static const char *const services[PROVIDER_NTYPES] = {[PROVIDER_BEDROCK] = "bedrock"};
    const struct sigv4_header ct = {"content-type", "application/json"};
    struct sigv4_input in = {.method = "POST",
                             .url = http->url,
                             .headers = &ct,
                             .nheaders = 1,
                             .body = http->body,
                             .body_len = http->body_len,
                             .region = call->region,
                             .service = services[type],
                             .access_key_id = call->access_key_id,
                             .secret_access_key = call->secret_access_key,
                             .session_token = call->session_token,
                             .now_s = call->now_s,
                             .content_sha256 = 1};
    struct sigv4_output sig = {0};
    struct err e = {0};
    const char *auth = header_value(http, "authorization");
    const char *sha = header_value(http, "x-amz-content-sha256");
    char body_sha[65];
    sigv4_sha256_hex(http->body, http->body_len, body_sha);
    int signed_ok = services[type] && sigv4_sign(&in, &sig, &e) == 0;
    ok(signed_ok && auth && strcmp(auth, sig.authorization) == 0 && sha &&
           strcmp(sha, body_sha) == 0,
       "%s: the signature covers the URL and body sent", cdir);
    sigv4_output_release(&sig);
}

static size_t run_builds(enum provider_type type)
{
    char dir[256], *names[64];
    snprintf(dir, sizeof dir, PROVIDERS_DIR "%s/build", provider_type_name(type));
    size_t n = check_list_dir(dir, names, 64, NULL);
    const struct provider_ops *ops = provider_ops_for(type);
    for (size_t i = 0; i < n; i++) {
        char cdir[512];
        snprintf(cdir, sizeof cdir, "%.250s/%.250s", dir, names[i]);
        size_t len;
        char *json = check_read_in(cdir, "request.json", &len),
             *call_text = check_read_in(cdir, "call", NULL);
        struct request *req = NULL;
        struct err e = {0};
        if (!ok(json && call_text && request_decode(json, len, 1 << 20, &req, &e) == 0,
                "%s: request decodes", cdir)) {
            free(json);
            free(call_text);
            free(names[i]);
            continue;
        }
        char model[256], max[32], base[256], version[64], key[128], field[64], auth[32], budget[32];
        char region[64], akid[64], secret[128], token[512], now[32];
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
            .api_key = api_key,
            .api_version = call_get(call_text, "api_version", version, sizeof version),
            .max_tokens_field = call_get(call_text, "max_tokens_field", field, sizeof field)};
        const char *a = call_get(call_text, "auth", auth, sizeof auth);
        call.auth = !a                          ? CONFIG_AUTH_DEFAULT
                    : strcmp(a, "bearer") == 0  ? CONFIG_AUTH_BEARER
                    : strcmp(a, "api_key") == 0 ? CONFIG_AUTH_API_KEY
                                                : CONFIG_AUTH_SIGV4;
        if (call_get(call_text, "reasoning_budget", budget, sizeof budget))
            call.reasoning_budget = (uint32_t)strtoul(budget, NULL, 10);
        /* SigV4's inputs (Bedrock): a fixed time, so the signature is pinned */
        call.region = call_get(call_text, "region", region, sizeof region);
        call.access_key_id = call_get(call_text, "access_key_id", akid, sizeof akid);
        call.secret_access_key = call_get(call_text, "secret_access_key", secret, sizeof secret);
        call.session_token = call_get(call_text, "session_token", token, sizeof token);
        if (call_get(call_text, "now", now, sizeof now))
            call.now_s = strtoll(now, NULL, 10);
        struct provider_http http = {0};
        int rc = ops->build(&call, &http, &e);
        char *want_error = check_read_in(cdir, "expected.error", NULL);
        if (want_error) {
            char got[128];
            snprintf(got, sizeof got, "%s %s\n", err_kind_name(e.kind), e.code);
            ok(rc < 0 && strcmp(got, want_error) == 0 && http.url == NULL && http.body == NULL &&
                   http.nheaders == 0,
               "%s: refused as %s, owning nothing (got %s: %s)", cdir, want_error, got, e.msg);
        } else {
            char *want_url = check_read_in(cdir, "expected.url", NULL);
            char *want_headers = check_read_in(cdir, "expected.headers", NULL);
            char *want_body = check_read_in(cdir, "expected.json", NULL);
            ok(rc == 0, "%s: builds", cdir);
            char url[600];
            snprintf(url, sizeof url, "%s\n", http.url ? http.url : "");
            ok(want_url && strcmp(url, want_url) == 0, "%s: url %s", cdir, url);
            char headers[4096] = "";
            for (size_t h = 0; h < http.nheaders; h++) {
                strncat(headers, http.headers[h], sizeof headers - strlen(headers) - 2);
                strcat(headers, "\n");
            }
            ok(want_headers && strcmp(headers, want_headers) == 0, "%s: headers\n%s", cdir,
               headers);
            /* URLs end up in logs */
            ok(!http.url || !*api_key || !strstr(http.url, api_key), "%s: no key in the URL", cdir);
            if (rc == 0 && call.auth == CONFIG_AUTH_SIGV4)
                check_signed(cdir, type, &call, &http);
            json_t *got =
                http.body ? json_loadb(http.body, http.body_len, JSON_ALLOW_NUL, NULL) : NULL;
            json_t *want = want_body ? json_loads(want_body, JSON_ALLOW_NUL, NULL) : NULL;
            ok(got && want && json_equal(got, want), "%s: body %s", cdir,
               http.body ? http.body : "(none)");
            /* the exact bytes: jansson's compact dump of expected.json, in
             * its key order (the bodies a jansson tree dumped before they
             * were streamed, and what a provider's logs show) */
            size_t want_len = 0;
            char *want_bytes = want ? json_dumps(want, JSON_COMPACT) : NULL;
            if (want_bytes)
                want_len = json_dumpb(want, NULL, 0, JSON_COMPACT);
            ok(want_bytes && http.body && http.body_len == want_len &&
                   memcmp(http.body, want_bytes, want_len) == 0,
               "%s: body bytes\n    expected: %s\n    got:      %s", cdir,
               want_bytes ? want_bytes : "(none)", http.body ? http.body : "(none)");
            free(want_bytes);
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

/* DESIGN 6, pinned: the most reported cost bug in LLM gateways. */
static void test_usage_rules(void)
{
    const char *oa = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"x\"},"
                     "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1000,"
                     "\"completion_tokens\":500,\"prompt_tokens_details\":{\"cached_tokens\":800},"
                     "\"completion_tokens_details\":{\"reasoning_tokens\":300}}}";
    struct provider_reply r = {0};
    struct err e = {0};
    ok(provider_ops_for(PROVIDER_OPENAI)->parse(200, oa, strlen(oa), &r, &e) == 0 &&
           r.usage.tokens[COST_INPUT] == 200 && r.usage.tokens[COST_CACHE_READ] == 800 &&
           r.usage.tokens[COST_OUTPUT] == 200 && r.usage.tokens[COST_REASONING] == 300 &&
           r.usage.tokens[COST_CACHE_WRITE] == 0,
       "OpenAI: cached inside prompt, reasoning inside completion");
    provider_reply_release(&r);
    const char *an =
        "{\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"stop_reason\":\"end_turn\","
        "\"usage\":{\"input_tokens\":200,\"cache_read_input_tokens\":800,"
        "\"cache_creation_input_tokens\":100,\"output_tokens\":500}}";
    ok(provider_ops_for(PROVIDER_ANTHROPIC)->parse(200, an, strlen(an), &r, &e) == 0 &&
           r.usage.tokens[COST_INPUT] == 200 && r.usage.tokens[COST_CACHE_READ] == 800 &&
           r.usage.tokens[COST_CACHE_WRITE] == 100 && r.usage.tokens[COST_OUTPUT] == 500 &&
           r.usage.tokens[COST_REASONING] == 0,
       "Anthropic: cache reads and writes separate from input");
    provider_reply_release(&r);
}

/* An error message may quote the provider; it never carries our key, even
 * when the provider echoes it (OpenAI's 401 does, masked). parse() never
 * sees the key, so what it redacts is what keys look like: this test runs
 * every error class of both providers with the key in the message, bare,
 * masked, quoted and at the edge of the quoting bound. */
static void test_key_not_echoed(void)
{
    static const long statuses[] = {0,   400, 401, 402, 403, 404, 408, 409, 413,
                                    422, 429, 500, 502, 503, 504, 520, 529};
    static const char *const echoes[] = {
        "Incorrect API key provided: " TEST_KEY ". You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "Incorrect API key provided: " TEST_KEY_MASKED ".",
        "invalid x-api-key '" TEST_KEY "'",
        /* Google's key shape, as Gemini's 400 API_KEY_INVALID quotes it */
        "API key not valid: AIzaSyD-T3stK3y0123456789abcdefXYZ012",
        "key=" TEST_KEY,
        TEST_KEY,
        /* the key straddles the 200-byte bound */
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
        "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
        "exercitation ull " TEST_KEY " amco laboris",
    };
    int leaks = 0, checked = 0;
    for (size_t ti = 0; ti < TEST_NTYPES; ti++) {
        enum provider_type t = test_types[ti];
        const struct provider_ops *ops = provider_ops_for(t);
        for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
            for (size_t j = 0; j < sizeof echoes / sizeof echoes[0]; j++) {
                json_t *doc = error_body(t, echoes[j]);
                char *body = json_dumps(doc, JSON_COMPACT);
                struct provider_reply r = {0};
                struct err e = {0};
                int rc = ops->parse(statuses[i], body, strlen(body), &r, &e);
                checked++;
                if (rc != -1 || strstr(e.msg, TEST_KEY) || strstr(e.msg, "sk-") ||
                    strstr(e.msg, "fXYZ") || strstr(e.msg, "T3stK3y")) {
                    leaks++;
                    ok(0, "%s HTTP %ld: key in e->msg: %s", ops->type, statuses[i], e.msg);
                }
                free(body);
                json_decref(doc);
            }
        }
    }
    ok(leaks == 0 && checked > 150, "the key never reaches e->msg (%d error replies)", checked);

    /* the body of a non-JSON error page is quoted, and redacted too */
    const char *html = "<html><body>401 Authorization Required: Bearer " TEST_KEY "</body></html>";
    struct err e = {0};
    struct provider_reply r = {0};
    provider_ops_for(PROVIDER_OPENAI)->parse(401, html, strlen(html), &r, &e);
    ok(strstr(e.msg, "Authorization Required") && !strstr(e.msg, "sk-"),
       "an HTML page is quoted without the key: %s", e.msg);

    /* build errors never quote the key either */
    struct request *req = NULL;
    const char *only_system = "{\"id\":\"a\",\"task\":\"t\",\"messages\":[{\"role\":\"system\","
                              "\"content\":\"S\"}]}";
    ok(request_decode(only_system, strlen(only_system), 1 << 20, &req, &e) == 0, "decodes");
    struct provider_call call = {.req = req,
                                 .base_url = "https://api.anthropic.com",
                                 .model = "claude-haiku-4-5",
                                 .max_tokens = 5,
                                 .api_key = TEST_KEY};
    struct provider_http http = {0};
    ok(provider_ops_for(PROVIDER_ANTHROPIC)->build(&call, &http, &e) == -1 && e.kind == ERR_INPUT &&
           !strstr(e.msg, TEST_KEY) && http.body == NULL && http.nheaders == 0,
       "a refused build says why, owns nothing, and names no key");
    request_free(req);
}

/* Issue 7: a key that does not look like "sk-...", echoed across byte 200
 * of a provider's message, kept 33 of its 35 characters. Every error
 * status of both providers, every key shape of tests/data/redact/keys.txt,
 * whole and cut at every position (each prefix, each suffix), placed
 * across byte 200, in the provider's JSON error or as a raw page: e->msg
 * holds no 8-byte piece of any key (checked by redact_keys.c, which does
 * not share redact.c's code), and still quotes the message's start. */
static void test_key_pieces_not_echoed(void)
{
    static const long statuses[] = {0,   400, 401, 402, 403, 404, 408, 409, 413,
                                    422, 429, 500, 502, 503, 504, 520, 529};
    static const char filler[] =
        "Incorrect API key provided. You can find your API key at "
        "https://platform.example.com/account/api-keys. Lorem ipsum dolor sit amet, "
        "consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore "
        "magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris.";
    static const char tail[] = " (request req_0123)";
    struct redact_keys keys;
    if (!ok(redact_keys_load(&keys) == 0, "read tests/data/redact/keys.txt"))
        return;
    redact_reset();
    for (size_t k = 0; k < keys.n; k++)
        ok(redact_register(keys.key[k]) == 0, "register %s", keys.shape[k]);
    size_t calls = 0, leaks = 0, unquoted = 0;
    char msg[1024];
    for (size_t ti = 0; ti < TEST_NTYPES; ti++) {
        enum provider_type t = test_types[ti];
        const struct provider_ops *ops = provider_ops_for(t);
        for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
            for (size_t k = 0; k < keys.n; k++) {
                const char *key = keys.key[k];
                size_t klen = strlen(key);
                for (size_t f = 0; f + 1 < 2 * klen; f++) {
                    const char *frag = key;
                    size_t flen = klen;
                    if (f >= 1 && f < klen)
                        flen = f;
                    else if (f >= klen) {
                        frag = key + (f - klen + 1);
                        flen = klen - (f - klen + 1);
                    }
                    /* a position covering byte 200, moving with the case */
                    size_t pos = 200 - (f * 7 + i) % flen;
                    memcpy(msg, filler, pos);
                    memcpy(msg + pos, frag, flen);
                    memcpy(msg + pos + flen, tail, sizeof tail);
                    char *body;
                    if ((f + i) % 3 == 2) { /* a proxy's page, not JSON */
                        body = strdup(msg);
                    } else {
                        json_t *doc = error_body(t, msg);
                        body = json_dumps(doc, JSON_COMPACT);
                        json_decref(doc);
                    }
                    struct provider_reply r = {0};
                    struct err e = {0};
                    int rc = ops->parse(statuses[i], body, strlen(body), &r, &e);
                    calls++;
                    if (rc != -1 || redact_keys_leak(&keys, e.msg, strlen(e.msg))) {
                        if (leaks++ < 5)
                            ok(0, "%s HTTP %ld, %s cut %zu at %zu: a piece in e->msg: %s",
                               ops->type, statuses[i], keys.shape[k], f, pos, e.msg);
                    }
                    if (!strstr(e.msg, "Incorrect API key provided. You can find") &&
                        unquoted++ < 5)
                        ok(0, "%s HTTP %ld: the message is not quoted: %s", ops->type, statuses[i],
                           e.msg);
                    provider_reply_release(&r);
                    free(body);
                }
            }
        }
    }
    ok(leaks == 0 && unquoted == 0 && calls > 30000,
       "no piece of any key shape, cut anywhere across byte 200, reaches e->msg (%zu error "
       "replies, %zu leaks)",
       calls, leaks);
    redact_reset();
    redact_keys_release(&keys);
}

/* e->msg holds at most ~200 bytes of the provider's message, cut between
 * UTF-8 characters (the result encoder refuses invalid UTF-8), on one
 * line. */
static void test_quote_bounds(void)
{
    char msg[1200] = "x";
    for (int i = 0; i < 300; i++)
        strcat(msg, "\xc3\xa9"); /* é: an odd cut would split one */
    for (size_t ti = 0; ti < TEST_NTYPES; ti++) {
        enum provider_type t = test_types[ti];
        const struct provider_ops *ops = provider_ops_for(t);
        json_t *doc = error_body(t, msg);
        char *body = json_dumps(doc, JSON_COMPACT);
        struct provider_reply r = {0};
        struct err e = {0};
        ops->parse(400, body, strlen(body), &r, &e);
        json_t *as_json = json_string(e.msg); /* NULL when not valid UTF-8 */
        ok(as_json != NULL, "%s: a long message is cut between characters", ops->type);
        ok(strlen(e.msg) <= 220 && strstr(e.msg, "..."),
           "%s: bounded, and says it was cut (%zu bytes)", ops->type, strlen(e.msg));
        json_decref(as_json);
        free(body);
        json_decref(doc);

        doc = error_body(t, "line one\nline two\ttab \x01");
        body = json_dumps(doc, JSON_COMPACT);
        ops->parse(500, body, strlen(body), &r, &e);
        ok(strcmp(e.msg, "HTTP 500: line one line two tab  ") == 0, "%s: one line: [%s]", ops->type,
           e.msg);
        free(body);
        json_decref(doc);

        const char *bytes = "\xff\xfe bad \xe2\x82"; /* not UTF-8, cut sequence */
        ops->parse(502, bytes, strlen(bytes), &r, &e);
        as_json = json_string(e.msg);
        ok(as_json && strcmp(e.msg, "HTTP 502: ?? bad ??") == 0,
           "%s: invalid bytes of a raw body become '?': [%s]", ops->type, e.msg);
        json_decref(as_json);
    }
}

/* A model may emit U+0000: the reply keeps it, and text_len counts it. */
static void test_nul_in_reply(void)
{
    const char *oa = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"m\","
                     "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                     "\"content\":\"a\\u0000b\",\"refusal\":null},\"finish_reason\":\"stop\"}],"
                     "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
                     "\"total_tokens\":5}}";
    const char *an = "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
                     "\"model\":\"m\",\"content\":[{\"type\":\"text\",\"text\":\"a\\u0000\"},"
                     "{\"type\":\"text\",\"text\":\"b\"}],\"stop_reason\":\"end_turn\","
                     "\"usage\":{\"input_tokens\":3,\"output_tokens\":2}}";
    const char *ge = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\\u0000b\"}]},"
                     "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3}}";
    const char *br = "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":["
                     "{\"text\":\"a\\u0000\"},{\"text\":\"b\"}]}},\"stopReason\":\"end_turn\","
                     "\"usage\":{\"inputTokens\":3,\"outputTokens\":2,\"totalTokens\":5}}";
    const char *bodies[PROVIDER_NTYPES] = {[PROVIDER_OPENAI] = oa,
                                           [PROVIDER_ANTHROPIC] = an,
                                           [PROVIDER_AZURE] = oa,
                                           [PROVIDER_GEMINI] = ge,
                                           [PROVIDER_BEDROCK] = br};
    for (size_t ti = 0; ti < TEST_NTYPES; ti++) {
        enum provider_type t = test_types[ti];
        const struct provider_ops *ops = provider_ops_for(t);
        struct provider_reply r = {0};
        struct err e = {0};
        int rc = ops->parse(200, bodies[t], strlen(bodies[t]), &r, &e);
        ok(rc == 0 && r.text_len == 3 && memcmp(r.text, "a\0b", 4) == 0,
           "%s: NUL kept in the text (%s)", ops->type, e.code);
        provider_reply_release(&r);
        ok(r.text == NULL && r.model == NULL, "%s: release clears", ops->type);
    }
}

/* What the table and the helpers promise. */
static void test_table(void)
{
    for (size_t ti = 0; ti < TEST_NTYPES; ti++) {
        enum provider_type t = test_types[ti];
        const struct provider_ops *ops = provider_ops_for(t);
        ok(ops && strcmp(ops->type, provider_type_name(t)) == 0 && ops->build && ops->parse,
           "the adapter of type %d is \"%s\"", (int)t, provider_type_name(t));
    }
    ok(provider_ops_for(PROVIDER_NTYPES) == NULL &&
           provider_ops_for((enum provider_type) - 1) == NULL,
       "no adapter out of range");
    ok(strcmp(provider_finish_name(PROVIDER_FINISH_STOP), "stop") == 0 &&
           strcmp(provider_finish_name(PROVIDER_FINISH_LENGTH), "length") == 0 &&
           strcmp(provider_finish_name(PROVIDER_FINISH_CONTENT_FILTER), "content_filter") == 0 &&
           strcmp(provider_finish_name(PROVIDER_FINISH_TOOL_CALLS), "tool_calls") == 0 &&
           strcmp(provider_finish_name(PROVIDER_FINISH_OTHER), "other") == 0,
       "finish names, as results carry them");
    /* release frees what a value owns and leaves it empty, so that a
     * second release (or one of a value never filled) is harmless */
    static const struct provider_http no_http;
    static const struct provider_reply no_reply;
    struct provider_http http = {0};
    struct provider_reply reply = {0};
    ok(adapter_url(&http, "http://h/", "/v1/x") == 0 && adapter_header(&http, "a", "b") == 0 &&
           adapter_text(&reply, "hi", 2) == 0 && (reply.model = strdup("m")) != NULL,
       "values to release");
    provider_http_release(&http);
    provider_reply_release(&reply);
    ok(memcmp(&http, &no_http, sizeof http) == 0 && memcmp(&reply, &no_reply, sizeof reply) == 0,
       "a released value is empty");
    provider_http_release(&http);
    provider_reply_release(&reply);
    ok(memcmp(&http, &no_http, sizeof http) == 0 && memcmp(&reply, &no_reply, sizeof reply) == 0,
       "releasing an empty value leaves it empty");

    /* a body that cannot be encoded (a model id that is not UTF-8): an
     * error, nothing owned, nothing leaked (make asan checks the last) */
    struct request *req = NULL;
    struct err e = {0};
    const char *json = "{\"id\":\"a\",\"task\":\"t\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"Hi\"}]}";
    request_decode(json, strlen(json), 1 << 20, &req, &e);
    for (size_t ti = 0; req && ti < TEST_NTYPES; ti++) {
        enum provider_type t = test_types[ti];
        /* Bedrock's model id travels in the URL path, percent-encoded
         * (test_bedrock.c's test_model_ids), not in the body */
        if (t == PROVIDER_BEDROCK)
            continue;
        struct provider_call call = {.req = req,
                                     .base_url = "http://h",
                                     .model = "bad\xff",
                                     .max_tokens = 5,
                                     .api_key = TEST_KEY};
        int rc = provider_ops_for(t)->build(&call, &http, &e);
        ok(rc == -1 && http.body == NULL && http.url == NULL && http.nheaders == 0,
           "%s: an unencodable body is an error that owns nothing", provider_type_name(t));
        provider_http_release(&http);
    }
    request_free(req);
}

/* A string that is not UTF-8 (a model id from worker.yaml, say) is never
 * sent as U+FFFD: the build fails, as a jansson tree refused it. */
static void test_body_invalid_utf8(void)
{
    const char *json = "{\"id\":\"a\",\"task\":\"t\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"Hi\"}]}";
    struct request *req = NULL;
    struct err e = {0};
    if (!ok(request_decode(json, strlen(json), 1 << 20, &req, &e) == 0, "request decodes"))
        return;
    const enum provider_type types[] = {PROVIDER_OPENAI, PROVIDER_AZURE, PROVIDER_ANTHROPIC};
    for (size_t i = 0; i < 3; i++) {
        struct provider_call call = {.req = req,
                                     .base_url = "http://127.0.0.1:1",
                                     .model = "gpt-\xff",
                                     .max_tokens = 16,
                                     .api_key = "k"};
        struct provider_http http = {0};
        int rc = provider_ops_for(types[i])->build(&call, &http, &e);
        ok(rc == -1 && e.kind == ERR_FATAL && http.body == NULL && http.url == NULL,
           "%s: a model id that is not UTF-8 fails the build, owning nothing",
           provider_type_name(types[i]));
        provider_http_release(&http);
    }
    request_free(req);
}

/* One 200 body: the in-place reader accepts it (want 0) or declines it
 * (want 1); what it accepts reads as the tree reads it; and
 * openai_chat_parse gives what openai_chat_parse_tree gives, either way. */
static void check_read(const char *what, const char *body, size_t len, int want)
{
    struct provider_reply fast = {0}, tree = {0}, full = {0};
    struct err ef = {0}, et = {0}, eu = {0};
    int rf = openai_chat_read(body, len, &fast, &ef);
    int rt = openai_chat_parse_tree(200, body, len, &tree, &et);
    int ru = openai_chat_parse(200, body, len, &full, &eu);
    char df[2048], dt[2048], du[2048];
    describe_reply(rt, &tree, &et, dt, sizeof dt);
    describe_reply(ru, &full, &eu, du, sizeof du);
    snprintf(df, sizeof df, "(declined)\n");
    if (rf == 0)
        describe_reply(rf, &fast, &ef, df, sizeof df);
    ok(rf == want, "%s: the reader %s it (got %d)", what, want ? "declines" : "accepts", rf);
    ok(rf != 0 || (strcmp(df, dt) == 0 && fast.text_len == tree.text_len &&
                   memcmp(fast.text, tree.text, tree.text_len) == 0),
       "%s: read as the tree reads it\n    tree:   %s    reader: %s", what, dt, df);
    ok(rf != 1 || (fast.text == NULL && fast.model == NULL && fast.tool_calls == NULL),
       "%s: a decline fills nothing", what);
    ok(strcmp(du, dt) == 0 && strcmp(eu.msg, et.msg) == 0 && eu.kind == et.kind,
       "%s: parse gives what the tree gives\n    tree:  %s    parse: %s", what, dt, du);
    provider_reply_release(&fast);
    provider_reply_release(&tree);
    provider_reply_release(&full);
}

static void test_read(void)
{
    char *table = check_read_in(PROVIDERS_DIR "openai", "read.txt", NULL);
    size_t cases = 0;
    for (char *line = table, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (*line == '#' || *line == '\0')
            continue;
        int want = strncmp(line, "accept ", 7) == 0    ? 0
                   : strncmp(line, "decline ", 8) == 0 ? 1
                                                       : -1;
        if (!ok(want >= 0, "read.txt: a line of accept or decline: %.60s", line))
            continue;
        const char *body = line + (want ? 8 : 7);
        char what[96];
        snprintf(what, sizeof what, "read.txt: %.80s", body);
        check_read(what, body, strlen(body), want);
        cases++;
    }
    ok(cases >= 40, "read.txt holds its cases (%zu)", cases);
    free(table);
    /* bytes a text file does not show: each refused by jansson */
    static const char *const raw[] = {
        "{\"choices\":[{\"message\":{\"content\":\"tab\there\"}}],\"usage\":{\"prompt_tokens\":1,"
        "\"completion_tokens\":2}}",
        "{\"choices\":[{\"message\":{\"content\":\"bad \xff byte\"}}],\"usage\":{"
        "\"prompt_tokens\":1,\"completion_tokens\":2}}",
        "{\"choices\":[{\"message\":{\"content\":\"surrogate \xed\xa0\x80\"}}],\"usage\":{"
        "\"prompt_tokens\":1,\"completion_tokens\":2}}",
        "{\"choices\":[{\"message\":{\"content\":\"overlong \xc0\xaf\"}}],\"usage\":{"
        "\"prompt_tokens\":1,\"completion_tokens\":2}}",
        "{\"choices\":[{\"message\":{\"content\":\"cut \xe6\x97\"}}],\"usage\":{"
        "\"prompt_tokens\":1,\"completion_tokens\":2}}",
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "raw case %zu", i);
        check_read(what, raw[i], strlen(raw[i]), 1);
    }
    /* a NUL byte between tokens, and one after the text */
    static const char nul_between[] =
        "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\0\"usage\":{"
        "\"prompt_tokens\":1,\"completion_tokens\":2}}";
    check_read("a NUL between tokens", nul_between, sizeof nul_between - 1, 1);
    static const char nul_after[] = "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{"
                                    "\"prompt_tokens\":1,\"completion_tokens\":2}}\0";
    check_read("a NUL after the text", nul_after, sizeof nul_after - 1, 1);
    /* every OpenAI and Azure reply case, 2xx or not, reads as the tree
     * reads it (their expected files pin the tree) */
    const char *const dirs[] = {PROVIDERS_DIR "openai/reply", PROVIDERS_DIR "azure/reply"};
    size_t accepted = 0;
    for (size_t d = 0; d < 2; d++) {
        char *names[128];
        size_t n = check_list_dir(dirs[d], names, 128, NULL);
        for (size_t i = 0; i < n; i++) {
            char cdir[512];
            snprintf(cdir, sizeof cdir, "%.250s/%.250s", dirs[d], names[i]);
            size_t len = 0;
            char *status = check_read_in(cdir, "status", NULL),
                 *body = check_read_in(cdir, "body", &len);
            long st = status ? strtol(status, NULL, 10) : 0;
            if (body && st >= 200 && st <= 299) {
                struct provider_reply r = {0};
                struct err e = {0};
                int rc = openai_chat_read(body, len, &r, &e);
                accepted += rc == 0;
                provider_reply_release(&r);
                check_read(cdir, body, len, rc == 0 ? 0 : 1);
            }
            free(status);
            free(body);
            free(names[i]);
        }
    }
    ok(accepted >= 10, "the reader takes the usual replies (%zu of the cases)", accepted);
}

void test_providers(void)
{
    test_read();
    test_body_invalid_utf8();
    for (size_t ti = 0; ti < TEST_NTYPES; ti++) {
        enum provider_type t = test_types[ti];
        ok(provider_ops_for(t) != NULL, "an adapter for every type");
        size_t replies = run_replies(t);
        size_t builds = run_builds(t);
        ok(replies >= 12, "%s: at least 12 reply cases (%zu)", provider_type_name(t), replies);
        ok(builds >= 3, "%s: build cases (%zu)", provider_type_name(t), builds);
    }
    test_table();
    test_usage_rules();
    test_key_not_echoed();
    test_key_pieces_not_echoed();
    test_quote_bounds();
    test_nul_in_reply();
}

/*
 * bedrock: every case directory under tests/data/providers/bedrock/ is a
 * real-shaped exchange with the Converse API.
 * reply/<case>/{status,body,expected[,expected.tool_calls]}: the reply's
 * normalized text, finish and usage (the same line test_providers
 * prints), or its classification; the tool calls as JSON.
 * build/<case>/{request.json,call,expected.*}: the exact URL,
 * headers and body sent, or the refusal (expected.error). A SigV4 case's
 * Authorization is pinned, and checked to sign exactly the URL and body
 * sent.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "providers/adapter.h"
#include "providers/provider.h"
#include "redact.h"
#include "sigv4.h"

#define BEDROCK_DIR "tests/data/providers/bedrock/"

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
    snprintf(out, size,
             "ok finish=%s input=%llu output=%llu cache_read=%llu cache_write=%llu "
             "reasoning=%llu model=%s text=%s\n",
             provider_finish_name(r->finish), (unsigned long long)r->usage.tokens[COST_INPUT],
             (unsigned long long)r->usage.tokens[COST_OUTPUT],
             (unsigned long long)r->usage.tokens[COST_CACHE_READ],
             (unsigned long long)r->usage.tokens[COST_CACHE_WRITE],
             (unsigned long long)r->usage.tokens[COST_REASONING], r->model ? r->model : "-",
             r->text);
}

static size_t run_replies(void)
{
    char *names[128];
    size_t n = list_dirs(BEDROCK_DIR "reply", names, 128);
    for (size_t i = 0; i < n; i++) {
        char cdir[512];
        snprintf(cdir, sizeof cdir, BEDROCK_DIR "reply/%.250s", names[i]);
        size_t len = 0;
        char *status = read_in(cdir, "status", NULL), *body = read_in(cdir, "body", &len);
        char *expected = read_in(cdir, "expected", NULL);
        char *want_calls = read_in(cdir, "expected.tool_calls", NULL);
        struct provider_reply r = {0};
        struct err e = {0};
        int rc =
            bedrock_ops.parse(status ? strtol(status, NULL, 10) : 0, body ? body : "", len, &r, &e);
        char got[1024];
        describe_reply(rc, &r, &e, got, sizeof got);
        ok(expected && strcmp(expected, got) == 0, "%s:\n    expected: %s    got:      %s", cdir,
           expected ? expected : "(missing)\n", got);
        ok(rc == 0 || (strlen(e.msg) > 0 && r.text == NULL),
           "%s: an error says what happened and leaves nothing to release", cdir);
        json_t *want = want_calls ? json_loads(want_calls, 0, NULL) : NULL;
        char *got_calls = r.tool_calls ? json_dumps(r.tool_calls, JSON_COMPACT) : NULL;
        ok(want_calls ? json_equal(want, r.tool_calls) : r.tool_calls == NULL, "%s: tool calls %s",
           cdir, got_calls ? got_calls : "(none)");
        free(got_calls);
        json_decref(want);
        provider_reply_release(&r);
        free(status);
        free(body);
        free(expected);
        free(want_calls);
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

/* The Authorization sent signs exactly the URL, body and headers sent. */
static void check_signed(const char *cdir, const struct provider_call *call,
                         const struct provider_http *http)
{
    const struct sigv4_header ct = {"content-type", "application/json"};
    struct sigv4_input in = {.method = "POST",
                             .url = http->url,
                             .headers = &ct,
                             .nheaders = 1,
                             .body = http->body,
                             .body_len = http->body_len,
                             .region = call->region,
                             .service = "bedrock",
                             .access_key_id = call->access_key_id,
                             .secret_access_key = call->secret_access_key,
                             .session_token = call->session_token,
                             .now_s = call->now_s,
                             .content_sha256 = 1};
    struct sigv4_output sig;
    struct err e = {0};
    const char *auth = header_value(http, "authorization");
    const char *sha = header_value(http, "x-amz-content-sha256");
    char body_sha[65];
    sigv4_sha256_hex(http->body, http->body_len, body_sha);
    ok(sigv4_sign(&in, &sig, &e) == 0 && auth && strcmp(auth, sig.authorization) == 0 && sha &&
           strcmp(sha, body_sha) == 0,
       "%s: the signature covers the URL and body sent", cdir);
    sigv4_output_release(&sig);
}

static size_t run_builds(void)
{
    char *names[64];
    size_t n = list_dirs(BEDROCK_DIR "build", names, 64);
    for (size_t i = 0; i < n; i++) {
        char cdir[512];
        snprintf(cdir, sizeof cdir, BEDROCK_DIR "build/%.250s", names[i]);
        size_t len;
        char *json = read_in(cdir, "request.json", &len), *call_text = read_in(cdir, "call", NULL);
        struct request *req = NULL;
        struct err de = {0};
        if (!ok(json && call_text && request_decode(json, len, 1 << 20, &req, &de) == 0,
                "%s: request decodes (%s)", cdir, de.msg)) {
            free(json);
            free(call_text);
            free(names[i]);
            continue;
        }
        char model[256], max[32], base[256], key[256], region[64], akid[64], secret[128];
        char token[512], now[32], auth[16], budget[32];
        const char *a = call_get(call_text, "auth", auth, sizeof auth);
        const char *b = call_get(call_text, "reasoning_budget", budget, sizeof budget);
        const char *t = call_get(call_text, "now", now, sizeof now);
        const char *m = call_get(call_text, "max_tokens", max, sizeof max);
        struct provider_call call = {
            .req = req,
            .base_url = call_get(call_text, "base_url", base, sizeof base),
            .model = call_get(call_text, "model", model, sizeof model),
            .max_tokens = m ? (uint32_t)strtoul(m, NULL, 10) : 1024,
            .api_key = call_get(call_text, "api_key", key, sizeof key),
            .reasoning_budget = b ? (uint32_t)strtoul(b, NULL, 10) : 0,
            .region = call_get(call_text, "region", region, sizeof region),
            .access_key_id = call_get(call_text, "access_key_id", akid, sizeof akid),
            .secret_access_key = call_get(call_text, "secret_access_key", secret, sizeof secret),
            .session_token = call_get(call_text, "session_token", token, sizeof token),
            .auth = a && strcmp(a, "bearer") == 0 ? CONFIG_AUTH_BEARER : CONFIG_AUTH_SIGV4,
            .now_s = t ? strtoll(t, NULL, 10) : 0,
        };
        struct provider_http http = {0};
        struct err e = {0};
        int rc = bedrock_ops.build(&call, &http, &e);
        char *want_error = read_in(cdir, "expected.error", NULL);
        if (want_error) {
            char got[128];
            snprintf(got, sizeof got, "%s %s\n", err_kind_name(e.kind), e.code);
            ok(rc < 0 && strcmp(got, want_error) == 0 && http.url == NULL && http.nheaders == 0,
               "%s: refused as %s    got %s (%s)", cdir, want_error, got, e.msg);
        } else {
            char *want_url = read_in(cdir, "expected.url", NULL);
            char *want_headers = read_in(cdir, "expected.headers", NULL);
            char *want_body = read_in(cdir, "expected.json", NULL);
            ok(rc == 0, "%s: builds (%s)", cdir, e.msg);
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
            json_t *got =
                http.body ? json_loadb(http.body, http.body_len, JSON_ALLOW_NUL, NULL) : NULL;
            json_t *want = want_body ? json_loads(want_body, JSON_ALLOW_NUL, NULL) : NULL;
            ok(got && want && json_equal(got, want), "%s: body %s", cdir,
               http.body ? http.body : "(none)");
            if (rc == 0 && call.auth == CONFIG_AUTH_SIGV4)
                check_signed(cdir, &call, &http);
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

/* Bedrock's rule, pinned: inputTokens excludes the cache, so the four
 * counts are already disjoint and nothing is subtracted. */
static void test_usage_rule(void)
{
    const char *body = "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":"
                       "\"x\"}]}},\"stopReason\":\"end_turn\",\"usage\":{\"inputTokens\":200,"
                       "\"outputTokens\":500,\"cacheReadInputTokens\":800,"
                       "\"cacheWriteInputTokens\":100,\"totalTokens\":1600}}";
    struct provider_reply r = {0};
    struct err e = {0};
    ok(bedrock_ops.parse(200, body, strlen(body), &r, &e) == 0 &&
           r.usage.tokens[COST_INPUT] == 200 && r.usage.tokens[COST_CACHE_READ] == 800 &&
           r.usage.tokens[COST_CACHE_WRITE] == 100 && r.usage.tokens[COST_OUTPUT] == 500 &&
           r.usage.tokens[COST_REASONING] == 0,
       "Bedrock: cache reads and writes beside input, not inside it");
    provider_reply_release(&r);
}

/* The model id travels once encoded on the wire, whatever it holds. */
static void test_model_ids(void)
{
    static const struct {
        const char *model, *path;
    } cases[] = {
        {"anthropic.claude-3-5-sonnet-20240620-v1:0",
         "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"},
        {"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
         "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.amazon."
         "nova-pro-v1%3A0/converse"},
        {"my model+x", "/model/my%20model%2Bx/converse"},
    };
    const char *json =
        "{\"id\":\"a\",\"task\":\"t\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";
    struct request *req = NULL;
    struct err de = {0};
    ok(request_decode(json, strlen(json), 1 << 20, &req, &de) == 0, "decodes (%s)", de.msg);
    for (size_t i = 0; req && i < sizeof cases / sizeof cases[0]; i++) {
        struct provider_call call = {.req = req,
                                     .base_url = "https://bedrock-runtime.us-east-1.amazonaws.com/",
                                     .model = cases[i].model,
                                     .max_tokens = 100,
                                     .api_key = "k",
                                     .auth = CONFIG_AUTH_BEARER};
        struct provider_http http = {0};
        struct err e = {0};
        char want[512];
        snprintf(want, sizeof want, "https://bedrock-runtime.us-east-1.amazonaws.com%s",
                 cases[i].path);
        ok(bedrock_ops.build(&call, &http, &e) == 0 && strcmp(http.url, want) == 0, "model %s: %s",
           cases[i].model, http.url ? http.url : e.msg);
        provider_http_release(&http);
    }
    request_free(req);
}

/* AWS's signature errors quote the canonical request, which holds the
 * session token and the key id: the quote in e->msg masks them (dispatch
 * registers the AWS credentials for redaction). */
static void test_credentials_not_echoed(void)
{
    static const char token[] = "FwoGZXIvYXdzEXAMPLETOKEN//////////wEaDExampleSessionToken";
    static const char akid[] = "AKIAIOSFODNN7EXAMPLE";
    redact_reset();
    ok(redact_register(token) == 0 && redact_register(akid) == 0, "credentials registered");
    char body[1024];
    snprintf(body, sizeof body,
             "{\"message\":\"The request signature we calculated does not match the signature "
             "you provided. Credential=%s/20240620/us-east-1/bedrock/aws4_request\\n"
             "x-amz-security-token:%s\\n\"}",
             akid, token);
    struct provider_reply r = {0};
    struct err e = {0};
    int rc = bedrock_ops.parse(403, body, strlen(body), &r, &e);
    ok(rc < 0 && e.kind == ERR_UPSTREAM && strcmp(e.code, "auth") == 0, "a bad signature: auth");
    int leak = 0;
    for (size_t i = 0; i + 8 <= sizeof token - 1; i++)
        leak |= strstr(e.msg,
                       (char[9]){token[i], token[i + 1], token[i + 2], token[i + 3], token[i + 4],
                                 token[i + 5], token[i + 6], token[i + 7], '\0'}) != NULL;
    ok(!leak && !strstr(e.msg, "AKIAIOSF"), "no piece of the token or key id is quoted: %s", e.msg);
    ok(strstr(e.msg, "signature we calculated") != NULL, "the message is quoted: %s", e.msg);
    redact_reset();
}

void test_bedrock(void)
{
    ok(run_replies() >= 25, "bedrock: at least 25 reply cases");
    ok(run_builds() >= 15, "bedrock: at least 15 build cases");
    test_usage_rule();
    test_model_ids();
    test_credentials_not_echoed();
}

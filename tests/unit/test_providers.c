/*
 * providers: every case directory under tests/data/providers/<type>/ is a
 * real-shaped exchange. reply/<case>/{status,body,expected}: the reply's
 * normalized text, finish and usage, or its classification. build/<case>/
 * {request.json,call,expected.*}: the exact URL, headers and body sent.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "providers/provider.h"

#define PROVIDERS_DIR "tests/data/providers/"
#define TEST_KEY "sk-test-KEY"

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

static void describe_reply(int rc, const struct provider_reply *r, const struct err *e,
                           char *out, size_t size)
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

static size_t run_replies(enum provider_type type)
{
    char dir[256], *names[128];
    snprintf(dir, sizeof dir, PROVIDERS_DIR "%s/reply", provider_type_name(type));
    size_t n = list_dirs(dir, names, 128);
    const struct provider_ops *ops = provider_ops_for(type);
    for (size_t i = 0; i < n; i++) {
        char cdir[512];
        snprintf(cdir, sizeof cdir, "%.250s/%.250s", dir, names[i]);
        size_t len = 0;
        char *status = read_in(cdir, "status", NULL), *body = read_in(cdir, "body", &len);
        char *expected = read_in(cdir, "expected", NULL);
        struct provider_reply r = {0};
        struct err e = {0};
        int rc = ops->parse(status ? strtol(status, NULL, 10) : 0, body ? body : "", len, &r,
                            &e);
        char got[1024];
        describe_reply(rc, &r, &e, got, sizeof got);
        ok(expected && strcmp(expected, got) == 0, "%s:\n    expected: %s    got:      %s", cdir,
           expected ? expected : "(missing)\n", got);
        ok(rc == 0 || strlen(e.msg) > 0, "%s: an error says what happened", cdir);
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

static size_t run_builds(enum provider_type type)
{
    char dir[256], *names[64];
    snprintf(dir, sizeof dir, PROVIDERS_DIR "%s/build", provider_type_name(type));
    size_t n = list_dirs(dir, names, 64);
    const struct provider_ops *ops = provider_ops_for(type);
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
        char model[128], max[32], base[256], version[64];
        struct provider_call call = {
            .req = req,
            .base_url = call_get(call_text, "base_url", base, sizeof base),
            .model = call_get(call_text, "model", model, sizeof model),
            .max_tokens = (uint32_t)strtoul(call_get(call_text, "max_tokens", max, sizeof max),
                                            NULL, 10),
            .api_key = TEST_KEY,
            .api_version = call_get(call_text, "api_version", version, sizeof version)};
        struct provider_http http = {0};
        int rc = ops->build(&call, &http, &e);
        char *want_error = read_in(cdir, "expected.error", NULL);
        if (want_error) {
            char got[128];
            snprintf(got, sizeof got, "%s %s\n", err_kind_name(e.kind), e.code);
            ok(rc < 0 && strcmp(got, want_error) == 0, "%s: refused as %s", cdir, want_error);
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
            json_t *got = http.body ? json_loadb(http.body, http.body_len, JSON_ALLOW_NUL, NULL)
                                    : NULL;
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
    const char *an = "{\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"stop_reason\":\"end_turn\","
                     "\"usage\":{\"input_tokens\":200,\"cache_read_input_tokens\":800,"
                     "\"cache_creation_input_tokens\":100,\"output_tokens\":500}}";
    ok(provider_ops_for(PROVIDER_ANTHROPIC)->parse(200, an, strlen(an), &r, &e) == 0 &&
           r.usage.tokens[COST_INPUT] == 200 && r.usage.tokens[COST_CACHE_READ] == 800 &&
           r.usage.tokens[COST_CACHE_WRITE] == 100 && r.usage.tokens[COST_OUTPUT] == 500 &&
           r.usage.tokens[COST_REASONING] == 0,
       "Anthropic: cache reads and writes separate from input");
    provider_reply_release(&r);
}

/* An error message may quote the provider; it never carries our key. */
static void test_key_not_echoed(void)
{
    const char *body = "{\"error\":{\"message\":\"Incorrect API key provided: sk-test-KEY\"}}";
    struct provider_reply r = {0};
    struct err e = {0};
    provider_ops_for(PROVIDER_OPENAI)->parse(401, body, strlen(body), &r, &e);
    /* the provider itself echoed it here; what we must never do is add it */
    ok(e.kind == ERR_UPSTREAM, "401 is not retryable");
    const char *an = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                     "\"message\":\"Overloaded\"}}";
    provider_ops_for(PROVIDER_ANTHROPIC)->parse(529, an, strlen(an), &r, &e);
    ok(strstr(e.msg, TEST_KEY) == NULL && e.kind == ERR_TRANSIENT, "529 retryable, no key");
}

void test_providers(void)
{
    for (int t = 0; t < PROVIDER_NTYPES; t++) {
        ok(provider_ops_for((enum provider_type)t) != NULL, "an adapter for every type");
        size_t replies = run_replies((enum provider_type)t);
        size_t builds = run_builds((enum provider_type)t);
        ok(replies >= 12, "%s: at least 12 reply cases (%zu)",
           provider_type_name((enum provider_type)t), replies);
        ok(builds >= 3, "%s: build cases (%zu)", provider_type_name((enum provider_type)t),
           builds);
    }
    test_usage_rules();
    test_key_not_echoed();
}

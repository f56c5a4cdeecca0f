/*
 * libFuzzer target for every provider adapter, both directions:
 * - a reply (the first byte picks the adapter and the HTTP status, the
 *   rest is the body) is parsed into an answer whose text is
 *   NUL-terminated at text_len, whose tool calls are an array of
 *   {"id","name","arguments"} with string id and name and an object for
 *   arguments, and whose token counts are within COST_MAX_TOKENS; or
 *   refused with a kind, a code and a message that is valid UTF-8 and
 *   bounded, owning nothing. A body's retry delay is -1 or >= 0.
 * - a 2xx reply that OpenAI's in-place reader (openai_chat_read) accepts
 *   reads exactly as the jansson tree reads it: text bytes, finish,
 *   usage and model; the reader never accepts what the tree refuses.
 * - a request (when the bytes after the first decode as one) is built by
 *   every adapter, SigV4 and bearer alike, into a URL and a body that is
 *   JSON, with at most PROVIDER_MAX_HEADERS headers, each without CR or
 *   LF; or refused as ERR_INPUT.
 * Any disagreement aborts.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "providers/adapter.h"
#include "providers/provider.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const long statuses[] = {200, 200, 200, 200, 201, 400, 401, 403, 404,
                                408, 413, 422, 424, 429, 500, 503, 529, 0};

static void check_tool_calls(const json_t *calls)
{
    if (!calls)
        return;
    CHECK(json_is_array(calls) && json_array_size(calls) > 0);
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c)
    {
        CHECK(json_is_string(json_object_get(c, "id")));
        CHECK(json_is_string(json_object_get(c, "name")));
        CHECK(json_is_object(json_object_get(c, "arguments")));
    }
}

static void fuzz_reply(enum provider_type type, long status, const char *body, size_t len)
{
    const struct provider_ops *ops = provider_ops_for(type);
    struct provider_reply r = {0};
    struct err e = {0};
    if (ops->parse(status, body, len, &r, &e) == 0) {
        CHECK(r.text && r.text[r.text_len] == '\0');
        check_tool_calls(r.tool_calls);
        for (int c = 0; c < COST_NCAT; c++)
            CHECK(r.usage.tokens[c] <= COST_MAX_TOKENS);
        CHECK((unsigned)r.finish <= PROVIDER_FINISH_OTHER);
        provider_reply_release(&r);
    } else {
        CHECK(e.kind == ERR_TRANSIENT || e.kind == ERR_UPSTREAM || e.kind == ERR_FATAL);
        CHECK(e.code[0] != '\0' && e.msg[0] != '\0');
        json_t *as_json = json_string(e.msg); /* NULL when not valid UTF-8 */
        CHECK(as_json != NULL);
        json_decref(as_json);
        CHECK(strlen(e.msg) <= 260);
        CHECK(r.text == NULL && r.tool_calls == NULL && r.model == NULL);
    }
    if (ops->retry_delay_ms)
        CHECK(ops->retry_delay_ms(body, len) >= -1);
}

/* The in-place reader against the tree, on any body as a 200. */
static void fuzz_read(const char *body, size_t len)
{
    struct provider_reply fast = {0}, tree = {0};
    struct err ef = {0}, et = {0};
    int rf = openai_chat_read(body, len, &fast, &ef);
    int rt = openai_chat_parse_tree(200, body, len, &tree, &et);
    CHECK(rf == 0 || rf == 1 || (rf == -1 && ef.kind == ERR_FATAL));
    if (rf == 1)
        CHECK(fast.text == NULL && fast.model == NULL && fast.tool_calls == NULL);
    if (rf == 0) {
        CHECK(rt == 0);
        CHECK(fast.text_len == tree.text_len && memcmp(fast.text, tree.text, tree.text_len) == 0 &&
              fast.text[fast.text_len] == '\0');
        CHECK(fast.finish == tree.finish && fast.tool_calls == NULL && tree.tool_calls == NULL);
        CHECK(memcmp(fast.usage.tokens, tree.usage.tokens, sizeof fast.usage.tokens) == 0);
        CHECK((fast.model == NULL) == (tree.model == NULL));
        CHECK(!fast.model || strcmp(fast.model, tree.model) == 0);
    }
    provider_reply_release(&fast);
    provider_reply_release(&tree);
}

static void fuzz_build(const char *data, size_t len, unsigned variant)
{
    struct request *req = NULL;
    struct err e = {0};
    if (request_decode(data, len, 1 << 20, &req, &e) < 0)
        return;
    for (int t = 0; t < PROVIDER_NTYPES; t++) {
        const struct provider_ops *ops = provider_ops_for((enum provider_type)t);
        struct provider_call call = {
            .req = req,
            .base_url = "https://provider.example",
            .model = (variant & 1) ? "anthropic.claude-3-5-sonnet-20240620-v1:0" : "model-1",
            .max_tokens = 1 + (variant >> 1) * 997,
            .api_key = "test-key",
            .api_version = (variant & 2) ? "2024-10-21" : NULL,
            .reasoning_budget = req->reasoning_budget,
            .region = "us-east-1",
            .access_key_id = "AKIDEXAMPLE",
            .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            .session_token = (variant & 4) ? "session-token" : NULL,
            .auth = t == PROVIDER_BEDROCK && !(variant & 8) ? CONFIG_AUTH_SIGV4
                    : (variant & 8)                         ? CONFIG_AUTH_BEARER
                                                            : CONFIG_AUTH_API_KEY,
            .now_s = 1796192940,
        };
        struct provider_http http = {0};
        struct err be = {0};
        if (ops->build(&call, &http, &be) == 0) {
            CHECK(http.url && strncmp(http.url, "https://provider.example/", 25) == 0);
            CHECK(http.nheaders <= PROVIDER_MAX_HEADERS);
            for (size_t h = 0; h < http.nheaders; h++)
                CHECK(!strpbrk(http.headers[h], "\r\n"));
            json_t *body = json_loadb(http.body, http.body_len, JSON_ALLOW_NUL, NULL);
            CHECK(body != NULL);
            json_decref(body);
            provider_http_release(&http);
        } else {
            CHECK(be.kind == ERR_INPUT && http.url == NULL && http.body == NULL);
        }
    }
    request_free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    if (sel & 0x80) {
        fuzz_build(rest, len, sel & 0x0f);
        return 0;
    }
    enum provider_type type = (enum provider_type)(sel % PROVIDER_NTYPES);
    long status = statuses[(sel / PROVIDER_NTYPES) % (sizeof statuses / sizeof statuses[0])];
    fuzz_reply(type, status, rest, len);
    if (type == PROVIDER_OPENAI)
        fuzz_read(rest, len);
    return 0;
}

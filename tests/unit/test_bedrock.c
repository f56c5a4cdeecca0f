/*
 * bedrock: what is Bedrock's own. The cases under
 * tests/data/providers/bedrock/ (replies, and the requests sent with their
 * SigV4 signatures) are checked by test_providers.c, as every adapter's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "providers/adapter.h"
#include "providers/provider.h"
#include "redact.h"

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
    test_usage_rule();
    test_model_ids();
    test_credentials_not_echoed();
}

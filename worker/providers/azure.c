/*
 * azure: Azure OpenAI, which speaks OpenAI's Chat Completions: the body
 * and the reply are openai.c's (openai_chat_body, openai_chat_parse),
 * never a copy. What differs is here: the URL (a deployment URL with
 * api-version, or the v1 path), the key header (api-key, or a bearer
 * token from Entra ID), and the content filter's error. Pure: builds
 * bytes and reads bytes, never touches the network.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/adapter.h"

/* Percent-encodes what is not unreserved (RFC 3986): a deployment name or
 * an api-version is a path segment or a query value, never syntax. New
 * string, NULL when out of memory. */
static char *azure_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* With an api-version: the deployment URL, where call->model is the
 * deployment's name and the body names no model. Without: the v1 API,
 * which takes the deployment's name as "model" and no api-version. */
static char *azure_path(const struct provider_call *call)
{
    if (!call->api_version || !*call->api_version)
        return strdup("/openai/v1/chat/completions");
    char *model = azure_escape(call->model), *version = azure_escape(call->api_version);
    char *path = NULL;
    if (model && version) {
        size_t n = strlen(model) + strlen(version) + 64;
        if ((path = malloc(n)))
            snprintf(path, n, "/openai/deployments/%s/chat/completions?api-version=%s", model,
                     version);
    }
    free(model);
    free(version);
    return path;
}

static int azure_build(const struct provider_call *call, struct provider_http *out, struct err *e)
{
    int v1 = !call->api_version || !*call->api_version;
    if (openai_chat_body(call, v1, out, e) < 0)
        return -1;
    const char *key = call->api_key ? call->api_key : "";
    char *auth = NULL, *path = azure_path(call);
    /* an Entra ID token travels as a bearer token; a resource key in its
     * own header (the default) */
    int bearer = call->auth == CONFIG_AUTH_BEARER;
    if (bearer) {
        size_t n = strlen(key) + sizeof "Bearer ";
        if ((auth = malloc(n)))
            snprintf(auth, n, "Bearer %s", key);
    }
    int rc = path ? adapter_url(out, call->base_url, path) : -1;
    if (rc == 0)
        rc = bearer ? (auth ? adapter_header(out, "Authorization", auth) : -1)
                    : adapter_header(out, "api-key", key);
    if (rc == 0)
        rc = adapter_header(out, "Content-Type", "application/json");
    if (auth) {
        memset(auth, 0, strlen(auth)); /* no stray copy of the key in freed memory */
        free(auth);
    }
    free(path);
    if (rc < 0) {
        provider_http_release(out);
        return err_set(e, ERR_FATAL, "oom", "out of memory building the request");
    }
    return 0;
}

/* {"error":{"code":"content_filter","message":...,"innererror":{"code":
 * "ResponsibleAIPolicyViolation","content_filter_result":{...}}}}: the
 * prompt was filtered. The same prompt is filtered again, so no retry of
 * this deployment can help, whatever the status says. */
static int azure_content_filtered(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *error = json_object_get(root, "error");
    const char *code = json_string_value(json_object_get(error, "code"));
    const char *inner =
        json_string_value(json_object_get(json_object_get(error, "innererror"), "code"));
    int filtered = (code && strcmp(code, "content_filter") == 0) ||
                   (inner && strcmp(inner, "ResponsibleAIPolicyViolation") == 0);
    json_decref(root);
    return filtered;
}

static int azure_parse(long status, const char *body, size_t len, struct provider_reply *out,
                       struct err *e)
{
    if (status >= 200 && status <= 299)
        return openai_chat_parse(status, body, len, out, e);
    if (!azure_content_filtered(body, len))
        return openai_chat_parse(status, body, len, out, e); /* OpenAI's error shape */
    int rc = openai_chat_parse(status, body, len, out, e);   /* quotes the message */
    if (e) {
        e->kind = ERR_UPSTREAM;
        snprintf(e->code, sizeof e->code, "content_filter");
    }
    return rc;
}

const struct provider_ops azure_ops = {"azure", azure_build, azure_parse, NULL};

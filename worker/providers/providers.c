/*
 * providers: the table from provider type to adapter, and what every
 * adapter shares. Adding an API family: a new file and one line below.
 */
#include <stdlib.h>
#include <string.h>

#include "providers/adapter.h"

static const struct provider_ops *const provider_table[PROVIDER_NTYPES] = {
    [PROVIDER_OPENAI] = &openai_ops,
    [PROVIDER_ANTHROPIC] = &anthropic_ops,
};

const struct provider_ops *provider_ops_for(enum provider_type type)
{
    return (unsigned)type < PROVIDER_NTYPES ? provider_table[type] : NULL;
}

void provider_http_release(struct provider_http *http)
{
    free(http->url);
    for (size_t i = 0; i < http->nheaders; i++)
        free(http->headers[i]);
    free(http->body);
    memset(http, 0, sizeof *http);
}

void provider_reply_release(struct provider_reply *reply)
{
    free(reply->text);
    free(reply->model);
    memset(reply, 0, sizeof *reply);
}

const char *provider_finish_name(enum provider_finish finish)
{
    static const char *const names[] = {"stop", "length", "content_filter", "tool_calls",
                                        "other"};
    return (unsigned)finish < sizeof names / sizeof names[0] ? names[finish] : "other";
}

int adapter_header(struct provider_http *out, const char *name, const char *value)
{
    if (out->nheaders == PROVIDER_MAX_HEADERS)
        return -1;
    size_t n = strlen(name) + strlen(value) + 3;
    char *h = malloc(n);
    if (!h)
        return -1;
    memcpy(h, name, strlen(name));
    memcpy(h + strlen(name), ": ", 2);
    memcpy(h + strlen(name) + 2, value, strlen(value) + 1);
    out->headers[out->nheaders++] = h;
    return 0;
}

int adapter_url(struct provider_http *out, const char *base, const char *path)
{
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    out->url = malloc(blen + strlen(path) + 1);
    if (!out->url)
        return -1;
    memcpy(out->url, base, blen);
    memcpy(out->url + blen, path, strlen(path) + 1);
    return 0;
}

int adapter_body(struct provider_http *out, json_t *body)
{
    out->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!out->body)
        return -1;
    out->body_len = strlen(out->body);
    return 0;
}

int adapter_count(const json_t *obj, const char *key, uint64_t *out)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v)) {
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > COST_MAX_TOKENS)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int adapter_text(struct provider_reply *out, const char *text, size_t len)
{
    out->text = malloc(len + 1);
    if (!out->text)
        return -1;
    memcpy(out->text, text, len);
    out->text[len] = '\0';
    out->text_len = len;
    return 0;
}

int adapter_status_error(long status, const char *code, const char *message, struct err *e)
{
    /* what a retry can fix: rate limits, overload, server trouble */
    int transient = status == 408 || status == 409 || status == 425 || status == 429 ||
                    status >= 500 || status == 0;
    const char *kind = code;
    if (!kind) {
        switch (status) {
        case 0:
            kind = "no_response";
            break;
        case 400:
        case 422:
            kind = "bad_request";
            break;
        case 401:
        case 403:
            kind = "auth";
            break;
        case 404:
            kind = "not_found";
            break;
        case 408:
            kind = "timeout";
            break;
        case 413:
            kind = "too_large";
            break;
        case 429:
            kind = "rate_limited";
            break;
        case 503:
            kind = "unavailable";
            break;
        case 529:
            kind = "overloaded";
            break;
        default:
            kind = status >= 500 ? "server_error" : "rejected";
        }
    }
    return err_set(e, transient ? ERR_TRANSIENT : ERR_UPSTREAM, kind, "HTTP %ld: %.200s",
                   status, message ? message : "(no message)");
}

/*
 * providers: the table from provider type to adapter, and what every
 * adapter shares. Adding an API family: a new file and one line below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/adapter.h"
#include "redact.h"

static const struct provider_ops *const provider_table[PROVIDER_NTYPES] = {
    [PROVIDER_OPENAI] = &openai_ops, [PROVIDER_ANTHROPIC] = &anthropic_ops,
    [PROVIDER_GEMINI] = &gemini_ops, [PROVIDER_BEDROCK] = &bedrock_ops,
    [PROVIDER_AZURE] = &azure_ops,
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
    json_decref(reply->tool_calls);
    memset(reply, 0, sizeof *reply);
}

const char *provider_finish_name(enum provider_finish finish)
{
    static const char *const names[] = {"stop", "length", "content_filter", "tool_calls", "other"};
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

/* First allocation of a body: its strings plus room for the keys and
 * escapes; a larger body grows by doubling. */
#define ADAPTER_BODY_SLACK 512u

void adapter_body_init(struct jsonw *w, const struct request *req)
{
    size_t n = ADAPTER_BODY_SLACK + (req->system ? req->system_len : 0);
    for (size_t i = 0; i < req->nmessages; i++)
        for (size_t k = 0; k < req->messages[i].nparts; k++)
            n += req->messages[i].parts[k].text_len + 64;
    jsonw_init(w, n + n / 8, ADAPTER_BODY_MAX);
}

int adapter_body_finish(struct provider_http *out, struct jsonw *w)
{
    size_t len = 0;
    char *body = w->replaced == 0 ? jsonw_finish(w, &len) : NULL;
    if (!body) {
        jsonw_release(w);
        return -1;
    }
    out->body = body;
    out->body_len = len;
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

int adapter_total(const json_t *usage, const char *key, uint64_t *out)
{
    return json_is_integer(json_object_get(usage, key)) ? adapter_count(usage, key, out) : -1;
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

/* Bytes of a provider's message kept in e->msg: enough to say what went
 * wrong, bounded so that a chatty error page cannot fill logs. */
#define ADAPTER_QUOTE_MAX 200

/* ASCII only, whatever the locale: keys are ASCII */
static int adapter_word_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' ||
           c == '_' || c == '*';
}

/* A word that is, or shows part of, a credential. parse() never sees our
 * key, so it cannot look for it; it recognizes what the providers echo:
 * OpenAI's and Anthropic's keys start with "sk-" (sk-proj-, sk-svcacct-,
 * sk-ant-api03-), Google's with "AIza", and OpenAI's 401 repeats the key with its middle
 * masked by '*' ("sk-proj-********abcd"). */
static int adapter_secret_word(const char *w, size_t n)
{
    if (n >= 3 && (strncmp(w, "sk-", 3) == 0 || strncmp(w, "sk_", 3) == 0))
        return 1;
    /* Google's API keys: "AIza" and 35 more characters */
    if (n >= 20 && strncmp(w, "AIza", 4) == 0)
        return 1;
    return n >= 8 && memchr(w, '*', n) != NULL;
}

/* Length of the valid UTF-8 sequence at p, or 0 when p does not start one
 * (a truncated or invalid sequence must not reach e->msg: the result
 * encoder rejects invalid UTF-8). */
static size_t adapter_utf8_len(const unsigned char *p)
{
    size_t n = *p < 0x80                  ? 1
               : *p >= 0xC2 && *p <= 0xDF ? 2
               : *p >= 0xE0 && *p <= 0xEF ? 3
               : *p >= 0xF0 && *p <= 0xF4 ? 4
                                          : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    /* no overlong forms, no surrogates, nothing above U+10FFFF */
    if ((*p == 0xE0 && p[1] < 0xA0) || (*p == 0xED && p[1] > 0x9F) || (*p == 0xF0 && p[1] < 0x90) ||
        (*p == 0xF4 && p[1] > 0x8F))
        return 0;
    return n;
}

/* Copies msg[0..len) (NUL-terminated at len) into out (size >
 * ADAPTER_QUOTE_MAX + 3): at most ADAPTER_QUOTE_MAX bytes, cut between
 * characters, control characters as spaces, invalid bytes as '?',
 * credential-looking words redacted. msg is already redacted: the cut may
 * fall anywhere, even inside what was a key. */
static void adapter_quote(const char *msg, size_t len, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)msg, *end = p + len;
    size_t o = 0;
    while (p < end) {
        if (adapter_word_char(*p)) {
            size_t n = 0;
            while (p + n < end && adapter_word_char(p[n]))
                n++;
            const char *word = (const char *)p;
            size_t wlen = n;
            if (adapter_secret_word(word, n)) {
                word = "[redacted]";
                wlen = strlen(word);
            }
            if (o + wlen > ADAPTER_QUOTE_MAX) {
                if (word == (const char *)p) { /* a long plain word: keep its start */
                    memcpy(out + o, word, ADAPTER_QUOTE_MAX - o);
                    o = ADAPTER_QUOTE_MAX;
                }
                break;
            }
            memcpy(out + o, word, wlen);
            o += wlen;
            p += n;
            continue;
        }
        /* the NUL at msg[len] stops a sequence cut by the end */
        size_t n = adapter_utf8_len(p);
        if (o + (n ? n : 1) > ADAPTER_QUOTE_MAX)
            break;
        if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7F))) {
            out[o++] = n ? ' ' : '?';
            p++;
        } else {
            memcpy(out + o, p, n);
            o += n;
            p += n;
        }
    }
    if (p < end && o + 3 < size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

int adapter_status_error(long status, const char *code, const char *message, size_t len,
                         struct err *e)
{
    /* what a retry can fix: rate limits, overload, server trouble, and no
     * answer at all (status 0 is the HTTP layer's business; a defence) */
    int transient = status == 408 || status == 409 || status == 425 || status == 429 ||
                    status >= 500 || status <= 0;
    const char *kind = code;
    if (!kind) {
        switch (status) {
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
        case 504:
            kind = "timeout";
            break;
        case 409:
            kind = "conflict";
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
            kind = status <= 0 ? "no_response" : status >= 500 ? "server_error" : "rejected";
        }
    }
    /* The whole message is redacted before it is cut: a key that
     * straddles the bound would otherwise keep a piece too short to be
     * recognized once cut (issue 7: 33 of 35 characters got through). */
    if (!message) {
        message = "(no message)";
        len = strlen(message);
    }
    char quoted[ADAPTER_QUOTE_MAX + 4];
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, message, len);
        len = redact(copy, len);
        copy[len] = '\0';
        adapter_quote(copy, len, quoted, sizeof quoted);
        free(copy);
    } else {
        snprintf(quoted, sizeof quoted, "(message withheld: out of memory)");
    }
    return err_set(e, transient ? ERR_TRANSIENT : ERR_UPSTREAM, kind, "HTTP %ld: %s", status,
                   quoted);
}

char *adapter_message_text(const struct request_message *m, size_t *len)
{
    size_t n = m->content ? m->content_len : 0;
    if (!m->content)
        for (size_t i = 0; i < m->nparts; i++)
            if (m->parts[i].type == REQUEST_PART_TEXT)
                n += m->parts[i].text_len;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    size_t used = 0;
    if (m->content) {
        memcpy(s, m->content, m->content_len);
        used = m->content_len;
    }
    for (size_t i = 0; !m->content && i < m->nparts; i++) {
        if (m->parts[i].type != REQUEST_PART_TEXT)
            continue;
        memcpy(s + used, m->parts[i].text, m->parts[i].text_len);
        used += m->parts[i].text_len;
    }
    s[used] = '\0';
    *len = used;
    return s;
}

void adapter_w_parts(struct jsonw *w, const struct request_message *m,
                     void (*image)(struct jsonw *w, const struct request_part *part))
{
    for (size_t i = 0; i < m->nparts; i++) {
        const struct request_part *part = &m->parts[i];
        if (part->type != REQUEST_PART_TEXT) {
            image(w, part);
            continue;
        }
        jsonw_object_open(w);
        jsonw_kstring(w, "type", "text");
        jsonw_key(w, "text");
        jsonw_string_n(w, part->text, part->text_len);
        jsonw_object_close(w);
    }
}

void adapter_w_sampling(struct jsonw *w, const struct request *req, const char *top_p_key,
                        const char *stop_key)
{
    if (req->has_temperature) {
        jsonw_key(w, "temperature");
        jsonw_real(w, req->temperature);
    }
    if (req->has_top_p) {
        jsonw_key(w, top_p_key);
        jsonw_real(w, req->top_p);
    }
    if (req->nstop > 0) {
        jsonw_key(w, stop_key);
        jsonw_array_open(w);
        for (size_t i = 0; i < req->nstop && i < REQUEST_MAX_STOP; i++)
            jsonw_string_n(w, req->stop[i], req->stop_len[i]);
        jsonw_array_close(w);
    }
}

/* The stop sequences as a JSON array of strings; NULL when out of memory. */
static json_t *adapter_stop_list(const struct request *req)
{
    json_t *stop = json_array();
    for (size_t i = 0; stop && i < req->nstop && i < REQUEST_MAX_STOP; i++)
        if (json_array_append_new(stop, json_stringn(req->stop[i], req->stop_len[i])) < 0) {
            json_decref(stop);
            stop = NULL;
        }
    return stop;
}

int adapter_sampling(json_t *obj, const struct request *req, const char *top_p_key,
                     const char *stop_key)
{
    int failed = 0;
    if (req->has_temperature)
        failed = json_object_set_new(obj, "temperature", json_real(req->temperature)) < 0;
    if (!failed && req->has_top_p)
        failed = json_object_set_new(obj, top_p_key, json_real(req->top_p)) < 0;
    if (!failed && req->nstop > 0)
        failed = json_object_set_new(obj, stop_key, adapter_stop_list(req)) < 0;
    return failed ? -1 : 0;
}

int adapter_data_url(const char *url, size_t len, const char **media_type, size_t *media_type_len,
                     const char **data, size_t *data_len)
{
    static const char scheme[] = "data:", marker[] = ";base64,";
    if (len < sizeof scheme - 1 || memcmp(url, scheme, sizeof scheme - 1) != 0)
        return -1;
    const char *mt = url + sizeof scheme - 1, *end = url + len;
    for (const char *p = mt; p + sizeof marker - 1 <= end; p++) {
        if (*p == ',')
            return -1; /* a data: URL that is not base64 */
        if (memcmp(p, marker, sizeof marker - 1) == 0) {
            if (p == mt)
                return -1;
            *media_type = mt;
            *media_type_len = (size_t)(p - mt);
            *data = p + sizeof marker - 1;
            *data_len = (size_t)(end - *data);
            return 0;
        }
    }
    return -1;
}

json_t *adapter_format_schema(const struct request *req)
{
    if (req->format == REQUEST_FORMAT_JSON_SCHEMA && req->schema)
        return json_incref(req->schema);
    if (req->format != REQUEST_FORMAT_TEXT)
        return json_pack("{s:s}", "type", "object");
    return NULL;
}

int adapter_format_tool_clash(const struct request *req)
{
    for (size_t i = 0; i < req->ntools; i++)
        if (strcmp(req->tools[i].name, ADAPTER_FORMAT_TOOL) == 0)
            return 1;
    return 0;
}

int adapter_tool_call(json_t *calls, const char *id, const char *name, json_t *arguments)
{
    return json_array_append_new(
        calls, json_pack("{s:s, s:s, s:O}", "id", id, "name", name, "arguments", arguments));
}

int adapter_answer_text(struct provider_reply *out, const json_t *format_input, size_t text_len)
{
    out->text_len = 0;
    if (!format_input) {
        out->text = malloc(text_len + 1);
        if (!out->text)
            return -1;
        out->text[0] = '\0';
        return 0;
    }
    out->text = json_dumps(format_input, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!out->text)
        return -1;
    out->text_len = strlen(out->text);
    return 0;
}

void adapter_answer_append(struct provider_reply *out, const json_t *text)
{
    if (!json_is_string(text))
        return;
    memcpy(out->text + out->text_len, json_string_value(text), json_string_length(text));
    out->text_len += json_string_length(text);
}

void adapter_answer_calls(struct provider_reply *out, json_t *calls, enum provider_finish finish,
                          int format_used)
{
    if (json_array_size(calls) > 0)
        out->tool_calls = calls;
    else
        json_decref(calls);
    out->finish = finish;
    if (finish == PROVIDER_FINISH_TOOL_CALLS && !out->tool_calls && format_used)
        out->finish = PROVIDER_FINISH_STOP;
}

const char *adapter_error_message(const json_t *message, const json_t *root, const char *body,
                                  size_t body_len, size_t *len)
{
    const char *msg = json_string_value(message);
    *len = msg ? json_string_length(message) : 0;
    if (!msg && !root && body_len > 0) {
        msg = body;
        *len = body_len;
    }
    return msg;
}

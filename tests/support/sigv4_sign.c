/*
 * sigv4_sign: runs the worker's SigV4 signer (worker/sigv4.c) on requests
 * read as JSON lines on stdin and prints one JSON line per request on
 * stdout, for tests/cli/check_sigv4.sh to compare with @smithy/signature-v4.
 *
 * In:  {"method","url","headers":[[name,value],...],"body": string,
 *       "region","service","access_key_id","secret_access_key",
 *       "session_token": string|null, "now_s": int, "content_sha256": bool}
 * Out: {"authorization","amz_date","canonical_request","headers":[...]}
 *      or {"error": "..."}.
 * A test tool: test credentials only, never real ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sigv4.h"

static const char *field(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_t *sign_one(const json_t *req)
{
    struct sigv4_header headers[SIGV4_MAX_HEADERS];
    const json_t *hs = json_object_get(req, "headers");
    size_t nh = json_array_size(hs);
    if (nh > SIGV4_MAX_HEADERS)
        return json_pack("{s:s}", "error", "too many headers");
    for (size_t i = 0; i < nh; i++) {
        headers[i].name = json_string_value(json_array_get(json_array_get(hs, i), 0));
        headers[i].value = json_string_value(json_array_get(json_array_get(hs, i), 1));
    }
    const json_t *body = json_object_get(req, "body");
    struct sigv4_input in = {
        .method = field(req, "method"),
        .url = field(req, "url"),
        .headers = headers,
        .nheaders = nh,
        .body = json_string_value(body),
        .body_len = json_is_string(body) ? json_string_length(body) : 0,
        .region = field(req, "region"),
        .service = field(req, "service"),
        .access_key_id = field(req, "access_key_id"),
        .secret_access_key = field(req, "secret_access_key"),
        .session_token = field(req, "session_token"),
        .now_s = json_integer_value(json_object_get(req, "now_s")),
        .content_sha256 = json_is_true(json_object_get(req, "content_sha256")),
    };
    struct sigv4_output out;
    struct err e = {0};
    if (sigv4_sign(&in, &out, &e) < 0)
        return json_pack("{s:s}", "error", e.msg);
    json_t *lines = json_array();
    for (size_t i = 0; lines && i < out.nheaders; i++)
        json_array_append_new(lines, json_string(out.headers[i]));
    json_t *res =
        json_pack("{s:s, s:s, s:s, s:o*}", "authorization", out.authorization, "amz_date",
                  out.amz_date, "canonical_request", out.canonical_request, "headers", lines);
    sigv4_output_release(&out);
    return res;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        json_error_t jerr;
        json_t *req = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &jerr);
        json_t *res = req ? sign_one(req) : json_pack("{s:s}", "error", jerr.text);
        char *text = res ? json_dumps(res, JSON_COMPACT) : NULL;
        if (text)
            printf("%s\n", text);
        else
            rc = 1;
        free(text);
        json_decref(res);
        json_decref(req);
    }
    free(line);
    return rc;
}

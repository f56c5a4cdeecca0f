/*
 * sigv4: AWS Signature Version 4 (AWS4-HMAC-SHA256) for one HTTP request,
 * as AWS documents it ("Create a signed AWS API request") and as
 * @smithy/signature-v4 (the JavaScript SDK's signer) computes it with its
 * defaults: uriEscapePath (a service other than S3: the path, as it goes on
 * the wire, is normalized and URI-encoded once more, so a model id sent as
 * "v1%3A0" is signed as "v1%253A0") and applyChecksum (the optional
 * x-amz-content-sha256 header). tests/cli/check_sigv4.sh compares both on
 * generated requests.
 *
 * Pure: no clock (the caller passes the time), no environment, no I/O.
 */
#ifndef SWITCHYARD_SIGV4_H
#define SWITCHYARD_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SIGV4_MAX_HEADERS 16    /* headers the caller asks to sign */
#define SIGV4_MAX_URL 8192      /* bytes of the URL */
#define SIGV4_MAX_FIELD 8192    /* bytes of one header value, token or key */
#define SIGV4_MAX_OUT_HEADERS 5 /* host, x-amz-date, token, content sha256, authorization */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A header to sign and send; the caller sends it itself. */
struct sigv4_header {
    const char *name; /* any case; signed lowercased */
    const char *value;
};

/* Everything is borrowed for the duration of sigv4_sign. */
struct sigv4_input {
    const char *method; /* "POST" */
    /* "https://host[:port]/path?query", path and query exactly as they go
     * on the wire (percent-encoded: a model id's ':' as %3A); a fragment
     * is ignored. The Host header signed and sent is the URL's authority
     * as written. */
    const char *url;
    /* more headers to sign (content-type, ...): every one given is signed;
     * none may be host, authorization, date, x-amz-date,
     * x-amz-security-token or x-amz-content-sha256 (the signer's own), nor
     * repeat a name, nor hold CR or LF */
    const struct sigv4_header *headers;
    size_t nheaders;
    const char *body; /* may be NULL when body_len is 0 */
    size_t body_len;
    const char *region;  /* "us-east-1" */
    const char *service; /* "bedrock" */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "": none (long-term keys) */
    int64_t now_s;             /* the signing time, seconds since the epoch */
    /* also sign and send x-amz-content-sha256 (smithy's default, S3 needs
     * it; Bedrock accepts it either way) */
    int content_sha256;
};

/* The signature and the headers that carry it. Owned: release with
 * sigv4_output_release (safe on a zeroed or released struct). */
struct sigv4_output {
    /* "Name: value" lines to add to the request, in this order: host,
     * x-amz-date, x-amz-security-token (when a token is set),
     * x-amz-content-sha256 (when asked), authorization */
    char *headers[SIGV4_MAX_OUT_HEADERS];
    size_t nheaders;
    /* "AWS4-HMAC-SHA256 Credential=AKID/scope, SignedHeaders=..., Signature=hex" */
    char *authorization;
    char amz_date[17];       /* "20150830T123600Z" (always 16 characters) */
    char signature[65];      /* lowercase hex */
    char *canonical_request; /* what was signed, for diagnostics and tests */
    char *string_to_sign;
};

/* Signs. 0 with *out filled; -1 with e set (ERR_CONFIG "sigv4": a URL that
 * is not http(s)://host/..., a forbidden or repeated header, an input
 * over its cap, a time before 1970 or after 9999; ERR_FATAL "oom"), *out
 * then left empty. */
int sigv4_sign(const struct sigv4_input *in, struct sigv4_output *out, struct err *e);
void sigv4_output_release(struct sigv4_output *out);

/* Lowercase hex SHA-256 of data[0..len) into hex (65 bytes). */
void sigv4_sha256_hex(const void *data, size_t len, char hex[65]);

#endif

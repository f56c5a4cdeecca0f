/*
 * sigv4: AWS Signature Version 4 for one request (sigv4.h says which
 * variant). Builds the canonical request, the string to sign and the
 * signing key with libcrypto's SHA-256 and HMAC.
 *
 * Must never read the clock, the environment or the network, and never
 * let a secret reach a string it returns other than as an HMAC.
 * curl 7.88's CURLOPT_AWS_SIGV4 is not used: it encodes the path once, so
 * a model id with ':' is signed differently from how AWS verifies it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "sigv4.h"

/* The canonical request is built from capped inputs; this bounds it too,
 * so a bug cannot grow it without limit. */
#define SIGV4_MAX_TEXT ((size_t)256 * 1024)

struct sigv4_buf {
    char *p;
    size_t len, cap;
    int failed; /* out of memory or over SIGV4_MAX_TEXT: the text is unusable */
};

static void buf_add(struct sigv4_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = cap <= SIGV4_MAX_TEXT ? realloc(b->p, cap) : NULL;
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct sigv4_buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* RFC 3986 unreserved: the only bytes SigV4 leaves unencoded */
static int sigv4_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Appends s[0..n) URI-encoded (uppercase hex); '/' kept when keep_slash. */
static void buf_encode(struct sigv4_buf *b, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (sigv4_unreserved(c) || (keep_slash && c == '/')) {
            buf_add(b, (const char *)&s[i], 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_add(b, esc, 3);
        }
    }
}

static void sigv4_hex(const unsigned char *bin, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bin[i] >> 4];
        out[2 * i + 1] = hex[bin[i] & 15];
    }
    out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data ? data : "", len, md);
    sigv4_hex(md, sizeof md, hex);
}

static int sigv4_hmac(const unsigned char *key, size_t key_len, const char *data, size_t len,
                      unsigned char out[SHA256_DIGEST_LENGTH])
{
    unsigned int n = 0;
    return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, len, out, &n) &&
                   n == SHA256_DIGEST_LENGTH
               ? 0
               : -1;
}

static int sigv4_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (n + 1 bytes); a '%' not followed by
 * two hex digits stays as it is ('+' is a plus: SigV4 is not a form). */
static size_t sigv4_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = sigv4_hexval(s[i + 1])) >= 0 &&
            (lo = sigv4_hexval(s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return o;
}

/* The canonical URI, as smithy's getCanonicalPath: empty and "."
 * segments dropped, ".." pops one, single slashes, the leading slash and
 * a trailing one kept; then every byte but '/' and the unreserved encoded
 * (the wire path's own %XX become %25XX: encoded twice). */
static int sigv4_canonical_path(struct sigv4_buf *b, const char *path, size_t n)
{
    /* segment starts and lengths: at most one per byte */
    size_t nseg = 0, cap = n / 2 + 1;
    size_t *start = malloc(cap * sizeof *start), *len = malloc(cap * sizeof *len);
    if (!start || !len) {
        free(start);
        free(len);
        return -1;
    }
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        size_t sl = j - i;
        if (sl == 0 || (sl == 1 && path[i] == '.')) {
            /* dropped */
        } else if (sl == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (nseg > 0)
                nseg--;
        } else if (nseg < cap) {
            start[nseg] = i;
            len[nseg++] = sl;
        }
        i = j + 1;
    }
    if (n > 0 && path[0] == '/')
        buf_str(b, "/");
    for (size_t s = 0; s < nseg; s++) {
        if (s > 0)
            buf_str(b, "/");
        buf_encode(b, path + start[s], len[s], 0);
    }
    if (nseg > 0 && n > 0 && path[n - 1] == '/')
        buf_str(b, "/");
    free(start);
    free(len);
    return 0;
}

struct sigv4_param {
    char *key;  /* encoded */
    char *pair; /* encoded "key=value" */
};

static int sigv4_param_cmp(const void *a, const void *b)
{
    const struct sigv4_param *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->pair, y->pair);
}

/* The canonical query string: each parameter decoded, then encoded the
 * SigV4 way, sorted by key and then by value; "k" alone is "k=". An
 * X-Amz-Signature parameter is not signed (smithy drops it too). */
static int sigv4_canonical_query(struct sigv4_buf *b, const char *q, size_t n)
{
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += q[i] == '&';
    struct sigv4_param *params = calloc(cap, sizeof *params);
    char *scratch = malloc(n + 1);
    size_t np = 0;
    int rc = -1;
    if (!params || !scratch)
        goto out;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(q + i, '=', j - i);
            size_t klen = eq ? (size_t)(eq - (q + i)) : j - i;
            struct sigv4_buf kb = {0}, pb = {0};
            size_t dk = sigv4_decode(q + i, klen, scratch);
            buf_encode(&kb, scratch, dk, 0);
            buf_add(&kb, "", 0);
            if (kb.p && strcasecmp(kb.p, "X-Amz-Signature") == 0) {
                free(kb.p);
                i = j + 1;
                continue;
            }
            buf_encode(&pb, scratch, dk, 0);
            buf_str(&pb, "=");
            if (eq) {
                size_t dv = sigv4_decode(eq + 1, (size_t)(q + j - (eq + 1)), scratch);
                buf_encode(&pb, scratch, dv, 0);
            }
            params[np].key = kb.p;
            params[np++].pair = pb.p;
            if (kb.failed || pb.failed || !kb.p || !pb.p)
                goto out;
        }
        i = j + 1;
    }
    qsort(params, np, sizeof *params, sigv4_param_cmp);
    for (size_t i = 0; i < np; i++) {
        if (i > 0)
            buf_str(b, "&");
        buf_str(b, params[i].pair);
    }
    rc = 0;
out:
    for (size_t i = 0; params && i < np; i++) {
        free(params[i].key);
        free(params[i].pair);
    }
    free(params);
    free(scratch);
    return rc;
}

struct sigv4_canon_header {
    char *name;  /* lowercase */
    char *value; /* canonical: CR/LF as spaces, runs of blanks as one, trimmed */
};

static int sigv4_header_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sigv4_canon_header *)a)->name,
                  ((const struct sigv4_canon_header *)b)->name);
}

static char *sigv4_lower(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

/* smithy's rule: [\r\n] -> ' ', [ \t]+ -> ' ', one space off each end */
static char *sigv4_header_value(const char *v)
{
    size_t n = strlen(v), o = 0;
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '\r' || c == '\n' || c == '\t')
            c = ' ';
        if (c == ' ' && o > 0 && d[o - 1] == ' ')
            continue;
        d[o++] = c;
    }
    size_t s = o > 0 && d[0] == ' ' ? 1 : 0;
    if (o > s && d[o - 1] == ' ')
        o--;
    memmove(d, d + s, o - s);
    d[o - s] = '\0';
    return d;
}

static int sigv4_reserved_name(const char *lower)
{
    static const char *const names[] = {
        "host",       "authorization",        "date",
        "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(lower, names[i]) == 0)
            return 1;
    return 0;
}

static int sigv4_token_name_ok(const char *name)
{
    if (!*name)
        return 0;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == ':' || (unsigned char)*p >= 0x7F)
            return 0;
    return 1;
}

static char *sigv4_line(const char *name, const char *value)
{
    struct sigv4_buf b = {0};
    buf_str(&b, name);
    buf_str(&b, ": ");
    buf_str(&b, value);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

void sigv4_output_release(struct sigv4_output *out)
{
    for (size_t i = 0; i < out->nheaders; i++)
        free(out->headers[i]);
    free(out->authorization);
    free(out->canonical_request);
    free(out->string_to_sign);
    memset(out, 0, sizeof *out);
}

/* Writes the decimal digit of v worth 10^w at *d and advances d. */
static void sigv4_digit(char **d, int v, int w)
{
    int p = 1;
    while (w-- > 0)
        p *= 10;
    *(*d)++ = (char)('0' + (v / p) % 10);
}

static int sigv4_bad(struct err *e, const char *what)
{
    return err_set(e, ERR_CONFIG, "sigv4", "cannot sign: %s", what);
}

/* Checks the inputs against their caps and the header rules; splits the
 * URL (host, path, query). */
static int sigv4_check(const struct sigv4_input *in, const char **host, size_t *host_len,
                       const char **path, size_t *path_len, const char **query, size_t *query_len,
                       struct err *e)
{
    if (!in->method || !in->url || !in->region || !in->service || !in->access_key_id ||
        !in->secret_access_key || (!in->body && in->body_len > 0) ||
        (in->nheaders > 0 && !in->headers))
        return sigv4_bad(e, "an input is missing");
    if (!*in->method || !*in->region || !*in->service || !*in->access_key_id ||
        !*in->secret_access_key)
        return sigv4_bad(e, "method, region, service and both keys must not be empty");
    if (strlen(in->url) > SIGV4_MAX_URL || strlen(in->secret_access_key) > SIGV4_MAX_FIELD ||
        strlen(in->access_key_id) > SIGV4_MAX_FIELD || strlen(in->region) > 64 ||
        strlen(in->service) > 64 || strlen(in->method) > 16 ||
        (in->session_token && strlen(in->session_token) > SIGV4_MAX_FIELD))
        return sigv4_bad(e, "an input is over its size limit");
    /* the scope is joined with '/' and the token is a header value */
    if (strpbrk(in->region, "/ \r\n") || strpbrk(in->service, "/ \r\n") ||
        strpbrk(in->access_key_id, "/ \r\n,") ||
        (in->session_token && strpbrk(in->session_token, "\r\n")) ||
        !sigv4_token_name_ok(in->method))
        return sigv4_bad(e, "a region, service, key id, token or method holds a forbidden byte");
    if (in->nheaders > SIGV4_MAX_HEADERS)
        return sigv4_bad(e, "too many headers");
    for (size_t i = 0; i < in->nheaders; i++) {
        const struct sigv4_header *h = &in->headers[i];
        if (!h->name || !h->value || !sigv4_token_name_ok(h->name) ||
            strlen(h->value) > SIGV4_MAX_FIELD || strlen(h->name) > 256 ||
            strpbrk(h->value, "\r\n"))
            return sigv4_bad(e, "a header name or value is empty, too long or not a token");
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(h->name, in->headers[j].name) == 0)
                return sigv4_bad(e, "a header is repeated");
        char *lower = sigv4_lower(h->name);
        int reserved = lower ? sigv4_reserved_name(lower) : 0;
        free(lower);
        if (reserved)
            return sigv4_bad(e, "a header the signer sets itself was given");
    }
    const char *u = in->url;
    if (strncasecmp(u, "https://", 8) == 0)
        u += 8;
    else if (strncasecmp(u, "http://", 7) == 0)
        u += 7;
    else
        return sigv4_bad(e, "the URL is not http:// or https://");
    size_t alen = strcspn(u, "/?#");
    if (alen == 0 || memchr(u, '@', alen) || strpbrk(in->url, " \r\n\t"))
        return sigv4_bad(e, "the URL has no host, has user information or holds a blank");
    *host = u;
    *host_len = alen;
    const char *p = u + alen;
    size_t plen = strcspn(p, "?#");
    *path = p;
    *path_len = plen;
    if (p[plen] == '?') {
        *query = p + plen + 1;
        *query_len = strcspn(*query, "#");
    } else {
        *query = "";
        *query_len = 0;
    }
    if (in->now_s < 0 || in->now_s > 253402300799LL) /* 9999-12-31T23:59:59Z */
        return sigv4_bad(e, "the time is outside 1970..9999");
    return 0;
}

int sigv4_sign(const struct sigv4_input *in, struct sigv4_output *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    const char *host = NULL, *path = NULL, *query = NULL;
    size_t host_len = 0, path_len = 0, query_len = 0;
    if (sigv4_check(in, &host, &host_len, &path, &path_len, &query, &query_len, e) < 0)
        return -1;

    struct sigv4_canon_header hs[SIGV4_MAX_HEADERS + 4];
    size_t nh = 0;
    struct sigv4_buf canon = {0}, sts = {0}, auth = {0}, key = {0};
    char *host_value = NULL;
    int rc = -1, oom = 1;
    char payload[65], date[9], scope_hash[65];
    struct tm tm;
    time_t t = (time_t)in->now_s;
    if (!gmtime_r(&t, &tm)) {
        sigv4_bad(e, "the time cannot be broken down");
        oom = 0;
        goto out;
    }
    /* the check bounds the year to 1970..9999: exactly 16 characters */
    const int parts[6] = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                          tm.tm_hour,        tm.tm_min,     tm.tm_sec};
    char *d = out->amz_date;
    for (int i = 0; i < 6; i++) {
        int width = i == 0 ? 4 : 2;
        for (int w = width - 1; w >= 0; w--)
            sigv4_digit(&d, parts[i], w);
        if (i == 2)
            *d++ = 'T';
    }
    *d++ = 'Z';
    *d = '\0';
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';
    sigv4_sha256_hex(in->body, in->body_len, payload);
    const char *token = in->session_token && *in->session_token ? in->session_token : NULL;

    host_value = strndup(host, host_len);
    if (!host_value)
        goto out;
    /* the signer's own headers, then the caller's */
    const char *own[4][2] = {{"host", host_value}, {"x-amz-date", out->amz_date}};
    size_t nown = 2;
    if (token) {
        own[nown][0] = "x-amz-security-token";
        own[nown++][1] = token;
    }
    if (in->content_sha256) {
        own[nown][0] = "x-amz-content-sha256";
        own[nown++][1] = payload;
    }
    for (size_t i = 0; i < nown + in->nheaders; i++) {
        const char *name = i < nown ? own[i][0] : in->headers[i - nown].name;
        const char *value = i < nown ? own[i][1] : in->headers[i - nown].value;
        hs[nh].name = sigv4_lower(name);
        hs[nh].value = sigv4_header_value(value);
        nh++;
        if (!hs[nh - 1].name || !hs[nh - 1].value)
            goto out;
    }
    qsort(hs, nh, sizeof *hs, sigv4_header_cmp);

    /* the canonical request */
    buf_str(&canon, in->method);
    buf_str(&canon, "\n");
    if (sigv4_canonical_path(&canon, path, path_len) < 0)
        goto out;
    buf_str(&canon, "\n");
    if (sigv4_canonical_query(&canon, query, query_len) < 0)
        goto out;
    buf_str(&canon, "\n");
    for (size_t i = 0; i < nh; i++) {
        buf_str(&canon, hs[i].name);
        buf_str(&canon, ":");
        buf_str(&canon, hs[i].value);
        buf_str(&canon, "\n");
    }
    buf_str(&canon, "\n");
    size_t signed_at = canon.len;
    for (size_t i = 0; i < nh; i++) {
        if (i > 0)
            buf_str(&canon, ";");
        buf_str(&canon, hs[i].name);
    }
    size_t signed_end = canon.len;
    buf_str(&canon, "\n");
    buf_str(&canon, payload);
    if (canon.failed)
        goto out;

    /* the string to sign */
    sigv4_sha256_hex(canon.p, canon.len, scope_hash);
    buf_str(&sts, "AWS4-HMAC-SHA256\n");
    buf_str(&sts, out->amz_date);
    buf_str(&sts, "\n");
    size_t scope_at = sts.len;
    buf_str(&sts, date);
    buf_str(&sts, "/");
    buf_str(&sts, in->region);
    buf_str(&sts, "/");
    buf_str(&sts, in->service);
    buf_str(&sts, "/aws4_request");
    size_t scope_end = sts.len;
    buf_str(&sts, "\n");
    buf_str(&sts, scope_hash);
    if (sts.failed)
        goto out;

    /* the signing key: HMAC chain from "AWS4" + secret */
    unsigned char k[SHA256_DIGEST_LENGTH], sig[SHA256_DIGEST_LENGTH];
    buf_str(&key, "AWS4");
    buf_str(&key, in->secret_access_key);
    if (key.failed || sigv4_hmac((unsigned char *)key.p, key.len, date, strlen(date), k) < 0 ||
        sigv4_hmac(k, sizeof k, in->region, strlen(in->region), k) < 0 ||
        sigv4_hmac(k, sizeof k, in->service, strlen(in->service), k) < 0 ||
        sigv4_hmac(k, sizeof k, "aws4_request", 12, k) < 0 ||
        sigv4_hmac(k, sizeof k, sts.p, sts.len, sig) < 0)
        goto out;
    OPENSSL_cleanse(k, sizeof k);
    sigv4_hex(sig, sizeof sig, out->signature);

    buf_str(&auth, "AWS4-HMAC-SHA256 Credential=");
    buf_str(&auth, in->access_key_id);
    buf_str(&auth, "/");
    buf_add(&auth, sts.p + scope_at, scope_end - scope_at);
    buf_str(&auth, ", SignedHeaders=");
    buf_add(&auth, canon.p + signed_at, signed_end - signed_at);
    buf_str(&auth, ", Signature=");
    buf_str(&auth, out->signature);
    if (auth.failed)
        goto out;

    out->authorization = auth.p;
    auth.p = NULL;
    out->canonical_request = canon.p;
    canon.p = NULL;
    out->string_to_sign = sts.p;
    sts.p = NULL;
    for (size_t i = 0; i < nown; i++)
        if (!(out->headers[out->nheaders++] = sigv4_line(own[i][0], own[i][1])))
            goto out;
    if (!(out->headers[out->nheaders++] = sigv4_line("authorization", out->authorization)))
        goto out;
    rc = 0;
out:
    if (rc < 0) {
        sigv4_output_release(out);
        if (oom)
            err_set(e, ERR_FATAL, "oom", "out of memory signing a request");
    }
    for (size_t i = 0; i < nh; i++) {
        free(hs[i].name);
        free(hs[i].value);
    }
    if (key.p)
        OPENSSL_cleanse(key.p, key.len);
    free(key.p);
    free(canon.p);
    free(sts.p);
    free(auth.p);
    free(host_value);
    return rc;
}

/*
 * sigv4: the signer against AWS's published test suite
 * (tests/data/sigv4/aws-suite.txt) and against @smithy/signature-v4 on
 * Bedrock-shaped requests (tests/data/sigv4/smithy.txt); the inputs it
 * refuses; the headers it hands back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sigv4.h"

#define SIGV4_DIR "tests/data/sigv4/"
#define SUITE_TIME 1440938160 /* 2015-08-30T12:36:00Z */
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

/* Splits line at tabs into at most max fields (empty fields kept). */
static size_t split_tabs(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (p && n < max) {
        fields[n++] = p;
        p = strchr(p, '\t');
        if (p)
            *p++ = '\0';
    }
    return n;
}

/* "Name:value|Name:value" into headers (modifies s); "-" is none. */
static size_t parse_headers(char *s, struct sigv4_header *h, size_t max)
{
    size_t n = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    for (char *tok = s; tok && n < max;) {
        char *bar = strchr(tok, '|');
        if (bar)
            *bar = '\0';
        char *colon = strchr(tok, ':');
        if (colon) {
            *colon = '\0';
            h[n].name = tok;
            h[n++].value = colon + 1;
        }
        tok = bar ? bar + 1 : NULL;
    }
    return n;
}

static void suite_case(char *line, int lineno, void *ctx)
{
    (void)ctx;
    char *f[8];
    if (!ok(split_tabs(line, f, 8) == 8, "aws-suite.txt:%d: 8 fields", lineno))
        return;
    char url[1024];
    snprintf(url, sizeof url, "https://example.amazonaws.com%s", f[2]);
    struct sigv4_header headers[SIGV4_MAX_HEADERS];
    struct sigv4_input in = {
        .method = f[1],
        .url = url,
        .headers = headers,
        .nheaders = parse_headers(f[3], headers, SIGV4_MAX_HEADERS),
        .body = f[4],
        .body_len = strlen(f[4]),
        .region = "us-east-1",
        .service = "service",
        .access_key_id = "AKIDEXAMPLE",
        .secret_access_key = SUITE_SECRET,
        .session_token = strcmp(f[5], "-") == 0 ? NULL : f[5],
        .now_s = SUITE_TIME,
    };
    char want[512];
    snprintf(want, sizeof want,
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
             "SignedHeaders=%s, Signature=%s",
             f[6], f[7]);
    struct sigv4_output out;
    struct err e = {0};
    int rc = sigv4_sign(&in, &out, &e);
    ok(rc == 0 && strcmp(out.authorization, want) == 0 && strcmp(out.signature, f[7]) == 0,
       "aws suite %s:\n    want %s\n    got  %s\n    canonical request:\n%s", f[0], want,
       rc == 0 ? out.authorization : e.msg, rc == 0 ? out.canonical_request : "");
    ok(rc == 0 && strcmp(out.amz_date, "20150830T123600Z") == 0, "aws suite %s: x-amz-date", f[0]);
    sigv4_output_release(&out);
}

static void smithy_case(char *line, int lineno, void *ctx)
{
    (void)ctx;
    char *f[15];
    if (!ok(split_tabs(line, f, 15) == 15, "smithy.txt:%d: 15 fields", lineno))
        return;
    struct sigv4_header headers[SIGV4_MAX_HEADERS];
    struct sigv4_input in = {
        .method = f[1],
        .url = f[2],
        .headers = headers,
        .nheaders = parse_headers(f[3], headers, SIGV4_MAX_HEADERS),
        .body = f[4],
        .body_len = strlen(f[4]),
        .region = f[5],
        .service = f[6],
        .access_key_id = f[7],
        .secret_access_key = f[8],
        .session_token = strcmp(f[9], "-") == 0 ? NULL : f[9],
        .now_s = strtoll(f[10], NULL, 10),
        .content_sha256 = f[11][0] == '1',
    };
    struct sigv4_output out;
    struct err e = {0};
    int rc = sigv4_sign(&in, &out, &e);
    ok(rc == 0, "smithy %s: signs (%s)", f[0], e.msg);
    if (rc < 0)
        return;
    /* line 2 and 3 of the canonical request: URI and query */
    char uri[1024] = "", query[1024] = "";
    const char *l2 = strchr(out.canonical_request, '\n') + 1;
    const char *l3 = strchr(l2, '\n') + 1;
    snprintf(uri, sizeof uri, "%.*s", (int)(l3 - l2 - 1), l2);
    snprintf(query, sizeof query, "%.*s", (int)strcspn(l3, "\n"), l3);
    ok(strcmp(uri, f[12]) == 0, "smithy %s: canonical URI %s, smithy's %s", f[0], uri, f[12]);
    ok(strcmp(query[0] ? query : "-", f[13]) == 0, "smithy %s: canonical query %s, smithy's %s",
       f[0], query, f[13]);
    ok(strcmp(out.authorization, f[14]) == 0, "smithy %s:\n    want %s\n    got  %s", f[0], f[14],
       out.authorization);
    sigv4_output_release(&out);
}

static struct sigv4_input bedrock_input(void)
{
    static const struct sigv4_header ct = {"content-type", "application/json"};
    struct sigv4_input in = {
        .method = "POST",
        .url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
               "anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
        .headers = &ct,
        .nheaders = 1,
        .body = "{}",
        .body_len = 2,
        .region = "us-east-1",
        .service = "bedrock",
        .access_key_id = "AKIAEXAMPLEEXAMPLE01",
        .secret_access_key = SUITE_SECRET,
        .now_s = SUITE_TIME,
        .content_sha256 = 1,
    };
    return in;
}

/* The headers handed back, in their documented order, carry what was
 * signed; the secret never appears in anything returned. */
static void test_output_headers(void)
{
    struct sigv4_input in = bedrock_input();
    in.session_token = "FwoGZXIvYXdzEXAMPLE";
    struct sigv4_output out;
    struct err e = {0};
    int rc = sigv4_sign(&in, &out, &e);
    if (!ok(rc == 0, "bedrock request signs: %s", e.msg))
        return;
    char sha[65];
    sigv4_sha256_hex("{}", 2, sha);
    char want_sha[100], want_auth[512];
    snprintf(want_sha, sizeof want_sha, "x-amz-content-sha256: %s", sha);
    snprintf(want_auth, sizeof want_auth, "authorization: %s", out.authorization);
    ok(out.nheaders == 5 &&
           strcmp(out.headers[0], "host: bedrock-runtime.us-east-1.amazonaws.com") == 0 &&
           strcmp(out.headers[1], "x-amz-date: 20150830T123600Z") == 0 &&
           strcmp(out.headers[2], "x-amz-security-token: FwoGZXIvYXdzEXAMPLE") == 0 &&
           strcmp(out.headers[3], want_sha) == 0 && strcmp(out.headers[4], want_auth) == 0,
       "host, date, token, payload hash and authorization, in that order");
    ok(strstr(out.authorization, "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;"
                                 "x-amz-security-token, Signature=") != NULL,
       "every header sent is signed: %s", out.authorization);
    ok(strstr(out.canonical_request, "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/"
                                     "converse\n") != NULL,
       "the model id's ':' is encoded twice in the canonical URI");
    int leak = 0;
    for (size_t i = 0; i < out.nheaders; i++)
        leak |= strstr(out.headers[i], "wJalrXUtnFEMI") != NULL;
    leak |= strstr(out.canonical_request, "wJalrXUtnFEMI") != NULL ||
            strstr(out.string_to_sign, "wJalrXUtnFEMI") != NULL;
    ok(!leak, "the secret is in nothing returned");
    sigv4_output_release(&out);
    sigv4_output_release(&out); /* idempotent */

    /* no token, no checksum: only host, date and authorization */
    in.session_token = "";
    in.content_sha256 = 0;
    rc = sigv4_sign(&in, &out, &e);
    ok(rc == 0 && out.nheaders == 3 && strncmp(out.headers[2], "authorization: ", 15) == 0 &&
           strstr(out.authorization, "SignedHeaders=content-type;host;x-amz-date, ") != NULL,
       "an empty token is no token; no checksum header unless asked");
    sigv4_output_release(&out);

    /* the signature depends on each input */
    struct sigv4_input a = bedrock_input(), b = bedrock_input();
    char first[65];
    ok(sigv4_sign(&a, &out, &e) == 0, "signs");
    memcpy(first, out.signature, sizeof first);
    sigv4_output_release(&out);
    b.now_s += 1;
    ok(sigv4_sign(&b, &out, &e) == 0 && strcmp(out.signature, first) != 0,
       "a second later, another signature");
    sigv4_output_release(&out);
    b = bedrock_input();
    b.body = "{} ";
    b.body_len = 3;
    ok(sigv4_sign(&b, &out, &e) == 0 && strcmp(out.signature, first) != 0,
       "another body, another signature");
    sigv4_output_release(&out);
    b = bedrock_input();
    b.url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
            "anthropic.claude-3-5-sonnet-20240620-v1:0/converse";
    ok(sigv4_sign(&b, &out, &e) == 0 && strcmp(out.signature, first) != 0,
       "a raw ':' on the wire is another path than %%3A (AWS sees what is sent)");
    sigv4_output_release(&out);
}

static void test_refused(void)
{
    static const struct sigv4_header dup[] = {{"content-type", "a"}, {"Content-Type", "b"}};
    static const struct sigv4_header own[] = {{"X-Amz-Date", "20150830T123600Z"}};
    static const struct sigv4_header host[] = {{"Host", "evil.example"}};
    static const struct sigv4_header crlf[] = {{"x-a", "1\r\nx-b: 2"}};
    static const struct sigv4_header badname[] = {{"bad name", "1"}};
    struct {
        const char *what;
        struct sigv4_input in;
    } cases[6];
    for (size_t i = 0; i < 6; i++)
        cases[i].in = bedrock_input();
    cases[0].what = "a repeated header";
    cases[0].in.headers = dup;
    cases[0].in.nheaders = 2;
    cases[1].what = "a header the signer sets";
    cases[1].in.headers = own;
    cases[2].what = "a Host header (the URL's authority is signed)";
    cases[2].in.headers = host;
    cases[3].what = "CR LF in a value";
    cases[3].in.headers = crlf;
    cases[4].what = "a space in a name";
    cases[4].in.headers = badname;
    cases[5].what = "a URL that is not http(s)";
    cases[5].in.url = "ftp://example.com/";
    for (size_t i = 0; i < 6; i++) {
        struct sigv4_output out;
        struct err e = {0};
        ok(sigv4_sign(&cases[i].in, &out, &e) < 0 && e.kind == ERR_CONFIG &&
               out.authorization == NULL && out.nheaders == 0,
           "refused: %s", cases[i].what);
    }
    const char *urls[] = {"https:///model/x", "https://user@host/x", "https://host/a b",
                          "bedrock-runtime.us-east-1.amazonaws.com/model/x"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        struct sigv4_input in = bedrock_input();
        in.url = urls[i];
        struct sigv4_output out;
        struct err e = {0};
        ok(sigv4_sign(&in, &out, &e) < 0 && e.kind == ERR_CONFIG, "refused URL %s", urls[i]);
    }
    struct sigv4_input in = bedrock_input();
    in.now_s = -1;
    struct sigv4_output out;
    struct err e = {0};
    ok(sigv4_sign(&in, &out, &e) < 0, "refused: a time before 1970");
    in = bedrock_input();
    in.now_s = 253402300800LL;
    ok(sigv4_sign(&in, &out, &e) < 0, "refused: a time after 9999");
    in = bedrock_input();
    in.region = "us-east-1/x";
    ok(sigv4_sign(&in, &out, &e) < 0, "refused: a '/' in the region (it would shift the scope)");
    in = bedrock_input();
    in.secret_access_key = "";
    ok(sigv4_sign(&in, &out, &e) < 0, "refused: an empty secret");
    in = bedrock_input();
    char *huge = malloc(SIGV4_MAX_URL + 64);
    if (huge) {
        memset(huge, 'a', SIGV4_MAX_URL + 63);
        memcpy(huge, "https://h/", 10);
        huge[SIGV4_MAX_URL + 63] = '\0';
        in.url = huge;
        ok(sigv4_sign(&in, &out, &e) < 0, "refused: a URL over its cap");
        free(huge);
    }
}

/* the date at the edges: leap day, end of year, the last second of 9999 */
static void test_dates(void)
{
    static const struct {
        int64_t t;
        const char *date;
    } cases[] = {
        {0, "19700101T000000Z"},
        {951782400, "20000229T000000Z"},
        {1735689599, "20241231T235959Z"},
        {253402300799LL, "99991231T235959Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sigv4_input in = bedrock_input();
        in.now_s = cases[i].t;
        struct sigv4_output out;
        struct err e = {0};
        int rc = sigv4_sign(&in, &out, &e);
        char scope[64];
        snprintf(scope, sizeof scope, "/%.8s/us-east-1/bedrock/aws4_request,", cases[i].date);
        ok(rc == 0 && strcmp(out.amz_date, cases[i].date) == 0 &&
               strstr(out.authorization, scope) != NULL,
           "%lld is %s (%s)", (long long)cases[i].t, cases[i].date, rc == 0 ? out.amz_date : e.msg);
        sigv4_output_release(&out);
    }
    char hex[65];
    sigv4_sha256_hex(NULL, 0, hex);
    ok(strcmp(hex, SIGV4_EMPTY_SHA256) == 0, "SHA-256 of nothing");
}

void test_sigv4(void)
{
    ok(check_each_line(SIGV4_DIR "aws-suite.txt", suite_case, NULL) >= 20,
       "AWS's test suite: at least 20 cases");
    ok(check_each_line(SIGV4_DIR "smithy.txt", smithy_case, NULL) >= 4,
       "smithy's signatures: at least 4 cases");
    test_output_headers();
    test_refused();
    test_dates();
}

/*
 * log: the line log_line builds, parsed back with jansson. The fields
 * are present exactly when set (partition 0 and offset 0 included), the
 * message and every string field survive quotes, backslashes, newlines
 * and control characters, invalid UTF-8 becomes '?' without losing the
 * line, a registered key is masked in every field (the bodies too), the
 * bodies appear only with logging.bodies and are cut at LOG_BODY_MAX with
 * their whole length, and a long message is cut and says so.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "redact.h"

static json_t *parse(const char *line)
{
    json_error_t je;
    json_t *o = line ? json_loads(line, 0, &je) : NULL;
    ok(o && json_is_object(o), "the line is one JSON object: %s", line ? line : "(null)");
    return o;
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -999;
}

static void test_fields(void)
{
    log_set_worker("w-7");
    log_set_options(0, 0);
    struct log_fields f = {
        .set = LOG_F_PARTITION | LOG_F_OFFSET | LOG_F_HTTP_STATUS | LOG_F_LATENCY,
        .request_id = "req-1",
        .partition = 0,
        .offset = 0,
        .model = "mini",
        .provider = "openai",
        .attempt = 2,
        .http_status = 529,
        .latency_ms = 1234,
        .code = "candidates_exhausted",
        .topic = "t.results",
        .prompt = "never without bodies",
        .reply = "nor this",
    };
    char *line = log_line(LOG_WARN, "dead_letter", &f, "a \"quoted\" \\ line\nand\t\x01 more", 42);
    json_t *o = parse(line);
    ok(num(o, "ts_ms") == 42 && str(o, "level") && strcmp(str(o, "level"), "warn") == 0,
       "ts_ms and level");
    ok(str(o, "event") && strcmp(str(o, "event"), "dead_letter") == 0, "event");
    ok(str(o, "worker") && strcmp(str(o, "worker"), "w-7") == 0, "worker on every line");
    ok(str(o, "request_id") && strcmp(str(o, "request_id"), "req-1") == 0, "request_id");
    ok(num(o, "partition") == 0 && num(o, "offset") == 0, "partition 0 and offset 0 are present");
    ok(str(o, "model") && strcmp(str(o, "model"), "mini") == 0 && str(o, "provider") &&
           strcmp(str(o, "provider"), "openai") == 0,
       "model and provider");
    ok(num(o, "attempt") == 2 && num(o, "http_status") == 529 && num(o, "latency_ms") == 1234,
       "attempt, http_status, latency_ms");
    ok(str(o, "code") && strcmp(str(o, "code"), "candidates_exhausted") == 0 && str(o, "topic") &&
           strcmp(str(o, "topic"), "t.results") == 0,
       "code and topic");
    ok(str(o, "msg") && strcmp(str(o, "msg"), "a \"quoted\" \\ line\nand\t\x01 more") == 0,
       "the message survives quotes, backslashes, newline and control characters");
    ok(!json_object_get(o, "prompt") && !json_object_get(o, "reply"),
       "no body without logging.bodies");
    ok(strchr(line, '\n') == NULL, "one line: the newline is escaped");
    json_decref(o);
    free(line);

    /* nothing set: nothing but the basics */
    struct log_fields none = {0};
    line = log_line(LOG_INFO, "x", &none, "m", 1);
    o = parse(line);
    ok(json_object_size(o) == 5, "with no field set: ts_ms, level, event, worker, msg (%zu keys)",
       json_object_size(o));
    json_decref(o);
    free(line);
    log_set_worker(NULL);
    line = log_line(LOG_INFO, "x", NULL, "m", 1);
    o = parse(line);
    ok(json_object_size(o) == 4 && !json_object_get(o, "worker"), "no worker id: no worker key");
    json_decref(o);
    free(line);
}

static void test_redaction(void)
{
    static const char key[] = "sk-test-Zq9XvL2mN8pR4tY6wE1uI3oK5";
    redact_reset();
    ok(redact_register(key) == 0, "key registered");
    log_set_options(0, 1);
    char prompt[200], msg[200];
    snprintf(prompt, sizeof prompt, "{\"content\":\"my key is %s\"}", key);
    snprintf(msg, sizeof msg, "echo: %.20s", key + 5); /* a cut piece */
    struct log_fields f = {
        .request_id = key, .model = key + 3, .code = key, .prompt = prompt, .reply = key + 10};
    char *line = log_line(LOG_ERROR, "provider_key_rejected", &f, msg, 1);
    json_t *o = parse(line);
    int leaked = 0;
    for (size_t i = 0; i + REDACT_PIECE <= sizeof key - 1; i++)
        if (line && memmem(line, strlen(line), key + i, REDACT_PIECE))
            leaked = 1;
    ok(!leaked, "no 8-byte piece of the key anywhere in the line: %s", line ? line : "");
    ok(str(o, "request_id") && strstr(str(o, "request_id"), REDACT_MARK), "request_id masked");
    ok(str(o, "prompt") && strstr(str(o, "prompt"), "my key is " REDACT_MARK),
       "the prompt is written with logging.bodies, masked: %s", str(o, "prompt"));
    ok(str(o, "reply") && strstr(str(o, "reply"), REDACT_MARK), "the reply masked");
    ok(str(o, "msg") && strstr(str(o, "msg"), REDACT_MARK), "the message masked");
    json_decref(o);
    free(line);
    redact_reset();
}

static void test_bounds(void)
{
    log_set_options(0, 1);
    size_t n = LOG_BODY_MAX * 2 + 3;
    char *big = malloc(n + 1);
    char *msg = malloc(LOG_MSG_MAX + 100);
    if (!ok(big && msg, "allocated")) {
        free(big);
        free(msg);
        return;
    }
    memset(big, 'b', n);
    big[n] = '\0';
    memset(msg, 'm', LOG_MSG_MAX + 99);
    msg[LOG_MSG_MAX + 99] = '\0';
    struct log_fields f = {.prompt = big, .reply = "short"};
    char *line = log_line(LOG_DEBUG, "request_received", &f, msg, 1);
    json_t *o = parse(line);
    ok(str(o, "prompt") && strlen(str(o, "prompt")) == LOG_BODY_MAX &&
           num(o, "prompt_bytes") == (long long)n,
       "a long prompt is cut at LOG_BODY_MAX and its whole length given");
    ok(str(o, "reply") && strcmp(str(o, "reply"), "short") == 0 &&
           !json_object_get(o, "reply_bytes"),
       "a short reply is whole, without a length");
    ok(str(o, "msg") && strlen(str(o, "msg")) == LOG_MSG_MAX &&
           json_is_true(json_object_get(o, "msg_truncated")),
       "a long message is cut at LOG_MSG_MAX and says so");
    json_decref(o);
    free(line);

    /* invalid UTF-8, and a cut in the middle of a character */
    struct log_fields g = {.model = "caf\xc3\xa9 \xff\xfe end", .code = "\xed\xa0\x80"};
    line = log_line(LOG_INFO, "x", &g, "bad \xc3( byte", 1);
    o = parse(line);
    ok(str(o, "model") && strcmp(str(o, "model"), "caf\xc3\xa9 ?? end") == 0,
       "valid characters kept, invalid bytes as '?': %s", str(o, "model"));
    ok(str(o, "code") && strcmp(str(o, "code"), "???") == 0, "a surrogate is not UTF-8");
    ok(str(o, "msg") && strcmp(str(o, "msg"), "bad ?( byte") == 0, "in the message too");
    json_decref(o);
    free(line);
    memset(big, 'a', LOG_BODY_MAX - 1);
    memcpy(big + LOG_BODY_MAX - 1, "\xe2\x82\xac tail", 8); /* the euro sign across the cut */
    f = (struct log_fields){.reply = big};
    line = log_line(LOG_INFO, "x", &f, "m", 1);
    o = parse(line);
    const char *r = str(o, "reply");
    ok(r && strlen(r) == LOG_BODY_MAX && r[LOG_BODY_MAX - 1] == '?',
       "a character cut by the bound becomes '?', the line stays valid");
    json_decref(o);
    free(line);
    free(big);
    free(msg);
    log_set_options(0, 0);
}

void test_log(void)
{
    test_fields();
    test_redaction();
    test_bounds();
}

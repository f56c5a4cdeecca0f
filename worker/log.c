/*
 * log: one JSON object per line on stderr, written with one write(2) so
 * that lines from concurrent processes do not interleave. Every value is
 * redacted (redact.h) before it is encoded, and the line once more after:
 * no caller's mistake can print a piece of an API key. Never blocks on
 * anything but that write; never drops a line for a bad byte (invalid
 * UTF-8 becomes '?', which jansson would otherwise refuse whole).
 */
#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "redact.h"

/* set once at start (main.c, worker.c), before other threads run */
static enum log_level log_min = LOG_INFO;
static char *log_worker;
static int log_req, log_body;

void log_set_level(enum log_level level)
{
    log_min = level;
}

void log_set_worker(const char *id)
{
    free(log_worker);
    log_worker = id && *id ? strdup(id) : NULL;
}

void log_set_options(int requests, int bodies)
{
    const char *env = getenv("SWITCHYARD_LOG_REQUESTS");
    log_req = requests || (env && strcmp(env, "1") == 0);
    log_body = bodies != 0;
}

int log_requests_on(void)
{
    return log_req || log_min <= LOG_DEBUG;
}

int log_bodies_on(void)
{
    return log_body;
}

/* Length of the valid UTF-8 sequence at s (as jansson accepts it: no
 * overlong form, no surrogate, nothing above U+10FFFF), or 0. */
static size_t log_utf8_len(const unsigned char *s, size_t left)
{
    unsigned char b = s[0];
    if (b < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
        n = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        lo = b == 0xE0 ? 0xA0 : 0x80;
        hi = b == 0xED ? 0x9F : 0xBF;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        lo = b == 0xF0 ? 0x90 : 0x80;
        hi = b == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0;
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* A copy of s for a JSON string: redacted whole, then cut at max bytes,
 * then every byte outside a valid UTF-8 sequence (a cut one too) made
 * '?'. *whole gets the length before the cut. NULL when out of memory. */
static char *log_clean(const char *s, size_t max, size_t *whole)
{
    size_t len = strlen(s);
    char *c = malloc(len + 1);
    if (!c)
        return NULL;
    memcpy(c, s, len + 1);
    len = redact(c, len);
    c[len] = '\0';
    if (whole)
        *whole = len;
    if (len > max) {
        len = max;
        c[len] = '\0';
    }
    unsigned char *u = (unsigned char *)c;
    for (size_t i = 0; i < len;) {
        size_t n = log_utf8_len(u + i, len - i);
        if (n == 0) {
            u[i++] = '?';
            continue;
        }
        i += n;
    }
    return c;
}

/* o[key] = the cleaned string; 0, or -1 when out of memory */
static int log_put_str(json_t *o, const char *key, const char *s, size_t max, size_t *whole)
{
    char *c = log_clean(s, max, whole);
    if (!c)
        return -1;
    int rc = json_object_set_new(o, key, json_string(c));
    free(c);
    return rc;
}

static int log_put_fields(json_t *o, const struct log_fields *f)
{
    int rc = 0;
    if (f->request_id)
        rc |= log_put_str(o, "request_id", f->request_id, LOG_MSG_MAX, NULL);
    if (f->set & LOG_F_PARTITION)
        rc |= json_object_set_new(o, "partition", json_integer(f->partition));
    if (f->set & LOG_F_OFFSET)
        rc |= json_object_set_new(o, "offset", json_integer(f->offset));
    if (f->model)
        rc |= log_put_str(o, "model", f->model, LOG_MSG_MAX, NULL);
    if (f->provider)
        rc |= log_put_str(o, "provider", f->provider, LOG_MSG_MAX, NULL);
    if (f->attempt)
        rc |= json_object_set_new(o, "attempt", json_integer(f->attempt));
    if (f->set & LOG_F_HTTP_STATUS)
        rc |= json_object_set_new(o, "http_status", json_integer(f->http_status));
    if (f->set & LOG_F_LATENCY)
        rc |= json_object_set_new(o, "latency_ms", json_integer((json_int_t)f->latency_ms));
    if (f->code)
        rc |= log_put_str(o, "code", f->code, LOG_MSG_MAX, NULL);
    if (f->topic)
        rc |= log_put_str(o, "topic", f->topic, LOG_MSG_MAX, NULL);
    return rc;
}

static int log_put_body(json_t *o, const char *key, const char *len_key, const char *body)
{
    size_t whole = 0;
    int rc = log_put_str(o, key, body, LOG_BODY_MAX, &whole);
    if (rc == 0 && whole > LOG_BODY_MAX)
        rc = json_object_set_new(o, len_key, json_integer((json_int_t)whole));
    return rc;
}

char *log_line(enum log_level level, const char *event, const struct log_fields *f, const char *msg,
               int64_t ts_ms)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char *line = NULL;
    size_t whole = 0;
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = json_object_set_new(o, "ts_ms", json_integer(ts_ms));
    rc |= json_object_set_new(o, "level", json_string(names[level]));
    rc |= log_put_str(o, "event", event, LOG_MSG_MAX, NULL);
    if (log_worker)
        rc |= log_put_str(o, "worker", log_worker, LOG_MSG_MAX, NULL);
    if (f)
        rc |= log_put_fields(o, f);
    rc |= log_put_str(o, "msg", msg, LOG_MSG_MAX, &whole);
    if (whole > LOG_MSG_MAX)
        rc |= json_object_set_new(o, "msg_truncated", json_true());
    if (f && log_body && f->prompt)
        rc |= log_put_body(o, "prompt", "prompt_bytes", f->prompt);
    if (f && log_body && f->reply)
        rc |= log_put_body(o, "reply", "reply_bytes", f->reply);
    if (rc == 0)
        line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (line) {
        /* after encoding too: a key written with escapes by a caller */
        size_t n = redact(line, strlen(line));
        line[n] = '\0';
    }
    return line;
}

static void log_write(enum log_level level, const char *event, const struct log_fields *f,
                      const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    /* one byte past the cap, so that log_line sees the message was cut */
    size_t cap = n < 0 ? 1 : (size_t)n > LOG_MSG_MAX ? LOG_MSG_MAX + 2 : (size_t)n + 1;
    char *msg = malloc(cap);
    if (msg) {
        msg[0] = '\0';
        if (n >= 0)
            vsnprintf(msg, cap, fmt, again);
        char *line = log_line(level, event, f, msg, loop_wall_ms());
        if (line) {
            size_t len = strlen(line);
            line[len] = '\n'; /* over the NUL: one write, one line */
            ssize_t w = write(STDERR_FILENO, line, len + 1);
            (void)w;
        }
        free(line);
    }
    free(msg);
    va_end(again);
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
    if (level < log_min)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, event, NULL, fmt, ap);
    va_end(ap);
}

void log_fields(enum log_level level, const char *event, const struct log_fields *f,
                const char *fmt, ...)
{
    if (level < log_min)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, event, f, fmt, ap);
    va_end(ap);
}

void log_request(const char *event, const struct log_fields *f, const char *fmt, ...)
{
    if (!log_requests_on())
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(LOG_DEBUG, event, f, fmt, ap);
    va_end(ap);
}

/*
 * log: JSON lines on stderr, one event per line:
 *   {"ts_ms":..,"level":"info","event":"started","worker":"w-1","msg":"..."}
 * A line may carry structured fields beside the message (struct
 * log_fields): the request id, partition, offset, model, provider,
 * attempt, HTTP status, latency, error code, topic; and, only when
 * logging.bodies asks for them, the prompt and the reply. Every value,
 * the message and the bodies included, passes the redaction (redact.h)
 * before it is encoded, and the encoded line once more.
 * Never pass a secret to these functions.
 */
#ifndef SWITCHYARD_LOG_H
#define SWITCHYARD_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* The message is cut at this many bytes ("msg_truncated": true says so). */
#define LOG_MSG_MAX 8192
/* A prompt or reply body is cut at this many bytes ("prompt_bytes" /
 * "reply_bytes" give the whole length when it was cut). */
#define LOG_BODY_MAX 4096

/* Which numeric fields of struct log_fields are present (0 and -1 are
 * real partitions and offsets, so presence cannot be a value). */
enum log_field_flag {
    LOG_F_PARTITION = 1u << 0,
    LOG_F_OFFSET = 1u << 1,
    LOG_F_HTTP_STATUS = 1u << 2,
    LOG_F_LATENCY = 1u << 3,
};

/* The structured fields of one line. Strings: NULL = absent; attempt: 0 =
 * absent (attempts count from 1); the other numbers as `set` says.
 * Borrowed for the call only. */
struct log_fields {
    unsigned set;           /* enum log_field_flag bits */
    const char *request_id; /* "request_id" */
    int32_t partition;      /* "partition" */
    int64_t offset;         /* "offset" */
    const char *model;      /* "model": the policy model's name */
    const char *provider;   /* "provider" */
    unsigned attempt;       /* "attempt": 1-based */
    long http_status;       /* "http_status" */
    uint64_t latency_ms;    /* "latency_ms" */
    const char *code;       /* "code": an error code */
    const char *topic;      /* "topic" */
    /* written only when log_bodies_on(): cut at LOG_BODY_MAX */
    const char *prompt; /* "prompt": the request's messages, as JSON text */
    const char *reply;  /* "reply": the answer's text */
};

/* What main/worker set once at start, before any other thread runs. */
void log_set_level(enum log_level level);
/* Every line carries "worker": id (copied; NULL or "" = none). */
void log_set_worker(const char *id);
/* requests: the per-request lifecycle lines (log_request) are written,
 * at debug level, whatever the level (also on with the environment
 * variable SWITCHYARD_LOG_REQUESTS=1, or at level debug). bodies: prompt
 * and reply fields are written (never by default). */
void log_set_options(int requests, int bodies);

int log_requests_on(void);
int log_bodies_on(void);

void log_event(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As log_event, with fields (NULL: none). */
void log_fields(enum log_level level, const char *event, const struct log_fields *f,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* One step of a request's life, at debug level, when log_requests_on(). */
void log_request(const char *event, const struct log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The line log_fields would write for this message (no newline), with the
 * given timestamp: redacted, JSON, NUL-terminated. New string (free it);
 * NULL when out of memory. Pure but for the redaction registry and the
 * options above (tests). */
char *log_line(enum log_level level, const char *event, const struct log_fields *f, const char *msg,
               int64_t ts_ms);

#define log_info(event, ...) log_event(LOG_INFO, event, __VA_ARGS__)
#define log_warn(event, ...) log_event(LOG_WARN, event, __VA_ARGS__)
#define log_error(event, ...) log_event(LOG_ERROR, event, __VA_ARGS__)
#define log_debug(event, ...) log_event(LOG_DEBUG, event, __VA_ARGS__)

#endif

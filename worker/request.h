/*
 * request: decode and validate one request message (the value bytes of a
 * Kafka record) against the rules of schemas/request.schema.json, plus
 * what a schema cannot say: size, nesting depth, UTF-8, duplicate keys.
 * Pure: no I/O, safe to fuzz.
 */
#ifndef SWITCHYARD_REQUEST_H
#define SWITCHYARD_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define REQUEST_MAX_DEPTH 32
#define REQUEST_MAX_MESSAGES 1000

enum request_role { REQUEST_SYSTEM, REQUEST_USER, REQUEST_ASSISTANT };

struct request_message {
    enum request_role role;
    const char *content; /* borrowed from the request's JSON tree */
    size_t content_len;  /* bytes; content may hold NUL */
};

struct request {
    json_t *root; /* the whole decoded document, owned */
    const char *id, *task;
    const char *tenant; /* NULL when absent */
    const char *system; /* NULL when absent */
    size_t system_len;
    struct request_message *messages;
    size_t nmessages;
    int has_budget;
    uint64_t budget_nusd;
    uint32_t max_tokens; /* 0 when absent */
    int has_temperature;
    double temperature;
    int64_t deadline_ms;  /* ms since the epoch; -1 when absent */
    json_t *metadata;     /* borrowed; NULL when absent */
    size_t content_bytes; /* system + every message content, in bytes */
};

/* Decodes `len` bytes. On success returns 0 and *out (new object, free with
 * request_free). On failure returns -1 with e->kind = ERR_INPUT, e->code one
 * of invalid_json, invalid_utf8, too_large, too_deep, invalid_request, and
 * e->msg naming the field and the rule ("messages[1].role: expected ..."). */
int request_decode(const char *data, size_t len, size_t max_bytes, struct request **out,
                   struct err *e);
void request_free(struct request *req);

const char *request_role_name(enum request_role role);

#endif

/*
 * provider: the one small interface every API family implements. An
 * adapter builds the HTTP request for one call and parses the reply into
 * text, finish reason and usage normalized into disjoint categories; it
 * classifies failures as retryable or not. Adapters do no I/O: the HTTP
 * layer moves the bytes. Adding a provider is one new file and one line in
 * providers.c's table.
 */
#ifndef SWITCHYARD_PROVIDER_H
#define SWITCHYARD_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "cost.h"
#include "err.h"
#include "policy.h"
#include "request.h"

#define PROVIDER_MAX_HEADERS 12

enum provider_finish {
    PROVIDER_FINISH_STOP,
    PROVIDER_FINISH_LENGTH,
    PROVIDER_FINISH_CONTENT_FILTER,
    PROVIDER_FINISH_TOOL_CALLS,
    PROVIDER_FINISH_OTHER,
};

/* What one call needs. Everything is borrowed for the duration of build. */
struct provider_call {
    const struct request *req;
    const char *base_url;         /* from worker.yaml, no trailing slash required */
    const char *model;            /* the provider's model id */
    uint32_t max_tokens;          /* the cap the router allowed */
    const char *api_key;          /* from the environment; never logged or echoed */
    const char *api_version;      /* provider-specific version header; NULL = default */
    const char *max_tokens_field; /* name of the output cap field; NULL = default */
    /* thinking budget to send (budget providers); request->reasoning_budget
     * unless the router lowered it to fit max_tokens; 0 = no reasoning */
    uint32_t reasoning_budget;
    /* Bedrock (SigV4) and any signer: the region and the credentials
     * (session_token NULL or "" when none), all from the environment */
    const char *region;
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
    enum config_auth auth; /* how to authenticate (config_auth) */
    int64_t now_s;         /* the signing time, seconds since the epoch */
};

/* One HTTP request, owned: release with provider_http_release. */
struct provider_http {
    char *url;
    char *headers[PROVIDER_MAX_HEADERS]; /* "Name: value", ready for curl */
    size_t nheaders;
    char *body;
    size_t body_len;
};

/* A parsed successful reply, owned: release with provider_reply_release. */
struct provider_reply {
    char *text; /* NUL-terminated; may hold NUL bytes, text_len counts all */
    size_t text_len;
    enum provider_finish finish;
    struct cost_usage usage; /* disjoint categories, see cost.h */
    char *model;             /* the model id the provider reports; NULL if absent */
    /* the calls the model made, normalized: an array of {"id": string,
     * "name": string, "arguments": object} (arguments the provider sent as
     * text are parsed; text that is not a JSON object is an ERR_TRANSIENT
     * malformed_reply); NULL when none. Owned. A forced tool that stands
     * for response_format (Anthropic, Bedrock) is not a call: its input is
     * the text, and finish is STOP. */
    json_t *tool_calls;
};

struct provider_ops {
    const char *type; /* as in worker.yaml: "openai", "anthropic" */
    /* Builds the request. 0, or -1 with e set (ERR_INPUT when the request
     * cannot be expressed for this provider). */
    int (*build)(const struct provider_call *call, struct provider_http *out, struct err *e);
    /* Parses a complete reply with HTTP status `status` (body may be empty).
     * 0 with *out filled for a usable answer; -1 with e set otherwise:
     *   ERR_TRANSIENT: worth retrying (429, 5xx, 529, overloaded, a 200
     *                  whose body is not the expected JSON),
     *   ERR_UPSTREAM:  not worth retrying this candidate (400, 401, 403,
     *                  404, 413, 422, ...): fall back to the next one.
     * e->code is a short machine-readable reason ("rate_limited",
     * "overloaded", "server_error", "bad_request", "auth", "not_found",
     * "malformed_reply", ...); e->msg quotes the provider's message,
     * bounded. */
    int (*parse)(long status, const char *body, size_t len, struct provider_reply *out,
                 struct err *e);
    /* The wait, in ms, an error reply's BODY asks for, for a provider that
     * says it there rather than in a header (Gemini's RetryInfo); -1 when
     * it says nothing. NULL: the provider never does. Pure. */
    int64_t (*retry_delay_ms)(const char *body, size_t len);
};

/* The first request field a provider type cannot honour, as the route
 * names it, for a model id of that type ("seed", "response_format", "tools", "images", "image_url",
 * "reasoning", "top_p", "stop"), or NULL when it honours them all. A
 * policy model may narrow it (policy_model.unsupported). Pure: a table
 * (tests/data/providers/capabilities.txt). */
const char *provider_unsupported(enum provider_type type, const char *model_id,
                                 const struct request *req);

/* 1 when req uses `field`, so that a model that cannot honour it must not
 * take the request: top_p, stop, seed, temperature when given;
 * response_format when json_object or json_schema; tools when any;
 * tool_choice when not auto; images when any image part; image_url when
 * an image part is an http(s) URL; reasoning when asked for. Pure. */
int provider_field_used(enum policy_field field, const struct request *req);

/* Borrowed: the adapter for a provider type. */
const struct provider_ops *provider_ops_for(enum provider_type type);

void provider_http_release(struct provider_http *http);
void provider_reply_release(struct provider_reply *reply);

const char *provider_finish_name(enum provider_finish finish);

#endif

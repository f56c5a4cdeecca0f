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
#define REQUEST_MAX_PARTS 100      /* content parts of one message */
#define REQUEST_MAX_TOOLS 128      /* tools of one request */
#define REQUEST_MAX_TOOL_CALLS 128 /* tool calls of one assistant message */
#define REQUEST_MAX_STOP 4         /* stop sequences (OpenAI's limit, the smallest) */
#define REQUEST_MAX_MODELS 16      /* pinned models: POLICY_MAX_CANDIDATES */
#define REQUEST_NAME_MAX 64        /* a tool's or a schema's name: ^[A-Za-z0-9_-]{1,64}$ */

/* Every string below is borrowed from the request's JSON tree (root) and
 * lives as long as the request; a `_len` counts bytes, and text may hold
 * NUL bytes. Every json_t * is borrowed from root too (never NULL unless
 * said). Everything was validated by request_decode against
 * schemas/request.schema.json: adapters map it, they do not re-check it. */

enum request_role { REQUEST_SYSTEM, REQUEST_USER, REQUEST_ASSISTANT, REQUEST_TOOL };

enum request_part_type {
    REQUEST_PART_TEXT,       /* {"type":"text","text":...} */
    REQUEST_PART_IMAGE_URL,  /* {"type":"image","url":"https://..."} (http, https or data:) */
    REQUEST_PART_IMAGE_DATA, /* {"type":"image","media_type":"image/png","data":"<base64>"} */
};

struct request_part {
    enum request_part_type type;
    const char *text; /* TEXT: the text; IMAGE_URL: the URL; IMAGE_DATA: the base64 data */
    size_t text_len;
    const char *media_type; /* IMAGE_DATA: image/png, image/jpeg, image/gif or image/webp */
};

/* A call the model made, as an assistant turn carries it back. */
struct request_tool_call {
    const char *id;    /* the provider's call id, echoed back by the tool turn */
    const char *name;  /* a name from the request's tools */
    json_t *arguments; /* a JSON object */
};

struct request_message {
    enum request_role role;
    /* content as a string: the string; as an array of parts: NULL (0) */
    const char *content;
    size_t content_len;
    /* content as parts, always filled: a string content is one TEXT part
     * (pointing at content); an assistant turn with tool_calls and no
     * content has none */
    struct request_part *parts;
    size_t nparts;
    int has_image; /* some part is an image */
    /* REQUEST_ASSISTANT: the calls it made (may be none) */
    struct request_tool_call *tool_calls;
    size_t ntool_calls;
    /* REQUEST_TOOL: the call it answers (an earlier assistant turn's
     * tool_calls[].id) and that call's tool name (Gemini answers by name) */
    const char *tool_call_id;
    const char *tool_name;
};

struct request_tool {
    const char *name;        /* ^[A-Za-z0-9_-]{1,64}$, unique in the request */
    const char *description; /* NULL when absent */
    json_t *parameters;      /* a JSON Schema object; NULL when absent (no arguments) */
};

enum request_tool_choice {
    REQUEST_TOOL_CHOICE_AUTO, /* the default: the model decides */
    REQUEST_TOOL_CHOICE_NONE,
    REQUEST_TOOL_CHOICE_REQUIRED, /* some tool */
    REQUEST_TOOL_CHOICE_NAMED,    /* tool_choice_name */
};

enum request_format {
    REQUEST_FORMAT_TEXT,        /* absent, or {"type":"text"} */
    REQUEST_FORMAT_JSON,        /* {"type":"json_object"}: any JSON object */
    REQUEST_FORMAT_JSON_SCHEMA, /* {"type":"json_schema","json_schema":{...}} */
};

enum request_effort {
    REQUEST_EFFORT_NONE, /* no reasoning asked for */
    REQUEST_EFFORT_LOW,
    REQUEST_EFFORT_MEDIUM,
    REQUEST_EFFORT_HIGH,
};

/* The thinking budget that stands for an effort, for providers that take
 * a budget (Anthropic, Gemini, Bedrock's Claude): low 1024, medium 4096,
 * high 16384 tokens (0 for NONE). Pure. */
uint32_t request_effort_budget(enum request_effort effort);
/* The effort that stands for a budget, for providers that take an effort
 * (OpenAI): up to 1024 low, up to 4096 medium, above high. Pure. */
enum request_effort request_budget_effort(uint32_t budget_tokens);
const char *request_effort_name(enum request_effort effort);

struct request {
    json_t *root; /* the whole decoded document, owned; NULL once compacted */
    char *text;   /* once compacted: every string below, owned */
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
    int has_top_p;
    double top_p;                       /* 0 to 1 */
    const char *stop[REQUEST_MAX_STOP]; /* a string is one stop sequence */
    size_t stop_len[REQUEST_MAX_STOP];
    size_t nstop;
    int has_seed;
    int64_t seed; /* 0 to 2^31-1: every provider's range */
    enum request_format format;
    /* REQUEST_FORMAT_JSON_SCHEMA: response_format.json_schema's fields */
    const char *schema_name;        /* ^[A-Za-z0-9_-]{1,64}$ */
    const char *schema_description; /* NULL when absent */
    json_t *schema;                 /* a JSON Schema object */
    int schema_strict;              /* "strict": true */
    struct request_tool *tools;
    size_t ntools;
    enum request_tool_choice tool_choice;
    const char *tool_choice_name; /* REQUEST_TOOL_CHOICE_NAMED: one of tools */
    int has_image;                /* some message has an image part */
    /* "model": policy model names the request pins, in its order (a
     * string is one); nmodels 0 = the task's route */
    const char *models[REQUEST_MAX_MODELS];
    size_t nmodels;
    /* "reasoning": {"effort": ...} or {"budget_tokens": N}; both are
     * filled from whichever was given (request_effort_budget,
     * request_budget_effort); effort NONE = not asked for */
    enum request_effort reasoning_effort;
    uint32_t reasoning_budget;
    int64_t deadline_ms; /* ms since the epoch; -1 when absent */
    json_t *metadata;    /* borrowed; NULL when absent */
    size_t nimages;      /* image parts, all messages: priced as policy image_tokens each */
    /* bytes the input estimate counts: system, every text part, tool call
     * arguments and tool results, and the compact JSON of tools,
     * tool_choice and the response schema (what the provider reads as
     * prompt); image data is not counted here (nimages is) */
    size_t content_bytes;
};

/* Decodes `len` bytes. On success returns 0 and *out (new object, free with
 * request_free). On failure returns -1 with e->kind = ERR_INPUT, e->code one
 * of invalid_json, invalid_utf8, too_large, too_deep, invalid_request, and
 * e->msg naming the field and the rule ("messages[1].role: expected ..."). */
int request_decode(const char *data, size_t len, size_t max_bytes, struct request **out,
                   struct err *e);
void request_free(struct request *req);

/* Keeps only what the fields above use: every string is copied into one
 * block (req->text), the JSON values the request exposes (metadata,
 * schema, tools' parameters, tool calls' arguments) are kept, and the rest
 * of the decoded document is freed (root becomes NULL). Nothing a field
 * says changes; a request in flight is then about a third the size. 0, or
 * -1 when out of memory (the request is then as it was). */
int request_compact(struct request *req);

const char *request_role_name(enum request_role role);

#endif

/*
 * request_flags: hand-filled requests for table tests. Sets only what a
 * flag names, the way request_decode would; it must never stand in for
 * the decoder's own checks.
 */
#include "request_flags.h"

#include <stdlib.h>
#include <string.h>

static const char request_flags_text[] = "x";
static const char request_flags_data_url[] = "data:image/png;base64,iVBORw0KGgo=";

/* The effort that stands for a budget (request_budget_effort's rule,
 * written out: the table must not depend on the decoder). */
static enum request_effort request_flags_effort(uint32_t budget)
{
    return budget <= 1024   ? REQUEST_EFFORT_LOW
           : budget <= 4096 ? REQUEST_EFFORT_MEDIUM
                            : REQUEST_EFFORT_HIGH;
}

static int request_flags_part(struct request_flags *t, enum request_part_type type,
                              const char *text, const char *media_type)
{
    if (t->message.nparts >= REQUEST_FLAGS_MAX_PARTS)
        return -1;
    struct request_part *p = &t->parts[t->message.nparts++];
    p->type = type;
    p->text = text;
    p->text_len = strlen(text);
    p->media_type = media_type;
    if (type != REQUEST_PART_TEXT) {
        t->message.has_image = 1;
        t->req.has_image = 1;
        t->req.nimages++;
    }
    return 0;
}

static int request_flags_one(struct request_flags *t, char *flag)
{
    struct request *r = &t->req;
    char *value = strchr(flag, '=');
    if (value)
        *value++ = '\0';
    if (strcmp(flag, "seed") == 0)
        r->has_seed = 1, r->seed = 42;
    else if (strcmp(flag, "stop") == 0)
        r->stop[0] = "END", r->stop_len[0] = 3, r->nstop = 1;
    else if (strcmp(flag, "top_p") == 0 && value)
        r->has_top_p = 1, r->top_p = strtod(value, NULL);
    else if (strcmp(flag, "temperature") == 0 && value)
        r->has_temperature = 1, r->temperature = strtod(value, NULL);
    else if (strcmp(flag, "json") == 0)
        r->format = REQUEST_FORMAT_JSON;
    else if (strcmp(flag, "json_schema") == 0)
        r->format = REQUEST_FORMAT_JSON_SCHEMA, r->schema_name = "answer";
    else if (strcmp(flag, "tools") == 0) {
        t->tool.name = "lookup";
        r->tools = &t->tool;
        r->ntools = 1;
    } else if (strcmp(flag, "tool_choice") == 0 && value) {
        if (strcmp(value, "none") == 0)
            r->tool_choice = REQUEST_TOOL_CHOICE_NONE;
        else if (strcmp(value, "required") == 0)
            r->tool_choice = REQUEST_TOOL_CHOICE_REQUIRED;
        else if (strcmp(value, "named") == 0)
            r->tool_choice = REQUEST_TOOL_CHOICE_NAMED, r->tool_choice_name = "lookup";
        else
            return -1;
    } else if (strcmp(flag, "image_url") == 0 && value)
        /* a data: URL holds a comma, the flags' separator: "data" stands for one */
        return request_flags_part(t, REQUEST_PART_IMAGE_URL,
                                  strcmp(value, "data") == 0 ? request_flags_data_url : value,
                                  NULL);
    else if (strcmp(flag, "image_data") == 0)
        return request_flags_part(t, REQUEST_PART_IMAGE_DATA, "iVBORw0KGgo=", "image/png");
    else if (strcmp(flag, "reasoning") == 0 && value) {
        r->reasoning_budget = (uint32_t)strtoul(value, NULL, 10);
        r->reasoning_effort = request_flags_effort(r->reasoning_budget);
    } else if (strcmp(flag, "model") == 0 && value) {
        char *save = NULL;
        for (char *name = strtok_r(value, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
            if (r->nmodels >= REQUEST_MAX_MODELS)
                return -1;
            r->models[r->nmodels++] = name;
        }
    } else
        return -1;
    return 0;
}

int request_flags_fill(struct request_flags *t, const char *task, size_t bytes, char *flags)
{
    memset(t, 0, sizeof *t);
    struct request *r = &t->req;
    r->id = "r";
    r->task = task;
    r->deadline_ms = -1;
    r->messages = &t->message;
    r->nmessages = 1;
    r->content_bytes = bytes;
    t->message.role = REQUEST_USER;
    t->message.parts = t->parts;
    if (request_flags_part(t, REQUEST_PART_TEXT, request_flags_text, NULL) < 0)
        return -1;
    if (strcmp(flags, "-") == 0)
        return 0;
    char *save = NULL;
    for (char *flag = strtok_r(flags, ",", &save); flag; flag = strtok_r(NULL, ",", &save))
        if (request_flags_one(t, flag) < 0)
            return -1;
    return 0;
}

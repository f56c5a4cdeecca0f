/*
 * capabilities: which request fields each provider type (and, for
 * Bedrock, model id) can honour, so that the router skips a candidate
 * instead of sending what its provider would refuse or silently drop.
 * Pure: a table of rules (tests/data/providers/capabilities.txt), no I/O.
 * It must never decide what an adapter sends; only whether it can.
 */
#include "provider.h"

#include <string.h>

/* An image part given by an http(s) URL: the provider must fetch it.
 * A data: URL carries its bytes and can be sent inline anywhere. */
static int capabilities_image_url(const struct request *req)
{
    for (size_t i = 0; i < req->nmessages; i++) {
        const struct request_message *m = &req->messages[i];
        for (size_t j = 0; m->has_image && j < m->nparts; j++)
            if (m->parts[j].type == REQUEST_PART_IMAGE_URL &&
                (m->parts[j].text_len < 5 || memcmp(m->parts[j].text, "data:", 5) != 0))
                return 1;
    }
    return 0;
}

int provider_field_used(enum policy_field field, const struct request *req)
{
    switch (field) {
    case POLICY_FIELD_TOP_P:
        return req->has_top_p;
    case POLICY_FIELD_STOP:
        return req->nstop > 0;
    case POLICY_FIELD_SEED:
        return req->has_seed;
    case POLICY_FIELD_RESPONSE_FORMAT:
        return req->format != REQUEST_FORMAT_TEXT;
    case POLICY_FIELD_TOOLS:
        return req->ntools > 0;
    case POLICY_FIELD_TOOL_CHOICE:
        return req->tool_choice != REQUEST_TOOL_CHOICE_AUTO;
    case POLICY_FIELD_IMAGES:
        return req->has_image;
    case POLICY_FIELD_IMAGE_URL:
        return req->has_image && capabilities_image_url(req);
    case POLICY_FIELD_REASONING:
        return req->reasoning_effort != REQUEST_EFFORT_NONE;
    case POLICY_FIELD_TEMPERATURE:
        return req->has_temperature;
    case POLICY_NFIELDS:
        break;
    }
    return 0;
}

/* Claude with extended thinking (Anthropic's API, and Bedrock's Claude):
 * Anthropic's documentation says thinking is incompatible with a
 * temperature other than 1 and with forced tool use (tool_choice any or
 * tool, which also carries response_format here), and allows top_p only
 * from 0.95 to 1. */
static int capabilities_claude_thinking(enum policy_field field, const struct request *req)
{
    if (req->reasoning_effort == REQUEST_EFFORT_NONE)
        return 1;
    switch (field) {
    case POLICY_FIELD_TEMPERATURE:
        return req->temperature == 1.0;
    case POLICY_FIELD_TOOL_CHOICE:
        return req->tool_choice != REQUEST_TOOL_CHOICE_REQUIRED &&
               req->tool_choice != REQUEST_TOOL_CHOICE_NAMED;
    case POLICY_FIELD_RESPONSE_FORMAT:
        return 0; /* a forced tool */
    case POLICY_FIELD_TOP_P:
        return req->top_p >= 0.95;
    default:
        return 1;
    }
}

/* Whether a provider of `type` honours `field` as req uses it. */
static int capabilities_honours(enum provider_type type, const char *model_id,
                                enum policy_field field, const struct request *req)
{
    switch (type) {
    case PROVIDER_OPENAI:
    case PROVIDER_AZURE:
        return 1;
    case PROVIDER_ANTHROPIC:
        if (field == POLICY_FIELD_SEED)
            return 0;
        return capabilities_claude_thinking(field, req);
    case PROVIDER_GEMINI:
        return field != POLICY_FIELD_IMAGE_URL; /* inline_data only */
    case PROVIDER_BEDROCK: {
        /* Converse takes image bytes only, and thinking only for Claude
         * (additionalModelRequestFields) */
        int claude = model_id && strstr(model_id, "anthropic.") != NULL;
        if (field == POLICY_FIELD_SEED || field == POLICY_FIELD_IMAGE_URL)
            return 0;
        if (field == POLICY_FIELD_REASONING)
            return claude;
        return claude ? capabilities_claude_thinking(field, req) : 1;
    }
    case PROVIDER_NTYPES:
        break;
    }
    return 1; /* an unknown type has no rule of its own */
}

const char *provider_unsupported(enum provider_type type, const char *model_id,
                                 const struct request *req)
{
    for (int f = 0; f < POLICY_NFIELDS; f++)
        if (provider_field_used((enum policy_field)f, req) &&
            !capabilities_honours(type, model_id, (enum policy_field)f, req))
            return policy_field_name((enum policy_field)f);
    return NULL;
}

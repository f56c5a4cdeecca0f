/*
 * bedrock: scaffolding until the adapter lands (issue 10). Builds nothing.
 */
#include "providers/adapter.h"

static int bedrock_build(const struct provider_call *call, struct provider_http *out, struct err *e)
{
    (void)call;
    (void)out;
    return err_set(e, ERR_FATAL, "not_implemented", "the bedrock adapter is not built yet");
}

static int bedrock_parse(long status, const char *body, size_t len, struct provider_reply *out,
                         struct err *e)
{
    (void)status;
    (void)body;
    (void)len;
    (void)out;
    return err_set(e, ERR_FATAL, "not_implemented", "the bedrock adapter is not built yet");
}

const struct provider_ops bedrock_ops = {"bedrock", bedrock_build, bedrock_parse, NULL};

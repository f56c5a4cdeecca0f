/*
 * err: filling the shared error value. No logging here, ever.
 */
#include "err.h"

#include <stdio.h>
#include <string.h>

int err_set(struct err *e, enum err_kind kind, const char *code, const char *fmt, ...)
{
    if (!e)
        return -1;
    e->kind = kind;
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

const char *err_kind_name(enum err_kind kind)
{
    switch (kind) {
    case ERR_NONE:
        return "none";
    case ERR_INPUT:
        return "input";
    case ERR_UPSTREAM:
        return "upstream";
    case ERR_TRANSIENT:
        return "transient";
    case ERR_CONFIG:
        return "config";
    case ERR_FATAL:
        return "fatal";
    }
    return "unknown";
}

/*
 * log: one JSON object per line on stderr, written with one write(2) so
 * that lines from concurrent processes do not interleave. Every line is
 * redacted (redact.h) before it is written: no caller's mistake can print
 * a piece of an API key.
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

/* set once at start by main.c, from SWITCHYARD_LOG_LEVEL */
static enum log_level log_min = LOG_INFO;

void log_set_level(enum log_level level)
{
    log_min = level;
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < log_min)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* before encoding too: JSON escapes would hide a key holding '"' or '\\' */
    redact_str(msg);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s}", "ts_ms", (json_int_t)loop_wall_ms(), "level",
                          names[level], "event", event, "msg", msg);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (line) {
        size_t n = redact(line, strlen(line));
        line[n] = '\n';
        ssize_t w = write(STDERR_FILENO, line, n + 1);
        (void)w;
        free(line);
    }
    json_decref(o);
}

/*
 * log: JSON lines on stderr, one event per line:
 *   {"ts_ms":..,"level":"info","event":"started","msg":"..."}
 * Never pass a secret to these functions.
 */
#ifndef SWITCHYARD_LOG_H
#define SWITCHYARD_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
void log_event(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_info(event, ...) log_event(LOG_INFO, event, __VA_ARGS__)
#define log_warn(event, ...) log_event(LOG_WARN, event, __VA_ARGS__)
#define log_error(event, ...) log_event(LOG_ERROR, event, __VA_ARGS__)
#define log_debug(event, ...) log_event(LOG_DEBUG, event, __VA_ARGS__)

#endif

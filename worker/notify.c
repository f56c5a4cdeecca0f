/*
 * notify: wraps libsystemd's sd_notify for the worker's lifecycle. The
 * watchdog is a timer on the event loop, never a thread: a thread would go
 * on pinging while the loop is stuck, which is what the watchdog exists to
 * catch.
 *
 * Must never: make a failed notification fatal, block start-up on systemd,
 * or pass a status text with a newline (it would forge an assignment).
 */
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "loop.h"
#include "ratelog.h"

/* one line per kind of notification per minute, with the count suppressed */
#define NOTIFY_FAIL_LOG_MS 60000

struct notify {
    struct loop *loop;
    int enabled; /* NOTIFY_SOCKET set */
    int ready;
    uint64_t watchdog_ms;
    struct loop_timer watchdog;
    struct ratelog_set failures;
};

/* kind: "READY", "WATCHDOG", ... (the log's key). fields: the assignments
 * before STATUS=; status may be NULL. */
static void notify_send(struct notify *n, const char *kind, const char *fields, const char *status)
{
    char text[NOTIFY_STATUS_MAX + 1]; /* "..." fits within the max */
    if (status) {
        size_t len = strlen(status);
        size_t take = len > NOTIFY_STATUS_MAX ? NOTIFY_STATUS_MAX - 3 : len;
        for (size_t i = 0; i < take; i++) {
            unsigned char ch = (unsigned char)status[i];
            text[i] = status[i];
            if (ch < 0x20 || ch == 0x7f)
                text[i] = ' ';
        }
        if (take < len) {
            memcpy(text + take, "...", 3);
            take += 3;
        }
        text[take] = '\0';
    }
    int rc = status ? sd_notifyf(0, "%s%sSTATUS=%s", fields, *fields ? "\n" : "", text)
                    : sd_notify(0, fields);
    if (rc >= 0)
        return;
    uint64_t suppressed;
    if (ratelog_allow_key(&n->failures, kind, loop_clock_ms(), &suppressed))
        log_warn("notify_failed",
                 "cannot send %s to systemd's NOTIFY_SOCKET: %s (%llu failures since the "
                 "last such line not logged); the worker goes on",
                 kind, strerror(-rc), (unsigned long long)suppressed);
}

static void notify_watchdog(struct loop_timer *t)
{
    struct notify *n = t->data;
    notify_send(n, "WATCHDOG", "WATCHDOG=1", NULL);
    loop_timer_start(n->loop, t, n->watchdog_ms);
}

struct notify *notify_new(struct loop *loop)
{
    struct notify *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->loop = loop;
    n->failures.interval_ms = NOTIFY_FAIL_LOG_MS;
    n->watchdog = (struct loop_timer){.cb = notify_watchdog, .data = n};
    const char *sock = getenv("NOTIFY_SOCKET");
    n->enabled = sock && *sock;
    if (!n->enabled)
        return n;
    uint64_t usec = 0;
    int wd = sd_watchdog_enabled(0, &usec);
    if (wd < 0)
        log_warn("notify_watchdog_ignored",
                 "WATCHDOG_USEC or WATCHDOG_PID is malformed (%s); no watchdog pings",
                 strerror(-wd));
    if (wd > 0 && usec > 0) {
        /* systemd's advice: ping at half the interval */
        n->watchdog_ms = usec / 2000 ? usec / 2000 : 1;
        log_info("notify_watchdog", "pinging systemd's watchdog every %llu ms",
                 (unsigned long long)n->watchdog_ms);
        loop_timer_start(loop, &n->watchdog, n->watchdog_ms);
    }
    return n;
}

void notify_free(struct notify *n)
{
    if (!n)
        return;
    if (loop_timer_armed(&n->watchdog))
        loop_timer_stop(n->loop, &n->watchdog);
    free(n);
}

void notify_ready(struct notify *n, const char *status)
{
    if (!n || n->ready)
        return;
    n->ready = 1;
    if (n->enabled)
        notify_send(n, "READY", "READY=1", status);
}

void notify_stopping(struct notify *n, const char *status)
{
    if (n && n->enabled)
        notify_send(n, "STOPPING", "STOPPING=1", status);
}

void notify_status(struct notify *n, const char *status)
{
    if (n && n->enabled && status)
        notify_send(n, "STATUS", "", status);
}

int notify_was_ready(const struct notify *n)
{
    return n && n->ready;
}

uint64_t notify_watchdog_period_ms(const struct notify *n)
{
    return n ? n->watchdog_ms : 0;
}

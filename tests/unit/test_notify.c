/*
 * notify: what reaches a notify socket of the test's own (AF_UNIX
 * datagrams): nothing without NOTIFY_SOCKET, READY=1 once, a STATUS= text
 * without control characters and cut at NOTIFY_STATUS_MAX with "...",
 * the watchdog period from WATCHDOG_USEC and WATCHDOG_PID, a ping from the
 * loop, and a dead socket that is not fatal. A datagram is queued when
 * sendmsg returns, so a non-blocking read right after tells what was sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "loop.h"
#include "notify.h"

struct sink {
    int fd;
    char path[108];
};

static int sink_open(struct sink *s)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(s->path, sizeof s->path, "/tmp/switchyard-notify-%d.sock", (int)getpid());
    unlink(s->path);
    memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
    s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return s->fd >= 0 && bind(s->fd, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : -1;
}

/* The next datagram, NUL-terminated, in buf; "" when none is queued. */
static const char *sink_next(struct sink *s, char *buf, size_t cap)
{
    ssize_t n = recv(s->fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void notify_stop_loop(struct loop_timer *t)
{
    loop_stop(t->data);
}

void test_notify(void)
{
    struct sink s;
    char buf[2048];
    if (!ok(sink_open(&s) == 0, "a notify socket of the test's own"))
        return;
    struct loop *loop = loop_new();
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");

    /* NOTIFY_SOCKET unset when the notify is made: nothing is ever sent */
    unsetenv("NOTIFY_SOCKET");
    struct notify *n = notify_new(loop);
    setenv("NOTIFY_SOCKET", s.path, 1);
    notify_ready(n, "x");
    notify_status(n, "x");
    notify_stopping(n, "x");
    ok(strcmp(sink_next(&s, buf, sizeof buf), "") == 0, "no NOTIFY_SOCKET: nothing sent (%s)", buf);
    ok(notify_watchdog_period_ms(n) == 0, "no NOTIFY_SOCKET: no watchdog");
    notify_free(n);

    n = notify_new(loop);
    notify_ready(n, "in the group");
    ok(strcmp(sink_next(&s, buf, sizeof buf), "READY=1\nSTATUS=in the group") == 0,
       "READY=1 with its status (%s)", buf);
    ok(notify_was_ready(n), "was ready");
    notify_ready(n, "again");
    ok(strcmp(sink_next(&s, buf, sizeof buf), "") == 0, "READY=1 once only (%s)", buf);
    notify_status(n, "a\nREADY=1\r\tb");
    ok(strcmp(sink_next(&s, buf, sizeof buf), "STATUS=a READY=1  b") == 0,
       "control characters in a status become spaces: no forged assignment (%s)", buf);
    char long_status[NOTIFY_STATUS_MAX + 50];
    memset(long_status, 'x', sizeof long_status - 1);
    long_status[sizeof long_status - 1] = '\0';
    notify_stopping(n, long_status);
    sink_next(&s, buf, sizeof buf);
    const char *st = strstr(buf, "STATUS=");
    ok(strncmp(buf, "STOPPING=1\n", 11) == 0 && st && strlen(st + 7) == NOTIFY_STATUS_MAX &&
           strcmp(st + 7 + NOTIFY_STATUS_MAX - 3, "...") == 0,
       "a long status is cut at NOTIFY_STATUS_MAX, marked \"...\" (%zu bytes)",
       st ? strlen(st + 7) : 0);
    memset(long_status, 'y', NOTIFY_STATUS_MAX);
    long_status[NOTIFY_STATUS_MAX] = '\0';
    notify_status(n, long_status);
    ok(strcmp(sink_next(&s, buf, sizeof buf) + 7, long_status) == 0,
       "a status of exactly NOTIFY_STATUS_MAX bytes is whole");
    ok(notify_watchdog_period_ms(n) == 0, "no WATCHDOG_USEC: no watchdog");
    notify_free(n);

    /* the watchdog: half of WATCHDOG_USEC, only for this process */
    setenv("WATCHDOG_USEC", "20000", 1);
    setenv("WATCHDOG_PID", "1", 1);
    n = notify_new(loop);
    ok(notify_watchdog_period_ms(n) == 0, "WATCHDOG_PID of another process: no watchdog");
    notify_free(n);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    n = notify_new(loop);
    ok(notify_watchdog_period_ms(n) == 10, "WATCHDOG_USEC 20 ms: a ping every 10 ms (%llu)",
       (unsigned long long)notify_watchdog_period_ms(n));
    /* a timer due after the first ping ends the loop: the ping came from it */
    struct loop_timer stop = {.cb = notify_stop_loop, .data = loop};
    loop_timer_start(loop, &stop, 15);
    loop_run(loop);
    ok(strcmp(sink_next(&s, buf, sizeof buf), "WATCHDOG=1") == 0, "the loop pinged (%s)", buf);
    notify_free(n);

    /* nobody listens: every send fails, nothing is fatal */
    close(s.fd);
    unlink(s.path);
    n = notify_new(loop);
    notify_ready(n, "x");
    notify_stopping(n, "x");
    ok(notify_was_ready(n), "a dead socket: the worker goes on");
    notify_free(n);
    ok(notify_watchdog_period_ms(NULL) == 0 && !notify_was_ready(NULL), "NULL is a no-op");
    notify_ready(NULL, "x");
    notify_free(NULL);

    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    loop_free(loop);
}

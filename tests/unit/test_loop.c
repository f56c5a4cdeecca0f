/*
 * loop: timers fire in due order, stopped timers never fire, a timer
 * re-armed from its own callback works, and fd watchers see readiness.
 *
 * Every run is bounded, so a broken loop fails instead of hanging: a
 * watchdog timer stops a run that has not ended after WATCHDOG_MS and
 * counts a failure; and in case the loop's timers themselves are what is
 * broken, alarm() ends the process after ALARM_S with a failed count.
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "loop.h"

#define NTIMERS 2000

struct probe {
    struct loop_timer timer;
    uint64_t delay;
    int fired;
};

#define WATCHDOG_MS 10000
#define ALARM_S 30

static struct loop *the_loop;

static int watchdog_fired;
static void watchdog(struct loop_timer *t)
{
    (void)t;
    watchdog_fired++;
    loop_stop(the_loop);
}

/* Decimal digits of v into buf (async-signal-safe); returns the length. */
static size_t alarm_number(char *buf, int v)
{
    char tmp[16];
    size_t n = 0, o = 0;
    unsigned u = v < 0 ? 0u : (unsigned)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u && n < sizeof tmp);
    while (n)
        buf[o++] = tmp[--n];
    return o;
}

/* The loop hung beyond every bound: say so, print the count the runner
 * reads, exit non-zero. Only async-signal-safe calls. */
static void alarm_fired(int sig)
{
    (void)sig;
    static const char why[] = "FAIL tests/unit/test_loop.c: a loop run did not end within "
                              "the alarm (the watchdog timer never fired)\n";
    char line[64];
    size_t n = alarm_number(line, check_passed);
    memcpy(line + n, " passed, ", 9);
    n += 9;
    n += alarm_number(line + n, check_failed + 1);
    memcpy(line + n, " failed\n", 8);
    n += 8;
    ssize_t w = write(STDERR_FILENO, why, sizeof why - 1);
    w = write(STDOUT_FILENO, line, n);
    (void)w;
    _exit(1);
}

/* loop_run, bounded: 0 when the run ended by itself in time. */
static int bounded_run(const char *what)
{
    struct loop_timer dog = {.cb = watchdog};
    int before = watchdog_fired;
    loop_timer_start(the_loop, &dog, WATCHDOG_MS);
    int rc = loop_run(the_loop);
    loop_timer_stop(the_loop, &dog);
    ok(watchdog_fired == before, "%s: the run ended by itself within %d ms", what, WATCHDOG_MS);
    return rc;
}
static uint64_t last_due;
static int fired, out_of_order, total_to_fire;

static void probe_fired(struct loop_timer *t)
{
    struct probe *p = t->data;
    p->fired++;
    if (t->due_ms < last_due)
        out_of_order++;
    last_due = t->due_ms;
    if (++fired == total_to_fire)
        loop_stop(the_loop);
}

static int rearm_count;
static void rearm(struct loop_timer *t)
{
    if (++rearm_count < 5)
        loop_timer_start(the_loop, t, 1);
    else
        loop_stop(the_loop);
}

static int io_seen;
static void io_ready(struct loop_io *io, unsigned events)
{
    char c;
    if ((events & LOOP_READ) && read(io->fd, &c, 1) == 1 && c == 'x')
        io_seen++;
    loop_stop(the_loop);
}

void test_loop(void)
{
    struct sigaction sa = {.sa_handler = alarm_fired};
    sigemptyset(&sa.sa_mask);
    struct sigaction old;
    sigaction(SIGALRM, &sa, &old);
    alarm(ALARM_S);
    the_loop = loop_new();
    if (!ok(the_loop != NULL, "loop_new"))
        goto out;
    static struct probe probes[NTIMERS];
    srand(7);
    total_to_fire = 0;
    for (int i = 0; i < NTIMERS; i++) {
        probes[i].timer.cb = probe_fired;
        probes[i].timer.data = &probes[i];
        probes[i].delay = (uint64_t)(rand() % 40);
        loop_timer_start(the_loop, &probes[i].timer, probes[i].delay);
    }
    int stopped = 0;
    for (int i = 0; i < NTIMERS; i += 3) {
        loop_timer_stop(the_loop, &probes[i].timer);
        stopped++;
    }
    /* re-arming moves a timer, never duplicates it */
    for (int i = 1; i < NTIMERS; i += 3)
        loop_timer_start(the_loop, &probes[i].timer, probes[i].delay + 5);
    total_to_fire = NTIMERS - stopped;
    ok(bounded_run("timers") == 0, "loop runs");
    int wrong = 0;
    for (int i = 0; i < NTIMERS; i++)
        wrong += probes[i].fired != (i % 3 == 0 ? 0 : 1);
    ok(wrong == 0, "each armed timer fired once, stopped ones never (%d wrong)", wrong);
    ok(out_of_order == 0, "timers fired in due order (%d out of order)", out_of_order);

    struct loop_timer again = {.cb = rearm};
    loop_timer_start(the_loop, &again, 0);
    bounded_run("re-armed timer");
    ok(rearm_count == 5, "a timer re-armed from its callback fires again (%d)", rearm_count);

    int fds[2];
    ok(pipe(fds) == 0, "pipe");
    struct loop_io io = {.fd = fds[0], .cb = io_ready};
    ok(loop_io_set(the_loop, &io, LOOP_READ) == 0, "watch a pipe");
    ok(write(fds[1], "x", 1) == 1, "write to it");
    bounded_run("pipe watcher");
    ok(io_seen == 1, "the watcher saw the byte");
    ok(loop_io_set(the_loop, &io, 0) == 0, "unwatch");
    close(fds[0]);
    close(fds[1]);
    loop_free(the_loop);
out:
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
}

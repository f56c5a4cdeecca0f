/*
 * loop: timers fire in due order, stopped timers never fire, a timer
 * re-armed from its own callback works, and fd watchers see readiness.
 */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "loop.h"

#define NTIMERS 2000

struct probe {
    struct loop_timer timer;
    uint64_t delay;
    int fired;
};

static struct loop *the_loop;
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
    the_loop = loop_new();
    ok(the_loop != NULL, "loop_new");
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
    ok(loop_run(the_loop) == 0, "loop runs");
    int wrong = 0;
    for (int i = 0; i < NTIMERS; i++)
        wrong += probes[i].fired != (i % 3 == 0 ? 0 : 1);
    ok(wrong == 0, "each armed timer fired once, stopped ones never (%d wrong)", wrong);
    ok(out_of_order == 0, "timers fired in due order (%d out of order)", out_of_order);

    struct loop_timer again = {.cb = rearm};
    loop_timer_start(the_loop, &again, 0);
    loop_run(the_loop);
    ok(rearm_count == 5, "a timer re-armed from its callback fires again (%d)", rearm_count);

    int fds[2];
    ok(pipe(fds) == 0, "pipe");
    struct loop_io io = {.fd = fds[0], .cb = io_ready};
    ok(loop_io_set(the_loop, &io, LOOP_READ) == 0, "watch a pipe");
    ok(write(fds[1], "x", 1) == 1, "write to it");
    loop_run(the_loop);
    ok(io_seen == 1, "the watcher saw the byte");
    ok(loop_io_set(the_loop, &io, 0) == 0, "unwatch");
    close(fds[0]);
    close(fds[1]);
    loop_free(the_loop);
}

/*
 * loop: epoll + timer heap. Callbacks run on this thread only; a callback
 * may add, change or stop any watcher or timer, including its own. Never
 * block here: everything slow is a watcher or a timer.
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

struct loop {
    int epfd;
    int stopping;
    uint64_t now_ms;
    uint64_t seq;
    struct loop_timer **heap;
    size_t nheap, heap_cap;
};

uint64_t loop_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t loop_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct loop *loop_new(void)
{
    struct loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    loop->now_ms = loop_clock_ms();
    return loop;
}

void loop_free(struct loop *loop)
{
    if (!loop)
        return;
    close(loop->epfd);
    free(loop->heap);
    free(loop);
}

int loop_io_set(struct loop *loop, struct loop_io *io, unsigned events)
{
    struct epoll_event ev = {0};
    ev.data.ptr = io;
    ev.events = ((events & LOOP_READ) ? EPOLLIN : 0u) | ((events & LOOP_WRITE) ? EPOLLOUT : 0u);
    int op = events == 0 ? EPOLL_CTL_DEL : io->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (events == 0 && io->events == 0)
        return 0;
    int rc = epoll_ctl(loop->epfd, op, io->fd, &ev);
    if (rc < 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
        rc = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev);
    if (rc < 0 && op == EPOLL_CTL_DEL && (errno == EBADF || errno == ENOENT))
        rc = 0; /* the fd was closed already (curl does that) */
    io->events = events;
    return rc;
}

/* Heap order: earlier due first, then earlier armed. */
static int loop_before(const struct loop_timer *a, const struct loop_timer *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void loop_heap_set(struct loop *loop, size_t i, struct loop_timer *t)
{
    loop->heap[i] = t;
    t->heap_index = i + 1;
}

static void loop_heap_up(struct loop *loop, size_t i)
{
    struct loop_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!loop_before(t, loop->heap[parent]))
            break;
        loop_heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    loop_heap_set(loop, i, t);
}

static void loop_heap_down(struct loop *loop, size_t i)
{
    struct loop_timer *t = loop->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->nheap)
            break;
        if (child + 1 < loop->nheap && loop_before(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!loop_before(loop->heap[child], t))
            break;
        loop_heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    loop_heap_set(loop, i, t);
}

void loop_timer_stop(struct loop *loop, struct loop_timer *timer)
{
    if (!timer->heap_index)
        return;
    size_t i = timer->heap_index - 1;
    timer->heap_index = 0;
    struct loop_timer *last = loop->heap[--loop->nheap];
    if (i == loop->nheap)
        return;
    loop_heap_set(loop, i, last);
    loop_heap_up(loop, i);
    loop_heap_down(loop, last->heap_index - 1);
}

void loop_timer_start(struct loop *loop, struct loop_timer *timer, uint64_t delay_ms)
{
    loop_timer_stop(loop, timer);
    if (loop->nheap == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        struct loop_timer **heap = realloc(loop->heap, cap * sizeof(struct loop_timer *));
        if (!heap)
            abort(); /* a timer that silently never fires would lose work */
        loop->heap = heap;
        loop->heap_cap = cap;
    }
    timer->due_ms = loop->now_ms + delay_ms;
    timer->seq = ++loop->seq;
    loop_heap_set(loop, loop->nheap++, timer);
    loop_heap_up(loop, loop->nheap - 1);
}

int loop_timer_armed(const struct loop_timer *timer)
{
    return timer->heap_index != 0;
}

uint64_t loop_now_ms(const struct loop *loop)
{
    return loop->now_ms;
}

void loop_stop(struct loop *loop)
{
    loop->stopping = 1;
}

static void loop_run_timers(struct loop *loop)
{
    /* only timers due now; one armed by a callback for 0 ms runs next turn */
    uint64_t limit = loop->seq;
    while (loop->nheap > 0 && !loop->stopping) {
        struct loop_timer *t = loop->heap[0];
        if (t->due_ms > loop->now_ms || t->seq > limit)
            break;
        loop_timer_stop(loop, t);
        t->cb(t);
    }
}

int loop_run(struct loop *loop)
{
    struct epoll_event events[LOOP_MAX_EVENTS];
    loop->stopping = 0;
    while (!loop->stopping) {
        loop->now_ms = loop_clock_ms();
        int timeout = -1;
        if (loop->nheap > 0) {
            uint64_t due = loop->heap[0]->due_ms;
            timeout = due <= loop->now_ms
                          ? 0
                          : (int)(due - loop->now_ms > 60000 ? 60000 : due - loop->now_ms);
        }
        int n = epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        loop->now_ms = loop_clock_ms();
        for (int i = 0; i < n && !loop->stopping; i++) {
            struct loop_io *io = events[i].data.ptr;
            unsigned ev = 0;
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                ev |= LOOP_READ;
            if (events[i].events & (EPOLLOUT | EPOLLERR))
                ev |= LOOP_WRITE;
            if (io->events)
                io->cb(io, ev);
        }
        loop_run_timers(loop);
    }
    return 0;
}

/*
 * loop: the one event loop. epoll for file descriptors (Kafka queue
 * wake-ups, curl's sockets, signalfd), a binary min-heap of timers. Every
 * watcher and timer is embedded in its owner: the loop allocates nothing
 * per event.
 */
#ifndef SWITCHYARD_LOOP_H
#define SWITCHYARD_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct loop;

enum { LOOP_READ = 1, LOOP_WRITE = 2 };

struct loop_io;
typedef void (*loop_io_cb)(struct loop_io *io, unsigned events);

struct loop_io {
    int fd;
    unsigned events; /* LOOP_READ | LOOP_WRITE; 0 = not watched */
    loop_io_cb cb;
    void *data;
};

struct loop_timer;
typedef void (*loop_timer_cb)(struct loop_timer *timer);

struct loop_timer {
    uint64_t due_ms;   /* monotonic ms */
    size_t heap_index; /* 0 = not armed; else position + 1 */
    uint64_t seq;      /* ties broken by arming order */
    loop_timer_cb cb;
    void *data;
};

struct loop *loop_new(void);
void loop_free(struct loop *loop);

/* Watches io->fd for `events` (LOOP_READ/LOOP_WRITE), or changes what is
 * watched; events == 0 stops watching. io stays the caller's. */
int loop_io_set(struct loop *loop, struct loop_io *io, unsigned events);

/* Arms (or re-arms) timer to fire after delay_ms. */
void loop_timer_start(struct loop *loop, struct loop_timer *timer, uint64_t delay_ms);
void loop_timer_stop(struct loop *loop, struct loop_timer *timer);
int loop_timer_armed(const struct loop_timer *timer);

/* Monotonic milliseconds, read once per loop iteration. */
uint64_t loop_now_ms(const struct loop *loop);
/* Monotonic milliseconds read now, from any thread (for waits outside the
 * loop: flushes, the start-up probe, librdkafka's callbacks). */
uint64_t loop_clock_ms(void);
/* Wall-clock milliseconds since the epoch (for records and deadlines). */
int64_t loop_wall_ms(void);

/* Runs until loop_stop. Returns 0, or -1 if epoll itself fails. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

#endif

/*
 * reload: policy_load on a thread, delivered through an eventfd that the
 * loop watches. The thread touches only what reload_start gave it (its
 * path, the read-only config) and its own result fields; the loop's thread
 * reads those fields only after pthread_join, which orders the memory.
 *
 * Never log from the loading thread, and never call into the loop from it:
 * the eventfd write is its only way back.
 */
#include "reload.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct reload {
    struct loop *loop;
    const struct config *cfg;
    reload_done_cb done;
    void *data;
    struct loop_io io; /* the eventfd: readable when a load has ended */
    pthread_t thread;
    int running;  /* a thread was started and not yet joined */
    char *path;   /* the running load's path (the thread reads it) */
    char *queued; /* the next path to load, or NULL */
    /* written by the thread, read after the join */
    struct policy *result;
    struct ydoc_errors errs;
};

/* errs (empty) := one line of text; left empty when out of memory. */
static void reload_error_line(struct ydoc_errors *errs, const char *text)
{
    char *line = strdup(text);
    char **lines = line ? malloc(sizeof *lines) : NULL;
    if (!lines) {
        free(line);
        return;
    }
    lines[0] = line;
    errs->lines = lines;
    errs->count = errs->cap = 1;
}

static void *reload_thread(void *arg)
{
    struct reload *r = arg;
    r->result = policy_load(r->path, r->cfg, &r->errs);
    /* policy_load returns NULL without a line only when out of memory */
    if (!r->result && r->errs.count == 0)
        reload_error_line(&r->errs, "out of memory while loading the policy");
    uint64_t one = 1;
    ssize_t w;
    do
        w = write(r->io.fd, &one, sizeof one);
    while (w < 0 && errno == EINTR);
    return NULL;
}

static int reload_launch(struct reload *r, char *path)
{
    r->path = path;
    r->result = NULL;
    r->errs = (struct ydoc_errors){0};
    /* the thread takes no signal: the loop's thread reads them (signalfd),
     * and a signal delivered here would take its default action */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&r->thread, NULL, reload_thread, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        r->path = NULL;
        free(path);
        errno = rc;
        return -1;
    }
    r->running = 1;
    return 0;
}

/* Joins the ended thread and takes its result off the struct. */
static struct policy *reload_join(struct reload *r, struct ydoc_errors *errs)
{
    pthread_join(r->thread, NULL);
    r->running = 0;
    free(r->path);
    r->path = NULL;
    struct policy *p = r->result;
    *errs = r->errs;
    r->result = NULL;
    r->errs = (struct ydoc_errors){0};
    return p;
}

static void reload_ready(struct loop_io *io, unsigned events)
{
    struct reload *r = io->data;
    (void)events;
    uint64_t n;
    if (read(io->fd, &n, sizeof n) < 0 || !r->running)
        return; /* EAGAIN: spurious; not running: nothing to deliver */
    struct ydoc_errors errs;
    struct policy *p = reload_join(r, &errs);
    r->done(r->data, p, &errs);
    ydoc_errors_release(&errs);
    if (!r->running && r->queued) {
        char *next = r->queued;
        r->queued = NULL;
        if (reload_launch(r, next) < 0) {
            struct ydoc_errors none = {0};
            reload_error_line(&none, "cannot start a thread to load the policy");
            r->done(r->data, NULL, &none);
            ydoc_errors_release(&none);
        }
    }
}

struct reload *reload_new(struct loop *loop, const struct config *cfg, reload_done_cb done,
                          void *data)
{
    struct reload *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->loop = loop;
    r->cfg = cfg;
    r->done = done;
    r->data = data;
    r->io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r->io.cb = reload_ready;
    r->io.data = r;
    if (r->io.fd < 0 || loop_io_set(loop, &r->io, LOOP_READ) < 0) {
        if (r->io.fd >= 0)
            close(r->io.fd);
        free(r);
        return NULL;
    }
    return r;
}

int reload_start(struct reload *r, const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    if (r->running) {
        free(r->queued);
        r->queued = copy;
        return 1;
    }
    return reload_launch(r, copy);
}

int reload_busy(const struct reload *r)
{
    return r->running || r->queued != NULL;
}

void reload_free(struct reload *r)
{
    if (!r)
        return;
    loop_io_set(r->loop, &r->io, 0);
    if (r->running) {
        struct ydoc_errors errs;
        policy_release(reload_join(r, &errs));
        ydoc_errors_release(&errs);
    }
    free(r->queued);
    close(r->io.fd);
    free(r);
}

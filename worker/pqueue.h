/*
 * pqueue: a provider's connection cap. At most `max` calls hold a slot;
 * more wait in arrival order. Pure bookkeeping: the caller starts the
 * call a slot was given to.
 */
#ifndef SWITCHYARD_PQUEUE_H
#define SWITCHYARD_PQUEUE_H

#include <stddef.h>
#include <sys/queue.h>

/* Embedded in whatever waits (a job). */
struct pqueue_entry {
    TAILQ_ENTRY(pqueue_entry) link;
    int queued;
};

struct pqueue {
    size_t max;       /* slots */
    size_t in_flight; /* slots held */
    size_t nwaiting;
    TAILQ_HEAD(, pqueue_entry) waiting;
};

void pqueue_init(struct pqueue *q, size_t max);
/* 1: e holds a slot now; 0: e waits (pqueue_release hands it one later). */
int pqueue_acquire(struct pqueue *q, struct pqueue_entry *e);
/* Gives a slot back. Returns the entry that now holds it (the first
 * waiting, taken off the queue), or NULL when none waits. */
struct pqueue_entry *pqueue_release(struct pqueue *q);
/* Takes a waiting entry off the queue (abandoned work); no-op otherwise. */
void pqueue_remove(struct pqueue *q, struct pqueue_entry *e);

#endif

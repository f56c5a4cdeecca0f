/*
 * pqueue: FIFO fairness for a provider's max_connections. It never starts
 * or cancels anything itself.
 */
#include "pqueue.h"

void pqueue_init(struct pqueue *q, size_t max)
{
    q->max = max ? max : 1;
    q->in_flight = 0;
    q->nwaiting = 0;
    TAILQ_INIT(&q->waiting);
}

int pqueue_acquire(struct pqueue *q, struct pqueue_entry *e)
{
    if (q->in_flight < q->max && q->nwaiting == 0) {
        q->in_flight++;
        e->queued = 0;
        return 1;
    }
    TAILQ_INSERT_TAIL(&q->waiting, e, link);
    e->queued = 1;
    q->nwaiting++;
    return 0;
}

struct pqueue_entry *pqueue_release(struct pqueue *q)
{
    if (q->in_flight > 0)
        q->in_flight--;
    struct pqueue_entry *e = TAILQ_FIRST(&q->waiting);
    if (!e || q->in_flight >= q->max)
        return NULL;
    TAILQ_REMOVE(&q->waiting, e, link);
    e->queued = 0;
    q->nwaiting--;
    q->in_flight++;
    return e;
}

void pqueue_remove(struct pqueue *q, struct pqueue_entry *e)
{
    if (!e->queued)
        return;
    TAILQ_REMOVE(&q->waiting, e, link);
    e->queued = 0;
    q->nwaiting--;
}

/*
 * pqueue: the connection cap against a brute-force model: random
 * acquire/release/remove sequences, checked after every step.
 */
#include <stdlib.h>

#include "check.h"
#include "pqueue.h"

#define PQ_N 64

void test_pqueue(void)
{
    struct pqueue q;
    struct pqueue_entry e[4];
    pqueue_init(&q, 2);
    ok(pqueue_acquire(&q, &e[0]) == 1 && pqueue_acquire(&q, &e[1]) == 1, "two slots given");
    ok(pqueue_acquire(&q, &e[2]) == 0 && pqueue_acquire(&q, &e[3]) == 0, "then callers wait");
    ok(q.nwaiting == 2 && q.in_flight == 2, "2 in flight, 2 waiting");
    ok(pqueue_release(&q) == &e[2], "a released slot goes to the first waiting");
    pqueue_remove(&q, &e[3]);
    ok(q.nwaiting == 0 && !e[3].queued, "a removed entry leaves the queue");
    ok(pqueue_release(&q) == NULL && q.in_flight == 1, "nothing waits: the slot is free");

    /* model: FIFO of waiting ids, a count of slots */
    int ok_all = 1;
    srand(7);
    for (int round = 0; round < 200; round++) {
        struct pqueue_entry ent[PQ_N];
        int state[PQ_N] = {0}; /* 0 idle, 1 holds a slot, 2 waiting */
        int fifo[PQ_N * 8], fifo_seq[PQ_N * 8], seq[PQ_N] = {0}, head = 0, tail = 0;
        size_t max = (size_t)(rand() % 5) + 1, held = 0;
        pqueue_init(&q, max);
        for (int step = 0; step < 500; step++) {
            int i = rand() % PQ_N, op = rand() % 3;
            if (op == 0 && state[i] == 0) {
                size_t waiting_now = 0;
                for (int k = 0; k < PQ_N; k++)
                    waiting_now += state[k] == 2;
                int got = pqueue_acquire(&q, &ent[i]);
                int want = held < max && waiting_now == 0;
                ok_all &= got == want;
                if (want) {
                    state[i] = 1;
                    held++;
                } else {
                    state[i] = 2;
                    fifo_seq[tail % (PQ_N * 8)] = ++seq[i];
                    fifo[tail++ % (PQ_N * 8)] = i;
                }
            } else if (op == 1 && state[i] == 1) {
                state[i] = 0;
                held--;
                struct pqueue_entry *got = pqueue_release(&q);
                /* skip entries removed since they queued (stale sequence) */
                while (head != tail &&
                       (state[fifo[head % (PQ_N * 8)]] != 2 ||
                        fifo_seq[head % (PQ_N * 8)] != seq[fifo[head % (PQ_N * 8)]]))
                    head++;
                if (head != tail) {
                    int w = fifo[head++ % (PQ_N * 8)];
                    ok_all &= got == &ent[w];
                    state[w] = 1;
                    held++;
                } else {
                    ok_all &= got == NULL;
                }
            } else if (op == 2 && state[i] == 2) {
                pqueue_remove(&q, &ent[i]);
                state[i] = 0;
            }
            size_t waiting = 0;
            for (int k = 0; k < PQ_N; k++)
                waiting += state[k] == 2;
            ok_all &= q.in_flight == held && q.nwaiting == waiting && held <= max;
        }
    }
    ok(ok_all, "200 x 500 random steps agree with the model (FIFO, cap, removal)");
}

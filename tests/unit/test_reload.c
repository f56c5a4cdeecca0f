/*
 * reload: a policy loaded on the reload thread is delivered through a
 * running loop; the loop keeps turning while a large policy loads (a 1 ms
 * timer is counted firing during the load); errors are delivered; requests
 * made during a load are coalesced into one more load of the latest path;
 * a FIFO is refused instead of blocking; reload_free joins a running load.
 * Every wait has a watchdog timer, so a broken delivery fails, not hangs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "loop.h"
#include "policy.h"
#include "reload.h"

#define BIG_MODELS 150000
#define WATCHDOG_MS 60000

struct delivery {
    struct policy *p;
    size_t nerrs;
    char first_err[256];
};

struct state {
    struct loop *loop;
    struct delivery got[8];
    int ndone, want;
    /* the ticking timer */
    struct loop_timer tick, watchdog;
    int loading; /* 1 from reload_start to the first delivery */
    int ticks_while_loading;
    uint64_t last_tick_ms, max_gap_ms;
    int timed_out;
};

static void on_done(void *data, struct policy *p, struct ydoc_errors *errs)
{
    struct state *s = data;
    s->loading = 0;
    if (s->ndone < 8) {
        struct delivery *d = &s->got[s->ndone];
        d->p = p;
        d->nerrs = errs->count;
        snprintf(d->first_err, sizeof d->first_err, "%s", errs->count ? errs->lines[0] : "");
    } else {
        policy_release(p);
    }
    if (++s->ndone >= s->want)
        loop_stop(s->loop);
}

static void on_tick(struct loop_timer *t)
{
    struct state *s = t->data;
    uint64_t now = loop_now_ms(s->loop);
    if (s->loading) {
        s->ticks_while_loading++;
        if (s->last_tick_ms && now - s->last_tick_ms > s->max_gap_ms)
            s->max_gap_ms = now - s->last_tick_ms;
    }
    s->last_tick_ms = now;
    loop_timer_start(s->loop, t, 1);
}

static void on_watchdog(struct loop_timer *t)
{
    struct state *s = t->data;
    s->timed_out = 1;
    loop_stop(s->loop);
}

static void state_init(struct state *s, struct loop *loop, int want)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->want = want;
    s->tick.cb = on_tick;
    s->tick.data = s;
    s->watchdog.cb = on_watchdog;
    s->watchdog.data = s;
}

/* Runs the loop until `want` deliveries or the watchdog. */
static void state_run(struct state *s)
{
    loop_timer_start(s->loop, &s->tick, 1);
    loop_timer_start(s->loop, &s->watchdog, WATCHDOG_MS);
    loop_run(s->loop);
    loop_timer_stop(s->loop, &s->tick);
    loop_timer_stop(s->loop, &s->watchdog);
}

static void state_release(struct state *s)
{
    for (int i = 0; i < s->ndone && i < 8; i++)
        policy_release(s->got[i].p);
}

/* A valid policy of BIG_MODELS models (a few megabytes of YAML). */
static int write_big_policy(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "models:\n  m0: &b {provider: openai, model: m, price: {input: 1, output: 2}}\n");
    for (int i = 1; i < BIG_MODELS; i++)
        fprintf(f, "  m%d: *b\n", i);
    fprintf(f, "routes:\n  default: [m0, m%d]\n", BIG_MODELS - 1);
    return fclose(f);
}

void test_reload(void)
{
    struct ydoc_errors errs = {0};
    struct config *cfg = config_load("config/worker.yaml", &errs);
    ydoc_errors_release(&errs);
    struct loop *loop = loop_new();
    char dir[] = "/tmp/switchyard-test-reload-XXXXXX";
    ok(cfg && loop && mkdtemp(dir), "setup");
    if (!cfg || !loop)
        goto out;
    char big[128], fifo[128];
    snprintf(big, sizeof big, "%s/big.yaml", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo.yaml", dir);
    ok(write_big_policy(big) == 0, "big policy written");
    const char *bad = "tests/data/bad-config/policy-unknown-route-model.yaml";

    struct state s;
    state_init(&s, loop, 1);
    struct reload *r = reload_new(loop, cfg, on_done, &s);
    ok(r != NULL, "reload_new");
    if (!r)
        goto out;

    /* 1. a big policy, delivered on the loop while the timer keeps firing */
    s.loading = 1;
    ok(reload_start(r, big) == 0, "a load starts");
    ok(reload_busy(r), "busy while loading");
    state_run(&s);
    ok(!s.timed_out && s.ndone == 1, "delivered (%d)", s.ndone);
    ok(s.got[0].p && s.got[0].p->nmodels == BIG_MODELS && s.got[0].nerrs == 0,
       "the big policy: %zu models", s.got[0].p ? s.got[0].p->nmodels : 0);
    ok(s.got[0].p && policy_route_find(s.got[0].p, "default"), "its route is found");
    /* not a timing assertion: the load takes far longer than 1 ms, and a
     * loop blocked by it would not tick at all until it ended */
    ok(s.ticks_while_loading > 0,
       "the loop kept turning during the load: %d ticks, largest gap %llu ms",
       s.ticks_while_loading, (unsigned long long)s.max_gap_ms);
    ok(!reload_busy(r), "idle after the delivery");
    state_release(&s);

    /* 2. errors are delivered, located in the file */
    state_init(&s, loop, 1);
    ok(reload_start(r, bad) == 0, "a failing load starts");
    state_run(&s);
    ok(!s.timed_out && s.ndone == 1 && s.got[0].p == NULL && s.got[0].nerrs == 2 &&
           strncmp(s.got[0].first_err, bad, strlen(bad)) == 0,
       "the error is delivered: %s", s.got[0].first_err);
    state_release(&s);

    /* 3. requests during a load: coalesced into one more load, of the latest path */
    state_init(&s, loop, 2);
    ok(reload_start(r, big) == 0, "a load starts");
    int q1 = reload_start(r, "/nonexistent/policy.yaml");
    int q2 = reload_start(r, bad);
    int q3 = reload_start(r, bad);
    ok(q1 == 1 && q2 == 1 && q3 == 1, "three requests queued behind it (%d %d %d)", q1, q2, q3);
    state_run(&s);
    /* a third delivery would come now if the queue were not coalesced */
    struct loop_timer settle = {.cb = on_watchdog, .data = &s};
    s.want = 3;
    loop_timer_start(loop, &settle, 300);
    loop_run(loop);
    loop_timer_stop(loop, &settle);
    ok(s.ndone == 2, "two deliveries, not four (%d)", s.ndone);
    ok(s.got[0].p && s.got[0].p->nmodels == BIG_MODELS, "first: the running load");
    ok(s.got[1].p == NULL && strncmp(s.got[1].first_err, bad, strlen(bad)) == 0,
       "second: the latest request's file: %s", s.got[1].first_err);
    state_release(&s);

    /* 4. a FIFO is refused at once instead of blocking the thread */
    ok(mkfifo(fifo, 0600) == 0, "mkfifo");
    state_init(&s, loop, 1);
    ok(reload_start(r, fifo) == 0, "a FIFO load starts");
    state_run(&s);
    ok(!s.timed_out && s.ndone == 1 && s.got[0].p == NULL &&
           strstr(s.got[0].first_err, ":1:1: not a regular file (a FIFO)"),
       "a FIFO is refused: %s", s.got[0].first_err);
    state_release(&s);

    /* 5. freed while a load runs: joined, its result dropped (ASan sees leaks) */
    state_init(&s, loop, 1);
    ok(reload_start(r, big) == 0 && reload_start(r, bad) == 1, "a load running and one queued");
    reload_free(r);
    ok(s.ndone == 0, "nothing delivered after reload_free");

    unlink(big);
    unlink(fifo);
    rmdir(dir);
out:
    loop_free(loop);
    config_free(cfg);
}

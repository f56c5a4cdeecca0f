/*
 * consumer: librdkafka's high-level consumer on the loop. Offsets are
 * stored and committed by us only (enable.auto.commit and
 * enable.auto.offset.store are off): an offset is committed when every
 * message before it in its partition is finished. On revoke, the revoked
 * partitions stop taking work, drain within rebalance_grace_ms, are
 * committed, then released; on a lost assignment nothing is committed.
 * What a commit says lives in commit.c; this file owns the assignment,
 * rebalances, pause/resume, message intake, and what readiness and the
 * stall report see. It must never commit for a partition it no longer
 * owns, nor block the loop except for the one bounded read of committed
 * offsets per rebalance.
 */
#include "consumer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "kafka.h"
#include "log.h"
#include "offsets.h"

#define CONSUMER_REVOKE_COMMIT_MS 5000 /* the revoked partitions' last commit, at most */
#define CONSUMER_BATCH 500             /* messages per wake-up, then yield to the loop */
#define CONSUMER_POLL_MS 200           /* poll at least this often (max.poll.interval) */
#define CONSUMER_STALL_CHECK_MS 1000
#define CONSUMER_STATS_MS "2000" /* broker states, read only while they were down */
#define CONSUMER_COMMITTED_TIMEOUT_MS 10000
#define CONSUMER_HOLD_MAX_MS 30000 /* held commits resume without an assignment after this */
/* Fetched messages a partition keeps waiting (taken from librdkafka, not
 * yet started) while the in-flight caps are full: at least this many, and
 * in all about half of max_in_flight. Why not pause at the cap: a pause
 * makes librdkafka drop what it prefetched, and the resume fetches it
 * again, a round trip (or its 1 s fetch backoff) during which nothing
 * starts; with a completion every few hundred microseconds the worker
 * then runs below its cap most of the time. */
#define CONSUMER_WAITING_MIN 64u

struct partition {
    int32_t id;
    uint32_t generation;
    int assigned;
    int paused;              /* by us, for the caps */
    int revoking;            /* release pending: no new work */
    struct offsets *offsets; /* NULL until the first message */
    struct commit_part commit;
    size_t in_flight;
    size_t pressure; /* its messages waiting in a full model queue (dispatch) */
    /* fetched and tracked in offsets, not started: a ring, in offset order */
    rd_kafka_message_t **waiting;
    size_t waiting_head, nwaiting, waiting_cap;
};

struct consumer {
    struct loop *loop;
    const struct config *cfg;
    struct consumer_handlers handlers;
    void *ctx;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    struct kafka_wake wake;
    struct loop_timer poll_timer, commit_timer, revoke_timer, stall_timer;
    struct partition *parts; /* indexed by partition id */
    size_t nparts;
    size_t in_flight;
    size_t nwaiting;    /* all partitions' */
    size_t next_start;  /* the partition whose waiting message starts first (fairness) */
    int fatal_reported; /* handlers.fatal was called */
    int ever_assigned;  /* an assignment callback came, at any time */
    long fatal_after;   /* tests: SWITCHYARD_FAULT_CONSUMER_FATAL_AFTER messages, then a
                           fatal error raised by librdkafka's own test hook */
    uint64_t skipped;   /* messages finished by a previous owner */
    /* a commit failed because the group is rebalancing: librdkafka 2.0.2
     * loses the assignment when commits keep landing in a rebalance
     * (librdkafka#4059), so periodic commits wait for the next assignment */
    int commits_held;
    uint64_t commits_held_ms; /* since when (a bound: see consumer_commit) */
    int stopped;
    int cooperative;
    /* readiness: in the group (an assignment callback, even an empty one,
     * for the current generation), and no "all brokers down" since the
     * last sign of a broker answering */
    int in_group;
    int brokers_down;
    rd_kafka_topic_partition_list_t *revoking; /* awaiting release */
};

/* A stalled partition's warning repeats at most this often (with the
 * metric always current): the stall bound, but not less than 30 s. */
static uint64_t consumer_stall_log_ms(const struct config *cfg)
{
    uint64_t ms = (uint64_t)cfg->limits.stalled_partition_ms;
    return ms > 30000 ? ms : 30000;
}

static struct partition *consumer_part(struct consumer *c, int32_t id)
{
    if (id < 0)
        return NULL;
    if ((size_t)id >= c->nparts) {
        size_t n = (size_t)id + 1;
        struct partition *parts = realloc(c->parts, n * sizeof *parts);
        if (!parts)
            return NULL;
        for (size_t i = c->nparts; i < n; i++) {
            parts[i] = (struct partition){.id = (int32_t)i};
            commit_part_init(&parts[i].commit);
            parts[i].commit.stall_log.interval_ms = consumer_stall_log_ms(c->cfg);
        }
        c->parts = parts;
        c->nparts = n;
    }
    return &c->parts[id];
}

static void consumer_set_paused(struct consumer *c, struct partition *p, int pause)
{
    if (p->paused == pause)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->cfg->topic_requests, p->id);
    rd_kafka_resp_err_t err =
        pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err)
        log_warn("pause_failed", "partition %d: %s", p->id, rd_kafka_err2str(err));
    else
        p->paused = pause;
}

/* How many fetched messages one partition may keep waiting before it is
 * paused; it resumes at half of that. */
static size_t consumer_waiting_cap(const struct consumer *c)
{
    size_t assigned = 0;
    for (size_t i = 0; i < c->nparts; i++)
        assigned += c->parts[i].assigned != 0;
    size_t cap = (size_t)c->cfg->limits.max_in_flight / 2 / (assigned ? assigned : 1);
    return cap > CONSUMER_WAITING_MIN ? cap : CONSUMER_WAITING_MIN;
}

/* A message of p may start now: the caps have room and nothing holds p. */
static int consumer_can_start(const struct consumer *c, const struct partition *p)
{
    const struct config_limits *l = &c->cfg->limits;
    return !c->stopped && !p->revoking && p->pressure == 0 &&
           p->in_flight < (size_t)l->max_in_flight_per_partition &&
           c->in_flight < (size_t)l->max_in_flight;
}

/* Pause what must not fetch: a stop, a revoke, a full model queue, or
 * enough fetched messages waiting (resumed at half of them); resume only
 * what we paused. */
static void consumer_apply_caps(struct consumer *c)
{
    size_t cap = consumer_waiting_cap(c);
    for (size_t i = 0; i < c->nparts; i++) {
        struct partition *p = &c->parts[i];
        if (!p->assigned)
            continue;
        int want = c->stopped || p->revoking || p->pressure > 0 || p->nwaiting >= cap ||
                   (p->paused && p->nwaiting > cap / 2);
        consumer_set_paused(c, p, want);
    }
}

/* Appends msg to p's waiting ring; -1 when out of memory. */
static int consumer_wait_push(struct consumer *c, struct partition *p, rd_kafka_message_t *msg)
{
    if (p->nwaiting == p->waiting_cap) {
        size_t cap = p->waiting_cap ? p->waiting_cap * 2 : 64;
        rd_kafka_message_t **ring = calloc(cap, sizeof(rd_kafka_message_t *));
        if (!ring)
            return -1;
        for (size_t i = 0; i < p->nwaiting; i++)
            ring[i] = p->waiting[(p->waiting_head + i) % p->waiting_cap];
        free(p->waiting);
        p->waiting = ring;
        p->waiting_cap = cap;
        p->waiting_head = 0;
    }
    p->waiting[(p->waiting_head + p->nwaiting) % p->waiting_cap] = msg;
    p->nwaiting++;
    c->nwaiting++;
    return 0;
}

static rd_kafka_message_t *consumer_wait_pop(struct consumer *c, struct partition *p)
{
    rd_kafka_message_t *msg = p->waiting[p->waiting_head];
    p->waiting_head = (p->waiting_head + 1) % p->waiting_cap;
    p->nwaiting--;
    c->nwaiting--;
    return msg;
}

/* Drops p's waiting messages: never started, never committed (the commit
 * stops below the first of them), so whoever owns p next does them. */
static void consumer_wait_drop(struct consumer *c, struct partition *p)
{
    while (p->nwaiting)
        rd_kafka_message_destroy(consumer_wait_pop(c, p));
    free(p->waiting);
    p->waiting = NULL;
    p->waiting_cap = p->waiting_head = 0;
}

static void consumer_hold_commits(struct consumer *c)
{
    if (c->commits_held)
        return;
    log_info("commits_held", "a commit failed because the group is rebalancing: periodic "
                             "commits wait for the next assignment");
    c->commits_held = 1;
    c->commits_held_ms = loop_now_ms(c->loop);
}

/* The broker took these offsets: the metrics' last-commit age restarts. */
static void consumer_commit_acked(struct consumer *c, const rd_kafka_topic_partition_list_t *l)
{
    for (int i = 0; l && i < l->cnt; i++) {
        struct partition *p = l->elems[i].err ? NULL : consumer_part(c, l->elems[i].partition);
        if (p && p->assigned)
            p->commit.acked_ms = loop_wall_ms();
    }
}

struct consumer_commit_wait {
    int done;
    rd_kafka_resp_err_t err;
};

static void consumer_commit_waited(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)offsets;
    struct consumer_commit_wait *w = opaque;
    w->done = 1;
    w->err = err;
}

/* A commit that waits for its answer, but never past timeout_ms: a plain
 * synchronous rd_kafka_commit waits for ever for a coordinator that is
 * down. Returns the commit's error, or __TIMED_OUT. */
static rd_kafka_resp_err_t
consumer_commit_bounded(struct consumer *c, rd_kafka_topic_partition_list_t *l, int timeout_ms)
{
    struct consumer_commit_wait w = {0};
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(c->rk, l, q, consumer_commit_waited, &w);
    if (!err) {
        int64_t deadline = loop_wall_ms() + timeout_ms;
        int64_t left;
        while (!w.done && (left = deadline - loop_wall_ms()) > 0)
            rd_kafka_queue_poll_callback(q, left < 100 ? (int)left : 100);
        err = w.done ? w.err : RD_KAFKA_RESP_ERR__TIMED_OUT;
    }
    /* a late answer lands on the destroyed queue's last reference and is
     * dropped: it can no longer touch w */
    rd_kafka_queue_destroy(q);
    return err;
}

/* timeout_ms 0: asynchronous (the periodic commit); otherwise wait for the
 * answer up to timeout_ms (revoke, stop). */
static void consumer_commit(struct consumer *c, int timeout_ms, int only_revoking)
{
    int sync = timeout_ms > 0;
    if (!sync && c->commits_held) {
        /* a real rebalance brings an assignment within a session timeout;
         * one that never comes must not stop commits for good */
        if (loop_now_ms(c->loop) - c->commits_held_ms < CONSUMER_HOLD_MAX_MS)
            return;
        log_info("commits_resumed",
                 "no new assignment within %d ms of a rebalancing error: "
                 "periodic commits resume",
                 CONSUMER_HOLD_MAX_MS);
        c->commits_held = 0;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < c->nparts; i++)
        if ((!only_revoking || c->parts[i].revoking) && c->parts[i].assigned && c->parts[i].offsets)
            commit_part_add(&c->parts[i].commit, c->parts[i].offsets, c->cfg->topic_requests,
                            c->parts[i].id, l);
    for (int i = 0; i < l->cnt; i++)
        log_debug("commit", "partition %d offset %lld metadata %.*s", l->elems[i].partition,
                  (long long)l->elems[i].offset, (int)l->elems[i].metadata_size,
                  (const char *)l->elems[i].metadata);
    if (l->cnt > 0) {
        rd_kafka_resp_err_t err =
            sync ? consumer_commit_bounded(c, l, timeout_ms) : rd_kafka_commit(c->rk, l, 1);
        if (sync && !err)
            consumer_commit_acked(c, l);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            log_warn("commit_failed", "%s", rd_kafka_err2str(err));
            if (commit_rebalancing_error(err))
                consumer_hold_commits(c);
            for (int i = 0; i < l->cnt; i++) {
                struct partition *p = consumer_part(c, l->elems[i].partition);
                if (p)
                    p->commit.committed = -1; /* try again next time */
            }
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
}

void consumer_commit_now(struct consumer *c, int timeout_ms)
{
    consumer_commit(c, timeout_ms > 0 ? timeout_ms : 1, 0);
}

static void consumer_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    struct consumer *c = opaque;
    if (!err) {
        c->brokers_down = 0; /* the coordinator answered */
        log_debug("commit_ok", "%d partitions", offsets ? offsets->cnt : 0);
        consumer_commit_acked(c, offsets);
    }
    if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    log_warn("commit_failed", "%s", rd_kafka_err2str(err));
    if (commit_rebalancing_error(err))
        consumer_hold_commits(c);
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        struct partition *p = consumer_part(c, offsets->elems[i].partition);
        if (p)
            p->commit.committed = -1;
    }
}

static void consumer_forget(struct consumer *c, struct partition *p)
{
    consumer_wait_drop(c, p);
    offsets_free(p->offsets);
    p->offsets = NULL;
    commit_part_reset(&p->commit);
    c->in_flight -= p->in_flight;
    p->in_flight = 0;
    p->pressure = 0;
    p->generation++; /* late completions for the old ownership are ignored */
    p->assigned = p->paused = p->revoking = 0;
}

/* Releases the revoking partitions: commit what is done, then unassign. */
static void consumer_release_revoked(struct consumer *c)
{
    if (!c->revoking)
        return;
    loop_timer_stop(c->loop, &c->revoke_timer);
    consumer_commit(c, CONSUMER_REVOKE_COMMIT_MS, 1);
    rd_kafka_topic_partition_list_t *l = c->revoking;
    c->revoking = NULL;
    for (int i = 0; i < l->cnt; i++) {
        struct partition *p = consumer_part(c, l->elems[i].partition);
        if (p) {
            if (p->in_flight)
                log_warn("revoke_grace_expired",
                         "partition %d released with %zu messages unfinished; the next "
                         "owner redoes them",
                         p->id, p->in_flight);
            consumer_forget(c, p);
        }
    }
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t err = 0;
    if (c->cooperative)
        error = rd_kafka_incremental_unassign(c->rk, l);
    else
        err = rd_kafka_assign(c->rk, NULL);
    if (error) {
        log_error("unassign_failed", "%s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (err) {
        log_error("unassign_failed", "%s", rd_kafka_err2str(err));
    }
    log_info("partitions_released", "%d partitions released", l->cnt);
    rd_kafka_topic_partition_list_destroy(l);
    consumer_apply_caps(c);
}

static void consumer_revoke_grace(struct loop_timer *t)
{
    consumer_release_revoked(t->data);
}

static void consumer_maybe_release(struct consumer *c)
{
    if (!c->revoking)
        return;
    for (int i = 0; i < c->revoking->cnt; i++) {
        struct partition *p = consumer_part(c, c->revoking->elems[i].partition);
        if (p && p->in_flight > 0)
            return;
    }
    consumer_release_revoked(c);
}

static struct commit_part *consumer_commit_part(void *ctx, int32_t partition)
{
    struct partition *p = consumer_part(ctx, partition);
    return p ? &p->commit : NULL;
}

static void consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct consumer *c = opaque;
    c->cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    c->brokers_down = 0; /* the coordinator answered */
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        c->in_group = 1;
        c->ever_assigned = 1;
        if (c->commits_held)
            log_info("commits_resumed", "a new assignment: periodic commits resume");
        c->commits_held = 0; /* a new generation: commits are welcome again */
        for (int i = 0; i < parts->cnt; i++) {
            struct partition *p = consumer_part(c, parts->elems[i].partition);
            if (p) {
                consumer_forget(c, p);
                p->assigned = 1;
                p->commit.acked_ms = loop_wall_ms();
            }
        }
        size_t ranges =
            commit_load_skips(rk, parts, consumer_commit_part, c, CONSUMER_COMMITTED_TIMEOUT_MS);
        if (ranges)
            log_info("resume_done_work",
                     "%zu ranges of offsets above the committed ones are "
                     "done already and will be skipped",
                     ranges);
        /* librdkafka 2.0.2 keeps a partition's pause across unassign and
         * assign: one we paused while it was revoked would come back paused
         * for ever (we forgot that pause with the ownership). Cleared BEFORE
         * the assign: a pause or resume right after it bumps the
         * partition's op version before the assign's fetch start is served,
         * which then counts as outdated and is dropped: the partition is
         * never fetched (librdkafka issues 2190 and 5591; seen here as a
         * partition that stayed at its committed offset after a handover) */
        if (parts->cnt > 0)
            rd_kafka_resume_partitions(rk, parts);
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t aerr = 0;
        if (c->cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
        if (error) {
            log_error("assign_failed", "%s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        } else if (aerr) {
            log_error("assign_failed", "%s", rd_kafka_err2str(aerr));
        }
        log_info("partitions_assigned", "%d partitions assigned (%s)", parts->cnt,
                 c->cooperative ? "cooperative" : "eager");
        /* caps still full: the new partitions start paused */
        consumer_apply_caps(c);
        return;
    }
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        log_error("rebalance_error", "%s", rd_kafka_err2str(err));
        c->in_group = 0;
        if (!c->cooperative)
            rd_kafka_assign(rk, NULL);
        return;
    }
    if (rd_kafka_assignment_lost(rk)) {
        /* someone else owns them already: committing now could move their
         * offsets past work we did not finish */
        c->in_group = 0;
        for (int i = 0; i < parts->cnt; i++) {
            struct partition *p = consumer_part(c, parts->elems[i].partition);
            if (p)
                consumer_forget(c, p);
        }
        if (c->cooperative) {
            rd_kafka_error_t *error = rd_kafka_incremental_unassign(rk, parts);
            if (error)
                rd_kafka_error_destroy(error);
        } else {
            rd_kafka_assign(rk, NULL);
        }
        log_warn("partitions_lost", "%d partitions lost; nothing committed for them", parts->cnt);
        return;
    }
    /* a revoke: finish what is in flight (bounded), commit, then release.
     * An eager revoke takes everything and rejoins: out of the group until
     * the next assignment; a cooperative one keeps the rest. */
    if (!c->cooperative)
        c->in_group = 0;
    if (!c->revoking)
        c->revoking = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++) {
        struct partition *p = consumer_part(c, parts->elems[i].partition);
        if (!p)
            continue;
        p->revoking = 1;
        consumer_wait_drop(c, p); /* the next owner starts them */
        rd_kafka_topic_partition_list_add(c->revoking, parts->elems[i].topic, p->id);
    }
    consumer_apply_caps(c);
    loop_timer_start(c->loop, &c->revoke_timer, (uint64_t)c->cfg->limits.rebalance_grace_ms);
    consumer_maybe_release(c);
}

/* librdkafka says the consumer is dead for good (it may say so in a
 * consumed message or through the error callback): said once, and the
 * owner stops the worker. */
static void consumer_fatal(struct consumer *c)
{
    if (c->fatal_reported)
        return;
    c->fatal_reported = 1;
    char why[512];
    if (rd_kafka_fatal_error(c->rk, why, sizeof why) == RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(why, sizeof why, "a fatal consumer error");
    log_error("consumer_fatal",
              "%s; the consumer cannot go on: the worker stops (exit 1) so that its "
              "supervisor restarts it",
              why);
    if (c->handlers.fatal)
        c->handlers.fatal(c->ctx, why);
}

static void consumer_start(struct consumer *c, struct partition *p, rd_kafka_message_t *msg)
{
    p->in_flight++;
    c->in_flight++;
    if (c->fatal_after > 0 && --c->fatal_after == 0)
        rd_kafka_test_fatal_error(c->rk, RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID,
                                  "injected by SWITCHYARD_FAULT_CONSUMER_FATAL_AFTER");
    c->handlers.message(c->ctx, msg, p->generation);
}

/* Starts waiting messages while the caps allow, at most budget of them,
 * one partition after the other so that none starves; returns how many
 * started. A partition drained to half its waiting cap may fetch again. */
static int consumer_start_waiting(struct consumer *c, int budget)
{
    int started = 0, resumable = 0;
    size_t cap = consumer_waiting_cap(c);
    while (c->nwaiting && started < budget && c->nparts) {
        int progress = 0;
        for (size_t k = 0; k < c->nparts && started < budget; k++) {
            struct partition *p = &c->parts[(c->next_start + k) % c->nparts];
            if (!p->nwaiting || !consumer_can_start(c, p))
                continue;
            consumer_start(c, p, consumer_wait_pop(c, p));
            resumable |= p->paused && p->nwaiting <= cap / 2;
            started++;
            progress = 1;
        }
        c->next_start = (c->next_start + 1) % c->nparts;
        if (!progress)
            break;
    }
    if (resumable)
        consumer_apply_caps(c);
    return started;
}

static void consumer_drain(struct consumer *c)
{
    int budget = CONSUMER_BATCH - consumer_start_waiting(c, CONSUMER_BATCH);
    size_t cap = consumer_waiting_cap(c);
    for (int n = 0; n < budget; n++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c->rk, 0);
        if (!msg)
            return;
        if (msg->err) {
            if (msg->err == RD_KAFKA_RESP_ERR__FATAL)
                consumer_fatal(c);
            else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("consume_error", "%s", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            continue;
        }
        c->brokers_down = 0; /* a fetch came back */
        struct partition *p = consumer_part(c, msg->partition);
        /* a message from a partition no longer ours (or being released)
         * is left to its next owner: not tracked, never committed */
        if (!p || !p->assigned || p->revoking || c->stopped) {
            rd_kafka_message_destroy(msg);
            continue;
        }
        if (!p->offsets)
            p->offsets = offsets_new(msg->offset);
        if (!p->offsets || offsets_track(p->offsets, msg->offset) < 0) {
            /* a rewind (e.g. after a seek by librdkafka): start the window
             * again; finished-but-uncommitted work is redone, never skipped */
            log_warn("offset_rewind", "partition %d rewound to %lld", p->id,
                     (long long)msg->offset);
            uint32_t gen = p->generation;
            consumer_forget(c, p);
            p->assigned = 1;
            p->generation = gen + 1;
            p->offsets = offsets_new(msg->offset);
            if (!p->offsets || offsets_track(p->offsets, msg->offset) < 0) {
                rd_kafka_message_destroy(msg);
                continue;
            }
        }
        if (commit_skippable(&p->commit, msg->offset)) {
            /* finished by the previous owner: its outputs are on the topics */
            offsets_done(p->offsets, msg->offset);
            c->skipped++;
            rd_kafka_message_destroy(msg);
            continue;
        }
        if (!p->nwaiting && consumer_can_start(c, p)) {
            consumer_start(c, p, msg);
            continue;
        }
        /* the caps are full (or p is held back): it waits, in order; p
         * stops fetching once enough wait */
        if (consumer_wait_push(c, p, msg) < 0)
            abort(); /* out of memory: better to die and be redone than to lose */
        if (p->nwaiting == cap)
            consumer_apply_caps(c);
    }
    /* more may be waiting: continue after the loop has served others */
    loop_timer_start(c->loop, &c->poll_timer, 0);
}

static void consumer_woken(void *data)
{
    consumer_drain(data);
}

static void consumer_tick(struct loop_timer *t)
{
    struct consumer *c = t->data;
    consumer_drain(c);
    if (!loop_timer_armed(&c->poll_timer))
        loop_timer_start(c->loop, &c->poll_timer, CONSUMER_POLL_MS);
}

static void consumer_commit_tick(struct loop_timer *t)
{
    struct consumer *c = t->data;
    consumer_commit(c, 0, 0);
    loop_timer_start(c->loop, &c->commit_timer, (uint64_t)c->cfg->limits.commit_interval_ms);
}

/* Served by the consumer poll, on the loop's thread. */
static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    struct consumer *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        c->brokers_down = 1;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        consumer_fatal(c);
        return;
    }
    kafka_error_warn(c->cfg, "consumer", err, reason);
}

/* While the brokers were down: is one up again? (Read only then: an idle
 * worker sees no fetch, commit or rebalance when the cluster comes back.) */
static int consumer_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    struct consumer *c = opaque;
    if (!c->brokers_down)
        return 0;
    json_t *root = json_loadb(json, len, 0, NULL);
    const char *name;
    json_t *b;
    json_object_foreach(json_object_get(root, "brokers"), name, b)
    {
        const char *source = json_string_value(json_object_get(b, "source"));
        const char *state = json_string_value(json_object_get(b, "state"));
        if (source && strcmp(source, "internal") != 0 && state && strcmp(state, "UP") == 0) {
            c->brokers_down = 0;
            log_info("kafka_reachable", "the Kafka cluster answers again (broker %s)", name);
            break;
        }
    }
    json_decref(root);
    return 0; /* librdkafka frees json */
}

/* Partitions holding work whose committable offset has not moved for
 * stalled_partition_ms: a warning per partition per interval, and the
 * metric (consumer_partitions). */
static void consumer_stall_tick(struct loop_timer *t)
{
    struct consumer *c = t->data;
    uint64_t now = loop_now_ms(c->loop);
    for (size_t i = 0; i < c->nparts; i++) {
        struct partition *p = &c->parts[i];
        if (!p->assigned || !p->offsets)
            continue;
        int64_t at = offsets_committable(p->offsets);
        uint64_t stuck = 0, suppressed = 0;
        int was = p->commit.stalled;
        if (!commit_stall_check(&p->commit, at, offsets_held(p->offsets) > 0, now,
                                (uint64_t)c->cfg->limits.stalled_partition_ms, &stuck)) {
            if (was)
                log_info("partition_unstalled", "%s/%d: the commit moves again (offset %lld)",
                         c->cfg->topic_requests, p->id, (long long)at);
            continue;
        }
        if (ratelog_allow(&p->commit.stall_log, now, &suppressed))
            log_warn("partition_stalled",
                     "%s/%d: the committable offset has been %lld for %llu ms while the "
                     "partition holds work (%zu in flight, %zu held); its outputs are not "
                     "acknowledged or a message does not finish%s",
                     c->cfg->topic_requests, p->id, (long long)at, (unsigned long long)stuck,
                     p->in_flight, offsets_held(p->offsets),
                     suppressed ? " (repeated warnings suppressed)" : "");
    }
    loop_timer_start(c->loop, &c->stall_timer, CONSUMER_STALL_CHECK_MS);
}

void consumer_finished(struct consumer *c, int32_t partition, uint32_t generation, int64_t offset)
{
    struct partition *p = consumer_part(c, partition);
    if (!p || p->generation != generation || !p->offsets)
        return;
    if (offsets_done(p->offsets, offset) < 0) {
        log_error("offset_done_twice", "partition %d offset %lld", partition, (long long)offset);
        return;
    }
    p->in_flight--;
    c->in_flight--;
    if (p->revoking)
        consumer_maybe_release(c);
    else if (c->nwaiting)
        loop_timer_start(c->loop, &c->poll_timer, 0); /* a slot for a waiting one */
    else if (p->paused)
        consumer_apply_caps(c);
}

void consumer_pressure(struct consumer *c, int32_t partition, uint32_t generation, int delta)
{
    struct partition *p = c ? consumer_part(c, partition) : NULL;
    if (!p || p->generation != generation || !p->assigned)
        return; /* an ownership that ended took its pressure with it */
    if (delta < 0 && p->pressure < (size_t)-delta)
        p->pressure = 0;
    else
        p->pressure = (size_t)((long long)p->pressure + delta);
    consumer_apply_caps(c);
    if (!p->pressure && p->nwaiting)
        loop_timer_start(c->loop, &c->poll_timer, 0);
}

struct consumer *consumer_new(struct loop *loop, const struct config *cfg,
                              const struct consumer_handlers *handlers, void *ctx, struct err *e)
{
    struct consumer *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(e, ERR_FATAL, "oom", "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->cfg = cfg;
    c->handlers = *handlers;
    c->ctx = ctx;
    c->poll_timer = (struct loop_timer){.cb = consumer_tick, .data = c};
    c->commit_timer = (struct loop_timer){.cb = consumer_commit_tick, .data = c};
    c->revoke_timer = (struct loop_timer){.cb = consumer_revoke_grace, .data = c};
    c->stall_timer = (struct loop_timer){.cb = consumer_stall_tick, .data = c};
    if (kafka_fault_env("SWITCHYARD_FAULT_CONSUMER_FATAL_AFTER", &c->fatal_after, e) < 0)
        goto fail;

    rd_kafka_conf_t *conf = kafka_conf_new(cfg, KAFKA_CONSUMER, e);
    if (!conf)
        goto fail;
    int strategy_set = 0, reset_set = 0, stats_set = 0, create_set = 0;
    for (size_t i = 0; i < cfg->nkafka; i++) {
        strategy_set |= strcmp(cfg->kafka[i].name, "partition.assignment.strategy") == 0;
        reset_set |= strcmp(cfg->kafka[i].name, "auto.offset.reset") == 0;
        stats_set |= strcmp(cfg->kafka[i].name, "statistics.interval.ms") == 0;
        create_set |= strcmp(cfg->kafka[i].name, "allow.auto.create.topics") == 0;
    }
    if (kafka_conf_set(conf, "enable.auto.commit", "false", e) < 0 ||
        kafka_conf_set(conf, "enable.auto.offset.store", "false", e) < 0 ||
        kafka_conf_set(conf, "enable.partition.eof", "false", e) < 0 ||
        (!strategy_set &&
         kafka_conf_set(conf, "partition.assignment.strategy", "cooperative-sticky", e) < 0) ||
        /* a new group starts at the oldest request, not after the backlog */
        (!reset_set && kafka_conf_set(conf, "auto.offset.reset", "earliest", e) < 0) ||
        /* the broker state, to see the cluster come back while idle */
        (!stats_set && kafka_conf_set(conf, "statistics.interval.ms", CONSUMER_STATS_MS, e) < 0) ||
        /* topics.create_missing: the subscription may create the requests
         * topic (where the broker allows auto-creation) */
        (!create_set && cfg->topics_create_missing &&
         kafka_conf_set(conf, "allow.auto.create.topics", "true", e) < 0)) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(conf, consumer_rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, consumer_commit_cb);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    rd_kafka_conf_set_stats_cb(conf, consumer_stats_cb);
    rd_kafka_conf_set_opaque(conf, c);
    char errstr[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        err_set(e, ERR_CONFIG, "kafka", "cannot create the consumer: %s", errstr);
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cfg->topic_requests, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        err_set(e, ERR_CONFIG, "kafka", "cannot subscribe to %s: %s", cfg->topic_requests,
                rd_kafka_err2str(err));
        goto fail;
    }
    c->queue = rd_kafka_queue_get_consumer(c->rk);
    if (kafka_wake_start(&c->wake, loop, c->queue, consumer_woken, c, e) < 0)
        goto fail;
    loop_timer_start(loop, &c->poll_timer, 0);
    loop_timer_start(loop, &c->commit_timer, (uint64_t)cfg->limits.commit_interval_ms);
    loop_timer_start(loop, &c->stall_timer, CONSUMER_STALL_CHECK_MS);
    return c;
fail:
    consumer_free(c, 0);
    return NULL;
}

void consumer_stop_fetching(struct consumer *c)
{
    if (!c)
        return;
    c->stopped = 1;
    for (size_t i = 0; i < c->nparts; i++)
        consumer_wait_drop(c, &c->parts[i]);
    consumer_apply_caps(c);
}

size_t consumer_assigned(const struct consumer *c)
{
    size_t n = 0;
    if (!c)
        return 0;
    for (size_t i = 0; i < c->nparts; i++)
        n += c->parts[i].assigned != 0;
    return n;
}

size_t consumer_partitions(const struct consumer *c, struct consumer_partition_info *out,
                           size_t max)
{
    /* before a partition's first message, its position is the fetcher's
     * (cached: rd_kafka_position asks no broker) */
    if (!c)
        return 0;
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].assigned && !c->parts[i].offsets)
            rd_kafka_topic_partition_list_add(pos, c->cfg->topic_requests, c->parts[i].id);
    if (pos->cnt && rd_kafka_position(c->rk, pos))
        pos->cnt = 0;
    size_t n = 0;
    for (size_t i = 0; i < c->nparts && n < max; i++) {
        const struct partition *p = &c->parts[i];
        if (!p->assigned)
            continue;
        int64_t position = p->commit.committed;
        if (p->offsets) {
            position = offsets_committable(p->offsets);
        } else {
            const rd_kafka_topic_partition_t *tp =
                rd_kafka_topic_partition_list_find(pos, c->cfg->topic_requests, p->id);
            if (tp && tp->offset >= 0)
                position = tp->offset;
        }
        int64_t lo = -1, hi = -1;
        /* cached from fetch responses: never a request to the broker */
        if (rd_kafka_get_watermark_offsets(c->rk, c->cfg->topic_requests, p->id, &lo, &hi) ||
            hi < 0)
            hi = -1;
        if (position < 0 && hi >= 0 && lo == hi)
            position = hi; /* an empty partition: nothing to wait for */
        out[n++] = (struct consumer_partition_info){
            .id = p->id,
            .paused = p->paused,
            .pressed = p->pressure > 0,
            .in_flight = p->in_flight,
            .committed = p->commit.committed >= 0 ? p->commit.committed : p->commit.group_committed,
            .last_commit_ms = p->commit.acked_ms,
            .position = position,
            .high_watermark = hi,
            .stalled = p->commit.stalled,
            .stalled_ms = p->commit.stalled ? loop_now_ms(c->loop) - p->commit.progress_ms : 0,
        };
    }
    rd_kafka_topic_partition_list_destroy(pos);
    return n;
}

uint64_t consumer_skipped(const struct consumer *c)
{
    return c ? c->skipped : 0;
}

int consumer_ready(const struct consumer *c, const char **why)
{
    if (!c) {
        *why = "starting: checking that the Kafka cluster answers and the topics exist";
        return 0;
    }
    if (c->brokers_down) {
        *why = "cannot reach the Kafka cluster: all brokers are down";
        return 0;
    }
    if (!c->in_group) {
        *why = "not in the consumer group: waiting for an assignment";
        return 0;
    }
    return 1;
}

int consumer_kafka_up(const struct consumer *c)
{
    return c && !c->brokers_down;
}

int consumer_in_group(const struct consumer *c)
{
    return c && c->in_group;
}

/* Leaves the group with a deadline: 2.0.2 can hang in close when an
 * assignment arrives during it, so past the deadline we destroy without
 * the consumer close. */
/* A consumer librdkafka cannot destroy (consumer_free): reachable, so
 * leak checkers see it as kept until the exit, not lost. */
static rd_kafka_t *volatile consumer_left_to_exit;

void consumer_free(struct consumer *c, int timeout_ms)
{
    if (!c)
        return;
    loop_timer_stop(c->loop, &c->poll_timer);
    loop_timer_stop(c->loop, &c->commit_timer);
    loop_timer_stop(c->loop, &c->revoke_timer);
    loop_timer_stop(c->loop, &c->stall_timer);
    kafka_wake_stop(&c->wake);
    for (size_t i = 0; i < c->nparts; i++)
        consumer_wait_drop(c, &c->parts[i]); /* before librdkafka is destroyed */
    if (c->rk) {
        int64_t deadline_ms = loop_wall_ms() + timeout_ms; /* close and destroy, both */
        int closed = 0;
        rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
        rd_kafka_error_t *error = rd_kafka_consumer_close_queue(c->rk, q);
        if (error) {
            rd_kafka_error_destroy(error);
        } else {
            while (!(closed = rd_kafka_consumer_closed(c->rk)) && loop_wall_ms() < deadline_ms) {
                rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
                if (!ev)
                    continue;
                if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
                    /* during close: release everything, commit nothing more */
                    if (c->cooperative) {
                        rd_kafka_error_t *e2 = rd_kafka_incremental_unassign(
                            c->rk, rd_kafka_event_topic_partition_list(ev));
                        if (e2)
                            rd_kafka_error_destroy(e2);
                    } else {
                        rd_kafka_assign(c->rk, NULL);
                    }
                }
                rd_kafka_event_destroy(ev);
            }
        }
        rd_kafka_queue_destroy(q);
        if (c->queue)
            rd_kafka_queue_destroy(c->queue);
        if (!closed)
            log_warn("consumer_close_timeout", "leaving the group timed out; destroying");
        /* bounded too: librdkafka waits for a commit still pending at a
         * coordinator that does not answer */
        int64_t left = deadline_ms - loop_wall_ms();
        if (!c->ever_assigned) {
            /* librdkafka 2.0.2 asserts (rd_kafka_sticky_assignor_state_
             * destroy: `assignor_state') when it destroys a consumer that
             * joined with cooperative-sticky but never got its first
             * assignment (DESIGN 8): it has left the group above, holds
             * no partition and nothing to commit, and the process is about
             * to exit, so it is left to the exit, kept reachable. */
            consumer_left_to_exit = c->rk;
            log_info("consumer_not_destroyed",
                     "the consumer never received an assignment: it is left to the process "
                     "exit (librdkafka 2.0.2 aborts when destroying it)");
        } else if (kafka_destroy_bounded(c->rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE,
                                         left > 100 ? (int)left : 100) < 0)
            log_warn("consumer_destroy_timeout",
                     "librdkafka did not finish within the stop's deadline (a commit or a "
                     "coordinator it still waits for); exiting without it");
    }
    if (c->revoking)
        rd_kafka_topic_partition_list_destroy(c->revoking);
    for (size_t i = 0; i < c->nparts; i++) {
        offsets_free(c->parts[i].offsets);
        commit_part_reset(&c->parts[i].commit);
    }
    if (c->skipped)
        log_info("skipped_done_work", "%llu messages were finished by a previous owner",
                 (unsigned long long)c->skipped);
    free(c->parts);
    free(c);
}

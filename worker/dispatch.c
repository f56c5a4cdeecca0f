/*
 * dispatch: the life of one request, as a small state machine driven by
 * the loop: decode -> route -> attempt (HTTP) -> retry / fall back ->
 * outputs -> acknowledged -> offset done. Nothing here blocks, and a job
 * ends exactly once: when every output it produced is acknowledged.
 */
#include "dispatch.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "output.h"
#include "worker.h"

static void job_attempt(struct job *job);
static void job_finish(struct job *job);

const char *job_id(const struct job *job)
{
    return job->req ? job->req->id : "";
}

static uint64_t dispatch_random(void)
{
    static uint64_t state;
    if (!state)
        state = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull;
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 2685821657736338717ull;
}

/* A provider may quote our key back in an error; it goes no further. */
static void dispatch_redact(char *text, const char *key)
{
    size_t klen = key ? strlen(key) : 0;
    char *hit;
    if (klen < 4)
        return;
    while ((hit = strstr(text, key)) != NULL) {
        static const char mask[] = "[redacted]";
        size_t tail = strlen(hit + klen) + 1;
        size_t mlen = klen < sizeof mask - 1 ? klen : sizeof mask - 1;
        memcpy(hit, mask, mlen);
        memmove(hit + mlen, hit + klen, tail);
    }
}

static void job_free(struct job *job)
{
    struct worker *w = job->worker;
    if (job->prev)
        job->prev->next = job->next;
    else
        w->jobs = job->next;
    if (job->next)
        job->next->prev = job->prev;
    w->njobs--;
    loop_timer_stop(w->loop, &job->backoff);
    if (job->transfer_running)
        http_cancel(w->http, &job->transfer);
    http_transfer_release(&job->transfer);
    provider_http_release(&job->call);
    provider_reply_release(&job->reply);
    request_free(job->req);
    policy_release(job->policy);
    rd_kafka_message_destroy(job->msg);
    for (size_t i = 0; i < POLICY_MAX_CANDIDATES; i++)
        free(job->fate_reason[i]);
    free(job->attempts);
    free(job);
}

/* Why candidate i did not answer, replacing the router's reason. */
static void job_fate_reason(struct job *job, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void job_fate_reason(struct job *job, size_t i, const char *fmt, ...)
{
    char text[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    free(job->fate_reason[i]);
    job->fate_reason[i] = strdup(text);
    if (!job->fate_reason[i])
        abort(); /* out of memory: better to die and be redone than to lose */
}

/* A new attempt record, zeroed. */
static struct attempt *job_new_attempt(struct job *job)
{
    if (job->nattempts == job->attempts_cap) {
        size_t cap = job->attempts_cap ? job->attempts_cap * 2 : 2;
        struct attempt *grown = realloc(job->attempts, cap * sizeof *grown);
        if (!grown)
            abort(); /* out of memory: better to die and be redone than to lose */
        job->attempts = grown;
        job->attempts_cap = cap;
    }
    struct attempt *a = &job->attempts[job->nattempts++];
    memset(a, 0, sizeof *a);
    return a;
}

static void job_output_done(void *opaque, rd_kafka_resp_err_t err)
{
    struct job *job = opaque;
    if (err)
        return; /* refused for good and dropped: not counted, so the input stays
                 * uncommitted until dispatch sends a replacement (issue 7) */
    if (--job->outputs_pending > 0)
        return;
    struct worker *w = job->worker;
    consumer_finished(w->consumer, job->msg->partition, job->generation, job->msg->offset);
    job_free(job);
}

static void job_dead_letter(struct job *job)
{
    struct worker *w = job->worker;
    job->completed_ms = loop_wall_ms();
    w->stats.dead_letters++;
    log_warn("dead_letter", "partition %d offset %lld: %s: %s", (int)job->msg->partition,
             (long long)job->msg->offset, job->input_error.code, job->input_error.msg);
    char *value = NULL; /* a null value (tombstone) stays null */
    if (job->msg->payload) {
        value = malloc(job->msg->len ? job->msg->len : 1);
        if (!value)
            abort();
        memcpy(value, job->msg->payload, job->msg->len);
    }
    job->outputs_pending = 1;
    producer_send(w->producer, w->cfg->topic_dead_letter, job->msg->key, job->msg->key_len,
                  value, job->msg->len, output_dead_letter_headers(job, w->worker_id),
                  job_output_done, job);
}

static void job_fail(struct job *job, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void job_fail(struct job *job, const char *code, const char *fmt, ...)
{
    job->ok = 0;
    snprintf(job->error_code, sizeof job->error_code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->error_msg, sizeof job->error_msg, fmt, ap);
    va_end(ap);
    job_finish(job);
}

static void job_finish(struct job *job)
{
    struct worker *w = job->worker;
    job->completed_ms = loop_wall_ms();
    for (size_t i = 0; i < job->plan.ncandidates; i++)
        if (job->fate[i] == FATE_TAKEN && !(job->ok && i == job->current))
            job->fate[i] = FATE_NOT_REACHED;
    size_t len;
    char *result = output_result(job, w->worker_id, &len);
    if (!result)
        abort(); /* out of memory: better to die and be redone than to lose */
    unsigned outputs = 1;
    for (size_t i = 0; i < job->nattempts; i++)
        outputs += job->attempts[i].billable != 0;
    job->outputs_pending = outputs;
    if (job->ok)
        w->stats.results_ok++;
    else
        w->stats.results_error++;
    const char *id = job->req->id;
    for (size_t i = 0; i < job->nattempts; i++) {
        const struct attempt *a = &job->attempts[i];
        if (!a->billable)
            continue;
        size_t clen;
        char *cost = output_cost(job, a, i + 1, w->worker_id, &clen);
        if (!cost)
            abort();
        stats_cost(&w->stats, &job->policy->models[a->model], a);
        producer_send(w->producer, w->cfg->topic_costs, id, strlen(id), cost, clen, NULL,
                      job_output_done, job);
    }
    producer_send(w->producer, w->cfg->topic_results, id, strlen(id), result, len, NULL,
                  job_output_done, job);
}

/* The next candidate the router took, after the current one; -1 if none. */
static long job_next_candidate(const struct job *job, size_t from)
{
    for (size_t i = from; i < job->plan.ncandidates; i++)
        if (job->plan.candidates[i].decision == ROUTER_TAKEN)
            return (long)i;
    return -1;
}

static void job_fall_back(struct job *job, const char *why)
{
    struct worker *w = job->worker;
    job->fate[job->current] = FATE_FAILED;
    job_fate_reason(job, job->current, "%s", why);
    long next = job_next_candidate(job, job->current + 1);
    if (next < 0) {
        job_fail(job, "candidates_exhausted", "every candidate failed; last: %s", why);
        return;
    }
    w->stats.fallbacks++;
    job->current = (size_t)next;
    job->tries_on_current = 0;
    job_attempt(job);
}

static void job_backoff_fired(struct loop_timer *t)
{
    job_attempt(t->data);
}

static void job_start_transfer(struct job *job);

static void job_release_slot(struct worker_provider *wp)
{
    wp->in_flight--;
    if (wp->waiting) {
        struct job *next = wp->waiting;
        wp->waiting = next->queue_next;
        if (!wp->waiting)
            wp->waiting_tail = &wp->waiting;
        next->waiting_slot = 0;
        wp->nwaiting--;
        job_start_transfer(next);
    }
}

static void job_transfer_done(struct http_transfer *t)
{
    struct job *job = t->data;
    struct worker *w = job->worker;
    job->transfer_running = 0;
    const struct policy_model *m = &job->policy->models[job->plan.candidates[job->current].model];
    struct worker_provider *wp = worker_provider_for(w, m);
    struct attempt *a = job_new_attempt(job);
    a->model = job->plan.candidates[job->current].model;
    a->http_status = t->status;
    a->latency_ms = t->latency_ms;
    a->ts_ms = loop_wall_ms();
    int retryable = 1;
    if (t->transport_error) {
        int timeout = t->transport_error == CURLE_OPERATION_TIMEDOUT;
        a->status = timeout ? ATTEMPT_TIMEOUT : ATTEMPT_ERROR;
        snprintf(a->error_code, sizeof a->error_code, "%s", timeout ? "timeout" : "transport");
        snprintf(a->error_msg, sizeof a->error_msg, "%.250s", t->error);
        retryable = t->transport_error != CURLE_WRITE_ERROR; /* too large stays too large */
    } else {
        struct err e = {0};
        struct provider_reply reply = {0};
        if (wp->ops->parse(t->status, t->response ? t->response : "", t->response_len, &reply,
                           &e) == 0) {
            a->status = ATTEMPT_OK;
            a->usage = reply.usage;
            if (cost_compute(&m->prices, &a->usage, &a->cost_nusd) == 0) {
                a->billable = 1;
                job->spent_nusd += a->cost_nusd;
                job->reply = reply;
                job->answered_by = job->nattempts - 1;
                job->ok = 1;
            } else {
                provider_reply_release(&reply);
                a->status = ATTEMPT_ERROR;
                snprintf(a->error_code, sizeof a->error_code, "usage_out_of_range");
                snprintf(a->error_msg, sizeof a->error_msg,
                         "the reported usage is beyond what can be priced");
                retryable = 0;
            }
        } else {
            a->status = ATTEMPT_ERROR;
            snprintf(a->error_code, sizeof a->error_code, "%s", e.code);
            snprintf(a->error_msg, sizeof a->error_msg, "%.250s", e.msg);
            dispatch_redact(a->error_msg, wp->api_key);
            retryable = e.kind == ERR_TRANSIENT;
        }
    }
    int64_t retry_after = t->retry_after_ms;
    http_transfer_release(t);
    provider_http_release(&job->call);
    job_release_slot(wp);
    stats_attempt(&w->stats, &wp->stats, m, a);

    if (job->ok) {
        job_finish(job);
        return;
    }
    char why[200];
    snprintf(why, sizeof why, "%s%s%ld%s", a->error_code, a->http_status ? " (HTTP " : "",
             a->http_status, a->http_status ? ")" : "");
    if (!a->http_status)
        snprintf(why, sizeof why, "%s", a->error_code);
    if (w->stopping) {
        /* shutting down: the job is abandoned below, its offset not done */
        return;
    }
    if (job->nattempts >= (size_t)w->cfg->limits.max_attempts ||
        job->nattempts >= DISPATCH_MAX_ATTEMPTS) {
        job_fail(job, "candidates_exhausted", "gave up after %zu attempts; last: %s",
                 job->nattempts, why);
        return;
    }
    if (!retryable || job->tries_on_current > (unsigned)w->cfg->limits.retries_per_candidate) {
        job_fall_back(job, why);
        return;
    }
    /* backoff with jitter, at least what the provider asked for */
    const struct config_limits *l = &w->cfg->limits;
    uint64_t cap = (uint64_t)l->backoff_initial_ms << (job->tries_on_current - 1 < 16 ? job->tries_on_current - 1 : 16);
    if (cap > (uint64_t)l->backoff_max_ms)
        cap = (uint64_t)l->backoff_max_ms;
    uint64_t delay = cap / 2 + dispatch_random() % (cap / 2 + 1);
    if (retry_after >= 0) {
        if ((uint64_t)retry_after > (uint64_t)l->backoff_max_ms) {
            job_fall_back(job, why); /* asked to wait longer than we allow */
            return;
        }
        if ((uint64_t)retry_after > delay)
            delay = (uint64_t)retry_after;
    }
    if (job->req->deadline_ms >= 0 && loop_wall_ms() + (int64_t)delay >= job->req->deadline_ms) {
        job_fall_back(job, why);
        return;
    }
    w->stats.retries++;
    job->backoff.cb = job_backoff_fired;
    job->backoff.data = job;
    loop_timer_start(w->loop, &job->backoff, delay);
}

static void job_start_transfer(struct job *job)
{
    struct worker *w = job->worker;
    const struct policy_model *m = &job->policy->models[job->plan.candidates[job->current].model];
    struct worker_provider *wp = worker_provider_for(w, m);
    if (wp->in_flight >= (size_t)wp->cfg->max_connections) {
        job->waiting_slot = 1;
        job->queue_next = NULL;
        *wp->waiting_tail = job;
        wp->waiting_tail = &job->queue_next;
        wp->nwaiting++;
        return;
    }
    long timeout = (long)wp->cfg->timeout_ms;
    if (job->req->deadline_ms >= 0) {
        int64_t left = job->req->deadline_ms - loop_wall_ms();
        if (left <= 0) {
            provider_http_release(&job->call);
            job_fail(job, "deadline_exceeded", "the deadline passed before attempt %zu",
                     job->nattempts + 1);
            return;
        }
        if (left < timeout)
            timeout = (long)left;
    }
    struct http_transfer *t = &job->transfer;
    memset(t, 0, sizeof *t);
    t->url = job->call.url;
    t->headers = job->call.headers;
    t->nheaders = job->call.nheaders;
    t->body = job->call.body;
    t->body_len = job->call.body_len;
    t->timeout_ms = timeout;
    t->connect_timeout_ms = (long)wp->cfg->connect_timeout_ms;
    t->done = job_transfer_done;
    t->data = job;
    wp->in_flight++;
    if (http_submit(w->http, t) < 0) {
        wp->in_flight--;
        provider_http_release(&job->call);
        job_fall_back(job, t->error);
        return;
    }
    job->transfer_running = 1;
}

static void job_attempt(struct job *job)
{
    struct worker *w = job->worker;
    struct router_candidate *c = &job->plan.candidates[job->current];
    const struct policy_model *m = &job->policy->models[c->model];
    struct worker_provider *wp = worker_provider_for(w, m);
    if (job->req->deadline_ms >= 0 && loop_wall_ms() >= job->req->deadline_ms) {
        job_fail(job, "deadline_exceeded", "the deadline passed before attempt %zu",
                 job->nattempts + 1);
        return;
    }
    /* what is left of the budget after billable attempts bounds this one */
    uint64_t left = job->plan.budget_nusd > job->spent_nusd
                        ? job->plan.budget_nusd - job->spent_nusd
                        : 0;
    uint32_t cap = router_fit(job->policy, m, job->plan.input_tokens, job->req->max_tokens, left);
    if (cap == 0) {
        job->fate[job->current] = FATE_SKIPPED;
        job_fate_reason(job, job->current, "over budget after %llu nUSD already spent",
                        (unsigned long long)job->spent_nusd);
        long next = job_next_candidate(job, job->current + 1);
        if (next < 0) {
            job_fail(job, "over_budget", "no candidate fits the %llu nUSD left of the budget",
                     (unsigned long long)left);
            return;
        }
        job->current = (size_t)next;
        job->tries_on_current = 0;
        job_attempt(job);
        return;
    }
    struct provider_call call = {.req = job->req, .base_url = wp->cfg->base_url,
                                 .model = m->model, .max_tokens = cap,
                                 .api_key = wp->api_key ? wp->api_key : "",
                                 .api_version = wp->cfg->api_version,
                                 .max_tokens_field = wp->cfg->max_tokens_field};
    struct err e = {0};
    provider_http_release(&job->call);
    if (wp->ops->build(&call, &job->call, &e) < 0) {
        char why[200];
        snprintf(why, sizeof why, "cannot express the request for %.32s: %.120s", wp->cfg->name, e.msg);
        job_fall_back(job, why);
        return;
    }
    job->tries_on_current++;
    job_start_transfer(job);
}

void dispatch_message(void *ctx, rd_kafka_message_t *msg, uint32_t generation);
void dispatch_message(void *ctx, rd_kafka_message_t *msg, uint32_t generation)
{
    struct worker *w = ctx;
    struct job *job = calloc(1, sizeof *job);
    if (!job)
        abort(); /* cannot even record the failure: die, the offset is redone */
    job->worker = w;
    job->msg = msg;
    job->generation = generation;
    job->received_ms = loop_wall_ms();
    job->policy = policy_retain(w->policy);
    job->next = w->jobs;
    if (w->jobs)
        w->jobs->prev = job;
    w->jobs = job;
    w->njobs++;
    w->stats.received++;

    if (request_decode(msg->payload ? msg->payload : "", msg->len,
                       (size_t)w->cfg->limits.max_message_bytes, &job->req,
                       &job->input_error) < 0) {
        job_dead_letter(job);
        return;
    }
    router_plan(job->policy, job->req, &job->plan);
    for (size_t i = 0; i < job->plan.ncandidates; i++)
        job->fate[i] = job->plan.candidates[i].decision == ROUTER_TAKEN ? FATE_TAKEN
                                                                         : FATE_SKIPPED;
    if (job->plan.outcome != ROUTER_OK) {
        job_fail(job, router_outcome_name(job->plan.outcome), "%s", job->plan.reason);
        return;
    }
    job->current = (size_t)job_next_candidate(job, 0);
    job_attempt(job);
}

/* Abandons every job not already waiting for its outputs' acks: their
 * offsets stay uncommitted, so the next owner redoes them. */
void dispatch_abandon(struct worker *w);
void dispatch_abandon(struct worker *w)
{
    struct job *job = w->jobs;
    while (job) {
        struct job *next = job->next;
        if (job->outputs_pending == 0) {
            if (job->waiting_slot) {
                /* unlink from its provider's queue */
                const struct policy_model *m =
                    &job->policy->models[job->plan.candidates[job->current].model];
                struct worker_provider *wp = worker_provider_for(w, m);
                struct job **pp = &wp->waiting;
                while (*pp && *pp != job)
                    pp = &(*pp)->queue_next;
                if (*pp) {
                    *pp = job->queue_next;
                    wp->nwaiting--;
                }
                wp->waiting_tail = &wp->waiting;
                while (*wp->waiting_tail)
                    wp->waiting_tail = &(*wp->waiting_tail)->queue_next;
            }
            job_free(job);
        }
        job = next;
    }
}

/*
 * dispatch: the life of one request, as a small state machine driven by
 * the loop: decode -> route -> attempt (HTTP) -> retry / fall back ->
 * outputs -> acknowledged -> finished. Nothing here blocks, and a job
 * ends exactly once: when every output it produced is settled, or when it
 * is abandoned while the worker stops (then its input is not finished and
 * the next owner redoes it). What to do after a failed call is retry.c's
 * decision; this file only applies it.
 */
#include "dispatch.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "output.h"
#include "redact.h"
#include "retry.h"

#define DISPATCH_TROUBLE_INTERVAL_MS 30000
/* costs.reserve: a reservation not acknowledged within this long means the
 * cost topic cannot take it now; the call is not made (the producer may
 * still deliver it: its call is then settled at 0, see job_unmade) */
#define DISPATCH_RESERVE_WAIT_MS 10000

static void job_attempt(struct job *job);
static void job_finish(struct job *job);
static void job_start_transfer(struct job *job);
static void lane_pump(struct dispatch_lane *lane);
static void lane_remove(struct job *job);
static void job_release_call(struct job *job);
static void job_fail(struct job *job, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static uint64_t dispatch_random(struct dispatch *d)
{
    uint64_t x = d->random_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    d->random_state = x;
    return x * 2685821657736338717ull;
}

/* A new call id (UUIDv7 text) into out[JOB_CALL_ID_LEN + 1]. */
static void dispatch_call_id(struct dispatch *d, char *out)
{
    /* UUIDv7: 48 bits of Unix ms (time-ordered), then 74 random bits from
     * the kernel; unique across workers and restarts */
    unsigned char b[16];
    uint64_t ms = (uint64_t)loop_wall_ms();
    if (getrandom(b + 6, 10, GRND_NONBLOCK) != 10) {
        /* no entropy yet (early boot): the seeded generator, never a repeat
         * within this process, and the pid and time apart from others */
        uint64_t r1 = dispatch_random(d), r2 = dispatch_random(d);
        memcpy(b + 6, &r1, 8);
        memcpy(b + 14, &r2, 2);
    }
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* The provider of policy model m; NULL when worker.yaml lacks it. */
static struct dispatch_provider *dispatch_provider_for(struct dispatch *d,
                                                       const struct policy_model *m)
{
    for (size_t i = 0; i < d->cfg->nproviders; i++)
        if (strcmp(d->cfg->providers[i].name, m->provider) == 0)
            return &d->providers[i];
    return NULL;
}

static struct dispatch_provider *job_provider(struct job *job)
{
    const struct policy_model *m = &job->policy->models[job->plan.candidates[job->current].model];
    return dispatch_provider_for(job->dispatch, m);
}

/* The fields every log line about the job carries. */
static struct log_fields job_log_fields(const struct job *job)
{
    return (struct log_fields){.set = LOG_F_PARTITION | LOG_F_OFFSET,
                               .request_id = job->req ? job->req->id : NULL,
                               .partition = job->msg->partition,
                               .offset = job->msg->offset};
}

/* ... and those of its attempt i (0-based). */
static struct log_fields job_attempt_fields(const struct job *job, size_t i)
{
    const struct attempt *a = &job->attempts[i];
    const struct policy_model *m = &job->policy->models[a->model];
    struct log_fields f = job_log_fields(job);
    f.set |= LOG_F_HTTP_STATUS | LOG_F_LATENCY;
    f.model = m->name;
    f.provider = m->provider;
    f.attempt = (unsigned)(i + 1);
    f.http_status = a->http_status;
    f.latency_ms = a->latency_ms;
    f.code = a->status == ATTEMPT_OK ? NULL : a->error_code;
    return f;
}

static void job_free(struct job *job)
{
    struct dispatch *d = job->dispatch;
    TAILQ_REMOVE(&d->jobs, job, link);
    d->njobs--;
    loop_timer_stop(d->loop, &job->backoff);
    if (job->lane_queued)
        lane_remove(job);
    if (job->slot.queued)
        pqueue_remove(&job_provider(job)->slots, &job->slot);
    if (job->transfer_running) {
        http_cancel(d->http, &job->transfer);
        pqueue_release(&job_provider(job)->slots); /* the cancelled call's slot */
        job->transfer_running = 0;
    }
    if (job->reservation) {
        /* its report frees it; the slot it waited in goes back (only a
         * stop frees such a job: nothing starts from here) */
        job->reservation->job = NULL;
        job->reservation = NULL;
        pqueue_release(&job_provider(job)->slots);
    }
    job_release_call(job);
    http_transfer_release(&job->transfer);
    provider_http_release(&job->call);
    provider_reply_release(&job->reply);
    request_free(job->req);
    policy_release(job->policy);
    rd_kafka_message_destroy(job->msg);
    for (size_t i = 0; i < POLICY_MAX_CANDIDATES; i++)
        free(job->fate_reason[i]);
    router_plan_release(&job->plan);
    free(job->input_error);
    free(job->error_msg);
    free(job->attempts);
    free(job->unmade);
    free(job->outputs);
    free(job);
}

/* Drops a job that has not produced anything: its input stays unfinished,
 * so its offset is not committed and the next owner redoes it. */
static void job_abandon(struct job *job)
{
    job->dispatch->counters.abandoned++;
    struct log_fields f = job_log_fields(job);
    log_fields(LOG_DEBUG, "abandoned", &f, "partition %d offset %lld: %s", (int)job->msg->partition,
               (long long)job->msg->offset, job_id(job));
    job_free(job);
}

/* Why candidate i did not answer, replacing the router's reason. */
static void job_fate_reason(struct job *job, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void job_fate_reason(struct job *job, size_t i, const char *fmt, ...)
{
    char text[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    free(job->fate_reason[i]);
    job->fate_reason[i] = strdup(text);
    if (!job->fate_reason[i])
        abort(); /* out of memory: better to die and be redone than to lose */
}

/* A new record, zeroed, at the end of a growing array of attempts. */
static struct attempt *job_attempt_append(struct attempt **arr, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t grow = *cap ? *cap * 2 : 1; /* most jobs make one call */
        struct attempt *grown = realloc(*arr, grow * sizeof *grown);
        if (!grown)
            abort(); /* out of memory: better to die and be redone than to lose */
        *arr = grown;
        *cap = grow;
    }
    struct attempt *a = &(*arr)[(*n)++];
    memset(a, 0, sizeof *a);
    return a;
}

/* A new attempt record, zeroed. */
static struct attempt *job_new_attempt(struct job *job)
{
    return job_attempt_append(&job->attempts, &job->nattempts, &job->attempts_cap);
}

/* ---- outputs ---- */

static void job_output_done(void *opaque, rd_kafka_resp_err_t err);

/* One output settled (acknowledged, or given up on): the job ends with
 * its last. */
static void job_output_settle(struct job *job)
{
    if (--job->outputs_pending > 0)
        return;
    struct dispatch *d = job->dispatch;
    int32_t partition = job->msg->partition;
    int64_t offset = job->msg->offset;
    uint32_t generation = job->generation;
    int delivered = 1;
    for (size_t i = 0; i < job->noutputs; i++)
        delivered &= !job->outputs[i].undelivered;
    if (log_requests_on()) {
        struct log_fields f = job_log_fields(job);
        log_request("request_finished", &f, "%zu outputs %s", job->noutputs,
                    delivered ? "acknowledged: the offset may be committed"
                              : "not all delivered: the offset stays uncommitted");
    }
    job_free(job);
    if (delivered)
        d->finished(d->ctx, partition, generation, offset);
}

static void job_send(struct job *job, struct job_output *out, const char *topic, const char *key,
                     size_t key_len, char *value, size_t value_len, rd_kafka_headers_t *headers)
{
    out->topic = topic;
    out->len = value_len;
    if (producer_send(job->dispatch->producer, topic, key, key_len, value, value_len, headers,
                      job_output_done, out) < 0)
        abort(); /* out of memory: better to die and be redone than to lose */
}

/* The dead letter for the job's input: its own key, value and headers
 * (null stays null), or, past what the topic can take, the headers and a
 * bounded prefix with a pointer to the source offset. */
static void job_send_dead_letter(struct job *job, struct job_output *out, const char *code,
                                 const char *why, size_t max_value)
{
    struct dispatch *d = job->dispatch;
    const rd_kafka_message_t *m = job->msg;
    size_t keep = m->len;
    int truncated = 0;
    if (keep > max_value) {
        keep = max_value;
        truncated = 1;
    }
    char *value = NULL;
    if (m->payload) {
        value = malloc(keep ? keep : 1);
        if (!value)
            abort();
        memcpy(value, m->payload, keep);
    }
    struct output_dead_letter dl = {
        .code = code ? code : job->input_error->code,
        .message = why ? why : job->input_error->msg,
        .original_len = m->len,
        .truncated = truncated,
    };
    rd_kafka_headers_t *h = output_dead_letter_headers(job, d->worker_id, &dl);
    job_send(job, out, d->cfg->topic_dead_letter, m->key, m->key ? m->key_len : 0, value,
             m->payload ? keep : 0, h);
}

/* The headers copied from the request onto its result or a cost record
 * (output.h says which); one too long to copy is dropped with a warning. */
static rd_kafka_headers_t *job_reply_headers(struct job *job)
{
    struct dispatch *d = job->dispatch;
    rd_kafka_headers_t *in = NULL;
    if (rd_kafka_message_headers(job->msg, &in) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    size_t skipped;
    const char *name;
    rd_kafka_headers_t *h = output_reply_headers(d->cfg, in, &skipped, &name);
    uint64_t suppressed;
    if (skipped) {
        d->counters.reply_headers_skipped += skipped;
        if (ratelog_allow_key(&d->trouble, "reply_header_skipped", loop_now_ms(d->loop),
                              &suppressed))
            log_warn("reply_header_skipped",
                     "%s: header %s is longer than %u bytes: not copied onto its outputs "
                     "(%" PRIu64 " more since the last report)",
                     job_id(job), name, OUTPUT_COPY_HEADER_MAX, suppressed);
    }
    return h;
}

/* Where the job's result goes, decided once: a reply topic the request
 * names is used when the allow-list has it, else the results topic, with
 * a warning (the requester waits on a topic it will never hear from). */
static const char *job_result_topic(struct job *job)
{
    struct dispatch *d = job->dispatch;
    if (job->result_topic)
        return job->result_topic;
    rd_kafka_headers_t *in = NULL;
    if (rd_kafka_message_headers(job->msg, &in) != RD_KAFKA_RESP_ERR_NO_ERROR)
        in = NULL;
    int refused;
    char named[320];
    job->result_topic = output_result_topic(d->cfg, in, &refused, named, sizeof named);
    uint64_t suppressed;
    if (refused) {
        d->counters.reply_topics_refused++;
        if (ratelog_allow_key(&d->trouble, "reply_topic_refused", loop_now_ms(d->loop),
                              &suppressed))
            log_warn("reply_topic_refused",
                     "%s (partition %d offset %lld): kafka_replyTopic names %s, which is not on "
                     "reply.reply_topics: its result goes to %s (%" PRIu64
                     " more since the last report)",
                     job_id(job), (int)job->msg->partition, (long long)job->msg->offset, named,
                     job->result_topic, suppressed);
    } else if (job->result_topic != d->cfg->topic_results) {
        d->counters.reply_topic_results++;
    }
    return job->result_topic;
}

/* The bytes of a result; a replacement (result_too_large) when code is
 * set. */
static void job_send_result(struct job *job, struct job_output *out, const char *code,
                            const char *why)
{
    struct dispatch *d = job->dispatch;
    size_t len;
    char *result = output_result(job, d->worker_id, code, why, &len);
    if (!result)
        abort(); /* out of memory: better to die and be redone than to lose */
    size_t max = producer_max_message_bytes(d->producer);
    if (!code && len > max) {
        /* it cannot fit: say so in a result that does, without waiting for
         * the producer to refuse it */
        free(result);
        char text[400], reason[96];
        snprintf(reason, sizeof reason, "larger than the producer's message.max.bytes (%zu)", max);
        output_too_large_message(job, len, reason, text, sizeof text);
        d->counters.outputs_replaced++;
        stats_result_replaced(&d->stats, job, "result_too_large",
                              d->cfg->metrics_tenant_label ? (size_t)d->cfg->metrics_max_tenants
                                                           : 0);
        struct log_fields f = job_log_fields(job);
        f.code = "result_too_large";
        f.topic = d->cfg->topic_results;
        log_fields(LOG_WARN, "result_too_large", &f, "%s: %s", job_id(job), text);
        out->replaced++;
        result = output_result(job, d->worker_id, "result_too_large", text, &len);
        if (!result)
            abort();
    }
    const char *id = job->req->id;
    job_send(job, out, job_result_topic(job), id, strlen(id), result, len, job_reply_headers(job));
}

static void job_send_cost(struct job *job, struct job_output *out)
{
    struct dispatch *d = job->dispatch;
    size_t len;
    const struct attempt *a =
        out->unmade ? &job->unmade[out->attempt] : &job->attempts[out->attempt];
    size_t number = out->unmade ? a->number : out->attempt + 1;
    struct attempt free_call;
    if (!a->billable) {
        /* settles a reserved call that cost nothing: no usage shown, not
         * even what a reply reported beyond pricing (never the answer, so
         * a copy names the same provider model) */
        free_call = *a;
        memset(&free_call.usage, 0, sizeof free_call.usage);
        free_call.cost_nusd = 0;
        a = &free_call;
    }
    char *cost = output_cost(job, a, number, d->worker_id, &len);
    if (!cost)
        abort();
    const char *id = job->req->id;
    job_send(job, out, d->cfg->topic_costs, id, strlen(id), cost, len, job_reply_headers(job));
}

/* The producer's report on one output: acknowledged, or refused for a
 * permanent reason; then it is replaced by a form that can be delivered
 * (output_replacement says which), never sent again as it was. */
static void job_output_done(void *opaque, rd_kafka_resp_err_t err)
{
    struct job_output *out = opaque;
    struct job *job = out->job;
    struct dispatch *d = job->dispatch;
    if (!err) {
        job_output_settle(job);
        return;
    }
    const char *topic = out->topic;
    enum output_replacement r = output_replace(out->kind, out->replaced, err);
    char why[400];
    snprintf(why, sizeof why, "topic %s refused the %s for %s (partition %d offset %lld): %s",
             topic, output_kind_name(out->kind), job_id(job), (int)job->msg->partition,
             (long long)job->msg->offset, rd_kafka_err2str(err));
    if (r == OUTPUT_GIVE_UP) {
        /* nothing can be delivered: the input stays unfinished and the
         * worker stops, saying what to fix */
        d->counters.outputs_undeliverable++;
        struct log_fields f = job_log_fields(job);
        f.topic = topic;
        log_fields(LOG_ERROR, "output_undeliverable", &f,
                   "%s; even a bounded dead letter was refused: check "
                   "the topics' existence, ACLs and max.message.bytes",
                   why);
        out->undelivered = 1;
        d->undeliverable(d->ctx, why);
        job_output_settle(job);
        return;
    }
    d->counters.outputs_replaced++;
    out->replaced++;
    struct log_fields f = job_log_fields(job);
    f.topic = topic;
    log_fields(LOG_WARN, "output_replaced", &f, "%s; sending %s instead", why,
               output_replacement_name(r));
    switch (r) {
    case OUTPUT_ERROR_RESULT: {
        char text[400];
        output_too_large_message(job, out->len, rd_kafka_err2str(err), text, sizeof text);
        if (out->replaced == 1) /* the first replacement: counted once */
            stats_result_replaced(&d->stats, job, "result_too_large",
                                  d->cfg->metrics_tenant_label ? (size_t)d->cfg->metrics_max_tenants
                                                               : 0);
        job_send_result(job, out, "result_too_large", text);
        break;
    }
    case OUTPUT_DEAD_LETTER:
    case OUTPUT_BOUNDED_DEAD_LETTER: {
        /* a dead letter of the input, pointing at its offset; the bounded
         * form keeps only the headers */
        const char *code = out->kind == JOB_OUTPUT_COST     ? "cost_undeliverable"
                           : out->kind == JOB_OUTPUT_RESULT ? "result_undeliverable"
                                                            : NULL;
        job_send_dead_letter(job, out, code, code ? why : NULL,
                             r == OUTPUT_DEAD_LETTER ? OUTPUT_DEAD_LETTER_PREFIX : 0);
        break;
    }
    case OUTPUT_GIVE_UP:
        break;
    }
}

static void job_dead_letter(struct job *job)
{
    struct dispatch *d = job->dispatch;
    job->completed_ms = loop_wall_ms();
    stats_dead_letter(&d->stats, job->input_error->code);
    struct log_fields f = job_log_fields(job);
    f.code = job->input_error->code;
    f.topic = d->cfg->topic_dead_letter;
    log_fields(LOG_WARN, "dead_letter", &f, "partition %d offset %lld: %s: %s",
               (int)job->msg->partition, (long long)job->msg->offset, job->input_error->code,
               job->input_error->msg);
    job->outputs = calloc(1, sizeof *job->outputs);
    if (!job->outputs)
        abort();
    job->noutputs = 1;
    job->outputs[0] = (struct job_output){.job = job, .kind = JOB_OUTPUT_DEAD_LETTER};
    /* the producer never reports from inside producer_send (producer.h):
     * the job cannot end before its outputs are all sent */
    job->outputs_pending = 1;
    size_t max = producer_max_message_bytes(d->producer);
    size_t room = max > OUTPUT_DEAD_LETTER_ENVELOPE ? max - OUTPUT_DEAD_LETTER_ENVELOPE : 0;
    if (job->msg->len > room) {
        job->outputs[0].replaced = 1;
        d->counters.outputs_replaced++;
        job_send_dead_letter(job, &job->outputs[0], NULL, NULL, OUTPUT_DEAD_LETTER_PREFIX);
    } else {
        job_send_dead_letter(job, &job->outputs[0], NULL, NULL, job->msg->len);
    }
}

static void job_fail(struct job *job, const char *code, const char *fmt, ...)
{
    job->ok = 0;
    snprintf(job->error_code, sizeof job->error_code, "%s", code);
    free(job->error_msg);
    va_list ap;
    va_start(ap, fmt);
    /* allocated: only a failed job has a message, and it is never cut */
    if (vasprintf(&job->error_msg, fmt, ap) < 0)
        abort(); /* out of memory: better to die and be redone than to lose */
    va_end(ap);
    job_finish(job);
}

static void job_finish(struct job *job)
{
    struct dispatch *d = job->dispatch;
    job->completed_ms = loop_wall_ms();
    for (size_t i = 0; i < job->plan.ncandidates; i++)
        if (job->fate[i] == FATE_TAKEN && !(job->ok && i == job->current))
            job->fate[i] = FATE_NOT_REACHED;
    /* with reservations every call is settled, billable or not, and so is
     * every reserved call that was never made */
    int reserve = d->cfg->costs_reserve;
    size_t n = 1 + (reserve ? job->nunmade : 0);
    for (size_t i = 0; i < job->nattempts; i++)
        n += reserve || job->attempts[i].billable;
    job->outputs = calloc(n, sizeof *job->outputs);
    if (!job->outputs)
        abort(); /* out of memory: better to die and be redone than to lose */
    job->noutputs = n;
    job->outputs_pending = (unsigned)n;
    stats_result(&d->stats, job,
                 d->cfg->metrics_tenant_label ? (size_t)d->cfg->metrics_max_tenants : 0);
    if (log_requests_on()) {
        struct log_fields f = job_log_fields(job);
        if (job->ok) {
            const struct attempt *a = &job->attempts[job->answered_by];
            f.model = job->policy->models[a->model].name;
            f.provider = job->policy->models[a->model].provider;
            f.attempt = (unsigned)(job->answered_by + 1);
            f.reply = job->reply.text;
        } else {
            f.code = job->error_code;
        }
        f.set |= LOG_F_LATENCY;
        f.latency_ms = job->completed_ms > job->received_ms
                           ? (uint64_t)(job->completed_ms - job->received_ms)
                           : 0;
        log_request("request_done", &f, "%s after %zu attempts%s%s", job->ok ? "ok" : "error",
                    job->nattempts, job->ok ? "" : ": ", job->ok ? "" : job->error_msg);
    }
    size_t k = 0;
    for (size_t i = 0; i < job->nattempts; i++) {
        const struct attempt *a = &job->attempts[i];
        if (!a->billable && !reserve)
            continue;
        if (a->billable)
            stats_cost(&d->stats, &job->policy->models[a->model], a);
        if (reserve)
            d->stats.reservations_settled++;
        job->outputs[k] = (struct job_output){.job = job, .kind = JOB_OUTPUT_COST, .attempt = i};
        job_send_cost(job, &job->outputs[k]);
        k++;
    }
    for (size_t i = 0; reserve && i < job->nunmade; i++) {
        d->stats.reservations_settled++;
        job->outputs[k] =
            (struct job_output){.job = job, .kind = JOB_OUTPUT_COST, .attempt = i, .unmade = 1};
        job_send_cost(job, &job->outputs[k]);
        k++;
    }
    job->outputs[k] = (struct job_output){.job = job, .kind = JOB_OUTPUT_RESULT};
    job_send_result(job, &job->outputs[k], NULL, NULL);
}

/* ---- calls ---- */

/* The next candidate the router took, after `from`; -1 if none. */
static long job_next_candidate(const struct job *job, size_t from)
{
    for (size_t i = from; i < job->plan.ncandidates; i++)
        if (job->plan.candidates[i].decision == ROUTER_TAKEN)
            return (long)i;
    return -1;
}

static void job_fall_back(struct job *job, const char *why)
{
    struct dispatch *d = job->dispatch;
    job->fate[job->current] = FATE_FAILED;
    job_fate_reason(job, job->current, "%s", why);
    long next = job_next_candidate(job, job->current + 1);
    if (next < 0) {
        job_fail(job, job->last_rejected ? "provider_rejected" : "candidates_exhausted",
                 "every candidate failed; last: %s", why);
        return;
    }
    d->stats.fallbacks++;
    job->current = (size_t)next;
    job->tries_on_current = 0;
    job_attempt(job);
}

static void job_backoff_fired(struct loop_timer *t)
{
    job_attempt(t->data);
}

/* ---- lanes: rate limits and circuits, per provider and model ---- */

/* The limits of model m on provider p: the policy's where it sets them,
 * else worker.yaml's model_limits. */
static struct ratelimit_limits dispatch_model_limits(const struct dispatch_provider *p,
                                                     const struct policy_model *m)
{
    const struct config_rate_limits *dflt = &p->cfg->model_limits, *own = &m->limits;
    return (struct ratelimit_limits){
        .requests_per_minute =
            (uint64_t)(own->requests_per_minute >= 0 ? own->requests_per_minute
                                                     : dflt->requests_per_minute),
        .tokens_per_minute = (uint64_t)(own->tokens_per_minute >= 0 ? own->tokens_per_minute
                                                                    : dflt->tokens_per_minute),
        .max_concurrent =
            (uint64_t)(own->max_concurrent >= 0 ? own->max_concurrent : dflt->max_concurrent),
    };
}

static void lane_timer_fired(struct loop_timer *t)
{
    lane_pump(t->data);
}

/* The lane of model m on provider p, made on first use. */
static struct dispatch_lane *dispatch_lane_for(struct dispatch *d, struct dispatch_provider *p,
                                               const struct policy_model *m)
{
    for (size_t i = 0; i < d->nlanes; i++)
        if (d->lanes[i]->provider == p && strcmp(d->lanes[i]->model, m->model) == 0)
            return d->lanes[i];
    if (d->nlanes == d->lanes_cap) {
        size_t cap = d->lanes_cap ? d->lanes_cap * 2 : 8;
        struct dispatch_lane **grown = realloc(d->lanes, cap * sizeof(struct dispatch_lane *));
        if (!grown)
            abort(); /* out of memory: better to die and be redone than to lose */
        d->lanes = grown;
        d->lanes_cap = cap;
    }
    struct dispatch_lane *lane = calloc(1, sizeof *lane);
    if (!lane || !(lane->model = strdup(m->model)))
        abort();
    lane->dispatch = d;
    lane->provider = p;
    const struct config_circuit *c = &p->cfg->circuit;
    lane->circuit = (struct breaker_config){
        .failures = (uint32_t)c->failures,
        .failure_percent = (uint32_t)c->failure_percent,
        .min_calls = (uint32_t)c->min_calls,
        .window_ms = (uint32_t)c->window_ms,
        .open_ms = (uint32_t)c->open_ms,
        .probes = (uint32_t)c->probes,
    };
    struct ratelimit_limits limits = dispatch_model_limits(p, m);
    ratelimit_init(&lane->limiter, &limits, 1, (int64_t)loop_now_ms(d->loop));
    breaker_init(&lane->breaker);
    TAILQ_INIT(&lane->waiting);
    lane->timer = (struct loop_timer){.cb = lane_timer_fired, .data = lane};
    d->lanes[d->nlanes++] = lane;
    return lane;
}

static void lane_free(struct dispatch *d, struct dispatch_lane *lane)
{
    loop_timer_stop(d->loop, &lane->timer);
    free(lane->model);
    free(lane);
}

/* Pumps the lane from the loop, soon: for callers that must not start
 * calls themselves (a job being freed). */
static void lane_kick(struct dispatch_lane *lane)
{
    loop_timer_start(lane->dispatch->loop, &lane->timer, 0);
}

static void job_press(struct job *job, int on)
{
    struct dispatch *d = job->dispatch;
    if (job->pressing == on)
        return;
    job->pressing = on;
    if (d->pressure)
        d->pressure(d->ctx, job->msg->partition, job->generation, on ? 1 : -1);
}

/* A full lane pauses the partitions that feed it, until it has drained
 * to half: the backlog waits in Kafka, and memory stays bounded. */
static void lane_press(struct dispatch_lane *lane)
{
    struct dispatch *d = lane->dispatch;
    size_t max = (size_t)d->cfg->limits.queue_per_model;
    struct job *job;
    if (!lane->full && lane->nwaiting >= max) {
        lane->full = 1;
        uint64_t suppressed;
        char key[96];
        snprintf(key, sizeof key, "model_queue_full/%.30s/%.40s", lane->provider->cfg->name,
                 lane->model);
        struct log_fields f = {.provider = lane->provider->cfg->name, .model = lane->model};
        if (ratelog_allow_key(&d->trouble, key, loop_now_ms(d->loop), &suppressed))
            log_fields(LOG_WARN, "model_queue_full", &f,
                       "provider %s, model %s: %zu requests wait for its rate limit "
                       "(queue_per_model): the partitions feeding it are paused until half "
                       "have gone (%llu more since the last report)",
                       lane->provider->cfg->name, lane->model, lane->nwaiting,
                       (unsigned long long)suppressed);
    } else if (lane->full && lane->nwaiting <= max / 2) {
        lane->full = 0;
    } else {
        return;
    }
    TAILQ_FOREACH(job, &lane->waiting, lane_link)
    job_press(job, lane->full);
}

static void lane_remove(struct job *job)
{
    struct dispatch_lane *lane = job->lane;
    TAILQ_REMOVE(&lane->waiting, job, lane_link);
    lane->nwaiting--;
    job->lane_queued = 0;
    loop_timer_stop(job->dispatch->loop, &job->backoff);
    job_press(job, 0);
    lane_press(lane);
}

/* What the current call reserved is given back, unused (it never ran, or
 * was cancelled). */
static void job_release_call(struct job *job)
{
    if (!job->call_started)
        return;
    struct dispatch *d = job->dispatch;
    struct dispatch_lane *lane = job->lane;
    int64_t now = (int64_t)loop_now_ms(d->loop);
    struct ratelimit_outcome o = {.reserved = &job->reserved, .sent_ms = job->sent_ms};
    ratelimit_end(&lane->limiter, &o, now);
    ratelimit_end(&lane->provider->limiter, &o, now);
    if (job->probe)
        breaker_record(&lane->breaker, &lane->circuit, now, BREAKER_IGNORE, 1);
    job->call_started = job->probe = 0;
    lane_kick(lane);
}

static void lane_log_transition(struct dispatch_lane *lane)
{
    enum breaker_state st = lane->breaker.state;
    const char *event = st == BREAKER_OPEN        ? "circuit_open"
                        : st == BREAKER_HALF_OPEN ? "circuit_half_open"
                                                  : "circuit_closed";
    const char *what = st == BREAKER_OPEN
                           ? "its candidates are skipped at once until probes succeed"
                       : st == BREAKER_HALF_OPEN ? "probe calls are let through"
                                                 : "calls flow again";
    struct log_fields f = {.provider = lane->provider->cfg->name, .model = lane->model};
    if (st == BREAKER_CLOSED)
        log_fields(LOG_INFO, event, &f, "provider %s, model %s: circuit closed: %s",
                   lane->provider->cfg->name, lane->model, what);
    else
        log_fields(LOG_WARN, event, &f, "provider %s, model %s: circuit %s: %s",
                   lane->provider->cfg->name, lane->model, breaker_state_name(st), what);
}

/* The candidate is passed over without a call: the next one, or an
 * error result with code when none is left. */
static void job_skip(struct job *job, const char *code, const char *reason)
{
    struct dispatch *d = job->dispatch;
    job->fate[job->current] = FATE_SKIPPED;
    job_fate_reason(job, job->current, "%s", reason);
    long next = job_next_candidate(job, job->current + 1);
    if (next < 0) {
        if (strcmp(code, "circuit_open") == 0)
            job_fail(job, code, "no candidate left: the circuit of %s is open",
                     job->policy->models[job->plan.candidates[job->current].model].name);
        else
            job_fail(job, code,
                     "no candidate left: waiting for the rate limit of %s would miss the "
                     "deadline or exceed rate_limit_max_wait_ms",
                     job->policy->models[job->plan.candidates[job->current].model].name);
        return;
    }
    d->stats.fallbacks++;
    job->current = (size_t)next;
    job->tries_on_current = 0;
    job_attempt(job);
}

/* How long a call entering the lane now would wait, roughly: the
 * limiter's wait for the first, then one request interval per call
 * ahead of it. */
static int64_t lane_expected_wait(const struct dispatch_lane *lane, const struct job *job,
                                  int64_t now)
{
    int64_t w = ratelimit_wait(&lane->limiter, &job->reserved, now);
    int64_t wp = ratelimit_wait(&lane->provider->limiter, &job->reserved, now);
    if (wp > w)
        w = wp;
    if (w == RATELIMIT_WAIT_CALL)
        w = 0; /* a call in flight ends first: not known, not long */
    double rpm = ratelimit_rate(&lane->limiter, RATELIMIT_REQUESTS);
    if (rpm > 0)
        w += (int64_t)((double)lane->nwaiting * 60000.0 / rpm);
    return w;
}

static void job_lane_expired(struct loop_timer *t)
{
    struct job *job = t->data;
    lane_remove(job);
    job_skip(job, "rate_limited", "rate_limited");
}

/* The job's call waits its turn in the lane (at the front when it was
 * just rate limited: it came first), unless waiting cannot serve it. */
static void lane_enqueue(struct dispatch_lane *lane, struct job *job)
{
    struct dispatch *d = job->dispatch;
    int64_t now = (int64_t)loop_now_ms(d->loop);
    int front = job->lane_front;
    job->lane_front = 0;
    int64_t w = 1; /* others wait: so does it */
    if (!lane->nwaiting || front) {
        w = ratelimit_wait(&lane->limiter, &job->reserved, now);
        int64_t wp = ratelimit_wait(&lane->provider->limiter, &job->reserved, now);
        if (wp > w)
            w = wp;
    }
    if (w > 0) {
        int64_t expected = lane_expected_wait(lane, job, now);
        int64_t left = -1; /* ms the request may still wait; -1: no bound from a deadline */
        if (job->req->deadline_ms >= 0)
            left = job->req->deadline_ms - loop_wall_ms();
        uint64_t max = (uint64_t)d->cfg->limits.rate_limit_max_wait_ms;
        uint64_t budget = job->rate_waited_ms < max ? max - job->rate_waited_ms : 0;
        if (left < 0 || (uint64_t)left > budget)
            left = (int64_t)budget;
        int fall_back =
            job->plan.route && job->plan.route->on_rate_limit == POLICY_RATE_LIMIT_FALLBACK;
        if ((fall_back && job_next_candidate(job, job->current + 1) >= 0) || expected >= left) {
            provider_http_release(&job->call);
            job_skip(job, "rate_limited", "rate_limited");
            return;
        }
        lane->waited++;
        /* the watch: at the deadline, or when the wait allowed is spent,
         * it leaves the lane */
        job->backoff.cb = job_lane_expired;
        job->backoff.data = job;
        loop_timer_start(d->loop, &job->backoff, (uint64_t)left);
    }
    if (front)
        TAILQ_INSERT_HEAD(&lane->waiting, job, lane_link);
    else
        TAILQ_INSERT_TAIL(&lane->waiting, job, lane_link);
    lane->nwaiting++;
    job->lane_queued = 1;
    job->lane_since_ms = now;
    if (lane->full)
        job_press(job, 1);
    lane_press(lane);
    lane_pump(lane);
}

/* Builds the current candidate's HTTP request into job->call, signed (when
 * the provider signs) with the time now. */
static int job_build_call(struct job *job, struct err *e)
{
    struct dispatch_provider *dp = job_provider(job);
    const struct router_candidate *c = &job->plan.candidates[job->current];
    const struct policy_model *m = &job->policy->models[c->model];
    struct provider_call call = {.req = job->req,
                                 .base_url = dp->cfg->base_url,
                                 .model = m->model,
                                 .max_tokens = job->call_max_tokens,
                                 .api_key = dp->api_key ? dp->api_key : "",
                                 .api_version = dp->cfg->api_version,
                                 .max_tokens_field = dp->cfg->max_tokens_field,
                                 .reasoning_budget = c->reasoning_budget,
                                 .region = dp->cfg->region,
                                 .access_key_id = dp->aws_access_key_id,
                                 .secret_access_key = dp->aws_secret_access_key,
                                 .session_token = dp->aws_session_token,
                                 .auth = dp->cfg->auth,
                                 .now_s = loop_wall_ms() / 1000};
    provider_http_release(&job->call);
    return dp->ops->build(&call, &job->call, e);
}

/* The call id travels with the call (X-Client-Request-Id, which OpenAI
 * echoes in its logs), so a call can be matched in the provider's records
 * too. */
static void job_call_header(struct job *job)
{
    if (job->call.nheaders < PROVIDER_MAX_HEADERS) {
        char header[64];
        snprintf(header, sizeof header, "X-Client-Request-Id: %s", job->next_call_id);
        if (!(job->call.headers[job->call.nheaders] = strdup(header)))
            abort();
        job->call.nheaders++;
    }
}

/* The call leaves the lane: its call id, its header, its connection. */
static void job_send_call(struct job *job)
{
    struct dispatch *d = job->dispatch;
    struct dispatch_provider *dp = job_provider(job);
    /* the call id exists before the call is sent: a cost record for it
     * can never be confused with another call's */
    dispatch_call_id(d, job->next_call_id);
    job_call_header(job);
    job->tries_on_current++;
    if (log_requests_on()) {
        const struct policy_model *m =
            &job->policy->models[job->plan.candidates[job->current].model];
        struct log_fields f = job_log_fields(job);
        f.model = m->name;
        f.provider = m->provider;
        f.attempt = (unsigned)(job->nattempts + 1);
        log_request("call_sent", &f, "call %s to %s (%s)", job->next_call_id, m->provider,
                    m->model);
    }
    if (pqueue_acquire(&dp->slots, &job->slot))
        job_start_transfer(job);
    /* else: waits in order; the slot's release starts it */
}

/* Starts the calls the lane's limits and circuit allow now, in order;
 * arms the lane's timer for the next, or waits for a call to end. */
static void lane_pump(struct dispatch_lane *lane)
{
    struct dispatch *d = lane->dispatch;
    if (lane->pumping)
        return; /* the pump on the stack goes on with the new state */
    lane->pumping = 1;
    struct job *job;
    while ((job = TAILQ_FIRST(&lane->waiting))) {
        int64_t now = (int64_t)loop_now_ms(d->loop);
        if (breaker_refuses(&lane->breaker, &lane->circuit, now)) {
            /* the circuit opened while they waited: each takes its next
             * candidate now, none waits for a dead provider */
            lane_remove(job);
            lane->circuit_skips++;
            provider_http_release(&job->call);
            job_skip(job, "circuit_open", "circuit_open");
            continue;
        }
        int64_t w = ratelimit_wait(&lane->limiter, &job->reserved, now);
        int64_t wp = ratelimit_wait(&lane->provider->limiter, &job->reserved, now);
        if (wp > w)
            w = wp;
        if (w == RATELIMIT_WAIT_CALL)
            break; /* a call's end pumps again */
        if (w > 0) {
            loop_timer_start(d->loop, &lane->timer, (uint64_t)w);
            break;
        }
        int probe = 0, changed = 0;
        int allowed = breaker_allow(&lane->breaker, &lane->circuit, now, &probe, &changed);
        if (changed)
            lane_log_transition(lane);
        lane_remove(job);
        if (!allowed) {
            lane->circuit_skips++;
            provider_http_release(&job->call);
            job_skip(job, "circuit_open", "circuit_open");
            continue;
        }
        job->rate_waited_ms += (uint64_t)(now - job->lane_since_ms);
        job->probe = probe;
        job->sent_ms = now;
        ratelimit_start(&lane->limiter, &job->reserved, now);
        ratelimit_start(&lane->provider->limiter, &job->reserved, now);
        job->call_started = 1;
        job_send_call(job);
    }
    lane->pumping = 0;
}

/* A provider that refuses our key, does not know the model or cannot be
 * reached is an operator's problem, not the request's: say what to check,
 * once and then at a bounded rate, per provider and model. */
static void dispatch_trouble(struct dispatch *d, const struct dispatch_provider *p,
                             const struct policy_model *m, const struct attempt *a)
{
    const char *kind, *check;
    if (a->status == ATTEMPT_ERROR && a->http_status == 0) {
        kind = "provider_unreachable";
        check = "check base_url, DNS and the network path to it";
    } else if (a->http_status == 401 || a->http_status == 403) {
        kind = "provider_key_rejected";
        check = "check the key in the environment variable that api_key_env names";
    } else if (a->http_status == 404) {
        kind = "provider_model_unknown";
        check = "check the model id in the policy and the provider's base_url";
    } else {
        return;
    }
    char key[96];
    snprintf(key, sizeof key, "%.30s/%.30s/%.30s", kind, p->cfg->name, m->name);
    uint64_t suppressed;
    if (!ratelog_allow_key(&d->trouble, key, loop_now_ms(d->loop), &suppressed))
        return;
    struct log_fields f = {.set = LOG_F_HTTP_STATUS | LOG_F_LATENCY,
                           .provider = p->cfg->name,
                           .model = m->name,
                           .http_status = a->http_status,
                           .latency_ms = a->latency_ms,
                           .code = a->error_code};
    log_fields(LOG_ERROR, kind, &f,
               "provider %s, model %s (%s) at %s: %s%s%ld%s: %s; %s (%llu more since the "
               "last report)",
               p->cfg->name, m->name, m->model, p->cfg->base_url, a->error_code,
               a->http_status ? " (HTTP " : "", a->http_status, a->http_status ? ")" : "",
               a->error_msg, check, (unsigned long long)suppressed);
}

static void job_transfer_done(struct http_transfer *t)
{
    struct job *job = t->data;
    struct dispatch *d = job->dispatch;
    job->transfer_running = 0;
    const struct policy_model *m = &job->policy->models[job->plan.candidates[job->current].model];
    struct dispatch_provider *dp = job_provider(job);
    struct attempt *a = job_new_attempt(job);
    a->model = job->plan.candidates[job->current].model;
    a->http_status = t->status;
    a->latency_ms = t->latency_ms;
    a->ts_ms = loop_wall_ms();
    memcpy(a->call_id, job->next_call_id, sizeof a->call_id);
    job->reserve_pending = job->reserve_acked = 0; /* this attempt's record settles it */
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
        if (dp->ops->parse(t->status, t->response ? t->response : "", t->response_len, &reply,
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
            retryable = e.kind == ERR_TRANSIENT;
        }
    }
    /* a provider that refused the request itself (400, 401, 404, a content
     * filter): if no candidate is left, that is what the result says */
    job->last_rejected = !job->ok && !retryable && t->transport_error == 0 && t->status > 0;
    redact_str(a->error_msg); /* curl's text too: no piece of a key leaves */
    if (log_requests_on()) {
        struct log_fields f = job_attempt_fields(job, job->nattempts - 1);
        log_request("call_done", &f, "%s%s%s", a->status == ATTEMPT_OK ? "ok" : a->error_code,
                    a->status == ATTEMPT_OK ? "" : ": ", a->error_msg);
    }
    int64_t retry_after = t->retry_after_ms;
    /* Gemini says how long to wait in its error body, not in a header */
    if (retry_after < 0 && a->http_status == 429 && job_provider(job)->ops->retry_delay_ms)
        retry_after =
            job_provider(job)->ops->retry_delay_ms(t->response ? t->response : "", t->response_len);
    /* a 429 that is a rate limit (not a spent quota, which the adapter
     * calls permanent) is backpressure: the lane learns from it and the
     * call waits its turn again */
    int rate_limited = a->http_status == 429 && retryable && !job->ok;
    struct dispatch_lane *lane = job->lane;
    int64_t now = (int64_t)loop_now_ms(d->loop);
    struct ratelimit_hints hints = t->hints;
    if (hints.retry_after_ms < 0)
        hints.retry_after_ms = retry_after;
    if (rate_limited && hints.retry_after_ms < 0)
        hints.retry_after_ms = d->cfg->limits.backoff_initial_ms; /* said nothing: a pause */
    struct ratelimit_cost used = {
        .input_tokens = a->usage.tokens[COST_INPUT] + a->usage.tokens[COST_CACHE_READ] +
                        a->usage.tokens[COST_CACHE_WRITE],
        .output_tokens = a->usage.tokens[COST_OUTPUT] + a->usage.tokens[COST_REASONING],
    };
    struct ratelimit_outcome outcome = {.reserved = &job->reserved,
                                        .used = a->billable ? &used : NULL,
                                        .rate_limited = rate_limited,
                                        .succeeded = job->ok,
                                        .sent_ms = job->sent_ms,
                                        .hints = &hints};
    ratelimit_end(&lane->limiter, &outcome, now);
    outcome.hints = NULL;
    ratelimit_end(&dp->limiter, &outcome, now);
    job->call_started = 0;
    if (rate_limited) {
        lane->rate_limited++;
        job->rate_limited_calls++;
        job->tries_on_current--; /* a 429 spends none of the candidate's retries */
    }
    int malformed = !t->transport_error && a->http_status >= 200 && a->http_status < 300 &&
                    a->status != ATTEMPT_OK;
    if (breaker_record(&lane->breaker, &lane->circuit, now,
                       breaker_classify(a->http_status, t->transport_error, malformed), job->probe))
        lane_log_transition(lane);
    job->probe = 0;
    http_transfer_release(t);
    provider_http_release(&job->call);
    /* the slot goes to the next waiting call: started after this job is
     * settled, so a synchronous failure there cannot reach this one */
    struct pqueue_entry *next_slot = pqueue_release(&dp->slots);
    stats_attempt(&d->stats, &dp->stats, m, a);
    dispatch_trouble(d, dp, m, a);

    if (job->ok) {
        job_finish(job);
    } else {
        char why[200];
        if (a->http_status)
            snprintf(why, sizeof why, "%s (HTTP %ld)", a->error_code, a->http_status);
        else
            snprintf(why, sizeof why, "%s", a->error_code);
        int64_t rate_wait = ratelimit_wait(&lane->limiter, &job->reserved, now);
        if (rate_wait == RATELIMIT_WAIT_CALL || rate_wait < 0)
            rate_wait = 0;
        struct retry_input in = {
            .rate_limited = rate_limited,
            .fall_back_on_rate_limit =
                job->plan.route && job->plan.route->on_rate_limit == POLICY_RATE_LIMIT_FALLBACK,
            .rate_wait_ms = (uint64_t)rate_wait,
            .rate_waited_ms = job->rate_waited_ms,
            .rate_limit_max_wait_ms = (uint64_t)d->cfg->limits.rate_limit_max_wait_ms,
            .rate_limited_calls = job->rate_limited_calls,
            .retryable = retryable,
            .retry_after_ms = retry_after,
            .tries_on_current = job->tries_on_current,
            .attempts = job->nattempts - job->rate_limited_calls,
            .has_next = job_next_candidate(job, job->current + 1) >= 0,
            .stopping = d->stopping,
            .now_ms = loop_wall_ms(),
            .deadline_ms = job->req->deadline_ms,
            .max_attempts = (uint64_t)d->cfg->limits.max_attempts < JOB_MAX_ATTEMPTS
                                ? (uint64_t)d->cfg->limits.max_attempts
                                : JOB_MAX_ATTEMPTS,
            .retries_per_candidate = (uint64_t)d->cfg->limits.retries_per_candidate,
            .backoff_initial_ms = (uint64_t)d->cfg->limits.backoff_initial_ms,
            .backoff_max_ms = (uint64_t)d->cfg->limits.backoff_max_ms,
            .random = dispatch_random(d),
        };
        struct retry_decision dec = retry_decide(&in);
        switch (dec.action) {
        case RETRY_ABANDON:
            job_abandon(job);
            break;
        case RETRY_GIVE_UP:
            if (strcmp(dec.why, "rate_limited") == 0) {
                job->fate[job->current] = FATE_FAILED;
                job_fate_reason(job, job->current, "rate_limited");
                job_fail(job, "rate_limited",
                         "the provider kept answering 429 and waiting longer would miss the "
                         "deadline or exceed rate_limit_max_wait_ms; last: %s",
                         why);
            } else if (strcmp(dec.why, "max_attempts") == 0) {
                /* the route shows what happened to the candidate last tried */
                job->fate[job->current] = FATE_FAILED;
                job_fate_reason(job, job->current, "%s", why);
                job_fail(job, job->last_rejected ? "provider_rejected" : "candidates_exhausted",
                         "gave up after %zu attempts; last: %s", job->nattempts, why);
            } else
                job_fall_back(job, why); /* no candidate left: fails with the reason */
            break;
        case RETRY_FALL_BACK:
            job_fall_back(job, rate_limited ? "rate_limited" : why);
            break;
        case RETRY_SAME:
            if (rate_limited) {
                /* back to its lane, first in line: it came before those waiting */
                job->lane_front = 1;
                job_attempt(job);
                break;
            }
            d->stats.retries++;
            job->backoff.cb = job_backoff_fired;
            job->backoff.data = job;
            loop_timer_start(d->loop, &job->backoff, dec.delay_ms);
            break;
        }
    }
    if (next_slot)
        job_start_transfer((struct job *)((char *)next_slot - offsetof(struct job, slot)));
    lane_pump(lane); /* a call ended: room for the next, or the circuit's verdict */
}

/* ---- reservations (costs.reserve) ---- */

/* The current call was reserved and will not be made: it is settled at
 * cost 0 when the job finishes (its reservation may be on the topic, or
 * land there yet). */
static void job_unmade(struct job *job)
{
    if (!job->reserve_pending)
        return;
    job->reserve_pending = job->reserve_acked = 0;
    struct attempt *a = job_attempt_append(&job->unmade, &job->nunmade, &job->unmade_cap);
    a->model = job->plan.candidates[job->current].model;
    a->status = ATTEMPT_ERROR;
    a->ts_ms = loop_wall_ms();
    a->number = job->nattempts + 1;
    memcpy(a->call_id, job->next_call_id, sizeof a->call_id);
    snprintf(a->error_code, sizeof a->error_code, "not_sent");
}

/* The job gives up the call it holds a slot for: the slot goes back (to
 * the call returned, which the caller starts once this job is settled),
 * and the rate limit's reservation with it. */
static struct job *job_drop_call(struct job *job)
{
    struct pqueue_entry *next = pqueue_release(&job_provider(job)->slots);
    provider_http_release(&job->call);
    job_release_call(job);
    return next ? (struct job *)((char *)next - offsetof(struct job, slot)) : NULL;
}

/* A reservation that did not lead to its call: counted, logged at a
 * bounded rate, and the request ends with code (no other candidate
 * helps: they all reserve on the same topic). */
static void job_reserve_failed(struct job *job, enum stats_reserve_failure why, const char *code,
                               const char *detail)
{
    struct dispatch *d = job->dispatch;
    d->stats.reservations_failed[why]++;
    uint64_t suppressed;
    if (ratelog_allow_key(&d->trouble, "reservation_failed", loop_now_ms(d->loop), &suppressed)) {
        struct log_fields f = job_log_fields(job);
        f.code = code;
        f.topic = d->cfg->topic_costs;
        log_fields(LOG_ERROR, "reservation_failed", &f,
                   "%s: the reservation of call %s on %s %s: the call is not made (%" PRIu64
                   " more since the last report)",
                   job_id(job), job->next_call_id, d->cfg->topic_costs, detail, suppressed);
    }
    struct job *next = job_drop_call(job);
    if (why != STATS_RESERVE_DEADLINE) {
        job->fate[job->current] = FATE_FAILED;
        job_fate_reason(job, job->current, "%s", code);
    }
    if (why == STATS_RESERVE_DEADLINE)
        job_fail(job, code, "the deadline passed while the reservation of attempt %zu waited",
                 job->nattempts + 1);
    else
        job_fail(job, code, "the cost topic %s %s: no call was made without its reservation",
                 d->cfg->topic_costs, detail);
    if (next)
        job_start_transfer(next);
}

/* The producer's report on a reservation. */
static void job_reserve_done(void *opaque, rd_kafka_resp_err_t err)
{
    struct job_reservation *r = opaque;
    struct job *job = r->job;
    if (!job) {
        free(r); /* the job went on without it */
        return;
    }
    struct dispatch *d = job->dispatch;
    uint64_t now = loop_now_ms(d->loop);
    stats_reserve_wait(&d->stats, now > (uint64_t)r->sent_ms ? now - (uint64_t)r->sent_ms : 0);
    job->reservation = NULL;
    free(r);
    loop_timer_stop(d->loop, &job->backoff);
    if (err) {
        /* refused for good: the record is not on the topic, no settlement */
        job->reserve_pending = 0;
        char detail[160];
        snprintf(detail, sizeof detail, "was refused: %s", rd_kafka_err2str(err));
        job_reserve_failed(job, STATS_RESERVE_REFUSED, "reservation_failed", detail);
        return;
    }
    job->reserve_acked = 1;
    job_start_transfer(job); /* checks the stop and the deadline again */
}

/* No acknowledgement within the bound, or the deadline passed first. */
static void job_reserve_expired(struct loop_timer *t)
{
    struct job *job = t->data;
    /* the timer ran for the bound, or for what was left before the
     * deadline (then it is the deadline's, even if the wall clock, read
     * apart from the loop's, says a millisecond less) */
    uint64_t waited = loop_now_ms(job->dispatch->loop) - (uint64_t)job->reservation->sent_ms;
    job->reservation->job = NULL; /* its report, if any, only frees it */
    job->reservation = NULL;
    job_unmade(job); /* it may land yet: settled at 0 */
    if (job->req->deadline_ms >= 0 && waited < DISPATCH_RESERVE_WAIT_MS) {
        job_reserve_failed(job, STATS_RESERVE_DEADLINE, "deadline_exceeded",
                           "was not acknowledged before the request's deadline");
        return;
    }
    char detail[96];
    snprintf(detail, sizeof detail, "was not acknowledged within %d ms", DISPATCH_RESERVE_WAIT_MS);
    job_reserve_failed(job, STATS_RESERVE_TIMEOUT, "reservation_failed", detail);
}

/* Publishes the current call's reservation ("reserved", the candidate's
 * worst case) and waits for its acknowledgement, holding the call's slot:
 * the call goes (job_start_transfer again) only once it is acknowledged. */
static void job_reserve(struct job *job)
{
    struct dispatch *d = job->dispatch;
    const struct router_candidate *c = &job->plan.candidates[job->current];
    struct attempt a = {.model = c->model,
                        .status = ATTEMPT_OK,
                        .ts_ms = loop_wall_ms(),
                        .reservation = 1,
                        .reserved_nusd = c->worst_case_nusd};
    memcpy(a.call_id, job->next_call_id, sizeof a.call_id);
    size_t len;
    char *value = output_cost(job, &a, job->nattempts + 1, d->worker_id, &len);
    struct job_reservation *r = malloc(sizeof *r);
    if (!value || !r)
        abort(); /* out of memory: better to die and be redone than to lose */
    *r = (struct job_reservation){.job = job, .sent_ms = (int64_t)loop_now_ms(d->loop)};
    job->reservation = r;
    job->reserve_pending = 1;
    d->stats.reservations++;
    const char *id = job->req->id;
    if (producer_send(d->producer, d->cfg->topic_costs, id, strlen(id), value, len,
                      job_reply_headers(job), job_reserve_done, r) < 0)
        abort();
    uint64_t wait = DISPATCH_RESERVE_WAIT_MS;
    if (job->req->deadline_ms >= 0) {
        int64_t left = job->req->deadline_ms - loop_wall_ms();
        if (left < (int64_t)wait)
            wait = left > 0 ? (uint64_t)left : 0;
    }
    job->backoff.cb = job_reserve_expired;
    job->backoff.data = job;
    loop_timer_start(d->loop, &job->backoff, wait);
}

/* Starts the built call; the job holds a connection slot. With
 * costs.reserve, its reservation is published and acknowledged first
 * (this runs again on the acknowledgement). */
static void job_start_transfer(struct job *job)
{
    struct dispatch *d = job->dispatch;
    struct dispatch_provider *dp = job_provider(job);
    if (d->stopping) {
        /* no call after a stop; a reservation stays open on the topic */
        pqueue_release(&dp->slots);
        job_abandon(job);
        return;
    }
    long timeout = (long)dp->cfg->timeout_ms;
    if (job->req->deadline_ms >= 0) {
        int64_t left = job->req->deadline_ms - loop_wall_ms();
        if (left <= 0) {
            job_unmade(job);
            struct job *next = job_drop_call(job);
            job_fail(job, "deadline_exceeded", "the deadline passed before attempt %zu",
                     job->nattempts + 1);
            if (next)
                job_start_transfer(next);
            return;
        }
        if (left < timeout)
            timeout = (long)left;
    }
    if (d->cfg->costs_reserve && !job->reserve_acked) {
        job_reserve(job);
        return;
    }
    /* a signature holds for minutes (AWS refuses one more than 5 minutes
     * off its clock) and the call may have waited longer than that in the
     * lane: it is signed again as it leaves */
    if (dp->cfg->auth == CONFIG_AUTH_SIGV4) {
        struct err e = {0};
        if (job_build_call(job, &e) < 0) {
            job_unmade(job);
            struct pqueue_entry *next = pqueue_release(&dp->slots);
            job_release_call(job);
            char why[200];
            snprintf(why, sizeof why, "cannot sign the request for %.32s: %.120s", dp->cfg->name,
                     e.msg);
            job_fall_back(job, why);
            if (next)
                job_start_transfer((struct job *)((char *)next - offsetof(struct job, slot)));
            return;
        }
        job_call_header(job);
    }
    struct http_transfer *t = &job->transfer;
    memset(t, 0, sizeof *t);
    t->url = job->call.url;
    t->headers = job->call.headers;
    t->nheaders = job->call.nheaders;
    t->body = job->call.body;
    t->body_len = job->call.body_len;
    t->timeout_ms = timeout;
    t->connect_timeout_ms = (long)dp->cfg->connect_timeout_ms;
    t->done = job_transfer_done;
    t->data = job;
    if (http_submit(d->http, t) < 0) {
        job_unmade(job);
        struct pqueue_entry *next = pqueue_release(&dp->slots);
        provider_http_release(&job->call);
        job_release_call(job);
        char why[300];
        snprintf(why, sizeof why, "transport: %s", t->error);
        job_fall_back(job, why);
        if (next)
            job_start_transfer((struct job *)((char *)next - offsetof(struct job, slot)));
        return;
    }
    job->transfer_running = 1;
}

static void job_attempt(struct job *job)
{
    job->last_rejected = 0; /* until this candidate refuses the request */
    struct dispatch *d = job->dispatch;
    if (d->stopping) {
        job_abandon(job); /* no new provider call after a stop signal */
        return;
    }
    struct router_candidate *c = &job->plan.candidates[job->current];
    const struct policy_model *m = &job->policy->models[c->model];
    struct dispatch_provider *dp = job_provider(job);
    if (job->req->deadline_ms >= 0 && loop_wall_ms() >= job->req->deadline_ms) {
        job_fail(job, "deadline_exceeded", "the deadline passed before attempt %zu",
                 job->nattempts + 1);
        return;
    }
    job->lane = dispatch_lane_for(d, dp, m);
    if (breaker_refuses(&job->lane->breaker, &job->lane->circuit, (int64_t)loop_now_ms(d->loop))) {
        /* a provider known to be failing costs no call and no timeout */
        job->lane->circuit_skips++;
        job_skip(job, "circuit_open", "circuit_open");
        return;
    }
    /* what is left of the budget after billable attempts bounds this one */
    uint64_t left =
        job->plan.budget_nusd > job->spent_nusd ? job->plan.budget_nusd - job->spent_nusd : 0;
    uint32_t cap = router_fit(job->policy, m, job->plan.input_tokens, job->plan.prompt_bound,
                              job->req->max_tokens, c->reasoning_budget, left);
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
    job->call_max_tokens = cap;
    struct err e = {0};
    if (job_build_call(job, &e) < 0) {
        char why[200];
        snprintf(why, sizeof why, "cannot express the request for %.32s: %.120s", dp->cfg->name,
                 e.msg);
        job->last_rejected = e.kind == ERR_INPUT;
        job_fall_back(job, why);
        return;
    }
    job->reserved =
        (struct ratelimit_cost){.input_tokens = job->plan.input_tokens, .output_tokens = cap};
    lane_enqueue(job->lane, job);
}

/* The per-request log's first line: the prompt (system and messages,
 * as JSON) only when logging.bodies asks for it. */
static void job_log_received(const struct job *job)
{
    struct log_fields f = job_log_fields(job);
    char *prompt = NULL;
    if (log_bodies_on()) {
        json_t *o = json_object();
        json_t *sys = json_object_get(job->req->root, "system");
        if (o && sys)
            json_object_set(o, "system", sys);
        if (o)
            json_object_set(o, "messages", json_object_get(job->req->root, "messages"));
        prompt = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
    }
    f.prompt = prompt;
    log_request("request_received", &f, "task %s, tenant %s, %zu messages, %zu bytes",
                job->req->task ? job->req->task : "", job->req->tenant ? job->req->tenant : "-",
                job->req->nmessages, job->msg->len);
    free(prompt);
}

void dispatch_message(struct dispatch *d, rd_kafka_message_t *msg, uint32_t generation)
{
    struct job *job = calloc(1, sizeof *job);
    if (!job)
        abort(); /* cannot even record the failure: die, the offset is redone */
    job->dispatch = d;
    job->msg = msg;
    job->generation = generation;
    job->received_ms = loop_wall_ms();
    job->policy = policy_retain(d->policy);
    TAILQ_INSERT_HEAD(&d->jobs, job, link);
    d->njobs++;
    if (d->stopping) {
        job_abandon(job); /* taken after the stop: the next owner has it */
        return;
    }
    d->stats.received++;

    struct err e = {0};
    if (request_decode(msg->payload ? msg->payload : "", msg->len,
                       (size_t)d->cfg->limits.max_message_bytes, &job->req, &e) < 0) {
        /* kept only by a dead letter: every other job is smaller without it */
        if (!(job->input_error = malloc(sizeof *job->input_error)))
            abort();
        *job->input_error = e;
        job_dead_letter(job);
        return;
    }
    if (log_requests_on())
        job_log_received(job); /* before the compaction: it may log the prompt's JSON */
    /* a request in flight keeps its fields, not the document they came from */
    if (request_compact(job->req) < 0)
        abort(); /* out of memory: better to die and be redone than to lose */
    if (router_plan(job->policy, job->req, &job->plan) < 0)
        abort(); /* out of memory: better to die and be redone than to lose */
    for (size_t i = 0; i < job->plan.ncandidates; i++)
        job->fate[i] = job->plan.candidates[i].decision == ROUTER_TAKEN ? FATE_TAKEN : FATE_SKIPPED;
    if (job->plan.outcome != ROUTER_OK) {
        job_fail(job, router_outcome_name(job->plan.outcome), "%s", job->plan.reason);
        return;
    }
    job->current = (size_t)job_next_candidate(job, 0);
    job_attempt(job);
}

void dispatch_stop(struct dispatch *d)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    struct job *job, *next;
    for (job = TAILQ_FIRST(&d->jobs); job; job = next) {
        next = TAILQ_NEXT(job, link);
        if (job->outputs_pending == 0 && !job->transfer_running)
            job_abandon(job); /* waiting to retry, or for a connection */
    }
}

size_t dispatch_abandon_calls(struct dispatch *d)
{
    size_t n = 0;
    struct job *job, *next;
    for (job = TAILQ_FIRST(&d->jobs); job; job = next) {
        next = TAILQ_NEXT(job, link);
        if (job->outputs_pending == 0) {
            job_abandon(job);
            n++;
        }
    }
    return n;
}

/* Each model of p gets its lane, with the limits p and worker.yaml give
 * it now (what was learned stays). */
static void dispatch_configure_lanes(struct dispatch *d, const struct policy *p)
{
    for (size_t i = 0; i < p->nmodels; i++) {
        const struct policy_model *m = &p->models[i];
        struct dispatch_provider *dp = dispatch_provider_for(d, m);
        if (!dp)
            continue;
        struct ratelimit_limits limits = dispatch_model_limits(dp, m);
        ratelimit_configure(&dispatch_lane_for(d, dp, m)->limiter, &limits);
    }
}

void dispatch_set_policy(struct dispatch *d, struct policy *p)
{
    policy_release(d->policy);
    d->policy = policy_retain(p);
    dispatch_configure_lanes(d, p);
    for (size_t i = 0; i < d->nlanes; i++)
        lane_kick(d->lanes[i]); /* a higher limit lets waiting calls go now */
}

struct dispatch *dispatch_new(const struct dispatch_options *o, struct err *e)
{
    struct dispatch *d = calloc(1, sizeof *d);
    if (!d) {
        err_set(e, ERR_FATAL, "oom", "out of memory");
        return NULL;
    }
    *d = (struct dispatch){.loop = o->loop,
                           .cfg = o->cfg,
                           .http = o->http,
                           .producer = o->producer,
                           .worker_id = o->worker_id,
                           .policy = policy_retain(o->policy),
                           .finished = o->finished,
                           .undeliverable = o->undeliverable,
                           .pressure = o->pressure,
                           .ctx = o->ctx,
                           .stats = {.started_ms = loop_wall_ms()},
                           .trouble = {.interval_ms = DISPATCH_TROUBLE_INTERVAL_MS}};
    TAILQ_INIT(&d->jobs);
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    d->random_state = seed | 1;
    size_t n = o->cfg->nproviders;
    d->providers = calloc(n ? n : 1, sizeof *d->providers);
    if (!d->providers)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        struct dispatch_provider *p = &d->providers[i];
        p->cfg = &o->cfg->providers[i];
        p->ops = provider_ops_for(p->cfg->type);
        pqueue_init(&p->slots, (size_t)p->cfg->max_connections);
        struct ratelimit_limits limits = {
            .requests_per_minute = (uint64_t)p->cfg->limits.requests_per_minute,
            .tokens_per_minute = (uint64_t)p->cfg->limits.tokens_per_minute,
        };
        ratelimit_init(&p->limiter, &limits, 0, (int64_t)loop_now_ms(d->loop));
        if (o->api_keys && o->api_keys[i] && !(p->api_key = strdup(o->api_keys[i])))
            goto oom;
        if (p->cfg->auth == CONFIG_AUTH_SIGV4 && o->aws &&
            ((o->aws->access_key_id && !(p->aws_access_key_id = strdup(o->aws->access_key_id))) ||
             (o->aws->secret_access_key &&
              !(p->aws_secret_access_key = strdup(o->aws->secret_access_key))) ||
             (o->aws->session_token && !(p->aws_session_token = strdup(o->aws->session_token)))))
            goto oom;
    }
    dispatch_configure_lanes(d, d->policy);
    return d;
oom:
    dispatch_free(d);
    err_set(e, ERR_FATAL, "oom", "out of memory");
    return NULL;
}

void dispatch_free(struct dispatch *d)
{
    if (!d)
        return;
    while (!TAILQ_EMPTY(&d->jobs))
        job_free(TAILQ_FIRST(&d->jobs));
    for (size_t i = 0; d->providers && i < d->cfg->nproviders; i++) {
        /* the keys leave memory with us */
        char *secrets[] = {d->providers[i].api_key, d->providers[i].aws_access_key_id,
                           d->providers[i].aws_secret_access_key,
                           d->providers[i].aws_session_token};
        for (size_t k = 0; k < sizeof secrets / sizeof secrets[0]; k++)
            if (secrets[k]) {
                memset(secrets[k], 0, strlen(secrets[k]));
                free(secrets[k]);
            }
    }
    for (size_t i = 0; i < d->nlanes; i++)
        lane_free(d, d->lanes[i]);
    free(d->lanes);
    free(d->providers);
    policy_release(d->policy);
    stats_release(&d->stats);
    free(d);
}

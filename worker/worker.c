/*
 * worker: wiring and lifecycle. Start: keys from the environment, clients,
 * subscribe. Run: the loop. Stop (SIGTERM/SIGINT, or idle in demo mode):
 * stop fetching, start no new provider call, let calls in flight finish
 * up to shutdown_grace_ms, flush the producer and commit within
 * flush_timeout_ms, leave the group, exit 0. A second signal exits at
 * once, wherever the process is (work not committed is redone by the next
 * owner). Never blocks the loop; every wait at the end has a deadline.
 */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "consumer.h"
#include "dispatch.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "notify.h"
#include "preflight.h"
#include "probe.h"
#include "producer.h"
#include "redact.h"
#include "reload.h"
#include "stats.h"

#define WORKER_TICK_MS 50

struct worker {
    struct loop *loop;
    const struct config *cfg;
    const char *policy_path;
    struct policy *policy; /* current; jobs retain their own */
    struct http *http;
    struct producer *producer;
    struct consumer *consumer;
    struct dispatch *dispatch;
    struct metrics *metrics;   /* NULL without metrics.listen */
    struct reload *reload;     /* SIGHUP: the policy parsed off the loop */
    struct kafka_probe *probe; /* the start-up check; the consumer comes after it */
    struct notify *notify;     /* systemd: READY, WATCHDOG, STOPPING */
    int start_failed;
    /* parallel to cfg->providers: the environment's own strings (NULL when
     * unset); dispatch keeps the only copy */
    const char **api_keys;
    struct dispatch_aws_credentials aws; /* the environment's own strings */
    char worker_id[128];
    int stopping;
    int exit_code;
    uint64_t stop_deadline_ms;
    int signal_fd;
    struct loop_io signals;
    struct loop_timer tick;
    uint64_t exit_when_idle_ms; /* >0: exit after this long with no work (tests, demo) */
    uint64_t idle_since_ms;
};

/* The second signal: out at once, from wherever the main thread is
 * (a flush, leaving the group). Async-signal-safe: one write, _exit. */
static void worker_exit_now(int signo)
{
    static const char line[] = "{\"level\":\"warn\",\"event\":\"exit_now\",\"msg\":\"second "
                               "signal: exiting without draining; unfinished work is redone "
                               "by the next owner\"}\n";
    (void)signo;
    ssize_t w = write(STDERR_FILENO, line, sizeof line - 1);
    (void)w;
    _exit(1);
}

static void worker_arm_second_signal(void)
{
    struct sigaction sa = {.sa_handler = worker_exit_now};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_UNBLOCK, &mask, NULL);
}

/* A reload's result, on the loop: the file was parsed on reload's thread,
 * so a large policy never stalls the loop (nor /healthz). */
static void worker_reloaded(void *data, struct policy *p, struct ydoc_errors *errs)
{
    struct worker *w = data;
    struct stats *s = &w->dispatch->stats;
    if (!p) {
        for (size_t i = 0; i < errs->count; i++)
            log_error("policy_reload_failed", "%s", errs->lines[i]);
        log_error("policy_reload_failed", "keeping the current policy");
        s->reloads_failed++;
        return;
    }
    /* in-flight jobs keep the policy they started with */
    policy_release(w->policy);
    w->policy = p;
    dispatch_set_policy(w->dispatch, p);
    s->reloads_ok++;
    log_info("policy_reloaded", "%s: %zu models, %zu routes", w->policy_path, p->nmodels,
             p->nroutes);
}

static void worker_reload_policy(struct worker *w)
{
    int rc = reload_start(w->reload, w->policy_path);
    if (rc < 0) {
        log_error("policy_reload_failed",
                  "cannot start the reload thread: %s; keeping the "
                  "current policy",
                  strerror(errno));
        w->dispatch->stats.reloads_failed++;
    } else if (rc == 1) {
        log_info("policy_reload_queued", "a reload is running; %s is read again after it",
                 w->policy_path);
    }
}

static void worker_begin_stop(struct worker *w, const char *why)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    worker_arm_second_signal();
    w->stop_deadline_ms = loop_now_ms(w->loop) + (uint64_t)w->cfg->limits.shutdown_grace_ms;
    log_info("stopping",
             "%s: no new provider call; %zu messages in flight get up to %lld ms, "
             "then the flush up to %lld ms",
             why, w->dispatch ? w->dispatch->njobs : 0, (long long)w->cfg->limits.shutdown_grace_ms,
             (long long)w->cfg->limits.flush_timeout_ms);
    notify_stopping(w->notify, "draining in-flight work");
    if (w->consumer)
        consumer_stop_fetching(w->consumer);
    if (w->dispatch)
        dispatch_stop(w->dispatch);
}

static void worker_signal(struct loop_io *io, unsigned events)
{
    (void)events;
    struct worker *w = io->data;
    struct signalfd_siginfo si;
    while (read(w->signal_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP)
            worker_reload_policy(w);
        else if (w->stopping)
            worker_exit_now((int)si.ssi_signo);
        else
            worker_begin_stop(w, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
    }
}

/* Periodic: ends the loop when draining is over, or on idleness. */
static void worker_tick(struct loop_timer *t)
{
    struct worker *w = t->data;
    uint64_t now = loop_now_ms(w->loop);
    if (!w->stopping && consumer_in_group(w->consumer))
        notify_ready(w->notify, "in the consumer group, consuming"); /* once */
    if (w->stopping) {
        if (w->dispatch->njobs == 0 || now >= w->stop_deadline_ms) {
            loop_stop(w->loop);
            return;
        }
    } else if (w->exit_when_idle_ms) {
        /* idle means: owning partitions, and nothing to do */
        if (w->dispatch->njobs > 0 || producer_pending(w->producer) > 0 || !w->consumer ||
            consumer_assigned(w->consumer) == 0)
            w->idle_since_ms = now;
        else if (now - w->idle_since_ms >= w->exit_when_idle_ms)
            worker_begin_stop(w, "idle");
    }
    loop_timer_start(w->loop, t, WORKER_TICK_MS);
}

/* /readyz: in the group with the cluster reachable, and not stopping */
static int worker_ready(void *ctx, const char **why)
{
    const struct worker *w = ctx;
    if (w->stopping) {
        *why = "stopping: draining in-flight work";
        return 0;
    }
    if (!w->consumer) {
        *why = "starting: checking the cluster and the topics";
        return 0;
    }
    return consumer_ready(w->consumer, why);
}

static void worker_render(void *ctx, struct metrics_buf *out)
{
    struct worker *w = ctx;
    const struct dispatch *d = w->dispatch;
    size_t cap = w->consumer ? consumer_assigned(w->consumer) : 0;
    struct consumer_partition_info *parts = calloc(cap ? cap : 1, sizeof *parts);
    struct stats_provider_view *providers =
        calloc(w->cfg->nproviders ? w->cfg->nproviders : 1, sizeof *providers);
    struct stats_lane_view *lanes = calloc(d->nlanes ? d->nlanes : 1, sizeof *lanes);
    if (!parts || !providers || !lanes) {
        out->failed = 1;
        goto out;
    }
    for (size_t i = 0; i < w->cfg->nproviders; i++)
        providers[i] = (struct stats_provider_view){
            .name = w->cfg->providers[i].name,
            .in_flight = d->providers[i].slots.in_flight,
            .queued = d->providers[i].slots.nwaiting,
            .counts = &d->providers[i].stats,
        };
    for (size_t i = 0; i < d->nlanes; i++) {
        const struct dispatch_lane *l = d->lanes[i];
        lanes[i] = (struct stats_lane_view){
            .provider = l->provider->cfg->name,
            .model = l->model,
            .waiting = l->nwaiting,
            .full = l->full,
            .rate_limited = l->rate_limited,
            .waited = l->waited,
            .circuit_skips = l->circuit_skips,
            .circuit_state = l->breaker.state == BREAKER_OPEN        ? 1
                             : l->breaker.state == BREAKER_HALF_OPEN ? 2
                                                                     : 0,
            .transitions = l->breaker.transitions,
        };
        _Static_assert(RATELIMIT_NDIMS == sizeof lanes[i].rate / sizeof lanes[i].rate[0],
                       "a rate per dimension");
        for (int k = 0; k < RATELIMIT_NDIMS; k++)
            lanes[i].rate[k] = ratelimit_rate(&l->limiter, (enum ratelimit_dim)k);
    }
    const char *why;
    struct stats_view v = {
        .worker_id = w->worker_id,
        .version = SWITCHYARD_VERSION,
        .stats = &d->stats,
        .jobs_in_flight = d->njobs,
        .producer_unacknowledged = producer_pending(w->producer),
        .partitions_assigned = w->consumer ? consumer_assigned(w->consumer) : 0,
        .stopping = w->stopping,
        .ready = worker_ready(w, &why),
        .kafka_up = w->consumer ? consumer_kafka_up(w->consumer) : 0,
        .in_group = w->consumer ? consumer_in_group(w->consumer) : 0,
        .skipped = w->consumer ? consumer_skipped(w->consumer) : 0,
        .abandoned = d->counters.abandoned,
        .outputs_replaced = d->counters.outputs_replaced,
        .outputs_undeliverable = d->counters.outputs_undeliverable,
        .reply_topic_results = d->counters.reply_topic_results,
        .reply_topics_refused = d->counters.reply_topics_refused,
        .reply_headers_skipped = d->counters.reply_headers_skipped,
        .now_ms = loop_wall_ms(),
        .tenant_label = w->cfg->metrics_tenant_label,
        .process = 1,
        .topic_requests = w->cfg->topic_requests,
        .partitions = parts,
        .npartitions = w->consumer ? consumer_partitions(w->consumer, parts, cap) : 0,
        .providers = providers,
        .nproviders = w->cfg->nproviders,
        .lanes = lanes,
        .nlanes = d->nlanes,
    };
    stats_render(&v, out);
out:
    free(parts);
    free(providers);
    free(lanes);
}

static void worker_message(void *ctx, rd_kafka_message_t *msg, uint32_t generation)
{
    struct worker *w = ctx;
    dispatch_message(w->dispatch, msg, generation);
}

static void worker_finished(void *ctx, int32_t partition, uint32_t generation, int64_t offset)
{
    struct worker *w = ctx;
    if (w->consumer)
        consumer_finished(w->consumer, partition, generation, offset);
}

static void worker_pressure(void *ctx, int32_t partition, uint32_t generation, int delta)
{
    struct worker *w = ctx;
    consumer_pressure(w->consumer, partition, generation, delta);
}

static void worker_undeliverable(void *ctx, const char *why)
{
    struct worker *w = ctx;
    (void)why; /* dispatch has logged it */
    w->exit_code = 1;
    worker_begin_stop(w, "an output cannot be delivered");
}

static void worker_consumer_fatal(void *ctx, const char *why)
{
    struct worker *w = ctx;
    (void)why; /* the consumer has logged it */
    w->exit_code = 1;
    worker_begin_stop(w, "the consumer failed fatally");
}

/* The start-up check's outcome: consume, or exit 1 saying why. */
static void worker_probe_done(void *data, const struct kafka_probe_result *r)
{
    struct worker *w = data;
    const char *servers = kafka_config_value(w->cfg, "bootstrap.servers", NULL);
    struct err e = {0};
    if (w->stopping)
        return;
    if (!r->reachable) {
        log_error("kafka_unreachable",
                  "the Kafka cluster at bootstrap.servers \"%s\" did not answer within "
                  "startup_timeout_ms (%lld ms): %s; check bootstrap.servers, that the brokers "
                  "are running and that their listeners are reachable",
                  servers ? servers : "(not set)", (long long)w->cfg->limits.startup_timeout_ms,
                  r->error ? r->error : "no answer");
        goto fail;
    }
    for (size_t i = 0; i < r->nmissing; i++) {
        if (w->cfg->topics_create_missing)
            log_warn("topic_missing",
                     "topic \"%s\" does not exist on the cluster at \"%s\"; "
                     "topics.create_missing is true: the broker creates it on first use, if "
                     "it allows auto-creation",
                     r->missing[i], servers ? servers : "");
        else
            log_error("topic_missing",
                      "topic \"%s\" does not exist on the cluster at \"%s\"; create it, "
                      "correct its name under topics:, or set topics.create_missing: true",
                      r->missing[i], servers ? servers : "");
    }
    if (r->nmissing && !w->cfg->topics_create_missing)
        goto fail;
    if (!r->nmissing) /* a missing one is left to the broker's auto-creation, on first use */
        producer_prepare_topics(w->producer);
    struct consumer_handlers handlers = {.message = worker_message, .fatal = worker_consumer_fatal};
    w->consumer = consumer_new(w->loop, w->cfg, &handlers, w, &e);
    if (!w->consumer) {
        log_error("start_failed", "%s", e.msg);
        goto fail;
    }
    log_info("started", "worker %s consuming %s (cluster checked in %lld ms)", w->worker_id,
             w->cfg->topic_requests, r->elapsed_ms);
    return;
fail:
    w->start_failed = 1;
    loop_stop(w->loop);
}

/* The name api_key_env gives, for a message; withheld when it may be a
 * pasted key. */
static const char *worker_key_var(const struct config_provider *p)
{
    return config_name_may_be_secret(p->api_key_env) ? "(the name api_key_env gives is "
                                                       "withheld: it looks like a key)"
                                                     : p->api_key_env;
}

static int worker_provider_used(const struct worker *w, const struct config_provider *p)
{
    for (size_t m = 0; m < w->policy->nmodels; m++)
        if (strcmp(w->policy->models[m].provider, p->name) == 0)
            return 1;
    return 0;
}

/* The AWS credentials SigV4 providers sign with: the key id and the secret
 * are needed, the session token is taken when set. */
static int worker_aws(struct worker *w)
{
    const char **slot[] = {&w->aws.access_key_id, &w->aws.secret_access_key, &w->aws.session_token};
    int bad = 0;
    for (size_t v = 0; v < sizeof slot / sizeof slot[0] && preflight_aws_vars[v]; v++) {
        const char *value = getenv(preflight_aws_vars[v]);
        const char *why = preflight_secret_problem(value);
        if (why && v == 2 && (!value || !*value))
            continue; /* long-term credentials have no session token */
        if (why) {
            log_error(!value || !*value ? "missing_api_key" : "bad_api_key",
                      "a provider signs its calls (auth: sigv4): %s %s", preflight_aws_vars[v],
                      why);
            bad = 1;
            continue;
        }
        *slot[v] = value;
        if (redact_register(value) < 0) {
            log_error("bad_api_key", "%s cannot be registered for redaction (out of memory)",
                      preflight_aws_vars[v]);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

/* Reads each provider's key from the environment. The variable's name is
 * printed, never its value. */
static int worker_keys(struct worker *w)
{
    int bad = 0;
    w->api_keys = calloc(w->cfg->nproviders ? w->cfg->nproviders : 1, sizeof *w->api_keys);
    if (!w->api_keys)
        return -1;
    int sigv4 = 0;
    for (size_t i = 0; i < w->cfg->nproviders; i++) {
        const struct config_provider *p = &w->cfg->providers[i];
        if (p->auth == CONFIG_AUTH_SIGV4) {
            sigv4 |= worker_provider_used(w, p);
            continue;
        }
        const char *key = getenv(p->api_key_env);
        if (!key || !*key) {
            if (worker_provider_used(w, p)) {
                /* the name is printed only when it cannot be a pasted key */
                log_error("missing_api_key",
                          "provider %s: the environment variable that api_key_env names (%s) "
                          "is not set or empty",
                          p->name, worker_key_var(p));
                bad = 1;
            }
            continue;
        }
        for (const char *k = key; *k; k++)
            if ((unsigned char)*k < 0x21 || *k == 0x7f) {
                /* a CR or LF would inject a header; the key is not shown */
                log_error("bad_api_key",
                          "provider %s: the key in %s holds a control "
                          "character or space",
                          p->name, worker_key_var(p));
                bad = 1;
                break;
            }
        w->api_keys[i] = key;
        /* before any thread starts: from here on no text that leaves the
         * worker can hold a piece of this key (redact.h) */
        if (redact_register(key) < 0) {
            log_error("bad_api_key",
                      "provider %s: the key in %s cannot be registered for "
                      "redaction (longer than %d bytes, or out of memory)",
                      p->name, worker_key_var(p), REDACT_MAX_SECRET);
            bad = 1;
        }
    }
    if (sigv4 && worker_aws(w) < 0)
        bad = 1;
    return bad ? -1 : 0;
}

static void worker_id_init(struct worker *w)
{
    const char *env = getenv("SWITCHYARD_WORKER_ID");
    if (w->cfg->worker_id) {
        snprintf(w->worker_id, sizeof w->worker_id, "%s", w->cfg->worker_id);
    } else if (env && *env) {
        snprintf(w->worker_id, sizeof w->worker_id, "%s", env);
    } else {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(w->worker_id, sizeof w->worker_id, "%s-%d", host, (int)getpid());
    }
}

/* The end, in an order that cannot hang: calls still running are
 * abandoned, the producer flushes within flush_timeout_ms (acknowledged
 * outputs finish their inputs), the done prefix is committed, the jobs
 * release their messages, and only then does the consumer leave the group
 * (librdkafka's destroy waits for every message it handed out). */
/* What is left before `deadline`, plus a share of the extra second the
 * README allows after the flush for the commit and leaving the group. */
static int worker_left_ms(int64_t deadline, int64_t extra_deadline)
{
    int64_t now = loop_wall_ms();
    int64_t left = deadline - now;
    if (left < 100) /* the flush used it all: take from the extra second */
        left = extra_deadline - now > 500 ? 500 : extra_deadline - now;
    return left > 0 ? (int)left : 0;
}

static void worker_shutdown(struct worker *w)
{
    const struct config_limits *l = &w->cfg->limits;
    int64_t deadline = loop_wall_ms() + l->flush_timeout_ms;
    int64_t extra = deadline + 1000; /* the README's "+ 1 s" */
    if (w->dispatch) {
        size_t n = dispatch_abandon_calls(w->dispatch);
        if (n)
            log_warn("abandoned_at_grace",
                     "%zu calls still running at the grace were "
                     "abandoned; their inputs stay uncommitted for the next owner",
                     n);
    }
    if (w->producer) {
        size_t lost = producer_flush(w->producer, (int)l->flush_timeout_ms);
        if (lost)
            log_warn("unacknowledged_outputs",
                     "%zu outputs not acknowledged within %lld ms; "
                     "their inputs stay uncommitted",
                     lost, (long long)l->flush_timeout_ms);
    }
    if (w->consumer)
        consumer_commit_now(w->consumer, worker_left_ms(deadline, extra));
    dispatch_free(w->dispatch);
    w->dispatch = NULL;
    consumer_free(w->consumer, worker_left_ms(deadline, extra));
    w->consumer = NULL;
    producer_free(w->producer, 0);
    w->producer = NULL;
}

int worker_run(const struct config *cfg, struct policy *policy, const char *policy_path,
               uint64_t exit_when_idle_ms)
{
    struct worker w = {.cfg = cfg,
                       .policy = policy_retain(policy),
                       .policy_path = policy_path,
                       .signal_fd = -1,
                       .exit_when_idle_ms = exit_when_idle_ms};
    struct err e = {0};
    int rc = 1;
    worker_id_init(&w);
    log_set_worker(w.worker_id);
    log_set_options(cfg->log_requests, cfg->log_bodies);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* blocked before any thread starts: librdkafka's and curl's threads
     * inherit the mask, so signals reach the loop's signalfd */
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (worker_keys(&w) < 0)
        goto out;
    w.loop = loop_new();
    w.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (!w.loop || w.signal_fd < 0) {
        log_error("start_failed", "cannot set up the event loop: %s", strerror(errno));
        goto out;
    }
    w.notify = notify_new(w.loop);
    w.signals = (struct loop_io){.fd = w.signal_fd, .cb = worker_signal, .data = &w};
    loop_io_set(w.loop, &w.signals, LOOP_READ);
    w.http = http_new(w.loop, NULL);
    if (!w.http) {
        log_error("start_failed", "cannot initialise libcurl");
        goto out;
    }
    w.producer = producer_new(w.loop, cfg, &e);
    if (!w.producer) {
        log_error("start_failed", "%s", e.msg);
        goto out;
    }
    struct dispatch_options dopt = {.loop = w.loop,
                                    .cfg = cfg,
                                    .http = w.http,
                                    .producer = w.producer,
                                    .worker_id = w.worker_id,
                                    .policy = w.policy,
                                    .api_keys = w.api_keys,
                                    .aws = &w.aws,
                                    .finished = worker_finished,
                                    .undeliverable = worker_undeliverable,
                                    .pressure = worker_pressure,
                                    .ctx = &w};
    w.dispatch = dispatch_new(&dopt, &e);
    if (!w.dispatch) {
        log_error("start_failed", "%s", e.msg);
        goto out;
    }
    w.reload = reload_new(w.loop, cfg, worker_reloaded, &w);
    if (!w.reload) {
        log_error("start_failed", "out of memory");
        goto out;
    }
    if (cfg->metrics_listen) {
        struct metrics_handlers mh = {.render = worker_render, .ready = worker_ready};
        w.metrics = metrics_new(w.loop, cfg->metrics_listen, &mh, &w, &e);
        if (!w.metrics) {
            log_error("start_failed", "%s", e.msg);
            goto out;
        }
        log_info("metrics_listening", "http://%s/metrics", metrics_address(w.metrics));
    }
    /* the consumer is created when the cluster and the topics are there */
    w.probe = kafka_probe_start(w.loop, cfg, worker_probe_done, &w, &e);
    if (!w.probe) {
        log_error("start_failed", "%s", e.msg);
        goto out;
    }
    w.idle_since_ms = loop_now_ms(w.loop);
    w.tick = (struct loop_timer){.cb = worker_tick, .data = &w};
    loop_timer_start(w.loop, &w.tick, WORKER_TICK_MS);
    if (loop_run(w.loop) < 0) {
        log_error("loop_failed", "epoll failed: %s", strerror(errno));
        goto out;
    }
    rc = w.start_failed ? 1 : w.exit_code;
out:
    kafka_probe_free(w.probe); /* joins its thread: within about 1 s */
    w.probe = NULL;
    if (w.loop)
        loop_timer_stop(w.loop, &w.tick);
    if (!w.stopping)
        worker_arm_second_signal(); /* a failed start can still be interrupted */
    if (w.dispatch) {
        w.dispatch->stopping = 1;
        log_info("stopped",
                 "received %llu, results ok %llu, error %llu, dead letters %llu, "
                 "cost records %llu (%llu nUSD), abandoned %llu",
                 (unsigned long long)w.dispatch->stats.received,
                 (unsigned long long)w.dispatch->stats.results_ok,
                 (unsigned long long)w.dispatch->stats.results_error,
                 (unsigned long long)w.dispatch->stats.dead_letters,
                 (unsigned long long)w.dispatch->stats.cost_records,
                 (unsigned long long)w.dispatch->stats.cost_nusd,
                 (unsigned long long)w.dispatch->counters.abandoned);
    }
    reload_free(w.reload); /* before the dispatch that its result would reach */
    w.reload = NULL;
    worker_shutdown(&w);
    metrics_free(w.metrics);
    http_free(w.http);
    if (w.signals.events)
        loop_io_set(w.loop, &w.signals, 0);
    if (w.signal_fd >= 0)
        close(w.signal_fd);
    free(w.api_keys);
    policy_release(w.policy);
    notify_free(w.notify);
    loop_free(w.loop);
    return rc;
}

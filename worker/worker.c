/*
 * worker: wiring and lifecycle. Start: keys from the environment, clients,
 * subscribe. Run: the loop. Stop (SIGTERM/SIGINT, or idle in demo mode):
 * stop fetching, drain in-flight work up to shutdown_grace_ms, flush the
 * producer, commit synchronously, leave the group, exit 0. A second signal
 * exits at once (work not committed is redone by the next owner).
 */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"
#include "probe.h"

#define WORKER_DRAIN_CHECK_MS 50

void dispatch_message(void *ctx, rd_kafka_message_t *msg, uint32_t generation);
void dispatch_abandon(struct worker *w);

struct worker_provider *worker_provider_for(struct worker *w, const struct policy_model *m)
{
    for (size_t i = 0; i < w->cfg->nproviders; i++)
        if (strcmp(w->cfg->providers[i].name, m->provider) == 0)
            return &w->providers[i];
    return NULL;
}

static void worker_reload_policy(struct worker *w)
{
    struct ydoc_errors errs = {0};
    struct policy *p = policy_load(w->policy_path, w->cfg, &errs);
    if (!p) {
        for (size_t i = 0; i < errs.count; i++)
            log_error("policy_reload_failed", "%s", errs.lines[i]);
        log_error("policy_reload_failed", "keeping the current policy");
        w->stats.reloads_failed++;
    } else {
        /* in-flight jobs keep the policy they started with */
        policy_release(w->policy);
        w->policy = p;
        w->stats.reloads_ok++;
        log_info("policy_reloaded", "%s: %zu models, %zu routes", w->policy_path, p->nmodels,
                 p->nroutes);
    }
    ydoc_errors_release(&errs);
}

static void worker_begin_stop(struct worker *w, const char *why)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    w->stop_deadline_ms = loop_now_ms(w->loop) + (uint64_t)w->cfg->limits.shutdown_grace_ms;
    log_info("stopping", "%s: draining %zu in-flight messages (grace %lld ms)", why, w->njobs,
             (long long)w->cfg->limits.shutdown_grace_ms);
    consumer_stop_fetching(w->consumer);
}

static void worker_signal(struct loop_io *io, unsigned events)
{
    (void)events;
    struct worker *w = io->data;
    struct signalfd_siginfo si;
    while (read(w->signal_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            worker_reload_policy(w);
        } else if (w->stopping) {
            log_warn("exit_now", "second signal: exiting without draining");
            _exit(1);
        } else {
            worker_begin_stop(w, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        }
    }
}

/* Periodic: ends the loop when draining is over, or on idleness. */
static void worker_tick(struct loop_timer *t)
{
    struct worker *w = t->data;
    uint64_t now = loop_now_ms(w->loop);
    if (w->stopping) {
        if (w->njobs == 0 || now >= w->stop_deadline_ms) {
            loop_stop(w->loop);
            return;
        }
    } else if (w->exit_when_idle_ms) {
        /* idle means: owning partitions, and nothing to do */
        if (w->njobs > 0 || producer_pending(w->producer) > 0 ||
            consumer_assigned(w->consumer) == 0)
            w->idle_since_ms = now;
        else if (now - w->idle_since_ms >= w->exit_when_idle_ms)
            worker_begin_stop(w, "idle");
    }
    loop_timer_start(w->loop, t, WORKER_DRAIN_CHECK_MS);
}

/* /readyz: in the group with the cluster reachable, until the worker
 * begins to stop */
static int worker_ready(void *ctx, const char **why)
{
    const struct worker *w = ctx;
    if (w->stopping) {
        *why = "stopping: draining in-flight work";
        return 0;
    }
    return consumer_ready(w->consumer, why);
}

/* The start-up check's outcome: consume, or exit 1 saying why. */
struct worker_start {
    struct worker *w;
    int failed;
};

static void worker_probe_done(void *data, const struct kafka_probe_result *r)
{
    struct worker_start *s = data;
    struct worker *w = s->w;
    const char *servers = kafka_config_value(w->cfg, "bootstrap.servers", NULL);
    struct err e = {0};
    if (w->stopping)
        return;
    if (!r->reachable) {
        log_error("kafka_unreachable", "the Kafka cluster at bootstrap.servers \"%s\" did not "
                  "answer within startup_timeout_ms (%lld ms): %s; check bootstrap.servers, "
                  "that the brokers are running and that their listeners are reachable",
                  servers ? servers : "(not set)", (long long)w->cfg->limits.startup_timeout_ms,
                  r->error ? r->error : "no answer");
        goto fail;
    }
    for (size_t i = 0; i < r->nmissing; i++) {
        if (w->cfg->topics_create_missing)
            log_warn("topic_missing", "topic \"%s\" does not exist on the cluster at \"%s\"; "
                     "topics.create_missing is true: the broker creates it on first use, if "
                     "it allows auto-creation", r->missing[i], servers ? servers : "");
        else
            log_error("topic_missing", "topic \"%s\" does not exist on the cluster at \"%s\"; "
                      "create it, correct its name under topics:, or set "
                      "topics.create_missing: true", r->missing[i], servers ? servers : "");
    }
    if (r->nmissing && !w->cfg->topics_create_missing)
        goto fail;
    struct consumer_handlers handlers = {.message = dispatch_message};
    w->consumer = consumer_new(w->loop, w->cfg, &handlers, w, &e);
    if (!w->consumer) {
        log_error("start_failed", "%s", e.msg);
        goto fail;
    }
    log_info("started", "worker %s consuming %s (cluster checked in %lld ms)", w->worker_id,
             w->cfg->topic_requests, r->elapsed_ms);
    return;
fail:
    s->failed = 1;
    loop_stop(w->loop);
}

static int worker_keys(struct worker *w)
{
    int bad = 0;
    w->providers = calloc(w->cfg->nproviders ? w->cfg->nproviders : 1, sizeof *w->providers);
    if (!w->providers)
        return -1;
    for (size_t i = 0; i < w->cfg->nproviders; i++) {
        struct worker_provider *wp = &w->providers[i];
        wp->cfg = &w->cfg->providers[i];
        wp->ops = provider_ops_for(wp->cfg->type);
        wp->waiting_tail = &wp->waiting;
        const char *key = getenv(wp->cfg->api_key_env);
        if (!key || !*key) {
            int used = 0;
            for (size_t m = 0; m < w->policy->nmodels; m++)
                used |= strcmp(w->policy->models[m].provider, wp->cfg->name) == 0;
            if (used) {
                log_error("missing_api_key",
                          "provider %s: environment variable %s is not set", wp->cfg->name,
                          wp->cfg->api_key_env);
                bad = 1;
            }
            continue;
        }
        for (const char *k = key; *k; k++)
            if ((unsigned char)*k < 0x21 || *k == 0x7f) {
                /* a CR or LF would inject a header; the key is not shown */
                log_error("bad_api_key", "provider %s: the key in %s holds a control "
                          "character or space", wp->cfg->name, wp->cfg->api_key_env);
                bad = 1;
                break;
            }
        wp->api_key = strdup(key);
    }
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

int worker_run(const struct config *cfg, struct policy *policy, const char *policy_path,
               uint64_t exit_when_idle_ms)
{
    struct worker w = {.cfg = cfg, .policy = policy_retain(policy), .policy_path = policy_path,
                       .signal_fd = -1, .exit_when_idle_ms = exit_when_idle_ms,
                       .stats = {.started_ms = loop_wall_ms()}};
    struct loop_timer tick = {.cb = worker_tick, .data = &w};
    struct worker_start start = {.w = &w};
    struct kafka_probe *probe = NULL;
    struct err e = {0};
    int rc = 1;
    worker_id_init(&w);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
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
    if (cfg->metrics_listen) {
        struct metrics_handlers mh = {.render = stats_render, .ready = worker_ready};
        w.metrics = metrics_new(w.loop, cfg->metrics_listen, &mh, &w, &e);
        if (!w.metrics) {
            log_error("start_failed", "%s", e.msg);
            goto out;
        }
        log_info("metrics_listening", "http://%s/metrics", metrics_address(w.metrics));
    }
    /* the consumer is created when the cluster and the topics are there */
    probe = kafka_probe_start(w.loop, cfg, worker_probe_done, &start, &e);
    if (!probe) {
        log_error("start_failed", "%s", e.msg);
        goto out;
    }
    w.idle_since_ms = loop_now_ms(w.loop);
    loop_timer_start(w.loop, &tick, WORKER_DRAIN_CHECK_MS);
    if (loop_run(w.loop) < 0) {
        log_error("loop_failed", "epoll failed: %s", strerror(errno));
        goto out;
    }
    rc = start.failed ? 1 : 0;
out:
    kafka_probe_free(probe);
    if (w.loop)
        loop_timer_stop(w.loop, &tick);
    if (w.consumer) {
        w.stopping = 1;
        dispatch_abandon(&w);        /* unfinished: redone by the next owner */
        size_t lost = producer_flush(w.producer, 10000); /* acks finish jobs */
        if (lost)
            log_warn("unacknowledged_outputs", "%zu outputs not acknowledged; their inputs stay "
                     "uncommitted", lost);
        consumer_commit_now(w.consumer);
    }
    /* the producer goes first: a late acknowledgement reaches the consumer */
    producer_free(w.producer, 0);
    consumer_free(w.consumer, 10000);
    while (w.jobs) {
        w.jobs->outputs_pending = 0;
        dispatch_abandon(&w);
    }
    metrics_free(w.metrics);
    http_free(w.http);
    log_info("stopped", "received %llu, results ok %llu, error %llu, dead letters %llu, cost "
             "records %llu (%llu nUSD)",
             (unsigned long long)w.stats.received, (unsigned long long)w.stats.results_ok,
             (unsigned long long)w.stats.results_error,
             (unsigned long long)w.stats.dead_letters, (unsigned long long)w.stats.cost_records,
             (unsigned long long)w.stats.cost_nusd);
    if (w.signals.events)
        loop_io_set(w.loop, &w.signals, 0);
    if (w.signal_fd >= 0)
        close(w.signal_fd);
    for (size_t i = 0; w.providers && i < cfg->nproviders; i++)
        free(w.providers[i].api_key);
    free(w.providers);
    policy_release(w.policy);
    stats_release(&w.stats);
    loop_free(w.loop);
    return rc;
}

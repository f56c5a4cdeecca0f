/*
 * stats: counting and the Prometheus rendering. Names follow Prometheus'
 * conventions: counters end in _total, units in the name (_seconds,
 * _nanousd), labels for what an operator slices by (model, provider,
 * outcome, partition).
 */
#include "stats.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "job.h"

/* the schemas' closed sets; the last is what any other code counts as */
static const char *const stats_result_codes[STATS_RESULT_CODES] = {
    "no_route",           "over_budget",
    "deadline_exceeded",  "candidates_exhausted",
    "provider_rejected",  "result_too_large",
    "rate_limited",       "circuit_open",
    "reservation_failed", "other"};
static const char *const stats_dead_letter_codes[STATS_DEAD_LETTER_CODES] = {
    "invalid_json", "invalid_request",      "too_large",          "too_deep",
    "invalid_utf8", "result_undeliverable", "cost_undeliverable", "other"};

static size_t stats_code_index(const char *const *codes, size_t n, const char *code)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (code && strcmp(codes[i], code) == 0)
            return i;
    return n - 1;
}

static const char *const stats_outcome_names[OUTCOME_COUNT] = {
    [OUTCOME_OK] = "ok",
    [OUTCOME_RATE_LIMITED] = "rate_limited",
    [OUTCOME_SERVER_ERROR] = "server_error",
    [OUTCOME_CLIENT_ERROR] = "client_error",
    [OUTCOME_MALFORMED] = "malformed_reply",
    [OUTCOME_TIMEOUT] = "timeout",
    [OUTCOME_TRANSPORT] = "transport_error",
};

/* upper bounds in ms, and the same as Prometheus' `le` in seconds */
static const uint64_t stats_latency_ms[STATS_LATENCY_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000};
static const char *const stats_latency_le[STATS_LATENCY_BUCKETS] = {
    "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "120", "300"};

static enum stats_outcome stats_outcome_of(const struct attempt *a)
{
    if (a->status == ATTEMPT_OK)
        return OUTCOME_OK;
    if (a->status == ATTEMPT_TIMEOUT)
        return OUTCOME_TIMEOUT;
    if (a->http_status == 0)
        return OUTCOME_TRANSPORT;
    if (a->http_status == 429)
        return OUTCOME_RATE_LIMITED;
    if (a->http_status >= 500)
        return OUTCOME_SERVER_ERROR;
    if (a->http_status >= 400)
        return OUTCOME_CLIENT_ERROR;
    return OUTCOME_MALFORMED;
}

/* The model's counters, added at its first use. NULL when out of memory
 * (the count is then lost, never the work). */
static struct stats_model *stats_model_for(struct stats *s, const struct policy_model *m)
{
    for (size_t i = 0; i < s->nmodels; i++)
        if (strcmp(s->models[i].name, m->name) == 0 &&
            strcmp(s->models[i].provider, m->provider) == 0)
            return &s->models[i];
    struct stats_model *models = realloc(s->models, (s->nmodels + 1) * sizeof *models);
    if (!models)
        return NULL;
    s->models = models;
    struct stats_model *sm = &models[s->nmodels];
    *sm = (struct stats_model){.name = strdup(m->name), .provider = strdup(m->provider)};
    if (!sm->name || !sm->provider) {
        free(sm->name);
        free(sm->provider);
        return NULL;
    }
    s->nmodels++;
    return sm;
}

void stats_attempt(struct stats *s, struct stats_provider *sp, const struct policy_model *m,
                   const struct attempt *a)
{
    struct stats_model *sm = stats_model_for(s, m);
    if (sm)
        sm->attempts[stats_outcome_of(a)]++;
    size_t b = 0;
    while (b < STATS_LATENCY_BUCKETS && a->latency_ms > stats_latency_ms[b])
        b++;
    if (b < STATS_LATENCY_BUCKETS)
        sp->latency_buckets[b]++;
    sp->latency_count++;
    sp->latency_sum_ms += a->latency_ms;
}

void stats_cost(struct stats *s, const struct policy_model *m, const struct attempt *a)
{
    s->cost_records++;
    s->cost_nusd += a->cost_nusd;
    struct stats_model *sm = stats_model_for(s, m);
    if (!sm)
        return;
    for (size_t c = 0; c < COST_NCAT; c++)
        sm->tokens[c] += a->usage.tokens[c];
    sm->cost_nusd += a->cost_nusd;
    sm->cost_records++;
}

/* The tenant's counters: its own while fewer than max are tracked, else
 * (or out of memory) "other"'s. */
static struct stats_tenant *stats_tenant_for(struct stats *s, const char *name, size_t max)
{
    for (size_t i = 0; i < s->ntenants; i++)
        if (strcmp(s->tenants[i].name, name) == 0)
            return &s->tenants[i];
    if (s->ntenants >= max || strcmp(name, STATS_TENANT_OTHER) == 0)
        return &s->tenant_other;
    struct stats_tenant *t = realloc(s->tenants, (s->ntenants + 1) * sizeof *t);
    if (!t)
        return &s->tenant_other;
    s->tenants = t;
    t = &t[s->ntenants];
    *t = (struct stats_tenant){.name = strdup(name)};
    if (!t->name)
        return &s->tenant_other;
    s->ntenants++;
    return t;
}

void stats_result(struct stats *s, const struct job *job, size_t max_tenants)
{
    if (job->ok)
        s->results_ok++;
    else {
        s->results_error++;
        s->results_by_code[stats_code_index(stats_result_codes, STATS_RESULT_CODES,
                                            job->error_code)]++;
    }
    if (max_tenants == 0)
        return;
    const char *name = job->req && job->req->tenant ? job->req->tenant : "";
    struct stats_tenant *t = stats_tenant_for(s, name, max_tenants);
    if (job->ok)
        t->results_ok++;
    else
        t->results_error++;
    for (size_t i = 0; i < job->nattempts; i++)
        if (job->attempts[i].billable)
            t->cost_nusd += job->attempts[i].cost_nusd;
}

void stats_result_replaced(struct stats *s, const struct job *job, const char *code,
                           size_t max_tenants)
{
    size_t was = stats_code_index(stats_result_codes, STATS_RESULT_CODES, job->error_code);
    if (job->ok && s->results_ok > 0) {
        s->results_ok--;
        s->results_error++;
    } else if (!job->ok && s->results_by_code[was] > 0) {
        s->results_by_code[was]--;
    } else {
        return; /* not counted: nothing to move */
    }
    s->results_by_code[stats_code_index(stats_result_codes, STATS_RESULT_CODES, code)]++;
    if (max_tenants == 0 || !job->ok)
        return;
    struct stats_tenant *t =
        stats_tenant_for(s, job->req && job->req->tenant ? job->req->tenant : "", max_tenants);
    if (t->results_ok > 0) {
        t->results_ok--;
        t->results_error++;
    }
}

/* a reservation's acknowledgement: milliseconds, before a call of seconds */
static const uint64_t stats_reserve_ms[STATS_RESERVE_BUCKETS] = {1,  2,   5,   10,   25,
                                                                 50, 100, 250, 1000, 10000};
static const char *const stats_reserve_le[STATS_RESERVE_BUCKETS] = {
    "0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "1", "10"};
static const char *const stats_reserve_failure_names[STATS_RESERVE_FAILURES] = {
    [STATS_RESERVE_REFUSED] = "refused",
    [STATS_RESERVE_TIMEOUT] = "timeout",
    [STATS_RESERVE_DEADLINE] = "deadline",
};

void stats_reserve_wait(struct stats *s, uint64_t ms)
{
    s->reserve_wait_count++;
    s->reserve_wait_sum_ms += ms;
    for (size_t i = 0; i < STATS_RESERVE_BUCKETS; i++)
        if (ms <= stats_reserve_ms[i]) {
            s->reserve_wait_buckets[i]++;
            break;
        }
}

void stats_dead_letter(struct stats *s, const char *code)
{
    s->dead_letters++;
    s->dead_letters_by_code[stats_code_index(stats_dead_letter_codes, STATS_DEAD_LETTER_CODES,
                                             code)]++;
}

void stats_release(struct stats *s)
{
    for (size_t i = 0; i < s->nmodels; i++) {
        free(s->models[i].name);
        free(s->models[i].provider);
    }
    free(s->models);
    s->models = NULL;
    s->nmodels = 0;
    for (size_t i = 0; i < s->ntenants; i++)
        free(s->tenants[i].name);
    free(s->tenants);
    s->tenants = NULL;
    s->ntenants = 0;
}

int stats_parse_proc_stat(const char *text, struct stats_proc *out)
{
    const char *p = text ? strrchr(text, ')') : NULL;
    if (!p)
        return -1;
    p++;
    unsigned long long v[25] = {0};
    /* after the name: field 3 (the state) to 24 (rss), space-separated */
    for (int field = 3; field <= 24; field++) {
        while (*p == ' ')
            p++;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\n')
            p++;
        if (p == start)
            return -1;
        if (field == 14 || field == 15 || field >= 22) {
            char *end;
            v[field] = strtoull(start, &end, 10);
            if (end != p || *start == '-')
                return -1;
        }
    }
    *out = (struct stats_proc){.utime_ticks = v[14],
                               .stime_ticks = v[15],
                               .start_ticks = v[22],
                               .vsize_bytes = v[23],
                               .rss_pages = v[24]};
    return 0;
}

static void stats_family(struct metrics_buf *b, const char *name, const char *type,
                         const char *help)
{
    metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void stats_one(struct metrics_buf *b, const char *name, const char *type, const char *help,
                      unsigned long long v)
{
    stats_family(b, name, type, help);
    metrics_printf(b, "%s %llu\n", name, v);
}

/* name{label="value"} v, the value escaped */
static void stats_labelled(struct metrics_buf *b, const char *name, const char *label,
                           const char *value, unsigned long long v)
{
    metrics_printf(b, "%s{%s=\"", name, label);
    metrics_label(b, value);
    metrics_printf(b, "\"} %llu\n", v);
}

static void stats_render_partitions(const struct stats_view *v, struct metrics_buf *b)
{
    const struct consumer_partition_info *parts = v->partitions;
    size_t n = v->npartitions;
    static const struct {
        const char *name, *help;
    } fam[] = {
        {"switchyard_partition_paused",
         "1 while the partition is paused by the in-flight caps or a full model queue."},
        {"switchyard_partition_in_flight",
         "Messages received from the partition and not finished."},
        {"switchyard_partition_committed_offset",
         "The group's committed offset: this worker's last commit, else the one it found at "
         "assignment; -1 when the group has none."},
        {"switchyard_partition_position_offset",
         "The first offset not finished: what the next commit says."},
        {"switchyard_partition_high_watermark_offset",
         "The partition's log end, as of the last fetch."},
        {"switchyard_partition_lag_messages",
         "Messages between the position and the log end: waiting or in flight."},
        {"switchyard_partition_stalled",
         "1 while the partition holds work and its commit has not moved for "
         "limits.stalled_partition_ms."},
        {"switchyard_partition_paused_for_rate_limit",
         "1 while the partition is paused because its messages wait in a model queue that "
         "is full (queue_per_model): the backlog waits in Kafka."},
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        stats_family(b, fam[f].name, "gauge", fam[f].help);
        for (size_t i = 0; i < n; i++) {
            const struct consumer_partition_info *p = &parts[i];
            long long value;
            switch (f) {
            case 0:
                value = p->paused;
                break;
            case 1:
                value = (long long)p->in_flight;
                break;
            case 2:
                value = p->committed;
                break;
            case 3:
                value = p->position;
                break;
            case 4:
                value = p->high_watermark;
                break;
            case 6:
                value = p->stalled != 0;
                break;
            case 7:
                value = p->pressed != 0;
                break;
            default:
                if (p->high_watermark < 0 || p->position < 0)
                    continue; /* not known yet: no sample rather than a wrong one */
                value = p->high_watermark > p->position ? p->high_watermark - p->position : 0;
                break;
            }
            if (value < 0 && f >= 3 && f <= 5)
                continue; /* the committed offset is shown for every partition, -1 too */
            metrics_printf(b, "%s{topic=\"", fam[f].name);
            metrics_label(b, v->topic_requests);
            metrics_printf(b, "\",partition=\"%d\"} %lld\n", (int)p->id, value);
        }
    }
    stats_family(b, "switchyard_partition_last_commit_age_seconds", "gauge",
                 "Seconds since the broker acknowledged this worker's last commit of the "
                 "partition (since the assignment when none): an idle partition ages too, so "
                 "read it beside the lag.");
    for (size_t i = 0; i < n; i++) {
        int64_t at = parts[i].last_commit_ms;
        if (at <= 0)
            continue;
        int64_t age = v->now_ms > at ? v->now_ms - at : 0;
        metrics_printf(b, "switchyard_partition_last_commit_age_seconds{topic=\"");
        metrics_label(b, v->topic_requests);
        metrics_printf(b, "\",partition=\"%d\"} %lld.%03lld\n", (int)parts[i].id,
                       (long long)(age / 1000), (long long)(age % 1000));
    }
}

static void stats_render_providers(const struct stats_view *v, struct metrics_buf *b)
{
    stats_family(b, "switchyard_provider_in_flight", "gauge",
                 "Calls running on the provider's connections.");
    for (size_t i = 0; i < v->nproviders; i++)
        stats_labelled(b, "switchyard_provider_in_flight", "provider", v->providers[i].name,
                       v->providers[i].in_flight);
    stats_family(b, "switchyard_provider_queued", "gauge",
                 "Calls waiting for one of the provider's max_connections.");
    for (size_t i = 0; i < v->nproviders; i++)
        stats_labelled(b, "switchyard_provider_queued", "provider", v->providers[i].name,
                       v->providers[i].queued);
    stats_family(b, "switchyard_provider_latency_seconds", "histogram",
                 "Duration of provider calls, from request to the last byte or the error.");
    for (size_t i = 0; i < v->nproviders; i++) {
        const struct stats_provider *sp = v->providers[i].counts;
        const char *name = v->providers[i].name;
        unsigned long long cum = 0;
        for (size_t k = 0; k <= STATS_LATENCY_BUCKETS; k++) {
            cum += k < STATS_LATENCY_BUCKETS ? sp->latency_buckets[k] : 0;
            metrics_printf(b, "switchyard_provider_latency_seconds_bucket{provider=\"");
            metrics_label(b, name);
            metrics_printf(b, "\",le=\"%s\"} %llu\n",
                           k < STATS_LATENCY_BUCKETS ? stats_latency_le[k] : "+Inf",
                           k < STATS_LATENCY_BUCKETS ? cum : (unsigned long long)sp->latency_count);
        }
        metrics_printf(b, "switchyard_provider_latency_seconds_sum{provider=\"");
        metrics_label(b, name);
        metrics_printf(b, "\"} %llu.%03llu\n", (unsigned long long)(sp->latency_sum_ms / 1000),
                       (unsigned long long)(sp->latency_sum_ms % 1000));
        stats_labelled(b, "switchyard_provider_latency_seconds_count", "provider", name,
                       sp->latency_count);
    }
}

static void stats_lane_labels(struct metrics_buf *b, const char *name,
                              const struct stats_lane_view *l)
{
    metrics_printf(b, "%s{provider=\"", name);
    metrics_label(b, l->provider);
    metrics_printf(b, "\",model=\"");
    metrics_label(b, l->model);
    metrics_printf(b, "\"");
}

static void stats_render_lanes(const struct stats_view *v, struct metrics_buf *b)
{
    static const char *const dims[4] = {"requests", "tokens", "input_tokens", "output_tokens"};
    static const char *const states[3] = {"closed", "open", "half_open"};
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"switchyard_model_queue", "gauge", "Calls waiting, in order, for the model's rate limit."},
        {"switchyard_model_queue_full", "gauge",
         "1 while the model's queue is full (queue_per_model) and the partitions feeding it "
         "are paused."},
        {"switchyard_rate_limited_total", "counter",
         "Provider calls answered 429 (rate limited): backpressure, not failures."},
        {"switchyard_rate_limit_waits_total", "counter",
         "Calls that waited in the model's queue for its rate limit."},
        {"switchyard_circuit_skips_total", "counter",
         "Candidates skipped without a call because the model's circuit was open."},
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        stats_family(b, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < v->nlanes; i++) {
            const struct stats_lane_view *l = &v->lanes[i];
            unsigned long long x = f == 0   ? l->waiting
                                   : f == 1 ? (unsigned long long)l->full
                                   : f == 2 ? l->rate_limited
                                   : f == 3 ? l->waited
                                            : l->circuit_skips;
            stats_lane_labels(b, fam[f].name, l);
            metrics_printf(b, "} %llu\n", x);
        }
    }
    stats_family(b, "switchyard_rate_limit_per_minute", "gauge",
                 "The model's rate in force, per minute, by dimension: the least of what is "
                 "configured, what the provider's headers report, and (requests) what AIMD "
                 "allows after 429s. Absent: no limit known.");
    for (size_t i = 0; i < v->nlanes; i++)
        for (size_t d = 0; d < 4; d++) {
            if (v->lanes[i].rate[d] <= 0)
                continue;
            stats_lane_labels(b, "switchyard_rate_limit_per_minute", &v->lanes[i]);
            metrics_printf(b, ",dimension=\"%s\"} %.0f\n", dims[d], v->lanes[i].rate[d]);
        }
    stats_family(b, "switchyard_circuit_state", "gauge",
                 "The model's circuit breaker: 1 for the state it is in.");
    for (size_t i = 0; i < v->nlanes; i++)
        for (int st = 0; st < 3; st++) {
            stats_lane_labels(b, "switchyard_circuit_state", &v->lanes[i]);
            metrics_printf(b, ",state=\"%s\"} %d\n", states[st], v->lanes[i].circuit_state == st);
        }
    stats_family(b, "switchyard_circuit_transitions_total", "counter",
                 "Circuit breaker transitions, by the state entered.");
    for (size_t i = 0; i < v->nlanes; i++)
        for (int st = 0; st < 3; st++) {
            stats_lane_labels(b, "switchyard_circuit_transitions_total", &v->lanes[i]);
            metrics_printf(b, ",to=\"%s\"} %llu\n", states[st],
                           (unsigned long long)v->lanes[i].transitions[st]);
        }
}

/* nUSD as a decimal number of USD: exact, no float rounding */
static void stats_usd(struct metrics_buf *b, uint64_t nusd)
{
    metrics_printf(b, "%llu.%09llu\n", (unsigned long long)(nusd / 1000000000u),
                   (unsigned long long)(nusd % 1000000000u));
}

static void stats_model_labels(struct metrics_buf *b, const char *name,
                               const struct stats_model *sm)
{
    metrics_printf(b, "%s{model=\"", name);
    metrics_label(b, sm->name);
    metrics_printf(b, "\",provider=\"");
    metrics_label(b, sm->provider);
    metrics_printf(b, "\"");
}

static void stats_render_models(const struct stats *s, struct metrics_buf *b)
{
    stats_family(b, "switchyard_model_attempts_total", "counter",
                 "Provider calls by policy model and how they ended.");
    for (size_t i = 0; i < s->nmodels; i++)
        for (size_t o = 0; o < OUTCOME_COUNT; o++) {
            stats_model_labels(b, "switchyard_model_attempts_total", &s->models[i]);
            metrics_printf(b, ",outcome=\"%s\"} %llu\n", stats_outcome_names[o],
                           (unsigned long long)s->models[i].attempts[o]);
        }
    stats_family(b, "switchyard_model_tokens_total", "counter",
                 "Billed tokens by policy model and category (the categories are disjoint).");
    for (size_t i = 0; i < s->nmodels; i++)
        for (size_t c = 0; c < COST_NCAT; c++) {
            stats_model_labels(b, "switchyard_model_tokens_total", &s->models[i]);
            metrics_printf(b, ",category=\"%s\"} %llu\n", cost_category_name((enum cost_category)c),
                           (unsigned long long)s->models[i].tokens[c]);
        }
    stats_family(b, "switchyard_model_cost_nanousd_total", "counter",
                 "Cost of the cost records produced, in nano-USD (1e-9 USD).");
    for (size_t i = 0; i < s->nmodels; i++) {
        stats_model_labels(b, "switchyard_model_cost_nanousd_total", &s->models[i]);
        metrics_printf(b, "} %llu\n", (unsigned long long)s->models[i].cost_nusd);
    }
    stats_family(b, "switchyard_model_cost_usd_total", "counter",
                 "Cost of the cost records produced, in USD (the nano-USD count / 1e9).");
    for (size_t i = 0; i < s->nmodels; i++) {
        stats_model_labels(b, "switchyard_model_cost_usd_total", &s->models[i]);
        metrics_printf(b, "} ");
        stats_usd(b, s->models[i].cost_nusd);
    }
    stats_family(b, "switchyard_model_cost_records_total", "counter",
                 "Cost records produced (one per billable attempt).");
    for (size_t i = 0; i < s->nmodels; i++) {
        stats_model_labels(b, "switchyard_model_cost_records_total", &s->models[i]);
        metrics_printf(b, "} %llu\n", (unsigned long long)s->models[i].cost_records);
    }
}

/* The process_* families of Prometheus' client libraries, from
 * /proc/self: left out when /proc cannot be read. */
static void stats_render_process(struct metrics_buf *b)
{
    char text[1024];
    struct stats_proc p;
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = '\0';
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    struct timespec boot, wall;
    /* a whole stat line is far shorter than the buffer: a full one is not trusted */
    if (n == 0 || n == sizeof text - 1 || stats_parse_proc_stat(text, &p) < 0 || ticks <= 0 ||
        page <= 0 || clock_gettime(CLOCK_BOOTTIME, &boot) < 0 ||
        clock_gettime(CLOCK_REALTIME, &wall) < 0)
        return;
    double since_boot = (double)boot.tv_sec + (double)boot.tv_nsec / 1e9;
    double now = (double)wall.tv_sec + (double)wall.tv_nsec / 1e9;
    double start = now - since_boot + (double)p.start_ticks / (double)ticks;
    stats_family(b, "process_cpu_seconds_total", "counter",
                 "Total user and system CPU time spent in seconds.");
    metrics_printf(b, "process_cpu_seconds_total %.2f\n",
                   (double)(p.utime_ticks + p.stime_ticks) / (double)ticks);
    stats_one(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
              (unsigned long long)p.rss_pages * (unsigned long long)page);
    stats_one(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
              (unsigned long long)p.vsize_bytes);
    stats_family(b, "process_start_time_seconds", "gauge",
                 "Start time of the process since unix epoch in seconds.");
    metrics_printf(b, "process_start_time_seconds %.2f\n", start);
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        unsigned long long fds = 0;
        for (const struct dirent *e; (e = readdir(d));)
            fds += e->d_name[0] != '.';
        closedir(d);
        stats_one(b, "process_open_fds", "gauge", "Number of open file descriptors.",
                  fds ? fds - 1 : 0); /* not the one reading the directory */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        stats_one(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                  (unsigned long long)rl.rlim_cur);
}

static void stats_render_codes(const struct stats_view *v, struct metrics_buf *b)
{
    const struct stats *s = v->stats;
    stats_family(b, "switchyard_results_total", "counter",
                 "Results produced, by status; error results also by their error code "
                 "(result.schema.json's codes).");
    stats_labelled(b, "switchyard_results_total", "status", "ok", s->results_ok);
    for (size_t i = 0; i < STATS_RESULT_CODES; i++)
        metrics_printf(b, "switchyard_results_total{status=\"error\",code=\"%s\"} %llu\n",
                       stats_result_codes[i], (unsigned long long)s->results_by_code[i]);
    stats_family(b, "switchyard_dead_letters_total", "counter",
                 "Invalid messages sent to the dead-letter topic, by code "
                 "(dead_letter.schema.json's codes).");
    for (size_t i = 0; i < STATS_DEAD_LETTER_CODES; i++)
        stats_labelled(b, "switchyard_dead_letters_total", "code", stats_dead_letter_codes[i],
                       s->dead_letters_by_code[i]);
}

static void stats_render_tenants(const struct stats *s, struct metrics_buf *b)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"switchyard_tenant_results_total", "counter",
         "Results produced, by the request's tenant (\"\" none; \"other\" past "
         "metrics.max_tenants) and status."},
        {"switchyard_tenant_cost_usd_total", "counter",
         "Cost of the billable attempts of the tenant's results, in USD."},
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        stats_family(b, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i <= s->ntenants; i++) {
            const struct stats_tenant *t = i < s->ntenants ? &s->tenants[i] : &s->tenant_other;
            const char *name = i < s->ntenants ? t->name : STATS_TENANT_OTHER;
            for (int st = 0; st < (f == 0 ? 2 : 1); st++) {
                metrics_printf(b, "%s{tenant=\"", fam[f].name);
                metrics_label(b, name);
                if (f == 0)
                    metrics_printf(b, "\",status=\"%s\"} %llu\n", st ? "error" : "ok",
                                   (unsigned long long)(st ? t->results_error : t->results_ok));
                else {
                    metrics_printf(b, "\"} ");
                    stats_usd(b, t->cost_nusd);
                }
            }
        }
    }
}

static void stats_render_reservations(const struct stats *s, struct metrics_buf *b)
{
    stats_one(b, "switchyard_reservations_total", "counter",
              "Reserved cost records published before provider calls (costs.reserve).",
              s->reservations);
    stats_one(b, "switchyard_reservations_settled_total", "counter",
              "Settled cost records produced for reserved calls (billable or not).",
              s->reservations_settled);
    stats_family(b, "switchyard_reservations_failed_total", "counter",
                 "Reservations that did not lead to their call, by reason: refused by the "
                 "cost topic, not acknowledged in time, the request's deadline passed.");
    for (size_t i = 0; i < STATS_RESERVE_FAILURES; i++)
        stats_labelled(b, "switchyard_reservations_failed_total", "reason",
                       stats_reserve_failure_names[i], s->reservations_failed[i]);
    stats_family(b, "switchyard_reservation_wait_seconds", "histogram",
                 "Time from publishing a reservation to its acknowledgement (or refusal).");
    uint64_t cum = 0;
    for (size_t i = 0; i < STATS_RESERVE_BUCKETS; i++) {
        cum += s->reserve_wait_buckets[i];
        metrics_printf(b, "switchyard_reservation_wait_seconds_bucket{le=\"%s\"} %llu\n",
                       stats_reserve_le[i], (unsigned long long)cum);
    }
    metrics_printf(b, "switchyard_reservation_wait_seconds_bucket{le=\"+Inf\"} %llu\n",
                   (unsigned long long)s->reserve_wait_count);
    metrics_printf(b, "switchyard_reservation_wait_seconds_sum %llu.%03llu\n",
                   (unsigned long long)(s->reserve_wait_sum_ms / 1000),
                   (unsigned long long)(s->reserve_wait_sum_ms % 1000));
    metrics_printf(b, "switchyard_reservation_wait_seconds_count %llu\n",
                   (unsigned long long)s->reserve_wait_count);
}

void stats_render(const struct stats_view *v, struct metrics_buf *b)
{
    const struct stats *s = v->stats;
    stats_family(b, "switchyard_info", "gauge", "The worker's version and id.");
    metrics_printf(b, "switchyard_info{version=\"%s\",worker_id=\"", v->version);
    metrics_label(b, v->worker_id);
    metrics_printf(b, "\"} 1\n");
    stats_family(b, "switchyard_start_time_seconds", "gauge",
                 "When the worker started, in seconds since the epoch.");
    metrics_printf(b, "switchyard_start_time_seconds %lld.%03lld\n",
                   (long long)(s->started_ms / 1000), (long long)(s->started_ms % 1000));
    stats_one(b, "switchyard_ready", "gauge",
              "1 while /readyz answers 200: in the group, the cluster reachable, not stopping.",
              (unsigned long long)v->ready);
    stats_one(b, "switchyard_kafka_up", "gauge",
              "1 while the consumer can reach the cluster (no all-brokers-down since the last "
              "broker contact).",
              (unsigned long long)v->kafka_up);
    stats_one(b, "switchyard_group_joined", "gauge",
              "1 while the worker is in its consumer group (it holds an assignment, maybe "
              "empty).",
              (unsigned long long)v->in_group);
    stats_one(b, "switchyard_messages_received_total", "counter",
              "Request messages taken from the requests topic.", s->received);
    stats_one(b, "switchyard_messages_skipped_total", "counter",
              "Messages skipped because a previous owner had finished them.", v->skipped);
    stats_render_codes(v, b);
    stats_one(b, "switchyard_cost_records_total", "counter", "Cost records produced.",
              s->cost_records);
    stats_one(b, "switchyard_retries_total", "counter",
              "Calls retried on the same candidate after a transient failure.", s->retries);
    stats_one(b, "switchyard_fallbacks_total", "counter",
              "Moves to the next candidate of a route: the last failed, was skipped for an open "
              "circuit, or was rate limited past what the request could wait.",
              s->fallbacks);
    stats_one(b, "switchyard_jobs_abandoned_total", "counter",
              "Messages dropped unfinished while stopping (the next owner redoes them).",
              v->abandoned);
    stats_one(b, "switchyard_outputs_replaced_total", "counter",
              "Outputs the broker refused for good, replaced by a deliverable form "
              "(result_too_large, a bounded dead letter).",
              v->outputs_replaced);
    stats_one(b, "switchyard_outputs_undeliverable_total", "counter",
              "Outputs no form of which the broker accepted (the worker stops).",
              v->outputs_undeliverable);
    stats_one(b, "switchyard_reply_topic_results_total", "counter",
              "Results sent to the request's own kafka_replyTopic (on reply.reply_topics).",
              v->reply_topic_results);
    stats_one(b, "switchyard_reply_topics_refused_total", "counter",
              "Requests whose kafka_replyTopic is not on reply.reply_topics: their result went "
              "to the results topic.",
              v->reply_topics_refused);
    stats_one(b, "switchyard_reply_headers_skipped_total", "counter",
              "Headers named in reply.copy_headers too long (over 1 KiB) to copy onto an output.",
              v->reply_headers_skipped);
    stats_family(b, "switchyard_policy_reloads_total", "counter",
                 "Policy reloads on SIGHUP, by result (failed: the old policy stays).");
    stats_labelled(b, "switchyard_policy_reloads_total", "result", "ok", s->reloads_ok);
    stats_labelled(b, "switchyard_policy_reloads_total", "result", "failed", s->reloads_failed);
    stats_one(b, "switchyard_jobs_in_flight", "gauge",
              "Messages being worked on, or waiting for their outputs' acknowledgements.",
              v->jobs_in_flight);
    stats_one(b, "switchyard_producer_unacknowledged", "gauge",
              "Outputs queued or sent and not yet acknowledged by the broker.",
              v->producer_unacknowledged);
    stats_one(b, "switchyard_stopping", "gauge", "1 while the worker drains to stop.",
              (unsigned long long)v->stopping);
    stats_one(b, "switchyard_partitions_assigned", "gauge",
              "Partitions of the requests topic this worker owns.", v->partitions_assigned);
    unsigned long long paused = 0;
    for (size_t i = 0; i < v->npartitions; i++)
        paused += v->partitions[i].paused != 0;
    stats_one(b, "switchyard_partitions_paused", "gauge",
              "Assigned partitions paused now (in-flight caps, a full model queue).", paused);
    stats_render_reservations(s, b);
    stats_render_partitions(v, b);
    stats_render_providers(v, b);
    stats_render_lanes(v, b);
    stats_render_models(s, b);
    if (v->tenant_label)
        stats_render_tenants(s, b);
    if (v->process)
        stats_render_process(b);
}

/*
 * stats: the /proc/self/stat parser (a command name with spaces and
 * parentheses, short and negative fields refused), and the rendering of
 * what stats_result and stats_dead_letter counted: error results by code
 * (an unknown code as "other"), dead letters by code, the USD counters as
 * exact decimals of the nano-USD ones, the tenant bound (the rest, and a
 * tenant named "other", under "other"), a committed-offset series for a
 * partition with nothing committed, the last-commit age, and the stalled
 * gauge (1 for the stalled partition only, 0 for a paused one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "job.h"
#include "stats.h"

static void test_proc_stat(void)
{
    struct stats_proc p = {0};
    const char *line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194304 2000 0 0 0 "
                       "150 25 0 0 20 0 3 0 987654 123456789 3210 18446744073709551615 1 1 0\n";
    ok(stats_parse_proc_stat(line, &p) == 0, "a stat line with ') ' in the name parses");
    ok(p.utime_ticks == 150 && p.stime_ticks == 25, "utime and stime (%llu %llu)",
       (unsigned long long)p.utime_ticks, (unsigned long long)p.stime_ticks);
    ok(p.start_ticks == 987654 && p.vsize_bytes == 123456789 && p.rss_pages == 3210,
       "starttime, vsize, rss (%llu %llu %llu)", (unsigned long long)p.start_ticks,
       (unsigned long long)p.vsize_bytes, (unsigned long long)p.rss_pages);
    ok(stats_parse_proc_stat("4242 (x) S 1 2 3", &p) < 0, "a short line is refused");
    ok(stats_parse_proc_stat("4242 no name here", &p) < 0, "a line without the name is refused");
    ok(stats_parse_proc_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 -5 0 0 0 20 0 1 0 1 1 1", &p) < 0,
       "a negative CPU time is refused");
    ok(stats_parse_proc_stat(NULL, &p) < 0, "NULL is refused");
}

static int has(const struct metrics_buf *b, const char *line)
{
    return b->data && strstr(b->data, line) != NULL;
}

static void result(struct stats *s, int okay, const char *code, const char *tenant, uint64_t nusd,
                   size_t max)
{
    struct request req = {.tenant = tenant};
    struct attempt a = {.billable = nusd > 0, .cost_nusd = nusd};
    struct job job = {.ok = okay, .req = &req, .attempts = &a, .nattempts = 1};
    snprintf(job.error_code, sizeof job.error_code, "%s", code ? code : "");
    stats_result(s, &job, max);
}

static void test_render(void)
{
    struct stats s = {0};
    result(&s, 1, NULL, "acme", 1234567891, 2);
    result(&s, 0, "circuit_open", "acme", 0, 2);
    result(&s, 0, "weird_new_code", "globex", 5, 2);
    result(&s, 1, NULL, "initech", 7, 2); /* the third: "other" */
    result(&s, 1, NULL, "other", 1, 2);   /* a tenant named other is not tracked apart */
    result(&s, 1, NULL, NULL, 0, 2);      /* no tenant: "other" too, past the bound */
    /* an ok result replaced by result_too_large moves to that code */
    struct request big_req = {.tenant = "acme"};
    struct job big = {.ok = 1, .req = &big_req};
    result(&s, 1, NULL, "acme", 0, 2);
    stats_result_replaced(&s, &big, "result_too_large", 2);
    stats_dead_letter(&s, "invalid_json");
    stats_dead_letter(&s, "invalid_json");
    stats_dead_letter(&s, "something_else");
    struct policy_model m = {.name = "mini", .provider = "openai"};
    struct attempt a = {.billable = 1, .cost_nusd = 2000000001};
    stats_cost(&s, &m, &a);
    struct consumer_partition_info parts[3] = {
        {.id = 0, .committed = -1, .position = 0, .high_watermark = 0, .last_commit_ms = 1000},
        {.id = 1,
         .committed = 17,
         .position = 17,
         .high_watermark = 20,
         .paused = 1,
         .last_commit_ms = 0},
        /* holds work and its commit has not moved for stalled_partition_ms */
        {.id = 2,
         .committed = 5,
         .position = 5,
         .high_watermark = 9,
         .in_flight = 4,
         .stalled = 1,
         .stalled_ms = 130000,
         .last_commit_ms = 1000},
    };
    struct stats_view v = {.worker_id = "w",
                           .version = "0",
                           .stats = &s,
                           .now_ms = 3500,
                           .tenant_label = 1,
                           .topic_requests = "req",
                           .partitions = parts,
                           .npartitions = 3};
    struct metrics_buf b = {0};
    stats_render(&v, &b);
    ok(!b.failed, "rendered");
    ok(has(&b, "switchyard_results_total{status=\"ok\"} 4\n"), "ok results");
    ok(has(&b, "switchyard_results_total{status=\"error\",code=\"circuit_open\"} 1\n") &&
           has(&b, "switchyard_results_total{status=\"error\",code=\"other\"} 1\n") &&
           has(&b, "switchyard_results_total{status=\"error\",code=\"no_route\"} 0\n") &&
           has(&b, "switchyard_results_total{status=\"error\",code=\"result_too_large\"} 1\n") &&
           s.results_error == 3,
       "errors by code, an unknown code as other, a replaced result under its new code");
    ok(!has(&b, "weird_new_code"), "an unknown code never becomes a label value");
    ok(has(&b, "switchyard_dead_letters_total{code=\"invalid_json\"} 2\n") &&
           has(&b, "switchyard_dead_letters_total{code=\"other\"} 1\n") &&
           has(&b, "switchyard_dead_letters_total{code=\"too_large\"} 0\n") && s.dead_letters == 3,
       "dead letters by code");
    ok(has(&b, "switchyard_model_cost_usd_total{model=\"mini\",provider=\"openai\"} "
               "2.000000001\n") &&
           has(&b, "switchyard_model_cost_nanousd_total{model=\"mini\",provider=\"openai\"} "
                   "2000000001\n"),
       "USD is the nano-USD count / 1e9, exactly");
    ok(s.ntenants == 2, "two tenants tracked (max_tenants 2): %zu", s.ntenants);
    ok(has(&b, "switchyard_tenant_results_total{tenant=\"acme\",status=\"ok\"} 1\n") &&
           has(&b, "switchyard_tenant_results_total{tenant=\"acme\",status=\"error\"} 2\n") &&
           has(&b, "switchyard_tenant_results_total{tenant=\"globex\",status=\"error\"} 1\n") &&
           has(&b, "switchyard_tenant_results_total{tenant=\"other\",status=\"ok\"} 3\n"),
       "results by tenant, the rest under other");
    ok(has(&b, "switchyard_tenant_cost_usd_total{tenant=\"acme\"} 1.234567891\n") &&
           has(&b, "switchyard_tenant_cost_usd_total{tenant=\"other\"} 0.000000008\n"),
       "cost by tenant in USD");
    ok(has(&b, "switchyard_partition_committed_offset{topic=\"req\",partition=\"0\"} -1\n") &&
           has(&b, "switchyard_partition_committed_offset{topic=\"req\",partition=\"1\"} 17\n"),
       "a committed-offset series for every partition, -1 for none");
    ok(has(&b, "switchyard_partition_last_commit_age_seconds{topic=\"req\",partition=\"0\"} "
               "2.500\n") &&
           !has(&b, "switchyard_partition_last_commit_age_seconds{topic=\"req\",partition=\"1\"}"),
       "the last-commit age in seconds; none without a time");
    ok(has(&b, "switchyard_partitions_paused 1\n"), "the paused partitions counted");
    ok(has(&b, "# TYPE switchyard_partition_stalled gauge\n") &&
           has(&b, "switchyard_partition_stalled{topic=\"req\",partition=\"2\"} 1\n"),
       "a stalled partition's gauge is 1");
    ok(has(&b, "switchyard_partition_stalled{topic=\"req\",partition=\"0\"} 0\n") &&
           has(&b, "switchyard_partition_stalled{topic=\"req\",partition=\"1\"} 0\n"),
       "and 0 for the others, a paused one too");
    ok(!has(&b, "process_cpu_seconds_total"), "process metrics only when asked");
    free(b.data);

    v.tenant_label = 0;
    v.process = 1;
    b = (struct metrics_buf){0};
    stats_render(&v, &b);
    ok(!has(&b, "switchyard_tenant_"), "no tenant series without metrics.tenant_label");
    ok(has(&b, "# TYPE process_cpu_seconds_total counter\n") &&
           has(&b, "\nprocess_resident_memory_bytes ") && has(&b, "\nprocess_open_fds ") &&
           has(&b, "\nprocess_start_time_seconds "),
       "process metrics from /proc/self");
    free(b.data);
    stats_release(&s);
}

/* costs.reserve: what was reserved, settled and failed, and the waits */
static void test_reservations(void)
{
    struct stats s = {0};
    s.reservations = 5;
    s.reservations_settled = 4;
    s.reservations_failed[STATS_RESERVE_TIMEOUT] = 1;
    stats_reserve_wait(&s, 1);     /* le 0.001 */
    stats_reserve_wait(&s, 7);     /* le 0.01 */
    stats_reserve_wait(&s, 7);     /* le 0.01 */
    stats_reserve_wait(&s, 20000); /* +Inf only */
    result(&s, 0, "reservation_failed", "acme", 0, 0);
    struct stats_view v = {.worker_id = "w", .version = "0", .stats = &s, .now_ms = 1};
    struct metrics_buf b = {0};
    stats_render(&v, &b);
    ok(!b.failed, "rendered");
    ok(has(&b, "switchyard_reservations_total 5\n") &&
           has(&b, "switchyard_reservations_settled_total 4\n"),
       "reservations published and settled");
    ok(has(&b, "switchyard_reservations_failed_total{reason=\"timeout\"} 1\n") &&
           has(&b, "switchyard_reservations_failed_total{reason=\"refused\"} 0\n") &&
           has(&b, "switchyard_reservations_failed_total{reason=\"deadline\"} 0\n"),
       "failed reservations by reason");
    ok(has(&b, "switchyard_reservation_wait_seconds_bucket{le=\"0.001\"} 1\n") &&
           has(&b, "switchyard_reservation_wait_seconds_bucket{le=\"0.005\"} 1\n") &&
           has(&b, "switchyard_reservation_wait_seconds_bucket{le=\"0.01\"} 3\n") &&
           has(&b, "switchyard_reservation_wait_seconds_bucket{le=\"10\"} 3\n") &&
           has(&b, "switchyard_reservation_wait_seconds_bucket{le=\"+Inf\"} 4\n") &&
           has(&b, "switchyard_reservation_wait_seconds_sum 20.015\n") &&
           has(&b, "switchyard_reservation_wait_seconds_count 4\n"),
       "the wait histogram: cumulative buckets, sum and count");
    ok(has(&b, "switchyard_results_total{status=\"error\",code=\"reservation_failed\"} 1\n"),
       "reservation_failed is a result code of its own");
    free(b.data);
    stats_release(&s);
}

void test_stats(void)
{
    test_proc_stat();
    test_render();
    test_reservations();
}

/*
 * costread: the input of `switchyard cost-report`: JSON lines from a file,
 * or the costs topic read with a consumer of its own that assigns every
 * partition from the offset of a timestamp (rd_kafka_offsets_for_times)
 * up to the end offsets seen at start. It must never subscribe (that
 * would join the worker's group and take its partitions away), never
 * commit, and never hold a line longer than COSTREPORT_RECORD_MAX.
 */
#include "costread.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka.h"

int costread_file(FILE *in, const char *name, struct costreport *r)
{
    char *line = malloc(COSTREPORT_RECORD_MAX + 1);
    if (!line) {
        fprintf(stderr, "switchyard cost-report: out of memory\n");
        return -1;
    }
    uint64_t lineno = 0;
    int c = 0;
    while (c != EOF) {
        size_t n = 0;
        int too_long = 0;
        while ((c = getc_unlocked(in)) != EOF && c != '\n') {
            if (n < COSTREPORT_RECORD_MAX)
                line[n++] = (char)c;
            else
                too_long = 1; /* the rest of the line is read and dropped */
        }
        if (c == EOF && n == 0 && !too_long)
            break;
        lineno++;
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            n--;
        if (n == 0 && !too_long)
            continue;
        char why[256];
        if (too_long) {
            costreport_add_bad(r);
            fprintf(stderr, "%s:%" PRIu64 ": not a cost record: longer than %u bytes\n", name,
                    lineno, COSTREPORT_RECORD_MAX);
        } else if (costreport_add(r, line, n, why, sizeof why) < 0) {
            fprintf(stderr, "%s:%" PRIu64 ": not a cost record: %s\n", name, lineno, why);
        }
    }
    int rc = 0;
    if (ferror(in)) {
        fprintf(stderr, "switchyard cost-report: %s: read error after line %" PRIu64 "\n", name,
                lineno);
        rc = -1;
    }
    free(line);
    return rc;
}

static int64_t costread_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int costread_left(int64_t deadline)
{
    int64_t left = deadline - costread_now_ms();
    return left < 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
}

/* The consumer: worker.yaml's connection, and settings that keep it out of
 * the group's business whatever worker.yaml says. */
static rd_kafka_t *costread_consumer(const struct config *cfg, char *why, size_t cap)
{
    struct err e = {0};
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, KAFKA_CONSUMER, &e);
    if (!conf) {
        snprintf(why, cap, "%s", e.msg);
        return NULL;
    }
    static const char *const own[][2] = {{"enable.auto.commit", "false"},
                                         {"enable.auto.offset.store", "false"},
                                         {"enable.partition.eof", "true"},
                                         {"client.id", "switchyard-cost-report"}};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (kafka_conf_set(conf, own[i][0], own[i][1], &e) < 0)
            goto bad;
    /* rd_kafka_assign needs a group id; without subscribe it joins nothing */
    if (!kafka_config_value(cfg, "group.id", NULL) &&
        kafka_conf_set(conf, "group.id", "switchyard-cost-report", &e) < 0)
        goto bad;
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        snprintf(why, cap, "cannot create a consumer: %s", errstr);
        rd_kafka_conf_destroy(conf); /* rd_kafka_new takes it only on success */
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
bad:
    snprintf(why, cap, "%s", e.msg);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

struct costread_partition {
    int64_t end;  /* the end offset seen at start */
    int64_t next; /* the next offset to read */
};

/* Where each partition starts and ends; the assignment (partitions with
 * something to read). */
static int costread_plan(rd_kafka_t *rk, const char *topic, const struct costread_range *range,
                         int64_t deadline, struct costread_partition **parts, int *nparts,
                         rd_kafka_topic_partition_list_t **assignment, char *why, size_t cap)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_topic_partition_list_t *starts = NULL;
    int rc = -1;
    rd_kafka_resp_err_t err =
        rkt ? rd_kafka_metadata(rk, 0, rkt, &md, costread_left(deadline)) : rd_kafka_last_error();
    if (err || !md || md->topic_cnt != 1 || md->topics[0].err) {
        snprintf(why, cap, "topic %s: no metadata: %s", topic,
                 rd_kafka_err2str(err                   ? err
                                  : md && md->topic_cnt ? md->topics[0].err
                                                        : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto out;
    }
    int n = md->topics[0].partition_cnt;
    *parts = calloc((size_t)(n ? n : 1), sizeof **parts);
    starts = rd_kafka_topic_partition_list_new(n ? n : 1);
    if (!*parts) {
        snprintf(why, cap, "out of memory");
        goto out;
    }
    *nparts = n;
    for (int p = 0; p < n; p++) {
        int64_t lo, hi;
        err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, costread_left(deadline));
        if (err) {
            snprintf(why, cap, "%s/%d: no end offset: %s", topic, p, rd_kafka_err2str(err));
            goto out;
        }
        (*parts)[p] = (struct costread_partition){.end = hi, .next = lo};
        rd_kafka_topic_partition_list_add(starts, topic, p)->offset =
            range->from_ms >= 0 ? range->from_ms : lo;
    }
    if (range->from_ms >= 0 && n > 0) {
        /* in: a timestamp per partition; out: the first offset at or after it */
        err = rd_kafka_offsets_for_times(rk, starts, costread_left(deadline));
        if (err) {
            snprintf(why, cap, "%s: offsets for --from: %s", topic, rd_kafka_err2str(err));
            goto out;
        }
        for (int p = 0; p < n; p++) {
            rd_kafka_topic_partition_t *tp = &starts->elems[p];
            if (tp->err) {
                snprintf(why, cap, "%s/%d: offset for --from: %s", topic, tp->partition,
                         rd_kafka_err2str(tp->err));
                goto out;
            }
            /* -1: no record at or after the timestamp */
            (*parts)[tp->partition].next =
                tp->offset < 0 ? (*parts)[tp->partition].end : tp->offset;
        }
    }
    *assignment = rd_kafka_topic_partition_list_new(n ? n : 1);
    for (int p = 0; p < n; p++)
        if ((*parts)[p].next < (*parts)[p].end)
            rd_kafka_topic_partition_list_add(*assignment, topic, p)->offset = (*parts)[p].next;
    rc = 0;
out:
    if (starts)
        rd_kafka_topic_partition_list_destroy(starts);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    return rc;
}

static void costread_message(const rd_kafka_message_t *m, const struct costread_range *range,
                             struct costreport *r)
{
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(m, &type);
    if ((range->from_ms >= 0 && ts < range->from_ms) || (range->to_ms >= 0 && ts >= range->to_ms))
        return;
    char why[256];
    if (!m->payload) {
        costreport_add_bad(r);
        snprintf(why, sizeof why, "no value");
    } else if (costreport_add(r, m->payload, m->len, why, sizeof why) == 0) {
        return;
    }
    fprintf(stderr, "%s/%d@%" PRId64 ": not a cost record: %s\n", rd_kafka_topic_name(m->rkt),
            (int)m->partition, m->offset, why);
}

int costread_topic(const struct config *cfg, const struct costread_range *range,
                   struct costreport *r, char *why, size_t cap)
{
    int64_t deadline = costread_now_ms() + range->timeout_ms;
    const char *topic = cfg->topic_costs;
    struct costread_partition *parts = NULL;
    rd_kafka_topic_partition_list_t *assignment = NULL;
    int nparts = 0, rc = -1, assigned = 0;
    rd_kafka_t *rk = costread_consumer(cfg, why, cap);
    if (!rk)
        return -1;
    if (costread_plan(rk, topic, range, deadline, &parts, &nparts, &assignment, why, cap) < 0)
        goto out;
    int left = assignment->cnt;
    if (left > 0) {
        rd_kafka_resp_err_t err = rd_kafka_assign(rk, assignment);
        if (err) {
            snprintf(why, cap, "%s: assign: %s", topic, rd_kafka_err2str(err));
            goto out;
        }
        assigned = 1;
    }
    while (left > 0) {
        if (costread_left(deadline) == 0) {
            int p = 0;
            while (p < nparts && parts[p].next >= parts[p].end)
                p++;
            snprintf(why, cap,
                     "the deadline (%" PRId64 " ms) passed with %d partition%s not read to "
                     "the end (%s/%d at offset %" PRId64 " of %" PRId64 ")",
                     range->timeout_ms, left, left == 1 ? "" : "s", topic, p,
                     p < nparts ? parts[p].next : 0, p < nparts ? parts[p].end : 0);
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                char reason[256];
                rd_kafka_fatal_error(rk, reason, sizeof reason);
                snprintf(why, cap, "fatal consumer error: %s", reason);
                rd_kafka_message_destroy(m);
                goto out;
            }
            /* transient (a broker restarting): librdkafka retries and logs */
            rd_kafka_message_destroy(m);
            continue;
        }
        int p = m->partition;
        if (p < 0 || p >= nparts || parts[p].next >= parts[p].end) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (!m->err && m->offset < parts[p].end)
            costread_message(m, range, r);
        /* a partition EOF carries the next offset; past a gap (a control
         * record, a compacted range) it is the end */
        if (m->offset >= parts[p].next)
            parts[p].next = m->err ? m->offset : m->offset + 1;
        if (parts[p].next >= parts[p].end)
            left--;
        rd_kafka_message_destroy(m);
    }
    rc = 0;
out:
    if (assigned)
        rd_kafka_assign(rk, NULL);
    if (assignment)
        rd_kafka_topic_partition_list_destroy(assignment);
    free(parts);
    /* no rd_kafka_consumer_close: it is for a group member, which this is not */
    kafka_destroy_bounded(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE, 5000);
    return rc;
}

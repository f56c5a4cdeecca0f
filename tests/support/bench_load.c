/*
 * bench_load: the Kafka client side of `make bench` (scripts/bench.sh):
 * writes the benchmark's requests, commits a group's starting offsets, and
 * measures end-to-end latency at a paced rate. One program with modes, so that every request of
 * every scenario is the same 521 bytes made by the same code.
 *
 * It must never talk to anything but the bootstrap list it is given (the
 * bench passes the mock cluster's 127.0.0.1 address), never measure the
 * worker (its own figures are its own: send and receive times), and never
 * report a count it did not see: a missing or undelivered record is an error
 * exit, not a smaller figure.
 *
 * Usage:
 *   bench_load sample PREFIX                    one request (seq 0) on stdout
 *   bench_load marks BOOTSTRAP TOPIC             high watermarks, comma-separated
 *   bench_load commit BOOTSTRAP TOPIC GROUP      commit the high watermarks for GROUP
 *   bench_load load BOOTSTRAP TOPIC COUNT PREFIX [GROUP]
 *       COUNT requests, round-robin over the partitions; with GROUP, the
 *       offsets before the load are committed for GROUP (it reads exactly these)
 *   bench_load latency BOOTSTRAP REQTOPIC RESTOPIC RATE WARMUP_S MEASURE_S PREFIX
 *       sends RATE requests a second for WARMUP_S + MEASURE_S seconds, reads
 *       RESTOPIC (fetch.wait.max.ms 1) and prints, over the requests sent after
 *       the warm-up, the percentiles of receive time - send time, and of the
 *       result's Kafka timestamp - the request's Kafka timestamp (the worker's
 *       own share), as one JSON line
 */
#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_REQUEST_BYTES 521
#define BENCH_PREFIX_MAX 64
#define BENCH_ID_MAX 96
#define BENCH_COUNT_MAX 10000000UL
#define BENCH_PARTITIONS_MAX 1024
#define BENCH_TIMEOUT_MS 10000

/* a review to classify; cut to fit 521 bytes; no byte needs JSON escaping */
static const char bench_text[] =
    "Classify the sentiment of this customer review as positive, negative or mixed, "
    "and answer with one word. Review: the new release fixed the sync problem I had "
    "reported twice, the export is faster and the settings page finally remembers my "
    "choices; on the other hand the mobile app still logs me out every other day and "
    "support took a week to answer a simple billing question, which is not what I "
    "expect from a paid plan. Overall I will keep using it for now, but I am looking "
    "at the alternatives my colleagues use. ";

static void bench_die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "bench_load: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* "PREFIX-%09lu": every id of one prefix has the same length */
static int bench_id(char *out, size_t cap, const char *prefix, unsigned long seq)
{
    int n = snprintf(out, cap, "%s-%09lu", prefix, seq);

    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* One request of exactly BENCH_REQUEST_BYTES into out (cap > that); its length. */
static size_t bench_request(char *out, size_t cap, const char *prefix, unsigned long seq)
{
    char id[BENCH_ID_MAX];
    static const char head[] = "{\"id\":\"%s\",\"task\":\"classification\",\"tenant\":\"bench\","
                               "\"messages\":[{\"role\":\"user\",\"content\":\"";
    static const char tail[] = "\"}],\"max_tokens\":16,\"metadata\":{\"source\":\"bench\"}}";
    int n;
    size_t len, want;

    if (bench_id(id, sizeof id, prefix, seq) < 0)
        bench_die("prefix too long: %s%s", prefix, "");
    n = snprintf(out, cap, head, id);
    if (n < 0 || (size_t)n >= cap)
        bench_die("request head does not fit%s%s", "", "");
    len = (size_t)n;
    if (len + sizeof tail - 1 >= BENCH_REQUEST_BYTES)
        bench_die("prefix too long for a %s-byte request%s", "521", "");
    want = BENCH_REQUEST_BYTES - len - (sizeof tail - 1);
    for (size_t i = 0; i < want; i++)
        out[len + i] = bench_text[(i + seq) % (sizeof bench_text - 1)];
    len += want;
    memcpy(out + len, tail, sizeof tail);
    return len + sizeof tail - 1;
}

static rd_kafka_t *bench_client(rd_kafka_type_t type, const char *bootstrap, const char *group,
                                const char *const *props)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) ||
        (group && rd_kafka_conf_set(conf, "group.id", group, err, sizeof err)))
        bench_die("config: %s%s", err, "");
    for (size_t i = 0; props && props[i]; i += 2)
        if (rd_kafka_conf_set(conf, props[i], props[i + 1], err, sizeof err))
            bench_die("config: %s%s", err, "");
    rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk)
        bench_die("client: %s%s", err, "");
    return rk;
}

static int bench_partitions(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int n;

    if (rd_kafka_metadata(rk, 0, rkt, &md, BENCH_TIMEOUT_MS) || md->topic_cnt != 1 ||
        md->topics[0].err)
        bench_die("no metadata for topic %s%s", topic, "");
    n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (n < 1 || n > BENCH_PARTITIONS_MAX)
        bench_die("topic %s: bad partition count%s", topic, "");
    return n;
}

static rd_kafka_topic_partition_list_t *bench_marks(rd_kafka_t *rk, const char *topic)
{
    int n = bench_partitions(rk, topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);

    for (int p = 0; p < n; p++) {
        int64_t lo, hi;

        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, BENCH_TIMEOUT_MS))
            bench_die("watermarks of %s failed%s", topic, "");
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = hi;
    }
    return l;
}

static void bench_commit(const char *bootstrap, const char *group,
                         rd_kafka_topic_partition_list_t *marks)
{
    rd_kafka_t *c = bench_client(RD_KAFKA_CONSUMER, bootstrap, group, NULL);
    rd_kafka_resp_err_t e = rd_kafka_commit(c, marks, 0);

    if (e)
        bench_die("commit for group %s: %s", group, rd_kafka_err2str(e));
    for (int i = 0; i < marks->cnt; i++)
        if (marks->elems[i].err)
            bench_die("commit for group %s: %s", group, rd_kafka_err2str(marks->elems[i].err));
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

static atomic_ulong bench_failed;

static void bench_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        atomic_fetch_add(&bench_failed, 1);
}

static const char *const bench_producer_props[] = {"enable.idempotence",
                                                   "true",
                                                   "linger.ms",
                                                   "5",
                                                   "batch.size",
                                                   "1000000",
                                                   "queue.buffering.max.messages",
                                                   "1000000",
                                                   "queue.buffering.max.kbytes",
                                                   "1048576",
                                                   NULL};

static void bench_produce(rd_kafka_t *p, const char *topic, int32_t part, const char *id,
                          const char *buf, size_t len)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part), RD_KAFKA_V_KEY(id, strlen(id)),
            RD_KAFKA_V_VALUE((void *)(uintptr_t)buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);

        if (!e)
            return;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            bench_die("produce: %s%s", rd_kafka_err2str(e), "");
        rd_kafka_poll(p, 10);
    }
}

static unsigned long bench_count(const char *s, unsigned long max)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v > max)
        bench_die("bad number: %s%s", s, "");
    return v;
}

static int bench_load(const char *bootstrap, const char *topic, unsigned long count,
                      const char *prefix, const char *group)
{
    char buf[BENCH_REQUEST_BYTES + 1], id[BENCH_ID_MAX];
    rd_kafka_t *p = bench_client(RD_KAFKA_PRODUCER, bootstrap, NULL, NULL);
    rd_kafka_topic_partition_list_t *marks = bench_marks(p, topic);
    int parts = marks->cnt;

    rd_kafka_destroy(p);
    {
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();

        rd_kafka_conf_set_dr_msg_cb(conf, bench_dr);
        if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err))
            bench_die("config: %s%s", err, "");
        for (size_t i = 0; bench_producer_props[i]; i += 2)
            if (rd_kafka_conf_set(conf, bench_producer_props[i], bench_producer_props[i + 1], err,
                                  sizeof err))
                bench_die("config: %s%s", err, "");
        p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        if (!p)
            bench_die("producer: %s%s", err, "");
    }
    for (unsigned long i = 0; i < count; i++) {
        size_t len = bench_request(buf, sizeof buf, prefix, i);

        bench_id(id, sizeof id, prefix, i);
        bench_produce(p, topic, (int32_t)(i % (unsigned long)parts), id, buf, len);
        if (i % 1024 == 0)
            rd_kafka_poll(p, 0);
    }
    if (rd_kafka_flush(p, 60000) || atomic_load(&bench_failed))
        bench_die("load into %s: %s records not delivered", topic,
                  atomic_load(&bench_failed) ? "some" : "queued");
    rd_kafka_destroy(p);
    if (group)
        bench_commit(bootstrap, group, marks);
    rd_kafka_topic_partition_list_destroy(marks);
    printf("{\"loaded\":%lu,\"bytes\":%d}\n", count, BENCH_REQUEST_BYTES);
    return 0;
}

/* the top-level "id" of a result or cost record ("call_id" never matches) */
static const char *bench_find_id(const char *v, size_t len, size_t *idlen)
{
    static const char key[] = "\"id\":\"";
    const char *s = memmem(v, len, key, sizeof key - 1), *e;

    if (!s)
        return NULL;
    s += sizeof key - 1;
    e = memchr(s, '"', len - (size_t)(s - v));
    if (!e)
        return NULL;
    *idlen = (size_t)(e - s);
    return s;
}

/* seq of an id "PREFIX-NNNNNNNNN", or -1 if it has another prefix */
static long bench_seq(const char *id, size_t idlen, const char *prefix, size_t plen)
{
    long seq = 0;

    if (idlen != plen + 10 || memcmp(id, prefix, plen) || id[plen] != '-')
        return -1;
    for (size_t i = plen + 1; i < idlen; i++) {
        if (id[i] < '0' || id[i] > '9')
            return -1;
        seq = seq * 10 + (id[i] - '0');
    }
    return seq;
}

/* a reader of every partition of TOPIC from its end, as of now */
static rd_kafka_t *bench_reader(const char *bootstrap, const char *topic)
{
    static const char *const props[] = {"fetch.wait.max.ms",
                                        "1",
                                        "enable.auto.commit",
                                        "false",
                                        "enable.partition.eof",
                                        "false",
                                        NULL};
    rd_kafka_t *c = bench_client(RD_KAFKA_CONSUMER, bootstrap, "bench-reader", props);
    rd_kafka_topic_partition_list_t *marks = bench_marks(c, topic);

    if (rd_kafka_assign(c, marks))
        bench_die("assign %s failed%s", topic, "");
    rd_kafka_topic_partition_list_destroy(marks);
    return c;
}

struct bench_lat {
    uint64_t *send_ns; /* realtime at produce() */
    int64_t *req_ts;   /* request's Kafka timestamp: set to the send time (ms) */
    uint64_t *recv_ns; /* realtime at the result's arrival; 0: not yet */
    int64_t *res_ts;   /* result's Kafka timestamp */
    unsigned long total;
    atomic_ulong received;
    atomic_bool stop;
    rd_kafka_t *reader;
    const char *prefix;
};

static void bench_lat_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        atomic_fetch_add(&bench_failed, 1);
}

static void *bench_lat_reader(void *arg)
{
    struct bench_lat *lat = arg;
    size_t plen = strlen(lat->prefix);

    while (!atomic_load(&lat->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(lat->reader, 50);
        uint64_t now = bench_now_ns();
        size_t idlen;
        const char *id;
        long seq;

        if (!m)
            continue;
        id = m->err ? NULL : bench_find_id(m->payload, m->len, &idlen);
        seq = id ? bench_seq(id, idlen, lat->prefix, plen) : -1;
        if (seq >= 0 && (unsigned long)seq < lat->total && !lat->recv_ns[seq]) {
            lat->recv_ns[seq] = now;
            lat->res_ts[seq] = rd_kafka_message_timestamp(m, NULL);
            atomic_fetch_add(&lat->received, 1);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static int bench_cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double bench_pct(const double *v, size_t n, double q)
{
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);

    return v[i < n ? i : n - 1];
}

static int bench_latency(const char *bootstrap, const char *reqtopic, const char *restopic,
                         unsigned long rate, unsigned long warmup_s, unsigned long measure_s,
                         const char *prefix)
{
    struct bench_lat lat = {.prefix = prefix};
    char buf[BENCH_REQUEST_BYTES + 1], id[BENCH_ID_MAX], err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *p;
    pthread_t th;
    uint64_t t0, deadline;
    unsigned long warm_n = rate * warmup_s, n_meas;
    double *e2e, *own;
    int parts, rc = 0;

    lat.total = rate * (warmup_s + measure_s);
    lat.send_ns = calloc(lat.total, sizeof *lat.send_ns);
    lat.req_ts = calloc(lat.total, sizeof *lat.req_ts);
    lat.recv_ns = calloc(lat.total, sizeof *lat.recv_ns);
    lat.res_ts = calloc(lat.total, sizeof *lat.res_ts);
    if (!lat.send_ns || !lat.req_ts || !lat.recv_ns || !lat.res_ts || !lat.total)
        bench_die("latency: no memory or nothing to send%s%s", "", "");
    lat.reader = bench_reader(bootstrap, restopic);
    rd_kafka_conf_set_dr_msg_cb(conf, bench_lat_dr);
    rd_kafka_conf_set_opaque(conf, &lat);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err) ||
        rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof err))
        bench_die("config: %s%s", err, "");
    p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!p)
        bench_die("producer: %s%s", err, "");
    parts = bench_partitions(p, reqtopic);
    if (pthread_create(&th, NULL, bench_lat_reader, &lat))
        bench_die("thread%s%s", "", "");
    t0 = bench_now_ns() + 200000000ULL; /* the reader's fetches are under way */
    for (unsigned long i = 0; i < lat.total; i++) {
        uint64_t due = t0 + (uint64_t)((double)i * 1e9 / (double)rate);
        struct timespec ts = {.tv_sec = (time_t)(due / 1000000000ULL),
                              .tv_nsec = (long)(due % 1000000000ULL)};
        size_t len = bench_request(buf, sizeof buf, prefix, i);

        while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        bench_id(id, sizeof id, prefix, i);
        lat.send_ns[i] = bench_now_ns();
        lat.req_ts[i] = (int64_t)(lat.send_ns[i] / 1000000ULL);
        if (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(reqtopic),
                              RD_KAFKA_V_PARTITION((int32_t)(i % (unsigned long)parts)),
                              RD_KAFKA_V_KEY(id, strlen(id)), RD_KAFKA_V_VALUE(buf, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_TIMESTAMP(lat.req_ts[i]), RD_KAFKA_V_END))
            bench_die("latency: produce failed%s%s", "", "");
        rd_kafka_poll(p, 0);
    }
    if (rd_kafka_flush(p, 30000) || atomic_load(&bench_failed))
        bench_die("latency: requests not delivered%s%s", "", "");
    deadline = bench_now_ns() + 60000000000ULL;
    while (atomic_load(&lat.received) < lat.total && bench_now_ns() < deadline) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&lat.stop, true);
    pthread_join(th, NULL);
    if (atomic_load(&lat.received) < lat.total) {
        fprintf(stderr, "bench_load: latency: %lu of %lu results arrived\n",
                atomic_load(&lat.received), lat.total);
        rc = 3;
    }
    n_meas = lat.total - warm_n;
    e2e = calloc(n_meas ? n_meas : 1, sizeof *e2e);
    own = calloc(n_meas ? n_meas : 1, sizeof *own);
    if (!e2e || !own || !n_meas)
        bench_die("latency: nothing measured%s%s", "", "");
    for (unsigned long i = 0; i < n_meas; i++) {
        unsigned long s = warm_n + i;

        e2e[i] = lat.recv_ns[s] ? (double)(lat.recv_ns[s] - lat.send_ns[s]) / 1e6 : 1e12;
        own[i] = (double)(lat.res_ts[s] - lat.req_ts[s]);
    }
    qsort(e2e, n_meas, sizeof *e2e, bench_cmp_d);
    qsort(own, n_meas, sizeof *own, bench_cmp_d);
    printf("{\"rate\":%lu,\"sent\":%lu,\"received\":%lu,\"measured\":%lu,"
           "\"e2e_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
           "\"worker_ms\":{\"p50\":%.0f,\"p99\":%.0f,\"max\":%.0f}}\n",
           rate, lat.total, atomic_load(&lat.received), n_meas, bench_pct(e2e, n_meas, 0.5),
           bench_pct(e2e, n_meas, 0.99), e2e[n_meas - 1], bench_pct(own, n_meas, 0.5),
           bench_pct(own, n_meas, 0.99), own[n_meas - 1]);
    rd_kafka_destroy(p);
    rd_kafka_consumer_close(lat.reader);
    rd_kafka_destroy(lat.reader);
    free(e2e);
    free(own);
    free(lat.send_ns);
    free(lat.req_ts);
    free(lat.recv_ns);
    free(lat.res_ts);
    return rc;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "sample") && argc == 3) {
        char buf[BENCH_REQUEST_BYTES + 1];
        size_t len = bench_request(buf, sizeof buf, argv[2], 0);

        fwrite(buf, 1, len, stdout);
        return 0;
    }
    if (!strcmp(mode, "marks") && argc == 4) {
        rd_kafka_t *rk = bench_client(RD_KAFKA_PRODUCER, argv[2], NULL, NULL);
        rd_kafka_topic_partition_list_t *l = bench_marks(rk, argv[3]);

        for (int i = 0; i < l->cnt; i++)
            printf("%s%" PRId64, i ? "," : "", l->elems[i].offset);
        putchar('\n');
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(rk);
        return 0;
    }
    if (!strcmp(mode, "commit") && argc == 5) {
        rd_kafka_t *rk = bench_client(RD_KAFKA_PRODUCER, argv[2], NULL, NULL);
        rd_kafka_topic_partition_list_t *l = bench_marks(rk, argv[3]);

        rd_kafka_destroy(rk);
        bench_commit(argv[2], argv[4], l);
        rd_kafka_topic_partition_list_destroy(l);
        return 0;
    }
    if (!strcmp(mode, "load") && (argc == 6 || argc == 7))
        return bench_load(argv[2], argv[3], bench_count(argv[4], BENCH_COUNT_MAX), argv[5],
                          argc == 7 ? argv[6] : NULL);
    if (!strcmp(mode, "latency") && argc == 9)
        return bench_latency(argv[2], argv[3], argv[4], bench_count(argv[5], 1000000),
                             bench_count(argv[6], 3600), bench_count(argv[7], 3600), argv[8]);
    fputs("usage: see the comment at the top of tests/support/bench_load.c\n", stderr);
    return 2;
}

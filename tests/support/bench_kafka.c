/*
 * bench_kafka: the Kafka floor of `make bench` (scripts/bench.sh): consumes
 * COUNT requests as a group member (the group's offsets committed by
 * `bench_load load`) and, per request, produces what switchyard publishes
 * for it: a reserved cost record, the result and the settled cost record,
 * each the same bytes as a worker's (captured by the bench's calibration
 * run; the request's id written over the captured one), with an idempotent
 * zstd producer as the shipped worker.yaml configures. Prints its own
 * process CPU (getrusage user + sys) per message and its rate as one JSON
 * line.
 *
 * It must never talk to anything but the bootstrap list it is given and
 * never count a record that was not acknowledged: one failed delivery or a
 * short count is an error exit.
 *
 * BENCH_KAFKA_PRODUCER / BENCH_KAFKA_CONSUMER ("name=value,name=value"):
 * the worker.yaml properties of each side (the bench passes the shipped
 * file's), set over the defaults below, so the floor batches, waits and
 * compresses as the worker does.
 *
 * Usage: bench_kafka BOOTSTRAP REQTOPIC GROUP COUNT RESTOPIC COSTTOPIC DIR OLD_ID
 *        (DIR holds result.json, cost_reserved.json, cost_settled.json;
 *        OLD_ID is the captured request id, the same length as every id read)
 */
#include <librdkafka/rdkafka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BK_FILE_MAX (1024 * 1024)
#define BK_SPOTS_MAX 16

struct bk_out {
    const char *topic;
    char *bytes; /* the captured record; ids rewritten in place per message */
    size_t len;
    size_t spots[BK_SPOTS_MAX]; /* where the captured id stands */
    int nspots;
};

static atomic_ulong bk_acked, bk_failed;

static void bk_die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_kafka: %s%s\n", what, detail);
    exit(1);
}

static void bk_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    atomic_fetch_add(m->err ? &bk_failed : &bk_acked, 1);
}

static void bk_load(struct bk_out *o, const char *dir, const char *name, const char *old_id)
{
    char path[4096];
    FILE *f;
    size_t idl = strlen(old_id);
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);

    o->bytes = malloc(BK_FILE_MAX);
    if (!o->bytes || n < 0 || (size_t)n >= sizeof path || !(f = fopen(path, "rb")))
        bk_die("cannot read ", name);
    o->len = fread(o->bytes, 1, BK_FILE_MAX, f);
    fclose(f);
    if (o->len == 0 || o->len == BK_FILE_MAX)
        bk_die("empty or too large: ", name);
    for (char *p = o->bytes; (p = memmem(p, o->len - (size_t)(p - o->bytes), old_id, idl));
         p += idl) {
        if (o->nspots == BK_SPOTS_MAX)
            bk_die("the id occurs too often in ", name);
        o->spots[o->nspots++] = (size_t)(p - o->bytes);
    }
    if (o->nspots == 0)
        bk_die("the captured id is not in ", name);
}

static rd_kafka_conf_t *bk_conf(const char *bootstrap, const char *const *props)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err))
        bk_die("config: ", err);
    for (size_t i = 0; props[i]; i += 2)
        if (rd_kafka_conf_set(conf, props[i], props[i + 1], err, sizeof err))
            bk_die("config: ", err);
    return conf;
}

static double bk_cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double bk_wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sets each name=value of environment variable VAR on conf. */
static rd_kafka_conf_t *bk_env_props(rd_kafka_conf_t *conf, const char *var)
{
    const char *v = getenv(var);
    char err[512];
    char *copy = v ? strdup(v) : NULL, *save = NULL;

    for (char *item = copy ? strtok_r(copy, ",", &save) : NULL; item;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');

        if (!eq)
            bk_die("not name=value in ", var);
        *eq = '\0';
        if (rd_kafka_conf_set(conf, item, eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK)
            bk_die("property refused: ", err);
    }
    free(copy);
    return conf;
}

int main(int argc, char **argv)
{
    /* the shipped worker.yaml's producer settings, and librdkafka's defaults otherwise */
    static const char *const pprops[] = {"enable.idempotence",
                                         "true",
                                         "compression.type",
                                         "zstd",
                                         "message.timeout.ms",
                                         "300000",
                                         NULL};
    const char *cprops[] = {"group.id",
                            NULL,
                            "partition.assignment.strategy",
                            "cooperative-sticky",
                            "enable.auto.offset.store",
                            "true",
                            "auto.offset.reset",
                            "error",
                            NULL};
    struct bk_out out[3] = {{0}};
    rd_kafka_conf_t *pc;
    rd_kafka_t *p, *c;
    rd_kafka_topic_partition_list_t *sub;
    char err[512];
    unsigned long n, got = 0;
    size_t idl, bytes = 0;
    double cpu0 = 0, wall0 = 0, cpu, wall;

    if (argc != 9 || (n = strtoul(argv[4], NULL, 10)) == 0) {
        fputs("usage: bench_kafka BOOTSTRAP REQTOPIC GROUP COUNT RESTOPIC COSTTOPIC DIR OLD_ID\n",
              stderr);
        return 2;
    }
    idl = strlen(argv[8]);
    out[0].topic = argv[6];
    out[1].topic = argv[5];
    out[2].topic = argv[6];
    bk_load(&out[0], argv[7], "cost_reserved.json", argv[8]);
    bk_load(&out[1], argv[7], "result.json", argv[8]);
    bk_load(&out[2], argv[7], "cost_settled.json", argv[8]);
    for (int i = 0; i < 3; i++)
        bytes += out[i].len;
    pc = bk_env_props(bk_conf(argv[1], pprops), "BENCH_KAFKA_PRODUCER");
    rd_kafka_conf_set_dr_msg_cb(pc, bk_dr);
    if (!(p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err)))
        bk_die("producer: ", err);
    cprops[1] = argv[3];
    if (!(c = rd_kafka_new(RD_KAFKA_CONSUMER,
                           bk_env_props(bk_conf(argv[1], cprops), "BENCH_KAFKA_CONSUMER"), err,
                           sizeof err)))
        bk_die("consumer: ", err);
    rd_kafka_poll_set_consumer(c);
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, argv[2], RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(c, sub))
        bk_die("subscribe failed", "");
    rd_kafka_topic_partition_list_destroy(sub);
    while (got < n) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);

        rd_kafka_poll(p, 0);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                bk_die("consume: ", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        /* from the first request on: the group join is not a per-message cost */
        if (got++ == 0) {
            wall0 = bk_wall_s();
            cpu0 = bk_cpu_us();
        }
        if (m->key_len != idl)
            bk_die("a request key is not as long as the captured id", "");
        for (int i = 0; i < 3; i++) {
            for (int s = 0; s < out[i].nspots; s++)
                memcpy(out[i].bytes + out[i].spots[s], m->key, idl);
            for (;;) {
                rd_kafka_resp_err_t e = rd_kafka_producev(
                    p, RD_KAFKA_V_TOPIC(out[i].topic), RD_KAFKA_V_KEY(m->key, m->key_len),
                    RD_KAFKA_V_VALUE(out[i].bytes, out[i].len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);

                if (!e)
                    break;
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                    bk_die("produce: ", rd_kafka_err2str(e));
                rd_kafka_poll(p, 10);
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (rd_kafka_flush(p, 60000))
        bk_die("flush timed out", "");
    rd_kafka_commit(c, NULL, 0);
    cpu = bk_cpu_us() - cpu0;
    wall = bk_wall_s() - wall0;
    if (atomic_load(&bk_failed) || atomic_load(&bk_acked) != 3 * n)
        bk_die("not every output was acknowledged", "");
    printf("{\"messages\":%lu,\"cpu_us_per_msg\":%.3f,\"msg_per_s\":%.0f,\"wall_s\":%.3f,"
           "\"output_bytes_per_msg\":%lu}\n",
           n, cpu / (double)n, (double)n / wall, wall, (unsigned long)bytes);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);
    for (int i = 0; i < 3; i++)
        free(out[i].bytes);
    return 0;
}

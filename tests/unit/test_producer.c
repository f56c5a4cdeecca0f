/*
 * producer: delivery_classify from the table in tests/data/delivery/
 * cases.txt, then the producer itself on a real mock cluster
 * (build/mock_kafka in its own process, started from here and driven
 * through its stdin): a too-large output is refused once, a normal one is
 * acknowledged, a null key or value arrives null, brokers down are waited
 * out with a bounded number of log lines, a topic that refuses is
 * permanent, and flush/free return within their bound with every broker
 * down.
 *
 * Our stderr is captured into a file while the producer runs (to count log
 * lines, librdkafka's own included), so no ok() is called inside a capture.
 */
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "delivery.h"
#include "loop.h"
#include "producer.h"

#define MB_ENVELOPE ((size_t)256 << 10)
#define MB_REPLY ((size_t)8 << 20)
/* correctness bound on flush/free past their timeout, generous on purpose:
 * a machine shared by several builds must not fail it, a hang must */
#define SLACK_MS 5000
#define WATCHDOG_MS 30000

/* ---------------------------------------------------------------- table */

static int delivery_code(const char *name, rd_kafka_resp_err_t *out)
{
    const struct rd_kafka_err_desc *descs;
    size_t n;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++)
        if (descs[i].name && strcmp(descs[i].name, name) == 0) {
            *out = descs[i].code;
            return 1;
        }
    return 0;
}

static void delivery_table(void)
{
    char *text = check_read_file(CHECK_ROOT "/tests/data/delivery/cases.txt", NULL);
    if (!ok(text != NULL, "read tests/data/delivery/cases.txt"))
        return;
    int lineno = 0, cases = 0, permanent = 0;
    char *save;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char name[64], want[32];
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (!ok(sscanf(line, "%63s -> %31s", name, want) == 2, "cases.txt:%d: NAME -> CLASS",
                lineno))
            continue;
        if (!ok(delivery_code(name, &err), "cases.txt:%d: %s is an error name of librdkafka",
                lineno, name))
            continue;
        enum delivery_class got = delivery_classify(err);
        const char *gotname = got == DELIVERY_PERMANENT ? "permanent" : "transient";
        ok(strcmp(gotname, want) == 0, "cases.txt:%d: %s is %s, want %s", lineno, name, gotname,
           want);
        cases++;
        permanent += strcmp(want, "permanent") == 0;
    }
    ok(cases >= 40 && permanent >= 15, "delivery: %d cases read, %d permanent", cases, permanent);
    free(text);
}

/* ----------------------------------------------------------- mock kafka */

struct mock {
    pid_t pid;
    FILE *in, *out;
    char *bootstrap; /* malloc'd */
};

/* build/mock_kafka beside this binary (build/asan/unit_tests uses
 * build/asan/mock_kafka). */
static char *mock_path(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || (size_t)n >= sizeof self - 1)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    char *path;
    if (asprintf(&path, "%s/mock_kafka", self) < 0)
        return NULL;
    return path;
}

static char *mock_line(struct mock *m)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, m->out);
    if (n <= 0) {
        free(line);
        return NULL;
    }
    if (line[n - 1] == '\n')
        line[n - 1] = '\0';
    return line;
}

static int mock_start(struct mock *m, char *const argv_topics[])
{
    char *path = mock_path();
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    *m = (struct mock){.pid = -1};
    if (!path || pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        goto fail;
    char *argv[16] = {path};
    size_t argc = 1;
    for (size_t i = 0; argv_topics[i] && argc < 15; i++)
        argv[argc++] = argv_topics[i];
    argv[argc] = NULL;
    m->pid = fork();
    if (m->pid < 0)
        goto fail;
    if (m->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (devnull >= 0)
            dup2(devnull, 2); /* its librdkafka warnings are not ours to count */
        execv(path, argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    m->in = fdopen(in[1], "w");
    m->out = fdopen(out[0], "r");
    free(path);
    if (!m->in || !m->out)
        return -1;
    char *line = mock_line(m);
    if (!line || strncmp(line, "bootstrap=", 10) != 0) {
        free(line);
        return -1;
    }
    m->bootstrap = strdup(line + 10);
    free(line);
    return m->bootstrap ? 0 : -1;
fail:
    free(path);
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    return -1;
}

/* One command; 1 when the mock answered "ok". */
static int mock_cmd(struct mock *m, const char *cmd)
{
    if (!m->in || fprintf(m->in, "%s\n", cmd) < 0 || fflush(m->in) != 0)
        return 0;
    char *reply = mock_line(m);
    int okay = reply && strcmp(reply, "ok") == 0;
    if (!okay)
        fprintf(stderr, "mock_kafka: %s: %s\n", cmd, reply ? reply : "(no answer)");
    free(reply);
    return okay;
}

static void mock_stop(struct mock *m)
{
    if (m->in)
        fclose(m->in); /* EOF on its stdin stops it */
    if (m->out)
        fclose(m->out);
    if (m->pid > 0) {
        int status;
        pid_t got = 0;
        for (int i = 0; i < 100 && (got = waitpid(m->pid, &status, WNOHANG)) == 0; i++)
            usleep(50 * 1000);
        if (got == 0) {
            kill(m->pid, SIGKILL);
            waitpid(m->pid, &status, 0);
        }
    }
    free(m->bootstrap);
    *m = (struct mock){.pid = -1};
}

/* -------------------------------------------------------- stderr capture */

struct capture {
    int saved;
    FILE *file;
};

static int capture_start(struct capture *c)
{
    fflush(stderr);
    c->file = tmpfile();
    c->saved = dup(2);
    if (!c->file || c->saved < 0 || dup2(fileno(c->file), 2) < 0)
        return -1;
    return 0;
}

/* Restores stderr; returns what was written (malloc'd, NUL-terminated). */
static char *capture_stop(struct capture *c)
{
    fflush(stderr);
    if (c->saved >= 0) {
        dup2(c->saved, 2);
        close(c->saved);
    }
    char *text = NULL;
    if (c->file) {
        off_t n = lseek(fileno(c->file), 0, SEEK_END);
        if (n >= 0 && (text = malloc((size_t)n + 1)) != NULL) {
            ssize_t got = pread(fileno(c->file), text, (size_t)n, 0);
            text[got > 0 ? (size_t)got : 0] = '\0';
        }
        fclose(c->file);
    }
    *c = (struct capture){.saved = -1};
    return text;
}

static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (!needle || memmem(line, len, needle, strlen(needle)))
            n++;
        line = end ? end + 1 : NULL;
    }
    return n;
}

/* ------------------------------------------------------------- driving */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct tally {
    int calls;
    int acked;
    int refused;
    rd_kafka_resp_err_t last;
};

static void tally_done(void *opaque, rd_kafka_resp_err_t err)
{
    struct tally *t = opaque;
    t->calls++;
    t->last = err;
    if (err)
        t->refused++;
    else
        t->acked++;
}

struct until {
    struct loop *loop;
    struct loop_timer check, watchdog;
    int (*cond)(const void *arg);
    const void *arg;
    int met;
};

static void until_check(struct loop_timer *t)
{
    struct until *u = t->data;
    if (u->cond && u->cond(u->arg)) {
        u->met = 1;
        loop_stop(u->loop);
        return;
    }
    loop_timer_start(u->loop, &u->check, 10);
}

static void until_watchdog(struct loop_timer *t)
{
    struct until *u = t->data;
    loop_stop(u->loop);
}

/* Runs the loop until cond(arg) holds (1) or max_ms passes (0). A NULL
 * cond runs it for max_ms, for things that must NOT happen meanwhile. */
static int run_until(struct loop *loop, int (*cond)(const void *), const void *arg, uint64_t max_ms)
{
    struct until u = {.loop = loop, .cond = cond, .arg = arg};
    u.check = (struct loop_timer){.cb = until_check, .data = &u};
    u.watchdog = (struct loop_timer){.cb = until_watchdog, .data = &u};
    loop_timer_start(loop, &u.check, 0);
    loop_timer_start(loop, &u.watchdog, max_ms);
    loop_run(loop);
    loop_timer_stop(loop, &u.check);
    loop_timer_stop(loop, &u.watchdog);
    return u.met;
}

struct want_calls {
    const struct tally *t;
    int n;
};

static int calls_reached(const void *arg)
{
    const struct want_calls *w = arg;
    return w->t->calls >= w->n;
}

/* A producer borrows its config for its whole life (as the worker's does):
 * each one made here gets a slot of its own that outlives it. */
#define TEST_PRODUCER_CONFIGS 16

static struct producer *producer_for(struct loop *loop, const char *bootstrap,
                                     const char *const extra[])
{
    static struct config_kafka_property props[TEST_PRODUCER_CONFIGS][8];
    static struct config cfgs[TEST_PRODUCER_CONFIGS];
    static size_t used;
    if (used == TEST_PRODUCER_CONFIGS) {
        fprintf(stderr, "producer_for: more than %d producers\n", TEST_PRODUCER_CONFIGS);
        return NULL;
    }
    struct config_kafka_property *pr = props[used];
    struct config *cfg = &cfgs[used++];
    pr[0] = (struct config_kafka_property){"bootstrap.servers", (char *)bootstrap};
    size_t n = 1;
    for (size_t i = 0; extra && extra[i] && extra[i + 1] && n < 8; i += 2)
        pr[n++] = (struct config_kafka_property){(char *)extra[i], (char *)extra[i + 1]};
    *cfg = (struct config){.kafka = pr, .nkafka = n};
    cfg->limits.max_message_bytes = 1 << 20;
    struct err e = {0};
    struct producer *p = producer_new(loop, cfg, &e);
    if (!p)
        fprintf(stderr, "producer_new: %s\n", e.msg);
    return p;
}

static char *bytes(const char *s)
{
    size_t n = strlen(s);
    char *v = malloc(n ? n : 1);
    if (v && n)
        memcpy(v, s, n);
    return v;
}

/* -------------------------------------------------------------- scenarios */

static void producer_limits(struct loop *loop, const char *bootstrap)
{
    struct producer *p = producer_for(loop, bootstrap, NULL);
    size_t want = ((size_t)1 << 20) + MB_REPLY + MB_ENVELOPE;
    ok(p && producer_max_message_bytes(p) == want,
       "message.max.bytes is max_message_bytes + reply cap + envelope (%zu, want %zu)",
       p ? producer_max_message_bytes(p) : 0, want);
    producer_free(p, 0);
    const char *big[] = {"message.max.bytes", "50000000", NULL};
    p = producer_for(loop, bootstrap, big);
    ok(p && producer_max_message_bytes(p) == 50000000, "a larger kafka: message.max.bytes is kept");
    producer_free(p, 0);
    const char *small[] = {"message.max.bytes", "2000", NULL};
    p = producer_for(loop, bootstrap, small);
    ok(p && producer_max_message_bytes(p) == want, "a smaller kafka: message.max.bytes is raised");
    producer_free(p, 0);
}

/* (a) too large, (b) acknowledged, (f) refused by the broker. An unknown
 * topic cannot be had from this mock: librdkafka 2.0.2's producer asks for
 * auto-creation (allow.auto.create.topics=false is not honoured for it) and
 * the mock creates any name, even an invalid one. So the broker's refusals
 * are injected on Produce with push_errors. */
static void producer_outcomes(struct loop *loop, struct mock *m)
{
    struct capture cap;
    int captured = capture_start(&cap) == 0;
    struct producer *p = producer_for(loop, m->bootstrap, NULL);
    struct tally big = {0}, normal = {0}, unknown = {0}, large = {0}, after = {0};
    struct tally denied = {0}, denied_again = {0};
    int sent_big = -1, calls_in_send = -1, big_done = 0, later_calls = -1, normal_done = 0;
    int unknown_cmd = 0, unknown_done = 0, large_cmd = 0, large_done = 0, after_done = 0;
    int denied_cmd = 0, denied_done = 0, clear = 0;
    size_t pending_after = 99, pending_end = 99;
    uint64_t big_ms = 0;
    if (p) {
        size_t size = producer_max_message_bytes(p) + 1;
        char *value = malloc(size);
        if (value)
            memset(value, 'x', size);
        uint64_t t0 = now_ms();
        sent_big = producer_send(p, "t.out", "big", 3, value, size, NULL, tally_done, &big);
        calls_in_send = big.calls;
        big_done = run_until(loop, calls_reached, &(struct want_calls){&big, 1}, WATCHDOG_MS);
        big_ms = now_ms() - t0;
        pending_after = producer_pending(p);
        /* more loop turns: the refusal must not come back */
        run_until(loop, NULL, NULL, 500);
        later_calls = big.calls;

        producer_send(p, "t.out", "k", 1, bytes("v"), 1, NULL, tally_done, &normal);
        normal_done = run_until(loop, calls_reached, &(struct want_calls){&normal, 1}, WATCHDOG_MS);

        /* Produce is API key 0. 3 is UNKNOWN_TOPIC_OR_PART: librdkafka
         * refreshes metadata and retries it itself, so it reaches us only
         * once waited out (message.timeout.ms) */
        unknown_cmd = mock_cmd(m, "push_errors 0 3 3");
        producer_send(p, "t.out", "k", 1, bytes("unknown"), 7, NULL, tally_done, &unknown);
        unknown_done =
            run_until(loop, calls_reached, &(struct want_calls){&unknown, 1}, WATCHDOG_MS);
        /* 10 is MSG_SIZE_TOO_LARGE from the broker (its topic limit) */
        large_cmd = mock_cmd(m, "push_errors 0 1 10");
        producer_send(p, "t.out", "k", 1, bytes("large"), 5, NULL, tally_done, &large);
        large_done = run_until(loop, calls_reached, &(struct want_calls){&large, 1}, WATCHDOG_MS);
        producer_send(p, "t.out", "k", 1, bytes("after"), 5, NULL, tally_done, &after);
        after_done = run_until(loop, calls_reached, &(struct want_calls){&after, 1}, WATCHDOG_MS);
        /* 29 is TOPIC_AUTHORIZATION_FAILED. librdkafka then marks the topic
         * with it, so the next output is refused when produced */
        denied_cmd = mock_cmd(m, "push_errors 0 1 29");
        producer_send(p, "t.out", "k", 1, bytes("denied"), 6, NULL, tally_done, &denied);
        denied_done = run_until(loop, calls_reached, &(struct want_calls){&denied, 1}, WATCHDOG_MS);
        producer_send(p, "t.out", "k", 1, bytes("again"), 5, NULL, tally_done, &denied_again);
        denied_done &=
            run_until(loop, calls_reached, &(struct want_calls){&denied_again, 1}, WATCHDOG_MS);
        clear = mock_cmd(m, "clear_errors 0");
        run_until(loop, NULL, NULL, 300);
        pending_end = producer_pending(p);
    }
    producer_free(p, 1000);
    char *log = captured ? capture_stop(&cap) : NULL;

    ok(p != NULL, "producer on the mock cluster");
    ok(sent_big == 0 && calls_in_send == 0, "a too-large output is taken; done is not called "
                                            "inside producer_send");
    ok(big_done && big.calls == 1 && big.last == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
       "(a) too large: reported once as %s (%d calls)", rd_kafka_err2name(big.last), big.calls);
    ok(later_calls == 1 && pending_after == 0,
       "(a) and dropped: no second report, nothing "
       "pending (%d calls, %zu pending)",
       later_calls, pending_after);
    ok(big_ms < WATCHDOG_MS, "(a) reported in %llu ms, on the next loop turn",
       (unsigned long long)big_ms);
    const char *big_line = "produce_refused\",\"msg\":\"topic t.out: MSG_SIZE_TOO_LARGE";
    ok(log && count_lines(log, big_line) == 1, "(a) one produce_refused line for it (%d)",
       log ? count_lines(log, big_line) : -1);
    ok(normal_done && normal.calls == 1 && normal.last == 0,
       "(b) a normal output is "
       "acknowledged once (%d calls, %s)",
       normal.calls, rd_kafka_err2name(normal.last));
    ok(unknown_cmd && unknown_done && unknown.calls == 1 && unknown.last == 0,
       "(f) a broker's UNKNOWN_TOPIC_OR_PART is retried inside librdkafka: delivered (%d, %s)",
       unknown.calls, rd_kafka_err2name(unknown.last));
    ok(large_cmd && large_done && large.calls == 1 &&
           large.last == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
       "(a) a broker's MSG_SIZE_TOO_LARGE is permanent: reported once (%d, %s)", large.calls,
       rd_kafka_err2name(large.last));
    ok(after_done && after.calls == 1 && after.last == 0,
       "(a) the producer carries on after a refusal (%d, %s)", after.calls,
       rd_kafka_err2name(after.last));
    ok(denied_cmd && denied_done && denied.calls == 1 &&
           denied.last == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
       "(f) a broker's TOPIC_AUTHORIZATION_FAILED is permanent: reported once (%d, %s)",
       denied.calls, rd_kafka_err2name(denied.last));
    ok(denied_again.calls == 1 && denied_again.last == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
       "(f) and the topic stays refused for the next output (%d, %s)", denied_again.calls,
       rd_kafka_err2name(denied_again.last));
    ok(clear && pending_end == 0, "nothing left pending (%zu)", pending_end);
    if (log && getenv("CHECK_VERBOSE"))
        fputs(log, stderr);
    free(log);
}

/* (e) null stays null, empty stays empty */
static void producer_nulls(struct loop *loop, struct mock *m)
{
    struct producer *p = producer_for(loop, m->bootstrap, NULL);
    struct tally t = {0};
    if (!ok(p != NULL, "producer for t.null"))
        return;
    producer_send(p, "t.null", NULL, 0, NULL, 0, NULL, tally_done, &t);    /* null, null */
    producer_send(p, "t.null", "", 0, bytes(""), 0, NULL, tally_done, &t); /* empty, empty */
    producer_send(p, "t.null", NULL, 0, bytes("v"), 1, NULL, tally_done, &t);
    producer_send(p, "t.null", "k", 1, NULL, 0, NULL, tally_done, &t);
    int done = run_until(loop, calls_reached, &(struct want_calls){&t, 4}, WATCHDOG_MS);
    ok(done && t.acked == 4, "(e) four outputs acknowledged (%d)", t.acked);
    producer_free(p, 1000);

    /* read them back with a plain consumer, partition 0 from the start */
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstrap, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "group.id", "test-producer-nulls", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!ok(c != NULL, "consumer: %s", c ? "" : errstr)) {
        rd_kafka_conf_destroy(conf);
        return;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, "t.null", 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int got = 0, key_null[4] = {0}, val_null[4] = {0};
    size_t key_len[4] = {0}, val_len[4] = {0};
    uint64_t deadline = now_ms() + WATCHDOG_MS;
    while (got < 4 && now_ms() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c, 200);
        if (!msg)
            continue;
        if (!msg->err) {
            key_null[got] = msg->key == NULL;
            key_len[got] = msg->key_len;
            val_null[got] = msg->payload == NULL;
            val_len[got] = msg->len;
            got++;
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    ok(got == 4, "(e) read back 4 records (%d)", got);
    ok(key_null[0] && val_null[0], "(e) NULL key and NULL value arrive null");
    ok(!key_null[1] && key_len[1] == 0 && !val_null[1] && val_len[1] == 0,
       "(e) empty key and empty value arrive empty, not null");
    ok(key_null[2] && !val_null[2] && val_len[2] == 1, "(e) null key with a value");
    ok(!key_null[3] && key_len[3] == 1 && val_null[3], "(e) a key with a null value "
                                                       "(tombstone)");
}

/* (c) brokers down: waited out from memory, delivered when back, with a
 * bounded number of log lines */
static void producer_outage(struct loop *loop, struct mock *m)
{
    enum { N = 20 };
    struct capture cap;
    int captured = capture_start(&cap) == 0;
    /* delivery reports after 1 s instead of 300 s, so the time-outs reach
     * the producer's own retry path; reconnect quickly once back */
    const char *extra[] = {"message.timeout.ms", "1000", "reconnect.backoff.max.ms", "500", NULL};
    struct producer *p = producer_for(loop, m->bootstrap, extra);
    struct tally t = {0};
    int down = 0, up = 0, delivered = 0, calls_while_down = -1;
    size_t pending_while_down = 0;
    if (p) {
        /* connected first, so the outage is of a known broker */
        producer_send(p, "t.out", "warm", 4, bytes("up"), 2, NULL, tally_done, &t);
        run_until(loop, calls_reached, &(struct want_calls){&t, 1}, WATCHDOG_MS);
        down = mock_cmd(m, "broker_down 1");
        for (int i = 0; i < N; i++)
            producer_send(p, "t.out", "k", 1, bytes("while down"), 10, NULL, tally_done, &t);
        run_until(loop, NULL, NULL, 4000); /* several time-outs and retries */
        calls_while_down = t.calls - 1;
        pending_while_down = producer_pending(p);
        up = mock_cmd(m, "broker_up 1");
        delivered = run_until(loop, calls_reached, &(struct want_calls){&t, N + 1}, WATCHDOG_MS);
        run_until(loop, NULL, NULL, 300);
    }
    producer_free(p, 1000);
    char *log = captured ? capture_stop(&cap) : NULL;
    int lines = log ? count_lines(log, NULL) : -1;
    int failed = log ? count_lines(log, "\"delivery_failed\"") : -1;
    ok(down && up, "(c) broker down and up again");
    ok(calls_while_down == 0 && pending_while_down == N,
       "(c) while down nothing is reported or dropped (%d calls, %zu pending)", calls_while_down,
       pending_while_down);
    ok(delivered && t.calls == N + 1 && t.acked == N + 1,
       "(c) every output delivered once the broker is back (%d acked of %d)", t.acked, N + 1);
    ok(failed >= 1 && failed <= 2,
       "(c) time-outs went through the retry path, logged once per "
       "cause per 10 s (%d delivery_failed lines)",
       failed);
    ok(lines >= 1 && lines <= 40, "(c) %d stderr lines in all during the outage", lines);
    if (log && (getenv("CHECK_VERBOSE") || lines > 40))
        fputs(log, stderr);
    free(log);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* (d) flush and free return within their bound with every broker down */
static void producer_bounds(struct loop *loop, const char *bootstrap, const char *what,
                            struct mock *m)
{
    enum { N = 5, FLUSH_MS = 2000, FREE_MS = 1000 };
    struct capture cap;
    int captured = capture_start(&cap) == 0;
    struct producer *p = producer_for(loop, bootstrap, NULL);
    struct tally t = {0};
    size_t lost_flush = 0, lost_free = 0, lost_zero = 0;
    uint64_t flush_ms = 0, free_ms = 0, zero_ms = 0;
    int down = 1;
    if (p) {
        if (m) { /* connected first, then every broker down */
            producer_send(p, "t.out", "warm", 4, bytes("up"), 2, NULL, tally_done, &t);
            run_until(loop, calls_reached, &(struct want_calls){&t, 1}, WATCHDOG_MS);
            down = mock_cmd(m, "broker_down 1");
        }
        for (int i = 0; i < N; i++)
            producer_send(p, "t.out", "k", 1, bytes("stuck"), 5, NULL, tally_done, &t);
        run_until(loop, NULL, NULL, 200);
        uint64_t t0 = now_ms();
        lost_flush = producer_flush(p, FLUSH_MS);
        flush_ms = now_ms() - t0;
        t0 = now_ms();
        lost_free = producer_free(p, FREE_MS);
        free_ms = now_ms() - t0;
        p = producer_for(loop, bootstrap, NULL);
    }
    if (p) { /* free(0) at once with outputs in flight */
        for (int i = 0; i < N; i++)
            producer_send(p, "t.out", "k", 1, bytes("stuck"), 5, NULL, tally_done, &t);
        run_until(loop, NULL, NULL, 200);
        uint64_t t0 = now_ms();
        lost_zero = producer_free(p, 0);
        zero_ms = now_ms() - t0;
    }
    if (m)
        mock_cmd(m, "broker_up 1");
    char *log = captured ? capture_stop(&cap) : NULL;
    ok(down, "(d) %s: every broker down", what);
    ok(lost_flush == N && lost_free == N && lost_zero == N,
       "(d) %s: flush and free count the %d unacknowledged outputs (%zu, %zu, %zu)", what, N,
       lost_flush, lost_free, lost_zero);
    ok(flush_ms <= FLUSH_MS + SLACK_MS, "(d) %s: producer_flush(%d) returned in %llu ms", what,
       FLUSH_MS, (unsigned long long)flush_ms);
    ok(free_ms <= FREE_MS + SLACK_MS, "(d) %s: producer_free(%d) returned in %llu ms", what,
       FREE_MS, (unsigned long long)free_ms);
    ok(zero_ms <= SLACK_MS, "(d) %s: producer_free(0) returned in %llu ms", what,
       (unsigned long long)zero_ms);
    ok(t.calls == (m ? 1 : 0), "(d) %s: no done callback for lost outputs (%d)", what, t.calls);
    if (log && getenv("CHECK_VERBOSE"))
        fputs(log, stderr);
    free(log);
}

void test_producer(void)
{
    delivery_table();

    void (*saved_pipe)(int) = signal(SIGPIPE, SIG_IGN); /* a dead mock is a failed check */
    struct mock m;
    char *topics[] = {"--topic", "t.out:1", "--topic", "t.null:1", NULL};
    struct loop *loop = loop_new();
    if (!ok(loop && mock_start(&m, topics) == 0, "mock_kafka started beside unit_tests")) {
        mock_stop(&m);
        loop_free(loop);
        signal(SIGPIPE, saved_pipe);
        return;
    }
    producer_limits(loop, m.bootstrap);
    producer_outcomes(loop, &m);
    producer_nulls(loop, &m);
    producer_outage(loop, &m);
    producer_bounds(loop, m.bootstrap, "broker down", &m);
    char closed[64];
    snprintf(closed, sizeof closed, "127.0.0.1:%d", closed_port());
    producer_bounds(loop, closed, "closed port", NULL);
    mock_stop(&m);
    loop_free(loop);
    signal(SIGPIPE, saved_pipe);
}

/*
 * mock_kafka: a standalone Kafka cluster for tests, the demo and benchmarks,
 * built on librdkafka's mock cluster (rdkafka_mock.h, librdkafka 2.0.2). It
 * speaks the real wire protocol with real consumer groups, prints its
 * bootstrap list when ready and takes control commands (broker down/up,
 * injected errors, leader moves, topics) one per line on stdin.
 *
 * It must never listen anywhere but 127.0.0.1 (the mock binds loopback only;
 * we add no listener of our own), never outlive the script that started it
 * (EOF on stdin stops it unless --no-stdin), and never pretend: a topic
 * listed with --topic exists with exactly that partition count before the
 * ready line, or the program exits non-zero.
 *
 * Usage:
 *   mock_kafka [--brokers N] [--topic NAME[:PARTITIONS]]...
 *              [--default-partitions N] [--ready-file PATH] [--no-stdin]
 *
 * Scripts that start it in the background must keep a pipe open on its
 * stdin (coproc, a fifo, `sleep inf | mock_kafka`) or pass --no-stdin and
 * stop it with SIGTERM: with stdin at /dev/null it stops right after the
 * ready line.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <syslog.h>
#include <unistd.h>

#define MOCK_BROKERS_MAX 16
#define MOCK_PARTITIONS_MAX 1024 /* per topic; each partition keeps up to 5 MB */
#define MOCK_TOPIC_NAME_MAX 249  /* Kafka's own limit */
#define MOCK_LINE_MAX 4096       /* one control command, newline excluded */
#define MOCK_ARGS_MAX 64         /* words in one control command */
#define MOCK_ERRORS_MAX 10000    /* errors pushed by one push_errors */
#define MOCK_QUERY_TIMEOUT_MS 3000

/*
 * librdkafka 2.0.2's mock creates topics it is asked about (Metadata with
 * AllowAutoTopicCreation, i.e. from producers) with this many partitions.
 * The count is fixed in rd_kafka_mock_cluster_new() and there is no setter.
 */
#define MOCK_AUTO_CREATE_PARTITIONS 4

struct mock_topic_spec {
    const char *name; /* borrowed from argv or the command line */
    int partitions;   /* 0: use the default */
};

struct mock_options {
    int brokers;
    int default_partitions;
    struct mock_topic_spec *topics; /* owned */
    size_t topic_cnt;
    const char *ready_file; /* borrowed from argv; NULL: none */
    bool use_stdin;
};

struct mock_server {
    struct mock_options opts;
    rd_kafka_t *rk; /* owns nothing but the cluster's thread context */
    rd_kafka_mock_cluster_t *cluster;
    int signal_fd;
    char line[MOCK_LINE_MAX + 1];
    size_t line_len;
    bool line_too_long; /* drop bytes until the next newline */
    bool stopping;
    bool stdout_broken;
    bool stdin_used; /* some byte arrived on stdin */
};

static void mock_usage(FILE *out)
{
    fprintf(out,
            "usage: mock_kafka [--brokers N] [--topic NAME[:PARTITIONS]]...\n"
            "                  [--default-partitions N] [--ready-file PATH] [--no-stdin]\n"
            "\n"
            "  --brokers N             mock brokers, 1..%d (default 1)\n"
            "  --topic NAME[:P]        create NAME with P partitions before ready\n"
            "                          (P defaults to --default-partitions)\n"
            "  --default-partitions N  partitions for --topic/create_topic without a\n"
            "                          count (default %d); topics the mock auto-creates\n"
            "                          for producers always get %d (fixed in 2.0.2)\n"
            "  --ready-file PATH       also write the bootstrap list to PATH (atomic)\n"
            "  --no-stdin              ignore stdin: no commands, EOF does not stop\n"
            "\n"
            "Prints 'bootstrap=HOST:PORT[,...]' when ready. Stops on SIGTERM, SIGINT,\n"
            "'quit' or EOF on stdin. Commands on stdin, each answered 'ok' or\n"
            "'error: <why>':\n"
            "  broker_down ID | broker_up ID | broker_rtt ID MS\n"
            "  push_errors APIKEY CNT ERR [ERR...]  (one ERR: repeated CNT times)\n"
            "  clear_errors APIKEY\n"
            "  partition_leader TOPIC PARTITION BROKER_ID  (-1: no leader)\n"
            "  create_topic NAME [PARTITIONS]\n"
            "  bootstrap | quit\n",
            MOCK_BROKERS_MAX, MOCK_AUTO_CREATE_PARTITIONS, MOCK_AUTO_CREATE_PARTITIONS);
}

/* Parses all of s as a decimal integer in [min, max]. */
static bool mock_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (*s == '\0')
        return false;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool mock_parse_int(const char *s, int min, int max, int *out)
{
    long v;

    if (!mock_parse_long(s, min, max, &v))
        return false;
    *out = (int)v;
    return true;
}

/* Kafka's legal topic names: [A-Za-z0-9._-]{1,249}, not "." or "..". */
static bool mock_topic_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > MOCK_TOPIC_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int mock_usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("mock_kafka: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(try --help)\n", stderr);
    return 2;
}

/*
 * Fills opts from argv. Returns 0, 2 on a usage error (message printed), or
 * -1 when --help was printed. opts->topics is owned by opts either way.
 * NAME:P is split in place in argv.
 */
static int mock_options_parse(struct mock_options *opts, int argc, char **argv)
{
    opts->brokers = 1;
    opts->default_partitions = MOCK_AUTO_CREATE_PARTITIONS;
    opts->use_stdin = true;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        char *value = i + 1 < argc ? argv[i + 1] : NULL;

        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            mock_usage(stdout);
            return -1;
        }
        if (!strcmp(arg, "--no-stdin")) {
            opts->use_stdin = false;
            continue;
        }
        if (strcmp(arg, "--brokers") && strcmp(arg, "--topic") &&
            strcmp(arg, "--default-partitions") && strcmp(arg, "--ready-file"))
            return mock_usage_error("unknown argument \"%s\"", arg);
        if (!value)
            return mock_usage_error("%s needs a value", arg);
        i++;

        if (!strcmp(arg, "--brokers")) {
            if (!mock_parse_int(value, 1, MOCK_BROKERS_MAX, &opts->brokers))
                return mock_usage_error("--brokers: \"%s\" is not a number in 1..%d", value,
                                        MOCK_BROKERS_MAX);
        } else if (!strcmp(arg, "--default-partitions")) {
            if (!mock_parse_int(value, 1, MOCK_PARTITIONS_MAX, &opts->default_partitions))
                return mock_usage_error("--default-partitions: \"%s\" is not a number in 1..%d",
                                        value, MOCK_PARTITIONS_MAX);
        } else if (!strcmp(arg, "--ready-file")) {
            if (*value == '\0')
                return mock_usage_error("--ready-file: empty path");
            opts->ready_file = value;
        } else {
            struct mock_topic_spec *grown;
            struct mock_topic_spec spec = {value, 0};
            char *colon = strrchr(value, ':');

            if (colon) {
                *colon = '\0';
                if (!mock_parse_int(colon + 1, 1, MOCK_PARTITIONS_MAX, &spec.partitions))
                    return mock_usage_error("--topic %s: partitions \"%s\" is not a number "
                                            "in 1..%d",
                                            value, colon + 1, MOCK_PARTITIONS_MAX);
            }
            if (!mock_topic_name_valid(value))
                return mock_usage_error("--topic: \"%s\" is not a valid topic name "
                                        "([A-Za-z0-9._-], at most %d)",
                                        value, MOCK_TOPIC_NAME_MAX);
            for (size_t t = 0; t < opts->topic_cnt; t++)
                if (!strcmp(opts->topics[t].name, value))
                    return mock_usage_error("--topic %s given twice", value);
            grown = realloc(opts->topics, (opts->topic_cnt + 1) * sizeof(*grown));
            if (!grown) {
                fputs("mock_kafka: out of memory\n", stderr);
                return 2;
            }
            opts->topics = grown;
            opts->topics[opts->topic_cnt++] = spec;
        }
    }
    return 0;
}

/* librdkafka's own log lines: keep warnings and errors, on stderr. */
static void mock_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= LOG_WARNING)
        fprintf(stderr, "mock_kafka: librdkafka %s: %s\n", fac, buf);
}

/* For the short-lived query client: its connection errors are expected noise. */
static void mock_log_silent(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void mock_error_silent(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)err;
    (void)reason;
    (void)opaque;
}

/*
 * Writes one reply line on stdout and flushes. A closed stdout means the
 * reader is gone: remember it, and the main loop stops.
 */
static void mock_reply(struct mock_server *server, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    if (fflush(stdout) != 0 || ferror(stdout))
        server->stdout_broken = true;
}

/* Answers "ok" or the mock's error. Returns 0 or -1. */
static int mock_result_reply(struct mock_server *server, rd_kafka_resp_err_t err)
{
    if (!err) {
        mock_reply(server, "ok");
        return 0;
    }
    mock_reply(server, "error: %s (%s, %d)", rd_kafka_err2str(err), rd_kafka_err2name(err),
               (int)err);
    return -1;
}

/*
 * Asks the cluster, as a Kafka client, how many partitions topic has.
 * Returns 1 and sets *partitions when it exists, 0 when it does not, -1
 * when the cluster did not answer (errstr filled). Uses a full-list
 * Metadata request, which never auto-creates.
 */
static int mock_topic_partitions(struct mock_server *server, const char *topic, int *partitions,
                                 char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *client = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    int found = -1;

    if (rd_kafka_conf_set(conf, "bootstrap.servers",
                          rd_kafka_mock_cluster_bootstraps(server->cluster), errstr,
                          errstr_size) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, errstr_size) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    rd_kafka_conf_set_log_cb(conf, mock_log_silent);
    rd_kafka_conf_set_error_cb(conf, mock_error_silent);
    client = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (!client) {
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    err = rd_kafka_metadata(client, 1, NULL, &md, MOCK_QUERY_TIMEOUT_MS);
    if (err) {
        snprintf(errstr, errstr_size, "cannot read metadata: %s", rd_kafka_err2str(err));
        goto out;
    }
    found = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (!strcmp(md->topics[i].topic, topic) && !md->topics[i].err) {
            *partitions = md->topics[i].partition_cnt;
            found = 1;
            break;
        }
    }

out:
    if (md)
        rd_kafka_metadata_destroy(md);
    if (client)
        rd_kafka_destroy(client);
    return found;
}

static rd_kafka_resp_err_t mock_topic_create(struct mock_server *server, const char *name,
                                             int partitions)
{
    int replication = server->opts.brokers < 3 ? server->opts.brokers : 3;

    return rd_kafka_mock_topic_create(server->cluster, name, partitions, replication);
}

static int mock_cmd_broker(struct mock_server *server, int argc, char **argv)
{
    int id;

    if (!mock_parse_int(argv[1], 1, MOCK_BROKERS_MAX, &id) || id > server->opts.brokers) {
        mock_reply(server, "error: broker id \"%s\" is not in 1..%d", argv[1],
                   server->opts.brokers);
        return -1;
    }
    if (!strcmp(argv[0], "broker_down"))
        return mock_result_reply(server, rd_kafka_mock_broker_set_down(server->cluster, id));
    if (!strcmp(argv[0], "broker_up"))
        return mock_result_reply(server, rd_kafka_mock_broker_set_up(server->cluster, id));

    /* broker_rtt ID MS */
    int rtt; /* ms */
    if (argc != 3 || !mock_parse_int(argv[2], 0, 600000, &rtt)) {
        mock_reply(server, "error: rtt must be milliseconds in 0..600000");
        return -1;
    }
    return mock_result_reply(server, rd_kafka_mock_broker_set_rtt(server->cluster, id, rtt));
}

/* Broker error codes only: the mock sends them on the wire as int16. */
static bool mock_parse_error_code(const char *s, rd_kafka_resp_err_t *out)
{
    const struct rd_kafka_err_desc *descs;
    size_t desc_cnt;
    int code;

    if (!mock_parse_int(s, 0, SHRT_MAX, &code))
        return false;
    rd_kafka_get_err_descs(&descs, &desc_cnt);
    /* The table is indexed by code - RD_KAFKA_RESP_ERR__BEGIN. */
    size_t index = (size_t)(code - RD_KAFKA_RESP_ERR__BEGIN);
    if (index >= desc_cnt || !descs[index].name)
        return false;
    *out = (rd_kafka_resp_err_t)code;
    return true;
}

/* push_errors APIKEY CNT ERR [ERR...] */
static int mock_cmd_push_errors(struct mock_server *server, int argc, char **argv)
{
    rd_kafka_resp_err_t *errors = NULL;
    int api_key, cnt, given = argc - 3;
    int rc = -1;

    if (!mock_parse_int(argv[1], 0, SHRT_MAX, &api_key)) {
        mock_reply(server, "error: APIKEY \"%s\" is not a number in 0..%d", argv[1], SHRT_MAX);
        goto out;
    }
    if (!mock_parse_int(argv[2], 1, MOCK_ERRORS_MAX, &cnt)) {
        mock_reply(server, "error: CNT \"%s\" is not a number in 1..%d", argv[2], MOCK_ERRORS_MAX);
        goto out;
    }
    if (given != 1 && given != cnt) {
        mock_reply(server, "error: CNT is %d but %d errors were given (give 1 or %d)", cnt, given,
                   cnt);
        goto out;
    }
    errors = calloc((size_t)cnt, sizeof(*errors));
    if (!errors) {
        mock_reply(server, "error: out of memory");
        goto out;
    }
    for (int i = 0; i < cnt; i++) {
        const char *word = argv[3 + (given == 1 ? 0 : i)];
        if (!mock_parse_error_code(word, &errors[i])) {
            mock_reply(server,
                       "error: \"%s\" is not a broker error code (0..%d, known to "
                       "librdkafka)",
                       word, SHRT_MAX);
            goto out;
        }
    }
    rd_kafka_mock_push_request_errors_array(server->cluster, (int16_t)api_key, (size_t)cnt, errors);
    mock_reply(server, "ok");
    rc = 0;

out:
    free(errors);
    return rc;
}

/* clear_errors APIKEY */
static int mock_cmd_clear_errors(struct mock_server *server, int argc, char **argv)
{
    int api_key;

    (void)argc;
    if (!mock_parse_int(argv[1], 0, SHRT_MAX, &api_key)) {
        mock_reply(server, "error: APIKEY \"%s\" is not a number in 0..%d", argv[1], SHRT_MAX);
        return -1;
    }
    rd_kafka_mock_clear_request_errors(server->cluster, (int16_t)api_key);
    mock_reply(server, "ok");
    return 0;
}

/*
 * partition_leader TOPIC PARTITION BROKER_ID. The mock's set_leader creates
 * an unknown topic with PARTITION+1 partitions, silently: check first.
 */
static int mock_cmd_partition_leader(struct mock_server *server, int argc, char **argv)
{
    char errstr[512];
    int partition, broker, partitions = 0, found;

    (void)argc;
    if (!mock_parse_int(argv[2], 0, INT_MAX, &partition)) {
        mock_reply(server, "error: PARTITION \"%s\" is not a number >= 0", argv[2]);
        return -1;
    }
    if (!mock_parse_int(argv[3], -1, MOCK_BROKERS_MAX, &broker) || broker == 0 ||
        broker > server->opts.brokers) {
        mock_reply(server, "error: BROKER_ID \"%s\" is not -1 or in 1..%d", argv[3],
                   server->opts.brokers);
        return -1;
    }
    found = mock_topic_partitions(server, argv[1], &partitions, errstr, sizeof(errstr));
    if (found < 0) {
        mock_reply(server, "error: %s", errstr);
        return -1;
    }
    if (!found) {
        mock_reply(server, "error: topic \"%s\" does not exist", argv[1]);
        return -1;
    }
    if (partition >= partitions) {
        mock_reply(server, "error: topic \"%s\" has %d partitions", argv[1], partitions);
        return -1;
    }
    return mock_result_reply(
        server, rd_kafka_mock_partition_set_leader(server->cluster, argv[1], partition, broker));
}

/* create_topic NAME [PARTITIONS] */
static int mock_cmd_create_topic(struct mock_server *server, int argc, char **argv)
{
    char errstr[512];
    int partitions = server->opts.default_partitions, existing = 0;
    rd_kafka_resp_err_t err;

    if (!mock_topic_name_valid(argv[1])) {
        mock_reply(server, "error: \"%s\" is not a valid topic name", argv[1]);
        return -1;
    }
    if (argc == 3 && !mock_parse_int(argv[2], 1, MOCK_PARTITIONS_MAX, &partitions)) {
        mock_reply(server, "error: PARTITIONS \"%s\" is not a number in 1..%d", argv[2],
                   MOCK_PARTITIONS_MAX);
        return -1;
    }
    err = mock_topic_create(server, argv[1], partitions);
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS &&
        mock_topic_partitions(server, argv[1], &existing, errstr, sizeof(errstr)) == 1) {
        mock_reply(server, "error: topic \"%s\" already exists with %d partitions", argv[1],
                   existing);
        return -1;
    }
    return mock_result_reply(server, err);
}

static int mock_cmd_bootstrap(struct mock_server *server, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mock_reply(server, "bootstrap=%s", rd_kafka_mock_cluster_bootstraps(server->cluster));
    return 0;
}

static int mock_cmd_quit(struct mock_server *server, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    mock_reply(server, "ok");
    server->stopping = true;
    return 0;
}

struct mock_command {
    const char *name;
    int min_args, max_args; /* words after the name */
    int (*run)(struct mock_server *server, int argc, char **argv);
    const char *usage;
};

static const struct mock_command mock_commands[] = {
    {"broker_down", 1, 1, mock_cmd_broker, "broker_down ID"},
    {"broker_up", 1, 1, mock_cmd_broker, "broker_up ID"},
    {"broker_rtt", 2, 2, mock_cmd_broker, "broker_rtt ID MS"},
    {"push_errors", 3, MOCK_ARGS_MAX - 1, mock_cmd_push_errors,
     "push_errors APIKEY CNT ERR [ERR...]"},
    {"clear_errors", 1, 1, mock_cmd_clear_errors, "clear_errors APIKEY"},
    {"partition_leader", 3, 3, mock_cmd_partition_leader,
     "partition_leader TOPIC PARTITION BROKER_ID"},
    {"create_topic", 1, 2, mock_cmd_create_topic, "create_topic NAME [PARTITIONS]"},
    {"bootstrap", 0, 0, mock_cmd_bootstrap, "bootstrap"},
    {"quit", 0, 0, mock_cmd_quit, "quit"},
};

/* Runs one command line (NUL-terminated, no newline). Blank and # lines get no reply. */
static void mock_command_run(struct mock_server *server, char *line)
{
    char *argv[MOCK_ARGS_MAX];
    int argc = 0;
    char *save = NULL;

    for (char *word = strtok_r(line, " \t\r", &save); word; word = strtok_r(NULL, " \t\r", &save)) {
        if (argc == MOCK_ARGS_MAX) {
            mock_reply(server, "error: more than %d words", MOCK_ARGS_MAX);
            return;
        }
        argv[argc++] = word;
    }
    if (argc == 0 || argv[0][0] == '#')
        return;

    for (size_t i = 0; i < sizeof(mock_commands) / sizeof(mock_commands[0]); i++) {
        const struct mock_command *cmd = &mock_commands[i];
        if (strcmp(cmd->name, argv[0]))
            continue;
        if (argc - 1 < cmd->min_args || argc - 1 > cmd->max_args) {
            mock_reply(server, "error: usage: %s", cmd->usage);
            return;
        }
        cmd->run(server, argc, argv);
        return;
    }
    mock_reply(server, "error: unknown command \"%s\"", argv[0]);
}

/* Splits stdin bytes into lines; a line longer than MOCK_LINE_MAX is refused whole. */
static void mock_input(struct mock_server *server, const char *buf, size_t len)
{
    for (size_t i = 0; i < len && !server->stopping; i++) {
        char c = buf[i];

        if (c == '\n') {
            if (server->line_too_long)
                mock_reply(server, "error: line longer than %d bytes", MOCK_LINE_MAX);
            else {
                server->line[server->line_len] = '\0';
                mock_command_run(server, server->line);
            }
            server->line_len = 0;
            server->line_too_long = false;
        } else if (server->line_len == MOCK_LINE_MAX) {
            server->line_too_long = true;
        } else if (!server->line_too_long) {
            server->line[server->line_len++] = c;
        }
    }
}

/* Writes "bootstrap\n" to path through a temporary file and rename(2). */
static int mock_ready_file_write(const char *path, const char *bootstrap)
{
    char *tmp = NULL;
    FILE *f = NULL;
    int rc = -1;

    if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
        tmp = NULL;
        fprintf(stderr, "mock_kafka: out of memory\n");
        goto out;
    }
    f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "mock_kafka: --ready-file: cannot create %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    fprintf(f, "%s\n", bootstrap);
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
        fprintf(stderr, "mock_kafka: --ready-file: cannot write %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    if (fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "mock_kafka: --ready-file: cannot write %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "mock_kafka: --ready-file: cannot rename %s to %s: %s\n", tmp, path,
                strerror(errno));
        goto out;
    }
    rc = 0;

out:
    if (f)
        fclose(f);
    if (rc != 0 && tmp)
        unlink(tmp);
    free(tmp);
    return rc;
}

/*
 * Creates the handle and the cluster, then the listed topics, each checked
 * for its exact partition count. Returns 0 or -1 (message printed).
 */
static int mock_server_start(struct mock_server *server)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    /* The handle only hosts the mock cluster's thread: it never connects. */
    if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "mock_kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_log_cb(conf, mock_log);
    server->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!server->rk) {
        fprintf(stderr, "mock_kafka: cannot create librdkafka handle: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    server->cluster = rd_kafka_mock_cluster_new(server->rk, server->opts.brokers);
    if (!server->cluster) {
        fprintf(stderr, "mock_kafka: cannot create the mock cluster (see log above)\n");
        return -1;
    }

    for (size_t i = 0; i < server->opts.topic_cnt; i++) {
        const struct mock_topic_spec *spec = &server->opts.topics[i];
        int want = spec->partitions ? spec->partitions : server->opts.default_partitions;
        int have = 0;
        rd_kafka_resp_err_t err = mock_topic_create(server, spec->name, want);

        if (err) {
            fprintf(stderr, "mock_kafka: cannot create topic %s: %s\n", spec->name,
                    rd_kafka_err2str(err));
            return -1;
        }
        if (mock_topic_partitions(server, spec->name, &have, errstr, sizeof(errstr)) != 1 ||
            have != want) {
            fprintf(stderr,
                    "mock_kafka: topic %s: created with %d partitions, cluster reports %d\n",
                    spec->name, want, have);
            return -1;
        }
    }
    return 0;
}

static void mock_server_stop(struct mock_server *server)
{
    /* The cluster must go before the handle that hosts its thread. */
    if (server->cluster)
        rd_kafka_mock_cluster_destroy(server->cluster);
    server->cluster = NULL;
    if (server->rk)
        rd_kafka_destroy(server->rk);
    server->rk = NULL;
}

/* Waits for a signal, stdin, or a command that stops. Returns the exit code. */
static int mock_server_run(struct mock_server *server)
{
    struct pollfd fds[2] = {{.fd = server->signal_fd, .events = POLLIN},
                            {.fd = STDIN_FILENO, .events = POLLIN}};
    nfds_t nfds = server->opts.use_stdin ? 2 : 1;
    char buf[4096];

    while (!server->stopping && !server->stdout_broken) {
        if (poll(fds, nfds, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "mock_kafka: poll: %s\n", strerror(errno));
            return 1;
        }
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo info;
            if (read(server->signal_fd, &info, sizeof(info)) == (ssize_t)sizeof(info))
                break;
        }
        if (nfds == 2 && fds[1].revents) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n < 0) {
                fprintf(stderr, "mock_kafka: stdin: %s\n", strerror(errno));
                return 1;
            }
            if (n == 0) {
                if (!server->stdin_used)
                    fputs("mock_kafka: stdin is at EOF: stopping (keep a pipe open on stdin, "
                          "or pass --no-stdin)\n",
                          stderr);
                /* A last line without its newline still counts. */
                if (server->line_len > 0 || server->line_too_long)
                    mock_input(server, "\n", 1);
                break;
            }
            server->stdin_used = true;
            mock_input(server, buf, (size_t)n);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct mock_server server = {.signal_fd = -1};
    sigset_t stop_signals;
    const char *bootstrap;
    int rc;

    rc = mock_options_parse(&server.opts, argc, argv);
    if (rc != 0) {
        rc = rc < 0 ? 0 : rc;
        goto out;
    }
    rc = 1;

    /* Blocked before librdkafka starts its threads, so they inherit the
     * mask and the signals queue for our signalfd. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop_signals, NULL) != 0) {
        fprintf(stderr, "mock_kafka: sigprocmask: %s\n", strerror(errno));
        goto out;
    }
    /* A reader that went away shows up as a write error, not a death. */
    signal(SIGPIPE, SIG_IGN);
    server.signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
    if (server.signal_fd < 0) {
        fprintf(stderr, "mock_kafka: signalfd: %s\n", strerror(errno));
        goto out;
    }

    if (server.opts.default_partitions != MOCK_AUTO_CREATE_PARTITIONS)
        fprintf(stderr,
                "mock_kafka: note: --default-partitions applies to --topic and create_topic; "
                "topics the mock auto-creates still get %d partitions (librdkafka 2.0.2)\n",
                MOCK_AUTO_CREATE_PARTITIONS);

    if (mock_server_start(&server) != 0)
        goto out;

    bootstrap = rd_kafka_mock_cluster_bootstraps(server.cluster);
    if (server.opts.ready_file && mock_ready_file_write(server.opts.ready_file, bootstrap) != 0)
        goto out;
    mock_reply(&server, "bootstrap=%s", bootstrap);

    rc = mock_server_run(&server);

out:
    mock_server_stop(&server);
    if (server.signal_fd >= 0)
        close(server.signal_fd);
    free(server.opts.topics);
    return rc;
}

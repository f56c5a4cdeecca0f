/*
 * kafka: the syslog level mapping, which errors are connectivity errors,
 * "${ENV}" values of any length passed whole, and the probe's list of
 * missing topics from a metadata answer.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "kafka.h"
#include "probe.h"

static void test_levels(void)
{
    static const enum log_level want[8] = {LOG_ERROR, LOG_ERROR, LOG_ERROR, LOG_ERROR,
                                           LOG_WARN,  LOG_INFO,  LOG_INFO,  LOG_DEBUG};
    for (int i = 0; i < 8; i++)
        ok(kafka_log_level(i) == want[i], "syslog level %d maps to %d", i, (int)want[i]);
    ok(kafka_error_is_connectivity(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) &&
           kafka_error_is_connectivity(RD_KAFKA_RESP_ERR__TRANSPORT) &&
           kafka_error_is_connectivity(RD_KAFKA_RESP_ERR__RESOLVE) &&
           kafka_error_is_connectivity(RD_KAFKA_RESP_ERR__AUTHENTICATION) &&
           kafka_error_is_connectivity(RD_KAFKA_RESP_ERR__SSL) &&
           !kafka_error_is_connectivity(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) &&
           !kafka_error_is_connectivity(RD_KAFKA_RESP_ERR_NO_ERROR),
       "connectivity errors are told apart");
}

static void test_env_values(void)
{
    /* 4 KiB + 1 and 2000 bytes: both past the old 1023-byte buffer */
    size_t n = 4097;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    memcpy(big + n - 3, "END", 3);
    setenv("SWITCHYARD_TEST_BIG", big, 1);
    struct config_kafka_property props[] = {
        {.name = "client.id", .value = "${SWITCHYARD_TEST_BIG}"},
        {.name = "group.id", .value = "plain"},
        {.name = "sasl.password", .value = "${SWITCHYARD_TEST_UNSET_VAR}"}};
    struct config cfg = {.kafka = props, .nkafka = 3};
    char *var = NULL;
    const char *v = kafka_config_value(&cfg, "client.id", &var);
    ok(v && strlen(v) == n && strcmp(v, big) == 0, "a 4097-byte ${ENV} value comes back whole");
    ok(var && strcmp(var, "SWITCHYARD_TEST_BIG") == 0, "and the variable is named");
    free(var);
    v = kafka_config_value(&cfg, "group.id", &var);
    ok(v && strcmp(v, "plain") == 0 && var == NULL, "a plain value is itself");
    v = kafka_config_value(&cfg, "sasl.password", &var);
    ok(v == NULL && var && strcmp(var, "SWITCHYARD_TEST_UNSET_VAR") == 0,
       "an unset variable: NULL, with its name");
    free(var);
    ok(kafka_config_value(&cfg, "bootstrap.servers", NULL) == NULL, "absent: NULL");

    /* the conf gets the whole value: read it back from librdkafka */
    cfg.nkafka = 2;
    struct err e = {0};
    rd_kafka_conf_t *conf = kafka_conf_new(&cfg, KAFKA_CONSUMER, &e);
    char *back = malloc(n + 16);
    size_t blen = n + 16;
    ok(conf && rd_kafka_conf_get(conf, "client.id", back, &blen) == RD_KAFKA_CONF_OK &&
           strcmp(back, big) == 0,
       "kafka_conf_new passes the 4097-byte value to librdkafka whole (%zu)", blen);
    if (conf)
        rd_kafka_conf_destroy(conf);
    cfg.nkafka = 3;
    conf = kafka_conf_new(&cfg, KAFKA_CONSUMER, &e);
    ok(!conf && strstr(e.msg, "SWITCHYARD_TEST_UNSET_VAR") && strstr(e.msg, "not set"),
       "an unset variable is a config error naming it (%s)", e.msg);
    if (conf)
        rd_kafka_conf_destroy(conf);
    unsetenv("SWITCHYARD_TEST_BIG");
    free(back);
    free(big);
}

static void test_missing(void)
{
    rd_kafka_metadata_topic_t topics[] = {
        {.topic = (char *)"req", .err = RD_KAFKA_RESP_ERR_NO_ERROR},
        {.topic = (char *)"res", .err = RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE},
        {.topic = (char *)"dlq", .err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART},
        {.topic = (char *)"other", .err = RD_KAFKA_RESP_ERR_NO_ERROR},
    };
    struct rd_kafka_metadata md = {.topic_cnt = 4, .topics = topics};
    const char *want[4] = {"req", "res", "costs", "dlq"};
    const char *missing[4] = {0};
    size_t n = kafka_probe_missing(&md, want, 4, missing);
    ok(n == 2 && strcmp(missing[0], "costs") == 0 && strcmp(missing[1], "dlq") == 0,
       "absent and unknown topics are missing, in order; one without a leader exists (%zu)", n);
    md.topic_cnt = 0;
    n = kafka_probe_missing(&md, want, 4, missing);
    ok(n == 4, "an empty cluster misses all four (%zu)", n);
}

static int conf_is(rd_kafka_conf_t *conf, const char *name, const char *want)
{
    char v[64];
    size_t n = sizeof v;
    return conf && rd_kafka_conf_get(conf, name, v, &n) == RD_KAFKA_CONF_OK && !strcmp(v, want);
}

/* The latency-aware defaults hold unless worker.yaml says otherwise, and
 * each only on its own side. */
static void test_defaults(void)
{
    struct err e = {0};
    struct config none = {0};
    rd_kafka_conf_t *cons = kafka_conf_new(&none, KAFKA_CONSUMER, &e);
    rd_kafka_conf_t *prod = kafka_conf_new(&none, KAFKA_PRODUCER, &e);
    ok(conf_is(cons, "fetch.wait.max.ms", "10"), "consumer: fetch.wait.max.ms 10 by default");
    ok(conf_is(prod, "linger.ms", "1"), "producer: linger.ms 1 by default");
    ok(conf_is(prod, "fetch.wait.max.ms", "500") && conf_is(cons, "linger.ms", "5"),
       "and neither on the other side (librdkafka's own there)");
    rd_kafka_conf_destroy(cons);
    rd_kafka_conf_destroy(prod);
    struct config_kafka_property props[] = {{.name = "fetch.wait.max.ms", .value = "250"},
                                            {.name = "queue.buffering.max.ms", .value = "20"}};
    struct config set = {.kafka = props, .nkafka = 2};
    cons = kafka_conf_new(&set, KAFKA_CONSUMER, &e);
    prod = kafka_conf_new(&set, KAFKA_PRODUCER, &e);
    ok(conf_is(cons, "fetch.wait.max.ms", "250"), "worker.yaml's fetch.wait.max.ms wins");
    ok(conf_is(prod, "linger.ms", "20"), "worker.yaml's linger (by its other name) wins");
    if (cons)
        rd_kafka_conf_destroy(cons);
    if (prod)
        rd_kafka_conf_destroy(prod);
}

void test_kafka(void)
{
    test_levels();
    test_env_values();
    test_defaults();
    test_missing();
}

/*
 * kafka: shared librdkafka plumbing. Never set here what at-least-once
 * depends on; the consumer and the producer set those themselves.
 */
#include "kafka.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Properties only one side understands; librdkafka warns about the rest. */
static const char *const consumer_only[] = {
    "group.id", "partition.assignment.strategy", "session.timeout.ms", "group.instance.id",
    "auto.offset.reset", "max.poll.interval.ms", "heartbeat.interval.ms", NULL};
static const char *const producer_only[] = {"message.timeout.ms", "compression.type",
                                            "linger.ms", "queue.buffering.max.ms",
                                            "batch.num.messages", NULL};

static int kafka_in(const char *name, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, enum kafka_role role, struct err *e)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < cfg->nkafka; i++) {
        const char *name = cfg->kafka[i].name, *value = cfg->kafka[i].value;
        if (kafka_in(name, role == KAFKA_CONSUMER ? producer_only : consumer_only))
            continue;
        char expanded[1024];
        size_t n = strlen(value);
        if (n > 3 && value[0] == '$' && value[1] == '{' && value[n - 1] == '}') {
            char var[256];
            snprintf(var, sizeof var, "%.*s", (int)(n - 3), value + 2);
            const char *env = getenv(var);
            if (!env) {
                rd_kafka_conf_destroy(conf);
                err_set(e, ERR_CONFIG, "kafka_config",
                        "kafka %s: environment variable %s is not set", name, var);
                return NULL;
            }
            snprintf(expanded, sizeof expanded, "%s", env);
            value = expanded;
        }
        if (kafka_conf_set(conf, name, value, e) < 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, struct err *e)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return err_set(e, ERR_CONFIG, "kafka_config", "kafka %s: %s", name, errstr);
    return 0;
}

static void kafka_woken(struct loop_io *io, unsigned events)
{
    (void)events;
    struct kafka_wake *w = io->data;
    char buf[256];
    while (read(w->fds[0], buf, sizeof buf) > 0)
        ;
    w->cb(w->data);
}

int kafka_wake_start(struct kafka_wake *w, struct loop *loop, rd_kafka_queue_t *queue,
                     void (*cb)(void *data), void *data, struct err *e)
{
    *w = (struct kafka_wake){.loop = loop, .queue = queue, .fds = {-1, -1}, .cb = cb,
                             .data = data};
    if (pipe2(w->fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return err_set(e, ERR_FATAL, "pipe", "cannot create a pipe");
    rd_kafka_queue_io_event_enable(queue, w->fds[1], "!", 1);
    w->io = (struct loop_io){.fd = w->fds[0], .cb = kafka_woken, .data = w};
    if (loop_io_set(loop, &w->io, LOOP_READ) < 0)
        return err_set(e, ERR_FATAL, "epoll", "cannot watch a pipe");
    return 0;
}

void kafka_wake_stop(struct kafka_wake *w)
{
    if (w->queue)
        rd_kafka_queue_io_event_enable(w->queue, -1, NULL, 0);
    if (w->io.events)
        loop_io_set(w->loop, &w->io, 0);
    for (int i = 0; i < 2; i++) /* > 0: a zeroed struct must not close stdin */
        if (w->fds[i] > 0)
            close(w->fds[i]);
    w->queue = NULL;
    w->fds[0] = w->fds[1] = -1;
}

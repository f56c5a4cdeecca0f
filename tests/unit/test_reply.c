/*
 * reply: the request-reply conventions. Every case of
 * tests/data/reply/cases.txt (the header-copy rule and the reply-topic
 * decision, both pure) holds exactly, and worker.yaml's reply: section
 * loads with its defaults and as written.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "output.h"

#define CASES "tests/data/reply/cases.txt"
#define CASE_MAX_NAMES 16
#define CASE_VALUE_MAX 8192

/* One header value of a case: a null value has is_null set. */
struct case_value {
    char bytes[CASE_VALUE_MAX];
    size_t len;
    int is_null;
};

/* "text", hex:.., null, empty or C*N -> v; 0 when the text is none of those */
static int case_value_parse(const char *text, struct case_value *v)
{
    memset(v, 0, sizeof *v);
    size_t n = strlen(text);
    if (strcmp(text, "null") == 0) {
        v->is_null = 1;
        return 1;
    }
    if (strcmp(text, "empty") == 0)
        return 1;
    if (n >= 2 && text[0] == '"' && text[n - 1] == '"' && n - 2 <= CASE_VALUE_MAX) {
        memcpy(v->bytes, text + 1, n - 2);
        v->len = n - 2;
        return 1;
    }
    if (strncmp(text, "hex:", 4) == 0 && (n - 4) % 2 == 0 && (n - 4) / 2 <= CASE_VALUE_MAX) {
        for (size_t i = 4; i < n; i += 2) {
            unsigned byte;
            if (sscanf(text + i, "%2x", &byte) != 1)
                return 0;
            v->bytes[v->len++] = (char)byte;
        }
        return 1;
    }
    if (n >= 3 && text[1] == '*') {
        long count = strtol(text + 2, NULL, 10);
        if (count < 0 || count > CASE_VALUE_MAX)
            return 0;
        memset(v->bytes, text[0], (size_t)count);
        v->len = (size_t)count;
        return 1;
    }
    return 0;
}

struct reply_case {
    char title[128];
    char *copy[CASE_MAX_NAMES], *topics[CASE_MAX_NAMES];
    size_t ncopy, ntopics;
    int copy_set;
    rd_kafka_headers_t *in;
    char header_names[CASE_MAX_NAMES][64];
    struct case_value headers[CASE_MAX_NAMES];
    size_t nheaders;
    size_t skipped;
    char skipped_name[64];
    char topic[256];
    char refused[256];
};

static void case_release(struct reply_case *c)
{
    for (size_t i = 0; i < c->ncopy; i++)
        free(c->copy[i]);
    for (size_t i = 0; i < c->ntopics; i++)
        free(c->topics[i]);
    if (c->in)
        rd_kafka_headers_destroy(c->in);
    memset(c, 0, sizeof *c);
}

/* The words after the directive -> names (strdup'd). */
static void case_names(char *rest, char **names, size_t *n)
{
    for (char *w = strtok(rest, " "); w && *n < CASE_MAX_NAMES; w = strtok(NULL, " "))
        names[(*n)++] = strdup(w);
}

/* Runs one case against the functions under test. */
static void case_run(struct reply_case *c)
{
    static char results[] = "r.out", requests[] = "r.in";
    static char *const default_copy[] = {"traceparent", "tracestate", "kafka_correlationId"};
    struct config cfg = {0};
    cfg.topic_results = results;
    cfg.topic_requests = requests;
    cfg.reply.copy_headers = c->copy_set ? c->copy : (char **)default_copy;
    cfg.reply.ncopy_headers = c->copy_set ? c->ncopy : 3;
    cfg.reply.topics = c->topics;
    cfg.reply.ntopics = c->ntopics;

    size_t skipped = 99;
    const char *skipped_name = NULL;
    rd_kafka_headers_t *out = output_reply_headers(&cfg, c->in, &skipped, &skipped_name);
    size_t got = out ? rd_kafka_header_cnt(out) : 0;
    ok(got == c->nheaders, "%s: %zu headers copied (%zu)", c->title, c->nheaders, got);
    for (size_t i = 0; out && i < got && i < c->nheaders; i++) {
        const char *name;
        const void *value;
        size_t size;
        const struct case_value *want = &c->headers[i];
        if (!ok(rd_kafka_header_get_all(out, i, &name, &value, &size) == 0, "%s: header %zu",
                c->title, i))
            continue;
        ok(strcmp(name, c->header_names[i]) == 0, "%s: header %zu is %s (%s)", c->title, i,
           c->header_names[i], name);
        if (want->is_null)
            ok(value == NULL, "%s: %s stays null", c->title, name);
        else
            ok(value != NULL && size == want->len && memcmp(value, want->bytes, size) == 0,
               "%s: %s byte for byte (%zu bytes, want %zu)", c->title, name, size, want->len);
    }
    ok(skipped == c->skipped, "%s: %zu skipped (%zu)", c->title, c->skipped, skipped);
    if (c->skipped)
        ok(skipped_name && strcmp(skipped_name, c->skipped_name) == 0,
           "%s: the first skipped is %s (%s)", c->title, c->skipped_name,
           skipped_name ? skipped_name : "none");
    if (out)
        rd_kafka_headers_destroy(out);

    int refused = -1;
    char named[256];
    const char *topic = output_result_topic(&cfg, c->in, &refused, named, sizeof named);
    ok(topic && strcmp(topic, c->topic) == 0, "%s: the result goes to %s (%s)", c->title, c->topic,
       topic ? topic : "NULL");
    /* an allowed topic is the allow-list's own copy, which lives as long as
     * the config (the producer borrows it) */
    int from_list = topic == results;
    for (size_t i = 0; i < c->ntopics; i++)
        from_list |= topic == c->topics[i];
    ok(from_list, "%s: the topic returned is the config's own string", c->title);
    int want_refused = strcmp(c->refused, "-") != 0;
    ok(refused == want_refused, "%s: refused %d (%d)", c->title, want_refused, refused);
    if (want_refused)
        ok(strcmp(named, c->refused) == 0, "%s: the warning names \"%s\" (\"%s\")", c->title,
           c->refused, named);
}

static void test_reply_cases(void)
{
    char *text = check_read_file(CASES, NULL);
    if (!ok(text != NULL, CASES))
        return;
    struct reply_case *c = calloc(1, sizeof *c);
    if (!ok(c != NULL, "memory")) {
        free(text);
        return;
    }
    size_t ncases = 0, lineno = 0;
    int open = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *sp = strchr(line, ' ');
        char *rest = sp ? sp + 1 : line + strlen(line);
        if (sp)
            *sp = '\0';
        if (strcmp(line, "case") == 0) {
            case_release(c);
            snprintf(c->title, sizeof c->title, "%s", rest);
            c->in = rd_kafka_headers_new(8);
            snprintf(c->refused, sizeof c->refused, "-");
            open = 1;
        } else if (!open) {
            ok(0, CASES ": \"%s\" outside a case (line %zu)", line, lineno);
        } else if (strcmp(line, "copy") == 0) {
            c->copy_set = 1;
            case_names(rest, c->copy, &c->ncopy);
        } else if (strcmp(line, "topics") == 0) {
            case_names(rest, c->topics, &c->ntopics);
        } else if (strcmp(line, "in") == 0 || strcmp(line, "header") == 0) {
            char *value = strchr(rest, ' ');
            struct case_value *v = malloc(sizeof *v);
            if (!value || !v || !case_value_parse(value + 1, v)) {
                ok(0, CASES ": a bad value (line %zu)", lineno);
                free(v);
                continue;
            }
            *value = '\0';
            if (line[0] == 'i') {
                rd_kafka_header_add(c->in, rest, -1, v->is_null ? NULL : v->bytes,
                                    v->is_null ? 0 : (ssize_t)v->len);
            } else if (c->nheaders < CASE_MAX_NAMES) {
                snprintf(c->header_names[c->nheaders], sizeof c->header_names[0], "%s", rest);
                c->headers[c->nheaders++] = *v;
            }
            free(v);
        } else if (strcmp(line, "skipped") == 0) {
            c->skipped = (size_t)strtoul(rest, NULL, 10);
            char *name = strchr(rest, ' ');
            snprintf(c->skipped_name, sizeof c->skipped_name, "%s", name ? name + 1 : "");
        } else if (strcmp(line, "topic") == 0) {
            snprintf(c->topic, sizeof c->topic, "%s", rest);
        } else if (strcmp(line, "refused") == 0) {
            snprintf(c->refused, sizeof c->refused, "%s", rest);
        } else if (strcmp(line, "end") == 0) {
            case_run(c);
            ncases++;
            open = 0;
        } else {
            ok(0, CASES ": unknown directive \"%s\" (line %zu)", line, lineno);
        }
    }
    ok(!open, CASES ": the last case ends with \"end\"");
    ok(ncases >= 20, CASES ": at least 20 cases (%zu)", ncases);
    case_release(c);
    free(c);
    free(text);
}

static void test_reply_config(void)
{
    struct ydoc_errors errs = {0};
    struct config *cfg = config_load("config/worker.yaml", &errs);
    ok(cfg && errs.count == 0, "config/worker.yaml loads");
    if (cfg) {
        ok(cfg->reply.ncopy_headers == 3 &&
               strcmp(cfg->reply.copy_headers[0], "traceparent") == 0 &&
               strcmp(cfg->reply.copy_headers[1], "tracestate") == 0 &&
               strcmp(cfg->reply.copy_headers[2], "kafka_correlationId") == 0,
           "shipped: the three default headers");
        ok(cfg->reply.ntopics == 0, "shipped: no reply topic allowed");
    }
    config_free(cfg);

    cfg = config_load("tests/data/config/reply-worker.yaml", &errs);
    ok(cfg && errs.count == 0, "reply-worker.yaml loads (%s)", errs.count ? errs.lines[0] : "");
    if (cfg) {
        ok(cfg->reply.ncopy_headers == 1 && strcmp(cfg->reply.copy_headers[0], "x-trace") == 0,
           "copy_headers as written");
        ok(cfg->reply.ntopics == 2 && strcmp(cfg->reply.topics[0], "orders.replies") == 0 &&
               strcmp(cfg->reply.topics[1], "r.out") == 0,
           "reply_topics as written (the results topic may be listed)");
        const char *t = config_reply_topic_find(cfg, "orders.replies!", 14);
        ok(t == cfg->reply.topics[0], "found by its bytes, not NUL-terminated");
        ok(!config_reply_topic_find(cfg, "orders.replies", 13), "a prefix is not found");
        ok(!config_reply_topic_find(cfg, NULL, 0), "NULL is not found");
    }
    config_free(cfg);

    cfg = config_load("tests/data/config/reply-none.yaml", &errs);
    ok(cfg && errs.count == 0, "reply-none.yaml loads (%s)", errs.count ? errs.lines[0] : "");
    if (cfg)
        ok(cfg->reply.ncopy_headers == 0 && cfg->reply.ntopics == 0,
           "copy_headers: [] copies none");
    config_free(cfg);
    ydoc_errors_release(&errs);
}

void test_reply(void)
{
    test_reply_cases();
    test_reply_config();
}

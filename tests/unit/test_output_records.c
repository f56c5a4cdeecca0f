/*
 * output_records: results and cost records, byte for byte, against
 * tests/data/output/records.txt ("NAME JSON" per line). The table was
 * written by the jansson-tree encoder output.c had before the streaming
 * writer (OUTPUT_RECORDS_WRITE=FILE writes it anew), so a change of a key,
 * its place or a value fails here before any schema check runs.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "output.h"
#include "request_flags.h"
#include "router.h"

#define RECORDS_MAX 64

struct records {
    char *name[RECORDS_MAX];
    char *text[RECORDS_MAX];
    size_t n;
};

static void records_want(char *line, int lineno, void *ctx)
{
    struct records *want = ctx;
    char *sp = strchr(line, ' ');
    if (!ok(sp && want->n < RECORDS_MAX, "records.txt:%d: NAME JSON", lineno))
        return;
    *sp = '\0';
    want->name[want->n] = strdup(line);
    want->text[want->n] = strdup(sp + 1);
    want->n++;
}

static const char *records_find(const struct records *want, const char *name)
{
    for (size_t i = 0; i < want->n; i++)
        if (strcmp(want->name[i], name) == 0)
            return want->text[i];
    return NULL;
}

/* Checks one record (owned, freed here) against the table, or adds it to
 * the table being written. */
static void records_check(const struct records *want, FILE *write, int *seen, const char *name,
                          char *got, size_t len)
{
    (*seen)++;
    if (!ok(got && strlen(got) == len, "%s: encoded, len %zu", name, len))
        goto out;
    if (write) {
        fprintf(write, "%s %s\n", name, got);
        goto out;
    }
    const char *w = records_find(want, name);
    if (!ok(w != NULL, "%s: in records.txt", name))
        goto out;
    json_t *a = json_loads(got, JSON_ALLOW_NUL, NULL), *b = json_loads(w, JSON_ALLOW_NUL, NULL);
    ok(a && json_equal(a, b), "%s: JSON-equal to the table", name);
    ok(strcmp(got, w) == 0, "%s: byte-identical\n    got:  %s\n    want: %s", name, got, w);
    json_decref(a);
    json_decref(b);
out:
    free(got);
}

struct records_ctx {
    const struct records *want;
    FILE *write;
    int seen;
};

static void records_result(struct records_ctx *c, const char *name, const struct job *job,
                           const char *code, const char *msg)
{
    size_t len = 0;
    char *text = output_result(job, "w-1", code, msg, &len);
    records_check(c->want, c->write, &c->seen, name, text, len);
}

static void records_cost(struct records_ctx *c, const char *name, const struct job *job,
                         const struct attempt *a, size_t number)
{
    size_t len = 0;
    char *text = output_cost(job, a, number, "w-\"1\"", &len);
    records_check(c->want, c->write, &c->seen, name, text, len);
}

/* Metadata whose compact JSON is exactly `bytes` long: {"k":"xxx..."}. */
static json_t *records_metadata(size_t bytes)
{
    size_t n = bytes - 8;
    char *s = malloc(n + 1);
    memset(s, 'x', n);
    s[n] = '\0';
    json_t *m = json_pack("{s:s}", "k", s);
    free(s);
    return m;
}

static void records_run(struct records_ctx *c, struct policy *p, rd_kafka_topic_t *rkt)
{
    rd_kafka_message_t msg = {.rkt = rkt, .partition = 2, .offset = 7};
    struct request_flags rf;
    char flags[] = "json_schema,tools,model=gpt/claude,seed";
    request_flags_fill(&rf, "chat", 300, flags);
    rf.req.id = "req-\xc3\xa9\"1\"";
    rf.req.tenant = "acme";
    rf.req.metadata = json_pack("{s:s, s:i, s:[b, n, f], s:{}}", "batch", "b\n1\xe2\x82\xac", "n",
                                3, "list", 1, 0.25, "empty");
    struct attempt at[3];
    memset(at, 0, sizeof at);
    at[0] = (struct attempt){.model = 1,
                             .status = ATTEMPT_ERROR,
                             .http_status = 529,
                             .latency_ms = 1234,
                             .ts_ms = 1700000000001};
    snprintf(at[0].call_id, sizeof at[0].call_id, "0190f3a2-b4c0-7033-8033-000000000031");
    snprintf(at[0].error_code, sizeof at[0].error_code, "overloaded");
    snprintf(at[0].error_msg, sizeof at[0].error_msg,
             "say \"no\"\\\t\x01 \xe6\x97\xa5 \xf0\x9f\x98\x80");
    at[1] = (struct attempt){.model = 0,
                             .status = ATTEMPT_OK,
                             .http_status = 200,
                             .latency_ms = 88,
                             .billable = 1,
                             .cost_nusd = 4500123,
                             .ts_ms = 1700000000002};
    at[1].usage.tokens[COST_INPUT] = 1200;
    at[1].usage.tokens[COST_OUTPUT] = 300;
    at[1].usage.tokens[COST_CACHE_READ] = 7;
    snprintf(at[1].call_id, sizeof at[1].call_id, "0190f3a2-b4c0-7033-8033-000000000032");
    struct job job = {.msg = &msg,
                      .policy = p,
                      .req = &rf.req,
                      .ok = 1,
                      .nattempts = 2,
                      .attempts = at,
                      .answered_by = 1,
                      .received_ms = 1700000000000,
                      .completed_ms = 1700000000999};
    router_plan(p, &rf.req, &job.plan);
    ok(job.plan.outcome == ROUTER_OK && job.plan.pinned && job.plan.ncandidates >= 2,
       "the plan is pinned, two candidates");
    job.fate[0] = FATE_FAILED;
    job.fate[1] = FATE_TAKEN;
    char fate_reason[] = "overloaded (529), \"twice\"";
    job.fate_reason[0] = fate_reason;

    char text[] = "{\"label\": \"sp\\u00e9m\", \"n\": [1, 2.5e3, true, null]}";
    job.reply.text = text;
    job.reply.text_len = strlen(text);
    job.reply.finish = PROVIDER_FINISH_TOOL_CALLS;
    char model[] = "claude-x-2025";
    job.reply.model = model;
    job.reply.tool_calls = json_pack("[{s:s, s:s, s:{s:i, s:s}}]", "id", "call_0", "name", "lookup",
                                     "arguments", "n", 1, "q", "\"\\/");
    records_result(c, "result_ok_json_tools", &job, NULL, NULL);
    records_cost(c, "cost_error_attempt", &job, &at[0], 1);
    records_cost(c, "cost_settled", &job, &at[1], 2);

    /* a reservation: usage 0, "reserved" with reserved_nusd */
    struct attempt r = {.model = 0,
                        .status = ATTEMPT_OK,
                        .ts_ms = 1700000000003,
                        .reservation = 1,
                        .reserved_nusd = 987654321};
    snprintf(r.call_id, sizeof r.call_id, "0190f3a2-b4c0-7033-8033-000000000033");
    records_cost(c, "cost_reserved", &job, &r, 3);

    /* an hour-long cache write shows cache_write_1h; a tier and a price
     * entry show in the cost record */
    at[1].usage.tokens[COST_CACHE_WRITE_1H] = 50;
    at[1].usage.tokens[COST_REASONING] = 11;
    struct policy_model *m0 = &p->models[0];
    struct cost_prices saved = m0->prices;
    m0->prices.ntiers = 1;
    m0->prices.tiers[0].above_input_tokens = 1000;
    for (int k = 0; k < COST_NCAT; k++)
        m0->prices.tiers[0].nusd_per_mtok[k] = m0->prices.nusd_per_mtok[k] * 2 + (uint64_t)k;
    m0->price_entry = strdup("anthropic/claude-x");
    snprintf(m0->price_date, sizeof m0->price_date, "2025-01-31");
    records_cost(c, "cost_tier_entry_1h", &job, &at[1], 2);
    records_result(c, "result_1h", &job, NULL, NULL);

    /* metadata at the cost record's bound, and one byte over it */
    json_t *meta = rf.req.metadata;
    rf.req.metadata = records_metadata(OUTPUT_COST_METADATA_MAX);
    records_cost(c, "cost_metadata_at_max", &job, &at[1], 2);
    json_decref(rf.req.metadata);
    rf.req.metadata = records_metadata(OUTPUT_COST_METADATA_MAX + 1);
    records_cost(c, "cost_metadata_over_max", &job, &at[1], 2);
    records_result(c, "result_big_metadata", &job, NULL, NULL);
    json_decref(rf.req.metadata);
    rf.req.metadata = meta;
    m0->prices = saved;
    at[1].usage.tokens[COST_CACHE_WRITE_1H] = 0;

    /* too large: an error result without output and metadata */
    records_result(c, "result_replaced", &job, "result_too_large",
                   "the result (9 bytes) could not be published: \xe2\x80\x94 big");

    /* cut JSON: json_error; not pinned; no reply model */
    char cut[] = "{\"label\":\"sp";
    job.reply.text = cut;
    job.reply.text_len = strlen(cut);
    job.reply.finish = PROVIDER_FINISH_LENGTH;
    json_decref(job.reply.tool_calls);
    job.reply.tool_calls = json_array(); /* empty: not shown */
    job.reply.model = NULL;
    job.plan.pinned = 0;
    records_result(c, "result_json_error", &job, NULL, NULL);

    /* a text with NUL and control bytes, format TEXT, no tenant */
    char odd[] = "a\0b\x1f\x7f\r\n\"\\/\xc2\xa0";
    job.reply.text = odd;
    job.reply.text_len = sizeof odd - 1;
    job.reply.finish = PROVIDER_FINISH_STOP;
    rf.req.format = REQUEST_FORMAT_TEXT;
    rf.req.tenant = NULL;
    records_result(c, "result_text_nul", &job, NULL, NULL);
    records_cost(c, "cost_no_tenant", &job, &at[0], 1);

    /* json_object asked, the reply a JSON array */
    char arr[] = "[1,2]";
    job.reply.text = arr;
    job.reply.text_len = strlen(arr);
    rf.req.format = REQUEST_FORMAT_JSON;
    records_result(c, "result_json_not_object", &job, NULL, NULL);
    /* json_schema, any JSON value; and an empty reply */
    rf.req.format = REQUEST_FORMAT_JSON_SCHEMA;
    char str[] = "\"just a string\"";
    job.reply.text = str;
    job.reply.text_len = strlen(str);
    records_result(c, "result_json_scalar", &job, NULL, NULL);
    job.reply.text = NULL;
    job.reply.text_len = 0;
    records_result(c, "result_no_text", &job, NULL, NULL);

    /* failed: the error, no output, the last attempt's model */
    job.ok = 0;
    at[1].status = ATTEMPT_TIMEOUT;
    at[1].billable = 0;
    snprintf(at[1].error_code, sizeof at[1].error_code, "timeout");
    snprintf(at[1].error_msg, sizeof at[1].error_msg, "no answer in 30000 ms");
    snprintf(job.error_code, sizeof job.error_code, "all_failed");
    char failed_msg[64];
    snprintf(failed_msg, sizeof failed_msg, "every candidate failed: \"%s\"", "x\ty");
    job.error_msg = failed_msg;
    records_result(c, "result_failed", &job, NULL, NULL);
    records_cost(c, "cost_timeout", &job, &at[1], 2);

    /* a message cut inside a character: the tree encoder dropped the whole
     * attempt; now the bad bytes are U+FFFD and the rest stays */
    snprintf(at[0].error_msg, sizeof at[0].error_msg, "cut \xe6\x97");
    size_t cut_len = 0;
    char *cut_text = output_result(&job, "w-1", NULL, NULL, &cut_len);
    json_t *cut_r = cut_text ? json_loadb(cut_text, cut_len, 0, NULL) : NULL;
    const char *cut_msg = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(cut_r, "attempts"), 0), "error"),
        "message"));
    ok(cut_msg && strcmp(cut_msg, "cut \xef\xbf\xbd\xef\xbf\xbd") == 0,
       "invalid UTF-8 in an error message: U+FFFD per bad byte, the attempt kept");
    json_decref(cut_r);
    free(cut_text);

    /* nothing tried: no model, provider or attempts; no metadata */
    job.nattempts = 0;
    json_decref(rf.req.metadata);
    rf.req.metadata = NULL;
    snprintf(job.error_code, sizeof job.error_code, "over_budget");
    records_result(c, "result_no_attempts", &job, NULL, NULL);
    records_cost(c, "cost_no_metadata", &job, &r, 1);

    json_decref(job.reply.tool_calls);
    router_plan_release(&job.plan);
}

void test_output_records(void)
{
    struct records want = {0};
    const char *path = "tests/data/output/records.txt";
    const char *write_path = getenv("OUTPUT_RECORDS_WRITE");
    struct records_ctx c = {.want = &want};
    if (write_path) {
        c.write = fopen(write_path, "w");
        if (!ok(c.write != NULL, "open %s", write_path))
            return;
        fprintf(c.write, "# NAME JSON: results and cost records as the jansson-tree encoder\n"
                         "# wrote them (tests/unit/test_output_records.c)\n");
    } else
        check_each_line(path, records_want, &want);

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!ok(rk != NULL, "a producer handle for topic names: %s", rk ? "" : errstr)) {
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, "llm.requests", NULL);
    struct ydoc_errors errs = {0};
    struct policy *p = policy_load("tests/data/router/caps.yaml", NULL, &errs);
    ydoc_errors_release(&errs);
    if (ok(p && rkt, "caps.yaml loads"))
        records_run(&c, p, rkt);
    ok(c.seen >= 20 && (c.write || (size_t)c.seen == want.n), "%d records, %zu in the table",
       c.seen, want.n);
    policy_release(p);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
out:
    if (c.write)
        fclose(c.write);
    for (size_t i = 0; i < want.n; i++) {
        free(want.name[i]);
        free(want.text[i]);
    }
}

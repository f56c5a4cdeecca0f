/*
 * output_json: output_reply_json (output.json / output.json_error of a
 * result) against the table in tests/data/output/json.txt.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "output.h"
#include "request_flags.h"
#include "router.h"

static int output_json_format(const char *s, enum request_format *out)
{
    static const char *const names[] = {"text", "json_object", "json_schema"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0)
            return *out = (enum request_format)i, 0;
    return -1;
}

static int output_json_finish(const char *s, enum provider_finish *out)
{
    for (int f = PROVIDER_FINISH_STOP; f <= PROVIDER_FINISH_OTHER; f++)
        if (strcmp(s, provider_finish_name((enum provider_finish)f)) == 0)
            return *out = (enum provider_finish)f, 0;
    return -1;
}

static void output_json_case(char *line, int lineno, void *ctx)
{
    int *cases = ctx;
    char copy[600];
    snprintf(copy, sizeof copy, "json.txt:%d: %s", lineno, line);
    char format[32], finish[32];
    int at = 0;
    enum request_format fmt = REQUEST_FORMAT_TEXT;
    enum provider_finish fin = PROVIDER_FINISH_STOP;
    char *arrow = strstr(line, " -> ");
    if (!ok(arrow && sscanf(line, "%31s %31s %n", format, finish, &at) == 2 &&
                output_json_format(format, &fmt) == 0 && output_json_finish(finish, &fin) == 0,
            "%s: readable", copy))
        return;
    *arrow = '\0';
    const char *want = arrow + 4;
    /* the text is a JSON string literal: it may hold NUL and any byte */
    json_error_t error;
    json_t *literal = json_loads(line + at, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (!ok(json_is_string(literal), "%s: TEXT is a JSON string (%s)", copy, error.text)) {
        json_decref(literal);
        return;
    }
    (*cases)++;
    char why[256];
    json_t *got = output_reply_json(fmt, json_string_value(literal), json_string_length(literal),
                                    fin, why, sizeof why);
    if (strncmp(want, "json ", 5) == 0) {
        char *text = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
        ok(text && strcmp(text, want + 5) == 0 && why[0] == '\0', "%s\n    got: %s (why: %s)", copy,
           text ? text : "(none)", why);
        free(text);
    } else if (strncmp(want, "error ", 6) == 0)
        ok(!got && strstr(why, want + 6) != NULL, "%s\n    got why: %s", copy, why);
    else
        ok(strcmp(want, "none") == 0 && !got && why[0] == '\0', "%s\n    got why: %s", copy, why);
    json_decref(got);
    json_decref(literal);
}

/* A result as output_result encodes it, parsed back. */
static json_t *output_json_result(struct job *job)
{
    size_t len = 0;
    char *text = output_result(job, "w-1", NULL, NULL, &len);
    json_t *r = text ? json_loadb(text, len, 0, NULL) : NULL;
    if (getenv("OUTPUT_JSON_DUMP") && text)
        printf("%s\n", text); /* for checking against schemas/result.schema.json by hand */
    free(text);
    return r;
}

/* output_result: tool_calls, json or json_error, and pinned reach the
 * result as the schema says. */
static void output_json_results(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!ok(rk != NULL, "a producer handle for topic names: %s", rk ? "" : errstr)) {
        rd_kafka_conf_destroy(conf);
        return;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, "llm.requests", NULL);
    struct ydoc_errors errs = {0};
    struct policy *p = policy_load("tests/data/router/caps.yaml", NULL, &errs);
    ydoc_errors_release(&errs);
    if (!ok(p && rkt, "caps.yaml loads"))
        goto out;
    rd_kafka_message_t msg = {.rkt = rkt, .partition = 2, .offset = 7};
    struct request_flags rf;
    char flags[] = "json_schema,tools,model=gpt/claude,seed";
    request_flags_fill(&rf, "chat", 300, flags);
    struct job job = {.msg = &msg, .policy = p, .req = &rf.req, .ok = 1, .nattempts = 1};
    struct attempt a = {.model = 1, .status = ATTEMPT_OK, .http_status = 200, .billable = 1};
    snprintf(a.call_id, sizeof a.call_id, "0190f3a2-b4c0-7033-8033-000000000033");
    job.attempts = &a;
    router_plan(p, &rf.req, &job.plan);
    ok(job.plan.outcome == ROUTER_OK && job.plan.pinned, "the plan is pinned");

    char text[] = "{\"label\":\"spam\"}";
    job.reply.text = text;
    job.reply.text_len = strlen(text);
    job.reply.finish = PROVIDER_FINISH_TOOL_CALLS;
    job.reply.tool_calls =
        json_pack("[{s:s, s:s, s:{s:i}}]", "id", "call_0", "name", "lookup", "arguments", "n", 1);
    json_t *r = output_json_result(&job);
    json_t *out = json_object_get(r, "output");
    ok(json_equal(json_object_get(out, "tool_calls"), job.reply.tool_calls),
       "output.tool_calls is the reply's");
    const char *label = json_string_value(json_object_get(json_object_get(out, "json"), "label"));
    ok(label && strcmp(label, "spam") == 0 && !json_object_get(out, "json_error"),
       "output.json is the parsed text, without json_error");
    ok(json_is_true(json_object_get(r, "pinned")), "pinned: true");
    json_t *route = json_object_get(r, "route");
    const char *r0 = json_string_value(json_object_get(json_array_get(route, 0), "reason"));
    const char *r1 = json_string_value(json_object_get(json_array_get(route, 1), "reason"));
    ok(r0 && strncmp(r0, "pinned; fits", 12) == 0 && r1 && strcmp(r1, "unsupported: seed") == 0,
       "route: the pinned reason, then exactly unsupported: seed (%s | %s)", r0 ? r0 : "",
       r1 ? r1 : "");
    json_decref(r);

    char cut[] = "{\"label\":\"sp";
    job.reply.text = cut;
    job.reply.text_len = strlen(cut);
    job.reply.finish = PROVIDER_FINISH_LENGTH;
    json_decref(job.reply.tool_calls);
    job.reply.tool_calls = NULL;
    job.plan.pinned = 0;
    r = output_json_result(&job);
    out = json_object_get(r, "output");
    const char *why = json_string_value(json_object_get(out, "json_error"));
    ok(why && strstr(why, "finish_reason length") && !json_object_get(out, "json") &&
           !json_object_get(out, "tool_calls") && !json_object_get(r, "pinned") &&
           strcmp(json_string_value(json_object_get(r, "status")), "ok") == 0,
       "cut JSON: json_error, no json, no tool_calls, not pinned, status ok (%s)", why ? why : "");
    json_decref(r);

    rf.req.format = REQUEST_FORMAT_TEXT;
    r = output_json_result(&job);
    out = json_object_get(r, "output");
    ok(out && !json_object_get(out, "json") && !json_object_get(out, "json_error"),
       "without a JSON response_format: neither json nor json_error");
    json_decref(r);
    router_plan_release(&job.plan);
out:
    policy_release(p);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}

void test_output_json(void)
{
    int cases = 0;
    check_each_line("tests/data/output/json.txt", output_json_case, &cases);
    ok(cases >= 20, "at least 20 output json cases (%d)", cases);
    output_json_results();
}

/*
 * costreport: the table of cases in tests/data/costreport/ (records in,
 * totals out, worked out by make_cases.py's reference), the time and
 * column parsers (tests/data/costreport/times.txt), the writers, and the
 * metadata a cost record carries (output_cost) read back by the report.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "costreport.h"
#include "output.h"
#include "policy.h"
#include "request_flags.h"
#include "router.h"

#define DIR_CASES CHECK_ROOT "/tests/data/costreport"

/* Feeds NAME.jsonl ("#by" line, then records) and compares with
 * NAME.expected.json. */
static void costreport_case(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.jsonl", DIR_CASES, name);
    char *text = check_read_file(path, NULL);
    snprintf(path, sizeof path, "%s/%s.expected.json", DIR_CASES, name);
    json_error_t error;
    json_t *want = json_load_file(path, 0, &error);
    struct costreport *r = NULL;
    if (!ok(text && want, "%s: case files read", name))
        goto out;
    char *save, *line = strtok_r(text, "\n", &save);
    struct costreport_by by;
    char why[256];
    if (!ok(line && strncmp(line, "#by ", 4) == 0 &&
                costreport_by_parse(line + 4, &by, why, sizeof why) == 0,
            "%s: a #by line", name))
        goto out;
    r = costreport_new(&by);
    costreport_by_release(&by);
    long bad = 0;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL)
        if (costreport_add(r, line, strlen(line), why, sizeof why) < 0) {
            bad++;
            ok(why[0] != '\0', "%s: a bad record says why", name);
        }
    json_t *got = costreport_json(r);
    int same = got && json_equal(got, want);
    if (!ok(same, "%s: the totals are the reference's", name) && got) {
        char *g = json_dumps(got, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        fprintf(stderr, "got: %s\n", g ? g : "");
        free(g);
    }
    ok((uint64_t)bad == costreport_bad(r), "%s: every -1 is counted as bad (%ld)", name, bad);
    json_decref(got);
out:
    costreport_free(r);
    json_decref(want);
    free(text);
}

static void costreport_cases(void)
{
    DIR *d = opendir(DIR_CASES);
    if (!ok(d != NULL, "open %s", DIR_CASES))
        return;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 6 || strcmp(e->d_name + len - 6, ".jsonl") != 0)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len - 6), e->d_name);
        costreport_case(name);
        n++;
    }
    closedir(d);
    ok(n >= 8, "costreport: %d cases", n);
}

/* times.txt: INPUT -> MS | bad */
static void costreport_time_line(char *line, int lineno, void *ctx)
{
    (void)ctx;
    char in[128], want[64];
    if (!ok(sscanf(line, "%127s -> %63s", in, want) == 2, "times.txt:%d: INPUT -> MS", lineno))
        return;
    int64_t ms = -7;
    int rc = costreport_time_parse(in, &ms);
    if (strcmp(want, "bad") == 0)
        ok(rc < 0, "times.txt:%d: %s is refused", lineno, in);
    else
        ok(rc == 0 && ms == strtoll(want, NULL, 10), "times.txt:%d: %s -> %lld (got %d, %lld)",
           lineno, in, strtoll(want, NULL, 10), rc, (long long)ms);
}

static void costreport_parsers(void)
{
    ok(check_each_line(DIR_CASES "/times.txt", costreport_time_line, NULL) >= 12, "times.txt read");
    char day[11], usd[24], why[256];
    costreport_day(1764028799999, day);
    ok(strcmp(day, "2025-11-24") == 0, "the last ms of 2025-11-24 (%s)", day);
    costreport_day(951782400000, day);
    ok(strcmp(day, "2000-02-29") == 0, "a leap day (%s)", day);
    costreport_usd(175875000, usd);
    ok(strcmp(usd, "0.175875000") == 0, "nine decimals (%s)", usd);
    costreport_usd(18446744073709551615u, usd);
    ok(strcmp(usd, "18446744073.709551615") == 0, "the largest amount, exactly (%s)", usd);
    struct costreport_by by;
    ok(costreport_by_parse("day,metadata.batch,tenant", &by, why, sizeof why) == 0 && by.n == 3 &&
           by.column[0] == COSTREPORT_DAY && by.column[1] == COSTREPORT_METADATA &&
           strcmp(by.key[1], "batch") == 0 && by.column[2] == COSTREPORT_TENANT,
       "--by keeps the given order");
    costreport_by_release(&by);
    static const char *const refused[] = {"tenant,",
                                          "tenants",
                                          "metadata.",
                                          "day,day",
                                          "metadata.a,metadata.a",
                                          ",model",
                                          "tenant,task,model,provider,day,metadata.a,metadata.b,"
                                          "metadata.c,metadata.d"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        ok(costreport_by_parse(refused[i], &by, why, sizeof why) < 0 && why[0],
           "--by %s is refused (%s)", refused[i], why);
    enum costreport_format f;
    ok(costreport_format_parse("csv", &f) == 0 && f == COSTREPORT_CSV &&
           costreport_format_parse("xml", &f) < 0,
       "formats");
}

/* The writers, on two records and one open reservation. */
static void costreport_writers(void)
{
    struct costreport_by by;
    char why[256];
    costreport_by_parse("tenant", &by, why, sizeof why);
    struct costreport *r = costreport_new(&by);
    costreport_by_release(&by);
    static const char *const recs[] = {
        "{\"version\":1,\"call_id\":\"a\",\"task\":\"t\",\"model\":\"m\",\"provider\":\"p\","
        "\"tenant\":\"x,\\\"y\",\"usage\":{\"input\":3},\"cost_nusd\":1500000001,\"ts_ms\":0}",
        "{\"version\":1,\"call_id\":\"b\",\"task\":\"t\",\"model\":\"m\",\"provider\":\"p\","
        "\"usage\":{},\"cost_nusd\":0,\"ts_ms\":0,\"kind\":\"reserved\",\"reserved_nusd\":"
        "2500}"};
    for (size_t i = 0; i < 2; i++)
        ok(costreport_add(r, recs[i], strlen(recs[i]), why, sizeof why) == 0, "record %zu: %s", i,
           why);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    ok(costreport_write(r, COSTREPORT_CSV, out) == 0, "csv written");
    fclose(out);
    ok(buf && strstr(buf, "group,\"x,\"\"y\",1,1,1500000001,3,") &&
           strstr(buf, "group,,1,0,0,0,0,0,0,0,0,1,2500\n") &&
           strstr(buf, "total,,2,1,1500000001,3,0,0,0,0,0,1,2500\n"),
       "csv: quoted values, nano-USD, open reservations (%s)", buf ? buf : "");
    free(buf);
    out = open_memstream(&buf, &len);
    ok(costreport_write(r, COSTREPORT_TABLE, out) == 0, "table written");
    fclose(out);
    ok(buf && strstr(buf, "1.500000001") && strstr(buf, "not yet settled, at most 0.000002500") &&
           strstr(buf, "TOTAL"),
       "table: USD with nine decimals, not yet settled, at most X (%s)", buf ? buf : "");
    free(buf);
    costreport_free(r);
}

/* The cost record carries the request's metadata up to 4096 bytes of
 * compact JSON; past that only metadata_truncated; and the report groups
 * by it. */
static void costreport_output_metadata(void)
{
    struct ydoc_errors errs = {0};
    struct policy *p = policy_load("tests/data/router/caps.yaml", NULL, &errs);
    ydoc_errors_release(&errs);
    if (!ok(p != NULL, "caps.yaml loads"))
        return;
    struct request_flags rf;
    char flags[] = "-";
    request_flags_fill(&rf, "chat", 300, flags);
    struct job job = {.policy = p, .req = &rf.req, .ok = 1, .nattempts = 1};
    struct attempt a = {.model = 0, .status = ATTEMPT_OK, .billable = 1, .cost_nusd = 77};
    snprintf(a.call_id, sizeof a.call_id, "0190f3a2-b4c0-7033-8033-000000000077");
    job.attempts = &a;
    struct costreport_by by;
    char why[256];
    costreport_by_parse("metadata.batch", &by, why, sizeof why);
    struct costreport *r = costreport_new(&by);
    costreport_by_release(&by);

    /* {"batch":"b-7","pad":"xxx..."}: 24 bytes around the padding */
    size_t sizes[] = {0, 4096, 4097};
    for (size_t i = 0; i < 3; i++) {
        char *pad = calloc(1, 5000);
        size_t n = sizes[i] ? sizes[i] - 24 : 0;
        memset(pad, 'x', n);
        rf.req.metadata = sizes[i] ? json_pack("{s:s, s:s}", "batch", "b-7", "pad", pad) : NULL;
        char *m = rf.req.metadata ? json_dumps(rf.req.metadata, JSON_COMPACT) : NULL;
        ok(!sizes[i] || (m && strlen(m) == sizes[i]), "metadata of %zu bytes (%zu)", sizes[i],
           m ? strlen(m) : 0);
        free(m);
        size_t len = 0;
        char *text = output_cost(&job, &a, 1, "w-1", &len);
        json_t *rec = text ? json_loads(text, 0, NULL) : NULL;
        json_t *meta = json_object_get(rec, "metadata");
        json_t *trunc = json_object_get(rec, "metadata_truncated");
        if (!sizes[i])
            ok(rec && !meta && !trunc, "no metadata: neither field");
        else if (sizes[i] <= OUTPUT_COST_METADATA_MAX)
            ok(meta && json_equal(meta, rf.req.metadata) && !trunc,
               "%zu bytes: the metadata, as is", sizes[i]);
        else
            ok(!meta && json_is_true(trunc), "%zu bytes: absent, metadata_truncated: true",
               sizes[i]);
        /* distinct calls: the report sees three */
        a.call_id[35] = (char)('a' + i);
        ok(text && costreport_add(r, text, len, why, sizeof why) == 0,
           "the report reads the record (%s)", text ? why : "no text");
        json_decref(rec);
        json_decref(rf.req.metadata);
        rf.req.metadata = NULL;
        free(text);
        free(pad);
    }
    json_t *got = costreport_json(r);
    json_t *groups = json_object_get(got, "groups");
    ok(json_array_size(groups) == 2 &&
           json_is_null(json_object_get(json_object_get(json_array_get(groups, 0), "key"),
                                        "metadata.batch")) &&
           json_integer_value(json_object_get(json_array_get(groups, 0), "calls")) == 2 &&
           json_integer_value(json_object_get(json_array_get(groups, 1), "cost_nusd")) == 77,
       "grouped by metadata.batch: b-7 once, the other two without it");
    json_decref(got);
    costreport_free(r);
    policy_release(p);
}

void test_costreport(void)
{
    costreport_cases();
    costreport_parsers();
    costreport_writers();
    costreport_output_metadata();
}

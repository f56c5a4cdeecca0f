/*
 * request decoder: every example in schemas/examples/request/ (the same
 * files tests/schema/check_examples.py validates against the JSON Schema)
 * must decode when valid and fail when invalid, with the exact reason in
 * NAME.error beside an invalid example. tests/data/requests/ holds what a
 * schema cannot express (bad JSON, bad UTF-8, depth, duplicates).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "request.h"

#define MAX_BYTES (1u << 20)

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The input files (.json or .bin) in dir, sorted; returns the count. */
static size_t list_inputs(const char *dir, char **names, size_t max)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) && n < max) {
        size_t len = strlen(de->d_name);
        if (len > 5 && (strcmp(de->d_name + len - 5, ".json") == 0 ||
                        strcmp(de->d_name + len - 4, ".bin") == 0))
            names[n++] = strdup(de->d_name);
    }
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    return n;
}

/* Decodes every input of dir; valid ones must decode, the others must fail
 * with the text of their .error file ("code: message\n"). Returns count. */
static size_t run_dir(const char *dir, int want_valid)
{
    char *names[512];
    size_t n = list_inputs(dir, names, 512);
    for (size_t i = 0; i < n; i++) {
        char path[512], error_path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len;
        char *data = check_read_file(path, &len);
        struct request *req = NULL;
        struct err e = {0};
        int rc = data ? request_decode(data, len, MAX_BYTES, &req, &e) : -2;
        if (want_valid) {
            ok(rc == 0, "%s decodes (%s: %s)", path, e.code, e.msg);
            ok(rc != 0 || (req->id && req->task && req->nmessages > 0),
               "%s: id, task and messages set", path);
        } else {
            char got[600];
            snprintf(got, sizeof got, "%s: %s\n", e.code, e.msg);
            snprintf(error_path, sizeof error_path, "%s/%.*s.error", dir,
                     (int)(strrchr(names[i], '.') - names[i]), names[i]);
            char *expected = check_read_file(error_path, NULL);
            ok(rc == -1 && e.kind == ERR_INPUT, "%s is refused as input", path);
            ok(expected && strcmp(expected, got) == 0, "%s:\n    expected: %s    got:      %s",
               path, expected ? expected : "(no .error file)\n", got);
            free(expected);
        }
        request_free(req);
        free(data);
        free(names[i]);
    }
    return n;
}

static void test_request_fields(void)
{
    const char *json = "{\"id\":\"req-1\",\"task\":\"planning\",\"tenant\":\"acme\","
                       "\"budget_usd\":0.05,\"system\":\"be brief\",\"max_tokens\":512,"
                       "\"temperature\":0.5,\"deadline_ms\":1700000000000,"
                       "\"metadata\":{\"k\":[1,{\"x\":null}]},"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9llo\"},"
                       "{\"role\":\"assistant\",\"content\":\"hi\"}]}";
    struct request *r = NULL;
    struct err e = {0};
    ok(request_decode(json, strlen(json), MAX_BYTES, &r, &e) == 0, "full request decodes");
    if (!r)
        return;
    ok(strcmp(r->id, "req-1") == 0 && strcmp(r->task, "planning") == 0 &&
           strcmp(r->tenant, "acme") == 0,
       "id, task, tenant");
    ok(r->has_budget && r->budget_nusd == 50000000u, "budget 0.05 USD = 50000000 nUSD (%llu)",
       (unsigned long long)r->budget_nusd);
    ok(r->max_tokens == 512 && r->has_temperature && r->temperature == 0.5, "caps");
    ok(r->deadline_ms == 1700000000000, "deadline");
    ok(r->nmessages == 2 && r->messages[1].role == REQUEST_ASSISTANT, "messages");
    ok(r->messages[0].content_len == 6, "content length in bytes (UTF-8 e-acute is 2)");
    ok(r->content_bytes == 8 + 6 + 2, "content bytes count system and messages");
    ok(r->metadata && json_is_object(r->metadata), "metadata kept for the echo");
    request_free(r);

    /* budgets convert to the nearest nano-USD */
    static const struct {
        const char *text;
        unsigned long long nusd;
    } budgets[] = {{"1000", 1000000000000ull}, {"0.000000001", 1}, {"0.1", 100000000},
                   {"0.3", 300000000},         {"1e-3", 1000000},  {"7.123456789", 7123456789ull}};
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        char doc[256];
        snprintf(doc, sizeof doc,
                 "{\"id\":\"b\",\"task\":\"t\",\"budget_usd\":%s,"
                 "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                 budgets[i].text);
        r = NULL;
        ok(request_decode(doc, strlen(doc), MAX_BYTES, &r, &e) == 0 &&
               r->budget_nusd == budgets[i].nusd,
           "budget %s = %llu nUSD", budgets[i].text, budgets[i].nusd);
        request_free(r);
    }
}

static void test_request_limits(void)
{
    const char *json = "{\"id\":\"x\",\"task\":\"t\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"0123456789\"}]}";
    struct request *r = NULL;
    struct err e = {0};
    size_t len = strlen(json);
    ok(request_decode(json, len, len, &r, &e) == 0, "a message exactly at the limit decodes");
    request_free(r);
    ok(request_decode(json, len, len - 1, &r, &e) == -1 && strcmp(e.code, "too_large") == 0,
       "one byte over the limit is too_large");
    ok(r == NULL, "no request on failure");
}

void test_request(void)
{
    test_request_fields();
    test_request_limits();
    size_t n = run_dir("schemas/examples/request/valid", 1);
    ok(n >= 12, "at least 12 valid request examples (%zu)", n);
    n = run_dir("schemas/examples/request/invalid", 0);
    ok(n >= 25, "at least 25 invalid request examples (%zu)", n);
    n = run_dir("tests/data/requests/valid", 1);
    ok(n >= 1, "decoder-only valid cases (%zu)", n);
    n = run_dir("tests/data/requests/invalid", 0);
    ok(n >= 6, "decoder-only invalid cases (%zu)", n);
}

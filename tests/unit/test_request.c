/*
 * request decoder: every example in schemas/examples/request/ (the same
 * files tests/schema/check_examples.py validates against the JSON Schema)
 * must decode when valid and fail when invalid, with the exact reason in
 * NAME.error beside an invalid example. tests/data/requests/ holds what a
 * schema cannot express (bad JSON, bad UTF-8, depth, duplicates, unique
 * tool names, tool_choice among tools, a tool turn answering an earlier
 * call), and effort.txt the effort <-> budget table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "providers/provider.h"
#include "request.h"

#define MAX_BYTES (1u << 20)

/* An input file: .json or .bin */
static int is_input(const char *name)
{
    size_t len = strlen(name);
    return len > 5 && (strcmp(name + len - 5, ".json") == 0 || strcmp(name + len - 4, ".bin") == 0);
}

/* Every provider type's HTTP request for req, written out: url, headers
 * and body, or the error. Owned by the caller. */
static char *compact_calls(const struct request *req)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;
    for (int t = 0; t < PROVIDER_NTYPES; t++) {
        struct provider_call call = {.req = req,
                                     .base_url = "http://127.0.0.1:1/v1",
                                     .model = "m-1",
                                     .max_tokens = 4096,
                                     .api_key = "k",
                                     .reasoning_budget = req->reasoning_budget,
                                     .region = "us-east-1",
                                     .access_key_id = "AKID",
                                     .secret_access_key = "secret",
                                     .now_s = 1700000000};
        struct provider_http http = {0};
        struct err e = {0};
        if (provider_ops_for((enum provider_type)t)->build(&call, &http, &e) < 0) {
            fprintf(f, "%d: %s: %s\n", t, e.code, e.msg);
        } else {
            fprintf(f, "%d: %s\n", t, http.url);
            for (size_t h = 0; h < http.nheaders; h++)
                fprintf(f, "%s\n", http.headers[h]);
            fwrite(http.body, 1, http.body_len, f);
            fputc('\n', f);
        }
        provider_http_release(&http);
    }
    fclose(f);
    return out;
}

/* request_compact keeps every field: the same request decoded twice, one
 * compacted (its document freed: ASan sees any field left pointing into
 * it), gives every provider type the same HTTP request byte for byte, and
 * the same metadata to echo. */
static void compact_same(const char *path, const char *data, size_t len)
{
    struct request *a = NULL, *b = NULL;
    struct err e = {0};
    if (request_decode(data, len, MAX_BYTES, &a, &e) < 0 ||
        request_decode(data, len, MAX_BYTES, &b, &e) < 0)
        return;
    int rc = request_compact(b);
    char *want = compact_calls(a), *got = rc == 0 ? compact_calls(b) : NULL;
    ok(rc == 0 && !b->root && want && got && strcmp(want, got) == 0 && strcmp(a->id, b->id) == 0 &&
           strcmp(a->task, b->task) == 0 && (!a->tenant) == (!b->tenant) &&
           (!a->metadata) == (!b->metadata) &&
           (!a->metadata || json_equal(a->metadata, b->metadata)) &&
           a->content_bytes == b->content_bytes && a->nmessages == b->nmessages,
       "%s compacted: the same fields, the same provider requests\n%s\n---\n%s", path,
       want ? want : "", got ? got : "");
    free(want);
    free(got);
    request_free(a);
    request_free(b);
}

/* Decodes every input of dir; valid ones must decode, the others must fail
 * with the text of their .error file ("code: message\n"). Returns count. */
static size_t run_dir(const char *dir, int want_valid)
{
    char *names[512];
    size_t n = check_list_dir(dir, names, 512, is_input);
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
            compact_same(path, data, len);
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

static struct request *decode_ok(const char *json, const char *what)
{
    struct request *r = NULL;
    struct err e = {0};
    int rc = request_decode(json, strlen(json), MAX_BYTES, &r, &e);
    ok(rc == 0, "%s decodes (%s: %s)", what, e.code, e.msg);
    return rc == 0 ? r : NULL;
}

/* Every new field lands in its struct field; content_bytes counts what the
 * provider reads as prompt, worked out by hand below. */
static void test_request_new_fields(void)
{
    const char *json = "{\"id\":\"r\",\"task\":\"t\",\"system\":\"sys\",\"top_p\":0.25,"
                       "\"stop\":[\"END\",\"a\\u0000b\"],\"seed\":2147483647,"
                       "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                       "{\"name\":\"s\",\"schema\":{}}},"
                       "\"tools\":[ { \"name\" : \"f\" } ],\"tool_choice\":{\"name\":\"f\"},"
                       "\"model\":[\"sonnet\",\"mini\"],\"reasoning\":{\"budget_tokens\":2000},"
                       "\"messages\":["
                       "{\"role\":\"user\",\"content\":\"hello\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"ab\"},"
                       "{\"type\":\"image\",\"url\":\"https://x.test/a.png\"},"
                       "{\"type\":\"image\",\"media_type\":\"image/gif\",\"data\":\"R0lGODlh\"}]},"
                       "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"name\":\"f\","
                       "\"arguments\":{ \"x\" : 1 }}]},"
                       "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"ok\"}]}";
    struct request *r = decode_ok(json, "every new field");
    if (!r)
        return;
    ok(r->has_top_p && r->top_p == 0.25, "top_p");
    ok(r->nstop == 2 && strcmp(r->stop[0], "END") == 0 && r->stop_len[0] == 3 &&
           r->stop_len[1] == 3 && memcmp(r->stop[1], "a\0b", 3) == 0,
       "stop: two sequences, lengths in bytes (a NUL counts)");
    ok(r->has_seed && r->seed == 2147483647, "seed");
    ok(r->format == REQUEST_FORMAT_JSON_SCHEMA && strcmp(r->schema_name, "s") == 0 &&
           r->schema_description == NULL && json_is_object(r->schema) && !r->schema_strict,
       "response_format json_schema: name, no description, schema, not strict");
    ok(r->ntools == 1 && strcmp(r->tools[0].name, "f") == 0 && r->tools[0].description == NULL &&
           r->tools[0].parameters == NULL,
       "tools: name, absent description and parameters are NULL");
    ok(r->tool_choice == REQUEST_TOOL_CHOICE_NAMED && strcmp(r->tool_choice_name, "f") == 0,
       "tool_choice named");
    ok(r->nmodels == 2 && strcmp(r->models[0], "sonnet") == 0 && strcmp(r->models[1], "mini") == 0,
       "model list, in order");
    ok(r->reasoning_budget == 2000 && r->reasoning_effort == REQUEST_EFFORT_MEDIUM,
       "budget_tokens 2000 stands for medium effort");
    ok(r->nmessages == 4, "four turns");

    const struct request_message *m = &r->messages[0];
    ok(m->nparts == 1 && m->parts[0].type == REQUEST_PART_TEXT && m->parts[0].text == m->content &&
           m->content_len == 5 && !m->has_image,
       "string content is one text part pointing at content");
    m = &r->messages[1];
    ok(m->content == NULL && m->content_len == 0 && m->nparts == 3 && m->has_image,
       "parts: content NULL, three parts, has_image");
    ok(m->parts[0].type == REQUEST_PART_TEXT && m->parts[0].text_len == 2 &&
           memcmp(m->parts[0].text, "ab", 2) == 0,
       "text part");
    ok(m->parts[1].type == REQUEST_PART_IMAGE_URL &&
           strcmp(m->parts[1].text, "https://x.test/a.png") == 0 && m->parts[1].media_type == NULL,
       "image url part");
    ok(m->parts[2].type == REQUEST_PART_IMAGE_DATA && strcmp(m->parts[2].text, "R0lGODlh") == 0 &&
           m->parts[2].text_len == 8 && strcmp(m->parts[2].media_type, "image/gif") == 0,
       "image data part with its media type");
    m = &r->messages[2];
    ok(m->role == REQUEST_ASSISTANT && m->nparts == 0 && m->content == NULL &&
           m->ntool_calls == 1 && strcmp(m->tool_calls[0].id, "c1") == 0 &&
           strcmp(m->tool_calls[0].name, "f") == 0 &&
           json_integer_value(json_object_get(m->tool_calls[0].arguments, "x")) == 1,
       "assistant turn with tool_calls and no content");
    m = &r->messages[3];
    ok(m->role == REQUEST_TOOL && strcmp(m->tool_call_id, "c1") == 0 &&
           strcmp(m->tool_name, "f") == 0 && m->nparts == 1,
       "tool turn: tool_call_id, and the answered call's name in tool_name");
    ok(r->has_image && r->nimages == 2, "two images in the request (%zu)", r->nimages);
    /* system 3 + "hello" 5 + "ab" 2 + {"x":1} 7 + "ok" 2 + [{"name":"f"}] 14
     * + {"name":"f"} 12 + {"name":"s","schema":{}} 24; images and URLs count
     * nothing here, whitespace of the input neither */
    ok(r->content_bytes == 3 + 5 + 2 + 7 + 2 + 14 + 12 + 24, "content_bytes %zu, want 69",
       r->content_bytes);
    request_free(r);

    /* the defaults when none of the new fields is there */
    r = decode_ok("{\"id\":\"r\",\"task\":\"t\",\"messages\":[{\"role\":\"user\","
                  "\"content\":\"x\"}]}",
                  "a request without the new fields");
    if (r)
        ok(!r->has_top_p && r->nstop == 0 && !r->has_seed && r->format == REQUEST_FORMAT_TEXT &&
               r->schema == NULL && r->ntools == 0 && r->tools == NULL &&
               r->tool_choice == REQUEST_TOOL_CHOICE_AUTO && r->nmodels == 0 &&
               r->reasoning_effort == REQUEST_EFFORT_NONE && r->reasoning_budget == 0 &&
               !r->has_image && r->nimages == 0 && r->content_bytes == 1,
           "absent fields: no sampling, text format, no tools, route by task, no reasoning");
    request_free(r);

    r = decode_ok("{\"id\":\"r\",\"task\":\"t\",\"stop\":\"\\n\",\"model\":\"haiku\","
                  "\"reasoning\":{\"effort\":\"high\"},\"tools\":[{\"name\":\"a\","
                  "\"description\":\"d\",\"parameters\":{\"type\":\"object\"}}],"
                  "\"tool_choice\":\"required\",\"response_format\":{\"type\":\"json_object\"},"
                  "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                  "the single forms");
    if (r) {
        ok(r->nstop == 1 && r->stop_len[0] == 1 && r->stop[0][0] == '\n', "a stop string is one");
        ok(r->nmodels == 1 && strcmp(r->models[0], "haiku") == 0, "a model string is one");
        ok(r->reasoning_effort == REQUEST_EFFORT_HIGH && r->reasoning_budget == 16384,
           "effort high stands for a budget of 16384");
        ok(r->tool_choice == REQUEST_TOOL_CHOICE_REQUIRED && r->tool_choice_name == NULL,
           "tool_choice required");
        ok(strcmp(r->tools[0].description, "d") == 0 && json_is_object(r->tools[0].parameters),
           "tool description and parameters");
        ok(r->format == REQUEST_FORMAT_JSON && r->schema == NULL, "json_object has no schema");
        /* "x" 1 + [{"name":"a","description":"d","parameters":{"type":"object"}}] 63
         * + "required" 10 */
        ok(r->content_bytes == 1 + 63 + 10, "content_bytes %zu, want 74", r->content_bytes);
    }
    request_free(r);
}

/* A tool turn answers the latest earlier call of its id: ids repeat across
 * turns when an adapter numbers a provider's id-less calls per reply. */
static void test_request_tool_names(void)
{
    struct request *r = decode_ok(
        "{\"id\":\"r\",\"task\":\"t\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_0\",\"name\":\"first\","
        "\"arguments\":{}},{\"id\":\"call_1\",\"name\":\"second\",\"arguments\":{}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"a\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_0\",\"content\":[{\"type\":\"text\","
        "\"text\":\"b\"}]},"
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_0\",\"name\":\"third\","
        "\"arguments\":{}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_0\",\"content\":\"c\"}]}",
        "tool round trips");
    if (!r)
        return;
    ok(strcmp(r->messages[2].tool_name, "second") == 0, "call_1 answers second");
    ok(strcmp(r->messages[3].tool_name, "first") == 0 && r->messages[3].nparts == 1,
       "call_0 answers first (text parts in a tool turn)");
    ok(strcmp(r->messages[5].tool_name, "third") == 0, "a repeated call_0 answers the latest");
    ok(r->messages[0].tool_name == NULL && r->messages[1].tool_call_id == NULL,
       "only tool turns have tool_call_id and tool_name");
    request_free(r);
}

/* The caps: exactly at each is fine, one more is refused. */
static void test_request_caps(void)
{
    static const struct {
        const char *head, *item, *tail;
        size_t cap;
        const char *error;
    } caps[] = {
        {"{\"id\":\"r\",\"task\":\"t\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"tools\":[",
         "{\"name\":\"t%zu\"}", "]}", REQUEST_MAX_TOOLS, "tools: expected 1 to 128 tools, got 129"},
        {"{\"id\":\"r\",\"task\":\"t\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
         "{\"role\":\"assistant\",\"tool_calls\":[",
         "{\"id\":\"c%zu\",\"name\":\"f\",\"arguments\":{}}", "]}]}", REQUEST_MAX_TOOL_CALLS,
         "messages[1].tool_calls: expected 1 to 128 tool calls, got 129"},
        {"{\"id\":\"r\",\"task\":\"t\",\"messages\":[{\"role\":\"user\",\"content\":[",
         "{\"type\":\"image\",\"url\":\"https://x.test/%zu\"}", "]}]}", REQUEST_MAX_PARTS,
         "messages[0].content: expected 1 to 100 parts, got 101"},
        {"{\"id\":\"r\",\"task\":\"t\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"model\":[",
         "\"m%zu\"", "]}", REQUEST_MAX_MODELS, "model: expected 1 to 16 model names, got 17"},
        {"{\"id\":\"r\",\"task\":\"t\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"stop\":[",
         "\"s%zu\"", "]}", REQUEST_MAX_STOP, "stop: expected 1 to 4 strings, got 5"},
    };
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        for (size_t n = caps[c].cap; n <= caps[c].cap + 1; n++) {
            size_t size = 256 + n * 64, used = 0;
            char *doc = malloc(size);
            if (!ok(doc != NULL, "memory"))
                return;
            used += (size_t)snprintf(doc + used, size - used, "%s", caps[c].head);
            for (size_t i = 0; i < n; i++) {
                if (i)
                    doc[used++] = ',';
                used += (size_t)snprintf(doc + used, size - used, caps[c].item, i);
            }
            snprintf(doc + used, size - used, "%s", caps[c].tail);
            struct request *r = NULL;
            struct err e = {0};
            int rc = request_decode(doc, strlen(doc), MAX_BYTES, &r, &e);
            if (n == caps[c].cap) {
                ok(rc == 0, "%zu items decode (%s)", n, e.msg);
                ok(rc != 0 || r->ntools == n || r->messages[r->nmessages - 1].ntool_calls == n ||
                       r->nimages == n || r->nmodels == n || r->nstop == n,
                   "all %zu items kept", n);
            } else {
                ok(rc == -1 && strcmp(e.msg, caps[c].error) == 0, "%zu items: got \"%s\"", n,
                   e.msg);
            }
            request_free(r);
            free(doc);
        }
    }
}

static void effort_case(char *line, int lineno, void *ctx)
{
    (void)ctx;
    char kind[16], arg[32], want[32];
    if (!ok(sscanf(line, "%15s %31s -> %31s", kind, arg, want) == 3,
            "effort.txt:%d: expected KIND ARG -> WANT", lineno))
        return;
    if (strcmp(kind, "effort") == 0) {
        int e = -1;
        for (int k = REQUEST_EFFORT_NONE; k <= REQUEST_EFFORT_HIGH; k++)
            if (strcmp(request_effort_name((enum request_effort)k), arg) == 0)
                e = k;
        uint32_t got = e < 0 ? 0 : request_effort_budget((enum request_effort)e);
        ok(e >= 0 && got == strtoul(want, NULL, 10), "effort.txt:%d: %s -> %u, want %s", lineno,
           arg, got, want);
    } else {
        unsigned long budget = strtoul(arg, NULL, 10);
        const char *got = request_effort_name(request_budget_effort((uint32_t)budget));
        ok(strcmp(kind, "budget") == 0 && strcmp(got, want) == 0,
           "effort.txt:%d: %s %lu -> %s, want %s", lineno, kind, budget, got, want);
    }
}

static void test_request_effort(void)
{
    int n = check_each_line(CHECK_ROOT "/tests/data/requests/effort.txt", effort_case, NULL);
    ok(n >= 12, "effort.txt: %d cases", n);
    /* each effort's budget stands for that effort again */
    for (int k = REQUEST_EFFORT_NONE; k <= REQUEST_EFFORT_HIGH; k++)
        ok((int)request_budget_effort(request_effort_budget((enum request_effort)k)) == k,
           "effort %s round-trips through its budget", request_effort_name((enum request_effort)k));
    ok(strcmp(request_effort_name((enum request_effort)9), "unknown") == 0 &&
           strcmp(request_role_name(REQUEST_TOOL), "tool") == 0,
       "names: an out-of-range effort is unknown; the tool role has its name");
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
    test_request_new_fields();
    test_request_tool_names();
    test_request_caps();
    test_request_effort();
    size_t n = run_dir("schemas/examples/request/valid", 1);
    ok(n >= 12, "at least 12 valid request examples (%zu)", n);
    n = run_dir("schemas/examples/request/invalid", 0);
    ok(n >= 25, "at least 25 invalid request examples (%zu)", n);
    n = run_dir("tests/data/requests/valid", 1);
    ok(n >= 1, "decoder-only valid cases (%zu)", n);
    n = run_dir("tests/data/requests/invalid", 0);
    ok(n >= 12, "decoder-only invalid cases (%zu)", n);
}

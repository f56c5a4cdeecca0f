/*
 * bench_json: the JSON floor of `make bench` (scripts/bench.sh): with
 * jansson, per message, parses and dumps the request, the provider body and
 * the provider's reply, and builds (node by node, from a template parsed
 * once) and dumps the result and the two cost records switchyard publishes,
 * all the same bytes as a worker's (captured by the bench's calibration run).
 * Prints its own process CPU (getrusage user + sys) per message and its rate
 * as one JSON line.
 *
 * It must never count a message whose parse or dump failed (an error exit)
 * and never measure anything but its own loop.
 *
 * Usage: bench_json DIR COUNT   (DIR holds request.json, provider_body.json,
 *        reply.json, result.json, cost_reserved.json, cost_settled.json)
 */
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BJ_FILE_MAX (1024 * 1024)

static const char *const bj_parsed[] = {"request.json", "provider_body.json", "reply.json"};
static const char *const bj_built[] = {"result.json", "cost_reserved.json", "cost_settled.json"};

static char *bj_read(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    FILE *f;
    char *buf = malloc(BJ_FILE_MAX);
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);

    if (!buf || n < 0 || (size_t)n >= sizeof path || !(f = fopen(path, "rb"))) {
        fprintf(stderr, "bench_json: cannot read %s/%s\n", dir, name);
        exit(1);
    }
    *len = fread(buf, 1, BJ_FILE_MAX, f);
    fclose(f);
    if (*len == 0 || *len == BJ_FILE_MAX) {
        fprintf(stderr, "bench_json: %s/%s is empty or over 1 MiB\n", dir, name);
        exit(1);
    }
    return buf;
}

/* a new tree with the template's shape and values, made node by node */
static json_t *bj_build(const json_t *t)
{
    json_t *o;
    const char *k;
    json_t *v;
    size_t i;

    switch (json_typeof(t)) {
    case JSON_OBJECT:
        o = json_object();
        json_object_foreach((json_t *)t, k, v) json_object_set_new(o, k, bj_build(v));
        return o;
    case JSON_ARRAY:
        o = json_array();
        json_array_foreach(t, i, v) json_array_append_new(o, bj_build(v));
        return o;
    case JSON_STRING:
        return json_stringn(json_string_value(t), json_string_length(t));
    case JSON_INTEGER:
        return json_integer(json_integer_value(t));
    case JSON_REAL:
        return json_real(json_real_value(t));
    case JSON_TRUE:
        return json_true();
    case JSON_FALSE:
        return json_false();
    case JSON_NULL:
        return json_null();
    }
    return NULL;
}

static double bj_cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double bj_wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    char *text[3];
    size_t len[3], out_bytes = 0;
    json_t *tmpl[3];
    json_error_t err;
    unsigned long n;
    double cpu0, wall0, cpu, wall;

    if (argc != 3 || (n = strtoul(argv[2], NULL, 10)) == 0) {
        fputs("usage: bench_json DIR COUNT\n", stderr);
        return 2;
    }
    for (int i = 0; i < 3; i++) {
        size_t tl;
        char *t = bj_read(argv[1], bj_built[i], &tl);

        text[i] = bj_read(argv[1], bj_parsed[i], &len[i]);
        tmpl[i] = json_loadb(t, tl, 0, &err);
        free(t);
        if (!tmpl[i]) {
            fprintf(stderr, "bench_json: %s: %s\n", bj_built[i], err.text);
            return 1;
        }
    }
    cpu0 = bj_cpu_us();
    wall0 = bj_wall_s();
    for (unsigned long m = 0; m < n; m++) {
        for (int i = 0; i < 3; i++) {
            json_t *j = json_loadb(text[i], len[i], 0, &err);
            char *d = j ? json_dumps(j, JSON_COMPACT) : NULL;

            if (!d) {
                fprintf(stderr, "bench_json: %s failed\n", bj_parsed[i]);
                return 1;
            }
            out_bytes += strlen(d);
            free(d);
            json_decref(j);
        }
        for (int i = 0; i < 3; i++) {
            json_t *j = bj_build(tmpl[i]);
            char *d = j ? json_dumps(j, JSON_COMPACT) : NULL;

            if (!d) {
                fprintf(stderr, "bench_json: building %s failed\n", bj_built[i]);
                return 1;
            }
            out_bytes += strlen(d);
            free(d);
            json_decref(j);
        }
    }
    cpu = bj_cpu_us() - cpu0;
    wall = bj_wall_s() - wall0;
    printf("{\"messages\":%lu,\"cpu_us_per_msg\":%.3f,\"msg_per_s\":%.0f,\"wall_s\":%.3f,"
           "\"bytes_per_msg\":%lu}\n",
           n, cpu / (double)n, (double)n / wall, wall, (unsigned long)(out_bytes / n));
    for (int i = 0; i < 3; i++) {
        free(text[i]);
        json_decref(tmpl[i]);
    }
    return 0;
}

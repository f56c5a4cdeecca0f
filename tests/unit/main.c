/*
 * The unit test runner: runs every suite, ends with "N passed, N failed".
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int check_passed, check_failed;

int check_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("CHECK_VERBOSE") != NULL;
    if (pass)
        check_passed++;
    else
        check_failed++;
    if (!pass || verbose) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s %s:%d: ", pass ? "ok  " : "FAIL", file, line);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    return pass;
}

char *check_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got < 4096)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

char *check_read_in(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%.500s/%.100s", dir, name);
    return check_read_file(path, len);
}

static int check_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t check_list_dir(const char *dir, char **names, size_t max, int (*keep)(const char *name))
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) && n < max)
        if (keep ? keep(de->d_name) : de->d_name[0] != '.')
            names[n++] = strdup(de->d_name);
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, check_cmp_names);
    return n;
}

int check_each_line(const char *path, void (*fn)(char *line, int lineno, void *ctx), void *ctx)
{
    char *text = check_read_file(path, NULL);
    if (!ok(text != NULL, "read %s", path))
        return 0;
    int lineno = 0, handed = 0;
    char *next = text;
    while (next && *next) {
        char *line = next;
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        lineno++;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        fn(line, lineno, ctx);
        handed++;
    }
    free(text);
    return handed;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*run)(void);
    } suites[] = {
        {"cost", test_cost},
        {"prices", test_prices},
        {"ydoc", test_ydoc},
        {"config", test_config},
        {"router", test_router},
        {"budget", test_budget},
        {"capabilities", test_capabilities},
        {"output_json", test_output_json},
        {"output_records", test_output_records},
        {"jsonw", test_jsonw},
        {"request", test_request},
        {"providers", test_providers},
        {"offsets", test_offsets},
        {"loop", test_loop},
        {"ratelog", test_ratelog},
        {"retry", test_retry},
        {"pqueue", test_pqueue},
        {"redact", test_redact},
        {"reload", test_reload},
        {"producer", test_producer},
        {"commit", test_commit},
        {"kafka", test_kafka},
        {"breaker", test_breaker},
        {"ratelimit", test_ratelimit},
        {"notify", test_notify},
        {"reply", test_reply},
        {"log", test_log},
        {"stats", test_stats},
        {"gemini", test_gemini},
        {"sigv4", test_sigv4},
        {"bedrock", test_bedrock},
        {"costreport", test_costreport},
    };
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        if (argc > 1 && strcmp(argv[1], suites[i].name) != 0)
            continue;
        int before_fail = check_failed, before_pass = check_passed;
        suites[i].run();
        fprintf(stderr, "unit/%s: %d passed, %d failed\n", suites[i].name,
                check_passed - before_pass, check_failed - before_fail);
    }
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

/*
 * check: the one primitive every unit test uses. ok() reports AND counts
 * each check; the runner's last line is the count, so a failed check can
 * never go unnoticed.
 */
#ifndef SWITCHYARD_CHECK_H
#define SWITCHYARD_CHECK_H

#include <stddef.h>

extern int check_passed, check_failed;

/* Counts one check; prints it when it fails (or always with CHECK_VERBOSE
 * set in the environment). Returns `pass`. */
int check_ok(int pass, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define ok(cond, ...) check_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* Reads a whole file (NUL-terminated; *len without it). NULL on error. */
char *check_read_file(const char *path, size_t *len);
/* Reads dir/name, as check_read_file. */
char *check_read_in(const char *dir, const char *name, size_t *len);
/* The names in dir, sorted, at most max of them: those keep(name) accepts,
 * or with keep NULL every name not starting with '.'. Each name is the
 * caller's to free. Returns the count (0 when dir cannot be opened). */
size_t check_list_dir(const char *dir, char **names, size_t max, int (*keep)(const char *name));
/* Each line of a table file, '#' comments and blank lines skipped, handed
 * to fn with its 1-based number (the line is writable, NUL-terminated).
 * Returns how many were handed; a file that cannot be read fails a check
 * and returns 0. */
int check_each_line(const char *path, void (*fn)(char *line, int lineno, void *ctx), void *ctx);

/* Root of the source tree (tests run from there). */
#define CHECK_ROOT "."

void test_cost(void);
void test_prices(void);
void test_ydoc(void);
void test_config(void);
void test_router(void);
void test_budget(void);
void test_capabilities(void);
void test_output_json(void);
void test_output_records(void);
void test_jsonw(void);
void test_request(void);
void test_providers(void);
void test_offsets(void);
void test_loop(void);
void test_ratelog(void);
void test_retry(void);
void test_pqueue(void);
void test_redact(void);
void test_reload(void);
void test_producer(void);
void test_commit(void);
void test_kafka(void);
void test_breaker(void);
void test_ratelimit(void);
void test_notify(void);
void test_reply(void);
void test_log(void);
void test_stats(void);
void test_gemini(void);
void test_sigv4(void);
void test_bedrock(void);
void test_costreport(void);

#endif

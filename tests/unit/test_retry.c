/*
 * retry: every line of tests/data/retry/cases.txt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "retry.h"

static int retry_field(struct retry_input *in, const char *key, const char *value)
{
    long long v = strtoll(value, NULL, 10);
    if (strcmp(key, "retryable") == 0)
        in->retryable = (int)v;
    else if (strcmp(key, "after") == 0)
        in->retry_after_ms = v;
    else if (strcmp(key, "tries") == 0)
        in->tries_on_current = (unsigned)v;
    else if (strcmp(key, "attempts") == 0)
        in->attempts = (size_t)v;
    else if (strcmp(key, "next") == 0)
        in->has_next = (int)v;
    else if (strcmp(key, "stop") == 0)
        in->stopping = (int)v;
    else if (strcmp(key, "now") == 0)
        in->now_ms = v;
    else if (strcmp(key, "deadline") == 0)
        in->deadline_ms = v;
    else if (strcmp(key, "random") == 0)
        in->random = (uint64_t)v;
    else if (strcmp(key, "max") == 0)
        in->max_attempts = (uint64_t)v;
    else if (strcmp(key, "per") == 0)
        in->retries_per_candidate = (uint64_t)v;
    else if (strcmp(key, "init") == 0)
        in->backoff_initial_ms = (uint64_t)v;
    else if (strcmp(key, "bmax") == 0)
        in->backoff_max_ms = (uint64_t)v;
    else if (strcmp(key, "r429") == 0)
        in->rate_limited = (int)v;
    else if (strcmp(key, "onrl") == 0)
        in->fall_back_on_rate_limit = strcmp(value, "fallback") == 0;
    else if (strcmp(key, "rwait") == 0)
        in->rate_wait_ms = (uint64_t)v;
    else if (strcmp(key, "rwaited") == 0)
        in->rate_waited_ms = (uint64_t)v;
    else if (strcmp(key, "rmax") == 0)
        in->rate_limit_max_wait_ms = (uint64_t)v;
    else if (strcmp(key, "rcalls") == 0)
        in->rate_limited_calls = (unsigned)v;
    else
        return -1;
    return 0;
}

static void retry_case(char *line, int lineno, void *ctx)
{
    (void)ctx;
    struct retry_input in = {.max_attempts = 6,
                             .retries_per_candidate = 2,
                             .backoff_initial_ms = 250,
                             .backoff_max_ms = 20000,
                             .deadline_ms = -1,
                             .retry_after_ms = -1,
                             .rate_limit_max_wait_ms = 600000};
    char *arrow = strstr(line, "->");
    if (!ok(arrow != NULL, "retry cases.txt:%d: no ->", lineno))
        return;
    *arrow = '\0';
    char *save;
    for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        if (!ok(eq && (*eq = '\0', retry_field(&in, tok, eq + 1) == 0),
                "retry cases.txt:%d: unknown field %s", lineno, tok))
            return;
    }
    char action[32], why[64];
    unsigned long long delay;
    if (!ok(sscanf(arrow + 2, "%31s %llu %63s", action, &delay, why) == 3,
            "retry cases.txt:%d: expected ACTION DELAY WHY", lineno))
        return;
    struct retry_decision d = retry_decide(&in);
    ok(strcmp(retry_action_name(d.action), action) == 0 && d.delay_ms == delay &&
           strcmp(d.why, why) == 0,
       "retry cases.txt:%d: got %s %llu %s, want %s %llu %s", lineno, retry_action_name(d.action),
       (unsigned long long)d.delay_ms, d.why, action, delay, why);
}

void test_retry(void)
{
    int cases = check_each_line(CHECK_ROOT "/tests/data/retry/cases.txt", retry_case, NULL);
    ok(cases >= 20, "retry: %d cases", cases);

    /* the jitter stays within [cap/2, cap] for any random number */
    int inside = 1;
    for (uint64_t r = 0; r < 100000; r += 7) {
        struct retry_input in = {.retryable = 1,
                                 .retry_after_ms = -1,
                                 .tries_on_current = 2,
                                 .attempts = 2,
                                 .has_next = 1,
                                 .deadline_ms = -1,
                                 .max_attempts = 6,
                                 .retries_per_candidate = 2,
                                 .backoff_initial_ms = 250,
                                 .backoff_max_ms = 20000,
                                 .random = r * 0x9E3779B97F4A7C15ull};
        struct retry_decision d = retry_decide(&in);
        inside &= d.action == RETRY_SAME && d.delay_ms >= 250 && d.delay_ms <= 500;
    }
    ok(inside, "jittered delays of the second try stay within [250, 500] ms");
}

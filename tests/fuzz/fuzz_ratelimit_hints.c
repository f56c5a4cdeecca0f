/*
 * libFuzzer target for the rate-limit headers and durations:
 * - any bytes as a header line (exactly len bytes, no NUL after them) are
 *   refused leaving the hints untouched, or parsed into fields that are -1
 *   (not given) or >= 0; a Retry-After never overrides a retry-after-ms
 *   seen before it;
 * - any bytes as a Go duration are refused leaving the output untouched,
 *   or give ms >= 0, the same with "0s" appended after a unit;
 * - the hints, fed to a limiter's ratelimit_end, leave it answering waits
 *   that are >= 0 and never RATELIMIT_WAIT_CALL (no max_concurrent here),
 *   and rates that are >= 0.
 * Any disagreement aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const int64_t nows[] = {0, 1796192940000, -1, INT64_MAX, INT64_MIN, 253402300799000};

static void check_hints(const struct ratelimit_hints *h)
{
    CHECK(h->retry_after_ms >= -1);
    for (int d = 0; d < RATELIMIT_NDIMS; d++)
        CHECK(h->dim[d].limit >= -1 && h->dim[d].remaining >= -1 && h->dim[d].reset_ms >= -1);
}

static void fuzz_header(const char *line, size_t len, int64_t now)
{
    struct ratelimit_hints h, before;
    ratelimit_hints_init(&h);
    before = h;
    int rc = ratelimit_hints_header(&h, line, len, now);
    CHECK(rc == 0 || rc == 1);
    if (rc == 0)
        CHECK(memcmp(&h, &before, sizeof h) == 0);
    check_hints(&h);

    /* retry-after-ms first: nothing after it but another retry-after-ms
     * changes the retry delay */
    struct ratelimit_hints p;
    ratelimit_hints_init(&p);
    static const char first[] = "retry-after-ms: 5";
    CHECK(ratelimit_hints_header(&p, first, sizeof first - 1, now) == 1);
    CHECK(p.retry_after_ms == 5);
    ratelimit_hints_header(&p, line, len, now);
    check_hints(&p);
    if (p.retry_after_ms != 5)
        CHECK(rc == 1 && h.retry_after_ms_given && p.retry_after_ms == h.retry_after_ms);

    /* the limiter takes whatever was parsed */
    struct ratelimit r;
    struct ratelimit_limits lim = {.requests_per_minute = (uint64_t)len * 7};
    struct ratelimit_cost c = {.input_tokens = len, .output_tokens = 3};
    ratelimit_init(&r, &lim, 1, 1000);
    ratelimit_start(&r, &c, 1000);
    struct ratelimit_outcome o = {.reserved = &c,
                                  .used = NULL,
                                  .rate_limited = (int)(len & 1),
                                  .succeeded = !(len & 1),
                                  .sent_ms = 1000,
                                  .hints = &h};
    ratelimit_end(&r, &o, 1200);
    for (int d = 0; d < RATELIMIT_NDIMS; d++)
        CHECK(ratelimit_rate(&r, (enum ratelimit_dim)d) >= 0);
    int64_t w = ratelimit_wait(&r, &c, 1200);
    CHECK(w >= 0 && w < RATELIMIT_WAIT_CALL);
    w = ratelimit_wait(&r, &c, INT64_MAX);
    CHECK(w >= 0 && w < RATELIMIT_WAIT_CALL);
}

static void fuzz_duration(const char *s, size_t n)
{
    int64_t ms = -7;
    int rc = ratelimit_parse_duration(s, n, &ms);
    CHECK(rc == 0 || rc == -1);
    if (rc == -1) {
        CHECK(ms == -7);
        return;
    }
    CHECK(ms >= 0);
    if (n > 0 && ((s[n - 1] >= 'a' && s[n - 1] <= 'z') || (s[n - 1] >= 'A' && s[n - 1] <= 'Z'))) {
        char *more = malloc(n + 2);
        CHECK(more);
        memcpy(more, s, n);
        memcpy(more + n, "0s", 2);
        int64_t ms2 = -7;
        CHECK(ratelimit_parse_duration(more, n + 2, &ms2) == 0 && ms2 == ms);
        free(more);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exactly size bytes on the heap: a read past them is caught */
    char *buf = malloc(size ? size : 1);
    CHECK(buf);
    if (size)
        memcpy(buf, data, size);
    int64_t now = size ? nows[data[0] % (sizeof nows / sizeof nows[0])] : 0;
    fuzz_header(buf, size, now);
    fuzz_duration(buf, size);
    /* the value alone, behind each name it may follow */
    static const char *const names[] = {"x-ratelimit-reset-requests: ",
                                        "anthropic-ratelimit-tokens-reset: ",
                                        "retry-after: ",
                                        "retry-after-ms: ",
                                        "anthropic-ratelimit-requests-limit: ",
                                        "x-ratelimit-remaining-tokens: "};
    const char *name = names[size % (sizeof names / sizeof names[0])];
    size_t nlen = strlen(name);
    char *line = malloc(nlen + size + 1);
    CHECK(line);
    memcpy(line, name, nlen);
    if (size)
        memcpy(line + nlen, data, size);
    fuzz_header(line, nlen + size, now);
    free(line);
    free(buf);
    return 0;
}

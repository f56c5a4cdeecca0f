/*
 * ratelimit: a provider lane's rate limit as a set of token buckets, and the
 * parser of the rate-limit headers that teach it. It decides, never acts:
 * no clock read (every function takes now), no sleep, no log, no
 * allocation, so that tests/data/ratelimit/ and a virtual-time simulation
 * (tests/unit/test_ratelimit.c) can pin every rule. It must never wait for
 * ever: every wait it returns is bounded by what one minute of the rate in
 * force refills, by the provider's own reset or Retry-After, or is
 * RATELIMIT_WAIT_CALL (only a call in flight ending frees a slot).
 */
#include "ratelimit.h"

#include <math.h> /* HUGE_VAL only: the worker does not link libm */
#include <string.h>

/* ---- small parsers over (pointer, length): header values are not
 * NUL-terminated ---- */

static int rl_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int rl_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int rl_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int rl_ieq(const char *a, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (rl_lower((unsigned char)a[i]) != rl_lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

static int64_t rl_add_sat(int64_t a, int64_t b)
{
    int64_t s;
    if (__builtin_add_overflow(a, b, &s))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return s;
}

static int64_t rl_sub_sat(int64_t a, int64_t b)
{
    int64_t s;
    if (__builtin_sub_overflow(a, b, &s))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return s;
}

/* All of s is a non-negative decimal integer that fits an int64. */
static int rl_parse_int(const char *s, size_t n, int64_t *out)
{
    if (n == 0)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rl_digit(s[i]) || __builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, s[i] - '0', &v))
            return -1;
    }
    *out = v;
    return 0;
}

/* Exactly k digits at s. */
static int rl_digits(const char *s, size_t n, size_t k, int *out)
{
    if (n < k)
        return -1;
    int v = 0;
    for (size_t i = 0; i < k; i++) {
        if (!rl_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* ms since the epoch of a proleptic Gregorian civil time (H. Hinnant's
 * days_from_civil), so no timegm() and no time zone is involved. */
static int64_t rl_epoch_ms(int year, int month, int day, int hour, int min, int sec)
{
    int64_t y = year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (month + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return ((days * 24 + hour) * 60 + min) * 60000 + (int64_t)sec * 1000;
}

static int rl_days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return days[month - 1] + (month == 2 && leap);
}

static int rl_valid_time(int year, int month, int day, int hour, int min, int sec)
{
    return month >= 1 && month <= 12 && day >= 1 && day <= rl_days_in_month(year, month) &&
           hour <= 23 && min <= 59 && sec <= 60; /* 60: a leap second */
}

/* RFC 3339 "2026-12-02T06:30:00Z", "...T06:30:00.25+01:00" -> ms since the
 * epoch, a fraction rounded up. */
static int rl_parse_rfc3339(const char *s, size_t n, int64_t *out)
{
    int year, month, day, hour, min, sec;
    if (n < 20 || rl_digits(s, n, 4, &year) || s[4] != '-' || rl_digits(s + 5, 2, 2, &month) ||
        s[7] != '-' || rl_digits(s + 8, 2, 2, &day) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || rl_digits(s + 11, 2, 2, &hour) ||
        s[13] != ':' || rl_digits(s + 14, 2, 2, &min) || s[16] != ':' ||
        rl_digits(s + 17, 2, 2, &sec) || !rl_valid_time(year, month, day, hour, min, sec))
        return -1;
    size_t i = 19;
    int64_t frac_ms = 0;
    if (s[i] == '.') {
        i++;
        size_t first = i;
        int64_t scale = 100, rest = 0;
        for (; i < n && rl_digit(s[i]); i++) {
            if (scale > 0) {
                frac_ms += (s[i] - '0') * scale;
                scale /= 10;
            } else if (s[i] != '0') {
                rest = 1; /* below a ms: rounds up */
            }
        }
        if (i == first)
            return -1;
        frac_ms += rest;
    }
    if (i >= n)
        return -1;
    int64_t offset_ms = 0;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
        offset_ms = 0;
    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == n) {
        int oh, om;
        if (rl_digits(s + i + 1, 2, 2, &oh) || s[i + 3] != ':' || rl_digits(s + i + 4, 2, 2, &om) ||
            oh > 23 || om > 59)
            return -1;
        offset_ms = ((int64_t)oh * 60 + om) * 60000 * (s[i] == '-' ? -1 : 1);
    } else {
        return -1;
    }
    /* local = UTC + offset */
    *out = rl_epoch_ms(year, month, day, hour, min, sec) + frac_ms - offset_ms;
    return 0;
}

/* IMF-fixdate, the HTTP date: "Sun, 06 Nov 1994 08:49:37 GMT". */
static int rl_parse_http_date(const char *s, size_t n, int64_t *out)
{
    static const char *const wdays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                         "jul", "aug", "sep", "oct", "nov", "dec"};
    if (n != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || s[25] != ' ' || !rl_ieq(s + 26, 3, "gmt"))
        return -1;
    int wday_ok = 0, month = 0;
    for (size_t i = 0; i < 7; i++)
        wday_ok |= rl_ieq(s, 3, wdays[i]);
    for (int i = 0; i < 12; i++)
        if (rl_ieq(s + 8, 3, months[i]))
            month = i + 1;
    int day, year, hour, min, sec;
    if (!wday_ok || !month || rl_digits(s + 5, 2, 2, &day) || rl_digits(s + 12, 4, 4, &year) ||
        rl_digits(s + 17, 2, 2, &hour) || rl_digits(s + 20, 2, 2, &min) ||
        rl_digits(s + 23, 2, 2, &sec) || !rl_valid_time(year, month, day, hour, min, sec))
        return -1;
    *out = rl_epoch_ms(year, month, day, hour, min, sec);
    return 0;
}

/* A decimal "12", "1.5", ".5" in units of unit_ns -> ns, fraction rounded
 * up; *used the bytes read. */
static int rl_scaled(const char *s, size_t n, uint64_t unit_ns, uint64_t *ns, size_t *used)
{
    size_t i = 0;
    uint64_t whole = 0;
    int digits = 0;
    for (; i < n && rl_digit(s[i]); i++, digits++)
        if (__builtin_mul_overflow(whole, 10, &whole) ||
            __builtin_add_overflow(whole, (uint64_t)(s[i] - '0'), &whole))
            return -1;
    if (__builtin_mul_overflow(whole, unit_ns, &whole))
        return -1;
    if (i < n && s[i] == '.') {
        i++;
        uint64_t scale = unit_ns, frac = 0;
        int rest = 0;
        for (; i < n && rl_digit(s[i]); i++, digits++) {
            uint64_t d = (uint64_t)(s[i] - '0');
            if (scale >= 10) {
                scale /= 10;
                frac += d * scale;
            } else if (d) {
                rest = 1;
            }
        }
        if (__builtin_add_overflow(whole, frac + (uint64_t)rest, &whole))
            return -1;
    }
    if (!digits)
        return -1;
    *ns = whole;
    *used = i;
    return 0;
}

int ratelimit_parse_duration(const char *s, size_t n, int64_t *ms)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        /* longest first: "ms" before "m" */
        {"ns", 1},
        {"us", 1000},
        {"\xc2\xb5s", 1000}, /* micro sign */
        {"\xce\xbcs", 1000}, /* Greek mu */
        {"ms", 1000000},
        {"h", 3600000000000ull},
        {"m", 60000000000ull},
        {"s", 1000000000ull},
    };
    if (!s || n == 0)
        return -1;
    uint64_t total = 0, part;
    size_t used;
    /* a bare number is seconds */
    if (rl_scaled(s, n, 1000000000ull, &part, &used) == 0 && used == n) {
        total = part;
        goto done;
    }
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && (rl_digit(s[i]) || s[i] == '.'))
            i++;
        size_t num_len = i - start;
        size_t u = 0, ulen = 0;
        for (; u < sizeof units / sizeof units[0]; u++) {
            ulen = strlen(units[u].name);
            if (n - i >= ulen && memcmp(s + i, units[u].name, ulen) == 0)
                break;
        }
        if (num_len == 0 || u == sizeof units / sizeof units[0])
            return -1;
        if (rl_scaled(s + start, num_len, units[u].ns, &part, &used) || used != num_len ||
            __builtin_add_overflow(total, part, &total))
            return -1;
        i += ulen;
    }
done:
    if (total > (uint64_t)INT64_MAX - 999999)
        return -1;
    *ms = (int64_t)((total + 999999) / 1000000);
    return 0;
}

/* ---- the headers ---- */

void ratelimit_hints_init(struct ratelimit_hints *h)
{
    for (int d = 0; d < RATELIMIT_NDIMS; d++)
        h->dim[d] = (struct ratelimit_hint){-1, -1, -1};
    h->retry_after_ms = -1;
    h->retry_after_ms_given = 0;
}

enum rl_field { RL_LIMIT, RL_REMAINING, RL_RESET };

/* "retry-after-ms" value: integer or decimal ms, rounded up. */
static int rl_parse_ms(const char *s, size_t n, int64_t *ms)
{
    uint64_t v;
    size_t used;
    if (rl_scaled(s, n, 1000, &v, &used) || used != n || v > (uint64_t)INT64_MAX - 999)
        return -1;
    *ms = (int64_t)((v + 999) / 1000);
    return 0;
}

static int rl_retry_after(struct ratelimit_hints *h, const char *v, size_t n, int64_t now_wall_ms)
{
    int64_t x;
    if (rl_parse_int(v, n, &x) == 0) {
        if (x > INT64_MAX / 1000)
            return 0;
        x *= 1000;
    } else if (rl_parse_http_date(v, n, &x) == 0) {
        x = rl_sub_sat(x, now_wall_ms);
        if (x < 0)
            x = 0;
    } else {
        return 0;
    }
    if (!h->retry_after_ms_given) /* retry-after-ms is the finer one */
        h->retry_after_ms = x;
    return 1;
}

/* A hint's limit (is_limit) or remaining count from value v; -1 when it
 * does not parse (the hint is left as it was). */
static int rl_hint_count(struct ratelimit_hint *hint, int is_limit, const char *v, size_t vlen)
{
    int64_t x;
    if (rl_parse_int(v, vlen, &x))
        return -1;
    if (is_limit)
        hint->limit = x;
    else
        hint->remaining = x;
    return 0;
}

int ratelimit_hints_header(struct ratelimit_hints *h, const char *line, size_t len,
                           int64_t now_wall_ms)
{
    static const struct {
        const char *suffix;
        enum ratelimit_dim dim;
    } openai[] = {{"requests", RATELIMIT_REQUESTS}, {"tokens", RATELIMIT_TOKENS}},
      anthropic[] = {{"requests", RATELIMIT_REQUESTS},
                     {"tokens", RATELIMIT_TOKENS},
                     {"input-tokens", RATELIMIT_INPUT_TOKENS},
                     {"output-tokens", RATELIMIT_OUTPUT_TOKENS}};
    static const char *const fields[] = {"limit", "remaining", "reset"};
    if (!h || !line)
        return 0;
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return 0;
    const char *name = line, *name_end = colon;
    while (name < name_end && rl_space(*name))
        name++;
    while (name_end > name && rl_space(name_end[-1]))
        name_end--;
    const char *v = colon + 1, *v_end = line + len;
    while (v < v_end && rl_space(*v))
        v++;
    while (v_end > v && rl_space(v_end[-1]))
        v_end--;
    size_t nlen = (size_t)(name_end - name), vlen = (size_t)(v_end - v);

    if (rl_ieq(name, nlen, "retry-after-ms")) {
        int64_t ms;
        if (rl_parse_ms(v, vlen, &ms))
            return 0;
        h->retry_after_ms = ms;
        h->retry_after_ms_given = 1;
        return 1;
    }
    if (rl_ieq(name, nlen, "retry-after"))
        return rl_retry_after(h, v, vlen, now_wall_ms);

    /* x-ratelimit-{limit,remaining,reset}-{requests,tokens} */
    static const char oa[] = "x-ratelimit-";
    if (nlen > sizeof oa - 1 && rl_ieq(name, sizeof oa - 1, oa)) {
        const char *rest = name + sizeof oa - 1;
        size_t rlen = nlen - (sizeof oa - 1);
        for (int f = 0; f < 3; f++) {
            size_t flen = strlen(fields[f]);
            if (rlen <= flen + 1 || !rl_ieq(rest, flen, fields[f]) || rest[flen] != '-')
                continue;
            for (size_t k = 0; k < sizeof openai / sizeof openai[0]; k++) {
                if (!rl_ieq(rest + flen + 1, rlen - flen - 1, openai[k].suffix))
                    continue;
                struct ratelimit_hint *hint = &h->dim[openai[k].dim];
                int64_t x;
                if (f == RL_RESET) {
                    if (ratelimit_parse_duration(v, vlen, &x))
                        return 0;
                    hint->reset_ms = x;
                } else if (rl_hint_count(hint, f == RL_LIMIT, v, vlen)) {
                    return 0;
                }
                return 1;
            }
        }
        return 0;
    }
    /* anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
     * {limit,remaining,reset} */
    static const char an[] = "anthropic-ratelimit-";
    if (nlen > sizeof an - 1 && rl_ieq(name, sizeof an - 1, an)) {
        const char *rest = name + sizeof an - 1;
        size_t rlen = nlen - (sizeof an - 1);
        for (size_t k = 0; k < sizeof anthropic / sizeof anthropic[0]; k++) {
            size_t slen = strlen(anthropic[k].suffix);
            if (rlen <= slen + 1 || !rl_ieq(rest, slen, anthropic[k].suffix) || rest[slen] != '-')
                continue;
            for (int f = 0; f < 3; f++) {
                if (!rl_ieq(rest + slen + 1, rlen - slen - 1, fields[f]))
                    continue;
                struct ratelimit_hint *hint = &h->dim[anthropic[k].dim];
                int64_t x;
                if (f == RL_RESET) {
                    if (rl_parse_rfc3339(v, vlen, &x))
                        return 0;
                    x = rl_sub_sat(x, now_wall_ms);
                    hint->reset_ms = x > 0 ? x : 0;
                } else if (rl_hint_count(hint, f == RL_LIMIT, v, vlen)) {
                    return 0;
                }
                return 1;
            }
        }
    }
    return 0;
}

/* ---- the limiter ---- */

#define RL_MINUTE_MS 60000.0

/* ceil() for the bounded, non-negative values here, without libm. */
static int64_t rl_ceil_ms(double x)
{
    if (x <= 0)
        return 0;
    if (x >= 9e15)
        return (int64_t)9e15;
    int64_t i = (int64_t)x;
    return (double)i < x ? i + 1 : i;
}

const char *ratelimit_dim_name(enum ratelimit_dim d)
{
    switch (d) {
    case RATELIMIT_REQUESTS:
        return "requests";
    case RATELIMIT_TOKENS:
        return "tokens";
    case RATELIMIT_INPUT_TOKENS:
        return "input_tokens";
    case RATELIMIT_OUTPUT_TOKENS:
        return "output_tokens";
    case RATELIMIT_NDIMS:
        break;
    }
    return "unknown";
}

static double rl_min_limit(double a, double b)
{
    if (a <= 0)
        return b > 0 ? b : 0;
    if (b <= 0)
        return a;
    return a < b ? a : b;
}

/* The rate in force without AIMD: configured and learned. */
static double rl_ceiling(const struct ratelimit *r, enum ratelimit_dim d)
{
    double configured = 0;
    if (d == RATELIMIT_REQUESTS)
        configured = (double)r->configured.requests_per_minute;
    else if (d == RATELIMIT_TOKENS)
        configured = (double)r->configured.tokens_per_minute;
    return rl_min_limit(configured, r->learn ? r->learned[d] : 0);
}

double ratelimit_rate(const struct ratelimit *r, enum ratelimit_dim d)
{
    if ((unsigned)d >= RATELIMIT_NDIMS)
        return 0;
    double rate = rl_ceiling(r, d);
    if (d == RATELIMIT_REQUESTS && r->learn)
        rate = rl_min_limit(rate, r->aimd_rpm);
    return rate;
}

/* A bucket holds about a second of its rate: enough to absorb the jitter
 * of the caller's timers, too little to burst past a provider's window. */
static double rl_capacity(double rate)
{
    double cap = rate / 60.0;
    return cap < 1.0 ? 1.0 : cap;
}

/* The level of d at now, refilled from updated_ms; no lower than a minute
 * of debt, so that one hugely underestimated call cannot stall the lane
 * for longer than a minute of the rate. */
static double rl_level_at(const struct ratelimit *r, enum ratelimit_dim d, int64_t now_ms)
{
    double rate = ratelimit_rate(r, d), level = r->level[d];
    if (rate <= 0)
        return level;
    double cap = rl_capacity(rate);
    int64_t dt = rl_sub_sat(now_ms, r->updated_ms);
    if (dt > 0 && level < cap)
        level += rate * (double)dt / RL_MINUTE_MS;
    if (level > cap)
        level = cap;
    if (level < -rate)
        level = -rate;
    return level;
}

/* Brings every level to now; call before any rate changes, so that the
 * time already passed refills at the rate that was in force. */
static void rl_refill(struct ratelimit *r, int64_t now_ms)
{
    for (int d = 0; d < RATELIMIT_NDIMS; d++)
        r->level[d] = rl_level_at(r, (enum ratelimit_dim)d, now_ms);
    if (now_ms > r->updated_ms)
        r->updated_ms = now_ms;
}

static void rl_costs(const struct ratelimit_cost *c, double out[RATELIMIT_NDIMS])
{
    out[RATELIMIT_REQUESTS] = 1;
    out[RATELIMIT_TOKENS] = c ? (double)c->input_tokens + (double)c->output_tokens : 0;
    out[RATELIMIT_INPUT_TOKENS] = c ? (double)c->input_tokens : 0;
    out[RATELIMIT_OUTPUT_TOKENS] = c ? (double)c->output_tokens : 0;
}

void ratelimit_init(struct ratelimit *r, const struct ratelimit_limits *configured, int learn,
                    int64_t now_ms)
{
    memset(r, 0, sizeof *r);
    if (configured)
        r->configured = *configured;
    r->learn = learn ? 1 : 0;
    /* full: the level is clamped to the capacity of whatever rate comes */
    for (int d = 0; d < RATELIMIT_NDIMS; d++)
        r->level[d] = HUGE_VAL;
    r->updated_ms = now_ms;
    r->last_cut_ms = INT64_MIN;
    r->retry_until_ms = INT64_MIN;
    for (int d = 0; d < RATELIMIT_NDIMS; d++)
        r->blocked_until_ms[d] = INT64_MIN;
    r->sent_ring_sec = INT64_MIN;
    r->ok_ring_sec = INT64_MIN;
    r->first_sent_ms = INT64_MIN;
}

static void rl_clamp_aimd(struct ratelimit *r)
{
    double ceiling = rl_ceiling(r, RATELIMIT_REQUESTS);
    if (ceiling > 0 && r->aimd_rpm >= ceiling)
        r->aimd_rpm = 0; /* the ceiling limits; AIMD no longer does */
}

void ratelimit_configure(struct ratelimit *r, const struct ratelimit_limits *configured)
{
    rl_refill(r, r->updated_ms);
    r->configured = configured ? *configured : (struct ratelimit_limits){0};
    rl_clamp_aimd(r);
}

int64_t ratelimit_wait(const struct ratelimit *r, const struct ratelimit_cost *c, int64_t now_ms)
{
    if (r->configured.max_concurrent > 0 && r->in_flight >= r->configured.max_concurrent)
        return RATELIMIT_WAIT_CALL;
    int64_t wait = 0;
    if (r->retry_until_ms > now_ms)
        wait = rl_sub_sat(r->retry_until_ms, now_ms);
    double cost[RATELIMIT_NDIMS];
    rl_costs(c, cost);
    for (int d = 0; d < RATELIMIT_NDIMS; d++) {
        if (r->blocked_until_ms[d] > now_ms && r->blocked_until_ms[d] - now_ms > wait)
            wait = rl_sub_sat(r->blocked_until_ms[d], now_ms);
        double rate = ratelimit_rate(r, (enum ratelimit_dim)d);
        if (rate <= 0 || cost[d] <= 0)
            continue;
        /* a call bigger than the bucket waits for a full one, then goes */
        double cap = rl_capacity(rate), need = cost[d] < cap ? cost[d] : cap;
        double level = rl_level_at(r, (enum ratelimit_dim)d, now_ms);
        if (level >= need)
            continue;
        /* at most a minute of debt plus the bucket: bounded, and far from
         * int64's range */
        int64_t ms = rl_ceil_ms((need - level) * RL_MINUTE_MS / rate);
        if (ms < 1)
            ms = 1;
        if (ms > wait)
            wait = ms;
    }
    /* only max_concurrent may say "a call must end" */
    return wait < RATELIMIT_WAIT_CALL ? wait : RATELIMIT_WAIT_CALL - 1;
}

#define RL_RING_SLOTS ((int64_t)(sizeof((struct ratelimit *)0)->sent_ring / sizeof(uint32_t)))

static int64_t rl_sec(int64_t ms)
{
    return ms >= 0 ? ms / 1000 : -1 - (-1 - ms) / 1000;
}

static size_t rl_slot(int64_t sec)
{
    return (size_t)(((sec % RL_RING_SLOTS) + RL_RING_SLOTS) % RL_RING_SLOTS);
}

/* One more event in the second of now_ms, in a ring of per-second counts
 * whose newest second is *ring_sec. */
static void rl_ring_add(uint32_t *ring, int64_t *ring_sec, int64_t now_ms)
{
    int64_t sec = rl_sec(now_ms);
    if (*ring_sec == INT64_MIN || sec - *ring_sec >= RL_RING_SLOTS ||
        sec < *ring_sec - RL_RING_SLOTS) {
        memset(ring, 0, (size_t)RL_RING_SLOTS * sizeof *ring);
        *ring_sec = sec;
    }
    for (; *ring_sec < sec; ++*ring_sec)
        ring[rl_slot(*ring_sec + 1)] = 0;
    uint32_t *slot = &ring[rl_slot(sec)];
    if (*slot < UINT32_MAX)
        (*slot)++;
}

/* Events per minute over the last window_s seconds of the ring, or since
 * since_ms when that is later. */
static double rl_ring_rate(const uint32_t *ring, int64_t ring_sec, int64_t now_ms, int64_t window_s,
                           int64_t since_ms)
{
    if (ring_sec == INT64_MIN || since_ms == INT64_MIN)
        return 0;
    int64_t sec = rl_sec(now_ms);
    int64_t from = sec - window_s + 1;
    if (rl_sec(since_ms) > from)
        from = rl_sec(since_ms);
    double count = 0;
    for (int64_t s = from; s <= sec && s <= ring_sec; s++)
        if (s > ring_sec - RL_RING_SLOTS)
            count += ring[rl_slot(s)];
    int64_t start_ms = from * 1000;
    if (since_ms > start_ms)
        start_ms = since_ms;
    int64_t span = rl_sub_sat(now_ms, start_ms);
    if (span < 1000)
        span = 1000; /* a blast of a few ms is not a rate of millions */
    return count * RL_MINUTE_MS / (double)span;
}

void ratelimit_start(struct ratelimit *r, const struct ratelimit_cost *c, int64_t now_ms)
{
    rl_refill(r, now_ms);
    double cost[RATELIMIT_NDIMS];
    rl_costs(c, cost);
    for (int d = 0; d < RATELIMIT_NDIMS; d++) {
        /* no rate, no bucket: a level drawn down while nothing limits would
         * be a debt nobody owes once a limit is learned */
        if (ratelimit_rate(r, (enum ratelimit_dim)d) > 0)
            r->level[d] -= cost[d];
        r->pending[d] += cost[d];
    }
    if (r->in_flight < UINT64_MAX)
        r->in_flight++;
    rl_ring_add(r->sent_ring, &r->sent_ring_sec, now_ms);
    if (r->first_sent_ms == INT64_MIN)
        r->first_sent_ms = now_ms;
}

/* The provider says R remain in d, R counted when it took this call: the
 * calls still in flight were mostly sent after it and are not in R yet. */
static void rl_sync_remaining(struct ratelimit *r, enum ratelimit_dim d,
                              const struct ratelimit_hint *hint, int64_t now_ms)
{
    double rate = ratelimit_rate(r, d);
    double left = (double)hint->remaining - r->pending[d];
    /* but not by more than a burst: after a burst sent before any limit
     * was known, most of those in flight were already in R, and counting
     * them twice would idle the lane for up to a minute */
    if (rate > 0 && left < -rl_capacity(rate))
        left = -rl_capacity(rate);
    if (rate > 0 && r->level[d] > left)
        r->level[d] = left;
    if (hint->remaining > 0 || hint->reset_ms < 0)
        return;
    /* Nothing remains. The reset is when the bucket is full again. A
     * continuous bucket (OpenAI, Anthropic) refills one unit every
     * 60000/limit ms, and its reset is about a minute away when it is
     * empty: waiting for all of it would leave most of the rate unused.
     * A fixed window's reset comes sooner than that and nothing returns
     * before it: wait for it. */
    int64_t block = hint->reset_ms;
    if (hint->limit > 0) {
        double unit_ms = RL_MINUTE_MS / (double)hint->limit;
        double full_ms = RL_MINUTE_MS; /* continuous, from empty */
        if ((double)hint->reset_ms + unit_ms >= 0.9 * full_ms)
            block = rl_ceil_ms(unit_ms) < hint->reset_ms ? rl_ceil_ms(unit_ms) : hint->reset_ms;
    }
    if (block > RATELIMIT_MAX_BLOCK_MS)
        block = RATELIMIT_MAX_BLOCK_MS;
    int64_t until = rl_add_sat(now_ms, block);
    if (until > r->blocked_until_ms[d])
        r->blocked_until_ms[d] = until;
}

void ratelimit_end(struct ratelimit *r, const struct ratelimit_outcome *o, int64_t now_ms)
{
    rl_refill(r, now_ms);
    if (r->in_flight > 0)
        r->in_flight--;
    double reserved[RATELIMIT_NDIMS], used[RATELIMIT_NDIMS];
    rl_costs(o->reserved, reserved);
    rl_costs(o->used, used);
    for (int d = 0; d < RATELIMIT_NDIMS; d++) {
        r->pending[d] -= reserved[d];
        if (r->pending[d] < 0)
            r->pending[d] = 0;
        if (d == RATELIMIT_REQUESTS)
            continue; /* a request is spent, answered or not */
        /* unused reservation back, or the overrun taken */
        double delta = o->used ? used[d] - reserved[d] : -reserved[d];
        if (ratelimit_rate(r, (enum ratelimit_dim)d) > 0)
            r->level[d] -= delta;
    }
    if (o->rate_limited && r->rate_limited < UINT64_MAX)
        r->rate_limited++;
    if (o->succeeded && !o->rate_limited)
        rl_ring_add(r->ok_ring, &r->ok_ring_sec, now_ms);
    if (r->learn) {
        const struct ratelimit_hints *h = o->hints;
        if (h) {
            for (int d = 0; d < RATELIMIT_NDIMS; d++)
                if (h->dim[d].limit > 0)
                    r->learned[d] = (double)h->dim[d].limit;
            rl_clamp_aimd(r);
            rl_refill(r, now_ms); /* clamps the levels to the new capacities */
            for (int d = 0; d < RATELIMIT_NDIMS; d++)
                if (h->dim[d].remaining >= 0)
                    rl_sync_remaining(r, (enum ratelimit_dim)d, &h->dim[d], now_ms);
            if (o->rate_limited && h->retry_after_ms >= 0) {
                int64_t after = h->retry_after_ms < RATELIMIT_MAX_BLOCK_MS ? h->retry_after_ms
                                                                           : RATELIMIT_MAX_BLOCK_MS;
                int64_t until = rl_add_sat(now_ms, after);
                if (until > r->retry_until_ms)
                    r->retry_until_ms = until;
            }
        }
        if (o->rate_limited) {
            /* the provider has nothing left for us now */
            if (r->level[RATELIMIT_REQUESTS] > 0)
                r->level[RATELIMIT_REQUESTS] = 0;
            if (o->sent_ms > r->last_cut_ms) {
                /* the rate in force, or the rate being sent when that is
                 * lower (nothing in force, or calls held back by a
                 * Retry-After): a limit nobody reached proves nothing */
                double base = ratelimit_rate(r, RATELIMIT_REQUESTS);
                double sent =
                    rl_ring_rate(r->sent_ring, r->sent_ring_sec, now_ms, 10, r->first_sent_ms);
                if (base <= 0 || (sent > 0 && sent < base))
                    base = sent;
                double cut = RATELIMIT_AIMD_BETA * base;
                /* Once there are 10 s of history, what the provider
                 * accepted over the last minute bounds the cut both ways:
                 * it will accept that again, so a window that answers 429
                 * until it turns over does not cut once per call; and it
                 * accepted no more, so a rate far above it (a first blast)
                 * comes down in one storm, not in one per minute. */
                if (rl_sub_sat(now_ms, r->first_sent_ms) >= 10000) {
                    double ok =
                        rl_ring_rate(r->ok_ring, r->ok_ring_sec, now_ms, 60, r->first_sent_ms);
                    if (ok > 0 && cut > ok)
                        cut = ok;
                    if (cut < RATELIMIT_AIMD_BETA * ok)
                        cut = RATELIMIT_AIMD_BETA * ok;
                }
                r->aimd_rpm = cut < 1 ? 1 : cut;
                r->last_cut_ms = now_ms;
                if (r->cuts < UINT64_MAX)
                    r->cuts++;
                rl_clamp_aimd(r);
            }
        } else if (o->succeeded && r->aimd_rpm > 0 &&
                   r->level[RATELIMIT_REQUESTS] <
                       rl_capacity(ratelimit_rate(r, RATELIMIT_REQUESTS)) / 2) {
            /* grow only while AIMD is what holds the calls back: a lane
             * that sends less than it may proves nothing about more */
            r->aimd_rpm += RATELIMIT_AIMD_STEP_RPM;
            rl_clamp_aimd(r);
        }
    }
}

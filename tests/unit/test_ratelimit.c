/*
 * ratelimit: every line of tests/data/ratelimit/{headers,durations,limiter}.txt,
 * then a virtual-time simulation of providers that allow N requests a
 * minute per key (a rolling bucket and a fixed one-minute window, with and
 * without rate-limit headers, 1 to 3 workers sharing the key, demand far
 * above the limit). It asserts what issue 8 requires after the first
 * simulated minute: at least 90% of N accepted, at most 2% of calls
 * answered 429 (0.5% with the limit configured), and prints the figures.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ratelimit.h"

static void rl_call(char *line, int lineno, void *ctx)
{
    void (**fn)(char *, int) = ctx;
    (*fn)(line, lineno);
}

/* Lines of a data file, comments and blank lines skipped; fn gets each. */
static int rl_each_line(const char *path, void (*fn)(char *line, int lineno))
{
    return check_each_line(path, rl_call, &fn);
}

static char *rl_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* ---- headers.txt ---- */

static int64_t headers_now = 0;

/* \r \n \t \\ and \xHH, in place; returns the length. */
static size_t rl_unescape(char *s)
{
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1]) {
            i++;
            switch (s[i]) {
            case 'r':
                s[o++] = '\r';
                break;
            case 'n':
                s[o++] = '\n';
                break;
            case 't':
                s[o++] = '\t';
                break;
            case 'x': {
                char hex[3] = {s[i + 1], s[i + 1] ? s[i + 2] : '\0', '\0'};
                s[o++] = (char)strtol(hex, NULL, 16);
                i += 2;
                break;
            }
            default:
                s[o++] = s[i];
            }
        } else {
            s[o++] = s[i];
        }
    }
    s[o] = '\0';
    return o;
}

static int64_t *rl_hint_field(struct ratelimit_hints *h, const char *key)
{
    static const char *const fields[] = {"limit", "remaining", "reset"};
    if (strcmp(key, "retry_after") == 0)
        return &h->retry_after_ms;
    const char *dot = strchr(key, '.');
    if (!dot)
        return NULL;
    for (int d = 0; d < RATELIMIT_NDIMS; d++) {
        const char *name = ratelimit_dim_name((enum ratelimit_dim)d);
        if (strlen(name) != (size_t)(dot - key) || strncmp(key, name, strlen(name)) != 0)
            continue;
        for (int f = 0; f < 3; f++)
            if (strcmp(dot + 1, fields[f]) == 0)
                return f == 0   ? &h->dim[d].limit
                       : f == 1 ? &h->dim[d].remaining
                                : &h->dim[d].reset_ms;
    }
    return NULL;
}

static void headers_case(char *line, int lineno)
{
    if (strncmp(line, "@now=", 5) == 0) {
        headers_now = strtoll(line + 5, NULL, 10);
        return;
    }
    char *arrow = strstr(line, "=>");
    if (!ok(arrow != NULL, "headers.txt:%d: no =>", lineno))
        return;
    *arrow = '\0';
    char *expect = rl_trim(arrow + 2);
    /* what the header lines must leave: everything -1 but the fields named */
    struct ratelimit_hints want, got;
    ratelimit_hints_init(&want);
    ratelimit_hints_init(&got);
    int want_rc = 1;
    if (strcmp(expect, "ignored") == 0) {
        want_rc = 0;
    } else {
        char *save;
        for (char *tok = strtok_r(expect, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            char *eq = strchr(tok, '=');
            int64_t *field = NULL;
            if (eq) {
                *eq = '\0';
                field = rl_hint_field(&want, tok);
            }
            if (!ok(field != NULL, "headers.txt:%d: unknown field %s", lineno, tok))
                return;
            *field = strtoll(eq + 1, NULL, 10);
        }
    }
    /* header lines separated by " || "; rc: did any of them parse */
    int rc = 0;
    char *h = line;
    for (;;) {
        char *sep = strstr(h, " || ");
        if (sep)
            *sep = '\0';
        char *one = rl_trim(h);
        size_t len = rl_unescape(one);
        rc |= ratelimit_hints_header(&got, one, len, headers_now);
        if (!sep)
            break;
        h = sep + 4;
    }
    int same = got.retry_after_ms == want.retry_after_ms;
    for (int d = 0; d < RATELIMIT_NDIMS; d++)
        same &= got.dim[d].limit == want.dim[d].limit &&
                got.dim[d].remaining == want.dim[d].remaining &&
                got.dim[d].reset_ms == want.dim[d].reset_ms;
    char desc[512];
    int off = snprintf(desc, sizeof desc, "retry_after=%" PRId64, got.retry_after_ms);
    for (int d = 0; d < RATELIMIT_NDIMS && off > 0 && (size_t)off < sizeof desc; d++)
        off +=
            snprintf(desc + off, sizeof desc - (size_t)off, " %s=%" PRId64 "/%" PRId64 "/%" PRId64,
                     ratelimit_dim_name((enum ratelimit_dim)d), got.dim[d].limit,
                     got.dim[d].remaining, got.dim[d].reset_ms);
    ok(same && rc == want_rc, "headers.txt:%d: got rc=%d %s", lineno, rc, desc);
}

/* ---- durations.txt ---- */

static void durations_case(char *line, int lineno)
{
    char *arrow = strstr(line, "->");
    if (!ok(arrow != NULL, "durations.txt:%d: no ->", lineno))
        return;
    *arrow = '\0';
    char *in = rl_trim(line);
    if (strcmp(in, "(empty)") == 0)
        in[0] = '\0';
    size_t len = rl_unescape(in);
    long long want = strtoll(arrow + 2, NULL, 10);
    int64_t ms = -7;
    int rc = ratelimit_parse_duration(in, len, &ms);
    if (want < 0)
        ok(rc == -1 && ms == -7, "durations.txt:%d: \"%s\" must not parse (rc=%d ms=%" PRId64 ")",
           lineno, in, rc, ms);
    else
        ok(rc == 0 && ms == want, "durations.txt:%d: \"%s\": got rc=%d %" PRId64 ", want %lld",
           lineno, in, rc, ms, want);
}

/* ---- limiter.txt: scripts of events on one limiter ---- */

#define SCRIPT_CALLS 256

struct script {
    struct ratelimit r;
    struct ratelimit_cost reserved[SCRIPT_CALLS];
    int64_t sent[SCRIPT_CALLS];
    int ended[SCRIPT_CALLS];
    int ncalls;
    int lineno, step;
};

static int64_t script_num(const char *v)
{
    return strtoll(v, NULL, 10);
}

/* One event: "verb key=value ... [-> expected]". */
static void script_event(struct script *s, char *ev)
{
    char *arrow = strstr(ev, "->");
    char *expect = NULL;
    if (arrow) {
        *arrow = '\0';
        expect = rl_trim(arrow + 2);
    }
    char *save;
    char *verb = strtok_r(ev, " ", &save);
    if (!verb)
        return;
    struct ratelimit_limits lim = {0};
    struct ratelimit_cost cost = {0}, used = {0};
    struct ratelimit_hints hints;
    ratelimit_hints_init(&hints);
    int64_t at = 0, sent = -1;
    int learn = 1, id = -1, has_used = 0, has_hints = 0, status429 = 0, fail = 0, times = 1;
    const char *what = NULL;
    for (char *tok = strtok_r(NULL, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            if (strcmp(tok, "429") == 0)
                status429 = 1;
            else if (strcmp(tok, "fail") == 0)
                fail = 1;
            else if (strcmp(tok, "ok") == 0)
                ;
            else
                what = tok;
            continue;
        }
        *eq = '\0';
        const char *k = tok, *v = eq + 1;
        if (strcmp(k, "rpm") == 0)
            lim.requests_per_minute = (uint64_t)script_num(v);
        else if (strcmp(k, "tpm") == 0)
            lim.tokens_per_minute = (uint64_t)script_num(v);
        else if (strcmp(k, "conc") == 0)
            lim.max_concurrent = (uint64_t)script_num(v);
        else if (strcmp(k, "learn") == 0)
            learn = (int)script_num(v);
        else if (strcmp(k, "at") == 0)
            at = script_num(v);
        else if (strcmp(k, "sent") == 0)
            sent = script_num(v);
        else if (strcmp(k, "in") == 0)
            cost.input_tokens = (uint64_t)script_num(v);
        else if (strcmp(k, "out") == 0)
            cost.output_tokens = (uint64_t)script_num(v);
        else if (strcmp(k, "used_in") == 0)
            used.input_tokens = (uint64_t)script_num(v), has_used = 1;
        else if (strcmp(k, "used_out") == 0)
            used.output_tokens = (uint64_t)script_num(v), has_used = 1;
        else if (strcmp(k, "n") == 0)
            times = (int)script_num(v);
        else if (strcmp(k, "id") == 0)
            id = (int)script_num(v);
        else if (strcmp(k, "after") == 0)
            hints.retry_after_ms = script_num(v), has_hints = 1;
        else if (strcmp(k, "hint") == 0) {
            /* hint=DIM,limit,remaining,reset */
            char dim[32];
            long long l, rem, reset;
            int d = 0;
            if (!ok(sscanf(v, "%31[a-z_],%lld,%lld,%lld", dim, &l, &rem, &reset) == 4,
                    "limiter.txt:%d: bad hint %s", s->lineno, v))
                return;
            for (; d < RATELIMIT_NDIMS; d++)
                if (strcmp(ratelimit_dim_name((enum ratelimit_dim)d), dim) == 0)
                    break;
            if (!ok(d < RATELIMIT_NDIMS, "limiter.txt:%d: bad dim %s", s->lineno, dim))
                return;
            hints.dim[d] = (struct ratelimit_hint){l, rem, reset};
            has_hints = 1;
        } else {
            ok(0, "limiter.txt:%d: unknown key %s", s->lineno, k);
            return;
        }
    }
    s->step++;
    if (strcmp(verb, "init") == 0) {
        ratelimit_init(&s->r, &lim, learn, at);
        s->ncalls = 0;
    } else if (strcmp(verb, "configure") == 0) {
        ratelimit_configure(&s->r, &lim);
    } else if (strcmp(verb, "start") == 0) {
        for (int i = 0; i < times; i++) {
            if (!ok(s->ncalls < SCRIPT_CALLS, "limiter.txt:%d: too many calls", s->lineno))
                return;
            s->reserved[s->ncalls] = cost;
            s->sent[s->ncalls] = at;
            s->ended[s->ncalls] = 0;
            s->ncalls++;
            ratelimit_start(&s->r, &cost, at);
        }
    } else if (strcmp(verb, "end") == 0) {
        for (int i = 0; i < times; i++) {
            if (i > 0)
                id = -1;
            if (id < 0)
                for (id = 0; id < s->ncalls && s->ended[id]; id++)
                    ;
            if (!ok(id < s->ncalls && !s->ended[id], "limiter.txt:%d: no call %d to end", s->lineno,
                    id))
                return;
            s->ended[id] = 1;
            struct ratelimit_outcome o = {.reserved = &s->reserved[id],
                                          .used = has_used ? &used : NULL,
                                          .rate_limited = status429,
                                          .succeeded = !status429 && !fail,
                                          .sent_ms = sent >= 0 ? sent : s->sent[id],
                                          .hints = has_hints ? &hints : NULL};
            ratelimit_end(&s->r, &o, at);
        }
    } else if (strcmp(verb, "wait") == 0) {
        int64_t got = ratelimit_wait(&s->r, &cost, at);
        int64_t want = expect && strcmp(expect, "call") == 0 ? RATELIMIT_WAIT_CALL
                                                             : script_num(expect ? expect : "-9");
        if (got == RATELIMIT_WAIT_CALL)
            ok(want == got, "limiter.txt:%d: event %d: wait got call, want %s", s->lineno, s->step,
               expect ? expect : "?");
        else
            ok(want == got, "limiter.txt:%d: event %d: wait got %" PRId64 ", want %s", s->lineno,
               s->step, got, expect ? expect : "?");
    } else if (strcmp(verb, "rate") == 0 || strcmp(verb, "value") == 0) {
        double got = 0;
        int found = 1;
        if (!what) {
            found = 0;
        } else if (strcmp(verb, "rate") == 0) {
            found = 0;
            for (int d = 0; d < RATELIMIT_NDIMS; d++)
                if (strcmp(ratelimit_dim_name((enum ratelimit_dim)d), what) == 0) {
                    got = ratelimit_rate(&s->r, (enum ratelimit_dim)d);
                    found = 1;
                }
        } else if (strcmp(what, "aimd") == 0) {
            got = s->r.aimd_rpm;
        } else if (strcmp(what, "cuts") == 0) {
            got = (double)s->r.cuts;
        } else if (strcmp(what, "rate_limited") == 0) {
            got = (double)s->r.rate_limited;
        } else if (strcmp(what, "in_flight") == 0) {
            got = (double)s->r.in_flight;
        } else {
            found = 0;
        }
        double want = expect ? strtod(expect, NULL) : -1;
        ok(found && expect && got > want - 0.001 && got < want + 0.001,
           "limiter.txt:%d: event %d: %s %s got %.3f, want %s", s->lineno, s->step, verb,
           what ? what : "?", got, expect ? expect : "?");
    } else {
        ok(0, "limiter.txt:%d: unknown event %s", s->lineno, verb);
    }
}

static void limiter_case(char *line, int lineno)
{
    static struct script s;
    memset(&s, 0, sizeof s);
    s.lineno = lineno;
    ratelimit_init(&s.r, NULL, 1, 0);
    char *save;
    for (char *ev = strtok_r(line, ";", &save); ev; ev = strtok_r(NULL, ";", &save)) {
        /* strtok_r inside script_event needs its own copy of the event */
        char buf[512];
        snprintf(buf, sizeof buf, "%s", rl_trim(ev));
        script_event(&s, buf);
    }
}

/* ---- the simulation ---- */

enum sim_kind { SIM_ROLLING, SIM_FIXED };
enum sim_headers {
    SIM_HEADERS,     /* every reply: limit, remaining, reset; a 429 adds Retry-After */
    SIM_RETRY_AFTER, /* only a 429's Retry-After */
    SIM_BARE         /* nothing but the 429 itself */
};

#define SIM_N 1200.0 /* requests a minute per key: what issue 8 must show */
#define SIM_WORKERS_MAX 3
#define SIM_CONCURRENCY 512     /* calls a worker may keep in flight: far above any rate here */
#define SIM_END_MS (11 * 60000) /* measured from 60 s to here */
#define SIM_WINDOW0 (-17000)    /* fixed windows start here, not with the simulation */
#define SIM_WALL0 1796192400000 /* 2026-12-02T06:20:00Z: the wall clock at t=0 */

struct sim_call {
    int64_t sent, due;
    int accepted, used;
    char headers[4][96];
    int nheaders;
};

struct sim_worker {
    struct ratelimit r;
    struct sim_call calls[SIM_CONCURRENCY];
    int free_slot[SIM_CONCURRENCY]; /* a stack of the unused calls */
    int nfree;
    int64_t min_due; /* the next reply; INT64_MAX = none */
};

struct sim_provider {
    double n; /* requests a minute per key */
    enum sim_kind kind;
    enum sim_headers headers;
    double level; /* rolling: what remains */
    int64_t updated;
    int64_t window_start; /* fixed: the current window */
    double count;
};

struct sim_result {
    double accepted_share; /* accepted after the first minute / what N allows */
    double share_429;      /* 429s after the first minute / calls decided */
    uint64_t calls, rejected;
};

static uint64_t sim_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* The provider takes a call arriving at t; fills the reply's headers. */
static int sim_decide(struct sim_provider *p, struct sim_call *c, int64_t t)
{
    int accepted;
    c->nheaders = 0;
    if (p->kind == SIM_ROLLING) {
        p->level += (double)(t - p->updated) * p->n / 60000.0;
        if (p->level > p->n)
            p->level = p->n;
        p->updated = t;
        accepted = p->level >= 1;
        if (accepted)
            p->level -= 1;
        if (p->headers == SIM_HEADERS) {
            int64_t reset = (int64_t)((p->n - p->level) * 60000.0 / p->n + 0.999);
            snprintf(c->headers[c->nheaders++], 96, "x-ratelimit-limit-requests: %.0f", p->n);
            snprintf(c->headers[c->nheaders++], 96, "x-ratelimit-remaining-requests: %" PRId64,
                     (int64_t)p->level);
            snprintf(c->headers[c->nheaders++], 96, "x-ratelimit-reset-requests: %" PRId64 "ms",
                     reset);
        }
        if (!accepted && p->headers != SIM_BARE) {
            int64_t one = (int64_t)((1 - p->level) * 60000.0 / p->n + 0.999);
            if (p->headers == SIM_HEADERS)
                snprintf(c->headers[c->nheaders++], 96, "retry-after-ms: %" PRId64, one);
            else
                snprintf(c->headers[c->nheaders++], 96, "Retry-After: %" PRId64,
                         (one + 999) / 1000);
        }
    } else {
        while (t >= p->window_start + 60000) {
            p->window_start += 60000;
            p->count = 0;
        }
        accepted = p->count < p->n;
        if (accepted)
            p->count += 1;
        int64_t end = p->window_start + 60000;
        if (p->headers == SIM_HEADERS) {
            int64_t wall = (SIM_WALL0 + end) / 1000;
            int64_t secs = wall % 86400;
            snprintf(c->headers[c->nheaders++], 96, "anthropic-ratelimit-requests-limit: %.0f",
                     p->n);
            snprintf(c->headers[c->nheaders++], 96, "anthropic-ratelimit-requests-remaining: %.0f",
                     p->n - p->count);
            /* the window ends within the simulated day 2026-12-02 */
            snprintf(c->headers[c->nheaders++], 96,
                     "anthropic-ratelimit-requests-reset: 2026-12-02T%02d:%02d:%02dZ",
                     (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
        }
        if (!accepted && p->headers != SIM_BARE)
            snprintf(c->headers[c->nheaders++], 96, "retry-after: %" PRId64,
                     (end - t + 999) / 1000);
    }
    return accepted;
}

static struct sim_result sim_run(double n, enum sim_kind kind, enum sim_headers headers,
                                 int workers, uint64_t configured_rpm)
{
    static struct sim_worker w[SIM_WORKERS_MAX];
    struct sim_provider p = {
        .n = n, .kind = kind, .headers = headers, .level = n, .window_start = SIM_WINDOW0};
    struct ratelimit_limits lim = {.requests_per_minute = configured_rpm};
    struct ratelimit_cost cost = {0};
    uint64_t seed =
        0x9E3779B97F4A7C15ull ^ ((uint64_t)kind * 7 + (uint64_t)headers * 3 + (uint64_t)workers);
    for (int i = 0; i < workers; i++) {
        ratelimit_init(&w[i].r, &lim, 1, 0);
        for (int k = 0; k < SIM_CONCURRENCY; k++) {
            w[i].calls[k].used = 0;
            w[i].free_slot[k] = k;
        }
        w[i].nfree = SIM_CONCURRENCY;
        w[i].min_due = INT64_MAX;
    }
    uint64_t accepted = 0, rejected = 0;
    int64_t t = 0;
    /* A window gives N whatever the phase, so a fixed window is measured in
     * whole windows (a part of one would count its N, or none of it, by
     * where it falls); a rolling bucket from 60 s to the end. */
    int64_t from = 60000, to = SIM_END_MS;
    if (kind == SIM_FIXED) {
        from = SIM_WINDOW0 + ((60000 - SIM_WINDOW0 + 59999) / 60000) * 60000;
        to = SIM_WINDOW0 + ((SIM_END_MS - SIM_WINDOW0) / 60000) * 60000;
    }
    while (t < SIM_END_MS) {
        int64_t next = SIM_END_MS;
        for (int i = 0; i < workers; i++) {
            struct sim_worker *sw = &w[i];
            /* replies due now */
            int64_t min_due = INT64_MAX;
            for (int k = 0; t >= sw->min_due && k < SIM_CONCURRENCY; k++) {
                struct sim_call *c = &sw->calls[k];
                if (c->used && c->due > t && c->due < min_due)
                    min_due = c->due;
                if (!c->used || c->due > t)
                    continue;
                struct ratelimit_hints h;
                ratelimit_hints_init(&h);
                for (int j = 0; j < c->nheaders; j++)
                    ratelimit_hints_header(&h, c->headers[j], strlen(c->headers[j]), SIM_WALL0 + t);
                struct ratelimit_outcome o = {.reserved = &cost,
                                              .used = NULL,
                                              .rate_limited = !c->accepted,
                                              .succeeded = c->accepted,
                                              .sent_ms = c->sent,
                                              .hints = &h};
                ratelimit_end(&sw->r, &o, t);
                c->used = 0;
                sw->free_slot[sw->nfree++] = k;
            }
            if (t >= sw->min_due)
                sw->min_due = min_due;
            /* as many calls as it lets go */
            while (sw->nfree > 0) {
                int64_t wait = ratelimit_wait(&sw->r, &cost, t);
                if (wait > 0) {
                    if (wait != RATELIMIT_WAIT_CALL && t + wait < next)
                        next = t + wait;
                    break;
                }
                struct sim_call *c = &sw->calls[sw->free_slot[--sw->nfree]];
                ratelimit_start(&sw->r, &cost, t);
                int64_t arrive = t + 20 + (int64_t)(sim_random(&seed) % 60);
                c->used = 1;
                c->sent = t;
                c->accepted = sim_decide(&p, c, arrive);
                /* an answer takes 0.3-1.5 s; a 429 comes back at once */
                c->due =
                    c->accepted ? arrive + 300 + (int64_t)(sim_random(&seed) % 1200) : arrive + 20;
                if (c->due < sw->min_due)
                    sw->min_due = c->due;
                if (arrive >= from && arrive < to) {
                    accepted += (uint64_t)c->accepted;
                    rejected += (uint64_t)!c->accepted;
                }
            }
            if (sw->min_due < next)
                next = sw->min_due;
        }
        t = next > t ? next : t + 1;
    }
    struct sim_result res = {0};
    double minutes = (double)(to - from) / 60000.0;
    res.accepted_share = (double)accepted / (n * minutes);
    res.calls = accepted + rejected;
    res.rejected = rejected;
    res.share_429 = res.calls ? (double)rejected / (double)res.calls : 1;
    return res;
}

static void sim_check(double n, enum sim_kind kind, enum sim_headers headers, int workers,
                      uint64_t configured_rpm, double max_429)
{
    static const char *const kinds[] = {"rolling", "fixed"};
    static const char *const hnames[] = {"headers", "retry-after", "bare"};
    struct sim_result res = sim_run(n, kind, headers, workers, configured_rpm);
    fprintf(stderr,
            "ratelimit sim: N=%-5.0f %-7s %-11s workers=%d configured=%-5" PRIu64
            ": accepted %5.1f%% of N, 429s %5.2f%% (%" PRIu64 " of %" PRIu64 " calls)%s\n",
            n, kinds[kind], hnames[headers], workers, configured_rpm, res.accepted_share * 100,
            res.share_429 * 100, res.rejected, res.calls, max_429 > 0 ? "" : " [reported only]");
    if (max_429 <= 0)
        return;
    ok(res.accepted_share >= 0.90,
       "sim N=%.0f %s %s workers=%d configured=%" PRIu64 ": accepted %.3f", n, kinds[kind],
       hnames[headers], workers, configured_rpm, res.accepted_share);
    ok(res.share_429 <= max_429,
       "sim N=%.0f %s %s workers=%d configured=%" PRIu64 ": 429s %.4f > %.4f", n, kinds[kind],
       hnames[headers], workers, configured_rpm, res.share_429, max_429);
}

void test_ratelimit(void)
{
    int n = rl_each_line(CHECK_ROOT "/tests/data/ratelimit/headers.txt", headers_case);
    ok(n >= 40, "ratelimit headers: %d cases", n);
    n = rl_each_line(CHECK_ROOT "/tests/data/ratelimit/durations.txt", durations_case);
    ok(n >= 20, "ratelimit durations: %d cases", n);
    n = rl_each_line(CHECK_ROOT "/tests/data/ratelimit/limiter.txt", limiter_case);
    ok(n >= 15, "ratelimit limiter: %d cases", n);

    fprintf(stderr,
            "ratelimit sim: up to %d calls in flight per worker, answers in 0.3-1.5 s, "
            "AIMD beta=%.2f step=%.2f rpm/success, measured from 60 s to %d s "
            "(fixed windows: the whole windows in it)\n",
            SIM_CONCURRENCY, RATELIMIT_AIMD_BETA, RATELIMIT_AIMD_STEP_RPM, SIM_END_MS / 1000);
    for (int kind = SIM_ROLLING; kind <= SIM_FIXED; kind++) {
        enum sim_kind k = (enum sim_kind)kind;
        /* what issue 8 must show: 2% learned, 0.5% configured */
        for (int hd = SIM_HEADERS; hd <= SIM_RETRY_AFTER; hd++)
            for (int workers = 1; workers <= SIM_WORKERS_MAX; workers++)
                sim_check(SIM_N, k, (enum sim_headers)hd, workers, 0, 0.02);
        sim_check(SIM_N, k, SIM_HEADERS, 1, (uint64_t)SIM_N, 0.005);
        sim_check(SIM_N, k, SIM_RETRY_AFTER, 1, (uint64_t)SIM_N, 0.005);
        /* a fast lane holds the same bounds */
        sim_check(12000, k, SIM_HEADERS, 1, 0, 0.02);
        sim_check(12000, k, SIM_RETRY_AFTER, 2, 0, 0.02);
        sim_check(12000, k, SIM_HEADERS, 1, 12000, 0.005);
        /* reported: a provider that says nothing but 429, and a slow lane,
         * where one 429 a minute to find the window's end is already
         * 1 in 60 calls */
        sim_check(SIM_N, k, SIM_BARE, 1, 0, 0);
        sim_check(60, k, SIM_HEADERS, 1, 0, 0);
        sim_check(60, k, SIM_HEADERS, 3, 0, 0);
        sim_check(60, k, SIM_RETRY_AFTER, 1, 0, 0);
        sim_check(60, k, SIM_RETRY_AFTER, 3, 0, 0);
    }
}

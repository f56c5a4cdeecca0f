/*
 * breaker: every script of tests/data/breaker/cases.txt (its header says
 * the line language), then properties no table can list: a breaker fed any
 * sequence never lets more than `probes` calls through while half open,
 * and never changes when only asked whether it refuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "check.h"

#define CASES "tests/data/breaker/cases.txt"

struct breaker_script {
    struct breaker b;
    struct breaker_config c;
    int started;
};

static const char *const outcome_names[] = {"success", "failure", "ignore", NULL};

static int breaker_name_index(const char *name, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

static int breaker_state_parse(const char *name, enum breaker_state *out)
{
    static const enum breaker_state all[] = {BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN};
    for (size_t i = 0; i < 3; i++)
        if (strcmp(name, breaker_state_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return -1;
}

/* Splits on blanks into at most max words; returns how many. */
static int breaker_words(char *s, char **w, int max)
{
    int n = 0;
    char *save;
    for (char *t = strtok_r(s, " \t", &save); t && n < max; t = strtok_r(NULL, " \t", &save))
        w[n++] = t;
    return n;
}

static int breaker_new(struct breaker_script *s, char **w, int n, int lineno)
{
    s->c = (struct breaker_config){5, 50, 20, 10000, 5000, 1};
    breaker_init(&s->b);
    s->started = 1;
    for (int i = 1; i < n; i++) {
        char *eq = strchr(w[i], '=');
        if (!ok(eq != NULL, CASES ":%d: expected KEY=N, got %s", lineno, w[i]))
            return -1;
        *eq = '\0';
        uint32_t v = (uint32_t)strtoul(eq + 1, NULL, 10);
        if (strcmp(w[i], "failures") == 0)
            s->c.failures = v;
        else if (strcmp(w[i], "percent") == 0)
            s->c.failure_percent = v;
        else if (strcmp(w[i], "min") == 0)
            s->c.min_calls = v;
        else if (strcmp(w[i], "window") == 0)
            s->c.window_ms = v;
        else if (strcmp(w[i], "open") == 0)
            s->c.open_ms = v;
        else if (strcmp(w[i], "probes") == 0)
            s->c.probes = v;
        else
            return ok(0, CASES ":%d: unknown setting %s", lineno, w[i]) ? 0 : -1;
    }
    return 0;
}

static void breaker_expect_fields(const struct breaker *b, char **w, int n, int lineno)
{
    for (int i = 1; i < n; i++) {
        char *eq = strchr(w[i], '=');
        if (!ok(eq != NULL, CASES ":%d: expected KEY=N, got %s", lineno, w[i]))
            return;
        *eq = '\0';
        long long want = strtoll(eq + 1, NULL, 10), got;
        if (strcmp(w[i], "consecutive") == 0)
            got = b->consecutive;
        else if (strcmp(w[i], "probes_out") == 0)
            got = b->probes_out;
        else if (strcmp(w[i], "opened") == 0)
            got = b->opened_ms;
        else if (strcmp(w[i], "to_closed") == 0)
            got = (long long)b->transitions[BREAKER_CLOSED];
        else if (strcmp(w[i], "to_open") == 0)
            got = (long long)b->transitions[BREAKER_OPEN];
        else if (strcmp(w[i], "to_half_open") == 0)
            got = (long long)b->transitions[BREAKER_HALF_OPEN];
        else {
            ok(0, CASES ":%d: unknown field %s", lineno, w[i]);
            return;
        }
        ok(got == want, CASES ":%d: %s is %lld, want %lld", lineno, w[i], got, want);
    }
}

static void breaker_line(struct breaker_script *s, char *line, int lineno)
{
    char *arrow = strstr(line, "->");
    if (arrow)
        *arrow = '\0';
    char *w[16], *e[8];
    int n = breaker_words(line, w, 16), ne = arrow ? breaker_words(arrow + 2, e, 8) : 0;
    if (n == 0)
        return;
    if (strcmp(w[0], "new") == 0) {
        breaker_new(s, w, n, lineno);
        return;
    }
    if (strcmp(w[0], "classify") == 0) {
        if (!ok(n == 4 && ne == 1, CASES ":%d: expected classify S T M -> OUTCOME", lineno))
            return;
        enum breaker_outcome got = breaker_classify(strtol(w[1], NULL, 10), atoi(w[2]), atoi(w[3]));
        ok(strcmp(outcome_names[got], e[0]) == 0, CASES ":%d: classify %s %s %s: %s, want %s",
           lineno, w[1], w[2], w[3], outcome_names[got], e[0]);
        return;
    }
    if (!ok(s->started, CASES ":%d: an event before any \"new\"", lineno))
        return;
    if (strcmp(w[0], "expect") == 0) {
        breaker_expect_fields(&s->b, w, n, lineno);
        return;
    }
    if (!ok(n >= 2 && ne >= 1, CASES ":%d: expected EVENT T ... -> ...", lineno))
        return;
    int64_t now = strtoll(w[1], NULL, 10);
    enum breaker_state want_state = BREAKER_CLOSED;
    if (strcmp(w[0], "refuses") == 0) {
        struct breaker before = s->b;
        int got = breaker_refuses(&s->b, &s->c, now);
        ok(got == atoi(e[0]), CASES ":%d: refuses %d, want %s", lineno, got, e[0]);
        ok(memcmp(&before, &s->b, sizeof before) == 0, CASES ":%d: refuses changed the breaker",
           lineno);
        return;
    }
    if (!ok(breaker_state_parse(e[ne - 1], &want_state) == 0, CASES ":%d: unknown state %s", lineno,
            e[ne - 1]))
        return;
    if (strcmp(w[0], "allow") == 0) {
        int probe = -1, changed = -1;
        int got = breaker_allow(&s->b, &s->c, now, &probe, &changed);
        const char *answer = !got ? "no" : probe ? "probe" : "yes";
        int want_changed = ne == 3 && strcmp(e[1], "changed") == 0;
        ok(strcmp(answer, e[0]) == 0 && changed == want_changed && s->b.state == want_state,
           CASES ":%d: allow: %s%s %s, want %s%s %s", lineno, answer, changed ? " changed" : "",
           breaker_state_name(s->b.state), e[0], want_changed ? " changed" : "", e[ne - 1]);
        ok(!got || probe == (s->b.state == BREAKER_HALF_OPEN),
           CASES ":%d: a call allowed while half open is a probe, and only then", lineno);
        return;
    }
    if (strcmp(w[0], "record") == 0) {
        int o = n >= 3 ? breaker_name_index(w[2], outcome_names) : -1;
        int probe = 0;
        long times = 1;
        for (int i = 3; i < n; i++) {
            if (strcmp(w[i], "probe") == 0)
                probe = 1;
            else if (w[i][0] == 'x')
                times = strtol(w[i] + 1, NULL, 10);
        }
        if (!ok(o >= 0 && times >= 1 && ne == 2, CASES ":%d: expected record T OUTCOME ...",
                lineno))
            return;
        int changed_before_last = 0, last = 0;
        for (long i = 0; i < times; i++) {
            last = breaker_record(&s->b, &s->c, now, (enum breaker_outcome)o, probe);
            if (i + 1 < times)
                changed_before_last |= last;
        }
        int want_changed = strcmp(e[0], "changed") == 0;
        ok(!changed_before_last && last == want_changed && s->b.state == want_state,
           CASES ":%d: record: %s%s %s, want %s %s", lineno, last ? "changed" : "same",
           changed_before_last ? " (and an earlier one changed)" : "",
           breaker_state_name(s->b.state), e[0], e[ne - 1]);
        return;
    }
    ok(0, CASES ":%d: unknown event %s", lineno, w[0]);
}

struct breaker_count {
    struct breaker_script s;
    int lines, scripts;
};

static void breaker_case(char *line, int lineno, void *ctx)
{
    struct breaker_count *n = ctx;
    n->scripts += strncmp(line, "new", 3) == 0;
    n->lines++;
    breaker_line(&n->s, line, lineno);
}

static void test_breaker_cases(void)
{
    struct breaker_count n = {0};
    check_each_line(CHECK_ROOT "/" CASES, breaker_case, &n);
    ok(n.scripts >= 20 && n.lines >= 150, "breaker: %d scripts, %d lines", n.scripts, n.lines);
}

/* A pseudo-random walk (fixed seed): whatever happens, at most `probes`
 * calls are let through per half-open period before an outcome frees one,
 * refused and allowed agree, and a call refused while closed never happens. */
static void test_breaker_walk(void)
{
    struct breaker_config c = {3, 50, 10, 1000, 200, 2};
    struct breaker b;
    breaker_init(&b);
    uint64_t x = 0x2545F4914F6CDD1Dull;
    int64_t now = 0;
    uint32_t in_flight_probes = 0;
    int bounded = 1, agree = 1, closed_allows = 1, counted = 1;
    uint64_t moves = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now += (int64_t)(x % 20);
        int refuses = breaker_refuses(&b, &c, now);
        enum breaker_state was = b.state;
        int probe = 0, changed = 0;
        if (x % 3 == 0) {
            int allowed = breaker_allow(&b, &c, now, &probe, &changed);
            moves += (uint64_t)changed;
            agree &= allowed == !refuses;
            closed_allows &= was != BREAKER_CLOSED || allowed;
            if (changed)
                in_flight_probes = 0; /* a new half-open period */
            if (probe)
                in_flight_probes++;
            bounded &= in_flight_probes <= c.probes && b.probes_out == in_flight_probes;
        } else if (in_flight_probes > 0 && x % 3 == 1) {
            enum breaker_outcome o = (enum breaker_outcome)((x >> 20) % 3);
            moves += (uint64_t)breaker_record(&b, &c, now, o, 1);
            in_flight_probes = b.state == BREAKER_HALF_OPEN ? b.probes_out : 0;
        } else {
            enum breaker_outcome o = (x >> 20) % 4 == 0 ? BREAKER_SUCCESS : BREAKER_FAILURE;
            moves += (uint64_t)breaker_record(&b, &c, now, o, 0);
        }
    }
    counted = moves == b.transitions[0] + b.transitions[1] + b.transitions[2];
    ok(bounded, "never more than `probes` probes in flight");
    ok(agree, "breaker_refuses says exactly what breaker_allow does");
    ok(closed_allows, "closed allows every call");
    ok(counted && b.transitions[BREAKER_OPEN] > 100 && b.transitions[BREAKER_CLOSED] > 10,
       "every reported change is one counted transition (%llu opens, %llu closes)",
       (unsigned long long)b.transitions[BREAKER_OPEN],
       (unsigned long long)b.transitions[BREAKER_CLOSED]);
}

void test_breaker(void)
{
    test_breaker_cases();
    test_breaker_walk();
}

/*
 * ratelog: the table in tests/data/ratelog/cases.txt, and the keyed set's
 * bound on memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ratelog.h"

static void ratelog_case(char *line, int lineno)
{
    char *arrow = strstr(line, "->");
    if (!arrow) {
        ok(0, "cases.txt:%d: no ->", lineno);
        return;
    }
    *arrow = '\0';
    char *save1, *save2;
    char *tok = strtok_r(line, " \t", &save1);
    struct ratelog r = {.interval_ms = strtoull(tok, NULL, 10)};
    char *want = strtok_r(arrow + 2, " \t\n", &save2);
    int step = 0;
    while ((tok = strtok_r(NULL, " \t", &save1)) != NULL) {
        uint64_t suppressed = 99;
        int allow = ratelog_allow(&r, strtoull(tok, NULL, 10), &suppressed);
        char got[32];
        if (allow)
            snprintf(got, sizeof got, "log%llu", (unsigned long long)suppressed);
        else
            snprintf(got, sizeof got, "-");
        ok(want && strcmp(got, want) == 0, "cases.txt:%d step %d: got %s, want %s", lineno, step,
           got, want ? want : "(nothing)");
        want = strtok_r(NULL, " \t\n", &save2);
        step++;
    }
    ok(want == NULL, "cases.txt:%d: more decisions than occurrences", lineno);
}

void test_ratelog(void)
{
    size_t len;
    char *text = check_read_file(CHECK_ROOT "/tests/data/ratelog/cases.txt", &len);
    if (!ok(text != NULL, "read tests/data/ratelog/cases.txt"))
        return;
    int lineno = 0, cases = 0;
    char *save;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        ratelog_case(line, lineno);
        cases++;
    }
    ok(cases >= 9, "ratelog: %d cases read", cases);
    free(text);

    /* keyed: causes are independent; past the cap they share one bucket */
    struct ratelog_set *s = calloc(1, sizeof *s);
    s->interval_ms = 1000;
    uint64_t sup;
    ok(ratelog_allow_key(s, "a", 0, &sup) == 1, "key a: first logs");
    ok(ratelog_allow_key(s, "b", 1, &sup) == 1, "key b: first logs, apart from a");
    ok(ratelog_allow_key(s, "a", 2, &sup) == 0, "key a: second is silent");
    ok(ratelog_allow_key(s, "a", 1002, &sup) == 1 && sup == 1, "key a: logs with 1 suppressed");
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ratelog_allow_key(s, key, 5000, &sup);
    }
    ok(s->nkeys == RATELOG_MAX_KEYS, "distinct keys are capped at %d (%zu)", RATELOG_MAX_KEYS,
       s->nkeys);
    ok(s->overflow.suppressed > 0, "keys past the cap are counted in the shared bucket");
    free(s);
}

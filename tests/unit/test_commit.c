/*
 * commit: the stall decision from tests/data/commit/stall.txt; a commit's
 * offset and metadata, and when the same offset is committed again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "commit.h"
#include "offsets.h"

static void stall_case(char *line, int lineno)
{
    char *arrow = strstr(line, "->");
    if (!ok(arrow != NULL, "stall.txt:%d: no ->", lineno))
        return;
    *arrow = '\0';
    char *save1, *save2;
    char *tok = strtok_r(line, " \t", &save1);
    uint64_t bound = strtoull(tok, NULL, 10);
    struct commit_part cp;
    commit_part_init(&cp);
    char *want = strtok_r(arrow + 2, " \t\n", &save2);
    int step = 0;
    while ((tok = strtok_r(NULL, " \t", &save1)) != NULL) {
        unsigned long long now, holding;
        long long at;
        if (!ok(sscanf(tok, "%llu:%lld:%llu", &now, &at, &holding) == 3,
                "stall.txt:%d: bad observation %s", lineno, tok))
            return;
        uint64_t stuck = 7;
        int stalled = commit_stall_check(&cp, at, (int)holding, now, bound, &stuck);
        char got[32];
        if (stalled)
            snprintf(got, sizeof got, "s%llu", (unsigned long long)stuck);
        else
            snprintf(got, sizeof got, "-");
        ok(want && strcmp(got, want) == 0, "stall.txt:%d step %d: got %s, want %s", lineno, step,
           got, want ? want : "(nothing)");
        ok(cp.stalled == stalled, "stall.txt:%d step %d: cp.stalled follows", lineno, step);
        want = strtok_r(NULL, " \t\n", &save2);
        step++;
    }
    ok(want == NULL, "stall.txt:%d: more decisions than observations", lineno);
    commit_part_reset(&cp);
}

static void test_commit_add(void)
{
    struct commit_part cp;
    commit_part_init(&cp);
    struct offsets *o = offsets_new(10);
    for (int64_t i = 10; i < 15; i++)
        offsets_track(o, i);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    struct offsets_range r[4];
    ok(commit_part_add(&cp, o, "t", 3, l) == 1 && l->cnt == 1 && l->elems[0].offset == 10 &&
           l->elems[0].partition == 3 &&
           offsets_decode_metadata(l->elems[0].metadata, l->elems[0].metadata_size, 10, r, 4) == 0,
       "nothing done: commit 10, no done ranges in the metadata");
    ok(commit_part_add(&cp, o, "t", 3, l) == 0 && l->cnt == 1, "unchanged: not again");
    offsets_done(o, 12);
    ok(commit_part_add(&cp, o, "t", 3, l) == 1 && l->cnt == 2 && l->elems[1].offset == 10 &&
           l->elems[1].metadata_size > 0,
       "work done above the prefix: the same offset again, with metadata");
    int n = offsets_decode_metadata(l->elems[1].metadata, l->elems[1].metadata_size, 10, r, 4);
    ok(n == 1 && offsets_ranges_contain(r, (size_t)n, 12) &&
           !offsets_ranges_contain(r, (size_t)n, 11),
       "the metadata says 12 is done, 11 is not (%d ranges)", n);
    offsets_done(o, 10);
    offsets_done(o, 11);
    ok(commit_part_add(&cp, o, "t", 3, l) == 1 && l->cnt == 3 && l->elems[2].offset == 13,
       "the prefix moved past 12: commit 13 (%lld)", (long long)l->elems[2].offset);
    cp.committed = 20; /* a later commit we know of: never go back */
    ok(commit_part_add(&cp, o, "t", 3, l) == 0, "never commits below what was committed");
    ok(commit_rebalancing_error(RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS) &&
           commit_rebalancing_error(RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION) &&
           commit_rebalancing_error(RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID) &&
           !commit_rebalancing_error(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT) &&
           !commit_rebalancing_error(RD_KAFKA_RESP_ERR_NO_ERROR),
       "rebalancing errors are told apart");
    rd_kafka_topic_partition_list_destroy(l);
    offsets_free(o);
    commit_part_reset(&cp);
}

void test_commit(void)
{
    size_t len;
    char *text = check_read_file(CHECK_ROOT "/tests/data/commit/stall.txt", &len);
    if (ok(text != NULL, "read tests/data/commit/stall.txt")) {
        int lineno = 0, cases = 0;
        char *line = text, *next;
        for (; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            lineno++;
            if (line[0] == '#' || line[0] == '\0')
                continue;
            stall_case(line, lineno);
            cases++;
        }
        ok(cases >= 7, "stall: %d cases read", cases);
    }
    free(text);
    test_commit_add();
}

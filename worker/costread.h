/*
 * costread: where `switchyard cost-report` gets its cost records: a file
 * of JSON lines, or the costs topic read by record timestamp with its own
 * assignment (never joining the worker's group, never committing). Each
 * record goes to costreport_add; a bad one is reported on stderr with its
 * position.
 */
#ifndef SWITCHYARD_COSTREAD_H
#define SWITCHYARD_COSTREAD_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "costreport.h"

/* Every line of `in` (name: how to call it in messages, e.g. the path or
 * "-") into r; blank lines are skipped; a line longer than
 * COSTREPORT_RECORD_MAX is a bad record (and is not held in memory).
 * Bad records are reported on stderr as "NAME:LINE: why". 0, or -1 on a
 * read error (reported too). */
int costread_file(FILE *in, const char *name, struct costreport *r);

struct costread_range {
    int64_t from_ms, to_ms; /* record timestamps in [from_ms, to_ms); -1: unbounded */
    int64_t timeout_ms;     /* deadline for the whole read */
};

/* The records of cfg->topic_costs whose timestamp is in the range, from
 * every partition up to the end offsets seen at start, into r. Uses
 * worker.yaml's kafka section for the connection (bootstrap, security)
 * and its group.id only as librdkafka needs one to assign: no join, no
 * commit, no committed offset read. Bad records are reported on stderr as
 * "TOPIC/PARTITION@OFFSET: why". 0, or -1 with `why` (cap bytes) saying
 * what went wrong (the cluster not reached, the deadline passed before
 * every partition was read): then the totals are incomplete. */
int costread_topic(const struct config *cfg, const struct costread_range *range,
                   struct costreport *r, char *why, size_t cap);

#endif

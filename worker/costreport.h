/*
 * costreport: the totals of `switchyard cost-report`, pure. Cost records
 * (the JSON text of each, from a file or the costs topic: costread.c) go
 * in; they are de-duplicated on call_id (a settled record wins over a
 * reserved one; among copies of one kind the first is kept: they are
 * identical) and summed exactly, in integer nano-USD, per group of the
 * --by columns. Calls that only have a reserved record are open
 * reservations: "not yet settled, at most reserved_nusd".
 */
#ifndef SWITCHYARD_COSTREPORT_H
#define SWITCHYARD_COSTREPORT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "cost.h"

#define COSTREPORT_MAX_COLUMNS 8         /* columns in --by */
#define COSTREPORT_MAX_CALLS 50000000u   /* distinct call_ids held (about 10 GB) */
#define COSTREPORT_RECORD_MAX (1u << 20) /* bytes of one record's JSON text */
#define COSTREPORT_METADATA_KEY_MAX 256  /* bytes of a metadata.KEY key */

enum costreport_column {
    COSTREPORT_TENANT,
    COSTREPORT_TASK,
    COSTREPORT_MODEL,
    COSTREPORT_PROVIDER,
    COSTREPORT_DAY, /* UTC date of ts_ms, YYYY-MM-DD */
    COSTREPORT_METADATA,
};

/* The --by columns, in the order given. */
struct costreport_by {
    size_t n;
    enum costreport_column column[COSTREPORT_MAX_COLUMNS];
    char *key[COSTREPORT_MAX_COLUMNS]; /* owned; the KEY of metadata.KEY, else NULL */
};

/* Parses "tenant,day,metadata.batch" into *by (zeroed first). 0, or -1
 * with `why` (cap bytes) saying what is wrong; *by is then released.
 * An empty spec is no columns. Pure. */
int costreport_by_parse(const char *spec, struct costreport_by *by, char *why, size_t cap);
void costreport_by_release(struct costreport_by *by);

/* "2025-11-25", "2025-11-25T10:00Z", "2025-11-25T10:00:00.123Z" (UTC:
 * "Z" or "+00:00") or milliseconds since the epoch ("1764064800000") ->
 * *ms. 0, or -1 when it is none of these. Pure. */
int costreport_time_parse(const char *s, int64_t *ms);

/* "YYYY-MM-DD" of the UTC day of ms (>= 0) into out (11 bytes). Pure. */
void costreport_day(int64_t ms, char out[11]);

/* nusd as USD with nine decimals ("0.175875000") into out (24 bytes hold
 * any). Integer arithmetic. */
void costreport_usd(uint64_t nusd, char out[24]);

struct costreport;

/* New empty report grouped by a copy of `by`; NULL when out of memory.
 * Free with costreport_free (accepts NULL). */
struct costreport *costreport_new(const struct costreport_by *by);
void costreport_free(struct costreport *r);

/* Counts the cost record whose JSON text is text[0..len). 0 when it was
 * one (a duplicate counts as a record of its call); -1 when it is no cost
 * record (not JSON, not an object, a field missing or of the wrong type,
 * an unknown usage category, more than COSTREPORT_MAX_CALLS calls): it is
 * counted as bad and `why` (cap bytes) says why, never quoting the input. */
int costreport_add(struct costreport *r, const char *text, size_t len, char *why, size_t cap);
/* Counts one bad record that never reached costreport_add (a line longer
 * than COSTREPORT_RECORD_MAX, a Kafka message with no value). */
void costreport_add_bad(struct costreport *r);
uint64_t costreport_bad(const struct costreport *r);

/* The totals as JSON (new reference), NULL when a sum would exceed
 * 2^63 - 1 or out of memory:
 *   {"by": ["tenant", "metadata.batch"],
 *    "groups": [{"key": {"tenant": "acme" | null, ...}, TOTALS}, ...],
 *    "total": TOTALS, "bad_records": N}
 * TOTALS = {"records", "calls", "cost_nusd", "usage": {category: tokens},
 *           "open_reservations", "reserved_nusd"}: records read (copies
 * included), settled calls, their cost and usage, calls with only a
 * reserved record and the sum of their reserved_nusd. Groups are sorted
 * by their columns (absent first, then bytewise); with no --by column
 * there are none. A column a record does not have (no tenant, no such
 * metadata key) is null. */
json_t *costreport_json(const struct costreport *r);

enum costreport_format { COSTREPORT_TABLE, COSTREPORT_CSV, COSTREPORT_JSON };
/* Parses "table" / "csv" / "json"; -1 when none. */
int costreport_format_parse(const char *s, enum costreport_format *f);

/* Writes the totals of costreport_json in `format` to out: json as one
 * document; csv with a header row, a "row" column ("group" | "total"),
 * nano-USD integers; table with USD to nine decimals and open
 * reservations as "not yet settled, at most X USD". -1 when
 * costreport_json fails or writing does. */
int costreport_write(const struct costreport *r, enum costreport_format format, FILE *out);

#endif

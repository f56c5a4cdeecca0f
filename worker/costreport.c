/*
 * costreport: de-duplication and exact totals of cost records for
 * `switchyard cost-report`. Pure: text in, totals out (costreport_write
 * only writes to the FILE it is given). It must never use floating point
 * for an amount, never drop a record silently (a record it cannot read is
 * counted as bad) and never hold more than COSTREPORT_MAX_CALLS calls.
 */
#include "costreport.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct costreport_totals {
    uint64_t records, calls, cost_nusd, open, reserved_nusd;
    uint64_t usage[COST_NCAT];
};

/* One call_id: the record that wins so far. */
struct costreport_call {
    char *call_id;
    char *group; /* the encoded group key (costreport_group_key), glen bytes */
    size_t glen;
    int settled;
    uint64_t records; /* records of this call read, copies included */
    uint64_t cost_nusd, reserved_nusd;
    uint64_t usage[COST_NCAT];
};

struct costreport_group {
    const char *key; /* borrowed from a call */
    size_t len;
    struct costreport_totals t;
};

struct costreport {
    struct costreport_by by;
    struct costreport_call **slots; /* open addressing on call_id */
    size_t nslots, ncalls;
    uint64_t bad;
};

static void costreport_why(char *why, size_t cap, const char *msg)
{
    if (cap)
        snprintf(why, cap, "%s", msg);
}

/* ---- columns, times, amounts ---- */

static const char *const column_names[] = {"tenant", "task", "model", "provider", "day"};

int costreport_by_parse(const char *spec, struct costreport_by *by, char *why, size_t cap)
{
    memset(by, 0, sizeof *by);
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (by->n == COSTREPORT_MAX_COLUMNS) {
            snprintf(why, cap, "--by: at most %d columns", COSTREPORT_MAX_COLUMNS);
            goto bad;
        }
        int found = -1;
        for (int i = 0; i < 5; i++)
            if (strlen(column_names[i]) == n && memcmp(p, column_names[i], n) == 0)
                found = i;
        if (found >= 0) {
            by->column[by->n++] = (enum costreport_column)found;
        } else if (n > 9 && memcmp(p, "metadata.", 9) == 0) {
            if (n - 9 > COSTREPORT_METADATA_KEY_MAX) {
                snprintf(why, cap, "--by: a metadata key longer than %d bytes",
                         COSTREPORT_METADATA_KEY_MAX);
                goto bad;
            }
            by->key[by->n] = strndup(p + 9, n - 9);
            if (!by->key[by->n]) {
                costreport_why(why, cap, "out of memory");
                goto bad;
            }
            by->column[by->n++] = COSTREPORT_METADATA;
        } else {
            snprintf(why, cap,
                     "--by: unknown column \"%.*s\" (expected tenant, task, model, provider, "
                     "day or metadata.KEY)",
                     (int)(n > 64 ? 64 : n), p);
            goto bad;
        }
        for (size_t i = 0; i + 1 < by->n; i++)
            if (by->column[i] == by->column[by->n - 1] &&
                (by->column[i] != COSTREPORT_METADATA ||
                 strcmp(by->key[i], by->key[by->n - 1]) == 0)) {
                snprintf(why, cap, "--by: column \"%.*s\" given twice", (int)(n > 64 ? 64 : n), p);
                goto bad;
            }
        if (!end)
            break;
        p = end + 1;
        if (!*p) {
            costreport_why(why, cap, "--by: an empty column name");
            goto bad;
        }
    }
    return 0;
bad:
    costreport_by_release(by);
    return -1;
}

void costreport_by_release(struct costreport_by *by)
{
    for (size_t i = 0; i < COSTREPORT_MAX_COLUMNS; i++)
        free(by->key[i]);
    memset(by, 0, sizeof *by);
}

static const char *costreport_column_label(const struct costreport_by *by, size_t i, char *buf,
                                           size_t cap)
{
    if (by->column[i] != COSTREPORT_METADATA)
        return column_names[by->column[i]];
    snprintf(buf, cap, "metadata.%s", by->key[i]);
    return buf;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), and back. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void costreport_day(int64_t ms, char out[11])
{
    int64_t z = ms / 86400000 + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    /* ms >= 0: years 1970 .. 9999 fit; digits written by hand so that no
     * width is left to the compiler's guess */
    unsigned yy = (unsigned)(y % 10000);
    const unsigned v[] = {yy / 1000, yy / 100 % 10, yy / 10 % 10, yy % 10, 10,
                          m / 10,    m % 10,        10,           d / 10,  d % 10};
    for (int i = 0; i < 10; i++)
        out[i] = "0123456789-"[v[i]];
    out[10] = '\0';
}

/* n digits at *p into *v; advances *p. */
static int digits(const char **p, int n, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return -1;
        *v = *v * 10 + (unsigned)((*p)[i] - '0');
    }
    *p += n;
    return 0;
}

int costreport_time_parse(const char *s, int64_t *ms)
{
    size_t n = strlen(s);
    if (n > 0 && n <= 15 && strspn(s, "0123456789") == n) {
        *ms = strtoll(s, NULL, 10);
        return 0;
    }
    const char *p = s;
    unsigned y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
        digits(&p, 2, &d) < 0)
        return -1;
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return -1;
    if (*p == 'T') {
        p++;
        if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &mi) < 0 || h > 23 || mi > 59)
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec) < 0 || sec > 59)
                return -1;
            if (*p == '.') {
                p++;
                /* milliseconds: more digits than 3 must be zeros */
                int nd = 0;
                while (*p >= '0' && *p <= '9') {
                    if (nd < 3)
                        frac = frac * 10 + (unsigned)(*p - '0');
                    else if (*p != '0')
                        return -1;
                    nd++;
                    p++;
                }
                if (nd == 0)
                    return -1;
                for (; nd < 3; nd++)
                    frac *= 10;
            }
        }
        if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
            return -1;
    } else if (*p) {
        return -1;
    }
    *ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + frac;
    return 0;
}

void costreport_usd(uint64_t nusd, char out[24])
{
    snprintf(out, 24, "%" PRIu64 ".%09" PRIu64, nusd / 1000000000u, nusd % 1000000000u);
}

int costreport_format_parse(const char *s, enum costreport_format *f)
{
    static const char *const names[] = {"table", "csv", "json"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *f = (enum costreport_format)i;
            return 0;
        }
    return -1;
}

/* ---- the calls ---- */

struct costreport *costreport_new(const struct costreport_by *by)
{
    struct costreport *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->by.n = by->n;
    for (size_t i = 0; i < by->n; i++) {
        r->by.column[i] = by->column[i];
        if (by->key[i] && !(r->by.key[i] = strdup(by->key[i]))) {
            costreport_free(r);
            return NULL;
        }
    }
    return r;
}

static void costreport_call_free(struct costreport_call *c)
{
    if (!c)
        return;
    free(c->call_id);
    free(c->group);
    free(c);
}

void costreport_free(struct costreport *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nslots; i++)
        costreport_call_free(r->slots[i]);
    free(r->slots);
    costreport_by_release(&r->by);
    free(r);
}

static uint64_t costreport_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The slot of call_id: its call, or the empty slot where it goes. */
static struct costreport_call **costreport_slot(struct costreport_call **slots, size_t nslots,
                                                const char *id)
{
    size_t i = (size_t)costreport_hash(id, strlen(id)) & (nslots - 1);
    while (slots[i] && strcmp(slots[i]->call_id, id) != 0)
        i = (i + 1) & (nslots - 1);
    return &slots[i];
}

static int costreport_grow(struct costreport *r)
{
    size_t n = r->nslots ? r->nslots * 2 : 1024;
    struct costreport_call **slots = calloc(n, sizeof(struct costreport_call *));
    if (!slots)
        return -1;
    for (size_t i = 0; i < r->nslots; i++)
        if (r->slots[i])
            *costreport_slot(slots, n, r->slots[i]->call_id) = r->slots[i];
    free(r->slots);
    r->slots = slots;
    r->nslots = n;
    return 0;
}

/* Non-negative integer field; -1 when absent or anything else. */
static int costreport_uint(json_t *o, const char *name, uint64_t *v)
{
    json_t *x = json_object_get(o, name);
    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return -1;
    *v = (uint64_t)json_integer_value(x);
    return 0;
}

/* A string field without NUL bytes; NULL when absent or anything else. */
static const char *costreport_string(json_t *o, const char *name)
{
    json_t *x = json_object_get(o, name);
    if (!json_is_string(x) || strlen(json_string_value(x)) != json_string_length(x))
        return NULL;
    return json_string_value(x);
}

/* A growing byte buffer with a cap (a group key is bounded by the
 * record's own size). */
struct costreport_buf {
    char *p;
    size_t len, cap;
};

static int costreport_put(struct costreport_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* The group key of a record: per column "\x01" (absent) or "\x02" and
 * the value, then "\x00". Values hold no NUL byte, so comparing keys
 * bytewise orders groups column by column, absent first. A metadata
 * value that is no string (or holds a NUL) is its compact JSON. */
static int costreport_group_key(const struct costreport_by *by, json_t *o, int64_t ts_ms,
                                struct costreport_buf *b)
{
    for (size_t i = 0; i < by->n; i++) {
        const char *v = NULL;
        char day[11];
        char *dumped = NULL;
        switch (by->column[i]) {
        case COSTREPORT_TENANT:
        case COSTREPORT_TASK:
        case COSTREPORT_MODEL:
        case COSTREPORT_PROVIDER:
            v = costreport_string(o, column_names[by->column[i]]);
            break;
        case COSTREPORT_DAY:
            costreport_day(ts_ms, day);
            v = day;
            break;
        case COSTREPORT_METADATA: {
            json_t *x = json_object_get(json_object_get(o, "metadata"), by->key[i]);
            if (json_is_string(x) && strlen(json_string_value(x)) == json_string_length(x))
                v = json_string_value(x);
            else if (x && !json_is_null(x))
                v = dumped = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
            break;
        }
        }
        int rc = v ? costreport_put(b, "\x02", 1) || costreport_put(b, v, strlen(v))
                   : costreport_put(b, "\x01", 1);
        free(dumped);
        if (rc || costreport_put(b, "", 1))
            return -1;
    }
    if (!b->p && costreport_put(b, "", 0) < 0)
        return -1;
    return 0;
}

/* Checks that o is a cost record; fills what is summed. */
static int costreport_check(json_t *o, struct costreport_call *c, int64_t *ts_ms, char *why,
                            size_t cap)
{
    uint64_t v;
    if (!json_is_object(o))
        return costreport_why(why, cap, "not a JSON object"), -1;
    if (costreport_uint(o, "version", &v) < 0 || v != 1)
        return costreport_why(why, cap, "\"version\" is not 1"), -1;
    const char *id = costreport_string(o, "call_id");
    if (!id || !*id)
        return costreport_why(why, cap, "no \"call_id\" string"), -1;
    static const char *const strings[] = {"task", "model", "provider"};
    for (int i = 0; i < 3; i++)
        if (!costreport_string(o, strings[i])) {
            snprintf(why, cap, "no \"%s\" string", strings[i]);
            return -1;
        }
    json_t *tenant = json_object_get(o, "tenant");
    if (tenant && !costreport_string(o, "tenant"))
        return costreport_why(why, cap, "\"tenant\" is not a string"), -1;
    json_t *meta = json_object_get(o, "metadata");
    if (meta && !json_is_object(meta))
        return costreport_why(why, cap, "\"metadata\" is not an object"), -1;
    if (costreport_uint(o, "ts_ms", &v) < 0 || v > INT64_MAX / 2)
        return costreport_why(why, cap, "no \"ts_ms\" (ms since the epoch)"), -1;
    *ts_ms = (int64_t)v;
    if (costreport_uint(o, "cost_nusd", &c->cost_nusd) < 0)
        return costreport_why(why, cap, "no \"cost_nusd\" (a non-negative integer)"), -1;
    json_t *kind = json_object_get(o, "kind");
    /* records without a kind come from workers before reservations: settled */
    c->settled = 1;
    if (kind) {
        const char *k = json_string_value(kind);
        if (k && strcmp(k, "reserved") == 0)
            c->settled = 0;
        else if (!k || strcmp(k, "settled") != 0)
            return costreport_why(why, cap, "\"kind\" is neither \"reserved\" nor \"settled\""), -1;
    }
    if (!c->settled && costreport_uint(o, "reserved_nusd", &c->reserved_nusd) < 0)
        return costreport_why(why, cap, "a reserved record without \"reserved_nusd\""), -1;
    json_t *usage = json_object_get(o, "usage");
    if (!json_is_object(usage))
        return costreport_why(why, cap, "no \"usage\" object"), -1;
    const char *name;
    json_t *value;
    json_object_foreach(usage, name, value)
    {
        int cat = -1;
        for (int i = 0; i < COST_NCAT; i++)
            if (strcmp(name, cost_category_name((enum cost_category)i)) == 0)
                cat = i;
        if (cat < 0) {
            snprintf(why, cap, "an unknown usage category (%zu bytes)", strlen(name));
            return -1;
        }
        if (!json_is_integer(value) || json_integer_value(value) < 0) {
            snprintf(why, cap, "usage \"%s\" is not a non-negative integer", name);
            return -1;
        }
        c->usage[cat] = (uint64_t)json_integer_value(value);
    }
    return 0;
}

int costreport_add(struct costreport *r, const char *text, size_t len, char *why, size_t cap)
{
    json_error_t error;
    struct costreport_call c = {0};
    struct costreport_buf key = {0};
    int64_t ts_ms = 0;
    int rc = -1;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (!o) {
        /* jansson's text may quote the input: only the position is given */
        snprintf(why, cap, "not JSON (at character %d)", error.position);
        goto out;
    }
    if (costreport_check(o, &c, &ts_ms, why, cap) < 0)
        goto out;
    if (costreport_group_key(&r->by, o, ts_ms, &key) < 0) {
        costreport_why(why, cap, "out of memory");
        goto out;
    }
    const char *id = json_string_value(json_object_get(o, "call_id"));
    if (r->ncalls + 1 > r->nslots / 2 && costreport_grow(r) < 0) {
        costreport_why(why, cap, "out of memory");
        goto out;
    }
    struct costreport_call **slot = costreport_slot(r->slots, r->nslots, id);
    if (*slot) {
        (*slot)->records++;
        if (!(*slot)->settled && c.settled) {
            /* the settled record supersedes the reservation */
            struct costreport_call *old = *slot;
            free(old->group);
            old->group = key.p;
            old->glen = key.len;
            key.p = NULL;
            old->settled = 1;
            old->cost_nusd = c.cost_nusd;
            old->reserved_nusd = 0;
            memcpy(old->usage, c.usage, sizeof c.usage);
        }
        rc = 0;
        goto out;
    }
    if (r->ncalls >= COSTREPORT_MAX_CALLS) {
        snprintf(why, cap, "more than %u distinct call_ids", COSTREPORT_MAX_CALLS);
        goto out;
    }
    struct costreport_call *n = malloc(sizeof *n);
    if (!n || !(c.call_id = strdup(id))) {
        free(n);
        costreport_why(why, cap, "out of memory");
        goto out;
    }
    c.group = key.p;
    c.glen = key.len;
    key.p = NULL;
    c.records = 1;
    *n = c;
    c.call_id = NULL;
    *slot = n;
    r->ncalls++;
    rc = 0;
out:
    if (rc < 0)
        r->bad++;
    free(c.call_id);
    free(key.p);
    json_decref(o);
    return rc;
}

void costreport_add_bad(struct costreport *r)
{
    r->bad++;
}

uint64_t costreport_bad(const struct costreport *r)
{
    return r->bad;
}

/* ---- totals ---- */

static int costreport_sum(struct costreport_totals *t, const struct costreport_call *c)
{
    int over = 0;
    over |= __builtin_add_overflow(t->records, c->records, &t->records);
    if (c->settled) {
        over |= __builtin_add_overflow(t->calls, 1, &t->calls);
        over |= __builtin_add_overflow(t->cost_nusd, c->cost_nusd, &t->cost_nusd);
        for (int i = 0; i < COST_NCAT; i++)
            over |= __builtin_add_overflow(t->usage[i], c->usage[i], &t->usage[i]);
    } else {
        over |= __builtin_add_overflow(t->open, 1, &t->open);
        over |= __builtin_add_overflow(t->reserved_nusd, c->reserved_nusd, &t->reserved_nusd);
    }
    /* JSON integers are signed 64-bit */
    int64_t limit = INT64_MAX;
    over |= t->records > (uint64_t)limit || t->cost_nusd > (uint64_t)limit ||
            t->reserved_nusd > (uint64_t)limit;
    for (int i = 0; i < COST_NCAT; i++)
        over |= t->usage[i] > (uint64_t)limit;
    return over ? -1 : 0;
}

static int costreport_group_cmp(const void *a, const void *b)
{
    const struct costreport_group *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static json_t *costreport_totals_json(const struct costreport_totals *t)
{
    json_t *usage = json_object();
    for (int i = 0; i < COST_NCAT; i++)
        json_object_set_new(usage, cost_category_name((enum cost_category)i),
                            json_integer((json_int_t)t->usage[i]));
    return json_pack("{s:I, s:I, s:I, s:o, s:I, s:I}", "records", (json_int_t)t->records, "calls",
                     (json_int_t)t->calls, "cost_nusd", (json_int_t)t->cost_nusd, "usage", usage,
                     "open_reservations", (json_int_t)t->open, "reserved_nusd",
                     (json_int_t)t->reserved_nusd);
}

/* The group's key as {"column": value | null}. */
static json_t *costreport_key_json(const struct costreport_by *by, const char *key)
{
    json_t *o = json_object();
    char label[COSTREPORT_METADATA_KEY_MAX + 16];
    for (size_t i = 0; i < by->n; i++) {
        const char *name = costreport_column_label(by, i, label, sizeof label);
        if (*key == '\x01')
            json_object_set_new(o, name, json_null());
        else
            json_object_set_new(o, name, json_string(key + 1));
        key += strlen(key) + 1;
    }
    return o;
}

json_t *costreport_json(const struct costreport *r)
{
    struct costreport_group *groups = NULL;
    size_t ngroups = 0, gslots = 0;
    struct costreport_totals total = {0};
    json_t *out = NULL;
    /* groups by open addressing on the key, then sorted */
    size_t *index = NULL;
    if (r->by.n) {
        gslots = 1024;
        while (gslots < r->ncalls * 2)
            gslots *= 2;
        index = malloc(gslots * sizeof *index);
        groups = malloc((r->ncalls ? r->ncalls : 1) * sizeof *groups);
        if (!index || !groups)
            goto out;
        for (size_t i = 0; i < gslots; i++)
            index[i] = SIZE_MAX;
    }
    for (size_t s = 0; s < r->nslots; s++) {
        const struct costreport_call *c = r->slots[s];
        if (!c)
            continue;
        if (costreport_sum(&total, c) < 0)
            goto out;
        if (!r->by.n)
            continue;
        size_t i = (size_t)costreport_hash(c->group, c->glen) & (gslots - 1);
        while (index[i] != SIZE_MAX && (groups[index[i]].len != c->glen ||
                                        memcmp(groups[index[i]].key, c->group, c->glen) != 0))
            i = (i + 1) & (gslots - 1);
        if (index[i] == SIZE_MAX) {
            index[i] = ngroups;
            groups[ngroups++] = (struct costreport_group){.key = c->group, .len = c->glen};
        }
        if (costreport_sum(&groups[index[i]].t, c) < 0)
            goto out;
    }
    if (ngroups)
        qsort(groups, ngroups, sizeof *groups, costreport_group_cmp);
    json_t *by = json_array(), *list = json_array();
    char label[COSTREPORT_METADATA_KEY_MAX + 16];
    for (size_t i = 0; i < r->by.n; i++)
        json_array_append_new(by,
                              json_string(costreport_column_label(&r->by, i, label, sizeof label)));
    for (size_t g = 0; g < ngroups; g++) {
        json_t *e = costreport_totals_json(&groups[g].t);
        json_object_set_new(e, "key", costreport_key_json(&r->by, groups[g].key));
        json_array_append_new(list, e);
    }
    out = json_pack("{s:o, s:o, s:o, s:I}", "by", by, "groups", list, "total",
                    costreport_totals_json(&total), "bad_records", (json_int_t)r->bad);
out:
    free(index);
    free(groups);
    return out;
}

/* ---- writing ---- */

static const char *const counters[] = {"records", "calls", "cost_nusd"};

static int costreport_write_json(json_t *j, FILE *out)
{
    return json_dumpf(j, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 || fputc('\n', out) < 0 ? -1
                                                                                                : 0;
}

static void costreport_csv_cell(FILE *out, const char *s)
{
    if (!s)
        return;
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void costreport_csv_row(FILE *out, const char *row, json_t *by, json_t *e)
{
    fputs(row, out);
    size_t i;
    json_t *col;
    json_array_foreach(by, i, col)
    {
        fputc(',', out);
        costreport_csv_cell(out, json_string_value(json_object_get(json_object_get(e, "key"),
                                                                   json_string_value(col))));
    }
    for (int k = 0; k < 3; k++)
        fprintf(out, ",%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(e, counters[k])));
    for (int c = 0; c < COST_NCAT; c++)
        fprintf(out, ",%" JSON_INTEGER_FORMAT,
                json_integer_value(json_object_get(json_object_get(e, "usage"),
                                                   cost_category_name((enum cost_category)c))));
    fprintf(out, ",%" JSON_INTEGER_FORMAT ",%" JSON_INTEGER_FORMAT "\n",
            json_integer_value(json_object_get(e, "open_reservations")),
            json_integer_value(json_object_get(e, "reserved_nusd")));
}

static void costreport_write_csv(json_t *j, FILE *out)
{
    json_t *by = json_object_get(j, "by");
    size_t i;
    json_t *col;
    fputs("row", out);
    json_array_foreach(by, i, col)
    {
        fputc(',', out);
        costreport_csv_cell(out, json_string_value(col));
    }
    fputs(",records,calls,cost_nusd", out);
    for (int c = 0; c < COST_NCAT; c++)
        fprintf(out, ",usage_%s", cost_category_name((enum cost_category)c));
    fputs(",open_reservations,reserved_nusd\n", out);
    json_t *e;
    json_t *groups = json_object_get(j, "groups");
    json_array_foreach(groups, i, e)
    {
        costreport_csv_row(out, "group", by, e);
    }
    costreport_csv_row(out, "total", by, json_object_get(j, "total"));
}

/* A table cell: its text, control characters shown as '?' (a value is
 * the producer's bytes). */
static char *costreport_cell(const char *s)
{
    char *c = strdup(s ? s : "-");
    for (char *p = c; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return c;
}

static char *costreport_cell_u(json_int_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, v);
    return strdup(buf);
}

static char *costreport_cell_usd(json_int_t v)
{
    char buf[24];
    costreport_usd((uint64_t)v, buf);
    return strdup(buf);
}

static char *costreport_cell_open(json_t *e)
{
    json_int_t n = json_integer_value(json_object_get(e, "open_reservations"));
    if (!n)
        return strdup("");
    char usd[24], buf[96];
    costreport_usd((uint64_t)json_integer_value(json_object_get(e, "reserved_nusd")), usd);
    snprintf(buf, sizeof buf, "not yet settled, at most %s (%" JSON_INTEGER_FORMAT " call%s)", usd,
             n, n == 1 ? "" : "s");
    return strdup(buf);
}

static int costreport_write_table(json_t *j, FILE *out)
{
    json_t *by = json_object_get(j, "by"), *groups = json_object_get(j, "groups");
    size_t nkeys = json_array_size(by);
    size_t ncols = nkeys + 3 + COST_NCAT + 1;
    size_t nrows = json_array_size(groups) + 2; /* header, groups, total */
    char **cells = calloc(ncols * nrows, sizeof *cells);
    size_t *width = calloc(ncols, sizeof *width);
    int rc = -1;
    if (!cells || !width)
        goto out;
    size_t col = 0;
    for (size_t k = 0; k < nkeys; k++)
        cells[col++] = costreport_cell(json_string_value(json_array_get(by, k)));
    cells[col++] = strdup("records");
    cells[col++] = strdup("calls");
    cells[col++] = strdup("cost_usd");
    for (int c = 0; c < COST_NCAT; c++)
        cells[col++] = strdup(cost_category_name((enum cost_category)c));
    cells[col++] = strdup("open reservations");
    for (size_t r = 1; r < nrows; r++) {
        int total = r == nrows - 1;
        json_t *e = total ? json_object_get(j, "total") : json_array_get(groups, r - 1);
        json_t *key = json_object_get(e, "key");
        char **row = cells + r * ncols;
        col = 0;
        for (size_t k = 0; k < nkeys; k++)
            row[col++] = total ? strdup(k == 0 ? "TOTAL" : "")
                               : costreport_cell(json_string_value(json_object_get(
                                     key, json_string_value(json_array_get(by, k)))));
        row[col++] = costreport_cell_u(json_integer_value(json_object_get(e, "records")));
        row[col++] = costreport_cell_u(json_integer_value(json_object_get(e, "calls")));
        row[col++] = costreport_cell_usd(json_integer_value(json_object_get(e, "cost_nusd")));
        for (int c = 0; c < COST_NCAT; c++)
            row[col++] = costreport_cell_u(json_integer_value(json_object_get(
                json_object_get(e, "usage"), cost_category_name((enum cost_category)c))));
        row[col++] = costreport_cell_open(e);
    }
    for (size_t i = 0; i < ncols * nrows; i++) {
        if (!cells[i])
            goto out;
        size_t w = strlen(cells[i]);
        if (w > width[i % ncols])
            width[i % ncols] = w;
    }
    for (size_t r = 0; r < nrows; r++) {
        if (!nkeys && r == nrows - 1)
            fputs("TOTAL ", out);
        else if (!nkeys)
            fputs("      ", out);
        for (size_t c = 0; c < ncols; c++) {
            const char *s = cells[r * ncols + c];
            if (c == ncols - 1) /* no trailing padding */
                fprintf(out, "%s%s\n", *s ? "  " : "", s);
            else
                fprintf(out, c < nkeys ? "%s%-*s" : "%s%*s", c ? "  " : "", (int)width[c], s);
        }
    }
    rc = 0;
out:
    for (size_t i = 0; cells && i < ncols * nrows; i++)
        free(cells[i]);
    free(cells);
    free(width);
    return rc;
}

int costreport_write(const struct costreport *r, enum costreport_format format, FILE *out)
{
    json_t *j = costreport_json(r);
    if (!j)
        return -1;
    int rc = 0;
    switch (format) {
    case COSTREPORT_JSON:
        rc = costreport_write_json(j, out);
        break;
    case COSTREPORT_CSV:
        costreport_write_csv(j, out);
        break;
    case COSTREPORT_TABLE:
        rc = costreport_write_table(j, out);
        break;
    }
    json_decref(j);
    if (fflush(out) != 0 || ferror(out))
        rc = -1;
    return rc;
}

/*
 * redact: the secrets' REDACT_PIECE-byte pieces in a hash set, so that a
 * text is scanned once, one window per byte, whatever the number and the
 * length of the secrets. Pure: no I/O, no clock, no logging (log.c calls
 * redact(), so this module must never log). It must never grow a text and
 * never keep a secret anywhere but its own registry.
 */
#include "redact.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* An open-addressing set of 8-byte pieces read as integers. 0 marks an
 * empty slot: a secret is a C string, so no piece of it is all zero. */
static uint64_t *redact_set;
static size_t redact_cap; /* a power of two, or 0 */
static size_t redact_used;
/* the registered secrets, whole: for the short ones, and to skip doubles */
static char *redact_secrets[REDACT_MAX_SECRETS];
static size_t redact_nsecrets;
static int redact_any_short;

static uint64_t redact_load(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static size_t redact_slot(uint64_t piece, size_t cap)
{
    return (size_t)((piece * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static int redact_has(uint64_t piece)
{
    for (size_t i = redact_slot(piece, redact_cap);; i = (i + 1) & (redact_cap - 1)) {
        if (redact_set[i] == piece)
            return 1;
        if (redact_set[i] == 0)
            return 0;
    }
}

static void redact_put(uint64_t *set, size_t cap, uint64_t piece)
{
    size_t i = redact_slot(piece, cap);
    while (set[i] != 0 && set[i] != piece)
        i = (i + 1) & (cap - 1);
    if (set[i] == 0) {
        set[i] = piece;
        redact_used++;
    }
}

/* Room for `more` pieces with the load at most one half. */
static int redact_reserve(size_t more)
{
    size_t want = redact_cap ? redact_cap : 64;
    while (want / 2 < redact_used + more)
        want *= 2;
    if (want == redact_cap)
        return 0;
    uint64_t *set = calloc(want, sizeof *set);
    if (!set)
        return -1;
    redact_used = 0;
    for (size_t i = 0; i < redact_cap; i++)
        if (redact_set[i])
            redact_put(set, want, redact_set[i]);
    free(redact_set);
    redact_set = set;
    redact_cap = want;
    return 0;
}

int redact_register(const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n < REDACT_MIN_SECRET)
        return 0;
    if (n > REDACT_MAX_SECRET)
        return -1;
    for (size_t i = 0; i < redact_nsecrets; i++)
        if (strcmp(redact_secrets[i], secret) == 0)
            return 0;
    if (redact_nsecrets == REDACT_MAX_SECRETS)
        return -1;
    char *copy = strdup(secret);
    if (!copy)
        return -1;
    if (n >= REDACT_PIECE) {
        if (redact_reserve(n - REDACT_PIECE + 1) < 0) {
            free(copy);
            return -1;
        }
        for (size_t i = 0; i + REDACT_PIECE <= n; i++)
            redact_put(redact_set, redact_cap, redact_load(secret + i));
    } else {
        redact_any_short = 1;
    }
    redact_secrets[redact_nsecrets++] = copy;
    return 0;
}

size_t redact(char *text, size_t len)
{
    if (!text)
        return 0;
    if (redact_used && len >= REDACT_PIECE) {
        /* Byte i is masked when a window starting in [i-7, i] is a piece:
         * cover_end is one past the last byte such windows reach. A masked
         * run is written (as the mark) only once it ends, at or before
         * where it started: the windows still to read are never touched. */
        size_t w = 0, cover_end = 0;
        int in_run = 0;
        for (size_t i = 0; i < len; i++) {
            if (i + REDACT_PIECE <= len && redact_has(redact_load(text + i)))
                cover_end = i + REDACT_PIECE;
            if (i < cover_end) {
                in_run = 1;
                continue;
            }
            if (in_run) {
                memcpy(text + w, REDACT_MARK, REDACT_PIECE);
                w += REDACT_PIECE;
                in_run = 0;
            }
            text[w++] = text[i];
        }
        if (in_run) {
            memcpy(text + w, REDACT_MARK, REDACT_PIECE);
            w += REDACT_PIECE;
        }
        len = w;
    }
    for (size_t s = 0; redact_any_short && s < redact_nsecrets; s++) {
        size_t n = strlen(redact_secrets[s]);
        if (n >= REDACT_PIECE)
            continue;
        char *p = text, *end = text + len;
        while ((p = memmem(p, (size_t)(end - p), redact_secrets[s], n)) != NULL) {
            memset(p, '*', n);
            p += n;
        }
    }
    return len;
}

void redact_str(char *text)
{
    if (text)
        text[redact(text, strlen(text))] = '\0';
}

size_t redact_count(void)
{
    return redact_nsecrets;
}

void redact_reset(void)
{
    for (size_t i = 0; i < redact_nsecrets; i++)
        free(redact_secrets[i]);
    redact_nsecrets = 0;
    redact_any_short = 0;
    free(redact_set);
    redact_set = NULL;
    redact_cap = redact_used = 0;
}

/*
 * redact_keys: loads the test keys; finds their pieces by a method that
 * shares nothing with redact.c, so that a bug there cannot hide itself.
 */
#include "redact_keys.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static int piece_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 8);
}

int redact_keys_load(struct redact_keys *k)
{
    memset(k, 0, sizeof *k);
    size_t len;
    char *text = check_read_file(CHECK_ROOT "/tests/data/redact/keys.txt", &len);
    if (!text)
        return -1;
    size_t total = 0;
    char *save;
    for (char *line = strtok_r(text, "\n", &save); line && k->n < REDACT_KEYS_MAX;
         line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        if (line[0] == '#' || !tab || strlen(tab + 1) < 8)
            continue;
        *tab = '\0';
        k->shape[k->n] = strdup(line);
        k->key[k->n] = strdup(tab + 1);
        total += strlen(tab + 1) - 7;
        k->n++;
    }
    free(text);
    k->pieces = malloc(total ? total * 8 : 8);
    for (size_t i = 0; k->pieces && i < k->n; i++)
        for (size_t j = 0; j + 8 <= strlen(k->key[i]); j++)
            memcpy(k->pieces[k->npieces++], k->key[i] + j, 8);
    if (k->pieces)
        qsort(k->pieces, k->npieces, 8, piece_cmp);
    return k->n && k->pieces ? 0 : -1;
}

void redact_keys_release(struct redact_keys *k)
{
    for (size_t i = 0; i < k->n; i++) {
        free(k->shape[i]);
        free(k->key[i]);
    }
    free(k->pieces);
    memset(k, 0, sizeof *k);
}

int redact_keys_leak(const struct redact_keys *k, const char *text, size_t len)
{
    for (size_t i = 0; i + 8 <= len; i++)
        if (bsearch(text + i, k->pieces, k->npieces, 8, piece_cmp))
            return 1;
    return 0;
}

size_t redact_keys_expect(const struct redact_keys *k, const char *in, size_t len, char *out)
{
    /* hit[s]: the window at s is a piece; byte j is masked when a window
     * over it, starting in [j-7, j], is a hit */
    unsigned char *hit = calloc(len + 1, 1);
    for (size_t s = 0; hit && s + 8 <= len; s++)
        hit[s] = bsearch(in + s, k->pieces, k->npieces, 8, piece_cmp) != NULL;
    size_t o = 0, i = 0, last_hit_end = 0;
    int in_run = 0;
    for (i = 0; hit && i < len; i++) {
        if (hit[i])
            last_hit_end = i + 8;
        if (i < last_hit_end) {
            in_run = 1;
            continue;
        }
        if (in_run) {
            memcpy(out + o, "********", 8);
            o += 8;
            in_run = 0;
        }
        out[o++] = in[i];
    }
    if (in_run) {
        memcpy(out + o, "********", 8);
        o += 8;
    }
    free(hit);
    return o;
}

/*
 * text: pure string helpers; no allocation, no I/O.
 */
#include "text.h"

#include <string.h>

static size_t text_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return (size_t)-1;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *text_nearest(const char *name, const char *const *choices)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; choices[i]; i++) {
        size_t d = text_edit_distance(name, choices[i]);
        if (d < best_d) {
            best_d = d;
            best = choices[i];
        }
    }
    /* a plausible typo: at most 2 edits, and fewer than a third of the word */
    if (best && best_d <= 2 && best_d * 3 <= strlen(name) + 1)
        return best;
    return NULL;
}

int text_is_visible_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '!' || s[i] > '~')
            return 0;
    return 1;
}

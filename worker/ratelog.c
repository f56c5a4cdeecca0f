/*
 * ratelog: decides, never writes. The caller logs when told to, with the
 * count of what was suppressed, so no repeating failure floods stderr and
 * no occurrence goes uncounted.
 */
#include "ratelog.h"

#include <string.h>

int ratelog_allow(struct ratelog *r, uint64_t now_ms, uint64_t *suppressed)
{
    if (!r->seen || now_ms - r->last_ms >= r->interval_ms || now_ms < r->last_ms) {
        *suppressed = r->suppressed;
        r->seen = 1;
        r->last_ms = now_ms;
        r->suppressed = 0;
        return 1;
    }
    r->suppressed++;
    *suppressed = 0;
    return 0;
}

int ratelog_allow_key(struct ratelog_set *s, const char *key, uint64_t now_ms, uint64_t *suppressed)
{
    size_t klen = strlen(key);
    if (klen >= sizeof s->slots[0].key)
        klen = sizeof s->slots[0].key - 1;
    for (size_t i = 0; i < s->nkeys; i++)
        if (strncmp(s->slots[i].key, key, klen) == 0 && s->slots[i].key[klen] == '\0')
            return ratelog_allow(&s->slots[i].r, now_ms, suppressed);
    struct ratelog *r = &s->overflow;
    if (s->nkeys < RATELOG_MAX_KEYS) {
        memcpy(s->slots[s->nkeys].key, key, klen);
        s->slots[s->nkeys].key[klen] = '\0';
        r = &s->slots[s->nkeys++].r;
        *r = (struct ratelog){0};
    }
    r->interval_ms = s->interval_ms;
    return ratelog_allow(r, now_ms, suppressed);
}

/*
 * redact: the table in tests/data/redact/cases.txt, the registry's bounds,
 * and a sweep: every key shape of tests/data/redact/keys.txt, whole and
 * cut at every position (each prefix and each suffix), placed at every
 * position across byte 200 of a provider-like message. Each output must
 * equal a slow reference written independently (redact_keys.c: a sorted
 * list of every key's 8-byte pieces, searched with bsearch, byte by byte),
 * the fragment (when 8 bytes or more) must be gone, and no piece may be
 * found in the output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "redact.h"
#include "redact_keys.h"

/* Decodes \xHH, \\ and \t in place; returns the length. */
static size_t unescape(char *s)
{
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1] == 'x' && s[i + 2] && s[i + 3]) {
            char hex[3] = {s[i + 2], s[i + 3], 0};
            s[o++] = (char)strtoul(hex, NULL, 16);
            i += 3;
        } else if (s[i] == '\\' && s[i + 1] == 't') {
            s[o++] = '\t';
            i++;
        } else if (s[i] == '\\' && s[i + 1] == '\\') {
            s[o++] = '\\';
            i++;
        } else {
            s[o++] = s[i];
        }
    }
    s[o] = '\0';
    return o;
}

static int run_table(void)
{
    size_t len;
    char *text = check_read_file(CHECK_ROOT "/tests/data/redact/cases.txt", &len);
    if (!ok(text != NULL, "read tests/data/redact/cases.txt"))
        return 0;
    redact_reset();
    int lineno = 0, cases = 0;
    char *save;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#')
            continue;
        if (strncmp(line, "key ", 4) == 0) {
            ok(redact_register(line + 4) == 0, "cases.txt:%d: registers %s", lineno, line + 4);
            continue;
        }
        if (strcmp(line, "reset") == 0) {
            redact_reset();
            continue;
        }
        char *arrow = strstr(line, " => ");
        if (!arrow) {
            ok(0, "cases.txt:%d: no \" => \"", lineno);
            continue;
        }
        *arrow = '\0';
        char *want = arrow + 4;
        size_t n = unescape(line), wn = unescape(want);
        char got[512];
        memcpy(got, line, n);
        size_t gn = redact(got, n);
        ok(gn == wn && memcmp(got, want, wn) == 0, "cases.txt:%d: got [%.*s] want [%s]", lineno,
           (int)gn, got, want);
        cases++;
    }
    /* lines are cut at "\n": a line of only " => " is read as an empty case */
    redact_reset();
    free(text);
    return cases;
}

static void test_registry(void)
{
    redact_reset();
    ok(redact_register(NULL) == 0 && redact_register("") == 0 && redact_register("abc") == 0 &&
           redact_count() == 0,
       "NULL, empty and 3-byte values are not secrets");
    ok(redact_register("abcd") == 0 && redact_register("abcd") == 0 && redact_count() == 1,
       "a secret registered twice counts once");
    char big[REDACT_MAX_SECRET + 2];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ok(redact_register(big) == -1 && redact_count() == 1, "a secret past the cap is refused");
    big[REDACT_MAX_SECRET] = '\0';
    ok(redact_register(big) == 0 && redact_count() == 2, "a secret at the cap is registered");
    redact_reset();
    int refused = 0;
    for (int i = 0; i < REDACT_MAX_SECRETS + 1; i++) {
        /* distinct keys that share no 8-byte piece */
        char key[32];
        unsigned long long x = (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ull;
        snprintf(key, sizeof key, "%016llx", x ^ (x >> 29));
        refused += redact_register(key) < 0;
    }
    ok(refused == 1 && redact_count() == REDACT_MAX_SECRETS,
       "past %d secrets, registration is refused (%d refused)", REDACT_MAX_SECRETS, refused);
    char text[64], refused_key[32];
    unsigned long long x63 = 64ull * 0x9E3779B97F4A7C15ull, x64 = 65ull * 0x9E3779B97F4A7C15ull;
    snprintf(refused_key, sizeof refused_key, "%016llx", x64 ^ (x64 >> 29));
    snprintf(text, sizeof text, "%016llx and %s", x63 ^ (x63 >> 29), refused_key);
    redact_str(text);
    ok(strncmp(text, "******** and ", 13) == 0 && strcmp(text + 13, refused_key) == 0,
       "every registered secret is masked, the refused one is not: %s", text);
    ok(redact(NULL, 0) == 0, "NULL text");
    redact_reset();
    char plain[32];
    snprintf(plain, sizeof plain, "%s", refused_key);
    redact_str(plain);
    ok(strcmp(plain, refused_key) == 0 && redact_count() == 0, "after reset nothing is masked");

    /* a megabyte of keys back to back is one run: one mark */
    ok(redact_register("gsk_HFwUbbYrEqmSM9wCZ7Uw") == 0, "register");
    size_t klen = strlen("gsk_HFwUbbYrEqmSM9wCZ7Uw"), n = 0, cap = 1 << 20;
    char *mb = malloc(cap);
    while (mb && n + klen <= cap) {
        memcpy(mb + n, "gsk_HFwUbbYrEqmSM9wCZ7Uw", klen);
        n += klen;
    }
    size_t out = mb ? redact(mb, n) : 0;
    ok(mb && out == 8 && memcmp(mb, REDACT_MARK, 8) == 0, "1 MiB of keys is one mark (%zu)", out);
    free(mb);
    redact_reset();
}

/* A provider-like message: long enough to reach well past byte 200. */
static const char filler[] =
    "Incorrect API key provided. You can find your API key at "
    "https://platform.example.com/account/api-keys. Lorem ipsum dolor sit amet, "
    "consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna "
    "aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris.";
static const char tail[] = "; please check the key and try again (request req_0123).";

#define BOUND 200

static void test_sweep(const struct redact_keys *keys)
{
    redact_reset();
    for (size_t k = 0; k < keys->n; k++)
        ok(redact_register(keys->key[k]) == 0, "register %s", keys->shape[k]);
    size_t messages = 0, wrong = 0, leaks = 0;
    char msg[1024], want[1024];
    for (size_t k = 0; k < keys->n; k++) {
        const char *key = keys->key[k];
        size_t klen = strlen(key);
        /* fragment f: 0 = whole, 1..klen-1 = prefix of f bytes,
         * klen..2*klen-2 = suffix from byte f - klen + 1 */
        for (size_t f = 0; f + 1 < 2 * klen; f++) {
            const char *frag = key;
            size_t flen = klen;
            if (f >= 1 && f < klen)
                flen = f;
            else if (f >= klen) {
                frag = key + (f - klen + 1);
                flen = klen - (f - klen + 1);
            }
            /* every position where the fragment covers byte BOUND */
            for (size_t pos = BOUND + 1 > flen ? BOUND + 1 - flen : 0; pos <= BOUND; pos++) {
                size_t n = 0, wn = 0;
                memcpy(msg, filler, pos);
                n = pos;
                memcpy(msg + n, frag, flen);
                n += flen;
                memcpy(msg + n, tail, sizeof tail - 1);
                n += sizeof tail - 1;
                /* the slow reference; and it must mask the fragment at least
                 * (a neighbour may complete a longer piece of the key) */
                wn = redact_keys_expect(keys, msg, n, want);
                if (flen >= REDACT_PIECE &&
                    (wn > n - flen + REDACT_PIECE ||
                     memcmp(want + wn - (sizeof tail - 1), tail, sizeof tail - 1) != 0)) {
                    if (wrong++ < 5)
                        ok(0, "%s fragment %zu at %zu: the reference keeps it: [%.*s]",
                           keys->shape[k], f, pos, (int)wn, want);
                }
                size_t got = redact(msg, n);
                messages++;
                if (got != wn || memcmp(msg, want, wn) != 0) {
                    if (wrong++ < 5)
                        ok(0, "%s fragment %zu at %zu:\n  got  [%.*s]\n  want [%.*s]",
                           keys->shape[k], f, pos, (int)got, msg, (int)wn, want);
                }
                if (redact_keys_leak(keys, msg, got) && leaks++ < 5)
                    ok(0, "%s fragment %zu at %zu: a piece survives: [%.*s]", keys->shape[k], f,
                       pos, (int)got, msg);
            }
        }
    }
    ok(wrong == 0 && leaks == 0 && messages > 20000,
       "every key shape, whole and cut at every position, at every position across byte %d: "
       "masked exactly, no piece left (%zu messages, %zu wrong, %zu leaks)",
       BOUND, messages, wrong, leaks);
    redact_reset();
}

void test_redact(void)
{
    int cases = run_table();
    ok(cases >= 30, "redact: %d table cases", cases);
    test_registry();
    struct redact_keys keys;
    if (!ok(redact_keys_load(&keys) == 0 && keys.n >= 8, "read tests/data/redact/keys.txt (%zu)",
            keys.n))
        return;
    /* the independent check must itself see a key */
    ok(redact_keys_leak(&keys, keys.key[0], strlen(keys.key[0])) &&
           !redact_keys_leak(&keys, filler, sizeof filler - 1),
       "the independent check finds a key, and nothing in the filler");
    test_sweep(&keys);
    redact_keys_release(&keys);
}

/*
 * redact_keys: the test keys of tests/data/redact/keys.txt, and a check
 * for a leaked piece written independently of redact.c (a sorted list of
 * every 8-byte piece, searched with bsearch), shared by the redact and
 * providers suites.
 */
#ifndef SWITCHYARD_TEST_REDACT_KEYS_H
#define SWITCHYARD_TEST_REDACT_KEYS_H

#include <stddef.h>

#define REDACT_KEYS_MAX 16

struct redact_keys {
    size_t n;
    char *shape[REDACT_KEYS_MAX];
    char *key[REDACT_KEYS_MAX];
    char (*pieces)[8]; /* sorted */
    size_t npieces;
};

/* 0, or -1 when the file cannot be read or holds no key. */
int redact_keys_load(struct redact_keys *k);
void redact_keys_release(struct redact_keys *k);
/* 1 when text[0..len) holds any 8-byte piece of any key. */
int redact_keys_leak(const struct redact_keys *k, const char *text, size_t len);

/* What redact() must make of in[0..len) with these keys registered,
 * computed the slow way: a byte is masked when an 8-byte window over it is
 * a piece; each maximal masked run becomes "********". Writes out (room
 * for len bytes) and returns its length. */
size_t redact_keys_expect(const struct redact_keys *k, const char *in, size_t len, char *out);

#endif

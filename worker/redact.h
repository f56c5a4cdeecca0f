/*
 * redact: a process-wide registry of secrets (the providers' API keys) and
 * the one function that masks them in any text about to leave the process
 * (a result, a log line, the /metrics page).
 *
 * What is masked: every byte that belongs to a run of at least
 * REDACT_PIECE bytes equal to some piece of a registered secret. A key cut
 * anywhere (its start, its end, a middle part) is masked as long as the
 * part shown is REDACT_PIECE bytes or more; shorter parts carry too little
 * of a key to matter. A secret shorter than REDACT_PIECE bytes is masked
 * where it appears whole.
 *
 * Threads: register every secret before any other thread starts; from then
 * on redact() only reads the registry and may run on any thread.
 */
#ifndef SWITCHYARD_REDACT_H
#define SWITCHYARD_REDACT_H

#include <stddef.h>

/* The shortest piece of a secret that is masked. */
#define REDACT_PIECE 8
/* Secrets shorter than this are not registered: masking every "abc" would
 * ruin every text and hide nothing worth hiding. */
#define REDACT_MIN_SECRET 4
/* Caps on what the registry holds (its memory grows with the secrets). */
#define REDACT_MAX_SECRET 4096
#define REDACT_MAX_SECRETS 64
/* What replaces a masked run (a run is at least REDACT_PIECE bytes, so the
 * text never grows). */
#define REDACT_MARK "********"

/* Copies secret into the registry. 0 when registered (or already there, or
 * NULL or shorter than REDACT_MIN_SECRET: nothing to mask); -1 when longer
 * than REDACT_MAX_SECRET, past REDACT_MAX_SECRETS, or out of memory: the
 * caller must not start with a secret it cannot mask. Not thread-safe. */
int redact_register(const char *secret);

/* Masks, in place, every piece of a registered secret in text[0..len):
 * each maximal masked run of REDACT_PIECE bytes or more becomes
 * REDACT_MARK, each whole short secret as many '*'. Returns the new
 * length, never more than len; the text is not NUL-terminated anew (a
 * caller that needs it writes text[new_len] = '\0'). Linear in len.
 * NULL text: returns 0. */
size_t redact(char *text, size_t len);

/* Redacts a NUL-terminated string in place (it stays NUL-terminated). */
void redact_str(char *text);

/* How many secrets are registered. */
size_t redact_count(void);

/* Forgets every secret (tests). Not thread-safe. */
void redact_reset(void);

#endif

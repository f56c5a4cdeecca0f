/*
 * adapter: helpers shared by the provider adapters (not part of the
 * provider interface itself), and the adapters' ops tables.
 */
#ifndef SWITCHYARD_ADAPTER_H
#define SWITCHYARD_ADAPTER_H

#include <jansson.h>

#include "providers/provider.h"

extern const struct provider_ops openai_ops;
extern const struct provider_ops anthropic_ops;
extern const struct provider_ops gemini_ops;
extern const struct provider_ops bedrock_ops;
extern const struct provider_ops azure_ops;

/* Appends "name: value". -1 when full or out of memory. */
int adapter_header(struct provider_http *out, const char *name, const char *value);
/* out->url = base (trailing slashes dropped) + path. */
int adapter_url(struct provider_http *out, const char *base, const char *path);
/* Serializes and takes body (always). */
int adapter_body(struct provider_http *out, json_t *body);
/* A token count: absent or null = 0; -1 when not a non-negative integer
 * within COST_MAX_TOKENS. */
int adapter_count(const json_t *obj, const char *key, uint64_t *out);
int adapter_text(struct provider_reply *out, const char *text, size_t len);
/* Classifies a non-2xx status: ERR_TRANSIENT for 408/409/425/429/5xx,
 * ERR_UPSTREAM for the rest; code NULL = derived from the status.
 * message[0..len) is the provider's whole message (NULL: none; it may hold
 * NUL bytes): pass it uncut, since every piece of a registered secret is
 * masked (redact.h) before the quote in e->msg is bounded. */
int adapter_status_error(long status, const char *code, const char *message, size_t len,
                         struct err *e);

/* gemini: the wait a Gemini error body asks for, in ms (rounded up): the
 * retryDelay of its google.rpc.RetryInfo detail ("7s", "1.5s"), as a 429
 * RESOURCE_EXHAUSTED carries it; -1 when the body has none (or is not
 * Gemini's error JSON). Pure; body need not be NUL-terminated. */
int64_t gemini_retry_delay_ms(const char *body, size_t len);

#endif

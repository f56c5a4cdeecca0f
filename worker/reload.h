/*
 * reload: loads a policy file on a thread of its own and hands the result
 * back on the event loop, so that a large or slow policy file never stalls
 * the loop (health checks, Kafka polling and provider calls keep turning).
 *
 * One load at a time: a request made while one runs is remembered (the
 * latest path) and started when the running one has been delivered; any
 * number of such requests makes one more load, not one each.
 */
#ifndef SWITCHYARD_RELOAD_H
#define SWITCHYARD_RELOAD_H

#include "config.h"
#include "loop.h"
#include "policy.h"
#include "ydoc.h"

struct reload;

/* Called on the loop's thread when a load ends. Exactly one of:
 *   p != NULL: the new policy, a new reference now the callee's
 *              (policy_release it when done); errs->count == 0;
 *   p == NULL: the load failed; errs holds every located error line.
 * errs is borrowed for the call: reload releases it afterwards.
 * The callback may call reload_start, never reload_free. */
typedef void (*reload_done_cb)(void *data, struct policy *p, struct ydoc_errors *errs);

/* cfg is read by the loading thread (provider names): it must stay
 * unchanged and alive until reload_free. Returns NULL when out of memory or
 * when the wake-up descriptor cannot be made or watched. */
struct reload *reload_new(struct loop *loop, const struct config *cfg, reload_done_cb done,
                          void *data);

/* Starts loading `path` (copied). Returns 0 when a load started, 1 when one
 * is running and this request was queued behind it (replacing any request
 * queued before), -1 when the thread cannot be started (errno set; nothing
 * is delivered for this request). */
int reload_start(struct reload *r, const char *path);

/* 1 while a load runs or is queued. */
int reload_busy(const struct reload *r);

/* Stops watching, waits for a running load to end (a load is bounded: the
 * file is at most 4 MiB) and drops its result undelivered, then frees. */
void reload_free(struct reload *r);

#endif

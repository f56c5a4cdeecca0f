/*
 * worker: the running process. Owns the loop, the Kafka clients, the HTTP
 * engine, dispatch and the current policy; handles signals (SIGTERM/SIGINT:
 * drain and exit; a second one: exit at once; SIGHUP: reload the policy).
 */
#ifndef SWITCHYARD_WORKER_H
#define SWITCHYARD_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "policy.h"

#define SWITCHYARD_VERSION "0.1.0"

/* Runs the worker until it is told to stop. Returns the exit status:
 * 0 after a clean stop, 1 when it could not start or had to stop because
 * an output could not be delivered in any form. */
int worker_run(const struct config *cfg, struct policy *policy, const char *policy_path,
               uint64_t exit_when_idle_ms);

#endif

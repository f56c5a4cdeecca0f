/*
 * preflight: the checks that need the environment or librdkafka, run by
 * --check-config and again before the worker starts, through this one
 * function, so that the two cannot disagree: the API key variable of every
 * provider the policy uses is set (and holds a usable key); every "${ENV}"
 * of the kafka section is set and librdkafka accepts every kafka value in
 * the producer's and the consumer's conf objects; budget.default_usd
 * affords some route for the smallest request. Connects to nothing.
 */
#ifndef SWITCHYARD_PREFLIGHT_H
#define SWITCHYARD_PREFLIGHT_H

#include <stddef.h>

#include "config.h"
#include "policy.h"

struct preflight_problem {
    const char *event; /* static: missing_api_key, bad_api_key, kafka_config,
                          budget_unaffordable (the start logs it under this) */
    char *line;        /* "file:line:column: what is wrong", owned */
};

/* At most one problem per provider, per kafka property, per switchyard
 * setting, plus one for the budget: bounded by the two files. */
struct preflight_report {
    struct preflight_problem *items;
    size_t count, cap;
};

/* Runs every check on cfg and policy, loaded from config_path and
 * policy_path (read again only to find the line and column of what is
 * wrong; a file changed in between is located at 1:1). Appends each problem
 * to *out (the kafka section, then the API keys, then the budget) and
 * returns how many. Never prints or stores a key or a value read from the
 * environment, only the variables' names. */
size_t preflight_run(const struct config *cfg, const struct policy *policy, const char *config_path,
                     const char *policy_path, struct preflight_report *out);

/* Frees the lines; the struct itself is the caller's. */
void preflight_report_release(struct preflight_report *r);

/* What is wrong with a credential's value, as the end of a sentence ("is
 * not set or empty", "holds a control character or space", "is longer
 * than ..."), or NULL when nothing is. Never quotes the value. Pure. */
const char *preflight_secret_problem(const char *value);

/* The AWS credentials a SigV4 provider signs with, in the order
 * struct dispatch_aws_credentials holds them (key id, secret, session
 * token: the last may be unset), NULL-terminated. */
extern const char *const preflight_aws_vars[];

#endif

/*
 * config: worker.yaml, bound and validated. Connects to nothing: kafka
 * properties are checked against librdkafka's own table, offline.
 */
#ifndef SWITCHYARD_CONFIG_H
#define SWITCHYARD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ydoc.h"

struct text_index;

enum provider_type {
    PROVIDER_OPENAI,
    PROVIDER_ANTHROPIC,
    PROVIDER_GEMINI,
    PROVIDER_BEDROCK,
    PROVIDER_AZURE,
    PROVIDER_NTYPES
};

/* How a provider's calls are authenticated (worker.yaml `auth`). */
enum config_auth {
    CONFIG_AUTH_DEFAULT, /* the type's own: OpenAI and Anthropic their key header,
                            Gemini x-goog-api-key, Azure api-key, Bedrock sigv4 */
    CONFIG_AUTH_API_KEY, /* the key in the type's key header */
    CONFIG_AUTH_BEARER,  /* Authorization: Bearer (Azure Entra ID, Bedrock API keys) */
    CONFIG_AUTH_SIGV4,   /* AWS Signature Version 4 (Bedrock) */
};

struct config_kafka_property {
    char *name;
    char *value; /* may be "${ENV_NAME}", expanded by config_kafka_value */
};

/* Rate limits from configuration; 0 = none (then only what is learned
 * from the provider holds). */
struct config_rate_limits {
    int64_t requests_per_minute;
    int64_t tokens_per_minute; /* input + output */
    int64_t max_concurrent;    /* calls in flight */
};

/* A provider lane's circuit breaker (worker/breaker.h says what each means). */
struct config_circuit {
    int64_t failures;        /* consecutive failures that open it (5) */
    int64_t failure_percent; /* or this share of the window's calls (50) */
    int64_t min_calls;       /* once the window holds this many (20) */
    int64_t window_ms;       /* (10000) */
    int64_t open_ms;         /* before probes are let through (5000) */
    int64_t probes;          /* calls at once while half open (1) */
};

struct config_provider {
    char *name;
    enum provider_type type;
    char *base_url;
    char *api_key_env;      /* the NAME of the environment variable, never the key */
    char *api_version;      /* anthropic-version header; Azure's api-version (NULL: the
                               v1 path); NULL = adapter default */
    enum config_auth auth;  /* never DEFAULT once loaded: the type's own is filled in */
    char *region;           /* Bedrock: the AWS region (also signs); NULL for others */
    char *max_tokens_field; /* OpenAI: "max_tokens" or "max_completion_tokens" (o-series) */
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    int64_t max_connections;
    /* the whole provider, all its models together (a self-hosted server,
     * an account-wide limit); max_concurrent is max_connections */
    struct config_rate_limits limits;
    /* each model of the provider, unless its policy entry says otherwise */
    struct config_rate_limits model_limits;
    struct config_circuit circuit;
};

struct config_limits {
    int64_t max_in_flight;
    int64_t max_in_flight_per_partition;
    int64_t max_message_bytes;
    int64_t max_attempts; /* provider calls per request, all candidates */
    int64_t retries_per_candidate;
    int64_t backoff_initial_ms;
    int64_t backoff_max_ms;
    int64_t commit_interval_ms;
    int64_t rebalance_grace_ms;
    int64_t shutdown_grace_ms;
    int64_t flush_timeout_ms;       /* bound on the producer flush at shutdown */
    int64_t stalled_partition_ms;   /* a partition holding work whose commit has not moved
                                       for this long is reported as stalled */
    int64_t startup_timeout_ms;     /* bound on the start-up checks (cluster, topics) */
    int64_t queue_per_model;        /* requests waiting for one model's rate limit; when
                                       full, the partitions feeding it are paused (256) */
    int64_t rate_limit_max_wait_ms; /* one request waits at most this long in all for
                                       rate limits, then falls back (600000) */
};

/* reply: the Kafka ecosystem's request-reply conventions (README,
 * "Request-reply"). */
#define CONFIG_COPY_HEADERS_MAX 16  /* names in copy_headers */
#define CONFIG_HEADER_NAME_MAX 255  /* bytes of one header name */
#define CONFIG_REPLY_TOPICS_MAX 256 /* topics in reply_topics */
struct config_reply {
    /* headers copied from a request onto its result and cost records;
     * default traceparent, tracestate, kafka_correlationId */
    char **copy_headers;
    size_t ncopy_headers;
    /* topics a request's kafka_replyTopic may name; default none */
    char **topics;
    size_t ntopics;
};

struct config {
    char *worker_id; /* NULL: hostname-pid at start */
    struct config_kafka_property *kafka;
    size_t nkafka;
    char *topic_requests, *topic_results, *topic_costs, *topic_dead_letter;
    int topics_create_missing; /* 1: missing topics may be created (broker auto-create) */
    struct config_provider *providers;
    size_t nproviders;
    struct config_limits limits;
    char *metrics_listen; /* "host:port", NULL = no metrics endpoint */
    struct config_reply reply;
    int metrics_tenant_label;    /* metrics.tenant_label: per-tenant series (0) */
    int64_t metrics_max_tenants; /* metrics.max_tenants: tenants tracked, the rest
                                    counted as "other" (100) */
    int log_requests;            /* logging.requests: per-request debug lines (0) */
    int log_bodies;              /* logging.bodies: prompts and replies in them (0) */
    /* costs.reserve: before each provider call, a "reserved" cost record
     * (the call's worst case) is published and acknowledged, so a call
     * billed and then lost to a crash is never invisible (1). On by
     * default: a call takes seconds and the acknowledgement milliseconds,
     * and finance must be able to account for every billed call. */
    int costs_reserve;
    struct text_index *provider_index; /* name -> index in providers (first of a name) */
};

/* Loads and validates `path`. Returns NULL when there is any error, with
 * every error appended to *errs (one "file:line:col: ..." line each).
 * New object: free with config_free. */
struct config *config_load(const char *path, struct ydoc_errors *errs);
void config_free(struct config *cfg);

/* Borrowed: the provider named `name`, or NULL. */
const struct config_provider *config_provider_find(const struct config *cfg, const char *name);

const char *provider_type_name(enum provider_type t);

/* Borrowed: the allow-list's own copy of the topic named by the len bytes
 * at name (not NUL-terminated, may hold anything), or NULL when it is not
 * on reply.topics. The copy lives as long as cfg. Pure. */
const char *config_reply_topic_find(const struct config *cfg, const void *name, size_t len);

/* 1 when `name` (a variable name, or anything about to be printed as one)
 * has the shape of an API key or token: a provider's key prefix (gsk_, hf_,
 * sk_, xai_, ghp_, github_pat_, glpat, r8_, pplx, AIza, ...) followed by 16
 * or more random-looking characters, an AWS access key id (AKIA/ASIA + 16),
 * or any run of 20 or more characters between underscores that mixes
 * both cases and digits, or is hexadecimal. Such a name must never be printed:
 * say "the variable named in api_key_env" instead. Pure. */
int config_name_may_be_secret(const char *name);

/* worker_id from worker.yaml or SWITCHYARD_WORKER_ID: 1 to 127 bytes of
 * printable ASCII, no space or control character. Pure. */
#define CONFIG_WORKER_ID_MAX 127
int config_worker_id_ok(const char *id);

#endif

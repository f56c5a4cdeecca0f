/*
 * config: worker.yaml -> struct config. Binds through key tables, reports
 * every error with its position, and refuses secrets written into the file:
 * an API key is only ever read from the environment variable the file
 * names. Never print a value that could be a secret.
 */
#include "config.h"

#include "text.h"

#include <ctype.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const provider_type_names[PROVIDER_NTYPES + 1] = {
    "openai", "anthropic", "gemini", "bedrock", "azure", NULL};

const char *provider_type_name(enum provider_type t)
{
    return (unsigned)t < PROVIDER_NTYPES ? provider_type_names[t] : "unknown";
}

struct config_int_key {
    const char *name;
    size_t offset; /* of the int64_t in its struct */
    int64_t min, max, dflt;
};

#define LIMIT(n, lo, hi, d)                                                                        \
    {                                                                                              \
#n, offsetof(struct config_limits, n), lo, hi, d                                           \
    }
static const struct config_int_key limit_keys[] = {
    LIMIT(max_in_flight, 1, 1000000, 10000),
    LIMIT(max_in_flight_per_partition, 1, 1000000, 2000),
    LIMIT(max_message_bytes, 1024, 16 << 20, 1 << 20),
    LIMIT(max_attempts, 1, 32, 6),
    LIMIT(retries_per_candidate, 0, 16, 2),
    LIMIT(backoff_initial_ms, 1, 600000, 250),
    LIMIT(backoff_max_ms, 1, 3600000, 20000),
    LIMIT(commit_interval_ms, 100, 60000, 2000),
    LIMIT(rebalance_grace_ms, 0, 600000, 10000),
    LIMIT(shutdown_grace_ms, 0, 3600000, 30000),
    LIMIT(flush_timeout_ms, 0, 600000, 10000),
    LIMIT(stalled_partition_ms, 1000, 86400000, 120000),
    LIMIT(startup_timeout_ms, 1000, 600000, 30000),
    LIMIT(queue_per_model, 1, 1000000, 256),
    LIMIT(rate_limit_max_wait_ms, 1000, 86400000, 600000),
    {NULL, 0, 0, 0, 0},
};

#define PROV(n, lo, hi, d)                                                                         \
    {                                                                                              \
#n, offsetof(struct config_provider, n), lo, hi, d                                         \
    }
static const struct config_int_key provider_int_keys[] = {
    PROV(timeout_ms, 100, 3600000, 120000),
    PROV(connect_timeout_ms, 10, 600000, 10000),
    PROV(max_connections, 1, 100000, 256),
    {NULL, 0, 0, 0, 0},
};

/* Rate limits: 0 is none; 10^12 a minute is more than any provider sells. */
#define CONFIG_RATE_MAX 1000000000000LL
#define RATE(n)                                                                                    \
    {                                                                                              \
#n, offsetof(struct config_rate_limits, n), 0, CONFIG_RATE_MAX, 0                          \
    }
static const struct config_int_key model_limit_keys[] = {
    RATE(requests_per_minute),
    RATE(tokens_per_minute),
    RATE(max_concurrent),
    {NULL, 0, 0, 0, 0},
};
/* A whole provider's concurrency is max_connections: one setting, not two. */
static const struct config_int_key provider_limit_keys[] = {
    RATE(requests_per_minute),
    RATE(tokens_per_minute),
    {NULL, 0, 0, 0, 0},
};

#define CIRCUIT(n, lo, hi, d)                                                                      \
    {                                                                                              \
#n, offsetof(struct config_circuit, n), lo, hi, d                                          \
    }
static const struct config_int_key circuit_keys[] = {
    CIRCUIT(failures, 1, 1000, 5),
    CIRCUIT(failure_percent, 1, 100, 50),
    CIRCUIT(min_calls, 1, 100000, 20),
    CIRCUIT(window_ms, 1000, 3600000, 10000),
    CIRCUIT(open_ms, 100, 3600000, 5000),
    CIRCUIT(probes, 1, 1000, 1),
    {NULL, 0, 0, 0, 0},
};

/* Properties switchyard sets itself: at-least-once depends on them. */
static const char *const kafka_reserved[] = {"enable.auto.commit",
                                             "enable.auto.offset.store",
                                             "enable.idempotence",
                                             "acks",
                                             "request.required.acks",
                                             "enable.partition.eof",
                                             NULL};

/* Properties that hold secrets: only "${ENV_NAME}" is accepted. */
static const char *const kafka_secret[] = {"sasl.password",
                                           "ssl.key.password",
                                           "ssl.keystore.password",
                                           "ssl.key.pem",
                                           "sasl.oauthbearer.client.secret",
                                           NULL};

/* Keys that would put a secret in the file; refused with a pointer to the
 * environment. */
static const char *const provider_secret_keys[] = {"api_key", "key",      "apikey", "token",
                                                   "secret",  "password", NULL};

static int in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

static int config_env_name_ok(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

/* "${NAME}" -> 1, with NAME valid (checked in place: no length limit) */
static int config_is_env_ref(const char *v)
{
    size_t n = strlen(v);
    if (n < 4 || v[0] != '$' || v[1] != '{' || v[n - 1] != '}')
        return 0;
    if (!(isalpha((unsigned char)v[2]) || v[2] == '_'))
        return 0;
    for (size_t i = 2; i < n - 1; i++)
        if (!(isalnum((unsigned char)v[i]) || v[i] == '_'))
            return 0;
    return 1;
}

/* Looks random: letters and digits mixed, or both cases. Names people give
 * variables are words (OPENAI_API_KEY, hf_token); keys are not. */
static int config_looks_random(const char *s, size_t n)
{
    int lower = 0, upper = 0, digit = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        lower |= islower(c) != 0;
        upper |= isupper(c) != 0;
        digit |= isdigit(c) != 0;
    }
    return (digit && (lower || upper)) || (lower && upper);
}

/* Stricter, for a run with no known prefix: both cases and a digit, or
 * hexadecimal with at least four of each kind of digit. */
static int config_looks_random_word(const char *s, size_t n)
{
    int lower = 0, upper = 0, digits = 0, hex_letters = 0, hex = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        lower |= islower(c) != 0;
        upper |= isupper(c) != 0;
        digits += isdigit(c) != 0;
        hex_letters += (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        hex &= isxdigit(c) != 0;
    }
    return (lower && upper && digits) || (hex && digits >= 4 && hex_letters >= 4);
}

int config_name_may_be_secret(const char *name)
{
    /* prefixes providers put on their keys; the key goes on with at least
     * 16 random-looking characters */
    static const char *const prefixes[] = {
        "gsk_",  "hf_",     "sk_",     "sk-",     "xai_", "xai-", "ghp_", "gho_",        "ghu_",
        "ghs_",  "ghr_",    "glpat",   "r8_",     "pplx", "AIza", "npm_", "github_pat_", "xoxb-",
        "xoxp-", "rk_live", "pk_live", "dop_v1_", "SG.",  "key-", NULL};
    size_t n = strlen(name);
    for (size_t i = 0; prefixes[i]; i++) {
        size_t p = strlen(prefixes[i]);
        if (n >= p + 16 && strncmp(name, prefixes[i], p) == 0 &&
            config_looks_random(name + p, n - p))
            return 1;
    }
    /* AWS access key ids: AKIA (long-term) or ASIA (temporary), then 16 of A-Z 0-9 */
    if (n >= 20 && (strncmp(name, "AKIA", 4) == 0 || strncmp(name, "ASIA", 4) == 0)) {
        size_t i = 4;
        while (i < n && (isupper((unsigned char)name[i]) || isdigit((unsigned char)name[i])))
            i++;
        if (i >= 20)
            return 1;
    }
    /* any other run of 20 or more characters between underscores that
     * mixes both cases and digits, or is hexadecimal, the way keys and
     * tokens are and words are not */
    for (size_t start = 0; start < n;) {
        size_t end = start;
        while (end < n && name[end] != '_')
            end++;
        if (end - start >= 20 && config_looks_random_word(name + start, end - start))
            return 1;
        start = end + 1;
    }
    return 0;
}

int config_worker_id_ok(const char *id)
{
    size_t n = strlen(id);
    return n >= 1 && n <= CONFIG_WORKER_ID_MAX && text_is_visible_ascii(id, n);
}

static int config_topic_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void config_bind_ints(struct ydoc *doc, const struct ydoc_node *map,
                             const struct config_int_key *keys, void *base)
{
    for (size_t i = 0; keys[i].name; i++) {
        int64_t *slot = (int64_t *)((char *)base + keys[i].offset);
        *slot = keys[i].dflt;
        const struct ydoc_node *v = ydoc_get(map, keys[i].name);
        if (v)
            ydoc_int(doc, v, keys[i].name, keys[i].min, keys[i].max, slot);
    }
}

static void config_key_names(const struct config_int_key *keys, const char **out, size_t *n)
{
    for (size_t i = 0; keys[i].name; i++)
        out[(*n)++] = keys[i].name;
}

static void config_bind_kafka(struct ydoc *doc, const struct ydoc_node *map, struct config *cfg)
{
    if (ydoc_expect_map(doc, map, "kafka") < 0)
        return;
    cfg->kafka = calloc(map->count ? map->count : 1, sizeof *cfg->kafka);
    if (!cfg->kafka)
        return;
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    int have_bootstrap = 0, have_group = 0;
    for (size_t i = 0; i < map->count; i++) {
        const struct ydoc_node *k = ydoc_key_at(map, i), *v = ydoc_value_at(map, i);
        if (k->type != YDOC_SCALAR)
            continue;
        const char *name = k->value, *value;
        if (in_list(name, kafka_reserved)) {
            ydoc_error(doc, k,
                       "kafka: \"%.64s\" is set by switchyard itself (at-least-once delivery "
                       "depends on it); remove this line",
                       name);
            continue;
        }
        if (v->type != YDOC_SCALAR || (v->plain && v->value[0] == '\0')) {
            ydoc_error(doc, v, "kafka: \"%.64s\": expected a value (string or number)", name);
            continue;
        }
        value = v->value;
        int env_ref = config_is_env_ref(value);
        if (env_ref && config_name_may_be_secret(value)) {
            /* "${<a key>}": the name is not echoed, it may be the key itself */
            ydoc_error(doc, v,
                       "kafka: \"%.64s\": \"${...}\" holds what looks like a key or token, "
                       "not the name of an environment variable; remove it from the file, "
                       "rotate it, and name the variable that holds it",
                       name);
            continue;
        }
        if (in_list(name, kafka_secret) && !env_ref) {
            ydoc_error(doc, v,
                       "kafka: \"%.64s\" must not be written in the file; write "
                       "\"${ENV_NAME}\" and set that environment variable",
                       name);
            continue;
        }
        char errstr[512];
        rd_kafka_conf_res_t res =
            rd_kafka_conf_set(scratch, name, env_ref ? "" : value, errstr, sizeof errstr);
        if (res == RD_KAFKA_CONF_UNKNOWN) {
            ydoc_error(doc, k, "kafka: unknown librdkafka property \"%.64s\"", name);
            continue;
        }
        if (res == RD_KAFKA_CONF_INVALID && !env_ref) {
            ydoc_error(doc, v, "kafka: \"%.64s\": %s", name, errstr);
            continue;
        }
        have_bootstrap |= strcmp(name, "bootstrap.servers") == 0;
        have_group |= strcmp(name, "group.id") == 0;
        struct config_kafka_property *p = &cfg->kafka[cfg->nkafka++];
        p->name = xstrdup(name);
        p->value = xstrdup(value);
    }
    rd_kafka_conf_destroy(scratch);
    if (!have_bootstrap)
        ydoc_error(doc, map, "kafka: missing \"bootstrap.servers\"");
    if (!have_group)
        ydoc_error(doc, map, "kafka: missing \"group.id\"");
}

static void config_bind_topics(struct ydoc *doc, const struct ydoc_node *map, struct config *cfg)
{
    static const char *const keys[] = {"requests", "results", "costs", "dead_letter", NULL};
    static const char *const all_keys[] = {"requests",    "results",        "costs",
                                           "dead_letter", "create_missing", NULL};
    char **slots[] = {&cfg->topic_requests, &cfg->topic_results, &cfg->topic_costs,
                      &cfg->topic_dead_letter};
    const struct ydoc_node *nodes[4] = {0};
    if (ydoc_expect_map(doc, map, "topics") < 0)
        return;
    ydoc_check_keys(doc, map, all_keys, "topics");
    const struct ydoc_node *create = ydoc_get(map, "create_missing");
    if (create)
        ydoc_bool(doc, create, "create_missing", &cfg->topics_create_missing);
    for (size_t i = 0; keys[i]; i++) {
        const char *name;
        nodes[i] = ydoc_get(map, keys[i]);
        if (!nodes[i]) {
            ydoc_error(doc, map, "topics: missing \"%s\"", keys[i]);
            continue;
        }
        if (ydoc_string(doc, nodes[i], keys[i], &name) < 0)
            continue;
        if (!config_topic_ok(name)) {
            ydoc_error(doc, nodes[i],
                       "%s: expected a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)", keys[i]);
            continue;
        }
        *slots[i] = xstrdup(name);
        for (size_t j = 0; j < i; j++)
            if (*slots[j] && strcmp(*slots[j], name) == 0)
                ydoc_error(doc, nodes[i], "%s: the same topic as \"%s\" (line %d)", keys[i],
                           keys[j], nodes[j]->line);
    }
}

/* A mapping of integers bound through `keys`: every field takes its
 * default first, so a missing or broken mapping still leaves defaults.
 * `extra` names keys the caller reports itself (NULL-terminated, may be
 * NULL). */
static void config_bind_int_map(struct ydoc *doc, const struct ydoc_node *map,
                                const struct config_int_key *keys, const char *const *extra,
                                void *base, const char *what)
{
    const char *allowed[16];
    size_t n = 0;
    config_key_names(keys, allowed, &n);
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        allowed[n++] = extra[i];
    allowed[n] = NULL;
    config_bind_ints(doc, NULL, keys, base);
    if (!map || ydoc_expect_map(doc, map, what) < 0)
        return;
    ydoc_check_keys(doc, map, allowed, what);
    config_bind_ints(doc, map, keys, base);
}

static void config_bind_provider_pressure(struct ydoc *doc, const struct ydoc_node *map,
                                          struct config_provider *p)
{
    static const char *const provider_extra[] = {"max_concurrent", NULL};
    char what[96];
    const struct ydoc_node *v = ydoc_get(map, "limits");
    snprintf(what, sizeof what, "providers.%.64s.limits", p->name);
    config_bind_int_map(doc, v, provider_limit_keys, provider_extra, &p->limits, what);
    const struct ydoc_node *mc = ydoc_get(v, "max_concurrent");
    if (mc)
        ydoc_error(doc, mc,
                   "%s: \"max_concurrent\" does not apply to a whole provider: set "
                   "providers.%.64s.max_connections instead (or max_concurrent under "
                   "model_limits, for each model)",
                   what, p->name);
    snprintf(what, sizeof what, "providers.%.64s.model_limits", p->name);
    config_bind_int_map(doc, ydoc_get(map, "model_limits"), model_limit_keys, NULL,
                        &p->model_limits, what);
    snprintf(what, sizeof what, "providers.%.64s.circuit", p->name);
    config_bind_int_map(doc, ydoc_get(map, "circuit"), circuit_keys, NULL, &p->circuit, what);
}

/* auth: what each type accepts, and region, which only Bedrock has (it is
 * part of what SigV4 signs). */
static void config_bind_auth(struct ydoc *doc, const struct ydoc_node *k,
                             const struct ydoc_node *map, struct config_provider *p)
{
    static const char *const names[] = {"api-key", "bearer", "sigv4", NULL};
    static const enum config_auth values[] = {CONFIG_AUTH_API_KEY, CONFIG_AUTH_BEARER,
                                              CONFIG_AUTH_SIGV4};
    const struct ydoc_node *v = ydoc_get(map, "auth"), *r = ydoc_get(map, "region");
    int i;
    p->auth = p->type == PROVIDER_BEDROCK ? CONFIG_AUTH_SIGV4 : CONFIG_AUTH_API_KEY;
    if (v && ydoc_enum(doc, v, "auth", names, &i) == 0) {
        int bedrock = p->type == PROVIDER_BEDROCK, azure = p->type == PROVIDER_AZURE;
        enum config_auth a = values[i];
        if ((a == CONFIG_AUTH_SIGV4 && !bedrock) ||
            (a == CONFIG_AUTH_BEARER && !bedrock && !azure) ||
            (a == CONFIG_AUTH_API_KEY && bedrock))
            ydoc_error(doc, v, "auth: %s is not how %s is called; expected %s", names[i],
                       provider_type_name(p->type),
                       bedrock ? "sigv4 (AWS credentials) or bearer (a Bedrock API key)"
                       : azure ? "api-key (the api-key header) or bearer (a Microsoft Entra ID "
                                 "token)"
                               : "api-key (or no auth line)");
        else
            p->auth = a;
    }
    const char *s;
    if (p->type != PROVIDER_BEDROCK) {
        if (r)
            ydoc_error(doc, r,
                       "region: only a bedrock provider has a region (the URL says "
                       "where the others are)");
        return;
    }
    if (!r) {
        ydoc_error(doc, k, "providers.%.64s: missing \"region\" (the AWS region, e.g. us-east-1)",
                   p->name);
        return;
    }
    if (ydoc_string(doc, r, "region", &s) < 0)
        return;
    /* us-east-1, eu-central-2, us-gov-west-1, ap-southeast-5: letters and
     * dashes, a final number; nothing that could break the signed scope */
    size_t n = strlen(s), d = n;
    while (d > 0 && s[d - 1] >= '0' && s[d - 1] <= '9')
        d--;
    int good = n >= 4 && n <= 32 && d < n && d > 1 && s[d - 1] == '-' && s[0] >= 'a' && s[0] <= 'z';
    for (size_t j = 0; good && j < d; j++)
        good = (s[j] >= 'a' && s[j] <= 'z') || (s[j] == '-' && j > 0 && s[j - 1] != '-');
    if (!good)
        ydoc_error(doc, r, "region: expected an AWS region such as us-east-1 or eu-central-1");
    else
        p->region = xstrdup(s);
}

static void config_bind_provider(struct ydoc *doc, const struct ydoc_node *k,
                                 const struct ydoc_node *map, struct config_provider *p)
{
    const char *allowed[20] = {
        "type",   "base_url",     "api_key_env", "api_version", "max_tokens_field",
        "limits", "model_limits", "circuit",     "auth",        "region"};
    size_t n = 10;
    config_key_names(provider_int_keys, allowed, &n);
    allowed[n] = NULL;

    p->name = xstrdup(k->value);
    config_bind_ints(doc, map, provider_int_keys, p);
    config_bind_provider_pressure(doc, map, p);
    if (ydoc_expect_map(doc, map, "a provider") < 0)
        return;
    /* secrets first: a key in the file is refused, not merely "unknown" */
    for (size_t i = 0; i < map->count; i++) {
        const struct ydoc_node *key = ydoc_key_at(map, i);
        if (key->type == YDOC_SCALAR && in_list(key->value, provider_secret_keys))
            ydoc_error(doc, key,
                       "providers.%.64s: \"%s\": API keys are never read from this file; put "
                       "the key in an environment variable and name it in \"api_key_env\"",
                       p->name, key->value);
    }
    for (size_t i = 0; i < map->count; i++) {
        const struct ydoc_node *key = ydoc_key_at(map, i);
        if (key->type != YDOC_SCALAR || in_list(key->value, provider_secret_keys) ||
            in_list(key->value, allowed))
            continue;
        const char *near = text_nearest(key->value, allowed);
        ydoc_error(doc, key, "unknown key \"%.64s\" in providers.%.64s%s%s%s", key->value, p->name,
                   near ? " (did you mean \"" : "", near ? near : "", near ? "\"?)" : "");
    }

    const struct ydoc_node *v;
    const char *s;
    int type;
    if (!(v = ydoc_get(map, "type")))
        ydoc_error(doc, k, "providers.%.64s: missing \"type\"", p->name);
    else if (ydoc_enum(doc, v, "type", provider_type_names, &type) == 0)
        p->type = (enum provider_type)type;

    if (!(v = ydoc_get(map, "base_url")))
        ydoc_error(doc, k, "providers.%.64s: missing \"base_url\"", p->name);
    else if (ydoc_string(doc, v, "base_url", &s) == 0) {
        if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
            ydoc_error(doc, v, "base_url: expected an http:// or https:// URL");
        else
            p->base_url = xstrdup(s);
    }

    config_bind_auth(doc, k, map, p);
    if (!(v = ydoc_get(map, "api_key_env"))) {
        /* SigV4 signs with the AWS credentials instead (AWS_ACCESS_KEY_ID,
         * ...); a Bedrock API key has the AWS SDKs' own variable */
        if (p->auth == CONFIG_AUTH_BEARER && p->type == PROVIDER_BEDROCK)
            p->api_key_env = xstrdup("AWS_BEARER_TOKEN_BEDROCK");
        else if (p->auth != CONFIG_AUTH_SIGV4)
            ydoc_error(doc, k,
                       "providers.%.64s: missing \"api_key_env\" (the name of the "
                       "environment variable that holds the key)",
                       p->name);
    } else if (p->auth == CONFIG_AUTH_SIGV4)
        ydoc_error(doc, v,
                   "api_key_env: SigV4 signs with the AWS credentials in AWS_ACCESS_KEY_ID, "
                   "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; remove api_key_env, or set "
                   "auth: bearer to use a Bedrock API key");
    else if (v->type != YDOC_SCALAR || !config_env_name_ok(v->value))
        /* the value is not echoed: it may be the key itself */
        ydoc_error(doc, v,
                   "api_key_env: expected the NAME of an environment variable (letters, "
                   "digits, _); if this value is a key, remove it from the file and rotate it");
    else if (config_name_may_be_secret(v->value))
        ydoc_error(doc, v,
                   "api_key_env: this looks like an API key, not the name of an environment "
                   "variable; remove it from the file, rotate it, and write the name of the "
                   "variable that holds it (e.g. GROQ_API_KEY)");
    else
        p->api_key_env = xstrdup(v->value);

    if ((v = ydoc_get(map, "api_version")) && ydoc_string(doc, v, "api_version", &s) == 0)
        p->api_version = xstrdup(s);
    /* OpenAI's reasoning models refuse max_tokens; many compatible servers
     * know only max_tokens: the operator says which one a server takes */
    static const char *const fields[] = {"max_tokens", "max_completion_tokens", NULL};
    int field;
    if ((v = ydoc_get(map, "max_tokens_field")) &&
        ydoc_enum(doc, v, "max_tokens_field", fields, &field) == 0)
        p->max_tokens_field = xstrdup(fields[field]);
}

static void config_bind_providers(struct ydoc *doc, const struct ydoc_node *map, struct config *cfg)
{
    if (ydoc_expect_map(doc, map, "providers") < 0)
        return;
    if (map->count == 0)
        ydoc_error(doc, map, "providers: expected at least one provider");
    cfg->providers = calloc(map->count ? map->count : 1, sizeof *cfg->providers);
    if (!cfg->providers)
        return;
    for (size_t i = 0; i < map->count; i++) {
        const struct ydoc_node *k = ydoc_key_at(map, i);
        if (k->type != YDOC_SCALAR)
            continue;
        config_bind_provider(doc, k, ydoc_value_at(map, i), &cfg->providers[cfg->nproviders++]);
    }
    /* every model of a policy looks its provider up: linear, not models x providers */
    cfg->provider_index = text_index_new(cfg->nproviders);
    for (size_t i = 0; cfg->provider_index && i < cfg->nproviders; i++)
        if (cfg->providers[i].name &&
            text_index_add(cfg->provider_index, cfg->providers[i].name, i) == TEXT_INDEX_NONE) {
            text_index_free(cfg->provider_index); /* config_provider_find scans instead */
            cfg->provider_index = NULL;
        }
}

static void config_bind_limits(struct ydoc *doc, const struct ydoc_node *map, struct config *cfg)
{
    const char *allowed[24];
    size_t n = 0;
    config_key_names(limit_keys, allowed, &n);
    allowed[n] = NULL;
    if (map && ydoc_expect_map(doc, map, "limits") == 0)
        ydoc_check_keys(doc, map, allowed, "limits");
    config_bind_ints(doc, map && map->type == YDOC_MAP ? map : NULL, limit_keys, &cfg->limits);
    struct config_limits *l = &cfg->limits;
    const struct ydoc_node *per = ydoc_get(map, "max_in_flight_per_partition");
    if (l->max_in_flight_per_partition > l->max_in_flight) {
        if (per)
            ydoc_error(doc, per,
                       "max_in_flight_per_partition: expected at most max_in_flight (%lld)",
                       (long long)l->max_in_flight);
        else /* only the global cap was lowered: the default follows it */
            l->max_in_flight_per_partition = l->max_in_flight;
    }
    /* a queue longer than the worker may hold would never fill, and so
     * never pause the partitions feeding it */
    const struct ydoc_node *queue = ydoc_get(map, "queue_per_model");
    if (l->queue_per_model > l->max_in_flight) {
        if (queue)
            ydoc_error(doc, queue, "queue_per_model: expected at most max_in_flight (%lld)",
                       (long long)l->max_in_flight);
        else
            l->queue_per_model = l->max_in_flight;
    }
    if (l->backoff_initial_ms > l->backoff_max_ms)
        ydoc_error(doc, ydoc_get(map, "backoff_initial_ms"),
                   "backoff_initial_ms: expected at most backoff_max_ms (%lld)",
                   (long long)l->backoff_max_ms);
}

static void config_bind_metrics(struct ydoc *doc, const struct ydoc_node *map, struct config *cfg)
{
    static const char *const keys[] = {"listen", "tenant_label", "max_tenants", NULL};
    if (ydoc_expect_map(doc, map, "metrics") < 0)
        return;
    ydoc_check_keys(doc, map, keys, "metrics");
    const struct ydoc_node *v = ydoc_get(map, "tenant_label");
    if (v)
        ydoc_bool(doc, v, "tenant_label", &cfg->metrics_tenant_label);
    if ((v = ydoc_get(map, "max_tenants")))
        ydoc_int(doc, v, "max_tenants", 1, 10000, &cfg->metrics_max_tenants);
    v = ydoc_get(map, "listen");
    const char *s;
    if (!v || ydoc_string(doc, v, "listen", &s) < 0)
        return;
    const char *colon = strrchr(s, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == s || !end || *end || colon[1] == '\0' || port < 0 || port > 65535)
        ydoc_error(doc, v, "listen: expected HOST:PORT, e.g. 127.0.0.1:9464");
    else
        cfg->metrics_listen = xstrdup(s);
}

/* A list of 0..max distinct strings, each checked by ok(); every bad item
 * reported at its node. The list is allocated even when empty. */
static void config_bind_names(struct ydoc *doc, const struct ydoc_node *seq, const char *what,
                              size_t max, int (*name_ok)(const char *), const char *expected,
                              char ***out, size_t *n)
{
    *out = calloc(max, sizeof **out);
    *n = 0;
    if (!*out || ydoc_expect_seq(doc, seq, what) < 0)
        return;
    if (seq->count > max) {
        ydoc_error(doc, seq, "%s: expected at most %zu names, got %zu", what, max, seq->count);
        return;
    }
    for (size_t i = 0; i < seq->count; i++) {
        const struct ydoc_node *v = seq->items[i];
        const char *s;
        if (ydoc_string(doc, v, what, &s) < 0)
            continue;
        if (!name_ok(s)) {
            ydoc_error(doc, v, "%s: expected %s", what, expected);
            continue;
        }
        size_t j = 0;
        while (j < *n && strcmp((*out)[j], s) != 0)
            j++;
        if (j < *n) {
            ydoc_error(doc, v, "%s: \"%s\" is listed twice", what, s);
            continue;
        }
        if (!((*out)[*n] = xstrdup(s)))
            return;
        (*n)++;
    }
}

static int config_header_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= CONFIG_HEADER_NAME_MAX && text_is_visible_ascii(s, n);
}

static void config_bind_reply(struct ydoc *doc, const struct ydoc_node *map, struct config *cfg)
{
    static const char *const keys[] = {"copy_headers", "reply_topics", NULL};
    static const char *const default_headers[] = {"traceparent", "tracestate",
                                                  "kafka_correlationId", NULL};
    struct config_reply *r = &cfg->reply;
    const struct ydoc_node *copy = NULL, *topics = NULL;
    if (map && ydoc_expect_map(doc, map, "reply") == 0) {
        ydoc_check_keys(doc, map, keys, "reply");
        copy = ydoc_get(map, "copy_headers");
        topics = ydoc_get(map, "reply_topics");
    }
    if (copy) {
        config_bind_names(doc, copy, "copy_headers", CONFIG_COPY_HEADERS_MAX, config_header_name_ok,
                          "a header name (1 to 255 printable ASCII characters, no spaces)",
                          &r->copy_headers, &r->ncopy_headers);
    } else if ((r->copy_headers = calloc(CONFIG_COPY_HEADERS_MAX, sizeof *r->copy_headers))) {
        for (size_t i = 0; default_headers[i]; i++)
            if ((r->copy_headers[i] = xstrdup(default_headers[i])))
                r->ncopy_headers++;
    }
    if (topics)
        config_bind_names(doc, topics, "reply_topics", CONFIG_REPLY_TOPICS_MAX, config_topic_ok,
                          "a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)", &r->topics,
                          &r->ntopics);
    /* a reply topic is the requester's own: one of ours there would mix
     * results into requests (a loop), cost records or dead letters */
    const char *const mine[] = {cfg->topic_requests, cfg->topic_costs, cfg->topic_dead_letter};
    const char *const mine_keys[] = {"requests", "costs", "dead_letter"};
    for (size_t i = 0; topics && topics->type == YDOC_SEQ && i < topics->count; i++) {
        const struct ydoc_node *v = topics->items[i];
        for (size_t j = 0; v->type == YDOC_SCALAR && j < 3; j++)
            if (mine[j] && strcmp(v->value, mine[j]) == 0)
                ydoc_error(doc, v,
                           "reply_topics: \"%s\" is the %s topic (topics.%s); a reply topic "
                           "is one the requester reads replies from",
                           v->value, mine_keys[j], mine_keys[j]);
    }
}

const char *config_reply_topic_find(const struct config *cfg, const void *name, size_t len)
{
    for (size_t i = 0; cfg && name && i < cfg->reply.ntopics; i++) {
        const char *t = cfg->reply.topics[i];
        if (strlen(t) == len && memcmp(t, name, len) == 0)
            return t;
    }
    return NULL;
}

static void config_bind_logging(struct ydoc *doc, const struct ydoc_node *map, struct config *cfg)
{
    static const char *const keys[] = {"requests", "bodies", NULL};
    if (ydoc_expect_map(doc, map, "logging") < 0)
        return;
    ydoc_check_keys(doc, map, keys, "logging");
    const struct ydoc_node *v;
    if ((v = ydoc_get(map, "requests")))
        ydoc_bool(doc, v, "requests", &cfg->log_requests);
    if ((v = ydoc_get(map, "bodies")))
        ydoc_bool(doc, v, "bodies", &cfg->log_bodies);
}

/* costs: { reserve: true|false }. On by default: finance correctness is
 * worth the acknowledgement's few milliseconds before a call that takes
 * seconds (README, "No invisible spend", gives the measured cost). */
static void config_bind_costs(struct ydoc *doc, const struct ydoc_node *map, struct config *cfg)
{
    static const char *const keys[] = {"reserve", NULL};
    if (ydoc_expect_map(doc, map, "costs") < 0)
        return;
    ydoc_check_keys(doc, map, keys, "costs");
    const struct ydoc_node *v;
    if ((v = ydoc_get(map, "reserve")))
        ydoc_bool(doc, v, "reserve", &cfg->costs_reserve);
}

struct config *config_load(const char *path, struct ydoc_errors *errs)
{
    static const char *const top_keys[] = {"worker_id", "kafka", "topics",  "providers", "limits",
                                           "metrics",   "reply", "logging", "costs",     NULL};
    struct ydoc *doc = ydoc_load(path);
    if (!doc)
        return NULL;
    struct config *cfg = calloc(1, sizeof *cfg);
    const struct ydoc_node *root = doc->root;
    if (!cfg || !root || ydoc_expect_map(doc, root, "the worker configuration") < 0)
        goto out;
    ydoc_check_keys(doc, root, top_keys, "the worker configuration");

    const struct ydoc_node *v;
    const char *s;
    if ((v = ydoc_get(root, "worker_id")) && ydoc_string(doc, v, "worker_id", &s) == 0) {
        if (!config_worker_id_ok(s))
            ydoc_error(doc, v,
                       "worker_id: expected 1 to %d printable ASCII characters, without "
                       "spaces or control characters",
                       CONFIG_WORKER_ID_MAX);
        else
            cfg->worker_id = xstrdup(s);
    }
    if ((v = ydoc_get(root, "kafka")))
        config_bind_kafka(doc, v, cfg);
    else
        ydoc_error(doc, root, "missing \"kafka\" (librdkafka properties)");
    if ((v = ydoc_get(root, "topics")))
        config_bind_topics(doc, v, cfg);
    else
        ydoc_error(doc, root, "missing \"topics\"");
    if ((v = ydoc_get(root, "providers")))
        config_bind_providers(doc, v, cfg);
    else
        ydoc_error(doc, root, "missing \"providers\"");
    config_bind_limits(doc, ydoc_get(root, "limits"), cfg);
    cfg->metrics_max_tenants = 100;
    if ((v = ydoc_get(root, "metrics")))
        config_bind_metrics(doc, v, cfg);
    config_bind_reply(doc, ydoc_get(root, "reply"), cfg);
    if ((v = ydoc_get(root, "logging")))
        config_bind_logging(doc, v, cfg);
    cfg->costs_reserve = 1;
    if ((v = ydoc_get(root, "costs")))
        config_bind_costs(doc, v, cfg);
out:
    if (doc->errs.count > 0 || !doc->root) {
        config_free(cfg);
        cfg = NULL;
    }
    ydoc_take_errors(doc, errs);
    ydoc_free(doc);
    return cfg;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    free(cfg->worker_id);
    for (size_t i = 0; i < cfg->nkafka; i++) {
        free(cfg->kafka[i].name);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    free(cfg->topic_requests);
    free(cfg->topic_results);
    free(cfg->topic_costs);
    free(cfg->topic_dead_letter);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        struct config_provider *p = &cfg->providers[i];
        free(p->name);
        free(p->base_url);
        free(p->api_key_env);
        free(p->api_version);
        free(p->region);
        free(p->max_tokens_field);
    }
    free(cfg->providers);
    text_index_free(cfg->provider_index);
    free(cfg->metrics_listen);
    for (size_t i = 0; i < cfg->reply.ncopy_headers; i++)
        free(cfg->reply.copy_headers[i]);
    free(cfg->reply.copy_headers);
    for (size_t i = 0; i < cfg->reply.ntopics; i++)
        free(cfg->reply.topics[i]);
    free(cfg->reply.topics);
    free(cfg);
}

const struct config_provider *config_provider_find(const struct config *cfg, const char *name)
{
    if (cfg && cfg->provider_index) {
        size_t i = text_index_find(cfg->provider_index, name);
        return i == TEXT_INDEX_NONE ? NULL : &cfg->providers[i];
    }
    for (size_t i = 0; cfg && i < cfg->nproviders; i++)
        if (cfg->providers[i].name && strcmp(cfg->providers[i].name, name) == 0)
            return &cfg->providers[i];
    return NULL;
}

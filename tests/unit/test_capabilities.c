/*
 * capabilities: provider_unsupported and provider_field_used against the
 * table in tests/data/providers/capabilities.txt, plus the invariant that
 * a field named unsupported is one the request uses.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "providers/provider.h"
#include "request_flags.h"

static int capabilities_type(const char *name, enum provider_type *out)
{
    for (int t = 0; t < PROVIDER_NTYPES; t++)
        if (strcmp(provider_type_name((enum provider_type)t), name) == 0)
            return *out = (enum provider_type)t, 0;
    return -1;
}

/* The fields req uses, comma-separated in enum order, or "-". */
static void capabilities_used(const struct request *req, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int f = 0; f < POLICY_NFIELDS && used < size; f++)
        if (provider_field_used((enum policy_field)f, req))
            used += (size_t)snprintf(out + used, size - used, "%s%s", used ? "," : "",
                                     policy_field_name((enum policy_field)f));
    if (used == 0)
        snprintf(out, size, "-");
}

static void capabilities_case(char *line, int lineno, void *ctx)
{
    int *cases = ctx;
    char type[32], model[160], flags[400], expected[200];
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", line);
    if (sscanf(line, "%31s %159s %399s -> %199s", type, model, flags, expected) != 4) {
        ok(0, "capabilities.txt:%d: unreadable case: %s", lineno, copy);
        return;
    }
    struct request_flags t;
    if (!ok(request_flags_fill(&t, "t", 10, flags) == 0, "capabilities.txt:%d: flags read: %s",
            lineno, copy))
        return;
    (*cases)++;
    char got[200];
    if (strcmp(type, "used") == 0) {
        capabilities_used(&t.req, got, sizeof got);
        ok(strcmp(got, expected) == 0, "capabilities.txt:%d: %s\n    expected: %s\n    got: %s",
           lineno, copy, expected, got);
        return;
    }
    enum provider_type pt = PROVIDER_NTYPES;
    if (!ok(capabilities_type(type, &pt) == 0, "capabilities.txt:%d: type %s", lineno, type))
        return;
    const char *field = provider_unsupported(pt, model, &t.req);
    snprintf(got, sizeof got, "%s", field ? field : "-");
    ok(strcmp(got, expected) == 0, "capabilities.txt:%d: %s\n    expected: %s\n    got: %s", lineno,
       copy, expected, got);
    if (field) {
        int known = 0;
        for (int f = 0; f < POLICY_NFIELDS; f++)
            if (strcmp(policy_field_name((enum policy_field)f), field) == 0)
                known = provider_field_used((enum policy_field)f, &t.req) ? 1 : -1;
        ok(known == 1, "capabilities.txt:%d: %s is a field the request uses", lineno, field);
    }
}

void test_capabilities(void)
{
    int cases = 0;
    check_each_line("tests/data/providers/capabilities.txt", capabilities_case, &cases);
    ok(cases >= 50, "at least 50 capability cases (%d)", cases);

    /* every type has a rule for every field: none crashes or names an
     * unknown field, whatever the request asks */
    char all[] = "seed,stop,top_p=0.1,json,tools,tool_choice=named,image_url=https://e.com/x.png,"
                 "reasoning=2048,temperature=0.5";
    struct request_flags t;
    ok(request_flags_fill(&t, "t", 10, all) == 0, "every flag reads");
    for (int ty = 0; ty < PROVIDER_NTYPES; ty++) {
        const char *f = provider_unsupported((enum provider_type)ty, "m", &t.req);
        int openai_like = ty == PROVIDER_OPENAI || ty == PROVIDER_AZURE;
        ok(openai_like ? f == NULL : f != NULL, "%s with every field: %s",
           provider_type_name((enum provider_type)ty), f ? f : "-");
    }
    ok(policy_field_name(POLICY_NFIELDS) == NULL, "POLICY_NFIELDS names no field");
}

/*
 * request_flags: a struct request filled by hand from a short list of
 * flags, for the table tests of decisions that read a decoded request
 * (capabilities, router). The decoder is tested on its own (test_request).
 */
#ifndef SWITCHYARD_TEST_REQUEST_FLAGS_H
#define SWITCHYARD_TEST_REQUEST_FLAGS_H

#include "request.h"

#define REQUEST_FLAGS_MAX_PARTS 8

/* Everything the request points at lives here: no allocation. */
struct request_flags {
    struct request req;
    struct request_message message; /* one user turn */
    struct request_part parts[REQUEST_FLAGS_MAX_PARTS];
    struct request_tool tool;
};

/* Fills *t: a request with one user message of `bytes` content bytes (the
 * text is not kept: only the estimate reads it), then `flags`: "-" for
 * none, or comma-separated:
 *   seed  stop  top_p=X  temperature=X  json  json_schema  tools
 *   tool_choice=none|required|named  image_url=URL (image_url=data: a
 *   data: URL, which holds a comma)  image_data
 *   reasoning=BUDGET_TOKENS  model=NAME/NAME/...
 * Strings point into `flags`, which must outlive the request (and is
 * written to). Returns 0, or -1 naming nothing: the flag is unknown. */
int request_flags_fill(struct request_flags *t, const char *task, size_t bytes, char *flags);

#endif

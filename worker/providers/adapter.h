/*
 * adapter: helpers shared by the provider adapters (not part of the
 * provider interface itself), and the adapters' ops tables.
 */
#ifndef SWITCHYARD_ADAPTER_H
#define SWITCHYARD_ADAPTER_H

#include <jansson.h>

#include "jsonw.h"
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

/* --- request bodies written by jsonw (no jansson tree per call) --- */

/* Bytes a body may grow to: far above any request the worker admits (the
 * request's own cap bounds it; images travel base64 either way). */
#define ADAPTER_BODY_MAX ((size_t)256 << 20)
/* A writer for the body of a call carrying req: its first allocation
 * sized from the request's text, so that the body is written in one. */
void adapter_body_init(struct jsonw *w, const struct request *req);
/* out->body takes w's text. -1 (nothing taken, w released) when the
 * writer failed, or wrote a string that was not valid UTF-8 (a jansson
 * tree refused those: the body is never sent with U+FFFD in it). */
int adapter_body_finish(struct provider_http *out, struct jsonw *w);
/* m's parts, each an array element: a text part as {"type":"text",
 * "text"} (the shape of OpenAI's parts and Anthropic's blocks), an image
 * part as image writes it. */
void adapter_w_parts(struct jsonw *w, const struct request_message *m,
                     void (*image)(struct jsonw *w, const struct request_part *part));
/* adapter_sampling written by jsonw: the same keys and values, in the
 * same order. */
void adapter_w_sampling(struct jsonw *w, const struct request *req, const char *top_p_key,
                        const char *stop_key);
/* A token count: absent or null = 0; -1 when not a non-negative integer
 * within COST_MAX_TOKENS. */
int adapter_count(const json_t *obj, const char *key, uint64_t *out);
/* A total: present, and a count as adapter_count reads it (null is not a
 * count); -1 otherwise. */
int adapter_total(const json_t *usage, const char *key, uint64_t *out);
int adapter_text(struct provider_reply *out, const char *text, size_t len);
/* Classifies a non-2xx status: ERR_TRANSIENT for 408/409/425/429/5xx,
 * ERR_UPSTREAM for the rest; code NULL = derived from the status.
 * message[0..len) is the provider's whole message (NULL: none; it may hold
 * NUL bytes): pass it uncut, since every piece of a registered secret is
 * masked (redact.h) before the quote in e->msg is bounded. */
int adapter_status_error(long status, const char *code, const char *message, size_t len,
                         struct err *e);

/* --- issue 10: content parts, tools and structured output (openai.c,
 * anthropic.c, azure.c use these; any adapter may) --- */

/* The text of a message: its string content, or its text parts joined
 * (image parts left out). New buffer (free it), NUL-terminated, *len
 * without the NUL (the text may hold NUL bytes); NULL when out of memory. */
char *adapter_message_text(const struct request_message *m, size_t *len);
/* Sets the sampling fields every API has, each when the request has it,
 * under the API's names: "temperature", top_p_key (top_p) and stop_key
 * (the stop sequences, an array of strings). -1 when out of memory. */
int adapter_sampling(json_t *obj, const struct request *req, const char *top_p_key,
                     const char *stop_key);
/* Splits "data:<media type>;base64,<data>" into borrowed pieces of url.
 * 0, or -1 when url[0..len) is not such a URL (then the outputs are
 * untouched). Pure. */
int adapter_data_url(const char *url, size_t len, const char **media_type, size_t *media_type_len,
                     const char **data, size_t *data_len);
/* The tool that stands for response_format where a provider has no native
 * form (Anthropic; Bedrock may share it): forced, its input is the reply's
 * text. parse() never sees the request, so the name is fixed: a reply's
 * call of this name is always the format tool, which is why build refuses
 * (ERR_INPUT, "reserved_tool_name") a request tool of the same name. */
#define ADAPTER_FORMAT_TOOL "switchyard_json_response"
/* The JSON Schema the format tool takes: response_format.json_schema's
 * schema, or {"type":"object"} for json_object. New reference; NULL for
 * REQUEST_FORMAT_TEXT or out of memory. */
json_t *adapter_format_schema(const struct request *req);
/* 1 when the request names a tool ADAPTER_FORMAT_TOOL. */
int adapter_format_tool_clash(const struct request *req);
/* Appends {"id","name","arguments"} (provider_reply.tool_calls' shape) to
 * calls; arguments is borrowed (a reference is taken). -1 when out of
 * memory. */
int adapter_tool_call(json_t *calls, const char *id, const char *name, json_t *arguments);
/* The text of a reply to a request that may have offered the format tool:
 * with format_input (the format tool's input, borrowed: the answer),
 * out->text is it as compact JSON, and any text around the call (the
 * model talking) is left out; without, out->text is a buffer of
 * text_len + 1 bytes for the caller to fill and terminate (out->text_len
 * 0). -1 when out of memory. */
int adapter_answer_text(struct provider_reply *out, const json_t *format_input, size_t text_len);
/* Appends text, a JSON string, to such a buffer (sized by the caller's
 * count of what it appends); anything else appends nothing. */
void adapter_answer_append(struct provider_reply *out, const json_t *text);
/* Ends such a reply: out->tool_calls takes calls when it holds any (else
 * they are freed), and out->finish is finish, except that TOOL_CALLS
 * whose only call was the format tool's (format_used) is STOP: that call
 * is the answer, and the turn ended. */
void adapter_answer_calls(struct provider_reply *out, json_t *calls, enum provider_finish finish,
                          int format_used);
/* The message an error reply quotes, for adapter_status_error: message
 * when it is a JSON string; else, when the body is not JSON at all (root
 * NULL: a proxy's HTML page, say), the body; NULL when neither. *len is
 * its length (it may hold NUL bytes). */
const char *adapter_error_message(const json_t *message, const json_t *root, const char *body,
                                  size_t body_len, size_t *len);

/* OpenAI's Chat Completions, shared by openai.c and azure.c. The body for
 * a call, written into out (which it takes: afterwards out->body is set,
 * or out is untouched): every request field mapped; with_model 0 leaves
 * "model" out (Azure's deployment URLs name the model in their path). 0,
 * or -1 with e set (ERR_FATAL oom). */
int openai_chat_body(const struct provider_call *call, int with_model, struct provider_http *out,
                     struct err *e);
/* Parses a Chat Completions reply: openai_ops.parse itself. A usable
 * reply is read in place (jscan.h, no tree); any other, and any the
 * reader declines, by openai_chat_parse_tree, with the same result. */
int openai_chat_parse(long status, const char *body, size_t len, struct provider_reply *out,
                      struct err *e);
/* The same, always through a jansson tree: the reference the in-place
 * reader is checked against (tests, fuzz_providers). */
int openai_chat_parse_tree(long status, const char *body, size_t len, struct provider_reply *out,
                           struct err *e);
/* The in-place reader alone, for a 2xx reply: 0 with *out filled as the
 * tree would fill it; 1 when it declines (out untouched: the tree must
 * read the reply, and says what is wrong with it); -1 with e set when out
 * of memory. */
int openai_chat_read(const char *body, size_t len, struct provider_reply *out, struct err *e);

/* gemini: the wait a Gemini error body asks for, in ms (rounded up): the
 * retryDelay of its google.rpc.RetryInfo detail ("7s", "1.5s"), as a 429
 * RESOURCE_EXHAUSTED carries it; -1 when the body has none (or is not
 * Gemini's error JSON). Pure; body need not be NUL-terminated. */
int64_t gemini_retry_delay_ms(const char *body, size_t len);

#endif

/*
 * libFuzzer target: jsonw must write any bytes as a JSON string that
 * jansson parses back: the same bytes when they are valid UTF-8 (and then
 * byte for byte what jansson's own dump writes), U+FFFD for each invalid
 * byte otherwise; and as a key and inside a document, still JSON.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct jsonw w;
    jsonw_init(&w, 0, SIZE_MAX);
    jsonw_string_n(&w, s, size);
    size_t len = 0;
    char *text = jsonw_finish(&w, &len);
    if (!text)
        abort();
    json_t *back = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!json_is_string(back))
        abort();
    size_t bad = jsonw_utf8_invalid(s, size);
    if (bad != w.replaced)
        abort();
    if (bad == 0) {
        if (json_string_length(back) != size || memcmp(json_string_value(back), s, size) != 0)
            abort();
        json_t *j = json_stringn(s, size);
        char *theirs = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (!theirs || strlen(theirs) != len || memcmp(theirs, text, len) != 0)
            abort();
        free(theirs);
        json_decref(j);
    } else if (json_string_length(back) != size + 2 * bad) {
        abort(); /* each bad byte became three */
    }
    json_decref(back);
    free(text);
    jsonw_release(&w);

    /* the bytes as a key (cut at a NUL) of an object in an array, bounded */
    jsonw_init(&w, 0, size % 64 == 0 ? size : SIZE_MAX);
    char *key = strndup(s, size);
    jsonw_array_open(&w);
    jsonw_object_open(&w);
    jsonw_kstring(&w, key ? key : "", key ? key : "");
    jsonw_object_close(&w);
    jsonw_int(&w, -(int64_t)size);
    jsonw_array_close(&w);
    text = jsonw_finish(&w, &len);
    if (text) {
        back = json_loadb(text, len, 0, NULL);
        if (!json_is_array(back) || len > (size % 64 == 0 ? size : SIZE_MAX))
            abort();
        json_decref(back);
    } else if (w.error != JSONW_TOO_LONG) {
        abort();
    }
    free(text);
    free(key);
    jsonw_release(&w);
    return 0;
}

/*
 * libFuzzer target: hostile commit metadata must be refused or parsed,
 * never crash; and an operation sequence derived from the bytes keeps the
 * window's invariants (committable never passes a pending offset).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "offsets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct offsets_range r[64];
    offsets_decode_metadata((const char *)data, size, 1000, r, 64);

    struct offsets *o = offsets_new(0);
    int64_t next = 0;
    for (size_t i = 0; i < size; i++) {
        uint8_t b = data[i];
        if (b & 1) {
            next += 1 + (b >> 5);
            offsets_track(o, next);
        } else {
            offsets_done(o, next - (b >> 1));
        }
        if (offsets_committable(o) > next + 1)
            abort();
    }
    char md[256];
    size_t len = offsets_encode_metadata(o, md, sizeof md);
    if (offsets_decode_metadata(md, len, offsets_committable(o), r, 64) < 0)
        abort();
    offsets_free(o);
    return 0;
}

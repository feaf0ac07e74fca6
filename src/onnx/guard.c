/*
 * guard.c - safety around protobuf-c's unpacking of a hostile ONNX file:
 * an allocation budget and a nesting-depth check of the wire format.
 * Neither decodes values; protobuf-c does that (onnx_read.c).
 */
#include <stdlib.h>

#include "onnx/onnx_io.h"

static void *budget_alloc(void *data, size_t size)
{
    onnx_budget *b = data;
    if (size > b->left)
        return NULL;
    b->left -= size;
    return malloc(size ? size : 1);
}

static void budget_free(void *data, void *p)
{
    (void)data;
    free(p);
}

ProtobufCAllocator onnx_budget_allocator(onnx_budget *b)
{
    return (ProtobufCAllocator){budget_alloc, budget_free, b};
}

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return false;
        uint8_t c = *(*p)++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

static bool check(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                  const uint8_t *end, int depth)
{
    if (depth > ONNX_MAX_DEPTH)
        return false;
    while (p < end) {
        uint64_t tag, v;
        if (!varint(&p, end, &tag))
            return false;
        switch (tag & 7) {
        case 0:
            if (!varint(&p, end, &v))
                return false;
            break;
        case 1:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        case 2: {
            if (!varint(&p, end, &v) || v > (uint64_t)(end - p))
                return false;
            const ProtobufCFieldDescriptor *f =
                tag >> 3 <= 0x7fffffff
                    ? protobuf_c_message_descriptor_get_field(
                          d, (unsigned)(tag >> 3))
                    : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                !check(f->descriptor, p, p + v, depth + 1))
                return false;
            p += v;
            break;
        }
        default:   /* groups (3, 4) and invalid wire types */
            return false;
        }
    }
    return true;
}

bool onnx_wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                     size_t size)
{
    return check(d, data, data + size, 0);
}

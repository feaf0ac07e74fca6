/*
 * onnx_io.h - what the ONNX reader and writer share (internal): the
 * protobuf-c messages generated at build time from ONNX's own onnx.proto
 * ($(O)/gen/onnx.pb-c.h), tensor data types, and the guards that make
 * unpacking a hostile file safe.
 */
#ifndef NN_ONNX_IO_H
#define NN_ONNX_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

/* TensorProto.DataType values we use. */
#define ONNX_FLOAT 1
#define ONNX_INT64 7

/* IR version written (ONNX 1.8, the first with opset 13); opsets read. */
#define ONNX_IR_VERSION 7
#define ONNX_MIN_OPSET 7
#define ONNX_MAX_OPSET 21

/* Deepest nesting of messages accepted (a model with a graph of nodes
 * with attributes holding tensors is 5 deep; subgraphs add more). */
#define ONNX_MAX_DEPTH 32

/* A protobuf-c allocator that refuses to hand out more than `left` bytes
 * in all (so a small file cannot make unpacking allocate gigabytes). */
typedef struct onnx_budget {
    size_t left;
} onnx_budget;

ProtobufCAllocator onnx_budget_allocator(onnx_budget *b);

/* Walks the wire format of a `d` message in data[0..size) with protobuf-c's
 * descriptors, without building anything: false if it nests messages
 * deeper than ONNX_MAX_DEPTH, uses groups or a length runs past the end
 * (protobuf-c's unpacking recurses once per level, so depth must be
 * bounded before it runs). */
bool onnx_wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                     size_t size);

#endif

/*
 * onnx_read.c - ONNX in: an ONNX graph converted into a sequential model
 * (docs/onnx.md).
 *
 * The file is unpacked by protobuf-c (after guard.c's depth check, within
 * an allocation budget), then the graph is walked as a chain from its one
 * input to its one output. Each node changes an abstract "current tensor":
 *   VEC  (N, F): features, with `perm` mapping our feature i to the ONNX
 *        feature perm[i] (not identity after flattening an NCHW tensor:
 *        ONNX flattens (C, H, W), we flatten (H, W, C));
 *   IMG  (N, C, H, W) or (N, H, W, C) on the ONNX side, (H, W, C) on ours.
 * Nodes that compute (Gemm, MatMul, Conv, pools, BatchNormalization,
 * Flatten, Dropout) become layers; activations are merged into the dense
 * or conv layer before them; layout nodes (Transpose, Reshape, Identity,
 * zero Pad) only change the abstract tensor. Weights are permuted into our
 * layout as they are copied. The model is built through nn.h at the end.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"
#include "onnx/onnx_io.h"

nn_onnx_options nn_onnx_defaults(void)
{
    return (nn_onnx_options){.mean = 0.0f, .std = 1.0f};
}

/* The ops converted (docs/onnx.md); anything else is refused by name. */
static const char *const supported_ops[] = {
    "Gemm", "MatMul", "Add", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
    "Softmax", "LogSoftmax", "Conv", "MaxPool", "AveragePool",
    "GlobalAveragePool", "Pad", "Flatten", "Reshape", "Transpose",
    "BatchNormalization", "Dropout", "Identity", "Constant",
    "Sub", "Div",   /* only as the input normalisation nn_onnx_save writes */
};

enum { VEC, IMG };

typedef struct layer_rec {
    nn_layer_spec spec;
    float *w;           /* (n) parameters in our layout, owned */
    size_t n;
    const char *node;   /* for messages */
    const char *op;
} layer_rec;

typedef struct reader {
    const Onnx__GraphProto *g;
    int opset;
    nn_error *err;
    /* constants: initializers and Constant nodes' values */
    const Onnx__TensorProto **ct;
    const char **cn;
    size_t nc;
    bool *used;                    /* (n_node) nodes walked */
    layer_rec l[NN_MAX_LAYERS];
    int nl;
    bool have_input;
    nn_shape input;                /* the model's input, at the first layer */
    /* the current tensor */
    int kind;
    bool nchw;                     /* IMG: ONNX side is (N, C, H, W) */
    int H, W, C, F;
    int *perm;                     /* VEC: (F) or NULL for identity */
    /* a Pad waiting for the Conv it belongs to */
    int pad[4];                    /* top, left, bottom, right */
    const Onnx__NodeProto *pad_node;
    int fuse;                      /* layer an activation may merge into */
    bool bias_open;                /* last layer's bias may come from Add */
    bool prologue_ok;              /* Sub / Div still allowed */
    bool have_sub, have_div;
    float mean, std;
    bool gap;                      /* IMG (C, 1, 1) is already our vector */
} reader;

static const char *node_name(const Onnx__NodeProto *n)
{
    return n->name && *n->name ? n->name : "(unnamed)";
}

/* "node 'NAME' (OP): message" */
static nn_status node_fail(reader *r, const Onnx__NodeProto *n,
                           nn_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static nn_status node_fail(reader *r, const Onnx__NodeProto *n,
                           nn_status code, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nn_fail(r->err, code, "node '%.80s' (%.40s): %s", node_name(n),
                   n->op_type ? n->op_type : "?", msg);
}

/* ------------------------------------------------------------ tensors */

/* Elements of t, or -1 if a dimension is negative or the product passes
 * NN_MAX_PARAMS (the check comes before anything is allocated). */
static int64_t tensor_elems(const Onnx__TensorProto *t)
{
    if (t->n_dims > 8)
        return -1;
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || t->dims[i] > (int64_t)NN_MAX_PARAMS)
            return -1;
        n *= t->dims[i];
        if (n > (int64_t)NN_MAX_PARAMS)
            return -1;
    }
    return n;
}

/* Checks that t is a FLOAT or INT64 tensor whose data is inside the file
 * and exactly as long as its dims say. */
static bool tensor_ok(const Onnx__TensorProto *t, int type, const char *name,
                      nn_error *err)
{
    if (t->has_data_location &&
        t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        nn_fail(err, NN_ERR_FORMAT, "tensor '%.80s': external data files "
                "are not supported (save the model with its weights inside)",
                name);
        return false;
    }
    if (t->n_external_data || t->segment) {
        nn_fail(err, NN_ERR_FORMAT, "tensor '%.80s': external or segmented "
                "data is not supported", name);
        return false;
    }
    int64_t n = tensor_elems(t);
    if (n < 0) {
        nn_fail(err, NN_ERR_LIMIT, "tensor '%.80s': its shape claims more "
                "than %llu elements", name,
                (unsigned long long)NN_MAX_PARAMS);
        return false;
    }
    if (t->data_type != type) {
        nn_fail(err, NN_ERR_FORMAT, "tensor '%.80s': data type %d, expected "
                "%s", name, (int)t->data_type,
                type == ONNX_FLOAT ? "float" : "int64");
        return false;
    }
    size_t es = type == ONNX_FLOAT ? 4 : 8;
    size_t have = t->has_raw_data ? t->raw_data.len / es
                  : type == ONNX_FLOAT ? t->n_float_data : t->n_int64_data;
    bool exact = t->has_raw_data ? t->raw_data.len == (size_t)n * es
                                 : have == (size_t)n;
    if (!exact || (t->has_raw_data && (t->n_float_data || t->n_int64_data))) {
        nn_fail(err, NN_ERR_FORMAT, "tensor '%.80s': its shape holds %lld "
                "values but its data does not", name, (long long)n);
        return false;
    }
    return true;
}

static float tensor_f(const Onnx__TensorProto *t, size_t i)
{
    if (!t->has_raw_data)
        return t->float_data[i];
    uint32_t u = nn_get_u32(t->raw_data.data + 4 * i);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int64_t tensor_i(const Onnx__TensorProto *t, size_t i)
{
    if (!t->has_raw_data)
        return t->int64_data[i];
    const uint8_t *p = t->raw_data.data + 8 * i;
    uint64_t u = (uint64_t)nn_get_u32(p) | (uint64_t)nn_get_u32(p + 4) << 32;
    return (int64_t)u;
}

static const Onnx__TensorProto *find_const(const reader *r, const char *name)
{
    if (!name || !*name)
        return NULL;
    for (size_t i = 0; i < r->nc; i++)
        if (!strcmp(r->cn[i], name))
            return r->ct[i];
    return NULL;
}

/* Input `k` of node n as a constant of `type` (already checked), or NULL
 * after filling err (`optional`: NULL without an error when absent). */
static const Onnx__TensorProto *const_in(reader *r, const Onnx__NodeProto *n,
                                         size_t k, int type, bool optional)
{
    if (k >= n->n_input || !*n->input[k]) {
        if (!optional)
            node_fail(r, n, NN_ERR_FORMAT, "input %zu is missing", k + 1);
        return NULL;
    }
    const Onnx__TensorProto *t = find_const(r, n->input[k]);
    if (!t) {
        node_fail(r, n, NN_ERR_FORMAT, "input '%.80s' must be a constant "
                  "(an initializer)", n->input[k]);
        return NULL;
    }
    nn_error e;
    if (!tensor_ok(t, type, n->input[k], &e)) {
        node_fail(r, n, e.code, "%s", e.msg);
        return NULL;
    }
    return t;
}

/* --------------------------------------------------------- attributes */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n,
                                        const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static int64_t attr_i(const Onnx__NodeProto *n, const char *name, int64_t d)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : d;
}

static float attr_f(const Onnx__NodeProto *n, const char *name, float d)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : d;
}

/* Copies up to `max` ints of attribute `name` into v; returns the count
 * (0 when absent), or -1 when there are more than max. */
static int attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *v,
                     int max)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a)
        return 0;
    if (a->n_ints > (size_t)max)
        return -1;
    for (size_t i = 0; i < a->n_ints; i++)
        v[i] = a->ints[i];
    return (int)a->n_ints;
}

/* true when attribute `name` is absent or the string `want` */
static bool attr_s_is(const Onnx__NodeProto *n, const char *name,
                      const char *want)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a || !a->has_s)
        return true;
    return a->s.len == strlen(want) && !memcmp(a->s.data, want, a->s.len);
}

/* ------------------------------------------------------------ layers */

static size_t cur_size(const reader *r)
{
    return r->kind == VEC ? (size_t)r->F
                          : (size_t)r->H * (size_t)r->W * (size_t)r->C;
}

/* Appends a layer with `n` parameters (zeroed); its array in *w. */
static nn_status emit(reader *r, const Onnx__NodeProto *n, nn_layer_spec s,
                      size_t np, float **w)
{
    if (r->nl >= NN_MAX_LAYERS)
        return node_fail(r, n, NN_ERR_LIMIT, "a model has at most %d layers",
                         NN_MAX_LAYERS);
    if (np > NN_MAX_PARAMS)
        return node_fail(r, n, NN_ERR_LIMIT, "too many parameters");
    if (!r->have_input) {
        if (r->kind == VEC && r->perm)
            return node_fail(r, n, NN_ERR_FORMAT, "unsupported input layout");
        r->input = r->kind == VEC ? nn_shape1(r->F)
                                  : nn_shape3(r->H, r->W, r->C);
        r->have_input = true;
    }
    layer_rec *l = &r->l[r->nl];
    l->spec = s;
    l->n = np;
    l->w = NULL;
    l->node = node_name(n);
    l->op = n->op_type;
    if (np && !(l->w = calloc(np, sizeof(float))))
        return node_fail(r, n, NN_ERR_NOMEM, "out of memory");
    if (w)
        *w = l->w;
    r->nl++;
    r->prologue_ok = false;
    r->bias_open = false;
    return NN_OK;
}

/* ONNX feature index of our feature i in the current VEC tensor. */
static size_t feat(const reader *r, size_t i)
{
    return r->perm ? (size_t)r->perm[i] : i;
}

/* Flatten of the current tensor into a VEC, as ONNX does it (a flatten
 * layer when the tensor is an image). */
static nn_status to_vec(reader *r, const Onnx__NodeProto *n)
{
    if (r->kind == VEC)
        return NN_OK;
    if (r->gap) {   /* after GlobalAveragePool: our layer made it a vector */
        r->kind = VEC;
        r->F = r->C;
        r->gap = false;
        return NN_OK;
    }
    size_t F = cur_size(r);
    if (F > NN_MAX_DIM)
        return node_fail(r, n, NN_ERR_LIMIT, "%zu features exceed %d", F,
                         NN_MAX_DIM);
    nn_status s = emit(r, n, nn_flatten(), 0, NULL);
    if (s != NN_OK)
        return s;
    free(r->perm);
    r->perm = NULL;
    if (r->nchw && r->C > 1 && (size_t)r->H * r->W > 1) {
        if (!(r->perm = malloc(sizeof(int) * F)))
            return node_fail(r, n, NN_ERR_NOMEM, "out of memory");
        for (int h = 0, i = 0; h < r->H; h++)
            for (int w = 0; w < r->W; w++)
                for (int c = 0; c < r->C; c++)
                    r->perm[i++] = (c * r->H + h) * r->W + w;
    }
    r->kind = VEC;
    r->F = (int)F;
    return NN_OK;
}

/* Merges activation a into the layer it can follow: the last dense or
 * conv layer, with only layers after it that commute with a monotonic
 * activation (max pooling, flatten, dropout). Softmax only right after. */
static nn_status merge_act(reader *r, const Onnx__NodeProto *n,
                           nn_activation a)
{
    int t = r->fuse;
    if (t < 0 || r->l[t].spec.activation != NN_ACT_LINEAR ||
        (a == NN_ACT_SOFTMAX && t != r->nl - 1))
        return node_fail(r, n, NN_ERR_FORMAT, "can only follow a Gemm, "
                         "MatMul or Conv (through MaxPool, Flatten or "
                         "Dropout) that has no activation yet");
    r->l[t].spec.activation = a;
    r->bias_open = false;
    return NN_OK;
}

/* -------------------------------------------------------- node handlers */

static nn_status op_gemm(reader *r, const Onnx__NodeProto *n, bool matmul)
{
    if (r->kind != VEC)
        return node_fail(r, n, NN_ERR_FORMAT, "needs a 2-D (N, features) "
                         "input; add a Flatten before it");
    if (n->n_input < 2 || strcmp(n->input[1], "") == 0 ||
        !find_const(r, n->input[1]))
        return node_fail(r, n, NN_ERR_FORMAT, "the weights (input 2) must be "
                         "a constant");
    const Onnx__TensorProto *B = const_in(r, n, 1, ONNX_FLOAT, false);
    if (!B)
        return r->err ? r->err->code : NN_ERR_FORMAT;
    const Onnx__TensorProto *C = NULL;
    int64_t transA = 0, transB = 0;
    float alpha = 1.0f, beta = 1.0f;
    if (!matmul) {
        transA = attr_i(n, "transA", 0);
        transB = attr_i(n, "transB", 0);
        alpha = attr_f(n, "alpha", 1.0f);
        beta = attr_f(n, "beta", 1.0f);
        if (n->n_input > 2 && *n->input[2] &&
            !(C = const_in(r, n, 2, ONNX_FLOAT, false)))
            return r->err ? r->err->code : NN_ERR_FORMAT;
    }
    if (transA)
        return node_fail(r, n, NN_ERR_FORMAT, "transA=1 is not supported");
    if (B->n_dims != 2)
        return node_fail(r, n, NN_ERR_FORMAT, "weights must be 2-D");
    int64_t K = transB ? B->dims[1] : B->dims[0];
    int64_t N = transB ? B->dims[0] : B->dims[1];
    if (K != r->F || N < 1 || N > NN_MAX_DIM)
        return node_fail(r, n, NN_ERR_SHAPE, "weights (%lld, %lld) do not "
                         "fit %d input features", (long long)B->dims[0],
                         (long long)B->dims[1], r->F);
    size_t nc = C ? (size_t)tensor_elems(C) : 0;
    if (C && !(nc == 1 || (nc == (size_t)N && C->dims[C->n_dims - 1] == N)))
        return node_fail(r, n, NN_ERR_SHAPE, "bias has %zu values for %lld "
                         "outputs", nc, (long long)N);
    float *w;
    size_t in = (size_t)K, out = (size_t)N;
    nn_status s = emit(r, n, nn_dense((int)N, NN_ACT_LINEAR),
                       in * out + out, &w);
    if (s != NN_OK)
        return s;
    for (size_t i = 0; i < in; i++) {
        size_t j = feat(r, i);
        for (size_t o = 0; o < out; o++) {
            float v = transB ? tensor_f(B, o * in + j)
                             : tensor_f(B, j * out + o);
            w[i * out + o] = alpha == 1.0f ? v : alpha * v;
        }
    }
    for (size_t o = 0; C && o < out; o++) {
        float v = tensor_f(C, nc == 1 ? 0 : o);
        w[in * out + o] = beta == 1.0f ? v : beta * v;
    }
    free(r->perm);
    r->perm = NULL;
    r->F = (int)N;
    r->fuse = r->nl - 1;
    r->bias_open = !C;
    return NN_OK;
}

/* Add: the bias of the MatMul / Gemm / Conv just before (which had none). */
static nn_status op_add(reader *r, const Onnx__NodeProto *n, const char *cur)
{
    if (n->n_input != 2)
        return node_fail(r, n, NN_ERR_FORMAT, "needs two inputs");
    size_t k = strcmp(n->input[0], cur) == 0 ? 1 : 0;
    if (!r->bias_open || r->nl == 0)
        return node_fail(r, n, NN_ERR_FORMAT, "only supported as the bias "
                         "of the MatMul, Gemm or Conv before it");
    const Onnx__TensorProto *t = const_in(r, n, k, ONNX_FLOAT, false);
    if (!t)
        return r->err ? r->err->code : NN_ERR_FORMAT;
    layer_rec *l = &r->l[r->nl - 1];
    size_t U = (size_t)l->spec.units, nt = (size_t)tensor_elems(t);
    /* (U), (1, U) for dense; (U, 1, 1), (1, U, 1, 1) for conv (NCHW) */
    bool ok = nt == U;
    if (ok && l->spec.kind == NN_LAYER_CONV2D)
        ok = (t->n_dims == 3 || t->n_dims == 4) &&
             t->dims[t->n_dims - 3] == (int64_t)U;
    else if (ok)
        ok = t->n_dims >= 1 && t->dims[t->n_dims - 1] == (int64_t)U;
    if (!ok)
        return node_fail(r, n, NN_ERR_SHAPE, "the bias does not have the "
                         "shape of the %zu outputs", U);
    float *b = l->w + (l->n - U);
    for (size_t o = 0; o < U; o++)
        b[o] = tensor_f(t, o);
    r->bias_open = false;
    return NN_OK;
}

/* Spatial attributes shared by Conv and the pools: square kernel k,
 * equal strides s, dilations 1, pads (top, left, bottom, right). */
static nn_status spatial(reader *r, const Onnx__NodeProto *n, int k_from_w,
                         int *k, int *s, int pads[4])
{
    int64_t v[8];
    int c = attr_ints(n, "kernel_shape", v, 8);
    if (c < 0 || (c && c != 2) || (c == 2 && v[0] != v[1]))
        return node_fail(r, n, NN_ERR_FORMAT, "only square 2-D kernels are "
                         "supported");
    if (c == 2)
        *k = v[0] < 1 || v[0] > 1024 ? -1 : (int)v[0];
    else
        *k = k_from_w;
    if (*k < 1 || (k_from_w && *k != k_from_w))
        return node_fail(r, n, NN_ERR_FORMAT, "invalid kernel_shape");
    c = attr_ints(n, "strides", v, 8);
    if (c < 0 || (c && c != 2) || (c == 2 && (v[0] != v[1] || v[0] < 1 ||
                                               v[0] > 1024)))
        return node_fail(r, n, NN_ERR_FORMAT, "only equal strides of 1..1024 "
                         "are supported");
    *s = c == 2 ? (int)v[0] : 1;
    c = attr_ints(n, "dilations", v, 8);
    if (c < 0 || (c && c != 2) || (c == 2 && (v[0] != 1 || v[1] != 1)))
        return node_fail(r, n, NN_ERR_FORMAT, "dilations are not supported");
    c = attr_ints(n, "pads", v, 8);
    if (c < 0 || (c && c != 4))
        return node_fail(r, n, NN_ERR_FORMAT, "pads must have 4 values");
    for (int i = 0; i < 4; i++) {
        int64_t p = c ? v[i] : 0;
        if (p < 0 || p > 1024)
            return node_fail(r, n, NN_ERR_FORMAT, "pads out of range");
        pads[i] = (int)p + r->pad[i];
    }
    memset(r->pad, 0, sizeof r->pad);
    r->pad_node = NULL;
    if (!attr_s_is(n, "auto_pad", "NOTSET") &&
        !attr_s_is(n, "auto_pad", "VALID")) {
        if (!attr_s_is(n, "auto_pad", "SAME_UPPER") || !k_from_w)
            return node_fail(r, n, NN_ERR_FORMAT, "only auto_pad NOTSET, "
                             "VALID (or SAME_UPPER for Conv) is supported");
        pads[0] = pads[1] = pads[2] = pads[3] = -1;   /* same */
    }
    if (r->kind != IMG || !r->nchw || r->gap)
        return node_fail(r, n, NN_ERR_FORMAT, "needs an NCHW image input "
                         "(a Transpose to NCHW first)");
    return NN_OK;
}

/* TensorFlow's "same" padding of one axis (what conv2d.c does). */
static void same_pads(int in, int k, int s, int *before, int *after)
{
    int out = (in + s - 1) / s;
    long total = (long)(out - 1) * s + k - in;
    if (total < 0)
        total = 0;
    *before = (int)(total / 2);
    *after = (int)(total - total / 2);
}

static nn_status op_conv(reader *r, const Onnx__NodeProto *n)
{
    const Onnx__TensorProto *W = const_in(r, n, 1, ONNX_FLOAT, false);
    if (!W)
        return r->err ? r->err->code : NN_ERR_FORMAT;
    if (W->n_dims != 4 || W->dims[2] != W->dims[3] || W->dims[2] < 1 ||
        W->dims[2] > 1024 || W->dims[0] < 1 || W->dims[0] > NN_MAX_DIM)
        return node_fail(r, n, NN_ERR_FORMAT, "weights must be (M, C, k, k)");
    if (attr_i(n, "group", 1) != 1)
        return node_fail(r, n, NN_ERR_FORMAT, "grouped convolutions are not "
                         "supported");
    int k, s, pads[4];
    nn_status st = spatial(r, n, (int)W->dims[2], &k, &s, pads);
    if (st != NN_OK)
        return st;
    if (W->dims[1] != r->C)
        return node_fail(r, n, NN_ERR_SHAPE, "weights take %lld channels, "
                         "the input has %d", (long long)W->dims[1], r->C);
    const Onnx__TensorProto *B = NULL;
    if (n->n_input > 2 && *n->input[2] &&
        !(B = const_in(r, n, 2, ONNX_FLOAT, false)))
        return r->err ? r->err->code : NN_ERR_FORMAT;
    int M = (int)W->dims[0], C = r->C;
    if (B && tensor_elems(B) != M)
        return node_fail(r, n, NN_ERR_SHAPE, "bias must have %d values", M);
    int t, l, b, rr;
    same_pads(r->H, k, s, &t, &b);
    same_pads(r->W, k, s, &l, &rr);
    nn_padding pad;
    if (pads[0] == -1 || (pads[0] == t && pads[1] == l && pads[2] == b &&
                          pads[3] == rr && (t || l || b || rr)))
        pad = NN_PAD_SAME;
    else if (!pads[0] && !pads[1] && !pads[2] && !pads[3])
        pad = NN_PAD_VALID;
    else
        return node_fail(r, n, NN_ERR_FORMAT, "padding (%d, %d, %d, %d) is "
                         "neither none nor TensorFlow's \"same\" for a %dx%d "
                         "input", pads[0], pads[1], pads[2], pads[3], r->H,
                         r->W);
    if (pad == NN_PAD_VALID && (r->H < k || r->W < k))
        return node_fail(r, n, NN_ERR_SHAPE, "kernel %d does not fit %dx%d",
                         k, r->H, r->W);
    size_t K = (size_t)k * k * (size_t)C;
    float *w;
    st = emit(r, n, nn_conv2d(M, k, s, pad, NN_ACT_LINEAR),
              K * (size_t)M + (size_t)M, &w);
    if (st != NN_OK)
        return st;
    /* ours (ky, kx, c, f) <- ONNX (f, c, ky, kx) */
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++)
            for (int c = 0; c < C; c++)
                for (int f = 0; f < M; f++)
                    w[(((size_t)ky * k + kx) * C + c) * M + f] = tensor_f(
                        W, (((size_t)f * C + c) * k + ky) * k + kx);
    for (int f = 0; B && f < M; f++)
        w[K * M + f] = tensor_f(B, (size_t)f);
    if (pad == NN_PAD_SAME) {
        r->H = (r->H + s - 1) / s;
        r->W = (r->W + s - 1) / s;
    } else {
        r->H = (r->H - k) / s + 1;
        r->W = (r->W - k) / s + 1;
    }
    r->C = M;
    r->fuse = r->nl - 1;
    r->bias_open = !B;
    return NN_OK;
}

static nn_status op_pool(reader *r, const Onnx__NodeProto *n, bool max,
                         bool global)
{
    int k, s, pads[4];
    nn_status st;
    if (global) {   /* GlobalAveragePooling2D: (H, W, C) -> (C) */
        if (r->kind != IMG || !r->nchw)
            return node_fail(r, n, NN_ERR_FORMAT, "needs an NCHW image input");
        if ((st = emit(r, n, nn_global_avgpool2d(), 0, NULL)) != NN_OK)
            return st;
        r->H = r->W = 1;   /* ONNX's (N, C, 1, 1) is our (C) */
        r->gap = true;
        r->fuse = -1;
        return NN_OK;
    } else {
        if ((st = spatial(r, n, 0, &k, &s, pads)) != NN_OK)
            return st;
        if (pads[0] || pads[1] || pads[2] || pads[3])
            return node_fail(r, n, NN_ERR_FORMAT, "padded pooling is not "
                             "supported");
        if (n->n_output > 1 && *n->output[1])
            return node_fail(r, n, NN_ERR_FORMAT, "the Indices output is "
                             "not supported");
        if (attr_i(n, "storage_order", 0) != 0)
            return node_fail(r, n, NN_ERR_FORMAT, "storage_order=1 is not "
                             "supported");
        if (r->H < k || r->W < k)
            return node_fail(r, n, NN_ERR_SHAPE, "pool %d does not fit "
                             "%dx%d", k, r->H, r->W);
        if (attr_i(n, "ceil_mode", 0) && ((r->H - k) % s || (r->W - k) % s))
            return node_fail(r, n, NN_ERR_FORMAT, "ceil_mode=1 is not "
                             "supported here");
    }
    st = emit(r, n, max ? nn_maxpool2d(k, s) : nn_avgpool2d(k, s), 0, NULL);
    if (st != NN_OK)
        return st;
    r->H = (r->H - k) / s + 1;
    r->W = (r->W - k) / s + 1;
    if (!max)
        r->fuse = -1;   /* an average does not commute with activations */
    return NN_OK;
}

static nn_status op_batchnorm(reader *r, const Onnx__NodeProto *n)
{
    if (r->kind == IMG && !r->nchw)
        return node_fail(r, n, NN_ERR_FORMAT, "needs an NCHW image input");
    if (attr_i(n, "training_mode", 0) || attr_i(n, "spatial", 1) != 1)
        return node_fail(r, n, NN_ERR_FORMAT, "training mode is not "
                         "supported");
    for (size_t i = 1; i < n->n_output; i++)
        if (*n->output[i])
            return node_fail(r, n, NN_ERR_FORMAT, "only the first output "
                             "is supported");
    int C = r->kind == IMG ? r->C : r->F;
    const Onnx__TensorProto *t[4];
    for (int i = 0; i < 4; i++) {
        if (!(t[i] = const_in(r, n, (size_t)i + 1, ONNX_FLOAT, false)))
            return r->err ? r->err->code : NN_ERR_FORMAT;
        if (tensor_elems(t[i]) != C)
            return node_fail(r, n, NN_ERR_SHAPE, "input %d must have %d "
                             "values", i + 2, C);
    }
    float eps = attr_f(n, "epsilon", 1e-5f), mom = attr_f(n, "momentum",
                                                           0.9f);
    if (!(eps >= 0.0f && eps < 1.0f) || !(mom >= 0.0f && mom < 1.0f))
        return node_fail(r, n, NN_ERR_FORMAT, "epsilon or momentum out of "
                         "range");
    nn_layer_spec sp = nn_batchnorm();
    sp.rate = mom;
    float *w;
    nn_status st = emit(r, n, sp, 4 * (size_t)C, &w);
    if (st != NN_OK)
        return st;
    const float our_eps = 1e-3f;   /* batchnorm.c, Keras' */
    for (int i = 0; i < C; i++) {
        size_t j = r->kind == VEC ? feat(r, (size_t)i) : (size_t)i;
        float g = tensor_f(t[0], j), var = tensor_f(t[3], j);
        if (!(var >= 0.0f))
            return node_fail(r, n, NN_ERR_FORMAT, "negative variance");
        if (eps != our_eps)   /* same gamma / sqrt(var + eps) with ours */
            g = (float)(g * sqrt(((double)var + our_eps) /
                                 ((double)var + eps)));
        w[i] = g;
        w[C + i] = tensor_f(t[1], j);
        w[2 * C + i] = tensor_f(t[2], j);
        w[3 * C + i] = var;
    }
    r->fuse = -1;
    return NN_OK;
}

static nn_status op_dropout(reader *r, const Onnx__NodeProto *n)
{
    float rate = attr_f(n, "ratio", 0.5f);
    if (n->n_input > 1 && *n->input[1]) {
        const Onnx__TensorProto *t = const_in(r, n, 1, ONNX_FLOAT, false);
        if (!t)
            return r->err ? r->err->code : NN_ERR_FORMAT;
        if (tensor_elems(t) != 1)
            return node_fail(r, n, NN_ERR_FORMAT, "ratio must be a scalar");
        rate = tensor_f(t, 0);
    }
    if (n->n_input > 2 && *n->input[2])
        return node_fail(r, n, NN_ERR_FORMAT, "training_mode is not "
                         "supported");
    if (n->n_output > 1 && *n->output[1])
        return node_fail(r, n, NN_ERR_FORMAT, "the mask output is not "
                         "supported");
    if (!(rate >= 0.0f && rate < 1.0f))
        return node_fail(r, n, NN_ERR_FORMAT, "ratio must be in [0, 1)");
    int fuse = r->fuse;
    bool bias = r->bias_open;
    nn_status st = emit(r, n, nn_dropout(rate), 0, NULL);
    r->fuse = fuse;   /* transparent to activations */
    r->bias_open = false;
    (void)bias;
    return st;
}

/* Pad: zero constant padding, kept for the Conv that follows. */
static nn_status op_pad(reader *r, const Onnx__NodeProto *n)
{
    int64_t p[16];
    int c;
    if (!attr_s_is(n, "mode", "constant"))
        return node_fail(r, n, NN_ERR_FORMAT, "only mode=constant is "
                         "supported");
    if (r->opset < 11) {
        if ((c = attr_ints(n, "pads", p, 16)) < 0)
            return node_fail(r, n, NN_ERR_FORMAT, "too many pads");
        if (attr_f(n, "value", 0.0f) != 0.0f)
            return node_fail(r, n, NN_ERR_FORMAT, "only zero padding is "
                             "supported");
    } else {
        const Onnx__TensorProto *t = const_in(r, n, 1, ONNX_INT64, false);
        if (!t)
            return r->err ? r->err->code : NN_ERR_FORMAT;
        int64_t e = tensor_elems(t);
        if (e > 16)
            return node_fail(r, n, NN_ERR_FORMAT, "too many pads");
        c = (int)e;
        for (int i = 0; i < c; i++)
            p[i] = tensor_i(t, (size_t)i);
        if (n->n_input > 3 && *n->input[3])
            return node_fail(r, n, NN_ERR_FORMAT, "axes are not supported");
        if (n->n_input > 2 && *n->input[2]) {
            const Onnx__TensorProto *v = const_in(r, n, 2, ONNX_FLOAT, false);
            if (!v)
                return r->err ? r->err->code : NN_ERR_FORMAT;
            if (tensor_elems(v) > 1 || (tensor_elems(v) == 1 &&
                                        tensor_f(v, 0) != 0.0f))
                return node_fail(r, n, NN_ERR_FORMAT, "only zero padding is "
                                 "supported");
        }
    }
    int rank = r->kind == VEC ? 2 : 4;
    if (c != 2 * rank)
        return node_fail(r, n, NN_ERR_FORMAT, "needs %d pads", 2 * rank);
    bool zero = true;
    for (int i = 0; i < c; i++) {
        if (p[i] < 0 || p[i] > 1024)
            return node_fail(r, n, NN_ERR_FORMAT, "pads out of range");
        zero &= p[i] == 0;
    }
    if (zero)
        return NN_OK;   /* PyTorch writes one before every AveragePool */
    if (r->kind != IMG || !r->nchw || p[0] || p[1] || p[4] || p[5])
        return node_fail(r, n, NN_ERR_FORMAT, "only spatial padding of an "
                         "NCHW image is supported");
    r->pad[0] += (int)p[2];
    r->pad[1] += (int)p[3];
    r->pad[2] += (int)p[6];
    r->pad[3] += (int)p[7];
    r->pad_node = n;
    return NN_OK;
}

static nn_status op_flatten(reader *r, const Onnx__NodeProto *n)
{
    if (attr_i(n, "axis", 1) != 1)
        return node_fail(r, n, NN_ERR_FORMAT, "only axis=1 is supported");
    return to_vec(r, n);
}

static nn_status op_reshape(reader *r, const Onnx__NodeProto *n)
{
    const Onnx__TensorProto *t = const_in(r, n, 1, ONNX_INT64, false);
    if (!t)
        return r->err ? r->err->code : NN_ERR_FORMAT;
    int64_t e = tensor_elems(t), v[4];
    if (e != 2 && e != 4)
        return node_fail(r, n, NN_ERR_FORMAT, "only reshapes to 2-D or 4-D "
                         "are supported");
    for (int i = 0; i < e; i++)
        v[i] = tensor_i(t, (size_t)i);
    int64_t S = (int64_t)cur_size(r);
    if (e == 2) {
        bool ok = v[1] == S ? v[0] >= -1 : v[1] == -1 && v[0] >= 0;
        if (!ok)
            return node_fail(r, n, NN_ERR_SHAPE, "shape (%lld, %lld) is not "
                             "(N, %lld)", (long long)v[0], (long long)v[1],
                             (long long)S);
        return to_vec(r, n);
    }
    /* to (N, C, H, W): the input itself, as an NCHW image */
    int64_t prod = 1;
    int unknown = -1;
    for (int i = 1; i < 4; i++) {
        if (v[i] == -1 && unknown < 0)
            unknown = i;
        else if (v[i] < 1 || v[i] > NN_MAX_DIM)
            return node_fail(r, n, NN_ERR_SHAPE, "invalid shape");
        else
            prod *= v[i];
    }
    if (unknown > 0) {
        if (S % prod)
            return node_fail(r, n, NN_ERR_SHAPE, "invalid shape");
        v[unknown] = S / prod;
        prod = S;
    }
    if (prod != S || v[0] < -1 || v[unknown > 0 ? unknown : 1] > NN_MAX_DIM)
        return node_fail(r, n, NN_ERR_SHAPE, "shape does not hold %lld "
                         "values", (long long)S);
    if (r->kind == IMG && r->nchw && v[1] == r->C && v[2] == r->H &&
        v[3] == r->W)
        return NN_OK;
    if (r->gap)
        return node_fail(r, n, NN_ERR_FORMAT, "unsupported reshape after "
                         "GlobalAveragePool");
    if (r->nl || r->kind != VEC || r->perm)
        return node_fail(r, n, NN_ERR_FORMAT, "reshaping into an image is "
                         "only supported at the input");
    r->kind = IMG;
    r->nchw = true;
    r->C = (int)v[1];
    r->H = (int)v[2];
    r->W = (int)v[3];
    return NN_OK;
}

static nn_status op_transpose(reader *r, const Onnx__NodeProto *n)
{
    int64_t p[8];
    int c = attr_ints(n, "perm", p, 8);
    if (r->kind == VEC) {
        if (c == 2 && p[0] == 0 && p[1] == 1)
            return NN_OK;
        return node_fail(r, n, NN_ERR_FORMAT, "only the identity is "
                         "supported on 2-D tensors");
    }
    if (c == 4 && p[0] == 0 && p[1] == 1 && p[2] == 2 && p[3] == 3)
        return NN_OK;
    if (r->gap && c == 4)   /* (N, C, 1, 1) in any order: our (C) */
        return NN_OK;
    if (c == 4 && p[0] == 0 && p[1] == 3 && p[2] == 1 && p[3] == 2 &&
        !r->nchw) {
        r->nchw = true;
        return NN_OK;
    }
    if (c == 4 && p[0] == 0 && p[1] == 2 && p[2] == 3 && p[3] == 1 &&
        r->nchw) {
        r->nchw = false;
        return NN_OK;
    }
    return node_fail(r, n, NN_ERR_FORMAT, "only NHWC <-> NCHW transposes "
                     "are supported");
}

static nn_status op_softmax(reader *r, const Onnx__NodeProto *n)
{
    int rank = r->kind == VEC ? 2 : 4;
    int64_t axis = attr_i(n, "axis", r->opset >= 13 ? -1 : 1);
    if (axis < 0)
        axis += rank;
    bool ok = r->kind == VEC ? axis == 1
              : r->opset >= 13 ? axis == (r->nchw ? 1 : 3)
                               : (r->H == 1 && r->W == 1 && axis == 1);
    if (!ok)
        return node_fail(r, n, NN_ERR_FORMAT, "only a softmax over the "
                         "features or channels is supported");
    return merge_act(r, n, NN_ACT_SOFTMAX);
}

/* Sub / Div by a scalar straight after the input: its normalisation. */
static nn_status op_norm(reader *r, const Onnx__NodeProto *n, bool div,
                         const char *cur)
{
    if (!r->prologue_ok || (div ? r->have_div : r->have_sub || r->have_div) ||
        n->n_input != 2 || strcmp(n->input[0], cur) != 0)
        return node_fail(r, n, NN_ERR_FORMAT, "only supported as the input "
                         "normalisation, (x - mean) / std, before any layer");
    const Onnx__TensorProto *t = const_in(r, n, 1, ONNX_FLOAT, false);
    if (!t)
        return r->err ? r->err->code : NN_ERR_FORMAT;
    if (tensor_elems(t) != 1)
        return node_fail(r, n, NN_ERR_FORMAT, "needs a scalar");
    if (div) {
        r->std = tensor_f(t, 0);
        r->have_div = true;
    } else {
        r->mean = tensor_f(t, 0);
        r->have_sub = true;
    }
    return NN_OK;
}

static nn_status op(reader *r, const Onnx__NodeProto *n, const char *cur)
{
    const char *o = n->op_type;
    if (r->pad_node && strcmp(o, "Conv") && strcmp(o, "Identity"))
        return node_fail(r, r->pad_node, NN_ERR_FORMAT, "non-zero padding "
                         "is only supported before a Conv");
    if (strcmp(o, "Add") && strcmp(o, "Sub") && strcmp(o, "Div") &&
        (n->n_input < 1 || strcmp(n->input[0], cur) != 0))
        return node_fail(r, n, NN_ERR_FORMAT, "its first input must be the "
                         "previous layer's output");
    if (!strcmp(o, "Identity"))
        return NN_OK;
    if (!strcmp(o, "Gemm"))
        return op_gemm(r, n, false);
    if (!strcmp(o, "MatMul"))
        return op_gemm(r, n, true);
    if (!strcmp(o, "Add"))
        return op_add(r, n, cur);
    if (!strcmp(o, "Sub"))
        return op_norm(r, n, false, cur);
    if (!strcmp(o, "Div"))
        return op_norm(r, n, true, cur);
    if (!strcmp(o, "Relu")) {
        if (r->fuse >= 0 && r->l[r->fuse].spec.activation == NN_ACT_LINEAR)
            return merge_act(r, n, NN_ACT_RELU);
        /* after batch normalization, say: a leaky relu with alpha 0 */
        nn_status st = emit(r, n, nn_leaky_relu(0.0f), 0, NULL);
        r->fuse = -1;
        return st;
    }
    if (!strcmp(o, "Sigmoid"))
        return merge_act(r, n, NN_ACT_SIGMOID);
    if (!strcmp(o, "Tanh"))
        return merge_act(r, n, NN_ACT_TANH);
    if (!strcmp(o, "LeakyRelu")) {
        float alpha = attr_f(n, "alpha", 0.01f);
        if (alpha == 0.0f && r->fuse >= 0 &&
            r->l[r->fuse].spec.activation == NN_ACT_LINEAR)
            return merge_act(r, n, NN_ACT_RELU);
        if (!(alpha >= 0.0f && alpha < 1.0f))
            return node_fail(r, n, NN_ERR_FORMAT, "alpha must be in [0, 1)");
        nn_status st = emit(r, n, nn_leaky_relu(alpha), 0, NULL);
        r->fuse = -1;
        return st;
    }
    if (!strcmp(o, "Softmax") || !strcmp(o, "LogSoftmax"))
        return op_softmax(r, n);
    if (!strcmp(o, "Conv"))
        return op_conv(r, n);
    if (!strcmp(o, "MaxPool"))
        return op_pool(r, n, true, false);
    if (!strcmp(o, "AveragePool"))
        return op_pool(r, n, false, false);
    if (!strcmp(o, "GlobalAveragePool"))
        return op_pool(r, n, false, true);
    if (!strcmp(o, "Pad"))
        return op_pad(r, n);
    if (!strcmp(o, "Flatten"))
        return op_flatten(r, n);
    if (!strcmp(o, "Reshape"))
        return op_reshape(r, n);
    if (!strcmp(o, "Transpose"))
        return op_transpose(r, n);
    if (!strcmp(o, "BatchNormalization"))
        return op_batchnorm(r, n);
    if (!strcmp(o, "Dropout"))
        return op_dropout(r, n);
    return node_fail(r, n, NN_ERR_FORMAT, "unsupported op");
}

/* ------------------------------------------------------------- graph */

static bool is_supported(const Onnx__NodeProto *n)
{
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return false;
    for (size_t i = 0; i < sizeof supported_ops / sizeof *supported_ops; i++)
        if (n->op_type && !strcmp(n->op_type, supported_ops[i]))
            return true;
    return false;
}

/* The graph's one runtime input (not an initializer) and its shape. */
static nn_status graph_input(reader *r, const Onnx__ValueInfoProto **out)
{
    const Onnx__GraphProto *g = r->g;
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < g->n_input; i++) {
        const char *nm = g->input[i]->name;
        bool init = false;
        for (size_t j = 0; j < g->n_initializer && !init; j++)
            init = nm && g->initializer[j]->name &&
                   !strcmp(nm, g->initializer[j]->name);
        if (init)
            continue;
        if (in)
            return nn_fail(r->err, NN_ERR_FORMAT, "the graph has more than "
                           "one input");
        in = g->input[i];
    }
    if (!in || !in->name || !*in->name)
        return nn_fail(r->err, NN_ERR_FORMAT, "the graph has no input");
    const Onnx__TypeProto *tp = in->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !tp->tensor_type->has_elem_type ||
        tp->tensor_type->elem_type != ONNX_FLOAT || !tp->tensor_type->shape)
        return nn_fail(r->err, NN_ERR_FORMAT, "input '%.80s': must be a "
                       "float tensor of known shape", in->name);
    const Onnx__TensorShapeProto *sh = tp->tensor_type->shape;
    if (sh->n_dim < 2 || sh->n_dim > 4)
        return nn_fail(r->err, NN_ERR_FORMAT, "input '%.80s': needs 2 to 4 "
                       "dimensions, (N, F), (N, H, W) or (N, C, H, W) / "
                       "(N, H, W, C)", in->name);
    int d[4] = {0, 1, 1, 1};
    size_t total = 1;
    for (size_t i = 1; i < sh->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = sh->dim[i];
        if (dm->value_case !=
                ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
            dm->dim_value < 1 || dm->dim_value > NN_MAX_DIM)
            return nn_fail(r->err, NN_ERR_FORMAT, "input '%.80s': dimension "
                           "%zu must be a number in 1..%d", in->name, i + 1,
                           NN_MAX_DIM);
        d[i] = (int)dm->dim_value;
        total *= (size_t)d[i];
    }
    if (total > NN_MAX_SAMPLE_SIZE)
        return nn_fail(r->err, NN_ERR_LIMIT, "input '%.80s': too large",
                       in->name);
    if (sh->n_dim == 2) {
        r->kind = VEC;
        r->F = d[1];
    } else if (sh->n_dim == 3) {   /* (N, H, W): one channel */
        r->kind = IMG;
        r->nchw = false;
        r->H = d[1], r->W = d[2], r->C = 1;
    } else {
        /* NHWC when the first node turns it into NCHW, or when it is
         * flattened first and its last dimension is the smaller */
        const Onnx__NodeProto *first = NULL;
        const char *v = in->name;
        for (int hops = 0; v && hops < 4; hops++) {   /* past Sub, Div */
            first = NULL;
            for (size_t i = 0; i < g->n_node && !first; i++)
                for (size_t j = 0; j < g->node[i]->n_input; j++)
                    if (!strcmp(g->node[i]->input[j], v))
                        first = g->node[i];
            v = first && first->op_type && first->n_output &&
                        (!strcmp(first->op_type, "Sub") ||
                         !strcmp(first->op_type, "Div") ||
                         !strcmp(first->op_type, "Identity"))
                    ? first->output[0]
                    : NULL;
        }
        int64_t p[4];
        bool nhwc = first && first->op_type &&
                    !strcmp(first->op_type, "Transpose") &&
                    attr_ints(first, "perm", p, 4) == 4 && p[0] == 0 &&
                    p[1] == 3 && p[2] == 1 && p[3] == 2;
        if (!nhwc && first && first->op_type &&
            (!strcmp(first->op_type, "Flatten") ||
             !strcmp(first->op_type, "Reshape")))
            nhwc = d[3] < d[1];   /* (N, 28, 28, 1), not (N, 1, 28, 28) */
        r->kind = IMG;
        r->nchw = !nhwc;
        if (nhwc)
            r->H = d[1], r->W = d[2], r->C = d[3];
        else
            r->C = d[1], r->H = d[2], r->W = d[3];
    }
    *out = in;
    return NN_OK;
}

static nn_status collect_constants(reader *r)
{
    const Onnx__GraphProto *g = r->g;
    size_t n = g->n_initializer;
    for (size_t i = 0; i < g->n_node; i++)
        n += g->node[i]->op_type && !strcmp(g->node[i]->op_type, "Constant");
    r->ct = calloc(n ? n : 1, sizeof *r->ct);
    r->cn = calloc(n ? n : 1, sizeof *r->cn);
    if (!r->ct || !r->cn)
        return nn_fail(r->err, NN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < g->n_initializer; i++) {
        if (!g->initializer[i]->name || !*g->initializer[i]->name)
            return nn_fail(r->err, NN_ERR_FORMAT, "an initializer has no "
                           "name");
        r->ct[r->nc] = g->initializer[i];
        r->cn[r->nc++] = g->initializer[i]->name;
    }
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *nd = g->node[i];
        if (!nd->op_type || strcmp(nd->op_type, "Constant"))
            continue;
        const Onnx__AttributeProto *a = attr(nd, "value");
        if (!a || !a->t || nd->n_attribute != 1 || nd->n_output != 1 ||
            !*nd->output[0])
            return node_fail(r, nd, NN_ERR_FORMAT, "only a 'value' tensor "
                             "is supported");
        r->ct[r->nc] = a->t;
        r->cn[r->nc++] = nd->output[0];
    }
    return NN_OK;
}

static nn_status walk(reader *r)
{
    const Onnx__GraphProto *g = r->g;
    if (g->n_node > NN_MAX_ONNX_NODES || g->n_initializer > NN_MAX_ONNX_NODES)
        return nn_fail(r->err, NN_ERR_LIMIT, "the graph has more than %d "
                       "nodes or initializers", NN_MAX_ONNX_NODES);
    if (g->n_sparse_initializer)
        return nn_fail(r->err, NN_ERR_FORMAT, "sparse initializers are not "
                       "supported");
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (!is_supported(n))
            return node_fail(r, n, NN_ERR_FORMAT, "unsupported op%s%s",
                             n->domain && *n->domain ? " in domain " : "",
                             n->domain && *n->domain ? n->domain : "");
        if (n->n_output < 1 || !*n->output[0])
            return node_fail(r, n, NN_ERR_FORMAT, "has no output");
        for (size_t j = 0; j < i; j++)   /* SSA: one writer per value */
            for (size_t k = 0; k < g->node[j]->n_output; k++)
                if (!strcmp(g->node[j]->output[k], n->output[0]))
                    return node_fail(r, n, NN_ERR_FORMAT, "value '%.80s' is "
                                     "written by two nodes (a cycle?)",
                                     n->output[0]);
    }
    if (g->n_output != 1 || !g->output[0]->name)
        return nn_fail(r->err, NN_ERR_FORMAT, "the graph must have exactly "
                       "one output");
    nn_status s = collect_constants(r);
    const Onnx__ValueInfoProto *in = NULL;
    if (s != NN_OK || (s = graph_input(r, &in)) != NN_OK)
        return s;
    if (!(r->used = calloc(g->n_node ? g->n_node : 1, sizeof *r->used)))
        return nn_fail(r->err, NN_ERR_NOMEM, "out of memory");
    const char *cur = in->name;
    for (;;) {
        const Onnx__NodeProto *next = NULL;
        size_t at = 0;
        for (size_t i = 0; i < g->n_node; i++) {
            const Onnx__NodeProto *n = g->node[i];
            if (!strcmp(n->op_type, "Constant"))
                continue;
            bool uses = false;
            for (size_t j = 0; j < n->n_input; j++)
                uses |= !strcmp(n->input[j], cur);
            if (!uses)
                continue;
            if (next)
                return node_fail(r, n, NN_ERR_FORMAT, "the graph branches at "
                                 "'%.80s'; only a chain of layers is "
                                 "supported", cur);
            next = n;
            at = i;
        }
        if (!next)
            break;
        if (r->used[at])
            return node_fail(r, next, NN_ERR_FORMAT, "the graph has a cycle");
        r->used[at] = true;
        if ((s = op(r, next, cur)) != NN_OK)
            return s;
        cur = next->output[0];
    }
    for (size_t i = 0; i < g->n_node; i++)
        if (!r->used[i] && strcmp(g->node[i]->op_type, "Constant"))
            return node_fail(r, g->node[i], NN_ERR_FORMAT, "not on the path "
                             "from the input to the output");
    if (strcmp(cur, g->output[0]->name))
        return nn_fail(r->err, NN_ERR_FORMAT, "output '%.80s' is not computed "
                       "from the input", g->output[0]->name);
    if (r->pad_node)
        return node_fail(r, r->pad_node, NN_ERR_FORMAT, "padding at the end "
                         "is not supported");
    if (r->nl == 0)
        return nn_fail(r->err, NN_ERR_FORMAT, "the graph has no layers");
    if ((r->kind == VEC && r->perm) ||
        (r->kind == IMG && r->nchw && r->C > 1 && r->H * r->W > 1))
        return nn_fail(r->err, NN_ERR_FORMAT, "output '%.80s': its layout "
                       "(NCHW) cannot be kept; end in a Flatten + Gemm or "
                       "an NHWC Transpose", cur);
    return NN_OK;
}

/* Builds the model from the layer records (the library checks them). */
static nn_model *build(reader *r, const nn_onnx_options *opts)
{
    nn_model *m = nn_model_new(r->input);
    if (!m) {
        nn_fail(r->err, NN_ERR_FORMAT, "input shape out of range");
        return NULL;
    }
    nn_error e;
    for (int i = 0; i < r->nl; i++)
        if (nn_model_add(m, r->l[i].spec, &e) != NN_OK) {
            nn_fail(r->err, e.code, "node '%.80s' (%.40s): %s", r->l[i].node,
                    r->l[i].op, e.msg);
            nn_model_free(m);
            return NULL;
        }
    nn_rng rng;
    nn_rng_seed(&rng, 0);
    if (nn_model_init(m, &rng, r->err) != NN_OK) {
        nn_model_free(m);
        return NULL;
    }
    float *p = nn_model_params(m);
    for (int i = 0; i < r->nl; i++) {
        if (nn_model_layer_param_count(m, i) != r->l[i].n) {
            nn_fail(r->err, NN_ERR_SHAPE, "node '%.80s' (%.40s): parameter "
                    "count does not match", r->l[i].node, r->l[i].op);
            nn_model_free(m);
            return NULL;
        }
        for (size_t j = 0; j < r->l[i].n; j++) {
            if (!isfinite(r->l[i].w[j])) {
                nn_fail(r->err, NN_ERR_FORMAT, "node '%.80s' (%.40s): "
                        "weights contain NaN or infinity", r->l[i].node,
                        r->l[i].op);
                nn_model_free(m);
                return NULL;
            }
            *p++ = r->l[i].w[j];
        }
    }
    float mean = r->mean, sd = r->std;
    if (opts->mean != 0.0f || opts->std != 1.0f) {
        if (r->have_sub || r->have_div) {
            nn_fail(r->err, NN_ERR_ARG, "the graph normalises its input "
                    "itself; no other normalisation can be given");
            nn_model_free(m);
            return NULL;
        }
        mean = opts->mean, sd = opts->std;
    }
    if (nn_model_set_input_norm(m, mean, sd, &e) != NN_OK) {
        nn_fail(r->err, e.code, "%s", e.msg);
        nn_model_free(m);
        return NULL;
    }
    nn_layer_spec last = r->l[r->nl - 1].spec;
    bool softmax = last.kind == NN_LAYER_DENSE &&
                   last.activation == NN_ACT_SOFTMAX;
    if (nn_model_compile(m, softmax ? NN_LOSS_CATEGORICAL_CROSSENTROPY
                                    : NN_LOSS_MSE,
                         nn_rmsprop(), r->err) != NN_OK) {
        nn_model_free(m);
        return NULL;
    }
    return m;
}

nn_model *nn_onnx_load_mem(const void *data, size_t size,
                           const nn_onnx_options *opts, nn_error *err)
{
    nn_onnx_options def = nn_onnx_defaults();
    if (!opts)
        opts = &def;
    if (size > NN_MAX_ONNX_BYTES) {
        nn_fail(err, NN_ERR_LIMIT, "ONNX file larger than %u bytes",
                NN_MAX_ONNX_BYTES);
        return NULL;
    }
    if (!onnx_wire_check(&onnx__model_proto__descriptor, data, size)) {
        nn_fail(err, NN_ERR_FORMAT, "not an ONNX model (damaged, truncated "
                "or nested more than %d deep)", ONNX_MAX_DEPTH);
        return NULL;
    }
    /* protobuf-c's structures for what the file holds, with room to spare;
     * a file of many tiny messages runs out of budget instead of memory */
    onnx_budget bud = {.left = 2 * size + ((size_t)64 << 20)};
    ProtobufCAllocator al = onnx_budget_allocator(&bud);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(&al, size, data);
    if (!mp) {
        nn_fail(err, bud.left < size ? NN_ERR_LIMIT : NN_ERR_FORMAT,
                bud.left < size ? "ONNX file needs too much memory to read"
                                : "not an ONNX model (the protobuf does not "
                                  "decode)");
        return NULL;
    }
    reader r = {.err = err, .fuse = -1, .prologue_ok = true, .std = 1.0f};
    nn_model *m = NULL;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if ((!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) &&
            o->has_version)
            r.opset = o->version > 1000 ? 1000 : (int)o->version;
    }
    if (!mp->graph)
        nn_fail(err, NN_ERR_FORMAT, "the ONNX model has no graph");
    else if (r.opset < ONNX_MIN_OPSET || r.opset > ONNX_MAX_OPSET)
        nn_fail(err, NN_ERR_FORMAT, "ONNX opset %d is not supported (%d..%d)",
                r.opset, ONNX_MIN_OPSET, ONNX_MAX_OPSET);
    else {
        r.g = mp->graph;
        if (walk(&r) == NN_OK)
            m = build(&r, opts);
    }
    for (int i = 0; i < r.nl; i++)
        free(r.l[i].w);
    free(r.perm);
    free(r.ct);
    free(r.cn);
    free(r.used);
    onnx__model_proto__free_unpacked(mp, &al);
    return m;
}

nn_model *nn_onnx_load(const char *path, const nn_onnx_options *opts,
                       nn_error *err)
{
    void *buf;
    size_t size;
    if (nn_read_file(path, NN_MAX_ONNX_BYTES, &buf, &size, err) != NN_OK)
        return NULL;
    nn_error e2;
    nn_model *m = nn_onnx_load_mem(buf, size, opts, &e2);
    free(buf);
    if (!m)
        nn_fail(err, e2.code, "%s: %s", path, e2.msg);
    return m;
}

/*
 * onnx_write.c - ONNX out: a sequential model as an ONNX graph, opset
 * NN_ONNX_OPSET (docs/onnx.md), packed by protobuf-c.
 *
 * The input is (N, H, W, C), as we store images. ONNX's Conv, pools and
 * BatchNormalization need NCHW: a Transpose goes before the first of them,
 * and before a flatten (or a dense layer on an image) a Transpose back to
 * NHWC keeps our (H, W, C) feature order, so that dense weights are
 * written as they are.
 *   dense      Gemm (B = kernel (in, out), C = bias) [+ activation]
 *   conv2d     Conv, weights (F, C, k, k), pads explicit [+ activation]
 *   pools      MaxPool / AveragePool, no padding
 *   flatten    Transpose (0, 2, 3, 1) + Flatten
 *   dropout    Dropout (ratio as an input; a no-op at inference)
 *   batchnorm  BatchNormalization (epsilon 1e-3, our momentum)
 *   softmax    Softmax over the last axis (channels, for conv2d)
 *   global average pooling  GlobalAveragePool + Flatten
 *   leaky relu LeakyRelu (alpha)
 * The model's input normalisation is a Sub and a Div before the rest.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"
#include "onnx/onnx_io.h"

/* Every allocation of one export, freed together. */
typedef struct writer {
    void **p;
    size_t np, cap;
    bool oom;
    Onnx__NodeProto **node;
    size_t n_node, node_cap;
    Onnx__TensorProto **init;
    size_t n_init, init_cap;
    int tmp;                 /* counter for value names */
    const char *cur;         /* the current value's name */
} writer;

static void *wal(writer *w, size_t size)
{
    if (w->oom)
        return NULL;
    if (w->np == w->cap) {
        size_t nc = w->cap ? 2 * w->cap : 256;
        void **q = realloc(w->p, nc * sizeof *q);
        if (!q) {
            w->oom = true;
            return NULL;
        }
        w->p = q;
        w->cap = nc;
    }
    void *x = calloc(1, size ? size : 1);
    if (!x) {
        w->oom = true;
        return NULL;
    }
    return w->p[w->np++] = x;
}

static char *wstr(writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *wstr(writer *w, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = wal(w, strlen(buf) + 1);
    if (s)
        strcpy(s, buf);
    return s;
}

/* Appends p to a growing array of pointers (tracked like the rest). */
static bool push(writer *w, void ***arr, size_t *n, size_t *cap, void *p)
{
    if (!p || w->oom)
        return false;
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        void **q = wal(w, nc * sizeof *q);
        if (!q)
            return false;
        if (*n)
            memcpy(q, *arr, *n * sizeof *q);
        *arr = q;
        *cap = nc;
    }
    (*arr)[(*n)++] = p;
    return true;
}

/* A float tensor initializer `name` of shape dims (rank r) from v. */
static const char *init_f32(writer *w, const char *name, int r,
                            const int64_t *dims, const float *v)
{
    Onnx__TensorProto *t = wal(w, sizeof *t);
    if (!t)
        return NULL;
    onnx__tensor_proto__init(t);
    size_t n = 1;
    t->n_dims = (size_t)r;
    t->dims = wal(w, sizeof(int64_t) * (size_t)(r ? r : 1));
    if (!t->dims)
        return NULL;
    for (int i = 0; i < r; i++) {
        t->dims[i] = dims[i];
        n *= (size_t)dims[i];
    }
    t->has_data_type = 1;
    t->data_type = ONNX_FLOAT;
    t->has_raw_data = 1;
    t->raw_data.len = 4 * n;
    t->raw_data.data = wal(w, 4 * n);
    if (!t->raw_data.data)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        nn_put_u32(t->raw_data.data + 4 * i, u);
    }
    t->name = wstr(w, "%s", name);
    if (!push(w, (void ***)&w->init, &w->n_init, &w->init_cap, t))
        return NULL;
    return t->name;
}

/* A node `op` named `name` reading the current value and `extra` more
 * inputs (NULL-terminated list), writing a new current value. */
static Onnx__NodeProto *node(writer *w, const char *op, const char *name,
                             ...)
{
    Onnx__NodeProto *n = wal(w, sizeof *n);
    if (!n)
        return NULL;
    onnx__node_proto__init(n);
    n->op_type = wstr(w, "%s", op);
    n->name = wstr(w, "%s", name);
    const char *in[8];
    size_t k = 0;
    in[k++] = w->cur;
    va_list ap;
    va_start(ap, name);
    const char *s;
    while (k < 8 && (s = va_arg(ap, const char *)) != NULL)
        in[k++] = s;
    va_end(ap);
    n->n_input = k;
    n->input = wal(w, sizeof(char *) * k);
    n->n_output = 1;
    n->output = wal(w, sizeof(char *));
    if (!n->input || !n->output)
        return NULL;
    for (size_t i = 0; i < k; i++)
        n->input[i] = (char *)in[i];
    n->output[0] = wstr(w, "t%d", w->tmp++);
    if (!push(w, (void ***)&w->node, &w->n_node, &w->node_cap, n))
        return NULL;
    w->cur = n->output[0];
    return n;
}

static Onnx__AttributeProto *add_attr(writer *w, Onnx__NodeProto *n,
                                      const char *name,
                                      Onnx__AttributeProto__AttributeType t)
{
    if (!n)
        return NULL;
    Onnx__AttributeProto *a = wal(w, sizeof *a);
    Onnx__AttributeProto **arr = wal(w, sizeof *arr * (n->n_attribute + 1));
    if (!a || !arr)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = wstr(w, "%s", name);
    a->has_type = 1;
    a->type = t;
    if (n->n_attribute)
        memcpy(arr, n->attribute, sizeof *arr * n->n_attribute);
    arr[n->n_attribute++] = a;
    n->attribute = arr;
    return a;
}

static void attr_int(writer *w, Onnx__NodeProto *n, const char *name,
                     int64_t v)
{
    Onnx__AttributeProto *a =
        add_attr(w, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a)
        a->has_i = 1, a->i = v;
}

static void attr_float(writer *w, Onnx__NodeProto *n, const char *name,
                       float v)
{
    Onnx__AttributeProto *a =
        add_attr(w, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a)
        a->has_f = 1, a->f = v;
}

static void attr_ints(writer *w, Onnx__NodeProto *n, const char *name,
                      int count, const int64_t *v)
{
    Onnx__AttributeProto *a =
        add_attr(w, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    if (!a || !(a->ints = wal(w, sizeof(int64_t) * (size_t)count)))
        return;
    a->n_ints = (size_t)count;
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
}

static void transpose(writer *w, const char *name, bool to_nchw)
{
    static const int64_t nchw[4] = {0, 3, 1, 2}, nhwc[4] = {0, 2, 3, 1};
    attr_ints(w, node(w, "Transpose", name, (const char *)NULL), "perm", 4,
              to_nchw ? nchw : nhwc);
}

static void activation(writer *w, nn_activation a, const char *lname,
                       bool image)
{
    static const char *const op[] = {
        [NN_ACT_RELU] = "Relu", [NN_ACT_SIGMOID] = "Sigmoid",
        [NN_ACT_TANH] = "Tanh", [NN_ACT_SOFTMAX] = "Softmax",
    };
    if (a == NN_ACT_LINEAR)
        return;
    Onnx__NodeProto *n = node(w, op[a], wstr(w, "%s/%s", lname, op[a]),
                              (const char *)NULL);
    if (a == NN_ACT_SOFTMAX)
        attr_int(w, n, "axis", image ? 1 : -1);
}

/* A tensor's type: float32 (N, dims...). */
static Onnx__ValueInfoProto *value_info(writer *w, const char *name,
                                        nn_shape s)
{
    Onnx__ValueInfoProto *v = wal(w, sizeof *v);
    Onnx__TypeProto *t = wal(w, sizeof *t);
    Onnx__TypeProto__Tensor *tt = wal(w, sizeof *tt);
    Onnx__TensorShapeProto *sh = wal(w, sizeof *sh);
    int r = s.rank + 1;
    Onnx__TensorShapeProto__Dimension **d = wal(w, sizeof *d * 4);
    if (!v || !t || !tt || !sh || !d)
        return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < r; i++) {
        if (!(d[i] = wal(w, sizeof **d)))
            return NULL;
        onnx__tensor_shape_proto__dimension__init(d[i]);
        if (i == 0) {
            d[i]->value_case =
                ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d[i]->dim_param = wstr(w, "N");
        } else {
            d[i]->value_case =
                ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d[i]->dim_value = s.dim[i - 1];
        }
    }
    sh->n_dim = (size_t)r;
    sh->dim = d;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX_FLOAT;
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->type = t;
    v->name = wstr(w, "%s", name);
    return v;
}

/* Builds the graph's nodes for m; false when memory ran out or a layer
 * kind has no ONNX form here (*unsupported then names it). */
static bool graph_nodes(writer *w, nn_model *m, const char **unsupported)
{
    int count[NN_LAYER_KIND_COUNT] = {0};
    float mean, sd;
    nn_model_input_norm(m, &mean, &sd);
    if (mean != 0.0f || sd != 1.0f) {   /* x' = (x - mean) / std */
        node(w, "Sub", "normalize/Sub",
             init_f32(w, "normalize/mean", 0, NULL, &mean),
             (const char *)NULL);
        node(w, "Div", "normalize/Div",
             init_f32(w, "normalize/std", 0, NULL, &sd), (const char *)NULL);
    }
    nn_shape in = nn_model_input_shape(m);
    bool nchw = false;   /* the current value is an NCHW image (else NHWC) */
    const float *p = nn_model_params(m);
    for (int i = 0; i < nn_model_layer_count(m) && !w->oom; i++) {
        nn_layer_spec s = nn_model_layer(m, i);
        nn_shape o = nn_model_layer_output_shape(m, i);
        const char *kind = nn_layer_kind_name(s.kind);
        int c = (unsigned)s.kind < NN_LAYER_KIND_COUNT ? count[s.kind]++ : 0;
        const char *ln = c ? wstr(w, "%s_%d", kind, c) : wstr(w, "%s", kind);
        size_t np = nn_model_layer_param_count(m, i);
        nn_shape is = i ? nn_model_layer_output_shape(m, i - 1) : in;
        bool spatial = s.kind == NN_LAYER_CONV2D ||
                       s.kind == NN_LAYER_MAXPOOL2D ||
                       s.kind == NN_LAYER_AVGPOOL2D ||
                       s.kind == NN_LAYER_GLOBAL_AVGPOOL2D ||
                       (s.kind == NN_LAYER_BATCHNORM && is.rank == 3);
        if (spatial && !nchw) {
            transpose(w, wstr(w, "%s/Transpose", ln), true);
            nchw = true;
        }
        if (is.rank == 3 &&
            (s.kind == NN_LAYER_DENSE || s.kind == NN_LAYER_FLATTEN)) {
            if (nchw)   /* back to (H, W, C) order, then flatten */
                transpose(w, wstr(w, "%s/Transpose", ln), false);
            attr_int(w, node(w, "Flatten", wstr(w, "%s/Flatten", ln),
                             (const char *)NULL), "axis", 1);
            nchw = false;
        }
        switch (s.kind) {
        case NN_LAYER_DENSE: {
            int64_t U = s.units, K = (int64_t)(np / (size_t)U - 1);
            int64_t kd[2] = {K, U};
            const char *kn = init_f32(w, wstr(w, "%s/kernel", ln), 2, kd, p);
            const char *bn = init_f32(w, wstr(w, "%s/bias", ln), 1, &U,
                                      p + K * U);
            node(w, "Gemm", wstr(w, "%s/Gemm", ln), kn, bn,
                 (const char *)NULL);
            activation(w, s.activation, ln, false);
            break;
        }
        case NN_LAYER_CONV2D: {
            int k = s.kernel, st = s.stride ? s.stride : 1, C = is.dim[2],
                F = s.units;
            size_t K = (size_t)k * k * (size_t)C;
            float *wt = malloc(sizeof(float) * K * (size_t)F);
            if (!wt)
                return false;
            /* ONNX (f, c, ky, kx) <- ours (ky, kx, c, f) */
            for (int f = 0; f < F; f++)
                for (int ch = 0; ch < C; ch++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++)
                            wt[(((size_t)f * C + ch) * k + ky) * k + kx] =
                                p[(((size_t)ky * k + kx) * C + ch) * F + f];
            int64_t wd[4] = {F, C, k, k}, fd = F;
            const char *kn = init_f32(w, wstr(w, "%s/kernel", ln), 4, wd, wt);
            free(wt);
            const char *bn = init_f32(w, wstr(w, "%s/bias", ln), 1, &fd,
                                      p + K * F);
            /* explicit pads (top, left, bottom, right), as conv2d.c pads */
            int64_t pads[4] = {0, 0, 0, 0};
            if (s.padding == NN_PAD_SAME) {
                long th = (long)(o.dim[0] - 1) * st + k - is.dim[0];
                long tw = (long)(o.dim[1] - 1) * st + k - is.dim[1];
                th = th > 0 ? th : 0;
                tw = tw > 0 ? tw : 0;
                pads[0] = th / 2, pads[2] = th - th / 2;
                pads[1] = tw / 2, pads[3] = tw - tw / 2;
            }
            int64_t ks[2] = {k, k}, ss[2] = {st, st}, dl[2] = {1, 1};
            Onnx__NodeProto *n = node(w, "Conv", wstr(w, "%s/Conv", ln), kn,
                                      bn, (const char *)NULL);
            attr_ints(w, n, "kernel_shape", 2, ks);
            attr_ints(w, n, "strides", 2, ss);
            attr_ints(w, n, "pads", 4, pads);
            attr_ints(w, n, "dilations", 2, dl);
            attr_int(w, n, "group", 1);
            activation(w, s.activation, ln, true);
            break;
        }
        case NN_LAYER_MAXPOOL2D:
        case NN_LAYER_AVGPOOL2D: {
            int64_t ks[2] = {s.kernel, s.kernel},
                    ss[2] = {s.stride ? s.stride : s.kernel,
                             s.stride ? s.stride : s.kernel},
                    pads[4] = {0, 0, 0, 0};
            bool mx = s.kind == NN_LAYER_MAXPOOL2D;
            Onnx__NodeProto *n = node(w, mx ? "MaxPool" : "AveragePool",
                                      wstr(w, "%s/%s", ln,
                                           mx ? "MaxPool" : "AveragePool"),
                                      (const char *)NULL);
            attr_ints(w, n, "kernel_shape", 2, ks);
            attr_ints(w, n, "strides", 2, ss);
            attr_ints(w, n, "pads", 4, pads);
            break;
        }
        case NN_LAYER_FLATTEN:
            break;   /* done above (nothing to do on a vector) */
        case NN_LAYER_DROPOUT: {
            float r = s.rate;
            node(w, "Dropout", wstr(w, "%s/Dropout", ln),
                 init_f32(w, wstr(w, "%s/ratio", ln), 0, NULL, &r),
                 (const char *)NULL);
            break;
        }
        case NN_LAYER_GLOBAL_AVGPOOL2D:   /* (N, C, 1, 1), then our (N, C) */
            node(w, "GlobalAveragePool", wstr(w, "%s/GlobalAveragePool", ln),
                 (const char *)NULL);
            attr_int(w, node(w, "Flatten", wstr(w, "%s/Flatten", ln),
                             (const char *)NULL), "axis", 1);
            nchw = false;
            break;
        case NN_LAYER_LEAKY_RELU:
            attr_float(w, node(w, "LeakyRelu", wstr(w, "%s/LeakyRelu", ln),
                               (const char *)NULL), "alpha", s.rate);
            break;
        default:
            *unsupported = kind;
            return false;
        case NN_LAYER_BATCHNORM: {
            int64_t C = (int64_t)(np / 4);
            Onnx__NodeProto *n = node(
                w, "BatchNormalization",
                wstr(w, "%s/BatchNormalization", ln),
                init_f32(w, wstr(w, "%s/gamma", ln), 1, &C, p),
                init_f32(w, wstr(w, "%s/beta", ln), 1, &C, p + C),
                init_f32(w, wstr(w, "%s/moving_mean", ln), 1, &C, p + 2 * C),
                init_f32(w, wstr(w, "%s/moving_variance", ln), 1, &C,
                         p + 3 * C),
                (const char *)NULL);
            attr_float(w, n, "epsilon", 1e-3f);   /* batchnorm.c */
            attr_float(w, n, "momentum", s.rate);
            break;
        }
        }
        p += np;
    }
    if (nchw)
        transpose(w, "output/Transpose", false);
    if (w->n_node == 0)   /* a model of no-ops */
        node(w, "Identity", "output/Identity", (const char *)NULL);
    return !w->oom;
}

nn_status nn_onnx_save(const nn_model *cm, const char *path, nn_error *err)
{
    /* Only read; nn_model_params is not const in nn.h. */
    nn_model *m = (nn_model *)cm;
    if (!nn_model_params(m))
        return nn_fail(err, NN_ERR_STATE, "%s: model is not initialised",
                       path);
    writer w = {0};
    w.cur = "input";
    nn_status st = NN_OK;
    uint8_t *buf = NULL;
    const char *unsupported = NULL;
    if (!graph_nodes(&w, m, &unsupported)) {
        st = unsupported ? nn_fail(err, NN_ERR_ARG, "%s: layer kind '%s' "
                                   "cannot be written as ONNX yet", path,
                                   unsupported)
                         : nn_fail(err, NN_ERR_NOMEM, "%s: out of memory",
                                   path);
        goto out;
    }
    w.node[w.n_node - 1]->output[0] = "output";
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    g.name = "digits";
    g.n_node = w.n_node;
    g.node = w.node;
    g.n_initializer = w.n_init;
    g.initializer = w.init;
    Onnx__ValueInfoProto *vin = value_info(&w, "input",
                                           nn_model_input_shape(m));
    Onnx__ValueInfoProto *vout = value_info(&w, "output",
                                            nn_model_output_shape(m));
    if (!vin || !vout) {
        st = nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    vin->doc_string = "float32 pixel/255 (0 background, 1 ink), channels last";
    g.n_input = 1;
    g.input = &vin;
    g.n_output = 1;
    g.output = &vout;
    Onnx__OperatorSetIdProto ops = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    ops.domain = "";
    ops.has_version = 1;
    ops.version = NN_ONNX_OPSET;
    Onnx__OperatorSetIdProto *opsp = &ops;
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    mp.has_ir_version = 1;
    mp.ir_version = ONNX_IR_VERSION;
    mp.producer_name = "digits";
    mp.producer_version = NN_VERSION_STRING;
    mp.n_opset_import = 1;
    mp.opset_import = &opsp;
    mp.graph = &g;
    size_t size = onnx__model_proto__get_packed_size(&mp);
    if (!(buf = malloc(size ? size : 1))) {
        st = nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    onnx__model_proto__pack(&mp, buf);
    nn_afile af;
    if ((st = nn_afile_open(&af, path, err)) != NN_OK)
        goto out;
    if (fwrite(buf, 1, size, af.f) != size) {
        int e = errno;
        nn_afile_abort(&af);
        st = nn_fail(err, NN_ERR_IO, "%s: cannot write: %s", path,
                     strerror(e));
        goto out;
    }
    st = nn_afile_commit(&af, err);
out:
    free(buf);
    for (size_t i = 0; i < w.np; i++)
        free(w.p[i]);
    free(w.p);
    return st;
}

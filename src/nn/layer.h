/*
 * layer.h - the interface every layer kind implements (internal).
 *
 * A model is an array of nn_layer. Each kind supplies an nn_layer_ops table:
 * build (shape inference), init (parameters), forward and backward, kept
 * together in one file per kind (dense.c, conv2d.c, ...). The network loop
 * in model.c only walks this table.
 */
#ifndef NN_LAYER_H
#define NN_LAYER_H

#include "nn.h"

typedef struct nn_layer nn_layer;

typedef struct nn_layer_ops {
    /* Checks l->spec against l->in; sets l->out, l->n_params,
     * l->n_nontrainable and l->scratch_per_sample (floats of per-sample
     * scratch the layer needs during forward/backward). */
    nn_status (*build)(nn_layer *l, nn_error *err);
    /* Initialises l->w (l->n_params floats), Keras' defaults. */
    void (*init)(nn_layer *l, nn_rng *rng);
    /* x (B, in) -> y (B, out). `training` enables dropout / batch stats. */
    void (*forward)(nn_layer *l, const float *x, float *y, int B,
                    bool training);
    /* Given x, y from forward and dy (B, out), writes parameter gradients to
     * l->dw (overwriting) and, when dx is not NULL, dx (B, in). dy may be
     * overwritten. When l->dy_is_preact, dy is already the gradient with
     * respect to the pre-activation (fused softmax + cross-entropy). */
    void (*backward)(nn_layer *l, const float *x, const float *y, float *dy,
                     float *dx, int B);
} nn_layer_ops;

struct nn_layer {
    nn_layer_spec spec;
    const nn_layer_ops *ops;
    nn_shape in, out;
    size_t in_size, out_size;      /* per sample */
    size_t n_params;               /* floats in the parameter block */
    size_t n_nontrainable;         /* of which not trained (e.g. BN stats);
                                      they are the last of the block */
    size_t param_off;              /* offset in the model's blocks */
    size_t scratch_per_sample;     /* floats */
    float *w;                      /* view: params + param_off */
    float *dw;                     /* view: grads + param_off */
    float *scratch;                /* view: (max_batch, scratch_per_sample) */
    bool dy_is_preact;
    nn_rng *rng;                   /* model's training generator */
    int row0;                      /* row of the whole batch where this
                                      forward's rows start (data-parallel
                                      shards; 0 otherwise); dropout.c */
};

/* One row of the layer registry (layers.c). */
typedef struct nn_layer_kind_info {
    nn_layer_kind kind;
    const char *name;        /* Keras' snake-case name: "max_pooling2d" */
    const char *keras;       /* Keras' class name: "MaxPooling2D" */
    const char *spec_names;  /* names in spec strings, space-separated; the
                                first is the one messages show */
    const char *roles;       /* positional spec arguments in order:
                                'u' units, 'k' kernel, 'a' activation,
                                'r' rate; an 'a' means the kind takes an
                                activation (softmax included) */
    int required;            /* positional arguments a spec must give */
    nn_layer_spec defaults;  /* a spec of this kind with Keras' defaults */
    const nn_layer_ops *ops;
} nn_layer_kind_info;

/* The row for a kind, or NULL for an unknown kind. Kinds run 1 ..
 * NN_LAYER_KIND_COUNT - 1. */
const nn_layer_kind_info *nn_layer_kind_info_for(nn_layer_kind kind);

/* The ops table for a kind, or NULL if this build does not support it. */
const nn_layer_ops *nn_layer_ops_for(nn_layer_kind kind);

extern const nn_layer_ops nn_dense_ops;       /* dense.c */
extern const nn_layer_ops nn_conv2d_ops;      /* conv2d.c */
extern const nn_layer_ops nn_maxpool2d_ops;   /* pool.c */
extern const nn_layer_ops nn_avgpool2d_ops;   /* pool.c */
extern const nn_layer_ops nn_flatten_ops;     /* flatten.c */
extern const nn_layer_ops nn_dropout_ops;     /* dropout.c */
extern const nn_layer_ops nn_batchnorm_ops;   /* batchnorm.c */
extern const nn_layer_ops nn_gap2d_ops;       /* gap.c */
extern const nn_layer_ops nn_leaky_relu_ops;  /* leaky_relu.c */

/* Activations, applied in place on rows of n: y = f(z). */
void nn_activate(nn_activation a, float *z, int B, int n);
/* dz = dy * f'(z) computed from y = f(z), in place on dy (B, n). */
void nn_activate_backward(nn_activation a, const float *y, float *dy, int B,
                          int n);
/* The same, fused with a bias (Dense): z += bias then f(z) in one pass;
 * backward also sums dz over the rows into db (n), in row order. */
void nn_bias_activate(nn_activation a, float *z, const float *bias, int B,
                      int n);
void nn_activate_backward_bias(nn_activation a, const float *y, float *dy,
                               float *db, int B, int n);

/* Glorot-uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)). */
void nn_glorot_uniform(float *w, size_t n, int fan_in, int fan_out,
                       nn_rng *rng);

#endif

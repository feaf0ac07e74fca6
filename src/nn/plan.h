/*
 * plan.h - a model as a list of inference steps (internal), shared by the
 * int8 quantizer (quant.c) and the C exporter (export_c.c).
 *
 * A step is one kernel of plan_kernels.h: a dense or convolution layer
 * (with its activation, any batch normalization right after it folded
 * into its weights, and a pooling layer right after it fused in), a
 * pooling layer on its own, a batch normalization on its own (a
 * per-channel scale and shift), a global average pooling, a LeakyReLU
 * (int8: a table from the input's quantization to its own). Flatten and dropout are no steps: at
 * inference they leave the values as they are.
 */
#ifndef NN_PLAN_H
#define NN_PLAN_H

#include "nn.h"
/* The kernels are static; each file uses some of them. */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include "nn/plan_kernels.h"
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

typedef enum nn_step_kind {
    NN_STEP_DENSE = 1,
    NN_STEP_CONV,
    NN_STEP_POOL,
    NN_STEP_AFFINE,
    NN_STEP_GAP,              /* global average pooling: H = S, C */
    NN_STEP_LEAKY             /* LeakyReLU on H values (W = C = 1) */
} nn_step_kind;

typedef struct nn_step {
    nn_step_kind kind;
    int act;                  /* nn_activation; NNK_LINEAR for pool/affine */
    nnk_geom g;               /* dense: H = W = 1, C = in, F = out */
    int first, last;          /* the model layers it covers */
    size_t in_size, out_size; /* values per sample */
    size_t n_w;               /* weights: dense out*in, conv F*k*k*C,
                                 affine C */
    int n_b;                  /* biases, multipliers: F (affine: C) */
    float *w, *b;             /* (n_w), (n_b), owned, BN folded in */
    float alpha;              /* LeakyReLU */

    /* int8, filled by nn_model_quantize (docs/quantization.md) */
    double sx, sy;            /* input and output scales */
    int32_t zx, zy;           /* and zero points */
    double st;                /* the requantization target's scale */
    int32_t zt, lo, hi;       /* its zero point and clamp */
    int8_t *wq;               /* (n_w) */
    int32_t *bq, *mult;       /* (n_b) */
    int8_t *shift;            /* (n_b) */
    bool has_lut;
    int8_t lut[256];          /* sigmoid / tanh on int8 */
    uint32_t etab[256];       /* softmax exponentials */
} nn_step;

typedef struct nn_plan {
    nn_shape input;
    size_t in_size, outputs;
    int n_steps;
    nn_step step[NN_MAX_LAYERS];
    size_t max_io;            /* max over steps of in_size + out_size */
    size_t max_conv;          /* largest unpooled conv output (calibration) */
} nn_plan;

/* Builds the plan of an initialised model. Fails with NN_ERR_ARG for a
 * layer it cannot run. Free with nn_plan_free (also after a failure). */
nn_status nn_plan_build(const nn_model *m, nn_plan *p, nn_error *err);
void nn_plan_free(nn_plan *p);

struct nn_qmodel {
    nn_plan plan;
    double out_scale;         /* last step's output quantization */
    int32_t out_zp;
    int isa;                  /* nn_qisa in use */
    /* VNNI packing of dense steps (quant_vnni.c), or NULL */
    void *packed[NN_MAX_LAYERS];
};

#endif

/*
 * conv2d.c - 2-D convolution (Keras Conv2D), y = f(conv(x, W) + b).
 *   x (B, H, W, C)  W (k, k, C, F)  b (F)  y (B, OH, OW, F)
 * Channels last; padding "valid" (OH = floor((H - k) / s) + 1) or "same"
 * (OH = ceil(H / s), padding split as TensorFlow does: the extra row or
 * column goes to the bottom / right).
 *
 * Implemented as im2col + one matrix product. Each output pixel becomes a
 * row of X_col (B*OH*OW, K + 1), K = k*k*C, ordered (ki, kj, c) like W,
 * with a trailing 1. Since the parameter block stores W (K, F) followed by
 * b (F), it reads as one matrix Wb (K + 1, F), and
 *   forward:   Z = X_col Wb                 (bias included)   y = f(Z)
 *   backward:  dZ = dy * f'(.)
 *              [dW; db] = X_col^T dZ        (one product, fixed order)
 *              dX_col = dZ W^T              dx = col2im(dX_col)
 * X_col lives in l->scratch and is kept from forward for backward, then
 * reused for dX_col. Softmax, if chosen, is taken over the F channels of
 * every pixel (Keras' last axis).
 */
#include <limits.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/kernels.h"
#include "nn/layer.h"

/* Scratch limit per sample (floats) for X_col: 1 GiB. */
#define CONV_MAX_SCRATCH ((size_t)1 << 28)

typedef struct conv_geom {
    int H, W, C;        /* input */
    int OH, OW, F;      /* output */
    int k, s;           /* kernel, stride */
    int pt, pl;         /* padding on top and left */
    int K;              /* k * k * C */
    size_t rows;        /* OH * OW: X_col rows per sample */
    size_t ld;          /* K + 1: X_col row length */
} conv_geom;

/* Output size along one axis and the padding before it; false if the
 * kernel does not fit. */
static bool conv_axis(int in, int k, int s, nn_padding pad, int *out,
                      int *before)
{
    if (pad == NN_PAD_SAME) {
        *out = (in + s - 1) / s;
        long total = (long)(*out - 1) * s + k - in;
        *before = total > 0 ? (int)(total / 2) : 0;
        return true;
    }
    if (in < k)
        return false;
    *out = (in - k) / s + 1;
    *before = 0;
    return true;
}

static conv_geom conv_geometry(const nn_layer *l)
{
    conv_geom g;
    g.H = l->in.dim[0], g.W = l->in.dim[1], g.C = l->in.dim[2];
    g.F = l->spec.units;
    g.k = l->spec.kernel;
    g.s = l->spec.stride > 0 ? l->spec.stride : 1;
    conv_axis(g.H, g.k, g.s, l->spec.padding, &g.OH, &g.pt);
    conv_axis(g.W, g.k, g.s, l->spec.padding, &g.OW, &g.pl);
    g.K = g.k * g.k * g.C;
    g.rows = (size_t)g.OH * (size_t)g.OW;
    g.ld = (size_t)g.K + 1;
    return g;
}

static nn_status conv_build(nn_layer *l, nn_error *err)
{
    const nn_layer_spec *s = &l->spec;
    if (l->in.rank != 3)
        return nn_fail(err, NN_ERR_SHAPE, "conv2d: needs (H, W, C) input, "
                       "got a vector of %zu", l->in_size);
    if (s->units < 1 || s->units > NN_MAX_DIM)
        return nn_fail(err, NN_ERR_ARG, "conv2d: filters must be 1..%d, "
                       "got %d", NN_MAX_DIM, s->units);
    if (s->kernel < 1 || s->kernel > 1024)
        return nn_fail(err, NN_ERR_ARG, "conv2d: kernel must be 1..1024, "
                       "got %d", s->kernel);
    if (s->stride < 0 || s->stride > 1024)
        return nn_fail(err, NN_ERR_ARG, "conv2d: stride must be 1..1024, "
                       "got %d", s->stride);
    if ((unsigned)s->padding > NN_PAD_SAME)
        return nn_fail(err, NN_ERR_ARG, "conv2d: unknown padding %d",
                       (int)s->padding);
    if ((unsigned)s->activation > NN_ACT_SOFTMAX)
        return nn_fail(err, NN_ERR_ARG, "conv2d: unknown activation %d",
                       (int)s->activation);
    int H = l->in.dim[0], W = l->in.dim[1], str = s->stride ? s->stride : 1;
    int oh, ow, p;
    if (!conv_axis(H, s->kernel, str, s->padding, &oh, &p) ||
        !conv_axis(W, s->kernel, str, s->padding, &ow, &p))
        return nn_fail(err, NN_ERR_SHAPE, "conv2d: kernel %d does not fit "
                       "the %dx%d input with padding=valid", s->kernel, H, W);
    l->out = nn_shape3(oh, ow, s->units);
    size_t K = (size_t)s->kernel * (size_t)s->kernel * (size_t)l->in.dim[2];
    size_t rows = (size_t)oh * (size_t)ow;
    if (K + 1 > CONV_MAX_SCRATCH / rows)
        return nn_fail(err, NN_ERR_LIMIT, "conv2d: im2col buffer of %zu x "
                       "%zu floats per sample is too large", rows, K + 1);
    l->n_params = K * (size_t)s->units + (size_t)s->units;
    l->scratch_per_sample = rows * (K + 1);
    return NN_OK;
}

static void conv_init(nn_layer *l, nn_rng *rng)
{
    int k2 = l->spec.kernel * l->spec.kernel, F = l->spec.units;
    size_t nw = l->n_params - (size_t)F;
    nn_glorot_uniform(l->w, nw, k2 * l->in.dim[2], k2 * F, rng);
    memset(l->w + nw, 0, sizeof(float) * (size_t)F);
}

/* One sample: x (H, W, C) -> col (OH*OW, K + 1); out-of-image taps are 0,
 * the last column 1. For a fixed kernel row the k*C inputs are contiguous,
 * so rows away from the left/right border copy k runs of k*C floats. */
static void im2col(const conv_geom *g, const float *x, float *col)
{
    const int kc = g->k * g->C;
    for (int oh = 0; oh < g->OH; oh++) {
        int ih0 = oh * g->s - g->pt;
        for (int ow = 0; ow < g->OW; ow++) {
            int iw0 = ow * g->s - g->pl;
            float *r = col + ((size_t)oh * g->OW + ow) * g->ld;
            bool inside_w = iw0 >= 0 && iw0 + g->k <= g->W;
            for (int ki = 0; ki < g->k; ki++) {
                int ih = ih0 + ki;
                float *rk = r + (size_t)ki * kc;
                if (ih < 0 || ih >= g->H) {
                    memset(rk, 0, sizeof(float) * (size_t)kc);
                    continue;
                }
                const float *xr = x + (size_t)ih * g->W * g->C;
                if (inside_w) {
                    const float *src = xr + (size_t)iw0 * g->C;
                    for (int j = 0; j < kc; j++)
                        rk[j] = src[j];
                    continue;
                }
                for (int kj = 0; kj < g->k; kj++) {
                    int iw = iw0 + kj;
                    float *d = rk + (size_t)kj * g->C;
                    if (iw < 0 || iw >= g->W)
                        memset(d, 0, sizeof(float) * (size_t)g->C);
                    else
                        memcpy(d, xr + (size_t)iw * g->C,
                               sizeof(float) * (size_t)g->C);
                }
            }
            r[g->K] = 1.0f;
        }
    }
}

/* One sample, the adjoint of im2col: dx (H, W, C) = sum of the col rows'
 * taps at their input positions (the last column is ignored). */
static void col2im(const conv_geom *g, const float *col, float *dx)
{
    memset(dx, 0, sizeof(float) * (size_t)g->H * g->W * g->C);
    const int kc = g->k * g->C;
    for (int oh = 0; oh < g->OH; oh++) {
        int ih0 = oh * g->s - g->pt;
        for (int ow = 0; ow < g->OW; ow++) {
            int iw0 = ow * g->s - g->pl;
            const float *r = col + ((size_t)oh * g->OW + ow) * g->ld;
            bool inside_w = iw0 >= 0 && iw0 + g->k <= g->W;
            for (int ki = 0; ki < g->k; ki++) {
                int ih = ih0 + ki;
                if (ih < 0 || ih >= g->H)
                    continue;
                const float *rk = r + (size_t)ki * kc;
                float *xr = dx + (size_t)ih * g->W * g->C;
                if (inside_w) {
                    float *d = xr + (size_t)iw0 * g->C;
                    for (int j = 0; j < kc; j++)
                        d[j] += rk[j];
                    continue;
                }
                for (int kj = 0; kj < g->k; kj++) {
                    int iw = iw0 + kj;
                    if (iw < 0 || iw >= g->W)
                        continue;
                    float *d = xr + (size_t)iw * g->C;
                    const float *src = rk + (size_t)kj * g->C;
                    for (int c = 0; c < g->C; c++)
                        d[c] += src[c];
                }
            }
        }
    }
}

/* Samples per matrix product, so that row counts fit the int of nn_gemm. */
static int conv_chunk(const conv_geom *g, int B)
{
    size_t most = (size_t)INT_MAX / g->rows;
    return (size_t)B < most ? B : (int)most;
}

static void conv_forward(nn_layer *l, const float *x, float *y, int B,
                         bool training)
{
    (void)training;
    conv_geom g = conv_geometry(l);
    float *col = l->scratch;                     /* (B, OH*OW, K + 1) */
    size_t per = g.rows * g.ld;
#pragma omp parallel for schedule(static) if ((size_t)B * per > 65536)
    for (int b = 0; b < B; b++)
        im2col(&g, x + (size_t)b * l->in_size, col + (size_t)b * per);
    int step = conv_chunk(&g, B);
    for (int b0 = 0; b0 < B; b0 += step) {
        int nb = B - b0 < step ? B - b0 : step;
        nn_gemm(false, false, nb * (int)g.rows, g.F, g.K + 1, 1.0f,
                col + (size_t)b0 * per, (int)g.ld, l->w, g.F, 0.0f,
                y + (size_t)b0 * l->out_size, g.F);
        nn_activate(l->spec.activation, y + (size_t)b0 * l->out_size,
                    nb * (int)g.rows, g.F);
    }
}

static void conv_backward(nn_layer *l, const float *x, const float *y,
                          float *dy, float *dx, int B)
{
    (void)x;
    conv_geom g = conv_geometry(l);
    float *col = l->scratch;                     /* X_col from forward */
    size_t per = g.rows * g.ld;
    int step = conv_chunk(&g, B);
    /* [dW; db] (K + 1, F) = X_col^T dZ */
    for (int b0 = 0; b0 < B; b0 += step) {
        int nb = B - b0 < step ? B - b0 : step;
        if (!l->dy_is_preact)
            nn_activate_backward(l->spec.activation,
                                 y + (size_t)b0 * l->out_size,
                                 dy + (size_t)b0 * l->out_size,
                                 nb * (int)g.rows, g.F);
        nn_gemm(true, false, g.K + 1, g.F, nb * (int)g.rows, 1.0f,
                col + (size_t)b0 * per, (int)g.ld,
                dy + (size_t)b0 * l->out_size, g.F, b0 ? 1.0f : 0.0f, l->dw,
                g.F);
    }
    if (!dx)
        return;
    /* dX_col (rows, K) = dZ W^T, written over X_col, then folded back. */
    for (int b0 = 0; b0 < B; b0 += step) {
        int nb = B - b0 < step ? B - b0 : step;
        nn_gemm(false, true, nb * (int)g.rows, g.K, g.F, 1.0f,
                dy + (size_t)b0 * l->out_size, g.F, l->w, g.F, 0.0f,
                col + (size_t)b0 * per, (int)g.ld);
    }
#pragma omp parallel for schedule(static) if ((size_t)B * per > 65536)
    for (int b = 0; b < B; b++)
        col2im(&g, col + (size_t)b * per, dx + (size_t)b * l->in_size);
}

const nn_layer_ops nn_conv2d_ops = {
    .build = conv_build,
    .init = conv_init,
    .forward = conv_forward,
    .backward = conv_backward,
};

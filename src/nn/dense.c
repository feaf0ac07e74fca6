/*
 * dense.c - fully connected layer, y = f(x W + b).
 *   x (B, in)  W (in, out)  b (out)  y (B, out)
 * The input is flattened: any (H, W, C) sample is read as H*W*C values.
 * Backward, with dz = dy * f'(.):
 *   dW = x^T dz    db = sum_b dz    dx = dz W^T
 */
#include <string.h>

#include "nn/internal.h"
#include "nn/kernels.h"
#include "nn/layer.h"

static nn_status dense_build(nn_layer *l, nn_error *err)
{
    int units = l->spec.units;
    if (units < 1 || units > NN_MAX_DIM)
        return nn_fail(err, NN_ERR_ARG, "dense: units must be 1..%d, got %d",
                       NN_MAX_DIM, units);
    if ((unsigned)l->spec.activation > NN_ACT_SOFTMAX)
        return nn_fail(err, NN_ERR_ARG, "dense: unknown activation %d",
                       (int)l->spec.activation);
    l->out = nn_shape1(units);
    l->n_params = l->in_size * (size_t)units + (size_t)units;
    return NN_OK;
}

static void dense_init(nn_layer *l, nn_rng *rng)
{
    size_t nw = l->in_size * l->out_size;
    nn_glorot_uniform(l->w, nw, (int)l->in_size, (int)l->out_size, rng);
    memset(l->w + nw, 0, sizeof(float) * l->out_size);
}

static void dense_forward(nn_layer *l, const float *x, float *y, int B,
                          bool training)
{
    (void)training;
    int in = (int)l->in_size, out = (int)l->out_size;
    const float *W = l->w, *b = l->w + (size_t)in * out;
    nn_gemm(false, false, B, out, in, 1.0f, x, in, W, out, 0.0f, y, out);
    nn_bias_activate(l->spec.activation, y, b, B, out);
}

static void dense_backward(nn_layer *l, const float *x, const float *y,
                           float *dy, float *dx, int B)
{
    int in = (int)l->in_size, out = (int)l->out_size;
    float *dW = l->dw, *db = l->dw + (size_t)in * out;
    /* dz = dy f'(.) and db = column sums of dz in one pass (when dy is
     * already dz, only the sums). */
    nn_activate_backward_bias(l->dy_is_preact ? NN_ACT_LINEAR
                                              : l->spec.activation,
                              y, dy, db, B, out);
    nn_gemm(true, false, in, out, B, 1.0f, x, in, dy, out, 0.0f, dW, out);
    if (dx)
        nn_gemm(false, true, B, in, out, 1.0f, dy, out, l->w, out, 0.0f, dx,
                in);
}

const nn_layer_ops nn_dense_ops = {
    .build = dense_build,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
};

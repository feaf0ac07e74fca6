/*
 * flatten.c - Flatten: (H, W, C) -> (H*W*C), the same values in the same
 * (row-major) order, so forward and backward are copies.
 *   x (B, H, W, C)  y (B, H*W*C)
 */
#include <string.h>

#include "nn/internal.h"
#include "nn/layer.h"

static nn_status flatten_build(nn_layer *l, nn_error *err)
{
    if (l->spec.activation != NN_ACT_LINEAR)
        return nn_fail(err, NN_ERR_ARG, "flatten: takes no activation");
    if (l->in_size > (size_t)NN_MAX_DIM)
        return nn_fail(err, NN_ERR_LIMIT, "flatten: %zu values exceed the "
                       "largest dimension, %d", l->in_size, NN_MAX_DIM);
    l->out = nn_shape1((int)l->in_size);
    return NN_OK;
}

static void flatten_forward(nn_layer *l, const float *x, float *y, int B,
                            bool training)
{
    (void)training;
    memcpy(y, x, sizeof(float) * l->in_size * (size_t)B);
}

static void flatten_backward(nn_layer *l, const float *x, const float *y,
                             float *dy, float *dx, int B)
{
    (void)x, (void)y;
    if (dx)
        memcpy(dx, dy, sizeof(float) * l->in_size * (size_t)B);
}

const nn_layer_ops nn_flatten_ops = {
    .build = flatten_build,
    .forward = flatten_forward,
    .backward = flatten_backward,
};

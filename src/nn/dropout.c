/*
 * dropout.c - Dropout(rate), inverted as Keras does: in training each value
 * is kept with probability 1 - rate and scaled by 1 / (1 - rate), so the
 * expected output equals the input; in inference it is the identity.
 *   x (B, ...)  y (B, ...)  mask (B, ...) in l->scratch: 0 or 1/(1 - rate)
 *   forward: y = x * mask      backward: dx = dy * mask
 * The mask is drawn from the model's training generator (l->rng) in sample
 * order, so it depends on the seed only, not on the thread count.
 */
#include <string.h>

#include "nn/internal.h"
#include "nn/layer.h"

static nn_status dropout_build(nn_layer *l, nn_error *err)
{
    float r = l->spec.rate;
    if (!(r >= 0.0f && r < 1.0f))
        return nn_fail(err, NN_ERR_ARG, "dropout: rate must be in [0, 1), "
                       "got %g", (double)r);
    if (l->spec.activation != NN_ACT_LINEAR)
        return nn_fail(err, NN_ERR_ARG, "dropout: takes no activation");
    l->out = l->in;
    l->scratch_per_sample = l->in_size;
    return NN_OK;
}

static void dropout_forward(nn_layer *l, const float *x, float *y, int B,
                            bool training)
{
    size_t n = l->in_size * (size_t)B;
    if (!training) {
        memcpy(y, x, sizeof(float) * n);
        return;
    }
    float rate = l->spec.rate, keep = 1.0f / (1.0f - rate);
    float *mask = l->scratch;
    for (size_t i = 0; i < n; i++)
        mask[i] = nn_rng_uniform(l->rng) < rate ? 0.0f : keep;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * mask[i];
}

static void dropout_backward(nn_layer *l, const float *x, const float *y,
                             float *dy, float *dx, int B)
{
    (void)x, (void)y;
    if (!dx)
        return;
    size_t n = l->in_size * (size_t)B;
    const float *mask = l->scratch;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * mask[i];
}

const nn_layer_ops nn_dropout_ops = {
    .build = dropout_build,
    .forward = dropout_forward,
    .backward = dropout_backward,
};

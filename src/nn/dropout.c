/*
 * dropout.c - Dropout(rate), inverted as Keras does: in training each value
 * is kept with probability 1 - rate and scaled by 1 / (1 - rate), so the
 * expected output equals the input; in inference it is the identity.
 *   x (B, ...)  y (B, ...)  mask (B, ...) in l->scratch: 0 or 1/(1 - rate)
 *   forward: y = x * mask      backward: dx = dy * mask
 * The mask comes from the model's training generator (l->rng): one draw per
 * batch seeds a small generator per sample, so it depends on the seed only,
 * not on the thread count. Sample b's stream is base + l->row0 + b, so a
 * data-parallel shard holding rows [row0, row0 + B) of a batch draws the
 * masks one process would draw for those rows.
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
    size_t n = l->in_size;
    if (!training) {
        memcpy(y, x, sizeof(float) * n * (size_t)B);
        return;
    }
    /* One draw from the model's generator seeds a stream per sample, so
     * samples run in parallel and the mask depends on the seed alone. */
    uint64_t base = (uint64_t)nn_rng_u32(l->rng) << 32 | nn_rng_u32(l->rng);
    float rate = l->spec.rate, keep = 1.0f / (1.0f - rate);
#pragma omp parallel for schedule(static) if (NN_PAR_IF(n * (size_t)B))
    for (int b = 0; b < B; b++) {
        nn_rng r;
        nn_rng_seed(&r, base + (uint64_t)l->row0 + (uint64_t)b);
        float *mask = l->scratch + (size_t)b * n;
        const float *xb = x + (size_t)b * n;
        float *yb = y + (size_t)b * n;
        for (size_t i = 0; i < n; i++) {
            float m = nn_rng_uniform(&r) < rate ? 0.0f : keep;
            mask[i] = m;
            yb[i] = xb[i] * m;
        }
    }
}

static void dropout_backward(nn_layer *l, const float *x, const float *y,
                             float *dy, float *dx, int B)
{
    (void)x, (void)y;
    if (!dx)
        return;
    size_t n = l->in_size * (size_t)B;
    const float *mask = l->scratch;
#pragma omp parallel for simd schedule(static) if (NN_PAR_IF(n))
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * mask[i];
}

const nn_layer_ops nn_dropout_ops = {
    .build = dropout_build,
    .forward = dropout_forward,
    .backward = dropout_backward,
};

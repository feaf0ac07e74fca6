/*
 * leaky_relu.c - LeakyReLU(alpha), as Keras' LeakyReLU layer (default
 * alpha 0.3): element-wise on any shape, alpha in [0, 1) kept in
 * spec.rate.
 *   x (B, in)  y (B, in)
 *   y = x if x > 0 else alpha x;   dx = dy if x > 0 else alpha dy
 */
#include "nn/internal.h"
#include "nn/layer.h"

static nn_status leaky_build(nn_layer *l, nn_error *err)
{
    const nn_layer_spec *sp = &l->spec;
    if (!(sp->rate >= 0.0f && sp->rate < 1.0f))
        return nn_fail(err, NN_ERR_ARG, "leaky_re_lu: alpha must be in "
                       "[0, 1), got %g", (double)sp->rate);
    if (sp->activation != NN_ACT_LINEAR || sp->units || sp->kernel ||
        sp->stride || sp->padding)
        return nn_fail(err, NN_ERR_ARG, "leaky_re_lu: takes only alpha");
    l->out = l->in;
    return NN_OK;
}

static void leaky_forward(nn_layer *l, const float *x, float *y, int B,
                          bool training)
{
    (void)training;
    const size_t n = l->in_size * (size_t)B;
    const float a = l->spec.rate;
#pragma omp parallel for simd schedule(static) if (NN_PAR_IF(n))
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : a * x[i];
}

static void leaky_backward(nn_layer *l, const float *x, const float *y,
                           float *dy, float *dx, int B)
{
    (void)y;
    if (!dx)
        return;
    const size_t n = l->in_size * (size_t)B;
    const float a = l->spec.rate;
#pragma omp parallel for simd schedule(static) if (NN_PAR_IF(n))
    for (size_t i = 0; i < n; i++)
        dx[i] = x[i] > 0.0f ? dy[i] : a * dy[i];
}

const nn_layer_ops nn_leaky_relu_ops = {
    .build = leaky_build,
    .forward = leaky_forward,
    .backward = leaky_backward,
};

/*
 * activation.c - element-wise activations and their derivatives.
 * Derivatives are computed from the output y = f(z), so layers need not keep
 * the pre-activation:
 *   relu'    = [y > 0]        sigmoid' = y (1 - y)      tanh' = 1 - y^2
 *   softmax: dz_i = y_i (dy_i - sum_j dy_j y_j)   (Jacobian-vector product)
 */
#include <math.h>
#include <string.h>

#include "nn/layer.h"

static const char *const act_names[] = {
    [NN_ACT_LINEAR] = "linear",   [NN_ACT_RELU] = "relu",
    [NN_ACT_SIGMOID] = "sigmoid", [NN_ACT_TANH] = "tanh",
    [NN_ACT_SOFTMAX] = "softmax",
};

const char *nn_activation_name(nn_activation a)
{
    if ((unsigned)a < sizeof act_names / sizeof *act_names)
        return act_names[a];
    return "?";
}

bool nn_activation_parse(const char *name, nn_activation *out)
{
    for (unsigned i = 0; i < sizeof act_names / sizeof *act_names; i++)
        if (strcmp(name, act_names[i]) == 0) {
            *out = (nn_activation)i;
            return true;
        }
    return false;
}

/* Numerically stable softmax of one row: exp(z - max) / sum. */
static void softmax_row(float *z, int n)
{
    float mx = z[0];
    for (int j = 1; j < n; j++)
        mx = z[j] > mx ? z[j] : mx;
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
        z[j] = expf(z[j] - mx);
        sum += z[j];
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < n; j++)
        z[j] *= inv;
}

void nn_activate(nn_activation a, float *z, int B, int n)
{
    size_t total = (size_t)B * (size_t)n;
    switch (a) {
    case NN_ACT_LINEAR:
        break;
    case NN_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (total > 65536)
        for (size_t i = 0; i < total; i++)
            z[i] = z[i] > 0.0f ? z[i] : 0.0f;
        break;
    case NN_ACT_SIGMOID:
#pragma omp parallel for schedule(static) if (total > 65536)
        for (size_t i = 0; i < total; i++)
            z[i] = 1.0f / (1.0f + expf(-z[i]));
        break;
    case NN_ACT_TANH:
#pragma omp parallel for schedule(static) if (total > 65536)
        for (size_t i = 0; i < total; i++)
            z[i] = tanhf(z[i]);
        break;
    case NN_ACT_SOFTMAX:
#pragma omp parallel for schedule(static) if (total > 65536)
        for (int b = 0; b < B; b++)
            softmax_row(z + (size_t)b * n, n);
        break;
    }
}

void nn_activate_backward(nn_activation a, const float *y, float *dy, int B,
                          int n)
{
    size_t total = (size_t)B * (size_t)n;
    switch (a) {
    case NN_ACT_LINEAR:
        break;
    case NN_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (total > 65536)
        for (size_t i = 0; i < total; i++)
            dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case NN_ACT_SIGMOID:
#pragma omp parallel for simd schedule(static) if (total > 65536)
        for (size_t i = 0; i < total; i++)
            dy[i] *= y[i] * (1.0f - y[i]);
        break;
    case NN_ACT_TANH:
#pragma omp parallel for simd schedule(static) if (total > 65536)
        for (size_t i = 0; i < total; i++)
            dy[i] *= 1.0f - y[i] * y[i];
        break;
    case NN_ACT_SOFTMAX:
#pragma omp parallel for schedule(static) if (total > 65536)
        for (int b = 0; b < B; b++) {
            const float *yr = y + (size_t)b * n;
            float *d = dy + (size_t)b * n;
            float dot = 0.0f;
            for (int j = 0; j < n; j++)
                dot += d[j] * yr[j];
            for (int j = 0; j < n; j++)
                d[j] = yr[j] * (d[j] - dot);
        }
        break;
    }
}

void nn_glorot_uniform(float *w, size_t n, int fan_in, int fan_out,
                       nn_rng *rng)
{
    float limit = sqrtf(6.0f / (float)(fan_in + fan_out));
    for (size_t i = 0; i < n; i++)
        w[i] = (2.0f * nn_rng_uniform(rng) - 1.0f) * limit;
}

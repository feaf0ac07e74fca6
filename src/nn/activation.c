/*
 * activation.c - element-wise activations and their derivatives.
 * Derivatives are computed from the output y = f(z), so layers need not keep
 * the pre-activation:
 *   relu'    = [y > 0]        sigmoid' = y (1 - y)      tanh' = 1 - y^2
 *   softmax: dz_i = y_i (dy_i - sum_j dy_j y_j)   (Jacobian-vector product)
 */
#include <math.h>
#include <string.h>

#include "nn/internal.h"
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
    if (!name || !out)
        return false;
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


/* Rows [0, rows) of z (rows, n): z += bias (when not NULL), then f(z). */
NN_CLONES
static void forward_rows(nn_activation a, float *restrict z,
                         const float *restrict bias, int rows, int n)
{
    for (int r = 0; r < rows; r++) {
        float *restrict zr = z + (size_t)r * n;
        if (bias) {
#pragma omp simd
            for (int j = 0; j < n; j++)
                zr[j] += bias[j];
        }
        switch (a) {
        case NN_ACT_LINEAR:
            break;
        case NN_ACT_RELU:
#pragma omp simd
            for (int j = 0; j < n; j++)
                zr[j] = zr[j] > 0.0f ? zr[j] : 0.0f;
            break;
        case NN_ACT_SIGMOID:
            for (int j = 0; j < n; j++)
                zr[j] = 1.0f / (1.0f + expf(-zr[j]));
            break;
        case NN_ACT_TANH:
            for (int j = 0; j < n; j++)
                zr[j] = tanhf(zr[j]);
            break;
        case NN_ACT_SOFTMAX:
            softmax_row(zr, n);
            break;
        }
    }
}

void nn_bias_activate(nn_activation a, float *z, const float *bias, int B,
                      int n)
{
    if (a == NN_ACT_LINEAR && !bias)
        return;
    int nt = nn_threads_for((double)B * n, NN_PAR_MIN_ACT);
    int per = (B + nt - 1) / nt;
#pragma omp parallel for num_threads(nt) schedule(static, 1) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        int r0 = t * per, rows = B - r0 < per ? B - r0 : per;
        if (rows > 0)
            forward_rows(a, z + (size_t)r0 * n, bias, rows, n);
    }
}

void nn_activate(nn_activation a, float *z, int B, int n)
{
    nn_bias_activate(a, z, NULL, B, n);
}

/* Softmax's Jacobian-vector product on rows [0, rows). */
static void softmax_backward_rows(const float *y, float *dy, int rows, int n)
{
    for (int b = 0; b < rows; b++) {
        const float *yr = y + (size_t)b * n;
        float *d = dy + (size_t)b * n;
        float dot = 0.0f;
        for (int j = 0; j < n; j++)
            dot += d[j] * yr[j];
        for (int j = 0; j < n; j++)
            d[j] = yr[j] * (d[j] - dot);
    }
}

/* Columns [j0, j1) of dy (B, n): dy *= f'(y) (softmax: done before), and
 * db[j] = the sum of column j over the rows, in row order, when db is not
 * NULL. */
NN_CLONES
static void backward_cols(nn_activation a, const float *restrict y,
                          float *restrict dy, float *restrict db, int B,
                          int n, int j0, int j1)
{
    if (db)
        memset(db + j0, 0, sizeof(float) * (size_t)(j1 - j0));
    for (int r = 0; r < B; r++) {
        const float *restrict yr = y + (size_t)r * n;
        float *restrict d = dy + (size_t)r * n;
        switch (a) {
        case NN_ACT_LINEAR:
        case NN_ACT_SOFTMAX:
            break;
        case NN_ACT_RELU:
#pragma omp simd
            for (int j = j0; j < j1; j++)
                d[j] = yr[j] > 0.0f ? d[j] : 0.0f;
            break;
        case NN_ACT_SIGMOID:
#pragma omp simd
            for (int j = j0; j < j1; j++)
                d[j] *= yr[j] * (1.0f - yr[j]);
            break;
        case NN_ACT_TANH:
#pragma omp simd
            for (int j = j0; j < j1; j++)
                d[j] *= 1.0f - yr[j] * yr[j];
            break;
        }
        if (db) {
#pragma omp simd
            for (int j = j0; j < j1; j++)
                db[j] += d[j];
        }
    }
}

void nn_activate_backward_bias(nn_activation a, const float *y, float *dy,
                               float *db, int B, int n)
{
    if (a == NN_ACT_LINEAR && !db)
        return;
    int nt = nn_threads_for((double)B * n, NN_PAR_MIN_ACT);
    if (a == NN_ACT_SOFTMAX) {
        int per = (B + nt - 1) / nt;
#pragma omp parallel for num_threads(nt) schedule(static, 1) if (nt > 1)
        for (int t = 0; t < nt; t++) {
            int r0 = t * per, rows = B - r0 < per ? B - r0 : per;
            if (rows > 0)
                softmax_backward_rows(y + (size_t)r0 * n, dy + (size_t)r0 * n,
                                      rows, n);
        }
        if (!db)
            return;
    }
    /* Column blocks, 16 floats wide or more, one per thread. */
    int per = ((n + nt - 1) / nt + 15) & ~15, parts = (n + per - 1) / per;
#pragma omp parallel for num_threads(parts) schedule(static, 1) if (parts > 1)
    for (int t = 0; t < parts; t++) {
        int j0 = t * per, j1 = n - j0 < per ? n : j0 + per;
        backward_cols(a, y, dy, db, B, n, j0, j1);
    }
}

void nn_activate_backward(nn_activation a, const float *y, float *dy, int B,
                          int n)
{
    nn_activate_backward_bias(a, y, dy, NULL, B, n);
}

void nn_glorot_uniform(float *w, size_t n, int fan_in, int fan_out,
                       nn_rng *rng)
{
    float limit = sqrtf(6.0f / (float)(fan_in + fan_out));
    for (size_t i = 0; i < n; i++)
        w[i] = (2.0f * nn_rng_uniform(rng) - 1.0f) * limit;
}

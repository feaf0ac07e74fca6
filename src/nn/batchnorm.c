/*
 * batchnorm.c - BatchNormalization over the last axis (channels of an
 * (H, W, C) sample, features of an (N) one), as Keras: epsilon 1e-3,
 * momentum spec.rate (0.99 by default).
 *   x (B, S, C), S positions per sample, N = B*S values per channel
 *   params: gamma (C), beta (C) trainable; moving_mean (C), moving_var (C)
 *   not trainable (zero gradient, updated by every training forward).
 * training:  mu = mean(x), var = mean((x - mu)^2) (biased, as Keras),
 *            xh = (x - mu) / sqrt(var + eps),  y = gamma xh + beta
 *            moving = momentum * moving + (1 - momentum) * batch value
 * inference: y = gamma (x - moving_mean) / sqrt(moving_var + eps) + beta
 * backward (training statistics), per channel:
 *            dbeta = sum dy,  dgamma = sum dy xh,
 *            dx = gamma / (N sqrt(var + eps)) (N dy - dbeta - xh dgamma)
 * Statistics are taken per sample in parallel, into l->scratch, then
 * merged in sample order, so results do not depend on the thread count.
 * Scratch: (2C) per-channel values kept for backward (mu, 1/sqrt(var+eps)),
 * then (B, 2C) per-sample partial sums; 4C floats per sample cover both.
 */
#include <math.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/layer.h"

#define BN_EPSILON 1e-3f

static int bn_channels(const nn_layer *l)
{
    return l->in.rank == 3 ? l->in.dim[2] : l->in.dim[0];
}

static nn_status bn_build(nn_layer *l, nn_error *err)
{
    float m = l->spec.rate;
    if (!(m >= 0.0f && m < 1.0f))
        return nn_fail(err, NN_ERR_ARG, "batch_normalization: momentum must "
                       "be in [0, 1), got %g", (double)m);
    if (l->spec.activation != NN_ACT_LINEAR)
        return nn_fail(err, NN_ERR_ARG,
                       "batch_normalization: takes no activation");
    size_t C = (size_t)bn_channels(l);
    l->out = l->in;
    l->n_params = 4 * C;
    l->n_nontrainable = 2 * C;
    l->scratch_per_sample = 4 * C;
    return NN_OK;
}

static void bn_init(nn_layer *l, nn_rng *rng)
{
    (void)rng;
    size_t C = (size_t)bn_channels(l);
    for (size_t c = 0; c < C; c++) {
        l->w[c] = 1.0f;           /* gamma */
        l->w[C + c] = 0.0f;       /* beta */
        l->w[2 * C + c] = 0.0f;   /* moving mean */
        l->w[3 * C + c] = 1.0f;   /* moving variance */
    }
}

/* Per-sample statistics, part (B, 2C), each sample on one thread:
 *   forward:   part[b][c] = mean of x over the S positions, and
 *              part[b][C + c] = sum (x - that mean)^2 (the sample is read
 *              from memory once; the second pass finds it in cache)
 *   backward:  part[b][c] = sum dy, part[b][C + c] = sum dy (x - mu) inv */
static void bn_sample_moments(const float *x, float *part, int B, size_t S,
                              int C)
{
    const float inv_s = 1.0f / (float)S;
#pragma omp parallel for schedule(static) if (NN_PAR_IF((size_t)B * S * C))
    for (int b = 0; b < B; b++) {
        float *restrict m = part + (size_t)b * 2 * C, *restrict q = m + C;
        const float *xb = x + (size_t)b * S * C;
        memset(m, 0, sizeof(float) * 2 * (size_t)C);
        for (size_t s = 0; s < S; s++) {
            const float *restrict xr = xb + s * C;
#pragma omp simd
            for (int c = 0; c < C; c++)
                m[c] += xr[c];
        }
#pragma omp simd
        for (int c = 0; c < C; c++)
            m[c] *= inv_s;
        for (size_t s = 0; s < S; s++) {
            const float *restrict xr = xb + s * C;
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float d = xr[c] - m[c];
                q[c] += d * d;
            }
        }
    }
}

static void bn_grad_sums(const float *x, const float *dy, const float *mu,
                         const float *inv, float *part, int B, size_t S,
                         int C)
{
#pragma omp parallel for schedule(static) if (NN_PAR_IF((size_t)B * S * C))
    for (int b = 0; b < B; b++) {
        float *restrict p0 = part + (size_t)b * 2 * C, *restrict p1 = p0 + C;
        memset(p0, 0, sizeof(float) * 2 * (size_t)C);
        for (size_t s = 0; s < S; s++) {
            size_t o = ((size_t)b * S + s) * C;
            const float *restrict xr = x + o, *restrict dr = dy + o;
#pragma omp simd
            for (int c = 0; c < C; c++) {
                p0[c] += dr[c];
                p1[c] += dr[c] * (xr[c] - mu[c]) * inv[c];
            }
        }
    }
}

/* Adds the per-sample partials of half `h` (0 or 1) in sample order. */
static double bn_total(const float *part, int B, int C, int h, int c)
{
    double t = 0.0;
    for (int b = 0; b < B; b++)
        t += part[(size_t)b * 2 * C + (size_t)h * C + c];
    return t;
}

/* y = x * scale + shift per channel, in parallel over samples. */
static void bn_apply(const float *x, float *y, const float *scale,
                     const float *shift, int B, size_t S, int C)
{
#pragma omp parallel for schedule(static) if (NN_PAR_IF((size_t)B * S * C))
    for (int b = 0; b < B; b++)
        for (size_t s = 0; s < S; s++) {
            size_t o = ((size_t)b * S + s) * C;
#pragma omp simd
            for (int c = 0; c < C; c++)
                y[o + c] = x[o + c] * scale[c] + shift[c];
        }
}

static void bn_forward(nn_layer *l, const float *x, float *y, int B,
                       bool training)
{
    const int C = bn_channels(l);
    const size_t S = l->in_size / (size_t)C;
    float *gamma = l->w, *beta = l->w + C, *mmean = l->w + 2 * C,
          *mvar = l->w + 3 * C;
    float *mu = l->scratch, *inv = mu + C;      /* (C) each */
    float *part = l->scratch + 2 * C;           /* (B, 2C) */
    /* The per-channel affine map goes at the start of `part`, which is free
     * once the statistics are known. */
    float *scale = part, *shift = part + C;
    if (!training) {
        for (int c = 0; c < C; c++) {
            scale[c] = gamma[c] / sqrtf(mvar[c] + BN_EPSILON);
            shift[c] = beta[c] - mmean[c] * scale[c];
        }
        bn_apply(x, y, scale, shift, B, S, C);
        return;
    }
    /* Merge the samples' moments in sample order (Chan et al.): the mean
     * is the mean of the sample means (equal counts), and the squared
     * deviations add up plus S (mean_b - mean)^2 per sample. */
    bn_sample_moments(x, part, B, S, C);
    float mom = l->spec.rate;
    for (int c = 0; c < C; c++) {
        double mean = bn_total(part, B, C, 0, c) / B, m2 = 0.0;
        for (int b = 0; b < B; b++) {
            double d = part[(size_t)b * 2 * C + c] - mean;
            m2 += part[(size_t)b * 2 * C + C + c] + (double)S * d * d;
        }
        float var = (float)(m2 / ((double)B * (double)S));
        mu[c] = (float)mean;
        inv[c] = 1.0f / sqrtf(var + BN_EPSILON);
        mmean[c] = mom * mmean[c] + (1.0f - mom) * mu[c];
        mvar[c] = mom * mvar[c] + (1.0f - mom) * var;
    }
    for (int c = 0; c < C; c++) {
        scale[c] = gamma[c] * inv[c];
        shift[c] = beta[c] - mu[c] * scale[c];
    }
    bn_apply(x, y, scale, shift, B, S, C);
}

static void bn_backward(nn_layer *l, const float *x, const float *y,
                        float *dy, float *dx, int B)
{
    (void)y;
    const int C = bn_channels(l);
    const size_t S = l->in_size / (size_t)C;
    const float *gamma = l->w;
    float *dgamma = l->dw, *dbeta = l->dw + C;
    const float *mu = l->scratch, *inv = mu + C;
    float *part = l->scratch + 2 * C;
    bn_grad_sums(x, dy, mu, inv, part, B, S, C);
    for (int c = 0; c < C; c++) {
        dbeta[c] = (float)bn_total(part, B, C, 0, c);
        dgamma[c] = (float)bn_total(part, B, C, 1, c);
    }
    memset(l->dw + 2 * C, 0, sizeof(float) * 2 * (size_t)C);
    if (!dx)
        return;
    /* dx = gamma inv (dy - dbeta / N - xh dgamma / N) */
    float *mb = part, *mg = part + C;             /* (C) each */
    double N = (double)B * (double)S;
    for (int c = 0; c < C; c++) {
        mb[c] = (float)(dbeta[c] / N);
        mg[c] = (float)(dgamma[c] / N);
    }
#pragma omp parallel for schedule(static) if (NN_PAR_IF((size_t)B * S * C))
    for (int b = 0; b < B; b++)
        for (size_t s = 0; s < S; s++) {
            size_t o = ((size_t)b * S + s) * C;
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float xh = (x[o + c] - mu[c]) * inv[c];
                dx[o + c] = gamma[c] * inv[c] *
                            (dy[o + c] - mb[c] - xh * mg[c]);
            }
        }
}

const nn_layer_ops nn_batchnorm_ops = {
    .build = bn_build,
    .init = bn_init,
    .forward = bn_forward,
    .backward = bn_backward,
};

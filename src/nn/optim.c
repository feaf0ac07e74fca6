/*
 * optim.c - optimizers, one fused pass over the flat parameter block, with
 * Keras' formulas and defaults:
 *   sgd:      v = mu v - lr g;  w += v            (nesterov: w += mu v - lr g)
 *   rmsprop:  s = rho s + (1 - rho) g^2;  w -= lr g / (sqrt(s) + eps)
 *   adam:     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *             w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
 */
#include <math.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/optim.h"

nn_optimizer nn_sgd(float lr, float momentum, bool nesterov)
{
    return (nn_optimizer){.kind = NN_OPT_SGD, .lr = lr, .momentum = momentum,
                          .nesterov = nesterov};
}

nn_optimizer nn_rmsprop(void)
{
    return (nn_optimizer){.kind = NN_OPT_RMSPROP, .lr = 0.001f, .rho = 0.9f,
                          .epsilon = 1e-7f};
}

nn_optimizer nn_adam(void)
{
    return (nn_optimizer){.kind = NN_OPT_ADAM, .lr = 0.001f, .beta1 = 0.9f,
                          .beta2 = 0.999f, .epsilon = 1e-7f};
}

const char *nn_optimizer_name(nn_optimizer_kind k)
{
    switch (k) {
    case NN_OPT_SGD: return "sgd";
    case NN_OPT_RMSPROP: return "rmsprop";
    case NN_OPT_ADAM: return "adam";
    }
    return "?";
}

bool nn_optimizer_parse(const char *name, nn_optimizer *out)
{
    if (strcmp(name, "sgd") == 0)
        *out = nn_sgd(0.01f, 0.0f, false);
    else if (strcmp(name, "rmsprop") == 0)
        *out = nn_rmsprop();
    else if (strcmp(name, "adam") == 0)
        *out = nn_adam();
    else
        return false;
    return true;
}

/* The update of parameters [0, n) of one block; see the formulas above.
 * Plain loops that the compiler vectorises (NN_CLONES: AVX-512, AVX2 or
 * SSE2, picked at load); sqrtf vectorises because libnn is built with
 * -fno-math-errno. */
NN_CLONES
static void update(const nn_optimizer *o, float lr, float *restrict w,
                   const float *restrict g, float *restrict s1,
                   float *restrict s2, size_t n)
{
    switch (o->kind) {
    case NN_OPT_SGD: {
        const float mu = o->momentum;
        if (mu == 0.0f) {
#pragma omp simd
            for (size_t i = 0; i < n; i++)
                w[i] -= lr * g[i];
        } else if (o->nesterov) {
#pragma omp simd
            for (size_t i = 0; i < n; i++) {
                float v = mu * s1[i] - lr * g[i];
                s1[i] = v;
                w[i] += mu * v - lr * g[i];
            }
        } else {
#pragma omp simd
            for (size_t i = 0; i < n; i++) {
                float v = mu * s1[i] - lr * g[i];
                s1[i] = v;
                w[i] += v;
            }
        }
        break;
    }
    case NN_OPT_RMSPROP: {
        const float rho = o->rho, eps = o->epsilon;
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float s = rho * s1[i] + (1.0f - rho) * g[i] * g[i];
            s1[i] = s;
            w[i] -= lr * g[i] / (sqrtf(s) + eps);
        }
        break;
    }
    case NN_OPT_ADAM: {
        const float b1 = o->beta1, b2 = o->beta2, eps = o->epsilon;
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float m = b1 * s1[i] + (1.0f - b1) * g[i];
            float v = b2 * s2[i] + (1.0f - b2) * g[i] * g[i];
            s1[i] = m;
            s2[i] = v;
            w[i] -= lr * m / (sqrtf(v) + eps);
        }
        break;
    }
    }
}

/* Parameters per block of work: 16 KiB of each array, so a thread's
 * blocks stay in its cache while they are updated. */
#define OPT_BLOCK 4096

void nn_optimizer_step(const nn_optimizer *o, float *w, const float *g,
                       float *s1, float *s2, size_t n, uint64_t t)
{
    float lr = o->lr;
    if (o->kind == NN_OPT_ADAM) {   /* Adam's bias correction folded in */
        double td = (double)t;
        lr = (float)(lr * sqrt(1.0 - pow(o->beta2, td)) /
                     (1.0 - pow(o->beta1, td)));
    }
    size_t blocks = (n + OPT_BLOCK - 1) / OPT_BLOCK;
    int nt = nn_threads_for((double)n, 65536.0);
    (void)nt;   /* without OpenMP */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (size_t b = 0; b < blocks; b++) {
        size_t i = b * OPT_BLOCK, len = n - i < OPT_BLOCK ? n - i : OPT_BLOCK;
        update(o, lr, w + i, g + i, s1 + i, s2 ? s2 + i : NULL, len);
    }
}

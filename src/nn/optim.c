/*
 * optim.c - the optimizer registry: one row per kind (name, Keras'
 * defaults, validation of the settings, the update), each update one fused
 * pass over the flat parameter block, with Keras' formulas:
 *   sgd:      v = mu v - lr g;  w += v            (nesterov: w += mu v - lr g)
 *   rmsprop:  s = rho s + (1 - rho) g^2;  w -= lr g / (sqrt(s) + eps)
 *   adam:     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *             w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
 * A new optimizer: an enum value (and its fields) in nn.h, an update
 * function and one row here.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/optim.h"

/* Below FLT_MIN a state value is stored as 0 (flush). A state decays
 * geometrically while its gradient is 0 (an MNIST border pixel's weights:
 * most steps), and arithmetic on subnormal floats takes a microcode assist
 * on x86: unflushed, rmsprop's update ran 3.3x slower from the second
 * epoch of the seed configuration on. TensorFlow (Keras) runs its kernels
 * with flush-to-zero for the same reason. The weights do not change:
 * sqrt(FLT_MIN) = 1.1e-19 is below half an ulp of any epsilon above 1e-11,
 * so sqrt(s) + eps is the same float, and a flushed momentum or first
 * moment moves w by under 1e-38 lr / eps. */
static inline float flush(float x)
{
    return fabsf(x) < FLT_MIN ? 0.0f : x;
}

/* The update of parameters [0, n) of one block at rate lr (Adam's bias
 * correction already folded in). Plain loops that the compiler vectorises
 * (NN_CLONES: AVX-512, AVX2 or SSE2, picked at load); sqrtf vectorises
 * because libnn is built with -fno-math-errno. s2 is NULL for kinds with
 * one state array. */
typedef void update_fn(const nn_optimizer *o, float lr, float *restrict w,
                       const float *restrict g, float *restrict s1,
                       float *restrict s2, size_t n);

NN_CLONES
static void sgd_update(const nn_optimizer *o, float lr, float *restrict w,
                       const float *restrict g, float *restrict s1,
                       float *restrict s2, size_t n)
{
    (void)s2;
    const float mu = o->momentum;
    if (mu == 0.0f) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            w[i] -= lr * g[i];
    } else if (o->nesterov) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float v = flush(mu * s1[i] - lr * g[i]);
            s1[i] = v;
            w[i] += mu * v - lr * g[i];
        }
    } else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float v = flush(mu * s1[i] - lr * g[i]);
            s1[i] = v;
            w[i] += v;
        }
    }
}

NN_CLONES
static void rmsprop_update(const nn_optimizer *o, float lr, float *restrict w,
                           const float *restrict g, float *restrict s1,
                           float *restrict s2, size_t n)
{
    (void)s2;
    const float rho = o->rho, eps = o->epsilon;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float s = flush(rho * s1[i] + (1.0f - rho) * g[i] * g[i]);
        s1[i] = s;
        w[i] -= lr * g[i] / (sqrtf(s) + eps);
    }
}

NN_CLONES
static void adam_update(const nn_optimizer *o, float lr, float *restrict w,
                        const float *restrict g, float *restrict s1,
                        float *restrict s2, size_t n)
{
    const float b1 = o->beta1, b2 = o->beta2, eps = o->epsilon;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float m = flush(b1 * s1[i] + (1.0f - b1) * g[i]);
        float v = flush(b2 * s2[i] + (1.0f - b2) * g[i] * g[i]);
        s1[i] = m;
        s2[i] = v;
        w[i] -= lr * m / (sqrtf(v) + eps);
    }
}

static bool unit(float x) { return x >= 0.0f && x < 1.0f; }

static bool sgd_valid(const nn_optimizer *o) { return unit(o->momentum); }
static bool rmsprop_valid(const nn_optimizer *o)
{
    return unit(o->rho) && o->epsilon > 0.0f;
}
static bool adam_valid(const nn_optimizer *o)
{
    return unit(o->beta1) && unit(o->beta2) && o->epsilon > 0.0f;
}

/* Adam's bias correction: the rate of step t (from 1). */
static float adam_rate(const nn_optimizer *o, float lr, uint64_t t)
{
    double td = (double)t;
    return (float)(lr * sqrt(1.0 - pow(o->beta2, td)) /
                   (1.0 - pow(o->beta1, td)));
}

typedef struct opt_info {
    const char *name;
    nn_optimizer defaults;                  /* Keras' */
    bool (*valid)(const nn_optimizer *o);   /* settings other than lr */
    float (*rate)(const nn_optimizer *o, float lr, uint64_t t); /* or NULL */
    update_fn *update;
} opt_info;

static const opt_info optimizers[NN_OPT_KIND_COUNT] = {
    [NN_OPT_SGD] = {"sgd", {.kind = NN_OPT_SGD, .lr = 0.01f}, sgd_valid,
                    NULL, sgd_update},
    [NN_OPT_RMSPROP] = {"rmsprop", {.kind = NN_OPT_RMSPROP, .lr = 0.001f,
                                    .rho = 0.9f, .epsilon = 1e-7f},
                        rmsprop_valid, NULL, rmsprop_update},
    [NN_OPT_ADAM] = {"adam", {.kind = NN_OPT_ADAM, .lr = 0.001f,
                              .beta1 = 0.9f, .beta2 = 0.999f,
                              .epsilon = 1e-7f},
                     adam_valid, adam_rate, adam_update},
};

static const opt_info *info(nn_optimizer_kind k)
{
    if ((unsigned)k >= NN_OPT_KIND_COUNT || !optimizers[k].name)
        return NULL;
    return &optimizers[k];
}

nn_optimizer nn_sgd(float lr, float momentum, bool nesterov)
{
    nn_optimizer o = optimizers[NN_OPT_SGD].defaults;
    o.lr = lr;
    o.momentum = momentum;
    o.nesterov = nesterov;
    return o;
}

nn_optimizer nn_rmsprop(void) { return optimizers[NN_OPT_RMSPROP].defaults; }
nn_optimizer nn_adam(void) { return optimizers[NN_OPT_ADAM].defaults; }

const char *nn_optimizer_name(nn_optimizer_kind k)
{
    const opt_info *in = info(k);
    return in ? in->name : "?";
}

bool nn_optimizer_parse(const char *name, nn_optimizer *out)
{
    if (!name || !out)
        return false;
    for (int k = 1; k < NN_OPT_KIND_COUNT; k++)
        if (optimizers[k].name && strcmp(name, optimizers[k].name) == 0) {
            *out = optimizers[k].defaults;
            return true;
        }
    return false;
}

bool nn_optimizer_valid(const nn_optimizer *o)
{
    const opt_info *in = info(o->kind);
    return in && o->lr > 0.0f && isfinite(o->lr) && in->valid(o);
}

/* Parameters per block of work: 16 KiB of each array, so a thread's
 * blocks stay in its cache while they are updated. */
#define OPT_BLOCK 4096

void nn_optimizer_step(const nn_optimizer *o, float lr, float *w,
                       const float *g, float *s1, float *s2, size_t n,
                       uint64_t t)
{
    const opt_info *in = info(o->kind);
    if (in->rate)
        lr = in->rate(o, lr, t);
    int nt = nn_threads_for((double)n, NN_PAR_MIN_WORK);
    if (nt <= 1) {   /* no OpenMP region: even a serial one costs a team */
        in->update(o, lr, w, g, s1, s2, n);
        return;
    }
    size_t blocks = (n + OPT_BLOCK - 1) / OPT_BLOCK;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t b = 0; b < blocks; b++) {
        size_t i = b * OPT_BLOCK, len = n - i < OPT_BLOCK ? n - i : OPT_BLOCK;
        in->update(o, lr, w + i, g + i, s1 + i, s2 ? s2 + i : NULL, len);
    }
}

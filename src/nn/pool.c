/*
 * pool.c - MaxPooling2D and AveragePooling2D, valid padding (Keras'
 * default): windows of p x p taken every s pixels, OH = floor((H - p) / s)
 * + 1, each channel on its own.
 *   x (B, H, W, C)  y (B, OH, OW, C)
 * max:  y = max over the window;  dx gets dy at the window's argmax (the
 *       first one on ties), kept from forward in l->scratch as the tap's
 *       index in the window (a float; exact, since p*p <= 2^20).
 * avg:  y = mean over the window;  dx gets dy / (p*p) at every tap.
 * Overlapping windows (s < p) add up their contributions in dx.
 */
#include <string.h>

#include "nn/internal.h"
#include "nn/layer.h"

typedef struct pool_geom {
    int H, W, C, OH, OW, p, s;
} pool_geom;

static pool_geom pool_geometry(const nn_layer *l)
{
    pool_geom g;
    g.H = l->in.dim[0], g.W = l->in.dim[1], g.C = l->in.dim[2];
    g.OH = l->out.dim[0], g.OW = l->out.dim[1];
    g.p = l->spec.kernel;
    g.s = l->spec.stride > 0 ? l->spec.stride : l->spec.kernel;
    return g;
}

static nn_status pool_build(nn_layer *l, nn_error *err)
{
    const nn_layer_spec *sp = &l->spec;
    const char *name = nn_layer_kind_name(sp->kind);
    if (l->in.rank != 3)
        return nn_fail(err, NN_ERR_SHAPE, "%s: needs (H, W, C) input, got "
                       "a vector of %zu", name, l->in_size);
    if (sp->kernel < 1 || sp->kernel > 1024)
        return nn_fail(err, NN_ERR_ARG, "%s: pool size must be 1..1024, "
                       "got %d", name, sp->kernel);
    if (sp->stride < 0 || sp->stride > 1024)
        return nn_fail(err, NN_ERR_ARG, "%s: stride must be 1..1024, got %d",
                       name, sp->stride);
    if (sp->padding != NN_PAD_VALID)
        return nn_fail(err, NN_ERR_ARG, "%s: only padding=valid is "
                       "supported", name);
    if (sp->activation != NN_ACT_LINEAR)
        return nn_fail(err, NN_ERR_ARG, "%s: takes no activation", name);
    int H = l->in.dim[0], W = l->in.dim[1], p = sp->kernel;
    int s = sp->stride ? sp->stride : p;
    if (H < p || W < p)
        return nn_fail(err, NN_ERR_SHAPE, "%s: pool %d does not fit the "
                       "%dx%d input", name, p, H, W);
    l->out = nn_shape3((H - p) / s + 1, (W - p) / s + 1, l->in.dim[2]);
    l->n_params = 0;
    if (sp->kind == NN_LAYER_MAXPOOL2D)
        l->scratch_per_sample = nn_shape_size(l->out);
    return NN_OK;
}

/* ------------------------------------------------------------------ max */

/* One sample: y (OH, OW, C) and the argmax tap per output (as float). */
static void maxpool_sample(const pool_geom *g, const float *x, float *y,
                           float *arg)
{
    const int C = g->C;
    for (int oh = 0; oh < g->OH; oh++)
        for (int ow = 0; ow < g->OW; ow++) {
            size_t o = ((size_t)oh * g->OW + ow) * C;
            float *yo = y + o, *ao = arg + o;
            const float *x0 = x + ((size_t)oh * g->s * g->W +
                                   (size_t)ow * g->s) * C;
            for (int c = 0; c < C; c++) {
                yo[c] = x0[c];
                ao[c] = 0.0f;
            }
            for (int i = 0; i < g->p; i++)
                for (int j = 0; j < g->p; j++) {
                    if (i == 0 && j == 0)
                        continue;
                    const float *xt = x0 + ((size_t)i * g->W + j) * C;
                    float tap = (float)(i * g->p + j);
                    for (int c = 0; c < C; c++)
                        if (xt[c] > yo[c]) {
                            yo[c] = xt[c];
                            ao[c] = tap;
                        }
                }
        }
}

static void maxpool_forward(nn_layer *l, const float *x, float *y, int B,
                            bool training)
{
    (void)training;
    pool_geom g = pool_geometry(l);
#pragma omp parallel for schedule(static) if ((size_t)B * l->in_size > 65536)
    for (int b = 0; b < B; b++)
        maxpool_sample(&g, x + (size_t)b * l->in_size,
                       y + (size_t)b * l->out_size,
                       l->scratch + (size_t)b * l->out_size);
}

static void maxpool_backward(nn_layer *l, const float *x, const float *y,
                             float *dy, float *dx, int B)
{
    (void)x, (void)y;
    if (!dx)
        return;
    pool_geom g = pool_geometry(l);
    const int C = g.C;
#pragma omp parallel for schedule(static) if ((size_t)B * l->in_size > 65536)
    for (int b = 0; b < B; b++) {
        float *dxb = dx + (size_t)b * l->in_size;
        const float *dyb = dy + (size_t)b * l->out_size;
        const float *ab = l->scratch + (size_t)b * l->out_size;
        memset(dxb, 0, sizeof(float) * l->in_size);
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++) {
                size_t o = ((size_t)oh * g.OW + ow) * C;
                float *d0 = dxb + ((size_t)oh * g.s * g.W +
                                   (size_t)ow * g.s) * C;
                for (int c = 0; c < C; c++) {
                    int t = (int)ab[o + c], i = t / g.p, j = t % g.p;
                    d0[((size_t)i * g.W + j) * C + c] += dyb[o + c];
                }
            }
    }
}

/* ------------------------------------------------------------------ avg */

static void avgpool_forward(nn_layer *l, const float *x, float *y, int B,
                            bool training)
{
    (void)training;
    pool_geom g = pool_geometry(l);
    const int C = g.C;
    const float inv = 1.0f / ((float)g.p * (float)g.p);
#pragma omp parallel for schedule(static) if ((size_t)B * l->in_size > 65536)
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * l->in_size;
        float *yb = y + (size_t)b * l->out_size;
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++) {
                float *yo = yb + ((size_t)oh * g.OW + ow) * C;
                const float *x0 = xb + ((size_t)oh * g.s * g.W +
                                        (size_t)ow * g.s) * C;
                memset(yo, 0, sizeof(float) * (size_t)C);
                for (int i = 0; i < g.p; i++)
                    for (int j = 0; j < g.p; j++) {
                        const float *xt = x0 + ((size_t)i * g.W + j) * C;
                        for (int c = 0; c < C; c++)
                            yo[c] += xt[c];
                    }
                for (int c = 0; c < C; c++)
                    yo[c] *= inv;
            }
    }
}

static void avgpool_backward(nn_layer *l, const float *x, const float *y,
                             float *dy, float *dx, int B)
{
    (void)x, (void)y;
    if (!dx)
        return;
    pool_geom g = pool_geometry(l);
    const int C = g.C;
    const float inv = 1.0f / ((float)g.p * (float)g.p);
#pragma omp parallel for schedule(static) if ((size_t)B * l->in_size > 65536)
    for (int b = 0; b < B; b++) {
        float *dxb = dx + (size_t)b * l->in_size;
        const float *dyb = dy + (size_t)b * l->out_size;
        memset(dxb, 0, sizeof(float) * l->in_size);
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++) {
                const float *d = dyb + ((size_t)oh * g.OW + ow) * C;
                float *d0 = dxb + ((size_t)oh * g.s * g.W +
                                   (size_t)ow * g.s) * C;
                for (int i = 0; i < g.p; i++)
                    for (int j = 0; j < g.p; j++) {
                        float *dt = d0 + ((size_t)i * g.W + j) * C;
                        for (int c = 0; c < C; c++)
                            dt[c] += d[c] * inv;
                    }
            }
    }
}

const nn_layer_ops nn_maxpool2d_ops = {
    .build = pool_build,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
};

const nn_layer_ops nn_avgpool2d_ops = {
    .build = pool_build,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};

/*
 * pool.c - MaxPooling2D and AveragePooling2D, valid padding (Keras'
 * default): windows of p x p taken every s pixels, OH = floor((H - p) / s)
 * + 1, each channel on its own.
 *   x (B, H, W, C)  y (B, OH, OW, C)
 * max:  y = max over the window;  dx gets dy at the window's argmax (the
 *       first one on ties), kept from forward in l->scratch (B, OH, OW, C)
 *       as the tap's offset in the input (a float; exact below 2^24).
 * avg:  y = mean over the window;  dx gets dy / (p*p) at every tap.
 * Overlapping windows (s < p) add up their contributions in dx.
 */
#include <math.h>
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

/* One sample: y (OH, OW, C) and, per output, the argmax tap's offset from
 * the window's first input, (i * W + j) * C, as a float (exact: below
 * 2^24). Branch-free, so the channel loop vectorises. */
static void maxpool_sample(const pool_geom *g, const float *x, float *y,
                           float *arg)
{
    const int C = g->C;
    for (int oh = 0; oh < g->OH; oh++)
        for (int ow = 0; ow < g->OW; ow++) {
            size_t o = ((size_t)oh * g->OW + ow) * C;
            float *restrict yo = y + o, *restrict ao = arg + o;
            const float *x0 = x + ((size_t)oh * g->s * g->W +
                                   (size_t)ow * g->s) * C;
            memcpy(yo, x0, sizeof(float) * (size_t)C);
            memset(ao, 0, sizeof(float) * (size_t)C);
            for (int i = 0; i < g->p; i++)
                for (int j = i == 0; j < g->p; j++) {
                    size_t off = ((size_t)i * g->W + j) * C;
                    const float *restrict xt = x0 + off;
                    float tap = (float)off;
#pragma omp simd
                    for (int c = 0; c < C; c++) {
                        float v = xt[c], cur = yo[c], a = ao[c];
                        bool gt = isgreater(v, cur);   /* quiet: vectorises */
                        yo[c] = gt ? v : cur;
                        ao[c] = gt ? tap : a;
                    }
                }
        }
}

static void maxpool_forward(nn_layer *l, const float *x, float *y, int B,
                            bool training)
{
    (void)training;
    pool_geom g = pool_geometry(l);
#pragma omp parallel for schedule(static) if (NN_PAR_IF((size_t)B * l->in_size))
    for (int b = 0; b < B; b++)
        maxpool_sample(&g, x + (size_t)b * l->in_size,
                       y + (size_t)b * l->out_size,
                       l->scratch + (size_t)b * l->out_size);
}

/* Zeroes the part of dx (H, W, C) that no window reads: rows from OH*s and
 * columns from OW*s (for windows that tile, s == p). */
static void zero_uncovered(const pool_geom *g, float *dx)
{
    size_t rowlen = (size_t)g->W * g->C;
    int h_end = g->OH * g->s, w_end = g->OW * g->s;
    for (int h = 0; h < h_end; h++)
        memset(dx + h * rowlen + (size_t)w_end * g->C, 0,
               sizeof(float) * (size_t)(g->W - w_end) * g->C);
    memset(dx + h_end * rowlen, 0,
           sizeof(float) * (size_t)(g->H - h_end) * rowlen);
}

static void maxpool_backward(nn_layer *l, const float *x, const float *y,
                             float *dy, float *dx, int B)
{
    (void)x, (void)y;
    if (!dx)
        return;
    pool_geom g = pool_geometry(l);
    const int C = g.C;
    const bool tiles = g.s == g.p;
#pragma omp parallel for schedule(static) if (NN_PAR_IF((size_t)B * l->in_size))
    for (int b = 0; b < B; b++) {
        float *dxb = dx + (size_t)b * l->in_size;
        const float *dyb = dy + (size_t)b * l->out_size;
        const float *ab = l->scratch + (size_t)b * l->out_size;
        if (tiles)
            zero_uncovered(&g, dxb);
        else
            memset(dxb, 0, sizeof(float) * l->in_size);
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++) {
                size_t o = ((size_t)oh * g.OW + ow) * C;
                const float *restrict d = dyb + o, *restrict a = ab + o;
                float *d0 = dxb + ((size_t)oh * g.s * g.W +
                                   (size_t)ow * g.s) * C;
                if (!tiles) {
                    for (int c = 0; c < C; c++)
                        d0[(size_t)a[c] + c] += d[c];
                    continue;
                }
                /* each input is in one window: write every tap */
                for (int i = 0; i < g.p; i++)
                    for (int j = 0; j < g.p; j++) {
                        size_t off = ((size_t)i * g.W + j) * C;
                        float *restrict dt = d0 + off;
                        float tap = (float)off;
#pragma omp simd
                        for (int c = 0; c < C; c++) {
                            float v = d[c];
                            dt[c] = a[c] == tap ? v : 0.0f;
                        }
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
#pragma omp parallel for schedule(static) if (NN_PAR_IF((size_t)B * l->in_size))
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * l->in_size;
        float *yb = y + (size_t)b * l->out_size;
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++) {
                float *restrict yo = yb + ((size_t)oh * g.OW + ow) * C;
                const float *x0 = xb + ((size_t)oh * g.s * g.W +
                                        (size_t)ow * g.s) * C;
                memset(yo, 0, sizeof(float) * (size_t)C);
                for (int i = 0; i < g.p; i++)
                    for (int j = 0; j < g.p; j++) {
                        const float *restrict xt =
                            x0 + ((size_t)i * g.W + j) * C;
#pragma omp simd
                        for (int c = 0; c < C; c++)
                            yo[c] += xt[c];
                    }
#pragma omp simd
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
    const bool tiles = g.s == g.p;
#pragma omp parallel for schedule(static) if (NN_PAR_IF((size_t)B * l->in_size))
    for (int b = 0; b < B; b++) {
        float *dxb = dx + (size_t)b * l->in_size;
        const float *dyb = dy + (size_t)b * l->out_size;
        if (tiles)
            zero_uncovered(&g, dxb);
        else
            memset(dxb, 0, sizeof(float) * l->in_size);
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++) {
                const float *restrict d = dyb + ((size_t)oh * g.OW + ow) * C;
                float *d0 = dxb + ((size_t)oh * g.s * g.W +
                                   (size_t)ow * g.s) * C;
                for (int i = 0; i < g.p; i++)
                    for (int j = 0; j < g.p; j++) {
                        float *restrict dt = d0 + ((size_t)i * g.W + j) * C;
                        if (tiles) {
#pragma omp simd
                            for (int c = 0; c < C; c++)
                                dt[c] = d[c] * inv;
                        } else {
#pragma omp simd
                            for (int c = 0; c < C; c++)
                                dt[c] += d[c] * inv;
                        }
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

/*
 * gap.c - GlobalAveragePooling2D: the mean of each channel over the whole
 * image, as Keras' GlobalAveragePooling2D (channels last).
 *   x (B, H, W, C)  y (B, C)
 *   y[b, c] = 1/(H W) sum_{h, w} x[b, h, w, c]
 *   dx[b, h, w, c] = dy[b, c] / (H W)
 * Sums run over the pixels in row-major order, one sample per thread, so
 * results do not depend on the thread count.
 */
#include "nn/internal.h"
#include "nn/layer.h"

static nn_status gap_build(nn_layer *l, nn_error *err)
{
    const nn_layer_spec *sp = &l->spec;
    if (l->in.rank != 3)
        return nn_fail(err, NN_ERR_SHAPE, "global_average_pooling2d: needs "
                       "(H, W, C) input, got a vector of %zu", l->in_size);
    if (sp->activation != NN_ACT_LINEAR || sp->units || sp->kernel ||
        sp->stride || sp->padding || sp->rate != 0.0f)
        return nn_fail(err, NN_ERR_ARG, "global_average_pooling2d: takes no "
                       "arguments");
    l->out = nn_shape1(l->in.dim[2]);
    return NN_OK;
}

static void gap_forward(nn_layer *l, const float *x, float *y, int B,
                        bool training)
{
    (void)training;
    const size_t S = (size_t)l->in.dim[0] * l->in.dim[1];
    const size_t C = (size_t)l->in.dim[2];
    const float inv = 1.0f / (float)S;
#pragma omp parallel for schedule(static) if (NN_PAR_IF((size_t)B * l->in_size))
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * l->in_size;
        float *yb = y + (size_t)b * C;
        for (size_t c = 0; c < C; c++)
            yb[c] = 0.0f;
        for (size_t s = 0; s < S; s++)
            for (size_t c = 0; c < C; c++)
                yb[c] += xb[s * C + c];
        for (size_t c = 0; c < C; c++)
            yb[c] *= inv;
    }
}

static void gap_backward(nn_layer *l, const float *x, const float *y,
                         float *dy, float *dx, int B)
{
    (void)x, (void)y;
    if (!dx)
        return;
    const size_t S = (size_t)l->in.dim[0] * l->in.dim[1];
    const size_t C = (size_t)l->in.dim[2];
    const float inv = 1.0f / (float)S;
#pragma omp parallel for schedule(static) if (NN_PAR_IF((size_t)B * l->in_size))
    for (int b = 0; b < B; b++) {
        const float *g = dy + (size_t)b * C;
        float *db = dx + (size_t)b * l->in_size;
        for (size_t s = 0; s < S; s++)
            for (size_t c = 0; c < C; c++)
                db[s * C + c] = g[c] * inv;
    }
}

const nn_layer_ops nn_gap2d_ops = {
    .build = gap_build,
    .forward = gap_forward,
    .backward = gap_backward,
};

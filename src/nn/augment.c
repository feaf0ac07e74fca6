/*
 * augment.c - random shift / rotation / scale of training images
 * (augment.h has the geometry and the contract).
 *   x (B, H, W, C) in place; scratch: params (B, 4) then one copy of each
 *   image (B, H, W, C), so images run in parallel with no shared buffer.
 *   inverse map of an output pixel p':  p = R(-angle) (p' - c - d) / s + c
 * The parameters are drawn serially first, so the result depends on the
 * seed alone, not on the thread count.
 */
#include <math.h>
#include <string.h>

#include "nn/augment.h"
#include "nn/internal.h"


static const double DEG_TO_RAD = 3.14159265358979323846 / 180.0;

nn_status nn_augment_check(const nn_augment *p, nn_error *err)
{
    if (!p)
        return nn_fail(err, NN_ERR_ARG, "augment: no parameters");
    if (!(isfinite(p->shift) && p->shift >= 0.0f))
        return nn_fail(err, NN_ERR_ARG, "augment: shift must be a finite "
                       "number of pixels >= 0, got %g", (double)p->shift);
    if (!(p->rotate >= 0.0f && p->rotate <= 180.0f))
        return nn_fail(err, NN_ERR_ARG, "augment: rotation must be in "
                       "[0, 180] degrees, got %g", (double)p->rotate);
    if (!(p->scale >= 0.0f && p->scale < 1.0f))
        return nn_fail(err, NN_ERR_ARG, "augment: scale change must be in "
                       "[0, 1), got %g", (double)p->scale);
    return NN_OK;
}

bool nn_augment_enabled(const nn_augment *p)
{
    return p && (p->shift != 0.0f || p->rotate != 0.0f || p->scale != 0.0f);
}

size_t nn_augment_scratch_floats(nn_shape shape, int B)
{
    if (shape.rank != 3 || B <= 0)
        return 0;
    return (size_t)B * (nn_shape_size(shape) + 4);
}

void nn_augment_one(const float *src, float *dst, int H, int W, int C,
                    float dx, float dy, float angle_deg, float s)
{
    if (H <= 0 || W <= 0 || C <= 0)
        return;
    size_t n = (size_t)H * W * C;
    if (!(s > 0.0f && isfinite(s) && isfinite(dx) && isfinite(dy) &&
          isfinite(angle_deg))) {
        memset(dst, 0, sizeof(float) * n);
        return;
    }
    /* Computed in double: at 90 degrees cos is 6e-17, not float's -4e-8,
     * so quarter turns land on pixel centres. */
    double th = (double)angle_deg * DEG_TO_RAD;
    float a = (float)(cos(th) / s), b = (float)(sin(th) / s);
    float cx = 0.5f * (float)(W - 1), cy = 0.5f * (float)(H - 1);
    for (int i = 0; i < H; i++) {
        float v = (float)i - cy - dy;
        for (int j = 0; j < W; j++) {
            float u = (float)j - cx - dx;
            float xs = a * u - b * v + cx;     /* source column */
            float ys = b * u + a * v + cy;     /* source row */
            float *o = dst + ((size_t)i * W + j) * C;
            /* Also catches NaN and keeps the int conversion in range. */
            if (!(xs > -1.0f && xs < (float)W && ys > -1.0f &&
                  ys < (float)H)) {
                memset(o, 0, sizeof(float) * C);
                continue;
            }
            float xf = floorf(xs), yf = floorf(ys);
            int x0 = (int)xf, y0 = (int)yf;
            float fx = xs - xf, fy = ys - yf;
            /* The four neighbours' offsets, or -1 outside the image. */
            bool xl = x0 >= 0, xr = x0 + 1 < W;
            bool yt = y0 >= 0, yb = y0 + 1 < H;
            ptrdiff_t k00 = yt && xl ? ((ptrdiff_t)y0 * W + x0) * C : -1;
            ptrdiff_t k01 = yt && xr ? ((ptrdiff_t)y0 * W + x0 + 1) * C : -1;
            ptrdiff_t k10 = yb && xl ? ((ptrdiff_t)(y0 + 1) * W + x0) * C : -1;
            ptrdiff_t k11 = yb && xr ? ((ptrdiff_t)(y0 + 1) * W + x0 + 1) * C
                                     : -1;
            for (int c = 0; c < C; c++) {
                float p00 = k00 >= 0 ? src[k00 + c] : 0.0f;
                float p01 = k01 >= 0 ? src[k01 + c] : 0.0f;
                float p10 = k10 >= 0 ? src[k10 + c] : 0.0f;
                float p11 = k11 >= 0 ? src[k11 + c] : 0.0f;
                float r = (p00 * (1.0f - fx) + p01 * fx) * (1.0f - fy) +
                          (p10 * (1.0f - fx) + p11 * fx) * fy;
                /* A convex combination: clamp away rounding so the value
                 * never leaves its neighbours' range. */
                float lo = fminf(fminf(p00, p01), fminf(p10, p11));
                float hi = fmaxf(fmaxf(p00, p01), fmaxf(p10, p11));
                o[c] = r < lo ? lo : r > hi ? hi : r;
            }
        }
    }
}

void nn_augment_batch(float *x, int B, nn_shape shape,
                      const nn_augment *p, nn_rng *rng,
                      float *scratch)
{
    if (shape.rank != 3 || B <= 0 || !nn_augment_enabled(p) ||
        nn_augment_check(p, NULL) != NN_OK)
        return;
    int H = shape.dim[0], W = shape.dim[1], C = shape.dim[2];
    size_t n = nn_shape_size(shape);
    float *par = scratch;                      /* (B, 4): dx, dy, angle, s */
    float *copy = scratch + (size_t)B * 4;     /* (B, H, W, C) */

    /* Serially, in image order: the draws do not depend on threads. */
    for (int b = 0; b < B; b++) {
        float *q = par + (size_t)b * 4;
        q[0] = p->shift * (2.0f * nn_rng_uniform(rng) - 1.0f);
        q[1] = p->shift * (2.0f * nn_rng_uniform(rng) - 1.0f);
        q[2] = p->rotate * (2.0f * nn_rng_uniform(rng) - 1.0f);
        q[3] = 1.0f + p->scale * (2.0f * nn_rng_uniform(rng) - 1.0f);
    }

    int nt = nn_threads_for((double)B * (double)n, NN_PAR_MIN_AUG);
    (void)nt;   /* unused without OpenMP */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int b = 0; b < B; b++) {
        float *xb = x + (size_t)b * n, *cb = copy + (size_t)b * n;
        const float *q = par + (size_t)b * 4;
        memcpy(cb, xb, sizeof(float) * n);
        nn_augment_one(cb, xb, H, W, C, q[0], q[1], q[2], q[3]);
    }
}

void nn_augment_skip(int B, nn_shape shape, const nn_augment *p,
                     nn_rng *rng)
{
    if (shape.rank != 3 || B <= 0 || !nn_augment_enabled(p) ||
        nn_augment_check(p, NULL) != NN_OK)
        return;
    for (long i = 0; i < 4L * B; i++)   /* nn_augment_batch's four draws */
        (void)nn_rng_uniform(rng);
}

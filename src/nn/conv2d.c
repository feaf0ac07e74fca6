/*
 * conv2d.c - 2-D convolution (Keras Conv2D), y = f(conv(x, W) + b).
 *   x (B, H, W, C)  W (k, k, C, F)  b (F)  y (B, OH, OW, F)
 * Channels last; padding "valid" (OH = floor((H - k) / s) + 1) or "same"
 * (OH = ceil(H / s), padding split as TensorFlow does: the extra row or
 * column goes to the bottom / right).
 *
 * Implemented as im2col + matrix products. Each output pixel becomes a row
 * of X_col (B*OH*OW, K + 1), K = k*k*C, ordered (ki, kj, c) like W, with a
 * trailing 1. Since the parameter block stores W (K, F) followed by b (F),
 * it reads as one matrix Wb (K + 1, F), and
 *   forward:   Z = X_col Wb                 (bias included)   y = f(Z)
 *   backward:  dZ = dy * f'(.)
 *              [dW; db] = X_col^T dZ        (one product)
 *              dX_col = dZ W^T              dx = col2im(dX_col)
 * The work is split into chunks of samples that run on the OpenMP threads
 * and stay in cache (see "chunks"); backward rebuilds a chunk's X_col rather
 * than keeping it from forward. When K + 1 is small (a first layer on grey
 * images: 3*3*1 + 1 = 10) a BLAS product is mostly overhead, and a plain
 * loop over output rows replaces it. Softmax, if chosen, is taken over the
 * F channels of every pixel (Keras' last axis).
 */
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef NN_USE_CBLAS
#include <cblas.h>
#endif

#include "nn/internal.h"
#include "nn/kernels.h"
#include "nn/layer.h"

/* Scratch limit per sample (floats) for X_col: 1 GiB. */
#define CONV_MAX_SCRATCH ((size_t)1 << 28)
/* Rows of X_col per chunk of work (see "chunks" below). */
#define CONV_CHUNK_ROWS 512
/* The plain-loop path takes K + 1 <= CONV_SMALL_K and (K + 1) * F <=
 * CONV_SMALL_W (its weight gradient lives on the stack); above, BLAS. */
#define CONV_SMALL_K 32
#define CONV_SMALL_W 4096

/* The plain-loop kernels are compiled for several instruction sets
 * (NN_CLONES, internal.h). */

typedef struct conv_geom {
    int H, W, C;        /* input */
    int OH, OW, F;      /* output */
    int k, s;           /* kernel, stride */
    int pt, pl;         /* padding on top and left */
    int K;              /* k * k * C */
    size_t rows;        /* OH * OW: X_col rows per sample */
    size_t ld;          /* X_col row stride, >= K + 1 */
    bool small;         /* plain loops rather than BLAS */
} conv_geom;

/* X_col's row stride: K + 1, rounded up to 16 floats (64 bytes) for the
 * BLAS path so that every row starts equally aligned. */
static size_t conv_ld(size_t K)
{
    return K + 1 <= CONV_SMALL_K ? K + 1 : (K + 1 + 15) / 16 * 16;
}

/* Output size along one axis and the padding before it; false if the
 * kernel does not fit. */
static bool conv_axis(int in, int k, int s, nn_padding pad, int *out,
                      int *before)
{
    if (pad == NN_PAD_SAME) {
        *out = (in + s - 1) / s;
        long total = (long)(*out - 1) * s + k - in;
        *before = total > 0 ? (int)(total / 2) : 0;
        return true;
    }
    if (in < k)
        return false;
    *out = (in - k) / s + 1;
    *before = 0;
    return true;
}

static conv_geom conv_geometry(const nn_layer *l)
{
    conv_geom g;
    g.H = l->in.dim[0], g.W = l->in.dim[1], g.C = l->in.dim[2];
    g.F = l->spec.units;
    g.k = l->spec.kernel;
    g.s = l->spec.stride > 0 ? l->spec.stride : 1;
    conv_axis(g.H, g.k, g.s, l->spec.padding, &g.OH, &g.pt);
    conv_axis(g.W, g.k, g.s, l->spec.padding, &g.OW, &g.pl);
    g.K = g.k * g.k * g.C;
    g.rows = (size_t)g.OH * (size_t)g.OW;
    g.ld = conv_ld((size_t)g.K);
    g.small = g.K + 1 <= CONV_SMALL_K &&
              (size_t)(g.K + 1) * g.F <= CONV_SMALL_W;
    return g;
}

static nn_status conv_build(nn_layer *l, nn_error *err)
{
    const nn_layer_spec *s = &l->spec;
    if (l->in.rank != 3)
        return nn_fail(err, NN_ERR_SHAPE, "conv2d: needs (H, W, C) input, "
                       "got a vector of %zu", l->in_size);
    if (s->units < 1 || s->units > NN_MAX_DIM)
        return nn_fail(err, NN_ERR_ARG, "conv2d: filters must be 1..%d, "
                       "got %d", NN_MAX_DIM, s->units);
    if (s->kernel < 1 || s->kernel > 1024)
        return nn_fail(err, NN_ERR_ARG, "conv2d: kernel must be 1..1024, "
                       "got %d", s->kernel);
    if (s->stride < 0 || s->stride > 1024)
        return nn_fail(err, NN_ERR_ARG, "conv2d: stride must be 1..1024, "
                       "got %d", s->stride);
    if ((unsigned)s->padding > NN_PAD_SAME)
        return nn_fail(err, NN_ERR_ARG, "conv2d: unknown padding %d",
                       (int)s->padding);
    if ((unsigned)s->activation > NN_ACT_SOFTMAX)
        return nn_fail(err, NN_ERR_ARG, "conv2d: unknown activation %d",
                       (int)s->activation);
    int H = l->in.dim[0], W = l->in.dim[1], str = s->stride ? s->stride : 1;
    int oh, ow, p;
    if (!conv_axis(H, s->kernel, str, s->padding, &oh, &p) ||
        !conv_axis(W, s->kernel, str, s->padding, &ow, &p))
        return nn_fail(err, NN_ERR_SHAPE, "conv2d: kernel %d does not fit "
                       "the %dx%d input with padding=valid", s->kernel, H, W);
    l->out = nn_shape3(oh, ow, s->units);
    size_t K = (size_t)s->kernel * (size_t)s->kernel * (size_t)l->in.dim[2];
    size_t rows = (size_t)oh * (size_t)ow;
    if (K + 16 > CONV_MAX_SCRATCH / rows)
        return nn_fail(err, NN_ERR_LIMIT, "conv2d: im2col buffer of %zu x "
                       "%zu floats per sample is too large", rows, K + 1);
    l->n_params = K * (size_t)s->units + (size_t)s->units;
    /* X_col, plus room for the per-chunk weight gradients */
    size_t cs = CONV_CHUNK_ROWS / rows < 1 ? 1 : CONV_CHUNK_ROWS / rows;
    l->scratch_per_sample = rows * conv_ld(K) +
                            ((K + 1) * (size_t)s->units + cs - 1) / cs;
    return NN_OK;
}

static void conv_init(nn_layer *l, nn_rng *rng)
{
    int k2 = l->spec.kernel * l->spec.kernel, F = l->spec.units;
    size_t nw = l->n_params - (size_t)F;
    nn_glorot_uniform(l->w, nw, k2 * l->in.dim[2], k2 * F, rng);
    memset(l->w + nw, 0, sizeof(float) * (size_t)F);
}

/* One row of X_col: the K taps of output pixel (oh, ow) of x (H, W, C),
 * 0 outside the image, then 1. For a fixed kernel row the k*C inputs are
 * contiguous, so away from the left/right border that is k runs of k*C
 * floats. */
static inline void im2col_row(const conv_geom *g, const float *x, int oh,
                              int ow, float *restrict r)
{
    const int kc = g->k * g->C;
    const int ih0 = oh * g->s - g->pt, iw0 = ow * g->s - g->pl;
    const bool inside_w = iw0 >= 0 && iw0 + g->k <= g->W;
    for (int ki = 0; ki < g->k; ki++) {
        int ih = ih0 + ki;
        float *rk = r + (size_t)ki * kc;
        if (ih < 0 || ih >= g->H) {
            memset(rk, 0, sizeof(float) * (size_t)kc);
            continue;
        }
        const float *xr = x + (size_t)ih * g->W * g->C;
        if (inside_w) {
            memcpy(rk, xr + (size_t)iw0 * g->C, sizeof(float) * (size_t)kc);
            continue;
        }
        for (int kj = 0; kj < g->k; kj++) {
            int iw = iw0 + kj;
            float *d = rk + (size_t)kj * g->C;
            if (iw < 0 || iw >= g->W)
                memset(d, 0, sizeof(float) * (size_t)g->C);
            else
                memcpy(d, xr + (size_t)iw * g->C, sizeof(float) * (size_t)g->C);
        }
    }
    r[g->K] = 1.0f;
}

/* One sample: x (H, W, C) -> col (OH*OW, ld). */
static void im2col(const conv_geom *g, const float *x, float *col)
{
    for (int oh = 0; oh < g->OH; oh++)
        for (int ow = 0; ow < g->OW; ow++)
            im2col_row(g, x, oh, ow,
                       col + ((size_t)oh * g->OW + ow) * g->ld);
}

/* One sample, the adjoint of im2col: dx (H, W, C) = sum of the col rows'
 * taps at their input positions (the last column is ignored). */
static void col2im(const conv_geom *g, const float *col, float *dx)
{
    memset(dx, 0, sizeof(float) * (size_t)g->H * g->W * g->C);
    const int kc = g->k * g->C;
    for (int oh = 0; oh < g->OH; oh++) {
        int ih0 = oh * g->s - g->pt;
        for (int ow = 0; ow < g->OW; ow++) {
            int iw0 = ow * g->s - g->pl;
            const float *r = col + ((size_t)oh * g->OW + ow) * g->ld;
            bool inside_w = iw0 >= 0 && iw0 + g->k <= g->W;
            for (int ki = 0; ki < g->k; ki++) {
                int ih = ih0 + ki;
                if (ih < 0 || ih >= g->H)
                    continue;
                const float *restrict rk = r + (size_t)ki * kc;
                float *xr = dx + (size_t)ih * g->W * g->C;
                if (inside_w) {
                    float *restrict d = xr + (size_t)iw0 * g->C;
#pragma omp simd
                    for (int j = 0; j < kc; j++)
                        d[j] += rk[j];
                    continue;
                }
                for (int kj = 0; kj < g->k; kj++) {
                    int iw = iw0 + kj;
                    if (iw < 0 || iw >= g->W)
                        continue;
                    float *restrict d = xr + (size_t)iw * g->C;
                    const float *restrict src = rk + (size_t)kj * g->C;
#pragma omp simd
                    for (int c = 0; c < g->C; c++)
                        d[c] += src[c];
                }
            }
        }
    }
}

/* ---------------------------------------------------------- activation */

/* y = f(z) in place on rows of F. ReLU here is branch-free (the sign of a
 * convolution output is unpredictable), the rest is nn_activate. */
NN_CLONES
static void conv_activate(nn_activation a, float *z, int M, int F)
{
    if (a != NN_ACT_RELU) {
        nn_activate(a, z, M, F);
        return;
    }
    size_t n = (size_t)M * (size_t)F;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float v = z[i];
        z[i] = v > 0.0f ? v : 0.0f;
    }
}

/* dz = dy * f'(.) in place on dy, from y = f(z). */
NN_CLONES
static void conv_activate_backward(nn_activation a, const float *y,
                                   float *dy, int M, int F)
{
    if (a != NN_ACT_RELU) {
        nn_activate_backward(a, y, dy, M, F);
        return;
    }
    size_t n = (size_t)M * (size_t)F;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float d = dy[i];
        dy[i] = y[i] > 0.0f ? d : 0.0f;
    }
}

/* ------------------------------------------------ small K: plain loops */

/* One X_col row into a (K + 1 <= CONV_SMALL_K floats), for the small-K
 * loops: single-channel taps are copied one by one (a call per 3-float run
 * would cost more than the copy). */
static inline void small_row(const conv_geom *g, const float *x, int oh,
                             int ow, float *a)
{
    if (g->C != 1) {
        im2col_row(g, x, oh, ow, a);
        return;
    }
    const int ih0 = oh * g->s - g->pt, iw0 = ow * g->s - g->pl;
    int t = 0;
    for (int ki = 0; ki < g->k; ki++) {
        int ih = ih0 + ki;
        bool row_in = ih >= 0 && ih < g->H;
        const float *xr = x + (size_t)(row_in ? ih : 0) * g->W;
        for (int kj = 0; kj < g->k; kj++, t++) {
            int iw = iw0 + kj;
            a[t] = row_in && iw >= 0 && iw < g->W ? xr[iw] : 0.0f;
        }
    }
    a[g->K] = 1.0f;
}

/* The plain loops work on blocks of 16 channels (one AVX-512 register):
 * F is covered by ceil(F / 16) blocks, the last one padded with zeros.
 * Weights and gradients are held block by block, wblk (blocks, K + 1, 16),
 * in local arrays of at most this many floats. */
#define SMALL_BLK_MAX (CONV_SMALL_W + 16 * CONV_SMALL_K)

/* A walk over the output pixels (b, oh, ow) of a chunk, four at a time:
 * their X_col rows go to a4 (4, CONV_SMALL_K), rows past the end are zero.
 * Returns how many are real. */
typedef struct small_cursor {
    int b, oh, ow;
    int tap[CONV_SMALL_K];   /* offset of tap k from the window's corner */
} small_cursor;

static void small_cursor_init(const conv_geom *g, small_cursor *cur)
{
    cur->b = cur->oh = cur->ow = 0;
    int t = 0;
    for (int ki = 0; ki < g->k; ki++)
        for (int kj = 0; kj < g->k; kj++)
            for (int c = 0; c < g->C; c++)
                cur->tap[t++] = (ki * g->W + kj) * g->C + c;
}

static int small_rows4(const conv_geom *g, const float *x, size_t in_size,
                       int nb, small_cursor *cur, float a4[4][CONV_SMALL_K])
{
    int nr = 0;
    for (int i = 0; i < 4; i++) {
        if (cur->b >= nb) {
            memset(a4[i], 0, sizeof a4[i]);
            continue;
        }
        const float *xb = x + (size_t)cur->b * in_size;
        int ih0 = cur->oh * g->s - g->pt, iw0 = cur->ow * g->s - g->pl;
        if (ih0 >= 0 && ih0 + g->k <= g->H && iw0 >= 0 &&
            iw0 + g->k <= g->W) {
            /* inside the image: no checks */
            const float *p = xb + ((size_t)ih0 * g->W + iw0) * g->C;
            for (int k = 0; k < g->K; k++)
                a4[i][k] = p[cur->tap[k]];
            a4[i][g->K] = 1.0f;
        } else {
            small_row(g, xb, cur->oh, cur->ow, a4[i]);
        }
        nr++;
        if (++cur->ow == g->OW) {
            cur->ow = 0;
            if (++cur->oh == g->OH)
                cur->oh = 0, cur->b++;
        }
    }
    return nr;
}

/* Copies n <= 16 floats; a constant size when whole, so it inlines. */
static inline void copy16(float *restrict d, const float *restrict s, int n)
{
    if (n == 16)
        memcpy(d, s, 16 * sizeof(float));
    else
        memcpy(d, s, sizeof(float) * (size_t)n);
}

/* z (nb*OH*OW, F) = X_col Wb for nb samples x (nb, H, W, C): four output
 * rows at a time (four independent sums keep the adders busy), a block of
 * 16 channels in registers; X_col rows are built on the fly. Every z adds
 * its K + 1 terms in order k = 0, 1, ... */
NN_CLONES
static void small_forward(const conv_geom *g, const float *x, size_t in_size,
                          int nb, const float *wb, float *z)
{
    const int F = g->F, Kp = g->K + 1, nblk = (F + 15) / 16;
    const size_t n_rows = (size_t)nb * g->rows;
    small_cursor cur;
    small_cursor_init(g, &cur);
    float a4[4][CONV_SMALL_K], wblk[SMALL_BLK_MAX];
    for (int q = 0; q < nblk; q++)
        for (int k = 0; k < Kp; k++)
            for (int j = 0; j < 16; j++) {
                int f = q * 16 + j;
                wblk[((size_t)q * Kp + k) * 16 + j] =
                    f < F ? wb[(size_t)k * F + f] : 0.0f;
            }
    for (size_t r = 0; r < n_rows; r += 4) {
        int nr = small_rows4(g, x, in_size, nb, &cur, a4);
        for (int q = 0; q < nblk; q++) {
            const float *wq = wblk + (size_t)q * Kp * 16;
            float c0[16], c1[16], c2[16], c3[16];
#pragma omp simd
            for (int j = 0; j < 16; j++) {
                c0[j] = a4[0][0] * wq[j];
                c1[j] = a4[1][0] * wq[j];
                c2[j] = a4[2][0] * wq[j];
                c3[j] = a4[3][0] * wq[j];
            }
            for (int k = 1; k < Kp; k++) {
                const float *wk = wq + (size_t)k * 16;
                const float e0 = a4[0][k], e1 = a4[1][k], e2 = a4[2][k],
                            e3 = a4[3][k];
#pragma omp simd
                for (int j = 0; j < 16; j++) {
                    c0[j] += e0 * wk[j];
                    c1[j] += e1 * wk[j];
                    c2[j] += e2 * wk[j];
                    c3[j] += e3 * wk[j];
                }
            }
            const float *c[4] = {c0, c1, c2, c3};
            int w = F - q * 16 < 16 ? F - q * 16 : 16;
            for (int i = 0; i < nr; i++)
                copy16(z + (r + (size_t)i) * F + (size_t)q * 16, c[i], w);
        }
    }
}

/* [dW; db] (K + 1, F) = X_col^T dZ over nb samples, adding rows in order
 * (four at a time). When `relu_y` is not NULL, dZ = dy * [y > 0] is formed
 * on the fly (dy left as it is); otherwise dy already holds dZ. The sums
 * build up in a local array (cache lines of the thread's own) and are then
 * copied out. */
NN_CLONES
static void small_weight_grad(const conv_geom *g, const float *x,
                              size_t in_size, int nb, const float *relu_y,
                              const float *dy, float *out)
{
    const int F = g->F, Kp = g->K + 1, nblk = (F + 15) / 16;
    const size_t n_rows = (size_t)nb * g->rows;
    small_cursor cur;
    small_cursor_init(g, &cur);
    float a4[4][CONV_SMALL_K], acc[SMALL_BLK_MAX];   /* (blocks, K + 1, 16) */
    memset(acc, 0, sizeof(float) * (size_t)nblk * Kp * 16);
    for (size_t r = 0; r < n_rows; r += 4) {
        int nr = small_rows4(g, x, in_size, nb, &cur, a4);
        for (int q = 0; q < nblk; q++) {
            int w = F - q * 16 < 16 ? F - q * 16 : 16;
            float d[4][16];
            memset(d, 0, sizeof d);
            for (int i = 0; i < nr; i++) {
                size_t o = (r + (size_t)i) * F + (size_t)q * 16;
                copy16(d[i], dy + o, w);
                if (relu_y) {
                    float m[16] = {0};
                    copy16(m, relu_y + o, w);
#pragma omp simd
                    for (int j = 0; j < 16; j++)
                        d[i][j] = m[j] > 0.0f ? d[i][j] : 0.0f;
                }
            }
            float *aq = acc + (size_t)q * Kp * 16;
            for (int k = 0; k < Kp; k++) {
                const float e0 = a4[0][k], e1 = a4[1][k], e2 = a4[2][k],
                            e3 = a4[3][k];
                float *ak = aq + (size_t)k * 16;
#pragma omp simd
                for (int j = 0; j < 16; j++)
                    ak[j] = (((ak[j] + e0 * d[0][j]) + e1 * d[1][j]) +
                             e2 * d[2][j]) + e3 * d[3][j];
            }
        }
    }
    for (int k = 0; k < Kp; k++)
        for (int f = 0; f < F; f++)
            out[(size_t)k * F + f] = acc[((size_t)(f / 16) * Kp + k) * 16 +
                                         f % 16];
}

/* ------------------------------------------------------------ chunks */

/* The batch is processed in chunks of a few samples (about CONV_CHUNK_ROWS
 * rows of X_col): im2col, the products and the activation of one chunk run
 * back to back on one thread, while its X_col is still in that core's
 * cache. Chunks go to the OpenMP threads; each thread reuses its own X_col
 * region. The chunk size follows from the layer's shape only, and so do
 * the blocks nn_gemm cuts a chunk's products into, so the results never
 * depend on the thread count: rows are independent, and the weight
 * gradient is a sum of per-chunk products added in chunk order. (BLAS
 * runs on one thread inside libnn: threads.c.) */
static int conv_chunk_samples(const conv_geom *g)
{
    size_t cs = CONV_CHUNK_ROWS / g->rows;
    return cs < 1 ? 1 : (int)cs;
}

/* Threads for nch chunks of cs samples: at most B / cs, since thread t
 * uses X_col samples [t*cs, (t+1)*cs) of the scratch. */
static int conv_threads(int B, int cs, int nch)
{
#ifdef _OPENMP
    int t = omp_in_parallel() ? 1 : omp_get_max_threads();
    int cap = B / cs < nch ? B / cs : nch;
    return t < cap ? t : cap < 1 ? 1 : cap;
#else
    (void)B, (void)cs, (void)nch;
    return 1;
#endif
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---------------------------------------------------- forward, backward */

static void conv_forward(nn_layer *l, const float *x, float *y, int B,
                         bool training)
{
    (void)training;
    const conv_geom g = conv_geometry(l);
    const size_t per = g.rows * g.ld;            /* X_col floats per sample */
    const bool small = g.small;
    const int cs = conv_chunk_samples(&g), nch = (B + cs - 1) / cs;
    const int nt = conv_threads(B, cs, nch);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *col = l->scratch + (size_t)thread_id() * cs * per;
        for (int ch = thread_id(); ch < nch; ch += nt) {
            int b0 = ch * cs, nb = B - b0 < cs ? B - b0 : cs;
            int M = nb * (int)g.rows;
            const float *xc = x + (size_t)b0 * l->in_size;
            float *yc = y + (size_t)b0 * l->out_size;
            if (small) {
                small_forward(&g, xc, l->in_size, nb, l->w, yc);
            } else {
                for (int b = 0; b < nb; b++)
                    im2col(&g, xc + (size_t)b * l->in_size,
                           col + (size_t)b * per);
                /* Z (M, F) = X_col (M, K + 1) Wb (K + 1, F) */
                nn_gemm(false, false, M, g.F, g.K + 1, 1.0f, col, (int)g.ld,
                        l->w, g.F, 0.0f, yc, g.F);
            }
            conv_activate(l->spec.activation, yc, M, g.F);
        }
    }
}

static void conv_backward(nn_layer *l, const float *x, const float *y,
                          float *dy, float *dx, int B)
{
    const conv_geom g = conv_geometry(l);
    const size_t per = g.rows * g.ld;
    const size_t nw = ((size_t)g.K + 1) * g.F;  /* (K + 1, F) */
    const bool small = g.small;
    const bool relu = l->spec.activation == NN_ACT_RELU && !l->dy_is_preact;
    const int cs = conv_chunk_samples(&g), nch = (B + cs - 1) / cs;
    const int nt = conv_threads(B, cs, nch);
    /* chunk c > 0 puts its [dW; db] at part + (c - 1) * nw */
    float *part = l->scratch + (size_t)B * per;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *col = l->scratch + (size_t)thread_id() * cs * per;
        for (int ch = thread_id(); ch < nch; ch += nt) {
            int b0 = ch * cs, nb = B - b0 < cs ? B - b0 : cs;
            int M = nb * (int)g.rows;
            float *dz = dy + (size_t)b0 * l->out_size;
            const float *yc = y + (size_t)b0 * l->out_size;
            const float *xc = x + (size_t)b0 * l->in_size;
            /* [dW; db] of the chunk = X_col^T dZ */
            float *dwc = ch ? part + (size_t)(ch - 1) * nw : l->dw;
            if (small && !dx && relu) {
                /* dZ formed inside, dy left alone */
                small_weight_grad(&g, xc, l->in_size, nb, yc, dz, dwc);
                continue;
            }
            if (!l->dy_is_preact)
                conv_activate_backward(l->spec.activation, yc, dz, M, g.F);
            if (small) {
                small_weight_grad(&g, xc, l->in_size, nb, NULL, dz, dwc);
                if (!dx)
                    continue;
            }
            /* X_col again: cheaper than keeping it from forward */
            for (int b = 0; b < nb; b++)
                im2col(&g, xc + (size_t)b * l->in_size,
                       col + (size_t)b * per);
            if (!small)
                nn_gemm(true, false, g.K + 1, g.F, M, 1.0f, col, (int)g.ld,
                        dz, g.F, 0.0f, dwc, g.F);
            if (!dx)
                continue;
            /* dX_col (M, K) = dZ W^T over X_col, then folded back */
            nn_gemm(false, true, M, g.K, g.F, 1.0f, dz, g.F, l->w, g.F, 0.0f,
                    col, (int)g.ld);
            for (int b = 0; b < nb; b++)
                col2im(&g, col + (size_t)b * per,
                       dx + (size_t)(b0 + b) * l->in_size);
        }
    }
    /* add the chunks' gradients in chunk order */
    for (int c = 1; c < nch; c++) {
        const float *restrict p = part + (size_t)(c - 1) * nw;
        float *restrict dw = l->dw;
#pragma omp simd
        for (size_t e = 0; e < nw; e++)
            dw[e] += p[e];
    }
}

const nn_layer_ops nn_conv2d_ops = {
    .build = conv_build,
    .init = conv_init,
    .forward = conv_forward,
    .backward = conv_backward,
};

/*
 * quant.c - int8 post-training quantization (docs/quantization.md) and the
 * library's int8 inference, with the kernels of plan_kernels.h (the code an
 * exported model runs) and, for dense layers, VNNI products where the CPU
 * has them (quant_vnni.c; the same integers).
 *
 * Quantization of a real value r: q = clamp(round(r / s) + z, -128, 127).
 *   input         s = 1/255, z = -128: q = pixel - 128, exactly
 *   weights       per output channel, s_w = max |w| / 127, z = 0
 *   activations   s, z from the [min, max] seen on calibration images
 *                 (widened to hold 0): s = (max - min) / 255,
 *                 z = round(-128 - min / s)
 *   biases        int32, s = s_x s_w, z = 0
 *   requantize    acc * (s_x s_w / s_y) = acc * M / 2^n, M in [2^30, 2^31)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/model.h"
#include "nn/plan.h"
#include "nn/quant.h"

/* ------------------------------------------------------------ calibration */

typedef struct range {
    float zmin, zmax;         /* pre-activation */
    float amin, amax;         /* after the activation, before pooling */
} range;

static void widen(float *mn, float *mx, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *mn = v[i] < *mn ? v[i] : *mn;
        *mx = v[i] > *mx ? v[i] : *mx;
    }
}

/* One image through the float plan, step by step without fusion, widening
 * r[step]. a, z, o: buffers of max(max_io, max_conv) floats. */
static void calib_sample(const nn_plan *p, const uint8_t *px, float *a,
                         float *z, float *o, range *r)
{
    for (size_t i = 0; i < p->in_size; i++)
        a[i] = (float)px[i] * (1.0f / 255.0f);
    float *x = a;
    for (int i = 0; i < p->n_steps; i++) {
        const nn_step *s = &p->step[i];
        nnk_geom g = s->g;
        size_t conv = (size_t)g.OH * g.OW * g.F;
        switch (s->kind) {
        case NN_STEP_DENSE:
            nnk_dense_f32(x, g.C, g.F, s->w, s->b, NNK_LINEAR, z);
            break;
        case NN_STEP_CONV: {
            nnk_geom g1 = g;      /* unpooled */
            g1.pool = NNK_POOL_NONE, g1.PH = g.OH, g1.PW = g.OW;
            nnk_conv_f32(&g1, x, s->w, s->b, NNK_LINEAR, z);
            break;
        }
        case NN_STEP_AFFINE:
            nnk_affine_f32(x, g.H, g.C, s->w, s->b, z);
            break;
        case NN_STEP_POOL:
            nnk_pool_f32(&g, x, o);
            break;
        case NN_STEP_GAP:
            nnk_gap_f32(x, g.H, g.C, o);
            break;
        case NN_STEP_LEAKY:
            nnk_leaky_f32(x, g.H, s->alpha, o);
            widen(&r[i].amin, &r[i].amax, o, (size_t)g.H);
            break;
        }
        if (s->kind != NN_STEP_POOL && s->kind != NN_STEP_GAP &&
            s->kind != NN_STEP_LEAKY) {
            widen(&r[i].zmin, &r[i].zmax, z, conv);
            if (s->act == NNK_SOFTMAX)
                nnk_softmax_f32(z, g.OH * g.OW, g.F);
            else
                for (size_t j = 0; j < conv; j++)
                    z[j] = nnk_act1(s->act, z[j]);
            widen(&r[i].amin, &r[i].amax, z, conv);
            if (g.pool != NNK_POOL_NONE) {
                nnk_geom gp = {.H = g.OH, .W = g.OW, .C = g.F, .F = g.F,
                               .pool = g.pool, .pk = g.pk, .ps = g.ps,
                               .PH = g.PH, .PW = g.PW};
                nnk_pool_f32(&gp, z, o);
            } else {
                memcpy(o, z, sizeof(float) * conv);
            }
        }
        float *t = x;          /* the output is the next input */
        x = o;
        o = t;
    }
}

/* ------------------------------------------------------------ parameters */

/* s, z of a range widened to hold 0 (TFLite's asymmetric int8). */
static void affine_quant(float mn, float mx, double *s, int32_t *z)
{
    double lo = mn < 0 ? mn : 0, hi = mx > 0 ? mx : 0;
    if (hi - lo < 1e-8)
        hi = lo + 1e-8;
    *s = (hi - lo) / 255.0;
    double zp = nearbyint(-128.0 - lo / *s);
    *z = (int32_t)(zp < -128 ? -128 : zp > 127 ? 127 : zp);
}

void nnq_multiplier(double real, int32_t *mult, int8_t *shift)
{
    if (!(real > 0)) {
        *mult = 0, *shift = 1;
        return;
    }
    int e;
    double m = frexp(real, &e);             /* real = m 2^e, m in [0.5, 1) */
    long long M = llround(m * 2147483648.0);
    if (M == 2147483648LL)
        M /= 2, e++;
    int n = 31 - e;
    if (n > 62) {                           /* tiny: fewer bits of M */
        M = llround(real * 4611686018427387904.0);   /* 2^62 */
        n = 62;
    } else if (n < 1) {                     /* huge: saturate */
        M = 2147483647LL, n = 1;
    }
    *mult = (int32_t)M;
    *shift = (int8_t)n;
}

static int8_t q8(double v)
{
    double r = nearbyint(v);
    return (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
}

static nn_status quantize_step(nn_step *s, const range *r, bool last,
                               double sx, int32_t zx, nn_error *err)
{
    s->sx = sx, s->zx = zx;
    if (s->kind == NN_STEP_POOL || s->kind == NN_STEP_GAP) {
        s->sy = sx, s->zy = zx;
        return NN_OK;
    }
    if (s->kind == NN_STEP_LEAKY) {
        /* a table from the input's quantization to the calibrated output's */
        affine_quant(r->amin, r->amax, &s->sy, &s->zy);
        s->st = s->sy, s->zt = s->zy;
        for (int i = 0; i < 256; i++) {
            double v = (double)(i - 128 - zx) * sx;
            double y = v > 0 ? v : (double)s->alpha * v;
            s->lut[i] = q8(y / s->sy + s->zy);
        }
        s->has_lut = true;
        return NN_OK;
    }
    int F = s->n_b;
    size_t row = s->kind == NN_STEP_AFFINE ? 1 : s->n_w / (size_t)F;
    if (row > NN_QUANT_MAX_TAPS)
        return nn_fail(err, NN_ERR_LIMIT, "layer %d has %zu inputs per "
                       "output; int8 allows at most %d", s->first + 1, row,
                       NN_QUANT_MAX_TAPS);
    s->wq = malloc(s->n_w ? s->n_w : 1);
    s->bq = malloc(sizeof(int32_t) * (size_t)F);
    s->mult = malloc(sizeof(int32_t) * (size_t)F);
    s->shift = malloc((size_t)F);
    if (!s->wq || !s->bq || !s->mult || !s->shift)
        return nn_fail(err, NN_ERR_NOMEM, "out of memory (quantize)");
    /* the requantization target: the output itself for linear and relu,
     * the pre-activation for the table and softmax activations */
    bool pre = s->act == NNK_SIGMOID || s->act == NNK_TANH ||
               s->act == NNK_SOFTMAX;
    if (pre)
        affine_quant(r->zmin, r->zmax, &s->st, &s->zt);
    else
        affine_quant(r->amin, r->amax, &s->st, &s->zt);
    s->lo = s->act == NNK_RELU ? s->zt : -128;
    s->hi = 127;
    for (int f = 0; f < F; f++) {
        const float *w = s->w + (size_t)f * row;
        double amax = 0;
        for (size_t t = 0; t < row; t++)
            amax = fabs(w[t]) > amax ? fabs(w[t]) : amax;
        double sw = amax > 0 ? amax / 127.0 : 1.0;
        for (size_t t = 0; t < row; t++)
            s->wq[(size_t)f * row + t] = q8(w[t] / sw);
        double bq = nearbyint(s->b[f] / (sx * sw));
        const double bmax = 1 << 29;
        s->bq[f] = (int32_t)(bq < -bmax ? -bmax : bq > bmax ? bmax : bq);
        nnq_multiplier(sx * sw / s->st, &s->mult[f], &s->shift[f]);
    }
    s->has_lut = false;
    s->sy = s->st, s->zy = s->zt;
    if (s->act == NNK_SIGMOID || s->act == NNK_TANH) {
        /* output scale fixed as TFLite: sigmoid 1/256, -128; tanh 1/128, 0 */
        double so = s->act == NNK_SIGMOID ? 1.0 / 256 : 1.0 / 128;
        int32_t zo = s->act == NNK_SIGMOID ? -128 : 0;
        for (int i = 0; i < 256; i++) {
            double v = (double)(i - 128 - s->zt) * s->st;
            double y = s->act == NNK_SIGMOID ? 1.0 / (1.0 + exp(-v))
                                             : tanh(v);
            s->lut[i] = q8(y / so + zo);
        }
        s->has_lut = true;
        s->sy = so, s->zy = zo;
    }
    if (s->act == NNK_SOFTMAX) {
        /* e[d] = round(2^Q exp(-st d)) with n 2^Q <= 2^24 */
        int n = s->g.F, bits = 0;
        while ((1 << bits) < n)
            bits++;
        double one = ldexp(1.0, 24 - bits);
        for (int d = 0; d < 256; d++)
            s->etab[d] = (uint32_t)nearbyint(one * exp(-s->st * d));
        if (!last)
            s->sy = 1.0 / 256, s->zy = -128;
    }
    return NN_OK;
}

/* ----------------------------------------------------------------- API */

void nn_qmodel_free(nn_qmodel *q)
{
    if (!q)
        return;
    for (int i = 0; i < NN_MAX_LAYERS; i++)
        nnq_unpack(q->packed[i]);
    nn_plan_free(&q->plan);
    free(q);
}

nn_qmodel *nn_model_quantize(const nn_model *m, const nn_dataset *calib,
                             size_t n, nn_error *err)
{
    if (!m) {
        nn_fail(err, NN_ERR_ARG, "quantize: model is NULL");
        return NULL;
    }
    if (!calib || !calib->x_u8 || n == 0 || n > calib->n) {
        nn_fail(err, NN_ERR_ARG, "quantize: needs 1..%zu uint8 calibration "
                "images, got %zu", calib ? calib->n : 0, n);
        return NULL;
    }
    if (nn_shape_size(calib->shape) != m->in_size) {
        nn_fail(err, NN_ERR_SHAPE, "quantize: calibration images have %zu "
                "values, the model takes %zu", nn_shape_size(calib->shape),
                m->in_size);
        return NULL;
    }
    nn_qmodel *q = calloc(1, sizeof *q);
    if (!q) {
        nn_fail(err, NN_ERR_NOMEM, "out of memory (quantize)");
        return NULL;
    }
    nn_plan *p = &q->plan;
    if (nn_plan_build(m, p, err) != NN_OK) {
        free(q);
        return NULL;
    }
    int S = p->n_steps;
    size_t big = p->max_io > p->max_conv ? p->max_io : p->max_conv;
    int nt = nn_threads_for((double)n * 1e5, 1.0);
    range *r = malloc(sizeof *r * (size_t)(S ? S : 1) * (size_t)nt);
    float *bufs = malloc(sizeof(float) * 3 * big * (size_t)nt);
    bool nomem = !r || !bufs;
    for (int t = 0; !nomem && t < nt * S; t++)
        r[t] = (range){INFINITY, -INFINITY, INFINITY, -INFINITY};
#pragma omp parallel for num_threads(nt) schedule(static, 1) if (nt > 1)
    for (int t = 0; t < (nomem ? 0 : nt); t++) {
        float *buf = bufs + (size_t)t * 3 * big;
        for (size_t i = (size_t)t; i < n; i += (size_t)nt)
            calib_sample(p, calib->x_u8 + i * m->in_size, buf, buf + big,
                         buf + 2 * big, r + (size_t)t * S);
    }
    free(bufs);
    nn_status st = NN_OK;
    if (nomem)
        st = nn_fail(err, NN_ERR_NOMEM, "out of memory (calibration)");
    for (int t = 1; st == NN_OK && t < nt; t++)
        for (int i = 0; i < S; i++) {
            range *a = &r[i], *b = &r[(size_t)t * S + i];
            a->zmin = fminf(a->zmin, b->zmin), a->zmax = fmaxf(a->zmax, b->zmax);
            a->amin = fminf(a->amin, b->amin), a->amax = fmaxf(a->amax, b->amax);
        }
    double sx = 1.0 / 255;
    int32_t zx = -128;
    for (int i = 0; st == NN_OK && i < S; i++) {
        st = quantize_step(&p->step[i], &r[i], i == S - 1, sx, zx, err);
        sx = p->step[i].sy, zx = p->step[i].zy;
    }
    free(r);
    q->out_scale = sx, q->out_zp = zx;
    if (st == NN_OK)
        st = nnq_select(q, nnq_best_isa(), err);
    if (st != NN_OK) {
        nn_qmodel_free(q);
        return NULL;
    }
    return q;
}

nn_qisa nn_qmodel_isa(const nn_qmodel *q)
{
    return q ? (nn_qisa)q->isa : NN_QISA_PORTABLE;
}

nn_status nn_qmodel_set_isa(nn_qmodel *q, nn_qisa isa, nn_error *err)
{
    if (!q)
        return nn_fail(err, NN_ERR_ARG, "int8: model is NULL");
    if (!nn_qisa_supported(isa))
        return nn_fail(err, NN_ERR_ARG, "int8: %s is not available here",
                       nn_qisa_name(isa));
    return nnq_select(q, isa, err);
}

/* ------------------------------------------------------------ inference */

/* One step of B samples: x (B, in_size) -> y (B, out_size), int8. */
static void run_step(const nn_qmodel *q, int i, bool last, const int8_t *x,
                     int8_t *y, int B, nnq_work *w)
{
    const nn_step *s = &q->plan.step[i];
    nnk_qout qo = {s->mult, s->shift, s->zx, s->zt, s->lo, s->hi,
                   s->has_lut ? s->lut : NULL};
    if (s->kind == NN_STEP_DENSE && q->packed[i]) {
        nnq_dense_batch(q->packed[i], s, &qo, x, B, y, w);
    } else if (s->kind == NN_STEP_CONV && q->packed[i]) {
        nnq_conv_batch(q->packed[i], s, &qo, x, B, y, w);
    } else {
        for (int b = 0; b < B; b++) {
            const int8_t *xb = x + (size_t)b * s->in_size;
            int8_t *yb = y + (size_t)b * s->out_size;
            switch (s->kind) {
            case NN_STEP_DENSE:
                nnk_dense_i8(xb, s->g.C, s->g.F, s->wq, s->bq, &qo, yb);
                break;
            case NN_STEP_CONV:
                nnk_conv_i8(&s->g, xb, s->wq, s->bq, &qo, yb);
                break;
            case NN_STEP_POOL:
                nnk_pool_i8(&s->g, xb, yb);
                break;
            case NN_STEP_AFFINE:
                nnk_affine_i8(xb, s->g.H, s->g.C, s->wq, s->bq, &qo, yb);
                break;
            case NN_STEP_GAP:
                nnk_gap_i8(xb, s->g.H, s->g.C, yb);
                break;
            case NN_STEP_LEAKY:
                nnk_lut_i8(xb, s->g.H, s->lut, yb);
                break;
            }
        }
    }
    if (s->act == NNK_SOFTMAX && !last)
        for (int b = 0; b < B; b++)
            nnk_softmax_i8(y + (size_t)b * s->out_size,
                           (long)s->g.PH * s->g.PW, s->g.F, s->etab, NULL,
                           y + (size_t)b * s->out_size);
}

/* Scores and classes of B samples from the last int8 values. */
static void finish(const nn_qmodel *q, const int8_t *v, int B, float *scores,
                   int *classes)
{
    const nn_plan *p = &q->plan;
    int K = (int)p->outputs;
    const nn_step *s = p->n_steps ? &p->step[p->n_steps - 1] : NULL;
    for (int b = 0; b < B; b++) {
        const int8_t *vb = v + (size_t)b * K;
        if (classes)
            classes[b] = nnk_argmax_i8(vb, K);
        if (!scores)
            continue;
        float *sb = scores + (size_t)b * K;
        if (s && s->act == NNK_SOFTMAX)
            nnk_softmax_i8(vb, (long)s->g.PH * s->g.PW, s->g.F, s->etab, sb,
                           NULL);
        else
            nnk_dequant(vb, K, q->out_zp, (float)q->out_scale, sb);
    }
}

#define QCHUNK 64   /* samples per piece of work */

nn_status nn_qmodel_predict(const nn_qmodel *q, const uint8_t *pixels,
                            size_t n, float *scores, int *classes,
                            nn_error *err)
{
    if (!q || (n && !pixels))
        return nn_fail(err, NN_ERR_ARG, "int8 predict: model or pixels "
                       "are NULL");
    const nn_plan *p = &q->plan;
    size_t width = p->in_size;
    for (int i = 0; i < p->n_steps; i++)
        if (p->step[i].out_size > width)
            width = p->step[i].out_size;
    size_t chunks = (n + QCHUNK - 1) / QCHUNK;
    int nt = nn_threads_for((double)n * (double)width * 16, 65536.0);
    if ((size_t)nt > chunks)
        nt = chunks ? (int)chunks : 1;
    /* per thread: two int8 buffers of (QCHUNK, width) */
    const size_t per = 2 * width * QCHUNK;
    int8_t *bufs = malloc(per * (size_t)nt);
    bool nomem = !bufs;
    /* thread t takes chunks t, t + nt, ...: results do not depend on nt */
#pragma omp parallel for num_threads(nt) schedule(static, 1) if (nt > 1)
    for (int t = 0; t < (nomem ? 0 : nt); t++) {
        nnq_work w = {0};
        for (size_t c = (size_t)t; c < chunks; c += (size_t)nt) {
            size_t b0 = c * QCHUNK;
            int B = (int)(n - b0 < QCHUNK ? n - b0 : QCHUNK);
            int8_t *x = bufs + (size_t)t * per, *y = x + width * QCHUNK;
            const uint8_t *src = pixels + b0 * p->in_size;
            for (size_t j = 0; j < (size_t)B * p->in_size; j++)
                x[j] = (int8_t)(src[j] - 128);
            for (int i = 0; i < p->n_steps; i++) {
                run_step(q, i, i == p->n_steps - 1, x, y, B, &w);
                int8_t *tmp = x;
                x = y, y = tmp;
            }
            finish(q, x, B, scores ? scores + b0 * p->outputs : NULL,
                   classes ? classes + b0 : NULL);
        }
        nnq_work_free(&w);
    }
    free(bufs);
    if (nomem)
        return nn_fail(err, NN_ERR_NOMEM, "out of memory (int8 predict)");
    return NN_OK;
}

nn_status nn_qmodel_evaluate(const nn_qmodel *q, const nn_dataset *data,
                             nn_eval *out, uint32_t *confusion,
                             nn_error *err)
{
    if (!q || !data || !out)
        return nn_fail(err, NN_ERR_ARG, "int8 evaluate: model, data or "
                       "result is NULL");
    const nn_plan *p = &q->plan;
    if (!data->x_u8 || nn_shape_size(data->shape) != p->in_size)
        return nn_fail(err, NN_ERR_SHAPE, "int8 evaluate: needs uint8 "
                       "images of %zu values", p->in_size);
    if (!data->labels)
        return nn_fail(err, NN_ERR_ARG, "int8 evaluate: needs labels");
    size_t K = p->outputs, n = data->n;
    for (size_t i = 0; i < n; i++)
        if (data->labels[i] >= K)
            return nn_fail(err, NN_ERR_ARG, "label %u of sample %zu is not "
                           "below the model's %zu outputs",
                           data->labels[i], i, K);
    const size_t piece = 4096;
    float *sc = malloc(sizeof(float) * piece * K);
    int *cls = malloc(sizeof(int) * piece);
    if (!sc || !cls) {
        free(sc), free(cls);
        return nn_fail(err, NN_ERR_NOMEM, "out of memory (int8 evaluate)");
    }
    if (confusion)
        memset(confusion, 0, sizeof *confusion * K * K);
    double loss = 0;
    size_t correct = 0;
    nn_status st = NN_OK;
    for (size_t b0 = 0; b0 < n && st == NN_OK; b0 += piece) {
        size_t B = n - b0 < piece ? n - b0 : piece;
        st = nn_qmodel_predict(q, data->x_u8 + b0 * p->in_size, B, sc, cls,
                               err);
        for (size_t b = 0; st == NN_OK && b < B; b++) {
            int y = data->labels[b0 + b];
            float pr = sc[b * K + (size_t)y];
            loss -= log(pr > 1e-7f ? pr : 1e-7f);
            correct += cls[b] == y;
            if (confusion)
                confusion[(size_t)y * K + (size_t)cls[b]]++;
        }
    }
    free(sc);
    free(cls);
    if (st != NN_OK)
        return st;
    out->n = n;
    out->loss = n ? loss / (double)n : 0;
    out->accuracy = n ? (double)correct / (double)n : 0;
    return NN_OK;
}

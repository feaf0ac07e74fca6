/*
 * quant_vnni.c - int8 dense layers with VNNI dot products (vpdpbusd:
 * unsigned bytes times signed bytes, four at a time, added into int32),
 * chosen at run time; the same integers as plan_kernels.h's nnk_dense_i8.
 *
 * vpdpbusd needs one unsigned operand, so activations go in as
 * u = x + 128 (0..255), and since sum (x - zx) w = sum u w - (128 + zx)
 * sum w, each output starts from
 *   corr[o] = bq[o] - (128 + zx) sum_i w[o][i]
 * Packed weights, for lanes of L outputs (16 in a zmm, 8 in a ymm):
 *   wp (OB, Kp/4, L, 4): wp[ob][k4][l][j] = w[ob L + l][4 k4 + j]
 * with in padded to Kp (multiple of 4) and out to OB L (OB a multiple of
 * 4) by zero weights. Samples go four at a time (rows padded by zeros).
 */
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#include "nn/internal.h"
#include "nn/quant.h"

typedef struct packed_dense {
    int in, out, Kp, OB, L;
    nn_qisa isa;
    int8_t *w;          /* (OB, Kp/4, L, 4) */
    int32_t *corr;      /* (OB L) */
} packed_dense;

static const char *const isa_names[] = {
    [NN_QISA_PORTABLE] = "portable",
    [NN_QISA_AVX512_VNNI] = "avx512-vnni",
    [NN_QISA_AVX_VNNI] = "avx-vnni",
};

const char *nn_qisa_name(nn_qisa isa)
{
    if ((unsigned)isa < sizeof isa_names / sizeof *isa_names)
        return isa_names[isa];
    return "?";
}

#if HAVE_X86
/* CPUID leaf 7 (subleaf sub): the register `reg` (0 eax .. 3 edx) has bit? */
static bool cpuid7(unsigned sub, int reg, int bit)
{
    unsigned r[4];
    if (!__get_cpuid_count(7, sub, &r[0], &r[1], &r[2], &r[3]))
        return false;
    return (r[reg] >> bit) & 1;
}
#endif

/* The OS's support for the registers is what __builtin_cpu_supports
 * checks for avx2 / avx512f; the VNNI bits come from CPUID (leaf 7:
 * subleaf 0 ecx bit 11 AVX512_VNNI, subleaf 1 eax bit 4 AVX_VNNI). */
bool nn_qisa_supported(nn_qisa isa)
{
    switch (isa) {
    case NN_QISA_PORTABLE:
        return true;
#if HAVE_X86
    case NN_QISA_AVX512_VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && cpuid7(0, 2, 11);
    case NN_QISA_AVX_VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && cpuid7(1, 0, 4);
#endif
    default:
        return false;
    }
}

nn_qisa nnq_best_isa(void)
{
    if (nn_qisa_supported(NN_QISA_AVX512_VNNI))
        return NN_QISA_AVX512_VNNI;
    if (nn_qisa_supported(NN_QISA_AVX_VNNI))
        return NN_QISA_AVX_VNNI;
    return NN_QISA_PORTABLE;
}

void nnq_unpack(void *packed)
{
    packed_dense *pd = packed;
    if (!pd)
        return;
    free(pd->w);
    free(pd->corr);
    free(pd);
}

void nnq_work_free(nnq_work *w)
{
    free(w->u);
    free(w->acc);
    free(w->c);
    memset(w, 0, sizeof *w);
}

static packed_dense *pack(const nn_step *s, nn_qisa isa)
{
    packed_dense *pd = calloc(1, sizeof *pd);
    if (!pd)
        return NULL;
    /* a convolution is a dense layer over rows of taps (k, k, C) */
    pd->in = (int)(s->n_w / (size_t)s->g.F), pd->out = s->g.F;
    pd->isa = isa;
    pd->L = isa == NN_QISA_AVX512_VNNI ? 16 : 8;
    pd->Kp = (pd->in + 3) / 4 * 4;
    int blocks = (pd->out + pd->L - 1) / pd->L;
    pd->OB = (blocks + 3) / 4 * 4;
    size_t nw = (size_t)pd->OB * pd->L * pd->Kp;
    pd->w = aligned_alloc(64, (nw + 63) / 64 * 64);
    pd->corr = calloc((size_t)pd->OB * pd->L, sizeof *pd->corr);
    if (!pd->w || !pd->corr) {
        nnq_unpack(pd);
        return NULL;
    }
    memset(pd->w, 0, nw);
    int K4 = pd->Kp / 4, L = pd->L;
    for (int o = 0; o < pd->out; o++) {
        const int8_t *wo = s->wq + (size_t)o * pd->in;
        int32_t sum = 0;
        int ob = o / L, l = o % L;
        for (int i = 0; i < pd->in; i++) {
            sum += wo[i];
            pd->w[(((size_t)ob * K4 + i / 4) * L + l) * 4 + i % 4] = wo[i];
        }
        pd->corr[o] = s->bq[o] - (128 + s->zx) * sum;
    }
    return pd;
}

nn_status nnq_select(nn_qmodel *q, nn_qisa isa, nn_error *err)
{
    for (int i = 0; i < NN_MAX_LAYERS; i++) {
        nnq_unpack(q->packed[i]);
        q->packed[i] = NULL;
    }
    q->isa = (int)isa;
    if (isa == NN_QISA_PORTABLE)
        return NN_OK;
    for (int i = 0; i < q->plan.n_steps; i++) {
        const nn_step *s = &q->plan.step[i];
        if (s->kind != NN_STEP_DENSE && s->kind != NN_STEP_CONV)
            continue;
        if (!(q->packed[i] = pack(s, isa)))
            return nn_fail(err, NN_ERR_NOMEM, "out of memory (int8 pack)");
    }
    return NN_OK;
}

#if HAVE_X86
/* acc (Bp, OB*16) = corr + u (Bp, Kp) . wp, Bp a multiple of 4. */
__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void gemm_avx512(const packed_dense *pd, const uint8_t *u, int Bp,
                        int32_t *acc)
{
    const int K4 = pd->Kp / 4, N = pd->OB * 16;
    for (int ob = 0; ob < pd->OB; ob += 4) {
        const int8_t *w0 = pd->w + (size_t)ob * K4 * 64;
        const size_t bs = (size_t)K4 * 64;    /* one block's bytes */
        __m512i c0 = _mm512_loadu_si512(pd->corr + ob * 16);
        __m512i c1 = _mm512_loadu_si512(pd->corr + ob * 16 + 16);
        __m512i c2 = _mm512_loadu_si512(pd->corr + ob * 16 + 32);
        __m512i c3 = _mm512_loadu_si512(pd->corr + ob * 16 + 48);
        for (int b = 0; b < Bp; b += 4) {
            const uint8_t *u0 = u + (size_t)b * pd->Kp;
            const uint8_t *u1 = u0 + pd->Kp, *u2 = u1 + pd->Kp,
                          *u3 = u2 + pd->Kp;
            __m512i a00 = c0, a01 = c1, a02 = c2, a03 = c3;
            __m512i a10 = c0, a11 = c1, a12 = c2, a13 = c3;
            __m512i a20 = c0, a21 = c1, a22 = c2, a23 = c3;
            __m512i a30 = c0, a31 = c1, a32 = c2, a33 = c3;
            for (int k = 0; k < K4; k++) {
                const int8_t *wk = w0 + (size_t)k * 64;
                __m512i w_0 = _mm512_load_si512(wk);
                __m512i w_1 = _mm512_load_si512(wk + bs);
                __m512i w_2 = _mm512_load_si512(wk + 2 * bs);
                __m512i w_3 = _mm512_load_si512(wk + 3 * bs);
                int32_t v;
                __m512i x;
#define ROW(r, up)                                                    \
                memcpy(&v, up + 4 * k, 4);                            \
                x = _mm512_set1_epi32(v);                             \
                a##r##0 = _mm512_dpbusd_epi32(a##r##0, x, w_0);       \
                a##r##1 = _mm512_dpbusd_epi32(a##r##1, x, w_1);       \
                a##r##2 = _mm512_dpbusd_epi32(a##r##2, x, w_2);       \
                a##r##3 = _mm512_dpbusd_epi32(a##r##3, x, w_3);
                ROW(0, u0) ROW(1, u1) ROW(2, u2) ROW(3, u3)
#undef ROW
            }
            int32_t *o = acc + (size_t)b * N + ob * 16;
#define STORE(r)                                                      \
            _mm512_storeu_si512(o + (size_t)r * N, a##r##0);          \
            _mm512_storeu_si512(o + (size_t)r * N + 16, a##r##1);     \
            _mm512_storeu_si512(o + (size_t)r * N + 32, a##r##2);     \
            _mm512_storeu_si512(o + (size_t)r * N + 48, a##r##3);
            STORE(0) STORE(1) STORE(2) STORE(3)
#undef STORE
        }
    }
}

/* y (n) = nnk_qfinish of acc (n) without a table, 16 outputs at a time:
 * the 64-bit products of even and odd lanes, the rounding, arithmetic
 * shift, zero point and clamp of nnk_requant, lane by lane. */
__attribute__((target("avx512f,avx512bw")))
static void requant_avx512(const int32_t *acc, int n, const nnk_qout *q,
                           int8_t *y)
{
    const __m512i one = _mm512_set1_epi64(1), low = _mm512_set1_epi64(
                                                  0xFFFFFFFFLL);
    const __m512i zp = _mm512_set1_epi64(q->zy), lo = _mm512_set1_epi64(q->lo),
                  hi = _mm512_set1_epi64(q->hi);
    int o = 0;
    for (; o + 16 <= n; o += 16) {
        __m512i a = _mm512_loadu_si512(acc + o);
        __m512i M = _mm512_loadu_si512(q->mult + o);
        __m512i sh = _mm512_cvtepi8_epi32(
            _mm_loadu_si128((const __m128i *)(q->shift + o)));
        __m512i she = _mm512_and_si512(sh, low), sho = _mm512_srli_epi64(sh, 32);
        __m512i pe = _mm512_mul_epi32(a, M);
        __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(a, 32),
                                      _mm512_srli_epi64(M, 32));
        pe = _mm512_add_epi64(pe, _mm512_sllv_epi64(
                                      one, _mm512_sub_epi64(she, one)));
        po = _mm512_add_epi64(po, _mm512_sllv_epi64(
                                      one, _mm512_sub_epi64(sho, one)));
        pe = _mm512_add_epi64(_mm512_srav_epi64(pe, she), zp);
        po = _mm512_add_epi64(_mm512_srav_epi64(po, sho), zp);
        pe = _mm512_min_epi64(_mm512_max_epi64(pe, lo), hi);
        po = _mm512_min_epi64(_mm512_max_epi64(po, lo), hi);
        __m512i r = _mm512_or_si512(_mm512_and_si512(pe, low),
                                    _mm512_slli_epi64(po, 32));
        _mm_storeu_si128((__m128i *)(y + o), _mm512_cvtepi32_epi8(r));
    }
    for (; o < n; o++)
        y[o] = nnk_qfinish(q, acc[o], o);
}

/* The same with ymm registers, 8 outputs a lane group, two groups. */
__attribute__((target("avx2,avxvnni")))
static void gemm_avxvnni(const packed_dense *pd, const uint8_t *u, int Bp,
                         int32_t *acc)
{
    const int K4 = pd->Kp / 4, N = pd->OB * 8;
    const size_t bs = (size_t)K4 * 32;
    for (int ob = 0; ob < pd->OB; ob += 2) {
        const int8_t *w0 = pd->w + (size_t)ob * bs;
        __m256i c0 = _mm256_loadu_si256((const void *)(pd->corr + ob * 8));
        __m256i c1 = _mm256_loadu_si256((const void *)(pd->corr + ob * 8 + 8));
        for (int b = 0; b < Bp; b += 4) {
            const uint8_t *u0 = u + (size_t)b * pd->Kp;
            const uint8_t *u1 = u0 + pd->Kp, *u2 = u1 + pd->Kp,
                          *u3 = u2 + pd->Kp;
            __m256i a00 = c0, a01 = c1, a10 = c0, a11 = c1;
            __m256i a20 = c0, a21 = c1, a30 = c0, a31 = c1;
            for (int k = 0; k < K4; k++) {
                const int8_t *wk = w0 + (size_t)k * 32;
                __m256i w_0 = _mm256_loadu_si256((const void *)wk);
                __m256i w_1 = _mm256_loadu_si256((const void *)(wk + bs));
                int32_t v;
                __m256i x;
#define ROW(r, up)                                                    \
                memcpy(&v, up + 4 * k, 4);                            \
                x = _mm256_set1_epi32(v);                             \
                a##r##0 = _mm256_dpbusd_avx_epi32(a##r##0, x, w_0);   \
                a##r##1 = _mm256_dpbusd_avx_epi32(a##r##1, x, w_1);
                ROW(0, u0) ROW(1, u1) ROW(2, u2) ROW(3, u3)
#undef ROW
            }
            int32_t *o = acc + (size_t)b * N + ob * 8;
#define STORE(r)                                                      \
            _mm256_storeu_si256((void *)(o + (size_t)r * N), a##r##0);     \
            _mm256_storeu_si256((void *)(o + (size_t)r * N + 8), a##r##1);
            STORE(0) STORE(1) STORE(2) STORE(3)
#undef STORE
        }
    }
}
#endif

/* y (n) from the sums acc (n): vectorised where it can be. */
static void requant(const packed_dense *pd, const int32_t *acc, int n,
                    const nnk_qout *q, int8_t *y)
{
#if HAVE_X86
    if (pd->isa == NN_QISA_AVX512_VNNI && !q->lut) {
        requant_avx512(acc, n, q, y);
        return;
    }
#endif
    (void)pd;
    for (int o = 0; o < n; o++)
        y[o] = nnk_qfinish(q, acc[o], o);
}

static bool grow(void **p, size_t *cap, size_t need)
{
    if (*cap >= need)
        return true;
    void *n = aligned_alloc(64, (need + 63) / 64 * 64);
    if (!n)
        return false;
    free(*p);
    *p = n;
    *cap = need;
    return true;
}

static void gemm(const packed_dense *pd, const uint8_t *u, int Bp,
                 int32_t *acc)
{
#if HAVE_X86
    if (pd->isa == NN_QISA_AVX512_VNNI)
        gemm_avx512(pd, u, Bp, acc);
    else
        gemm_avxvnni(pd, u, Bp, acc);
#else
    (void)pd, (void)u, (void)Bp, (void)acc;
#endif
}

/* Convolution step s on one sample x (H, W, C) -> y (PH, PW, F): rows of
 * taps u (OH*OW, Kp) = x + 128 (zx + 128 outside the input, which adds
 * nothing), the product, requantization into (OH, OW, F), then pooling
 * as nnk_conv_i8 does. False if the buffers cannot grow. */
static bool conv_sample(const packed_dense *pd, const nn_step *s,
                        const nnk_qout *qo, const int8_t *x, int8_t *y,
                        nnq_work *w)
{
    const nnk_geom *g = &s->g;
    int rows = g->OH * g->OW, Bp = (rows + 3) / 4 * 4, N = pd->OB * pd->L;
    if (!grow((void **)&w->u, &w->ucap, (size_t)Bp * pd->Kp) ||
        !grow((void **)&w->acc, &w->acap, sizeof(int32_t) * (size_t)Bp * N) ||
        !grow((void **)&w->c, &w->ccap, (size_t)rows * g->F))
        return false;
    memset(w->u, 0, (size_t)Bp * pd->Kp);
    const uint8_t pad = (uint8_t)(qo->zx + 128);
    for (int oh = 0; oh < g->OH; oh++)
        for (int ow = 0; ow < g->OW; ow++) {
            uint8_t *ur = w->u + ((size_t)oh * g->OW + ow) * pd->Kp;
            for (int ki = 0; ki < g->k; ki++) {
                int ih = oh * g->s - g->pt + ki;
                for (int kj = 0; kj < g->k; kj++) {
                    int iw = ow * g->s - g->pl + kj;
                    uint8_t *ut = ur + ((size_t)ki * g->k + kj) * g->C;
                    if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) {
                        memset(ut, pad, (size_t)g->C);
                        continue;
                    }
                    const int8_t *xp = x + ((size_t)ih * g->W + iw) * g->C;
                    for (int c = 0; c < g->C; c++)
                        ut[c] = (uint8_t)(xp[c] + 128);
                }
            }
        }
    gemm(pd, w->u, Bp, w->acc);
    int8_t *cv = g->pool == NNK_POOL_NONE ? y : w->c;
    for (int r = 0; r < rows; r++)
        requant(pd, w->acc + (size_t)r * N, g->F, qo, cv + (size_t)r * g->F);
    if (g->pool != NNK_POOL_NONE) {
        nnk_geom gp = {.H = g->OH, .W = g->OW, .C = g->F, .F = g->F,
                       .pool = g->pool, .pk = g->pk, .ps = g->ps,
                       .PH = g->PH, .PW = g->PW};
        nnk_pool_i8(&gp, w->c, y);
    }
    return true;
}

void nnq_conv_batch(const void *packed, const nn_step *s,
                    const nnk_qout *qo, const int8_t *x, int B, int8_t *y,
                    nnq_work *w)
{
    for (int b = 0; b < B; b++) {
        const int8_t *xb = x + (size_t)b * s->in_size;
        int8_t *yb = y + (size_t)b * s->out_size;
        if (!HAVE_X86 || !conv_sample(packed, s, qo, xb, yb, w))
            nnk_conv_i8(&s->g, xb, s->wq, s->bq, qo, yb);
    }
}

void nnq_dense_batch(const void *packed, const nn_step *s,
                     const nnk_qout *qo, const int8_t *x, int B, int8_t *y,
                     nnq_work *w)
{
    const packed_dense *pd = packed;
    int Bp = (B + 3) / 4 * 4, N = pd->OB * pd->L;
    bool ok = HAVE_X86 &&
              grow((void **)&w->u, &w->ucap, (size_t)Bp * pd->Kp) &&
              grow((void **)&w->acc, &w->acap,
                   sizeof(int32_t) * (size_t)Bp * N);
    if (!ok) {
        for (int b = 0; b < B; b++)
            nnk_dense_i8(x + (size_t)b * pd->in, pd->in, pd->out, s->wq,
                         s->bq, qo, y + (size_t)b * pd->out);
        return;
    }
    memset(w->u, 0, (size_t)Bp * pd->Kp);
    for (int b = 0; b < B; b++) {
        const int8_t *xb = x + (size_t)b * pd->in;
        uint8_t *ub = w->u + (size_t)b * pd->Kp;
        for (int i = 0; i < pd->in; i++)
            ub[i] = (uint8_t)(xb[i] + 128);
    }
    gemm(pd, w->u, Bp, w->acc);
    for (int b = 0; b < B; b++)
        requant(pd, w->acc + (size_t)b * N, pd->out, qo,
                y + (size_t)b * pd->out);
}

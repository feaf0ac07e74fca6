/*
 * test_conv.c - Conv2D, MaxPooling2D and AveragePooling2D: forward against
 * a naive direct convolution and hand-computed pools, gradients (parameters
 * and input) against central differences, the cnn / lenet5 presets, a
 * save/load round trip of a small CNN and thread-count independence.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "nn.h"
#include "nn/layer.h"
#include "nn/model.h"
#include "util/gradcheck.h"

/* ------------------------------------------------------------ helpers */

/* --------------------------------------------------- naive convolution */

/* Direct convolution, Keras semantics, straight from the definition:
 * y[b, oh, ow, f] = act(b[f] + sum_{i,j,c} x[b, oh*s + i - pt, ow*s + j - pl,
 * c] * W[i, j, c, f]), taps outside the image read 0. */
static void conv_naive(const float *x, int B, int H, int W, int C,
                       const float *w, const float *bias, int F, int k,
                       int s, bool same, bool relu, float *y, int *OHp,
                       int *OWp)
{
    int OH, OW, pt = 0, pl = 0;
    if (same) {
        OH = (H + s - 1) / s;
        OW = (W + s - 1) / s;
        int ph = (OH - 1) * s + k - H, pw = (OW - 1) * s + k - W;
        pt = ph > 0 ? ph / 2 : 0;
        pl = pw > 0 ? pw / 2 : 0;
    } else {
        OH = (H - k) / s + 1;
        OW = (W - k) / s + 1;
    }
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int f = 0; f < F; f++) {
                    double acc = bias[f];
                    for (int i = 0; i < k; i++)
                        for (int j = 0; j < k; j++)
                            for (int c = 0; c < C; c++) {
                                int ih = oh * s + i - pt, iw = ow * s + j - pl;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                acc += (double)x[((b * H + ih) * W + iw) * C +
                                                 c] *
                                       w[((i * k + j) * C + c) * F + f];
                            }
                    if (relu && acc < 0.0)
                        acc = 0.0;
                    y[((b * OH + oh) * OW + ow) * F + f] = (float)acc;
                }
    *OHp = OH;
    *OWp = OW;
}

typedef struct conv_case {
    int H, W, C, F, k, s;
    nn_padding pad;
    nn_activation act;
} conv_case;

static const conv_case conv_cases[] = {
    {7, 5, 2, 3, 3, 1, NN_PAD_VALID, NN_ACT_LINEAR},
    {7, 5, 2, 3, 3, 2, NN_PAD_VALID, NN_ACT_RELU},
    {7, 5, 2, 3, 3, 1, NN_PAD_SAME, NN_ACT_RELU},
    {7, 5, 2, 3, 3, 2, NN_PAD_SAME, NN_ACT_LINEAR},
    {7, 5, 2, 3, 4, 1, NN_PAD_SAME, NN_ACT_LINEAR},   /* even kernel */
    {8, 6, 2, 3, 4, 3, NN_PAD_SAME, NN_ACT_LINEAR},   /* pad splits 1+2 */
    {6, 6, 3, 2, 1, 1, NN_PAD_VALID, NN_ACT_LINEAR},  /* 1x1 */
    {5, 7, 1, 4, 5, 1, NN_PAD_VALID, NN_ACT_LINEAR},  /* kernel = height */
    {4, 4, 2, 3, 5, 2, NN_PAD_SAME, NN_ACT_RELU},     /* kernel > input */
    /* larger images: the batch is split into several chunks of work, on
     * both paths (K + 1 <= 32: plain loops; above: BLAS) */
    {24, 24, 1, 20, 3, 1, NN_PAD_VALID, NN_ACT_RELU},
    {9, 8, 1, 3, 4, 2, NN_PAD_SAME, NN_ACT_LINEAR},
    {28, 28, 1, 16, 5, 1, NN_PAD_SAME, NN_ACT_RELU},
    {24, 24, 4, 5, 3, 1, NN_PAD_SAME, NN_ACT_LINEAR},
    {30, 20, 3, 2, 5, 2, NN_PAD_SAME, NN_ACT_RELU},
};

static void test_conv_forward_matches_naive(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof conv_cases / sizeof *conv_cases; t++) {
        const conv_case *c = &conv_cases[t];
        const int B = 3;
        nn_model *m = one_layer(nn_shape3(c->H, c->W, c->C),
                                nn_conv2d(c->F, c->k, c->s, c->pad, c->act),
                                B, 11 + t);
        nn_layer *l = &m->layers[0];
        size_t nin = l->in_size * B, nout = l->out_size * B;
        float *x = malloc(sizeof(float) * nin);
        float *y = malloc(sizeof(float) * nout);
        float *ref = malloc(sizeof(float) * nout);
        assert_true(x && y && ref);
        fill_uniform(x, nin, -1.0f, 1.0f, 100 + t);
        /* a non-zero bias, so that its place in the block is tested */
        size_t nw = l->n_params - (size_t)c->F;
        fill_uniform(l->w + nw, (size_t)c->F, -0.5f, 0.5f, 200 + t);
        int OH, OW;
        conv_naive(x, B, c->H, c->W, c->C, l->w, l->w + nw, c->F, c->k, c->s,
                   c->pad == NN_PAD_SAME, c->act == NN_ACT_RELU, ref, &OH,
                   &OW);
        assert_int_equal(l->out.rank, 3);
        assert_int_equal(l->out.dim[0], OH);
        assert_int_equal(l->out.dim[1], OW);
        assert_int_equal(l->out.dim[2], c->F);
        assert_int_equal(l->n_params,
                         (size_t)c->k * c->k * c->C * c->F + c->F);
        nn_error e;
        assert_int_equal(nn_model_predict(m, x, B, y, &e), NN_OK);
        for (size_t i = 0; i < nout; i++)
            if (!(fabsf(y[i] - ref[i]) <= 1e-5f + 1e-5f * fabsf(ref[i])))
                fail_msg("case %zu, y[%zu] = %g, direct convolution %g", t,
                         i, y[i], ref[i]);
        free(x), free(y), free(ref);
        nn_model_free(m);
    }
}

static void test_conv_output_shapes(void **state)
{
    (void)state;
    struct { int H, W, k, s; nn_padding p; int OH, OW; } cases[] = {
        {7, 5, 3, 1, NN_PAD_VALID, 5, 3}, {7, 5, 3, 2, NN_PAD_VALID, 3, 2},
        {7, 5, 3, 1, NN_PAD_SAME, 7, 5},  {7, 5, 3, 2, NN_PAD_SAME, 4, 3},
        {28, 28, 5, 1, NN_PAD_SAME, 28, 28}, {28, 28, 3, 0, NN_PAD_VALID, 26, 26},
        {10, 10, 3, 3, NN_PAD_SAME, 4, 4},
    };
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        nn_model *m = nn_model_new(nn_shape3(cases[t].H, cases[t].W, 2));
        nn_error e;
        assert_int_equal(nn_model_add(m, nn_conv2d(4, cases[t].k, cases[t].s,
                                                   cases[t].p, NN_ACT_RELU),
                                      &e), NN_OK);
        nn_shape o = nn_model_output_shape(m);
        assert_int_equal(o.dim[0], cases[t].OH);
        assert_int_equal(o.dim[1], cases[t].OW);
        assert_int_equal(o.dim[2], 4);
        nn_model_free(m);
    }
}

static void test_conv_rejects_bad_shapes(void **state)
{
    (void)state;
    nn_error e;
    nn_model *m = nn_model_new(nn_shape3(4, 6, 1));
    assert_int_equal(nn_model_add(m, nn_conv2d(2, 5, 1, NN_PAD_VALID,
                                               NN_ACT_RELU), &e),
                     NN_ERR_SHAPE);
    assert_non_null(strstr(e.msg, "conv2d"));
    assert_int_equal(nn_model_add(m, nn_conv2d(0, 3, 1, NN_PAD_VALID,
                                               NN_ACT_RELU), &e), NN_ERR_ARG);
    assert_int_equal(nn_model_add(m, nn_maxpool2d(5, 0), &e), NN_ERR_SHAPE);
    nn_layer_spec same_pool = nn_maxpool2d(2, 0);
    same_pool.padding = NN_PAD_SAME;
    assert_int_equal(nn_model_add(m, same_pool, &e), NN_ERR_ARG);
    assert_int_equal(nn_model_layer_count(m), 0);
    nn_model_free(m);

    m = nn_model_new(nn_shape1(16));
    assert_int_equal(nn_model_add(m, nn_conv2d(2, 3, 1, NN_PAD_SAME,
                                               NN_ACT_RELU), &e),
                     NN_ERR_SHAPE);
    assert_int_equal(nn_model_add(m, nn_avgpool2d(2, 0), &e), NN_ERR_SHAPE);
    nn_model_free(m);
}

/* Softmax on a convolution is taken over the channels of each pixel; a
 * cross-entropy loss still needs a vector output. */
static void test_conv_softmax_over_channels(void **state)
{
    (void)state;
    nn_error e;
    nn_model *m = nn_model_from_spec("conv2d(3,3,softmax)", nn_shape3(5, 6, 2),
                                     0, NULL, &e);
    if (!m)
        fail_msg("%s", e.msg);
    nn_rng r;
    nn_rng_seed(&r, 21);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    float x[2 * 60], y[2 * 3 * 4 * 3];
    fill_uniform(x, 120, -2.0f, 2.0f, 22);
    assert_int_equal(nn_model_predict(m, x, 2, y, &e), NN_OK);
    for (int p = 0; p < 2 * 3 * 4; p++) {
        float sum = y[3 * p] + y[3 * p + 1] + y[3 * p + 2];
        assert_true(fabsf(sum - 1.0f) < 1e-6f);
        assert_true(y[3 * p] > 0.0f && y[3 * p] < 1.0f);
    }
    assert_int_equal(nn_model_compile(m, NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                      nn_adam(), &e), NN_ERR_ARG);
    assert_int_equal(nn_model_compile(m, NN_LOSS_MSE, nn_adam(), &e), NN_OK);
    nn_model_free(m);
}

/* ----------------------------------------------------- conv gradients */

static void test_conv_gradients(void **state)
{
    (void)state;
    const nn_activation acts[] = {NN_ACT_LINEAR, NN_ACT_TANH, NN_ACT_RELU,
                                  NN_ACT_SIGMOID, NN_ACT_SOFTMAX};
    int n = 0;
    for (int s = 1; s <= 2; s++)
        for (int p = 0; p <= 1; p++)
            for (int k = 2; k <= 3; k++) {
                const int B = 2;
                nn_activation a = acts[n++ % 5];
                nn_model *m = one_layer(nn_shape3(7, 5, 2),
                                        nn_conv2d(3, k, s, (nn_padding)p, a),
                                        B, 31 + n);
                nn_layer *l = &m->layers[0];
                size_t nin = l->in_size * B;
                float *x = malloc(sizeof(float) * nin);
                fill_uniform(x, nin, -1.0f, 1.0f, 41 + n);
                fill_uniform(l->w + l->n_params - 3, 3, -0.3f, 0.3f, 51 + n);
                check_layer_grads(m, x, B, true);
                free(x);
                nn_model_free(m);
            }
}

/* Backward straight from the definition, for a linear activation (dz =
 * dy): dW[i, j, c, f] = sum_{b, oh, ow} x[b, ih, iw, c] dy[b, oh, ow, f],
 * db[f] = sum dy[..., f], dx[b, ih, iw, c] = sum dy[b, oh, ow, f]
 * W[i, j, c, f], over the taps (ih, iw) = (oh*s + i - pt, ow*s + j - pl)
 * inside the image. dwb (K + 1, F) in double, dx (B, H, W, C). */
static void conv_backward_naive(const float *x, const float *dy, int B,
                                int H, int W, int C, const float *w, int F,
                                int k, int s, int OH, int OW, int pt, int pl,
                                double *dwb, double *dx)
{
    int K = k * k * C;
    memset(dwb, 0, sizeof(double) * (size_t)(K + 1) * F);
    memset(dx, 0, sizeof(double) * (size_t)B * H * W * C);
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int f = 0; f < F; f++) {
                    double d = dy[((b * OH + oh) * OW + ow) * F + f];
                    dwb[K * F + f] += d;
                    for (int i = 0; i < k; i++)
                        for (int j = 0; j < k; j++)
                            for (int c = 0; c < C; c++) {
                                int ih = oh * s + i - pt, iw = ow * s + j - pl;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                size_t xi = ((size_t)(b * H + ih) * W + iw) * C
                                            + c;
                                size_t wi = ((size_t)(i * k + j) * C + c) * F
                                            + f;
                                dwb[wi] += x[xi] * d;
                                dx[xi] += w[wi] * d;
                            }
                }
}

static void test_conv_backward_matches_naive(void **state)
{
    (void)state;
    /* B and sizes chosen so that the batch spans several chunks, the last
     * one short; K + 1 = 10, 17, 19 and 26 take the plain loops (in blocks
     * of 16 channels and the rest one by one), 37 and 76 BLAS. With ReLU and no dx (a first layer) the plain loops form
     * dy * [y > 0] on the fly. */
    const struct { int H, W, C, F, k, s; nn_padding pad; int B; } cases[] = {
        {24, 24, 1, 20, 3, 1, NN_PAD_VALID, 3},
        {9, 8, 1, 3, 4, 2, NN_PAD_SAME, 4},
        {28, 28, 1, 16, 5, 1, NN_PAD_SAME, 3},
        {24, 24, 2, 3, 3, 2, NN_PAD_SAME, 5},
        {24, 24, 4, 5, 3, 1, NN_PAD_SAME, 3},
        {30, 20, 3, 2, 5, 2, NN_PAD_SAME, 7},
    };
    for (size_t t = 0; t < 2 * sizeof cases / sizeof *cases; t++) {
        size_t ci = t / 2;
        bool relu = t % 2;
        int H = cases[ci].H, W = cases[ci].W, C = cases[ci].C;
        int F = cases[ci].F, k = cases[ci].k, s = cases[ci].s;
        int B = cases[ci].B;
        nn_model *m = one_layer(nn_shape3(H, W, C),
                                nn_conv2d(F, k, s, cases[ci].pad,
                                          relu ? NN_ACT_RELU : NN_ACT_LINEAR),
                                B, 60 + t);
        nn_layer *l = &m->layers[0];
        int OH = l->out.dim[0], OW = l->out.dim[1], pt = 0, pl = 0;
        if (cases[ci].pad == NN_PAD_SAME) {
            int ph = (OH - 1) * s + k - H, pw = (OW - 1) * s + k - W;
            pt = ph > 0 ? ph / 2 : 0;
            pl = pw > 0 ? pw / 2 : 0;
        }
        size_t nin = l->in_size * B, nout = l->out_size * B;
        size_t nw = l->n_params;
        float *x = malloc(sizeof(float) * nin), *y = malloc(sizeof(float) * nout);
        float *dy = malloc(sizeof(float) * nout), *dz = malloc(sizeof(float) * nout);
        float *dx = malloc(sizeof(float) * nin);
        double *rdw = malloc(sizeof(double) * nw);
        double *rdx = malloc(sizeof(double) * nin);
        assert_true(x && y && dy && dz && dx && rdw && rdx);
        fill_uniform(x, nin, -1.0f, 1.0f, 70 + t);
        fill_uniform(dy, nout, -1.0f, 1.0f, 80 + t);
        fill_uniform(l->w + nw - F, (size_t)F, -0.2f, 0.2f, 90 + t);
        l->ops->forward(l, x, y, B, true);
        size_t dead = 0;
        for (size_t i = 0; i < nout; i++) {
            dz[i] = relu && !(y[i] > 0.0f) ? 0.0f : dy[i];
            dead += relu && y[i] == 0.0f;
        }
        assert_true(!relu || (dead > nout / 10 && dead < nout * 9 / 10));
        conv_backward_naive(x, dz, B, H, W, C, l->w, F, k, s, OH, OW, pt, pl,
                            rdw, rdx);
        /* with ReLU, once without dx (dy kept), then with dx */
        for (int pass = relu ? 0 : 1; pass < 2; pass++) {
            float *dyc = malloc(sizeof(float) * nout);
            memcpy(dyc, dy, sizeof(float) * nout);
            l->ops->backward(l, x, y, dyc, pass ? dx : NULL, B);
            free(dyc);
            for (size_t i = 0; i < nw; i++)
                if (!(fabs(l->dw[i] - rdw[i]) <= 1e-4 + 1e-4 * fabs(rdw[i])))
                    fail_msg("case %zu pass %d: dW[%zu] = %g, direct sum %g",
                             t, pass, i, l->dw[i], rdw[i]);
        }
        for (size_t i = 0; i < nin; i++)
            if (!(fabs(dx[i] - rdx[i]) <= 1e-4 + 1e-4 * fabs(rdx[i])))
                fail_msg("case %zu: dx[%zu] = %g, direct sum %g", t, i, dx[i],
                         rdx[i]);
        free(x), free(y), free(dy), free(dz), free(dx), free(rdw), free(rdx);
        nn_model_free(m);
    }
}

/* Two convolutions, so the second one's input gradient is checked through
 * the first one's parameter gradients, as training uses it. */
static void test_cnn_model_gradients(void **state)
{
    (void)state;
    nn_error e;
    nn_model *m = nn_model_from_spec(
        "conv2d(3,3,tanh,stride=2,padding=same) conv2d(4,2,sigmoid) "
        "avgpool(2,stride=1) conv2d(3,2,relu,padding=same) maxpool(2) "
        "flatten dense(4,softmax)",
        nn_shape3(9, 7, 2), 4, NULL, &e);
    if (!m)
        fail_msg("%s", e.msg);
    nn_rng r;
    nn_rng_seed(&r, 5);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_compile(m, NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                      nn_sgd(0.01f, 0.0f, false), &e), NN_OK);
    const int B = 3;
    float x[3 * 9 * 7 * 2];
    uint8_t labels[3] = {1, 3, 0};
    fill_uniform(x, sizeof x / sizeof *x, 0.0f, 1.0f, 6);
    check_model_grads(m, x, labels, B);
    nn_model_free(m);
}

/* ------------------------------------------------------------ pooling */

/* Runs one pooling layer on x (1, H, W, C); y receives the output. */
static nn_model *pool_run(nn_layer_spec s, int H, int W, int C,
                          const float *x, float *y)
{
    nn_model *m = one_layer(nn_shape3(H, W, C), s, 1, 1);
    nn_layer *l = &m->layers[0];
    l->ops->forward(l, x, y, 1, true);
    return m;
}

static void expect_floats(const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= 1e-6f))
            fail_msg("[%zu]: got %g, want %g", i, got[i], want[i]);
}

static void test_maxpool_hand_values(void **state)
{
    (void)state;
    /* 4x4, two channels: channel 0 holds 1..16, channel 1 its negative. */
    float x[4 * 4 * 2], y[2 * 2 * 2];
    for (int i = 0; i < 16; i++)
        x[2 * i] = (float)(i + 1), x[2 * i + 1] = -(float)(i + 1);
    nn_model *m = pool_run(nn_maxpool2d(2, 0), 4, 4, 2, x, y);
    const float want[] = {6, -1, 8, -3, 14, -9, 16, -11};
    expect_floats(y, want, 8);
    /* backward: each dy lands on its window's maximum */
    nn_layer *l = &m->layers[0];
    float dy[8] = {1, 2, 3, 4, 5, 6, 7, 8}, dx[32];
    l->ops->backward(l, x, y, dy, dx, 1);
    float wdx[32] = {0};
    wdx[2 * 5] = 1, wdx[2 * 0 + 1] = 2;      /* 6 at (1,1); -1 at (0,0) */
    wdx[2 * 7] = 3, wdx[2 * 2 + 1] = 4;      /* 8 at (1,3); -3 at (0,2) */
    wdx[2 * 13] = 5, wdx[2 * 8 + 1] = 6;     /* 14 at (3,1); -9 at (2,0) */
    wdx[2 * 15] = 7, wdx[2 * 10 + 1] = 8;    /* 16 at (3,3); -11 at (2,2) */
    expect_floats(dx, wdx, 32);
    nn_model_free(m);

    /* 5x5, pool 2: floor drops the last row and column. */
    float x5[25], y5[4];
    for (int i = 0; i < 25; i++)
        x5[i] = (float)(i + 1);
    m = pool_run(nn_maxpool2d(2, 0), 5, 5, 1, x5, y5);
    assert_int_equal(m->layers[0].out.dim[0], 2);
    const float want5[] = {7, 9, 17, 19};
    expect_floats(y5, want5, 4);
    nn_model_free(m);

    /* 3x3, pool 2, stride 1: overlapping windows; the centre (5) is the
     * maximum of the first window only. */
    float x3[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y3[4];
    m = pool_run(nn_maxpool2d(2, 1), 3, 3, 1, x3, y3);
    const float want3[] = {5, 6, 8, 9};
    expect_floats(y3, want3, 4);
    float dy3[4] = {1, 1, 1, 1}, dx3[9];
    m->layers[0].ops->backward(&m->layers[0], x3, y3, dy3, dx3, 1);
    const float wdx3[9] = {0, 0, 0, 0, 1, 1, 0, 1, 1};
    expect_floats(dx3, wdx3, 9);
    /* a maximum shared by overlapping windows collects both gradients */
    float x3b[9] = {0, 0, 0, 0, 9, 0, 0, 0, 0};
    m->layers[0].ops->forward(&m->layers[0], x3b, y3, 1, true);
    m->layers[0].ops->backward(&m->layers[0], x3b, y3, dy3, dx3, 1);
    assert_true(dx3[4] == 4.0f);
    nn_model_free(m);
}

static void test_avgpool_hand_values(void **state)
{
    (void)state;
    float x[4 * 4 * 2], y[8];
    for (int i = 0; i < 16; i++)
        x[2 * i] = (float)(i + 1), x[2 * i + 1] = -(float)(i + 1);
    nn_model *m = pool_run(nn_avgpool2d(2, 0), 4, 4, 2, x, y);
    const float want[] = {3.5f, -3.5f, 5.5f, -5.5f, 11.5f, -11.5f, 13.5f,
                          -13.5f};
    expect_floats(y, want, 8);
    nn_model_free(m);

    /* 3x3, pool 2, stride 1: means {3, 4, 6, 7}; dy = 1 everywhere spreads
     * back as (windows covering the pixel) / 4. */
    float x3[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y3[4];
    m = pool_run(nn_avgpool2d(2, 1), 3, 3, 1, x3, y3);
    const float want3[] = {3, 4, 6, 7};
    expect_floats(y3, want3, 4);
    float dy3[4] = {1, 1, 1, 1}, dx3[9];
    m->layers[0].ops->backward(&m->layers[0], x3, y3, dy3, dx3, 1);
    const float wdx3[9] = {0.25f, 0.5f, 0.25f, 0.5f, 1.0f,
                           0.5f,  0.25f, 0.5f, 0.25f};
    expect_floats(dx3, wdx3, 9);
    nn_model_free(m);

    /* 5x5 pool 3 stride 2: 2x2 windows of 9 values */
    float x5[25], y5[4];
    for (int i = 0; i < 25; i++)
        x5[i] = (float)(i + 1);
    m = pool_run(nn_avgpool2d(3, 2), 5, 5, 1, x5, y5);
    const float want5[] = {7, 9, 17, 19};
    expect_floats(y5, want5, 4);
    nn_model_free(m);
}

static void test_pool_gradients(void **state)
{
    (void)state;
    struct { int p, s; } cases[] = {{2, 0}, {2, 1}, {3, 2}, {2, 3}, {3, 1}};
    for (int kind = 0; kind < 2; kind++)
        for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
            const int B = 2;
            nn_layer_spec s = kind ? nn_avgpool2d(cases[t].p, cases[t].s)
                                   : nn_maxpool2d(cases[t].p, cases[t].s);
            nn_model *m = one_layer(nn_shape3(7, 5, 2), s, B, 1);
            size_t nin = m->layers[0].in_size * B;
            float *x = malloc(sizeof(float) * nin);
            /* distinct values 0.05 apart, shuffled, so that no
             * perturbation changes a window's maximum */
            nn_rng r;
            nn_rng_seed(&r, 70 + t);
            for (size_t i = 0; i < nin; i++)
                x[i] = 0.05f * (float)i - 3.0f;
            for (size_t i = nin - 1; i > 0; i--) {
                size_t j = nn_rng_below(&r, (uint32_t)(i + 1));
                float tmp = x[i];
                x[i] = x[j], x[j] = tmp;
            }
            check_layer_grads(m, x, B, true);
            free(x);
            nn_model_free(m);
        }
}

/* ------------------------------------------------------------ presets */

static void test_cnn_preset(void **state)
{
    (void)state;
    nn_error e;
    nn_optimizer opt;
    nn_model *m = nn_model_from_spec("cnn", nn_shape3(28, 28, 1), 10, &opt,
                                     &e);
    if (!m)
        fail_msg("%s", e.msg);
    assert_int_equal(opt.kind, NN_OPT_ADAM);
    assert_float_equal(opt.lr, nn_adam().lr, 0.0f);
    assert_int_equal(nn_model_param_count(m), 34826);
    const size_t params[] = {320, 0, 18496, 0, 0, 0, 16010};
    const int shapes[][3] = {{26, 26, 32}, {13, 13, 32}, {11, 11, 64},
                             {5, 5, 64}, {1600, 1, 1}, {1600, 1, 1},
                             {10, 1, 1}};
    assert_int_equal(nn_model_layer_count(m), 7);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(nn_model_layer_param_count(m, i), params[i]);
        nn_shape s = nn_model_layer_output_shape(m, i);
        for (int d = 0; d < s.rank; d++)
            assert_int_equal(s.dim[d], shapes[i][d]);
    }
    nn_rng r;
    nn_rng_seed(&r, 1);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_compile(m, NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                      nn_adam(), &e), NN_OK);
    char buf[4096];
    nn_model_summary(m, buf, sizeof buf);
    assert_non_null(strstr(buf, "conv2d (Conv2D)"));
    assert_non_null(strstr(buf, "conv2d_1 (Conv2D)"));
    assert_non_null(strstr(buf, "max_pooling2d_1 (MaxPooling2D)"));
    assert_non_null(strstr(buf, "(None, 26, 26, 32)"));
    assert_non_null(strstr(buf, "flatten (Flatten)"));
    assert_non_null(strstr(buf, "dropout (Dropout)"));
    assert_non_null(strstr(buf, "Total params: 34,826"));
    assert_non_null(strstr(buf, "Non-trainable params: 0"));
    nn_model_free(m);
}

static void test_lenet5_preset(void **state)
{
    (void)state;
    nn_error e;
    nn_model *m = nn_model_from_spec("lenet5", nn_shape3(28, 28, 1), 10,
                                     NULL, &e);
    if (!m)
        fail_msg("%s", e.msg);
    /* conv 156, conv 2,416, dense 48,120 + 10,164 + 850 */
    assert_int_equal(nn_model_param_count(m), 61706);
    nn_shape s = nn_model_layer_output_shape(m, 0);
    assert_int_equal(s.dim[0], 28);
    assert_int_equal(s.dim[2], 6);
    s = nn_model_layer_output_shape(m, 3);
    assert_int_equal(s.dim[0], 5);
    assert_int_equal(s.dim[2], 16);
    nn_rng r;
    nn_rng_seed(&r, 1);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_compile(m, NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                      nn_adam(), &e), NN_OK);
    char buf[4096];
    nn_model_summary(m, buf, sizeof buf);
    assert_non_null(strstr(buf, "average_pooling2d (AveragePooling2D)"));
    /* one training step moves the loss down on a fixed batch */
    float x[8 * 784];
    uint8_t lab[8];
    fill_uniform(x, sizeof x / sizeof *x, 0.0f, 1.0f, 3);
    for (int i = 0; i < 8; i++)
        lab[i] = (uint8_t)i;
    const nn_batch b = {.x = x, .labels = lab, .size = 8, .apply = true};
    nn_batch_result r0, r1;
    assert_int_equal(nn_model_train_batch(m, &b, &r0, &e), NN_OK);
    for (int i = 0; i < 20; i++)
        nn_model_train_batch(m, &b, &r1, &e);
    assert_true(r1.loss < r0.loss);
    nn_model_free(m);
}

/* --------------------------------------------------- save, threads */

static void test_cnn_save_load_identical(void **state)
{
    (void)state;
    nn_error e;
    nn_model *m = nn_model_from_spec(
        "conv2d(4,3,relu) batchnorm maxpool(2) conv2d(6,3,relu,padding=same) "
        "avgpool(2) flatten dropout(0.3) dense(3,softmax)",
        nn_shape3(10, 9, 2), 3, NULL, &e);
    if (!m)
        fail_msg("%s", e.msg);
    nn_rng r;
    nn_rng_seed(&r, 9);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_compile(m, NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                      nn_adam(), &e), NN_OK);
    enum { N = 40 };
    float *x = malloc(sizeof(float) * N * 180);
    uint8_t lab[N];
    fill_uniform(x, (size_t)N * 180, 0.0f, 1.0f, 10);
    for (int i = 0; i < N; i++)
        lab[i] = (uint8_t)(i % 3);
    nn_dataset d = {.n = N, .shape = nn_shape3(10, 9, 2), .x_f32 = x,
                    .scale = 1.0f, .labels = lab, .num_classes = 3};
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 2;
    o.batch_size = 8;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_OK);
    /* the batchnorm moving statistics have moved off their start */
    const float *mm = nn_model_params(m) + m->layers[1].param_off + 8;
    assert_true(mm[0] != 0.0f);

    char path[] = "/tmp/test_conv_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(nn_model_save(m, path, true, &e), NN_OK);
    nn_model *m2 = nn_model_load(path, &e);
    unlink(path);
    if (!m2)
        fail_msg("%s", e.msg);
    assert_int_equal(nn_model_param_count(m2), nn_model_param_count(m));
    for (int i = 0; i < nn_model_layer_count(m); i++) {
        nn_layer_spec a = nn_model_layer(m, i), b = nn_model_layer(m2, i);
        assert_int_equal(a.kind, b.kind);
        assert_int_equal(a.activation, b.activation);
        assert_int_equal(a.units, b.units);
        assert_int_equal(a.kernel, b.kernel);
        assert_int_equal(a.stride, b.stride);
        assert_int_equal(a.padding, b.padding);
        assert_true(a.rate == b.rate);
    }
    float *y1 = malloc(sizeof(float) * N * 3), *y2 = malloc(sizeof(float) * N * 3);
    assert_int_equal(nn_model_predict(m, x, N, y1, &e), NN_OK);
    assert_int_equal(nn_model_predict(m2, x, N, y2, &e), NN_OK);
    assert_memory_equal(y1, y2, sizeof(float) * N * 3);
    free(x), free(y1), free(y2);
    nn_model_free(m);
    nn_model_free(m2);
}

/* Parameter gradients of the cnn preset (plus a batchnorm) are the same
 * bits with one, two and three threads, whatever OpenBLAS kernel family
 * runs (`make check` runs this under each one the processor can execute):
 * the layers' own reductions (biases, batchnorm sums) have a fixed order,
 * and the blocks nn_gemm cuts a product into depend on its shape alone. */
static void test_cnn_grads_thread_independent(void **state)
{
    (void)state;
    nn_error e;
    float *g[3];
    enum { B = 64 };
    float *x = malloc(sizeof(float) * B * 784);
    uint8_t lab[B];
    fill_uniform(x, (size_t)B * 784, 0.0f, 1.0f, 12);
    for (int i = 0; i < B; i++)
        lab[i] = (uint8_t)(i % 10);
    size_t n = 0;
    int prev = nn_get_threads();
    for (int t = 0; t < 3; t++) {
        nn_set_threads(t + 1);
        nn_model *m = nn_model_from_spec(
            "conv2d(32,3,relu) batchnorm maxpool(2) conv2d(64,3,relu) "
            "maxpool(2) flatten dropout(0.5) dense(10,softmax)",
            nn_shape3(28, 28, 1), 10, NULL, &e);
        assert_non_null(m);
        nn_rng r;
        nn_rng_seed(&r, 3);
        assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
        assert_int_equal(nn_model_compile(
                             m, NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                             nn_adam(), &e), NN_OK);
        n = nn_model_param_count(m);
        nn_rng_seed(&m->rng, 4);
        assert_int_equal(nn_model_train_batch(m, &(nn_batch){.x = x,
                                              .labels = lab, .size = B},
                                              NULL, &e), NN_OK);
        g[t] = malloc(sizeof(float) * n);
        memcpy(g[t], nn_model_grads(m), sizeof(float) * n);
        nn_model_free(m);
    }
    nn_set_threads(prev);
    assert_memory_equal(g[0], g[1], sizeof(float) * n);
    assert_memory_equal(g[0], g[2], sizeof(float) * n);
    free(g[0]), free(g[1]), free(g[2]), free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_forward_matches_naive),
        cmocka_unit_test(test_conv_output_shapes),
        cmocka_unit_test(test_conv_rejects_bad_shapes),
        cmocka_unit_test(test_conv_softmax_over_channels),
        cmocka_unit_test(test_conv_gradients),
        cmocka_unit_test(test_conv_backward_matches_naive),
        cmocka_unit_test(test_cnn_model_gradients),
        cmocka_unit_test(test_maxpool_hand_values),
        cmocka_unit_test(test_avgpool_hand_values),
        cmocka_unit_test(test_pool_gradients),
        cmocka_unit_test(test_cnn_preset),
        cmocka_unit_test(test_lenet5_preset),
        cmocka_unit_test(test_cnn_save_load_identical),
        cmocka_unit_test(test_cnn_grads_thread_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

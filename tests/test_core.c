/*
 * test_core.c - the libnn core: gradient checks for dense layers, every
 * activation and loss; optimizer steps against hand-computed values; the
 * matrix product against its naive reference; model files.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "nn.h"
#include "nn/kernels.h"
#include "nn/optim.h"

enum { B = 3, IN = 5, HID = 4, OUT = 3 };

static nn_model *build(nn_activation hidden, nn_activation out, nn_loss loss,
                       uint64_t seed)
{
    nn_error err;
    nn_model *m = nn_model_new(nn_shape1(IN));
    assert_non_null(m);
    assert_int_equal(nn_model_add(m, nn_dense(HID, hidden), &err), NN_OK);
    assert_int_equal(nn_model_add(m, nn_dense(OUT, out), &err), NN_OK);
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    assert_int_equal(nn_model_init(m, &rng, &err), NN_OK);
    float *p = nn_model_params(m);
    for (size_t i = 0; i < nn_model_param_count(m); i++)  /* non-zero biases */
        p[i] += 0.1f * (nn_rng_uniform(&rng) - 0.5f);
    assert_int_equal(nn_model_compile(m, loss, nn_sgd(0.1f, 0, false), &err),
                     NN_OK);
    return m;
}

static double batch_loss(nn_model *m, const float *x, const uint8_t *lab,
                         const float *tgt)
{
    nn_batch_result r;
    nn_error err;
    const nn_batch b = {.x = x, .labels = lab, .targets = tgt, .size = B};
    assert_int_equal(nn_model_train_batch(m, &b, &r, &err), NN_OK);
    return r.loss;
}

/* Central differences on every parameter against the analytic gradient. */
static void gradcheck(nn_activation hidden, nn_activation out, nn_loss loss,
                      bool use_targets)
{
    nn_model *m = build(hidden, out, loss, 7);
    nn_rng r;
    nn_rng_seed(&r, 3);
    float x[B * IN], tgt[B * OUT];
    uint8_t lab[B] = {2, 0, 1};
    for (int i = 0; i < B * IN; i++)
        x[i] = 2.0f * nn_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < B * OUT; i++)
        tgt[i] = (float)(i % OUT == lab[i / OUT]);
    if (loss == NN_LOSS_MSE && use_targets)
        for (int i = 0; i < B * OUT; i++)
            tgt[i] = nn_rng_uniform(&r);
    const uint8_t *L = use_targets ? NULL : lab;
    const float *T = use_targets ? tgt : NULL;
    batch_loss(m, x, L, T);
    size_t n = nn_model_param_count(m);
    float *g = malloc(n * sizeof *g);
    memcpy(g, nn_model_grads(m), n * sizeof *g);
    float *p = nn_model_params(m);
    double max_grad = 0.0;
    for (size_t i = 0; i < n; i++) {
        float keep = p[i];
        const float h = 1e-2f;
        p[i] = keep + h;
        double lp = batch_loss(m, x, L, T);
        p[i] = keep - h;
        double lm = batch_loss(m, x, L, T);
        p[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        double diff = fabs(num - g[i]);
        if (diff > 2e-3 + 2e-2 * fabs(num))
            fail_msg("%s/%s/%s param %zu: analytic %g numeric %g",
                     nn_activation_name(hidden), nn_activation_name(out),
                     nn_loss_name(loss), i, g[i], num);
        max_grad = fmax(max_grad, fabs(g[i]));
    }
    assert_true(max_grad > 1e-3);   /* not trivially zero */
    free(g);
    nn_model_free(m);
}

static void test_gradcheck_hidden_activations(void **state)
{
    (void)state;
    nn_activation acts[] = {NN_ACT_LINEAR, NN_ACT_SIGMOID, NN_ACT_TANH,
                            NN_ACT_RELU, NN_ACT_SOFTMAX};
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
        gradcheck(acts[i], NN_ACT_SOFTMAX,
                  NN_LOSS_CATEGORICAL_CROSSENTROPY, false);
}

static void test_gradcheck_losses(void **state)
{
    (void)state;
    gradcheck(NN_ACT_TANH, NN_ACT_SOFTMAX, NN_LOSS_CATEGORICAL_CROSSENTROPY,
              true);
    gradcheck(NN_ACT_TANH, NN_ACT_SOFTMAX,
              NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, false);
    /* MSE through each output activation, softmax's Jacobian included */
    nn_activation outs[] = {NN_ACT_LINEAR, NN_ACT_SIGMOID, NN_ACT_TANH,
                            NN_ACT_SOFTMAX};
    for (size_t i = 0; i < sizeof outs / sizeof *outs; i++) {
        gradcheck(NN_ACT_SIGMOID, outs[i], NN_LOSS_MSE, true);
        gradcheck(NN_ACT_TANH, outs[i], NN_LOSS_MSE, false);
    }
}

/* One dense(1, linear) unit, w = 0.5, b = 0, input x = 2, target 3:
 * y = 1, MSE L = (y - t)^2 = 4, dL/dw = 2 (y - t) x = -8, dL/db = -4. */
static void one_unit(nn_optimizer opt, int steps, float *w, float *b)
{
    nn_error err;
    nn_model *m = nn_model_new(nn_shape1(1));
    assert_int_equal(nn_model_add(m, nn_dense(1, NN_ACT_LINEAR), &err), NN_OK);
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    assert_int_equal(nn_model_init(m, &rng, &err), NN_OK);
    nn_model_params(m)[0] = 0.5f;
    nn_model_params(m)[1] = 0.0f;
    assert_int_equal(nn_model_compile(m, NN_LOSS_MSE, opt, &err), NN_OK);
    float x = 2.0f, t = 3.0f;
    for (int s = 0; s < steps; s++)
        assert_int_equal(nn_model_train_batch(m, &(nn_batch){.x = &x,
                                              .targets = &t, .size = 1,
                                              .apply = true}, NULL, &err),
                         NN_OK);
    *w = nn_model_params(m)[0];
    *b = nn_model_params(m)[1];
    nn_model_free(m);
}

static void test_optimizers_by_hand(void **state)
{
    (void)state;
    float w, b;
    /* SGD lr 0.1: w = 0.5 - 0.1 (-8) = 1.3, b = 0.4 */
    one_unit(nn_sgd(0.1f, 0, false), 1, &w, &b);
    assert_float_equal(w, 1.3f, 1e-6);
    assert_float_equal(b, 0.4f, 1e-6);
    /* SGD lr 0.01 momentum 0.9, two steps.
     * step 1: v = 0.08, w = 0.58; vb = 0.04, b = 0.04
     * step 2: y = 1.2, g_w = 2 (1.2 - 3) 2 = -7.2, g_b = -3.6
     *         v = 0.9 0.08 + 0.072 = 0.144, w = 0.724
     *         vb = 0.036 + 0.036 = 0.072, b = 0.112 */
    one_unit(nn_sgd(0.01f, 0.9f, false), 2, &w, &b);
    assert_float_equal(w, 0.724f, 1e-5);
    assert_float_equal(b, 0.112f, 1e-5);
    /* Nesterov, one step: v = 0.08, w = 0.5 + 0.9 0.08 + 0.08 = 0.652,
     * b = 0 + 0.9 0.04 + 0.04 = 0.076 */
    one_unit(nn_sgd(0.01f, 0.9f, true), 1, &w, &b);
    assert_float_equal(w, 0.652f, 1e-5);
    assert_float_equal(b, 0.076f, 1e-5);
    /* RMSprop, one step: s = 0.1 g^2, w -= lr g / (sqrt(s) + eps)
     * = 0.5 + 0.001 8 / (sqrt(6.4) + 1e-7) = 0.5 + 0.0031623 */
    one_unit(nn_rmsprop(), 1, &w, &b);
    assert_float_equal(w, 0.5f + 0.008f / sqrtf(6.4f), 1e-6);
    assert_float_equal(b, 0.004f / sqrtf(1.6f), 1e-6);
    /* Adam, one step: m = 0.1 g, v = 0.001 g^2, lr_t = lr sqrt(0.001)/0.1,
     * update = lr_t m / sqrt(v) = lr (sign g): w = 0.501, b = 0.001 */
    one_unit(nn_adam(), 1, &w, &b);
    assert_float_equal(w, 0.501f, 1e-6);
    assert_float_equal(b, 0.001f, 1e-6);
    /* Adam, two steps: after step 1, y = 2 0.501 + 0.001 = 1.003,
     * g_w = 2 (1.003 - 3) 2 = -7.988, g_b = -3.994;
     * m = 0.9 (-0.8) + 0.1 (-7.988) = -1.5188,
     * v = 0.999 0.064 + 0.001 63.808144 = 0.127744144,
     * lr_t = 0.001 sqrt(1 - 0.999^2) / (1 - 0.9^2) */
    one_unit(nn_adam(), 2, &w, &b);
    double lr_t = 0.001 * sqrt(1 - 0.999 * 0.999) / (1 - 0.81);
    double w2 = 0.501 + lr_t * 1.5188 / (sqrt(0.127744144) + 1e-7);
    assert_float_equal(w, (float)w2, 2e-6);
    nn_optimizer d = nn_adam();
    assert_float_equal(d.beta2, 0.999f, 0);
    assert_float_equal(nn_rmsprop().rho, 0.9f, 0);
    assert_float_equal(nn_rmsprop().epsilon, 1e-7f, 0);
}

/* A state that decays while its gradient is 0 (an always-blank pixel's
 * weight) is stored as 0 once below FLT_MIN, never as a subnormal, and the
 * weights move as the unflushed formula, worked out in double, says:
 * RMSprop s = 0.9^t 0.1 g^2 after t zero steps, then one step of g. */
static void test_optimizer_state_flushes_subnormals(void **state)
{
    (void)state;
    const nn_optimizer kinds[3] = {nn_rmsprop(), nn_adam(),
                                   nn_sgd(0.01f, 0.9f, false)};
    for (int k = 0; k < 3; k++) {
        float w[2] = {0.5f, -0.25f}, g[2] = {1e-3f, -2e-3f};
        float st[4] = {0}, zero[2] = {0};
        nn_optimizer_step(&kinds[k], kinds[k].lr, w, g, st, st + 2, 2, 1);
        float w1[2] = {w[0], w[1]};
        for (int t = 2; t < 3000; t++)   /* 0.9^1000 g^2 < FLT_MIN */
            nn_optimizer_step(&kinds[k], kinds[k].lr, w, zero, st, st + 2,
                              2, (uint64_t)t);
        for (int i = 0; i < 4; i++)
            assert_true(st[i] == 0.0f || fabsf(st[i]) >= FLT_MIN);
        if (k != 1)   /* adam's m and v decay at different rates */
            for (int i = 0; i < 2; i++)
                assert_true(st[i] == 0.0f);
        if (k == 0)   /* rmsprop: zero gradients leave w as it was */
            for (int i = 0; i < 2; i++)
                assert_true(w[i] == w1[i]);
    }
    /* RMSprop, 1 step of g, 900 of 0, 1 of g: s = 0.1 g^2 (1 + 0.9^901),
     * w = w0 + lr g / sqrt(0.1 g^2) + lr g / (sqrt(s) + 1e-7) (g < 0). */
    nn_optimizer r = nn_rmsprop();
    float w = 0.5f, g = -8.0f, s1 = 0.0f, s2 = 0.0f, z = 0.0f;
    nn_optimizer_step(&r, r.lr, &w, &g, &s1, &s2, 1, 1);
    for (int t = 0; t < 900; t++)
        nn_optimizer_step(&r, r.lr, &w, &z, &s1, &s2, 1, 2);
    assert_true(s1 == 0.0f);
    nn_optimizer_step(&r, r.lr, &w, &g, &s1, &s2, 1, 3);
    double s = 0.1 * 64.0 * (1.0 + pow(0.9, 901));
    double want = 0.5 + 0.008 / sqrt(6.4) + 0.008 / (sqrt(s) + 1e-7);
    assert_float_equal(w, (float)want, 1e-6);
}

static void fill(float *v, size_t n, nn_rng *r)
{
    for (size_t i = 0; i < n; i++)
        v[i] = 2.0f * nn_rng_uniform(r) - 1.0f;
}

/* One row times a matrix (the one-image inference path): x with zeros,
 * several stretches of K, column blocks and a remainder, split across
 * threads when large; against the reference. */
static void test_gemm_one_row(void **state)
{
    (void)state;
    const int Ns[] = {10, 64, 200, 512}, Ks[] = {5, 300, 1000};
    nn_rng r;
    nn_rng_seed(&r, 12);
    for (int ni = 0; ni < 4; ni++)
        for (int ki = 0; ki < 3; ki++) {
            int N = Ns[ni], K = Ks[ki], ldb = N + 3;
            float *x = malloc(sizeof(float) * (size_t)K);
            float *Bm = malloc(sizeof(float) * (size_t)K * ldb);
            float *y0 = malloc(sizeof(float) * (size_t)N);
            float *y1 = malloc(sizeof(float) * (size_t)N);
            fill(x, (size_t)K, &r);
            fill(Bm, (size_t)K * ldb, &r);
            for (int k = 0; k < K; k += 3)   /* a third of x is zero */
                x[k] = 0.0f;
            const float betas[] = {0.0f, 1.0f, -0.5f};
            for (int bi = 0; bi < 3; bi++) {
                fill(y0, (size_t)N, &r);
                for (int j = 0; j < N; j++)
                    y1[j] = betas[bi] == 0.0f ? NAN : y0[j];
                nn_gemm_ref(false, false, 1, N, K, 1.5f, x, K, Bm, ldb,
                            betas[bi], y0, N);
                nn_gemm(false, false, 1, N, K, 1.5f, x, K, Bm, ldb,
                        betas[bi], y1, N);
                for (int j = 0; j < N; j++)
                    assert_float_equal(y1[j], y0[j],
                                       1e-4 + 1e-4 * fabsf(y0[j]));
            }
            free(x);
            free(Bm);
            free(y0);
            free(y1);
        }
}

/* Products give the same bits with 1, 2 and 3 threads, for every shape
 * class the layers use (the seed's dense layers forward and backward, a
 * convolution chunk, one row), whatever OpenBLAS kernel family runs: the
 * blocks a product is cut into depend on its shape alone. `make check`
 * runs this under each family the processor can execute. */
static void test_gemm_thread_independent(void **state)
{
    (void)state;
    static const struct { bool ta, tb; int M, N, K; } shapes[] = {
        {false, false, 128, 512, 784},   /* dense forward: X W */
        {true, false, 784, 512, 128},    /* dense weight gradient: X^T dY */
        {false, true, 128, 784, 512},    /* dense input gradient: dY W^T */
        {false, false, 2704, 32, 10},    /* convolution chunk: X_col W */
        {true, false, 289, 64, 1936},    /* its weight gradient */
        {false, true, 1936, 288, 64},    /* its input gradient */
        {false, false, 1, 512, 784},     /* one image */
        {false, false, 45, 1000, 37},    /* odd sizes */
    };
    nn_rng r;
    nn_rng_seed(&r, 13);
    int prev = nn_get_threads();
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        bool ta = shapes[s].ta, tb = shapes[s].tb;
        int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
        int lda = ta ? M : K, ldb = tb ? K : N;
        size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
        float *A = malloc(na * 4), *Bm = malloc(nb * 4), *C[3];
        fill(A, na, &r);
        fill(Bm, nb, &r);
        for (int t = 0; t < 3; t++) {
            nn_set_threads(t + 1);
            C[t] = malloc(nc * 4);
            nn_gemm(ta, tb, M, N, K, 1.0f, A, lda, Bm, ldb, 0.0f, C[t], N);
        }
        assert_memory_equal(C[0], C[1], nc * 4);
        assert_memory_equal(C[0], C[2], nc * 4);
        free(A), free(Bm), free(C[0]), free(C[1]), free(C[2]);
    }
    nn_set_threads(prev);
}

/* One training step of the seed's network at batch 128 gives the same
 * gradients, bit for bit, with 1, 2 and 3 threads. */
static void test_mlp_grads_thread_independent(void **state)
{
    (void)state;
    enum { NB = 128 };
    nn_error e;
    float *x = malloc(sizeof(float) * NB * 784), *g[3];
    uint8_t lab[NB];
    nn_rng r;
    nn_rng_seed(&r, 14);
    for (size_t i = 0; i < (size_t)NB * 784; i++)
        x[i] = nn_rng_uniform(&r) < 0.8f ? 0.0f : nn_rng_uniform(&r);
    for (int i = 0; i < NB; i++)
        lab[i] = (uint8_t)(i % 10);
    int prev = nn_get_threads();
    size_t n = 0;
    for (int t = 0; t < 3; t++) {
        nn_set_threads(t + 1);
        nn_model *m = nn_model_from_spec("mlp", nn_shape1(784), 10, NULL, &e);
        assert_non_null(m);
        nn_rng_seed(&r, 3);
        assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
        assert_int_equal(nn_model_compile(
                             m, NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                             nn_rmsprop(), &e), NN_OK);
        n = nn_model_param_count(m);
        assert_int_equal(nn_model_train_batch(m, &(nn_batch){.x = x,
                                              .labels = lab, .size = NB},
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

static void test_gemm_matches_reference(void **state)
{
    (void)state;
    const int sizes[] = {1, 7, 33, 129};
    nn_rng r;
    nn_rng_seed(&r, 11);
    for (int si = 0; si < 4; si++)
        for (int t = 0; t < 4; t++) {
            int M = sizes[si], N = sizes[(si + 1) % 4], K = sizes[(si + 2) % 4];
            bool ta = t & 1, tb = t & 2;
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
            size_t na = (size_t)(ta ? K : M) * lda;
            size_t nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
            float *A = malloc(na * 4), *Bm = malloc(nb * 4);
            float *C0 = malloc(nc * 4), *C1 = malloc(nc * 4),
                  *C2 = malloc(nc * 4);
            fill(A, na, &r);
            fill(Bm, nb, &r);
            fill(C0, nc, &r);
            float betas[] = {0.0f, 1.0f, 0.5f};
            for (int bi = 0; bi < 3; bi++) {
                memcpy(C1, C0, nc * 4);
                memcpy(C2, C0, nc * 4);
                if (betas[bi] == 0.0f)     /* beta 0 ignores NaN in C */
                    for (size_t i = 0; i < nc; i++)
                        C1[i] = C2[i] = NAN;
                float *C3 = malloc(nc * 4);
                memcpy(C3, C1, nc * 4);
                nn_gemm_ref(ta, tb, M, N, K, 0.75f, A, lda, Bm, ldb,
                            betas[bi], C0, ldc);
                nn_gemm(ta, tb, M, N, K, 0.75f, A, lda, Bm, ldb, betas[bi],
                        C1, ldc);
                nn_gemm_portable(ta, tb, M, N, K, 0.75f, A, lda, Bm, ldb,
                                 betas[bi], C3, ldc);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        float want = C0[(size_t)i * ldc + j];
                        assert_float_equal(C1[(size_t)i * ldc + j], want,
                                           1e-4 + 1e-4 * fabsf(want));
                        assert_float_equal(C3[(size_t)i * ldc + j], want,
                                           1e-4 + 1e-4 * fabsf(want));
                    }
                free(C3);
                fill(C0, nc, &r);
            }
            free(A);
            free(Bm);
            free(C0);
            free(C1);
            free(C2);
        }
}

static char tmpdir[64];

static void test_model_file_round_trip(void **state)
{
    (void)state;
    nn_model *m = build(NN_ACT_RELU, NN_ACT_SOFTMAX,
                        NN_LOSS_CATEGORICAL_CROSSENTROPY, 5);
    nn_error err;
    float x[B * IN];
    uint8_t lab[B] = {0, 1, 2};
    nn_rng r;
    nn_rng_seed(&r, 9);
    fill(x, B * IN, &r);
    nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY, nn_adam(), &err);
    const nn_batch bt = {.x = x, .labels = lab, .size = B, .apply = true};
    for (int s = 0; s < 3; s++)
        nn_model_train_batch(m, &bt, NULL, &err);
    char path[128];
    snprintf(path, sizeof path, "%s/m.nn", tmpdir);
    assert_int_equal(nn_model_save(m, path, true, &err), NN_OK);
    nn_model *l = nn_model_load(path, &err);
    assert_non_null(l);
    float y0[B * OUT], y1[B * OUT];
    assert_int_equal(nn_model_predict(m, x, B, y0, &err), NN_OK);
    assert_int_equal(nn_model_predict(l, x, B, y1, &err), NN_OK);
    assert_memory_equal(y0, y1, sizeof y0);
    assert_int_equal(nn_model_optimizer(l).kind, NN_OPT_ADAM);
    /* continuing from the checkpoint equals continuing in memory */
    nn_model_train_batch(m, &bt, NULL, &err);
    nn_model_train_batch(l, &bt, NULL, &err);
    assert_memory_equal(nn_model_params(m), nn_model_params(l),
                        nn_model_param_count(m) * sizeof(float));

    /* damaged files: every truncation and a flipped bit anywhere */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t cut = 0; cut < n; cut += 7) {
        nn_model *bad = nn_model_load_mem(buf, cut, &err);
        assert_null(bad);
        assert_int_equal(err.code, NN_ERR_FORMAT);
    }
    for (size_t at = 0; at < n; at += 5) {
        buf[at] ^= 0x10;
        assert_null(nn_model_load_mem(buf, n, &err));
        assert_int_equal(err.code, NN_ERR_FORMAT);
        buf[at] ^= 0x10;
    }
    assert_non_null(strstr(err.msg, "checksum"));
    nn_model *ok = nn_model_load_mem(buf, n, &err);
    assert_non_null(ok);
    nn_model_free(ok);

    /* missing file, directory, folder that does not exist */
    snprintf(path, sizeof path, "%s/none.nn", tmpdir);
    assert_null(nn_model_load(path, &err));
    assert_int_equal(err.code, NN_ERR_IO);
    assert_non_null(strstr(err.msg, "none.nn"));
    assert_null(nn_model_load(tmpdir, &err));
    assert_int_equal(err.code, NN_ERR_IO);
    snprintf(path, sizeof path, "%s/no/such/m.nn", tmpdir);
    assert_int_equal(nn_model_save(m, path, false, &err), NN_ERR_IO);
    nn_model_free(l);
    nn_model_free(m);
}

/* A save removes the temporaries of killed writers of the same path (pid
 * gone), and nothing else: a live writer's, other names', odd names. */
static void test_save_removes_stale_temporaries(void **state)
{
    (void)state;
    nn_model *m = build(NN_ACT_RELU, NN_ACT_SOFTMAX,
                        NN_LOSS_CATEGORICAL_CROSSENTROPY, 6);
    pid_t dead = fork();   /* a pid that surely no longer runs */
    assert_true(dead >= 0);
    if (dead == 0)
        _exit(0);
    int st;
    assert_int_equal(waitpid(dead, &st, 0), dead);
    char names[6][64], path[512];
    snprintf(names[0], 64, "s.nn.tmp.%ld.0", (long)dead);          /* stale */
    snprintf(names[1], 64, "s.nn.tmp.%ld.17", (long)dead);         /* stale */
    snprintf(names[2], 64, "s.nn.tmp.%ld.0", (long)getppid());     /* alive */
    snprintf(names[3], 64, "other.nn.tmp.%ld.0", (long)dead);  /* not ours */
    snprintf(names[4], 64, "s.nn.tmp.%ld.x", (long)dead);       /* not ours */
    snprintf(names[5], 64, "s.nn.tmp.%ld", (long)dead);         /* not ours */
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fclose(f);
    }
    nn_error err;
    snprintf(path, sizeof path, "%s/s.nn", tmpdir);
    assert_int_equal(nn_model_save(m, path, false, &err), NN_OK);
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        if ((access(path, F_OK) == 0) != (i >= 2))
            fail_msg("%s: %s", names[i], i >= 2 ? "removed" : "left behind");
        if (i >= 2)
            unlink(path);
    }
    snprintf(path, sizeof path, "%s/s.nn", tmpdir);
    nn_model *l = nn_model_load(path, &err);
    assert_non_null(l);
    nn_model_free(l);
    unlink(path);
    nn_model_free(m);
}

static void test_summary_and_spec(void **state)
{
    (void)state;
    nn_error err;
    nn_model *m = nn_model_from_spec("mlp", nn_shape3(28, 28, 1), 10, NULL,
                                     &err);
    assert_non_null(m);
    assert_int_equal(nn_model_param_count(m), 407050);
    char buf[2048];
    size_t need = nn_model_summary(m, buf, sizeof buf);
    assert_true(need < sizeof buf);
    assert_non_null(strstr(buf, "Total params: 407,050"));
    assert_non_null(strstr(buf, "(None, 512)"));
    assert_int_equal(nn_model_summary(m, buf, 10), need);
    assert_int_equal(strlen(buf), 9);
    nn_model_free(m);
    const char *bad[] = {"", "dense", "dense(0)", "dense(70000)",
                         "dense(3,relux)", "densee(3)", "dense(3", "dense(-1)",
                         "dense(3,relu,relu,relu)"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_null(nn_model_from_spec(bad[i], nn_shape1(4), 10, NULL, &err));
        assert_true(err.msg[0] != '\0');
    }
    assert_null(nn_model_from_spec(NULL, nn_shape1(4), 10, NULL, &err));
    assert_int_equal(err.code, NN_ERR_ARG);
    m = nn_model_from_spec(" dense( 8 , activation=tanh )  dense(2,softmax) ",
                           nn_shape1(4), 10, NULL, &err);
    assert_non_null(m);
    assert_int_equal(nn_model_layer(m, 0).activation, NN_ACT_TANH);
    nn_model_free(m);
}

/* Two separable blobs: fit learns them, deterministically for a seed. */
static void test_fit_deterministic(void **state)
{
    (void)state;
    enum { N = 400 };
    static float x[N * 2];
    static uint8_t y[N];
    nn_rng r;
    nn_rng_seed(&r, 2);
    for (int i = 0; i < N; i++) {
        y[i] = (uint8_t)(i & 1);
        x[2 * i] = (y[i] ? 1.0f : -1.0f) + 0.3f * nn_rng_normal(&r);
        x[2 * i + 1] = 0.3f * nn_rng_normal(&r);
    }
    nn_dataset d = {.n = N, .shape = nn_shape1(2), .x_f32 = x, .scale = 1,
                    .labels = y, .num_classes = 2};
    float first[2 * 8 + 8 + 8 * 2 + 2];
    for (int run = 0; run < 2; run++) {
        nn_error err;
        nn_model *m = nn_model_from_spec("dense(8,relu) dense(2,softmax)",
                                         nn_shape1(2), 2, NULL, &err);
        nn_rng w;
        nn_rng_seed(&w, 4);
        nn_model_init(m, &w, &err);
        nn_optimizer adam = nn_adam();
        adam.lr = 0.01f;
        nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY, adam, &err);
        nn_fit_options o = nn_fit_defaults();
        o.epochs = 5;
        o.batch_size = 16;
        o.validation_split = 0.25f;
        nn_history h;
        assert_int_equal(nn_model_fit(m, &d, &o, &h, &err), NN_OK);
        assert_int_equal(h.epochs, 5);
        assert_true(h.epoch[4].accuracy > 0.95);
        assert_false(isnan(h.epoch[4].val_accuracy));
        assert_true(h.epoch[4].loss < h.epoch[0].loss);
        nn_eval ev;
        uint32_t cm[4];
        assert_int_equal(nn_model_evaluate(m, &d, &ev, cm, &err), NN_OK);
        assert_int_equal(cm[0] + cm[1] + cm[2] + cm[3], N);
        assert_float_equal(ev.accuracy, (double)(cm[0] + cm[3]) / N, 1e-9);
        if (run == 0)
            memcpy(first, nn_model_params(m), sizeof first);
        else
            assert_memory_equal(first, nn_model_params(m), sizeof first);
        nn_history_free(&h);
        nn_model_free(m);
    }
}

static void test_errors(void **state)
{
    (void)state;
    nn_error err;
    nn_model *m = nn_model_from_spec("dense(3,relu)", nn_shape1(2), 2, NULL,
                                     &err);
    nn_rng r;
    nn_rng_seed(&r, 1);
    nn_model_init(m, &r, &err);
    float x[2] = {0};
    uint8_t y = 0;
    assert_int_equal(nn_model_train_batch(m, &(nn_batch){.x = x,
                                          .labels = &y, .size = 1,
                                          .apply = true}, NULL, &err),
                     NN_ERR_STATE);
    assert_int_equal(nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY,
                                      nn_adam(), &err), NN_ERR_ARG);
    assert_non_null(strstr(err.msg, "softmax"));
    assert_int_equal(nn_model_compile(m, NN_LOSS_MSE, nn_adam(), &err), NN_OK);
    uint8_t labels[1] = {5};
    nn_dataset d = {.n = 1, .shape = nn_shape1(2), .x_f32 = x, .scale = 1,
                    .labels = labels};
    nn_fit_options o = nn_fit_defaults();
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &err), NN_ERR_ARG);
    assert_non_null(strstr(err.msg, "out of range"));
    d.shape = nn_shape1(3);
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &err), NN_ERR_SHAPE);
    nn_model_free(m);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_core.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_hidden_activations),
        cmocka_unit_test(test_gradcheck_losses),
        cmocka_unit_test(test_optimizers_by_hand),
        cmocka_unit_test(test_optimizer_state_flushes_subnormals),
        cmocka_unit_test(test_gemm_matches_reference),
        cmocka_unit_test(test_gemm_one_row),
        cmocka_unit_test(test_gemm_thread_independent),
        cmocka_unit_test(test_mlp_grads_thread_independent),
        cmocka_unit_test(test_model_file_round_trip),
        cmocka_unit_test(test_save_removes_stale_temporaries),
        cmocka_unit_test(test_summary_and_spec),
        cmocka_unit_test(test_fit_deterministic),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        return 1;
    return rc;
}

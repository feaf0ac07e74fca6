/*
 * test_layers.c - Flatten, Dropout and BatchNormalization: forward values
 * (by hand), training versus inference behaviour, batchnorm's moving
 * statistics, and gradients (parameters and input) against central
 * differences.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn.h"
#include "nn/layer.h"
#include "nn/model.h"
#include "util/gradcheck.h"

/* ------------------------------------------------------------ helpers */

static void expect_floats(const float *got, const float *want, size_t n,
                          float tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("[%zu]: got %.7g, want %.7g", i, got[i], want[i]);
}

/* ------------------------------------------------------------ flatten */

static void test_flatten(void **state)
{
    (void)state;
    nn_model *m = one_layer(nn_shape3(3, 4, 2), nn_flatten(), 2, 1);
    nn_layer *l = &m->layers[0];
    assert_int_equal(l->out.rank, 1);
    assert_int_equal(l->out.dim[0], 24);
    assert_int_equal(l->n_params, 0);
    float x[48], y[48], dy[48], dx[48];
    fill_uniform(x, 48, -1.0f, 1.0f, 2);
    fill_uniform(dy, 48, -1.0f, 1.0f, 3);
    l->ops->forward(l, x, y, 2, true);
    assert_memory_equal(x, y, sizeof x);
    l->ops->backward(l, x, y, dy, dx, 2);
    assert_memory_equal(dx, dy, sizeof dx);
    char buf[2048];
    nn_model_summary(m, buf, sizeof buf);
    assert_non_null(strstr(buf, "flatten (Flatten)"));
    assert_non_null(strstr(buf, "(None, 24)"));
    nn_model_free(m);
}

/* ------------------------------------------------------------ dropout */

static void test_dropout_inference_is_identity(void **state)
{
    (void)state;
    enum { B = 4, N = 300 };
    nn_model *m = one_layer(nn_shape1(N), nn_dropout(0.5f), B, 1);
    nn_layer *l = &m->layers[0];
    float *x = malloc(sizeof(float) * B * N), *y = malloc(sizeof(float) * B * N);
    fill_uniform(x, B * N, -1.0f, 1.0f, 4);
    l->ops->forward(l, x, y, B, false);
    assert_memory_equal(x, y, sizeof(float) * B * N);
    /* predict runs in inference mode too */
    nn_error e;
    assert_int_equal(nn_model_predict(m, x, B, y, &e), NN_OK);
    assert_memory_equal(x, y, sizeof(float) * B * N);
    free(x), free(y);
    nn_model_free(m);
}

static void test_dropout_training(void **state)
{
    (void)state;
    enum { B = 20, N = 1000 };
    const float rate = 0.3f;
    nn_model *m = one_layer(nn_shape1(N), nn_dropout(rate), B, 1);
    nn_layer *l = &m->layers[0];
    size_t n = (size_t)B * N;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    float *y2 = malloc(sizeof(float) * n), *dy = malloc(sizeof(float) * n);
    float *dx = malloc(sizeof(float) * n);
    fill_uniform(x, n, 0.5f, 1.5f, 5);      /* no zeros of its own */
    fill_uniform(dy, n, 0.5f, 1.5f, 6);
    nn_rng_seed(l->rng, 1);
    l->ops->forward(l, x, y, B, true);
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i] == 0.0f)
            zeros++;
        else
            assert_true(y[i] == x[i] * (1.0f / (1.0f - rate)));
    }
    /* 20,000 draws: the dropped fraction is within 0.01 of the rate */
    assert_true(fabs((double)zeros / n - rate) < 0.01);
    /* backward routes dy through the same mask */
    l->ops->backward(l, x, y, dy, dx, B);
    for (size_t i = 0; i < n; i++)
        assert_true(dx[i] == (y[i] == 0.0f ? 0.0f
                                           : dy[i] * (1.0f / (1.0f - rate))));
    /* a fresh mask on the next step; the same one from the same seed */
    l->ops->forward(l, x, y2, B, true);
    assert_true(memcmp(y, y2, sizeof(float) * n) != 0);
    nn_rng_seed(l->rng, 1);
    l->ops->forward(l, x, y2, B, true);
    assert_memory_equal(y, y2, sizeof(float) * n);
    free(x), free(y), free(y2), free(dy), free(dx);
    nn_model_free(m);

    /* rate 0 keeps everything, also in training */
    m = one_layer(nn_shape3(2, 3, 4), nn_dropout(0.0f), 2, 1);
    l = &m->layers[0];
    float a[48], b[48];
    fill_uniform(a, 48, -1.0f, 1.0f, 7);
    l->ops->forward(l, a, b, 2, true);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(l->out.rank, 3);
    nn_model_free(m);
}

static void test_dropout_rejects_bad_rate(void **state)
{
    (void)state;
    nn_error e;
    nn_model *m = nn_model_new(nn_shape1(10));
    assert_int_equal(nn_model_add(m, nn_dropout(1.0f), &e), NN_ERR_ARG);
    assert_non_null(strstr(e.msg, "dropout"));
    assert_int_equal(nn_model_add(m, nn_dropout(-0.1f), &e), NN_ERR_ARG);
    assert_int_equal(nn_model_add(m, nn_dropout(NAN), &e), NN_ERR_ARG);
    nn_model_free(m);
}

static void test_dropout_gradients(void **state)
{
    (void)state;
    enum { B = 3 };
    nn_model *m = one_layer(nn_shape3(3, 4, 2), nn_dropout(0.4f), B, 1);
    float x[B * 24];
    fill_uniform(x, B * 24, -1.0f, 1.0f, 8);
    check_layer_grads(m, x, B, true);
    nn_model_free(m);
}

/* -------------------------------------------------------- batchnorm */

/* The hand example: B = 4 rows of C = 2 features.
 *   feature 0: 1 2 3 4 -> mean 2.5, variance 1.25
 *   feature 1: 0 0 2 2 -> mean 1,   variance 1
 * gamma (2, 1), beta (0.5, -1), epsilon 1e-3, momentum 0.99. */
static const float bn_x[8] = {1, 0, 2, 0, 3, 2, 4, 2};

static nn_model *bn_hand_model(void)
{
    nn_model *m = one_layer(nn_shape1(2), nn_batchnorm(), 4, 1);
    float *w = m->layers[0].w;
    /* initial values: gamma 1, beta 0, moving mean 0, moving variance 1 */
    const float init[8] = {1, 1, 0, 0, 0, 0, 1, 1};
    assert_memory_equal(w, init, sizeof init);
    w[0] = 2.0f, w[1] = 1.0f, w[2] = 0.5f, w[3] = -1.0f;
    return m;
}

static void test_batchnorm_hand_values(void **state)
{
    (void)state;
    nn_model *m = bn_hand_model();
    nn_layer *l = &m->layers[0];
    float y[8];
    /* training: batch statistics, y = gamma (x - mu) / sqrt(var + eps) +
     * beta, e.g. 2 * (1 - 2.5) / sqrt(1.251) + 0.5 = -2.182209 */
    l->ops->forward(l, bn_x, y, 4, true);
    const float train[8] = {-2.182209f, -1.9995f,  -0.39407f, -1.9995f,
                            1.39407f,   -0.0005f,  3.182209f, -0.0005f};
    expect_floats(y, train, 8, 2e-6f);
    /* moving = 0.99 moving + 0.01 batch (biased variance, as Keras) */
    const float moved[4] = {0.025f, 0.01f, 1.0025f, 1.0f};
    expect_floats(l->w + 4, moved, 4, 1e-6f);
    float kept[4];
    memcpy(kept, l->w + 4, sizeof kept);
    /* inference: moving statistics, e.g.
     * 2 * (1 - 0.025) / sqrt(1.0035) + 0.5 = 2.446596 */
    l->ops->forward(l, bn_x, y, 4, false);
    const float infer[8] = {2.446596f, -1.009995f, 4.443106f, -1.009995f,
                            6.439615f, 0.989006f,  8.436124f, 0.989006f};
    expect_floats(y, infer, 8, 2e-6f);
    /* inference leaves the moving statistics alone */
    assert_memory_equal(l->w + 4, kept, sizeof kept);
    /* a second training step moves them again */
    l->ops->forward(l, bn_x, y, 4, true);
    const float moved2[4] = {0.04975f, 0.0199f, 1.004975f, 1.0f};
    expect_floats(l->w + 4, moved2, 4, 1e-6f);
    nn_model_free(m);
}

static void test_batchnorm_momentum_from_spec(void **state)
{
    (void)state;
    nn_error e;
    nn_model *m = nn_model_from_spec("batchnorm(momentum=0.9)", nn_shape1(2),
                                     0, NULL, &e);
    if (!m)
        fail_msg("%s", e.msg);
    assert_true(nn_model_layer(m, 0).rate == 0.9f);
    nn_rng r;
    nn_rng_seed(&r, 1);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_reserve(m, 4, &e), NN_OK);
    nn_layer *l = &m->layers[0];
    float y[8];
    l->ops->forward(l, bn_x, y, 4, true);
    /* 0.1 * (2.5, 1); 0.9 + 0.1 * (1.25, 1) */
    const float moved[4] = {0.25f, 0.1f, 1.025f, 1.0f};
    expect_floats(l->w + 4, moved, 4, 1e-6f);
    nn_model_free(m);

    m = nn_model_from_spec("batchnorm", nn_shape1(2), 0, NULL, &e);
    assert_true(nn_model_layer(m, 0).rate == 0.99f);
    nn_model_free(m);
    m = nn_model_new(nn_shape1(2));
    nn_layer_spec bad = nn_batchnorm();
    bad.rate = 1.0f;
    assert_int_equal(nn_model_add(m, bad, &e), NN_ERR_ARG);
    bad = nn_batchnorm();
    bad.activation = NN_ACT_RELU;
    assert_int_equal(nn_model_add(m, bad, &e), NN_ERR_ARG);
    nn_model_free(m);
}

/* Images: statistics per channel over batch, height and width. */
static void test_batchnorm_channels(void **state)
{
    (void)state;
    enum { B = 3, H = 2, W = 3, C = 2, N = B * H * W * C };
    nn_model *m = one_layer(nn_shape3(H, W, C), nn_batchnorm(), B, 1);
    nn_layer *l = &m->layers[0];
    assert_int_equal(l->n_params, 4 * C);
    assert_int_equal(l->n_nontrainable, 2 * C);
    assert_int_equal(l->out.rank, 3);
    float x[N], y[N];
    /* channel 0 around 5, channel 1 around -3 with a larger spread */
    fill_uniform(x, N, -1.0f, 1.0f, 9);
    for (int i = 0; i < N; i += 2)
        x[i] += 5.0f, x[i + 1] = 4.0f * x[i + 1] - 3.0f;
    l->ops->forward(l, x, y, B, true);
    for (int c = 0; c < C; c++) {
        double mu = 0, var = 0, ym = 0, yv = 0;
        for (int i = c; i < N; i += C)
            mu += x[i];
        mu /= N / C;
        for (int i = c; i < N; i += C)
            var += (x[i] - mu) * (x[i] - mu);
        var /= N / C;
        for (int i = c; i < N; i += C) {
            double want = (x[i] - mu) / sqrt(var + 1e-3);
            if (!(fabs(y[i] - want) < 1e-5))
                fail_msg("channel %d [%d]: %g, want %g", c, i, y[i], want);
            ym += y[i], yv += y[i] * y[i];
        }
        assert_true(fabs(ym / (N / C)) < 1e-5);
        assert_true(fabs(yv / (N / C) - var / (var + 1e-3)) < 1e-4);
        assert_true(fabs(l->w[2 * C + c] - 0.01 * mu) < 1e-6);
        assert_true(fabs(l->w[3 * C + c] - (0.99 + 0.01 * var)) < 1e-6);
    }
    char buf[2048];
    nn_model_summary(m, buf, sizeof buf);
    assert_non_null(strstr(buf, "batch_normalization (BatchNormalization)"));
    assert_non_null(strstr(buf, "Total params: 8"));
    assert_non_null(strstr(buf, "Trainable params: 4"));
    assert_non_null(strstr(buf, "Non-trainable params: 4"));
    nn_model_free(m);
}

static void test_batchnorm_gradients(void **state)
{
    (void)state;
    const nn_shape shapes[] = {nn_shape1(3), nn_shape3(3, 4, 3)};
    const int batches[] = {5, 2};
    for (int t = 0; t < 2; t++) {
        int B = batches[t];
        nn_model *m = one_layer(shapes[t], nn_batchnorm(), B, 1);
        nn_layer *l = &m->layers[0];
        int C = (int)(l->n_params / 4);
        fill_uniform(l->w, (size_t)C, 0.5f, 1.5f, 10);       /* gamma */
        fill_uniform(l->w + C, (size_t)C, -0.5f, 0.5f, 11);  /* beta */
        size_t nin = l->in_size * (size_t)B;
        float *x = malloc(sizeof(float) * nin);
        fill_uniform(x, nin, -2.0f, 2.0f, 12 + t);
        check_layer_grads(m, x, B, true);
        free(x);
        nn_model_free(m);
    }
}

static void test_batchnorm_model_gradients(void **state)
{
    (void)state;
    const char *specs[] = {
        "dense(6,tanh) batchnorm dense(3,softmax)",
        "conv2d(3,3,tanh) batchnorm(momentum=0.5) flatten dense(3,softmax)",
    };
    for (int t = 0; t < 2; t++) {
        nn_error e;
        nn_model *m = nn_model_from_spec(specs[t], nn_shape3(5, 4, 2), 3,
                                         NULL, &e);
        if (!m)
            fail_msg("%s", e.msg);
        nn_rng r;
        nn_rng_seed(&r, 13);
        assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
        assert_int_equal(nn_model_compile(
                             m, NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                             nn_sgd(0.01f, 0.0f, false), &e), NN_OK);
        enum { B = 6 };
        float x[B * 40];
        uint8_t lab[B] = {0, 1, 2, 2, 1, 0};
        fill_uniform(x, B * 40, -1.0f, 1.0f, 14);
        check_model_grads(m, x, lab, B);
        nn_model_free(m);
    }
}

/* After training, inference uses the moving statistics: a sample's output
 * does not depend on the rest of its batch. */
static void test_batchnorm_inference_independent_of_batch(void **state)
{
    (void)state;
    nn_error e;
    nn_model *m = nn_model_from_spec("dense(8,relu) batchnorm dense(2,softmax)",
                                     nn_shape1(4), 2, NULL, &e);
    nn_rng r;
    nn_rng_seed(&r, 15);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_compile(m, NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                      nn_adam(), &e), NN_OK);
    enum { N = 64 };
    float x[N * 4], y[N * 2], y1[2];
    uint8_t lab[N];
    fill_uniform(x, N * 4, -1.0f, 1.0f, 16);
    for (int i = 0; i < N; i++)
        lab[i] = x[4 * i] + x[4 * i + 1] > 0.0f;
    nn_dataset d = {.n = N, .shape = nn_shape1(4), .x_f32 = x, .scale = 1.0f,
                    .labels = lab, .num_classes = 2};
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 3;
    o.batch_size = 16;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_OK);
    assert_int_equal(nn_model_predict(m, x, N, y, &e), NN_OK);
    for (int i = 0; i < N; i += 9) {
        assert_int_equal(nn_model_predict(m, x + 4 * i, 1, y1, &e), NN_OK);
        expect_floats(y1, y + 2 * i, 2, 1e-6f);
    }
    nn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flatten),
        cmocka_unit_test(test_dropout_inference_is_identity),
        cmocka_unit_test(test_dropout_training),
        cmocka_unit_test(test_dropout_rejects_bad_rate),
        cmocka_unit_test(test_dropout_gradients),
        cmocka_unit_test(test_batchnorm_hand_values),
        cmocka_unit_test(test_batchnorm_momentum_from_spec),
        cmocka_unit_test(test_batchnorm_channels),
        cmocka_unit_test(test_batchnorm_gradients),
        cmocka_unit_test(test_batchnorm_model_gradients),
        cmocka_unit_test(test_batchnorm_inference_independent_of_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_onnx.c - input normalisation and ONNX files in libnn:
 *  - nn_model_set_input_norm: predictions equal those of the same model fed
 *    (x - mean) / std by hand; gradients through it against central
 *    differences; kept in the model file (flag bit 2), absent from files
 *    without it; old model files (the committed fuzz seeds) still load;
 *  - nn_onnx_save then nn_onnx_load of a model with every layer kind and
 *    activation: the same layers, the same parameters bit for bit, the
 *    same predictions bit for bit;
 *  - nn_onnx_load_mem on damaged and hostile bytes: a code and a message.
 * (onnxruntime and PyTorch comparisons: tests/cli/onnx.sh.)
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn.h"
#include "util/gradcheck.h"
#include "util/tmpdir.h"

static nn_model *from_spec(const char *spec, nn_shape in, uint64_t seed)
{
    nn_error err;
    nn_model *m = nn_model_from_spec(spec, in, 4, NULL, &err);
    assert_non_null(m);
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    assert_int_equal(nn_model_init(m, &rng, &err), NN_OK);
    float *p = nn_model_params(m);
    for (size_t i = 0; i < nn_model_param_count(m); i++)  /* biases, BN */
        p[i] += 0.05f * (nn_rng_uniform(&rng) - 0.5f) + (p[i] == 1.0f ? 0.3f : 0);
    int L = nn_model_layer_count(m);
    bool softmax = nn_model_layer(m, L - 1).activation == NN_ACT_SOFTMAX &&
                   nn_model_output_shape(m).rank == 1;
    assert_int_equal(nn_model_compile(m, softmax
                                             ? NN_LOSS_CATEGORICAL_CROSSENTROPY
                                             : NN_LOSS_MSE,
                                      nn_adam(), &err), NN_OK);
    return m;
}

static void predict(nn_model *m, const float *x, size_t n, float *y)
{
    nn_error err;
    assert_int_equal(nn_model_predict(m, x, n, y, &err), NN_OK);
}

static void test_norm_by_hand(void **state)
{
    (void)state;
    enum { N = 4, IN = 6, K = 4 };
    nn_model *a = from_spec("dense(5,tanh) dense(4,softmax)", nn_shape1(IN), 1);
    nn_model *b = from_spec("dense(5,tanh) dense(4,softmax)", nn_shape1(IN), 1);
    nn_error err;
    assert_int_equal(nn_model_set_input_norm(a, 0.25f, 0.5f, &err), NN_OK);
    float mean, sd;
    nn_model_input_norm(a, &mean, &sd);
    assert_true(mean == 0.25f && sd == 0.5f);
    nn_model_input_norm(b, &mean, &sd);
    assert_true(mean == 0.0f && sd == 1.0f);
    float x[N * IN], xn[N * IN], ya[N * K], yb[N * K];
    fill_uniform(x, N * IN, 0.0f, 1.0f, 9);
    for (int i = 0; i < N * IN; i++)
        xn[i] = (x[i] - 0.25f) / 0.5f;
    predict(a, x, N, ya);
    predict(b, xn, N, yb);
    assert_memory_equal(ya, yb, sizeof ya);
    float before[N * IN];
    memcpy(before, x, sizeof x);
    predict(a, x, N, ya);
    assert_memory_equal(x, before, sizeof x);   /* the caller's x untouched */
    /* refused values */
    assert_int_equal(nn_model_set_input_norm(a, 0.0f, 0.0f, &err), NN_ERR_ARG);
    assert_int_equal(nn_model_set_input_norm(a, NAN, 1.0f, &err), NN_ERR_ARG);
    assert_int_equal(nn_model_set_input_norm(a, 0.0f, -1.0f, &err),
                     NN_ERR_ARG);
    nn_model_input_norm(a, &mean, &sd);
    assert_true(mean == 0.25f && sd == 0.5f);
    /* training sees the same: one step on each gives the same weights */
    uint8_t lab[N] = {0, 1, 2, 3};
    nn_batch ba = {.x = x, .labels = lab, .size = N, .apply = true};
    nn_batch bb = {.x = xn, .labels = lab, .size = N, .apply = true};
    nn_batch_result ra, rb;
    assert_int_equal(nn_model_train_batch(a, &ba, &ra, &err), NN_OK);
    assert_int_equal(nn_model_train_batch(b, &bb, &rb, &err), NN_OK);
    double la = ra.loss, lb = rb.loss;
    assert_true(la == lb);
    assert_memory_equal(nn_model_params(a), nn_model_params(b),
                        sizeof(float) * nn_model_param_count(a));
    nn_model_free(a);
    nn_model_free(b);
}

static void test_norm_gradients(void **state)
{
    (void)state;
    enum { N = 3 };
    nn_model *m = from_spec("conv2d(2,3,tanh,padding=same) flatten "
                            "dense(4,softmax)", nn_shape3(5, 5, 1), 2);
    nn_error err;
    assert_int_equal(nn_model_set_input_norm(m, 0.1307f, 0.3081f, &err),
                     NN_OK);
    float x[N * 25];
    fill_uniform(x, N * 25, 0.0f, 1.0f, 4);
    uint8_t lab[N] = {1, 3, 0};
    check_model_grads(m, x, lab, N);
    nn_model_free(m);
}

static void test_norm_in_model_file(void **state)
{
    (void)state;
    assert_non_null(tu_tmpdir_make("onnx"));
    nn_model *m = from_spec("dense(3,relu) dense(4,softmax)", nn_shape1(5), 3);
    nn_error err;
    assert_int_equal(nn_model_save(m, tu_path("plain.nn"), false, &err), NN_OK);
    assert_int_equal(nn_model_set_input_norm(m, 0.5f, 2.0f, &err), NN_OK);
    assert_int_equal(nn_model_save(m, tu_path("norm.nn"), true, &err), NN_OK);
    static unsigned char a[1 << 16], b[1 << 16];
    long na = tu_read("plain.nn", a, sizeof a);
    long nb = tu_read("norm.nn", b, sizeof b);
    /* flag bit 2 only when set; 8 bytes before the CRC */
    assert_true(na > 64 && (a[12] & 4) == 0);
    assert_true((b[12] & 4) != 0);
    nn_model *p = nn_model_load(tu_path("plain.nn"), &err);
    nn_model *q = nn_model_load(tu_path("norm.nn"), &err);
    assert_non_null(p);
    assert_non_null(q);
    float mean, sd;
    nn_model_input_norm(p, &mean, &sd);
    assert_true(mean == 0.0f && sd == 1.0f);
    nn_model_input_norm(q, &mean, &sd);
    assert_true(mean == 0.5f && sd == 2.0f);
    float x[2 * 5] = {0.1f, 0.2f, 0.9f, 0.4f, 0.5f, 1, 0, 0.3f, 0.7f, 0.2f};
    float y1[8], y2[8];
    predict(m, x, 2, y1);
    predict(q, x, 2, y2);
    assert_memory_equal(y1, y2, sizeof y1);
    /* a damaged normalisation is refused */
    (void)nb;
    nn_model_free(p);
    nn_model_free(q);
    nn_model_free(m);
    tu_tmpdir_remove();
}

/* Model files written before flag bit 2 existed: the committed seeds. */
static void test_old_model_files_load(void **state)
{
    (void)state;
    static const char *const seeds[] = {"mlp", "mlp-state", "cnn", "cnn2",
                                        "checkpoint"};
    static unsigned char buf[1 << 17];
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        char path[256];
        snprintf(path, sizeof path, "fuzz/seeds/model/%s", seeds[i]);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        assert_true(n > 1 && buf[0] == 1);   /* mode byte, then the file */
        nn_error err;
        nn_model *m = nn_model_load_mem(buf + 1, n - 1, &err);
        if (!m)
            fail_msg("%s: %s", path, err.msg);
        float mean, sd;
        nn_model_input_norm(m, &mean, &sd);
        assert_true(mean == 0.0f && sd == 1.0f);
        nn_model_free(m);
    }
}

static void round_trip(const char *spec, nn_shape in, float mean, float sd)
{
    nn_model *m = from_spec(spec, in, 5);
    nn_error err;
    assert_int_equal(nn_model_set_input_norm(m, mean, sd, &err), NN_OK);
    assert_int_equal(nn_onnx_save(m, tu_path("m.onnx"), &err), NN_OK);
    nn_model *r = nn_onnx_load(tu_path("m.onnx"), NULL, &err);
    if (!r)
        fail_msg("%s: %s", spec, err.msg);
    /* the same layers (less a flatten before dense), the same weights */
    assert_int_equal(nn_model_param_count(r), nn_model_param_count(m));
    assert_memory_equal(nn_model_params(r), nn_model_params(m),
                        sizeof(float) * nn_model_param_count(m));
    assert_int_equal(nn_shape_size(nn_model_input_shape(r)),
                     nn_shape_size(nn_model_input_shape(m)));
    float m2, s2;
    nn_model_input_norm(r, &m2, &s2);
    assert_true(m2 == mean && s2 == sd);
    size_t n = nn_shape_size(in), K = nn_shape_size(nn_model_output_shape(m));
    float *x = malloc(sizeof(float) * 3 * n), *y1 = malloc(sizeof(float) * 3 * K),
          *y2 = malloc(sizeof(float) * 3 * K);
    assert_true(x && y1 && y2);
    fill_uniform(x, 3 * n, 0.0f, 1.0f, 6);
    predict(m, x, 3, y1);
    predict(r, x, 3, y2);
    for (size_t i = 0; i < 3 * K; i++)
        if (y1[i] != y2[i])
            fail_msg("%s: output %zu: %g, read back %g", spec, i,
                     (double)y1[i], (double)y2[i]);
    free(x);
    free(y1);
    free(y2);
    nn_model_free(r);
    nn_model_free(m);
}

static void test_onnx_round_trip(void **state)
{
    (void)state;
    assert_non_null(tu_tmpdir_make("onnx"));
    round_trip("dense(6,relu) dense(4,softmax)", nn_shape1(7), 0, 1);
    round_trip("dense(6,sigmoid) batchnorm dropout(0.3) dense(4,tanh)",
               nn_shape3(4, 4, 1), 0.5f, 0.25f);
    round_trip("conv2d(3,3,relu,padding=same) batchnorm maxpool(2) "
               "conv2d(4,3,padding=same,stride=2) conv2d(4,2,tanh) "
               "avgpool(1) dropout(0.2) flatten dense(5,sigmoid) "
               "dense(4,softmax)", nn_shape3(10, 9, 2), 0.1307f, 0.3081f);
    round_trip("conv2d(3,3,softmax)", nn_shape3(6, 6, 2), 0, 1);
    round_trip("conv2d(3,3) leakyrelu(0.1) conv2d(4,2,relu) gap batchnorm "
               "leakyrelu dense(4,softmax)", nn_shape3(7, 6, 2), 0, 1);
    tu_tmpdir_remove();
}

static void test_onnx_refuses(void **state)
{
    (void)state;
    nn_error err;
    static const unsigned char garbage[] = {0x08, 0x07, 0x12, 0xff, 0xff,
                                            0xff, 0xff, 0x0f, 'x', 'y'};
    assert_null(nn_onnx_load_mem(garbage, sizeof garbage, NULL, &err));
    assert_int_equal(err.code, NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "not an ONNX model"));
    assert_null(nn_onnx_load_mem("", 0, NULL, &err));   /* empty: no graph */
    assert_true(err.code != NN_OK && err.msg[0]);
    /* every prefix of a valid file: refused or loaded, never a crash */
    assert_non_null(tu_tmpdir_make("onnx"));
    nn_model *m = from_spec("conv2d(2,3,relu) maxpool(2) flatten "
                            "dense(4,softmax)", nn_shape3(8, 8, 1), 7);
    assert_int_equal(nn_onnx_save(m, tu_path("m.onnx"), &err), NN_OK);
    static unsigned char buf[1 << 14];
    long n = tu_read("m.onnx", buf, sizeof buf);
    assert_true(n > 100 && n < (long)sizeof buf);
    for (long k = 0; k < n; k += 7) {
        nn_model *r = nn_onnx_load_mem(buf, (size_t)k, NULL, &err);
        if (!r)
            assert_true(err.code != NN_OK && err.msg[0]);
        nn_model_free(r);
    }
    nn_model *r = nn_onnx_load_mem(buf, (size_t)n, NULL, &err);
    assert_non_null(r);
    nn_model_free(r);
    /* a normalisation given twice (the graph's own and the caller's) */
    assert_int_equal(nn_model_set_input_norm(m, 0.5f, 0.5f, &err), NN_OK);
    assert_int_equal(nn_onnx_save(m, tu_path("n.onnx"), &err), NN_OK);
    nn_onnx_options o = nn_onnx_defaults();
    o.mean = 0.1f;
    assert_null(nn_onnx_load(tu_path("n.onnx"), &o, &err));
    if (!strstr(err.msg, "normalises its input itself"))
        fail_msg("%s", err.msg);
    nn_model_free(m);
    tu_tmpdir_remove();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_norm_by_hand),
        cmocka_unit_test(test_norm_gradients),
        cmocka_unit_test(test_norm_in_model_file),
        cmocka_unit_test(test_old_model_files_load),
        cmocka_unit_test(test_onnx_round_trip),
        cmocka_unit_test(test_onnx_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_quant.c - int8 arithmetic by hand (requantization, rounding,
 * saturation, multipliers, averages, softmax), quantization of models with
 * every step kind (every instruction set and thread count giving the same
 * bits, int8 close to float), the exporter's checks and text.
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
#include "nn/plan.h"
#include "nn/quant.h"

static void test_requant_by_hand(void **state)
{
    (void)state;
    const int32_t half = 1 << 30;     /* M 2^30, shift 31: times 1/2 */
    assert_int_equal(nnk_requant(100, half, 31, 0, -128, 127), 50);
    assert_int_equal(nnk_requant(3, half, 31, 0, -128, 127), 2);   /* 1.5 */
    assert_int_equal(nnk_requant(-3, half, 31, 0, -128, 127), -1); /* -1.5 */
    assert_int_equal(nnk_requant(1, half, 31, 0, -128, 127), 1);   /* 0.5 */
    assert_int_equal(nnk_requant(-1, half, 31, 0, -128, 127), 0);  /* -0.5 */
    assert_int_equal(nnk_requant(10, half, 31, -7, -128, 127), -2);
    /* saturation, and relu's clamp at the zero point */
    assert_int_equal(nnk_requant(1000, half, 31, 0, -128, 127), 127);
    assert_int_equal(nnk_requant(-1000, half, 31, 0, -128, 127), -128);
    assert_int_equal(nnk_requant(-40, half, 31, -100, -100, 127), -100);
    /* no int32 overflow on the way: the largest sums */
    assert_int_equal(nnk_requant(INT32_MAX, INT32_MAX, 1, 0, -128, 127),
                     127);
    assert_int_equal(nnk_requant(INT32_MIN, INT32_MAX, 1, 0, -128, 127),
                     -128);
}

static void test_multiplier(void **state)
{
    (void)state;
    int32_t M;
    int8_t n;
    nnq_multiplier(0.5, &M, &n);
    assert_int_equal(M, 1 << 30);
    assert_int_equal(n, 31);
    nnq_multiplier(0.75, &M, &n);
    assert_int_equal(M, 1610612736);   /* 0.75 * 2^31 */
    assert_int_equal(n, 31);
    nnq_multiplier(1.0, &M, &n);
    assert_int_equal(M, 1 << 30);
    assert_int_equal(n, 30);
    const double reals[] = {3.7e-3, 0.0123, 1.99999999, 123.4, 1e-9};
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
        nnq_multiplier(reals[i], &M, &n);
        assert_true(M >= (1 << 30) && n >= 1 && n <= 62);
        double back = ldexp((double)M, -n);
        assert_true(fabs(back - reals[i]) <= reals[i] * ldexp(1, -30));
    }
    nnq_multiplier(1e-15, &M, &n);     /* below 2^-32: fewer bits */
    assert_int_equal(n, 62);
    assert_true(fabs(ldexp((double)M, -62) - 1e-15) < 1e-18);
    nnq_multiplier(0, &M, &n);
    assert_int_equal(M, 0);
}

static void test_average_rounding(void **state)
{
    (void)state;
    assert_int_equal(nnk_avg_i8(5, 4), 1);     /* 1.25 */
    assert_int_equal(nnk_avg_i8(6, 4), 2);     /* 1.5: away from zero */
    assert_int_equal(nnk_avg_i8(-6, 4), -2);
    assert_int_equal(nnk_avg_i8(-5, 4), -1);
    assert_int_equal(nnk_avg_i8(-512, 4), -128);
    assert_int_equal(nnk_avg_i8(508, 4), 127);
}

static void test_softmax_table(void **state)
{
    (void)state;
    uint32_t e[256];
    for (int d = 0; d < 256; d++)
        e[d] = (uint32_t)nearbyint(ldexp(1, 20) * exp(-0.1 * d));
    int8_t x[4] = {5, 5, 5, 5}, y[4];
    float p[4];
    nnk_softmax_i8(x, 1, 4, e, p, y);
    for (int j = 0; j < 4; j++) {
        assert_true(p[j] == 0.25f);            /* exact */
        assert_int_equal(y[j], 64 - 128);      /* 0.25 * 256 - 128 */
    }
    int8_t z[3] = {-128, 127, 117};            /* d = 255, 0, 10 */
    nnk_softmax_i8(z, 1, 3, e, p, NULL);
    double s = 1 + exp(-1.0) + exp(-25.5);
    assert_float_equal(p[1], 1 / s, 1e-6);
    assert_float_equal(p[2], exp(-1.0) / s, 1e-6);
    assert_int_equal(nnk_argmax_i8(z, 3), 1);
    int8_t tie[3] = {4, 9, 9};
    assert_int_equal(nnk_argmax_i8(tie, 3), 1);
}

/* A model with every step kind, random weights, and random "images". */
static nn_model *zoo(const char *spec, nn_shape in)
{
    nn_error err;
    nn_model *m = nn_model_from_spec(spec, in, 10, NULL, &err);
    assert_non_null(m);
    nn_rng r;
    nn_rng_seed(&r, 7);
    assert_int_equal(nn_model_init(m, &r, &err), NN_OK);
    /* batch normalization statistics and biases away from their defaults */
    float *p = nn_model_params(m);
    size_t off = 0;
    for (int i = 0; i < nn_model_layer_count(m); i++) {
        size_t np = nn_model_layer_param_count(m, i);
        if (nn_model_layer(m, i).kind == NN_LAYER_BATCHNORM) {
            size_t C = np / 4;
            for (size_t c = 0; c < C; c++) {
                p[off + c] = 0.5f + nn_rng_uniform(&r);            /* gamma */
                p[off + C + c] = nn_rng_uniform(&r) - 0.5f;        /* beta */
                p[off + 2 * C + c] = nn_rng_uniform(&r) - 0.5f;    /* mean */
                p[off + 3 * C + c] = 0.5f + nn_rng_uniform(&r);    /* var */
            }
        }
        off += np;
    }
    return m;
}

static uint8_t *random_images(size_t n, size_t size)
{
    uint8_t *x = malloc(n * size);
    assert_non_null(x);
    nn_rng r;
    nn_rng_seed(&r, 11);
    for (size_t i = 0; i < n * size; i++)
        x[i] = (uint8_t)(nn_rng_u32(&r) >> 24);
    return x;
}

static const char *const zoo_specs[] = {
    "conv2d(4,3,tanh,stride=2,padding=same) batchnorm avgpool(2) "
    "conv2d(6,3,padding=same) batchnorm maxpool(2,stride=1) "
    "conv2d(5,2,sigmoid) maxpool(2) flatten dropout(0.3) dense(16,relu) "
    "dense(12) batchnorm dense(10,softmax)",
    /* pools on their own, BN that cannot fold, a linear output */
    "maxpool(2) conv2d(3,3,relu) batchnorm avgpool(3,stride=2) flatten "
    "dense(20,tanh) dense(10)",
    "conv2d(8,5,softmax,padding=same) conv2d(20,3,relu,stride=3) flatten "
    "dense(40,relu) dense(10,sigmoid)",
    /* GlobalAveragePooling2D and LeakyReLU */
    "conv2d(12,3) leakyrelu(0.2) conv2d(16,3,relu,padding=same) gap "
    "dense(24) leakyrelu dense(10,softmax)",
};

static void test_isas_and_threads_agree(void **state)
{
    (void)state;
    const size_t n = 70, K = 10;   /* 70: a chunk and a part */
    nn_shape in = nn_shape3(28, 28, 1);
    uint8_t *x = random_images(n, 784);
    nn_dataset calib = {.n = n, .shape = in, .x_u8 = x, .scale = 1 / 255.f};
    for (size_t s = 0; s < sizeof zoo_specs / sizeof *zoo_specs; s++) {
        nn_model *m = zoo(zoo_specs[s], in);
        nn_error err;
        nn_qmodel *q = nn_model_quantize(m, &calib, n, &err);
        assert_non_null(q);
        float *ref = malloc(sizeof(float) * n * K), *got = malloc(
            sizeof(float) * n * K), *fl = malloc(sizeof(float) * n * K);
        int cref[70], cgot[70];
        assert_int_equal(nn_qmodel_set_isa(q, NN_QISA_PORTABLE, &err), NN_OK);
        nn_set_threads(1);
        assert_int_equal(nn_qmodel_predict(q, x, n, ref, cref, &err), NN_OK);
        int tried = 0;
        for (int isa = 0; isa <= NN_QISA_AVX_VNNI; isa++) {
            if (!nn_qisa_supported((nn_qisa)isa)) {
                assert_int_equal(nn_qmodel_set_isa(q, (nn_qisa)isa, &err),
                                 NN_ERR_ARG);
                continue;
            }
            assert_int_equal(nn_qmodel_set_isa(q, (nn_qisa)isa, &err), NN_OK);
            for (int t = 1; t <= 2; t++) {
                nn_set_threads(t);
                memset(got, 0, sizeof(float) * n * K);
                assert_int_equal(nn_qmodel_predict(q, x, n, got, cgot, &err),
                                 NN_OK);
                assert_memory_equal(got, ref, sizeof(float) * n * K);
                assert_memory_equal(cgot, cref, sizeof cref);
                tried++;
            }
        }
        assert_true(tried >= 2);
        nn_set_threads(0);
        /* int8 follows float: scores close, classes mostly the same */
        float *xf = malloc(sizeof(float) * n * 784);
        for (size_t i = 0; i < n * 784; i++)
            xf[i] = x[i] / 255.0f;
        assert_int_equal(nn_model_predict(m, xf, n, fl, &err), NN_OK);
        double maxd = 0, range = 0;
        size_t same = 0;
        for (size_t b = 0; b < n; b++) {
            int best = 0;
            for (size_t j = 0; j < K; j++) {
                double d = fabs(fl[b * K + j] - ref[b * K + j]);
                maxd = d > maxd ? d : maxd;
                range = fabs(fl[b * K + j]) > range ? fabs(fl[b * K + j])
                                                    : range;
                best = fl[b * K + j] > fl[b * K + best] ? (int)j : best;
            }
            same += best == cref[b];
        }
        assert_true(maxd <= 0.1 * (range > 1 ? range : 1));
        assert_true(same >= n * 8 / 10);
        /* the exported text states the interface */
        nn_export_c ex;
        assert_int_equal(nn_model_export_c(m, q, "zoo_1", "test", &ex, &err),
                         NN_OK);
        assert_non_null(strstr(ex.header, "#define ZOO_1_OUTPUTS      10\n"));
        assert_non_null(strstr(ex.header, "int zoo_1_predict(const uint8_t "
                                          "*pixels, void *scratch, float "
                                          "*scores);"));
        assert_null(strstr(ex.source, "#include <math.h>"));
        assert_true(ex.scratch_bytes % 16 == 0 && ex.scratch_bytes > 0);
        nn_export_c_free(&ex);
        assert_int_equal(nn_model_export_c(m, NULL, "zoo_1", NULL, &ex, &err),
                         NN_OK);
        assert_non_null(strstr(ex.source, "#include <math.h>"));
        nn_export_c_free(&ex);
        free(xf), free(ref), free(got), free(fl);
        nn_qmodel_free(q);
        nn_model_free(m);
    }
    free(x);
}

static void test_quantize_errors(void **state)
{
    (void)state;
    nn_shape in = nn_shape3(28, 28, 1);
    nn_model *m = zoo("dense(8,relu) dense(10,softmax)", in);
    uint8_t *x = random_images(4, 784);
    nn_dataset calib = {.n = 4, .shape = in, .x_u8 = x, .scale = 1 / 255.f};
    nn_error err;
    assert_null(nn_model_quantize(m, &calib, 0, &err));
    assert_int_equal(err.code, NN_ERR_ARG);
    /* NULL arguments: NN_ERR_ARG, never a crash */
    assert_null(nn_model_quantize(NULL, &calib, 1, &err));
    assert_int_equal(err.code, NN_ERR_ARG);
    assert_null(nn_model_quantize(m, NULL, 1, &err));
    float sc[10];
    assert_int_equal(nn_qmodel_predict(NULL, x, 1, sc, NULL, &err),
                     NN_ERR_ARG);
    assert_int_equal(nn_qmodel_evaluate(NULL, &calib, NULL, NULL, &err),
                     NN_ERR_ARG);
    assert_int_equal(nn_qmodel_set_isa(NULL, NN_QISA_PORTABLE, &err),
                     NN_ERR_ARG);
    assert_int_equal(nn_qmodel_isa(NULL), NN_QISA_PORTABLE);
    nn_export_c ex;
    assert_int_equal(nn_model_export_c(NULL, NULL, "m", NULL, &ex, &err),
                     NN_ERR_ARG);
    assert_int_equal(nn_model_export_c(m, NULL, "m", NULL, NULL, &err),
                     NN_ERR_ARG);
    nn_qmodel_free(NULL);
    nn_export_c_free(NULL);
    assert_null(nn_model_quantize(m, &calib, 5, &err));
    assert_int_equal(err.code, NN_ERR_ARG);
    nn_dataset wrong = calib;
    wrong.shape = nn_shape3(14, 14, 1);
    assert_null(nn_model_quantize(m, &wrong, 1, &err));
    assert_int_equal(err.code, NN_ERR_SHAPE);
    nn_model_free(m);
    /* more inputs to one output than int32 sums allow */
    nn_shape wide = nn_shape1(NN_QUANT_MAX_TAPS + 1);
    m = zoo("dense(2,softmax)", wide);
    uint8_t *w = calloc(NN_QUANT_MAX_TAPS + 1, 1);
    nn_dataset cw = {.n = 1, .shape = wide, .x_u8 = w, .scale = 1 / 255.f};
    assert_null(nn_model_quantize(m, &cw, 1, &err));
    assert_int_equal(err.code, NN_ERR_LIMIT);
    nn_model_free(m);
    free(w);
    free(x);
}

static void test_export_checks(void **state)
{
    (void)state;
    nn_model *m = zoo("dense(8,relu) dense(10,softmax)", nn_shape1(20));
    nn_export_c ex;
    nn_error err;
    char longname[NN_EXPORT_MAX_NAME + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *bad[] = {"", "1abc", "a-b", "int", "a b", "\xc3\xa9t\xc3\xa9",
                         longname};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_false(nn_export_name_ok(bad[i]));
        assert_int_equal(nn_model_export_c(m, NULL, bad[i], NULL, &ex, &err),
                         NN_ERR_ARG);
        assert_null(ex.header);
    }
    assert_true(nn_export_name_ok("_digit_9"));
    nn_model_free(m);
    m = zoo("dense(4200,relu) dense(10,softmax)", nn_shape1(1000));
    assert_int_equal(nn_model_export_c(m, NULL, "big", NULL, &ex, &err),
                     NN_ERR_LIMIT);
    nn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requant_by_hand),
        cmocka_unit_test(test_multiplier),
        cmocka_unit_test(test_average_rounding),
        cmocka_unit_test(test_softmax_table),
        cmocka_unit_test(test_isas_and_threads_agree),
        cmocka_unit_test(test_quantize_errors),
        cmocka_unit_test(test_export_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

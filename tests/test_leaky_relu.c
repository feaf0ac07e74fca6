/*
 * test_leaky_relu.c - LeakyReLU(alpha): values by hand, Keras' default
 * alpha, gradients against central differences (the layer alone and in a
 * compiled model), bad alphas, spec names, the summary row and a
 * model-file round trip that keeps alpha.
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
#include "util/tmpdir.h"

static void test_leaky_values(void **state)
{
    (void)state;
    const float x[6] = {-2.0f, -0.5f, 0.0f, 0.25f, 1.0f, 3.0f};
    nn_model *m = one_layer(nn_shape1(3), nn_leaky_relu(0.25f), 2, 1);
    nn_layer *l = &m->layers[0];
    assert_int_equal(l->out.dim[0], 3);
    assert_int_equal(l->n_params, 0);
    float y[6], dy[6] = {1, 2, 3, 4, 5, 6}, dx[6];
    l->ops->forward(l, x, y, 2, true);
    const float want[6] = {-0.5f, -0.125f, 0.0f, 0.25f, 1.0f, 3.0f};
    assert_memory_equal(y, want, sizeof y);
    l->ops->backward(l, x, y, dy, dx, 2);
    const float dwant[6] = {0.25f, 0.5f, 0.75f, 4, 5, 6};
    assert_memory_equal(dx, dwant, sizeof dx);
    nn_model_free(m);
    /* Keras' default alpha */
    nn_error e;
    m = nn_model_from_spec("leakyrelu", nn_shape1(4), 2, NULL, &e);
    assert_non_null(m);
    assert_true(nn_model_layer(m, 0).rate == 0.3f);
    nn_model_free(m);
}

static void test_leaky_gradients(void **state)
{
    (void)state;
    enum { B = 4 };
    nn_model *m = one_layer(nn_shape3(3, 3, 2), nn_leaky_relu(0.2f), B, 1);
    float x[B * 18];
    fill_uniform(x, sizeof x / sizeof *x, -1.0f, 1.0f, 2);
    check_layer_grads(m, x, B, true);
    nn_model_free(m);

    nn_error e;
    m = nn_model_from_spec("dense(8) leakyrelu(0.1) dense(3,softmax)",
                           nn_shape1(5), 3, NULL, &e);
    assert_non_null(m);
    nn_rng r;
    nn_rng_seed(&r, 3);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_compile(m,
                         NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, nn_adam(),
                         &e), NN_OK);
    float xi[6 * 5];
    const uint8_t lab[6] = {0, 1, 2, 1, 0, 2};
    fill_uniform(xi, sizeof xi / sizeof *xi, -1.0f, 1.0f, 4);
    check_model_grads(m, xi, lab, 6);
    nn_model_free(m);
}

static void test_leaky_spec_summary_file(void **state)
{
    (void)state;
    nn_error e;
    nn_model *m = nn_model_new(nn_shape1(4));
    assert_int_equal(nn_model_add(m, nn_leaky_relu(1.0f), &e), NN_ERR_ARG);
    assert_int_equal(nn_model_add(m, nn_leaky_relu(-0.1f), &e), NN_ERR_ARG);
    nn_model_free(m);
    assert_null(nn_model_from_spec("leakyrelu(1.5)", nn_shape1(4), 2, NULL,
                                   &e));
    const char *names[] = {"leakyrelu(0.2)", "leaky_relu(0.2)",
                           "leaky_re_lu(0.2)"};
    for (int i = 0; i < 3; i++) {
        m = nn_model_from_spec(names[i], nn_shape1(4), 2, NULL, &e);
        if (!m)
            fail_msg("%s: %s", names[i], e.msg);
        assert_int_equal(nn_model_layer(m, 0).kind, NN_LAYER_LEAKY_RELU);
        assert_true(nn_model_layer(m, 0).rate == 0.2f);
        nn_model_free(m);
    }

    m = nn_model_from_spec("dense(6) leakyrelu(0.2) dense(2,softmax)",
                           nn_shape1(4), 2, NULL, &e);
    assert_non_null(m);
    char buf[2048];
    nn_model_summary(m, buf, sizeof buf);
    assert_non_null(strstr(buf, "leaky_re_lu (LeakyReLU)"));
    nn_rng r;
    nn_rng_seed(&r, 5);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY,
                                      nn_adam(), &e), NN_OK);
    assert_non_null(tu_tmpdir_make("leaky"));
    assert_int_equal(nn_model_save(m, tu_path("l.nn"), false, &e), NN_OK);
    nn_model *l = nn_model_load(tu_path("l.nn"), &e);
    if (!l)
        fail_msg("load: %s", e.msg);
    assert_int_equal(nn_model_layer(l, 1).kind, NN_LAYER_LEAKY_RELU);
    assert_true(nn_model_layer(l, 1).rate == 0.2f);
    float x[3 * 4], y0[6], y1[6];
    fill_uniform(x, 12, -1.0f, 1.0f, 6);
    assert_int_equal(nn_model_predict(m, x, 3, y0, &e), NN_OK);
    assert_int_equal(nn_model_predict(l, x, 3, y1, &e), NN_OK);
    assert_memory_equal(y0, y1, sizeof y0);
    nn_model_free(l);
    nn_model_free(m);
    tu_tmpdir_remove();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaky_values),
        cmocka_unit_test(test_leaky_gradients),
        cmocka_unit_test(test_leaky_spec_summary_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

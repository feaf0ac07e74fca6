/*
 * test_gap.c - GlobalAveragePooling2D: values by hand, gradients against
 * central differences (the layer alone and in a small compiled model),
 * shape errors, spec names, the summary row and a model-file round trip.
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

static void test_gap_values(void **state)
{
    (void)state;
    /* x (1, 2, 2, 2): channel 0 = 1, 2, 3, 4; channel 1 = -1, 0, 5, 8 */
    const float x[8] = {1, -1, 2, 0, 3, 5, 4, 8};
    nn_model *m = one_layer(nn_shape3(2, 2, 2), nn_global_avgpool2d(), 1, 1);
    nn_layer *l = &m->layers[0];
    assert_int_equal(l->out.rank, 1);
    assert_int_equal(l->out.dim[0], 2);
    assert_int_equal(l->n_params, 0);
    float y[2], dy[2] = {4.0f, -8.0f}, dx[8];
    l->ops->forward(l, x, y, 1, false);
    assert_true(y[0] == 2.5f);
    assert_true(y[1] == 3.0f);
    l->ops->backward(l, x, y, dy, dx, 1);
    for (int i = 0; i < 8; i++)
        assert_true(dx[i] == (i % 2 ? -2.0f : 1.0f));
    nn_model_free(m);
}

static void test_gap_gradients(void **state)
{
    (void)state;
    enum { B = 3 };
    nn_model *m = one_layer(nn_shape3(5, 4, 3), nn_global_avgpool2d(), B, 1);
    float x[B * 5 * 4 * 3];
    fill_uniform(x, sizeof x / sizeof *x, -1.0f, 1.0f, 2);
    check_layer_grads(m, x, B, true);
    nn_model_free(m);

    /* conv -> gap -> softmax: every parameter through the pooled path */
    nn_error e;
    m = nn_model_from_spec("conv2d(4,3,tanh) gap dense(3,softmax)",
                           nn_shape3(6, 6, 1), 3, NULL, &e);
    assert_non_null(m);
    nn_rng r;
    nn_rng_seed(&r, 3);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_compile(m,
                         NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, nn_adam(),
                         &e), NN_OK);
    float xi[4 * 36];
    const uint8_t lab[4] = {0, 1, 2, 1};
    fill_uniform(xi, sizeof xi / sizeof *xi, 0.0f, 1.0f, 4);
    check_model_grads(m, xi, lab, 4);
    nn_model_free(m);
}

static void test_gap_spec_summary_file(void **state)
{
    (void)state;
    nn_error e;
    /* needs an image */
    nn_model *m = nn_model_new(nn_shape1(10));
    assert_int_equal(nn_model_add(m, nn_global_avgpool2d(), &e),
                     NN_ERR_SHAPE);
    nn_model_free(m);
    /* every spec name; arguments refused */
    const char *names[] = {"gap", "globalavgpool2d",
                           "global_average_pooling2d"};
    for (int i = 0; i < 3; i++) {
        char spec[96];
        snprintf(spec, sizeof spec, "conv2d(2,3) %s dense(2,softmax)",
                 names[i]);
        m = nn_model_from_spec(spec, nn_shape3(5, 5, 1), 2, NULL, &e);
        if (!m)
            fail_msg("%s: %s", spec, e.msg);
        assert_int_equal(nn_model_layer(m, 1).kind,
                         NN_LAYER_GLOBAL_AVGPOOL2D);
        nn_model_free(m);
    }
    assert_null(nn_model_from_spec("gap(2)", nn_shape3(5, 5, 1), 2, NULL,
                                   &e));
    assert_null(nn_model_from_spec("bogus", nn_shape3(5, 5, 1), 2, NULL,
                                   &e));
    assert_non_null(strstr(e.msg, "globalavgpool2d"));   /* known layers */
    assert_string_equal(nn_layer_kind_name(NN_LAYER_GLOBAL_AVGPOOL2D),
                        "global_average_pooling2d");

    m = nn_model_from_spec("conv2d(3,3,relu) gap dense(2,softmax)",
                           nn_shape3(6, 6, 1), 2, NULL, &e);
    assert_non_null(m);
    char buf[2048];
    nn_model_summary(m, buf, sizeof buf);
    assert_non_null(strstr(buf, "global_average_pooling2d "
                                "(GlobalAveragePooling2D)"));
    assert_non_null(strstr(buf, "(None, 3)"));
    nn_rng r;
    nn_rng_seed(&r, 5);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY,
                                      nn_adam(), &e), NN_OK);
    assert_non_null(tu_tmpdir_make("gap"));
    assert_int_equal(nn_model_save(m, tu_path("g.nn"), false, &e), NN_OK);
    nn_model *l = nn_model_load(tu_path("g.nn"), &e);
    if (!l)
        fail_msg("load: %s", e.msg);
    assert_int_equal(nn_model_layer(l, 1).kind, NN_LAYER_GLOBAL_AVGPOOL2D);
    float x[2 * 36], y0[4], y1[4];
    fill_uniform(x, 72, 0.0f, 1.0f, 6);
    assert_int_equal(nn_model_predict(m, x, 2, y0, &e), NN_OK);
    assert_int_equal(nn_model_predict(l, x, 2, y1, &e), NN_OK);
    assert_memory_equal(y0, y1, sizeof y0);
    nn_model_free(l);
    nn_model_free(m);
    tu_tmpdir_remove();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gap_values),
        cmocka_unit_test(test_gap_gradients),
        cmocka_unit_test(test_gap_spec_summary_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_nullargs.c - every public function of nn.h that takes pointers
 * either refuses NULL ones with NN_ERR_ARG (or the documented empty
 * result: NULL, 0, false, a zero struct) or says at its declaration which
 * must not be NULL; none crashes. Indexes out of range (nn_model_layer and
 * friends) give the empty result without reading outside the model.
 * Each call below crashed, or read out of bounds, before these checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn.h"

static nn_model *small_model(void)
{
    nn_error err;
    nn_model *m = nn_model_from_spec("dense(4,relu) dense(3,softmax)",
                                     nn_shape1(5), 3, NULL, &err);
    assert_non_null(m);
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    assert_int_equal(nn_model_init(m, &rng, &err), NN_OK);
    assert_int_equal(nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY,
                                      nn_rmsprop(), &err), NN_OK);
    return m;
}

#define EXPECT_ARG(call)                                                    \
    do {                                                                    \
        nn_error e_ = {NN_OK, "untouched"};                                 \
        nn_error *err = &e_;                                                \
        assert_int_equal((call), NN_ERR_ARG);                               \
        assert_int_equal(e_.code, NN_ERR_ARG);                              \
        assert_true(strstr(e_.msg, "NULL") != NULL);                        \
    } while (0)

static void test_model_queries(void **state)
{
    (void)state;
    nn_model *m = small_model();
    nn_layer_spec zero = {0};
    /* NULL model: the empty answer */
    assert_int_equal(nn_model_layer_count(NULL), 0);
    nn_layer_spec sp = nn_model_layer(NULL, 0);
    assert_memory_equal(&sp, &zero, sizeof sp);
    assert_int_equal(nn_model_input_shape(NULL).rank, 0);
    assert_int_equal(nn_model_output_shape(NULL).rank, 0);
    assert_int_equal(nn_model_layer_output_shape(NULL, 0).rank, 0);
    assert_int_equal(nn_model_layer_param_count(NULL, 0), 0);
    assert_int_equal(nn_model_param_count(NULL), 0);
    assert_null(nn_model_params(NULL));
    assert_null(nn_model_grads(NULL));
    assert_int_equal(nn_model_loss(NULL), 0);
    assert_int_equal(nn_model_optimizer(NULL).kind, 0);
    assert_false(nn_model_fit_position(NULL, NULL, NULL));
    /* indexes out of range: the empty answer, nothing read outside */
    for (int i = -3; i <= 5; i += 1) {
        if (i == 0 || i == 1)
            continue;
        sp = nn_model_layer(m, i);
        assert_memory_equal(&sp, &zero, sizeof sp);
        assert_int_equal(nn_model_layer_output_shape(m, i).rank, 0);
        assert_int_equal(nn_model_layer_param_count(m, i), 0);
    }
    sp = nn_model_layer(m, 1);
    assert_int_equal(sp.kind, NN_LAYER_DENSE);
    assert_int_equal(sp.units, 3);
    /* summary of nothing, or into no buffer */
    char buf[16] = "x";
    assert_int_equal(nn_model_summary(NULL, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    assert_true(nn_model_summary(m, NULL, 100) > 0);
    nn_model_free(m);
    nn_model_free(NULL);
}

static void test_model_calls(void **state)
{
    (void)state;
    nn_model *m = small_model();
    float x[5] = {0}, y[3];
    nn_rng rng;
    nn_rng_seed(&rng, 2);
    nn_eval ev;
    uint8_t lab[1] = {1};
    nn_dataset d = {.n = 1, .shape = nn_shape1(5), .x_f32 = x,
                    .labels = lab, .num_classes = 3};
    nn_fit_options fo = nn_fit_defaults();
    nn_batch b = {.x = x, .labels = lab, .size = 1, .apply = true};

    EXPECT_ARG(nn_model_add(NULL, nn_dense(3, NN_ACT_RELU), err));
    EXPECT_ARG(nn_model_init(NULL, &rng, err));
    EXPECT_ARG(nn_model_init(m, NULL, err));
    EXPECT_ARG(nn_model_compile(NULL, NN_LOSS_MSE, nn_adam(), err));
    EXPECT_ARG(nn_model_predict(NULL, x, 1, y, err));
    EXPECT_ARG(nn_model_predict(m, NULL, 1, y, err));
    EXPECT_ARG(nn_model_predict(m, x, 1, NULL, err));
    EXPECT_ARG(nn_model_predict_dataset(NULL, &d, y, err));
    EXPECT_ARG(nn_model_predict_dataset(m, NULL, y, err));
    EXPECT_ARG(nn_model_predict_dataset(m, &d, NULL, err));
    EXPECT_ARG(nn_model_evaluate(NULL, &d, &ev, NULL, err));
    EXPECT_ARG(nn_model_evaluate(m, NULL, &ev, NULL, err));
    EXPECT_ARG(nn_model_evaluate(m, &d, NULL, NULL, err));
    EXPECT_ARG(nn_model_fit(NULL, &d, &fo, NULL, err));
    EXPECT_ARG(nn_model_fit(m, NULL, &fo, NULL, err));
    EXPECT_ARG(nn_model_train_batch(NULL, &b, NULL, err));
    EXPECT_ARG(nn_model_train_batch(m, NULL, NULL, err));
    EXPECT_ARG(nn_model_save(NULL, "/tmp/never-written.nn", false, err));
    EXPECT_ARG(nn_model_save(m, NULL, false, err));
    /* predicting nothing needs no buffers */
    assert_int_equal(nn_model_predict(m, NULL, 0, NULL, NULL), NN_OK);
    /* err may always be NULL */
    assert_int_equal(nn_model_predict(NULL, x, 1, y, NULL), NN_ERR_ARG);

    nn_error e;
    assert_null(nn_model_load(NULL, &e));
    assert_int_equal(e.code, NN_ERR_ARG);
    assert_null(nn_model_load_mem(NULL, 10, &e));
    assert_int_equal(e.code, NN_ERR_ARG);
    assert_null(nn_model_from_spec(NULL, nn_shape1(5), 3, NULL, &e));
    assert_int_equal(e.code, NN_ERR_ARG);
    assert_null(nn_model_create(nn_shape1(0), &e));
    /* an unknown layer kind is named by its number, not '?' */
    nn_layer_spec bad = {.kind = (nn_layer_kind)99};
    nn_model *m2 = nn_model_new(nn_shape1(5));
    assert_int_equal(nn_model_add(m2, bad, &e), NN_ERR_ARG);
    assert_non_null(strstr(e.msg, "99"));
    assert_null(strchr(e.msg, '?'));
    nn_model_free(m2);
    /* so is an unknown optimizer kind */
    nn_optimizer bad_opt = nn_adam();
    bad_opt.kind = (nn_optimizer_kind)77;
    assert_int_equal(nn_model_compile(m, NN_LOSS_MSE, bad_opt, &e),
                     NN_ERR_ARG);
    assert_non_null(strstr(e.msg, "77"));
    assert_null(strchr(e.msg, '?'));
    nn_model_free(m);
}

static void test_data_and_files(void **state)
{
    (void)state;
    nn_idx idx;
    nn_dataset d;
    nn_image img;
    void *data;
    size_t size;
    uint32_t dim[1] = {1};
    uint8_t byte = 0;
    EXPECT_ARG(nn_idx_load(NULL, &idx, err));
    EXPECT_ARG(nn_idx_load("x", NULL, err));
    EXPECT_ARG(nn_idx_load_mem(&byte, 1, "x", NULL, err));
    EXPECT_ARG(nn_idx_load_mem(NULL, 1, "x", &idx, err));
    EXPECT_ARG(nn_idx_load_pair(NULL, "l", 0, &d, err));
    EXPECT_ARG(nn_idx_load_pair("i", NULL, 0, &d, err));
    EXPECT_ARG(nn_idx_load_pair("i", "l", 0, NULL, err));
    EXPECT_ARG(nn_idx_open_pair(NULL, "l", 0, &d, err));
    EXPECT_ARG(nn_idx_open_pair("i", NULL, 0, &d, err));
    EXPECT_ARG(nn_idx_open_pair("i", "l", 0, NULL, err));
    EXPECT_ARG(nn_idx_save(NULL, 1, dim, &byte, err));
    EXPECT_ARG(nn_idx_save("/tmp/never-written.idx", 1, NULL, &byte, err));
    EXPECT_ARG(nn_idx_save("/tmp/never-written.idx", 1, dim, NULL, err));
    EXPECT_ARG(nn_image_load(NULL, &img, err));
    EXPECT_ARG(nn_image_load("x.png", NULL, err));
    EXPECT_ARG(nn_image_load_mem(&byte, 1, "x", NULL, err));
    EXPECT_ARG(nn_write_file_atomic(NULL, &byte, 1, err));
    EXPECT_ARG(nn_write_file_atomic("/tmp/never-written", NULL, 1, err));
    EXPECT_ARG(nn_read_file(NULL, 10, &data, &size, err));
    EXPECT_ARG(nn_read_file("/etc/hostname", 10, NULL, &size, err));
    EXPECT_ARG(nn_read_file("/etc/hostname", 10, &data, NULL, err));
    EXPECT_ARG(nn_read_stream(NULL, "x", 10, 0, &data, &size, err));
    EXPECT_ARG(nn_read_stream(stdin, "x", 10, 0, NULL, &size, err));
    EXPECT_ARG(nn_preprocess_digit(NULL, NULL, &byte, NULL, err));
    nn_idx_free(NULL);
    nn_dataset_free(NULL);
    nn_image_free(NULL);
    nn_history_free(NULL);
    nn_dataset s = nn_dataset_slice(NULL, 0, 1);
    assert_int_equal(s.n, 0);
    assert_int_equal(nn_dataset_target_width(NULL), 0);
    /* parsers: NULL name or result is "not parsed" */
    nn_activation a;
    nn_optimizer o;
    nn_loss l;
    assert_false(nn_activation_parse(NULL, &a));
    assert_false(nn_activation_parse("relu", NULL));
    assert_false(nn_optimizer_parse(NULL, &o));
    assert_false(nn_optimizer_parse("adam", NULL));
    assert_false(nn_loss_parse(NULL, &l));
    assert_false(nn_loss_parse("mse", NULL));
    assert_int_equal(nn_argmax(NULL, 5), 0);
    nn_confusion_accuracy(NULL, 3, NULL);
    assert_null(nn_preprocess_not_digit(NULL));
    /* names of unknown values are never NULL */
    assert_non_null(nn_layer_kind_name((nn_layer_kind)99));
    assert_non_null(nn_activation_name((nn_activation)99));
    assert_non_null(nn_optimizer_name((nn_optimizer_kind)99));
    assert_non_null(nn_loss_name((nn_loss)99));
    assert_non_null(nn_status_str((nn_status)99));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_queries),
        cmocka_unit_test(test_model_calls),
        cmocka_unit_test(test_data_and_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

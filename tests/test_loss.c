/*
 * test_loss.c - cross-entropy as Keras computes it: probabilities clipped
 * to [eps, 1 - eps] before the log, eps = 1e-7 (in float32, so 1 - eps is
 * 1 - 2^-23), on an over-confident model whose softmax saturates to
 * exactly 1 and 0. Values worked by hand:
 *   right and sure:  p_y = 1 -> clip 1 - 2^-23 -> -ln(1 - 2^-23)
 *                    = 1.1920929665620916e-07   (unclipped above: 0)
 *   wrong and sure:  p_y = 4e-18 -> clip 1e-7f -> -ln(1.00000001e-07)
 *                    = 16.118095639272223
 * The fused softmax + cross-entropy gradient stays (p - t) / B, the
 * gradient of the unclipped loss.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nn.h"

#define RIGHT_SURE 1.1920929665620916e-07   /* -ln(1 - 2^-23) */
#define WRONG_SURE 16.118095639272223       /* -ln((float)1e-7) */

/* One input, x = 1, into dense(3, softmax) with kernel (1, 3) = logits and
 * bias 0, so every sample's pre-activation is `logits`. */
static nn_model *fixed_softmax(nn_loss loss, const float logits[3])
{
    nn_error err;
    nn_model *m = nn_model_new(nn_shape1(1));
    assert_non_null(m);
    assert_int_equal(nn_model_add(m, nn_dense(3, NN_ACT_SOFTMAX), &err),
                     NN_OK);
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    assert_int_equal(nn_model_init(m, &rng, &err), NN_OK);
    assert_int_equal(nn_model_param_count(m), 6);
    float *p = nn_model_params(m);
    for (int j = 0; j < 3; j++) {
        p[j] = logits[j];
        p[3 + j] = 0.0f;
    }
    assert_int_equal(nn_model_compile(m, loss, nn_sgd(0.1f, 0, false), &err),
                     NN_OK);
    return m;
}

static const float sure[3] = {40.0f, 0.0f, 0.0f};   /* p = (1, 4e-18, ..) */

/* The batch's mean loss (gradients only, no update); *correct if not
 * NULL. */
static double batch_loss(nn_model *m, const float *x, const uint8_t *labels,
                         const float *targets, int B, int *correct)
{
    nn_error err;
    nn_batch_result r;
    const nn_batch b = {.x = x, .labels = labels, .targets = targets,
                        .size = B};
    assert_int_equal(nn_model_train_batch(m, &b, &r, &err), NN_OK);
    if (correct)
        *correct = r.correct;
    return r.loss;
}

static void test_sparse_overconfident(void **state)
{
    (void)state;
    nn_model *m = fixed_softmax(NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                sure);
    const float x[2] = {1.0f, 1.0f};
    float p[6];
    nn_error err;
    assert_int_equal(nn_model_predict(m, x, 2, p, &err), NN_OK);
    assert_true(p[0] == 1.0f);    /* saturated: the case the clip is for */
    assert_true(p[1] < 1e-17f && p[1] > 0.0f);

    double loss;
    int correct;
    const uint8_t right[1] = {0}, wrong[1] = {1}, both[2] = {0, 1};
    loss = batch_loss(m, x, right, NULL, 1, &correct);
    assert_float_equal(loss, RIGHT_SURE, 1e-13);
    assert_int_equal(correct, 1);
    loss = batch_loss(m, x, wrong, NULL, 1, &correct);
    assert_float_equal(loss, WRONG_SURE, 1e-9);
    assert_int_equal(correct, 0);
    loss = batch_loss(m, x, both, NULL, 2, &correct);
    assert_float_equal(loss, (RIGHT_SURE + WRONG_SURE) / 2, 1e-9);
    assert_int_equal(correct, 1);
    /* the fused gradient: bias gradient = mean over the batch of p - t =
     * ((0, 0, 0) + (1, -1, 0)) / 2; the kernel's the same (x = 1) */
    const float *g = nn_model_grads(m);
    const float want[3] = {0.5f, -0.5f, 0.0f};
    for (int j = 0; j < 3; j++) {
        assert_float_equal(g[j], want[j], 1e-7);
        assert_float_equal(g[3 + j], want[j], 1e-7);
    }

    /* evaluate reports the same clipped loss */
    nn_dataset d = {.n = 2, .shape = nn_shape1(1), .x_f32 = x, .scale = 1,
                    .labels = both, .num_classes = 3};
    nn_eval ev;
    assert_int_equal(nn_model_evaluate(m, &d, &ev, NULL, &err), NN_OK);
    assert_float_equal(ev.loss, (RIGHT_SURE + WRONG_SURE) / 2, 1e-9);
    assert_float_equal(ev.accuracy, 0.5, 1e-12);
    nn_model_free(m);
}

static void test_categorical_overconfident(void **state)
{
    (void)state;
    nn_model *m = fixed_softmax(NN_LOSS_CATEGORICAL_CROSSENTROPY, sure);
    const float x[1] = {1.0f};
    /* soft target: -(0.25 ln(1 - 2^-23) + 0.75 ln(1e-7f) + 0) */
    const float t[3] = {0.25f, 0.75f, 0.0f};
    double loss = batch_loss(m, x, NULL, t, 1, NULL);
    assert_float_equal(loss, 0.25 * RIGHT_SURE + 0.75 * WRONG_SURE, 1e-9);
    assert_float_equal(loss, 12.08857175925649, 1e-9);
    const float *g = nn_model_grads(m);   /* p - t = (0.75, -0.75, 0) */
    assert_float_equal(g[3], 0.75f, 1e-7);
    assert_float_equal(g[4], -0.75f, 1e-7);
    assert_float_equal(g[5], 0.0f, 1e-7);
    nn_model_free(m);
}

/* Away from 0 and 1 the clip changes nothing: uniform p, loss ln 3. */
static void test_unclipped_middle(void **state)
{
    (void)state;
    const float flat[3] = {0.0f, 0.0f, 0.0f};
    nn_model *m = fixed_softmax(NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                flat);
    const float x[1] = {1.0f};
    const uint8_t y[1] = {2};
    double loss = batch_loss(m, x, y, NULL, 1, NULL);
    assert_float_equal(loss, log(3.0), 1e-6);
    nn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse_overconfident),
        cmocka_unit_test(test_categorical_overconfident),
        cmocka_unit_test(test_unclipped_middle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

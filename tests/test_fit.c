/*
 * test_fit.c - fit's schedule, early stopping and checkpoints: the
 * learning-rate decay against steps taken by hand, early stopping keeping
 * the best epoch's weights, and a run stopped at any step, saved, loaded
 * and resumed giving the same weights bit for bit as one never stopped.
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
#include "util/tmpdir.h"

/* A small data set: N images 8x8x1 of three classes, each a bright bar in
 * a class-specific place plus noise. */
enum { N = 96, SIDE = 8 };
static uint8_t images[N * SIDE * SIDE], labels[N], wrong[N];

static void make_data(void)
{
    nn_rng r;
    nn_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) {
        int c = i % 3;
        labels[i] = (uint8_t)c;
        wrong[i] = (uint8_t)((c + 1) % 3);
        for (int p = 0; p < SIDE * SIDE; p++) {
            int row = p / SIDE;
            int on = row >= 2 * c + 1 && row <= 2 * c + 2;
            images[i * SIDE * SIDE + p] =
                (uint8_t)(on ? 200 + nn_rng_below(&r, 56)
                             : nn_rng_below(&r, 60));
        }
    }
}

static nn_dataset data(const uint8_t *lab)
{
    return (nn_dataset){.n = N, .shape = nn_shape3(SIDE, SIDE, 1),
                        .x_u8 = images, .scale = 1.0f / 255.0f,
                        .labels = lab, .num_classes = 3};
}

static nn_model *model(const char *spec, nn_optimizer opt)
{
    nn_error e;
    nn_model *m = nn_model_from_spec(spec, nn_shape3(SIDE, SIDE, 1), 3,
                                     NULL, &e);
    if (!m)
        fail_msg("spec: %s", e.msg);
    nn_rng r;
    nn_rng_seed(&r, 3);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_compile(m, NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                      opt, &e), NN_OK);
    return m;
}

static void expect_same_params(nn_model *a, nn_model *b)
{
    size_t n = nn_model_param_count(a);
    assert_int_equal(n, nn_model_param_count(b));
    if (memcmp(nn_model_params(a), nn_model_params(b), n * sizeof(float)))
        fail_msg("parameters differ");
}

/* ------------------------------------------------------- lr schedule */

/* The training images as floats (pixel / 255), as fit feeds them. */
static const float *float_images(void)
{
    static float x[N * SIDE * SIDE];
    for (int i = 0; i < N * SIDE * SIDE; i++)
        x[i] = images[i] * (1.0f / 255.0f);
    return x;
}

/* Full-batch SGD without shuffling: epoch e is one step at the
 * schedule's rate, which nn_model_train_batch can take by hand. */
static void lr_schedule_by_hand(nn_lr_schedule sched, const float *lrs)
{
    const char *spec = "dense(6,tanh) dense(3,softmax)";
    nn_model *a = model(spec, nn_sgd(0.1f, 0.0f, false));
    nn_model *b = model(spec, nn_sgd(0.1f, 0.0f, false));
    nn_dataset d = data(labels);
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 3;
    o.batch_size = N;
    o.shuffle = false;
    o.lr_schedule = sched;
    o.lr_decay = 0.5f;
    nn_error e;
    assert_int_equal(nn_model_fit(a, &d, &o, NULL, &e), NN_OK);
    /* the schedule never touches the compiled rate */
    assert_true(nn_model_optimizer(a).lr == 0.1f);

    const float *x = float_images();
    for (int ep = 0; ep < 3; ep++)
        assert_int_equal(nn_model_train_batch(b, &(nn_batch){.x = x,
                                              .labels = labels, .size = N,
                                              .apply = true, .lr = lrs[ep]},
                                              NULL, &e), NN_OK);
    expect_same_params(a, b);
    nn_model_free(a);
    nn_model_free(b);
}

static void test_lr_schedules_by_hand(void **state)
{
    (void)state;
    /* 0.1 * 0.5^e; 0.1 * (1 + cos(pi e / 3)) / 2 */
    const float expo[3] = {0.1f, 0.05f, 0.025f};
    const float cosine[3] = {0.1f, 0.075f, 0.025f};
    lr_schedule_by_hand(NN_LR_EXPONENTIAL, expo);
    lr_schedule_by_hand(NN_LR_COSINE, cosine);
}

/* The compiled rate stays what the user compiled: after fit, in a second
 * fit (which starts the schedule again instead of compounding it), in the
 * saved model and in a checkpoint written during fit. */
static bool save_checkpoint(void *user, int epoch, const nn_epoch_stats *s)
{
    (void)s;
    nn_error e;
    if (epoch == 2)
        assert_int_equal(nn_model_save(user, tu_path("sched.ckpt"), true,
                                       &e), NN_OK);
    return true;
}

static void test_lr_schedule_keeps_compiled_rate(void **state)
{
    (void)state;
    const char *spec = "dense(6,tanh) dense(3,softmax)";
    nn_dataset d = data(labels);
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 4;
    o.lr_schedule = NN_LR_EXPONENTIAL;
    o.lr_decay = 0.5f;
    nn_error e;
    assert_non_null(tu_tmpdir_make("sched"));

    /* Adam at 1e-3, 4 epochs halving the rate: still 1e-3 afterwards */
    nn_model *m = model(spec, nn_adam());
    o.on_epoch = save_checkpoint;
    o.user = m;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_OK);
    assert_true(nn_model_optimizer(m).lr == 1e-3f);
    assert_int_equal(nn_model_save(m, tu_path("sched.nn"), false, &e), NN_OK);
    nn_model *l = nn_model_load(tu_path("sched.nn"), &e);
    assert_non_null(l);
    assert_true(nn_model_optimizer(l).lr == 1e-3f);
    nn_model_free(l);
    l = nn_model_load(tu_path("sched.ckpt"), &e);   /* saved mid-fit */
    assert_non_null(l);
    assert_true(nn_model_optimizer(l).lr == 1e-3f);
    nn_model_free(l);
    nn_model_free(m);
    tu_tmpdir_remove();
    o.on_epoch = NULL;
    o.user = NULL;

    /* two fits of 2 epochs: rates 0.1, 0.05, then 0.1, 0.05 again, as
     * full-batch steps by hand (stateless SGD, no shuffling) */
    o.epochs = 2;
    o.batch_size = N;
    o.shuffle = false;
    nn_model *a = model(spec, nn_sgd(0.1f, 0.0f, false));
    nn_model *b = model(spec, nn_sgd(0.1f, 0.0f, false));
    assert_int_equal(nn_model_fit(a, &d, &o, NULL, &e), NN_OK);
    assert_int_equal(nn_model_fit(a, &d, &o, NULL, &e), NN_OK);
    assert_true(nn_model_optimizer(a).lr == 0.1f);
    const float lrs[4] = {0.1f, 0.05f, 0.1f, 0.05f};
    const float *x = float_images();
    for (int i = 0; i < 4; i++)
        assert_int_equal(nn_model_train_batch(b, &(nn_batch){.x = x,
                                              .labels = labels, .size = N,
                                              .apply = true, .lr = lrs[i]},
                                              NULL, &e), NN_OK);
    expect_same_params(a, b);
    nn_model_free(a);
    nn_model_free(b);
}

/* A checkpoint written before the fix (fuzz/regress/model/
 * checkpoint-decayed-lr: Adam at 1e-3, cosine over 4 epochs, stopped in
 * epoch 2, one mode byte before the file) recorded the decayed rate,
 * 5e-4, as the optimizer's: it still loads, and the compiled rate is the
 * one the run started from again. */
static void test_old_checkpoint_gets_compiled_rate(void **state)
{
    (void)state;
    void *d;
    size_t n;
    nn_error e;
    if (nn_read_file("fuzz/regress/model/checkpoint-decayed-lr", 1 << 20,
                     &d, &n, &e) != NN_OK)
        fail_msg("%s (run from the repository's root)", e.msg);
    assert_true(n > 1);
    nn_model *m = nn_model_load_mem((const char *)d + 1, n - 1, &e);
    free(d);
    if (!m)
        fail_msg("old checkpoint: %s", e.msg);
    assert_int_equal(nn_model_optimizer(m).kind, NN_OPT_ADAM);
    assert_true(nn_model_optimizer(m).lr == 1e-3f);
    nn_model_free(m);
}

/* Soft targets with a validation split: the rows are as wide as the
 * model's outputs even when the data set does not say so (num_classes 0),
 * and the validation part is the last rows of targets, not "no labels". */
static void test_targets_validation_split(void **state)
{
    (void)state;
    static float t[N * 3];
    for (int i = 0; i < N * 3; i++)
        t[i] = (float)(labels[i / 3] == i % 3);
    nn_dataset d = {.n = N, .shape = nn_shape3(SIDE, SIDE, 1),
                    .x_u8 = images, .scale = 1.0f / 255.0f, .targets = t};
    nn_model *m = model("dense(6,tanh) dense(3,softmax)", nn_adam());
    nn_error e;
    assert_int_equal(nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY,
                                      nn_adam(), &e), NN_OK);
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 2;
    o.validation_split = 0.25f;
    nn_history h;
    if (nn_model_fit(m, &d, &o, &h, &e) != NN_OK)
        fail_msg("%s", e.msg);
    assert_int_equal(h.epochs, 2);
    assert_true(isfinite(h.epoch[1].val_loss));
    /* the same validation rows as labels give the same validation loss */
    nn_dataset v = data(labels);
    v = nn_dataset_slice(&v, N - N / 4, N / 4);
    nn_eval ev;
    assert_int_equal(nn_model_evaluate(m, &v, &ev, NULL, &e), NN_OK);
    assert_float_equal(ev.loss, h.epoch[1].val_loss, 1e-6);
    nn_history_free(&h);

    /* rows of a declared width other than the outputs are refused */
    d.target_width = 4;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_SHAPE);
    nn_model_free(m);
}

/* ---------------------------------------------------- early stopping */

typedef struct keep_first {
    nn_model *m;
    float *params;     /* the weights after the first epoch */
} keep_first;

static bool remember_first(void *user, int epoch, const nn_epoch_stats *s)
{
    keep_first *k = user;
    (void)s;
    if (epoch == 0)
        memcpy(k->params, nn_model_params(k->m),
               nn_model_param_count(k->m) * sizeof(float));
    return true;
}

/* Validation labels that contradict the training labels: the validation
 * loss is lowest after the first epoch and then grows, so with patience 2
 * fit stops after epoch 3 and hands back the first epoch's weights. */
static void test_patience_keeps_best(void **state)
{
    (void)state;
    nn_model *m = model("dense(16,relu) dense(3,softmax)", nn_adam());
    nn_dataset tr = data(labels), va = data(wrong);
    keep_first k = {m, malloc(nn_model_param_count(m) * sizeof(float))};
    assert_non_null(k.params);
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 20;
    o.batch_size = 8;
    o.validation_data = &va;
    o.patience = 2;
    o.on_epoch = remember_first;
    o.user = &k;
    nn_history h;
    nn_error e;
    assert_int_equal(nn_model_fit(m, &tr, &o, &h, &e), NN_OK);
    assert_int_equal(h.epochs, 3);
    assert_true(h.epoch[1].val_loss > h.epoch[0].val_loss);
    assert_true(h.epoch[2].val_loss > h.epoch[0].val_loss);
    assert_memory_equal(nn_model_params(m), k.params,
                        nn_model_param_count(m) * sizeof(float));
    nn_history_free(&h);
    free(k.params);
    nn_model_free(m);
}

/* ------------------------------------------------------- checkpoints */

typedef struct stopper {
    int epoch, step;      /* stop after this step (1-based) of this epoch */
    bool at_epoch_end;    /* or from on_epoch after `epoch` */
} stopper;

static bool stop_batch(void *user, int epoch, int step, int steps,
                       double loss, double acc)
{
    stopper *s = user;
    (void)steps, (void)loss, (void)acc;
    return s->at_epoch_end || !(epoch == s->epoch && step == s->step);
}

static bool stop_epoch(void *user, int epoch, const nn_epoch_stats *st)
{
    stopper *s = user;
    (void)st;
    return !(s->at_epoch_end && epoch == s->epoch);
}

/* The options of the runs compared: everything that keeps state across
 * steps is on (dropout, augmentation, decay, early stopping, validation). */
static nn_fit_options resume_options(void)
{
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 4;
    o.batch_size = 10;
    o.seed = 77;
    o.validation_split = 0.25f;
    o.augment = (nn_augment){1.0f, 10.0f, 0.1f};
    o.lr_schedule = NN_LR_COSINE;
    o.patience = 3;
    return o;
}

static const char *resume_spec =
    "conv2d(4,3,relu) maxpool(2) flatten dropout(0.3) dense(3,softmax)";

static void stop_save_resume(stopper st, const nn_model *want)
{
    nn_model *m = model(resume_spec, nn_adam());
    nn_dataset d = data(labels);
    nn_fit_options o = resume_options();
    o.on_batch = stop_batch;
    o.on_epoch = stop_epoch;
    o.user = &st;
    nn_error e;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_INTERRUPTED);
    const char *ck = tu_path("run.ckpt");
    assert_int_equal(nn_model_save(m, ck, true, &e), NN_OK);
    nn_model_free(m);

    nn_model *r = nn_model_load(ck, &e);
    if (!r)
        fail_msg("load: %s", e.msg);
    o = resume_options();
    o.resume = true;
    nn_history h;
    assert_int_equal(nn_model_fit(r, &d, &o, &h, &e), NN_OK);
    assert_int_equal(h.epochs, 4);
    expect_same_params(r, (nn_model *)want);
    nn_history_free(&h);
    nn_model_free(r);
}

static void test_resume_is_bit_identical(void **state)
{
    (void)state;
    assert_non_null(tu_tmpdir_make("fit"));
    nn_model *want = model(resume_spec, nn_adam());
    nn_dataset d = data(labels);
    nn_fit_options o = resume_options();
    nn_error e;
    assert_int_equal(nn_model_fit(want, &d, &o, NULL, &e), NN_OK);

    stop_save_resume((stopper){0, 1, false}, want);   /* first step */
    stop_save_resume((stopper){1, 4, false}, want);   /* mid-epoch */
    stop_save_resume((stopper){2, 8, false}, want);   /* last step */
    stop_save_resume((stopper){1, 0, true}, want);    /* after an epoch */
    nn_model_free(want);
    tu_tmpdir_remove();
}

static void test_resume_needs_same_options(void **state)
{
    (void)state;
    assert_non_null(tu_tmpdir_make("fit"));
    nn_model *m = model(resume_spec, nn_adam());
    nn_dataset d = data(labels);
    nn_fit_options o = resume_options();
    stopper st = {1, 2, false};
    o.on_batch = stop_batch;
    o.user = &st;
    nn_error e;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_INTERRUPTED);
    o = resume_options();
    o.resume = true;
    o.batch_size = 12;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_ARG);
    assert_non_null(strstr(e.msg, "batch size"));
    o = resume_options();
    o.resume = true;
    o.epochs = 5;    /* the cosine schedule depends on the run's length */
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_ARG);
    assert_non_null(strstr(e.msg, "epochs"));
    o = resume_options();
    o.resume = true;
    o.seed = 78;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_ARG);
    assert_non_null(strstr(e.msg, "seed"));
    /* A model without a position has nothing to resume. */
    nn_model *fresh = model(resume_spec, nn_adam());
    o = resume_options();
    o.resume = true;
    assert_int_equal(nn_model_fit(fresh, &d, &o, NULL, &e), NN_ERR_STATE);
    /* A finished fit clears the position: its checkpoint has none. */
    o = resume_options();
    assert_int_equal(nn_model_fit(fresh, &d, &o, NULL, &e), NN_OK);
    const char *ck = tu_path("done.nn");
    assert_int_equal(nn_model_save(fresh, ck, true, &e), NN_OK);
    nn_model *back = nn_model_load(ck, &e);
    assert_non_null(back);
    o.resume = true;
    assert_int_equal(nn_model_fit(back, &d, &o, NULL, &e), NN_ERR_STATE);
    nn_model_free(back);
    nn_model_free(fresh);
    nn_model_free(m);
    tu_tmpdir_remove();
}

static void test_bad_options(void **state)
{
    (void)state;
    nn_model *flat = model("flatten dense(3,softmax)", nn_adam());
    nn_dataset d = data(labels);
    nn_error e;
    nn_fit_options o = nn_fit_defaults();
    o.lr_schedule = NN_LR_EXPONENTIAL;
    o.lr_decay = 1.5f;
    assert_int_equal(nn_model_fit(flat, &d, &o, NULL, &e), NN_ERR_ARG);
    o = nn_fit_defaults();
    o.augment.rotate = 200.0f;
    assert_int_equal(nn_model_fit(flat, &d, &o, NULL, &e), NN_ERR_ARG);
    o = nn_fit_defaults();
    o.patience = -1;
    assert_int_equal(nn_model_fit(flat, &d, &o, NULL, &e), NN_ERR_ARG);
    /* a label past the model's outputs is refused, not read past */
    float x[2 * SIDE * SIDE] = {0};
    const uint8_t lab[2] = {1, 3};
    assert_int_equal(nn_model_train_batch(flat, &(nn_batch){.x = x,
                                          .labels = lab, .size = 2,
                                          .apply = true}, NULL, &e),
                     NN_ERR_ARG);
    assert_non_null(strstr(e.msg, "label 3"));
    nn_model_free(flat);
}

int main(void)
{
    make_data();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lr_schedules_by_hand),
        cmocka_unit_test(test_lr_schedule_keeps_compiled_rate),
        cmocka_unit_test(test_targets_validation_split),
        cmocka_unit_test(test_old_checkpoint_gets_compiled_rate),
        cmocka_unit_test(test_patience_keeps_best),
        cmocka_unit_test(test_resume_is_bit_identical),
        cmocka_unit_test(test_resume_needs_same_options),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

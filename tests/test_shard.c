/*
 * test_shard.c - data-parallel fit (nn_fit_options.shards and .reduce)
 * without MPI: S threads, each a shard with its own model, sum their
 * gradients through a barrier. Holds that S shards train the weights one
 * process trains with the same batch size (up to the order of float sums),
 * with dropout and augmentation drawing alike, a shard without rows in a
 * short last batch, and every shard ending bit-identical; that batch
 * normalisation's moving statistics stay the same on every shard; that
 * shards reading samples through a source read only their own rows; and
 * that bad settings and a failing reduce are reported.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn.h"

enum { N = 100, SIDE = 8, MAX_SHARDS = 4 };
static uint8_t images[N * SIDE * SIDE], labels[N];

static void make_data(void)
{
    nn_rng r;
    nn_rng_seed(&r, 11);
    for (int i = 0; i < N; i++) {
        int c = i % 3;
        labels[i] = (uint8_t)c;
        for (int p = 0; p < SIDE * SIDE; p++) {
            int row = p / SIDE;
            int on = row >= 2 * c + 1 && row <= 2 * c + 2;
            images[i * SIDE * SIDE + p] =
                (uint8_t)(on ? 150 + nn_rng_below(&r, 100)
                             : nn_rng_below(&r, 80));
        }
    }
}

static nn_dataset data(void)
{
    return (nn_dataset){.n = N, .shape = nn_shape3(SIDE, SIDE, 1),
                        .x_u8 = images, .scale = 1.0f / 255.0f,
                        .labels = labels, .num_classes = 3};
}

static nn_model *model(const char *spec)
{
    nn_error e;
    nn_model *m = nn_model_from_spec(spec, nn_shape3(SIDE, SIDE, 1), 3,
                                     NULL, &e);
    if (!m)
        fail_msg("spec: %s", e.msg);
    nn_rng r;
    nn_rng_seed(&r, 3);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_compile(m,
                                      NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                      nn_sgd(0.05f, 0.9f, false), &e),
                     NN_OK);
    return m;
}

/* The shards' meeting point: each puts its buffers in its slot, and after
 * a barrier every shard sums the slots in slot order (so all get the same
 * bits), then waits until all have read before the next step. */
typedef struct group {
    int shards;
    pthread_barrier_t barrier;
    float *slot[MAX_SHARDS];
    double stats[MAX_SHARDS][4];
    int fail_at;                  /* reduce call that fails, 0: none */
    int calls;
} group;

typedef struct shard {
    group *g;
    int index;
    nn_model *m;
    nn_fit_options opts;
    nn_history hist;
    nn_status status;
    bool from_source;             /* samples from read_counted */
} shard;

static nn_status sum_over_shards(void *user, float *grads, size_t n,
                                 double *stats, int n_stats, nn_error *err)
{
    shard *sh = user;
    group *g = sh->g;
    assert_true(n_stats <= 4);
    memcpy(g->slot[sh->index], grads, sizeof(float) * n);
    memcpy(g->stats[sh->index], stats, sizeof(double) * (size_t)n_stats);
    pthread_barrier_wait(&g->barrier);
    if (sh->index == 0)
        g->calls++;
    for (size_t k = 0; k < n; k++) {
        float s = 0.0f;
        for (int i = 0; i < g->shards; i++)
            s += g->slot[i][k];
        grads[k] = s;
    }
    for (int j = 0; j < n_stats; j++) {
        double s = 0.0;
        for (int i = 0; i < g->shards; i++)
            s += g->stats[i][j];
        stats[j] = s;
    }
    pthread_barrier_wait(&g->barrier);
    if (g->fail_at && g->calls == g->fail_at) {
        snprintf(err->msg, sizeof err->msg, "reduce failed on purpose");
        return err->code = NN_ERR_IO;
    }
    return NN_OK;
}

/* A source over `images` that counts, per shard, the reads of each row. */
static int reads[MAX_SHARDS][N];

static nn_status read_counted(void *ctx, size_t row, size_t count,
                              uint8_t *dst, nn_error *err)
{
    int *mine = ctx;
    if (row + count > N) {
        snprintf(err->msg, sizeof err->msg, "row %zu out of range", row);
        return err->code = NN_ERR_ARG;
    }
    for (size_t i = 0; i < count; i++)
        mine[row + i]++;
    memcpy(dst, images + row * SIDE * SIDE, count * SIDE * SIDE);
    return NN_OK;
}

static void *run_shard(void *arg)
{
    shard *sh = arg;
    nn_dataset d = data();
    if (sh->from_source) {
        d.x_u8 = NULL;
        d.source = (nn_dataset_source){.read = read_counted,
                                       .ctx = reads[sh->index]};
    }
    nn_error e;
    sh->status = nn_model_fit(sh->m, &d, &sh->opts, &sh->hist, &e);
    return NULL;
}

/* Trains `spec` on S shards, their samples from `images` or read through
 * read_counted; shards[i].m are the models (caller frees). */
static void train_shards_from(group *g, shard *sh, int S, const char *spec,
                              const nn_fit_options *base, bool from_source)
{
    g->shards = S;
    g->calls = 0;
    assert_int_equal(pthread_barrier_init(&g->barrier, NULL, (unsigned)S),
                     0);
    pthread_t t[MAX_SHARDS];
    for (int i = 0; i < S; i++) {
        sh[i] = (shard){.g = g, .index = i, .m = model(spec),
                        .opts = *base, .from_source = from_source};
        sh[i].opts.shards = S;
        sh[i].opts.shard = i;
        sh[i].opts.reduce = sum_over_shards;
        sh[i].opts.user = &sh[i];
        g->slot[i] = malloc(sizeof(float) * nn_model_param_count(sh[i].m));
        assert_non_null(g->slot[i]);
    }
    for (int i = 0; i < S; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run_shard, &sh[i]), 0);
    for (int i = 0; i < S; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&g->barrier);
    for (int i = 0; i < S; i++)
        free(g->slot[i]);
}

static void train_shards(group *g, shard *sh, int S, const char *spec,
                         const nn_fit_options *base)
{
    train_shards_from(g, sh, S, spec, base, false);
}

static double max_rel_diff(const nn_model *a, const nn_model *b)
{
    size_t n = nn_model_param_count(a);
    const float *pa = nn_model_params((nn_model *)a);
    const float *pb = nn_model_params((nn_model *)b);
    double d = 0.0, w = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)pa[i] - pb[i]);
        d = e > d ? e : d;
        w = fabs(pa[i]) > w ? fabs(pa[i]) : w;
    }
    return d / w;
}

static void free_shards(shard *sh, int S)
{
    for (int i = 0; i < S; i++) {
        nn_model_free(sh[i].m);
        nn_history_free(&sh[i].hist);
    }
}

/* S shards against one process: dropout, augmentation, shuffling, and
 * batches of 30 (the last of 10: with 4 shards none is empty; with batch
 * size 2 and 3 shards, one shard has no row in every batch). */
static void check_like_one_process(int S, int batch)
{
    const char *spec = "conv2d(4,3,relu) flatten dropout(0.3) "
                       "dense(3,softmax)";
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 2;
    o.batch_size = batch;
    o.seed = 9;
    o.augment = (nn_augment){1.0f, 10.0f, 0.1f};
    nn_model *ref = model(spec);
    nn_dataset d = data();
    nn_history h = {0};
    nn_error e;
    assert_int_equal(nn_model_fit(ref, &d, &o, &h, &e), NN_OK);

    group g = {0};
    shard sh[MAX_SHARDS];
    train_shards(&g, sh, S, spec, &o);
    int steps = (N + batch - 1) / batch;
    assert_int_equal(g.calls, 2 * steps);   /* one reduce per step */
    for (int i = 0; i < S; i++) {
        assert_int_equal(sh[i].status, NN_OK);
        assert_memory_equal(nn_model_params(sh[i].m),
                            nn_model_params(sh[0].m),
                            sizeof(float) * nn_model_param_count(ref));
        assert_int_equal(sh[i].hist.epochs, 2);
        for (int ep = 0; ep < 2; ep++) {
            assert_true(fabs(sh[i].hist.epoch[ep].loss - h.epoch[ep].loss) <
                        1e-5);
            assert_true(fabs(sh[i].hist.epoch[ep].accuracy -
                             h.epoch[ep].accuracy) < 1e-9);
        }
    }
    double rel = max_rel_diff(ref, sh[0].m);
    if (!(rel < 1e-5))
        fail_msg("%d shards, batch %d: weights differ by %g of the largest",
                 S, batch, rel);
    /* the training did move the weights */
    nn_model *init = model(spec);
    assert_true(max_rel_diff(init, ref) > 1e-2);
    nn_model_free(init);
    free_shards(sh, S);
    nn_history_free(&h);
    nn_model_free(ref);
}

static void test_two_shards(void **state)
{
    (void)state;
    check_like_one_process(2, 30);
}

static void test_four_shards(void **state)
{
    (void)state;
    check_like_one_process(4, 30);
}

static void test_empty_shard(void **state)
{
    (void)state;
    check_like_one_process(3, 2);
}

/* Batch normalisation: shards normalise by their own rows' statistics,
 * so the weights differ from one process's, a little; the moving
 * statistics are averaged by share, so every shard ends with the same
 * model. After one step from moving mean 0 and variance 1 (momentum m):
 * the moving mean is (1 - m) times the batch mean on every shard, as in
 * one process (the mean of the shards' means, equal shares), and the
 * moving variance m + (1 - m) times the mean of the shards' variances,
 * which lacks the spread of their means: at most one process's. */
static void test_batchnorm(void **state)
{
    (void)state;
    const char *spec = "conv2d(4,3) batchnorm flatten dense(3,softmax)";
    nn_fit_options o = nn_fit_defaults();
    o.batch_size = N;   /* one step, 50 rows per shard */
    nn_model *ref = model(spec);
    nn_dataset d = data();
    nn_error e;
    assert_int_equal(nn_model_fit(ref, &d, &o, NULL, &e), NN_OK);
    group g = {0};
    shard sh[2];
    train_shards(&g, sh, 2, spec, &o);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sh[i].status, NN_OK);
        assert_memory_equal(nn_model_params(sh[i].m),
                            nn_model_params(sh[0].m),
                            sizeof(float) * nn_model_param_count(ref));
    }
    double rel = max_rel_diff(ref, sh[0].m);
    assert_true(rel > 1e-6);
    assert_true(rel < 0.1);
    /* layer 1's parameters: gamma, beta, moving mean, moving var (4 each) */
    size_t off = nn_model_layer_param_count(ref, 0);
    const float *r = nn_model_params(ref) + off, *q = nn_model_params(sh[0].m) + off;
    for (int c = 0; c < 4; c++) {
        assert_true(fabsf(r[8 + c]) > 1e-5f);
        assert_true(fabsf(q[8 + c] - r[8 + c]) <= 1e-5f * fabsf(r[8 + c]));
        assert_true(q[12 + c] <= r[12 + c] + 1e-6f);
        assert_true(q[12 + c] > 0.99f);
    }
    free_shards(sh, 2);
    nn_model_free(ref);
}

/* Shards whose samples come from a source read only their own rows of
 * each batch: over an epoch every row once, by one shard, and a shard
 * half of them; the weights are those of shards holding the set. */
static void test_shards_read_their_rows(void **state)
{
    (void)state;
    const char *spec = "conv2d(4,3,relu) flatten dropout(0.3) "
                       "dense(3,softmax)";
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 3;
    o.batch_size = 30;   /* batches of 30, 30, 30, 10: halves of 15 and 5 */
    o.seed = 5;
    o.augment = (nn_augment){1.0f, 10.0f, 0.1f};
    group g = {0};
    shard mem[2], src[2];
    train_shards(&g, mem, 2, spec, &o);
    memset(reads, 0, sizeof reads);
    train_shards_from(&g, src, 2, spec, &o, true);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(src[i].status, NN_OK);
        assert_memory_equal(nn_model_params(src[i].m),
                            nn_model_params(mem[0].m),
                            sizeof(float) * nn_model_param_count(mem[0].m));
    }
    int per_shard[2] = {0, 0};
    for (int r = 0; r < N; r++) {
        assert_int_equal(reads[0][r] + reads[1][r], o.epochs);
        per_shard[0] += reads[0][r];
        per_shard[1] += reads[1][r];
    }
    assert_int_equal(per_shard[0], o.epochs * N / 2);
    assert_int_equal(per_shard[1], o.epochs * N / 2);
    free_shards(mem, 2);
    free_shards(src, 2);
}

static void test_bad_settings(void **state)
{
    (void)state;
    nn_model *m = model("dense(3,softmax)");
    nn_dataset d = data();
    nn_error e;
    nn_fit_options o = nn_fit_defaults();
    o.shards = 2;   /* no reduce */
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_ARG);
    assert_non_null(strstr(e.msg, "reduce"));
    o.reduce = sum_over_shards;
    o.shard = 2;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_ARG);
    o.shard = -1;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_ARG);
    o.shards = -1;
    o.shard = 0;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_ARG);
    nn_model_free(m);
}

/* A reduce that fails stops every shard's fit with its status. */
static void test_reduce_fails(void **state)
{
    (void)state;
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 3;
    o.batch_size = 10;
    group g = {.fail_at = 15};
    shard sh[2];
    train_shards(&g, sh, 2, "dense(3,softmax)", &o);
    assert_int_equal(g.calls, 15);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sh[i].status, NN_ERR_IO);
        assert_int_equal(sh[i].hist.epochs, 1);   /* epoch 2 did not end */
    }
    free_shards(sh, 2);
}

int main(void)
{
    make_data();
    nn_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_shards),
        cmocka_unit_test(test_four_shards),
        cmocka_unit_test(test_empty_shard),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_shards_read_their_rows),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_reduce_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

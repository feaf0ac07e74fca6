/*
 * test_shard.c - data-parallel fit (nn_fit_options.shards and .reduce)
 * without MPI: S threads, each a shard with its own model, sum their
 * gradients through a barrier. Holds that S shards train the weights one
 * process trains with the same batch size (up to the order of float sums),
 * with dropout and augmentation drawing alike, a shard without rows in a
 * short last batch, and every shard ending bit-identical; that batch
 * normalisation's moving statistics stay the same on every shard; that
 * shards reading samples through a source read only their own rows; that
 * the sharded optimizer (.gather: each shard updates its part) trains the
 * same bits as every shard updating everything, optimizer state included;
 * and that bad settings and a failing reduce are reported.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    bool sharded;                 /* the sharded optimizer (.gather) */
    bool split;                   /* split units (.split_units) */
    float *rows;                  /* ... with shared rows, or NULL */
    bool claimed;                 /* ... read in chunks as they come */
    uint64_t claims[3];           /* ... their words (.split_claims) */
    int stop_epoch, stop_step;    /* where stop_once stops each shard */
    float *whole;                 /* gather's meeting point */
    float *weights;               /* shared weights (nn_model_bind), or NULL */
    float *grads[MAX_SHARDS];     /* ... and each shard's gradients */
} group;

typedef struct shard {
    group *g;
    int index;
    nn_model *m;
    nn_fit_options opts;
    nn_history hist;
    nn_status status;
    bool from_source;             /* samples from read_counted */
    bool stopped;                 /* stop_once did */
} shard;

/* Puts this shard's grads and stats in its slot, and after a barrier
 * sums the slots in slot order: all of grads, or only [lo, hi) with NaN
 * elsewhere (which a shard of the sharded optimizer must not use). */
static nn_status meet_and_sum(shard *sh, float *grads, size_t n,
                              double *stats, int n_stats, size_t lo,
                              size_t hi, nn_error *err)
{
    group *g = sh->g;
    assert_true(n_stats <= 4);
    if (n > 0)   /* the shared rows' barrier has no floats, maybe no array */
        memcpy(g->slot[sh->index], grads, sizeof(float) * n);
    memcpy(g->stats[sh->index], stats, sizeof(double) * (size_t)n_stats);
    pthread_barrier_wait(&g->barrier);
    if (sh->index == 0)
        g->calls++;
    for (size_t k = 0; k < n; k++) {
        float s = 0.0f;
        for (int i = 0; i < g->shards; i++)
            s += g->slot[i][k];
        grads[k] = k >= lo && k < hi ? s : NAN;
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

static nn_status sum_over_shards(void *user, float *grads, size_t n,
                                 double *stats, int n_stats, nn_error *err)
{
    return meet_and_sum(user, grads, n, stats, n_stats, 0, n, err);
}

/* The sharded optimizer's reduce: only this shard's part of the sums. */
static nn_status sum_part_over_shards(void *user, float *grads, size_t n,
                                      double *stats, int n_stats,
                                      nn_error *err)
{
    shard *sh = user;
    size_t lo, hi;
    nn_shard_part(n, sh->g->shards, sh->index, &lo, &hi);
    return meet_and_sum(sh, grads, n, stats, n_stats, lo, hi, err);
}

/* Every shard's part of v on every shard. */
static nn_status gather_parts(void *user, float *v, size_t n, nn_error *err)
{
    shard *sh = user;
    group *g = sh->g;
    size_t lo, hi;
    nn_shard_part(n, g->shards, sh->index, &lo, &hi);
    memcpy(g->whole + lo, v + lo, sizeof(float) * (hi - lo));
    pthread_barrier_wait(&g->barrier);
    memcpy(v, g->whole, sizeof(float) * n);
    pthread_barrier_wait(&g->barrier);
    (void)err;
    return NN_OK;
}

/* Shared weights, as the tool runs ranks on one machine: every shard's
 * model points at g->weights and at its own g->grads[i]; a shard sums its
 * part straight from the others' gradients (in slot order), updates it in
 * place, and the gather of the weights is only a wait. */
static nn_status sum_part_shared(void *user, float *grads, size_t n,
                                 double *stats, int n_stats, nn_error *err)
{
    shard *sh = user;
    group *g = sh->g;
    assert_ptr_equal(grads, g->grads[sh->index]);
    size_t lo, hi;
    nn_shard_part(n, g->shards, sh->index, &lo, &hi);
    memcpy(g->stats[sh->index], stats, sizeof(double) * (size_t)n_stats);
    pthread_barrier_wait(&g->barrier);
    if (sh->index == 0)
        g->calls++;
    for (size_t k = lo; k < hi; k++) {
        float s = g->grads[0][k];
        for (int i = 1; i < g->shards; i++)
            s += g->grads[i][k];
        grads[k] = s;
    }
    for (int j = 0; j < n_stats; j++) {
        double s = 0.0;
        for (int i = 0; i < g->shards; i++)
            s += g->stats[i][j];
        stats[j] = s;
    }
    (void)err;
    return NN_OK;
}

static nn_status gather_shared(void *user, float *v, size_t n, nn_error *err)
{
    shard *sh = user;
    group *g = sh->g;
    if (v != g->weights)
        return gather_parts(user, v, n, err);   /* the optimizer state */
    pthread_barrier_wait(&g->barrier);
    return NN_OK;
}

/* A source over `images` that counts, per shard, the reads of each row;
 * the reads of shard slow_reader (-1: none) take 2 ms a row. */
static int reads[MAX_SHARDS][N];
static int slow_reader = -1;

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
    if (slow_reader >= 0 && mine == reads[slow_reader]) {
        long ms = 2 * (long)count;
        struct timespec t = {ms / 1000, ms % 1000 * 1000000};
        nanosleep(&t, NULL);
    }
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
    memset(g->claims, 0, sizeof g->claims);   /* zero when fit starts */
    assert_int_equal(pthread_barrier_init(&g->barrier, NULL, (unsigned)S),
                     0);
    pthread_t t[MAX_SHARDS];
    for (int i = 0; i < S; i++) {
        sh[i] = (shard){.g = g, .index = i, .m = model(spec),
                        .opts = *base, .from_source = from_source};
        sh[i].opts.shards = S;
        sh[i].opts.shard = i;
        sh[i].opts.reduce = g->sharded ? sum_part_over_shards
                                       : sum_over_shards;
        sh[i].opts.gather = g->sharded ? gather_parts : NULL;
        sh[i].opts.split_units = g->split;
        sh[i].opts.split_rows = g->rows;
        sh[i].opts.split_claims = g->claimed ? g->claims : NULL;
        sh[i].opts.user = &sh[i];
        /* split units also sum the optimizer state: 2 floats a weight */
        g->slot[i] = malloc(sizeof(float) * 2 *
                            nn_model_param_count(sh[i].m));
        assert_non_null(g->slot[i]);
    }
    size_t np = nn_model_param_count(sh[0].m);
    g->whole = malloc(sizeof(float) * np);
    assert_non_null(g->whole);
    if (g->weights) {   /* the caller's block, as big as np */
        nn_error e;
        memcpy(g->weights, nn_model_params(sh[0].m), sizeof(float) * np);
        for (int i = 0; i < S; i++) {
            g->grads[i] = malloc(sizeof(float) * np);
            assert_non_null(g->grads[i]);
            assert_int_equal(nn_model_bind(sh[i].m, g->weights, g->grads[i],
                                           &e), NN_OK);
            assert_ptr_equal(nn_model_params(sh[i].m), g->weights);
            sh[i].opts.reduce = sum_part_shared;
            sh[i].opts.gather = gather_shared;
        }
    }
    for (int i = 0; i < S; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run_shard, &sh[i]), 0);
    for (int i = 0; i < S; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&g->barrier);
    for (int i = 0; i < S; i++)
        free(g->slot[i]);
    free(g->whole);
    g->whole = NULL;
}

/* The shards' models point into g's blocks: copies of their own, so that
 * they outlive the group's. */
static void unbind_shards(group *g, shard *sh, int S)
{
    for (int i = 0; i < S; i++) {
        nn_error e;
        size_t np = nn_model_param_count(sh[i].m);
        float *w = malloc(sizeof(float) * np), *d = malloc(sizeof(float) * np);
        assert_non_null(w);
        assert_non_null(d);
        memcpy(w, g->weights, sizeof(float) * np);
        /* a model takes the caller's memory and leaves it to them */
        assert_int_equal(nn_model_bind(sh[i].m, w, d, &e), NN_OK);
        (void)e;
    }
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

/* One process's fit of `spec` with augmentation: the model, the options
 * (*o) and its history (*h). */
static nn_model *fit_one(const char *spec, int epochs, int batch,
                         uint64_t seed, nn_fit_options *o, nn_history *h)
{
    *o = nn_fit_defaults();
    o->epochs = epochs;
    o->batch_size = batch;
    o->seed = seed;
    o->augment = (nn_augment){1.0f, 10.0f, 0.1f};
    nn_model *ref = model(spec);
    nn_dataset d = data();
    nn_error e;
    *h = (nn_history){0};
    assert_int_equal(nn_model_fit(ref, &d, o, h, &e), NN_OK);
    return ref;
}

/* Every one of S shards finished with the same weights, within 1e-5 of
 * the largest of one process's `ref` (which training moved from the
 * initial weights), and ref's history h. */
static void check_agree(const nn_model *ref, const nn_history *h,
                        const shard *sh, int S, const char *spec)
{
    for (int i = 0; i < S; i++) {
        assert_int_equal(sh[i].status, NN_OK);
        assert_memory_equal(nn_model_params(sh[i].m),
                            nn_model_params(sh[0].m),
                            sizeof(float) * nn_model_param_count(ref));
        assert_int_equal(sh[i].hist.epochs, h->epochs);
        for (int ep = 0; ep < h->epochs; ep++) {
            assert_true(fabs(sh[i].hist.epoch[ep].loss - h->epoch[ep].loss) <
                        1e-5);
            assert_true(fabs(sh[i].hist.epoch[ep].accuracy -
                             h->epoch[ep].accuracy) < 1e-9);
        }
    }
    double rel = max_rel_diff(ref, sh[0].m);
    if (!(rel < 1e-5))
        fail_msg("%d shards, %s: weights differ by %g of the largest", S,
                 spec, rel);
    nn_model *init = model(spec);
    assert_true(max_rel_diff(init, ref) > 1e-2);
    nn_model_free(init);
}

/* S shards against one process: dropout, augmentation, shuffling, and
 * batches of 30 (the last of 10: with 4 shards none is empty; with batch
 * size 2 and 3 shards, one shard has no row in every batch). */
static void check_like_one_process(int S, int batch, bool sharded)
{
    const char *spec = "conv2d(4,3,relu) flatten dropout(0.3) "
                       "dense(3,softmax)";
    nn_fit_options o;
    nn_history h;
    nn_model *ref = fit_one(spec, 2, batch, 9, &o, &h);

    group g = {.sharded = sharded};
    shard sh[MAX_SHARDS];
    train_shards(&g, sh, S, spec, &o);
    int steps = (N + batch - 1) / batch;
    assert_int_equal(g.calls, 2 * steps);   /* one reduce per step */
    check_agree(ref, &h, sh, S, spec);
    free_shards(sh, S);
    nn_history_free(&h);
    nn_model_free(ref);
}

static void test_two_shards(void **state)
{
    (void)state;
    check_like_one_process(2, 30, false);
    check_like_one_process(2, 30, true);
}

static void test_four_shards(void **state)
{
    (void)state;
    check_like_one_process(4, 30, false);
    check_like_one_process(4, 30, true);
}

static void test_empty_shard(void **state)
{
    (void)state;
    check_like_one_process(3, 2, false);
    check_like_one_process(3, 2, true);
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

/* Split units: S shards split a two-layer perceptron's hidden units (40:
 * 16, 16 and 8 on 3 shards; 8: all on one shard, none on the others).
 * Every shard ends with the same weights, and they are one process's up
 * to the order of the output layer's sums, through three epochs (so the
 * joins of weights and momentum in between count), with the same
 * history; one reduce a step and two a join. Rows: 0 every shard reads
 * every row, 1 each its part into shared rows, 2 chunks as they come. */
static void check_split(int S, const char *spec, int batch, int rows)
{
    bool shared = rows > 0;
    nn_fit_options o;
    nn_history h;
    nn_model *ref = fit_one(spec, 3, batch, 5, &o, &h);

    group g = {.split = true, .claimed = rows == 2};
    if (shared) {   /* every shard reads its rows into 3 batches there */
        g.rows = malloc(sizeof(float) * 3 * (size_t)batch * SIDE * SIDE);
        assert_non_null(g.rows);
    }
    shard sh[MAX_SHARDS];
    memset(reads, 0, sizeof reads);
    train_shards_from(&g, sh, S, spec, &o, true);
    int steps = (N + batch - 1) / batch;
    /* a reduce a step, two a join, with shared rows one an epoch more */
    assert_int_equal(g.calls, 3 * (steps + 2 + shared));
    check_agree(ref, &h, sh, S, spec);
    for (int r = 0; r < N; r++) {   /* each row read once, or by all */
        int n = 0;
        for (int i = 0; i < S; i++)
            n += reads[i][r];
        assert_int_equal(n, o.epochs * (shared ? 1 : S));
    }
    free(g.rows);
    free_shards(sh, S);
    nn_history_free(&h);
    nn_model_free(ref);
}

/* nn_fit_options.on_batch: stops a shard's fit after the group's step
 * stop_step of epoch stop_epoch, once. */
static bool stop_once(void *user, int epoch, int step, int steps,
                      double loss, double accuracy)
{
    shard *sh = user;
    (void)steps, (void)loss, (void)accuracy;
    if (sh->stopped || epoch != sh->g->stop_epoch ||
        step != sh->g->stop_step)
        return true;
    sh->stopped = true;
    return false;
}

/* Split units with shared rows and augmentation, stopped in the middle
 * of an epoch (each shard has read its rows of the next batch, and drawn
 * for them) and resumed: the same bits as the run not stopped. */
static void check_split_resume(bool claimed)
{
    const char *spec = "dense(24,relu) dense(3,softmax)";
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 3;
    o.batch_size = 20;
    o.seed = 11;
    o.augment = (nn_augment){1.0f, 10.0f, 0.1f};
    group g = {.split = true, .claimed = claimed};
    g.rows = malloc(sizeof(float) * 3 * 20 * SIDE * SIDE);
    assert_non_null(g.rows);
    shard whole[2], parts[2];
    train_shards(&g, whole, 2, spec, &o);
    o.on_batch = stop_once;
    g.stop_epoch = 1;
    g.stop_step = 2;
    train_shards(&g, parts, 2, spec, &o);
    pthread_t t[2];
    assert_int_equal(pthread_barrier_init(&g.barrier, NULL, 2), 0);
    memset(g.claims, 0, sizeof g.claims);   /* zero when fit starts */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(parts[i].status, NN_ERR_INTERRUPTED);
        nn_history_free(&parts[i].hist);   /* the resumed fit fills it */
        parts[i].opts.resume = true;
        g.slot[i] = malloc(sizeof(float) * 2 *
                           nn_model_param_count(parts[i].m));
        assert_non_null(g.slot[i]);
        assert_int_equal(pthread_create(&t[i], NULL, run_shard, &parts[i]),
                         0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&g.barrier);
    for (int i = 0; i < 2; i++) {
        free(g.slot[i]);
        assert_int_equal(parts[i].status, NN_OK);
        assert_memory_equal(nn_model_params(parts[i].m),
                            nn_model_params(whole[0].m),
                            sizeof(float) * nn_model_param_count(whole[0].m));
    }
    free(g.rows);
    free_shards(whole, 2);
    free_shards(parts, 2);
}

static void test_split_resume(void **state)
{
    (void)state;
    check_split_resume(false);
    check_split_resume(true);
}

/* Shared rows read in chunks as they come (.split_claims), one shard's
 * reads slow: the other reads most of each batch, every row is read once
 * an epoch, and the weights are the bits of each shard reading its own
 * part, augmented alike. */
static void test_split_claims(void **state)
{
    (void)state;
    const char *spec = "dense(24,relu) dense(3,softmax)";
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 3;
    o.batch_size = 32;   /* 4 chunks of 8, then one of 4 */
    o.seed = 9;
    o.augment = (nn_augment){1.0f, 10.0f, 0.1f};
    float *rows = malloc(sizeof(float) * 3 * 32 * SIDE * SIDE);
    assert_non_null(rows);
    group own = {.split = true, .rows = rows};
    group claim = {.split = true, .rows = rows, .claimed = true};
    shard a[2], b[2];
    train_shards_from(&own, a, 2, spec, &o, true);
    memset(reads, 0, sizeof reads);
    slow_reader = 1;
    train_shards_from(&claim, b, 2, spec, &o, true);
    slow_reader = -1;
    int per_shard[2] = {0, 0};
    for (int r = 0; r < N; r++) {
        assert_int_equal(reads[0][r] + reads[1][r], o.epochs);
        per_shard[0] += reads[0][r];
        per_shard[1] += reads[1][r];
    }
    /* a static split would read half each; the slow shard claims a chunk
     * now and then, while the other takes the rest */
    assert_true(per_shard[0] > 2 * per_shard[1]);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(b[i].status, NN_OK);
        assert_memory_equal(nn_model_params(b[i].m), nn_model_params(a[0].m),
                            sizeof(float) * nn_model_param_count(a[0].m));
    }
    free(rows);
    free_shards(a, 2);
    free_shards(b, 2);
}

static void test_split_units(void **state)
{
    (void)state;
    for (int rows = 0; rows < 3; rows++) {
        check_split(2, "dense(40,tanh) dense(3,softmax)", 30, rows);
        check_split(3, "dense(40,relu) dense(3,softmax)", 32, rows);
        check_split(3, "dense(8,sigmoid) dense(3,softmax)", 30, rows);
    }
    const char *specs[] = {"dense(8) dense(3,softmax)",
                           "dense(8,softmax) dense(3,softmax)",
                           "flatten dense(3,softmax)",
                           "dense(8,relu) dense(8,relu) dense(3,softmax)"};
    for (int i = 0; i < 4; i++) {
        nn_model *m = model(specs[i]);
        assert_int_equal(nn_model_can_split_units(m), i == 0);
        nn_model_free(m);
    }
    assert_false(nn_model_can_split_units(NULL));
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
    /* split units: a model of two dense layers, shards, no gather */
    o.shards = 2;
    o.split_units = true;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_ARG);
    assert_non_null(strstr(e.msg, "split units"));
    nn_model_free(m);
    m = model("dense(8,relu) dense(3,softmax)");
    o.shards = 1;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_ARG);
    o.shards = 2;
    o.gather = gather_parts;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_ARG);
    o.gather = NULL;   /* claims without shared rows */
    uint64_t words[3] = {0, 0, 0};
    o.split_claims = words;
    assert_int_equal(nn_model_fit(m, &d, &o, NULL, &e), NN_ERR_ARG);
    assert_non_null(strstr(e.msg, "split_claims"));
    nn_model_free(m);
}

/* The model file with its optimizer state, as bytes (caller frees). */
static unsigned char *saved(const nn_model *m, const char *path, long *len)
{
    nn_error e;
    assert_int_equal(nn_model_save(m, path, true, &e), NN_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)*len);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)*len, f), (size_t)*len);
    fclose(f);
    remove(path);
    return b;
}

/* The sharded optimizer against every shard updating everything, with
 * momentum (state) and batch norm (non-trainable parameters): the same
 * sums in the same order, so the same bits, weights and optimizer state
 * on every shard (the state gathered when fit ends). Three shards: parts
 * of unequal length, none a layer's. */
static void test_sharded_optimizer_bits(void **state)
{
    (void)state;
    const char *spec = "conv2d(4,3) batchnorm flatten dropout(0.2) "
                       "dense(3,softmax)";
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 2;
    o.batch_size = 20;
    o.seed = 4;
    group all = {0}, part = {.sharded = true};
    shard a[3], p[3];
    train_shards(&all, a, 3, spec, &o);
    train_shards(&part, p, 3, spec, &o);
    char path[] = "test_shard_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    long n0;
    unsigned char *ref = saved(a[0].m, path, &n0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i].status, NN_OK);
        assert_int_equal(p[i].status, NN_OK);
        long n1, n2;
        unsigned char *x = saved(a[i].m, path, &n1);
        unsigned char *y = saved(p[i].m, path, &n2);
        assert_int_equal(n1, n0);
        assert_int_equal(n2, n0);
        assert_memory_equal(x, ref, (size_t)n0);
        assert_memory_equal(y, ref, (size_t)n0);
        free(x);
        free(y);
    }
    free(ref);
    /* and the state is there: a model without it saves fewer bytes */
    long n3;
    nn_error e;
    assert_int_equal(nn_model_save(a[0].m, path, false, &e), NN_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n3 = ftell(f);
    fclose(f);
    remove(path);
    assert_true(n3 < n0);
    free_shards(a, 3);
    free_shards(p, 3);
}

/* Shared weights (nn_model_bind, the tool's way on one machine): the same
 * bytes as the allreduce, weights and optimizer state, with dropout and a
 * shard without rows (batch 2 on 3 shards); and bind refuses memory that
 * does not hold the weights. */
static void test_shared_weights(void **state)
{
    (void)state;
    const char *spec = "conv2d(4,3,relu) flatten dropout(0.3) "
                       "dense(3,softmax)";
    for (int batch = 20; batch >= 2; batch -= 18) {
        nn_fit_options o = nn_fit_defaults();
        o.epochs = 2;
        o.batch_size = batch;
        o.seed = 6;
        group all = {0}, shared = {0};
        shard a[3], p[3];
        train_shards(&all, a, 3, spec, &o);
        nn_model *probe = model(spec);
        size_t np = nn_model_param_count(probe);
        nn_model_free(probe);
        float *w = malloc(sizeof(float) * np);
        assert_non_null(w);
        shared.weights = w;
        train_shards(&shared, p, 3, spec, &o);
        char path[] = "test_shard_XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        long n0, n1;
        unsigned char *ref = saved(a[0].m, path, &n0);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(p[i].status, NN_OK);
            unsigned char *x = saved(p[i].m, path, &n1);
            assert_int_equal(n1, n0);
            assert_memory_equal(x, ref, (size_t)n0);
            free(x);
        }
        free(ref);
        unbind_shards(&shared, p, 3);
        free(w);
        for (int i = 0; i < 3; i++)
            free(shared.grads[i]);
        /* unbind_shards' blocks are the callers' too: freed here */
        for (int i = 0; i < 3; i++) {
            float *pw = nn_model_params(p[i].m);
            float *pg = (float *)nn_model_grads(p[i].m);
            nn_model_free(p[i].m);
            nn_history_free(&p[i].hist);
            free(pw);
            free(pg);
        }
        free_shards(a, 3);
    }
    nn_model *m = model("dense(3,softmax)");
    size_t np = nn_model_param_count(m);
    float *w = calloc(np, sizeof(float));
    assert_non_null(w);
    nn_error e;
    assert_int_equal(nn_model_bind(m, w, NULL, &e), NN_ERR_ARG);
    assert_non_null(strstr(e.msg, "weights"));
    assert_int_equal(nn_model_bind(NULL, w, NULL, &e), NN_ERR_ARG);
    free(w);
    nn_model_free(m);
}

/* nn_shard_part: in order, covering [0, n), on multiples of 16. */
static void test_shard_part(void **state)
{
    (void)state;
    size_t ns[] = {0, 1, 15, 16, 17, 407050, 34826};
    for (size_t t = 0; t < sizeof ns / sizeof *ns; t++)
        for (int S = 1; S <= 5; S++) {
            size_t at = 0;
            for (int r = 0; r < S; r++) {
                size_t lo, hi;
                nn_shard_part(ns[t], S, r, &lo, &hi);
                assert_int_equal(lo, at);
                assert_true(hi >= lo);
                assert_true(lo % 16 == 0 || lo == ns[t]);
                at = hi;
            }
            assert_int_equal(at, ns[t]);
        }
    size_t lo = 1, hi = 1;
    nn_shard_part(100, 2, 2, &lo, &hi);
    assert_true(lo == 0 && hi == 0);
    size_t lo2, hi2;
    nn_shard_part(407050, 2, 0, &lo, &hi);
    nn_shard_part(407050, 2, 1, &lo2, &hi2);
    assert_true(hi - lo >= 203520 && hi2 - lo2 >= 203520);  /* halves */
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
        cmocka_unit_test(test_sharded_optimizer_bits),
        cmocka_unit_test(test_shard_part),
        cmocka_unit_test(test_shared_weights),
        cmocka_unit_test(test_split_units),
        cmocka_unit_test(test_split_resume),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_split_claims),
        cmocka_unit_test(test_reduce_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fit.c - nn_model_fit: epochs of shuffled batches, the learning-rate
 * schedule, validation, early stopping and the training position that
 * checkpoints carry (positions, resume checks; the settings a resume must
 * repeat are described once, NN_FIT_SETTINGS in model.h); data-parallel
 * steps (nn_fit_options.shards, docs/distributed.md).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/augment.h"
#include "nn/internal.h"
#include "nn/model.h"

nn_fit_options nn_fit_defaults(void)
{
    return (nn_fit_options){.epochs = 1, .batch_size = 32, .shuffle = true,
                            .seed = 42};
}

void nn_history_free(nn_history *h)
{
    if (!h)
        return;
    free(h->epoch);
    h->epoch = NULL;
    h->epochs = 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------- settings and checks */

/* The settings a fit with options o on n_train samples runs with. */
static nn_fit_settings settings_of(const nn_fit_options *o, size_t n_train)
{
    nn_fit_settings s;
    memset(&s, 0, sizeof s);
#define FROM(name, ctype, ftype, off, what, from) s.name = (ctype)(from);
    NN_FIT_SETTINGS(FROM)
#undef FROM
    return s;
}

/* The first setting in which a and b differ, in words, or NULL. */
static const char *settings_differ(const nn_fit_settings *a,
                                   const nn_fit_settings *b)
{
#define DIFFER(name, ctype, ftype, off, what, from) \
    if (a->name != b->name)                         \
        return what;
    NN_FIT_SETTINGS(DIFFER)
#undef DIFFER
    return NULL;
}

/* Resuming requires the settings the position was made with. */
static nn_status check_resume(const nn_model *m, const nn_fit_options *o,
                              size_t n_train, nn_error *err)
{
    const nn_fit_pos *p = &m->pos;
    if (!p->valid)
        return nn_fail(err, NN_ERR_STATE, "fit: nothing to resume (the model "
                       "carries no training position)");
    nn_fit_settings now = settings_of(o, n_train);
    const char *what = settings_differ(&now, &p->set);
    if (what)
        return nn_fail(err, NN_ERR_ARG, "fit: resume needs the same %s as "
                       "the interrupted run", what);
    if (p->epoch > o->epochs)
        return nn_fail(err, NN_ERR_ARG, "fit: the checkpoint is at epoch %d, "
                       "past the %d epochs asked for", p->epoch, o->epochs);
    return NN_OK;
}

static nn_status check_fit_options(const nn_model *m,
                                   const nn_fit_options *o, nn_error *err)
{
    if (o->epochs < 1 || o->epochs > NN_MAX_EPOCHS || o->batch_size < 1)
        return nn_fail(err, NN_ERR_ARG, "fit: epochs must be 1..%d and the "
                       "batch size at least 1", NN_MAX_EPOCHS);
    if (!(o->validation_split >= 0.0f && o->validation_split < 1.0f))
        return nn_fail(err, NN_ERR_ARG,
                       "fit: validation split must be in [0, 1)");
    if ((unsigned)o->lr_schedule > NN_LR_COSINE)
        return nn_fail(err, NN_ERR_ARG, "fit: unknown learning-rate "
                       "schedule %d", (int)o->lr_schedule);
    if (o->lr_schedule == NN_LR_EXPONENTIAL &&
        !(o->lr_decay > 0.0f && o->lr_decay <= 1.0f))
        return nn_fail(err, NN_ERR_ARG, "fit: lr_decay must be in (0, 1]");
    if (o->patience < 0)
        return nn_fail(err, NN_ERR_ARG, "fit: patience must be >= 0");
    if (o->shards < 0 || (o->shards > 1 && (o->shard < 0 ||
                                            o->shard >= o->shards ||
                                            !o->reduce)))
        return nn_fail(err, NN_ERR_ARG, "fit: data-parallel training needs "
                       "0 <= shard < shards and a reduce callback");
    if (o->split_units && (o->shards < 2 || o->gather ||
                           !nn_model_can_split_units(m)))
        return nn_fail(err, NN_ERR_ARG, "fit: split units need shards, no "
                       "gather callback and a model of two dense layers "
                       "(nn_model_can_split_units)");
    if (o->split_rows && !o->split_units)
        return nn_fail(err, NN_ERR_ARG, "fit: split_rows needs split_units");
    if (o->split_claims && !o->split_rows)
        return nn_fail(err, NN_ERR_ARG, "fit: split_claims needs split_rows");
    const nn_augment *a = &o->augment;
    nn_status s = nn_augment_check(a, err);
    if (s != NN_OK)
        return s;
    if (nn_augment_enabled(a) && m->input.rank != 3)
        return nn_fail(err, NN_ERR_ARG, "fit: augmentation needs image "
                       "inputs (height, width, channels)");
    return NN_OK;
}

/* Splits off the validation data: opts->validation_data, or (as Keras)
 * the last validation_split of train, before shuffling. *tr and *val get
 * views; *vd points at the validation data or is NULL. */
static nn_status split_validation(const nn_model *m, const nn_dataset *train,
                                  const nn_fit_options *opts, nn_dataset *tr,
                                  nn_dataset *val, const nn_dataset **vd,
                                  nn_error *err)
{
    *tr = *train;
    memset(tr->owned, 0, sizeof tr->owned);
    if (tr->targets && !tr->target_width && !tr->num_classes)
        tr->target_width = (int)m->layers[m->n_layers - 1].out_size;
    *vd = opts->validation_data;
    if (!*vd && opts->validation_split > 0.0f) {
        size_t nv = (size_t)((double)train->n * opts->validation_split);
        if (nv == 0 || nv >= train->n)
            return nn_fail(err, NN_ERR_ARG, "fit: validation split leaves "
                           "no training or no validation samples");
        *val = nn_dataset_slice(tr, train->n - nv, nv);
        *tr = nn_dataset_slice(tr, 0, train->n - nv);
        *vd = val;
    }
    return *vd ? nn_model_check_data(m, *vd, true, "validation", err) : NN_OK;
}

/* ----------------------------------------------------------- buffers */

/* What the epochs need, all allocated before the first step. */
typedef struct fit_buffers {
    uint32_t *order;        /* (n) the epoch's sample order */
    uint8_t *labels;        /* (B) the batch's labels */
    float *targets;         /* (B, K) the batch's targets, or NULL */
    float *aug;             /* augmentation scratch, or NULL */
    nn_epoch_stats *hist;   /* (epochs) */
    nn_split *split;        /* split units' packed columns, or NULL */
    uint64_t shared;        /* batches shared so far (split_claims' ids) */
} fit_buffers;

static void buffers_free(fit_buffers *b)
{
    free(b->order);
    free(b->labels);
    free(b->targets);
    free(b->aug);
    free(b->hist);
    nn_split_free(b->split);
    memset(b, 0, sizeof *b);
}

static nn_status buffers_alloc(nn_model *m, const nn_dataset *tr, int B,
                               const nn_fit_options *o, fit_buffers *b,
                               nn_error *err)
{
    size_t K = m->layers[m->n_layers - 1].out_size;
    bool aug = nn_augment_enabled(&o->augment);
    memset(b, 0, sizeof *b);
    b->order = malloc(sizeof(uint32_t) * tr->n);
    b->labels = malloc((size_t)B);
    b->targets = tr->targets ? malloc(sizeof(float) * K * (size_t)B) : NULL;
    b->aug = aug ? malloc(sizeof(float) *
                          nn_augment_scratch_floats(m->input, B)) : NULL;
    b->hist = calloc((size_t)o->epochs, sizeof *b->hist);
    float *best = o->patience && !m->best
                      ? malloc(sizeof(float) * m->n_params) : NULL;
    if (!b->order || !b->labels || (tr->targets && !b->targets) ||
        (aug && !b->aug) || !b->hist || (o->patience && !m->best && !best)) {
        buffers_free(b);
        free(best);
        return nn_fail(err, NN_ERR_NOMEM, "fit: out of memory");
    }
    if (best)
        m->best = best;
    nn_status s = o->split_units ? nn_split_begin(m, o, &b->split, err)
                                 : NN_OK;
    if (s != NN_OK)
        buffers_free(b);
    return s;
}

/* ------------------------------------------------------ the epoch's parts */

/* The training position: fresh, or the one the model carries (resume).
 * The model's history array becomes `hist`. */
static void start_position(nn_model *m, const nn_fit_options *o,
                           size_t n_train, nn_epoch_stats *hist)
{
    nn_fit_pos *p = &m->pos;
    if (o->resume) {
        if (p->n_hist > 0)
            memcpy(hist, p->hist, sizeof *hist * (size_t)p->n_hist);
    } else {
        free(p->hist);
        *p = (nn_fit_pos){.valid = true, .base_lr = m->opt.lr,
                          .best = INFINITY, .best_epoch = -1,
                          .set = settings_of(o, n_train)};
        nn_rng_seed(&p->rng, o->seed ^ 0x5eed5eedull);
    }
    free(p->hist);
    p->hist = hist;    /* the model's; the caller's history gets it at the end */
    m->rng = p->rng;
}

/* Each epoch shuffles the previous epoch's order (Fisher-Yates). */
static void shuffle(uint32_t *order, size_t n, nn_rng *r)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = nn_rng_below(r, (uint32_t)(i + 1));
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* The learning rate of epoch e of E (nn_lr_schedule), from base. */
static float epoch_lr(const nn_fit_options *o, float base, int e)
{
    switch (o->lr_schedule) {
    case NN_LR_EXPONENTIAL:
        return (float)(base * pow(o->lr_decay, e));
    case NN_LR_COSINE:
        return (float)(base * 0.5 *
                       (1.0 + cos(3.14159265358979323846 * e / o->epochs)));
    case NN_LR_CONSTANT:
        break;
    }
    return base;
}

/* With split units every shard computes every row. */
static nn_batch_rows rows_of(const nn_fit_options *o, int bs)
{
    return o->split_units ? nn_shard_rows(1, 0, bs)
                          : nn_shard_rows(o->shards, o->shard, bs);
}

/* The rows of batch st from `begin`. */
static int batch_size_at(const nn_dataset *tr, int B, int st)
{
    size_t begin = (size_t)st * (size_t)B;
    return (int)(tr->n - begin < (size_t)B ? tr->n - begin : (size_t)B);
}

/* Augmentation of rows r of a batch at x, drawing for every row. */
static void augment_rows(nn_model *m, const nn_fit_options *o,
                         const fit_buffers *b, float *x, nn_batch_rows r)
{
    if (!b->aug)
        return;
    nn_augment_skip(r.lo, m->input, &o->augment, &m->rng);
    nn_augment_batch(x, r.nb, m->input, &o->augment, &m->rng, b->aug);
    nn_augment_skip(r.bs - r.lo - r.nb, m->input, &o->augment, &m->rng);
}

/* The labels or the targets of samples idx[0..n) into the buffers; the
 * other of *labels, *targets is NULL. */
static void batch_targets(const nn_model *m, const nn_dataset *tr,
                          const uint32_t *idx, int n, fit_buffers *b,
                          const uint8_t **labels, const float **targets)
{
    size_t K = m->layers[m->n_layers - 1].out_size;
    *labels = NULL;
    *targets = NULL;
    if (tr->labels) {
        for (int i = 0; i < n; i++)
            b->labels[i] = tr->labels[idx[i]];
        *labels = b->labels;
    } else {
        for (int i = 0; i < n; i++)
            memcpy(b->targets + (size_t)i * K, tr->targets + idx[i] * K,
                   sizeof(float) * K);
        *targets = b->targets;
    }
}

/* Batch st: this process's rows of it (*rows) into m->x_buf (augmented,
 * drawing for every row of the batch), their labels or targets into the
 * buffers. Fails only when a data set's source does. */
static nn_status gather_batch(nn_model *m, const nn_dataset *tr, int B,
                              int st, const nn_fit_options *o,
                              fit_buffers *b, const uint8_t **labels,
                              const float **targets, nn_batch_rows *rows,
                              nn_error *err)
{
    size_t begin = (size_t)st * (size_t)B;
    int bs = batch_size_at(tr, B, st);
    nn_batch_rows r = *rows = rows_of(o, bs);
    const uint32_t *idx = b->order + begin + r.off;
    nn_status s = nn_model_gather(m, tr, b->order, begin + (size_t)r.off,
                                  r.run, err);
    if (s != NN_OK)
        return s;
    augment_rows(m, o, b, m->x_buf, r);
    batch_targets(m, tr, idx, r.run, b, labels, targets);
    return NN_OK;
}

/* Split units with shared rows (o->split_rows): batch st's slot there. */
static float *shared_batch(const nn_model *m, const nn_fit_options *o,
                           int B, int st)
{
    return o->split_rows + (size_t)(st % 3) * (size_t)B * m->in_size;
}

/* Rows r of batch st into its slot at x, augmented: the generator from
 * the batch's start, drawing for every row of it. */
static nn_status slot_rows(nn_model *m, const nn_dataset *tr, int B, int st,
                           const nn_fit_options *o, const fit_buffers *b,
                           float *x, nn_batch_rows r, nn_error *err)
{
    size_t begin = (size_t)st * (size_t)B;
    nn_status s = r.nb > 0 ? nn_model_gather_to(m, tr, b->order,
                                                begin + (size_t)r.lo, r.nb,
                                                x + (size_t)r.lo * m->in_size,
                                                err)
                           : NN_OK;
    if (s == NN_OK)
        augment_rows(m, o, b, x + (size_t)r.lo * m->in_size, r);
    return s;
}

/* Shared reading (o->split_claims): the next chunk of batch `id`'s rows
 * not yet taken, from its word, or -1 when all `chunks` are. A word holds
 * the batch id (48 bits) and the chunks taken (16); another batch's id
 * there is a batch of three steps before, done. */
static int claim_chunk(uint64_t *word, uint64_t id, int chunks)
{
    uint64_t w = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    for (;;) {
        int next = (w >> 16) == id ? (int)(w & 0xffff) : 0;
        if (next >= chunks)
            return -1;
        uint64_t claimed = id << 16 | (uint64_t)(next + 1);
        if (__atomic_compare_exchange_n(word, &w, claimed, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return next;
    }
}

/* Rows a claim reads: 8 (16 claims for a batch of 128), more when a
 * batch would have more claims than a word counts. */
static int claim_rows(int bs)
{
    int per = (bs + 0xfffe) / 0xffff;
    return per > 8 ? per : 8;
}

/* This shard's rows of batch st into its slot, augmented; the other
 * shards read them after the next reduce. With o->split_claims the
 * shards take chunks of the batch as they come, the shard ahead taking
 * more: the rows and their draws are the same whoever reads them. */
static nn_status share_rows(nn_model *m, const nn_dataset *tr, int B,
                            int st, const nn_fit_options *o, fit_buffers *b,
                            nn_error *err)
{
    int bs = batch_size_at(tr, B, st);
    float *x = shared_batch(m, o, B, st);
    if (!o->split_claims)
        return slot_rows(m, tr, B, st, o, b, x,
                         nn_shard_rows(o->shards, o->shard, bs), err);
    nn_rng start = m->rng;
    uint64_t id = ++b->shared, *word = &o->split_claims[st % 3];
    int per = claim_rows(bs), chunks = (bs + per - 1) / per, c;
    while ((c = claim_chunk(word, id, chunks)) >= 0) {
        int lo = c * per;
        nn_batch_rows r = {.bs = bs, .lo = lo,
                        .nb = bs - lo < per ? bs - lo : per};
        m->rng = start;
        nn_status s = slot_rows(m, tr, B, st, o, b, x, r, err);
        if (s != NN_OK)
            return s;
    }
    m->rng = start;   /* past the batch's draws, as if this shard made them */
    if (b->aug)
        nn_augment_skip(bs, m->input, &o->augment, &m->rng);
    return NN_OK;
}

/* A split-units step on batch st, whose rows the shards share: this
 * shard's rows of the next batch are read between the forward pass and
 * the sum of z, which shares them. *pos gets the generator as it was
 * before those rows' draws (the position after this step). */
static nn_status shared_split_step(nn_model *m, const nn_dataset *tr, int B,
                                   int st, int steps, float lr,
                                   const nn_fit_options *o, fit_buffers *b,
                                   double *sums, nn_rng *pos, nn_error *err)
{
    int bs = batch_size_at(tr, B, st);
    const uint8_t *labels;
    const float *targets;
    batch_targets(m, tr, b->order + (size_t)st * (size_t)B, bs, b, &labels,
                  &targets);
    const float *x = nn_model_forward_input(m, shared_batch(m, o, B, st),
                                            bs);
    nn_split_forward(m, b->split, x, bs);
    *pos = m->rng;
    nn_status s = st + 1 < steps ? share_rows(m, tr, B, st + 1, o, b, err)
                                 : NN_OK;
    if (s == NN_OK)
        s = nn_split_finish(m, b->split, o, x, labels, targets, bs, lr,
                            sums, err);
    return s;
}

/* After an epoch, what the shards updated in parts onto every shard, so
 * that evaluation and a checkpoint see all of it: split units' weights
 * and optimizer state, or the sharded optimizer's state. */
static nn_status join_parts(nn_model *m, const nn_fit_options *o,
                            nn_split *sp, nn_error *err)
{
    return sp ? nn_split_join(m, sp, o, err)
              : nn_shard_gather_state(m, o, err);
}

/* The steps of epoch e from the position's step on, at rate lr;
 * *go_on false when the batch callback asked to stop. Fails only when a
 * data-parallel reduce or a data set's source does. */
static nn_status run_steps(nn_model *m, const nn_dataset *tr, int B,
                           int steps, int e, float lr,
                           const nn_fit_options *o, fit_buffers *b,
                           bool *go_on, nn_error *err)
{
    nn_fit_pos *p = &m->pos;
    *go_on = true;
    bool shared = o->split_units && o->split_rows;
    if (shared && p->step < steps) {   /* the first batch's rows */
        double none[1] = {0.0};
        nn_status s = share_rows(m, tr, B, p->step, o, b, err);
        if (s != NN_OK || (s = o->reduce(o->user, NULL, 0, none, 0, err)))
            return s;
    }
    for (int st = p->step; st < steps; st++) {
        const uint8_t *labels;
        const float *targets;
        nn_batch_rows r;
        double sums[3];
        nn_rng pos = m->rng;
        nn_status s;
        if (shared) {
            if ((s = shared_split_step(m, tr, B, st, steps, lr, o, b, sums,
                                       &pos, err)) != NN_OK)
                return s;
        } else if ((s = gather_batch(m, tr, B, st, o, b, &labels, &targets,
                                     &r, err)) != NN_OK) {
            return s;
        } else if (o->split_units) {
            if ((s = nn_split_step(m, b->split, o, labels, targets, r.bs,
                                   lr, sums, err)) != NN_OK)
                return s;
        } else if (o->shards > 1) {
            if ((s = nn_shard_step(m, o, labels, targets, r, lr, sums,
                                   err)) != NN_OK)
                return s;
        } else {
            int ok = 0;
            sums[0] = nn_model_step(m, NULL, labels, targets, r.bs, lr, true,
                                    &ok) * r.bs;
            sums[1] = ok;
            sums[2] = r.bs;
        }
        p->loss_sum += sums[0];
        p->correct += (uint64_t)sums[1];
        p->seen += (uint64_t)sums[2];
        p->step = st + 1;
        p->rng = shared ? pos : m->rng;
        if (o->on_batch &&
            !o->on_batch(o->user, e, st + 1, steps,
                         p->loss_sum / (double)p->seen,
                         (double)p->correct / (double)p->seen)) {
            *go_on = false;
            break;
        }
    }
    return NN_OK;
}

/* The epoch's statistics: the training sums of the position, validation
 * loss and accuracy (NAN without validation data), seconds since t0. */
static nn_status epoch_stats(nn_model *m, const nn_dataset *vd, double t0,
                             nn_epoch_stats *es, nn_error *err)
{
    const nn_fit_pos *p = &m->pos;
    *es = (nn_epoch_stats){.loss = p->loss_sum / (double)p->seen,
                           .accuracy = (double)p->correct / (double)p->seen,
                           .val_loss = NAN, .val_accuracy = NAN};
    if (vd) {
        nn_eval ev;
        nn_status s = nn_model_evaluate(m, vd, &ev, NULL, err);
        if (s != NN_OK)
            return s;
        es->val_loss = ev.loss;
        es->val_accuracy = ev.accuracy;
    }
    es->seconds = now_seconds() - t0;
    return NN_OK;
}

/* Keras' EarlyStopping (min_delta 0, restore_best_weights): true when
 * `patience` epochs went by without a lower monitored loss. */
static bool early_stopping(nn_model *m, int e, double watched)
{
    nn_fit_pos *p = &m->pos;
    if (watched < p->best) {
        p->best = watched;
        p->best_epoch = e;
        p->wait = 0;
        memcpy(m->best, m->params, sizeof(float) * m->n_params);
        return false;
    }
    return ++p->wait >= p->set.patience;
}

/* Records epoch e's statistics and moves the position to the next epoch. */
static void end_epoch(nn_fit_pos *p, int e, const nn_epoch_stats *es)
{
    p->hist[e] = *es;
    p->n_hist = e + 1;
    p->epoch = e + 1;
    p->step = 0;
    p->loss_sum = 0.0;
    p->correct = p->seen = 0;
}

/* The history: handed over when fit finished, else copied, since the
 * model keeps its own for a checkpoint. A finished fit drops the position
 * and restores early stopping's best weights. */
static void finish(nn_model *m, nn_status s, nn_history *history)
{
    nn_fit_pos *p = &m->pos;
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i].row0 = 0;
    if (history) {
        size_t bytes = sizeof *p->hist * (size_t)p->n_hist;
        history->epoch = s == NN_OK ? p->hist : malloc(bytes ? bytes : 1);
        if (history->epoch && s != NN_OK)
            memcpy(history->epoch, p->hist, bytes);
        history->epochs = history->epoch ? p->n_hist : 0;
    }
    if (s == NN_OK) {
        if (p->set.patience && p->best_epoch >= 0)
            memcpy(m->params, m->best, sizeof(float) * m->n_params);
        if (!history)
            free(p->hist);
        p->hist = NULL;
        p->n_hist = 0;
        p->valid = false;
    }
}

/* ---------------------------------------------------------------- fit */

nn_status nn_model_fit(nn_model *m, const nn_dataset *train,
                       const nn_fit_options *opts, nn_history *history,
                       nn_error *err)
{
    if (history)
        *history = (nn_history){0};
    if (!m || !train)
        return nn_fail(err, NN_ERR_ARG, "nn_model_fit: %s is NULL",
                       !m ? "model" : "train");
    nn_dataset tr, val;
    const nn_dataset *vd;
    nn_status s;
    if ((s = nn_model_check_compiled(m, err)) ||
        (s = nn_model_check_data(m, train, true, "fit", err)) ||
        (s = check_fit_options(m, opts, err)))
        return s;
    if (train->n > UINT32_MAX)
        return nn_fail(err, NN_ERR_LIMIT, "fit: too many samples");
    if ((s = split_validation(m, train, opts, &tr, &val, &vd, err)) ||
        (opts->resume && (s = check_resume(m, opts, tr.n, err))))
        return s;
    int B = (size_t)opts->batch_size > tr.n ? (int)tr.n : opts->batch_size;
    fit_buffers buf;
    if ((s = nn_model_reserve(m, B, err)) ||
        (s = buffers_alloc(m, &tr, B, opts, &buf, err)))
        return s;
    start_position(m, opts, tr.n, buf.hist);
    buf.hist = NULL;   /* the position owns it now */
    nn_fit_pos *p = &m->pos;

    /* A resumed run replays the shuffles of the epochs before its own. */
    for (size_t i = 0; i < tr.n; i++)
        buf.order[i] = (uint32_t)i;
    nn_rng shuffle_rng;
    nn_rng_seed(&shuffle_rng, opts->seed);
    int steps = (int)((tr.n + (size_t)B - 1) / (size_t)B);
    bool stop_early = false;
    for (int e = 0; e < opts->epochs && s == NN_OK && !stop_early; e++) {
        if (opts->shuffle)
            shuffle(buf.order, tr.n, &shuffle_rng);
        if (e < p->epoch)
            continue;                          /* done before the resume */
        double t0 = now_seconds();
        float lr = epoch_lr(opts, p->base_lr, e);
        bool go_on;
        if ((s = run_steps(m, &tr, B, steps, e, lr, opts, &buf, &go_on,
                           err)) != NN_OK ||
            (s = join_parts(m, opts, buf.split, err)) != NN_OK)
            break;
        if (!go_on && p->step < steps) {
            s = nn_fail(err, NN_ERR_INTERRUPTED,
                        "training stopped during epoch %d", e + 1);
            break;
        }
        nn_epoch_stats es;
        if ((s = epoch_stats(m, vd, t0, &es, err)) != NN_OK)
            break;
        if (opts->patience)
            stop_early = early_stopping(m, e, vd ? es.val_loss : es.loss);
        end_epoch(p, e, &es);
        if (!go_on || (opts->on_epoch && !opts->on_epoch(opts->user, e, &es)))
            s = nn_fail(err, NN_ERR_INTERRUPTED,
                        "training stopped after epoch %d", e + 1);
    }
    finish(m, s, history);
    buffers_free(&buf);
    return s;
}

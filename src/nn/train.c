/*
 * train.c - compile, the training step, fit, evaluate and predict.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/augment.h"
#include "nn/internal.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"

/* ------------------------------------------------------------ compile */

static bool optimizer_valid(const nn_optimizer *o)
{
    if (!(o->lr > 0.0f) || !isfinite(o->lr))
        return false;
    switch (o->kind) {
    case NN_OPT_SGD: return o->momentum >= 0.0f && o->momentum < 1.0f;
    case NN_OPT_RMSPROP:
        return o->rho >= 0.0f && o->rho < 1.0f && o->epsilon > 0.0f;
    case NN_OPT_ADAM:
        return o->beta1 >= 0.0f && o->beta1 < 1.0f && o->beta2 >= 0.0f &&
               o->beta2 < 1.0f && o->epsilon > 0.0f;
    }
    return false;
}

nn_status nn_model_compile(nn_model *m, nn_loss loss, nn_optimizer opt,
                           nn_error *err)
{
    if (!m->params)
        return nn_fail(err, NN_ERR_STATE,
                       "compile: initialise the model first");
    if (loss < NN_LOSS_CATEGORICAL_CROSSENTROPY || loss > NN_LOSS_MSE)
        return nn_fail(err, NN_ERR_ARG, "compile: unknown loss %d",
                       (int)loss);
    if (!optimizer_valid(&opt))
        return nn_fail(err, NN_ERR_ARG,
                       "compile: invalid optimizer settings for %s",
                       nn_optimizer_name(opt.kind));
    nn_layer *last = &m->layers[m->n_layers - 1];
    bool xent = loss != NN_LOSS_MSE;
    if (xent && (last->out.rank != 1 ||
                 last->spec.activation != NN_ACT_SOFTMAX ||
                 (last->spec.kind != NN_LAYER_DENSE &&
                  last->spec.kind != NN_LAYER_CONV2D)))
        return nn_fail(err, NN_ERR_ARG, "compile: %s needs a last layer "
                       "with softmax activation", nn_loss_name(loss));
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i].dy_is_preact = false;
    last->dy_is_preact = xent;
    m->loss = loss;
    m->opt = opt;
    m->opt_step = 0;
    memset(m->opt_state, 0, sizeof(float) * 2 * (m->n_params ? m->n_params : 1));
    m->compiled = true;
    return NN_OK;
}

nn_loss nn_model_loss(const nn_model *m) { return m->loss; }
nn_optimizer nn_model_optimizer(const nn_model *m) { return m->opt; }

/* ------------------------------------------------------- training step */

static void optimizer_step(nn_model *m)
{
    m->opt_step++;
    nn_optimizer_step(&m->opt, m->params, m->grads, m->opt_state,
                      m->opt_state + m->n_params, m->n_params, m->opt_step);
}

/* Forward, loss and backward for B samples in m->x_buf (or x), then the
 * optimizer update when `apply`. */
static double step(nn_model *m, const float *x, const uint8_t *labels,
                   const float *targets, int B, bool apply, int *correct)
{
    const float *in0 = x ? x : m->x_buf;
    const float *out = nn_model_forward(m, in0, B, true);
    int K = (int)m->layers[m->n_layers - 1].out_size;
    double loss = nn_loss_eval(m->loss, out, labels, targets, B, K, m->g[0],
                               correct);
    int cur = 0;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        nn_layer *l = &m->layers[i];
        const float *xin = i ? m->acts[i - 1] : in0;
        float *dx = i ? m->g[cur ^ 1] : NULL;
        l->ops->backward(l, xin, m->acts[i], m->g[cur], dx, B);
        cur ^= 1;
    }
    if (apply)
        optimizer_step(m);
    return loss;
}

static nn_status check_ready(const nn_model *m, nn_error *err)
{
    if (!m->compiled)
        return nn_fail(err, NN_ERR_STATE, "model is not compiled");
    return NN_OK;
}

nn_status nn_model_train_batch(nn_model *m, const float *x,
                               const uint8_t *labels, const float *targets,
                               int B, bool apply, double *loss,
                               int *correct, nn_error *err)
{
    nn_status s = check_ready(m, err);
    if (s != NN_OK)
        return s;
    if (B < 1 || (!labels && !targets))
        return nn_fail(err, NN_ERR_ARG, "train_batch: need B >= 1 and "
                       "labels or targets");
    size_t K = m->layers[m->n_layers - 1].out_size;
    for (int b = 0; labels && b < B; b++)
        if (labels[b] >= K)
            return nn_fail(err, NN_ERR_ARG, "train_batch: label %d of "
                           "sample %d is out of range for %zu outputs",
                           labels[b], b, K);
    if ((s = nn_model_reserve(m, B, err)) != NN_OK)
        return s;
    double l = step(m, x, labels, targets, B, apply, correct);
    if (loss)
        *loss = l;
    return NN_OK;
}

/* --------------------------------------------------------------- data */

static nn_status check_data(const nn_model *m, const nn_dataset *d,
                            bool need_targets, const char *what,
                            nn_error *err)
{
    if (!d || d->n == 0)
        return nn_fail(err, NN_ERR_ARG, "%s: empty data set", what);
    if (nn_shape_size(d->shape) != m->in_size)
        return nn_fail(err, NN_ERR_SHAPE, "%s: samples have %zu values, the "
                       "model expects %zu", what, nn_shape_size(d->shape),
                       m->in_size);
    if (!d->x_u8 == !d->x_f32)
        return nn_fail(err, NN_ERR_ARG, "%s: need exactly one of x_u8, x_f32",
                       what);
    if (need_targets && !d->labels && !d->targets)
        return nn_fail(err, NN_ERR_ARG, "%s: no labels", what);
    size_t K = m->layers[m->n_layers - 1].out_size;
    if (d->labels) {
        for (size_t i = 0; i < d->n; i++)
            if (d->labels[i] >= K)
                return nn_fail(err, NN_ERR_ARG, "%s: label %d of sample %zu "
                               "is out of range for %zu outputs", what,
                               d->labels[i], i, K);
    }
    return NN_OK;
}

/* Targets of samples [begin, begin + B) in dataset order. */
static const float *targets_at(const nn_dataset *d, size_t begin, size_t K)
{
    return d->targets ? d->targets + begin * K : NULL;
}

/* A batch size for inference that keeps the workspace near 64 MiB. */
static int eval_batch(const nn_model *m)
{
    size_t per = m->in_size * 3;
    for (int i = 0; i < m->n_layers; i++)
        per += m->layers[i].out_size + m->layers[i].scratch_per_sample;
    size_t b = ((size_t)64 << 20) / (per * sizeof(float));
    b = b < 1 ? 1 : b > 1024 ? 1024 : b;
    return (int)b > m->ws_batch ? (int)b : m->ws_batch;
}

nn_status nn_model_evaluate(nn_model *m, const nn_dataset *data,
                            nn_eval *out, uint32_t *confusion, nn_error *err)
{
    nn_status s;
    if ((s = check_ready(m, err)) || (s = check_data(m, data, true,
                                                     "evaluate", err)))
        return s;
    int EB = eval_batch(m);
    if ((s = nn_model_reserve(m, EB, err)) != NN_OK)
        return s;
    size_t K = m->layers[m->n_layers - 1].out_size;
    if (confusion)
        memset(confusion, 0, sizeof(uint32_t) * K * K);
    double total = 0.0;
    size_t correct = 0;
    for (size_t begin = 0; begin < data->n; begin += (size_t)EB) {
        int B = (int)(data->n - begin < (size_t)EB ? data->n - begin : (size_t)EB);
        nn_model_gather(m, data, NULL, begin, B);
        const float *p = nn_model_forward(m, NULL, B, false);
        const uint8_t *lab = data->labels ? data->labels + begin : NULL;
        int ok = 0;
        total += nn_loss_eval(m->loss, p, lab, targets_at(data, begin, K), B,
                              (int)K, NULL, &ok) * B;
        correct += (size_t)ok;
        if (confusion) {
            for (int b = 0; b < B; b++) {
                const float *row = p + (size_t)b * K;
                size_t pred = 0, truth = 0;
                for (size_t k = 1; k < K; k++)
                    if (row[k] > row[pred])
                        pred = k;
                if (lab) {
                    truth = lab[b];
                } else {
                    const float *t = data->targets + (begin + b) * K;
                    for (size_t k = 1; k < K; k++)
                        if (t[k] > t[truth])
                            truth = k;
                }
                confusion[truth * K + pred]++;
            }
        }
    }
    out->loss = total / (double)data->n;
    out->accuracy = (double)correct / (double)data->n;
    out->n = data->n;
    return NN_OK;
}

nn_status nn_model_predict(nn_model *m, const float *x, size_t n, float *y,
                           nn_error *err)
{
    nn_dataset d = {.n = n, .shape = m->input, .x_f32 = x, .scale = 1.0f};
    return nn_model_predict_dataset(m, &d, y, err);
}

nn_status nn_model_predict_dataset(nn_model *m, const nn_dataset *data,
                                   float *y, nn_error *err)
{
    if (!m->params)
        return nn_fail(err, NN_ERR_STATE, "model is not initialised");
    nn_status s = check_data(m, data, false, "predict", err);
    if (s != NN_OK)
        return s;
    int EB = eval_batch(m);
    if ((s = nn_model_reserve(m, EB, err)) != NN_OK)
        return s;
    size_t K = m->layers[m->n_layers - 1].out_size;
    for (size_t begin = 0; begin < data->n; begin += (size_t)EB) {
        int B = (int)(data->n - begin < (size_t)EB ? data->n - begin : (size_t)EB);
        const float *p;
        if (data->x_f32) /* read the caller's floats in place */
            p = nn_model_forward(m, data->x_f32 + begin * m->in_size, B,
                                 false);
        else {
            nn_model_gather(m, data, NULL, begin, B);
            p = nn_model_forward(m, NULL, B, false);
        }
        memcpy(y + begin * K, p, sizeof(float) * K * (size_t)B);
    }
    return NN_OK;
}

/* ---------------------------------------------------------------- fit */

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

/* The settings a fit runs with, as the position records them. */
static void pos_settings(nn_fit_pos *p, const nn_fit_options *o,
                         size_t n_train)
{
    p->seed = o->seed;
    p->batch_size = o->batch_size;
    p->n_train = (uint32_t)n_train;
    p->lr_schedule = o->lr_schedule;
    p->lr_decay = o->lr_schedule == NN_LR_EXPONENTIAL ? o->lr_decay : 0.0f;
    p->epochs = o->lr_schedule == NN_LR_COSINE ? o->epochs : 0;
    p->validation_split = o->validation_data ? -1.0f : o->validation_split;
    p->patience = o->patience;
    p->augment = o->augment;
}

/* Resuming requires the settings the position was made with. */
static nn_status check_resume(const nn_model *m, const nn_fit_options *o,
                              size_t n_train, nn_error *err)
{
    const nn_fit_pos *p = &m->pos;
    if (!p->valid)
        return nn_fail(err, NN_ERR_STATE, "fit: nothing to resume (the model "
                       "carries no training position)");
    nn_fit_pos now = {0};
    pos_settings(&now, o, n_train);
    const char *what = now.seed != p->seed ? "seed"
        : now.batch_size != p->batch_size ? "batch size"
        : now.n_train != p->n_train ? "number of training samples"
        : now.lr_schedule != p->lr_schedule || now.lr_decay != p->lr_decay
          ? "learning-rate schedule"
        : now.epochs != p->epochs ? "number of epochs (cosine schedule)"
        : now.validation_split != p->validation_split ? "validation data"
        : now.patience != p->patience ? "patience"
        : memcmp(&now.augment, &p->augment, sizeof now.augment) ?
          "augmentation" : NULL;
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
    const nn_augment *a = &o->augment;
    nn_status s = nn_augment_check(a, err);
    if (s != NN_OK)
        return s;
    if (nn_augment_enabled(a) && m->input.rank != 3)
        return nn_fail(err, NN_ERR_ARG, "fit: augmentation needs image "
                       "inputs (height, width, channels)");
    return NN_OK;
}

/* A data-parallel step (nn_fit_options.shards) on the `run` rows already
 * in m->x_buf, which are this shard's `nb` rows of a batch of bs (run is 1
 * and nb 0 for a shard with no rows: it runs one row so that its generator
 * draws as the others' do, and contributes nothing). The gradients and
 * non-trainable state go to opts->reduce as this shard's share; the summed
 * state is put back and every shard takes the same optimizer step.
 * stats (3): loss sum, correct, rows, summed over the shards. */
static nn_status shard_step(nn_model *m, const nn_fit_options *o,
                            const uint8_t *labels, const float *targets,
                            int run, int nb, int bs, double *stats,
                            nn_error *err)
{
    int ok = 0;
    double l = step(m, NULL, labels, targets, run, false, &ok);
    float share = (float)nb / (float)bs;
    for (int i = 0; i < m->n_layers; i++) {
        nn_layer *ly = &m->layers[i];
        size_t trained = ly->n_params - ly->n_nontrainable;
        for (size_t k = 0; k < trained; k++)
            ly->dw[k] *= share;
        for (size_t k = trained; k < ly->n_params; k++)
            ly->dw[k] = ly->w[k] * share;
    }
    stats[0] = nb ? l * nb : 0.0;
    stats[1] = nb ? ok : 0;
    stats[2] = nb;
    nn_status s = o->reduce(o->user, m->grads, m->n_params, stats, 3, err);
    if (s != NN_OK)
        return s;
    for (int i = 0; i < m->n_layers; i++) {
        nn_layer *ly = &m->layers[i];
        for (size_t k = ly->n_params - ly->n_nontrainable; k < ly->n_params;
             k++) {
            ly->w[k] = ly->dw[k];
            ly->dw[k] = 0.0f;
        }
    }
    optimizer_step(m);
    return NN_OK;
}

nn_status nn_model_fit(nn_model *m, const nn_dataset *train,
                       const nn_fit_options *opts, nn_history *history,
                       nn_error *err)
{
    if (history)
        *history = (nn_history){0};
    nn_status s;
    if ((s = check_ready(m, err)) ||
        (s = check_data(m, train, true, "fit", err)) ||
        (s = check_fit_options(m, opts, err)))
        return s;
    if (train->n > UINT32_MAX)
        return nn_fail(err, NN_ERR_LIMIT, "fit: too many samples");

    /* Keras takes the validation split from the end, before shuffling. */
    nn_dataset tr = *train, val = {0};
    const nn_dataset *vd = opts->validation_data;
    if (!vd && opts->validation_split > 0.0f) {
        size_t nv = (size_t)((double)train->n * opts->validation_split);
        if (nv == 0 || nv >= train->n)
            return nn_fail(err, NN_ERR_ARG, "fit: validation split leaves "
                           "no training or no validation samples");
        tr = nn_dataset_slice(train, 0, train->n - nv);
        val = nn_dataset_slice(train, train->n - nv, nv);
        vd = &val;
    }
    if (vd && (s = check_data(m, vd, true, "validation", err)))
        return s;
    if (opts->resume && (s = check_resume(m, opts, tr.n, err)))
        return s;

    int B = opts->batch_size;
    if ((size_t)B > tr.n)
        B = (int)tr.n;
    if ((s = nn_model_reserve(m, B, err)) != NN_OK)
        return s;
    size_t K = m->layers[m->n_layers - 1].out_size;
    bool aug = nn_augment_enabled(&opts->augment);
    /* Everything the epochs need is allocated here, none in the steps. */
    uint32_t *order = malloc(sizeof(uint32_t) * tr.n);
    uint8_t *lab = malloc((size_t)B);                   /* (B) */
    float *tbuf = tr.targets ? malloc(sizeof(float) * K * (size_t)B)
                             : NULL;                    /* (B, K) */
    float *ascratch = aug ? malloc(sizeof(float) *
                                   nn_augment_scratch_floats(m->input, B))
                          : NULL;
    nn_epoch_stats *hist = calloc((size_t)opts->epochs, sizeof *hist);
    float *best = opts->patience && !m->best
                      ? malloc(sizeof(float) * m->n_params) : NULL;
    if (!order || !lab || (tr.targets && !tbuf) || (aug && !ascratch) ||
        !hist || (opts->patience && !m->best && !best)) {
        free(order);
        free(lab);
        free(tbuf);
        free(ascratch);
        free(hist);
        free(best);
        return nn_fail(err, NN_ERR_NOMEM, "fit: out of memory");
    }
    if (best)
        m->best = best;

    /* The training position: fresh, or the one the model carries. */
    nn_fit_pos *p = &m->pos;
    if (opts->resume) {
        if (p->n_hist > 0)
            memcpy(hist, p->hist, sizeof *hist * (size_t)p->n_hist);
    } else {
        free(p->hist);
        *p = (nn_fit_pos){.valid = true, .base_lr = m->opt.lr,
                          .best = INFINITY, .best_epoch = -1};
        pos_settings(p, opts, tr.n);
        nn_rng_seed(&p->rng, opts->seed ^ 0x5eed5eedull);
    }
    free(p->hist);
    p->hist = hist;    /* the model's; the caller's history gets it at the end */

    /* Each epoch shuffles the previous epoch's order; a resumed run
     * replays the shuffles of the epochs before its own. */
    for (size_t i = 0; i < tr.n; i++)
        order[i] = (uint32_t)i;
    nn_rng shuffle_rng;
    nn_rng_seed(&shuffle_rng, opts->seed);
    m->rng = p->rng;

    int steps = (int)((tr.n + (size_t)B - 1) / (size_t)B);
    bool sharded = opts->shards > 1;
    bool early_stop = false;
    s = NN_OK;
    for (int e = 0; e < opts->epochs && s == NN_OK && !early_stop; e++) {
        if (opts->shuffle)
            for (size_t i = tr.n - 1; i > 0; i--) {
                size_t j = nn_rng_below(&shuffle_rng, (uint32_t)(i + 1));
                uint32_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        if (e < p->epoch)
            continue;                          /* done before the resume */
        if (opts->lr_schedule == NN_LR_EXPONENTIAL)
            m->opt.lr = (float)(p->base_lr * pow(opts->lr_decay, e));
        else if (opts->lr_schedule == NN_LR_COSINE)
            m->opt.lr = (float)(p->base_lr * 0.5 *
                                (1.0 + cos(3.14159265358979323846 * e /
                                           opts->epochs)));
        double t0 = now_seconds();
        bool stop = false;
        for (int st = p->step; st < steps && !stop; st++) {
            size_t begin = (size_t)st * (size_t)B;
            int bs = (int)(tr.n - begin < (size_t)B ? tr.n - begin : (size_t)B);
            /* This process's rows [lo, lo + nb) of the batch: all of it,
             * or its shard's share; `run` rows are computed. */
            int lo = sharded ? (int)((long)bs * opts->shard / opts->shards)
                             : 0;
            int nb = sharded ? (int)((long)bs * (opts->shard + 1) /
                                     opts->shards) - lo : bs;
            int run = nb > 0 ? nb : 1, off = nb > 0 ? lo : 0;
            nn_model_gather(m, &tr, order, begin + (size_t)off, run);
            if (aug && nb > 0) {
                nn_augment_skip(lo, m->input, &opts->augment, &m->rng);
                nn_augment_batch(m->x_buf, nb, m->input, &opts->augment,
                                 &m->rng, ascratch);
                nn_augment_skip(bs - lo - nb, m->input, &opts->augment,
                                &m->rng);
            } else if (aug) {
                nn_augment_skip(bs, m->input, &opts->augment, &m->rng);
            }
            const uint8_t *labels = NULL;
            const float *targets = NULL;
            size_t first = begin + (size_t)off;
            if (tr.labels) {
                for (int b = 0; b < run; b++)
                    lab[b] = tr.labels[order[first + (size_t)b]];
                labels = lab;
            } else {
                for (int b = 0; b < run; b++)
                    memcpy(tbuf + (size_t)b * K,
                           tr.targets + order[first + (size_t)b] * K,
                           sizeof(float) * K);
                targets = tbuf;
            }
            if (sharded) {
                double sum[3];
                for (int i = 0; i < m->n_layers; i++)
                    m->layers[i].row0 = off;
                if ((s = shard_step(m, opts, labels, targets, run, nb, bs,
                                    sum, err)) != NN_OK)
                    break;
                p->loss_sum += sum[0];
                p->correct += (uint64_t)sum[1];
                p->seen += (uint64_t)sum[2];
            } else {
                int ok = 0;
                double l = step(m, NULL, labels, targets, bs, true, &ok);
                p->loss_sum += l * bs;
                p->correct += (uint64_t)ok;
                p->seen += (uint64_t)bs;
            }
            p->step = st + 1;
            p->rng = m->rng;
            if (opts->on_batch &&
                !opts->on_batch(opts->user, e, st + 1, steps,
                                p->loss_sum / (double)p->seen,
                                (double)p->correct / (double)p->seen))
                stop = true;
        }
        if (s != NN_OK)
            break;                             /* the reduction failed */
        if (stop && p->step < steps) {
            s = nn_fail(err, NN_ERR_INTERRUPTED,
                        "training stopped during epoch %d", e + 1);
            break;
        }
        nn_epoch_stats es = {.loss = p->loss_sum / (double)p->seen,
                             .accuracy = (double)p->correct /
                                         (double)p->seen,
                             .val_loss = NAN, .val_accuracy = NAN};
        if (vd) {
            nn_eval ev;
            if ((s = nn_model_evaluate(m, vd, &ev, NULL, err)) != NN_OK)
                break;
            es.val_loss = ev.loss;
            es.val_accuracy = ev.accuracy;
        }
        es.seconds = now_seconds() - t0;
        if (opts->patience) {   /* Keras' EarlyStopping, min_delta 0 */
            double watched = vd ? es.val_loss : es.loss;
            if (watched < p->best) {
                p->best = watched;
                p->best_epoch = e;
                p->wait = 0;
                memcpy(m->best, m->params, sizeof(float) * m->n_params);
            } else if (++p->wait >= opts->patience) {
                early_stop = true;
            }
        }
        hist[e] = es;
        p->n_hist = e + 1;
        p->epoch = e + 1;
        p->step = 0;
        p->loss_sum = 0.0;
        p->correct = p->seen = 0;
        if (stop || (opts->on_epoch && !opts->on_epoch(opts->user, e, &es)))
            s = nn_fail(err, NN_ERR_INTERRUPTED,
                        "training stopped after epoch %d", e + 1);
    }
    /* The history: handed over when fit finished, else copied, since the
     * model keeps its own for a checkpoint. */
    if (history) {
        size_t bytes = sizeof *hist * (size_t)p->n_hist;
        history->epoch = s == NN_OK ? hist : malloc(bytes ? bytes : 1);
        if (history->epoch && s != NN_OK)
            memcpy(history->epoch, hist, bytes);
        history->epochs = history->epoch ? p->n_hist : 0;
    }
    if (s == NN_OK) {   /* finished: the position goes */
        if (opts->patience && p->best_epoch >= 0)
            memcpy(m->params, m->best, sizeof(float) * m->n_params);
        if (!history)
            free(hist);
        p->hist = NULL;
        p->n_hist = 0;
        p->valid = false;
    }
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i].row0 = 0;
    free(order);
    free(lab);
    free(tbuf);
    free(ascratch);
    return s;
}

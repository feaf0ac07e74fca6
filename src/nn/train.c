/*
 * train.c - compile, the training step, fit, evaluate and predict.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    if (apply) {
        m->opt_step++;
        nn_optimizer_step(&m->opt, m->params, m->grads, m->opt_state,
                          m->opt_state + m->n_params, m->n_params,
                          m->opt_step);
    }
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

nn_status nn_model_fit(nn_model *m, const nn_dataset *train,
                       const nn_fit_options *opts, nn_history *history,
                       nn_error *err)
{
    if (history)
        *history = (nn_history){0};
    nn_status s;
    if ((s = check_ready(m, err)) ||
        (s = check_data(m, train, true, "fit", err)))
        return s;
    if (opts->epochs < 1 || opts->batch_size < 1)
        return nn_fail(err, NN_ERR_ARG, "fit: epochs and batch size must be "
                       "at least 1");
    if (!(opts->validation_split >= 0.0f && opts->validation_split < 1.0f))
        return nn_fail(err, NN_ERR_ARG,
                       "fit: validation split must be in [0, 1)");
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

    int B = opts->batch_size;
    if ((size_t)B > tr.n)
        B = (int)tr.n;
    if ((s = nn_model_reserve(m, B, err)) != NN_OK)
        return s;
    size_t K = m->layers[m->n_layers - 1].out_size;
    /* Everything the epochs need is allocated here, none in the steps. */
    uint32_t *order = malloc(sizeof(uint32_t) * tr.n);
    uint8_t *lab = malloc((size_t)B);                   /* (B) */
    float *tbuf = tr.targets ? malloc(sizeof(float) * K * (size_t)B)
                             : NULL;                    /* (B, K) */
    nn_epoch_stats *hist = history ? calloc((size_t)opts->epochs,
                                            sizeof *hist) : NULL;
    if (!order || !lab || (tr.targets && !tbuf) || (history && !hist)) {
        free(order);
        free(lab);
        free(tbuf);
        free(hist);
        return nn_fail(err, NN_ERR_NOMEM, "fit: out of memory");
    }
    for (size_t i = 0; i < tr.n; i++)
        order[i] = (uint32_t)i;
    nn_rng shuffle_rng;
    nn_rng_seed(&shuffle_rng, opts->seed);
    nn_rng_seed(&m->rng, opts->seed ^ 0x5eed5eedull);
    if (history)
        history->epoch = hist;

    int steps = (int)((tr.n + (size_t)B - 1) / (size_t)B);
    s = NN_OK;
    for (int e = 0; e < opts->epochs && s == NN_OK; e++) {
        double t0 = now_seconds(), loss_sum = 0.0;
        size_t seen = 0, correct = 0;
        if (opts->shuffle)
            for (size_t i = tr.n - 1; i > 0; i--) {
                size_t j = nn_rng_below(&shuffle_rng, (uint32_t)(i + 1));
                uint32_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        bool stop = false;
        for (int st = 0; st < steps; st++) {
            size_t begin = (size_t)st * (size_t)B;
            int bs = (int)(tr.n - begin < (size_t)B ? tr.n - begin : (size_t)B);
            nn_model_gather(m, &tr, order, begin, bs);
            const uint8_t *labels = NULL;
            const float *targets = NULL;
            if (tr.labels) {
                for (int b = 0; b < bs; b++)
                    lab[b] = tr.labels[order[begin + (size_t)b]];
                labels = lab;
            } else {
                for (int b = 0; b < bs; b++)
                    memcpy(tbuf + (size_t)b * K,
                           tr.targets + order[begin + (size_t)b] * K,
                           sizeof(float) * K);
                targets = tbuf;
            }
            int ok = 0;
            double l = step(m, NULL, labels, targets, bs, true, &ok);
            loss_sum += l * bs;
            correct += (size_t)ok;
            seen += (size_t)bs;
            if (opts->on_batch &&
                !opts->on_batch(opts->user, e, st + 1, steps,
                                loss_sum / (double)seen,
                                (double)correct / (double)seen))
                stop = true;
            if (stop)
                break;
        }
        nn_epoch_stats es = {.loss = loss_sum / (double)seen,
                             .accuracy = (double)correct / (double)seen,
                             .val_loss = NAN, .val_accuracy = NAN};
        if (stop) {
            s = nn_fail(err, NN_ERR_INTERRUPTED,
                        "training stopped during epoch %d", e + 1);
            break;
        }
        if (vd) {
            nn_eval ev;
            if ((s = nn_model_evaluate(m, vd, &ev, NULL, err)) != NN_OK)
                break;
            es.val_loss = ev.loss;
            es.val_accuracy = ev.accuracy;
        }
        es.seconds = now_seconds() - t0;
        if (history) {
            hist[e] = es;
            history->epochs = e + 1;
        }
        if (opts->on_epoch && !opts->on_epoch(opts->user, e, &es))
            s = nn_fail(err, NN_ERR_INTERRUPTED,
                        "training stopped after epoch %d", e + 1);
    }
    free(order);
    free(lab);
    free(tbuf);
    return s;
}

/*
 * evaluate.c - inference over data sets: evaluate (loss, accuracy,
 * confusion matrix) and predict, in batches that keep the workspace near
 * 64 MiB; the data-set checks fit shares.
 */
#include <math.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/loss.h"
#include "nn/model.h"

nn_status nn_model_check_data(const nn_model *m, const nn_dataset *d,
                              bool need_targets, const char *what,
                              nn_error *err)
{
    if (!d || d->n == 0)
        return nn_fail(err, NN_ERR_ARG, "%s: empty data set", what);
    if (nn_shape_size(d->shape) != m->in_size)
        return nn_fail(err, NN_ERR_SHAPE, "%s: samples have %zu values, the "
                       "model expects %zu", what, nn_shape_size(d->shape),
                       m->in_size);
    if ((d->x_u8 != NULL) + (d->x_f32 != NULL) + (d->source.read != NULL) !=
        1)
        return nn_fail(err, NN_ERR_ARG, "%s: need exactly one of x_u8, "
                       "x_f32, source", what);
    if (need_targets && !d->labels && !d->targets)
        return nn_fail(err, NN_ERR_ARG, "%s: no labels", what);
    size_t K = m->layers[m->n_layers - 1].out_size;
    if (d->targets && !d->labels && d->target_width > 0 &&
        (size_t)d->target_width != K)
        return nn_fail(err, NN_ERR_SHAPE, "%s: targets rows have %d values, "
                       "the model has %zu outputs", what, d->target_width, K);
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

/* Adds B rows of predictions p (B, K) to the confusion matrix (K, K). */
static void count_confusion(uint32_t *confusion, const float *p,
                            const uint8_t *lab, const float *targets, int B,
                            size_t K)
{
    for (int b = 0; b < B; b++) {
        size_t pred = nn_argmax(p + (size_t)b * K, K);
        size_t truth = lab ? lab[b] : nn_argmax(targets + (size_t)b * K, K);
        confusion[truth * K + pred]++;
    }
}

nn_status nn_model_evaluate(nn_model *m, const nn_dataset *data,
                            nn_eval *out, uint32_t *confusion, nn_error *err)
{
    nn_status s;
    if (!m || !data || !out)
        return nn_fail(err, NN_ERR_ARG, "nn_model_evaluate: %s is NULL",
                       !m ? "model" : !data ? "data" : "out");
    if ((s = nn_model_check_compiled(m, err)) ||
        (s = nn_model_check_data(m, data, true, "evaluate", err)))
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
        if ((s = nn_model_gather(m, data, NULL, begin, B, err)) != NN_OK)
            return s;
        const float *p = nn_model_forward(m, NULL, B, false);
        /* NaN outputs would score as class 0 with a clipped loss: an
         * error, not an answer */
        for (size_t i = 0; i < (size_t)B * K; i++)
            if (!isfinite(p[i]))
                return nn_fail(err, NN_ERR_STATE, "the model's output for "
                               "sample %zu is %s, not a number it can be "
                               "scored by; its weights are broken",
                               begin + i / K, isnan(p[i]) ? "NaN"
                                                          : "infinite");
        const uint8_t *lab = data->labels ? data->labels + begin : NULL;
        const float *t = lab ? NULL : targets_at(data, begin, K);
        int ok = 0;
        total += nn_loss_eval(m->loss, p, lab, t, B, (int)K, (float)B, NULL,
                              &ok) * B;
        correct += (size_t)ok;
        if (confusion)
            count_confusion(confusion, p, lab, t, B, K);
    }
    out->loss = total / (double)data->n;
    out->accuracy = (double)correct / (double)data->n;
    out->n = data->n;
    return NN_OK;
}

void nn_confusion_accuracy(const uint32_t *cm, int K, double *acc)
{
    if (!cm || !acc)
        return;
    for (int i = 0; i < K; i++) {
        uint64_t row = 0;
        for (int j = 0; j < K; j++)
            row += cm[(size_t)i * K + j];
        acc[i] = row ? (double)cm[(size_t)i * K + i] / (double)row : NAN;
    }
}

nn_status nn_model_predict(nn_model *m, const float *x, size_t n, float *y,
                           nn_error *err)
{
    if (!m || (n && (!x || !y)))
        return nn_fail(err, NN_ERR_ARG, "nn_model_predict: %s is NULL",
                       !m ? "model" : !x ? "x" : "y");
    if (n == 0) {
        nn_ok(err);
        return NN_OK;
    }
    nn_dataset d = {.n = n, .shape = m->input, .x_f32 = x, .scale = 1.0f};
    return nn_model_predict_dataset(m, &d, y, err);
}

nn_status nn_model_predict_dataset(nn_model *m, const nn_dataset *data,
                                   float *y, nn_error *err)
{
    if (!m || !data || !y)
        return nn_fail(err, NN_ERR_ARG, "nn_model_predict_dataset: %s is NULL",
                       !m ? "model" : !data ? "data" : "y");
    if (!m->params)
        return nn_fail(err, NN_ERR_STATE, "model is not initialised");
    nn_status s = nn_model_check_data(m, data, false, "predict", err);
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
        else if ((s = nn_model_gather(m, data, NULL, begin, B, err)) !=
                 NN_OK)
            return s;
        else
            p = nn_model_forward(m, NULL, B, false);
        memcpy(y + begin * K, p, sizeof(float) * K * (size_t)B);
    }
    return NN_OK;
}

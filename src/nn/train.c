/*
 * train.c - compile, the training step and nn_model_train_batch. fit (the
 * loop over epochs) is in fit.c, evaluate and predict in evaluate.c.
 */
#include <math.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"

nn_status nn_model_compile(nn_model *m, nn_loss loss, nn_optimizer opt,
                           nn_error *err)
{
    if (!m)
        return nn_fail(err, NN_ERR_ARG, "nn_model_compile: model is NULL");
    if (!m->params)
        return nn_fail(err, NN_ERR_STATE,
                       "compile: initialise the model first");
    if (loss < NN_LOSS_CATEGORICAL_CROSSENTROPY || loss > NN_LOSS_MSE)
        return nn_fail(err, NN_ERR_ARG, "compile: unknown loss %d",
                       (int)loss);
    if (!nn_optimizer_valid(&opt)) {
        const char *name = nn_optimizer_name(opt.kind);
        if (!strcmp(name, "?"))   /* no name: give the number */
            return nn_fail(err, NN_ERR_ARG, "compile: unknown optimizer "
                           "kind %d", (int)opt.kind);
        return nn_fail(err, NN_ERR_ARG,
                       "compile: invalid optimizer settings for %s", name);
    }
    nn_layer *last = &m->layers[m->n_layers - 1];
    bool xent = loss != NN_LOSS_MSE;
    if (xent && (last->out.rank != 1 ||
                 last->spec.activation != NN_ACT_SOFTMAX ||
                 !strchr(nn_layer_kind_info_for(last->spec.kind)->roles, 'a')))
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

nn_loss nn_model_loss(const nn_model *m) { return m ? m->loss : 0; }
nn_optimizer nn_model_optimizer(const nn_model *m)
{
    return m ? m->opt : (nn_optimizer){0};
}

nn_status nn_model_check_compiled(const nn_model *m, nn_error *err)
{
    if (!m->compiled)
        return nn_fail(err, NN_ERR_STATE, "model is not compiled");
    return NN_OK;
}

double nn_model_step(nn_model *m, const float *x, const uint8_t *labels,
                     const float *targets, int B, float lr, bool apply,
                     int *correct)
{
    double loss = nn_model_gradients(m, x, labels, targets, B, (float)B,
                                     correct);
    if (apply)
        nn_model_apply_step(m, lr);
    return loss;
}

double nn_model_gradients(nn_model *m, const float *x, const uint8_t *labels,
                          const float *targets, int B, float norm,
                          int *correct)
{
    const float *in0 = x ? x : m->x_buf;
    const float *out = nn_model_forward(m, in0, B, true);
    int K = (int)m->layers[m->n_layers - 1].out_size;
    double loss = nn_loss_eval(m->loss, out, labels, targets, B, K, norm,
                               m->g[0], correct);
    int cur = 0;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        nn_layer *l = &m->layers[i];
        const float *xin = i ? m->acts[i - 1]
                             : nn_model_first_input(m, in0);
        float *dx = i ? m->g[cur ^ 1] : NULL;
        l->ops->backward(l, xin, m->acts[i], m->g[cur], dx, B);
        cur ^= 1;
    }
    return loss;
}

void nn_model_apply_step(nn_model *m, float lr)
{
    nn_model_apply_step_part(m, lr, 0, m->n_params);
}

void nn_model_apply_step_part(nn_model *m, float lr, size_t lo, size_t hi)
{
    float *s1 = m->opt_state, *s2 = m->opt_state + m->n_params;
    m->opt_step++;
    nn_optimizer_step(&m->opt, lr, m->params + lo, m->grads + lo, s1 + lo,
                      s2 + lo, hi - lo, m->opt_step);
}

nn_status nn_model_train_batch(nn_model *m, const nn_batch *batch,
                               nn_batch_result *out, nn_error *err)
{
    if (!m || !batch)
        return nn_fail(err, NN_ERR_ARG, "nn_model_train_batch: %s is NULL",
                       m ? "batch" : "model");
    nn_status s = nn_model_check_compiled(m, err);
    if (s != NN_OK)
        return s;
    const nn_batch *b = batch;
    int B = b ? b->size : 0;
    if (B < 1 || !b->x || (!b->labels && !b->targets))
        return nn_fail(err, NN_ERR_ARG, "train_batch: need x, size >= 1 "
                       "and labels or targets");
    if (!(b->lr >= 0.0f) || !isfinite(b->lr))
        return nn_fail(err, NN_ERR_ARG, "train_batch: invalid learning "
                       "rate");
    size_t K = m->layers[m->n_layers - 1].out_size;
    for (int i = 0; b->labels && i < B; i++)
        if (b->labels[i] >= K)
            return nn_fail(err, NN_ERR_ARG, "train_batch: label %d of "
                           "sample %d is out of range for %zu outputs",
                           b->labels[i], i, K);
    if ((s = nn_model_reserve(m, B, err)) != NN_OK)
        return s;
    int correct = 0;
    double l = nn_model_step(m, b->x, b->labels, b->targets, B,
                             b->lr > 0.0f ? b->lr : m->opt.lr, b->apply,
                             &correct);
    if (out)
        *out = (nn_batch_result){.loss = l, .correct = correct};
    return NN_OK;
}

/*
 * gradcheck.c - numerical gradient checks shared by the layer tests (see
 * gradcheck.h).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "nn/layer.h"
#include "nn/model.h"

void fill_uniform(float *v, size_t n, float lo, float hi,
                  uint64_t seed)
{
    nn_rng r;
    nn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * nn_rng_uniform(&r);
}

/* A model holding one layer, initialised, with a workspace for B. */
nn_model *one_layer(nn_shape in, nn_layer_spec spec, int B, uint64_t seed)
{
    nn_model *m = nn_model_new(in);
    assert_non_null(m);
    nn_error e;
    if (nn_model_add(m, spec, &e) != NN_OK)
        fail_msg("add: %s", e.msg);
    nn_rng r;
    nn_rng_seed(&r, seed);
    assert_int_equal(nn_model_init(m, &r, &e), NN_OK);
    assert_int_equal(nn_model_reserve(m, B, &e), NN_OK);
    return m;
}

/* L = sum(y * r) of one forward pass (the generator is reseeded so that
 * dropout draws the same mask every time). */
static double probe_loss(nn_layer *l, const float *x, float *y,
                         const float *r, int B, bool training)
{
    nn_rng_seed(l->rng, 99);
    l->ops->forward(l, x, y, B, training);
    double s = 0.0;
    for (size_t i = 0; i < l->out_size * (size_t)B; i++)
        s += (double)y[i] * r[i];
    return s;
}

static void expect_grad(double a, double n, const char *what, size_t i)
{
    double tol = 2e-3 + 1e-2 * fmax(fabs(a), fabs(n));
    if (!(fabs(a - n) <= tol))
        fail_msg("%s[%zu]: backward %.6f, central difference %.6f", what, i,
                 a, n);
}

/* Compares the backward value `a` of dL/dv[i] (v: x or l->w) with a
 * central difference. Where the two one-sided differences disagree, a kink
 * (relu, a max) lies within the step: then `a` must equal one of them, and
 * false is returned so the caller can count kinks. */
static bool check_one(nn_layer *l, const float *x, float *v, size_t i,
                      float *y, const float *r, int B, bool training,
                      double l0, double a, const char *what)
{
    const float h = 2e-3f;
    float keep = v[i];
    v[i] = keep + h;
    double lp = probe_loss(l, x, y, r, B, training);
    v[i] = keep - h;
    double lm = probe_loss(l, x, y, r, B, training);
    v[i] = keep;
    double fwd = (lp - l0) / h, bwd = (l0 - lm) / h;
    if (fabs(fwd - bwd) <= 1e-2 + 0.05 * fmax(fabs(fwd), fabs(bwd))) {
        expect_grad(a, (lp - lm) / (2.0 * h), what, i);
        return true;
    }
    double tf = 2e-3 + 1e-2 * fabs(fwd), tb = 2e-3 + 1e-2 * fabs(bwd);
    if (!(fabs(a - fwd) <= tf || fabs(a - bwd) <= tb))
        fail_msg("%s[%zu]: backward %.6f, one-sided differences %.6f and "
                 "%.6f (kink)", what, i, a, fwd, bwd);
    return false;
}

/* Checks a layer's backward (input gradient and trainable parameter
 * gradients) against central differences of L = sum(y * r), where r is a
 * fixed random direction, so dy = r. Also guards against a trivially zero
 * gradient. x (B, in) is perturbed in place and restored. */
void check_layer_grads(nn_model *m, float *x, int B, bool training)
{
    nn_layer *l = &m->layers[0];
    size_t nin = l->in_size * (size_t)B, nout = l->out_size * (size_t)B;
    size_t ntrain = l->n_params - l->n_nontrainable;
    float *y = malloc(sizeof(float) * nout), *r = malloc(sizeof(float) * nout);
    float *dy = malloc(sizeof(float) * nout), *dx = malloc(sizeof(float) * nin);
    float *dw = malloc(sizeof(float) * (l->n_params + 1));
    assert_true(y && r && dy && dx && dw);
    fill_uniform(r, nout, -1.0f, 1.0f, 1234);
    probe_loss(l, x, y, r, B, training);
    memcpy(dy, r, sizeof(float) * nout);
    l->ops->backward(l, x, y, dy, dx, B);
    memcpy(dw, l->dw, sizeof(float) * l->n_params);
    double l0 = probe_loss(l, x, y, r, B, training);
    size_t kinks = 0;
    double most = 0.0;
    for (size_t i = 0; i < nin; i++) {
        kinks += !check_one(l, x, x, i, y, r, B, training, l0, dx[i], "dx");
        most = fmax(most, fabs(dx[i]));
    }
    assert_true(most > 1e-2);
    most = 0.0;
    for (size_t i = 0; i < ntrain; i++) {
        kinks += !check_one(l, x, l->w, i, y, r, B, training, l0, dw[i],
                            "dw");
        most = fmax(most, fabs(dw[i]));
    }
    assert_true(ntrain == 0 || most > 1e-2);
    /* most values must have been checked against a central difference */
    if (kinks * 10 > nin + ntrain)
        fail_msg("%zu of %zu values next to a kink", kinks, nin + ntrain);
    for (size_t i = ntrain; i < l->n_params; i++)
        assert_true(dw[i] == 0.0f);
    free(y), free(r), free(dy), free(dx), free(dw);
}

/* Checks every trainable parameter gradient of a compiled model, as
 * nn_model_train_batch(apply = false) computes it, against central
 * differences of the loss it returns; non-trainable gradients are zero. */
void check_model_grads(nn_model *m, const float *x, const uint8_t *labels,
                       int B)
{
    nn_error e;
    size_t n = nn_model_param_count(m);
    float *g = malloc(sizeof(float) * n);
    assert_non_null(g);
    const nn_batch b = {.x = x, .labels = labels, .size = B};
    nn_batch_result rp, rm;
    nn_rng_seed(&m->rng, 7);
    assert_int_equal(nn_model_train_batch(m, &b, NULL, &e), NN_OK);
    memcpy(g, nn_model_grads(m), sizeof(float) * n);
    float *w = nn_model_params(m);
    const float h = 2e-3f;
    double most = 0.0;
    for (int li = 0; li < m->n_layers; li++) {
        const nn_layer *l = &m->layers[li];
        size_t end = l->param_off + l->n_params - l->n_nontrainable;
        for (size_t i = l->param_off; i < end; i++) {
            float keep = w[i];
            w[i] = keep + h;
            nn_rng_seed(&m->rng, 7);
            nn_model_train_batch(m, &b, &rp, &e);
            w[i] = keep - h;
            nn_rng_seed(&m->rng, 7);
            nn_model_train_batch(m, &b, &rm, &e);
            w[i] = keep;
            double num = (rp.loss - rm.loss) / (2.0 * h);
            double tol = 5e-4 + 1e-2 * fmax(fabs(g[i]), fabs(num));
            if (!(fabs(g[i] - num) <= tol))
                fail_msg("layer %d param %zu: backward %.6f, central "
                         "difference %.6f", li, i - l->param_off, g[i], num);
            most = fmax(most, fabs(g[i]));
        }
        for (size_t i = end; i < l->param_off + l->n_params; i++)
            assert_true(g[i] == 0.0f);
    }
    assert_true(most > 1e-3);
    free(g);
}

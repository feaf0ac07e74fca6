/*
 * loss.c - losses, each computing the mean loss over a batch, the count of
 * correct argmax predictions and the gradient with respect to the output.
 *   cross-entropy:  L = -1/B sum_b sum_k t[b, k] log clip(p[b, k]), with
 *                   clip(p) = min(max(p, eps), 1 - eps), eps = 1e-7 in
 *                   float (1 - eps = 1 - 2^-23), as Keras clips; labels
 *                   are one-hot rows t. Fused with softmax, the gradient
 *                   with respect to the pre-activation is that of the
 *                   unclipped loss, (p - t) / B.
 *   mse:            L = 1/B sum_b 1/K sum_k (p - t)^2;  dL/dp = 2 (p - t) / (B K)
 * Targets are class indices (labels) or float rows (targets).
 */
#include <math.h>
#include <string.h>

#include "nn/loss.h"

#define XENT_EPS 1e-7f

/* Keras' clip of a probability before its log: [eps, 1 - eps]. */
static float xent_clip(float p)
{
    const float hi = 1.0f - XENT_EPS;
    return p < XENT_EPS ? XENT_EPS : p > hi ? hi : p;
}

const char *nn_loss_name(nn_loss l)
{
    switch (l) {
    case NN_LOSS_CATEGORICAL_CROSSENTROPY: return "categorical_crossentropy";
    case NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY:
        return "sparse_categorical_crossentropy";
    case NN_LOSS_MSE: return "mse";
    }
    return "?";
}

bool nn_loss_parse(const char *name, nn_loss *out)
{
    if (!name || !out)
        return false;
    for (nn_loss l = NN_LOSS_CATEGORICAL_CROSSENTROPY; l <= NN_LOSS_MSE; l++)
        if (strcmp(name, nn_loss_name(l)) == 0) {
            *out = l;
            return true;
        }
    if (strcmp(name, "mean_squared_error") == 0) {
        *out = NN_LOSS_MSE;
        return true;
    }
    return false;
}

size_t nn_argmax(const float *v, size_t n)
{
    size_t best = 0;
    if (!v)
        return 0;
    for (size_t j = 1; j < n; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

/* The class of sample b: its label, or the argmax of its target row. */
static int target_class(const uint8_t *labels, const float *targets, int b,
                        int K)
{
    return labels ? labels[b]
                  : (int)nn_argmax(targets + (size_t)b * K, (size_t)K);
}

double nn_loss_eval(nn_loss loss, const float *p, const uint8_t *labels,
                    const float *targets, int B, int K, float norm,
                    float *grad, int *correct)
{
    double total = 0.0;
    int ok = 0;
    for (int b = 0; b < B; b++) {
        const float *pr = p + (size_t)b * K;
        int cls = target_class(labels, targets, b, K);
        ok += (int)nn_argmax(pr, (size_t)K) == cls;
        float *gr = grad ? grad + (size_t)b * K : NULL;
        if (loss == NN_LOSS_MSE) {
            double row = 0.0;
            for (int k = 0; k < K; k++) {
                float t = labels ? (float)(k == cls)
                                 : targets[(size_t)b * K + k];
                float d = pr[k] - t;
                row += (double)d * d;
                if (gr)
                    gr[k] = 2.0f * d / (norm * (float)K);
            }
            total += row / K;
        } else {
            /* Cross-entropy; gradient fused with softmax. */
            if (labels) {
                total -= log(xent_clip(pr[cls]));
                if (gr) {
                    for (int k = 0; k < K; k++)
                        gr[k] = pr[k] / norm;
                    gr[cls] -= 1.0f / norm;
                }
            } else {
                const float *t = targets + (size_t)b * K;
                for (int k = 0; k < K; k++) {
                    if (t[k] != 0.0f)
                        total -= t[k] * log(xent_clip(pr[k]));
                    if (gr)
                        gr[k] = (pr[k] - t[k]) / norm;
                }
            }
        }
    }
    if (correct)
        *correct = ok;
    return total / B;
}

/*
 * loss.h - loss evaluation (internal).
 */
#ifndef NN_LOSS_H
#define NN_LOSS_H

#include "nn.h"

/* Mean loss of predictions p (B, K) against labels (B) or targets (B, K).
 * If grad is not NULL it receives (B, K): for cross-entropy the gradient
 * with respect to the softmax's input (fused), for mse with respect to p.
 * *correct (if not NULL) receives the count of correct argmax predictions. */
double nn_loss_eval(nn_loss loss, const float *p, const uint8_t *labels,
                    const float *targets, int B, int K, float *grad,
                    int *correct);

#endif

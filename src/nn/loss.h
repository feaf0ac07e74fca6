/*
 * loss.h - loss evaluation (internal).
 */
#ifndef NN_LOSS_H
#define NN_LOSS_H

#include "nn.h"

/* Mean loss of predictions p (B, K) against labels (B) or targets (B, K).
 * If grad is not NULL it receives (B, K): the gradient of the rows' summed
 * loss divided by `norm` (B: of the mean; a data-parallel shard passes the
 * whole batch's rows, INFINITY for none), for cross-entropy with respect
 * to the softmax's input (fused), for mse with respect to p. *correct (if
 * not NULL) receives the count of correct argmax predictions. */
double nn_loss_eval(nn_loss loss, const float *p, const uint8_t *labels,
                    const float *targets, int B, int K, float norm,
                    float *grad, int *correct);

#endif

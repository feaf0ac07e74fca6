/*
 * optim.h - optimizer update (internal).
 */
#ifndef NN_OPTIM_H
#define NN_OPTIM_H

#include "nn.h"

/* One update of n parameters w (n) from gradients g (n); s1, s2 (n) are the
 * optimizer's state (momentum / squared averages; s2 used by Adam only);
 * t >= 1 is the step number, counting this one. */
void nn_optimizer_step(const nn_optimizer *o, float *w, const float *g,
                       float *s1, float *s2, size_t n, uint64_t t);

#endif

/*
 * optim.h - optimizer validation and update (internal; the registry is
 * optim.c).
 */
#ifndef NN_OPTIM_H
#define NN_OPTIM_H

#include "nn.h"

/* True when o is a known kind with a positive finite learning rate and
 * settings in range (momentum, rho, betas in [0, 1), epsilon > 0). */
bool nn_optimizer_valid(const nn_optimizer *o);

/* One update of n parameters w (n) from gradients g (n) at learning rate
 * lr (the epoch's rate; o->lr is not read); s1, s2 (n) are the optimizer's
 * state (momentum / squared averages; s2 used by Adam only); t >= 1 is the
 * step number, counting this one. */
void nn_optimizer_step(const nn_optimizer *o, float lr, float *w,
                       const float *g, float *s1, float *s2, size_t n,
                       uint64_t t);

#endif

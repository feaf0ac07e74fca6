/*
 * nan_model.c - writes a valid model file whose outputs are NaN, for the
 * CLI tests: dense(10, softmax) on 28x28 with every weight 3e38, finite
 * (the file loads) but the logits overflow to infinity and softmax gives
 * inf - inf = NaN for any picture with ink.
 * Usage: nan_model FILE
 */
#include <stdio.h>

#include "nn.h"

int main(int argc, char **argv)
{
    if (argc != 2)
        return fprintf(stderr, "usage: nan_model FILE\n"), 2;
    nn_error err;
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    nn_model *m = nn_model_from_spec("dense(10,softmax)", nn_shape3(28, 28, 1),
                                     10, NULL, &err);
    if (!m || nn_model_init(m, &rng, &err) != NN_OK ||
        nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY, nn_rmsprop(),
                         &err) != NN_OK)
        return fprintf(stderr, "nan_model: %s\n", err.msg), 1;
    float *w = nn_model_params(m);
    for (size_t i = 0; i < nn_model_param_count(m); i++)
        w[i] = 3e38f;
    nn_status s = nn_model_save(m, argv[1], false, &err);
    nn_model_free(m);
    if (s != NN_OK)
        return fprintf(stderr, "nan_model: %s\n", err.msg), 1;
    return 0;
}

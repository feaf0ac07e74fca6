/*
 * save_loop.c - a helper for tests/cli/crash.sh: loads model files and
 * saves them in turn to OUT with nn_model_save (with optimizer state, so
 * each save is a few MB), COUNT saves in all (0: until killed).
 * Usage: save_loop OUT COUNT MODEL...
 * Prints nothing on success; exits 1 with a message on any error.
 */
#include <stdio.h>
#include <stdlib.h>

#include "nn.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: save_loop OUT COUNT MODEL...\n");
        return 1;
    }
    int n = argc - 3;
    long count = strtol(argv[2], NULL, 10);
    nn_model **m = calloc((size_t)n, sizeof *m);
    nn_error err;
    if (!m)
        return 1;
    for (int i = 0; i < n; i++)
        if (!(m[i] = nn_model_load(argv[3 + i], &err))) {
            fprintf(stderr, "save_loop: %s\n", err.msg);
            return 1;
        }
    for (long k = 0; count == 0 || k < count; k++)
        if (nn_model_save(m[k % n], argv[1], true, &err) != NN_OK) {
            fprintf(stderr, "save_loop: %s\n", err.msg);
            return 1;
        }
    for (int i = 0; i < n; i++)
        nn_model_free(m[i]);
    free(m);
    return 0;
}

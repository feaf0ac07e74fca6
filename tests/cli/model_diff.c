/*
 * model_diff.c - compares the weights of two model files (tests/cli/mpi.sh).
 *   model_diff A B    prints "max_abs_diff=D max_abs=W rel=D/W l2rel=E" and
 *                     exits 0, or 2 when the files do not load or differ in
 *                     shape.
 * rel: the largest difference relative to the largest weight of A;
 * l2rel: |A - B| / |A| in the Euclidean norm over all parameters.
 */
#include <math.h>
#include <stdio.h>

#include "nn.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: model_diff A B\n");
        return 2;
    }
    nn_error err;
    nn_model *a = nn_model_load(argv[1], &err), *b = NULL;
    if (!a || !(b = nn_model_load(argv[2], &err))) {
        fprintf(stderr, "model_diff: %s\n", err.msg);
        nn_model_free(a);
        return 2;
    }
    size_t n = nn_model_param_count(a);
    if (n != nn_model_param_count(b)) {
        fprintf(stderr, "model_diff: %zu and %zu parameters\n", n,
                nn_model_param_count(b));
        nn_model_free(a);
        nn_model_free(b);
        return 2;
    }
    const float *pa = nn_model_params(a), *pb = nn_model_params(b);
    double d = 0.0, w = 0.0, dd = 0.0, ww = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)pa[i] - (double)pb[i]);
        d = e > d ? e : d;
        w = fabs(pa[i]) > w ? fabs(pa[i]) : w;
        dd += e * e;
        ww += (double)pa[i] * pa[i];
    }
    printf("max_abs_diff=%g max_abs=%g rel=%g l2rel=%g\n", d, w,
           w > 0 ? d / w : d, ww > 0 ? sqrt(dd / ww) : sqrt(dd));
    nn_model_free(a);
    nn_model_free(b);
    return 0;
}

/*
 * infer.c - inference timings of libnn for bench/run.sh.
 *
 * usage: infer MODEL DATA_DIR [SINGLE_RUNS]
 * Prints latency_us= (median of SINGLE_RUNS one-image nn_model_predict
 * calls) and images_per_s= (median of 5 passes over the 10,000 test
 * images in batches of 1000).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nn.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: infer MODEL DATA_DIR [SINGLE_RUNS]\n");
        return 2;
    }
    int runs = argc > 3 ? atoi(argv[3]) : 1000;
    if (runs < 1)
        runs = 1;
    nn_error err = {0};
    nn_model *m = nn_model_load(argv[1], &err);
    if (!m) {
        fprintf(stderr, "infer: %s\n", err.msg);
        return 1;
    }
    char ip[4096], lp[4096];
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte", argv[2]);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte", argv[2]);
    nn_dataset d;
    if (nn_idx_load_pair(ip, lp, 0, &d, &err) != NN_OK) {
        fprintf(stderr, "infer: %s\n", err.msg);
        return 1;
    }
    size_t in = 784, n = d.n, out = 10;
    float *x = malloc(n * in * sizeof *x);
    float *y = malloc(n * out * sizeof *y);
    double *lat = malloc((size_t)runs * sizeof *lat);
    if (!x || !y || !lat)
        return 1;
    for (size_t i = 0; i < n * in; i++)
        x[i] = d.x_u8[i] * d.scale;

    for (int i = 0; i < 100; i++)
        nn_model_predict(m, x + (size_t)i * in, 1, y, &err);
    for (int i = 0; i < runs; i++) {
        const float *xi = x + (size_t)(i % (int)n) * in;
        double t = now();
        nn_model_predict(m, xi, 1, y, &err);
        lat[i] = now() - t;
    }
    qsort(lat, (size_t)runs, sizeof *lat, cmp);
    printf("latency_us=%.2f\n", lat[runs / 2] * 1e6);

    double rate[5];
    for (int r = 0; r < 5; r++) {
        double t = now();
        for (size_t i = 0; i < n; i += 1000) {
            size_t b = n - i < 1000 ? n - i : 1000;
            nn_model_predict(m, x + i * in, b, y + i * out, &err);
        }
        rate[r] = (double)n / (now() - t);
    }
    qsort(rate, 5, sizeof *rate, cmp);
    printf("images_per_s=%.0f\n", rate[2]);
    free(x); free(y); free(lat);
    nn_dataset_free(&d);
    nn_model_free(m);
    return 0;
}

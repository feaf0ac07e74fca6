/*
 * int8.c - float vs int8 inference throughput of libnn for bench/run.sh,
 * side by side in one process: the 10,000 test images in batches of 1000,
 * median of 5 passes each, through the paths `digits evaluate` and
 * `digits evaluate --int8` take (nn_model_predict_dataset and
 * nn_qmodel_predict; int8 calibrated on 2000 training images).
 *
 * usage: int8 MODEL DATA_DIR
 * Prints float_images_per_s=, int8_images_per_s= (the fastest instruction
 * set, named in isa=) and portable_images_per_s= (plain C kernels).
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

#define PASSES 5
#define BATCH 1000

/* Median images per second of PASSES passes; q NULL: float. */
static double rate(nn_model *m, const nn_qmodel *q, const nn_dataset *test,
                   float *y)
{
    double t[PASSES];
    size_t K = nn_shape_size(nn_model_output_shape(m));
    size_t in = nn_shape_size(test->shape);
    nn_error err;
    for (int p = 0; p < PASSES; p++) {
        double t0 = now();
        for (size_t b = 0; b < test->n; b += BATCH) {
            size_t n = test->n - b < BATCH ? test->n - b : BATCH;
            nn_status s;
            if (q) {
                s = nn_qmodel_predict(q, test->x_u8 + b * in, n, y, NULL,
                                      &err);
            } else {
                nn_dataset part = nn_dataset_slice(test, b, n);
                s = nn_model_predict_dataset(m, &part, y, &err);
            }
            if (s != NN_OK) {
                fprintf(stderr, "int8: %s\n", err.msg);
                exit(1);
            }
        }
        t[p] = (double)test->n / (now() - t0);
        (void)K;
    }
    qsort(t, PASSES, sizeof *t, cmp);
    return t[PASSES / 2];
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: int8 MODEL DATA_DIR\n");
        return 2;
    }
    nn_error err;
    nn_model *m = nn_model_load(argv[1], &err);
    if (!m) {
        fprintf(stderr, "int8: %s\n", err.msg);
        return 1;
    }
    char a[4096], b[4096];
    nn_dataset train, test;
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte", argv[2]);
    snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte", argv[2]);
    if (nn_idx_load_pair(a, b, 0, &train, &err) != NN_OK) {
        fprintf(stderr, "int8: %s\n", err.msg);
        return 1;
    }
    snprintf(a, sizeof a, "%s/t10k-images-idx3-ubyte", argv[2]);
    snprintf(b, sizeof b, "%s/t10k-labels-idx1-ubyte", argv[2]);
    if (nn_idx_load_pair(a, b, 0, &test, &err) != NN_OK) {
        fprintf(stderr, "int8: %s\n", err.msg);
        return 1;
    }
    nn_qmodel *q = nn_model_quantize(m, &train, NN_QUANT_CALIBRATE, &err);
    if (!q) {
        fprintf(stderr, "int8: %s\n", err.msg);
        return 1;
    }
    size_t K = nn_shape_size(nn_model_output_shape(m));
    float *y = malloc(sizeof(float) * BATCH * K);
    if (!y)
        return 1;
    nn_eval ef, eq;
    nn_model_evaluate(m, &test, &ef, NULL, &err);
    nn_qmodel_evaluate(q, &test, &eq, NULL, &err);
    printf("float_acc=%.4f\nint8_acc=%.4f\n", ef.accuracy, eq.accuracy);
    /* warm up both paths once, then measure them alternately */
    rate(m, NULL, &test, y);
    double f = rate(m, NULL, &test, y);
    printf("float_images_per_s=%.0f\n", f);
    printf("isa=%s\n", nn_qisa_name(nn_qmodel_isa(q)));
    printf("int8_images_per_s=%.0f\n", rate(m, q, &test, y));
    nn_qmodel_set_isa(q, NN_QISA_PORTABLE, &err);
    printf("portable_images_per_s=%.0f\n", rate(m, q, &test, y));
    free(y);
    nn_qmodel_free(q);
    nn_model_free(m);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return 0;
}

/*
 * sgemm.c - OpenBLAS sgemm on the seed's training shapes, for bench/run.sh.
 *
 * usage: sgemm [BATCH] [REPS]    or: sgemm core (prints OpenBLAS' core name)
 * Prints fwd_gflops= (X(B,784) * W(784,512)), dw_gflops= (X^T(784,B) *
 * dY(B,512)) and gflops= (both together: the pair's flops over the pair's
 * time), each the median of REPS timed calls after a warm-up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cblas.h>

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

static float *randm(size_t n)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    return p;
}

int main(int argc, char **argv)
{
    if (argc > 1 && argv[1][0] == 'c') {     /* "core": OpenBLAS' kernels */
        printf("core=%s\n", openblas_get_corename());
        return 0;
    }
    int B = argc > 1 ? atoi(argv[1]) : 128;
    int reps = argc > 2 ? atoi(argv[2]) : 200;
    const int K = 784, N = 512;
    float *x = randm((size_t)B * K), *w = randm((size_t)K * N);
    float *y = randm((size_t)B * N), *dy = randm((size_t)B * N);
    float *dw = randm((size_t)K * N);
    double *tf = malloc((size_t)reps * sizeof *tf);
    double *tw = malloc((size_t)reps * sizeof *tw);
    if (!x || !w || !y || !dy || !dw || !tf || !tw || reps < 1)
        return 1;
    for (int r = -20; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, N, K,
                    1.0f, x, K, w, N, 0.0f, y, N);
        double t1 = now();
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, B,
                    1.0f, x, K, dy, N, 0.0f, dw, N);
        double t2 = now();
        if (r >= 0) {
            tf[r] = t1 - t0;
            tw[r] = t2 - t1;
        }
    }
    double fl = 2.0 * B * K * N;
    double *tp = malloc((size_t)reps * sizeof *tp);
    for (int r = 0; r < reps; r++)
        tp[r] = tf[r] + tw[r];
    qsort(tf, (size_t)reps, sizeof *tf, cmp);
    qsort(tw, (size_t)reps, sizeof *tw, cmp);
    qsort(tp, (size_t)reps, sizeof *tp, cmp);
    printf("fwd_gflops=%.1f\n", fl / tf[reps / 2] * 1e-9);
    printf("dw_gflops=%.1f\n", fl / tw[reps / 2] * 1e-9);
    printf("gflops=%.1f\n", 2 * fl / tp[reps / 2] * 1e-9);
    return 0;
}

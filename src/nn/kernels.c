/*
 * kernels.c - matrix product: CBLAS fast path, portable fallback, and the
 * naive reference.
 */
#include <stddef.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/kernels.h"

#ifdef NN_USE_CBLAS
#include <cblas.h>
#endif

#define AT(M_, ld, i, j) ((M_)[(size_t)(i) * (size_t)(ld) + (size_t)(j)])

void nn_gemm_ref(bool ta, bool tb, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                float a = ta ? AT(A, lda, k, i) : AT(A, lda, i, k);
                float b = tb ? AT(B, ldb, j, k) : AT(B, ldb, k, j);
                acc += (double)a * b;
            }
            float c = beta == 0.0f ? 0.0f : beta * AT(C, ldc, i, j);
            AT(C, ldc, i, j) = (float)(alpha * acc) + c;
        }
}

/* Portable path: rows of C in parallel; for each row, accumulate
 * a(i,k) * B(k, :) so the inner loop streams contiguous memory and
 * vectorises. B^T is handled as dot products of contiguous rows. */
void nn_gemm_portable(bool ta, bool tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc)
{
#pragma omp parallel for schedule(static) if ((long)M * N * K > 100000)
    for (int i = 0; i < M; i++) {
        float *c = &AT(C, ldc, i, 0);
        if (beta == 0.0f)
            memset(c, 0, sizeof(float) * (size_t)N);
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++)
                c[j] *= beta;
        if (!tb) {
            for (int k = 0; k < K; k++) {
                float a = alpha * (ta ? AT(A, lda, k, i) : AT(A, lda, i, k));
                if (a == 0.0f)
                    continue;
                const float *b = &AT(B, ldb, k, 0);
                for (int j = 0; j < N; j++)
                    c[j] += a * b[j];
            }
        } else {
            for (int j = 0; j < N; j++) {
                const float *b = &AT(B, ldb, j, 0);
                float acc = 0.0f;
                if (!ta) {
                    const float *a = &AT(A, lda, i, 0);
                    for (int k = 0; k < K; k++)
                        acc += a[k] * b[k];
                } else {
                    for (int k = 0; k < K; k++)
                        acc += AT(A, lda, k, i) * b[k];
                }
                c[j] += alpha * acc;
            }
        }
    }
}

#ifdef NN_USE_CBLAS
/* One product on the calling thread. A single row of C (one image at
 * inference) is a matrix-vector product, which sgemv does faster. */
static void blas_gemm(bool ta, bool tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc)
{
    if (M == 1 && K > 0) {
        if (beta == 0.0f)   /* sgemv may scale C by 0, keeping NaNs */
            memset(C, 0, sizeof(float) * (size_t)N);
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans,
                    tb ? N : K, tb ? K : N, alpha, B, ldb, A, ta ? lda : 1,
                    beta == 0.0f ? 1.0f : beta, C, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B,
                ldb, beta, C, ldc);
}
#endif

/* Products smaller than this many flops run on one thread. */
#define GEMM_SPLIT_FLOPS 4e5

/* BLAS runs on one thread inside libnn (threads.c); a large product is
 * cut here into one block of C per thread, by rows when C has at least as
 * many rows as columns, else by columns, in multiples of 16. Every element
 * of C still comes from the same sums in the same order. */
void nn_gemm(bool ta, bool tb, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta,
             float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
#ifdef NN_USE_CBLAS
    int nt = nn_threads_for(2.0 * M * N * (K > 0 ? K : 1), GEMM_SPLIT_FLOPS);
    bool rows = M >= N;
    int n = rows ? M : N;
    int chunk = ((n + nt - 1) / nt + 15) & ~15;
    int parts = (n + chunk - 1) / chunk;
    if (parts <= 1) {
        blas_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#pragma omp parallel for num_threads(parts) schedule(static, 1)
    for (int p = 0; p < parts; p++) {
        int s0 = p * chunk, len = n - s0 < chunk ? n - s0 : chunk;
        if (rows)
            blas_gemm(ta, tb, len, N, K, alpha,
                      ta ? A + s0 : A + (size_t)s0 * lda, lda, B, ldb, beta,
                      C + (size_t)s0 * ldc, ldc);
        else
            blas_gemm(ta, tb, M, len, K, alpha, A, lda,
                      tb ? B + (size_t)s0 * ldb : B + s0, ldb, beta, C + s0,
                      ldc);
    }
#else
    nn_gemm_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

const char *nn_gemm_backend(void)
{
#ifdef NN_USE_CBLAS
    return "openblas";
#else
    return "portable";
#endif
}

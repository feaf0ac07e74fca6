/*
 * kernels.c - matrix product: CBLAS fast path, portable fallback, and the
 * naive reference.
 */
#include <stddef.h>
#include <string.h>

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

void nn_gemm(bool ta, bool tb, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta,
             float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
#ifdef NN_USE_CBLAS
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B,
                ldb, beta, C, ldc);
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

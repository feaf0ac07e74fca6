/*
 * kernels.h - dense linear-algebra kernels (internal).
 *
 * nn_gemm is the fast path (CBLAS when built with NN_USE_CBLAS, else a
 * blocked portable loop); nn_gemm_ref is the naive reference that tests hold
 * it equal to. Row-major throughout.
 */
#ifndef NN_KERNELS_H
#define NN_KERNELS_H

#include <stdbool.h>

/* C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C.
 * op(A) = A (M, K), lda >= K, or A^T with A (K, M), lda >= M; same for B.
 * beta == 0 ignores C's prior contents (NaN included). */
void nn_gemm(bool ta, bool tb, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta,
             float *C, int ldc);
void nn_gemm_ref(bool ta, bool tb, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);
void nn_gemm_portable(bool ta, bool tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc);

#endif

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
#pragma omp parallel for schedule(static) if (2.0 * M * N * K > NN_PAR_MIN_FLOPS)
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

/* Products smaller than this many flops run on one thread (threads.c). */
#define GEMM_SPLIT_FLOPS NN_PAR_MIN_FLOPS

/* Columns [j0, j1) of y (1, N) = alpha * x (1, K) * B (K, N) + beta * y:
 * rows of B scaled by x[k] and added, skipping zeros in x (MNIST digits
 * are four fifths background, ReLU outputs often half zeros). The nonzero
 * x[k] of a stretch of x are listed first; then each block of VM_COLS
 * columns of y stays in registers while those rows go by. Each y[j] adds
 * its terms in k order. */
#define VM_COLS 64
#define VM_ROWS 256
NN_CLONES
static void vecmat_cols(int K, float alpha, const float *restrict x,
                        const float *restrict B, int ldb, float beta,
                        float *restrict y, int j0, int j1)
{
    if (beta == 0.0f)
        memset(y + j0, 0, sizeof(float) * (size_t)(j1 - j0));
    else if (beta != 1.0f)
        for (int j = j0; j < j1; j++)
            y[j] *= beta;
    int idx[VM_ROWS];
    float val[VM_ROWS];
    for (int k0 = 0; k0 < K; k0 += VM_ROWS) {
        int m = 0, k1 = K - k0 < VM_ROWS ? K : k0 + VM_ROWS;
        for (int k = k0; k < k1; k++) {
            float a = alpha * x[k];
            if (a != 0.0f) {
                idx[m] = k;
                val[m++] = a;
            }
        }
        int jb = j0;
        for (; jb + VM_COLS <= j1; jb += VM_COLS) {
            float acc[VM_COLS];
            memcpy(acc, y + jb, sizeof acc);
            for (int t = 0; t < m; t++) {
                const float *restrict b = B + (size_t)idx[t] * ldb + jb;
#pragma omp simd
                for (int j = 0; j < VM_COLS; j++)
                    acc[j] += val[t] * b[j];
            }
            memcpy(y + jb, acc, sizeof acc);
        }
        for (int t = 0; t < m && jb < j1; t++) {
            const float *restrict b = B + (size_t)idx[t] * ldb;
#pragma omp simd
            for (int j = jb; j < j1; j++)
                y[j] += val[t] * b[j];
        }
    }
}

/* One row of C from one row of A: the one-image path of inference. */
static void vecmat(int N, int K, float alpha, const float *x,
                   const float *B, int ldb, float beta, float *y)
{
    int nnz = 0;
    for (int k = 0; k < K; k++)
        nnz += x[k] != 0.0f;
    int nt = nn_threads_for(2.0 * nnz * N, GEMM_SPLIT_FLOPS);
    int chunk = ((N + nt - 1) / nt + 15) & ~15;
    int parts = (N + chunk - 1) / chunk;
    (void)parts;   /* without OpenMP */
#pragma omp parallel for num_threads(parts) schedule(static, 1) if (parts > 1)
    for (int p = 0; p < parts; p++) {
        int j0 = p * chunk, j1 = N - j0 < chunk ? N : j0 + chunk;
        vecmat_cols(K, alpha, x, B, ldb, beta, y, j0, j1);
    }
}

/* Large products are cut into blocks of C, by rows when C has at least as
 * many rows as columns, else by columns. The cut depends on the product's
 * shape alone (GEMM_BLOCKS blocks at most, each a multiple of 16 and at
 * least GEMM_MIN_BLOCK wide), never on the thread count: each block is one
 * single-threaded BLAS call whose kernel OpenBLAS picks from the block's
 * shape, so every element of C comes from the same kernel and the same
 * sums however many threads share the blocks out. */
#define GEMM_BLOCKS 16
#define GEMM_MIN_BLOCK 128

void nn_gemm(bool ta, bool tb, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta,
             float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (M == 1 && !ta && !tb) {
        vecmat(N, K, alpha, A, B, ldb, beta, C);
        return;
    }
#ifdef NN_USE_CBLAS
    nn_blas_single();
    double flops = 2.0 * M * N * (K > 0 ? K : 1);
    bool rows = M >= N;
    int n = rows ? M : N;
    int chunk = n;
    if (flops >= GEMM_SPLIT_FLOPS) {
        chunk = ((n + GEMM_BLOCKS - 1) / GEMM_BLOCKS + 15) & ~15;
        if (chunk < GEMM_MIN_BLOCK)
            chunk = GEMM_MIN_BLOCK;
    }
    int parts = (n + chunk - 1) / chunk;
    if (parts <= 1) {
        blas_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int nt = nn_threads_for(flops, GEMM_SPLIT_FLOPS);
    if (nt > parts)
        nt = parts;
    (void)nt;   /* without OpenMP */
#pragma omp parallel for num_threads(nt) schedule(static, 1) if (nt > 1)
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

/*
 * internal.h - helpers shared inside libnn; not part of the public API.
 */
#ifndef NN_INTERNAL_H
#define NN_INTERNAL_H

#include <stdio.h>
#include "nn.h"

/* Fills err (if not NULL) with code and a printf-style message; returns
 * code so callers can write `return nn_fail(err, NN_ERR_IO, "...")`. */
nn_status nn_fail(nn_error *err, nn_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Clears err to NN_OK with an empty message. */
void nn_ok(nn_error *err);

/* Atomic file writing: data goes to "<path>.tmp.<pid>.<n>" in the same
 * folder; nn_afile_commit fsyncs, renames over `path` and fsyncs the folder.
 * nn_afile_abort removes the temporary file. Exactly one of commit/abort
 * must be called after a successful open. */
typedef struct nn_afile {
    FILE *f;
    char *path;
    char *tmp;
} nn_afile;

nn_status nn_afile_open(nn_afile *af, const char *path, nn_error *err);
nn_status nn_afile_commit(nn_afile *af, nn_error *err);
void nn_afile_abort(nn_afile *af);

/* NN_CLONES before a function with plain loops compiles it also for
 * AVX-512 and AVX2; the best variant is picked when the program loads
 * (GCC, Clang >= 14; x86-64 ELF). All variants add in the same order, so
 * with GCC (no a*b+c contraction under -std=c11) they give the same bits.
 * Keep OpenMP pragmas other than `simd` out of such functions. Not under
 * ThreadSanitizer, whose instrumented ifunc resolvers crash at load. */
#if defined(__x86_64__) && defined(__ELF__) && \
    (defined(__clang__) ? __clang_major__ >= 14 : __GNUC__ >= 8) && \
    !defined(__SANITIZE_THREAD__)
#define NN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NN_CLONES
#endif

/* The threading policy (threads.c; docs/design.md): a loop is split over
 * threads only when it does at least this much work, by kind of work.
 * Every parallel loop in libnn uses one of these, through nn_threads_for
 * or NN_PAR_IF in an OpenMP `if` clause. */
#define NN_PAR_MIN_WORK  65536.0   /* element operations: copies, pooling,
                                      batch norm, dropout, optimizers */
#define NN_PAR_MIN_ACT   16384.0   /* activations (exp, tanh per element) */
#define NN_PAR_MIN_AUG   32768.0   /* augmented pixels (bilinear samples) */
#define NN_PAR_MIN_FLOPS 4e5       /* flops of a matrix product */
/* For `#pragma omp parallel for ... if (NN_PAR_IF(work))`. */
#define NN_PAR_IF(work) ((double)(work) > NN_PAR_MIN_WORK)

/* Threads for a parallel loop with `work` operations: 1 inside a parallel
 * region or below `min_work` (one of NN_PAR_MIN_*), else nn_get_threads(). */
int nn_threads_for(double work, double min_work);

/* Puts OpenBLAS' process-wide thread count back to 1 if a program changed
 * it (threads.c); a no-op inside a parallel region. */
void nn_blas_single(void);

/* Little-endian fixed-width encoding. */
static inline void nn_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}
static inline uint32_t nn_get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static inline uint32_t nn_get_u32_be(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

#endif

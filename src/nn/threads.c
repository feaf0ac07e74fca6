/*
 * threads.c - how many threads libnn uses, and who runs them.
 *
 * libnn runs its own threads (OpenMP) and keeps BLAS on one thread inside
 * each of them: large products are cut into blocks (kernels.c) that the
 * threads share out, so two thread pools never compete for the cores
 * (docs/design.md, "Threading and determinism"). The policy for when a
 * loop runs in parallel is nn_threads_for with the NN_PAR_MIN_* thresholds
 * of nn/internal.h, one per kind of work. The first call into libnn sets this up
 * for all cores unless nn_set_threads was called before; it sets OpenBLAS'
 * process-wide thread count to 1 (programs that also call BLAS themselves
 * may set it back between libnn calls: libnn sets it to 1 again before its
 * next product).
 */
#include <pthread.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef NN_USE_CBLAS
#include <cblas.h>
#endif

#include "nn/internal.h"

static void apply(int n)
{
#ifdef _OPENMP
    if (n <= 0)
        n = omp_get_num_procs();
    omp_set_num_threads(n);
#endif
    (void)n;
    nn_blas_single();
}

/* OpenBLAS always runs on one thread inside libnn: the products are cut
 * into blocks by nn_gemm (kernels.c) and the blocks shared out over
 * libnn's own threads. A multi-threaded OpenBLAS call would both fight
 * those threads for the cores and make results depend on how OpenBLAS
 * cuts the product, which depends on its thread count. Without OpenMP,
 * libnn runs on one thread. */
void nn_blas_single(void)
{
#ifdef NN_USE_CBLAS
#ifdef _OPENMP
    if (omp_in_parallel())
        return;
#endif
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
#endif
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void apply_default(void) { apply(0); }

void nn_set_threads(int n)
{
    pthread_once(&once, apply_default);
    apply(n);
}

int nn_get_threads(void)
{
    pthread_once(&once, apply_default);
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int nn_threads_for(double work, double min_work)
{
#ifdef _OPENMP
    if (work < min_work || omp_in_parallel())
        return 1;
    return nn_get_threads();
#else
    (void)work, (void)min_work;
    return 1;
#endif
}

/*
 * blas_tune.c - the thread and kernel settings the tool runs with.
 *
 * Two settings are read once, when the libraries load, so the tool sets
 * them by re-executing itself once (marked by DIGITS_TUNED=1):
 *  - OpenBLAS chooses its kernels at load. Debian 12's OpenBLAS 0.3.21
 *    does not recognise newer Intel processors and falls back to its
 *    slowest x86-64 kernels ("Prescott"). When that happens and the
 *    processor has AVX-512 (or AVX2), OPENBLAS_CORETYPE is set to the
 *    newest family it has.
 *  - GNU OpenMP threads that wait for work spin before they sleep, which
 *    hurts on a busy machine; GOMP_SPINCOUNT=3000 (about a hundred
 *    microseconds) keeps the short waits quick and stops the long spins.
 * Why, and the measurements: docs/design.md, "Tuning the tool".
 * A user's own OPENBLAS_CORETYPE, GOMP_SPINCOUNT or OMP_WAIT_POLICY always
 * wins; DIGITS_NO_TUNE=1 turns all of this off. (BLAS threads need no
 * setting: libnn keeps OpenBLAS on one thread inside its own threads, see
 * src/nn/threads.c.)
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#ifdef NN_USE_CBLAS
#include <cblas.h>
#endif

/* The OpenBLAS kernel family to ask for, or NULL to keep OpenBLAS' own. */
static const char *blas_coretype(void)
{
#if defined(NN_USE_CBLAS) && defined(__x86_64__) && defined(__GNUC__)
    const char *core = openblas_get_corename();
    if (getenv("OPENBLAS_CORETYPE") || !core || strcmp(core, "Prescott"))
        return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

void cli_blas_tune(char **argv)
{
    if (getenv("DIGITS_NO_TUNE") || getenv("DIGITS_TUNED"))
        return;
    const char *core = blas_coretype();
    bool spin = false;
#ifdef _OPENMP
    spin = !getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY");
#endif
    if (!core && !spin)
        return;
    if (core)
        setenv("OPENBLAS_CORETYPE", core, 1);
    if (spin)
        setenv("GOMP_SPINCOUNT", "3000", 1);
    setenv("DIGITS_TUNED", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on as we are */
}

const char *cli_blas_kernels(void)
{
#ifdef NN_USE_CBLAS
    const char *core = openblas_get_corename();
    return core ? core : "unknown";
#else
    return "none";
#endif
}

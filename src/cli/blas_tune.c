/*
 * blas_tune.c - the thread and kernel settings the tool runs with.
 *
 * OpenBLAS chooses its kernels once, when it loads, so the tool sets them
 * by re-executing itself once (marked by DIGITS_TUNED=1): Debian 12's
 * OpenBLAS 0.3.21 does not recognise newer Intel processors (e.g. model
 * 0xCF, Emerald Rapids) and falls back to its slowest x86-64 kernels
 * ("Prescott"), about 3x slower here. When that happens and the processor
 * has AVX-512 (or AVX2), OPENBLAS_CORETYPE is set to the newest kernel
 * family it supports. A user's own OPENBLAS_CORETYPE always wins;
 * DIGITS_NO_TUNE=1 turns this off. (Threads need no setting: libnn keeps
 * OpenBLAS on one thread inside its own, see src/nn/threads.c.)
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
    if (!core)
        return;
    setenv("OPENBLAS_CORETYPE", core, 1);
    setenv("DIGITS_TUNED", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on as we are */
}

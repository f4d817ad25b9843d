/* blas_core.h: the OpenBLAS kernels of the programs (egcam, the benchmarks).
 *
 * OpenBLAS picks its kernels for the CPU model when it loads. A release that does not know
 * the model (Debian 12's 0.3.21 on recent Xeons, say) falls back to its SSE3 "Prescott"
 * kernels, several times slower than the AVX2 or AVX-512 ones the CPU can run. The
 * variable OPENBLAS_CORETYPE chooses the kernels instead, but it is read only when the
 * library loads. egc_blas_core_fix therefore runs the program again (execv of
 * /proc/self/exe with the same arguments) with OPENBLAS_CORETYPE=SkylakeX (AVX-512 F, DQ, BW
 * and VL enabled by the OS) or Haswell (AVX2 and FMA) when, and only when, OpenBLAS fell
 * back to Prescott on a CPU that has those. It does nothing when OPENBLAS_CORETYPE is set
 * already, when EGC_BLAS_AUTO=0, on other CPUs, or when the exec fails (the program then
 * goes on with the kernels it has). Call it first thing in main, before any output. */
#ifndef EGC_BLAS_CORE_H
#define EGC_BLAS_CORE_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *openblas_get_corename(void); /* OpenBLAS */

static inline const char *egc_blas_core_better(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}

static inline void egc_blas_core_fix(char **argv)
{
    const char *off = getenv("EGC_BLAS_AUTO");
    if (getenv("OPENBLAS_CORETYPE") || (off && !strcmp(off, "0"))) return;
    const char *core = openblas_get_corename();
    if (!core || strcmp(core, "Prescott") != 0) return;
    const char *want = egc_blas_core_better();
    if (!want) return;
    if (setenv("OPENBLAS_CORETYPE", want, 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: as we are */
}

#endif

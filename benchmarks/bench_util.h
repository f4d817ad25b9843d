/* bench_util.h: what the benchmark programs share: their input tensors, a monotonic clock,
 * the comparison for sorting timings, and a JSON string writer for their one-line records. */
#ifndef EGC_BENCH_UTIL_H
#define EGC_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "egcam/tensor.h"

/* n floats of deterministic pseudo-random inputs in [-1, 1) (an LCG from a fixed seed), in
 * egc_host_alloc memory: page-locked for `device` when pinned (a CUDA device), ordinary
 * otherwise. NULL when out of memory; free with egc_host_free. */
static inline float *bench_inputs(const char *device, int pinned, size_t n)
{
    void *p = NULL;
    if (egc_host_alloc(pinned ? device : "cpu", n * sizeof(float), &p) != EGC_OK) return NULL;
    float *x = p;
    uint32_t st = 12345;
    for (size_t i = 0; i < n; i++) {
        st = st * 1664525u + 1013904223u;
        x[i] = (float)((st >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
    return x;
}

/* Seconds of CLOCK_MONOTONIC. */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* qsort comparison of doubles, ascending. */
static inline int bench_cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* s as a JSON string on stdout (quotes and backslashes escaped). */
static inline void bench_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

/* ", \"cuda_env\": \"NAME=value ...\"": the CUDA backend's switches set in the environment
 * ("" when none), so that a line says which variant it timed. */
static inline void bench_json_cuda_env(void)
{
    static const char *const knobs[] = {"EGC_CUDA_FUSE",   "EGC_CUDA_HALF_FUSED", "EGC_CUDA_GRAPH_API",
                                        "EGC_CUDA_PAD_C",  "EGC_CUDA_GRAPHS",     "EGC_CUDA_TF32",
                                        "EGC_CUDA_CONV_FIND", "EGC_CUDA_WS_DATA",
                                        "EGC_MERGE_CLEAN"};
    char envs[384];
    size_t el = 0;
    envs[0] = '\0';
    for (size_t k = 0; k < sizeof knobs / sizeof *knobs; k++) {
        const char *v = getenv(knobs[k]);
        if (v && el < sizeof envs)
            el += (size_t)snprintf(envs + el, sizeof envs - el, "%s%s=%s", el ? " " : "",
                                   knobs[k], v);
    }
    printf(", \"cuda_env\": ");
    bench_json_str(envs);
}

#endif

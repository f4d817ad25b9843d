/* bench_util.h: what the benchmark programs share: a monotonic clock, the comparison for
 * sorting timings, and a JSON string writer for their one-line records. */
#ifndef EGC_BENCH_UTIL_H
#define EGC_BENCH_UTIL_H

#include <stdio.h>
#include <time.h>

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

#endif

/* core.h: internal helpers shared by every part of the library: error reporting with
 * file:line, checked allocation, small utilities. Not part of the public API. */
#ifndef EGC_CORE_H
#define EGC_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "egcam/status.h"
#include "egcam/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define EGC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define EGC_PRINTF(a, b)
#endif

/* Records a new error (replacing the thread's message) and returns code.
 * The message is the formatted text followed by " [file:line]". */
egc_status egc_error_set(egc_status code, const char *file, int line, const char *fmt, ...)
    EGC_PRINTF(4, 5);
/* Appends "\n  in EXPR [file:line]" to the current message and returns code: the trace
 * that EGC_TRY builds as an error travels up. */
egc_status egc_error_trace(egc_status code, const char *expr, const char *file, int line);
/* Prefixes the current message with the formatted context ("image cat.jpg: ") and
 * returns code. Use where a lower layer does not know the name of the thing. */
egc_status egc_error_prefix(egc_status code, const char *fmt, ...) EGC_PRINTF(2, 3);

/* Makes msg (copied, truncated to the buffer) this thread's last-error message: for errors
 * made on a worker thread and reported by the thread that waited for it. */
void egc_error_restore(const char *msg);

/* Fail with a fresh message: return EGC_FAIL(EGC_E_IO, "cannot open %s", path); */
#define EGC_FAIL(code, ...) egc_error_set((code), __FILE__, __LINE__, __VA_ARGS__)
/* Evaluate a status expression; on failure add it to the trace and return. */
#define EGC_TRY(expr)                                                              \
    do {                                                                           \
        egc_status egc_try_s_ = (expr);                                            \
        if (egc_try_s_ != EGC_OK)                                                  \
            return egc_error_trace(egc_try_s_, #expr, __FILE__, __LINE__);         \
    } while (0)
/* Like EGC_TRY but jumps to a cleanup label with st set: EGC_TRYG(st, expr, done). */
#define EGC_TRYG(st, expr, label)                                                  \
    do {                                                                           \
        (st) = (expr);                                                             \
        if ((st) != EGC_OK) {                                                      \
            egc_error_trace((st), #expr, __FILE__, __LINE__);                      \
            goto label;                                                            \
        }                                                                          \
    } while (0)

/* Checked allocation: on failure record EGC_E_NOMEM naming what and how many bytes.
 * *out is NULL on failure. egc_calloc zeroes; egc_malloc does not. Sizes are checked
 * for overflow (n * size). Free with free(). */
EGC_NODISCARD egc_status egc_malloc(void **out, size_t n, size_t size, const char *what);
EGC_NODISCARD egc_status egc_calloc(void **out, size_t n, size_t size, const char *what);
EGC_NODISCARD egc_status egc_realloc(void **p, size_t n, size_t size, const char *what);
/* 64-byte aligned allocation for tensors; free with egc_aligned_free. */
EGC_NODISCARD egc_status egc_aligned_alloc(void **out, size_t bytes, const char *what);
void egc_aligned_free(void *p);
/* strdup that records EGC_E_NOMEM. */
EGC_NODISCARD egc_status egc_strdup(char **out, const char *s);

/* Reads a whole file into a malloc'd buffer (NUL-terminated, len excludes the NUL).
 * Errors name the path and the OS reason. */
EGC_NODISCARD egc_status egc_read_file(const char *path, uint8_t **data, size_t *len);

/* Number of worker threads the CPU paths may use (EGC_NUM_THREADS, else online CPUs). */
int egc_num_threads(void);

/* Appends printf-formatted text at buf[*len..cap), keeping buf NUL-terminated and
 * truncating at cap; *len becomes the new length. */
void egc_str_append(char *buf, size_t cap, size_t *len, const char *fmt, ...) EGC_PRINTF(4, 5);

/* Runs fn(i, arg) for i in [0, n) across up to egc_num_threads() threads and waits.
 * fn must be thread-safe for distinct i. Small n or one thread runs inline. */
void egc_parallel_for(int64_t n, void (*fn)(int64_t i, void *arg), void *arg);

/* dst[0..bytes) = src[0..bytes) (host memory, not overlapping), in 1 MiB pieces across the
 * worker threads: a large copy into a page-locked staging buffer at memory speed. */
void egc_parallel_copy(void *dst, const void *src, size_t bytes);

/* The 64-bit FNV-1a hash of bytes p[0..n): a cheap fingerprint of names and records (not for
 * anything an adversary chooses). */
uint64_t egc_fnv1a(const void *p, size_t n);

#define EGC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define EGC_MAX(a, b) ((a) > (b) ? (a) : (b))
#define EGC_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#ifdef __cplusplus
}
#endif
#endif

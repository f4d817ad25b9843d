/* egcam/status.h: status codes and the per-thread last-error message.
 *
 * Every fallible egcam function returns an egc_status; EGC_OK (0) means success.
 * On failure, egc_last_error() returns a message naming the thing that failed and the
 * reason, followed by the failing expression(s) with file:line. The message lives in
 * thread-local storage and stays valid until the next failing call on the same thread. */
#ifndef EGCAM_STATUS_H
#define EGCAM_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__cplusplus) && __cplusplus >= 201703L
#define EGC_NODISCARD [[nodiscard]]
#elif defined(__GNUC__) || defined(__clang__)
#define EGC_NODISCARD __attribute__((warn_unused_result))
#else
#define EGC_NODISCARD
#endif

typedef enum egc_status {
    EGC_OK = 0,
    EGC_E_ARG = 1,         /* invalid argument or usage */
    EGC_E_IO = 2,          /* file missing, unreadable, unwritable */
    EGC_E_FORMAT = 3,      /* corrupt or truncated file, malformed data */
    EGC_E_UNSUPPORTED = 4, /* valid input that egcam does not handle (operator, attribute, type) */
    EGC_E_SHAPE = 5,       /* tensor shapes that do not fit together */
    EGC_E_NOMEM = 6,       /* host or device memory exhausted */
    EGC_E_DEVICE = 7,      /* GPU, driver, CUDA/cuDNN/cuBLAS failure or no device */
    EGC_E_INTERNAL = 8     /* a broken invariant inside egcam: a bug */
} egc_status;

/* Short stable name of a status ("ok", "io", "format", ...). Never NULL. */
const char *egc_status_name(egc_status s);

/* The last error message of this thread ("" when none). Never NULL. */
const char *egc_last_error(void);

/* Forget this thread's last error. */
void egc_clear_error(void);

/* The library's version ("0.1.0"), for reports and for bindings that check what they load. */
const char *egc_version(void);

#ifdef __cplusplus
}
#endif
#endif

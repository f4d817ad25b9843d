/* status.c: the per-thread last-error message and the status names. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

#define EGC_ERRBUF 4096

static _Thread_local char g_err[EGC_ERRBUF];

static const char *base_name(const char *file)
{
    /* Keep "dir/file.c" relative to the source tree: drop everything before "csrc/",
     * "kernels/", "tools/" or "test/", else keep the last component. */
    static const char *const roots[] = {"csrc/", "kernels/", "tools/", "test/", "benchmarks/"};
    for (size_t i = 0; i < EGC_COUNT(roots); i++) {
        const char *p = strstr(file, roots[i]);
        if (p) return p;
    }
    const char *s = strrchr(file, '/');
    return s ? s + 1 : file;
}

const char *egc_status_name(egc_status s)
{
    switch (s) {
    case EGC_OK: return "ok";
    case EGC_E_ARG: return "argument";
    case EGC_E_IO: return "io";
    case EGC_E_FORMAT: return "format";
    case EGC_E_UNSUPPORTED: return "unsupported";
    case EGC_E_SHAPE: return "shape";
    case EGC_E_NOMEM: return "out-of-memory";
    case EGC_E_DEVICE: return "device";
    case EGC_E_INTERNAL: return "internal";
    }
    return "unknown";
}

const char *egc_last_error(void) { return g_err; }

void egc_clear_error(void) { g_err[0] = '\0'; }

#ifndef EGC_VERSION
#define EGC_VERSION "unknown"
#endif
const char *egc_version(void) { return EGC_VERSION; }

void egc_error_restore(const char *msg) { snprintf(g_err, sizeof g_err, "%s", msg ? msg : ""); }

egc_status egc_error_set(egc_status code, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n < sizeof g_err)
        snprintf(g_err + n, sizeof g_err - (size_t)n, " [%s:%d]", base_name(file), line);
    return code;
}

egc_status egc_error_trace(egc_status code, const char *expr, const char *file, int line)
{
    size_t n = strlen(g_err);
    if (n + 1 < sizeof g_err)
        snprintf(g_err + n, sizeof g_err - n, "\n  in %s [%s:%d]", expr, base_name(file), line);
    return code;
}

egc_status egc_error_prefix(egc_status code, const char *fmt, ...)
{
    char pre[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    if (n <= 0) return code;
    size_t pl = strlen(pre), ml = strlen(g_err);
    if (pl + ml + 1 > sizeof g_err) ml = sizeof g_err - pl - 1;
    memmove(g_err + pl, g_err, ml);
    memcpy(g_err, pre, pl);
    g_err[pl + ml] = '\0';
    return code;
}

/* registry.c: backends by name ("cpu", "cuda", "cuda:N") and the device listing printed by
 * `egcam info`. The only place in the library where the CUDA build switch (EGC_WITH_CUDA)
 * is tested. */
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#ifdef EGC_WITH_CUDA
#include "cuda/cuda_backend.h"
#endif

/* Parses "cuda" (device 0) or "cuda:N" with N a decimal in [0, 4096). Returns 1 on a match. */
static int parse_cuda_name(const char *name, int *device)
{
    if (strcmp(name, "cuda") == 0) {
        *device = 0;
        return 1;
    }
    if (strncmp(name, "cuda:", 5) != 0) return 0;
    const char *p = name + 5;
    if (!*p) return 0;
    int v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (*p - '0');
        if (v >= 4096) return 0;
    }
    *device = v;
    return 1;
}

egc_status egc_backend_create(const char *name, egc_backend **out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "egc_backend_create: no output pointer");
    *out = NULL;
    if (!name) return EGC_FAIL(EGC_E_ARG, "egc_backend_create: no backend name");
    if (strcmp(name, "cpu") == 0) return egc_cpu_backend_create(out);
    int device;
    if (parse_cuda_name(name, &device)) {
#ifdef EGC_WITH_CUDA
        return egc_cuda_backend_create(device, out);
#else
        return EGC_FAIL(EGC_E_DEVICE, "backend %s: this egcam was built without CUDA", name);
#endif
    }
    return EGC_FAIL(EGC_E_ARG, "unknown backend '%s' (expected cpu, cuda or cuda:N)", name);
}

void egc_backend_destroy(egc_backend *be)
{
    if (be && be->destroy) be->destroy(be);
}

void egc_backend_list_devices(char *buf, size_t cap)
{
    if (!buf || !cap) return;
    int th = egc_num_threads();
    int k = snprintf(buf, cap, "cpu     CPU (%d thread%s)\n", th, th == 1 ? "" : "s");
    size_t len = k < 0 ? 0 : ((size_t)k < cap ? (size_t)k : cap - 1);
#ifdef EGC_WITH_CUDA
    if (egc_cuda_device_list(buf + len, cap - len) != EGC_OK) {
        const char *why = egc_last_error(); /* first line only: the trace stays out */
        int wl = (int)strcspn(why, "\n");
        snprintf(buf + len, cap - len, "cuda    unavailable: %.*s\n", wl, why);
        egc_clear_error();
    }
#else
    snprintf(buf + len, cap - len, "cuda    unavailable: this egcam was built without CUDA\n");
#endif
}

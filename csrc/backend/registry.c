/* registry.c: backends by name ("cpu", "cuda", "cuda:N"), the device listing printed by
 * `egcam info`, and host memory for a device's inputs (egc_host_alloc). The only place in the library where the CUDA build switch (EGC_WITH_CUDA)
 * is tested. */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/choice_cache.h"
#include "egcam/tensor.h"
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
    char cpu[128];
    egc_cpu_device_name(cpu, sizeof cpu);
    int k = snprintf(buf, cap, "cpu     %s\n", cpu);
    size_t len = k < 0 ? 0 : ((size_t)k < cap ? (size_t)k : cap - 1);
#ifdef EGC_WITH_CUDA
    if (egc_cuda_device_list(buf + len, cap - len) != EGC_OK) {
        const char *why = egc_last_error(); /* first line only: the trace stays out */
        int wl = (int)strcspn(why, "\n");
        snprintf(buf + len, cap - len, "cuda    unavailable: %.*s\n", wl, why);
        egc_clear_error();
    } else { /* where the CUDA backend keeps its timed choices (core/choice_cache.h) */
        len += strlen(buf + len);
        char path[1024];
        if (egc_choice_cache_path("cuda_choices.bin", path, sizeof path)) {
            int n = egc_choice_cache_load(path, NULL, 1 << 20);
            snprintf(buf + len, cap - len, "        choice cache %s (%d choice%s)\n", path, n,
                     n == 1 ? "" : "s");
        } else {
            snprintf(buf + len, cap - len, "        choice cache off\n");
        }
    }
#else
    snprintf(buf + len, cap - len, "cuda    unavailable: this egcam was built without CUDA\n");
#endif
}

/* egc_host_alloc's blocks, in a table guarded by a mutex so that egc_host_pinned and
 * egc_host_free can be asked about any pointer (a caller's own memory is simply not found). */
typedef struct host_block {
    char *p;
    size_t bytes;
    int pinned;
} host_block;

static pthread_mutex_t g_host_mu = PTHREAD_MUTEX_INITIALIZER;
static host_block *g_host;
static size_t g_host_n, g_host_cap;

/* Index of the block holding p, or -1. Call with g_host_mu held. */
static ptrdiff_t host_find(const void *p, int base_only)
{
    const char *c = p;
    for (size_t i = 0; i < g_host_n; i++)
        if (base_only ? c == g_host[i].p : (c >= g_host[i].p && c < g_host[i].p + g_host[i].bytes))
            return (ptrdiff_t)i;
    return -1;
}

static void host_release(void *p, int pinned)
{
#ifdef EGC_WITH_CUDA
    if (pinned) {
        egc_cuda_host_free(p);
        return;
    }
#else
    (void)pinned;
#endif
    egc_aligned_free(p);
}

egc_status egc_host_alloc(const char *device, size_t bytes, void **p)
{
    if (!p || !bytes)
        return EGC_FAIL(EGC_E_ARG, "egc_host_alloc: %zu bytes into %s", bytes,
                        p ? "a pointer" : "NULL");
    *p = NULL;
    if (bytes > SIZE_MAX / 2)
        return EGC_FAIL(EGC_E_NOMEM, "host memory of %zu bytes: too large", bytes);
    void *base = NULL;
    int pinned = 0;
#ifdef EGC_WITH_CUDA
    int dev;
    if (device && parse_cuda_name(device, &dev)) {
        if (egc_cuda_host_alloc(dev, bytes, &base) == EGC_OK) pinned = 1;
        else egc_clear_error(); /* ordinary memory below */
    }
#else
    (void)device;
#endif
    if (!base) EGC_TRY(egc_aligned_alloc(&base, bytes, "host input memory"));
    memset(base, 0, bytes);
    pthread_mutex_lock(&g_host_mu);
    if (g_host_n == g_host_cap) {
        size_t cap = g_host_cap ? 2 * g_host_cap : 16;
        host_block *t = realloc(g_host, cap * sizeof *t);
        if (!t) {
            pthread_mutex_unlock(&g_host_mu);
            host_release(base, pinned);
            return EGC_FAIL(EGC_E_NOMEM, "host memory table of %zu entries", cap);
        }
        g_host = t;
        g_host_cap = cap;
    }
    g_host[g_host_n++] = (host_block){base, bytes, pinned};
    pthread_mutex_unlock(&g_host_mu);
    *p = base;
    return EGC_OK;
}

void egc_host_free(void *p)
{
    if (!p) return;
    pthread_mutex_lock(&g_host_mu);
    ptrdiff_t i = host_find(p, 1);
    host_block b = {NULL, 0, 0};
    if (i >= 0) {
        b = g_host[i];
        g_host[i] = g_host[--g_host_n];
    }
    if (!g_host_n) { /* the last block: the table goes too (no leak at exit) */
        free(g_host);
        g_host = NULL;
        g_host_cap = 0;
    }
    pthread_mutex_unlock(&g_host_mu);
    if (b.p) host_release(b.p, b.pinned);
}

int egc_host_pinned(const void *p)
{
    if (!p) return 0;
    pthread_mutex_lock(&g_host_mu);
    ptrdiff_t i = host_find(p, 0);
    int pinned = i >= 0 && g_host[i].pinned;
    pthread_mutex_unlock(&g_host_mu);
    return pinned;
}

int egc_device_is_cuda(const char *device)
{
    int dev;
    return device && parse_cuda_name(device, &dev);
}

void *egc_backend_stage_alloc(const egc_backend *be, size_t bytes)
{
    int dev;
    void *p = NULL;
    if (!be || !bytes || !parse_cuda_name(be->name, &dev)) return NULL;
    if (egc_host_alloc(be->name, bytes, &p) != EGC_OK) {
        egc_clear_error();
        return NULL;
    }
    if (!egc_host_pinned(p)) { /* ordinary memory: staging through it would only add a copy */
        egc_host_free(p);
        return NULL;
    }
    return p;
}

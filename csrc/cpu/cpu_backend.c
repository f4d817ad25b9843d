/* cpu_backend.c: the CPU implementation of the backend vtable (backend.h). Device memory is
 * 64-byte aligned host memory; ops run the reference kernels of cpu_ops.c synchronously, so
 * sync has nothing to wait for. Scratch buffers of the ops live in a pool (cpu_scratch.c)
 * that is trimmed when the last CPU backend is destroyed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cpu/cpu_impl.h"
#include "cpu/cpu_methods.h"

static pthread_mutex_t g_live_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_live; /* CPU backends alive */

static egc_status cpu_alloc(egc_backend *be, size_t bytes, void **out)
{
    (void)be;
    return egc_aligned_alloc(out, bytes, "CPU backend buffer");
}

static void cpu_free(egc_backend *be, void *p)
{
    (void)be;
    egc_aligned_free(p);
}

static egc_status cpu_copy(egc_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (!bytes) return EGC_OK;
    if (!dst || !src) return EGC_FAIL(EGC_E_ARG, "cpu backend: copy of %zu bytes with a NULL pointer", bytes);
    if (dst != src) memmove(dst, src, bytes);
    return EGC_OK;
}

static egc_status cpu_fill(egc_backend *be, float *dst, float value, int64_t n)
{
    (void)be;
    if (n < 0 || (n && !dst)) return EGC_FAIL(EGC_E_ARG, "cpu backend: fill of %lld floats at %p",
                                              (long long)n, (void *)dst);
    for (int64_t i = 0; i < n; i++) dst[i] = value;
    return EGC_OK;
}

static egc_status cpu_accumulate(egc_backend *be, float *dst, const float *src, int64_t n)
{
    (void)be;
    if (n < 0 || (n && (!dst || !src)))
        return EGC_FAIL(EGC_E_ARG, "cpu backend: accumulate of %lld floats with a NULL pointer",
                        (long long)n);
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
    return EGC_OK;
}

/* The CPU path needs no per-plan state: scratch comes from the pool. */
static egc_status cpu_plan_prepare(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                                   void **state)
{
    (void)be;
    (void)g;
    (void)shapes;
    *state = NULL;
    return EGC_OK;
}

static void cpu_plan_release(egc_backend *be, void *state)
{
    (void)be;
    (void)state;
}

static egc_status cpu_op_forward(egc_backend *be, void *state, const egc_graph *g,
                                 const egc_node *n, const egc_view *in, const egc_view *out)
{
    (void)be;
    (void)state;
    return egc_cpu_forward(g, n, in, out);
}

static egc_status cpu_op_backward(egc_backend *be, void *state, const egc_graph *g,
                                  const egc_node *n, const egc_view *in, const egc_view *out,
                                  const egc_view *dout, const egc_view *din)
{
    (void)be;
    (void)state;
    return egc_cpu_backward(g, n, in, out, dout, din);
}

static egc_status cpu_sync(egc_backend *be)
{
    (void)be;
    return EGC_OK;
}

static void cpu_destroy(egc_backend *be)
{
    if (!be) return;
    free(be);
    pthread_mutex_lock(&g_live_mu);
    int last = --g_live == 0;
    pthread_mutex_unlock(&g_live_mu);
    if (last) egc_cpu_scratch_trim();
}

egc_status egc_cpu_backend_create(egc_backend **out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "egc_cpu_backend_create: out is NULL");
    *out = NULL;
    egc_backend *be = NULL;
    EGC_TRY(egc_calloc((void **)&be, 1, sizeof *be, "CPU backend"));
    snprintf(be->name, sizeof be->name, "cpu");
    int nt = egc_num_threads();
    const char *core = openblas_get_corename();
    snprintf(be->device_name, sizeof be->device_name, "CPU (%d thread%s, OpenBLAS %s kernels)", nt,
             nt == 1 ? "" : "s", core ? core : "unknown");
    be->ctx = NULL;
    be->partial_rows = 1;
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->upload = cpu_copy;
    be->download = cpu_copy;
    be->fill = cpu_fill;
    be->accumulate = cpu_accumulate;
    be->plan_prepare = cpu_plan_prepare;
    be->plan_release = cpu_plan_release;
    be->op_forward = cpu_op_forward;
    be->op_backward = cpu_op_backward;
    be->sync = cpu_sync;
    be->destroy = cpu_destroy;
    egc_cpu_methods_install(be);
    pthread_mutex_lock(&g_live_mu);
    g_live++;
    pthread_mutex_unlock(&g_live_mu);
    *out = be;
    return EGC_OK;
}

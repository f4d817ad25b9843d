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

/* Per-plan state: which trunk Convs apply the Relu or Clip that is their only reader
 * (scratch comes from the pool). NULL when nothing is fused. */
typedef struct cpu_plan {
    const egc_graph *g;
    egc_cpu_act *act;      /* [n_nodes] per Conv: the activation it applies (op 0: none) */
    unsigned char *pass;   /* [n_nodes] per Relu/Clip: its producer applied it */
} cpu_plan;

static egc_status cpu_plan_prepare(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                                   void **state)
{
    (void)be;
    (void)g;
    (void)shapes;
    *state = NULL;
    return EGC_OK;
}

/* Fusion (EGC_CPU_FUSE=0 switches it off): a trunk Conv whose output is not kept and whose
 * only reader is a trunk Relu or Clip (as its input 0) applies that activation to each block
 * of its output while the block is in cache; the Relu/Clip asks to run in place and then
 * does nothing (act is idempotent, so it simply applies it again when not granted). Head
 * nodes keep their own steps: their backward reads the values between them. */
static egc_status cpu_plan_prepare_ex(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                                      const egc_plan_info *info, void **state)
{
    (void)be;
    (void)shapes;
    *state = NULL;
    const char *off = getenv("EGC_CPU_FUSE");
    if (off && !strcmp(off, "0")) return EGC_OK;
    cpu_plan *pl = NULL;
    int any = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const egc_node *n = &g->nodes[i];
        if (n->op != EGC_OP_CONV || info->is_head[i]) continue;
        int v = n->out, reader = -1;
        if (v < 0 || v >= g->n_values || info->keep[v] || v == info->target || v == g->output)
            continue;
        if (egc_graph_readers(g, v, &reader) != 1 || info->is_head[reader] ||
            g->nodes[reader].in[0] != v)
            continue;
        const egc_node *rn = &g->nodes[reader];
        if (rn->op != EGC_OP_RELU && rn->op != EGC_OP_CLIP) continue;
        if (!pl) {
            EGC_TRY(egc_calloc((void **)&pl, 1, sizeof *pl, "CPU plan"));
            pl->g = g;
            egc_status st = egc_calloc((void **)&pl->act, (size_t)g->n_nodes, sizeof *pl->act,
                                       "CPU plan");
            if (st == EGC_OK)
                st = egc_calloc((void **)&pl->pass, (size_t)g->n_nodes, 1, "CPU plan");
            if (st != EGC_OK) {
                free(pl->act);
                free(pl);
                return st;
            }
        }
        pl->act[i].op = rn->op;
        pl->act[i].lo = rn->p.clip.lo;
        pl->act[i].hi = rn->p.clip.hi;
        pl->pass[reader] = 1;
        info->inplace[reader] = 1;
        any = 1;
    }
    *state = any ? pl : NULL;
    return EGC_OK;
}

static void cpu_plan_release(egc_backend *be, void *state)
{
    (void)be;
    cpu_plan *pl = state;
    if (!pl) return;
    free(pl->act);
    free(pl->pass);
    free(pl);
}

static egc_status cpu_op_forward(egc_backend *be, void *state, const egc_graph *g,
                                 const egc_node *n, const egc_view *in, const egc_view *out)
{
    (void)be;
    const cpu_plan *pl = state;
    if (pl && pl->g == g) {
        ptrdiff_t i = n - g->nodes;
        if (i >= 0 && i < g->n_nodes) {
            if (pl->act[i].op) return egc_cpu_conv_forward_checked(g, n, in, out, &pl->act[i]);
            if (pl->pass[i] && in[0].ptr == out->ptr) return EGC_OK; /* applied by the Conv */
        }
    }
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

void egc_cpu_device_name(char *buf, size_t cap)
{
    if (!buf || !cap) return;
    int nt = egc_num_threads();
    const char *core = openblas_get_corename();
    snprintf(buf, cap, "CPU (%d thread%s, OpenBLAS %s kernels)", nt, nt == 1 ? "" : "s",
             core ? core : "unknown");
}

egc_status egc_cpu_backend_create(egc_backend **out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "egc_cpu_backend_create: out is NULL");
    *out = NULL;
    egc_backend *be = NULL;
    EGC_TRY(egc_calloc((void **)&be, 1, sizeof *be, "CPU backend"));
    snprintf(be->name, sizeof be->name, "cpu");
    egc_cpu_device_name(be->device_name, sizeof be->device_name);
    be->ctx = NULL;
    be->partial_rows = 1;
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->upload = cpu_copy;
    be->download = cpu_copy;
    be->fill = cpu_fill;
    be->accumulate = cpu_accumulate;
    be->plan_prepare = cpu_plan_prepare;
    be->plan_prepare_ex = cpu_plan_prepare_ex;
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

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

/* Per-plan state: which trunk Convs apply the residual Add and the Relu or Clip that read
 * their output (scratch comes from the pool). NULL when nothing is fused. */
typedef struct cpu_plan {
    const egc_graph *g;
    egc_cpu_act *act;      /* [n_nodes] per Conv: the activation it applies (op 0: none) */
    int *res;              /* [n_nodes] per Conv: the residual value it adds (-1: none) */
    unsigned char *pass;   /* [n_nodes] per Relu/Clip/Add: PASS_ACT or PASS_ADD, or 0 */
    float *const *values;  /* [n_values] the values' buffers (egc_plan_info.values) */
} cpu_plan;

enum { PASS_ACT = 1, /* a Relu/Clip its producer applied: nothing to do in place */
       PASS_ADD = 2  /* an Add its input-0 Conv did: nothing to do in place, else a copy */ };

static egc_status cpu_plan_prepare(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                                   void **state)
{
    (void)be;
    (void)g;
    (void)shapes;
    *state = NULL;
    return EGC_OK;
}

static void cpu_plan_release(egc_backend *be, void *state);

/* Whether trunk value v (not kept, not the target or the output) has exactly one reader,
 * a trunk node reading it as input 0; that reader's index, or -1. */
static int only_trunk_reader(const egc_graph *g, const egc_plan_info *info, int v)
{
    int r = -1;
    if (v < 0 || v >= g->n_values || info->keep[v] || v == info->target || v == g->output)
        return -1;
    if (egc_graph_readers(g, v, &r) != 1 || r < 0 || info->is_head[r] || g->nodes[r].in[0] != v)
        return -1;
    return r;
}

/* Fusion (EGC_CPU_FUSE=0 switches it off), of trunk nodes only (head nodes keep their own
 * steps: their backward reads the values between them):
 *  - a Conv whose only reader is a Relu or Clip applies that activation to each block of
 *    its output while the block is in cache; the Relu/Clip asks to run in place and then
 *    does nothing (act is idempotent, so it simply applies it again when not granted);
 *  - a Conv whose only reader is an Add of two values of one shape, the Conv's output being
 *    the Add's input 0 and its input 1 made earlier by another node (a residual block's
 *    last convolution), adds that input to each block, and with it the Relu or Clip that is
 *    the Add's only reader; the Add asks to run in place and then does nothing (when not
 *    granted it copies its input 0, which already holds the sum). */
static egc_status cpu_plan_prepare_ex(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                                      const egc_plan_info *info, void **state)
{
    *state = NULL;
    const char *off = getenv("EGC_CPU_FUSE");
    if (off && !strcmp(off, "0")) return EGC_OK;
    cpu_plan *pl = NULL;
    int any = 0;
    egc_status st = EGC_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        const egc_node *n = &g->nodes[i];
        if (n->op != EGC_OP_CONV || info->is_head[i]) continue;
        int reader = only_trunk_reader(g, info, n->out), add = -1;
        if (reader < 0) continue;
        const egc_node *rn = &g->nodes[reader];
        if (rn->op == EGC_OP_ADD) {
            int z = rn->n_in == 2 ? rn->in[1] : -1;
            int zp = z >= 0 && z < g->n_values ? g->values[z].producer : -1;
            if (zp < 0 || zp >= i || z == n->out || rn->out < 0 ||
                !egc_shape_equal(&shapes[z], &shapes[n->out]) ||
                !egc_shape_equal(&shapes[rn->out], &shapes[n->out]))
                continue;
            add = reader;
            reader = only_trunk_reader(g, info, rn->out);
            if (reader >= 0 && g->nodes[reader].op != EGC_OP_RELU &&
                g->nodes[reader].op != EGC_OP_CLIP)
                reader = -1;
        } else if (rn->op != EGC_OP_RELU && rn->op != EGC_OP_CLIP) {
            continue;
        }
        if (!pl) {
            EGC_TRY(egc_calloc((void **)&pl, 1, sizeof *pl, "CPU plan"));
            pl->g = g;
            st = egc_calloc((void **)&pl->act, (size_t)g->n_nodes, sizeof *pl->act, "CPU plan");
            if (st == EGC_OK)
                st = egc_calloc((void **)&pl->res, (size_t)g->n_nodes, sizeof *pl->res, "CPU plan");
            if (st == EGC_OK) st = egc_calloc((void **)&pl->pass, (size_t)g->n_nodes, 1, "CPU plan");
            if (st != EGC_OK) {
                cpu_plan_release(be, pl);
                return st;
            }
            for (int k = 0; k < g->n_nodes; k++) pl->res[k] = -1;
            pl->values = info->values;
        }
        if (add >= 0) {
            pl->res[i] = g->nodes[add].in[1];
            pl->pass[add] = PASS_ADD;
            info->inplace[add] = 1;
        }
        if (reader >= 0) {
            const egc_node *an = &g->nodes[reader];
            pl->act[i].op = an->op;
            pl->act[i].lo = an->p.clip.lo;
            pl->act[i].hi = an->p.clip.hi;
            pl->pass[reader] = PASS_ACT;
            info->inplace[reader] = 1;
        }
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
    free(pl->res);
    free(pl->pass);
    free(pl);
}

static egc_status cpu_op_forward(egc_backend *be, void *state, const egc_graph *g,
                                 const egc_node *n, const egc_view *in, const egc_view *out)
{
    (void)be;
    const cpu_plan *pl = state;
    if (!pl || pl->g != g) return egc_cpu_forward(g, n, in, out);
    ptrdiff_t i = n - g->nodes;
    if (i < 0 || i >= g->n_nodes) return egc_cpu_forward(g, n, in, out);
    if (pl->act[i].op || pl->res[i] >= 0) {
        egc_cpu_act a = pl->act[i];
        a.res = NULL;
        if (pl->res[i] >= 0) {
            a.res = pl->values ? pl->values[pl->res[i]] : NULL;
            if (!a.res)
                return EGC_FAIL(EGC_E_INTERNAL, "node '%s' (Conv): its residual input has no "
                                "buffer", n->name ? n->name : "?");
        }
        return egc_cpu_conv_forward_checked(g, n, in, out, &a);
    }
    if (pl->pass[i] && in[0].ptr == out->ptr) return EGC_OK; /* done by the Conv */
    if (pl->pass[i] == PASS_ADD) { /* input 0 already holds the sum */
        if (!egc_shape_equal(&in[0].shape, &out->shape))
            return EGC_FAIL(EGC_E_INTERNAL, "node '%s' (Add): fused input and output differ in "
                            "shape", n->name ? n->name : "?");
        memcpy(out->ptr, in[0].ptr, (size_t)egc_shape_numel(&out->shape) * sizeof(float));
        return EGC_OK;
    }
    return egc_cpu_forward(g, n, in, out);
}

/* "cpu plan: fused K Conv+Relu/Clip, R Conv+Add(+Relu/Clip)" and the fused Convs by name. */
static void cpu_plan_describe(egc_backend *be, void *state, char *buf, size_t cap)
{
    (void)be;
    if (!buf || !cap) return;
    buf[0] = '\0';
    const cpu_plan *pl = state;
    if (!pl) return;
    const egc_graph *g = pl->g;
    int na = 0, nr = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (pl->res[i] >= 0) nr++;
        else if (pl->act[i].op) na++;
    }
    size_t len = 0;
    egc_str_append(buf, cap, &len, "cpu plan: fused %d Conv+Relu/Clip, %d Conv+Add(+Relu/Clip)\n",
                   na, nr);
    for (int i = 0; i < g->n_nodes; i++) {
        if (pl->res[i] < 0 && !pl->act[i].op) continue;
        const egc_node *n = &g->nodes[i];
        egc_str_append(buf, cap, &len, "  %s: Conv%s%s\n", n->name ? n->name : "?",
                       pl->res[i] >= 0 ? " + Add" : "",
                       pl->act[i].op == EGC_OP_RELU ? " + Relu"
                       : pl->act[i].op == EGC_OP_CLIP ? " + Clip" : "");
    }
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
    be->plan_describe = cpu_plan_describe;
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

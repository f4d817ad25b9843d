/* exec.c: the executor. Plans memory once per (graph, backend, batch, target) and walks the
 * nodes, calling only the backend vtable. See exec.h for the contract. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/exec.h"

#define EGC_ALIGN 256

struct egc_plan {
    const egc_graph *g;
    egc_backend *be;
    int64_t batch;
    int64_t rows;               /* rows the runs compute (egc_plan_set_rows; batch by default) */
    int rows_ok;                /* the backend and the graph allow fewer rows than the batch */
    int separable;              /* no node mixes rows (rows_separable) */
    int target;
    egc_shape *shapes;          /* [n_values] at this batch */
    float **vptr;               /* [n_values] device storage or NULL */
    float **gptr;               /* [n_values] gradient storage or NULL */
    unsigned char *is_head;     /* [n_nodes] */
    unsigned char *need_grad;   /* [n_values] */
    void *slab;                 /* constants */
    size_t slab_bytes;
    void *arena;                /* activations, then gradients */
    size_t arena_bytes;
    size_t grad_off, grad_bytes;
    void *bstate;               /* backend per-plan state */
    egc_plan_opts opts;
    int n_shared;               /* values sharing another value's buffer (in-place nodes) */
    int n_half_values;          /* values the backend stores in 2-byte elements */
    int trunk_runs;             /* successful trunk forwards so far */
    int graph_state;            /* 0: not recorded yet, 1: replaying, -1: off */
    char graph_note[160];       /* why recording is off */
};

typedef struct live_item {
    int v;
    size_t size;
    int def, last;
    size_t off;
} live_item;

static size_t align_up(size_t x) { return (x + EGC_ALIGN - 1) & ~(size_t)(EGC_ALIGN - 1); }

static int cmp_size_desc(const void *a, const void *b)
{
    const live_item *x = (const live_item *)a, *y = (const live_item *)b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->def - y->def;
}

static int cmp_off(const void *a, const void *b)
{
    const live_item *x = *(const live_item *const *)a, *y = *(const live_item *const *)b;
    return x->off < y->off ? -1 : (x->off > y->off ? 1 : 0);
}

/* Whether every row of a batch is computed from that row alone, so that the first n rows can
 * run by themselves: every activation has the batch as its first dimension, constants read
 * by row-wise ops broadcast over it (leading dimension 1, or fewer dimensions), and no node
 * mixes rows (Concat, Slice, Softmax on axis 0; a Transpose moving it; Gemm or MatMul
 * reading an activation other than as the rows of A; Pad on axis 0). */
static int rows_separable(const egc_graph *g, const egc_shape *shapes, int64_t batch)
{
    for (int v = 0; v < g->n_values; v++) {
        if (g->values[v].is_const || g->values[v].producer < 0) continue;
        if (shapes[v].ndim < 1 || shapes[v].d[0] != batch) return 0;
    }
    if (shapes[g->input].ndim < 1 || shapes[g->input].d[0] != batch) return 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const egc_node *n = &g->nodes[i];
        const egc_shape *ys = &shapes[n->out];
        const int r = ys->ndim;
        const int binary = n->op == EGC_OP_ADD || n->op == EGC_OP_SUB || n->op == EGC_OP_MUL ||
                           n->op == EGC_OP_DIV;
        for (int j = 0; j < n->n_in && binary; j++) {
            int v = n->in[j];
            if (v < 0) continue;
            if (g->values[v].is_const) { /* a constant broadcasts over the rows */
                const egc_shape *cs = &g->values[v].shape;
                if (cs->ndim == r && cs->d[0] != 1) return 0;
            } else if (shapes[v].ndim != r) { /* an activation: its rows are the output's */
                return 0;
            }
        }
        int ax;
        switch (n->op) {
        case EGC_OP_CONCAT:
        case EGC_OP_SOFTMAX:
            ax = n->p.axis.axis < 0 ? n->p.axis.axis + r : n->p.axis.axis;
            if (ax <= 0) return 0;
            break;
        case EGC_OP_SLICE:
            for (int k = 0; k < n->p.slice.n; k++) {
                int64_t a = n->p.slice.axes[k] < 0 ? n->p.slice.axes[k] + r : n->p.slice.axes[k];
                if (a == 0) return 0;
            }
            break;
        case EGC_OP_TRANSPOSE:
            if (n->p.transpose.n < 1 || n->p.transpose.perm[0] != 0) return 0;
            break;
        case EGC_OP_PAD:
            if (n->p.pad.n < 1 || n->p.pad.pads[0] != 0 || n->p.pad.pads[n->p.pad.n] != 0) return 0;
            break;
        case EGC_OP_GEMM:
            if (n->n_in < 2 || n->p.gemm.trans_a || n->in[0] < 0 || g->values[n->in[0]].is_const ||
                n->in[1] < 0 || !g->values[n->in[1]].is_const)
                return 0;
            if (n->n_in > 2 && n->in[2] >= 0 && g->values[n->in[2]].is_const &&
                g->values[n->in[2]].shape.ndim == 2 && g->values[n->in[2]].shape.d[0] != 1)
                return 0;
            break;
        case EGC_OP_MATMUL:
            if (n->n_in < 2 || n->in[0] < 0 || g->values[n->in[0]].is_const || n->in[1] < 0) return 0;
            if (!g->values[n->in[1]].is_const &&
                (shapes[n->in[0]].ndim < 3 || shapes[n->in[1]].ndim != shapes[n->in[0]].ndim))
                return 0; /* activation x activation: rows mix unless batched alike */
            if (g->values[n->in[1]].is_const && g->values[n->in[1]].shape.ndim > 2) return 0;
            break;
        default:
            break;
        }
    }
    return 1;
}

int egc_graph_rows_apart(const egc_graph *g)
{
    if (g->declared_batch > 1) return 1;
    egc_shape *sh = NULL;
    if (egc_calloc((void **)&sh, (size_t)g->n_values + 1, sizeof *sh, "graph shapes") != EGC_OK)
        return -1;
    int ok = egc_graph_infer(g, 2, sh) == EGC_OK && rows_separable(g, sh, 2);
    if (!ok) egc_clear_error();
    free(sh);
    return ok;
}

/* Greedy first-fit placement of items whose lifetimes overlap; returns the arena size. */
static egc_status place_items(live_item *it, int n, size_t *total)
{
    qsort(it, (size_t)n, sizeof *it, cmp_size_desc);
    live_item **conf = NULL;
    EGC_TRY(egc_malloc((void **)&conf, (size_t)n + 1, sizeof *conf, "memory plan"));
    size_t top = 0;
    for (int i = 0; i < n; i++) {
        int nc = 0;
        for (int j = 0; j < i; j++)
            if (!(it[j].last < it[i].def || it[i].last < it[j].def)) conf[nc++] = &it[j];
        qsort(conf, (size_t)nc, sizeof *conf, cmp_off);
        size_t off = 0;
        for (int j = 0; j < nc; j++) {
            if (conf[j]->off >= off + it[i].size) break;
            size_t end = conf[j]->off + conf[j]->size;
            if (end > off) off = end;
        }
        it[i].off = off;
        if (off + it[i].size > top) top = off + it[i].size;
    }
    free(conf);
    *total = top;
    return EGC_OK;
}

void egc_plan_destroy(egc_plan *p)
{
    if (!p) return;
    if (p->be) {
        if (p->bstate && p->be->plan_release) p->be->plan_release(p->be, p->bstate);
        if (p->slab) p->be->free(p->be, p->slab);
        if (p->arena) p->be->free(p->be, p->arena);
    }
    free(p->shapes);
    free(p->vptr);
    free(p->gptr);
    free(p->is_head);
    free(p->need_grad);
    free(p);
}

static int node_uses_float_const(const egc_graph *g, int v)
{
    return v >= 0 && g->values[v].is_const && g->values[v].is_float && g->values[v].f32;
}

void egc_plan_opts_default(egc_plan_opts *o)
{
    memset(o, 0, sizeof *o);
    o->precision = EGC_PREC_FP32;
    o->graphs = 1;
}

egc_status egc_plan_create(const egc_graph *g, egc_backend *be, int64_t batch, int target,
                           egc_plan **out)
{
    return egc_plan_create_ex(g, be, batch, target, NULL, out);
}

/* Root of value v in the buffer-sharing forest. */
static int share_root(const int *root, int v)
{
    while (root[v] != v) v = root[v];
    return v;
}

/* What plan_prepare_ex learns of plan p (its precision, options, target, head, the values'
 * buffers), with the keep flags and the in-place and 2-byte request arrays given. */
static void plan_info(const egc_plan *p, const unsigned char *keep, unsigned char *inplace,
                      unsigned char *half, egc_plan_info *info)
{
    memset(info, 0, sizeof *info);
    info->precision = p->opts.precision;
    info->lean = p->opts.lean;
    info->values = p->vptr;
    info->target = p->target;
    info->is_head = p->is_head;
    info->keep = keep;
    info->inplace = inplace;
    info->half = half;
}

egc_status egc_plan_create_ex(const egc_graph *g, egc_backend *be, int64_t batch, int target,
                              const egc_plan_opts *opts, egc_plan **out)
{
    *out = NULL;
    if (batch < 1) return EGC_FAIL(EGC_E_ARG, "batch size must be at least 1 (got %lld)",
                                   (long long)batch);
    if (target >= g->n_values || (target >= 0 && g->values[target].is_const))
        return EGC_FAIL(EGC_E_ARG, "target value %d is not an activation of the graph", target);
    egc_status st = EGC_OK;
    live_item *items = NULL;
    unsigned char *dep = NULL, *reach = NULL, *keep = NULL, *inplace = NULL, *half = NULL;
    int *root = NULL;
    egc_plan *p = NULL;
    const int nv = g->n_values, nn = g->n_nodes;
    EGC_TRY(egc_calloc((void **)&p, 1, sizeof *p, "plan"));
    p->g = g;
    p->be = be;
    p->batch = batch;
    p->rows = batch;
    p->target = target;
    if (opts) p->opts = *opts;
    else egc_plan_opts_default(&p->opts);
    if (p->opts.precision != EGC_PREC_FP32 && p->opts.precision != EGC_PREC_MIXED) {
        st = EGC_FAIL(EGC_E_ARG, "plan: unknown precision %d", (int)p->opts.precision);
        goto fail;
    }
    if (!p->opts.graphs) {
        p->graph_state = -1;
        snprintf(p->graph_note, sizeof p->graph_note, "off (not asked)");
    }
    EGC_TRYG(st, egc_calloc((void **)&p->shapes, (size_t)nv + 1, sizeof *p->shapes, "plan"), fail);
    EGC_TRYG(st, egc_calloc((void **)&p->vptr, (size_t)nv + 1, sizeof *p->vptr, "plan"), fail);
    EGC_TRYG(st, egc_calloc((void **)&p->gptr, (size_t)nv + 1, sizeof *p->gptr, "plan"), fail);
    EGC_TRYG(st, egc_calloc((void **)&p->is_head, (size_t)nn + 1, 1, "plan"), fail);
    EGC_TRYG(st, egc_calloc((void **)&p->need_grad, (size_t)nv + 1, 1, "plan"), fail);
    EGC_TRYG(st, egc_calloc((void **)&dep, (size_t)nv + 1, 1, "plan"), fail);
    EGC_TRYG(st, egc_calloc((void **)&reach, (size_t)nv + 1, 1, "plan"), fail);
    EGC_TRYG(st, egc_calloc((void **)&keep, (size_t)nv + 1, 1, "plan"), fail);
    EGC_TRYG(st, egc_calloc((void **)&inplace, (size_t)nn + 1, 1, "plan"), fail);
    EGC_TRYG(st, egc_calloc((void **)&half, (size_t)nv + 1, 1, "plan"), fail);
    EGC_TRYG(st, egc_malloc((void **)&root, (size_t)nv + 1, sizeof *root, "plan"), fail);
    EGC_TRYG(st, egc_graph_infer(g, batch, p->shapes), fail);
    /* (a backend that records the trunk replays whole batches: none of that) */
    p->separable = batch > 1 && rows_separable(g, p->shapes, batch);
    p->rows_ok = be->partial_rows && !be->capture_begin && p->separable;

    /* Head: nodes depending on the target; gradients: head values that reach the output. */
    if (target >= 0) {
        dep[target] = 1;
        for (int i = 0; i < nn; i++) {
            const egc_node *n = &g->nodes[i];
            for (int j = 0; j < n->n_in; j++)
                if (n->in[j] >= 0 && dep[n->in[j]]) p->is_head[i] = 1;
            if (p->is_head[i]) dep[n->out] = 1;
        }
        reach[g->output] = 1;
        for (int i = nn - 1; i >= 0; i--) {
            const egc_node *n = &g->nodes[i];
            if (!p->is_head[i] || !reach[n->out]) continue;
            for (int j = 0; j < n->n_in; j++)
                if (n->in[j] >= 0 && dep[n->in[j]]) reach[n->in[j]] = 1;
        }
        for (int v = 0; v < nv; v++) p->need_grad[v] = dep[v] && reach[v];
        if (!p->need_grad[target]) {
            st = EGC_FAIL(EGC_E_ARG, "the output '%s' does not depend on the target '%s'",
                          g->values[g->output].name, g->values[target].name);
            goto fail;
        }
    }

    /* Constants read by runtime nodes: one slab. */
    size_t slab = 0;
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) {
            int v = g->nodes[i].in[j];
            if (node_uses_float_const(g, v) && !keep[v]) {
                keep[v] = 1; /* marks "uploaded"; keep[] is reset before lifetimes */
                slab += align_up((size_t)egc_shape_numel(&g->values[v].shape) * sizeof(float));
            }
        }
    if (slab) {
        EGC_TRYG(st, be->alloc(be, slab, &p->slab), fail);
        p->slab_bytes = slab;
        size_t off = 0;
        for (int v = 0; v < nv; v++) {
            if (!keep[v]) continue;
            size_t bytes = (size_t)egc_shape_numel(&g->values[v].shape) * sizeof(float);
            p->vptr[v] = (float *)((char *)p->slab + off);
            p->shapes[v] = g->values[v].shape;
            EGC_TRYG(st, be->upload(be, p->vptr[v], g->values[v].f32, bytes), fail);
            off += align_up(bytes);
        }
    }
    memset(keep, 0, (size_t)nv + 1);

    /* Activation lifetimes: time 0 = input, node i runs at time i + 1. */
    const int forever = nn + 2;
    int *def = NULL, *last = NULL;
    EGC_TRYG(st, egc_malloc((void **)&def, (size_t)nv + 1, sizeof(int), "plan"), fail);
    st = egc_malloc((void **)&last, (size_t)nv + 1, sizeof(int), "plan");
    if (st != EGC_OK) {
        free(def);
        goto fail;
    }
    for (int v = 0; v < nv; v++) def[v] = last[v] = -1;
    def[g->input] = last[g->input] = 0;
    for (int i = 0; i < nn; i++) {
        const egc_node *n = &g->nodes[i];
        def[n->out] = last[n->out] = i + 1;
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j];
            if (v >= 0 && !g->values[v].is_const && last[v] < i + 1) last[v] = i + 1;
        }
        if (p->is_head[i]) {
            keep[n->out] = 1;
            for (int j = 0; j < n->n_in; j++)
                if (n->in[j] >= 0 && !g->values[n->in[j]].is_const) keep[n->in[j]] = 1;
        }
    }
    keep[g->input] = keep[g->output] = 1;
    if (target >= 0) keep[target] = 1;

    /* The backend's preparation (algorithms, workspaces) and its in-place requests. */
    if (be->plan_prepare_ex) {
        egc_plan_info info;
        plan_info(p, keep, inplace, half, &info);
        EGC_TRYG(st, be->plan_prepare_ex(be, g, p->shapes, &info, &p->bstate), fail_dl);
    } else if (be->plan_prepare) {
        EGC_TRYG(st, be->plan_prepare(be, g, p->shapes, &p->bstate), fail_dl);
    }
    /* Granted in-place requests: output and input 0 share one buffer whose lifetime covers
     * both (node i must be the input's last reader and the input must not be kept). */
    for (int v = 0; v < nv; v++) root[v] = v;
    for (int i = 0; i < nn; i++) {
        if (!inplace[i]) continue;
        const egc_node *n = &g->nodes[i];
        int vi = n->n_in > 0 ? n->in[0] : -1, vo = n->out;
        if (vi < 0 || vi >= nv || vo < 0 || vo >= nv || vi == vo || g->values[vi].is_const ||
            vi == g->input || keep[vi] || def[vi] < 0 || last[vi] != i + 1 ||
            egc_shape_numel(&p->shapes[vi]) != egc_shape_numel(&p->shapes[vo]))
            continue;
        int other = 0;
        for (int j = 1; j < n->n_in; j++)
            if (n->in[j] == vi) other = 1;
        if (other) continue;
        int ri = share_root(root, vi), ro = share_root(root, vo);
        if (ri == ro) continue;
        root[ro] = ri;
        p->n_shared++;
    }
    /* Bytes per element of each value: 2 where the backend stores it in fp16 (never for the
     * input or a kept value, whose fp32 contents callers and the head read). */
    for (int v = 0; v < nv; v++) {
        if (half[v] && (v == g->input || keep[v] || g->values[v].is_const)) half[v] = 0;
        p->n_half_values += half[v];
    }
#define VALUE_BYTES(v) align_up((size_t)egc_shape_numel(&p->shapes[v]) * (half[v] ? 2u : sizeof(float)))
    int ni = 0;
    EGC_TRYG(st, egc_calloc((void **)&items, (size_t)nv + 1, sizeof *items, "plan"), fail_dl);
    for (int v = 0; v < nv; v++) { /* one item per root: the union of its members' lifetimes */
        if (def[v] < 0 || g->values[v].is_const || share_root(root, v) != v) continue;
        live_item *it = &items[ni++];
        it->v = v;
        it->size = VALUE_BYTES(v);
        if (!it->size) it->size = EGC_ALIGN;
        it->def = def[v];
        it->last = keep[v] ? forever : last[v];
    }
    for (int v = 0; v < nv; v++) {
        if (def[v] < 0 || g->values[v].is_const || share_root(root, v) == v) continue;
        int r = share_root(root, v);
        for (int k = 0; k < ni; k++) {
            if (items[k].v != r) continue;
            size_t sz = VALUE_BYTES(v);
            if (sz > items[k].size) items[k].size = sz;
            if (def[v] < items[k].def) items[k].def = def[v];
            int lv = keep[v] ? forever : last[v];
            if (lv > items[k].last) items[k].last = lv;
            break;
        }
    }
#undef VALUE_BYTES
    size_t act_bytes = 0;
    EGC_TRYG(st, place_items(items, ni, &act_bytes), fail_dl);
    size_t gbytes = 0;
    for (int v = 0; v < nv; v++)
        if (p->need_grad[v]) gbytes += align_up((size_t)egc_shape_numel(&p->shapes[v]) * sizeof(float));
    p->grad_off = align_up(act_bytes);
    p->grad_bytes = gbytes;
    p->arena_bytes = p->grad_off + gbytes;
    EGC_TRYG(st, be->alloc(be, p->arena_bytes ? p->arena_bytes : EGC_ALIGN, &p->arena), fail_dl);
    for (int i = 0; i < ni; i++) p->vptr[items[i].v] = (float *)((char *)p->arena + items[i].off);
    for (int v = 0; v < nv; v++)
        if (def[v] >= 0 && !g->values[v].is_const && share_root(root, v) != v)
            p->vptr[v] = p->vptr[share_root(root, v)];
    size_t goff = p->grad_off;
    for (int v = 0; v < nv; v++) {
        if (!p->need_grad[v]) continue;
        p->gptr[v] = (float *)((char *)p->arena + goff);
        goff += align_up((size_t)egc_shape_numel(&p->shapes[v]) * sizeof(float));
    }
    free(def);
    free(last);
    free(items);
    free(dep);
    free(reach);
    free(keep);
    free(inplace);
    free(half);
    free(root);
    *out = p;
    return EGC_OK;
fail_dl:
    free(def);
    free(last);
fail:
    free(items);
    free(dep);
    free(reach);
    free(keep);
    free(inplace);
    free(half);
    free(root);
    egc_plan_destroy(p);
    return st;
}

/* The shape of value v as the runs see it: the first dimension is the active rows. */
static egc_shape active_shape(const egc_plan *p, int v)
{
    egc_shape s = p->shapes[v];
    if (p->rows != p->batch && !p->g->values[v].is_const && s.ndim > 0 && s.d[0] == p->batch)
        s.d[0] = p->rows;
    return s;
}

egc_view egc_plan_value(const egc_plan *p, int v)
{
    egc_view r;
    memset(&r, 0, sizeof r);
    if (v < 0 || v >= p->g->n_values) return r;
    r.ptr = p->vptr[v];
    r.shape = active_shape(p, v);
    return r;
}

egc_view egc_plan_grad(const egc_plan *p, int v)
{
    egc_view r;
    memset(&r, 0, sizeof r);
    if (v < 0 || v >= p->g->n_values) return r;
    r.ptr = p->gptr[v];
    r.shape = active_shape(p, v);
    return r;
}

int64_t egc_plan_set_rows(egc_plan *p, int64_t n)
{
    p->rows = p->batch;
    if (n >= 1 && n < p->batch && p->rows_ok) p->rows = n;
    return p->rows;
}

egc_status egc_plan_use_rows(egc_plan *p, int64_t n)
{
    int64_t rows = egc_plan_set_rows(p, n);
    if (rows <= n || n < 0) return EGC_OK;
    egc_view in = egc_plan_value(p, p->g->input); /* [rows, ...] */
    int64_t per = egc_shape_numel(&in.shape) / rows;
    return p->be->fill(p->be, in.ptr + n * per, 0.0f, (rows - n) * per);
}

int64_t egc_plan_rows(const egc_plan *p) { return p->rows; }

int64_t egc_plan_batch(const egc_plan *p) { return p->batch; }

size_t egc_plan_bytes(const egc_plan *p) { return p->slab_bytes + p->arena_bytes; }

size_t egc_plan_arena_bytes(const egc_plan *p) { return p->arena_bytes; }

static void node_views(const egc_plan *p, const egc_node *n, egc_view *in, egc_view *out)
{
    for (int j = 0; j < n->n_in; j++) in[j] = egc_plan_value(p, n->in[j]);
    *out = egc_plan_value(p, n->out);
}

static egc_status run_nodes(egc_plan *p, int head)
{
    egc_view in[EGC_NODE_MAX_IN], out;
    for (int i = 0; i < p->g->n_nodes; i++) {
        if (p->target >= 0 && (int)p->is_head[i] != head) continue;
        const egc_node *n = &p->g->nodes[i];
        node_views(p, n, in, &out);
        egc_status st = p->be->op_forward(p->be, p->bstate, p->g, n, in, &out);
        if (st != EGC_OK)
            return egc_error_trace(st, n->name, __FILE__, __LINE__);
    }
    return EGC_OK;
}

/* Trunk forward with recording: plain op calls on the first run (algorithm searches and
 * one-time conversions happen there), a recording on the second, replays afterwards. A
 * recording that fails turns recording off for the plan and the nodes run plainly. */
egc_status egc_plan_forward_trunk(egc_plan *p)
{
    egc_backend *be = p->be;
    if (p->graph_state == 0 && (!be->capture_begin || !be->capture_end || !be->replay)) {
        p->graph_state = -1;
        snprintf(p->graph_note, sizeof p->graph_note, "off (the backend does not record)");
    }
    if (p->graph_state == 1) return be->replay(be, p->bstate);
    if (p->graph_state == 0 && p->trunk_runs >= 1) {
        if (be->capture_begin(be, p->bstate) == EGC_OK) {
            egc_status rs = run_nodes(p, 0);
            int ok = 0;
            egc_status es = be->capture_end(be, p->bstate, &ok);
            if (rs == EGC_OK && es == EGC_OK && ok) {
                p->graph_state = 1;
                snprintf(p->graph_note, sizeof p->graph_note, "recorded, replaying");
                egc_status st = be->replay(be, p->bstate);
                if (st == EGC_OK) p->trunk_runs++;
                return st;
            }
            snprintf(p->graph_note, sizeof p->graph_note, "off (recording failed: %.120s)",
                     rs != EGC_OK ? egc_last_error() : es != EGC_OK ? egc_last_error()
                                                                     : "see the backend's note");
        } else {
            snprintf(p->graph_note, sizeof p->graph_note, "off (%.140s)", egc_last_error());
        }
        p->graph_state = -1;
    }
    EGC_TRY(run_nodes(p, 0));
    p->trunk_runs++;
    return EGC_OK;
}


void egc_plan_describe(const egc_plan *p, char *buf, size_t cap)
{
    if (!buf || !cap) return;
    buf[0] = '\0';
    size_t len = 0;
    egc_str_append(buf, cap, &len, "plan: %s, batch %lld, precision %s, %d shared buffer%s, "
                    "%d value%s stored in 2 bytes, arena %.1f MiB, graph replay %s\n",
                    p->be->name, (long long)p->batch, egc_precision_name(p->opts.precision),
                    p->n_shared, p->n_shared == 1 ? "" : "s", p->n_half_values,
                    p->n_half_values == 1 ? "" : "s", (double)p->arena_bytes / 1048576.0,
                    p->graph_state == 1 ? "on" : p->graph_state == 0 ? "not recorded yet"
                                                                     : p->graph_note);
    if (p->be->plan_describe && p->bstate && len + 1 < cap)
        p->be->plan_describe(p->be, p->bstate, buf + len, cap - len);
}

egc_status egc_plan_forward_head(egc_plan *p)
{
    if (p->target < 0) return EGC_OK;
    return run_nodes(p, 1);
}

egc_status egc_plan_forward(egc_plan *p)
{
    EGC_TRY(egc_plan_forward_trunk(p));
    EGC_TRY(egc_plan_forward_head(p));
    return EGC_OK;
}

egc_status egc_plan_backward(egc_plan *p, const float *seed)
{
    if (p->target < 0) return EGC_FAIL(EGC_E_ARG, "backward needs a plan with a target layer");
    const egc_graph *g = p->g;
    EGC_TRY(p->be->fill(p->be, (float *)((char *)p->arena + p->grad_off), 0.0f,
                        (int64_t)(p->grad_bytes / sizeof(float))));
    egc_shape os = active_shape(p, g->output);
    EGC_TRY(p->be->accumulate(p->be, p->gptr[g->output], seed, egc_shape_numel(&os)));
    egc_view in[EGC_NODE_MAX_IN], din[EGC_NODE_MAX_IN], out, dout;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const egc_node *n = &g->nodes[i];
        if (!p->is_head[i] || !p->need_grad[n->out]) continue;
        node_views(p, n, in, &out);
        dout = egc_plan_grad(p, n->out);
        int any = 0;
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j];
            din[j] = egc_plan_grad(p, v);
            if (v < 0 || !p->need_grad[v]) din[j].ptr = NULL;
            else any = 1;
        }
        if (!any) continue;
        egc_status st = p->be->op_backward(p->be, p->bstate, g, n, in, &out, &dout, din);
        if (st != EGC_OK) return egc_error_trace(st, n->name, __FILE__, __LINE__);
    }
    return EGC_OK;
}

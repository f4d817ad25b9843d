/* batch_first.c: a graph exported at batch 1 that moves or merges the batch axis, rewritten so
 * that every activation keeps the batch as its first dimension (see batch_first.h).
 *
 * The shapes of the lowered graph are those of one image. Each activation of a batch of B
 * images is stored as [B] + (its shape for one image): for most values that shape starts
 * with the size-1 batch axis, and [B, 1, ...] is [B, ...] as the executor already stores it
 * ("batch-first" values, left as they are). The others ("moved" values: the shape for one
 * image does not start with 1, e.g. attention's [tokens, 1, channels] or [heads, tokens,
 * dims]) get the extra leading axis in the graph: [1, tokens, 1, channels] for one image.
 * A node touching a moved value, or the first axis (a Transpose moving it, a Concat, Slice or
 * Softmax along it, a Gemm on a moved input), is rewritten to work on that form: its axes
 * shift by one, a Transpose keeps axis 0 first, a Reshape gets its output shape with the
 * batch copied, a Gemm becomes a MatMul (and an Add); its batch-first inputs are viewed with
 * the extra axis (a Reshape) and a batch-first output drops it again (a Reshape). The
 * computation of each image is the file's for one image, and images never mix.
 * Convolutions, pooling, batch normalization and Pad on moved values are not rewritten:
 * such a graph stays as it was (and runs one image per pass). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/batch_first.h"

typedef struct bf {
    const egc_graph *g;  /* the graph as lowered (read only until the commit) */
    egc_value *vals;     /* the rewritten values: g's, then new ones */
    int nv, capv;
    egc_node *nodes;     /* the rewritten nodes */
    unsigned char *own;  /* per node: 1 when its name was made here */
    int nn, capn;
    int *view;           /* per value of g: its value with the extra axis (-1: none yet) */
} bf;

static int is_act(const bf *b, int v) { return v >= 0 && !b->g->values[v].is_const; }

/* A moved value: an activation whose shape for one image does not start with 1. */
static int moved(const bf *b, int v)
{
    const egc_shape *s = &b->g->values[v].shape;
    return is_act(b, v) && s->ndim >= 1 && s->d[0] != 1;
}

/* [1] + s */
static egc_shape lead1(const egc_shape *s)
{
    egc_shape r;
    memset(&r, 0, sizeof r);
    r.ndim = s->ndim + 1;
    r.d[0] = 1;
    for (int i = 0; i < s->ndim; i++) r.d[i + 1] = s->d[i];
    return r;
}

static egc_status bf_new_value(bf *b, const char *base, const char *suffix,
                               const egc_shape *s, int *id)
{
    if (b->nv == b->capv) {
        int cap = b->capv * 2 + 16;
        EGC_TRY(egc_realloc((void **)&b->vals, (size_t)cap, sizeof *b->vals, "graph values"));
        b->capv = cap;
    }
    egc_value *v = &b->vals[b->nv];
    EGC_TRY(egc_value_make(v, base, suffix, s));
    v->batch_moved = 1;
    *id = b->nv++;
    return EGC_OK;
}

/* Appends node r (name: `name` borrowed when suffix is NULL, else name + suffix made here)
 * writing value r->out. */
static egc_status bf_add(bf *b, egc_node *r, const char *name, const char *suffix)
{
    if (b->nn == b->capn) {
        int cap = b->capn * 2 + 16;
        EGC_TRY(egc_realloc((void **)&b->nodes, (size_t)cap, sizeof *b->nodes, "graph nodes"));
        EGC_TRY(egc_realloc((void **)&b->own, (size_t)cap, 1, "graph nodes"));
        b->capn = cap;
    }
    b->own[b->nn] = 0;
    if (suffix) {
        size_t len = strlen(name) + strlen(suffix) + 1;
        char *nm = NULL;
        EGC_TRY(egc_malloc((void **)&nm, len, 1, "node name"));
        snprintf(nm, len, "%s%s", name, suffix);
        r->name = nm;
        b->own[b->nn] = 1;
    } else {
        r->name = (char *)name;
    }
    b->vals[r->out].producer = b->nn;
    b->nodes[b->nn++] = *r;
    return EGC_OK;
}

static void bf_init(egc_node *r, egc_op op)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < EGC_NODE_MAX_IN; i++) r->in[i] = -1;
    r->op = op;
}

/* A Reshape of value `in` to shape s (the batch, dim 0, copied) into value `out`. */
static egc_status bf_reshape(bf *b, int in, int out, const egc_shape *s, const char *name,
                             const char *suffix)
{
    egc_node r;
    bf_init(&r, EGC_OP_RESHAPE);
    r.n_in = 1;
    r.in[0] = in;
    r.out = out;
    r.p.reshape.flatten_axis = -1;
    r.p.reshape.n = s->ndim;
    r.p.reshape.dims[0] = 0;
    for (int i = 1; i < s->ndim; i++) r.p.reshape.dims[i] = s->d[i];
    return bf_add(b, &r, name, suffix);
}

/* The form of input v the rewritten node `reader` reads: constants as they are, moved values
 * as they are now, batch-first values viewed with the extra axis (a Reshape, made once, named
 * after its first reader so that it lies in that reader's module scope). */
static egc_status bf_in(bf *b, int v, const char *reader, int *id)
{
    *id = v;
    if (!is_act(b, v) || moved(b, v)) return EGC_OK;
    if (b->view[v] >= 0) {
        *id = b->view[v];
        return EGC_OK;
    }
    const egc_value *ov = &b->g->values[v];
    if (ov->shape.ndim + 1 > EGC_MAX_DIMS) return EGC_E_UNSUPPORTED;
    const egc_shape s = lead1(&ov->shape);
    EGC_TRY(bf_new_value(b, ov->name, "/batch_view", &s, id));
    EGC_TRY(bf_reshape(b, v, *id, &s, reader, "/batch_view"));
    b->view[v] = *id;
    return EGC_OK;
}

/* A new float constant of shape s (data taken over) for the rewritten Gemm. */
static egc_status bf_const(bf *b, const char *base, const char *suffix, const egc_shape *s,
                           float *data, int *id)
{
    egc_status st = bf_new_value(b, base, suffix, s, id);
    if (st != EGC_OK) {
        free(data);
        return st;
    }
    b->vals[*id].is_const = 1;
    b->vals[*id].batch_moved = 0;
    b->vals[*id].f32 = data;
    return EGC_OK;
}

/* Whether node n must work on the form with the extra axis. */
static int needs_form(const bf *b, const egc_node *n)
{
    if (moved(b, n->out)) return 1;
    for (int j = 0; j < n->n_in; j++)
        if (n->in[j] >= 0 && moved(b, n->in[j])) return 1;
    const int r = b->g->values[n->out].shape.ndim;
    switch (n->op) {
    case EGC_OP_TRANSPOSE:
        return n->p.transpose.n < 1 || n->p.transpose.perm[0] != 0;
    case EGC_OP_CONCAT:
    case EGC_OP_SOFTMAX:
        return (n->p.axis.axis < 0 ? n->p.axis.axis + r : n->p.axis.axis) == 0;
    case EGC_OP_SLICE:
        for (int k = 0; k < n->p.slice.n; k++)
            if ((n->p.slice.axes[k] < 0 ? n->p.slice.axes[k] + r : n->p.slice.axes[k]) == 0)
                return 1;
        return 0;
    case EGC_OP_GEMM:
        return n->p.gemm.trans_a || (n->n_in > 1 && is_act(b, n->in[1]));
    default:
        return 0;
    }
}

/* Node n on the form with the extra axis. EGC_E_UNSUPPORTED: not rewritten. */
static egc_status bf_node(bf *b, const egc_node *n)
{
    const egc_graph *g = b->g;
    const egc_shape *os = &g->values[n->out].shape;
    const int r = os->ndim;
    if (r + 1 > EGC_MAX_DIMS) return EGC_E_UNSUPPORTED;
    for (int k = 0; k < r; k++)
        if (os->d[k] < 1) return EGC_E_UNSUPPORTED; /* (a Reshape's 0 would copy a dim) */
    egc_node m = *n;
    for (int j = 0; j < n->n_in; j++) {
        if (n->in[j] < 0) continue;
        const egc_value *iv = &g->values[n->in[j]];
        if (is_act(b, n->in[j]) && iv->shape.ndim < 2) return EGC_E_UNSUPPORTED;
        EGC_TRY(bf_in(b, n->in[j], n->name, &m.in[j]));
    }
    switch (n->op) {
    case EGC_OP_RELU: case EGC_OP_CLIP: case EGC_OP_SIGMOID: case EGC_OP_SQRT: case EGC_OP_ERF:
    case EGC_OP_EXP: case EGC_OP_LOG: case EGC_OP_SOFTPLUS: case EGC_OP_FAKE_QUANT:
    case EGC_OP_ADD: case EGC_OP_SUB: case EGC_OP_MUL: case EGC_OP_DIV: case EGC_OP_MATMUL:
        break;
    case EGC_OP_TRANSPOSE:
        if (n->p.transpose.n != r) return EGC_E_UNSUPPORTED;
        m.p.transpose.n = r + 1;
        m.p.transpose.perm[0] = 0;
        for (int k = 0; k < r; k++) m.p.transpose.perm[k + 1] = n->p.transpose.perm[k] + 1;
        break;
    case EGC_OP_RESHAPE:
        m.p.reshape.flatten_axis = -1;
        m.p.reshape.allowzero = 0;
        m.p.reshape.n = r + 1;
        m.p.reshape.dims[0] = 0;
        for (int k = 0; k < r; k++) m.p.reshape.dims[k + 1] = os->d[k];
        break;
    case EGC_OP_CONCAT:
    case EGC_OP_SOFTMAX: {
        int ax = n->p.axis.axis < 0 ? n->p.axis.axis + r : n->p.axis.axis;
        if (n->op == EGC_OP_SOFTMAX && n->p.axis.legacy && ax != r - 1) return EGC_E_UNSUPPORTED;
        for (int j = 0; n->op == EGC_OP_CONCAT && j < n->n_in; j++)
            if (!is_act(b, n->in[j])) return EGC_E_UNSUPPORTED;
        m.p.axis.axis = ax + 1;
        m.p.axis.legacy = 0;
        break;
    }
    case EGC_OP_SLICE:
        for (int k = 0; k < n->p.slice.n; k++)
            m.p.slice.axes[k] = (n->p.slice.axes[k] < 0 ? n->p.slice.axes[k] + r
                                                         : n->p.slice.axes[k]) + 1;
        break;
    case EGC_OP_GEMM: {
        /* Y = alpha op(A) op(W) + beta C, A moved: MatMul(A, alpha op(W)) (+ beta C) */
        if (n->p.gemm.trans_a || n->n_in < 2 || is_act(b, n->in[1]) ||
            (n->n_in > 2 && n->in[2] >= 0 && is_act(b, n->in[2])))
            return EGC_E_UNSUPPORTED;
        const egc_value *w = &g->values[n->in[1]];
        if (!w->is_float || w->shape.ndim != 2) return EGC_E_UNSUPPORTED;
        const int64_t wr = w->shape.d[0], wc = w->shape.d[1];
        const int tb = n->p.gemm.trans_b;
        const int64_t K = tb ? wc : wr, N = tb ? wr : wc;
        float *wd = NULL;
        EGC_TRY(egc_malloc((void **)&wd, (size_t)(K * N > 0 ? K * N : 1), sizeof(float),
                           "Gemm weights"));
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < N; j++)
                wd[k * N + j] = n->p.gemm.alpha * (tb ? w->f32[j * wc + k] : w->f32[k * wc + j]);
        const int64_t kd[2] = {K, N};
        const egc_shape ks = egc_shape_make(2, kd);
        int wk = -1;
        EGC_TRY(bf_const(b, n->name, "/weights", &ks, wd, &wk));
        bf_init(&m, EGC_OP_MATMUL);
        m.n_in = 2;
        EGC_TRY(bf_in(b, n->in[0], n->name, &m.in[0]));
        m.in[1] = wk;
        if (n->n_in > 2 && n->in[2] >= 0) {
            const egc_value *cv = &g->values[n->in[2]];
            int ck = n->in[2];
            if (!cv->is_float) return EGC_E_UNSUPPORTED;
            if (n->p.gemm.beta != 1.0f) {
                const int64_t ne = egc_shape_numel(&cv->shape);
                float *cd = NULL;
                EGC_TRY(egc_malloc((void **)&cd, (size_t)(ne ? ne : 1), sizeof(float),
                                   "Gemm bias"));
                for (int64_t k = 0; k < ne; k++) cd[k] = n->p.gemm.beta * cv->f32[k];
                EGC_TRY(bf_const(b, n->name, "/bias", &cv->shape, cd, &ck));
            }
            /* the product into a value of its own, then the Add as the Gemm's output */
            const egc_shape ps = lead1(os);
            int pv = -1;
            EGC_TRY(bf_new_value(b, g->values[n->out].name, "/product", &ps, &pv));
            m.out = pv;
            EGC_TRY(bf_add(b, &m, n->name, "/product"));
            bf_init(&m, EGC_OP_ADD);
            m.n_in = 2;
            m.in[0] = pv;
            m.in[1] = ck;
        }
        break;
    }
    default: /* Conv, pooling, BatchNormalization, Pad: only on batch-first values */
        return EGC_E_UNSUPPORTED;
    }
    /* the output: a moved value takes the form with the extra axis; a batch-first one is
     * computed in that form and then drops the axis */
    if (moved(b, n->out)) {
        b->vals[n->out].shape = lead1(os);
        b->vals[n->out].batch_moved = 1;
        m.out = n->out;
        return bf_add(b, &m, n->name, NULL);
    }
    const egc_shape ls = lead1(os);
    int tmp = -1;
    EGC_TRY(bf_new_value(b, g->values[n->out].name, "/batch_first", &ls, &tmp));
    m.out = tmp;
    EGC_TRY(bf_add(b, &m, n->name, NULL));
    return bf_reshape(b, tmp, n->out, os, n->name, "/batch_first");
}

static void bf_free(bf *b, int committed)
{
    if (!committed) {
        for (int v = b->g->n_values; v < b->nv; v++) {
            free(b->vals[v].name);
            free(b->vals[v].f32);
        }
        for (int i = 0; i < b->nn; i++)
            if (b->own[i]) free(b->nodes[i].name);
        free(b->vals);
        free(b->nodes);
    }
    free(b->own);
    free(b->view);
}

egc_status egc_graph_batch_first(egc_graph *g, int *changed)
{
    *changed = 0;
    if (g->declared_batch > 1 || g->input < 0 || g->values[g->input].shape.ndim < 1 ||
        g->values[g->input].shape.d[0] != 1 || moved(&(bf){.g = g}, g->output))
        return EGC_OK;
    bf b;
    memset(&b, 0, sizeof b);
    b.g = g;
    egc_status st;
    int any = 0;
    EGC_TRYG(st, egc_malloc((void **)&b.vals, (size_t)g->n_values + 16, sizeof *b.vals,
                            "graph values"), done);
    b.capv = g->n_values + 16;
    memcpy(b.vals, g->values, (size_t)g->n_values * sizeof *b.vals);
    b.nv = g->n_values;
    EGC_TRYG(st, egc_malloc((void **)&b.view, (size_t)g->n_values + 1, sizeof *b.view,
                            "graph values"), done);
    for (int v = 0; v < g->n_values; v++) b.view[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const egc_node *n = &g->nodes[i];
        if (!needs_form(&b, n)) {
            egc_node m = *n;
            EGC_TRYG(st, bf_add(&b, &m, n->name, NULL), done);
            continue;
        }
        any = 1;
        st = bf_node(&b, n);
        if (st == EGC_E_UNSUPPORTED) {
            egc_clear_error();
            st = EGC_OK;
            any = 0;
            goto done; /* stays as it was */
        }
        if (st != EGC_OK) goto done;
    }
    if (!any) goto done;
    /* commit: the new arrays own what g's did (names, constant data) */
    free(g->values);
    free(g->nodes);
    g->values = b.vals;
    g->n_values = b.nv;
    g->nodes = b.nodes;
    g->n_nodes = b.nn;
    *changed = 1;
    bf_free(&b, 1);
    return EGC_OK;
done:
    bf_free(&b, 0);
    return st;
}

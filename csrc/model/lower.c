/* lower.c: from the raw ONNX model (onnx.h) to egcam's graph (ir.h).
 *
 * Steps: bind constant inputs and initializers; pick the one runtime input; sort the nodes
 * topologically (files need not be sorted; cycles are reported); walk the nodes once,
 * folding those whose inputs are all constant (fold.c, or the CPU reference op for float
 * runtime ops), aliasing Identity / Dropout, lowering the composite operators (k_composite:
 * HardSwish, LeakyRelu, spatial or last-axis reductions, Pow, LayerNormalization, Gelu, ...)
 * to a few runtime nodes, and mapping the rest to egc_op with validated parameters and
 * inferred shapes (at the declared batch, 1 when symbolic), all within one folding budget
 * (lctx.budget); then fold each
 * BatchNormalization whose input is a Conv used by nothing else into that Conv, drop runtime
 * nodes the output does not depend on, and renumber. Only graph output 0 is used: egcam
 * explains one classifier output. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_ops.h"
#include "model/lower.h"

/* Limits on attribute values that end up in int fields (kernel, stride, dilation, pads). */
#define EGC_LOWER_MAX_WINDOW (1 << 20)

/* ---------------------------------------------------------------- name map */

/* Open-addressing map from tensor names to value ids (or node indices). Keys are borrowed:
 * they point at strings of the model or the graph, which outlive the map. */
typedef struct nmap {
    const char **k;
    int *v;
    int cap, cnt;
} nmap;

static uint64_t hstr(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int nmap_get(const nmap *m, const char *key)
{
    if (!m->cap || !key) return -1;
    for (uint64_t i = hstr(key) & (uint64_t)(m->cap - 1);; i = (i + 1) & (uint64_t)(m->cap - 1)) {
        if (!m->k[i]) return -1;
        if (strcmp(m->k[i], key) == 0) return m->v[i];
    }
}

static egc_status nmap_put(nmap *m, const char *key, int val)
{
    if ((m->cnt + 1) * 2 > m->cap) {
        nmap n = {NULL, NULL, m->cap ? m->cap * 2 : 64, 0};
        EGC_TRY(egc_calloc((void **)&n.k, (size_t)n.cap, sizeof *n.k, "name map"));
        egc_status st = egc_calloc((void **)&n.v, (size_t)n.cap, sizeof *n.v, "name map");
        if (st != EGC_OK) {
            free(n.k);
            return st;
        }
        for (int i = 0; i < m->cap; i++)
            if (m->k[i]) {
                uint64_t j = hstr(m->k[i]) & (uint64_t)(n.cap - 1);
                while (n.k[j]) j = (j + 1) & (uint64_t)(n.cap - 1);
                n.k[j] = m->k[i];
                n.v[j] = m->v[i];
                n.cnt++;
            }
        free(m->k);
        free(m->v);
        *m = n;
    }
    uint64_t i = hstr(key) & (uint64_t)(m->cap - 1);
    while (m->k[i] && strcmp(m->k[i], key) != 0) i = (i + 1) & (uint64_t)(m->cap - 1);
    if (!m->k[i]) m->cnt++;
    m->k[i] = key;
    m->v[i] = val;
    return EGC_OK;
}

static void nmap_free(nmap *m)
{
    free(m->k);
    free(m->v);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- context */

typedef struct lctx {
    const egc_onnx_model *m;
    egc_graph *g;
    int cap_values, cap_nodes;
    /* Per value: the node whose unsupported extra output this is (Dropout mask, MaxPool
     * indices, BatchNormalization statistics), or NULL. Using it is an error. */
    const egc_onnx_node **poison;
    nmap names;        /* tensor name -> value id */
    int64_t batch;     /* the batch shapes are inferred at: declared, 1 when symbolic */
    /* Elements held in constants, and the most they may reach: EGC_FOLD_BUDGET_BASE, plus
     * each initializer (or bound input) and EGC_FOLD_BUDGET_PER_WEIGHT times it. */
    int64_t held, budget;
    int cl_input;      /* the file's channels-last input [N,H,W,3] as made from egcam's
                          [N,3,H,W] input by the Transpose pick_input adds; -1: none */
    int64_t in_h, in_w; /* the image size the caller gives the input's symbolic H and W; 0:
                           none given (egc_lower_sized) */
    nmap qnames;       /* output name of a QuantizeLinear of a run-time value -> its node's
                          index: only a DequantizeLinear with the same parameters may read it */
} lctx;

static const char *nname(const egc_onnx_node *n) { return n->name ? n->name : "?"; }

static egc_status new_value(lctx *c, const char *name, int *id)
{
    egc_graph *g = c->g;
    if (nmap_get(&c->names, name) >= 0)
        return EGC_FAIL(EGC_E_FORMAT, "tensor '%s' is defined twice", name);
    if (g->n_values == c->cap_values) {
        int cap = c->cap_values ? c->cap_values * 2 : 256;
        EGC_TRY(egc_realloc((void **)&g->values, (size_t)cap, sizeof *g->values, "graph values"));
        EGC_TRY(egc_realloc((void **)&c->poison, (size_t)cap, sizeof *c->poison, "graph values"));
        c->cap_values = cap;
    }
    egc_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->producer = -1;
    c->poison[g->n_values] = NULL;
    EGC_TRY(egc_strdup(&v->name, name));
    g->n_values++;
    EGC_TRY(nmap_put(&c->names, v->name, g->n_values - 1));
    *id = g->n_values - 1;
    return EGC_OK;
}

/* A new value named base+suffix, or base+suffix+"_N" when that name is taken. */
static egc_status new_unique_value(lctx *c, const char *base, const char *suffix, int *id)
{
    char name[600];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    for (int k = 2; nmap_get(&c->names, name) >= 0 && k < 1000000; k++)
        snprintf(name, sizeof name, "%s%s_%d", base, suffix, k);
    return new_value(c, name, id);
}

/* Moves a folded tensor's data into value id (which becomes constant). The tensor is
 * emptied either way; a shape that is not sane (lower.h) is an error naming the value. */
static egc_status take_tensor(lctx *c, int id, egc_onnx_tensor *t)
{
    egc_value *v = &c->g->values[id];
    if (!egc_lower_shape_sane(&t->shape)) {
        char b[96];
        egc_fold_free(t);
        return EGC_FAIL(EGC_E_UNSUPPORTED, "constant '%s' would have shape %s (too large)",
                        v->name, egc_shape_str(&t->shape, b, sizeof b));
    }
    int64_t numel = egc_shape_numel(&t->shape);
    if (numel > c->budget - c->held) {
        egc_fold_free(t);
        return EGC_FAIL(EGC_E_UNSUPPORTED, "constant '%s' (%lld elements) would bring the "
                        "constants folded at load time past %lld elements (%lld plus %d per "
                        "weight of the file)", v->name, (long long)numel, (long long)c->budget,
                        (long long)EGC_FOLD_BUDGET_BASE, EGC_FOLD_BUDGET_PER_WEIGHT + 1);
    }
    c->held += numel;
    v->is_const = 1;
    v->is_float = t->is_float;
    v->dtype = t->orig_dtype;
    v->shape = t->shape;
    v->f32 = t->f32;
    v->i64 = t->i64;
    t->f32 = NULL;
    t->i64 = NULL;
    egc_fold_free(t);
    /* Keep exactly one data pointer non-NULL, even for empty tensors. */
    if (!v->f32 && !v->i64) {
        if (v->is_float) EGC_TRY(egc_calloc((void **)&v->f32, 1, sizeof(float), "constant"));
        else EGC_TRY(egc_calloc((void **)&v->i64, 1, sizeof(int64_t), "constant"));
    }
    return EGC_OK;
}

static egc_status add_const(lctx *c, const char *name, const egc_onnx_tensor *src, int *id)
{
    egc_onnx_tensor t;
    if (!egc_lower_shape_sane(&src->shape)) {
        char b[96];
        return EGC_FAIL(EGC_E_FORMAT, "tensor '%s' has an invalid shape %s", name,
                        egc_shape_str(&src->shape, b, sizeof b));
    }
    EGC_TRY(egc_fold_copy(src, &t));
    c->budget += (EGC_FOLD_BUDGET_PER_WEIGHT + 1) * egc_shape_numel(&t.shape);
    egc_status st = new_value(c, name, id);
    if (st != EGC_OK) {
        egc_fold_free(&t);
        return st;
    }
    return take_tensor(c, *id, &t);
}

/* A non-owning tensor view of a constant value, for the folder. */
static void value_view(const egc_value *v, egc_onnx_tensor *t)
{
    memset(t, 0, sizeof *t);
    t->name = v->name;
    t->is_float = v->is_float;
    t->orig_dtype = v->dtype ? v->dtype : v->is_float ? EGC_DT_FLOAT : EGC_DT_INT64;
    t->shape = v->shape;
    t->numel = egc_shape_numel(&v->shape);
    t->f32 = v->f32;
    t->i64 = v->i64;
}

/* ---------------------------------------------------------------- topological order */

/* order[0..n_nodes) = node indices, producers before consumers. File order is kept when
 * the file is already sorted; otherwise Kahn's algorithm. A cycle is reported with the
 * names of the nodes on it. */
static egc_status sort_nodes(lctx *c, int *order)
{
    const egc_onnx_model *m = c->m;
    int nn = m->n_nodes;
    egc_status st = EGC_OK;
    nmap prod = {0};
    int *indeg = NULL, *adj_start = NULL, *adj = NULL, *queue = NULL, *fill = NULL;
    int64_t n_edges = 0;
    for (int i = 0; i < nn; i++) {
        const egc_onnx_node *n = &m->nodes[i];
        for (int o = 0; o < n->n_outputs; o++) {
            const char *nm = n->outputs[o];
            if (!nm || !*nm) continue;
            int prev = nmap_get(&prod, nm);
            if (prev >= 0) {
                st = EGC_FAIL(EGC_E_FORMAT, "tensor '%s' is produced by node '%s' and node '%s'",
                              nm, nname(&m->nodes[prev]), nname(n));
                goto done;
            }
            if (nmap_get(&c->names, nm) >= 0) {
                st = EGC_FAIL(EGC_E_FORMAT, "node '%s' (%s) writes '%s', which is an initializer "
                              "or graph input", nname(n), n->op_type, nm);
                goto done;
            }
            EGC_TRYG(st, nmap_put(&prod, nm, i), done);
        }
    }
    EGC_TRYG(st, egc_calloc((void **)&indeg, (size_t)nn + 1, sizeof *indeg, "node order"), done);
    EGC_TRYG(st, egc_calloc((void **)&adj_start, (size_t)nn + 2, sizeof *adj_start, "node order"),
             done);
    int sorted = 1;
    for (int i = 0; i < nn; i++) {
        const egc_onnx_node *n = &m->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            const char *nm = n->inputs[k];
            if (!nm || !*nm) continue;
            int p = nmap_get(&prod, nm);
            if (p < 0) {
                if (nmap_get(&c->names, nm) < 0) {
                    st = EGC_FAIL(EGC_E_FORMAT,
                                  "node '%s' (%s): input '%s' is not defined (no node, "
                                  "initializer or graph input has that name)",
                                  nname(n), n->op_type, nm);
                    goto done;
                }
                continue;
            }
            if (p >= i) sorted = 0;
            indeg[i]++;
            adj_start[p + 1]++;
            n_edges++;
        }
    }
    if (sorted) {
        for (int i = 0; i < nn; i++) order[i] = i;
        goto done;
    }
    /* Consumers of each node as CSR lists. */
    for (int i = 0; i < nn; i++) adj_start[i + 1] += adj_start[i];
    EGC_TRYG(st, egc_malloc((void **)&adj, (size_t)n_edges + 1, sizeof *adj, "node order"), done);
    EGC_TRYG(st, egc_calloc((void **)&fill, (size_t)nn + 1, sizeof *fill, "node order"), done);
    EGC_TRYG(st, egc_malloc((void **)&queue, (size_t)nn + 1, sizeof *queue, "node order"), done);
    for (int i = 0; i < nn; i++) {
        const egc_onnx_node *n = &m->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            const char *nm = n->inputs[k];
            int p = nm && *nm ? nmap_get(&prod, nm) : -1;
            if (p >= 0) adj[adj_start[p] + fill[p]++] = i;
        }
    }
    int head = 0, tail = 0;
    for (int i = 0; i < nn; i++)
        if (!indeg[i]) queue[tail++] = i;
    while (head < tail) {
        int u = queue[head++];
        order[head - 1] = u;
        for (int e = adj_start[u]; e < adj_start[u + 1]; e++)
            if (--indeg[adj[e]] == 0) queue[tail++] = adj[e];
    }
    if (tail < nn) {
        /* Walk from a stuck node to an unfinished producer nn times: we are then on a cycle. */
        int u = -1;
        for (int i = 0; i < nn && u < 0; i++)
            if (indeg[i]) u = i;
        for (int step = 0; step < nn; step++) {
            const egc_onnx_node *n = &m->nodes[u];
            int next = -1;
            for (int k = 0; k < n->n_inputs && next < 0; k++) {
                const char *nm = n->inputs[k];
                int p = nm && *nm ? nmap_get(&prod, nm) : -1;
                if (p >= 0 && indeg[p]) next = p;
            }
            if (next < 0) break;
            u = next;
        }
        char buf[600];
        size_t len = 0;
        buf[0] = '\0';
        int v = u, count = 0;
        do {
            const egc_onnx_node *n = &m->nodes[v];
            int w = snprintf(buf + len, sizeof buf - len, "%s'%s'", count ? " <- " : "", nname(n));
            if (w < 0 || (size_t)w >= sizeof buf - len) break;
            len += (size_t)w;
            int next = -1;
            for (int k = 0; k < n->n_inputs && next < 0; k++) {
                const char *nm = n->inputs[k];
                int p = nm && *nm ? nmap_get(&prod, nm) : -1;
                if (p >= 0 && indeg[p]) next = p;
            }
            v = next;
            count++;
        } while (v >= 0 && v != u && count < 16);
        if (v == u) snprintf(buf + len, sizeof buf - len, " <- '%s'", nname(&m->nodes[u]));
        st = EGC_FAIL(EGC_E_FORMAT, "the graph has a cycle through node '%s' (%s): %s",
                      nname(&m->nodes[u]), m->nodes[u].op_type, buf);
    }
done:
    nmap_free(&prod);
    free(indeg);
    free(adj_start);
    free(adj);
    free(fill);
    free(queue);
    return st;
}

/* ---------------------------------------------------------------- parameter helpers */

static const egc_value *in_value(lctx *c, const int *vin, int n_in, int i)
{
    return i < n_in && vin[i] >= 0 ? &c->g->values[vin[i]] : NULL;
}

/* Input i must be present and constant (float when want_float). */
static egc_status need_const(lctx *c, const egc_onnx_node *n, const int *vin, int n_in, int i,
                             const char *what, int want_float)
{
    const egc_value *v = in_value(c, vin, n_in, i);
    if (!v) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input %d (%s) is missing", i, what);
    if (!v->is_const)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n,
                             "input %d '%s' (%s) must be a constant (an initializer or computable "
                             "at load time), but it is computed at run time",
                             i, v->name, what);
    if (want_float >= 0 && v->is_float != want_float)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input %d '%s' (%s) must be %s", i, v->name, what,
                             want_float ? "a float tensor" : "an integer tensor");
    return EGC_OK;
}

/* Reads an integer constant input (1-D or scalar) into out[0..cap). */
static egc_status const_ints(lctx *c, const egc_onnx_node *n, const int *vin, int n_in, int i,
                             const char *what, int64_t *out, int cap, int *cnt)
{
    EGC_TRY(need_const(c, n, vin, n_in, i, what, 0));
    const egc_value *v = &c->g->values[vin[i]];
    int64_t numel = egc_shape_numel(&v->shape);
    if (v->shape.ndim > 1)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input %d '%s' (%s) must be 1-D", i, v->name, what);
    if (numel > cap)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n,
                             "input %d '%s' (%s) has %lld entries (at most %d)", i, v->name, what,
                             (long long)numel, cap);
    for (int64_t k = 0; k < numel; k++) out[k] = v->i64[k];
    *cnt = (int)numel;
    return EGC_OK;
}

/* Reads a scalar float constant input (min/max of Clip, Pad value). */
static egc_status const_scalar(lctx *c, const egc_onnx_node *n, const int *vin, int n_in, int i,
                               const char *what, float *out)
{
    EGC_TRY(need_const(c, n, vin, n_in, i, what, -1));
    const egc_value *v = &c->g->values[vin[i]];
    if (egc_shape_numel(&v->shape) != 1)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input %d '%s' (%s) must have one element", i,
                             v->name, what);
    *out = v->is_float ? v->f32[0] : (float)v->i64[0];
    return EGC_OK;
}

/* A list attribute of the two spatial dims, each within [lo, hi]; def when absent. */
static egc_status attr2(const egc_onnx_node *n, const char *name, int def, int lo, int hi,
                        int *out)
{
    const int64_t *v;
    int cnt = 0;
    EGC_TRY(egc_lower_attr_ints(n, name, &v, &cnt));
    out[0] = out[1] = def;
    if (!v) return EGC_OK;
    if (cnt != 2)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n,
                             "attribute %s has %d values; only 2-D (two spatial dims) is supported",
                             name, cnt);
    for (int i = 0; i < 2; i++) {
        if (v[i] < lo || v[i] > hi)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute %s=[%lld,%lld] is not supported",
                                 name, (long long)v[0], (long long)v[1]);
        out[i] = (int)v[i];
    }
    return EGC_OK;
}

/* pads attribute [top, left, bottom, right] (ONNX order x1_begin, x2_begin, x1_end, x2_end). */
static egc_status attr_pads4(const egc_onnx_node *n, int *p, int *present)
{
    const int64_t *v;
    int cnt = 0;
    EGC_TRY(egc_lower_attr_ints(n, "pads", &v, &cnt));
    p[0] = p[1] = p[2] = p[3] = 0;
    *present = 0;
    if (!v) return EGC_OK;
    if (cnt != 4)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n,
                             "attribute pads has %d values; only 2-D (4 pads) is supported", cnt);
    for (int i = 0; i < 4; i++) {
        if (v[i] < 0 || v[i] > EGC_LOWER_MAX_WINDOW)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute pads has the value %lld",
                                 (long long)v[i]);
        p[i] = (int)v[i];
        if (p[i]) *present = 1;
    }
    return EGC_OK;
}

/* Resolves auto_pad into explicit pads for an input of spatial size in[2].
 * pads: top, left, bottom, right. */
static egc_status resolve_auto_pad(const egc_onnx_node *n, const int64_t *in, const int *k,
                                   const int *s, const int *d, int *pads, int *was_auto)
{
    const char *ap;
    int explicit_pads = 0;
    EGC_TRY(egc_lower_attr_string(n, "auto_pad", "NOTSET", &ap));
    EGC_TRY(attr_pads4(n, pads, &explicit_pads));
    *was_auto = 0;
    if (strcmp(ap, "NOTSET") == 0 || *ap == '\0') return EGC_OK;
    int same_upper = strcmp(ap, "SAME_UPPER") == 0, same_lower = strcmp(ap, "SAME_LOWER") == 0;
    if (!same_upper && !same_lower && strcmp(ap, "VALID") != 0)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute auto_pad='%s' is not supported", ap);
    if (explicit_pads)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attributes pads and auto_pad='%s' are both given",
                             ap);
    *was_auto = 1;
    pads[0] = pads[1] = pads[2] = pads[3] = 0;
    if (!same_upper && !same_lower) return EGC_OK;
    for (int i = 0; i < 2; i++) {
        int64_t out = (in[i] + s[i] - 1) / s[i];
        int64_t total = (out - 1) * s[i] + (int64_t)(k[i] - 1) * d[i] + 1 - in[i];
        if (total < 0) total = 0;
        if (total > 2 * (int64_t)EGC_LOWER_MAX_WINDOW)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "auto_pad gives a padding of %lld",
                                 (long long)total);
        int64_t small = total / 2, big = total - small;
        pads[i] = (int)(same_upper ? small : big);      /* begin */
        pads[i + 2] = (int)(same_upper ? big : small);  /* end */
    }
    return EGC_OK;
}

static egc_status need_rank(const egc_onnx_node *n, const egc_value *v, int idx, int rank,
                            const char *why)
{
    if (v->shape.ndim != rank) {
        char b[96];
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "input %d '%s' has shape %s; %s", idx, v->name,
                             egc_shape_str(&v->shape, b, sizeof b), why);
    }
    return EGC_OK;
}

static egc_status no_more_inputs(const egc_onnx_node *n, int n_in, int max)
{
    if (n_in > max)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (at most %d)", n_in, max);
    return EGC_OK;
}

/* Checks an axis attribute against a rank: -rank <= axis < rank, or <= rank when end_ok
 * (Flatten accepts axis == rank). */
static egc_status check_axis(const egc_onnx_node *n, int64_t axis, int rank, int end_ok)
{
    if (axis < -rank || axis > rank || (axis == rank && !end_ok))
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute axis=%lld out of range for rank %d",
                             (long long)axis, rank);
    return EGC_OK;
}

/* ---------------------------------------------------------------- per-op parameters */

static egc_status lower_conv(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                             egc_node *r)
{
    static const char *const known[] = {"kernel_shape", "strides", "pads", "dilations", "group",
                                        "auto_pad", NULL};
    egc_conv_params *p = &r->p.conv;
    EGC_TRY(egc_lower_check_attrs(n, known));
    EGC_TRY(no_more_inputs(n, n_in, 3));
    if (!in_value(c, vin, n_in, 0)) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input 0 (X) is missing");
    EGC_TRY(need_const(c, n, vin, n_in, 1, "weights W", 1));
    if (in_value(c, vin, n_in, 2)) EGC_TRY(need_const(c, n, vin, n_in, 2, "bias B", 1));
    const egc_value *x = in_value(c, vin, n_in, 0), *w = in_value(c, vin, n_in, 1);
    EGC_TRY(need_rank(n, w, 1, 4, "only 2-D convolution (weights [M,C/group,kh,kw]) is supported"));
    EGC_TRY(need_rank(n, x, 0, 4, "only 2-D convolution (input [N,C,H,W]) is supported"));
    int k[2], s[2], d[2], pads[4], was_auto;
    const int64_t *ks;
    int nks;
    EGC_TRY(egc_lower_attr_ints(n, "kernel_shape", &ks, &nks));
    if (ks && (nks != 2 || ks[0] != w->shape.d[2] || ks[1] != w->shape.d[3])) {
        char b[96];
        return EGC_NODE_FAIL(EGC_E_SHAPE, n, "attribute kernel_shape does not match weights %s",
                             egc_shape_str(&w->shape, b, sizeof b));
    }
    if (w->shape.d[2] < 1 || w->shape.d[3] < 1 || w->shape.d[2] > EGC_LOWER_MAX_WINDOW ||
        w->shape.d[3] > EGC_LOWER_MAX_WINDOW)
        return EGC_NODE_FAIL(EGC_E_SHAPE, n, "bad kernel size %lldx%lld",
                             (long long)w->shape.d[2], (long long)w->shape.d[3]);
    k[0] = (int)w->shape.d[2];
    k[1] = (int)w->shape.d[3];
    EGC_TRY(attr2(n, "strides", 1, 1, EGC_LOWER_MAX_WINDOW, s));
    EGC_TRY(attr2(n, "dilations", 1, 1, EGC_LOWER_MAX_WINDOW, d));
    int64_t group;
    EGC_TRY(egc_lower_attr_int(n, "group", 1, &group));
    if (group < 1 || group > x->shape.d[1] || group > INT32_MAX)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute group=%lld is not supported",
                             (long long)group);
    EGC_TRY(resolve_auto_pad(n, &x->shape.d[2], k, s, d, pads, &was_auto));
    p->kh = k[0];
    p->kw = k[1];
    p->sh = s[0];
    p->sw = s[1];
    p->dh = d[0];
    p->dw = d[1];
    p->pt = pads[0];
    p->pl = pads[1];
    p->pb = pads[2];
    p->pr = pads[3];
    p->group = (int)group;
    r->op = EGC_OP_CONV;
    r->n_in = in_value(c, vin, n_in, 2) ? 3 : 2;
    for (int i = 0; i < r->n_in; i++) r->in[i] = vin[i];
    return EGC_OK;
}

static egc_status lower_pool(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                             int is_max, egc_node *r)
{
    static const char *const kmax[] = {"kernel_shape", "strides", "pads", "dilations",
                                       "auto_pad", "ceil_mode", "storage_order", NULL};
    static const char *const kavg[] = {"kernel_shape", "strides", "pads", "dilations",
                                       "auto_pad", "ceil_mode", "count_include_pad", NULL};
    egc_pool_params *p = &r->p.pool;
    EGC_TRY(egc_lower_check_attrs(n, is_max ? kmax : kavg));
    EGC_TRY(no_more_inputs(n, n_in, 1));
    const egc_value *x = in_value(c, vin, n_in, 0);
    if (!x) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input 0 (X) is missing");
    EGC_TRY(need_rank(n, x, 0, 4, "only 2-D pooling (input [N,C,H,W]) is supported"));
    int k[2], s[2], d[2], pads[4], was_auto;
    if (!egc_lower_attr(n, "kernel_shape"))
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute kernel_shape is required");
    EGC_TRY(attr2(n, "kernel_shape", 1, 1, EGC_LOWER_MAX_WINDOW, k));
    EGC_TRY(attr2(n, "strides", 1, 1, EGC_LOWER_MAX_WINDOW, s));
    EGC_TRY(attr2(n, "dilations", 1, 1, EGC_LOWER_MAX_WINDOW, d));
    int64_t ceil_mode, cip = 0, so = 0;
    EGC_TRY(egc_lower_attr_int(n, "ceil_mode", 0, &ceil_mode));
    if (ceil_mode != 0 && ceil_mode != 1)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute ceil_mode=%lld is not supported",
                             (long long)ceil_mode);
    if (is_max) {
        EGC_TRY(egc_lower_attr_int(n, "storage_order", 0, &so));
        if (so != 0)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n,
                                 "attribute storage_order=%lld is not supported", (long long)so);
    } else {
        EGC_TRY(egc_lower_attr_int(n, "count_include_pad", 0, &cip));
        if (cip != 0 && cip != 1)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n,
                                 "attribute count_include_pad=%lld is not supported",
                                 (long long)cip);
    }
    EGC_TRY(resolve_auto_pad(n, &x->shape.d[2], k, s, d, pads, &was_auto));
    /* With auto_pad the explicit pads give exactly ONNX's output size in floor mode. */
    if (was_auto) ceil_mode = 0;
    p->kh = k[0];
    p->kw = k[1];
    p->sh = s[0];
    p->sw = s[1];
    p->dh = d[0];
    p->dw = d[1];
    p->pt = pads[0];
    p->pl = pads[1];
    p->pb = pads[2];
    p->pr = pads[3];
    p->ceil_mode = (int)ceil_mode;
    p->count_include_pad = (int)cip;
    r->op = is_max ? EGC_OP_MAXPOOL : EGC_OP_AVGPOOL;
    r->n_in = 1;
    r->in[0] = vin[0];
    return EGC_OK;
}

static egc_status lower_gemm(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                             egc_node *r)
{
    static const char *const known[] = {"alpha", "beta", "transA", "transB", "broadcast", NULL};
    egc_gemm_params *p = &r->p.gemm;
    EGC_TRY(egc_lower_check_attrs(n, known));
    EGC_TRY(no_more_inputs(n, n_in, 3));
    if (!in_value(c, vin, n_in, 0)) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input 0 (A) is missing");
    EGC_TRY(need_const(c, n, vin, n_in, 1, "B", 1));
    if (in_value(c, vin, n_in, 2)) EGC_TRY(need_const(c, n, vin, n_in, 2, "C", 1));
    int64_t ta, tb;
    EGC_TRY(egc_lower_attr_float(n, "alpha", 1.0f, &p->alpha));
    EGC_TRY(egc_lower_attr_float(n, "beta", 1.0f, &p->beta));
    EGC_TRY(egc_lower_attr_int(n, "transA", 0, &ta));
    EGC_TRY(egc_lower_attr_int(n, "transB", 0, &tb));
    if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1))
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute transA=%lld / transB=%lld is not "
                             "supported", (long long)ta, (long long)tb);
    p->trans_a = (int)ta;
    p->trans_b = (int)tb;
    r->op = EGC_OP_GEMM;
    r->n_in = in_value(c, vin, n_in, 2) ? 3 : 2;
    for (int i = 0; i < r->n_in; i++) r->in[i] = vin[i];
    return EGC_OK;
}

static egc_status lower_clip(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                             egc_node *r)
{
    static const char *const k_old[] = {"min", "max", "consumed_inputs", NULL};
    static const char *const k_new[] = {NULL};
    egc_clip_params *p = &r->p.clip;
    p->lo = -INFINITY;
    p->hi = INFINITY;
    if (c->g->opset < 11) {
        EGC_TRY(egc_lower_check_attrs(n, k_old));
        EGC_TRY(no_more_inputs(n, n_in, 1));
        EGC_TRY(egc_lower_attr_float(n, "min", -INFINITY, &p->lo));
        EGC_TRY(egc_lower_attr_float(n, "max", INFINITY, &p->hi));
    } else {
        EGC_TRY(egc_lower_check_attrs(n, k_new));
        EGC_TRY(no_more_inputs(n, n_in, 3));
        if (in_value(c, vin, n_in, 1)) EGC_TRY(const_scalar(c, n, vin, n_in, 1, "min", &p->lo));
        if (in_value(c, vin, n_in, 2)) EGC_TRY(const_scalar(c, n, vin, n_in, 2, "max", &p->hi));
    }
    if (p->lo != p->lo || p->hi != p->hi)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "min / max of NaN are not supported");
    r->op = EGC_OP_CLIP;
    r->n_in = 1;
    r->in[0] = vin[0];
    return EGC_OK;
}

static egc_status lower_bn(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                           egc_node *r)
{
    static const char *const known[] = {"epsilon", "momentum", "training_mode", "spatial",
                                        "is_test", "consumed_inputs", NULL};
    EGC_TRY(egc_lower_check_attrs(n, known));
    EGC_TRY(no_more_inputs(n, n_in, 5));
    int64_t tm, spatial;
    EGC_TRY(egc_lower_attr_int(n, "training_mode", 0, &tm));
    if (tm != 0)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute training_mode=%lld is not supported "
                             "(inference only)", (long long)tm);
    EGC_TRY(egc_lower_attr_int(n, "spatial", 1, &spatial));
    if (spatial != 1)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute spatial=%lld is not supported",
                             (long long)spatial);
    EGC_TRY(egc_lower_attr_float(n, "epsilon", 1e-5f, &r->p.bn.eps));
    if (!(r->p.bn.eps >= 0))
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute epsilon=%g is not supported",
                             (double)r->p.bn.eps);
    if (!in_value(c, vin, n_in, 0)) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input 0 (X) is missing");
    static const char *const what[] = {"X", "scale", "B", "input_mean", "input_var"};
    for (int i = 1; i < 5; i++) EGC_TRY(need_const(c, n, vin, n_in, i, what[i], 1));
    r->op = EGC_OP_BATCHNORM;
    r->n_in = 5;
    for (int i = 0; i < 5; i++) r->in[i] = vin[i];
    return EGC_OK;
}

static egc_status lower_reshape(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                                egc_node *r)
{
    static const char *const k_old[] = {"shape", "consumed_inputs", NULL};
    static const char *const k_new[] = {"allowzero", NULL};
    egc_reshape_params *p = &r->p.reshape;
    p->flatten_axis = -1;
    int64_t allowzero = 0;
    if (c->g->opset < 5) {
        const int64_t *v;
        int cnt = 0;
        EGC_TRY(egc_lower_check_attrs(n, k_old));
        EGC_TRY(no_more_inputs(n, n_in, 1));
        EGC_TRY(egc_lower_attr_ints(n, "shape", &v, &cnt));
        if (!v) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute shape is required");
        if (cnt > EGC_MAX_DIMS)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "target rank %d (at most %d)", cnt,
                                 EGC_MAX_DIMS);
        for (int i = 0; i < cnt; i++) p->dims[i] = v[i];
        p->n = cnt;
    } else {
        EGC_TRY(egc_lower_check_attrs(n, k_new));
        EGC_TRY(no_more_inputs(n, n_in, 2));
        EGC_TRY(egc_lower_attr_int(n, "allowzero", 0, &allowzero));
        EGC_TRY(const_ints(c, n, vin, n_in, 1, "shape", p->dims, EGC_MAX_DIMS, &p->n));
    }
    if (allowzero != 0 && allowzero != 1)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute allowzero=%lld is not supported",
                             (long long)allowzero);
    int minus = 0, zero = 0;
    for (int i = 0; i < p->n; i++) {
        if (p->dims[i] < -1)
            return EGC_NODE_FAIL(EGC_E_FORMAT, n, "target dim %d is %lld", i,
                                 (long long)p->dims[i]);
        minus += p->dims[i] == -1;
        zero += p->dims[i] == 0;
    }
    if (minus > 1) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "more than one -1 in the target shape");
    if (allowzero && minus && zero)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "allowzero=1 with both 0 and -1 in the target shape");
    p->allowzero = (int)allowzero;
    r->op = EGC_OP_RESHAPE;
    r->n_in = 1;
    r->in[0] = vin[0];
    return EGC_OK;
}

static egc_status lower_flatten(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                                egc_node *r)
{
    static const char *const known[] = {"axis", NULL};
    EGC_TRY(egc_lower_check_attrs(n, known));
    EGC_TRY(no_more_inputs(n, n_in, 1));
    const egc_value *x = in_value(c, vin, n_in, 0);
    int64_t axis;
    EGC_TRY(egc_lower_attr_int(n, "axis", 1, &axis));
    int rank = x->shape.ndim;
    EGC_TRY(check_axis(n, axis, rank, 1));
    if (axis < 0) axis += rank;
    r->p.reshape.flatten_axis = (int)axis;
    r->p.reshape.n = 2;
    r->op = EGC_OP_RESHAPE;
    r->n_in = 1;
    r->in[0] = vin[0];
    return EGC_OK;
}

static egc_status lower_concat(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                               egc_node *r)
{
    static const char *const known[] = {"axis", NULL};
    EGC_TRY(egc_lower_check_attrs(n, known));
    if (!egc_lower_attr(n, "axis"))
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute axis is required");
    int64_t axis;
    EGC_TRY(egc_lower_attr_int(n, "axis", 0, &axis));
    if (n_in < 1) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "has no inputs");
    for (int i = 0; i < n_in; i++)
        if (vin[i] < 0) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input %d is empty", i);
    int rank = c->g->values[vin[0]].shape.ndim;
    EGC_TRY(check_axis(n, axis, rank, 0));
    r->p.axis.axis = (int)axis;
    r->op = EGC_OP_CONCAT;
    r->n_in = n_in;
    for (int i = 0; i < n_in; i++) r->in[i] = vin[i];
    return EGC_OK;
}

static egc_status lower_softmax(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                                egc_node *r)
{
    static const char *const known[] = {"axis", NULL};
    EGC_TRY(egc_lower_check_attrs(n, known));
    EGC_TRY(no_more_inputs(n, n_in, 1));
    int legacy = c->g->opset < 13;
    int64_t axis;
    EGC_TRY(egc_lower_attr_int(n, "axis", legacy ? 1 : -1, &axis));
    int rank = c->g->values[vin[0]].shape.ndim;
    EGC_TRY(check_axis(n, axis, rank, 0));
    r->p.axis.axis = (int)axis;
    r->p.axis.legacy = legacy;
    r->op = EGC_OP_SOFTMAX;
    r->n_in = 1;
    r->in[0] = vin[0];
    return EGC_OK;
}

static egc_status lower_transpose(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                                  egc_node *r)
{
    static const char *const known[] = {"perm", NULL};
    EGC_TRY(egc_lower_check_attrs(n, known));
    EGC_TRY(no_more_inputs(n, n_in, 1));
    int rank = c->g->values[vin[0]].shape.ndim, seen[EGC_MAX_DIMS] = {0};
    const int64_t *pv;
    int cnt = 0;
    EGC_TRY(egc_lower_attr_ints(n, "perm", &pv, &cnt));
    if (pv && cnt != rank)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute perm has %d entries for rank %d", cnt,
                             rank);
    for (int i = 0; i < rank; i++) {
        int64_t q = pv ? pv[i] : rank - 1 - i;
        if (q < 0 || q >= rank || seen[q])
            return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute perm is not a permutation of 0..%d",
                                 rank - 1);
        seen[q] = 1;
        r->p.transpose.perm[i] = (int)q;
    }
    r->p.transpose.n = rank;
    r->op = EGC_OP_TRANSPOSE;
    r->n_in = 1;
    r->in[0] = vin[0];
    return EGC_OK;
}

static egc_status lower_slice(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                              egc_node *r)
{
    static const char *const k_old[] = {"starts", "ends", "axes", NULL};
    static const char *const k_new[] = {NULL};
    egc_slice_params *p = &r->p.slice;
    int rank = c->g->values[vin[0]].shape.ndim;
    int ns = 0, ne = 0, na = -1, nst = -1;
    if (c->g->opset < 10) {
        const int64_t *s, *e, *a;
        EGC_TRY(egc_lower_check_attrs(n, k_old));
        EGC_TRY(no_more_inputs(n, n_in, 1));
        EGC_TRY(egc_lower_attr_ints(n, "starts", &s, &ns));
        EGC_TRY(egc_lower_attr_ints(n, "ends", &e, &ne));
        EGC_TRY(egc_lower_attr_ints(n, "axes", &a, &na));
        if (!a) na = -1;
        if (!s || !e)
            return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attributes starts and ends are required");
        if (ns > EGC_MAX_DIMS || ne > EGC_MAX_DIMS || na > EGC_MAX_DIMS)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "too many sliced axes");
        for (int i = 0; i < ns; i++) p->starts[i] = s[i];
        for (int i = 0; i < ne; i++) p->ends[i] = e[i];
        for (int i = 0; i < na; i++) p->axes[i] = a[i];
    } else {
        EGC_TRY(egc_lower_check_attrs(n, k_new));
        EGC_TRY(no_more_inputs(n, n_in, 5));
        EGC_TRY(const_ints(c, n, vin, n_in, 1, "starts", p->starts, EGC_MAX_DIMS, &ns));
        EGC_TRY(const_ints(c, n, vin, n_in, 2, "ends", p->ends, EGC_MAX_DIMS, &ne));
        if (in_value(c, vin, n_in, 3))
            EGC_TRY(const_ints(c, n, vin, n_in, 3, "axes", p->axes, EGC_MAX_DIMS, &na));
        if (in_value(c, vin, n_in, 4))
            EGC_TRY(const_ints(c, n, vin, n_in, 4, "steps", p->steps, EGC_MAX_DIMS, &nst));
    }
    if (ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "starts, ends, axes and steps differ in length");
    int seen[EGC_MAX_DIMS] = {0};
    for (int i = 0; i < ns; i++) {
        if (na < 0) p->axes[i] = i;
        if (nst < 0) p->steps[i] = 1;
        int64_t a = p->axes[i];
        if (a < -rank || a >= rank)
            return EGC_NODE_FAIL(EGC_E_FORMAT, n, "axis %lld out of range for rank %d",
                                 (long long)a, rank);
        if (a < 0) a += rank;
        if (seen[a]) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "axis %lld repeated", (long long)a);
        seen[a] = 1;
        p->axes[i] = a;
        if (p->steps[i] == 0)
            return EGC_NODE_FAIL(EGC_E_FORMAT, n, "step 0 on axis %lld", (long long)a);
        /* A step beyond any dim acts like any other such step; keep arithmetic far from overflow.
         */
        if (p->steps[i] > ((int64_t)1 << 40)) p->steps[i] = (int64_t)1 << 40;
        if (p->steps[i] < -((int64_t)1 << 40)) p->steps[i] = -((int64_t)1 << 40);
    }
    p->n = ns;
    r->op = EGC_OP_SLICE;
    r->n_in = 1;
    r->in[0] = vin[0];
    return EGC_OK;
}

static egc_status lower_pad(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                            egc_node *r)
{
    static const char *const k_v1[] = {"paddings", "value", "mode", NULL};
    static const char *const k_v2[] = {"pads", "value", "mode", NULL};
    static const char *const k_new[] = {"mode", NULL};
    egc_pad_params *p = &r->p.pad;
    int rank = c->g->values[vin[0]].shape.ndim;
    int64_t pads[2 * EGC_MAX_DIMS];
    int np = 0;
    const char *mode;
    EGC_TRY(egc_lower_attr_string(n, "mode", "constant", &mode));
    p->value = 0;
    int64_t axes[EGC_MAX_DIMS];
    int na = -1;
    if (c->g->opset < 11) {
        const char *nm = c->g->opset < 2 ? "paddings" : "pads";
        const int64_t *v;
        EGC_TRY(egc_lower_check_attrs(n, c->g->opset < 2 ? k_v1 : k_v2));
        EGC_TRY(no_more_inputs(n, n_in, 1));
        EGC_TRY(egc_lower_attr_ints(n, nm, &v, &np));
        if (!v) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute %s is required", nm);
        if (np > 2 * EGC_MAX_DIMS)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute %s has %d values", nm, np);
        for (int i = 0; i < np; i++) pads[i] = v[i];
        EGC_TRY(egc_lower_attr_float(n, "value", 0.0f, &p->value));
    } else {
        EGC_TRY(egc_lower_check_attrs(n, k_new));
        EGC_TRY(no_more_inputs(n, n_in, 4));
        EGC_TRY(const_ints(c, n, vin, n_in, 1, "pads", pads, 2 * EGC_MAX_DIMS, &np));
        if (in_value(c, vin, n_in, 2))
            EGC_TRY(const_scalar(c, n, vin, n_in, 2, "constant_value", &p->value));
        if (in_value(c, vin, n_in, 3))
            EGC_TRY(const_ints(c, n, vin, n_in, 3, "axes", axes, EGC_MAX_DIMS, &na));
    }
    if (strcmp(mode, "constant") == 0) p->mode = EGC_PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0) p->mode = EGC_PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0) p->mode = EGC_PAD_EDGE;
    else return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute mode='%s' is not supported", mode);
    int nax = na >= 0 ? na : rank;
    if (np != 2 * nax)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "%d pads given for %d axes (need %d)", np, nax,
                             2 * nax);
    for (int i = 0; i < np; i++)
        if (pads[i] > ((int64_t)1 << 40) || pads[i] < -((int64_t)1 << 40))
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "pad of %lld", (long long)pads[i]);
    memset(p->pads, 0, sizeof p->pads);
    p->n = rank;
    if (na < 0) {
        for (int i = 0; i < rank; i++) {
            p->pads[i] = pads[i];
            p->pads[rank + i] = pads[rank + i];
        }
    } else {
        int seen[EGC_MAX_DIMS] = {0};
        for (int i = 0; i < na; i++) {
            int64_t a = axes[i];
            if (a < -rank || a >= rank)
                return EGC_NODE_FAIL(EGC_E_FORMAT, n, "axis %lld out of range for rank %d",
                                     (long long)a, rank);
            if (a < 0) a += rank;
            if (seen[a]) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "axis %lld repeated", (long long)a);
            seen[a] = 1;
            p->pads[a] = pads[i];
            p->pads[rank + a] = pads[na + i];
        }
    }
    r->op = EGC_OP_PAD;
    r->n_in = 1;
    r->in[0] = vin[0];
    return EGC_OK;
}

static egc_status lower_plain(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                              egc_op op, int arity, egc_node *r)
{
    static const char *const k_none[] = {NULL};
    static const char *const k_legacy[] = {"consumed_inputs", NULL};
    static const char *const k_bcast[] = {"broadcast", "consumed_inputs", NULL};
    int binary = arity == 2 && op != EGC_OP_MATMUL;
    EGC_TRY(egc_lower_check_attrs(n, binary ? k_bcast : (op == EGC_OP_MATMUL || op == EGC_OP_GAP)
                                                        ? k_none : k_legacy));
    if (n_in != arity)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected %d)", n_in, arity);
    for (int i = 0; i < arity; i++)
        if (vin[i] < 0) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input %d is empty", i);
    r->op = op;
    r->n_in = arity;
    for (int i = 0; i < arity; i++) r->in[i] = vin[i];
    (void)c;
    return EGC_OK;
}

typedef struct rt_entry {
    const char *onnx;
    egc_op op;
} rt_entry;

static const rt_entry k_runtime[] = {
    {"Conv", EGC_OP_CONV},       {"Gemm", EGC_OP_GEMM},
    {"MatMul", EGC_OP_MATMUL},   {"Relu", EGC_OP_RELU},
    {"Clip", EGC_OP_CLIP},       {"Sigmoid", EGC_OP_SIGMOID},
    {"Add", EGC_OP_ADD},         {"Sub", EGC_OP_SUB},
    {"Mul", EGC_OP_MUL},         {"Div", EGC_OP_DIV},
    {"MaxPool", EGC_OP_MAXPOOL}, {"AveragePool", EGC_OP_AVGPOOL},
    {"GlobalAveragePool", EGC_OP_GAP}, {"BatchNormalization", EGC_OP_BATCHNORM},
    {"Reshape", EGC_OP_RESHAPE}, {"Flatten", EGC_OP_RESHAPE},
    {"Concat", EGC_OP_CONCAT},   {"Slice", EGC_OP_SLICE},
    {"Pad", EGC_OP_PAD},         {"Softmax", EGC_OP_SOFTMAX},
    {"Transpose", EGC_OP_TRANSPOSE},
    {"Sqrt", EGC_OP_SQRT},       {"Erf", EGC_OP_ERF},
    {"Exp", EGC_OP_EXP},         {"Log", EGC_OP_LOG},
    {"Softplus", EGC_OP_SOFTPLUS},
};

static const rt_entry *runtime_op(const char *op_type)
{
    for (size_t i = 0; i < EGC_COUNT(k_runtime); i++)
        if (strcmp(k_runtime[i].onnx, op_type) == 0) return &k_runtime[i];
    return NULL;
}

/* Maps an ONNX node to a runtime node (op, params, inputs), without its output. */
static egc_status lower_params(lctx *c, const egc_onnx_node *n, const rt_entry *e, const int *vin,
                               int n_in, egc_node *r)
{
    if (n_in < 1 || vin[0] < 0) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input 0 is missing");
    const char *t = n->op_type;
    switch (e->op) {
    case EGC_OP_CONV: return lower_conv(c, n, vin, n_in, r);
    case EGC_OP_GEMM: return lower_gemm(c, n, vin, n_in, r);
    case EGC_OP_CLIP: return lower_clip(c, n, vin, n_in, r);
    case EGC_OP_MAXPOOL: return lower_pool(c, n, vin, n_in, 1, r);
    case EGC_OP_AVGPOOL: return lower_pool(c, n, vin, n_in, 0, r);
    case EGC_OP_BATCHNORM: return lower_bn(c, n, vin, n_in, r);
    case EGC_OP_RESHAPE:
        return strcmp(t, "Flatten") == 0 ? lower_flatten(c, n, vin, n_in, r)
                                         : lower_reshape(c, n, vin, n_in, r);
    case EGC_OP_CONCAT: return lower_concat(c, n, vin, n_in, r);
    case EGC_OP_SLICE: return lower_slice(c, n, vin, n_in, r);
    case EGC_OP_PAD: return lower_pad(c, n, vin, n_in, r);
    case EGC_OP_SOFTMAX: return lower_softmax(c, n, vin, n_in, r);
    case EGC_OP_TRANSPOSE: return lower_transpose(c, n, vin, n_in, r);
    case EGC_OP_MATMUL:
    case EGC_OP_ADD:
    case EGC_OP_SUB:
    case EGC_OP_MUL:
    case EGC_OP_DIV: return lower_plain(c, n, vin, n_in, e->op, 2, r);
    case EGC_OP_RELU:
    case EGC_OP_SIGMOID:
    case EGC_OP_SQRT:
    case EGC_OP_ERF:
    case EGC_OP_EXP:
    case EGC_OP_LOG:
    case EGC_OP_SOFTPLUS:
    case EGC_OP_GAP: return lower_plain(c, n, vin, n_in, e->op, 1, r);
    default: break;
    }
    return EGC_NODE_FAIL(EGC_E_INTERNAL, n, "no lowering for this op");
}

/* ---------------------------------------------------------------- nodes */

/* Marks the extra outputs (index >= first) of n as values nobody may use. */
static egc_status poison_outputs(lctx *c, const egc_onnx_node *n, int first)
{
    for (int o = first; o < n->n_outputs; o++) {
        const char *nm = n->outputs[o];
        if (!nm || !*nm) continue;
        int id = -1;
        EGC_TRY(new_value(c, nm, &id));
        c->poison[id] = n;
    }
    return EGC_OK;
}

static egc_status single_output(const egc_onnx_node *n)
{
    if (n->n_outputs < 1 || !n->outputs[0] || !*n->outputs[0])
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "has no output");
    for (int o = 1; o < n->n_outputs; o++)
        if (n->outputs[o] && *n->outputs[o])
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "output %d '%s' is not supported (only one "
                                 "output)", o, n->outputs[o]);
    return EGC_OK;
}

/* n's output 0 names value v itself (Identity, Dropout, Cast to float, Pow 1, a Reduce with
 * no axes and noop_with_empty_axes): an alias, no node. */
static egc_status alias_output(lctx *c, const egc_onnx_node *n, int v)
{
    if (nmap_get(&c->names, n->outputs[0]) >= 0)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "output '%s' is defined twice", n->outputs[0]);
    return nmap_put(&c->names, n->outputs[0], v);
}

static egc_status add_node(lctx *c, const egc_onnx_node *n, egc_node *r, int *out_id)
{
    egc_graph *g = c->g;
    if (g->n_nodes == c->cap_nodes) {
        int cap = c->cap_nodes ? c->cap_nodes * 2 : 128;
        EGC_TRY(egc_realloc((void **)&g->nodes, (size_t)cap, sizeof *g->nodes, "graph nodes"));
        c->cap_nodes = cap;
    }
    const egc_shape *ins[EGC_NODE_MAX_IN];
    for (int i = 0; i < r->n_in; i++) ins[i] = r->in[i] >= 0 ? &g->values[r->in[i]].shape : NULL;
    for (int i = 0; i < r->n_in; i++) {
        const egc_value *v = r->in[i] >= 0 ? &g->values[r->in[i]] : NULL;
        if (v && v->is_const && !v->is_float)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "input %d '%s' is an integer tensor; "
                                 "runtime ops take float tensors", i, v->name);
    }
    egc_shape os;
    r->name = n->name; /* borrowed for messages until the node is stored */
    EGC_TRY(egc_node_infer(g, r, ins, c->batch, &os));
    r->name = NULL;
    int id = -1;
    EGC_TRY(new_value(c, n->outputs[0], &id));
    g->values[id].shape = os;
    g->values[id].producer = g->n_nodes;
    r->out = id;
    EGC_TRY(egc_strdup(&r->name, n->name && *n->name ? n->name : n->op_type));
    g->nodes[g->n_nodes++] = *r;
    *out_id = id;
    return EGC_OK;
}

/* The work of folding runtime node r (inputs ins, output os) on the CPU, in multiply-adds
 * (roughly: per output element, the products it sums or the window it reads). */
#define EGC_FOLD_MAX_MACS ((double)(1u << 31))
static double fold_cost(const egc_node *r, const egc_shape *const *ins, const egc_shape *os)
{
    double out = (double)egc_shape_numel(os), per = 1.0;
    const egc_shape *a = r->n_in > 0 ? ins[0] : NULL, *b = r->n_in > 1 ? ins[1] : NULL;
    switch (r->op) {
    case EGC_OP_CONV: /* W [M, C/g, kh, kw] */
        if (b && b->ndim == 4) per = (double)b->d[1] * (double)b->d[2] * (double)b->d[3];
        break;
    case EGC_OP_GEMM:
        if (a && a->ndim == 2) per = (double)(r->p.gemm.trans_a ? a->d[0] : a->d[1]);
        break;
    case EGC_OP_MATMUL:
        if (a && a->ndim >= 1) per = (double)a->d[a->ndim - 1];
        break;
    case EGC_OP_MAXPOOL:
    case EGC_OP_AVGPOOL: per = (double)r->p.pool.kh * (double)r->p.pool.kw; break;
    case EGC_OP_GAP:
        if (a && a->ndim == 4) per = (double)a->d[2] * (double)a->d[3];
        break;
    default: break;
    }
    return out * (per > 1.0 ? per : 1.0);
}

/* A runtime op whose inputs are all float constants: lower it, then run the CPU reference
 * op once and keep the result as a constant. */
static egc_status fold_runtime(lctx *c, const egc_onnx_node *n, const rt_entry *e, const int *vin,
                               int n_in)
{
    egc_graph *g = c->g;
    egc_node r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < EGC_NODE_MAX_IN; i++) r.in[i] = -1;
    EGC_TRY(lower_params(c, n, e, vin, n_in, &r));
    const egc_shape *ins[EGC_NODE_MAX_IN];
    egc_view views[EGC_NODE_MAX_IN];
    for (int i = 0; i < r.n_in; i++) {
        const egc_value *v = r.in[i] >= 0 ? &g->values[r.in[i]] : NULL;
        if (v && !v->is_float)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "input %d '%s' is an integer tensor; "
                                 "this op takes float tensors", i, v->name);
        ins[i] = v ? &v->shape : NULL;
        views[i].ptr = v ? v->f32 : NULL;
        if (v) views[i].shape = v->shape;
        else memset(&views[i].shape, 0, sizeof views[i].shape);
    }
    r.name = n->name;
    egc_onnx_tensor t;
    egc_shape os;
    EGC_TRY(egc_node_infer(g, &r, ins, c->batch, &os));
    if (fold_cost(&r, ins, &os) > EGC_FOLD_MAX_MACS)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "evaluating this operator on constants at load "
                             "time would take more than %.0e multiply-adds",
                             (double)EGC_FOLD_MAX_MACS);
    if (egc_shape_numel(&os) > EGC_FOLD_MAX_NUMEL)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "constant result too large to fold");
    if (egc_shape_numel(&os) > c->budget - c->held)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "a constant result of %lld elements would "
                             "bring the constants folded at load time past their budget (%lld "
                             "elements left of %lld plus %d per weight of the file)",
                             (long long)egc_shape_numel(&os), (long long)(c->budget - c->held),
                             (long long)EGC_FOLD_BUDGET_BASE, EGC_FOLD_BUDGET_PER_WEIGHT + 1);
    memset(&t, 0, sizeof t);
    t.shape = os;
    t.numel = egc_shape_numel(&os);
    t.is_float = 1;
    EGC_TRY(egc_calloc((void **)&t.f32, (size_t)(t.numel ? t.numel : 1), sizeof(float),
                       "folded constant"));
    egc_view ov = {t.f32, os};
    egc_status st = egc_cpu_forward(g, &r, views, &ov);
    int id = -1;
    if (st == EGC_OK) st = new_value(c, n->outputs[0], &id);
    if (st != EGC_OK) {
        egc_fold_free(&t);
        return egc_error_trace(st, "fold_runtime", __FILE__, __LINE__);
    }
    return take_tensor(c, id, &t);
}

/* ---------------------------------------------------------------- composite lowerings
 * ONNX operators that become a few runtime nodes of the executor (so every backend runs
 * them with the kernels it has, forward and backward):
 *   HardSigmoid(x; alpha, beta)  = Clip(Add(Mul(x, alpha), beta), 0, 1)
 *   HardSwish(x)                 = Mul(x, HardSigmoid(x; 1/6, 1/2))
 *   ReduceMean(x; axes {2,3})    = GlobalAveragePool(x) of a 4-D x (then a Flatten to
 *                                  [N,C] with keepdims=0); over two other axes than the batch
 *                                  (a channels-last [N,H,W,C] over {1,2}), a Transpose moving
 *                                  them last first (and a Reshape after with keepdims=1)
 *   GlobalMaxPool(x), ReduceMax(x; axes {2,3}) = MaxPool(x) with the whole H x W as its
 *                                  window (then a Flatten with keepdims=0)
 *   Squeeze(x), Unsqueeze(x) of a value computed at run time = Reshape(x) to the known shape
 *                                  (the batch axis copied; it may not be squeezed or inserted)
 *   LeakyRelu(x; alpha), PRelu(x, slope) = Add(Mul(x, a), Mul(Relu(x), 1 - a)) with a the
 *                                  alpha or the (constant) slope
 *   Tanh(x)                      = 2 Sigmoid(2x) - 1
 *   Neg(x), Abs(x), Reciprocal(x) = Mul(x, -1), Add(Relu(x), Relu(Mul(x, -1))), Div(1, x)
 *   InstanceNormalization, GroupNormalization = a Reshape to [N, groups, values], the
 *                                  normalisation of layer_norm over the last axis, a Reshape
 *                                  back, the scale and bias (group_norm)
 * The last node's output keeps the ONNX output's name (a target layer is named as in the
 * file); the nodes before it are named after the ONNX node with a suffix. */

/* Adds runtime node r of a composite lowering of n: its output is n's own output when last
 * is set, else a new value named after n's output plus suffix; *id gets the output. */
static egc_status add_part(lctx *c, const egc_onnx_node *n, egc_node *r, const char *suffix,
                           int last, int *id)
{
    char oname[600], nodename[600];
    snprintf(oname, sizeof oname, "%s%s", n->outputs[0], suffix);
    for (int k = 2; !last && nmap_get(&c->names, oname) >= 0 && k < 1000000; k++)
        snprintf(oname, sizeof oname, "%s%s_%d", n->outputs[0], suffix, k);
    snprintf(nodename, sizeof nodename, "%s%s", nname(n), last ? "" : suffix);
    char *outs[1] = {last ? n->outputs[0] : oname};
    egc_onnx_node part = *n;
    part.name = nodename;
    part.outputs = outs;
    part.n_outputs = 1;
    return add_node(c, &part, r, id);
}

/* A zeroed float tensor of shape s (NULL: a scalar) into *t. */
static egc_status zero_tensor(const egc_shape *s, egc_onnx_tensor *t)
{
    memset(t, 0, sizeof *t);
    t->orig_dtype = EGC_DT_FLOAT;
    t->is_float = 1;
    if (s) t->shape = *s; /* else a scalar (ndim 0) */
    t->numel = s ? egc_shape_numel(s) : 1;
    return egc_calloc((void **)&t->f32, (size_t)(t->numel ? t->numel : 1), sizeof(float),
                      "constant");
}

/* Tensor t (taken over, freed on failure) as a new constant named after n's output plus
 * suffix; *id gets it. */
static egc_status own_const(lctx *c, const egc_onnx_node *n, const char *suffix,
                            egc_onnx_tensor *t, int *id)
{
    egc_status st = new_unique_value(c, n->outputs[0], suffix, id);
    if (st != EGC_OK) {
        egc_fold_free(t);
        return st;
    }
    return take_tensor(c, *id, t);
}

/* A new float constant of shape s (NULL: a scalar) with every element v, named after n's
 * output and suffix. */
static egc_status fill_const(lctx *c, const egc_onnx_node *n, const char *suffix,
                             const egc_shape *s, float v, int *id)
{
    egc_onnx_tensor t;
    EGC_TRY(zero_tensor(s, &t));
    for (int64_t k = 0; k < t.numel; k++) t.f32[k] = v;
    return own_const(c, n, suffix, &t, id);
}

static egc_status scalar_const(lctx *c, const egc_onnx_node *n, const char *suffix, float v,
                               int *id)
{
    return fill_const(c, n, suffix, NULL, v, id);
}

static void node_init(egc_node *r, egc_op op)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < EGC_NODE_MAX_IN; i++) r->in[i] = -1;
    r->op = op;
}

/* HardSigmoid of value x into a new value (last = 0) or n's output (last = 1). */
static egc_status hard_sigmoid(lctx *c, const egc_onnx_node *n, int x, float alpha, float beta,
                               int last, int *id)
{
    int ka, kb, m, a;
    egc_node r;
    EGC_TRY(scalar_const(c, n, "/alpha", alpha, &ka));
    EGC_TRY(scalar_const(c, n, "/beta", beta, &kb));
    node_init(&r, EGC_OP_MUL);
    r.n_in = 2, r.in[0] = x, r.in[1] = ka;
    EGC_TRY(add_part(c, n, &r, "/hardsigmoid_mul", 0, &m));
    node_init(&r, EGC_OP_ADD);
    r.n_in = 2, r.in[0] = m, r.in[1] = kb;
    EGC_TRY(add_part(c, n, &r, "/hardsigmoid_add", 0, &a));
    node_init(&r, EGC_OP_CLIP);
    r.n_in = 1, r.in[0] = a;
    r.p.clip.lo = 0.0f;
    r.p.clip.hi = 1.0f;
    return add_part(c, n, &r, "/hardsigmoid", last, id);
}

/* Reshape of x to dims (n entries, 0 = the batch copied) into a new value (last = 0) or n's
 * output (last = 1). */
static egc_status reshape_part(lctx *c, const egc_onnx_node *n, int x, const int64_t *dims,
                               int nd, const char *suffix, int last, int *id)
{
    egc_node r;
    node_init(&r, EGC_OP_RESHAPE);
    r.n_in = 1, r.in[0] = x;
    r.p.reshape.flatten_axis = -1;
    for (int k = 0; k < nd; k++) r.p.reshape.dims[k] = dims[k];
    r.p.reshape.n = nd;
    return add_part(c, n, &r, suffix, last, id);
}

/* The shape of a reduction of shape xs over its axis a (kept as 1 when keep, else dropped)
 * as Reshape dims into od (the batch as 0: copied); returns their count. */
static int reduced_dims(const egc_shape *xs, int a, int keep, int64_t *od)
{
    int o = 0;
    for (int k = 0; k < xs->ndim; k++) {
        if (k == a && !keep) continue;
        od[o++] = k == 0 ? 0 : k == a ? 1 : xs->d[k];
    }
    return o;
}

/* Transpose of x (rank dims) by perm into a new value (last = 0) or n's output (last = 1). */
static egc_status transpose_part(lctx *c, const egc_onnx_node *n, int x, const int *perm, int rank,
                                 const char *suffix, int last, int *id)
{
    egc_node r;
    node_init(&r, EGC_OP_TRANSPOSE);
    r.n_in = 1, r.in[0] = x;
    r.p.transpose.n = rank;
    for (int k = 0; k < rank; k++) r.p.transpose.perm[k] = perm[k];
    return add_part(c, n, &r, suffix, last, id);
}

/* The mean over the last two axes of 4-D value x (GlobalAveragePool; is_max 0), or the
 * maximum over a kh x kw window with stride 1 (a MaxPool; is_max 1), into a new value
 * (last = 0) or n's output (last = 1). */
static egc_status pool_part(lctx *c, const egc_onnx_node *n, int x, int is_max, int64_t kh,
                            int64_t kw, const char *suffix, int last, int *id)
{
    egc_node r;
    node_init(&r, is_max ? EGC_OP_MAXPOOL : EGC_OP_GAP);
    r.n_in = 1, r.in[0] = x;
    if (is_max) {
        if (kh < 1 || kw < 1 || kh > EGC_LOWER_MAX_WINDOW || kw > EGC_LOWER_MAX_WINDOW)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "a window of %lldx%lld cannot be pooled",
                                 (long long)kh, (long long)kw);
        r.p.pool.kh = (int)kh;
        r.p.pool.kw = (int)kw;
        r.p.pool.sh = r.p.pool.sw = r.p.pool.dh = r.p.pool.dw = 1;
    }
    return add_part(c, n, &r, suffix, last, id);
}

/* The mean (GlobalAveragePool) or the maximum (a MaxPool whose window is the whole H x W) of
 * 4-D value x over its spatial axes into n's output: [N,C,1,1], or [N,C] after a Flatten
 * when keep is 0. */
static egc_status spatial_reduce(lctx *c, const egc_onnx_node *n, int x, int is_max, int keep,
                                 int *id)
{
    const egc_shape *xs = &c->g->values[x].shape;
    if (xs->ndim != 4)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "input 0 must be 4-D [N,C,H,W] (it has %d "
                             "dims)", xs->ndim);
    if (keep) return pool_part(c, n, x, is_max, xs->d[2], xs->d[3], "", 1, id);
    int g = -1;
    EGC_TRY(pool_part(c, n, x, is_max, xs->d[2], xs->d[3], is_max ? "/max" : "/mean", 0, &g));
    egc_node r;
    node_init(&r, EGC_OP_RESHAPE);
    r.n_in = 1, r.in[0] = g;
    r.p.reshape.flatten_axis = 1;
    r.p.reshape.n = 2;
    return add_part(c, n, &r, "", 1, id);
}

/* The mean (sum = 0) or the sum (sum = 1) of value x over its last axis, [...,C] -> [...,1],
 * into a new value (last = 0) or n's output (last = 1): a MatMul with a constant [C,1] of 1/C
 * (or of ones), which every backend runs forward and backward. The last axis may not be the
 * batch axis. */
static egc_status reduce_last_axis(lctx *c, const egc_onnx_node *n, int x, int sum,
                                   const char *suffix, int last, int *id)
{
    const egc_shape *xs = &c->g->values[x].shape;
    if (xs->ndim < 2)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "a mean over the last axis of a %d-D tensor "
                             "(the batch axis) is not supported", xs->ndim);
    const int64_t ch = xs->d[xs->ndim - 1];
    if (ch < 1)
        return EGC_NODE_FAIL(EGC_E_SHAPE, n, "the last axis has size %lld", (long long)ch);
    int64_t wd[2] = {ch, 1};
    egc_shape ws = egc_shape_make(2, wd);
    char wname[80];
    int w = -1;
    snprintf(wname, sizeof wname, "%s_weights", suffix);
    EGC_TRY(fill_const(c, n, wname, &ws, sum ? 1.0f : (float)(1.0 / (double)ch), &w));
    egc_node r;
    node_init(&r, EGC_OP_MATMUL);
    r.n_in = 2, r.in[0] = x, r.in[1] = w;
    return add_part(c, n, &r, suffix, last, id);
}

/* A binary node op(a, b) into a new value (last = 0) or n's output (last = 1). */
static egc_status binary_part(lctx *c, const egc_onnx_node *n, egc_op op, int a, int b,
                              const char *suffix, int last, int *id)
{
    egc_node r;
    node_init(&r, op);
    r.n_in = 2, r.in[0] = a, r.in[1] = b;
    return add_part(c, n, &r, suffix, last, id);
}

/* Slice [start, end) with step 1 or more of x along one axis into a new value (last = 0) or
 * n's output (last = 1). */
static egc_status slice_part(lctx *c, const egc_onnx_node *n, int x, int64_t axis, int64_t start,
                             int64_t end, int64_t step, const char *suffix, int last, int *id)
{
    egc_node r;
    node_init(&r, EGC_OP_SLICE);
    r.n_in = 1, r.in[0] = x;
    r.p.slice.n = 1;
    r.p.slice.axes[0] = axis;
    r.p.slice.starts[0] = start;
    r.p.slice.ends[0] = end;
    r.p.slice.steps[0] = step;
    return add_part(c, n, &r, suffix, last, id);
}

/* A unary node op(x) into a new value (last = 0) or n's output (last = 1). */
static egc_status unary_part(lctx *c, const egc_onnx_node *n, egc_op op, int x,
                             const char *suffix, int last, int *id)
{
    egc_node r;
    node_init(&r, op);
    r.n_in = 1, r.in[0] = x;
    return add_part(c, n, &r, suffix, last, id);
}

/* |x| = Relu(x) + Relu(-x) (one of them 0, so exact; its gradient is sign(x), 0 at 0) into a
 * new value (last = 0) or n's output (last = 1); its parts are named after suffix. */
static egc_status abs_part(lctx *c, const egc_onnx_node *n, int x, const char *suffix, int last,
                           int *id)
{
    int k, t, r1, r2;
    char nm[96];
    snprintf(nm, sizeof nm, "%s/minus_one", suffix);
    EGC_TRY(scalar_const(c, n, nm, -1.0f, &k));
    snprintf(nm, sizeof nm, "%s/negated", suffix);
    EGC_TRY(binary_part(c, n, EGC_OP_MUL, x, k, nm, 0, &t));
    snprintf(nm, sizeof nm, "%s/positive", suffix);
    EGC_TRY(unary_part(c, n, EGC_OP_RELU, x, nm, 0, &r1));
    snprintf(nm, sizeof nm, "%s/negative", suffix);
    EGC_TRY(unary_part(c, n, EGC_OP_RELU, t, nm, 0, &r2));
    return binary_part(c, n, EGC_OP_ADD, r1, r2, suffix, last, id);
}

/* tanh(x) = 2 sigmoid(2x) - 1 into a new value (last = 0) or n's output (last = 1): Sigmoid
 * forward and backward are runtime ops of every backend (within 1e-6 of tanh). */
static egc_status tanh_part(lctx *c, const egc_onnx_node *n, int x, const char *suffix, int last,
                            int *id)
{
    int k2, km1, d, sg, s2;
    char nm[96];
    snprintf(nm, sizeof nm, "%s/two", suffix);
    EGC_TRY(scalar_const(c, n, nm, 2.0f, &k2));
    snprintf(nm, sizeof nm, "%s/minus_one", suffix);
    EGC_TRY(scalar_const(c, n, nm, -1.0f, &km1));
    snprintf(nm, sizeof nm, "%s/doubled", suffix);
    EGC_TRY(binary_part(c, n, EGC_OP_MUL, x, k2, nm, 0, &d));
    snprintf(nm, sizeof nm, "%s/sigmoid", suffix);
    EGC_TRY(unary_part(c, n, EGC_OP_SIGMOID, d, nm, 0, &sg));
    snprintf(nm, sizeof nm, "%s/sigmoid_doubled", suffix);
    EGC_TRY(binary_part(c, n, EGC_OP_MUL, sg, k2, nm, 0, &s2));
    return binary_part(c, n, EGC_OP_ADD, s2, km1, suffix, last, id);
}

/* The exponential units into n's output: gamma (relu(x) + alpha (exp(min(x, 0) / scale) - 1))
 * with min(x, 0) a Clip to (-inf, 0], so Exp never sees a positive argument (+inf gives +inf):
 * Elu (scale 1, gamma 1), Selu (scale 1) and Celu (scale alpha). The gradient is gamma for
 * x > 0 and gamma alpha / scale exp(x / scale) at 0 and below (the Clip's gradient includes
 * its bound, Relu's does not), as PyTorch's. */
static egc_status exp_unit(lctx *c, const egc_onnx_node *n, int x, float alpha, float scale,
                           float gamma, int *id)
{
    int kin, kag, knag, kg, mn, m, e, t, u, pos, pg;
    EGC_TRY(scalar_const(c, n, "/inv_scale", 1.0f / scale, &kin));
    EGC_TRY(scalar_const(c, n, "/alpha_gamma", alpha * gamma, &kag));
    EGC_TRY(scalar_const(c, n, "/minus_alpha_gamma", -(alpha * gamma), &knag));
    EGC_TRY(unary_part(c, n, EGC_OP_RELU, x, "/positive", 0, &pos));
    pg = pos;
    if (gamma != 1.0f) {
        EGC_TRY(scalar_const(c, n, "/gamma", gamma, &kg));
        EGC_TRY(binary_part(c, n, EGC_OP_MUL, pos, kg, "/positive_scaled", 0, &pg));
    }
    egc_node cl;
    node_init(&cl, EGC_OP_CLIP);
    cl.n_in = 1, cl.in[0] = x;
    cl.p.clip.lo = -INFINITY;
    cl.p.clip.hi = 0.0f;
    EGC_TRY(add_part(c, n, &cl, "/min", 0, &mn));
    EGC_TRY(binary_part(c, n, EGC_OP_MUL, mn, kin, "/min_scaled", 0, &m));
    EGC_TRY(unary_part(c, n, EGC_OP_EXP, m, "/exp", 0, &e));
    EGC_TRY(binary_part(c, n, EGC_OP_MUL, e, kag, "/exp_scaled", 0, &t));
    EGC_TRY(binary_part(c, n, EGC_OP_ADD, t, knag, "/exp_unit", 0, &u));
    return binary_part(c, n, EGC_OP_ADD, pg, u, "", 1, id);
}

/* (x - mean) / sqrt(var + eps) over the last axis of x into a new value *id (layer_norm,
 * group_norm). */
static egc_status normalize_last_axis(lctx *c, const egc_onnx_node *n, int x, float eps, int *id)
{
    int m, d, sq, v, ke, ve, sd;
    EGC_TRY(reduce_last_axis(c, n, x, 0, "/mean", 0, &m));
    EGC_TRY(binary_part(c, n, EGC_OP_SUB, x, m, "/centered", 0, &d));
    EGC_TRY(binary_part(c, n, EGC_OP_MUL, d, d, "/squared", 0, &sq));
    EGC_TRY(reduce_last_axis(c, n, sq, 0, "/variance", 0, &v));
    EGC_TRY(scalar_const(c, n, "/epsilon", eps, &ke));
    EGC_TRY(binary_part(c, n, EGC_OP_ADD, v, ke, "/variance_eps", 0, &ve));
    EGC_TRY(unary_part(c, n, EGC_OP_SQRT, ve, "/std", 0, &sd));
    return binary_part(c, n, EGC_OP_DIV, d, sd, "/normalized", 0, id);
}

/* LayerNormalization over the last axis of x (scale and bias broadcast over it; bias < 0:
 * none) into n's output: (x - mean) / sqrt(var + eps) * scale + bias, with the mean and the
 * (biased) variance as MatMuls with 1/C (reduce_last_axis). */
static egc_status layer_norm(lctx *c, const egc_onnx_node *n, int x, int scale, int bias,
                             float eps)
{
    int nr, y;
    EGC_TRY(normalize_last_axis(c, n, x, eps, &nr));
    if (bias < 0) return binary_part(c, n, EGC_OP_MUL, nr, scale, "", 1, &y);
    EGC_TRY(binary_part(c, n, EGC_OP_MUL, nr, scale, "/scaled", 0, &y));
    return binary_part(c, n, EGC_OP_ADD, y, bias, "", 1, &y);
}

/* Constant v (float, numel k) as a new constant of shape [k, 1, ..., 1] (rank dims), to
 * broadcast per channel over [N, k, ...] values; *id gets it. */
static egc_status per_channel_const(lctx *c, const egc_onnx_node *n, int v, int rank,
                                    const char *suffix, int *id)
{
    const egc_value *cv = &c->g->values[v];
    egc_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = rank;
    s.d[0] = egc_shape_numel(&cv->shape);
    for (int k = 1; k < rank; k++) s.d[k] = 1;
    egc_onnx_tensor t;
    EGC_TRY(zero_tensor(&s, &t));
    memcpy(t.f32, cv->f32, (size_t)t.numel * sizeof(float));
    return own_const(c, n, suffix, &t, id);
}

/* Resize's coordinate transformations (coordinate_transformation_mode). */
enum { CT_HALF, CT_PYTORCH_HALF, CT_ALIGN, CT_ASYM, CT_HALF_SYM, CT_TF_NN };
/* Resize's interpolations (mode) and nearest roundings (nearest_mode). */
enum { RM_NEAREST, RM_LINEAR, RM_CUBIC };
enum { NR_PREFER_FLOOR, NR_PREFER_CEIL, NR_FLOOR, NR_CEIL };

/* The interpolation matrix of one axis of a Resize, transposed: Rt [in, out], as ONNX's reference computes
 * each output element: its coordinate x in the input (ct, the float output length
 * scale * in), the n nearest input positions to it (2, or 4 for cubic; ties to the lower;
 * positions outside the axis take the edge value, or with exclude_outside a coefficient of
 * 0 and the rest renormalised) and their coefficients for ratio = x - floor(x) (1 where x is
 * whole). Rt's columns sum to 1 (nearest: a single 1). */
static void resize_matrix(int64_t in, int64_t out, double scale, int mode, int ct, int nr,
                          double A, int exclude, float *Rt)
{
    const double ow = scale * (double)in; /* the reference's float output length */
    const int n = mode == RM_CUBIC ? 4 : 2, pad = (n + 1) / 2;
    memset(Rt, 0, (size_t)(out * in) * sizeof *Rt);
    for (int64_t o = 0; o < out; o++) {
        const double xd = (double)o;
        double x;
        switch (ct) {
        case CT_ALIGN: x = ow == 1.0 ? 0.0 : xd * (double)(in - 1) / (ow - 1.0); break;
        case CT_ASYM: x = xd / scale; break;
        case CT_PYTORCH_HALF: x = ow == 1.0 ? -0.5 : (xd + 0.5) / scale - 0.5; break;
        case CT_HALF_SYM: {
            const double adj = (double)out / ow, center = (double)in / 2.0;
            x = center * (1.0 - adj) + (xd + 0.5) / scale - 0.5;
            break;
        }
        case CT_TF_NN: x = (xd + 0.5) / scale; break;
        default: x = (xd + 0.5) / scale - 0.5; break;
        }
        const double fl = floor(x), r = x == fl ? 1.0 : x - fl;
        double cf[4];
        if (mode == RM_CUBIC) {
            const double s = 1.0 - r;
            cf[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
            cf[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
            cf[2] = ((A + 2) * s - (A + 3)) * s * s + 1;
            cf[3] = ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A;
        } else if (mode == RM_LINEAR) {
            cf[0] = 1.0 - r, cf[1] = r;
        } else if (r == 1.0) {
            cf[0] = 0.0, cf[1] = 1.0;
        } else {
            const int up = nr == NR_PREFER_FLOOR ? r > 0.5
                         : nr == NR_PREFER_CEIL  ? r >= 0.5
                                                 : nr == NR_CEIL;
            cf[0] = up ? 0.0 : 1.0, cf[1] = up ? 1.0 : 0.0;
        }
        /* the n positions nearest to x, ties to the lower, in increasing order (the
         * reference's _get_neighbor on the edge-padded axis, for the x >= -0.5 every
         * transformation here gives): floor(x) and the next for n = 2, floor(x) - 1 to
         * floor(x) + 2 for n = 4; one lower where x is whole (ratio 1); kept in the padded
         * coordinates [0, in + 2 pad) */
        int64_t idx[4];
        const int64_t first = (int64_t)fl - (n == 4 ? 1 : 0) - (r == 1.0 ? 1 : 0) + pad;
        for (int k = 0; k < n; k++) {
            int64_t q = first + k;
            idx[k] = q < 0 ? 0 : (q > in + 2 * pad - 1 ? in + 2 * pad - 1 : q);
        }
        if (exclude) {
            double sum = 0.0;
            for (int k = 0; k < n; k++) {
                const int64_t q = idx[k] - pad;
                if (q < 0 || q >= in) cf[k] = 0.0;
                sum += cf[k];
            }
            for (int k = 0; k < n && sum != 0.0; k++) cf[k] /= sum;
        }
        for (int k = 0; k < n; k++) {
            int64_t q = idx[k] - pad;
            q = q < 0 ? 0 : (q >= in ? in - 1 : q);
            Rt[q * out + o] += (float)cf[k];
        }
    }
}

/* Index of s in names (NULL-terminated), or -1. */
static int name_index(const char *s, const char *const *names)
{
    for (int k = 0; names[k]; k++)
        if (strcmp(s, names[k]) == 0) return k;
    return -1;
}

/* Resize (opsets 10 to 19) and Upsample on the spatial axes of a 4-D value x [N,C,H,W], the
 * sizes and factors from the constant scales or sizes input (or Upsample-7's attribute).
 * In nearest mode by whole factors sh, sw >= 1 where the sampling is block replication,
 * out[i] = in[i / s] (coordinate_transformation_mode asymmetric with nearest_mode floor, as
 * PyTorch exports F.interpolate(mode="nearest"), or half_pixel / pytorch_half_pixel with the
 * round modes): a Reshape to [N,C,H,1,W,1], a Mul with ones [1,1,1,sh,1,sw] (its backward
 * sums each block: the gradient of the replication) and a Reshape to [N,C,H*sh,W*sw].
 * Otherwise (linear and cubic modes, nearest by other factors or coordinates, downsampling):
 * a Resize is linear in x and separable, x Rw^T along W and Rh x along H with the matrices
 * of resize_matrix: a MatMul with the constant Rw^T [W,W'], and between two Transposes that
 * put H last, one with Rh^T [H,H'] (an axis whose matrix is the identity is skipped); their
 * backward is the transposed interpolation. Refused with the reason: tf_crop_and_resize,
 * antialias when downsampling, axes other than H and W resized, the batch or channels. */
static egc_status lower_resize(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                               int *id)
{
    static const char *const known[] = {"mode", "coordinate_transformation_mode",
                                        "nearest_mode", "cubic_coeff_a", "exclude_outside",
                                        "extrapolation_value", "antialias", "axes",
                                        "keep_aspect_ratio_policy", "scales", NULL};
    static const char *const k_modes[] = {"nearest", "linear", "cubic", NULL};
    static const char *const k_ct[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
                                       "asymmetric", "half_pixel_symmetric",
                                       "tf_half_pixel_for_nn", NULL};
    static const char *const k_nr[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                       "ceil", NULL};
    EGC_TRY(egc_lower_check_attrs(n, known));
    EGC_TRY(single_output(n));
    const int upsample = n->op_type[0] == 'U';
    const int64_t opset = c->g->opset;
    const char *mode = "nearest", *ctm = "half_pixel", *nm = "round_prefer_floor";
    EGC_TRY(egc_lower_attr_string(n, "mode", "nearest", &mode));
    if (upsample || opset < 11) { /* Upsample and Resize-10: asymmetric, floor */
        ctm = "asymmetric";
        nm = "floor";
        if (!strcmp(mode, "bilinear")) mode = "linear"; /* Upsample-7's name for it */
    } else {
        EGC_TRY(egc_lower_attr_string(n, "coordinate_transformation_mode", "half_pixel", &ctm));
        EGC_TRY(egc_lower_attr_string(n, "nearest_mode", "round_prefer_floor", &nm));
    }
    const int rm = name_index(mode, k_modes), ct = name_index(ctm, k_ct),
              nr = name_index(nm, k_nr);
    if (rm < 0)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "mode='%s' is not supported ('nearest', "
                             "'linear' and 'cubic' are)", mode);
    if (ct < 0)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "coordinate_transformation_mode='%s' is not "
                             "supported (crop and resize needs a region of interest egcam does "
                             "not take)", ctm);
    if (nr < 0)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "nearest_mode='%s' is not one of ONNX's", nm);
    float cubic_a = -0.75f;
    int64_t exclude = 0, antialias = 0;
    EGC_TRY(egc_lower_attr_float(n, "cubic_coeff_a", -0.75f, &cubic_a));
    EGC_TRY(egc_lower_attr_int(n, "exclude_outside", 0, &exclude));
    EGC_TRY(egc_lower_attr_int(n, "antialias", 0, &antialias));
    const egc_onnx_attr *axes = egc_lower_attr(n, "axes");
    if (axes)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute axes is not supported");
    const char *policy = "stretch";
    EGC_TRY(egc_lower_attr_string(n, "keep_aspect_ratio_policy", "stretch", &policy));
    if (strcmp(policy, "stretch") != 0)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "keep_aspect_ratio_policy='%s' is not "
                             "supported (only 'stretch')", policy);
    if (n_in < 1 || vin[0] < 0) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input 0 is missing");
    const egc_shape xs = c->g->values[vin[0]].shape;
    if (xs.ndim != 4)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "input 0 has %d dims (egcam resizes [N,C,H,W])",
                             xs.ndim);
    double f[4] = {1, 1, 1, 1};
    int64_t osz[4] = {xs.d[0], xs.d[1], xs.d[2], xs.d[3]};
    int have = 0, from_sizes = 0;
    const egc_onnx_attr *sa = egc_lower_attr(n, "scales"); /* Upsample-7 */
    if (sa && sa->n == 4) {
        for (int k = 0; k < 4; k++) f[k] = sa->floats[k];
        have = 1;
    }
    /* the scales input: 1 for Upsample-9 and Resize-10, 2 from Resize-11; sizes: 3 */
    const int si = (upsample || opset < 11) ? 1 : 2;
    for (int k = si; k < n_in && !have; k++) {
        if (vin[k] < 0) continue;
        const egc_value *v = &c->g->values[vin[k]];
        if (!v->is_const)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "input %d '%s' must be a constant", k,
                                 v->name);
        const int64_t cnt = egc_shape_numel(&v->shape);
        if (cnt == 0) continue; /* an empty scales: the sizes follow */
        if (cnt != 4)
            return EGC_NODE_FAIL(EGC_E_SHAPE, n, "input %d has %lld values for a 4-D input", k,
                                 (long long)cnt);
        for (int q = 0; q < 4; q++) {
            const double val = v->is_float ? (double)v->f32[q] : (double)v->i64[q];
            f[q] = k == si ? val : val / (double)xs.d[q]; /* sizes: as factors */
            if (k != si) osz[q] = (int64_t)val;
        }
        have = 1, from_sizes = k != si;
    }
    if (!have) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "has neither scales nor sizes");
    if (f[0] != 1.0 || f[1] != 1.0)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "factors %g, %g, %g, %g are not supported "
                             "(egcam resizes the last two axes, H and W)", f[0], f[1], f[2],
                             f[3]);
    for (int q = 2; q < 4; q++) {
        if (!(f[q] > 0.0) || !isfinite(f[q]))
            return EGC_NODE_FAIL(EGC_E_FORMAT, n, "factor %g on axis %d is not positive", f[q],
                                 q);
        /* floor(in x scale) in float32, as ONNX's shape inference and ONNX Runtime compute it
         * (and PyTorch's export means: 10 x 1.4f is 14, not the 13 of the product in double) */
        if (!from_sizes) osz[q] = (int64_t)floorf((float)xs.d[q] * (float)f[q]);
        if (osz[q] < 1 || osz[q] > 65536)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "output size %lld on axis %d is not "
                                 "supported (1 to 65536)", (long long)osz[q], q);
    }
    int64_t s2 = (int64_t)f[2], s3 = (int64_t)f[3];
    const int asym = ct == CT_ASYM, half = ct == CT_HALF || ct == CT_PYTORCH_HALF;
    const int blocks = rm == RM_NEAREST &&
                       ((asym && nr == NR_FLOOR) ||
                        (half && (nr == NR_PREFER_FLOOR || nr == NR_PREFER_CEIL))) &&
                       f[2] == (double)s2 && f[3] == (double)s3 && s2 >= 1 && s3 >= 1 &&
                       s2 <= 64 && s3 <= 64;
    if (blocks) {
        if (s2 == 1 && s3 == 1) return alias_output(c, n, vin[0]);
        const int64_t d6[6] = {0, xs.d[1], xs.d[2], 1, xs.d[3], 1};
        const int64_t ones[6] = {1, 1, 1, s2, 1, s3};
        const int64_t out[4] = {0, xs.d[1], xs.d[2] * s2, xs.d[3] * s3};
        egc_shape os = egc_shape_make(6, ones);
        int r6, k1, m;
        EGC_TRY(reshape_part(c, n, vin[0], d6, 6, "/blocks", 0, &r6));
        EGC_TRY(fill_const(c, n, "/ones", &os, 1.0f, &k1));
        EGC_TRY(binary_part(c, n, EGC_OP_MUL, r6, k1, "/replicated", 0, &m));
        return reshape_part(c, n, m, out, 4, "", 1, id);
    }
    if ((upsample || opset < 11) && rm == RM_NEAREST && (f[2] < 1.0 || f[3] < 1.0))
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "nearest downsampling before opset 11 is not "
                             "supported (runtimes round it differently; opset 11 and later say "
                             "how)");
    if (antialias && (f[2] < 1.0 || f[3] < 1.0))
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "antialias=1 when downsampling is not "
                             "supported");
    /* the two matrices, transposed: Rw^T [W, W'] and Rh^T [H, H'] */
    egc_onnx_tensor mt[2];
    int ident[2];
    for (int a = 0; a < 2; a++) {
        const int q = a == 0 ? 3 : 2;
        const int64_t in = xs.d[q], out = osz[q];
        const int64_t td[2] = {in, out};
        const egc_shape ts = egc_shape_make(2, td);
        egc_status st = in > ((int64_t)1 << 26) / out
                            ? EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "axis %d: %lld to %lld is too "
                                            "large an interpolation", q, (long long)in,
                                            (long long)out)
                            : zero_tensor(&ts, &mt[a]);
        if (st != EGC_OK) {
            if (a == 1) egc_fold_free(&mt[0]);
            return st;
        }
        float *Rt = mt[a].f32;
        resize_matrix(in, out, f[q], rm, ct, nr, (double)cubic_a, exclude != 0, Rt);
        ident[a] = in == out;
        for (int64_t i = 0; i < in && ident[a]; i++)
            for (int64_t j = 0; j < out; j++)
                if (Rt[i * out + j] != (i == j ? 1.0f : 0.0f)) ident[a] = 0;
    }
    int x = vin[0], kw = -1, kh = -1;
    egc_status st = EGC_OK;
    if (ident[0]) egc_fold_free(&mt[0]);
    else st = own_const(c, n, "/width_weights", &mt[0], &kw);
    if (ident[1]) egc_fold_free(&mt[1]);
    else if (st == EGC_OK) st = own_const(c, n, "/height_weights", &mt[1], &kh);
    else egc_fold_free(&mt[1]);
    EGC_TRY(st);
    if (ident[0] && ident[1]) return alias_output(c, n, x);
    if (!ident[0]) EGC_TRY(binary_part(c, n, EGC_OP_MATMUL, x, kw, "/width", ident[1], &x));
    if (ident[1]) {
        *id = x;
        return EGC_OK;
    }
    static const int swap23[4] = {0, 1, 3, 2};
    EGC_TRY(transpose_part(c, n, x, swap23, 4, "/height_last", 0, &x));
    EGC_TRY(binary_part(c, n, EGC_OP_MATMUL, x, kh, "/height", 0, &x));
    return transpose_part(c, n, x, swap23, 4, "", 1, id);
}

/* GroupNormalization and InstanceNormalization (G = C) of x [N, C, spatial...] into n's
 * output: each image's G groups of C/G channels, with their spatial values, normalised to
 * mean 0 and variance 1 (eps), then scaled and shifted per channel (scale and bias of C
 * values) or per group (G values, per_group; GroupNormalization-18). As runtime nodes: a
 * Reshape to [N, G, L], the mean and variance over the last axis as in layer_norm, a Reshape
 * back, and a Mul and an Add with the constants as [C, 1, ...] (or [G, 1] before the Reshape
 * back). */
static egc_status group_norm(lctx *c, const egc_onnx_node *n, int x, int64_t G, int scale,
                             int bias, int per_group, float eps)
{
    const egc_shape xs = c->g->values[x].shape;
    if (xs.ndim < 3)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "input 0 must be [N,C,...] with spatial "
                             "axes (it has %d dims)", xs.ndim);
    const int64_t C = xs.d[1];
    if (G < 1 || C < 1 || C % G)
        return EGC_NODE_FAIL(EGC_E_SHAPE, n, "%lld channels do not split into %lld groups",
                             (long long)C, (long long)G);
    for (int k = 0; k < 2; k++) {
        const int v = k ? bias : scale;
        const egc_value *cv = &c->g->values[v];
        const int64_t want = per_group ? G : C;
        if (!cv->is_const || !cv->is_float)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "input %d ('%s', the %s) must be a float "
                                 "constant", k + 1, cv->name, k ? "bias" : "scale");
        if (egc_shape_numel(&cv->shape) != want)
            return EGC_NODE_FAIL(EGC_E_SHAPE, n, "input %d ('%s') has %lld values for %lld %s",
                                 k + 1, cv->name, (long long)egc_shape_numel(&cv->shape),
                                 (long long)want, per_group ? "groups" : "channels");
    }
    int64_t L = C / G;
    for (int k = 2; k < xs.ndim; k++) L *= xs.d[k];
    const int64_t gd[3] = {0, G, L};
    int r3, nr, y, ks, kb;
    EGC_TRY(reshape_part(c, n, x, gd, 3, "/groups", 0, &r3));
    EGC_TRY(normalize_last_axis(c, n, r3, eps, &nr));
    int64_t back[EGC_MAX_DIMS];
    back[0] = 0;
    for (int k = 1; k < xs.ndim; k++) back[k] = xs.d[k];
    if (per_group) {
        EGC_TRY(per_channel_const(c, n, scale, 2, "/scale", &ks));
        EGC_TRY(per_channel_const(c, n, bias, 2, "/bias", &kb));
        EGC_TRY(binary_part(c, n, EGC_OP_MUL, nr, ks, "/scaled", 0, &y));
        EGC_TRY(binary_part(c, n, EGC_OP_ADD, y, kb, "/shifted", 0, &y));
        return reshape_part(c, n, y, back, xs.ndim, "", 1, &y);
    }
    EGC_TRY(reshape_part(c, n, nr, back, xs.ndim, "/ungrouped", 0, &y));
    EGC_TRY(per_channel_const(c, n, scale, xs.ndim - 1, "/scale", &ks));
    EGC_TRY(per_channel_const(c, n, bias, xs.ndim - 1, "/bias", &kb));
    EGC_TRY(binary_part(c, n, EGC_OP_MUL, y, ks, "/scaled", 0, &y));
    return binary_part(c, n, EGC_OP_ADD, y, kb, "", 1, &y);
}

/* The axes of n into ax[0..*na): its constant input 1 (Squeeze/Unsqueeze from opset 13,
 * the Reduce ops from 18) or its `axes` attribute (before); *na = 0 when it has neither. */
static egc_status node_axes(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                            int64_t ax[EGC_MAX_DIMS], int *na)
{
    *na = 0;
    if (n_in > 1 && vin[1] >= 0) return const_ints(c, n, vin, n_in, 1, "axes", ax, EGC_MAX_DIMS, na);
    if (!egc_lower_attr(n, "axes")) return EGC_OK;
    const int64_t *v;
    int cnt = 0;
    EGC_TRY(egc_lower_attr_ints(n, "axes", &v, &cnt));
    if (cnt > EGC_MAX_DIMS)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "%d axes (at most %d)", cnt, EGC_MAX_DIMS);
    for (int i = 0; i < cnt; i++) ax[i] = v[i];
    *na = cnt;
    return EGC_OK;
}

/* A Concat of one value computed at run time and constants (all of batch 1), along an axis
 * other than the batch, for a model exported at batch 1 (a transformer's class token,
 * expanded over the batch by the exporter at the traced size): the activation padded with
 * zeros where the constants go, plus one constant holding them (zeros elsewhere), which
 * broadcasts over the batch as the expanded token would. 1 when lowered so (*st says how it
 * went), 0 for any other Concat (the runtime op takes it). */
static int concat_constants(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                            egc_status *st)
{
    egc_graph *g = c->g;
    int act = -1, id = -1;
    *st = EGC_OK;
    if (c->batch != 1 || n_in < 2 || n->n_outputs != 1) return 0;
    for (int i = 0; i < n_in; i++) {
        if (vin[i] < 0) return 0;
        if (g->values[vin[i]].is_const) {
            if (!g->values[vin[i]].is_float) return 0;
        } else if (act >= 0) {
            return 0; /* two activations: the runtime Concat */
        } else {
            act = i;
        }
    }
    if (act < 0) return 0;
    const egc_shape *xs = &g->values[vin[act]].shape;
    const int rank = xs->ndim;
    int64_t axis = 1;
    if (egc_lower_attr_int(n, "axis", 1, &axis) != EGC_OK) return 0;
    if (axis < 0) axis += rank;
    if (rank < 2 || axis < 1 || axis >= rank || xs->d[0] != 1) return 0;
    int64_t before = 0, after = 0, total = 0;
    for (int i = 0; i < n_in; i++) {
        const egc_shape *s = &g->values[vin[i]].shape;
        if (s->ndim != rank) return 0;
        for (int d = 0; d < rank; d++)
            if (d != axis && s->d[d] != xs->d[d]) return 0;
        if (i < act) before += s->d[axis];
        if (i > act) after += s->d[axis];
        total += s->d[axis];
    }
    /* the constants, zeros at the activation's place */
    egc_shape os = *xs;
    os.d[axis] = total;
    egc_onnx_tensor t;
    if ((*st = zero_tensor(&os, &t)) != EGC_OK) return 1;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= os.d[d];
    for (int d = (int)axis + 1; d < rank; d++) inner *= os.d[d];
    int64_t at = 0;
    for (int i = 0; i < n_in; i++) {
        const egc_value *v = &g->values[vin[i]];
        const int64_t len = v->shape.d[axis];
        if (i != act)
            for (int64_t o = 0; o < outer; o++)
                memcpy(t.f32 + (o * total + at) * inner, v->f32 + o * len * inner,
                       (size_t)(len * inner) * sizeof(float));
        at += len;
    }
    int k = -1, pad = -1;
    if ((*st = own_const(c, n, "/constants", &t, &k)) != EGC_OK) return 1;
    egc_node r;
    node_init(&r, EGC_OP_PAD);
    r.n_in = 1, r.in[0] = vin[act];
    r.p.pad.mode = EGC_PAD_CONSTANT;
    r.p.pad.value = 0.0f;
    r.p.pad.n = rank;
    r.p.pad.pads[axis] = before;
    r.p.pad.pads[rank + axis] = after;
    if ((*st = add_part(c, n, &r, "/padded", 0, &pad)) != EGC_OK) return 1;
    *st = binary_part(c, n, EGC_OP_ADD, pad, k, "", 1, &id);
    return 1;
}

/* n's `axis` attribute (default 0) for input x of rank `rank`, made non-negative. The batch
 * axis (0) is refused, except in a model exported for one image (declared batch 1 or
 * symbolic), where axis 0 of a value is that image's own. */
static egc_status data_axis(lctx *c, const egc_onnx_node *n, int rank, int64_t *axis)
{
    EGC_TRY(egc_lower_attr_int(n, "axis", 0, axis));
    if (*axis < -rank || *axis >= rank)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "axis %lld is out of range (rank %d)",
                             (long long)*axis, rank);
    if (*axis < 0) *axis += rank;
    if (*axis == 0 && c->batch != 1)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "%s on the batch axis (axis 0) of a value "
                             "computed at run time is not supported", n->op_type);
    return EGC_OK;
}

/* The per-tensor parameters of a QuantizeLinear or DequantizeLinear of a value computed at
 * run time: the scale (input 1, one float > 0) and the zero point (input 2, optional, one
 * uint8 or int8, whose type gives the range [qmin, qmax]; uint8 without one). */
static egc_status quant_params(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                               egc_fq_params *q, int *has_zero)
{
    static const char *const known[] = {"axis", NULL};
    EGC_TRY(egc_lower_check_attrs(n, known));
    EGC_TRY(single_output(n));
    if (n_in < 2 || vin[1] < 0) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "has no scale (input 1)");
    const egc_value *s = &c->g->values[vin[1]];
    if (!s->is_const || !s->is_float || egc_shape_numel(&s->shape) != 1)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "on a value computed at run time, a scale per "
                             "tensor (one constant float) is supported; '%s' is %s", s->name,
                             !s->is_const ? "computed at run time" : !s->is_float ? "not a float"
                                                                   : "more than one value");
    if (!(s->f32[0] > 0.0f) || !isfinite(s->f32[0]))
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "scale %g is not a positive number",
                             (double)s->f32[0]);
    int zt = EGC_DT_UINT8;
    double zp = 0.0;
    *has_zero = n_in > 2 && vin[2] >= 0;
    if (*has_zero) {
        const egc_value *z = &c->g->values[vin[2]];
        if (!z->is_const || z->is_float || egc_shape_numel(&z->shape) != 1)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "on a value computed at run time, a zero "
                                 "point per tensor (one constant integer) is supported; '%s' is "
                                 "not", z->name);
        zt = z->dtype;
        zp = (double)z->i64[0];
    }
    double lo, hi;
    if (zt == EGC_DT_INT32 || !egc_quant_range(zt, &lo, &hi))
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "a zero point of element type %d is not "
                             "supported on a value computed at run time (uint8 and int8 are)", zt);
    q->scale = s->f32[0];
    q->qmin = (float)lo;
    q->qmax = (float)hi;
    if (zp < q->qmin || zp > q->qmax)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "zero point %g is outside its type's range", zp);
    q->zero = (float)zp;
    return EGC_OK;
}

/* The checks of an operator without attributes, of one input and one output. */
static egc_status one_input_op(const egc_onnx_node *n, const int *vin, int n_in)
{
    static const char *const k_none[] = {NULL};
    EGC_TRY(egc_lower_check_attrs(n, k_none));
    EGC_TRY(single_output(n));
    if (n_in != 1 || vin[0] < 0)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected 1)", n_in);
    return EGC_OK;
}

/* The operators lower_composite lowers. */
static const char *const k_composite[] = {"HardSigmoid", "HardSwish",     "LeakyRelu",
                                          "PRelu",       "GlobalMaxPool", "ReduceMean",
                                          "ReduceMax",   "Squeeze",       "Unsqueeze",
                                          "Pow",         "Gelu",          "LayerNormalization",
                                          "ReduceSum",   "ReduceSumSquare", "Gather",
                                          "Split",       "InstanceNormalization",
                                          "GroupNormalization", "Tanh", "Neg", "Abs",
                                          "Reciprocal", "Resize", "Upsample", "Elu",
                                          "Selu", "Celu", "Mish", "Softsign", "LogSoftmax",
                                          "QuantizeLinear", "DequantizeLinear"};

static int is_composite(const char *op)
{
    for (size_t i = 0; i < EGC_COUNT(k_composite); i++)
        if (strcmp(op, k_composite[i]) == 0) return 1;
    return 0;
}

/* 1 when op is lowered here (one of k_composite; *st says how it went), 0 otherwise. */
static int lower_composite(lctx *c, const egc_onnx_node *n, const int *vin, int n_in,
                           egc_status *st)
{
    const char *op = n->op_type;
    int id = -1;
    *st = EGC_OK;
    if (!is_composite(op)) return 0;
    if (strcmp(op, "HardSigmoid") == 0 || strcmp(op, "HardSwish") == 0) {
        static const char *const k_hs[] = {"alpha", "beta", NULL}, *const k_none[] = {NULL};
        int swish = op[4] == 'S' && op[5] == 'w';
        float alpha = 1.0f / 6.0f, beta = 0.5f;
        if ((*st = egc_lower_check_attrs(n, swish ? k_none : k_hs)) != EGC_OK) return 1;
        if (!swish && ((*st = egc_lower_attr_float(n, "alpha", 0.2f, &alpha)) != EGC_OK ||
                       (*st = egc_lower_attr_float(n, "beta", 0.5f, &beta)) != EGC_OK))
            return 1;
        if ((*st = single_output(n)) != EGC_OK) return 1;
        if (n_in != 1 || vin[0] < 0) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected 1)", n_in);
            return 1;
        }
        if (!swish) {
            *st = hard_sigmoid(c, n, vin[0], alpha, beta, 1, &id);
            return 1;
        }
        int h = -1;
        if ((*st = hard_sigmoid(c, n, vin[0], alpha, beta, 0, &h)) != EGC_OK) return 1;
        egc_node r;
        node_init(&r, EGC_OP_MUL);
        r.n_in = 2, r.in[0] = vin[0], r.in[1] = h;
        *st = add_part(c, n, &r, "", 1, &id);
        return 1;
    }
    if (strcmp(op, "LeakyRelu") == 0 || strcmp(op, "PRelu") == 0) {
        /* y = a x + (1 - a) Relu(x): x for x > 0, a x otherwise; a a constant (LeakyRelu's
         * alpha, PRelu's slope tensor, broadcast as Mul does) */
        static const char *const k_leaky[] = {"alpha", NULL}, *const k_none[] = {NULL};
        int leaky = op[0] == 'L';
        if ((*st = egc_lower_check_attrs(n, leaky ? k_leaky : k_none)) != EGC_OK) return 1;
        if ((*st = single_output(n)) != EGC_OK) return 1;
        if (n_in != (leaky ? 1 : 2) || vin[0] < 0 || (!leaky && vin[1] < 0)) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected %d)", n_in, leaky ? 1 : 2);
            return 1;
        }
        int ka = -1, kb = -1, rl, m1, m2;
        if (leaky) {
            float alpha;
            if ((*st = egc_lower_attr_float(n, "alpha", 0.01f, &alpha)) != EGC_OK ||
                (*st = scalar_const(c, n, "/slope", alpha, &ka)) != EGC_OK ||
                (*st = scalar_const(c, n, "/one_minus_slope", 1.0f - alpha, &kb)) != EGC_OK)
                return 1;
        } else {
            const egc_value *sv = &c->g->values[vin[1]];
            if (!sv->is_const || !sv->is_float) {
                *st = EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "input 1 '%s' (slope) must be a float "
                                    "constant", sv->name);
                return 1;
            }
            ka = vin[1];
            egc_onnx_tensor t;
            memset(&t, 0, sizeof t);
            if ((*st = zero_tensor(&sv->shape, &t)) != EGC_OK) return 1;
            for (int64_t k = 0; k < t.numel; k++) t.f32[k] = 1.0f - sv->f32[k];
            if ((*st = own_const(c, n, "/one_minus_slope", &t, &kb)) != EGC_OK) return 1;
        }
        egc_node r;
        node_init(&r, EGC_OP_RELU);
        r.n_in = 1, r.in[0] = vin[0];
        if ((*st = add_part(c, n, &r, "/relu", 0, &rl)) != EGC_OK) return 1;
        node_init(&r, EGC_OP_MUL);
        r.n_in = 2, r.in[0] = vin[0], r.in[1] = ka;
        if ((*st = add_part(c, n, &r, "/negative_part", 0, &m1)) != EGC_OK) return 1;
        node_init(&r, EGC_OP_MUL);
        r.n_in = 2, r.in[0] = rl, r.in[1] = kb;
        if ((*st = add_part(c, n, &r, "/positive_part", 0, &m2)) != EGC_OK) return 1;
        node_init(&r, EGC_OP_ADD);
        r.n_in = 2, r.in[0] = m1, r.in[1] = m2;
        *st = add_part(c, n, &r, "", 1, &id);
        return 1;
    }
    if (strcmp(op, "Split") == 0) {
        /* each output a Slice of the input along the axis (not the batch axis, unless the
         * model is exported for one image, where axis 0 is that image's own) */
        static const char *const known[] = {"axis", "split", "num_outputs", NULL};
        int64_t axis = 0, sizes[EGC_NODE_MAX_IN];
        int ns = 0;
        const int no = n->n_outputs;
        if ((*st = egc_lower_check_attrs(n, known)) != EGC_OK) return 1;
        if (vin[0] < 0 || n_in > 2 || no < 1 || no > EGC_NODE_MAX_IN) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs and %d outputs (expected 1 or 2 "
                                "inputs, 1 to %d outputs)", n_in, no, EGC_NODE_MAX_IN);
            return 1;
        }
        const egc_shape *xs = &c->g->values[vin[0]].shape;
        if ((*st = data_axis(c, n, xs->ndim, &axis)) != EGC_OK) return 1;
        const int64_t dim = xs->d[axis];
        if (n_in > 1 && vin[1] >= 0) {
            if ((*st = const_ints(c, n, vin, n_in, 1, "split", sizes, EGC_NODE_MAX_IN, &ns)) !=
                EGC_OK)
                return 1;
        } else if (egc_lower_attr(n, "split")) {
            const int64_t *v;
            if ((*st = egc_lower_attr_ints(n, "split", &v, &ns)) != EGC_OK) return 1;
            if (ns > EGC_NODE_MAX_IN) ns = EGC_NODE_MAX_IN + 1;
            for (int k = 0; k < ns && k < EGC_NODE_MAX_IN; k++) sizes[k] = v[k];
        } else { /* equal parts (opset 18: the last may be smaller) */
            const int64_t part = (dim + no - 1) / no;
            ns = no;
            for (int k = 0; k < no; k++)
                sizes[k] = EGC_MIN(part, EGC_MAX(dim - part * k, (int64_t)0));
        }
        int64_t sum = 0;
        for (int k = 0; k < ns && k < EGC_NODE_MAX_IN; k++) {
            if (sizes[k] < 0 || sizes[k] > dim) ns = -1;
            else sum += sizes[k];
        }
        if (ns != no || sum != dim) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "split sizes do not divide axis %lld of size "
                                "%lld into its %d outputs", (long long)axis, (long long)dim, no);
            return 1;
        }
        int64_t at = 0;
        for (int k = 0; k < no; k++) {
            const int64_t len = sizes[k];
            at += len;
            if (!n->outputs[k] || !*n->outputs[k]) continue; /* an output nobody names */
            char nodename[600];
            snprintf(nodename, sizeof nodename, "%s/%d", nname(n), k);
            egc_onnx_node part = *n;
            part.name = nodename;
            part.outputs = &n->outputs[k];
            part.n_outputs = 1;
            if ((*st = slice_part(c, &part, vin[0], axis, at - len, at, 1, "", 1, &id)) != EGC_OK)
                return 1;
        }
        return 1;
    }
    if (strcmp(op, "Gather") == 0) {
        /* constant indices into an axis other than the batch: one Slice when they step
         * evenly forward, else a Concat of one-element Slices; then a Reshape to the output
         * shape when the indices are not a list (a scalar index drops the axis) */
        static const char *const known[] = {"axis", NULL};
        int64_t axis = 0;
        if ((*st = egc_lower_check_attrs(n, known)) != EGC_OK ||
            (*st = single_output(n)) != EGC_OK)
            return 1;
        if (n_in != 2 || vin[0] < 0 || vin[1] < 0) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected 2)", n_in);
            return 1;
        }
        if ((*st = need_const(c, n, vin, n_in, 1, "indices", 0)) != EGC_OK) return 1;
        const egc_shape *xs = &c->g->values[vin[0]].shape;
        const egc_value *iv = &c->g->values[vin[1]];
        const int rank = xs->ndim, ir = iv->shape.ndim;
        const int64_t k = egc_shape_numel(&iv->shape);
        if ((*st = data_axis(c, n, rank, &axis)) != EGC_OK) return 1;
        if (rank - 1 + ir > EGC_MAX_DIMS || k < 1 || k > EGC_NODE_MAX_IN) {
            *st = EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "%lld indices of rank %d into a %d-D value "
                                "(supported: 1 to %d indices, an output of at most %d dims)",
                                (long long)k, ir, rank, EGC_NODE_MAX_IN, EGC_MAX_DIMS);
            return 1;
        }
        const int64_t dim = xs->d[axis];
        int64_t idx[EGC_NODE_MAX_IN];
        for (int64_t j = 0; j < k; j++) {
            idx[j] = iv->i64[j] < 0 ? iv->i64[j] + dim : iv->i64[j];
            if (idx[j] < 0 || idx[j] >= dim) {
                *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "index %lld is out of range for axis %lld "
                                    "of size %lld", (long long)iv->i64[j], (long long)axis,
                                    (long long)dim);
                return 1;
            }
        }
        const int64_t step = k > 1 ? idx[1] - idx[0] : 1;
        int even = step >= 1;
        for (int64_t j = 2; j < k && even; j++) even = idx[j] - idx[j - 1] == step;
        const int last = ir == 1; /* the Slice or Concat has the output's shape */
        egc_node r;
        int src = -1;
        if (even) {
            if ((*st = slice_part(c, n, vin[0], axis, idx[0], idx[k - 1] + 1, step, "/slice", last,
                                  &src)) != EGC_OK)
                return 1;
        } else {
            egc_node cat;
            node_init(&cat, EGC_OP_CONCAT);
            cat.n_in = (int)k;
            cat.p.axis.axis = (int)axis;
            for (int64_t j = 0; j < k; j++) {
                char suffix[40];
                snprintf(suffix, sizeof suffix, "/index_%lld", (long long)j);
                if ((*st = slice_part(c, n, vin[0], axis, idx[j], idx[j] + 1, 1, suffix, 0,
                                      &cat.in[j])) != EGC_OK)
                    return 1;
            }
            if ((*st = add_part(c, n, &cat, "/concat", last, &src)) != EGC_OK) return 1;
        }
        if (last) return 1;
        node_init(&r, EGC_OP_RESHAPE);
        r.n_in = 1, r.in[0] = src;
        r.p.reshape.flatten_axis = -1;
        int o = 0;
        for (int d = 0; d < rank; d++) {
            if (d != axis) {
                r.p.reshape.dims[o++] = d == 0 ? 0 : xs->d[d];
                continue;
            }
            for (int j = 0; j < ir; j++) r.p.reshape.dims[o++] = iv->shape.d[j];
        }
        r.p.reshape.n = o;
        *st = add_part(c, n, &r, "", 1, &id);
        return 1;
    }
    if (strcmp(op, "Squeeze") == 0 || strcmp(op, "Unsqueeze") == 0) {
        /* a Reshape to the known shape, the batch dimension copied (it may not move) */
        static const char *const known[] = {"axes", NULL};
        const int unsq = op[0] == 'U';
        if ((*st = egc_lower_check_attrs(n, known)) != EGC_OK) return 1;
        if ((*st = single_output(n)) != EGC_OK) return 1;
        if (vin[0] < 0 || n_in > 2) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected 1 or 2)", n_in);
            return 1;
        }
        int64_t ax[EGC_MAX_DIMS];
        int na = 0;
        if ((*st = node_axes(c, n, vin, n_in, ax, &na)) != EGC_OK) return 1;
        const egc_shape *xs = &c->g->values[vin[0]].shape;
        const int rin = xs->ndim, rout = unsq ? rin + na : rin;
        if (unsq && (na == 0 || rout > EGC_MAX_DIMS)) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "Unsqueeze needs 1 to %d axes (got %d)",
                                EGC_MAX_DIMS - rin, na);
            return 1;
        }
        int mark[EGC_MAX_DIMS] = {0}; /* the axes, in the output (Unsqueeze) or input rank */
        for (int i = 0; i < na; i++) {
            int64_t a = ax[i] < 0 ? ax[i] + rout : ax[i];
            if (a < 0 || a >= rout || mark[a]) {
                *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "axis %lld is out of range or repeated "
                                    "(rank %d)", (long long)ax[i], rout);
                return 1;
            }
            mark[a] = 1;
        }
        if (!unsq && na == 0) /* every dimension of size 1 but the batch */
            for (int k = 1; k < rin; k++) mark[k] = xs->d[k] == 1;
        if (rin < 1 || (mark[0] && c->batch != 1)) {
            *st = EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "%s of the batch axis (axis 0) is not "
                                "supported", op);
            return 1;
        }
        egc_node r;
        node_init(&r, EGC_OP_RESHAPE);
        r.n_in = 1, r.in[0] = vin[0];
        r.p.reshape.flatten_axis = -1;
        int k = 0, o = 0;
        for (int i = 0; i < (unsq ? rout : rin); i++) {
            if (unsq) {
                r.p.reshape.dims[o++] = mark[i] ? 1 : i == 0 ? 0 : xs->d[k];
                if (!mark[i]) k++;
            } else if (!mark[i]) {
                r.p.reshape.dims[o++] = i == 0 ? 0 : xs->d[i];
            } else if (xs->d[i] != 1) {
                *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "axis %d has size %lld, not 1", i,
                                    (long long)xs->d[i]);
                return 1;
            }
        }
        r.p.reshape.n = o;
        *st = add_part(c, n, &r, "", 1, &id);
        return 1;
    }
    if (strcmp(op, "GlobalMaxPool") == 0) {
        static const char *const k_none[] = {NULL};
        if ((*st = egc_lower_check_attrs(n, k_none)) != EGC_OK) return 1;
        if ((*st = single_output(n)) != EGC_OK) return 1;
        if (n_in != 1 || vin[0] < 0) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected 1)", n_in);
            return 1;
        }
        *st = spatial_reduce(c, n, vin[0], 1, 1, &id);
        return 1;
    }
    if (strcmp(op, "ReduceMean") == 0 || strcmp(op, "ReduceMax") == 0 ||
        strcmp(op, "ReduceSum") == 0 || strcmp(op, "ReduceSumSquare") == 0) {
        static const char *const known[] = {"axes", "keepdims", "noop_with_empty_axes", NULL};
        const int is_max = op[6] == 'M' && op[7] == 'a', is_sum = op[6] == 'S',
                  is_square = is_sum && op[9] == 'S';
        if ((*st = egc_lower_check_attrs(n, known)) != EGC_OK) return 1;
        if ((*st = single_output(n)) != EGC_OK) return 1;
        if (vin[0] < 0) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "input 0 is missing");
            return 1;
        }
        const egc_value *x = &c->g->values[vin[0]];
        int64_t keep, noop, ax[EGC_MAX_DIMS];
        int na = 0;
        if ((*st = egc_lower_attr_int(n, "keepdims", 1, &keep)) != EGC_OK ||
            (*st = egc_lower_attr_int(n, "noop_with_empty_axes", 0, &noop)) != EGC_OK)
            return 1;
        if ((*st = node_axes(c, n, vin, n_in, ax, &na)) != EGC_OK) return 1;
        if (noop && na == 0 && !is_square) { /* no axes, noop_with_empty_axes: the input */
            *st = alias_output(c, n, vin[0]);
            return 1;
        }
        int rank = x->shape.ndim, spatial = rank == 4 && na == 2 && !noop && !is_sum;
        int64_t s0 = -1, s1 = -1; /* the two axes, made non-negative, in increasing order */
        if (spatial) {
            s0 = ax[0] < 0 ? ax[0] + rank : ax[0];
            s1 = ax[1] < 0 ? ax[1] + rank : ax[1];
            if (s0 > s1) {
                int64_t t = s0;
                s0 = s1;
                s1 = t;
            }
            spatial = s0 >= 1 && s1 <= 3 && s0 != s1;
        }
        if (spatial && !(s0 == 2 && s1 == 3) && n_in <= 2) {
            /* two other axes than the batch of a 4-D value, not the last two (a channels-last
             * global pool, [N,H,W,C] over axes 1 and 2, as Keras' GlobalAveragePooling2D and
             * GlobalMaxPooling2D are exported): a Transpose moves them last, the spatial
             * reduction of the rest ([N,K,1,1]), then a Reshape to the output shape (the
             * reduced axes have size 1 now: putting them back moves no data) */
            const int64_t k = 6 - s0 - s1; /* the axis kept */
            const int perm[4] = {0, (int)k, (int)s0, (int)s1};
            int src = -1, m = -1;
            if ((*st = transpose_part(c, n, vin[0], perm, 4, "/axes_last", 0, &src)) != EGC_OK)
                return 1;
            if (!keep) {
                *st = spatial_reduce(c, n, src, is_max, 0, &id);
                return 1;
            }
            const egc_shape *ts = &c->g->values[src].shape;
            if ((*st = pool_part(c, n, src, is_max, ts->d[2], ts->d[3], is_max ? "/max" : "/mean",
                                 0, &m)) != EGC_OK)
                return 1;
            int64_t od[4];
            for (int q = 0; q < 4; q++) od[q] = q == 0 ? 0 : q == k ? x->shape.d[q] : 1;
            *st = reshape_part(c, n, m, od, 4, "", 1, &id);
            return 1;
        }
        /* a mean or a sum over one or more axes other than the batch (LayerNorm as exported
         * before opset 17: the last axis; a mean over the channels; a mean over [C,H,W]):
         * the axes moved last by a Transpose (none when they are last already), merged into
         * one by a Reshape (for more than one), reduced there (reduce_last_axis), then a
         * Reshape to the output shape (the reduced axes have size 1 now: putting them back
         * moves no data). The mean over H and W of [N,C,H,W] is a GlobalAveragePool below. */
        const int64_t a1 = na == 1 ? (ax[0] < 0 ? ax[0] + rank : ax[0]) : -1;
        unsigned char red[EGC_MAX_DIMS] = {0};
        int axes_ok = na >= 1 && !noop && n_in <= 2;
        for (int k = 0; k < na && axes_ok; k++) {
            const int64_t a = ax[k] < 0 ? ax[k] + rank : ax[k];
            if (a < 1 || a >= rank || red[a]) axes_ok = 0;
            else red[a] = 1;
        }
        if (!is_max && axes_ok && !(spatial && s0 == 2 && s1 == 3)) {
            int src = vin[0], m = -1, perm[EGC_MAX_DIMS], o = 0, moved = 0;
            int64_t od[EGC_MAX_DIMS], md[EGC_MAX_DIMS], len = 1;
            int ond = 0, mnd = 0;
            for (int k = 0; k < rank; k++) {
                if (!red[k]) {
                    perm[o++] = k;
                    md[mnd++] = k == 0 ? 0 : x->shape.d[k];
                } else {
                    len *= x->shape.d[k];
                }
                if (!red[k] || keep) od[ond++] = k == 0 ? 0 : red[k] ? 1 : x->shape.d[k];
            }
            for (int k = 0; k < rank; k++)
                if (red[k]) perm[o++] = k;
            for (int k = 0; k < rank; k++) moved |= perm[k] != k;
            md[mnd++] = len;
            if (is_square && /* ReduceSumSquare: the sum of x * x */
                (*st = binary_part(c, n, EGC_OP_MUL, src, src, "/square", 0, &src)) != EGC_OK)
                return 1;
            if (moved &&
                (*st = transpose_part(c, n, src, perm, rank, "/axes_last", 0, &src)) != EGC_OK)
                return 1;
            if (na > 1 && (*st = reshape_part(c, n, src, md, mnd, "/merged", 0, &src)) != EGC_OK)
                return 1;
            if (keep && na == 1 && a1 == rank - 1) {
                *st = reduce_last_axis(c, n, src, is_sum, "", 1, &id);
                return 1;
            }
            if ((*st = reduce_last_axis(c, n, src, is_sum, is_sum ? "/sum" : "/mean", 0, &m)) !=
                EGC_OK)
                return 1;
            *st = reshape_part(c, n, m, od, ond, "", 1, &id);
            return 1;
        }
        int64_t od[EGC_MAX_DIMS]; /* the output shape for a reduction over axis a1 */
        const int ond = a1 >= 0 ? reduced_dims(&x->shape, (int)a1, (int)keep, od) : 0;
        if (is_max && !noop && na == 1 && a1 >= 1 && a1 < rank && rank >= 2 && rank <= 4 &&
            n_in <= 2) {
            /* a maximum over one axis other than the batch (CBAM's max over the channels, the
             * row maximum of an expanded Softmax): a MaxPool whose window is that axis, on the
             * value seen as [N, D1, D2, D3] (a 2-D or 3-D value with unit axes in front; axis
             * 1 swapped with 2 by Transposes), then a Reshape to the output shape */
            const int lead = 4 - rank; /* unit axes put in front of axis 1 */
            const int64_t ax4 = a1 + lead;
            int64_t d4[4];
            d4[0] = 0;
            for (int k = 1; k < 4; k++) d4[k] = k <= lead ? 1 : x->shape.d[k - lead];
            static const int swap12[4] = {0, 2, 1, 3};
            int src = vin[0], m = -1;
            if (lead && (*st = reshape_part(c, n, src, d4, 4, "/as_4d", 0, &src)) != EGC_OK)
                return 1;
            if (ax4 == 1 &&
                (*st = transpose_part(c, n, src, swap12, 4, "/axis_to_2", 0, &src)) != EGC_OK)
                return 1;
            if ((*st = pool_part(c, n, src, 1, ax4 == 3 ? 1 : d4[ax4], ax4 == 3 ? d4[ax4] : 1,
                                 "/max", 0, &m)) != EGC_OK)
                return 1;
            if (ax4 == 1 &&
                (*st = transpose_part(c, n, m, swap12, 4, "/axis_back", 0, &m)) != EGC_OK)
                return 1;
            *st = reshape_part(c, n, m, od, ond, "", 1, &id);
            return 1;
        }
        if (!spatial || n_in > 2) {
            *st = EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n,
                                "%s is supported over %s only (here %d axes of a %d-D tensor)", op,
                                is_max ? "two axes other than the batch of a 4-D tensor, "
                                         "or one of a 2-D, 3-D or 4-D tensor"
                                       : "axes other than the batch",
                                na, rank);
            return 1;
        }
        *st = spatial_reduce(c, n, vin[0], is_max, (int)(keep != 0), &id);
        return 1;
    }
    if (strcmp(op, "Pow") == 0) {
        /* a constant exponent of 2 (x * x), 1 (x) or 0.5 (Sqrt) */
        static const char *const k_none[] = {NULL};
        if ((*st = egc_lower_check_attrs(n, k_none)) != EGC_OK) return 1;
        if ((*st = single_output(n)) != EGC_OK) return 1;
        if (n_in != 2 || vin[0] < 0 || vin[1] < 0) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected 2)", n_in);
            return 1;
        }
        const egc_value *e = &c->g->values[vin[1]];
        if (!e->is_const || egc_shape_numel(&e->shape) != 1) {
            *st = EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "input 1 '%s' (exponent) must be a constant "
                                "with one element", e->name);
            return 1;
        }
        const double p = e->is_float ? (double)e->f32[0] : (double)e->i64[0];
        if (p == 2.0) {
            *st = binary_part(c, n, EGC_OP_MUL, vin[0], vin[0], "", 1, &id);
        } else if (p >= 3.0 && p <= 8.0 && p == floor(p)) {
            /* ((x * x) * x) ... as PyTorch computes x ** 3 (the tanh GELU's cube) */
            int r = vin[0];
            const int k = (int)p;
            for (int i = 2; i <= k && *st == EGC_OK; i++)
                *st = binary_part(c, n, EGC_OP_MUL, r, vin[0], i == k ? "" : "/power", i == k,
                                  &r);
        } else if (p == 0.5) {
            *st = unary_part(c, n, EGC_OP_SQRT, vin[0], "", 1, &id);
        } else if (p == 1.0) {
            *st = alias_output(c, n, vin[0]);
        } else {
            *st = EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "an exponent of %g on a value computed at "
                                "run time is not supported (the integers 1 to 8 and 0.5 are)", p);
        }
        return 1;
    }
    if (strcmp(op, "Neg") == 0 || strcmp(op, "Abs") == 0 || strcmp(op, "Reciprocal") == 0) {
        /* of a value computed at run time: Neg x = x * -1; Abs (abs_part); Reciprocal
         * x = 1 / x */
        int k;
        if ((*st = one_input_op(n, vin, n_in)) != EGC_OK) return 1;
        if (op[0] == 'A') {
            *st = abs_part(c, n, vin[0], "", 1, &id);
            return 1;
        }
        if ((*st = scalar_const(c, n, op[0] == 'R' ? "/one" : "/minus_one",
                                op[0] == 'R' ? 1.0f : -1.0f, &k)) != EGC_OK)
            return 1;
        *st = op[0] == 'R' ? binary_part(c, n, EGC_OP_DIV, k, vin[0], "", 1, &id)
                           : binary_part(c, n, EGC_OP_MUL, vin[0], k, "", 1, &id);
        return 1;
    }
    if (strcmp(op, "Resize") == 0 || strcmp(op, "Upsample") == 0) {
        *st = lower_resize(c, n, vin, n_in, &id);
        return 1;
    }
    if (strcmp(op, "Elu") == 0 || strcmp(op, "Selu") == 0 || strcmp(op, "Celu") == 0) {
        static const char *const k_alpha[] = {"alpha", NULL}, *const k_selu[] = {"alpha", "gamma",
                                                                                   NULL};
        const int selu = op[0] == 'S', celu = op[0] == 'C';
        float alpha, gamma = 1.0f;
        if ((*st = egc_lower_check_attrs(n, selu ? k_selu : k_alpha)) != EGC_OK ||
            (*st = egc_lower_attr_float(n, "alpha", selu ? 1.67326319217681884765625f : 1.0f,
                                        &alpha)) != EGC_OK ||
            (selu && (*st = egc_lower_attr_float(n, "gamma", 1.05070102214813232421875f,
                                                 &gamma)) != EGC_OK) ||
            (*st = single_output(n)) != EGC_OK)
            return 1;
        if (n_in != 1 || vin[0] < 0) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected 1)", n_in);
            return 1;
        }
        if (!isfinite(alpha) || !isfinite(gamma) || (celu && alpha == 0.0f)) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "alpha=%g%s is not usable", (double)alpha,
                                celu ? " (Celu divides by it)" : "");
            return 1;
        }
        *st = exp_unit(c, n, vin[0], alpha, celu ? alpha : 1.0f, gamma, &id);
        return 1;
    }
    if (strcmp(op, "QuantizeLinear") == 0 || strcmp(op, "DequantizeLinear") == 0) {
        /* a quantized model's pair on an activation (QDQ): the QuantizeLinear becomes one
         * runtime node that quantizes and dequantizes (EGC_OP_FAKE_QUANT; its gradient passes
         * straight through where the value was not clamped), which only a DequantizeLinear
         * with the same scale and zero point may read; that one is then the same value */
        egc_fq_params q;
        int has_zero = 0;
        if ((*st = quant_params(c, n, vin, n_in, &q, &has_zero)) != EGC_OK) return 1;
        if (op[0] == 'Q') {
            egc_node r;
            node_init(&r, EGC_OP_FAKE_QUANT);
            r.n_in = 1, r.in[0] = vin[0];
            r.p.fq = q;
            if ((*st = add_part(c, n, &r, "", 1, &id)) == EGC_OK)
                *st = nmap_put(&c->qnames, n->outputs[0], (int)(n - c->m->nodes));
            return 1;
        }
        const int qi = nmap_get(&c->qnames, n->inputs[0]);
        if (qi < 0) {
            *st = EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "DequantizeLinear of '%s', a value computed "
                                "at run time that no QuantizeLinear made, is not supported",
                                n->inputs[0]);
            return 1;
        }
        const egc_node *qn = &c->g->nodes[c->g->values[vin[0]].producer];
        if (!has_zero && qn->op == EGC_OP_FAKE_QUANT) { /* 0 of the integers' own type */
            q.qmin = qn->p.fq.qmin;
            q.qmax = qn->p.fq.qmax;
        }
        if (qn->op != EGC_OP_FAKE_QUANT || qn->p.fq.scale != q.scale ||
            qn->p.fq.zero != q.zero || qn->p.fq.qmin != q.qmin) {
            *st = EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "its scale and zero point (%g, %g) differ "
                                "from those of QuantizeLinear node '%s' that made its input: "
                                "a rescaling of integers is not supported", (double)q.scale,
                                (double)q.zero, nname(&c->m->nodes[qi]));
            return 1;
        }
        /* the float value is known by the DequantizeLinear's output name (the first one's),
         * as a layer; the QuantizeLinear's name stays that of its integers */
        egc_value *fv = &c->g->values[vin[0]];
        if (fv->name && !strcmp(fv->name, n->inputs[0])) {
            char *nm = NULL;
            /* the name map borrows the value's name as its key: key it by the model's copy of
             * the same name before that one is freed */
            if ((*st = egc_strdup(&nm, n->outputs[0])) != EGC_OK ||
                (*st = nmap_put(&c->names, n->inputs[0], vin[0])) != EGC_OK) {
                free(nm);
                return 1;
            }
            free(fv->name);
            fv->name = nm;
        }
        *st = alias_output(c, n, vin[0]);
        return 1;
    }
    if (strcmp(op, "Mish") == 0 || strcmp(op, "Softsign") == 0) {
        /* Mish x = x tanh(softplus(x)); Softsign x = x / (1 + |x|) (abs_part) */
        int sp, t, k, ab, den;
        if ((*st = one_input_op(n, vin, n_in)) != EGC_OK) return 1;
        if (op[0] == 'M') {
            if ((*st = unary_part(c, n, EGC_OP_SOFTPLUS, vin[0], "/softplus", 0, &sp)) != EGC_OK ||
                (*st = tanh_part(c, n, sp, "/tanh", 0, &t)) != EGC_OK)
                return 1;
            *st = binary_part(c, n, EGC_OP_MUL, vin[0], t, "", 1, &id);
            return 1;
        }
        if ((*st = abs_part(c, n, vin[0], "/abs", 0, &ab)) != EGC_OK ||
            (*st = scalar_const(c, n, "/one", 1.0f, &k)) != EGC_OK ||
            (*st = binary_part(c, n, EGC_OP_ADD, ab, k, "/denominator", 0, &den)) != EGC_OK)
            return 1;
        *st = binary_part(c, n, EGC_OP_DIV, vin[0], den, "", 1, &id);
        return 1;
    }
    if (strcmp(op, "LogSoftmax") == 0) {
        /* Log(Softmax(x)); as a model's last node over the classes, both are left out at
         * load time (egc_model_output_softmax_removed), so the logits are exact. Elsewhere a
         * probability that underflows (a class about 87 below the largest) gives -inf. */
        egc_node r;
        int sm;
        node_init(&r, EGC_OP_SOFTMAX);
        if ((*st = single_output(n)) != EGC_OK) return 1;
        if (n_in < 1 || vin[0] < 0) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "input 0 is missing");
            return 1;
        }
        if ((*st = lower_softmax(c, n, vin, n_in, &r)) != EGC_OK ||
            (*st = add_part(c, n, &r, "/softmax", 0, &sm)) != EGC_OK)
            return 1;
        *st = unary_part(c, n, EGC_OP_LOG, sm, "", 1, &id);
        return 1;
    }
    if (strcmp(op, "Tanh") == 0) {
        if ((*st = one_input_op(n, vin, n_in)) == EGC_OK)
            *st = tanh_part(c, n, vin[0], "", 1, &id);
        return 1;
    }
    if (strcmp(op, "Gelu") == 0) {
        /* 0.5 x (1 + erf(x / sqrt(2))), or with approximate='tanh'
         * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
        static const char *const known[] = {"approximate", NULL};
        const char *approx = "none";
        int k1, e, one, half, s, a, b;
        if ((*st = egc_lower_check_attrs(n, known)) != EGC_OK ||
            (*st = egc_lower_attr_string(n, "approximate", "none", &approx)) != EGC_OK ||
            (*st = single_output(n)) != EGC_OK)
            return 1;
        if (strcmp(approx, "none") != 0 && strcmp(approx, "tanh") != 0) {
            *st = EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "approximate='%s' is not supported ('none' "
                                "and 'tanh' are)", approx);
            return 1;
        }
        if (n_in != 1 || vin[0] < 0) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected 1)", n_in);
            return 1;
        }
        if (approx[0] == 't') {
            /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
            int x2, x3, kc, c3, inner, kr, arg, t;
            if ((*st = scalar_const(c, n, "/cube_coef", 0.044715f, &kc)) != EGC_OK ||
                (*st = scalar_const(c, n, "/sqrt_2_over_pi", 0.79788456080286536f, &kr)) !=
                    EGC_OK ||
                (*st = scalar_const(c, n, "/one", 1.0f, &one)) != EGC_OK ||
                (*st = scalar_const(c, n, "/half", 0.5f, &half)) != EGC_OK ||
                (*st = binary_part(c, n, EGC_OP_MUL, vin[0], vin[0], "/square", 0, &x2)) != EGC_OK ||
                (*st = binary_part(c, n, EGC_OP_MUL, x2, vin[0], "/cube", 0, &x3)) != EGC_OK ||
                (*st = binary_part(c, n, EGC_OP_MUL, x3, kc, "/cube_scaled", 0, &c3)) != EGC_OK ||
                (*st = binary_part(c, n, EGC_OP_ADD, vin[0], c3, "/inner", 0, &inner)) != EGC_OK ||
                (*st = binary_part(c, n, EGC_OP_MUL, inner, kr, "/tanh_arg", 0, &arg)) != EGC_OK ||
                (*st = tanh_part(c, n, arg, "/tanh", 0, &t)) != EGC_OK ||
                (*st = binary_part(c, n, EGC_OP_ADD, t, one, "/tanh_plus_one", 0, &a)) != EGC_OK ||
                (*st = binary_part(c, n, EGC_OP_MUL, vin[0], a, "/times_x", 0, &b)) != EGC_OK)
                return 1;
            *st = binary_part(c, n, EGC_OP_MUL, b, half, "", 1, &id);
            return 1;
        }
        if ((*st = scalar_const(c, n, "/inv_sqrt2", 0.70710678118654752f, &k1)) != EGC_OK ||
            (*st = scalar_const(c, n, "/one", 1.0f, &one)) != EGC_OK ||
            (*st = scalar_const(c, n, "/half", 0.5f, &half)) != EGC_OK ||
            (*st = binary_part(c, n, EGC_OP_MUL, vin[0], k1, "/scaled", 0, &s)) != EGC_OK ||
            (*st = unary_part(c, n, EGC_OP_ERF, s, "/erf", 0, &e)) != EGC_OK ||
            (*st = binary_part(c, n, EGC_OP_ADD, e, one, "/erf_plus_one", 0, &a)) != EGC_OK ||
            (*st = binary_part(c, n, EGC_OP_MUL, vin[0], a, "/times_x", 0, &b)) != EGC_OK)
            return 1;
        *st = binary_part(c, n, EGC_OP_MUL, b, half, "", 1, &id);
        return 1;
    }
    if (strcmp(op, "LayerNormalization") == 0) {
        static const char *const known[] = {"axis", "epsilon", "stash_type", NULL};
        int64_t axis;
        float eps;
        if ((*st = egc_lower_check_attrs(n, known)) != EGC_OK ||
            (*st = egc_lower_attr_int(n, "axis", -1, &axis)) != EGC_OK ||
            (*st = egc_lower_attr_float(n, "epsilon", 1e-5f, &eps)) != EGC_OK)
            return 1;
        if (n_in < 2 || n_in > 3 || vin[0] < 0 || vin[1] < 0) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected X, Scale and an "
                                "optional B)", n_in);
            return 1;
        }
        const egc_shape xs = c->g->values[vin[0]].shape;
        const int rank = xs.ndim;
        if ((*st = check_axis(n, axis, rank, 0)) != EGC_OK) return 1;
        if (axis < 0) axis += rank;
        /* the Mean and InvStdDev outputs are not computed: using them is an error */
        if ((*st = poison_outputs(c, n, 1)) != EGC_OK) return 1;
        if (axis == rank - 1) {
            *st = layer_norm(c, n, vin[0], vin[1], n_in > 2 ? vin[2] : -1, eps);
            return 1;
        }
        /* over the axes from `axis` on: a Reshape to [-1, their product], the normalisation
         * over the last axis, a Reshape back, then the scale and bias (broadcast over them) */
        int64_t flat[2] = {-1, 1}, back[EGC_MAX_DIMS];
        for (int k = (int)axis; k < rank; k++) flat[1] *= xs.d[k];
        back[0] = -1;
        for (int k = 1; k < rank; k++) back[k] = xs.d[k];
        int r2, nr, y;
        if ((*st = reshape_part(c, n, vin[0], flat, 2, "/flat", 0, &r2)) != EGC_OK ||
            (*st = normalize_last_axis(c, n, r2, eps, &nr)) != EGC_OK ||
            (*st = reshape_part(c, n, nr, back, rank, "/unflat", 0, &y)) != EGC_OK)
            return 1;
        if (n_in < 3 || vin[2] < 0) {
            *st = binary_part(c, n, EGC_OP_MUL, y, vin[1], "", 1, &id);
            return 1;
        }
        if ((*st = binary_part(c, n, EGC_OP_MUL, y, vin[1], "/scaled", 0, &y)) != EGC_OK) return 1;
        *st = binary_part(c, n, EGC_OP_ADD, y, vin[2], "", 1, &id);
        return 1;
    }
    if (strcmp(op, "InstanceNormalization") == 0 || strcmp(op, "GroupNormalization") == 0) {
        /* InstanceNormalization: a group per channel; GroupNormalization (opset 18: scale and
         * bias per group, 21: per channel, told apart by their size) */
        static const char *const k_in[] = {"epsilon", NULL};
        static const char *const k_gn[] = {"epsilon", "num_groups", "stash_type", NULL};
        const int inst = op[0] == 'I';
        int64_t G = 0, stash = 1;
        float eps;
        if ((*st = egc_lower_check_attrs(n, inst ? k_in : k_gn)) != EGC_OK ||
            (*st = egc_lower_attr_float(n, "epsilon", 1e-5f, &eps)) != EGC_OK ||
            (*st = single_output(n)) != EGC_OK)
            return 1;
        if (n_in != 3 || vin[0] < 0 || vin[1] < 0 || vin[2] < 0) {
            *st = EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected X, scale and bias)",
                                n_in);
            return 1;
        }
        const egc_shape *xs = &c->g->values[vin[0]].shape;
        if (!inst) {
            if ((*st = egc_lower_attr_int(n, "num_groups", 0, &G)) != EGC_OK ||
                (*st = egc_lower_attr_int(n, "stash_type", 1, &stash)) != EGC_OK)
                return 1;
            if (stash != 1) {
                *st = EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "stash_type=%lld is not supported "
                                    "(float32 statistics, 1)", (long long)stash);
                return 1;
            }
        } else if (xs->ndim >= 2) {
            G = xs->d[1];
        }
        const int per_group = !inst && xs->ndim >= 2 && G != xs->d[1] &&
                              egc_shape_numel(&c->g->values[vin[1]].shape) == G;
        *st = group_norm(c, n, vin[0], G, vin[1], vin[2], per_group, eps);
        return 1;
    }
    return 0;
}

/* Whether egcam knows op_type in some way: run, lowered to runtime nodes, folded on
 * constants, or an alias. */
static int op_known(const char *op)
{
    static const char *const k_other[] = {"Identity", "Dropout", "Shape", "Cast"};
    if (runtime_op(op) || egc_fold_knows(op) || is_composite(op)) return 1;
    for (size_t i = 0; i < EGC_COUNT(k_other); i++)
        if (strcmp(op, k_other[i]) == 0) return 1;
    return 0;
}

/* The operator types of model m that egcam does not know (op_known), each with its node
 * count, in order of first appearance, as "A (3 nodes), B (1 node)" into buf (always
 * NUL-terminated); past 8 types, "and others". One pass over the nodes. */
static void unknown_ops(const egc_onnx_model *m, char *buf, size_t cap)
{
    enum { MAXT = 8 };
    const char *type[MAXT];
    int count[MAXT], nt = 0, more = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const char *op = m->nodes[i].op_type;
        if (!op || op_known(op)) continue;
        int k = 0;
        while (k < nt && strcmp(type[k], op) != 0) k++;
        if (k < nt) {
            count[k]++;
        } else if (nt < MAXT) {
            type[nt] = op;
            count[nt++] = 1;
        } else {
            more = 1;
        }
    }
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < nt; k++)
        egc_str_append(buf, cap, &len, "%s%s (%d node%s)", k ? ", " : "", type[k], count[k],
                       count[k] == 1 ? "" : "s");
    if (more) egc_str_append(buf, cap, &len, " and others");
}

static egc_status lower_node(lctx *c, const egc_onnx_node *n)
{
    egc_graph *g = c->g;
    if (!n->op_type || !*n->op_type)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "node has no op_type");
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx") != 0)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "operator domain '%s' is not supported",
                             n->domain);
    int n_in = n->n_inputs;
    if (n_in > EGC_NODE_MAX_IN)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "has %d inputs (at most %d)", n_in,
                             EGC_NODE_MAX_IN);
    /* Trailing omitted inputs are as good as absent. */
    while (n_in > 0 && (!n->inputs[n_in - 1] || !*n->inputs[n_in - 1])) n_in--;
    int vin[EGC_NODE_MAX_IN];
    int all_const = 1;
    for (int i = 0; i < n_in; i++) {
        const char *nm = n->inputs[i];
        vin[i] = -1;
        if (!nm || !*nm) continue;
        int v = nmap_get(&c->names, nm);
        if (v < 0)
            return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input '%s' is not defined", nm);
        if (c->poison[v])
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "uses '%s', output of node '%s' (%s) that "
                                 "egcam does not compute (Dropout mask, MaxPool indices and "
                                 "BatchNormalization statistics are not supported)",
                                 nm, nname(c->poison[v]), c->poison[v]->op_type);
        vin[i] = v;
        if (!g->values[v].is_const) all_const = 0;
        const int q = nmap_get(&c->qnames, nm);
        if (q >= 0 && strcmp(n->op_type, "DequantizeLinear") != 0)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "reads '%s', the quantized (integer) "
                                 "output of QuantizeLinear node '%s': egcam runs a quantized "
                                 "model's QuantizeLinear and DequantizeLinear pairs (QDQ), not "
                                 "operators on integers (QLinearConv, QOperator models)", nm,
                                 nname(&c->m->nodes[q]));
    }
    if (n->n_outputs < 1 || !n->outputs[0] || !*n->outputs[0])
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "has no output");
    const char *op = n->op_type;

    /* Identity and Dropout (inference) pass their input through: alias the name. */
    int is_dropout = strcmp(op, "Dropout") == 0;
    if (strcmp(op, "Identity") == 0 || is_dropout) {
        static const char *const k_drop[] = {"ratio", "seed", "is_test", "consumed_inputs", NULL};
        static const char *const k_id[] = {NULL};
        EGC_TRY(egc_lower_check_attrs(n, is_dropout ? k_drop : k_id));
        if (n_in < 1 || vin[0] < 0) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input 0 is missing");
        if (is_dropout) {
            int64_t is_test;
            EGC_TRY(egc_lower_attr_int(n, "is_test", 1, &is_test));
            if (c->g->opset < 7 && is_test == 0)
                return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute is_test=0 is not supported "
                                     "(inference only)");
            if (n_in > 3) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (at most 3)", n_in);
            if (n_in > 2 && vin[2] >= 0) {
                const egc_value *tm = &g->values[vin[2]];
                if (!tm->is_const)
                    return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "input 2 '%s' (training_mode) must "
                                         "be a constant", tm->name);
                /* training mode with a ratio of 0 keeps every element: the input itself */
                const egc_value *rv = n_in > 1 && vin[1] >= 0 ? &g->values[vin[1]] : NULL;
                const int zero_ratio = rv && rv->is_const && egc_shape_numel(&rv->shape) == 1 &&
                                       (rv->is_float ? rv->f32[0] == 0.0f : rv->i64[0] == 0);
                if (egc_shape_numel(&tm->shape) != 1 ||
                    ((tm->is_float ? tm->f32[0] != 0.0f : tm->i64[0] != 0) && !zero_ratio))
                    return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "training_mode other than false is "
                                         "not supported (inference only) unless the ratio is 0");
            }
            EGC_TRY(poison_outputs(c, n, 1));
        } else {
            EGC_TRY(single_output(n));
            if (n_in != 1)
                return EGC_NODE_FAIL(EGC_E_FORMAT, n, "has %d inputs (expected 1)", n_in);
        }
        return alias_output(c, n, vin[0]);
    }

    /* Shape of an activation: its shape is known at the declared batch. The result is
     * folded with that batch (1 when symbolic); a Reshape fed by it follows the run's batch
     * through the Reshape batch rule (infer.c). */
    if (strcmp(op, "Shape") == 0 && n_in == 1 && vin[0] >= 0 && !all_const) {
        static const char *const known[] = {"start", "end", NULL};
        EGC_TRY(egc_lower_check_attrs(n, known));
        EGC_TRY(single_output(n));
        egc_onnx_tensor t;
        int id = -1;
        EGC_TRY(egc_fold_shape(n, &g->values[vin[0]].shape, &t));
        egc_status st = new_value(c, n->outputs[0], &id);
        if (st != EGC_OK) {
            egc_fold_free(&t);
            return st;
        }
        return take_tensor(c, id, &t);
    }

    /* Cast of an activation to float is a no-op (activations are float32). */
    if (strcmp(op, "Cast") == 0 && !all_const) {
        static const char *const known[] = {"to", "saturate", NULL};
        int64_t to;
        EGC_TRY(egc_lower_check_attrs(n, known));
        EGC_TRY(egc_lower_attr_int(n, "to", 0, &to));
        EGC_TRY(single_output(n));
        if (to != EGC_DT_FLOAT)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute to=%lld on a value computed at "
                                 "run time is not supported (only to=FLOAT)", (long long)to);
        if (n_in != 1 || vin[0] < 0) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "needs one input");
        return alias_output(c, n, vin[0]);
    }

    const rt_entry *e = runtime_op(op);
    if (all_const) {
        egc_onnx_tensor views[EGC_NODE_MAX_IN];
        const egc_onnx_tensor *ins[EGC_NODE_MAX_IN];
        for (int i = 0; i < n_in; i++) {
            ins[i] = NULL;
            if (vin[i] >= 0) {
                value_view(&g->values[vin[i]], &views[i]);
                ins[i] = &views[i];
            }
        }
        egc_onnx_tensor t;
        int handled;
        EGC_TRY(egc_fold_node_within(n, g->opset, ins, n_in, c->budget - c->held, &t, &handled));
        if (handled) {
            int id = -1;
            egc_status st = single_output(n);
            if (st == EGC_OK) st = new_value(c, n->outputs[0], &id);
            if (st != EGC_OK) {
                egc_fold_free(&t);
                return st;
            }
            return take_tensor(c, id, &t);
        }
        if (e) {
            EGC_TRY(single_output(n));
            return fold_runtime(c, n, e, vin, n_in);
        }
    }
    if (!e && !all_const) {
        egc_status cst;
        if (lower_composite(c, n, vin, n_in, &cst)) return cst;
    }
    if (e && e->op == EGC_OP_CONCAT && !all_const) {
        egc_status cst;
        if (concat_constants(c, n, vin, n_in, &cst)) return cst;
    }
    if (!e) {
        /* Known to the folder but fed by an activation? Say so. */
        int foldable = egc_fold_knows(op);
        if (foldable) {
            const char *rt = "?";
            for (int i = 0; i < n_in; i++)
                if (vin[i] >= 0 && !g->values[vin[i]].is_const) {
                    rt = g->values[vin[i]].name;
                    break;
                }
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n,
                                 "operator %s on a value computed at run time ('%s') is not "
                                 "supported (egcam evaluates it only on constants)", op, rt);
        }
        if (is_composite(op))
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "operator %s of constants only is not "
                                 "evaluated at load time (egcam runs it on values computed at "
                                 "run time)", op);
        char all[512];
        unknown_ops(c->m, all, sizeof all);
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "operator %s is not supported (the operators of "
                             "this model that egcam does not run: %s)", op, all);
    }

    egc_node r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < EGC_NODE_MAX_IN; i++) r.in[i] = -1;
    EGC_TRY(lower_params(c, n, e, vin, n_in, &r));
    if (r.op == EGC_OP_TRANSPOSE && r.in[0] >= 0 && r.in[0] == c->cl_input &&
        r.p.transpose.n == 4 && r.p.transpose.perm[0] == 0 && r.p.transpose.perm[1] == 3 &&
        r.p.transpose.perm[2] == 1 && r.p.transpose.perm[3] == 2) {
        /* the channels-last input transposed back: egcam's input itself */
        EGC_TRY(single_output(n));
        return alias_output(c, n, g->input);
    }
    if (e->op == EGC_OP_BATCHNORM || e->op == EGC_OP_MAXPOOL) {
        EGC_TRY(poison_outputs(c, n, 1));
    } else {
        EGC_TRY(single_output(n));
    }
    int id = -1;
    EGC_TRY(add_node(c, n, &r, &id));
    return EGC_OK;
}

/* ---------------------------------------------------------------- graph passes */

/* Folds BatchNormalization nodes fed by a Conv used by nothing else into that Conv.
 * removed[i] is set for folded BN nodes. */
static egc_status fold_batchnorm(lctx *c, int *removed)
{
    egc_graph *g = c->g;
    int *uses = NULL;
    egc_status st = EGC_OK;
    EGC_TRY(egc_calloc((void **)&uses, (size_t)g->n_values + 1, sizeof *uses, "use counts"));
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0) uses[g->nodes[i].in[k]]++;
    if (g->output >= 0) uses[g->output]++;
    for (int i = 0; i < g->n_nodes; i++) {
        egc_node *bn = &g->nodes[i];
        if (bn->op != EGC_OP_BATCHNORM) continue;
        int x = bn->in[0];
        int pi = g->values[x].producer;
        if (pi < 0 || removed[pi] || g->nodes[pi].op != EGC_OP_CONV || uses[x] != 1) continue;
        egc_node *cv = &g->nodes[pi];
        const egc_value *w = &g->values[cv->in[1]];
        const egc_value *b = cv->n_in > 2 && cv->in[2] >= 0 ? &g->values[cv->in[2]] : NULL;
        const float *scale = g->values[bn->in[1]].f32, *beta = g->values[bn->in[2]].f32;
        const float *mean = g->values[bn->in[3]].f32, *var = g->values[bn->in[4]].f32;
        int64_t m = w->shape.d[0], per = egc_shape_numel(&w->shape) / (m ? m : 1);
        egc_onnx_tensor nw, nb;
        memset(&nw, 0, sizeof nw);
        memset(&nb, 0, sizeof nb);
        EGC_TRYG(st,
                 egc_malloc((void **)&nw.f32, (size_t)(m * per > 0 ? m * per : 1), sizeof(float),
                            "folded weights"),
                 done);
        nw.shape = w->shape;
        nw.numel = m * per;
        nw.is_float = 1;
        st = egc_malloc((void **)&nb.f32, (size_t)(m ? m : 1), sizeof(float), "folded bias");
        if (st != EGC_OK) {
            free(nw.f32);
            goto done;
        }
        nb.shape.ndim = 1;
        nb.shape.d[0] = m;
        nb.numel = m;
        nb.is_float = 1;
        for (int64_t o = 0; o < m; o++) {
            double k = (double)scale[o] / sqrt((double)var[o] + (double)bn->p.bn.eps);
            for (int64_t j = 0; j < per; j++)
                nw.f32[o * per + j] = (float)((double)w->f32[o * per + j] * k);
            double b0 = b ? (double)b->f32[o] : 0.0;
            nb.f32[o] = (float)((b0 - (double)mean[o]) * k + (double)beta[o]);
        }
        int wid = -1, bid = -1;
        st = new_unique_value(c, bn->name, "/bn_folded_weight", &wid);
        if (st == EGC_OK) st = take_tensor(c, wid, &nw);
        else egc_fold_free(&nw);
        if (st == EGC_OK) st = new_unique_value(c, bn->name, "/bn_folded_bias", &bid);
        if (st == EGC_OK) st = take_tensor(c, bid, &nb);
        else egc_fold_free(&nb);
        if (st != EGC_OK) goto done;
        cv = &g->nodes[pi];
        bn = &g->nodes[i];
        cv->in[1] = wid;
        cv->in[2] = bid;
        cv->n_in = 3;
        g->values[x].producer = -1;
        cv->out = bn->out;
        g->values[bn->out].producer = pi;
        removed[i] = 1;
    }
done:
    free(uses);
    return st;
}

/* Drops removed nodes and nodes the output does not depend on; renumbers producers. */
static egc_status compact(lctx *c, int *removed)
{
    egc_graph *g = c->g;
    char *need = NULL;
    EGC_TRY(egc_calloc((void **)&need, (size_t)g->n_values + 1, 1, "live values"));
    need[g->output] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const egc_node *n = &g->nodes[i];
        if (removed[i] || !need[n->out]) {
            removed[i] = 1;
            continue;
        }
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) need[n->in[k]] = 1;
    }
    free(need);
    for (int v = 0; v < g->n_values; v++) g->values[v].producer = -1;
    int j = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (removed[i]) {
            free(g->nodes[i].name);
            continue;
        }
        g->nodes[j] = g->nodes[i];
        g->values[g->nodes[j].out].producer = j;
        j++;
    }
    g->n_nodes = j;
    return EGC_OK;
}

/* ---------------------------------------------------------------- entry */

/* Whether an input of shape s is an image with its channels last, [N,H,W,3] (Keras,
 * TensorFlow and TFLite exports), rather than [N,C,H,W]: 3 channels last and not first. */
static int input_is_channels_last(const egc_shape *s)
{
    return s->ndim == 4 && s->d[3] == 3 && s->d[1] != 3 && s->d[1] > 0 && s->d[2] > 0;
}

static egc_status pick_input(lctx *c)
{
    const egc_onnx_model *m = c->m;
    egc_graph *g = c->g;
    int found = -1, count = 0;
    char names[512];
    size_t len = 0;
    names[0] = '\0';
    for (int i = 0; i < m->n_inputs; i++) {
        const char *nm = m->inputs[i].name;
        if (!nm || !*nm) return EGC_FAIL(EGC_E_FORMAT, "graph input %d has no name", i);
        if (nmap_get(&c->names, nm) >= 0) continue; /* initializer or bound constant */
        if (found < 0) found = i;
        int w = snprintf(names + len, sizeof names - len, "%s'%s'", count ? ", " : "", nm);
        if (w > 0 && (size_t)w < sizeof names - len) len += (size_t)w;
        count++;
    }
    if (count == 0)
        return EGC_FAIL(EGC_E_UNSUPPORTED,
                        "the model has no runtime input: every graph input is an "
                        "initializer or bound to a constant");
    if (count > 1)
        return EGC_FAIL(EGC_E_UNSUPPORTED,
                        "the model has %d runtime inputs (%s); egcam needs exactly "
                        "one (bind the others to constants)",
                        count, names);
    const egc_onnx_valueinfo *vi = &m->inputs[found];
    if (vi->elem_type != EGC_DT_FLOAT)
        return EGC_FAIL(EGC_E_UNSUPPORTED, "input '%s' has element type %d; egcam needs float32",
                        vi->name, vi->elem_type);
    if (!vi->has_shape || vi->shape.ndim < 1 || vi->shape.ndim > EGC_MAX_DIMS)
        return EGC_FAIL(EGC_E_UNSUPPORTED, "input '%s' has no usable shape (rank %d)", vi->name,
                        vi->has_shape ? vi->shape.ndim : -1);
    egc_shape s = vi->shape;
    egc_shape chk = s;
    if (chk.d[0] < 0) chk.d[0] = 1;
    for (int i = 1; i < s.ndim; i++)
        if (chk.d[i] < 0) chk.d[i] = 1;
    if (!egc_lower_shape_sane(&chk))
        return EGC_FAIL(EGC_E_UNSUPPORTED, "input '%s' has a shape too large to handle", vi->name);
    if (s.d[0] < 0) {
        g->declared_batch = -1;
        s.d[0] = 1;
    } else if (s.d[0] == 0) {
        return EGC_FAIL(EGC_E_UNSUPPORTED, "input '%s' declares batch size 0", vi->name);
    } else {
        g->declared_batch = s.d[0];
    }
    if (c->in_h > 0 || c->in_w > 0) {
        /* the image size given: H and W of [N,C,H,W], or of [N,H,W,3] (a last axis of 3
         * and a second that is not 3) */
        char b[96];
        if (s.ndim != 4 || c->in_h < 1 || c->in_w < 1)
            return EGC_FAIL(EGC_E_ARG, "input '%s' has shape %s: an image size %lldx%lld is "
                            "given for an image input [N,C,H,W] or [N,H,W,3]", vi->name,
                            egc_shape_str(&vi->shape, b, sizeof b), (long long)c->in_h,
                            (long long)c->in_w);
        const int last = s.d[3] == 3 && s.d[1] != 3, hi = last ? 1 : 2;
        const int64_t want[2] = {c->in_h, c->in_w};
        for (int k = 0; k < 2; k++) {
            if (s.d[hi + k] < 1) {
                s.d[hi + k] = want[k];
            } else if (s.d[hi + k] != want[k]) {
                return EGC_FAIL(EGC_E_ARG, "input '%s' has shape %s: its %s is fixed at %lld, "
                                "not the %lld given", vi->name,
                                egc_shape_str(&vi->shape, b, sizeof b), k ? "width" : "height",
                                (long long)s.d[hi + k], (long long)want[k]);
            }
        }
        chk = s;
        chk.d[0] = 1;
        if (!egc_lower_shape_sane(&chk))
            return EGC_FAIL(EGC_E_ARG, "input '%s': an image size of %lldx%lld is too large to "
                            "handle", vi->name, (long long)c->in_h, (long long)c->in_w);
    }
    for (int i = 1; i < s.ndim; i++)
        if (s.d[i] < 1) {
            char b[96];
            const int hw = s.ndim == 4 && (i >= 2 || (s.d[3] == 3 && s.d[1] != 3));
            /* a symbolic image size is the caller's to give (EGC_E_ARG) */
            return EGC_FAIL(hw ? EGC_E_ARG : EGC_E_UNSUPPORTED, "input '%s' has shape %s: dim "
                            "%d is symbolic or empty; egcam needs fixed sizes after the batch "
                            "dim%s", vi->name,
                            egc_shape_str(&vi->shape, b, sizeof b), i,
                            hw ? " (give the image size the model runs at: --input-size HxW, "
                                 "egc_model_load_sized)" : "");
        }
    c->batch = s.d[0];
    int id = -1;
    if (!input_is_channels_last(&s)) {
        EGC_TRY(new_value(c, vi->name, &id));
        g->values[id].shape = s;
        g->input = id;
        return EGC_OK;
    }
    /* [N,H,W,3]: egcam's input is the image [N,3,H,W]; a Transpose (0,2,3,1) makes the
     * tensor the file's nodes read under the input's name. A Transpose (0,3,1,2) of it (the
     * exporters' first node) is then the input itself (lower_node). */
    EGC_TRY(new_unique_value(c, vi->name, "_nchw", &id));
    g->values[id].shape = (egc_shape){4, {s.d[0], s.d[3], s.d[1], s.d[2]}};
    g->input = id;
    g->input_channels_last = 1;
    egc_node r;
    node_init(&r, EGC_OP_TRANSPOSE);
    r.n_in = 1;
    r.in[0] = id;
    r.p.transpose.n = 4;
    const int perm[4] = {0, 2, 3, 1};
    memcpy(r.p.transpose.perm, perm, sizeof perm);
    char name[600];
    snprintf(name, sizeof name, "%s_to_channels_last", vi->name);
    char *outs[1] = {(char *)vi->name};
    egc_onnx_node part;
    memset(&part, 0, sizeof part);
    part.name = name;
    part.op_type = "Transpose";
    part.outputs = outs;
    part.n_outputs = 1;
    EGC_TRY(add_node(c, &part, &r, &c->cl_input));
    return EGC_OK;
}

static egc_status lower_all(lctx *c, const char *const *cnames, const egc_onnx_tensor *cvals,
                            int n_const)
{
    const egc_onnx_model *m = c->m;
    egc_graph *g = c->g;
    int *order = NULL, *removed = NULL;
    egc_status st = EGC_OK;
    g->opset = m->opset;
    if (m->opset < 1)
        return EGC_FAIL(EGC_E_FORMAT, "the model imports no opset of the default ONNX domain");
    if (n_const < 0 || (n_const > 0 && (!cnames || !cvals)))
        return EGC_FAIL(EGC_E_ARG, "bad constant input list");
    for (int i = 0; i < n_const; i++) {
        int is_input = 0, id;
        if (!cnames[i]) return EGC_FAIL(EGC_E_ARG, "constant input %d has no name", i);
        for (int k = 0; k < m->n_inputs; k++)
            if (m->inputs[k].name && strcmp(m->inputs[k].name, cnames[i]) == 0) is_input = 1;
        if (!is_input)
            return EGC_FAIL(EGC_E_ARG, "constant input '%s' is not a graph input", cnames[i]);
        EGC_TRY(add_const(c, cnames[i], &cvals[i], &id));
    }
    for (int i = 0; i < m->n_inits; i++) {
        const egc_onnx_tensor *t = &m->inits[i];
        int id = -1;
        if (!t->name || !*t->name) return EGC_FAIL(EGC_E_FORMAT, "initializer %d has no name", i);
        int prev = nmap_get(&c->names, t->name);
        if (prev >= 0) {
            int bound = 0;
            for (int k = 0; k < n_const; k++)
                if (strcmp(cnames[k], t->name) == 0) bound = 1;
            if (bound) continue; /* a bound input overrides the initializer's default */
            return EGC_FAIL(EGC_E_FORMAT, "initializer '%s' is given twice", t->name);
        }
        if (t->numel != egc_shape_numel(&t->shape) ||
            (t->numel > 0 && (t->is_float ? !t->f32 : !t->i64)))
            return EGC_FAIL(EGC_E_FORMAT, "initializer '%s': data does not match its shape",
                            t->name);
        EGC_TRY(add_const(c, t->name, t, &id));
    }
    EGC_TRY(pick_input(c));
    if (m->n_nodes < 0) return EGC_FAIL(EGC_E_FORMAT, "negative node count");
    EGC_TRY(egc_malloc((void **)&order, (size_t)m->n_nodes + 1, sizeof *order, "node order"));
    EGC_TRYG(st, sort_nodes(c, order), done);
    for (int i = 0; i < m->n_nodes; i++) {
        st = lower_node(c, &m->nodes[order[i]]);
        if (st == EGC_OK) continue;
        if (st == EGC_E_UNSUPPORTED && !strstr(egc_last_error(), "egcam does not run:")) {
            /* the first refusal, and every operator of the model egcam does not know at all,
             * so that one look says what a model lacks */
            char all[512];
            unknown_ops(m, all, sizeof all);
            if (all[0]) {
                char msg[4096];
                const char *e = egc_last_error(), *nl = strchr(e, '\n');
                int head = nl ? (int)(nl - e) : (int)strlen(e), cut = head;
                /* before the " [file:line]" that ends the first line */
                for (int k = head - 1; k > 0 && e[head - 1] == ']'; k--)
                    if (e[k] == '[' && e[k - 1] == ' ') {
                        cut = k - 1;
                        break;
                    }
                snprintf(msg, sizeof msg, "%.*s; the model also has operators egcam does not run: "
                         "%s%.*s%s", cut, e, all, head - cut, e + cut, nl ? nl : "");
                egc_error_restore(msg);
            }
        }
        egc_error_trace(st, "lower_node(c, &m->nodes[order[i]])", __FILE__, __LINE__);
        goto done;
    }

    /* Only graph output 0 is used: egcam explains one classifier output. */
    if (m->n_outputs < 1 || !m->outputs[0].name)
        EGC_TRYG(st, EGC_FAIL(EGC_E_FORMAT, "the model has no graph output"), done);
    {
        const char *on = m->outputs[0].name;
        int v = nmap_get(&c->names, on);
        if (v < 0) {
            st = EGC_FAIL(EGC_E_FORMAT, "graph output '%s' is not produced by any node", on);
            goto done;
        }
        if (c->poison[v]) {
            st = EGC_FAIL(EGC_E_UNSUPPORTED,
                          "graph output '%s' is an extra output of node '%s' (%s), "
                          "which egcam does not compute",
                          on, nname(c->poison[v]), c->poison[v]->op_type);
            goto done;
        }
        if (g->values[v].is_const) {
            st = EGC_FAIL(EGC_E_UNSUPPORTED, "graph output '%s' is a constant: it does not depend "
                          "on the input", on);
            goto done;
        }
        const int q = nmap_get(&c->qnames, on);
        if (q >= 0) {
            st = EGC_FAIL(EGC_E_UNSUPPORTED, "graph output '%s' is the quantized (integer) output "
                          "of QuantizeLinear node '%s': egcam explains float scores (a model "
                          "whose last node is a DequantizeLinear, or none)", on,
                          nname(&m->nodes[q]));
            goto done;
        }
        /* v == g->input is allowed (Identity / Dropout only): a graph without runtime nodes. */
        g->output = v;
    }
    EGC_TRYG(st, egc_calloc((void **)&removed, (size_t)g->n_nodes + 1, sizeof *removed, "nodes"),
             done);
    EGC_TRYG(st, fold_batchnorm(c, removed), done);
    EGC_TRYG(st, compact(c, removed), done);
done:
    free(order);
    free(removed);
    return st;
}

egc_status egc_lower(const egc_onnx_model *m, const char *what,
                     const char *const *const_inputs_names, const egc_onnx_tensor *const_inputs,
                     int n_const_inputs, egc_graph *out)
{
    return egc_lower_sized(m, what, const_inputs_names, const_inputs, n_const_inputs, 0, 0, out);
}

egc_status egc_lower_sized(const egc_onnx_model *m, const char *what,
                           const char *const *const_inputs_names,
                           const egc_onnx_tensor *const_inputs, int n_const_inputs,
                           int64_t height, int64_t width, egc_graph *out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "egc_lower: out is NULL");
    memset(out, 0, sizeof *out);
    out->input = out->output = -1;
    if (!what) what = "model";
    if (!m) return EGC_FAIL(EGC_E_ARG, "%s: no model", what);
    lctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.g = out;
    c.budget = EGC_FOLD_BUDGET_BASE;
    c.cl_input = -1;
    c.in_h = height;
    c.in_w = width;
    egc_status st = lower_all(&c, const_inputs_names, const_inputs, n_const_inputs);
    nmap_free(&c.names);
    nmap_free(&c.qnames);
    free(c.poison);
    if (st != EGC_OK) {
        egc_graph_clear(out);
        return egc_error_prefix(st, "%s: ", what);
    }
    return EGC_OK;
}

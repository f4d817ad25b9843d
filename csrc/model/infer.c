/* infer.c: shape inference over egcam's graph (ir.h) and releasing a graph.
 *
 * egc_node_infer gives one runtime node's output shape from its input shapes; lowering uses
 * it at the declared batch and egc_graph_infer replays it for any batch size. The batch
 * rule: the runtime input's dim 0 is the run's batch. Most ops carry dim 0 along by
 * themselves; a Reshape whose literal target first dim equals the declared batch (1 when
 * the file's batch is symbolic) while its input's first dim is the run's batch produces the
 * run's batch instead (x.view(x.size(0), -1) exported at batch 1). */
#include <stdlib.h>
#include <string.h>

#include "model/lower.h"


int egc_lower_shape_sane(const egc_shape *s)
{
    if (s->ndim < 0 || s->ndim > EGC_MAX_DIMS) return 0;
    int64_t p = 1;
    for (int i = 0; i < s->ndim; i++) {
        int64_t d = s->d[i];
        if (d < 0 || d > EGC_INFER_MAX_NUMEL) return 0;
        if (d && p > EGC_INFER_MAX_NUMEL / d) return 0;
        if (d) p *= d;
    }
    return 1;
}

static const char *shs(const egc_shape *s, char *buf, size_t cap)
{
    return s ? egc_shape_str(s, buf, cap) : "(absent)";
}

static egc_status need_rank(const egc_node *n, const egc_shape *s, int idx, int rank)
{
    char b[96];
    if (!s) return EGC_FAIL(EGC_E_SHAPE, "node '%s' (%s): input %d is missing", n->name,
                            egc_op_name(n->op), idx);
    if (s->ndim != rank)
        return EGC_FAIL(EGC_E_SHAPE, "node '%s' (%s): input %d has shape %s, expected rank %d",
                        n->name, egc_op_name(n->op), idx, shs(s, b, sizeof b), rank);
    return EGC_OK;
}

/* out = floor or ceil((in + pads - dil*(k-1) - 1) / stride) + 1, with PyTorch's rule that
 * the last window must start inside the input or the leading padding (ceil mode). */
static egc_status window_out(const egc_node *n, int64_t in, int pb, int pe, int k, int s, int d,
                             int ceil_mode, int64_t *out)
{
    int64_t span = (int64_t)d * (k - 1) + 1;
    int64_t avail = in + pb + pe - span;
    if (k < 1 || s < 1 || d < 1 || avail < 0)
        return EGC_FAIL(EGC_E_SHAPE,
                        "node '%s' (%s): window %d (dilation %d, stride %d) does not fit an input "
                        "of size %lld with pads %d,%d",
                        n->name, egc_op_name(n->op), k, d, s, (long long)in, pb, pe);
    int64_t o = ceil_mode ? (avail + s - 1) / s + 1 : avail / s + 1;
    if (ceil_mode && (o - 1) * s >= in + pb) o--;
    *out = o;
    return EGC_OK;
}

static egc_status infer_conv(const egc_node *n, const egc_shape *const *in, egc_shape *out)
{
    char b1[96], b2[96];
    const egc_conv_params *p = &n->p.conv;
    EGC_TRY(need_rank(n, in[0], 0, 4));
    EGC_TRY(need_rank(n, in[1], 1, 4));
    const egc_shape *x = in[0], *w = in[1];
    if (p->group < 1 || w->d[0] % p->group != 0 || x->d[1] != w->d[1] * p->group ||
        w->d[2] != p->kh || w->d[3] != p->kw)
        return EGC_FAIL(EGC_E_SHAPE,
                        "node '%s' (Conv): input %s does not fit weights %s with group %d and "
                        "kernel %dx%d",
                        n->name, shs(x, b1, sizeof b1), shs(w, b2, sizeof b2), p->group, p->kh,
                        p->kw);
    if (n->n_in > 2 && in[2]) {
        if (in[2]->ndim != 1 || in[2]->d[0] != w->d[0])
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Conv): bias %s does not fit weights %s",
                            n->name, shs(in[2], b1, sizeof b1), shs(w, b2, sizeof b2));
    }
    egc_shape r = *x;
    r.d[1] = w->d[0];
    EGC_TRY(window_out(n, x->d[2], p->pt, p->pb, p->kh, p->sh, p->dh, 0, &r.d[2]));
    EGC_TRY(window_out(n, x->d[3], p->pl, p->pr, p->kw, p->sw, p->dw, 0, &r.d[3]));
    *out = r;
    return EGC_OK;
}

static egc_status infer_pool(const egc_node *n, const egc_shape *const *in, egc_shape *out)
{
    const egc_pool_params *p = &n->p.pool;
    EGC_TRY(need_rank(n, in[0], 0, 4));
    egc_shape r = *in[0];
    EGC_TRY(window_out(n, r.d[2], p->pt, p->pb, p->kh, p->sh, p->dh, p->ceil_mode, &r.d[2]));
    EGC_TRY(window_out(n, r.d[3], p->pl, p->pr, p->kw, p->sw, p->dw, p->ceil_mode, &r.d[3]));
    *out = r;
    return EGC_OK;
}

static egc_status infer_gemm(const egc_node *n, const egc_shape *const *in, egc_shape *out)
{
    char b1[96], b2[96], b3[96];
    const egc_gemm_params *p = &n->p.gemm;
    EGC_TRY(need_rank(n, in[0], 0, 2));
    EGC_TRY(need_rank(n, in[1], 1, 2));
    int64_t m = p->trans_a ? in[0]->d[1] : in[0]->d[0];
    int64_t ka = p->trans_a ? in[0]->d[0] : in[0]->d[1];
    int64_t kb = p->trans_b ? in[1]->d[1] : in[1]->d[0];
    int64_t nn = p->trans_b ? in[1]->d[0] : in[1]->d[1];
    if (ka != kb)
        return EGC_FAIL(EGC_E_SHAPE,
                        "node '%s' (Gemm): A %s (transA=%d) and B %s (transB=%d) do not multiply",
                        n->name, shs(in[0], b1, sizeof b1), p->trans_a, shs(in[1], b2, sizeof b2),
                        p->trans_b);
    egc_shape r;
    memset(&r, 0, sizeof r);
    r.ndim = 2;
    r.d[0] = m;
    r.d[1] = nn;
    if (n->n_in > 2 && in[2]) {
        egc_shape bc;
        /* C broadcasts unidirectionally to [M, N]. */
        if (in[2]->ndim > 2 || egc_broadcast_shape(&r, in[2], &bc) != EGC_OK ||
            !egc_shape_equal(&bc, &r))
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Gemm): C %s does not broadcast to %s",
                            n->name, shs(in[2], b3, sizeof b3), shs(&r, b1, sizeof b1));
    }
    *out = r;
    return EGC_OK;
}

static egc_status infer_matmul(const egc_node *n, const egc_shape *const *in, egc_shape *out)
{
    char b1[96], b2[96];
    if (!in[0] || !in[1] || in[0]->ndim < 1 || in[1]->ndim < 1)
        return EGC_FAIL(EGC_E_SHAPE, "node '%s' (MatMul): inputs must have rank >= 1", n->name);
    egc_shape a = *in[0], b = *in[1];
    int a1 = a.ndim == 1, b1v = b.ndim == 1;
    if (a1) { a.ndim = 2; a.d[1] = a.d[0]; a.d[0] = 1; }
    if (b1v) { b.ndim = 2; b.d[1] = 1; }
    if (a.d[a.ndim - 1] != b.d[b.ndim - 2])
        return EGC_FAIL(EGC_E_SHAPE, "node '%s' (MatMul): %s and %s do not multiply", n->name,
                        shs(in[0], b1, sizeof b1), shs(in[1], b2, sizeof b2));
    egc_shape ba = a, bb = b, r;
    ba.ndim -= 2;
    bb.ndim -= 2;
    if (egc_broadcast_shape(&ba, &bb, &r) != EGC_OK)
        return EGC_FAIL(EGC_E_SHAPE, "node '%s' (MatMul): batch dims of %s and %s do not broadcast",
                        n->name, shs(in[0], b1, sizeof b1), shs(in[1], b2, sizeof b2));
    if (r.ndim + 2 > EGC_MAX_DIMS)
        return EGC_FAIL(EGC_E_UNSUPPORTED, "node '%s' (MatMul): too many dims", n->name);
    r.d[r.ndim++] = a.d[a.ndim - 2];
    r.d[r.ndim++] = b.d[b.ndim - 1];
    if (b1v) r.ndim--;
    if (a1) {
        if (b1v) r.ndim--;
        else {
            r.d[r.ndim - 2] = r.d[r.ndim - 1];
            r.ndim--;
        }
    }
    *out = r;
    return EGC_OK;
}

static egc_status infer_reshape(const egc_node *n, const egc_shape *x, int64_t decl,
                                int64_t batch, egc_shape *out)
{
    char b1[96];
    const egc_reshape_params *p = &n->p.reshape;
    int64_t total = egc_shape_numel(x);
    egc_shape r;
    memset(&r, 0, sizeof r);
    if (p->flatten_axis >= 0) {
        if (p->flatten_axis > x->ndim)
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Flatten): axis %d out of range for %s",
                            n->name, p->flatten_axis, shs(x, b1, sizeof b1));
        int64_t lead = 1;
        for (int i = 0; i < p->flatten_axis; i++) lead *= x->d[i];
        r.ndim = 2;
        r.d[0] = lead;
        r.d[1] = lead ? total / lead : 0;
        if (!lead) {
            r.d[1] = 1;
            for (int i = p->flatten_axis; i < x->ndim; i++) r.d[1] *= x->d[i];
        }
        *out = r;
        return EGC_OK;
    }
    if (p->n < 0 || p->n > EGC_MAX_DIMS)
        return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Reshape): bad target rank %d", n->name, p->n);
    r.ndim = p->n;
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < p->n; i++) {
        int64_t d = p->dims[i];
        if (i == 0 && d == decl && batch != decl && x->ndim >= 1 && x->d[0] == batch) d = batch;
        if (d == 0 && !p->allowzero) {
            if (i >= x->ndim)
                return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Reshape): target dim %d is 0 (copy) but "
                                "the input %s has no such dim",
                                n->name, i, shs(x, b1, sizeof b1));
            d = x->d[i];
        }
        if (d == -1) {
            if (infer_at >= 0)
                return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Reshape): more than one -1 in the target",
                                n->name);
            infer_at = i;
            r.d[i] = 1;
            continue;
        }
        if (d < 0)
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Reshape): negative target dim %lld", n->name,
                            (long long)d);
        r.d[i] = d;
        if (d && known > EGC_INFER_MAX_NUMEL / d)
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Reshape): target too large", n->name);
        known *= d;
    }
    if (infer_at >= 0) {
        if (known == 0 || total % known != 0)
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Reshape): cannot infer the -1 of the target "
                            "for input %s", n->name, shs(x, b1, sizeof b1));
        r.d[infer_at] = total / known;
        known = total;
    }
    if (known != total) {
        char b2[96];
        return EGC_FAIL(EGC_E_SHAPE,
                        "node '%s' (Reshape): input %s (%lld elements) cannot become %s", n->name,
                        shs(x, b1, sizeof b1), (long long)total, shs(&r, b2, sizeof b2));
    }
    *out = r;
    return EGC_OK;
}

static egc_status infer_concat(const egc_node *n, const egc_shape *const *in, egc_shape *out)
{
    char b1[96], b2[96];
    if (n->n_in < 1 || !in[0])
        return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Concat): no inputs", n->name);
    int r = in[0]->ndim, ax = n->p.axis.axis;
    if (ax < 0) ax += r;
    if (ax < 0 || ax >= r)
        return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Concat): axis %d out of range for %s", n->name,
                        n->p.axis.axis, shs(in[0], b1, sizeof b1));
    egc_shape o = *in[0];
    for (int i = 1; i < n->n_in; i++) {
        const egc_shape *s = in[i];
        int ok = s && s->ndim == r;
        for (int d = 0; ok && d < r; d++)
            if (d != ax && s->d[d] != o.d[d]) ok = 0;
        if (!ok)
            return EGC_FAIL(EGC_E_SHAPE,
                            "node '%s' (Concat): input %d %s does not fit %s on axis %d", n->name,
                            i, shs(s, b1, sizeof b1), shs(in[0], b2, sizeof b2), ax);
        o.d[ax] += s->d[ax];
    }
    *out = o;
    return EGC_OK;
}

static egc_status infer_pad(const egc_node *n, const egc_shape *x, egc_shape *out)
{
    char b1[96];
    const egc_pad_params *p = &n->p.pad;
    if (p->n != x->ndim)
        return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Pad): %d pads pairs given for input %s", n->name,
                        p->n, shs(x, b1, sizeof b1));
    egc_shape r = *x;
    for (int i = 0; i < p->n; i++) {
        int64_t b = p->pads[i], e = p->pads[p->n + i];
        if (p->mode == EGC_PAD_REFLECT && (b >= x->d[i] || e >= x->d[i]))
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Pad): reflect pads %lld,%lld on axis %d need "
                            "a larger input than %s", n->name, (long long)b, (long long)e, i,
                            shs(x, b1, sizeof b1));
        if (p->mode == EGC_PAD_EDGE && x->d[i] == 0 && (b > 0 || e > 0))
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Pad): edge padding of an empty axis %d",
                            n->name, i);
        r.d[i] = x->d[i] + b + e;
        if (r.d[i] < 0)
            return EGC_FAIL(EGC_E_SHAPE,
                            "node '%s' (Pad): pads %lld,%lld on axis %d crop %s below 0", n->name,
                            (long long)b, (long long)e, i, shs(x, b1, sizeof b1));
    }
    *out = r;
    return EGC_OK;
}

egc_status egc_node_infer(const egc_graph *g, const egc_node *n, const egc_shape *const *in,
                          int64_t batch, egc_shape *out)
{
    char b1[96], b2[96];
    int64_t decl = g->declared_batch < 0 ? 1 : g->declared_batch;
    if (n->n_in < 1 || !in[0])
        return EGC_FAIL(EGC_E_SHAPE, "node '%s' (%s): first input missing", n->name,
                        egc_op_name(n->op));
    const egc_shape *x = in[0];
    egc_shape r;
    switch (n->op) {
    case EGC_OP_CONV: EGC_TRY(infer_conv(n, in, &r)); break;
    case EGC_OP_GEMM: EGC_TRY(infer_gemm(n, in, &r)); break;
    case EGC_OP_MATMUL: EGC_TRY(infer_matmul(n, in, &r)); break;
    case EGC_OP_RELU:
    case EGC_OP_CLIP:
    case EGC_OP_SIGMOID:
    case EGC_OP_SQRT:
    case EGC_OP_ERF:
    case EGC_OP_EXP:
    case EGC_OP_LOG:
    case EGC_OP_SOFTPLUS:
    case EGC_OP_FAKE_QUANT: r = *x; break;
    case EGC_OP_ADD:
    case EGC_OP_SUB:
    case EGC_OP_MUL:
    case EGC_OP_DIV:
        if (n->n_in < 2 || !in[1])
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (%s): second input missing", n->name,
                            egc_op_name(n->op));
        if (egc_broadcast_shape(x, in[1], &r) != EGC_OK)
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (%s): shapes %s and %s do not broadcast",
                            n->name, egc_op_name(n->op), shs(x, b1, sizeof b1),
                            shs(in[1], b2, sizeof b2));
        break;
    case EGC_OP_MAXPOOL:
    case EGC_OP_AVGPOOL: EGC_TRY(infer_pool(n, in, &r)); break;
    case EGC_OP_GAP:
        if (x->ndim < 3)
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (GlobalAveragePool): input %s has rank < 3",
                            n->name, shs(x, b1, sizeof b1));
        r = *x;
        for (int i = 2; i < r.ndim; i++) r.d[i] = 1;
        break;
    case EGC_OP_BATCHNORM:
        if (x->ndim < 2)
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (BatchNormalization): input %s has rank < 2",
                            n->name, shs(x, b1, sizeof b1));
        for (int i = 1; i < 5; i++) {
            if (n->n_in < 5 || !in[i] || in[i]->ndim != 1 || in[i]->d[0] != x->d[1])
                return EGC_FAIL(EGC_E_SHAPE,
                                "node '%s' (BatchNormalization): parameter %d %s does not fit "
                                "input %s",
                                n->name, i, shs(i < n->n_in ? in[i] : NULL, b2, sizeof b2),
                                shs(x, b1, sizeof b1));
        }
        r = *x;
        break;
    case EGC_OP_RESHAPE: EGC_TRY(infer_reshape(n, x, decl, batch, &r)); break;
    case EGC_OP_CONCAT: EGC_TRY(infer_concat(n, in, &r)); break;
    case EGC_OP_SLICE: {
        int64_t st[EGC_MAX_DIMS], sp[EGC_MAX_DIMS];
        for (int i = 0; i < n->p.slice.n; i++) {
            int64_t a = n->p.slice.axes[i];
            if (a < -x->ndim || a >= x->ndim)
                return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Slice): axis %lld out of range for %s",
                                n->name, (long long)a, shs(x, b1, sizeof b1));
        }
        egc_slice_resolve(&n->p.slice, x, st, sp, &r);
        break;
    }
    case EGC_OP_PAD: EGC_TRY(infer_pad(n, x, &r)); break;
    case EGC_OP_SOFTMAX: {
        int ax = n->p.axis.axis;
        if (ax < -x->ndim || ax >= x->ndim || x->ndim == 0)
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Softmax): axis %d out of range for %s",
                            n->name, ax, shs(x, b1, sizeof b1));
        r = *x;
        break;
    }
    case EGC_OP_TRANSPOSE: {
        const egc_transpose_params *p = &n->p.transpose;
        if (p->n != x->ndim)
            return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Transpose): perm of %d entries for input %s",
                            n->name, p->n, shs(x, b1, sizeof b1));
        r = *x;
        for (int i = 0; i < p->n; i++) {
            if (p->perm[i] < 0 || p->perm[i] >= x->ndim)
                return EGC_FAIL(EGC_E_SHAPE, "node '%s' (Transpose): bad perm entry %d", n->name,
                                p->perm[i]);
            r.d[i] = x->d[p->perm[i]];
        }
        break;
    }
    default:
        return EGC_FAIL(EGC_E_INTERNAL, "node '%s': unknown op %d", n->name, (int)n->op);
    }
    if (!egc_lower_shape_sane(&r))
        return EGC_FAIL(EGC_E_SHAPE, "node '%s' (%s): output shape %s is negative or too large",
                        n->name, egc_op_name(n->op), shs(&r, b1, sizeof b1));
    *out = r;
    return EGC_OK;
}

egc_status egc_graph_infer(const egc_graph *g, int64_t batch, egc_shape *shapes)
{
    if (batch < 1) return EGC_FAIL(EGC_E_ARG, "batch size %lld must be >= 1", (long long)batch);
    if (g->input < 0 || g->input >= g->n_values)
        return EGC_FAIL(EGC_E_ARG, "graph has no input value");
    for (int v = 0; v < g->n_values; v++) shapes[v] = g->values[v].shape;
    if (shapes[g->input].ndim < 1)
        return EGC_FAIL(EGC_E_SHAPE, "graph input '%s' is a scalar and has no batch dim",
                        g->values[g->input].name);
    shapes[g->input].d[0] = batch;
    for (int i = 0; i < g->n_nodes; i++) {
        const egc_node *n = &g->nodes[i];
        const egc_shape *in[EGC_NODE_MAX_IN];
        for (int k = 0; k < n->n_in; k++) {
            int v = n->in[k];
            if (v >= g->n_values)
                return EGC_FAIL(EGC_E_INTERNAL, "node '%s': input value %d out of range", n->name,
                                v);
            in[k] = v < 0 ? NULL : &shapes[v];
        }
        if (n->out < 0 || n->out >= g->n_values)
            return EGC_FAIL(EGC_E_INTERNAL, "node '%s': output value %d out of range", n->name,
                            n->out);
        EGC_TRY(egc_node_infer(g, n, in, batch, &shapes[n->out]));
    }
    return EGC_OK;
}

void egc_graph_clear(egc_graph *g)
{
    if (!g) return;
    for (int v = 0; v < g->n_values; v++) {
        free(g->values[v].name);
        free(g->values[v].f32);
        free(g->values[v].i64);
    }
    free(g->values);
    for (int i = 0; i < g->n_nodes; i++) free(g->nodes[i].name);
    free(g->nodes);
    memset(g, 0, sizeof *g);
    g->input = g->output = -1;
}

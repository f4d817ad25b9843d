/* ir_util.c: small shape helpers shared by lowering, shape inference and every backend:
 * op names, numpy broadcasting, Slice resolution. */
#include <stdio.h>
#include <string.h>

#include "model/ir.h"

const char *egc_op_name(egc_op op)
{
    static const char *const names[EGC_OP_COUNT] = {
        [EGC_OP_CONV] = "Conv",         [EGC_OP_GEMM] = "Gemm",
        [EGC_OP_MATMUL] = "MatMul",     [EGC_OP_RELU] = "Relu",
        [EGC_OP_CLIP] = "Clip",         [EGC_OP_SIGMOID] = "Sigmoid",
        [EGC_OP_ADD] = "Add",           [EGC_OP_SUB] = "Sub",
        [EGC_OP_MUL] = "Mul",           [EGC_OP_DIV] = "Div",
        [EGC_OP_MAXPOOL] = "MaxPool",   [EGC_OP_AVGPOOL] = "AveragePool",
        [EGC_OP_GAP] = "GlobalAveragePool", [EGC_OP_BATCHNORM] = "BatchNormalization",
        [EGC_OP_RESHAPE] = "Reshape",   [EGC_OP_CONCAT] = "Concat",
        [EGC_OP_SLICE] = "Slice",       [EGC_OP_PAD] = "Pad",
        [EGC_OP_SOFTMAX] = "Softmax",   [EGC_OP_TRANSPOSE] = "Transpose",
        [EGC_OP_SQRT] = "Sqrt",         [EGC_OP_ERF] = "Erf",
        [EGC_OP_EXP] = "Exp",           [EGC_OP_LOG] = "Log",
        [EGC_OP_SOFTPLUS] = "Softplus", [EGC_OP_FAKE_QUANT] = "QuantizeDequantize",
    };
    if ((int)op < 0 || op >= EGC_OP_COUNT || !names[op]) return "?";
    return names[op];
}

egc_status egc_broadcast_shape(const egc_shape *a, const egc_shape *b, egc_shape *out)
{
    int n = EGC_MAX(a->ndim, b->ndim);
    egc_shape r;
    memset(&r, 0, sizeof r);
    r.ndim = n;
    for (int i = 0; i < n; i++) {
        int ia = a->ndim - n + i, ib = b->ndim - n + i;
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da == db || db == 1) r.d[i] = da;
        else if (da == 1) r.d[i] = db;
        else {
            char sa[96], sb[96];
            return EGC_FAIL(EGC_E_SHAPE, "shapes %s and %s do not broadcast",
                            egc_shape_str(a, sa, sizeof sa), egc_shape_str(b, sb, sizeof sb));
        }
    }
    *out = r;
    return EGC_OK;
}

void egc_slice_resolve(const egc_slice_params *p, const egc_shape *in, int64_t *start,
                       int64_t *step, egc_shape *out)
{
    *out = *in;
    for (int d = 0; d < in->ndim; d++) {
        start[d] = 0;
        step[d] = 1;
    }
    for (int i = 0; i < p->n; i++) {
        int64_t ax = p->axes[i];
        if (ax < 0) ax += in->ndim;
        if (ax < 0 || ax >= in->ndim) continue; /* validated at lowering */
        int64_t dim = in->d[ax], st = p->steps[i] ? p->steps[i] : 1;
        int64_t s = p->starts[i], e = p->ends[i];
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        int64_t count;
        if (st > 0) {
            s = s < 0 ? 0 : (s > dim ? dim : s);
            e = e < 0 ? 0 : (e > dim ? dim : e);
            count = e > s ? (e - s + st - 1) / st : 0;
        } else {
            s = s < 0 ? -1 : (s > dim - 1 ? dim - 1 : s);
            e = e < -1 ? -1 : (e > dim - 1 ? dim - 1 : e);
            count = s > e ? (s - e + (-st) - 1) / (-st) : 0;
        }
        start[ax] = count ? s : 0;
        step[ax] = st;
        out->d[ax] = count;
    }
}

int egc_graph_readers(const egc_graph *g, int v, int *last)
{
    int k = 0;
    *last = -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] == v) {
                k++;
                *last = i;
            }
    return k;
}

egc_status egc_value_make(egc_value *v, const char *base, const char *suffix, const egc_shape *s)
{
    memset(v, 0, sizeof *v);
    size_t len = strlen(base) + strlen(suffix) + 1;
    EGC_TRY(egc_malloc((void **)&v->name, len, 1, "value name"));
    snprintf(v->name, len, "%s%s", base, suffix);
    v->shape = *s;
    v->is_float = 1;
    v->producer = -1;
    return EGC_OK;
}

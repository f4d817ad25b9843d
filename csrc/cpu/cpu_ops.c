/* cpu_ops.c: entry points of the CPU reference ops (egc_cpu_forward / egc_cpu_backward).
 *
 * Checks what every op relies on (input count, required inputs present, ranks within
 * EGC_MAX_DIMS, dims non-negative, tensors below 2^31 elements, gradient views shaped like
 * the tensors they belong to) and dispatches to the per-op files: conv.c, gemm.c,
 * eltwise.c, pool.c, shape_ops.c, softmax.c. Also holds the small helpers shared by those
 * files (error formatting, strides, strided copies, chunking). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cpu/cpu_impl.h"

egc_status egc_cpu_fail(egc_status code, const egc_node *n, const char *file, int line,
                        const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return egc_error_set(code, file, line, "node '%s' (%s): %s",
                         n && n->name ? n->name : "?", n ? egc_op_name(n->op) : "?", msg);
}

void egc_cpu_strides(const egc_shape *s, int64_t *st)
{
    int64_t acc = 1;
    for (int i = s->ndim - 1; i >= 0; i--) {
        st[i] = acc;
        acc *= s->d[i];
    }
}

int64_t egc_cpu_dims_prod(const egc_shape *s, int a, int b)
{
    int64_t p = 1;
    for (int i = a; i < b; i++) p *= s->d[i];
    return p;
}

void egc_cpu_strided_move(const egc_shape *shape, const float *src, int64_t src_base,
                          const int64_t *src_st, float *dst, int64_t dst_base,
                          const int64_t *dst_st, int accumulate)
{
    int nd = shape->ndim;
    if (egc_shape_numel(shape) == 0) return;
    if (nd == 0) {
        if (accumulate) dst[dst_base] += src[src_base];
        else dst[dst_base] = src[src_base];
        return;
    }
    /* Odometer over the outer dims; the innermost dim is a plain strided loop. */
    int64_t idx[EGC_MAX_DIMS] = {0};
    int64_t inner = shape->d[nd - 1], ss = src_st[nd - 1], ds = dst_st[nd - 1];
    int64_t so = src_base, dofs = dst_base;
    for (;;) {
        const float *s = src + so;
        float *d = dst + dofs;
        if (accumulate) {
            for (int64_t k = 0; k < inner; k++) d[k * ds] += s[k * ss];
        } else if (ss == 1 && ds == 1) {
            memcpy(d, s, (size_t)inner * sizeof(float));
        } else {
            for (int64_t k = 0; k < inner; k++) d[k * ds] = s[k * ss];
        }
        int i = nd - 2;
        for (; i >= 0; i--) {
            idx[i]++;
            so += src_st[i];
            dofs += dst_st[i];
            if (idx[i] < shape->d[i]) break;
            so -= src_st[i] * idx[i];
            dofs -= dst_st[i] * idx[i];
            idx[i] = 0;
        }
        if (i < 0) break;
    }
}

int egc_cpu_chunks(int64_t items, int64_t cost)
{
    int64_t t = egc_num_threads();
    if (t > items) t = items;
    if (cost > 0) {
        /* at least EGC_CPU_MIN_CHUNK_COST per chunk: starting a thread costs about that */
        int64_t by_cost = items > INT64_MAX / cost ? INT64_MAX : items * cost / EGC_CPU_MIN_CHUNK_COST;
        if (t > by_cost) t = by_cost;
    }
    if (t > EGC_CPU_SCRATCH_SLOTS) t = EGC_CPU_SCRATCH_SLOTS;
    return t < 1 ? 1 : (int)t;
}

/* Input count limits and which leading inputs are required, per op. */
static void op_arity(egc_op op, int *min_in, int *max_in, int *required)
{
    *min_in = 1;
    *max_in = 1;
    *required = 1;
    switch (op) {
    case EGC_OP_CONV:
    case EGC_OP_GEMM: *min_in = 2; *max_in = 3; *required = 2; break;
    case EGC_OP_MATMUL:
    case EGC_OP_ADD:
    case EGC_OP_SUB:
    case EGC_OP_MUL:
    case EGC_OP_DIV: *min_in = 2; *max_in = 2; *required = 2; break;
    case EGC_OP_CLIP: *max_in = 3; break;      /* min/max may stay as constant inputs */
    case EGC_OP_RESHAPE: *max_in = 2; break;   /* the shape input may stay */
    case EGC_OP_SLICE: *max_in = 5; break;     /* starts/ends/axes/steps may stay */
    case EGC_OP_PAD: *max_in = 4; break;       /* pads/value/axes may stay */
    case EGC_OP_BATCHNORM: *min_in = 5; *max_in = 5; *required = 5; break;
    case EGC_OP_CONCAT: *max_in = EGC_NODE_MAX_IN; *required = -1; break; /* all */
    default: break;
    }
}

static egc_status check_view(const egc_node *n, const egc_view *v, const char *what, int i)
{
    if (v->shape.ndim < 0 || v->shape.ndim > EGC_MAX_DIMS)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "%s %d has rank %d (at most %d supported)", what, i,
                            v->shape.ndim, EGC_MAX_DIMS);
    int64_t total = 1;
    for (int d = 0; d < v->shape.ndim; d++) {
        if (v->shape.d[d] < 0)
            return EGC_CPU_FAIL(EGC_E_SHAPE, n, "%s %d has a negative dimension", what, i);
        if (v->shape.d[d] > 0 && total > INT32_MAX / v->shape.d[d])
            return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n,
                                "%s %d has 2^31 or more elements (too large for the CPU backend)",
                                what, i);
        total *= v->shape.d[d];
    }
    return EGC_OK;
}

static egc_status check_node(const egc_graph *g, const egc_node *n, const egc_view *in,
                             const egc_view *out)
{
    if (!n) return EGC_FAIL(EGC_E_ARG, "cpu op: node is NULL");
    if ((int)n->op < 0 || n->op >= EGC_OP_COUNT)
        return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n, "unknown op code %d", (int)n->op);
    if (!in || !out) return EGC_CPU_FAIL(EGC_E_ARG, n, "input or output views are NULL");
    int min_in, max_in, required;
    op_arity(n->op, &min_in, &max_in, &required);
    if (n->n_in < min_in || n->n_in > max_in)
        return EGC_CPU_FAIL(EGC_E_ARG, n, "has %d inputs (expected %d to %d)", n->n_in, min_in,
                            max_in);
    if (required < 0) required = n->n_in;
    for (int i = 0; i < n->n_in; i++) {
        if (i < required && !in[i].ptr)
            return EGC_CPU_FAIL(EGC_E_ARG, n, "required input %d is missing", i);
        if (in[i].ptr) EGC_TRY(check_view(n, &in[i], "input", i));
    }
    if (!out->ptr) return EGC_CPU_FAIL(EGC_E_ARG, n, "output pointer is NULL");
    EGC_TRY(check_view(n, out, "output", 0));
    (void)g;
    return EGC_OK;
}

egc_status egc_cpu_conv_forward_checked(const egc_graph *g, const egc_node *n,
                                        const egc_view *in, const egc_view *out,
                                        const egc_cpu_act *act)
{
    EGC_TRY(check_node(g, n, in, out));
    if (n->op != EGC_OP_CONV) return EGC_CPU_FAIL(EGC_E_INTERNAL, n, "not a Conv");
    return egc_cpu_conv_forward_act(n, in, out, act);
}

egc_status egc_cpu_forward(const egc_graph *g, const egc_node *n, const egc_view *in,
                           const egc_view *out)
{
    EGC_TRY(check_node(g, n, in, out));
    switch (n->op) {
    case EGC_OP_CONV: return egc_cpu_conv_forward(n, in, out);
    case EGC_OP_GEMM: return egc_cpu_gemm_forward(n, in, out);
    case EGC_OP_MATMUL: return egc_cpu_matmul_forward(n, in, out);
    case EGC_OP_RELU:
    case EGC_OP_CLIP:
    case EGC_OP_SIGMOID:
    case EGC_OP_SQRT:
    case EGC_OP_ERF:
    case EGC_OP_EXP:
    case EGC_OP_LOG:
    case EGC_OP_SOFTPLUS:
    case EGC_OP_FAKE_QUANT: return egc_cpu_unary_forward(n, in, out);
    case EGC_OP_ADD:
    case EGC_OP_SUB:
    case EGC_OP_MUL:
    case EGC_OP_DIV: return egc_cpu_binary_forward(n, in, out);
    case EGC_OP_MAXPOOL: return egc_cpu_maxpool_forward(n, in, out);
    case EGC_OP_AVGPOOL: return egc_cpu_avgpool_forward(n, in, out);
    case EGC_OP_GAP: return egc_cpu_gap_forward(n, in, out);
    case EGC_OP_BATCHNORM: return egc_cpu_batchnorm_forward(n, in, out);
    case EGC_OP_RESHAPE: return egc_cpu_reshape_forward(n, in, out);
    case EGC_OP_CONCAT: return egc_cpu_concat_forward(n, in, out);
    case EGC_OP_SLICE: return egc_cpu_slice_forward(n, in, out);
    case EGC_OP_PAD: return egc_cpu_pad_forward(n, in, out);
    case EGC_OP_SOFTMAX: return egc_cpu_softmax_forward(n, in, out);
    case EGC_OP_TRANSPOSE: return egc_cpu_transpose_forward(n, in, out);
    default: break;
    }
    return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n, "no CPU forward for this op");
}

egc_status egc_cpu_backward(const egc_graph *g, const egc_node *n, const egc_view *in,
                            const egc_view *out, const egc_view *dout, const egc_view *din)
{
    EGC_TRY(check_node(g, n, in, out));
    if (!dout || !dout->ptr) return EGC_CPU_FAIL(EGC_E_ARG, n, "output gradient is missing");
    if (!din) return EGC_CPU_FAIL(EGC_E_ARG, n, "input gradient views are NULL");
    if (!egc_shape_equal(&dout->shape, &out->shape)) {
        char a[96], b[96];
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "output gradient shape %s differs from output %s",
                            egc_shape_str(&dout->shape, a, sizeof a),
                            egc_shape_str(&out->shape, b, sizeof b));
    }
    int any = 0;
    for (int i = 0; i < n->n_in; i++) {
        if (!din[i].ptr) continue;
        if (!in[i].ptr)
            return EGC_CPU_FAIL(EGC_E_ARG, n, "gradient wanted for omitted input %d", i);
        if (!egc_shape_equal(&din[i].shape, &in[i].shape)) {
            char a[96], b[96];
            return EGC_CPU_FAIL(EGC_E_SHAPE, n, "gradient %d shape %s differs from input %s", i,
                                egc_shape_str(&din[i].shape, a, sizeof a),
                                egc_shape_str(&in[i].shape, b, sizeof b));
        }
        any = 1;
    }
    if (!any) return EGC_OK;
    switch (n->op) {
    case EGC_OP_CONV: return egc_cpu_conv_backward(n, in, out, dout, din);
    case EGC_OP_GEMM: return egc_cpu_gemm_backward(n, in, out, dout, din);
    case EGC_OP_MATMUL: return egc_cpu_matmul_backward(n, in, out, dout, din);
    case EGC_OP_RELU:
    case EGC_OP_CLIP:
    case EGC_OP_SIGMOID:
    case EGC_OP_SQRT:
    case EGC_OP_ERF:
    case EGC_OP_EXP:
    case EGC_OP_LOG:
    case EGC_OP_SOFTPLUS:
    case EGC_OP_FAKE_QUANT: return egc_cpu_unary_backward(n, in, out, dout, din);
    case EGC_OP_ADD:
    case EGC_OP_SUB:
    case EGC_OP_MUL:
    case EGC_OP_DIV: return egc_cpu_binary_backward(n, in, out, dout, din);
    case EGC_OP_MAXPOOL: return egc_cpu_maxpool_backward(n, in, out, dout, din);
    case EGC_OP_AVGPOOL: return egc_cpu_avgpool_backward(n, in, out, dout, din);
    case EGC_OP_GAP: return egc_cpu_gap_backward(n, in, out, dout, din);
    case EGC_OP_BATCHNORM: return egc_cpu_batchnorm_backward(n, in, out, dout, din);
    case EGC_OP_RESHAPE: return egc_cpu_reshape_backward(n, in, out, dout, din);
    case EGC_OP_CONCAT: return egc_cpu_concat_backward(n, in, out, dout, din);
    case EGC_OP_SLICE: return egc_cpu_slice_backward(n, in, out, dout, din);
    case EGC_OP_PAD: return egc_cpu_pad_backward(n, in, out, dout, din);
    case EGC_OP_SOFTMAX: return egc_cpu_softmax_backward(n, in, out, dout, din);
    case EGC_OP_TRANSPOSE: return egc_cpu_transpose_backward(n, in, out, dout, din);
    default: break;
    }
    return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n, "no CPU backward for this op");
}

/* shape_ops.c: data-movement ops on the CPU, forward and activation backward:
 *   Reshape/Flatten  a copy; the output view's shape is authoritative (numel must match)
 *   Concat           along axis (negative counts from the end)
 *   Slice            starts/ends/axes/steps resolved by egc_slice_resolve (negative steps too)
 *   Pad              constant / reflect / edge over every dim; negative pads crop
 *   Transpose        out.d[i] = in.d[perm[i]] (no perm: reversed dims)
 * Backward of each is the adjoint copy: din += (the part of dout that came from the input);
 * for edge/reflect Pad several outputs read one input, and their gradients are summed. */
#include <string.h>

#include "cpu/cpu_impl.h"

static egc_status same_numel(const egc_node *n, const egc_view *in, const egc_view *out)
{
    if (egc_shape_numel(&in[0].shape) != egc_shape_numel(&out->shape)) {
        char a[96], b[96];
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "input %s and output %s differ in element count",
                            egc_shape_str(&in[0].shape, a, sizeof a),
                            egc_shape_str(&out->shape, b, sizeof b));
    }
    return EGC_OK;
}

/* ---- Reshape ---- */

egc_status egc_cpu_reshape_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    EGC_TRY(same_numel(n, in, out));
    if (out->ptr != in[0].ptr)
        memmove(out->ptr, in[0].ptr, (size_t)egc_shape_numel(&out->shape) * sizeof(float));
    return EGC_OK;
}

egc_status egc_cpu_reshape_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                    const egc_view *dout, const egc_view *din)
{
    EGC_TRY(same_numel(n, in, out));
    /* A second (shape) input is integer data: it has no gradient. */
    if (!din[0].ptr) return EGC_OK;
    int64_t cnt = egc_shape_numel(&out->shape);
    for (int64_t i = 0; i < cnt; i++) din[0].ptr[i] += dout->ptr[i];
    return EGC_OK;
}

/* ---- Concat ---- */

static egc_status concat_setup(const egc_node *n, const egc_view *in, const egc_view *out,
                               int *axis_out, int64_t *outer, int64_t *inner)
{
    const egc_shape *y = &out->shape;
    int r = y->ndim, axis = n->p.axis.axis;
    char a[96], b[96];
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "axis %d out of range for output %s", n->p.axis.axis,
                            egc_shape_str(y, a, sizeof a));
    int64_t total = 0;
    for (int k = 0; k < n->n_in; k++) {
        const egc_shape *x = &in[k].shape;
        int ok = x->ndim == r;
        for (int d = 0; ok && d < r; d++) ok = d == axis || x->d[d] == y->d[d];
        if (!ok)
            return EGC_CPU_FAIL(EGC_E_SHAPE, n, "input %d %s does not fit output %s on axis %d", k,
                                egc_shape_str(x, a, sizeof a), egc_shape_str(y, b, sizeof b), axis);
        total += x->d[axis];
    }
    if (total != y->d[axis])
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "inputs sum to %lld along axis %d, output %s has %lld",
                            (long long)total, axis, egc_shape_str(y, a, sizeof a),
                            (long long)y->d[axis]);
    *axis_out = axis;
    *outer = egc_cpu_dims_prod(y, 0, axis);
    *inner = egc_cpu_dims_prod(y, axis + 1, r);
    return EGC_OK;
}

egc_status egc_cpu_concat_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    int axis;
    int64_t outer, inner;
    EGC_TRY(concat_setup(n, in, out, &axis, &outer, &inner));
    int64_t yrow = out->shape.d[axis] * inner, off = 0;
    for (int k = 0; k < n->n_in; k++) {
        int64_t xrow = in[k].shape.d[axis] * inner;
        for (int64_t o = 0; o < outer; o++)
            memcpy(out->ptr + o * yrow + off, in[k].ptr + o * xrow, (size_t)xrow * sizeof(float));
        off += xrow;
    }
    return EGC_OK;
}

egc_status egc_cpu_concat_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                   const egc_view *dout, const egc_view *din)
{
    int axis;
    int64_t outer, inner;
    EGC_TRY(concat_setup(n, in, out, &axis, &outer, &inner));
    int64_t yrow = out->shape.d[axis] * inner, off = 0;
    for (int k = 0; k < n->n_in; k++) {
        int64_t xrow = in[k].shape.d[axis] * inner;
        if (din[k].ptr)
            for (int64_t o = 0; o < outer; o++) {
                const float *g = dout->ptr + o * yrow + off;
                float *dx = din[k].ptr + o * xrow;
                for (int64_t i = 0; i < xrow; i++) dx[i] += g[i];
            }
        off += xrow;
    }
    return EGC_OK;
}

/* ---- Slice ---- */

/* Input offset of the first output element and input strides per output dim. */
static egc_status slice_setup(const egc_node *n, const egc_view *in, const egc_view *out,
                              int64_t *base, int64_t *st)
{
    const egc_slice_params *p = &n->p.slice;
    const egc_shape *x = &in[0].shape;
    char a[96], b[96], c[96];
    if (p->n < 0 || p->n > EGC_MAX_DIMS)
        return EGC_CPU_FAIL(EGC_E_ARG, n, "%d sliced axes", p->n);
    for (int i = 0; i < p->n; i++) {
        int64_t ax = p->axes[i] < 0 ? p->axes[i] + x->ndim : p->axes[i];
        if (ax < 0 || ax >= x->ndim)
            return EGC_CPU_FAIL(EGC_E_SHAPE, n, "axis %lld out of range for input %s",
                                (long long)p->axes[i], egc_shape_str(x, a, sizeof a));
        if (p->steps[i] == 0) return EGC_CPU_FAIL(EGC_E_ARG, n, "step 0 on axis %lld", (long long)ax);
    }
    int64_t start[EGC_MAX_DIMS], step[EGC_MAX_DIMS], ist[EGC_MAX_DIMS];
    egc_shape want;
    egc_slice_resolve(p, x, start, step, &want);
    if (!egc_shape_equal(&want, &out->shape))
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "output %s, the slice of %s is %s",
                            egc_shape_str(&out->shape, a, sizeof a), egc_shape_str(x, b, sizeof b),
                            egc_shape_str(&want, c, sizeof c));
    egc_cpu_strides(x, ist);
    *base = 0;
    for (int d = 0; d < x->ndim; d++) {
        *base += start[d] * ist[d];
        st[d] = step[d] * ist[d];
    }
    return EGC_OK;
}

egc_status egc_cpu_slice_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    int64_t base, st[EGC_MAX_DIMS], ost[EGC_MAX_DIMS];
    EGC_TRY(slice_setup(n, in, out, &base, st));
    egc_cpu_strides(&out->shape, ost);
    egc_cpu_strided_move(&out->shape, in[0].ptr, base, st, out->ptr, 0, ost, 0);
    return EGC_OK;
}

egc_status egc_cpu_slice_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                  const egc_view *dout, const egc_view *din)
{
    int64_t base, st[EGC_MAX_DIMS], ost[EGC_MAX_DIMS];
    EGC_TRY(slice_setup(n, in, out, &base, st));
    if (!din[0].ptr) return EGC_OK; /* other inputs are integer parameters */
    egc_cpu_strides(&out->shape, ost);
    egc_cpu_strided_move(&out->shape, dout->ptr, 0, ost, din[0].ptr, base, st, 1);
    return EGC_OK;
}

/* ---- Pad ---- */

static egc_status pad_setup(const egc_node *n, const egc_view *in, const egc_view *out)
{
    const egc_pad_params *p = &n->p.pad;
    const egc_shape *x = &in[0].shape, *y = &out->shape;
    char a[96], b[96];
    if (p->mode != EGC_PAD_CONSTANT && p->mode != EGC_PAD_REFLECT && p->mode != EGC_PAD_EDGE)
        return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n, "pad mode %d", p->mode);
    if (p->n != x->ndim || y->ndim != x->ndim)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "pads given for rank %d, input %s, output %s", p->n,
                            egc_shape_str(x, a, sizeof a), egc_shape_str(y, b, sizeof b));
    for (int d = 0; d < x->ndim; d++) {
        if (x->d[d] + p->pads[d] + p->pads[x->ndim + d] != y->d[d])
            return EGC_CPU_FAIL(EGC_E_SHAPE, n, "output %s does not match input %s padded by "
                                "%lld/%lld on dim %d",
                                egc_shape_str(y, a, sizeof a), egc_shape_str(x, b, sizeof b),
                                (long long)p->pads[d], (long long)p->pads[x->ndim + d], d);
        int64_t kept = x->d[d] - EGC_MAX(-p->pads[d], 0) - EGC_MAX(-p->pads[x->ndim + d], 0);
        if (p->mode != EGC_PAD_CONSTANT && kept <= 0 && y->d[d] > 0)
            return EGC_CPU_FAIL(EGC_E_SHAPE, n, "cannot %s-pad dim %d of %s: nothing left after "
                                "cropping",
                                p->mode == EGC_PAD_EDGE ? "edge" : "reflect", d,
                                egc_shape_str(x, a, sizeof a));
    }
    return EGC_OK;
}

/* Input index read by output index o along a dim of length len with pads begin/end, or -1
 * when the output is the constant. As in onnxruntime, negative pads first crop the input and
 * the padding then extends (edge) or mirrors (reflect) what is left. */
static int64_t pad_src(int mode, int64_t o, int64_t begin, int64_t end, int64_t len)
{
    int64_t crop0 = begin < 0 ? -begin : 0, crop1 = end < 0 ? -end : 0;
    int64_t kept = len - crop0 - crop1;
    int64_t i = o - (begin > 0 ? begin : 0); /* index into the kept part */
    if (i >= 0 && i < kept) return crop0 + i;
    if (mode == EGC_PAD_CONSTANT || kept <= 0) return -1;
    if (mode == EGC_PAD_EDGE) return crop0 + (i < 0 ? 0 : kept - 1);
    if (kept == 1) return crop0;
    /* reflect without repeating the edge (period 2*(kept-1)), like numpy for wide pads */
    int64_t period = 2 * (kept - 1);
    i %= period;
    if (i < 0) i += period;
    return crop0 + (i < kept ? i : period - i);
}

/* forward: y = pad(x); backward: dx += pad^T(dy). */
static void pad_walk(const egc_node *n, const egc_shape *xs, const egc_shape *ys, const float *x,
                     float *y, const float *dy, float *dx)
{
    const egc_pad_params *p = &n->p.pad;
    int nd = ys->ndim;
    int64_t total = egc_shape_numel(ys);
    if (total == 0) return;
    int64_t xst[EGC_MAX_DIMS];
    egc_cpu_strides(xs, xst);
    if (nd == 0) {
        if (y) y[0] = x[0];
        else dx[0] += dy[0];
        return;
    }
    int64_t idx[EGC_MAX_DIMS] = {0};
    int64_t inner = ys->d[nd - 1], ibeg = p->pads[nd - 1], iend = p->pads[2 * nd - 1];
    int64_t ilen = xs->d[nd - 1];
    for (int64_t yo = 0; yo < total; yo += inner) {
        /* Source offset of the outer dims, or -1 when any of them reads the constant. */
        int64_t base = 0;
        for (int d = 0; d < nd - 1 && base >= 0; d++) {
            int64_t s = pad_src(p->mode, idx[d], p->pads[d], p->pads[nd + d], xs->d[d]);
            base = s < 0 ? -1 : base + s * xst[d];
        }
        for (int64_t k = 0; k < inner; k++) {
            int64_t s = base < 0 ? -1 : pad_src(p->mode, k, ibeg, iend, ilen);
            if (y) y[yo + k] = s < 0 ? p->value : x[base + s];
            else if (s >= 0) dx[base + s] += dy[yo + k];
        }
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < ys->d[d]) break;
            idx[d] = 0;
        }
    }
}

egc_status egc_cpu_pad_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    EGC_TRY(pad_setup(n, in, out));
    pad_walk(n, &in[0].shape, &out->shape, in[0].ptr, out->ptr, NULL, NULL);
    return EGC_OK;
}

egc_status egc_cpu_pad_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                const egc_view *dout, const egc_view *din)
{
    EGC_TRY(pad_setup(n, in, out));
    if (!din[0].ptr) return EGC_OK; /* other inputs are pads/value parameters */
    pad_walk(n, &in[0].shape, &out->shape, NULL, NULL, dout->ptr, din[0].ptr);
    return EGC_OK;
}

/* ---- Transpose ---- */

/* Input strides per output dim. */
static egc_status transpose_setup(const egc_node *n, const egc_view *in, const egc_view *out,
                                  int64_t *st)
{
    const egc_transpose_params *p = &n->p.transpose;
    const egc_shape *x = &in[0].shape;
    int r = x->ndim, perm[EGC_MAX_DIMS], seen[EGC_MAX_DIMS] = {0};
    char a[96], b[96];
    if (p->n == 0) {
        for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
    } else {
        if (p->n != r)
            return EGC_CPU_FAIL(EGC_E_SHAPE, n, "perm has %d entries for input %s", p->n,
                                egc_shape_str(x, a, sizeof a));
        for (int i = 0; i < r; i++) {
            perm[i] = p->perm[i];
            if (perm[i] < 0 || perm[i] >= r || seen[perm[i]]++)
                return EGC_CPU_FAIL(EGC_E_ARG, n, "perm is not a permutation of 0..%d", r - 1);
        }
    }
    int64_t ist[EGC_MAX_DIMS];
    egc_cpu_strides(x, ist);
    int ok = out->shape.ndim == r;
    for (int i = 0; ok && i < r; i++) ok = out->shape.d[i] == x->d[perm[i]];
    if (!ok)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "output %s is not the transpose of %s",
                            egc_shape_str(&out->shape, a, sizeof a), egc_shape_str(x, b, sizeof b));
    for (int i = 0; i < r; i++) st[i] = ist[perm[i]];
    return EGC_OK;
}

egc_status egc_cpu_transpose_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    int64_t st[EGC_MAX_DIMS], ost[EGC_MAX_DIMS];
    EGC_TRY(transpose_setup(n, in, out, st));
    egc_cpu_strides(&out->shape, ost);
    egc_cpu_strided_move(&out->shape, in[0].ptr, 0, st, out->ptr, 0, ost, 0);
    return EGC_OK;
}

egc_status egc_cpu_transpose_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                      const egc_view *dout, const egc_view *din)
{
    int64_t st[EGC_MAX_DIMS], ost[EGC_MAX_DIMS];
    EGC_TRY(transpose_setup(n, in, out, st));
    egc_cpu_strides(&out->shape, ost);
    egc_cpu_strided_move(&out->shape, dout->ptr, 0, ost, din[0].ptr, 0, st, 1);
    return EGC_OK;
}

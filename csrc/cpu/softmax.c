/* softmax.c: Softmax on the CPU, forward and activation backward.
 *
 * Opset >= 13 (p.axis.legacy == 0): softmax along one axis; X viewed as [outer, D, inner].
 * Before opset 13 (legacy == 1): X is coerced to 2-D [prod(d[0..axis)), prod(d[axis..])] and
 * softmax runs along the second dim, i.e. over all dims from axis on.
 *   y_j = exp(x_j - max x) / sum_k exp(x_k - max x)
 *   dx_j += y_j * (dy_j - sum_k dy_k y_k) */
#include <math.h>

#include "cpu/cpu_impl.h"

static egc_status softmax_setup(const egc_node *n, const egc_view *in, const egc_view *out,
                                int64_t *outer, int64_t *D, int64_t *inner)
{
    const egc_shape *x = &in[0].shape;
    char a[96], b[96];
    if (!egc_shape_equal(x, &out->shape))
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "output %s differs from input %s",
                            egc_shape_str(&out->shape, a, sizeof a), egc_shape_str(x, b, sizeof b));
    int r = x->ndim, axis = n->p.axis.axis;
    if (axis < 0) axis += r;
    if (r == 0 || axis < 0 || axis >= r)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "axis %d out of range for input %s", n->p.axis.axis,
                            egc_shape_str(x, a, sizeof a));
    *outer = egc_cpu_dims_prod(x, 0, axis);
    if (n->p.axis.legacy) {
        *D = egc_cpu_dims_prod(x, axis, r);
        *inner = 1;
    } else {
        *D = x->d[axis];
        *inner = egc_cpu_dims_prod(x, axis + 1, r);
    }
    return EGC_OK;
}

egc_status egc_cpu_softmax_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    int64_t outer, D, inner;
    EGC_TRY(softmax_setup(n, in, out, &outer, &D, &inner));
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *x = in[0].ptr + o * D * inner + i;
            float *y = out->ptr + o * D * inner + i;
            if (D == 0) continue;
            float m = x[0];
            for (int64_t j = 1; j < D; j++) m = x[j * inner] > m ? x[j * inner] : m;
            double s = 0.0;
            for (int64_t j = 0; j < D; j++) {
                float e = expf(x[j * inner] - m);
                y[j * inner] = e;
                s += e;
            }
            float inv = (float)(1.0 / s);
            for (int64_t j = 0; j < D; j++) y[j * inner] *= inv;
        }
    return EGC_OK;
}

egc_status egc_cpu_softmax_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                    const egc_view *dout, const egc_view *din)
{
    int64_t outer, D, inner;
    EGC_TRY(softmax_setup(n, in, out, &outer, &D, &inner));
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * D * inner + i;
            const float *y = out->ptr + base, *g = dout->ptr + base;
            float *dx = din[0].ptr + base;
            double dot = 0.0;
            for (int64_t j = 0; j < D; j++) dot += (double)g[j * inner] * y[j * inner];
            for (int64_t j = 0; j < D; j++) dx[j * inner] += y[j * inner] * (g[j * inner] - (float)dot);
        }
    return EGC_OK;
}

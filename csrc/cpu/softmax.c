/* softmax.c: Softmax on the CPU, forward and activation backward.
 *
 * Opset >= 13 (p.axis.legacy == 0): softmax along one axis; X viewed as [outer, D, inner].
 * Before opset 13 (legacy == 1): X is coerced to 2-D [prod(d[0..axis)), prod(d[axis..])] and
 * softmax runs along the second dim, i.e. over all dims from axis on.
 *   y_j = exp(x_j - max x) / sum_k exp(x_k - max x)
 *   dx_j += y_j * (dy_j - sum_k dy_k y_k)
 * exp by a vectorizable polynomial (exp_poly.h: within 2 ulp), the sums in double; rows run
 * in parallel. */
#include "cpu/cpu_impl.h"
#include "cpu/exp_poly.h"

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

/* One call's rows (outer x inner of them, each D values inner apart), cut into ranges that
 * run in parallel. */
typedef struct softmax_job {
    const float *x, *y, *dy;
    float *out; /* forward: y; backward: dx (accumulated) */
    int64_t D, inner, rows;
    int chunks;
} softmax_job;

static void softmax_fwd_chunk(int64_t k, void *arg)
{
    const softmax_job *j = (const softmax_job *)arg;
    const int64_t D = j->D, inner = j->inner;
    for (int64_t r = j->rows * k / j->chunks, e = j->rows * (k + 1) / j->chunks; r < e; r++) {
        const int64_t o = r / inner, i = r % inner;
        const float *x = j->x + o * D * inner + i;
        float *y = j->out + o * D * inner + i;
        float m = x[0];
        for (int64_t t = 1; t < D; t++) m = x[t * inner] > m ? x[t * inner] : m;
        if (inner == 1) /* contiguous: vectorizes */
            for (int64_t t = 0; t < D; t++) y[t] = egc_exp_nonpos_any(x[t] - m);
        else
            for (int64_t t = 0; t < D; t++) y[t * inner] = egc_exp_nonpos_any(x[t * inner] - m);
        double s = 0.0;
        for (int64_t t = 0; t < D; t++) s += y[t * inner];
        const float inv = (float)(1.0 / s);
        for (int64_t t = 0; t < D; t++) y[t * inner] *= inv;
    }
}

static void softmax_bwd_chunk(int64_t k, void *arg)
{
    const softmax_job *j = (const softmax_job *)arg;
    const int64_t D = j->D, inner = j->inner;
    for (int64_t r = j->rows * k / j->chunks, e = j->rows * (k + 1) / j->chunks; r < e; r++) {
        const int64_t base = (r / inner) * D * inner + r % inner;
        const float *y = j->y + base, *g = j->dy + base;
        float *dx = j->out + base;
        double dot = 0.0;
        for (int64_t t = 0; t < D; t++) dot += (double)g[t * inner] * y[t * inner];
        const float d = (float)dot;
        for (int64_t t = 0; t < D; t++) dx[t * inner] += y[t * inner] * (g[t * inner] - d);
    }
}

egc_status egc_cpu_softmax_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    int64_t outer = 0, D = 0, inner = 1;
    EGC_TRY(softmax_setup(n, in, out, &outer, &D, &inner));
    if (D == 0) return EGC_OK;
    softmax_job j = {in[0].ptr, NULL, NULL, out->ptr, D, inner, outer * inner, 1};
    j.chunks = egc_cpu_chunks(j.rows, 8 * D);
    egc_parallel_for(j.chunks, softmax_fwd_chunk, &j);
    return EGC_OK;
}

egc_status egc_cpu_softmax_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                    const egc_view *dout, const egc_view *din)
{
    int64_t outer = 0, D = 0, inner = 1;
    EGC_TRY(softmax_setup(n, in, out, &outer, &D, &inner));
    if (D == 0 || !din[0].ptr) return EGC_OK;
    softmax_job j = {NULL, out->ptr, dout->ptr, din[0].ptr, D, inner, outer * inner, 1};
    j.chunks = egc_cpu_chunks(j.rows, 4 * D);
    egc_parallel_for(j.chunks, softmax_bwd_chunk, &j);
    return EGC_OK;
}

/* pool.c: MaxPool, AveragePool (2-D spatial, X [N,C,H,W]) and GlobalAveragePool on the CPU,
 * forward and activation backward.
 *
 * Output sizes come from the output view (shape inference decides ceil_mode's last window);
 * they are checked to lie between the floor and the ceil formula of ONNX. Window semantics
 * follow onnxruntime's CPU kernels:
 *   MaxPool: window rows h = oh*sh - pt + i*dh (i < kh), only in-range positions compete
 *     (padding never wins); the first maximum in row-major window order is taken, and the
 *     backward sends dy there (as PyTorch does). A window with no in-range position gives
 *     -FLT_MAX and no gradient.
 *   AveragePool: hstart = oh*sh - pt, hend = min(hstart + kh*dh, H + pb); positions
 *     hstart, hstart+dh, ... < hend that are in range are summed. The divisor is the number
 *     of those in-range positions (count_include_pad = 0) or the number of positions in
 *     [hstart, hend) x [wstart, wend), padding included (count_include_pad = 1), so a
 *     ceil_mode window running past the end padding is not charged for the overhang. A
 *     window with no in-range position gives 0.
 *   GlobalAveragePool: mean over every dim after the channel dim. */
#include <float.h>
#include <string.h>

#include "cpu/cpu_impl.h"

typedef struct pool_geom {
    int64_t N, C, H, W, OH, OW;
    egc_pool_params p;
} pool_geom;

static egc_status pool_setup(const egc_node *n, const egc_view *in, const egc_view *out,
                             pool_geom *g)
{
    const egc_shape *x = &in[0].shape, *y = &out->shape;
    char a[96], b[96];
    if (x->ndim != 4)
        return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n,
                            "input %s: only 2-D spatial pooling of [N,C,H,W] is supported",
                            egc_shape_str(x, a, sizeof a));
    g->p = n->p.pool;
    const egc_pool_params *p = &g->p;
    if (p->kh < 1 || p->kw < 1 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1 || p->pt < 0 ||
        p->pl < 0 || p->pb < 0 || p->pr < 0)
        return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n,
                            "invalid kernel %dx%d, strides %dx%d, dilations %dx%d or pads "
                            "%d,%d,%d,%d",
                            p->kh, p->kw, p->sh, p->sw, p->dh, p->dw, p->pt, p->pl, p->pb, p->pr);
    g->N = x->d[0];
    g->C = x->d[1];
    g->H = x->d[2];
    g->W = x->d[3];
    if (y->ndim != 4 || y->d[0] != g->N || y->d[1] != g->C)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "output %s does not match input %s",
                            egc_shape_str(y, a, sizeof a), egc_shape_str(x, b, sizeof b));
    g->OH = y->d[2];
    g->OW = y->d[3];
    /* floor and ceil of (in + pads - ((k-1)*d + 1)) / s + 1 */
    int64_t eh = g->H + p->pt + p->pb - ((int64_t)(p->kh - 1) * p->dh + 1);
    int64_t ew = g->W + p->pl + p->pr - ((int64_t)(p->kw - 1) * p->dw + 1);
    if (eh < 0 || ew < 0)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "window %dx%d (dilation %dx%d) larger than padded input %s",
                            p->kh, p->kw, p->dh, p->dw, egc_shape_str(x, a, sizeof a));
    int64_t fh = eh / p->sh + 1, ch = (eh + p->sh - 1) / p->sh + 1;
    int64_t fw = ew / p->sw + 1, cw = (ew + p->sw - 1) / p->sw + 1;
    if (g->OH < fh || g->OH > ch || g->OW < fw || g->OW > cw)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n,
                            "output %s: spatial size must be between %lldx%lld and %lldx%lld",
                            egc_shape_str(y, a, sizeof a), (long long)fh, (long long)fw,
                            (long long)ch, (long long)cw);
    return EGC_OK;
}

/* Work for one call, split into chunks of planes (one plane = one (n, c) pair). */
typedef struct pool_job {
    const pool_geom *g;
    const float *x, *dy;
    float *y, *dx;
    int64_t planes;
    int chunks;
    int backward;
} pool_job;

static void chunk_range(int64_t total, int chunks, int64_t k, int64_t *lo, int64_t *hi)
{
    *lo = total * k / chunks;
    *hi = total * (k + 1) / chunks;
}

/* ---- MaxPool ---- */

/* Index (h*W + w) of the first maximum of window (oh, ow), or -1 when it has no in-range
 * position; *best gets the maximum. */
static int64_t max_window(const pool_geom *g, const float *x, int64_t oh, int64_t ow, float *best)
{
    const egc_pool_params *p = &g->p;
    int64_t hs = oh * p->sh - p->pt, ws = ow * p->sw - p->pl, arg = -1;
    float m = -FLT_MAX;
    for (int i = 0; i < p->kh; i++) {
        int64_t h = hs + (int64_t)i * p->dh;
        if (h < 0 || h >= g->H) continue;
        for (int j = 0; j < p->kw; j++) {
            int64_t w = ws + (int64_t)j * p->dw;
            if (w < 0 || w >= g->W) continue;
            float v = x[h * g->W + w];
            if (arg < 0 || v > m) {
                m = v;
                arg = h * g->W + w;
            }
        }
    }
    *best = m;
    return arg;
}

/* Output columns [a, b) of output row oh whose windows lie inside x (every tap in range):
 * the first maximum in row-major window order, as max_window finds it (the first tap, then
 * each later one that is greater), without the bounds checks and the index. */
static void max_row_interior(const pool_geom *g, const float *x, int64_t oh, int64_t a,
                             int64_t b, float *yr)
{
    const egc_pool_params *p = &g->p;
    const int64_t sw = p->sw, dw = p->dw, rs = (int64_t)p->dh * g->W;
    const float *x0 = x + (oh * p->sh - p->pt) * g->W - p->pl;
    if (p->kh == 3 && p->kw == 3 && dw == 1) { /* ResNet's 3x3 (stride 2) and VGG's 2x2 below */
        for (int64_t ow = a; ow < b; ow++) {
            const float *c = x0 + ow * sw;
            float m = c[0], v;
            v = c[1]; m = v > m ? v : m;
            v = c[2]; m = v > m ? v : m;
            v = c[rs]; m = v > m ? v : m;
            v = c[rs + 1]; m = v > m ? v : m;
            v = c[rs + 2]; m = v > m ? v : m;
            v = c[2 * rs]; m = v > m ? v : m;
            v = c[2 * rs + 1]; m = v > m ? v : m;
            v = c[2 * rs + 2]; m = v > m ? v : m;
            yr[ow] = m;
        }
        return;
    }
    if (p->kh == 2 && p->kw == 2 && dw == 1) {
        for (int64_t ow = a; ow < b; ow++) {
            const float *c = x0 + ow * sw;
            float m = c[0], v;
            v = c[1]; m = v > m ? v : m;
            v = c[rs]; m = v > m ? v : m;
            v = c[rs + 1]; m = v > m ? v : m;
            yr[ow] = m;
        }
        return;
    }
    for (int64_t ow = a; ow < b; ow++) {
        const float *c = x0 + ow * sw;
        float m = c[0];
        for (int i = 0; i < p->kh; i++)
            for (int jj = 0; jj < p->kw; jj++) {
                float v = c[i * rs + jj * dw];
                if (v > m) m = v;
            }
        yr[ow] = m;
    }
}

/* Output columns [a, b) of output row oh, each window checked (max_window). */
static void max_cols_checked(const pool_geom *g, const float *x, int64_t oh, int64_t a,
                             int64_t b, float *yr)
{
    for (int64_t ow = a; ow < b; ow++) (void)max_window(g, x, oh, ow, &yr[ow]);
}

/* Output columns [*a, *b) whose windows lie inside x: ow*sw - pl >= 0 and
 * ow*sw - pl + (kw-1)*dw < W (an empty range when none). */
static void interior_cols(const pool_geom *g, int64_t *a, int64_t *b)
{
    const egc_pool_params *p = &g->p;
    int64_t span = (int64_t)(p->kw - 1) * p->dw;
    *a = (p->pl + p->sw - 1) / p->sw;
    int64_t last = g->W - 1 - span + p->pl; /* ow*sw <= last */
    *b = last < 0 ? 0 : EGC_MIN(g->OW, last / p->sw + 1);
    if (*b < *a) *b = *a = 0;
}

static void maxpool_chunk(int64_t k, void *arg)
{
    const pool_job *j = (const pool_job *)arg;
    const pool_geom *g = j->g;
    int64_t lo, hi;
    chunk_range(j->planes, j->chunks, k, &lo, &hi);
    int64_t in_plane = g->H * g->W, out_plane = g->OH * g->OW;
    if (!j->backward) {
        int64_t ca, cb;
        interior_cols(g, &ca, &cb);
        const int64_t span = (int64_t)(g->p.kh - 1) * g->p.dh;
        for (int64_t pl = lo; pl < hi; pl++) {
            const float *x = j->x + pl * in_plane;
            for (int64_t oh = 0; oh < g->OH; oh++) {
                float *yr = j->y + pl * out_plane + oh * g->OW;
                int64_t h0 = oh * g->p.sh - g->p.pt;
                int64_t a = ca, b = cb;
                if (h0 < 0 || h0 + span >= g->H) a = b = g->OW; /* a border row: all checked */
                max_cols_checked(g, x, oh, 0, a, yr);
                if (a < b) max_row_interior(g, x, oh, a, b, yr);
                max_cols_checked(g, x, oh, b, g->OW, yr);
            }
        }
        return;
    }
    for (int64_t pl = lo; pl < hi; pl++) {
        const float *x = j->x + pl * in_plane;
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) {
                float m;
                int64_t at = max_window(g, x, oh, ow, &m);
                int64_t o = pl * out_plane + oh * g->OW + ow;
                if (!j->backward) j->y[o] = m;
                else if (at >= 0) j->dx[pl * in_plane + at] += j->dy[o];
            }
    }
}

egc_status egc_cpu_maxpool_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    pool_geom g;
    EGC_TRY(pool_setup(n, in, out, &g));
    pool_job j = {&g, in[0].ptr, NULL, out->ptr, NULL, g.N * g.C, 0, 0};
    j.chunks = egc_cpu_chunks(j.planes, g.OH * g.OW * g.p.kh * g.p.kw);
    egc_parallel_for(j.chunks, maxpool_chunk, &j);
    return EGC_OK;
}

egc_status egc_cpu_maxpool_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                    const egc_view *dout, const egc_view *din)
{
    pool_geom g;
    EGC_TRY(pool_setup(n, in, out, &g));
    pool_job j = {&g, in[0].ptr, dout->ptr, NULL, din[0].ptr, g.N * g.C, 0, 1};
    j.chunks = egc_cpu_chunks(j.planes, g.OH * g.OW * g.p.kh * g.p.kw);
    egc_parallel_for(j.chunks, maxpool_chunk, &j);
    return EGC_OK;
}

/* ---- AveragePool ---- */

static void avgpool_chunk(int64_t k, void *arg)
{
    const pool_job *j = (const pool_job *)arg;
    const pool_geom *g = j->g;
    const egc_pool_params *p = &g->p;
    int64_t lo, hi;
    chunk_range(j->planes, j->chunks, k, &lo, &hi);
    int64_t in_plane = g->H * g->W, out_plane = g->OH * g->OW;
    for (int64_t pl = lo; pl < hi; pl++) {
        const float *x = j->x ? j->x + pl * in_plane : NULL;
        float *dx = j->dx ? j->dx + pl * in_plane : NULL;
        for (int64_t oh = 0; oh < g->OH; oh++) {
            int64_t hs = oh * p->sh - p->pt;
            int64_t he = EGC_MIN(hs + (int64_t)p->kh * p->dh, g->H + p->pb);
            for (int64_t ow = 0; ow < g->OW; ow++) {
                int64_t ws = ow * p->sw - p->pl;
                int64_t we = EGC_MIN(ws + (int64_t)p->kw * p->dw, g->W + p->pr);
                int64_t o = pl * out_plane + oh * g->OW + ow;
                int64_t count = 0;
                float sum = 0.0f;
                for (int64_t h = hs; h < he; h += p->dh) {
                    if (h < 0 || h >= g->H) continue;
                    for (int64_t w = ws; w < we; w += p->dw) {
                        if (w < 0 || w >= g->W) continue;
                        if (!j->backward) sum += x[h * g->W + w];
                        count++;
                    }
                }
                if (count == 0) {
                    if (!j->backward) j->y[o] = 0.0f;
                    continue;
                }
                int64_t div = count;
                if (p->count_include_pad)
                    div = (1 + (he - hs - 1) / p->dh) * (1 + (we - ws - 1) / p->dw);
                if (!j->backward) {
                    j->y[o] = sum / (float)div;
                    continue;
                }
                float gv = j->dy[o] / (float)div;
                for (int64_t h = hs; h < he; h += p->dh) {
                    if (h < 0 || h >= g->H) continue;
                    for (int64_t w = ws; w < we; w += p->dw)
                        if (w >= 0 && w < g->W) dx[h * g->W + w] += gv;
                }
            }
        }
    }
}

egc_status egc_cpu_avgpool_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    pool_geom g;
    EGC_TRY(pool_setup(n, in, out, &g));
    pool_job j = {&g, in[0].ptr, NULL, out->ptr, NULL, g.N * g.C, 0, 0};
    j.chunks = egc_cpu_chunks(j.planes, g.OH * g.OW * g.p.kh * g.p.kw);
    egc_parallel_for(j.chunks, avgpool_chunk, &j);
    return EGC_OK;
}

egc_status egc_cpu_avgpool_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                    const egc_view *dout, const egc_view *din)
{
    pool_geom g;
    EGC_TRY(pool_setup(n, in, out, &g));
    pool_job j = {&g, NULL, dout->ptr, NULL, din[0].ptr, g.N * g.C, 0, 1};
    j.chunks = egc_cpu_chunks(j.planes, g.OH * g.OW * g.p.kh * g.p.kw);
    egc_parallel_for(j.chunks, avgpool_chunk, &j);
    return EGC_OK;
}

/* ---- GlobalAveragePool ---- */

static egc_status gap_check(const egc_node *n, const egc_view *in, const egc_view *out)
{
    const egc_shape *x = &in[0].shape, *y = &out->shape;
    char a[96], b[96];
    int ok = x->ndim >= 3 && y->ndim == x->ndim && y->d[0] == x->d[0] && y->d[1] == x->d[1];
    for (int i = 2; ok && i < y->ndim; i++) ok = y->d[i] == 1;
    if (!ok)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "input %s and output %s are not [N,C,...] -> [N,C,1,...]",
                            egc_shape_str(x, a, sizeof a), egc_shape_str(y, b, sizeof b));
    return EGC_OK;
}

egc_status egc_cpu_gap_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    EGC_TRY(gap_check(n, in, out));
    const egc_shape *x = &in[0].shape;
    int64_t planes = x->d[0] * x->d[1], sz = egc_cpu_dims_prod(x, 2, x->ndim);
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = in[0].ptr + pl * sz;
        double s = 0.0;
        for (int64_t i = 0; i < sz; i++) s += xp[i];
        out->ptr[pl] = sz ? (float)(s / (double)sz) : 0.0f;
    }
    return EGC_OK;
}

egc_status egc_cpu_gap_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                const egc_view *dout, const egc_view *din)
{
    EGC_TRY(gap_check(n, in, out));
    const egc_shape *x = &in[0].shape;
    int64_t planes = x->d[0] * x->d[1], sz = egc_cpu_dims_prod(x, 2, x->ndim);
    if (sz == 0) return EGC_OK;
    for (int64_t pl = 0; pl < planes; pl++) {
        float gv = dout->ptr[pl] / (float)sz;
        float *dx = din[0].ptr + pl * sz;
        for (int64_t i = 0; i < sz; i++) dx[i] += gv;
    }
    return EGC_OK;
}

/* conv.c: 2-D convolution on the CPU (ONNX Conv), forward and the activation backward dX.
 *
 *   X [N,C,H,W], W [M,C/g,kh,kw], B [M] (optional)  ->  Y [N,M,OH,OW]
 *   OH = (H + pt + pb - dh*(kh-1) - 1) / sh + 1   (likewise OW)
 *   Y[n,m,oh,ow] = B[m] + sum_{c,i,j} W[m,c,i,j] * X[n, g(m)*C/g + c, oh*sh - pt + i*dh,
 *                                                     ow*sw - pl + j*dw]   (0 outside X)
 *
 * General case, per image, group and block of output positions: im2col into a scratch
 *   column matrix col [C/g*kh*kw, block], then Y_g[:, block] = W_g [M/g, C/g*kh*kw] * col
 *   (BLAS sgemm).
 * A 1x1 kernel with stride 1 and no padding uses X itself as the column matrix.
 * Backward: dcol = W_g^T * dY_g, then col2im adds dcol into dX (so dX accumulates).
 * Depthwise (group == C > 1, any channel multiplier): a direct loop, parallel over planes.
 * Gradients with respect to W and B are never computed (the engine needs activations only).
 *
 * Threading: the GEMM work is cut into units (image, group, block of output columns) that
 * egc_parallel_for runs in chunks, each chunk with its own scratch slot, while OpenBLAS is
 * held to one thread (no oversubscription). Measured on MobileNetV2's convolutions at 224 px
 * (16 cores, OpenBLAS 0.3.21 pthreads), this beat one image at a time with BLAS threading
 * by 1.6x at batch 8 (93 vs 152 ms forward) and 1.4x at batch 1 (28 vs 39 ms); with 4
 * threads, 1.45x at batch 8. When there are fewer units than threads, one chunk runs and
 * BLAS threads on its own. */
#include <cblas.h>
#include <pthread.h>
#include <string.h>

#include "cpu/cpu_impl.h"

typedef struct conv_geom {
    int64_t N, C, H, W, M, OH, OW;
    int64_t G, Cg, Mg;       /* groups, input / output channels per group */
    int64_t kh, kw, sh, sw, dh, dw, pt, pl;
    int64_t K, P;            /* Cg*kh*kw (column rows), OH*OW (column cols) */
    int pointwise;           /* 1x1, stride 1, no padding: X is its own column matrix */
    int depthwise;           /* Cg == 1 and G > 1: direct loop */
} conv_geom;

static egc_status conv_setup(const egc_node *n, const egc_view *in, const egc_view *out,
                             conv_geom *g)
{
    const egc_conv_params *p = &n->p.conv;
    const egc_shape *x = &in[0].shape, *w = &in[1].shape, *y = &out->shape;
    char a[96], b[96], c[96];
    if (x->ndim != 4 || w->ndim != 4)
        return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n,
                            "input %s, weight %s: only 2-D convolution of [N,C,H,W] is supported",
                            egc_shape_str(x, a, sizeof a), egc_shape_str(w, b, sizeof b));
    if (p->group < 1 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1 || p->pt < 0 ||
        p->pl < 0 || p->pb < 0 || p->pr < 0)
        return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n,
                            "invalid group %d, strides %dx%d, dilations %dx%d or pads %d,%d,%d,%d",
                            p->group, p->sh, p->sw, p->dh, p->dw, p->pt, p->pl, p->pb, p->pr);
    g->N = x->d[0];
    g->C = x->d[1];
    g->H = x->d[2];
    g->W = x->d[3];
    g->M = w->d[0];
    g->G = p->group;
    g->kh = w->d[2];
    g->kw = w->d[3];
    if ((p->kh && p->kh != g->kh) || (p->kw && p->kw != g->kw))
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "kernel_shape %dx%d differs from weight %s", p->kh,
                            p->kw, egc_shape_str(w, b, sizeof b));
    if (g->C % g->G || g->M % g->G || w->d[1] != g->C / g->G || g->kh < 1 || g->kw < 1)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "input %s, weight %s and group %d do not fit",
                            egc_shape_str(x, a, sizeof a), egc_shape_str(w, b, sizeof b), p->group);
    g->Cg = g->C / g->G;
    g->Mg = g->M / g->G;
    g->sh = p->sh;
    g->sw = p->sw;
    g->dh = p->dh;
    g->dw = p->dw;
    g->pt = p->pt;
    g->pl = p->pl;
    int64_t eh = g->H + p->pt + p->pb - g->dh * (g->kh - 1) - 1;
    int64_t ew = g->W + p->pl + p->pr - g->dw * (g->kw - 1) - 1;
    g->OH = eh < 0 ? 0 : eh / g->sh + 1;
    g->OW = ew < 0 ? 0 : ew / g->sw + 1;
    if (eh < 0 || ew < 0 || y->ndim != 4 || y->d[0] != g->N || y->d[1] != g->M ||
        y->d[2] != g->OH || y->d[3] != g->OW)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "output %s, expected [%lld,%lld,%lld,%lld] from input %s "
                            "and weight %s",
                            egc_shape_str(y, c, sizeof c), (long long)g->N, (long long)g->M,
                            (long long)g->OH, (long long)g->OW, egc_shape_str(x, a, sizeof a),
                            egc_shape_str(w, b, sizeof b));
    if (n->n_in > 2 && in[2].ptr &&
        (in[2].shape.ndim != 1 || in[2].shape.d[0] != g->M))
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "bias %s, expected [%lld]",
                            egc_shape_str(&in[2].shape, a, sizeof a), (long long)g->M);
    g->K = g->Cg * g->kh * g->kw;
    g->P = g->OH * g->OW;
    g->pointwise = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && p->pt == 0 &&
                   p->pl == 0 && p->pb == 0 && p->pr == 0;
    g->depthwise = g->Cg == 1 && g->G > 1;
    return EGC_OK;
}

/* Output positions o in [0, out_len) with 0 <= o*stride + off < in_len: [*lo, *hi). */
static void valid_range(int64_t off, int64_t stride, int64_t in_len, int64_t out_len,
                        int64_t *lo, int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t h = in_len - off <= 0 ? 0 : (in_len - off + stride - 1) / stride;
    if (h > out_len) h = out_len;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Columns [p0, p1) of the column matrix of x [Cg,H,W] (one image, one group):
 * col [Cg*kh*kw, p1-p0], column q = output position p0 + q (p = oh*OW + ow). */
static void im2col(const conv_geom *g, const float *restrict x, int64_t p0, int64_t p1,
                   float *restrict col)
{
    int64_t ld = p1 - p0;
    for (int64_t c = 0; c < g->Cg; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t row = ((c * g->kh + i) * g->kw + j) * ld;
                int64_t wo = j * g->dw - g->pl, lo, hi;
                valid_range(wo, g->sw, g->W, g->OW, &lo, &hi);
                for (int64_t oh = p0 / g->OW; oh * g->OW < p1; oh++) {
                    /* this output row's part of [p0, p1), as ow positions a..b; position ow
                     * is column r + ow of the block (r + ow >= row for ow >= a) */
                    int64_t a = EGC_MAX(p0 - oh * g->OW, 0), b = EGC_MIN(p1 - oh * g->OW, g->OW);
                    int64_t r = row + oh * g->OW - p0;
                    int64_t h = oh * g->sh - g->pt + i * g->dh;
                    if (h < 0 || h >= g->H) {
                        for (int64_t ow = a; ow < b; ow++) col[r + ow] = 0.0f;
                        continue;
                    }
                    int64_t base = (c * g->H + h) * g->W + wo; /* + ow*sw >= 0 for ow >= lo */
                    int64_t l = EGC_MAX(a, lo), u = EGC_MIN(b, hi);
                    for (int64_t ow = a; ow < EGC_MIN(b, l); ow++) col[r + ow] = 0.0f;
                    if (g->sw == 1 && u > l)
                        memcpy(col + r + l, x + base + l, (size_t)(u - l) * sizeof(float));
                    else
                        for (int64_t ow = l; ow < u; ow++) col[r + ow] = x[base + ow * g->sw];
                    for (int64_t ow = EGC_MAX(a, u); ow < b; ow++) col[r + ow] = 0.0f;
                }
            }
}

/* dx [Cg,H,W] += col2im(col) for the columns [p0, p1) of the column matrix (the adjoint of
 * im2col(p0, p1)); col is [Cg*kh*kw, p1-p0]. */
static void col2im_add(const conv_geom *g, const float *restrict col, int64_t p0, int64_t p1,
                       float *restrict dx)
{
    int64_t ld = p1 - p0;
    for (int64_t c = 0; c < g->Cg; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t row = ((c * g->kh + i) * g->kw + j) * ld;
                int64_t wo = j * g->dw - g->pl, lo, hi;
                valid_range(wo, g->sw, g->W, g->OW, &lo, &hi);
                for (int64_t oh = p0 / g->OW; oh * g->OW < p1; oh++) {
                    int64_t h = oh * g->sh - g->pt + i * g->dh;
                    if (h < 0 || h >= g->H) continue;
                    int64_t a = EGC_MAX(p0 - oh * g->OW, lo), b = EGC_MIN(p1 - oh * g->OW, hi);
                    int64_t r = row + oh * g->OW - p0;
                    int64_t base = (c * g->H + h) * g->W + wo;
                    for (int64_t ow = a; ow < b; ow++) dx[base + ow * g->sw] += col[r + ow];
                }
            }
}

/* Largest column matrix per thread, in floats (16 MiB): bounds the scratch for big images. */
#define EGC_CONV_MAX_COL ((int64_t)4 << 20)

/* ---- general (im2col + GEMM) path ----
 * The work is cut into units (image, group, block of output columns); a chunk of
 * consecutive units runs on one thread with one scratch slot. Column blocks keep every
 * core busy at small batches and keep the scratch small. The backward of a non-pointwise
 * conv uses (image, group) units whose blocks run one after the other, because col2im of
 * neighbouring blocks adds into overlapping parts of dX. */

typedef struct conv_job {
    const conv_geom *g;
    const float *x, *w, *b, *dy;
    float *y, *dx;
    egc_cpu_scratch *scratch;
    int64_t units;  /* GEMM path: N*G*nblk; depthwise path: planes */
    int64_t nblk;   /* column blocks per (image, group) */
    int64_t pb;     /* columns per block (the last may be shorter) */
    int chunks;
    egc_cpu_act act; /* forward: applied to each output block (op 0: none) */
} conv_job;

/* The residual (a->res at the same offset as y from the output's start, off) and then act
 * on rows x cols values of y (row stride ld), as egc_cpu_binary_forward and
 * egc_cpu_unary_forward compute them; nothing when a has neither. */
static void apply_act(const egc_cpu_act *a, float *y, int64_t off, int64_t rows, int64_t cols,
                      int64_t ld)
{
    if (!a->res && a->op != EGC_OP_RELU && a->op != EGC_OP_CLIP) return;
    const float lo = a->lo, hi = a->hi;
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * ld;
        if (a->res) {
            const float *zr = a->res + off + r * ld;
            for (int64_t q = 0; q < cols; q++) yr[q] = yr[q] + zr[q];
        }
        if (a->op == EGC_OP_RELU)
            for (int64_t q = 0; q < cols; q++) yr[q] = egc_cpu_relu(yr[q]);
        else if (a->op == EGC_OP_CLIP)
            for (int64_t q = 0; q < cols; q++) yr[q] = egc_cpu_clip(yr[q], lo, hi);
    }
}

/* Unit u -> image, group and column range [p0, p1). */
static void unit_of(const conv_job *j, int64_t u, int64_t *im, int64_t *gi, int64_t *p0,
                    int64_t *p1)
{
    int64_t per_image = j->g->G * j->nblk;
    *im = u / per_image;
    *gi = (u % per_image) / j->nblk;
    *p0 = (u % j->nblk) * j->pb;
    *p1 = EGC_MIN(*p0 + j->pb, j->g->P);
}

static void gemm_fwd_chunk(int64_t k, void *arg)
{
    const conv_job *j = (const conv_job *)arg;
    const conv_geom *g = j->g;
    float *col = NULL;
    /* grown before the parallel region, so this only looks the slot up */
    if (!g->pointwise &&
        egc_cpu_scratch_get(j->scratch, (int)k, (size_t)(g->K * j->pb) * sizeof(float),
                            (void **)&col) != EGC_OK)
        return;
    int64_t lo = j->units * k / j->chunks, hi = j->units * (k + 1) / j->chunks;
    for (int64_t u = lo; u < hi; u++) {
        int64_t im, gi, p0, p1;
        unit_of(j, u, &im, &gi, &p0, &p1);
        const float *xg = j->x + (im * g->C + gi * g->Cg) * g->H * g->W;
        float *yg = j->y + (im * g->M + gi * g->Mg) * g->P + p0; /* [Mg, p1-p0], ld P */
        float beta = 0.0f;
        if (j->b) {
            for (int64_t m = 0; m < g->Mg; m++) {
                float bv = j->b[gi * g->Mg + m];
                for (int64_t q = 0; q < p1 - p0; q++) yg[m * g->P + q] = bv;
            }
            beta = 1.0f;
        }
        const float *src = xg + p0;
        int64_t ldb = g->P;
        if (!g->pointwise) {
            im2col(g, xg, p0, p1, col);
            src = col;
            ldb = p1 - p0;
        }
        egc_cpu_sgemm(0, 0, g->Mg, p1 - p0, g->K, 1.0f, j->w + gi * g->Mg * g->K, g->K, src, ldb,
                      beta, yg, g->P);
        apply_act(&j->act, yg, yg - j->y, g->Mg, p1 - p0, g->P);
    }
}

static void gemm_bwd_chunk(int64_t k, void *arg)
{
    const conv_job *j = (const conv_job *)arg;
    const conv_geom *g = j->g;
    float *col = NULL;
    if (!g->pointwise &&
        egc_cpu_scratch_get(j->scratch, (int)k, (size_t)(g->K * j->pb) * sizeof(float),
                            (void **)&col) != EGC_OK)
        return;
    int64_t lo = j->units * k / j->chunks, hi = j->units * (k + 1) / j->chunks;
    for (int64_t u = lo; u < hi; u++) {
        if (g->pointwise) { /* dX_g[:, p0:p1] [Cg, .] += W_g^T [Cg,Mg] * dY_g[:, p0:p1] */
            int64_t im, gi, p0, p1;
            unit_of(j, u, &im, &gi, &p0, &p1);
            egc_cpu_sgemm(1, 0, g->K, p1 - p0, g->Mg, 1.0f, j->w + gi * g->Mg * g->K, g->K,
                          j->dy + (im * g->M + gi * g->Mg) * g->P + p0, g->P, 1.0f,
                          j->dx + (im * g->C + gi * g->Cg) * g->H * g->W + p0, g->P);
            continue;
        }
        /* unit = (image, group); its column blocks run here one after the other because
         * col2im of neighbouring blocks adds into overlapping parts of dX_g */
        int64_t im = u / g->G, gi = u % g->G;
        float *dxg = j->dx + (im * g->C + gi * g->Cg) * g->H * g->W;
        const float *dyg = j->dy + (im * g->M + gi * g->Mg) * g->P;
        const float *wg = j->w + gi * g->Mg * g->K;
        for (int64_t p0 = 0; p0 < g->P; p0 += j->pb) {
            int64_t p1 = EGC_MIN(p0 + j->pb, g->P);
            /* dcol [K, p1-p0] = W_g^T [K,Mg] * dY_g[:, p0:p1], then dX_g += col2im(dcol) */
            egc_cpu_sgemm(1, 0, g->K, p1 - p0, g->Mg, 1.0f, wg, g->K, dyg + p0, g->P, 0.0f, col,
                          p1 - p0);
            col2im_add(g, col, p0, p1, dxg);
        }
    }
}

/* OpenBLAS's own thread count as found at the first conv, restored after each parallel
 * region (reading it back each time could pick up another caller's temporary 1). */
static int g_blas_threads = 1;
static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;
static void read_blas_threads(void) { g_blas_threads = openblas_get_num_threads(); }

/* Splits the work into units and runs fn over them. With enough units to fill the threads,
 * chunks run in parallel and OpenBLAS is held to one thread meanwhile (no
 * oversubscription); otherwise one chunk runs and BLAS threads on its own. */
static egc_status run_gemm_path(const egc_node *n, conv_job *j, void (*fn)(int64_t, void *),
                                int column_blocks)
{
    const conv_geom *g = j->g;
    int threads = egc_cpu_chunks(INT64_MAX, 0);
    /* Column blocks: about 4 units per thread when the images alone are too few, a multiple
     * of 16 columns, at least 64, and a column matrix of at most EGC_CONV_MAX_COL floats per
     * thread (unless 64 columns need more). */
    int64_t nblk = 1, per = g->N * g->G, target = 4 * (int64_t)threads;
    if (column_blocks && per < target) nblk = (target + per - 1) / per;
    int64_t pb = ((g->P + nblk - 1) / nblk + 15) / 16 * 16;
    if (pb < 64) pb = 64;
    if (!g->pointwise && g->K * pb > EGC_CONV_MAX_COL)
        pb = EGC_MAX(64, EGC_CONV_MAX_COL / g->K / 16 * 16);
    if (pb > g->P) pb = g->P;
    j->pb = pb;
    j->nblk = (g->P + pb - 1) / pb;
    /* units: (image, group, block); a non-pointwise backward keeps the blocks of an
     * (image, group) in one unit */
    j->units = column_blocks ? per * j->nblk : per;
    /* small convolutions get fewer chunks (starting threads would cost more than they save) */
    int64_t unit_cost = g->Mg * g->K * (column_blocks ? j->pb : g->P);
    j->chunks = j->units >= threads ? egc_cpu_chunks(j->units, unit_cost) : 1;
    j->scratch = NULL;
    if (!g->pointwise) {
        EGC_TRY(egc_cpu_scratch_acquire(&j->scratch));
        for (int k = 0; k < j->chunks; k++) {
            void *p;
            egc_status st = egc_cpu_scratch_get(j->scratch, k,
                                                (size_t)(g->K * j->pb) * sizeof(float), &p);
            if (st != EGC_OK) {
                egc_cpu_scratch_release(j->scratch);
                return egc_error_prefix(st, "node '%s' (Conv): ", n->name ? n->name : "?");
            }
        }
    }
    if (j->chunks > 1) {
        pthread_once(&g_blas_once, read_blas_threads);
        openblas_set_num_threads(1);
        egc_parallel_for(j->chunks, fn, j);
        openblas_set_num_threads(g_blas_threads);
    } else {
        fn(0, j);
    }
    egc_cpu_scratch_release(j->scratch);
    return EGC_OK;
}

/* ---- depthwise (direct) path ---- */

/* Output row oh of one plane, tap by tap:
 * yr[ow] = bias + sum_ij w_ij * x[oh*sh - pt + i*dh, ow*sw - pl + j*dw] (taps outside x skipped). */
static void dw_fwd_row_taps(const conv_geom *g, const float *restrict x, const float *w,
                            float bias, int64_t oh, float *restrict yr)
{
    for (int64_t ow = 0; ow < g->OW; ow++) yr[ow] = bias;
    for (int64_t i = 0; i < g->kh; i++) {
        int64_t h = oh * g->sh - g->pt + i * g->dh;
        if (h < 0 || h >= g->H) continue;
        for (int64_t j = 0; j < g->kw; j++) {
            int64_t wo = j * g->dw - g->pl, lo, hi;
            valid_range(wo, g->sw, g->W, g->OW, &lo, &hi);
            float wv = w[i * g->kw + j];
            int64_t base = h * g->W + wo; /* + ow*sw >= 0 for ow >= lo */
            if (g->sw == 1)
                for (int64_t ow = lo; ow < hi; ow++) yr[ow] += wv * x[base + ow];
            else
                for (int64_t ow = lo; ow < hi; ow++) yr[ow] += wv * x[base + ow * g->sw];
        }
    }
}

/* Output columns [a, b) of output row oh, one output at a time with every tap
 * bounds-checked; the same sum in the same order as dw_fwd_row_taps. For the few border
 * outputs of the 3x3 path. */
static void dw_fwd_cols_checked(const conv_geom *g, const float *restrict x, const float *w,
                                float bias, int64_t oh, int64_t a, int64_t b,
                                float *restrict yr)
{
    for (int64_t ow = a; ow < b; ow++) {
        float acc = bias;
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t h = oh * g->sh - g->pt + i * g->dh;
            if (h < 0 || h >= g->H) continue;
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t c = ow * g->sw - g->pl + j * g->dw;
                if (c >= 0 && c < g->W) acc += w[i * g->kw + j] * x[h * g->W + c];
            }
        }
        yr[ow] = acc;
    }
}

/* Interior of a 3x3, dilation-1 row: n outputs whose 3x3 windows lie inside x; r0..r2 point
 * at the window's top-left element of the first output in the three input rows, sw is the
 * column stride. Sums in the same order as dw_fwd_row_taps (bias, then taps row by row), in
 * a register, with one store per output. Inlined with sw = 1 and 2 as constants so that the
 * loop vectorises. */
static inline void dw_fwd_row_3x3(const float *restrict r0, const float *restrict r1,
                                  const float *restrict r2, const float *w, float bias,
                                  int64_t sw, int64_t n, float *restrict yr)
{
    float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6],
          w7 = w[7], w8 = w[8];
    for (int64_t q = 0; q < n; q++) {
        int64_t c = q * sw;
        float acc = bias;
        acc += w0 * r0[c];
        acc += w1 * r0[c + 1];
        acc += w2 * r0[c + 2];
        acc += w3 * r1[c];
        acc += w4 * r1[c + 1];
        acc += w5 * r1[c + 2];
        acc += w6 * r2[c];
        acc += w7 * r2[c + 1];
        acc += w8 * r2[c + 2];
        yr[q] = acc;
    }
}

/* Interior of a K x K (K = 5 or 7: EfficientNet's, ConvNeXt's), dilation-1 row: n outputs
 * whose windows lie inside x; r0 points at the window's top-left element of the first output,
 * the window's rows lie W apart. The same sums in the same order as dw_fwd_row_taps (bias,
 * then the taps row by row), in a register. Inlined with K and sw constant, so that the taps
 * unroll and the loop over the outputs vectorises. */
static inline __attribute__((always_inline)) void
dw_fwd_row_k(const float *restrict r0, int64_t W, const float *restrict w, float bias, int K,
             int64_t sw, int64_t n, float *restrict yr)
{
    for (int64_t q = 0; q < n; q++) {
        const int64_t c = q * sw;
        float acc = bias;
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) acc += w[i * K + j] * r0[i * W + c + j];
        yr[q] = acc;
    }
}

#define EGC_DW_ROW_K(K_, S_)                                                                \
    static void dw_fwd_row_##K_##x##K_##_s##S_(const float *r0, int64_t W, const float *w,  \
                                               float bias, int64_t n, float *restrict yr)   \
    {                                                                                       \
        dw_fwd_row_k(r0, W, w, bias, K_, S_, n, yr);                                        \
    }
EGC_DW_ROW_K(5, 1)
EGC_DW_ROW_K(5, 2)
EGC_DW_ROW_K(7, 1)
EGC_DW_ROW_K(7, 2)
#undef EGC_DW_ROW_K

/* dw_fwd_row_3x3 for a row of a border: the input rows r[i] that are NULL lie outside x and
 * add nothing. Same sums in the same order as dw_fwd_cols_checked (bias, then the taps of
 * the rows that exist, row by row); v0..v2 are constants at each call, so each variant
 * compiles to its own loop. */
static inline __attribute__((always_inline)) void
dw_fwd_row_3x3_some(const float *restrict r0, const float *restrict r1, const float *restrict r2,
                    int v0, int v1, int v2, const float *w, float bias, int64_t sw, int64_t n,
                    float *restrict yr)
{
    for (int64_t q = 0; q < n; q++) {
        int64_t c = q * sw;
        float acc = bias;
        if (v0) {
            acc += w[0] * r0[c];
            acc += w[1] * r0[c + 1];
            acc += w[2] * r0[c + 2];
        }
        if (v1) {
            acc += w[3] * r1[c];
            acc += w[4] * r1[c + 1];
            acc += w[5] * r1[c + 2];
        }
        if (v2) {
            acc += w[6] * r2[c];
            acc += w[7] * r2[c + 1];
            acc += w[8] * r2[c + 2];
        }
        yr[q] = acc;
    }
}

/* The interior columns of a border row whose existing input rows are given by the mask
 * (bit i: row i of the window is inside x). */
static void dw_fwd_row_3x3_border(const float *r0, const float *r1, const float *r2, int mask,
                                  const float *w, float bias, int64_t sw, int64_t n, float *yr)
{
#define DW_BORDER_CASE(m_, a_, b_, c_)                                                     \
    case m_:                                                                               \
        if (sw == 1) dw_fwd_row_3x3_some(r0, r1, r2, a_, b_, c_, w, bias, 1, n, yr);       \
        else dw_fwd_row_3x3_some(r0, r1, r2, a_, b_, c_, w, bias, 2, n, yr);               \
        break;
    switch (mask) {
        DW_BORDER_CASE(6, 0, 1, 1) /* top row */
        DW_BORDER_CASE(3, 1, 1, 0) /* bottom row */
        DW_BORDER_CASE(2, 0, 1, 0) /* one input row (H = 1) */
        DW_BORDER_CASE(4, 0, 0, 1)
        DW_BORDER_CASE(1, 1, 0, 0)
        DW_BORDER_CASE(5, 1, 0, 1)
    default:
        for (int64_t q = 0; q < n; q++) yr[q] = bias;
        break;
    }
#undef DW_BORDER_CASE
}

/* One output plane (image im, output channel m): y = b + sum_ij w_ij * shifted x.
 * A square kernel of 3, 5 or 7 with dilation 1 and stride 1 or 2 (MobileNet's, EfficientNet's,
 * ConvNeXt's) runs the interior columns of each row through dw_fwd_row_3x3 or dw_fwd_row_k
 * and the border columns through dw_fwd_cols_checked. The 3x3 top and bottom rows run
 * through dw_fwd_row_3x3_border with the input rows that exist; the larger kernels' border
 * rows, and any other geometry, run tap by tap. */
static void dw_fwd_plane(const conv_geom *g, const float *restrict x, const float *w,
                         float bias, float *restrict y)
{
    const int K = (int)g->kh;
    const int fast = g->kh == g->kw && (K == 3 || K == 5 || K == 7) && g->dh == 1 &&
                     g->dw == 1 && (g->sw == 1 || g->sw == 2);
    /* interior columns [clo, chi): both the first and the last tap of the row are inside x */
    int64_t clo = 0, chi = 0;
    if (fast) {
        int64_t l0, h0, l1, h1;
        valid_range(-g->pl, g->sw, g->W, g->OW, &l0, &h0);
        valid_range(K - 1 - g->pl, g->sw, g->W, g->OW, &l1, &h1);
        clo = EGC_MAX(l0, l1);
        chi = EGC_MAX(clo, EGC_MIN(h0, h1));
    }
    for (int64_t oh = 0; oh < g->OH; oh++) {
        float *yr = y + oh * g->OW;
        int64_t h = oh * g->sh - g->pt; /* first input row of the window */
        const int border = h < 0 || h + K - 1 >= g->H;
        if (!fast || (K != 3 && (chi == clo || border))) {
            dw_fwd_row_taps(g, x, w, bias, oh, yr);
            continue;
        }
        if (chi == clo) { /* no interior column */
            dw_fwd_cols_checked(g, x, w, bias, oh, 0, g->OW, yr);
            continue;
        }
        dw_fwd_cols_checked(g, x, w, bias, oh, 0, clo, yr);
        /* the window's top-left input element of output clo (inside x unless border) */
        const float *r0 = border ? NULL : x + h * g->W + clo * g->sw - g->pl;
        if (border) { /* 3x3: the input rows that exist */
            int mask = 0;
            const float *rr[3] = {NULL, NULL, NULL};
            for (int i = 0; i < 3; i++)
                if (h + i >= 0 && h + i < g->H) {
                    mask |= 1 << i;
                    rr[i] = x + (h + i) * g->W + clo * g->sw - g->pl;
                }
            dw_fwd_row_3x3_border(rr[0], rr[1], rr[2], mask, w, bias, g->sw, chi - clo, yr + clo);
        } else if (K == 3) {
            if (g->sw == 1)
                dw_fwd_row_3x3(r0, r0 + g->W, r0 + 2 * g->W, w, bias, 1, chi - clo, yr + clo);
            else
                dw_fwd_row_3x3(r0, r0 + g->W, r0 + 2 * g->W, w, bias, 2, chi - clo, yr + clo);
        } else if (K == 5) {
            (g->sw == 1 ? dw_fwd_row_5x5_s1 : dw_fwd_row_5x5_s2)(r0, g->W, w, bias, chi - clo,
                                                                 yr + clo);
        } else {
            (g->sw == 1 ? dw_fwd_row_7x7_s1 : dw_fwd_row_7x7_s2)(r0, g->W, w, bias, chi - clo,
                                                                 yr + clo);
        }
        dw_fwd_cols_checked(g, x, w, bias, oh, chi, g->OW, yr);
    }
}

/* dx (one input plane) += the adjoint of dw_fwd_plane applied to dy (one output plane). */
static void dw_bwd_plane(const conv_geom *g, const float *restrict dy, const float *w,
                         float *restrict dx)
{
    for (int64_t oh = 0; oh < g->OH; oh++) {
        const float *gr = dy + oh * g->OW;
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t h = oh * g->sh - g->pt + i * g->dh;
            if (h < 0 || h >= g->H) continue;
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t wo = j * g->dw - g->pl, lo, hi;
                valid_range(wo, g->sw, g->W, g->OW, &lo, &hi);
                float wv = w[i * g->kw + j];
                int64_t base = h * g->W + wo;
                if (g->sw == 1)
                    for (int64_t ow = lo; ow < hi; ow++) dx[base + ow] += wv * gr[ow];
                else
                    for (int64_t ow = lo; ow < hi; ow++) dx[base + ow * g->sw] += wv * gr[ow];
            }
        }
    }
}

static void dw_fwd_chunk(int64_t k, void *arg)
{
    const conv_job *j = (const conv_job *)arg;
    const conv_geom *g = j->g;
    int64_t lo = j->units * k / j->chunks, hi = j->units * (k + 1) / j->chunks;
    for (int64_t u = lo; u < hi; u++) { /* u = im*M + m */
        int64_t im = u / g->M, m = u % g->M, c = m / g->Mg;
        dw_fwd_plane(g, j->x + (im * g->C + c) * g->H * g->W, j->w + m * g->kh * g->kw,
                     j->b ? j->b[m] : 0.0f, j->y + u * g->P);
        apply_act(&j->act, j->y + u * g->P, u * g->P, 1, g->P, g->P);
    }
}

static void dw_bwd_chunk(int64_t k, void *arg)
{
    const conv_job *j = (const conv_job *)arg;
    const conv_geom *g = j->g;
    int64_t lo = j->units * k / j->chunks, hi = j->units * (k + 1) / j->chunks;
    for (int64_t u = lo; u < hi; u++) { /* u = im*C + c: every m of channel c feeds dX[im,c] */
        int64_t im = u / g->C, c = u % g->C;
        for (int64_t m = c * g->Mg; m < (c + 1) * g->Mg; m++)
            dw_bwd_plane(g, j->dy + (im * g->M + m) * g->P, j->w + m * g->kh * g->kw,
                         j->dx + u * g->H * g->W);
    }
}

/* ---- entry points ---- */

egc_status egc_cpu_conv_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    return egc_cpu_conv_forward_act(n, in, out, NULL);
}

egc_status egc_cpu_conv_forward_act(const egc_node *n, const egc_view *in, const egc_view *out,
                                    const egc_cpu_act *act)
{
    conv_geom g;
    EGC_TRY(conv_setup(n, in, out, &g));
    conv_job j;
    memset(&j, 0, sizeof j);
    if (act) j.act = *act;
    j.g = &g;
    j.x = in[0].ptr;
    j.w = in[1].ptr;
    j.b = n->n_in > 2 ? in[2].ptr : NULL;
    j.y = out->ptr;
    if (g.N == 0 || g.P == 0) return EGC_OK; /* empty output */
    if (g.depthwise) {
        j.units = g.N * g.M;
        j.chunks = egc_cpu_chunks(j.units, g.P * g.kh * g.kw);
        egc_parallel_for(j.chunks, dw_fwd_chunk, &j);
        return EGC_OK;
    }
    return run_gemm_path(n, &j, gemm_fwd_chunk, 1);
}

egc_status egc_cpu_conv_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                 const egc_view *dout, const egc_view *din)
{
    conv_geom g;
    EGC_TRY(conv_setup(n, in, out, &g));
    for (int i = 1; i < n->n_in; i++)
        if (din[i].ptr)
            return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n,
                                "gradient with respect to %s is not computed (activations only)",
                                i == 1 ? "the weights" : "the bias");
    if (!din[0].ptr) return EGC_OK;
    conv_job j;
    memset(&j, 0, sizeof j);
    j.g = &g;
    j.w = in[1].ptr;
    j.dy = dout->ptr;
    j.dx = din[0].ptr;
    if (g.N == 0 || g.P == 0) return EGC_OK; /* nothing flows back */
    if (g.depthwise) {
        j.units = g.N * g.C;
        j.chunks = egc_cpu_chunks(j.units, g.Mg * g.P * g.kh * g.kw);
        egc_parallel_for(j.chunks, dw_bwd_chunk, &j);
        return EGC_OK;
    }
    return run_gemm_path(n, &j, gemm_bwd_chunk, g.pointwise);
}

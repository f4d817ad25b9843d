/* eltwise.c: element-wise ops on the CPU, forward and activation backward.
 *
 *   Relu     y = x > 0 ? x : 0             dx += dy where x > 0 (0 at x <= 0)
 *   Clip     y = min(max(x, lo), hi)       dx += dy where lo <= x <= hi (inclusive, as
 *            torch.clamp's backward in PyTorch 1.13; torch's hardtanh/ReLU6 backward is
 *            exclusive instead, which differs only for x exactly at lo or hi)
 *   Sigmoid  y = 1 / (1 + exp(-x))         dx += dy * y * (1 - y)
 *            (exp by a vectorizable polynomial: sigmoidf below)
 *   Sqrt     y = sqrt(x)                   dx += dy * 0.5 / y (infinite at x = 0, NaN below,
 *            as torch.sqrt's backward)
 *   Erf      y = erf(x)                    dx += dy * 2 / sqrt(pi) * exp(-x * x)
 *            (both by vectorizable polynomials: erf_rational, gaussf below)
 *   Add/Sub/Mul/Div with numpy broadcasting; gradients are summed over broadcast dims.
 *   BatchNormalization (inference) over axis 1 of X [N,C,...]:
 *            y = scale * (x - mean) / sqrt(var + eps) + B;  dx += dy * scale / sqrt(var + eps)
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu/cpu_impl.h"
#include "cpu/exp_poly.h"

/* ---- unary ---- */

static egc_status unary_check(const egc_node *n, const egc_view *in, const egc_view *out)
{
    if (!egc_shape_equal(&in[0].shape, &out->shape)) {
        char a[96], b[96];
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "output %s differs from input %s",
                            egc_shape_str(&out->shape, a, sizeof a),
                            egc_shape_str(&in[0].shape, b, sizeof b));
    }
    return EGC_OK;
}

static int is_unary(egc_op op)
{
    return op == EGC_OP_RELU || op == EGC_OP_CLIP || op == EGC_OP_SIGMOID || op == EGC_OP_SQRT ||
           op == EGC_OP_ERF || op == EGC_OP_EXP || op == EGC_OP_LOG || op == EGC_OP_SOFTPLUS ||
           op == EGC_OP_FAKE_QUANT;
}

/* 2 / sqrt(pi), the derivative of erf at 0 */
#define EGC_CPU_TWO_OVER_SQRT_PI 1.1283791670955126f

/* 1 / (1 + exp(-x)) from e = exp(-|x|) (no overflow): 1 / (1 + e) for x >= 0, e / (1 + e)
 * below. Within 3e-7 (relative) of the exact value; 0 below -87 (where it is under 2^-125);
 * NaN stays NaN. */
static inline float sigmoidf(float x)
{
    const int nan = x != x;
    const float a = x < 0.0f ? x : -x;                    /* -|x| */
    const float c = nan ? 0.0f : (a < -87.0f ? -87.0f : a); /* a finite argument */
    const float e = a < -87.0f ? 0.0f : egc_exp_nonpos(c);
    const float s = 1.0f / (1.0f + e);
    const float y = x >= 0.0f ? s : e * s;
    return nan ? x : y;
}

/* erf(x) as x P(x^2) / Q(x^2) on x clamped to [-4, 4] (erf is +-1 in float beyond), the
 * rational approximation of Eigen's generic_fast_erf_float: within 4.5e-7 of erf (absolute
 * and relative; measured on 2,000,001 points of [-6, 6] against double erf); NaN stays NaN.
 * Vectorizes, as glibc's erff call does not. */
static inline float erf_rational(float x)
{
    const float c = x > 4.0f ? 4.0f : (x < -4.0f ? -4.0f : x);
    const float z = c * c;
    const float p = ((((((-2.72614225801306e-10f * z + 2.77068142495902e-08f) * z +
                         -2.10102402082508e-06f) * z + -5.69250639462346e-05f) * z +
                       -7.34990630326855e-04f) * z + -2.95459980854025e-03f) * z +
                     -1.60960333262415e-02f) * c;
    const float q = (((-1.45660718464996e-05f * z + -2.13374055278905e-04f) * z +
                      -1.68282697438203e-03f) * z + -7.37332916720468e-03f) * z +
                    -1.42647390514189e-02f;
    return p / q;
}

/* exp(-x^2), the Gaussian of erf's derivative: 0 below exp(-87); NaN stays NaN. */
static inline float gaussf(float x)
{
    const int nan = x != x;
    const float t = nan ? 0.0f : -(x * x);
    const float e = t < -87.0f ? 0.0f : egc_exp_nonpos(t < -87.0f ? -87.0f : t);
    return nan ? x : e;
}

/* log(1 + exp(x)) without overflow: x + log1p(exp(-x)) above 0, log1p(exp(x)) below (exp
 * of a non-positive argument only); +-inf and NaN as the formula's limits. */
static inline float softplusf(float x)
{
    return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

/* One call's element-wise work, cut into ranges that run in parallel. */
typedef struct unary_job {
    egc_op op;
    float lo, hi;                    /* Clip bounds */
    egc_fq_params fq;                /* QuantizeDequantize */
    const float *x, *y, *dy;         /* forward input/output, output gradient */
    float *out;                      /* forward: y; backward: dx (accumulated) */
    int64_t cnt;
    int chunks, backward;
} unary_job;

static void unary_chunk(int64_t k, void *arg)
{
    const unary_job *j = (const unary_job *)arg;
    int64_t a = j->cnt * k / j->chunks, b = j->cnt * (k + 1) / j->chunks;
    const float *x = j->x, *y = j->y, *dy = j->dy;
    float *o = j->out, lo = j->lo, hi = j->hi;
    switch (j->op) {
    case EGC_OP_RELU:
        if (!j->backward)
            for (int64_t i = a; i < b; i++) o[i] = egc_cpu_relu(x[i]);
        else
            for (int64_t i = a; i < b; i++) o[i] += x[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case EGC_OP_CLIP:
        if (!j->backward)
            for (int64_t i = a; i < b; i++) o[i] = egc_cpu_clip(x[i], lo, hi);
        else
            for (int64_t i = a; i < b; i++) o[i] += (x[i] >= lo && x[i] <= hi) ? dy[i] : 0.0f;
        break;
    case EGC_OP_SQRT:
        if (!j->backward)
            for (int64_t i = a; i < b; i++) o[i] = sqrtf(x[i]);
        else
            for (int64_t i = a; i < b; i++) o[i] += dy[i] * (0.5f / y[i]);
        break;
    case EGC_OP_ERF:
        if (!j->backward)
            for (int64_t i = a; i < b; i++) o[i] = erf_rational(x[i]);
        else
            for (int64_t i = a; i < b; i++) o[i] += dy[i] * (EGC_CPU_TWO_OVER_SQRT_PI * gaussf(x[i]));
        break;
    case EGC_OP_EXP: /* the derivative is the output */
        if (!j->backward)
            for (int64_t i = a; i < b; i++) o[i] = expf(x[i]);
        else
            for (int64_t i = a; i < b; i++) o[i] += dy[i] * y[i];
        break;
    case EGC_OP_LOG: /* 1 / x: infinite at 0, as torch.log's */
        if (!j->backward)
            for (int64_t i = a; i < b; i++) o[i] = logf(x[i]);
        else
            for (int64_t i = a; i < b; i++) o[i] += dy[i] / x[i];
        break;
    case EGC_OP_SOFTPLUS: /* the derivative is sigmoid(x) */
        if (!j->backward)
            for (int64_t i = a; i < b; i++) o[i] = softplusf(x[i]);
        else
            for (int64_t i = a; i < b; i++) o[i] += dy[i] * sigmoidf(x[i]);
        break;
    case EGC_OP_FAKE_QUANT: { /* the quantized value q = rint(x / s) + z, clamped */
        const float s = j->fq.scale, z = j->fq.zero, qlo = j->fq.qmin, qhi = j->fq.qmax;
        if (!j->backward)
            for (int64_t i = a; i < b; i++) {
                const float q = rintf(x[i] / s) + z;
                o[i] = (egc_cpu_clip(q, qlo, qhi) - z) * s;
            }
        else
            for (int64_t i = a; i < b; i++) {
                const float q = rintf(x[i] / s) + z;
                o[i] += q >= qlo && q <= qhi ? dy[i] : 0.0f;
            }
        break;
    }
    default: /* Sigmoid */
        if (!j->backward)
            for (int64_t i = a; i < b; i++) o[i] = sigmoidf(x[i]);
        else
            for (int64_t i = a; i < b; i++) o[i] += dy[i] * y[i] * (1.0f - y[i]);
        break;
    }
}

static void unary_run(const egc_node *n, const float *x, const float *y, const float *dy,
                      float *o, int64_t cnt, int backward)
{
    unary_job j = {n->op, n->p.clip.lo, n->p.clip.hi, {0, 0, 0, 0}, x, y, dy, o, cnt, 1, backward};
    if (n->op != EGC_OP_CLIP) j.lo = j.hi = 0.0f;
    if (n->op == EGC_OP_FAKE_QUANT) j.fq = n->p.fq;
    j.chunks = egc_cpu_chunks(cnt, 1);
    egc_parallel_for(j.chunks, unary_chunk, &j);
}

egc_status egc_cpu_unary_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    EGC_TRY(unary_check(n, in, out));
    if (!is_unary(n->op)) return EGC_CPU_FAIL(EGC_E_INTERNAL, n, "not a unary op");
    unary_run(n, in[0].ptr, NULL, NULL, out->ptr, egc_shape_numel(&out->shape), 0);
    return EGC_OK;
}

egc_status egc_cpu_unary_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                  const egc_view *dout, const egc_view *din)
{
    EGC_TRY(unary_check(n, in, out));
    if (!is_unary(n->op)) return EGC_CPU_FAIL(EGC_E_INTERNAL, n, "not a unary op");
    for (int i = 1; i < n->n_in; i++)
        if (din[i].ptr)
            return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n,
                                "gradient with respect to the clip bound input %d is not computed",
                                i);
    if (!din[0].ptr) return EGC_OK;
    unary_run(n, in[0].ptr, out->ptr, dout->ptr, din[0].ptr, egc_shape_numel(&out->shape), 1);
    return EGC_OK;
}

/* ---- binary with broadcasting ---- */

/* Output dims with A's and B's strides aligned to them (0 along broadcast dims). */
typedef struct bcast {
    egc_shape shape;
    int64_t as[EGC_MAX_DIMS], bs[EGC_MAX_DIMS];
    int dense; /* A, B and the output have the same number of elements: no broadcasting */
} bcast;

static egc_status bcast_setup(const egc_node *n, const egc_view *in, const egc_view *out,
                              bcast *bc)
{
    const egc_shape *a = &in[0].shape, *b = &in[1].shape;
    int nd = EGC_MAX(a->ndim, b->ndim);
    int64_t ast[EGC_MAX_DIMS], bst[EGC_MAX_DIMS];
    egc_cpu_strides(a, ast);
    egc_cpu_strides(b, bst);
    memset(bc, 0, sizeof *bc);
    bc->shape.ndim = nd;
    char sa[96], sb[96], so[96], se[96];
    for (int i = 0; i < nd; i++) {
        int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return EGC_CPU_FAIL(EGC_E_SHAPE, n, "shapes %s and %s do not broadcast",
                                egc_shape_str(a, sa, sizeof sa), egc_shape_str(b, sb, sizeof sb));
        bc->shape.d[i] = da == 1 ? db : da;
        bc->as[i] = (da == 1) ? 0 : ast[ia];
        bc->bs[i] = (db == 1) ? 0 : bst[ib];
    }
    if (!egc_shape_equal(&bc->shape, &out->shape))
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "output %s, expected %s from %s and %s",
                            egc_shape_str(&out->shape, so, sizeof so),
                            egc_shape_str(&bc->shape, se, sizeof se),
                            egc_shape_str(a, sa, sizeof sa), egc_shape_str(b, sb, sizeof sb));
    int64_t total = egc_shape_numel(&bc->shape);
    bc->dense = egc_shape_numel(a) == total && egc_shape_numel(b) == total;
    return EGC_OK;
}

/* What one inner run does: forward, or the gradient for A or for B. */
typedef enum bin_task { BIN_FWD, BIN_DA, BIN_DB } bin_task;

/* One contiguous run of the output (length len) with A/B strides sa/sb (0 or 1 or more).
 * FWD: y[k] = a op b.  DA: da[k*sa] += g * d(a op b)/da.  DB: db[k*sb] += g * d/db. */
static void bin_run(egc_op op, bin_task t, int64_t len, const float *a, int64_t sa,
                    const float *b, int64_t sb, float *y, const float *g, float *d)
{
    switch (t) {
    case BIN_FWD:
        switch (op) {
        case EGC_OP_ADD: for (int64_t k = 0; k < len; k++) y[k] = a[k * sa] + b[k * sb]; break;
        case EGC_OP_SUB: for (int64_t k = 0; k < len; k++) y[k] = a[k * sa] - b[k * sb]; break;
        case EGC_OP_MUL: for (int64_t k = 0; k < len; k++) y[k] = a[k * sa] * b[k * sb]; break;
        default: for (int64_t k = 0; k < len; k++) y[k] = a[k * sa] / b[k * sb]; break;
        }
        break;
    case BIN_DA:
        switch (op) {
        case EGC_OP_ADD:
        case EGC_OP_SUB: for (int64_t k = 0; k < len; k++) d[k * sa] += g[k]; break;
        case EGC_OP_MUL: for (int64_t k = 0; k < len; k++) d[k * sa] += g[k] * b[k * sb]; break;
        default: for (int64_t k = 0; k < len; k++) d[k * sa] += g[k] / b[k * sb]; break;
        }
        break;
    case BIN_DB:
        switch (op) {
        case EGC_OP_ADD: for (int64_t k = 0; k < len; k++) d[k * sb] += g[k]; break;
        case EGC_OP_SUB: for (int64_t k = 0; k < len; k++) d[k * sb] -= g[k]; break;
        case EGC_OP_MUL: for (int64_t k = 0; k < len; k++) d[k * sb] += g[k] * a[k * sa]; break;
        default:
            for (int64_t k = 0; k < len; k++) {
                float bv = b[k * sb];
                d[k * sb] -= g[k] * a[k * sa] / (bv * bv);
            }
            break;
        }
        break;
    }
}

/* One call's binary work, cut into ranges that run in parallel: flat ranges of same-shape
 * operands (bc NULL), or ranges of output rows of a broadcast walk (bin_rows). */
typedef struct bin_job {
    egc_op op;
    bin_task t;
    const bcast *bc;
    const float *a, *b, *g;
    float *y, *d;
    int64_t cnt; /* elements (flat) or rows */
    int chunks;
} bin_job;

static void bin_flat_chunk(int64_t k, void *arg)
{
    const bin_job *j = (const bin_job *)arg;
    int64_t lo = j->cnt * k / j->chunks, hi = j->cnt * (k + 1) / j->chunks;
    bin_run(j->op, j->t, hi - lo, j->a + lo, 1, j->b + lo, 1, j->y ? j->y + lo : NULL,
            j->g ? j->g + lo : NULL, j->d ? j->d + lo : NULL);
}

/* Rows [r0, r1) of the output (a row: the innermost dimension) of a broadcast walk. */
static void bin_rows(egc_op op, bin_task t, const bcast *bc, const float *a, const float *b,
                     float *y, const float *g, float *d, int64_t r0, int64_t r1)
{
    const egc_shape *s = &bc->shape;
    const int nd = s->ndim;
    const int64_t inner = s->d[nd - 1], sa = bc->as[nd - 1], sb = bc->bs[nd - 1];
    int64_t idx[EGC_MAX_DIMS] = {0};
    int64_t ao = 0, bo = 0, yo = r0 * inner;
    for (int64_t i = nd - 2, rest = r0; i >= 0; i--) { /* the index of row r0 */
        idx[i] = rest % s->d[i];
        rest /= s->d[i];
        ao += bc->as[i] * idx[i];
        bo += bc->bs[i] * idx[i];
    }
    for (int64_t r = r0; r < r1; r++) {
        float *dd = d ? d + (t == BIN_DA ? ao : bo) : NULL;
        bin_run(op, t, inner, a + ao, sa, b + bo, sb, y ? y + yo : NULL, g ? g + yo : NULL, dd);
        yo += inner;
        for (int i = nd - 2; i >= 0; i--) {
            idx[i]++;
            ao += bc->as[i];
            bo += bc->bs[i];
            if (idx[i] < s->d[i]) break;
            ao -= bc->as[i] * idx[i];
            bo -= bc->bs[i] * idx[i];
            idx[i] = 0;
        }
    }
}

static void bin_rows_chunk(int64_t k, void *arg)
{
    const bin_job *j = (const bin_job *)arg;
    bin_rows(j->op, j->t, j->bc, j->a, j->b, j->y, j->g, j->d, j->cnt * k / j->chunks,
             j->cnt * (k + 1) / j->chunks);
}

/* Whether the input with strides st (BIN_DA: A's, BIN_DB: B's) is broadcast along some
 * dimension of the output, so that its gradient sums over output rows. */
static int bin_reduces(const bcast *bc, const int64_t *st)
{
    for (int i = 0; i < bc->shape.ndim; i++)
        if (bc->shape.d[i] > 1 && st[i] == 0) return 1;
    return 0;
}

static void bin_walk(egc_op op, bin_task t, const bcast *bc, const float *a, const float *b,
                     float *y, const float *g, float *d)
{
    const egc_shape *s = &bc->shape;
    int64_t total = egc_shape_numel(s);
    if (total == 0) return;
    if (bc->dense) {
        bin_job j = {op, t, NULL, a, b, g, y, d, total, egc_cpu_chunks(total, 1)};
        egc_parallel_for(j.chunks, bin_flat_chunk, &j);
        return;
    }
    int nd = s->ndim;
    if (nd == 0) {
        bin_run(op, t, 1, a, 0, b, 0, y, g, d);
        return;
    }
    const int64_t rows = total / s->d[nd - 1];
    /* Output rows in parallel where each writes its own elements: the forward, and the
     * gradient of an input that is not broadcast. A broadcast input's gradient sums over
     * rows: one walk, in order. */
    bin_job j = {op, t, bc, a, b, g, y, d, rows, 1};
    if (t == BIN_FWD || !bin_reduces(bc, t == BIN_DA ? bc->as : bc->bs))
        j.chunks = (int)EGC_MIN((int64_t)egc_cpu_chunks(total, 1), rows);
    if (j.chunks > 1) egc_parallel_for(j.chunks, bin_rows_chunk, &j);
    else bin_rows(op, t, bc, a, b, y, g, d, 0, rows);
}

egc_status egc_cpu_binary_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    bcast bc;
    EGC_TRY(bcast_setup(n, in, out, &bc));
    bin_walk(n->op, BIN_FWD, &bc, in[0].ptr, in[1].ptr, out->ptr, NULL, NULL);
    return EGC_OK;
}

egc_status egc_cpu_binary_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                   const egc_view *dout, const egc_view *din)
{
    bcast bc;
    EGC_TRY(bcast_setup(n, in, out, &bc));
    if (din[0].ptr) bin_walk(n->op, BIN_DA, &bc, in[0].ptr, in[1].ptr, NULL, dout->ptr, din[0].ptr);
    if (din[1].ptr) bin_walk(n->op, BIN_DB, &bc, in[0].ptr, in[1].ptr, NULL, dout->ptr, din[1].ptr);
    return EGC_OK;
}

/* ---- BatchNormalization (inference) ---- */

static egc_status bn_check(const egc_node *n, const egc_view *in, const egc_view *out)
{
    const egc_shape *x = &in[0].shape;
    char a[96], b[96];
    if (x->ndim < 2)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "input %s has fewer than 2 dims",
                            egc_shape_str(x, a, sizeof a));
    if (!egc_shape_equal(x, &out->shape))
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "output %s differs from input %s",
                            egc_shape_str(&out->shape, a, sizeof a), egc_shape_str(x, b, sizeof b));
    for (int i = 1; i < 5; i++)
        if (egc_shape_numel(&in[i].shape) != x->d[1] || in[i].shape.ndim != 1)
            return EGC_CPU_FAIL(EGC_E_SHAPE, n, "parameter input %d is %s, expected [%lld]", i,
                                egc_shape_str(&in[i].shape, a, sizeof a), (long long)x->d[1]);
    return EGC_OK;
}

egc_status egc_cpu_batchnorm_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    EGC_TRY(bn_check(n, in, out));
    const egc_shape *s = &in[0].shape;
    int64_t N = s->d[0], C = s->d[1], inner = egc_cpu_dims_prod(s, 2, s->ndim);
    const float *x = in[0].ptr, *scale = in[1].ptr, *bias = in[2].ptr, *mean = in[3].ptr,
                *var = in[4].ptr;
    float eps = n->p.bn.eps;
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < C; c++) {
            float k = scale[c] / sqrtf(var[c] + eps), b0 = bias[c] - mean[c] * k;
            const float *xp = x + (i * C + c) * inner;
            float *yp = out->ptr + (i * C + c) * inner;
            for (int64_t j = 0; j < inner; j++) yp[j] = xp[j] * k + b0;
        }
    return EGC_OK;
}

egc_status egc_cpu_batchnorm_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                      const egc_view *dout, const egc_view *din)
{
    EGC_TRY(bn_check(n, in, out));
    for (int i = 1; i < 5; i++)
        if (din[i].ptr)
            return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n,
                                "gradient with respect to parameter input %d is not computed", i);
    if (!din[0].ptr) return EGC_OK;
    const egc_shape *s = &in[0].shape;
    int64_t N = s->d[0], C = s->d[1], inner = egc_cpu_dims_prod(s, 2, s->ndim);
    const float *scale = in[1].ptr, *var = in[4].ptr;
    float eps = n->p.bn.eps;
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < C; c++) {
            float k = scale[c] / sqrtf(var[c] + eps);
            const float *g = dout->ptr + (i * C + c) * inner;
            float *dx = din[0].ptr + (i * C + c) * inner;
            for (int64_t j = 0; j < inner; j++) dx[j] += g[j] * k;
        }
    return EGC_OK;
}

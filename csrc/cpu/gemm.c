/* gemm.c: Gemm and MatMul on the CPU (forward and activation backward), and the BLAS
 * wrapper every CPU op uses (OpenBLAS cblas_sgemm, which threads on its own).
 *
 * Gemm (ONNX): Y [M,N] = alpha * op(A) * op(B) + beta * C, op(A) [M,K], op(B) [K,N],
 *   C unidirectionally broadcast to [M,N] (scalar, [N], [1,N], [M,1], [M,N]).
 * MatMul (numpy): A [...,M,K] x B [...,K,N] -> [...,M,N] with broadcast batch dims; a 1-D A
 *   is [1,K] and a 1-D B is [K,1], the added dim removed from the result. */
#include <cblas.h>
#include <string.h>

#include "cpu/cpu_impl.h"

void egc_cpu_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                   float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        /* BLAS would reject lda = 0; the product is empty, so only C's scaling is left. */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)K, alpha, A,
                (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

/* ---- Gemm ---- */

typedef struct gemm_dims {
    int64_t M, N, K;
    int64_t lda, ldb;
    int64_t c_sm, c_sn; /* C's strides over Y's rows/cols; 0 where broadcast */
} gemm_dims;

static egc_status gemm_setup(const egc_node *n, const egc_view *in, const egc_view *out,
                             gemm_dims *g)
{
    const egc_gemm_params *p = &n->p.gemm;
    const egc_shape *a = &in[0].shape, *b = &in[1].shape;
    char sa[96], sb[96];
    if (a->ndim != 2 || b->ndim != 2)
        return EGC_CPU_FAIL(EGC_E_UNSUPPORTED, n, "A %s and B %s must both be 2-D",
                            egc_shape_str(a, sa, sizeof sa), egc_shape_str(b, sb, sizeof sb));
    g->M = p->trans_a ? a->d[1] : a->d[0];
    g->K = p->trans_a ? a->d[0] : a->d[1];
    int64_t kb = p->trans_b ? b->d[1] : b->d[0];
    g->N = p->trans_b ? b->d[0] : b->d[1];
    g->lda = a->d[1];
    g->ldb = b->d[1];
    if (kb != g->K)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "inner dims differ: A %s, B %s (transA %d, transB %d)",
                            egc_shape_str(a, sa, sizeof sa), egc_shape_str(b, sb, sizeof sb),
                            p->trans_a, p->trans_b);
    if (out->shape.ndim != 2 || out->shape.d[0] != g->M || out->shape.d[1] != g->N)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "output %s is not [%lld,%lld]",
                            egc_shape_str(&out->shape, sa, sizeof sa), (long long)g->M,
                            (long long)g->N);
    g->c_sm = g->c_sn = 0;
    if (n->n_in > 2 && in[2].ptr) {
        const egc_shape *c = &in[2].shape;
        int64_t cm = 1, cn = 1;
        if (c->ndim == 2) {
            cm = c->d[0];
            cn = c->d[1];
        } else if (c->ndim == 1) {
            cn = c->d[0];
        } else if (c->ndim != 0) {
            return EGC_CPU_FAIL(EGC_E_SHAPE, n, "C %s has more than 2 dims",
                                egc_shape_str(c, sa, sizeof sa));
        }
        if ((cm != 1 && cm != g->M) || (cn != 1 && cn != g->N))
            return EGC_CPU_FAIL(EGC_E_SHAPE, n, "C %s does not broadcast to [%lld,%lld]",
                                egc_shape_str(c, sa, sizeof sa), (long long)g->M,
                                (long long)g->N);
        g->c_sm = cm == 1 ? 0 : cn;
        g->c_sn = cn == 1 ? 0 : 1;
    }
    return EGC_OK;
}

egc_status egc_cpu_gemm_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    const egc_gemm_params *p = &n->p.gemm;
    gemm_dims g;
    EGC_TRY(gemm_setup(n, in, out, &g));
    float *y = out->ptr;
    float beta = 0.0f;
    if (n->n_in > 2 && in[2].ptr && p->beta != 0.0f) {
        const float *c = in[2].ptr;
        for (int64_t i = 0; i < g.M; i++)
            for (int64_t j = 0; j < g.N; j++) y[i * g.N + j] = p->beta * c[i * g.c_sm + j * g.c_sn];
        beta = 1.0f;
    }
    egc_cpu_sgemm(p->trans_a, p->trans_b, g.M, g.N, g.K, p->alpha, in[0].ptr, g.lda, in[1].ptr,
                  g.ldb, beta, y, g.N);
    return EGC_OK;
}

egc_status egc_cpu_gemm_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                 const egc_view *dout, const egc_view *din)
{
    const egc_gemm_params *p = &n->p.gemm;
    gemm_dims g;
    EGC_TRY(gemm_setup(n, in, out, &g));
    const float *dy = dout->ptr, *a = in[0].ptr, *b = in[1].ptr;
    if (din[0].ptr) {
        /* d op(A) = alpha * dY [M,N] * op(B)^T [N,K]. */
        if (!p->trans_a) /* dA [M,K] */
            egc_cpu_sgemm(0, !p->trans_b, g.M, g.K, g.N, p->alpha, dy, g.N, b, g.ldb, 1.0f,
                          din[0].ptr, g.K);
        else /* dA [K,M] = alpha * op(B) [K,N] * dY^T */
            egc_cpu_sgemm(p->trans_b, 1, g.K, g.M, g.N, p->alpha, b, g.ldb, dy, g.N, 1.0f,
                          din[0].ptr, g.M);
    }
    if (din[1].ptr) {
        /* d op(B) = alpha * op(A)^T [K,M] * dY [M,N]. */
        if (!p->trans_b) /* dB [K,N] */
            egc_cpu_sgemm(!p->trans_a, 0, g.K, g.N, g.M, p->alpha, a, g.lda, dy, g.N, 1.0f,
                          din[1].ptr, g.N);
        else /* dB [N,K] = alpha * dY^T [N,M] * op(A) [M,K] */
            egc_cpu_sgemm(1, p->trans_a, g.N, g.K, g.M, p->alpha, dy, g.N, a, g.lda, 1.0f,
                          din[1].ptr, g.K);
    }
    if (n->n_in > 2 && din[2].ptr && p->beta != 0.0f) {
        float *dc = din[2].ptr;
        for (int64_t i = 0; i < g.M; i++)
            for (int64_t j = 0; j < g.N; j++) dc[i * g.c_sm + j * g.c_sn] += p->beta * dy[i * g.N + j];
    }
    return EGC_OK;
}

/* ---- MatMul ---- */

typedef struct matmul_dims {
    int64_t M, N, K;
    int nb;                      /* number of broadcast batch dims */
    int64_t bd[EGC_MAX_DIMS];    /* batch dims of the output */
    int64_t as[EGC_MAX_DIMS];    /* A's matrix stride per batch dim (0 = broadcast) */
    int64_t bs[EGC_MAX_DIMS];
    int64_t batch;               /* product of bd */
    int64_t a_batch, b_batch;    /* number of distinct A / B matrices */
} matmul_dims;

static egc_status matmul_setup(const egc_node *n, const egc_view *in, const egc_view *out,
                               matmul_dims *m)
{
    const egc_shape *a = &in[0].shape, *b = &in[1].shape;
    char sa[96], sb[96], so[96], sw[96];
    if (a->ndim < 1 || b->ndim < 1)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "MatMul of a scalar (A %s, B %s)",
                            egc_shape_str(a, sa, sizeof sa), egc_shape_str(b, sb, sizeof sb));
    int a_nb = a->ndim > 2 ? a->ndim - 2 : 0, b_nb = b->ndim > 2 ? b->ndim - 2 : 0;
    m->M = a->ndim == 1 ? 1 : a->d[a->ndim - 2];
    m->K = a->d[a->ndim - 1];
    int64_t kb = b->ndim == 1 ? b->d[0] : b->d[b->ndim - 2];
    m->N = b->ndim == 1 ? 1 : b->d[b->ndim - 1];
    if (kb != m->K)
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "inner dims differ: A %s, B %s",
                            egc_shape_str(a, sa, sizeof sa), egc_shape_str(b, sb, sizeof sb));
    m->nb = EGC_MAX(a_nb, b_nb);
    int64_t a_st = m->M * m->K, b_st = m->K * m->N;
    m->batch = 1;
    m->a_batch = 1;
    m->b_batch = 1;
    /* Walk batch dims from the innermost outwards to build matrix strides. */
    for (int i = m->nb - 1; i >= 0; i--) {
        int ia = a_nb - m->nb + i, ib = b_nb - m->nb + i;
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return EGC_CPU_FAIL(EGC_E_SHAPE, n, "batch dims of A %s and B %s do not broadcast",
                                egc_shape_str(a, sa, sizeof sa), egc_shape_str(b, sb, sizeof sb));
        m->bd[i] = da == 1 ? db : da;
        m->as[i] = da == 1 ? 0 : a_st;
        m->bs[i] = db == 1 ? 0 : b_st;
        a_st *= da;
        b_st *= db;
        m->batch *= m->bd[i];
        m->a_batch *= da;
        m->b_batch *= db;
    }
    egc_shape want;
    memset(&want, 0, sizeof want);
    for (int i = 0; i < m->nb; i++) want.d[want.ndim++] = m->bd[i];
    if (a->ndim > 1) want.d[want.ndim++] = m->M;
    if (b->ndim > 1) want.d[want.ndim++] = m->N;
    if (!egc_shape_equal(&want, &out->shape))
        return EGC_CPU_FAIL(EGC_E_SHAPE, n, "output %s, expected %s for A %s x B %s",
                            egc_shape_str(&out->shape, so, sizeof so),
                            egc_shape_str(&want, sw, sizeof sw), egc_shape_str(a, sa, sizeof sa),
                            egc_shape_str(b, sb, sizeof sb));
    return EGC_OK;
}

/* Offsets of A's and B's matrices for flat output batch index bi. */
static void matmul_offsets(const matmul_dims *m, int64_t bi, int64_t *ao, int64_t *bo)
{
    *ao = 0;
    *bo = 0;
    for (int i = m->nb - 1; i >= 0; i--) {
        int64_t k = bi % m->bd[i];
        bi /= m->bd[i];
        *ao += k * m->as[i];
        *bo += k * m->bs[i];
    }
}

egc_status egc_cpu_matmul_forward(const egc_node *n, const egc_view *in, const egc_view *out)
{
    matmul_dims m;
    EGC_TRY(matmul_setup(n, in, out, &m));
    const float *a = in[0].ptr, *b = in[1].ptr;
    float *y = out->ptr;
    if (m.b_batch == 1 && m.a_batch == m.batch) {
        /* One B for every batch: fold the batch into the rows of A. */
        egc_cpu_sgemm(0, 0, m.batch * m.M, m.N, m.K, 1.0f, a, m.K, b, m.N, 0.0f, y, m.N);
        return EGC_OK;
    }
    for (int64_t bi = 0; bi < m.batch; bi++) {
        int64_t ao, bo;
        matmul_offsets(&m, bi, &ao, &bo);
        egc_cpu_sgemm(0, 0, m.M, m.N, m.K, 1.0f, a + ao, m.K, b + bo, m.N, 0.0f,
                      y + bi * m.M * m.N, m.N);
    }
    return EGC_OK;
}

egc_status egc_cpu_matmul_backward(const egc_node *n, const egc_view *in, const egc_view *out,
                                   const egc_view *dout, const egc_view *din)
{
    matmul_dims m;
    EGC_TRY(matmul_setup(n, in, out, &m));
    const float *a = in[0].ptr, *b = in[1].ptr, *dy = dout->ptr;
    float *da = din[0].ptr, *db = din[1].ptr;
    if (m.b_batch == 1 && m.a_batch == m.batch) {
        int64_t rows = m.batch * m.M;
        if (da) egc_cpu_sgemm(0, 1, rows, m.K, m.N, 1.0f, dy, m.N, b, m.N, 1.0f, da, m.K);
        if (db) egc_cpu_sgemm(1, 0, m.K, m.N, rows, 1.0f, a, m.K, dy, m.N, 1.0f, db, m.N);
        return EGC_OK;
    }
    /* Serial over the batch: broadcast batches accumulate into the same matrix. */
    for (int64_t bi = 0; bi < m.batch; bi++) {
        int64_t ao, bo;
        matmul_offsets(&m, bi, &ao, &bo);
        const float *g = dy + bi * m.M * m.N;
        if (da) /* dA [M,K] += dY [M,N] * B^T */
            egc_cpu_sgemm(0, 1, m.M, m.K, m.N, 1.0f, g, m.N, b + bo, m.N, 1.0f, da + ao, m.K);
        if (db) /* dB [K,N] += A^T * dY */
            egc_cpu_sgemm(1, 0, m.K, m.N, m.M, 1.0f, a + ao, m.K, g, m.N, 1.0f, db + bo, m.N);
    }
    return EGC_OK;
}

/* cuda_methods.c: the CUDA backend's method-level entries (backend.h, m_*): argument
 * checks, then the launchers of kernels/method_*.cu on the backend's stream (asynchronous;
 * every launch checked). Contracts are those of backend.h; the kernels reproduce the CPU
 * references of csrc/methods (bit for bit where those are float expressions). */
#include <string.h>

#include "core/philox.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_methods.h"
#include "egc_method_kernels.h"
#include "metrics/metrics_internal.h"

/* The stream of be, or a recorded EGC_E_DEVICE. */
#define STREAM_OR_FAIL(be, s)                                                              \
    void *s = egc_cuda_backend_stream(be);                                                 \
    if (!s) return egc_error_trace(EGC_E_DEVICE, "cudaSetDevice", __FILE__, __LINE__)

static egc_status cum_copy(egc_backend *be, void *dst, const void *src, size_t bytes)
{
    if (!bytes) return EGC_OK;
    if (!dst || !src) return EGC_FAIL(EGC_E_ARG, "%s m_copy: %zu bytes with a NULL pointer", be->name, bytes);
    STREAM_OR_FAIL(be, s);
    EGC_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, (cudaStream_t)s));
    return EGC_OK;
}

static egc_status cum_scan(egc_backend *be, const float *x, int n, int64_t chw, uint64_t *ids,
                           float *range, int64_t *bad)
{
    if (n <= 0) return EGC_OK;
    if (!x || !range || !bad || chw < 1)
        return EGC_FAIL(EGC_E_ARG, "%s m_scan: bad arguments (%d images of %lld values)", be->name,
                        n, (long long)chw);
    STREAM_OR_FAIL(be, s);
    EGC_KERNEL(egc_k_scan(x, n, chw, ids, range, bad, s));
    return EGC_OK;
}

static egc_status cum_perturb(egc_backend *be, const egc_sample_spec *sp, const float *x,
                              const float *base, int64_t r0, int n, int64_t chw, float *z)
{
    if (n <= 0) return EGC_OK;
    if (!sp || !x || !base || !z || r0 < 0 || chw < 0 || sp->S < 1 || !sp->ids || !sp->sigma ||
        (sp->plan && (!sp->plan_b || !sp->plan_a || !sp->plan_seed)))
        return EGC_FAIL(EGC_E_ARG, "%s m_perturb: bad arguments (%d rows from %lld)", be->name, n,
                        (long long)r0);
    STREAM_OR_FAIL(be, s);
    EGC_KERNEL(egc_k_perturb(*sp, x, base, r0, n, chw, z, s));
    return EGC_OK;
}

/* CUB sizes its scratch for the current device: the backend's is made current first. */
static size_t cum_rank_scratch(egc_backend *be, int n, int hw)
{
    if (!egc_cuda_backend_stream(be)) return 0;
    return egc_k_rank_scratch(n, hw);
}

static egc_status cum_rank(egc_backend *be, const float *maps, int n, int hw, void *scratch,
                           int32_t *key)
{
    if (n <= 0) return EGC_OK;
    size_t bytes = cum_rank_scratch(be, n, hw);
    if (!maps || !key || hw < 1 || !scratch || !bytes)
        return EGC_FAIL(EGC_E_ARG, "%s m_rank: bad arguments (%d maps of %d pixels)", be->name, n,
                        hw);
    STREAM_OR_FAIL(be, s);
    EGC_KERNEL(egc_k_rank(maps, n, hw, scratch, bytes, key, s));
    return EGC_OK;
}

static egc_status cum_select_rows(egc_backend *be, const egc_select_spec *sp, int64_t r0, int n,
                                  float *out)
{
    if (n <= 0) return EGC_OK;
    EGC_TRY(egc_select_spec_check(sp, r0, n, out, be->name));
    STREAM_OR_FAIL(be, s);
    EGC_KERNEL(egc_k_select_rows(sp->a, sp->b, sp->key, sp->key_stride, sp->C, sp->hw,
                                 sp->rows_per, sp->thr_step, sp->thr_max, sp->bconst, r0, n, out,
                                 s));
    return EGC_OK;
}

static size_t cum_gauss_scratch(egc_backend *be, int n, int64_t chw)
{
    (void)be;
    return egc_k_gauss_scratch(n, chw);
}

static egc_status cum_gauss_rows(egc_backend *be, const egc_gauss_spec *sp, int64_t r0, int n,
                                 void *scratch, float *out, double *aux)
{
    if (n <= 0) return EGC_OK;
    EGC_TRY(egc_gauss_spec_check(sp, r0, n, out, aux, be->name));
    size_t bytes = egc_k_gauss_scratch(n, (int64_t)sp->C * sp->hw);
    if (!scratch || !bytes)
        return EGC_FAIL(EGC_E_ARG, "%s m_gauss_rows: no scratch for %d rows of %lld values",
                        be->name, n, (long long)sp->C * sp->hw);
    STREAM_OR_FAIL(be, s);
    EGC_KERNEL(egc_k_gauss_rows(sp->x, sp->phi, sp->ids, sp->sample0, sp->seed, sp->sigma, sp->C,
                                sp->hw, sp->rows_per, r0, n, scratch, bytes, out, aux, s));
    return EGC_OK;
}

static egc_status cum_scorecam_inputs(egc_backend *be, const float *x, const float *A, int64_t r0,
                                      int n, int K, int h, int w, int C, int H, int W, float *z)
{
    if (n <= 0) return EGC_OK;
    if (!x || !A || !z || r0 < 0 || K < 1 || h < 1 || w < 1 || C < 1 || H < 1 || W < 1)
        return EGC_FAIL(EGC_E_ARG, "%s m_scorecam_inputs: bad arguments", be->name);
    STREAM_OR_FAIL(be, s);
    EGC_KERNEL(egc_k_scorecam_inputs(x, A, r0, n, K, h, w, C, H, W, z, s));
    return EGC_OK;
}

static egc_status cum_score_seed(egc_backend *be, const float *logits, int n, int classes,
                                 int32_t *cls, int64_t r0, int per, int resolve, int softmax,
                                 float *seed, float *y)
{
    if (n <= 0) return EGC_OK;
    if (!logits || !cls || classes < 1 || per < 1 || r0 < 0 || (resolve && (r0 || per != 1)))
        return EGC_FAIL(EGC_E_ARG, "%s m_score_seed: bad arguments", be->name);
    STREAM_OR_FAIL(be, s);
    EGC_KERNEL(egc_k_score_seed(logits, n, classes, cls, r0, per, resolve, softmax, seed, y, s));
    return EGC_OK;
}

static egc_status cum_accumulate(egc_backend *be, int kind, const egc_sample_spec *sp, int64_t r0,
                                 int n, int64_t len, const float *src, const float *ax,
                                 const float *aref, float *acc)
{
    if (n <= 0 || len <= 0) return EGC_OK;
    if (!sp || sp->S < 1 || !src || !acc || r0 < 0 ||
        (kind != EGC_ACC_SUM && kind != EGC_ACC_DIFF) ||
        (kind == EGC_ACC_DIFF && (!ax || !aref || !sp->ids ||
                                  (sp->plan && !sp->plan_b))))
        return EGC_FAIL(EGC_E_ARG, "%s m_accumulate: bad arguments (kind %d)", be->name, kind);
    STREAM_OR_FAIL(be, s);
    EGC_KERNEL(egc_k_accumulate_rows(kind, *sp, r0, n, len, src, ax, aref, acc, s));
    return EGC_OK;
}

static egc_status cum_mean(egc_backend *be, float *v, int64_t n, int S)
{
    if (n <= 0) return EGC_OK;
    if (!v || S < 1) return EGC_FAIL(EGC_E_ARG, "%s m_mean: bad arguments (S = %d)", be->name, S);
    STREAM_OR_FAIL(be, s);
    EGC_KERNEL(egc_k_mean(v, n, S, s));
    return EGC_OK;
}

static egc_status cum_cam(egc_backend *be, int method, const float *G, const float *A, int n,
                          int K, int hw, float *wk, float *L)
{
    if (n <= 0) return EGC_OK;
    if (!G || !A || !wk || !L || K < 1 || hw < 1)
        return EGC_FAIL(EGC_E_ARG, "%s m_cam: bad arguments", be->name);
    if (method < EGC_CAM_GRADCAM || method > EGC_CAM_SCORECAM)
        return EGC_FAIL(EGC_E_ARG, "%s m_cam: unknown method %d", be->name, method);
    STREAM_OR_FAIL(be, s);
    EGC_KERNEL(egc_k_cam(method, G, A, n, K, hw, wk, L, s));
    return EGC_OK;
}

static egc_status cum_finalize(egc_backend *be, const float *L, int n, int h, int w, float *map,
                               int H, int W, float *scratch)
{
    if (n <= 0) return EGC_OK;
    if (!L || !map || !scratch || h < 1 || w < 1 || H < 1 || W < 1)
        return EGC_FAIL(EGC_E_ARG, "%s m_finalize: bad arguments", be->name);
    STREAM_OR_FAIL(be, s);
    EGC_KERNEL(egc_k_cam_finalize(L, n, h, w, map, H, W, scratch, s));
    return EGC_OK;
}

void egc_cuda_methods_install(egc_backend *be)
{
    be->m_scan = cum_scan;
    be->m_copy = cum_copy;
    be->m_perturb = cum_perturb;
    be->m_scorecam_inputs = cum_scorecam_inputs;
    be->m_score_seed = cum_score_seed;
    be->m_accumulate = cum_accumulate;
    be->m_mean = cum_mean;
    be->m_cam = cum_cam;
    be->m_finalize = cum_finalize;
    be->m_rank_scratch = cum_rank_scratch;
    be->m_rank = cum_rank;
    be->m_select_rows = cum_select_rows;
    be->m_gauss_scratch = cum_gauss_scratch;
    be->m_gauss_rows = cum_gauss_rows;
}

/* cpu_methods.c: the CPU backend's method-level entries (backend.h, m_*). Backend memory is
 * host memory, so each entry is a loop over rows or images that calls the reference
 * functions of csrc/methods (cam.c, expected.c, scorecam.c, score.c and the method files):
 * the CPU maps are those functions' results, and the CUDA kernels are checked against
 * them. Arguments are checked (NULL pointers, negative sizes) and give EGC_E_ARG. */
#include <stdlib.h>
#include <string.h>

#include "core/philox.h"
#include "cpu/cpu_methods.h"
#include "methods/methods.h"
#include "metrics/metrics_internal.h"

typedef struct scan_ctx {
    const float *x;
    int64_t chw;
    uint64_t *ids;
    float *range;
    int64_t *bad;
} scan_ctx;

static void scan_one(int64_t i, void *arg)
{
    const scan_ctx *c = arg;
    egc_image_scan(c->x + (size_t)i * (size_t)c->chw, (size_t)c->chw, c->ids ? c->ids + i : NULL,
                   c->range + 2 * i, c->bad + i);
}

static egc_status cm_scan(egc_backend *be, const float *x, int n, int64_t chw, uint64_t *ids,
                          float *range, int64_t *bad)
{
    (void)be;
    if (n <= 0) return EGC_OK;
    if (!x || !range || !bad || chw < 1)
        return EGC_FAIL(EGC_E_ARG, "cpu m_scan: bad arguments (%d images of %lld values)", n,
                        (long long)chw);
    scan_ctx c = {x, chw, ids, range, bad};
    egc_parallel_for(n, scan_one, &c);
    return EGC_OK;
}

static egc_status cm_copy(egc_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (!bytes) return EGC_OK;
    if (!dst || !src) return EGC_FAIL(EGC_E_ARG, "cpu m_copy: %zu bytes with a NULL pointer", bytes);
    if (dst != src) memmove(dst, src, bytes);
    return EGC_OK;
}

typedef struct perturb_ctx {
    const egc_sample_spec *sp;
    const float *x, *base;
    int64_t r0, chw;
    float *z;
} perturb_ctx;

static void perturb_row(int64_t t, void *arg)
{
    const perturb_ctx *c = arg;
    egc_sample_draw d = egc_sample_row(c->sp, c->r0 + t);
    egc_expected_point(c->x + (size_t)d.image * (size_t)c->chw,
                       c->base + (size_t)d.baseline * (size_t)c->chw, (size_t)c->chw, d.alpha,
                       d.sigma, d.noise_seed, d.image_id, d.sample, c->z + (size_t)t * (size_t)c->chw);
}

static egc_status cm_perturb(egc_backend *be, const egc_sample_spec *sp, const float *x,
                             const float *base, int64_t r0, int n, int64_t chw, float *z)
{
    (void)be;
    if (n <= 0) return EGC_OK;
    if (!sp || !x || !base || !z || r0 < 0 || chw < 0 || sp->S < 1)
        return EGC_FAIL(EGC_E_ARG, "cpu m_perturb: bad arguments (%d rows from %lld)", n,
                        (long long)r0);
    perturb_ctx c = {sp, x, base, r0, chw, z};
    egc_parallel_for(n, perturb_row, &c);
    return EGC_OK;
}

typedef struct score_ctx {
    const float *x, *A;
    int64_t r0;
    int K, h, w, C, H, W;
    float *z;
} score_ctx;

static void score_row(int64_t t, void *arg)
{
    const score_ctx *c = arg;
    int64_t r = c->r0 + t;
    int64_t i = r / c->K, k = r % c->K;
    size_t HW = (size_t)c->H * (size_t)c->W, hw = (size_t)c->h * (size_t)c->w;
    float *z = c->z + (size_t)t * (size_t)c->C * HW;
    egc_scorecam_mask(c->A + ((size_t)i * (size_t)c->K + (size_t)k) * hw, c->h, c->w, z, c->H,
                      c->W);
    egc_scorecam_apply(c->x + (size_t)i * (size_t)c->C * HW, c->C, (int)HW, z, z);
}

static egc_status cm_scorecam_inputs(egc_backend *be, const float *x, const float *A, int64_t r0,
                                     int n, int K, int h, int w, int C, int H, int W, float *z)
{
    (void)be;
    if (n <= 0) return EGC_OK;
    if (!x || !A || !z || r0 < 0 || K < 1 || h < 1 || w < 1 || C < 1 || H < 1 || W < 1)
        return EGC_FAIL(EGC_E_ARG, "cpu m_scorecam_inputs: bad arguments");
    score_ctx c = {x, A, r0, K, h, w, C, H, W, z};
    egc_parallel_for(n, score_row, &c);
    return EGC_OK;
}

static egc_status cm_score_seed(egc_backend *be, const float *logits, int n, int classes,
                                int32_t *cls, int64_t r0, int per, int resolve, int softmax,
                                float *seed, float *y)
{
    (void)be;
    if (n <= 0) return EGC_OK;
    if (!logits || !cls || classes < 1 || per < 1 || r0 < 0 || (resolve && (r0 || per != 1)))
        return EGC_FAIL(EGC_E_ARG, "cpu m_score_seed: bad arguments");
    for (int t = 0; t < n; t++) {
        const float *lg = logits + (size_t)t * (size_t)classes;
        int64_t i = (r0 + t) / per;
        int c = cls[i];
        if (resolve && c < 0) cls[i] = c = egc_score_argmax(lg, classes);
        if (c < 0 || c >= classes)
            return EGC_FAIL(EGC_E_ARG, "cpu m_score_seed: class %d out of range (%d classes)",
                            c, classes);
        float v = egc_score_seed(lg, classes, c, softmax,
                                 seed ? seed + (size_t)t * (size_t)classes : NULL);
        if (y) y[t] = v;
    }
    return EGC_OK;
}

static egc_status cm_accumulate(egc_backend *be, int kind, const egc_sample_spec *sp, int64_t r0,
                                int n, int64_t len, const float *src, const float *ax,
                                const float *aref, float *acc)
{
    (void)be;
    if (n <= 0 || len <= 0) return EGC_OK;
    if (!sp || sp->S < 1 || !src || !acc || r0 < 0 ||
        (kind != EGC_ACC_SUM && kind != EGC_ACC_DIFF) || (kind == EGC_ACC_DIFF && (!ax || !aref)))
        return EGC_FAIL(EGC_E_ARG, "cpu m_accumulate: bad arguments (kind %d)", kind);
    for (int t = 0; t < n; t++) {
        int64_t r = r0 + t, i = r / sp->S;
        const float *g = src + (size_t)t * (size_t)len;
        float *a = acc + (size_t)i * (size_t)len;
        if (kind == EGC_ACC_SUM) {
            egc_expected_accum_a(a, g, (size_t)len);
        } else {
            egc_sample_draw d = egc_sample_row(sp, r);
            egc_expected_accum_b(a, ax + (size_t)i * (size_t)len,
                                 aref + (size_t)d.baseline * (size_t)len, g, (size_t)len);
        }
    }
    return EGC_OK;
}

static egc_status cm_mean(egc_backend *be, float *v, int64_t n, int S)
{
    (void)be;
    if (n <= 0) return EGC_OK;
    if (!v || S < 1) return EGC_FAIL(EGC_E_ARG, "cpu m_mean: bad arguments (S = %d)", S);
    egc_expected_mean(v, (size_t)n, S);
    return EGC_OK;
}

static egc_status cm_cam(egc_backend *be, int method, const float *G, const float *A, int n, int K,
                         int hw, float *wk, float *L)
{
    (void)be;
    if (n <= 0) return EGC_OK;
    if (!G || !A || !wk || !L || K < 1 || hw < 1)
        return EGC_FAIL(EGC_E_ARG, "cpu m_cam: bad arguments");
    egc_cam_fn fn = NULL;
    switch (method) {
    case EGC_CAM_GRADCAM: fn = egc_gradcam; break;
    case EGC_CAM_GRADCAMPP: fn = egc_gradcampp; break;
    case EGC_CAM_XGRADCAM: fn = egc_xgradcam; break;
    case EGC_CAM_HIRESCAM: fn = egc_hirescam; break;
    case EGC_CAM_LAYERCAM: fn = egc_layercam; break;
    case EGC_CAM_SCORECAM: break;
    default: return EGC_FAIL(EGC_E_ARG, "cpu m_cam: unknown method %d", method);
    }
    size_t khw = (size_t)K * (size_t)hw;
    for (int i = 0; i < n; i++) {
        float *wi = wk + (size_t)i * (size_t)K, *Li = L + (size_t)i * (size_t)hw;
        if (fn) fn(G + (size_t)i * khw, A + (size_t)i * khw, K, hw, wi, Li);
        else egc_scorecam_map(G + (size_t)i * (size_t)K, A + (size_t)i * khw, K, hw, wi, Li);
    }
    return EGC_OK;
}

static egc_status cm_finalize(egc_backend *be, const float *L, int n, int h, int w, float *map,
                              int H, int W, float *scratch)
{
    (void)be;
    if (n <= 0) return EGC_OK;
    if (!L || !map || !scratch || h < 1 || w < 1 || H < 1 || W < 1)
        return EGC_FAIL(EGC_E_ARG, "cpu m_finalize: bad arguments");
    size_t hw = (size_t)h * (size_t)w, HW = (size_t)H * (size_t)W;
    for (int i = 0; i < n; i++)
        egc_cam_finalize(L + (size_t)i * hw, h, w, map + (size_t)i * HW, H, W,
                         scratch + (size_t)i * hw);
    return EGC_OK;
}

/* ---- metric entries ---- */

static size_t cm_rank_scratch(egc_backend *be, int n, int hw)
{
    (void)be;
    (void)n;
    (void)hw;
    return 0; /* egc_rank_keys allocates its own host scratch per map */
}

typedef struct rank_ctx {
    const float *maps;
    int hw;
    int32_t *key;
    egc_status *st;
} rank_ctx;

static void rank_one(int64_t i, void *arg)
{
    const rank_ctx *c = arg;
    egc_status s = egc_rank_keys(c->maps + (size_t)i * (size_t)c->hw, c->hw,
                                 c->key + (size_t)i * (size_t)c->hw);
    if (s != EGC_OK) c->st[i] = s;
}

static egc_status cm_rank(egc_backend *be, const float *maps, int n, int hw, void *scratch,
                          int32_t *key)
{
    (void)be;
    (void)scratch;
    if (n <= 0) return EGC_OK;
    if (!maps || !key || hw < 1) return EGC_FAIL(EGC_E_ARG, "cpu m_rank: bad arguments");
    egc_status *st = NULL;
    EGC_TRY(egc_calloc((void **)&st, (size_t)n, sizeof *st, "rank status"));
    rank_ctx c = {maps, hw, key, st};
    egc_parallel_for(n, rank_one, &c);
    egc_status r = EGC_OK;
    for (int i = 0; i < n && r == EGC_OK; i++) r = st[i];
    free(st);
    return r == EGC_OK ? EGC_OK : EGC_FAIL(r, "cpu m_rank: out of host memory");
}

typedef struct select_ctx {
    const egc_select_spec *sp;
    int64_t r0;
    float *out;
} select_ctx;

static void select_one(int64_t t, void *arg)
{
    const select_ctx *c = arg;
    egc_select_row(c->sp, c->r0 + t,
                   c->out + (size_t)t * (size_t)c->sp->C * (size_t)c->sp->hw);
}

static egc_status cm_select_rows(egc_backend *be, const egc_select_spec *sp, int64_t r0, int n,
                                 float *out)
{
    (void)be;
    if (n <= 0) return EGC_OK;
    EGC_TRY(egc_select_spec_check(sp, r0, n, out, "cpu"));
    select_ctx c = {sp, r0, out};
    egc_parallel_for(n, select_one, &c);
    return EGC_OK;
}

static size_t cm_gauss_scratch(egc_backend *be, int n, int64_t chw)
{
    (void)be;
    (void)n;
    (void)chw;
    return 0; /* egc_gauss_row sums each row's dot product in place */
}

typedef struct gauss_ctx {
    const egc_gauss_spec *sp;
    int64_t r0;
    float *out;
    double *aux;
} gauss_ctx;

static void gauss_one(int64_t t, void *arg)
{
    const gauss_ctx *c = arg;
    c->aux[t] = egc_gauss_row(c->sp, c->r0 + t,
                              c->out + (size_t)t * (size_t)c->sp->C * (size_t)c->sp->hw);
}

static egc_status cm_gauss_rows(egc_backend *be, const egc_gauss_spec *sp, int64_t r0, int n,
                                void *scratch, float *out, double *aux)
{
    (void)be;
    (void)scratch;
    if (n <= 0) return EGC_OK;
    EGC_TRY(egc_gauss_spec_check(sp, r0, n, out, aux, "cpu"));
    gauss_ctx c = {sp, r0, out, aux};
    egc_parallel_for(n, gauss_one, &c);
    return EGC_OK;
}

void egc_cpu_methods_install(egc_backend *be)
{
    be->m_scan = cm_scan;
    be->m_copy = cm_copy;
    be->m_perturb = cm_perturb;
    be->m_scorecam_inputs = cm_scorecam_inputs;
    be->m_score_seed = cm_score_seed;
    be->m_accumulate = cm_accumulate;
    be->m_mean = cm_mean;
    be->m_cam = cm_cam;
    be->m_finalize = cm_finalize;
    be->m_rank_scratch = cm_rank_scratch;
    be->m_rank = cm_rank;
    be->m_select_rows = cm_select_rows;
    be->m_gauss_scratch = cm_gauss_scratch;
    be->m_gauss_rows = cm_gauss_rows;
}

/* metric_rows.c: the CPU references of the backend entries m_select_rows and m_gauss_rows
 * (backend.h): one masked-replacement row (the ranks of m_rank are egc_rank_keys,
 * evaluator.c) and one Gaussian-infidelity row with its dot product, and the checks of
 * their specs that both backends make. The CPU backend runs them (csrc/cpu/cpu_methods.c);
 * the CUDA kernels of kernels/metric_*.cu are checked against them. */
#include <string.h>

#include "backend/backend.h"
#include "core/core.h"
#include "core/philox.h"
#include "metrics/metrics_internal.h"

void egc_select_row(const egc_select_spec *sp, int64_t r, float *out)
{
    int64_t i = r / sp->rows_per, k = r % sp->rows_per;
    int64_t thr = k * sp->thr_step;
    if (thr > sp->thr_max) thr = sp->thr_max;
    size_t hw = (size_t)sp->hw;
    const int32_t *key = sp->key + (size_t)i * (size_t)sp->key_stride;
    for (int c = 0; c < sp->C; c++) {
        const float *a = sp->a + ((size_t)i * (size_t)sp->C + (size_t)c) * hw;
        const float *b = sp->b ? sp->b + ((size_t)i * (size_t)sp->C + (size_t)c) * hw : NULL;
        float bc = sp->bconst[c], *o = out + (size_t)c * hw;
        for (size_t p = 0; p < hw; p++) o[p] = key[p] < thr ? (b ? b[p] : bc) : a[p];
    }
}

egc_status egc_select_spec_check(const egc_select_spec *sp, int64_t r0, int n, const void *out,
                                 const char *who)
{
    if (!sp || !sp->a || !sp->key || !out || r0 < 0 || sp->C < 1 || sp->C > 4 || sp->hw < 1 ||
        sp->rows_per < 1 || sp->thr_step < 0 || sp->thr_max < 0 || sp->key_stride < 0)
        return EGC_FAIL(EGC_E_ARG, "%s m_select_rows: bad arguments (%d rows from %lld)", who, n,
                        (long long)r0);
    return EGC_OK;
}

double egc_gauss_row(const egc_gauss_spec *sp, int64_t r, float *out)
{
    int64_t i = r / sp->rows_per, k = r % sp->rows_per;
    size_t hw = (size_t)sp->hw, chw = (size_t)sp->C * hw;
    const float *x = sp->x + (size_t)i * chw, *phi = sp->phi + (size_t)i * hw;
    if (k == 0) {
        memcpy(out, x, chw * sizeof(float));
        return 0.0;
    }
    uint32_t s = (uint32_t)(k - 1) + (sp->sample0 ? sp->sample0[i] : 0u);
    /* out first holds the standard normals of sample s, then x - sigma * normal. */
    egc_sample_normals(sp->seed, sp->ids[i], s, chw, out);
    double sum = 0;
    float sg = sp->sigma;
    for (size_t j = 0; j < chw; j++) {
        float I = sg * out[j];
        sum += (double)phi[j % hw] * (double)I;
        out[j] = x[j] - I;
    }
    return sum;
}

egc_status egc_gauss_spec_check(const egc_gauss_spec *sp, int64_t r0, int n, const void *out,
                                const double *aux, const char *who)
{
    if (!sp || !sp->x || !sp->phi || !sp->ids || !out || !aux || r0 < 0 || sp->C < 1 ||
        sp->hw < 1 || sp->rows_per < 1 || !(sp->sigma > 0.0f))
        return EGC_FAIL(EGC_E_ARG, "%s m_gauss_rows: bad arguments (%d rows from %lld)", who, n,
                        (long long)r0);
    return EGC_OK;
}

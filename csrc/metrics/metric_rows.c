/* metric_rows.c: the CPU reference of the backend entry m_select_rows (backend.h): one
 * masked-replacement row (the ranks of m_rank are egc_rank_keys, evaluator.c), and the check
 * of a select spec that both backends make. The CPU backend runs them
 * (csrc/cpu/cpu_methods.c); the CUDA kernels of kernels/metric_*.cu are checked against
 * them. */
#include "backend/backend.h"
#include "core/core.h"
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

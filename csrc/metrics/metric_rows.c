/* metric_rows.c: the CPU references of the metric-level backend entries (backend.h,
 * m_rank and m_select_rows): the pixel ranks of a map and one masked-replacement row. The
 * CPU backend runs them (csrc/cpu/cpu_methods.c); the CUDA kernels of kernels/metric_*.cu
 * are checked against them. */
#include <stdlib.h>

#include "backend/backend.h"
#include "core/core.h"
#include "metrics/metrics_internal.h"

egc_status egc_rank_keys(const float *map, int hw, int32_t *key)
{
    int *order = NULL;
    EGC_TRY(egc_malloc((void **)&order, (size_t)(hw > 0 ? hw : 1), sizeof(int), "pixel order"));
    egc_status st = egc_rank_pixels(map, hw, order);
    if (st == EGC_OK)
        for (int k = 0; k < hw; k++) key[order[k]] = k;
    free(order);
    return st;
}

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

/* complexity.c: the complexity metrics of METRICS.md: Gini sparseness and entropy
 * complexity of a map. Contracts in include/egcam/metrics.h. */
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "metrics/metrics_internal.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

egc_status egc_sparseness(const float *map, int n, float *out)
{
    if (!map || !out || n < 1) return EGC_FAIL(EGC_E_ARG, "sparseness: empty map");
    double *a = NULL;
    EGC_TRY(egc_malloc((void **)&a, (size_t)n, sizeof(double), "sparseness values"));
    double sum = 0;
    for (int i = 0; i < n; i++) {
        a[i] = fabs((double)map[i]) + 1e-7;
        sum += a[i];
    }
    qsort(a, (size_t)n, sizeof(double), cmp_double);
    double g = 0;
    for (int i = 0; i < n; i++) g += (double)(2 * (i + 1) - n - 1) * a[i];
    *out = (float)(g / ((double)n * sum));
    free(a);
    return EGC_OK;
}

float egc_complexity(const float *map, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++) sum += fabs((double)map[i]);
    if (!(sum > 0)) return 0.0f;
    double h = 0;
    for (int i = 0; i < n; i++) {
        double p = fabs((double)map[i]) / sum;
        h -= p * log(p + 1e-12);
    }
    return (float)h;
}

/* philox.c: bulk draws of the sampled CAM methods (baseline index, alpha, normal noise,
 * uniform bytes) and the image id. The exact definitions are in philox.h. */
#include <string.h>

#include "core/philox.h"

uint64_t egc_image_id(const float *x, size_t n)
{
    uint64_t sum = 0;
    for (size_t j = 0; j < n; j++) {
        uint32_t u;
        memcpy(&u, &x[j], sizeof u);
        sum += egc_id_word((uint64_t)j, u);
    }
    return egc_id_final(sum, (uint64_t)n);
}

void egc_image_scan(const float *x, size_t n, uint64_t *id, float range[2], int64_t *bad)
{
    if (id) *id = egc_image_id(x, n);
    float mn = INFINITY, mx = -INFINITY;
    *bad = -1;
    for (size_t j = 0; j < n; j++) {
        if (!isfinite(x[j])) {
            if (*bad < 0) *bad = (int64_t)j;
            continue;
        }
        float v = x[j] + 0.0f; /* -0 as +0 */
        if (v < mn) mn = v;
        if (v > mx) mx = v;
    }
    range[0] = mn;
    range[1] = mx;
}

void egc_sample_scalars(uint64_t seed, uint64_t image_id, uint32_t sample_id, uint32_t R,
                        uint32_t *baseline, float *alpha)
{
    egc_philox4 w = egc_philox_block(seed, image_id, sample_id, 0);
    if (baseline) *baseline = (uint32_t)(((uint64_t)w.v[0] * (uint64_t)(R ? R : 1)) >> 32);
    if (alpha) *alpha = (float)(w.v[1] >> 8) * (1.0f / 16777216.0f);
}

void egc_sample_normals(uint64_t seed, uint64_t image_id, uint32_t sample_id, size_t n,
                        float *out)
{
    for (size_t j = 0; j < n; j += 4) {
        egc_philox4 w = egc_philox_block(seed, image_id, sample_id, (uint32_t)(1 + j / 4));
        float v[4];
        egc_philox_normal4(w, v);
        size_t m = n - j < 4 ? n - j : 4;
        for (size_t t = 0; t < m; t++) out[j + t] = v[t];
    }
}

void egc_sample_bytes(uint64_t seed, uint64_t image_id, uint32_t sample_id, size_t n,
                      uint8_t *out)
{
    for (size_t j = 0; j < n; j += 4) {
        egc_philox4 w = egc_philox_block(seed, image_id, sample_id, (uint32_t)(j / 4));
        size_t m = n - j < 4 ? n - j : 4;
        for (size_t t = 0; t < m; t++) out[j + t] = (uint8_t)(w.v[t] >> 24);
    }
}

/* scorecam.c: Score-CAM's per-image math: the masks (each channel upsampled and min-max
 * normalised), the masked inputs, and the map from the masked scores. The K masked forwards
 * are batched by explain.c. */
#include <math.h>

#include "methods/methods.h"

void egc_scorecam_mask(const float *ak, int h, int w, float *mask, int H, int W)
{
    egc_cam_upsample_bilinear(ak, h, w, mask, H, W);
    int n = H * W;
    float mn = mask[0], mx = mask[0];
    for (int i = 1; i < n; i++) {
        if (mask[i] < mn) mn = mask[i];
        if (mask[i] > mx) mx = mask[i];
    }
    float den = (mx - mn) + 1e-8f;
    for (int i = 0; i < n; i++) mask[i] = (mask[i] - mn) / den;
}

void egc_scorecam_apply(const float *x, int C, int HW, const float *mask, float *z)
{
    /* Planes 1..C-1 first, so that z's plane 0 may hold the mask. */
    for (int c = C - 1; c >= 0; c--) {
        const float *xc = x + (size_t)c * (size_t)HW;
        float *zc = z + (size_t)c * (size_t)HW;
        for (int i = 0; i < HW; i++) zc[i] = xc[i] * mask[i];
    }
}

void egc_scorecam_map(const float *s, const float *a, int K, int hw, float *wk, float *L)
{
    double mx = -INFINITY;
    for (int k = 0; k < K; k++)
        if (s[k] > mx) mx = s[k];
    double sum = 0;
    for (int k = 0; k < K; k++) sum += exp((double)s[k] - mx);
    for (int k = 0; k < K; k++) wk[k] = (float)(exp((double)s[k] - mx) / sum);
    egc_cam_weighted_sum(wk, a, K, hw, L);
    egc_cam_relu(L, hw);
}

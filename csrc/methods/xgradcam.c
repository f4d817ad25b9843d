/* xgradcam.c: XGrad-CAM: w_k = sum_ij g_kij A_kij / (sum_ab A_kab + 1e-7);
 * L = relu(sum_k w_k A_k). */
#include "methods/methods.h"

void egc_xgradcam(const float *g, const float *a, int K, int hw, float *wk, float *L)
{
    for (int k = 0; k < K; k++) {
        const float *gk = g + (size_t)k * (size_t)hw, *ak = a + (size_t)k * (size_t)hw;
        double sa = 0, sga = 0;
        for (int i = 0; i < hw; i++) {
            sa += ak[i];
            sga += (double)gk[i] * ak[i];
        }
        wk[k] = (float)(sga / (sa + 1e-7));
    }
    egc_cam_weighted_sum(wk, a, K, hw, L);
    egc_cam_relu(L, hw);
}

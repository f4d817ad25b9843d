/* gradcampp.c: Grad-CAM++ in its closed form (powers of the first-order gradient stand in
 * for the higher derivatives, as for an exponential score):
 * alpha = g^2 / (2 g^2 + (sum_ab A_kab) g^3 + 1e-6), 0 where g = 0;
 * w_k = sum_ij alpha_kij relu(g_kij); L = relu(sum_k w_k A_k). */
#include "methods/methods.h"

void egc_gradcampp(const float *g, const float *a, int K, int hw, float *wk, float *L)
{
    for (int k = 0; k < K; k++) {
        const float *gk = g + (size_t)k * (size_t)hw, *ak = a + (size_t)k * (size_t)hw;
        double sa = 0;
        for (int i = 0; i < hw; i++) sa += ak[i];
        double w = 0;
        for (int i = 0; i < hw; i++) {
            double gv = gk[i];
            if (gv == 0.0 || gv < 0.0) continue; /* relu(g) = 0: no contribution */
            double g2 = gv * gv, g3 = g2 * gv;
            double al = g2 / (2.0 * g2 + sa * g3 + 1e-6);
            w += al * gv;
        }
        wk[k] = (float)w;
    }
    egc_cam_weighted_sum(wk, a, K, hw, L);
    egc_cam_relu(L, hw);
}

/* layercam.c: LayerCAM: positive gradients weight each activation element:
 * L_ij = relu(sum_k relu(g_kij) A_kij). */
#include "methods/methods.h"

void egc_layercam(const float *g, const float *a, int K, int hw, float *wk, float *L)
{
    (void)wk;
    for (int i = 0; i < hw; i++) {
        double s = 0;
        for (int k = 0; k < K; k++) {
            size_t o = (size_t)k * (size_t)hw + i;
            if (g[o] > 0.0f) s += (double)g[o] * a[o];
        }
        L[i] = (float)s;
    }
    egc_cam_relu(L, hw);
}

/* hirescam.c: HiResCAM: the element-wise product of gradient and activation summed over
 * channels, no pooling: L_ij = relu(sum_k g_kij A_kij). */
#include "methods/methods.h"

void egc_hirescam(const float *g, const float *a, int K, int hw, float *wk, float *L)
{
    (void)wk;
    for (int i = 0; i < hw; i++) {
        double s = 0;
        for (int k = 0; k < K; k++) {
            size_t o = (size_t)k * (size_t)hw + i;
            s += (double)g[o] * a[o];
        }
        L[i] = (float)s;
    }
    egc_cam_relu(L, hw);
}

/* gradcam.c: Grad-CAM: channel weights are the spatial mean of the gradient,
 * L = relu(sum_k w_k A_k). */
#include "methods/methods.h"

void egc_gradcam(const float *g, const float *a, int K, int hw, float *wk, float *L)
{
    egc_cam_channel_mean(g, K, hw, wk);
    egc_cam_weighted_sum(wk, a, K, hw, L);
    egc_cam_relu(L, hw);
}

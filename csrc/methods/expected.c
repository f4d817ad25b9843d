/* expected.c: the sampled-gradient family (Expected Grad-CAM, Integrated Grad-CAM,
 * SmoothGrad-CAM): the sample points, the three aggregations and the blur baseline.
 * explain.c drives the batched passes; the draws are specified in core/philox.h. */
#include <math.h>

#include "core/philox.h"
#include "methods/methods.h"

void egc_expected_point(const float *x, const float *xr, size_t n, float alpha, float sigma,
                        uint64_t noise_seed, uint64_t image_id, uint32_t sample_id, float *z)
{
    if (!(sigma > 0.0f)) {
        for (size_t j = 0; j < n; j++) {
            float d = x[j] - xr[j];
            float t = alpha * d;
            z[j] = xr[j] + t;
        }
        return;
    }
    for (size_t j = 0; j < n; j += 4) {
        float v[4];
        egc_philox_normal4(egc_philox_block(noise_seed, image_id, sample_id, (uint32_t)(1 + j / 4)),
                           v);
        size_t m = n - j < 4 ? n - j : 4;
        for (size_t t = 0; t < m; t++) {
            float d = x[j + t] - xr[j + t];
            float ad = alpha * d;
            float zz = xr[j + t] + ad;
            float e = sigma * v[t];
            z[j + t] = zz + e;
        }
    }
}

void egc_expected_accum_a(float *acc, const float *G, size_t n)
{
    for (size_t i = 0; i < n; i++) acc[i] += G[i];
}

void egc_expected_accum_b(float *acc, const float *Ax, const float *Ar, const float *G, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float d = Ax[i] - Ar[i];
        acc[i] += d * G[i];
    }
}

void egc_expected_accum_c(float *mapacc, const float *G, const float *Az, int K, int hw,
                          float *wk, float *tmp)
{
    egc_gradcam(G, Az, K, hw, wk, tmp);
    for (int i = 0; i < hw; i++) mapacc[i] += tmp[i];
}

void egc_expected_mean(float *v, size_t n, int S)
{
    float s = (float)S;
    for (size_t i = 0; i < n; i++) v[i] = v[i] / s;
}

void egc_expected_map_b(const float *phi, const float *Ax, int K, int hw, float *wk, float *L)
{
    egc_cam_channel_mean(phi, K, hw, wk);
    egc_cam_weighted_sum(wk, Ax, K, hw, L);
    egc_cam_relu(L, hw);
}

void egc_blur_gaussian11(const float *x, int C, int H, int W, float *tmp, float *out)
{
    double kd[11], sum = 0;
    for (int t = 0; t < 11; t++) {
        kd[t] = exp(-(double)((t - 5) * (t - 5)) / 50.0);
        sum += kd[t];
    }
    float k[11];
    for (int t = 0; t < 11; t++) k[t] = (float)(kd[t] / sum);
    for (int c = 0; c < C; c++) {
        const float *xc = x + (size_t)c * (size_t)H * (size_t)W;
        float *oc = out + (size_t)c * (size_t)H * (size_t)W;
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                float s = 0.0f;
                for (int t = 0; t < 11; t++) {
                    int q = xx + t - 5;
                    if (q >= 0 && q < W) s += k[t] * xc[(size_t)y * W + q];
                }
                tmp[(size_t)y * W + xx] = s;
            }
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                float s = 0.0f;
                for (int t = 0; t < 11; t++) {
                    int q = y + t - 5;
                    if (q >= 0 && q < H) s += k[t] * tmp[(size_t)q * W + xx];
                }
                oc[(size_t)y * W + xx] = s;
            }
    }
}

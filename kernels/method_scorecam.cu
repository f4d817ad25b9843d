/* method_scorecam.cu: Score-CAM's masked inputs on the device (m_scorecam_inputs; CPU
 * reference egc_scorecam_mask / egc_scorecam_apply in csrc/methods/scorecam.c). Row r of
 * the group is image i = r / K masked by its channel k = r % K: the channel upsampled to
 * H x W (half-pixel centres), min-max normalised with eps 1e-8, multiplied into each of the
 * C planes of the image. One block per row: a pass for the mask's min and max, a pass that
 * recomputes the mask and writes the C planes; round-to-nearest intrinsics make the inputs
 * the CPU's bit for bit. */
#include "method_util.cuh"

namespace {

__global__ void scorecam_kernel(const float *x, const float *A, int64_t r0, int64_t n, int K,
                                int h, int w, int C, int H, int W, float *z)
{
    const int64_t HW = (int64_t)H * W, hw = (int64_t)h * w;
    for (int64_t t = blockIdx.x; t < n; t += gridDim.x) {
        int64_t r = r0 + t, i = r / K, k = r % K;
        const float *ak = A + (i * K + k) * hw, *xi = x + i * C * HW;
        float *zt = z + t * C * HW;
        float mn = INFINITY, mx = -INFINITY;
        for (int64_t p = threadIdx.x; p < HW; p += blockDim.x) {
            float v = egc_m_upsample_at(ak, h, w, H, W, (int)(p / W), (int)(p % W));
            mn = fminf(mn, v);
            mx = fmaxf(mx, v);
        }
        mn = egc_m_block_min(mn);
        mx = egc_k_block_max(mx);
        float den = __fadd_rn(__fsub_rn(mx, mn), 1e-8f);
        for (int64_t p = threadIdx.x; p < HW; p += blockDim.x) {
            float v = egc_m_upsample_at(ak, h, w, H, W, (int)(p / W), (int)(p % W));
            float mask = __fdiv_rn(__fsub_rn(v, mn), den);
            for (int c = 0; c < C; c++) zt[c * HW + p] = __fmul_rn(xi[c * HW + p], mask);
        }
    }
}

} // namespace

extern "C" int egc_k_scorecam_inputs(const float *x, const float *A, int64_t r0, int64_t n, int K,
                                     int h, int w, int C, int H, int W, float *z, void *stream)
{
    if (n <= 0 || K <= 0 || h <= 0 || w <= 0 || C <= 0 || H <= 0 || W <= 0) return 0;
    unsigned g = (unsigned)(n < 65535 ? n : 65535);
    scorecam_kernel<<<g, EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, A, r0, n, K, h, w, C, H, W,
                                                                   z);
    return egc_k_status();
}

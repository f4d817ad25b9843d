/* method_finalize.cu: the shared post-processing of every CAM on the device (m_finalize;
 * CPU reference egc_cam_finalize in csrc/methods/cam.c): per image, min-max of the raw map
 * [h,w] into scratch, bilinear upsampling to [H,W] (half-pixel centres), min-max again. One
 * block per image; the float steps use round-to-nearest intrinsics, min and max are exact,
 * so the map is the CPU's bit for bit. */
#include "method_util.cuh"

namespace {

__global__ void finalize_kernel(const float *L, int64_t n, int h, int w, float *map, int H, int W,
                                float *scratch)
{
    const int hw = h * w, HW = H * W;
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const float *l = L + i * hw;
        float *sc = scratch + i * hw, *m = map + i * (int64_t)HW;
        float mn = INFINITY, mx = -INFINITY;
        for (int j = threadIdx.x; j < hw; j += blockDim.x) {
            mn = fminf(mn, l[j]);
            mx = fmaxf(mx, l[j]);
        }
        mn = egc_m_block_min(mn);
        mx = egc_k_block_max(mx);
        float den = __fadd_rn(__fsub_rn(mx, mn), 1e-7f);
        for (int j = threadIdx.x; j < hw; j += blockDim.x) sc[j] = __fdiv_rn(__fsub_rn(l[j], mn), den);
        __syncthreads(); /* sc is read by every thread below */
        mn = INFINITY;
        mx = -INFINITY;
        for (int p = threadIdx.x; p < HW; p += blockDim.x) {
            float v = egc_m_upsample_at(sc, h, w, H, W, p / W, p % W);
            m[p] = v;
            mn = fminf(mn, v);
            mx = fmaxf(mx, v);
        }
        mn = egc_m_block_min(mn);
        mx = egc_k_block_max(mx);
        den = __fadd_rn(__fsub_rn(mx, mn), 1e-7f);
        /* each thread rescales the pixels it wrote */
        for (int p = threadIdx.x; p < HW; p += blockDim.x) m[p] = __fdiv_rn(__fsub_rn(m[p], mn), den);
        __syncthreads(); /* before the next image reuses nothing but keep the block in step */
    }
}

} // namespace

extern "C" int egc_k_cam_finalize(const float *L, int64_t n, int h, int w, float *map, int H,
                                  int W, float *scratch, void *stream)
{
    if (n <= 0 || h <= 0 || w <= 0 || H <= 0 || W <= 0) return 0;
    unsigned g = (unsigned)(n < 65535 ? n : 65535);
    finalize_kernel<<<g, 512, 0, egc_k_stream(stream)>>>(L, n, h, w, map, H, W, scratch);
    return egc_k_status();
}

/* convert_nchw_to_nhwc_f16.cu: x [n, c, hw] float32 -> y [n, hw, cy] float16 (round to nearest
 * even; channels c..cy-1 zero), the entry conversion of the mixed-precision path (activations
 * NCHW -> NHWC, and convolution weights KCRS -> KRSC with n = K, c = C/group, hw = R*S; cy > c
 * pads a convolution's input channels, e.g. an RGB input to 8, for tensor-core kernels). A
 * 32x32 tile of each image's [c, hw] matrix goes through shared memory so reads and writes are
 * both coalesced. */
#include <cuda_fp16.h>

#include "kernel_util.cuh"

namespace {

constexpr int kTile = 32;

__global__ void nchw_to_nhwc_f16_kernel(const float *x, __half *y, int64_t c, int64_t cy,
                                        int64_t hw)
{
    __shared__ float tile[kTile][kTile + 1];
    const int64_t img = blockIdx.z;
    const int64_t p0 = (int64_t)blockIdx.x * kTile, c0 = (int64_t)blockIdx.y * kTile;
    const float *xi = x + img * c * hw;
    __half *yi = y + img * cy * hw;
    for (int r = threadIdx.y; r < kTile; r += blockDim.y) { /* r: channel in the tile */
        int64_t ch = c0 + r, p = p0 + threadIdx.x;
        if (p < hw) tile[r][threadIdx.x] = ch < c ? xi[ch * hw + p] : 0.0f;
    }
    __syncthreads();
    for (int r = threadIdx.y; r < kTile; r += blockDim.y) { /* r: position in the tile */
        int64_t p = p0 + r, ch = c0 + threadIdx.x;
        if (p < hw && ch < cy) yi[p * cy + ch] = __float2half_rn(tile[threadIdx.x][r]);
    }
}

} // namespace

extern "C" int egc_k_nchw_to_nhwc_f16_pad(const float *x, uint16_t *y, int64_t n, int64_t c,
                                          int64_t cy, int64_t hw, void *stream)
{
    if (n <= 0 || c <= 0 || hw <= 0) return 0;
    if (cy < c) return (int)cudaErrorInvalidValue;
    int64_t gx = (hw + kTile - 1) / kTile, gy = (cy + kTile - 1) / kTile;
    if (gx > 0x7fffffff || gy > 65535) return (int)cudaErrorInvalidValue;
    __half *yh = reinterpret_cast<__half *>(y);
    for (int64_t n0 = 0; n0 < n; n0 += 65535) { /* gridDim.z is at most 65535 */
        int64_t nb = n - n0 < 65535 ? n - n0 : 65535;
        dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)nb);
        dim3 block(kTile, 8);
        nchw_to_nhwc_f16_kernel<<<grid, block, 0, egc_k_stream(stream)>>>(
            x + n0 * c * hw, yh + n0 * cy * hw, c, cy, hw);
        int e = egc_k_status();
        if (e) return e;
    }
    return 0;
}

extern "C" int egc_k_nchw_to_nhwc_f16(const float *x, uint16_t *y, int64_t n, int64_t c,
                                      int64_t hw, void *stream)
{
    return egc_k_nchw_to_nhwc_f16_pad(x, y, n, c, c, hw, stream);
}

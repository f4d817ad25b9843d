/* convert_nhwc_f16_to_nchw.cu: x [n, hw, c] float16 -> y [n, c, hw] float32 (exact), the exit
 * conversion of the mixed-precision path (fp16 NHWC activations back to the dense fp32 NCHW
 * the rest of the engine reads). Tiled through shared memory like the entry conversion. */
#include <cuda_fp16.h>

#include "kernel_util.cuh"

namespace {

constexpr int kTile = 32;

__global__ void nhwc_f16_to_nchw_kernel(const __half *x, float *y, int64_t c, int64_t hw)
{
    __shared__ float tile[kTile][kTile + 1];
    const int64_t img = blockIdx.z;
    const int64_t p0 = (int64_t)blockIdx.x * kTile, c0 = (int64_t)blockIdx.y * kTile;
    const __half *xi = x + img * c * hw;
    float *yi = y + img * c * hw;
    for (int r = threadIdx.y; r < kTile; r += blockDim.y) { /* r: position in the tile */
        int64_t p = p0 + r, ch = c0 + threadIdx.x;
        if (p < hw && ch < c) tile[r][threadIdx.x] = __half2float(xi[p * c + ch]);
    }
    __syncthreads();
    for (int r = threadIdx.y; r < kTile; r += blockDim.y) { /* r: channel in the tile */
        int64_t ch = c0 + r, p = p0 + threadIdx.x;
        if (ch < c && p < hw) yi[ch * hw + p] = tile[threadIdx.x][r];
    }
}

} // namespace

extern "C" int egc_k_nhwc_f16_to_nchw(const uint16_t *x, float *y, int64_t n, int64_t c,
                                      int64_t hw, void *stream)
{
    if (n <= 0 || c <= 0 || hw <= 0) return 0;
    int64_t gx = (hw + kTile - 1) / kTile, gy = (c + kTile - 1) / kTile;
    if (gx > 0x7fffffff || gy > 65535) return (int)cudaErrorInvalidValue;
    const __half *xh = reinterpret_cast<const __half *>(x);
    for (int64_t n0 = 0; n0 < n; n0 += 65535) {
        int64_t nb = n - n0 < 65535 ? n - n0 : 65535;
        dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)nb);
        dim3 block(kTile, 8);
        nhwc_f16_to_nchw_kernel<<<grid, block, 0, egc_k_stream(stream)>>>(xh + n0 * c * hw,
                                                                          y + n0 * c * hw, c, hw);
        int e = egc_k_status();
        if (e) return e;
    }
    return 0;
}

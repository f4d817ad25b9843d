/* clip_f16.cu: y = min(max(x, lo), hi) on float16 tensors (any layout, computed in float32):
 * Relu (lo = 0, hi = +inf) and Clip/Relu6 of the mixed-precision path. x and y may be the
 * same buffer. 8 elements per thread with 16-byte accesses when both are 16-byte aligned. */
#include <cuda_fp16.h>

#include "kernel_util.cuh"

namespace {

__device__ __forceinline__ __half clip1(__half v, float lo, float hi)
{
    return __float2half_rn(fminf(fmaxf(__half2float(v), lo), hi));
}

__global__ void clip_f16_vec_kernel(const uint4 *x, uint4 *y, float lo, float hi, int64_t nv)
{
    for (int64_t i = egc_k_tid(); i < nv; i += egc_k_nthreads()) {
        uint4 v = x[i];
        __half *h = reinterpret_cast<__half *>(&v);
        for (int k = 0; k < 8; k++) h[k] = clip1(h[k], lo, hi);
        y[i] = v;
    }
}

__global__ void clip_f16_kernel(const __half *x, __half *y, float lo, float hi, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) y[i] = clip1(x[i], lo, hi);
}

} // namespace

extern "C" int egc_k_clip_f16(const uint16_t *x, uint16_t *y, float lo, float hi, int64_t n,
                              void *stream)
{
    if (n <= 0) return 0;
    const __half *xh = reinterpret_cast<const __half *>(x);
    __half *yh = reinterpret_cast<__half *>(y);
    int64_t head = 0;
    if ((((uintptr_t)x | (uintptr_t)y) & 15) == 0 && n >= 8) {
        int64_t nv = n / 8;
        clip_f16_vec_kernel<<<egc_k_blocks(nv), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
            reinterpret_cast<const uint4 *>(x), reinterpret_cast<uint4 *>(y), lo, hi, nv);
        int e = egc_k_status();
        if (e) return e;
        head = nv * 8;
    }
    if (head < n)
        clip_f16_kernel<<<egc_k_blocks(n - head), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
            xh + head, yh + head, lo, hi, n - head);
    return egc_k_status();
}

/* bias_act_f16.cu: the epilogue of a float16 NHWC convolution, in place:
 * y[n, hw, c] = act(y + bias[c] + z[n, hw, c]) computed in float32 ((y + bias) + z) and
 * rounded once, with bias float32 [c] (NULL: no bias), z float16 of y's shape (NULL: none;
 * the residual input of a Conv -> Add that the Conv does itself) and act 0 (identity) or 1
 * (Relu: max(., 0)). */
#include <cuda_fp16.h>

#include "kernel_util.cuh"

namespace {

__device__ __forceinline__ __half bias_act1(__half y, float b, const __half *z, int relu)
{
    float v = __half2float(y) + b;
    if (z) v = v + __half2float(*z);
    if (relu) v = v > 0.0f ? v : 0.0f;
    return __float2half_rn(v);
}

/* c % 8 == 0 and y (and z) 16-byte aligned: 8 consecutive channels per thread. */
__global__ void bias_act_f16_vec_kernel(uint4 *y, const float *bias, const uint4 *z, int64_t c,
                                        int relu, int64_t nv)
{
    for (int64_t i = egc_k_tid(); i < nv; i += egc_k_nthreads()) {
        uint4 v = y[i], vz;
        if (z) vz = z[i];
        __half *h = reinterpret_cast<__half *>(&v);
        const __half *hz = z ? reinterpret_cast<const __half *>(&vz) : nullptr;
        int64_t c0 = (i * 8) % c;
        for (int k = 0; k < 8; k++)
            h[k] = bias_act1(h[k], bias ? bias[c0 + k] : 0.0f, hz ? hz + k : nullptr, relu);
        y[i] = v;
    }
}

__global__ void bias_act_f16_kernel(__half *y, const float *bias, const __half *z, int64_t c,
                                    int relu, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads())
        y[i] = bias_act1(y[i], bias ? bias[i % c] : 0.0f, z ? z + i : nullptr, relu);
}

} // namespace

extern "C" int egc_k_bias_act_f16(uint16_t *y, const float *bias, const uint16_t *z, int64_t n,
                                  int64_t hw, int64_t c, int relu, void *stream)
{
    int64_t total = n * hw * c;
    if (total <= 0) return 0;
    if (c % 8 == 0 && (((uintptr_t)y | (uintptr_t)z) & 15) == 0) {
        int64_t nv = total / 8;
        bias_act_f16_vec_kernel<<<egc_k_blocks(nv), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
            reinterpret_cast<uint4 *>(y), bias, reinterpret_cast<const uint4 *>(z), c, relu, nv);
        return egc_k_status();
    }
    bias_act_f16_kernel<<<egc_k_blocks(total), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
        reinterpret_cast<__half *>(y), bias, reinterpret_cast<const __half *>(z), c, relu, total);
    return egc_k_status();
}

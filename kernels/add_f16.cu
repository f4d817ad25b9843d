/* add_f16.cu: y = a + b (then max(., 0) when relu is set) on float16 tensors of the same
 * shape and layout, summed in float32 and rounded once: the residual Add (and Add+Relu) of
 * the mixed-precision path. y may be a or b. 8 elements per thread with 16-byte accesses when
 * all three are 16-byte aligned. */
#include <cuda_fp16.h>

#include "kernel_util.cuh"

namespace {

__device__ __forceinline__ __half add1(__half a, __half b, int relu)
{
    float v = __half2float(a) + __half2float(b);
    if (relu) v = v > 0.0f ? v : 0.0f;
    return __float2half_rn(v);
}

__global__ void add_f16_vec_kernel(const uint4 *a, const uint4 *b, uint4 *y, int relu, int64_t nv)
{
    for (int64_t i = egc_k_tid(); i < nv; i += egc_k_nthreads()) {
        uint4 va = a[i], vb = b[i];
        __half *ha = reinterpret_cast<__half *>(&va);
        const __half *hb = reinterpret_cast<const __half *>(&vb);
        for (int k = 0; k < 8; k++) ha[k] = add1(ha[k], hb[k], relu);
        y[i] = va;
    }
}

__global__ void add_f16_kernel(const __half *a, const __half *b, __half *y, int relu, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) y[i] = add1(a[i], b[i], relu);
}

} // namespace

extern "C" int egc_k_add_f16(const uint16_t *a, const uint16_t *b, uint16_t *y, int relu,
                             int64_t n, void *stream)
{
    if (n <= 0) return 0;
    int64_t head = 0;
    if ((((uintptr_t)a | (uintptr_t)b | (uintptr_t)y) & 15) == 0 && n >= 8) {
        int64_t nv = n / 8;
        add_f16_vec_kernel<<<egc_k_blocks(nv), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
            reinterpret_cast<const uint4 *>(a), reinterpret_cast<const uint4 *>(b),
            reinterpret_cast<uint4 *>(y), relu, nv);
        int e = egc_k_status();
        if (e) return e;
        head = nv * 8;
    }
    if (head < n)
        add_f16_kernel<<<egc_k_blocks(n - head), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
            reinterpret_cast<const __half *>(a) + head, reinterpret_cast<const __half *>(b) + head,
            reinterpret_cast<__half *>(y) + head, relu, n - head);
    return egc_k_status();
}

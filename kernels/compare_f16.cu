/* compare_f16.cu: out[0] = max |got - ref| and out[1] = max |ref| over n float16 values, in
 * float32; a NaN or an infinity in either makes out[0] +inf. The check that a fused cuDNN
 * convolution gives what the separate kernels give (cuda_backend.c, conv_select_half). The
 * maxima of non-negative floats are taken with atomicMax on their bit patterns (monotonic for
 * non-negative IEEE floats), so the result does not depend on the launch. */
#include <cuda_fp16.h>

#include "kernel_util.cuh"

namespace {

__global__ void compare_f16_kernel(const __half *ref, const __half *got, int64_t n,
                                   unsigned *out)
{
    float md = 0.0f, mr = 0.0f;
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        float a = __half2float(ref[i]), b = __half2float(got[i]);
        float d = fabsf(b - a);
        if (!isfinite(a) || !isfinite(b)) d = INFINITY;
        md = fmaxf(md, d);
        if (isfinite(a)) mr = fmaxf(mr, fabsf(a));
    }
    md = egc_k_block_max(md);
    mr = egc_k_block_max(mr);
    if (threadIdx.x == 0) {
        atomicMax(&out[0], __float_as_uint(md));
        atomicMax(&out[1], __float_as_uint(mr));
    }
}

} // namespace

extern "C" int egc_k_compare_f16(const uint16_t *ref, const uint16_t *got, int64_t n, float *out,
                                 void *stream)
{
    cudaError_t e = cudaMemsetAsync(out, 0, 2 * sizeof(float), egc_k_stream(stream));
    if (e != cudaSuccess) return (int)e;
    if (n <= 0) return 0;
    compare_f16_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
        reinterpret_cast<const __half *>(ref), reinterpret_cast<const __half *>(got), n,
        reinterpret_cast<unsigned *>(out));
    return egc_k_status();
}

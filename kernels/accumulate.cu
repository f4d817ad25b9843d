/* accumulate.cu: dst[0..n) += scale * src[0..n) (the backend's accumulate, Reshape backward). */
#include "kernel_util.cuh"

__global__ void egc_accumulate_kernel(float *dst, const float *src, float scale, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) dst[i] += scale * src[i];
}

extern "C" int egc_k_accumulate(float *dst, const float *src, float scale, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_accumulate_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(dst, src,
                                                                                       scale, n);
    return egc_k_status();
}

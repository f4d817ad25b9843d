/* fill.cu: dst[0..n) = value (the backend's fill). */
#include "kernel_util.cuh"

__global__ void egc_fill_kernel(float *dst, float value, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) dst[i] = value;
}

extern "C" int egc_k_fill(float *dst, float value, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_fill_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(dst, value, n);
    return egc_k_status();
}

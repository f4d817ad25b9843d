/* relu.cu: Relu forward y = max(x, 0) and backward dx += dy * (x > 0). */
#include "kernel_util.cuh"

__global__ void egc_relu_fwd_kernel(const float *x, float *y, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__global__ void egc_relu_bwd_kernel(const float *x, const float *dy, float *dx, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads())
        if (x[i] > 0.0f) dx[i] += dy[i];
}

extern "C" int egc_k_relu_fwd(const float *x, float *y, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_relu_fwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, y, n);
    return egc_k_status();
}

extern "C" int egc_k_relu_bwd(const float *x, const float *dy, float *dx, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_relu_bwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, dy, dx, n);
    return egc_k_status();
}

/* sqrt.cu: Sqrt forward y = sqrt(x) and backward dx += dy * 0.5 / y (from the forward y;
 * infinite at x = 0 and NaN below, as the CPU reference and torch.sqrt). */
#include "kernel_util.cuh"

__global__ void egc_sqrt_fwd_kernel(const float *x, float *y, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) y[i] = sqrtf(x[i]);
}

__global__ void egc_sqrt_bwd_kernel(const float *y, const float *dy, float *dx, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) dx[i] += dy[i] * (0.5f / y[i]);
}

extern "C" int egc_k_sqrt_fwd(const float *x, float *y, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_sqrt_fwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, y, n);
    return egc_k_status();
}

extern "C" int egc_k_sqrt_bwd(const float *y, const float *dy, float *dx, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_sqrt_bwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(y, dy, dx, n);
    return egc_k_status();
}

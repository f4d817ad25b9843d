/* exp.cu: Exp forward y = exp(x) and backward dx += dy * y (from the forward y). The
 * exponential units (Elu, Selu, Celu) are built on it, with arguments of at most 0. */
#include "kernel_util.cuh"

__global__ void egc_exp_fwd_kernel(const float *x, float *y, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) y[i] = expf(x[i]);
}

__global__ void egc_exp_bwd_kernel(const float *y, const float *dy, float *dx, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) dx[i] += dy[i] * y[i];
}

extern "C" int egc_k_exp_fwd(const float *x, float *y, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_exp_fwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, y, n);
    return egc_k_status();
}

extern "C" int egc_k_exp_bwd(const float *y, const float *dy, float *dx, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_exp_bwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(y, dy, dx, n);
    return egc_k_status();
}

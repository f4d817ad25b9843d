/* log.cu: Log forward y = log(x) and backward dx += dy / x (from the forward x; infinite
 * at x = 0 and NaN below, as the CPU reference and torch.log). LogSoftmax is built on it. */
#include "kernel_util.cuh"

__global__ void egc_log_fwd_kernel(const float *x, float *y, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) y[i] = logf(x[i]);
}

__global__ void egc_log_bwd_kernel(const float *x, const float *dy, float *dx, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) dx[i] += dy[i] / x[i];
}

extern "C" int egc_k_log_fwd(const float *x, float *y, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_log_fwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, y, n);
    return egc_k_status();
}

extern "C" int egc_k_log_bwd(const float *x, const float *dy, float *dx, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_log_bwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, dy, dx, n);
    return egc_k_status();
}

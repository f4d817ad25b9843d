/* erf.cu: Erf forward y = erf(x) and backward dx += dy * 2 / sqrt(pi) * exp(-x * x) (from
 * the forward input x). The GELU of exported transformers and ConvNeXt is built on it. */
#include "kernel_util.cuh"

#define EGC_K_TWO_OVER_SQRT_PI 1.1283791670955126f

__global__ void egc_erf_fwd_kernel(const float *x, float *y, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) y[i] = erff(x[i]);
}

__global__ void egc_erf_bwd_kernel(const float *x, const float *dy, float *dx, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads())
        dx[i] += dy[i] * (EGC_K_TWO_OVER_SQRT_PI * expf(-x[i] * x[i]));
}

extern "C" int egc_k_erf_fwd(const float *x, float *y, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_erf_fwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, y, n);
    return egc_k_status();
}

extern "C" int egc_k_erf_bwd(const float *x, const float *dy, float *dx, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_erf_bwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, dy, dx, n);
    return egc_k_status();
}

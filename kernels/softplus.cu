/* softplus.cu: Softplus forward y = log(1 + exp(x)) and backward dx += dy * sigmoid(x)
 * (from the forward x). Mish is built on it. */
#include "kernel_util.cuh"

/* log(1 + exp(x)) without overflow, as the CPU reference computes it */
__device__ __forceinline__ float egc_softplus(float x)
{
    return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

/* its derivative, 1 / (1 + exp(-x)), from exp(-|x|) (no overflow) */
__device__ __forceinline__ float egc_softplus_grad(float x)
{
    const float e = expf(-fabsf(x));
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

__global__ void egc_softplus_fwd_kernel(const float *x, float *y, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) y[i] = egc_softplus(x[i]);
}

__global__ void egc_softplus_bwd_kernel(const float *x, const float *dy, float *dx, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) dx[i] += dy[i] * egc_softplus_grad(x[i]);
}

extern "C" int egc_k_softplus_fwd(const float *x, float *y, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_softplus_fwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, y, n);
    return egc_k_status();
}

extern "C" int egc_k_softplus_bwd(const float *x, const float *dy, float *dx, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_softplus_bwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, dy, dx, n);
    return egc_k_status();
}

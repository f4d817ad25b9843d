/* sigmoid.cu: Sigmoid forward y = 1 / (1 + exp(-x)) and backward dx += dy * y * (1 - y). */
#include "kernel_util.cuh"

__global__ void egc_sigmoid_fwd_kernel(const float *x, float *y, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        float v = x[i];
        if (v >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-v));
        } else {
            float e = expf(v); /* no overflow for large negative v */
            y[i] = e / (1.0f + e);
        }
    }
}

__global__ void egc_sigmoid_bwd_kernel(const float *y, const float *dy, float *dx, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

extern "C" int egc_k_sigmoid_fwd(const float *x, float *y, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_sigmoid_fwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, y, n);
    return egc_k_status();
}

extern "C" int egc_k_sigmoid_bwd(const float *y, const float *dy, float *dx, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_sigmoid_bwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(y, dy, dx,
                                                                                        n);
    return egc_k_status();
}

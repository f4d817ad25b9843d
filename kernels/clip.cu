/* clip.cu: Clip forward y = min(max(x, lo), hi) and backward dx += dy where lo <= x <= hi. */
#include "kernel_util.cuh"

__global__ void egc_clip_fwd_kernel(const float *x, float *y, float lo, float hi, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        float v = x[i];
        v = v < lo ? lo : v;
        y[i] = v > hi ? hi : v;
    }
}

__global__ void egc_clip_bwd_kernel(const float *x, const float *dy, float *dx, float lo,
                                    float hi, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads())
        if (x[i] >= lo && x[i] <= hi) dx[i] += dy[i];
}

extern "C" int egc_k_clip_fwd(const float *x, float *y, float lo, float hi, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_clip_fwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, y, lo, hi,
                                                                                     n);
    return egc_k_status();
}

extern "C" int egc_k_clip_bwd(const float *x, const float *dy, float *dx, float lo, float hi,
                              int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_clip_bwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, dy, dx, lo,
                                                                                     hi, n);
    return egc_k_status();
}

/* gap.cu: GlobalAveragePool x [planes, hw] -> y [planes] (one block per plane, block sum),
 * and its backward dx += dy / hw. */
#include "kernel_util.cuh"

namespace {

__global__ void gap_fwd_kernel(const float *x, float *y, int64_t planes, int64_t hw)
{
    for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
        const float *xp = x + p * hw;
        float s = 0.0f;
        for (int64_t k = threadIdx.x; k < hw; k += blockDim.x) s += xp[k];
        s = egc_k_block_sum(s);
        if (threadIdx.x == 0) y[p] = s / (float)hw;
    }
}

__global__ void gap_bwd_kernel(const float *dy, float *dx, int64_t planes, int64_t hw)
{
    int64_t n = planes * hw;
    float inv = 1.0f / (float)hw;
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) dx[i] += dy[i / hw] * inv;
}

} // namespace

extern "C" int egc_k_gap_fwd(const float *x, float *y, int64_t planes, int64_t hw, void *stream)
{
    if (planes <= 0 || hw <= 0) return 0;
    unsigned g = (unsigned)(planes < (1 << 20) ? planes : (1 << 20));
    /* small planes (7x7) waste most of a 256-thread block: use 64 threads there */
    unsigned t = hw <= 64 ? 64 : EGC_K_THREADS;
    gap_fwd_kernel<<<g, t, 0, egc_k_stream(stream)>>>(x, y, planes, hw);
    return egc_k_status();
}

extern "C" int egc_k_gap_bwd(const float *dy, float *dx, int64_t planes, int64_t hw, void *stream)
{
    if (planes <= 0 || hw <= 0) return 0;
    gap_bwd_kernel<<<egc_k_blocks(planes * hw), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(dy, dx,
                                                                                          planes, hw);
    return egc_k_status();
}

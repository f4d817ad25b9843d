/* softmax.cu: Softmax over the middle dim of x [outer, d, inner], forward and backward.
 * inner == 1 (the usual logits case): one block per row with block reductions.
 * inner > 1: one thread per (outer, inner) column walking d with stride inner. */
#include "kernel_util.cuh"

namespace {

__global__ void softmax_fwd_rows(const float *x, float *y, int64_t outer, int64_t d)
{
    for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        float m = -INFINITY;
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) m = fmaxf(m, xr[k]);
        m = egc_k_block_max(m);
        float s = 0.0f;
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
            float e = expf(xr[k] - m);
            yr[k] = e;
            s += e;
        }
        s = egc_k_block_sum(s);
        float inv = 1.0f / s;
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) yr[k] *= inv;
    }
}

__global__ void softmax_bwd_rows(const float *y, const float *dy, float *dx, int64_t outer,
                                 int64_t d)
{
    for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
        const float *yr = y + r * d, *gr = dy + r * d;
        float *xr = dx + r * d;
        float s = 0.0f;
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) s += yr[k] * gr[k];
        s = egc_k_block_sum(s);
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) xr[k] += yr[k] * (gr[k] - s);
    }
}

__global__ void softmax_fwd_cols(const float *x, float *y, int64_t outer, int64_t d, int64_t inner)
{
    int64_t n = outer * inner;
    for (int64_t c = egc_k_tid(); c < n; c += egc_k_nthreads()) {
        int64_t o = c / inner, i = c - o * inner;
        const float *xc = x + o * d * inner + i;
        float *yc = y + o * d * inner + i;
        float m = -INFINITY;
        for (int64_t k = 0; k < d; k++) m = fmaxf(m, xc[k * inner]);
        float s = 0.0f;
        for (int64_t k = 0; k < d; k++) {
            float e = expf(xc[k * inner] - m);
            yc[k * inner] = e;
            s += e;
        }
        float inv = 1.0f / s;
        for (int64_t k = 0; k < d; k++) yc[k * inner] *= inv;
    }
}

__global__ void softmax_bwd_cols(const float *y, const float *dy, float *dx, int64_t outer,
                                 int64_t d, int64_t inner)
{
    int64_t n = outer * inner;
    for (int64_t c = egc_k_tid(); c < n; c += egc_k_nthreads()) {
        int64_t o = c / inner, i = c - o * inner, base = o * d * inner + i;
        float s = 0.0f;
        for (int64_t k = 0; k < d; k++) s += y[base + k * inner] * dy[base + k * inner];
        for (int64_t k = 0; k < d; k++) {
            int64_t e = base + k * inner;
            dx[e] += y[e] * (dy[e] - s);
        }
    }
}

unsigned row_blocks(int64_t outer) { return (unsigned)(outer < (1 << 20) ? outer : (1 << 20)); }

} // namespace

extern "C" int egc_k_softmax_fwd(const float *x, float *y, int64_t outer, int64_t d, int64_t inner,
                                 void *stream)
{
    if (outer <= 0 || d <= 0 || inner <= 0) return 0;
    cudaStream_t st = egc_k_stream(stream);
    if (inner == 1)
        softmax_fwd_rows<<<row_blocks(outer), EGC_K_THREADS, 0, st>>>(x, y, outer, d);
    else
        softmax_fwd_cols<<<egc_k_blocks(outer * inner), EGC_K_THREADS, 0, st>>>(x, y, outer, d,
                                                                                inner);
    return egc_k_status();
}

extern "C" int egc_k_softmax_bwd(const float *y, const float *dy, float *dx, int64_t outer,
                                 int64_t d, int64_t inner, void *stream)
{
    if (outer <= 0 || d <= 0 || inner <= 0) return 0;
    cudaStream_t st = egc_k_stream(stream);
    if (inner == 1)
        softmax_bwd_rows<<<row_blocks(outer), EGC_K_THREADS, 0, st>>>(y, dy, dx, outer, d);
    else
        softmax_bwd_cols<<<egc_k_blocks(outer * inner), EGC_K_THREADS, 0, st>>>(y, dy, dx, outer, d,
                                                                                inner);
    return egc_k_status();
}

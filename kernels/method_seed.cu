/* method_seed.cu: the target score from the logits on the device (m_score_seed; the CPU
 * reference is csrc/methods/score.c): the class of each row (the top-1, first maximum, when
 * asked to resolve), y_c (the logit or the softmax probability, computed in double) and the
 * seed dy_c/dlogits (one-hot, or p_c (delta_cj - p_j)). One block per row. */
#include "method_util.cuh"

namespace {

__global__ void score_seed_kernel(const float *logits, int64_t n, int classes, int32_t *cls,
                                  int64_t r0, int per, int resolve, int softmax, float *seed,
                                  float *y)
{
    __shared__ int c_sh;
    for (int64_t t = blockIdx.x; t < n; t += gridDim.x) {
        const float *lg = logits + t * classes;
        int64_t img = (r0 + t) / per;
        __syncthreads(); /* c_sh of the previous row is read by every thread */
        if (threadIdx.x == 0) {
            int c = cls[img];
            if (resolve && c < 0) {
                c = 0;
                for (int j = 1; j < classes; j++)
                    if (lg[j] > lg[c]) c = j;
                cls[img] = c;
            }
            c_sh = c;
        }
        __syncthreads();
        const int c = c_sh;
        if (!softmax) {
            if (seed)
                for (int j = threadIdx.x; j < classes; j += blockDim.x)
                    seed[t * classes + j] = j == c ? 1.0f : 0.0f;
            if (y && threadIdx.x == 0) y[t] = lg[c];
            continue;
        }
        double mx = -INFINITY;
        for (int j = threadIdx.x; j < classes; j += blockDim.x) mx = fmax(mx, (double)lg[j]);
        mx = egc_m_block_max_d(mx);
        double s = 0.0;
        for (int j = threadIdx.x; j < classes; j += blockDim.x) s += exp((double)lg[j] - mx);
        s = egc_m_block_sum_d(s);
        double pc = exp((double)lg[c] - mx) / s;
        if (seed)
            for (int j = threadIdx.x; j < classes; j += blockDim.x) {
                double pj = exp((double)lg[j] - mx) / s;
                seed[t * classes + j] = (float)(pc * ((j == c ? 1.0 : 0.0) - pj));
            }
        if (y && threadIdx.x == 0) y[t] = (float)pc;
    }
}

} // namespace

extern "C" int egc_k_score_seed(const float *logits, int64_t n, int classes, int32_t *cls,
                                int64_t r0, int per, int resolve, int softmax, float *seed,
                                float *y, void *stream)
{
    if (n <= 0 || classes <= 0) return 0;
    unsigned g = (unsigned)(n < 65535 ? n : 65535);
    score_seed_kernel<<<g, EGC_K_THREADS, 0, egc_k_stream(stream)>>>(logits, n, classes, cls, r0,
                                                                     per, resolve, softmax, seed,
                                                                     y);
    return egc_k_status();
}

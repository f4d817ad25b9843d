/* batchnorm.cu: inference BatchNormalization (not folded into a Conv) on x [n, c, inner]:
 * y = x * k + (bias - mean * k), k = scale / sqrt(var + eps) per channel, and dx += dy * scale / sqrt(var + eps). */
#include "kernel_util.cuh"

namespace {

__global__ void bn_fwd_kernel(const float *x, float *y, const float *scale, const float *bias,
                              const float *mean, const float *var, float eps, int64_t c,
                              int64_t inner, int64_t total)
{
    for (int64_t i = egc_k_tid(); i < total; i += egc_k_nthreads()) {
        int64_t ch = (i / inner) % c;
        float k = scale[ch] / sqrtf(var[ch] + eps);
        y[i] = x[i] * k + (bias[ch] - mean[ch] * k);
    }
}

__global__ void bn_bwd_kernel(const float *dy, float *dx, const float *scale, const float *var,
                              float eps, int64_t c, int64_t inner, int64_t total)
{
    for (int64_t i = egc_k_tid(); i < total; i += egc_k_nthreads()) {
        int64_t ch = (i / inner) % c;
        dx[i] += dy[i] * (scale[ch] / sqrtf(var[ch] + eps));
    }
}

} // namespace

extern "C" int egc_k_batchnorm_fwd(const float *x, float *y, const float *scale, const float *bias,
                                   const float *mean, const float *var, float eps, int64_t n,
                                   int64_t c, int64_t inner, void *stream)
{
    int64_t total = n * c * inner;
    if (total <= 0) return 0;
    bn_fwd_kernel<<<egc_k_blocks(total), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
        x, y, scale, bias, mean, var, eps, c, inner, total);
    return egc_k_status();
}

extern "C" int egc_k_batchnorm_bwd(const float *dy, float *dx, const float *scale, const float *var,
                                   float eps, int64_t n, int64_t c, int64_t inner, void *stream)
{
    int64_t total = n * c * inner;
    if (total <= 0) return 0;
    bn_bwd_kernel<<<egc_k_blocks(total), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(dy, dx, scale, var,
                                                                                   eps, c, inner,
                                                                                   total);
    return egc_k_status();
}

/* bias.cu: y[n, c, inner] += bias[c], the bias of a Conv after cuDNN's convolution. */
#include "kernel_util.cuh"

namespace {

__global__ void bias_add_kernel(float *y, const float *bias, int64_t c, int64_t inner, int64_t total)
{
    for (int64_t i = egc_k_tid(); i < total; i += egc_k_nthreads()) y[i] += bias[(i / inner) % c];
}

} // namespace

extern "C" int egc_k_bias_add(float *y, const float *bias, int64_t n, int64_t c, int64_t inner,
                              void *stream)
{
    int64_t total = n * c * inner;
    if (total <= 0) return 0;
    bias_add_kernel<<<egc_k_blocks(total), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(y, bias, c, inner,
                                                                                     total);
    return egc_k_status();
}

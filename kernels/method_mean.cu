/* method_mean.cu: v = v / S in float (m_mean, egc_expected_mean), the IEEE division. */
#include "method_util.cuh"

namespace {

__global__ void mean_kernel(float *v, int64_t n, float s)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) v[i] = __fdiv_rn(v[i], s);
}

} // namespace

extern "C" int egc_k_mean(float *v, int64_t n, int S, void *stream)
{
    if (n <= 0) return 0;
    mean_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(v, n, (float)S);
    return egc_k_status();
}

/* strided_copy.cu: the strided copy behind Transpose, Slice, Concat and broadcasts:
 * dst[dst_off + i.dstride] (=|+=) src[src_off + i.sstride] over an iteration shape.
 * The host side drops size-1 dims and merges neighbours that are contiguous in both source
 * and destination, so plain block copies run as one dim. */
#include "kernel_util.cuh"

namespace {

struct Strided {
    int nd;
    int64_t d[EGC_K_MAX_DIMS], ss[EGC_K_MAX_DIMS], ds[EGC_K_MAX_DIMS];
};

template <int ACC>
__global__ void strided_kernel(const float *src, float *dst, Strided s, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        int64_t r = i, os = 0, od = 0;
        for (int k = s.nd - 1; k >= 0; k--) {
            int64_t q = r / s.d[k], idx = r - q * s.d[k];
            r = q;
            os += idx * s.ss[k];
            od += idx * s.ds[k];
        }
        if (ACC)
            dst[od] += src[os];
        else
            dst[od] = src[os];
    }
}

} // namespace

extern "C" int egc_k_strided_copy(const float *src, int64_t src_off, const int64_t *sstride,
                                  float *dst, int64_t dst_off, const int64_t *dstride,
                                  const int64_t *dims, int ndim, int accumulate, void *stream)
{
    if (ndim < 0 || ndim > EGC_K_MAX_DIMS) return (int)cudaErrorInvalidValue;
    Strided s;
    int64_t n = 1;
    int m = 0; /* merged dims, innermost first */
    int64_t d[EGC_K_MAX_DIMS], ss[EGC_K_MAX_DIMS], ds[EGC_K_MAX_DIMS];
    for (int k = ndim - 1; k >= 0; k--) {
        n *= dims[k];
        if (dims[k] == 1) continue;
        if (m > 0 && sstride[k] == ss[m - 1] * d[m - 1] && dstride[k] == ds[m - 1] * d[m - 1]) {
            d[m - 1] *= dims[k];
        } else {
            d[m] = dims[k];
            ss[m] = sstride[k];
            ds[m] = dstride[k];
            m++;
        }
    }
    if (n <= 0) return 0;
    s.nd = m;
    for (int k = 0; k < m; k++) {
        s.d[k] = d[m - 1 - k];
        s.ss[k] = ss[m - 1 - k];
        s.ds[k] = ds[m - 1 - k];
    }
    cudaStream_t st = egc_k_stream(stream);
    if (accumulate)
        strided_kernel<1><<<egc_k_blocks(n), EGC_K_THREADS, 0, st>>>(src + src_off, dst + dst_off,
                                                                     s, n);
    else
        strided_kernel<0><<<egc_k_blocks(n), EGC_K_THREADS, 0, st>>>(src + src_off, dst + dst_off,
                                                                     s, n);
    return egc_k_status();
}

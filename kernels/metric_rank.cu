/* metric_rank.cu: the pixel ranks of n maps on the device (m_rank; CPU reference
 * egc_rank_keys in csrc/metrics/metric_rows.c). Each pixel gets one 64-bit key: the high 32
 * bits order the values decreasingly (NaN as -infinity, -0 as +0, through the usual
 * order-preserving map of IEEE bits), the low 32 bits are the pixel index, so ties go by
 * ascending index and every key is distinct. One segmented radix sort (CUB) per call sorts
 * each map's keys ascending; a scatter writes key[i][p] = the position of pixel p. The
 * result does not depend on the sort being stable: it is exactly the CPU's order.
 * Scratch (egc_k_rank_scratch bytes): keys in and out [n*hw] u64, offsets [n+1], CUB's
 * temporary storage, each 256-byte aligned. */
#include <cub/device/device_segmented_radix_sort.cuh>

#include "kernel_util.cuh"
#include "egc_method_kernels.h"

namespace {

__global__ void keys_kernel(const float *maps, int64_t total, int64_t hw,
                            unsigned long long *keys)
{
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        float v = maps[e];
        if (isnan(v)) v = -INFINITY;
        if (v == 0.0f) v = 0.0f; /* -0 ranks as +0 */
        unsigned u = __float_as_uint(v);
        unsigned asc = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* increasing in v */
        unsigned desc = ~asc;                                          /* decreasing in v */
        unsigned p = (unsigned)(e % hw);
        keys[e] = ((unsigned long long)desc << 32) | p;
    }
}

__global__ void offsets_kernel(int n, int hw, int *off)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i <= n; i += gridDim.x * blockDim.x)
        off[i] = i * hw;
}

__global__ void scatter_kernel(const unsigned long long *sorted, int64_t total, int64_t hw,
                               int32_t *key)
{
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e / hw, pos = e - i * hw;
        unsigned p = (unsigned)(sorted[e] & 0xffffffffull);
        key[i * hw + p] = (int32_t)pos;
    }
}

size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

/* The CUB temporary bytes for n segments of hw keys (no launch). */
size_t cub_bytes(int n, int hw)
{
    size_t bytes = 0;
    unsigned long long *k = nullptr;
    int *off = nullptr;
    if (cub::DeviceSegmentedRadixSort::SortKeys(nullptr, bytes, k, k, n * hw, n, off, off + 1, 0,
                                                64, (cudaStream_t)0) != cudaSuccess)
        return 0;
    return bytes;
}

} // namespace

extern "C" size_t egc_k_rank_scratch(int n, int hw)
{
    if (n <= 0 || hw <= 0 || (int64_t)n * hw > 0x7fffffff) return 0;
    size_t total = (size_t)n * (size_t)hw;
    size_t cb = cub_bytes(n, hw);
    if (!cb) return 0;
    return 2 * align256(total * sizeof(unsigned long long)) +
           align256(((size_t)n + 1) * sizeof(int)) + align256(cb);
}

extern "C" int egc_k_rank(const float *maps, int n, int hw, void *scratch, size_t scratch_bytes,
                          int32_t *key, void *stream)
{
    if (n <= 0 || hw <= 0) return 0;
    if ((int64_t)n * hw > 0x7fffffff || !scratch) return (int)cudaErrorInvalidValue;
    size_t total = (size_t)n * (size_t)hw;
    char *s = (char *)scratch;
    unsigned long long *kin = (unsigned long long *)s;
    s += align256(total * sizeof(unsigned long long));
    unsigned long long *kout = (unsigned long long *)s;
    s += align256(total * sizeof(unsigned long long));
    int *off = (int *)s;
    s += align256(((size_t)n + 1) * sizeof(int));
    size_t cb = cub_bytes(n, hw);
    size_t used = (size_t)(s - (char *)scratch);
    if (!cb || used + cb > scratch_bytes) return (int)cudaErrorInvalidValue;
    cudaStream_t st = egc_k_stream(stream);
    keys_kernel<<<egc_k_blocks((int64_t)total), EGC_K_THREADS, 0, st>>>(maps, (int64_t)total, hw,
                                                                         kin);
    int e = egc_k_status();
    if (e) return e;
    offsets_kernel<<<egc_k_blocks((int64_t)n + 1), EGC_K_THREADS, 0, st>>>(n, hw, off);
    e = egc_k_status();
    if (e) return e;
    cudaError_t ce = cub::DeviceSegmentedRadixSort::SortKeys((void *)s, cb, kin, kout, (int)total,
                                                            n, off, off + 1, 0, 64, st);
    if (ce != cudaSuccess) return (int)ce;
    scatter_kernel<<<egc_k_blocks((int64_t)total), EGC_K_THREADS, 0, st>>>(kout, (int64_t)total,
                                                                            hw, key);
    return egc_k_status();
}

/* method_scan.cu: the scan of the input images on the device (m_scan; the CPU reference is
 * csrc/core/philox.c's egc_image_scan): each image's id (the sum of the word hashes of
 * philox.h, then its final mix), its value range (min and max of v + 0, so -0 counts as +0)
 * and the index of its first non-finite value. One block per image; the sum is of integers
 * modulo 2^64 and min/max/first-index are order-free, so the results are the CPU's exactly. */
#include "method_util.cuh"

namespace {

#define SCAN_THREADS 512

__global__ void scan_kernel(const float *x, int64_t n, int64_t chw, uint64_t *ids, float *range,
                            int64_t *bad)
{
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const float *xi = x + i * chw;
        uint64_t sum = 0;
        float mn = INFINITY, mx = -INFINITY;
        int64_t first = INT64_MAX;
        for (int64_t j = threadIdx.x; j < chw; j += blockDim.x) {
            float v = xi[j];
            if (ids) sum += egc_id_word((uint64_t)j, __float_as_uint(v));
            if (!isfinite(v)) {
                if (j < first) first = j;
                continue;
            }
            v = __fadd_rn(v, 0.0f); /* -0 as +0 */
            mn = fminf(mn, v);
            mx = fmaxf(mx, v);
        }
        if (ids) sum = egc_k_block_reduce(sum, (uint64_t)0, egc_k_op_add()); /* mod 2^64 */
        mn = egc_m_block_min(mn);
        mx = egc_k_block_max(mx);
        first = egc_k_block_reduce(first, (int64_t)INT64_MAX, egc_k_op_min());
        if (threadIdx.x == 0) {
            if (ids) ids[i] = egc_id_final(sum, (uint64_t)chw);
            range[2 * i] = mn;
            range[2 * i + 1] = mx;
            bad[i] = first == INT64_MAX ? -1 : first;
        }
        __syncthreads();
    }
}

} // namespace

extern "C" int egc_k_scan(const float *x, int64_t n, int64_t chw, uint64_t *ids, float *range,
                          int64_t *bad, void *stream)
{
    if (n <= 0) return 0;
    unsigned g = (unsigned)(n < 65535 ? n : 65535);
    scan_kernel<<<g, SCAN_THREADS, 0, egc_k_stream(stream)>>>(x, n, chw, ids, range, bad);
    return egc_k_status();
}

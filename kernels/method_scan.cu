/* method_scan.cu: the scan of the input images on the device (m_scan; the CPU reference is
 * csrc/core/philox.c's egc_image_scan): each image's id (the sum of the word hashes of
 * philox.h, then its final mix), its value range (min and max of v + 0, so -0 counts as +0)
 * and the index of its first non-finite value. One block per image; the sum is of integers
 * modulo 2^64 and min/max/first-index are order-free, so the results are the CPU's exactly. */
#include "method_util.cuh"

namespace {

#define SCAN_THREADS 512

/* Block-wide sum (mod 2^64) of v; every thread gets it. Call from all threads. */
__device__ __forceinline__ uint64_t block_sum_u64(uint64_t v)
{
    __shared__ uint64_t part[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < nw ? part[lane] : 0ull;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Block-wide minimum of v; every thread gets it. Call from all threads. */
__device__ __forceinline__ int64_t block_min_i64(int64_t v)
{
    __shared__ int64_t part[32];
    for (int o = 16; o > 0; o >>= 1) {
        int64_t u = __shfl_xor_sync(0xffffffffu, v, o);
        v = u < v ? u : v;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < nw ? part[lane] : INT64_MAX;
    for (int o = 16; o > 0; o >>= 1) {
        int64_t u = __shfl_xor_sync(0xffffffffu, v, o);
        v = u < v ? u : v;
    }
    return v;
}

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
        if (ids) sum = block_sum_u64(sum);
        mn = egc_m_block_min(mn);
        mx = egc_k_block_max(mx);
        first = block_min_i64(first);
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

/* kernel_util.cuh: small helpers shared by the .cu files in kernels/: launch geometry for
 * grid-stride loops and the launch-status convention of egc_kernels.h. Device code only. */
#ifndef EGC_KERNEL_UTIL_CUH
#define EGC_KERNEL_UTIL_CUH

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "egc_kernels.h"

#define EGC_K_THREADS 256

/* Blocks for a grid-stride loop over n items with EGC_K_THREADS threads each: enough to
 * fill the device, capped so the grid stays small (every loop is grid-stride). n > 0. */
static inline unsigned egc_k_blocks(int64_t n)
{
    int64_t b = (n + EGC_K_THREADS - 1) / EGC_K_THREADS;
    if (b > 65536) b = 65536;
    if (b < 1) b = 1;
    return (unsigned)b;
}

/* The stream argument of a launcher as a cudaStream_t. */
static inline cudaStream_t egc_k_stream(void *s) { return (cudaStream_t)s; }

/* The launch status: cudaGetLastError() as an int (0 = success). */
static inline int egc_k_status(void) { return (int)cudaGetLastError(); }

/* Index of this thread in a 1-D grid, and the grid's total thread count (64-bit). */
__device__ __forceinline__ int64_t egc_k_tid(void)
{
    return (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t egc_k_nthreads(void)
{
    return (int64_t)gridDim.x * blockDim.x;
}

/* Reduction of v over a block of blockDim.x threads (a multiple of 32, at most 1024) with
 * the associative op (a functor) whose identity element is `identity`; every thread gets the
 * result. Contains __syncthreads(): call from all threads of the block. The order of
 * combination is fixed by the launch shape, so results are deterministic. */
template <class T, class Op>
__device__ __forceinline__ T egc_k_block_reduce(T v, T identity, Op op)
{
    __shared__ T part[32];
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads(); /* part may still be read by a previous call */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < nw ? part[lane] : identity;
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Functors of egc_k_block_reduce. */
struct egc_k_op_add {
    template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct egc_k_op_max {
    __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
    __device__ __forceinline__ double operator()(double a, double b) const { return fmax(a, b); }
};
struct egc_k_op_min {
    template <class T> __device__ __forceinline__ T operator()(T a, T b) const
    {
        return b < a ? b : a;
    }
};

/* Sum / max of v over the block (egc_k_block_reduce). */
__device__ __forceinline__ float egc_k_block_sum(float v)
{
    return egc_k_block_reduce(v, 0.0f, egc_k_op_add());
}

__device__ __forceinline__ float egc_k_block_max(float v)
{
    return egc_k_block_reduce(v, -INFINITY, egc_k_op_max());
}

#endif

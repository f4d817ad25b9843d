/* method_util.cuh: device helpers of the explanation-method kernels (method_*.cu): block
 * reductions in double and of float minima (on egc_k_block_reduce), and the bilinear sample
 * of cam.c's upsampling evaluated with round-to-nearest intrinsics (no fused multiply-add),
 * so that it gives the CPU's float result bit for bit. Device code only. */
#ifndef EGC_METHOD_UTIL_CUH
#define EGC_METHOD_UTIL_CUH

#include "kernel_util.cuh"
#include "egc_method_kernels.h"

/* Sum and max of v over the block in double (egc_k_block_reduce). */
__device__ __forceinline__ double egc_m_block_sum_d(double v)
{
    return egc_k_block_reduce(v, 0.0, egc_k_op_add());
}

__device__ __forceinline__ double egc_m_block_max_d(double v)
{
    return egc_k_block_reduce(v, (double)-INFINITY, egc_k_op_max());
}

/* Min of v over the block (float; exact, order-free). */
__device__ __forceinline__ float egc_m_block_min(float v) { return -egc_k_block_max(-v); }

/* Source index and weight along one axis, as cam.c's src_index (align_corners = false). */
__device__ __forceinline__ void egc_m_src_index(int X, int in, int out, int *i0, int *i1,
                                                float *l1)
{
    float scale = __fdiv_rn((float)in, (float)out);
    float s = __fsub_rn(__fmul_rn(scale, __fadd_rn((float)X, 0.5f)), 0.5f);
    if (s < 0.0f) s = 0.0f;
    int i = (int)s;
    if (i > in - 1) i = in - 1;
    *i0 = i;
    *i1 = i + (i < in - 1 ? 1 : 0);
    *l1 = __fsub_rn(s, (float)i);
}

/* Output pixel (Y, X) of the bilinear resize of in[h,w] to H x W, evaluated as cam.c's
 * egc_cam_upsample_bilinear: ly0 * (lx0 * a + lx1 * b) + ly1 * (lx0 * c + lx1 * d). */
__device__ __forceinline__ float egc_m_upsample_at(const float *in, int h, int w, int H, int W,
                                                  int Y, int X)
{
    int y0, y1, x0, x1;
    float ly1, lx1;
    egc_m_src_index(Y, h, H, &y0, &y1, &ly1);
    egc_m_src_index(X, w, W, &x0, &x1, &lx1);
    float ly0 = __fsub_rn(1.0f, ly1), lx0 = __fsub_rn(1.0f, lx1);
    const float *r0 = in + (int64_t)y0 * w, *r1 = in + (int64_t)y1 * w;
    float top = __fadd_rn(__fmul_rn(lx0, r0[x0]), __fmul_rn(lx1, r0[x1]));
    float bot = __fadd_rn(__fmul_rn(lx0, r1[x0]), __fmul_rn(lx1, r1[x1]));
    return __fadd_rn(__fmul_rn(ly0, top), __fmul_rn(ly1, bot));
}

#endif

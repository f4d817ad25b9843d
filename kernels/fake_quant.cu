/* fake_quant.cu: a QuantizeLinear / DequantizeLinear pair on an activation (QDQ models).
 * Forward y = (clamp(rint(x / scale) + zero, qmin, qmax) - zero) * scale (rint: ties to
 * even, as ONNX rounds); backward dx += dy where rint(x / scale) + zero lies in [qmin, qmax]
 * (the gradient passes straight through the rounding, and not where the value was clamped).
 * Computed as the CPU reference computes it (a float division, then rintf). */
#include "kernel_util.cuh"

__global__ void egc_fake_quant_fwd_kernel(const float *x, float *y, float scale, float zero,
                                          float qmin, float qmax, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        float q = rintf(__fdiv_rn(x[i], scale)) + zero;
        q = q < qmin ? qmin : q;
        q = q > qmax ? qmax : q;
        y[i] = (q - zero) * scale;
    }
}

__global__ void egc_fake_quant_bwd_kernel(const float *x, const float *dy, float *dx, float scale,
                                          float zero, float qmin, float qmax, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        const float q = rintf(__fdiv_rn(x[i], scale)) + zero;
        if (q >= qmin && q <= qmax) dx[i] += dy[i];
    }
}

extern "C" int egc_k_fake_quant_fwd(const float *x, float *y, float scale, float zero, float qmin,
                                    float qmax, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_fake_quant_fwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
        x, y, scale, zero, qmin, qmax, n);
    return egc_k_status();
}

extern "C" int egc_k_fake_quant_bwd(const float *x, const float *dy, float *dx, float scale,
                                    float zero, float qmin, float qmax, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    egc_fake_quant_bwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
        x, dy, dx, scale, zero, qmin, qmax, n);
    return egc_k_status();
}

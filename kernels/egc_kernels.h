/* egc_kernels.h: the extern "C" launchers of egcam's custom CUDA kernels, one op per .cu file.
 *
 * Seen by C code (csrc/cuda), so no CUDA types appear here: a stream is `void *` (a
 * cudaStream_t) and every launcher returns the cudaError_t of its launch as an int (0 =
 * cudaSuccess), read with cudaGetLastError() right after the launch. All tensors are dense
 * float32 in device memory, row-major (NCHW for images). Every launcher handles any size
 * (tails, empty tensors: n == 0 launches nothing and returns 0). Index arithmetic is 64-bit.
 *
 * Backward launchers ACCUMULATE into their gradient output (dx += ...), like the backend
 * interface. */
#ifndef EGC_KERNELS_H
#define EGC_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most dims a strided/broadcast launcher accepts (equals EGC_MAX_DIMS). */
#define EGC_K_MAX_DIMS 8

/* fill.cu: dst[0..n) = value. */
int egc_k_fill(float *dst, float value, int64_t n, void *stream);

/* accumulate.cu: dst[0..n) += scale * src[0..n). */
int egc_k_accumulate(float *dst, const float *src, float scale, int64_t n, void *stream);

/* relu.cu: y = max(x, 0); backward dx += dy * (x > 0). */
int egc_k_relu_fwd(const float *x, float *y, int64_t n, void *stream);
int egc_k_relu_bwd(const float *x, const float *dy, float *dx, int64_t n, void *stream);

/* clip.cu: y = min(max(x, lo), hi); backward dx += dy where lo <= x <= hi (the gradient of
 * the identity inside the closed interval, 0 outside). lo/hi may be -inf/+inf. */
int egc_k_clip_fwd(const float *x, float *y, float lo, float hi, int64_t n, void *stream);
int egc_k_clip_bwd(const float *x, const float *dy, float *dx, float lo, float hi, int64_t n,
                   void *stream);

/* sigmoid.cu: y = 1 / (1 + exp(-x)) (computed as exp(x) / (1 + exp(x)) for x < 0);
 * backward dx += dy * y * (1 - y) from the forward y. */
int egc_k_sigmoid_fwd(const float *x, float *y, int64_t n, void *stream);
int egc_k_sigmoid_bwd(const float *y, const float *dy, float *dx, int64_t n, void *stream);

/* sqrt.cu: y = sqrt(x); backward dx += dy * 0.5 / y from the forward y. */
int egc_k_sqrt_fwd(const float *x, float *y, int64_t n, void *stream);
int egc_k_sqrt_bwd(const float *y, const float *dy, float *dx, int64_t n, void *stream);

/* erf.cu: y = erf(x); backward dx += dy * 2 / sqrt(pi) * exp(-x^2) from the forward x. */
int egc_k_erf_fwd(const float *x, float *y, int64_t n, void *stream);
int egc_k_erf_bwd(const float *x, const float *dy, float *dx, int64_t n, void *stream);

/* exp.cu: y = exp(x); backward dx += dy * y from the forward y. */
int egc_k_exp_fwd(const float *x, float *y, int64_t n, void *stream);
int egc_k_exp_bwd(const float *y, const float *dy, float *dx, int64_t n, void *stream);

/* log.cu: y = log(x); backward dx += dy / x from the forward x. */
int egc_k_log_fwd(const float *x, float *y, int64_t n, void *stream);
int egc_k_log_bwd(const float *x, const float *dy, float *dx, int64_t n, void *stream);

/* softplus.cu: y = log(1 + exp(x)) (no overflow); backward dx += dy * sigmoid(x) from the
 * forward x. */
int egc_k_softplus_fwd(const float *x, float *y, int64_t n, void *stream);
int egc_k_softplus_bwd(const float *x, const float *dy, float *dx, int64_t n, void *stream);

/* fake_quant.cu: a QuantizeLinear / DequantizeLinear pair, y = (clamp(rint(x / scale) + zero,
 * qmin, qmax) - zero) * scale; backward dx += dy where not clamped, from the forward x. */
int egc_k_fake_quant_fwd(const float *x, float *y, float scale, float zero, float qmin,
                         float qmax, int64_t n, void *stream);
int egc_k_fake_quant_bwd(const float *x, const float *dy, float *dx, float scale, float zero,
                         float qmin, float qmax, int64_t n, void *stream);

/* eltwise_binary.cu: numpy-broadcast Add/Sub/Mul/Div. Shapes are given at the output's
 * rank `ndim` (right-aligned, missing leading dims as 1): ashape[i] and bshape[i] are
 * either oshape[i] or 1.
 *   fwd: y[oshape] = a op b.
 *   bwd: for which = 0 (a) or 1 (b): dt[tshape] += scale * sum over the broadcast dims of
 *        dy * d(a op b)/d(t), where tshape = ashape or bshape and dt is dense in it.
 * Add: d/da = 1, d/db = 1; Sub: 1, -1; Mul: b, a; Div: 1/b, -a/b^2. */
enum { EGC_K_ADD = 0, EGC_K_SUB = 1, EGC_K_MUL = 2, EGC_K_DIV = 3 };
int egc_k_binary_fwd(int op, const float *a, const int64_t *ashape, const float *b,
                     const int64_t *bshape, float *y, const int64_t *oshape, int ndim,
                     void *stream);
int egc_k_binary_bwd(int op, int which, const float *a, const int64_t *ashape, const float *b,
                     const int64_t *bshape, const float *dy, const int64_t *oshape, int ndim,
                     float scale, float *dt, void *stream);

/* strided_copy.cu: the strided copy behind Transpose, Slice, Concat and broadcasts.
 * For every index i of the iteration shape dims[0..ndim) (strides in elements):
 *   dst[dst_off + sum i_k*dstride[k]] (=|+=) src[src_off + sum i_k*sstride[k]]
 * accumulate = 0 copies, 1 adds. With accumulate = 1 the destination positions must be
 * distinct (no two i write the same element), which holds for every caller. */
int egc_k_strided_copy(const float *src, int64_t src_off, const int64_t *sstride, float *dst,
                       int64_t dst_off, const int64_t *dstride, const int64_t *dims, int ndim,
                       int accumulate, void *stream);

/* pad.cu: ONNX Pad on a rank-`ndim` tensor: xshape -> yshape with yshape[k] = xshape[k] +
 * begin[k] + end[k] (pads may be negative: negative pads first crop the input, then the
 * padding extends what is left, as in onnxruntime). mode 0 constant (value), 1 reflect
 * (mirror without repeating the edge), 2 edge (repeat the edge).
 *   fwd: y = pad(x).
 *   bwd: dx += the sum of dy over every y position that reads that x element (constant
 *        mode: a crop of dy; reflect/edge: border elements gather several, done with
 *        atomicAdd, so their summation order may vary). */
int egc_k_pad_fwd(const float *x, const int64_t *xshape, float *y, const int64_t *yshape,
                  const int64_t *begin, int ndim, int mode, float value, void *stream);
int egc_k_pad_bwd(const float *dy, const int64_t *yshape, float *dx, const int64_t *xshape,
                  const int64_t *begin, int ndim, int mode, void *stream);

/* softmax.cu: softmax over the middle dim of x viewed as [outer, d, inner].
 *   fwd: y = exp(x - max) / sum exp(x - max).   bwd: dx += y * (dy - sum(dy * y)). */
int egc_k_softmax_fwd(const float *x, float *y, int64_t outer, int64_t d, int64_t inner,
                      void *stream);
int egc_k_softmax_bwd(const float *y, const float *dy, float *dx, int64_t outer, int64_t d,
                      int64_t inner, void *stream);

/* 2-D pooling window of MaxPool / AveragePool over x [N*C planes, H, W] -> y [planes, OH, OW].
 * Window of output (oh, ow) covers rows oh*sh - pt + i*dh (i < kh), likewise columns. */
typedef struct egc_k_pool {
    int64_t planes;          /* N*C */
    int64_t h, w, oh, ow;
    int kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    int count_include_pad;   /* AveragePool only */
} egc_k_pool;

/* maxpool.cu: y = max over the in-bounds window (padding never wins; a window with no
 * in-bounds element gives -FLT_MAX). Backward routes each dy to the FIRST maximum of its window
 * in row-major window order (ties go to the earliest). It runs in two passes: the argmax of
 * every window into `argmax` (scratch of planes*oh*ow int32 in device memory), then one
 * thread per x element gathers the dy of the windows that chose it, so the result is
 * deterministic. */
int egc_k_maxpool_fwd(const float *x, float *y, const egc_k_pool *p, void *stream);
int egc_k_maxpool_bwd(const float *x, const float *dy, float *dx, int32_t *argmax,
                      const egc_k_pool *p, void *stream);

/* avgpool.cu: y = sum of the in-bounds window / divisor, where the divisor counts the
 * in-bounds elements (count_include_pad = 0) or the window clipped to the padded input
 * [-pt, h+pb) x [-pl, w+pr) (count_include_pad = 1). Backward spreads dy / divisor. */
int egc_k_avgpool_fwd(const float *x, float *y, const egc_k_pool *p, void *stream);
int egc_k_avgpool_bwd(const float *dy, float *dx, const egc_k_pool *p, void *stream);

/* gap.cu: GlobalAveragePool x [planes, hw] -> y [planes]; backward dx += dy / hw. */
int egc_k_gap_fwd(const float *x, float *y, int64_t planes, int64_t hw, void *stream);
int egc_k_gap_bwd(const float *dy, float *dx, int64_t planes, int64_t hw, void *stream);

/* batchnorm.cu: inference BatchNormalization on x [n, c, inner]:
 *   y = x * k + (bias[c] - mean[c] * k) with k = scale[c] / sqrt(var[c] + eps);
 *   bwd: dx += dy * scale[c] / sqrt(var[c] + eps). */
int egc_k_batchnorm_fwd(const float *x, float *y, const float *scale, const float *bias,
                        const float *mean, const float *var, float eps, int64_t n, int64_t c,
                        int64_t inner, void *stream);
int egc_k_batchnorm_bwd(const float *dy, float *dx, const float *scale, const float *var,
                        float eps, int64_t n, int64_t c, int64_t inner, void *stream);

/* bias.cu: y[n, c, inner] += bias[c] (the Conv bias). */
int egc_k_bias_add(float *y, const float *bias, int64_t n, int64_t c, int64_t inner,
                   void *stream);

/* ---- mixed precision: float16 tensors are passed as uint16_t * (IEEE binary16 bits). NHWC
 * tensors are [n, h*w, c] with channels fastest. Conversions to float16 round to nearest even.
 * Each of these is forward only (the mixed path covers the trunk, which has no backward). */

/* convert_nchw_to_nhwc_f16.cu: y[n, hw, c] = (half) x[n, c, hw]. Also turns convolution
 * weights [K, C, R, S] into [K, R, S, C] (n = K, hw = R*S). x and y must not overlap. */
int egc_k_nchw_to_nhwc_f16(const float *x, uint16_t *y, int64_t n, int64_t c, int64_t hw,
                           void *stream);
/* The same into cy >= c channels: y[n, hw, cy], channels c..cy-1 zero (a convolution's input
 * channels padded for tensor cores: activations, and weights with n = K). */
int egc_k_nchw_to_nhwc_f16_pad(const float *x, uint16_t *y, int64_t n, int64_t c, int64_t cy,
                               int64_t hw, void *stream);
/* convert_nhwc_f16_to_nchw.cu: y[n, c, hw] = (float) x[n, hw, c]. x and y must not overlap. */
int egc_k_nhwc_f16_to_nchw(const uint16_t *x, float *y, int64_t n, int64_t c, int64_t hw,
                           void *stream);
/* clip_f16.cu: y = min(max(x, lo), hi) elementwise (Relu: lo = 0, hi = +inf); y may be x. */
int egc_k_clip_f16(const uint16_t *x, uint16_t *y, float lo, float hi, int64_t n, void *stream);
/* add_f16.cu: y = a + b, then max(y, 0) when relu != 0; same shapes; y may be a or b. */
int egc_k_add_f16(const uint16_t *a, const uint16_t *b, uint16_t *y, int relu, int64_t n,
                  void *stream);
/* bias_act_f16.cu: in place on NHWC y[n, hw, c]: y = act(y + bias[c] + z) with float32 bias
 * (NULL: none) and float16 z of y's shape (NULL: none), act 0 identity, 1 Relu; computed in
 * float32 as (y + bias) + z, rounded once. */
int egc_k_bias_act_f16(uint16_t *y, const float *bias, const uint16_t *z, int64_t n, int64_t hw,
                       int64_t c, int relu, void *stream);
/* compare_f16.cu: out[0] = max |got - ref|, out[1] = max |ref| over n float16 values (computed
 * in float32; +inf when either holds a NaN or an infinity); out is device memory of 2 floats. */
int egc_k_compare_f16(const uint16_t *ref, const uint16_t *got, int64_t n, float *out,
                      void *stream);
/* maxpool_nhwc_f16.cu: MaxPool of NHWC x [n, h, w, c] -> y [n, oh, ow, c] with the window of p
 * (p->planes is ignored); -inf where a window has no in-bounds element. */
int egc_k_maxpool_nhwc_f16(const uint16_t *x, uint16_t *y, int64_t n, int64_t c,
                           const egc_k_pool *p, void *stream);

#ifdef __cplusplus
}
#endif
#endif

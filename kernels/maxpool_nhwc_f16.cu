/* maxpool_nhwc_f16.cu: MaxPool forward on float16 NHWC tensors, x [n, h, w, c] ->
 * y [n, oh, ow, c], with the window of egc_k_pool (its planes field is not used: n and c are
 * given). The maximum of the in-bounds window elements (exact in float16); a window with no
 * in-bounds element gives -inf. One thread per output element, channels fastest, so
 * neighbouring threads read neighbouring channels. Forward only (the mixed path runs the
 * trunk, which has no backward). */
#include <cuda_fp16.h>

#include "kernel_util.cuh"

namespace {

__global__ void maxpool_nhwc_f16_kernel(const __half *x, __half *y, int64_t c, egc_k_pool p,
                                        int64_t total)
{
    for (int64_t i = egc_k_tid(); i < total; i += egc_k_nthreads()) {
        int64_t ch = i % c, t = i / c;
        int64_t ow = t % p.ow;
        t /= p.ow;
        int64_t oh = t % p.oh, img = t / p.oh;
        const __half *xi = x + img * p.h * p.w * c + ch;
        float m = -INFINITY;
        for (int a = 0; a < p.kh; a++) {
            int64_t ih = oh * p.sh - p.pt + (int64_t)a * p.dh;
            if (ih < 0 || ih >= p.h) continue;
            for (int b = 0; b < p.kw; b++) {
                int64_t iw = ow * p.sw - p.pl + (int64_t)b * p.dw;
                if (iw < 0 || iw >= p.w) continue;
                float v = __half2float(xi[(ih * p.w + iw) * c]);
                if (v > m) m = v;
            }
        }
        y[i] = __float2half_rn(m);
    }
}

} // namespace

extern "C" int egc_k_maxpool_nhwc_f16(const uint16_t *x, uint16_t *y, int64_t n, int64_t c,
                                      const egc_k_pool *p, void *stream)
{
    int64_t total = n * p->oh * p->ow * c;
    if (total <= 0) return 0;
    maxpool_nhwc_f16_kernel<<<egc_k_blocks(total), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
        reinterpret_cast<const __half *>(x), reinterpret_cast<__half *>(y), c, *p, total);
    return egc_k_status();
}

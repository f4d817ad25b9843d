/* avgpool.cu: 2-D AveragePool forward and backward. The divisor of a window counts its
 * in-bounds elements (count_include_pad = 0) or its elements inside the padded input
 * [-pt, h+pb) x [-pl, w+pr) (count_include_pad = 1). Backward gathers, one thread per x
 * element, so it is deterministic. */
#include "kernel_util.cuh"

namespace {

/* Divisor of the window of output (oh, ow). */
__device__ __forceinline__ float window_div(const egc_k_pool &p, int64_t oh, int64_t ow)
{
    int64_t h0 = oh * p.sh - p.pt, w0 = ow * p.sw - p.pl;
    int64_t lo_h = p.count_include_pad ? -p.pt : 0, hi_h = p.count_include_pad ? p.h + p.pb : p.h;
    int64_t lo_w = p.count_include_pad ? -p.pl : 0, hi_w = p.count_include_pad ? p.w + p.pr : p.w;
    int64_t ch = 0, cw = 0;
    for (int i = 0; i < p.kh; i++) {
        int64_t h = h0 + (int64_t)i * p.dh;
        ch += h >= lo_h && h < hi_h;
    }
    for (int j = 0; j < p.kw; j++) {
        int64_t w = w0 + (int64_t)j * p.dw;
        cw += w >= lo_w && w < hi_w;
    }
    return (float)(ch * cw);
}

__global__ void avgpool_fwd_kernel(const float *x, float *y, egc_k_pool p, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        int64_t ow = i % p.ow, t = i / p.ow, oh = t % p.oh, pl = t / p.oh;
        const float *xp = x + pl * p.h * p.w;
        int64_t h0 = oh * p.sh - p.pt, w0 = ow * p.sw - p.pl;
        float s = 0.0f;
        for (int a = 0; a < p.kh; a++) {
            int64_t h = h0 + (int64_t)a * p.dh;
            if (h < 0 || h >= p.h) continue;
            for (int b = 0; b < p.kw; b++) {
                int64_t w = w0 + (int64_t)b * p.dw;
                if (w < 0 || w >= p.w) continue;
                s += xp[h * p.w + w];
            }
        }
        float d = window_div(p, oh, ow);
        y[i] = d > 0.0f ? s / d : 0.0f;
    }
}

__global__ void avgpool_bwd_kernel(const float *dy, float *dx, egc_k_pool p, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        int64_t w = i % p.w, t = i / p.w, h = t % p.h, pl = t / p.h;
        const float *gp = dy + pl * p.oh * p.ow;
        float acc = 0.0f;
        for (int a = p.kh - 1; a >= 0; a--) {
            int64_t num = h + p.pt - (int64_t)a * p.dh;
            if (num < 0 || num % p.sh) continue;
            int64_t oh = num / p.sh;
            if (oh >= p.oh) continue;
            for (int b = p.kw - 1; b >= 0; b--) {
                int64_t numw = w + p.pl - (int64_t)b * p.dw;
                if (numw < 0 || numw % p.sw) continue;
                int64_t ow = numw / p.sw;
                if (ow >= p.ow) continue;
                float d = window_div(p, oh, ow);
                if (d > 0.0f) acc += gp[oh * p.ow + ow] / d;
            }
        }
        dx[i] += acc;
    }
}

} // namespace

extern "C" int egc_k_avgpool_fwd(const float *x, float *y, const egc_k_pool *p, void *stream)
{
    int64_t n = p->planes * p->oh * p->ow;
    if (n <= 0) return 0;
    avgpool_fwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, y, *p, n);
    return egc_k_status();
}

extern "C" int egc_k_avgpool_bwd(const float *dy, float *dx, const egc_k_pool *p, void *stream)
{
    int64_t n = p->planes * p->h * p->w;
    if (n <= 0 || p->oh * p->ow <= 0) return 0;
    avgpool_bwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(dy, dx, *p, n);
    return egc_k_status();
}

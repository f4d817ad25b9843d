/* maxpool.cu: 2-D MaxPool forward and backward (first maximum of each window wins, as in
 * the CPU reference; cuDNN's pooling may pick another element on ties, hence own kernels). */
#include <float.h>

#include "kernel_util.cuh"

namespace {

/* Max of the window of output o (plane, oh, ow) and its position h*w_in + w in the plane
 * (-1 when the window holds no in-bounds element). */
__device__ __forceinline__ float window_max(const float *xp, const egc_k_pool &p, int64_t oh,
                                            int64_t ow, int *arg)
{
    float best = -FLT_MAX;
    int at = -1;
    int64_t h0 = oh * p.sh - p.pt, w0 = ow * p.sw - p.pl;
    for (int i = 0; i < p.kh; i++) {
        int64_t h = h0 + (int64_t)i * p.dh;
        if (h < 0 || h >= p.h) continue;
        for (int j = 0; j < p.kw; j++) {
            int64_t w = w0 + (int64_t)j * p.dw;
            if (w < 0 || w >= p.w) continue;
            float v = xp[h * p.w + w];
            if (at < 0 || v > best) {
                best = v;
                at = (int)(h * p.w + w);
            }
        }
    }
    *arg = at;
    return best;
}

__global__ void maxpool_fwd_kernel(const float *x, float *y, egc_k_pool p, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        int64_t ow = i % p.ow, t = i / p.ow, oh = t % p.oh, pl = t / p.oh;
        int arg;
        y[i] = window_max(x + pl * p.h * p.w, p, oh, ow, &arg);
    }
}

__global__ void maxpool_argmax_kernel(const float *x, int32_t *argmax, egc_k_pool p, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        int64_t ow = i % p.ow, t = i / p.ow, oh = t % p.oh, pl = t / p.oh;
        int arg;
        (void)window_max(x + pl * p.h * p.w, p, oh, ow, &arg);
        argmax[i] = arg;
    }
}

/* Output coordinates whose window covers input coordinate c along one dim:
 * o*s - pad + k*d == c for some k in [0, ksize). Visits them in increasing o. */
__global__ void maxpool_gather_kernel(const float *dy, float *dx, const int32_t *argmax,
                                      egc_k_pool p, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        int64_t w = i % p.w, t = i / p.w, h = t % p.h, pl = t / p.h;
        const int32_t *ap = argmax + pl * p.oh * p.ow;
        const float *gp = dy + pl * p.oh * p.ow;
        int32_t me = (int32_t)(h * p.w + w);
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
                int64_t o = oh * p.ow + ow;
                if (ap[o] == me) acc += gp[o];
            }
        }
        dx[i] += acc;
    }
}

} // namespace

extern "C" int egc_k_maxpool_fwd(const float *x, float *y, const egc_k_pool *p, void *stream)
{
    int64_t n = p->planes * p->oh * p->ow;
    if (n <= 0) return 0;
    maxpool_fwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, y, *p, n);
    return egc_k_status();
}

extern "C" int egc_k_maxpool_bwd(const float *x, const float *dy, float *dx, int32_t *argmax,
                                 const egc_k_pool *p, void *stream)
{
    int64_t no = p->planes * p->oh * p->ow, ni = p->planes * p->h * p->w;
    if (no <= 0 || ni <= 0) return 0;
    if (p->h * p->w > INT32_MAX) return (int)cudaErrorInvalidValue;
    cudaStream_t st = egc_k_stream(stream);
    maxpool_argmax_kernel<<<egc_k_blocks(no), EGC_K_THREADS, 0, st>>>(x, argmax, *p, no);
    int e = egc_k_status();
    if (e) return e;
    maxpool_gather_kernel<<<egc_k_blocks(ni), EGC_K_THREADS, 0, st>>>(dy, dx, argmax, *p, ni);
    return egc_k_status();
}

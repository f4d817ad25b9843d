/* method_perturb.cu: the sample points of the sampled methods on the device (m_perturb):
 * z = x' + a (x - x') + e with the row's draws (egc_sample_row) and the normal noise of
 * Philox block 1 + j/4, exactly as csrc/methods/expected.c's egc_expected_point computes
 * them (philox.h; the float steps with round-to-nearest intrinsics, so z is the CPU's bit
 * for bit). One thread per (row, block of four values). */
#include "method_util.cuh"

namespace {

__global__ void perturb_kernel(egc_sample_spec sp, const float *x, const float *base, int64_t r0,
                               int64_t n, int64_t chw, float *z)
{
    const int64_t nq = (chw + 3) / 4, total = n * nq;
    for (int64_t q = egc_k_tid(); q < total; q += egc_k_nthreads()) {
        int64_t t = q / nq, j = (q % nq) * 4;
        egc_sample_draw d = egc_sample_row(&sp, r0 + t);
        const float *xi = x + (int64_t)d.image * chw, *xr = base + (int64_t)d.baseline * chw;
        float *zt = z + t * chw;
        int64_t m = chw - j < 4 ? chw - j : 4;
        if (!(d.sigma > 0.0f)) {
            for (int64_t u = 0; u < m; u++) {
                float dd = __fsub_rn(xi[j + u], xr[j + u]);
                zt[j + u] = __fadd_rn(xr[j + u], __fmul_rn(d.alpha, dd));
            }
            continue;
        }
        float v[4];
        egc_philox_normal4(egc_philox_block(d.noise_seed, d.image_id, d.sample,
                                            (uint32_t)(1 + j / 4)),
                           v);
        for (int64_t u = 0; u < m; u++) {
            float dd = __fsub_rn(xi[j + u], xr[j + u]);
            float zz = __fadd_rn(xr[j + u], __fmul_rn(d.alpha, dd));
            zt[j + u] = __fadd_rn(zz, __fmul_rn(d.sigma, v[u]));
        }
    }
}

} // namespace

extern "C" int egc_k_perturb(egc_sample_spec spec, const float *x, const float *base, int64_t r0,
                             int64_t n, int64_t chw, float *z, void *stream)
{
    if (n <= 0 || chw <= 0) return 0;
    int64_t total = n * ((chw + 3) / 4);
    perturb_kernel<<<egc_k_blocks(total), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
        spec, x, base, r0, n, chw, z);
    return egc_k_status();
}

/* method_accumulate.cu: the per-image running sums of the aggregations (m_accumulate):
 *   kind 0 (SUM):  acc[i] += src[t]                             (A; C on per-sample maps)
 *   kind 1 (DIFF): acc[i] += (ax[i] - aref[b]) * src[t]         (B)
 * for the rows r = r0 + t of a chunk, i = r / S, b the row's baseline (egc_sample_row).
 * One thread per element j of a row walks the rows in order, so every acc element receives
 * its terms in the CPU's order; with round-to-nearest intrinsics the sums are the CPU's bit
 * for bit. Consecutive rows of one image are summed in a register between loads/stores. */
#include "method_util.cuh"

namespace {

__global__ void accumulate_kernel(int kind, egc_sample_spec sp, int64_t r0, int64_t n,
                                  int64_t len, const float *src, const float *ax,
                                  const float *aref, float *acc)
{
    for (int64_t j = egc_k_tid(); j < len; j += egc_k_nthreads()) {
        int64_t cur = -1;
        float a = 0.0f, x = 0.0f;
        for (int64_t t = 0; t < n; t++) {
            int64_t i = (r0 + t) / sp.S;
            if (i != cur) {
                if (cur >= 0) acc[cur * len + j] = a;
                cur = i;
                a = acc[i * len + j];
                if (kind == 1) x = ax[i * len + j];
            }
            float g = src[t * len + j];
            if (kind == 0) {
                a = __fadd_rn(a, g);
            } else {
                egc_sample_draw d = egc_sample_row(&sp, r0 + t);
                float dd = __fsub_rn(x, aref[(int64_t)d.baseline * len + j]);
                a = __fadd_rn(a, __fmul_rn(dd, g));
            }
        }
        if (cur >= 0) acc[cur * len + j] = a;
    }
}

} // namespace

extern "C" int egc_k_accumulate_rows(int kind, egc_sample_spec spec, int64_t r0, int64_t n,
                                     int64_t len, const float *src, const float *ax,
                                     const float *aref, float *acc, void *stream)
{
    if (n <= 0 || len <= 0) return 0;
    accumulate_kernel<<<egc_k_blocks(len), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
        kind, spec, r0, n, len, src, ax, aref, acc);
    return egc_k_status();
}

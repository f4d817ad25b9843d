/* method_accumulate.cu: the per-image running sums of the aggregations (m_accumulate):
 *   kind 0 (SUM):  acc[i] += src[t]                             (A; C on per-sample maps)
 *   kind 1 (DIFF): acc[i] += (ax[i] - aref[b]) * src[t]         (B)
 * for the rows r = r0 + t of a chunk, i = r / S, b the row's baseline (egc_sample_row).
 * The grid's y dimension runs over the images the chunk's rows belong to (a chunk of 128 rows
 * with S = 32 holds 4), its x dimension over the elements j of a row; each thread walks its
 * image's rows of the chunk in order, so every acc element receives its terms in the CPU's
 * order, and with round-to-nearest intrinsics the sums are the CPU's bit for bit. The
 * images' chains run side by side (before, one thread walked all the chunk's rows). */
#include "method_util.cuh"

namespace {

__global__ void accumulate_kernel(int kind, egc_sample_spec sp, int64_t r0, int64_t n,
                                  int64_t len, int64_t nimg, const float *src, const float *ax,
                                  const float *aref, float *acc)
{
    const int64_t S = sp.S, i0 = r0 / S;
    for (int64_t seg = blockIdx.y; seg < nimg; seg += gridDim.y) {
        const int64_t i = i0 + seg; /* the image; its rows of the chunk are ta..tb-1 */
        const int64_t ta = (i * S > r0 ? i * S : r0) - r0;
        const int64_t tb = ((i + 1) * S < r0 + n ? (i + 1) * S : r0 + n) - r0;
        for (int64_t j = egc_k_tid(); j < len; j += egc_k_nthreads()) {
            float a = acc[i * len + j];
            if (kind == 0) {
                for (int64_t t = ta; t < tb; t++) a = __fadd_rn(a, src[t * len + j]);
            } else {
                const float x = ax[i * len + j];
                for (int64_t t = ta; t < tb; t++) {
                    egc_sample_draw d = egc_sample_row(&sp, r0 + t);
                    float dd = __fsub_rn(x, aref[(int64_t)d.baseline * len + j]);
                    a = __fadd_rn(a, __fmul_rn(dd, src[t * len + j]));
                }
            }
            acc[i * len + j] = a;
        }
    }
}

} // namespace

extern "C" int egc_k_accumulate_rows(int kind, egc_sample_spec spec, int64_t r0, int64_t n,
                                     int64_t len, const float *src, const float *ax,
                                     const float *aref, float *acc, void *stream)
{
    if (n <= 0 || len <= 0 || spec.S <= 0) return 0;
    /* the images rows r0..r0+n-1 belong to */
    const int64_t nimg = (r0 + n - 1) / spec.S - r0 / spec.S + 1;
    dim3 grid(egc_k_blocks(len), (unsigned)(nimg < 65535 ? nimg : 65535));
    accumulate_kernel<<<grid, EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
        kind, spec, r0, n, len, nimg, src, ax, aref, acc);
    return egc_k_status();
}

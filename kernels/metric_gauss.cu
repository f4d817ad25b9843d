/* metric_gauss.cu: the Gaussian-infidelity rows on the device (m_gauss_rows; CPU reference
 * egc_gauss_row in csrc/metrics/metric_rows.c). Row r = r0 + t is image i = r / rows_per at
 * step k = r % rows_per: step 0 is a copy of x[i] (dot product 0); step k >= 1 draws the
 * standard normals of the key (seed, ids[i], k - 1 + sample0[i]) (Philox block 1 + j/4 for
 * the values j..j+3, core/philox.h) and writes out = x - sigma * normal with round-to-nearest
 * intrinsics (no fused multiply-add), so the rows are the CPU's bit for bit.
 *
 * The dot product aux[t] = sum_j phi[i][j % hw] * I_j (double) is summed in chunks of kChunk
 * values: one block makes the values of one (row, chunk) and sums its products by a fixed
 * tree into scratch [n, chunks]; a second pass adds each row's chunk sums in chunk order.
 * The order differs from the CPU's sequential sum (agreement to double rounding), but it is
 * fixed by chw alone, so aux is deterministic and does not depend on n or r0.
 * Grid-stride over the (row, chunk) blocks, then over the rows. */
#include "method_util.cuh"

namespace {

constexpr int64_t kChunk = 4096;         /* values per block; a multiple of 4 */
constexpr int64_t kChunkQ = kChunk / 4;  /* Philox blocks of four values per chunk */

int64_t chunks_of(int64_t chw) { return (chw + kChunk - 1) / kChunk; }

__global__ void gauss_rows_kernel(const float *x, const float *phi, const uint64_t *ids,
                                  const uint32_t *sample0, uint64_t seed, float sigma, int C,
                                  int64_t hw, int64_t rows_per, int64_t r0, int64_t n,
                                  int64_t nch, float *out, double *part)
{
    const int64_t chw = (int64_t)C * hw, nq = (chw + 3) / 4, total = n * nch;
    for (int64_t b = blockIdx.x; b < total; b += gridDim.x) { /* uniform across the block */
        int64_t t = b / nch, q = b - t * nch;
        int64_t r = r0 + t, i = r / rows_per, k = r - i * rows_per;
        const float *xi = x + i * chw, *pi = phi + i * hw;
        float *ot = out + t * chw;
        uint32_t s = k > 0 ? (uint32_t)(k - 1) + (sample0 ? sample0[i] : 0u) : 0u;
        double acc = 0.0;
        int64_t qend = (q + 1) * kChunkQ < nq ? (q + 1) * kChunkQ : nq;
        for (int64_t u = q * kChunkQ + threadIdx.x; u < qend; u += blockDim.x) {
            int64_t j = u * 4, m = chw - j < 4 ? chw - j : 4;
            if (k == 0) {
                for (int64_t v = 0; v < m; v++) ot[j + v] = xi[j + v];
                continue;
            }
            float nv[4];
            egc_philox_normal4(egc_philox_block(seed, ids[i], s, (uint32_t)(1 + u)), nv);
            int64_t p = j % hw;
            for (int64_t v = 0; v < m; v++) {
                float I = __fmul_rn(sigma, nv[v]);
                ot[j + v] = __fsub_rn(xi[j + v], I);
                acc = __dadd_rn(acc, __dmul_rn((double)pi[p], (double)I));
                if (++p == hw) p = 0;
            }
        }
        double sum = egc_m_block_sum_d(acc);
        if (threadIdx.x == 0) part[b] = sum;
    }
}

__global__ void gauss_aux_kernel(const double *part, int64_t n, int64_t nch, double *aux)
{
    for (int64_t t = egc_k_tid(); t < n; t += egc_k_nthreads()) {
        const double *pt = part + t * nch;
        double s = 0.0;
        for (int64_t q = 0; q < nch; q++) s = __dadd_rn(s, pt[q]);
        aux[t] = s;
    }
}

} // namespace

extern "C" size_t egc_k_gauss_scratch(int64_t n, int64_t chw)
{
    /* the Philox block index 1 + j/4 is 32-bit */
    if (n <= 0 || chw <= 0 || chw >= ((int64_t)1 << 34)) return 0;
    return (size_t)n * (size_t)chunks_of(chw) * sizeof(double);
}

extern "C" int egc_k_gauss_rows(const float *x, const float *phi, const uint64_t *ids,
                                const uint32_t *sample0, uint64_t seed, float sigma, int C,
                                int64_t hw, int64_t rows_per, int64_t r0, int64_t n,
                                void *scratch, size_t scratch_bytes, float *out, double *aux,
                                void *stream)
{
    if (n <= 0) return 0;
    if (C <= 0 || hw <= 0 || rows_per <= 0 || r0 < 0) return (int)cudaErrorInvalidValue;
    const int64_t chw = (int64_t)C * hw, nch = chunks_of(chw);
    size_t need = egc_k_gauss_scratch(n, chw);
    if (!need || !scratch || scratch_bytes < need) return (int)cudaErrorInvalidValue;
    double *part = (double *)scratch;
    int64_t total = n * nch;
    unsigned grid = total > 65536 ? 65536u : (unsigned)total;
    gauss_rows_kernel<<<grid, EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
        x, phi, ids, sample0, seed, sigma, C, hw, rows_per, r0, n, nch, out, part);
    int e = egc_k_status();
    if (e) return e;
    gauss_aux_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(part, n, nch,
                                                                                 aux);
    return egc_k_status();
}

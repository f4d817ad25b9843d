/* egc_method_kernels.h: the extern "C" launchers of the explanation-method kernels
 * (kernels/method_*.cu, one op per file), called by csrc/cuda/cuda_methods.c for the m_*
 * entries of backend.h, whose contracts they implement on device memory.
 *
 * Conventions as in egc_kernels.h: no CUDA types (a stream is `void *`), every launcher
 * returns its launch's cudaError_t as an int (0 = success), handles any size (n == 0
 * launches nothing) and uses 64-bit index arithmetic. Where the CPU reference evaluates a
 * float expression, the kernels use the round-to-nearest intrinsics (__fadd_rn, __fmul_rn,
 * ...) so that no multiply-add is fused and the float results are the CPU's bit for bit
 * (sample points, sums of the aggregations, means, upsampling and min-max); reductions
 * accumulated in double (channel weights, weighted sums, softmax) follow the CPU in
 * precision but not in summation order. */
#ifndef EGC_METHOD_KERNELS_H
#define EGC_METHOD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "core/philox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* method_scan.cu: ids [n] (skipped when NULL), range [n,2] and bad [n] of the images x
 * [n,chw] (m_scan). */
int egc_k_scan(const float *x, int64_t n, int64_t chw, uint64_t *ids, float *range, int64_t *bad,
               void *stream);

/* method_perturb.cu: z[t] (chw floats) = sample point of row r0 + t of spec (m_perturb). */
int egc_k_perturb(egc_sample_spec spec, const float *x, const float *base, int64_t r0, int64_t n,
                  int64_t chw, float *z, void *stream);

/* metric_select.cu: the masked-replacement rows r0..r0+n-1 of a group (m_select_rows; the
 * fields of backend.h's egc_select_spec, bconst [4] host floats) into out [n,C,hw]. */
int egc_k_select_rows(const float *a, const float *b, const int32_t *key, int64_t key_stride,
                      int C, int64_t hw, int64_t rows_per, int64_t thr_step, int64_t thr_max,
                      const float bconst[4], int64_t r0, int64_t n, float *out, void *stream);

/* metric_gauss.cu: scratch bytes for n rows of chw values (0 when n or chw is out of
 * range), and the Gaussian-infidelity rows r0..r0+n-1 (m_gauss_rows; the fields of
 * backend.h's egc_gauss_spec, sample0 may be NULL) into out [n,chw] with their dot products
 * aux [n] (double); scratch holds egc_k_gauss_scratch(n, C*hw) bytes. */
size_t egc_k_gauss_scratch(int64_t n, int64_t chw);
int egc_k_gauss_rows(const float *x, const float *phi, const uint64_t *ids,
                     const uint32_t *sample0, uint64_t seed, float sigma, int C, int64_t hw,
                     int64_t rows_per, int64_t r0, int64_t n, void *scratch,
                     size_t scratch_bytes, float *out, double *aux, void *stream);

/* metric_rank.cu: scratch bytes for n maps of hw pixels (0 when n * hw is out of range),
 * and the ranks key [n,hw] of maps [n,hw] (m_rank). */
size_t egc_k_rank_scratch(int n, int hw);
int egc_k_rank(const float *maps, int n, int hw, void *scratch, size_t scratch_bytes,
               int32_t *key, void *stream);

/* method_scorecam.cu: Score-CAM's masked inputs of rows r0..r0+n-1 (m_scorecam_inputs). */
int egc_k_scorecam_inputs(const float *x, const float *A, int64_t r0, int64_t n, int K, int h,
                          int w, int C, int H, int W, float *z, void *stream);

/* method_seed.cu: classes, seeds and values of the target score (m_score_seed). */
int egc_k_score_seed(const float *logits, int64_t n, int classes, int32_t *cls, int64_t r0,
                     int per, int resolve, int softmax, float *seed, float *y, void *stream);

/* method_accumulate.cu: per-image sums over rows in row order (m_accumulate; kind 0 SUM,
 * 1 DIFF). */
int egc_k_accumulate_rows(int kind, egc_sample_spec spec, int64_t r0, int64_t n, int64_t len,
                          const float *src, const float *ax, const float *aref, float *acc,
                          void *stream);

/* method_mean.cu: v[0..n) = v / S in float (m_mean). */
int egc_k_mean(float *v, int64_t n, int S, void *stream);

/* method_cam.cu: raw maps of n images (m_cam; method 0 Grad-CAM, 1 Grad-CAM++, 2 XGrad-CAM,
 * 3 HiResCAM, 4 LayerCAM, 5 Score-CAM with G = scores [n,K]). */
int egc_k_cam(int method, const float *G, const float *A, int64_t n, int K, int hw, float *wk,
              float *L, void *stream);

/* method_finalize.cu: map[i] = minmax(upsample(minmax(L[i]))) (m_finalize). */
int egc_k_cam_finalize(const float *L, int64_t n, int h, int w, float *map, int H, int W,
                       float *scratch, void *stream);

#ifdef __cplusplus
}
#endif
#endif

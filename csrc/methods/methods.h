/* methods.h: the per-image math of the CAM methods (METHODS.md) as plain C functions on host
 * arrays, and the shared post-processing. These are the reference the CUDA kernels are
 * checked against. Layouts: a gradient or activation of one image is [K,h,w] row-major
 * (hw = h*w elements per channel); maps are [h,w] or [H,W]. Sums are accumulated in double
 * and stored as float. Nothing here allocates or fails. */
#ifndef EGC_METHODS_H
#define EGC_METHODS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- cam.c: shared pieces ---- */

/* w[k] = (1/hw) * sum_ij g[k,ij]  (global average pooling of each channel). */
void egc_cam_channel_mean(const float *g, int K, int hw, float *w);
/* out[ij] = sum_k w[k] * a[k,ij] (no relu). */
void egc_cam_weighted_sum(const float *w, const float *a, int K, int hw, float *out);
/* L[i] = max(L[i], 0) for i < n. */
void egc_cam_relu(float *L, int n);
/* In place: L = (L - min) / (max - min + 1e-7) over the n values. */
void egc_cam_minmax(float *L, int n);
/* Bilinear resize in[h,w] -> out[H,W] with half-pixel centres (align_corners = false, as
 * PyTorch's F.interpolate(mode="bilinear") and OpenCV's resize): the source coordinate of
 * output pixel X is (X + 0.5) * (w / W) - 0.5, clamped below at 0; neighbours i0 = floor,
 * i1 = min(i0 + 1, w - 1); weights computed in float. */
void egc_cam_upsample_bilinear(const float *in, int h, int w, float *out, int H, int W);
/* The shared post-processing of every method: map[H,W] = minmax(upsample(minmax(raw))).
 * raw[h,w] is not modified; scratch holds h*w floats. */
void egc_cam_finalize(const float *raw, int h, int w, float *map, int H, int W, float *scratch);

/* ---- single-image methods: g = dy_c/dA [K,hw], a = A [K,hw] -> L [hw] (relu applied).
 * wk is scratch for K floats (it holds the channel weights on return where the method has
 * them). ---- */
typedef void (*egc_cam_fn)(const float *g, const float *a, int K, int hw, float *wk, float *L);

/* Grad-CAM: w_k = mean_ij g; L = relu(sum_k w_k A_k). */
void egc_gradcam(const float *g, const float *a, int K, int hw, float *wk, float *L);
/* Grad-CAM++: alpha = g^2 / (2 g^2 + (sum_ab A_k) g^3 + 1e-6) (0 where g = 0);
 * w_k = sum_ij alpha relu(g); L = relu(sum_k w_k A_k). */
void egc_gradcampp(const float *g, const float *a, int K, int hw, float *wk, float *L);
/* XGrad-CAM: w_k = sum_ij g A / (sum_ab A_k + 1e-7); L = relu(sum_k w_k A_k). */
void egc_xgradcam(const float *g, const float *a, int K, int hw, float *wk, float *L);
/* HiResCAM: L_ij = relu(sum_k g_kij A_kij) (wk unused). */
void egc_hirescam(const float *g, const float *a, int K, int hw, float *wk, float *L);
/* LayerCAM: L_ij = relu(sum_k relu(g_kij) A_kij) (wk unused). */
void egc_layercam(const float *g, const float *a, int K, int hw, float *wk, float *L);

/* ---- scorecam.c ---- */

/* The mask of one channel: mask[H,W] = upsample(a_k[h,w]) min-max normalised with eps 1e-8:
 * (M - min) / (max - min + 1e-8). */
void egc_scorecam_mask(const float *ak, int h, int w, float *mask, int H, int W);
/* z[3,H,W] = x[3,H,W] * mask[H,W] per channel; z may hold the mask in its first plane
 * (z == mask is allowed). */
void egc_scorecam_apply(const float *x, int C, int HW, const float *mask, float *z);
/* From the K masked scores s[K]: w = softmax_k(s) (into wk[K]), L = relu(sum_k w_k A_k). */
void egc_scorecam_map(const float *s, const float *a, int K, int hw, float *wk, float *L);

/* ---- expected.c: the sampled family ---- */

/* The sample point z[n] = x' + alpha (x - x') + sigma * normal, as philox.h specifies:
 * normals of key (noise_seed, image_id, sample_id) when sigma > 0, none when sigma == 0. */
void egc_expected_point(const float *x, const float *xr, size_t n, float alpha, float sigma,
                        uint64_t noise_seed, uint64_t image_id, uint32_t sample_id, float *z);
/* Aggregation A: acc[n] += G[n]. */
void egc_expected_accum_a(float *acc, const float *G, size_t n);
/* Aggregation B: acc[n] += (Ax[n] - Ar[n]) * G[n]. */
void egc_expected_accum_b(float *acc, const float *Ax, const float *Ar, const float *G, size_t n);
/* Aggregation C: mapacc[hw] += relu(sum_k GAP(G)_k Az_k); wk (K floats), tmp (hw) scratch. */
void egc_expected_accum_c(float *mapacc, const float *G, const float *Az, int K, int hw,
                          float *wk, float *tmp);
/* In place: v[i] = v[i] / S. */
void egc_expected_mean(float *v, size_t n, int S);
/* Aggregation B's map from Phi = mean of the accumulated terms: w = GAP(Phi),
 * L = relu(sum_k w_k Ax_k). */
void egc_expected_map_b(const float *phi, const float *Ax, int K, int hw, float *wk, float *L);

/* ---- score.c: the target score and its seed ---- */

/* The top-1 class of logits[n] (the first maximum). */
int egc_score_argmax(const float *logits, int n);
/* The target score of class c (0 <= c < n) from logits[n]: softmax == 0 gives y = logits[c]
 * and seed = one-hot(c); softmax != 0 gives p = softmax(logits) computed in double
 * (max-shifted), y = (float)p_c and seed[j] = (float)(p_c (delta_cj - p_j)) = dy/dlogit_j.
 * seed[n] may be NULL. Returns y. */
float egc_score_seed(const float *logits, int n, int c, int softmax, float *seed);

/* The `blur` baseline: each of the C planes of x[C,H,W] convolved with the normalised
 * 11x11 Gaussian of sigma 5 (zero padding, same size), computed separably: kernel
 * k[t] = exp(-(t-5)^2 / 50) / sum (in double, then float), horizontal pass into tmp, then
 * vertical pass into out, each a float sum over t = 0..10 in order. tmp holds H*W floats. */
void egc_blur_gaussian11(const float *x, int C, int H, int W, float *tmp, float *out);

#ifdef __cplusplus
}
#endif
#endif

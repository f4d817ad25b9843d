/* egcam/explain.h: saliency maps of the Grad-CAM family (the definitions are in METHODS.md).
 *
 * An explainer binds a model, a device, a target layer and one method with its options; it
 * reserves all its memory (one session of `batch` rows, or fewer when they do not fit, the
 * per-image buffers, the reference images and, for aggregation B, their activations) when it
 * is created, then explains any number of images. Images and samples of a run go through the
 * model together in chunks of that many rows; the maps do not depend on the batch size, the
 * chunking or the position of an image in a batch: every random draw is keyed by (seed,
 * image id, sample index).
 *
 * Sampled methods (smooth-gradcam, integrated-gradcam, expected-*): for sample s of image x
 *   z_s = x'_s + a_s (x - x'_s) + e_s,  x'_s from the baseline set, a_s ~ U(0,1) or s/S,
 *   e_s ~ N(0, (rho (max x - min x))^2)
 * and the gradients G_s at the target layer are combined by aggregation A, B or C. The
 * random draws are specified bit for bit in csrc/core/philox.h.
 *
 * Sample plan file (optional, replaces the random draws of baseline index and alpha, and
 * the sample count): a CSV text file, one row per sample in order (sample index 0, 1, ...):
 *     baseline,alpha,noise_seed
 *     0,0.25,0
 *     2,0.5,17
 * The first non-comment line must be that header; lines starting with '#' and empty lines
 * are skipped. baseline is the index of the reference image (0 for the single-image sets
 * black, blur and self), alpha the interpolation coefficient (a decimal number, used as a
 * float), noise_seed an unsigned 64-bit integer: the noise of that sample is drawn with the
 * Philox key (noise_seed, image id, sample index) instead of (seed, image id, sample index),
 * so another tool can reproduce it from the definitions in philox.h. At most 65536 rows. */
#ifndef EGCAM_EXPLAIN_H
#define EGCAM_EXPLAIN_H

#include <stddef.h>
#include <stdint.h>

#include "egcam/image.h"
#include "egcam/model.h"
#include "egcam/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum egc_method {
    EGC_METHOD_GRADCAM = 0,
    EGC_METHOD_GRADCAMPP,
    EGC_METHOD_XGRADCAM,
    EGC_METHOD_HIRESCAM,
    EGC_METHOD_LAYERCAM,
    EGC_METHOD_SCORECAM,
    EGC_METHOD_SMOOTH_GRADCAM,      /* expected-gradcam with baselines self, combine A */
    EGC_METHOD_INTEGRATED_GRADCAM,  /* baselines black, alpha grid, noise 0, combine C */
    EGC_METHOD_EXPECTED_GRADCAM,    /* combine A, B or C */
    EGC_METHOD_EXPECTED_GRADCAMPP,  /* the expected gradient (combine A) in Grad-CAM++ */
    EGC_METHOD_EXPECTED_XGRADCAM,   /* ... in XGrad-CAM */
    EGC_METHOD_EXPECTED_HIRESCAM,   /* ... in HiResCAM */
    EGC_METHOD_EXPECTED_LAYERCAM,   /* ... in LayerCAM */
    EGC_METHOD_COUNT
} egc_method;

/* EGC_SCORE_DEFAULT, EGC_COMBINE_DEFAULT and EGC_NOISE_DEFAULT (the values of
 * egc_explain_options_default) stand for the method's default, resolved when the explainer is
 * created: expected-gradcam takes combine B, the softmax score and rho = 0, the setting chosen
 * by the evaluation study (docs/RESULTS.md: lowest infidelity, insertion and deletion as
 * tie-breakers); every other method takes combine A, the logit score and rho = 0.15 (and the
 * method-implied options below). egc_explainer_options gives the resolved values. */
typedef enum egc_score {
    EGC_SCORE_DEFAULT = -1,
    EGC_SCORE_LOGIT = 0,
    EGC_SCORE_SOFTMAX = 1
} egc_score;
#define EGC_NOISE_DEFAULT (-1.0f)

typedef enum egc_baselines {
    EGC_BASELINES_BLACK = 0, /* one image: the normalised value of black pixels */
    EGC_BASELINES_BLUR,      /* one image per input: 11x11 Gaussian (sigma 5) of the input */
    EGC_BASELINES_UNIFORM,   /* uniform_count images of U{0..255} pixels, drawn from the seed */
    EGC_BASELINES_SELF,      /* one image per input: the input itself (SmoothGrad) */
    EGC_BASELINES_FILE       /* the R images of baseline_file, a (R,C,H,W) float32 .npy (or
                                channels last, (R,H,W,C)) */
} egc_baselines;

/* The interpolation coefficients of sample s = 0..S-1 of an image, u ~ U(0,1) its draw:
 * uniform a = u; grid a = s / S; stratified a = (s + u) / S (in [s/S, (s+1)/S], float
 * rounding may reach the upper end), one draw in each of the S equal strata of [0,1): the
 * mean over the samples estimates the same expectation over a ~ U(0,1) as uniform, with less
 * variance (with black baselines and no noise a is the only random choice;
 * docs/USER_GUIDE.md has the measurement). Adaptive counts (samples_tol) need uniform. */
typedef enum egc_alpha {
    EGC_ALPHA_UNIFORM = 0,
    EGC_ALPHA_GRID = 1,
    EGC_ALPHA_STRATIFIED = 2
} egc_alpha;
typedef enum egc_combine {
    EGC_COMBINE_DEFAULT = -1,
    EGC_COMBINE_A = 0,
    EGC_COMBINE_B = 1,
    EGC_COMBINE_C = 2
} egc_combine;

typedef struct egc_explain_options {
    egc_method method;
    const char *layer;          /* target layer (tensor or node name), NULL or "auto" */
    egc_preset preset;          /* how inputs were normalised: defines the black and uniform
                                   baselines */
    egc_score score;            /* y_c: the logit or the softmax probability (Score-CAM
                                   always uses the softmax probability, as it defines) */
    int samples;                /* S >= 1 (sampled methods; ignored with a plan) */
    egc_baselines baselines;
    const char *baseline_file;  /* for EGC_BASELINES_FILE */
    int uniform_count;          /* size of the uniform reference set (>= 1) */
    float noise;                /* rho >= 0, or EGC_NOISE_DEFAULT */
    egc_alpha alpha;
    egc_combine combine;
    uint64_t seed;
    int batch;                  /* rows (images x samples) per pass through the model */
    const char *plan_file;      /* optional sample plan (see above), NULL for none */
    egc_precision precision;    /* of the model's session (egcam/model.h); fp32 by default */
    size_t max_device_bytes;    /* 0: no cap. Otherwise the explainer's device memory (session
                                   and own buffers, egc_explainer_device_bytes) stays within
                                   it: passes then take fewer than `batch` rows (see
                                   egc_explainer_rows); the maps do not change */
    float samples_tol;          /* 0 (default): every image takes `samples` samples. > 0:
                                   adaptive sample counts (sampled methods, alpha uniform, no
                                   plan): each image's samples are drawn in rounds of
                                   samples_round (sample ids 0, 1, ... as without it) and it
                                   stops after a round when its running map has converged:
                                   || m_t - m_{t-1} || <= samples_tol, where m_t is the
                                   Grad-CAM map (relu of the channel-weighted activations) of
                                   the estimate after round t (A: the expected gradient, B:
                                   Phi, C: the mean map), scaled to unit L2 norm, in two
                                   consecutive rounds (so at least three rounds); at most
                                   `samples`. An image that stops after n
                                   samples has the map of a run with samples = n (the
                                   result's `samples` says n) */
    int samples_round;          /* samples per round of samples_tol (0: 8) */
} egc_explain_options;

/* Defaults: Grad-CAM, layer auto, preset torchvision, score, combine and noise the method's
 * (EGC_*_DEFAULT, see above), 32 samples, baselines black, 16 uniform images, alpha uniform,
 * seed 0, batch 32, no plan, precision fp32, no device memory cap, fixed sample counts
 * (samples_tol 0, samples_round 8). */
void egc_explain_options_default(egc_explain_options *o);

/* "gradcam", "gradcampp", "xgradcam", "hirescam", "layercam", "scorecam", "smooth-gradcam",
 * "integrated-gradcam", "expected-gradcam", "expected-gradcampp", "expected-xgradcam",
 * "expected-hirescam", "expected-layercam". */
EGC_NODISCARD egc_status egc_method_parse(const char *name, egc_method *out);
const char *egc_method_name(egc_method m);
/* Non-zero for the methods that draw samples (smooth-, integrated-, expected-*). */
int egc_method_is_sampled(egc_method m);
const char *egc_score_name(egc_score s);        /* "logit", "softmax" ("default") */
const char *egc_baselines_name(egc_baselines b); /* "black", "blur", "uniform", "self", "file" */
const char *egc_alpha_name(egc_alpha a);        /* "uniform", "grid", "stratified" */
const char *egc_combine_name(egc_combine c);    /* "A", "B", "C" ("default") */

typedef struct egc_explainer egc_explainer;

/* Result for one image. raw and map are caller buffers (either may be NULL to skip it):
 * raw holds h*w floats, map H*W floats (sizes from egc_explainer_geometry). */
typedef struct egc_cam_result {
    int cls;            /* the explained class */
    float score;        /* y_c on the clean input (logit or softmax probability) */
    uint64_t image_id;  /* 64-bit hash of the input tensor (the key of its random draws) */
    int samples;        /* samples drawn for this image (sampled methods; 0 otherwise):
                           egc_explainer_samples, or fewer with samples_tol */
    float *raw;         /* [h,w] the method's map L at the layer's resolution, before any
                           normalisation (relu already applied where the method says) */
    float *map;         /* [H,W] the final map in [0,1]: min-max, bilinear upsampling
                           (half-pixel centres), min-max */
} egc_cam_result;

/* Creates an explainer: loads the baselines and the plan, resolves the options of the
 * method (smooth-gradcam forces baselines self and combine A; integrated-gradcam baselines
 * black, alpha grid, noise 0 and combine C; the expected variants other than
 * expected-gradcam force combine A), creates the session and reserves every buffer.
 * Batches larger than memory allows are split: the rows per pass (egc_explainer_rows) are
 * the largest count <= batch whose session and buffers fit max_device_bytes (when set) and
 * whose allocations succeed (an out-of-memory halves the rows and tries again). Nothing
 * fitting at one row gives EGC_E_NOMEM naming the cap and the bytes needed.
 * Errors name the option and the reason. The model must outlive the explainer. */
EGC_NODISCARD egc_status egc_explainer_create(const egc_model *m, const char *device,
                                               const egc_explain_options *opts,
                                               egc_explainer **out);
void egc_explainer_destroy(egc_explainer *e);

/* The options after resolution (strings point into the explainer), the number of samples
 * actually drawn per image (from the plan when one is given; 0 for single-pass methods),
 * and the resolved target layer's name. */
const egc_explain_options *egc_explainer_options(const egc_explainer *e);
int egc_explainer_samples(const egc_explainer *e);
const char *egc_explainer_layer(const egc_explainer *e);
/* Rows per pass through the model (= images per group): options.batch, or fewer when the
 * batch was split to fit the memory cap or the device (options.batch keeps what was asked). */
int egc_explainer_rows(const egc_explainer *e);
/* Map sizes: the target layer's h x w and the input's H x W. */
void egc_explainer_geometry(const egc_explainer *e, int *h, int *w, int *H, int *W);
/* Channels of an input image: 3 (RGB) or 1 (a gray model); an input holds C*H*W floats. */
int egc_explainer_channels(const egc_explainer *e);
/* Device memory the explainer holds (its session's weights, arenas and workspaces plus the
 * explainer's own device buffers: inputs, baselines, accumulators, maps). Runs allocate
 * nothing, so this is also the peak. */
size_t egc_explainer_device_bytes(const egc_explainer *e);
/* The device it runs on, as egc_session_device says it ("cuda:0 (NVIDIA H100 ...)"). */
const char *egc_explainer_device(const egc_explainer *e);

/* Explains n >= 1 preprocessed images x[n,C,H,W] (host float32; C = 3, or 1 for a model of
 * gray images: egc_explainer_channels). classes[i] >= 0 explains
 * that class, a negative entry (or classes == NULL) the top-1 class on the clean input.
 * Fills out[0..n-1]. A class out of range gives EGC_E_ARG. */
EGC_NODISCARD egc_status egc_explainer_run(egc_explainer *e, const float *x, int n,
                                            const int *classes, egc_cam_result *out);

/* Phase timing, for finding where a run's time goes. With profiling on, every run waits for
 * the device at each phase boundary (so runs get slower) and adds the wall time of each
 * phase; turning it on (or off) clears the sums. The sampled-pass phases (perturb, forward,
 * backward, reduce) add up over all chunks; clean covers the clean pass (forward, and for
 * single-pass methods backward and CAM), reduce also the final reduction and CAM. Where a
 * sampled method's clean rows ride in its first sample pass (the CUDA backend; see
 * EGC_MERGE_CLEAN in the user guide), clean is about 0 and their work counts in the first
 * pass's phases. */
typedef struct egc_explain_phases {
    double scan_ms;      /* image ids and value ranges (on the device), their download, the
                            checks, and the ids and noise scales to the device */
    double upload_ms;    /* images and classes to the device */
    double clean_ms;
    double perturb_ms;   /* sample points (and their upload to the model's input) */
    double forward_ms;   /* forwards of the sample points */
    double backward_ms;  /* score seeds and head backwards */
    double reduce_ms;    /* per-chunk accumulation, means and CAMs (and Score-CAM's passes) */
    double finalize_ms;  /* min-max and upsampling of the maps */
    double download_ms;  /* classes, scores and maps back to the host */
    int runs, images;
} egc_explain_phases;
void egc_explainer_set_profiling(egc_explainer *e, int on);
void egc_explainer_phases(const egc_explainer *e, egc_explain_phases *out);

/* egc_explainer_run with the keys of the random draws given. ids (NULL: the hashes) gives
 * image i the image id ids[i] instead of the hash of its tensor; sample0 (NULL: zeros) makes
 * image i draw the sample ids sample0[i] .. sample0[i] + S - 1 instead of 0 .. S - 1 (the
 * same seeded stream, further on). With a sample plan the plan's rows are used as they are.
 * The robustness metrics use it to explain x + delta with fresh samples of x's stream:
 * ids = {id(x)}, sample0 = {(k + 1) * S} for the k-th perturbation. out[i].image_id is the
 * id used. Single-pass methods and Score-CAM draw nothing and ignore both. */
EGC_NODISCARD egc_status egc_explainer_run_keyed(egc_explainer *e, const float *x, int n,
                                                  const int *classes, const uint64_t *ids,
                                                  const uint32_t *sample0, egc_cam_result *out);

#ifdef __cplusplus
}
#endif
#endif

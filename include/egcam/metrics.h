/* egcam/metrics.h: evaluation metrics of saliency maps (the exact definitions are in
 * METRICS.md) and the annotations some of them need (boxes, class maps).
 *
 * Maps are the final maps of egc_explainer_run: [H,W] floats in [0,1], one per image, in
 * the model-input geometry. Images are preprocessed inputs x[n,C,H,W] (host float32; C = 3,
 * or 1 for a model of gray images).
 *
 * Every metric that needs the model runs through an evaluator: one forward-only session
 * of `batch` rows, one host buffer of `batch` inputs and backend buffers for the images,
 * maps, pixel ranks and image ids of a group of images, all reserved when the evaluator is
 * created. The perturbed inputs of the fidelity metrics (deletion, insertion, both
 * infidelities) are made by the backend (on a GPU: on the device) straight into the
 * model's input, from the images and maps of a group it holds, and scored in forwards of
 * up to `batch` rows (rows of several images share one forward); nothing is allocated per
 * batch.
 *
 * Pixel ranking (deletion, insertion, relevance rank accuracy): by decreasing saliency,
 * ties by ascending pixel index (a stable sort); all channels of a pixel change together.
 *
 * Random draws (Gaussian infidelity, sensitivity noise) use the Philox4x32-10 stream of
 * csrc/core/philox.h with the key (seed XOR a per-metric constant, image id of x, sample
 * index): EGC_METRIC_KEY_GAUSS for the infidelity perturbations (standard normals, block
 * 1 + j/4 as egc_sample_normals), EGC_METRIC_KEY_SENS for the sensitivity noise (value j
 * of sample s: u = (word j%4 of block 1 + j/4 >> 8) * 2^-24, delta = r * (2u - 1) in float). */
#ifndef EGCAM_METRICS_H
#define EGCAM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "egcam/explain.h"
#include "egcam/image.h"
#include "egcam/model.h"
#include "egcam/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EGC_METRIC_KEY_GAUSS 0x6761757373696e66ULL /* "finissuag" */
#define EGC_METRIC_KEY_SENS 0x73656e7369746976ULL  /* "vitisnes" */

/* ---------------------------------------------------------------- evaluator */

typedef struct egc_evaluator egc_evaluator;

/* Creates an evaluator for model m on device ("cpu", "cuda", "cuda:N") with `batch` rows
 * per forward (>= 1). The model must outlive it. */
EGC_NODISCARD egc_status egc_evaluator_create(const egc_model *m, const char *device, int batch,
                                               egc_evaluator **out);
/* egc_evaluator_create with a cap on its session's device memory (0: none; see
 * egc_session_options.max_device_bytes): forwards of more rows than fit run in smaller
 * passes with the same logits. */
EGC_NODISCARD egc_status egc_evaluator_create_ex(const egc_model *m, const char *device,
                                                  int batch, size_t max_device_bytes,
                                                  egc_evaluator **out);
void egc_evaluator_destroy(egc_evaluator *ev);
/* Rows forwarded since creation (for throughput figures). */
int64_t egc_evaluator_rows(const egc_evaluator *ev);
/* The logits[n,classes] of n images (in forwards of `batch` rows). */
EGC_NODISCARD egc_status egc_evaluator_logits(egc_evaluator *ev, const float *x, int n,
                                               float *logits);

/* ---------------------------------------------------------------- fidelity (fidelity.c) */

typedef enum egc_curve_kind { EGC_CURVE_DELETION = 0, EGC_CURVE_INSERTION = 1 } egc_curve_kind;

/* Number of steps for hw pixels and `step` pixels per step: ceil(hw / step) (step >= 1). */
int egc_curve_steps(int hw, int step);
/* Trapezoid AUC on [0,1] of a curve of n >= 2 points: (sum s - s_0/2 - s_last/2) / (n-1);
 * a single point gives s_0. */
double egc_curve_auc(const float *s, int n);
/* Deletion or insertion (RISE protocol, METRICS.md) of n images: the softmax probability of
 * class c (classes[i], or the clean top-1 when classes is NULL or the entry is negative)
 * before the first step and after every step of `step` pixels. Deletion sets the ranked
 * pixels to 0 (normalised space); insertion starts from the 11x11 sigma-5 Gaussian blur
 * of x (zero padding) and copies the ranked pixels of x in. auc[n] gets the AUCs; curves
 * (NULL to skip) gets [n, steps+1] probabilities. egc_metric_curves with one curve. */
EGC_NODISCARD egc_status egc_metric_curve(egc_evaluator *ev, egc_curve_kind kind,
                                           const float *x, const float *maps, int n,
                                           const int *classes, int step, float *auc,
                                           float *curves);
/* Deletion and insertion of the same n images in one call, with the results of
 * egc_metric_curve for each kind exactly: the classes are found once, each group of images
 * has its maps ranked once and its images uploaded once, and its deletion rows then its
 * insertion rows are made from those backend buffers (a sweep that asks for both curves
 * saves a ranking, an upload and a class pass per image).
 * Needs: ev, x [n,C,H,W], maps [n,H,W], n >= 1, step >= 1, classes as for
 * egc_metric_curve, and at least one of auc_del, auc_ins (NULL skips that curve).
 * Writes: auc_del[n] and auc_ins[n] (the ones given); curves_del and curves_ins [n,
 * steps+1] probabilities (each NULL to skip; unused when its AUC pointer is NULL).
 * Errors: EGC_E_ARG (a missing argument, both AUC outputs NULL, step < 1, a class out of
 * range), EGC_E_NOMEM (host buffers), and the evaluator's backend errors (EGC_E_DEVICE);
 * on an error the outputs hold nothing meaningful. */
EGC_NODISCARD egc_status egc_metric_curves(egc_evaluator *ev, const float *x,
                                            const float *maps, int n, const int *classes,
                                            int step, float *auc_del, float *auc_ins,
                                            float *curves_del, float *curves_ins);

typedef struct egc_infidelity_options {
    int patch;          /* patch side for the patch protocol (default 4, Quantus) */
    float black[3];     /* the replacement value per channel: normalised black pixels */
    int samples;        /* Gaussian variant: perturbations per image (default 32) */
    float sigma;        /* Gaussian variant: standard deviation in normalised units (0.1) */
    uint64_t seed;      /* Gaussian variant: seed of the draws (0) */
} egc_infidelity_options;

/* Defaults as above, with black the normalised value of a black pixel under preset p. */
void egc_infidelity_options_default(egc_preset p, egc_infidelity_options *o);

/* Number of patches of an H x W image: ceil(H/patch) * ceil(W/patch). */
int egc_infidelity_patches(int H, int W, int patch);
/* Infidelity, Quantus patch protocol: patches of patch x patch pixels on a grid anchored
 * at (0,0) (the last row/column of patches clipped at the image edge), replaced in raster
 * order by black, cumulatively; for each patch p, I_p = x - x_p, df_p = f_c(x) - f_c(x_p)
 * (raw logits), s_p = sum(Phi * I_p) (Phi broadcast over channels); out[i] =
 * mean_p (df_p - s_p)^2. Lower is better. classes as for egc_metric_curve. */
EGC_NODISCARD egc_status egc_metric_infidelity(egc_evaluator *ev, const float *x,
                                                const float *maps, int n, const int *classes,
                                                const egc_infidelity_options *o, float *out);
/* Infidelity, Gaussian perturbations with optimal scaling (Captum, normalize=True): I_s
 * ~ N(0, sigma^2) per element (Philox, key EGC_METRIC_KEY_GAUSS), df_s = f_c(x) -
 * f_c(x - I_s), s_s = sum(Phi * I_s), beta = E[s df] / E[s^2] (0 when E[s^2] = 0);
 * out[i] = E[(beta s - df)^2]; beta[i] (NULL to skip) gets beta. */
EGC_NODISCARD egc_status egc_metric_infidelity_gaussian(egc_evaluator *ev, const float *x,
                                                         const float *maps, int n,
                                                         const int *classes,
                                                         const egc_infidelity_options *o,
                                                         float *out, float *beta);

/* ---------------------------------------------------------------- robustness (robustness.c) */

typedef struct egc_sensitivity_options {
    float radius;   /* r: delta ~ U(-r, r) per element, normalised units (default 0.2) */
    int samples;    /* n (default 200, Quantus) */
    uint64_t seed;  /* seed of the noise draws (default 0) */
} egc_sensitivity_options;

void egc_sensitivity_options_default(egc_sensitivity_options *o);

typedef struct egc_sensitivity_result {
    float max_sens;   /* max_s ||Phi(x) - Phi(x + d_s)||_F / ||Phi(x)||_F (NaN if none kept) */
    float avg_sens;   /* the mean over the kept samples */
    int kept;         /* samples whose top-1 class stayed the class of x */
    int excluded;     /* samples whose top-1 changed (left out) */
} egc_sensitivity_result;

/* Max- and Avg-Sensitivity of the explainer e for n images x with final maps maps[n,H,W]
 * (from e) and explained classes classes[n] (the top-1 of x: samples whose top-1 differs
 * are excluded and counted). The perturbed inputs x + d_s go through e in calls of up to
 * the explainer's batch images. A sampled method (S samples per map) explains perturbation
 * k of image i under x_i's image id with the sample ids (k+1)S .. (k+2)S - 1
 * (egc_explainer_run_keyed): fresh draws of the same seeded stream (METRICS.md), so at
 * r = 0 the score measures the method's own sampling variance. out[n]. */
EGC_NODISCARD egc_status egc_metric_sensitivity(egc_explainer *e, const float *x,
                                                 const float *maps, const int *classes, int n,
                                                 const egc_sensitivity_options *o,
                                                 egc_sensitivity_result *out);

/* ---------------------------------------------------------------- localisation (localisation.c) */

/* Index of the largest value of map[n] (the first one on ties). */
int egc_map_argmax(const float *map, int n);
/* Pointing game: 1 when the argmax pixel of map[H,W] is inside mask[H,W] (non-zero), or,
 * with tolerance > 0, within Euclidean distance <= tolerance pixels of a mask pixel; else
 * 0. An empty mask gives EGC_E_ARG. */
EGC_NODISCARD egc_status egc_pointing_game(const float *map, const uint8_t *mask, int H, int W,
                                            float tolerance, int *hit);
/* Energy-based pointing game: sum_{mask} L / sum L (NaN when sum L = 0). */
float egc_energy_pointing(const float *map, const uint8_t *mask, int n);
/* Relevance rank accuracy: |top-K pixels of map ∩ mask| / K with K = |mask| (ranking as
 * above). An empty mask gives EGC_E_ARG. */
EGC_NODISCARD egc_status egc_relevance_rank(const float *map, const uint8_t *mask, int n,
                                             float *out);
/* The 2x2 grid of four images x4[4,C,H,W] into out[C,H,W]: image q goes to quadrant q
 * (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right; the top/left quadrants are
 * H/2 x W/2, rounded down), each resized bilinearly with half-pixel centres (for even
 * sizes the average of 2x2 blocks). */
EGC_NODISCARD egc_status egc_grid_compose(const float *x4, int C, int H, int W, float *out);
/* Grid pointing game for quadrant q of map[H,W]: the share of the positive map mass in
 * that quadrant (NaN when there is none). */
float egc_grid_share(const float *map, int H, int W, int q);

/* ---------------------------------------------------------------- complexity (complexity.c) */

/* Gini sparseness of map[n]: a = |L| + 1e-7 sorted ascending, G = sum_i (2i - n - 1) a_i /
 * (n sum a) with i = 1..n. Higher is sparser; a constant map gives 0. */
EGC_NODISCARD egc_status egc_sparseness(const float *map, int n, float *out);
/* Entropy complexity: p = |L| / sum |L|, H = -sum p log(p + 1e-12) (0 for an all-zero map).
 * Lower is simpler. */
float egc_complexity(const float *map, int n);

/* ---------------------------------------------------------------- annotations (boxes.c) */

typedef struct egc_box {
    int cls;            /* class id (YOLO), or -1 when only the name is known (VOC) */
    char name[64];      /* class name ("" when unknown) */
    float x0, y0, x1, y1; /* pixel coordinates in the original image, x0 <= x1, y0 <= y1 */
} egc_box;

typedef struct egc_boxes {
    egc_box *v;
    int n;
    int img_w, img_h;   /* the original image size */
} egc_boxes;

void egc_boxes_free(egc_boxes *b);
/* YOLO label file: one box per line "class cx cy w h", normalised to [0,1], for an image
 * of img_w x img_h pixels; empty lines and '#' comments are skipped. Errors name the file
 * and the line. */
EGC_NODISCARD egc_status egc_boxes_read_yolo(const char *path, int img_w, int img_h,
                                              egc_boxes *out);
/* Pascal VOC annotation XML: <size><width>/<height> and every <object> with <name> and
 * <bndbox> <xmin> <ymin> <xmax> <ymax> (1-based inclusive pixel coordinates, converted to
 * [xmin-1, xmax) ). cls is -1. */
EGC_NODISCARD egc_status egc_boxes_read_voc(const char *path, egc_boxes *out);
/* Rasterises the boxes with keep[i] != 0 (keep NULL: all) to mask[H,W] (1 inside, 0
 * outside) in the model-input geometry of preset p: the box is mapped through the
 * preset's crop and resize (tf: central crop of 87.5% then resize; torchvision: short
 * side resize then centre crop; cifar: resize), and a pixel is inside when its centre is.
 * *count gets the number of mask pixels (may be NULL). */
EGC_NODISCARD egc_status egc_boxes_mask(const egc_boxes *b, const uint8_t *keep, egc_preset p,
                                         int W, int H, uint8_t *mask, int *count);

/* Class names of a YOLO dataset's classes.yaml ("names:" followed by "  N: name" lines,
 * or a "names: [a, b, ...]" list). names[i] is the name of class i (NULL if missing). */
EGC_NODISCARD egc_status egc_class_names_read(const char *path, char ***names, int *n);
void egc_class_names_free(char **names, int n);

/* A class map file: lines "KEY -> I[,I...]" where KEY is a dataset class name (may hold
 * spaces) or id, and each I is a model class index or an inclusive range "A-B";
 * '#' starts a comment; empty lines are skipped. */
typedef struct egc_class_map {
    int n;          /* entries */
    char **key;     /* [n] the KEY as written (trimmed) */
    int *key_id;    /* [n] the dataset class id: the KEY when it is a number, else the index
                       of the KEY in the names given to egc_class_map_read, else -1 */
    int **idx;      /* [n] model class indices */
    int *nidx;      /* [n] */
} egc_class_map;

/* Reads a class map; names (may be NULL) resolves KEY names to ids; indices must be in
 * [0, classes). Errors name the file, the line and the reason. */
EGC_NODISCARD egc_status egc_class_map_read(const char *path, char *const *names, int n_names,
                                             int classes, egc_class_map *out);
void egc_class_map_free(egc_class_map *cm);
/* The entry of a dataset class (by id, or by name when id < 0); -1 when unmapped. */
int egc_class_map_find(const egc_class_map *cm, int id, const char *name);
/* The class to explain for localisation and the boxes that locate it. Among the model
 * classes mapped from the classes of the boxes: the top-1 class of logits[classes] if it
 * is one of them, else the one with the largest logit. keep[b->n] marks the boxes whose
 * class maps to the chosen class. *cls = -1 (keep all 0) when no box class is mapped. */
EGC_NODISCARD egc_status egc_localisation_target(const egc_class_map *cm, const egc_boxes *b,
                                                  const float *logits, int classes, int *cls,
                                                  uint8_t *keep);

#ifdef __cplusplus
}
#endif
#endif

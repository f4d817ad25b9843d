/* metrics_internal.h: what the metric families share inside the library: the evaluator
 * (one forward-only session and its reusable host buffers) with its row stream, pixel
 * ranking and small numeric helpers. Not part of the public API. */
#ifndef EGC_METRICS_INTERNAL_H
#define EGC_METRICS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "egcam/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

struct egc_evaluator {
    egc_session *s;
    int B;              /* rows per forward */
    int C, H, W, hw, classes;
    size_t chw;
    float *xin;         /* [B,chw] the gathered inputs of one forward (egc_eval_stream) */
    float *logits;      /* [B,classes] */
    double *aux;        /* [B] the dot products of one pass of Gaussian rows (host copy) */
    int64_t rows;       /* rows forwarded since creation */
    /* Backend memory of the rows made by the backend (egc_eval_select): the images, maps,
     * ranks of a group of G images (G = the session's rows per pass) and the patch keys. */
    struct egc_backend *be;
    int G;
    float *da, *db;     /* [G,chw] */
    float *dmaps;       /* [G,hw] */
    int32_t *dkey;      /* [G,hw] */
    int32_t *dpkey;     /* [hw] */
    void *rscratch;     /* m_rank_scratch(G, hw) bytes (NULL when 0) */
    uint64_t *dids;     /* [G] image ids of the Gaussian rows */
    double *daux;       /* [G] dot products of one pass of Gaussian rows */
    void *gscratch;     /* m_gauss_scratch(G, chw) bytes (NULL when 0) */
};

/* Fills the input of global row r into dst[chw]. Called from several threads for distinct
 * rows. */
typedef void (*egc_row_fill_fn)(int64_t r, float *dst, void *arg);
/* Consumes the logits[classes] of global row r and the row's number aux (the dot product
 * of a Gaussian row, else 0). Called once per row, in increasing r, on the calling thread. */
typedef void (*egc_row_take_fn)(int64_t r, const float *logits, double aux, void *arg);

/* Streams rows 0..rows-1 through the model: fills up to B rows into the reusable buffer
 * (in parallel), forwards them in one call, then hands each row's logits to take (aux 0).
 * For host rows that must be gathered (the clean images of egc_eval_classes whose class is
 * not given); the perturbed rows of the fidelity metrics are made by the backend instead
 * (egc_eval_select, egc_eval_gauss). */
EGC_NODISCARD egc_status egc_eval_stream(egc_evaluator *ev, int64_t rows, egc_row_fill_fn fill,
                                         egc_row_take_fn take, void *arg);

/* order[n] = the pixel indices of map[n] by decreasing value, ties by ascending index.
 * Allocates its scratch (one call per image, never per batch). */
EGC_NODISCARD egc_status egc_rank_pixels(const float *map, int n, int *order);

/* key[p] = the position of pixel p in egc_rank_pixels' order of map[hw] (the CPU
 * reference of the backend entry m_rank). Allocates its scratch (one call per map). */
EGC_NODISCARD egc_status egc_rank_keys(const float *map, int hw, int32_t *key);

/* Row r of the masked-replacement rows of sp (backend.h, struct egc_select_spec; every
 * pointer host memory) into out[C*hw] (the CPU reference of m_select_rows). */
struct egc_select_spec;
void egc_select_row(const struct egc_select_spec *sp, int64_t r, float *out);
/* EGC_OK when sp, r0 and out make a valid m_select_rows call (pointers set, 1 <= C <= 4,
 * sizes and steps non-negative), else EGC_E_ARG naming `who` (the backend). */
EGC_NODISCARD egc_status egc_select_spec_check(const struct egc_select_spec *sp, int64_t r0,
                                               int n, const void *out, const char *who);

/* Row r of the Gaussian-infidelity rows of sp (backend.h, struct egc_gauss_spec; every
 * pointer host memory) into out[C*hw]; returns the row's dot product aux, summed in
 * increasing j (the CPU reference of m_gauss_rows). */
struct egc_gauss_spec;
double egc_gauss_row(const struct egc_gauss_spec *sp, int64_t r, float *out);
/* EGC_OK when sp, r0, out and aux make a valid m_gauss_rows call (pointers set except the
 * optional sample0, C, hw, rows_per >= 1, sigma > 0), else EGC_E_ARG naming `who`. */
EGC_NODISCARD egc_status egc_gauss_spec_check(const struct egc_gauss_spec *sp, int64_t r0, int n,
                                              const void *out, const double *aux,
                                              const char *who);

/* Streams rows 0..rows-1 of the select spec sp (its arrays in the evaluator's backend
 * memory) through the model: the rows are made by the backend (m_select_rows) straight into
 * the model's input, in passes of the session's rows, and each row's logits go to take (aux
 * 0). The way the fidelity curves and the patch infidelity run. */
EGC_NODISCARD egc_status egc_eval_select(egc_evaluator *ev, const struct egc_select_spec *sp,
                                         int64_t rows, egc_row_take_fn take, void *arg);

/* egc_eval_select for the Gaussian-infidelity rows of sp (its arrays in the evaluator's
 * backend memory): the rows and their dot products made by the backend (m_gauss_rows, with
 * the evaluator's scratch), and each row's logits go to take with the row's dot product as
 * aux. The way the Gaussian infidelity runs. */
EGC_NODISCARD egc_status egc_eval_gauss(egc_evaluator *ev, const struct egc_gauss_spec *sp,
                                        int64_t rows, egc_row_take_fn take, void *arg);

/* Index of the largest logit (first on ties) and the softmax probability of class c,
 * computed in double. */
int egc_top1(const float *logits, int classes);
double egc_softmax_prob(const float *logits, int classes, int c);

/* cls[i] = classes[i] when classes is not NULL and classes[i] >= 0, else the clean top-1
 * of x[i] (one stream of the images through the evaluator when any is needed). Checks
 * the range of given classes. */
EGC_NODISCARD egc_status egc_eval_classes(egc_evaluator *ev, const float *x, int n,
                                          const int *classes, int *cls);

/* Checks the common arguments of a metric call (ev, x, maps non-NULL, n >= 1). */
EGC_NODISCARD egc_status egc_eval_check(const egc_evaluator *ev, const float *x,
                                        const float *maps, int n, const char *what);

#ifdef __cplusplus
}
#endif
#endif

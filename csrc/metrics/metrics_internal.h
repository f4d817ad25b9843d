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
    float *xin;         /* [B,chw] the perturbed inputs of one forward (reused) */
    float *logits;      /* [B,classes] */
    double *aux;        /* [B] one number per row that fill may leave for take */
    int64_t rows;       /* rows forwarded since creation */
};

/* Fills the input of global row r into dst[chw]; may leave one number in *aux. Called
 * from several threads for distinct rows. */
typedef void (*egc_row_fill_fn)(int64_t r, float *dst, double *aux, void *arg);
/* Consumes the logits[classes] of global row r (and the aux number fill left). Called
 * once per row, in increasing r, on the calling thread. */
typedef void (*egc_row_take_fn)(int64_t r, const float *logits, double aux, void *arg);

/* Streams rows 0..rows-1 through the model: fills up to B rows into the reusable buffer
 * (in parallel), forwards them in one call, then hands each row's logits to take. The rows
 * are generated on the host; this is the one place where a backend hook that generates
 * them on the device (and keeps them there) would go. */
EGC_NODISCARD egc_status egc_eval_stream(egc_evaluator *ev, int64_t rows, egc_row_fill_fn fill,
                                         egc_row_take_fn take, void *arg);

/* order[n] = the pixel indices of map[n] by decreasing value, ties by ascending index.
 * Allocates its scratch (one call per image, never per batch). */
EGC_NODISCARD egc_status egc_rank_pixels(const float *map, int n, int *order);

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

/* egcam/tensor.h: shapes and host float32 tensors.
 *
 * Layout is always dense row-major (NCHW for images). A tensor owns its data when it was
 * made by egc_tensor_alloc; egc_tensor_free releases it and leaves an empty tensor. */
#ifndef EGCAM_TENSOR_H
#define EGCAM_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "egcam/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EGC_MAX_DIMS 8

typedef struct egc_shape {
    int ndim;                  /* 0..EGC_MAX_DIMS; 0 is a scalar */
    int64_t d[EGC_MAX_DIMS];   /* d[0] is the outermost dimension */
} egc_shape;

typedef struct egc_tensor {
    egc_shape shape;
    float *data;               /* numel(shape) floats, or NULL for an empty tensor */
} egc_tensor;

/* Number of elements (1 for a scalar). */
int64_t egc_shape_numel(const egc_shape *s);
/* Builds a shape of n dims from the array dims. n must be <= EGC_MAX_DIMS. */
egc_shape egc_shape_make(int n, const int64_t *dims);
/* Non-zero when both shapes have the same dims. */
int egc_shape_equal(const egc_shape *a, const egc_shape *b);
/* Writes "[1,3,224,224]" into buf (always NUL-terminated); returns buf. */
char *egc_shape_str(const egc_shape *s, char *buf, size_t cap);

/* Allocates zeroed storage for shape. On failure t is left empty. */
EGC_NODISCARD egc_status egc_tensor_alloc(egc_tensor *t, const egc_shape *shape);
/* Frees storage made by egc_tensor_alloc; t becomes empty. NULL or empty is a no-op. */
void egc_tensor_free(egc_tensor *t);

#ifdef __cplusplus
}
#endif
#endif

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

/* n images of c channels and hw pixels from channels last, src [n,hw,c], to channels first,
 * dst [n,c,hw] (src and dst do not overlap). */
void egc_channels_first(const float *src, int64_t n, int c, int64_t hw, float *dst);

/* Host memory for the input images of runs on `device` (a device name as the explainer and
 * session take it: "cpu", "cuda", "cuda:N"). For a CUDA device, in a build with the CUDA
 * backend, the memory is page-locked (pinned), so the uploads of egc_explainer_run and
 * egc_session_forward read it at the bus's full speed; otherwise it is ordinary 64-byte
 * aligned memory. Either way *p holds `bytes` (>= 1) bytes, 64-byte aligned, zeroed. When
 * pinning fails (no driver, a locked-memory limit) ordinary memory is returned and the call
 * still succeeds; egc_host_pinned says which. EGC_E_NOMEM (naming the size) when no memory
 * at all; EGC_E_ARG for bytes == 0 or p NULL. Free with egc_host_free. */
EGC_NODISCARD egc_status egc_host_alloc(const char *device, size_t bytes, void **p);
/* Frees memory from egc_host_alloc (p as it returned it); NULL, or any other pointer, is a
 * no-op. */
void egc_host_free(void *p);
/* 1 when p points into a page-locked block of egc_host_alloc, 0 otherwise (any pointer may
 * be asked, NULL included). */
int egc_host_pinned(const void *p);

#ifdef __cplusplus
}
#endif
#endif

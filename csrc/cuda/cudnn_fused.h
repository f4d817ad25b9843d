/* cudnn_fused.h: one fp16 NHWC convolution with its epilogue as a single cuDNN operation
 * graph (the backend descriptor API): y = act(conv(x, w) + bias [+ z]), act = Relu or
 * identity, fp32 accumulation and epilogue, fp16 x, w, bias, z and y. cuDNN's heuristics
 * list the engines that take the graph (on Hopper, its runtime-fusion engines compile one
 * kernel for the convolution and the epilogue); the first whose execution plan builds and
 * fits the workspace cap is kept, leaving out engines whose numerical notes say FFT,
 * reduced-precision accumulation or down-converted inputs (heuristics mode A, then the
 * fallback list; at most 8 plans tried).
 *
 * Used by the CUDA backend's mixed-precision Convs as a third candidate path, next to the
 * convolution + epilogue kernel and cudnnConvolutionBiasActivationForward; the backend checks
 * its result against the kernel path and times it before choosing it (EGC_CUDA_GRAPH_API).
 * Only for csrc/cuda. Statuses are cudnnStatus_t values (0: success); nothing here prints
 * or allocates device memory. */
#ifndef EGC_CUDNN_FUSED_H
#define EGC_CUDNN_FUSED_H

#include <stdint.h>

#include <cudnn.h>

/* The convolution: x [n, c, h, w] stored NHWC, w [k, wc, r, s] stored KRSC with wc = c /
 * groups (cuDNN infers the groups from it; c already padded where the backend pads it), y
 * [n, k, oh, ow] stored NHWC; symmetric pads. */
typedef struct egc_cudnn_fused_geom {
    int64_t n, c, h, w;
    int64_t k, wc, r, s;
    int64_t oh, ow;
    int64_t pad[2], stride[2], dil[2];
    int has_z;  /* adds z [n, k, oh, ow] (NHWC fp16) after the bias */
    int relu;   /* Relu after the additions, else identity */
} egc_cudnn_fused_geom;

typedef struct egc_cudnn_fused {
    cudnnBackendDescriptor_t plan;  /* the execution plan (NULL: none) */
    cudnnBackendDescriptor_t pack;  /* variant pack of ptr[] and ws (NULL: not made yet) */
    const void *ptr[6];             /* x, w, bias, z, y, workspace of the pack */
    int64_t ws_bytes;               /* workspace the plan needs */
    int64_t engine;                 /* cuDNN's global index of the engine (-1: unknown) */
    int engines;                    /* engine configurations the heuristics offered */
    int tried, skipped;             /* plans tried; engines left out for their numerics */
    int last_status;                /* status of the last plan that did not build (0: none) */
    int heur_status;                /* status of the first heuristics mode that failed (0: none) */
    int64_t ws_over;                /* smallest workspace of a plan over the cap (0: none) */
    int status;                     /* cuDNN status of the failure that left plan NULL */
    const char *stage;              /* where that failure happened (a static string) */
} egc_cudnn_fused;

/* Builds f's execution plan for geometry g on handle h: its workspace must be at most
 * ws_cap bytes. Returns 0, or the cuDNN status of the failure (f->stage says where; f->plan
 * stays NULL). f must be zeroed or destroyed before. */
int egc_cudnn_fused_build(cudnnHandle_t h, const egc_cudnn_fused_geom *g, int64_t ws_cap,
                          egc_cudnn_fused *f);

/* Runs f on the handle's stream (z NULL when the geometry has none; ws at least
 * f->ws_bytes, or NULL when that is 0). The variant pack is made at the first run and again
 * when a pointer changes. Returns the cuDNN status. */
int egc_cudnn_fused_run(cudnnHandle_t h, egc_cudnn_fused *f, const void *x, const void *w,
                        const void *bias, const void *z, void *y, void *ws);

/* Releases f's descriptors and zeroes it. */
void egc_cudnn_fused_destroy(egc_cudnn_fused *f);

#endif

/* backend.h: the backend interface, a struct of function pointers.
 *
 * The executor (csrc/model/executor.c) walks the graph for every backend and calls only
 * these functions. Pointers handed to op_forward/op_backward are device pointers obtained
 * from alloc (or offsets inside such a block), holding dense float32 tensors of the given
 * shapes. The CPU backend's device memory is host memory. */
#ifndef EGC_BACKEND_H
#define EGC_BACKEND_H

#include <stddef.h>

#include "core/core.h"
#include "egcam/model.h"
#include "model/ir.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A dense float32 tensor in backend memory. ptr NULL means "absent / not wanted". */
typedef struct egc_view {
    float *ptr;
    egc_shape shape;
} egc_view;

typedef struct egc_backend egc_backend;
struct egc_sample_spec; /* core/philox.h (method entries) */
struct egc_select_spec; /* below (metric entries) */
struct egc_gauss_spec;  /* below (metric entries) */

/* What the executor tells plan_prepare_ex about a plan besides the shapes. */
typedef struct egc_plan_info {
    egc_precision precision;       /* asked precision; a backend may compute fp32 anyway */
    int target;                    /* target value id, -1 for forward only */
    const unsigned char *is_head;  /* [n_nodes] 1: the node depends on the target (runs in
                                      forward_head and backward) */
    const unsigned char *keep;     /* [n_values] 1: the value's fp32 NCHW contents must stay
                                      readable after its producer ran (graph input and output,
                                      target, tensors of head nodes): the backend keeps such
                                      values in the dense fp32 format of this header */
    unsigned char *inplace;        /* [n_nodes], zeroed by the executor: the backend may set
                                      inplace[i] = 1 to ASK that node i's output share the
                                      buffer of its input 0. The executor grants it only when
                                      node i is the last reader of that input, the input is
                                      not kept and both have the same element count; the
                                      backend learns the outcome from the pointers
                                      (in[0].ptr == out->ptr) and must be correct either way. */
    int lean;                      /* egc_plan_opts.lean: keep optional memory to fixed bounds */
    float *const *values;          /* [n_values] each value's buffer in the plan's memory: the
                                      executor fills the array once it has placed the values
                                      (after plan_prepare_ex returns) and keeps it for the
                                      plan's life, so a backend may keep this pointer and read
                                      a value's buffer in any op call (e.g. the residual input
                                      a fused Conv adds); shared values share a buffer */
    unsigned char *half;           /* [n_values], zeroed by the executor: the backend sets
                                      half[v] = 1 for a value it stores in 2-byte elements
                                      (fp16); the executor then reserves numel * 2 bytes for
                                      it instead of numel * 4. Ignored (the value keeps 4-byte
                                      room) for kept values, the graph input and constants. */
} egc_plan_info;

struct egc_backend {
    char name[32];               /* "cpu", "cuda:0" */
    char device_name[128];       /* human-readable device ("CPU, 2 threads", "NVIDIA H100 ...") */
    void *ctx;                   /* backend private state */
    int partial_rows;            /* 1: op calls derive everything from their views, so a plan
                                    may run on its first n rows (egc_plan_set_rows: views
                                    whose first dimension is n instead of the batch); 0: plans
                                    always run whole batches (descriptors made per batch) */

    /* Memory. alloc returns EGC_E_NOMEM with the byte count when it cannot. */
    egc_status (*alloc)(egc_backend *be, size_t bytes, void **out);
    void (*free)(egc_backend *be, void *p);
    /* upload: host src -> backend dst; src may be reused when the call returns (a CUDA
     * backend copies page-locked src, from egc_host_alloc, by DMA and waits for it).
     * download: backend src -> host dst, complete when the call returns. */
    egc_status (*upload)(egc_backend *be, void *dst, const void *src, size_t bytes);
    egc_status (*download)(egc_backend *be, void *dst, const void *src, size_t bytes);
    /* dst[0..n) = value */
    egc_status (*fill)(egc_backend *be, float *dst, float value, int64_t n);
    /* dst[0..n) += src[0..n) */
    egc_status (*accumulate)(egc_backend *be, float *dst, const float *src, int64_t n);

    /* Optional per-plan preparation (algorithm choice, workspaces) for a batch's shapes;
     * *state is handed back to every op call of that plan and to plan_release. */
    egc_status (*plan_prepare)(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                               void **state);
    void (*plan_release)(egc_backend *be, void *state);

    /* Forward of one node: out = op(in). in has n->n_in entries (ptr NULL for omitted
     * optional inputs); constant inputs point at the uploaded constants. */
    egc_status (*op_forward)(egc_backend *be, void *state, const egc_graph *g,
                             const egc_node *n, const egc_view *in, const egc_view *out);
    /* Activation backward of one node: din[i] += d out / d in[i] · dout for every i whose
     * din[i].ptr is non-NULL (ACCUMULATES). in/out are the forward tensors. */
    egc_status (*op_backward)(egc_backend *be, void *state, const egc_graph *g,
                              const egc_node *n, const egc_view *in, const egc_view *out,
                              const egc_view *dout, const egc_view *din);

    egc_status (*sync)(egc_backend *be);
    void (*destroy)(egc_backend *be);

    /* Optional (NULL when the backend does not count): bytes currently allocated through
     * alloc and not yet freed (the CUDA backend counts its cudaMalloc's; library-internal
     * memory of cuDNN/cuBLAS is not included). */
    size_t (*bytes_in_use)(egc_backend *be);

    /* Optional (NULL: plan_prepare is used and precision is fp32): plan_prepare with the
     * plan's precision and value roles. In a mixed-precision plan the buffers of values that
     * are not kept (info->keep) may hold a backend-private format (e.g. fp16 NHWC) between
     * the nodes of the backend; kept values are always dense fp32. */
    egc_status (*plan_prepare_ex)(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                                  const egc_plan_info *info, void **state);
    /* Optional: one line per node on how it runs (precision, layout, algorithm, fusion) and
     * the state of recording, into buf (always NUL-terminated, truncated to cap). */
    void (*plan_describe)(egc_backend *be, void *state, char *buf, size_t cap);
    /* Optional recording of the trunk forward (CUDA graphs): capture_begin starts recording
     * the op calls of the plan (nothing runs while recording); capture_end stops and sets
     * *ok = 1 when a replayable recording was made (0: the reason is kept for
     * plan_describe, and the executor runs the nodes again without recording); replay runs
     * the recording. capture_end must be called after every successful capture_begin. */
    egc_status (*capture_begin)(egc_backend *be, void *state);
    egc_status (*capture_end)(egc_backend *be, void *state, int *ok);
    egc_status (*replay)(egc_backend *be, void *state);

    /* ---- Method-level entries of the explanation methods (csrc/methods/explain.c) ----
     * Every pointer is backend memory unless said otherwise; the calls run in issue order
     * with the ops above (CUDA: asynchronously on the backend's stream). The CPU backend
     * runs the plain-C reference functions of csrc/methods (csrc/cpu/cpu_methods.c), the
     * CUDA backend the kernels of kernels/method_*.cu (csrc/cuda/cuda_methods.c). NULL in a
     * backend that has no method entries. Layouts, row-major: an input image [C,H,W]
     * (chw floats), a target tensor [K,h,w] (khw = K*hw floats), maps [h,w] and [H,W]. */

    /* The scan of n images x [n,chw] (egc_image_scan of core/philox.h per image): ids[i]
     * = the image id (ids NULL: not computed), range[2i], range[2i+1] = the min and max of
     * the values v + 0 (-0 counted as +0; meaningless when bad[i] >= 0), bad[i] = the flat
     * index of the first non-finite value, or -1. ids [n], range [n,2], bad [n]. */
    egc_status (*m_scan)(egc_backend *be, const float *x, int n, int64_t chw, uint64_t *ids,
                         float *range, int64_t *bad);
    /* dst[0..bytes) = src[0..bytes) (both backend memory, not overlapping). */
    egc_status (*m_copy)(egc_backend *be, void *dst, const void *src, size_t bytes);
    /* The sample points of rows r0..r0+n-1 of a group (struct egc_sample_spec of
     * core/philox.h, a host struct whose arrays are backend memory): with d = the row's
     * draws, z[t] = xr + d.alpha (x - xr) + d.sigma * normals(d.noise_seed, d.image_id,
     * d.sample) evaluated as egc_expected_point does, x = x[d.image], xr = base[d.baseline]
     * (rows of chw floats). z [n,chw]. */
    egc_status (*m_perturb)(egc_backend *be, const struct egc_sample_spec *sp, const float *x,
                            const float *base, int64_t r0, int n, int64_t chw, float *z);
    /* Score-CAM's masked inputs of rows r0..r0+n-1 (row r: image i = r / K, channel
     * k = r % K): z[t] = x[i] * mask, mask = egc_scorecam_mask(A[i,k]) (upsampled h x w ->
     * H x W, min-max with eps 1e-8), the same mask on each of the C planes. x [*,C,H,W],
     * A [*,K,h,w], z [n,C,H,W]. */
    egc_status (*m_scorecam_inputs)(egc_backend *be, const float *x, const float *A, int64_t r0,
                                    int n, int K, int h, int w, int C, int H, int W, float *z);
    /* Seeds and values of the target score for n rows of logits [n,classes]. Row t explains
     * class cls[(r0 + t) / per] (int32, one per image). With resolve != 0 (requires r0 = 0,
     * per = 1) a negative cls[t] is first replaced, and written back, by the row's top-1
     * class (the first maximum). softmax == 0: seed[t] = one-hot(c), y[t] = logits[t,c];
     * softmax != 0: seed[t,j] = p_c (delta_cj - p_j), y[t] = p_c (egc_score_seed). seed
     * [n,classes] and y [n] may each be NULL. */
    egc_status (*m_score_seed)(egc_backend *be, const float *logits, int n, int classes,
                               int32_t *cls, int64_t r0, int per, int resolve, int softmax,
                               float *seed, float *y);
    /* Per-image sums over rows r0..r0+n-1 of a group, in row order, of rows of len floats:
     * with i = r / sp->S (and the row's draws d for kind 1),
     *   kind EGC_ACC_SUM:  acc[i] += src[t]                            (egc_expected_accum_a)
     *   kind EGC_ACC_DIFF: acc[i] += (ax[i] - aref[d.baseline]) * src[t] (egc_expected_accum_b)
     * acc, ax [images,len], aref [*,len], src [n,len]; ax and aref are unused by kind SUM. */
    egc_status (*m_accumulate)(egc_backend *be, int kind, const struct egc_sample_spec *sp,
                               int64_t r0, int n, int64_t len, const float *src,
                               const float *ax, const float *aref, float *acc);
    /* v[0..n) = v / S in float (egc_expected_mean). */
    egc_status (*m_mean)(egc_backend *be, float *v, int64_t n, int S);
    /* The raw maps of n images with method EGC_CAM_*: L[i] [hw] from G[i] and A[i] [K,hw]
     * as the functions of csrc/methods compute them (relu applied), the channel weights
     * into wk[i] [K] (written but meaningless for HiResCAM and LayerCAM). For EGC_CAM_SCORECAM
     * G holds the masked scores [n,K] (egc_scorecam_map). */
    egc_status (*m_cam)(egc_backend *be, int method, const float *G, const float *A, int n,
                        int K, int hw, float *wk, float *L);
    /* The final maps of n raw maps: map[i] = minmax(upsample(minmax(L[i]))) as
     * egc_cam_finalize computes it; L [n,h,w] is not modified, map [n,H,W], scratch
     * [n,h,w]. */
    egc_status (*m_finalize)(egc_backend *be, const float *L, int n, int h, int w, float *map,
                             int H, int W, float *scratch);

    /* ---- Metric-level entries (csrc/metrics): the perturbed inputs of the fidelity
     * metrics made where the model runs (CPU: csrc/cpu/cpu_methods.c, CUDA:
     * kernels/metric_*.cu). NULL in a backend without them. */

    /* Bytes of backend scratch m_rank needs for n maps of hw pixels. */
    size_t (*m_rank_scratch)(egc_backend *be, int n, int hw);
    /* key[i*hw + p] = the position of pixel p when map i (maps [n,hw]) is ordered by
     * decreasing value, ties by ascending pixel index, NaN as -infinity, -0 as +0: the
     * inverse of egc_rank_pixels' order. scratch: m_rank_scratch(n, hw) bytes. */
    egc_status (*m_rank)(egc_backend *be, const float *maps, int n, int hw, void *scratch,
                         int32_t *key);
    /* The masked-replacement rows of a group (struct egc_select_spec below): rows
     * r0..r0+n-1 into out [n,C,hw]. */
    egc_status (*m_select_rows)(egc_backend *be, const struct egc_select_spec *sp, int64_t r0,
                                int n, float *out);
    /* Bytes of backend scratch m_gauss_rows needs for n rows of chw values (0: none). */
    size_t (*m_gauss_scratch)(egc_backend *be, int n, int64_t chw);
    /* The Gaussian-infidelity rows of a group (struct egc_gauss_spec below): rows
     * r0..r0+n-1 into out [n,C,hw] and their dot products into aux [n] (doubles, backend
     * memory). scratch: m_gauss_scratch(n, C*hw) bytes (may be NULL when that is 0). */
    egc_status (*m_gauss_rows)(egc_backend *be, const struct egc_gauss_spec *sp, int64_t r0,
                               int n, void *scratch, float *out, double *aux);
};

/* Rows that take each pixel either from image a or from a replacement, by a per-pixel key
 * and a per-row threshold: row r is image i = r / rows_per at step k = r % rows_per,
 * thr = min(k * thr_step, thr_max), and
 *   out[t][c][p] = key[i * key_stride + p] < thr ? (b ? b[i][c][p] : bconst[c]) : a[i][c][p]
 * Deletion: a = x, bconst = 0, key = ranks (m_rank), thr_step = pixels per step; insertion:
 * a = blur(x), b = x; the patch infidelity: a = x, bconst = the black baseline, key = the
 * patch index of each pixel (key_stride 0: one key for every image), thr_step = 1. a, b and
 * key are backend memory; the struct itself is a host value. */
typedef struct egc_select_spec {
    const float *a, *b;         /* [*,C,hw]; b NULL: bconst */
    const int32_t *key;         /* [*,hw] (key_stride hw) or [hw] (key_stride 0) */
    int64_t key_stride;
    int C, hw;                  /* C <= 4 */
    int rows_per;               /* rows per image, >= 1 */
    int64_t thr_step, thr_max;
    float bconst[4];
} egc_select_spec;

/* The perturbed rows of the Gaussian infidelity: row r is image i = r / rows_per at step
 * k = r % rows_per. Step 0 is the clean image: out[t] = x[i], aux[t] = 0. Step k >= 1 is
 * sample s = k - 1 + (sample0 ? sample0[i] : 0): with nrm the standard normals of the key
 * (seed, ids[i], s) (egc_sample_normals of core/philox.h: value j from Philox block
 * 1 + j/4), for every flat index j of the C*hw values
 *   I_j = sigma * nrm[j] (float),  out[t][j] = x[i][j] - I_j (float, no FMA),
 *   aux[t] = sum_j (double)phi[i][j % hw] * (double)I_j (double; the summation order is
 *            the backend's, so aux agrees across backends to rounding, the rows bit for bit).
 * x, phi, ids and sample0 are backend memory; the struct itself is a host value. */
typedef struct egc_gauss_spec {
    const float *x;             /* [*,C,hw] images */
    const float *phi;           /* [*,hw] maps */
    const uint64_t *ids;        /* [*] image ids (egc_image_id) */
    const uint32_t *sample0;    /* [*] first sample id of each image, or NULL: 0 */
    uint64_t seed;              /* the key's seed (the metric's seed ^ EGC_METRIC_KEY_GAUSS) */
    float sigma;                /* > 0 */
    int C, hw;                  /* C >= 1, hw >= 1 */
    int rows_per;               /* rows per image (samples + 1), >= 1 */
} egc_gauss_spec;

/* Kinds of m_accumulate and methods of m_cam. */
enum { EGC_ACC_SUM = 0, EGC_ACC_DIFF = 1 };
enum {
    EGC_CAM_GRADCAM = 0,
    EGC_CAM_GRADCAMPP = 1,
    EGC_CAM_XGRADCAM = 2,
    EGC_CAM_HIRESCAM = 3,
    EGC_CAM_LAYERCAM = 4,
    EGC_CAM_SCORECAM = 5
};

/* Creates a backend by name: "cpu", "cuda" (= "cuda:0") or "cuda:N". A build without CUDA,
 * or a machine without a GPU or driver, gives EGC_E_DEVICE with the reason. */
EGC_NODISCARD egc_status egc_backend_create(const char *name, egc_backend **out);
/* Destroys a backend; NULL is a no-op. */
void egc_backend_destroy(egc_backend *be);

/* Writes one line per available device into buf (always NUL-terminated), e.g.
 * "cpu     CPU (2 threads)\ncuda:0  NVIDIA H100 80GB HBM3 (79.1 GiB, sm_90)\n", or a line
 * saying why CUDA is unavailable (not built in, no driver, no device). */
void egc_backend_list_devices(char *buf, size_t cap);

/* Page-locked host memory of `bytes` bytes for staging the uploads of backend be (free with
 * egc_host_free), or NULL when be's uploads gain nothing from it (the CPU backend) or it
 * cannot be had (the error is cleared: staging is optional). */
void *egc_backend_stage_alloc(const egc_backend *be, size_t bytes);

/* 1 when device names a CUDA device ("cuda", "cuda:N"), else 0 (NULL included). */
int egc_device_is_cuda(const char *device);

/* The CPU backend (always available). */
EGC_NODISCARD egc_status egc_cpu_backend_create(egc_backend **out);
/* The CPU device as people read it ("CPU (2 threads, OpenBLAS Haswell kernels)"): the CPU
 * backend's device_name and `egcam info`'s line. Always NUL-terminated. */
void egc_cpu_device_name(char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif

/* cuda_backend.c: the CUDA backend: device context (stream, cuDNN, cuBLAS), memory,
 * per-plan preparation (cuDNN descriptors, algorithm choice, one workspace) and the forward
 * and activation-backward of every runtime op of model/ir.h.
 *
 * Semantics are those of the CPU reference (csrc/cpu); tensors are dense fp32 NCHW.
 * Convolutions: cuDNN (legacy descriptor API), forward and backward-data, with groups and
 * dilations. cuDNN takes symmetric pads only; a Conv with asymmetric pads (MobileNet's
 * [0,0,1,1]) has its input padded explicitly by kernels/pad.cu into the plan's workspace and
 * is then run with zero padding; its backward-data writes the padded gradient there and the
 * pad kernel's backward adds the interior into dx. Gemm/MatMul: cuBLAS, row-major through
 * the usual transposition (C^T = B^T A^T in column-major). TF32 tensor-core math is allowed
 * by default for both (fp32 storage, fp32 accumulation, 10-bit mantissa products); it can
 * be switched off per backend (egc_cuda_set_tf32, EGC_CUDA_TF32=0). Everything else runs
 * in own kernels (the .cu files of kernels/) that match the CPU loops, including MaxPool's routing of a
 * gradient to the FIRST maximum of a window.
 *
 * Op calls never allocate: the workspace of a plan (padded conv inputs, cuDNN workspace,
 * MaxPool argmax scratch) is sized for its largest node and allocated once in plan_prepare.
 * Forward algorithms: cuDNN's heuristics at plan_prepare, then, at each Conv's first forward
 * of a plan, a timed search (cudnnFindConvolutionForwardAlgorithmEx) within the plan's
 * workspace replaces the choice with the fastest (EGC_CUDA_CONV_FIND=0: heuristics only).
 * Timed choices are kept (the choice memo below, and its cache file across processes): a
 * later plan with the same configuration takes the same choice without timing, so that the
 * same inputs give the same bits in every plan, and every process of the machine.
 *
 * Plans made through plan_prepare_ex add, per plan:
 *  - Mixed precision (EGC_PREC_MIXED): trunk Convs with symmetric pads and constant weights
 *    run in fp16 NHWC through cuDNN (tensor cores, fp32 accumulation; weights converted once,
 *    at the node's first forward, into the plan's fp16 weight buffer), and trunk Relu, Clip,
 *    same-shape Add and MaxPool fed by such nodes run in fp16 NHWC too (kernels/clip_f16.cu,
 *    add_f16.cu, maxpool_nhwc_f16.cu, bias_act_f16.cu).
 *    A value produced by an fp16 node whose readers all run in fp16 and that the executor
 *    does not keep is stored as fp16 NHWC in a buffer of numel * 2 bytes (egc_plan_info.half); every other value
 *    is dense fp32 NCHW, and fp16 nodes convert at those boundaries through workspace
 *    staging buffers (kernels/convert_nchw_to_nhwc_f16.cu, convert_nhwc_f16_to_nchw.cu).
 *    Head nodes (backward) always run fp32.
 *  - Fusion (EGC_CUDA_FUSE=0 switches it off): a Conv (or, in fp16, an Add) whose only
 *    reader is a Relu and whose output the executor does not keep applies the Relu itself:
 *    fp32 Conv+bias+Relu as one cudnnConvolutionBiasActivationForward (falling back to the
 *    convolution, bias and Relu kernels if cuDNN refuses), fp16 through the bias/activation
 *    epilogue kernel. The Relu node then asks to run in place and does nothing when granted
 *    (relu is idempotent, so it simply reapplies it otherwise).
 *    In mixed plans an fp16 Conv with a bias applies bias (+ Relu) in one pass, and a Conv
 *    whose only reader is a residual Add (as its input 0) also adds the Add's other input
 *    (+ the Add's Relu) and makes the Add an identity; each such Conv runs either as
 *    cuDNN's cudnnConvolutionBiasActivationForward (fp16 bias) or as the convolution and the
 *    epilogue kernel (bias_act_f16.cu), chosen at the first forward: the one call only when
 *    cuDNN takes it, it agrees with the kernel path (compare_f16.cu) and it is faster
 *    (EGC_CUDA_HALF_FUSED=0 keeps the kernel path, =1 the one call when it passes the check).
 *    With EGC_CUDA_GRAPH_API=1 a third candidate joins them: the same computation as one cuDNN
 *    operation graph (cudnn_fused.c), checked and timed the same way.
 *    With EGC_CUDA_PAD_C=8 (or 4) an fp16 Conv whose input is staged from fp32 (the model
 *    input) with a channel count that is not a multiple of 8 (RGB) sees its input and weights
 *    zero-padded to the next multiple of 8 (4) by the conversions (unpadded again if cuDNN
 *    refuses the padded shapes), so that tensor-core kernels apply. Off by default: on an
 *    H200, ResNet-50's mixed forward at batch 256 ran 18,546 images/s padded to 8, 18,745 to
 *    4 and 19,860 unpadded (the 7x7 RGB convolution costs more padded than tensor cores save).
 *  - CUDA graphs (EGC_CUDA_GRAPHS=0 switches them off): capture_begin/capture_end record the
 *    trunk's launches on the stream once, replay launches the recording.
 * plan_describe lists what each node got. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/choice_cache.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_methods.h"
#include "cuda/cudnn_fused.h"
#include "egc_kernels.h"

/* Workspace offsets are rounded to this many bytes (cuDNN and vector loads like 256). */
#define WS_ALIGN ((size_t)256)
/* The most workspace one convolution algorithm may ask for. */
#define CONV_WS_CAP ((size_t)1 << 30)
/* The most workspace an algorithm may need to be among those timed by cudnnFind. */
#define FIND_WS_CAP ((size_t)256 << 20)
/* An fp32 Conv with TF32 allowed may raise both caps to the bytes of its own input and output
 * (conv_ws_caps): cuDNN's tensor-core kernels for NCHW fp32 data transpose them into the
 * workspace, so at large batches (VGG16's 224x224x64 layers at batch 256: 3.3 GB a tensor)
 * the fast algorithms need more than the fixed caps allow. EGC_CUDA_WS_DATA=0: fixed caps. */

/* Numeric mode of a plan. */
typedef enum cuda_precision { CUDA_PREC_FP32 = 0, CUDA_PREC_MIXED = 1 } cuda_precision;

/* Storage of a value in its buffer: dense fp32 NCHW, or fp16 NHWC (4-D values of mixed plans). */
enum { VF_F32 = 0, VF_F16 = 1 };

/* No workspace staging buffer. */
#define NO_OFF ((size_t)-1)

typedef struct cuda_ctx {
    int device;
    int64_t dev_tag;         /* the device model with the cuDNN, runtime and driver versions,
                                hashed (device_tag): the device entry of choice-memo keys */
    cudaStream_t stream;
    cudnnHandle_t dnn;
    cublasHandle_t blas;
    int allow_tf32;          /* for plans prepared from now on */
    int conv_find;           /* time forward algorithms (cudnnFind) once per plan; EGC_CUDA_CONV_FIND=0: heuristics only */
    int ws_data;             /* fp32 TF32 Convs may use workspace up to their data's bytes
                                (EGC_CUDA_WS_DATA=0: fixed caps only) */
    int blas_tf32;           /* the math mode cuBLAS is set to now (-1 unknown) */
    int fuse;                /* Conv+bias+Relu fusion in plans (EGC_CUDA_FUSE=0: off) */
    int graphs;              /* CUDA-graph recording of plans (EGC_CUDA_GRAPHS=0: off) */
    int pad_c;               /* fp16 Convs reading a plan input or an fp32 value with C not a
                                multiple of this pad C up to it (EGC_CUDA_PAD_C: 8, 4, or
                                0 = off, the default) */
    int graph_api;           /* fp16 Conv+bias: also try the cuDNN operation graph
                                (EGC_CUDA_GRAPH_API=1; default off) */
    int hf_mode;             /* fp16 Conv+bias paths (EGC_CUDA_HALF_FUSED): -1 timed choice,
                                0 always the epilogue kernel, 1 the one cuDNN call whenever
                                cuDNN takes it and it passes the check */
    void *blas_ws;           /* explicit cuBLAS workspace, set before the first recording */
    /* Live allocations (for bytes_in_use): ptr -> bytes, unordered. */
    struct cu_alloc_rec { void *p; size_t bytes; } *allocs;
    int n_allocs, cap_allocs;
    size_t bytes_live;
} cuda_ctx;

/* Everything a Conv node needs at run time, made once per plan. */
typedef struct conv_plan {
    int ready;
    egc_shape xs, ys;        /* the shapes it was planned for: X [N,C,H,W], Y [N,M,OH,OW] */
    int explicit_pad;        /* asymmetric pads: X is padded into the workspace first */
    egc_shape xps;           /* padded X shape [N,C,H+pt+pb,W+pl+pr] (explicit_pad) */
    size_t pad_bytes;        /* bytes of the padded buffer, WS_ALIGN-rounded (0 otherwise) */
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;     /* forward */
    cudnnConvolutionDescriptor_t cdb;    /* backward-data (its own math type) */
    cudnnConvolutionFwdAlgo_t fwd_algo;
    cudnnConvolutionBwdDataAlgo_t bwd_algo;
    size_t fwd_ws, bwd_ws;
    size_t find_ws;          /* workspace budget of the timed algorithm search (>= fwd_ws) */
    int found;               /* the forward algorithm was chosen by timing (first forward) */
    int bwd_ok;              /* a backward-data algorithm exists for this configuration */
    int half;                /* fp16 NHWC descriptors (mixed plans); forward only */
    int cpad;                /* fp16: input channels as cuDNN sees them (> C: the input and the
                                weights zero-padded to that many, for tensor cores); 0: C */
    size_t ws_off;           /* workspace offset of cuDNN's workspace (after pad/staging) */
    size_t w16_off;          /* offset of the fp16 KRSC weights in the plan's w16 buffer */
    const float *w16_src;    /* the fp32 weights last converted (NULL: not yet) */
    int fused_api;           /* fp32 Conv+bias+Relu through cudnnConvolutionBiasActivationForward */
    int fused_refused;       /* cuDNN refused that call (status kept in fused_status) */
    int fused_status;
    cudnnTensorDescriptor_t bd;          /* bias [1,M,1,1] fp32 (fused_api) or fp16 (hf) */
    cudnnActivationDescriptor_t ad;      /* Relu (fused_api, hf) or identity */
    /* fp16 Conv with a bias (mixed plans): y = act(conv(x) + bias [+ z]) either by cuDNN in
     * one call (cudnnConvolutionBiasActivationForward, fp16 bias) or by the convolution and
     * the epilogue kernel; conv_select_half picks at the first forward (checked, timed). */
    int hf;                  /* candidate */
    int hf_relu;             /* act = Relu (the Conv's, or with zres its Add's) */
    int hf_state;            /* 0: not chosen yet, 1: one cuDNN call, 2: the cuDNN operation
                                graph (gf), -1: separate kernels */
    int hf_status;           /* cuDNN status when the call was refused (0: it was not) */
    float hf_err;            /* max |fused - separate| / max |separate| of the check */
    float hf_ms[2];          /* timed: separate kernels, one call */
    int hf_kept;             /* the path was chosen before: by an earlier plan, or an earlier
                                process (the choice memo and its cache) */
    size_t b16_off;          /* offset of the fp16 bias in the plan's w16 buffer */
    const float *b16_src;    /* the fp32 bias last converted (NULL: not yet) */
    int zres;                /* also adds value zval (its reader Add's input 1), which makes
                                the Add an identity (node_plan.add_passive) */
    int zval;
    int lean;                /* workspace caps fixed (conv_ws_caps): the plan is under a memory
                                cap, or the data-sized workspace did not fit */
    int64_t wc, wr, wsz;     /* filter channels (C / group, before padding), height, width */
    /* the cuDNN operation graph of conv + bias [+ z] [+ Relu] (EGC_CUDA_GRAPH_API=1), the
     * third path (hf_state 2): gf_state 0 not tried, 1 built (and checked, timed), -1 not
     * built, -2 failed to run, -3 differed from the kernel path */
    egc_cudnn_fused gf;
    int gf_state;
    float gf_err, gf_ms;
} conv_plan;

/* Per node of a plan made by plan_prepare_ex. */
typedef struct node_plan {
    int half;                /* runs in fp16 NHWC */
    int relu_fused;          /* Conv/Add: applies the Relu that is its only reader */
    int relu_pass;           /* Relu whose input was produced with the Relu applied */
    int add_passive;         /* fp16 Add whose input-0 Conv already added input 1 (and the
                                Relu): a copy, or nothing when it runs in place */
    size_t in16[2];          /* workspace offsets of fp16 NHWC copies of fp32-stored inputs 0/1 */
    size_t out16;            /* workspace offset of the fp16 output when the output is fp32 */
    size_t stage_end;        /* workspace bytes the staging buffers take */
} node_plan;

typedef struct cuda_plan {
    const egc_graph *g;
    int n_nodes;
    conv_plan *conv;         /* n_nodes entries; ready only for Conv nodes */
    void *ws;                /* one device workspace for the whole plan */
    size_t ws_bytes;
    int tf32;                /* TF32 allowed in this plan's convolutions and GEMMs */
    cuda_precision precision;
    node_plan *np;           /* n_nodes entries */
    unsigned char *vfmt;     /* n_values entries: VF_F32 / VF_F16 */
    int n_values;
    void *w16;               /* fp16 weights of the fp16 convolutions */
    size_t w16_bytes;
    int n_half, n_fused, n_inplace_asked, n_hf, n_zres;
    float *const *values;    /* n_values: the values' buffers (egc_plan_info.values; NULL
                                without plan information) */
    cudaGraphExec_t gexec;   /* the recorded trunk (NULL: none) */
    char graph_note[160];    /* why the last recording failed */
} cuda_plan;

static cuda_ctx *ctx_of(egc_backend *be) { return (cuda_ctx *)be->ctx; }

static size_t align_up(size_t n) { return (n + WS_ALIGN - 1) & ~(WS_ALIGN - 1); }

/* Makes the context's device current for this thread. */
static egc_status use_device(cuda_ctx *c)
{
    EGC_CUDA(cudaSetDevice(c->device));
    return EGC_OK;
}

/* ------------------------------------------------------------------ memory */

static egc_status cu_alloc(egc_backend *be, size_t bytes, void **out)
{
    cuda_ctx *c = ctx_of(be);
    *out = NULL;
    EGC_TRY(use_device(c));
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError(); /* clear the error so later calls do not see it */
        return EGC_FAIL(EGC_E_NOMEM, "%s: out of device memory allocating %zu bytes", be->name,
                        bytes);
    }
    if (e != cudaSuccess)
        return EGC_FAIL(EGC_E_DEVICE, "%s: cudaMalloc(%zu bytes) failed: %s (%s)", be->name, bytes,
                        cudaGetErrorName(e), cudaGetErrorString(e));
    if (c->n_allocs == c->cap_allocs) {
        int cap = c->cap_allocs ? 2 * c->cap_allocs : 16;
        struct cu_alloc_rec *r = realloc(c->allocs, (size_t)cap * sizeof *r);
        if (!r) {
            (void)cudaFree(p);
            return EGC_FAIL(EGC_E_NOMEM, "%s: out of host memory recording an allocation", be->name);
        }
        c->allocs = r;
        c->cap_allocs = cap;
    }
    c->allocs[c->n_allocs].p = p;
    c->allocs[c->n_allocs].bytes = bytes;
    c->n_allocs++;
    c->bytes_live += bytes;
    *out = p;
    return EGC_OK;
}

static void cu_free(egc_backend *be, void *p)
{
    if (!p) return;
    cuda_ctx *c = ctx_of(be);
    for (int i = 0; i < c->n_allocs; i++)
        if (c->allocs[i].p == p) {
            c->bytes_live -= c->allocs[i].bytes;
            c->allocs[i] = c->allocs[--c->n_allocs];
            break;
        }
    if (cudaSetDevice(c->device) == cudaSuccess) (void)cudaFree(p);
}

/* Bytes allocated through cu_alloc and not freed (weights slab, arenas, workspaces). */
static size_t cu_bytes_in_use(egc_backend *be) { return ctx_of(be)->bytes_live; }

static egc_status cu_upload(egc_backend *be, void *dst, const void *src, size_t bytes)
{
    cuda_ctx *c = ctx_of(be);
    if (!bytes) return EGC_OK;
    EGC_TRY(use_device(c));
    /* From pageable memory the call returns once src has been staged: src may be reused.
     * From page-locked memory (egc_host_alloc) the copy is a DMA at the bus's full speed
     * that runs after the call returns, so the stream is waited for before src is handed
     * back. */
    struct cudaPointerAttributes a;
    cudaError_t pe = cudaPointerGetAttributes(&a, src);
    if (pe != cudaSuccess) (void)cudaGetLastError(); /* an unknown pointer is no error here */
    int locked = pe == cudaSuccess &&
                 (a.type == cudaMemoryTypeHost || a.type == cudaMemoryTypeManaged);
    EGC_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
    if (locked) EGC_CUDA(cudaStreamSynchronize(c->stream));
    return EGC_OK;
}

static egc_status cu_download(egc_backend *be, void *dst, const void *src, size_t bytes)
{
    cuda_ctx *c = ctx_of(be);
    if (!bytes) return EGC_OK;
    EGC_TRY(use_device(c));
    EGC_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    EGC_CUDA(cudaStreamSynchronize(c->stream)); /* dst is complete when this returns */
    return EGC_OK;
}

static egc_status cu_fill(egc_backend *be, float *dst, float value, int64_t n)
{
    cuda_ctx *c = ctx_of(be);
    EGC_TRY(use_device(c));
    EGC_KERNEL(egc_k_fill(dst, value, n, c->stream));
    return EGC_OK;
}

static egc_status cu_accumulate(egc_backend *be, float *dst, const float *src, int64_t n)
{
    cuda_ctx *c = ctx_of(be);
    EGC_TRY(use_device(c));
    EGC_KERNEL(egc_k_accumulate(dst, src, 1.0f, n, c->stream));
    return EGC_OK;
}

static egc_status cu_sync(egc_backend *be)
{
    cuda_ctx *c = ctx_of(be);
    EGC_TRY(use_device(c));
    EGC_CUDA(cudaStreamSynchronize(c->stream));
    return EGC_OK;
}

/* ------------------------------------------------------------------ shapes */

static int64_t numel(const egc_shape *s) { return egc_shape_numel(s); }

/* Product of dims [from, to). */
static int64_t dims_prod(const egc_shape *s, int from, int to)
{
    int64_t p = 1;
    for (int k = from; k < to; k++) p *= s->d[k];
    return p;
}

/* Dense row-major strides of s. */
static void dense_strides(const egc_shape *s, int64_t *st)
{
    int64_t acc = 1;
    for (int k = s->ndim - 1; k >= 0; k--) {
        st[k] = acc;
        acc *= s->d[k];
    }
}

/* s right-aligned to rank n (leading 1s). */
static void right_align(const egc_shape *s, int n, int64_t *out)
{
    for (int k = 0; k < n; k++) {
        int src = s->ndim - n + k;
        out[k] = src >= 0 ? s->d[src] : 1;
    }
}

static egc_status expect_rank(const egc_node *n, const egc_view *v, const char *what, int rank)
{
    if (v->shape.ndim != rank) {
        char sb[96];
        return EGC_FAIL(EGC_E_SHAPE, "node %s (%s): %s must be %d-D, got %s", n->name,
                        egc_op_name(n->op), what, rank, egc_shape_str(&v->shape, sb, sizeof sb));
    }
    return EGC_OK;
}

static egc_status expect_numel(const egc_node *n, const egc_shape *got, int64_t want,
                               const char *what)
{
    if (numel(got) != want) {
        char sb[96];
        return EGC_FAIL(EGC_E_SHAPE, "node %s (%s): %s has shape %s, expected %lld elements",
                        n->name, egc_op_name(n->op), what, egc_shape_str(got, sb, sizeof sb),
                        (long long)want);
    }
    return EGC_OK;
}

static egc_status expect_int(const egc_node *n, int64_t v, const char *what)
{
    if (v < 0 || v > 0x7fffffff)
        return EGC_FAIL(EGC_E_UNSUPPORTED,
                        "node %s (%s): %s = %lld exceeds the 32-bit sizes of cuDNN/cuBLAS "
                        "(split the batch)",
                        n->name, egc_op_name(n->op), what, (long long)v);
    return EGC_OK;
}

/* Non-negative axis of a rank-r tensor. */
static egc_status norm_axis(const egc_node *n, int axis, int r, int *out)
{
    int a = axis < 0 ? axis + r : axis;
    if (a < 0 || a >= (r ? r : 1))
        return EGC_FAIL(EGC_E_SHAPE, "node %s (%s): axis %d out of range for rank %d", n->name,
                        egc_op_name(n->op), axis, r);
    *out = a;
    return EGC_OK;
}

/* ------------------------------------------------------------------ plan */

static void conv_plan_clear(conv_plan *cp)
{
    egc_cudnn_fused_destroy(&cp->gf);
    if (cp->xd) (void)cudnnDestroyTensorDescriptor(cp->xd);
    if (cp->yd) (void)cudnnDestroyTensorDescriptor(cp->yd);
    if (cp->wd) (void)cudnnDestroyFilterDescriptor(cp->wd);
    if (cp->cd) (void)cudnnDestroyConvolutionDescriptor(cp->cd);
    if (cp->cdb) (void)cudnnDestroyConvolutionDescriptor(cp->cdb);
    if (cp->bd) (void)cudnnDestroyTensorDescriptor(cp->bd);
    if (cp->ad) (void)cudnnDestroyActivationDescriptor(cp->ad);
    memset(cp, 0, sizeof *cp);
}

static void cu_plan_release(egc_backend *be, void *state)
{
    cuda_plan *pl = (cuda_plan *)state;
    if (!pl) return;
    cuda_ctx *c = ctx_of(be);
    if (cudaSetDevice(c->device) == cudaSuccess) (void)cudaStreamSynchronize(c->stream);
    if (pl->conv)
        for (int i = 0; i < pl->n_nodes; i++) conv_plan_clear(&pl->conv[i]);
    free(pl->conv);
    free(pl->np);
    free(pl->vfmt);
    if (pl->gexec) (void)cudaGraphExecDestroy(pl->gexec);
    cu_free(be, pl->w16);
    cu_free(be, pl->ws);
    free(pl);
}

/* ---- the choice memo ----
 * What was chosen by timing (a Conv's forward algorithm found by cudnnFind, the path of an
 * fp16 Conv+bias), by configuration: every input of the choice (the device model with the
 * cuDNN, runtime and driver versions, shapes, convolution parameters, precision, the
 * workspace it could use, the knobs that change the candidates) in a key of MEMO_KEY
 * integers. Timing differs from run to run; kept choices make two plans of one configuration
 * run the same kernels, so a process gives the same bits for the same inputs whatever plan
 * runs them. The choices are also kept across processes in the choice cache
 * (core/choice_cache.h: cuda_choices.bin in the cache folder, read at the first look into the
 * memo, each new choice appended), so a later process on the machine makes the same choices
 * untimed: the same bits there too, and a shorter first batch (EGC_CUDA_CACHE=0: this
 * process only; EGC_CUDA_MEMO=0: not even that; EGC_CUDA_CONV_FIND=0 and EGC_CUDA_HALF_FUSED=0
 * choose without timing at all).
 * Shared by all CUDA backends of the process (a mutex guards it); at most MEMO_CAP entries,
 * later configurations are timed each time. Of the cache file only the records of this
 * process's device (key[1], the device tag of the first look) are read, and at most
 * MEMO_FILE_CAP of them (the newest), so the process keeps room for its own choices. */
#define MEMO_KEY 28
#define MEMO_VAL 3
#define MEMO_CAP 4096
#define MEMO_FILE_CAP 3072
enum { MEMO_CONV_ALGO = 1, MEMO_HALF_PATH = 2 };
_Static_assert(MEMO_KEY == EGC_CHOICE_KEY && MEMO_VAL == EGC_CHOICE_VAL,
               "the choice cache's records hold memo entries");
typedef egc_choice memo_entry;
static memo_entry g_memo[MEMO_CAP];
static int g_memo_n;
static int g_memo_file;     /* 0: the cache not looked for yet; 1: g_memo_path; -1: none */
static char g_memo_path[1024];
static pthread_mutex_t g_memo_mu = PTHREAD_MUTEX_INITIALIZER;

/* The index of key's entry, or g_memo_n when it has none (the caller holds g_memo_mu). */
static int memo_find(const int64_t *key)
{
    int i = 0;
    while (i < g_memo_n && memcmp(g_memo[i].key, key, sizeof g_memo[i].key)) i++;
    return i;
}

/* Whether a cached entry holds a choice this code can make: a forward algorithm (or -1,
 * none usable) with a math type cuDNN has and a workspace size, or an fp16 epilogue path
 * (-1, 1 or 2); a file edited by hand cannot hand cuDNN anything else. */
static int memo_valid(const memo_entry *m)
{
    const int64_t *v = m->val;
    if (m->key[0] == MEMO_CONV_ALGO)
        return v[0] == -1 || (v[0] >= 0 && v[0] < CUDNN_CONVOLUTION_FWD_ALGO_COUNT &&
                              (v[1] == CUDNN_DEFAULT_MATH || v[1] == CUDNN_TENSOR_OP_MATH ||
                               v[1] == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION ||
                               v[1] == CUDNN_FMA_MATH) &&
                              v[2] >= 0);
    if (m->key[0] == MEMO_HALF_PATH) return v[0] == -1 || v[0] == 1 || v[0] == 2;
    return 0;
}

/* The choice cache's entries of device tag `tag` into the memo, at the first call of the
 * process (the caller holds g_memo_mu): the newest MEMO_FILE_CAP of them (a newer record of a
 * key is the one kept). A cache that cannot be had or read leaves the memo as it is. */
static void memo_load_locked(int64_t tag)
{
    if (g_memo_file) return;
    g_memo_file = egc_choice_cache_path("cuda_choices.bin", g_memo_path, sizeof g_memo_path) ? 1
                                                                                               : -1;
    if (g_memo_file < 0) return;
    memo_entry *got = NULL;
    const int n = egc_choice_cache_load_all(g_memo_path, &got);
    for (int i = n - 1; i >= 0 && g_memo_n < MEMO_FILE_CAP; i--)
        if (got[i].key[1] == tag && memo_valid(&got[i]) && memo_find(got[i].key) == g_memo_n)
            g_memo[g_memo_n++] = got[i];
    free(got);
}

/* EGC_CUDA_MEMO=0: no choice is looked up or kept, in the process or in the cache file
 * (every configuration timed again; tests that read how a choice was made use it). */
static int memo_off(void)
{
    const char *e = getenv("EGC_CUDA_MEMO");
    return e && e[0] == '0';
}

/* 1 and val[] set when key was kept, else 0. */
static int memo_get(const int64_t *key, int64_t *val)
{
    if (memo_off()) return 0;
    pthread_mutex_lock(&g_memo_mu);
    memo_load_locked(key[1]);
    int i = memo_find(key), hit = i < g_memo_n;
    if (hit) memcpy(val, g_memo[i].val, sizeof g_memo[i].val);
    pthread_mutex_unlock(&g_memo_mu);
    return hit;
}

/* Keeps val for key (the first value kept for a key stays; nothing when the memo is full),
 * and appends a new entry to the choice cache (best effort: a cache that cannot be written is
 * no error). */
static void memo_put(const int64_t *key, const int64_t *val)
{
    if (memo_off()) return;
    pthread_mutex_lock(&g_memo_mu);
    memo_load_locked(key[1]);
    int i = memo_find(key);
    if (i == g_memo_n && g_memo_n < MEMO_CAP) {
        memcpy(g_memo[i].key, key, sizeof g_memo[i].key);
        memcpy(g_memo[i].val, val, sizeof g_memo[i].val);
        g_memo_n++;
        if (g_memo_file == 1) (void)egc_choice_cache_append(g_memo_path, &g_memo[i]);
    }
    pthread_mutex_unlock(&g_memo_mu);
}

/* Whether an algorithm's math type keeps fp32 semantics: plain FMA always; tensor ops (TF32
 * for fp32 data) only where allowed; never ALLOW_CONVERSION (fp32 down-converted to fp16). */
static int math_ok(cudnnMathType_t m, int tf32)
{
    if (m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return 0;
    if (m == CUDNN_TENSOR_OP_MATH) return tf32;
    return 1;
}

/* The workspace caps of the forward algorithm of Conv cp: *cap for the heuristic choice,
 * *find_cap for the candidates of the timed search. Fixed (CONV_WS_CAP, FIND_WS_CAP), except
 * that an fp32 Conv with TF32 allowed raises both to the bytes of its (padded) input and its
 * output when c->ws_data is set, cp->lean is not, and those are larger (see CONV_WS_CAP). */
static void conv_ws_caps(const cuda_ctx *c, const conv_plan *cp, int tf32, size_t *cap,
                         size_t *find_cap)
{
    *cap = CONV_WS_CAP;
    *find_cap = FIND_WS_CAP;
    if (cp->half || !tf32 || !c->ws_data || cp->lean) return;
    const egc_shape *xin = cp->explicit_pad ? &cp->xps : &cp->xs;
    size_t data = ((size_t)numel(xin) + (size_t)numel(&cp->ys)) * sizeof(float);
    *cap = EGC_MAX(*cap, data);
    *find_cap = EGC_MAX(*find_cap, data);
}

/* Picks the first forward algorithm of cuDNN's heuristics that runs in the cap. */
static egc_status choose_fwd(cuda_ctx *c, const egc_node *n, conv_plan *cp, int tf32)
{
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    size_t cap, find_cap;
    conv_ws_caps(c, cp, tf32, &cap, &find_cap);
    EGC_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(c->dnn, cp->xd, cp->wd, cp->cd, cp->yd,
                                                     CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
    for (int i = 0; i < got; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > cap) continue;
        if (!math_ok(perf[i].mathType, tf32)) continue;
        cp->fwd_algo = perf[i].algo;
        EGC_CUDNN(cudnnSetConvolutionMathType(cp->cd, perf[i].mathType));
        EGC_CUDNN(cudnnGetConvolutionForwardWorkspaceSize(c->dnn, cp->xd, cp->wd, cp->cd, cp->yd,
                                                          cp->fwd_algo, &cp->fwd_ws));
        /* Budget for the timed search: the largest usable candidate up to find_cap. */
        cp->find_ws = cp->fwd_ws;
        for (int j = 0; j < got; j++)
            if (perf[j].status == CUDNN_STATUS_SUCCESS && perf[j].memory <= find_cap &&
                math_ok(perf[j].mathType, tf32))
                cp->find_ws = EGC_MAX(cp->find_ws, perf[j].memory);
        return EGC_OK;
    }
    return EGC_FAIL(EGC_E_UNSUPPORTED,
                    "node %s (Conv): cuDNN offers no forward algorithm for this configuration",
                    n->name);
}

/* Picks the first DETERMINISTIC backward-data algorithm of the heuristics in the cap;
 * bwd_ok stays 0 when there is none (the node then fails only if run backward). */
static egc_status choose_bwd(cuda_ctx *c, conv_plan *cp, int tf32)
{
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int got = 0;
    EGC_CUDNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        c->dnn, cp->wd, cp->yd, cp->cdb, cp->xd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf));
    for (int i = 0; i < got; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > CONV_WS_CAP) continue;
        if (perf[i].determinism != CUDNN_DETERMINISTIC) continue;
        if (!math_ok(perf[i].mathType, tf32)) continue;
        cp->bwd_algo = perf[i].algo;
        EGC_CUDNN(cudnnSetConvolutionMathType(cp->cdb, perf[i].mathType));
        EGC_CUDNN(cudnnGetConvolutionBackwardDataWorkspaceSize(c->dnn, cp->wd, cp->yd, cp->cdb,
                                                               cp->xd, cp->bwd_algo, &cp->bwd_ws));
        cp->bwd_ok = 1;
        return EGC_OK;
    }
    cp->bwd_ok = 0;
    return EGC_OK;
}

/* Descriptors and algorithms of one Conv node for the plan's shapes. */
/* half: fp16 NHWC data with fp32 accumulation on tensor cores, forward only (symmetric pads
 * only: the caller checks). */
static egc_status conv_prepare(cuda_ctx *c, const egc_graph *g, const egc_node *n,
                               const egc_shape *shapes, int tf32, int half, conv_plan *cp)
{
    const egc_conv_params *p = &n->p.conv;
    if (n->n_in < 2 || n->in[0] < 0 || n->in[1] < 0 || n->in[0] >= g->n_values ||
        n->in[1] >= g->n_values || n->out < 0 || n->out >= g->n_values)
        return EGC_FAIL(EGC_E_INTERNAL, "node %s (Conv): bad input/output value ids", n->name);
    const egc_shape *xs = &shapes[n->in[0]], *ws = &shapes[n->in[1]], *ys = &shapes[n->out];
    char sb[96];
    if (xs->ndim != 4 || ws->ndim != 4 || ys->ndim != 4)
        return EGC_FAIL(EGC_E_UNSUPPORTED, "node %s (Conv): only 2-D convolutions (X %s)", n->name,
                        egc_shape_str(xs, sb, sizeof sb));
    int group = p->group > 0 ? p->group : 1;
    if (p->pt < 0 || p->pb < 0 || p->pl < 0 || p->pr < 0)
        return EGC_FAIL(EGC_E_UNSUPPORTED, "node %s (Conv): negative pads", n->name);
    cp->xs = *xs;
    cp->ys = *ys;
    cp->wc = ws->d[1];
    cp->wr = ws->d[2];
    cp->wsz = ws->d[3];
    cp->explicit_pad = p->pt != p->pb || p->pl != p->pr;
    cp->half = half;
    if (half && cp->explicit_pad)
        return EGC_FAIL(EGC_E_UNSUPPORTED, "node %s (Conv): fp16 path needs symmetric pads",
                        n->name);
    int ph = p->pt, pw = p->pl;
    egc_shape xin = *xs;
    if (cp->explicit_pad) {
        xin.d[2] += p->pt + p->pb;
        xin.d[3] += p->pl + p->pr;
        cp->xps = xin;
        cp->pad_bytes = align_up((size_t)numel(&xin) * sizeof(float));
        ph = pw = 0;
    }
    EGC_TRY(expect_int(n, numel(&xin), "the (padded) input's element count"));
    EGC_TRY(expect_int(n, numel(ys), "the output's element count"));
    EGC_CUDNN(cudnnCreateTensorDescriptor(&cp->xd));
    EGC_CUDNN(cudnnCreateTensorDescriptor(&cp->yd));
    EGC_CUDNN(cudnnCreateFilterDescriptor(&cp->wd));
    EGC_CUDNN(cudnnCreateConvolutionDescriptor(&cp->cd));
    EGC_CUDNN(cudnnCreateConvolutionDescriptor(&cp->cdb));
    const cudnnTensorFormat_t fmt = half ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    const cudnnDataType_t dt = half ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    /* padded input channels (fp16, one group, cp->cpad set by the caller): zero channels
     * with zero weights add nothing to the sums */
    int64_t cx = xin.d[1], cw = ws->d[1];
    if (!half || group != 1 || cp->cpad <= cx || cw != cx) cp->cpad = 0;
    else cx = cw = cp->cpad;
    EGC_CUDNN(cudnnSetTensor4dDescriptor(cp->xd, fmt, dt, (int)xin.d[0], (int)cx,
                                         (int)xin.d[2], (int)xin.d[3]));
    EGC_CUDNN(cudnnSetTensor4dDescriptor(cp->yd, fmt, dt, (int)ys->d[0], (int)ys->d[1],
                                         (int)ys->d[2], (int)ys->d[3]));
    EGC_CUDNN(cudnnSetFilter4dDescriptor(cp->wd, dt, fmt, (int)ws->d[0], (int)cw,
                                         (int)ws->d[2], (int)ws->d[3]));
    cudnnMathType_t math = half ? CUDNN_TENSOR_OP_MATH : tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    cudnnConvolutionDescriptor_t cds[2] = {cp->cd, cp->cdb};
    for (int i = 0; i < 2; i++) {
        EGC_CUDNN(cudnnSetConvolution2dDescriptor(cds[i], ph, pw, p->sh > 0 ? p->sh : 1,
                                                  p->sw > 0 ? p->sw : 1, p->dh > 0 ? p->dh : 1,
                                                  p->dw > 0 ? p->dw : 1, CUDNN_CROSS_CORRELATION,
                                                  CUDNN_DATA_FLOAT));
        EGC_CUDNN(cudnnSetConvolutionGroupCount(cds[i], group));
        EGC_CUDNN(cudnnSetConvolutionMathType(cds[i], math));
    }
    int on, oc, oh, ow;
    EGC_CUDNN(cudnnGetConvolution2dForwardOutputDim(cp->cd, cp->xd, cp->wd, &on, &oc, &oh, &ow));
    if (on != ys->d[0] || oc != ys->d[1] || oh != ys->d[2] || ow != ys->d[3]) {
        char sy[96];
        return EGC_FAIL(EGC_E_SHAPE,
                        "node %s (Conv): output shape %s disagrees with cuDNN's [%d,%d,%d,%d] for "
                        "input %s",
                        n->name, egc_shape_str(ys, sy, sizeof sy), on, oc, oh, ow,
                        egc_shape_str(xs, sb, sizeof sb));
    }
    EGC_TRY(choose_fwd(c, n, cp, half ? 1 : tf32));
    if (!half) EGC_TRY(choose_bwd(c, cp, tf32));
    cp->ws_off = cp->pad_bytes;
    cp->found = !c->conv_find;
    cp->ready = 1;
    return EGC_OK;
}

#define HF_CHECK_ELEMS ((int64_t)1 << 20) /* values of y compared by the check */
/* conv_plan.hf_status values that are not cuDNN statuses (those are >= 0) */
#define HF_IDENTITY_ALGO (-1) /* identity activation with an algorithm cuDNN refuses it for */
#define HF_NO_SCRATCH (-2)    /* the workspace had no room for the check */
#define HF_TOL 1e-2f          /* max |fused - separate| / max |separate| */
#define HF_REPS 3             /* timed runs of each path */

/* Bytes of the fused-path check of an fp16 Conv with output shape ys (conv_select_half):
 * the kernel path's first values and the two result floats. */
static size_t hf_scratch_bytes(const egc_shape *ys)
{
    int64_t ne = numel(ys), m = ne < HF_CHECK_ELEMS ? ne : HF_CHECK_ELEMS;
    return align_up((size_t)m * 2) + align_up(2 * sizeof(float));
}

/* Workspace offset of that check: after cuDNN's workspace as large as the plan reserved it
 * (the search budget) or as the chosen algorithm needs, whichever is larger. */
static size_t hf_scratch_off(const conv_plan *cp)
{
    return cp->ws_off + align_up(EGC_MAX(cp->fwd_ws, cp->find_ws));
}

/* Workspace bytes node n needs at the plan's shapes (staging buffers of fp16 nodes first,
 * then the padded input or cuDNN's workspace of a Conv at cp->ws_off; an fp16 Conv+bias
 * adds the scratch of its path check before its first forward). */
static size_t node_ws_need(const egc_node *n, const egc_shape *shapes, const conv_plan *cp,
                           const node_plan *np)
{
    switch (n->op) {
    case EGC_OP_CONV:
    {
        size_t need = cp->ws_off + align_up(EGC_MAX(EGC_MAX(cp->fwd_ws, cp->found ? 0 : cp->find_ws),
                                                    cp->bwd_ok ? cp->bwd_ws : 0));
        /* the path is still to choose (found may be set already: EGC_CUDA_CONV_FIND=0) */
        if (cp->hf && cp->hf_state == 0)
            need = EGC_MAX(need, hf_scratch_off(cp) + hf_scratch_bytes(&shapes[n->out]));
        return need;
    }
    case EGC_OP_MAXPOOL: /* argmax scratch of the backward (fp32), staging (fp16) */
        return EGC_MAX(np ? np->stage_end : 0,
                       align_up((size_t)numel(&shapes[n->out]) * sizeof(int32_t)));
    default:
        return np ? np->stage_end : 0;
    }
}

/* Whether node i may run in fp16 NHWC in a mixed plan (besides Convs, decided first): a trunk
 * Relu, Clip, MaxPool or same-shape Add whose activation inputs all come from fp16 nodes. */
static int half_capable(const egc_graph *g, const egc_shape *shapes, const node_plan *np, int i)
{
    const egc_node *n = &g->nodes[i];
    int nin;
    switch (n->op) {
    case EGC_OP_RELU: case EGC_OP_CLIP: case EGC_OP_MAXPOOL: nin = 1; break;
    case EGC_OP_ADD: nin = 2; break;
    default: return 0;
    }
    if (n->n_in < nin || shapes[n->out].ndim != 4) return 0;
    for (int j = 0; j < nin; j++) {
        int v = n->in[j];
        if (v < 0 || v >= g->n_values || g->values[v].is_const) return 0;
        int pr = g->values[v].producer;
        if (pr < 0 || pr >= g->n_nodes || !np[pr].half) return 0;
        if (n->op == EGC_OP_ADD && !egc_shape_equal(&shapes[v], &shapes[n->out])) return 0;
    }
    return 1;
}

/* Whether every reader of v runs in fp16 and reads v as an activation (Conv: input 0). */
static int readers_all_half(const egc_graph *g, const node_plan *np, int v)
{
    int any = 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) {
            if (g->nodes[i].in[j] != v) continue;
            if (!np[i].half) return 0;
            if (g->nodes[i].op == EGC_OP_CONV && j != 0) return 0;
            any = 1;
        }
    return any;
}

/* Whether value v will be stored fp32 whatever the plan decides: the graph input, or made
 * by a node that never runs in fp16 (fp16 Convs' inputs staged from it can be padded). */
static int input_fp32(const egc_graph *g, int v)
{
    if (v < 0 || v >= g->n_values) return 0;
    int pr = g->values[v].producer;
    if (v == g->input || pr < 0 || pr >= g->n_nodes) return 1;
    switch (g->nodes[pr].op) {
    case EGC_OP_CONV: case EGC_OP_RELU: case EGC_OP_CLIP: case EGC_OP_MAXPOOL: case EGC_OP_ADD:
        return 0;
    default: return 1;
    }
}

static int env_off(const char *name)
{
    const char *v = getenv(name);
    return v && (strcmp(v, "0") == 0 || strcmp(v, "off") == 0 || strcmp(v, "OFF") == 0);
}

/* cuBLAS's workspace for recorded GEMMs (so that no allocation can happen while recording). */
#define BLAS_WS_BYTES ((size_t)32 << 20)

/* Gives cuBLAS an explicit workspace once per backend (before any recording). */
static egc_status blas_workspace(egc_backend *be)
{
    cuda_ctx *c = ctx_of(be);
    if (c->blas_ws) return EGC_OK;
    EGC_TRY(cu_alloc(be, BLAS_WS_BYTES, &c->blas_ws));
    cublasStatus_t bs = cublasSetWorkspace(c->blas, c->blas_ws, BLAS_WS_BYTES);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        cu_free(be, c->blas_ws);
        c->blas_ws = NULL;
        return EGC_FAIL(EGC_E_DEVICE, "cublasSetWorkspace failed: cuBLAS status %d (%s)", (int)bs,
                        cublasGetStatusString(bs));
    }
    return EGC_OK;
}

/* The bias [1,M,1,1] (format fmt, type dt) and activation (Relu, or identity) descriptors
 * of cudnnConvolutionBiasActivationForward for Conv plan cp. */
static egc_status bias_act_descs(conv_plan *cp, cudnnTensorFormat_t fmt, cudnnDataType_t dt,
                                 int64_t M, int relu)
{
    EGC_CUDNN(cudnnCreateTensorDescriptor(&cp->bd));
    EGC_CUDNN(cudnnSetTensor4dDescriptor(cp->bd, fmt, dt, 1, (int)M, 1, 1));
    EGC_CUDNN(cudnnCreateActivationDescriptor(&cp->ad));
    EGC_CUDNN(cudnnSetActivationDescriptor(cp->ad, relu ? CUDNN_ACTIVATION_RELU
                                                        : CUDNN_ACTIVATION_IDENTITY,
                                           CUDNN_NOT_PROPAGATE_NAN, 0.0));
    return EGC_OK;
}

/* Mixed precision, fusion and staging for a plan with executor information (info non-NULL). */
static egc_status plan_layout(cuda_ctx *c, cuda_plan *pl, const egc_graph *g,
                              const egc_shape *shapes, const egc_plan_info *info)
{
    const int nn = g->n_nodes, nv = g->n_values;
    const int mixed = pl->precision == CUDA_PREC_MIXED;
    /* 1. fp16 Convs: trunk, 2-D, symmetric pads, constant weights (and bias). */
    for (int i = 0; i < nn && mixed; i++) {
        const egc_node *n = &g->nodes[i];
        if (n->op != EGC_OP_CONV || info->is_head[i]) continue;
        const egc_conv_params *p = &n->p.conv;
        if (p->pt != p->pb || p->pl != p->pr) continue;
        if (n->n_in < 2 || n->in[1] < 0 || !g->values[n->in[1]].is_const) continue;
        if (n->n_in > 2 && n->in[2] >= 0 && !g->values[n->in[2]].is_const) continue;
        if (shapes[n->in[0]].ndim != 4 || shapes[n->in[1]].ndim != 4) continue;
        conv_plan trial;
        memset(&trial, 0, sizeof trial);
        int64_t cin = shapes[n->in[0]].d[1];
        if (c->pad_c > 1 && cin % c->pad_c != 0 && input_fp32(g, n->in[0]))
            trial.cpad = (int)((cin + c->pad_c - 1) / c->pad_c * c->pad_c);
        egc_status ts = conv_prepare(c, g, n, shapes, 1, 1, &trial);
        if (ts != EGC_OK && trial.cpad) { /* padded refused: unpadded */
            conv_plan_clear(&trial);
            memset(&trial, 0, sizeof trial);
            ts = conv_prepare(c, g, n, shapes, 1, 1, &trial);
        }
        if (ts == EGC_OK) {
            conv_plan_clear(&pl->conv[i]);
            pl->conv[i] = trial;
            pl->np[i].half = 1;
        } else {
            conv_plan_clear(&trial); /* stays fp32 (plan_describe says so) */
        }
    }
    /* 2. fp16 elementwise/pooling nodes fed by fp16 nodes (topological order). */
    for (int i = 0; i < nn && mixed; i++)
        if (!info->is_head[i] && g->nodes[i].op != EGC_OP_CONV && half_capable(g, shapes, pl->np, i))
            pl->np[i].half = 1;
    /* 3. Storage: fp16 when produced by an fp16 node, read only by fp16 nodes and not kept. */
    for (int v = 0; v < nv; v++) {
        int pr = g->values[v].producer;
        pl->vfmt[v] = VF_F32;
        if (!mixed || g->values[v].is_const || info->keep[v] || v == g->input || v == g->output ||
            v == info->target || pr < 0 || pr >= nn || !pl->np[pr].half || shapes[v].ndim != 4)
            continue;
        if (readers_all_half(g, pl->np, v)) pl->vfmt[v] = VF_F16;
        if (pl->vfmt[v] == VF_F16 && info->half) info->half[v] = 1; /* numel * 2 bytes */
    }
    /* 4. Fusion: Conv (fp32 or fp16) or fp16 Add whose only reader is a Relu, not kept. */
    for (int i = 0; i < nn && c->fuse; i++) {
        const egc_node *n = &g->nodes[i];
        if (n->op != EGC_OP_CONV && !(n->op == EGC_OP_ADD && pl->np[i].half)) continue;
        if (n->op == EGC_OP_CONV && !pl->conv[i].ready) continue;
        int v = n->out, r = -1;
        if (info->keep[v] || v == info->target || v == g->output) continue;
        if (egc_graph_readers(g, v, &r) != 1 || r < 0 || g->nodes[r].op != EGC_OP_RELU) continue;
        if (pl->np[r].half != pl->np[i].half) continue;
        pl->np[i].relu_fused = 1;
        pl->np[r].relu_pass = 1;
        pl->n_fused++;
        if (pl->vfmt[v] == pl->vfmt[g->nodes[r].out]) {
            info->inplace[r] = 1;
            pl->n_inplace_asked++;
        }
    }
    /* fp32 Convs with a bias: one cuDNN call for conv+bias(+Relu); with the identity
     * activation cuDNN takes only IMPLICIT_PRECOMP_GEMM (checked at run time). */
    for (int i = 0; i < nn && c->fuse; i++) {
        const egc_node *n = &g->nodes[i];
        conv_plan *cp = &pl->conv[i];
        if (n->op != EGC_OP_CONV || !cp->ready || cp->half || n->n_in < 3 || n->in[2] < 0) continue;
        EGC_TRY(bias_act_descs(cp, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, shapes[n->out].d[1],
                               pl->np[i].relu_fused));
        cp->fused_api = 1;
    }
    /* 4b. fp16 Convs with a bias: conv + bias (+ Relu) as one cuDNN call or the convolution and
     * the epilogue kernel, whichever is correct and faster (conv_select_half). A Conv whose
     * only reader is a same-shape fp16 Add, as its input 0, whose input 1 is made before the
     * Conv and stored fp16, also adds that input (and the Add's Relu): the residual add of
     * ResNets; the Add then asks to run in place and does nothing. */
    for (int i = 0; i < nn && c->fuse && mixed; i++) {
        const egc_node *n = &g->nodes[i];
        conv_plan *cp = &pl->conv[i];
        if (n->op != EGC_OP_CONV || !cp->ready || !cp->half || n->n_in < 3 || n->in[2] < 0 ||
            !g->values[n->in[2]].is_const)
            continue;
        int v = n->out, r = -1, relu = pl->np[i].relu_fused;
        if (!relu && !info->keep[v] && v != info->target && v != g->output && pl->vfmt[v] == VF_F16 &&
            egc_graph_readers(g, v, &r) == 1 && r > i && g->nodes[r].op == EGC_OP_ADD &&
            pl->np[r].half && g->nodes[r].n_in == 2 && g->nodes[r].in[0] == v &&
            g->nodes[r].in[1] != v) {
            int z = g->nodes[r].in[1], zp = g->values[z].producer, ro = g->nodes[r].out;
            if (z >= 0 && zp >= 0 && zp < i && pl->vfmt[z] == VF_F16 && pl->vfmt[ro] == VF_F16 &&
                egc_shape_equal(&shapes[z], &shapes[v]) && egc_shape_equal(&shapes[ro], &shapes[v])) {
                cp->zres = 1;
                cp->zval = z;
                relu = pl->np[r].relu_fused;
                pl->np[r].add_passive = 1;
                info->inplace[r] = 1;
                pl->n_inplace_asked++;
                pl->n_zres++;
            }
        }
        EGC_TRY(bias_act_descs(cp, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, shapes[v].d[1], relu));
        cp->hf = 1;
        cp->hf_relu = relu;
        pl->n_hf++;
    }
    /* 5. Staging buffers of fp16 nodes and the fp16 weight buffer. */
    size_t w16 = 0;
    for (int i = 0; i < nn; i++) {
        node_plan *np = &pl->np[i];
        const egc_node *n = &g->nodes[i];
        np->in16[0] = np->in16[1] = np->out16 = NO_OFF;
        if (!np->half) continue;
        pl->n_half++;
        size_t off = 0;
        int nin = n->op == EGC_OP_ADD ? 2 : 1;
        /* channel-padded Conv input: cpad / C times the elements */
        const conv_plan *cpi = n->op == EGC_OP_CONV ? &pl->conv[i] : NULL;
        for (int j = 0; j < nin; j++)
            if (pl->vfmt[n->in[j]] == VF_F32) {
                np->in16[j] = off;
                size_t ne = (size_t)numel(&shapes[n->in[j]]);
                if (cpi && cpi->cpad) ne = ne / (size_t)shapes[n->in[j]].d[1] * (size_t)cpi->cpad;
                off += align_up(ne * 2);
            }
        if (pl->vfmt[n->out] == VF_F32) {
            np->out16 = off;
            off += align_up((size_t)numel(&shapes[n->out]) * 2);
        }
        np->stage_end = off;
        if (n->op == EGC_OP_CONV) {
            conv_plan *cp = &pl->conv[i];
            cp->ws_off = off;
            cp->w16_off = w16;
            size_t nw = (size_t)numel(&shapes[n->in[1]]);
            if (cp->cpad) nw = nw / (size_t)shapes[n->in[1]].d[1] * (size_t)cp->cpad;
            w16 += align_up(nw * 2);
            if (cp->hf) {
                cp->b16_off = w16;
                w16 += align_up((size_t)shapes[n->out].d[1] * 2);
            }
        }
    }
    pl->w16_bytes = w16;
    return EGC_OK;
}

/* The plan's workspace: the most any of its nodes needs (node_ws_need). */
static size_t plan_ws_need(const egc_graph *g, const egc_shape *shapes, const cuda_plan *pl)
{
    size_t need = 0;
    for (int i = 0; i < g->n_nodes; i++)
        need = EGC_MAX(need, node_ws_need(&g->nodes[i], shapes, &pl->conv[i], &pl->np[i]));
    return need;
}

/* Chooses again, with the fixed workspace caps, the forward algorithm of every fp32 Conv of
 * pl whose choice or search budget went past them (conv_ws_caps); 1 when any did (and all
 * were chosen again), else 0. */
static int ws_fixed_caps(cuda_ctx *c, const egc_graph *g, cuda_plan *pl)
{
    int any = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        conv_plan *cp = &pl->conv[i];
        if (g->nodes[i].op != EGC_OP_CONV || !cp->ready || cp->half || cp->lean ||
            (cp->fwd_ws <= CONV_WS_CAP && cp->find_ws <= FIND_WS_CAP))
            continue;
        cp->lean = 1;
        if (choose_fwd(c, &g->nodes[i], cp, pl->tf32) != EGC_OK) return 0;
        any = 1;
    }
    return any;
}

static egc_status cu_plan_prepare_ex(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                                     const egc_plan_info *info, void **state)
{
    cuda_ctx *c = ctx_of(be);
    *state = NULL;
    EGC_TRY(use_device(c));
    cuda_plan *pl = NULL;
    egc_status st = EGC_OK;
    EGC_TRY(egc_calloc((void **)&pl, 1, sizeof *pl, "CUDA plan"));
    pl->g = g;
    pl->n_nodes = g->n_nodes;
    pl->n_values = g->n_values;
    pl->tf32 = c->allow_tf32;
    pl->precision = info && info->precision == EGC_PREC_MIXED ? CUDA_PREC_MIXED : CUDA_PREC_FP32;
    EGC_TRYG(st, egc_calloc((void **)&pl->conv, (size_t)(g->n_nodes ? g->n_nodes : 1),
                            sizeof *pl->conv, "CUDA plan nodes"),
             fail);
    EGC_TRYG(st, egc_calloc((void **)&pl->np, (size_t)(g->n_nodes ? g->n_nodes : 1),
                            sizeof *pl->np, "CUDA plan nodes"),
             fail);
    EGC_TRYG(st, egc_calloc((void **)&pl->vfmt, (size_t)(g->n_values ? g->n_values : 1), 1,
                            "CUDA plan values"),
             fail);
    pl->values = info ? info->values : NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        const egc_node *n = &g->nodes[i];
        pl->np[i].in16[0] = pl->np[i].in16[1] = pl->np[i].out16 = NO_OFF;
        if (n->out < 0 || n->out >= g->n_values) {
            st = EGC_FAIL(EGC_E_INTERNAL, "node %s: bad output value id %d", n->name, n->out);
            goto fail;
        }
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= g->n_values) {
                st = EGC_FAIL(EGC_E_INTERNAL, "node %s: bad input value id %d", n->name, n->in[j]);
                goto fail;
            }
        if (n->op == EGC_OP_CONV) {
            pl->conv[i].lean = info && info->lean;
            EGC_TRYG(st, conv_prepare(c, g, n, shapes, pl->tf32, 0, &pl->conv[i]), fail);
        }
    }
    if (info) EGC_TRYG(st, plan_layout(c, pl, g, shapes, info), fail);
    if (info && c->graphs) EGC_TRYG(st, blas_workspace(be), fail);
    size_t need = plan_ws_need(g, shapes, pl);
    if (need) {
        st = cu_alloc(be, need, &pl->ws);
        /* out of memory with data-sized workspaces: the fixed caps, and try once more */
        if (st == EGC_E_NOMEM && ws_fixed_caps(c, g, pl)) {
            need = plan_ws_need(g, shapes, pl);
            st = cu_alloc(be, need, &pl->ws);
        }
        if (st != EGC_OK) goto fail;
    }
    pl->ws_bytes = need;
    if (pl->w16_bytes) EGC_TRYG(st, cu_alloc(be, pl->w16_bytes, &pl->w16), fail);
    *state = pl;
    return EGC_OK;
fail:
    cu_plan_release(be, pl);
    return st;
}

static egc_status cu_plan_prepare(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                                  void **state)
{
    return cu_plan_prepare_ex(be, g, shapes, NULL, state);
}

/* The plan's entry for node n, checked against the graph the plan was made for. */
static egc_status plan_node(void *state, const egc_graph *g, const egc_node *n, cuda_plan **pl,
                            int *idx)
{
    cuda_plan *p = (cuda_plan *)state;
    if (!p)
        return EGC_FAIL(EGC_E_INTERNAL, "node %s (%s): the CUDA backend needs plan_prepare first",
                        n->name, egc_op_name(n->op));
    ptrdiff_t i = n - g->nodes;
    if (p->g != g || i < 0 || i >= p->n_nodes)
        return EGC_FAIL(EGC_E_INTERNAL, "node %s (%s): not a node of the prepared plan's graph",
                        n->name, egc_op_name(n->op));
    *pl = p;
    *idx = (int)i;
    return EGC_OK;
}

/* The prepared Conv of node n, checked against the run shapes. */
static egc_status conv_of(void *state, const egc_graph *g, const egc_node *n, const egc_view *in,
                          const egc_view *out, cuda_plan **plp, conv_plan **cpp)
{
    cuda_plan *pl = NULL;
    int i = 0;
    EGC_TRY(plan_node(state, g, n, &pl, &i));
    conv_plan *cp = &pl->conv[i];
    if (!cp->ready) return EGC_FAIL(EGC_E_INTERNAL, "node %s (Conv): not prepared", n->name);
    if (!egc_shape_equal(&cp->xs, &in[0].shape) || !egc_shape_equal(&cp->ys, &out->shape)) {
        char a[96], b[96];
        return EGC_FAIL(EGC_E_SHAPE,
                        "node %s (Conv): run with input %s but the plan was prepared for %s",
                        n->name, egc_shape_str(&in[0].shape, a, sizeof a),
                        egc_shape_str(&cp->xs, b, sizeof b));
    }
    *plp = pl;
    *cpp = cp;
    return EGC_OK;
}

/* Sets cuBLAS's math mode for a plan (TF32 tensor ops or plain fp32). */
static egc_status blas_mode(cuda_ctx *c, const cuda_plan *pl)
{
    int tf32 = pl ? pl->tf32 : c->allow_tf32;
    if (c->blas_tf32 != tf32) {
        EGC_CUBLAS(cublasSetMathMode(c->blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
        c->blas_tf32 = tf32;
    }
    return EGC_OK;
}

/* ------------------------------------------------------------------ GEMM helpers */

/* Row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C with leading dims (row lengths as
 * stored) lda, ldb, ldc; batch > 1 runs `batch` products with element strides sa, sb, sc.
 * Column-major cuBLAS computes C^T = op(B)^T op(A)^T. */
static egc_status rm_gemm(cuda_ctx *c, const egc_node *n, int ta, int tb, int64_t M, int64_t N,
                          int64_t K, float alpha, const float *A, int64_t lda, int64_t sa,
                          const float *B, int64_t ldb, int64_t sb, float beta, float *C,
                          int64_t ldc, int64_t sc, int64_t batch)
{
    if (M == 0 || N == 0 || batch == 0) return EGC_OK;
    EGC_TRY(expect_int(n, M, "M"));
    EGC_TRY(expect_int(n, N, "N"));
    EGC_TRY(expect_int(n, K, "K"));
    EGC_TRY(expect_int(n, batch, "the batch count"));
    cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (K == 0) { /* C = beta C */
        if (beta == 0.0f) {
            for (int64_t b = 0; b < batch; b++)
                for (int64_t r = 0; r < M; r++) EGC_KERNEL(egc_k_fill(C + b * sc + r * ldc, 0.0f, N, c->stream));
        } else if (beta != 1.0f) {
            return EGC_FAIL(EGC_E_UNSUPPORTED, "node %s (%s): empty inner dimension with beta %g",
                            n->name, egc_op_name(n->op), beta);
        }
        return EGC_OK;
    }
    /* One output column (N = 1: the means of a LayerNorm, as lowered) or a rank-1 product
     * (K = 1: their backward) gains nothing from tensor cores and would lose the input
     * rounding of TF32 in a mean: it runs in full fp32 even where TF32 is allowed. */
    const int exact = (N == 1 || K == 1) && c->blas_tf32 == 1;
    if (exact) EGC_CUBLAS(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
    cublasStatus_t bs;
    if (batch == 1)
        bs = cublasSgemm(c->blas, ob, oa, (int)N, (int)M, (int)K, &alpha, B, (int)ldb, A,
                         (int)lda, &beta, C, (int)ldc);
    else
        bs = cublasSgemmStridedBatched(c->blas, ob, oa, (int)N, (int)M, (int)K, &alpha, B,
                                       (int)ldb, sb, A, (int)lda, sa, &beta, C, (int)ldc, sc,
                                       (int)batch);
    if (exact) {
        cublasStatus_t rs = cublasSetMathMode(c->blas, CUBLAS_TF32_TENSOR_OP_MATH);
        if (rs != CUBLAS_STATUS_SUCCESS) {
            c->blas_tf32 = -1; /* the mode is not known: blas_mode sets it again */
            if (bs == CUBLAS_STATUS_SUCCESS)
                return EGC_FAIL(EGC_E_DEVICE, "node %s (%s): cublasSetMathMode (back to TF32) "
                                "failed: cuBLAS status %d (%s)", n->name, egc_op_name(n->op),
                                (int)rs, cublasGetStatusString(rs));
        }
    }
    if (bs != CUBLAS_STATUS_SUCCESS)
        return EGC_FAIL(EGC_E_DEVICE, "node %s (%s): cublasSgemm%s failed: cuBLAS status %d (%s)",
                        n->name, egc_op_name(n->op), batch == 1 ? "" : "StridedBatched", (int)bs,
                        cublasGetStatusString(bs));
    return EGC_OK;
}

/* ------------------------------------------------------------------ forward */

static egc_status pool_desc(const egc_node *n, const egc_view *x, const egc_view *y,
                            egc_k_pool *k);

/* The memo key (MEMO_KEY integers into key) of a timed choice of kind about Conv cp of plan
 * pl that may use avail bytes of workspace; extra[0..n_extra) (n_extra <= 4): what else the
 * choice depends on. */
static egc_status conv_memo_key(const cuda_ctx *c, const cuda_plan *pl, const conv_plan *cp,
                                int kind, size_t avail, const int64_t *extra, int n_extra,
                                int64_t *key)
{
    int ph, pw, sh, sw, dh, dw, groups;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t type;
    EGC_CUDNN(cudnnGetConvolution2dDescriptor(cp->cd, &ph, &pw, &sh, &sw, &dh, &dw, &mode, &type));
    EGC_CUDNN(cudnnGetConvolutionGroupCount(cp->cd, &groups));
    const egc_shape *x = cp->explicit_pad ? &cp->xps : &cp->xs, *y = &cp->ys;
    const int64_t k[] = {kind, c->dev_tag, cp->half, cp->half ? 1 : pl->tf32, cp->cpad,
                         x->d[0], x->d[1], x->d[2], x->d[3], y->d[0], y->d[1], y->d[2], y->d[3],
                         cp->wc, cp->wr, cp->wsz, ph, pw, sh, sw, dh, dw, groups, (int64_t)avail};
    const int nk = (int)(sizeof k / sizeof k[0]);
    if (n_extra < 0 || nk + n_extra > MEMO_KEY)
        return EGC_FAIL(EGC_E_INTERNAL, "choice memo: %d extra key entries", n_extra);
    memset(key, 0, MEMO_KEY * sizeof *key);
    memcpy(key, k, sizeof k);
    for (int i = 0; i < n_extra; i++) key[nk + i] = extra[i];
    return EGC_OK;
}

/* Times cuDNN's forward algorithms on the real buffers (y is overwritten) within the plan's
 * workspace and keeps the fastest whose math keeps the plan's precision; done once per Conv
 * of a plan, at its first forward (the search synchronises the device). When the search
 * fails or offers nothing usable, the heuristic choice of plan_prepare stays. fp16 convs
 * (cp->half) accept tensor-op math and leave out the FFT algorithms; nondeterministic
 * algorithms are left out. A configuration searched before (in this process, or in an earlier
 * one through the choice cache) takes the choice then made (the choice memo) without a
 * search. */
static egc_status conv_find_fwd(cuda_ctx *c, const cuda_plan *pl, conv_plan *cp, const void *x,
                                const void *w, void *y)
{
    cp->found = 1;
    size_t avail = pl->ws_bytes > cp->ws_off ? pl->ws_bytes - cp->ws_off : 0;
    /* an fp16 Conv+bias whose path is still to choose keeps the room of its check */
    if (cp->hf && cp->hf_state == 0) avail = EGC_MIN(avail, align_up(cp->find_ws));
    int64_t key[MEMO_KEY], val[MEMO_VAL];
    EGC_TRY(conv_memo_key(c, pl, cp, MEMO_CONV_ALGO, avail, NULL, 0, key));
    if (memo_get(key, val) && (val[0] < 0 || (uint64_t)val[2] <= (uint64_t)avail)) {
        /* (a kept algorithm's workspace fits avail, which is in the key: only a cache file
         * edited by hand could say otherwise, and then the search runs) */
        if (val[0] >= 0) { /* else: the search offered nothing usable, the heuristic stays */
            EGC_CUDNN(cudnnSetConvolutionMathType(cp->cd, (cudnnMathType_t)val[1]));
            cp->fwd_algo = (cudnnConvolutionFwdAlgo_t)val[0];
            cp->fwd_ws = (size_t)val[2];
        }
        return EGC_OK;
    }
    void *ws = avail ? (char *)pl->ws + cp->ws_off : NULL;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    cudnnMathType_t keep_math;
    const int tf32 = cp->half ? 1 : pl->tf32;
    EGC_CUDNN(cudnnGetConvolutionMathType(cp->cd, &keep_math));
    EGC_CUDNN(cudnnSetConvolutionMathType(cp->cd, cp->half ? CUDNN_TENSOR_OP_MATH
                                                  : tf32     ? CUDNN_DEFAULT_MATH
                                                             : CUDNN_FMA_MATH));
    cudnnStatus_t fs = cudnnFindConvolutionForwardAlgorithmEx(
        c->dnn, cp->xd, x, cp->wd, w, cp->cd, cp->yd, y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got,
        perf, ws, avail);
    if (fs == CUDNN_STATUS_SUCCESS)
        for (int i = 0; i < got; i++) { /* sorted fastest first */
            if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > avail) continue;
            if (perf[i].determinism != CUDNN_DETERMINISTIC) continue;
            if (!math_ok(perf[i].mathType, tf32)) continue;
            /* strict fp32: DEFAULT_MATH may use TF32 on sm_80+; keep only plain FMA */
            if (!tf32 && perf[i].mathType != CUDNN_FMA_MATH) continue;
            /* strict fp32 and fp16 keep out the FFT algorithms (larger rounding error) */
            if ((!tf32 || cp->half) && (perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT ||
                                        perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING))
                continue;
            EGC_CUDNN(cudnnSetConvolutionMathType(cp->cd, perf[i].mathType));
            cp->fwd_algo = perf[i].algo;
            cp->fwd_ws = perf[i].memory;
            val[0] = perf[i].algo;
            val[1] = perf[i].mathType;
            val[2] = (int64_t)perf[i].memory;
            memo_put(key, val);
            return EGC_OK;
        }
    EGC_CUDNN(cudnnSetConvolutionMathType(cp->cd, keep_math));
    if (fs == CUDNN_STATUS_SUCCESS) { /* nothing usable: so it stays */
        val[0] = -1;
        val[1] = val[2] = 0;
        memo_put(key, val);
    }
    return EGC_OK;
}

/* The plan's node index of n, or -1 when state is not a plan of g (op calls without a plan
 * made for this graph run the plain fp32 path). */
static int node_index(const cuda_plan *pl, const egc_graph *g, const egc_node *n)
{
    if (!pl || pl->g != g) return -1;
    ptrdiff_t i = n - g->nodes;
    return i >= 0 && i < pl->n_nodes ? (int)i : -1;
}

/* Whether value v is stored fp16 NHWC in plan pl. */
static int is_f16(const cuda_plan *pl, int v)
{
    return pl && pl->vfmt && v >= 0 && v < pl->n_values && pl->vfmt[v] == VF_F16;
}

/* fp16 NHWC source of input slot j of fp16 node i: the value's own buffer when it is stored
 * fp16, else its fp32 NCHW contents converted into the node's staging buffer. */
static egc_status half_input(cuda_ctx *c, const cuda_plan *pl, int i, const egc_node *n, int j,
                             const egc_view *in, const uint16_t **out)
{
    int cpad = n->op == EGC_OP_CONV && j == 0 ? pl->conv[i].cpad : 0;
    if (is_f16(pl, n->in[j])) {
        if (cpad)
            return EGC_FAIL(EGC_E_INTERNAL, "node %s (Conv): channel-padded input stored fp16",
                            n->name);
        *out = (const uint16_t *)in[j].ptr;
        return EGC_OK;
    }
    const node_plan *np = &pl->np[i];
    const egc_shape *s = &in[j].shape;
    if (np->in16[j] == NO_OFF || s->ndim != 4)
        return EGC_FAIL(EGC_E_INTERNAL, "node %s (%s): no fp16 staging for input %d", n->name,
                        egc_op_name(n->op), j);
    uint16_t *dst = (uint16_t *)((char *)pl->ws + np->in16[j]);
    EGC_KERNEL(egc_k_nchw_to_nhwc_f16_pad(in[j].ptr, dst, s->d[0], s->d[1],
                                          cpad ? cpad : s->d[1], s->d[2] * s->d[3], c->stream));
    *out = dst;
    return EGC_OK;
}

/* fp16 NHWC destination of fp16 node i: the output's buffer when it is stored fp16, else the
 * staging buffer (half_output_done converts it into the fp32 output). */
static egc_status half_output(const cuda_plan *pl, int i, const egc_node *n, const egc_view *out,
                              uint16_t **y)
{
    if (is_f16(pl, n->out)) {
        *y = (uint16_t *)out->ptr;
        return EGC_OK;
    }
    const node_plan *np = &pl->np[i];
    if (np->out16 == NO_OFF || out->shape.ndim != 4)
        return EGC_FAIL(EGC_E_INTERNAL, "node %s (%s): no fp16 staging for the output", n->name,
                        egc_op_name(n->op));
    *y = (uint16_t *)((char *)pl->ws + np->out16);
    return EGC_OK;
}

static egc_status half_output_done(cuda_ctx *c, const cuda_plan *pl, const egc_node *n,
                                   const egc_view *out, const uint16_t *y)
{
    if (is_f16(pl, n->out)) return EGC_OK;
    const egc_shape *s = &out->shape;
    EGC_KERNEL(egc_k_nhwc_f16_to_nchw(y, out->ptr, s->d[0], s->d[1], s->d[2] * s->d[3],
                                      c->stream));
    return EGC_OK;
}

/* The two paths of an fp16 Conv: the convolution into y followed by the epilogue kernel
 * (act(y + bias + z), skipped when there is nothing to apply; every fp16 Conv), or, for a
 * Conv with a bias (conv_plan.hf), cuDNN's one call with the fp16 bias
 * b16 (z read with alpha2 = 1; with no z, z = y and alpha2 = 0, not read). The one call
 * returns cuDNN's status, so that a refusal can be told from a failure of the separate path. */
static egc_status conv_half_split(cuda_ctx *c, const cuda_plan *pl, const conv_plan *cp,
                                  const uint16_t *x16, const uint16_t *w16, uint16_t *y16,
                                  const float *bias, const uint16_t *z, int relu,
                                  const egc_shape *ys)
{
    const float one = 1.0f, zero = 0.0f;
    char *wsp = (char *)pl->ws;
    EGC_CUDNN(cudnnConvolutionForward(c->dnn, &one, cp->xd, x16, cp->wd, w16, cp->cd, cp->fwd_algo,
                                      wsp ? wsp + cp->ws_off : NULL, cp->fwd_ws, &zero, cp->yd,
                                      y16));
    if (bias || z || relu)
        EGC_KERNEL(egc_k_bias_act_f16(y16, bias, z, ys->d[0], ys->d[2] * ys->d[3], ys->d[1],
                                      relu, c->stream));
    return EGC_OK;
}

static cudnnStatus_t conv_half_fused(cuda_ctx *c, const cuda_plan *pl, const conv_plan *cp,
                                     const uint16_t *x16, const uint16_t *w16, uint16_t *y16,
                                     const uint16_t *b16, const uint16_t *z)
{
    const float one = 1.0f, zero = 0.0f;
    char *wsp = (char *)pl->ws;
    return cudnnConvolutionBiasActivationForward(
        c->dnn, &one, cp->xd, x16, cp->wd, w16, cp->cd, cp->fwd_algo,
        wsp ? wsp + cp->ws_off : NULL, cp->fwd_ws, z ? &one : &zero, cp->yd, z ? z : y16, cp->bd,
        b16, cp->ad, cp->yd, y16);
}


/* The operands of an fp16 Conv+bias path. */
typedef struct hf_args {
    const uint16_t *x16, *w16, *b16, *z;
    uint16_t *y16;
    const float *bias;
    const egc_shape *ys;
} hf_args;

/* Runs path p of an fp16 Conv+bias once: -1 the convolution and the epilogue kernel, 1
 * cuDNN's cudnnConvolutionBiasActivationForward, 2 the cuDNN operation graph (cp->gf). */
static egc_status hf_run(cuda_ctx *c, const cuda_plan *pl, conv_plan *cp, const hf_args *a, int p)
{
    if (p == 1) {
        EGC_CUDNN(conv_half_fused(c, pl, cp, a->x16, a->w16, a->y16, a->b16, a->z));
        return EGC_OK;
    }
    if (p == 2) {
        char *wsp = (char *)pl->ws;
        int s = egc_cudnn_fused_run(c->dnn, &cp->gf, a->x16, a->w16, a->b16, a->z, a->y16,
                                    cp->gf.ws_bytes && wsp ? wsp + cp->ws_off : NULL);
        if (s != 0)
            return EGC_FAIL(EGC_E_DEVICE, "cuDNN graph execution failed: cuDNN status %d (%s)", s,
                            cudnnGetErrorString((cudnnStatus_t)s));
        return EGC_OK;
    }
    return conv_half_split(c, pl, cp, a->x16, a->w16, a->y16, a->bias, a->z, cp->hf_relu, a->ys);
}

/* Mean milliseconds of HF_REPS runs of path p (events ev[0..1]). */
static egc_status hf_time(cuda_ctx *c, const cuda_plan *pl, conv_plan *cp, const hf_args *a, int p,
                          cudaEvent_t *ev, float *ms)
{
    EGC_CUDA(cudaEventRecord(ev[0], c->stream));
    for (int r = 0; r < HF_REPS; r++) EGC_TRY(hf_run(c, pl, cp, a, p));
    EGC_CUDA(cudaEventRecord(ev[1], c->stream));
    EGC_CUDA(cudaEventSynchronize(ev[1]));
    EGC_CUDA(cudaEventElapsedTime(ms, ev[0], ev[1]));
    *ms /= HF_REPS;
    return EGC_OK;
}

/* max |y16 - ref| / max |ref| over the first m values (compare_f16.cu), into *err. */
static egc_status hf_check(cuda_ctx *c, const uint16_t *ref, const uint16_t *y16, int64_t m,
                           float *res, float *err)
{
    float h[2];
    EGC_KERNEL(egc_k_compare_f16(ref, y16, m, res, c->stream));
    EGC_CUDA(cudaMemcpyAsync(h, res, sizeof h, cudaMemcpyDeviceToHost, c->stream));
    EGC_CUDA(cudaStreamSynchronize(c->stream));
    *err = h[0] / (h[1] > 1e-3f ? h[1] : 1e-3f);
    return EGC_OK;
}

/* The cuDNN operation graph of fp16 Conv node n (cp->gf), with a workspace up to ws_cap
 * bytes; its outcome in cp->gf_state (1 built, -1 not). Grouped and dilated convolutions
 * are not offered: cuDNN's runtime-fusion engines do not take them, and each refusal would
 * cost a kernel compilation. */
static void hf_graph_build(cuda_ctx *c, const egc_node *n, conv_plan *cp, size_t ws_cap)
{
    const egc_conv_params *p = &n->p.conv;
    if ((p->group > 1) || (p->dh > 1) || (p->dw > 1)) {
        cp->gf.stage = "grouped or dilated convolution, not offered";
        cp->gf.status = 0;
        cp->gf_state = -1;
        return;
    }
    egc_cudnn_fused_geom g;
    memset(&g, 0, sizeof g);
    g.n = cp->xs.d[0];
    g.c = cp->cpad ? cp->cpad : cp->xs.d[1];
    g.wc = cp->cpad ? cp->cpad : cp->wc; /* C / group: cuDNN infers the groups from it */
    g.h = cp->xs.d[2];
    g.w = cp->xs.d[3];
    g.k = cp->ys.d[1];
    g.r = cp->wr;
    g.s = cp->wsz;
    g.oh = cp->ys.d[2];
    g.ow = cp->ys.d[3];
    g.pad[0] = p->pt;
    g.pad[1] = p->pl;
    g.stride[0] = p->sh > 0 ? p->sh : 1;
    g.stride[1] = p->sw > 0 ? p->sw : 1;
    g.dil[0] = p->dh > 0 ? p->dh : 1;
    g.dil[1] = p->dw > 0 ? p->dw : 1;
    g.has_z = cp->zres;
    g.relu = cp->hf_relu;
    int s = egc_cudnn_fused_build(c->dnn, &g, (int64_t)ws_cap, &cp->gf);
    cp->gf_state = s == 0 && cp->gf.plan ? 1 : -1;
}

/* The first forward of an fp16 Conv with a bias (node n): chooses its path and leaves y16
 * holding the result. The kernel path (the convolution and the epilogue kernel) is the
 * reference; each other path is a candidate only when cuDNN takes it and its first
 * HF_CHECK_ELEMS values agree with the reference within HF_TOL of their largest magnitude:
 * cuDNN's one call (not for the identity activation with an algorithm other than
 * IMPLICIT_PRECOMP_GEMM) and, with EGC_CUDA_GRAPH_API=1, the cuDNN operation graph. The
 * fastest over HF_REPS timed runs is kept (EGC_CUDA_HALF_FUSED=1: the one call whenever it
 * passes the check). Runs outside any graph recording (the executor records on the second
 * forward); the check's scratch lies in the plan's workspace after cuDNN's (reserved by
 * node_ws_need); when it cannot be had, the kernel path is kept. */
static egc_status conv_select_half(cuda_ctx *c, const cuda_plan *pl, conv_plan *cp,
                                   const egc_node *n, const hf_args *a)
{
    cp->hf_state = -1;
    EGC_TRY(hf_run(c, pl, cp, a, -1));
    enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    EGC_CUDA(cudaStreamIsCapturing(c->stream, &cs));
    if (cs != cudaStreamCaptureStatusNone || c->hf_mode == 0)
        return EGC_OK; /* no timing inside a recording; or the kernel path asked for */
    int64_t ne = numel(a->ys), m = EGC_MIN(ne, HF_CHECK_ELEMS);
    size_t off = hf_scratch_off(cp);
    if (!pl->ws || off + hf_scratch_bytes(a->ys) > pl->ws_bytes) {
        cp->hf_status = HF_NO_SCRATCH;
        return EGC_OK;
    }
    /* a configuration chosen before (the choice memo, its cache too): that choice, untimed */
    const int64_t extra[] = {cp->fwd_algo, cp->hf_relu * 2 + cp->zres, c->hf_mode, c->graph_api};
    int64_t key[MEMO_KEY], val[MEMO_VAL];
    EGC_TRY(conv_memo_key(c, pl, cp, MEMO_HALF_PATH, off - cp->ws_off, extra, 4, key));
    if (memo_get(key, val)) {
        int p = (int)val[0];
        if (p == 2) {
            hf_graph_build(c, n, cp, off - cp->ws_off);
            if (cp->gf_state != 1) p = -1;
        }
        cp->hf_state = p;
        cp->hf_kept = 1;
        if (p == -1 || hf_run(c, pl, cp, a, p) == EGC_OK) return EGC_OK; /* y16: its result */
        (void)cudaGetLastError(); /* refused this time: the kernel path, no error left behind */
        egc_error_restore(NULL);
        cp->hf_state = -1;
        cp->hf_kept = 0;
        return hf_run(c, pl, cp, a, -1);
    }
    uint16_t *ref = (uint16_t *)((char *)pl->ws + off);
    float *res = (float *)((char *)ref + align_up((size_t)m * 2));
    cudaEvent_t ev[2] = {NULL, NULL};
    egc_status st = EGC_OK;
    int best = -1;
    float best_ms = 0.0f;
    EGC_CUDA_G(st, cudaMemcpyAsync(ref, a->y16, (size_t)m * 2, cudaMemcpyDeviceToDevice,
                                   c->stream), done);
    for (int k = 0; k < 2; k++) EGC_CUDA_G(st, cudaEventCreate(&ev[k]), done);
    if (c->hf_mode != 1) {
        EGC_TRYG(st, hf_time(c, pl, cp, a, -1, ev, &cp->hf_ms[0]), done);
        best_ms = cp->hf_ms[0];
    }
    /* cuDNN's one call */
    if (!cp->hf_relu && cp->fwd_algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) {
        cp->hf_status = HF_IDENTITY_ALGO; /* its identity activation needs that algorithm */
    } else {
        cudnnStatus_t fs = conv_half_fused(c, pl, cp, a->x16, a->w16, a->y16, a->b16, a->z);
        if (fs != CUDNN_STATUS_SUCCESS) {
            cp->hf_status = (int)fs; /* refused (and no launch error left behind) */
            (void)cudaGetLastError();
        } else {
            EGC_TRYG(st, hf_check(c, ref, a->y16, m, res, &cp->hf_err), done);
            if (cp->hf_err <= HF_TOL) { /* (NaN fails) */
                if (c->hf_mode == 1) {
                    best = 1; /* asked for */
                    goto chosen;
                }
                egc_status ts = hf_time(c, pl, cp, a, 1, ev, &cp->hf_ms[1]);
                if (ts != EGC_OK) {
                    cp->hf_status = (int)CUDNN_STATUS_EXECUTION_FAILED;
                    (void)cudaGetLastError();
                    egc_error_restore(NULL);
                }
                else if (cp->hf_ms[1] < best_ms) {
                    best = 1;
                    best_ms = cp->hf_ms[1];
                }
            }
        }
    }
    /* the cuDNN operation graph, within cuDNN's part of the workspace */
    if (c->graph_api && c->hf_mode == -1) {
        hf_graph_build(c, n, cp, off - cp->ws_off);
        if (cp->gf_state == 1) {
            egc_status gs = hf_run(c, pl, cp, a, 2);
            if (gs == EGC_OK) gs = hf_check(c, ref, a->y16, m, res, &cp->gf_err);
            if (gs == EGC_OK && cp->gf_err <= HF_TOL)
                gs = hf_time(c, pl, cp, a, 2, ev, &cp->gf_ms);
            else if (gs == EGC_OK)
                cp->gf_state = -3; /* differed */
            if (gs != EGC_OK) { /* failed to run: no launch error or message left behind */
                cp->gf_state = -2;
                (void)cudaGetLastError();
                egc_error_restore(NULL);
            } else if (cp->gf_state == 1 && cp->gf_ms < best_ms) {
                best = 2;
                best_ms = cp->gf_ms;
            }
        }
    }
chosen:
    cp->hf_state = best;
    EGC_TRYG(st, hf_run(c, pl, cp, a, best), done); /* y16: the chosen path's result */
    val[0] = best;
    val[1] = val[2] = 0;
    memo_put(key, val);
done:
    for (int k = 0; k < 2; k++)
        if (ev[k]) (void)cudaEventDestroy(ev[k]);
    return st;
}

/* fp16 NHWC forward of a Conv of a mixed plan: weights converted to fp16 KRSC once (again if
 * the weight buffer changes), the input staged when stored fp32, cuDNN with fp32 accumulation,
 * bias (+ residual + fused Relu) in the epilogue kernel or, where chosen, all in one cuDNN
 * call (conv_select_half), the output converted back when stored fp32. */
static egc_status conv_forward_half(cuda_ctx *c, cuda_plan *pl, conv_plan *cp, int i,
                                    const egc_node *n, const egc_view *in, const egc_view *out)
{
    const node_plan *np = &pl->np[i];
    const egc_shape *ws = &in[1].shape, *ys = &out->shape;
    uint16_t *w16 = (uint16_t *)((char *)pl->w16 + cp->w16_off);
    if (cp->w16_src != in[1].ptr) {
        EGC_KERNEL(egc_k_nchw_to_nhwc_f16_pad(in[1].ptr, w16, ws->d[0], ws->d[1],
                                              cp->cpad ? cp->cpad : ws->d[1], ws->d[2] * ws->d[3],
                                              c->stream));
        cp->w16_src = in[1].ptr;
    }
    const uint16_t *x16 = NULL;
    uint16_t *y16 = NULL;
    EGC_TRY(half_input(c, pl, i, n, 0, in, &x16));
    EGC_TRY(half_output(pl, i, n, out, &y16));
    if (!cp->found) EGC_TRY(conv_find_fwd(c, pl, cp, x16, w16, y16));
    const float *bias = n->n_in > 2 && in[2].ptr ? in[2].ptr : NULL;
    if (bias) EGC_TRY(expect_numel(n, &in[2].shape, ys->d[1], "the bias"));
    if (cp->hf) {
        const uint16_t *z = NULL;
        if (cp->zres) {
            z = pl->values ? (const uint16_t *)pl->values[cp->zval] : NULL;
            if (!z)
                return EGC_FAIL(EGC_E_INTERNAL, "node %s (Conv): the residual input %s has no "
                                "buffer", n->name, pl->g->values[cp->zval].name);
        }
        uint16_t *b16 = (uint16_t *)((char *)pl->w16 + cp->b16_off);
        if (!bias) cp->hf_state = -1; /* the one call needs a bias */
        else if (cp->b16_src != bias) {
            EGC_KERNEL(egc_k_nchw_to_nhwc_f16(bias, b16, 1, ys->d[1], 1, c->stream));
            cp->b16_src = bias;
        }
        hf_args a = {x16, w16, b16, z, y16, bias, ys};
        if (cp->hf_state == 0) {
            EGC_TRY(conv_select_half(c, pl, cp, n, &a));
        } else if (cp->hf_state == 2 && hf_run(c, pl, cp, &a, 2) != EGC_OK) {
            /* the graph stopped running (e.g. under a recording): the kernel path from now on */
            (void)cudaGetLastError();
            egc_error_restore(NULL);
            cp->hf_state = -1;
            cp->gf_state = -2;
            EGC_TRY(hf_run(c, pl, cp, &a, -1));
        } else if (cp->hf_state != 2) {
            EGC_TRY(hf_run(c, pl, cp, &a, cp->hf_state));
        }
        return half_output_done(c, pl, n, out, y16);
    }
    EGC_TRY(conv_half_split(c, pl, cp, x16, w16, y16, bias, NULL, np->relu_fused, ys));
    return half_output_done(c, pl, n, out, y16);
}

/* fp16 NHWC forward of a Relu, Clip, same-shape Add or MaxPool of a mixed plan. */
static egc_status half_forward(cuda_ctx *c, cuda_plan *pl, int i, const egc_node *n,
                               const egc_view *in, const egc_view *out)
{
    const node_plan *np = &pl->np[i];
    const uint16_t *x0 = NULL, *x1 = NULL;
    uint16_t *y = NULL;
    int64_t ne = numel(&out->shape);
    if (n->op == EGC_OP_ADD && np->add_passive) { /* its Conv did the add (both fp16) */
        if (in[0].ptr != out->ptr)
            EGC_CUDA(cudaMemcpyAsync(out->ptr, in[0].ptr, (size_t)ne * 2,
                                     cudaMemcpyDeviceToDevice, c->stream));
        return EGC_OK;
    }
    EGC_TRY(half_input(c, pl, i, n, 0, in, &x0));
    if (n->op == EGC_OP_ADD) {
        if (!egc_shape_equal(&in[0].shape, &out->shape) || !egc_shape_equal(&in[1].shape, &out->shape))
            return EGC_FAIL(EGC_E_SHAPE, "node %s (Add): fp16 path needs equal shapes", n->name);
        EGC_TRY(half_input(c, pl, i, n, 1, in, &x1));
    } else if (n->op != EGC_OP_MAXPOOL) {
        EGC_TRY(expect_numel(n, &in[0].shape, ne, "X"));
    }
    EGC_TRY(half_output(pl, i, n, out, &y));
    switch (n->op) {
    case EGC_OP_RELU:
        EGC_KERNEL(egc_k_clip_f16(x0, y, 0.0f, INFINITY, ne, c->stream));
        break;
    case EGC_OP_CLIP:
        EGC_KERNEL(egc_k_clip_f16(x0, y, n->p.clip.lo, n->p.clip.hi, ne, c->stream));
        break;
    case EGC_OP_ADD:
        EGC_KERNEL(egc_k_add_f16(x0, x1, y, np->relu_fused, ne, c->stream));
        break;
    case EGC_OP_MAXPOOL: {
        egc_k_pool k;
        EGC_TRY(pool_desc(n, &in[0], out, &k));
        EGC_KERNEL(egc_k_maxpool_nhwc_f16(x0, y, in[0].shape.d[0], in[0].shape.d[1], &k,
                                          c->stream));
        break;
    }
    default:
        return EGC_FAIL(EGC_E_INTERNAL, "node %s: op %s has no fp16 path", n->name,
                        egc_op_name(n->op));
    }
    return half_output_done(c, pl, n, out, y);
}

static egc_status conv_forward(cuda_ctx *c, void *state, const egc_graph *g, const egc_node *n,
                               const egc_view *in, const egc_view *out)
{
    cuda_plan *pl = NULL;
    conv_plan *cp = NULL;
    EGC_TRY(conv_of(state, g, n, in, out, &pl, &cp));
    const int i = (int)(n - g->nodes);
    if (cp->half) return conv_forward_half(c, pl, cp, i, n, in, out);
    const int relu = pl->np && pl->np[i].relu_fused;
    const egc_conv_params *p = &n->p.conv;
    const float *x = in[0].ptr;
    char *ws = (char *)pl->ws;
    if (cp->explicit_pad) {
        int64_t begin[4] = {0, 0, p->pt, p->pl};
        EGC_KERNEL(egc_k_pad_fwd(in[0].ptr, cp->xs.d, (float *)ws, cp->xps.d, begin, 4, 0, 0.0f,
                                 c->stream));
        x = (const float *)ws;
    }
    if (!cp->found) EGC_TRY(conv_find_fwd(c, pl, cp, x, in[1].ptr, out->ptr));
    const float one = 1.0f, zero = 0.0f;
    const int has_bias = n->n_in > 2 && in[2].ptr;
    if (has_bias) EGC_TRY(expect_numel(n, &in[2].shape, out->shape.d[1], "the bias"));
    if (has_bias && cp->fused_api && !cp->fused_refused &&
        (relu || cp->fwd_algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)) {
        /* y = act(conv(x) + bias), act Relu or identity; z = y with alpha2 = 0 (not read) */
        cudnnStatus_t fs = cudnnConvolutionBiasActivationForward(
            c->dnn, &one, cp->xd, x, cp->wd, in[1].ptr, cp->cd, cp->fwd_algo,
            ws ? ws + cp->ws_off : NULL, cp->fwd_ws, &zero, cp->yd, out->ptr, cp->bd, in[2].ptr,
            cp->ad, cp->yd, out->ptr);
        if (fs == CUDNN_STATUS_SUCCESS) return EGC_OK;
        /* refused (e.g. not supported for this algorithm): separate calls from now on */
        cp->fused_refused = 1;
        cp->fused_status = (int)fs;
    }
    EGC_CUDNN(cudnnConvolutionForward(c->dnn, &one, cp->xd, x, cp->wd, in[1].ptr, cp->cd,
                                      cp->fwd_algo, ws ? ws + cp->ws_off : NULL, cp->fwd_ws,
                                      &zero, cp->yd, out->ptr));
    if (has_bias)
        EGC_KERNEL(egc_k_bias_add(out->ptr, in[2].ptr, out->shape.d[0], out->shape.d[1],
                                  out->shape.d[2] * out->shape.d[3], c->stream));
    if (relu) EGC_KERNEL(egc_k_relu_fwd(out->ptr, out->ptr, numel(&out->shape), c->stream));
    return EGC_OK;
}

static egc_status gemm_forward(cuda_ctx *c, const cuda_plan *pl, const egc_node *n,
                               const egc_view *in, const egc_view *out)
{
    const egc_gemm_params *p = &n->p.gemm;
    EGC_TRY(expect_rank(n, &in[0], "A", 2));
    EGC_TRY(expect_rank(n, &in[1], "B", 2));
    int64_t M = p->trans_a ? in[0].shape.d[1] : in[0].shape.d[0];
    int64_t K = p->trans_a ? in[0].shape.d[0] : in[0].shape.d[1];
    int64_t K2 = p->trans_b ? in[1].shape.d[1] : in[1].shape.d[0];
    int64_t N = p->trans_b ? in[1].shape.d[0] : in[1].shape.d[1];
    if (K != K2)
        return EGC_FAIL(EGC_E_SHAPE, "node %s (Gemm): inner dimensions %lld and %lld differ",
                        n->name, (long long)K, (long long)K2);
    EGC_TRY(expect_numel(n, &out->shape, M * N, "the output"));
    float beta = 0.0f;
    if (n->n_in > 2 && in[2].ptr && p->beta != 0.0f) {
        /* Y = broadcast(C), then the GEMM adds alpha A B with beta */
        int64_t cs[2], cst[2], dims[2] = {M, N}, dst[2] = {N, 1};
        if (in[2].shape.ndim > 2)
            return EGC_FAIL(EGC_E_SHAPE, "node %s (Gemm): C has more than 2 dims", n->name);
        right_align(&in[2].shape, 2, cs);
        if ((cs[0] != M && cs[0] != 1) || (cs[1] != N && cs[1] != 1))
            return EGC_FAIL(EGC_E_SHAPE, "node %s (Gemm): C does not broadcast to [%lld,%lld]",
                            n->name, (long long)M, (long long)N);
        cst[1] = cs[1] == 1 ? 0 : 1;
        cst[0] = cs[0] == 1 ? 0 : cs[1];
        EGC_KERNEL(egc_k_strided_copy(in[2].ptr, 0, cst, out->ptr, 0, dst, dims, 2, 0, c->stream));
        beta = p->beta;
    }
    EGC_TRY(blas_mode(c, pl));
    return rm_gemm(c, n, p->trans_a, p->trans_b, M, N, K, p->alpha, in[0].ptr,
                   in[0].shape.d[1], 0, in[1].ptr, in[1].shape.d[1], 0, beta, out->ptr, N, 0, 1);
}

/* MatMul geometry: A [..., M, K] (1-D A is [1, K]), B [..., K, N] (1-D B is [K, 1]),
 * batch dims broadcast to bs[0..nb). */
typedef struct matmul_geom {
    int64_t M, K, N;
    int nb;
    int64_t bs[EGC_MAX_DIMS], ab[EGC_MAX_DIMS], bb[EGC_MAX_DIMS]; /* out, A, B batch dims */
    int64_t P, PA, PB;       /* batch counts */
} matmul_geom;

static egc_status matmul_geom_of(const egc_node *n, const egc_view *in, const egc_view *out,
                                 matmul_geom *m)
{
    const egc_shape *a = &in[0].shape, *b = &in[1].shape;
    if (a->ndim < 1 || b->ndim < 1)
        return EGC_FAIL(EGC_E_SHAPE, "node %s (MatMul): scalar operand", n->name);
    int na = a->ndim >= 2 ? a->ndim - 2 : 0, nbb = b->ndim >= 2 ? b->ndim - 2 : 0;
    m->M = a->ndim >= 2 ? a->d[a->ndim - 2] : 1;
    m->K = a->d[a->ndim - 1];
    int64_t K2 = b->ndim >= 2 ? b->d[b->ndim - 2] : b->d[0];
    m->N = b->ndim >= 2 ? b->d[b->ndim - 1] : 1;
    if (m->K != K2)
        return EGC_FAIL(EGC_E_SHAPE, "node %s (MatMul): inner dimensions %lld and %lld differ",
                        n->name, (long long)m->K, (long long)K2);
    m->nb = EGC_MAX(na, nbb);
    m->P = m->PA = m->PB = 1;
    for (int k = 0; k < m->nb; k++) {
        int ia = na - m->nb + k, ib = nbb - m->nb + k;
        m->ab[k] = ia >= 0 ? a->d[ia] : 1;
        m->bb[k] = ib >= 0 ? b->d[ib] : 1;
        if (m->ab[k] != m->bb[k] && m->ab[k] != 1 && m->bb[k] != 1)
            return EGC_FAIL(EGC_E_SHAPE, "node %s (MatMul): batch dims do not broadcast", n->name);
        m->bs[k] = m->ab[k] == 1 ? m->bb[k] : m->ab[k];
        m->P *= m->bs[k];
        m->PA *= m->ab[k];
        m->PB *= m->bb[k];
    }
    return expect_numel(n, &out->shape, m->P * m->M * m->N, "the output");
}

/* Element offsets of A's and B's matrix for output batch p. */
static void matmul_offsets(const matmul_geom *m, int64_t p, int64_t *oa, int64_t *ob)
{
    int64_t a = 0, b = 0, sa = m->M * m->K, sb = m->K * m->N;
    for (int k = m->nb - 1; k >= 0; k--) {
        int64_t idx = p % m->bs[k];
        p /= m->bs[k];
        if (m->ab[k] != 1) a += idx * sa;
        if (m->bb[k] != 1) b += idx * sb;
        sa *= m->ab[k];
        sb *= m->bb[k];
    }
    *oa = a;
    *ob = b;
}

/* 1 when operand batch dims equal the output's (no broadcasting on that side). */
static int batch_full(const matmul_geom *m, const int64_t *xb)
{
    for (int k = 0; k < m->nb; k++)
        if (xb[k] != m->bs[k]) return 0;
    return 1;
}

static egc_status matmul_forward(cuda_ctx *c, const cuda_plan *pl, const egc_node *n,
                                 const egc_view *in, const egc_view *out)
{
    matmul_geom m;
    EGC_TRY(matmul_geom_of(n, in, out, &m));
    EGC_TRY(blas_mode(c, pl));
    const float *A = in[0].ptr, *B = in[1].ptr;
    float *Y = out->ptr;
    if (m.PB == 1) /* B shared: fold A's batch into rows */
        return rm_gemm(c, n, 0, 0, m.P * m.M, m.N, m.K, 1.0f, A, m.K, 0, B, m.N, 0, 0.0f, Y, m.N, 0,
                       1);
    int fa = batch_full(&m, m.ab), fb = batch_full(&m, m.bb);
    if ((fa || m.PA == 1) && (fb || m.PB == 1))
        return rm_gemm(c, n, 0, 0, m.M, m.N, m.K, 1.0f, A, m.K, fa ? m.M * m.K : 0, B, m.N,
                       fb ? m.K * m.N : 0, 0.0f, Y, m.N, m.M * m.N, m.P);
    for (int64_t p = 0; p < m.P; p++) {
        int64_t oa, ob;
        matmul_offsets(&m, p, &oa, &ob);
        EGC_TRY(rm_gemm(c, n, 0, 0, m.M, m.N, m.K, 1.0f, A + oa, m.K, 0, B + ob, m.N, 0, 0.0f,
                        Y + p * m.M * m.N, m.N, 0, 1));
    }
    return EGC_OK;
}

static int binary_kop(egc_op op)
{
    switch (op) {
    case EGC_OP_ADD: return EGC_K_ADD;
    case EGC_OP_SUB: return EGC_K_SUB;
    case EGC_OP_MUL: return EGC_K_MUL;
    default: return EGC_K_DIV;
    }
}

/* Right-aligned shapes of a binary op at the output's rank, validated. */
static egc_status binary_shapes(const egc_node *n, const egc_view *in, const egc_view *out,
                                int64_t *as, int64_t *bs)
{
    egc_shape bc;
    EGC_TRY(egc_broadcast_shape(&in[0].shape, &in[1].shape, &bc));
    if (!egc_shape_equal(&bc, &out->shape)) {
        char a[96], b[96];
        return EGC_FAIL(EGC_E_SHAPE, "node %s (%s): inputs broadcast to %s, output is %s", n->name,
                        egc_op_name(n->op), egc_shape_str(&bc, a, sizeof a),
                        egc_shape_str(&out->shape, b, sizeof b));
    }
    right_align(&in[0].shape, out->shape.ndim, as);
    right_align(&in[1].shape, out->shape.ndim, bs);
    return EGC_OK;
}

static egc_status pool_desc(const egc_node *n, const egc_view *x, const egc_view *y,
                            egc_k_pool *k)
{
    EGC_TRY(expect_rank(n, x, "X", 4));
    EGC_TRY(expect_rank(n, y, "Y", 4));
    const egc_pool_params *p = &n->p.pool;
    memset(k, 0, sizeof *k);
    k->planes = x->shape.d[0] * x->shape.d[1];
    k->h = x->shape.d[2];
    k->w = x->shape.d[3];
    k->oh = y->shape.d[2];
    k->ow = y->shape.d[3];
    if (y->shape.d[0] != x->shape.d[0] || y->shape.d[1] != x->shape.d[1])
        return EGC_FAIL(EGC_E_SHAPE, "node %s (%s): output batch/channels differ from the input",
                        n->name, egc_op_name(n->op));
    k->kh = p->kh;
    k->kw = p->kw;
    k->sh = p->sh > 0 ? p->sh : 1;
    k->sw = p->sw > 0 ? p->sw : 1;
    k->dh = p->dh > 0 ? p->dh : 1;
    k->dw = p->dw > 0 ? p->dw : 1;
    k->pt = p->pt;
    k->pl = p->pl;
    k->pb = p->pb;
    k->pr = p->pr;
    k->count_include_pad = p->count_include_pad;
    if (k->kh <= 0 || k->kw <= 0)
        return EGC_FAIL(EGC_E_UNSUPPORTED, "node %s (%s): kernel %dx%d", n->name,
                        egc_op_name(n->op), k->kh, k->kw);
    return EGC_OK;
}

/* Softmax as [outer, d, inner]. */
static egc_status softmax_geom(const egc_node *n, const egc_shape *s, int64_t *outer, int64_t *d,
                               int64_t *inner)
{
    int axis = 0;
    EGC_TRY(norm_axis(n, n->p.axis.axis, s->ndim, &axis));
    if (s->ndim == 0) {
        *outer = *d = *inner = 1;
        return EGC_OK;
    }
    *outer = dims_prod(s, 0, axis);
    if (n->p.axis.legacy) {
        *d = dims_prod(s, axis, s->ndim);
        *inner = 1;
    } else {
        *d = s->d[axis];
        *inner = dims_prod(s, axis + 1, s->ndim);
    }
    return EGC_OK;
}

/* Transpose: source strides per output dim. */
static egc_status transpose_strides(const egc_node *n, const egc_shape *xs, const egc_shape *ys,
                                    int64_t *sst)
{
    const egc_transpose_params *p = &n->p.transpose;
    int r = xs->ndim, perm[EGC_MAX_DIMS];
    if (p->n == 0) {
        for (int k = 0; k < r; k++) perm[k] = r - 1 - k;
    } else {
        if (p->n != r)
            return EGC_FAIL(EGC_E_SHAPE, "node %s (Transpose): perm has %d entries, input rank %d",
                            n->name, p->n, r);
        for (int k = 0; k < r; k++) perm[k] = p->perm[k];
    }
    int64_t xst[EGC_MAX_DIMS];
    dense_strides(xs, xst);
    if (ys->ndim != r)
        return EGC_FAIL(EGC_E_SHAPE, "node %s (Transpose): output rank differs", n->name);
    for (int k = 0; k < r; k++) {
        if (perm[k] < 0 || perm[k] >= r || ys->d[k] != xs->d[perm[k]])
            return EGC_FAIL(EGC_E_SHAPE, "node %s (Transpose): perm and shapes disagree", n->name);
        sst[k] = xst[perm[k]];
    }
    return EGC_OK;
}

/* Slice: strides into X per output dim and the offset of the first element. */
static egc_status slice_strides(const egc_node *n, const egc_shape *xs, const egc_shape *ys,
                                int64_t *sst, int64_t *off)
{
    int64_t start[EGC_MAX_DIMS], step[EGC_MAX_DIMS], xst[EGC_MAX_DIMS];
    egc_shape os;
    egc_slice_resolve(&n->p.slice, xs, start, step, &os);
    if (!egc_shape_equal(&os, ys)) {
        char a[96], b[96];
        return EGC_FAIL(EGC_E_SHAPE, "node %s (Slice): output %s, the slice gives %s", n->name,
                        egc_shape_str(ys, a, sizeof a), egc_shape_str(&os, b, sizeof b));
    }
    dense_strides(xs, xst);
    *off = 0;
    for (int k = 0; k < xs->ndim; k++) {
        sst[k] = xst[k] * step[k];
        *off += start[k] * xst[k];
    }
    return EGC_OK;
}

static egc_status pad_geom(const egc_node *n, const egc_shape *xs, const egc_shape *ys,
                           int64_t *begin)
{
    const egc_pad_params *p = &n->p.pad;
    if (p->n != xs->ndim || ys->ndim != xs->ndim)
        return EGC_FAIL(EGC_E_SHAPE, "node %s (Pad): pads given for rank %d, input rank %d",
                        n->name, p->n, xs->ndim);
    for (int k = 0; k < p->n; k++) {
        begin[k] = p->pads[k];
        if (xs->d[k] + p->pads[k] + p->pads[p->n + k] != ys->d[k])
            return EGC_FAIL(EGC_E_SHAPE, "node %s (Pad): output dim %d is %lld, pads give %lld",
                            n->name, k, (long long)ys->d[k],
                            (long long)(xs->d[k] + p->pads[k] + p->pads[p->n + k]));
    }
    if (p->mode != EGC_PAD_CONSTANT && p->mode != EGC_PAD_REFLECT && p->mode != EGC_PAD_EDGE)
        return EGC_FAIL(EGC_E_UNSUPPORTED, "node %s (Pad): pad mode %d", n->name, p->mode);
    for (int k = 0; k < p->n; k++) {
        int64_t kept = xs->d[k] - EGC_MAX(-p->pads[k], 0) - EGC_MAX(-p->pads[p->n + k], 0);
        if (p->mode != EGC_PAD_CONSTANT && kept <= 0 && ys->d[k] > 0)
            return EGC_FAIL(EGC_E_SHAPE, "node %s (Pad): cannot %s-pad dim %d: nothing left after "
                            "cropping", n->name, p->mode == EGC_PAD_EDGE ? "edge" : "reflect", k);
    }
    return EGC_OK;
}

/* Concat geometry: axis, outer and inner products. */
static egc_status concat_geom(const egc_node *n, const egc_view *in, const egc_view *out,
                              int *axis, int64_t *outer, int64_t *inner)
{
    EGC_TRY(norm_axis(n, n->p.axis.axis, out->shape.ndim, axis));
    *outer = dims_prod(&out->shape, 0, *axis);
    *inner = dims_prod(&out->shape, *axis + 1, out->shape.ndim);
    int64_t tot = 0;
    for (int i = 0; i < n->n_in; i++) {
        if (in[i].shape.ndim != out->shape.ndim)
            return EGC_FAIL(EGC_E_SHAPE, "node %s (Concat): input %d rank differs", n->name, i);
        tot += in[i].shape.d[*axis];
    }
    if (tot != out->shape.d[*axis])
        return EGC_FAIL(EGC_E_SHAPE, "node %s (Concat): inputs sum to %lld along axis %d, output %lld",
                        n->name, (long long)tot, *axis, (long long)out->shape.d[*axis]);
    return EGC_OK;
}

static egc_status cu_op_forward(egc_backend *be, void *state, const egc_graph *g,
                                const egc_node *n, const egc_view *in, const egc_view *out)
{
    cuda_ctx *c = ctx_of(be);
    void *s = c->stream;
    EGC_TRY(use_device(c));
    cuda_plan *pl = (cuda_plan *)state;
    int64_t ne = numel(&out->shape);
    const int idx = node_index(pl, g, n);
    if (idx >= 0 && pl->np) {
        /* the producer already applied this Relu: nothing to do in place (else reapply it) */
        if (pl->np[idx].relu_pass && n->op == EGC_OP_RELU && in[0].ptr == out->ptr) return EGC_OK;
        if (pl->np[idx].half && n->op != EGC_OP_CONV) return half_forward(c, pl, idx, n, in, out);
    }
    switch (n->op) {
    case EGC_OP_CONV:
        return conv_forward(c, state, g, n, in, out);
    case EGC_OP_GEMM:
        return gemm_forward(c, pl, n, in, out);
    case EGC_OP_MATMUL:
        return matmul_forward(c, pl, n, in, out);
    case EGC_OP_RELU:
        EGC_TRY(expect_numel(n, &in[0].shape, ne, "X"));
        EGC_KERNEL(egc_k_relu_fwd(in[0].ptr, out->ptr, ne, s));
        return EGC_OK;
    case EGC_OP_CLIP:
        EGC_TRY(expect_numel(n, &in[0].shape, ne, "X"));
        EGC_KERNEL(egc_k_clip_fwd(in[0].ptr, out->ptr, n->p.clip.lo, n->p.clip.hi, ne, s));
        return EGC_OK;
    case EGC_OP_SIGMOID:
        EGC_TRY(expect_numel(n, &in[0].shape, ne, "X"));
        EGC_KERNEL(egc_k_sigmoid_fwd(in[0].ptr, out->ptr, ne, s));
        return EGC_OK;
    case EGC_OP_SQRT:
        EGC_TRY(expect_numel(n, &in[0].shape, ne, "X"));
        EGC_KERNEL(egc_k_sqrt_fwd(in[0].ptr, out->ptr, ne, s));
        return EGC_OK;
    case EGC_OP_ERF:
        EGC_TRY(expect_numel(n, &in[0].shape, ne, "X"));
        EGC_KERNEL(egc_k_erf_fwd(in[0].ptr, out->ptr, ne, s));
        return EGC_OK;
    case EGC_OP_EXP:
        EGC_TRY(expect_numel(n, &in[0].shape, ne, "X"));
        EGC_KERNEL(egc_k_exp_fwd(in[0].ptr, out->ptr, ne, s));
        return EGC_OK;
    case EGC_OP_LOG:
        EGC_TRY(expect_numel(n, &in[0].shape, ne, "X"));
        EGC_KERNEL(egc_k_log_fwd(in[0].ptr, out->ptr, ne, s));
        return EGC_OK;
    case EGC_OP_SOFTPLUS:
        EGC_TRY(expect_numel(n, &in[0].shape, ne, "X"));
        EGC_KERNEL(egc_k_softplus_fwd(in[0].ptr, out->ptr, ne, s));
        return EGC_OK;
    case EGC_OP_FAKE_QUANT:
        EGC_TRY(expect_numel(n, &in[0].shape, ne, "X"));
        EGC_KERNEL(egc_k_fake_quant_fwd(in[0].ptr, out->ptr, n->p.fq.scale, n->p.fq.zero,
                                        n->p.fq.qmin, n->p.fq.qmax, ne, s));
        return EGC_OK;
    case EGC_OP_ADD:
    case EGC_OP_SUB:
    case EGC_OP_MUL:
    case EGC_OP_DIV: {
        int64_t as[EGC_MAX_DIMS], bs[EGC_MAX_DIMS];
        EGC_TRY(binary_shapes(n, in, out, as, bs));
        EGC_KERNEL(egc_k_binary_fwd(binary_kop(n->op), in[0].ptr, as, in[1].ptr, bs, out->ptr,
                                    out->shape.d, out->shape.ndim, s));
        return EGC_OK;
    }
    case EGC_OP_MAXPOOL:
    case EGC_OP_AVGPOOL: {
        egc_k_pool k;
        EGC_TRY(pool_desc(n, &in[0], out, &k));
        if (n->op == EGC_OP_MAXPOOL)
            EGC_KERNEL(egc_k_maxpool_fwd(in[0].ptr, out->ptr, &k, s));
        else
            EGC_KERNEL(egc_k_avgpool_fwd(in[0].ptr, out->ptr, &k, s));
        return EGC_OK;
    }
    case EGC_OP_GAP: {
        if (in[0].shape.ndim < 2)
            return EGC_FAIL(EGC_E_SHAPE, "node %s (GlobalAveragePool): input rank %d", n->name,
                            in[0].shape.ndim);
        int64_t planes = in[0].shape.d[0] * in[0].shape.d[1];
        EGC_TRY(expect_numel(n, &out->shape, planes, "the output"));
        EGC_KERNEL(egc_k_gap_fwd(in[0].ptr, out->ptr, planes,
                                 dims_prod(&in[0].shape, 2, in[0].shape.ndim), s));
        return EGC_OK;
    }
    case EGC_OP_BATCHNORM: {
        const egc_shape *xs = &in[0].shape;
        if (xs->ndim < 2 || n->n_in < 5)
            return EGC_FAIL(EGC_E_SHAPE, "node %s (BatchNormalization): needs X of rank >= 2 and 5 inputs",
                            n->name);
        for (int i = 1; i < 5; i++) EGC_TRY(expect_numel(n, &in[i].shape, xs->d[1], "a parameter"));
        EGC_TRY(expect_numel(n, &out->shape, numel(xs), "the output"));
        EGC_KERNEL(egc_k_batchnorm_fwd(in[0].ptr, out->ptr, in[1].ptr, in[2].ptr, in[3].ptr,
                                       in[4].ptr, n->p.bn.eps, xs->d[0], xs->d[1],
                                       dims_prod(xs, 2, xs->ndim), s));
        return EGC_OK;
    }
    case EGC_OP_RESHAPE:
        EGC_TRY(expect_numel(n, &in[0].shape, ne, "X"));
        if (ne && in[0].ptr != out->ptr)
            EGC_CUDA(cudaMemcpyAsync(out->ptr, in[0].ptr, (size_t)ne * sizeof(float),
                                     cudaMemcpyDeviceToDevice, c->stream));
        return EGC_OK;
    case EGC_OP_CONCAT: {
        int axis = 0;
        int64_t outer, inner, off = 0, ctot;
        EGC_TRY(concat_geom(n, in, out, &axis, &outer, &inner));
        ctot = out->shape.d[axis];
        for (int i = 0; i < n->n_in; i++) {
            int64_t ci = in[i].shape.d[axis];
            int64_t dims[2] = {outer, ci * inner}, sst[2] = {ci * inner, 1}, dst[2] = {ctot * inner, 1};
            EGC_KERNEL(egc_k_strided_copy(in[i].ptr, 0, sst, out->ptr, off * inner, dst, dims, 2, 0, s));
            off += ci;
        }
        return EGC_OK;
    }
    case EGC_OP_SLICE: {
        int64_t sst[EGC_MAX_DIMS], dst[EGC_MAX_DIMS], off;
        EGC_TRY(slice_strides(n, &in[0].shape, &out->shape, sst, &off));
        dense_strides(&out->shape, dst);
        EGC_KERNEL(egc_k_strided_copy(in[0].ptr, off, sst, out->ptr, 0, dst, out->shape.d,
                                      out->shape.ndim, 0, s));
        return EGC_OK;
    }
    case EGC_OP_PAD: {
        int64_t begin[EGC_MAX_DIMS];
        EGC_TRY(pad_geom(n, &in[0].shape, &out->shape, begin));
        EGC_KERNEL(egc_k_pad_fwd(in[0].ptr, in[0].shape.d, out->ptr, out->shape.d, begin,
                                 out->shape.ndim, n->p.pad.mode, n->p.pad.value, s));
        return EGC_OK;
    }
    case EGC_OP_SOFTMAX: {
        int64_t outer, d, inner;
        EGC_TRY(expect_numel(n, &in[0].shape, ne, "X"));
        EGC_TRY(softmax_geom(n, &in[0].shape, &outer, &d, &inner));
        EGC_KERNEL(egc_k_softmax_fwd(in[0].ptr, out->ptr, outer, d, inner, s));
        return EGC_OK;
    }
    case EGC_OP_TRANSPOSE: {
        int64_t sst[EGC_MAX_DIMS], dst[EGC_MAX_DIMS];
        EGC_TRY(transpose_strides(n, &in[0].shape, &out->shape, sst));
        dense_strides(&out->shape, dst);
        EGC_KERNEL(egc_k_strided_copy(in[0].ptr, 0, sst, out->ptr, 0, dst, out->shape.d,
                                      out->shape.ndim, 0, s));
        return EGC_OK;
    }
    default:
        return EGC_FAIL(EGC_E_UNSUPPORTED, "node %s: op %s has no CUDA forward", n->name,
                        egc_op_name(n->op));
    }
}

/* ------------------------------------------------------------------ backward */

static egc_status conv_backward(cuda_ctx *c, void *state, const egc_graph *g, const egc_node *n,
                                const egc_view *in, const egc_view *out, const egc_view *dout,
                                const egc_view *din)
{
    if ((n->n_in > 1 && din[1].ptr) || (n->n_in > 2 && din[2].ptr))
        return EGC_FAIL(EGC_E_UNSUPPORTED,
                        "node %s (Conv): gradients with respect to weights or bias are not "
                        "computed (activation backward only)",
                        n->name);
    if (!din[0].ptr) return EGC_OK;
    cuda_plan *pl = NULL;
    conv_plan *cp = NULL;
    EGC_TRY(conv_of(state, g, n, in, out, &pl, &cp));
    if (cp->half)
        return EGC_FAIL(EGC_E_UNSUPPORTED,
                        "node %s (Conv): prepared for the fp16 forward of a mixed plan's trunk, "
                        "which has no backward", n->name);
    if (!cp->bwd_ok)
        return EGC_FAIL(EGC_E_UNSUPPORTED,
                        "node %s (Conv): cuDNN offers no deterministic backward-data algorithm "
                        "for this configuration",
                        n->name);
    const float one = 1.0f, zero = 0.0f;
    char *ws = (char *)pl->ws;
    void *cws = ws ? ws + cp->ws_off : NULL;
    if (!cp->explicit_pad) { /* beta = 1: accumulate into dx */
        EGC_CUDNN(cudnnConvolutionBackwardData(c->dnn, &one, cp->wd, in[1].ptr, cp->yd, dout->ptr,
                                               cp->cdb, cp->bwd_algo, cws, cp->bwd_ws, &one, cp->xd,
                                               din[0].ptr));
        return EGC_OK;
    }
    const egc_conv_params *p = &n->p.conv;
    int64_t begin[4] = {0, 0, p->pt, p->pl};
    EGC_CUDNN(cudnnConvolutionBackwardData(c->dnn, &one, cp->wd, in[1].ptr, cp->yd, dout->ptr,
                                           cp->cdb, cp->bwd_algo, cws, cp->bwd_ws, &zero, cp->xd,
                                           ws));
    EGC_KERNEL(egc_k_pad_bwd((const float *)ws, cp->xps.d, din[0].ptr, cp->xs.d, begin, 4, 0,
                             c->stream));
    return EGC_OK;
}

static egc_status gemm_backward(cuda_ctx *c, const cuda_plan *pl, const egc_node *n,
                                const egc_view *in, const egc_view *dout, const egc_view *din)
{
    const egc_gemm_params *p = &n->p.gemm;
    EGC_TRY(expect_rank(n, &in[0], "A", 2));
    EGC_TRY(expect_rank(n, &in[1], "B", 2));
    int ta = p->trans_a, tb = p->trans_b;
    int64_t M = ta ? in[0].shape.d[1] : in[0].shape.d[0];
    int64_t K = ta ? in[0].shape.d[0] : in[0].shape.d[1];
    int64_t N = tb ? in[1].shape.d[0] : in[1].shape.d[1];
    int64_t lda = in[0].shape.d[1], ldb = in[1].shape.d[1];
    EGC_TRY(expect_numel(n, &dout->shape, M * N, "dY"));
    EGC_TRY(blas_mode(c, pl));
    const float *dy = dout->ptr;
    if (din[0].ptr) {
        if (!ta) /* dA[M,K] += alpha dY op(B)^T */
            EGC_TRY(rm_gemm(c, n, 0, !tb, M, K, N, p->alpha, dy, N, 0, in[1].ptr, ldb, 0, 1.0f,
                            din[0].ptr, K, 0, 1));
        else /* dA^T[K,M] += alpha op(B) dY^T */
            EGC_TRY(rm_gemm(c, n, tb, 1, K, M, N, p->alpha, in[1].ptr, ldb, 0, dy, N, 0, 1.0f,
                            din[0].ptr, M, 0, 1));
    }
    if (din[1].ptr) {
        if (!tb) /* dB[K,N] += alpha op(A)^T dY */
            EGC_TRY(rm_gemm(c, n, !ta, 0, K, N, M, p->alpha, in[0].ptr, lda, 0, dy, N, 0, 1.0f,
                            din[1].ptr, N, 0, 1));
        else /* dB^T[N,K] += alpha dY^T op(A) */
            EGC_TRY(rm_gemm(c, n, 1, ta, N, K, M, p->alpha, dy, N, 0, in[0].ptr, lda, 0, 1.0f,
                            din[1].ptr, K, 0, 1));
    }
    if (n->n_in > 2 && din[2].ptr && in[2].ptr) {
        /* dC += beta * dY summed over C's broadcast dims */
        int64_t cs[2], os[2] = {M, N};
        if (in[2].shape.ndim > 2)
            return EGC_FAIL(EGC_E_SHAPE, "node %s (Gemm): C has more than 2 dims", n->name);
        right_align(&in[2].shape, 2, cs);
        EGC_KERNEL(egc_k_binary_bwd(EGC_K_ADD, 1, dy, os, dy, cs, dy, os, 2, p->beta, din[2].ptr,
                                    c->stream));
    }
    return EGC_OK;
}

static egc_status matmul_backward(cuda_ctx *c, const cuda_plan *pl, const egc_node *n,
                                  const egc_view *in, const egc_view *out, const egc_view *dout,
                                  const egc_view *din)
{
    matmul_geom m;
    EGC_TRY(matmul_geom_of(n, in, out, &m));
    EGC_TRY(blas_mode(c, pl));
    const float *A = in[0].ptr, *B = in[1].ptr, *dY = dout->ptr;
    float *dA = din[0].ptr, *dB = din[1].ptr;
    int64_t M = m.M, N = m.N, K = m.K;
    if (m.PB == 1) { /* A's batch folded into rows */
        if (dA) /* dA[P*M,K] += dY B^T */
            EGC_TRY(rm_gemm(c, n, 0, 1, m.P * M, K, N, 1.0f, dY, N, 0, B, N, 0, 1.0f, dA, K, 0, 1));
        if (dB) /* dB[K,N] += A^T dY over all rows */
            EGC_TRY(rm_gemm(c, n, 1, 0, K, N, m.P * M, 1.0f, A, K, 0, dY, N, 0, 1.0f, dB, N, 0, 1));
        return EGC_OK;
    }
    int fa = batch_full(&m, m.ab), fb = batch_full(&m, m.bb);
    if (dA) {
        if (fa && (fb || m.PB == 1)) /* one product per batch, no shared dA */
            EGC_TRY(rm_gemm(c, n, 0, 1, M, K, N, 1.0f, dY, N, M * N, B, N, fb ? K * N : 0, 1.0f, dA,
                            K, M * K, m.P));
        else /* dA is shared by several batches: sum them in order */
            for (int64_t p = 0; p < m.P; p++) {
                int64_t oa, ob;
                matmul_offsets(&m, p, &oa, &ob);
                EGC_TRY(rm_gemm(c, n, 0, 1, M, K, N, 1.0f, dY + p * M * N, N, 0, B + ob, N, 0, 1.0f,
                                dA + oa, K, 0, 1));
            }
    }
    if (dB) {
        if (fb && (fa || m.PA == 1))
            EGC_TRY(rm_gemm(c, n, 1, 0, K, N, M, 1.0f, A, K, fa ? M * K : 0, dY, N, M * N, 1.0f, dB,
                            N, K * N, m.P));
        else
            for (int64_t p = 0; p < m.P; p++) {
                int64_t oa, ob;
                matmul_offsets(&m, p, &oa, &ob);
                EGC_TRY(rm_gemm(c, n, 1, 0, K, N, M, 1.0f, A + oa, K, 0, dY + p * M * N, N, 0, 1.0f,
                                dB + ob, N, 0, 1));
            }
    }
    return EGC_OK;
}

static egc_status cu_op_backward(egc_backend *be, void *state, const egc_graph *g,
                                 const egc_node *n, const egc_view *in, const egc_view *out,
                                 const egc_view *dout, const egc_view *din)
{
    cuda_ctx *c = ctx_of(be);
    void *s = c->stream;
    EGC_TRY(use_device(c));
    cuda_plan *pl = (cuda_plan *)state;
    int64_t ne = numel(&out->shape);
    float *dx = din[0].ptr;
    if (n->op == EGC_OP_CLIP || n->op == EGC_OP_BATCHNORM)
        for (int i = 1; i < n->n_in; i++)
            if (din[i].ptr)
                return EGC_FAIL(EGC_E_UNSUPPORTED,
                                "node %s (%s): the gradient with respect to parameter input %d "
                                "is not computed",
                                n->name, egc_op_name(n->op), i);
    switch (n->op) {
    case EGC_OP_CONV:
        return conv_backward(c, state, g, n, in, out, dout, din);
    case EGC_OP_GEMM:
        return gemm_backward(c, pl, n, in, dout, din);
    case EGC_OP_MATMUL:
        return matmul_backward(c, pl, n, in, out, dout, din);
    case EGC_OP_RELU:
        if (dx) EGC_KERNEL(egc_k_relu_bwd(in[0].ptr, dout->ptr, dx, ne, s));
        return EGC_OK;
    case EGC_OP_CLIP:
        if (dx)
            EGC_KERNEL(egc_k_clip_bwd(in[0].ptr, dout->ptr, dx, n->p.clip.lo, n->p.clip.hi, ne, s));
        return EGC_OK;
    case EGC_OP_SIGMOID:
        if (dx) EGC_KERNEL(egc_k_sigmoid_bwd(out->ptr, dout->ptr, dx, ne, s));
        return EGC_OK;
    case EGC_OP_SQRT:
        if (dx) EGC_KERNEL(egc_k_sqrt_bwd(out->ptr, dout->ptr, dx, ne, s));
        return EGC_OK;
    case EGC_OP_ERF:
        if (dx) EGC_KERNEL(egc_k_erf_bwd(in[0].ptr, dout->ptr, dx, ne, s));
        return EGC_OK;
    case EGC_OP_EXP:
        if (dx) EGC_KERNEL(egc_k_exp_bwd(out->ptr, dout->ptr, dx, ne, s));
        return EGC_OK;
    case EGC_OP_LOG:
        if (dx) EGC_KERNEL(egc_k_log_bwd(in[0].ptr, dout->ptr, dx, ne, s));
        return EGC_OK;
    case EGC_OP_SOFTPLUS:
        if (dx) EGC_KERNEL(egc_k_softplus_bwd(in[0].ptr, dout->ptr, dx, ne, s));
        return EGC_OK;
    case EGC_OP_FAKE_QUANT:
        if (dx)
            EGC_KERNEL(egc_k_fake_quant_bwd(in[0].ptr, dout->ptr, dx, n->p.fq.scale,
                                            n->p.fq.zero, n->p.fq.qmin, n->p.fq.qmax, ne, s));
        return EGC_OK;
    case EGC_OP_ADD:
    case EGC_OP_SUB:
    case EGC_OP_MUL:
    case EGC_OP_DIV: {
        int64_t as[EGC_MAX_DIMS], bs[EGC_MAX_DIMS];
        EGC_TRY(binary_shapes(n, in, out, as, bs));
        for (int w = 0; w < 2; w++)
            if (din[w].ptr)
                EGC_KERNEL(egc_k_binary_bwd(binary_kop(n->op), w, in[0].ptr, as, in[1].ptr, bs,
                                            dout->ptr, out->shape.d, out->shape.ndim, 1.0f,
                                            din[w].ptr, s));
        return EGC_OK;
    }
    case EGC_OP_MAXPOOL: {
        if (!dx) return EGC_OK;
        egc_k_pool k;
        cuda_plan *p = NULL;
        int i = 0;
        EGC_TRY(plan_node(state, g, n, &p, &i));
        EGC_TRY(pool_desc(n, &in[0], out, &k));
        if ((size_t)ne * sizeof(int32_t) > p->ws_bytes)
            return EGC_FAIL(EGC_E_SHAPE,
                            "node %s (MaxPool): run shapes are larger than the prepared plan's",
                            n->name);
        EGC_KERNEL(egc_k_maxpool_bwd(in[0].ptr, dout->ptr, dx, (int32_t *)p->ws, &k, s));
        return EGC_OK;
    }
    case EGC_OP_AVGPOOL: {
        if (!dx) return EGC_OK;
        egc_k_pool k;
        EGC_TRY(pool_desc(n, &in[0], out, &k));
        EGC_KERNEL(egc_k_avgpool_bwd(dout->ptr, dx, &k, s));
        return EGC_OK;
    }
    case EGC_OP_GAP:
        if (dx)
            EGC_KERNEL(egc_k_gap_bwd(dout->ptr, dx, in[0].shape.d[0] * in[0].shape.d[1],
                                     dims_prod(&in[0].shape, 2, in[0].shape.ndim), s));
        return EGC_OK;
    case EGC_OP_BATCHNORM: {
        const egc_shape *xs = &in[0].shape;
        if (dx)
            EGC_KERNEL(egc_k_batchnorm_bwd(dout->ptr, dx, in[1].ptr, in[4].ptr, n->p.bn.eps,
                                           xs->d[0], xs->d[1], dims_prod(xs, 2, xs->ndim), s));
        return EGC_OK;
    }
    case EGC_OP_RESHAPE:
        if (dx) EGC_KERNEL(egc_k_accumulate(dx, dout->ptr, 1.0f, ne, s));
        return EGC_OK;
    case EGC_OP_CONCAT: {
        int axis = 0;
        int64_t outer, inner, off = 0, ctot;
        EGC_TRY(concat_geom(n, in, out, &axis, &outer, &inner));
        ctot = out->shape.d[axis];
        for (int i = 0; i < n->n_in; i++) {
            int64_t ci = in[i].shape.d[axis];
            int64_t dims[2] = {outer, ci * inner}, sst[2] = {ctot * inner, 1}, dst[2] = {ci * inner, 1};
            if (din[i].ptr)
                EGC_KERNEL(egc_k_strided_copy(dout->ptr, off * inner, sst, din[i].ptr, 0, dst, dims,
                                              2, 1, s));
            off += ci;
        }
        return EGC_OK;
    }
    case EGC_OP_SLICE: {
        if (!dx) return EGC_OK;
        int64_t sst[EGC_MAX_DIMS], dst[EGC_MAX_DIMS], off;
        EGC_TRY(slice_strides(n, &in[0].shape, &out->shape, sst, &off));
        dense_strides(&out->shape, dst);
        EGC_KERNEL(egc_k_strided_copy(dout->ptr, 0, dst, dx, off, sst, out->shape.d,
                                      out->shape.ndim, 1, s));
        return EGC_OK;
    }
    case EGC_OP_PAD: {
        if (!dx) return EGC_OK;
        int64_t begin[EGC_MAX_DIMS];
        EGC_TRY(pad_geom(n, &in[0].shape, &out->shape, begin));
        EGC_KERNEL(egc_k_pad_bwd(dout->ptr, out->shape.d, dx, in[0].shape.d, begin,
                                 out->shape.ndim, n->p.pad.mode, s));
        return EGC_OK;
    }
    case EGC_OP_SOFTMAX: {
        if (!dx) return EGC_OK;
        int64_t outer, d, inner;
        EGC_TRY(softmax_geom(n, &in[0].shape, &outer, &d, &inner));
        EGC_KERNEL(egc_k_softmax_bwd(out->ptr, dout->ptr, dx, outer, d, inner, s));
        return EGC_OK;
    }
    case EGC_OP_TRANSPOSE: {
        if (!dx) return EGC_OK;
        int64_t sst[EGC_MAX_DIMS], dst[EGC_MAX_DIMS];
        EGC_TRY(transpose_strides(n, &in[0].shape, &out->shape, sst));
        dense_strides(&out->shape, dst);
        EGC_KERNEL(egc_k_strided_copy(dout->ptr, 0, dst, dx, 0, sst, out->shape.d, out->shape.ndim,
                                      1, s));
        return EGC_OK;
    }
    default:
        return EGC_FAIL(EGC_E_UNSUPPORTED, "node %s: op %s has no CUDA backward", n->name,
                        egc_op_name(n->op));
    }
}

/* ------------------------------------------------------------------ recording (CUDA graphs) */

static egc_status cu_capture_begin(egc_backend *be, void *state)
{
    cuda_ctx *c = ctx_of(be);
    cuda_plan *pl = (cuda_plan *)state;
    if (!pl) return EGC_FAIL(EGC_E_INTERNAL, "CUDA graph recording without a plan");
    if (!c->graphs) return EGC_FAIL(EGC_E_UNSUPPORTED, "CUDA graphs switched off (EGC_CUDA_GRAPHS=0)");
    EGC_TRY(use_device(c));
    if (!c->blas_ws)
        return EGC_FAIL(EGC_E_UNSUPPORTED, "no explicit cuBLAS workspace (plan not made by "
                        "plan_prepare_ex)");
    if (pl->gexec) {
        (void)cudaGraphExecDestroy(pl->gexec);
        pl->gexec = NULL;
    }
    EGC_CUDA(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
    return EGC_OK;
}

static egc_status cu_capture_end(egc_backend *be, void *state, int *ok)
{
    cuda_ctx *c = ctx_of(be);
    cuda_plan *pl = (cuda_plan *)state;
    *ok = 0;
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(pl->graph_note, sizeof pl->graph_note, "stream capture failed: %s (%s)",
                 cudaGetErrorName(e), cudaGetErrorString(e));
        if (graph) (void)cudaGraphDestroy(graph);
        return EGC_FAIL(EGC_E_DEVICE, "%s", pl->graph_note);
    }
    e = cudaGraphInstantiate(&pl->gexec, graph, 0);
    (void)cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        pl->gexec = NULL;
        snprintf(pl->graph_note, sizeof pl->graph_note, "cudaGraphInstantiate failed: %s (%s)",
                 cudaGetErrorName(e), cudaGetErrorString(e));
        return EGC_FAIL(EGC_E_DEVICE, "%s", pl->graph_note);
    }
    *ok = 1;
    return EGC_OK;
}

static egc_status cu_replay(egc_backend *be, void *state)
{
    cuda_ctx *c = ctx_of(be);
    cuda_plan *pl = (cuda_plan *)state;
    if (!pl || !pl->gexec) return EGC_FAIL(EGC_E_INTERNAL, "CUDA graph replay without a recording");
    EGC_TRY(use_device(c));
    EGC_CUDA(cudaGraphLaunch(pl->gexec, c->stream));
    return EGC_OK;
}

/* ------------------------------------------------------------------ describe */

static const char *fwd_algo_name(cudnnConvolutionFwdAlgo_t a)
{
    switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "IMPLICIT_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "IMPLICIT_PRECOMP_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "DIRECT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "FFT_TILING";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    default: return "?";
    }
}

static const char *math_name(cudnnConvolutionDescriptor_t cd)
{
    cudnnMathType_t m = CUDNN_DEFAULT_MATH;
    if (!cd || cudnnGetConvolutionMathType(cd, &m) != CUDNN_STATUS_SUCCESS) return "?";
    switch (m) {
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor-op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor-op-conversion";
    case CUDNN_FMA_MATH: return "fma";
    default: return "?";
    }
}

static void cu_plan_describe(egc_backend *be, void *state, char *buf, size_t cap)
{
    (void)be;
    if (!buf || !cap) return;
    buf[0] = '\0';
    const cuda_plan *pl = (const cuda_plan *)state;
    if (!pl) return;
    const egc_graph *g = pl->g;
    size_t len = 0;
    egc_str_append(buf, cap, &len, "cuda plan: %s, tf32 %s, %d fp16 node%s, %d fused Relu%s, "
           "%d fp16 Conv+bias epilogue%s (%d with the residual Add), "
           "workspace %zu B, fp16 weights %zu B%s%s\n",
           pl->precision == CUDA_PREC_MIXED ? "mixed" : "fp32", pl->tf32 ? "on" : "off",
           pl->n_half, pl->n_half == 1 ? "" : "s", pl->n_fused, pl->n_fused == 1 ? "" : "s",
           pl->n_hf, pl->n_hf == 1 ? "" : "s", pl->n_zres,
           pl->ws_bytes, pl->w16_bytes, pl->graph_note[0] ? ", recording: " : "", pl->graph_note);
    for (int i = 0; i < pl->n_nodes; i++) {
        const egc_node *n = &g->nodes[i];
        const node_plan *np = pl->np ? &pl->np[i] : NULL;
        const int half = np && np->half;
        const int f16_out = is_f16(pl, n->out);
        egc_str_append(buf, cap, &len, "  %-28.28s %-18s %s", n->name, egc_op_name(n->op),
               half ? (f16_out ? "fp16 NHWC" : "fp16 NHWC -> fp32 NCHW") : "fp32 NCHW");
        if (n->op == EGC_OP_CONV && pl->conv[i].ready) {
            const conv_plan *cp = &pl->conv[i];
            egc_str_append(buf, cap, &len, ", algo %s (%s, %s), math %s, ws %zu B%s",
                   fwd_algo_name(cp->fwd_algo), cp->found ? "timed" : "heuristic",
                   cp->half ? "fp16" : "fp32", math_name(cp->cd), cp->fwd_ws,
                   cp->explicit_pad ? ", explicit pad" : "");
            if (cp->cpad)
                egc_str_append(buf, cap, &len, ", input channels %lld padded to %d",
                               (long long)cp->xs.d[1], cp->cpad);
            const int fused_call = cp->fused_api && !cp->fused_refused &&
                                   ((np && np->relu_fused) ||
                                    cp->fwd_algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);
            if (cp->hf) {
                egc_str_append(buf, cap, &len, ", +bias%s%s ", cp->zres ? "+residual" : "",
                               cp->hf_relu ? "+Relu" : "");
                if (cp->hf_kept)
                    egc_str_append(buf, cap, &len, "%s (the choice kept for this "
                                   "configuration: an earlier plan's, or the choice cache's)",
                                   cp->hf_state == 2   ? "in one cuDNN operation graph"
                                   : cp->hf_state == 1 ? "in one call (cudnnConvolutionBias"
                                                         "ActivationForward)"
                                                       : "in the epilogue kernel");
                else if (cp->hf_state == 2)
                    egc_str_append(buf, cap, &len, "in one cuDNN operation graph (engine %lld: "
                                   "%.3f ms vs kernel path %.3f ms, checked to %.1e)",
                                   (long long)cp->gf.engine, cp->gf_ms, cp->hf_ms[0],
                                   (double)cp->gf_err);
                else if (cp->hf_state == 1 && cp->hf_ms[0] > 0)
                    egc_str_append(buf, cap, &len, "in one call (cudnnConvolutionBiasActivation"
                                   "Forward: %.3f ms vs %.3f ms, checked to %.1e)",
                                   cp->hf_ms[1], cp->hf_ms[0], (double)cp->hf_err);
                else if (cp->hf_state == 1)
                    egc_str_append(buf, cap, &len, "in one call (cudnnConvolutionBiasActivation"
                                   "Forward: as asked, checked to %.1e)", (double)cp->hf_err);
                else if (cp->hf_state == 0)
                    egc_str_append(buf, cap, &len, "(path chosen at the first forward)");
                else if (cp->hf_status == HF_IDENTITY_ALGO)
                    egc_str_append(buf, cap, &len, "in the epilogue kernel (cuDNN's one call "
                                   "takes no identity activation with this algorithm)");
                else if (cp->hf_status == HF_NO_SCRATCH)
                    egc_str_append(buf, cap, &len, "in the epilogue kernel (no workspace for "
                                   "the check of the one call)");
                else if (cp->hf_status)
                    egc_str_append(buf, cap, &len, "in the epilogue kernel (cuDNN refused the "
                                   "one call: status %d)", cp->hf_status);
                else if (cp->hf_err > HF_TOL || cp->hf_err != cp->hf_err)
                    egc_str_append(buf, cap, &len, "in the epilogue kernel (the one call differed "
                                   "by %.1e)", (double)cp->hf_err);
                else if (cp->hf_ms[1] > 0)
                    egc_str_append(buf, cap, &len, "in the epilogue kernel (%.3f ms vs one call "
                                   "%.3f ms)", cp->hf_ms[0], cp->hf_ms[1]);
                else
                    egc_str_append(buf, cap, &len, "in the epilogue kernel");
                if (cp->gf_state == 1 && cp->hf_state != 2)
                    egc_str_append(buf, cap, &len, "; cuDNN graph (engine %lld) %.3f ms",
                                   (long long)cp->gf.engine, cp->gf_ms);
                else if (cp->gf_state == -1)
                    egc_str_append(buf, cap, &len, "; cuDNN graph not built (%s: status %d; "
                                   "%d engine configurations, %d left out for their numerics, "
                                   "%d plans tried, smallest workspace over the cap %lld B)",
                                   cp->gf.stage ? cp->gf.stage : "?", cp->gf.status,
                                   cp->gf.engines, cp->gf.skipped, cp->gf.tried,
                                   (long long)cp->gf.ws_over);
                else if (cp->gf_state == -2)
                    egc_str_append(buf, cap, &len, "; cuDNN graph failed to run");
                else if (cp->gf_state == -3)
                    egc_str_append(buf, cap, &len, "; cuDNN graph differed by %.1e",
                                   (double)cp->gf_err);
            } else if (np && np->relu_fused)
                egc_str_append(buf, cap, &len, ", +bias+Relu %s",
                       cp->half ? "in the epilogue kernel"
                       : fused_call ? "in one call (cudnnConvolutionBiasActivationForward)"
                       : "after the convolution");
            else if (fused_call)
                egc_str_append(buf, cap, &len, ", +bias in one call (cudnnConvolutionBiasActivationForward)");
            if (cp->fused_refused)
                egc_str_append(buf, cap, &len, " (cuDNN refused the fused call: status %d)", cp->fused_status);
        } else if (np && np->relu_fused) {
            egc_str_append(buf, cap, &len, ", +Relu fused");
        }
        if (np && np->relu_pass) egc_str_append(buf, cap, &len, ", applied by its producer");
        if (np && np->add_passive) egc_str_append(buf, cap, &len, ", done by the Conv of input 0");
        egc_str_append(buf, cap, &len, "\n");
    }
}

/* ------------------------------------------------------------------ create / destroy */

static void cu_destroy(egc_backend *be)
{
    if (!be) return;
    cuda_ctx *c = ctx_of(be);
    if (c) {
        if (cudaSetDevice(c->device) == cudaSuccess && c->stream)
            (void)cudaStreamSynchronize(c->stream);
        if (c->blas) (void)cublasDestroy(c->blas);
        if (c->blas_ws) (void)cudaFree(c->blas_ws);
        if (c->dnn) (void)cudnnDestroy(c->dnn);
        if (c->stream) (void)cudaStreamDestroy(c->stream);
        free(c->allocs);
        free(c);
    }
    free(be);
}

egc_status egc_cuda_host_alloc(int device, size_t bytes, void **p)
{
    *p = NULL;
    int cur = -1;
    if (cudaGetDevice(&cur) != cudaSuccess) {
        (void)cudaGetLastError();
        cur = -1;
    }
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess) e = cudaHostAlloc(p, bytes, cudaHostAllocPortable);
    if (cur >= 0 && cur != device) (void)cudaSetDevice(cur); /* the caller's device again */
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        *p = NULL;
        return EGC_FAIL(EGC_E_DEVICE, "page-locked host memory of %zu bytes: %s (%s)", bytes,
                        cudaGetErrorName(e), cudaGetErrorString(e));
    }
    return EGC_OK;
}

void egc_cuda_host_free(void *p)
{
    if (p) (void)cudaFreeHost(p);
}

egc_status egc_cuda_device_count(int *count)
{
    *count = 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return EGC_FAIL(EGC_E_DEVICE, "no usable CUDA driver or device: %s (%s)",
                        cudaGetErrorName(e), cudaGetErrorString(e));
    }
    *count = n;
    return EGC_OK;
}

/* The choice-memo key's device entry: a hash of what the timed choices depend on besides
 * the configuration (the device model, its SM count and memory, the cuDNN, CUDA runtime and
 * driver versions), so that kept choices, in the choice cache too, only serve the same
 * hardware and software. */
static int64_t device_tag(const struct cudaDeviceProp *prop)
{
    int rt = 0, drv = 0;
    if (cudaRuntimeGetVersion(&rt) != cudaSuccess) rt = -1;
    if (cudaDriverGetVersion(&drv) != cudaSuccess) drv = -1;
    (void)cudaGetLastError();
    char s[512];
    int n = snprintf(s, sizeof s, "%.256s|%d.%d|%d|%zu|%zu|%d|%d", prop->name, prop->major,
                     prop->minor, prop->multiProcessorCount, (size_t)prop->totalGlobalMem,
                     (size_t)cudnnGetVersion(), rt, drv);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof s ? (size_t)n : sizeof s - 1;
    return (int64_t)(egc_fnv1a(s, len) & 0x7fffffffffffffffULL);
}

static int env_tf32_default(void)
{
    const char *v = getenv("EGC_CUDA_TF32");
    return !(v && (strcmp(v, "0") == 0 || strcmp(v, "off") == 0 || strcmp(v, "OFF") == 0));
}

egc_status egc_cuda_backend_create(int device, egc_backend **out)
{
    *out = NULL;
    int count;
    EGC_TRY(egc_cuda_device_count(&count));
    if (count == 0) return EGC_FAIL(EGC_E_DEVICE, "cuda:%d: no CUDA device present", device);
    if (device < 0 || device >= count)
        return EGC_FAIL(EGC_E_DEVICE, "cuda:%d: no such device (%d CUDA device%s present)", device,
                        count, count == 1 ? "" : "s");
    egc_backend *be = NULL;
    cuda_ctx *c = NULL;
    egc_status st = EGC_OK;
    EGC_TRY(egc_calloc((void **)&be, 1, sizeof *be, "CUDA backend"));
    EGC_TRYG(st, egc_calloc((void **)&c, 1, sizeof *c, "CUDA context"), fail);
    be->ctx = c;
    c->device = device;
    c->blas_tf32 = -1;
    c->allow_tf32 = env_tf32_default();
    {
        const char *v = getenv("EGC_CUDA_CONV_FIND");
        c->conv_find = !(v && (strcmp(v, "0") == 0 || strcmp(v, "off") == 0));
    }
    c->ws_data = !env_off("EGC_CUDA_WS_DATA");
    c->fuse = !env_off("EGC_CUDA_FUSE");
    c->graphs = !env_off("EGC_CUDA_GRAPHS");
    {
        const char *v = getenv("EGC_CUDA_HALF_FUSED");
        c->hf_mode = !v ? -1 : !strcmp(v, "0") ? 0 : !strcmp(v, "1") ? 1 : -1;
        v = getenv("EGC_CUDA_GRAPH_API");
        c->graph_api = v && !strcmp(v, "1");
        v = getenv("EGC_CUDA_PAD_C");
        c->pad_c = !v ? 0 : !strcmp(v, "8") ? 8 : !strcmp(v, "4") ? 4 : 0;
    }
    snprintf(be->name, sizeof be->name, "cuda:%d", device);
    EGC_CUDA_G(st, cudaSetDevice(device), fail);
    struct cudaDeviceProp prop;
    EGC_CUDA_G(st, cudaGetDeviceProperties(&prop, device), fail);
    snprintf(be->device_name, sizeof be->device_name, "%.80s (sm_%d%d, %.1f GiB)", prop.name,
             prop.major, prop.minor, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    c->dev_tag = device_tag(&prop);
    EGC_CUDA_G(st, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), fail);
    EGC_CUDNN_G(st, cudnnCreate(&c->dnn), fail);
    EGC_CUDNN_G(st, cudnnSetStream(c->dnn, c->stream), fail);
    EGC_CUBLAS_G(st, cublasCreate(&c->blas), fail);
    EGC_CUBLAS_G(st, cublasSetStream(c->blas, c->stream), fail);
    be->alloc = cu_alloc;
    be->free = cu_free;
    be->upload = cu_upload;
    be->download = cu_download;
    be->fill = cu_fill;
    be->accumulate = cu_accumulate;
    be->plan_prepare = cu_plan_prepare;
    be->plan_release = cu_plan_release;
    be->op_forward = cu_op_forward;
    be->op_backward = cu_op_backward;
    be->sync = cu_sync;
    be->destroy = cu_destroy;
    be->bytes_in_use = cu_bytes_in_use;
    egc_cuda_methods_install(be);
    be->plan_prepare_ex = cu_plan_prepare_ex;
    be->plan_describe = cu_plan_describe;
    be->capture_begin = cu_capture_begin;
    be->capture_end = cu_capture_end;
    be->replay = cu_replay;
    *out = be;
    return EGC_OK;
fail:
    if (st == EGC_OK) st = EGC_E_INTERNAL;
    egc_error_prefix(st, "cuda:%d: ", device);
    cu_destroy(be);
    return st;
}

void *egc_cuda_stream(egc_backend *be)
{
    if (!be || be->destroy != cu_destroy) return NULL;
    return ctx_of(be)->stream;
}

/* For the method entries (cuda_methods.c): the backend's stream after making its device
 * current; NULL (with the error recorded) when the device cannot be made current. */
void *egc_cuda_backend_stream(egc_backend *be)
{
    cuda_ctx *c = ctx_of(be);
    if (use_device(c) != EGC_OK) return NULL;
    return (void *)c->stream;
}

egc_status egc_cuda_set_tf32(egc_backend *be, int allow)
{
    if (!be || be->destroy != cu_destroy)
        return EGC_FAIL(EGC_E_ARG, "egc_cuda_set_tf32: %s is not a CUDA backend",
                        be ? be->name : "(null)");
    ctx_of(be)->allow_tf32 = allow != 0;
    return EGC_OK;
}


egc_status egc_cuda_device_list(char *buf, size_t cap)
{
    if (!buf || !cap) return EGC_FAIL(EGC_E_ARG, "egc_cuda_device_list: no buffer");
    buf[0] = '\0';
    int count;
    EGC_TRY(egc_cuda_device_count(&count));
    if (count == 0) return EGC_FAIL(EGC_E_DEVICE, "no CUDA device present");
    size_t len = 0;
    for (int d = 0; d < count; d++) {
        struct cudaDeviceProp prop;
        cudaError_t e = cudaGetDeviceProperties(&prop, d);
        if (e != cudaSuccess) {
            egc_str_append(buf, cap, &len, "cuda:%d  (unavailable: %s)\n", d, cudaGetErrorString(e));
            continue;
        }
        egc_str_append(buf, cap, &len, "cuda:%d  %s (%.1f GiB, sm_%d%d, %d SMs)\n", d, prop.name,
               (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), prop.major, prop.minor,
               prop.multiProcessorCount);
    }
    return EGC_OK;
}

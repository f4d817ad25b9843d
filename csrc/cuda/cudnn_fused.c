/* cudnn_fused.c: conv + bias [+ z] [+ Relu] as one cuDNN operation graph (cudnn_fused.h).
 *
 * The graph: X, W -> ConvFwd -> T1 (virtual, fp32); T1 + B -> T2; [T2 + Z -> T3]; [Relu] -> Y.
 * Real tensors (unique ids 1..5: x, w, bias, z, y) are fp16 with NHWC strides (the filter
 * KRSC, the bias [1,k,1,1]); the virtual intermediates are fp32, as is the compute type. */
#include <stdbool.h>
#include <string.h>

#include "cuda/cudnn_fused.h"

enum { UID_X = 1, UID_W = 2, UID_B = 3, UID_Z = 4, UID_Y = 5, UID_T = 100 };

/* The most engine configurations read per heuristics mode, and plans tried in all (each can
 * compile a kernel at the first forward). */
#define MAX_CFGS 16
#define MAX_TRIES 3

/* Runs a cuDNN call; on failure records the status and the stage and jumps to `fail`. */
#define BE(stage_, expr)                                                                   \
    do {                                                                                   \
        cudnnStatus_t be_s_ = (expr);                                                      \
        if (be_s_ != CUDNN_STATUS_SUCCESS) {                                               \
            st = be_s_;                                                                    \
            f->stage = (stage_);                                                           \
            goto fail;                                                                     \
        }                                                                                  \
    } while (0)

/* cudnnBackendSetAttribute of one value (n values at v) while *s is still a success: a
 * chain of settings stops at the first failure, whose status stays in *s. */
static void set_attr(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a,
                     cudnnBackendAttributeType_t t, int64_t n, const void *v, cudnnStatus_t *s)
{
    if (*s == CUDNN_STATUS_SUCCESS) *s = cudnnBackendSetAttribute(d, a, t, n, v);
}

/* set_attr of a descriptor-valued attribute. */
static void set_desc(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a,
                     cudnnBackendDescriptor_t v, cudnnStatus_t *s)
{
    set_attr(d, a, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &v, s);
}

/* Finalizes d when *s is still a success. */
static void finalize(cudnnBackendDescriptor_t d, cudnnStatus_t *s)
{
    if (*s == CUDNN_STATUS_SUCCESS) *s = cudnnBackendFinalize(d);
}

/* A finalized tensor descriptor: dims d (NCHW order) with NHWC strides. */
static cudnnStatus_t tensor(int64_t uid, cudnnDataType_t dt, const int64_t d[4], bool virt,
                            cudnnBackendDescriptor_t *out)
{
    const int64_t str[4] = {d[1] * d[2] * d[3], 1, d[3] * d[1], d[1]};
    const int64_t align = 16;
    cudnnBackendDescriptor_t t = NULL;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR, &t);
    set_attr(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt, &s);
    set_attr(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, d, &s);
    set_attr(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, str, &s);
    set_attr(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, &s);
    set_attr(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, &s);
    set_attr(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt, &s);
    finalize(t, &s);
    if (s != CUDNN_STATUS_SUCCESS && t) {
        (void)cudnnBackendDestroyDescriptor(t);
        t = NULL;
    }
    *out = t;
    return s;
}

/* A finalized pointwise operation y = mode(x [, b]) (fp32 math, alphas 1); *pw_out is its
 * mode descriptor (NULL if it could not be made), *op_out the operation (NULL on failure). */
static cudnnStatus_t pointwise(cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x,
                               cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t y,
                               cudnnBackendDescriptor_t *pw_out, cudnnBackendDescriptor_t *op_out)
{
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    const float one = 1.0f;
    cudnnBackendDescriptor_t pw = NULL, op = NULL;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw);
    set_attr(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, &s);
    set_attr(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, &s);
    finalize(pw, &s);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, &op);
    set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw, &s);
    set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x, &s);
    if (b) set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b, &s);
    set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y, &s);
    set_attr(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one, &s);
    if (b) set_attr(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one, &s);
    finalize(op, &s);
    if (s != CUDNN_STATUS_SUCCESS) {
        if (op) (void)cudnnBackendDestroyDescriptor(op);
        op = NULL;
    }
    *pw_out = pw;
    *op_out = op;
    return s;
}

int egc_cudnn_fused_build(cudnnHandle_t h, const egc_cudnn_fused_geom *g, int64_t ws_cap,
                          egc_cudnn_fused *f)
{
    memset(f, 0, sizeof *f);
    f->engine = -1;
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    /* every descriptor made here, destroyed at the end (the plan is kept) */
    cudnnBackendDescriptor_t d[24];
    int nd = 0;
    cudnnBackendDescriptor_t cfg[MAX_CFGS];
    int64_t ncfg = 0;
    memset(d, 0, sizeof d);
    memset(cfg, 0, sizeof cfg);
#define KEEP(desc) (d[nd++] = (desc))
    const int64_t xd[4] = {g->n, g->c, g->h, g->w}, wd[4] = {g->k, g->wc, g->r, g->s},
                  yd[4] = {g->n, g->k, g->oh, g->ow}, bd[4] = {1, g->k, 1, 1};
    cudnnBackendDescriptor_t X, W, B, Z = NULL, Y, T[3] = {NULL, NULL, NULL};
    BE("tensor x", tensor(UID_X, CUDNN_DATA_HALF, xd, false, &X));
    KEEP(X);
    BE("tensor w", tensor(UID_W, CUDNN_DATA_HALF, wd, false, &W));
    KEEP(W);
    BE("tensor bias", tensor(UID_B, CUDNN_DATA_HALF, bd, false, &B));
    KEEP(B);
    if (g->has_z) {
        BE("tensor z", tensor(UID_Z, CUDNN_DATA_HALF, yd, false, &Z));
        KEEP(Z);
    }
    BE("tensor y", tensor(UID_Y, CUDNN_DATA_HALF, yd, false, &Y));
    KEEP(Y);
    /* the intermediates: conv out, + bias, + z (the last epilogue step writes Y) */
    int nsteps = 1 + (g->has_z ? 1 : 0) + (g->relu ? 1 : 0); /* pointwise ops */
    for (int i = 0; i < nsteps; i++) {
        BE("virtual tensor", tensor(UID_T + i, CUDNN_DATA_FLOAT, yd, true, &T[i]));
        KEEP(T[i]);
    }
    /* the convolution */
    cudnnBackendDescriptor_t conv = NULL, fprop = NULL;
    {
        const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
        const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
        const int64_t dims = 2;
        const float alpha = 1.0f, beta = 0.0f;
        BE("convolution", cudnnBackendCreateDescriptor(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv));
        KEEP(conv);
        cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
        set_attr(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp, &s);
        set_attr(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode, &s);
        set_attr(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims, &s);
        set_attr(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, g->pad, &s);
        set_attr(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, g->pad, &s);
        set_attr(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, g->dil, &s);
        set_attr(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, g->stride, &s);
        finalize(conv, &s);
        BE("convolution", s);
        BE("convolution op", cudnnBackendCreateDescriptor(
                                 CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, &fprop));
        KEEP(fprop);
        set_desc(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, X, &s);
        set_desc(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, W, &s);
        set_desc(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, T[0], &s);
        set_desc(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv, &s);
        set_attr(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha, &s);
        set_attr(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta, &s);
        finalize(fprop, &s);
        BE("convolution op", s);
    }
    /* the epilogue: + bias, [+ z], [Relu]; step i reads T[i] and writes T[i+1], the last Y */
    cudnnBackendDescriptor_t ops[4];
    int nops = 0;
    ops[nops++] = fprop;
    {
        const struct {
            int on;
            cudnnPointwiseMode_t mode;
            cudnnBackendDescriptor_t operand;
            const char *stage;
        } steps[3] = {{1, CUDNN_POINTWISE_ADD, B, "bias add"},
                      {g->has_z, CUDNN_POINTWISE_ADD, Z, "residual add"},
                      {g->relu, CUDNN_POINTWISE_RELU_FWD, NULL, "relu"}};
        int step = 0;
        for (int k = 0; k < 3; k++) {
            if (!steps[k].on) continue;
            cudnnBackendDescriptor_t pw = NULL, op = NULL;
            cudnnBackendDescriptor_t out = step + 1 < nsteps ? T[step + 1] : Y;
            cudnnStatus_t s = pointwise(steps[k].mode, T[step], steps[k].operand, out, &pw, &op);
            if (pw) KEEP(pw);
            BE(steps[k].stage, s);
            KEEP(op);
            ops[nops++] = op;
            step++;
        }
    }
    /* the graph, then per heuristics mode (A, then the fallback list) its engine
     * configurations: the first plan that builds, fits and keeps fp32 accumulation */
    cudnnBackendDescriptor_t graph = NULL;
    BE("operation graph", cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &graph));
    KEEP(graph);
    {
        cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
        set_attr(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, nops, ops, &s);
        set_attr(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h, &s);
        finalize(graph, &s);
        BE("operation graph", s);
    }
    const cudnnBackendHeurMode_t modes[2] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
    for (int mi = 0; mi < 2 && !f->plan; mi++) {
        /* fresh configuration descriptors for each mode's results */
        for (int i = 0; i < MAX_CFGS; i++) {
            if (cfg[i]) (void)cudnnBackendDestroyDescriptor(cfg[i]);
            cfg[i] = NULL;
        }
        for (int i = 0; i < MAX_CFGS; i++)
            BE("engine configurations",
               cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfg[i]));
        cudnnBackendDescriptor_t heur = NULL;
        BE("heuristics", cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur));
        KEEP(heur);
        cudnnStatus_t hs = CUDNN_STATUS_SUCCESS;
        set_desc(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph, &hs);
        set_attr(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &modes[mi], &hs);
        finalize(heur, &hs);
        ncfg = 0;
        if (hs == CUDNN_STATUS_SUCCESS)
            hs = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, MAX_CFGS, &ncfg, cfg);
        if (hs != CUDNN_STATUS_SUCCESS) { /* this mode offers nothing: the next one */
            if (!f->heur_status) f->heur_status = (int)hs;
            continue;
        }
        int n = (int)(ncfg < MAX_CFGS ? ncfg : MAX_CFGS);
        f->engines += n;
        for (int i = 0; i < n && f->tried < MAX_TRIES; i++) {
            /* the engine: its global index and numerical notes (no FFT, no reduced-precision
             * accumulation, no down-converted inputs) */
            int64_t idx = -1, cnt = 0;
            cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
            int64_t nn = 0;
            cudnnBackendDescriptor_t eng = NULL;
            if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng) ==
                    CUDNN_STATUS_SUCCESS &&
                cudnnBackendGetAttribute(cfg[i], CUDNN_ATTR_ENGINECFG_ENGINE,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cnt, &eng) ==
                    CUDNN_STATUS_SUCCESS) {
                (void)cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_GLOBAL_INDEX,
                                               CUDNN_TYPE_INT64, 1, &cnt, &idx);
                if (cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                             CUDNN_TYPE_NUMERICAL_NOTE,
                                             CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &nn, notes) !=
                    CUDNN_STATUS_SUCCESS)
                    nn = 0;
            }
            if (eng) (void)cudnnBackendDestroyDescriptor(eng);
            int skip = 0;
            for (int64_t k = 0; k < nn && k < CUDNN_NUMERICAL_NOTE_TYPE_COUNT; k++)
                skip |= notes[k] == CUDNN_NUMERICAL_NOTE_FFT ||
                        notes[k] == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION ||
                        notes[k] == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS ||
                        notes[k] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC;
            if (skip) {
                f->skipped++;
                continue;
            }
            f->tried++;
            cudnnBackendDescriptor_t plan = NULL;
            cudnnStatus_t ps = cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR,
                                                            &plan);
            set_attr(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h, &ps);
            set_desc(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg[i], &ps);
            finalize(plan, &ps);
            int64_t ws = 0;
            if (ps == CUDNN_STATUS_SUCCESS)
                ps = cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                              CUDNN_TYPE_INT64, 1, &cnt, &ws);
            if (ps == CUDNN_STATUS_SUCCESS && ws >= 0 && ws <= ws_cap) {
                f->plan = plan;
                f->ws_bytes = ws;
                f->engine = idx;
                break;
            }
            if (ps != CUDNN_STATUS_SUCCESS) f->last_status = (int)ps;
            else if (!f->ws_over || ws < f->ws_over) f->ws_over = ws;
            if (plan) (void)cudnnBackendDestroyDescriptor(plan);
        }
    }
    if (f->plan) {
        st = CUDNN_STATUS_SUCCESS;
        f->stage = NULL;
    } else if (!f->engines && f->heur_status) {
        st = (cudnnStatus_t)f->heur_status;
        f->stage = "heuristics";
    } else {
        st = f->last_status ? (cudnnStatus_t)f->last_status : CUDNN_STATUS_NOT_SUPPORTED;
        f->stage = f->ws_over ? "no plan within the workspace" : "no engine built a plan";
    }
fail:
    f->status = (int)st;
    for (int i = 0; i < MAX_CFGS; i++)
        if (cfg[i]) (void)cudnnBackendDestroyDescriptor(cfg[i]);
    for (int i = nd - 1; i >= 0; i--)
        if (d[i]) (void)cudnnBackendDestroyDescriptor(d[i]);
#undef KEEP
    return (int)st;
}

int egc_cudnn_fused_run(cudnnHandle_t h, egc_cudnn_fused *f, const void *x, const void *w,
                        const void *bias, const void *z, void *y, void *ws)
{
    if (!f->plan) return (int)CUDNN_STATUS_NOT_INITIALIZED;
    const void *p[6] = {x, w, bias, z, y, ws};
    if (f->pack && memcmp(p, f->ptr, sizeof p) != 0) {
        (void)cudnnBackendDestroyDescriptor(f->pack);
        f->pack = NULL;
    }
    if (!f->pack) {
        int64_t uids[5] = {UID_X, UID_W, UID_B, UID_Y, UID_Z};
        void *ptrs[5] = {(void *)x, (void *)w, (void *)bias, y, (void *)z};
        int64_t n = z ? 5 : 4;
        cudnnBackendDescriptor_t pk = NULL;
        cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pk);
        set_attr(pk, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids, &s);
        set_attr(pk, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs, &s);
        set_attr(pk, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws, &s);
        finalize(pk, &s);
        if (s != CUDNN_STATUS_SUCCESS) {
            if (pk) (void)cudnnBackendDestroyDescriptor(pk);
            return (int)s;
        }
        f->pack = pk;
        memcpy(f->ptr, p, sizeof p);
    }
    return (int)cudnnBackendExecute(h, f->plan, f->pack);
}

void egc_cudnn_fused_destroy(egc_cudnn_fused *f)
{
    if (!f) return;
    if (f->pack) (void)cudnnBackendDestroyDescriptor(f->pack);
    if (f->plan) (void)cudnnBackendDestroyDescriptor(f->plan);
    memset(f, 0, sizeof *f);
    f->engine = -1;
}

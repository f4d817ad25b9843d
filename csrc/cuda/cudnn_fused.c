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
#define MAX_TRIES 8

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

/* A finalized tensor descriptor: dims d (NCHW order) with NHWC strides. */
static cudnnStatus_t tensor(int64_t uid, cudnnDataType_t dt, const int64_t d[4], bool virt,
                            cudnnBackendDescriptor_t *out)
{
    const int64_t str[4] = {d[1] * d[2] * d[3], 1, d[3] * d[1], d[1]};
    const int64_t align = 16;
    cudnnBackendDescriptor_t t = NULL;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR, &t);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, d);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, str);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1,
                                     &align);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(t);
    if (s != CUDNN_STATUS_SUCCESS && t) {
        (void)cudnnBackendDestroyDescriptor(t);
        t = NULL;
    }
    *out = t;
    return s;
}

/* A finalized pointwise operation y = mode(x [, b]) (fp32 math, alphas 1). */
static cudnnStatus_t pointwise(cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x,
                               cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t y,
                               cudnnBackendDescriptor_t *pw_out, cudnnBackendDescriptor_t *op_out)
{
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    const float one = 1.0f;
    cudnnBackendDescriptor_t pw = NULL, op = NULL;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1,
                                     &mode);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1,
                                     &prec);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(pw);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, &op);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    if (s == CUDNN_STATUS_SUCCESS && b)
        s = cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1,
                                     &one);
    if (s == CUDNN_STATUS_SUCCESS && b)
        s = cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1,
                                     &one);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(op);
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
        BE("convolution", cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE,
                                                   CUDNN_TYPE_DATA_TYPE, 1, &comp));
        BE("convolution", cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE,
                                                   CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode));
        BE("convolution", cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS,
                                                   CUDNN_TYPE_INT64, 1, &dims));
        BE("convolution", cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS,
                                                   CUDNN_TYPE_INT64, 2, g->pad));
        BE("convolution", cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS,
                                                   CUDNN_TYPE_INT64, 2, g->pad));
        BE("convolution", cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS,
                                                   CUDNN_TYPE_INT64, 2, g->dil));
        BE("convolution", cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES,
                                                   CUDNN_TYPE_INT64, 2, g->stride));
        BE("convolution", cudnnBackendFinalize(conv));
        BE("convolution op", cudnnBackendCreateDescriptor(
                                 CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, &fprop));
        KEEP(fprop);
        BE("convolution op", cudnnBackendSetAttribute(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &X));
        BE("convolution op", cudnnBackendSetAttribute(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &W));
        BE("convolution op", cudnnBackendSetAttribute(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &T[0]));
        BE("convolution op", cudnnBackendSetAttribute(fprop,
                                                      CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv));
        BE("convolution op", cudnnBackendSetAttribute(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                                                      CUDNN_TYPE_FLOAT, 1, &alpha));
        BE("convolution op", cudnnBackendSetAttribute(fprop, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
                                                      CUDNN_TYPE_FLOAT, 1, &beta));
        BE("convolution op", cudnnBackendFinalize(fprop));
    }
    /* the epilogue: + bias, [+ z], [Relu]; step i reads T[i], writes T[i+1] or Y */
    cudnnBackendDescriptor_t ops[4];
    int nops = 0;
    ops[nops++] = fprop;
    {
        int step = 0;
        cudnnBackendDescriptor_t pw = NULL, op = NULL;
        cudnnBackendDescriptor_t out = step + 1 < nsteps ? T[step + 1] : Y;
        st = pointwise(CUDNN_POINTWISE_ADD, T[step], B, out, &pw, &op);
        if (pw) KEEP(pw);
        if (st != CUDNN_STATUS_SUCCESS) {
            f->stage = "bias add";
            goto fail;
        }
        KEEP(op);
        ops[nops++] = op;
        step++;
        if (g->has_z) {
            out = step + 1 < nsteps ? T[step + 1] : Y;
            st = pointwise(CUDNN_POINTWISE_ADD, T[step], Z, out, &pw, &op);
            if (pw) KEEP(pw);
            if (st != CUDNN_STATUS_SUCCESS) {
                f->stage = "residual add";
                goto fail;
            }
            KEEP(op);
            ops[nops++] = op;
            step++;
        }
        if (g->relu) {
            st = pointwise(CUDNN_POINTWISE_RELU_FWD, T[step], NULL, Y, &pw, &op);
            if (pw) KEEP(pw);
            if (st != CUDNN_STATUS_SUCCESS) {
                f->stage = "relu";
                goto fail;
            }
            KEEP(op);
            ops[nops++] = op;
        }
    }
    /* the graph, then per heuristics mode (A, then the fallback list) its engine
     * configurations: the first plan that builds, fits and keeps fp32 accumulation */
    cudnnBackendDescriptor_t graph = NULL;
    BE("operation graph", cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &graph));
    KEEP(graph);
    BE("operation graph", cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS,
                                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, nops, ops));
    BE("operation graph", cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE,
                                                   CUDNN_TYPE_HANDLE, 1, &h));
    BE("operation graph", cudnnBackendFinalize(graph));
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
        BE("heuristics", cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph));
        BE("heuristics", cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE,
                                                  CUDNN_TYPE_HEUR_MODE, 1, &modes[mi]));
        BE("heuristics", cudnnBackendFinalize(heur));
        ncfg = 0;
        BE("engine configurations", cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                             CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                                             MAX_CFGS, &ncfg, cfg));
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
                        notes[k] == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS;
            if (skip) {
                f->skipped++;
                continue;
            }
            f->tried++;
            cudnnBackendDescriptor_t plan = NULL;
            cudnnStatus_t ps = cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR,
                                                            &plan);
            if (ps == CUDNN_STATUS_SUCCESS)
                ps = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE,
                                              CUDNN_TYPE_HANDLE, 1, &h);
            if (ps == CUDNN_STATUS_SUCCESS)
                ps = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg[i]);
            if (ps == CUDNN_STATUS_SUCCESS) ps = cudnnBackendFinalize(plan);
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
        if (s == CUDNN_STATUS_SUCCESS)
            s = cudnnBackendSetAttribute(pk, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n,
                                         uids);
        if (s == CUDNN_STATUS_SUCCESS)
            s = cudnnBackendSetAttribute(pk, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                         CUDNN_TYPE_VOID_PTR, n, ptrs);
        if (s == CUDNN_STATUS_SUCCESS)
            s = cudnnBackendSetAttribute(pk, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR,
                                         1, &ws);
        if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(pk);
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

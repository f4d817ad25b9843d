/* pad.cu: ONNX Pad (constant, reflect, edge; negative pads crop), forward and backward.
 * Also pads the input of a Conv with asymmetric pads (constant 0) for cuDNN.
 * Forward: one thread per output element maps each coordinate back to the input.
 * Backward: one thread per output element adds dy into the input element it read; in
 * constant mode every input element is read at most once (plain add), in reflect/edge mode
 * border elements are read several times (atomicAdd). */
#include "kernel_util.cuh"

namespace {

struct PadDesc {
    int nd;
    int64_t xd[EGC_K_MAX_DIMS], yd[EGC_K_MAX_DIMS], begin[EGC_K_MAX_DIMS];
};

/* Input coordinate read by output coordinate o along a dim of length n with pads begin/end,
 * or -1 (the constant). As in onnxruntime (and the CPU reference), negative pads first crop
 * the input and the padding then extends (edge) or mirrors (reflect) what is left. */
__device__ __forceinline__ int64_t src_coord(int64_t o, int64_t begin, int64_t end, int64_t n,
                                             int mode)
{
    int64_t crop0 = begin < 0 ? -begin : 0, crop1 = end < 0 ? -end : 0;
    int64_t kept = n - crop0 - crop1;
    int64_t i = o - (begin > 0 ? begin : 0); /* index into the kept part */
    if (i >= 0 && i < kept) return crop0 + i;
    if (mode == 0 || kept <= 0) return -1;
    if (mode == 2) return crop0 + (i < 0 ? 0 : kept - 1);
    if (kept == 1) return crop0;
    /* reflect without repeating the edge (period 2(kept-1)), like numpy for wide pads */
    int64_t period = 2 * (kept - 1);
    i %= period;
    if (i < 0) i += period;
    return crop0 + (i < kept ? i : period - i);
}

/* Offset in x read by output element i, or -1. */
__device__ __forceinline__ int64_t src_offset(const PadDesc &p, int64_t i, int mode)
{
    int64_t off = 0, stride = 1;
    for (int k = p.nd - 1; k >= 0; k--) {
        int64_t q = i / p.yd[k], o = i - q * p.yd[k];
        i = q;
        int64_t c = src_coord(o, p.begin[k], p.yd[k] - p.xd[k] - p.begin[k], p.xd[k], mode);
        if (c < 0) return -1;
        off += c * stride;
        stride *= p.xd[k];
    }
    return off;
}

__global__ void pad_fwd_kernel(const float *x, float *y, PadDesc p, int mode, float value,
                               int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        int64_t s = src_offset(p, i, mode);
        y[i] = s < 0 ? value : x[s];
    }
}

__global__ void pad_bwd_kernel(const float *dy, float *dx, PadDesc p, int mode, int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        int64_t s = src_offset(p, i, mode);
        if (s < 0) continue;
        if (mode == 0)
            dx[s] += dy[i];
        else
            atomicAdd(dx + s, dy[i]);
    }
}

int make_desc(const int64_t *xshape, const int64_t *yshape, const int64_t *begin, int ndim,
              PadDesc *p, int64_t *ny, int64_t *nx)
{
    if (ndim < 0 || ndim > EGC_K_MAX_DIMS) return -1;
    p->nd = ndim;
    *ny = 1;
    *nx = 1;
    for (int k = 0; k < ndim; k++) {
        p->xd[k] = xshape[k];
        p->yd[k] = yshape[k];
        p->begin[k] = begin[k];
        *ny *= yshape[k];
        *nx *= xshape[k];
    }
    return 0;
}

} // namespace

extern "C" int egc_k_pad_fwd(const float *x, const int64_t *xshape, float *y, const int64_t *yshape,
                             const int64_t *begin, int ndim, int mode, float value, void *stream)
{
    PadDesc p;
    int64_t ny, nx;
    if (make_desc(xshape, yshape, begin, ndim, &p, &ny, &nx) != 0) return (int)cudaErrorInvalidValue;
    if (ny <= 0) return 0;
    if (nx <= 0) mode = 0; /* nothing to reflect or repeat: constant */
    pad_fwd_kernel<<<egc_k_blocks(ny), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(x, y, p, mode,
                                                                                 value, ny);
    return egc_k_status();
}

extern "C" int egc_k_pad_bwd(const float *dy, const int64_t *yshape, float *dx,
                             const int64_t *xshape, const int64_t *begin, int ndim, int mode,
                             void *stream)
{
    PadDesc p;
    int64_t ny, nx;
    if (make_desc(xshape, yshape, begin, ndim, &p, &ny, &nx) != 0) return (int)cudaErrorInvalidValue;
    if (ny <= 0 || nx <= 0) return 0;
    pad_bwd_kernel<<<egc_k_blocks(ny), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(dy, dx, p, mode,
                                                                                 ny);
    return egc_k_status();
}

/* eltwise_binary.cu: numpy-broadcast Add/Sub/Mul/Div, forward and backward.
 *
 * The host side turns the shapes into element strides (0 on broadcast dims) and merges
 * adjacent dims whose strides agree for y, a and b, so [N,C,H,W] + [1,C,1,1] runs as
 * [N, C, H*W]. Backward splits the dims into those the target keeps and those it was
 * broadcast over; each target element sums its dims in a fixed order (one thread per
 * element when the sum is short, one block with a tree reduction when it is long), so the
 * result is deterministic. */
#include "kernel_util.cuh"

namespace {

struct Bcast {
    int nd;
    int64_t d[EGC_K_MAX_DIMS];
    int64_t sa[EGC_K_MAX_DIMS], sb[EGC_K_MAX_DIMS], sy[EGC_K_MAX_DIMS];
};

struct Split {
    int nk, nr;
    int64_t J, R;
    int64_t kd[EGC_K_MAX_DIMS], ky[EGC_K_MAX_DIMS], ka[EGC_K_MAX_DIMS], kb[EGC_K_MAX_DIMS];
    int64_t rd[EGC_K_MAX_DIMS], ry[EGC_K_MAX_DIMS], ra[EGC_K_MAX_DIMS], rb[EGC_K_MAX_DIMS];
};

__device__ __forceinline__ float apply(int op, float a, float b)
{
    switch (op) {
    case EGC_K_ADD: return a + b;
    case EGC_K_SUB: return a - b;
    case EGC_K_MUL: return a * b;
    default: return a / b;
    }
}

/* d(a op b)/d(which) * dy */
__device__ __forceinline__ float grad(int op, int which, float a, float b, float dy)
{
    switch (op) {
    case EGC_K_ADD: return dy;
    case EGC_K_SUB: return which ? -dy : dy;
    case EGC_K_MUL: return which ? dy * a : dy * b;
    default: return which ? -dy * a / (b * b) : dy / b;
    }
}

__global__ void binary_fwd_kernel(int op, const float *a, const float *b, float *y, Bcast bc,
                                  int64_t n)
{
    for (int64_t i = egc_k_tid(); i < n; i += egc_k_nthreads()) {
        int64_t r = i, oa = 0, ob = 0;
        for (int k = bc.nd - 1; k >= 0; k--) {
            int64_t q = r / bc.d[k], idx = r - q * bc.d[k];
            r = q;
            oa += idx * bc.sa[k];
            ob += idx * bc.sb[k];
        }
        y[i] = apply(op, a[oa], b[ob]);
    }
}

__device__ __forceinline__ void kept_offsets(const Split &s, int64_t j, int64_t *oy, int64_t *oa,
                                             int64_t *ob)
{
    int64_t y = 0, a = 0, b = 0;
    for (int k = s.nk - 1; k >= 0; k--) {
        int64_t q = j / s.kd[k], idx = j - q * s.kd[k];
        j = q;
        y += idx * s.ky[k];
        a += idx * s.ka[k];
        b += idx * s.kb[k];
    }
    *oy = y;
    *oa = a;
    *ob = b;
}

__device__ __forceinline__ float reduced_term(const Split &s, int op, int which, const float *a,
                                              const float *b, const float *dy, int64_t oy,
                                              int64_t oa, int64_t ob, int64_t r)
{
    for (int k = s.nr - 1; k >= 0; k--) {
        int64_t q = r / s.rd[k], idx = r - q * s.rd[k];
        r = q;
        oy += idx * s.ry[k];
        oa += idx * s.ra[k];
        ob += idx * s.rb[k];
    }
    return grad(op, which, a[oa], b[ob], dy[oy]);
}

/* One thread per target element; short sums. */
__global__ void binary_bwd_thread_kernel(int op, int which, const float *a, const float *b,
                                         const float *dy, Split s, float scale, float *dt)
{
    for (int64_t j = egc_k_tid(); j < s.J; j += egc_k_nthreads()) {
        int64_t oy, oa, ob;
        kept_offsets(s, j, &oy, &oa, &ob);
        float acc = 0.0f;
        for (int64_t r = 0; r < s.R; r++) acc += reduced_term(s, op, which, a, b, dy, oy, oa, ob, r);
        dt[j] += scale * acc;
    }
}

/* One block per target element; long sums with a shared-memory tree. */
__global__ void binary_bwd_block_kernel(int op, int which, const float *a, const float *b,
                                        const float *dy, Split s, float scale, float *dt)
{
    __shared__ float part[EGC_K_THREADS];
    for (int64_t j = blockIdx.x; j < s.J; j += gridDim.x) {
        int64_t oy, oa, ob;
        kept_offsets(s, j, &oy, &oa, &ob);
        float acc = 0.0f;
        for (int64_t r = threadIdx.x; r < s.R; r += blockDim.x)
            acc += reduced_term(s, op, which, a, b, dy, oy, oa, ob, r);
        part[threadIdx.x] = acc;
        __syncthreads();
        for (int w = blockDim.x / 2; w > 0; w >>= 1) {
            if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
            __syncthreads();
        }
        if (threadIdx.x == 0) dt[j] += scale * part[0];
        __syncthreads();
    }
}

/* Strides of y, a, b at rank ndim, size-1 output dims dropped, compatible neighbours merged.
 * Returns 0, or -1 when a shape is not broadcastable to oshape. */
int make_bcast(const int64_t *ashape, const int64_t *bshape, const int64_t *oshape, int ndim,
               Bcast *bc)
{
    int64_t sa = 1, sb = 1, sy = 1;
    int64_t da[EGC_K_MAX_DIMS], db[EGC_K_MAX_DIMS], dyy[EGC_K_MAX_DIMS], dd[EGC_K_MAX_DIMS];
    int n = 0;
    /* innermost first, then reversed */
    for (int k = ndim - 1; k >= 0; k--) {
        int64_t o = oshape[k];
        if ((ashape[k] != o && ashape[k] != 1) || (bshape[k] != o && bshape[k] != 1)) return -1;
        if (o == 1) continue;
        int64_t xa = ashape[k] == 1 ? 0 : sa, xb = bshape[k] == 1 ? 0 : sb;
        if (n > 0 && xa == da[n - 1] * dd[n - 1] && xb == db[n - 1] * dd[n - 1]) {
            /* merge into the previous (inner) dim: strides stay those of the inner dim */
            dd[n - 1] *= o;
        } else {
            dd[n] = o;
            da[n] = xa;
            db[n] = xb;
            dyy[n] = sy;
            n++;
        }
        if (ashape[k] != 1) sa *= o;
        if (bshape[k] != 1) sb *= o;
        sy *= o;
    }
    bc->nd = n;
    for (int k = 0; k < n; k++) {
        bc->d[k] = dd[n - 1 - k];
        bc->sa[k] = da[n - 1 - k];
        bc->sb[k] = db[n - 1 - k];
        bc->sy[k] = dyy[n - 1 - k];
    }
    return 0;
}

} // namespace

extern "C" int egc_k_binary_fwd(int op, const float *a, const int64_t *ashape, const float *b,
                                const int64_t *bshape, float *y, const int64_t *oshape, int ndim,
                                void *stream)
{
    if (ndim < 0 || ndim > EGC_K_MAX_DIMS) return (int)cudaErrorInvalidValue;
    Bcast bc;
    if (make_bcast(ashape, bshape, oshape, ndim, &bc) != 0) return (int)cudaErrorInvalidValue;
    int64_t n = 1;
    for (int k = 0; k < ndim; k++) n *= oshape[k];
    if (n <= 0) return 0;
    binary_fwd_kernel<<<egc_k_blocks(n), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(op, a, b, y, bc,
                                                                                   n);
    return egc_k_status();
}

extern "C" int egc_k_binary_bwd(int op, int which, const float *a, const int64_t *ashape,
                                const float *b, const int64_t *bshape, const float *dy,
                                const int64_t *oshape, int ndim, float scale, float *dt,
                                void *stream)
{
    if (ndim < 0 || ndim > EGC_K_MAX_DIMS) return (int)cudaErrorInvalidValue;
    Bcast bc;
    if (make_bcast(ashape, bshape, oshape, ndim, &bc) != 0) return (int)cudaErrorInvalidValue;
    int64_t n = 1;
    for (int k = 0; k < ndim; k++) n *= oshape[k];
    if (n <= 0) return 0;
    Split s;
    s.nk = s.nr = 0;
    s.J = s.R = 1;
    for (int k = 0; k < bc.nd; k++) {
        int64_t st = which ? bc.sb[k] : bc.sa[k];
        if (st != 0) {
            s.kd[s.nk] = bc.d[k];
            s.ky[s.nk] = bc.sy[k];
            s.ka[s.nk] = bc.sa[k];
            s.kb[s.nk] = bc.sb[k];
            s.nk++;
            s.J *= bc.d[k];
        } else {
            s.rd[s.nr] = bc.d[k];
            s.ry[s.nr] = bc.sy[k];
            s.ra[s.nr] = bc.sa[k];
            s.rb[s.nr] = bc.sb[k];
            s.nr++;
            s.R *= bc.d[k];
        }
    }
    cudaStream_t st = egc_k_stream(stream);
    if (s.R < 256) {
        binary_bwd_thread_kernel<<<egc_k_blocks(s.J), EGC_K_THREADS, 0, st>>>(op, which, a, b, dy, s,
                                                                              scale, dt);
    } else {
        int64_t g = s.J < (1 << 20) ? s.J : (1 << 20);
        binary_bwd_block_kernel<<<(unsigned)g, EGC_K_THREADS, 0, st>>>(op, which, a, b, dy, s, scale,
                                                                       dt);
    }
    return egc_k_status();
}

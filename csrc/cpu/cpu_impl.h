/* cpu_impl.h: internal interface between the files of the CPU backend (csrc/cpu): the per-op
 * forward/backward entry points that cpu_ops.c dispatches to, a BLAS wrapper, strided
 * copy helpers, the grow-only scratch pool and an error helper that names the node.
 *
 * Conventions for every egc_cpu_<op>_forward/backward below: the dispatcher (cpu_ops.c) has
 * already checked that n->n_in is in range for the op, that every required input and the
 * output have non-NULL pointers, that no view has more than EGC_MAX_DIMS dims or a negative
 * dim, and that every tensor has fewer than 2^31 elements (so BLAS int arguments cannot
 * overflow). The op functions check the shape relations they rely on and fail with
 * EGC_E_SHAPE or EGC_E_UNSUPPORTED naming the node. Backward functions ACCUMULATE into
 * din[i] for every din[i].ptr != NULL and read dout, in and out only. */
#ifndef EGC_CPU_IMPL_H
#define EGC_CPU_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/cpu_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ---- */

/* Records an error "node 'NAME' (OP): <formatted text> [file:line]" and returns code. */
egc_status egc_cpu_fail(egc_status code, const egc_node *n, const char *file, int line,
                        const char *fmt, ...) EGC_PRINTF(5, 6);
#define EGC_CPU_FAIL(code, n, ...) egc_cpu_fail((code), (n), __FILE__, __LINE__, __VA_ARGS__)

/* ---- small shape helpers ---- */

/* Dense row-major strides of s (in elements): st[ndim-1] = 1. */
void egc_cpu_strides(const egc_shape *s, int64_t *st);
/* Product of s->d[a..b) (1 when a >= b). */
int64_t egc_cpu_dims_prod(const egc_shape *s, int a, int b);

/* Walks every element of a dense tensor of shape `shape` (row-major order) and moves
 * between two strided buffers:
 *   accumulate == 0:  dst[dst_base + sum_i o_i*dst_st[i]] = src[src_base + sum_i o_i*src_st[i]]
 *   accumulate != 0:  dst[...] += src[...]
 * Strides may be negative or zero (accumulation then sums repeated hits, serially). */
void egc_cpu_strided_move(const egc_shape *shape, const float *src, int64_t src_base,
                          const int64_t *src_st, float *dst, int64_t dst_base,
                          const int64_t *dst_st, int accumulate);

/* ---- BLAS ----
 * Row-major C = alpha * op(A) * op(B) + beta * C with op(A) [M,K], op(B) [K,N], C [M,N].
 * Safe for zero dims (K == 0 scales C by beta; M or N == 0 does nothing). Callers keep
 * every dimension and leading dimension below 2^31. */
void egc_cpu_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                   float *C, int64_t ldc);

/* ---- scratch ----
 * A pool of scratch sets. A set holds one grow-only buffer per worker slot. An op acquires a
 * set, grows the slots it needs BEFORE starting parallel work (growth is not thread-safe),
 * lets worker k use slot k only, and releases the set. Buffers are reused across calls, so
 * the steady state allocates nothing. Concurrent callers get distinct sets. */
typedef struct egc_cpu_scratch egc_cpu_scratch;
EGC_NODISCARD egc_status egc_cpu_scratch_acquire(egc_cpu_scratch **out);
void egc_cpu_scratch_release(egc_cpu_scratch *s);
/* Makes slot `slot` (0 <= slot < EGC_CPU_SCRATCH_SLOTS) at least `bytes` long (64-byte
 * aligned) and returns it in *out. */
EGC_NODISCARD egc_status egc_cpu_scratch_get(egc_cpu_scratch *s, int slot, size_t bytes,
                                             void **out);
#define EGC_CPU_SCRATCH_SLOTS 256
/* Frees every idle set (sets held by running ops are untouched). Called when the last CPU
 * backend is destroyed. */
void egc_cpu_scratch_trim(void);

/* ---- threading ----
 * Number of parallel chunks to cut `items` independent items of about `cost` multiply-adds
 * each into: min(items, threads, items*cost / EGC_CPU_MIN_CHUNK_COST), at least 1, at most
 * EGC_CPU_SCRATCH_SLOTS. cost <= 0 ignores the cost. */
#define EGC_CPU_MIN_CHUNK_COST 65536
int egc_cpu_chunks(int64_t items, int64_t cost);

/* ---- ops (see the conventions at the top) ---- */
#define EGC_CPU_OP(name)                                                                  \
    EGC_NODISCARD egc_status egc_cpu_##name##_forward(const egc_node *n, const egc_view *in, \
                                                      const egc_view *out);               \
    EGC_NODISCARD egc_status egc_cpu_##name##_backward(                                   \
        const egc_node *n, const egc_view *in, const egc_view *out, const egc_view *dout,  \
        const egc_view *din);
EGC_CPU_OP(conv)
/* Relu and Clip of one value, as every CPU path computes them (Relu(-0) = +0, Relu(NaN) = 0,
 * Clip keeps NaN): egc_cpu_unary_forward and the Conv that applies them. */
static inline float egc_cpu_relu(float x) { return x > 0.0f ? x : 0.0f; }
static inline float egc_cpu_clip(float x, float lo, float hi)
{
    float v = x < lo ? lo : x;
    return v > hi ? hi : v;
}

/* What a fused Conv applies to its output y: first y + res (the residual Add that is its
 * only reader, y its input 0: res is that Add's input 1, of y's shape), then act(.) of the
 * Relu or Clip node that reads y (or that Add's output), each computed exactly as those
 * nodes compute it (egc_cpu_binary_forward, egc_cpu_unary_forward). */
typedef struct egc_cpu_act {
    int op;           /* EGC_OP_RELU or EGC_OP_CLIP (anything else: none) */
    float lo, hi;     /* Clip bounds */
    const float *res; /* NULL: no residual; else dense, laid out as y */
} egc_cpu_act;
/* egc_cpu_conv_forward followed by the residual and act on each block of the output while
 * it is in cache. */
EGC_NODISCARD egc_status egc_cpu_conv_forward_act(const egc_node *n, const egc_view *in,
                                                  const egc_view *out, const egc_cpu_act *act);
/* The same after egc_cpu_forward's checks of the node and its views (cpu_ops.c). */
EGC_NODISCARD egc_status egc_cpu_conv_forward_checked(const egc_graph *g, const egc_node *n,
                                                      const egc_view *in, const egc_view *out,
                                                      const egc_cpu_act *act);
EGC_CPU_OP(gemm)
EGC_CPU_OP(matmul)
EGC_CPU_OP(unary)     /* Relu, Clip, Sigmoid */
EGC_CPU_OP(binary)    /* Add, Sub, Mul, Div */
EGC_CPU_OP(batchnorm)
EGC_CPU_OP(maxpool)
EGC_CPU_OP(avgpool)
EGC_CPU_OP(gap)
EGC_CPU_OP(reshape)
EGC_CPU_OP(concat)
EGC_CPU_OP(slice)
EGC_CPU_OP(pad)
EGC_CPU_OP(softmax)
EGC_CPU_OP(transpose)
#undef EGC_CPU_OP

#ifdef __cplusplus
}
#endif
#endif

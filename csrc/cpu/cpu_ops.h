/* cpu_ops.h: the CPU reference implementation of every runtime op, forward and
 * activation backward. Plain, readable C over dense float32 NCHW tensors; GEMM goes to
 * BLAS. These loops are the specification other backends are tested against.
 *
 * egc_cpu_forward computes out from in for node n. egc_cpu_backward ACCUMULATES
 * din[i] += J_i^T dout for each i with din[i].ptr != NULL. Shapes in the views are the
 * actual run shapes. Errors (unsupported parameter combinations) name the node. */
#ifndef EGC_CPU_OPS_H
#define EGC_CPU_OPS_H

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

EGC_NODISCARD egc_status egc_cpu_forward(const egc_graph *g, const egc_node *n,
                                          const egc_view *in, const egc_view *out);
EGC_NODISCARD egc_status egc_cpu_backward(const egc_graph *g, const egc_node *n,
                                           const egc_view *in, const egc_view *out,
                                           const egc_view *dout, const egc_view *din);

#ifdef __cplusplus
}
#endif
#endif

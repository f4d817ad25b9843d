/* batch_first.h: batched runs of a graph exported at batch 1 that moves or merges the batch
 * axis (see batch_first.c). */
#ifndef EGC_BATCH_FIRST_H
#define EGC_BATCH_FIRST_H

#include "model/ir.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rewrites g, lowered with the shapes of one image (declared batch 1 or symbolic), so that
 * every activation has the batch as its first dimension and a batch of B images computes each
 * image as the file computes one: the values whose shape for one image does not start with 1
 * get a leading axis, and the nodes on them work on that form (Transpose, Reshape, Concat,
 * Slice, Softmax, MatMul, Gemm, elementwise ops). *changed = 1 when g was rewritten; 0 when
 * it needed nothing or holds a node that is not rewritten (a convolution, pooling or Pad on
 * such a value), g then unchanged. Errors (out of memory) leave g unchanged too. */
EGC_NODISCARD egc_status egc_graph_batch_first(egc_graph *g, int *changed);

#ifdef __cplusplus
}
#endif
#endif

/* exec.h: the one executor that walks the graph for every backend.
 *
 * A plan binds a graph, a backend, a batch size and an optional target value. It infers
 * every shape for that batch, uploads the constants into one slab, and lays out every
 * activation and gradient in one arena with offsets planned from value lifetimes, so a run
 * allocates nothing. Nodes split into the trunk (not depending on the target) and the head
 * (depending on it). The trunk keeps no activation beyond its last use; the head keeps the
 * tensors its backward needs. Backward runs over the head only, from the output to the
 * target value. */
#ifndef EGC_EXEC_H
#define EGC_EXEC_H

#include "backend/backend.h"
#include "model/ir.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct egc_plan egc_plan;

/* 1 when one pass may hold several images of g: its declared batch is fixed above 1 (the
 * file says so), or its shapes follow a batch of 2 and no node mixes rows (every activation
 * keeps the batch as its first dimension: see egc_plan_set_rows). 0 when g, declared for a
 * batch of 1 or a symbolic one, moves or merges the batch axis (a transformer's attention
 * reshapes [tokens, batch x heads, ...]) or mixes rows: such a model runs one image per
 * pass, exactly as its file computes one image. -1 (and the error) when out of memory. */
int egc_graph_rows_apart(const egc_graph *g);

/* Options of a plan. */
typedef struct egc_plan_opts {
    egc_precision precision;  /* EGC_PREC_FP32 (default) or EGC_PREC_MIXED (backends without
                                 plan_prepare_ex compute fp32) */
    int graphs;               /* 1 (default): from the second trunk forward on, record the
                                 trunk's op calls once and replay them (backends with
                                 capture_begin); 0: always issue the op calls */
    int lean;                 /* 1: the plan is made under a device-memory cap: backends keep
                                 optional memory (e.g. larger algorithm workspaces) to their
                                 fixed bounds (egc_plan_info.lean); 0 (default): they may
                                 take more where it is faster */
} egc_plan_opts;
/* fp32, graphs on. */
void egc_plan_opts_default(egc_plan_opts *o);

/* Creates a plan for batch size `batch` and target value id `target` (-1: forward only)
 * with the default options. The graph and backend must outlive the plan. */
EGC_NODISCARD egc_status egc_plan_create(const egc_graph *g, egc_backend *be, int64_t batch,
                                          int target, egc_plan **out);
/* egc_plan_create with options (NULL: defaults). In a mixed-precision plan only the values
 * the plan keeps (graph input, output, target and the tensors of head nodes) hold dense fp32
 * in their egc_plan_value buffers; other trunk values may hold a backend-private format.
 * A node whose output the backend computes in place of its input (see
 * egc_plan_info.inplace) shares that input's buffer. */
EGC_NODISCARD egc_status egc_plan_create_ex(const egc_graph *g, egc_backend *be, int64_t batch,
                                             int target, const egc_plan_opts *opts,
                                             egc_plan **out);
/* One line per node on how the backend runs it, plus the plan's precision, the number of
 * shared (in-place) buffers and the replay state, into buf (always NUL-terminated). */
void egc_plan_describe(const egc_plan *p, char *buf, size_t cap);
void egc_plan_destroy(egc_plan *p);

/* The device tensor of value v for this plan's batch (ptr NULL when v has no storage,
 * e.g. an integer constant). */
egc_view egc_plan_value(const egc_plan *p, int v);
/* The device gradient tensor of value v (ptr NULL when the plan keeps no gradient of v). */
egc_view egc_plan_grad(const egc_plan *p, int v);
int64_t egc_plan_batch(const egc_plan *p);
/* Runs of the plan from now on compute its first n rows only (1 <= n <= batch), where no
 * node mixes rows (e.g. a Concat or Slice on the batch axis) and the backend can
 * (egc_backend.partial_rows); otherwise all rows, as before. Views (egc_plan_value,
 * egc_plan_grad, the op calls) then have the rows computed as their first dimension; rows
 * beyond them are left as they are, and the seed of egc_plan_backward needs that many rows.
 * Returns the rows the plan will compute (n or the batch; fill rows n.. of the input when
 * more than n), also given by egc_plan_rows. */
int64_t egc_plan_set_rows(egc_plan *p, int64_t n);
/* egc_plan_set_rows(p, n) for an input whose first n rows the caller has written: when the
 * plan will compute more than n rows, zeroes input rows n .. egc_plan_rows(p) - 1 (their
 * outputs are computed and ignored). */
EGC_NODISCARD egc_status egc_plan_use_rows(egc_plan *p, int64_t n);
int64_t egc_plan_rows(const egc_plan *p);
/* Bytes reserved on the device: constants, activations+gradients arena. */
size_t egc_plan_bytes(const egc_plan *p);
/* Bytes of the activations+gradients arena alone: every value in it has the batch as its
 * first dimension, so it grows about linearly with the batch (the constants do not). */
size_t egc_plan_arena_bytes(const egc_plan *p);

/* Runs the trunk nodes (those not depending on the target; all nodes when there is no
 * target). Reads the input value's buffer: fill it first via egc_plan_value(p, g->input).
 * With graphs on and a backend that records, the second call records the trunk and every
 * later call replays it (a failed recording falls back to issuing the op calls for good). */
EGC_NODISCARD egc_status egc_plan_forward_trunk(egc_plan *p);
/* Runs the head nodes (those depending on the target), reading the target buffer. */
EGC_NODISCARD egc_status egc_plan_forward_head(egc_plan *p);
/* Trunk then head. */
EGC_NODISCARD egc_status egc_plan_forward(egc_plan *p);
/* Backward over the head: zeroes the gradients, sets d(output) from the device buffer
 * seed [batch, ...output shape] and accumulates down to the target's gradient buffer
 * (egc_plan_grad(p, target)). Requires a target and a forward_head of the same inputs. */
EGC_NODISCARD egc_status egc_plan_backward(egc_plan *p, const float *seed);

#ifdef __cplusplus
}
#endif
#endif

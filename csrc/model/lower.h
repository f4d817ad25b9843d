/* lower.h: turning a raw ONNX model (onnx.h) into egcam's graph (ir.h).
 *
 * egc_lower binds constant inputs, sorts the nodes topologically, folds every node whose
 * inputs are all known at load time (shape subgraphs, Constant, Cast, ...), removes
 * Identity and Dropout, maps the remaining nodes to runtime ops with validated parameters,
 * folds BatchNormalization into a preceding Conv and infers every value's shape at the
 * declared batch. The folding helpers (fold.c) are declared here too: they work on
 * egc_onnx_tensor (f32 for floats, i64 for integers and bools) and are internal to lowering. */
#ifndef EGC_LOWER_H
#define EGC_LOWER_H

#include "model/ir.h"
#include "model/onnx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Lowers m into *out (which must not own anything yet; it is zeroed first).
 * what names the model in messages ("resnet20.onnx"); NULL means "model".
 * const_inputs_names[i] / const_inputs[i] (n_const_inputs of them, both may be NULL when
 * 0) bind graph inputs to constant tensors: each name must be a graph input. Exactly one
 * graph input must remain that is neither an initializer nor bound: it becomes g->input
 * (float, known shape except a symbolic first dim). Graph output 0 becomes g->output.
 * Errors: EGC_E_UNSUPPORTED for an operator, domain, attribute value or non-constant
 * parameter egcam does not handle (the message names the node, the op and the attribute);
 * EGC_E_FORMAT for a malformed graph (undefined names, cycles); EGC_E_SHAPE for shapes that
 * do not fit. On failure *out is left empty. Release with egc_graph_clear. */
EGC_NODISCARD egc_status egc_lower(const egc_onnx_model *m, const char *what,
                                   const char *const *const_inputs_names,
                                   const egc_onnx_tensor *const_inputs, int n_const_inputs,
                                   egc_graph *out);

/* egc_lower with the image size the model runs at: height and width (both > 0) fill the
 * input's symbolic H and W ([N,C,H,W], or [N,H,W,3] channels last), which shape
 * computations of the file then fold with; a fixed H or W must equal them (EGC_E_ARG
 * otherwise). 0, 0: as egc_lower. */
EGC_NODISCARD egc_status egc_lower_sized(const egc_onnx_model *m, const char *what,
                                         const char *const *const_inputs_names,
                                         const egc_onnx_tensor *const_inputs,
                                         int n_const_inputs, int64_t height, int64_t width,
                                         egc_graph *out);

/* ---- internal to lowering (fold.c, infer.c) ---- */

/* The range [*lo, *hi] of a quantized integer type (egc_dtype: uint8, int8, int32); 0 for
 * another type. QuantizeLinear saturates to it (fold.c, and lower.c's runtime pairs). */
int egc_quant_range(int dtype, double *lo, double *hi);

/* Every product of a shape's non-zero dims stays below this (2^50): anything larger is a
 * malformed file, and keeping below it makes every size computation overflow-free. */
#define EGC_INFER_MAX_NUMEL ((int64_t)1 << 50)
/* 1 when every dim is >= 0 and the product of the non-zero dims is <= EGC_INFER_MAX_NUMEL. */
int egc_lower_shape_sane(const egc_shape *s);

/* Largest number of elements a folded constant may have (guards against files that ask
 * ConstantOfShape / Expand / Range for absurd sizes, and bounds the memory a load can take):
 * float tensors up to 2^27 (512 MiB; the largest weight matrices of the classifiers, e.g.
 * VGG16's first fully connected layer at 103 M, fit), integer ones (shape arithmetic, index
 * lists) up to 2^20 (8 MiB). */
#define EGC_FOLD_MAX_NUMEL ((int64_t)1 << 27)
#define EGC_FOLD_MAX_INT_NUMEL ((int64_t)1 << 20)

/* All the constants one load folds together hold at most EGC_FOLD_BUDGET_BASE elements plus
 * EGC_FOLD_BUDGET_PER_WEIGHT per element of the file's own initializers. Real classifiers fold
 * their weights once or twice (BatchNormalization into Conv, transposed Gemm weights) and
 * their shape arithmetic, far below this; a small file can no longer make the loader build
 * gigabytes through a chain of folded nodes. */
#define EGC_FOLD_BUDGET_BASE ((int64_t)1 << 26)
#define EGC_FOLD_BUDGET_PER_WEIGHT 4

/* Evaluates node n (default domain, model opset `opset`) at load time. in[i] are its
 * inputs (NULL for omitted optional ones), all constant. On success *handled is 1 and out
 * holds a fresh tensor (name NULL; release with egc_fold_free). *handled is 0 and
 * nothing is allocated when the op is not one the folder evaluates itself (the caller may
 * then run it as a runtime op on constant data). Errors name the node and the reason. */
EGC_NODISCARD egc_status egc_fold_node(const egc_onnx_node *n, int64_t opset,
                                       const egc_onnx_tensor *const *in, int n_in,
                                       egc_onnx_tensor *out, int *handled);

/* egc_fold_node where no tensor it makes may have more than room elements (what is left of
 * the load's folding budget): a larger one is refused before it is allocated. */
EGC_NODISCARD egc_status egc_fold_node_within(const egc_onnx_node *n, int64_t opset,
                                              const egc_onnx_tensor *const *in, int n_in,
                                              int64_t room, egc_onnx_tensor *out, int *handled);

/* 1 when egc_fold_node evaluates op_type itself. */
int egc_fold_knows(const char *op_type);

/* Shape of a value known only by its shape (an activation): the ONNX Shape op with its
 * opset-15 start/end attributes, evaluated on `shape` (the shape at the declared batch).
 * out is a fresh 1-D int64 tensor. */
EGC_NODISCARD egc_status egc_fold_shape(const egc_onnx_node *n, const egc_shape *shape,
                                        egc_onnx_tensor *out);

/* Deep copy of a tensor's shape and data (name not copied). */
EGC_NODISCARD egc_status egc_fold_copy(const egc_onnx_tensor *src, egc_onnx_tensor *dst);
/* Frees a folded tensor's name and data and zeroes it; NULL is a no-op. */
void egc_fold_free(egc_onnx_tensor *t);

/* Records the error "node 'NAME' (OP): <formatted text> [file:line]" and returns code. */
egc_status egc_lower_fail(egc_status code, const char *file, int line, const egc_onnx_node *n,
                          const char *fmt, ...) EGC_PRINTF(5, 6);
#define EGC_NODE_FAIL(code, n, ...) egc_lower_fail((code), __FILE__, __LINE__, (n), __VA_ARGS__)

/* Attribute readers. Each looks the attribute up by name; when absent the default is
 * returned (lists: *v NULL, *cnt 0); when present with the wrong type the error is
 * EGC_E_FORMAT naming the node and the attribute. */
const egc_onnx_attr *egc_lower_attr(const egc_onnx_node *n, const char *name);
EGC_NODISCARD egc_status egc_lower_attr_int(const egc_onnx_node *n, const char *name,
                                            int64_t def, int64_t *out);
EGC_NODISCARD egc_status egc_lower_attr_float(const egc_onnx_node *n, const char *name,
                                              float def, float *out);
EGC_NODISCARD egc_status egc_lower_attr_string(const egc_onnx_node *n, const char *name,
                                               const char *def, const char **out);
EGC_NODISCARD egc_status egc_lower_attr_ints(const egc_onnx_node *n, const char *name,
                                             const int64_t **v, int *cnt);
/* EGC_E_UNSUPPORTED naming the first attribute of n whose name is not in the
 * NULL-terminated list `known`. */
EGC_NODISCARD egc_status egc_lower_check_attrs(const egc_onnx_node *n,
                                               const char *const *known);

#ifdef __cplusplus
}
#endif
#endif

/* ir.h: egcam's own graph: what the ONNX model becomes after lowering.
 *
 * Lowering (lower.c) maps ONNX nodes to egc_op with validated parameters, folds every node
 * whose inputs are constant (shape subgraphs), folds BatchNormalization into the preceding
 * Conv, removes Dropout and Identity, and infers shapes. What remains is a list of runtime
 * nodes in topological order, each with one output value. Every backend executes exactly
 * these nodes; the CPU backend (csrc/cpu) is the reference for their semantics.
 *
 * Values are numbered 0..n_values-1. A value is either constant (an initializer or a folded
 * result, data on the host) or an activation computed at run time. Shapes in egc_value are
 * those of the model's declared batch (1 when the batch dimension is symbolic); the shapes
 * for another batch size come from egc_graph_infer. */
#ifndef EGC_IR_H
#define EGC_IR_H

#include <stdint.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum egc_op {
    EGC_OP_CONV = 0,    /* in: X [N,C,H,W], W [M,C/g,kh,kw] const, B [M] const (optional) */
    EGC_OP_GEMM,        /* in: A, B, C (optional); Y = alpha*op(A)*op(B) + beta*C, 2-D */
    EGC_OP_MATMUL,      /* in: A, B; numpy matmul with broadcast batch dims */
    EGC_OP_RELU,        /* in: X */
    EGC_OP_CLIP,        /* in: X; min/max in params (from attrs or constant inputs) */
    EGC_OP_SIGMOID,     /* in: X */
    EGC_OP_ADD,         /* in: A, B; numpy broadcasting */
    EGC_OP_SUB,         /* in: A, B; numpy broadcasting */
    EGC_OP_MUL,         /* in: A, B; numpy broadcasting */
    EGC_OP_DIV,         /* in: A, B; numpy broadcasting */
    EGC_OP_MAXPOOL,     /* in: X [N,C,H,W] */
    EGC_OP_AVGPOOL,     /* in: X [N,C,H,W] */
    EGC_OP_GAP,         /* GlobalAveragePool; in: X [N,C,H,W] -> [N,C,1,1] */
    EGC_OP_BATCHNORM,   /* inference BN not folded into a Conv; in: X, scale, B, mean, var (const) */
    EGC_OP_RESHAPE,     /* Reshape and Flatten: a copy with a new shape; in: X */
    EGC_OP_CONCAT,      /* in: X0..Xn-1 along axis */
    EGC_OP_SLICE,       /* in: X; starts/ends/axes/steps in params */
    EGC_OP_PAD,         /* in: X; pads/value/mode in params */
    EGC_OP_SOFTMAX,     /* in: X */
    EGC_OP_TRANSPOSE,   /* in: X; perm in params */
    EGC_OP_SQRT,        /* in: X */
    EGC_OP_ERF,         /* in: X */
    EGC_OP_EXP,         /* in: X */
    EGC_OP_LOG,         /* in: X (natural logarithm) */
    EGC_OP_SOFTPLUS,    /* in: X; log(1 + exp(x)) */
    EGC_OP_FAKE_QUANT,  /* in: X; QuantizeLinear then DequantizeLinear (per tensor) */
    EGC_OP_COUNT
} egc_op;

/* Name of an op as in ONNX ("Conv", "GlobalAveragePool", ...). */
const char *egc_op_name(egc_op op);

#define EGC_NODE_MAX_IN 64

typedef struct egc_conv_params {
    int kh, kw;          /* kernel size (from W when kernel_shape is absent) */
    int sh, sw;          /* strides */
    int dh, dw;          /* dilations */
    int pt, pl, pb, pr;  /* pads: top, left, bottom, right (auto_pad resolved at lowering) */
    int group;
} egc_conv_params;

typedef struct egc_pool_params {
    int kh, kw, sh, sw, dh, dw;
    int pt, pl, pb, pr;  /* auto_pad resolved at lowering */
    int ceil_mode;
    int count_include_pad; /* AveragePool */
} egc_pool_params;

typedef struct egc_gemm_params {
    float alpha, beta;
    int trans_a, trans_b;
} egc_gemm_params;

typedef struct egc_clip_params {
    float lo, hi;        /* -INFINITY / +INFINITY when absent */
} egc_clip_params;

/* A QuantizeLinear / DequantizeLinear pair on a value computed at run time:
 * y = (clamp(rint(x / scale) + zero, qmin, qmax) - zero) * scale (rint: ties to even);
 * its gradient passes where the quantized value was not clamped (straight through). */
typedef struct egc_fq_params {
    float scale, zero;   /* zero: the zero point, a whole number in [qmin, qmax] */
    float qmin, qmax;    /* the integer type's range: 0, 255 (uint8) or -128, 127 (int8) */
} egc_fq_params;

typedef struct egc_axis_params {
    int axis;            /* Concat, Softmax: may be negative as in the file */
    int legacy;          /* Softmax before opset 13: coerce to 2-D at axis */
} egc_axis_params;

typedef struct egc_bn_params {
    float eps;
} egc_bn_params;

typedef struct egc_reshape_params {
    int n;               /* number of target dims */
    int64_t dims[EGC_MAX_DIMS]; /* target dims as in the file (0 = copy, -1 = infer) */
    int allowzero;
    int flatten_axis;    /* >= 0: this node is a Flatten at that (non-negative) axis; dims unused */
} egc_reshape_params;

typedef struct egc_slice_params {
    int n;               /* number of sliced axes */
    int64_t starts[EGC_MAX_DIMS], ends[EGC_MAX_DIMS], axes[EGC_MAX_DIMS], steps[EGC_MAX_DIMS];
} egc_slice_params;

typedef enum egc_pad_mode { EGC_PAD_CONSTANT = 0, EGC_PAD_REFLECT = 1, EGC_PAD_EDGE = 2 } egc_pad_mode;

typedef struct egc_pad_params {
    int mode;            /* egc_pad_mode */
    float value;
    int n;               /* rank the pads were given for */
    int64_t pads[2 * EGC_MAX_DIMS]; /* begin[0..n), end[0..n) as in ONNX; may be negative (crop) */
} egc_pad_params;

typedef struct egc_transpose_params {
    int n;
    int perm[EGC_MAX_DIMS];
} egc_transpose_params;

typedef union egc_op_params {
    egc_conv_params conv;
    egc_pool_params pool;
    egc_gemm_params gemm;
    egc_clip_params clip;
    egc_fq_params fq;
    egc_axis_params axis;
    egc_bn_params bn;
    egc_reshape_params reshape;
    egc_slice_params slice;
    egc_pad_params pad;
    egc_transpose_params transpose;
} egc_op_params;

typedef struct egc_node {
    egc_op op;
    char *name;                  /* the ONNX node name (or "<op>_<index>") */
    int n_in;
    int in[EGC_NODE_MAX_IN];     /* value ids; -1 for an omitted optional input */
    int out;                     /* value id of the single output */
    egc_op_params p;
} egc_node;

typedef struct egc_value {
    char *name;
    egc_shape shape;             /* at the declared batch */
    int is_const;
    int is_float;                /* constants: 1 -> f32 holds data, 0 -> i64 */
    float *f32;                  /* constant float data (NULL for activations) */
    int64_t *i64;                /* constant integer data (shape tensors) */
    int dtype;                   /* constants: the element type (egc_dtype) in the file (a
                                    quantized weight's int8) or of the fold that made it */
    int producer;                /* node index, or -1 for graph inputs and constants */
    int batch_moved;             /* 1: an activation given a leading batch axis by
                                    egc_graph_batch_first (its shape for one image follows);
                                    never a CAM target */
} egc_value;

typedef struct egc_graph {
    egc_value *values;
    int n_values;
    egc_node *nodes;             /* runtime nodes, topological order */
    int n_nodes;
    int input;                   /* value id of the (single) runtime input */
    int output;                  /* value id of the output (logits) */
    int64_t declared_batch;      /* from the file; -1 when symbolic */
    int64_t opset;
    int input_channels_last;     /* the file's input is [N,H,W,3] (Keras, TensorFlow, TFLite
                                    exports): egcam's input is [N,3,H,W] and a Transpose
                                    (0,2,3,1) at the graph's start, or none where the model
                                    transposes back at once, makes the file's tensor (lower.c) */
} egc_graph;

/* Shapes of every value for a run with batch size `batch` (the input's first dim).
 * shapes has g->n_values entries. Constants keep their shapes. Errors name the node. */
EGC_NODISCARD egc_status egc_graph_infer(const egc_graph *g, int64_t batch, egc_shape *shapes);

/* Output shape of one node given its input shapes (NULL entries for omitted inputs).
 * Used by egc_graph_infer and by lowering. declared_batch/batch carry the batch rule of
 * Reshape: a target first dim equal to the declared batch follows the run's batch. */
EGC_NODISCARD egc_status egc_node_infer(const egc_graph *g, const egc_node *n,
                                         const egc_shape *const *in, int64_t batch,
                                         egc_shape *out);

/* Resolved Slice for an input shape: per dimension start and step, and the output shape. */
void egc_slice_resolve(const egc_slice_params *p, const egc_shape *in, int64_t *start,
                       int64_t *step, egc_shape *out);

/* Numpy broadcasting of two shapes; EGC_E_SHAPE when they do not broadcast. */
EGC_NODISCARD egc_status egc_broadcast_shape(const egc_shape *a, const egc_shape *b,
                                              egc_shape *out);

/* *v as a new float activation of shape s named base + suffix (a copy v owns), with no
 * producer yet; the rest zero. On failure *v owns nothing. */
EGC_NODISCARD egc_status egc_value_make(egc_value *v, const char *base, const char *suffix,
                                         const egc_shape *s);

/* Releases everything a graph owns (not the struct). */
void egc_graph_clear(egc_graph *g);

/* How many input slots of g's nodes read value v (a node reading it twice counts twice), and
 * in *last the last such node (-1: none). */
int egc_graph_readers(const egc_graph *g, int v, int *last);

#ifdef __cplusplus
}
#endif
#endif

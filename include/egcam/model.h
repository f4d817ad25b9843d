/* egcam/model.h: loading an ONNX classifier and running it on a backend.
 *
 * A model is immutable once loaded and may be shared by several sessions. A session binds a
 * model to a backend ("cpu", "cuda", "cuda:N") and a batch size, reserves all memory once,
 * and runs forward passes (and, for the explanation methods, backward passes to a target
 * layer). Handles are opaque; destroy(NULL) is a no-op. */
#ifndef EGCAM_MODEL_H
#define EGCAM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "egcam/status.h"
#include "egcam/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct egc_model egc_model;
typedef struct egc_session egc_session;

/* Loads, lowers and shape-checks an ONNX model file. Errors name the file and, for graph
 * problems, the node, op and attribute. */
EGC_NODISCARD egc_status egc_model_load(const char *path, egc_model **out);
/* egc_model_load for a model exported with a symbolic image size (dynamic H and W axes): it
 * runs at height x width (both >= 1), its shape computations folded for that size. A file
 * whose H or W is fixed loads only at that size (EGC_E_ARG names it). 0, 0: the file's own,
 * as egc_model_load. */
EGC_NODISCARD egc_status egc_model_load_sized(const char *path, int height, int width,
                                              egc_model **out);
void egc_model_destroy(egc_model *m);

/* Input geometry [C,H,W] (the batch dim excluded) and number of output classes. */
void egc_model_input_chw(const egc_model *m, int *c, int *h, int *w);
int egc_model_num_classes(const egc_model *m);

/* 1 when the file's input is an image with its channels last, [N,H,W,3] (Keras, TensorFlow
 * and TFLite exports): egcam then feeds the model [N,3,H,W] like any other (inputs, maps,
 * reference sets and egc_model_input_chw are channels first), and a Transpose at the graph's
 * start makes the file's tensor, or nothing where the file transposes back at once. 0: the
 * file's input is [N,C,H,W]. */
int egc_model_input_channels_last(const egc_model *m);

/* 1 when the file's output is a Softmax over the classes (Keras classifiers end so), 2 when
 * it is a LogSoftmax (or a Log of such a Softmax; PyTorch models trained with NLLLoss end so):
 * egcam leaves it out and takes its input as the model's logits, which the explanations take
 * their gradients of (gradients of probabilities saturate; score softmax gives the
 * probabilities back), and which classify and the sessions return. 0: the file's output is
 * the logits. */
int egc_model_output_softmax_removed(const egc_model *m);

/* 1 when a session runs this model one image per pass: a model exported for a batch of 1 or
 * a symbolic batch that moves or merges the batch axis or mixes rows in a way the load could
 * not give a leading batch axis (a vision transformer's attention it can: those run whole
 * batches; a convolution along the moved axis it cannot). Each image is then computed
 * exactly as the file computes one image; a batch of n is n passes. 0: passes hold as many
 * images as the batch (or the memory cap) allows. */
int egc_model_one_image_per_pass(const egc_model *m);

/* Layers are the outputs of the runtime nodes, in execution order. */
int egc_model_num_layers(const egc_model *m);
typedef struct egc_layer_info {
    const char *name;       /* the tensor name in the ONNX graph */
    const char *node;       /* the producing node's name */
    const char *op;         /* "Conv", "Relu", ... */
    egc_shape shape;        /* at batch 1 */
    int is_candidate;       /* a 4-D activation with spatial size > 1 (channels first, or
                               known to be channels last), or a token layer: usable as CAM
                               target */
    int is_auto;            /* the layer `auto` picks */
} egc_layer_info;
/* 1 when layer i is a vision transformer's token layer, [1, prefix + gh*gw, C] after a patch
 * embedding of gh x gw patches and C channels (prefix: class and distillation tokens, 0 to
 * 8); it is a CAM candidate, read as [1, C, gh, gw] (its patch tokens laid out as an image,
 * as pytorch-grad-cam's reshape_transform does). 0 otherwise (out pointers untouched). */
int egc_model_layer_tokens(const egc_model *m, int i, int *prefix, int *gh, int *gw);
/* 1 when layer i is a channels-last CAM candidate [1,H,W,C]: known to be channels last (after
 * a Transpose (0,2,3,1) of a channels-first value, until the Transpose back: Swin's stages,
 * ConvNeXt's LayerNorms) with H*W > 1; it is read as [1,C,H,W], its transpose (as
 * pytorch-grad-cam's reshape_transform for Swin does). 0 otherwise. */
int egc_model_layer_channels_last(const egc_model *m, int i);
/* 1 when the logits depend on the input along a path that does not pass through layer i (a
 * residual connection around it, as around a transformer block's first LayerNorm): a CAM's
 * gradient there is then the partial derivative with the rest held fixed. 0 when every path
 * passes through it (a ResNet block's output, a VGG conv), -1 (and the error) for a bad index
 * or no memory. */
int egc_model_layer_bypassed(const egc_model *m, int i);

/* How many of layers after + 1 .. the last are a quantized model's QuantizeLinear /
 * DequantizeLinear pair on an activation (op "QuantizeDequantize": rounded as the model
 * computes, its gradient straight through); after = -1 counts them all. 0 for NULL. */
int egc_model_quantized_pairs(const egc_model *m, int after);
/* The [1,K,h,w] geometry a CAM at layer i works on: a channels-first candidate's shape, a
 * channels-last one's [1,C,H,W], or a token layer's [1,C,gh,gw]. EGC_E_ARG for a layer that
 * is none of these. */
EGC_NODISCARD egc_status egc_model_layer_cam_shape(const egc_model *m, int i, egc_shape *shape);
/* Fills info for layer i (0 <= i < num_layers); pointers stay valid while m lives. */
EGC_NODISCARD egc_status egc_model_layer(const egc_model *m, int i, egc_layer_info *info);
/* Finds a target layer by tensor name or node name, or "auto" (NULL counts as "auto"):
 * the last candidate layer produced by a compute op (Conv, Relu, Clip, Add, Mul,
 * Sigmoid, BatchNormalization) or a Concat that every path from the input to the logits
 * passes (egc_model_layer_bypassed 0: an Inception module's output, not its last branch),
 * i.e. skipping pooling and data movement (the last compute-op candidate where no candidate
 * is passed by every path); in a vision transformer, the last token layer made by a compute
 * op before its last attention (a product of two activations), when that comes after the 4-D
 * candidate chosen so. A name that is
 * neither may be a module path of a network exported by PyTorch 1.13 or later ("layer4",
 * "layer4.2", "features.29"): the module's output, i.e. the last layer whose node lies in the
 * module's scope ("/layer4/layer4.2/"); EGC_E_ARG when that layer is not a candidate.
 * Channels-last layers count as candidates (egc_model_layer_channels_last): a Swin
 * transformer's `auto` is its last norm. *layer is the layer index. An unknown name gives
 * EGC_E_ARG saying how to list the layers. */
EGC_NODISCARD egc_status egc_model_find_layer(const egc_model *m, const char *name, int *layer);

/* Creates a session: backend by name, a fixed maximal batch size, and optionally a
 * target layer (index from egc_model_find_layer, or -1 for forward only). All memory is
 * reserved here; runs allocate nothing. */
EGC_NODISCARD egc_status egc_session_create(const egc_model *m, const char *device, int batch,
                                             int target_layer, egc_session **out);

/* Numeric precision of a session's plan. FP32: fp32 storage and arithmetic (the CUDA backend
 * may use TF32 tensor-core products, see EGC_CUDA_TF32). MIXED: the CUDA backend runs the
 * convolutions before the target layer (and the Relu/Clip/Add/MaxPool between them) in fp16
 * NHWC on tensor cores with fp32 accumulation; the target activation, everything after it,
 * its gradient, reductions, softmax and all outputs stay fp32. Backends without a mixed mode
 * (the CPU) compute fp32 whatever is asked. */
typedef enum egc_precision { EGC_PREC_FP32 = 0, EGC_PREC_MIXED = 1 } egc_precision;
/* "fp32", "mixed". */
const char *egc_precision_name(egc_precision p);
/* Parses "fp32" or "mixed"; anything else gives EGC_E_ARG naming the string. */
EGC_NODISCARD egc_status egc_precision_parse(const char *name, egc_precision *out);

/* Options of egc_session_create_ex. Zero-initialised (or egc_session_options_default) means
 * fp32 with CUDA-graph replay of the forward allowed and no memory cap.
 *
 * Memory cap and batch splitting: the session reserves memory for `chunk` rows per pass,
 * where chunk <= batch is the largest row count whose device bytes fit:
 *     session bytes (egc_session_device_bytes) + extra_fixed_bytes + chunk * extra_row_bytes
 *         <= max_device_bytes      (when max_device_bytes > 0)
 * and for which the backend's allocations succeed (a real out-of-memory halves the chunk and
 * tries again, with or without a cap). The chunk is found by measuring the plan at `batch`,
 * estimating the bytes per row from its activation arena (which grows linearly with the
 * batch) and trying the largest chunk that the estimate says fits, a few times at most.
 * When not even one row fits, creation fails with EGC_E_NOMEM naming the model, the cap and
 * the bytes one row needs. extra_row_bytes and extra_fixed_bytes are device bytes the caller
 * will allocate beside the session (per row of chunk, and once); they only count against the
 * cap and are not allocated by the session. */
typedef struct egc_session_options {
    egc_precision precision;
    int no_graphs;          /* non-zero: never record/replay the forward as a CUDA graph */
    size_t max_device_bytes;  /* 0: no cap */
    size_t extra_row_bytes;   /* caller's device bytes per row, counted against the cap */
    size_t extra_fixed_bytes; /* caller's device bytes once, counted against the cap */
    int whole_target;       /* non-zero: the target is the layer's own tensor (a token
                               layer's [N,T,C], a channels-last layer's [N,H,W,C]), not the
                               [N,C,h,w] view a CAM reads (egcam check uses it) */
} egc_session_options;
void egc_session_options_default(egc_session_options *o);

/* egc_session_create with options (opts NULL = defaults). */
EGC_NODISCARD egc_status egc_session_create_ex(const egc_model *m, const char *device, int batch,
                                                int target_layer, const egc_session_options *opts,
                                                egc_session **out);
/* Writes into buf (always NUL-terminated, truncated to cap) one line per node saying how the
 * backend runs it (precision, layout, convolution algorithm, fusion) and a line on CUDA-graph
 * replay; algorithms are final after the first forward. Empty for backends that say
 * nothing. A split session (egc_session_chunk < batch) starts with a line saying so, e.g.
 * "batch 256 split into passes of 96 rows (device cap 2.00 GiB, 1.87 GiB used)". */
void egc_session_describe(const egc_session *s, char *buf, size_t cap);

void egc_session_destroy(egc_session *s);
/* The backend's name and device description ("cuda:0", "NVIDIA H100 ..."). */
const char *egc_session_device(const egc_session *s);
/* Rows per pass through the model after splitting (see egc_session_options): the batch the
 * session's memory is reserved for; equal to the batch given at creation when not split. */
int egc_session_chunk(const egc_session *s);

/* Forward of n <= batch preprocessed images x[n,C,H,W] (host, float32); writes the
 * logits[n,classes] to the host. When n > egc_session_chunk the rows run in passes of chunk
 * rows, and a split session with a target layer keeps a host copy of x for
 * egc_session_backward. */
EGC_NODISCARD egc_status egc_session_forward(egc_session *s, const float *x, int n,
                                              float *logits);

/* After egc_session_forward on a session with a target layer: the gradient of
 * sum_i seed[i,:]·logits[i,:] w.r.t. the target activation, written to grad[n,K,h,w]
 * (host), and the activation itself to act[n,K,h,w] when act is not NULL. seed is
 * [n,classes] on the host. Backpropagates through the layers after the target only.
 * Rows are those of the last forward, so n may not exceed its row count (EGC_E_ARG). When
 * those rows no longer all sit in the session's buffers (n > egc_session_chunk, or the last
 * forward ran in several passes), each pass of chunk rows runs the forward again from the
 * kept host copy of the inputs, then the backward, and downloads its rows. */
EGC_NODISCARD egc_status egc_session_backward(egc_session *s, const float *seed, int n,
                                               float *grad, float *act);
/* The logits[n,classes] of n <= egc_session_chunk rows x[n,C,H,W] (host) computed with
 * offset[n, target numel per row] (host) added to the target activation before the layers
 * after it run: head(A(x) + offset), the layers before the target as egc_session_forward
 * computes them. For checking the target gradient by finite differences (egcam check); a
 * residual connection around the target still carries the unchanged activations. EGC_E_ARG
 * without a target layer or for n above the chunk. A later egc_session_backward needs an
 * egc_session_forward first. */
EGC_NODISCARD egc_status egc_session_forward_offset(egc_session *s, const float *x, int n,
                                                     const float *offset, float *logits);
/* Shape of the target per row (batch 1): [1,K,h,w], the CAM's view of a token or
 * channels-last layer included; with egc_session_options.whole_target, the layer's own
 * shape ([1,T,C] for a token layer, [1,H,W,C] for a channels-last one). */
egc_shape egc_session_target_shape(const egc_session *s);

/* Device memory the session holds: the bytes its backend has allocated and not freed
 * (weights, activation/gradient arenas, workspaces; for CUDA what cudaMalloc gave, without
 * the CUDA/cuDNN/cuBLAS libraries' own memory). Runs allocate nothing, so after
 * egc_session_create this is also the session's peak. Backends that do not count report
 * the bytes the session's plan reserved. */
size_t egc_session_device_bytes(const egc_session *s);

#ifdef __cplusplus
}
#endif
#endif

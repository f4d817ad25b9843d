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
void egc_model_destroy(egc_model *m);

/* Input geometry [C,H,W] (the batch dim excluded) and number of output classes. */
void egc_model_input_chw(const egc_model *m, int *c, int *h, int *w);
int egc_model_num_classes(const egc_model *m);

/* Layers are the outputs of the runtime nodes, in execution order. */
int egc_model_num_layers(const egc_model *m);
typedef struct egc_layer_info {
    const char *name;       /* the tensor name in the ONNX graph */
    const char *node;       /* the producing node's name */
    const char *op;         /* "Conv", "Relu", ... */
    egc_shape shape;        /* at batch 1 */
    int is_candidate;       /* a 4-D activation with spatial size > 1: usable as CAM target */
    int is_auto;            /* the layer `auto` picks */
} egc_layer_info;
/* Fills info for layer i (0 <= i < num_layers); pointers stay valid while m lives. */
EGC_NODISCARD egc_status egc_model_layer(const egc_model *m, int i, egc_layer_info *info);
/* Finds a target layer by tensor name or node name, or "auto" (NULL counts as "auto"):
 * the last candidate layer produced by a compute op (Conv, Relu, Clip, Add, Mul,
 * Sigmoid, BatchNormalization), i.e. skipping pooling and data movement. *layer is the
 * layer index. An unknown name gives EGC_E_ARG listing candidates. */
EGC_NODISCARD egc_status egc_model_find_layer(const egc_model *m, const char *name, int *layer);

/* Creates a session: backend by name, a fixed maximal batch size, and optionally a
 * target layer (index from egc_model_find_layer, or -1 for forward only). All memory is
 * reserved here; runs allocate nothing. */
EGC_NODISCARD egc_status egc_session_create(const egc_model *m, const char *device, int batch,
                                             int target_layer, egc_session **out);
void egc_session_destroy(egc_session *s);
/* The backend's name and device description ("cuda:0", "NVIDIA H100 ..."). */
const char *egc_session_device(const egc_session *s);

/* Forward of n <= batch preprocessed images x[n,C,H,W] (host, float32); writes the
 * logits[n,classes] to the host. */
EGC_NODISCARD egc_status egc_session_forward(egc_session *s, const float *x, int n,
                                              float *logits);

/* After egc_session_forward on a session with a target layer: the gradient of
 * sum_i seed[i,:]·logits[i,:] w.r.t. the target activation, written to grad[n,K,h,w]
 * (host), and the activation itself to act[n,K,h,w] when act is not NULL. seed is
 * [n,classes] on the host. Backpropagates through the layers after the target only. */
EGC_NODISCARD egc_status egc_session_backward(egc_session *s, const float *seed, int n,
                                               float *grad, float *act);
/* Shape of the target layer at batch 1 ([1,K,h,w]). */
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

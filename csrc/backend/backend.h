/* backend.h: the backend interface, a struct of function pointers.
 *
 * The executor (csrc/model/executor.c) walks the graph for every backend and calls only
 * these functions. Pointers handed to op_forward/op_backward are device pointers obtained
 * from alloc (or offsets inside such a block), holding dense float32 tensors of the given
 * shapes. The CPU backend's device memory is host memory. */
#ifndef EGC_BACKEND_H
#define EGC_BACKEND_H

#include <stddef.h>

#include "core/core.h"
#include "model/ir.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A dense float32 tensor in backend memory. ptr NULL means "absent / not wanted". */
typedef struct egc_view {
    float *ptr;
    egc_shape shape;
} egc_view;

typedef struct egc_backend egc_backend;

struct egc_backend {
    char name[32];               /* "cpu", "cuda:0" */
    char device_name[128];       /* human-readable device ("CPU, 2 threads", "NVIDIA H100 ...") */
    void *ctx;                   /* backend private state */

    /* Memory. alloc returns EGC_E_NOMEM with the byte count when it cannot. */
    egc_status (*alloc)(egc_backend *be, size_t bytes, void **out);
    void (*free)(egc_backend *be, void *p);
    egc_status (*upload)(egc_backend *be, void *dst, const void *src, size_t bytes);
    egc_status (*download)(egc_backend *be, void *dst, const void *src, size_t bytes);
    /* dst[0..n) = value */
    egc_status (*fill)(egc_backend *be, float *dst, float value, int64_t n);
    /* dst[0..n) += src[0..n) */
    egc_status (*accumulate)(egc_backend *be, float *dst, const float *src, int64_t n);

    /* Optional per-plan preparation (algorithm choice, workspaces) for a batch's shapes;
     * *state is handed back to every op call of that plan and to plan_release. */
    egc_status (*plan_prepare)(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                               void **state);
    void (*plan_release)(egc_backend *be, void *state);

    /* Forward of one node: out = op(in). in has n->n_in entries (ptr NULL for omitted
     * optional inputs); constant inputs point at the uploaded constants. */
    egc_status (*op_forward)(egc_backend *be, void *state, const egc_graph *g,
                             const egc_node *n, const egc_view *in, const egc_view *out);
    /* Activation backward of one node: din[i] += d out / d in[i] · dout for every i whose
     * din[i].ptr is non-NULL (ACCUMULATES). in/out are the forward tensors. */
    egc_status (*op_backward)(egc_backend *be, void *state, const egc_graph *g,
                              const egc_node *n, const egc_view *in, const egc_view *out,
                              const egc_view *dout, const egc_view *din);

    egc_status (*sync)(egc_backend *be);
    void (*destroy)(egc_backend *be);

    /* Optional (NULL when the backend does not count): bytes currently allocated through
     * alloc and not yet freed (the CUDA backend counts its cudaMalloc's; library-internal
     * memory of cuDNN/cuBLAS is not included). */
    size_t (*bytes_in_use)(egc_backend *be);
};

/* Creates a backend by name: "cpu", "cuda" (= "cuda:0") or "cuda:N". A build without CUDA,
 * or a machine without a GPU or driver, gives EGC_E_DEVICE with the reason. */
EGC_NODISCARD egc_status egc_backend_create(const char *name, egc_backend **out);
/* Destroys a backend; NULL is a no-op. */
void egc_backend_destroy(egc_backend *be);

/* Writes one line per available device into buf (always NUL-terminated), e.g.
 * "cpu     CPU (2 threads)\ncuda:0  NVIDIA H100 80GB HBM3 (79.1 GiB, sm_90)\n", or a line
 * saying why CUDA is unavailable (not built in, no driver, no device). */
void egc_backend_list_devices(char *buf, size_t cap);

/* The CPU backend (always available). */
EGC_NODISCARD egc_status egc_cpu_backend_create(egc_backend **out);

#ifdef __cplusplus
}
#endif
#endif

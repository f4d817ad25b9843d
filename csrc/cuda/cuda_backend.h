/* cuda_backend.h: the CUDA backend (cuDNN for convolutions, cuBLAS for Gemm/MatMul, own
 * kernels in kernels/ for everything else) behind the vtable of backend/backend.h, plus
 * device discovery for `egcam info`. No CUDA types appear here.
 *
 * One backend is one device context: it owns a non-blocking stream, a cuDNN handle and a
 * cuBLAS handle bound to that stream; every call runs on that stream, in issue order. A
 * context is used by one thread at a time (one context per device for multi-GPU runs).
 * Precision: fp32 storage and accumulation; TF32 tensor-core math is ALLOWED by default for
 * convolutions (cuDNN) and Gemm/MatMul (cuBLAS) and can be switched off with
 * egc_cuda_set_tf32 or the environment variable EGC_CUDA_TF32=0. Plans made through
 * plan_prepare_ex may be mixed precision (fp16 NHWC trunk, see cuda_backend.c), fuse
 * Conv+bias+Relu (EGC_CUDA_FUSE=0: off) and record their trunk as a CUDA graph
 * (EGC_CUDA_GRAPHS=0: off).
 * Convolution forward algorithms are timed once per plan at the first forward
 * (EGC_CUDA_CONV_FIND=0 keeps cuDNN's heuristic choice, without timing). */
#ifndef EGC_CUDA_BACKEND_H
#define EGC_CUDA_BACKEND_H

#include <stddef.h>

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates the backend of CUDA device `device` (named "cuda:<device>"). Fails with
 * EGC_E_DEVICE naming the CUDA error when there is no driver, no device, or `device` is
 * out of range; EGC_E_NOMEM when the handles cannot be made. *out is NULL on failure. */
EGC_NODISCARD egc_status egc_cuda_backend_create(int device, egc_backend **out);

/* Number of CUDA devices (0 is possible); EGC_E_DEVICE (with the CUDA error) when there is no usable driver. */
EGC_NODISCARD egc_status egc_cuda_device_count(int *count);

/* Writes one line per CUDA device into buf (always NUL-terminated, truncated to cap):
 *   "cuda:0  NVIDIA H100 80GB HBM3 (79.1 GiB, sm_90, 132 SMs)\n"
 * EGC_E_DEVICE (naming the CUDA error) when there is no driver or no device; buf then
 * holds "". EGC_E_ARG when buf is NULL or cap is 0. */
EGC_NODISCARD egc_status egc_cuda_device_list(char *buf, size_t cap);

/* Allows (1) or forbids (0) TF32 tensor-core math for the convolutions and GEMMs of plans
 * prepared AFTER this call (cuBLAS's mode changes at once). EGC_E_ARG when be is not a
 * CUDA backend. */
EGC_NODISCARD egc_status egc_cuda_set_tf32(egc_backend *be, int allow);

/* Page-locked host memory of `bytes` bytes (cudaHostAlloc, portable to every device), made
 * with CUDA device `device` current (the calling thread's device is restored), into *p;
 * EGC_E_DEVICE naming the CUDA error when it cannot be made (no driver, no such device, the
 * locked-memory limit). Free with egc_cuda_host_free (NULL is a no-op). */
EGC_NODISCARD egc_status egc_cuda_host_alloc(int device, size_t bytes, void **p);
void egc_cuda_host_free(void *p);

/* The backend's stream as a cudaStream_t in a void * (for launching kernels/egc_kernels.h
 * launchers in order with the backend's calls, e.g. in tests); NULL when be is not a CUDA
 * backend. */
void *egc_cuda_stream(egc_backend *be);

#ifdef __cplusplus
}
#endif
#endif

/* cuda_methods.h: the CUDA backend's method-level entries (the m_* members of backend.h),
 * implemented by the kernels of kernels/method_*.cu on the backend's stream. */
#ifndef EGC_CUDA_METHODS_H
#define EGC_CUDA_METHODS_H

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sets the m_* entries of a CUDA backend (called by egc_cuda_backend_create). */
void egc_cuda_methods_install(egc_backend *be);

/* cuda_backend.c: the backend's stream (a cudaStream_t) with its device made current, or
 * NULL (the error recorded) when the device cannot be made current. */
void *egc_cuda_backend_stream(egc_backend *be);

#ifdef __cplusplus
}
#endif
#endif

/* cuda_check.h: status checks for every CUDA runtime, cuDNN and cuBLAS call and every kernel
 * launch of the CUDA backend. Each macro evaluates its expression once and, on failure,
 * returns EGC_FAIL(EGC_E_DEVICE, ...) from the enclosing function with the failing
 * expression, the library's error name and string, and file:line (added by EGC_FAIL).
 * The *_G variants set a status variable and jump to a cleanup label instead.
 * Only for csrc/cuda: includes the CUDA headers. */
#ifndef EGC_CUDA_CHECK_H
#define EGC_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/core.h"

/* cudaError_t */
#define EGC_CUDA(expr)                                                                     \
    do {                                                                                   \
        cudaError_t egc_ce_ = (expr);                                                      \
        if (egc_ce_ != cudaSuccess)                                                        \
            return EGC_FAIL(EGC_E_DEVICE, "%s failed: %s (%s)", #expr,                      \
                            cudaGetErrorName(egc_ce_), cudaGetErrorString(egc_ce_));       \
    } while (0)

/* cudnnStatus_t */
#define EGC_CUDNN(expr)                                                                    \
    do {                                                                                   \
        cudnnStatus_t egc_dn_ = (expr);                                                    \
        if (egc_dn_ != CUDNN_STATUS_SUCCESS)                                               \
            return EGC_FAIL(EGC_E_DEVICE, "%s failed: cuDNN status %d (%s)", #expr,         \
                            (int)egc_dn_, cudnnGetErrorString(egc_dn_));                   \
    } while (0)

/* cublasStatus_t */
#define EGC_CUBLAS(expr)                                                                   \
    do {                                                                                   \
        cublasStatus_t egc_bs_ = (expr);                                                   \
        if (egc_bs_ != CUBLAS_STATUS_SUCCESS)                                              \
            return EGC_FAIL(EGC_E_DEVICE, "%s failed: cuBLAS status %d (%s)", #expr,        \
                            (int)egc_bs_, cublasGetStatusString(egc_bs_));                 \
    } while (0)

/* A launcher of kernels/egc_kernels.h: it returns the cudaError_t of its launch as an int
 * (cudaGetLastError() right after the <<<>>>). */
#define EGC_KERNEL(expr)                                                                   \
    do {                                                                                   \
        int egc_ke_ = (expr);                                                              \
        if (egc_ke_ != 0)                                                                  \
            return EGC_FAIL(EGC_E_DEVICE, "kernel launch %s failed: %s (%s)", #expr,        \
                            cudaGetErrorName((cudaError_t)egc_ke_),                        \
                            cudaGetErrorString((cudaError_t)egc_ke_));                     \
    } while (0)

/* Goto variants: EGC_CUDA_G(st, expr, label). */
#define EGC_CUDA_G(st, expr, label)                                                        \
    do {                                                                                   \
        cudaError_t egc_ce_ = (expr);                                                      \
        if (egc_ce_ != cudaSuccess) {                                                      \
            (st) = EGC_FAIL(EGC_E_DEVICE, "%s failed: %s (%s)", #expr,                      \
                            cudaGetErrorName(egc_ce_), cudaGetErrorString(egc_ce_));       \
            goto label;                                                                    \
        }                                                                                  \
    } while (0)

#define EGC_KERNEL_G(st, expr, label)                                                      \
    do {                                                                                   \
        int egc_ke_ = (expr);                                                              \
        if (egc_ke_ != 0) {                                                                \
            (st) = EGC_FAIL(EGC_E_DEVICE, "kernel launch %s failed: %s (%s)", #expr,        \
                            cudaGetErrorName((cudaError_t)egc_ke_),                        \
                            cudaGetErrorString((cudaError_t)egc_ke_));                     \
            goto label;                                                                    \
        }                                                                                  \
    } while (0)

#define EGC_CUDNN_G(st, expr, label)                                                       \
    do {                                                                                   \
        cudnnStatus_t egc_dn_ = (expr);                                                    \
        if (egc_dn_ != CUDNN_STATUS_SUCCESS) {                                             \
            (st) = EGC_FAIL(EGC_E_DEVICE, "%s failed: cuDNN status %d (%s)", #expr,         \
                            (int)egc_dn_, cudnnGetErrorString(egc_dn_));                   \
            goto label;                                                                    \
        }                                                                                  \
    } while (0)

#define EGC_CUBLAS_G(st, expr, label)                                                      \
    do {                                                                                   \
        cublasStatus_t egc_bs_ = (expr);                                                   \
        if (egc_bs_ != CUBLAS_STATUS_SUCCESS) {                                            \
            (st) = EGC_FAIL(EGC_E_DEVICE, "%s failed: cuBLAS status %d (%s)", #expr,        \
                            (int)egc_bs_, cublasGetStatusString(egc_bs_));                 \
            goto label;                                                                    \
        }                                                                                  \
    } while (0)

#endif

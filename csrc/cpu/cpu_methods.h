/* cpu_methods.h: the CPU backend's method-level entries (the m_* members of backend.h),
 * implemented with the plain-C reference functions of csrc/methods. */
#ifndef EGC_CPU_METHODS_H
#define EGC_CPU_METHODS_H

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sets the m_* entries of a CPU backend. */
void egc_cpu_methods_install(egc_backend *be);

#ifdef __cplusplus
}
#endif
#endif

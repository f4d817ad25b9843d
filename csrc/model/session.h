/* session.h: library-internal access to a session's backend, plan and graph, for code that
 * drives the executor directly on device buffers (the explainer, csrc/methods/explain.c).
 * The pointers stay valid while the session lives. */
#ifndef EGC_MODEL_SESSION_H
#define EGC_MODEL_SESSION_H

#include "backend/backend.h"
#include "egcam/model.h"
#include "model/exec.h"
#include "model/ir.h"

#ifdef __cplusplus
extern "C" {
#endif

egc_backend *egc_session_backend(const egc_session *s);
egc_plan *egc_session_plan(const egc_session *s);
const egc_graph *egc_session_graph(const egc_session *s);
/* The target value id (-1 for a forward-only session). */
int egc_session_target_value(const egc_session *s);

#ifdef __cplusplus
}
#endif
#endif

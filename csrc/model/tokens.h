/* tokens.h: a transformer's token layer, or a channels-last layer, read as a CAM layer (see
 * tokens.c). */
#ifndef EGC_TOKENS_H
#define EGC_TOKENS_H

#include "model/ir.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A token layer's geometry: prefix tokens (class, distillation) then a gh x gw grid of
 * patches; prefix < 0: not a token layer. */
typedef struct egc_tokens {
    int prefix, gh, gw;
    int after;   /* computed from a token layer or an attention product, and not channels
                    first since (model.c: then no 4-D CAM layer) */
} egc_tokens;

/* Into *out, a copy of g in which activation x, [N, prefix + gh*gw, C], is read through a view
 * [N, C, gh, gw] of its last gh*gw tokens (value *view of out; the graph's outputs are
 * unchanged, and the gradient at *view is the gradient at those tokens). A 4-D x is a
 * channels-last layer [N, gh, gw, C] (prefix 0), read through its transpose [N, C, gh, gw]. out borrows g's
 * names and constant data: g must outlive it, and only egc_graph_token_view_free(out, g)
 * releases it. EGC_E_ARG when x is not such a layer; on failure *out is empty. */
EGC_NODISCARD egc_status egc_graph_token_view(const egc_graph *g, int x, int prefix, int gh,
                                               int gw, egc_graph *out, int *view);
/* Releases what egc_graph_token_view made (not g's); out is left empty. */
void egc_graph_token_view_free(egc_graph *out, const egc_graph *base);

#ifdef __cplusplus
}
#endif
#endif

/* fuzz_lower.c: libFuzzer target for the lowering (csrc/model/lower.c): parses the input
 * bytes as a ModelProto and lowers it to the executor's graph (operator mapping, constant
 * folding on the CPU reference ops, BatchNormalization folding, composite lowerings, shape
 * inference), then what loading a model does after it (the batch-first rewrite of a batch-1
 * export that moves the batch axis, the rows-apart check), a token view of the first 3-D
 * activation and a channels-last view of the first 4-D one, then frees; every refusal must come back as a status with a message, and the
 * sanitizers catch any out-of-bounds access, leak or undefined behaviour on the way. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/batch_first.h"
#include "model/exec.h"
#include "model/lower.h"
#include "model/onnx.h"
#include "model/tokens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    egc_onnx_model *m = NULL;
    if (egc_onnx_parse(data, size, "fuzz.onnx", NULL, &m) != EGC_OK) return 0;
    egc_graph g;
    g.input = g.output = -1;
    egc_status st = egc_lower(m, "fuzz.onnx", NULL, NULL, 0, &g);
    if (st == EGC_E_ARG) /* a symbolic image size: at one given (egc_model_load_sized's path) */
        st = egc_lower_sized(m, "fuzz.onnx", NULL, NULL, 0, 7, 5, &g);
    if (st == EGC_OK) {
        int changed = 0;
        if (egc_graph_rows_apart(&g) == 0 && egc_graph_batch_first(&g, &changed) == EGC_OK &&
            changed)
            (void)egc_graph_rows_apart(&g);
        /* a token view of the first 3-D activation, a channels-last view of the first 4-D */
        int done3 = 0, done4 = 0;
        for (int v = 0; v < g.n_values && !(done3 && done4); v++) {
            const egc_shape *s = &g.values[v].shape;
            const int nd = s->ndim;
            if (g.values[v].is_const || g.values[v].producer < 0 || (nd != 3 && nd != 4) ||
                (nd == 3 && done3) || (nd == 4 && done4) || s->d[1] < 1 || s->d[1] > (1 << 20) ||
                (nd == 4 && (s->d[2] < 1 || s->d[2] > (1 << 20))))
                continue;
            egc_graph t;
            int view = -1;
            egc_status st = nd == 3 ? egc_graph_token_view(&g, v, 0, 1, (int)s->d[1], &t, &view)
                                    : egc_graph_token_view(&g, v, 0, (int)s->d[1], (int)s->d[2],
                                                           &t, &view);
            if (st == EGC_OK) {
                egc_shape *sh = NULL;
                if (egc_calloc((void **)&sh, (size_t)t.n_values + 1, sizeof *sh, "shapes") ==
                    EGC_OK) {
                    (void)egc_graph_infer(&t, 2, sh);
                    free(sh);
                }
                egc_graph_token_view_free(&t, &g);
            }
            if (nd == 3) done3 = 1;
            else done4 = 1;
        }
        egc_graph_clear(&g);
    }
    egc_onnx_free(m);
    return 0;
}

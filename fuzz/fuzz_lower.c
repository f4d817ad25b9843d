/* fuzz_lower.c: libFuzzer target for the lowering (csrc/model/lower.c): parses the input
 * bytes as a ModelProto and lowers it to the executor's graph (operator mapping, constant
 * folding on the CPU reference ops, BatchNormalization folding, composite lowerings, shape
 * inference), then frees; every refusal must come back as a status with a message, and the
 * sanitizers catch any out-of-bounds access, leak or undefined behaviour on the way. */
#include <stddef.h>
#include <stdint.h>

#include "model/lower.h"
#include "model/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    egc_onnx_model *m = NULL;
    if (egc_onnx_parse(data, size, "fuzz.onnx", NULL, &m) != EGC_OK) return 0;
    egc_graph g;
    g.input = g.output = -1;
    if (egc_lower(m, "fuzz.onnx", NULL, NULL, 0, &g) == EGC_OK) egc_graph_clear(&g);
    egc_onnx_free(m);
    return 0;
}

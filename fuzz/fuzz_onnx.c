/* fuzz_onnx.c: libFuzzer target for the ONNX reader. Parses the input bytes as a
 * ModelProto (no external data folder) and as a single TensorProto, then frees; the
 * sanitizers catch any out-of-bounds read, leak or undefined behaviour. */
#include <stddef.h>
#include <stdint.h>

#include "model/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    egc_onnx_model *m = NULL;
    if (egc_onnx_parse(data, size, "fuzz.onnx", NULL, &m) == EGC_OK) {
        /* Touch what a caller would read. */
        for (int i = 0; i < m->n_nodes; i++) (void)egc_onnx_node_attr(&m->nodes[i], "pads");
        egc_onnx_free(m);
    }
    egc_onnx_tensor t;
    if (egc_onnx_parse_tensor(data, size, "fuzz.pb", &t) == EGC_OK) egc_onnx_tensor_clear(&t);
    return 0;
}

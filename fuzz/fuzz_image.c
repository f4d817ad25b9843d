/* fuzz_image.c: libFuzzer target for the image decoders (JPEG, PNG, BMP) and, on images that
 * decode, the preprocessing presets. Any crash, leak, sanitizer report or timeout is a bug.
 *
 * It calls egc_image_decode through egc_image_decode_limited with a 4-megapixel cap, so
 * that inputs that declare huge sizes exercise the same code paths without the fuzzer's
 * memory limit firing; the default limits differ only in the numbers.
 *
 *   fuzz_image -max_total_time=60 CORPUS_DIR   (seed it with a few small images) */
#include <stddef.h>
#include <stdint.h>

#include "egcam/image.h"
#include "io/image_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    egc_image img = {0, 0, NULL};
    if (egc_image_decode_limited(data, size, "fuzz", 4096, (int64_t)4 << 20, &img) != EGC_OK)
        return 0;
    egc_image out = {0, 0, NULL};
    if (egc_preset_geometry(&img, EGC_PRESET_TORCHVISION, 16, 16, &out) == EGC_OK)
        egc_image_free(&out);
    if (egc_preset_geometry(&img, EGC_PRESET_TF, 7, 5, &out) == EGC_OK) egc_image_free(&out);
    egc_image_free(&img);
    return 0;
}

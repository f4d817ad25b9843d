/* image_internal.h: pieces of the image code that other parts of the library (overlays, the
 * fuzz target) use but that are not part of the public API: decoding under tighter size
 * limits and PIL-exact bilinear resizing. */
#ifndef EGC_IO_IMAGE_INTERNAL_H
#define EGC_IO_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "egcam/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest image egc_image_decode accepts: per side, and in all (pixels). */
#define EGC_IMAGE_MAX_SIDE 32768
#define EGC_IMAGE_MAX_PIXELS ((int64_t)1 << 29)

/* egc_image_decode with its own limits (max_side per side, max_pixels = w*h), each at most
 * the defaults above. Images above a limit give EGC_E_UNSUPPORTED before any pixel memory is
 * reserved. */
EGC_NODISCARD egc_status egc_image_decode_limited(const uint8_t *buf, size_t len,
                                                  const char *what, int max_side,
                                                  int64_t max_pixels, egc_image *out);

/* Resizes src (any size >= 1x1) to w x h exactly as Pillow's Image.resize((w, h),
 * Image.BILINEAR) does for an RGB image: separable triangle filter widened by the
 * shrink factor (antialiasing), 22-bit fixed-point coefficients, horizontal pass then
 * vertical pass, each rounded and clipped to 8 bits; a pass whose size does not change is
 * skipped. out is allocated (w x h). */
EGC_NODISCARD egc_status egc_image_resize_bilinear(const egc_image *src, int w, int h,
                                                   egc_image *out);

#ifdef __cplusplus
}
#endif
#endif

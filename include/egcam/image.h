/* egcam/image.h: image decoding, preprocessing presets and .npy tensors.
 *
 * Decoders: JPEG (libjpeg-turbo), PNG (libpng), uncompressed BMP. Every image becomes 8-bit
 * RGB (grayscale, palette and alpha images are converted). Corrupt or truncated files give
 * EGC_E_FORMAT naming the file and the reason; nothing crashes. */
#ifndef EGCAM_IMAGE_H
#define EGCAM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "egcam/status.h"
#include "egcam/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct egc_image {
    int w, h;
    uint8_t *rgb;   /* h*w*3 bytes, row-major, interleaved R,G,B */
} egc_image;

/* Decodes a JPEG/PNG/BMP file (format from the content, not the name). */
EGC_NODISCARD egc_status egc_image_load(const char *path, egc_image *out);
/* Decodes from memory; what names the source in error messages. */
EGC_NODISCARD egc_status egc_image_decode(const uint8_t *buf, size_t len, const char *what,
                                           egc_image *out);
/* Frees the pixels; img becomes empty. NULL is a no-op. */
void egc_image_free(egc_image *img);

/* Writes 8-bit RGB as PNG, or as JPEG (quality 1..100) when the path ends in .jpg/.jpeg. */
EGC_NODISCARD egc_status egc_image_save(const char *path, const egc_image *img, int quality);

typedef enum egc_preset {
    EGC_PRESET_TF = 0,          /* central crop 87.5%, bilinear resize to HxW, (p-128)/128 */
    EGC_PRESET_TORCHVISION = 1, /* short side to round(H*256/224), centre crop HxW, ImageNet mean/std */
    EGC_PRESET_CIFAR = 2        /* no resize when the image is HxW (else bilinear), ImageNet mean/std */
} egc_preset;

/* "tf", "torchvision", "cifar" -> preset; EGC_E_ARG naming the word otherwise. */
EGC_NODISCARD egc_status egc_preset_parse(const char *name, egc_preset *out);
const char *egc_preset_name(egc_preset p);

/* Geometric part of a preset: the uint8 RGB image of size w x h that the model sees
 * (crop + resize; resizing as PIL's Image.resize(BILINEAR) does it, antialiased when
 * shrinking, with PIL's 8-bit rounding). out is allocated. */
EGC_NODISCARD egc_status egc_preset_geometry(const egc_image *img, egc_preset p, int w, int h,
                                              egc_image *out);
/* Normalisation part: fits dst[3*h*w] (CHW planes) from the model-sized RGB image. */
void egc_preset_normalize(const egc_image *sized, egc_preset p, float *dst);
/* Both steps: dst holds 3*h*w floats. */
EGC_NODISCARD egc_status egc_preprocess(const egc_image *img, egc_preset p, int w, int h,
                                         float *dst);
/* Inverse of the normalisation, for showing a tensor as a picture: values are clamped to
 * 0..255. out is allocated (w x h). */
EGC_NODISCARD egc_status egc_preset_denormalize(const float *chw, int w, int h, egc_preset p,
                                                 egc_image *out);

/* .npy: reads little-endian float32 (or float64, converted) arrays in C order, any rank;
 * writes float32. Errors name the file and what is wrong with the header. */
EGC_NODISCARD egc_status egc_npy_read(const char *path, egc_tensor *out);
EGC_NODISCARD egc_status egc_npy_write(const char *path, const egc_tensor *t);

#ifdef __cplusplus
}
#endif
#endif

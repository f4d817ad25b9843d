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

#define EGC_PRESET_CUSTOM_MAX 64
typedef enum egc_preset {
    EGC_PRESET_TF = 0,          /* central crop 87.5%, bilinear resize to HxW, (p-128)/128 */
    EGC_PRESET_TORCHVISION = 1, /* short side to round(H*256/224), centre crop HxW, ImageNet mean/std */
    EGC_PRESET_CIFAR = 2,       /* no resize when the image is HxW (else bilinear), ImageNet mean/std */
    /* presets of your own (egc_preset_parse) take the values from EGC_PRESET_CUSTOM_FIRST on,
     * in the order they were first parsed by the process, below EGC_PRESET_CUSTOM_END */
    EGC_PRESET_CUSTOM_FIRST = 16,
    EGC_PRESET_CUSTOM_END = EGC_PRESET_CUSTOM_FIRST + EGC_PRESET_CUSTOM_MAX
} egc_preset;

/* A preset by name: "tf", "torchvision", "cifar" (also "resize", the same as "cifar"), or
 * one of those with a normalisation of your own, "BASE[:mean=M][:std=S][:bgr]": the
 * geometry of BASE, then x = (p/255 - M[c]) / S[c] for channel c of pixel values p, the
 * channels in BGR order with ":bgr" (Keras' "caffe" mode). M and S are three values
 * "a,b,c" or one for all three, each a decimal number or a fraction "a/b" (std=1/255 makes
 * x = p - 255*M); mean defaults to 0 and std to 1 when the other is given, and to BASE's own
 * when neither is. E.g. "torchvision:mean=0.5:std=0.5" (timm's Inception-style models),
 * "cifar:mean=0:std=1/255" (pixels 0..255 as they are). Such a preset is registered for the
 * rest of the process (the same text gives the same value; at most EGC_PRESET_CUSTOM_MAX
 * different ones) and is taken wherever an egc_preset is. EGC_E_ARG naming the word, key or
 * value otherwise (a std of 0, a value that is not finite). */
EGC_NODISCARD egc_status egc_preset_parse(const char *name, egc_preset *out);
/* Its name: "tf", "torchvision", "cifar", or for a preset of your own its canonical text
 * ("BASE:mean=a,b,c:std=a,b,c[:bgr]", which egc_preset_parse reads back to the same preset);
 * "unknown" for a value that is no preset. Valid for the life of the process. */
const char *egc_preset_name(egc_preset p);
/* The built-in preset whose geometry p has (p itself for a built-in), or -1 when p is no
 * preset. */
int egc_preset_base(egc_preset p);

/* Geometric part of a preset: the uint8 RGB image of size w x h that the model sees
 * (crop + resize; resizing as PIL's Image.resize(BILINEAR) does it, antialiased when
 * shrinking, with PIL's 8-bit rounding). out is allocated. */
EGC_NODISCARD egc_status egc_preset_geometry(const egc_image *img, egc_preset p, int w, int h,
                                              egc_image *out);
/* Normalisation part: fits dst[3*h*w] (CHW planes) from the model-sized RGB image. */
void egc_preset_normalize(const egc_image *sized, egc_preset p, float *dst);
/* The same for a model input of `channels` planes: 3 as egc_preset_normalize; 1, gray: the
 * picture made gray as Pillow's convert("L") does (L = (19595 R + 38470 G + 7471 B + 32768)
 * >> 16, ITU-R 601-2 luma) and normalised as the preset's first channel (so a preset of your
 * own with one mean and std, "cifar:mean=0.1307:std=0.3081", is MNIST's). dst holds
 * channels*h*w floats. EGC_E_UNSUPPORTED for another channel count. */
EGC_NODISCARD egc_status egc_preset_normalize_channels(const egc_image *sized, egc_preset p,
                                                       int channels, float *dst);
/* The picture made gray in place, as Pillow's convert("L") does (the same luma in R, G and B):
 * what a model of gray images sees. */
void egc_image_to_gray(egc_image *img);
/* Both steps: dst holds 3*h*w floats (channels*h*w for egc_preprocess_channels). */
EGC_NODISCARD egc_status egc_preprocess(const egc_image *img, egc_preset p, int w, int h,
                                         float *dst);
EGC_NODISCARD egc_status egc_preprocess_channels(const egc_image *img, egc_preset p, int channels,
                                                  int w, int h, float *dst);
/* Inverse of the normalisation, for showing a tensor as a picture: values are clamped to
 * 0..255. out is allocated (w x h, RGB). The _channels form takes 1 (gray, shown as RGB) or 3
 * planes. */
EGC_NODISCARD egc_status egc_preset_denormalize(const float *chw, int w, int h, egc_preset p,
                                                 egc_image *out);
EGC_NODISCARD egc_status egc_preset_denormalize_channels(const float *chw, int channels, int w,
                                                          int h, egc_preset p, egc_image *out);

/* The rectangle of an iw x ih image that preset p crops and resizes to the model's w x h,
 * in source pixel units: box = {x0, y0, bw, bh} (floats; torchvision's resize makes them
 * fractional). Model pixel (u, v) covers source x in [x0 + u*bw/w, x0 + (u+1)*bw/w) and
 * likewise in y. Used to put a map back onto the full-size photo. EGC_E_ARG for sizes out
 * of range or a non-square input with the torchvision preset. */
EGC_NODISCARD egc_status egc_preset_crop_box(egc_preset p, int iw, int ih, int w, int h,
                                              float box[4]);

/* Colormaps for saliency overlays (perceptual turbo by default). */
typedef enum egc_colormap { EGC_CMAP_TURBO = 0, EGC_CMAP_JET = 1, EGC_CMAP_VIRIDIS = 2 } egc_colormap;
/* "turbo", "jet", "viridis" -> colormap; EGC_E_ARG naming the word otherwise. */
EGC_NODISCARD egc_status egc_colormap_parse(const char *name, egc_colormap *out);
const char *egc_colormap_name(egc_colormap c); /* "turbo", "jet", "viridis" */
/* RGB of colormap c at t in [0,1] (clamped). */
void egc_colormap_rgb(egc_colormap c, float t, uint8_t rgb[3]);
/* Colours map (mw x mh floats in [0,1]; resized bilinearly to the picture when sizes
 * differ) with cmap and blends it over img: out = (1-alpha)*img + alpha*colour. out is
 * allocated with img's size. */
EGC_NODISCARD egc_status egc_overlay(const egc_image *img, const float *map, int mw, int mh,
                                      egc_colormap cmap, float alpha, egc_image *out);
/* egc_overlay for a map that covers only box = {x0, y0, bw, bh} of img (source pixels, e.g.
 * from egc_preset_crop_box): the map is resized bilinearly (half-pixel centres) onto the box
 * and blended there; pixels whose centre lies outside the box, which the model did not see,
 * are kept at half brightness. */
EGC_NODISCARD egc_status egc_overlay_box(const egc_image *img, const float *map, int mw, int mh,
                                          const float box[4], egc_colormap cmap, float alpha,
                                          egc_image *out);

/* .npy: reads little-endian float32 (or float64, converted) arrays in C order, any rank;
 * writes float32. Errors name the file and what is wrong with the header. */
EGC_NODISCARD egc_status egc_npy_read(const char *path, egc_tensor *out);
EGC_NODISCARD egc_status egc_npy_write(const char *path, const egc_tensor *t);

#ifdef __cplusplus
}
#endif
#endif

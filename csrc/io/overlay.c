/* overlay.c: colormaps and saliency overlays: a map in [0,1] is coloured (turbo, jet or
 * viridis), resized bilinearly onto a picture (or onto the part of it the model saw) and
 * blended over it.
 *
 * Colormaps follow matplotlib: t in [0,1] picks entry min(floor(256 t), 255) of a 256-entry
 * table: the published turbo and viridis tables (colormap_lut.h), jet's piecewise-linear
 * segments (_jet_data) sampled at 256 points. Colours are rounded to 8 bits, then blended:
 * out = (1 - alpha) * picture + alpha * colour, rounded to nearest.
 *
 * Resizing uses half-pixel centres (align_corners = false), the convention of the map
 * upsampling in csrc/methods: picture pixel x (centre x + 0.5) reads the map at
 * u = (x + 0.5 - x0) * mw / bw - 0.5, clamped to the map's edge. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "io/colormap_lut.h"
#include "io/image_internal.h"

egc_status egc_colormap_parse(const char *name, egc_colormap *out)
{
    static const struct {
        const char *name;
        egc_colormap c;
    } table[] = {{"turbo", EGC_CMAP_TURBO}, {"jet", EGC_CMAP_JET}, {"viridis", EGC_CMAP_VIRIDIS}};
    if (!name) return EGC_FAIL(EGC_E_ARG, "colormap: no name given (turbo, jet or viridis)");
    for (size_t i = 0; i < EGC_COUNT(table); i++)
        if (strcmp(name, table[i].name) == 0) {
            if (out) *out = table[i].c;
            return EGC_OK;
        }
    return EGC_FAIL(EGC_E_ARG, "colormap '%s' is unknown (turbo, jet or viridis)", name);
}

const char *egc_colormap_name(egc_colormap c)
{
    switch (c) {
    case EGC_CMAP_TURBO: return "turbo";
    case EGC_CMAP_JET: return "jet";
    case EGC_CMAP_VIRIDIS: return "viridis";
    }
    return "unknown";
}

/* A piecewise-linear channel: n points (x, y) with increasing x from 0 to 1. */
static float segments(const float (*pts)[2], int n, float t)
{
    for (int i = 1; i < n; i++)
        if (t <= pts[i][0]) {
            float x0 = pts[i - 1][0], x1 = pts[i][0];
            float f = x1 > x0 ? (t - x0) / (x1 - x0) : 1.0f;
            return pts[i - 1][1] + f * (pts[i][1] - pts[i - 1][1]);
        }
    return pts[n - 1][1];
}

static uint8_t unit_to_u8(float v)
{
    if (!(v > 0.0f)) return 0;
    if (v >= 1.0f) return 255;
    return (uint8_t)floorf(v * 255.0f + 0.5f);
}

/* Colour at t in [0,1] as floats in [0,1]: entry min(floor(t * 256), 255) of the
 * colormap's 256-entry table, as matplotlib's colormaps look colours up (jet's table is its
 * segments sampled at i / 255). */
static void colormap_f(egc_colormap c, float t, float rgb[3])
{
    if (!(t > 0.0f)) t = 0.0f; /* also NaN */
    if (t > 1.0f) t = 1.0f;
    int i = (int)(t * 256.0f);
    if (i > 255) i = 255;
    if (c == EGC_CMAP_JET) {
        /* matplotlib's _jet_data. */
        static const float r[][2] = {{0.f, 0.f}, {0.35f, 0.f}, {0.66f, 1.f}, {0.89f, 1.f},
                                     {1.f, 0.5f}};
        static const float g[][2] = {{0.f, 0.f},   {0.125f, 0.f}, {0.375f, 1.f},
                                     {0.64f, 1.f}, {0.91f, 0.f},  {1.f, 0.f}};
        static const float b[][2] = {{0.f, 0.5f}, {0.11f, 1.f}, {0.34f, 1.f}, {0.65f, 0.f},
                                     {1.f, 0.f}};
        float x = (float)i / 255.0f;
        rgb[0] = segments(r, (int)EGC_COUNT(r), x);
        rgb[1] = segments(g, (int)EGC_COUNT(g), x);
        rgb[2] = segments(b, (int)EGC_COUNT(b), x);
        return;
    }
    const float(*lut)[3] = c == EGC_CMAP_VIRIDIS ? k_viridis : k_turbo;
    for (int k = 0; k < 3; k++) rgb[k] = lut[i][k];
}

void egc_colormap_rgb(egc_colormap c, float t, uint8_t rgb[3])
{
    float f[3];
    colormap_f(c, t, f);
    for (int k = 0; k < 3; k++) rgb[k] = unit_to_u8(f[k]);
}

/* Precomputed bilinear taps along one axis: for picture index x in [0, n), the two map
 * indices and the weight of the second; inside[x] = 0 when the pixel centre lies outside
 * the box. */
typedef struct taps {
    int *i0, *i1;
    float *f;
    uint8_t *inside;
} taps;

static void taps_free(taps *t)
{
    free(t->i0);
    free(t->i1);
    free(t->f);
    free(t->inside);
    memset(t, 0, sizeof *t);
}

static egc_status taps_make(int n, int m, double x0, double bw, taps *t)
{
    memset(t, 0, sizeof *t);
    egc_status st;
    EGC_TRYG(st, egc_malloc((void **)&t->i0, (size_t)n, sizeof(int), "overlay taps"), fail);
    EGC_TRYG(st, egc_malloc((void **)&t->i1, (size_t)n, sizeof(int), "overlay taps"), fail);
    EGC_TRYG(st, egc_malloc((void **)&t->f, (size_t)n, sizeof(float), "overlay taps"), fail);
    EGC_TRYG(st, egc_malloc((void **)&t->inside, (size_t)n, 1, "overlay taps"), fail);
    for (int x = 0; x < n; x++) {
        double c = x + 0.5;
        t->inside[x] = c >= x0 && c < x0 + bw;
        double u = (c - x0) * (double)m / bw - 0.5;
        if (u < 0) u = 0;
        if (u > m - 1) u = m - 1;
        int a = (int)floor(u);
        if (a > m - 1) a = m - 1;
        int b = a + 1 < m ? a + 1 : m - 1;
        t->i0[x] = a;
        t->i1[x] = b;
        t->f[x] = (float)(u - a);
    }
    return EGC_OK;
fail:
    taps_free(t);
    return st;
}

static uint8_t blend(uint8_t p, float colour, float alpha)
{
    float v = (1.0f - alpha) * (float)p + alpha * colour;
    if (!(v > 0.0f)) return 0;
    if (v >= 255.0f) return 255;
    return (uint8_t)floorf(v + 0.5f);
}

egc_status egc_overlay_box(const egc_image *img, const float *map, int mw, int mh,
                           const float box[4], egc_colormap cmap, float alpha, egc_image *out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "overlay: no output image given");
    out->w = out->h = 0;
    out->rgb = NULL;
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0 || img->w > EGC_IMAGE_MAX_SIDE ||
        img->h > EGC_IMAGE_MAX_SIDE)
        return EGC_FAIL(EGC_E_ARG, "overlay: empty, NULL or oversized picture");
    if (!map || mw <= 0 || mh <= 0 || mw > EGC_IMAGE_MAX_SIDE || mh > EGC_IMAGE_MAX_SIDE)
        return EGC_FAIL(EGC_E_ARG, "overlay: map of %dx%d is empty or oversized", mw, mh);
    if (!box || !(box[2] > 0.0f) || !(box[3] > 0.0f) || !isfinite(box[0]) ||
        !isfinite(box[1]) || !isfinite(box[2]) || !isfinite(box[3]))
        return EGC_FAIL(EGC_E_ARG, "overlay: the map's box must have a positive finite size");
    if (!(alpha >= 0.0f && alpha <= 1.0f))
        return EGC_FAIL(EGC_E_ARG, "overlay: opacity %g is not in [0,1]", (double)alpha);
    if (cmap != EGC_CMAP_TURBO && cmap != EGC_CMAP_JET && cmap != EGC_CMAP_VIRIDIS)
        return EGC_FAIL(EGC_E_ARG, "overlay: colormap %d is unknown", (int)cmap);

    int W = img->w, H = img->h;
    taps tx, ty;
    EGC_TRY(taps_make(W, mw, box[0], box[2], &tx));
    egc_status st = taps_make(H, mh, box[1], box[3], &ty);
    if (st != EGC_OK) {
        taps_free(&tx);
        return egc_error_trace(st, "taps_make", __FILE__, __LINE__);
    }
    uint8_t *q = NULL;
    st = egc_malloc((void **)&q, (size_t)W * (size_t)H, 3, "overlay image");
    if (st != EGC_OK) {
        taps_free(&tx);
        taps_free(&ty);
        return st;
    }
    for (int y = 0; y < H; y++) {
        const float *r0 = map + (size_t)ty.i0[y] * (size_t)mw;
        const float *r1 = map + (size_t)ty.i1[y] * (size_t)mw;
        float fy = ty.f[y];
        const uint8_t *src = img->rgb + (size_t)y * (size_t)W * 3;
        uint8_t *dst = q + (size_t)y * (size_t)W * 3;
        for (int x = 0; x < W; x++) {
            if (!ty.inside[y] || !tx.inside[x]) {
                for (int k = 0; k < 3; k++) dst[3 * x + k] = (uint8_t)((src[3 * x + k] + 1) / 2);
                continue;
            }
            int a = tx.i0[x], b = tx.i1[x];
            float fx = tx.f[x];
            float top = r0[a] + fx * (r0[b] - r0[a]);
            float bot = r1[a] + fx * (r1[b] - r1[a]);
            float v = top + fy * (bot - top);
            if (!(v > 0.0f)) v = 0.0f; /* also NaN */
            if (v > 1.0f) v = 1.0f;
            uint8_t c[3];
            egc_colormap_rgb(cmap, v, c);
            for (int k = 0; k < 3; k++) dst[3 * x + k] = blend(src[3 * x + k], (float)c[k], alpha);
        }
    }
    taps_free(&tx);
    taps_free(&ty);
    out->w = W;
    out->h = H;
    out->rgb = q;
    return EGC_OK;
}

egc_status egc_overlay(const egc_image *img, const float *map, int mw, int mh, egc_colormap cmap,
                       float alpha, egc_image *out)
{
    if (!img) return EGC_FAIL(EGC_E_ARG, "overlay: NULL picture");
    float box[4] = {0.0f, 0.0f, (float)img->w, (float)img->h};
    return egc_overlay_box(img, map, mw, mh, box, cmap, alpha, out);
}

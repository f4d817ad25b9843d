/* preprocess.c: the preprocessing presets that turn a decoded RGB image into the model's
 * input tensor [3,H,W], matching what Python users get.
 *
 * The geometric step is bit-exact with Pillow: resizing replicates Pillow's
 * src/libImaging/Resample.c for 8-bit images with the bilinear filter (support 1, widened by
 * the shrink factor, coefficients normalised to sum 1 then converted to 22-bit fixed point,
 * horizontal pass then vertical pass, each rounded and clipped to 8 bits, a pass skipped when
 * its size does not change). Because every output pixel of that algorithm depends only on
 * its own row and column, a crop of a resized image is computed directly as a window of the
 * resize; the values are the same as resizing everything and cropping afterwards.
 *
 * Presets (model input w x h):
 *   tf           tf.image.central_crop(0.875), PIL bilinear resize to w x h, (p - 128) / 128
 *   torchvision  Resize(R) then CenterCrop(S) with S = w = h and R = round(S * 256 / 224),
 *                ToTensor, Normalize(ImageNet mean, std)
 *   cifar        no resize when the image is w x h, else PIL bilinear resize; ImageNet
 *                mean/std
 * The torchvision crop never needs padding: R >= S and the long side is >= R.
 * Presets of your own ("BASE:mean=..:std=..:bgr", egc_preset_parse) take BASE's geometry
 * and their own normalisation; they live in a table of the process (custom_presets), each
 * entry written once under a mutex and never changed, at values EGC_PRESET_CUSTOM_FIRST + i. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "io/image_internal.h"

#if defined(__clang__)
/* The coefficients must be computed with the same roundings as Pillow: no fused
 * multiply-add. (GCC in ISO C mode does not contract.) */
#pragma STDC FP_CONTRACT OFF
#endif

#define PRECISION_BITS (32 - 8 - 2)

static const float k_mean[3] = {0.485f, 0.456f, 0.406f};
static const float k_std[3] = {0.229f, 0.224f, 0.225f};

/* A read-only rectangle of an RGB image. */
typedef struct view {
    const uint8_t *p;   /* first pixel */
    int w, h;
    size_t stride;      /* bytes from one row to the next */
} view;

/* Resampling coefficients for output positions first .. first+count-1 of a resize from
 * in_size to out_size: bounds[2i] is the first input index, bounds[2i+1] how many follow;
 * kk[i*ksize + j] the fixed-point weight of input bounds[2i] + j. */
typedef struct coeffs {
    int ksize;
    int *bounds;     /* [count, 2] */
    int32_t *kk;     /* [count, ksize] */
} coeffs;

static void coeffs_free(coeffs *c)
{
    free(c->bounds);
    free(c->kk);
    c->bounds = NULL;
    c->kk = NULL;
}

static double bilinear_filter(double x)
{
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter, for a window
 * of the outputs. */
static egc_status coeffs_make(int in_size, int out_size, int first, int count, coeffs *c)
{
    memset(c, 0, sizeof *c);
    double scale = (double)((float)in_size - 0.0f) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *k = NULL;
    EGC_TRY(egc_malloc((void **)&k, (size_t)ksize, sizeof *k, "resize coefficients"));
    egc_status st = egc_malloc((void **)&c->bounds, (size_t)count * 2, sizeof(int),
                               "resize coefficients");
    if (st == EGC_OK)
        st = egc_malloc((void **)&c->kk, (size_t)count * (size_t)ksize, sizeof(int32_t),
                        "resize coefficients");
    if (st != EGC_OK) {
        free(k);
        coeffs_free(c);
        return st;
    }
    c->ksize = ksize;
    for (int i = 0; i < count; i++) {
        int xx = first + i;
        double center = 0.0 + (xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax > ksize) xmax = ksize; /* cannot happen; keeps the writes in bounds */
        int x;
        for (x = 0; x < xmax; x++) {
            double wgt = bilinear_filter((x + xmin - center + 0.5) * ss);
            k[x] = wgt;
            ww += wgt;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < ksize; x++) k[x] = 0;
        int32_t *kq = c->kk + (size_t)i * (size_t)ksize;
        for (x = 0; x < ksize; x++)
            kq[x] = k[x] < 0 ? (int32_t)(-0.5 + k[x] * (1 << PRECISION_BITS))
                             : (int32_t)(0.5 + k[x] * (1 << PRECISION_BITS));
        c->bounds[2 * i] = xmin;
        c->bounds[2 * i + 1] = xmax < 0 ? 0 : xmax;
    }
    free(k);
    return EGC_OK;
}

static inline uint8_t clip8(int32_t ss)
{
    int32_t v = ss >> PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Window [x0, x0+ww) x [y0, y0+wh) of the PIL bilinear resize of src to ow x oh, written to
 * dst (wh rows of ww RGB pixels, packed). The window must lie inside ow x oh. */
static egc_status resize_window(const view *src, int ow, int oh, int x0, int y0, int ww, int wh,
                                uint8_t *dst)
{
    int need_h = ow != src->w;
    int need_v = oh != src->h;
    coeffs ch = {0}, cv = {0};
    uint8_t *tmp = NULL;
    egc_status st = EGC_OK;

    /* Rows of the source that the window needs. */
    int ybox_first = y0, ybox_last = y0 + wh;
    if (need_v) {
        EGC_TRYG(st, coeffs_make(src->h, oh, y0, wh, &cv), done);
        ybox_first = cv.bounds[0];
        ybox_last = cv.bounds[2 * (wh - 1)] + cv.bounds[2 * (wh - 1) + 1];
        if (ybox_last <= ybox_first) ybox_last = ybox_first + 1; /* degenerate; stays in range */
    }
    int tmp_h = ybox_last - ybox_first;

    /* Horizontal pass over those rows, into tmp (tmp_h x ww), or a view of the source when
     * the width does not change. */
    const uint8_t *mid;
    size_t mid_stride;
    if (need_h) {
        EGC_TRYG(st, coeffs_make(src->w, ow, x0, ww, &ch), done);
        EGC_TRYG(st, egc_malloc((void **)&tmp, (size_t)tmp_h * (size_t)ww, 3, "resize buffer"),
                 done);
        for (int y = 0; y < tmp_h; y++) {
            const uint8_t *in = src->p + (size_t)(y + ybox_first) * src->stride;
            uint8_t *o = tmp + (size_t)y * (size_t)ww * 3;
            for (int xx = 0; xx < ww; xx++) {
                int xmin = ch.bounds[2 * xx], xmax = ch.bounds[2 * xx + 1];
                const int32_t *k = ch.kk + (size_t)xx * (size_t)ch.ksize;
                int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
                const uint8_t *px = in + (size_t)xmin * 3;
                for (int x = 0; x < xmax; x++) {
                    s0 += px[3 * x + 0] * k[x];
                    s1 += px[3 * x + 1] * k[x];
                    s2 += px[3 * x + 2] * k[x];
                }
                o[3 * xx + 0] = clip8(s0);
                o[3 * xx + 1] = clip8(s1);
                o[3 * xx + 2] = clip8(s2);
            }
        }
        mid = tmp;
        mid_stride = (size_t)ww * 3;
    } else {
        mid = src->p + (size_t)ybox_first * src->stride + (size_t)x0 * 3;
        mid_stride = src->stride;
    }

    /* Vertical pass, or a copy of the rows when the height does not change. */
    for (int yy = 0; yy < wh; yy++) {
        uint8_t *o = dst + (size_t)yy * (size_t)ww * 3;
        if (!need_v) {
            memcpy(o, mid + (size_t)yy * mid_stride, (size_t)ww * 3);
            continue;
        }
        int ymin = cv.bounds[2 * yy] - ybox_first, ymax = cv.bounds[2 * yy + 1];
        const int32_t *k = cv.kk + (size_t)yy * (size_t)cv.ksize;
        for (int xx = 0; xx < ww; xx++) {
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int y = 0; y < ymax; y++) {
                const uint8_t *px = mid + (size_t)(y + ymin) * mid_stride + (size_t)xx * 3;
                s0 += px[0] * k[y];
                s1 += px[1] * k[y];
                s2 += px[2] * k[y];
            }
            o[3 * xx + 0] = clip8(s0);
            o[3 * xx + 1] = clip8(s1);
            o[3 * xx + 2] = clip8(s2);
        }
    }

done:
    coeffs_free(&ch);
    coeffs_free(&cv);
    free(tmp);
    return st;
}

static egc_status check_image(const egc_image *img, const char *who)
{
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0)
        return EGC_FAIL(EGC_E_ARG, "%s: empty or NULL image", who);
    if (img->w > EGC_IMAGE_MAX_SIDE || img->h > EGC_IMAGE_MAX_SIDE)
        return EGC_FAIL(EGC_E_ARG, "%s: image of %dx%d is above the size limit", who, img->w,
                        img->h);
    return EGC_OK;
}

static egc_status check_size_arg(int w, int h, const char *who)
{
    if (w <= 0 || h <= 0 || w > EGC_IMAGE_MAX_SIDE || h > EGC_IMAGE_MAX_SIDE)
        return EGC_FAIL(EGC_E_ARG, "%s: model input size %dx%d is not in 1..%d", who, w, h,
                        EGC_IMAGE_MAX_SIDE);
    return EGC_OK;
}

static view view_of(const egc_image *img)
{
    view v = {img->rgb, img->w, img->h, (size_t)img->w * 3};
    return v;
}

/* Allocates out (w x h) and fills it with window (x0, y0, w, h) of the resize of src to
 * ow x oh. */
static egc_status resize_into(const view *src, int ow, int oh, int x0, int y0, int w, int h,
                              egc_image *out)
{
    uint8_t *p = NULL;
    EGC_TRY(egc_malloc((void **)&p, (size_t)w * (size_t)h, 3, "preprocessed image"));
    egc_status st = resize_window(src, ow, oh, x0, y0, w, h, p);
    if (st != EGC_OK) {
        free(p);
        return egc_error_trace(st, "resize_window", __FILE__, __LINE__);
    }
    out->w = w;
    out->h = h;
    out->rgb = p;
    return EGC_OK;
}

egc_status egc_image_resize_bilinear(const egc_image *src, int w, int h, egc_image *out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "resize: no output image given");
    out->w = out->h = 0;
    out->rgb = NULL;
    EGC_TRY(check_image(src, "resize"));
    EGC_TRY(check_size_arg(w, h, "resize"));
    view v = view_of(src);
    return resize_into(&v, w, h, 0, 0, w, h, out);
}

/* ---- presets of your own ---- */

typedef struct custom_preset {
    egc_preset base;
    float mean[3], std[3]; /* per channel of the tensor (after the BGR swap) */
    int bgr;
    char name[192];        /* canonical text */
} custom_preset;
static custom_preset g_custom[EGC_PRESET_CUSTOM_MAX];
static int g_n_custom;
static pthread_mutex_t g_custom_mu = PTHREAD_MUTEX_INITIALIZER;

/* The entry of custom preset p, or NULL. Entries never change once counted. */
static const custom_preset *custom_of(egc_preset p)
{
    int i = (int)p - EGC_PRESET_CUSTOM_FIRST;
    pthread_mutex_lock(&g_custom_mu);
    int n = g_n_custom;
    pthread_mutex_unlock(&g_custom_mu);
    return i >= 0 && i < n ? &g_custom[i] : NULL;
}

int egc_preset_base(egc_preset p)
{
    if (p == EGC_PRESET_TF || p == EGC_PRESET_TORCHVISION || p == EGC_PRESET_CIFAR) return (int)p;
    const custom_preset *c = custom_of(p);
    return c ? (int)c->base : -1;
}

/* One number of a preset text: a decimal number or a fraction "a/b", finite; *end after it. */
static int parse_number(const char *s, const char **end, double *v)
{
    char *e;
    double a = strtod(s, &e);
    if (e == s) return 0;
    if (*e == '/') {
        const char *t = e + 1;
        double b = strtod(t, &e);
        if (e == t || b == 0.0) return 0;
        a /= b;
    }
    if (!isfinite(a) || fabs(a) > 1e30) return 0;
    *end = e;
    *v = a;
    return 1;
}

/* "a,b,c" or "a" (for all three) up to the next ':' or the end. */
static int parse_triple(const char *s, const char **end, float v[3])
{
    double d[3];
    int n = 0;
    for (;;) {
        if (n == 3 || !parse_number(s, &s, &d[n])) return 0;
        n++;
        if (*s != ',') break;
        s++;
    }
    if (n == 2 || (*s && *s != ':')) return 0;
    for (int i = 0; i < 3; i++) v[i] = (float)d[n == 1 ? 0 : i];
    *end = s;
    return 1;
}

static egc_status builtin_parse(const char *w, size_t len, egc_preset *out)
{
    static const struct {
        const char *name;
        egc_preset p;
    } table[] = {{"tf", EGC_PRESET_TF},
                 {"torchvision", EGC_PRESET_TORCHVISION},
                 {"cifar", EGC_PRESET_CIFAR},
                 {"resize", EGC_PRESET_CIFAR}};
    for (size_t i = 0; i < EGC_COUNT(table); i++)
        if (strlen(table[i].name) == len && strncmp(w, table[i].name, len) == 0) {
            *out = table[i].p;
            return EGC_OK;
        }
    return EGC_FAIL(EGC_E_ARG, "preset '%.*s' is unknown (tf, torchvision, cifar or resize, "
                    "optionally followed by :mean=..:std=..:bgr)", (int)len, w);
}

egc_status egc_preset_parse(const char *name, egc_preset *out)
{
    if (!name) return EGC_FAIL(EGC_E_ARG, "preset: no name given (tf, torchvision or cifar)");
    const char *colon = strchr(name, ':');
    egc_preset base = EGC_PRESET_TORCHVISION;
    EGC_TRY(builtin_parse(name, colon ? (size_t)(colon - name) : strlen(name), &base));
    if (!colon) {
        if (out) *out = base;
        return EGC_OK;
    }
    custom_preset c;
    memset(&c, 0, sizeof c);
    c.base = base;
    int has_mean = 0, has_std = 0;
    for (const char *s = colon; *s == ':';) {
        s++;
        const char *key = s;
        if (!strncmp(s, "bgr", 3) && (s[3] == ':' || !s[3])) {
            if (c.bgr) return EGC_FAIL(EGC_E_ARG, "preset '%s': bgr is given twice", name);
            c.bgr = 1;
            s += 3;
        } else if (!strncmp(s, "mean=", 5) || !strncmp(s, "std=", 4)) {
            const int is_mean = s[0] == 'm';
            if (is_mean ? has_mean : has_std)
                return EGC_FAIL(EGC_E_ARG, "preset '%s': %s is given twice", name,
                                is_mean ? "mean" : "std");
            s += is_mean ? 5 : 4;
            if (!parse_triple(s, &s, is_mean ? c.mean : c.std))
                return EGC_FAIL(EGC_E_ARG, "preset '%s': %s must be one or three finite numbers "
                                "(decimals or fractions a/b) separated by commas", name,
                                is_mean ? "mean" : "std");
            if (is_mean) has_mean = 1;
            else has_std = 1;
        } else {
            const char *e = strchr(key, ':');
            return EGC_FAIL(EGC_E_ARG, "preset '%s': '%.*s' is not mean=.., std=.. or bgr", name,
                            (int)(e ? e - key : (long)strlen(key)), key);
        }
        if (*s && *s != ':')
            return EGC_FAIL(EGC_E_ARG, "preset '%s': unexpected '%s'", name, s);
    }
    if (!has_mean && !has_std) { /* the base's own normalisation, as (p/255 - m) / s */
        for (int i = 0; i < 3; i++) {
            c.mean[i] = base == EGC_PRESET_TF ? 128.0f / 255.0f : k_mean[i];
            c.std[i] = base == EGC_PRESET_TF ? 128.0f / 255.0f : k_std[i];
        }
    } else {
        for (int i = 0; i < 3; i++) {
            if (!has_mean) c.mean[i] = 0.0f;
            if (!has_std) c.std[i] = 1.0f;
        }
    }
    for (int i = 0; i < 3; i++)
        if (!(c.std[i] != 0.0f) || !isfinite(c.std[i]) || !isfinite(c.mean[i]))
            return EGC_FAIL(EGC_E_ARG, "preset '%s': std must not be 0", name);
    snprintf(c.name, sizeof c.name, "%s:mean=%.9g,%.9g,%.9g:std=%.9g,%.9g,%.9g%s",
             egc_preset_name(base), c.mean[0], c.mean[1], c.mean[2], c.std[0], c.std[1],
             c.std[2], c.bgr ? ":bgr" : "");
    pthread_mutex_lock(&g_custom_mu);
    int i = 0;
    while (i < g_n_custom && strcmp(g_custom[i].name, c.name)) i++;
    if (i == g_n_custom && i < EGC_PRESET_CUSTOM_MAX) g_custom[g_n_custom++] = c;
    pthread_mutex_unlock(&g_custom_mu);
    if (i == EGC_PRESET_CUSTOM_MAX)
        return EGC_FAIL(EGC_E_ARG, "preset '%s': this process already has %d presets of its own",
                        name, EGC_PRESET_CUSTOM_MAX);
    if (out) *out = (egc_preset)(EGC_PRESET_CUSTOM_FIRST + i);
    return EGC_OK;
}

const char *egc_preset_name(egc_preset p)
{
    switch (p) {
    case EGC_PRESET_TF: return "tf";
    case EGC_PRESET_TORCHVISION: return "torchvision";
    case EGC_PRESET_CIFAR: return "cifar";
    default: break;
    }
    const custom_preset *c = custom_of(p);
    return c ? c->name : "unknown";
}

/* tf.image.central_crop(0.875) of an iw x ih image: the border cut off each side (*bw
 * columns left and right, *bh rows top and bottom), truncated as Python's int() does. */
static void tf_border(int iw, int ih, int *bw, int *bh)
{
    *bh = (int)(((double)ih - (double)ih * 0.875) / 2.0);
    *bw = (int)(((double)iw - (double)iw * 0.875) / 2.0);
}

/* torchvision Resize(R) + CenterCrop(S) of an iw x ih image, R = round(S * 256 / 224): the
 * resized size *rw x *rh and the crop's top-left corner (*left, *top) in the resized image. */
static egc_status torchvision_plan(int iw, int ih, int S, int *rw, int *rh, int *left, int *top)
{
    /* Python's round() is half-to-even, as rint() in the default rounding mode. */
    int R = (int)rint((double)S * 256.0 / 224.0);
    int short_side = iw <= ih ? iw : ih, long_side = iw <= ih ? ih : iw;
    double nl = (double)((int64_t)R * long_side) / (double)short_side;
    if (nl >= (double)INT_MAX)
        return EGC_FAIL(EGC_E_UNSUPPORTED,
                        "preset torchvision: image of %dx%d is too elongated to resize", iw, ih);
    int new_long = (int)nl;
    *rw = iw <= ih ? R : new_long;
    *rh = iw <= ih ? new_long : R;
    if (*rw < S || *rh < S)
        return EGC_FAIL(EGC_E_INTERNAL,
                        "preset torchvision: resized image %dx%d is smaller than the crop %d", *rw,
                        *rh, S);
    *top = (int)rint((double)(*rh - S) / 2.0);
    *left = (int)rint((double)(*rw - S) / 2.0);
    return EGC_OK;
}

egc_status egc_preset_crop_box(egc_preset p, int iw, int ih, int w, int h, float box[4])
{
    if (!box) return EGC_FAIL(EGC_E_ARG, "preset %s: no crop box given", egc_preset_name(p));
    box[0] = box[1] = box[2] = box[3] = 0.0f;
    if (iw <= 0 || ih <= 0 || iw > EGC_IMAGE_MAX_SIDE || ih > EGC_IMAGE_MAX_SIDE)
        return EGC_FAIL(EGC_E_ARG, "preset %s: image size %dx%d is not in 1..%d",
                        egc_preset_name(p), iw, ih, EGC_IMAGE_MAX_SIDE);
    EGC_TRY(check_size_arg(w, h, egc_preset_name(p)));
    switch (egc_preset_base(p)) {
    case EGC_PRESET_TF: {
        int bw, bh;
        tf_border(iw, ih, &bw, &bh);
        box[0] = (float)bw;
        box[1] = (float)bh;
        box[2] = (float)(iw - 2 * bw);
        box[3] = (float)(ih - 2 * bh);
        return EGC_OK;
    }
    case EGC_PRESET_TORCHVISION: {
        if (w != h)
            return EGC_FAIL(EGC_E_ARG,
                            "preset torchvision: the model input must be square (got %dx%d)", w,
                            h);
        int rw, rh, left, top;
        EGC_TRY(torchvision_plan(iw, ih, w, &rw, &rh, &left, &top));
        /* Pillow samples resized pixel x at source (x + 0.5) * iw / rw: the crop's columns
         * [left, left + S) cover source [left * iw / rw, (left + S) * iw / rw). */
        double sx = (double)iw / rw, sy = (double)ih / rh;
        box[0] = (float)(left * sx);
        box[1] = (float)(top * sy);
        box[2] = (float)(w * sx);
        box[3] = (float)(h * sy);
        return EGC_OK;
    }
    case EGC_PRESET_CIFAR:
        box[2] = (float)iw;
        box[3] = (float)ih;
        return EGC_OK;
    }
    return EGC_FAIL(EGC_E_ARG, "preset %d is unknown", (int)p);
}

egc_status egc_preset_geometry(const egc_image *img, egc_preset p, int w, int h, egc_image *out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "preset %s: no output image given", egc_preset_name(p));
    out->w = out->h = 0;
    out->rgb = NULL;
    EGC_TRY(check_image(img, egc_preset_name(p)));
    EGC_TRY(check_size_arg(w, h, egc_preset_name(p)));
    view src = view_of(img);

    switch (egc_preset_base(p)) {
    case EGC_PRESET_TF: {
        int bw, bh;
        tf_border(img->w, img->h, &bw, &bh);
        view crop = {img->rgb + (size_t)bh * src.stride + (size_t)bw * 3, img->w - 2 * bw,
                     img->h - 2 * bh, src.stride};
        return resize_into(&crop, w, h, 0, 0, w, h, out);
    }
    case EGC_PRESET_TORCHVISION: {
        if (w != h)
            return EGC_FAIL(EGC_E_ARG,
                            "preset torchvision: the model input must be square (got %dx%d)", w,
                            h);
        int S = w, rw, rh, left, top;
        EGC_TRY(torchvision_plan(img->w, img->h, S, &rw, &rh, &left, &top));
        return resize_into(&src, rw, rh, left, top, S, S, out);
    }
    case EGC_PRESET_CIFAR:
        return resize_into(&src, w, h, 0, 0, w, h, out);
    }
    return EGC_FAIL(EGC_E_ARG, "preset %d is unknown", (int)p);
}

/* Normalises n pixel values of channel c (byte stride `stride` in s) into d, as preset p
 * (custom entry cp, or NULL) normalises that channel of the tensor. */
static void normalize_plane(const uint8_t *s, size_t stride, size_t n, egc_preset p,
                            const custom_preset *cp, int c, float *d)
{
    if (cp) {
        const float m = cp->mean[c], sd = cp->std[c];
        for (size_t i = 0; i < n; i++) {
            float x = (float)s[stride * i] / 255.0f;
            d[i] = (x - m) / sd;
        }
    } else if (p == EGC_PRESET_TF) {
        for (size_t i = 0; i < n; i++) d[i] = ((float)s[stride * i] - 128.0f) / 128.0f;
    } else {
        /* ToTensor then Normalize, in float32 as torch computes them. */
        const float m = k_mean[c], sd = k_std[c];
        for (size_t i = 0; i < n; i++) {
            float x = (float)s[stride * i] / 255.0f;
            d[i] = (x - m) / sd;
        }
    }
}

void egc_preset_normalize(const egc_image *sized, egc_preset p, float *dst)
{
    if (!sized || !sized->rgb || !dst || sized->w <= 0 || sized->h <= 0) return;
    size_t n = (size_t)sized->w * (size_t)sized->h;
    const custom_preset *cp = custom_of(p);
    for (int c = 0; c < 3; c++) {
        const int from = cp && cp->bgr ? 2 - c : c;
        normalize_plane(sized->rgb + from, 3, n, p, cp, c, dst + (size_t)c * n);
    }
}

/* Pillow's convert("L") of one RGB pixel: ITU-R 601-2 luma, rounded. */
static inline uint8_t luma(const uint8_t *p)
{
    return (uint8_t)(((uint32_t)p[0] * 19595u + (uint32_t)p[1] * 38470u + (uint32_t)p[2] * 7471u +
                      0x8000u) >> 16);
}

void egc_image_to_gray(egc_image *img)
{
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0) return;
    const size_t n = (size_t)img->w * (size_t)img->h;
    for (size_t i = 0; i < n; i++) {
        uint8_t *q = img->rgb + 3 * i;
        q[0] = q[1] = q[2] = luma(q);
    }
}

egc_status egc_preset_normalize_channels(const egc_image *sized, egc_preset p, int channels,
                                         float *dst)
{
    if (!sized || !sized->rgb || !dst || sized->w <= 0 || sized->h <= 0)
        return EGC_FAIL(EGC_E_ARG, "normalize: no picture or no output tensor given");
    if (egc_preset_base(p) < 0) return EGC_FAIL(EGC_E_ARG, "normalize: preset %d is unknown", (int)p);
    if (channels == 3) {
        egc_preset_normalize(sized, p, dst);
        return EGC_OK;
    }
    if (channels != 1)
        return EGC_FAIL(EGC_E_UNSUPPORTED, "a model input of %d channels: egcam makes images of "
                        "3 (RGB) or 1 (gray)", channels);
    size_t n = (size_t)sized->w * (size_t)sized->h;
    uint8_t *gray = NULL;
    EGC_TRY(egc_malloc((void **)&gray, n, 1, "gray picture"));
    const uint8_t *s = sized->rgb;
    for (size_t i = 0; i < n; i++) gray[i] = luma(s + 3 * i);
    normalize_plane(gray, 1, n, p, custom_of(p), 0, dst);
    free(gray);
    return EGC_OK;
}

egc_status egc_preprocess(const egc_image *img, egc_preset p, int w, int h, float *dst)
{
    return egc_preprocess_channels(img, p, 3, w, h, dst);
}

egc_status egc_preprocess_channels(const egc_image *img, egc_preset p, int channels, int w,
                                   int h, float *dst)
{
    if (!dst) return EGC_FAIL(EGC_E_ARG, "preset %s: no output tensor given", egc_preset_name(p));
    egc_image sized = {0, 0, NULL};
    EGC_TRY(egc_preset_geometry(img, p, w, h, &sized));
    egc_status st = egc_preset_normalize_channels(&sized, p, channels, dst);
    egc_image_free(&sized);
    return st;
}

static uint8_t to_u8(float v)
{
    if (!(v > 0.0f)) return 0; /* also NaN */
    if (v >= 255.0f) return 255;
    return (uint8_t)floorf(v + 0.5f);
}

egc_status egc_preset_denormalize(const float *chw, int w, int h, egc_preset p, egc_image *out)
{
    return egc_preset_denormalize_channels(chw, 3, w, h, p, out);
}

egc_status egc_preset_denormalize_channels(const float *chw, int channels, int w, int h,
                                           egc_preset p, egc_image *out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "denormalize: no output image given");
    out->w = out->h = 0;
    out->rgb = NULL;
    if (!chw) return EGC_FAIL(EGC_E_ARG, "denormalize: NULL tensor");
    EGC_TRY(check_size_arg(w, h, "denormalize"));
    if (egc_preset_base(p) < 0)
        return EGC_FAIL(EGC_E_ARG, "denormalize: preset %d is unknown", (int)p);
    if (channels != 1 && channels != 3)
        return EGC_FAIL(EGC_E_ARG, "denormalize: %d channels (1 or 3)", channels);
    const custom_preset *cp = custom_of(p);
    size_t n = (size_t)w * (size_t)h;
    uint8_t *q = NULL;
    EGC_TRY(egc_malloc((void **)&q, n, 3, "denormalized image"));
    for (int c = 0; c < channels; c++) {
        const float *s = chw + (size_t)c * n;
        const int to = cp && cp->bgr && channels == 3 ? 2 - c : c;
        for (size_t i = 0; i < n; i++) {
            float v = cp                 ? (s[i] * cp->std[c] + cp->mean[c]) * 255.0f
                      : p == EGC_PRESET_TF ? s[i] * 128.0f + 128.0f
                                           : (s[i] * k_std[c] + k_mean[c]) * 255.0f;
            const uint8_t u = to_u8(v);
            if (channels == 1) /* gray, shown as RGB */
                q[3 * i] = q[3 * i + 1] = q[3 * i + 2] = u;
            else
                q[3 * i + to] = u;
        }
    }
    out->w = w;
    out->h = h;
    out->rgb = q;
    return EGC_OK;
}

/* image.c: decoding JPEG (libjpeg-turbo), PNG (libpng) and uncompressed BMP into 8-bit RGB,
 * and writing RGB images as PNG or JPEG.
 *
 * The format comes from the magic bytes, never from the file name. Both libraries report
 * errors through callbacks that record the message and longjmp back to the decoder, which
 * frees what it reserved and returns EGC_E_FORMAT naming the source; nothing is printed.
 * JPEG decoding uses the library defaults that Pillow also uses (JDCT_ISLOW, fancy
 * upsampling), so pixels match what Python users get from PIL's convert("RGB"): grayscale is
 * replicated, CMYK/YCCK converted with Pillow's formula, PNG alpha and transparency dropped,
 * 16-bit PNG samples cut to their high byte, BMP 5/6-bit fields widened as PIL does. EXIF
 * orientation is not applied (PIL does not apply it either unless asked). A file whose pixels
 * end early is an error (EGC_E_FORMAT); one that lacks only trailing markers (JPEG EOI, PNG
 * IEND) decodes, as in PIL. Images above EGC_IMAGE_MAX_SIDE per side or EGC_IMAGE_MAX_PIXELS
 * in all, RLE BMPs and GIF/WebP/TIFF give EGC_E_UNSUPPORTED. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "core/core.h"
#include "io/image_internal.h"

/* ------------------------------------------------------------------------------------- */
/* common                                                                                 */

void egc_image_free(egc_image *img)
{
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

/* Checks w x h against the limits; EGC_E_FORMAT for empty images, EGC_E_UNSUPPORTED for
 * images above a limit. kind names the format in the message. */
static egc_status check_size(const char *what, const char *kind, int64_t w, int64_t h,
                             int max_side, int64_t max_pixels)
{
    if (w <= 0 || h <= 0)
        return EGC_FAIL(EGC_E_FORMAT, "image %s: %s with empty size %lldx%lld", what, kind,
                        (long long)w, (long long)h);
    if (w > max_side || h > max_side || w * h > max_pixels)
        return EGC_FAIL(EGC_E_UNSUPPORTED,
                        "image %s: %s of %lldx%lld pixels is above the limit (%d per side, "
                        "%lld pixels in all)",
                        what, kind, (long long)w, (long long)h, max_side,
                        (long long)max_pixels);
    return EGC_OK;
}

/* ------------------------------------------------------------------------------------- */
/* JPEG                                                                                   */

typedef struct jpeg_err_ctx {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err_ctx;

/* Fatal libjpeg error: keep the message and return to the decoder's setjmp. */
static void jpeg_on_error(j_common_ptr c)
{
    jpeg_err_ctx *e = (jpeg_err_ctx *)c->err;
    e->pub.format_message(c, e->msg);
    longjmp(e->jb, 1);
}

/* Warnings (level -1) and trace messages: silent, except "premature end of JPEG file",
 * which is fatal: a truncated file is an error, as in PIL. */
static void jpeg_on_message(j_common_ptr c, int level)
{
    if (level >= 0) return;
    if (c->err->msg_code == JWRN_JPEG_EOF) jpeg_on_error(c);
    c->err->num_warnings++;
}

static void jpeg_silent(j_common_ptr c) { (void)c; }

/* Refuses files whose scan count is absurd (a known way to make decoding take minutes). */
static void jpeg_on_progress(j_common_ptr c)
{
    if (c->is_decompressor && ((j_decompress_ptr)c)->input_scan_number > 1000) {
        jpeg_err_ctx *e = (jpeg_err_ctx *)c->err;
        snprintf(e->msg, sizeof e->msg, "more than 1000 scans");
        longjmp(e->jb, 1);
    }
}

/* Pillow's CMYK -> RGB (Convert.c cmyk2rgb): r = (255-k) - c*(255-k)/255, rounded as its
 * MULDIV255 does. Adobe files store the channels inverted. */
static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, int w, int inverted)
{
    for (int x = 0; x < w; x++) {
        int c[4];
        for (int i = 0; i < 4; i++) c[i] = inverted ? 255 - in[4 * x + i] : in[4 * x + i];
        int nk = 255 - c[3];
        for (int i = 0; i < 3; i++) {
            int tmp = c[i] * nk + 128;
            int v = nk - (((tmp >> 8) + tmp) >> 8);
            out[3 * x + i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

static egc_status decode_jpeg(const uint8_t *buf, size_t len, const char *what, int max_side,
                              int64_t max_pixels, egc_image *out)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    jpeg_err_ctx jerr;
    uint8_t *volatile pix = NULL;
    uint8_t *volatile row = NULL;
    egc_status st = EGC_OK;

    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_on_error;
    jerr.pub.emit_message = jpeg_on_message;
    jerr.pub.output_message = jpeg_silent;
    jerr.msg[0] = '\0';
    if (setjmp(jerr.jb)) {
        jpeg_destroy_decompress(&cinfo);
        free(pix);
        free(row);
        return EGC_FAIL(EGC_E_FORMAT, "image %s: corrupt or truncated JPEG: %s", what,
                        jerr.msg);
    }
    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = jpeg_on_progress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);

    int cmyk = 0;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB: cinfo.out_color_space = JCS_RGB; break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo.out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        st = EGC_FAIL(EGC_E_UNSUPPORTED,
                      "image %s: JPEG with %d components in an unknown colour space", what,
                      cinfo.num_components);
        goto fail;
    }
    /* The library defaults, stated: they are what Pillow decodes with. */
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    st = check_size(what, "JPEG", cinfo.image_width, cinfo.image_height, max_side, max_pixels);
    if (st != EGC_OK) goto fail;

    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    if ((int64_t)w != (int64_t)cinfo.image_width || (int64_t)h != (int64_t)cinfo.image_height ||
        cinfo.output_components != (cmyk ? 4 : 3)) {
        st = EGC_FAIL(EGC_E_INTERNAL, "image %s: JPEG decoder gave %dx%dx%d for %ux%u", what,
                      w, h, cinfo.output_components, cinfo.image_width, cinfo.image_height);
        goto fail;
    }
    {
        uint8_t *p = NULL;
        st = egc_malloc((void **)&p, (size_t)w * (size_t)h, 3, what);
        if (st != EGC_OK) goto fail;
        pix = p;
        if (cmyk) {
            st = egc_malloc((void **)&p, (size_t)w, 4, what);
            if (st != EGC_OK) goto fail;
            row = p;
        }
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JDIMENSION y = cinfo.output_scanline;
        JSAMPROW dst = cmyk ? row : pix + (size_t)y * (size_t)w * 3;
        if (jpeg_read_scanlines(&cinfo, &dst, 1) != 1) {
            st = EGC_FAIL(EGC_E_FORMAT, "image %s: JPEG data ends at row %u of %d", what, y, h);
            goto fail;
        }
        if (cmyk) cmyk_row_to_rgb(row, pix + (size_t)y * (size_t)w * 3, w, cinfo.saw_Adobe_marker);
    }
    /* Like PIL, a file whose pixels are all there decodes even when trailing markers
     * (EOI) are missing: abort instead of finish. */
    jpeg_abort_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    out->w = w;
    out->h = h;
    out->rgb = pix;
    return EGC_OK;

fail:
    jpeg_destroy_decompress(&cinfo);
    free(pix);
    free(row);
    return st;
}

/* ------------------------------------------------------------------------------------- */
/* PNG                                                                                    */

typedef struct png_ctx {
    const uint8_t *buf;
    size_t len, pos;
    char msg[256];
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_ctx *c = (png_ctx *)png_get_error_ptr(png);
    if (c) snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep dst, png_size_t n)
{
    png_ctx *c = (png_ctx *)png_get_io_ptr(png);
    if (n > c->len - c->pos) png_error(png, "file is truncated");
    memcpy(dst, c->buf + c->pos, n);
    c->pos += n;
}

static egc_status decode_png(const uint8_t *buf, size_t len, const char *what, int max_side,
                             int64_t max_pixels, egc_image *out)
{
    png_ctx ctx = {buf, len, 0, {0}};
    png_structp png = NULL;
    png_infop info = NULL;
    uint8_t *volatile raw = NULL;
    png_bytep *volatile rows = NULL;
    egc_status st = EGC_OK;

    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    if (!png) return EGC_FAIL(EGC_E_NOMEM, "image %s: cannot create a PNG reader", what);
    info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return EGC_FAIL(EGC_E_NOMEM, "image %s: cannot create a PNG reader", what);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(raw);
        free(rows);
        return EGC_FAIL(EGC_E_FORMAT, "image %s: corrupt or truncated PNG: %s", what, ctx.msg);
    }
    png_set_read_fn(png, &ctx, png_read_mem);
    /* libpng's own limits would turn big images into "Invalid IHDR data": let everything
     * through IHDR and refuse it below, before any pixel memory, with a clear message. */
    png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);
    png_read_info(png, info);

    png_uint_32 w32 = 0, h32 = 0;
    int depth = 0, ctype = 0, interlace = 0;
    png_get_IHDR(png, info, &w32, &h32, &depth, &ctype, &interlace, NULL, NULL);
    st = check_size(what, "PNG", (int64_t)w32, (int64_t)h32, max_side, max_pixels);
    if (st != EGC_OK) goto fail;

    /* To 8 bits per channel; alpha (and tRNS) is dropped below, as PIL's convert("RGB")
     * does. */
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int w = (int)w32, h = (int)h32;
    int ch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || ch < 1 || ch > 4 || rowbytes != (size_t)w * ch) {
        st = EGC_FAIL(EGC_E_UNSUPPORTED, "image %s: PNG layout not handled (%d-bit, %d channels)",
                      what, png_get_bit_depth(png, info), ch);
        goto fail;
    }
    {
        uint8_t *p = NULL;
        png_bytep *r = NULL;
        /* At least 3 bytes per pixel so the conversion to RGB can run in place. */
        st = egc_malloc((void **)&p, (size_t)w * (size_t)h, (size_t)EGC_MAX(ch, 3), what);
        if (st != EGC_OK) goto fail;
        raw = p;
        st = egc_malloc((void **)&r, (size_t)h, sizeof *r, what);
        if (st != EGC_OK) goto fail;
        rows = r;
        for (int y = 0; y < h; y++) r[y] = p + (size_t)y * rowbytes;
    }
    png_read_image(png, rows);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    rows = NULL;

    {
        uint8_t *p = raw;
        size_t n = (size_t)w * (size_t)h;
        if (ch == 4) {
            for (size_t i = 0; i < n; i++) {
                p[3 * i + 0] = p[4 * i + 0];
                p[3 * i + 1] = p[4 * i + 1];
                p[3 * i + 2] = p[4 * i + 2];
            }
        } else if (ch == 2) {
            /* Backwards, so that no source byte is overwritten before it is read. */
            for (size_t i = n; i-- > 0;) {
                uint8_t g = p[2 * i];
                p[3 * i + 0] = p[3 * i + 1] = p[3 * i + 2] = g;
            }
        } else if (ch == 1) {
            for (size_t i = n; i-- > 0;) {
                uint8_t g = p[i];
                p[3 * i + 0] = p[3 * i + 1] = p[3 * i + 2] = g;
            }
        }
        out->w = w;
        out->h = h;
        out->rgb = p;
    }
    return EGC_OK;

fail:
    png_destroy_read_struct(&png, &info, NULL);
    free(raw);
    free(rows);
    return st;
}

/* ------------------------------------------------------------------------------------- */
/* BMP                                                                                    */

static uint32_t rd_u16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* One channel of a BITFIELDS pixel: where its bits are and how to widen them to 8 bits. */
typedef struct bmp_mask {
    uint32_t mask;
    int shift;
    uint32_t maxv;   /* largest value after shifting */
} bmp_mask;
/* Fields wider than 8 bits keep their top 8 bits; narrower ones are scaled to 0..255. */

static bmp_mask bmp_mask_make(uint32_t m)
{
    bmp_mask b = {m, 0, 0};
    if (!m) return b;
    while (!((m >> b.shift) & 1u)) b.shift++;
    b.maxv = m >> b.shift;
    return b;
}

static uint8_t bmp_mask_get(const bmp_mask *b, uint32_t px)
{
    if (!b->maxv) return 0;
    uint32_t v = (px & b->mask) >> b->shift;
    if (b->maxv == 255) return (uint8_t)v;
    if (b->maxv > 255) return (uint8_t)(v >> (32 - __builtin_clz(b->maxv) - 8));
    return (uint8_t)((v * 255u) / b->maxv); /* truncating, as PIL widens 5- and 6-bit fields */
}

static egc_status decode_bmp(const uint8_t *buf, size_t len, const char *what, int max_side,
                             int64_t max_pixels, egc_image *out)
{
    if (len < 18) return EGC_FAIL(EGC_E_FORMAT, "image %s: BMP file header is truncated", what);
    uint32_t data_off = rd_u32(buf + 10);
    uint32_t dib = rd_u32(buf + 14);
    if (dib != 12 && dib != 40 && dib != 52 && dib != 56 && dib != 64 && dib != 108 &&
        dib != 124)
        return EGC_FAIL(EGC_E_FORMAT, "image %s: BMP info header of unknown size %u", what, dib);
    if ((size_t)dib > len - 14)
        return EGC_FAIL(EGC_E_FORMAT, "image %s: BMP info header is truncated", what);
    const uint8_t *ih = buf + 14;
    int64_t w, h;
    uint32_t planes, bpp, comp = 0, ncolors = 0;
    int pal_entry = 4;
    if (dib == 12) {
        w = rd_u16(ih + 4);
        h = rd_u16(ih + 6);
        planes = rd_u16(ih + 8);
        bpp = rd_u16(ih + 10);
        pal_entry = 3;
    } else {
        w = (int32_t)rd_u32(ih + 4);
        h = (int32_t)rd_u32(ih + 8);
        planes = rd_u16(ih + 12);
        bpp = rd_u16(ih + 14);
        comp = rd_u32(ih + 16);
        ncolors = rd_u32(ih + 32);
    }
    int top_down = h < 0;
    if (top_down) h = -h;
    if (planes != 1)
        return EGC_FAIL(EGC_E_FORMAT, "image %s: BMP with %u planes (must be 1)", what, planes);
    if (dib == 64 && (comp == 3 || comp == 4))
        return EGC_FAIL(EGC_E_UNSUPPORTED,
                        "image %s: OS/2 BMP with %s compression is not supported", what,
                        comp == 3 ? "Huffman" : "RLE24");
    if (comp == 1 || comp == 2)
        return EGC_FAIL(EGC_E_UNSUPPORTED,
                        "image %s: RLE-compressed BMP (RLE%d) is not supported; save it "
                        "uncompressed or as PNG",
                        what, comp == 1 ? 8 : 4);
    if (comp == 4 || comp == 5)
        return EGC_FAIL(EGC_E_UNSUPPORTED, "image %s: BMP holding a %s stream is not supported",
                        what, comp == 4 ? "JPEG" : "PNG");
    if (comp != 0 && comp != 3 && comp != 6)
        return EGC_FAIL(EGC_E_FORMAT, "image %s: BMP with unknown compression %u", what, comp);
    int bitfields = comp == 3 || comp == 6;
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
        return EGC_FAIL(EGC_E_UNSUPPORTED, "image %s: BMP with %u bits per pixel", what, bpp);
    if (bitfields && bpp != 16 && bpp != 32)
        return EGC_FAIL(EGC_E_FORMAT, "image %s: BMP bit fields with %u bits per pixel", what,
                        bpp);
    EGC_TRY(check_size(what, "BMP", w, h, max_side, max_pixels));

    /* Channel masks: in the header (V2+), after a 40-byte header, or the defaults. */
    size_t pos = 14 + (size_t)dib;
    bmp_mask mr, mg, mb;
    if (bitfields) {
        const uint8_t *m;
        if (dib >= 52) {
            m = ih + 40;
        } else {
            size_t nb = comp == 6 ? 16 : 12;
            if (nb > len - pos)
                return EGC_FAIL(EGC_E_FORMAT, "image %s: BMP bit masks are truncated", what);
            m = buf + pos;
            pos += nb;
        }
        mr = bmp_mask_make(rd_u32(m));
        mg = bmp_mask_make(rd_u32(m + 4));
        mb = bmp_mask_make(rd_u32(m + 8));
    } else if (bpp == 16) {
        mr = bmp_mask_make(0x7C00u);
        mg = bmp_mask_make(0x03E0u);
        mb = bmp_mask_make(0x001Fu);
    } else {
        mr = bmp_mask_make(0x00FF0000u);
        mg = bmp_mask_make(0x0000FF00u);
        mb = bmp_mask_make(0x000000FFu);
    }

    /* Palette (BGR or BGRx entries); indices past its end read as black. */
    uint8_t pal[256][3];
    memset(pal, 0, sizeof pal);
    if (bpp <= 8) {
        uint32_t n = ncolors ? ncolors : (1u << bpp);
        if (n > (1u << bpp)) n = 1u << bpp;
        if ((size_t)n * (size_t)pal_entry > len - EGC_MIN(pos, len))
            return EGC_FAIL(EGC_E_FORMAT, "image %s: BMP palette is truncated", what);
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *e = buf + pos + (size_t)i * (size_t)pal_entry;
            pal[i][0] = e[2];
            pal[i][1] = e[1];
            pal[i][2] = e[0];
        }
    }

    uint64_t stride = (((uint64_t)w * bpp + 31) / 32) * 4;
    uint64_t last_row = ((uint64_t)w * bpp + 7) / 8;
    if ((uint64_t)data_off > len || (uint64_t)(h - 1) * stride + last_row > len - data_off)
        return EGC_FAIL(EGC_E_FORMAT,
                        "image %s: BMP pixel data is truncated (%llu bytes at offset %u, file "
                        "has %zu)",
                        what, (unsigned long long)((uint64_t)(h - 1) * stride + last_row),
                        data_off, len);

    uint8_t *pix = NULL;
    EGC_TRY(egc_malloc((void **)&pix, (size_t)w * (size_t)h, 3, what));
    for (int64_t r = 0; r < h; r++) {
        const uint8_t *src = buf + data_off + (size_t)r * stride;
        int64_t y = top_down ? r : h - 1 - r;
        uint8_t *dst = pix + (size_t)y * (size_t)w * 3;
        for (int64_t x = 0; x < w; x++) {
            uint8_t *d = dst + 3 * x;
            if (bpp <= 8) {
                unsigned idx;
                if (bpp == 8) {
                    idx = src[x];
                } else {
                    int per = 8 / (int)bpp;
                    int sh = 8 - (int)bpp * (int)(x % per + 1);
                    idx = (src[x / per] >> sh) & ((1u << bpp) - 1);
                }
                memcpy(d, pal[idx], 3);
            } else if (bpp == 24) {
                d[0] = src[3 * x + 2];
                d[1] = src[3 * x + 1];
                d[2] = src[3 * x + 0];
            } else {
                uint32_t px = bpp == 16 ? rd_u16(src + 2 * x) : rd_u32(src + 4 * x);
                d[0] = bmp_mask_get(&mr, px);
                d[1] = bmp_mask_get(&mg, px);
                d[2] = bmp_mask_get(&mb, px);
            }
        }
    }
    out->w = (int)w;
    out->h = (int)h;
    out->rgb = pix;
    return EGC_OK;
}

/* ------------------------------------------------------------------------------------- */
/* entry points                                                                           */

egc_status egc_image_decode_limited(const uint8_t *buf, size_t len, const char *what,
                                    int max_side, int64_t max_pixels, egc_image *out)
{
    if (!what) what = "(memory)";
    if (!out) return EGC_FAIL(EGC_E_ARG, "image %s: no output image given", what);
    out->w = out->h = 0;
    out->rgb = NULL;
    if (!buf && len) return EGC_FAIL(EGC_E_ARG, "image %s: NULL buffer", what);
    if (max_side <= 0 || max_side > EGC_IMAGE_MAX_SIDE) max_side = EGC_IMAGE_MAX_SIDE;
    if (max_pixels <= 0 || max_pixels > EGC_IMAGE_MAX_PIXELS) max_pixels = EGC_IMAGE_MAX_PIXELS;
    if (len == 0) return EGC_FAIL(EGC_E_FORMAT, "image %s: empty file", what);

    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
        return decode_jpeg(buf, len, what, max_side, max_pixels, out);
    if (len >= 8 && memcmp(buf, png_sig, 8) == 0)
        return decode_png(buf, len, what, max_side, max_pixels, out);
    if (len >= 2 && buf[0] == 'B' && buf[1] == 'M')
        return decode_bmp(buf, len, what, max_side, max_pixels, out);

    const char *other = NULL;
    if (len >= 4 && memcmp(buf, "GIF8", 4) == 0) other = "GIF";
    else if (len >= 12 && memcmp(buf, "RIFF", 4) == 0 && memcmp(buf + 8, "WEBP", 4) == 0)
        other = "WebP";
    else if (len >= 4 && (memcmp(buf, "II*\0", 4) == 0 || memcmp(buf, "MM\0*", 4) == 0))
        other = "TIFF";
    if (other)
        return EGC_FAIL(EGC_E_UNSUPPORTED,
                        "image %s: %s images are not supported (JPEG, PNG and BMP are)", what,
                        other);
    return EGC_FAIL(EGC_E_FORMAT, "image %s: not a JPEG, PNG or BMP image (unknown first bytes)",
                    what);
}

egc_status egc_image_decode(const uint8_t *buf, size_t len, const char *what, egc_image *out)
{
    return egc_image_decode_limited(buf, len, what, EGC_IMAGE_MAX_SIDE, EGC_IMAGE_MAX_PIXELS,
                                    out);
}

egc_status egc_image_load(const char *path, egc_image *out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "egc_image_load: no output image given");
    out->w = out->h = 0;
    out->rgb = NULL;
    if (!path || !*path) return EGC_FAIL(EGC_E_ARG, "egc_image_load: empty path");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return EGC_FAIL(EGC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return EGC_FAIL(EGC_E_IO, "%s: not a regular file", path);
    uint8_t *data = NULL;
    size_t len = 0;
    EGC_TRY(egc_read_file(path, &data, &len));
    egc_status st = egc_image_decode(data, len, path, out);
    free(data);
    return st;
}

/* ------------------------------------------------------------------------------------- */
/* writing                                                                                */

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (m > n) return 0;
    for (size_t i = 0; i < m; i++)
        if (tolower((unsigned char)s[n - m + i]) != tolower((unsigned char)suffix[i])) return 0;
    return 1;
}

typedef struct png_wctx {
    char msg[256];
} png_wctx;

static void png_on_write_error(png_structp png, png_const_charp msg)
{
    png_wctx *c = (png_wctx *)png_get_error_ptr(png);
    if (c) snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static egc_status save_png(const char *path, FILE *f, const egc_image *img)
{
    png_wctx ctx = {{0}};
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_write_error, png_on_warning);
    if (!png) return EGC_FAIL(EGC_E_NOMEM, "%s: cannot create a PNG writer", path);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return EGC_FAIL(EGC_E_NOMEM, "%s: cannot create a PNG writer", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return EGC_FAIL(EGC_E_IO, "%s: cannot write PNG: %s", path, ctx.msg);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < img->h; y++)
        png_write_row(png, (png_const_bytep)(img->rgb + (size_t)y * (size_t)img->w * 3));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return EGC_OK;
}

static egc_status save_jpeg(const char *path, FILE *f, const egc_image *img, int quality)
{
    struct jpeg_compress_struct cinfo;
    jpeg_err_ctx jerr;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_on_error;
    jerr.pub.output_message = jpeg_silent;
    jerr.msg[0] = '\0';
    if (setjmp(jerr.jb)) {
        jpeg_destroy_compress(&cinfo);
        return EGC_FAIL(EGC_E_IO, "%s: cannot write JPEG: %s", path, jerr.msg);
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)img->w;
    cinfo.image_height = (JDIMENSION)img->h;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        /* libjpeg takes non-const rows but does not write to them. */
        JSAMPROW r = (JSAMPROW)(img->rgb + (size_t)cinfo.next_scanline * (size_t)img->w * 3);
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return EGC_OK;
}

egc_status egc_image_save(const char *path, const egc_image *img, int quality)
{
    if (!path || !*path) return EGC_FAIL(EGC_E_ARG, "egc_image_save: empty path");
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0)
        return EGC_FAIL(EGC_E_ARG, "%s: no image to save (empty or NULL)", path);
    if (img->w > EGC_IMAGE_MAX_SIDE || img->h > EGC_IMAGE_MAX_SIDE)
        return EGC_FAIL(EGC_E_ARG, "%s: image of %dx%d is too large to save", path, img->w,
                        img->h);
    int jpeg = ends_with_ci(path, ".jpg") || ends_with_ci(path, ".jpeg");
    if (jpeg && (quality < 1 || quality > 100))
        return EGC_FAIL(EGC_E_ARG, "%s: JPEG quality %d is outside 1..100", path, quality);
    FILE *f = fopen(path, "wb");
    if (!f) return EGC_FAIL(EGC_E_IO, "%s: cannot create: %s", path, strerror(errno));
    egc_status st = jpeg ? save_jpeg(path, f, img, quality) : save_png(path, f, img);
    int bad_write = ferror(f);
    int bad_close = fclose(f) != 0;
    if (st == EGC_OK && (bad_write || bad_close))
        st = EGC_FAIL(EGC_E_IO, "%s: write failed (disk full or I/O error)", path);
    if (st != EGC_OK) remove(path);
    return st;
}

/* pb.c: the bounds-checked protobuf wire-format decoder (see pb.h). Every read is checked
 * against the end of the current message; errors name the source, the byte offset and the
 * field path kept in the shared context. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/pb.h"

egc_pb egc_pb_begin(egc_pb_ctx *ctx, const uint8_t *buf, size_t len, const char *what,
                    const char *root)
{
    ctx->buf = buf;
    ctx->len = buf ? len : 0;
    ctx->what = what ? what : "protobuf";
    ctx->plen = 0;
    ctx->path[0] = '\0';
    egc_pb_path_push(ctx, "%s", root ? root : "");
    egc_pb c = {ctx, 0, 0, ctx->len, 0};
    return c;
}

size_t egc_pb_path_push(egc_pb_ctx *ctx, const char *fmt, ...)
{
    size_t mark = ctx->plen;
    size_t room = sizeof ctx->path - ctx->plen;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ctx->path + ctx->plen, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        ctx->path[ctx->plen] = '\0';
        return mark;
    }
    if ((size_t)n >= room) {
        /* Cut: keep what fits and mark it. */
        memcpy(ctx->path + sizeof ctx->path - 4, "...", 4);
        ctx->plen = sizeof ctx->path - 1;
    } else {
        ctx->plen += (size_t)n;
    }
    return mark;
}

void egc_pb_path_pop(egc_pb_ctx *ctx, size_t mark)
{
    if (mark < ctx->plen) {
        ctx->plen = mark;
        ctx->path[mark] = '\0';
    }
}

egc_status egc_pb_fail(const egc_pb_ctx *ctx, egc_status code, size_t off, const char *reason,
                       const char *detail_fmt, ...)
{
    char detail[512];
    detail[0] = '\0';
    if (detail_fmt) {
        va_list ap;
        va_start(ap, detail_fmt);
        vsnprintf(detail, sizeof detail, detail_fmt, ap);
        va_end(ap);
    }
    return EGC_FAIL(code, "%s: %s at byte %zu in %s%s%s", ctx->what, reason, off, ctx->path,
                    detail[0] ? ": " : "", detail);
}

/* Decodes a varint from buf[*pos..end). Returns 0 on success (advancing *pos), 1 when the
 * bytes run out, 2 when the varint is longer than 10 bytes. */
static int read_varint(const uint8_t *buf, size_t *pos, size_t end, uint64_t *out)
{
    uint64_t v = 0;
    size_t p = *pos;
    for (int i = 0; i < 10; i++) {
        if (p >= end) return 1;
        uint8_t b = buf[p++];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            *pos = p;
            return 0;
        }
    }
    return 2;
}

static egc_status varint_fail(const egc_pb *c, int rc, size_t off, const char *what)
{
    if (rc == 1)
        return egc_pb_fail(c->ctx, EGC_E_FORMAT, off, "truncated", "%s runs past the end of the message", what);
    return egc_pb_fail(c->ctx, EGC_E_FORMAT, off, "malformed varint", "%s is longer than 10 bytes", what);
}

egc_status egc_pb_next(egc_pb *c, egc_pb_field *f, int *more)
{
    *more = 0;
    memset(f, 0, sizeof *f);
    if (c->pos >= c->end) return EGC_OK;
    const uint8_t *buf = c->ctx->buf;
    size_t off = c->pos, p = c->pos;
    uint64_t tag;
    int rc = read_varint(buf, &p, c->end, &tag);
    if (rc) return varint_fail(c, rc, off, "field tag");
    uint64_t num = tag >> 3;
    int wire = (int)(tag & 7);
    if (num == 0 || num > 0x1fffffffu)
        return egc_pb_fail(c->ctx, EGC_E_FORMAT, off, "invalid field number", "%llu",
                           (unsigned long long)num);
    f->num = (uint32_t)num;
    f->wire = wire;
    f->tag_off = off;
    switch (wire) {
    case EGC_PB_VARINT:
        rc = read_varint(buf, &p, c->end, &f->u);
        if (rc) return varint_fail(c, rc, p, "varint value");
        break;
    case EGC_PB_I64:
        if (c->end - p < 8)
            return egc_pb_fail(c->ctx, EGC_E_FORMAT, p, "truncated",
                               "field %u needs 8 bytes, %zu left", f->num, c->end - p);
        f->u = egc_pb_le64(buf + p);
        p += 8;
        break;
    case EGC_PB_I32:
        if (c->end - p < 4)
            return egc_pb_fail(c->ctx, EGC_E_FORMAT, p, "truncated",
                               "field %u needs 4 bytes, %zu left", f->num, c->end - p);
        f->u = egc_pb_le32(buf + p);
        p += 4;
        break;
    case EGC_PB_LEN: {
        uint64_t n;
        size_t loff = p;
        rc = read_varint(buf, &p, c->end, &n);
        if (rc) return varint_fail(c, rc, loff, "length");
        if (n > (uint64_t)(c->end - p))
            return egc_pb_fail(c->ctx, EGC_E_FORMAT, loff, "truncated",
                               "field %u needs %llu bytes, %zu left", f->num,
                               (unsigned long long)n, c->end - p);
        f->off = p;
        f->len = (size_t)n;
        p += (size_t)n;
        break;
    }
    case 3:
    case 4:
        return egc_pb_fail(c->ctx, EGC_E_FORMAT, off, "unsupported wire type",
                           "field %u uses groups (wire type %d)", f->num, wire);
    default:
        return egc_pb_fail(c->ctx, EGC_E_FORMAT, off, "invalid wire type",
                           "field %u has wire type %d", f->num, wire);
    }
    c->pos = p;
    *more = 1;
    return EGC_OK;
}

static const char *wire_name(int w)
{
    switch (w) {
    case EGC_PB_VARINT: return "varint";
    case EGC_PB_I64: return "fixed64";
    case EGC_PB_LEN: return "length-delimited";
    case EGC_PB_I32: return "fixed32";
    }
    return "invalid";
}

egc_status egc_pb_expect(const egc_pb *c, const egc_pb_field *f, int wire, const char *name)
{
    if (f->wire == wire) return EGC_OK;
    return egc_pb_fail(c->ctx, EGC_E_FORMAT, f->tag_off, "wrong wire type",
                       "field %u (%s) is %s, expected %s", f->num, name, wire_name(f->wire),
                       wire_name(wire));
}

egc_status egc_pb_sub(const egc_pb *c, const egc_pb_field *f, egc_pb *sub)
{
    EGC_TRY(egc_pb_expect(c, f, EGC_PB_LEN, "message"));
    if (c->depth + 1 > EGC_PB_MAX_DEPTH)
        return egc_pb_fail(c->ctx, EGC_E_FORMAT, f->tag_off, "nesting too deep",
                           "more than %d levels", EGC_PB_MAX_DEPTH);
    sub->ctx = c->ctx;
    sub->start = f->off;
    sub->pos = f->off;
    sub->end = f->off + f->len;
    sub->depth = c->depth + 1;
    return EGC_OK;
}

/* Two's-complement reinterpretation of a varint as int64 without implementation-defined
 * conversions. */
static int64_t u2i(uint64_t u)
{
    if (u <= (uint64_t)INT64_MAX) return (int64_t)u;
    return -(int64_t)(~u) - 1;
}

egc_status egc_pb_int64(const egc_pb *c, const egc_pb_field *f, const char *name, int64_t *out)
{
    EGC_TRY(egc_pb_expect(c, f, EGC_PB_VARINT, name));
    *out = u2i(f->u);
    return EGC_OK;
}

egc_status egc_pb_float(const egc_pb *c, const egc_pb_field *f, const char *name, float *out)
{
    EGC_TRY(egc_pb_expect(c, f, EGC_PB_I32, name));
    uint32_t b = (uint32_t)f->u;
    memcpy(out, &b, 4);
    return EGC_OK;
}

egc_status egc_pb_string(const egc_pb *c, const egc_pb_field *f, const char *name, char **out)
{
    EGC_TRY(egc_pb_expect(c, f, EGC_PB_LEN, name));
    char *s = NULL;
    EGC_TRY(egc_malloc((void **)&s, f->len + 1, 1, name));
    if (f->len) memcpy(s, c->ctx->buf + f->off, f->len);
    s[f->len] = '\0';
    free(*out);
    *out = s;
    return EGC_OK;
}

/* Makes room for add more elements of size elem in *v (cap/n in elements). */
static egc_status vec_reserve(void **v, size_t *cap, size_t n, size_t add, size_t elem,
                              const char *name)
{
    if (add > SIZE_MAX / elem - n)
        return EGC_FAIL(EGC_E_NOMEM, "%s: too many elements", name);
    size_t need = n + add;
    if (need <= *cap) return EGC_OK;
    size_t nc = *cap ? *cap : 8;
    while (nc < need) nc = nc > SIZE_MAX / 2 / elem ? need : nc * 2;
    EGC_TRY(egc_realloc(v, nc, elem, name));
    *cap = nc;
    return EGC_OK;
}

egc_status egc_pb_rep_int64(const egc_pb *c, const egc_pb_field *f, const char *name,
                            egc_pb_i64vec *v)
{
    if (f->wire == EGC_PB_VARINT) {
        EGC_TRY(vec_reserve((void **)&v->v, &v->cap, v->n, 1, sizeof *v->v, name));
        v->v[v->n++] = u2i(f->u);
        return EGC_OK;
    }
    EGC_TRY(egc_pb_expect(c, f, EGC_PB_LEN, name));
    const uint8_t *buf = c->ctx->buf;
    size_t end = f->off + f->len, count = 0;
    /* Each varint ends with the one byte whose top bit is clear. */
    for (size_t p = f->off; p < end; p++) count += !(buf[p] & 0x80);
    if (f->len && (buf[end - 1] & 0x80))
        return egc_pb_fail(c->ctx, EGC_E_FORMAT, end - 1, "truncated",
                           "packed %s ends inside a varint", name);
    EGC_TRY(vec_reserve((void **)&v->v, &v->cap, v->n, count, sizeof *v->v, name));
    size_t p = f->off;
    while (p < end) {
        uint64_t u;
        size_t at = p;
        int rc = read_varint(buf, &p, end, &u);
        if (rc) return varint_fail(c, rc, at, name);
        v->v[v->n++] = u2i(u);
    }
    return EGC_OK;
}

egc_status egc_pb_rep_float(const egc_pb *c, const egc_pb_field *f, const char *name,
                            egc_pb_f32vec *v)
{
    if (f->wire == EGC_PB_I32) {
        EGC_TRY(vec_reserve((void **)&v->v, &v->cap, v->n, 1, sizeof *v->v, name));
        uint32_t b = (uint32_t)f->u;
        memcpy(&v->v[v->n++], &b, 4);
        return EGC_OK;
    }
    EGC_TRY(egc_pb_expect(c, f, EGC_PB_LEN, name));
    if (f->len % 4)
        return egc_pb_fail(c->ctx, EGC_E_FORMAT, f->off, "truncated",
                           "packed %s has %zu bytes, not a multiple of 4", name, f->len);
    size_t count = f->len / 4;
    EGC_TRY(vec_reserve((void **)&v->v, &v->cap, v->n, count, sizeof *v->v, name));
    const uint8_t *p = c->ctx->buf + f->off;
    for (size_t i = 0; i < count; i++) {
        uint32_t b = egc_pb_le32(p + 4 * i);
        memcpy(&v->v[v->n++], &b, 4);
    }
    return EGC_OK;
}

egc_status egc_pb_rep_double(const egc_pb *c, const egc_pb_field *f, const char *name,
                             egc_pb_f64vec *v)
{
    if (f->wire == EGC_PB_I64) {
        EGC_TRY(vec_reserve((void **)&v->v, &v->cap, v->n, 1, sizeof *v->v, name));
        uint64_t b = f->u;
        memcpy(&v->v[v->n++], &b, 8);
        return EGC_OK;
    }
    EGC_TRY(egc_pb_expect(c, f, EGC_PB_LEN, name));
    if (f->len % 8)
        return egc_pb_fail(c->ctx, EGC_E_FORMAT, f->off, "truncated",
                           "packed %s has %zu bytes, not a multiple of 8", name, f->len);
    size_t count = f->len / 8;
    EGC_TRY(vec_reserve((void **)&v->v, &v->cap, v->n, count, sizeof *v->v, name));
    const uint8_t *p = c->ctx->buf + f->off;
    for (size_t i = 0; i < count; i++) {
        uint64_t b = egc_pb_le64(p + 8 * i);
        memcpy(&v->v[v->n++], &b, 8);
    }
    return EGC_OK;
}

void egc_pb_i64vec_free(egc_pb_i64vec *v)
{
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

void egc_pb_f32vec_free(egc_pb_f32vec *v)
{
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

void egc_pb_f64vec_free(egc_pb_f64vec *v)
{
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

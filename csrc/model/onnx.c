/* onnx.c: reads an ONNX ModelProto (and single TensorProtos) into the raw structures of
 * onnx.h with the wire-format decoder of pb.c.
 *
 * Kept: ModelProto ir_version, opset_import, producer_name, graph; GraphProto node,
 * initializer, input, output (value_info and name are skipped); NodeProto input, output,
 * name, op_type, domain, attribute; AttributeProto name, type, f, i, s, t, floats, ints,
 * strings (g and the rest are skipped); TensorProto dims, data_type, typed data fields,
 * raw_data and external data. Tensor data is converted on load (float types to float32,
 * integer/bool types to int64). Every error names the source, the byte offset and the field
 * path; partially built structures are freed on every error path. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "model/onnx.h"
#include "model/pb.h"

/* ONNX data types beyond those listed in egc_dtype that the reader also converts. */
enum { DT_UINT16 = 4, DT_INT16 = 5, DT_BFLOAT16 = 16 };

typedef struct parser {
    egc_pb_ctx ctx;
    const char *base_dir;    /* folder for external data, or NULL */
} parser;

/* ---- small helpers ---- */

/* Makes room for element n of *arr (elements of elem bytes; capacity doubles at powers of
 * two) and zeroes it. The caller then increments its count. */
static egc_status grow(void **arr, int n, size_t elem, const char *what)
{
    if (n >= INT_MAX / 2) return EGC_FAIL(EGC_E_FORMAT, "too many %s (%d)", what, n);
    if (n == 0 || (n & (n - 1)) == 0)
        EGC_TRY(egc_realloc(arr, n ? (size_t)n * 2 : 1, elem, what));
    memset((char *)*arr + (size_t)n * elem, 0, elem);
    return EGC_OK;
}

/* Appends a copy of the string field f to (*arr)[0..*n). */
static egc_status push_string(const egc_pb *c, const egc_pb_field *f, const char *name,
                              char ***arr, int *n)
{
    EGC_TRY(egc_pb_expect(c, f, EGC_PB_LEN, name));
    EGC_TRY(grow((void **)arr, *n, sizeof **arr, name));
    (*n)++;
    EGC_TRY(egc_pb_string(c, f, name, &(*arr)[*n - 1]));
    return EGC_OK;
}

static const char *dtype_name(int64_t dt)
{
    switch (dt) {
    case EGC_DT_FLOAT: return "FLOAT";
    case EGC_DT_UINT8: return "UINT8";
    case EGC_DT_INT8: return "INT8";
    case DT_UINT16: return "UINT16";
    case DT_INT16: return "INT16";
    case EGC_DT_INT32: return "INT32";
    case EGC_DT_INT64: return "INT64";
    case 8: return "STRING";
    case EGC_DT_BOOL: return "BOOL";
    case EGC_DT_FLOAT16: return "FLOAT16";
    case EGC_DT_DOUBLE: return "DOUBLE";
    case 12: return "UINT32";
    case 13: return "UINT64";
    case 14: return "COMPLEX64";
    case 15: return "COMPLEX128";
    case DT_BFLOAT16: return "BFLOAT16";
    }
    return "unknown";
}

/* Bytes per element in raw_data, or 0 for a type the reader does not convert. */
static size_t dtype_size(int64_t dt)
{
    switch (dt) {
    case EGC_DT_UINT8:
    case EGC_DT_INT8:
    case EGC_DT_BOOL: return 1;
    case DT_UINT16:
    case DT_INT16:
    case EGC_DT_FLOAT16:
    case DT_BFLOAT16: return 2;
    case EGC_DT_FLOAT:
    case EGC_DT_INT32: return 4;
    case EGC_DT_INT64:
    case EGC_DT_DOUBLE: return 8;
    }
    return 0;
}

static int dtype_is_float(int64_t dt)
{
    return dt == EGC_DT_FLOAT || dt == EGC_DT_FLOAT16 || dt == EGC_DT_DOUBLE || dt == DT_BFLOAT16;
}

/* IEEE half (binary16) bits to float, exact for every value incl. subnormals, inf, NaN. */
static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, b;
    if (e == 0) {
        if (m == 0) {
            b = s;
        } else {
            uint32_t sh = 0;
            while (!(m & 0x400u)) {
                m <<= 1;
                sh++;
            }
            b = s | ((113u - sh) << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        b = s | 0x7f800000u | (m << 13);
    } else {
        b = s | ((e + 112u) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static float bits_to_float(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* Sign-extends the low 8/16/32 bits of u. */
static int64_t sext(uint64_t u, int bits)
{
    if (bits < 64) {
        uint64_t mask = ((uint64_t)1 << bits) - 1;
        u &= mask;
        if (u >> (bits - 1)) u |= ~mask;
    }
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

/* ---- TensorProto ---- */

typedef struct tensor_fields {
    egc_pb_i64vec dims, i32, i64;
    egc_pb_f32vec f32;
    egc_pb_f64vec f64;
    int64_t dtype;
    int has_raw;
    size_t raw_off, raw_len;
    int64_t location;        /* data_location: 0 default, 1 external */
    int has_segment;
    char *ext_location;
    int64_t ext_offset, ext_length;   /* -1 when absent */
    char *ext_offset_s, *ext_length_s;
} tensor_fields;

static void tensor_fields_free(tensor_fields *r)
{
    egc_pb_i64vec_free(&r->dims);
    egc_pb_i64vec_free(&r->i32);
    egc_pb_i64vec_free(&r->i64);
    egc_pb_f32vec_free(&r->f32);
    egc_pb_f64vec_free(&r->f64);
    free(r->ext_location);
    free(r->ext_offset_s);
    free(r->ext_length_s);
}

/* StringStringEntryProto {key = 1, value = 2} of TensorProto.external_data. */
static egc_status parse_ext_entry(egc_pb *c, tensor_fields *r)
{
    char *key = NULL, *value = NULL;
    egc_status st = EGC_OK;
    egc_pb_field f;
    int more;
    for (;;) {
        EGC_TRYG(st, egc_pb_next(c, &f, &more), done);
        if (!more) break;
        if (f.num == 1) EGC_TRYG(st, egc_pb_string(c, &f, "key", &key), done);
        else if (f.num == 2) EGC_TRYG(st, egc_pb_string(c, &f, "value", &value), done);
    }
    if (key && value) {
        char **dst = NULL;
        if (!strcmp(key, "location")) dst = &r->ext_location;
        else if (!strcmp(key, "offset")) dst = &r->ext_offset_s;
        else if (!strcmp(key, "length")) dst = &r->ext_length_s;
        if (dst) {
            free(*dst);
            *dst = value;
            value = NULL;
        }
    }
done:
    free(key);
    free(value);
    return st;
}

/* Parses a decimal external-data offset/length ("" or absent: -1). */
static egc_status parse_decimal(const egc_pb *c, const char *s, const char *key, const char *tname,
                                int64_t *out)
{
    *out = -1;
    if (!s) return EGC_OK;
    int64_t v = 0;
    if (!*s) goto bad;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') goto bad;
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10) goto bad;
        v = v * 10 + d;
    }
    *out = v;
    return EGC_OK;
bad:
    return egc_pb_fail(c->ctx, EGC_E_FORMAT, c->start, "bad external data",
                       "tensor '%s': %s '%.40s' is not a non-negative integer", tname, key, s);
}

/* Checks that an external data location stays inside base_dir: relative, no "..". */
static int location_ok(const char *loc)
{
    if (!loc[0] || loc[0] == '/' || loc[0] == '\\') return 0;
    if (loc[0] && loc[1] == ':') return 0; /* drive letter */
    const char *p = loc;
    while (*p) {
        size_t n = strcspn(p, "/\\");
        if (n == 2 && p[0] == '.' && p[1] == '.') return 0;
        p += n;
        if (*p) p++;
    }
    return 1;
}

/* Reads need bytes of external data for tensor tname into *out (malloc'd). */
static egc_status read_external(parser *P, const egc_pb *c, const tensor_fields *r,
                                const char *tname, size_t need, uint8_t **out)
{
    *out = NULL;
    const egc_pb_ctx *ctx = c->ctx;
    if (!P->base_dir)
        return egc_pb_fail(ctx, EGC_E_UNSUPPORTED, c->start, "external data not allowed",
                           "tensor '%s' keeps its data in a file, but no folder was given", tname);
    if (!r->ext_location)
        return egc_pb_fail(ctx, EGC_E_FORMAT, c->start, "bad external data",
                           "tensor '%s' has no 'location'", tname);
    if (!location_ok(r->ext_location))
        return egc_pb_fail(ctx, EGC_E_FORMAT, c->start, "bad external data",
                           "tensor '%s': location '%.200s' must be a relative path without '..'",
                           tname, r->ext_location);
    int64_t off, len;
    EGC_TRY(parse_decimal(c, r->ext_offset_s, "offset", tname, &off));
    EGC_TRY(parse_decimal(c, r->ext_length_s, "length", tname, &len));
    if (off < 0) off = 0;
    if (len >= 0 && (uint64_t)len != (uint64_t)need)
        return egc_pb_fail(ctx, EGC_E_FORMAT, c->start, "data size mismatch",
                           "tensor '%s': external length %lld, dims and type need %zu bytes",
                           tname, (long long)len, need);

    size_t bl = strlen(P->base_dir), ll = strlen(r->ext_location);
    char *path = NULL;
    EGC_TRY(egc_malloc((void **)&path, bl + ll + 2, 1, "external data path"));
    memcpy(path, P->base_dir, bl);
    path[bl] = '/';
    memcpy(path + bl + 1, r->ext_location, ll + 1);

    egc_status st = EGC_OK;
    uint8_t *data = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        st = EGC_FAIL(EGC_E_IO, "%s: tensor '%s': cannot open external data file %s in %s",
                      ctx->what, tname, path, ctx->path);
        goto done;
    }
    off_t size = -1;
    if (fseeko(fp, 0, SEEK_END) == 0) size = ftello(fp);
    if (size < 0) {
        st = EGC_FAIL(EGC_E_IO, "%s: tensor '%s': cannot size external data file %s", ctx->what,
                      tname, path);
        goto done;
    }
    if ((uint64_t)off > (uint64_t)size || (uint64_t)size - (uint64_t)off < (uint64_t)need) {
        st = egc_pb_fail(ctx, EGC_E_FORMAT, c->start, "data size mismatch",
                         "tensor '%s': external file %s has %lld bytes, offset %lld + %zu needed",
                         tname, r->ext_location, (long long)size, (long long)off, need);
        goto done;
    }
    EGC_TRYG(st, egc_malloc((void **)&data, need, 1, "external tensor data"), done);
    if (fseeko(fp, (off_t)off, SEEK_SET) != 0 || fread(data, 1, need, fp) != need) {
        st = EGC_FAIL(EGC_E_IO, "%s: tensor '%s': cannot read %zu bytes at %lld of %s", ctx->what,
                      tname, need, (long long)off, path);
        goto done;
    }
    *out = data;
    data = NULL;
done:
    if (fp) fclose(fp);
    free(data);
    free(path);
    return st;
}

/* Converts numel little-endian elements of type dt at p into t->f32 / t->i64. */
static void convert_le(const uint8_t *p, int64_t dt, int64_t numel, egc_onnx_tensor *t)
{
    for (int64_t i = 0; i < numel; i++) {
        switch (dt) {
        case EGC_DT_FLOAT: t->f32[i] = bits_to_float(egc_pb_le32(p + 4 * i)); break;
        case EGC_DT_DOUBLE: {
            uint64_t b = egc_pb_le64(p + 8 * i);
            double d;
            memcpy(&d, &b, 8);
            t->f32[i] = (float)d;
            break;
        }
        case EGC_DT_FLOAT16: t->f32[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)); break;
        case DT_BFLOAT16:
            t->f32[i] = bits_to_float((uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16);
            break;
        case EGC_DT_UINT8: t->i64[i] = p[i]; break;
        case EGC_DT_INT8: t->i64[i] = sext(p[i], 8); break;
        case EGC_DT_BOOL: t->i64[i] = p[i] != 0; break;
        case DT_UINT16: t->i64[i] = p[2 * i] | p[2 * i + 1] << 8; break;
        case DT_INT16: t->i64[i] = sext((uint64_t)(p[2 * i] | p[2 * i + 1] << 8), 16); break;
        case EGC_DT_INT32: t->i64[i] = sext(egc_pb_le32(p + 4 * i), 32); break;
        case EGC_DT_INT64: t->i64[i] = sext(egc_pb_le64(p + 8 * i), 64); break;
        }
    }
}

/* Turns the collected fields into t: checks dims and data sizes, converts the data. */
static egc_status finish_tensor(parser *P, const egc_pb *c, tensor_fields *r, egc_onnx_tensor *t)
{
    const egc_pb_ctx *ctx = c->ctx;
    if (!t->name) EGC_TRY(egc_strdup(&t->name, ""));
    const char *tn = t->name;
    int64_t dt = r->dtype;
    t->orig_dtype = dt >= INT_MIN && dt <= INT_MAX ? (int)dt : -1;
    if (r->has_segment)
        return egc_pb_fail(ctx, EGC_E_UNSUPPORTED, c->start, "unsupported tensor",
                           "tensor '%s' is split into segments", tn);
    if (r->dims.n > EGC_MAX_DIMS)
        return egc_pb_fail(ctx, EGC_E_UNSUPPORTED, c->start, "unsupported tensor",
                           "tensor '%s' has %zu dims, at most %d are supported", tn, r->dims.n,
                           EGC_MAX_DIMS);
    int64_t numel = 1;
    for (size_t i = 0; i < r->dims.n; i++) {
        int64_t d = r->dims.v[i];
        if (d < 0)
            return egc_pb_fail(ctx, EGC_E_FORMAT, c->start, "bad tensor",
                               "tensor '%s' has negative dim %lld", tn, (long long)d);
        if (d && numel > INT64_MAX / d)
            return egc_pb_fail(ctx, EGC_E_FORMAT, c->start, "bad tensor",
                               "tensor '%s': element count overflows", tn);
        numel *= d;
    }
    t->shape = egc_shape_make((int)r->dims.n, r->dims.v);
    size_t esize = dtype_size(dt);
    if (!esize)
        return egc_pb_fail(ctx, EGC_E_UNSUPPORTED, c->start, "unsupported tensor",
                           "tensor '%s' has data type %lld (%s)", tn, (long long)dt,
                           dtype_name(dt));
    if ((uint64_t)numel > SIZE_MAX / 8)
        return egc_pb_fail(ctx, EGC_E_FORMAT, c->start, "bad tensor",
                           "tensor '%s' is too large (%lld elements)", tn, (long long)numel);
    t->is_float = dtype_is_float(dt);
    t->numel = numel;
    size_t need = (size_t)numel * esize;
    char sbuf[160];
    egc_shape_str(&t->shape, sbuf, sizeof sbuf);

    const uint8_t *bytes = NULL;
    uint8_t *ext = NULL;
    const egc_pb_i64vec *iv = NULL;
    size_t have = 0;
    const char *field = NULL;
    if (r->location == 1) {
        EGC_TRY(read_external(P, c, r, tn, need, &ext));
        bytes = ext;
    } else if (r->has_raw) {
        if (r->raw_len != need)
            return egc_pb_fail(ctx, EGC_E_FORMAT, r->raw_off, "data size mismatch",
                               "tensor '%s': raw_data has %zu bytes, dims %s of %s need %zu", tn,
                               r->raw_len, sbuf, dtype_name(dt), need);
        bytes = ctx->buf + r->raw_off;
    } else {
        switch (dt) {
        case EGC_DT_FLOAT: have = r->f32.n; field = "float_data"; break;
        case EGC_DT_DOUBLE: have = r->f64.n; field = "double_data"; break;
        case EGC_DT_INT64: have = r->i64.n; field = "int64_data"; iv = &r->i64; break;
        default: have = r->i32.n; field = "int32_data"; iv = &r->i32; break;
        }
        if (have != (size_t)numel)
            return egc_pb_fail(ctx, EGC_E_FORMAT, c->start, "data size mismatch",
                               "tensor '%s': %s has %zu values, dims %s need %lld", tn, field,
                               have, sbuf, (long long)numel);
    }
    if (numel == 0) {
        free(ext);
        return EGC_OK;
    }
    egc_status st;
    if (t->is_float) st = egc_malloc((void **)&t->f32, (size_t)numel, sizeof(float), tn);
    else st = egc_malloc((void **)&t->i64, (size_t)numel, sizeof(int64_t), tn);
    if (st != EGC_OK) {
        free(ext);
        return st;
    }
    if (bytes) {
        convert_le(bytes, dt, numel, t);
    } else if (dt == EGC_DT_FLOAT) {
        memcpy(t->f32, r->f32.v, (size_t)numel * sizeof(float));
    } else if (dt == EGC_DT_DOUBLE) {
        for (int64_t i = 0; i < numel; i++) t->f32[i] = (float)r->f64.v[i];
    } else {
        for (int64_t i = 0; i < numel; i++) {
            int64_t v = iv->v[i];
            switch (dt) {
            case EGC_DT_FLOAT16: t->f32[i] = half_to_float((uint16_t)v); break;
            case DT_BFLOAT16: t->f32[i] = bits_to_float((uint32_t)(uint16_t)v << 16); break;
            case EGC_DT_INT64: t->i64[i] = v; break;
            case EGC_DT_BOOL: t->i64[i] = v != 0; break;
            case EGC_DT_UINT8: t->i64[i] = (uint8_t)v; break;
            case DT_UINT16: t->i64[i] = (uint16_t)v; break;
            case EGC_DT_INT8: t->i64[i] = sext((uint64_t)v, 8); break;
            case DT_INT16: t->i64[i] = sext((uint64_t)v, 16); break;
            default: t->i64[i] = sext((uint64_t)v, 32); break;
            }
        }
    }
    free(ext);
    return EGC_OK;
}

/* TensorProto. On failure t is cleared. */
static egc_status parse_tensor(parser *P, egc_pb *c, egc_onnx_tensor *t)
{
    tensor_fields r;
    memset(&r, 0, sizeof r);
    egc_status st = EGC_OK;
    egc_pb_field f;
    int more;
    for (;;) {
        EGC_TRYG(st, egc_pb_next(c, &f, &more), done);
        if (!more) break;
        switch (f.num) {
        case 1: EGC_TRYG(st, egc_pb_rep_int64(c, &f, "dims", &r.dims), done); break;
        case 2: EGC_TRYG(st, egc_pb_int64(c, &f, "data_type", &r.dtype), done); break;
        case 3: r.has_segment = 1; break;
        case 4: EGC_TRYG(st, egc_pb_rep_float(c, &f, "float_data", &r.f32), done); break;
        case 5: EGC_TRYG(st, egc_pb_rep_int64(c, &f, "int32_data", &r.i32), done); break;
        case 7: EGC_TRYG(st, egc_pb_rep_int64(c, &f, "int64_data", &r.i64), done); break;
        case 8: EGC_TRYG(st, egc_pb_string(c, &f, "name", &t->name), done); break;
        case 9:
            EGC_TRYG(st, egc_pb_expect(c, &f, EGC_PB_LEN, "raw_data"), done);
            r.has_raw = 1;
            r.raw_off = f.off;
            r.raw_len = f.len;
            break;
        case 10: EGC_TRYG(st, egc_pb_rep_double(c, &f, "double_data", &r.f64), done); break;
        case 13: {
            egc_pb sub;
            EGC_TRYG(st, egc_pb_sub(c, &f, &sub), done);
            size_t mark = egc_pb_path_push(c->ctx, ".external_data");
            EGC_TRYG(st, parse_ext_entry(&sub, &r), done);
            egc_pb_path_pop(c->ctx, mark);
            break;
        }
        case 14: EGC_TRYG(st, egc_pb_int64(c, &f, "data_location", &r.location), done); break;
        default: break;
        }
    }
    EGC_TRYG(st, finish_tensor(P, c, &r, t), done);
done:
    tensor_fields_free(&r);
    if (st != EGC_OK) egc_onnx_tensor_clear(t);
    return st;
}

/* ---- ValueInfoProto / TypeProto ---- */

/* TensorShapeProto.Dimension {dim_value = 1, dim_param = 2}: the value, or -1. */
static egc_status parse_dim(egc_pb *c, int64_t *out)
{
    *out = -1;
    egc_pb_field f;
    int more;
    for (;;) {
        EGC_TRY(egc_pb_next(c, &f, &more));
        if (!more) break;
        if (f.num == 1) {
            EGC_TRY(egc_pb_int64(c, &f, "dim_value", out));
            if (*out < 0) *out = -1;
        } else if (f.num == 2) {
            *out = -1;
        }
    }
    return EGC_OK;
}

/* TensorShapeProto {dim = 1}. */
static egc_status parse_shape(egc_pb *c, egc_onnx_valueinfo *vi)
{
    vi->has_shape = 1;
    egc_pb_field f;
    int more;
    for (;;) {
        EGC_TRY(egc_pb_next(c, &f, &more));
        if (!more) break;
        if (f.num != 1) continue;
        if (vi->shape.ndim >= EGC_MAX_DIMS)
            return egc_pb_fail(c->ctx, EGC_E_UNSUPPORTED, f.tag_off, "unsupported shape",
                               "more than %d dims", EGC_MAX_DIMS);
        egc_pb sub;
        EGC_TRY(egc_pb_sub(c, &f, &sub));
        size_t mark = egc_pb_path_push(c->ctx, ".dim[%d]", vi->shape.ndim);
        EGC_TRY(parse_dim(&sub, &vi->shape.d[vi->shape.ndim]));
        egc_pb_path_pop(c->ctx, mark);
        vi->shape.ndim++;
    }
    return EGC_OK;
}

/* TypeProto.Tensor {elem_type = 1, shape = 2}. */
static egc_status parse_tensor_type(egc_pb *c, egc_onnx_valueinfo *vi)
{
    egc_pb_field f;
    int more;
    for (;;) {
        EGC_TRY(egc_pb_next(c, &f, &more));
        if (!more) break;
        if (f.num == 1) {
            int64_t v;
            EGC_TRY(egc_pb_int64(c, &f, "elem_type", &v));
            vi->elem_type = v >= 0 && v <= INT_MAX ? (int)v : -1;
        } else if (f.num == 2) {
            egc_pb sub;
            EGC_TRY(egc_pb_sub(c, &f, &sub));
            vi->shape.ndim = 0;
            size_t mark = egc_pb_path_push(c->ctx, ".shape");
            EGC_TRY(parse_shape(&sub, vi));
            egc_pb_path_pop(c->ctx, mark);
        }
    }
    return EGC_OK;
}

/* TypeProto {tensor_type = 1; other kinds are skipped}. */
static egc_status parse_type(egc_pb *c, egc_onnx_valueinfo *vi)
{
    egc_pb_field f;
    int more;
    for (;;) {
        EGC_TRY(egc_pb_next(c, &f, &more));
        if (!more) break;
        if (f.num != 1) continue;
        egc_pb sub;
        EGC_TRY(egc_pb_sub(c, &f, &sub));
        size_t mark = egc_pb_path_push(c->ctx, ".tensor_type");
        EGC_TRY(parse_tensor_type(&sub, vi));
        egc_pb_path_pop(c->ctx, mark);
    }
    return EGC_OK;
}

/* ValueInfoProto {name = 1, type = 2}. */
static egc_status parse_valueinfo(egc_pb *c, egc_onnx_valueinfo *vi)
{
    egc_pb_field f;
    int more;
    for (;;) {
        EGC_TRY(egc_pb_next(c, &f, &more));
        if (!more) break;
        if (f.num == 1) {
            EGC_TRY(egc_pb_string(c, &f, "name", &vi->name));
        } else if (f.num == 2) {
            egc_pb sub;
            EGC_TRY(egc_pb_sub(c, &f, &sub));
            size_t mark = egc_pb_path_push(c->ctx, ".type");
            EGC_TRY(parse_type(&sub, vi));
            egc_pb_path_pop(c->ctx, mark);
        }
    }
    if (!vi->name) EGC_TRY(egc_strdup(&vi->name, ""));
    return EGC_OK;
}

/* ---- AttributeProto / NodeProto ---- */

static void free_strings(char **s, int n)
{
    if (!s) return;
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

/* AttributeProto. Only the array that matches the type is kept; n is its length. */
static egc_status parse_attr(parser *P, egc_pb *c, egc_onnx_attr *a)
{
    egc_pb_f32vec fl = {0};
    egc_pb_i64vec in = {0};
    char **strs = NULL;
    int ns = 0;
    int has_f = 0, has_i = 0, has_g = 0;
    int64_t type = 0;
    egc_status st = EGC_OK;
    egc_pb_field f;
    int more;
    for (;;) {
        EGC_TRYG(st, egc_pb_next(c, &f, &more), done);
        if (!more) break;
        switch (f.num) {
        case 1: EGC_TRYG(st, egc_pb_string(c, &f, "name", &a->name), done); break;
        case 2:
            EGC_TRYG(st, egc_pb_float(c, &f, "f", &a->f), done);
            has_f = 1;
            break;
        case 3:
            EGC_TRYG(st, egc_pb_int64(c, &f, "i", &a->i), done);
            has_i = 1;
            break;
        case 4: EGC_TRYG(st, egc_pb_string(c, &f, "s", &a->s), done); break;
        case 5: {
            egc_pb sub;
            EGC_TRYG(st, egc_pb_sub(c, &f, &sub), done);
            if (a->t) egc_onnx_tensor_clear(a->t);
            else EGC_TRYG(st, egc_calloc((void **)&a->t, 1, sizeof *a->t, "attribute tensor"), done);
            size_t mark = egc_pb_path_push(c->ctx, ".t");
            EGC_TRYG(st, parse_tensor(P, &sub, a->t), done);
            egc_pb_path_pop(c->ctx, mark);
            break;
        }
        case 6:
            /* A subgraph: its bytes were skipped by egc_pb_next; only the wire type is checked. */
            EGC_TRYG(st, egc_pb_expect(c, &f, EGC_PB_LEN, "g"), done);
            has_g = 1;
            break;
        case 7: EGC_TRYG(st, egc_pb_rep_float(c, &f, "floats", &fl), done); break;
        case 8: EGC_TRYG(st, egc_pb_rep_int64(c, &f, "ints", &in), done); break;
        case 9: EGC_TRYG(st, push_string(c, &f, "strings", &strs, &ns), done); break;
        case 20: EGC_TRYG(st, egc_pb_int64(c, &f, "type", &type), done); break;
        default: break;
        }
    }
    if (!a->name || !a->name[0]) {
        st = egc_pb_fail(c->ctx, EGC_E_FORMAT, c->start, "bad attribute", "no name");
        goto done;
    }
    if (type == 0) { /* files older than IR version 2: infer the type from the field set */
        if (a->t) type = EGC_ATTR_TENSOR;
        else if (has_g) type = EGC_ATTR_GRAPH;
        else if (ns) type = EGC_ATTR_STRINGS;
        else if (in.n) type = EGC_ATTR_INTS;
        else if (fl.n) type = EGC_ATTR_FLOATS;
        else if (a->s) type = EGC_ATTR_STRING;
        else if (has_i) type = EGC_ATTR_INT;
        else if (has_f) type = EGC_ATTR_FLOAT;
    }
    a->type = type >= 0 && type <= INT_MAX ? (int)type : -1;
    switch (a->type) {
    case EGC_ATTR_FLOATS:
        if (fl.n > INT_MAX) goto too_many;
        a->floats = fl.v;
        a->n = (int)fl.n;
        fl.v = NULL;
        break;
    case EGC_ATTR_INTS:
        if (in.n > INT_MAX) goto too_many;
        a->ints = in.v;
        a->n = (int)in.n;
        in.v = NULL;
        break;
    case EGC_ATTR_STRINGS:
        a->strings = strs;
        a->n = ns;
        strs = NULL;
        break;
    case EGC_ATTR_STRING:
        if (!a->s) EGC_TRYG(st, egc_strdup(&a->s, ""), done);
        break;
    case EGC_ATTR_TENSOR:
        if (!a->t) {
            st = egc_pb_fail(c->ctx, EGC_E_FORMAT, c->start, "bad attribute",
                             "'%s' has type TENSOR but no tensor", a->name);
            goto done;
        }
        break;
    default: break;
    }
    goto done;
too_many:
    st = egc_pb_fail(c->ctx, EGC_E_FORMAT, c->start, "bad attribute", "'%s' has too many values",
                     a->name);
done:
    egc_pb_f32vec_free(&fl);
    egc_pb_i64vec_free(&in);
    free_strings(strs, ns);
    return st;
}

/* NodeProto {input = 1, output = 2, name = 3, op_type = 4, attribute = 5, domain = 7}.
 * index is the node's position in the graph (for the default name). */
static egc_status parse_node(parser *P, egc_pb *c, egc_onnx_node *n, int index)
{
    egc_pb_field f;
    int more;
    for (;;) {
        EGC_TRY(egc_pb_next(c, &f, &more));
        if (!more) break;
        switch (f.num) {
        case 1: EGC_TRY(push_string(c, &f, "input", &n->inputs, &n->n_inputs)); break;
        case 2: EGC_TRY(push_string(c, &f, "output", &n->outputs, &n->n_outputs)); break;
        case 3: EGC_TRY(egc_pb_string(c, &f, "name", &n->name)); break;
        case 4: EGC_TRY(egc_pb_string(c, &f, "op_type", &n->op_type)); break;
        case 7: EGC_TRY(egc_pb_string(c, &f, "domain", &n->domain)); break;
        case 5: {
            egc_pb sub;
            EGC_TRY(egc_pb_sub(c, &f, &sub));
            EGC_TRY(grow((void **)&n->attrs, n->n_attrs, sizeof *n->attrs, "attributes"));
            int k = n->n_attrs++;
            size_t mark = egc_pb_path_push(c->ctx, ".attribute[%d]", k);
            EGC_TRY(parse_attr(P, &sub, &n->attrs[k]));
            egc_pb_path_pop(c->ctx, mark);
            break;
        }
        default: break;
        }
    }
    if (!n->op_type || !n->op_type[0])
        return egc_pb_fail(c->ctx, EGC_E_FORMAT, c->start, "bad node", "no op_type");
    if (!n->domain) EGC_TRY(egc_strdup(&n->domain, ""));
    if (!n->name || !n->name[0]) {
        char buf[64];
        size_t ol = strlen(n->op_type);
        int k = snprintf(buf, sizeof buf, "_%d", index);
        char *s = NULL;
        EGC_TRY(egc_malloc((void **)&s, ol + (size_t)k + 1, 1, "node name"));
        memcpy(s, n->op_type, ol);
        memcpy(s + ol, buf, (size_t)k + 1);
        free(n->name);
        n->name = s;
    }
    return EGC_OK;
}

/* ---- GraphProto / ModelProto ---- */

static egc_status add_valueinfo(egc_pb *c, const egc_pb_field *f, const char *field,
                                egc_onnx_valueinfo **arr, int *count)
{
    egc_pb sub;
    EGC_TRY(egc_pb_sub(c, f, &sub));
    EGC_TRY(grow((void **)arr, *count, sizeof **arr, field));
    int k = (*count)++;
    size_t mark = egc_pb_path_push(c->ctx, ".%s[%d]", field, k);
    EGC_TRY(parse_valueinfo(&sub, &(*arr)[k]));
    egc_pb_path_pop(c->ctx, mark);
    return EGC_OK;
}

/* GraphProto {node = 1, initializer = 5, input = 11, output = 12}. */
static egc_status parse_graph(parser *P, egc_pb *c, egc_onnx_model *m)
{
    egc_pb_field f;
    int more;
    for (;;) {
        EGC_TRY(egc_pb_next(c, &f, &more));
        if (!more) break;
        switch (f.num) {
        case 1: {
            egc_pb sub;
            EGC_TRY(egc_pb_sub(c, &f, &sub));
            EGC_TRY(grow((void **)&m->nodes, m->n_nodes, sizeof *m->nodes, "nodes"));
            int k = m->n_nodes++;
            size_t mark = egc_pb_path_push(c->ctx, ".node[%d]", k);
            EGC_TRY(parse_node(P, &sub, &m->nodes[k], k));
            egc_pb_path_pop(c->ctx, mark);
            break;
        }
        case 5: {
            egc_pb sub;
            EGC_TRY(egc_pb_sub(c, &f, &sub));
            EGC_TRY(grow((void **)&m->inits, m->n_inits, sizeof *m->inits, "initializers"));
            int k = m->n_inits++;
            size_t mark = egc_pb_path_push(c->ctx, ".initializer[%d]", k);
            EGC_TRY(parse_tensor(P, &sub, &m->inits[k]));
            egc_pb_path_pop(c->ctx, mark);
            break;
        }
        case 11: EGC_TRY(add_valueinfo(c, &f, "input", &m->inputs, &m->n_inputs)); break;
        case 12: EGC_TRY(add_valueinfo(c, &f, "output", &m->outputs, &m->n_outputs)); break;
        default: break;
        }
    }
    return EGC_OK;
}

/* OperatorSetIdProto {domain = 1, version = 2}; sets m->opset for the default domain. */
static egc_status parse_opset(egc_pb *c, egc_onnx_model *m)
{
    char *domain = NULL;
    int64_t version = 0;
    egc_status st = EGC_OK;
    egc_pb_field f;
    int more;
    for (;;) {
        EGC_TRYG(st, egc_pb_next(c, &f, &more), done);
        if (!more) break;
        if (f.num == 1) EGC_TRYG(st, egc_pb_string(c, &f, "domain", &domain), done);
        else if (f.num == 2) EGC_TRYG(st, egc_pb_int64(c, &f, "version", &version), done);
    }
    if (!domain || !domain[0] || !strcmp(domain, "ai.onnx")) m->opset = version;
done:
    free(domain);
    return st;
}

/* ModelProto {ir_version = 1, producer_name = 2, graph = 7, opset_import = 8}. */
static egc_status parse_model(parser *P, egc_pb *c, egc_onnx_model *m)
{
    int has_graph = 0, n_opsets = 0;
    egc_pb_field f;
    int more;
    for (;;) {
        EGC_TRY(egc_pb_next(c, &f, &more));
        if (!more) break;
        switch (f.num) {
        case 1: EGC_TRY(egc_pb_int64(c, &f, "ir_version", &m->ir_version)); break;
        case 2: EGC_TRY(egc_pb_string(c, &f, "producer_name", &m->producer)); break;
        case 7: {
            egc_pb sub;
            EGC_TRY(egc_pb_sub(c, &f, &sub));
            size_t mark = egc_pb_path_push(c->ctx, ".graph");
            EGC_TRY(parse_graph(P, &sub, m));
            egc_pb_path_pop(c->ctx, mark);
            has_graph = 1;
            break;
        }
        case 8: {
            egc_pb sub;
            EGC_TRY(egc_pb_sub(c, &f, &sub));
            size_t mark = egc_pb_path_push(c->ctx, ".opset_import[%d]", n_opsets);
            EGC_TRY(parse_opset(&sub, m));
            egc_pb_path_pop(c->ctx, mark);
            n_opsets++;
            break;
        }
        default: break;
        }
    }
    /* A file cut exactly between two top-level fields decodes as a shorter valid message;
     * the two required fields catch that. */
    if (!has_graph)
        return egc_pb_fail(c->ctx, EGC_E_FORMAT, c->end, "no graph (file truncated or not an ONNX model?)",
                           NULL);
    if (!n_opsets)
        return egc_pb_fail(c->ctx, EGC_E_FORMAT, c->end, "no opset_import (file truncated?)", NULL);
    if (!m->producer) EGC_TRY(egc_strdup(&m->producer, ""));
    return EGC_OK;
}

/* ---- public entry points ---- */

egc_status egc_onnx_parse(const uint8_t *buf, size_t len, const char *what, const char *base_dir,
                          egc_onnx_model **out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "egc_onnx_parse: out is NULL");
    *out = NULL;
    if (!what) what = "onnx model";
    if (!buf && len) return EGC_FAIL(EGC_E_ARG, "%s: buffer is NULL", what);
    if (len == 0) return EGC_FAIL(EGC_E_FORMAT, "%s: empty file (truncated at byte 0)", what);
    parser *P = NULL;
    egc_onnx_model *m = NULL;
    egc_status st;
    EGC_TRYG(st, egc_calloc((void **)&P, 1, sizeof *P, "onnx parser"), fail);
    EGC_TRYG(st, egc_calloc((void **)&m, 1, sizeof *m, "onnx model"), fail);
    P->base_dir = base_dir;
    egc_pb c = egc_pb_begin(&P->ctx, buf, len, what, "ModelProto");
    EGC_TRYG(st, parse_model(P, &c, m), fail);
    free(P);
    *out = m;
    return EGC_OK;
fail:
    egc_onnx_free(m);
    free(P);
    return st;
}

egc_status egc_onnx_load(const char *path, egc_onnx_model **out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "egc_onnx_load: out is NULL");
    *out = NULL;
    if (!path) return EGC_FAIL(EGC_E_ARG, "egc_onnx_load: path is NULL");
    uint8_t *buf = NULL;
    size_t len = 0;
    char *dir = NULL;
    egc_status st;
    EGC_TRYG(st, egc_read_file(path, &buf, &len), done);
    EGC_TRYG(st, egc_strdup(&dir, path), done);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';       /* "/model.onnx" -> "/" */
    else if (slash) *slash = '\0';
    else strcpy(dir, ".");                    /* strlen(path) >= 1 always fits "." */
    EGC_TRYG(st, egc_onnx_parse(buf, len, path, dir, out), done);
done:
    free(buf);
    free(dir);
    return st;
}

egc_status egc_onnx_parse_tensor(const uint8_t *buf, size_t len, const char *what,
                                 egc_onnx_tensor *out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "egc_onnx_parse_tensor: out is NULL");
    memset(out, 0, sizeof *out);
    if (!what) what = "tensor";
    if (!buf && len) return EGC_FAIL(EGC_E_ARG, "%s: buffer is NULL", what);
    parser *P = NULL;
    EGC_TRY(egc_calloc((void **)&P, 1, sizeof *P, "onnx parser"));
    egc_pb c = egc_pb_begin(&P->ctx, buf, len, what, "TensorProto");
    egc_status st = parse_tensor(P, &c, out);
    free(P);
    EGC_TRY(st);
    return EGC_OK;
}

void egc_onnx_tensor_clear(egc_onnx_tensor *t)
{
    if (!t) return;
    free(t->name);
    free(t->f32);
    free(t->i64);
    memset(t, 0, sizeof *t);
}

static void free_valueinfos(egc_onnx_valueinfo *v, int n)
{
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i].name);
    free(v);
}

void egc_onnx_free(egc_onnx_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_nodes; i++) {
        egc_onnx_node *n = &m->nodes[i];
        free(n->name);
        free(n->op_type);
        free(n->domain);
        free_strings(n->inputs, n->n_inputs);
        free_strings(n->outputs, n->n_outputs);
        for (int k = 0; k < n->n_attrs; k++) {
            egc_onnx_attr *a = &n->attrs[k];
            free(a->name);
            free(a->s);
            free(a->floats);
            free(a->ints);
            free_strings(a->strings, a->n);
            if (a->t) {
                egc_onnx_tensor_clear(a->t);
                free(a->t);
            }
        }
        free(n->attrs);
    }
    free(m->nodes);
    for (int i = 0; i < m->n_inits; i++) egc_onnx_tensor_clear(&m->inits[i]);
    free(m->inits);
    free_valueinfos(m->inputs, m->n_inputs);
    free_valueinfos(m->outputs, m->n_outputs);
    free(m->producer);
    free(m);
}

const egc_onnx_attr *egc_onnx_node_attr(const egc_onnx_node *n, const char *name)
{
    if (!n || !name) return NULL;
    for (int i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].name && !strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

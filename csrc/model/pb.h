/* pb.h: a small bounds-checked decoder for the protobuf wire format, enough for ONNX.
 *
 * A parse shares one egc_pb_ctx (the whole buffer, the name of its source and the field
 * path being decoded, e.g. "ModelProto.graph.node[17]"); an egc_pb cursor walks one
 * message [pos, end) of that buffer. Offsets are absolute byte offsets into the buffer, so
 * every error can say "what: truncated at byte N in PATH". Every length is checked against
 * the bytes that remain in the enclosing message before anything is read or allocated.
 * Unknown fields are skipped by egc_pb_next itself; groups (wire types 3/4) are rejected. */
#ifndef EGC_PB_H
#define EGC_PB_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EGC_PB_PATH_MAX 512
#define EGC_PB_MAX_DEPTH 32

enum { EGC_PB_VARINT = 0, EGC_PB_I64 = 1, EGC_PB_LEN = 2, EGC_PB_I32 = 5 };

typedef struct egc_pb_ctx {
    const uint8_t *buf;            /* the whole buffer; offsets are relative to it */
    size_t len;
    const char *what;              /* source name for messages ("model.onnx") */
    char path[EGC_PB_PATH_MAX];    /* field path, e.g. "ModelProto.graph.node[3]" */
    size_t plen;
} egc_pb_ctx;

typedef struct egc_pb {
    egc_pb_ctx *ctx;
    size_t start;                  /* offset of the message's first byte */
    size_t pos;                    /* offset of the next unread byte */
    size_t end;                    /* offset one past the message's last byte */
    int depth;                     /* nesting level (root = 0) */
} egc_pb;

typedef struct egc_pb_field {
    uint32_t num;                  /* field number (>= 1) */
    int wire;                      /* EGC_PB_VARINT / I64 / LEN / I32 */
    size_t tag_off;                /* offset of the tag */
    uint64_t u;                    /* VARINT value, or the I64 / I32 bits */
    size_t off, len;               /* LEN: offset and length of the payload */
} egc_pb_field;

/* Growable arrays that repeated scalar fields are decoded into. Free with egc_pb_*vec_free. */
typedef struct egc_pb_i64vec { int64_t *v; size_t n, cap; } egc_pb_i64vec;
typedef struct egc_pb_f32vec { float *v; size_t n, cap; } egc_pb_f32vec;
typedef struct egc_pb_f64vec { double *v; size_t n, cap; } egc_pb_f64vec;

/* Sets up ctx over buf[0..len) (what names the source; root starts the path, e.g.
 * "ModelProto") and returns a cursor over the whole buffer. Never fails. */
egc_pb egc_pb_begin(egc_pb_ctx *ctx, const uint8_t *buf, size_t len, const char *what,
                    const char *root);

/* Appends a formatted segment (".graph", ".node[3]") to ctx's path and returns the mark
 * to restore with egc_pb_path_pop. A path that would overflow is cut with "...". */
size_t egc_pb_path_push(egc_pb_ctx *ctx, const char *fmt, ...) EGC_PRINTF(2, 3);
void egc_pb_path_pop(egc_pb_ctx *ctx, size_t mark);

/* Records an error "WHAT: REASON at byte OFF in PATH[: DETAIL]" with code and returns
 * code. detail_fmt may be NULL. */
egc_status egc_pb_fail(const egc_pb_ctx *ctx, egc_status code, size_t off, const char *reason,
                       const char *detail_fmt, ...) EGC_PRINTF(5, 6);

/* Reads the next field of c's message into *f and sets *more = 1, or sets *more = 0 at
 * the end of the message. The field's value is consumed (a LEN payload is skipped, its
 * bounds recorded in f), so a caller that ignores f has skipped an unknown field.
 * Errors (EGC_E_FORMAT): truncated tag/value/payload, over-long varint, field number 0,
 * group or invalid wire type. */
EGC_NODISCARD egc_status egc_pb_next(egc_pb *c, egc_pb_field *f, int *more);

/* Opens a cursor over the LEN field f (an embedded message). Fails when f is not LEN
 * or nesting is deeper than EGC_PB_MAX_DEPTH. */
EGC_NODISCARD egc_status egc_pb_sub(const egc_pb *c, const egc_pb_field *f, egc_pb *sub);

/* Fails (EGC_E_FORMAT, naming the field) unless f has wire type wire. */
EGC_NODISCARD egc_status egc_pb_expect(const egc_pb *c, const egc_pb_field *f, int wire,
                                       const char *name);

/* Singular scalars with their wire types checked: int64/int32/enum (VARINT, two's
 * complement), float (I32), double (I64). */
EGC_NODISCARD egc_status egc_pb_int64(const egc_pb *c, const egc_pb_field *f, const char *name,
                                      int64_t *out);
EGC_NODISCARD egc_status egc_pb_float(const egc_pb *c, const egc_pb_field *f, const char *name,
                                      float *out);

/* A string/bytes field as a NUL-terminated malloc'd copy; replaces (and frees) *out. */
EGC_NODISCARD egc_status egc_pb_string(const egc_pb *c, const egc_pb_field *f, const char *name,
                                       char **out);

/* Appends a repeated scalar field, packed (one LEN field) or not (one value per field):
 * int64/int32 (varints), float (fixed32), double (fixed64). Counts are checked against
 * the payload before anything is allocated. */
EGC_NODISCARD egc_status egc_pb_rep_int64(const egc_pb *c, const egc_pb_field *f,
                                          const char *name, egc_pb_i64vec *v);
EGC_NODISCARD egc_status egc_pb_rep_float(const egc_pb *c, const egc_pb_field *f,
                                          const char *name, egc_pb_f32vec *v);
EGC_NODISCARD egc_status egc_pb_rep_double(const egc_pb *c, const egc_pb_field *f,
                                           const char *name, egc_pb_f64vec *v);

void egc_pb_i64vec_free(egc_pb_i64vec *v);
void egc_pb_f32vec_free(egc_pb_f32vec *v);
void egc_pb_f64vec_free(egc_pb_f64vec *v);

/* Little-endian loads from a byte pointer (no alignment needed). */
static inline uint32_t egc_pb_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t egc_pb_le64(const uint8_t *p)
{
    return (uint64_t)egc_pb_le32(p) | (uint64_t)egc_pb_le32(p + 4) << 32;
}

#ifdef __cplusplus
}
#endif
#endif

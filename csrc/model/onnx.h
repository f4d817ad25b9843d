/* onnx.h: the raw ONNX model as read from the protobuf file, before any lowering.
 *
 * The reader (onnx.c on top of the wire-format decoder pb.c) keeps exactly what the file
 * says: names, op types, attributes, initializers and value infos. It checks every length
 * and offset against the buffer and never reads out of bounds. Lowering to egcam's own
 * graph (lower.c) happens afterwards. */
#ifndef EGC_ONNX_H
#define EGC_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ONNX TensorProto.DataType values that egcam keeps. */
typedef enum egc_dtype {
    EGC_DT_UNDEFINED = 0,
    EGC_DT_FLOAT = 1,
    EGC_DT_UINT8 = 2,
    EGC_DT_INT8 = 3,
    EGC_DT_INT32 = 6,
    EGC_DT_INT64 = 7,
    EGC_DT_BOOL = 9,
    EGC_DT_FLOAT16 = 10,
    EGC_DT_DOUBLE = 11
} egc_dtype;

/* A decoded tensor. Data is converted on load: float types (FLOAT, FLOAT16, DOUBLE) become
 * float32 in f32; integer and bool types (INT8, UINT8, INT32, INT64, BOOL) become int64 in
 * i64. orig_dtype keeps the file's type. Exactly one of f32 / i64 is non-NULL unless numel
 * is 0. dims may be 0-d (a scalar, numel 1). */
typedef struct egc_onnx_tensor {
    char *name;
    int orig_dtype;          /* egc_dtype value as in the file */
    int is_float;            /* 1: f32 holds the data; 0: i64 holds the data */
    egc_shape shape;
    int64_t numel;
    float *f32;
    int64_t *i64;
} egc_onnx_tensor;

typedef enum egc_attr_type {
    EGC_ATTR_UNDEFINED = 0,
    EGC_ATTR_FLOAT = 1,
    EGC_ATTR_INT = 2,
    EGC_ATTR_STRING = 3,
    EGC_ATTR_TENSOR = 4,
    EGC_ATTR_GRAPH = 5,
    EGC_ATTR_FLOATS = 6,
    EGC_ATTR_INTS = 7,
    EGC_ATTR_STRINGS = 8
} egc_attr_type;

typedef struct egc_onnx_attr {
    char *name;
    int type;                /* egc_attr_type; GRAPH and others are recorded but not decoded */
    float f;
    int64_t i;
    char *s;                 /* STRING (NUL-terminated copy) */
    float *floats;
    int64_t *ints;
    char **strings;          /* STRINGS (NUL-terminated copies) */
    int n;                   /* number of floats / ints / strings */
    egc_onnx_tensor *t;      /* TENSOR */
} egc_onnx_attr;

typedef struct egc_onnx_node {
    char *name;              /* may be "" in the file; the reader then names it "<op_type>_<index>" */
    char *op_type;
    char *domain;            /* "" for the default domain */
    char **inputs;           /* "" marks an omitted optional input */
    int n_inputs;
    char **outputs;
    int n_outputs;
    egc_onnx_attr *attrs;
    int n_attrs;
} egc_onnx_node;

/* A graph input or output with its declared type. A dimension given by name (dim_param)
 * or missing is stored as -1 in shape. */
typedef struct egc_onnx_valueinfo {
    char *name;
    int elem_type;
    int has_shape;
    egc_shape shape;
} egc_onnx_valueinfo;

typedef struct egc_onnx_model {
    int64_t ir_version;
    int64_t opset;           /* version of the default ("" or "ai.onnx") domain; 0 if absent */
    char *producer;
    egc_onnx_node *nodes;
    int n_nodes;
    egc_onnx_tensor *inits;  /* initializers (external data already loaded) */
    int n_inits;
    egc_onnx_valueinfo *inputs;   /* graph inputs, initializers included if the file lists them */
    int n_inputs;
    egc_onnx_valueinfo *outputs;
    int n_outputs;
} egc_onnx_model;

/* Parses an ONNX ModelProto from buf[0..len). base_dir is the folder used to resolve
 * external data files (TensorProto.data_location = EXTERNAL); NULL means external data is
 * an error. On failure the message says what broke and at which byte offset, e.g.
 * "model.onnx: truncated at byte 1234 in GraphProto.node[17]". what names the source in
 * messages. On success *out must be released with egc_onnx_free. */
EGC_NODISCARD egc_status egc_onnx_parse(const uint8_t *buf, size_t len, const char *what,
                                         const char *base_dir, egc_onnx_model **out);

/* Reads and parses a file (base_dir = the file's folder). */
EGC_NODISCARD egc_status egc_onnx_load(const char *path, egc_onnx_model **out);

/* Parses one serialized TensorProto (the .pb files of ONNX's test data sets). */
EGC_NODISCARD egc_status egc_onnx_parse_tensor(const uint8_t *buf, size_t len, const char *what,
                                                egc_onnx_tensor *out);

/* Releases a model; NULL is a no-op. */
void egc_onnx_free(egc_onnx_model *m);
/* Releases the contents of a tensor (not the struct itself). */
void egc_onnx_tensor_clear(egc_onnx_tensor *t);

/* Finds an attribute by name, or NULL. */
const egc_onnx_attr *egc_onnx_node_attr(const egc_onnx_node *n, const char *name);

#ifdef __cplusplus
}
#endif
#endif

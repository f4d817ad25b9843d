/* fold.c: load-time evaluation of ONNX nodes whose inputs are all constant.
 *
 * Exporters write shape arithmetic as small subgraphs (Shape, Gather, Concat, Reshape,
 * ConstantOfShape, Cast, Slice, ...). egcam evaluates them once while lowering so that only
 * float runtime ops remain. Integers (and bools) are int64 and floats are float32, as the
 * reader stores them (onnx.h). The loops are plain and bounds-checked; folded constants are
 * capped at EGC_FOLD_MAX_NUMEL (float) and EGC_FOLD_MAX_INT_NUMEL (integer) elements. Also here: the attribute readers and the node error
 * helper that lowering shares. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/lower.h"

/* ---------------------------------------------------------------- errors, attributes */

egc_status egc_lower_fail(egc_status code, const char *file, int line, const egc_onnx_node *n,
                          const char *fmt, ...)
{
    char buf[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return egc_error_set(code, file, line, "node '%s' (%s): %s", n && n->name ? n->name : "?",
                         n && n->op_type ? n->op_type : "?", buf);
}

const egc_onnx_attr *egc_lower_attr(const egc_onnx_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].name && strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

static egc_status attr_type(const egc_onnx_node *n, const egc_onnx_attr *a, int type,
                            const char *tname)
{
    if (a->type != type)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute %s must be %s (type %d in the file)",
                             a->name, tname, a->type);
    return EGC_OK;
}

egc_status egc_lower_attr_int(const egc_onnx_node *n, const char *name, int64_t def,
                              int64_t *out)
{
    const egc_onnx_attr *a = egc_lower_attr(n, name);
    *out = def;
    if (!a) return EGC_OK;
    EGC_TRY(attr_type(n, a, EGC_ATTR_INT, "an int"));
    *out = a->i;
    return EGC_OK;
}

egc_status egc_lower_attr_float(const egc_onnx_node *n, const char *name, float def, float *out)
{
    const egc_onnx_attr *a = egc_lower_attr(n, name);
    *out = def;
    if (!a) return EGC_OK;
    EGC_TRY(attr_type(n, a, EGC_ATTR_FLOAT, "a float"));
    *out = a->f;
    return EGC_OK;
}

egc_status egc_lower_attr_string(const egc_onnx_node *n, const char *name, const char *def,
                                 const char **out)
{
    const egc_onnx_attr *a = egc_lower_attr(n, name);
    *out = def;
    if (!a) return EGC_OK;
    EGC_TRY(attr_type(n, a, EGC_ATTR_STRING, "a string"));
    *out = a->s ? a->s : "";
    return EGC_OK;
}

egc_status egc_lower_attr_ints(const egc_onnx_node *n, const char *name, const int64_t **v,
                               int *cnt)
{
    const egc_onnx_attr *a = egc_lower_attr(n, name);
    *v = NULL;
    *cnt = 0;
    if (!a) return EGC_OK;
    EGC_TRY(attr_type(n, a, EGC_ATTR_INTS, "a list of ints"));
    if (a->n < 0 || (a->n > 0 && !a->ints))
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute %s has no data", name);
    *v = a->ints;
    *cnt = a->n;
    return EGC_OK;
}

egc_status egc_lower_check_attrs(const egc_onnx_node *n, const char *const *known)
{
    for (int i = 0; i < n->n_attrs; i++) {
        const char *nm = n->attrs[i].name ? n->attrs[i].name : "";
        int ok = 0;
        for (int k = 0; known && known[k]; k++)
            if (strcmp(known[k], nm) == 0) ok = 1;
        if (!ok)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute %s is not supported", nm);
    }
    return EGC_OK;
}

/* ---------------------------------------------------------------- tensors */

void egc_fold_free(egc_onnx_tensor *t)
{
    if (!t) return;
    free(t->name);
    free(t->f32);
    free(t->i64);
    memset(t, 0, sizeof *t);
}

static char *shs(const egc_shape *s, char *buf, size_t cap) { return egc_shape_str(s, buf, cap); }

/* Elements one tensor of the running egc_fold_node_within call may have: what is left of the
 * load's folding budget (per thread; unlimited outside such a call). */
static _Thread_local int64_t g_room = INT64_MAX;

/* A fresh tensor of shape s (dims >= 0, numel <= EGC_FOLD_MAX_NUMEL for floats,
 * EGC_FOLD_MAX_INT_NUMEL for integers, and <= g_room). */
static egc_status t_new(const egc_onnx_node *n, egc_onnx_tensor *t, const egc_shape *s,
                        int is_float)
{
    char b[96];
    const int64_t cap = is_float ? EGC_FOLD_MAX_NUMEL : EGC_FOLD_MAX_INT_NUMEL;
    memset(t, 0, sizeof *t);
    if (s->ndim < 0 || s->ndim > EGC_MAX_DIMS)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "folded constant of rank %d", s->ndim);
    int64_t numel = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->d[i] < 0)
            return EGC_NODE_FAIL(EGC_E_SHAPE, n, "folded constant has a negative dim in %s",
                                 shs(s, b, sizeof b));
        if (s->d[i] && numel > cap / s->d[i])
            return EGC_NODE_FAIL(
                EGC_E_UNSUPPORTED, n,
                "folded constant of shape %s is too large to evaluate at load time",
                shs(s, b, sizeof b));
        numel *= s->d[i];
    }
    if (numel > cap)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n,
                             "folded constant of shape %s is too large to evaluate at load time",
                             shs(s, b, sizeof b));
    if (numel > g_room)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "folded constant of shape %s would bring the "
                             "constants folded at load time past their budget (%lld elements "
                             "left of %lld plus %d per weight of the file)", shs(s, b, sizeof b),
                             (long long)g_room, (long long)EGC_FOLD_BUDGET_BASE,
                             EGC_FOLD_BUDGET_PER_WEIGHT + 1);
    t->shape = *s;
    t->numel = numel;
    t->is_float = is_float;
    t->orig_dtype = is_float ? EGC_DT_FLOAT : EGC_DT_INT64;
    if (is_float)
        EGC_TRY(egc_malloc((void **)&t->f32, (size_t)(numel ? numel : 1), sizeof(float),
                           "folded constant"));
    else
        EGC_TRY(egc_malloc((void **)&t->i64, (size_t)(numel ? numel : 1), sizeof(int64_t),
                           "folded constant"));
    return EGC_OK;
}

/* Checks that a tensor's data pointer is there for its element count. */
static egc_status t_check(const egc_onnx_node *n, const egc_onnx_tensor *t, int idx)
{
    int64_t numel = egc_shape_numel(&t->shape);
    if (numel != t->numel || (numel > 0 && (t->is_float ? !t->f32 : !t->i64)))
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input %d: constant data does not match its shape",
                             idx);
    return EGC_OK;
}

egc_status egc_fold_copy(const egc_onnx_tensor *src, egc_onnx_tensor *dst)
{
    memset(dst, 0, sizeof *dst);
    int64_t numel = egc_shape_numel(&src->shape);
    if (numel != src->numel || (numel > 0 && (src->is_float ? !src->f32 : !src->i64)))
        return EGC_FAIL(EGC_E_FORMAT, "tensor '%s': data does not match its shape",
                        src->name ? src->name : "");
    dst->shape = src->shape;
    dst->numel = numel;
    dst->is_float = src->is_float;
    dst->orig_dtype = src->orig_dtype;
    size_t el = src->is_float ? sizeof(float) : sizeof(int64_t);
    void *p;
    EGC_TRY(egc_malloc(&p, (size_t)(numel ? numel : 1), el, "constant"));
    if (numel) memcpy(p, src->is_float ? (const void *)src->f32 : (const void *)src->i64,
                      (size_t)numel * el);
    if (src->is_float) dst->f32 = p;
    else dst->i64 = p;
    return EGC_OK;
}

static double t_getd(const egc_onnx_tensor *t, int64_t i)
{
    return t->is_float ? (double)t->f32[i] : (double)t->i64[i];
}

/* Float to int64 the way C truncates, saturated, NaN -> 0 (no undefined behaviour). */
static int64_t d2i(double v)
{
    if (v != v) return 0;
    if (v >= 9.2233720368547758e18) return INT64_MAX;
    if (v <= -9.2233720368547758e18) return INT64_MIN;
    return (int64_t)v;
}

static void t_setd(egc_onnx_tensor *t, int64_t i, double v)
{
    if (t->is_float) t->f32[i] = (float)v;
    else t->i64[i] = d2i(v);
}

/* Copies element si of s into element di of d (same type). */
static void t_copy1(egc_onnx_tensor *d, int64_t di, const egc_onnx_tensor *s, int64_t si)
{
    if (d->is_float) d->f32[di] = s->f32[si];
    else d->i64[di] = s->i64[si];
}

static egc_status need_in(const egc_onnx_node *n, const egc_onnx_tensor *const *in, int n_in,
                          int idx, const char *what)
{
    if (idx >= n_in || !in[idx])
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input %d (%s) is missing", idx, what);
    return t_check(n, in[idx], idx);
}

/* A 1-D (or scalar) integer tensor as a list of at most cap values. */
static egc_status int_list(const egc_onnx_node *n, const egc_onnx_tensor *t, int idx,
                           const char *what, int64_t *out, int cap, int *cnt)
{
    if (t->is_float || t->shape.ndim > 1)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input %d (%s) must be a 1-D integer tensor", idx,
                             what);
    if (t->numel > cap)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "input %d (%s) has %lld entries (at most %d)",
                             idx, what, (long long)t->numel, cap);
    for (int64_t i = 0; i < t->numel; i++) out[i] = t->i64[i];
    *cnt = (int)t->numel;
    return EGC_OK;
}

static egc_status scalar_of(const egc_onnx_node *n, const egc_onnx_tensor *t, int idx,
                            const char *what)
{
    if (t->numel != 1)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "input %d (%s) must have one element, not %lld",
                             idx, what, (long long)t->numel);
    return EGC_OK;
}

/* Contiguous strides of a shape. */
static void strides_of(const egc_shape *s, int64_t *st)
{
    int64_t acc = 1;
    for (int i = s->ndim - 1; i >= 0; i--) {
        st[i] = acc;
        acc *= s->d[i];
    }
}

/* ---------------------------------------------------------------- broadcasting */

/* Iteration over an output shape with up to three inputs broadcast to it. */
typedef struct bcast {
    int nd, k;
    int64_t dims[EGC_MAX_DIMS];
    int64_t st[3][EGC_MAX_DIMS];
    int64_t idx[EGC_MAX_DIMS];
    int64_t off[3];
} bcast;

static void bc_init(bcast *b, const egc_shape *out, const egc_shape *const *ins, int k)
{
    memset(b, 0, sizeof *b);
    b->nd = out->ndim;
    b->k = k;
    for (int i = 0; i < out->ndim; i++) b->dims[i] = out->d[i];
    for (int j = 0; j < k; j++) {
        int64_t st[EGC_MAX_DIMS];
        strides_of(ins[j], st);
        for (int i = 0; i < out->ndim; i++) {
            int ii = ins[j]->ndim - out->ndim + i;
            b->st[j][i] = (ii < 0 || ins[j]->d[ii] == 1) ? 0 : st[ii];
        }
    }
}

static void bc_next(bcast *b)
{
    for (int d = b->nd - 1; d >= 0; d--) {
        b->idx[d]++;
        for (int j = 0; j < b->k; j++) b->off[j] += b->st[j][d];
        if (b->idx[d] < b->dims[d]) return;
        for (int j = 0; j < b->k; j++) b->off[j] -= b->st[j][d] * b->dims[d];
        b->idx[d] = 0;
    }
}

static egc_status bshape(const egc_onnx_node *n, const egc_shape *a, const egc_shape *b,
                         egc_shape *out)
{
    if (egc_broadcast_shape(a, b, out) != EGC_OK) {
        char b1[96], b2[96];
        return EGC_NODE_FAIL(EGC_E_SHAPE, n, "shapes %s and %s do not broadcast",
                             shs(a, b1, sizeof b1), shs(b, b2, sizeof b2));
    }
    return EGC_OK;
}

/* ---------------------------------------------------------------- element-wise */

typedef enum binop {
    B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MOD, B_MIN, B_MAX,
    B_EQ, B_LT, B_GT, B_LE, B_GE, B_AND, B_OR, B_XOR
} binop;

static egc_status fold_binary(const egc_onnx_node *n, binop op, const egc_onnx_tensor *a,
                              const egc_onnx_tensor *b, egc_onnx_tensor *out)
{
    egc_shape os;
    EGC_TRY(bshape(n, &a->shape, &b->shape, &os));
    int cmp = op >= B_EQ;
    if (op != B_POW && a->is_float != b->is_float)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "inputs have different element types");
    int is_float = cmp ? 0 : a->is_float;
    if ((op == B_AND || op == B_OR || op == B_XOR) && a->is_float)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "logical op on float inputs");
    EGC_TRY(t_new(n, out, &os, is_float));
    const egc_shape *ins[2] = {&a->shape, &b->shape};
    bcast it;
    bc_init(&it, &os, ins, 2);
    for (int64_t o = 0; o < out->numel; o++, bc_next(&it)) {
        int64_t ia = it.off[0], ib = it.off[1];
        if (!a->is_float && !cmp && op != B_POW) {
            int64_t x = a->i64[ia], y = b->i64[ib], r = 0;
            switch (op) {
            case B_ADD: r = (int64_t)((uint64_t)x + (uint64_t)y); break;
            case B_SUB: r = (int64_t)((uint64_t)x - (uint64_t)y); break;
            case B_MUL: r = (int64_t)((uint64_t)x * (uint64_t)y); break;
            case B_DIV:
            case B_MOD:
                if (y == 0 || (x == INT64_MIN && y == -1)) {
                    egc_fold_free(out);
                    return EGC_NODE_FAIL(EGC_E_FORMAT, n, "integer %s of %lld by %lld",
                                         op == B_DIV ? "division" : "modulo", (long long)x,
                                         (long long)y);
                }
                if (op == B_DIV) r = x / y;
                else {
                    /* ONNX Mod with fmod=0: the sign follows the divisor. */
                    r = x % y;
                    if (r != 0 && ((r < 0) != (y < 0))) r += y;
                }
                break;
            case B_MIN: r = x < y ? x : y; break;
            case B_MAX: r = x > y ? x : y; break;
            case B_AND: r = x && y; break;
            case B_OR: r = x || y; break;
            case B_XOR: r = (!x) != (!y); break;
            default: break;
            }
            out->i64[o] = r;
            continue;
        }
        double x = t_getd(a, ia), y = t_getd(b, ib), r = 0;
        switch (op) {
        case B_ADD: r = x + y; break;
        case B_SUB: r = x - y; break;
        case B_MUL: r = x * y; break;
        case B_DIV: r = x / y; break;
        case B_POW: r = pow(x, y); break;
        case B_MOD: r = fmod(x, y); if (r != 0 && ((r < 0) != (y < 0))) r += y; break;
        case B_MIN: r = x < y ? x : y; break;
        case B_MAX: r = x > y ? x : y; break;
        case B_EQ: r = x == y; break;
        case B_LT: r = x < y; break;
        case B_GT: r = x > y; break;
        case B_LE: r = x <= y; break;
        case B_GE: r = x >= y; break;
        default: break;
        }
        if (op == B_POW && !a->is_float && !out->is_float) out->i64[o] = d2i(r);
        else t_setd(out, o, r);
    }
    return EGC_OK;
}

typedef enum unop {
    U_NEG, U_ABS, U_SQRT, U_FLOOR, U_CEIL, U_EXP, U_LOG, U_RECIP, U_RELU, U_SIGMOID, U_TANH,
    U_NOT, U_SIGN, U_ERF
} unop;

static egc_status fold_unary(const egc_onnx_node *n, unop op, const egc_onnx_tensor *x,
                             egc_onnx_tensor *out)
{
    int int_ok = op == U_NEG || op == U_ABS || op == U_NOT || op == U_RELU || op == U_SIGN ||
                 op == U_FLOOR || op == U_CEIL;
    if (!x->is_float && !int_ok)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "integer input to a float-only operator");
    if (x->is_float && op == U_NOT)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "float input to Not");
    EGC_TRY(t_new(n, out, &x->shape, x->is_float));
    for (int64_t i = 0; i < x->numel; i++) {
        if (!x->is_float) {
            int64_t v = x->i64[i];
            int64_t r = v;
            switch (op) {
            case U_NEG: r = (int64_t)(0 - (uint64_t)v); break;
            case U_ABS: r = v < 0 ? (int64_t)(0 - (uint64_t)v) : v; break;
            case U_NOT: r = !v; break;
            case U_RELU: r = v < 0 ? 0 : v; break;
            case U_SIGN: r = (v > 0) - (v < 0); break;
            default: break;
            }
            out->i64[i] = r;
            continue;
        }
        double v = x->f32[i], r = v;
        switch (op) {
        case U_NEG: r = -v; break;
        case U_ABS: r = fabs(v); break;
        case U_SQRT: r = sqrt(v); break;
        case U_FLOOR: r = floor(v); break;
        case U_CEIL: r = ceil(v); break;
        case U_EXP: r = exp(v); break;
        case U_LOG: r = log(v); break;
        case U_RECIP: r = 1.0 / v; break;
        case U_RELU: r = v < 0 ? 0 : v; break;
        case U_SIGMOID: r = 1.0 / (1.0 + exp(-v)); break;
        case U_TANH: r = tanh(v); break;
        case U_ERF: r = erf(v); break;
        case U_SIGN: r = (v > 0) - (v < 0); break;
        default: break;
        }
        out->f32[i] = (float)r;
    }
    return EGC_OK;
}

static egc_status fold_where(const egc_onnx_node *n, const egc_onnx_tensor *c,
                             const egc_onnx_tensor *x, const egc_onnx_tensor *y,
                             egc_onnx_tensor *out)
{
    egc_shape s1, os;
    if (x->is_float != y->is_float)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "X and Y have different element types");
    EGC_TRY(bshape(n, &c->shape, &x->shape, &s1));
    EGC_TRY(bshape(n, &s1, &y->shape, &os));
    EGC_TRY(t_new(n, out, &os, x->is_float));
    const egc_shape *ins[3] = {&c->shape, &x->shape, &y->shape};
    bcast it;
    bc_init(&it, &os, ins, 3);
    for (int64_t o = 0; o < out->numel; o++, bc_next(&it)) {
        int cond = t_getd(c, it.off[0]) != 0;
        if (cond) t_copy1(out, o, x, it.off[1]);
        else t_copy1(out, o, y, it.off[2]);
    }
    return EGC_OK;
}

static egc_status fold_expand(const egc_onnx_node *n, const egc_onnx_tensor *x,
                              const egc_onnx_tensor *shape_t, egc_onnx_tensor *out)
{
    int64_t dims[EGC_MAX_DIMS];
    int cnt = 0;
    EGC_TRY(int_list(n, shape_t, 1, "shape", dims, EGC_MAX_DIMS, &cnt));
    egc_shape target = egc_shape_make(cnt, dims), os;
    EGC_TRY(bshape(n, &x->shape, &target, &os));
    EGC_TRY(t_new(n, out, &os, x->is_float));
    const egc_shape *ins[1] = {&x->shape};
    bcast it;
    bc_init(&it, &os, ins, 1);
    for (int64_t o = 0; o < out->numel; o++, bc_next(&it)) t_copy1(out, o, x, it.off[0]);
    return EGC_OK;
}

/* ScatterND (no reduction): a copy of data with updates written at the index tuples, later
 * tuples over earlier ones. indices [..., k] (integers, negatives from the end), updates
 * indices.shape[:-1] + data.shape[k:]. */
static egc_status fold_scatter_nd(const egc_onnx_node *n, const egc_onnx_tensor *data,
                                  const egc_onnx_tensor *idx, const egc_onnx_tensor *upd,
                                  egc_onnx_tensor *out)
{
    char b1[96], b2[96];
    const char *red = NULL;
    EGC_TRY(egc_lower_attr_string(n, "reduction", "none", &red));
    if (strcmp(red, "none") != 0)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "reduction '%s' is not supported (only "
                             "'none')", red);
    if (idx->is_float) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "indices must be integers");
    if (upd->is_float != data->is_float)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "updates and data have different element types");
    const int r = data->shape.ndim, q = idx->shape.ndim;
    const int64_t k = q > 0 ? idx->shape.d[q - 1] : -1;
    int ok = q >= 1 && k >= 1 && k <= r && upd->shape.ndim == q - 1 + r - (int)k;
    for (int i = 0; ok && i < q - 1; i++) ok = upd->shape.d[i] == idx->shape.d[i];
    for (int i = (int)k; ok && i < r; i++) ok = upd->shape.d[q - 1 + i - (int)k] == data->shape.d[i];
    if (!ok)
        return EGC_NODE_FAIL(EGC_E_SHAPE, n, "indices %s and updates %s do not fit data %s",
                             shs(&idx->shape, b1, sizeof b1), shs(&upd->shape, b2, sizeof b2),
                             shs(&data->shape, b2, sizeof b2));
    EGC_TRY(egc_fold_copy(data, out));
    int64_t slice = 1; /* elements per index tuple */
    for (int i = (int)k; i < r; i++) slice *= data->shape.d[i];
    const int64_t tuples = k ? idx->numel / k : 0;
    for (int64_t t = 0; t < tuples; t++) {
        int64_t off = 0;
        for (int64_t j = 0; j < k; j++) {
            const int64_t dim = data->shape.d[j];
            int64_t v = idx->i64[t * k + j];
            if (v < 0) v += dim;
            if (v < 0 || v >= dim) {
                egc_fold_free(out);
                return EGC_NODE_FAIL(EGC_E_FORMAT, n, "index %lld out of range for axis %lld of "
                                     "size %lld", (long long)idx->i64[t * k + j], (long long)j,
                                     (long long)dim);
            }
            off = off * dim + v;
        }
        for (int64_t e = 0; e < slice; e++) t_copy1(out, off * slice + e, upd, t * slice + e);
    }
    return EGC_OK;
}

/* ---------------------------------------------------------------- data movement */

static egc_status fold_cast(const egc_onnx_node *n, const egc_onnx_tensor *x,
                            egc_onnx_tensor *out)
{
    int64_t to;
    EGC_TRY(egc_lower_attr_int(n, "to", -1, &to));
    int is_float;
    switch (to) {
    case 1: case 10: case 11: case 16: is_float = 1; break;  /* FLOAT, FLOAT16, DOUBLE, BFLOAT16 */
    case 2: case 3: case 4: case 5: case 6: case 7: case 9: case 12: case 13: is_float = 0; break;
    default:
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute to=%lld is not supported",
                             (long long)to);
    }
    EGC_TRY(t_new(n, out, &x->shape, is_float));
    out->orig_dtype = (int)to;
    for (int64_t i = 0; i < x->numel; i++) {
        if (is_float) {
            out->f32[i] = x->is_float ? x->f32[i] : (float)x->i64[i];
            continue;
        }
        int64_t v = x->is_float ? d2i((double)x->f32[i]) : x->i64[i];
        switch (to) {
        case 2: v = (int64_t)(uint8_t)v; break;
        case 3: v = (int64_t)(int8_t)v; break;
        case 4: v = (int64_t)(uint16_t)v; break;
        case 5: v = (int64_t)(int16_t)v; break;
        case 6: v = (int64_t)(int32_t)v; break;
        case 9: v = x->is_float ? x->f32[i] != 0.0f : v != 0; break;
        case 12: v = (int64_t)(uint32_t)v; break;
        default: break;
        }
        out->i64[i] = v;
    }
    return EGC_OK;
}

static egc_status fold_constant(const egc_onnx_node *n, egc_onnx_tensor *out)
{
    if (n->n_attrs != 1)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "needs exactly one attribute, has %d", n->n_attrs);
    const egc_onnx_attr *a = &n->attrs[0];
    const char *nm = a->name ? a->name : "";
    egc_shape s;
    memset(&s, 0, sizeof s);
    if (strcmp(nm, "value") == 0) {
        EGC_TRY(attr_type(n, a, EGC_ATTR_TENSOR, "a tensor"));
        if (!a->t) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute value has no tensor");
        EGC_TRY(egc_fold_copy(a->t, out));
        return EGC_OK;
    }
    if (strcmp(nm, "value_float") == 0 || strcmp(nm, "value_int") == 0) {
        int fl = nm[6] == 'f';
        EGC_TRY(attr_type(n, a, fl ? EGC_ATTR_FLOAT : EGC_ATTR_INT, fl ? "a float" : "an int"));
        EGC_TRY(t_new(n, out, &s, fl));
        if (fl) out->f32[0] = a->f;
        else out->i64[0] = a->i;
        return EGC_OK;
    }
    if (strcmp(nm, "value_floats") == 0 || strcmp(nm, "value_ints") == 0) {
        int fl = nm[6] == 'f';
        EGC_TRY(attr_type(n, a, fl ? EGC_ATTR_FLOATS : EGC_ATTR_INTS,
                          fl ? "a list of floats" : "a list of ints"));
        if (a->n < 0 || (a->n > 0 && (fl ? !a->floats : !a->ints)))
            return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute %s has no data", nm);
        s.ndim = 1;
        s.d[0] = a->n;
        EGC_TRY(t_new(n, out, &s, fl));
        for (int i = 0; i < a->n; i++) {
            if (fl) out->f32[i] = a->floats[i];
            else out->i64[i] = a->ints[i];
        }
        return EGC_OK;
    }
    return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "attribute %s is not supported", nm);
}

static egc_status fold_constant_of_shape(const egc_onnx_node *n, const egc_onnx_tensor *shape_t,
                                         egc_onnx_tensor *out)
{
    int64_t dims[EGC_MAX_DIMS];
    int cnt = 0;
    EGC_TRY(int_list(n, shape_t, 0, "shape", dims, EGC_MAX_DIMS, &cnt));
    const egc_onnx_attr *a = egc_lower_attr(n, "value");
    int is_float = 1;
    double v = 0;
    int64_t iv = 0;
    if (a) {
        EGC_TRY(attr_type(n, a, EGC_ATTR_TENSOR, "a tensor"));
        if (!a->t || a->t->numel != 1 || (a->t->is_float ? !a->t->f32 : !a->t->i64))
            return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute value must hold one element");
        is_float = a->t->is_float;
        if (is_float) v = a->t->f32[0];
        else iv = a->t->i64[0];
    }
    egc_shape s = egc_shape_make(cnt, dims);
    EGC_TRY(t_new(n, out, &s, is_float));
    for (int64_t i = 0; i < out->numel; i++) {
        if (is_float) out->f32[i] = (float)v;
        else out->i64[i] = iv;
    }
    return EGC_OK;
}

egc_status egc_fold_shape(const egc_onnx_node *n, const egc_shape *shape, egc_onnx_tensor *out)
{
    int64_t start, end;
    EGC_TRY(egc_lower_attr_int(n, "start", 0, &start));
    EGC_TRY(egc_lower_attr_int(n, "end", shape->ndim, &end));
    int64_t r = shape->ndim;
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = start < 0 ? 0 : (start > r ? r : start);
    end = end < 0 ? 0 : (end > r ? r : end);
    egc_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = 1;
    s.d[0] = end > start ? end - start : 0;
    EGC_TRY(t_new(n, out, &s, 0));
    for (int64_t i = 0; i < s.d[0]; i++) out->i64[i] = shape->d[start + i];
    return EGC_OK;
}

static egc_status norm_axis(const egc_onnx_node *n, int64_t axis, int rank, int *out)
{
    if (axis < -rank || axis >= rank)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "axis %lld out of range for rank %d",
                             (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return EGC_OK;
}

static egc_status fold_gather(const egc_onnx_node *n, const egc_onnx_tensor *x,
                              const egc_onnx_tensor *idx, egc_onnx_tensor *out)
{
    int64_t axis_attr;
    int axis = 0;
    EGC_TRY(egc_lower_attr_int(n, "axis", 0, &axis_attr));
    if (x->shape.ndim < 1) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "data must have rank >= 1");
    EGC_TRY(norm_axis(n, axis_attr, x->shape.ndim, &axis));
    if (idx->is_float) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "indices must be integers");
    int rank = x->shape.ndim - 1 + idx->shape.ndim;
    if (rank > EGC_MAX_DIMS)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "output rank %d is too large", rank);
    egc_shape os;
    memset(&os, 0, sizeof os);
    os.ndim = rank;
    int k = 0;
    for (int i = 0; i < axis; i++) os.d[k++] = x->shape.d[i];
    for (int i = 0; i < idx->shape.ndim; i++) os.d[k++] = idx->shape.d[i];
    for (int i = axis + 1; i < x->shape.ndim; i++) os.d[k++] = x->shape.d[i];
    int64_t outer = 1, inner = 1, dim = x->shape.d[axis];
    for (int i = 0; i < axis; i++) outer *= x->shape.d[i];
    for (int i = axis + 1; i < x->shape.ndim; i++) inner *= x->shape.d[i];
    EGC_TRY(t_new(n, out, &os, x->is_float));
    int64_t o = 0;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t j = 0; j < idx->numel; j++) {
            int64_t q = idx->i64[j];
            if (q < 0) q += dim;
            if (q < 0 || q >= dim) {
                egc_fold_free(out);
                return EGC_NODE_FAIL(EGC_E_FORMAT, n,
                                     "index %lld out of range for axis %d of size %lld",
                                     (long long)idx->i64[j], axis, (long long)dim);
            }
            for (int64_t b = 0; b < inner; b++) t_copy1(out, o++, x, (a * dim + q) * inner + b);
        }
    return EGC_OK;
}

/* Axes of Squeeze / Unsqueeze: attribute before opset 13, input 1 from 13. */
static egc_status axes_of(const egc_onnx_node *n, int64_t opset, const egc_onnx_tensor *const *in,
                          int n_in, int64_t *axes, int *cnt, int *present)
{
    *cnt = 0;
    *present = 0;
    if (opset < 13) {
        const int64_t *v;
        EGC_TRY(egc_lower_attr_ints(n, "axes", &v, cnt));
        if (*cnt > EGC_MAX_DIMS)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "too many axes (%d)", *cnt);
        for (int i = 0; i < *cnt; i++) axes[i] = v[i];
        *present = v != NULL;
        return EGC_OK;
    }
    if (n_in > 1 && in[1]) {
        EGC_TRY(t_check(n, in[1], 1));
        EGC_TRY(int_list(n, in[1], 1, "axes", axes, EGC_MAX_DIMS, cnt));
        *present = 1;
    }
    return EGC_OK;
}

static egc_status fold_squeeze(const egc_onnx_node *n, int64_t opset,
                               const egc_onnx_tensor *const *in, int n_in, int unsqueeze,
                               egc_onnx_tensor *out)
{
    const egc_onnx_tensor *x = in[0];
    int64_t axes[EGC_MAX_DIMS];
    int cnt, present;
    EGC_TRY(axes_of(n, opset, in, n_in, axes, &cnt, &present));
    egc_shape os;
    memset(&os, 0, sizeof os);
    int mark[EGC_MAX_DIMS] = {0};
    if (unsqueeze) {
        int r = x->shape.ndim + cnt;
        if (!present) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "axes are required");
        if (r > EGC_MAX_DIMS)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "output rank %d is too large", r);
        for (int i = 0; i < cnt; i++) {
            int a = 0;
            EGC_TRY(norm_axis(n, axes[i], r, &a));
            if (mark[a]) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "axis %d repeated", a);
            mark[a] = 1;
        }
        os.ndim = r;
        for (int i = 0, k = 0; i < r; i++) os.d[i] = mark[i] ? 1 : x->shape.d[k++];
    } else {
        for (int i = 0; i < cnt; i++) {
            int a = 0;
            EGC_TRY(norm_axis(n, axes[i], x->shape.ndim, &a));
            if (x->shape.d[a] != 1)
                return EGC_NODE_FAIL(EGC_E_SHAPE, n, "axis %d has size %lld, not 1", a,
                                     (long long)x->shape.d[a]);
            mark[a] = 1;
        }
        for (int i = 0; i < x->shape.ndim; i++) {
            if (!present && x->shape.d[i] == 1) mark[i] = 1;
            if (!mark[i]) os.d[os.ndim++] = x->shape.d[i];
        }
    }
    EGC_TRY(egc_fold_copy(x, out));
    out->shape = os;
    return EGC_OK;
}

static egc_status fold_concat(const egc_onnx_node *n, const egc_onnx_tensor *const *in, int n_in,
                              egc_onnx_tensor *out)
{
    int64_t axis_attr;
    int axis = 0;
    const egc_onnx_attr *aa = egc_lower_attr(n, "axis");
    if (!aa) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "attribute axis is required");
    EGC_TRY(egc_lower_attr_int(n, "axis", 0, &axis_attr));
    if (n_in < 1) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "no inputs");
    for (int i = 0; i < n_in; i++) EGC_TRY(need_in(n, in, n_in, i, "input"));
    const egc_onnx_tensor *x0 = in[0];
    int r = x0->shape.ndim;
    if (r < 1) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "inputs must have rank >= 1");
    EGC_TRY(norm_axis(n, axis_attr, r, &axis));
    egc_shape os = x0->shape;
    os.d[axis] = 0;
    for (int i = 0; i < n_in; i++) {
        const egc_onnx_tensor *t = in[i];
        int ok = t->shape.ndim == r && t->is_float == x0->is_float;
        for (int d = 0; ok && d < r; d++)
            if (d != axis && t->shape.d[d] != x0->shape.d[d]) ok = 0;
        if (!ok) {
            char b1[96], b2[96];
            return EGC_NODE_FAIL(EGC_E_SHAPE, n, "input %d %s does not fit input 0 %s on axis %d",
                                 i, shs(&t->shape, b1, sizeof b1), shs(&x0->shape, b2, sizeof b2),
                                 axis);
        }
        os.d[axis] += t->shape.d[axis];
    }
    EGC_TRY(t_new(n, out, &os, x0->is_float));
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= os.d[i];
    for (int i = axis + 1; i < r; i++) inner *= os.d[i];
    int64_t o = 0;
    for (int64_t a = 0; a < outer; a++)
        for (int i = 0; i < n_in; i++) {
            int64_t blk = in[i]->shape.d[axis] * inner;
            for (int64_t b = 0; b < blk; b++) t_copy1(out, o++, in[i], a * blk + b);
        }
    return EGC_OK;
}

/* Reshape semantics (no batch rule: constants are not batched). */
static egc_status reshape_dims(const egc_onnx_node *n, const egc_shape *x, const int64_t *dims,
                               int cnt, int allowzero, egc_shape *out)
{
    char b1[96];
    egc_shape r;
    memset(&r, 0, sizeof r);
    r.ndim = cnt;
    int64_t total = egc_shape_numel(x), known = 1;
    int infer_at = -1;
    for (int i = 0; i < cnt; i++) {
        int64_t d = dims[i];
        if (d == 0 && !allowzero) {
            if (i >= x->ndim)
                return EGC_NODE_FAIL(EGC_E_SHAPE, n,
                                     "target dim %d is 0 but input %s has no such dim", i,
                                     shs(x, b1, sizeof b1));
            d = x->d[i];
        }
        if (d == -1) {
            if (infer_at >= 0)
                return EGC_NODE_FAIL(EGC_E_SHAPE, n, "more than one -1 in the target");
            infer_at = i;
            r.d[i] = 1;
            continue;
        }
        if (d < 0 || d > EGC_FOLD_MAX_NUMEL)
            return EGC_NODE_FAIL(EGC_E_SHAPE, n, "bad target dim %lld", (long long)d);
        r.d[i] = d;
        known *= d;
        if (known > EGC_FOLD_MAX_NUMEL)
            return EGC_NODE_FAIL(EGC_E_SHAPE, n, "target too large");
    }
    if (infer_at >= 0) {
        if (known == 0 || total % known)
            return EGC_NODE_FAIL(EGC_E_SHAPE, n, "cannot infer the -1 of the target for input %s",
                                 shs(x, b1, sizeof b1));
        r.d[infer_at] = total / known;
        known = total;
    }
    if (known != total) {
        char b2[96];
        return EGC_NODE_FAIL(EGC_E_SHAPE, n, "input %s cannot become %s", shs(x, b1, sizeof b1),
                             shs(&r, b2, sizeof b2));
    }
    *out = r;
    return EGC_OK;
}

static egc_status fold_reshape(const egc_onnx_node *n, int64_t opset,
                               const egc_onnx_tensor *const *in, int n_in, egc_onnx_tensor *out)
{
    int64_t dims[EGC_MAX_DIMS], allowzero;
    int cnt = 0;
    EGC_TRY(egc_lower_attr_int(n, "allowzero", 0, &allowzero));
    if (opset < 5) {
        const int64_t *v;
        EGC_TRY(egc_lower_attr_ints(n, "shape", &v, &cnt));
        if (cnt > EGC_MAX_DIMS) return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "target rank %d", cnt);
        for (int i = 0; i < cnt; i++) dims[i] = v[i];
    } else {
        EGC_TRY(need_in(n, in, n_in, 1, "shape"));
        EGC_TRY(int_list(n, in[1], 1, "shape", dims, EGC_MAX_DIMS, &cnt));
    }
    egc_shape os;
    EGC_TRY(reshape_dims(n, &in[0]->shape, dims, cnt, allowzero != 0, &os));
    EGC_TRY(egc_fold_copy(in[0], out));
    out->shape = os;
    return EGC_OK;
}

static egc_status fold_flatten(const egc_onnx_node *n, const egc_onnx_tensor *x,
                               egc_onnx_tensor *out)
{
    int64_t axis;
    EGC_TRY(egc_lower_attr_int(n, "axis", 1, &axis));
    int r = x->shape.ndim;
    if (axis < -r || axis > r)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "axis %lld out of range for rank %d", (long long)axis,
                             r);
    if (axis < 0) axis += r;
    egc_shape os;
    memset(&os, 0, sizeof os);
    os.ndim = 2;
    os.d[0] = os.d[1] = 1;
    for (int i = 0; i < r; i++) os.d[i < axis ? 0 : 1] *= x->shape.d[i];
    EGC_TRY(egc_fold_copy(x, out));
    out->shape = os;
    return EGC_OK;
}

static egc_status fold_transpose(const egc_onnx_node *n, const egc_onnx_tensor *x,
                                 egc_onnx_tensor *out)
{
    const int64_t *pv;
    int cnt = 0, r = x->shape.ndim;
    int perm[EGC_MAX_DIMS], seen[EGC_MAX_DIMS] = {0};
    EGC_TRY(egc_lower_attr_ints(n, "perm", &pv, &cnt));
    if (pv && cnt != r)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "perm has %d entries for rank %d", cnt, r);
    for (int i = 0; i < r; i++) {
        int64_t p = pv ? pv[i] : r - 1 - i;
        if (p < 0 || p >= r || seen[p])
            return EGC_NODE_FAIL(EGC_E_FORMAT, n, "perm is not a permutation of 0..%d", r - 1);
        seen[p] = 1;
        perm[i] = (int)p;
    }
    egc_shape os = x->shape;
    int64_t ist[EGC_MAX_DIMS];
    strides_of(&x->shape, ist);
    for (int i = 0; i < r; i++) os.d[i] = x->shape.d[perm[i]];
    EGC_TRY(t_new(n, out, &os, x->is_float));
    /* Walk the output in order; the source offset uses the permuted input strides. */
    bcast it;
    memset(&it, 0, sizeof it);
    it.nd = r;
    it.k = 1;
    for (int i = 0; i < r; i++) {
        it.dims[i] = os.d[i];
        it.st[0][i] = ist[perm[i]];
    }
    for (int64_t o = 0; o < out->numel; o++, bc_next(&it)) t_copy1(out, o, x, it.off[0]);
    return EGC_OK;
}

static egc_status fold_slice(const egc_onnx_node *n, int64_t opset,
                             const egc_onnx_tensor *const *in, int n_in, egc_onnx_tensor *out)
{
    const egc_onnx_tensor *x = in[0];
    egc_slice_params p;
    memset(&p, 0, sizeof p);
    int ns = 0, ne = 0, na = -1, nst = -1;
    if (opset < 10) {
        const int64_t *s, *e, *a;
        EGC_TRY(egc_lower_attr_ints(n, "starts", &s, &ns));
        EGC_TRY(egc_lower_attr_ints(n, "ends", &e, &ne));
        EGC_TRY(egc_lower_attr_ints(n, "axes", &a, &na));
        if (!a) na = -1;
        if (ns > EGC_MAX_DIMS || ne > EGC_MAX_DIMS || na > EGC_MAX_DIMS)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "too many sliced axes");
        for (int i = 0; i < ns; i++) p.starts[i] = s[i];
        for (int i = 0; i < ne; i++) p.ends[i] = e[i];
        for (int i = 0; i < na; i++) p.axes[i] = a[i];
    } else {
        EGC_TRY(need_in(n, in, n_in, 1, "starts"));
        EGC_TRY(need_in(n, in, n_in, 2, "ends"));
        EGC_TRY(int_list(n, in[1], 1, "starts", p.starts, EGC_MAX_DIMS, &ns));
        EGC_TRY(int_list(n, in[2], 2, "ends", p.ends, EGC_MAX_DIMS, &ne));
        if (n_in > 3 && in[3]) {
            EGC_TRY(t_check(n, in[3], 3));
            EGC_TRY(int_list(n, in[3], 3, "axes", p.axes, EGC_MAX_DIMS, &na));
        }
        if (n_in > 4 && in[4]) {
            EGC_TRY(t_check(n, in[4], 4));
            EGC_TRY(int_list(n, in[4], 4, "steps", p.steps, EGC_MAX_DIMS, &nst));
        }
    }
    if (ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "starts, ends, axes and steps differ in length");
    p.n = ns;
    int seen[EGC_MAX_DIMS] = {0};
    for (int i = 0; i < ns; i++) {
        if (na < 0) p.axes[i] = i;
        int a = 0;
        EGC_TRY(norm_axis(n, p.axes[i], x->shape.ndim, &a));
        if (seen[a]) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "axis %d repeated", a);
        seen[a] = 1;
        if (nst < 0) p.steps[i] = 1;
        if (p.steps[i] == 0) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "step 0 on axis %d", a);
        /* Any step larger than a dim acts the same; keep the arithmetic far from overflow. */
        if (p.steps[i] > ((int64_t)1 << 40)) p.steps[i] = (int64_t)1 << 40;
        if (p.steps[i] < -((int64_t)1 << 40)) p.steps[i] = -((int64_t)1 << 40);
    }
    int64_t start[EGC_MAX_DIMS], step[EGC_MAX_DIMS], ist[EGC_MAX_DIMS];
    egc_shape os;
    egc_slice_resolve(&p, &x->shape, start, step, &os);
    EGC_TRY(t_new(n, out, &os, x->is_float));
    strides_of(&x->shape, ist);
    bcast it;
    memset(&it, 0, sizeof it);
    it.nd = os.ndim;
    it.k = 1;
    int64_t base = 0;
    for (int i = 0; i < os.ndim; i++) {
        it.dims[i] = os.d[i];
        it.st[0][i] = ist[i] * step[i];
        base += start[i] * ist[i];
    }
    for (int64_t o = 0; o < out->numel; o++, bc_next(&it)) t_copy1(out, o, x, base + it.off[0]);
    return EGC_OK;
}

static egc_status fold_range(const egc_onnx_node *n, const egc_onnx_tensor *const *in,
                             egc_onnx_tensor *out)
{
    for (int i = 0; i < 3; i++)
        EGC_TRY(scalar_of(n, in[i], i, i == 0 ? "start" : i == 1 ? "limit" : "delta"));
    int fl = in[0]->is_float;
    if (in[1]->is_float != fl || in[2]->is_float != fl)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "start, limit and delta differ in type");
    egc_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = 1;
    if (fl) {
        double a = in[0]->f32[0], l = in[1]->f32[0], d = in[2]->f32[0];
        if (d == 0 || d != d || a != a || l != l)
            return EGC_NODE_FAIL(EGC_E_FORMAT, n, "delta must be non-zero and values finite");
        double c = ceil((l - a) / d);
        if (c > (double)EGC_FOLD_MAX_NUMEL)
            return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "range of %g elements is too large", c);
        s.d[0] = c > 0 ? (int64_t)c : 0;
        EGC_TRY(t_new(n, out, &s, 1));
        for (int64_t i = 0; i < s.d[0]; i++) out->f32[i] = (float)(a + (double)i * d);
    } else {
        int64_t a = in[0]->i64[0], l = in[1]->i64[0], d = in[2]->i64[0];
        if (d == 0) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "delta must be non-zero");
        /* Exact count in unsigned arithmetic: the true span |limit - start| < 2^64. */
        uint64_t span = d > 0 ? (uint64_t)l - (uint64_t)a : (uint64_t)a - (uint64_t)l;
        uint64_t step = d > 0 ? (uint64_t)d : (uint64_t)(-(d + 1)) + 1;
        int64_t cnt = 0;
        if ((d > 0 && l > a) || (d < 0 && l < a)) {
            uint64_t c = span / step + (span % step != 0);
            if (c > (uint64_t)EGC_FOLD_MAX_NUMEL)
                return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "range of %llu elements is too large",
                                     (unsigned long long)c);
            cnt = (int64_t)c;
        }
        s.d[0] = cnt;
        EGC_TRY(t_new(n, out, &s, 0));
        for (int64_t i = 0; i < cnt; i++)
            out->i64[i] = (int64_t)((uint64_t)a + (uint64_t)i * (uint64_t)d);
    }
    return EGC_OK;
}

int egc_quant_range(int dtype, double *lo, double *hi)
{
    switch (dtype) {
    case EGC_DT_UINT8: *lo = 0.0, *hi = 255.0; return 1;
    case EGC_DT_INT8: *lo = -128.0, *hi = 127.0; return 1;
    case EGC_DT_INT32: *lo = -2147483648.0, *hi = 2147483647.0; return 1;
    default: return 0;
    }
}

/* QuantizeLinear (quant) and DequantizeLinear of constants (a quantized model's weights and
 * biases): x, x_scale and the optional x_zero_point, per tensor (one scale) or per axis (a
 * scale per index of attribute axis, default 1). Dequantize: y = (x - zero) * scale, float.
 * Quantize: y = clamp(rint(x / scale) + zero) in the zero point's type (uint8 when there is
 * none; int8, uint8 and int32 are taken), ties to even as ONNX rounds. */
static egc_status fold_quant(const egc_onnx_node *n, int quant, const egc_onnx_tensor *const *in,
                             int n_in, egc_onnx_tensor *out)
{
    static const char *const known[] = {"axis", NULL};
    EGC_TRY(egc_lower_check_attrs(n, known));
    EGC_TRY(need_in(n, in, n_in, 1, "scale"));
    const egc_onnx_tensor *x = in[0], *s = in[1], *z = n_in > 2 ? in[2] : NULL;
    int64_t axis;
    EGC_TRY(egc_lower_attr_int(n, "axis", 1, &axis));
    if (s->shape.ndim > 1 || (z && !egc_shape_equal(&z->shape, &s->shape)))
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "a scale and zero point per tensor or per "
                             "axis (a scalar or one dimension, the same for both) are supported");
    if (!s->is_float) return EGC_NODE_FAIL(EGC_E_FORMAT, n, "the scale is not a float");
    if (z && z->is_float)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "a float zero point (float8 types) is not "
                             "supported");
    const int zt = z ? z->orig_dtype : EGC_DT_UINT8;
    double qlo = 0.0, qhi = 0.0;
    if (!egc_quant_range(zt, &qlo, &qhi) && quant)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "a zero point of element type %d is not "
                             "supported (uint8, int8 and int32 are)", zt);
    if (quant && !x->is_float)
        return EGC_NODE_FAIL(EGC_E_FORMAT, n, "QuantizeLinear of an integer tensor");
    if (!quant && x->is_float)
        return EGC_NODE_FAIL(EGC_E_UNSUPPORTED, n, "DequantizeLinear of a float tensor (float8 "
                             "types) is not supported");
    const int64_t k = s->numel;
    int64_t ax = axis < 0 ? axis + x->shape.ndim : axis, inner = 1;
    if (k != 1) {
        if (s->shape.ndim != 1 || ax < 0 || ax >= x->shape.ndim || x->shape.d[ax] != k)
            return EGC_NODE_FAIL(EGC_E_SHAPE, n, "%lld scales do not fit axis %lld of the input",
                                 (long long)k, (long long)axis);
        for (int d = (int)ax + 1; d < x->shape.ndim; d++) inner *= x->shape.d[d];
    }
    EGC_TRY(t_new(n, out, &x->shape, !quant));
    if (quant) out->orig_dtype = zt;
    for (int64_t i = 0; i < x->numel; i++) {
        const int64_t c = k == 1 ? 0 : (i / inner) % k;
        const double sc = (double)s->f32[c], zp = z ? t_getd(z, c) : 0.0;
        if (quant) {
            double q = (double)rintf(x->f32[i] / s->f32[c]) + zp;
            q = q < qlo ? qlo : (q > qhi ? qhi : q);
            out->i64[i] = d2i(q);
        } else {
            out->f32[i] = (float)(((double)x->i64[i] - zp) * sc);
        }
    }
    return EGC_OK;
}

/* ---------------------------------------------------------------- dispatch */

typedef struct fold_entry {
    const char *op;
    int kind;      /* 0 special, 1 unary, 2 binary */
    int code;      /* unop / binop */
} fold_entry;

static const fold_entry k_fold[] = {
    {"Constant", 0, 0}, {"ConstantOfShape", 0, 0}, {"Shape", 0, 0}, {"Size", 0, 0},
    {"Gather", 0, 0}, {"Unsqueeze", 0, 0}, {"Squeeze", 0, 0}, {"Concat", 0, 0},
    {"Reshape", 0, 0}, {"Flatten", 0, 0}, {"Transpose", 0, 0}, {"Cast", 0, 0},
    {"Slice", 0, 0}, {"Range", 0, 0}, {"Where", 0, 0}, {"Expand", 0, 0},
    {"Identity", 0, 0}, {"ScatterND", 0, 0}, {"QuantizeLinear", 0, 0},
    {"DequantizeLinear", 0, 0},
    {"Add", 2, B_ADD}, {"Sub", 2, B_SUB}, {"Mul", 2, B_MUL}, {"Div", 2, B_DIV},
    {"Pow", 2, B_POW}, {"Mod", 2, B_MOD}, {"Equal", 2, B_EQ}, {"Less", 2, B_LT},
    {"Greater", 2, B_GT}, {"LessOrEqual", 2, B_LE}, {"GreaterOrEqual", 2, B_GE},
    {"Min", 2, B_MIN}, {"Max", 2, B_MAX}, {"And", 2, B_AND}, {"Or", 2, B_OR}, {"Xor", 2, B_XOR},
    {"Neg", 1, U_NEG}, {"Abs", 1, U_ABS}, {"Sqrt", 1, U_SQRT}, {"Floor", 1, U_FLOOR},
    {"Ceil", 1, U_CEIL}, {"Exp", 1, U_EXP}, {"Log", 1, U_LOG}, {"Reciprocal", 1, U_RECIP},
    {"Relu", 1, U_RELU}, {"Sigmoid", 1, U_SIGMOID}, {"Tanh", 1, U_TANH}, {"Not", 1, U_NOT},
    {"Sign", 1, U_SIGN}, {"Erf", 1, U_ERF},
};

int egc_fold_knows(const char *op_type)
{
    for (size_t i = 0; i < EGC_COUNT(k_fold); i++)
        if (strcmp(k_fold[i].op, op_type) == 0) return 1;
    return 0;
}

egc_status egc_fold_node_within(const egc_onnx_node *n, int64_t opset,
                                const egc_onnx_tensor *const *in, int n_in, int64_t room,
                                egc_onnx_tensor *out, int *handled)
{
    g_room = room < 0 ? 0 : room;
    egc_status st = egc_fold_node(n, opset, in, n_in, out, handled);
    g_room = INT64_MAX;
    return st;
}

egc_status egc_fold_node(const egc_onnx_node *n, int64_t opset, const egc_onnx_tensor *const *in,
                         int n_in, egc_onnx_tensor *out, int *handled)
{
    memset(out, 0, sizeof *out);
    *handled = 0;
    const fold_entry *e = NULL;
    for (size_t i = 0; i < EGC_COUNT(k_fold); i++)
        if (strcmp(k_fold[i].op, n->op_type) == 0) e = &k_fold[i];
    if (!e) return EGC_OK;
    const char *op = n->op_type;
    /* Min / Max are variadic in ONNX; only the two-input form is folded here. */
    if (e->kind == 2 && n_in != 2) return EGC_OK;
    if (strcmp(op, "Constant") != 0 && strcmp(op, "Concat") != 0)
        EGC_TRY(need_in(n, in, n_in, 0, "input"));
    *handled = 1;
    if (e->kind == 1) return fold_unary(n, (unop)e->code, in[0], out);
    if (e->kind == 2) {
        EGC_TRY(need_in(n, in, n_in, 1, "input"));
        return fold_binary(n, (binop)e->code, in[0], in[1], out);
    }
    if (strcmp(op, "Constant") == 0) return fold_constant(n, out);
    if (strcmp(op, "ConstantOfShape") == 0) return fold_constant_of_shape(n, in[0], out);
    if (strcmp(op, "Shape") == 0) return egc_fold_shape(n, &in[0]->shape, out);
    if (strcmp(op, "Size") == 0) {
        egc_shape s;
        memset(&s, 0, sizeof s);
        EGC_TRY(t_new(n, out, &s, 0));
        out->i64[0] = in[0]->numel;
        return EGC_OK;
    }
    if (strcmp(op, "Gather") == 0) {
        EGC_TRY(need_in(n, in, n_in, 1, "indices"));
        return fold_gather(n, in[0], in[1], out);
    }
    if (strcmp(op, "Unsqueeze") == 0) return fold_squeeze(n, opset, in, n_in, 1, out);
    if (strcmp(op, "Squeeze") == 0) return fold_squeeze(n, opset, in, n_in, 0, out);
    if (strcmp(op, "Concat") == 0) return fold_concat(n, in, n_in, out);
    if (strcmp(op, "Reshape") == 0) return fold_reshape(n, opset, in, n_in, out);
    if (strcmp(op, "Flatten") == 0) return fold_flatten(n, in[0], out);
    if (strcmp(op, "Transpose") == 0) return fold_transpose(n, in[0], out);
    if (strcmp(op, "Cast") == 0) return fold_cast(n, in[0], out);
    if (strcmp(op, "Slice") == 0) return fold_slice(n, opset, in, n_in, out);
    if (strcmp(op, "Identity") == 0) return egc_fold_copy(in[0], out);
    if (strcmp(op, "Range") == 0) {
        EGC_TRY(need_in(n, in, n_in, 1, "limit"));
        EGC_TRY(need_in(n, in, n_in, 2, "delta"));
        return fold_range(n, in, out);
    }
    if (strcmp(op, "Where") == 0) {
        EGC_TRY(need_in(n, in, n_in, 1, "X"));
        EGC_TRY(need_in(n, in, n_in, 2, "Y"));
        return fold_where(n, in[0], in[1], in[2], out);
    }
    if (strcmp(op, "Expand") == 0) {
        EGC_TRY(need_in(n, in, n_in, 1, "shape"));
        return fold_expand(n, in[0], in[1], out);
    }
    if (strcmp(op, "QuantizeLinear") == 0) return fold_quant(n, 1, in, n_in, out);
    if (strcmp(op, "DequantizeLinear") == 0) return fold_quant(n, 0, in, n_in, out);
    if (strcmp(op, "ScatterND") == 0) {
        EGC_TRY(need_in(n, in, n_in, 1, "indices"));
        EGC_TRY(need_in(n, in, n_in, 2, "updates"));
        return fold_scatter_nd(n, in[0], in[1], in[2], out);
    }
    *handled = 0;
    return EGC_OK;
}

/* model.c: the public model and session API (egcam/model.h) over the ONNX reader, the
 * lowering, the executor and the backend registry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "egcam/model.h"
#include "model/exec.h"
#include "model/lower.h"
#include "model/onnx.h"
#include "model/session.h"

struct egc_model {
    egc_graph g;
    char *path;
    int c, h, w, classes;
    int *layer_nodes;   /* layer i -> node index */
    int n_layers;
    int auto_layer;     /* -1 when the model has no candidate */
};

struct egc_session {
    const egc_model *m;
    egc_backend *be;
    egc_plan *plan;
    int batch;
    int target_value;   /* -1 when forward only */
    float *seed_dev;    /* [batch, classes] on the device */
    char device[192];
};

static int is_candidate(const egc_graph *g, const egc_node *n)
{
    const egc_shape *s = &g->values[n->out].shape;
    return s->ndim == 4 && s->d[2] * s->d[3] > 1;
}

static int is_compute_op(egc_op op)
{
    switch (op) {
    case EGC_OP_CONV: case EGC_OP_RELU: case EGC_OP_CLIP: case EGC_OP_ADD: case EGC_OP_MUL:
    case EGC_OP_SIGMOID: case EGC_OP_BATCHNORM:
        return 1;
    default:
        return 0;
    }
}

void egc_model_destroy(egc_model *m)
{
    if (!m) return;
    egc_graph_clear(&m->g);
    free(m->path);
    free(m->layer_nodes);
    free(m);
}

egc_status egc_model_load(const char *path, egc_model **out)
{
    *out = NULL;
    egc_onnx_model *om = NULL;
    egc_model *m = NULL;
    egc_status st;
    EGC_TRY(egc_onnx_load(path, &om));
    st = egc_calloc((void **)&m, 1, sizeof *m, "model");
    if (st != EGC_OK) {
        egc_onnx_free(om);
        return st;
    }
    st = egc_lower(om, path, NULL, NULL, 0, &m->g);
    egc_onnx_free(om);
    if (st != EGC_OK) {
        free(m);
        return egc_error_trace(st, "egc_lower", __FILE__, __LINE__);
    }
    EGC_TRYG(st, egc_strdup(&m->path, path), fail);
    const egc_graph *g = &m->g;
    const egc_shape *in = &g->values[g->input].shape, *o = &g->values[g->output].shape;
    if (in->ndim != 4 || in->d[1] < 1 || in->d[2] < 1 || in->d[3] < 1) {
        char b[96];
        st = EGC_FAIL(EGC_E_UNSUPPORTED, "%s: input '%s' has shape %s; egcam needs an image "
                      "input [N,C,H,W] with fixed C, H and W", path, g->values[g->input].name,
                      egc_shape_str(in, b, sizeof b));
        goto fail;
    }
    if (o->ndim != 2) {
        char b[96];
        st = EGC_FAIL(EGC_E_UNSUPPORTED, "%s: output '%s' has shape %s; egcam needs class "
                      "scores [N,classes]", path, g->values[g->output].name,
                      egc_shape_str(o, b, sizeof b));
        goto fail;
    }
    m->c = (int)in->d[1];
    m->h = (int)in->d[2];
    m->w = (int)in->d[3];
    m->classes = (int)o->d[1];
    EGC_TRYG(st, egc_malloc((void **)&m->layer_nodes, (size_t)g->n_nodes + 1, sizeof(int),
                            "model layers"), fail);
    m->auto_layer = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        m->layer_nodes[m->n_layers] = i;
        if (is_candidate(g, &g->nodes[i]) && is_compute_op(g->nodes[i].op))
            m->auto_layer = m->n_layers;
        m->n_layers++;
    }
    *out = m;
    return EGC_OK;
fail:
    egc_model_destroy(m);
    return st;
}

void egc_model_input_chw(const egc_model *m, int *c, int *h, int *w)
{
    if (c) *c = m->c;
    if (h) *h = m->h;
    if (w) *w = m->w;
}

int egc_model_num_classes(const egc_model *m) { return m->classes; }

int egc_model_num_layers(const egc_model *m) { return m->n_layers; }

egc_status egc_model_layer(const egc_model *m, int i, egc_layer_info *info)
{
    if (i < 0 || i >= m->n_layers)
        return EGC_FAIL(EGC_E_ARG, "layer index %d out of range [0,%d)", i, m->n_layers);
    const egc_node *n = &m->g.nodes[m->layer_nodes[i]];
    info->name = m->g.values[n->out].name;
    info->node = n->name;
    info->op = egc_op_name(n->op);
    info->shape = m->g.values[n->out].shape;
    info->is_candidate = is_candidate(&m->g, n);
    info->is_auto = i == m->auto_layer;
    return EGC_OK;
}

egc_status egc_model_find_layer(const egc_model *m, const char *name, int *layer)
{
    *layer = -1;
    if (!name || !strcmp(name, "auto")) {
        if (m->auto_layer < 0)
            return EGC_FAIL(EGC_E_ARG, "%s: no layer qualifies as a CAM target (a 4-D activation "
                            "with spatial size > 1); name one with --layer", m->path);
        *layer = m->auto_layer;
        return EGC_OK;
    }
    for (int i = 0; i < m->n_layers; i++) {
        const egc_node *n = &m->g.nodes[m->layer_nodes[i]];
        if (!strcmp(m->g.values[n->out].name, name) || !strcmp(n->name, name)) {
            *layer = i;
            return EGC_OK;
        }
    }
    return EGC_FAIL(EGC_E_ARG, "%s: no layer named '%s' (run `egcam info %s` for the list)",
                    m->path, name, m->path);
}

void egc_session_destroy(egc_session *s)
{
    if (!s) return;
    egc_plan_destroy(s->plan);
    if (s->be && s->seed_dev) s->be->free(s->be, s->seed_dev);
    egc_backend_destroy(s->be);
    free(s);
}

const char *egc_precision_name(egc_precision p)
{
    switch (p) {
    case EGC_PREC_FP32: return "fp32";
    case EGC_PREC_MIXED: return "mixed";
    default: return "unknown";
    }
}

egc_status egc_precision_parse(const char *name, egc_precision *out)
{
    if (name && !strcmp(name, "fp32")) {
        *out = EGC_PREC_FP32;
        return EGC_OK;
    }
    if (name && !strcmp(name, "mixed")) {
        *out = EGC_PREC_MIXED;
        return EGC_OK;
    }
    return EGC_FAIL(EGC_E_ARG, "unknown precision '%s' (expected fp32 or mixed)",
                    name ? name : "(null)");
}

void egc_session_options_default(egc_session_options *o)
{
    memset(o, 0, sizeof *o);
    o->precision = EGC_PREC_FP32;
}

egc_status egc_session_create(const egc_model *m, const char *device, int batch,
                              int target_layer, egc_session **out)
{
    return egc_session_create_ex(m, device, batch, target_layer, NULL, out);
}

void egc_session_describe(const egc_session *s, char *buf, size_t cap)
{
    if (!buf || !cap) return;
    buf[0] = '\0';
    if (s && s->plan) egc_plan_describe(s->plan, buf, cap);
}

egc_status egc_session_create_ex(const egc_model *m, const char *device, int batch,
                                 int target_layer, const egc_session_options *opts,
                                 egc_session **out)
{
    *out = NULL;
    egc_status st;
    egc_session *s = NULL;
    if (batch < 1) return EGC_FAIL(EGC_E_ARG, "batch size must be at least 1 (got %d)", batch);
    if (target_layer >= m->n_layers)
        return EGC_FAIL(EGC_E_ARG, "target layer %d out of range", target_layer);
    EGC_TRY(egc_calloc((void **)&s, 1, sizeof *s, "session"));
    s->m = m;
    s->batch = batch;
    s->target_value = target_layer >= 0 ? m->g.nodes[m->layer_nodes[target_layer]].out : -1;
    EGC_TRYG(st, egc_backend_create(device ? device : "cpu", &s->be), fail);
    egc_plan_opts po;
    egc_plan_opts_default(&po);
    if (opts) {
        if (opts->precision != EGC_PREC_FP32 && opts->precision != EGC_PREC_MIXED) {
            st = EGC_FAIL(EGC_E_ARG, "session: unknown precision %d", (int)opts->precision);
            goto fail;
        }
        po.precision = opts->precision;
        po.graphs = !opts->no_graphs;
    }
    EGC_TRYG(st, egc_plan_create_ex(&m->g, s->be, batch, s->target_value, &po, &s->plan), fail);
    if (s->target_value >= 0)
        EGC_TRYG(st, s->be->alloc(s->be, (size_t)batch * (size_t)m->classes * sizeof(float),
                                  (void **)&s->seed_dev), fail);
    snprintf(s->device, sizeof s->device, "%s (%s)", s->be->name, s->be->device_name);
    *out = s;
    return EGC_OK;
fail:
    egc_session_destroy(s);
    return st;
}

const char *egc_session_device(const egc_session *s) { return s->device; }

egc_shape egc_session_target_shape(const egc_session *s)
{
    egc_shape r;
    memset(&r, 0, sizeof r);
    if (s->target_value >= 0) r = s->m->g.values[s->target_value].shape;
    return r;
}

size_t egc_session_device_bytes(const egc_session *s)
{
    if (s->be->bytes_in_use) return s->be->bytes_in_use(s->be);
    size_t seed = s->seed_dev ? (size_t)s->batch * (size_t)s->m->classes * sizeof(float) : 0;
    return egc_plan_bytes(s->plan) + seed;
}

static egc_status check_n(const egc_session *s, int n)
{
    if (n < 1 || n > s->batch)
        return EGC_FAIL(EGC_E_ARG, "%d images given to a session of batch %d", n, s->batch);
    return EGC_OK;
}

egc_status egc_session_forward(egc_session *s, const float *x, int n, float *logits)
{
    EGC_TRY(check_n(s, n));
    const egc_graph *g = &s->m->g;
    egc_view in = egc_plan_value(s->plan, g->input);
    size_t per = (size_t)s->m->c * (size_t)s->m->h * (size_t)s->m->w;
    EGC_TRY(s->be->upload(s->be, in.ptr, x, (size_t)n * per * sizeof(float)));
    if (n < s->batch)
        EGC_TRY(s->be->fill(s->be, in.ptr + (size_t)n * per, 0.0f,
                            (int64_t)((size_t)(s->batch - n) * per)));
    EGC_TRY(egc_plan_forward(s->plan));
    if (logits) {
        egc_view o = egc_plan_value(s->plan, g->output);
        EGC_TRY(s->be->download(s->be, logits, o.ptr,
                                (size_t)n * (size_t)s->m->classes * sizeof(float)));
    }
    return EGC_OK;
}

egc_status egc_session_backward(egc_session *s, const float *seed, int n, float *grad,
                                float *act)
{
    EGC_TRY(check_n(s, n));
    if (s->target_value < 0)
        return EGC_FAIL(EGC_E_ARG, "this session was created without a target layer");
    size_t nc = (size_t)s->m->classes;
    EGC_TRY(s->be->fill(s->be, s->seed_dev, 0.0f, (int64_t)(s->batch * nc)));
    EGC_TRY(s->be->upload(s->be, s->seed_dev, seed, (size_t)n * nc * sizeof(float)));
    EGC_TRY(egc_plan_backward(s->plan, s->seed_dev));
    egc_view gv = egc_plan_grad(s->plan, s->target_value);
    size_t per = (size_t)(egc_shape_numel(&gv.shape) / s->batch);
    if (grad) EGC_TRY(s->be->download(s->be, grad, gv.ptr, (size_t)n * per * sizeof(float)));
    if (act) {
        egc_view av = egc_plan_value(s->plan, s->target_value);
        EGC_TRY(s->be->download(s->be, act, av.ptr, (size_t)n * per * sizeof(float)));
    }
    return EGC_OK;
}

/* ---- library-internal accessors (model/session.h) ---- */

egc_backend *egc_session_backend(const egc_session *s) { return s->be; }
egc_plan *egc_session_plan(const egc_session *s) { return s->plan; }
const egc_graph *egc_session_graph(const egc_session *s) { return &s->m->g; }
int egc_session_target_value(const egc_session *s) { return s->target_value; }

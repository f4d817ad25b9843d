/* model.c: the public model and session API (egcam/model.h) over the ONNX reader, the
 * lowering, the executor and the backend registry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "egcam/model.h"
#include "model/batch_first.h"
#include "model/exec.h"
#include "model/lower.h"
#include "model/onnx.h"
#include "model/session.h"
#include "model/tokens.h"

struct egc_model {
    egc_graph g;
    char *path;
    int c, h, w, classes;
    int *layer_nodes;   /* layer i -> node index */
    int n_layers;
    int auto_layer;     /* -1 when the model has no candidate */
    unsigned char *layout; /* per value: LAYOUT_* (what is known of its axis order) */
    int one_image;      /* 1: one image per pass (egc_graph_rows_apart is 0) */
    egc_tokens *tok;    /* per value: its token-layer geometry (prefix < 0: not one) */
    int softmax_out;    /* the file's output was a Softmax (1) or LogSoftmax (2) over the classes,
                           left out; 0: neither */
};

/* What is known of a value's axis order: channels first [N,C,H,W] (the input, and what
 * convolutions, pooling and elementwise ops make of it), channels last [N,H,W,C] (after a
 * Transpose (0,2,3,1), as in ConvNeXt blocks and channels-last LayerNorms), or unknown. */
enum { LAYOUT_UNKNOWN = 0, LAYOUT_NCHW = 1, LAYOUT_NHWC = 2 };

struct egc_session {
    const egc_model *m;
    const egc_graph *g; /* the model's graph, or tg */
    egc_graph tg;       /* the graph with the target's CAM view (egc_graph_token_view),
                           when the target is a token or channels-last layer; else empty */
    egc_backend *be;
    egc_plan *plan;
    int batch;          /* rows a call may take */
    int chunk;          /* rows per pass: the plan's batch (<= batch) */
    int target_value;   /* -1 when forward only */
    float *seed_dev;    /* [chunk, classes] on the device */
    float *xhost;       /* [batch, C*H*W] the last forward's inputs; only when chunk < batch
                           and there is a target layer (a backward will need them) */
    float *xstage;      /* [chunk, C*H*W] page-locked staging of inputs that are not */
    int stage;          /* 0: not tried yet, 1: xstage in use, -1: no staging (CPU, or
                           page-locked memory could not be had) */
    int fwd_n;          /* rows of the last forward (0: none yet) */
    int fwd_row0;       /* first of those rows that the plan's buffers hold */
    int held;           /* how many rows (from fwd_row0) the last pass put in the plan */
    size_t cap;         /* max_device_bytes (0: none) */
    size_t counted;     /* device bytes counted against the cap (session + caller's extras) */
    char device[192];
};

/* The layout of every value of g into lay (g->n_values entries), in one pass over the
 * nodes (topological order). */
static void infer_layouts(const egc_graph *g, unsigned char *lay)
{
    memset(lay, LAYOUT_UNKNOWN, (size_t)g->n_values);
    if (g->input >= 0) lay[g->input] = LAYOUT_NCHW;
    for (int i = 0; i < g->n_nodes; i++) {
        const egc_node *n = &g->nodes[i];
        const int rank = g->values[n->out].shape.ndim;
        int from = LAYOUT_UNKNOWN; /* of the activation inputs of the output's rank */
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j];
            if (v < 0 || g->values[v].is_const || g->values[v].shape.ndim != rank) continue;
            if (lay[v] == LAYOUT_NHWC || from == LAYOUT_UNKNOWN) from = lay[v];
        }
        unsigned char l = LAYOUT_UNKNOWN;
        switch (n->op) {
        case EGC_OP_CONV: case EGC_OP_MAXPOOL: case EGC_OP_AVGPOOL: case EGC_OP_GAP:
        case EGC_OP_BATCHNORM:
            l = LAYOUT_NCHW;
            break;
        case EGC_OP_TRANSPOSE: {
            const int *p = n->p.transpose.perm;
            const int in = n->in[0] >= 0 ? lay[n->in[0]] : LAYOUT_UNKNOWN;
            int ident = 1;
            for (int k = 0; k < n->p.transpose.n; k++) ident &= p[k] == k;
            if (ident) l = (unsigned char)in;
            else if (n->p.transpose.n == 4 && p[0] == 0 && p[1] == 2 && p[2] == 3 && p[3] == 1)
                l = in == LAYOUT_NCHW ? LAYOUT_NHWC : LAYOUT_UNKNOWN;
            else if (n->p.transpose.n == 4 && p[0] == 0 && p[1] == 3 && p[2] == 1 && p[3] == 2)
                l = in == LAYOUT_NHWC ? LAYOUT_NCHW : LAYOUT_UNKNOWN;
            break;
        }
        case EGC_OP_MATMUL: /* over the last axis: keeps channels last, nothing else */
            if (n->n_in > 1 && n->in[1] >= 0 && g->values[n->in[1]].is_const &&
                from == LAYOUT_NHWC)
                l = LAYOUT_NHWC;
            break;
        case EGC_OP_RESHAPE: case EGC_OP_GEMM: case EGC_OP_SOFTMAX:
            break;
        default: /* elementwise, Concat, Slice, Pad: as their activation inputs */
            l = (unsigned char)from;
            break;
        }
        lay[n->out] = l;
    }
}

/* Whether g's output is reached from its input along a path that avoids value v (reach:
 * scratch of g->n_values bytes). */
static int bypassed(const egc_graph *g, int v, unsigned char *reach)
{
    memset(reach, 0, (size_t)g->n_values);
    if (g->input >= 0) reach[g->input] = 1;
    for (int k = 0; k < g->n_nodes; k++) { /* topological order */
        const egc_node *n = &g->nodes[k];
        if (n->out == v) continue;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0 && reach[n->in[j]]) reach[n->out] = 1;
    }
    return g->output >= 0 && reach[g->output];
}

/* The batch a value's first dimension has in g's shapes: the declared one, 1 when symbolic. */
static int64_t shape_batch(const egc_graph *g)
{
    return g->declared_batch > 0 ? g->declared_batch : 1;
}

/* Whether node n multiplies two activations (attention's scores and their product with the
 * values): what mixes a transformer's tokens. */
static int attention_product(const egc_graph *g, const egc_node *n)
{
    return n->op == EGC_OP_MATMUL && n->n_in == 2 && n->in[0] >= 0 && n->in[1] >= 0 &&
           !g->values[n->in[0]].is_const && !g->values[n->in[1]].is_const;
}

/* The token layers of g into tok (g->n_values entries): 3-D activations [N, p + gh*gw, C]
 * with N the declared batch (1 when symbolic), where gh x gw (more than one) and C are the
 * spatial size and channels of the last channels-first 4-D activation before them (a vision
 * transformer's patch embedding) and the prefix p (class and distillation tokens) is 0 to 8. */
static void infer_tokens(const egc_graph *g, const unsigned char *lay, egc_tokens *tok)
{
    const int64_t b1 = shape_batch(g);
    int64_t gh = 0, gw = 0, gc = 0;
    for (int v = 0; v < g->n_values; v++) tok[v].prefix = -1, tok[v].after = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const int v = g->nodes[i].out;
        const egc_shape *s = &g->values[v].shape;
        if (s->ndim == 4 && lay[v] == LAYOUT_NCHW && s->d[2] * s->d[3] > 1) {
            gc = s->d[1], gh = s->d[2], gw = s->d[3];
            continue;
        }
        if (s->ndim != 3 || !gc || s->d[0] != b1 || s->d[2] != gc || g->values[v].batch_moved)
            continue;
        const int64_t p = s->d[1] - gh * gw;
        if (p < 0 || p > 8 || gh > (1 << 20) || gw > (1 << 20)) continue;
        tok[v].prefix = (int)p;
        tok[v].gh = (int)gh;
        tok[v].gw = (int)gw;
    }
    /* what is computed from token layers or from a product of two activations (attention's
     * queries, keys and scores, [N, heads, tokens, ...]; a Swin transformer's windows) is no
     * 4-D CAM layer, however it looks, unless a convolution or pooling made it channels first
     * again */
    for (int i = 0; i < g->n_nodes; i++) {
        const egc_node *n = &g->nodes[i];
        int from = attention_product(g, n);
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0 && (tok[n->in[j]].prefix >= 0 || tok[n->in[j]].after)) from = 1;
        tok[n->out].after = from && lay[n->out] != LAYOUT_NCHW;
    }
}

/* Whether value v is a channels-last CAM layer: [N,H,W,C], known to be channels last, with
 * H*W > 1 (read through its transpose: tokens.c). */
static int is_channels_last(const egc_model *m, int v)
{
    const egc_shape *s = &m->g.values[v].shape;
    return s->ndim == 4 && s->d[1] * s->d[2] > 1 && m->layout[v] == LAYOUT_NHWC;
}

/* Whether node n's output can be a CAM's target layer: with the declared batch, and 4-D
 * channels first with spatial size > 1 (not computed from tokens or attention), channels
 * last (is_channels_last), or a token layer (infer_tokens). */
static int is_candidate(const egc_model *m, const egc_node *n)
{
    const egc_shape *s = &m->g.values[n->out].shape;
    if (m->g.values[n->out].batch_moved || s->ndim < 1 || s->d[0] != shape_batch(&m->g)) return 0;
    return (s->ndim == 4 && s->d[2] * s->d[3] > 1 && m->layout[n->out] != LAYOUT_NHWC &&
            !m->tok[n->out].after) ||
           is_channels_last(m, n->out) || m->tok[n->out].prefix >= 0;
}

static int is_compute_op(egc_op op)
{
    switch (op) {
    case EGC_OP_CONV: case EGC_OP_RELU: case EGC_OP_CLIP: case EGC_OP_ADD: case EGC_OP_MUL:
    case EGC_OP_SIGMOID: case EGC_OP_BATCHNORM: case EGC_OP_SOFTPLUS:
        return 1;
    default:
        return 0;
    }
}

/* is_compute_op, and a quantization that is the activation: a QuantizeLinear /
 * DequantizeLinear pair whose zero point is its type's least value clamps the negatives to 0,
 * the Relu ONNX Runtime's quantizer removes before it, so after a Conv, Add or
 * BatchNormalization it is that layer's activation (after a Relu it is a quantized copy). */
static int is_compute_node(const egc_graph *g, const egc_node *n)
{
    if (n->op != EGC_OP_FAKE_QUANT) return is_compute_op(n->op);
    if (n->p.fq.zero != n->p.fq.qmin || n->in[0] < 0) return 0;
    const int p = g->values[n->in[0]].producer;
    if (p < 0 || p >= g->n_nodes) return 0;
    const egc_op po = g->nodes[p].op;
    return po == EGC_OP_CONV || po == EGC_OP_ADD || po == EGC_OP_BATCHNORM;
}

void egc_model_destroy(egc_model *m)
{
    if (!m) return;
    egc_graph_clear(&m->g);
    free(m->path);
    free(m->layer_nodes);
    free(m->layout);
    free(m->tok);
    free(m);
}

egc_status egc_model_load(const char *path, egc_model **out)
{
    return egc_model_load_sized(path, 0, 0, out);
}

egc_status egc_model_load_sized(const char *path, int height, int width, egc_model **out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "egc_model_load: out is NULL");
    *out = NULL;
    if (!path) return EGC_FAIL(EGC_E_ARG, "egc_model_load: path is NULL");
    if (height < 0 || width < 0 || (height == 0) != (width == 0))
        return EGC_FAIL(EGC_E_ARG, "%s: image size %dx%d: give both, each at least 1 (or 0x0 "
                        "for the file's own)", path, height, width);
    egc_onnx_model *om = NULL;
    egc_model *m = NULL;
    egc_status st;
    EGC_TRY(egc_onnx_load(path, &om));
    st = egc_calloc((void **)&m, 1, sizeof *m, "model");
    if (st != EGC_OK) {
        egc_onnx_free(om);
        return st;
    }
    st = egc_lower_sized(om, path, NULL, NULL, 0, height, width, &m->g);
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
    /* A final Softmax over the classes (Keras' Dense(activation="softmax")): its input is
     * the logits, which the explanations take their gradients of (a probability output
     * saturates them; `--score softmax` gives the probabilities). It is the last node (every
     * node left after lowering leads to the output). */
    /* A final LogSoftmax (PyTorch's MNIST-style `F.log_softmax`), lowered to a Softmax and a
     * Log, is left out the same way (2); so is a quantized one (a QuantizeLinear /
     * DequantizeLinear pair after it, as ONNX Runtime's quantizer writes a Softmax). */
    if (g->n_nodes > 0) {
        int kind = 1, drop = 0, at = g->n_nodes - 1; /* at: the node whose output is checked */
        egc_node *last = &m->g.nodes[at];
        if (last->op == EGC_OP_FAKE_QUANT && last->out == g->output && at > 0 &&
            last->in[0] >= 0 && m->g.nodes[at - 1].out == last->in[0]) {
            last = &m->g.nodes[--at];
            drop = 1;
        }
        if (last->op == EGC_OP_LOG && (drop || last->out == g->output) && at > 0 &&
            last->in[0] >= 0 && m->g.nodes[at - 1].out == last->in[0]) {
            last = &m->g.nodes[--at];
            kind = 2, drop++;
        }
        drop++; /* the Softmax */
        if (last->op == EGC_OP_SOFTMAX && (drop > 1 || last->out == g->output) &&
            last->in[0] >= 0 && last->in[0] != g->input &&
            (last->p.axis.axis == 1 || last->p.axis.axis == -1) &&
            g->values[last->in[0]].shape.ndim == 2) {
            m->g.output = last->in[0];
            for (int k = 0; k < drop; k++) { /* their outputs are made by nothing now */
                egc_node *gone = &m->g.nodes[g->n_nodes - 1];
                m->g.values[gone->out].producer = -1;
                free(gone->name);
                gone->name = NULL;
                m->g.n_nodes--;
            }
            m->softmax_out = kind;
            o = &g->values[g->output].shape;
        }
    }
    m->c = (int)in->d[1];
    m->h = (int)in->d[2];
    m->w = (int)in->d[3];
    m->classes = (int)o->d[1];
    int apart = egc_graph_rows_apart(g);
    if (apart == 0) { /* a batch-1 export moving the batch axis: batch-first if it can be */
        int changed = 0;
        EGC_TRYG(st, egc_graph_batch_first(&m->g, &changed), fail);
        if (changed) apart = egc_graph_rows_apart(g);
    }
    if (apart < 0) {
        st = egc_error_prefix(EGC_E_NOMEM, "%s: ", path);
        goto fail;
    }
    m->one_image = !apart;
    EGC_TRYG(st, egc_malloc((void **)&m->layer_nodes, (size_t)g->n_nodes + 1, sizeof(int),
                            "model layers"), fail);
    EGC_TRYG(st, egc_malloc((void **)&m->layout, (size_t)g->n_values + 1, 1, "model layouts"),
             fail);
    infer_layouts(g, m->layout);
    EGC_TRYG(st, egc_malloc((void **)&m->tok, (size_t)g->n_values + 1, sizeof *m->tok,
                            "model token layers"), fail);
    infer_tokens(g, m->layout, m->tok);
    /* values from which a product of two activations (attention) is reached: a token layer's
     * patch tokens get a gradient only before the last attention */
    unsigned char *mix = NULL;
    EGC_TRYG(st, egc_calloc((void **)&mix, (size_t)g->n_values + 1, 1, "model layers"), fail);
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const egc_node *n = &g->nodes[i];
        if (!attention_product(g, n) && !mix[n->out]) continue;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0 && !g->values[n->in[j]].is_const) mix[n->in[j]] = 1;
    }
    /* auto: the last image-like candidate made by a compute op or a Concat (the output of an
     * Inception module) that every path from the input to the logits passes (not one branch
     * of a module whose other branches go around it); the last one made by a compute op
     * where none is */
    m->auto_layer = -1;
    int auto_tok = -1, n_cand = 0;
    int *cand = NULL;
    unsigned char *reach = NULL;
    EGC_TRYG(st, egc_malloc((void **)&cand, (size_t)g->n_nodes + 1, sizeof(int), "model layers"),
             fail_mix);
    EGC_TRYG(st, egc_malloc((void **)&reach, (size_t)g->n_values + 1, 1, "model layers"),
             fail_mix);
    for (int i = 0; i < g->n_nodes; i++) {
        m->layer_nodes[m->n_layers] = i;
        const egc_node *n = &g->nodes[i];
        if (is_candidate(m, n) && is_compute_node(g, n)) {
            if (m->tok[n->out].prefix < 0) m->auto_layer = m->n_layers;
            else if (mix[n->out]) auto_tok = m->n_layers;
        }
        if (is_candidate(m, n) && m->tok[n->out].prefix < 0 &&
            (is_compute_node(g, n) || n->op == EGC_OP_CONCAT))
            cand[n_cand++] = m->n_layers;
        m->n_layers++;
    }
    for (int j = n_cand - 1; j >= 0; j--)
        if (!bypassed(g, g->nodes[m->layer_nodes[cand[j]]].out, reach)) {
            m->auto_layer = cand[j];
            break;
        }
    free(cand);
    free(reach);
    free(mix);
    /* a vision transformer: the input of its last attention (the last block's first
     * LayerNorm), as pytorch-grad-cam's users target it */
    if (auto_tok > m->auto_layer) m->auto_layer = auto_tok;
    *out = m;
    return EGC_OK;
fail_mix:
    free(cand);
    free(reach);
    free(mix);
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

int egc_model_input_channels_last(const egc_model *m) { return m->g.input_channels_last; }

int egc_model_output_softmax_removed(const egc_model *m) { return m->softmax_out; }

int egc_model_num_layers(const egc_model *m) { return m->n_layers; }

int egc_model_one_image_per_pass(const egc_model *m) { return m->one_image; }

int egc_model_layer_tokens(const egc_model *m, int i, int *prefix, int *gh, int *gw)
{
    if (i < 0 || i >= m->n_layers) return 0;
    const egc_tokens *t = &m->tok[m->g.nodes[m->layer_nodes[i]].out];
    if (t->prefix < 0) return 0;
    if (prefix) *prefix = t->prefix;
    if (gh) *gh = t->gh;
    if (gw) *gw = t->gw;
    return 1;
}

int egc_model_layer_channels_last(const egc_model *m, int i)
{
    if (i < 0 || i >= m->n_layers) return 0;
    const egc_node *n = &m->g.nodes[m->layer_nodes[i]];
    return is_candidate(m, n) && is_channels_last(m, n->out);
}

int egc_model_quantized_pairs(const egc_model *m, int after)
{
    int count = 0;
    for (int i = m ? (after < -1 ? 0 : after + 1) : 0; m && i < m->n_layers; i++)
        count += m->g.nodes[m->layer_nodes[i]].op == EGC_OP_FAKE_QUANT;
    return count;
}

int egc_model_layer_bypassed(const egc_model *m, int i)
{
    if (i < 0 || i >= m->n_layers) {
        (void)EGC_FAIL(EGC_E_ARG, "layer index %d out of range [0,%d)", i, m->n_layers);
        return -1;
    }
    unsigned char *reach = NULL;
    if (egc_malloc((void **)&reach, (size_t)m->g.n_values + 1, 1, "layer paths") != EGC_OK)
        return -1;
    const int r = bypassed(&m->g, m->g.nodes[m->layer_nodes[i]].out, reach);
    free(reach);
    return r;
}

egc_status egc_model_layer_cam_shape(const egc_model *m, int i, egc_shape *shape)
{
    egc_layer_info li;
    EGC_TRY(egc_model_layer(m, i, &li));
    int p, gh, gw;
    if (egc_model_layer_tokens(m, i, &p, &gh, &gw)) {
        const int64_t d[4] = {li.shape.d[0], li.shape.d[2], gh, gw};
        *shape = egc_shape_make(4, d);
        return EGC_OK;
    }
    if (egc_model_layer_channels_last(m, i)) {
        const int64_t d[4] = {li.shape.d[0], li.shape.d[3], li.shape.d[1], li.shape.d[2]};
        *shape = egc_shape_make(4, d);
        return EGC_OK;
    }
    if (!li.is_candidate) {
        char b[96];
        return EGC_FAIL(EGC_E_ARG, "layer '%s' has shape %s; a CAM needs a 4-D activation "
                        "[1,K,h,w] or a token layer", li.name,
                        egc_shape_str(&li.shape, b, sizeof b));
    }
    *shape = li.shape;
    return EGC_OK;
}

egc_status egc_model_layer(const egc_model *m, int i, egc_layer_info *info)
{
    if (i < 0 || i >= m->n_layers)
        return EGC_FAIL(EGC_E_ARG, "layer index %d out of range [0,%d)", i, m->n_layers);
    const egc_node *n = &m->g.nodes[m->layer_nodes[i]];
    info->name = m->g.values[n->out].name;
    info->node = n->name;
    info->op = egc_op_name(n->op);
    info->shape = m->g.values[n->out].shape;
    info->is_candidate = is_candidate(m, n);
    info->is_auto = i == m->auto_layer;
    return EGC_OK;
}

/* The scope prefix PyTorch's ONNX exporter (1.13 and later) gives the nodes of the module at
 * dotted path `path` of the exported network: one level per module, where a numeric child (an
 * index into a Sequential or ModuleList) is named after its parent's level plus the index
 * ("layer4.2" -> "/layer4/layer4.2/", "features.11.block.3" ->
 * "/features/features.11/block/block.3/"). 0 (and buf unusable) when path is not a dotted
 * path of identifiers and indices, or the prefix does not fit cap bytes. */
static int torch_scope(const char *path, char *buf, size_t cap)
{
    size_t len = 0, plen = strlen(path);
    char level[256] = "";
    if (plen == 0 || path[0] == '.' || path[plen - 1] == '.' || cap < 2) return 0;
    buf[len++] = '/';
    for (const char *p = path; *p;) {
        const char *e = strchr(p, '.');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int digits = n > 0;
        for (size_t k = 0; k < n; k++) {
            char ch = p[k];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
                  (ch >= '0' && ch <= '9')))
                return 0;
            digits &= ch >= '0' && ch <= '9';
        }
        if (n == 0) return 0;
        size_t ll = strlen(level);
        if (digits && ll > 0) { /* level = level + "." + index */
            if (ll + 1 + n >= sizeof level) return 0;
            level[ll] = '.';
            memcpy(level + ll + 1, p, n);
            level[ll + 1 + n] = '\0';
        } else {
            if (n >= sizeof level) return 0;
            memcpy(level, p, n);
            level[n] = '\0';
        }
        ll = strlen(level);
        if (len + ll + 2 > cap) return 0;
        memcpy(buf + len, level, ll);
        len += ll;
        buf[len++] = '/';
        p += n + (e ? 1 : 0);
    }
    buf[len] = '\0';
    return 1;
}

egc_status egc_model_find_layer(const egc_model *m, const char *name, int *layer)
{
    *layer = -1;
    if (!name || !strcmp(name, "auto")) {
        if (m->auto_layer < 0)
            return EGC_FAIL(EGC_E_ARG, "%s: no layer qualifies as a CAM target (a 4-D activation "
                            "with spatial size > 1, or a transformer's token layer); name one with --layer",
                            m->path);
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
    /* A module of a PyTorch export ("layer4", "features.29"): its output, i.e. the last
     * layer whose node lies in the module's scope. */
    char scope[600];
    if (torch_scope(name, scope, sizeof scope)) {
        size_t sl = strlen(scope);
        for (int i = m->n_layers - 1; i >= 0; i--) {
            const egc_node *n = &m->g.nodes[m->layer_nodes[i]];
            if (strncmp(n->name, scope, sl) != 0) continue;
            if (!is_candidate(m, n)) {
                char b[96];
                return EGC_FAIL(EGC_E_ARG, "%s: module '%s' ends in layer '%s' (%s, shape %s), "
                                "which is not a 4-D activation with spatial size > 1 (channels first "
                                "or last) or a token layer; name a layer "
                                "inside it (run `egcam info %s` for the list)", m->path, name,
                                m->g.values[n->out].name, egc_op_name(n->op),
                                egc_shape_str(&m->g.values[n->out].shape, b, sizeof b), m->path);
            }
            *layer = i;
            return EGC_OK;
        }
    }
    return EGC_FAIL(EGC_E_ARG, "%s: no layer named '%s', and no module of that name in a "
                    "PyTorch export (run `egcam info %s` for the list)", m->path, name, m->path);
}

/* Frees the plan and the seed buffer (the backend stays). */
static void drop_plan(egc_session *s)
{
    egc_plan_destroy(s->plan);
    s->plan = NULL;
    if (s->be && s->seed_dev) s->be->free(s->be, s->seed_dev);
    s->seed_dev = NULL;
}

void egc_session_destroy(egc_session *s)
{
    if (!s) return;
    drop_plan(s);
    egc_backend_destroy(s->be);
    if (s->g == &s->tg) egc_graph_token_view_free(&s->tg, &s->m->g);
    free(s->xhost);
    egc_host_free(s->xstage);
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

/* "2.00 GiB", "512.0 MiB", "12.3 KiB", "100 B" into b. */
static const char *human_bytes(size_t n, char *b, size_t cap)
{
    double v = (double)n;
    if (v >= 1024.0 * 1024.0 * 1024.0) snprintf(b, cap, "%.2f GiB", v / (1024.0 * 1024.0 * 1024.0));
    else if (v >= 1024.0 * 1024.0) snprintf(b, cap, "%.1f MiB", v / (1024.0 * 1024.0));
    else if (v >= 1024.0) snprintf(b, cap, "%.1f KiB", v / 1024.0);
    else snprintf(b, cap, "%zu B", n);
    return b;
}

void egc_session_describe(const egc_session *s, char *buf, size_t cap)
{
    if (!buf || !cap) return;
    buf[0] = '\0';
    if (!s || !s->plan) return;
    size_t len = 0;
    if (s->chunk < s->batch) {
        char c[32], u[32];
        if (s->m->one_image)
            snprintf(buf, cap, "batch %d run one image per pass (the model moves or merges the "
                     "batch axis, or mixes rows)\n", s->batch);
        else if (s->cap)
            snprintf(buf, cap, "batch %d split into passes of %d rows (device cap %s, %s used)\n",
                     s->batch, s->chunk, human_bytes(s->cap, c, sizeof c),
                     human_bytes(s->counted, u, sizeof u));
        else
            snprintf(buf, cap, "batch %d split into passes of %d rows (more rows ran out of "
                     "device memory; %s used)\n", s->batch, s->chunk,
                     human_bytes(s->counted, u, sizeof u));
        len = strlen(buf);
    }
    if (len + 1 < cap) egc_plan_describe(s->plan, buf + len, cap - len);
}

/* Device bytes of the session as egc_session_device_bytes counts them. */
static size_t session_bytes(const egc_session *s)
{
    if (s->be->bytes_in_use) return s->be->bytes_in_use(s->be);
    size_t seed = s->seed_dev ? (size_t)s->chunk * (size_t)s->m->classes * sizeof(float) : 0;
    return egc_plan_bytes(s->plan) + seed;
}

static size_t sat_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

static size_t sat_mul(size_t a, size_t b) { return b && a > SIZE_MAX / b ? SIZE_MAX : a * b; }

/* Creates the plan of s->chunk rows and its seed buffer; on failure neither is left. */
static egc_status make_plan(egc_session *s, const egc_plan_opts *po)
{
    egc_status st;
    EGC_TRYG(st, egc_plan_create_ex(s->g, s->be, s->chunk, s->target_value, po, &s->plan),
             fail);
    if (s->target_value >= 0)
        EGC_TRYG(st, s->be->alloc(s->be, (size_t)s->chunk * (size_t)s->m->classes * sizeof(float),
                                  (void **)&s->seed_dev), fail);
    return EGC_OK;
fail:
    drop_plan(s);
    return st;
}

/* Finds the chunk (see egc_session_options in model.h) and leaves its plan in s. Starts at
 * s->batch; a real out-of-memory halves the chunk; over the cap, the bytes per row are
 * estimated from the arena (linear in the rows; the rest is fixed) and the largest chunk
 * the estimate fits is tried next, always fewer rows than the last try, halving after a
 * few estimates, so the number of plans made stays small. */
static egc_status fit_plan(egc_session *s, const egc_plan_opts *po, size_t extra_row,
                           size_t extra_fixed)
{
    char c[32], u[32];
    int chunk = s->m->one_image ? 1 : s->batch;
    for (int tries = 0;; tries++) {
        s->chunk = chunk;
        egc_status st = make_plan(s, po);
        if (st == EGC_E_NOMEM && chunk > 1) {
            chunk /= 2;
            continue;
        }
        if (st == EGC_E_NOMEM)
            return egc_error_prefix(st, "%s: not even one row fits in device memory: ",
                                    s->m->path);
        if (st != EGC_OK) return st;
        size_t total = sat_add(sat_add(session_bytes(s), extra_fixed),
                               sat_mul((size_t)chunk, extra_row));
        s->counted = total;
        if (!s->cap || total <= s->cap) return EGC_OK;
        if (chunk == 1)
            return EGC_FAIL(EGC_E_NOMEM, "%s: does not fit in the device memory cap of %s "
                            "(%zu bytes): one row needs %s (%zu bytes)", s->m->path,
                            human_bytes(s->cap, c, sizeof c), s->cap,
                            human_bytes(total, u, sizeof u), total);
        size_t seed_row = s->seed_dev ? (size_t)s->m->classes * sizeof(float) : 0;
        size_t arena = egc_plan_arena_bytes(s->plan);
        size_t row = sat_add(sat_add((arena + (size_t)chunk - 1) / (size_t)chunk, seed_row),
                             extra_row);
        size_t scaled = sat_mul(row, (size_t)chunk);
        size_t fixed = total > scaled ? total - scaled : 0;
        size_t fit = s->cap > fixed && row ? (s->cap - fixed) / row : 0;
        int next = chunk - 1;
        if (tries >= 3) next = chunk / 2;
        if (fit < (size_t)next) next = (int)fit;
        if (next < 1) next = 1;
        drop_plan(s);
        chunk = next;
    }
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
    s->g = &m->g;
    s->target_value = target_layer >= 0 ? m->g.nodes[m->layer_nodes[target_layer]].out : -1;
    const int view = !(opts && opts->whole_target);
    if (view && s->target_value >= 0 && m->tok[s->target_value].prefix >= 0) {
        const egc_tokens *t = &m->tok[s->target_value];
        EGC_TRYG(st, egc_graph_token_view(&m->g, s->target_value, t->prefix, t->gh, t->gw,
                                          &s->tg, &s->target_value), fail);
        s->g = &s->tg;
    } else if (view && s->target_value >= 0 && egc_model_layer_channels_last(m, target_layer)) {
        const egc_shape *xs = &m->g.values[s->target_value].shape;
        EGC_TRYG(st, egc_graph_token_view(&m->g, s->target_value, 0, (int)xs->d[1],
                                          (int)xs->d[2], &s->tg, &s->target_value), fail);
        s->g = &s->tg;
    }
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
    s->cap = opts ? opts->max_device_bytes : 0;
    /* under a cap: workspaces kept to the backend's fixed bounds (they would count as fixed
     * bytes while they grow with the rows) */
    if (s->cap) po.lean = 1;
    EGC_TRYG(st, fit_plan(s, &po, opts ? opts->extra_row_bytes : 0,
                          opts ? opts->extra_fixed_bytes : 0), fail);
    /* Only a backward needs the inputs again (a forward-only session never copies them). */
    if (s->chunk < s->batch && s->target_value >= 0) {
        size_t per = (size_t)m->c * (size_t)m->h * (size_t)m->w;
        EGC_TRYG(st, egc_malloc((void **)&s->xhost, (size_t)batch * per, sizeof(float),
                                "session input copy"), fail);
    }
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
    if (s->target_value >= 0) r = s->g->values[s->target_value].shape;
    if (r.ndim >= 1) r.d[0] = 1; /* per row: a file may declare a fixed batch above 1 */
    return r;
}

size_t egc_session_device_bytes(const egc_session *s) { return session_bytes(s); }

int egc_session_chunk(const egc_session *s) { return s->chunk; }

static egc_status check_n(const egc_session *s, int n)
{
    if (n < 1 || n > s->batch)
        return EGC_FAIL(EGC_E_ARG, "%d images given to a session of batch %d", n, s->batch);
    return EGC_OK;
}

/* One pass: rows x[0..n) (n <= chunk) through the plan (only those rows where the backend
 * and the graph allow it, else the rest of its rows zero); the logits to the host when
 * logits is not NULL. */
/* Whether inputs at x go through s->xstage: not when x is page-locked already; the buffer is
 * made at the first call that needs it (egc_backend_stage_alloc: none on the CPU). */
static int stage_for(egc_session *s, const float *x)
{
    if (s->stage < 0 || egc_host_pinned(x)) return 0;
    if (s->stage == 0) {
        size_t per = (size_t)s->m->c * (size_t)s->m->h * (size_t)s->m->w;
        s->xstage = egc_backend_stage_alloc(s->be, (size_t)s->chunk * per * sizeof(float));
        s->stage = s->xstage ? 1 : -1;
    }
    return s->stage == 1;
}

static egc_status forward_pass(egc_session *s, const float *x, int n, float *logits, int stage)
{
    const egc_graph *g = s->g;
    egc_view in = egc_plan_value(s->plan, g->input);
    size_t per = (size_t)s->m->c * (size_t)s->m->h * (size_t)s->m->w;
    if (stage) { /* page-locked: the upload is a DMA at the bus's full speed */
        egc_parallel_copy(s->xstage, x, (size_t)n * per * sizeof(float));
        x = s->xstage;
    }
    EGC_TRY(s->be->upload(s->be, in.ptr, x, (size_t)n * per * sizeof(float)));
    EGC_TRY(egc_plan_use_rows(s->plan, n));
    EGC_TRY(egc_plan_forward(s->plan));
    if (logits) {
        egc_view o = egc_plan_value(s->plan, g->output);
        EGC_TRY(s->be->download(s->be, logits, o.ptr,
                                (size_t)n * (size_t)s->m->classes * sizeof(float)));
    }
    return EGC_OK;
}

egc_status egc_session_forward(egc_session *s, const float *x, int n, float *logits)
{
    EGC_TRY(check_n(s, n));
    size_t per = (size_t)s->m->c * (size_t)s->m->h * (size_t)s->m->w;
    size_t nc = (size_t)s->m->classes;
    s->fwd_n = 0;
    if (s->xhost) memcpy(s->xhost, x, (size_t)n * per * sizeof(float));
    int stage = stage_for(s, x);
    int r0 = 0;
    for (;;) {
        int nb = EGC_MIN(s->chunk, n - r0);
        EGC_TRY(forward_pass(s, x + (size_t)r0 * per, nb, logits ? logits + (size_t)r0 * nc : NULL,
                             stage));
        if (r0 + nb >= n) break;
        r0 += nb;
    }
    s->fwd_n = n;
    s->fwd_row0 = r0;
    s->held = n - r0;
    return EGC_OK;
}

egc_status egc_session_forward_offset(egc_session *s, const float *x, int n, const float *offset,
                                     float *logits)
{
    EGC_TRY(check_n(s, n));
    if (s->target_value < 0)
        return EGC_FAIL(EGC_E_ARG, "this session was created without a target layer");
    if (n > s->chunk)
        return EGC_FAIL(EGC_E_ARG, "a forward with an offset takes at most %d rows (one pass; got %d)",
                        s->chunk, n);
    s->fwd_n = 0; /* the plan's rows are no plain forward's now */
    const egc_graph *g = s->g;
    size_t per = (size_t)s->m->c * (size_t)s->m->h * (size_t)s->m->w;
    EGC_TRY(s->be->upload(s->be, egc_plan_value(s->plan, g->input).ptr, x,
                          (size_t)n * per * sizeof(float)));
    EGC_TRY(egc_plan_use_rows(s->plan, n));
    EGC_TRY(egc_plan_forward_trunk(s->plan));
    /* the offset goes up into the target's gradient buffer (unused until a backward, which
     * zeroes it first) and is added on the device: no host round trip, no allocation */
    egc_view tv = egc_plan_value(s->plan, s->target_value),
             gv = egc_plan_grad(s->plan, s->target_value);
    const int64_t cnt = (int64_t)n * (egc_shape_numel(&tv.shape) / tv.shape.d[0]);
    EGC_TRY(s->be->upload(s->be, gv.ptr, offset, (size_t)cnt * sizeof(float)));
    EGC_TRY(s->be->accumulate(s->be, tv.ptr, gv.ptr, cnt));
    EGC_TRY(egc_plan_forward_head(s->plan));
    if (logits)
        EGC_TRY(s->be->download(s->be, logits, egc_plan_value(s->plan, g->output).ptr,
                                (size_t)n * (size_t)s->m->classes * sizeof(float)));
    return EGC_OK;
}

/* One backward over the n <= chunk rows the plan holds: seed [n,classes] (host) in, the
 * rows' gradient and activation (when not NULL) out to the host. */
static egc_status backward_pass(egc_session *s, const float *seed, int n, float *grad, float *act)
{
    size_t nc = (size_t)s->m->classes;
    EGC_TRY(s->be->fill(s->be, s->seed_dev, 0.0f, (int64_t)((size_t)s->chunk * nc)));
    EGC_TRY(s->be->upload(s->be, s->seed_dev, seed, (size_t)n * nc * sizeof(float)));
    EGC_TRY(egc_plan_backward(s->plan, s->seed_dev));
    egc_view gv = egc_plan_grad(s->plan, s->target_value);
    size_t per = (size_t)(egc_shape_numel(&gv.shape) / gv.shape.d[0]); /* per row */
    if (grad) EGC_TRY(s->be->download(s->be, grad, gv.ptr, (size_t)n * per * sizeof(float)));
    if (act) {
        egc_view av = egc_plan_value(s->plan, s->target_value);
        EGC_TRY(s->be->download(s->be, act, av.ptr, (size_t)n * per * sizeof(float)));
    }
    return EGC_OK;
}

egc_status egc_session_backward(egc_session *s, const float *seed, int n, float *grad,
                                float *act)
{
    EGC_TRY(check_n(s, n));
    if (s->target_value < 0)
        return EGC_FAIL(EGC_E_ARG, "this session was created without a target layer");
    if (n > s->fwd_n)
        return EGC_FAIL(EGC_E_ARG, "backward of %d rows after a forward of %d", n, s->fwd_n);
    /* the plan holds the rows asked for: straight to the backward */
    if (s->fwd_row0 == 0 && n <= s->held) return backward_pass(s, seed, n, grad, act);
    /* The rows are not all in the plan: per pass, forward again from the host copy. */
    if (!s->xhost)
        return EGC_FAIL(EGC_E_INTERNAL, "session: rows %d.. of the last forward are gone",
                        s->fwd_row0);
    size_t per = (size_t)s->m->c * (size_t)s->m->h * (size_t)s->m->w;
    size_t nc = (size_t)s->m->classes;
    egc_shape ts = egc_session_target_shape(s);
    size_t tper = (size_t)egc_shape_numel(&ts);
    int stage = stage_for(s, s->xhost);
    for (int r0 = 0; r0 < n; r0 += s->chunk) {
        int nb = EGC_MIN(s->chunk, n - r0);
        s->fwd_row0 = -1; /* the plan's rows are in flux until this pass is done */
        EGC_TRY(forward_pass(s, s->xhost + (size_t)r0 * per, nb, NULL, stage));
        s->fwd_row0 = r0;
        s->held = nb;
        EGC_TRY(backward_pass(s, seed + (size_t)r0 * nc, nb, grad ? grad + (size_t)r0 * tper : NULL,
                              act ? act + (size_t)r0 * tper : NULL));
    }
    return EGC_OK;
}

/* ---- library-internal accessors (model/session.h) ---- */

egc_backend *egc_session_backend(const egc_session *s) { return s->be; }
egc_plan *egc_session_plan(const egc_session *s) { return s->plan; }
const egc_graph *egc_session_graph(const egc_session *s) { return s->g; }
int egc_session_target_value(const egc_session *s) { return s->target_value; }

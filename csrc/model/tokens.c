/* tokens.c: a transformer's token layer [N, p + gh*gw, C], or a channels-last layer
 * [N, gh, gw, C], read as a CAM layer [N, C, gh, gw].
 *
 * egc_graph_token_view copies a graph (the copy borrows the original's names and constant
 * data) and reads value x through a view: right after x's producer it adds
 *   patches = Slice(x, axis 1, [p, T))            [N, gh*gw, C]
 *   grid    = Reshape(patches, [0, gh, gw, C])    [N, gh, gw, C]
 *   view    = Transpose(grid, (0, 3, 1, 2))       [N, C, gh, gw]   <- the CAM layer
 *   back    = Transpose(view, (0, 2, 3, 1))       [N, gh, gw, C]
 *   flat    = Reshape(back, [0, gh*gw, C])        [N, gh*gw, C]
 *   x'      = Concat(Slice(x, axis 1, [0, p)), flat, axis 1)   (flat itself when p = 0)
 * and every node after it reads x' where it read x. x' equals x, so the outputs do not
 * change; the gradient reaching `view` is the gradient at x's patch tokens, laid out as an
 * image (pytorch-grad-cam's reshape_transform for vision transformers). A channels-last x
 * (Swin's stages, ConvNeXt's LayerNorms) needs only the two Transposes:
 *   view = Transpose(x, (0, 3, 1, 2)),  x' = Transpose(view, (0, 2, 3, 1)). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/tokens.h"

#define TV_NEW_NODES 7

/* Appends a value named base + suffix of shape s (an activation made by node `producer`). */
static egc_status tv_value(egc_graph *o, const char *base, const char *suffix, const egc_shape *s,
                           int producer, int *id)
{
    egc_value *v = &o->values[o->n_values];
    EGC_TRY(egc_value_make(v, base, suffix, s));
    v->producer = producer;
    *id = o->n_values++;
    return EGC_OK;
}

/* Appends node r (op and params set; inputs given) as node index `at` of o, output value named
 * after x plus suffix, of shape s. */
static egc_status tv_node(egc_graph *o, egc_node *r, int at, const char *xname,
                          const char *suffix, const egc_shape *s, int *out)
{
    EGC_TRY(tv_value(o, xname, suffix, s, at, out));
    size_t len = strlen(xname) + strlen(suffix) + 1;
    EGC_TRY(egc_malloc((void **)&r->name, len, 1, "token view node name"));
    snprintf(r->name, len, "%s%s", xname, suffix);
    r->out = *out;
    o->nodes[at] = *r;
    o->n_nodes++;
    return EGC_OK;
}

static void tv_init(egc_node *r, egc_op op, int in0)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < EGC_NODE_MAX_IN; i++) r->in[i] = -1;
    r->op = op;
    r->n_in = 1;
    r->in[0] = in0;
}

static void tv_slice(egc_node *r, int x, int64_t start, int64_t end)
{
    tv_init(r, EGC_OP_SLICE, x);
    r->p.slice.n = 1;
    r->p.slice.axes[0] = 1;
    r->p.slice.starts[0] = start;
    r->p.slice.ends[0] = end;
    r->p.slice.steps[0] = 1;
}

egc_status egc_graph_token_view(const egc_graph *g, int x, int prefix, int gh, int gw,
                                egc_graph *o, int *view)
{
    memset(o, 0, sizeof *o);
    *view = -1;
    const egc_value *xv = &g->values[x];
    const egc_shape *xs = &xv->shape;
    const int px = xv->producer;
    const int64_t grid = (int64_t)gh * gw;
    const int nhwc = xs->ndim == 4; /* channels last: no tokens to slice or regroup */
    if (nhwc && (xv->is_const || px < 0 || prefix != 0 || gh < 1 || gw < 1 || xs->d[1] != gh || xs->d[2] != gw ||
                 xs->d[3] < 1))
        return EGC_FAIL(EGC_E_ARG, "value '%s' is not a channels-last layer [N,%d,%d,C]",
                        xv->name, gh, gw);
    if (!nhwc && (xv->is_const || px < 0 || xs->ndim != 3 || prefix < 0 || gh < 1 || gw < 1 ||
                  xs->d[1] != prefix + grid || xs->d[2] < 1))
        return EGC_FAIL(EGC_E_ARG, "value '%s' is not a token layer of %d + %dx%d tokens",
                        xv->name, prefix, gh, gw);
    *o = *g; /* input, output, declared batch, opset */
    o->values = NULL;
    o->nodes = NULL;
    egc_status st;
    EGC_TRYG(st, egc_malloc((void **)&o->values, (size_t)g->n_values + TV_NEW_NODES + 1,
                            sizeof *o->values, "token view values"), fail);
    EGC_TRYG(st, egc_malloc((void **)&o->nodes, (size_t)g->n_nodes + TV_NEW_NODES + 1,
                            sizeof *o->nodes, "token view nodes"), fail);
    memcpy(o->values, g->values, (size_t)g->n_values * sizeof *o->values);
    o->n_values = g->n_values;
    const int k = nhwc ? 2 : prefix > 0 ? TV_NEW_NODES : TV_NEW_NODES - 2; /* nodes added */
    for (int v = 0; v < o->n_values; v++)
        if (o->values[v].producer > px) o->values[v].producer += k;
    memcpy(o->nodes, g->nodes, (size_t)(px + 1) * sizeof *o->nodes);
    o->n_nodes = px + 1;

    const int64_t n0 = xs->d[0], C = xs->d[xs->ndim - 1];
    const int64_t d_tok[3] = {n0, grid, C}, d_grid[4] = {n0, gh, gw, C},
                  d_view[4] = {n0, C, gh, gw}, d_pre[3] = {n0, prefix, C};
    const egc_shape s_tok = egc_shape_make(3, d_tok), s_grid = egc_shape_make(4, d_grid),
                    s_view = egc_shape_make(4, d_view), s_pre = egc_shape_make(3, d_pre);
    int at = px + 1, patches, grid_v = x, back, flat, pre = -1, xr = -1;
    egc_node r;
    if (!nhwc) { /* the patch tokens as a grid [N, gh, gw, C] */
        tv_slice(&r, x, prefix, prefix + grid);
        EGC_TRYG(st, tv_node(o, &r, at++, xv->name, "/cam_patches", &s_tok, &patches), fail);
        tv_init(&r, EGC_OP_RESHAPE, patches);
        r.p.reshape.flatten_axis = -1;
        r.p.reshape.n = 4;
        r.p.reshape.dims[0] = 0, r.p.reshape.dims[1] = gh, r.p.reshape.dims[2] = gw;
        r.p.reshape.dims[3] = C;
        EGC_TRYG(st, tv_node(o, &r, at++, xv->name, "/cam_grid", &s_grid, &grid_v), fail);
    }
    tv_init(&r, EGC_OP_TRANSPOSE, grid_v);
    r.p.transpose.n = 4;
    r.p.transpose.perm[0] = 0, r.p.transpose.perm[1] = 3, r.p.transpose.perm[2] = 1;
    r.p.transpose.perm[3] = 2;
    EGC_TRYG(st, tv_node(o, &r, at++, xv->name, "/cam_view", &s_view, view), fail);
    tv_init(&r, EGC_OP_TRANSPOSE, *view);
    r.p.transpose.n = 4;
    r.p.transpose.perm[0] = 0, r.p.transpose.perm[1] = 2, r.p.transpose.perm[2] = 3;
    r.p.transpose.perm[3] = 1;
    EGC_TRYG(st, tv_node(o, &r, at++, xv->name, "/cam_back", &s_grid, &back), fail);
    xr = back;
    if (!nhwc) { /* back to tokens, and the prefix tokens in front again */
        tv_init(&r, EGC_OP_RESHAPE, back);
        r.p.reshape.flatten_axis = -1;
        r.p.reshape.n = 3;
        r.p.reshape.dims[0] = 0, r.p.reshape.dims[1] = grid, r.p.reshape.dims[2] = C;
        EGC_TRYG(st, tv_node(o, &r, at++, xv->name, "/cam_tokens", &s_tok, &flat), fail);
        xr = flat;
    }
    if (!nhwc && prefix > 0) {
        tv_slice(&r, x, 0, prefix);
        EGC_TRYG(st, tv_node(o, &r, at++, xv->name, "/cam_prefix", &s_pre, &pre), fail);
        tv_init(&r, EGC_OP_CONCAT, pre);
        r.n_in = 2;
        r.in[1] = flat;
        r.p.axis.axis = 1;
        EGC_TRYG(st, tv_node(o, &r, at++, xv->name, "/cam_rejoined", xs, &xr), fail);
    }
    for (int i = px + 1; i < g->n_nodes; i++) {
        egc_node *d = &o->nodes[o->n_nodes++];
        *d = g->nodes[i];
        for (int j = 0; j < d->n_in; j++)
            if (d->in[j] == x) d->in[j] = xr;
    }
    if (o->output == x) o->output = xr;
    return EGC_OK;
fail:
    egc_graph_token_view_free(o, g);
    *view = -1;
    return st;
}

void egc_graph_token_view_free(egc_graph *o, const egc_graph *base)
{
    if (!o) return;
    if (o->values)
        for (int v = base->n_values; v < o->n_values; v++) free(o->values[v].name);
    if (o->nodes)
        for (int i = 0; i < o->n_nodes; i++) {
            /* the added nodes own their names: those not found among the base's nodes */
            if (o->nodes[i].out >= base->n_values) free(o->nodes[i].name);
        }
    free(o->values);
    free(o->nodes);
    memset(o, 0, sizeof *o);
}

/* evaluator.c: the evaluator shared by the metrics that run the model: one forward-only
 * session of B rows, one reusable host buffer of B perturbed inputs, and the row stream
 * that fills it (in parallel), forwards it and hands each row's logits back; and the
 * backend-made rows (egc_eval_select, egc_eval_gauss): images, maps, ranks and image ids
 * of a group held in backend memory, the rows written by the backend straight into the
 * model's input. Also the stable pixel ranking and the class helpers. Contracts in
 * metrics_internal.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/core.h"
#include "metrics/metrics_internal.h"
#include "model/exec.h"
#include "model/session.h"

egc_status egc_evaluator_create(const egc_model *m, const char *device, int batch,
                                egc_evaluator **out)
{
    return egc_evaluator_create_ex(m, device, batch, 0, out);
}

egc_status egc_evaluator_create_ex(const egc_model *m, const char *device, int batch,
                                   size_t max_device_bytes, egc_evaluator **out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "evaluator: no output handle given");
    *out = NULL;
    if (!m) return EGC_FAIL(EGC_E_ARG, "evaluator: no model given");
    if (batch < 1 || batch > (1 << 16))
        return EGC_FAIL(EGC_E_ARG, "evaluator: batch %d is out of range 1..65536", batch);
    egc_evaluator *ev = NULL;
    EGC_TRY(egc_calloc((void **)&ev, 1, sizeof *ev, "evaluator"));
    egc_status st;
    egc_model_input_chw(m, &ev->C, &ev->H, &ev->W);
    ev->classes = egc_model_num_classes(m);
    ev->hw = ev->H * ev->W;
    ev->chw = (size_t)ev->C * (size_t)ev->hw;
    ev->B = batch;
    if (ev->C != 3 && ev->C != 1) {
        st = EGC_FAIL(EGC_E_UNSUPPORTED, "evaluator: the model takes %d channels (metrics need "
                      "RGB or gray inputs)", ev->C);
        goto fail;
    }
    egc_session_options so;
    egc_session_options_default(&so);
    so.max_device_bytes = max_device_bytes;
    /* per row of a group: the two images, the map and the ranks (and about two 64-bit sort
     * keys per pixel of rank scratch), the image id and dot product of a Gaussian row and
     * its partial sums (the CUDA kernel keeps one double per 4096 values; counted here as
     * one per 1024); once: the patch keys and the sort's own scratch */
    so.extra_row_bytes = (2 * ev->chw + (size_t)ev->hw) * sizeof(float) +
                         (size_t)ev->hw * (sizeof(int32_t) + 2 * sizeof(uint64_t)) +
                         sizeof(uint64_t) + sizeof(double) +
                         (ev->chw / 1024 + 1) * sizeof(double);
    so.extra_fixed_bytes = (size_t)ev->hw * sizeof(int32_t) + ((size_t)1 << 20);
    EGC_TRYG(st, egc_session_create_ex(m, device, batch, -1, &so, &ev->s), fail);
    ev->be = egc_session_backend(ev->s);
    ev->G = egc_session_chunk(ev->s);
    if (!ev->be->m_rank || !ev->be->m_rank_scratch || !ev->be->m_select_rows ||
        !ev->be->m_gauss_scratch || !ev->be->m_gauss_rows) {
        st = EGC_FAIL(EGC_E_UNSUPPORTED, "evaluator: the %s backend has no metric entries",
                      ev->be->name);
        goto fail;
    }
    {
        size_t G = (size_t)ev->G, hw = (size_t)ev->hw;
        EGC_TRYG(st, ev->be->alloc(ev->be, G * ev->chw * sizeof(float), (void **)&ev->da), fail);
        EGC_TRYG(st, ev->be->alloc(ev->be, G * ev->chw * sizeof(float), (void **)&ev->db), fail);
        EGC_TRYG(st, ev->be->alloc(ev->be, G * hw * sizeof(float), (void **)&ev->dmaps), fail);
        EGC_TRYG(st, ev->be->alloc(ev->be, G * hw * sizeof(int32_t), (void **)&ev->dkey), fail);
        EGC_TRYG(st, ev->be->alloc(ev->be, hw * sizeof(int32_t), (void **)&ev->dpkey), fail);
        size_t rs = ev->be->m_rank_scratch(ev->be, ev->G, ev->hw);
        if (rs) EGC_TRYG(st, ev->be->alloc(ev->be, rs, &ev->rscratch), fail);
        EGC_TRYG(st, ev->be->alloc(ev->be, G * sizeof(uint64_t), (void **)&ev->dids), fail);
        EGC_TRYG(st, ev->be->alloc(ev->be, G * sizeof(double), (void **)&ev->daux), fail);
        size_t gs = ev->be->m_gauss_scratch(ev->be, ev->G, (int64_t)ev->chw);
        if (gs) EGC_TRYG(st, ev->be->alloc(ev->be, gs, &ev->gscratch), fail);
    }
    EGC_TRYG(st, egc_malloc((void **)&ev->xin, (size_t)batch * ev->chw, sizeof(float),
                            "evaluator input buffer"), fail);
    EGC_TRYG(st, egc_malloc((void **)&ev->logits, (size_t)batch * (size_t)ev->classes,
                            sizeof(float), "evaluator logits"), fail);
    EGC_TRYG(st, egc_calloc((void **)&ev->aux, (size_t)batch, sizeof(double), "evaluator aux"),
             fail);
    *out = ev;
    return EGC_OK;
fail:
    egc_evaluator_destroy(ev);
    return st;
}

void egc_evaluator_destroy(egc_evaluator *ev)
{
    if (!ev) return;
    if (ev->be) {
        void *bufs[] = {ev->da,       ev->db,   ev->dmaps, ev->dkey,    ev->dpkey,
                        ev->rscratch, ev->dids, ev->daux,  ev->gscratch};
        for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
            if (bufs[k]) ev->be->free(ev->be, bufs[k]);
    }
    egc_session_destroy(ev->s);
    free(ev->xin);
    free(ev->logits);
    free(ev->aux);
    free(ev);
}

int64_t egc_evaluator_rows(const egc_evaluator *ev) { return ev ? ev->rows : 0; }

typedef struct fill_ctx {
    egc_evaluator *ev;
    int64_t r0;
    egc_row_fill_fn fill;
    void *arg;
} fill_ctx;

static void fill_one(int64_t t, void *p)
{
    fill_ctx *c = p;
    c->fill(c->r0 + t, c->ev->xin + (size_t)t * c->ev->chw, c->arg);
}

egc_status egc_eval_stream(egc_evaluator *ev, int64_t rows, egc_row_fill_fn fill,
                           egc_row_take_fn take, void *arg)
{
    for (int64_t r0 = 0; r0 < rows; r0 += ev->B) {
        int nb = (int)EGC_MIN((int64_t)ev->B, rows - r0);
        fill_ctx c = {ev, r0, fill, arg};
        egc_parallel_for(nb, fill_one, &c);
        EGC_TRY(egc_session_forward(ev->s, ev->xin, nb, ev->logits));
        ev->rows += nb;
        for (int t = 0; t < nb; t++)
            take(r0 + t, ev->logits + (size_t)t * (size_t)ev->classes, 0.0, arg);
    }
    return EGC_OK;
}

/* Makes rows r0..r0+n-1 of a backend-made row stream into the model's input `in`; with
 * aux, also their numbers into ev->daux. */
typedef egc_status (*rows_make_fn)(egc_evaluator *ev, const void *spec, int64_t r0, int n,
                                   float *in);

/* Streams rows 0..rows-1 made by make() through the model in passes of the session's rows;
 * each row's logits (and, with aux, its number from ev->daux) go to take. */
static egc_status eval_backend_rows(egc_evaluator *ev, const void *spec, rows_make_fn make,
                                    int aux, int64_t rows, egc_row_take_fn take, void *arg)
{
    egc_backend *be = ev->be;
    egc_plan *plan = egc_session_plan(ev->s);
    const egc_graph *g = egc_session_graph(ev->s);
    float *in = egc_plan_value(plan, g->input).ptr;
    const float *out = egc_plan_value(plan, g->output).ptr;
    int P = egc_session_chunk(ev->s); /* == ev->G: daux and gscratch hold one pass */
    for (int64_t r0 = 0; r0 < rows; r0 += P) {
        int nb = (int)EGC_MIN((int64_t)P, rows - r0);
        EGC_TRY(make(ev, spec, r0, nb, in));
        EGC_TRY(egc_plan_use_rows(plan, nb));
        EGC_TRY(egc_plan_forward(plan));
        EGC_TRY(be->download(be, ev->logits, out,
                             (size_t)nb * (size_t)ev->classes * sizeof(float)));
        if (aux) EGC_TRY(be->download(be, ev->aux, ev->daux, (size_t)nb * sizeof(double)));
        ev->rows += nb;
        for (int t = 0; t < nb; t++)
            take(r0 + t, ev->logits + (size_t)t * (size_t)ev->classes, aux ? ev->aux[t] : 0.0,
                 arg);
    }
    return EGC_OK;
}

static egc_status make_select(egc_evaluator *ev, const void *spec, int64_t r0, int n, float *in)
{
    return ev->be->m_select_rows(ev->be, spec, r0, n, in);
}

static egc_status make_gauss(egc_evaluator *ev, const void *spec, int64_t r0, int n, float *in)
{
    return ev->be->m_gauss_rows(ev->be, spec, r0, n, ev->gscratch, in, ev->daux);
}

egc_status egc_eval_select(egc_evaluator *ev, const egc_select_spec *sp, int64_t rows,
                           egc_row_take_fn take, void *arg)
{
    return eval_backend_rows(ev, sp, make_select, 0, rows, take, arg);
}

egc_status egc_eval_gauss(egc_evaluator *ev, const egc_gauss_spec *sp, int64_t rows,
                          egc_row_take_fn take, void *arg)
{
    return eval_backend_rows(ev, sp, make_gauss, 1, rows, take, arg);
}

egc_status egc_evaluator_logits(egc_evaluator *ev, const float *x, int n, float *logits)
{
    if (!ev || !x || !logits || n < 1)
        return EGC_FAIL(EGC_E_ARG, "evaluator logits: %d images (need >= 1, with inputs and "
                        "outputs)", n);
    /* the images are contiguous: forwarded from x itself, B rows per call */
    for (int i0 = 0; i0 < n; i0 += ev->B) {
        int nb = EGC_MIN(ev->B, n - i0);
        EGC_TRY(egc_session_forward(ev->s, x + (size_t)i0 * ev->chw, nb,
                                    logits + (size_t)i0 * (size_t)ev->classes));
        ev->rows += nb;
    }
    return EGC_OK;
}

int egc_top1(const float *logits, int classes)
{
    int c = 0;
    for (int j = 1; j < classes; j++)
        if (logits[j] > logits[c]) c = j;
    return c;
}

double egc_softmax_prob(const float *logits, int classes, int c)
{
    double mx = logits[0];
    for (int j = 1; j < classes; j++)
        if (logits[j] > mx) mx = logits[j];
    double sum = 0;
    for (int j = 0; j < classes; j++) sum += exp((double)logits[j] - mx);
    return exp((double)logits[c] - mx) / sum;
}

typedef struct cls_ctx {
    const float *x;
    size_t chw;
    const int *idx; /* rows -> image index */
    int *cls;
    int classes;
} cls_ctx;

static void cls_fill(int64_t r, float *dst, void *arg)
{
    cls_ctx *c = arg;
    memcpy(dst, c->x + (size_t)c->idx[r] * c->chw, c->chw * sizeof(float));
}

static void cls_take(int64_t r, const float *logits, double aux, void *arg)
{
    (void)aux;
    cls_ctx *c = arg;
    c->cls[c->idx[r]] = egc_top1(logits, c->classes);
}

egc_status egc_eval_classes(egc_evaluator *ev, const float *x, int n, const int *classes,
                            int *cls)
{
    int need = 0;
    for (int i = 0; i < n; i++) {
        int k = classes ? classes[i] : -1;
        if (k >= ev->classes)
            return EGC_FAIL(EGC_E_ARG, "class %d of image %d is out of range (the model has %d "
                            "classes)", k, i, ev->classes);
        cls[i] = k;
        if (k < 0) need++;
    }
    if (!need) return EGC_OK;
    int *idx = NULL;
    EGC_TRY(egc_malloc((void **)&idx, (size_t)need, sizeof(int), "class rows"));
    for (int i = 0, t = 0; i < n; i++)
        if (cls[i] < 0) idx[t++] = i;
    cls_ctx c = {x, ev->chw, idx, cls, ev->classes};
    egc_status st = egc_eval_stream(ev, need, cls_fill, cls_take, &c);
    free(idx);
    EGC_TRY(st);
    return EGC_OK;
}

egc_status egc_eval_check(const egc_evaluator *ev, const float *x, const float *maps, int n,
                          const char *what)
{
    if (!ev || !x || !maps || n < 1)
        return EGC_FAIL(EGC_E_ARG, "%s: %d images (need >= 1, with an evaluator, inputs and "
                        "maps)", what, n);
    return EGC_OK;
}

typedef struct rank_item {
    float v;
    int i;
} rank_item;

static int cmp_rank(const void *a, const void *b)
{
    const rank_item *p = a, *q = b;
    if (p->v > q->v) return -1;
    if (p->v < q->v) return 1;
    return (p->i > q->i) - (p->i < q->i);
}

/* The pixels of map[n] sorted into it[n] by decreasing value, ties by ascending index; NaN
 * ranks last (it compares as the smallest value). Allocates it; the caller frees it. */
static egc_status sorted_pixels(const float *map, int n, rank_item **out)
{
    rank_item *it = NULL;
    EGC_TRY(egc_malloc((void **)&it, (size_t)(n > 0 ? n : 1), sizeof *it, "pixel ranking"));
    for (int i = 0; i < n; i++) {
        it[i].v = isnan(map[i]) ? -INFINITY : map[i];
        it[i].i = i;
    }
    qsort(it, (size_t)n, sizeof *it, cmp_rank);
    *out = it;
    return EGC_OK;
}

egc_status egc_rank_pixels(const float *map, int n, int *order)
{
    rank_item *it = NULL;
    EGC_TRY(sorted_pixels(map, n, &it));
    for (int i = 0; i < n; i++) order[i] = it[i].i;
    free(it);
    return EGC_OK;
}

egc_status egc_rank_keys(const float *map, int hw, int32_t *key)
{
    rank_item *it = NULL;
    EGC_TRY(sorted_pixels(map, hw, &it));
    for (int k = 0; k < hw; k++) key[it[k].i] = k;
    free(it);
    return EGC_OK;
}

/* fidelity.c: the fidelity metrics of METRICS.md: deletion and insertion curves with their
 * AUCs (RISE protocol), infidelity with the Quantus patch protocol and the Gaussian
 * variant with optimal scaling. Every perturbed input is a row scored in batched forwards,
 * made by the backend straight into the model's input from the images, maps and ranks it
 * holds, so on a GPU those rows never exist on the host: the curves and the patch protocol
 * by masked replacement (m_rank, m_select_rows; deletion and insertion of the same images
 * share one ranking and one upload), the Gaussian rows with their noise drawn where they
 * are made (m_gauss_rows). Contracts in include/egcam/metrics.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/core.h"
#include "core/philox.h"
#include "methods/methods.h"
#include "metrics/metrics_internal.h"

int egc_curve_steps(int hw, int step)
{
    if (step < 1 || hw < 1) return 0;
    return (int)(((int64_t)hw + step - 1) / step);
}

double egc_curve_auc(const float *s, int n)
{
    if (n < 1) return NAN;
    if (n == 1) return s[0];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += s[i];
    return (sum - 0.5 * s[0] - 0.5 * s[n - 1]) / (double)(n - 1);
}

/* ---- deletion / insertion ---- */

/* The rows of a group of g images: image i of the group, step t: row i * (T + 1) + t. */
typedef struct curve_ctx {
    const egc_evaluator *ev;
    const int *cls;       /* [n] */
    int i0, T;            /* the group's first image, steps */
    float *curve;         /* [n,T+1] */
} curve_ctx;

static void curve_take(int64_t r, const float *logits, double aux, void *arg)
{
    (void)aux;
    curve_ctx *c = arg;
    int i = c->i0 + (int)(r / (c->T + 1)), t = (int)(r % (c->T + 1));
    c->curve[(size_t)i * (size_t)(c->T + 1) + (size_t)t] =
        (float)egc_softmax_prob(logits, c->ev->classes, c->cls[i]);
}

typedef struct blur_ctx {
    const float *x;
    float *out, *tmp;
    int C, H, W;
} blur_ctx;

static void blur_one(int64_t i, void *arg)
{
    blur_ctx *b = arg;
    size_t hw = (size_t)b->H * (size_t)b->W, chw = (size_t)b->C * hw;
    egc_blur_gaussian11(b->x + (size_t)i * chw, b->C, b->H, b->W, b->tmp + (size_t)i * hw,
                        b->out + (size_t)i * chw);
}

/* One curve of a group: the rows of sp scored into curve [n,T+1] (rows of the group's
 * images from i0). */
static egc_status run_curve(egc_evaluator *ev, const egc_select_spec *sp, const int *cls, int i0,
                            int g, int T, float *curve)
{
    curve_ctx c = {ev, cls, i0, T, curve};
    return egc_eval_select(ev, sp, (int64_t)g * (T + 1), curve_take, &c);
}

/* auc[n] (and curves [n,T+1] when not NULL) from the scored points curve [n,T+1]. */
static void curve_results(const float *curve, int n, int T, float *auc, float *curves)
{
    for (int i = 0; i < n; i++) {
        auc[i] = (float)egc_curve_auc(curve + (size_t)i * (size_t)(T + 1), T + 1);
        if (curves)
            memcpy(curves + (size_t)i * (size_t)(T + 1), curve + (size_t)i * (size_t)(T + 1),
                   (size_t)(T + 1) * sizeof(float));
    }
}

egc_status egc_metric_curves(egc_evaluator *ev, const float *x, const float *maps, int n,
                             const int *classes, int step, float *auc_del, float *auc_ins,
                             float *curves_del, float *curves_ins)
{
    const char *what = auc_del ? (auc_ins ? "deletion+insertion" : "deletion")
                               : (auc_ins ? "insertion" : "deletion/insertion");
    EGC_TRY(egc_eval_check(ev, x, maps, n, what));
    if (!auc_del && !auc_ins) return EGC_FAIL(EGC_E_ARG, "%s: no output for the AUCs", what);
    if (step < 1) return EGC_FAIL(EGC_E_ARG, "%s: step %d must be >= 1", what, step);
    int T = egc_curve_steps(ev->hw, step), G = ev->G;
    size_t hw = (size_t)ev->hw, chw = ev->chw, pts = (size_t)n * (size_t)(T + 1);
    egc_status st = EGC_OK;
    int *cls = NULL;
    float *blur = NULL, *tmp = NULL, *cdel = NULL, *cins = NULL;
    egc_backend *be = ev->be;
    EGC_TRYG(st, egc_malloc((void **)&cls, (size_t)n, sizeof(int), "classes"), done);
    if (auc_del)
        EGC_TRYG(st, egc_malloc((void **)&cdel, pts, sizeof(float), "deletion curves"), done);
    if (auc_ins) {
        EGC_TRYG(st, egc_malloc((void **)&cins, pts, sizeof(float), "insertion curves"), done);
        EGC_TRYG(st, egc_malloc((void **)&blur, (size_t)G * chw, sizeof(float), "blurred images"),
                 done);
        EGC_TRYG(st, egc_malloc((void **)&tmp, (size_t)G * hw, sizeof(float), "blur scratch"),
                 done);
    }
    EGC_TRYG(st, egc_eval_classes(ev, x, n, classes, cls), done);
    /* Rows of the ranked pixels replaced by 0 (deletion: a = x, the substrate 0) or copied
     * from x into the blurred image (insertion: a = blur(x), b = x). */
    egc_select_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.key = ev->dkey;
    sp.key_stride = ev->hw;
    sp.C = ev->C;
    sp.hw = ev->hw;
    sp.rows_per = T + 1;
    sp.thr_step = step;
    sp.thr_max = ev->hw;
    /* Groups of G images: maps ranked once and images uploaded once (x in da, blur(x) in
     * db), then the deletion rows and the insertion rows from those buffers. */
    for (int i0 = 0; i0 < n; i0 += G) {
        int g = EGC_MIN(G, n - i0);
        EGC_TRYG(st, be->upload(be, ev->dmaps, maps + (size_t)i0 * hw,
                                (size_t)g * hw * sizeof(float)), done);
        EGC_TRYG(st, be->m_rank(be, ev->dmaps, g, ev->hw, ev->rscratch, ev->dkey), done);
        EGC_TRYG(st, be->upload(be, ev->da, x + (size_t)i0 * chw, (size_t)g * chw * sizeof(float)),
                 done);
        if (auc_del) {
            sp.a = ev->da;
            sp.b = NULL;
            EGC_TRYG(st, run_curve(ev, &sp, cls, i0, g, T, cdel), done);
        }
        if (auc_ins) {
            blur_ctx bc = {x + (size_t)i0 * chw, blur, tmp, ev->C, ev->H, ev->W};
            egc_parallel_for(g, blur_one, &bc);
            EGC_TRYG(st, be->upload(be, ev->db, blur, (size_t)g * chw * sizeof(float)), done);
            sp.a = ev->db;
            sp.b = ev->da;
            EGC_TRYG(st, run_curve(ev, &sp, cls, i0, g, T, cins), done);
        }
    }
    if (auc_del) curve_results(cdel, n, T, auc_del, curves_del);
    if (auc_ins) curve_results(cins, n, T, auc_ins, curves_ins);
done:
    free(cls);
    free(blur);
    free(tmp);
    free(cdel);
    free(cins);
    return st;
}

egc_status egc_metric_curve(egc_evaluator *ev, egc_curve_kind kind, const float *x,
                            const float *maps, int n, const int *classes, int step, float *auc,
                            float *curves)
{
    if (kind != EGC_CURVE_DELETION && kind != EGC_CURVE_INSERTION)
        return EGC_FAIL(EGC_E_ARG, "deletion/insertion: unknown curve kind %d", (int)kind);
    if (!auc) {
        EGC_TRY(egc_eval_check(ev, x, maps, n, kind == EGC_CURVE_DELETION ? "deletion"
                                                                          : "insertion"));
        return EGC_FAIL(EGC_E_ARG, "deletion/insertion: no output for the AUCs");
    }
    int del = kind == EGC_CURVE_DELETION;
    return egc_metric_curves(ev, x, maps, n, classes, step, del ? auc : NULL, del ? NULL : auc,
                             del ? curves : NULL, del ? NULL : curves);
}

/* ---- infidelity ---- */

void egc_infidelity_options_default(egc_preset p, egc_infidelity_options *o)
{
    memset(o, 0, sizeof *o);
    o->patch = 4;
    o->samples = 32;
    o->sigma = 0.1f;
    o->seed = 0;
    uint8_t black[3] = {0, 0, 0};
    egc_image img = {1, 1, black};
    egc_preset_normalize(&img, p, o->black);
}

int egc_infidelity_patches(int H, int W, int patch)
{
    if (patch < 1) return 0;
    return ((H + patch - 1) / patch) * ((W + patch - 1) / patch);
}

/* The patch protocol's rows of a group: image i0 + i, step p (patches 0..p-1 replaced):
 * row i * (P + 1) + p; sp [g,P+1] the s_p of the group's images. */
typedef struct patch_ctx {
    const int *cls;
    int i0, P;
    const double *sp;   /* [g,P+1] */
    double *f0, *acc;   /* [n] */
} patch_ctx;

static void patch_take(int64_t r, const float *logits, double aux, void *arg)
{
    (void)aux;
    patch_ctx *c = arg;
    int i = (int)(r / (c->P + 1)), p = (int)(r % (c->P + 1)), gi = c->i0 + i;
    double f = logits[c->cls[gi]];
    if (p == 0) {
        c->f0[gi] = f;
        return;
    }
    double e = (c->f0[gi] - f) - c->sp[(size_t)i * (size_t)(c->P + 1) + (size_t)p];
    c->acc[gi] += e * e;
}

egc_status egc_metric_infidelity(egc_evaluator *ev, const float *x, const float *maps, int n,
                                 const int *classes, const egc_infidelity_options *o, float *out)
{
    EGC_TRY(egc_eval_check(ev, x, maps, n, "infidelity"));
    if (!o || !out) return EGC_FAIL(EGC_E_ARG, "infidelity: no options or output given");
    if (o->patch < 1 || o->patch > EGC_MAX(ev->H, ev->W))
        return EGC_FAIL(EGC_E_ARG, "infidelity: patch size %d must be in 1..%d", o->patch,
                        EGC_MAX(ev->H, ev->W));
    if (ev->C > 4) return EGC_FAIL(EGC_E_UNSUPPORTED, "infidelity: %d channels (at most 4)", ev->C);
    int P = egc_infidelity_patches(ev->H, ev->W, o->patch), PW = (ev->W + o->patch - 1) / o->patch;
    size_t hw = (size_t)ev->hw;
    egc_backend *be = ev->be;
    egc_status st = EGC_OK;
    int *cls = NULL;
    int32_t *pkey = NULL;
    double *f0 = NULL, *acc = NULL, *sp = NULL;
    EGC_TRYG(st, egc_malloc((void **)&cls, (size_t)n, sizeof(int), "classes"), done);
    EGC_TRYG(st, egc_calloc((void **)&f0, (size_t)n, sizeof(double), "clean scores"), done);
    EGC_TRYG(st, egc_calloc((void **)&acc, (size_t)n, sizeof(double), "infidelity sums"), done);
    EGC_TRYG(st, egc_malloc((void **)&pkey, hw, sizeof(int32_t), "patch keys"), done);
    EGC_TRYG(st, egc_malloc((void **)&sp, (size_t)ev->G * (size_t)(P + 1), sizeof(double),
                            "patch sums"), done);
    EGC_TRYG(st, egc_eval_classes(ev, x, n, classes, cls), done);
    /* The patch of each pixel in raster order of the patches: rows with step p replace the
     * pixels whose patch index is < p (the black baseline in every channel). */
    for (int y = 0; y < ev->H; y++)
        for (int xx = 0; xx < ev->W; xx++)
            pkey[(size_t)y * (size_t)ev->W + (size_t)xx] = (y / o->patch) * PW + xx / o->patch;
    EGC_TRYG(st, be->upload(be, ev->dpkey, pkey, hw * sizeof(int32_t)), done);
    egc_select_spec ss;
    memset(&ss, 0, sizeof ss);
    ss.a = ev->da;
    ss.key = ev->dpkey;
    ss.key_stride = 0;
    ss.C = ev->C;
    ss.hw = ev->hw;
    ss.rows_per = P + 1;
    ss.thr_step = 1;
    ss.thr_max = P;
    for (int c = 0; c < ev->C; c++) ss.bconst[c] = o->black[c];
    for (int i0 = 0; i0 < n; i0 += ev->G) {
        int g = EGC_MIN(ev->G, n - i0);
        /* s_p = sum over the pixels of patches < p of phi * sum_c (x_c - black_c) */
        for (int i = 0; i < g; i++) {
            const float *xi = x + (size_t)(i0 + i) * ev->chw, *phi = maps + (size_t)(i0 + i) * hw;
            double *si = sp + (size_t)i * (size_t)(P + 1);
            memset(si, 0, (size_t)(P + 1) * sizeof(double));
            for (size_t j = 0; j < hw; j++) {
                double d = 0;
                for (int c = 0; c < ev->C; c++)
                    d += (double)xi[(size_t)c * hw + j] - (double)o->black[c];
                si[pkey[j] + 1] += (double)phi[j] * d;
            }
            for (int p = 1; p <= P; p++) si[p] += si[p - 1];
        }
        EGC_TRYG(st, be->upload(be, ev->da, x + (size_t)i0 * ev->chw,
                                (size_t)g * ev->chw * sizeof(float)), done);
        patch_ctx c = {cls, i0, P, sp, f0, acc};
        EGC_TRYG(st, egc_eval_select(ev, &ss, (int64_t)g * (P + 1), patch_take, &c), done);
    }
    for (int i = 0; i < n; i++) out[i] = (float)(acc[i] / P);
done:
    free(cls);
    free(f0);
    free(acc);
    free(pkey);
    free(sp);
    return st;
}

/* The Gaussian rows of a group of images from i0: image i0 + i, sample s (s = 0: the clean
 * image): row i * (S + 1) + s. */
typedef struct gauss_ctx {
    const int *cls;     /* [n] */
    int i0, S;
    double *f0;         /* [n] f_c(x) */
    double *sp;         /* [n,S] s per sample */
    double *dfp;        /* [n,S] df per sample */
} gauss_ctx;

static void gauss_take(int64_t r, const float *logits, double aux, void *arg)
{
    gauss_ctx *c = arg;
    int i = c->i0 + (int)(r / (c->S + 1)), s = (int)(r % (c->S + 1));
    double f = logits[c->cls[i]];
    if (s == 0) {
        c->f0[i] = f;
        return;
    }
    size_t k = (size_t)i * (size_t)c->S + (size_t)(s - 1);
    c->sp[k] = aux;
    c->dfp[k] = c->f0[i] - f;
}

egc_status egc_metric_infidelity_gaussian(egc_evaluator *ev, const float *x, const float *maps,
                                          int n, const int *classes,
                                          const egc_infidelity_options *o, float *out,
                                          float *beta)
{
    EGC_TRY(egc_eval_check(ev, x, maps, n, "infidelity-gaussian"));
    if (!o || !out) return EGC_FAIL(EGC_E_ARG, "infidelity-gaussian: no options or output given");
    if (o->samples < 1 || !(o->sigma > 0) || !isfinite(o->sigma))
        return EGC_FAIL(EGC_E_ARG, "infidelity-gaussian: needs samples >= 1 (got %d) and sigma "
                        "> 0 (got %g)", o->samples, (double)o->sigma);
    int S = o->samples;
    egc_status st = EGC_OK;
    int *cls = NULL;
    double *f0 = NULL, *sp = NULL, *dfp = NULL;
    uint64_t *ids = NULL;
    EGC_TRYG(st, egc_malloc((void **)&cls, (size_t)n, sizeof(int), "classes"), done);
    EGC_TRYG(st, egc_calloc((void **)&f0, (size_t)n, sizeof(double), "clean scores"), done);
    EGC_TRYG(st, egc_malloc((void **)&ids, (size_t)n, sizeof(uint64_t), "image ids"), done);
    EGC_TRYG(st, egc_malloc((void **)&sp, (size_t)n * (size_t)S, sizeof(double), "sums"), done);
    EGC_TRYG(st, egc_malloc((void **)&dfp, (size_t)n * (size_t)S, sizeof(double), "deltas"), done);
    EGC_TRYG(st, egc_eval_classes(ev, x, n, classes, cls), done);
    for (int i = 0; i < n; i++) ids[i] = egc_image_id(x + (size_t)i * ev->chw, ev->chw);
    /* Groups of G images held by the backend (images, maps, image ids), which makes the rows
     * x - sigma * normal and their dot products s (m_gauss_rows). */
    egc_gauss_spec gs;
    memset(&gs, 0, sizeof gs);
    gs.x = ev->da;
    gs.phi = ev->dmaps;
    gs.ids = ev->dids;
    gs.sample0 = NULL;
    gs.seed = o->seed ^ EGC_METRIC_KEY_GAUSS;
    gs.sigma = o->sigma;
    gs.C = ev->C;
    gs.hw = ev->hw;
    gs.rows_per = S + 1;
    for (int i0 = 0; i0 < n; i0 += ev->G) {
        int g = EGC_MIN(ev->G, n - i0);
        size_t hw = (size_t)ev->hw;
        EGC_TRYG(st, ev->be->upload(ev->be, ev->da, x + (size_t)i0 * ev->chw,
                                    (size_t)g * ev->chw * sizeof(float)), done);
        EGC_TRYG(st, ev->be->upload(ev->be, ev->dmaps, maps + (size_t)i0 * hw,
                                    (size_t)g * hw * sizeof(float)), done);
        EGC_TRYG(st, ev->be->upload(ev->be, ev->dids, ids + i0, (size_t)g * sizeof(uint64_t)),
                 done);
        gauss_ctx c = {cls, i0, S, f0, sp, dfp};
        EGC_TRYG(st, egc_eval_gauss(ev, &gs, (int64_t)g * (S + 1), gauss_take, &c), done);
    }
    for (int i = 0; i < n; i++) {
        const double *s = sp + (size_t)i * (size_t)S, *d = dfp + (size_t)i * (size_t)S;
        double sd = 0, ss = 0;
        for (int k = 0; k < S; k++) {
            sd += s[k] * d[k];
            ss += s[k] * s[k];
        }
        double b = ss > 0 ? sd / ss : 0.0, e = 0;
        for (int k = 0; k < S; k++) {
            double t = b * s[k] - d[k];
            e += t * t;
        }
        out[i] = (float)(e / S);
        if (beta) beta[i] = (float)b;
    }
done:
    free(cls);
    free(f0);
    free(ids);
    free(sp);
    free(dfp);
    return st;
}

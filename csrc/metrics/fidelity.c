/* fidelity.c: the fidelity metrics of METRICS.md: deletion and insertion curves with their
 * AUCs (RISE protocol), infidelity with the Quantus patch protocol and the Gaussian
 * variant with optimal scaling. Every perturbed input is a row of the evaluator's stream:
 * rows of all images and steps are generated into the reusable buffer and scored in
 * batched forwards. Contracts in include/egcam/metrics.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

typedef struct curve_ctx {
    const egc_evaluator *ev;
    egc_curve_kind kind;
    const float *x;       /* [n,chw] */
    const float *start;   /* [n,chw]: x (deletion) or blur(x) (insertion) */
    const int *order;     /* [n,hw] */
    const int *cls;       /* [n] */
    int step, T;          /* pixels per step, steps */
    float *curve;         /* [n,T+1] */
} curve_ctx;

static void curve_fill(int64_t r, float *dst, double *aux, void *arg)
{
    (void)aux;
    curve_ctx *c = arg;
    const egc_evaluator *ev = c->ev;
    int i = (int)(r / (c->T + 1)), t = (int)(r % (c->T + 1));
    const float *x = c->x + (size_t)i * ev->chw;
    memcpy(dst, c->start + (size_t)i * ev->chw, ev->chw * sizeof(float));
    int64_t k = EGC_MIN((int64_t)t * c->step, (int64_t)ev->hw);
    const int *ord = c->order + (size_t)i * (size_t)ev->hw;
    for (int ch = 0; ch < ev->C; ch++) {
        float *d = dst + (size_t)ch * (size_t)ev->hw;
        const float *s = x + (size_t)ch * (size_t)ev->hw;
        if (c->kind == EGC_CURVE_DELETION)
            for (int64_t j = 0; j < k; j++) d[ord[j]] = 0.0f;
        else
            for (int64_t j = 0; j < k; j++) d[ord[j]] = s[ord[j]];
    }
}

static void curve_take(int64_t r, const float *logits, double aux, void *arg)
{
    (void)aux;
    curve_ctx *c = arg;
    int i = (int)(r / (c->T + 1));
    c->curve[r] = (float)egc_softmax_prob(logits, c->ev->classes, c->cls[i]);
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

egc_status egc_metric_curve(egc_evaluator *ev, egc_curve_kind kind, const float *x,
                            const float *maps, int n, const int *classes, int step, float *auc,
                            float *curves)
{
    EGC_TRY(egc_eval_check(ev, x, maps, n, kind == EGC_CURVE_DELETION ? "deletion" : "insertion"));
    if (!auc) return EGC_FAIL(EGC_E_ARG, "deletion/insertion: no output for the AUCs");
    if (step < 1) return EGC_FAIL(EGC_E_ARG, "deletion/insertion: step %d must be >= 1", step);
    int T = egc_curve_steps(ev->hw, step);
    egc_status st = EGC_OK;
    int *cls = NULL, *order = NULL;
    float *blur = NULL, *tmp = NULL, *curve = NULL;
    EGC_TRYG(st, egc_malloc((void **)&cls, (size_t)n, sizeof(int), "classes"), done);
    EGC_TRYG(st, egc_malloc((void **)&order, (size_t)n * (size_t)ev->hw, sizeof(int),
                            "pixel order"), done);
    EGC_TRYG(st, egc_malloc((void **)&curve, (size_t)n * (size_t)(T + 1), sizeof(float),
                            "curves"), done);
    EGC_TRYG(st, egc_eval_classes(ev, x, n, classes, cls), done);
    for (int i = 0; i < n; i++)
        EGC_TRYG(st, egc_rank_pixels(maps + (size_t)i * (size_t)ev->hw, ev->hw,
                                     order + (size_t)i * (size_t)ev->hw), done);
    const float *start = x;
    if (kind == EGC_CURVE_INSERTION) {
        EGC_TRYG(st, egc_malloc((void **)&blur, (size_t)n * ev->chw, sizeof(float), "blurred "
                                "images"), done);
        EGC_TRYG(st, egc_malloc((void **)&tmp, (size_t)n * (size_t)ev->hw, sizeof(float),
                                "blur scratch"), done);
        blur_ctx b = {x, blur, tmp, ev->C, ev->H, ev->W};
        egc_parallel_for(n, blur_one, &b);
        start = blur;
    }
    curve_ctx c = {ev, kind, x, start, order, cls, step, T, curve};
    EGC_TRYG(st, egc_eval_stream(ev, (int64_t)n * (T + 1), curve_fill, curve_take, &c), done);
    for (int i = 0; i < n; i++) {
        auc[i] = (float)egc_curve_auc(curve + (size_t)i * (size_t)(T + 1), T + 1);
        if (curves)
            memcpy(curves + (size_t)i * (size_t)(T + 1), curve + (size_t)i * (size_t)(T + 1),
                   (size_t)(T + 1) * sizeof(float));
    }
done:
    free(cls);
    free(order);
    free(blur);
    free(tmp);
    free(curve);
    return st;
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

typedef struct infid_ctx {
    const egc_evaluator *ev;
    const float *x, *maps;
    const int *cls;
    const egc_infidelity_options *o;
    int P;              /* patches (patch protocol) or samples (Gaussian) */
    int PW;             /* patches per row */
    const uint64_t *ids;
    double *f0;         /* [n] f_c(x) */
    double *acc;        /* [n] sum of squared errors (patch); sum s*df (Gaussian) */
    double *acc2;       /* [n] Gaussian: sum s^2 */
    double *sp;         /* [n * P] Gaussian: s per sample; [n*P] patch: unused */
    double *dfp;        /* [n * P] Gaussian: df per sample */
} infid_ctx;

/* Rectangle of patch p: rows [y0,y1), columns [x0,x1). */
static void patch_rect(const infid_ctx *c, int p, int *y0, int *y1, int *x0, int *x1)
{
    int ps = c->o->patch, py = p / c->PW, px = p % c->PW;
    *y0 = py * ps;
    *y1 = EGC_MIN(*y0 + ps, c->ev->H);
    *x0 = px * ps;
    *x1 = EGC_MIN(*x0 + ps, c->ev->W);
}

static void patch_fill(int64_t r, float *dst, double *aux, void *arg)
{
    infid_ctx *c = arg;
    const egc_evaluator *ev = c->ev;
    int i = (int)(r / (c->P + 1)), p = (int)(r % (c->P + 1));
    const float *x = c->x + (size_t)i * ev->chw, *phi = c->maps + (size_t)i * (size_t)ev->hw;
    memcpy(dst, x, ev->chw * sizeof(float));
    double s = 0;
    for (int q = 0; q < p; q++) {
        int y0, y1, x0, x1;
        patch_rect(c, q, &y0, &y1, &x0, &x1);
        for (int ch = 0; ch < ev->C; ch++) {
            float *d = dst + (size_t)ch * (size_t)ev->hw;
            const float *xs = x + (size_t)ch * (size_t)ev->hw;
            float b = c->o->black[ch];
            for (int yy = y0; yy < y1; yy++)
                for (int xx = x0; xx < x1; xx++) {
                    size_t j = (size_t)yy * (size_t)ev->W + (size_t)xx;
                    d[j] = b;
                    s += (double)phi[j] * ((double)xs[j] - (double)b);
                }
        }
    }
    *aux = s;
}

static void patch_take(int64_t r, const float *logits, double aux, void *arg)
{
    infid_ctx *c = arg;
    int i = (int)(r / (c->P + 1)), p = (int)(r % (c->P + 1));
    double f = logits[c->cls[i]];
    if (p == 0) {
        c->f0[i] = f;
        return;
    }
    double e = (c->f0[i] - f) - aux;
    c->acc[i] += e * e;
}

egc_status egc_metric_infidelity(egc_evaluator *ev, const float *x, const float *maps, int n,
                                 const int *classes, const egc_infidelity_options *o, float *out)
{
    EGC_TRY(egc_eval_check(ev, x, maps, n, "infidelity"));
    if (!o || !out) return EGC_FAIL(EGC_E_ARG, "infidelity: no options or output given");
    if (o->patch < 1 || o->patch > EGC_MAX(ev->H, ev->W))
        return EGC_FAIL(EGC_E_ARG, "infidelity: patch size %d must be in 1..%d", o->patch,
                        EGC_MAX(ev->H, ev->W));
    int P = egc_infidelity_patches(ev->H, ev->W, o->patch);
    egc_status st = EGC_OK;
    int *cls = NULL;
    double *f0 = NULL, *acc = NULL;
    EGC_TRYG(st, egc_malloc((void **)&cls, (size_t)n, sizeof(int), "classes"), done);
    EGC_TRYG(st, egc_calloc((void **)&f0, (size_t)n, sizeof(double), "clean scores"), done);
    EGC_TRYG(st, egc_calloc((void **)&acc, (size_t)n, sizeof(double), "infidelity sums"), done);
    EGC_TRYG(st, egc_eval_classes(ev, x, n, classes, cls), done);
    infid_ctx c = {ev, x, maps, cls, o, P, (ev->W + o->patch - 1) / o->patch, NULL, f0, acc,
                   NULL, NULL, NULL};
    EGC_TRYG(st, egc_eval_stream(ev, (int64_t)n * (P + 1), patch_fill, patch_take, &c), done);
    for (int i = 0; i < n; i++) out[i] = (float)(acc[i] / P);
done:
    free(cls);
    free(f0);
    free(acc);
    return st;
}

static void gauss_fill(int64_t r, float *dst, double *aux, void *arg)
{
    infid_ctx *c = arg;
    const egc_evaluator *ev = c->ev;
    int i = (int)(r / (c->P + 1)), s = (int)(r % (c->P + 1));
    const float *x = c->x + (size_t)i * ev->chw, *phi = c->maps + (size_t)i * (size_t)ev->hw;
    if (s == 0) {
        memcpy(dst, x, ev->chw * sizeof(float));
        *aux = 0;
        return;
    }
    /* dst first holds the standard normals of sample s-1, then x - sigma * normal. */
    egc_sample_normals(c->o->seed ^ EGC_METRIC_KEY_GAUSS, c->ids[i], (uint32_t)(s - 1), ev->chw,
                       dst);
    double sum = 0;
    float sg = c->o->sigma;
    for (size_t j = 0; j < ev->chw; j++) {
        float I = sg * dst[j];
        sum += (double)phi[j % (size_t)ev->hw] * (double)I;
        dst[j] = x[j] - I;
    }
    *aux = sum;
}

static void gauss_take(int64_t r, const float *logits, double aux, void *arg)
{
    infid_ctx *c = arg;
    int i = (int)(r / (c->P + 1)), s = (int)(r % (c->P + 1));
    double f = logits[c->cls[i]];
    if (s == 0) {
        c->f0[i] = f;
        return;
    }
    size_t k = (size_t)i * (size_t)c->P + (size_t)(s - 1);
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
    infid_ctx c = {ev, x, maps, cls, o, S, 0, ids, f0, NULL, NULL, sp, dfp};
    EGC_TRYG(st, egc_eval_stream(ev, (int64_t)n * (S + 1), gauss_fill, gauss_take, &c), done);
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

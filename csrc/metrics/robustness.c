/* robustness.c: Max- and Avg-Sensitivity (METRICS.md): the explanation recomputed on
 * x + delta, delta ~ U(-r, r) per element drawn from the Philox stream (key
 * seed ^ EGC_METRIC_KEY_SENS, image id of x, sample index), the perturbed inputs of many
 * images and samples explained together in calls of the explainer's batch; samples whose
 * top-1 class changes are excluded and counted. Contracts in include/egcam/metrics.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/philox.h"
#include "metrics/metrics_internal.h"

void egc_sensitivity_options_default(egc_sensitivity_options *o)
{
    o->radius = 0.2f;
    o->samples = 200;
    o->seed = 0;
}

/* dst[n] = x + r * (2u - 1) with u from the words of (seed', id, sample). */
static void sens_noise(const float *x, size_t n, float r, uint64_t seed, uint64_t id,
                       uint32_t sample, float *dst)
{
    for (size_t j = 0; j < n; j += 4) {
        egc_philox4 w = egc_philox_block(seed ^ EGC_METRIC_KEY_SENS, id, sample,
                                         (uint32_t)(1 + j / 4));
        size_t m = n - j < 4 ? n - j : 4;
        for (size_t t = 0; t < m; t++) {
            float u = (float)(w.v[t] >> 8) * (1.0f / 16777216.0f);
            float d = r * (2.0f * u - 1.0f);
            dst[j + t] = x[j + t] + d;
        }
    }
}

typedef struct sens_ctx {
    const float *x;
    size_t chw;
    const uint64_t *ids;
    const egc_sensitivity_options *o;
    int64_t r0;
    float *buf;
} sens_ctx;

static void sens_fill(int64_t t, void *arg)
{
    sens_ctx *c = arg;
    int64_t r = c->r0 + t;
    int i = (int)(r / c->o->samples), s = (int)(r % c->o->samples);
    sens_noise(c->x + (size_t)i * c->chw, c->chw, c->o->radius, c->o->seed, c->ids[i],
               (uint32_t)s, c->buf + (size_t)t * c->chw);
}

egc_status egc_metric_sensitivity(egc_explainer *e, const float *x, const float *maps,
                                  const int *classes, int n, const egc_sensitivity_options *o,
                                  egc_sensitivity_result *out)
{
    if (!e || !x || !maps || !classes || !o || !out || n < 1)
        return EGC_FAIL(EGC_E_ARG, "sensitivity: %d images (need >= 1, with an explainer, "
                        "inputs, maps, classes, options and outputs)", n);
    if (o->samples < 1 || !(o->radius >= 0) || !isfinite(o->radius))
        return EGC_FAIL(EGC_E_ARG, "sensitivity: needs samples >= 1 (got %d) and a radius >= 0 "
                        "(got %g)", o->samples, (double)o->radius);
    int h, w, H, W;
    egc_explainer_geometry(e, &h, &w, &H, &W);
    size_t hw = (size_t)H * (size_t)W, chw = (size_t)egc_explainer_channels(e) * hw;
    int G = egc_explainer_options(e)->batch;
    if (G < 1) G = 1;
    if ((int64_t)G > (int64_t)n * o->samples) G = (int)((int64_t)n * o->samples);
    egc_status st = EGC_OK;
    float *buf = NULL, *pm = NULL;
    uint64_t *ids = NULL, *rid = NULL;
    uint32_t *rs0 = NULL;
    double *norm = NULL, *sum = NULL;
    egc_cam_result *res = NULL;
    EGC_TRYG(st, egc_malloc((void **)&buf, (size_t)G, chw * sizeof(float), "perturbed inputs"),
             done);
    EGC_TRYG(st, egc_malloc((void **)&pm, (size_t)G, hw * sizeof(float), "perturbed maps"), done);
    EGC_TRYG(st, egc_malloc((void **)&res, (size_t)G, sizeof *res, "results"), done);
    EGC_TRYG(st, egc_malloc((void **)&ids, (size_t)n, sizeof *ids, "image ids"), done);
    EGC_TRYG(st, egc_malloc((void **)&rid, (size_t)G, sizeof *rid, "row image ids"), done);
    EGC_TRYG(st, egc_malloc((void **)&rs0, (size_t)G, sizeof *rs0, "row sample offsets"), done);
    /* Perturbation k of image i is explained under x's image id with the sample ids
     * (k + 1) * S .. (k + 2) * S - 1: fresh samples of the same seeded stream (METRICS.md). */
    int64_t S = egc_explainer_samples(e) > 0 ? egc_explainer_samples(e) : 1;
    if ((int64_t)(o->samples + 1) * S > (int64_t)UINT32_MAX) {
        st = EGC_FAIL(EGC_E_ARG, "sensitivity: %d perturbations x %lld samples exceed the "
                      "32-bit sample ids", o->samples, (long long)S);
        goto done;
    }
    EGC_TRYG(st, egc_malloc((void **)&norm, (size_t)n, sizeof *norm, "norms"), done);
    EGC_TRYG(st, egc_calloc((void **)&sum, (size_t)n, sizeof *sum, "sums"), done);
    for (int i = 0; i < n; i++) {
        ids[i] = egc_image_id(x + (size_t)i * chw, chw);
        const float *m = maps + (size_t)i * hw;
        double s = 0;
        for (size_t j = 0; j < hw; j++) s += (double)m[j] * m[j];
        norm[i] = sqrt(s);
        out[i].max_sens = -1.0f;
        out[i].avg_sens = 0.0f;
        out[i].kept = out[i].excluded = 0;
    }
    int64_t rows = (int64_t)n * o->samples;
    for (int64_t r0 = 0; r0 < rows; r0 += G) {
        int nb = (int)EGC_MIN((int64_t)G, rows - r0);
        sens_ctx c = {x, chw, ids, o, r0, buf};
        egc_parallel_for(nb, sens_fill, &c);
        for (int t = 0; t < nb; t++) {
            res[t].raw = NULL;
            res[t].map = pm + (size_t)t * hw;
        }
        for (int t = 0; t < nb; t++) {
            int64_t r = r0 + t;
            rid[t] = ids[r / o->samples];
            rs0[t] = (uint32_t)((r % o->samples + 1) * S);
        }
        EGC_TRYG(st, egc_explainer_run_keyed(e, buf, nb, NULL, rid, rs0, res), done);
        for (int t = 0; t < nb; t++) {
            int i = (int)((r0 + t) / o->samples);
            if (res[t].cls != classes[i]) {
                out[i].excluded++;
                continue;
            }
            const float *m = maps + (size_t)i * hw, *q = pm + (size_t)t * hw;
            double d = 0;
            for (size_t j = 0; j < hw; j++) {
                double v = (double)m[j] - (double)q[j];
                d += v * v;
            }
            double sens = norm[i] > 0 ? sqrt(d) / norm[i] : NAN;
            out[i].kept++;
            sum[i] += sens;
            if (!(sens <= out[i].max_sens)) out[i].max_sens = (float)sens;
        }
    }
    for (int i = 0; i < n; i++) {
        if (!out[i].kept) {
            out[i].max_sens = out[i].avg_sens = NAN;
        } else {
            out[i].avg_sens = (float)(sum[i] / out[i].kept);
        }
    }
done:
    free(buf);
    free(pm);
    free(res);
    free(ids);
    free(rid);
    free(rs0);
    free(norm);
    free(sum);
    return st;
}

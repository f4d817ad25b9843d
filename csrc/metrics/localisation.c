/* localisation.c: the localisation metrics of METRICS.md: pointing game (optional
 * tolerance radius), energy-based pointing game, relevance rank accuracy, and the grid
 * pointing game (2x2 grids of four images), plus the rule that picks the class to explain
 * from the boxes of an image. Contracts in include/egcam/metrics.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "methods/methods.h"
#include "metrics/metrics_internal.h"

int egc_map_argmax(const float *map, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (map[i] > map[b] || (isnan(map[b]) && !isnan(map[i]))) b = i;
    return b;
}

egc_status egc_pointing_game(const float *map, const uint8_t *mask, int H, int W,
                             float tolerance, int *hit)
{
    if (!map || !mask || !hit || H < 1 || W < 1)
        return EGC_FAIL(EGC_E_ARG, "pointing game: missing map, mask or output (%dx%d)", W, H);
    int n = H * W, any = 0;
    for (int i = 0; i < n && !any; i++) any = mask[i] != 0;
    if (!any) return EGC_FAIL(EGC_E_ARG, "pointing game: the mask is empty");
    int a = egc_map_argmax(map, n);
    *hit = mask[a] != 0;
    if (*hit || !(tolerance > 0)) return EGC_OK;
    int ay = a / W, ax = a % W, r = (int)floorf(tolerance);
    double t2 = (double)tolerance * tolerance;
    for (int y = EGC_MAX(0, ay - r); y <= EGC_MIN(H - 1, ay + r) && !*hit; y++)
        for (int x = EGC_MAX(0, ax - r); x <= EGC_MIN(W - 1, ax + r); x++) {
            double dy = y - ay, dx = x - ax;
            if (dy * dy + dx * dx <= t2 && mask[(size_t)y * W + x]) {
                *hit = 1;
                break;
            }
        }
    return EGC_OK;
}

float egc_energy_pointing(const float *map, const uint8_t *mask, int n)
{
    double in = 0, all = 0;
    for (int i = 0; i < n; i++) {
        all += map[i];
        if (mask[i]) in += map[i];
    }
    return all != 0 ? (float)(in / all) : NAN;
}

egc_status egc_relevance_rank(const float *map, const uint8_t *mask, int n, float *out)
{
    if (!map || !mask || !out || n < 1)
        return EGC_FAIL(EGC_E_ARG, "relevance rank accuracy: missing map, mask or output");
    int K = 0;
    for (int i = 0; i < n; i++) K += mask[i] != 0;
    if (!K) return EGC_FAIL(EGC_E_ARG, "relevance rank accuracy: the mask is empty");
    int *order = NULL;
    EGC_TRY(egc_malloc((void **)&order, (size_t)n, sizeof(int), "pixel order"));
    egc_status st = egc_rank_pixels(map, n, order);
    if (st == EGC_OK) {
        int hit = 0;
        for (int k = 0; k < K; k++) hit += mask[order[k]] != 0;
        *out = (float)hit / (float)K;
    }
    free(order);
    EGC_TRY(st);
    return EGC_OK;
}

egc_status egc_grid_compose(const float *x4, int C, int H, int W, float *out)
{
    if (!x4 || !out || C < 1 || H < 2 || W < 2)
        return EGC_FAIL(EGC_E_ARG, "grid: needs four images of at least 2x2 (got %dx%d)", W, H);
    int h0 = H / 2, w0 = W / 2;
    size_t hw = (size_t)H * (size_t)W;
    float *tmp = NULL;
    EGC_TRY(egc_malloc((void **)&tmp, hw, sizeof(float), "grid quadrant"));
    for (int q = 0; q < 4; q++) {
        int qy = q / 2, qx = q % 2;
        int qh = qy ? H - h0 : h0, qw = qx ? W - w0 : w0;
        int oy = qy ? h0 : 0, ox = qx ? w0 : 0;
        for (int c = 0; c < C; c++) {
            egc_cam_upsample_bilinear(x4 + ((size_t)q * C + c) * hw, H, W, tmp, qh, qw);
            float *o = out + (size_t)c * hw;
            for (int y = 0; y < qh; y++)
                memcpy(o + (size_t)(oy + y) * W + ox, tmp + (size_t)y * qw,
                       (size_t)qw * sizeof(float));
        }
    }
    free(tmp);
    return EGC_OK;
}

float egc_grid_share(const float *map, int H, int W, int q)
{
    int h0 = H / 2, w0 = W / 2, qy = q / 2, qx = q % 2;
    double in = 0, all = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float v = map[(size_t)y * W + x];
            if (!(v > 0)) continue;
            all += v;
            if ((y >= h0) == (qy == 1) && (x >= w0) == (qx == 1)) in += v;
        }
    return all > 0 ? (float)(in / all) : NAN;
}

egc_status egc_localisation_target(const egc_class_map *cm, const egc_boxes *b,
                                   const float *logits, int classes, int *cls, uint8_t *keep)
{
    if (!cm || !b || !logits || !cls || (b->n && !keep) || classes < 1)
        return EGC_FAIL(EGC_E_ARG, "localisation target: missing class map, boxes or logits");
    *cls = -1;
    if (b->n) memset(keep, 0, (size_t)b->n);
    uint8_t *cand = NULL;
    EGC_TRY(egc_calloc((void **)&cand, (size_t)classes, 1, "candidate classes"));
    int any = 0;
    for (int k = 0; k < b->n; k++) {
        int e = egc_class_map_find(cm, b->v[k].cls, b->v[k].name);
        if (e < 0) continue;
        for (int j = 0; j < cm->nidx[e]; j++)
            if (cm->idx[e][j] >= 0 && cm->idx[e][j] < classes) {
                cand[cm->idx[e][j]] = 1;
                any = 1;
            }
    }
    if (any) {
        int top = egc_top1(logits, classes), best = -1;
        if (cand[top]) best = top;
        else
            for (int j = 0; j < classes; j++)
                if (cand[j] && (best < 0 || logits[j] > logits[best])) best = j;
        *cls = best;
        for (int k = 0; k < b->n; k++) {
            int e = egc_class_map_find(cm, b->v[k].cls, b->v[k].name);
            if (e < 0) continue;
            for (int j = 0; j < cm->nidx[e]; j++)
                if (cm->idx[e][j] == best) keep[k] = 1;
        }
    }
    free(cand);
    return EGC_OK;
}

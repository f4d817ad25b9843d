/* cmd_sweep.c: `egcam sweep`: evaluation sweeps. Explains every input with every method
 * (a method may carry its own options: expected-gradcam:combine=B:noise=0.1), scores the
 * maps with the metrics of METRICS.md through one evaluator session in batched forwards,
 * and writes rows (appended and flushed as computed, so an interrupted sweep loses
 * nothing; --resume skips what is there), curves, a summary (CSV, JSON) and a report
 * (markdown, HTML with inline SVG charts and an overlay gallery; report.c). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"
#include "egcam/explain.h"
#include "egcam/metrics.h"
#include "sweep.h"

static void help(FILE *f)
{
    fprintf(f,
        "usage: egcam sweep --model M.onnx --methods LIST --metrics LIST --out DIR [options]\n"
        "                   INPUTS...\n"
        "\n"
        "Explains every input with every method and scores the maps (definitions: METRICS.md).\n"
        "Writes DIR/rows.csv (image,method,metric,value,status,note: one row per image, method\n"
        "and metric, appended and flushed as computed), DIR/curves.csv (deletion/insertion\n"
        "curves), DIR/summary.csv and DIR/summary.json (mean, std, count per method and metric,\n"
        "and every option that shaped them), DIR/report.md and DIR/report.html (tables,\n"
        "curves, bar charts, an overlay gallery in DIR/overlays/). Failures are recorded as\n"
        "rows with status error and the sweep goes on.\n"
        "\n"
        "methods: a comma-separated list of method names (see `egcam explain --help`), each\n"
        "  optionally followed by its own options as :key=value (keys: score samples\n"
        "  samples-tol samples-round baselines noise alpha combine seed plan layer), e.g.\n"
        "  gradcam,expected-gradcam:combine=B:score=softmax:noise=0.1\n"
        "  The text of an entry is its name in the outputs.\n"
        "metrics: a comma-separated list of\n"
        "  deletion insertion infidelity infidelity-gaussian       (fidelity)\n"
        "  max-sensitivity avg-sensitivity                         (robustness)\n"
        "  pointing-game pointing-game-tol energy-pointing-game\n"
        "  relevance-rank-accuracy                    (localisation: --boxes, --class-map)\n"
        "  grid-pointing-game                         (2x2 grids of inputs of 4 top-1 classes)\n"
        "  sparseness entropy                                      (complexity)\n"
        "  or the families fidelity, robustness, localisation, complexity, or all. The entropy\n"
        "  complexity is named `complexity` in the outputs (METRICS.md); `complexity` in this\n"
        "  list selects the family (sparseness and entropy).\n"
        "\n"
        "options:\n"
        "  --model M.onnx        the classifier (required)\n"
        "  --methods LIST        methods (required)\n"
        "  --metrics LIST        metrics (required)\n"
        "  --out DIR             output folder (required)\n"
        "  --preset P            tf | torchvision | cifar[:mean=..:std=..:bgr] (default: cifar\n"
        "                        for 32x32 inputs, else torchvision; see\n"
        "                        `egcam classify --help-presets`)\n"
        "  --input-size HxW      the image size a model exported with dynamic H and W runs\n"
        "                        at (its input's symbolic axes; default: the file's)\n"
        "  --limit N             the first N inputs only (after sorting)\n"
        "  --resume              keep DIR/rows.csv and skip (image, method, metric) already there\n"
        "                        (images are named by their path as given: keep the same INPUTS)\n"
        "method options (defaults for every method; as in `egcam explain`):\n"
        "  --layer L --score logit|softmax --samples S --baselines B --noise RHO\n"
        "  --alpha uniform|grid|stratified --combine A|B|C --seed N --plan FILE\n"
        "metric options:\n"
        "  --step PIXELS         deletion/insertion pixels per step (default: the input width,\n"
        "                        224 for 224x224)\n"
        "  --steps K             or K steps (step = ceil(H*W/K))\n"
        "  --infid-patch P       infidelity patch side (default 4, Quantus)\n"
        "  --infid-samples N     Gaussian infidelity perturbations (default 32)\n"
        "  --infid-sigma S       their standard deviation, normalised units (default 0.1)\n"
        "  --sens-samples N      sensitivity samples (default 200)\n"
        "  --sens-radius R       sensitivity noise U(-R, R), normalised units (default 0.2)\n"
        "  --tolerance PX        pointing-game-tol radius (default 15)\n"
        "  --boxes DIR           annotations: DIR/<stem>.txt (YOLO) or DIR/<stem>.xml (VOC)\n"
        "  --class-names FILE    YOLO classes.yaml (default: DIR/classes.yaml or DIR/../classes.yaml)\n"
        "  --class-map FILE      dataset class -> model classes (e.g. data/coco_to_imagenet.txt)\n"
        "                        Localisation explains the top-1 class when it is mapped from a\n"
        "                        class of the image's boxes, else the best-scoring mapped class;\n"
        "                        the mask is the union of the boxes of the classes that map to\n"
        "                        it. Images without a mappable class are skipped (listed).\n"
        "  --gallery N           overlays of the first N images in the report (default 4)\n"
        "run:\n"
        "  --device D            cpu | cuda | cuda:N (default cpu)\n"
        "  --batch B             rows per forward and images per group (default 32, 128 on a\n"
        "                        GPU, whose passes run faster large)\n"
        "  --max-memory SIZE     cap on the device memory of the run (e.g. 2G, 1.5GiB, 512Mi;\n"
        "                        K/M/G are powers of 1000, Ki/Mi/Gi of 1024), shared evenly\n"
        "                        by the methods and the metric evaluator: passes take fewer\n"
        "                        than B rows where B does not fit (same results; --verbose\n"
        "                        says how)\n"
        "  --time-limit SEC      start no new group of images after SEC seconds; the rows,\n"
        "                        summary and report cover what was done and say how many\n"
        "                        images were left (continue them with --resume)\n"
        "  -q, --quiet  -v, --verbose  -h, --help\n"
        "\n"
        "example:\n"
        "  egcam sweep --model ../shared/models/mobilenet_v2_imagenet.onnx --preset tf \\\n"
        "      --methods gradcam,expected-gradcam --metrics fidelity,complexity --steps 16 \\\n"
        "      --limit 8 --out sweep ../shared/data/imagenet-sample\n");
}

const char *const k_sweep_metric_names[SM_COUNT] = {
    "deletion",        "insertion",          "infidelity",        "infidelity-gaussian",
    "max-sensitivity", "avg-sensitivity",    "sensitivity-excluded", "pointing-game",
    "pointing-game-tol", "energy-pointing-game", "relevance-rank-accuracy",
    "grid-pointing-game", "sparseness",       "complexity"};
/* 1 higher is better, -1 lower is better, 0 neither. */
const int k_sweep_metric_dir[SM_COUNT] = {-1, 1, -1, -1, -1, -1, 0, 1, 1, 1, 1, 1, 1, -1};

static int parse_metrics(const char *list, int *on)
{
    char *s = strdup(list), *save = NULL;
    if (!s) return 0;
    int ok = 1;
    for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "all")) {
            for (int i = 0; i < SM_COUNT; i++) on[i] = 1;
        } else if (!strcmp(t, "fidelity")) {
            on[SM_DEL] = on[SM_INS] = on[SM_INFID] = on[SM_INFID_G] = 1;
        } else if (!strcmp(t, "robustness")) {
            on[SM_MAXS] = on[SM_AVGS] = 1;
        } else if (!strcmp(t, "localisation") || !strcmp(t, "localization")) {
            on[SM_PG] = on[SM_PGT] = on[SM_EPG] = on[SM_RRA] = 1;
        } else if (!strcmp(t, "complexity")) {
            on[SM_SPARSE] = on[SM_COMPLEX] = 1; /* the family */
        } else if (!strcmp(t, "entropy")) {
            on[SM_COMPLEX] = 1; /* the entropy complexity alone */
        } else {
            int found = 0;
            for (int i = 0; i < SM_COUNT; i++)
                if (i != SM_SENS_EXCL && !strcmp(t, k_sweep_metric_names[i])) on[i] = found = 1;
            if (!found) {
                fprintf(stderr, "egcam sweep: metric '%s' is unknown (see `egcam sweep --help`)\n",
                        t);
                ok = 0;
            }
        }
    }
    if (on[SM_MAXS] || on[SM_AVGS]) on[SM_SENS_EXCL] = 1;
    free(s);
    return ok;
}

/* ---------------------------------------------------------------- resume set */

static void done_add(sweep_ctx *S, const char *image, const char *method, const char *metric)
{
    size_t l = strlen(image) + strlen(method) + strlen(metric) + 3;
    char *k = malloc(l);
    if (!k) exit(EXIT_MODEL);
    snprintf(k, l, "%s\t%s\t%s", image, method, metric);
    if (S->done_n * 2 >= S->done_cap) {
        size_t nc = S->done_cap ? 2 * S->done_cap : 1024;
        char **nv = calloc(nc, sizeof *nv);
        if (!nv) exit(EXIT_MODEL);
        for (size_t i = 0; i < S->done_cap; i++)
            if (S->done[i]) {
                size_t j = egc_fnv1a(S->done[i], strlen(S->done[i])) & (nc - 1);
                while (nv[j]) j = (j + 1) & (nc - 1);
                nv[j] = S->done[i];
            }
        free(S->done);
        S->done = nv;
        S->done_cap = nc;
    }
    size_t j = egc_fnv1a(k, strlen(k)) & (S->done_cap - 1);
    while (S->done[j]) {
        if (!strcmp(S->done[j], k)) {
            free(k);
            return;
        }
        j = (j + 1) & (S->done_cap - 1);
    }
    S->done[j] = k;
    S->done_n++;
}

static int is_done(const sweep_ctx *S, const char *image, const char *method, int metric)
{
    if (!S->done_n) return 0;
    char k[8192];
    snprintf(k, sizeof k, "%s\t%s\t%s", image, method, k_sweep_metric_names[metric]);
    size_t j = egc_fnv1a(k, strlen(k)) & (S->done_cap - 1);
    while (S->done[j]) {
        if (!strcmp(S->done[j], k)) return 1;
        j = (j + 1) & (S->done_cap - 1);
    }
    return 0;
}

static void load_done(sweep_ctx *S, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return;
    csv_row r;
    memset(&r, 0, sizeof r);
    int first = 1;
    while (csv_read_data_row(f, &r, &first)) {
        if (r.n >= 3) done_add(S, r.f[0], r.f[1], r.f[2]);
    }
    csv_row_free(&r);
    fclose(f);
}

/* ---------------------------------------------------------------- rows */

static void row_write(sweep_ctx *S, const char *image, const char *method, int metric,
                      double value, const char *status, const char *note)
{
    FILE *f = S->rows;
    csv_field(f, image);
    fputc(',', f);
    csv_field(f, method);
    fprintf(f, ",%s,", k_sweep_metric_names[metric]);
    if (!strcmp(status, "ok")) {
        if (isnan(value)) fputs("nan", f);
        else fprintf(f, "%.9g", value);
    }
    fprintf(f, ",%s,", status);
    csv_field(f, note ? note : "");
    fputc('\n', f);
    S->n_rows++;
}

/* The first line of the last error without its " [file:line]". */
static const char *err_short(char *buf, size_t cap)
{
    const char *msg = egc_last_error();
    size_t n = strcspn(msg, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(buf, msg, n);
    buf[n] = '\0';
    char *br = strrchr(buf, '[');
    if (br && br > buf && br[-1] == ' ' && n && buf[n - 1] == ']') br[-1] = '\0';
    return buf;
}

/* ---------------------------------------------------------------- per-group work */

static int has_loc(const sweep_ctx *S)
{
    return S->on[SM_PG] || S->on[SM_PGT] || S->on[SM_EPG] || S->on[SM_RRA];
}

/* Loads the annotation of item it (original image size iw x ih) and picks the class and
 * mask. Returns 1 with *cls and mask set, 0 with a reason in why (skipped), -1 on error
 * (message in why). */
static int loc_prepare(sweep_ctx *S, const cli_item *it, int iw, int ih, const float *logits,
                       int *cls, uint8_t *mask, char *why, size_t cap)
{
    if (it->index >= 0 || iw <= 0) {
        snprintf(why, cap, "tensor input: no original image for the boxes");
        return 0;
    }
    char path[4096];
    egc_boxes b;
    memset(&b, 0, sizeof b);
    snprintf(path, sizeof path, "%s/%s.txt", S->boxes_dir, it->stem);
    egc_status st;
    if (access(path, R_OK) == 0) {
        st = egc_boxes_read_yolo(path, iw, ih, &b);
    } else {
        snprintf(path, sizeof path, "%s/%s.xml", S->boxes_dir, it->stem);
        if (access(path, R_OK) != 0) {
            snprintf(why, cap, "no annotation (%s.txt or .xml)", it->stem);
            return 0;
        }
        st = egc_boxes_read_voc(path, &b);
        if (st == EGC_OK && (b.img_w != iw || b.img_h != ih)) {
            snprintf(why, cap, "%.300s: size %dx%d differs from the image's %dx%d", path, b.img_w,
                     b.img_h, iw, ih);
            egc_boxes_free(&b);
            return -1;
        }
    }
    if (st != EGC_OK) {
        err_short(why, cap);
        return -1;
    }
    for (int k = 0; k < b.n; k++)
        if (!b.v[k].name[0] && b.v[k].cls >= 0 && b.v[k].cls < S->n_names && S->names[b.v[k].cls])
            snprintf(b.v[k].name, sizeof b.v[k].name, "%s", S->names[b.v[k].cls]);
    uint8_t *keep = calloc((size_t)(b.n ? b.n : 1), 1);
    if (!keep) exit(EXIT_MODEL);
    int r = 1;
    if (egc_localisation_target(&S->cmap, &b, logits, S->classes, cls, keep) != EGC_OK) {
        err_short(why, cap);
        r = -1;
    } else if (*cls < 0) {
        snprintf(why, cap, "no box class is in the class map");
        r = 0;
    } else {
        int count = 0;
        if (egc_boxes_mask(&b, keep, S->preset, S->W, S->H, mask, &count) != EGC_OK) {
            err_short(why, cap);
            r = -1;
        } else if (!count) {
            snprintf(why, cap, "the boxes of class %d fall outside the model input", *cls);
            r = 0;
        }
    }
    free(keep);
    egc_boxes_free(&b);
    return r;
}

/* Method label -> a file-name-safe slug. */
static void slug(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.';
        out[n++] = ok ? c : '_';
    }
    out[n] = '\0';
}

static void write_overlay(sweep_ctx *S, const egc_image *sized, const float *map, int gidx,
                          const char *stem, const char *method_label)
{
    char path[4096], sl[256];
    if (!sized->rgb) return;
    if (method_label) {
        egc_image ov;
        if (egc_overlay(sized, map, S->W, S->H, EGC_CMAP_TURBO, 0.5f, &ov) != EGC_OK) {
            cli_error("overlay", S->verbose);
            return;
        }
        slug(method_label, sl, sizeof sl);
        snprintf(path, sizeof path, "%s/overlays/%03d_%s__%s.png", S->out_dir, gidx, stem, sl);
        if (egc_image_save(path, &ov, 90) != EGC_OK) cli_error(path, S->verbose);
        egc_image_free(&ov);
    } else {
        snprintf(path, sizeof path, "%s/overlays/%03d_%s.png", S->out_dir, gidx, stem);
        if (egc_image_save(path, sized, 90) != EGC_OK) cli_error(path, S->verbose);
    }
}

/* Buffers of one group (G images), reserved once. */
typedef struct gbuf {
    float *x, *xs, *maps, *ms, *lmaps, *logits, *curves, *vals, *vals2;
    float *curves_ins, *vals_ins; /* insertion computed with deletion (egc_metric_curves) */
    uint8_t *masks;
    int *slot, *top1, *lcls, *cls_s, *sel;
    int *iw, *ih;
    egc_image *sized;
    egc_cam_result *res;
    egc_sensitivity_result *sens;
    char **why;
    egc_status *ldst;             /* [G] load status of each input (cli_parallel_load) */
    char **lerr;                  /* [G] their error messages */
} gbuf;

/* Rows for every metric of the (non-grid) per-image kind for item it and method label. */
static void error_rows(sweep_ctx *S, const char *image, const char *method, const char *msg)
{
    for (int k = 0; k < SM_COUNT; k++)
        if (S->on[k] && k != SM_GRID && !is_done(S, image, method, k))
            row_write(S, image, method, k, 0, "error", msg);
}

/* 1 when metrics k1 and k2 are due (not done) on exactly the same images of the group: the
 * images one call of a metric pair then takes. */
static int same_todo(const sweep_ctx *S, const gbuf *B, int n, const char *method, int k1, int k2)
{
    for (int t = 0; t < n; t++) {
        const char *id = S->items.v[B->slot[t]].id;
        if (is_done(S, id, method, k1) != is_done(S, id, method, k2)) return 0;
    }
    return 1;
}

/* The metrics of one method on the loaded images of a group. */
static void group_method(sweep_ctx *S, gbuf *B, int m, int n, int g0_global)
{
    sweep_method *M = &S->methods[m];
    size_t chw = S->chw, hw = (size_t)S->H * (size_t)S->W;
    char msg[1024];
    const char *label = M->label;
    /* Which images need the top-1 explanation. */
    static const int main_metrics[] = {SM_DEL, SM_INS, SM_INFID, SM_INFID_G, SM_MAXS, SM_AVGS,
                                       SM_SPARSE, SM_COMPLEX};
    int need = 0;
    for (int t = 0; t < n && !need; t++) {
        const char *id = S->items.v[B->slot[t]].id;
        for (size_t k = 0; k < EGC_ARRAY_N(main_metrics); k++)
            if (S->on[main_metrics[k]] && !is_done(S, id, label, main_metrics[k])) need = 1;
        if (B->slot[t] < S->gallery) {
            /* The overlay, unless a resumed run already wrote it. */
            char path[4096], sl[256];
            slug(label, sl, sizeof sl);
            snprintf(path, sizeof path, "%s/overlays/%03d_%s__%s.png", S->out_dir, B->slot[t],
                     S->items.v[B->slot[t]].stem, sl);
            if (!S->resume || access(path, R_OK) != 0) need = 1;
        }
    }
    if (need) {
        for (int t = 0; t < n; t++) {
            B->res[t].raw = NULL;
            B->res[t].map = B->maps + (size_t)t * hw;
        }
        double t0 = cli_now();
        if (egc_explainer_run(M->ex, B->x, n, B->top1, B->res) != EGC_OK) {
            if (S->verbose) cli_error(label, 1);
            err_short(msg, sizeof msg);
            for (int t = 0; t < n; t++)
                error_rows(S, S->items.v[B->slot[t]].id, label, msg);
            fflush(S->rows);
            return;
        }
        S->t_explain += cli_now() - t0;
        for (int t = 0; t < n; t++)
            if (B->slot[t] < S->gallery)
                write_overlay(S, &B->sized[t], B->maps + (size_t)t * hw, B->slot[t],
                              S->items.v[B->slot[t]].stem, label);
        /* Complexity: no model. */
        for (int t = 0; t < n; t++) {
            const char *id = S->items.v[B->slot[t]].id;
            const float *mp = B->maps + (size_t)t * hw;
            if (S->on[SM_SPARSE] && !is_done(S, id, label, SM_SPARSE)) {
                float g;
                if (egc_sparseness(mp, (int)hw, &g) == EGC_OK)
                    row_write(S, id, label, SM_SPARSE, g, "ok", NULL);
                else
                    row_write(S, id, label, SM_SPARSE, 0, "error", err_short(msg, sizeof msg));
            }
            if (S->on[SM_COMPLEX] && !is_done(S, id, label, SM_COMPLEX))
                row_write(S, id, label, SM_COMPLEX, egc_complexity(mp, (int)hw), "ok", NULL);
        }
        fflush(S->rows);
        /* Model metrics on the images that still need them. When deletion and insertion are
         * both due on the same images, one egc_metric_curves call makes both (each map
         * ranked once); the insertion results wait in curves_ins / vals_ins for their turn,
         * so the rows come out as with two calls. */
        static const int model_metrics[] = {SM_DEL, SM_INS, SM_INFID, SM_INFID_G, SM_MAXS};
        int ins_ready = 0;
        for (size_t mk = 0; mk < EGC_ARRAY_N(model_metrics); mk++) {
            int k = model_metrics[mk];
            if (!S->on[k] && !(k == SM_MAXS && S->on[SM_AVGS])) continue;
            int ns = 0;
            for (int t = 0; t < n; t++) {
                const char *id = S->items.v[B->slot[t]].id;
                int todo = k == SM_MAXS ? (S->on[SM_MAXS] && !is_done(S, id, label, SM_MAXS)) ||
                                              (S->on[SM_AVGS] && !is_done(S, id, label, SM_AVGS))
                                        : !is_done(S, id, label, k);
                if (!todo) continue;
                memcpy(B->xs + (size_t)ns * chw, B->x + (size_t)t * chw, chw * sizeof(float));
                memcpy(B->ms + (size_t)ns * hw, B->maps + (size_t)t * hw, hw * sizeof(float));
                B->cls_s[ns] = B->res[t].cls;
                B->sel[ns++] = t;
            }
            if (!ns) continue;
            egc_status st = EGC_OK;
            const float *vals = B->vals, *curves = B->curves;
            switch (k) {
            case SM_DEL:
                if (S->on[SM_INS] && same_todo(S, B, n, label, SM_DEL, SM_INS)) {
                    st = egc_metric_curves(S->ev, B->xs, B->ms, ns, B->cls_s, S->step, B->vals,
                                           B->vals_ins, B->curves, B->curves_ins);
                    if (st == EGC_OK) {
                        ins_ready = 1;
                        break;
                    }
                    /* on a failure each curve runs alone, so that each records its own error */
                }
                st = egc_metric_curve(S->ev, EGC_CURVE_DELETION, B->xs, B->ms, ns, B->cls_s,
                                      S->step, B->vals, B->curves);
                break;
            case SM_INS:
                if (ins_ready) {
                    vals = B->vals_ins;
                    curves = B->curves_ins;
                    break;
                }
                st = egc_metric_curve(S->ev, EGC_CURVE_INSERTION, B->xs, B->ms, ns, B->cls_s,
                                      S->step, B->vals, B->curves);
                break;
            case SM_INFID:
                st = egc_metric_infidelity(S->ev, B->xs, B->ms, ns, B->cls_s, &S->infid, B->vals);
                break;
            case SM_INFID_G:
                st = egc_metric_infidelity_gaussian(S->ev, B->xs, B->ms, ns, B->cls_s, &S->infid,
                                                    B->vals, B->vals2);
                break;
            default:
                st = egc_metric_sensitivity(M->ex, B->xs, B->ms, B->cls_s, ns, &S->sens, B->sens);
                break;
            }
            if (st != EGC_OK) {
                if (S->verbose) cli_error(k_sweep_metric_names[k], 1);
                err_short(msg, sizeof msg);
            }
            for (int u = 0; u < ns; u++) {
                const char *id = S->items.v[B->slot[B->sel[u]]].id;
                if (k == SM_MAXS) {
                    char note[128];
                    const egc_sensitivity_result *r = &B->sens[u];
                    snprintf(note, sizeof note, "kept=%d excluded=%d", st == EGC_OK ? r->kept : 0,
                             st == EGC_OK ? r->excluded : 0);
                    if (S->on[SM_MAXS] && !is_done(S, id, label, SM_MAXS))
                        row_write(S, id, label, SM_MAXS, st == EGC_OK ? r->max_sens : 0,
                                  st == EGC_OK ? "ok" : "error", st == EGC_OK ? note : msg);
                    if (S->on[SM_AVGS] && !is_done(S, id, label, SM_AVGS))
                        row_write(S, id, label, SM_AVGS, st == EGC_OK ? r->avg_sens : 0,
                                  st == EGC_OK ? "ok" : "error", st == EGC_OK ? note : msg);
                    if (!is_done(S, id, label, SM_SENS_EXCL))
                        row_write(S, id, label, SM_SENS_EXCL, st == EGC_OK ? r->excluded : 0,
                                  st == EGC_OK ? "ok" : "error", st == EGC_OK ? note : msg);
                    continue;
                }
                if (st != EGC_OK) {
                    row_write(S, id, label, k, 0, "error", msg);
                    continue;
                }
                char note[64] = "";
                if (k == SM_INFID_G) snprintf(note, sizeof note, "beta=%.6g", (double)B->vals2[u]);
                row_write(S, id, label, k, vals[u], "ok", note);
                if (k == SM_DEL || k == SM_INS) {
                    const float *cv = curves + (size_t)u * (size_t)(S->T + 1);
                    for (int t = 0; t <= S->T; t++) {
                        long px = (long)t * S->step;
                        if (px > (long)hw) px = (long)hw;
                        csv_field(S->curves, id);
                        fputc(',', S->curves);
                        csv_field(S->curves, label);
                        fprintf(S->curves, ",%s,%d,%.6g,%.9g\n", k_sweep_metric_names[k], t,
                                (double)px / (double)hw, (double)cv[t]);
                    }
                }
            }
            fflush(S->rows);
            fflush(S->curves);
        }
    }
    /* Localisation. */
    if (has_loc(S)) {
        static const int loc_metrics[] = {SM_PG, SM_PGT, SM_EPG, SM_RRA};
        int ns = 0;
        for (int t = 0; t < n; t++) {
            const char *id = S->items.v[B->slot[t]].id;
            int todo = 0;
            for (size_t k = 0; k < EGC_ARRAY_N(loc_metrics); k++)
                if (S->on[loc_metrics[k]] && !is_done(S, id, label, loc_metrics[k])) todo = 1;
            if (!todo) continue;
            if (B->lcls[t] < 0) {
                for (size_t k = 0; k < EGC_ARRAY_N(loc_metrics); k++)
                    if (S->on[loc_metrics[k]] && !is_done(S, id, label, loc_metrics[k]))
                        row_write(S, id, label, loc_metrics[k], 0,
                                  B->lcls[t] == -2 ? "error" : "skipped", B->why[t]);
                continue;
            }
            memcpy(B->xs + (size_t)ns * chw, B->x + (size_t)t * chw, chw * sizeof(float));
            B->cls_s[ns] = B->lcls[t];
            B->sel[ns++] = t;
        }
        if (ns) {
            for (int u = 0; u < ns; u++) {
                B->res[u].raw = NULL;
                B->res[u].map = B->lmaps + (size_t)u * hw;
            }
            double t0 = cli_now();
            egc_status st = egc_explainer_run(M->ex, B->xs, ns, B->cls_s, B->res);
            S->t_explain += cli_now() - t0;
            if (st != EGC_OK) err_short(msg, sizeof msg);
            for (int u = 0; u < ns; u++) {
                int t = B->sel[u];
                const char *id = S->items.v[B->slot[t]].id;
                const float *mp = B->lmaps + (size_t)u * hw;
                const uint8_t *mk = B->masks + (size_t)t * hw;
                char note[64];
                snprintf(note, sizeof note, "class=%d", B->lcls[t]);
                for (size_t k = 0; k < EGC_ARRAY_N(loc_metrics); k++) {
                    int q = loc_metrics[k];
                    if (!S->on[q] || is_done(S, id, label, q)) continue;
                    if (st != EGC_OK) {
                        row_write(S, id, label, q, 0, "error", msg);
                        continue;
                    }
                    double v = 0;
                    egc_status s2 = EGC_OK;
                    int hit = 0;
                    float f = 0;
                    if (q == SM_PG || q == SM_PGT) {
                        s2 = egc_pointing_game(mp, mk, S->H, S->W, q == SM_PGT ? S->tolerance : 0,
                                               &hit);
                        v = hit;
                    } else if (q == SM_EPG) {
                        v = egc_energy_pointing(mp, mk, (int)hw);
                    } else {
                        s2 = egc_relevance_rank(mp, mk, (int)hw, &f);
                        v = f;
                    }
                    if (s2 != EGC_OK) row_write(S, id, label, q, 0, "error", err_short(msg, sizeof msg));
                    else row_write(S, id, label, q, v, "ok", note);
                }
            }
            fflush(S->rows);
        }
    }
    (void)g0_global;
}

/* ---------------------------------------------------------------- grids */

/* Forms grids of four pool images with four different top-1 classes (greedily, in input
 * order) and scores the grid pointing game for every method. */
static void grids_run(sweep_ctx *S, int final)
{
    size_t chw = S->chw, hw = (size_t)S->H * (size_t)S->W;
    char msg[1024];
    for (;;) {
        int pick[4], np = 0;
        for (int i = 0; i < S->pool_n && np < 4; i++) {
            int dup = 0;
            for (int j = 0; j < np; j++) dup |= S->pool_cls[pick[j]] == S->pool_cls[i];
            if (!dup) pick[np++] = i;
        }
        if (np < 4) break;
        int gk = S->grid_k++;
        for (int q = 0; q < 4; q++)
            memcpy(S->grid_x4 + (size_t)q * chw, S->pool_x + (size_t)pick[q] * chw,
                   chw * sizeof(float));
        char ids[4][512];
        int cls4[4];
        for (int q = 0; q < 4; q++) {
            snprintf(ids[q], sizeof ids[q], "grid%d/%s", gk, S->pool_id[pick[q]]);
            cls4[q] = S->pool_cls[pick[q]];
        }
        if (egc_grid_compose(S->grid_x4, 3, S->H, S->W, S->grid_x) != EGC_OK) {
            err_short(msg, sizeof msg);
            for (int m = 0; m < S->n_methods; m++)
                for (int q = 0; q < 4; q++)
                    row_write(S, ids[q], S->methods[m].label, SM_GRID, 0, "error", msg);
        } else {
            for (int q = 1; q < 4; q++)
                memcpy(S->grid_x + (size_t)q * chw, S->grid_x, chw * sizeof(float));
            for (int m = 0; m < S->n_methods; m++) {
                const char *label = S->methods[m].label;
                int todo = 0;
                for (int q = 0; q < 4; q++) todo |= !is_done(S, ids[q], label, SM_GRID);
                if (!todo) continue;
                egc_cam_result res[4];
                for (int q = 0; q < 4; q++) {
                    res[q].raw = NULL;
                    res[q].map = S->grid_maps + (size_t)q * hw;
                }
                double t0 = cli_now();
                egc_status st = egc_explainer_run(S->methods[m].ex, S->grid_x, 4, cls4, res);
                S->t_explain += cli_now() - t0;
                if (st != EGC_OK) err_short(msg, sizeof msg);
                for (int q = 0; q < 4; q++) {
                    if (is_done(S, ids[q], label, SM_GRID)) continue;
                    char note[64];
                    snprintf(note, sizeof note, "class=%d quadrant=%d", cls4[q], q);
                    if (st != EGC_OK) row_write(S, ids[q], label, SM_GRID, 0, "error", msg);
                    else
                        row_write(S, ids[q], label, SM_GRID,
                                  egc_grid_share(S->grid_maps + (size_t)q * hw, S->H, S->W, q),
                                  "ok", note);
                }
                fflush(S->rows);
            }
        }
        /* Remove the four from the pool (keep order). */
        int w = 0;
        for (int i = 0; i < S->pool_n; i++) {
            int used = 0;
            for (int q = 0; q < 4; q++) used |= pick[q] == i;
            if (used) {
                free(S->pool_id[i]);
                continue;
            }
            if (w != i) {
                memmove(S->pool_x + (size_t)w * chw, S->pool_x + (size_t)i * chw, chw * sizeof(float));
                S->pool_cls[w] = S->pool_cls[i];
                S->pool_id[w] = S->pool_id[i];
            }
            w++;
        }
        S->pool_n = w;
    }
    if (final) {
        for (int i = 0; i < S->pool_n; i++) free(S->pool_id[i]);
        S->pool_n = 0;
    }
}

static void pool_add(sweep_ctx *S, const float *x, int cls, const char *id)
{
    size_t chw = S->chw;
    if (S->pool_n == S->pool_cap) {
        /* Full of repeated classes: drop the oldest. */
        free(S->pool_id[0]);
        memmove(S->pool_x, S->pool_x + chw, (size_t)(S->pool_n - 1) * chw * sizeof(float));
        memmove(S->pool_cls, S->pool_cls + 1, (size_t)(S->pool_n - 1) * sizeof(int));
        memmove(S->pool_id, S->pool_id + 1, (size_t)(S->pool_n - 1) * sizeof(char *));
        S->pool_n--;
    }
    memcpy(S->pool_x + (size_t)S->pool_n * chw, x, chw * sizeof(float));
    S->pool_cls[S->pool_n] = cls;
    S->pool_id[S->pool_n] = strdup(id);
    if (!S->pool_id[S->pool_n]) exit(EXIT_MODEL);
    S->pool_n++;
}

/* ---------------------------------------------------------------- loading */

/* Loads item it: the tensor into x, the model-sized picture into sized (when want_sized),
 * the original size into iw, ih (0 for tensors). */
static egc_status load_item(const sweep_ctx *S, const cli_item *it, float *x, egc_image *sized,
                            int want_sized, int *iw, int *ih)
{
    memset(sized, 0, sizeof *sized);
    return cli_load_item(it, S->preset, S->C, S->W, S->H, x, want_sized ? sized : NULL, iw, ih);
}

/* A group's inputs loaded in parallel (cli_parallel_load): input g0 + k into row k. */
typedef struct load_ctx {
    const sweep_ctx *S;
    int g0;
    gbuf *B;
} load_ctx;

static egc_status load_one(int k, void *arg)
{
    const load_ctx *c = arg;
    const sweep_ctx *S = c->S;
    int i = c->g0 + k;
    return load_item(S, &S->items.v[i], c->B->x + (size_t)k * S->chw, &c->B->sized[k],
                     i < S->gallery, &c->B->iw[k], &c->B->ih[k]);
}

/* ---------------------------------------------------------------- main */

static int fexists_nonempty(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && sb.st_size > 0;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "egcam sweep: out of memory\n");
        exit(EXIT_MODEL);
    }
    return p;
}

/* n zeroed floats of egc_host_alloc memory for the inputs of runs on device (free with
 * egc_host_free); exits like xcalloc when there is no memory. */
static float *host_floats(const char *device, size_t n)
{
    void *p = NULL;
    if (egc_host_alloc(device, (n ? n : 1) * sizeof(float), &p) != EGC_OK) {
        fprintf(stderr, "egcam sweep: %s\n", egc_last_error());
        exit(EXIT_MODEL);
    }
    return p;
}

/* A usage error in --methods: frees what the method list made so far (every label, the
 * methods array and the list's copy) and returns EXIT_USAGE. */
static int methods_usage_error(sweep_ctx *S, char *mlist)
{
    for (int k = 0; S->methods && k < 64; k++) free(S->methods[k].label);
    free(S->methods);
    S->methods = NULL;
    S->n_methods = 0;
    free(mlist);
    return EXIT_USAGE;
}

int cmd_sweep(int argc, char **argv)
{
    sweep_ctx S_, *S = &S_;
    memset(S, 0, sizeof *S);
    const char *model_path = NULL, *methods_list = NULL, *metrics_list = NULL;
    const char *preset_name = NULL, *class_map = NULL, *class_names = NULL;
    const char *device = "cpu";
    int quiet = 0, batch = 32, batch_given = 0, steps = 0, step = 0;
    size_t max_memory = 0; /* --max-memory, 0: none */
    long limit = -1;
    egc_explain_options base;
    egc_explain_options_default(&base);
    S->gallery = 4;
    S->tolerance = 15.0f;
    egc_sensitivity_options_default(&S->sens);
    int infid_patch = 4, infid_samples = 32;
    float infid_sigma = 0.1f;
    enum {
        O_MODEL = 256, O_METHODS, O_METRICS, O_OUT, O_PRESET, O_LIMIT, O_RESUME, O_STEP, O_STEPS,
        O_DEVICE, O_BATCH, O_BOXES, O_CMAP, O_CNAMES, O_IPATCH, O_ISAMPLES, O_ISIGMA, O_SSAMPLES,
        O_SRADIUS, O_TOL, O_GALLERY, O_MOPT, O_TLIMIT, O_MAXMEM, O_INSIZE
    };
    int in_h = 0, in_w = 0; /* --input-size */
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},     {"methods", required_argument, 0, O_METHODS},
        {"method", required_argument, 0, O_METHODS},  {"metrics", required_argument, 0, O_METRICS},
        {"out", required_argument, 0, O_OUT},         {"preset", required_argument, 0, O_PRESET},
        {"limit", required_argument, 0, O_LIMIT},     {"resume", no_argument, 0, O_RESUME},
        {"step", required_argument, 0, O_STEP},       {"steps", required_argument, 0, O_STEPS},
        {"device", required_argument, 0, O_DEVICE},   {"batch", required_argument, 0, O_BATCH},
        {"boxes", required_argument, 0, O_BOXES},     {"class-map", required_argument, 0, O_CMAP},
        {"class-names", required_argument, 0, O_CNAMES},
        {"infid-patch", required_argument, 0, O_IPATCH},
        {"infid-samples", required_argument, 0, O_ISAMPLES},
        {"infid-sigma", required_argument, 0, O_ISIGMA},
        {"sens-samples", required_argument, 0, O_SSAMPLES},
        {"sens-radius", required_argument, 0, O_SRADIUS},
        {"tolerance", required_argument, 0, O_TOL},   {"gallery", required_argument, 0, O_GALLERY},
        {"time-limit", required_argument, 0, O_TLIMIT},
        {"max-memory", required_argument, 0, O_MAXMEM},
        {"input-size", required_argument, 0, O_INSIZE},
        CLI_METHOD_LONG_OPTIONS(O_MOPT),              {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},             {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c, li;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qvh", opts, &li)) != -1) {
        long v;
        double d;
        switch (c) {
        case O_MODEL: model_path = optarg; break;
        case O_METHODS: methods_list = optarg; break;
        case O_METRICS: metrics_list = optarg; break;
        case O_OUT: S->out_dir = optarg; break;
        case O_PRESET: preset_name = optarg; break;
        case O_INSIZE:
            if (!cli_parse_hw("sweep", "input-size", optarg, &in_h, &in_w)) return EXIT_USAGE;
            break;
        case O_LIMIT:
            if (!cli_parse_long("sweep", "--limit", optarg, 1, 1L << 30, &limit)) return EXIT_USAGE;
            break;
        case O_RESUME: S->resume = 1; break;
        case O_STEP:
            if (!cli_parse_long("sweep", "--step", optarg, 1, 1L << 30, &v)) return EXIT_USAGE;
            step = (int)v;
            break;
        case O_STEPS:
            if (!cli_parse_long("sweep", "--steps", optarg, 1, 1L << 30, &v)) return EXIT_USAGE;
            steps = (int)v;
            break;
        case O_DEVICE: device = optarg; break;
        case O_TLIMIT:
            if (!cli_parse_double("sweep", "--time-limit", optarg, 1e-3, 1e9, &d))
                return EXIT_USAGE;
            S->time_limit = d;
            break;
        case O_BATCH:
            if (!cli_parse_long("sweep", "--batch", optarg, 1, 4096, &v)) return EXIT_USAGE;
            batch = (int)v;
            batch_given = 1;
            break;
        case O_MAXMEM:
            if (!cli_parse_size("sweep", "--max-memory", optarg, &max_memory)) return EXIT_USAGE;
            break;
        case O_BOXES: S->boxes_dir = optarg; break;
        case O_CMAP: class_map = optarg; break;
        case O_CNAMES: class_names = optarg; break;
        case O_IPATCH:
            if (!cli_parse_long("sweep", "--infid-patch", optarg, 1, 4096, &v)) return EXIT_USAGE;
            infid_patch = (int)v;
            break;
        case O_ISAMPLES:
            if (!cli_parse_long("sweep", "--infid-samples", optarg, 1, 1 << 20, &v)) return EXIT_USAGE;
            infid_samples = (int)v;
            break;
        case O_ISIGMA:
            if (!cli_parse_double("sweep", "--infid-sigma", optarg, 1e-12, 1e6, &d)) return EXIT_USAGE;
            infid_sigma = (float)d;
            break;
        case O_SSAMPLES:
            if (!cli_parse_long("sweep", "--sens-samples", optarg, 1, 1 << 20, &v)) return EXIT_USAGE;
            S->sens.samples = (int)v;
            break;
        case O_SRADIUS:
            if (!cli_parse_double("sweep", "--sens-radius", optarg, 0, 1e6, &d)) return EXIT_USAGE;
            S->sens.radius = (float)d;
            break;
        case O_TOL:
            if (!cli_parse_double("sweep", "--tolerance", optarg, 0, 1e6, &d)) return EXIT_USAGE;
            S->tolerance = (float)d;
            break;
        case O_GALLERY:
            if (!cli_parse_long("sweep", "--gallery", optarg, 0, 1000, &v)) return EXIT_USAGE;
            S->gallery = (int)v;
            break;
        case O_MOPT:
            if (cli_method_option("sweep", opts[li].name, optarg, &base) != 1) return EXIT_USAGE;
            break;
        case 'q': quiet = 1; break;
        case 'v': S->verbose = 1; break;
        case 'h': help(stdout); return EXIT_ALL_OK;
        default: help(stderr); return EXIT_USAGE;
        }
    }
    if (!model_path || !methods_list || !metrics_list || !S->out_dir) {
        fprintf(stderr, "egcam sweep: --model, --methods, --metrics and --out are required "
                        "(see `egcam sweep --help`)\n");
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "egcam sweep: no inputs given (image files, folders or .npy files)\n");
        return EXIT_USAGE;
    }
    if (step && steps) {
        fprintf(stderr, "egcam sweep: give --step or --steps, not both\n");
        return EXIT_USAGE;
    }
    if (!parse_metrics(metrics_list, S->on)) return EXIT_USAGE;
    if (has_loc(S) && (!S->boxes_dir || !class_map)) {
        fprintf(stderr, "egcam sweep: the localisation metrics need --boxes DIR and --class-map "
                        "FILE\n");
        return EXIT_USAGE;
    }
    if (!batch_given) batch = cli_default_batch(device, batch);
    S->batch = batch;
    S->device = device;
    S->model_path = model_path;
    S->started = cli_now();

    /* Methods with their own options. */
    char *mlist = strdup(methods_list);
    if (!mlist) return EXIT_MODEL;
    S->methods = xcalloc(64, sizeof *S->methods);
    {
        char *save = NULL;
        for (char *t = strtok_r(mlist, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (S->n_methods == 64) {
                fprintf(stderr, "egcam sweep: more than 64 methods\n");
                return methods_usage_error(S, mlist);
            }
            sweep_method *M = &S->methods[S->n_methods];
            M->label = strdup(t);
            M->o = base;
            char *save2 = NULL;
            char *name = strtok_r(t, ":", &save2);
            if (!name || egc_method_parse(name, &M->o.method) != EGC_OK) {
                cli_error("--methods", 0);
                return methods_usage_error(S, mlist);
            }
            for (char *kv = strtok_r(NULL, ":", &save2); kv; kv = strtok_r(NULL, ":", &save2)) {
                char *eq = strchr(kv, '=');
                if (!eq) {
                    fprintf(stderr, "egcam sweep: method option '%s' of '%s' is not key=value\n",
                            kv, M->label);
                    return methods_usage_error(S, mlist);
                }
                *eq = '\0';
                int r = cli_method_option("sweep", kv, eq + 1, &M->o);
                if (r < 0)
                    fprintf(stderr, "egcam sweep: '%s' is not a method option (in '%s')\n", kv,
                            M->label);
                if (r != 1) return methods_usage_error(S, mlist);
            }
            if (!cli_check_method_options("sweep", M->label, &M->o))
                return methods_usage_error(S, mlist);
            for (int j = 0; j < S->n_methods; j++)
                if (!strcmp(S->methods[j].label, M->label)) {
                    fprintf(stderr, "egcam sweep: method '%s' is listed twice\n", M->label);
                    return methods_usage_error(S, mlist);
                }
            M->o.batch = batch;
            S->n_methods++;
        }
        if (!S->n_methods) {
            fprintf(stderr, "egcam sweep: --methods names no method\n");
            return methods_usage_error(S, mlist);
        }
    }

    egc_model *m = NULL;
    if (egc_model_load_sized(model_path, in_h, in_w, &m) != EGC_OK) {
        cli_error(model_path, S->verbose);
        return EXIT_MODEL;
    }
    S->model = m;
    if (!preset_name) preset_name = cli_default_preset(m);
    if (!cli_parse_preset("sweep", preset_name, &S->preset)) return EXIT_USAGE;
    egc_model_input_chw(m, &S->C, &S->H, &S->W);
    S->classes = egc_model_num_classes(m);
    S->chw = (size_t)S->C * (size_t)S->H * (size_t)S->W;
    int hw = S->H * S->W;
    S->step = step ? step : steps ? (hw + steps - 1) / steps : S->W;
    S->T = egc_curve_steps(hw, S->step);
    egc_infidelity_options_default(S->preset, &S->infid);
    S->infid.patch = infid_patch;
    S->infid.samples = infid_samples;
    S->infid.sigma = infid_sigma;
    S->infid.seed = base.seed;
    S->sens.seed = base.seed;

    if (has_loc(S)) {
        char guess[4096];
        if (!class_names) {
            snprintf(guess, sizeof guess, "%s/classes.yaml", S->boxes_dir);
            if (access(guess, R_OK) != 0) snprintf(guess, sizeof guess, "%s/../classes.yaml", S->boxes_dir);
            if (access(guess, R_OK) == 0) class_names = guess;
        }
        if (class_names && egc_class_names_read(class_names, &S->names, &S->n_names) != EGC_OK) {
            cli_error(class_names, S->verbose);
            return EXIT_USAGE;
        }
        S->class_names_path = class_names ? strdup(class_names) : NULL;
        if (egc_class_map_read(class_map, S->names, S->n_names, S->classes, &S->cmap) != EGC_OK) {
            cli_error(class_map, S->verbose);
            return EXIT_USAGE;
        }
        S->class_map_path = class_map;
    }

    /* Inputs. */
    int n_bad = 0;
    cli_expand_inputs(argv + optind, argc - optind, &S->items, &n_bad);
    if (limit > 0 && S->items.n > limit) {
        for (int i = (int)limit; i < S->items.n; i++) {
            free(S->items.v[i].path);
            free(S->items.v[i].id);
            free(S->items.v[i].stem);
        }
        S->items.n = (int)limit;
    }
    S->limit = limit;
    S->inputs = argv + optind;
    S->n_inputs = argc - optind;
    if (S->items.n == 0) {
        fprintf(stderr, "egcam sweep: no images among the inputs\n");
        return EXIT_USAGE;
    }

    /* Explainers and the evaluator. */
    int rc = n_bad ? EXIT_SOME_FAILED : EXIT_ALL_OK;
    /* --max-memory: one even share per explainer and one for the evaluator. */
    size_t share = max_memory / (size_t)(S->n_methods + 1);
    if (max_memory && !share) share = 1;
    for (int k = 0; k < S->n_methods; k++) {
        S->methods[k].o.max_device_bytes = share;
        egc_status st = egc_explainer_create(m, device, &S->methods[k].o, &S->methods[k].ex);
        if (st != EGC_OK) {
            cli_error(S->methods[k].label, S->verbose);
            return (st == EGC_E_ARG || st == EGC_E_IO || st == EGC_E_FORMAT) ? EXIT_USAGE
                                                                             : EXIT_MODEL;
        }
        S->methods[k].o = *egc_explainer_options(S->methods[k].ex);
        int rows = egc_explainer_rows(S->methods[k].ex);
        if (S->verbose && rows < batch) {
            char used[32], cap[32];
            fprintf(stderr, "egcam sweep: %s: batch %d split into passes of %d rows (device "
                            "memory %s", S->methods[k].label, batch, rows,
                    cli_format_bytes(egc_explainer_device_bytes(S->methods[k].ex), used,
                                     sizeof used));
            if (share) fprintf(stderr, ", cap %s", cli_format_bytes(share, cap, sizeof cap));
            fprintf(stderr, ")\n");
        }
    }
    if (egc_evaluator_create_ex(m, device, batch, share, &S->ev) != EGC_OK) {
        cli_error("evaluator", S->verbose);
        return EXIT_MODEL;
    }

    /* Outputs. */
    char path[4096];
    if (cli_mkdirs(S->out_dir) != 0) return EXIT_USAGE;
    snprintf(path, sizeof path, "%s/overlays", S->out_dir);
    if (S->gallery && cli_mkdirs(path) != 0) return EXIT_USAGE;
    snprintf(path, sizeof path, "%s/rows.csv", S->out_dir);
    if (S->resume) load_done(S, path);
    int had_rows = S->resume && fexists_nonempty(path);
    S->rows = fopen(path, S->resume ? "a" : "w");
    if (!S->rows) {
        fprintf(stderr, "egcam sweep: cannot write %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    if (!had_rows) fprintf(S->rows, "image,method,metric,value,status,note\n");
    snprintf(path, sizeof path, "%s/curves.csv", S->out_dir);
    int had_curves = S->resume && fexists_nonempty(path);
    S->curves = fopen(path, S->resume ? "a" : "w");
    if (!S->curves) {
        fprintf(stderr, "egcam sweep: cannot write %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    if (!had_curves) fprintf(S->curves, "image,method,metric,step,fraction,score\n");
    fflush(S->rows);
    fflush(S->curves);

    /* Group buffers. */
    int G = batch;
    size_t chw = S->chw;
    gbuf B;
    B.x = host_floats(S->device, (size_t)G * chw); /* page-locked for a CUDA device */
    B.xs = host_floats(S->device, (size_t)G * chw);
    B.maps = xcalloc((size_t)G * hw, sizeof(float));
    B.ms = xcalloc((size_t)G * hw, sizeof(float));
    B.lmaps = xcalloc((size_t)G * hw, sizeof(float));
    B.logits = xcalloc((size_t)G * S->classes, sizeof(float));
    B.curves = xcalloc((size_t)G * (S->T + 1), sizeof(float));
    B.vals = xcalloc((size_t)G, sizeof(float));
    B.vals2 = xcalloc((size_t)G, sizeof(float));
    B.curves_ins = xcalloc((size_t)G * (S->T + 1), sizeof(float));
    B.vals_ins = xcalloc((size_t)G, sizeof(float));
    B.masks = xcalloc((size_t)G * hw, 1);
    B.slot = xcalloc((size_t)G, sizeof(int));
    B.top1 = xcalloc((size_t)G, sizeof(int));
    B.lcls = xcalloc((size_t)G, sizeof(int));
    B.cls_s = xcalloc((size_t)G, sizeof(int));
    B.sel = xcalloc((size_t)G, sizeof(int));
    B.iw = xcalloc((size_t)G, sizeof(int));
    B.ih = xcalloc((size_t)G, sizeof(int));
    B.sized = xcalloc((size_t)G, sizeof(egc_image));
    B.ldst = xcalloc((size_t)G, sizeof(egc_status));
    B.lerr = xcalloc((size_t)G, sizeof(char *));
    B.res = xcalloc((size_t)G, sizeof(egc_cam_result));
    B.sens = xcalloc((size_t)G, sizeof(egc_sensitivity_result));
    B.why = xcalloc((size_t)G, sizeof(char *));
    for (int t = 0; t < G; t++) B.why[t] = xcalloc(512, 1);
    if (S->on[SM_GRID]) {
        S->pool_cap = 4 * G + 4;
        S->pool_x = xcalloc((size_t)S->pool_cap * chw, sizeof(float));
        S->pool_cls = xcalloc((size_t)S->pool_cap, sizeof(int));
        S->pool_id = xcalloc((size_t)S->pool_cap, sizeof(char *));
        S->grid_x4 = xcalloc(4 * chw, sizeof(float));
        S->grid_x = xcalloc(4 * chw, sizeof(float));
        S->grid_maps = xcalloc(4 * (size_t)hw, sizeof(float));
    }
    S->skipped = xcalloc((size_t)S->items.n, sizeof(char *));

    cli_progress pr;
    cli_progress_start(&pr, "sweep", S->items.n, quiet);
    char msg[1024];
    for (int g0 = 0; g0 < S->items.n; g0 += G) {
        if (S->time_limit > 0 && cli_now() - S->started >= S->time_limit) {
            S->n_not_started = S->items.n - g0;
            break;
        }
        int ng = EGC_MIN(G, S->items.n - g0), n = 0;
        /* the group decoded on all threads; failures recorded in input order, the rest
         * packed to the front */
        load_ctx lc = {S, g0, &B};
        cli_parallel_load(ng, load_one, &lc, B.ldst, B.lerr);
        for (int i = g0; i < g0 + ng; i++) {
            const cli_item *it = &S->items.v[i];
            int t = i - g0;
            egc_status lst = B.ldst[t];
            if (lst == EGC_OK && n != t) {
                memcpy(B.x + (size_t)n * chw, B.x + (size_t)t * chw, chw * sizeof(float));
                B.sized[n] = B.sized[t];
                memset(&B.sized[t], 0, sizeof B.sized[t]);
                B.iw[n] = B.iw[t];
                B.ih[n] = B.ih[t];
            }
            if (lst != EGC_OK) cli_restore_error(B.lerr[t]);
            free(B.lerr[t]);
            B.lerr[t] = NULL;
            if (lst != EGC_OK) {
                if (!quiet) cli_error(it->id, S->verbose);
                err_short(msg, sizeof msg);
                for (int k = 0; k < S->n_methods; k++) error_rows(S, it->id, S->methods[k].label, msg);
                rc = EXIT_SOME_FAILED;
                S->n_failed_inputs++;
                continue;
            }
            if (i < S->gallery) write_overlay(S, &B.sized[n], NULL, i, it->stem, NULL);
            B.slot[n++] = i;
        }
        fflush(S->rows);
        if (n) {
            if (egc_evaluator_logits(S->ev, B.x, n, B.logits) != EGC_OK) {
                err_short(msg, sizeof msg);
                for (int t = 0; t < n; t++)
                    for (int k = 0; k < S->n_methods; k++)
                        error_rows(S, S->items.v[B.slot[t]].id, S->methods[k].label, msg);
                rc = EXIT_SOME_FAILED;
                for (int t = 0; t < n; t++) egc_image_free(&B.sized[t]);
                n = 0;
            }
        }
        for (int t = 0; t < n; t++) {
            const float *lg = B.logits + (size_t)t * S->classes;
            int top = 0;
            for (int j = 1; j < S->classes; j++)
                if (lg[j] > lg[top]) top = j;
            B.top1[t] = top;
            B.lcls[t] = -1;
            if (has_loc(S)) {
                const cli_item *it = &S->items.v[B.slot[t]];
                int cl = -1;
                int r = loc_prepare(S, it, B.iw[t], B.ih[t], lg, &cl, B.masks + (size_t)t * hw,
                                    B.why[t], 512);
                B.lcls[t] = r == 1 ? cl : r == 0 ? -1 : -2;
                if (r == 0) {
                    S->skipped[B.slot[t]] = strdup(B.why[t]);
                    S->n_skipped++;
                }
            }
        }
        for (int k = 0; k < S->n_methods && n; k++) group_method(S, &B, k, n, g0);
        if (S->on[SM_GRID]) {
            for (int t = 0; t < n; t++)
                pool_add(S, B.x + (size_t)t * chw, B.top1[t], S->items.v[B.slot[t]].id);
            grids_run(S, g0 + G >= S->items.n);
        }
        for (int t = 0; t < n; t++) egc_image_free(&B.sized[t]);
        S->n_images_done += n;
        cli_progress_step(&pr, ng);
    }
    cli_progress_end(&pr);
    S->seconds = cli_now() - S->started;
    if (fclose(S->rows) != 0 || fclose(S->curves) != 0) {
        fprintf(stderr, "egcam sweep: error writing the rows or curves in %s\n", S->out_dir);
        rc = EXIT_SOME_FAILED;
    }
    if (sweep_report(S) != 0) rc = EXIT_SOME_FAILED;
    if (!quiet) {
        fprintf(stderr, "egcam sweep: %ld rows (image x method x metric) in %.1f s: %.2f rows/s; "
                        "%" PRId64 " evaluation forwards; explanations %.1f s\n",
                S->n_rows, S->seconds, S->seconds > 0 ? S->n_rows / S->seconds : 0.0,
                egc_evaluator_rows(S->ev), S->t_explain);
        if (S->n_not_started)
            fprintf(stderr, "egcam sweep: time limit of %g s reached: %d of %d images not "
                            "started (continue with --resume)\n", S->time_limit,
                    S->n_not_started, S->items.n);
        if (S->n_skipped)
            fprintf(stderr, "egcam sweep: %d images skipped for localisation (listed in "
                            "%s/skipped.csv)\n", S->n_skipped, S->out_dir);
        fprintf(stderr, "egcam sweep: report in %s/report.html\n", S->out_dir);
    }
    if (S->n_failed_inputs) rc = EXIT_SOME_FAILED;

    /* Cleanup. */
    egc_host_free(B.x); egc_host_free(B.xs); free(B.maps); free(B.ms); free(B.lmaps); free(B.logits);
    free(B.curves); free(B.vals); free(B.vals2); free(B.masks); free(B.slot); free(B.top1);
    free(B.lcls); free(B.cls_s); free(B.sel); free(B.iw); free(B.ih); free(B.sized);
    free(B.ldst); free(B.lerr);
    free(B.res); free(B.sens);
    free(B.curves_ins); free(B.vals_ins);
    for (int t = 0; t < G; t++) free(B.why[t]);
    free(B.why);
    free(S->pool_x); free(S->pool_cls); free(S->pool_id);
    free(S->grid_x4); free(S->grid_x); free(S->grid_maps);
    for (int i = 0; i < S->items.n; i++) free(S->skipped[i]);
    free(S->skipped);
    for (size_t i = 0; i < S->done_cap; i++) free(S->done[i]);
    free(S->done);
    for (int k = 0; k < S->n_methods; k++) {
        egc_explainer_destroy(S->methods[k].ex);
        free(S->methods[k].label);
    }
    free(S->methods);
    free(mlist);
    egc_evaluator_destroy(S->ev);
    egc_class_map_free(&S->cmap);
    egc_class_names_free(S->names, S->n_names);
    free(S->class_names_path);
    cli_items_free(&S->items);
    egc_model_destroy(m);
    return rc;
}

/* cmd_explain.c: `egcam explain`: saliency maps of one or several CAM methods for images,
 * folders and .npy tensors, written as .npy maps and coloured overlays (PNG/JPEG) with a
 * JSON-lines manifest and, on request, an HTML gallery (gallery.c). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "backend/backend.h"
#include "core/core.h"
#include "egcam/explain.h"
#include "io/image_internal.h"

static void help(FILE *f)
{
    fprintf(f,
        "usage: egcam explain --model M.onnx --method NAME[,NAME...] --out DIR [options] INPUTS...\n"
        "\n"
        "Computes a saliency map per input and method. INPUTS are image files (JPEG, PNG, BMP),\n"
        "folders (their images and .npy files, sorted by name) or .npy float32 tensors (N,C,H,W)\n"
        "or (C,H,W), already preprocessed (C: 3, or 1 for a model of gray images, which egcam\n"
        "makes gray as Pillow's convert(\"L\") does). Outputs, in DIR (with several methods, in\n"
        "DIR/<method>/):\n"
        "  <stem>.npy            the map: float32 HxW in [0,1] at the model's input size (a\n"
        "                        tensor file with N>1 images gives <stem>_<i>.npy)\n"
        "  <stem>_overlay.png    the map coloured and blended over the picture\n"
        "  DIR/manifest.jsonl    one line per input and method: class, label, score, every\n"
        "                        option that shaped the map, seed, image id, output files,\n"
        "                        status (failed inputs are recorded and skipped)\n"
        "  DIR/index.html        with --gallery: a table of the overlays, one row per input,\n"
        "                        one column per method (pictures in DIR/inputs/)\n"
        "\n"
        "methods: gradcam gradcampp xgradcam hirescam layercam scorecam smooth-gradcam\n"
        "         integrated-gradcam expected-gradcam expected-gradcampp expected-xgradcam\n"
        "         expected-hirescam expected-layercam\n"
        "\n"
        "options:\n"
        "  --model M.onnx        the classifier (required)\n"
        "  --method LIST         one method or a comma-separated list (required)\n"
        "  --out DIR             output folder, created if needed (required)\n"
        "  --layer L|auto        target layer: a tensor or node name (see `egcam info MODEL`),\n"
        "                        a module of a PyTorch export (layer4, features.29), or auto\n"
        "                        (default)\n"
        "  --preset P            tf | torchvision | cifar[:mean=..:std=..:bgr] (default: cifar\n"
        "                        for 32x32 inputs, else torchvision; see\n"
        "                        `egcam classify --help-presets`)\n"
        "  --input-size HxW      the image size a model exported with dynamic H and W runs\n"
        "                        at (its input's symbolic axes; default: the file's)\n"
        "  --class auto|K        explain the top-1 class (default) or class K for every input\n"
        "  --score logit|softmax the explained score y_c (default softmax for expected-gradcam,\n"
        "                        logit otherwise; Score-CAM always uses the probability)\n"
        "  --labels FILE         class names, one per line (default: beside the model)\n"
        "sampled methods (smooth-, integrated-, expected-*):\n"
        "  --samples S           samples per image (default 32; the most with --samples-tol)\n"
        "  --samples-tol T       adaptive sample counts: draw samples in rounds and stop an\n"
        "                        image once its map moved by at most T between two rounds\n"
        "                        (L2 distance of unit-norm Grad-CAM maps of the running\n"
        "                        estimate, 0..2; e.g. 0.05); the manifest gives each image's\n"
        "                        count, and its map equals a run with --samples of that count\n"
        "                        (default 0: fixed counts; alpha uniform, no --plan)\n"
        "  --samples-round R     samples per round of --samples-tol (default 8)\n"
        "  --baselines B         black | blur | uniform | self | FILE.npy (a reference file of\n"
        "                        preprocessed images, see `egcam refs build`; default black)\n"
        "  --noise RHO           noise sigma = RHO * (max x - min x) (default 0 for\n"
        "                        expected-gradcam, 0.15 otherwise)\n"
        "  --alpha uniform|grid|stratified\n"
        "                        interpolation coefficients a ~ U(0,1), a = s/S, or one\n"
        "                        a = (s + u)/S, u ~ U(0,1), per sample s (default uniform;\n"
        "                        stratified: the same expectation as uniform with less\n"
        "                        noise: 16 samples about as close as 32 uniform ones)\n"
        "  --combine A|B|C       A: expected gradient, B: expected-gradients attribution,\n"
        "                        C: mean of the per-sample maps (default B for\n"
        "                        expected-gradcam, the setting the evaluation study chose:\n"
        "                        docs/RESULTS.md); smooth-gradcam and expected-gradcampp/\n"
        "                        -xgradcam/-hirescam/-layercam always use A, integrated-gradcam\n"
        "                        C (with black baselines, grid alphas, no noise); the manifest\n"
        "                        records it\n"
        "  --seed N              random seed (default 0); draws are keyed by (seed, image, sample)\n"
        "  --plan FILE           explicit sample plan (CSV 'baseline,alpha,noise_seed', one row\n"
        "                        per sample; see include/egcam/explain.h)\n"
        "outputs:\n"
        "  --save LIST           what to write: npy, overlay or npy,overlay (default both)\n"
        "  --overlay-on WHAT     model: over the picture as the model saw it (the preset's crop\n"
        "                        and resize, or the denormalised tensor of a .npy input;\n"
        "                        default); original: over the full-size photo, the map put\n"
        "                        back through the preset's crop (the part the model did not\n"
        "                        see is dimmed; .npy inputs have no photo: model view)\n"
        "  --colormap C          turbo | jet | viridis (default turbo)\n"
        "  --overlay-alpha A     opacity of the colours, 0..1 (default 0.5)\n"
        "  --overlay-format F    png | jpg (default png)\n"
        "  --gallery             also write DIR/index.html (needs overlays)\n"
        "run:\n"
        "  --device D            cpu | cuda | cuda:N (default cpu; `egcam info` lists devices)\n"
        "  --precision P         fp32 | mixed (default fp32; mixed: the layers before the\n"
        "                        target in fp16 on CUDA tensor cores, the rest fp32; the CPU\n"
        "                        computes fp32 whatever is asked)\n"
        "  --batch B             rows (images x samples) per pass through the model (default 32,\n"
        "                        128 on a GPU, whose passes run faster large)\n"
        "  --max-memory SIZE     cap on the device memory of the run (e.g. 2G, 1.5GiB, 512Mi;\n"
        "                        K/M/G are powers of 1000, Ki/Mi/Gi of 1024), shared evenly\n"
        "                        by the methods: passes take fewer than B rows where B does\n"
        "                        not fit (the maps are the same; --verbose says how)\n"
        "  -q, --quiet           no progress or summary on stderr (errors are still printed)\n"
        "  -v, --verbose         full error traces; how a batch was split to fit the memory\n"
        "  -h, --help            this text\n"
        "\n"
        "exit codes: 0 every input explained, 1 some inputs failed (see the manifest),\n"
        "            2 usage error (bad option, unreadable option file, unwritable --out),\n"
        "            3 model or device error (model missing, corrupt or unsupported; no GPU)\n"
        "\n"
        "examples:\n"
        "  egcam explain --model ../shared/models/resnet20_cifar10.onnx --method gradcam \\\n"
        "      --out maps ../shared/data/cifar10-test/cat\n"
        "  egcam explain --model ../shared/models/mobilenet_v2_imagenet.onnx --preset tf \\\n"
        "      --method gradcam,gradcampp,expected-gradcam --samples 16 --gallery \\\n"
        "      --out gallery ../shared/data/photos\n"
        "  egcam explain --model ../shared/models/mobilenet_v2_imagenet.onnx --preset tf \\\n"
        "      --method expected-gradcam --baselines blur --score softmax --combine B \\\n"
        "      --overlay-on original --colormap viridis --out maps ../shared/data/photos/cat.bmp\n");
}

typedef struct stem_ref {
    const char *stem;
    int index;
} stem_ref;

static int cmp_stem_ref(const void *a, const void *b)
{
    const stem_ref *x = a, *y = b;
    int c = strcmp(x->stem, y->stem);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* names[i] = the output file stem of item i: <stem>, or <stem>__<k> for the k-th repetition
 * of a stem (inputs from different folders with the same name). */
static char **unique_names(const cli_items *items)
{
    int n = items->n;
    char **names = calloc((size_t)(n ? n : 1), sizeof *names);
    stem_ref *r = malloc((size_t)(n ? n : 1) * sizeof *r);
    if (!names || !r) {
        fprintf(stderr, "egcam: out of memory\n");
        exit(EXIT_MODEL);
    }
    for (int i = 0; i < n; i++) {
        r[i].stem = items->v[i].stem;
        r[i].index = i;
    }
    qsort(r, (size_t)n, sizeof *r, cmp_stem_ref);
    for (int k = 0, rep = 0; k < n; k++) {
        rep = (k > 0 && !strcmp(r[k].stem, r[k - 1].stem)) ? rep + 1 : 0;
        size_t len = strlen(r[k].stem) + 32;
        char *s = malloc(len);
        if (!s) exit(EXIT_MODEL);
        if (rep) snprintf(s, len, "%s__%d", r[k].stem, rep + 1);
        else snprintf(s, len, "%s", r[k].stem);
        names[r[k].index] = s;
    }
    free(r);
    return names;
}

typedef struct run_cfg {
    egc_explainer **ex;
    egc_method *methods;
    int n_methods;
    const char *out_dir;
    char **labels;
    char **names;
    int classes;
    egc_preset preset;
    int verbose;
    FILE *manifest;
    int in_h, in_w; /* --input-size (0: the file's own, not recorded) */
} run_cfg;

/* How overlays are drawn. */
typedef struct overlay_cfg {
    int npy, overlay, gallery;  /* what to write */
    int on_original;            /* over the full-size photo instead of the model's view */
    egc_colormap cmap;
    float alpha;
    const char *ext;            /* "png" or "jpg" */
} overlay_cfg;

/* The first line of an error message without its trailing " [file:line]". */
static const char *short_error(const char *msg, char *buf, size_t cap)
{
    size_t n = strcspn(msg, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(buf, msg, n);
    buf[n] = '\0';
    char *br = strrchr(buf, '[');
    if (br && br > buf && br[-1] == ' ' && n && buf[n - 1] == ']') br[-1] = '\0';
    return buf;
}

static void manifest_error(const run_cfg *c, const cli_item *it, const char *method,
                           const char *msg_full)
{
    char buf[1024];
    const char *msg = short_error(msg_full, buf, sizeof buf);
    FILE *f = c->manifest;
    fprintf(f, "{\"input\": ");
    cli_json_str(f, it->id);
    if (method) {
        fprintf(f, ", \"method\": ");
        cli_json_str(f, method);
    }
    fprintf(f, ", \"status\": \"error\", \"error\": ");
    cli_json_str(f, msg);
    fprintf(f, "}\n");
}

/* One line for a map that was written: npy_path and overlay_path are NULL when that kind
 * of output was not asked for. */
static void manifest_ok(const run_cfg *c, const cli_item *it, const egc_explainer *e,
                        const char *npy_path, const char *overlay_path, const egc_cam_result *r,
                        int class_given)
{
    FILE *f = c->manifest;
    const egc_explain_options *o = egc_explainer_options(e);
    fprintf(f, "{\"input\": ");
    cli_json_str(f, it->id);
    if (npy_path) {
        fprintf(f, ", \"output\": ");
        cli_json_str(f, npy_path);
    }
    if (overlay_path) {
        fprintf(f, ", \"overlay\": ");
        cli_json_str(f, overlay_path);
    }
    fprintf(f, ", \"method\": \"%s\", \"class\": %d", egc_method_name(o->method), r->cls);
    if (c->labels && c->labels[r->cls]) {
        fprintf(f, ", \"label\": ");
        cli_json_str(f, c->labels[r->cls]);
    }
    fprintf(f, ", \"class_from\": \"%s\"", class_given ? "given" : "top1");
    fprintf(f, ", \"score\": %.9g, \"score_kind\": \"%s\", \"layer\": ", (double)r->score,
            egc_score_name(o->score));
    cli_json_str(f, egc_explainer_layer(e));
    fprintf(f, ", \"preset\": \"%s\", \"precision\": \"%s\"", egc_preset_name(c->preset),
            egc_precision_name(o->precision));
    if (c->in_h > 0) fprintf(f, ", \"input_size\": [%d, %d]", c->in_h, c->in_w);
    if (egc_method_is_sampled(o->method)) {
        fprintf(f, ", \"samples\": %d", r->samples);
        if (o->samples_tol > 0.0f)
            fprintf(f, ", \"samples_max\": %d, \"samples_tol\": %.9g, \"samples_round\": %d",
                    egc_explainer_samples(e), (double)o->samples_tol, o->samples_round);
        cli_json_sample_options(f, o, 1);
    }
    fprintf(f, ", \"seed\": %" PRIu64 ", \"image_id\": \"%016" PRIx64 "\", \"status\": \"ok\"}\n",
            o->seed, r->image_id);
}

/* snprintf for file paths: a path that does not fit is a usage error (exit 2). */
static void pathf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "egcam explain: output path '%s...' is too long (choose a shorter "
                        "--out)\n", buf);
        exit(EXIT_USAGE);
    }
}

/* Parses --save: a comma-separated subset of npy, overlay. Returns 0 after printing why. */
static int parse_save(const char *val, overlay_cfg *oc)
{
    oc->npy = oc->overlay = 0;
    char *list = strdup(val), *save = NULL;
    if (!list) return 0;
    int ok = 1;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "npy")) oc->npy = 1;
        else if (!strcmp(t, "overlay")) oc->overlay = 1;
        else {
            fprintf(stderr, "egcam explain: --save '%s': '%s' is not npy or overlay (e.g. "
                            "--save npy,overlay)\n", val, t);
            ok = 0;
        }
    }
    free(list);
    if (ok && !oc->npy && !oc->overlay) {
        fprintf(stderr, "egcam explain: --save '%s' names nothing to write (npy, overlay)\n", val);
        ok = 0;
    }
    return ok;
}

/* The picture an overlay of item it is drawn on and where the map goes in it: the model's
 * view (sized, copied) with the map covering all of it, or the full-size photo with the
 * preset's crop box. On failure the status is returned with the error recorded. */
static egc_status overlay_base(const cli_item *it, const egc_image *sized, const overlay_cfg *oc,
                               egc_preset preset, int W, int H, egc_image *base, float box[4])
{
    memset(base, 0, sizeof *base);
    if (oc->on_original && it->index < 0) {
        const char *dot = strrchr(it->path, '.');
        if (!(dot && !strcasecmp(dot, ".npy"))) {
            egc_status st = egc_image_load(it->path, base);
            if (st != EGC_OK) return st;
            st = egc_preset_crop_box(preset, base->w, base->h, W, H, box);
            if (st != EGC_OK) egc_image_free(base);
            return st;
        }
    }
    size_t bytes = (size_t)sized->w * (size_t)sized->h * 3;
    base->rgb = malloc(bytes);
    if (!base->rgb) {
        fprintf(stderr, "egcam explain: out of memory\n");
        exit(EXIT_MODEL);
    }
    memcpy(base->rgb, sized->rgb, bytes);
    base->w = sized->w;
    base->h = sized->h;
    box[0] = box[1] = 0.0f;
    box[2] = (float)sized->w;
    box[3] = (float)sized->h;
    return EGC_OK;
}

/* Writes the gallery's copy of the picture: at most 1024 pixels on the long side. */
static egc_status write_gallery_picture(const char *path, const egc_image *pic)
{
    int w = pic->w, h = pic->h, side = w > h ? w : h;
    if (side <= 1024) return egc_image_save(path, pic, 90);
    int nw = (int)((double)w * 1024 / side + 0.5), nh = (int)((double)h * 1024 / side + 0.5);
    egc_image small;
    egc_status st = egc_image_resize_bilinear(pic, nw < 1 ? 1 : nw, nh < 1 ? 1 : nh, &small);
    if (st != EGC_OK) return st;
    st = egc_image_save(path, &small, 90);
    egc_image_free(&small);
    return st;
}

/* What writing one input's files left for the ordered pass: its stderr lines (as
 * cli_error prints them), whether something failed outside the methods, and the gallery
 * picture; per method (cell_out) the error or the paths written. Strings are malloc'd. */
typedef struct item_out {
    char *msgs;
    int failed;
    char *picture;
} item_out;

typedef struct cell_out {
    char *err;             /* why this method's outputs are missing, or NULL */
    char *npy, *ovl, *rel; /* the map, the overlay, the overlay relative to the output dir */
} cell_out;

/* Appends cli_error's line for what (the current error message) to io->msgs. */
static void item_msg(item_out *io, const char *what, int verbose)
{
    char line[4096];
    cli_error_format(line, sizeof line, what, egc_last_error(), verbose);
    size_t a = io->msgs ? strlen(io->msgs) : 0, b = strlen(line);
    char *m = realloc(io->msgs, a + b + 1);
    if (!m) return;
    memcpy(m + a, line, b + 1);
    io->msgs = m;
}

static char *xstrdup(const char *s)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d) {
        fprintf(stderr, "egcam explain: out of memory\n");
        exit(EXIT_MODEL);
    }
    return d;
}

typedef struct write_ctx {
    const run_cfg *cfg;
    const overlay_cfg *oc;
    const cli_item *items;
    const int *slot;
    egc_image *sized;
    const egc_cam_result *res;
    const float *maps;
    const int *ran;
    char *const *run_err;
    const char *out_dir;
    egc_preset preset;
    int W, H, B, verbose;
    item_out *outs;
    cell_out *couts;
} write_ctx;

/* Writes the files of batch position t (thread-safe for distinct t): the overlay base and
 * gallery picture, then per method the map (.npy) and the overlay. Frees sized[t]. */
static void write_item(int64_t t64, void *arg)
{
    const write_ctx *w = arg;
    const run_cfg *cfg = w->cfg;
    const overlay_cfg *oc = w->oc;
    int t = (int)t64, n_methods = cfg->n_methods;
    const cli_item *it = &w->items[w->slot[t]];
    const char *stem = cfg->names[w->slot[t]];
    item_out *io = &w->outs[t];
    char path[4096], ovl[4096], base_err[1024] = "";
    egc_image base = {0, 0, NULL};
    float box[4];
    int base_ok = 1;
    if (oc->overlay) {
        if (overlay_base(it, &w->sized[t], oc, w->preset, w->W, w->H, &base, box) != EGC_OK) {
            item_msg(io, it->id, w->verbose);
            short_error(egc_last_error(), base_err, sizeof base_err);
            base_ok = 0;
            io->failed = 1;
        } else if (oc->gallery) {
            char rel[4096];
            pathf(rel, sizeof rel, "inputs/%s.%s", stem, oc->ext);
            pathf(path, sizeof path, "%s/%s", w->out_dir, rel);
            const egc_image *pic = &base;
            egc_image orig = {0, 0, NULL};
            /* The first column shows the photo itself, even when the overlays are drawn over
             * the model's view. */
            if (!oc->on_original && it->index < 0 && egc_image_load(it->path, &orig) == EGC_OK)
                pic = &orig;
            if (write_gallery_picture(path, pic) == EGC_OK) io->picture = xstrdup(rel);
            else item_msg(io, path, w->verbose);
            egc_image_free(&orig);
        }
    }
    for (int k = 0; k < n_methods; k++) {
        const char *mname = egc_method_name(cfg->methods[k]);
        const egc_cam_result *r = w->res + (size_t)k * (size_t)w->B + t;
        cell_out *co = &w->couts[(size_t)t * n_methods + k];
        const char *err = NULL;
        char errbuf[1024];
        if (!w->ran[k]) err = w->run_err[k] ? w->run_err[k] : "the method failed";
        const char *dir_m = n_methods > 1 ? mname : NULL;
        if (!err && oc->npy) {
            if (dir_m) pathf(path, sizeof path, "%s/%s/%s.npy", w->out_dir, dir_m, stem);
            else pathf(path, sizeof path, "%s/%s.npy", w->out_dir, stem);
            egc_tensor tt;
            int64_t dims[2] = {w->H, w->W};
            tt.shape = egc_shape_make(2, dims);
            tt.data = r->map;
            if (egc_npy_write(path, &tt) != EGC_OK) {
                item_msg(io, path, w->verbose);
                err = short_error(egc_last_error(), errbuf, sizeof errbuf);
            } else {
                co->npy = xstrdup(path);
            }
        }
        char rel[4096] = "";
        if (!err && oc->overlay) {
            if (!base_ok) {
                err = base_err;
            } else {
                if (dir_m) pathf(rel, sizeof rel, "%s/%s_overlay.%s", dir_m, stem, oc->ext);
                else pathf(rel, sizeof rel, "%s_overlay.%s", stem, oc->ext);
                pathf(ovl, sizeof ovl, "%s/%s", w->out_dir, rel);
                egc_image img = {0, 0, NULL};
                egc_status st = egc_overlay_box(&base, r->map, w->W, w->H, box, oc->cmap,
                                                oc->alpha, &img);
                if (st == EGC_OK) st = egc_image_save(ovl, &img, 90);
                egc_image_free(&img);
                if (st != EGC_OK) {
                    item_msg(io, ovl, w->verbose);
                    err = short_error(egc_last_error(), errbuf, sizeof errbuf);
                } else {
                    co->ovl = xstrdup(ovl);
                }
            }
        }
        if (err) {
            co->err = xstrdup(err);
            continue;
        }
        co->rel = xstrdup(rel);
    }
    egc_image_free(&base);
    egc_image_free(&w->sized[t]);
}

/* One batch's buffers: inputs (page-locked for a CUDA device), maps and results per method,
 * and the batch's inputs that failed to load (reported when the batch is written). */
typedef struct batch_set {
    float *x, *maps;          /* [B, per], [n_methods, B, hw] */
    egc_cam_result *res;      /* [n_methods, B] */
    int *cls, *slot;          /* [B] class asked, index into the items */
    egc_image *sized;         /* [B] the model's view (overlays) */
    int *ran;                 /* [n_methods] the method ran on this batch */
    char **run_err;           /* [n_methods] why not */
    int nb_cap;               /* B: the stride of maps and res per method */
    int nb;                   /* inputs loaded */
    int n_fail;               /* inputs that failed to load */
    int *fail_idx;            /* [B] their item indices */
    char **fail_err;          /* [B] their messages */
} batch_set;

static void batch_set_alloc(batch_set *b, const char *device, int B, size_t per, size_t hw,
                            int n_methods)
{
    void *hp = NULL;
    b->nb_cap = B;
    if (egc_host_alloc(device, (size_t)B * per * sizeof(float), &hp) == EGC_OK) b->x = hp;
    /* page-locked for a CUDA device too: each method's maps of a batch lie back to back there,
     * so the explainer downloads them straight into it */
    hp = NULL;
    if (egc_host_alloc(device, (size_t)n_methods * (size_t)B * hw * sizeof(float), &hp) == EGC_OK)
        b->maps = hp;
    b->res = calloc((size_t)n_methods * (size_t)B, sizeof *b->res);
    b->cls = calloc((size_t)B, sizeof *b->cls);
    b->slot = calloc((size_t)B, sizeof *b->slot);
    b->sized = calloc((size_t)B, sizeof *b->sized);
    b->ran = calloc((size_t)n_methods, sizeof *b->ran);
    b->run_err = calloc((size_t)n_methods, sizeof *b->run_err);
    b->fail_idx = calloc((size_t)B, sizeof *b->fail_idx);
    b->fail_err = calloc((size_t)B, sizeof *b->fail_err);
    if (!b->x || !b->maps || !b->res || !b->cls || !b->slot || !b->sized || !b->ran ||
        !b->run_err || !b->fail_idx || !b->fail_err) {
        fprintf(stderr, "egcam explain: out of memory\n");
        exit(EXIT_MODEL);
    }
}

static void batch_set_free(batch_set *b, int B, int n_methods)
{
    for (int t = 0; t < B; t++) {
        egc_image_free(&b->sized[t]);
        free(b->fail_err[t]);
    }
    for (int k = 0; k < n_methods; k++) free(b->run_err[k]);
    egc_host_free(b->x);
    egc_host_free(b->maps);
    free(b->res);
    free(b->cls);
    free(b->slot);
    free(b->sized);
    free(b->ran);
    free(b->run_err);
    free(b->fail_idx);
    free(b->fail_err);
}

/* What the loading and writing of batches share. The counters, the progress line, the
 * manifest and the gallery are touched by one thread at a time: the one that loads and
 * writes (the explainers run on the other). */
typedef struct pipe_ctx {
    const run_cfg *cfg;
    const overlay_cfg *oc;
    const cli_item *items;
    int n_items, next;        /* inputs, and the first not loaded yet */
    egc_preset preset;
    int C, W, H, B, verbose, need_sized, class_k;
    size_t per;
    const char *out_dir;
    cli_gallery *gal;         /* NULL without --gallery */
    cli_progress *pr;
    egc_status *ldst;         /* [B] scratch of the loads */
    char **lerr;
    item_out *outs;           /* [B] scratch of the writes */
    cell_out *couts;          /* [B, n_methods] */
    int rc, n_done, n_failed_items;
} pipe_ctx;

/* Loads the next B inputs into b on all threads: the good ones packed to the front (b->nb),
 * the failures kept with their messages (b->n_fail) for write_batch to report. */
static void load_batch(pipe_ctx *P, batch_set *b)
{
    int k_in = P->n_items - P->next < P->B ? P->n_items - P->next : P->B, i = P->next;
    b->nb = b->n_fail = 0;
    cli_load_rows(P->items + i, k_in, P->preset, P->C, P->W, P->H, b->x,
                  P->need_sized ? b->sized : NULL, P->ldst, P->lerr);
    for (int t = 0; t < k_in; t++, i++) {
        if (P->ldst[t] != EGC_OK) {
            b->fail_idx[b->n_fail] = i;
            b->fail_err[b->n_fail++] = P->lerr[t]; /* owned by b now (NULL: out of memory) */
            P->lerr[t] = NULL;
            continue;
        }
        int nb = b->nb;
        if (nb != t) {
            memcpy(b->x + (size_t)nb * P->per, b->x + (size_t)t * P->per, P->per * sizeof(float));
            if (P->need_sized) {
                b->sized[nb] = b->sized[t];
                memset(&b->sized[t], 0, sizeof b->sized[t]);
            }
        }
        b->cls[nb] = P->class_k;
        b->slot[b->nb++] = i;
    }
    P->next += k_in;
}

/* Every method on the b->nb inputs of b (the device's part); failures are printed and kept
 * per method for write_batch. */
static void run_batch(egc_explainer **ex, const egc_method *methods, int n_methods, batch_set *b,
                      size_t hw, int verbose, int *rc)
{
    for (int k = 0; k < n_methods; k++) {
        egc_cam_result *rk = b->res + (size_t)k * (size_t)b->nb_cap;
        for (int t = 0; t < b->nb; t++) {
            rk[t].raw = NULL;
            rk[t].map = b->maps + ((size_t)k * (size_t)b->nb_cap + (size_t)t) * hw;
        }
        b->ran[k] = egc_explainer_run(ex[k], b->x, b->nb, b->cls, rk) == EGC_OK;
        free(b->run_err[k]);
        b->run_err[k] = NULL;
        if (!b->ran[k]) {
            cli_error(egc_method_name(methods[k]), verbose);
            b->run_err[k] = strdup(egc_last_error());
            *rc = EXIT_SOME_FAILED;
        }
    }
}

/* Reports b's load failures, then writes the files of its explained inputs on all threads
 * and, in input order, their messages, manifest lines and gallery cells; b is empty after. */
static void write_batch(pipe_ctx *P, batch_set *b, egc_explainer *const *ex)
{
    const run_cfg *cfg = P->cfg;
    int n_methods = cfg->n_methods;
    for (int f = 0; f < b->n_fail; f++) {
        const cli_item *it = &P->items[b->fail_idx[f]];
        cli_restore_error(b->fail_err[f]);
        cli_error(it->id, P->verbose);
        manifest_error(cfg, it, NULL, egc_last_error());
        if (P->gal) {
            char buf[1024];
            P->gal->rows[b->fail_idx[f]].error =
                strdup(short_error(egc_last_error(), buf, sizeof buf));
        }
        P->rc = EXIT_SOME_FAILED;
        P->n_failed_items++;
        cli_progress_step(P->pr, 1);
        free(b->fail_err[f]);
        b->fail_err[f] = NULL;
    }
    if (b->nb) {
        write_ctx wc = {cfg, P->oc, P->items, b->slot, b->sized, b->res, b->maps, b->ran,
                        b->run_err, P->out_dir, P->preset, P->W, P->H, b->nb_cap, P->verbose,
                        P->outs, P->couts};
        egc_parallel_for(b->nb, write_item, &wc);
    }
    for (int t = 0; t < b->nb; t++) {
        const cli_item *it = &P->items[b->slot[t]];
        item_out *io = &P->outs[t];
        if (io->msgs) fputs(io->msgs, stderr);
        if (io->failed) P->rc = EXIT_SOME_FAILED;
        if (io->picture && P->gal) {
            P->gal->rows[b->slot[t]].picture = io->picture;
            io->picture = NULL;
        }
        int item_failed = 0;
        for (int k = 0; k < n_methods; k++) {
            const char *mname = egc_method_name(cfg->methods[k]);
            const egc_cam_result *r = b->res + (size_t)k * (size_t)b->nb_cap + t;
            cell_out *co = &P->couts[(size_t)t * n_methods + k];
            cli_gallery_cell *cell =
                P->gal ? &P->gal->cells[(size_t)b->slot[t] * n_methods + k] : NULL;
            if (co->err) {
                manifest_error(cfg, it, mname, co->err);
                P->rc = EXIT_SOME_FAILED;
                item_failed = 1;
                if (cell) {
                    char buf[1024];
                    cell->error = strdup(short_error(co->err, buf, sizeof buf));
                }
            } else {
                manifest_ok(cfg, it, ex[k], co->npy, co->ovl, r, P->class_k >= 0);
                if (cell) {
                    cell->ok = 1;
                    cell->cls = r->cls;
                    cell->score = r->score;
                    cell->score_kind = egc_score_name(egc_explainer_options(ex[k])->score);
                    cell->overlay = co->rel;
                    co->rel = NULL;
                }
            }
            free(co->err);
            free(co->npy);
            free(co->ovl);
            free(co->rel);
            memset(co, 0, sizeof *co);
        }
        free(io->picture);
        free(io->msgs);
        memset(io, 0, sizeof *io);
        if (item_failed) P->n_failed_items++;
        else P->n_done++;
    }
    fflush(cfg->manifest);
    cli_progress_step(P->pr, b->nb);
    b->nb = b->n_fail = 0;
}

/* The other thread's part of one step: the files of the previous batch (write, may be NULL),
 * then the next batch's inputs (load, may be NULL). */
typedef struct pipe_job {
    pipe_ctx *P;
    batch_set *write, *load;
    egc_explainer *const *ex;
} pipe_job;

static void *pipe_worker(void *arg)
{
    pipe_job *j = arg;
    if (j->write) write_batch(j->P, j->write, j->ex);
    if (j->load) load_batch(j->P, j->load);
    return NULL;
}

int cmd_explain(int argc, char **argv)
{
    const char *model_path = NULL, *method_list = NULL, *out_dir = NULL;
    const char *preset_name = NULL, *labels_path = NULL, *device = "cpu", *save = NULL;
    int quiet = 0, verbose = 0, class_k = -1, batch_given = 0;
    overlay_cfg oc = {1, 1, 0, 0, EGC_CMAP_TURBO, 0.5f, "png"};
    egc_explain_options o;
    egc_explain_options_default(&o);
    int in_h = 0, in_w = 0; /* --input-size */
    /* O_MOPT: a method option, applied by cli_method_option (the same as in `egcam sweep`). */
    enum {
        O_MODEL = 256, O_METHOD, O_OUT, O_MOPT, O_PRESET, O_CLASS, O_DEVICE, O_BATCH, O_LABELS,
        O_SAVE, O_OVERLAY_ON, O_COLORMAP, O_OVERLAY_ALPHA, O_OVERLAY_FORMAT, O_GALLERY,
        O_PRECISION, O_MAXMEM, O_INSIZE
    };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},     {"method", required_argument, 0, O_METHOD},
        {"out", required_argument, 0, O_OUT},         {"preset", required_argument, 0, O_PRESET},
        CLI_METHOD_LONG_OPTIONS(O_MOPT),
        {"class", required_argument, 0, O_CLASS},     {"device", required_argument, 0, O_DEVICE},
        {"batch", required_argument, 0, O_BATCH},     {"labels", required_argument, 0, O_LABELS},
        {"save", required_argument, 0, O_SAVE},
        {"overlay-on", required_argument, 0, O_OVERLAY_ON},
        {"colormap", required_argument, 0, O_COLORMAP},
        {"overlay-alpha", required_argument, 0, O_OVERLAY_ALPHA},
        {"overlay-format", required_argument, 0, O_OVERLAY_FORMAT},
        {"gallery", no_argument, 0, O_GALLERY},
        {"precision", required_argument, 0, O_PRECISION},
        {"max-memory", required_argument, 0, O_MAXMEM},
        {"input-size", required_argument, 0, O_INSIZE},
        {"quiet", no_argument, 0, 'q'},               {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};
    static const char *const on_names[] = {"model", "original"};
    static const char *const cmap_names[] = {"turbo", "jet", "viridis"};
    static const char *const fmt_names[] = {"png", "jpg"};
    int c, v, li = 0;
    long lv;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qvh", opts, &li)) != -1) {
        switch (c) {
        case O_MODEL: model_path = optarg; break;
        case O_METHOD: method_list = optarg; break;
        case O_OUT: out_dir = optarg; break;
        case O_MOPT:
            if (cli_method_option("explain", opts[li].name, optarg, &o) != 1) return EXIT_USAGE;
            break;
        case O_PRESET: preset_name = optarg; break;
        case O_INSIZE:
            if (!cli_parse_hw("explain", "input-size", optarg, &in_h, &in_w)) return EXIT_USAGE;
            break;
        case O_CLASS:
            if (!strcmp(optarg, "auto")) class_k = -1;
            else if (!cli_parse_long("explain", "--class", optarg, 0, 1 << 24, &lv))
                return EXIT_USAGE;
            else class_k = (int)lv;
            break;
        case O_DEVICE: device = optarg; break;
        case O_BATCH:
            if (!cli_parse_long("explain", "--batch", optarg, 1, 4096, &lv)) return EXIT_USAGE;
            o.batch = (int)lv;
            batch_given = 1;
            break;
        case O_LABELS: labels_path = optarg; break;
        case O_SAVE: save = optarg; break;
        case O_OVERLAY_ON:
            if (!cli_parse_choice("explain", "--overlay-on", optarg, on_names, 2, &v))
                return EXIT_USAGE;
            oc.on_original = v;
            break;
        case O_COLORMAP:
            if (!cli_parse_choice("explain", "--colormap", optarg, cmap_names, 3, &v))
                return EXIT_USAGE;
            if (egc_colormap_parse(optarg, &oc.cmap) != EGC_OK) return EXIT_USAGE;
            break;
        case O_OVERLAY_ALPHA: {
            char *end;
            errno = 0;
            double d = strtod(optarg, &end);
            if (errno || *end || end == optarg || !(d >= 0 && d <= 1)) {
                fprintf(stderr, "egcam explain: --overlay-alpha '%s' must be a number in 0..1 "
                                "(the opacity of the colours)\n", optarg);
                return EXIT_USAGE;
            }
            oc.alpha = (float)d;
            break;
        }
        case O_OVERLAY_FORMAT:
            if (!cli_parse_choice("explain", "--overlay-format", optarg, fmt_names, 2, &v))
                return EXIT_USAGE;
            oc.ext = fmt_names[v];
            break;
        case O_GALLERY: oc.gallery = 1; break;
        case O_PRECISION:
            if (!cli_parse_precision("explain", optarg, &o.precision)) return EXIT_USAGE;
            break;
        case O_MAXMEM:
            if (!cli_parse_size("explain", "--max-memory", optarg, &o.max_device_bytes))
                return EXIT_USAGE;
            break;
        case 'q': quiet = 1; break;
        case 'v': verbose = 1; break;
        case 'h': help(stdout); return EXIT_ALL_OK;
        default: return cli_bad_option("explain", argc, argv, c);
        }
    }
    if (!model_path || !method_list || !out_dir) {
        fprintf(stderr, "egcam explain: %s%s%s%s required (see `egcam explain --help`)\n",
                model_path ? "" : "--model ", method_list ? "" : "--method ",
                out_dir ? "" : "--out ",
                (!model_path + !method_list + !out_dir) > 1 ? "are" : "is");
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "egcam explain: no inputs given (image files, folders or .npy files "
                        "after the options)\n");
        return EXIT_USAGE;
    }
    if (save && !parse_save(save, &oc)) return EXIT_USAGE;
    if (oc.gallery && !oc.overlay) {
        fprintf(stderr, "egcam explain: --gallery shows overlays, but --save '%s' does not "
                        "write them: add overlay (--save npy,overlay)\n", save);
        return EXIT_USAGE;
    }

    /* Methods. */
    egc_method methods[EGC_METHOD_COUNT];
    int n_methods = 0;
    {
        char *list = strdup(method_list), *sv = NULL;
        if (!list) return EXIT_MODEL;
        for (char *t = strtok_r(list, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
            egc_method m;
            if (egc_method_parse(t, &m) != EGC_OK) {
                cli_error("--method", 0);
                fprintf(stderr, "egcam explain: see `egcam explain --help` for the methods\n");
                free(list);
                return EXIT_USAGE;
            }
            int dup = 0;
            for (int i = 0; i < n_methods; i++) dup |= methods[i] == m;
            if (dup) {
                fprintf(stderr, "egcam explain: method '%s' is listed twice in --method\n", t);
                free(list);
                return EXIT_USAGE;
            }
            egc_explain_options om = o;
            om.method = m;
            if (!cli_check_method_options("explain", t, &om)) {
                free(list);
                return EXIT_USAGE;
            }
            methods[n_methods++] = m;
        }
        free(list);
        if (!n_methods) {
            fprintf(stderr, "egcam explain: --method names no method\n");
            return EXIT_USAGE;
        }
    }

    egc_model *m = NULL;
    egc_status lst = egc_model_load_sized(model_path, in_h, in_w, &m);
    if (lst != EGC_OK) {
        cli_model_error(model_path, lst, verbose);
        return EXIT_MODEL;
    }
    if (!preset_name) preset_name = cli_default_preset(m);
    if (!cli_parse_preset("explain", preset_name, &o.preset)) {
        egc_model_destroy(m);
        return EXIT_USAGE;
    }
    int ch, H, W, classes = egc_model_num_classes(m);
    egc_model_input_chw(m, &ch, &H, &W);
    if (class_k >= classes) {
        fprintf(stderr, "egcam explain: --class %d is out of range (the model has %d classes: "
                        "0..%d)\n", class_k, classes, classes - 1);
        egc_model_destroy(m);
        return EXIT_USAGE;
    }

    /* Inputs, path by path, so that a path giving no image can be named in the manifest. */
    cli_items items;
    memset(&items, 0, sizeof items);
    int n_bad = 0, n_paths = argc - optind;
    char **bad_paths = calloc((size_t)n_paths, sizeof *bad_paths);
    if (!bad_paths) exit(EXIT_MODEL);
    for (int p = 0; p < n_paths; p++) {
        cli_items one;
        int bad = 0;
        cli_expand_inputs(argv + optind + p, 1, &one, &bad);
        if (bad) {
            bad_paths[p] = argv[optind + p];
            n_bad += bad;
        }
        if (items.n + one.n > items.cap) {
            items.cap = 2 * (items.n + one.n) + 16;
            items.v = realloc(items.v, (size_t)items.cap * sizeof *items.v);
            if (!items.v) exit(EXIT_MODEL);
        }
        if (one.n) memcpy(items.v + items.n, one.v, (size_t)one.n * sizeof *one.v);
        items.n += one.n;
        free(one.v);
    }
    if (!batch_given) o.batch = cli_default_batch(device, o.batch);
    int B = o.batch;
    /* Images per call: the session rows hold images x samples; B images keep one clean pass
     * per chunk. */
    egc_explainer *ex[EGC_METHOD_COUNT] = {0};
    int rc = EXIT_ALL_OK;
    for (int k = 0; k < n_methods; k++) {
        egc_explain_options mo = o;
        mo.method = methods[k];
        mo.max_device_bytes = o.max_device_bytes / (size_t)n_methods; /* one share each */
        if (o.max_device_bytes && !mo.max_device_bytes) mo.max_device_bytes = 1;
        egc_status st = egc_explainer_create(m, device, &mo, &ex[k]);
        if (st != EGC_OK) {
            /* Bad options or option files are usage errors; the rest is the model or device. */
            int usage = st == EGC_E_ARG || st == EGC_E_IO || st == EGC_E_FORMAT ||
                        st == EGC_E_SHAPE;
            if (st == EGC_E_ARG && o.layer && strstr(egc_last_error(), o.layer)) {
                cli_error("--layer", verbose); /* the message says how to list the layers */
            } else if (o.baseline_file && strstr(egc_last_error(), o.baseline_file)) {
                cli_error("--baselines", verbose);
                fprintf(stderr, "egcam explain: a reference file is an (R,C,H,W) float32 .npy "
                                "at the model's input size: make one with `egcam refs build`\n");
            } else if (o.plan_file && strstr(egc_last_error(), o.plan_file)) {
                cli_error("--plan", verbose);
                fprintf(stderr, "egcam explain: a sample plan is a CSV file with the header "
                                "'baseline,alpha,noise_seed' (docs/USER_GUIDE.md)\n");
            } else if (st == EGC_E_DEVICE || st == EGC_E_UNSUPPORTED) {
                cli_error(device, verbose);
                fprintf(stderr, "egcam explain: `egcam info` lists the devices; --device cpu "
                                "always works\n");
            } else {
                cli_error(egc_method_name(methods[k]), verbose);
            }
            rc = usage ? EXIT_USAGE : EXIT_MODEL;
            goto cleanup_ex;
        }
        if (verbose && egc_explainer_rows(ex[k]) < o.batch) {
            char used[32], cap[32];
            fprintf(stderr, "egcam explain: %s: batch %d split into passes of %d rows (device "
                            "memory %s", egc_method_name(methods[k]), o.batch,
                    egc_explainer_rows(ex[k]),
                    cli_format_bytes(egc_explainer_device_bytes(ex[k]), used, sizeof used));
            if (mo.max_device_bytes)
                fprintf(stderr, ", cap %s", cli_format_bytes(mo.max_device_bytes, cap, sizeof cap));
            fprintf(stderr, ")\n");
        }
    }
    if (cli_mkdirs(out_dir) != 0) {
        fprintf(stderr, "egcam explain: choose another --out folder\n");
        rc = EXIT_USAGE;
        goto cleanup_ex;
    }
    char path[4096];
    if (n_methods > 1)
        for (int k = 0; k < n_methods; k++) {
            pathf(path, sizeof path, "%s/%s", out_dir, egc_method_name(methods[k]));
            if (cli_mkdirs(path) != 0) {
                rc = EXIT_USAGE;
                goto cleanup_ex;
            }
        }
    if (oc.gallery) {
        pathf(path, sizeof path, "%s/inputs", out_dir);
        if (cli_mkdirs(path) != 0) {
            rc = EXIT_USAGE;
            goto cleanup_ex;
        }
    }
    pathf(path, sizeof path, "%s/manifest.jsonl", out_dir);
    FILE *manifest = fopen(path, "w");
    if (!manifest) {
        fprintf(stderr, "egcam explain: cannot write %s: %s (choose another --out folder)\n",
                path, strerror(errno));
        rc = EXIT_USAGE;
        goto cleanup_ex;
    }
    run_cfg cfg = {ex, methods, n_methods, out_dir, NULL, NULL, classes, o.preset, verbose,
                   manifest, in_h, in_w};
    cfg.labels = cli_load_labels(labels_path, model_path, classes);
    cfg.names = unique_names(&items);

    /* The gallery: one row per item, one column per method. */
    cli_gallery gal;
    memset(&gal, 0, sizeof gal);
    const char *col_names[EGC_METHOD_COUNT];
    char *col_notes[EGC_METHOD_COUNT] = {0};
    if (oc.gallery) {
        gal.n_rows = items.n;
        gal.n_cols = n_methods;
        gal.model = model_path;
        gal.col_names = col_names;
        gal.col_notes = (const char *const *)col_notes;
        gal.labels = cfg.labels;
        gal.classes = classes;
        gal.cmap = oc.cmap;
        gal.alpha = oc.alpha;
        gal.overlay_on = oc.on_original ? "the original photo" : "the model's view";
        gal.cells = calloc((size_t)(items.n ? items.n : 1) * (size_t)n_methods, sizeof *gal.cells);
        gal.rows = calloc((size_t)(items.n ? items.n : 1), sizeof *gal.rows);
        if (!gal.cells || !gal.rows) exit(EXIT_MODEL);
        for (int k = 0; k < n_methods; k++) {
            const egc_explain_options *eo = egc_explainer_options(ex[k]);
            char note[512];
            int len = snprintf(note, sizeof note, "layer %s, %s, %s", egc_explainer_layer(ex[k]),
                               egc_preset_name(o.preset), egc_score_name(eo->score));
            if (egc_method_is_sampled(eo->method) && len > 0 && (size_t)len < sizeof note)
                snprintf(note + len, sizeof note - (size_t)len,
                         ", %d samples, baselines %s, noise %g, alpha %s, combine %s, seed %llu",
                         egc_explainer_samples(ex[k]),
                         eo->baselines == EGC_BASELINES_FILE ? eo->baseline_file
                                                             : egc_baselines_name(eo->baselines),
                         (double)eo->noise, egc_alpha_name(eo->alpha),
                         egc_combine_name(eo->combine), (unsigned long long)eo->seed);
            col_names[k] = egc_method_name(methods[k]);
            col_notes[k] = strdup(note);
        }
        for (int i = 0; i < items.n; i++) gal.rows[i].id = items.v[i].id;
        gal.unread = (const char *const *)bad_paths;
        gal.n_unread = n_paths;
    }

    size_t per = (size_t)ch * (size_t)H * (size_t)W, hw = (size_t)H * (size_t)W;
    /* Two batch sets: while the device explains one, another thread writes the files of the
     * previous batch and loads the next into the other set (CUDA; on the CPU, whose forward
     * uses every core, the same steps run one after the other). */
    batch_set sets[2];
    memset(sets, 0, sizeof sets);
    for (int q = 0; q < 2; q++) batch_set_alloc(&sets[q], device, B, per, hw, n_methods);
    pipe_ctx P;
    memset(&P, 0, sizeof P);
    P.cfg = &cfg;
    P.oc = &oc;
    P.items = items.v;
    P.n_items = items.n;
    P.preset = o.preset;
    P.C = ch;
    P.W = W;
    P.H = H;
    P.B = B;
    P.per = per;
    P.verbose = verbose;
    P.need_sized = oc.overlay;
    P.class_k = class_k;
    P.out_dir = out_dir;
    P.gal = oc.gallery ? &gal : NULL;
    P.ldst = calloc((size_t)B, sizeof *P.ldst);
    P.lerr = calloc((size_t)B, sizeof *P.lerr);
    P.outs = calloc((size_t)B, sizeof *P.outs);
    P.couts = calloc((size_t)B * (size_t)n_methods, sizeof *P.couts);
    if (!P.ldst || !P.lerr || !P.outs || !P.couts) {
        fprintf(stderr, "egcam explain: out of memory\n");
        exit(EXIT_MODEL);
    }
    if (n_bad) rc = EXIT_SOME_FAILED;
    for (int p = 0; p < n_paths; p++)
        if (bad_paths[p]) {
            cli_item it = {bad_paths[p], bad_paths[p], NULL, -1};
            struct stat sb;
            manifest_error(&cfg, &it, NULL,
                           stat(bad_paths[p], &sb) != 0
                               ? strerror(errno)
                               : "cannot read this input or some of its files (see the messages "
                                 "on stderr)");
        }
    cli_progress pr;
    cli_progress_start(&pr, "explain", items.n, quiet);
    P.pr = &pr;
    int pipelined = egc_device_is_cuda(device);
    const char *pv = getenv("EGC_PIPELINE"); /* 0 or 1 overrides the choice by device */
    if (pv && (!strcmp(pv, "0") || !strcmp(pv, "1"))) pipelined = pv[0] == '1';
    load_batch(&P, &sets[0]);
    for (int cur = 0, prev = 0;;) {
        batch_set *b = &sets[cur], *other = &sets[1 - cur];
        int more = P.next < items.n;
        if (!b->nb && !b->n_fail && !more && !prev) break;
        /* other: the previous batch's files, then the next batch's inputs */
        pipe_job job = {&P, prev ? other : NULL, more ? other : NULL, ex};
        pthread_t th;
        int threaded = pipelined && pthread_create(&th, NULL, pipe_worker, &job) == 0;
        if (b->nb) run_batch(ex, methods, n_methods, b, hw, verbose, &rc);
        if (threaded) pthread_join(th, NULL);
        else pipe_worker(&job);
        prev = 1; /* b is written next (its load failures at least) */
        if (!more) other->nb = other->n_fail = 0;
        if (!b->nb && !b->n_fail) prev = 0;
        cur = 1 - cur;
    }
    if (P.rc) rc = P.rc;
    int n_done = P.n_done, n_failed_items = P.n_failed_items;
    cli_progress_end(&pr);
    if (fclose(manifest) != 0) {
        fprintf(stderr, "egcam explain: error writing %s/manifest.jsonl\n", out_dir);
        rc = EXIT_SOME_FAILED;
    }
    if (oc.gallery) {
        pathf(path, sizeof path, "%s/index.html", out_dir);
        if (cli_gallery_write(&gal, path) != 0) rc = EXIT_SOME_FAILED;
    }
    if (!quiet) {
        fprintf(stderr, "egcam explain: %d of %d inputs explained with %d method%s", n_done,
                items.n, n_methods, n_methods > 1 ? "s" : "");
        if (n_failed_items + n_bad) fprintf(stderr, ", %d failed", n_failed_items + n_bad);
        fprintf(stderr, "; manifest %s/manifest.jsonl", out_dir);
        if (oc.gallery) fprintf(stderr, ", gallery %s/index.html", out_dir);
        fprintf(stderr, "\n");
    }
    if (oc.gallery) {
        for (size_t q = 0; q < (size_t)items.n * (size_t)n_methods; q++) {
            free(gal.cells[q].overlay);
            free(gal.cells[q].error);
        }
        for (int r = 0; r < items.n; r++) {
            free(gal.rows[r].picture);
            free(gal.rows[r].error);
        }
        free(gal.cells);
        free(gal.rows);
        for (int k = 0; k < n_methods; k++) free(col_notes[k]);
    }
    for (int q = 0; q < 2; q++) batch_set_free(&sets[q], B, n_methods);
    for (int t = 0; t < items.n; t++) free(cfg.names[t]);
    free(cfg.names);
    cli_free_labels(cfg.labels, classes);
    free(P.ldst);
    free(P.lerr);
    free(P.outs);
    free(P.couts);
cleanup_ex:
    for (int k = 0; k < n_methods; k++) egc_explainer_destroy(ex[k]);
    free(bad_paths);
    cli_items_free(&items);
    egc_model_destroy(m);
    return rc;
}

/* explain.c: the explainer: option resolution, baseline sets, the sample plan, and the
 * batched passes that feed the per-image math of the method files.
 *
 * A run goes through the images in groups of up to `batch` images. For each group:
 *   1. the clean pass: one forward + backward of the group's images gives the class, the
 *      score, g(x) and A(x) of every image;
 *   2. single-pass methods turn (g(x), A(x)) into the map; Score-CAM runs the group's K masked
 *      inputs per image through the model in chunks of `batch` rows; the sampled methods run
 *      the group's images x samples rows (built in parallel from the Philox keys) in chunks
 *      of `batch` rows and accumulate per image in sample order;
 *   3. post-processing (cam.c) into the caller's buffers.
 * Every buffer is reserved by egc_explainer_create; runs allocate nothing. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/philox.h"
#include "egcam/explain.h"
#include "methods/methods.h"

struct egc_explainer {
    egc_explain_options o; /* resolved */
    char *layer_name, *baseline_file, *plan_file;
    const egc_model *m;
    egc_session *s;
    int B;                          /* rows per pass = images per group */
    int C, H, W, K, h, w, hw, classes;
    size_t chw, khw;
    int sampled, S;
    egc_cam_fn fn;
    /* sample plan */
    int plan_n;
    uint32_t *plan_b;
    float *plan_a;
    uint64_t *plan_seed;
    /* reference images shared by all inputs (black, uniform, file) */
    int R;          /* size of the baseline set (1 for black, blur, self) */
    float *ref;     /* [R,chw] or NULL */
    float *aref;    /* [R,khw] activations of ref, for combine B */
    /* chunk buffers */
    float *xin;     /* [B,chw] */
    float *logits;  /* [B,classes] */
    float *seed;    /* [B,classes] */
    float *grad;    /* [B,khw] */
    float *act;     /* [B,khw] */
    /* group buffers (B images) */
    float *gx, *ax; /* [B,khw] clean gradient and activation */
    float *acc;     /* [B,khw] A: sum of G; B: sum of (A(x)-A(x'))G */
    float *accmap;  /* [B,hw] C: sum of per-sample maps */
    float *blur;    /* [B,chw] blur baselines of the group */
    float *ablur;   /* [B,khw] their activations (combine B) */
    float *blurtmp; /* [B,H*W] */
    float *scores;  /* [B,K] Score-CAM masked scores */
    int *cls;
    float *score, *sigma;
    uint64_t *ids;
    float *wk, *L, *tmp; /* [K], [hw], [hw] */
};

static const char *const k_method_names[EGC_METHOD_COUNT] = {
    "gradcam",        "gradcampp",          "xgradcam",          "hirescam",
    "layercam",       "scorecam",           "smooth-gradcam",    "integrated-gradcam",
    "expected-gradcam", "expected-gradcampp", "expected-xgradcam", "expected-hirescam",
    "expected-layercam"};

void egc_explain_options_default(egc_explain_options *o)
{
    memset(o, 0, sizeof *o);
    o->method = EGC_METHOD_GRADCAM;
    o->layer = NULL;
    o->preset = EGC_PRESET_TORCHVISION;
    o->score = EGC_SCORE_LOGIT;
    o->samples = 32;
    o->baselines = EGC_BASELINES_BLACK;
    o->uniform_count = 16;
    o->noise = 0.15f;
    o->alpha = EGC_ALPHA_UNIFORM;
    o->combine = EGC_COMBINE_A;
    o->seed = 0;
    o->batch = 32;
    o->plan_file = NULL;
}

egc_status egc_method_parse(const char *name, egc_method *out)
{
    if (name)
        for (int i = 0; i < EGC_METHOD_COUNT; i++)
            if (!strcmp(name, k_method_names[i])) {
                *out = (egc_method)i;
                return EGC_OK;
            }
    return EGC_FAIL(EGC_E_ARG,
                    "unknown method '%s' (one of gradcam, gradcampp, xgradcam, hirescam, layercam, "
                    "scorecam, smooth-gradcam, integrated-gradcam, expected-gradcam, "
                    "expected-gradcampp, expected-xgradcam, expected-hirescam, expected-layercam)",
                    name ? name : "(null)");
}

const char *egc_method_name(egc_method m)
{
    return (m >= 0 && m < EGC_METHOD_COUNT) ? k_method_names[m] : "?";
}

int egc_method_is_sampled(egc_method m)
{
    return m >= EGC_METHOD_SMOOTH_GRADCAM && m < EGC_METHOD_COUNT;
}

const char *egc_score_name(egc_score s) { return s == EGC_SCORE_SOFTMAX ? "softmax" : "logit"; }

const char *egc_baselines_name(egc_baselines b)
{
    switch (b) {
    case EGC_BASELINES_BLACK: return "black";
    case EGC_BASELINES_BLUR: return "blur";
    case EGC_BASELINES_UNIFORM: return "uniform";
    case EGC_BASELINES_SELF: return "self";
    case EGC_BASELINES_FILE: return "file";
    }
    return "?";
}

const char *egc_alpha_name(egc_alpha a) { return a == EGC_ALPHA_GRID ? "grid" : "uniform"; }

const char *egc_combine_name(egc_combine c)
{
    return c == EGC_COMBINE_B ? "B" : c == EGC_COMBINE_C ? "C" : "A";
}

void egc_explainer_destroy(egc_explainer *e)
{
    if (!e) return;
    egc_session_destroy(e->s);
    free(e->layer_name);
    free(e->baseline_file);
    free(e->plan_file);
    free(e->plan_b);
    free(e->plan_a);
    free(e->plan_seed);
    float *bufs[] = {e->ref, e->aref, e->xin, e->logits, e->seed, e->grad, e->act,
                     e->gx, e->ax, e->acc, e->accmap, e->blur, e->ablur, e->blurtmp,
                     e->scores, e->score, e->sigma, e->wk, e->L, e->tmp};
    for (size_t i = 0; i < EGC_COUNT(bufs); i++) egc_aligned_free(bufs[i]);
    free(e->cls);
    free(e->ids);
    free(e);
}

const egc_explain_options *egc_explainer_options(const egc_explainer *e) { return &e->o; }
int egc_explainer_samples(const egc_explainer *e) { return e->sampled ? e->S : 0; }
const char *egc_explainer_layer(const egc_explainer *e) { return e->layer_name; }

void egc_explainer_geometry(const egc_explainer *e, int *h, int *w, int *H, int *W)
{
    if (h) *h = e->h;
    if (w) *w = e->w;
    if (H) *H = e->H;
    if (W) *W = e->W;
}

static egc_status fbuf(float **p, size_t n, const char *what)
{
    if (n == 0) n = 1;
    if (n > SIZE_MAX / sizeof(float))
        return EGC_FAIL(EGC_E_NOMEM, "%s: %zu floats is too many", what, n);
    EGC_TRY(egc_aligned_alloc((void **)p, n * sizeof(float), what));
    memset(*p, 0, n * sizeof(float));
    return EGC_OK;
}

/* ---- the sample plan ---- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

/* Parses the plan file (format in explain.h) into e->plan_*. */
static egc_status load_plan(egc_explainer *e, const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    EGC_TRY(egc_read_file(path, &data, &len));
    egc_status st = EGC_OK;
    char *text = (char *)data, *save = NULL;
    int lineno = 0, header = 0, cap = 0;
    for (char *p = text; p && p <= text + len;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        lineno++;
        char *line = trim(p);
        p = nl ? nl + 1 : NULL;
        if (!*line || line[0] == '#') continue;
        if (!header) {
            char compact[64];
            size_t k = 0;
            for (const char *q = line; *q && k + 1 < sizeof compact; q++)
                if (*q != ' ' && *q != '\t') compact[k++] = *q;
            compact[k] = '\0';
            if (strcmp(compact, "baseline,alpha,noise_seed") != 0) {
                st = EGC_FAIL(EGC_E_FORMAT, "sample plan %s:%d: the first line must be the header "
                              "'baseline,alpha,noise_seed'", path, lineno);
                goto done;
            }
            header = 1;
            continue;
        }
        if (e->plan_n >= 65536) {
            st = EGC_FAIL(EGC_E_FORMAT, "sample plan %s: more than 65536 rows", path);
            goto done;
        }
        char *f[3];
        int nf = 0;
        for (char *tok = strtok_r(line, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (nf == 3) {
                nf = 4;
                break;
            }
            f[nf++] = trim(tok);
        }
        if (nf != 3) {
            st = EGC_FAIL(EGC_E_FORMAT, "sample plan %s:%d: expected 3 fields "
                          "(baseline,alpha,noise_seed)", path, lineno);
            goto done;
        }
        char *end;
        errno = 0;
        long long b = strtoll(f[0], &end, 10);
        if (errno || *end || end == f[0] || b < 0 || b > 0x7fffffff) {
            st = EGC_FAIL(EGC_E_FORMAT, "sample plan %s:%d: baseline '%s' is not an index >= 0",
                          path, lineno, f[0]);
            goto done;
        }
        errno = 0;
        double a = strtod(f[1], &end);
        if (errno || *end || end == f[1] || !isfinite(a)) {
            st = EGC_FAIL(EGC_E_FORMAT, "sample plan %s:%d: alpha '%s' is not a finite number",
                          path, lineno, f[1]);
            goto done;
        }
        errno = 0;
        if (f[2][0] == '-') errno = ERANGE;
        unsigned long long ns = errno ? 0 : strtoull(f[2], &end, 10);
        if (errno || *end || end == f[2]) {
            st = EGC_FAIL(EGC_E_FORMAT, "sample plan %s:%d: noise_seed '%s' is not an unsigned "
                          "64-bit integer", path, lineno, f[2]);
            goto done;
        }
        if (e->plan_n == cap) {
            cap = cap ? 2 * cap : 64;
            EGC_TRYG(st, egc_realloc((void **)&e->plan_b, (size_t)cap, sizeof *e->plan_b, "plan"),
                     done);
            EGC_TRYG(st, egc_realloc((void **)&e->plan_a, (size_t)cap, sizeof *e->plan_a, "plan"),
                     done);
            EGC_TRYG(st, egc_realloc((void **)&e->plan_seed, (size_t)cap, sizeof *e->plan_seed,
                                     "plan"), done);
        }
        e->plan_b[e->plan_n] = (uint32_t)b;
        e->plan_a[e->plan_n] = (float)a;
        e->plan_seed[e->plan_n] = (uint64_t)ns;
        e->plan_n++;
    }
    if (!e->plan_n)
        st = EGC_FAIL(EGC_E_FORMAT, "sample plan %s: no sample rows%s", path,
                      header ? "" : " (and no 'baseline,alpha,noise_seed' header)");
done:
    free(data);
    return st;
}

/* ---- reference images ---- */

/* The normalised image of the given pixels (CHW bytes, or all zero when bytes == NULL). */
static egc_status normalised_pixels(const egc_explainer *e, const uint8_t *bytes, float *dst)
{
    egc_image img;
    img.w = e->W;
    img.h = e->H;
    size_t hw = (size_t)e->H * (size_t)e->W;
    EGC_TRY(egc_calloc((void **)&img.rgb, hw * 3, 1, "baseline pixels"));
    if (bytes)
        for (size_t i = 0; i < hw; i++)
            for (int c = 0; c < 3; c++) img.rgb[i * 3 + (size_t)c] = bytes[(size_t)c * hw + i];
    egc_preset_normalize(&img, e->o.preset, dst);
    free(img.rgb);
    return EGC_OK;
}

static egc_status load_refs(egc_explainer *e)
{
    const egc_explain_options *o = &e->o;
    if (o->baselines == EGC_BASELINES_BLACK) {
        e->R = 1;
        EGC_TRY(fbuf(&e->ref, e->chw, "black baseline"));
        EGC_TRY(normalised_pixels(e, NULL, e->ref));
    } else if (o->baselines == EGC_BASELINES_UNIFORM) {
        e->R = o->uniform_count;
        EGC_TRY(fbuf(&e->ref, (size_t)e->R * e->chw, "uniform baselines"));
        uint8_t *bytes = NULL;
        EGC_TRY(egc_malloc((void **)&bytes, e->chw, 1, "uniform baseline pixels"));
        egc_status st = EGC_OK;
        for (int r = 0; r < e->R && st == EGC_OK; r++) {
            egc_sample_bytes(o->seed, EGC_UNIFORM_REF_ID, (uint32_t)r, e->chw, bytes);
            st = normalised_pixels(e, bytes, e->ref + (size_t)r * e->chw);
        }
        free(bytes);
        EGC_TRY(st);
    } else if (o->baselines == EGC_BASELINES_FILE) {
        if (!o->baseline_file || !*o->baseline_file)
            return EGC_FAIL(EGC_E_ARG, "baselines 'file' needs a reference file (.npy)");
        egc_tensor t;
        EGC_TRY(egc_npy_read(o->baseline_file, &t));
        const egc_shape *sh = &t.shape;
        int ok = (sh->ndim == 4 && sh->d[0] >= 1 && sh->d[1] == e->C && sh->d[2] == e->H &&
                  sh->d[3] == e->W) ||
                 (sh->ndim == 3 && sh->d[0] == e->C && sh->d[1] == e->H && sh->d[2] == e->W);
        if (!ok || (sh->ndim == 4 && sh->d[0] > (1 << 20))) {
            char b[96];
            (void)egc_shape_str(sh, b, sizeof b);
            egc_tensor_free(&t);
            return EGC_FAIL(EGC_E_SHAPE, "reference file %s: shape %s does not fit the model "
                            "input (R,%d,%d,%d)", o->baseline_file, b, e->C, e->H, e->W);
        }
        e->R = sh->ndim == 4 ? (int)sh->d[0] : 1;
        egc_status st = fbuf(&e->ref, (size_t)e->R * e->chw, "reference images");
        if (st == EGC_OK) {
            memcpy(e->ref, t.data, (size_t)e->R * e->chw * sizeof(float));
            for (size_t i = 0; i < (size_t)e->R * e->chw; i++)
                if (!isfinite(e->ref[i])) {
                    st = EGC_FAIL(EGC_E_FORMAT, "reference file %s: image %zu holds a non-finite "
                                  "value", o->baseline_file, i / e->chw);
                    break;
                }
        }
        egc_tensor_free(&t);
        EGC_TRY(st);
    } else {
        e->R = 1; /* blur and self: one per input, made per group */
    }
    return EGC_OK;
}

/* The target activations of n images imgs[n,chw] into out[n,khw], in chunks of B rows. */
static egc_status activations(egc_explainer *e, const float *imgs, int n, float *out)
{
    for (int r0 = 0; r0 < n; r0 += e->B) {
        int nb = EGC_MIN(e->B, n - r0);
        EGC_TRY(egc_session_forward(e->s, imgs + (size_t)r0 * e->chw, nb, e->logits));
        memset(e->seed, 0, (size_t)nb * (size_t)e->classes * sizeof(float));
        EGC_TRY(egc_session_backward(e->s, e->seed, nb, NULL, out + (size_t)r0 * e->khw));
    }
    return EGC_OK;
}

/* ---- creation ---- */

static egc_status check_options(const egc_explain_options *o)
{
    if ((int)o->method < 0 || o->method >= EGC_METHOD_COUNT)
        return EGC_FAIL(EGC_E_ARG, "method %d out of range", (int)o->method);
    if (o->score != EGC_SCORE_LOGIT && o->score != EGC_SCORE_SOFTMAX)
        return EGC_FAIL(EGC_E_ARG, "score %d is neither logit nor softmax", (int)o->score);
    if ((int)o->baselines < 0 || o->baselines > EGC_BASELINES_FILE)
        return EGC_FAIL(EGC_E_ARG, "baselines %d out of range", (int)o->baselines);
    if (o->alpha != EGC_ALPHA_UNIFORM && o->alpha != EGC_ALPHA_GRID)
        return EGC_FAIL(EGC_E_ARG, "alpha %d is neither uniform nor grid", (int)o->alpha);
    if ((int)o->combine < 0 || o->combine > EGC_COMBINE_C)
        return EGC_FAIL(EGC_E_ARG, "combine %d is not A, B or C", (int)o->combine);
    if (o->samples < 1 || o->samples > (1 << 20))
        return EGC_FAIL(EGC_E_ARG, "samples must be in 1..%d (got %d)", 1 << 20, o->samples);
    if (o->batch < 1 || o->batch > 65536)
        return EGC_FAIL(EGC_E_ARG, "batch must be in 1..65536 (got %d)", o->batch);
    if (!(o->noise >= 0.0f) || !isfinite(o->noise))
        return EGC_FAIL(EGC_E_ARG, "noise (rho) must be a finite number >= 0 (got %g)",
                        (double)o->noise);
    if (o->uniform_count < 1 || o->uniform_count > 4096)
        return EGC_FAIL(EGC_E_ARG, "uniform_count must be in 1..4096 (got %d)", o->uniform_count);
    if ((int)o->preset < 0 || o->preset > EGC_PRESET_CIFAR)
        return EGC_FAIL(EGC_E_ARG, "preset %d out of range", (int)o->preset);
    return EGC_OK;
}

static egc_cam_fn method_fn(egc_method m)
{
    switch (m) {
    case EGC_METHOD_GRADCAMPP:
    case EGC_METHOD_EXPECTED_GRADCAMPP: return egc_gradcampp;
    case EGC_METHOD_XGRADCAM:
    case EGC_METHOD_EXPECTED_XGRADCAM: return egc_xgradcam;
    case EGC_METHOD_HIRESCAM:
    case EGC_METHOD_EXPECTED_HIRESCAM: return egc_hirescam;
    case EGC_METHOD_LAYERCAM:
    case EGC_METHOD_EXPECTED_LAYERCAM: return egc_layercam;
    default: return egc_gradcam;
    }
}

static egc_status copy_str(char **dst, const char *src)
{
    *dst = NULL;
    if (!src) return EGC_OK;
    return egc_strdup(dst, src);
}

egc_status egc_explainer_create(const egc_model *m, const char *device,
                                const egc_explain_options *opts, egc_explainer **out)
{
    *out = NULL;
    if (!m || !opts) return EGC_FAIL(EGC_E_ARG, "egc_explainer_create: model and options needed");
    EGC_TRY(check_options(opts));
    egc_status st;
    egc_explainer *e = NULL;
    EGC_TRY(egc_calloc((void **)&e, 1, sizeof *e, "explainer"));
    e->o = *opts;
    e->m = m;
    egc_explain_options *o = &e->o;
    /* Method-implied options. */
    switch (o->method) {
    case EGC_METHOD_SMOOTH_GRADCAM:
        o->baselines = EGC_BASELINES_SELF;
        o->combine = EGC_COMBINE_A;
        break;
    case EGC_METHOD_INTEGRATED_GRADCAM:
        o->baselines = EGC_BASELINES_BLACK;
        o->alpha = EGC_ALPHA_GRID;
        o->noise = 0.0f;
        o->combine = EGC_COMBINE_C;
        break;
    case EGC_METHOD_EXPECTED_GRADCAMPP:
    case EGC_METHOD_EXPECTED_XGRADCAM:
    case EGC_METHOD_EXPECTED_HIRESCAM:
    case EGC_METHOD_EXPECTED_LAYERCAM: o->combine = EGC_COMBINE_A; break;
    case EGC_METHOD_SCORECAM: o->score = EGC_SCORE_SOFTMAX; break;
    default: break;
    }
    e->sampled = egc_method_is_sampled(o->method);
    e->fn = method_fn(o->method);
    EGC_TRYG(st, copy_str(&e->baseline_file, o->baselines == EGC_BASELINES_FILE
                                                 ? o->baseline_file : NULL), fail);
    o->baseline_file = e->baseline_file;
    EGC_TRYG(st, copy_str(&e->plan_file, e->sampled ? o->plan_file : NULL), fail);
    o->plan_file = e->plan_file;

    /* Geometry. */
    egc_model_input_chw(m, &e->C, &e->H, &e->W);
    e->classes = egc_model_num_classes(m);
    if (e->C != 3) {
        st = EGC_FAIL(EGC_E_UNSUPPORTED, "the model takes %d input channels; CAMs need RGB (3)",
                      e->C);
        goto fail;
    }
    int layer = -1;
    EGC_TRYG(st, egc_model_find_layer(m, o->layer, &layer), fail);
    egc_layer_info li;
    EGC_TRYG(st, egc_model_layer(m, layer, &li), fail);
    if (li.shape.ndim != 4 || li.shape.d[2] < 1 || li.shape.d[3] < 1) {
        char b[96];
        (void)egc_shape_str(&li.shape, b, sizeof b);
        st = EGC_FAIL(EGC_E_ARG, "target layer '%s' has shape %s; a CAM needs a 4-D activation "
                      "[1,K,h,w]", li.name, b);
        goto fail;
    }
    EGC_TRYG(st, egc_strdup(&e->layer_name, li.name), fail);
    o->layer = e->layer_name;
    e->B = o->batch;
    EGC_TRYG(st, egc_session_create(m, device ? device : "cpu", e->B, layer, &e->s), fail);
    egc_shape ts = egc_session_target_shape(e->s);
    e->K = (int)ts.d[1];
    e->h = (int)ts.d[2];
    e->w = (int)ts.d[3];
    e->hw = e->h * e->w;
    e->chw = (size_t)e->C * (size_t)e->H * (size_t)e->W;
    e->khw = (size_t)e->K * (size_t)e->hw;
    if (e->chw / 4 + 2 > 0xffffffffULL) {
        st = EGC_FAIL(EGC_E_UNSUPPORTED, "input of %zu values is too large for the noise keys",
                      e->chw);
        goto fail;
    }

    /* Samples, plan and references. */
    e->S = o->samples;
    if (e->sampled) {
        if (e->plan_file) {
            EGC_TRYG(st, load_plan(e, e->plan_file), fail);
            e->S = e->plan_n;
        }
        EGC_TRYG(st, load_refs(e), fail);
        for (int i = 0; i < e->plan_n; i++)
            if ((int64_t)e->plan_b[i] >= e->R) {
                st = EGC_FAIL(EGC_E_ARG, "sample plan %s: row %d uses baseline %u but the '%s' "
                              "baseline set has %d image(s)", e->plan_file, i + 1,
                              e->plan_b[i], egc_baselines_name(o->baselines), e->R);
                goto fail;
            }
    }

    /* Buffers. */
    size_t B = (size_t)e->B;
    EGC_TRYG(st, fbuf(&e->xin, B * e->chw, "explainer input"), fail);
    EGC_TRYG(st, fbuf(&e->logits, B * (size_t)e->classes, "logits"), fail);
    EGC_TRYG(st, fbuf(&e->seed, B * (size_t)e->classes, "score seeds"), fail);
    EGC_TRYG(st, fbuf(&e->grad, B * e->khw, "gradients"), fail);
    EGC_TRYG(st, fbuf(&e->act, B * e->khw, "activations"), fail);
    EGC_TRYG(st, fbuf(&e->gx, B * e->khw, "clean gradients"), fail);
    EGC_TRYG(st, fbuf(&e->ax, B * e->khw, "clean activations"), fail);
    EGC_TRYG(st, fbuf(&e->score, B, "scores"), fail);
    EGC_TRYG(st, fbuf(&e->sigma, B, "noise sigmas"), fail);
    EGC_TRYG(st, fbuf(&e->wk, (size_t)e->K, "channel weights"), fail);
    EGC_TRYG(st, fbuf(&e->L, (size_t)e->hw, "map"), fail);
    EGC_TRYG(st, fbuf(&e->tmp, (size_t)e->hw, "map scratch"), fail);
    EGC_TRYG(st, egc_calloc((void **)&e->cls, B, sizeof *e->cls, "classes"), fail);
    EGC_TRYG(st, egc_calloc((void **)&e->ids, B, sizeof *e->ids, "image ids"), fail);
    if (o->method == EGC_METHOD_SCORECAM)
        EGC_TRYG(st, fbuf(&e->scores, B * (size_t)e->K, "Score-CAM scores"), fail);
    if (e->sampled) {
        if (o->combine == EGC_COMBINE_C)
            EGC_TRYG(st, fbuf(&e->accmap, B * (size_t)e->hw, "map sums"), fail);
        else
            EGC_TRYG(st, fbuf(&e->acc, B * e->khw, "gradient sums"), fail);
        if (o->baselines == EGC_BASELINES_BLUR) {
            EGC_TRYG(st, fbuf(&e->blur, B * e->chw, "blur baselines"), fail);
            EGC_TRYG(st, fbuf(&e->blurtmp, B * (size_t)e->H * (size_t)e->W, "blur scratch"),
                     fail);
            if (o->combine == EGC_COMBINE_B)
                EGC_TRYG(st, fbuf(&e->ablur, B * e->khw, "blur activations"), fail);
        }
        if (o->combine == EGC_COMBINE_B && e->ref) {
            /* A(x') once per reference image. */
            EGC_TRYG(st, fbuf(&e->aref, (size_t)e->R * e->khw, "reference activations"), fail);
            EGC_TRYG(st, activations(e, e->ref, e->R, e->aref), fail);
        }
    }
    *out = e;
    return EGC_OK;
fail:
    egc_explainer_destroy(e);
    return st;
}

/* ---- runs ---- */

/* The seed row of one image for class c from its logits, and y_c. */
static float make_seed(const egc_explainer *e, const float *logits, int c, float *seed)
{
    int n = e->classes;
    memset(seed, 0, (size_t)n * sizeof(float));
    if (e->o.score == EGC_SCORE_LOGIT) {
        seed[c] = 1.0f;
        return logits[c];
    }
    double mx = logits[0];
    for (int j = 1; j < n; j++)
        if (logits[j] > mx) mx = logits[j];
    double sum = 0;
    for (int j = 0; j < n; j++) sum += exp((double)logits[j] - mx);
    double pc = exp((double)logits[c] - mx) / sum;
    for (int j = 0; j < n; j++) {
        double pj = exp((double)logits[j] - mx) / sum;
        seed[j] = (float)(pc * ((j == c ? 1.0 : 0.0) - pj));
    }
    return (float)pc;
}

static double softmax_prob(const float *logits, int n, int c)
{
    double mx = logits[0];
    for (int j = 1; j < n; j++)
        if (logits[j] > mx) mx = logits[j];
    double sum = 0;
    for (int j = 0; j < n; j++) sum += exp((double)logits[j] - mx);
    return exp((double)logits[c] - mx) / sum;
}

typedef struct row_ctx {
    egc_explainer *e;
    const float *x; /* the group's inputs [g,chw] */
    int64_t r0;     /* first row of the chunk */
} row_ctx;

static const float *baseline_of(const egc_explainer *e, const float *x, int i, uint32_t b)
{
    switch (e->o.baselines) {
    case EGC_BASELINES_SELF: return x + (size_t)i * e->chw;
    case EGC_BASELINES_BLUR: return e->blur + (size_t)i * e->chw;
    default: return e->ref + (size_t)b * e->chw;
    }
}

static const float *baseline_act(const egc_explainer *e, int i, uint32_t b)
{
    switch (e->o.baselines) {
    case EGC_BASELINES_SELF: return e->ax + (size_t)i * e->khw;
    case EGC_BASELINES_BLUR: return e->ablur + (size_t)i * e->khw;
    default: return e->aref + (size_t)b * e->khw;
    }
}

/* Baseline index and alpha of sample s of image i (plan or Philox block 0). */
static void sample_scalars(const egc_explainer *e, int i, int s, uint32_t *b, float *a,
                           uint64_t *noise_seed)
{
    if (e->plan_n) {
        *b = e->plan_b[s];
        *a = e->plan_a[s];
        *noise_seed = e->plan_seed[s];
        return;
    }
    egc_sample_scalars(e->o.seed, e->ids[i], (uint32_t)s, (uint32_t)e->R, b, a);
    if (e->o.alpha == EGC_ALPHA_GRID) *a = (float)s / (float)e->S;
    *noise_seed = e->o.seed;
}

static void fill_sample_row(int64_t t, void *arg)
{
    row_ctx *c = arg;
    egc_explainer *e = c->e;
    int64_t r = c->r0 + t;
    int i = (int)(r / e->S), s = (int)(r % e->S);
    uint32_t b;
    float a;
    uint64_t ns;
    sample_scalars(e, i, s, &b, &a, &ns);
    egc_expected_point(c->x + (size_t)i * e->chw, baseline_of(e, c->x, i, b), e->chw, a,
                       e->sigma[i], ns, e->ids[i], (uint32_t)s, e->xin + (size_t)t * e->chw);
}

static void fill_score_row(int64_t t, void *arg)
{
    row_ctx *c = arg;
    egc_explainer *e = c->e;
    int64_t r = c->r0 + t;
    int i = (int)(r / e->K), k = (int)(r % e->K);
    float *z = e->xin + (size_t)t * e->chw;
    int HW = e->H * e->W;
    egc_scorecam_mask(e->ax + (size_t)i * e->khw + (size_t)k * (size_t)e->hw, e->h, e->w, z,
                      e->H, e->W);
    egc_scorecam_apply(c->x + (size_t)i * e->chw, e->C, HW, z, z);
}

typedef struct blur_ctx {
    egc_explainer *e;
    const float *x;
} blur_ctx;

static void blur_image(int64_t i, void *arg)
{
    blur_ctx *c = arg;
    egc_explainer *e = c->e;
    size_t HW = (size_t)e->H * (size_t)e->W;
    egc_blur_gaussian11(c->x + (size_t)i * e->chw, e->C, e->H, e->W, e->blurtmp + (size_t)i * HW,
                        e->blur + (size_t)i * e->chw);
}

/* The clean pass of g images: classes, scores, g(x), A(x). */
static egc_status clean_pass(egc_explainer *e, const float *x, int g, const int *classes)
{
    EGC_TRY(egc_session_forward(e->s, x, g, e->logits));
    for (int i = 0; i < g; i++) {
        const float *lg = e->logits + (size_t)i * (size_t)e->classes;
        int c = classes ? classes[i] : -1;
        if (c >= e->classes)
            return EGC_FAIL(EGC_E_ARG, "class %d out of range for a model of %d classes", c,
                            e->classes);
        if (c < 0) {
            c = 0;
            for (int j = 1; j < e->classes; j++)
                if (lg[j] > lg[c]) c = j;
        }
        e->cls[i] = c;
        e->score[i] = make_seed(e, lg, c, e->seed + (size_t)i * (size_t)e->classes);
    }
    if (e->o.method == EGC_METHOD_SCORECAM)
        memset(e->seed, 0, (size_t)g * (size_t)e->classes * sizeof(float));
    EGC_TRY(egc_session_backward(e->s, e->seed, g, e->gx, e->ax));
    return EGC_OK;
}

static egc_status scorecam_pass(egc_explainer *e, const float *x, int g)
{
    int64_t rows = (int64_t)g * e->K;
    for (int64_t r0 = 0; r0 < rows; r0 += e->B) {
        int nb = (int)EGC_MIN((int64_t)e->B, rows - r0);
        row_ctx c = {e, x, r0};
        egc_parallel_for(nb, fill_score_row, &c);
        EGC_TRY(egc_session_forward(e->s, e->xin, nb, e->logits));
        for (int t = 0; t < nb; t++) {
            int64_t r = r0 + t;
            int i = (int)(r / e->K);
            e->scores[r] = (float)softmax_prob(e->logits + (size_t)t * (size_t)e->classes,
                                               e->classes, e->cls[i]);
        }
    }
    return EGC_OK;
}

static egc_status sampled_pass(egc_explainer *e, const float *x, int g)
{
    const egc_explain_options *o = &e->o;
    if (o->baselines == EGC_BASELINES_BLUR) {
        blur_ctx bc = {e, x};
        egc_parallel_for(g, blur_image, &bc);
        if (o->combine == EGC_COMBINE_B) EGC_TRY(activations(e, e->blur, g, e->ablur));
    }
    if (e->acc) memset(e->acc, 0, (size_t)g * e->khw * sizeof(float));
    if (e->accmap) memset(e->accmap, 0, (size_t)g * (size_t)e->hw * sizeof(float));
    int64_t rows = (int64_t)g * e->S;
    for (int64_t r0 = 0; r0 < rows; r0 += e->B) {
        int nb = (int)EGC_MIN((int64_t)e->B, rows - r0);
        row_ctx c = {e, x, r0};
        egc_parallel_for(nb, fill_sample_row, &c);
        EGC_TRY(egc_session_forward(e->s, e->xin, nb, e->logits));
        for (int t = 0; t < nb; t++) {
            int i = (int)((r0 + t) / e->S);
            (void)make_seed(e, e->logits + (size_t)t * (size_t)e->classes, e->cls[i],
                            e->seed + (size_t)t * (size_t)e->classes);
        }
        EGC_TRY(egc_session_backward(e->s, e->seed, nb, e->grad,
                                     o->combine == EGC_COMBINE_C ? e->act : NULL));
        for (int t = 0; t < nb; t++) {
            int64_t r = r0 + t;
            int i = (int)(r / e->S), s = (int)(r % e->S);
            const float *G = e->grad + (size_t)t * e->khw;
            if (o->combine == EGC_COMBINE_A) {
                egc_expected_accum_a(e->acc + (size_t)i * e->khw, G, e->khw);
            } else if (o->combine == EGC_COMBINE_B) {
                uint32_t b;
                float a;
                uint64_t ns;
                sample_scalars(e, i, s, &b, &a, &ns);
                egc_expected_accum_b(e->acc + (size_t)i * e->khw, e->ax + (size_t)i * e->khw,
                                     baseline_act(e, i, b), G, e->khw);
            } else {
                egc_expected_accum_c(e->accmap + (size_t)i * (size_t)e->hw, G,
                                     e->act + (size_t)t * e->khw, e->K, e->hw, e->wk, e->tmp);
            }
        }
    }
    return EGC_OK;
}

/* The raw map of image i of the group into e->L. */
static void image_map(egc_explainer *e, int i)
{
    const float *gx = e->gx + (size_t)i * e->khw, *ax = e->ax + (size_t)i * e->khw;
    if (e->o.method == EGC_METHOD_SCORECAM) {
        egc_scorecam_map(e->scores + (size_t)i * (size_t)e->K, ax, e->K, e->hw, e->wk, e->L);
    } else if (!e->sampled) {
        e->fn(gx, ax, e->K, e->hw, e->wk, e->L);
    } else if (e->o.combine == EGC_COMBINE_A) {
        float *acc = e->acc + (size_t)i * e->khw;
        egc_expected_mean(acc, e->khw, e->S);
        e->fn(acc, ax, e->K, e->hw, e->wk, e->L);
    } else if (e->o.combine == EGC_COMBINE_B) {
        float *acc = e->acc + (size_t)i * e->khw;
        egc_expected_mean(acc, e->khw, e->S);
        egc_expected_map_b(acc, ax, e->K, e->hw, e->wk, e->L);
    } else {
        memcpy(e->L, e->accmap + (size_t)i * (size_t)e->hw, (size_t)e->hw * sizeof(float));
        egc_expected_mean(e->L, (size_t)e->hw, e->S);
    }
}

egc_status egc_explainer_run(egc_explainer *e, const float *x, int n, const int *classes,
                             egc_cam_result *out)
{
    if (!e || !x || !out || n < 1)
        return EGC_FAIL(EGC_E_ARG, "egc_explainer_run: %d images (need >= 1, with inputs and "
                        "results)", n);
    for (int i0 = 0; i0 < n; i0 += e->B) {
        int g = EGC_MIN(e->B, n - i0);
        const float *xg = x + (size_t)i0 * e->chw;
        for (int i = 0; i < g; i++) {
            const float *xi = xg + (size_t)i * e->chw;
            float mn = xi[0], mx = xi[0];
            for (size_t j = 0; j < e->chw; j++) {
                if (!isfinite(xi[j]))
                    return EGC_FAIL(EGC_E_ARG, "image %d of the batch holds a non-finite value "
                                    "at %zu", i0 + i, j);
                if (xi[j] < mn) mn = xi[j];
                if (xi[j] > mx) mx = xi[j];
            }
            e->ids[i] = egc_image_id(xi, e->chw);
            e->sigma[i] = e->o.noise * (mx - mn);
        }
        EGC_TRY(clean_pass(e, xg, g, classes ? classes + i0 : NULL));
        if (e->o.method == EGC_METHOD_SCORECAM) EGC_TRY(scorecam_pass(e, xg, g));
        else if (e->sampled) EGC_TRY(sampled_pass(e, xg, g));
        for (int i = 0; i < g; i++) {
            egc_cam_result *r = &out[i0 + i];
            image_map(e, i);
            r->cls = e->cls[i];
            r->score = e->score[i];
            r->image_id = e->ids[i];
            if (r->raw) memcpy(r->raw, e->L, (size_t)e->hw * sizeof(float));
            if (r->map) egc_cam_finalize(e->L, e->h, e->w, r->map, e->H, e->W, e->tmp);
        }
    }
    return EGC_OK;
}

/* explain.c: the explainer: option resolution, baseline sets, the sample plan, and the
 * batched passes of every method, driven through the backend's method entries (backend.h,
 * m_*) on device buffers, so one code path serves every backend: the CPU backend runs the
 * per-image functions of csrc/methods, the CUDA backend its kernels, and on CUDA the inputs
 * of the passes (clean, masked, perturbed) never exist on the host.
 *
 * A run goes through the images in groups of up to B images, B = `batch` or fewer when the
 * session split it to fit the memory cap or the device (egc_explainer_rows). For each group:
 *   1. the group's images, ids and classes are uploaded; the clean pass (one forward, and
 *      for the single-pass methods one backward) gives the class, the score and A(x) of
 *      every image; the single-pass methods turn (g(x), A(x)) into the raw map at once;
 *   2. Score-CAM runs the group's K masked inputs per image, the sampled methods the
 *      group's images x samples sample points (drawn on the device from the Philox keys),
 *      through the model in chunks of `batch` rows, reducing each chunk into per-image
 *      accumulators on the device in sample order; on a backend that computes whole
 *      passes, a sampled method's clean rows ride at the head of its first chunk instead of
 *      taking a pass of their own (e->merge, sample_rows);
 *   3. the raw maps are post-processed on the device (min-max, upsampling, min-max) and
 *      only the raw and final maps, the classes and the scores come back to the host.
 * Every buffer is reserved by egc_explainer_create; runs allocate nothing. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "core/philox.h"
#include "egcam/explain.h"
#include "methods/methods.h"
#include "model/session.h"

#define MAX_DEV_BUFS 32
/* Adaptive sample counts: an image stops after this many consecutive rounds whose map moved
 * by at most samples_tol (one noisy small step is not enough: measured in docs/USER_GUIDE.md) */
#define PATIENCE 2

struct egc_explainer {
    egc_explain_options o; /* resolved */
    char *layer_name, *baseline_file, *plan_file;
    const egc_model *m;
    egc_session *s;
    egc_backend *be;                /* the session's backend and plan */
    egc_plan *plan;
    int in_v, out_v, tgt_v;         /* value ids: input, logits, target */
    int B;                          /* rows per pass = images per group */
    int merge;                      /* sampled, fixed counts: the clean rows ride in the first
                                       sample pass (sample_rows) instead of a pass of their own */
    int C, H, W, K, h, w, hw, classes;
    size_t chw, khw;
    int sampled, S;
    int cam;                        /* EGC_CAM_* of the final map */
    /* sample plan (host) */
    int plan_n;
    uint32_t *plan_b;
    float *plan_a;
    uint64_t *plan_seed;
    /* reference images shared by all inputs (black, uniform, file) */
    int R;          /* size of the baseline set (1 for black, blur, self) */
    float *ref;     /* host [R,chw] while the explainer is created, then NULL */
    /* host buffers */
    float *blur, *blurtmp;          /* [B,chw], [B,H*W]: blur baselines of a group */
    int32_t *cls;                   /* [B] */
    float *score, *sigma;           /* [B] */
    void *scanh;                    /* host copy of scand: ids, bad, range */
    uint64_t *ids;                  /* [B] in scanh */
    int64_t *bad;                   /* [B] in scanh */
    float *range;                   /* [B,2] in scanh */
    uint32_t *s0;                   /* [B] first sample id of each image of a group */
    int keyed;                      /* this run gave first sample ids (s0d holds them) */
    float *Lh, *maph;               /* [B,hw], [B,H*W] maps of a group (egc_host_alloc) */
    float *xstage;                  /* [B,chw] page-locked staging of the images, or NULL */
    int stage_state;                /* xstage: 0 not made yet (made by the first run whose
                                       images are not page-locked), 1 made, -1 none (CPU
                                       backend, or page-locked memory could not be had) */
    /* backend memory */
    void *dev[MAX_DEV_BUFS];
    int n_dev;
    size_t dev_bytes;
    float *xd;                      /* [B,chw] the group's images */
    float *refd, *arefd;            /* [R,chw], [R,khw] (combine B) */
    float *blurd, *ablurd;          /* [B,chw], [B,khw] (combine B) */
    float *axd;                     /* [B,khw] A(x) of the group */
    float *accd;                    /* [B,khw] A: sum of G; B: sum of (A(x)-A(x'))G */
    float *accmapd, *rowmapd;       /* [B,hw] C: sums of per-sample maps; one chunk's maps */
    float *wkd;                     /* [B,K] channel weights */
    float *Ld, *mapd, *finscr;      /* [B,hw], [B,H*W], [B,hw] */
    float *seedd;                   /* [B,classes] */
    float *scored;                  /* [B] y_c of the clean inputs */
    float *scoresd;                 /* [B*K] Score-CAM masked scores */
    int32_t *clsd;                  /* [B] */
    void *scand;                    /* [B] ids, [B] bad, [B,2] range (m_scan): 24 B bytes */
    uint64_t *idsd;                 /* [B] image ids, in scand */
    uint32_t *s0d;                  /* [B] */
    float *sigmad;                  /* [B] */
    /* phase timing (egc_explainer_set_profiling) */
    int prof;
    double t_last;
    egc_explain_phases ph;
    uint32_t *planbd;               /* [S] plan rows */
    float *planad;
    uint64_t *plansd;
    /* adaptive sample counts (o.samples_tol > 0): the group's active images sit in the
     * first slots of the per-image device buffers, in this order */
    int adaptive, round;            /* on; samples per round */
    int *act;                       /* [B] slot -> image of the group */
    int *nused;                     /* [B] samples drawn per image of the group */
    uint8_t *streak;                /* [B] per slot: consecutive rounds within the tolerance */
    float *prevm, *chkm;            /* [B,hw] host: last round's unit maps, this round's maps */
    uint32_t *as0;                  /* [B] per slot: first sample id of the round */
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
    o->score = EGC_SCORE_DEFAULT;
    o->samples = 32;
    o->baselines = EGC_BASELINES_BLACK;
    o->uniform_count = 16;
    o->noise = EGC_NOISE_DEFAULT;
    o->alpha = EGC_ALPHA_UNIFORM;
    o->combine = EGC_COMBINE_DEFAULT;
    o->seed = 0;
    o->batch = 32;
    o->plan_file = NULL;
    o->precision = EGC_PREC_FP32;
    o->max_device_bytes = 0;
    o->samples_tol = 0.0f;
    o->samples_round = 8;
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

const char *egc_score_name(egc_score s)
{
    return s == EGC_SCORE_SOFTMAX ? "softmax" : s == EGC_SCORE_LOGIT ? "logit" : "default";
}

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

const char *egc_alpha_name(egc_alpha a)
{
    return a == EGC_ALPHA_GRID ? "grid" : a == EGC_ALPHA_STRATIFIED ? "stratified" : "uniform";
}

const char *egc_combine_name(egc_combine c)
{
    return c == EGC_COMBINE_B ? "B" : c == EGC_COMBINE_C ? "C" : c == EGC_COMBINE_A ? "A"
                                                                                 : "default";
}

void egc_explainer_destroy(egc_explainer *e)
{
    if (!e) return;
    if (e->be)
        for (int i = 0; i < e->n_dev; i++) e->be->free(e->be, e->dev[i]);
    egc_session_destroy(e->s);
    free(e->layer_name);
    free(e->baseline_file);
    free(e->plan_file);
    free(e->plan_b);
    free(e->plan_a);
    free(e->plan_seed);
    float *bufs[] = {e->ref, e->blur, e->blurtmp, e->score, e->sigma, e->prevm, e->chkm};
    for (size_t i = 0; i < EGC_COUNT(bufs); i++) egc_aligned_free(bufs[i]);
    egc_host_free(e->Lh);
    egc_host_free(e->maph);
    egc_host_free(e->xstage);
    free(e->cls);
    free(e->scanh);
    free(e->s0);
    free(e->act);
    free(e->nused);
    free(e->streak);
    free(e->as0);
    free(e);
}

const egc_explain_options *egc_explainer_options(const egc_explainer *e) { return &e->o; }
int egc_explainer_samples(const egc_explainer *e) { return e->sampled ? e->S : 0; }
int egc_explainer_rows(const egc_explainer *e) { return e->B; }
const char *egc_explainer_layer(const egc_explainer *e) { return e->layer_name; }

void egc_explainer_geometry(const egc_explainer *e, int *h, int *w, int *H, int *W)
{
    if (h) *h = e->h;
    if (w) *w = e->w;
    if (H) *H = e->H;
    if (W) *W = e->W;
}

int egc_explainer_channels(const egc_explainer *e) { return e->C; }

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

/* The normalised image of the given pixels (C planes of bytes, or all zero when bytes ==
 * NULL; a gray model's one plane is its gray values). */
static egc_status normalised_pixels(const egc_explainer *e, const uint8_t *bytes, float *dst)
{
    egc_image img;
    img.w = e->W;
    img.h = e->H;
    size_t hw = (size_t)e->H * (size_t)e->W;
    EGC_TRY(egc_calloc((void **)&img.rgb, hw * 3, 1, "baseline pixels"));
    if (bytes)
        for (size_t i = 0; i < hw; i++)
            for (int c = 0; c < 3; c++)
                img.rgb[i * 3 + (size_t)c] = bytes[(size_t)(e->C == 1 ? 0 : c) * hw + i];
    egc_status st = egc_preset_normalize_channels(&img, e->o.preset, e->C, dst);
    free(img.rgb);
    return st;
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
        /* channels last, (R,H,W,C) or (H,W,C), where channels first does not fit */
        const int last =
            !ok && ((sh->ndim == 4 && sh->d[0] >= 1 && sh->d[1] == e->H && sh->d[2] == e->W &&
                     sh->d[3] == e->C) ||
                    (sh->ndim == 3 && sh->d[0] == e->H && sh->d[1] == e->W && sh->d[2] == e->C));
        if ((!ok && !last) || (sh->ndim == 4 && sh->d[0] > (1 << 20))) {
            char b[96];
            (void)egc_shape_str(sh, b, sizeof b);
            egc_tensor_free(&t);
            return EGC_FAIL(EGC_E_SHAPE, "reference file %s: shape %s does not fit the model "
                            "input (R,%d,%d,%d) (or channels last, (R,%d,%d,%d))",
                            o->baseline_file, b, e->C, e->H, e->W, e->H, e->W, e->C);
        }
        e->R = sh->ndim == 4 ? (int)sh->d[0] : 1;
        egc_status st = fbuf(&e->ref, (size_t)e->R * e->chw, "reference images");
        if (st == EGC_OK && last) {
            egc_channels_first(t.data, e->R, e->C, (int64_t)e->H * e->W, e->ref);
        } else if (st == EGC_OK) {
            memcpy(e->ref, t.data, (size_t)e->R * e->chw * sizeof(float));
        }
        if (st == EGC_OK) {
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

/* ---- backend memory and the passes' building blocks ---- */

/* Reserves bytes of backend memory for the explainer (freed by egc_explainer_destroy). */
static egc_status dalloc(egc_explainer *e, void **p, size_t bytes, const char *what)
{
    *p = NULL;
    if (e->n_dev == MAX_DEV_BUFS)
        return EGC_FAIL(EGC_E_INTERNAL, "explainer: too many device buffers (%s)", what);
    egc_status st = e->be->alloc(e->be, bytes ? bytes : 1, p);
    if (st != EGC_OK) return egc_error_prefix(st, "explainer %s: ", what);
    e->dev[e->n_dev++] = *p;
    e->dev_bytes += bytes;
    return EGC_OK;
}

/* A float buffer of n elements in backend memory, zero-filled. */
static egc_status dfloats(egc_explainer *e, float **p, size_t n, const char *what)
{
    if (n > SIZE_MAX / sizeof(float))
        return EGC_FAIL(EGC_E_NOMEM, "explainer %s: %zu floats is too many", what, n);
    EGC_TRY(dalloc(e, (void **)p, n * sizeof(float), what));
    return e->be->fill(e->be, *p, 0.0f, (int64_t)n);
}

static egc_view value(const egc_explainer *e, int v) { return egc_plan_value(e->plan, v); }

/* The plan's input = rows src[0..n) (backend memory, chw floats each); the plan then runs
 * those n rows, or a few more that are zero (egc_plan_use_rows). */
static egc_status load_rows(egc_explainer *e, const float *src, int n)
{
    float *in = value(e, e->in_v).ptr;
    if (src != in) EGC_TRY(e->be->m_copy(e->be, in, src, (size_t)n * e->chw * sizeof(float)));
    return egc_plan_use_rows(e->plan, n);
}

/* Zeroes the seed rows n.. that the plan runs beyond the n written by m_score_seed. */
static egc_status seed_tail(egc_explainer *e, int n)
{
    int64_t rows = egc_plan_rows(e->plan);
    if (n >= rows) return EGC_OK;
    return e->be->fill(e->be, e->seedd + (size_t)n * (size_t)e->classes, 0.0f,
                       (rows - n) * e->classes);
}

/* The target activations of n images imgs[n,chw] (backend memory) into out[n,khw], in
 * chunks of B rows through the trunk only. */
static egc_status target_acts(egc_explainer *e, const float *imgs, int n, float *out)
{
    for (int r0 = 0; r0 < n; r0 += e->B) {
        int nb = EGC_MIN(e->B, n - r0);
        EGC_TRY(load_rows(e, imgs + (size_t)r0 * e->chw, nb));
        EGC_TRY(egc_plan_forward_trunk(e->plan));
        EGC_TRY(e->be->m_copy(e->be, out + (size_t)r0 * e->khw, value(e, e->tgt_v).ptr,
                              (size_t)nb * e->khw * sizeof(float)));
    }
    return EGC_OK;
}

/* The sample rows of the current group (arrays in backend memory). */
/* ---- phase timing ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

enum { PH_SCAN, PH_UPLOAD, PH_CLEAN, PH_PERTURB, PH_FORWARD, PH_BACKWARD, PH_REDUCE,
       PH_FINALIZE, PH_DOWNLOAD };

/* With profiling on: waits for the device and adds the time since the last mark to phase k. */
static egc_status phase(egc_explainer *e, int k)
{
    if (!e->prof) return EGC_OK;
    EGC_TRY(e->be->sync(e->be));
    double t = now_ms(), d = t - e->t_last;
    e->t_last = t;
    double *f[] = {&e->ph.scan_ms, &e->ph.upload_ms, &e->ph.clean_ms, &e->ph.perturb_ms,
                   &e->ph.forward_ms, &e->ph.backward_ms, &e->ph.reduce_ms,
                   &e->ph.finalize_ms, &e->ph.download_ms};
    *f[k] += d;
    return EGC_OK;
}

void egc_explainer_set_profiling(egc_explainer *e, int on)
{
    if (!e) return;
    e->prof = on != 0;
    memset(&e->ph, 0, sizeof e->ph);
}

void egc_explainer_phases(const egc_explainer *e, egc_explain_phases *out)
{
    if (!out) return;
    if (!e) memset(out, 0, sizeof *out);
    else *out = e->ph;
}

static egc_sample_spec group_spec(const egc_explainer *e)
{
    egc_sample_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.seed = e->o.seed;
    sp.ids = e->idsd;
    sp.sample0 = e->keyed ? e->s0d : NULL;
    sp.sigma = e->sigmad;
    sp.plan_b = e->planbd;
    sp.plan_a = e->planad;
    sp.plan_seed = e->plansd;
    sp.S = e->S;
    sp.R = (uint32_t)e->R;
    sp.per_image = e->o.baselines == EGC_BASELINES_SELF || e->o.baselines == EGC_BASELINES_BLUR;
    sp.alpha_mode = (int32_t)e->o.alpha;
    sp.plan = e->plan_n > 0;
    return sp;
}

/* ---- creation ---- */

static egc_status check_options(const egc_explain_options *o)
{
    if ((int)o->method < 0 || o->method >= EGC_METHOD_COUNT)
        return EGC_FAIL(EGC_E_ARG, "method %d out of range", (int)o->method);
    if (o->score != EGC_SCORE_LOGIT && o->score != EGC_SCORE_SOFTMAX &&
        o->score != EGC_SCORE_DEFAULT)
        return EGC_FAIL(EGC_E_ARG, "score %d is neither logit nor softmax", (int)o->score);
    if ((int)o->baselines < 0 || o->baselines > EGC_BASELINES_FILE)
        return EGC_FAIL(EGC_E_ARG, "baselines %d out of range", (int)o->baselines);
    if (o->alpha != EGC_ALPHA_UNIFORM && o->alpha != EGC_ALPHA_GRID &&
        o->alpha != EGC_ALPHA_STRATIFIED)
        return EGC_FAIL(EGC_E_ARG, "alpha %d is not uniform, grid or stratified", (int)o->alpha);
    if ((int)o->combine < (int)EGC_COMBINE_DEFAULT || o->combine > EGC_COMBINE_C)
        return EGC_FAIL(EGC_E_ARG, "combine %d is not A, B or C", (int)o->combine);
    if (o->samples < 1 || o->samples > (1 << 20))
        return EGC_FAIL(EGC_E_ARG, "samples must be in 1..%d (got %d)", 1 << 20, o->samples);
    if (o->batch < 1 || o->batch > 65536)
        return EGC_FAIL(EGC_E_ARG, "batch must be in 1..65536 (got %d)", o->batch);
    if ((!(o->noise >= 0.0f) || !isfinite(o->noise)) && o->noise != EGC_NOISE_DEFAULT)
        return EGC_FAIL(EGC_E_ARG, "noise (rho) must be a finite number >= 0 (got %g)",
                        (double)o->noise);
    if (o->uniform_count < 1 || o->uniform_count > 4096)
        return EGC_FAIL(EGC_E_ARG, "uniform_count must be in 1..4096 (got %d)", o->uniform_count);
    if (egc_preset_base(o->preset) < 0)
        return EGC_FAIL(EGC_E_ARG, "preset %d out of range", (int)o->preset);
    if (!(o->samples_tol >= 0.0f) || !isfinite(o->samples_tol))
        return EGC_FAIL(EGC_E_ARG, "samples_tol must be a finite number >= 0 (got %g)",
                        (double)o->samples_tol);
    if (o->samples_round < 0 || o->samples_round > (1 << 20))
        return EGC_FAIL(EGC_E_ARG, "samples_round must be in 1..%d, or 0 for 8 (got %d)",
                        1 << 20, o->samples_round);
    return EGC_OK;
}

/* The m_cam method of the final map of a method. */
static int method_cam(egc_method m)
{
    switch (m) {
    case EGC_METHOD_GRADCAMPP:
    case EGC_METHOD_EXPECTED_GRADCAMPP: return EGC_CAM_GRADCAMPP;
    case EGC_METHOD_XGRADCAM:
    case EGC_METHOD_EXPECTED_XGRADCAM: return EGC_CAM_XGRADCAM;
    case EGC_METHOD_HIRESCAM:
    case EGC_METHOD_EXPECTED_HIRESCAM: return EGC_CAM_HIRESCAM;
    case EGC_METHOD_LAYERCAM:
    case EGC_METHOD_EXPECTED_LAYERCAM: return EGC_CAM_LAYERCAM;
    case EGC_METHOD_SCORECAM: return EGC_CAM_SCORECAM;
    default: return EGC_CAM_GRADCAM;
    }
}

static egc_status copy_str(char **dst, const char *src)
{
    *dst = NULL;
    if (!src) return EGC_OK;
    return egc_strdup(dst, src);
}

/* Bytes per row of the scan results: id, first bad index, min and max. */
#define SCAN_ROW_BYTES (sizeof(uint64_t) + sizeof(int64_t) + 2 * sizeof(float))

/* Device bytes per row of B that the explainer's own buffers take (the B-scaled dfloats and
 * dalloc of explainer_create_rows; keep in step with them). Needs the geometry, the method
 * and the resolved options. */
static size_t device_row_bytes(const egc_explainer *e)
{
    const egc_explain_options *o = &e->o;
    size_t f = sizeof(float), HW = (size_t)e->H * (size_t)e->W, hw = (size_t)e->hw;
    size_t K = (size_t)e->K;
    /* xd, axd, wkd, Ld, mapd, finscr, seedd, scored; clsd */
    size_t b = f * (e->chw + e->khw + K + hw + HW + hw + (size_t)e->classes + 1) + sizeof(int32_t);
    b += SCAN_ROW_BYTES; /* scand */
    if (o->method == EGC_METHOD_SCORECAM) b += f * K; /* scoresd */
    if (e->sampled) {
        b += sizeof(uint32_t) + f; /* s0d, sigmad */
        b += o->combine == EGC_COMBINE_C ? 2 * f * hw : f * e->khw; /* accmapd+rowmapd | accd */
        if (o->baselines == EGC_BASELINES_BLUR)
            b += f * (e->chw + (o->combine == EGC_COMBINE_B ? e->khw : 0)); /* blurd, ablurd */
    }
    return b;
}

/* Device bytes the explainer's own buffers take once: the shared baseline set and its
 * activations, the sample plan. Needs load_refs and load_plan done. */
static size_t device_fixed_bytes(const egc_explainer *e)
{
    size_t b = 0;
    if (!e->sampled) return 0;
    b += (size_t)e->plan_n * (sizeof(uint32_t) + sizeof(float) + sizeof(uint64_t));
    if (e->ref) {
        size_t R = (size_t)e->R;
        b += R * e->chw * sizeof(float);
        if (e->o.combine == EGC_COMBINE_B) b += R * e->khw * sizeof(float);
    }
    return b;
}

/* egc_explainer_create with a session of at most `rows` rows per pass (the session may split
 * further under the memory cap). *chunk is the session's rows per pass once it exists (0
 * before). */
static egc_status explainer_create_rows(const egc_model *m, const char *device,
                                        const egc_explain_options *opts, int rows,
                                        egc_explainer **out, int *chunk)
{
    *out = NULL;
    *chunk = 0;
    if (!m || !opts) return EGC_FAIL(EGC_E_ARG, "egc_explainer_create: model and options needed");
    EGC_TRY(check_options(opts));
    egc_status st;
    egc_explainer *e = NULL;
    EGC_TRY(egc_calloc((void **)&e, 1, sizeof *e, "explainer"));
    e->o = *opts;
    e->m = m;
    egc_explain_options *o = &e->o;
    /* The method's defaults (explain.h), then the method-implied options. */
    int egc = o->method == EGC_METHOD_EXPECTED_GRADCAM;
    if (o->score == EGC_SCORE_DEFAULT) o->score = egc ? EGC_SCORE_SOFTMAX : EGC_SCORE_LOGIT;
    if (o->combine == EGC_COMBINE_DEFAULT) o->combine = egc ? EGC_COMBINE_B : EGC_COMBINE_A;
    if (o->noise == EGC_NOISE_DEFAULT) o->noise = egc ? 0.0f : 0.15f;
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
    e->cam = method_cam(o->method);
    /* adaptive counts need draws that do not depend on S: alpha uniform, no plan */
    if (!e->sampled || o->alpha != EGC_ALPHA_UNIFORM || (o->plan_file && o->plan_file[0]))
        o->samples_tol = 0.0f;
    if (o->samples_round <= 0) o->samples_round = 8;
    e->adaptive = o->samples_tol > 0.0f;
    e->round = o->samples_round;
    EGC_TRYG(st, copy_str(&e->baseline_file, o->baselines == EGC_BASELINES_FILE
                                                 ? o->baseline_file : NULL), fail);
    o->baseline_file = e->baseline_file;
    EGC_TRYG(st, copy_str(&e->plan_file, e->sampled ? o->plan_file : NULL), fail);
    o->plan_file = e->plan_file;

    /* Geometry. */
    egc_model_input_chw(m, &e->C, &e->H, &e->W);
    e->classes = egc_model_num_classes(m);
    if (e->C != 3 && e->C != 1) {
        st = EGC_FAIL(EGC_E_UNSUPPORTED, "the model takes %d input channels; egcam explains "
                      "models of RGB (3) or gray (1) images", e->C);
        goto fail;
    }
    int layer = -1;
    EGC_TRYG(st, egc_model_find_layer(m, o->layer, &layer), fail);
    egc_layer_info li;
    egc_shape cs;
    EGC_TRYG(st, egc_model_layer(m, layer, &li), fail);
    EGC_TRYG(st, egc_model_layer_cam_shape(m, layer, &cs), fail);
    if (cs.ndim != 4 || cs.d[2] < 1 || cs.d[3] < 1) {
        char b[96];
        (void)egc_shape_str(&cs, b, sizeof b);
        st = EGC_FAIL(EGC_E_ARG, "target layer '%s' has shape %s; a CAM needs a 4-D activation "
                      "[1,K,h,w]", li.name, b);
        goto fail;
    }
    EGC_TRYG(st, egc_strdup(&e->layer_name, li.name), fail);
    o->layer = e->layer_name;
    /* The target geometry at batch 1, for the device bytes the buffers below will take. */
    e->K = (int)cs.d[1];
    e->h = (int)cs.d[2];
    e->w = (int)cs.d[3];
    e->hw = e->h * e->w;
    e->chw = (size_t)e->C * (size_t)e->H * (size_t)e->W;
    e->khw = (size_t)e->K * (size_t)e->hw;

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

    /* The session: rows per pass e->B = its chunk, which counts the explainer's buffers
     * against the memory cap. */
    egc_session_options so;
    egc_session_options_default(&so);
    so.precision = o->precision;
    so.max_device_bytes = o->max_device_bytes;
    so.extra_row_bytes = device_row_bytes(e);
    so.extra_fixed_bytes = device_fixed_bytes(e);
    EGC_TRYG(st, egc_session_create_ex(m, device ? device : "cpu", rows, layer, &so, &e->s), fail);
    e->B = egc_session_chunk(e->s);
    *chunk = e->B;
    e->be = egc_session_backend(e->s);
    e->plan = egc_session_plan(e->s);
    e->in_v = egc_session_graph(e->s)->input;
    e->out_v = egc_session_graph(e->s)->output;
    e->tgt_v = egc_session_target_value(e->s);
    if (!e->be->m_scan || !e->be->m_copy || !e->be->m_perturb || !e->be->m_scorecam_inputs ||
        !e->be->m_score_seed || !e->be->m_accumulate || !e->be->m_mean || !e->be->m_cam ||
        !e->be->m_finalize) {
        st = EGC_FAIL(EGC_E_UNSUPPORTED, "device %s: its backend has no explanation-method "
                      "entries", e->be->name);
        goto fail;
    }
    /* Where the backend computes whole passes (partial_rows 0: CUDA), a clean pass of its
     * own costs a full pass for the group's g rows: the clean rows of a fixed-count sampled
     * method ride in the first sample pass instead (sample_rows). The CPU computes the rows
     * it holds, so there merging would only add the clean rows' head backward.
     * EGC_MERGE_CLEAN=1|0 turns it on or off on any backend. */
    const char *mc = getenv("EGC_MERGE_CLEAN");
    int merge = mc && (!strcmp(mc, "0") || !strcmp(mc, "1")) ? mc[0] == '1' : !e->be->partial_rows;
    e->merge = e->sampled && !e->adaptive && merge;
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

    /* Host buffers. */
    size_t B = (size_t)e->B;
    EGC_TRYG(st, fbuf(&e->score, B, "scores"), fail);
    EGC_TRYG(st, fbuf(&e->sigma, B, "noise sigmas"), fail);
    /* Host ends of the uploads and downloads: page-locked on a CUDA backend (DMA at the bus's
     * full speed). Images that are not page-locked are staged through xstage (made by the
     * first run that needs it). */
    EGC_TRYG(st, egc_host_alloc(e->be->name, B * (size_t)e->hw * sizeof(float), (void **)&e->Lh),
             fail);
    EGC_TRYG(st, egc_host_alloc(e->be->name, B * (size_t)e->H * (size_t)e->W * sizeof(float),
                                (void **)&e->maph), fail);
    EGC_TRYG(st, egc_calloc((void **)&e->cls, B, sizeof *e->cls, "classes"), fail);
    EGC_TRYG(st, egc_calloc(&e->scanh, B, SCAN_ROW_BYTES, "image scans"), fail);
    e->ids = e->scanh;
    e->bad = (int64_t *)(e->ids + B);
    e->range = (float *)(e->bad + B);
    EGC_TRYG(st, egc_calloc((void **)&e->s0, B, sizeof *e->s0, "sample offsets"), fail);

    /* Backend memory. */
    size_t HW = (size_t)e->H * (size_t)e->W;
    EGC_TRYG(st, dfloats(e, &e->xd, B * e->chw, "input images"), fail);
    EGC_TRYG(st, dfloats(e, &e->axd, B * e->khw, "clean activations"), fail);
    EGC_TRYG(st, dfloats(e, &e->wkd, B * (size_t)e->K, "channel weights"), fail);
    EGC_TRYG(st, dfloats(e, &e->Ld, B * (size_t)e->hw, "raw maps"), fail);
    EGC_TRYG(st, dfloats(e, &e->mapd, B * HW, "maps"), fail);
    EGC_TRYG(st, dfloats(e, &e->finscr, B * (size_t)e->hw, "map scratch"), fail);
    EGC_TRYG(st, dfloats(e, &e->seedd, B * (size_t)e->classes, "score seeds"), fail);
    EGC_TRYG(st, dfloats(e, &e->scored, B, "scores"), fail);
    EGC_TRYG(st, dalloc(e, (void **)&e->clsd, B * sizeof(int32_t), "classes"), fail);
    EGC_TRYG(st, dalloc(e, &e->scand, B * SCAN_ROW_BYTES, "image scans"), fail);
    e->idsd = e->scand;
    if (o->method == EGC_METHOD_SCORECAM)
        EGC_TRYG(st, dfloats(e, &e->scoresd, B * (size_t)e->K, "Score-CAM scores"), fail);
    if (e->sampled) {
        EGC_TRYG(st, dalloc(e, (void **)&e->s0d, B * sizeof(uint32_t), "sample offsets"), fail);
        EGC_TRYG(st, dfloats(e, &e->sigmad, B, "noise sigmas"), fail);
        if (e->adaptive) {
            EGC_TRYG(st, egc_calloc((void **)&e->act, B, sizeof *e->act, "adaptive samples"), fail);
            EGC_TRYG(st, egc_calloc((void **)&e->nused, B, sizeof *e->nused, "adaptive samples"), fail);
            EGC_TRYG(st, egc_calloc((void **)&e->streak, B, 1, "adaptive samples"), fail);
            EGC_TRYG(st, fbuf(&e->prevm, B * (size_t)e->hw, "adaptive samples"), fail);
            EGC_TRYG(st, fbuf(&e->chkm, B * (size_t)e->hw, "adaptive samples"), fail);
            EGC_TRYG(st, egc_calloc((void **)&e->as0, B, sizeof *e->as0, "adaptive samples"), fail);
        }
        if (o->combine == EGC_COMBINE_C) {
            EGC_TRYG(st, dfloats(e, &e->accmapd, B * (size_t)e->hw, "map sums"), fail);
            EGC_TRYG(st, dfloats(e, &e->rowmapd, B * (size_t)e->hw, "sample maps"), fail);
        } else {
            EGC_TRYG(st, dfloats(e, &e->accd, B * e->khw, "gradient sums"), fail);
        }
        if (e->plan_n) {
            size_t P = (size_t)e->plan_n;
            EGC_TRYG(st, dalloc(e, (void **)&e->planbd, P * sizeof(uint32_t), "sample plan"), fail);
            EGC_TRYG(st, dalloc(e, (void **)&e->planad, P * sizeof(float), "sample plan"), fail);
            EGC_TRYG(st, dalloc(e, (void **)&e->plansd, P * sizeof(uint64_t), "sample plan"), fail);
            EGC_TRYG(st, e->be->upload(e->be, e->planbd, e->plan_b, P * sizeof(uint32_t)), fail);
            EGC_TRYG(st, e->be->upload(e->be, e->planad, e->plan_a, P * sizeof(float)), fail);
            EGC_TRYG(st, e->be->upload(e->be, e->plansd, e->plan_seed, P * sizeof(uint64_t)), fail);
        }
        if (o->baselines == EGC_BASELINES_BLUR) {
            EGC_TRYG(st, fbuf(&e->blur, B * e->chw, "blur baselines"), fail);
            EGC_TRYG(st, fbuf(&e->blurtmp, B * HW, "blur scratch"), fail);
            EGC_TRYG(st, dfloats(e, &e->blurd, B * e->chw, "blur baselines"), fail);
            if (o->combine == EGC_COMBINE_B)
                EGC_TRYG(st, dfloats(e, &e->ablurd, B * e->khw, "blur activations"), fail);
        }
        if (e->ref) {
            /* The shared baseline set lives on the device; A(x') once per reference image. */
            size_t R = (size_t)e->R;
            EGC_TRYG(st, dfloats(e, &e->refd, R * e->chw, "reference images"), fail);
            EGC_TRYG(st, e->be->upload(e->be, e->refd, e->ref, R * e->chw * sizeof(float)), fail);
            if (o->combine == EGC_COMBINE_B) {
                EGC_TRYG(st, dfloats(e, &e->arefd, R * e->khw, "reference activations"), fail);
                EGC_TRYG(st, target_acts(e, e->refd, e->R, e->arefd), fail);
            }
            EGC_TRYG(st, e->be->sync(e->be), fail);
            egc_aligned_free(e->ref);
            e->ref = NULL;
        }
    }
    *out = e;
    return EGC_OK;
fail:
    egc_explainer_destroy(e);
    return st;
}

egc_status egc_explainer_create(const egc_model *m, const char *device,
                                const egc_explain_options *opts, egc_explainer **out)
{
    *out = NULL;
    if (!m || !opts) return EGC_FAIL(EGC_E_ARG, "egc_explainer_create: model and options needed");
    EGC_TRY(check_options(opts));
    size_t cap = opts->max_device_bytes;
    int rows = opts->batch;
    for (int tries = 0;; tries++) {
        egc_explainer *e = NULL;
        int chunk = 0;
        egc_status st = explainer_create_rows(m, device, opts, rows, &e, &chunk);
        /* Out of memory in the explainer's own buffers (the session fitted): fewer rows. */
        if (st == EGC_E_NOMEM && chunk > 1) {
            rows = chunk / 2;
            continue;
        }
        if (st != EGC_OK) return st;
        size_t used = egc_explainer_device_bytes(e);
        if (!cap || used <= cap) {
            *out = e;
            return EGC_OK;
        }
        /* The session's estimate of the buffers fell short of the cap: fewer rows. */
        int B = e->B;
        egc_explainer_destroy(e);
        if (B == 1)
            return EGC_FAIL(EGC_E_NOMEM, "explainer: %zu device bytes at one row exceed the "
                            "device memory cap of %zu bytes", used, cap);
        rows = tries < 3 ? B - 1 : B / 2;
    }
}

/* ---- runs ---- */

typedef struct out_ctx {
    egc_explainer *e;
    egc_cam_result *out; /* the group's results */
    int maps_direct;     /* the maps were downloaded into out[].map already */
} out_ctx;

static void out_one(int64_t i, void *arg)
{
    const out_ctx *c = arg;
    egc_explainer *e = c->e;
    egc_cam_result *r = &c->out[i];
    size_t HW = (size_t)e->H * (size_t)e->W;
    r->cls = e->cls[i];
    r->score = e->score[i];
    r->image_id = e->ids[i];
    r->samples = !e->sampled ? 0 : e->adaptive ? e->nused[i] : e->S;
    if (r->raw) memcpy(r->raw, e->Lh + (size_t)i * (size_t)e->hw, (size_t)e->hw * sizeof(float));
    if (r->map && !c->maps_direct) memcpy(r->map, e->maph + (size_t)i * HW, HW * sizeof(float));
}

/* The caller's map buffer the group's g maps can be downloaded into directly, or NULL: the
 * results' maps lie back to back (out[i].map = out[0].map + i HW) in memory a download
 * writes at full speed (egc_host_alloc's page-locked memory, or any host memory when the
 * backend's memory is the host's), so no host copy follows the download. */
static float *direct_maps(const egc_explainer *e, const egc_cam_result *out, int g)
{
    const size_t HW = (size_t)e->H * (size_t)e->W;
    if (!out[0].map) return NULL;
    for (int i = 1; i < g; i++)
        if (out[i].map != out[0].map + (size_t)i * HW) return NULL;
    return !egc_device_is_cuda(e->be->name) || egc_host_pinned(out[0].map) ? out[0].map : NULL;
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

/* The clean rows' share of a pass whose rows 0..c-1 are the group's first c images (in the
 * plan's values after the forward): their classes resolved, their scores into e->scored and
 * A(x) into e->axd, what the sampled methods and Score-CAM need of the clean pass. */
static egc_status clean_rows(egc_explainer *e, int c)
{
    egc_backend *be = e->be;
    EGC_TRY(be->m_score_seed(be, value(e, e->out_v).ptr, c, e->classes, e->clsd, 0, 1, 1,
                             e->o.score == EGC_SCORE_SOFTMAX, NULL, e->scored));
    return be->m_copy(be, e->axd, value(e, e->tgt_v).ptr, (size_t)c * e->khw * sizeof(float));
}

/* The clean pass of the group's g images (in e->xd, classes in e->clsd): resolves the
 * classes, the scores into e->scored, and either the raw maps of a single-pass method into
 * e->Ld or A(x) into e->axd. */
static egc_status clean_pass(egc_explainer *e, int g)
{
    egc_backend *be = e->be;
    int single = !e->sampled && e->o.method != EGC_METHOD_SCORECAM;
    EGC_TRY(load_rows(e, e->xd, g));
    EGC_TRY(egc_plan_forward(e->plan));
    if (!single) return clean_rows(e, g); /* sampled methods, Score-CAM */
    EGC_TRY(be->m_score_seed(be, value(e, e->out_v).ptr, g, e->classes, e->clsd, 0, 1, 1,
                             e->o.score == EGC_SCORE_SOFTMAX, e->seedd, e->scored));
    egc_view A = value(e, e->tgt_v);
    EGC_TRY(seed_tail(e, g));
    EGC_TRY(egc_plan_backward(e->plan, e->seedd));
    egc_view G = egc_plan_grad(e->plan, e->tgt_v);
    return be->m_cam(be, e->cam, G.ptr, A.ptr, g, e->K, e->hw, e->wkd, e->Ld);
}

/* Score-CAM: the K masked inputs of each image through the model in chunks of B rows,
 * their softmax scores, and the raw maps into e->Ld. */
static egc_status scorecam_pass(egc_explainer *e, int g)
{
    egc_backend *be = e->be;
    float *in = value(e, e->in_v).ptr;
    int64_t rows = (int64_t)g * e->K;
    for (int64_t r0 = 0; r0 < rows; r0 += e->B) {
        int nb = (int)EGC_MIN((int64_t)e->B, rows - r0);
        EGC_TRY(be->m_scorecam_inputs(be, e->xd, e->axd, r0, nb, e->K, e->h, e->w, e->C, e->H,
                                      e->W, in));
        EGC_TRY(load_rows(e, in, nb));
        EGC_TRY(egc_plan_forward(e->plan));
        EGC_TRY(be->m_score_seed(be, value(e, e->out_v).ptr, nb, e->classes, e->clsd, r0, e->K,
                                 0, 1, NULL, e->scoresd + r0));
    }
    return be->m_cam(be, EGC_CAM_SCORECAM, e->scoresd, e->axd, g, e->K, e->hw, e->wkd, e->Ld);
}

/* The sample rows of g images x sp->S samples (image i's rows use slot i of the per-image
 * buffers: xd, base and aref when per image, axd, the accumulators) in chunks of B rows,
 * each chunk's gradients reduced into the accumulators (accd, or accmapd for C).
 * lead > 0 (e->merge; lead = g <= B): the first chunk starts with the g clean images, whose
 * classes, scores and A(x) (clean_rows) come from that chunk's forward before its sample
 * rows are seeded and reduced; the clean rows get zero seeds. A group of g < B images then
 * takes ceil(g (S + 1) / B) passes instead of 1 + ceil(g S / B) on a backend that computes
 * whole passes. */
static egc_status sample_rows(egc_explainer *e, const egc_sample_spec *sp, const float *base,
                              const float *aref, int g, int lead)
{
    egc_backend *be = e->be;
    const egc_explain_options *o = &e->o;
    float *in = value(e, e->in_v).ptr;
    int64_t rows = (int64_t)g * sp->S;
    for (int64_t r0 = 0; r0 < rows || lead > 0; lead = 0) {
        const int c = lead; /* clean rows at the head of this chunk */
        const int nb = (int)EGC_MIN((int64_t)e->B - c, rows - r0);
        float *zin = in + (size_t)c * e->chw;
        if (c > 0) EGC_TRY(be->m_copy(be, in, e->xd, (size_t)c * e->chw * sizeof(float)));
        if (nb > 0) EGC_TRY(be->m_perturb(be, sp, e->xd, base, r0, nb, (int64_t)e->chw, zin));
        EGC_TRY(load_rows(e, in, c + nb));
        EGC_TRY(phase(e, PH_PERTURB));
        EGC_TRY(egc_plan_forward(e->plan));
        EGC_TRY(phase(e, PH_FORWARD));
        if (c > 0) EGC_TRY(clean_rows(e, c));
        if (nb == 0) continue; /* g == B: the first chunk holds the clean rows alone */
        const size_t cs = (size_t)c * (size_t)e->classes;
        EGC_TRY(be->m_score_seed(be, value(e, e->out_v).ptr + cs, nb, e->classes, e->clsd, r0,
                                 sp->S, 0, o->score == EGC_SCORE_SOFTMAX, e->seedd + cs, NULL));
        if (c > 0) EGC_TRY(be->fill(be, e->seedd, 0.0f, (int64_t)cs));
        EGC_TRY(seed_tail(e, c + nb));
        EGC_TRY(egc_plan_backward(e->plan, e->seedd));
        EGC_TRY(phase(e, PH_BACKWARD));
        const float *G = egc_plan_grad(e->plan, e->tgt_v).ptr + (size_t)c * e->khw;
        if (o->combine == EGC_COMBINE_A) {
            EGC_TRY(be->m_accumulate(be, EGC_ACC_SUM, sp, r0, nb, (int64_t)e->khw, G, NULL, NULL,
                                     e->accd));
        } else if (o->combine == EGC_COMBINE_B) {
            EGC_TRY(be->m_accumulate(be, EGC_ACC_DIFF, sp, r0, nb, (int64_t)e->khw, G, e->axd,
                                     aref, e->accd));
        } else {
            EGC_TRY(be->m_cam(be, EGC_CAM_GRADCAM, G,
                              value(e, e->tgt_v).ptr + (size_t)c * e->khw, nb, e->K, e->hw,
                              e->wkd, e->rowmapd));
            EGC_TRY(be->m_accumulate(be, EGC_ACC_SUM, sp, r0, nb, (int64_t)e->hw, e->rowmapd,
                                     NULL, NULL, e->accmapd));
        }
        EGC_TRY(phase(e, PH_REDUCE));
        r0 += nb;
    }
    return EGC_OK;
}

/* The raw maps of the g images in slots j..j+g-1 from their accumulators over n samples
 * each, into Ld[0..g): the mean, then C: the mean map; A: the method's map of the expected
 * gradient; B: Grad-CAM of Phi (egc_expected_map_b). */
static egc_status finish_maps(egc_explainer *e, int j, int g, int n, float *Ld)
{
    egc_backend *be = e->be;
    if (e->o.combine == EGC_COMBINE_C) {
        float *acc = e->accmapd + (size_t)j * (size_t)e->hw;
        EGC_TRY(be->m_mean(be, acc, (int64_t)g * e->hw, n));
        return be->m_copy(be, Ld, acc, (size_t)g * (size_t)e->hw * sizeof(float));
    }
    float *acc = e->accd + (size_t)j * e->khw;
    EGC_TRY(be->m_mean(be, acc, (int64_t)((size_t)g * e->khw), n));
    return be->m_cam(be, e->o.combine == EGC_COMBINE_B ? EGC_CAM_GRADCAM : e->cam, acc,
                     e->axd + (size_t)j * e->khw, g, e->K, e->hw, e->wkd, Ld);
}

/* Copies slot j of the per-image device buffers the samples read or write to slot k: the
 * image, its id, noise scale and class, A(x), the accumulator and the blur baseline. */
static egc_status move_slot(egc_explainer *e, int j, int k)
{
    egc_backend *be = e->be;
    size_t cb = e->chw * sizeof(float), kb = e->khw * sizeof(float), hb = (size_t)e->hw * sizeof(float);
    EGC_TRY(be->m_copy(be, e->idsd + k, e->idsd + j, sizeof *e->idsd));
    EGC_TRY(be->m_copy(be, e->sigmad + k, e->sigmad + j, sizeof *e->sigmad));
    EGC_TRY(be->m_copy(be, e->clsd + k, e->clsd + j, sizeof *e->clsd));
    EGC_TRY(be->m_copy(be, e->xd + (size_t)k * e->chw, e->xd + (size_t)j * e->chw, cb));
    EGC_TRY(be->m_copy(be, e->axd + (size_t)k * e->khw, e->axd + (size_t)j * e->khw, kb));
    if (e->accd) EGC_TRY(be->m_copy(be, e->accd + (size_t)k * e->khw, e->accd + (size_t)j * e->khw, kb));
    if (e->accmapd)
        EGC_TRY(be->m_copy(be, e->accmapd + (size_t)k * e->hw, e->accmapd + (size_t)j * e->hw, hb));
    if (e->o.baselines == EGC_BASELINES_BLUR) {
        EGC_TRY(be->m_copy(be, e->blurd + (size_t)k * e->chw, e->blurd + (size_t)j * e->chw, cb));
        if (e->ablurd)
            EGC_TRY(be->m_copy(be, e->ablurd + (size_t)k * e->khw, e->ablurd + (size_t)j * e->khw, kb));
    }
    return EGC_OK;
}

/* Adaptive sample counts (explain.h, samples_tol): rounds of e->round samples over the
 * group's active images, which sit in the first slots; after each round the images whose
 * unit-norm Grad-CAM map of the running sums moved by at most the tolerance in PATIENCE
 * consecutive rounds, or that reached S samples, get their raw maps (into their own rows
 * of e->Ld) and leave; the others move up (move_slot). The per-image device buffers end up
 * permuted; the classes in e->clsd are restored. */
static egc_status adaptive_pass(egc_explainer *e, const egc_sample_spec *sp0, const float *base,
                                const float *aref, int g)
{
    egc_backend *be = e->be;
    const int C = e->o.combine == EGC_COMBINE_C;
    const size_t hw = (size_t)e->hw;
    /* the resolved classes in image order, for the restore at the end */
    EGC_TRY(be->download(be, e->cls, e->clsd, (size_t)g * sizeof(int32_t)));
    for (int i = 0; i < g; i++) {
        e->act[i] = i;
        e->nused[i] = 0;
        e->streak[i] = 0;
    }
    egc_sample_spec sp = *sp0;
    sp.sample0 = e->s0d;
    int ga = g, n = 0;
    for (int t = 0; ga > 0; t++) {
        int rr = EGC_MIN(e->round, e->S - n);
        for (int j = 0; j < ga; j++) e->as0[j] = (e->keyed ? e->s0[e->act[j]] : 0u) + (uint32_t)n;
        EGC_TRY(be->upload(be, e->s0d, e->as0, (size_t)ga * sizeof(uint32_t)));
        sp.S = rr;
        EGC_TRY(sample_rows(e, &sp, base, aref, ga, 0));
        n += rr;
        /* this round's maps of the running sums (Grad-CAM is homogeneous: the map of a sum
         * is n times the map of the mean) */
        int last = n >= e->S;
        if (!last) {
            const float *Mh = e->accmapd;
            if (!C) {
                EGC_TRY(be->m_cam(be, EGC_CAM_GRADCAM, e->accd, e->axd, ga, e->K, e->hw, e->wkd,
                                  e->finscr));
                Mh = e->finscr;
            }
            EGC_TRY(be->download(be, e->chkm, Mh, (size_t)ga * hw * sizeof(float)));
        }
        for (int j = 0; j < ga && !last; j++) {
            float *m = e->chkm + (size_t)j * hw, *p = e->prevm + (size_t)j * hw;
            double ss = 0.0;
            for (size_t q = 0; q < hw; q++) ss += (double)m[q] * (double)m[q];
            float inv = ss > 0.0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
            double d2 = 0.0;
            for (size_t q = 0; q < hw; q++) {
                float u = m[q] * inv;
                double dq = (double)u - (double)p[q];
                d2 += dq * dq;
                p[q] = u;
            }
            if (t > 0 && sqrt(d2) <= (double)e->o.samples_tol) e->streak[j]++;
            else e->streak[j] = 0;
        }
        /* the finished images' maps (in their slots), then the others move up */
#define DONE(j) (last || e->streak[j] >= PATIENCE)
        for (int j = 0; j < ga; j++)
            if (DONE(j)) {
                int i = e->act[j];
                e->nused[i] = n;
                EGC_TRY(finish_maps(e, j, 1, n, e->Ld + (size_t)i * hw));
            }
        int k = 0;
        for (int j = 0; j < ga; j++) {
            if (DONE(j)) continue;
            if (k != j) {
                EGC_TRY(move_slot(e, j, k));
                memcpy(e->prevm + (size_t)k * hw, e->prevm + (size_t)j * hw, hw * sizeof(float));
                e->streak[k] = e->streak[j];
                e->act[k] = e->act[j];
            }
            k++;
        }
#undef DONE
        ga = k;
    }
    return be->upload(be, e->clsd, e->cls, (size_t)g * sizeof(int32_t));
}

/* The sampled methods: the group's g x S sample points (sample_rows; adaptive_pass with
 * samples_tol), then the raw maps into e->Ld. x is the group's images on the host (for the
 * blur baselines). */
static egc_status sampled_pass(egc_explainer *e, const float *x, int g)
{
    egc_backend *be = e->be;
    const egc_explain_options *o = &e->o;
    egc_sample_spec sp = group_spec(e);
    const float *base = e->refd, *aref = e->arefd;
    if (o->baselines == EGC_BASELINES_SELF) {
        base = e->xd;
        aref = e->axd;
    } else if (o->baselines == EGC_BASELINES_BLUR) {
        blur_ctx bc = {e, x};
        egc_parallel_for(g, blur_image, &bc);
        EGC_TRY(be->upload(be, e->blurd, e->blur, (size_t)g * e->chw * sizeof(float)));
        if (o->combine == EGC_COMBINE_B) EGC_TRY(target_acts(e, e->blurd, g, e->ablurd));
        base = e->blurd;
        aref = e->ablurd;
    }
    if (e->accd) EGC_TRY(be->fill(be, e->accd, 0.0f, (int64_t)((size_t)g * e->khw)));
    if (e->accmapd) EGC_TRY(be->fill(be, e->accmapd, 0.0f, (int64_t)g * e->hw));
    if (e->adaptive) return adaptive_pass(e, &sp, base, aref, g);
    EGC_TRY(sample_rows(e, &sp, base, aref, g, e->merge ? g : 0));
    return finish_maps(e, 0, g, e->S, e->Ld);
}

const char *egc_explainer_device(const egc_explainer *e) { return egc_session_device(e->s); }

size_t egc_explainer_device_bytes(const egc_explainer *e)
{
    if (!e) return 0;
    size_t s = egc_session_device_bytes(e->s);
    /* A counting backend already includes the explainer's buffers. */
    return e->be->bytes_in_use ? s : s + e->dev_bytes;
}

egc_status egc_explainer_run(egc_explainer *e, const float *x, int n, const int *classes,
                             egc_cam_result *out)
{
    return egc_explainer_run_keyed(e, x, n, classes, NULL, NULL, out);
}

egc_status egc_explainer_run_keyed(egc_explainer *e, const float *x, int n, const int *classes,
                                   const uint64_t *ids, const uint32_t *sample0,
                                   egc_cam_result *out)
{
    if (!e || !x || !out || n < 1)
        return EGC_FAIL(EGC_E_ARG, "egc_explainer_run: %d images (need >= 1, with inputs and "
                        "results)", n);
    egc_backend *be = e->be;
    size_t HW = (size_t)e->H * (size_t)e->W;
    e->keyed = sample0 != NULL;
    if (e->prof) {
        EGC_TRY(be->sync(be));
        e->t_last = now_ms();
        e->ph.runs++;
        e->ph.images += n;
    }
    /* Images not in page-locked memory go through e->xstage (CUDA), made at the first run
     * that needs it; staged: the group's images are there already. */
    int stage = 0, staged = 0;
    if (e->stage_state >= 0 && !egc_host_pinned(x)) {
        if (e->stage_state == 0) {
            e->xstage = egc_backend_stage_alloc(be, (size_t)e->B * e->chw * sizeof(float));
            e->stage_state = e->xstage ? 1 : -1;
        }
        stage = e->stage_state == 1;
    }
    for (int i0 = 0; i0 < n; i0 += e->B) {
        int g = EGC_MIN(e->B, n - i0);
        const float *xg = x + (size_t)i0 * e->chw;
        for (int i = 0; i < g; i++) {
            int c = classes ? classes[i0 + i] : -1;
            if (c >= e->classes)
                return EGC_FAIL(EGC_E_ARG, "class %d out of range for a model of %d classes", c,
                                e->classes);
            e->cls[i] = c < 0 ? -1 : c;
            if (sample0) e->s0[i] = sample0[i0 + i];
        }
        const float *src = xg;
        if (stage) {
            if (!staged) egc_parallel_copy(e->xstage, xg, (size_t)g * e->chw * sizeof(float));
            src = e->xstage;
        }
        EGC_TRY(be->upload(be, e->xd, src, (size_t)g * e->chw * sizeof(float)));
        EGC_TRY(be->upload(be, e->clsd, e->cls, (size_t)g * sizeof(int32_t)));
        EGC_TRY(phase(e, PH_UPLOAD));
        /* ids (unless given), value ranges and finiteness where the images are, then the
         * checks in image order */
        int64_t *badd = (int64_t *)(e->idsd + e->B);
        EGC_TRY(be->m_scan(be, e->xd, g, (int64_t)e->chw, ids ? NULL : e->idsd,
                           (float *)(badd + e->B), badd));
        EGC_TRY(be->download(be, e->scanh, e->scand, (size_t)e->B * SCAN_ROW_BYTES));
        for (int i = 0; i < g; i++) {
            if (e->bad[i] >= 0)
                return EGC_FAIL(EGC_E_ARG, "image %d of the batch holds a non-finite value "
                                "at %lld", i0 + i, (long long)e->bad[i]);
            if (ids) e->ids[i] = ids[i0 + i];
            e->sigma[i] = (e->range[2 * i + 1] - e->range[2 * i]) * e->o.noise;
        }
        if (e->sampled) {
            if (ids) EGC_TRY(be->upload(be, e->idsd, e->ids, (size_t)g * sizeof(uint64_t)));
            if (e->keyed) EGC_TRY(be->upload(be, e->s0d, e->s0, (size_t)g * sizeof(uint32_t)));
            EGC_TRY(be->upload(be, e->sigmad, e->sigma, (size_t)g * sizeof(float)));
        }
        EGC_TRY(phase(e, PH_SCAN));
        if (!e->merge) EGC_TRY(clean_pass(e, g)); /* merged: in sampled_pass's first chunk */
        EGC_TRY(phase(e, PH_CLEAN));
        if (e->o.method == EGC_METHOD_SCORECAM) EGC_TRY(scorecam_pass(e, g));
        else if (e->sampled) EGC_TRY(sampled_pass(e, xg, g));
        EGC_TRY(phase(e, PH_REDUCE));
        int want_map = 0;
        for (int i = 0; i < g; i++) want_map |= out[i0 + i].map != NULL;
        if (want_map)
            EGC_TRY(be->m_finalize(be, e->Ld, g, e->h, e->w, e->mapd, e->H, e->W, e->finscr));
        /* While the device works on this group, the next group's images go to the staging
         * buffer (free again: its upload has completed). Not when profiling, whose phase
         * marks wait for the device. */
        staged = 0;
        if (stage && !e->prof && i0 + g < n) {
            int gn = EGC_MIN(e->B, n - i0 - g);
            egc_parallel_copy(e->xstage, xg + (size_t)g * e->chw, (size_t)gn * e->chw * sizeof(float));
            staged = 1;
        }
        EGC_TRY(phase(e, PH_FINALIZE));
        EGC_TRY(be->download(be, e->cls, e->clsd, (size_t)g * sizeof(int32_t)));
        EGC_TRY(be->download(be, e->score, e->scored, (size_t)g * sizeof(float)));
        EGC_TRY(be->download(be, e->Lh, e->Ld, (size_t)g * (size_t)e->hw * sizeof(float)));
        float *mdst = want_map ? direct_maps(e, out + i0, g) : NULL;
        if (want_map)
            EGC_TRY(be->download(be, mdst ? mdst : e->maph, e->mapd, (size_t)g * HW * sizeof(float)));
        out_ctx oc = {e, out + i0, mdst != NULL};
        egc_parallel_for(g, out_one, &oc);
        EGC_TRY(phase(e, PH_DOWNLOAD));
    }
    return EGC_OK;
}

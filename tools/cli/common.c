/* common.c: input expansion, labels, progress, errors for the egcam command line. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "egcam/explain.h"
#include "backend/backend.h"
#include "core/core.h"

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int has_ext(const char *p, const char *const *exts)
{
    const char *dot = strrchr(p, '.');
    if (!dot) return 0;
    for (int i = 0; exts[i]; i++)
        if (!strcasecmp(dot + 1, exts[i])) return 1;
    return 0;
}

static const char *const k_img_ext[] = {"jpg", "jpeg", "png", "bmp", NULL};
static const char *const k_npy_ext[] = {"npy", NULL};

static char *xstrdup(const char *s)
{
    char *r = strdup(s);
    if (!r) {
        fprintf(stderr, "egcam: out of memory\n");
        exit(EXIT_MODEL);
    }
    return r;
}

static char *stem_of(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *s = xstrdup(b);
    char *dot = strrchr(s, '.');
    if (dot && dot != s) *dot = '\0';
    return s;
}

static void push(cli_items *it, const char *path, int index)
{
    if (it->n == it->cap) {
        it->cap = it->cap ? 2 * it->cap : 64;
        it->v = realloc(it->v, (size_t)it->cap * sizeof *it->v);
        if (!it->v) {
            fprintf(stderr, "egcam: out of memory\n");
            exit(EXIT_MODEL);
        }
    }
    cli_item *x = &it->v[it->n++];
    x->path = xstrdup(path);
    x->index = index;
    char *st = stem_of(path);
    if (index < 0) {
        x->id = xstrdup(path);
        x->stem = st;
    } else {
        size_t n = strlen(path) + 32;
        x->id = malloc(n);
        x->stem = malloc(strlen(st) + 32);
        if (!x->id || !x->stem) exit(EXIT_MODEL);
        snprintf(x->id, n, "%s[%d]", path, index);
        snprintf(x->stem, strlen(st) + 32, "%s_%d", st, index);
        free(st);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_file(cli_items *out, const char *path, int *n_bad)
{
    if (has_ext(path, k_npy_ext)) {
        egc_tensor t;
        if (egc_npy_read(path, &t) != EGC_OK) {
            cli_error(path, 0);
            (*n_bad)++;
            return;
        }
        int n = 1;
        if (t.shape.ndim == 4) n = (int)t.shape.d[0];
        else if (t.shape.ndim != 3) {
            fprintf(stderr, "egcam: %s: a tensor file must hold (N,C,H,W) or (C,H,W) floats (or "
                    "channels last: (N,H,W,C) or (H,W,C))\n", path);
            (*n_bad)++;
            egc_tensor_free(&t);
            return;
        }
        egc_tensor_free(&t);
        if (t.shape.ndim == 3 || n == 1) push(out, path, t.shape.ndim == 3 ? -1 : 0);
        else
            for (int i = 0; i < n; i++) push(out, path, i);
        if (n == 1 && out->n && out->v[out->n - 1].index == 0) {
            /* A single-image tensor file is named like an image. */
            cli_item *x = &out->v[out->n - 1];
            free(x->stem);
            x->stem = stem_of(path);
        }
    } else {
        push(out, path, -1);
    }
}

int cli_expand_inputs(char **paths, int n_paths, cli_items *out, int *n_bad)
{
    memset(out, 0, sizeof *out);
    *n_bad = 0;
    for (int i = 0; i < n_paths; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) != 0) {
            fprintf(stderr, "egcam: input %s: %s (check the path; inputs are image files, "
                            "folders or .npy files)\n", paths[i], strerror(errno));
            (*n_bad)++;
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            add_file(out, paths[i], n_bad);
            continue;
        }
        DIR *d = opendir(paths[i]);
        if (!d) {
            fprintf(stderr, "egcam: %s: %s\n", paths[i], strerror(errno));
            (*n_bad)++;
            continue;
        }
        char **names = NULL;
        int nn = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            if (!has_ext(e->d_name, k_img_ext) && !has_ext(e->d_name, k_npy_ext)) continue;
            if (nn == cap) {
                cap = cap ? 2 * cap : 64;
                names = realloc(names, (size_t)cap * sizeof *names);
                if (!names) exit(EXIT_MODEL);
            }
            size_t len = strlen(paths[i]) + strlen(e->d_name) + 2;
            names[nn] = malloc(len);
            if (!names[nn]) exit(EXIT_MODEL);
            const char *sep = paths[i][strlen(paths[i]) - 1] == '/' ? "" : "/";
            snprintf(names[nn], len, "%s%s%s", paths[i], sep, e->d_name);
            nn++;
        }
        closedir(d);
        qsort(names, (size_t)nn, sizeof *names, cmp_str);
        for (int k = 0; k < nn; k++) {
            add_file(out, names[k], n_bad);
            free(names[k]);
        }
        free(names);
        if (nn == 0) fprintf(stderr, "egcam: %s: no images (.jpg .jpeg .png .bmp .npy) in this folder\n", paths[i]);
    }
    return out->n;
}

void cli_items_free(cli_items *it)
{
    for (int i = 0; i < it->n; i++) {
        free(it->v[i].path);
        free(it->v[i].id);
        free(it->v[i].stem);
    }
    free(it->v);
    memset(it, 0, sizeof *it);
}

egc_status cli_load_item(const cli_item *it, egc_preset preset, int ch, int w, int h,
                         float *dst, egc_image *sized, int *iw, int *ih)
{
    if (sized) memset(sized, 0, sizeof *sized);
    if (iw) *iw = 0;
    if (ih) *ih = 0;
    const char *dot = strrchr(it->path, '.');
    if (dot && !strcasecmp(dot, ".npy")) {
        egc_tensor t;
        egc_status st = egc_npy_read(it->path, &t);
        if (st != EGC_OK) return st;
        int64_t per = (int64_t)ch * h * w;
        int idx = it->index < 0 ? 0 : it->index;
        const egc_shape *s = &t.shape;
        int ok = (s->ndim == 4 && s->d[1] == ch && s->d[2] == h && s->d[3] == w && idx < s->d[0]) ||
                 (s->ndim == 3 && s->d[0] == ch && s->d[1] == h && s->d[2] == w);
        /* channels last, (N,H,W,C) or (H,W,C), as numpy and Keras users keep images (for one
         * channel the same values) */
        int last = !ok &&
                   ((s->ndim == 4 && s->d[1] == h && s->d[2] == w && s->d[3] == ch && idx < s->d[0]) ||
                    (s->ndim == 3 && s->d[0] == h && s->d[1] == w && s->d[2] == ch));
        if (!ok && !last) {
            char b[96];
            (void)egc_shape_str(s, b, sizeof b);
            egc_tensor_free(&t);
            return EGC_FAIL(EGC_E_SHAPE, "%s: tensor of shape %s does not fit the model input "
                            "[N,%d,%d,%d] (or channels last, [N,%d,%d,%d])", it->path, b, ch, h,
                            w, h, w, ch);
        }
        const float *src = t.data + (int64_t)idx * per;
        if (ok) memcpy(dst, src, (size_t)per * sizeof(float));
        else egc_channels_first(src, 1, ch, (int64_t)h * w, dst);
        if (sized) {
            egc_status st2 = egc_preset_denormalize_channels(dst, ch, w, h, preset, sized);
            if (st2 != EGC_OK) {
                egc_tensor_free(&t);
                return st2;
            }
        }
        egc_tensor_free(&t);
        return EGC_OK;
    }
    egc_image img, tmp;
    egc_status st = egc_image_load(it->path, &img);
    if (st != EGC_OK) return st;
    if (iw) *iw = img.w;
    if (ih) *ih = img.h;
    st = egc_preset_geometry(&img, preset, w, h, &tmp);
    egc_image_free(&img);
    if (st != EGC_OK) return st;
    if (ch == 1) egc_image_to_gray(&tmp); /* what the model sees, also for the overlays */
    st = egc_preset_normalize_channels(&tmp, preset, ch, dst);
    if (sized && st == EGC_OK) *sized = tmp;
    else egc_image_free(&tmp);
    return st;
}

char **cli_load_labels(const char *path, const char *model_path, int classes)
{
    char guess[4096];
    if (!path) {
        char *mp = xstrdup(model_path);
        const char *dir = dirname(mp);
        const char *name = classes == 1000 ? "imagenet_classes.txt"
                           : classes == 10  ? "cifar10_classes.txt" : NULL;
        if (name) snprintf(guess, sizeof guess, "%s/%s", dir, name);
        free(mp);
        if (!name || access(guess, R_OK) != 0) return NULL;
        path = guess;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "egcam: %s: %s (labels file)\n", path, strerror(errno));
        return NULL;
    }
    char **lab = calloc((size_t)classes, sizeof *lab);
    if (!lab) exit(EXIT_MODEL);
    char line[1024];
    int n = 0;
    while (n < classes && fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = '\0';
        lab[n++] = xstrdup(line);
    }
    fclose(f);
    if (n != classes)
        fprintf(stderr, "egcam: %s: %d labels for a model of %d classes; the rest are unnamed\n",
                path, n, classes);
    return lab;
}

void cli_free_labels(char **labels, int classes)
{
    if (!labels) return;
    for (int i = 0; i < classes; i++) free(labels[i]);
    free(labels);
}

const char *cli_default_preset(const egc_model *m)
{
    int c, h, w;
    egc_model_input_chw(m, &c, &h, &w);
    return (h == 32 && w == 32) ? "cifar" : "torchvision";
}

/* The length of an error message's first line without its trailing " [file:line]" trace:
 * the reason, as printed without --verbose. */
static int reason_len(const char *msg)
{
    const char *nl = strchr(msg, '\n');
    int len = nl ? (int)(nl - msg) : (int)strlen(msg);
    const char *br = NULL;
    for (const char *p = msg; p < msg + len; p++)
        if (*p == '[') br = p;
    if (br && br > msg && br[-1] == ' ' && msg[len - 1] == ']') len = (int)(br - msg - 1);
    return len;
}

int cli_parse_preset(const char *cmd, const char *name, egc_preset *out)
{
    if (egc_preset_parse(name, out) == EGC_OK) return 1;
    const char *e = egc_last_error();
    fprintf(stderr, "egcam %s: --preset: %.*s\n", cmd, reason_len(e), e);
    return 0;
}

void cli_error_format(char *buf, size_t cap, const char *what, const char *msg, int verbose)
{
    if (!verbose) {
        const int len = reason_len(msg);
        if (what && !strstr(msg, what)) snprintf(buf, cap, "egcam: %s: %.*s\n", what, len, msg);
        else snprintf(buf, cap, "egcam: %.*s\n", len, msg);
    } else {
        snprintf(buf, cap, "egcam: %s%s%s\n", what ? what : "", what ? ": " : "", msg);
    }
}

void cli_error(const char *what, int verbose)
{
    char line[8192];
    cli_error_format(line, sizeof line, what, egc_last_error(), verbose);
    fputs(line, stderr);
}

void cli_model_error(const char *model_path, egc_status st, int verbose)
{
    cli_error(model_path, verbose);
    switch (st) {
    case EGC_E_IO:
        fprintf(stderr, "egcam: check the --model path (the shared models are in "
                        "../shared/models; weights/README.md says how to export others)\n");
        break;
    case EGC_E_FORMAT:
        fprintf(stderr, "egcam: %s is not a valid ONNX model (truncated or not ONNX?): export "
                        "or download it again (weights/README.md)\n", model_path);
        break;
    case EGC_E_UNSUPPORTED:
        fprintf(stderr, "egcam: weights/README.md lists the operators egcam supports; "
                        "re-export with opset 13 and the legacy exporter\n");
        break;
    case EGC_E_SHAPE:
        fprintf(stderr, "egcam: egcam explains image classifiers: one input [N,3,H,W], one "
                        "output [N,classes]\n");
        break;
    default: break;
    }
}

int cli_bad_option(const char *cmd, int argc, char **argv, int c)
{
    int idx = optind - 1;
    if (idx < 1) idx = 1;
    if (idx >= argc) idx = argc - 1;
    const char *arg = idx >= 1 && idx < argc ? argv[idx] : "?";
    if (c == ':')
        fprintf(stderr, "egcam %s: option '%s' needs a value\n", cmd, arg);
    else if (optopt && optopt < 256)
        fprintf(stderr, "egcam %s: unknown option '-%c'\n", cmd, optopt);
    else
        fprintf(stderr, "egcam %s: unknown option '%s'\n", cmd, arg);
    fprintf(stderr, "egcam %s: see `egcam %s --help` for the options\n", cmd, cmd);
    return EXIT_USAGE;
}

void cli_progress_start(cli_progress *p, const char *label, long total, int quiet)
{
    p->label = label;
    p->total = total;
    p->done = 0;
    p->last_done = -1;
    p->t0 = p->last = cli_now();
    p->tty = isatty(2);
    p->quiet = quiet;
}

static void fmt_eta(double s, char *buf, size_t cap)
{
    if (s < 0 || s > 1e7) snprintf(buf, cap, "--:--");
    else if (s >= 3600) snprintf(buf, cap, "%d:%02d:%02d", (int)s / 3600, ((int)s / 60) % 60, (int)s % 60);
    else snprintf(buf, cap, "%02d:%02d", (int)s / 60, (int)s % 60);
}

static void progress_draw(cli_progress *p, int final)
{
    double el = cli_now() - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32];
    fmt_eta(rate > 0 ? (double)(p->total - p->done) / rate : -1, eta, sizeof eta);
    if (p->tty) {
        int width = 30, fill = p->total ? (int)(width * p->done / p->total) : width;
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r%s [%s] %ld/%ld  %.1f/s  ETA %s%s", p->label, bar, p->done, p->total,
                rate, eta, final ? "\n" : "");
    } else {
        fprintf(stderr, "%s: %ld/%ld  %.1f/s  ETA %s\n", p->label, p->done, p->total, rate, eta);
    }
    fflush(stderr);
}

void cli_progress_step(cli_progress *p, long n)
{
    p->done += n;
    if (p->quiet) return;
    double t = cli_now();
    if (t - p->last >= (p->tty ? 0.2 : 5.0)) {
        p->last = t;
        p->last_done = p->done;
        progress_draw(p, 0);
    }
}

void cli_progress_end(cli_progress *p)
{
    if (p->quiet) return;
    /* A terminal gets the final bar; a log gets a last line unless it just had one. */
    if (p->tty || (cli_now() - p->t0 >= 5.0 && p->last_done != p->done)) progress_draw(p, 1);
}

void cli_json_sample_options(FILE *f, const egc_explain_options *o, int with_count)
{
    fprintf(f, ", \"baselines\": ");
    cli_json_str(f, o->baselines == EGC_BASELINES_FILE ? o->baseline_file
                                                       : egc_baselines_name(o->baselines));
    if (with_count && o->baselines == EGC_BASELINES_UNIFORM)
        fprintf(f, ", \"uniform_count\": %d", o->uniform_count);
    fprintf(f, ", \"noise\": %.9g, \"alpha\": \"%s\", \"combine\": \"%s\"", (double)o->noise,
            egc_alpha_name(o->alpha), egc_combine_name(o->combine));
    if (o->plan_file) {
        fprintf(f, ", \"plan\": ");
        cli_json_str(f, o->plan_file);
    }
}

void cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

int cli_mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        fprintf(stderr, "egcam: output folder '%s': empty or too long\n", path);
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char keep = buf[i];
        buf[i] = '\0';
        struct stat sb;
        if (stat(buf, &sb) != 0) {
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "egcam: cannot create folder %s: %s\n", buf, strerror(errno));
                return -1;
            }
        } else if (!S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "egcam: %s exists and is not a folder\n", buf);
            return -1;
        }
        buf[i] = keep;
    }
    return 0;
}

/* ---- option values and the method options shared by explain and sweep ---- */

int cli_parse_long(const char *cmd, const char *opt, const char *val, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || *end || end == val || v < lo || v > hi) {
        fprintf(stderr, "egcam %s: %s '%s' must be an integer in %ld..%ld\n", cmd, opt, val, lo,
                hi);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_double(const char *cmd, const char *opt, const char *val, double lo, double hi,
                     double *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || *end || end == val || !(v >= lo && v <= hi)) {
        fprintf(stderr, "egcam %s: %s '%s' must be a number in [%g, %g]\n", cmd, opt, val, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_choice(const char *cmd, const char *opt, const char *val,
                     const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(val, names[i])) {
            *out = i;
            return 1;
        }
    fprintf(stderr, "egcam %s: %s '%s' is not one of", cmd, opt, val);
    for (int i = 0; i < n; i++) fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "\n");
    return 0;
}

int cli_parse_hw(const char *cmd, const char *opt, const char *val, int *h, int *w)
{
    char *end;
    errno = 0;
    long hh = strtol(val, &end, 10);
    long ww = (end != val && (*end == 'x' || *end == 'X')) ? strtol(end + 1, &end, 10) : -1;
    if (errno || *end || hh < 1 || ww < 1 || hh > 8192 || ww > 8192) {
        fprintf(stderr, "egcam %s: --%s '%s' must be HxW (e.g. 224x224, each 1 to 8192)\n", cmd,
                opt, val);
        return 0;
    }
    *h = (int)hh;
    *w = (int)ww;
    return 1;
}

int cli_parse_size(const char *cmd, const char *opt, const char *val, size_t *out)
{
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {
        {"", 1.0},          {"b", 1.0},
        {"k", 1e3},         {"kb", 1e3},         {"ki", 1024.0},         {"kib", 1024.0},
        {"m", 1e6},         {"mb", 1e6},         {"mi", 1048576.0},      {"mib", 1048576.0},
        {"g", 1e9},         {"gb", 1e9},         {"gi", 1073741824.0},   {"gib", 1073741824.0},
        {"t", 1e12},        {"tb", 1e12},        {"ti", 1099511627776.0}, {"tib", 1099511627776.0},
    };
    char *end;
    errno = 0;
    int plain = ((val[0] >= '0' && val[0] <= '9') || val[0] == '.') && !strpbrk(val, "xX");
    double v = plain ? strtod(val, &end) : -1.0;
    if (v >= 0.0 && !errno && end != val) {
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (!strcasecmp(end, units[i].suffix)) {
                double b = v * units[i].mult;
                if (b >= 1.0 && b < 1.8e19) {
                    *out = (size_t)b;
                    return 1;
                }
                break;
            }
    }
    fprintf(stderr, "egcam %s: %s '%s' is not a memory size of at least one byte: a number "
                    "with an optional suffix K, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti "
                    "(powers of 1024), e.g. 2G or 1.5GiB\n", cmd, opt, val);
    return 0;
}

const char *cli_format_bytes(size_t n, char *buf, size_t cap)
{
    double v = (double)n;
    if (v >= 1073741824.0) snprintf(buf, cap, "%.2f GiB", v / 1073741824.0);
    else if (v >= 1048576.0) snprintf(buf, cap, "%.1f MiB", v / 1048576.0);
    else if (v >= 1024.0) snprintf(buf, cap, "%.1f KiB", v / 1024.0);
    else snprintf(buf, cap, "%zu B", n);
    return buf;
}

int cli_check_method_options(const char *cmd, const char *what, const egc_explain_options *o)
{
    int plan = o->plan_file && o->plan_file[0];
    if (egc_method_is_sampled(o->method) && o->samples_tol > 0.0f &&
        (o->alpha != EGC_ALPHA_UNIFORM || plan)) {
        fprintf(stderr, "egcam %s: %s: --samples-tol draws samples in rounds, which needs "
                        "--alpha uniform and no --plan (--alpha %s%s)\n",
                cmd, what, egc_alpha_name(o->alpha), plan ? ", --plan" : "");
        return 0;
    }
    return 1;
}

int cli_method_option(const char *cmd, const char *name, const char *val,
                      egc_explain_options *o)
{
    static const char *const score_names[] = {"logit", "softmax"};
    static const char *const alpha_names[] = {"uniform", "grid", "stratified"};
    static const char *const combine_names[] = {"A", "B", "C"};
    int v;
    long s;
    char *end;
    if (!strcmp(name, "layer")) {
        o->layer = val;
    } else if (!strcmp(name, "samples")) {
        if (!cli_parse_long(cmd, "samples", val, 1, 1 << 20, &s)) return 0;
        o->samples = (int)s;
    } else if (!strcmp(name, "samples-tol")) {
        double d;
        if (!cli_parse_double(cmd, "samples-tol", val, 0.0, 2.0, &d)) return 0;
        o->samples_tol = (float)d;
    } else if (!strcmp(name, "samples-round")) {
        if (!cli_parse_long(cmd, "samples-round", val, 1, 1 << 20, &s)) return 0;
        o->samples_round = (int)s;
    } else if (!strcmp(name, "noise")) {
        errno = 0;
        double d = strtod(val, &end);
        if (errno || *end || end == val || !(d >= 0) || d > 1e30) {
            fprintf(stderr, "egcam %s: noise '%s' must be a number >= 0\n", cmd, val);
            return 0;
        }
        o->noise = (float)d;
    } else if (!strcmp(name, "alpha")) {
        if (!cli_parse_choice(cmd, "alpha", val, alpha_names, 3, &v)) return 0;
        o->alpha = (egc_alpha)v;
    } else if (!strcmp(name, "combine")) {
        if (!cli_parse_choice(cmd, "combine", val, combine_names, 3, &v)) return 0;
        o->combine = (egc_combine)v;
    } else if (!strcmp(name, "score")) {
        if (!cli_parse_choice(cmd, "score", val, score_names, 2, &v)) return 0;
        o->score = (egc_score)v;
    } else if (!strcmp(name, "seed")) {
        errno = 0;
        unsigned long long sd = strtoull(val, &end, 0);
        if (errno || *end || end == val || val[0] == '-') {
            fprintf(stderr, "egcam %s: seed '%s' must be an unsigned 64-bit integer\n", cmd, val);
            return 0;
        }
        o->seed = (uint64_t)sd;
    } else if (!strcmp(name, "plan")) {
        o->plan_file = val;
    } else if (!strcmp(name, "baselines")) {
        static const char *const bl[] = {"black", "blur", "uniform", "self"};
        for (int i = 0; i < 4; i++)
            if (!strcmp(val, bl[i])) {
                o->baselines = (egc_baselines)i;
                o->baseline_file = NULL;
                return 1;
            }
        size_t l = strlen(val);
        if (l < 4 || strcmp(val + l - 4, ".npy")) {
            fprintf(stderr, "egcam %s: baselines '%s' is not black, blur, uniform, self or a "
                            ".npy reference file (make one with `egcam refs build`)\n", cmd, val);
            return 0;
        }
        o->baselines = EGC_BASELINES_FILE;
        o->baseline_file = val;
    } else {
        return -1;
    }
    return 1;
}

int cli_parse_precision(const char *cmd, const char *val, egc_precision *out)
{
    if (egc_precision_parse(val, out) == EGC_OK) return 1;
    fprintf(stderr, "egcam %s: --precision '%s' is not one of fp32, mixed\n", cmd, val);
    return 0;
}

typedef struct pload_ctx {
    egc_status (*load)(int k, void *arg);
    void *arg;
    egc_status *st;
    char **err;
} pload_ctx;

static void pload_one(int64_t k, void *a)
{
    const pload_ctx *c = a;
    egc_clear_error();
    c->st[k] = c->load((int)k, c->arg);
    c->err[k] = c->st[k] == EGC_OK ? NULL : strdup(egc_last_error());
}

void cli_parallel_load(int n, egc_status (*load)(int k, void *arg), void *arg, egc_status *st,
                       char **err)
{
    pload_ctx c = {load, arg, st, err};
    egc_parallel_for(n, pload_one, &c);
}

void cli_restore_error(const char *err) { egc_error_restore(err ? err : "out of memory"); }

typedef struct rows_ctx {
    const cli_item *items;
    egc_preset preset;
    int ch, w, h;
    float *x;
    egc_image *sized;
} rows_ctx;

static egc_status load_row(int k, void *arg)
{
    const rows_ctx *c = arg;
    size_t per = (size_t)c->ch * (size_t)c->h * (size_t)c->w;
    return cli_load_item(&c->items[k], c->preset, c->ch, c->w, c->h, c->x + (size_t)k * per,
                         c->sized ? &c->sized[k] : NULL, NULL, NULL);
}

void cli_load_rows(const cli_item *items, int n, egc_preset preset, int ch, int w, int h,
                   float *x, egc_image *sized, egc_status *st, char **err)
{
    rows_ctx c = {items, preset, ch, w, h, x, sized};
    cli_parallel_load(n, load_row, &c, st, err);
}

int cli_default_batch(const char *device, int cpu_default)
{
    return egc_device_is_cuda(device) ? 128 : cpu_default;
}

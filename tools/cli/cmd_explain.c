/* cmd_explain.c: `egcam explain`: saliency maps of one or several CAM methods for images,
 * folders and .npy tensors, written as .npy maps with a JSON-lines manifest. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "egcam/explain.h"

static void help(FILE *f)
{
    fprintf(f,
        "usage: egcam explain --model M.onnx --method NAME[,NAME...] --out DIR [options] INPUTS...\n"
        "\n"
        "Computes a saliency map per input and writes DIR/<stem>.npy (float32 HxW in [0,1], the\n"
        "input's size; a tensor file with N>1 images gives <stem>_<i>.npy) and DIR/manifest.jsonl\n"
        "(one line per input and method: class, label, score, every option that shaped the map,\n"
        "seed, image id, status). With several methods the maps go to DIR/<method>/<stem>.npy.\n"
        "Inputs that fail are recorded in the manifest and skipped.\n"
        "\n"
        "methods: gradcam gradcampp xgradcam hirescam layercam scorecam smooth-gradcam\n"
        "         integrated-gradcam expected-gradcam expected-gradcampp expected-xgradcam\n"
        "         expected-hirescam expected-layercam\n"
        "\n"
        "options:\n"
        "  --model M.onnx        the classifier (required)\n"
        "  --method LIST         one method or a comma-separated list (required)\n"
        "  --out DIR             output folder, created if needed (required)\n"
        "  --layer L|auto        target layer (see `egcam info MODEL`; default auto)\n"
        "  --preset P            tf | torchvision | cifar (default: cifar for 32x32 inputs,\n"
        "                        else torchvision)\n"
        "  --class auto|K        explain the top-1 class (default) or class K for every input\n"
        "  --score logit|softmax the explained score y_c (default logit; Score-CAM always\n"
        "                        uses the softmax probability)\n"
        "  --labels FILE         class names, one per line (default: beside the model)\n"
        "sampled methods (smooth-, integrated-, expected-*):\n"
        "  --samples S           samples per image (default 32)\n"
        "  --baselines B         black | blur | uniform | self | FILE.npy (a reference file of\n"
        "                        preprocessed images, see `egcam refs build`; default black)\n"
        "  --noise RHO           noise sigma = RHO * (max x - min x) (default 0.15)\n"
        "  --alpha uniform|grid  interpolation coefficients a ~ U(0,1) or a = s/S (default uniform)\n"
        "  --combine A|B|C       A: expected gradient, B: expected-gradients attribution,\n"
        "                        C: mean of the per-sample maps (default A; see METHODS.md);\n"
        "                        smooth-gradcam and expected-gradcampp/-xgradcam/-hirescam/\n"
        "                        -layercam always use A, integrated-gradcam C (with black\n"
        "                        baselines, grid alphas, no noise); the manifest records it\n"
        "  --seed N              random seed (default 0); draws are keyed by (seed, image, sample)\n"
        "  --plan FILE           explicit sample plan (CSV 'baseline,alpha,noise_seed', one row\n"
        "                        per sample; see include/egcam/explain.h)\n"
        "run:\n"
        "  --device D            cpu | cuda | cuda:N (default cpu)\n"
        "  --batch B             rows (images x samples) per pass through the model (default 32)\n"
        "  -q, --quiet           no progress on stderr\n"
        "  -v, --verbose         full error traces\n"
        "  -h, --help            this text\n"
        "\n"
        "examples:\n"
        "  egcam explain --model ../shared/models/resnet20_cifar10.onnx --method gradcam \\\n"
        "      --out maps ../shared/data/cifar10-test/cat\n"
        "  egcam explain --model ../shared/models/mobilenet_v2_imagenet.onnx --preset tf \\\n"
        "      --method expected-gradcam,gradcam --baselines blur --score softmax --combine B \\\n"
        "      --samples 16 --out maps ../shared/data/photos\n");
}

/* Parses "A|B|C" etc.; returns 0 on failure after printing why. */
static int parse_choice(const char *opt, const char *val, const char *const *names, int n,
                        int *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(val, names[i])) {
            *out = i;
            return 1;
        }
    fprintf(stderr, "egcam explain: %s '%s' is not one of", opt, val);
    for (int i = 0; i < n; i++) fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "\n");
    return 0;
}

static int parse_int(const char *opt, const char *val, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || *end || end == val || v < lo || v > hi) {
        fprintf(stderr, "egcam explain: %s '%s' must be an integer in %ld..%ld\n", opt, val, lo,
                hi);
        return 0;
    }
    *out = v;
    return 1;
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

/* names[i] = the output file name of item i: <stem>.npy, or <stem>__<k>.npy for the k-th
 * repetition of a stem (inputs from different folders with the same name). */
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
        if (rep) snprintf(s, len, "%s__%d.npy", r[k].stem, rep + 1);
        else snprintf(s, len, "%s.npy", r[k].stem);
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
} run_cfg;

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

static void manifest_ok(const run_cfg *c, const cli_item *it, const egc_explainer *e,
                        const char *path, const egc_cam_result *r, int class_given)
{
    FILE *f = c->manifest;
    const egc_explain_options *o = egc_explainer_options(e);
    fprintf(f, "{\"input\": ");
    cli_json_str(f, it->id);
    fprintf(f, ", \"output\": ");
    cli_json_str(f, path);
    fprintf(f, ", \"method\": \"%s\", \"class\": %d", egc_method_name(o->method), r->cls);
    if (c->labels && c->labels[r->cls]) {
        fprintf(f, ", \"label\": ");
        cli_json_str(f, c->labels[r->cls]);
    }
    fprintf(f, ", \"class_from\": \"%s\"", class_given ? "given" : "top1");
    fprintf(f, ", \"score\": %.9g, \"score_kind\": \"%s\", \"layer\": ", (double)r->score,
            egc_score_name(o->score));
    cli_json_str(f, egc_explainer_layer(e));
    fprintf(f, ", \"preset\": \"%s\"", egc_preset_name(c->preset));
    if (egc_method_is_sampled(o->method)) {
        fprintf(f, ", \"samples\": %d, \"baselines\": ", egc_explainer_samples(e));
        cli_json_str(f, o->baselines == EGC_BASELINES_FILE ? o->baseline_file
                                                           : egc_baselines_name(o->baselines));
        if (o->baselines == EGC_BASELINES_UNIFORM)
            fprintf(f, ", \"uniform_count\": %d", o->uniform_count);
        fprintf(f, ", \"noise\": %.9g, \"alpha\": \"%s\", \"combine\": \"%s\"", (double)o->noise,
                egc_alpha_name(o->alpha), egc_combine_name(o->combine));
        if (o->plan_file) {
            fprintf(f, ", \"plan\": ");
            cli_json_str(f, o->plan_file);
        }
    }
    fprintf(f, ", \"seed\": %" PRIu64 ", \"image_id\": \"%016" PRIx64 "\", \"status\": \"ok\"}\n",
            o->seed, r->image_id);
}

int cmd_explain(int argc, char **argv)
{
    const char *model_path = NULL, *method_list = NULL, *out_dir = NULL, *layer = NULL;
    const char *preset_name = NULL, *labels_path = NULL, *device = "cpu", *plan = NULL;
    const char *baselines = NULL;
    int quiet = 0, verbose = 0, class_k = -1;
    egc_explain_options o;
    egc_explain_options_default(&o);
    enum {
        O_MODEL = 256, O_METHOD, O_OUT, O_LAYER, O_PRESET, O_SAMPLES, O_BASELINES, O_NOISE,
        O_ALPHA, O_COMBINE, O_SCORE, O_SEED, O_CLASS, O_PLAN, O_DEVICE, O_BATCH, O_LABELS
    };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},     {"method", required_argument, 0, O_METHOD},
        {"out", required_argument, 0, O_OUT},         {"layer", required_argument, 0, O_LAYER},
        {"preset", required_argument, 0, O_PRESET},   {"samples", required_argument, 0, O_SAMPLES},
        {"baselines", required_argument, 0, O_BASELINES},
        {"noise", required_argument, 0, O_NOISE},     {"alpha", required_argument, 0, O_ALPHA},
        {"combine", required_argument, 0, O_COMBINE}, {"score", required_argument, 0, O_SCORE},
        {"seed", required_argument, 0, O_SEED},       {"class", required_argument, 0, O_CLASS},
        {"plan", required_argument, 0, O_PLAN},       {"device", required_argument, 0, O_DEVICE},
        {"batch", required_argument, 0, O_BATCH},     {"labels", required_argument, 0, O_LABELS},
        {"quiet", no_argument, 0, 'q'},               {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};
    static const char *const score_names[] = {"logit", "softmax"};
    static const char *const alpha_names[] = {"uniform", "grid"};
    static const char *const combine_names[] = {"A", "B", "C"};
    int c, v;
    long lv;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qvh", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model_path = optarg; break;
        case O_METHOD: method_list = optarg; break;
        case O_OUT: out_dir = optarg; break;
        case O_LAYER: layer = optarg; break;
        case O_PRESET: preset_name = optarg; break;
        case O_SAMPLES:
            if (!parse_int("--samples", optarg, 1, 1 << 20, &lv)) return EXIT_USAGE;
            o.samples = (int)lv;
            break;
        case O_BASELINES: baselines = optarg; break;
        case O_NOISE: {
            char *end;
            errno = 0;
            double d = strtod(optarg, &end);
            if (errno || *end || end == optarg || !(d >= 0) || !isfinite(d)) {
                fprintf(stderr, "egcam explain: --noise '%s' must be a number >= 0\n", optarg);
                return EXIT_USAGE;
            }
            o.noise = (float)d;
            break;
        }
        case O_ALPHA:
            if (!parse_choice("--alpha", optarg, alpha_names, 2, &v)) return EXIT_USAGE;
            o.alpha = (egc_alpha)v;
            break;
        case O_COMBINE:
            if (!parse_choice("--combine", optarg, combine_names, 3, &v)) return EXIT_USAGE;
            o.combine = (egc_combine)v;
            break;
        case O_SCORE:
            if (!parse_choice("--score", optarg, score_names, 2, &v)) return EXIT_USAGE;
            o.score = (egc_score)v;
            break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 0);
            if (errno || *end || end == optarg || optarg[0] == '-') {
                fprintf(stderr, "egcam explain: --seed '%s' must be an unsigned 64-bit integer\n",
                        optarg);
                return EXIT_USAGE;
            }
            o.seed = (uint64_t)s;
            break;
        }
        case O_CLASS:
            if (!strcmp(optarg, "auto")) class_k = -1;
            else if (!parse_int("--class", optarg, 0, 1 << 24, &lv)) return EXIT_USAGE;
            else class_k = (int)lv;
            break;
        case O_PLAN: plan = optarg; break;
        case O_DEVICE: device = optarg; break;
        case O_BATCH:
            if (!parse_int("--batch", optarg, 1, 4096, &lv)) return EXIT_USAGE;
            o.batch = (int)lv;
            break;
        case O_LABELS: labels_path = optarg; break;
        case 'q': quiet = 1; break;
        case 'v': verbose = 1; break;
        case 'h': help(stdout); return EXIT_ALL_OK;
        default: help(stderr); return EXIT_USAGE;
        }
    }
    if (!model_path || !method_list || !out_dir) {
        fprintf(stderr, "egcam explain: --model, --method and --out are required (see `egcam "
                        "explain --help`)\n");
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "egcam explain: no inputs given (image files, folders or .npy files)\n");
        return EXIT_USAGE;
    }
    if (baselines) {
        static const char *const bl[] = {"black", "blur", "uniform", "self"};
        int found = 0;
        for (int i = 0; i < 4; i++)
            if (!strcmp(baselines, bl[i])) {
                o.baselines = (egc_baselines)i;
                found = 1;
            }
        if (!found) {
            size_t l = strlen(baselines);
            if (l < 4 || strcmp(baselines + l - 4, ".npy")) {
                fprintf(stderr, "egcam explain: --baselines '%s' is not black, blur, uniform, "
                                "self or a .npy reference file\n", baselines);
                return EXIT_USAGE;
            }
            o.baselines = EGC_BASELINES_FILE;
            o.baseline_file = baselines;
        }
    }
    o.layer = layer;
    o.plan_file = plan;

    /* Methods. */
    egc_method methods[EGC_METHOD_COUNT];
    int n_methods = 0;
    {
        char *list = strdup(method_list), *save = NULL;
        if (!list) return EXIT_MODEL;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            egc_method m;
            if (egc_method_parse(t, &m) != EGC_OK) {
                cli_error("--method", 0);
                free(list);
                return EXIT_USAGE;
            }
            int dup = 0;
            for (int i = 0; i < n_methods; i++) dup |= methods[i] == m;
            if (dup) {
                fprintf(stderr, "egcam explain: method '%s' is listed twice\n", t);
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
    if (egc_model_load(model_path, &m) != EGC_OK) {
        cli_error(model_path, verbose);
        return EXIT_MODEL;
    }
    if (!preset_name) preset_name = cli_default_preset(m);
    if (egc_preset_parse(preset_name, &o.preset) != EGC_OK) {
        fprintf(stderr, "egcam explain: --preset '%s' is not one of tf, torchvision, cifar\n",
                preset_name);
        egc_model_destroy(m);
        return EXIT_USAGE;
    }
    int ch, H, W, classes = egc_model_num_classes(m);
    egc_model_input_chw(m, &ch, &H, &W);
    if (class_k >= classes) {
        fprintf(stderr, "egcam explain: --class %d is out of range (the model has %d classes)\n",
                class_k, classes);
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
    int B = o.batch;
    /* Images per call: the session rows hold images x samples; B images keep one clean pass
     * per chunk. */
    egc_explainer *ex[EGC_METHOD_COUNT] = {0};
    int rc = EXIT_ALL_OK;
    for (int k = 0; k < n_methods; k++) {
        egc_explain_options mo = o;
        mo.method = methods[k];
        egc_status st = egc_explainer_create(m, device, &mo, &ex[k]);
        if (st != EGC_OK) {
            cli_error(egc_method_name(methods[k]), verbose);
            /* Bad options or option files are usage errors; the rest is the model or device. */
            rc = (st == EGC_E_ARG || st == EGC_E_IO || st == EGC_E_FORMAT || st == EGC_E_SHAPE)
                     ? EXIT_USAGE
                     : EXIT_MODEL;
            goto cleanup_ex;
        }
    }
    if (cli_mkdirs(out_dir) != 0) {
        rc = EXIT_USAGE;
        goto cleanup_ex;
    }
    char path[4096];
    if (n_methods > 1)
        for (int k = 0; k < n_methods; k++) {
            snprintf(path, sizeof path, "%s/%s", out_dir, egc_method_name(methods[k]));
            if (cli_mkdirs(path) != 0) {
                rc = EXIT_USAGE;
                goto cleanup_ex;
            }
        }
    snprintf(path, sizeof path, "%s/manifest.jsonl", out_dir);
    FILE *manifest = fopen(path, "w");
    if (!manifest) {
        fprintf(stderr, "egcam explain: cannot write %s: %s\n", path, strerror(errno));
        rc = EXIT_USAGE;
        goto cleanup_ex;
    }
    run_cfg cfg = {ex, methods, n_methods, out_dir, NULL, NULL, classes, o.preset, verbose,
                   manifest};
    cfg.labels = cli_load_labels(labels_path, model_path, classes);
    cfg.names = unique_names(&items);

    size_t per = (size_t)3 * (size_t)H * (size_t)W;
    float *x = malloc((size_t)B * per * sizeof(float));
    float *maps = malloc((size_t)B * (size_t)H * (size_t)W * sizeof(float));
    int *slot = malloc((size_t)B * sizeof(int)), *cls = malloc((size_t)B * sizeof(int));
    egc_cam_result *res = malloc((size_t)B * sizeof *res);
    if (!x || !maps || !slot || !cls || !res) {
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
    for (int i = 0; i < items.n;) {
        int nb = 0;
        while (i < items.n && nb < B) {
            if (cli_load_item(&items.v[i], o.preset, W, H, x + (size_t)nb * per, NULL) != EGC_OK) {
                cli_error(items.v[i].id, verbose);
                manifest_error(&cfg, &items.v[i], NULL, egc_last_error());
                rc = EXIT_SOME_FAILED;
                cli_progress_step(&pr, 1);
            } else {
                cls[nb] = class_k;
                slot[nb++] = i;
            }
            i++;
        }
        if (!nb) continue;
        for (int k = 0; k < n_methods; k++) {
            const char *mname = egc_method_name(methods[k]);
            for (int t = 0; t < nb; t++) {
                res[t].raw = NULL;
                res[t].map = maps + (size_t)t * (size_t)H * (size_t)W;
            }
            if (egc_explainer_run(ex[k], x, nb, cls, res) != EGC_OK) {
                cli_error(mname, verbose);
                for (int t = 0; t < nb; t++)
                    manifest_error(&cfg, &items.v[slot[t]], mname, egc_last_error());
                rc = EXIT_SOME_FAILED;
                continue;
            }
            for (int t = 0; t < nb; t++) {
                const cli_item *it = &items.v[slot[t]];
                if (n_methods > 1)
                    snprintf(path, sizeof path, "%s/%s/%s", out_dir, mname, cfg.names[slot[t]]);
                else
                    snprintf(path, sizeof path, "%s/%s", out_dir, cfg.names[slot[t]]);
                egc_tensor tt;
                int64_t dims[2] = {H, W};
                tt.shape = egc_shape_make(2, dims);
                tt.data = res[t].map;
                if (egc_npy_write(path, &tt) != EGC_OK) {
                    cli_error(path, verbose);
                    manifest_error(&cfg, it, mname, egc_last_error());
                    rc = EXIT_SOME_FAILED;
                    continue;
                }
                manifest_ok(&cfg, it, ex[k], path, &res[t], class_k >= 0);
            }
        }
        fflush(manifest);
        cli_progress_step(&pr, nb);
    }
    cli_progress_end(&pr);
    if (fclose(manifest) != 0) {
        fprintf(stderr, "egcam explain: error writing %s/manifest.jsonl\n", out_dir);
        rc = EXIT_SOME_FAILED;
    }
    for (int t = 0; t < items.n; t++) free(cfg.names[t]);
    free(cfg.names);
    cli_free_labels(cfg.labels, classes);
    free(x);
    free(maps);
    free(slot);
    free(cls);
    free(res);
cleanup_ex:
    for (int k = 0; k < n_methods; k++) egc_explainer_destroy(ex[k]);
    free(bad_paths);
    cli_items_free(&items);
    egc_model_destroy(m);
    return rc;
}

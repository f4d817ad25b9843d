/* cmd_check.c: `egcam check`: does egcam compute this model as it should, on these inputs?
 *
 * Three checks, each with its numbers and a verdict:
 *   logits     finite; with --logits REF.npy, equal to a reference (PyTorch's, onnxruntime's)
 *              within atol + rtol |ref| per element;
 *   gradient   the gradient G at the target layer (what every CAM is made of) against finite
 *              differences of the logits with the layer's activation A moved along random
 *              directions D (egc_session_forward_offset):
 *                fd = (f_c(A + D) - f_c(A - D)) / 2   against   an = < G, D >
 *              (f_c: the top-1 logit). This checks the backward through the layers after the
 *              target, the layers before it not being involved;
 *   device     with a device other than the CPU: its logits and gradients against the CPU
 *              reference's (fp32 on the CPU).
 * Exit 0 when every check that could run passed, 1 when one failed. */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CHECK_TRY(expr)                                                                    \
    do {                                                                                   \
        egc_status st_ = (expr);                                                           \
        if (st_ != EGC_OK) return st_;                                                     \
    } while (0)

static void help(FILE *f)
{
    fprintf(f,
        "usage: egcam check --model M.onnx [options] [INPUTS...]\n"
        "\n"
        "Checks that egcam computes the model as it should, on your inputs (images, folders\n"
        "or .npy tensors; without INPUTS, --images random normal inputs):\n"
        "  logits    finite; with --logits, equal to a reference within atol + rtol |ref|\n"
        "  gradient  the gradient of the top-1 logit at the CAM's target layer against\n"
        "            finite differences of the logits with the layer's activation moved along\n"
        "            --directions random directions per image (this checks the backward that\n"
        "            every CAM uses)\n"
        "  device    with --device cuda: the GPU's logits and gradients against the CPU's\n"
        "\n"
        "options:\n"
        "  --model M.onnx      the classifier (required)\n"
        "  --layer L           target layer, as `egcam explain --layer` (default auto)\n"
        "  --preset P          tf | torchvision | cifar[:mean=..:std=..:bgr], for image inputs (default: cifar for\n"
        "                      32x32 inputs, else torchvision)\n"
        "  --input-size HxW    the image size a model exported with dynamic H and W runs at\n"
        "                      (its input's symbolic axes; default: the file's)\n"
        "  --logits REF.npy    reference logits (N,classes) float32 of the N inputs, in order\n"
        "                      (e.g. PyTorch's for the same .npy tensor)\n"
        "  --atol A, --rtol R  the logits tolerance (default 1e-4 and 1e-3)\n"
        "  --images N          random inputs when no INPUTS are given (default 4)\n"
        "  --directions K      finite-difference directions per image (default 4)\n"
        "  --eps E             finite-difference step, relative to the activation (default\n"
        "                      1e-3; 1e-2 in fp32 on a GPU, where TF32 is allowed; 3e-2 in\n"
        "                      mixed precision)\n"
        "  --grad-tol T        largest median relative gradient error (default 1e-2; 3e-2 in\n"
        "                      fp32 on a GPU with TF32; 5e-2 in mixed precision)\n"
        "  --seed S            seed of the random inputs and directions (default 0)\n"
        "  --device D          cpu | cuda | cuda:N (default cpu)\n"
        "  --precision P       fp32 | mixed (default fp32)\n"
        "  --json              one JSON object with every number instead of the text\n"
        "  -q, --quiet         only the verdict line\n"
        "  -v, --verbose       full error traces\n"
        "  -h, --help          this text\n"
        "\n"
        "exit codes: 0 every check passed, 1 a check failed, 2 usage error, 3 model, input\n"
        "            or device error\n"
        "\n"
        "examples:\n"
        "  egcam check --model ../shared/models/resnet20_cifar10.onnx\n"
        "  egcam check --model resnet50.onnx --logits torch_logits.npy x.npy\n"
        "  egcam check --model resnet50.onnx --device cuda --precision mixed photos/\n");
}

/* splitmix64: the random inputs and directions, the same on every machine. */
static uint64_t mix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s) { return ((double)(mix64(s) >> 11) + 0.5) * 0x1.0p-53; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A number for JSON: null where it is not finite. */
static void json_num(double v)
{
    if (isfinite(v))
        printf("%.6g", v);
    else
        printf("null");
}

/* What the helpers below share. */
typedef struct check_ctx {
    int classes, dirs, verbose;
    size_t per, khw;    /* floats per input row, per target activation row */
    double eps;         /* the first finite-difference step */
    uint64_t seed;
} check_ctx;

/* One-hot seeds [n, classes] at each row's largest logit into seed, the classes into cls. */
static void top1(const float *logits, int n, int classes, float *seed, int *cls)
{
    memset(seed, 0, (size_t)n * (size_t)classes * sizeof *seed);
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * classes;
        int b = 0;
        for (int c = 1; c < classes; c++) b = l[c] > l[b] ? c : b;
        cls[i] = b;
        seed[(size_t)i * classes + b] = 1.0f;
    }
}

/* The forward and the gradient at the target layer of n rows of x on session s (batch >= n):
 * logits [n,classes], classes, grad and act [n,khw]. */
static egc_status forward_grad(egc_session *s, const check_ctx *c, const float *x, int n,
                               float *logits, float *seedbuf, int *cls, float *grad, float *act)
{
    CHECK_TRY(egc_session_forward(s, x, n, logits));
    top1(logits, n, c->classes, seedbuf, cls);
    return egc_session_backward(s, seedbuf, n, grad, act);
}

/* The directional checks of image i (x0, its top-1 class cls, and at the target layer its
 * activation A0 and gradient G) on session s (batch >= 2 K): direction k moves the activation
 * by D = step A0 (1 + u), u uniform in [-1/2, 1/2) per value (along the activation, so the
 * change does not cancel out in the layers after it), and compares
 *   fd = (f_c(A0 + D) - f_c(A0 - D)) / (2 step)  with  an = <G, D> / step
 * with the step eps and 10 eps: the better of the two counts (rounding spoils small steps of a
 * smooth head, a Relu's kink large steps of a piecewise linear one; a wrong gradient spoils
 * both). Into fd_out[k], an_out[k], their relative difference rel[k] and the step step[k]. A
 * direction along which both lie below the rounding level of the logits tells nothing: it is
 * tried again with 100 eps, and where it still tells nothing, rel[k] is NaN. xb [2K rows] and
 * off [2K, khw] are scratch. */
static egc_status directions(egc_session *s, const check_ctx *c, int i, const float *x0, int cls,
                             const float *A0, const float *G, float *xb, float *off,
                             float *logits, double *rel, double *fd_out, double *an_out,
                             double *step)
{
    const int K = c->dirs, chunk = egc_session_chunk(s);
    int todo[64], nt = K;
    for (int k = 0; k < K; k++) todo[k] = k, rel[k] = NAN, fd_out[k] = an_out[k] = step[k] = 0.0;
    for (int r = 0; r < 2 * K; r++) memcpy(xb + (size_t)r * c->per, x0, c->per * sizeof *xb);
    double eps = c->eps;
    for (int round = 0; round < 3; round++, eps *= 10.0) {
        if (round == 1) { /* every direction again with 10 times the step */
            for (int k = 0; k < K; k++) todo[k] = k;
            nt = K;
        }
        if (nt == 0) break;
        for (int t = 0; t < nt; t++) { /* the same u for direction k in every round */
            uint64_t st = (c->seed + 1) * 0x9e3779b97f4a7c15ULL ^
                          ((uint64_t)(i + 1) << 20) ^ (uint64_t)(todo[t] + 1);
            float *op = off + (size_t)(2 * t) * c->khw, *om = op + c->khw;
            for (size_t j = 0; j < c->khw; j++) {
                const float d = (float)(eps * A0[j] * (1.0 + (unit(&st) - 0.5)));
                op[j] = d;
                om[j] = -d;
            }
        }
        for (int r0 = 0; r0 < 2 * nt; r0 += chunk) {
            const int nb = 2 * nt - r0 < chunk ? 2 * nt - r0 : chunk;
            CHECK_TRY(egc_session_forward_offset(s, xb, nb, off + (size_t)r0 * c->khw,
                                                 logits + (size_t)r0 * c->classes));
        }
        int left = 0;
        for (int t = 0; t < nt; t++) {
            const int k = todo[t];
            const float *op = off + (size_t)(2 * t) * c->khw;
            const double fp = logits[(size_t)(2 * t) * c->classes + cls],
                         fm = logits[(size_t)(2 * t + 1) * c->classes + cls];
            double an = 0.0;
            for (size_t j = 0; j < c->khw; j++) an += (double)G[j] * op[j];
            an /= eps;
            const double fd = (fp - fm) / (2.0 * eps);
            /* the float32 rounding of the logits (a few 1e-7 |f|), divided by 2 eps */
            const double floor = 1e-6 * (fabs(fp) + fabs(fm)) / eps;
            const double big = fabs(fd) > fabs(an) ? fabs(fd) : fabs(an);
            const double r = big > floor ? fabs(fd - an) / (big + floor) : NAN;
            if (!isnan(r) && !(r >= rel[k])) { /* the better of the steps (rel[k] NaN: none yet) */
                rel[k] = r;
                fd_out[k] = fd;
                an_out[k] = an;
                step[k] = eps;
            }
            if (isnan(rel[k])) todo[left++] = k;
        }
        nt = left;
    }
    return EGC_OK;
}

/* Loads the inputs: items decoded and preprocessed, or n random normal ones. *x [n, per]. */
static int load_inputs(const check_ctx *c, char **paths, int n_paths, int n_random,
                       egc_preset preset, int ch, int w, int h, float **x, int *n, char ***ids)
{
    *x = NULL;
    *n = 0;
    *ids = NULL;
    if (n_paths == 0) {
        *x = malloc((size_t)n_random * c->per * sizeof(float));
        *ids = calloc((size_t)n_random, sizeof **ids);
        if (!*x || !*ids) {
            fprintf(stderr, "egcam check: out of memory for %d inputs\n", n_random);
            return 0;
        }
        uint64_t st = c->seed ^ 0xd1b54a32d192ed03ULL;
        for (size_t j = 0; j < (size_t)n_random * c->per; j++) /* Box-Muller */
            (*x)[j] = (float)(sqrt(-2.0 * log(unit(&st))) * cos(6.283185307179586 * unit(&st)));
        for (int i = 0; i < n_random; i++) {
            char b[64];
            snprintf(b, sizeof b, "random[%d]", i);
            if (!((*ids)[i] = strdup(b))) {
                fprintf(stderr, "egcam check: out of memory\n");
                *n = i;
                return 0;
            }
        }
        *n = n_random;
        return 1;
    }
    cli_items items;
    int bad = 0;
    cli_expand_inputs(paths, n_paths, &items, &bad);
    if (bad || items.n == 0) {
        if (!bad) fprintf(stderr, "egcam check: no inputs found in the paths given\n");
        cli_items_free(&items);
        return 0;
    }
    *x = malloc((size_t)items.n * c->per * sizeof(float));
    *ids = calloc((size_t)items.n, sizeof **ids);
    egc_status *st = calloc((size_t)items.n, sizeof *st);
    char **err = calloc((size_t)items.n, sizeof *err);
    int ok = *x && *ids && st && err;
    if (!ok) fprintf(stderr, "egcam check: out of memory for %d inputs\n", items.n);
    if (ok) cli_load_rows(items.v, items.n, preset, ch, w, h, *x, NULL, st, err);
    const int allocated = ok;
    for (int i = 0; allocated && i < items.n; i++) { /* every input that failed, in order */
        if (st[i] != EGC_OK) {
            cli_restore_error(err[i]);
            cli_error(items.v[i].id, c->verbose);
            ok = 0;
        } else if (!((*ids)[i] = strdup(items.v[i].id))) {
            fprintf(stderr, "egcam check: out of memory\n");
            ok = 0;
            break;
        }
    }
    for (int i = 0; err && i < items.n; i++) free(err[i]);
    free(err);
    free(st);
    *n = items.n;
    cli_items_free(&items);
    return ok;
}

static void free_ids(char **ids, int n)
{
    for (int i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
}

int cmd_check(int argc, char **argv)
{
    const char *model_path = NULL, *layer_name = "auto", *preset_name = NULL, *ref_path = NULL,
               *device = "cpu";
    double atol = 1e-4, rtol = 1e-3, eps = -1.0, grad_tol = -1.0;
    long images = 4, dirs = 4, lv;
    unsigned long long seed = 0;
    int json = 0, quiet = 0, verbose = 0;
    egc_session_options so;
    egc_session_options_default(&so);
    enum { O_MODEL = 256, O_LAYER, O_PRESET, O_LOGITS, O_ATOL, O_RTOL, O_IMAGES, O_DIRS, O_EPS,
           O_GTOL, O_SEED, O_DEVICE, O_PREC, O_JSON, O_INSIZE };
    int in_h = 0, in_w = 0; /* --input-size */
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},   {"layer", required_argument, 0, O_LAYER},
        {"preset", required_argument, 0, O_PRESET}, {"logits", required_argument, 0, O_LOGITS},
        {"atol", required_argument, 0, O_ATOL},     {"rtol", required_argument, 0, O_RTOL},
        {"images", required_argument, 0, O_IMAGES}, {"directions", required_argument, 0, O_DIRS},
        {"eps", required_argument, 0, O_EPS},       {"grad-tol", required_argument, 0, O_GTOL},
        {"seed", required_argument, 0, O_SEED},     {"device", required_argument, 0, O_DEVICE},
        {"precision", required_argument, 0, O_PREC}, {"json", no_argument, 0, O_JSON},
        {"input-size", required_argument, 0, O_INSIZE},
        {"quiet", no_argument, 0, 'q'},             {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":qvh", opts, NULL)) != -1) {
        switch (ch) {
        case O_MODEL: model_path = optarg; break;
        case O_LAYER: layer_name = optarg; break;
        case O_PRESET: preset_name = optarg; break;
        case O_INSIZE:
            if (!cli_parse_hw("check", "input-size", optarg, &in_h, &in_w)) return EXIT_USAGE;
            break;
        case O_LOGITS: ref_path = optarg; break;
        case O_ATOL:
            if (!cli_parse_double("check", "--atol", optarg, 0.0, 1e30, &atol)) return EXIT_USAGE;
            break;
        case O_RTOL:
            if (!cli_parse_double("check", "--rtol", optarg, 0.0, 1e30, &rtol)) return EXIT_USAGE;
            break;
        case O_IMAGES:
            if (!cli_parse_long("check", "--images", optarg, 1, 256, &images)) return EXIT_USAGE;
            break;
        case O_DIRS:
            if (!cli_parse_long("check", "--directions", optarg, 1, 64, &dirs)) return EXIT_USAGE;
            break;
        case O_EPS:
            if (!cli_parse_double("check", "--eps", optarg, 1e-8, 1.0, &eps)) return EXIT_USAGE;
            break;
        case O_GTOL:
            if (!cli_parse_double("check", "--grad-tol", optarg, 0.0, 1e30, &grad_tol))
                return EXIT_USAGE;
            break;
        case O_SEED:
            if (!cli_parse_long("check", "--seed", optarg, 0, 0x7fffffffL, &lv)) return EXIT_USAGE;
            seed = (unsigned long long)lv;
            break;
        case O_DEVICE: device = optarg; break;
        case O_PREC:
            if (!cli_parse_precision("check", optarg, &so.precision)) return EXIT_USAGE;
            break;
        case O_JSON: json = 1; break;
        case 'q': quiet = 1; break;
        case 'v': verbose = 1; break;
        case 'h': help(stdout); return EXIT_ALL_OK;
        default: return cli_bad_option("check", argc, argv, ch);
        }
    }
    if (!model_path) {
        fprintf(stderr, "egcam check: --model is required (see `egcam check --help`)\n");
        return EXIT_USAGE;
    }
    const int mixed = so.precision == EGC_PREC_MIXED;
    /* fp32 on a GPU with TF32 products (the default there): 10 bits of mantissa in the
     * products, so larger steps and a looser tolerance, between fp32's and mixed's */
    const char *tf32_env = getenv("EGC_CUDA_TF32"); /* off as the backend reads it */
    const int tf32 = !mixed && device && strncmp(device, "cpu", 3) != 0 &&
                     !(tf32_env && (!strcmp(tf32_env, "0") || !strcmp(tf32_env, "off") ||
                                    !strcmp(tf32_env, "OFF")));
    if (eps < 0) eps = mixed ? 3e-2 : tf32 ? 1e-2 : 1e-3;
    if (grad_tol < 0) grad_tol = mixed ? 5e-2 : tf32 ? 3e-2 : 1e-2;

    check_ctx c = {0, (int)dirs, verbose, 0, 0, eps, (uint64_t)seed};
    egc_model *m = NULL;
    int layer = -1;
    egc_status lst = egc_model_load_sized(model_path, in_h, in_w, &m);
    if (lst != EGC_OK) {
        cli_model_error(model_path, lst, verbose);
        return EXIT_MODEL;
    }
    int rc = EXIT_MODEL;
    egc_session *s = NULL, *sc = NULL;
    float *ref_soft = NULL; /* the logits through a left-out final Softmax */
    float *x = NULL, *xb = NULL, *l0 = NULL, *logits = NULL, *seedbuf = NULL, *G = NULL,
          *A = NULL, *off = NULL, *lc = NULL, *gc = NULL;
    int *cls = NULL, *clsc = NULL, n = 0;
    char **ids = NULL;
    double *rel = NULL, *fdv = NULL, *anv = NULL, *stepv = NULL;
    egc_tensor rt = {0};
    int ic, h, w;
    egc_model_input_chw(m, &ic, &h, &w);
    c.classes = egc_model_num_classes(m);
    c.per = (size_t)ic * (size_t)h * (size_t)w;
    if (egc_model_find_layer(m, layer_name, &layer) != EGC_OK) {
        cli_error("--layer", verbose);
        rc = EXIT_USAGE;
        goto done;
    }
    egc_layer_info li;
    egc_shape cs;
    if (egc_model_layer(m, layer, &li) != EGC_OK ||
        egc_model_layer_cam_shape(m, layer, &cs) != EGC_OK) {
        cli_error("--layer", verbose);
        rc = EXIT_USAGE;
        goto done;
    }
    egc_preset preset;
    if (!preset_name) preset_name = cli_default_preset(m);
    if (!cli_parse_preset("check", preset_name, &preset)) {
        rc = EXIT_USAGE;
        goto done;
    }
    if (ic != 3 && ic != 1 && optind < argc) {
        fprintf(stderr, "egcam check: %s takes %d channels; image inputs are RGB (3) or gray "
                "(1)\n", model_path, ic);
        goto done;
    }
    if (!load_inputs(&c, argv + optind, argc - optind, (int)images, preset, ic, w, h, &x, &n,
                     &ids))
        goto done;
    if (ref_path) {
        if (egc_npy_read(ref_path, &rt) != EGC_OK) {
            cli_error(ref_path, verbose);
            rc = EXIT_USAGE;
            goto done;
        }
        if (rt.shape.ndim != 2 || rt.shape.d[0] != n || rt.shape.d[1] != c.classes) {
            char b[96];
            fprintf(stderr, "egcam check: %s has shape %s; the %d inputs need (%d,%d)\n",
                    ref_path, egc_shape_str(&rt.shape, b, sizeof b), n, n, c.classes);
            rc = EXIT_USAGE;
            goto done;
        }
    }
    const int K = c.dirs, rows = n > 2 * K ? n : 2 * K;
    so.whole_target = 1; /* the layer's whole tensor: a token layer's prefix tokens count too */
    if (egc_session_create_ex(m, device, rows, layer, &so, &s) != EGC_OK) {
        cli_error(device, verbose);
        goto done;
    }
    const int on_cpu = !strncmp(egc_session_device(s), "cpu", 3);
    egc_session_options ro;
    egc_session_options_default(&ro);
    ro.whole_target = 1;
    if (!on_cpu && egc_session_create_ex(m, "cpu", n, layer, &ro, &sc) != EGC_OK) {
        cli_error("cpu reference", verbose);
        goto done;
    }
    {
        const egc_shape ts = egc_session_target_shape(s);
        c.khw = (size_t)egc_shape_numel(&ts);
    }
    xb = malloc((size_t)(2 * K) * c.per * sizeof *xb);
    l0 = malloc((size_t)n * (size_t)c.classes * sizeof *l0);
    logits = malloc((size_t)rows * (size_t)c.classes * sizeof *logits);
    seedbuf = malloc((size_t)rows * (size_t)c.classes * sizeof *seedbuf);
    G = malloc((size_t)n * c.khw * sizeof *G);
    A = malloc((size_t)n * c.khw * sizeof *A);
    off = malloc((size_t)(2 * K) * c.khw * sizeof *off);
    cls = malloc((size_t)n * sizeof *cls);
    rel = malloc((size_t)n * (size_t)K * sizeof *rel);
    fdv = malloc((size_t)K * sizeof *fdv);
    anv = malloc((size_t)K * sizeof *anv);
    stepv = malloc((size_t)K * sizeof *stepv);
    if (!on_cpu) {
        lc = malloc((size_t)n * (size_t)c.classes * sizeof *lc);
        gc = malloc((size_t)n * c.khw * sizeof *gc);
        clsc = malloc((size_t)n * sizeof *clsc);
    }
    if (!xb || !l0 || !logits || !seedbuf || !G || !A || !off || !cls || !rel || !fdv || !anv || !stepv ||
        (!on_cpu && (!lc || !gc || !clsc))) {
        fprintf(stderr, "egcam check: out of memory\n");
        goto done;
    }

    /* 1. logits */
    if (forward_grad(s, &c, x, n, l0, seedbuf, cls, G, A) != EGC_OK) {
        cli_error("forward and backward", verbose);
        goto done;
    }
    size_t nonfinite = 0;
    for (size_t j = 0; j < (size_t)n * (size_t)c.classes; j++) nonfinite += !isfinite(l0[j]);
    for (size_t j = 0; j < (size_t)n * c.khw; j++) nonfinite += !isfinite(G[j]);
    double ref_worst = 0.0, ref_ratio = 0.0; /* largest |d|, and largest |d| / (atol + rtol |r|) */
    int ref_at = -1;
    /* A model whose final Softmax or LogSoftmax egcam left out is compared with a reference
     * of log-probabilities (nonpositive rows whose exponentials sum to 1: a LogSoftmax's
     * output) through a LogSoftmax, or of probabilities (nonnegative rows that sum to 1) through
     * a Softmax; with logits as they are. */
    int ref_probs = 0, removed = 0; /* removed: what the reference is, 2 or 1, as above */
    if (ref_path && egc_model_output_softmax_removed(m)) /* either form, whichever was left out */
        for (int kind = 2; kind >= 1 && !ref_probs; kind--) {
            ref_probs = 1;
            for (int i = 0; i < n && ref_probs; i++) {
                double sum = 0.0;
                for (int k = 0; k < c.classes; k++) {
                    const double r = rt.data[(size_t)i * c.classes + k];
                    if (kind == 2 ? !(r <= 1e-6) : !(r >= 0.0)) ref_probs = 0;
                    sum += kind == 2 ? exp(r) : r;
                }
                if (!(fabs(sum - 1.0) <= 1e-3)) ref_probs = 0;
            }
            if (ref_probs) removed = kind;
        }
    if (ref_probs) {
        ref_soft = malloc((size_t)n * (size_t)c.classes * sizeof *ref_soft);
        if (!ref_soft) {
            fprintf(stderr, "egcam check: out of memory\n");
            goto done;
        }
        for (int i = 0; i < n; i++) {
            const float *l = l0 + (size_t)i * c.classes;
            double mx = -INFINITY, sum = 0.0;
            for (int k = 0; k < c.classes; k++) mx = l[k] > mx ? l[k] : mx;
            for (int k = 0; k < c.classes; k++) sum += exp((double)l[k] - mx);
            for (int k = 0; k < c.classes; k++)
                ref_soft[(size_t)i * c.classes + k] =
                    removed == 2 ? (float)((double)l[k] - mx - log(sum))
                                 : (float)(exp((double)l[k] - mx) / sum);
        }
    }
    const float *ref_mine = ref_soft ? ref_soft : l0; /* what the reference is compared with */
    if (ref_path)
        for (size_t j = 0; j < (size_t)n * (size_t)c.classes; j++) {
            const double r = rt.data[j], d = fabs((double)ref_mine[j] - r);
            const double q = d == 0.0 ? 0.0 : d / (atol + rtol * fabs(r));
            if (!(q <= ref_ratio)) { /* NaN counts as the worst */
                ref_ratio = isnan(q) ? INFINITY : q;
                ref_at = (int)j;
            }
            if (d > ref_worst || isnan(d)) ref_worst = isnan(d) ? INFINITY : d;
        }
    const int ok_finite = nonfinite == 0, ok_ref = !ref_path || ref_ratio <= 1.0;

    /* 2. gradient against finite differences of the logits with the activation moved (a
     * residual connection around the layer keeps the unmoved one: the partial derivative, as
     * the gradient is) */
    const int bypassed = egc_model_layer_bypassed(m, layer) == 1;
    double worst_rel = 0.0, worst_fd = 0.0, worst_an = 0.0, max_step = 0.0;
    int worst_img = 0;
    for (int i = 0; i < n; i++) {
        if (directions(s, &c, i, x + (size_t)i * c.per, cls[i], A + (size_t)i * c.khw,
                       G + (size_t)i * c.khw, xb, off, logits, rel + (size_t)i * K, fdv, anv,
                       stepv) != EGC_OK) {
            cli_error("finite differences", verbose);
            goto done;
        }
        for (int k = 0; k < K; k++) {
            max_step = stepv[k] > max_step && !isnan(rel[(size_t)i * K + k]) ? stepv[k] : max_step;
            if (rel[(size_t)i * K + k] > worst_rel) {
                worst_rel = rel[(size_t)i * K + k];
                worst_fd = fdv[k];
                worst_an = anv[k];
                worst_img = i;
            }
        }
    }
    size_t nr = 0; /* the informative directions, first in rel */
    for (size_t j = 0; j < (size_t)n * (size_t)K; j++)
        if (!isnan(rel[j])) rel[nr++] = rel[j];
    qsort(rel, nr, sizeof *rel, cmp_double);
    const double med = nr == 0 ? NAN : nr % 2 ? rel[nr / 2] : 0.5 * (rel[nr / 2 - 1] + rel[nr / 2]);
    /* a quantized head (QuantizeLinear / DequantizeLinear pairs after the layer): the logits
     * move in steps, and the gradient passes straight through the rounding by convention, so
     * finite differences do not judge it (reported, not checked) */
    const int quantized = egc_model_quantized_pairs(m, layer) > 0;
    const int grad_checked = nr > 0 && !quantized;
    const int ok_grad = !grad_checked || med <= grad_tol;

    /* 3. the device against the CPU */
    double dev_logit = 0.0, dev_cos = 1.0;
    int dev_cls = 0, ok_dev = 1;
    if (!on_cpu) {
        const float *lcur = l0;
        if (forward_grad(sc, &c, x, n, lc, seedbuf, clsc, gc, NULL) != EGC_OK) {
            cli_error("device against cpu", verbose);
            goto done;
        }
        double lmax = 0.0;
        for (size_t j = 0; j < (size_t)n * (size_t)c.classes; j++) {
            const double d = fabs((double)lcur[j] - lc[j]);
            dev_logit = d > dev_logit || isnan(d) ? (isnan(d) ? INFINITY : d) : dev_logit;
            lmax = fabs((double)lc[j]) > lmax ? fabs((double)lc[j]) : lmax;
        }
        dev_logit /= lmax > 0.0 ? lmax : 1.0;
        for (int i = 0; i < n; i++) {
            dev_cls += cls[i] == clsc[i];
            double ab = 0.0, aa = 0.0, bb = 0.0;
            const float *g1 = G + (size_t)i * c.khw, *g2 = gc + (size_t)i * c.khw;
            for (size_t j = 0; j < c.khw; j++)
                ab += (double)g1[j] * g2[j], aa += (double)g1[j] * g1[j], bb += (double)g2[j] * g2[j];
            const double cosv = aa > 0.0 && bb > 0.0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
            if (cls[i] == clsc[i] && !(cosv >= dev_cos)) dev_cos = cosv;
        }
        ok_dev = dev_logit <= (mixed ? 2e-2 : 1e-2) && dev_cos >= 0.999;
    }
    const int ok = ok_finite && ok_ref && ok_grad && ok_dev;

    if (json) {
        printf("{\"model\": ");
        cli_json_str(stdout, model_path);
        printf(", \"layer\": ");
        cli_json_str(stdout, li.name);
        printf(", \"device\": ");
        cli_json_str(stdout, egc_session_device(s));
        printf(", \"precision\": \"%s\", \"inputs\": %d, \"random_inputs\": %s, "
               "\"logits_finite\": %s, \"nonfinite\": %zu",
               egc_precision_name(so.precision), n, optind < argc ? "false" : "true",
               ok_finite ? "true" : "false", nonfinite);
        if (ref_path) {
            printf(", \"reference\": {\"probabilities\": %s, \"log_probabilities\": %s, "
                   "\"max_abs_diff\": ", ref_probs && removed == 1 ? "true" : "false",
                   ref_probs && removed == 2 ? "true" : "false");
            json_num(ref_worst);
            printf(", \"atol\": %g, \"rtol\": %g, \"ok\": %s}", atol, rtol,
                   ok_ref ? "true" : "false");
        }
        printf(", \"gradient\": {\"checked\": %s, ", grad_checked ? "true" : "false");
        if (!grad_checked)
            printf("\"reason\": \"%s\", ", quantized ? "quantized" : "inconclusive");
        printf("\"bypassed\": %s, ", bypassed ? "true" : "false");
        printf("\"directions\": %d, \"informative\": %zu, \"eps\": %g, \"max_eps\": %g, "
               "\"median_rel_error\": ", K, nr, eps, max_step);
        json_num(nr ? med : NAN);
        printf(", \"worst_rel_error\": ");
        json_num(worst_rel);
        printf(", \"tol\": %g, \"ok\": %s}", grad_tol, ok_grad ? "true" : "false");
        if (!on_cpu) {
            printf(", \"device_vs_cpu\": {\"logits_rel_diff\": ");
            json_num(dev_logit);
            printf(", \"same_top1\": %d, \"min_grad_cosine\": ", dev_cls);
            json_num(dev_cos);
            printf(", \"ok\": %s}", ok_dev ? "true" : "false");
        }
        printf(", \"ok\": %s}\n", ok ? "true" : "false");
    } else {
        char sb[96];
        if (!quiet) {
            printf("model     %s\n", model_path);
            printf("layer     %s %s%s\n", li.name, egc_shape_str(&li.shape, sb, sizeof sb),
                   strcmp(layer_name, "auto") ? "" : "  (auto)");
            printf("device    %s, %s\n", egc_session_device(s), egc_precision_name(so.precision));
            if (optind < argc)
                printf("inputs    %d\n", n);
            else
                printf("inputs    %d random normal (seed %llu)\n", n, seed);
            printf("\nlogits    %s%s\n", ok_finite ? "finite" : "NOT FINITE",
                   ok_finite ? "" : " (logits or gradients hold NaN or infinity)");
            if (ref_path) {
                const int own = removed == egc_model_output_softmax_removed(m);
                printf("reference %s%s%s%s: max |diff| %.3g", ref_path,
                       !ref_probs ? "" : removed == 2 ? " (log-probabilities: the logits through "
                                                      : " (probabilities: the logits through ",
                       !ref_probs ? "" : own ? "the model's final " : "a ",
                       !ref_probs ? "" : removed == 2 ? "LogSoftmax)" : "Softmax)", ref_worst);
                if (ref_at >= 0)
                    printf(", worst at %s class %d (%.7g against %.7g)",
                           ids[ref_at / c.classes], ref_at % c.classes, (double)ref_mine[ref_at],
                           (double)rt.data[ref_at]);
                printf("; tolerance %g + %g |ref|: %s\n", atol, rtol, ok_ref ? "ok" : "FAILED");
            }
            if (nr == 0)
                printf("gradient  not checked: along none of the %d x %d directions did the "
                       "logits move above their rounding level, even with steps of %g and %g "
                       "(the logits hardly depend on this layer here; try real images, or a "
                       "larger --eps)\n", n, K, eps * 10.0, eps * 100.0);
            else {
                printf("gradient  %d images x %d directions (%zu above the rounding level), steps "
                       "%g and %g", n, K, nr, eps, 10.0 * eps);
                if (max_step > 10.0 * eps)
                    printf(" (and %g where the logits moved too little)", max_step);
                printf(": median relative error %.2e, worst %.2e (%s: %.6g by finite "
                       "differences, %.6g from the gradient); ", med, worst_rel,
                       ids[worst_img], worst_fd, worst_an);
                if (quantized)
                    printf("not checked: the layers after this one quantize (QuantizeLinear and "
                           "DequantizeLinear), so the logits move in steps, and the gradient "
                           "passes straight through the rounding, as PyTorch's fake "
                           "quantization's does\n");
                else
                    printf("tolerance %g on the median: %s\n", grad_tol, ok_grad ? "ok" : "FAILED");
            }
            if (bypassed)
                printf("          (a residual connection goes around this layer: its gradient, "
                       "and a CAM there, hold the paths around it fixed)\n");
            if (!on_cpu)
                printf("device    against the CPU: logits within %.2e of the largest, top-1 the "
                       "same for %d of %d, gradient cosine %.6f at the least: %s\n",
                       dev_logit, dev_cls, n, dev_cos, ok_dev ? "ok" : "FAILED");
            printf("\n");
        }
        printf("%s%s\n", ok ? "check passed" : "check FAILED",
               grad_checked ? "" : " (the gradient not checked)");
    }
    rc = ok ? EXIT_ALL_OK : EXIT_SOME_FAILED;
done:
    free(ref_soft);
    egc_session_destroy(s);
    egc_session_destroy(sc);
    egc_tensor_free(&rt);
    free_ids(ids, n);
    free(x);
    free(xb);
    free(l0);
    free(logits);
    free(seedbuf);
    free(G);
    free(A);
    free(off);
    free(cls);
    free(clsc);
    free(rel);
    free(fdv);
    free(anv);
    free(stepv);
    free(lc);
    free(gc);
    egc_model_destroy(m);
    return rc;
}

/* cmd_classify.c: `egcam classify`: top-K classes for images, folders and .npy tensors. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
        "usage: egcam classify --model M.onnx [options] INPUTS...\n"
        "\n"
        "Runs the model on every input and prints its top classes. INPUTS are image files\n"
        "(JPEG, PNG, BMP), folders (their images and .npy files, sorted by name) or .npy\n"
        "float32 tensors of shape (N,C,H,W) or (C,H,W), already preprocessed (C: 3, or 1 for\n"
        "a model of gray images).\n"
        "\n"
        "options:\n"
        "  --model M.onnx      the classifier (required)\n"
        "  --preset P          tf | torchvision | cifar[:mean=..:std=..:bgr] (default: cifar for 32x32\n"
        "                      inputs, else torchvision); see `egcam classify --help-presets`\n"
        "  --input-size HxW    the image size a model exported with dynamic H and W runs at\n"
        "                      (its input's symbolic axes; default: the file's)\n"
        "  --labels FILE       class names, one per line (default: imagenet_classes.txt or\n"
        "                      cifar10_classes.txt beside the model when the count fits)\n"
        "  --top K             how many classes to show (default 5)\n"
        "  --json              one JSON line per input:\n"
        "                      {\"image\": ..., \"top\": [{\"class\", \"label\", \"logit\", \"prob\"}...]}\n"
        "  --device D          cpu | cuda | cuda:N (default cpu; `egcam info` lists devices)\n"
        "  --batch B           images per forward pass (default 16)\n"
        "  --max-memory SIZE   cap on the device memory of the model (e.g. 2G, 1.5GiB, 512Mi;\n"
        "                      K/M/G are powers of 1000, Ki/Mi/Gi of 1024): a batch that\n"
        "                      does not fit runs in smaller passes (--verbose says how)\n"
        "  --precision P       fp32 | mixed (default fp32; mixed: fp16 tensor-core\n"
        "                      convolutions on CUDA, fp32 everywhere on the CPU); with\n"
        "                      EGC_VERBOSE=1 in the environment, how each layer runs\n"
        "                      (precision, layout, algorithm) goes to stderr\n"
        "  -q, --quiet         no progress on stderr\n"
        "  -v, --verbose       full error traces; how a batch was split to fit the memory\n"
        "  -h, --help          this text\n"
        "  --help-presets      what each preset does to an image\n"
        "\n"
        "exit codes: 0 every input classified, 1 some inputs failed (reported, the run went\n"
        "            on), 2 usage error, 3 model or device error\n"
        "\n"
        "examples:\n"
        "  egcam classify --model ../shared/models/mobilenet_v2_imagenet.onnx --preset tf \\\n"
        "      --top 3 ../shared/data/photos\n"
        "  egcam classify --model ../shared/models/resnet20_cifar10.onnx --json \\\n"
        "      ../shared/data/cifar10-test/cat > cats.jsonl\n");
}

static void help_presets(FILE *f)
{
    fprintf(f,
        "presets (input size H x W comes from the model):\n"
        "  tf           central crop of 87.5%% of each side, bilinear resize to HxW,\n"
        "               x = (p - 128) / 128  (TensorFlow-hosted MobileNets)\n"
        "  torchvision  resize the short side to round(H*256/224), centre crop HxW,\n"
        "               x = (p/255 - mean) / std with ImageNet mean/std (torchvision models)\n"
        "  cifar        no resize for HxW images (else bilinear), ImageNet mean/std\n"
        "               (also called resize)\n"
        "Resizing is PIL's bilinear (antialiased when shrinking), bit for bit.\n"
        "A normalisation of your own: a preset's geometry followed by any of\n"
        "  :mean=M      M: three values a,b,c (or one for all), decimals or fractions a/b\n"
        "  :std=S       x = (p/255 - M) / S per channel of the tensor (M = 0 or S = 1 when\n"
        "               only the other is given)\n"
        "  :bgr         the tensor's channels in BGR order (M and S then in that order too;\n"
        "               without M and S, the preset's own normalisation)\n"
        "e.g. torchvision:mean=0.5:std=0.5 (timm's Inception-style models),\n"
        "     resize:mean=0:std=1/255 (pixels 0..255 as they are),\n"
        "     resize:bgr:mean=103.939/255,116.779/255,123.68/255:std=1/255 (Keras' caffe mode).\n"
        "The manifest of egcam explain records a preset of your own in that form.\n");
}

typedef struct pending {
    int item;
} pending;

static void print_result(FILE *out, const cli_item *it, const float *logits, int classes,
                         int top, char **labels, int json)
{
    float mx = -INFINITY;
    for (int c = 0; c < classes; c++) mx = logits[c] > mx ? logits[c] : mx;
    double sum = 0;
    for (int c = 0; c < classes; c++) sum += exp((double)logits[c] - mx);
    int idx[64];
    if (top > classes) top = classes;
    if (top > 64) top = 64;
    for (int k = 0; k < top; k++) {
        int best = -1;
        for (int c = 0; c < classes; c++) {
            int used = 0;
            for (int j = 0; j < k; j++) used |= idx[j] == c;
            if (!used && (best < 0 || logits[c] > logits[best])) best = c;
        }
        idx[k] = best;
    }
    if (json) {
        fprintf(out, "{\"image\": ");
        cli_json_str(out, it->id);
        fprintf(out, ", \"top\": [");
        for (int k = 0; k < top; k++) {
            int c = idx[k];
            fprintf(out, "%s{\"class\": %d, \"label\": ", k ? ", " : "", c);
            cli_json_str(out, labels && labels[c] ? labels[c] : "");
            fprintf(out, ", \"logit\": %.6g, \"prob\": %.6g}", (double)logits[c],
                    exp((double)logits[c] - mx) / sum);
        }
        fprintf(out, "]}\n");
    } else {
        fprintf(out, "%s\n", it->id);
        for (int k = 0; k < top; k++) {
            int c = idx[k];
            fprintf(out, "  %5.1f%%  %4d  %s\n", 100.0 * exp((double)logits[c] - mx) / sum, c,
                    labels && labels[c] ? labels[c] : "");
        }
    }
}

int cmd_classify(int argc, char **argv)
{
    const char *model_path = NULL, *preset_name = NULL, *labels_path = NULL, *device = "cpu";
    int top = 5, json = 0, batch = 16, quiet = 0, verbose = 0;
    egc_session_options sopt;
    egc_session_options_default(&sopt);
    int in_h = 0, in_w = 0; /* --input-size */
    enum { O_MODEL = 256, O_PRESET, O_LABELS, O_TOP, O_JSON, O_DEVICE, O_BATCH, O_HP, O_PREC,
           O_MAXMEM, O_INSIZE };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},   {"preset", required_argument, 0, O_PRESET},
        {"labels", required_argument, 0, O_LABELS}, {"top", required_argument, 0, O_TOP},
        {"json", no_argument, 0, O_JSON},           {"device", required_argument, 0, O_DEVICE},
        {"batch", required_argument, 0, O_BATCH},   {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},           {"help", no_argument, 0, 'h'},
        {"help-presets", no_argument, 0, O_HP},     {"precision", required_argument, 0, O_PREC},
        {"max-memory", required_argument, 0, O_MAXMEM},
        {"input-size", required_argument, 0, O_INSIZE},
        {0, 0, 0, 0}};
    int c;
    long lv;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qvh", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model_path = optarg; break;
        case O_PRESET: preset_name = optarg; break;
        case O_INSIZE:
            if (!cli_parse_hw("classify", "input-size", optarg, &in_h, &in_w)) return EXIT_USAGE;
            break;
        case O_LABELS: labels_path = optarg; break;
        case O_TOP:
            if (!cli_parse_long("classify", "--top", optarg, 1, 1000, &lv)) return EXIT_USAGE;
            top = (int)lv;
            break;
        case O_JSON: json = 1; break;
        case O_DEVICE: device = optarg; break;
        case O_BATCH:
            if (!cli_parse_long("classify", "--batch", optarg, 1, 4096, &lv)) return EXIT_USAGE;
            batch = (int)lv;
            break;
        case O_PREC:
            if (!cli_parse_precision("classify", optarg, &sopt.precision)) return EXIT_USAGE;
            break;
        case O_MAXMEM:
            if (!cli_parse_size("classify", "--max-memory", optarg, &sopt.max_device_bytes))
                return EXIT_USAGE;
            break;
        case 'q': quiet = 1; break;
        case 'v': verbose = 1; break;
        case 'h': help(stdout); return EXIT_ALL_OK;
        case O_HP: help_presets(stdout); return EXIT_ALL_OK;
        default: return cli_bad_option("classify", argc, argv, c);
        }
    }
    if (!model_path) {
        fprintf(stderr, "egcam classify: --model is required (see `egcam classify --help`)\n");
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "egcam classify: no inputs given (image files, folders or .npy files)\n");
        return EXIT_USAGE;
    }
    egc_model *m = NULL;
    egc_status lst = egc_model_load_sized(model_path, in_h, in_w, &m);
    if (lst != EGC_OK) {
        cli_model_error(model_path, lst, verbose);
        return EXIT_MODEL;
    }
    egc_preset preset;
    if (!preset_name) preset_name = cli_default_preset(m);
    if (!cli_parse_preset("classify", preset_name, &preset)) {
        egc_model_destroy(m);
        return EXIT_USAGE;
    }
    int ch, h, w, classes = egc_model_num_classes(m);
    egc_model_input_chw(m, &ch, &h, &w);
    if (ch != 3 && ch != 1) {
        fprintf(stderr, "egcam classify: %s takes %d channels; egcam handles RGB (3) and gray "
                "(1) images\n", model_path, ch);
        egc_model_destroy(m);
        return EXIT_MODEL;
    }
    cli_items items;
    int n_bad = 0;
    cli_expand_inputs(argv + optind, argc - optind, &items, &n_bad);
    if (items.n < batch) batch = items.n > 0 ? items.n : 1;
    egc_session *s = NULL;
    egc_status sst = egc_session_create_ex(m, device, batch, -1, &sopt, &s);
    if (sst != EGC_OK) {
        cli_error(device, verbose);
        if (sst == EGC_E_ARG || sst == EGC_E_DEVICE || sst == EGC_E_UNSUPPORTED)
            fprintf(stderr, "egcam classify: `egcam info` lists the devices; --device cpu "
                            "always works\n");
        cli_items_free(&items);
        egc_model_destroy(m);
        return sst == EGC_E_ARG ? EXIT_USAGE : EXIT_MODEL;
    }
    if (verbose && egc_session_chunk(s) < batch) {
        char desc[256]; /* its first line says how the batch was split */
        egc_session_describe(s, desc, sizeof desc);
        desc[strcspn(desc, "\n")] = '\0';
        fprintf(stderr, "egcam classify: %s\n", desc);
    }
    char **labels = cli_load_labels(labels_path, model_path, classes);
    size_t per = (size_t)ch * (size_t)h * (size_t)w;
    float *x = NULL; /* page-locked for a CUDA device: uploads at the bus's full speed */
    {
        void *hp = NULL;
        if (egc_host_alloc(device, (size_t)batch * per * sizeof(float), &hp) == EGC_OK) x = hp;
    }
    float *logits = malloc((size_t)batch * (size_t)classes * sizeof(float));
    int *slot = malloc((size_t)batch * sizeof(int));
    egc_status *ldst = calloc((size_t)batch, sizeof *ldst);
    char **lerr = calloc((size_t)batch, sizeof *lerr);
    if (!x || !logits || !slot || !ldst || !lerr) {
        fprintf(stderr, "egcam classify: out of memory\n");
        return EXIT_MODEL;
    }
    cli_progress pr;
    cli_progress_start(&pr, "classify", items.n, quiet);
    int rc = n_bad ? EXIT_SOME_FAILED : EXIT_ALL_OK;
    int described = 0;
    for (int i = 0; i < items.n;) {
        /* the next batch decoded on all threads; failures reported in input order, the rest
         * packed to the front */
        int k_in = items.n - i < batch ? items.n - i : batch, nb = 0;
        cli_load_rows(items.v + i, k_in, preset, ch, w, h, x, NULL, ldst, lerr);
        for (int t = 0; t < k_in; t++, i++) {
            if (ldst[t] != EGC_OK) {
                cli_restore_error(lerr[t]);
                cli_error(items.v[i].id, verbose);
                if (json) {
                    printf("{\"image\": ");
                    cli_json_str(stdout, items.v[i].id);
                    printf(", \"error\": ");
                    cli_json_str(stdout, egc_last_error());
                    printf("}\n");
                }
                rc = EXIT_SOME_FAILED;
                cli_progress_step(&pr, 1);
            } else {
                if (nb != t) memcpy(x + (size_t)nb * per, x + (size_t)t * per, per * sizeof(float));
                slot[nb++] = i;
            }
            free(lerr[t]);
            lerr[t] = NULL;
        }
        if (!nb) continue;
        if (egc_session_forward(s, x, nb, logits) != EGC_OK) {
            cli_error("forward", verbose);
            rc = EXIT_MODEL;
            break;
        }
        const char *ev = getenv("EGC_VERBOSE");
        if (!described && ev && !strcmp(ev, "1")) { /* after the first forward */
            described = 1;
            char *desc = malloc((size_t)1 << 16);
            if (desc) {
                egc_session_describe(s, desc, (size_t)1 << 16);
                fprintf(stderr, "%s", desc);
                free(desc);
            }
        }
        for (int k = 0; k < nb; k++)
            print_result(stdout, &items.v[slot[k]], logits + (size_t)k * classes, classes, top,
                         labels, json);
        fflush(stdout);
        cli_progress_step(&pr, nb);
    }
    cli_progress_end(&pr);
    egc_host_free(x);
    free(ldst);
    free(lerr);
    free(logits);
    free(slot);
    cli_free_labels(labels, classes);
    cli_items_free(&items);
    egc_session_destroy(s);
    egc_model_destroy(m);
    return rc;
}

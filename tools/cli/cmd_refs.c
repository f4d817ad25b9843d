/* cmd_refs.c: `egcam refs build`: turns a folder of images into a reference file, an
 * (N,C,H,W) float32 .npy of preprocessed images, for `egcam explain --baselines FILE.npy`. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
        "usage: egcam refs build (--model M.onnx | --size HxW) [--preset P] --out REFS.npy\n"
        "                        INPUTS...\n"
        "\n"
        "Preprocesses every image of INPUTS (files or folders, sorted by name) with the preset\n"
        "and writes them as one (N,C,H,W) float32 .npy (C: the model's, 3 or 1 for gray; 3\n"
        "with --size): the reference set of Expected Grad-CAM\n"
        "(`egcam explain --baselines REFS.npy`). Images that fail to load are reported and\n"
        "skipped. .npy inputs of the right size are taken as already preprocessed.\n"
        "\n"
        "options:\n"
        "  --model M.onnx   take H x W from the model's input\n"
        "  --size HxW       or give it (e.g. 224x224)\n"
        "  --input-size HxW with --model: the size a model exported with dynamic H and W\n"
        "                   runs at\n"
        "  --preset P       tf | torchvision | cifar[:mean=..:std=..:bgr] (default: cifar for\n"
        "                   32x32, else torchvision; see `egcam classify --help-presets`)\n"
        "  --out REFS.npy   the reference file to write (required)\n"
        "  -q, --quiet      no progress on stderr\n"
        "  -v, --verbose    full error traces\n"
        "  -h, --help       this text\n"
        "\n"
        "exit codes: 0 every image written, 1 some images failed (skipped) or none loaded,\n"
        "            2 usage error or unwritable --out, 3 the model cannot be loaded\n"
        "\n"
        "example:\n"
        "  egcam refs build --model ../shared/models/mobilenet_v2_imagenet.onnx --preset tf \\\n"
        "      --out refs.npy ../shared/data/imagenet-sample\n");
}

static int refs_build(int argc, char **argv)
{
    const char *model_path = NULL, *size = NULL, *preset_name = NULL, *out = NULL;
    int quiet = 0, verbose = 0;
    int in_h = 0, in_w = 0; /* --input-size */
    enum { O_MODEL = 256, O_SIZE, O_PRESET, O_OUT, O_INSIZE };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL}, {"size", required_argument, 0, O_SIZE},
        {"input-size", required_argument, 0, O_INSIZE},
        {"preset", required_argument, 0, O_PRESET}, {"out", required_argument, 0, O_OUT},
        {"quiet", no_argument, 0, 'q'},           {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qvh", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model_path = optarg; break;
        case O_SIZE: size = optarg; break;
        case O_INSIZE:
            if (!cli_parse_hw("refs build", "input-size", optarg, &in_h, &in_w)) return EXIT_USAGE;
            break;
        case O_PRESET: preset_name = optarg; break;
        case O_OUT: out = optarg; break;
        case 'q': quiet = 1; break;
        case 'v': verbose = 1; break;
        case 'h': help(stdout); return EXIT_ALL_OK;
        default: return cli_bad_option("refs build", argc, argv, c);
        }
    }
    if (in_h && !model_path) {
        fprintf(stderr, "egcam refs build: --input-size goes with --model (with --size, the "
                        "size is that one)\n");
        return EXIT_USAGE;
    }
    if (!out || (!model_path && !size) || (model_path && size)) {
        fprintf(stderr, "egcam refs build: --out and one of --model or --size are required "
                        "(see `egcam refs build --help`)\n");
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "egcam refs build: no inputs given (image files or folders)\n");
        return EXIT_USAGE;
    }
    int H = 0, W = 0, C = 3; /* --size: RGB */
    if (size) {
        if (!cli_parse_hw("refs build", "size", size, &H, &W)) return EXIT_USAGE;
    } else {
        egc_model *m = NULL;
        egc_status lst = egc_model_load_sized(model_path, in_h, in_w, &m);
        if (lst != EGC_OK) {
            cli_model_error(model_path, lst, verbose);
            return EXIT_MODEL;
        }
        egc_model_input_chw(m, &C, &H, &W);
        if (!preset_name) preset_name = cli_default_preset(m);
        egc_model_destroy(m);
        if (C != 3 && C != 1) {
            fprintf(stderr, "egcam refs build: %s takes %d channels; egcam makes RGB (3) and "
                    "gray (1) images\n", model_path, C);
            return EXIT_MODEL;
        }
    }
    if (!preset_name) preset_name = (H == 32 && W == 32) ? "cifar" : "torchvision";
    egc_preset preset;
    if (!cli_parse_preset("refs build", preset_name, &preset)) return EXIT_USAGE;
    cli_items items;
    int n_bad = 0;
    cli_expand_inputs(argv + optind, argc - optind, &items, &n_bad);
    size_t per = (size_t)C * (size_t)H * (size_t)W;
    float *all = malloc((size_t)(items.n ? items.n : 1) * per * sizeof(float));
    if (!all) {
        fprintf(stderr, "egcam refs build: out of memory for %d images of %dx%d\n", items.n, H, W);
        cli_items_free(&items);
        return EXIT_MODEL;
    }
    cli_progress pr;
    cli_progress_start(&pr, "refs", items.n, quiet);
    int n = 0;
    for (int i = 0; i < items.n; i++) {
        if (cli_load_item(&items.v[i], preset, C, W, H, all + (size_t)n * per, NULL, NULL,
                          NULL) != EGC_OK) {
            cli_error(items.v[i].id, verbose);
            n_bad++;
        } else {
            n++;
        }
        cli_progress_step(&pr, 1);
    }
    cli_progress_end(&pr);
    int rc = n_bad ? EXIT_SOME_FAILED : EXIT_ALL_OK;
    if (!n) {
        fprintf(stderr, "egcam refs build: no image could be loaded; %s not written\n", out);
        rc = EXIT_SOME_FAILED;
    } else {
        egc_tensor t;
        int64_t dims[4] = {n, C, H, W};
        t.shape = egc_shape_make(4, dims);
        t.data = all;
        if (egc_npy_write(out, &t) != EGC_OK) {
            cli_error(out, verbose);
            rc = EXIT_USAGE;
        } else if (!quiet) {
            fprintf(stderr, "egcam refs build: wrote %d reference images (%s, %dx%d) to %s\n", n,
                    egc_preset_name(preset), H, W, out);
        }
    }
    free(all);
    cli_items_free(&items);
    return rc;
}

int cmd_refs(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "build")) return refs_build(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        help(stdout);
        return EXIT_ALL_OK;
    }
    fprintf(stderr, "egcam refs: expected the subcommand 'build'%s%s%s (see `egcam refs build "
                    "--help`)\n", argc >= 2 ? ", got '" : "", argc >= 2 ? argv[1] : "",
            argc >= 2 ? "'" : "");
    return EXIT_USAGE;
}

/* main.c: the egcam command line: dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "blas_core.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
        "egcam %s: explain image classifiers with Grad-CAM-family saliency maps\n"
        "\n"
        "usage: egcam COMMAND [options] ...\n"
        "\n"
        "commands:\n"
        "  info       list a model's layers, shapes and CAM target candidates; list devices\n"
        "  classify   run a model on images, folders or .npy tensors and print the top classes\n"
        "  explain    saliency maps (Grad-CAM family, Expected Grad-CAM) as .npy + manifest\n"
        "             with coloured overlays (PNG/JPEG) and an HTML gallery (--gallery)\n"
        "  refs       `refs build`: a reference file of preprocessed images for --baselines\n"
        "  sweep      evaluation sweeps: methods x metrics over images; CSV, JSON, report\n"
        "  check      does egcam compute a model as it should? logits against a reference,\n"
        "             the target-layer gradient against finite differences, GPU against CPU\n"
        "\n"
        "Run `egcam COMMAND --help` for the options of a command.\n"
        "Every command takes -q/--quiet (no progress), -v/--verbose (full error traces) and\n"
        "-h/--help. docs/USER_GUIDE.md explains the methods, options and outputs.\n"
        "\n"
        "examples:\n"
        "  egcam info ../shared/models/mobilenet_v2_imagenet.onnx\n"
        "  egcam classify --model ../shared/models/mobilenet_v2_imagenet.onnx --preset tf \\\n"
        "      ../shared/data/photos\n"
        "  egcam explain --model ../shared/models/mobilenet_v2_imagenet.onnx --preset tf \\\n"
        "      --method gradcam,expected-gradcam --samples 16 --gallery --out out/example \\\n"
        "      ../shared/data/photos\n"
        "  egcam refs build --model ../shared/models/mobilenet_v2_imagenet.onnx --preset tf \\\n"
        "      --out refs.npy ../shared/data/imagenet-sample\n"
        "\n"
        "exit codes: 0 all inputs done, 1 some inputs failed (recorded, the run went on),\n"
        "            2 usage error, 3 model or device error\n",
        EGC_VERSION);
}

int main(int argc, char **argv)
{
    egc_blas_core_fix(argv); /* the CPU's own BLAS kernels (blas_core.h) */
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_ALL_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("egcam %s\n", EGC_VERSION);
        return EXIT_ALL_OK;
    }
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "classify")) return cmd_classify(argc - 1, argv + 1);
    if (!strcmp(cmd, "explain")) return cmd_explain(argc - 1, argv + 1);
    if (!strcmp(cmd, "refs")) return cmd_refs(argc - 1, argv + 1);
    if (!strcmp(cmd, "sweep")) return cmd_sweep(argc - 1, argv + 1);
    if (!strcmp(cmd, "check")) return cmd_check(argc - 1, argv + 1);
    fprintf(stderr, "egcam: unknown command '%s' (try `egcam --help`)\n", cmd);
    return EXIT_USAGE;
}

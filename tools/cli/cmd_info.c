/* cmd_info.c: `egcam info [MODEL]`: layers with shapes, CAM target candidates, devices. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
        "usage: egcam info [--json] [MODEL.onnx]\n"
        "\n"
        "Without a model: lists the compute devices (cpu, cuda:N).\n"
        "With a model: prints its input, output and every layer (tensor name, op, shape at\n"
        "batch 1). Layers marked * are CAM target candidates (4-D, spatial size > 1); the one\n"
        "marked auto is what `--layer auto` picks.\n"
        "\n"
        "options:\n"
        "  --json     one JSON object per layer instead of the table\n"
        "  -h, --help this text\n"
        "\n"
        "example:\n"
        "  egcam info ../shared/models/resnet20_cifar10.onnx\n");
}

int cmd_info(int argc, char **argv)
{
    int json = 0;
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'j') json = 1;
        else if (c == 'h') {
            help(stdout);
            return EXIT_ALL_OK;
        } else {
            help(stderr);
            return EXIT_USAGE;
        }
    }
    char devs[2048];
    egc_backend_list_devices(devs, sizeof devs);
    if (optind >= argc) {
        printf("%s", devs);
        return EXIT_ALL_OK;
    }
    const char *path = argv[optind];
    egc_model *m = NULL;
    if (egc_model_load(path, &m) != EGC_OK) {
        cli_error(path, 0);
        return EXIT_MODEL;
    }
    int ch, h, w, n = egc_model_num_layers(m);
    egc_model_input_chw(m, &ch, &h, &w);
    if (!json) {
        printf("model   %s\ninput   [N,%d,%d,%d]\nclasses %d\nlayers  %d\n\n", path, ch, h, w,
               egc_model_num_classes(m), n);
        printf("  %-4s %-20s %-18s %s\n", "#", "op", "shape", "tensor");
    }
    for (int i = 0; i < n; i++) {
        egc_layer_info li;
        if (egc_model_layer(m, i, &li) != EGC_OK) continue;
        char sb[96];
        egc_shape_str(&li.shape, sb, sizeof sb);
        if (json) {
            printf("{\"index\": %d, \"tensor\": ", i);
            cli_json_str(stdout, li.name);
            printf(", \"node\": ");
            cli_json_str(stdout, li.node);
            printf(", \"op\": \"%s\", \"shape\": %s, \"candidate\": %s, \"auto\": %s}\n", li.op, sb,
                   li.is_candidate ? "true" : "false", li.is_auto ? "true" : "false");
        } else {
            printf("%s %-4d %-20s %-18s %s%s\n", li.is_candidate ? "*" : " ", i, li.op, sb,
                   li.name, li.is_auto ? "   <- auto" : "");
        }
    }
    if (!json) printf("\n%s", devs);
    egc_model_destroy(m);
    return EXIT_ALL_OK;
}

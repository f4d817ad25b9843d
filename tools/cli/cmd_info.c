/* cmd_info.c: `egcam info [MODEL]`: layers with shapes, CAM target candidates, devices. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
        "usage: egcam info [options] [MODEL.onnx]\n"
        "\n"
        "Without a model: lists the compute devices (cpu, cuda:N) and why CUDA is unavailable\n"
        "when it is. With a model: prints its input, output and every layer (tensor name, op,\n"
        "shape at batch 1). Layers marked * are CAM target candidates (4-D, spatial size > 1;\n"
        "`channels last`: [N,H,W,C], which a CAM reads as its transpose [N,C,H,W]; or a\n"
        "vision transformer's token layer, `tokens: P + HxW`: P class tokens, then the\n"
        "patches, which a CAM reads as an HxW image); the one marked auto is what `--layer\n"
        "auto` picks. Any tensor name of the list can be given to `egcam explain --layer`.\n"
        "\n"
        "options:\n"
        "  --json          one JSON object per layer instead of the table\n"
        "  --input-size HxW  the image size a model exported with dynamic H and W runs at\n"
        "                  (its input's symbolic axes; default: the file's)\n"
        "  -q, --quiet     only the layers (no device list)\n"
        "  -v, --verbose   full error traces\n"
        "  -h, --help      this text\n"
        "\n"
        "exit codes: 0 done, 2 usage error, 3 the model cannot be loaded (missing, corrupt or\n"
        "            unsupported: the message names the node and operator)\n"
        "\n"
        "examples:\n"
        "  egcam info\n"
        "  egcam info ../shared/models/resnet20_cifar10.onnx\n"
        "  egcam info --json ../shared/models/mobilenet_v2_imagenet.onnx | grep '\"auto\": true'\n");
}

/* The top-level modules of a PyTorch export (node names "/layer4/...") whose output is a CAM
 * candidate, i.e. those --layer takes by name (egc_model_find_layer decides): one line,
 * nothing for other exports. */
static void print_modules(egc_model *m, int n)
{
    char line[1024] = "";
    size_t len = 0;
    int count = 0;
    for (int i = 0; i < n; i++) {
        egc_layer_info li;
        if (egc_model_layer(m, i, &li) != EGC_OK || !li.node || li.node[0] != '/') continue;
        const char *e = strchr(li.node + 1, '/');
        size_t k = e ? (size_t)(e - li.node - 1) : 0;
        char mod[128];
        if (k == 0 || k >= sizeof mod) continue;
        memcpy(mod, li.node + 1, k);
        mod[k] = '\0';
        int seen = 0; /* each module once, at its first layer */
        for (int j = 0; j < i && !seen; j++) {
            egc_layer_info lj;
            seen = egc_model_layer(m, j, &lj) == EGC_OK && lj.node && lj.node[0] == '/' &&
                   !strncmp(lj.node + 1, mod, k) && lj.node[k + 1] == '/';
        }
        int layer;
        if (seen || egc_model_find_layer(m, mod, &layer) != EGC_OK) continue;
        egc_str_append(line, sizeof line, &len, "%s%s", count++ ? ", " : "", mod);
    }
    egc_clear_error(); /* the modules that are no target */
    if (count)
        printf("\nmodules of this PyTorch export that --layer takes by name (paths inside them "
               "too, e.g. layer4.2): %s\n", line);
}

int cmd_info(int argc, char **argv)
{
    int json = 0, quiet = 0, verbose = 0, in_h = 0, in_w = 0;
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"input-size", required_argument, 0, 'S'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"verbose", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'S':
            if (!cli_parse_hw("info", "input-size", optarg, &in_h, &in_w)) return EXIT_USAGE;
            break;
        case 'q': quiet = 1; break;
        case 'v': verbose = 1; break;
        case 'h': help(stdout); return EXIT_ALL_OK;
        default: return cli_bad_option("info", argc, argv, c);
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "egcam info: one model at a time (got %d; see `egcam info --help`)\n",
                argc - optind);
        return EXIT_USAGE;
    }
    char devs[2048];
    egc_backend_list_devices(devs, sizeof devs);
    if (optind >= argc) {
        printf("%s", devs);
        return EXIT_ALL_OK;
    }
    const char *path = argv[optind];
    egc_model *m = NULL;
    egc_status lst = egc_model_load_sized(path, in_h, in_w, &m);
    if (lst != EGC_OK) {
        cli_model_error(path, lst, verbose);
        return EXIT_MODEL;
    }
    int ch, h, w, n = egc_model_num_layers(m);
    egc_model_input_chw(m, &ch, &h, &w);
    if (!json) {
        printf("model   %s\ninput   [N,%d,%d,%d]", path, ch, h, w);
        if (egc_model_input_channels_last(m))
            printf(" (the file's input is channels last, [N,%d,%d,%d]: egcam transposes to it)", h,
                   w, ch);
        printf("\nclasses %d", egc_model_num_classes(m));
        if (egc_model_output_softmax_removed(m))
            printf(" (the file's output is a %s: egcam takes its input as the logits)",
                   egc_model_output_softmax_removed(m) == 2 ? "LogSoftmax" : "Softmax");
        printf("\nlayers  %d\n", n);
        const int nq = egc_model_quantized_pairs(m, -1);
        if (nq)
            printf("quantized %d QuantizeLinear / DequantizeLinear pair%s on activations (rounded "
                   "as the model computes; gradients straight through where not clamped)\n", nq,
                   nq == 1 ? "" : "s");
        if (egc_model_one_image_per_pass(m))
            printf("passes  one image each (the model moves or merges the batch axis)\n");
        printf("\n");
        printf("  %-4s %-20s %-18s %s\n", "#", "op", "shape", "tensor");
    }
    for (int i = 0; i < n; i++) {
        egc_layer_info li;
        if (egc_model_layer(m, i, &li) != EGC_OK) continue;
        char sb[96];
        egc_shape_str(&li.shape, sb, sizeof sb);
        int pre = 0, gh = 0, gw = 0;
        const int tok = egc_model_layer_tokens(m, i, &pre, &gh, &gw);
        const int last = egc_model_layer_channels_last(m, i);
        if (json) {
            printf("{\"index\": %d, \"tensor\": ", i);
            cli_json_str(stdout, li.name);
            printf(", \"node\": ");
            cli_json_str(stdout, li.node);
            printf(", \"op\": \"%s\", \"shape\": %s, \"candidate\": %s, \"auto\": %s", li.op, sb,
                   li.is_candidate ? "true" : "false", li.is_auto ? "true" : "false");
            if (tok) printf(", \"tokens\": {\"prefix\": %d, \"grid\": [%d, %d]}", pre, gh, gw);
            if (last) printf(", \"channels_last\": true");
            printf("}\n");
        } else {
            char tb[64] = "";
            if (tok) snprintf(tb, sizeof tb, "   (tokens: %d + %dx%d)", pre, gh, gw);
            if (last) snprintf(tb, sizeof tb, "   (channels last)");
            printf("%s %-4d %-20s %-18s %s%s%s\n", li.is_candidate ? "*" : " ", i, li.op, sb,
                   li.name, tb, li.is_auto ? "   <- auto" : "");
        }
    }
    if (!json) print_modules(m, n);
    if (!json && !quiet) printf("\n%s", devs);
    egc_model_destroy(m);
    return EXIT_ALL_OK;
}

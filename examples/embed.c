/* embed.c: the smallest program that embeds egcam: loads an ONNX classifier, explains one
 * image with Grad-CAM through the public API (include/egcam/explain.h), and writes the map
 * as a .npy file and as a coloured overlay PNG.
 *
 *   embed_example MODEL.onnx IMAGE OUT_PREFIX [tf|torchvision|cifar]
 *
 * writes OUT_PREFIX.npy (float32 [H,W] in [0,1]) and OUT_PREFIX.png (the map over the
 * picture the model saw). docs/C_API.md walks through it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egcam/explain.h"
#include "egcam/image.h"
#include "egcam/model.h"

/* Prints the library's message for a failed call and returns 1. */
static int fail(const char *what)
{
    fprintf(stderr, "embed_example: %s: %s\n", what, egc_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: embed_example MODEL.onnx IMAGE OUT_PREFIX [preset]\n");
        return 2;
    }
    const char *model_path = argv[1], *image_path = argv[2], *prefix = argv[3];
    egc_preset preset = EGC_PRESET_TORCHVISION;
    if (argc > 4 && egc_preset_parse(argv[4], &preset) != EGC_OK) return fail("preset");

    int rc = 1;
    egc_model *model = NULL;
    egc_explainer *ex = NULL;
    egc_image photo = {0, 0, NULL}, seen = {0, 0, NULL}, overlay = {0, 0, NULL};
    float *x = NULL, *map = NULL;

    /* 1. The model: input size [3,H,W] from its graph. */
    if (egc_model_load(model_path, &model) != EGC_OK) {
        fail(model_path);
        goto done;
    }
    int c, H, W;
    egc_model_input_chw(model, &c, &H, &W);

    /* 2. An explainer: Grad-CAM at the automatic target layer, on the CPU, one image per
     *    pass. Every buffer is reserved here. */
    egc_explain_options opts;
    egc_explain_options_default(&opts);
    opts.method = EGC_METHOD_GRADCAM;
    opts.preset = preset;
    opts.batch = 1;
    if (egc_explainer_create(model, "cpu", &opts, &ex) != EGC_OK) {
        fail("explainer");
        goto done;
    }

    /* 3. The input: decode, crop/resize as the preset says (seen is what the model sees),
     *    normalise into x[3,H,W]. */
    x = malloc(sizeof(float) * 3 * (size_t)H * (size_t)W);
    map = malloc(sizeof(float) * (size_t)H * (size_t)W);
    if (!x || !map) {
        fprintf(stderr, "embed_example: out of memory\n");
        goto done;
    }
    if (egc_image_load(image_path, &photo) != EGC_OK ||
        egc_preset_geometry(&photo, preset, W, H, &seen) != EGC_OK) {
        fail(image_path);
        goto done;
    }
    egc_preset_normalize(&seen, preset, x);

    /* 4. The map of the top-1 class (classes == NULL), upsampled to H x W in [0,1]. */
    egc_cam_result r;
    memset(&r, 0, sizeof r);
    r.map = map;
    if (egc_explainer_run(ex, x, 1, NULL, &r) != EGC_OK) {
        fail("explain");
        goto done;
    }
    printf("%s: class %d, score %.4f, layer %s\n", image_path, r.cls, (double)r.score,
           egc_explainer_layer(ex));

    /* 5. Outputs: the map as .npy, and an overlay PNG (turbo colours at half opacity). */
    char path[4096];
    int64_t dims[2] = {H, W};
    egc_tensor t;
    t.shape = egc_shape_make(2, dims);
    t.data = map;
    snprintf(path, sizeof path, "%s.npy", prefix);
    if (egc_npy_write(path, &t) != EGC_OK) {
        fail(path);
        goto done;
    }
    snprintf(path, sizeof path, "%s.png", prefix);
    if (egc_overlay(&seen, map, W, H, EGC_CMAP_TURBO, 0.5f, &overlay) != EGC_OK ||
        egc_image_save(path, &overlay, 90) != EGC_OK) {
        fail(path);
        goto done;
    }
    printf("wrote %s.npy and %s.png\n", prefix, prefix);
    rc = 0;

done:
    egc_image_free(&overlay);
    egc_image_free(&seen);
    egc_image_free(&photo);
    free(x);
    free(map);
    egc_explainer_destroy(ex);
    egc_model_destroy(model);
    return rc;
}

/* bench_explain.c: explanation throughput of a model on a backend (images/s), one JSON line
 * per configuration with bench_forward.c's keys: Grad-CAM on a batch of images, and Expected
 * Grad-CAM with S samples per image.
 *
 * usage: bench_explain --model M.onnx [--device cpu|cuda:N] [--methods gradcam,expected-gradcam]
 *                      [--gradcam-batch 64] [--expected-batch 32] [--samples 32]
 *                      [--rows R] [--precision fp32[,mixed]] [--repeats R] [--warmup W]
 *                      [--phases P] [--pinned] [--samples-tol T]
 * One timed run is egc_explainer_run on a batch of host images (deterministic pseudo-random
 * tensors; preprocessing is not timed) up to the final maps on the host: the clean pass,
 * the sampled passes, the reductions and the post-processing. Grad-CAM uses an explainer of
 * batch = gradcam-batch; Expected Grad-CAM (combine A, softmax score, black baseline, noise
 * 0.15, S samples, uniform alpha) one of `rows` rows per pass (default: the number of
 * images), so the images x S sample rows go through the model in chunks of `rows`. The
 * first `warmup` runs are discarded; the median and minimum of `repeats` runs are reported.
 * peak_device_bytes is egc_explainer_device_bytes (the session's weights, arenas and
 * workspaces and the explainer's buffers; runs allocate nothing, so it is the peak).
 * Extra keys: rows_per_pass, layer, pinned, setup_ms (egc_explainer_create), first_ms (the first
 * run: algorithm searches, first-batch timings and CUDA-graph recording happen there).
 * --samples-tol T: Expected Grad-CAM with adaptive sample counts (samples = the most); the
 * line adds samples_tol and mean_samples (of the last run). The inputs are random tensors,
 * so the counts say little about real images (tools/adaptive_study.py measures those).
 * --pinned: the input images and the results' maps live in egc_host_alloc memory
 * (page-locked for a CUDA device), as a caller that loads its batches there would have them
 * (`egcam explain` does); otherwise in ordinary memory.
 * --phases P: after the timed runs, P more runs with egc_explainer_set_profiling on (the
 * device is synchronised at every phase boundary) and one line {"bench": "explain-phases"}
 * with the mean milliseconds per run of each phase (egc_explain_phases). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tools/cli/blas_core.h"
#include "bench_util.h"
#include "egcam/explain.h"
#include "egcam/model.h"

typedef struct bench_cfg {
    const char *model_path, *model_name, *device, *sha;
    int repeats, warmup, phases, pinned;
    float samples_tol; /* Expected Grad-CAM's adaptive sample counts (0: fixed) */
} bench_cfg;

/* The opening keys of a JSON line: {"bench": NAME, ["backend": ...,] "device", "model",
 * "method", "precision" (the caller goes on with ", ..." and closes the object). */
static void json_head(const char *bench, const char *backend, const char *device,
                      const char *model, egc_method method, egc_precision prec)
{
    printf("{\"bench\": ");
    bench_json_str(bench);
    if (backend) {
        printf(", \"backend\": ");
        bench_json_str(backend);
    }
    printf(", \"device\": ");
    bench_json_str(device);
    printf(", \"model\": ");
    bench_json_str(model);
    printf(", \"method\": ");
    bench_json_str(egc_method_name(method));
    printf(", \"precision\": ");
    bench_json_str(egc_precision_name(prec));
}

/* n floats of egc_host_alloc memory (page-locked for a CUDA device with --pinned), or NULL. */
static float *out_buffer(const bench_cfg *b, size_t n)
{
    void *p = NULL;
    if (egc_host_alloc(b->pinned ? b->device : "cpu", n * sizeof(float), &p) != EGC_OK) return NULL;
    return p;
}

/* Times one (method, precision) configuration and prints its JSON line; 0 on success. */
static int run_one(const bench_cfg *b, const egc_model *m, egc_method method, egc_precision prec,
                   int images, int samples, int rows)
{
    egc_explain_options o;
    egc_explain_options_default(&o);
    o.method = method;
    o.precision = prec;
    o.batch = rows;
    if (method == EGC_METHOD_EXPECTED_GRADCAM) {
        o.samples = samples;
        o.score = EGC_SCORE_SOFTMAX;
        o.baselines = EGC_BASELINES_BLACK;
        o.noise = 0.15f;
        o.combine = EGC_COMBINE_A;
        o.samples_tol = b->samples_tol;
    }
    egc_explainer *e = NULL;
    double tc = bench_now(), first_ms = 0.0;
    if (egc_explainer_create(m, b->device, &o, &e) != EGC_OK) {
        fprintf(stderr, "bench_explain: %s %s: %s\n", egc_method_name(method),
                egc_precision_name(prec), egc_last_error());
        return 3;
    }
    const double setup_ms = (bench_now() - tc) * 1e3;
    int c, H, W, h, w;
    egc_model_input_chw(m, &c, &H, &W);
    egc_explainer_geometry(e, &h, &w, NULL, NULL);
    size_t chw = (size_t)c * (size_t)H * (size_t)W;
    float *x = bench_inputs(b->device, b->pinned, (size_t)images * chw);
    /* the results too in page-locked memory with --pinned (the maps are then downloaded
     * straight into them) */
    float *raw = out_buffer(b, (size_t)images * (size_t)h * (size_t)w);
    float *map = out_buffer(b, (size_t)images * (size_t)H * (size_t)W);
    egc_cam_result *res = calloc((size_t)images, sizeof *res);
    double *t = malloc((size_t)b->repeats * sizeof(double));
    int rc = 0;
    if (!x || !raw || !map || !res || !t) {
        fprintf(stderr, "bench_explain: out of host memory\n");
        rc = 3;
    }
    if (rc == 0) {
        for (int i = 0; i < images; i++) {
            res[i].raw = raw + (size_t)i * (size_t)h * (size_t)w;
            res[i].map = map + (size_t)i * (size_t)H * (size_t)W;
        }
    }
    for (int i = 0; i < b->warmup + b->repeats && rc == 0; i++) {
        double t0 = bench_now();
        if (egc_explainer_run(e, x, images, NULL, res) != EGC_OK) {
            fprintf(stderr, "bench_explain: %s: %s\n", egc_method_name(method), egc_last_error());
            rc = 3;
        }
        if (i >= b->warmup) t[i - b->warmup] = bench_now() - t0;
        if (i == 0) first_ms = (bench_now() - t0) * 1e3;
    }
    if (rc == 0) {
        qsort(t, (size_t)b->repeats, sizeof *t, bench_cmp_d);
        double med = t[b->repeats / 2];
        double mean_samples = 0.0;
        for (int i = 0; i < images; i++) mean_samples += res[i].samples;
        mean_samples /= images;
        json_head("explain", b->device, egc_explainer_device(e), b->model_name, method, prec);
        printf(", \"batch\": %d, \"samples\": %d, \"median_ms\": %.3f, \"min_ms\": %.3f, "
               "\"images_per_s\": %.2f, \"peak_device_bytes\": %zu, \"rows_per_pass\": %d, "
               "\"pinned\": %s, \"setup_ms\": %.1f, \"first_ms\": %.1f, \"layer\": ",
               images, method == EGC_METHOD_GRADCAM ? 1 : egc_explainer_samples(e), med * 1e3,
               t[0] * 1e3, images / med, egc_explainer_device_bytes(e), rows,
               b->pinned && egc_host_pinned(x) ? "true" : "false", setup_ms, first_ms);
        bench_json_str(egc_explainer_layer(e));
        if (egc_explainer_options(e)->samples_tol > 0.0f)
            printf(", \"samples_tol\": %g, \"mean_samples\": %.2f",
                   (double)egc_explainer_options(e)->samples_tol, mean_samples);
        bench_json_cuda_env();
        printf(", \"git_sha\": ");
        bench_json_str(b->sha);
        printf("}\n");
        fflush(stdout);
    }
    if (rc == 0 && b->phases > 0) {
        egc_explainer_set_profiling(e, 1);
        for (int i = 0; i < b->phases && rc == 0; i++)
            if (egc_explainer_run(e, x, images, NULL, res) != EGC_OK) rc = 3;
        egc_explain_phases ph;
        egc_explainer_phases(e, &ph);
        egc_explainer_set_profiling(e, 0);
        if (rc == 0 && ph.runs > 0) {
            double k = 1.0 / ph.runs;
            json_head("explain-phases", NULL, egc_explainer_device(e), b->model_name, method,
                      prec);
            printf(", \"batch\": %d, \"rows_per_pass\": %d, \"runs\": %d, \"ms_per_run\": "
                   "{\"scan\": %.3f, \"upload\": %.3f, \"clean\": %.3f, \"perturb\": %.3f, "
                   "\"forward\": %.3f, \"backward\": %.3f, \"reduce\": %.3f, "
                   "\"finalize\": %.3f, \"download\": %.3f}, \"git_sha\": ",
                   images, rows, ph.runs, ph.scan_ms * k, ph.upload_ms * k, ph.clean_ms * k,
                   ph.perturb_ms * k, ph.forward_ms * k, ph.backward_ms * k, ph.reduce_ms * k,
                   ph.finalize_ms * k, ph.download_ms * k);
            bench_json_str(b->sha);
            printf("}\n");
            fflush(stdout);
        } else if (rc) {
            fprintf(stderr, "bench_explain: profiled run: %s\n", egc_last_error());
        }
    }
    egc_host_free(x);
    egc_host_free(raw);
    egc_host_free(map);
    free(res);
    free(t);
    egc_explainer_destroy(e);
    return rc;
}

int main(int argc, char **argv)
{
    egc_blas_core_fix(argv); /* as egcam does (tools/cli/blas_core.h) */
    bench_cfg b = {NULL, NULL, "cpu", NULL, 5, 1, 0, 0, 0.0f};
    const char *methods = "gradcam,expected-gradcam", *precisions = "fp32";
    int gc_batch = 64, ex_batch = 32, samples = 32, rows = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) b.model_path = argv[++i];
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) b.device = argv[++i];
        else if (!strcmp(argv[i], "--methods") && i + 1 < argc) methods = argv[++i];
        else if (!strcmp(argv[i], "--gradcam-batch") && i + 1 < argc) gc_batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--expected-batch") && i + 1 < argc) ex_batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--samples") && i + 1 < argc) samples = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc) rows = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) precisions = argv[++i];
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) b.repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) b.warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--phases") && i + 1 < argc) b.phases = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pinned")) b.pinned = 1;
        else if (!strcmp(argv[i], "--samples-tol") && i + 1 < argc) b.samples_tol = (float)atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_explain --model M.onnx [--device D] [--methods "
                            "gradcam,expected-gradcam] [--gradcam-batch 64] [--expected-batch 32] "
                            "[--samples 32] [--rows R] [--precision fp32[,mixed]] [--repeats R] "
                            "[--warmup W] [--phases P] [--pinned] [--samples-tol T]\n");
            return 2;
        }
    }
    if (!b.model_path || b.repeats < 1 || b.warmup < 0 || gc_batch < 1 || ex_batch < 1 ||
        samples < 1 || rows < 0) {
        fprintf(stderr, "bench_explain: --model is required; counts must be positive\n");
        return 2;
    }
    egc_model *m = NULL;
    if (egc_model_load(b.model_path, &m) != EGC_OK) {
        fprintf(stderr, "bench_explain: %s\n", egc_last_error());
        return 3;
    }
    const char *sha = getenv("EGC_GIT_SHA");
    b.sha = sha ? sha : "unknown";
    const char *name = strrchr(b.model_path, '/');
    b.model_name = name ? name + 1 : b.model_path;
    int rc = 0;
    char mlist[256], plist[64];
    snprintf(mlist, sizeof mlist, "%s", methods);
    for (char *ms = NULL, *mt = strtok_r(mlist, ",", &ms); mt; mt = strtok_r(NULL, ",", &ms)) {
        egc_method method;
        if (egc_method_parse(mt, &method) != EGC_OK ||
            (method != EGC_METHOD_GRADCAM && method != EGC_METHOD_EXPECTED_GRADCAM)) {
            fprintf(stderr, "bench_explain: method '%s': gradcam or expected-gradcam\n", mt);
            rc = 2;
            continue;
        }
        snprintf(plist, sizeof plist, "%s", precisions);
        for (char *ps = NULL, *pt = strtok_r(plist, ",", &ps); pt; pt = strtok_r(NULL, ",", &ps)) {
            egc_precision prec;
            if (egc_precision_parse(pt, &prec) != EGC_OK) {
                fprintf(stderr, "bench_explain: %s\n", egc_last_error());
                rc = 2;
                continue;
            }
            int gc = method == EGC_METHOD_GRADCAM;
            int images = gc ? gc_batch : ex_batch;
            int r = run_one(&b, m, method, prec, images, samples, gc ? images : (rows ? rows : images));
            if (r) rc = r;
        }
    }
    egc_model_destroy(m);
    return rc;
}

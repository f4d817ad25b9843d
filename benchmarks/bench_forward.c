/* bench_forward.c: forward throughput of a model on a backend (images/s), one JSON line per
 * configuration, as PERFORMANCE.md asks.
 *
 * usage: bench_forward --model M.onnx [--device cpu|cuda:N] [--batch B[,B...]]
 *                      [--repeats R] [--warmup W] [--precision fp32|mixed[,...]]
 *                      [--no-graphs] [--pinned]
 * The line's "cuda_env" lists the CUDA backend's switches set in the environment
 * (EGC_CUDA_FUSE, EGC_CUDA_HALF_FUSED, ...), "" when none.
 * --pinned: the input batch lives in egc_host_alloc memory (page-locked for a CUDA device), so
 * its upload is a DMA at the bus's full speed; otherwise in malloc memory.
 * --precision: one line per precision and batch (default fp32); --no-graphs: issue every
 * op call (no CUDA-graph replay; "graphs" is false on the CPU backend, which has none). With EGC_VERBOSE=1 in the environment, how each layer runs
 * (egc_session_describe, after the warm-up) goes to stderr.
 * Inputs are deterministic pseudo-random tensors (preprocessing is not timed). The first
 * `warmup` runs are discarded; median and min of `repeats` timed runs are reported.
 * peak_device_bytes is egc_session_device_bytes (weights, arenas and workspaces the session
 * holds on the device; runs allocate nothing, so it is the peak). setup_ms: the session's
 * creation; first_ms: the first run (algorithm searches, first-batch timings, CUDA-graph
 * recording), what a short job pays before the steady state the median gives. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tools/cli/blas_core.h"
#include "bench_util.h"
#include "egcam/model.h"
#include "egcam/status.h"

int main(int argc, char **argv)
{
    egc_blas_core_fix(argv); /* as egcam does (tools/cli/blas_core.h) */
    const char *model = NULL, *device = "cpu", *batches = "1,16", *precisions = "fp32";
    int repeats = 10, warmup = 2, no_graphs = 0, pinned = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batches = argv[++i];
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) precisions = argv[++i];
        else if (!strcmp(argv[i], "--no-graphs")) no_graphs = 1;
        else if (!strcmp(argv[i], "--pinned")) pinned = 1;
        else {
            fprintf(stderr, "usage: bench_forward --model M.onnx [--device D] [--batch B,...] "
                            "[--repeats R] [--warmup W] [--precision fp32|mixed[,...]] "
                            "[--no-graphs] [--pinned]\n");
            return 2;
        }
    }
    if (!model || repeats < 1) {
        fprintf(stderr, "bench_forward: --model is required\n");
        return 2;
    }
    egc_model *m = NULL;
    if (egc_model_load(model, &m) != EGC_OK) {
        fprintf(stderr, "bench_forward: %s\n", egc_last_error());
        return 3;
    }
    int c, h, w;
    egc_model_input_chw(m, &c, &h, &w);
    const char *sha = getenv("EGC_GIT_SHA");
    const char *name = strrchr(model, '/');
    name = name ? name + 1 : model;
    char plist[128];
    snprintf(plist, sizeof plist, "%s", precisions);
    int rc = 0;
    char *psave = NULL;
    for (char *ptok = strtok_r(plist, ",", &psave); ptok && rc == 0;
         ptok = strtok_r(NULL, ",", &psave)) {
        egc_session_options so;
        egc_session_options_default(&so);
        so.no_graphs = no_graphs;
        if (egc_precision_parse(ptok, &so.precision) != EGC_OK) {
            fprintf(stderr, "bench_forward: %s\n", egc_last_error());
            rc = 2;
            break;
        }
        char list[256];
        snprintf(list, sizeof list, "%s", batches);
        char *bsave = NULL;
        for (char *tok = strtok_r(list, ",", &bsave); tok; tok = strtok_r(NULL, ",", &bsave)) {
            int b = atoi(tok);
            if (b < 1) continue;
            egc_session *s = NULL;
            double tc = bench_now(), setup_ms, first_ms = 0.0;
            if (egc_session_create_ex(m, device, b, -1, &so, &s) != EGC_OK) {
                fprintf(stderr, "bench_forward: %s\n", egc_last_error());
                rc = 3;
                break;
            }
            setup_ms = (bench_now() - tc) * 1e3;
            size_t n = (size_t)b * (size_t)c * (size_t)h * (size_t)w;
            float *x = bench_inputs(device, pinned, n);
            double *t = malloc((size_t)repeats * sizeof(double));
            if (!x || !t) return 3;
            for (int i = 0; i < warmup + repeats && rc == 0; i++) {
                double t0 = bench_now();
                if (egc_session_forward(s, x, b, NULL) != EGC_OK) {
                    fprintf(stderr, "bench_forward: %s\n", egc_last_error());
                    rc = 3;
                }
                if (i >= warmup) t[i - warmup] = bench_now() - t0;
                if (i == 0) first_ms = (bench_now() - t0) * 1e3;
            }
            const char *ev = getenv("EGC_VERBOSE");
            if (rc == 0 && ev && !strcmp(ev, "1")) { /* how each layer ran, after the timed runs */
                char *desc = malloc((size_t)1 << 16);
                if (desc) {
                    egc_session_describe(s, desc, (size_t)1 << 16);
                    fprintf(stderr, "%s", desc);
                    free(desc);
                }
            }
            if (rc == 0) {
                /* CUDA-graph replay exists on the CUDA backend only */
                int graphs = !no_graphs && !strncmp(device, "cuda", 4);
                qsort(t, (size_t)repeats, sizeof *t, bench_cmp_d);
                double med = t[repeats / 2];
                printf("{\"bench\": \"forward\", \"backend\": ");
                bench_json_str(device);
                printf(", \"device\": ");
                bench_json_str(egc_session_device(s));
                printf(", \"model\": ");
                bench_json_str(name);
                printf(", \"method\": \"classify\", \"precision\": \"%s\", \"graphs\": %s, "
                       "\"pinned\": %s, \"batch\": %d, "
                       "\"samples\": 1, \"median_ms\": %.3f, \"min_ms\": %.3f, \"images_per_s\": %.1f, "
                       "\"peak_device_bytes\": %zu, \"setup_ms\": %.1f, \"first_ms\": %.1f, "
                       "\"git_sha\": ",
                       egc_precision_name(so.precision), graphs ? "true" : "false",
                       egc_host_pinned(x) ? "true" : "false", b, med * 1e3,
                       t[0] * 1e3, b / med, egc_session_device_bytes(s), setup_ms, first_ms);
                bench_json_str(sha ? sha : "unknown");
                bench_json_cuda_env();
                printf("}\n");
                fflush(stdout);
            }
            egc_host_free(x);
            free(t);
            egc_session_destroy(s);
        }
    }
    egc_model_destroy(m);
    return rc;
}

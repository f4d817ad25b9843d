/* sweep.h: the state of one `egcam sweep` run shared by cmd_sweep.c (the run) and
 * sweep_report.c (summary, JSON, markdown and HTML report), and small CSV helpers. */
#ifndef EGC_CLI_SWEEP_H
#define EGC_CLI_SWEEP_H

#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "egcam/explain.h"
#include "egcam/metrics.h"

#define SW_N(a) (sizeof(a) / sizeof((a)[0]))
#define EGC_ARRAY_N(a) SW_N(a)
#ifndef EGC_MIN
#define EGC_MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

/* The metrics of a sweep, in report order. SM_SENS_EXCL is written along with the
 * sensitivities: the number of samples left out because their top-1 changed. */
enum {
    SM_DEL, SM_INS, SM_INFID, SM_INFID_G, SM_MAXS, SM_AVGS, SM_SENS_EXCL, SM_PG, SM_PGT, SM_EPG,
    SM_RRA, SM_GRID, SM_SPARSE, SM_COMPLEX, SM_COUNT
};
extern const char *const k_sweep_metric_names[SM_COUNT];
extern const int k_sweep_metric_dir[SM_COUNT];

typedef struct sweep_method {
    char *label;            /* the entry of --methods as written */
    egc_explain_options o;  /* resolved */
    egc_explainer *ex;
} sweep_method;

typedef struct sweep_ctx {
    /* options */
    const char *out_dir, *device, *model_path, *boxes_dir, *class_map_path;
    char *class_names_path;
    char **inputs;
    int n_inputs;
    long limit;
    int resume, verbose, batch, gallery;
    int on[SM_COUNT];
    int step, T;
    float tolerance;
    egc_infidelity_options infid;
    egc_sensitivity_options sens;
    /* model */
    egc_model *model;
    egc_preset preset;
    int C, H, W, classes; /* C: 3 (RGB) or 1 (a gray model) */
    size_t chw;
    sweep_method *methods;
    int n_methods;
    egc_evaluator *ev;
    cli_items items;
    /* annotations */
    char **names;
    int n_names;
    egc_class_map cmap;
    char **skipped;         /* [items] reason an image was skipped for localisation, or NULL */
    int n_skipped;
    /* outputs */
    FILE *rows, *curves;
    char **done;            /* resume set: "image\tmethod\tmetric", open addressing */
    size_t done_n, done_cap;
    /* grid pool */
    float *pool_x, *grid_x4, *grid_x, *grid_maps;
    int *pool_cls;
    char **pool_id;
    int pool_n, pool_cap, grid_k;
    /* statistics */
    long n_rows;
    int n_images_done, n_failed_inputs;
    int n_not_started;      /* images left out because --time-limit was reached */
    double time_limit;      /* seconds (0: none) */
    double started, seconds, t_explain;
} sweep_ctx;

/* CSV: a field quoted when it holds a comma, quote or newline. */
void csv_field(FILE *f, const char *s);
typedef struct csv_row {
    char **f;
    int n, cap;
    char *buf;
    size_t bcap;
} csv_row;
/* Reads one record (RFC 4180 quoting); returns 0 at the end of the file. */
int csv_read_row(FILE *f, csv_row *r);
/* csv_read_row for the sweep's own files: skips their header line (first field "image") when
 * it opens the file. *first is 1 before the first call; the calls keep it. */
int csv_read_data_row(FILE *f, csv_row *r, int *first);
void csv_row_free(csv_row *r);

/* Writes summary.csv, summary.json, skipped.csv, report.md and report.html from the rows
 * and curves on disk (so a resumed sweep reports everything). 0 on success. */
int sweep_report(sweep_ctx *S);

#endif

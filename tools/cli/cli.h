/* cli.h: shared pieces of the egcam command line: input expansion, labels, progress,
 * error printing and exit codes. */
#ifndef EGC_CLI_H
#define EGC_CLI_H

#include <stdio.h>

#include "egcam/image.h"
#include "egcam/model.h"

/* Exit codes (documented in `egcam --help`). */
enum { EXIT_ALL_OK = 0, EXIT_SOME_FAILED = 1, EXIT_USAGE = 2, EXIT_MODEL = 3 };

/* One input item: an image file, or one image of a tensor file. */
typedef struct cli_item {
    char *path;      /* the file */
    char *id;        /* what outputs call it: the path, or "path[i]" for tensor files */
    char *stem;      /* file stem for output names ("cat", "batch_3") */
    int index;       /* image index inside a tensor file, -1 for images */
} cli_item;

typedef struct cli_items {
    cli_item *v;
    int n, cap;
} cli_items;

/* Expands files, folders (their image/.npy files, sorted) into items. Missing paths and
 * unreadable tensor headers are reported on stderr and counted in *n_bad. */
int cli_expand_inputs(char **paths, int n_paths, cli_items *out, int *n_bad);
void cli_items_free(cli_items *it);

/* Loads one item as a preprocessed tensor [ch,h,w] (dst holds ch*h*w floats; ch 3, or 1
 * for a gray model). Also returns the model-sized picture as the model sees it (gray for
 * ch 1) in sized, and the image file's size in iw, ih (0 for tensors); each may be NULL. */
egc_status cli_load_item(const cli_item *it, egc_preset preset, int ch, int w, int h,
                         float *dst, egc_image *sized, int *iw, int *ih);

/* Labels: one per line. NULL path: a classes file beside the model that matches the class
 * count (imagenet_classes.txt for 1000, cifar10_classes.txt for 10), else none. */
char **cli_load_labels(const char *path, const char *model_path, int classes);
void cli_free_labels(char **labels, int classes);

/* Preset default: "cifar" for 32x32 inputs, else "torchvision". */
const char *cli_default_preset(const egc_model *m);
/* Parses a --preset value; 1 on success, 0 after printing why ("egcam CMD: --preset ..."). */
int cli_parse_preset(const char *cmd, const char *name, egc_preset *out);

/* Prints "egcam: <message>" for the last library error to stderr (first line only unless
 * verbose). */
void cli_error(const char *what, int verbose);
/* The line cli_error prints for message msg, into buf (NUL-terminated, truncated to cap). */
void cli_error_format(char *buf, size_t cap, const char *what, const char *msg, int verbose);
/* cli_error for a model that failed to load (st from egc_model_load), followed by what to
 * do about it: check the path, re-export the file, or see weights/README.md for the
 * operators egcam supports. */
void cli_model_error(const char *model_path, egc_status st, int verbose);
/* For getopt_long's error returns (call it with opterr = 0 and an optstring that starts
 * with ':'): c is '?' (unknown option) or ':' (missing value). Prints which option and
 * where to look, returns EXIT_USAGE. */
int cli_bad_option(const char *cmd, int argc, char **argv, int c);

/* Progress on stderr: a bar with rate and ETA when stderr is a terminal, otherwise a plain
 * line every few seconds. quiet disables it. */
typedef struct cli_progress {
    const char *label;
    long total, done, last_done; /* last_done: done at the last line drawn */
    double t0, last;
    int tty, quiet;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, long total, int quiet);
void cli_progress_step(cli_progress *p, long n);
void cli_progress_end(cli_progress *p);
double cli_now(void);

/* Runs load(k, arg) for k in [0, n) on all threads (each k writes only its own slots) and
 * waits. st[k] is each call's status and, where it failed, err[k] a malloc'd copy of its
 * error message (NULL on success or when no copy could be made); the caller frees them and
 * reports the failures in order (egc_error_restore makes err[k] the last error again). */
void cli_parallel_load(int n, egc_status (*load)(int k, void *arg), void *arg, egc_status *st,
                       char **err);
/* cli_parallel_load of cli_load_item: items[k] into row k of x (ch*h*w floats a row) and,
 * when sized is not NULL, sized[k]. */
void cli_load_rows(const cli_item *items, int n, egc_preset preset, int ch, int w, int h,
                   float *x, egc_image *sized, egc_status *st, char **err);
/* Makes err (or, when NULL, "out of memory") the current error message for the printing and
 * recording of a failure found by cli_parallel_load. */
void cli_restore_error(const char *err);

/* JSON string escaping to a stream. */
void cli_json_str(FILE *f, const char *s);
/* The sampled method options of o as JSON members, each after ", ": baselines (the file
 * path for a reference file), uniform_count (with uniform baselines, when with_count),
 * noise, alpha, combine, and plan when there is one: the manifest's and the sweep's. */
struct egc_explain_options;
void cli_json_sample_options(FILE *f, const struct egc_explain_options *o, int with_count);

/* Option values: each returns 1 on success, 0 after printing why val is bad ("egcam CMD:
 * OPT 'VAL' ..."). cli_parse_long: a whole decimal number in lo..hi; cli_parse_double: a
 * number in [lo, hi]; cli_parse_choice: one of names[0..n), *out = its index. */
int cli_parse_long(const char *cmd, const char *opt, const char *val, long lo, long hi, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *val, double lo, double hi,
                     double *out);
int cli_parse_choice(const char *cmd, const char *opt, const char *val,
                     const char *const *names, int n, int *out);
/* A memory size (--max-memory): a positive number of bytes, optionally fractional, with an
 * optional suffix: B; K, M, G, T (or KB, MB, ...) for powers of 1000; Ki, Mi, Gi, Ti (or
 * KiB, MiB, ...) for powers of 1024; case-insensitive ("2G", "1.5GiB", "512mib"). The result
 * is rounded down to whole bytes and must be at least 1. Returns 1, or 0 after printing why
 * ("egcam CMD: OPT 'VAL' ..."). */
int cli_parse_size(const char *cmd, const char *opt, const char *val, size_t *out);
/* Parses an image size "HxW" (e.g. 224x224; each 1..8192) given to option opt; 1 on success,
 * 0 after printing why ("egcam CMD: --OPT 'VAL' must be HxW ..."). */
int cli_parse_hw(const char *cmd, const char *opt, const char *val, int *h, int *w);
/* --precision: fp32 or mixed into *out; prints the usage error and returns 0 otherwise. */
int cli_parse_precision(const char *cmd, const char *val, egc_precision *out);

/* The getopt_long entries of the method options (those cli_method_option takes), all with
 * the option code `code`: --layer --score --samples --samples-tol --samples-round --baselines
 * --noise --alpha --combine --seed --plan. */
#define CLI_METHOD_LONG_OPTIONS(code)                                                      \
    {"layer", required_argument, 0, (code)}, {"score", required_argument, 0, (code)},      \
        {"samples", required_argument, 0, (code)},                                         \
        {"samples-tol", required_argument, 0, (code)},                                     \
        {"samples-round", required_argument, 0, (code)},                                   \
        {"baselines", required_argument, 0, (code)},                                       \
        {"noise", required_argument, 0, (code)}, {"alpha", required_argument, 0, (code)},  \
        {"combine", required_argument, 0, (code)}, {"seed", required_argument, 0, (code)}, \
        {"plan", required_argument, 0, (code)}
/* n bytes for people: "2.00 GiB", "512.0 MiB", "12.3 KiB", "100 B"; returns buf. */
const char *cli_format_bytes(size_t n, char *buf, size_t cap);

/* The rows per pass when --batch is not given: cpu_default on the CPU, 128 on a CUDA device
 * (its passes run at a fraction of their speed with few rows; the memory cap and the
 * out-of-memory split still apply). */
int cli_default_batch(const char *device, int cpu_default);

/* Applies one method option to o by name, without the dashes: layer, samples, samples-tol,
 * samples-round, baselines, noise, alpha, combine, score, seed, plan (the meanings of
 * `egcam explain --help`).
 * Strings (layer, plan, a baselines file) point into val, which must outlive o. Returns 1
 * when applied, 0 after printing why val is bad ("egcam CMD: ..."), -1 when name is not a
 * method option. */
int cli_method_option(const char *cmd, const char *name, const char *val,
                      struct egc_explain_options *o);
/* 1 when o's method options go together; else 0 after printing why ("egcam CMD: ...", what
 * names the method): adaptive counts (samples_tol > 0) of a sampled method need alpha
 * uniform and no plan. */
int cli_check_method_options(const char *cmd, const char *what,
                             const struct egc_explain_options *o);

int cmd_info(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_refs(int argc, char **argv);
int cmd_check(int argc, char **argv);

/* The HTML gallery of `egcam explain --gallery`: a table with one row per input and one
 * column per method; paths are relative to the folder of the page. */
typedef struct cli_gallery_cell {
    int ok;                 /* the map was made and its overlay written */
    int cls;                /* explained class */
    float score;            /* its score */
    const char *score_kind; /* "logit" or "softmax" */
    char *overlay;          /* overlay file, relative to the page */
    char *error;            /* why the cell failed (when !ok), or NULL */
} cli_gallery_cell;
typedef struct cli_gallery_row {
    const char *id;         /* the input as the manifest names it */
    char *picture;          /* the input picture, relative to the page, or NULL */
    char *error;            /* why the input could not be loaded, or NULL */
} cli_gallery_row;
typedef struct cli_gallery {
    const char *model;              /* the model file, shown in the heading */
    int n_rows, n_cols;
    const char *const *col_names;   /* [n_cols] method names */
    const char *const *col_notes;   /* [n_cols] the options of each method, or NULL */
    cli_gallery_row *rows;          /* [n_rows] */
    cli_gallery_cell *cells;        /* [n_rows * n_cols], row-major */
    char **labels;                  /* class names or NULL */
    int classes;
    egc_colormap cmap;              /* for the colour scale in the heading */
    float alpha;                    /* overlay opacity */
    const char *overlay_on;         /* "the model's view" or "the original photo" */
    const char *const *unread;      /* [n_unread] input paths that gave no image, or NULL */
    int n_unread;
} cli_gallery;
/* Writes the page (self-contained HTML5, no external resources, light and dark colour
 * schemes). Returns 0, or -1 after printing why on stderr. */
int cli_gallery_write(const cli_gallery *g, const char *path);
int cmd_sweep(int argc, char **argv);

/* Creates a folder and its missing parents (like mkdir -p); 0 on success, else prints why
 * on stderr and returns -1. */
int cli_mkdirs(const char *path);

#endif

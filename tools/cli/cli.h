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

/* Loads one item as a preprocessed tensor [3,h,w] (dst holds 3*h*w floats). Also returns
 * the model-sized RGB picture in sized (may be NULL). */
egc_status cli_load_item(const cli_item *it, egc_preset preset, int w, int h, float *dst,
                         egc_image *sized);

/* Labels: one per line. NULL path: a classes file beside the model that matches the class
 * count (imagenet_classes.txt for 1000, cifar10_classes.txt for 10), else none. */
char **cli_load_labels(const char *path, const char *model_path, int classes);
void cli_free_labels(char **labels, int classes);

/* Preset default: "cifar" for 32x32 inputs, else "torchvision". */
const char *cli_default_preset(const egc_model *m);

/* Prints "egcam: <message>" for the last library error to stderr (first line only unless
 * verbose). */
void cli_error(const char *what, int verbose);

/* Progress on stderr: a bar with rate and ETA when stderr is a terminal, otherwise a plain
 * line every few seconds. quiet disables it. */
typedef struct cli_progress {
    const char *label;
    long total, done;
    double t0, last;
    int tty, quiet;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, long total, int quiet);
void cli_progress_step(cli_progress *p, long n);
void cli_progress_end(cli_progress *p);
double cli_now(void);

/* JSON string escaping to a stream. */
void cli_json_str(FILE *f, const char *s);

int cmd_info(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_refs(int argc, char **argv);

/* Creates a folder and its missing parents (like mkdir -p); 0 on success, else prints why
 * on stderr and returns -1. */
int cli_mkdirs(const char *path);

#endif

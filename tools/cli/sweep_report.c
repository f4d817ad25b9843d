/* sweep_report.c: what `egcam sweep` writes after its rows: summary.csv and summary.json
 * (mean, std, count per method and metric, with every option that shaped them),
 * skipped.csv, report.md (tables) and report.html (well-formed XHTML-compatible HTML5:
 * tables, deletion/insertion curves and bar charts as inline SVG, an overlay gallery).
 * Everything is computed from rows.csv and curves.csv on disk, so a resumed sweep reports
 * all its rows. Also the CSV and number helpers of the sweep. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sweep.h"

/* ---------------------------------------------------------------- CSV and numbers */

void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void rb_put(csv_row *r, size_t *len, char c)
{
    if (*len + 1 >= r->bcap) {
        r->bcap = r->bcap ? 2 * r->bcap : 256;
        r->buf = realloc(r->buf, r->bcap);
        if (!r->buf) exit(EXIT_MODEL);
    }
    r->buf[(*len)++] = c;
}

int csv_read_row(FILE *f, csv_row *r)
{
    size_t len = 0;
    int c = fgetc(f);
    if (c == EOF) return 0;
    /* Fields are stored NUL-separated in buf; offsets fixed up at the end. */
    size_t starts[64];
    int nf = 0, inq = 0;
    starts[nf++] = 0;
    for (; c != EOF; c = fgetc(f)) {
        if (inq) {
            if (c == '"') {
                int d = fgetc(f);
                if (d == '"') rb_put(r, &len, '"');
                else {
                    inq = 0;
                    if (d != EOF) ungetc(d, f);
                }
            } else {
                rb_put(r, &len, (char)c);
            }
            continue;
        }
        if (c == '"') inq = 1;
        else if (c == ',') {
            rb_put(r, &len, '\0');
            if (nf < 64) starts[nf++] = len;
        } else if (c == '\n') break;
        else if (c != '\r') rb_put(r, &len, (char)c);
    }
    rb_put(r, &len, '\0');
    if (nf > r->cap) {
        r->cap = 64;
        r->f = realloc(r->f, (size_t)r->cap * sizeof *r->f);
        if (!r->f) exit(EXIT_MODEL);
    }
    for (int i = 0; i < nf; i++) r->f[i] = r->buf + starts[i];
    r->n = nf;
    return 1;
}

int csv_read_data_row(FILE *f, csv_row *r, int *first)
{
    while (csv_read_row(f, r)) {
        int header = *first && r->n && !strcmp(r->f[0], "image");
        *first = 0;
        if (!header) return 1;
    }
    return 0;
}

void csv_row_free(csv_row *r)
{
    free(r->f);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- aggregation */

#define MAX_LABELS 256
#define MAX_STEPS 4096

typedef struct stat_cell {
    double sum, sumsq;
    long n, failed, skipped, undef;
} stat_cell;

typedef struct agg {
    char *label[MAX_LABELS];
    int n_labels;
    stat_cell cell[MAX_LABELS][SM_COUNT];
    /* mean curves: [label][0 deletion, 1 insertion][step] */
    double *csum[MAX_LABELS][2], *cfrac[MAX_LABELS][2];
    long *ccount[MAX_LABELS][2];
    int csteps[MAX_LABELS][2];
    /* skipped images (from rows with status skipped), unique by image */
    char **skip_img, **skip_why;
    int n_skip, cap_skip;
    long n_ok, n_failed;
} agg;

static int label_index(agg *A, const char *s, int add)
{
    for (int i = 0; i < A->n_labels; i++)
        if (!strcmp(A->label[i], s)) return i;
    if (!add || A->n_labels == MAX_LABELS) return -1;
    A->label[A->n_labels] = strdup(s);
    if (!A->label[A->n_labels]) exit(EXIT_MODEL);
    return A->n_labels++;
}

static int metric_index(const char *s)
{
    for (int k = 0; k < SM_COUNT; k++)
        if (!strcmp(k_sweep_metric_names[k], s)) return k;
    return -1;
}

static void read_rows(const sweep_ctx *S, agg *A)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/rows.csv", S->out_dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    csv_row r;
    memset(&r, 0, sizeof r);
    int first = 1;
    while (csv_read_data_row(f, &r, &first)) {
        if (r.n < 5) continue;
        int k = metric_index(r.f[2]);
        int l = label_index(A, r.f[1], 1);
        if (k < 0 || l < 0) continue;
        stat_cell *c = &A->cell[l][k];
        if (!strcmp(r.f[4], "ok")) {
            char *end;
            double v = strtod(r.f[3], &end);
            if (end == r.f[3] || !isfinite(v)) {
                c->undef++; /* nan: undefined for this image (e.g. every sample excluded) */
                continue;
            }
            c->sum += v;
            c->sumsq += v * v;
            c->n++;
            A->n_ok++;
        } else if (!strcmp(r.f[4], "skipped")) {
            c->skipped++;
            int seen = 0;
            for (int i = 0; i < A->n_skip && !seen; i++) seen = !strcmp(A->skip_img[i], r.f[0]);
            if (!seen) {
                if (A->n_skip == A->cap_skip) {
                    A->cap_skip = A->cap_skip ? 2 * A->cap_skip : 64;
                    A->skip_img = realloc(A->skip_img, (size_t)A->cap_skip * sizeof(char *));
                    A->skip_why = realloc(A->skip_why, (size_t)A->cap_skip * sizeof(char *));
                    if (!A->skip_img || !A->skip_why) exit(EXIT_MODEL);
                }
                A->skip_img[A->n_skip] = strdup(r.f[0]);
                A->skip_why[A->n_skip] = strdup(r.n > 5 ? r.f[5] : "");
                A->n_skip++;
            }
        } else {
            c->failed++;
            A->n_failed++;
        }
    }
    csv_row_free(&r);
    fclose(f);
}

static void read_curves(const sweep_ctx *S, agg *A)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/curves.csv", S->out_dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    csv_row r;
    memset(&r, 0, sizeof r);
    int first = 1;
    while (csv_read_data_row(f, &r, &first)) {
        if (r.n < 6) continue;
        int kind = !strcmp(r.f[2], "deletion") ? 0 : !strcmp(r.f[2], "insertion") ? 1 : -1;
        int l = label_index(A, r.f[1], 1);
        long t = strtol(r.f[3], NULL, 10);
        double fr = strtod(r.f[4], NULL), v = strtod(r.f[5], NULL);
        if (kind < 0 || l < 0 || t < 0 || t >= MAX_STEPS || !isfinite(v)) continue;
        if (!A->csum[l][kind]) {
            A->csum[l][kind] = calloc(MAX_STEPS, sizeof(double));
            A->cfrac[l][kind] = calloc(MAX_STEPS, sizeof(double));
            A->ccount[l][kind] = calloc(MAX_STEPS, sizeof(long));
            if (!A->csum[l][kind] || !A->cfrac[l][kind] || !A->ccount[l][kind]) exit(EXIT_MODEL);
        }
        A->csum[l][kind][t] += v;
        A->cfrac[l][kind][t] = fr;
        A->ccount[l][kind][t]++;
        if (t + 1 > A->csteps[l][kind]) A->csteps[l][kind] = (int)t + 1;
    }
    csv_row_free(&r);
    fclose(f);
}

static double cell_mean(const stat_cell *c) { return c->n ? c->sum / c->n : NAN; }
static double cell_std(const stat_cell *c)
{
    if (c->n < 2) return 0;
    double m = c->sum / c->n, v = (c->sumsq - c->n * m * m) / (c->n - 1);
    return v > 0 ? sqrt(v) : 0;
}

/* Metrics present in the rows, in report order. */
static int metrics_present(const agg *A, int *out)
{
    int n = 0;
    for (int k = 0; k < SM_COUNT; k++) {
        int any = 0;
        for (int l = 0; l < A->n_labels; l++)
            any |= A->cell[l][k].n || A->cell[l][k].failed || A->cell[l][k].skipped ||
                   A->cell[l][k].undef;
        if (any) out[n++] = k;
    }
    return n;
}

/* ---------------------------------------------------------------- JSON */

static void json_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

static void json_method(FILE *f, const sweep_method *M)
{
    const egc_explain_options *o = &M->o;
    fprintf(f, "{\"label\": ");
    cli_json_str(f, M->label);
    fprintf(f, ", \"method\": \"%s\", \"layer\": ", egc_method_name(o->method));
    cli_json_str(f, egc_explainer_layer(M->ex));
    fprintf(f, ", \"score\": \"%s\"", egc_score_name(o->score));
    if (egc_method_is_sampled(o->method)) {
        fprintf(f, ", \"samples\": %d", egc_explainer_samples(M->ex));
        if (o->samples_tol > 0.0f)
            fprintf(f, ", \"samples_tol\": %.9g, \"samples_round\": %d", (double)o->samples_tol,
                    o->samples_round);
        cli_json_sample_options(f, o, 0);
    }
    fprintf(f, ", \"seed\": %" PRIu64 "}", o->seed);
}

static void write_json(const sweep_ctx *S, const agg *A, const int *mk, int nm, FILE *f)
{
    fprintf(f, "{\n  \"tool\": \"egcam sweep\",\n  \"model\": ");
    cli_json_str(f, S->model_path);
    fprintf(f, ",\n  \"preset\": \"%s\",\n  \"input_size\": [%d, %d, %d],\n  \"device\": ",
            egc_preset_name(S->preset), S->C, S->H, S->W);
    cli_json_str(f, S->device);
    fprintf(f, ",\n  \"batch\": %d,\n  \"inputs\": [", S->batch);
    for (int i = 0; i < S->n_inputs; i++) {
        if (i) fputs(", ", f);
        cli_json_str(f, S->inputs[i]);
    }
    fprintf(f, "],\n  \"images\": %d,\n  \"limit\": ", S->items.n);
    if (S->limit > 0) fprintf(f, "%ld", S->limit);
    else fputs("null", f);
    fprintf(f, ",\n  \"methods\": [");
    for (int i = 0; i < S->n_methods; i++) {
        fputs(i ? ",\n    " : "\n    ", f);
        json_method(f, &S->methods[i]);
    }
    fprintf(f, "\n  ],\n  \"metrics\": [");
    for (int i = 0, first = 1; i < SM_COUNT; i++)
        if (S->on[i]) {
            fprintf(f, "%s\"%s\"", first ? "" : ", ", k_sweep_metric_names[i]);
            first = 0;
        }
    const egc_infidelity_options *io = &S->infid;
    fprintf(f, "],\n  \"options\": {\"curve_step_pixels\": %d, \"curve_steps\": %d, "
               "\"curve_score\": \"softmax of the clean top-1 class\", "
               "\"deletion_substrate\": 0, \"insertion_start\": \"gaussian blur 11x11 sigma 5\", "
               "\"infidelity_patch\": %d, \"infidelity_black\": [%.9g, %.9g, %.9g], "
               "\"infidelity_gaussian_samples\": %d, \"infidelity_gaussian_sigma\": %.9g, "
               "\"sensitivity_samples\": %d, \"sensitivity_radius\": %.9g, \"seed\": %" PRIu64
               ", \"pointing_tolerance_px\": %.9g, \"boxes\": ",
            S->step, S->T, io->patch, (double)io->black[0], (double)io->black[1],
            (double)io->black[2], io->samples, (double)io->sigma, S->sens.samples,
            (double)S->sens.radius, S->sens.seed, (double)S->tolerance);
    if (S->boxes_dir) cli_json_str(f, S->boxes_dir);
    else fputs("null", f);
    fputs(", \"class_map\": ", f);
    if (S->class_map_path) cli_json_str(f, S->class_map_path);
    else fputs("null", f);
    fputs(", \"class_names\": ", f);
    if (S->class_names_path) cli_json_str(f, S->class_names_path);
    else fputs("null", f);
    fprintf(f, ", \"localisation_class\": \"top-1 if mapped from a box class of the image, "
               "else the best-scoring mapped class\"},\n");
    fprintf(f, "  \"run\": {\"seconds\": %.3f, \"rows_written\": %ld, \"rows_per_s\": %.4g, "
               "\"images\": %d, \"failed_inputs\": %d, \"evaluation_forwards\": %" PRId64
               ", \"explain_seconds\": %.3f, \"resume_option\": %s, \"time_limit_s\": %g, "
               "\"images_not_started\": %d},\n",
            S->seconds, S->n_rows, S->seconds > 0 ? S->n_rows / S->seconds : 0.0,
            S->n_images_done, S->n_failed_inputs, egc_evaluator_rows(S->ev), S->t_explain,
            S->resume ? "true" : "false", S->time_limit, S->n_not_started);
    fprintf(f, "  \"localisation_skipped\": [");
    for (int i = 0; i < A->n_skip; i++) {
        fputs(i ? ",\n    " : "\n    ", f);
        fputs("{\"image\": ", f);
        cli_json_str(f, A->skip_img[i]);
        fputs(", \"reason\": ", f);
        cli_json_str(f, A->skip_why[i]);
        fputs("}", f);
    }
    fprintf(f, "%s],\n  \"summary\": [", A->n_skip ? "\n  " : "");
    int first = 1;
    for (int l = 0; l < A->n_labels; l++)
        for (int j = 0; j < nm; j++) {
            const stat_cell *c = &A->cell[l][mk[j]];
            if (!c->n && !c->failed && !c->skipped && !c->undef) continue;
            fputs(first ? "\n    " : ",\n    ", f);
            first = 0;
            fputs("{\"method\": ", f);
            cli_json_str(f, A->label[l]);
            fprintf(f, ", \"metric\": \"%s\", \"mean\": ", k_sweep_metric_names[mk[j]]);
            json_num(f, cell_mean(c));
            fputs(", \"std\": ", f);
            json_num(f, cell_std(c));
            fprintf(f, ", \"count\": %ld, \"failed\": %ld, \"skipped\": %ld, \"undefined\": %ld, "
                       "\"better\": \"%s\"}",
                    c->n, c->failed, c->skipped, c->undef,
                    k_sweep_metric_dir[mk[j]] > 0   ? "higher"
                    : k_sweep_metric_dir[mk[j]] < 0 ? "lower"
                                                    : "n/a");
        }
    fputs("\n  ]\n}\n", f);
}

/* ---------------------------------------------------------------- HTML */

static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t') fputc(*s, f);
        }
    }
}

/* A label shortened to at most 36 characters for a chart (start … end). */
static void short_label(const char *l, char *out, size_t cap)
{
    size_t n = strlen(l);
    if (n > 36 && cap >= 44) snprintf(out, cap, "%.17s…%s", l, l + n - 17);
    else snprintf(out, cap, "%s", l);
}

static const char *const k_colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define N_COLORS 10

static void fmt_num(double v, char *buf, size_t cap)
{
    if (!isfinite(v)) snprintf(buf, cap, "–");
    else if (v != 0 && (fabs(v) < 1e-3 || fabs(v) >= 1e5)) snprintf(buf, cap, "%.3e", v);
    else snprintf(buf, cap, "%.4f", v);
}

/* Line chart of the mean deletion (kind 0) or insertion (kind 1) curves. */
static void svg_curves(FILE *f, const agg *A, int kind)
{
    const int Wd = 640, Ht = 300, ml = 50, mr = 270, mt = 28, mb = 40;
    int pw = Wd - ml - mr, ph = Ht - mt - mb;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" role=\"img\">\n", Wd, Ht, Wd, Ht);
    fprintf(f, "<title>mean %s curves</title>\n", kind ? "insertion" : "deletion");
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", Wd, Ht);
    fprintf(f, "<text x=\"%d\" y=\"18\" font-size=\"14\" font-family=\"sans-serif\" "
               "font-weight=\"bold\">%s (mean probability of the class)</text>\n", ml,
            kind ? "Insertion" : "Deletion");
    for (int i = 0; i <= 4; i++) {
        double v = i / 4.0;
        int y = mt + ph - (int)lround(v * ph), x = ml + (int)lround(v * pw);
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#dddddd\"/>\n", ml, y,
                ml + pw, y);
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" font-family=\"sans-serif\" "
                   "text-anchor=\"end\">%.2f</text>\n", ml - 4, y + 4, v);
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" font-family=\"sans-serif\" "
                   "text-anchor=\"middle\">%.2f</text>\n", x, mt + ph + 14, v);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
               "stroke=\"#333333\"/>\n", ml, mt, pw, ph);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" font-family=\"sans-serif\" "
               "text-anchor=\"middle\">fraction of pixels %s</text>\n", ml + pw / 2, Ht - 6,
            kind ? "inserted" : "deleted");
    int li = 0;
    for (int l = 0; l < A->n_labels; l++) {
        if (!A->csum[l][kind]) continue;
        const char *col = k_colors[li % N_COLORS];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
        for (int t = 0; t < A->csteps[l][kind]; t++) {
            if (!A->ccount[l][kind][t]) continue;
            double m = A->csum[l][kind][t] / A->ccount[l][kind][t];
            double fr = A->cfrac[l][kind][t];
            fprintf(f, "%s%.1f,%.1f", t ? " " : "", ml + fr * pw, mt + ph - m * ph);
        }
        fprintf(f, "\"/>\n");
        int ly = mt + 8 + 16 * li;
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                   "stroke-width=\"3\"/>\n", ml + pw + 10, ly, ml + pw + 26, ly, col);
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" font-family=\"sans-serif\">",
                ml + pw + 30, ly + 4);
        char shortl[48];
        short_label(A->label[l], shortl, sizeof shortl);
        html_text(f, shortl);
        fprintf(f, "</text>\n");
        li++;
    }
    fprintf(f, "</svg>\n");
}

/* Horizontal bar chart of one metric: mean per method with a std whisker. */
static void svg_bars(FILE *f, const agg *A, int k)
{
    int n = 0;
    double lo = 0, hi = 0;
    for (int l = 0; l < A->n_labels; l++) {
        const stat_cell *c = &A->cell[l][k];
        if (!c->n) continue;
        double m = cell_mean(c), s = cell_std(c);
        if (m - s < lo) lo = m - s;
        if (m + s > hi) hi = m + s;
        if (m < lo) lo = m;
        if (m > hi) hi = m;
        n++;
    }
    if (!n) return;
    if (hi - lo <= 0) hi = lo + 1;
    const int ml = 250, mr = 80, rowh = 22, mt = 30;
    int Wd = 660, pw = Wd - ml - mr, Ht = mt + rowh * n + 26;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" role=\"img\">\n", Wd, Ht, Wd, Ht);
    fprintf(f, "<title>%s</title>\n", k_sweep_metric_names[k]);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", Wd, Ht);
    fprintf(f, "<text x=\"10\" y=\"18\" font-size=\"14\" font-family=\"sans-serif\" "
               "font-weight=\"bold\">%s (%s; mean ± std)</text>\n", k_sweep_metric_names[k],
            k_sweep_metric_dir[k] > 0 ? "higher is better"
            : k_sweep_metric_dir[k] < 0 ? "lower is better" : "count");
    double x0 = ml + (0 - lo) / (hi - lo) * pw;
    int i = 0;
    for (int l = 0; l < A->n_labels; l++) {
        const stat_cell *c = &A->cell[l][k];
        if (!c->n) continue;
        double m = cell_mean(c), s = cell_std(c);
        double xm = ml + (m - lo) / (hi - lo) * pw;
        int y = mt + rowh * i;
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" font-family=\"sans-serif\" "
                   "text-anchor=\"end\">", ml - 6, y + 14);
        char shortl[48];
        short_label(A->label[l], shortl, sizeof shortl);
        html_text(f, shortl);
        fprintf(f, "</text>\n");
        fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n",
                xm < x0 ? xm : x0, y + 3, fabs(xm - x0), rowh - 6, k_colors[i % N_COLORS]);
        double xa = ml + (m - s - lo) / (hi - lo) * pw, xb = ml + (m + s - lo) / (hi - lo) * pw;
        fprintf(f, "<path d=\"M%.1f %d V%d M%.1f %d H%.1f M%.1f %d V%d\" stroke=\"#222222\" "
                   "fill=\"none\"/>\n", xa, y + 6, y + rowh - 6, xa, y + rowh / 2, xb, xb, y + 6,
                y + rowh - 6);
        char b[32];
        fmt_num(m, b, sizeof b);
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" font-family=\"sans-serif\">%s</text>\n",
                ml + pw + 6, y + 14, b);
        i++;
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#333333\"/>\n", x0,
            mt - 2, x0, mt + rowh * n + 2);
    char bl[32], bh[32];
    fmt_num(lo, bl, sizeof bl);
    fmt_num(hi, bh, sizeof bh);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" font-family=\"sans-serif\">%s</text>\n",
            ml, Ht - 6, bl);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" font-family=\"sans-serif\" "
               "text-anchor=\"end\">%s</text>\n", ml + pw, Ht - 6, bh);
    fprintf(f, "</svg>\n");
}

/* The best mean of metric k among the labels (by its direction), for bold marks. */
static int best_label(const agg *A, int k)
{
    int b = -1;
    if (!k_sweep_metric_dir[k]) return -1;
    for (int l = 0; l < A->n_labels; l++) {
        if (!A->cell[l][k].n) continue;
        double m = cell_mean(&A->cell[l][k]);
        if (b < 0 || (k_sweep_metric_dir[k] > 0 ? m > cell_mean(&A->cell[b][k])
                                                : m < cell_mean(&A->cell[b][k])))
            b = l;
    }
    return b;
}

static void write_html(const sweep_ctx *S, const agg *A, const int *mk, int nm, FILE *f)
{
    fputs("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n"
          "<meta charset=\"utf-8\"/>\n<title>egcam sweep report</title>\n<style>\n"
          "body { font-family: sans-serif; margin: 24px; color: #222222; }\n"
          "table { border-collapse: collapse; margin: 8px 0 20px 0; }\n"
          "th, td { border: 1px solid #cccccc; padding: 4px 8px; font-size: 13px; }\n"
          "th { background: #f0f0f0; }\n td.num { text-align: right; }\n"
          "td.best { font-weight: bold; background: #eef6ee; }\n"
          ".charts svg { margin: 6px 12px 6px 0; border: 1px solid #eeeeee; }\n"
          ".gallery img { display: block; }\n .small { color: #666666; font-size: 12px; }\n"
          "</style>\n</head>\n<body>\n<h1>egcam sweep report</h1>\n<p>Model <code>", f);
    html_text(f, S->model_path);
    fprintf(f, "</code>, preset <code>%s</code>, input 3×%d×%d, device <code>", egc_preset_name(S->preset),
            S->H, S->W);
    html_text(f, S->device);
    fprintf(f, "</code>, batch %d; %d images (", S->batch, S->items.n);
    for (int i = 0; i < S->n_inputs; i++) {
        if (i) fputs(", ", f);
        fputs("<code>", f);
        html_text(f, S->inputs[i]);
        fputs("</code>", f);
    }
    if (S->limit > 0) fprintf(f, "; first %ld", S->limit);
    fprintf(f, "). This run: %ld rows in %.1f s (%.2f rows/s, %" PRId64
               " evaluation forwards).</p>\n",
            S->n_rows, S->seconds, S->seconds > 0 ? S->n_rows / S->seconds : 0.0,
            egc_evaluator_rows(S->ev));
    if (S->n_not_started)
        fprintf(f, "<p><strong>Incomplete:</strong> the time limit of %g s was reached and %d of "
                   "the %d images were not started; the tables cover the images done (rerun "
                   "with <code>--resume</code> to continue).</p>\n",
                S->time_limit, S->n_not_started, S->items.n);

    fputs("<h2>Summary</h2>\n<p class=\"small\">Mean ± standard deviation (count) over images; "
          "the best mean per metric is marked. Arrows: ↑ higher is better, ↓ lower is "
          "better.</p>\n<table>\n<tr><th>method</th>", f);
    for (int j = 0; j < nm; j++)
        fprintf(f, "<th>%s %s</th>", k_sweep_metric_names[mk[j]],
                k_sweep_metric_dir[mk[j]] > 0 ? "↑" : k_sweep_metric_dir[mk[j]] < 0 ? "↓" : "");
    fputs("</tr>\n", f);
    int best[SM_COUNT];
    for (int j = 0; j < nm; j++) best[j] = best_label(A, mk[j]);
    for (int l = 0; l < A->n_labels; l++) {
        fputs("<tr><td><code>", f);
        html_text(f, A->label[l]);
        fputs("</code></td>", f);
        for (int j = 0; j < nm; j++) {
            const stat_cell *c = &A->cell[l][mk[j]];
            char a[32], b[32];
            fmt_num(cell_mean(c), a, sizeof a);
            fmt_num(cell_std(c), b, sizeof b);
            fprintf(f, "<td class=\"num%s\">", best[j] == l ? " best" : "");
            if (c->n) fprintf(f, "%s ± %s (%ld)", a, b, c->n);
            else fputs("–", f);
            if (c->failed) fprintf(f, " <span class=\"small\">%ld failed</span>", c->failed);
            if (c->skipped) fprintf(f, " <span class=\"small\">%ld skipped</span>", c->skipped);
            if (c->undef) fprintf(f, " <span class=\"small\">%ld undefined</span>", c->undef);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);

    int have_curves = 0;
    for (int l = 0; l < A->n_labels; l++) have_curves |= A->csum[l][0] || A->csum[l][1];
    if (have_curves) {
        fputs("<h2>Deletion and insertion curves</h2>\n<div class=\"charts\">\n", f);
        for (int kind = 0; kind < 2; kind++) {
            int any = 0;
            for (int l = 0; l < A->n_labels; l++) any |= A->csum[l][kind] != NULL;
            if (any) svg_curves(f, A, kind);
        }
        fputs("</div>\n", f);
    }
    fputs("<h2>Metrics</h2>\n<div class=\"charts\">\n", f);
    for (int j = 0; j < nm; j++) svg_bars(f, A, mk[j]);
    fputs("</div>\n", f);

    if (S->gallery > 0) {
        int ng = EGC_MIN(S->gallery, S->items.n);
        fputs("<h2>Gallery</h2>\n<table class=\"gallery\">\n<tr><th>image</th><th>input</th>", f);
        for (int k = 0; k < S->n_methods; k++) {
            fputs("<th><code>", f);
            html_text(f, S->methods[k].label);
            fputs("</code></th>", f);
        }
        fputs("</tr>\n", f);
        for (int i = 0; i < ng; i++) {
            char rel[4096], full[8192];
            const char *stem = S->items.v[i].stem;
            snprintf(rel, sizeof rel, "overlays/%03d_%s.png", i, stem);
            snprintf(full, sizeof full, "%s/%s", S->out_dir, rel);
            if (access(full, R_OK) != 0) continue;
            fputs("<tr><td>", f);
            html_text(f, stem);
            fputs("</td><td><img src=\"", f);
            html_text(f, rel);
            fputs("\" alt=\"input\" width=\"160\" height=\"160\"/></td>", f);
            for (int k = 0; k < S->n_methods; k++) {
                char sl[256];
                size_t q = 0;
                for (const char *p = S->methods[k].label; *p && q + 1 < sizeof sl; p++) {
                    char c = *p;
                    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '-' || c == '.';
                    sl[q++] = ok ? c : '_';
                }
                sl[q] = '\0';
                snprintf(rel, sizeof rel, "overlays/%03d_%s__%s.png", i, stem, sl);
                snprintf(full, sizeof full, "%s/%s", S->out_dir, rel);
                fputs("<td>", f);
                if (access(full, R_OK) == 0) {
                    fputs("<img src=\"", f);
                    html_text(f, rel);
                    fputs("\" alt=\"", f);
                    html_text(f, S->methods[k].label);
                    fputs("\" width=\"160\" height=\"160\"/>", f);
                } else {
                    fputs("–", f);
                }
                fputs("</td>", f);
            }
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    if (A->n_skip) {
        fprintf(f, "<h2>Skipped for localisation (%d images)</h2>\n<table>\n<tr><th>image</th>"
                   "<th>reason</th></tr>\n", A->n_skip);
        for (int i = 0; i < A->n_skip; i++) {
            fputs("<tr><td>", f);
            html_text(f, A->skip_img[i]);
            fputs("</td><td>", f);
            html_text(f, A->skip_why[i]);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    fputs("<h2>Options</h2>\n<table>\n<tr><th>method</th><th>options</th></tr>\n", f);
    for (int k = 0; k < S->n_methods; k++) {
        fputs("<tr><td><code>", f);
        html_text(f, S->methods[k].label);
        fputs("</code></td><td><code>", f);
        char buf[2048];
        FILE *mf = fmemopen(buf, sizeof buf, "w");
        if (mf) {
            json_method(mf, &S->methods[k]);
            fclose(mf);
            buf[sizeof buf - 1] = '\0';
            html_text(f, buf);
        }
        fputs("</code></td></tr>\n", f);
    }
    fputs("</table>\n<p class=\"small\">Metric options are in summary.json; rows in rows.csv, "
          "curves in curves.csv.</p>\n</body>\n</html>\n", f);
}

/* ---------------------------------------------------------------- markdown */

static void write_md(const sweep_ctx *S, const agg *A, const int *mk, int nm, FILE *f)
{
    fprintf(f, "# egcam sweep report\n\nModel `%s`, preset `%s`, device `%s`, batch %d, %d "
               "images", S->model_path, egc_preset_name(S->preset), S->device, S->batch,
            S->items.n);
    if (S->limit > 0) fprintf(f, " (first %ld)", S->limit);
    fprintf(f, ". This run: %ld rows in %.1f s (%.2f rows/s).\n\n", S->n_rows, S->seconds,
            S->seconds > 0 ? S->n_rows / S->seconds : 0.0);
    if (S->n_not_started)
        fprintf(f, "**Incomplete:** the time limit of %g s was reached and %d of the %d images "
                   "were not started; the tables cover the images done (rerun with `--resume` "
                   "to continue).\n\n", S->time_limit, S->n_not_started, S->items.n);
    fprintf(f, "Mean ± std (count); ↑ higher is better, ↓ lower is better; the best mean is in "
               "bold.\n\n| method |");
    for (int j = 0; j < nm; j++)
        fprintf(f, " %s %s |", k_sweep_metric_names[mk[j]],
                k_sweep_metric_dir[mk[j]] > 0 ? "↑" : k_sweep_metric_dir[mk[j]] < 0 ? "↓" : "");
    fputs("\n|---|", f);
    for (int j = 0; j < nm; j++) fputs("---|", f);
    fputs("\n", f);
    int best[SM_COUNT];
    for (int j = 0; j < nm; j++) best[j] = best_label(A, mk[j]);
    for (int l = 0; l < A->n_labels; l++) {
        fprintf(f, "| `%s` |", A->label[l]);
        for (int j = 0; j < nm; j++) {
            const stat_cell *c = &A->cell[l][mk[j]];
            char a[32], b[32];
            fmt_num(cell_mean(c), a, sizeof a);
            fmt_num(cell_std(c), b, sizeof b);
            if (c->n) {
                if (best[j] == l) fprintf(f, " **%s** ± %s (%ld)", a, b, c->n);
                else fprintf(f, " %s ± %s (%ld)", a, b, c->n);
            } else {
                fputs(" –", f);
            }
            if (c->failed) fprintf(f, " [%ld failed]", c->failed);
            if (c->skipped) fprintf(f, " [%ld skipped]", c->skipped);
            if (c->undef) fprintf(f, " [%ld undefined]", c->undef);
            fputs(" |", f);
        }
        fputs("\n", f);
    }
    const egc_infidelity_options *io = &S->infid;
    fprintf(f, "\nOptions: deletion/insertion %d pixels per step (%d steps); infidelity patch "
               "%d, black (%.4g, %.4g, %.4g); Gaussian infidelity %d samples, sigma %.4g; "
               "sensitivity %d samples, radius %.4g; pointing tolerance %.4g px; seed %" PRIu64
               ".\n", S->step, S->T, io->patch, (double)io->black[0], (double)io->black[1],
            (double)io->black[2], io->samples, (double)io->sigma, S->sens.samples,
            (double)S->sens.radius, (double)S->tolerance, S->sens.seed);
    if (A->n_skip) {
        fprintf(f, "\nSkipped for localisation: %d images\n\n| image | reason |\n|---|---|\n",
                A->n_skip);
        for (int i = 0; i < A->n_skip; i++)
            fprintf(f, "| %s | %s |\n", A->skip_img[i], A->skip_why[i]);
    }
}

/* ---------------------------------------------------------------- entry */

static FILE *open_out(const sweep_ctx *S, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", S->out_dir, name);
    FILE *f = fopen(path, "w");
    if (!f) fprintf(stderr, "egcam sweep: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

int sweep_report(sweep_ctx *S)
{
    agg *A = calloc(1, sizeof *A);
    if (!A) exit(EXIT_MODEL);
    for (int i = 0; i < S->n_methods; i++) label_index(A, S->methods[i].label, 1);
    read_rows(S, A);
    read_curves(S, A);
    int mk[SM_COUNT];
    int nm = metrics_present(A, mk);
    int rc = 0;
    FILE *f = open_out(S, "summary.csv");
    if (f) {
        fputs("method,metric,mean,std,count,failed,skipped,undefined,better\n", f);
        for (int l = 0; l < A->n_labels; l++)
            for (int j = 0; j < nm; j++) {
                const stat_cell *c = &A->cell[l][mk[j]];
                if (!c->n && !c->failed && !c->skipped && !c->undef) continue;
                csv_field(f, A->label[l]);
                fprintf(f, ",%s,%.9g,%.9g,%ld,%ld,%ld,%ld,%s\n", k_sweep_metric_names[mk[j]],
                        cell_mean(c), cell_std(c), c->n, c->failed, c->skipped, c->undef,
                        k_sweep_metric_dir[mk[j]] > 0   ? "higher"
                        : k_sweep_metric_dir[mk[j]] < 0 ? "lower"
                                                        : "n/a");
            }
        rc |= fclose(f) != 0;
    } else rc = 1;
    if ((f = open_out(S, "summary.json"))) {
        write_json(S, A, mk, nm, f);
        rc |= fclose(f) != 0;
    } else rc = 1;
    if ((f = open_out(S, "skipped.csv"))) {
        fputs("image,reason\n", f);
        for (int i = 0; i < A->n_skip; i++) {
            csv_field(f, A->skip_img[i]);
            fputc(',', f);
            csv_field(f, A->skip_why[i]);
            fputc('\n', f);
        }
        rc |= fclose(f) != 0;
    } else rc = 1;
    if ((f = open_out(S, "report.md"))) {
        write_md(S, A, mk, nm, f);
        rc |= fclose(f) != 0;
    } else rc = 1;
    if ((f = open_out(S, "report.html"))) {
        write_html(S, A, mk, nm, f);
        rc |= fclose(f) != 0;
    } else rc = 1;
    for (int l = 0; l < A->n_labels; l++) {
        free(A->label[l]);
        for (int k = 0; k < 2; k++) {
            free(A->csum[l][k]);
            free(A->cfrac[l][k]);
            free(A->ccount[l][k]);
        }
    }
    for (int i = 0; i < A->n_skip; i++) {
        free(A->skip_img[i]);
        free(A->skip_why[i]);
    }
    free(A->skip_img);
    free(A->skip_why);
    free(A);
    return rc;
}

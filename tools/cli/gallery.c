/* gallery.c: the HTML page of `egcam explain --gallery`: one row per input (its picture
 * first), one column per method, each cell a thumbnail of the overlay linking to the full
 * size, with the explained class and its score. Self-contained HTML5 (inline CSS, no
 * scripts, fonts or remote files), readable in light and dark colour schemes. */
#include <errno.h>
#include <string.h>

#include "cli.h"

/* Text content or attribute value, HTML-escaped. */
static void html(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if (*p < 0x20 && *p != '\n' && *p != '\t') fputc('?', f);
            else fputc(*p, f);
        }
    }
}

/* A relative path as a URL: bytes outside the unreserved set (and '/') percent-encoded. */
static void url(FILE *f, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9') || strchr("-._~/", *p);
        if (ok) fputc(*p, f);
        else fprintf(f, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
    }
}

static const char *base_name(const char *p)
{
    const char *b = strrchr(p, '/');
    return b && b[1] ? b + 1 : p;
}

static void thumb(FILE *f, const char *file, const char *alt)
{
    fputs("<a href=\"", f);
    url(f, file);
    fputs("\"><img src=\"", f);
    url(f, file);
    fputs("\" alt=\"", f);
    html(f, alt);
    fputs("\" width=\"160\" loading=\"lazy\"></a>", f);
}

static const char k_css[] =
    ":root{color-scheme:light dark;--bg:#fafafa;--fg:#1b1b1b;--muted:#5c5c5c;--line:#d4d4d4;"
    "--cell:#ffffff;--head:#ececec;--err:#b00020;--link:#0b57d0}\n"
    "@media (prefers-color-scheme:dark){:root{--bg:#15171a;--fg:#e6e6e6;--muted:#a4a4a4;"
    "--line:#3a3d42;--cell:#1e2125;--head:#272a2f;--err:#ff8a80;--link:#8ab4f8}}\n"
    "body{margin:1.5rem;background:var(--bg);color:var(--fg);"
    "font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\n"
    "h1{font-size:1.3rem;margin:0 0 .3rem}\n"
    "p.meta{color:var(--muted);margin:.2rem 0 1rem}\n"
    "code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}\n"
    "table{border-collapse:collapse}\n"
    "th,td{border:1px solid var(--line);padding:6px;vertical-align:top;text-align:left;"
    "background:var(--cell)}\n"
    "thead th{background:var(--head);position:sticky;top:0;z-index:1;max-width:172px}\n"
    "img{display:block;width:160px;height:auto;image-rendering:auto}\n"
    "a{color:var(--link)}\n"
    ".cap{width:160px;margin-top:4px;overflow-wrap:anywhere}\n"
    ".label{font-weight:600}\n"
    ".num{color:var(--muted);font-variant-numeric:tabular-nums}\n"
    ".note{font-weight:400;color:var(--muted);font-size:.82em;overflow-wrap:anywhere}\n"
    ".err{color:var(--err);font-weight:400;max-width:160px;overflow-wrap:anywhere}\n"
    "p.err{max-width:none}\n"
    ".bar{display:inline-block;width:240px;height:12px;vertical-align:middle;"
    "border:1px solid var(--line);margin:0 .4rem}\n";

int cli_gallery_write(const cli_gallery *g, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "egcam: cannot write the gallery %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"color-scheme\" content=\"light dark\">\n<title>egcam explain: ",
          f);
    html(f, base_name(g->model ? g->model : "model"));
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>egcam explain: ", k_css);
    html(f, base_name(g->model ? g->model : "model"));
    fputs("</h1>\n<p class=\"meta\">model <code>", f);
    html(f, g->model);
    fprintf(f, "</code> &middot; %d input%s &middot; %d method%s &middot; colour scale", g->n_rows,
            g->n_rows == 1 ? "" : "s", g->n_cols, g->n_cols == 1 ? "" : "s");
    /* The colour scale: the colormap sampled at 11 stops, low to high. */
    fputs(" 0<span class=\"bar\" role=\"img\" aria-label=\"colour scale from 0 to 1\" "
          "style=\"background:linear-gradient(to right", f);
    for (int i = 0; i <= 10; i++) {
        uint8_t c[3];
        egc_colormap_rgb(g->cmap, (float)i / 10.0f, c);
        fprintf(f, ",#%02x%02x%02x", c[0], c[1], c[2]);
    }
    fprintf(f, ")\"></span>1 (%s, opacity %.2g, over %s)</p>\n", egc_colormap_name(g->cmap),
            (double)g->alpha, g->overlay_on ? g->overlay_on : "the model's view");

    int any_unread = 0;
    for (int i = 0; i < g->n_unread; i++) {
        if (!g->unread[i]) continue;
        fputs(any_unread ? ", <code>" : "<p class=\"err\">not read (see the manifest): <code>", f);
        html(f, g->unread[i]);
        fputs("</code>", f);
        any_unread = 1;
    }
    if (any_unread) fputs("</p>\n", f);
    fputs("<table>\n<thead><tr><th scope=\"col\">input</th>", f);
    for (int k = 0; k < g->n_cols; k++) {
        fputs("<th scope=\"col\">", f);
        html(f, g->col_names[k]);
        if (g->col_notes && g->col_notes[k]) {
            fputs("<div class=\"note\">", f);
            html(f, g->col_notes[k]);
            fputs("</div>", f);
        }
        fputs("</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (int r = 0; r < g->n_rows; r++) {
        const cli_gallery_row *row = &g->rows[r];
        fputs("<tr><th scope=\"row\">", f);
        if (row->picture) thumb(f, row->picture, base_name(row->id));
        fputs("<div class=\"cap\" title=\"", f);
        html(f, row->id);
        fputs("\">", f);
        html(f, base_name(row->id));
        fputs("</div>", f);
        if (row->error) {
            fputs("<div class=\"err\">", f);
            html(f, row->error);
            fputs("</div>", f);
        }
        fputs("</th>", f);
        for (int k = 0; k < g->n_cols; k++) {
            const cli_gallery_cell *c = &g->cells[(size_t)r * (size_t)g->n_cols + (size_t)k];
            fputs("<td>", f);
            if (c->ok && c->overlay) {
                char alt[512];
                snprintf(alt, sizeof alt, "%s of %s", g->col_names[k], base_name(row->id));
                thumb(f, c->overlay, alt);
                fputs("<div class=\"cap\"><span class=\"label\">", f);
                const char *lab = g->labels && c->cls >= 0 && c->cls < g->classes
                                      ? g->labels[c->cls]
                                      : NULL;
                if (lab) html(f, lab);
                else fprintf(f, "class %d", c->cls);
                fprintf(f, "</span> <span class=\"num\">#%d</span><br><span class=\"num\">%s "
                           "%.4g</span></div>",
                        c->cls, c->score_kind ? c->score_kind : "score", (double)c->score);
            } else if (c->error) {
                fputs("<div class=\"err\">failed: ", f);
                html(f, c->error);
                fputs("</div>", f);
            } else if (!row->error) {
                fputs("<div class=\"err\">not explained</div>", f);
            }
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody>\n</table>\n</body>\n</html>\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "egcam: error writing the gallery %s (disk full?)\n", path);
        return -1;
    }
    return 0;
}

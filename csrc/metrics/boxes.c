/* boxes.c: annotations for the localisation metrics: YOLO label files, Pascal VOC XML,
 * rasterisation of boxes to masks in the model-input geometry of a preprocessing preset,
 * YOLO classes.yaml names and the class map files that relate dataset classes to model
 * classes. Everything read from files is bounds-checked; errors name the file and the
 * line. Contracts in include/egcam/metrics.h. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "metrics/metrics_internal.h"

void egc_boxes_free(egc_boxes *b)
{
    if (!b) return;
    free(b->v);
    b->v = NULL;
    b->n = 0;
}

static egc_status boxes_push(egc_boxes *b, int *cap, const egc_box *x, const char *path)
{
    if (b->n >= 1 << 20) return EGC_FAIL(EGC_E_FORMAT, "%s: more than 2^20 boxes", path);
    if (b->n == *cap) {
        int nc = *cap ? 2 * *cap : 16;
        EGC_TRY(egc_realloc((void **)&b->v, (size_t)nc, sizeof *b->v, "boxes"));
        *cap = nc;
    }
    b->v[b->n++] = *x;
    return EGC_OK;
}

/* The next line of buf (NUL-terminated) into [*s, *e); returns 0 at the end. */
static int next_line(const char **p, const char **s, const char **e)
{
    if (!**p) return 0;
    *s = *p;
    const char *q = *p;
    while (*q && *q != '\n') q++;
    *e = q;
    *p = *q ? q + 1 : q;
    return 1;
}

static int parse_float(const char **p, const char *end, double *v)
{
    while (*p < end && (**p == ' ' || **p == '\t' || **p == '\r')) (*p)++;
    if (*p >= end) return 0;
    char tmp[64];
    size_t n = 0;
    while (*p < end && !isspace((unsigned char)**p) && n + 1 < sizeof tmp) tmp[n++] = *(*p)++;
    tmp[n] = '\0';
    char *stop;
    errno = 0;
    *v = strtod(tmp, &stop);
    return n > 0 && *stop == '\0' && !errno && isfinite(*v);
}

egc_status egc_boxes_read_yolo(const char *path, int img_w, int img_h, egc_boxes *out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "YOLO labels: no output given");
    memset(out, 0, sizeof *out);
    if (!path || img_w < 1 || img_h < 1)
        return EGC_FAIL(EGC_E_ARG, "YOLO labels %s: bad image size %dx%d", path ? path : "(null)",
                        img_w, img_h);
    uint8_t *data = NULL;
    size_t len = 0;
    EGC_TRY(egc_read_file(path, &data, &len));
    out->img_w = img_w;
    out->img_h = img_h;
    egc_status st = EGC_OK;
    int cap = 0, lineno = 0;
    const char *p = (const char *)data, *s, *e;
    if (strlen(p) != len) {
        st = EGC_FAIL(EGC_E_FORMAT, "%s: holds a NUL byte (not a text label file)", path);
        goto fail;
    }
    while (next_line(&p, &s, &e)) {
        lineno++;
        const char *q = s;
        while (q < e && isspace((unsigned char)*q)) q++;
        if (q == e || *q == '#') continue;
        double v[5];
        for (int k = 0; k < 5; k++)
            if (!parse_float(&q, e, &v[k])) {
                st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: expected 'class cx cy w h' (five numbers)",
                              path, lineno);
                goto fail;
            }
        while (q < e && isspace((unsigned char)*q)) q++;
        if (q != e) {
            st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: unexpected text after 'class cx cy w h'", path,
                          lineno);
            goto fail;
        }
        if (v[0] < 0 || v[0] > 1e6 || v[0] != floor(v[0]) || v[3] < 0 || v[4] < 0 ||
            v[1] < -1 || v[1] > 2 || v[2] < -1 || v[2] > 2 || v[3] > 2 || v[4] > 2) {
            st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: class must be an integer >= 0 and the box "
                          "normalised (cx, cy, w, h near [0,1], w, h >= 0)", path, lineno);
            goto fail;
        }
        egc_box b;
        memset(&b, 0, sizeof b);
        b.cls = (int)v[0];
        b.x0 = (float)((v[1] - v[3] / 2) * img_w);
        b.x1 = (float)((v[1] + v[3] / 2) * img_w);
        b.y0 = (float)((v[2] - v[4] / 2) * img_h);
        b.y1 = (float)((v[2] + v[4] / 2) * img_h);
        EGC_TRYG(st, boxes_push(out, &cap, &b, path), fail);
    }
    free(data);
    return EGC_OK;
fail:
    free(data);
    egc_boxes_free(out);
    return st;
}

/* ---- Pascal VOC ---- */

/* The text between <tag> and </tag> in [p, end), searched from p; returns the position
 * after the closing tag, or NULL. */
static const char *xml_elem(const char *p, const char *end, const char *tag, const char **ts,
                            const char **te)
{
    char open[40], close[40];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    size_t lo = strlen(open), lc = strlen(close);
    for (const char *q = p; q + lo <= end; q++) {
        if (memcmp(q, open, lo)) continue;
        const char *s = q + lo;
        for (const char *r = s; r + lc <= end; r++)
            if (!memcmp(r, close, lc)) {
                *ts = s;
                *te = r;
                return r + lc;
            }
        return NULL;
    }
    return NULL;
}

static int xml_number(const char *p, const char *end, const char *tag, double *v)
{
    const char *s, *e;
    if (!xml_elem(p, end, tag, &s, &e)) return 0;
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    return parse_float(&s, e, v) && s == e;
}

/* Copies the element text into dst, trimmed, with the five predefined entities decoded. */
static int xml_text(const char *s, const char *e, char *dst, size_t cap)
{
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    static const char *const ent[5][2] = {
        {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}};
    size_t n = 0;
    while (s < e) {
        char c = *s++;
        if (c == '&') {
            int found = 0;
            for (int k = 0; k < 5 && !found; k++) {
                size_t l = strlen(ent[k][0]) - 1;
                if ((size_t)(e - s) >= l && !memcmp(s, ent[k][0] + 1, l)) {
                    c = ent[k][1][0];
                    s += l;
                    found = 1;
                }
            }
        }
        if (c == '<' && s[-1] == '<') return 0; /* markup inside a name */
        if (n + 1 >= cap) return 0;
        dst[n++] = c;
    }
    dst[n] = '\0';
    return 1;
}

egc_status egc_boxes_read_voc(const char *path, egc_boxes *out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "VOC annotation: no output given");
    memset(out, 0, sizeof *out);
    uint8_t *data = NULL;
    size_t len = 0;
    EGC_TRY(egc_read_file(path, &data, &len));
    const char *p = (const char *)data, *end = p + len;
    egc_status st = EGC_OK;
    int cap = 0;
    const char *ss, *se;
    double w, h;
    if (!xml_elem(p, end, "annotation", &ss, &se)) {
        st = EGC_FAIL(EGC_E_FORMAT, "%s: no <annotation> element (not a Pascal VOC file)", path);
        goto fail;
    }
    if (!xml_elem(p, end, "size", &ss, &se) || !xml_number(ss, se, "width", &w) ||
        !xml_number(ss, se, "height", &h) || w < 1 || h < 1 || w > INT_MAX || h > INT_MAX ||
        w != floor(w) || h != floor(h)) {
        st = EGC_FAIL(EGC_E_FORMAT, "%s: <size> needs integer <width> and <height> >= 1", path);
        goto fail;
    }
    out->img_w = (int)w;
    out->img_h = (int)h;
    int k = 0;
    const char *os, *oe;
    while ((p = xml_elem(p, end, "object", &os, &oe)) != NULL) {
        k++;
        egc_box b;
        memset(&b, 0, sizeof b);
        b.cls = -1;
        const char *ns, *ne, *bs, *be;
        if (!xml_elem(os, oe, "name", &ns, &ne) || !xml_text(ns, ne, b.name, sizeof b.name) ||
            !b.name[0]) {
            st = EGC_FAIL(EGC_E_FORMAT, "%s: object %d: missing, empty or too long <name>", path, k);
            goto fail;
        }
        double v[4];
        static const char *const tags[4] = {"xmin", "ymin", "xmax", "ymax"};
        if (!xml_elem(os, oe, "bndbox", &bs, &be)) {
            st = EGC_FAIL(EGC_E_FORMAT, "%s: object %d (%s): no <bndbox>", path, k, b.name);
            goto fail;
        }
        for (int t = 0; t < 4; t++)
            if (!xml_number(bs, be, tags[t], &v[t])) {
                st = EGC_FAIL(EGC_E_FORMAT, "%s: object %d (%s): <%s> missing or not a number",
                              path, k, b.name, tags[t]);
                goto fail;
            }
        if (v[2] < v[0] || v[3] < v[1] || v[0] < 0 || v[1] < 0 || v[2] > w + 1 || v[3] > h + 1) {
            st = EGC_FAIL(EGC_E_FORMAT, "%s: object %d (%s): box %g,%g,%g,%g is empty or outside "
                          "the %gx%g image", path, k, b.name, v[0], v[1], v[2], v[3], w, h);
            goto fail;
        }
        b.x0 = (float)(v[0] - 1);
        b.y0 = (float)(v[1] - 1);
        b.x1 = (float)v[2];
        b.y1 = (float)v[3];
        EGC_TRYG(st, boxes_push(out, &cap, &b, path), fail);
    }
    free(data);
    return EGC_OK;
fail:
    free(data);
    egc_boxes_free(out);
    return st;
}

/* ---- masks ---- */

/* The affine map of original pixel coordinates to model-input coordinates:
 * X = sx * x + ox, Y = sy * y + oy (the same arithmetic as egc_preset_geometry). */
static egc_status preset_affine(egc_preset p, int iw, int ih, int W, int H, double *sx,
                                double *ox, double *sy, double *oy)
{
    switch (egc_preset_base(p)) {
    case EGC_PRESET_TF: {
        int bh = (int)(((double)ih - (double)ih * 0.875) / 2.0);
        int bw = (int)(((double)iw - (double)iw * 0.875) / 2.0);
        int cw = iw - 2 * bw, ch = ih - 2 * bh;
        *sx = (double)W / cw;
        *sy = (double)H / ch;
        *ox = -bw * *sx;
        *oy = -bh * *sy;
        return EGC_OK;
    }
    case EGC_PRESET_TORCHVISION: {
        if (W != H) return EGC_FAIL(EGC_E_ARG, "preset torchvision: the input must be square");
        int S = W;
        int R = (int)rint((double)S * 256.0 / 224.0);
        int sh = iw <= ih ? iw : ih, lg = iw <= ih ? ih : iw;
        int nl = (int)((double)((int64_t)R * lg) / (double)sh);
        int rw = iw <= ih ? R : nl, rh = iw <= ih ? nl : R;
        int top = (int)rint((double)(rh - S) / 2.0), left = (int)rint((double)(rw - S) / 2.0);
        *sx = (double)rw / iw;
        *sy = (double)rh / ih;
        *ox = -left;
        *oy = -top;
        return EGC_OK;
    }
    case EGC_PRESET_CIFAR:
        *sx = (double)W / iw;
        *sy = (double)H / ih;
        *ox = *oy = 0;
        return EGC_OK;
    }
    return EGC_FAIL(EGC_E_ARG, "preset %d is unknown", (int)p);
}

egc_status egc_boxes_mask(const egc_boxes *b, const uint8_t *keep, egc_preset p, int W, int H,
                          uint8_t *mask, int *count)
{
    if (!b || !mask || W < 1 || H < 1 || b->img_w < 1 || b->img_h < 1)
        return EGC_FAIL(EGC_E_ARG, "box mask: missing boxes or mask, or bad sizes");
    double sx = 1, ox = 0, sy = 1, oy = 0;
    EGC_TRY(preset_affine(p, b->img_w, b->img_h, W, H, &sx, &ox, &sy, &oy));
    memset(mask, 0, (size_t)W * (size_t)H);
    for (int k = 0; k < b->n; k++) {
        if (keep && !keep[k]) continue;
        const egc_box *q = &b->v[k];
        double X0 = sx * q->x0 + ox, X1 = sx * q->x1 + ox;
        double Y0 = sy * q->y0 + oy, Y1 = sy * q->y1 + oy;
        /* pixel centres c + 0.5 in [X0, X1): c from ceil(X0 - 0.5) to ceil(X1 - 0.5) - 1 */
        double cx0 = ceil(X0 - 0.5), cx1 = ceil(X1 - 0.5) - 1;
        double cy0 = ceil(Y0 - 0.5), cy1 = ceil(Y1 - 0.5) - 1;
        if (cx0 > cx1 || cy0 > cy1) {
            /* A box thinner than a pixel marks the pixel of its centre. */
            double mx = floor((X0 + X1) / 2), my = floor((Y0 + Y1) / 2);
            cx0 = cx1 = mx;
            cy0 = cy1 = my;
        }
        if (cx0 < 0) cx0 = 0;
        if (cy0 < 0) cy0 = 0;
        if (cx1 > W - 1) cx1 = W - 1;
        if (cy1 > H - 1) cy1 = H - 1;
        for (int y = (int)cy0; y <= (int)cy1 && cy0 <= cy1; y++)
            for (int x = (int)cx0; x <= (int)cx1 && cx0 <= cx1; x++) mask[(size_t)y * W + x] = 1;
    }
    if (count) {
        int c = 0;
        for (size_t i = 0; i < (size_t)W * (size_t)H; i++) c += mask[i];
        *count = c;
    }
    return EGC_OK;
}

/* ---- class names and class maps ---- */

static char *trim(char *s)
{
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

/* Cuts the next line off the text at *p (in place: the newline and a '#' comment become
 * NULs) and moves *p past it; NULL when no text is left. */
static char *cut_line(char **p)
{
    char *raw = *p;
    if (!raw || !*raw) return NULL;
    char *nl = strchr(raw, '\n');
    if (nl) *nl = '\0';
    *p = nl ? nl + 1 : NULL;
    char *hash = strchr(raw, '#');
    if (hash) *hash = '\0';
    return raw;
}

/* Removes one pair of matching quotes around s. */
static char *unquote(char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && (s[0] == '\'' || s[0] == '"') && s[n - 1] == s[0]) {
        s[n - 1] = '\0';
        return s + 1;
    }
    return s;
}

void egc_class_names_free(char **names, int n)
{
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static egc_status names_set(char ***names, int *n, int *cap, int id, const char *name,
                            const char *path, int line)
{
    if (id < 0 || id >= 1 << 20)
        return EGC_FAIL(EGC_E_FORMAT, "%s:%d: class id %d out of range 0..2^20", path, line, id);
    if (id >= *cap) {
        int nc = EGC_MAX(id + 1, 2 * *cap);
        EGC_TRY(egc_realloc((void **)names, (size_t)nc, sizeof **names, "class names"));
        for (int i = *cap; i < nc; i++) (*names)[i] = NULL;
        *cap = nc;
    }
    if ((*names)[id]) return EGC_FAIL(EGC_E_FORMAT, "%s:%d: class %d named twice", path, line, id);
    EGC_TRY(egc_strdup(&(*names)[id], name));
    if (id >= *n) *n = id + 1;
    return EGC_OK;
}

egc_status egc_class_names_read(const char *path, char ***names_out, int *n_out)
{
    if (!names_out || !n_out) return EGC_FAIL(EGC_E_ARG, "class names: no output given");
    *names_out = NULL;
    *n_out = 0;
    uint8_t *data = NULL;
    size_t len = 0;
    EGC_TRY(egc_read_file(path, &data, &len));
    egc_status st = EGC_OK;
    char **names = NULL;
    int n = 0, cap = 0, line = 0, in_names = 0, listed = 0;
    char *p = (char *)data, *raw;
    while ((raw = cut_line(&p))) {
        line++;
        int indented = raw[0] == ' ' || raw[0] == '\t';
        char *s = trim(raw);
        if (!*s) continue;
        if (!indented) {
            in_names = 0;
            if (!strncmp(s, "names:", 6)) {
                char *rest = trim(s + 6);
                if (*rest == '[') {
                    char *close = strchr(rest, ']');
                    if (!close) {
                        st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: 'names: [' without ']'", path, line);
                        goto fail;
                    }
                    *close = '\0';
                    char *save = NULL;
                    int id = 0;
                    for (char *t = strtok_r(rest + 1, ",", &save); t; t = strtok_r(NULL, ",", &save))
                        EGC_TRYG(st, names_set(&names, &n, &cap, id++, unquote(trim(t)), path, line),
                                 fail);
                    listed = 1;
                } else {
                    in_names = 1;
                    listed = 1;
                }
            }
            continue;
        }
        if (!in_names) continue;
        if (s[0] == '-') {
            EGC_TRYG(st, names_set(&names, &n, &cap, n, unquote(trim(s + 1)), path, line), fail);
            continue;
        }
        char *colon = strchr(s, ':');
        char *end;
        long id = colon ? strtol(s, &end, 10) : -1;
        if (!colon || end != colon || id < 0) {
            st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: expected 'ID: name' under names:", path, line);
            goto fail;
        }
        EGC_TRYG(st, names_set(&names, &n, &cap, (int)id, unquote(trim(colon + 1)), path, line),
                 fail);
    }
    if (!listed || !n) {
        st = EGC_FAIL(EGC_E_FORMAT, "%s: no class names (expected a 'names:' key)", path);
        goto fail;
    }
    free(data);
    *names_out = names;
    *n_out = n;
    return EGC_OK;
fail:
    free(data);
    egc_class_names_free(names, cap);
    return st;
}

void egc_class_map_free(egc_class_map *cm)
{
    if (!cm) return;
    for (int i = 0; i < cm->n; i++) {
        if (cm->key) free(cm->key[i]);
        if (cm->idx) free(cm->idx[i]);
    }
    free(cm->key);
    free(cm->key_id);
    free(cm->idx);
    free(cm->nidx);
    memset(cm, 0, sizeof *cm);
}

static int parse_index(const char *s, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return end != s && *end == '\0' && !errno && isdigit((unsigned char)s[0]);
}

egc_status egc_class_map_read(const char *path, char *const *names, int n_names, int classes,
                              egc_class_map *out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "class map: no output given");
    memset(out, 0, sizeof *out);
    uint8_t *data = NULL;
    size_t len = 0;
    EGC_TRY(egc_read_file(path, &data, &len));
    egc_status st = EGC_OK;
    int cap = 0, line = 0;
    int *tmp = NULL;
    if (strlen((const char *)data) != len) {
        st = EGC_FAIL(EGC_E_FORMAT, "%s: holds a NUL byte (not a text class map)", path);
        goto fail;
    }
    char *p = (char *)data, *raw;
    while ((raw = cut_line(&p))) {
        line++;
        char *s = trim(raw);
        if (!*s) continue;
        char *arrow = strstr(s, "->");
        if (!arrow) {
            st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: expected 'class -> index[,index...]'", path, line);
            goto fail;
        }
        *arrow = '\0';
        char *key = trim(s), *list = trim(arrow + 2);
        if (!*key || !*list) {
            st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: empty class or index list", path, line);
            goto fail;
        }
        long kid;
        int id = -1;
        if (parse_index(key, &kid)) {
            if (kid > 1 << 20) {
                st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: class id %ld is too large", path, line, kid);
                goto fail;
            }
            id = (int)kid;
        } else if (names) {
            for (int i = 0; i < n_names; i++)
                if (names[i] && !strcmp(names[i], key)) id = i;
            if (id < 0) {
                st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: '%s' is not a class name of the dataset", path,
                              line, key);
                goto fail;
            }
        }
        for (int i = 0; i < out->n; i++)
            if (!strcmp(out->key[i], key) || (id >= 0 && out->key_id[i] == id)) {
                st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: class '%s' is mapped twice", path, line, key);
                goto fail;
            }
        /* indices */
        int ni = 0, icap = 0;
        char *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            t = trim(t);
            long a, b;
            char *dash = strchr(t, '-');
            if (dash) {
                *dash = '\0';
                char *ta = trim(t), *tb = trim(dash + 1);
                if (!parse_index(ta, &a) || !parse_index(tb, &b) || b < a) {
                    st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: bad index range '%s-%s'", path, line, ta, tb);
                    goto fail;
                }
            } else if (!parse_index(t, &a)) {
                st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: '%s' is not an index", path, line, t);
                goto fail;
            } else {
                b = a;
            }
            if (b >= classes) {
                st = EGC_FAIL(EGC_E_FORMAT, "%s:%d: index %ld is out of range (the model has %d "
                              "classes)", path, line, b, classes);
                goto fail;
            }
            for (long v = a; v <= b; v++) {
                if (ni == icap) {
                    icap = icap ? 2 * icap : 8;
                    EGC_TRYG(st, egc_realloc((void **)&tmp, (size_t)icap, sizeof(int), "indices"),
                             fail);
                }
                tmp[ni++] = (int)v;
            }
        }
        if (out->n == cap) {
            int nc = cap ? 2 * cap : 16;
            EGC_TRYG(st, egc_realloc((void **)&out->key, (size_t)nc, sizeof(char *), "class map"), fail);
            EGC_TRYG(st, egc_realloc((void **)&out->key_id, (size_t)nc, sizeof(int), "class map"), fail);
            EGC_TRYG(st, egc_realloc((void **)&out->idx, (size_t)nc, sizeof(int *), "class map"), fail);
            EGC_TRYG(st, egc_realloc((void **)&out->nidx, (size_t)nc, sizeof(int), "class map"), fail);
            cap = nc;
        }
        int e = out->n;
        out->key[e] = NULL;
        out->idx[e] = NULL;
        out->nidx[e] = 0;
        out->key_id[e] = id;
        out->n++;
        EGC_TRYG(st, egc_strdup(&out->key[e], key), fail);
        out->idx[e] = tmp;
        out->nidx[e] = ni;
        tmp = NULL;
    }
    free(data);
    return EGC_OK;
fail:
    free(tmp);
    free(data);
    egc_class_map_free(out);
    return st;
}

int egc_class_map_find(const egc_class_map *cm, int id, const char *name)
{
    if (!cm) return -1;
    if (id >= 0)
        for (int i = 0; i < cm->n; i++)
            if (cm->key_id[i] == id) return i;
    if (name && name[0])
        for (int i = 0; i < cm->n; i++)
            if (!strcmp(cm->key[i], name)) return i;
    return -1;
}

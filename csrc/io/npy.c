/* npy.c: reading and writing NumPy .npy files.
 *
 * Reads format versions 1, 2 and 3 with dtype '<f4' (float32) or '<f8' (float64, converted
 * to float32), C order, any rank up to EGC_MAX_DIMS. Writes float32 in version 1 with the
 * header padded to a multiple of 64 bytes, as NumPy does. Every field of the header is
 * checked; errors name the file and what is wrong. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "egcam/image.h"

static const char k_magic[6] = {(char)0x93, 'N', 'U', 'M', 'P', 'Y'};

/* A cursor over the header text (a Python dict literal). */
typedef struct hdr {
    const char *s;
    size_t n, i;
} hdr;

static void skip_ws(hdr *h)
{
    while (h->i < h->n && (h->s[h->i] == ' ' || h->s[h->i] == '\t' || h->s[h->i] == '\n' ||
                           h->s[h->i] == '\r'))
        h->i++;
}

static int accept(hdr *h, char c)
{
    skip_ws(h);
    if (h->i < h->n && h->s[h->i] == c) {
        h->i++;
        return 1;
    }
    return 0;
}

/* A quoted string ('...' or "...") copied into buf; 0 when there is none or it is too long. */
static int parse_str(hdr *h, char *buf, size_t cap)
{
    skip_ws(h);
    if (h->i >= h->n || (h->s[h->i] != '\'' && h->s[h->i] != '"')) return 0;
    char q = h->s[h->i++];
    size_t k = 0;
    while (h->i < h->n && h->s[h->i] != q) {
        if (k + 1 >= cap) return 0;
        buf[k++] = h->s[h->i++];
    }
    if (h->i >= h->n) return 0;
    h->i++;
    buf[k] = '\0';
    return 1;
}

static int parse_word(hdr *h, const char *w)
{
    skip_ws(h);
    size_t m = strlen(w);
    if (h->n - h->i >= m && memcmp(h->s + h->i, w, m) == 0) {
        h->i += m;
        return 1;
    }
    return 0;
}

/* A tuple of non-negative integers: "()", "(5,)", "(3, 224, 224)". */
static egc_status parse_shape(hdr *h, const char *path, egc_shape *shape)
{
    memset(shape, 0, sizeof *shape);
    if (!accept(h, '('))
        return EGC_FAIL(EGC_E_FORMAT, "%s: .npy header: 'shape' is not a tuple", path);
    if (accept(h, ')')) return EGC_OK;
    for (;;) {
        skip_ws(h);
        if (h->i >= h->n || h->s[h->i] < '0' || h->s[h->i] > '9')
            return EGC_FAIL(EGC_E_FORMAT, "%s: .npy header: 'shape' holds a non-integer", path);
        int64_t v = 0;
        while (h->i < h->n && h->s[h->i] >= '0' && h->s[h->i] <= '9') {
            v = v * 10 + (h->s[h->i++] - '0');
            if (v > ((int64_t)1 << 40))
                return EGC_FAIL(EGC_E_FORMAT, "%s: .npy header: dimension too large", path);
        }
        if (h->i < h->n && (h->s[h->i] == 'L' || h->s[h->i] == 'l')) h->i++; /* Python 2 */
        if (shape->ndim >= EGC_MAX_DIMS)
            return EGC_FAIL(EGC_E_UNSUPPORTED, "%s: .npy array has more than %d dimensions", path,
                            EGC_MAX_DIMS);
        shape->d[shape->ndim++] = v;
        if (accept(h, ')')) return EGC_OK;
        if (!accept(h, ','))
            return EGC_FAIL(EGC_E_FORMAT, "%s: .npy header: malformed 'shape' tuple", path);
        if (accept(h, ')')) return EGC_OK;
    }
}

egc_status egc_npy_read(const char *path, egc_tensor *out)
{
    if (!out) return EGC_FAIL(EGC_E_ARG, "egc_npy_read: no output tensor given");
    memset(out, 0, sizeof *out);
    if (!path || !*path) return EGC_FAIL(EGC_E_ARG, "egc_npy_read: empty path");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return EGC_FAIL(EGC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return EGC_FAIL(EGC_E_IO, "%s: not a regular file", path);
    uint8_t *buf = NULL;
    size_t len = 0;
    EGC_TRY(egc_read_file(path, &buf, &len));
    egc_status st = EGC_OK;

    if (len < 10 || memcmp(buf, k_magic, 6) != 0) {
        st = EGC_FAIL(EGC_E_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
        goto done;
    }
    int major = buf[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)buf[8] | ((size_t)buf[9] << 8);
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) {
            st = EGC_FAIL(EGC_E_FORMAT, "%s: .npy header is truncated", path);
            goto done;
        }
        hlen = (size_t)buf[8] | ((size_t)buf[9] << 8) | ((size_t)buf[10] << 16) |
               ((size_t)buf[11] << 24);
        hstart = 12;
    } else {
        st = EGC_FAIL(EGC_E_UNSUPPORTED, "%s: .npy format version %d.%d is not supported", path,
                      major, buf[7]);
        goto done;
    }
    if (hlen > len - hstart) {
        st = EGC_FAIL(EGC_E_FORMAT, "%s: .npy header of %zu bytes is truncated (file has %zu)",
                      path, hlen, len);
        goto done;
    }

    hdr h = {(const char *)buf + hstart, hlen, 0};
    char descr[32] = "";
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
    egc_shape shape;
    memset(&shape, 0, sizeof shape);
    if (!accept(&h, '{')) {
        st = EGC_FAIL(EGC_E_FORMAT, "%s: .npy header is not a dictionary", path);
        goto done;
    }
    while (!accept(&h, '}')) {
        char key[32];
        if (!parse_str(&h, key, sizeof key) || !accept(&h, ':')) {
            st = EGC_FAIL(EGC_E_FORMAT, "%s: .npy header: malformed dictionary", path);
            goto done;
        }
        if (strcmp(key, "descr") == 0) {
            if (!parse_str(&h, descr, sizeof descr)) {
                st = EGC_FAIL(EGC_E_FORMAT, "%s: .npy header: 'descr' is not a string", path);
                goto done;
            }
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (parse_word(&h, "True")) fortran = 1;
            else if (parse_word(&h, "False")) fortran = 0;
            else {
                st = EGC_FAIL(EGC_E_FORMAT, "%s: .npy header: 'fortran_order' is not a boolean",
                              path);
                goto done;
            }
            have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            EGC_TRYG(st, parse_shape(&h, path, &shape), done);
            have_shape = 1;
        } else {
            st = EGC_FAIL(EGC_E_FORMAT, "%s: .npy header: unknown key '%s'", path, key);
            goto done;
        }
        if (!accept(&h, ',')) {
            if (!accept(&h, '}')) {
                st = EGC_FAIL(EGC_E_FORMAT, "%s: .npy header: malformed dictionary", path);
                goto done;
            }
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape) {
        st = EGC_FAIL(EGC_E_FORMAT, "%s: .npy header lacks '%s'", path,
                      !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
        goto done;
    }
    if (fortran) {
        st = EGC_FAIL(EGC_E_UNSUPPORTED,
                      "%s: .npy array is in Fortran order; save it in C order "
                      "(numpy.ascontiguousarray)",
                      path);
        goto done;
    }
    int f64;
    if (strcmp(descr, "<f4") == 0) f64 = 0;
    else if (strcmp(descr, "<f8") == 0) f64 = 1;
    else {
        st = EGC_FAIL(EGC_E_UNSUPPORTED,
                      "%s: .npy dtype '%s' is not supported (little-endian float32 '<f4' or "
                      "float64 '<f8')",
                      path, descr);
        goto done;
    }

    /* Element count, with overflow checks. */
    uint64_t numel = 1;
    for (int i = 0; i < shape.ndim; i++) {
        if (shape.d[i] != 0 && numel > (UINT64_MAX >> 4) / (uint64_t)shape.d[i]) {
            st = EGC_FAIL(EGC_E_FORMAT, "%s: .npy shape is too large", path);
            goto done;
        }
        numel *= (uint64_t)shape.d[i];
    }
    size_t item = f64 ? 8 : 4;
    size_t data_off = hstart + hlen;
    if (numel > (uint64_t)(len - data_off) / item) {
        char shp[128];
        st = EGC_FAIL(EGC_E_FORMAT, "%s: .npy data is truncated: shape %s needs %llu bytes, file "
                      "has %zu after the header",
                      path, egc_shape_str(&shape, shp, sizeof shp),
                      (unsigned long long)(numel * item), len - data_off);
        goto done;
    }
    EGC_TRYG(st, egc_tensor_alloc(out, &shape), done);
    const uint8_t *d = buf + data_off;
    if (f64) {
        for (uint64_t i = 0; i < numel; i++) {
            double v;
            memcpy(&v, d + i * 8, 8);
            out->data[i] = (float)v;
        }
    } else if (numel) {
        memcpy(out->data, d, (size_t)numel * 4);
    }

done:
    free(buf);
    return st;
}

egc_status egc_npy_write(const char *path, const egc_tensor *t)
{
    if (!path || !*path) return EGC_FAIL(EGC_E_ARG, "egc_npy_write: empty path");
    if (!t) return EGC_FAIL(EGC_E_ARG, "%s: no tensor to write", path);
    if (t->shape.ndim < 0 || t->shape.ndim > EGC_MAX_DIMS)
        return EGC_FAIL(EGC_E_ARG, "%s: tensor rank %d is not in 0..%d", path, t->shape.ndim,
                        EGC_MAX_DIMS);
    int64_t numel = egc_shape_numel(&t->shape);
    for (int i = 0; i < t->shape.ndim; i++)
        if (t->shape.d[i] < 0)
            return EGC_FAIL(EGC_E_ARG, "%s: tensor has a negative dimension", path);
    if (numel > 0 && !t->data) return EGC_FAIL(EGC_E_ARG, "%s: tensor has no data", path);

    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < t->shape.ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)t->shape.d[i],
                      (t->shape.ndim > 1 && i + 1 < t->shape.ndim) ? " " : "");
    if (t->shape.ndim > 1) n--; /* "(3, 4,)" -> "(3, 4)": drop the last comma */
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* Pad with spaces and a newline so that magic + lengths + header is a multiple of 64. */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    char header[640];
    memcpy(header, k_magic, 6);
    header[6] = 1;
    header[7] = 0;
    header[8] = (char)(hlen & 0xFF);
    header[9] = (char)(hlen >> 8);
    memcpy(header + 10, dict, (size_t)n);
    memset(header + 10 + n, ' ', pad);
    header[10 + hlen - 1] = '\n';

    FILE *f = fopen(path, "wb");
    if (!f) return EGC_FAIL(EGC_E_IO, "%s: cannot create: %s", path, strerror(errno));
    int ok = fwrite(header, 1, 10 + hlen, f) == 10 + hlen;
    if (ok && numel > 0)
        ok = fwrite(t->data, sizeof(float), (size_t)numel, f) == (size_t)numel;
    int e = errno;
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        remove(path);
        return EGC_FAIL(EGC_E_IO, "%s: write failed: %s", path, strerror(e));
    }
    return EGC_OK;
}

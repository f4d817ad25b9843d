/* util.c: checked allocation, whole-file reads, shapes, host tensors, parallel-for. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

egc_status egc_malloc(void **out, size_t n, size_t size, const char *what)
{
    *out = NULL;
    if (size && n > SIZE_MAX / size)
        return EGC_FAIL(EGC_E_NOMEM, "%s: size overflow (%zu x %zu bytes)", what, n, size);
    size_t bytes = n * size;
    void *p = malloc(bytes ? bytes : 1);
    if (!p) return EGC_FAIL(EGC_E_NOMEM, "%s: out of host memory (%zu bytes)", what, bytes);
    *out = p;
    return EGC_OK;
}

egc_status egc_calloc(void **out, size_t n, size_t size, const char *what)
{
    *out = NULL;
    if (size && n > SIZE_MAX / size)
        return EGC_FAIL(EGC_E_NOMEM, "%s: size overflow (%zu x %zu bytes)", what, n, size);
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) return EGC_FAIL(EGC_E_NOMEM, "%s: out of host memory (%zu bytes)", what, n * size);
    *out = p;
    return EGC_OK;
}

egc_status egc_realloc(void **p, size_t n, size_t size, const char *what)
{
    if (size && n > SIZE_MAX / size)
        return EGC_FAIL(EGC_E_NOMEM, "%s: size overflow (%zu x %zu bytes)", what, n, size);
    size_t bytes = n * size;
    void *q = realloc(*p, bytes ? bytes : 1);
    if (!q) return EGC_FAIL(EGC_E_NOMEM, "%s: out of host memory (%zu bytes)", what, bytes);
    *p = q;
    return EGC_OK;
}

egc_status egc_aligned_alloc(void **out, size_t bytes, const char *what)
{
    *out = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) return EGC_FAIL(EGC_E_NOMEM, "%s: size overflow", what);
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) return EGC_FAIL(EGC_E_NOMEM, "%s: out of host memory (%zu bytes)", what, bytes);
    *out = p;
    return EGC_OK;
}

void egc_aligned_free(void *p) { free(p); }

egc_status egc_strdup(char **out, const char *s)
{
    size_t n = strlen(s) + 1;
    EGC_TRY(egc_malloc((void **)out, n, 1, "string"));
    memcpy(*out, s, n);
    return EGC_OK;
}

egc_status egc_read_file(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) return EGC_FAIL(EGC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return EGC_FAIL(EGC_E_IO, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return EGC_FAIL(EGC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        int e = errno;
        fclose(f);
        return EGC_FAIL(EGC_E_IO, "%s: cannot seek: %s", path, strerror(e));
    }
    long sz = ftell(f);
    if (sz < 0) {
        int e = errno;
        fclose(f);
        return EGC_FAIL(EGC_E_IO, "%s: not a regular file: %s", path, strerror(e));
    }
    rewind(f);
    uint8_t *buf = NULL;
    egc_status st = egc_malloc((void **)&buf, (size_t)sz + 1, 1, path);
    if (st != EGC_OK) {
        fclose(f);
        return st;
    }
    size_t got = fread(buf, 1, (size_t)sz, f);
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (got != (size_t)sz) {
        free(buf);
        return EGC_FAIL(EGC_E_IO, "%s: read %zu of %ld bytes: %s", path, got, sz,
                        e ? strerror(e) : "short read");
    }
    buf[sz] = 0;
    *data = buf;
    *len = (size_t)sz;
    return EGC_OK;
}

int64_t egc_shape_numel(const egc_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= s->d[i];
    return n;
}

egc_shape egc_shape_make(int n, const int64_t *dims)
{
    egc_shape s;
    memset(&s, 0, sizeof s);
    if (n < 0) n = 0;
    if (n > EGC_MAX_DIMS) n = EGC_MAX_DIMS;
    s.ndim = n;
    for (int i = 0; i < n; i++) s.d[i] = dims[i];
    return s;
}

int egc_shape_equal(const egc_shape *a, const egc_shape *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i]) return 0;
    return 1;
}

char *egc_shape_str(const egc_shape *s, char *buf, size_t cap)
{
    if (!cap) return buf;
    size_t n = 0;
    buf[0] = '\0';
    n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "[");
    for (int i = 0; i < s->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ",%lld" : "%lld", (long long)s->d[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

egc_status egc_tensor_alloc(egc_tensor *t, const egc_shape *shape)
{
    memset(t, 0, sizeof *t);
    int64_t n = egc_shape_numel(shape);
    if (n < 0) return EGC_FAIL(EGC_E_SHAPE, "tensor: negative dimension");
    void *p = NULL;
    EGC_TRY(egc_aligned_alloc(&p, (size_t)n * sizeof(float), "tensor"));
    memset(p, 0, (size_t)n * sizeof(float));
    t->shape = *shape;
    t->data = (float *)p;
    return EGC_OK;
}

void egc_tensor_free(egc_tensor *t)
{
    if (!t) return;
    egc_aligned_free(t->data);
    memset(t, 0, sizeof *t);
}

int egc_num_threads(void)
{
    static int cached = 0;
    if (cached > 0) return cached;
    const char *e = getenv("EGC_NUM_THREADS");
    int n = e ? atoi(e) : 0;
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    if (n > 256) n = 256;
    cached = n;
    return n;
}

typedef struct pf_job {
    int64_t n;
    int64_t next;
    pthread_mutex_t mu;
    void (*fn)(int64_t, void *);
    void *arg;
} pf_job;

static void *pf_worker(void *p)
{
    pf_job *j = (pf_job *)p;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        int64_t i = j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->n) break;
        j->fn(i, j->arg);
    }
    return NULL;
}

void egc_parallel_for(int64_t n, void (*fn)(int64_t i, void *arg), void *arg)
{
    int nt = egc_num_threads();
    if (nt > n) nt = (int)n;
    if (nt <= 1) {
        for (int64_t i = 0; i < n; i++) fn(i, arg);
        return;
    }
    pf_job j = {n, 0, PTHREAD_MUTEX_INITIALIZER, fn, arg};
    pthread_t th[256];
    int started = 0;
    for (int t = 1; t < nt; t++) {
        if (pthread_create(&th[started], NULL, pf_worker, &j) == 0) started++;
    }
    pf_worker(&j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    pthread_mutex_destroy(&j.mu);
}

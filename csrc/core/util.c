/* util.c: checked allocation, whole-file reads, shapes, host tensors, parallel-for. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
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

void egc_channels_first(const float *src, int64_t n, int c, int64_t hw, float *dst)
{
    for (int64_t i = 0; i < n; i++, src += (int64_t)c * hw, dst += (int64_t)c * hw)
        for (int64_t p = 0; p < hw; p++)
            for (int k = 0; k < c; k++) dst[k * hw + p] = src[p * c + k];
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

/* ---- parallel-for ----
 * One parallel-for at a time runs on a persistent pool of egc_num_threads() - 1 workers
 * (started at its first use, never stopped), so that the many small parallel regions of a
 * forward pass do not pay for thread creation each time. A call made while the pool is busy
 * (a nested call from inside fn, or a concurrent one from another thread) starts its own
 * threads instead, as every call did before the pool. Items are handed out one at a time
 * through a shared counter in both cases. */

typedef struct pf_job {
    int64_t n;
    int64_t next;
    pthread_mutex_t mu;
    void (*fn)(int64_t, void *);
    void *arg;
} pf_job;

/* Runs items of j until none is left. */
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

static struct {
    pthread_mutex_t owner;  /* held by the parallel-for that uses the pool */
    pthread_mutex_t mu;     /* guards the fields below */
    pthread_cond_t work, done;
    int workers;            /* started workers */
    int finished;           /* workers done with the current job */
    uint64_t gen;           /* job number: bumped for each job */
    pf_job *job;            /* current job (on the owner's stack) */
} g_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
            PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL};

/* A pool worker: waits for each job after the one numbered *start (the job number when it
 * was started), runs its items, reports that it is done (after which it no longer touches
 * the job). */
static void *pool_worker(void *start)
{
    uint64_t seen = *(const uint64_t *)start;
    free(start);
    pthread_mutex_lock(&g_pool.mu);
    for (;;) {
        while (g_pool.gen == seen) pthread_cond_wait(&g_pool.work, &g_pool.mu);
        seen = g_pool.gen;
        pf_job *j = g_pool.job;
        pthread_mutex_unlock(&g_pool.mu);
        pf_worker(j);
        pthread_mutex_lock(&g_pool.mu);
        if (++g_pool.finished == g_pool.workers) pthread_cond_signal(&g_pool.done);
    }
    return NULL;
}

/* Starts workers up to `want` (caller holds g_pool.owner, so no job is running). */
static void pool_grow(int want)
{
    pthread_mutex_lock(&g_pool.mu);
    while (g_pool.workers < want) {
        pthread_t th;
        pthread_attr_t at;
        uint64_t *start = malloc(sizeof *start);
        if (!start) break;
        *start = g_pool.gen;
        if (pthread_attr_init(&at) != 0) {
            free(start);
            break;
        }
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, pool_worker, start);
        pthread_attr_destroy(&at);
        if (rc != 0) {
            free(start);
            break;
        }
        g_pool.workers++;
    }
    pthread_mutex_unlock(&g_pool.mu);
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
    if (pthread_mutex_trylock(&g_pool.owner) == 0) {
        pool_grow(egc_num_threads() - 1);
        pthread_mutex_lock(&g_pool.mu);
        if (g_pool.workers > 0) {
            g_pool.job = &j;
            g_pool.finished = 0;
            g_pool.gen++;
            pthread_cond_broadcast(&g_pool.work);
            pthread_mutex_unlock(&g_pool.mu);
            pf_worker(&j);
            pthread_mutex_lock(&g_pool.mu);
            while (g_pool.finished < g_pool.workers) pthread_cond_wait(&g_pool.done, &g_pool.mu);
            g_pool.job = NULL;
            pthread_mutex_unlock(&g_pool.mu);
            pthread_mutex_unlock(&g_pool.owner);
            pthread_mutex_destroy(&j.mu);
            return;
        }
        /* no worker could be started: run inline */
        pthread_mutex_unlock(&g_pool.mu);
        pthread_mutex_unlock(&g_pool.owner);
        pf_worker(&j);
        pthread_mutex_destroy(&j.mu);
        return;
    }
    pthread_t th[256];
    int started = 0;
    for (int t = 1; t < nt; t++) {
        if (pthread_create(&th[started], NULL, pf_worker, &j) == 0) started++;
    }
    pf_worker(&j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    pthread_mutex_destroy(&j.mu);
}

void egc_str_append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (!buf || *len + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    *len += (size_t)k < cap - *len ? (size_t)k : cap - *len - 1;
}

typedef struct pcopy_ctx {
    char *dst;
    const char *src;
    size_t bytes;
} pcopy_ctx;

#define PCOPY_CHUNK ((size_t)1 << 20)

static void pcopy_chunk(int64_t i, void *arg)
{
    const pcopy_ctx *c = arg;
    size_t o = (size_t)i * PCOPY_CHUNK, n = EGC_MIN(PCOPY_CHUNK, c->bytes - o);
    memcpy(c->dst + o, c->src + o, n);
}

void egc_parallel_copy(void *dst, const void *src, size_t bytes)
{
    if (!bytes) return;
    pcopy_ctx c = {dst, src, bytes};
    egc_parallel_for((int64_t)((bytes + PCOPY_CHUNK - 1) / PCOPY_CHUNK), pcopy_chunk, &c);
}

uint64_t egc_fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

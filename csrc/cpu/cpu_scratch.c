/* cpu_scratch.c: the CPU backend's pool of grow-only scratch buffers (im2col columns and
 * the like). See cpu_impl.h for the contract. The pool is a mutex-protected free list of
 * sets; each set has one buffer per worker slot that only ever grows, so after the first
 * batch no op allocates. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_impl.h"

struct egc_cpu_scratch {
    void *buf[EGC_CPU_SCRATCH_SLOTS];
    size_t cap[EGC_CPU_SCRATCH_SLOTS];
    struct egc_cpu_scratch *next; /* free-list link while idle */
};

static pthread_mutex_t g_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static egc_cpu_scratch *g_free;

egc_status egc_cpu_scratch_acquire(egc_cpu_scratch **out)
{
    pthread_mutex_lock(&g_pool_mu);
    egc_cpu_scratch *s = g_free;
    if (s) g_free = s->next;
    pthread_mutex_unlock(&g_pool_mu);
    if (!s) EGC_TRY(egc_calloc((void **)&s, 1, sizeof *s, "CPU scratch set"));
    s->next = NULL;
    *out = s;
    return EGC_OK;
}

void egc_cpu_scratch_release(egc_cpu_scratch *s)
{
    if (!s) return;
    pthread_mutex_lock(&g_pool_mu);
    s->next = g_free;
    g_free = s;
    pthread_mutex_unlock(&g_pool_mu);
}

egc_status egc_cpu_scratch_get(egc_cpu_scratch *s, int slot, size_t bytes, void **out)
{
    *out = NULL;
    if (slot < 0 || slot >= EGC_CPU_SCRATCH_SLOTS)
        return EGC_FAIL(EGC_E_INTERNAL, "CPU scratch slot %d out of range", slot);
    if (s->cap[slot] < bytes || !s->buf[slot]) {
        /* Grow by at least 1.5x to avoid creeping reallocations across layers. */
        size_t want = bytes + bytes / 2;
        if (want < bytes) want = bytes;
        if (want < 4096) want = 4096;
        egc_aligned_free(s->buf[slot]);
        s->buf[slot] = NULL;
        s->cap[slot] = 0;
        EGC_TRY(egc_aligned_alloc(&s->buf[slot], want, "CPU scratch buffer"));
        s->cap[slot] = want;
    }
    *out = s->buf[slot];
    return EGC_OK;
}

void egc_cpu_scratch_trim(void)
{
    pthread_mutex_lock(&g_pool_mu);
    egc_cpu_scratch *s = g_free;
    g_free = NULL;
    pthread_mutex_unlock(&g_pool_mu);
    while (s) {
        egc_cpu_scratch *next = s->next;
        for (int i = 0; i < EGC_CPU_SCRATCH_SLOTS; i++) egc_aligned_free(s->buf[i]);
        free(s);
        s = next;
    }
}

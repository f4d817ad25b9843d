/* choice_cache.c: the file of timed choices (choice_cache.h). */
#include "core/choice_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "core/philox.h"

#define CC_MAGIC 0x43434745u /* "EGCC" in little-endian bytes */
#define CC_VERSION 1u

typedef struct cc_record {
    uint32_t magic, version;
    egc_choice c;
    uint64_t check;
} cc_record;

/* FNV-1a over the record's bytes before its check, finished by SplitMix64's mixer. */
static uint64_t cc_check(const cc_record *r)
{
    return egc_id_mix(egc_fnv1a(r, offsetof(cc_record, check)));
}

/* mkdir that accepts an existing folder; 0 on success. */
static int make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
    }
    return -1;
}

int egc_choice_cache_path(const char *name, char *buf, size_t cap)
{
    if (!buf || !cap) return 0;
    buf[0] = '\0';
    const char *off = getenv("EGC_CUDA_CACHE");
    if (off && (!strcmp(off, "0") || !strcmp(off, "off"))) return 0;
    if (!name || !*name || strchr(name, '/')) return 0;
    char dir[1024];
    const char *v = getenv("EGC_CACHE_DIR");
    int n;
    if (v && *v) {
        n = snprintf(dir, sizeof dir, "%s", v);
        if (n < 0 || (size_t)n >= sizeof dir || make_dir(dir)) return 0;
    } else {
        const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
        if (x && *x) n = snprintf(dir, sizeof dir, "%s", x);
        else if (h && *h) n = snprintf(dir, sizeof dir, "%s/.cache", h);
        else return 0;
        if (n < 0 || (size_t)n >= sizeof dir || make_dir(dir)) return 0;
        size_t len = (size_t)n;
        n = snprintf(dir + len, sizeof dir - len, "/egcam");
        if (n < 0 || (size_t)n >= sizeof dir - len || make_dir(dir)) return 0;
    }
    n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return 0;
    }
    return 1;
}

/* The whole file at path into *buf (NULL when missing, unreadable or too large for a cache
 * this code wrote), its length into *len. */
static void cc_read(const char *path, unsigned char **buf_out, size_t *len_out)
{
    *buf_out = NULL;
    *len_out = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    unsigned char *buf = NULL;
    size_t len = 0, room = 0;
    for (;;) {
        if (len == room) {
            size_t nr = room ? room * 2 : 65536;
            if (nr > ((size_t)64 << 20)) break; /* not a cache this code wrote */
            unsigned char *nb = realloc(buf, nr);
            if (!nb) break;
            buf = nb;
            room = nr;
        }
        size_t got = fread(buf + len, 1, room - len, f);
        len += got;
        if (got == 0) break;
    }
    fclose(f);
    *buf_out = buf;
    *len_out = len;
}

/* The valid records of buf[0..len) into out[0..cap) (out NULL: only counted): a record at
 * each offset where one checks out, elsewhere one byte on, so that a torn record costs only
 * itself. */
static int cc_parse(const unsigned char *buf, size_t len, egc_choice *out, int cap)
{
    int n = 0;
    size_t o = 0;
    while (n < cap && buf && o + sizeof(cc_record) <= len) {
        cc_record r;
        memcpy(&r, buf + o, sizeof r);
        if (r.magic == CC_MAGIC && r.version == CC_VERSION && r.check == cc_check(&r)) {
            if (out) out[n] = r.c;
            n++;
            o += sizeof r;
        } else {
            o++;
        }
    }
    return n;
}

int egc_choice_cache_load(const char *path, egc_choice *out, int cap)
{
    if (!path || !*path || cap <= 0) return 0;
    unsigned char *buf;
    size_t len;
    cc_read(path, &buf, &len);
    int n = cc_parse(buf, len, out, cap);
    free(buf);
    return n;
}

int egc_choice_cache_load_all(const char *path, egc_choice **out)
{
    *out = NULL;
    if (!path || !*path) return 0;
    unsigned char *buf;
    size_t len;
    cc_read(path, &buf, &len);
    int n = cc_parse(buf, len, NULL, INT_MAX);
    if (n > 0 && !(*out = malloc((size_t)n * sizeof **out))) n = 0;
    if (n > 0) cc_parse(buf, len, *out, n);
    free(buf);
    return n;
}

int egc_choice_cache_append(const char *path, const egc_choice *c)
{
    if (!path || !*path || !c) return -1;
    cc_record r;
    memset(&r, 0, sizeof r); /* padding included, so that the check is of defined bytes */
    r.magic = CC_MAGIC;
    r.version = CC_VERSION;
    r.c = *c;
    r.check = cc_check(&r);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    ssize_t w = write(fd, &r, sizeof r);
    int rc = close(fd);
    return w == (ssize_t)sizeof r && rc == 0 ? 0 : -1;
}

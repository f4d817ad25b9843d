/* choice_cache.h: a file of timed choices kept across processes (the CUDA backend's
 * algorithm and fusion-path choices, made by timing at a layer's first batch), so that a later
 * process on the same machine makes the same choices without timing them again: the same
 * kernels, hence the same bits, and a shorter first batch.
 *
 * The file is a sequence of fixed-size records in the machine's byte order, each written by
 * one append: the magic "EGCC", the format version, a choice (key and value integers, whose
 * meaning is the writer's), and a check (a hash of the bytes before it). Readers take the
 * records whose magic, version and check hold and skip the others, so a record cut short by a
 * crash or written by another format version is ignored, never misread. Best effort
 * throughout: a cache that cannot be read or written is no error, only no cache.
 *
 * The folder: $EGC_CACHE_DIR, else $XDG_CACHE_HOME/egcam, else $HOME/.cache/egcam; none when
 * EGC_CUDA_CACHE=0 (or none of those variables is set). */
#ifndef EGC_CHOICE_CACHE_H
#define EGC_CHOICE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define EGC_CHOICE_KEY 28
#define EGC_CHOICE_VAL 3

typedef struct egc_choice {
    int64_t key[EGC_CHOICE_KEY];
    int64_t val[EGC_CHOICE_VAL];
} egc_choice;

/* The path of cache file `name` in the cache folder into buf (made, with its parent, when
 * missing). 1 on success; 0 with buf "" when there is no cache (EGC_CUDA_CACHE=0, no folder
 * variable set, the folder cannot be made, or the path does not fit in cap). */
int egc_choice_cache_path(const char *name, char *buf, size_t cap);

/* Reads the valid records of the file at path into out[0..cap) in file order and returns how
 * many (out NULL: only counts them, up to cap); 0 when the file is missing or unreadable. */
int egc_choice_cache_load(const char *path, egc_choice *out, int cap);

/* Every valid record of the file at path, in file order, into *out (malloc'd; the caller
 * frees it; NULL when none): one read of the file. Returns how many (0 when the file is
 * missing or unreadable, or the array cannot be had). */
int egc_choice_cache_load_all(const char *path, egc_choice **out);

/* Appends c to the file at path as one record (created when missing, mode 0644, one write
 * with O_APPEND, so that processes appending at once do not interleave within a record).
 * 0 when written whole, -1 otherwise. */
int egc_choice_cache_append(const char *path, const egc_choice *c);

#endif

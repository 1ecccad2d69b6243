/*
 * Index files by path: hosted builds only (compiled to nothing with
 * -DIVFPQ_EMBEDDED, which has no files). Everything else of the codecs
 * works on buffers and callbacks (io.c), so this file is thin:
 *  - save: write a temporary file next to the target, fsync, rename, so a
 *    crash or a full disk never leaves a half-written index under the name;
 *  - load: map the file and parse the mapping (no second copy of the bytes
 *    while converting); with IVFPQ_LOAD_ZERO_COPY the index keeps the
 *    mapping and ivfpq_free unmaps it. Streams (pipes...) that cannot be
 *    mapped are read through ivfpq_load.
 * POSIX; other systems get the stdio fallback without mapping.
 */
#if !defined(IVFPQ_EMBEDDED)

#if !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* MAP_POPULATE (Linux) */
#endif

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define HAVE_POSIX 1
#endif

#define IO_FAIL(log, ...) ivfpq__fail(log, IVFPQ_E_IO, __VA_ARGS__)

#if defined(HAVE_POSIX)
static int fd_write(void *user, const void *data, size_t len)
{
    int fd = *(int *)user;
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int fd_read(void *user, void *data, size_t len)
{
    int fd = *(int *)user;
    char *p = data;
    while (len) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) return 1; /* end of file */
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static void unmap(void *addr, size_t len) { munmap(addr, len); }
#else
static int file_write(void *user, const void *data, size_t len)
{
    return fwrite(data, 1, len, (FILE *)user) == len ? 0 : -1;
}
static int file_read(void *user, void *data, size_t len)
{
    FILE *f = user;
    if (fread(data, 1, len, f) == len) return 0;
    return ferror(f) ? -1 : 1;
}
#endif

int ivfpq_save_file(const ivfpq_index *idx, const char *path, ivfpq_file_format fmt)
{
    if (!idx) return IVFPQ_E_INVALID_ARG;
    const ivfpq_log *log = &idx->log;
    if (!path) return ivfpq__fail(log, IVFPQ_E_INVALID_ARG, "save: path is NULL");
    size_t plen = strlen(path), tlen = plen + 48;
    char *tmp = ivfpq__alloc(&idx->mem, tlen);
    if (!tmp) return ivfpq__fail(log, IVFPQ_E_NOMEM, "save: out of memory");
    static _Atomic unsigned counter; /* distinct temporary names for concurrent saves */
    int rc;
#if defined(HAVE_POSIX)
    ivfpq__snprintf(tmp, tlen, "%s.tmp%ld.%u", path, (long)getpid(), counter++);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) {
        rc = IO_FAIL(log, "save: cannot create '%s': %s", tmp, strerror(errno));
        ivfpq__free(&idx->mem, tmp);
        return rc;
    }
    rc = ivfpq_save(idx, fmt, fd_write, &fd);
    if (rc == IVFPQ_E_IO) rc = IO_FAIL(log, "save: writing '%s' failed: %s", tmp, strerror(errno));
    if (!rc && fsync(fd) != 0) rc = IO_FAIL(log, "save: fsync of '%s' failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && !rc) rc = IO_FAIL(log, "save: closing '%s' failed: %s", tmp, strerror(errno));
#else
    ivfpq__snprintf(tmp, tlen, "%s.tmp%u", path, counter++);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = IO_FAIL(log, "save: cannot create '%s': %s", tmp, strerror(errno));
        ivfpq__free(&idx->mem, tmp);
        return rc;
    }
    rc = ivfpq_save(idx, fmt, file_write, f);
    if (fclose(f) != 0 && !rc) rc = IO_FAIL(log, "save: closing '%s' failed", tmp);
    if (!rc) remove(path); /* rename does not replace on Windows */
#endif
    if (!rc && rename(tmp, path) != 0)
        rc = IO_FAIL(log, "save: cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (rc) remove(tmp);
    ivfpq__free(&idx->mem, tmp);
    return rc;
}

int ivfpq_load_file(ivfpq_index **out, const char *path, unsigned flags,
                    const ivfpq_load_options *opt)
{
    ivfpq_log log = {opt ? opt->log : NULL, opt ? opt->log_user : NULL};
    if (!out) return ivfpq__fail(&log, IVFPQ_E_INVALID_ARG, "load: out is NULL");
    *out = NULL;
    if (!path) return ivfpq__fail(&log, IVFPQ_E_INVALID_ARG, "load: path is NULL");
    int rc;
#if defined(HAVE_POSIX)
    int fd = open(path, O_RDONLY);
    if (fd < 0) return IO_FAIL(&log, "load: cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = IO_FAIL(&log, "load: cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || st.st_size == 0) {
        if (flags & IVFPQ_LOAD_ZERO_COPY) {
            close(fd);
            return ivfpq__fail(&log, S_ISREG(st.st_mode) ? IVFPQ_E_TRUNCATED : IVFPQ_E_UNSUPPORTED,
                               "load: '%s' %s", path,
                               S_ISREG(st.st_mode) ? "is empty (0 bytes)"
                                                   : "is not a regular file: it cannot be mapped");
        }
        rc = ivfpq_load(out, fd_read, &fd, opt); /* pipes, devices, empty files */
        close(fd);
        return rc;
    }
    if ((uintmax_t)st.st_size > SIZE_MAX) {
        close(fd);
        return ivfpq__fail(&log, IVFPQ_E_LIMIT, "load: '%s' is too large to map", path);
    }
    size_t len = (size_t)st.st_size;
    int mflags = MAP_PRIVATE;
#ifdef MAP_POPULATE
    /* every byte will be read (copied or checksummed): map them all at once
     * rather than page by page; a lazily paged mapping only when skipping */
    if (!(flags & IVFPQ_LOAD_ZERO_COPY) || !(flags & IVFPQ_LOAD_SKIP_CHECKSUMS)) mflags |= MAP_POPULATE;
#endif
    void *map = mmap(NULL, len, PROT_READ, mflags, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return IO_FAIL(&log, "load: cannot map '%s': %s", path, strerror(errno));
    rc = ivfpq_load_from_buffer(out, map, len, flags, opt);
    if (rc || !(flags & IVFPQ_LOAD_ZERO_COPY)) {
        munmap(map, len);
        return rc;
    }
    (*out)->release = unmap; /* the index now views the mapping */
    (*out)->release_ctx = map;
    (*out)->release_len = len;
    return IVFPQ_OK;
#else
    if (flags & IVFPQ_LOAD_ZERO_COPY)
        return ivfpq__fail(&log, IVFPQ_E_UNSUPPORTED,
                           "load: zero-copy file loading needs mmap (POSIX); use "
                           "ivfpq_load_from_buffer on a mapping");
    FILE *f = fopen(path, "rb");
    if (!f) return IO_FAIL(&log, "load: cannot open '%s': %s", path, strerror(errno));
    rc = ivfpq_load(out, file_read, f, opt);
    fclose(f);
    return rc;
#endif
}

#else
typedef int ivfpq_io_file_empty; /* ISO C: a translation unit must not be empty */
#endif

/*
 * Byte sources, sinks and the load budget shared by both index formats,
 * and the diagnosis of inputs that are not an index at all.
 *
 * Every read is bounds-checked against the buffer (or fails cleanly on a
 * short stream) and every allocation of a load goes through ivfpq__ld_alloc,
 * which enforces max_bytes: the two guarantees the parsers build on.
 */
#include "io.h"

void ivfpq__bswap_array(void *p, size_t count, size_t elem)
{
    unsigned char *b = p;
    for (size_t i = 0; i < count; i++, b += elem)
        for (size_t j = 0; j < elem / 2; j++) {
            unsigned char t = b[j];
            b[j] = b[elem - 1 - j];
            b[elem - 1 - j] = t;
        }
}

/* ------------------------------------------------------- load context */

int ivfpq__ld_init(ivfpq_ld *ld, const ivfpq_load_options *opt)
{
    memset(ld, 0, sizeof *ld);
    ivfpq__mem_init(&ld->mem, opt ? &opt->allocator : NULL);
    ld->log.fn = opt ? opt->log : NULL;
    ld->log.user = opt ? opt->log_user : NULL;
    ld->max_bytes = opt ? opt->max_bytes : 0;
    return IVFPQ_OK;
}

void *ivfpq__ld_alloc(ivfpq_ld *ld, size_t bytes, const char *what, int *rc)
{
    if (ld->max_bytes && (bytes > ld->max_bytes || ld->used > ld->max_bytes - bytes)) {
        *rc = ivfpq__fail(&ld->log, IVFPQ_E_LIMIT,
                          "load: %zu bytes for %s (with %zu already allocated) exceed "
                          "max_bytes = %zu",
                          bytes, what, ld->used, ld->max_bytes);
        return NULL;
    }
    if (!ld->mem.a.alloc) {
        *rc = ivfpq__fail(&ld->log, IVFPQ_E_NOMEM, "%s", ivfpq__no_heap);
        return NULL;
    }
    void *p = ivfpq__alloc(&ld->mem, bytes);
    if (!p) {
        *rc = ivfpq__fail(&ld->log, IVFPQ_E_NOMEM, "load: out of memory allocating %zu bytes for %s",
                          bytes, what);
        return NULL;
    }
    ld->used += bytes;
    *rc = IVFPQ_OK;
    return p;
}

void ivfpq__ld_free(ivfpq_ld *ld, void *p, size_t bytes)
{
    if (!p) return;
    ivfpq__free(&ld->mem, p);
    ld->used -= bytes;
}

/* ------------------------------------------------------- byte sources */

static int src_fail(ivfpq_src *s, int rc, size_t n, const char *what)
{
    const ivfpq_log *log = &s->ld->log;
    if (s->buf)
        return ivfpq__fail(log, IVFPQ_E_TRUNCATED,
                           "truncated: the data ends at byte %zu, but %s needs %zu bytes at "
                           "byte %llu",
                           s->len, what, n, (unsigned long long)s->pos);
    if (rc > 0)
        return ivfpq__fail(log, IVFPQ_E_TRUNCATED,
                           "truncated: the stream ended while reading %s (%zu bytes at byte %llu)",
                           what, n, (unsigned long long)s->pos);
    return ivfpq__fail(log, IVFPQ_E_IO, "read callback failed (%d) reading %s (%zu bytes at byte %llu)",
                       rc, what, n, (unsigned long long)s->pos);
}

int ivfpq__src_read(ivfpq_src *s, void *dst, size_t n, const char *what)
{
    if (n == 0) return IVFPQ_OK;
    if (s->buf) {
        if (n > s->len - (size_t)s->pos) return src_fail(s, 1, n, what);
        memcpy(dst, s->buf + s->pos, n);
        s->pos += n;
        return IVFPQ_OK;
    }
    unsigned char *d = dst;
    size_t done = 0;
    if (s->head_pos < s->head_len) {
        size_t h = s->head_len - s->head_pos;
        if (h > n) h = n;
        memcpy(d, s->head + s->head_pos, h);
        s->head_pos += h;
        done = h;
    }
    if (done < n) {
        int rc = s->read(s->user, d + done, n - done);
        if (rc != 0) {
            s->pos += done;
            return src_fail(s, rc, n - done, what);
        }
    }
    s->pos += n;
    return IVFPQ_OK;
}

int ivfpq__src_skip(ivfpq_src *s, uint64_t n, const char *what)
{
    if (s->buf) {
        if (n > ivfpq__src_left(s)) return src_fail(s, 1, (size_t)(n > SIZE_MAX ? SIZE_MAX : n), what);
        s->pos += n;
        return IVFPQ_OK;
    }
    unsigned char tmp[256];
    while (n) {
        size_t c = n < sizeof tmp ? (size_t)n : sizeof tmp;
        int rc = ivfpq__src_read(s, tmp, c, what);
        if (rc) return rc;
        n -= c;
    }
    return IVFPQ_OK;
}

int ivfpq__src_array(ivfpq_src *s, void *dst, size_t count, size_t elem, const char *what)
{
    size_t n;
    if (!ivfpq__mul(count, elem, &n))
        return ivfpq__fail(&s->ld->log, IVFPQ_E_CORRUPT, "%s: %zu elements overflow", what, count);
    int rc = ivfpq__src_read(s, dst, n, what);
#if IVFPQ_BIG_ENDIAN
    if (!rc && elem > 1) ivfpq__bswap_array(dst, count, elem);
#endif
    return rc;
}

int ivfpq__src_view(ivfpq_src *s, size_t n, const unsigned char **p, void **owned,
                    const char *what)
{
    *owned = NULL;
    if (s->buf) {
        if (n > s->len - (size_t)s->pos) return src_fail(s, 1, n, what);
        *p = s->buf + s->pos;
        s->pos += n;
        return IVFPQ_OK;
    }
    if (n == 0) {
        *p = s->head; /* any valid pointer */
        return IVFPQ_OK;
    }
    int rc;
    void *m = ivfpq__ld_alloc(s->ld, n, what, &rc);
    if (!m) return rc;
    if ((rc = ivfpq__src_read(s, m, n, what))) {
        ivfpq__ld_free(s->ld, m, n);
        return rc;
    }
    *owned = m;
    *p = m;
    return IVFPQ_OK;
}

/* ---------------------------------------------------------- sinks */

int ivfpq__sink_put(ivfpq_sink *k, const void *data, size_t len)
{
    if (len && k->write && k->write(k->user, data, len) != 0)
        return ivfpq__fail(k->log, IVFPQ_E_IO, "save: the write callback failed at byte %llu",
                           (unsigned long long)k->pos);
    k->pos += len;
    return IVFPQ_OK;
}

int ivfpq__sink_zeros(ivfpq_sink *k, size_t len)
{
    static const unsigned char zeros[64];
    while (len) {
        size_t c = len < sizeof zeros ? len : sizeof zeros;
        int rc = ivfpq__sink_put(k, zeros, c);
        if (rc) return rc;
        len -= c;
    }
    return IVFPQ_OK;
}

int ivfpq__sink_array(ivfpq_sink *k, const void *data, size_t count, size_t elem)
{
#if IVFPQ_BIG_ENDIAN
    unsigned char tmp[4096];
    const unsigned char *p = data;
    size_t per = sizeof tmp / elem;
    while (count) {
        size_t c = count < per ? count : per;
        memcpy(tmp, p, c * elem);
        if (elem > 1) ivfpq__bswap_array(tmp, c, elem);
        int rc = ivfpq__sink_put(k, tmp, c * elem);
        if (rc) return rc;
        p += c * elem;
        count -= c;
    }
    return IVFPQ_OK;
#else
    return ivfpq__sink_put(k, data, count * elem);
#endif
}

/* ------------------------------------------------------ what is this? */

/* Every fourcc faiss has used for a top-level index record (index_write.cpp,
 * index_read.cpp). Ours to read are marked in io_faiss.c; the others get a
 * clear "not supported" rather than "not an index". */
static const char *const faiss_fourccs[] = {
    "IxF2", "IxFI", "IxFl", "IwFl", "IPfs", "IwPf", "IxRF", "IxMp", "IxM2", "IxRP", "IxHe",
    "IxPq", "IxRq", "IxLS", "IxPR", "IxPL", "ILfs", "IRfs", "IPLf", "IPRf", "IVLf", "IVRf",
    "NPLf", "NPRf", "ImRQ", "Ix2L", "IxSQ", "IxLa", "IwFd", "IwSq", "IwLS", "IwRQ", "IwPL",
    "IwPR", "IwSh", "IwPQ", "IwQR", "IwIQ", "IxPT", "Imiq", "IHNf", "IHNp", "IHNs", "IHN2",
    "IHc2", "INSf", "INSp", "INSs", "INNf", "IRMf", "IRMh", "Ixrq", "Iwrq", "ISVD", "IS48",
    "IS44", "IvFl", "IvFL", "IvPQ", "IvSQ", "IxPQ", "IBxF", "IBwF", "IBHf", "IBMp", "IBM2",
    "IBFf", "IBHh", "IBHm",
};

int ivfpq__is_faiss_fourcc(const unsigned char *p)
{
    for (size_t i = 0; i < sizeof faiss_fourccs / sizeof *faiss_fourccs; i++)
        if (memcmp(p, faiss_fourccs[i], 4) == 0) return 1;
    return 0;
}

static int starts(const unsigned char *p, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len >= n && memcmp(p, lit, n) == 0;
}

int ivfpq__diagnose_format(const unsigned char *p, size_t len, const ivfpq_log *log)
{
    static const char magic[] = IVFPQ_NATIVE_MAGIC;
#define NOT_INDEX(...) ivfpq__fail(log, IVFPQ_E_FORMAT, __VA_ARGS__)
    if (len == 0) return ivfpq__fail(log, IVFPQ_E_TRUNCATED, "not an index: the data is empty (0 bytes)");
    if (len < 8 && memcmp(p, magic, len) == 0)
        return ivfpq__fail(log, IVFPQ_E_TRUNCATED,
                           "truncated: only %zu bytes, the start of a libivfpq index header", len);
    if (starts(p, len, "\x93NUMPY"))
        return NOT_INDEX("not an index: this is a NumPy .npy array (magic \\x93NUMPY); build an "
                         "index from the vectors first");
    if (starts(p, len, "version https://git-lfs") || starts(p, len, "version http"))
        return NOT_INDEX("not an index: this is a Git LFS pointer (a small text file starting "
                         "\"version https://git-lfs...\"); fetch the real file with `git lfs pull`");
    if (starts(p, len, "\x89HDF\r\n\x1a\n"))
        return NOT_INDEX("not an index: this is an HDF5 file (e.g. an ann-benchmarks data set)");
    if (starts(p, len, "\x1f\x8b"))
        return NOT_INDEX("not an index: this is gzip-compressed data; decompress it first");
    if (starts(p, len, "PK\x03\x04"))
        return NOT_INDEX("not an index: this is a ZIP archive; extract the index file first");
    if (starts(p, len, "<!DOCTYPE") || starts(p, len, "<!doctype") || starts(p, len, "<html") ||
        starts(p, len, "<HTML") || starts(p, len, "<?xml"))
        return NOT_INDEX("not an index: this is an HTML/XML page (a failed download?)");
    if (len >= 4) {
        int text = 1;
        size_t n = len < 16 ? len : 16;
        for (size_t i = 0; i < n; i++)
            if (!((p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\n' || p[i] == '\r' || p[i] == '\t'))
                text = 0;
        char shown[8];
        for (int i = 0; i < 4; i++) shown[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
        shown[4] = '\0';
        if (text && !(len >= 4 && p[0] == 'I'))
            return NOT_INDEX("not an index: the data looks like text (starts \"%s...\")", shown);
        return NOT_INDEX("not an index: unknown format (first bytes %u %u %u %u, \"%s\"); "
                         "expected a libivfpq index or a faiss index file",
                         p[0], p[1], p[2], p[3], shown);
    }
    return ivfpq__fail(log, IVFPQ_E_TRUNCATED, "not an index: only %zu bytes", len);
#undef NOT_INDEX
}

/* ------------------------------------------------------------ shapes */

int ivfpq__check_shape(const ivfpq_ld *ld, const char *origin, int d, int metric,
                       const ivfpq_spec *s)
{
    const ivfpq_log *log = &ld->log;
#define BAD(...) ivfpq__fail(log, IVFPQ_E_CORRUPT, __VA_ARGS__)
    if (d < 1 || d > IVFPQ_MAX_D) return BAD("%s: dimension d = %d is out of range [1, %d]", origin, d, IVFPQ_MAX_D);
    if (metric != IVFPQ_METRIC_L2 && metric != IVFPQ_METRIC_INNER_PRODUCT)
        return BAD("%s: metric %d is neither inner product (0) nor L2 (1)", origin, metric);
    if (s->nlist < 1 || s->nlist > IVFPQ_MAX_NLIST)
        return BAD("%s: nlist = %zu is out of range [1, %zu]", origin, s->nlist, (size_t)IVFPQ_MAX_NLIST);
    if (!s->has_ivf && s->nlist != 1) return BAD("%s: nlist = %zu without IVF", origin, s->nlist);
    if (s->has_pq) {
        if (s->M < 1 || s->M > IVFPQ_MAX_M)
            return BAD("%s: M = %zu sub-quantizers is out of range [1, %d]", origin, s->M, IVFPQ_MAX_M);
        if ((size_t)d % s->M != 0) return BAD("%s: M = %zu does not divide d = %d", origin, s->M, d);
    } else if (s->M != 0) {
        return BAD("%s: M = %zu without PQ codes", origin, s->M);
    }
    if (s->by_residual && !(s->has_ivf && s->has_pq))
        return BAD("%s: residual encoding needs IVF and PQ", origin);
    if (s->refine && !s->has_pq) return BAD("%s: refine (RFlat) needs PQ codes", origin);
    return IVFPQ_OK;
#undef BAD
}

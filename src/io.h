/*
 * Plumbing shared by the index codecs (io.c native, io_faiss.c faiss):
 * little-endian field access, byte sources (a buffer or a read callback)
 * and sinks (a write callback or a byte counter), the load context that
 * enforces max_bytes, and CRC32C. No stdio: all of this works in embedded
 * builds.
 */
#ifndef IVFPQ_IO_H
#define IVFPQ_IO_H

#include "internal.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define IVFPQ_BIG_ENDIAN 1
#else
#define IVFPQ_BIG_ENDIAN 0
#endif

/* ------------------------------------------------------------- crc32c */

/* CRC32C of data, continuing from crc (0 to start). Hardware when the CPU
 * has it, else tables; both give the same value. */
uint32_t ivfpq__crc32c(uint32_t crc, const void *data, size_t len);
uint32_t ivfpq__crc32c_sw(uint32_t crc, const void *data, size_t len);
int ivfpq__crc32c_hw_available(void);

/* ------------------------------------------------------ little endian */

static inline uint16_t ivfpq__le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t ivfpq__le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t ivfpq__le64(const unsigned char *p)
{
    return (uint64_t)ivfpq__le32(p) | (uint64_t)ivfpq__le32(p + 4) << 32;
}
static inline void ivfpq__put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static inline void ivfpq__put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void ivfpq__put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline float ivfpq__lef32(const unsigned char *p)
{
    uint32_t u = ivfpq__le32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Reverses the bytes of each of the count elements of size elem (2, 4, 8)
 * in place: host order <-> little endian on big-endian hosts. */
void ivfpq__bswap_array(void *p, size_t count, size_t elem);

/* ------------------------------------------------------- load context */

typedef struct ivfpq_ld {
    ivfpq_mem mem;
    ivfpq_log log;
    size_t max_bytes;  /* 0 = unlimited */
    size_t used;       /* bytes live in allocations made through ld_alloc */
} ivfpq_ld;

int ivfpq__ld_init(ivfpq_ld *ld, const ivfpq_load_options *opt);
/* Allocates bytes (>0) under the max_bytes budget and sets *rc: IVFPQ_OK,
 * or on failure IVFPQ_E_LIMIT / IVFPQ_E_NOMEM after logging what it was for. */
void *ivfpq__ld_alloc(ivfpq_ld *ld, size_t bytes, const char *what, int *rc);
void ivfpq__ld_free(ivfpq_ld *ld, void *p, size_t bytes);

/* ------------------------------------------------------- byte sources */

typedef struct ivfpq_src {
    const unsigned char *buf; /* buffer source if non-NULL ... */
    size_t len;               /* ... of len bytes */
    ivfpq_read_fn read;       /* else a stream */
    void *user;
    unsigned char head[32];   /* stream bytes already read to detect the format */
    size_t head_len, head_pos;
    uint64_t pos;             /* bytes consumed so far */
    ivfpq_ld *ld;
} ivfpq_src;

/* Bytes left in a buffer source; UINT64_MAX for a stream (unknown). */
static inline uint64_t ivfpq__src_left(const ivfpq_src *s)
{
    return s->buf ? (uint64_t)(s->len - (size_t)s->pos) : UINT64_MAX;
}
/* Reads n bytes; on failure logs "truncated at byte ..." naming `what`. */
int ivfpq__src_read(ivfpq_src *s, void *dst, size_t n, const char *what);
int ivfpq__src_skip(ivfpq_src *s, uint64_t n, const char *what);
/* Reads count elements of elem bytes (little endian in the data) into dst
 * in host order. */
int ivfpq__src_array(ivfpq_src *s, void *dst, size_t count, size_t elem, const char *what);
/* n bytes as a pointer: into the buffer itself for buffer sources
 * (*owned = NULL), or read into an allocation of the load context
 * (*owned set; free with ivfpq__ld_free(ld, *owned, n)). */
int ivfpq__src_view(ivfpq_src *s, size_t n, const unsigned char **p, void **owned,
                    const char *what);

/* ---------------------------------------------------------- sinks */

typedef struct ivfpq_sink {
    ivfpq_write_fn write;  /* NULL: only count */
    void *user;
    uint64_t pos;          /* bytes emitted so far */
    const ivfpq_log *log;
} ivfpq_sink;

int ivfpq__sink_put(ivfpq_sink *k, const void *data, size_t len);
int ivfpq__sink_zeros(ivfpq_sink *k, size_t len);
/* Writes count host-order elements of elem bytes as little endian. */
int ivfpq__sink_array(ivfpq_sink *k, const void *data, size_t count, size_t elem);

/* ------------------------------------------------------ code blocks */

/* The nibbles of slots r..31 in a 16-byte half of a 32-byte piece of a
 * FastScan block (layout in kernels.h: byte b holds vector w in its low
 * nibble and w + 16 in its high one, w = b/2 + 8*(b odd)). r in 1..31. */
static inline void ivfpq__pq4_tail_mask(size_t r, unsigned char mask[16])
{
    for (size_t b = 0; b < 16; b++) {
        size_t w = b / 2 + 8 * (b & 1);
        mask[b] = (unsigned char)((w >= r ? 0x0f : 0) | (w + 16 >= r ? 0xf0 : 0));
    }
}

/* --------------------------------------------------------- model data */

/* Whether a trained model array is something training can produce: what
 * = 'c' centroids (finite: k-means means of finite data), 'n' centroid
 * norms (>= 0, +inf when a huge centroid's norm overflows), 'p' PQ
 * codebooks (not NaN; residuals of huge vectors may overflow to inf).
 * Sets *bad to the first offending index. */
static inline int ivfpq__model_ok(const float *x, size_t n, char what, size_t *bad)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        int ok = what == 'c' ? v * 0.0f == 0.0f : what == 'n' ? v >= 0.0f : v == v;
        if (!ok) {
            *bad = i;
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------- formats */

#define IVFPQ_NATIVE_MAGIC "\x89IVFPQ\r\n"

/* Names what the first bytes are when they are not an index we read, as
 * an IVFPQ_E_FORMAT (or _TRUNCATED) failure through log. */
int ivfpq__diagnose_format(const unsigned char *p, size_t len, const ivfpq_log *log);
/* 1 if the 4 bytes are the fourcc of a faiss index record we know of. */
int ivfpq__is_faiss_fourcc(const unsigned char *p);

/* Bytes of the native file of an index of this shape (what
 * ivfpq_saved_size reports): the one place the layout is computed, also
 * for ivfpq_footprint (memplan.c). Callers keep the shape within the
 * format's limits, so nothing overflows 64 bits. */
uint64_t ivfpq__native_bytes(const ivfpq_spec *s, int d, int trained, uint64_t ntotal,
                             uint64_t nblocks);
int ivfpq__native_save(const ivfpq_index *idx, ivfpq_sink *k);
int ivfpq__native_load(ivfpq_index **out, ivfpq_src *s, unsigned flags);
int ivfpq__faiss_save(const ivfpq_index *idx, ivfpq_sink *k);
int ivfpq__faiss_load(ivfpq_index **out, ivfpq_src *s);

/* Checks the parameters of an index description read from a file against
 * the limits ivfpq_index_factory enforces; logs the first bad one. */
int ivfpq__check_shape(const ivfpq_ld *ld, const char *origin, int d, int metric,
                       const ivfpq_spec *s);

#endif /* IVFPQ_IO_H */

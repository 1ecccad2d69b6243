/*
 * Fuzz target: the index loaders (native and faiss formats) on arbitrary
 * bytes, as a copy, zero-copy and a stream. Either the load fails with a
 * file status, *out NULL and a logged message, or the index is usable:
 * it searches, and saved again (native) it loads back to an index that
 * searches bit-identically and re-saves to the same bytes. Native inputs
 * are also tried with their checksums recomputed, so that mutations reach
 * the semantic checks behind the CRCs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io.h" /* CRC32C and little-endian helpers, to re-seal mutated native files */
#include "ivfpq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_msgs;
static void count(void *user, int level, int status, const char *msg)
{
    (void)user;
    (void)status;
    if (level == IVFPQ_LOG_ERROR && msg && msg[0]) g_msgs++;
}

typedef struct buf { uint8_t *p; size_t len, cap; } buf;
static int put(void *user, const void *data, size_t len)
{
    buf *b = user;
    if (b->len + len > b->cap) {
        size_t cap = (b->len + len) * 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

typedef struct rd { const uint8_t *p; size_t len, pos; } rd;
static int get(void *user, void *data, size_t len)
{
    rd *r = user;
    if (len > r->len - r->pos) return 1;
    memcpy(data, r->p + r->pos, len);
    r->pos += len;
    return 0;
}

static int file_status(int rc)
{
    return rc == IVFPQ_E_FORMAT || rc == IVFPQ_E_CORRUPT || rc == IVFPQ_E_TRUNCATED ||
           rc == IVFPQ_E_CHECKSUM || rc == IVFPQ_E_VERSION || rc == IVFPQ_E_LIMIT ||
           rc == IVFPQ_E_UNSUPPORTED || rc == IVFPQ_E_NOMEM || rc == IVFPQ_E_INVALID_ARG;
}

/* Search results of a small fixed batch; 0 if the index cannot be searched here. */
static int probe(const ivfpq_index *idx, float *D, int64_t *I)
{
    int d = ivfpq_dim(idx);
    if (d > 4096 || !ivfpq_is_trained(idx)) return 0;
    float *q = malloc(2 * (size_t)d * sizeof(float));
    if (!q) return 0;
    for (int i = 0; i < 2 * d; i++) q[i] = (float)((i * 7) % 11) - 5.0f;
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 2;
    p.k_factor = 2.0f;
    int rc = ivfpq_search(idx, 2, q, 3, &p, D, I);
    free(q);
    if (rc != IVFPQ_OK) abort();
    return 1;
}

/* Recomputes the section and header CRCs of a native image in place. */
static void reseal(uint8_t *p, size_t size)
{
    uint32_t H = ivfpq__le32(p + 12), ns = ivfpq__le32(p + 28);
    if (H > size || ns > 64 || 192 + (size_t)ns * 32 > H) return;
    for (uint32_t i = 0; i < ns; i++) {
        uint8_t *e = p + 192 + 32 * (size_t)i;
        uint64_t off = ivfpq__le64(e + 8), n = ivfpq__le64(e + 16);
        if (off <= size && n <= size - off) ivfpq__put32(e + 24, ivfpq__crc32c(0, p + off, (size_t)n));
    }
    memset(p + 124, 0, 4);
    ivfpq__put32(p + 124, ivfpq__crc32c(0, p, H));
}

static void one(const uint8_t *data, size_t size, int sealed);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size, 0);
    if (size >= 192 && memcmp(data, IVFPQ_NATIVE_MAGIC, 8) == 0) one(data, size, 1);
    return 0;
}

static void one(const uint8_t *data, size_t size, int sealed)
{
    ivfpq_load_options o = {{0}, count, NULL, (size_t)64 << 20};
    uint8_t *al = aligned_alloc(64, (size_t)(size + 64) / 64 * 64);
    if (!al) return;
    if (size) memcpy(al, data, size);
    if (sealed) reseal(al, size);
    for (int mode = 0; mode < 3; mode++) {
        ivfpq_index *idx = (ivfpq_index *)&o;
        g_msgs = 0;
        int rc;
        if (mode == 2) {
            rd r = {al, size, 0};
            rc = ivfpq_load(&idx, get, &r, &o);
        } else {
            rc = ivfpq_load_from_buffer(&idx, al, size, mode ? IVFPQ_LOAD_ZERO_COPY : 0, &o);
        }
        if (rc != IVFPQ_OK) {
            if (idx || g_msgs < 1 || !file_status(rc)) abort();
            continue;
        }
        float D[6], D2[6];
        int64_t I[6], I2[6];
        int searched = probe(idx, D, I);
        buf a = {NULL, 0, 0}, b = {NULL, 0, 0}, f = {NULL, 0, 0};
        if (ivfpq_save(idx, IVFPQ_FORMAT_NATIVE, put, &a) != IVFPQ_OK) abort();
        ivfpq_index *again = NULL;
        if (ivfpq_load_from_buffer(&again, a.p, a.len, 0, &o) != IVFPQ_OK) abort();
        if (searched && (!probe(again, D2, I2) || memcmp(D, D2, sizeof D) || memcmp(I, I2, sizeof I)))
            abort();
        if (ivfpq_save(again, IVFPQ_FORMAT_NATIVE, put, &b) != IVFPQ_OK || a.len != b.len ||
            memcmp(a.p, b.p, a.len))
            abort();
        /* faiss output of anything we accept is accepted back */
        if (ivfpq_save(idx, IVFPQ_FORMAT_FAISS, put, &f) != IVFPQ_OK) abort();
        ivfpq_free(again);
        again = NULL;
        if (ivfpq_load_from_buffer(&again, f.p, f.len, 0, &o) != IVFPQ_OK) abort();
        ivfpq_free(again);
        free(a.p);
        free(b.p);
        free(f.p);
        ivfpq_free(idx);
    }
    free(al);
}

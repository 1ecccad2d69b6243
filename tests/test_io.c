/* Native and faiss save/load: round trips with bit-identical search,
 * zero-copy from const memory, streams, files, and hostile input
 * (truncation at every byte, random bit flips, OOM, limits). */
#define _GNU_SOURCE /* memmem, mkdtemp */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "io.h"

/* ------------------------------------------------------------ helpers */

typedef struct membuf {
    unsigned char *p;
    size_t len, cap;
    size_t fail_after; /* write fails once len would exceed this (0 = never) */
} membuf;

static int mb_write(void *user, const void *data, size_t len)
{
    membuf *m = user;
    if (m->fail_after && m->len + len > m->fail_after) return -1;
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + len) cap *= 2;
        unsigned char *q = realloc(m->p, cap);
        if (!q) return -1;
        m->p = q;
        m->cap = cap;
    }
    memcpy(m->p + m->len, data, len);
    m->len += len;
    return 0;
}

typedef struct reader {
    const unsigned char *p;
    size_t len, pos;
} reader;

static int rd_fn(void *user, void *data, size_t len)
{
    reader *r = user;
    if (len > r->len - r->pos) {
        r->pos = r->len;
        return 1;
    }
    memcpy(data, r->p + r->pos, len);
    r->pos += len;
    return 0;
}

static void save_mem(const ivfpq_index *idx, ivfpq_file_format fmt, membuf *m)
{
    memset(m, 0, sizeof *m);
    assert_int_equal(ivfpq_save(idx, fmt, mb_write, m), IVFPQ_OK);
    size_t sz = 0;
    assert_int_equal(ivfpq_saved_size(idx, fmt, &sz), IVFPQ_OK);
    assert_int_equal(sz, m->len);
}

/* A copy of bytes at a 64-byte aligned address (zero-copy needs >= 8). */
static unsigned char *aligned_copy(const void *p, size_t n)
{
    unsigned char *q = aligned_alloc(64, (n + 63) / 64 * 64);
    assert_non_null(q);
    memcpy(q, p, n);
    return q;
}

#define D 24
#define NB 700
#define NQ 23
#define K 7

static float *g_x; /* [NB + NQ, D] */

static int setup(void **state)
{
    (void)state;
    g_x = tu_synth(NB + NQ, D, 12, 99);
    return 0;
}
static int teardown(void **state)
{
    (void)state;
    free(g_x);
    return 0;
}

static ivfpq_index *build(const char *spec, ivfpq_metric metric, size_t nb, int custom_ids,
                          const ivfpq_options *opt)
{
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, D, spec, metric, opt), IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, NB, g_x), IVFPQ_OK);
    if (nb) {
        int64_t *ids = NULL;
        if (custom_ids) {
            ids = malloc(nb * sizeof *ids);
            /* 1: arbitrary labels; 2: a permutation of 0..nb-1 */
            for (size_t i = 0; i < nb; i++)
                ids[i] = custom_ids == 2 ? (int64_t)((i * 31) % nb) : (int64_t)(1000 + 7 * ((i * 31) % nb));
        }
        assert_int_equal(ivfpq_add(idx, nb, g_x, ids), IVFPQ_OK);
        free(ids);
    }
    return idx;
}

typedef struct results {
    float D_[NQ * K];
    int64_t I[NQ * K];
} results;

static void run_search(const ivfpq_index *idx, results *r)
{
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 3;
    p.k_factor = 3.0f;
    assert_int_equal(ivfpq_search(idx, NQ, g_x + (size_t)NB * D, K, &p, r->D_, r->I), IVFPQ_OK);
}

static void assert_same(const results *a, const results *b)
{
    assert_memory_equal(a->I, b->I, sizeof a->I);
    assert_memory_equal(a->D_, b->D_, sizeof a->D_); /* distance bits too */
}

static const char *const kSpecs[] = {
    "Flat",         "IVF6,Flat",          "PQ8x4fs",          "PQ3x4fs",
    "IVF6,PQ8x4fs", "IVF6,PQ3x4fsr",      "IVF6,PQ8x4fsr",    "PQ8x4fs,RFlat",
    "PQ3x4fs,RFlat", "IVF6,PQ8x4fs,RFlat", "IVF6,PQ3x4fsr,RFlat",
};
#define NSPECS (sizeof kSpecs / sizeof *kSpecs)

/* ------------------------------------------------------------ crc32c */

static void crc32c_known_values(void **state)
{
    (void)state;
    assert_int_equal(ivfpq__crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(ivfpq__crc32c_sw(0, "123456789", 9), 0xE3069283u);
    unsigned char b[32];
    memset(b, 0, 32);
    assert_int_equal(ivfpq__crc32c(0, b, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    memset(b, 0xff, 32);
    assert_int_equal(ivfpq__crc32c(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) b[i] = (unsigned char)i;
    assert_int_equal(ivfpq__crc32c_sw(0, b, 32), 0x46DD794Eu);
    /* hardware == tables for every length and alignment, and streaming */
    unsigned char *buf = malloc(4200);
    for (int i = 0; i < 4200; i++) buf[i] = (unsigned char)(i * 131 + (i >> 3));
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n < 4100; n += 1 + n / 7) {
            uint32_t a = ivfpq__crc32c(0, buf + off, n), s = ivfpq__crc32c_sw(0, buf + off, n);
            assert_int_equal(a, s);
            uint32_t part = ivfpq__crc32c(ivfpq__crc32c(0, buf + off, n / 3), buf + off + n / 3,
                                          n - n / 3);
            assert_int_equal(part, s);
        }
    free(buf);
    /* long buffers take the 3-stream paths (blocks of 3 x 8192 and 3 x 256) */
    size_t big = 200000;
    buf = malloc(big + 16);
    for (size_t i = 0; i < big + 16; i++) buf[i] = (unsigned char)((i * 2654435761u) >> 13);
    for (size_t n = 24000; n < big; n = n * 3 / 2 + 77)
        for (size_t off = 0; off < 16; off += 5)
            assert_int_equal(ivfpq__crc32c(0, buf + off, n), ivfpq__crc32c_sw(0, buf + off, n));
    assert_int_equal(ivfpq__crc32c(ivfpq__crc32c(0, buf, 30000), buf + 30000, big - 30000),
                     ivfpq__crc32c_sw(0, buf, big));
    free(buf);
}

/* ------------------------------------------------------- round trips */

static void check_round_trip(const char *spec, ivfpq_metric metric, int custom_ids,
                             ivfpq_file_format fmt)
{
    ivfpq_index *idx = build(spec, metric, NB, custom_ids, NULL);
    results want, got;
    run_search(idx, &want);
    membuf m;
    save_mem(idx, fmt, &m);

    /* copy from a buffer */
    ivfpq_index *c;
    assert_int_equal(ivfpq_load_from_buffer(&c, m.p, m.len, 0, NULL), IVFPQ_OK);
    ivfpq_info a, b;
    ivfpq_get_info(idx, &a);
    ivfpq_get_info(c, &b);
    assert_string_equal(a.factory, b.factory);
    assert_int_equal(b.ntotal, NB);
    assert_int_equal(b.metric, metric);
    run_search(c, &got);
    assert_same(&want, &got);
    /* saving the loaded index gives the same bytes */
    membuf m2;
    save_mem(c, fmt, &m2);
    assert_int_equal(m2.len, m.len);
    assert_memory_equal(m2.p, m.p, m.len);
    free(m2.p);
    ivfpq_free(c);

    /* from a stream */
    reader r = {m.p, m.len, 0};
    assert_int_equal(ivfpq_load(&c, rd_fn, &r, NULL), IVFPQ_OK);
    assert_int_equal(r.pos, m.len);
    run_search(c, &got);
    assert_same(&want, &got);
    ivfpq_free(c);

    /* zero-copy, native only */
    unsigned char *al = aligned_copy(m.p, m.len);
    int rc = ivfpq_load_from_buffer(&c, al, m.len, IVFPQ_LOAD_ZERO_COPY, NULL);
    if (fmt == IVFPQ_FORMAT_NATIVE) {
        assert_int_equal(rc, IVFPQ_OK);
        run_search(c, &got);
        assert_same(&want, &got);
        ivfpq_free(c);
    } else {
        assert_int_equal(rc, IVFPQ_E_UNSUPPORTED);
        assert_null(c);
    }
    free(al);
    free(m.p);
    ivfpq_free(idx);
}

static void round_trip_native(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSPECS; s++)
        for (int metric = 0; metric < 2; metric++)
            for (int ids = 0; ids < 3; ids++)
                check_round_trip(kSpecs[s], (ivfpq_metric)metric, ids, IVFPQ_FORMAT_NATIVE);
}

static void round_trip_faiss(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSPECS; s++)
        for (int metric = 0; metric < 2; metric++)
            for (int ids = 0; ids < 3; ids++)
                check_round_trip(kSpecs[s], (ivfpq_metric)metric, ids, IVFPQ_FORMAT_FAISS);
}

/* Empty and untrained indexes, and cross-format conversion. */
static void round_trip_edge_cases(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSPECS; s++)
        for (int f = 0; f < 2; f++) {
            ivfpq_index *idx, *c;
            membuf m;
            /* untrained (Flat is always trained) */
            assert_int_equal(ivfpq_index_factory(&idx, D, kSpecs[s], IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
            save_mem(idx, (ivfpq_file_format)f, &m);
            assert_int_equal(ivfpq_load_from_buffer(&c, m.p, m.len, 0, NULL), IVFPQ_OK);
            assert_int_equal(ivfpq_is_trained(c), ivfpq_is_trained(idx));
            if (ivfpq_is_trained(c)) {
                ivfpq_free(c);
                free(m.p);
                ivfpq_free(idx);
                continue;
            }
            /* a loaded untrained index can be trained and filled */
            assert_int_equal(ivfpq_train(c, NB, g_x), IVFPQ_OK);
            assert_int_equal(ivfpq_add(c, 100, g_x, NULL), IVFPQ_OK);
            ivfpq_free(c);
            free(m.p);
            ivfpq_free(idx);
            /* trained, empty */
            idx = build(kSpecs[s], IVFPQ_METRIC_L2, 0, 0, NULL);
            save_mem(idx, (ivfpq_file_format)f, &m);
            assert_int_equal(ivfpq_load_from_buffer(&c, m.p, m.len, 0, NULL), IVFPQ_OK);
            assert_int_equal(ivfpq_ntotal(c), 0);
            results r;
            run_search(c, &r);
            assert_int_equal(r.I[0], -1);
            ivfpq_free(c);
            free(m.p);
            ivfpq_free(idx);
        }
    /* training options survive (an untrained index trains the same after a load) */
    {
        ivfpq_options o;
        memset(&o, 0, sizeof o);
        o.seed = 77;
        o.coarse_niter = 3;
        o.pq_niter = 2000000;
        o.max_points_per_centroid = 5;
        o.min_points_per_centroid = 1000000;
        o.pq_train_points = 123;
        ivfpq_index *idx, *c;
        assert_int_equal(ivfpq_index_factory(&idx, D, "IVF6,PQ8x4fsr,RFlat", IVFPQ_METRIC_L2, &o), IVFPQ_OK);
        membuf m, m2;
        save_mem(idx, IVFPQ_FORMAT_NATIVE, &m);
        assert_int_equal(ivfpq_load_from_buffer(&c, m.p, m.len, 0, NULL), IVFPQ_OK);
        save_mem(c, IVFPQ_FORMAT_NATIVE, &m2);
        assert_int_equal(m.len, m2.len);
        assert_memory_equal(m.p, m2.p, m.len);
        assert_non_null(memmem(m.p, m.len, "IVF6,PQ8x4fsr,RFlat", 19)); /* the factory string */
        ivfpq_free(c);
        ivfpq_free(idx);
        free(m.p);
        free(m2.p);
    }
    /* native -> faiss -> native keeps the search results */
    for (size_t s = 0; s < NSPECS; s++) {
        ivfpq_index *idx = build(kSpecs[s], IVFPQ_METRIC_INNER_PRODUCT, NB, 1, NULL), *a, *b;
        results want, got;
        run_search(idx, &want);
        membuf m, m2;
        save_mem(idx, IVFPQ_FORMAT_FAISS, &m);
        assert_int_equal(ivfpq_load_from_buffer(&a, m.p, m.len, 0, NULL), IVFPQ_OK);
        save_mem(a, IVFPQ_FORMAT_NATIVE, &m2);
        unsigned char *al = aligned_copy(m2.p, m2.len);
        assert_int_equal(ivfpq_load_from_buffer(&b, al, m2.len, IVFPQ_LOAD_ZERO_COPY, NULL), IVFPQ_OK);
        run_search(b, &got);
        assert_same(&want, &got);
        ivfpq_free(a);
        ivfpq_free(b);
        free(al);
        ivfpq_free(idx);
        free(m.p);
        free(m2.p);
    }
}

/* A loaded index can be modified (it converts to owned lists) and the
 * result is the same as modifying the original. */
static void loaded_index_is_mutable(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSPECS; s++)
        for (int f = 0; f < 2; f++) {
            ivfpq_index *idx = build(kSpecs[s], IVFPQ_METRIC_L2, 400, 0, NULL), *c;
            membuf m;
            save_mem(idx, (ivfpq_file_format)f, &m);
            assert_int_equal(ivfpq_load_from_buffer(&c, m.p, m.len, 0, NULL), IVFPQ_OK);
            assert_int_equal(ivfpq_add(idx, NB - 400, g_x + 400 * D, NULL), IVFPQ_OK);
            assert_int_equal(ivfpq_add(c, NB - 400, g_x + 400 * D, NULL), IVFPQ_OK);
            results a, b;
            run_search(idx, &a);
            run_search(c, &b);
            assert_same(&a, &b);
            assert_int_equal(ivfpq_reset(c), IVFPQ_OK);
            assert_int_equal(ivfpq_ntotal(c), 0);
            ivfpq_free(c);
            ivfpq_free(idx);
            free(m.p);
        }
}

/* ------------------------------------------------------ zero-copy */

typedef struct strict_alloc {
    long calls, live;
    size_t bytes;
    int fail_all;
} strict_alloc;

static void *sa_alloc(void *o, size_t n)
{
    strict_alloc *a = o;
    a->calls++;
    if (a->fail_all) return NULL;
    void *p = malloc(n);
    if (p) {
        a->live++;
        a->bytes += n;
    }
    return p;
}
static void sa_free(void *o, void *p)
{
    strict_alloc *a = o;
    a->live--;
    free(p);
}

static void zero_copy_const_no_alloc(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSPECS; s++) {
        ivfpq_index *idx = build(kSpecs[s], IVFPQ_METRIC_L2, NB, 1, NULL);
        results want, got;
        run_search(idx, &want);
        membuf m;
        save_mem(idx, IVFPQ_FORMAT_NATIVE, &m);
        const unsigned char *image = aligned_copy(m.p, m.len); /* read only from here on */
        strict_alloc sa = {0, 0, 0, 0};
        tu_log lg;
        memset(&lg, 0, sizeof lg);
        ivfpq_load_options o = {{sa_alloc, sa_free, &sa}, tu_log_fn, &lg, 0};
        ivfpq_index *c;
        assert_int_equal(ivfpq_load_from_buffer(&c, image, m.len, IVFPQ_LOAD_ZERO_COPY, &o), IVFPQ_OK);
        assert_int_equal(sa.calls, 1); /* the index struct, nothing else */
        assert_true(sa.bytes < 1024);
        sa.fail_all = 1;
        ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
        p.nprobe = 3;
        p.k_factor = 3.0f;
        size_t ws = 0;
        assert_int_equal(ivfpq_search_workspace_size(c, NQ, K, &p, &ws), IVFPQ_OK);
        void *w = malloc(ws);
        assert_int_equal(ivfpq_search_ws(c, NQ, g_x + (size_t)NB * D, K, &p, got.D_, got.I, w, ws),
                         IVFPQ_OK);
        assert_same(&want, &got);
        /* allocating search fails cleanly, modifications are refused */
        assert_int_equal(ivfpq_search(c, NQ, g_x + (size_t)NB * D, K, &p, got.D_, got.I), IVFPQ_E_NOMEM);
        assert_int_equal(ivfpq_add(c, 1, g_x, NULL), IVFPQ_E_READONLY);
        assert_int_equal(ivfpq_reset(c), IVFPQ_E_READONLY);
        assert_int_equal(ivfpq_train(c, NB, g_x), IVFPQ_E_READONLY);
        float v[D];
        if (strstr(kSpecs[s], "PQ") && !strstr(kSpecs[s], "RFlat"))
            assert_int_equal(ivfpq_reconstruct(c, 1000, v), IVFPQ_E_UNSUPPORTED);
        else
            assert_int_equal(ivfpq_reconstruct(c, 1000, v), IVFPQ_OK);
        ivfpq_free(c);
        assert_int_equal(sa.live, 0);
        free(w);
        free((void *)image);
        free(m.p);
        ivfpq_free(idx);
    }
}

static void zero_copy_requirements(void **state)
{
    (void)state;
    ivfpq_index *idx = build("IVF6,PQ8x4fs,RFlat", IVFPQ_METRIC_L2, NB, 0, NULL), *c;
    membuf m;
    save_mem(idx, IVFPQ_FORMAT_NATIVE, &m);
    unsigned char *al = aligned_alloc(64, m.len + 64);
    memcpy(al + 4, m.p, m.len);
    tu_log lg;
    memset(&lg, 0, sizeof lg);
    ivfpq_load_options o = {{0}, tu_log_fn, &lg, 0};
    assert_int_equal(ivfpq_load_from_buffer(&c, al + 4, m.len, IVFPQ_LOAD_ZERO_COPY, &o),
                     IVFPQ_E_INVALID_ARG);
    assert_non_null(strstr(lg.last, "aligned"));
    /* a copy load does not care */
    assert_int_equal(ivfpq_load_from_buffer(&c, al + 4, m.len, 0, &o), IVFPQ_OK);
    ivfpq_free(c);
    /* 8-byte aligned is enough */
    memmove(al + 8, al + 4, m.len);
    assert_int_equal(ivfpq_load_from_buffer(&c, al + 8, m.len, IVFPQ_LOAD_ZERO_COPY, &o), IVFPQ_OK);
    ivfpq_free(c);
    /* unknown flags */
    assert_int_equal(ivfpq_load_from_buffer(&c, al + 8, m.len, 0x100, &o), IVFPQ_E_INVALID_ARG);
    free(al);
    free(m.p);
    ivfpq_free(idx);
}

/* Skipping section checksums still validates the structure. */
static void skip_checksums(void **state)
{
    (void)state;
    ivfpq_index *idx = build("IVF6,PQ8x4fs,RFlat", IVFPQ_METRIC_L2, NB, 0, NULL), *c;
    membuf m;
    save_mem(idx, IVFPQ_FORMAT_NATIVE, &m);
    unsigned char *al = aligned_copy(m.p, m.len);
    al[m.len - 100] ^= 0x10; /* inside the vectors */
    assert_int_equal(ivfpq_load_from_buffer(&c, al, m.len, IVFPQ_LOAD_ZERO_COPY, NULL), IVFPQ_E_CHECKSUM);
    assert_int_equal(ivfpq_load_from_buffer(&c, al, m.len,
                                            IVFPQ_LOAD_ZERO_COPY | IVFPQ_LOAD_SKIP_CHECKSUMS, NULL),
                     IVFPQ_OK);
    ivfpq_free(c);
    free(al);
    free(m.p);
    ivfpq_free(idx);
}

/* ------------------------------------------------------ streams, files */

static void stream_reads_exactly_the_index(void **state)
{
    (void)state;
    ivfpq_index *a = build("IVF6,PQ8x4fsr,RFlat", IVFPQ_METRIC_L2, NB, 0, NULL);
    ivfpq_index *b = build("IVF6,Flat", IVFPQ_METRIC_INNER_PRODUCT, 300, 1, NULL);
    membuf m;
    memset(&m, 0, sizeof m);
    assert_int_equal(ivfpq_save(a, IVFPQ_FORMAT_NATIVE, mb_write, &m), IVFPQ_OK);
    assert_int_equal(ivfpq_save(b, IVFPQ_FORMAT_FAISS, mb_write, &m), IVFPQ_OK);
    assert_int_equal(ivfpq_save(a, IVFPQ_FORMAT_FAISS, mb_write, &m), IVFPQ_OK);
    reader r = {m.p, m.len, 0};
    ivfpq_index *x, *y, *z;
    assert_int_equal(ivfpq_load(&x, rd_fn, &r, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_load(&y, rd_fn, &r, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_load(&z, rd_fn, &r, NULL), IVFPQ_OK);
    assert_int_equal(r.pos, m.len);
    results ra, rx;
    run_search(a, &ra);
    run_search(x, &rx);
    assert_same(&ra, &rx);
    run_search(z, &rx);
    assert_same(&ra, &rx);
    run_search(b, &ra);
    run_search(y, &rx);
    assert_same(&ra, &rx);
    ivfpq_free(x);
    ivfpq_free(y);
    ivfpq_free(z);
    /* a failing write callback */
    for (size_t cut = 1; cut < 2000; cut += 97) {
        membuf f;
        memset(&f, 0, sizeof f);
        f.fail_after = cut;
        assert_int_equal(ivfpq_save(a, IVFPQ_FORMAT_NATIVE, mb_write, &f), IVFPQ_E_IO);
        free(f.p);
        memset(&f, 0, sizeof f);
        f.fail_after = cut;
        assert_int_equal(ivfpq_save(a, IVFPQ_FORMAT_FAISS, mb_write, &f), IVFPQ_E_IO);
        free(f.p);
    }
    free(m.p);
    ivfpq_free(a);
    ivfpq_free(b);
}

static int io_err_read(void *user, void *data, size_t len)
{
    (void)user;
    (void)data;
    (void)len;
    return -5;
}

static void files(void **state)
{
    (void)state;
    char dir[] = "/tmp/ivfpq-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/idx.bin", dir);
    ivfpq_index *idx = build("IVF6,PQ8x4fs,RFlat", IVFPQ_METRIC_L2, NB, 1, NULL), *c;
    results want, got;
    run_search(idx, &want);
    tu_log lg;
    memset(&lg, 0, sizeof lg);
    ivfpq_load_options o = {{0}, tu_log_fn, &lg, 0};
    for (int f = 0; f < 2; f++) {
        assert_int_equal(ivfpq_save_file(idx, path, (ivfpq_file_format)f), IVFPQ_OK);
        assert_int_equal(ivfpq_load_file(&c, path, 0, &o), IVFPQ_OK);
        run_search(c, &got);
        assert_same(&want, &got);
        ivfpq_free(c);
        int rc = ivfpq_load_file(&c, path, IVFPQ_LOAD_ZERO_COPY, &o);
        if (f == IVFPQ_FORMAT_NATIVE) {
            assert_int_equal(rc, IVFPQ_OK);
            run_search(c, &got);
            assert_same(&want, &got);
            ivfpq_free(c); /* unmaps */
        } else {
            assert_int_equal(rc, IVFPQ_E_UNSUPPORTED);
        }
    }
    assert_int_equal(ivfpq_load_file(&c, "/nonexistent/x.index", 0, &o), IVFPQ_E_IO);
    assert_non_null(strstr(lg.last, "/nonexistent/x.index"));
    assert_int_equal(ivfpq_save_file(idx, "/nonexistent/x.index", IVFPQ_FORMAT_NATIVE), IVFPQ_E_IO);
    /* empty file */
    FILE *fp = fopen(path, "wb");
    fclose(fp);
    assert_int_equal(ivfpq_load_file(&c, path, 0, &o), IVFPQ_E_TRUNCATED);
    assert_int_equal(ivfpq_load_file(&c, path, IVFPQ_LOAD_ZERO_COPY, &o), IVFPQ_E_TRUNCATED);
    reader r = {NULL, 0, 0};
    (void)r;
    assert_int_equal(ivfpq_load(&c, io_err_read, NULL, &o), IVFPQ_E_IO);
    remove(path);
    rmdir(dir);
    ivfpq_free(idx);
}

/* --------------------------------------------------- hostile input */

static void load_must_fail_cleanly(const unsigned char *p, size_t n, int allow_ok, const char *why)
{
    tu_alloc ta = {0, 0, 0};
    tu_log lg;
    memset(&lg, 0, sizeof lg);
    /* a stream cannot be checked against its length before allocating:
     * max_bytes is the defence (and keeps ASan from aborting on huge sizes) */
    ivfpq_load_options o = {tu_allocator(&ta), tu_log_fn, &lg, (size_t)1 << 26};
    ivfpq_index *c = (ivfpq_index *)1;
    unsigned char *al = aligned_copy(p, n ? n : 1);
    for (int mode = 0; mode < 3; mode++) {
        int rc;
        if (mode == 2) {
            reader r = {al, n, 0};
            rc = ivfpq_load(&c, rd_fn, &r, &o);
        } else {
            rc = ivfpq_load_from_buffer(&c, al, n, mode ? IVFPQ_LOAD_ZERO_COPY : 0, &o);
        }
        if (rc == IVFPQ_OK) {
            if (!allow_ok) fail_msg("%s: load succeeded (mode %d)", why, mode);
            results r;
            run_search(c, &r); /* whatever it holds, searching it is safe */
            ivfpq_free(c);
        } else {
            assert_null(c);
            assert_true(lg.nerr > 0);
            assert_true(strlen(lg.last) > 10);
        }
        assert_int_equal(ta.live, 0);
    }
    free(al);
}

static void truncation_every_byte(void **state)
{
    (void)state;
    const char *specs[] = {"IVF3,PQ3x4fsr,RFlat", "IVF3,Flat", "PQ4x4fs", "Flat"};
    for (int s = 0; s < 4; s++)
        for (int f = 0; f < 2; f++) {
            ivfpq_index *idx;
            assert_int_equal(ivfpq_index_factory(&idx, D, specs[s], IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
            assert_int_equal(ivfpq_train(idx, NB, g_x), IVFPQ_OK);
            int64_t ids[40];
            for (int i = 0; i < 40; i++) ids[i] = 5 * i + 1;
            assert_int_equal(ivfpq_add(idx, 40, g_x, ids), IVFPQ_OK);
            membuf m;
            save_mem(idx, (ivfpq_file_format)f, &m);
            for (size_t cut = 0; cut < m.len; cut++) load_must_fail_cleanly(m.p, cut, 0, "truncated");
            free(m.p);
            ivfpq_free(idx);
        }
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 17;
}

static void random_bit_flips(void **state)
{
    (void)state;
    const char *specs[] = {"IVF3,PQ3x4fsr,RFlat", "IVF4,Flat", "PQ4x4fs,RFlat", "Flat",
                           "IVF4,PQ8x4fs"};
    uint64_t seed = 12345;
    for (int s = 0; s < 5; s++)
        for (int f = 0; f < 2; f++) {
            ivfpq_index *idx;
            assert_int_equal(ivfpq_index_factory(&idx, D, specs[s], IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
            assert_int_equal(ivfpq_train(idx, NB, g_x), IVFPQ_OK);
            assert_int_equal(ivfpq_add(idx, 60, g_x, NULL), IVFPQ_OK);
            membuf m;
            save_mem(idx, (ivfpq_file_format)f, &m);
            for (int t = 0; t < 300; t++) {
                unsigned char *b = malloc(m.len);
                memcpy(b, m.p, m.len);
                int nflips = t % 3 == 2 ? 1 + (int)(lcg(&seed) % 4) : 1;
                for (int i = 0; i < nflips; i++) {
                    size_t pos = (size_t)(lcg(&seed) % m.len);
                    b[pos] ^= (unsigned char)(1u << (lcg(&seed) % 8));
                }
                /* every flip is caught in our format; faiss has no checksum */
                load_must_fail_cleanly(b, m.len, f == IVFPQ_FORMAT_FAISS, "bit flip");
                free(b);
            }
            /* flips of whole bytes into extreme values, in the faiss header area */
            for (size_t pos = 0; pos < m.len && pos < 400; pos++)
                for (int v = 0; v < 3; v++) {
                    unsigned char *b = malloc(m.len);
                    memcpy(b, m.p, m.len);
                    b[pos] = v == 0 ? 0xff : v == 1 ? 0x80 : 0x00;
                    if (b[pos] != m.p[pos])
                        load_must_fail_cleanly(b, m.len, f == IVFPQ_FORMAT_FAISS, "byte set");
                    free(b);
                }
            free(m.p);
            ivfpq_free(idx);
        }
}

/* Every allocation of a load may fail: error, nothing leaked. */
static void oom_during_load(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSPECS; s++)
        for (int f = 0; f < 2; f++)
            for (int stream = 0; stream < 2; stream++) {
                ivfpq_index *idx = build(kSpecs[s], IVFPQ_METRIC_L2, 100, 1, NULL), *c;
                membuf m;
                save_mem(idx, (ivfpq_file_format)f, &m);
                for (long n = 1;; n++) {
                    tu_alloc ta = {0, 0, n};
                    ivfpq_load_options o = {tu_allocator(&ta), NULL, NULL, 0};
                    reader r = {m.p, m.len, 0};
                    int rc = stream ? ivfpq_load(&c, rd_fn, &r, &o)
                                    : ivfpq_load_from_buffer(&c, m.p, m.len, 0, &o);
                    if (rc == IVFPQ_OK) {
                        ivfpq_free(c);
                        assert_int_equal(ta.live, 0);
                        break;
                    }
                    assert_int_equal(rc, IVFPQ_E_NOMEM);
                    assert_int_equal(ta.live, 0);
                }
                free(m.p);
                ivfpq_free(idx);
            }
}

static void max_bytes_limit(void **state)
{
    (void)state;
    for (int f = 0; f < 2; f++) {
        ivfpq_index *idx = build("IVF6,PQ8x4fs,RFlat", IVFPQ_METRIC_L2, NB, 0, NULL), *c;
        membuf m;
        save_mem(idx, (ivfpq_file_format)f, &m);
        tu_log lg;
        memset(&lg, 0, sizeof lg);
        ivfpq_load_options o = {{0}, tu_log_fn, &lg, 1000};
        assert_int_equal(ivfpq_load_from_buffer(&c, m.p, m.len, 0, &o), IVFPQ_E_LIMIT);
        assert_non_null(strstr(lg.last, "max_bytes"));
        reader r = {m.p, m.len, 0};
        assert_int_equal(ivfpq_load(&c, rd_fn, &r, &o), IVFPQ_E_LIMIT);
        o.max_bytes = 4 * m.len + 4096;
        assert_int_equal(ivfpq_load_from_buffer(&c, m.p, m.len, 0, &o), IVFPQ_OK);
        ivfpq_free(c);
        /* zero-copy allocates only the struct */
        if (f == IVFPQ_FORMAT_NATIVE) {
            unsigned char *al = aligned_copy(m.p, m.len);
            o.max_bytes = 1024;
            assert_int_equal(ivfpq_load_from_buffer(&c, al, m.len, IVFPQ_LOAD_ZERO_COPY, &o), IVFPQ_OK);
            ivfpq_free(c);
            free(al);
        }
        free(m.p);
        ivfpq_free(idx);
    }
}

/* -------------------------------------------- not-an-index diagnosis */

static void expect_load(const void *p, size_t n, int status, const char *needle)
{
    tu_log lg;
    memset(&lg, 0, sizeof lg);
    ivfpq_load_options o = {{0}, tu_log_fn, &lg, (size_t)1 << 26};
    ivfpq_index *c;
    int rc = ivfpq_load_from_buffer(&c, p, n, 0, &o);
    if (rc == IVFPQ_OK) ivfpq_free(c);
    if (rc != status || (needle && !strstr(lg.last, needle)))
        fail_msg("expected %d \"%s\", got %d \"%s\"", status, needle ? needle : "", rc, lg.last);
    reader r = {p, n, 0};
    memset(&lg, 0, sizeof lg);
    rc = ivfpq_load(&c, rd_fn, &r, &o);
    if (rc == IVFPQ_OK) ivfpq_free(c);
    if (status == IVFPQ_E_TRUNCATED && rc == IVFPQ_E_LIMIT) return; /* a stream's size is unknown */
    if (rc != status || (needle && !strstr(lg.last, needle)))
        fail_msg("stream: expected %d \"%s\", got %d \"%s\"", status, needle ? needle : "", rc, lg.last);
}

static void not_an_index(void **state)
{
    (void)state;
    static const char npy[] = "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (10, 4), }";
    expect_load(npy, sizeof npy - 1, IVFPQ_E_FORMAT, "NumPy");
    static const char lfs[] = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 1234\n";
    expect_load(lfs, sizeof lfs - 1, IVFPQ_E_FORMAT, "Git LFS");
    expect_load("", 0, IVFPQ_E_TRUNCATED, "empty");
    expect_load("<!DOCTYPE html><html>", 21, IVFPQ_E_FORMAT, "HTML");
    expect_load("hello world, this is text", 25, IVFPQ_E_FORMAT, "text");
    static const unsigned char junk[16] = {1, 2, 3, 250, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0};
    expect_load(junk, 16, IVFPQ_E_FORMAT, "unknown format");
    expect_load("\x89IVF", 4, IVFPQ_E_TRUNCATED, "truncated");
    expect_load("IwPQ\x10\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 28, IVFPQ_E_UNSUPPORTED, "IndexIVFPQ");
    expect_load("IHNf\x10\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 28, IVFPQ_E_UNSUPPORTED, "HNSW");

    ivfpq_file_format fmt;
    assert_int_equal(ivfpq_detect_format("\x89IVFPQ\r\n", 8, &fmt), IVFPQ_OK);
    assert_int_equal(fmt, IVFPQ_FORMAT_NATIVE);
    assert_int_equal(ivfpq_detect_format("IwFl", 4, &fmt), IVFPQ_OK);
    assert_int_equal(fmt, IVFPQ_FORMAT_FAISS);
    assert_int_equal(ivfpq_detect_format(npy, 8, &fmt), IVFPQ_E_FORMAT);
    assert_int_equal(ivfpq_detect_format("\x89IV", 3, &fmt), IVFPQ_E_TRUNCATED);
}

/* Re-seals the native header checksum after an edit. */
static void reseal(unsigned char *p)
{
    uint32_t H = ivfpq__le32(p + 12);
    memset(p + 124, 0, 4);
    ivfpq__put32(p + 124, ivfpq__crc32c(0, p, H));
}

static void native_header_semantics(void **state)
{
    (void)state;
    ivfpq_index *idx = build("IVF6,PQ8x4fs,RFlat", IVFPQ_METRIC_L2, NB, 0, NULL);
    membuf m;
    save_mem(idx, IVFPQ_FORMAT_NATIVE, &m);
    unsigned char *b = malloc(m.len);
#define EDIT(stmt, status, needle)        \
    do {                                  \
        memcpy(b, m.p, m.len);            \
        stmt;                             \
        reseal(b);                        \
        expect_load(b, m.len, status, needle); \
    } while (0)
    EDIT(ivfpq__put16(b + 8, 2), IVFPQ_E_VERSION, "version");
    EDIT(ivfpq__put16(b + 10, 7), IVFPQ_OK, NULL); /* a newer minor version: readable */
    EDIT(ivfpq__put32(b + 24, 1), IVFPQ_E_VERSION, "features");
    EDIT(ivfpq__put32(b + 32, 0), IVFPQ_E_CORRUPT, "dimension");
    EDIT(ivfpq__put32(b + 32, 25), IVFPQ_E_CORRUPT, NULL);
    EDIT(ivfpq__put32(b + 36, 7), IVFPQ_E_CORRUPT, "metric");
    EDIT(ivfpq__put64(b + 56, 0), IVFPQ_E_CORRUPT, NULL);
    EDIT(ivfpq__put64(b + 56, 5), IVFPQ_E_CORRUPT, "divide");
    EDIT(ivfpq__put64(b + 48, 0), IVFPQ_E_CORRUPT, "nlist");
    EDIT(ivfpq__put64(b + 64, NB + 1), IVFPQ_E_CORRUPT, NULL);
    EDIT(ivfpq__put64(b + 64, UINT64_MAX), IVFPQ_E_CORRUPT, "ntotal");
    EDIT(ivfpq__put32(b + 44, 64), IVFPQ_E_CORRUPT, "block size");
    EDIT(ivfpq__put32(b + 40, 1u << 9), IVFPQ_E_CORRUPT, "flags");
    EDIT(ivfpq__put64(b + 16, UINT64_MAX - 63), IVFPQ_E_TRUNCATED, NULL);
    EDIT(ivfpq__put32(b + 12, 64), IVFPQ_E_CORRUPT, "header size");
    EDIT(ivfpq__put32(b + 28, 1000), IVFPQ_E_CORRUPT, "sections");
    /* section table: offsets, sizes, element sizes, order, duplicates */
    EDIT(ivfpq__put64(b + 192 + 8, 0), IVFPQ_E_CORRUPT, "offset");
    EDIT(ivfpq__put64(b + 192 + 8, 65), IVFPQ_E_CORRUPT, "offset");
    EDIT(ivfpq__put64(b + 192 + 16, UINT64_MAX), IVFPQ_E_CORRUPT, NULL);
    EDIT(ivfpq__put32(b + 192 + 4, 8), IVFPQ_E_CORRUPT, "elements");
    EDIT(memcpy(b + 192 + 32, "CENT", 4), IVFPQ_E_CORRUPT, NULL);
    EDIT(memcpy(b + 192, "XXXX", 4), IVFPQ_E_CORRUPT, "missing");
    /* a flipped section byte: the checksum names the section */
    memcpy(b, m.p, m.len);
    b[ivfpq__le64(b + 192 + 8)] ^= 1;
    expect_load(b, m.len, IVFPQ_E_CHECKSUM, "section CENT");
    memcpy(b, m.p, m.len);
    b[20] ^= 1;
    expect_load(b, m.len, IVFPQ_E_CHECKSUM, "header");
#undef EDIT
    free(b);
    free(m.p);
    ivfpq_free(idx);
}

/* Sections re-sealed with a valid checksum but inconsistent contents. */
static void native_contents_semantics(void **state)
{
    (void)state;
    ivfpq_index *idx = build("IVF6,PQ3x4fs,RFlat", IVFPQ_METRIC_L2, 100, 0, NULL);
    membuf m;
    save_mem(idx, IVFPQ_FORMAT_NATIVE, &m);
    unsigned char *b = malloc(m.len);
    uint32_t ns = ivfpq__le32(m.p + 28);
    struct { const char *id; size_t at; int64_t val; const char *needle; } cases[] = {
        {"LOFF", 0, 1, "first list"},
        {"LOFF", 8, 1000, "list offsets"},
        {"LOFF", 48, 99, "list offsets"},
        {"BOFF", 8, 99, "blocks"},
        {"LIDS", 16, -3, "labels"},
        {"CENT", 4, 0x7fc00000, "NaN"},
        {"PQCB", 0, 0x7f800000, "NaN"},
        {"CODE", 16 * 4 * 1 - 1, 0x77, "not zero"}, /* odd M: dummy nibbles of the first block */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        memcpy(b, m.p, m.len);
        unsigned char *e = NULL;
        for (uint32_t i = 0; i < ns; i++)
            if (!memcmp(b + 192 + 32 * i, cases[c].id, 4)) e = b + 192 + 32 * i;
        assert_non_null(e);
        unsigned char *sec = b + ivfpq__le64(e + 8);
        uint32_t elem = ivfpq__le32(e + 4);
        if (elem == 8) ivfpq__put64(sec + cases[c].at, (uint64_t)cases[c].val);
        else if (elem == 4) ivfpq__put32(sec + cases[c].at, (uint32_t)cases[c].val);
        else sec[cases[c].at] = (unsigned char)cases[c].val;
        ivfpq__put32(e + 24, ivfpq__crc32c(0, sec, ivfpq__le64(e + 16)));
        reseal(b);
        expect_load(b, m.len, IVFPQ_E_CORRUPT, cases[c].needle);
    }
    /* padding between sections must be zero (LOFF: 7 entries, 8 bytes of padding) */
    memcpy(b, m.p, m.len);
    for (uint32_t i = 0; i < ns; i++)
        if (!memcmp(b + 192 + 32 * i, "LOFF", 4)) b[ivfpq__le64(b + 192 + 32 * i + 8) + 60] = 1;
    expect_load(b, m.len, IVFPQ_E_CORRUPT, "non-zero");
    free(b);
    free(m.p);
    ivfpq_free(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_known_values),
        cmocka_unit_test(round_trip_native),
        cmocka_unit_test(round_trip_faiss),
        cmocka_unit_test(round_trip_edge_cases),
        cmocka_unit_test(loaded_index_is_mutable),
        cmocka_unit_test(zero_copy_const_no_alloc),
        cmocka_unit_test(zero_copy_requirements),
        cmocka_unit_test(skip_checksums),
        cmocka_unit_test(stream_reads_exactly_the_index),
        cmocka_unit_test(files),
        cmocka_unit_test(not_an_index),
        cmocka_unit_test(native_header_semantics),
        cmocka_unit_test(native_contents_semantics),
        cmocka_unit_test(max_bytes_limit),
        cmocka_unit_test(oom_during_load),
        cmocka_unit_test(truncation_every_byte),
        cmocka_unit_test(random_bit_flips),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

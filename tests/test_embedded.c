/*
 * The embedded profile: ivfpq_search_ws never allocates, for every index
 * kind and metric, also on a zero-copy index; ivfpq_search_workspace_size
 * is the exact minimum; ivfpq_footprint_of predicts exactly what an index
 * and ivfpq_load_static use. (Allocation-failure paths of train/add/load
 * are tests/test_oom.c's subject.)
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "internal.h" /* list sizes of a built index, to check ivfpq_footprint_of */

#define D 24
#define NB 1500
#define NQ 300 /* more than one query chunk of search.c */
#define KMAX 40

static float *g_x; /* NQ queries then NB base rows */

static int setup(void **state)
{
    (void)state;
    g_x = tu_synth(NB + NQ, D, 30, 61);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_x);
    return 0;
}

static const float *base(void) { return g_x + (size_t)NQ * D; }

/* Every kind of index, each PQ kind with and without RFlat, odd and even M. */
static const char *const k_specs[] = {
    "Flat",           "IVF8,Flat",           "PQ6x4fs",          "PQ6x4fs,RFlat",
    "PQ3x4fs",        "IVF8,PQ6x4fs",        "IVF8,PQ6x4fs,RFlat", "IVF8,PQ3x4fs,RFlat",
    "IVF8,PQ6x4fsr",  "IVF8,PQ6x4fsr,RFlat", "IVF8,PQ3x4fsr",
};
#define NSPECS (sizeof k_specs / sizeof k_specs[0])

/* Counts every call of its hooks; once `forbid` is set, every allocation
 * fails (so a hidden allocation could not go unnoticed even if its
 * failure were handled). */
typedef struct counting {
    long allocs, frees, live, forbidden;
    int forbid;
} counting;

static void *c_alloc(void *opaque, size_t size)
{
    counting *c = opaque;
    c->allocs++;
    if (c->forbid) {
        c->forbidden++;
        return NULL;
    }
    void *p = malloc(size);
    if (p) c->live++;
    return p;
}

static void c_free(void *opaque, void *p)
{
    counting *c = opaque;
    c->frees++;
    c->live--;
    free(p);
}

static ivfpq_allocator counting_allocator(counting *c)
{
    ivfpq_allocator a = {c_alloc, c_free, c};
    return a;
}

static ivfpq_index *build(const char *spec, ivfpq_metric metric, const ivfpq_options *opt)
{
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, D, spec, metric, opt), IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, NB, base(), NULL), IVFPQ_OK);
    return idx;
}

/* Search arguments that reach every branch of the planner: one query and
 * several chunks, k above ntotal's share, nprobe above nlist, k_factor. */
typedef struct call { size_t nq, k, nprobe; float k_factor; } call;
static const call k_calls[] = {
    {1, 1, 1, 1.0f}, {NQ, 10, 3, 4.0f}, {17, KMAX, 100, 2.5f}, {NQ, 5, 8, 16.0f},
};
#define NCALLS (sizeof k_calls / sizeof k_calls[0])

/* Checks the workspace contract of one index with its allocator c:
 * exact size works (any alignment, garbage contents) without a single
 * allocator call and gives ivfpq_search's results; one byte less fails
 * with IVFPQ_E_WORKSPACE and a message, writing nothing. */
static void check_ws(const ivfpq_index *idx, counting *c, tu_log *log)
{
    static float D1[NQ * KMAX], D2[NQ * KMAX];
    static int64_t I1[NQ * KMAX], I2[NQ * KMAX];
    size_t nf1[NQ], nf2[NQ];
    for (size_t t = 0; t < NCALLS; t++) {
        const call *cl = &k_calls[t];
        ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
        p.nprobe = cl->nprobe;
        p.k_factor = cl->k_factor;
        size_t ws = 0, n = cl->nq * cl->k;
        assert_int_equal(ivfpq_search_workspace_size(idx, cl->nq, cl->k, &p, &ws), IVFPQ_OK);
        assert_true(ws > 0);

        /* the allocating search: exactly one block, returned */
        c->forbid = 0;
        long a0 = c->allocs, live0 = c->live;
        p.nfound = nf1;
        assert_int_equal(ivfpq_search(idx, cl->nq, g_x, cl->k, &p, D1, I1), IVFPQ_OK);
        assert_int_equal(c->allocs - a0, 1);
        assert_int_equal(c->live, live0);

        unsigned char *buf = malloc(ws + 64);
        assert_non_null(buf);
        c->forbid = 1;
        long allocs = c->allocs, frees = c->frees;
        for (size_t shift = 0; shift < 64; shift += 21) { /* 0, 21, 42: any alignment */
            memset(buf, 0xA5, ws + 64);                  /* no reliance on zeroed memory */
            memset(I2, 0x5A, sizeof I2);
            p.nfound = nf2;
            assert_int_equal(ivfpq_search_ws(idx, cl->nq, g_x, cl->k, &p, D2, I2, buf + shift, ws),
                             IVFPQ_OK);
            assert_memory_equal(I1, I2, n * sizeof(int64_t));
            assert_memory_equal(D1, D2, n * sizeof(float));
            assert_memory_equal(nf1, nf2, cl->nq * sizeof(size_t));
        }
        /* one byte short: a clean failure that names both sizes */
        memset(I2, 0x5A, sizeof I2);
        log->nerr = 0;
        assert_int_equal(ivfpq_search_ws(idx, cl->nq, g_x, cl->k, &p, D2, I2, buf, ws - 1),
                         IVFPQ_E_WORKSPACE);
        assert_int_equal(log->nerr, 1);
        assert_int_equal(log->last_status, IVFPQ_E_WORKSPACE);
        assert_non_null(strstr(log->last, "workspace"));
        for (size_t i = 0; i < n; i++) assert_true(I2[i] == (int64_t)0x5A5A5A5A5A5A5A5AULL);
        /* the hooks were not called at all, not even to free */
        assert_int_equal(c->allocs, allocs);
        assert_int_equal(c->frees, frees);
        assert_int_equal(c->forbidden, 0);
        c->forbid = 0;
        free(buf);
    }
}

static void zero_allocations_every_kind(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSPECS; s++)
        for (int m = 0; m < 2; m++) {
            counting c = {0};
            tu_log log = {0};
            ivfpq_options opt = {0};
            opt.allocator = counting_allocator(&c);
            opt.log = tu_log_fn;
            opt.log_user = &log;
            ivfpq_index *idx = build(k_specs[s], m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2, &opt);
            check_ws(idx, &c, &log);
            ivfpq_free(idx);
            assert_int_equal(c.live, 0);
        }
}

/* ----------------------------------------------------------- zero-copy */

typedef struct membuf { unsigned char *p; size_t len, cap; } membuf;

static int mb_write(void *user, const void *data, size_t len)
{
    membuf *mb = user;
    if (mb->len + len > mb->cap) {
        size_t cap = mb->cap ? mb->cap : 4096;
        while (cap < mb->len + len) cap *= 2;
        unsigned char *q = realloc(mb->p, cap);
        if (!q) return -1;
        mb->p = q;
        mb->cap = cap;
    }
    memcpy(mb->p + mb->len, data, len);
    mb->len += len;
    return 0;
}

/* An index searched in place from a read-only image: loading allocates
 * the index struct only, searching through a workspace nothing; results
 * are those of the index the image was saved from. */
static void zero_copy_zero_allocations(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSPECS; s++)
        for (int m = 0; m < 2; m++) {
            ivfpq_index *src = build(k_specs[s], m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2, NULL);
            membuf mb = {0};
            assert_int_equal(ivfpq_save(src, IVFPQ_FORMAT_NATIVE, mb_write, &mb), IVFPQ_OK);
            unsigned char *image = aligned_alloc(64, (mb.len + 63) / 64 * 64);
            assert_non_null(image);
            memcpy(image, mb.p, mb.len);
            free(mb.p);

            counting c = {0};
            tu_log log = {0};
            ivfpq_load_options lo = {0};
            lo.allocator = counting_allocator(&c);
            lo.log = tu_log_fn;
            lo.log_user = &log;
            ivfpq_index *idx;
            assert_int_equal(ivfpq_load_from_buffer(&idx, image, mb.len, IVFPQ_LOAD_ZERO_COPY, &lo),
                             IVFPQ_OK);
            assert_int_equal(c.allocs, 1);

            ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
            p.nprobe = 4;
            static float D1[NQ * 10], D2[NQ * 10];
            static int64_t I1[NQ * 10], I2[NQ * 10];
            assert_int_equal(ivfpq_search(src, NQ, g_x, 10, &p, D1, I1), IVFPQ_OK);
            size_t ws;
            assert_int_equal(ivfpq_search_workspace_size(idx, NQ, 10, &p, &ws), IVFPQ_OK);
            void *buf = malloc(ws);
            c.forbid = 1;
            assert_int_equal(ivfpq_search_ws(idx, NQ, g_x, 10, &p, D2, I2, buf, ws), IVFPQ_OK);
            assert_int_equal(c.allocs, 1);
            assert_memory_equal(I1, I2, sizeof I1);
            assert_memory_equal(D1, D2, sizeof D1);
            check_ws(idx, &c, &log);
            free(buf);
            ivfpq_free(idx);
            assert_int_equal(c.live, 0);
            free(image);
            ivfpq_free(src);
        }
}

/* Below search.c's per-chunk budget (64 MiB), a larger batch, k, nprobe
 * or k_factor never needs less workspace: one size computed for the
 * largest call serves every smaller one. */
static void workspace_size_monotone(void **state)
{
    (void)state;
    ivfpq_index *idx = build("IVF8,PQ6x4fsr,RFlat", IVFPQ_METRIC_L2, NULL);
    size_t prev = 0;
    for (size_t nq = 1; nq <= 1024; nq *= 4)
        for (size_t k = 1; k <= 64; k *= 8)
            for (size_t np = 1; np <= 16; np *= 4) {
                ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
                p.nprobe = np;
                size_t a, b;
                assert_int_equal(ivfpq_search_workspace_size(idx, nq, k, &p, &a), IVFPQ_OK);
                p.k_factor = 8.0f;
                assert_int_equal(ivfpq_search_workspace_size(idx, nq, k, &p, &b), IVFPQ_OK);
                assert_true(b >= a);
                if (np == 1 && k == 1) {
                    assert_true(a >= prev);
                    prev = a;
                }
            }
    ivfpq_free(idx);
}

/* --------------------------------------------------------- static sizing */

static size_t list_sizes(const ivfpq_index *idx, size_t *out)
{
    for (size_t l = 0; l < idx->nlist; l++) {
        ivfpq_list_view v;
        ivfpq__list_get(idx, l, &v);
        out[l] = v.n;
    }
    return idx->nlist;
}

static unsigned char *save_aligned(const ivfpq_index *idx, size_t *len)
{
    membuf mb = {0};
    assert_int_equal(ivfpq_save(idx, IVFPQ_FORMAT_NATIVE, mb_write, &mb), IVFPQ_OK);
    unsigned char *image = aligned_alloc(64, (mb.len + 63) / 64 * 64);
    assert_non_null(image);
    memcpy(image, mb.p, mb.len);
    free(mb.p);
    *len = mb.len;
    return image;
}

/* Loads image into mem (size bytes at an address 1 past a multiple of 16:
 * the worst alignment) and runs one allocating search; returns the first
 * failure, and the arena bytes used counted from mem. */
static int static_run(const unsigned char *image, size_t len, unsigned flags, size_t size,
                      const ivfpq_footprint_query *q, size_t *used)
{
    unsigned char *raw = malloc(size + 64);
    assert_non_null(raw);
    unsigned char *mem = (unsigned char *)(((uintptr_t)raw + 63) & ~(uintptr_t)63) + 1;
    ivfpq_index *idx;
    int rc = ivfpq_load_static(&idx, mem, size, image, len, flags, NULL);
    if (rc == IVFPQ_OK) {
        float Dd[64 * 8];
        int64_t I[64 * 8];
        assert_true(q->nq <= 64 && q->k <= 8);
        rc = ivfpq_search(idx, q->nq, g_x, q->k, &q->params, Dd, I);
        const ivfpq_arena *a = (const ivfpq_arena *)(mem + IVFPQ_ARENA_ALIGN - 1);
        *used = (size_t)(a->base - mem) + a->peak;
        ivfpq_free(idx);
    }
    free(raw);
    return rc;
}

/* ivfpq_footprint_of against what indexes really take, for every kind and
 * sizes around the 32-vector block boundaries. */
static void footprint_exact(void **state)
{
    (void)state;
    static const size_t ns[] = {0, 1, 31, 33, 700, NB};
    for (size_t s = 0; s < NSPECS; s++)
        for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
            ivfpq_metric metric = (s + t) % 2 ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2;
            ivfpq_index *idx;
            assert_int_equal(ivfpq_index_factory(&idx, D, k_specs[s], metric, NULL), IVFPQ_OK);
            assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_OK);
            assert_int_equal(ivfpq_add(idx, ns[t], base(), NULL), IVFPQ_OK);
            size_t sizes[8];
            list_sizes(idx, sizes);

            ivfpq_footprint_query q;
            memset(&q, 0, sizeof q);
            q.factory = k_specs[s];
            q.d = D;
            q.metric = metric;
            q.ntotal = ns[t];
            q.list_sizes = sizes;
            q.nq = 1 + t * 10;
            q.k = 1 + s % 8;
            q.params.nprobe = 1 + s % 5;
            q.params.k_factor = 1.0f + (float)t;
            ivfpq_footprint f, w;
            assert_int_equal(ivfpq_footprint_of(&q, &f), IVFPQ_OK);

            ivfpq_info info;
            size_t saved, ws;
            assert_int_equal(ivfpq_get_info(idx, &info), IVFPQ_OK);
            assert_int_equal(f.built_bytes, info.memory_bytes);
            assert_int_equal(ivfpq_saved_size(idx, IVFPQ_FORMAT_NATIVE, &saved), IVFPQ_OK);
            assert_int_equal(f.image_bytes, saved);
            assert_int_equal(ivfpq_search_workspace_size(idx, q.nq, q.k, &q.params, &ws), IVFPQ_OK);
            assert_int_equal(f.workspace_bytes, ws);

            size_t len;
            unsigned char *image = save_aligned(idx, &len);
            ivfpq_index *c;
            assert_int_equal(ivfpq_load_from_buffer(&c, image, len, 0, NULL), IVFPQ_OK);
            assert_int_equal(ivfpq_get_info(c, &info), IVFPQ_OK);
            assert_int_equal(f.loaded_bytes, info.memory_bytes);
            ivfpq_free(c);

            /* the worst case bounds every distribution, and is exact
             * where lists are not padded to blocks */
            q.list_sizes = NULL;
            assert_int_equal(ivfpq_footprint_of(&q, &w), IVFPQ_OK);
            assert_true(w.image_bytes >= f.image_bytes && w.loaded_bytes >= f.loaded_bytes &&
                        w.built_bytes >= f.built_bytes && w.arena_copy >= f.arena_copy);
            assert_int_equal(w.workspace_bytes, f.workspace_bytes);
            assert_int_equal(w.arena_zero_copy, f.arena_zero_copy);
            if (idx->nlist == 1) assert_memory_equal(&w, &f, sizeof w);
            if (!idx->spec.has_pq) assert_int_equal(w.loaded_bytes, f.loaded_bytes);
            q.list_sizes = sizes;

            /* the arena sizes are exact: enough at the worst alignment, and
             * one byte less is not */
            for (int zc = 0; zc < 2; zc++) {
                unsigned flags = zc ? IVFPQ_LOAD_ZERO_COPY : 0;
                size_t need = zc ? f.arena_zero_copy : f.arena_copy, used = 0;
                assert_int_equal(static_run(image, len, flags, need, &q, &used), IVFPQ_OK);
                assert_int_equal(used, need);
                assert_int_equal(static_run(image, len, flags, need - 1, &q, &used), IVFPQ_E_NOMEM);
            }
            free(image);
            ivfpq_free(idx);
        }
}

static void footprint_bad_input(void **state)
{
    (void)state;
    ivfpq_footprint f;
    tu_log log = {0};
    ivfpq_footprint_query q;
    memset(&q, 0, sizeof q);
    q.factory = "IVF4,PQ8x4fs";
    q.d = 16;
    q.metric = IVFPQ_METRIC_L2;
    q.ntotal = 10;
    q.log = tu_log_fn;
    q.log_user = &log;
    assert_int_equal(ivfpq_footprint_of(NULL, &f), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_footprint_of(&q, NULL), IVFPQ_E_INVALID_ARG);
    size_t sizes[4] = {1, 2, 3, 5};
    q.list_sizes = sizes;
    assert_int_equal(ivfpq_footprint_of(&q, &f), IVFPQ_E_INVALID_ARG);
    assert_non_null(strstr(log.last, "sum to 11"));
    sizes[3] = 4;
    assert_int_equal(ivfpq_footprint_of(&q, &f), IVFPQ_OK);
    q.factory = "IVF4,PQ7x4fs"; /* 7 does not divide 16 */
    assert_int_equal(ivfpq_footprint_of(&q, &f), IVFPQ_E_PARSE);
    q.factory = "IVF4,Flat";
    q.d = 0;
    assert_int_equal(ivfpq_footprint_of(&q, &f), IVFPQ_E_INVALID_ARG);
    q.d = 16;
    q.nq = 1;
    q.k = 0;
    assert_int_equal(ivfpq_footprint_of(&q, &f), IVFPQ_E_INVALID_ARG);
    /* a shape whose vectors cannot be addressed */
    q.k = 1;
    q.params.nprobe = 1;
    q.list_sizes = NULL;
    q.d = 1 << 20;
    q.ntotal = (size_t)1 << 46;
    int rc = ivfpq_footprint_of(&q, &f);
    assert_true(rc == IVFPQ_E_OVERFLOW);
}

/* An index built entirely inside a caller's buffer: no heap at all, the
 * same index as with malloc. */
static void arena_build(void **state)
{
    (void)state;
    static unsigned char mem[4 << 20];
    ivfpq_arena a;
    ivfpq_arena_init(&a, mem + 3, sizeof mem - 3);
    ivfpq_options opt = {0};
    opt.allocator = ivfpq_arena_allocator(&a);
    ivfpq_index *x = build("IVF8,PQ6x4fsr,RFlat", IVFPQ_METRIC_L2, &opt);
    ivfpq_index *y = build("IVF8,PQ6x4fsr,RFlat", IVFPQ_METRIC_L2, NULL);
    assert_true(a.used > 0 && a.peak <= a.size);
    assert_int_equal((uintptr_t)a.base % IVFPQ_ARENA_ALIGN, 0);
    static float D1[NQ * 10], D2[NQ * 10];
    static int64_t I1[NQ * 10], I2[NQ * 10];
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 3;
    size_t used = a.used;
    assert_int_equal(ivfpq_search(x, NQ, g_x, 10, &p, D1, I1), IVFPQ_OK);
    assert_int_equal(a.used, used); /* the workspace went back */
    assert_int_equal(ivfpq_search(y, NQ, g_x, 10, &p, D2, I2), IVFPQ_OK);
    assert_memory_equal(I1, I2, sizeof I1);
    assert_memory_equal(D1, D2, sizeof D1);
    ivfpq_free(x);
    ivfpq_free(y);
    /* a full arena fails cleanly */
    ivfpq_arena small;
    ivfpq_arena_init(&small, mem, 1000);
    opt.allocator = ivfpq_arena_allocator(&small);
    ivfpq_index *z;
    assert_int_equal(ivfpq_index_factory(&z, D, "IVF8,Flat", IVFPQ_METRIC_L2, &opt), IVFPQ_OK);
    assert_int_equal(ivfpq_train(z, NB, base()), IVFPQ_E_NOMEM);
    ivfpq_free(z);
    ivfpq_arena_reset(&a);
    assert_int_equal(a.used, 0);
    ivfpq_load_options lo = {0};
    lo.allocator = opt.allocator;
    assert_int_equal(ivfpq_load_static(&z, mem, sizeof mem, mem, 8, 0, &lo), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_load_static(&z, mem, 20, mem, 8, 0, NULL), IVFPQ_E_NOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zero_allocations_every_kind),
        cmocka_unit_test(zero_copy_zero_allocations),
        cmocka_unit_test(workspace_size_monotone),
        cmocka_unit_test(footprint_exact),
        cmocka_unit_test(footprint_bad_input),
        cmocka_unit_test(arena_build),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * The coarse prefilter (src/coarse.c) gives the float search's lists and
 * distance bits exactly: on random data, on data built to make its bounds
 * work hard (a large common offset, duplicated centroids and queries that
 * sit on them, integer grids full of exact ties, huge and tiny magnitudes,
 * zero rows), at every nprobe, and end to end through the public API (a
 * batch, which uses it, against the same queries one at a time, which do
 * not). `make test` runs this once per SIMD level.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"
#include "synth.h"
#include "testutil.h"

enum { K_GAUSS, K_OFFSET, K_DUPS, K_GRID, K_HUGE, K_TINY, K_ZERO, K_KINDS };

static float gauss(synth_rng *r) { return (float)synth_normal(r); }

/* n rows of d: Gaussian noise plus step * (element index mod period), which
 * gives the columns different offsets (period 0: noise alone). */
static float *noisy_rows(synth_rng *r, size_t n, size_t d, float step, size_t period)
{
    float *x = malloc(n * d * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n * d; i++)
        x[i] = gauss(r) + (period ? step * (float)(i % period) : 0.0f);
    return x;
}

/* nlist centroids and nq queries of kind k. */
static void make_data(synth_rng *r, int k, size_t nlist, size_t nq, size_t d, float *c, float *q)
{
    for (size_t i = 0; i < nlist * d; i++) c[i] = gauss(r);
    for (size_t i = 0; i < nq * d; i++) q[i] = gauss(r);
    switch (k) {
    case K_OFFSET: /* a common mean 1000x the spread */
        for (size_t i = 0; i < nlist * d; i++) c[i] += 1000.0f + (float)(i % d);
        for (size_t i = 0; i < nq * d; i++) q[i] += 1000.0f + (float)(i % d);
        break;
    case K_DUPS: /* pairs of equal centroids; queries on centroids */
        for (size_t i = 1; i < nlist; i += 2) memcpy(c + i * d, c + (i - 1) * d, d * sizeof(float));
        for (size_t i = 0; i < nq; i += 2)
            memcpy(q + i * d, c + (synth_next(r) % nlist) * d, d * sizeof(float));
        break;
    case K_GRID: /* small integers: many exactly equal distances */
        for (size_t i = 0; i < nlist * d; i++) c[i] = (float)(int)(synth_next(r) % 3) - 1.0f;
        for (size_t i = 0; i < nq * d; i++) q[i] = (float)(int)(synth_next(r) % 3) - 1.0f;
        break;
    case K_HUGE:
        for (size_t i = 0; i < nlist * d; i++) c[i] *= 1e12f;
        for (size_t i = 0; i < nq * d; i++) q[i] *= 1e12f;
        break;
    case K_TINY:
        for (size_t i = 0; i < nlist * d; i++) c[i] *= 1e-12f;
        for (size_t i = 0; i < nq * d; i++) q[i] *= 1e-12f;
        break;
    case K_ZERO: /* zero rows and one-hot rows */
        for (size_t i = 0; i < nlist; i += 3) memset(c + i * d, 0, d * sizeof(float));
        for (size_t i = 1; i < nlist; i += 3) {
            memset(c + i * d, 0, d * sizeof(float));
            c[i * d + i % d] = 1.0f;
        }
        for (size_t i = 0; i < nq; i += 2) memset(q + i * d, 0, d * sizeof(float));
        break;
    default: break;
    }
}

static void prefilter_equals_float_search(void **state)
{
    (void)state;
    static const size_t dims[] = {1, 2, 3, 7, 16, 33, 64, 100, 256, 771, 1030};
    static const size_t nlists[] = {64, 97, 200, 513};
    synth_rng r;
    synth_seed(&r, 2024);
    size_t cases = 0;
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
        for (size_t li = 0; li < sizeof nlists / sizeof nlists[0]; li++)
            for (int kind = 0; kind < K_KINDS; kind++) {
                size_t d = dims[di], nlist = nlists[li], nq = 1 + synth_next(&r) % 40;
                int ip = (int)((di + li + (size_t)kind) % 2);
                float *c = malloc(nlist * d * sizeof(float)), *q = malloc(nq * d * sizeof(float));
                float *cn = malloc(nlist * sizeof(float));
                assert_true(c && q && cn);
                make_data(&r, kind, nlist, nq, d, c, q);
                for (size_t i = 0; i < nlist; i++) cn[i] = ivfpq__dot(c + i * d, c + i * d, d);
                void *tab = malloc(ivfpq__cpf_bytes(nlist, d));
                void *scr = malloc(ivfpq__cpf_scratch_bytes(nlist, d));
                float *fs = malloc(ivfpq__coarse_scratch_floats(nq, nlist) * sizeof(float));
                assert_true(tab && scr && fs);
                assert_int_equal(ivfpq__cpf_prepare(tab, c, cn, nlist, d, ip), 1);
                const size_t probes[] = {1, 2, 3, 8, nlist / 8};
                for (size_t pi = 0; pi < 5; pi++) {
                    size_t P = probes[pi];
                    int32_t *wl = malloc(nq * P * sizeof(int32_t)), *gl = malloc(nq * P * sizeof(int32_t));
                    float *wd = malloc(nq * P * sizeof(float)), *gd = malloc(nq * P * sizeof(float));
                    assert_true(wl && gl && wd && gd);
                    ivfpq__coarse_search(q, nq, d, c, cn, nlist, ip, P, wl, wd, fs);
                    memset(gl, 0xff, nq * P * sizeof(int32_t));
                    ivfpq__cpf_search(tab, q, nq, d, c, cn, nlist, P, gl, gd, scr, fs);
                    if (memcmp(wl, gl, nq * P * sizeof(int32_t)) || memcmp(wd, gd, nq * P * sizeof(float)))
                        fail_msg("prefilter differs: kind %d d=%zu nlist=%zu nprobe=%zu nq=%zu %s", kind,
                                 d, nlist, P, nq, ip ? "ip" : "l2");
                    free(wl);
                    free(gl);
                    free(wd);
                    free(gd);
                    cases++;
                }
                free(tab);
                free(scr);
                free(fs);
                free(c);
                free(q);
                free(cn);
            }
    assert_true(cases == 11 * 4 * K_KINDS * 5);
}

/* Values the prefilter cannot bound (beyond 1e30) are refused: the search
 * then takes the float path. */
static void prefilter_refuses_huge_values(void **state)
{
    (void)state;
    size_t nlist = 64, d = 8;
    float *c = calloc(nlist * d, sizeof(float)), *cn = calloc(nlist, sizeof(float));
    void *tab = malloc(ivfpq__cpf_bytes(nlist, d));
    assert_true(c && cn && tab);
    c[5] = 1e35f;
    assert_int_equal(ivfpq__cpf_prepare(tab, c, cn, nlist, d, 0), 0);
    free(c);
    free(cn);
    free(tab);
}

/* A batch of nq queries (prefiltered when it pays) gives exactly what the
 * same queries give one at a time (float coarse search). */
static void assert_batch_equals_singles(const ivfpq_index *idx, size_t nq, const float *q,
                                        size_t d, size_t k, const ivfpq_search_params *p)
{
    float *D1 = malloc(nq * k * sizeof(float)), *D2 = malloc(nq * k * sizeof(float));
    int64_t *I1 = malloc(nq * k * sizeof(int64_t)), *I2 = malloc(nq * k * sizeof(int64_t));
    assert_true(D1 && D2 && I1 && I2);
    assert_int_equal(ivfpq_search(idx, nq, q, k, p, D1, I1), IVFPQ_OK);
    for (size_t i = 0; i < nq; i++)
        assert_int_equal(ivfpq_search(idx, 1, q + i * d, k, p, D2 + i * k, I2 + i * k), IVFPQ_OK);
    assert_memory_equal(I1, I2, nq * k * sizeof(int64_t));
    assert_memory_equal(D1, D2, nq * k * sizeof(float));
    free(D1);
    free(D2);
    free(I1);
    free(I2);
}

/* Through the public API: a batch (prefiltered) against one query at a
 * time (float coarse search), IVF Flat and IVF PQ with refine, both metrics. */
static void batch_equals_one_at_a_time(void **state)
{
    (void)state;
    static const char *specs[] = {"IVF128,Flat", "IVF100,PQ8x4fs,RFlat"};
    const size_t d = 32, n = 4000, nq = 100, k = 5;
    synth_rng r;
    synth_seed(&r, 77);
    float *x = noisy_rows(&r, n, d, 3.0f, 7), *q = noisy_rows(&r, nq, d, 3.0f, 7);
    for (size_t s = 0; s < 2; s++)
        for (int m = 0; m < 2; m++) {
            ivfpq_index *idx;
            assert_int_equal(ivfpq_index_factory(&idx, (int)d, specs[s],
                                                 m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2, NULL),
                             IVFPQ_OK);
            assert_int_equal(ivfpq_train(idx, n, x), IVFPQ_OK);
            assert_int_equal(ivfpq_add(idx, n, x, NULL), IVFPQ_OK);
            for (size_t nprobe = 1; nprobe <= 8; nprobe *= 2) {
                ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
                p.nprobe = nprobe;
                p.k_factor = 2.0f;
                assert_batch_equals_singles(idx, nq, q, d, k, &p);
            }
            ivfpq_free(idx);
        }
    free(x);
    free(q);
}

/* search_blend goes by chunks of 256 queries, and chunks after the first
 * reuse the first one's prefilter tables: 600 queries at once (chunks of
 * 256, 256, 88) blend exactly as one at a time (no prefilter). */
static void blend_chunks_share_tables(void **state)
{
    (void)state;
    const size_t d = 16, n = 3000, nq = 600, k = 4;
    synth_rng r;
    synth_seed(&r, 78);
    float *x = noisy_rows(&r, n, d, 2.0f, 5), *q = noisy_rows(&r, nq, d, 2.0f, 5);
    float *o1 = malloc(nq * d * sizeof(float)), *o2 = malloc(nq * d * sizeof(float));
    assert_true(o1 && o2);
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, "IVF64,Flat", IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, n, x), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, n, x, NULL), IVFPQ_OK);
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 2;
    assert_int_equal(ivfpq_search_blend(idx, nq, q, k, &p, 0.75, o1), IVFPQ_OK);
    for (size_t i = 0; i < nq; i++)
        assert_int_equal(ivfpq_search_blend(idx, 1, q + i * d, k, &p, 0.75, o2 + i * d), IVFPQ_OK);
    assert_memory_equal(o1, o2, nq * d * sizeof(float));
    ivfpq_free(idx);
    free(x);
    free(q);
    free(o1);
    free(o2);
}

static size_t mem_bytes(const ivfpq_index *idx)
{
    ivfpq_info info;
    assert_int_equal(ivfpq_get_info(idx, &info), IVFPQ_OK);
    return info.memory_bytes;
}

/* Tables kept in the index (ivfpq_cache_coarse_tables): searches, blends
 * and adds give exactly what they give without, the workspace shrinks by
 * the tables' size and memory_bytes grows by it; dropping them undoes it. */
static void kept_tables_change_nothing(void **state)
{
    (void)state;
    static const char *specs[] = {"IVF128,Flat", "IVF100,PQ8x4fs,RFlat"};
    const size_t d = 24, n = 3000, nq = 100, k = 5;
    synth_rng r;
    synth_seed(&r, 79);
    float *x = noisy_rows(&r, 2 * n, d, 3.0f, 5), *q = noisy_rows(&r, nq, d, 3.0f, 5);
    float *b1 = malloc(nq * d * sizeof(float)), *b2 = malloc(nq * d * sizeof(float));
    assert_true(b1 && b2);
    for (size_t s = 0; s < 2; s++)
        for (int m = 0; m < 2; m++) {
            ivfpq_metric metric = m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2;
            ivfpq_index *a, *b;
            assert_int_equal(ivfpq_index_factory(&a, (int)d, specs[s], metric, NULL), IVFPQ_OK);
            assert_int_equal(ivfpq_index_factory(&b, (int)d, specs[s], metric, NULL), IVFPQ_OK);
            assert_int_equal(ivfpq_train(a, n, x), IVFPQ_OK);
            assert_int_equal(ivfpq_train(b, n, x), IVFPQ_OK);
            size_t m0 = mem_bytes(b), ws0, ws1;
            ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
            p.nprobe = 4;
            assert_int_equal(ivfpq_search_workspace_size(b, nq, k, &p, &ws0), IVFPQ_OK);
            assert_int_equal(ivfpq_cache_coarse_tables(b, 1), IVFPQ_OK);
            assert_int_equal(ivfpq_cache_coarse_tables(b, 1), IVFPQ_OK); /* twice: kept once */
            size_t tb = ivfpq__cpf_bytes(b->nlist, d);
            assert_int_equal(mem_bytes(b), m0 + tb);
            assert_int_equal(ivfpq_search_workspace_size(b, nq, k, &p, &ws1), IVFPQ_OK);
            assert_int_equal(ws0 - ws1, tb);
            /* add through the kept tables, in two calls */
            for (size_t h = 0; h < 2; h++) {
                assert_int_equal(ivfpq_add(a, n, x + h * n * d, NULL), IVFPQ_OK);
                assert_int_equal(ivfpq_add(b, n, x + h * n * d, NULL), IVFPQ_OK);
            }
            for (size_t nprobe = 1; nprobe <= 16; nprobe *= 2) {
                p.nprobe = nprobe;
                float D1[100 * 5], D2[100 * 5];
                int64_t I1[100 * 5], I2[100 * 5];
                assert_int_equal(ivfpq_search(a, nq, q, k, &p, D1, I1), IVFPQ_OK);
                assert_int_equal(ivfpq_search(b, nq, q, k, &p, D2, I2), IVFPQ_OK);
                assert_memory_equal(I1, I2, sizeof I1);
                assert_memory_equal(D1, D2, sizeof D1);
                if (s == 1) {
                    assert_int_equal(ivfpq_search_blend(a, nq, q, k, &p, 0.5, b1), IVFPQ_OK);
                    assert_int_equal(ivfpq_search_blend(b, nq, q, k, &p, 0.5, b2), IVFPQ_OK);
                    assert_memory_equal(b1, b2, nq * d * sizeof(float));
                }
            }
            size_t with = mem_bytes(b);
            assert_int_equal(ivfpq_cache_coarse_tables(b, 0), IVFPQ_OK);
            assert_int_equal(mem_bytes(b), with - tb);
            ivfpq_free(a);
            ivfpq_free(b);
        }
    free(x);
    free(q);
    free(b1);
    free(b2);
}

/* Training again (after reset) rebuilds kept tables for the new centroids:
 * a batch then equals one query at a time (float coarse search). */
static void kept_tables_follow_training(void **state)
{
    (void)state;
    const size_t d = 16, n = 3000, nq = 64, k = 4;
    synth_rng r;
    synth_seed(&r, 80);
    float *x = noisy_rows(&r, n, d, 2.0f, 3), *q = noisy_rows(&r, nq, d, 0.0f, 0);
    for (size_t i = 0; i < nq * d; i++) q[i] = 4.0f * q[i] + 50.0f;
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, "IVF64,Flat", IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, n, x), IVFPQ_OK);
    assert_int_equal(ivfpq_cache_coarse_tables(idx, 1), IVFPQ_OK);
    for (size_t i = 0; i < n * d; i++) x[i] = 4.0f * x[i] + 50.0f; /* other centroids */
    assert_int_equal(ivfpq_train(idx, n, x), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, n, x, NULL), IVFPQ_OK);
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 3;
    assert_batch_equals_singles(idx, nq, q, d, k, &p);
    ivfpq_free(idx);
    free(x);
    free(q);
}

/* Tables kept under one SIMD level and searched under another
 * (ivfpq_simd_force): int8 tables (AVX512-VNNI) meet a table without the
 * int8 kernel and int16 ones meet VNNI; results stay those of the float
 * coarse search. */
static void kept_tables_across_levels(void **state)
{
    (void)state;
    const size_t d = 40, n = 4000, nq = 70, k = 5;
    synth_rng r;
    synth_seed(&r, 82);
    float *x = noisy_rows(&r, n, d, 1.0f, 7), *q = noisy_rows(&r, nq, d, 0.0f, 0);
    ivfpq_simd_level start = ivfpq_simd_active();
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, "IVF128,Flat", IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, n, x), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, n, x, NULL), IVFPQ_OK);
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 2;
    size_t pairs = 0;
    for (int a = IVFPQ_SIMD_SCALAR; a <= IVFPQ_SIMD_NEON; a++)
        for (int b = IVFPQ_SIMD_SCALAR; b <= IVFPQ_SIMD_NEON; b++) {
            if (!ivfpq_simd_supported((ivfpq_simd_level)a) || !ivfpq_simd_supported((ivfpq_simd_level)b))
                continue;
            assert_int_equal(ivfpq_simd_force((ivfpq_simd_level)a), IVFPQ_OK);
            assert_int_equal(ivfpq_cache_coarse_tables(idx, 0), IVFPQ_OK);
            assert_int_equal(ivfpq_cache_coarse_tables(idx, 1), IVFPQ_OK);
            assert_int_equal(ivfpq_simd_force((ivfpq_simd_level)b), IVFPQ_OK);
            assert_batch_equals_singles(idx, nq, q, d, k, &p);
            pairs++;
        }
    assert_true(pairs >= 1);
    assert_int_equal(ivfpq_simd_force(start), IVFPQ_OK);
    ivfpq_free(idx);
    free(x);
    free(q);
}

/* Errors, no-ops, and running out of memory (nothing changes). */
static void kept_tables_errors(void **state)
{
    (void)state;
    const size_t d = 8, n = 1000;
    synth_rng r;
    synth_seed(&r, 81);
    float *x = noisy_rows(&r, n, d, 0.0f, 0);
    assert_int_equal(ivfpq_cache_coarse_tables(NULL, 1), IVFPQ_E_INVALID_ARG);
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, "Flat", IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_cache_coarse_tables(idx, 1), IVFPQ_E_UNSUPPORTED);
    assert_int_equal(ivfpq_cache_coarse_tables(idx, 0), IVFPQ_OK);
    ivfpq_free(idx);
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, "IVF32,Flat", IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_cache_coarse_tables(idx, 1), IVFPQ_E_NOT_TRAINED);
    assert_int_equal(ivfpq_train(idx, n, x), IVFPQ_OK);
    size_t m0 = mem_bytes(idx);
    assert_int_equal(ivfpq_cache_coarse_tables(idx, 1), IVFPQ_OK); /* 32 lists: never used */
    assert_int_equal(mem_bytes(idx), m0);
    ivfpq_free(idx);

    /* the call and train's rebuild run out of memory: nothing changes, nothing leaks */
    tu_alloc a = {0, 0, 0};
    ivfpq_options o;
    memset(&o, 0, sizeof o);
    o.allocator = tu_allocator(&a);
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, "IVF64,Flat", IVFPQ_METRIC_L2, &o), IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, n, x), IVFPQ_OK);
    m0 = mem_bytes(idx);
    long live = a.live;
    a.fail_at = a.calls + 1;
    assert_int_equal(ivfpq_cache_coarse_tables(idx, 1), IVFPQ_E_NOMEM);
    a.fail_at = 0;
    assert_int_equal(mem_bytes(idx), m0);
    assert_int_equal(a.live, live);
    assert_int_equal(ivfpq_cache_coarse_tables(idx, 1), IVFPQ_OK);
    size_t m1 = mem_bytes(idx);
    assert_true(m1 > m0);
    /* train's rebuild cannot get its buffer (its last allocation): the old
     * centroids and tables stay, searches answer as before */
    float *y = malloc(n * d * sizeof(float));
    assert_true(y);
    for (size_t i = 0; i < n * d; i++) y[i] = 3.0f * x[i] + 1.0f;
    long before = a.calls;
    assert_int_equal(ivfpq_train(idx, n, y), IVFPQ_OK); /* counts train's allocations */
    long last = a.calls - before;
    assert_int_equal(ivfpq_train(idx, n, x), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, n, x, NULL), IVFPQ_OK);
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 2;
    float D1[40 * 3], D2[40 * 3];
    int64_t I1[40 * 3], I2[40 * 3];
    assert_int_equal(ivfpq_search(idx, 40, y, 3, &p, D1, I1), IVFPQ_OK);
    assert_int_equal(ivfpq_reset(idx), IVFPQ_OK);
    live = a.live;
    a.fail_at = a.calls + last;
    assert_int_equal(ivfpq_train(idx, n, y), IVFPQ_E_NOMEM);
    a.fail_at = 0;
    assert_int_equal(mem_bytes(idx), m1);
    assert_int_equal(a.live, live);
    assert_int_equal(ivfpq_add(idx, n, x, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_search(idx, 40, y, 3, &p, D2, I2), IVFPQ_OK);
    assert_memory_equal(I1, I2, sizeof I1);
    assert_memory_equal(D1, D2, sizeof D1);
    free(y);
    ivfpq_free(idx);
    assert_int_equal(a.live, 0);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prefilter_equals_float_search),
        cmocka_unit_test(prefilter_refuses_huge_values),
        cmocka_unit_test(batch_equals_one_at_a_time),
        cmocka_unit_test(blend_chunks_share_tables),
        cmocka_unit_test(kept_tables_change_nothing),
        cmocka_unit_test(kept_tables_follow_training),
        cmocka_unit_test(kept_tables_across_levels),
        cmocka_unit_test(kept_tables_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

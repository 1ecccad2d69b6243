/*
 * Determinism: the same data and seed give byte-identical index files
 * (native and faiss) and identical search results
 *  - across two builds in one process,
 *  - at every SIMD level this CPU and build support (ivfpq_simd_force),
 *  - whatever the query batching (all at once, one by one, caller
 *    workspace),
 * and a different seed gives a different trained index.
 * With IVFPQ_SIMD set (make test runs every level that way, valgrind caps
 * it at avx2) only the levels up to that one are compared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define D 16
#define NB 2000
#define NQ 40
#define K 10

static float *g_x; /* NQ queries then NB base rows */
static const float *base(void) { return g_x + NQ * D; }

static const char *const specs[] = {"Flat",           "IVF16,Flat",          "PQ8x4fs",
                                    "PQ8x4fs,RFlat",  "IVF16,PQ8x4fs",       "IVF16,PQ8x4fs,RFlat",
                                    "IVF16,PQ4x4fsr", "IVF16,PQ8x4fsr,RFlat"};
#define NSPEC (sizeof specs / sizeof specs[0])

/* Everything one build produces. */
typedef struct build {
    tu_bytes native, faiss;
    float Dd[NQ * K];
    int64_t I[NQ * K];
} build;

static void make(const char *spec, ivfpq_metric metric, uint64_t seed, build *b)
{
    ivfpq_options opt = {0};
    opt.seed = seed;
    ivfpq_index *idx;
    memset(b, 0, sizeof *b);
    assert_int_equal(ivfpq_index_factory(&idx, D, spec, metric, &opt), IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, NB, base(), NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_save(idx, IVFPQ_FORMAT_NATIVE, tu_bytes_put, &b->native), IVFPQ_OK);
    assert_int_equal(ivfpq_save(idx, IVFPQ_FORMAT_FAISS, tu_bytes_put, &b->faiss), IVFPQ_OK);
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 4;
    p.k_factor = 3.0f;
    assert_int_equal(ivfpq_search(idx, NQ, g_x, K, &p, b->Dd, b->I), IVFPQ_OK);

    /* batching does not matter: one query at a time, and a caller workspace */
    float Dd[K];
    int64_t I[K];
    for (size_t q = 0; q < NQ; q++) {
        assert_int_equal(ivfpq_search(idx, 1, g_x + q * D, K, &p, Dd, I), IVFPQ_OK);
        assert_memory_equal(I, b->I + q * K, sizeof I);
        assert_memory_equal(Dd, b->Dd + q * K, sizeof Dd);
    }
    size_t ws;
    assert_int_equal(ivfpq_search_workspace_size(idx, NQ, K, &p, &ws), IVFPQ_OK);
    void *w = malloc(ws);
    float D2[NQ * K];
    int64_t I2[NQ * K];
    assert_int_equal(ivfpq_search_ws(idx, NQ, g_x, K, &p, D2, I2, w, ws), IVFPQ_OK);
    assert_memory_equal(I2, b->I, sizeof I2);
    assert_memory_equal(D2, b->Dd, sizeof D2);
    free(w);
    ivfpq_free(idx);
}

static void drop(build *b)
{
    free(b->native.p);
    free(b->faiss.p);
}

static void assert_same_build(const build *a, const build *b, const char *what, const char *spec)
{
    int same = a->native.len == b->native.len && !memcmp(a->native.p, b->native.p, a->native.len) &&
               a->faiss.len == b->faiss.len && !memcmp(a->faiss.p, b->faiss.p, a->faiss.len) &&
               !memcmp(a->I, b->I, sizeof a->I) && !memcmp(a->Dd, b->Dd, sizeof a->Dd);
    if (!same) print_error("%s: %s differs\n", spec, what);
    assert_true(same);
}

static void same_seed_same_bytes(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSPEC; s++) {
        for (int m = 0; m < 2; m++) {
            ivfpq_metric metric = m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2;
            build a, b, c;
            make(specs[s], metric, 0, &a);
            make(specs[s], metric, 1234, &b); /* 0 means the default seed, 1234 */
            assert_same_build(&a, &b, "a second build", specs[s]);
            make(specs[s], metric, 99, &c);
            if (strcmp(specs[s], "Flat") != 0) /* a trained kind: the seed matters */
                assert_true(a.native.len != c.native.len || memcmp(a.native.p, c.native.p, a.native.len));
            drop(&a);
            drop(&b);
            drop(&c);
        }
    }
}

static void every_simd_level(void **state)
{
    (void)state;
    ivfpq_simd_level start = ivfpq_simd_init();
    const ivfpq_simd_level all[] = {IVFPQ_SIMD_SCALAR, IVFPQ_SIMD_SSE, IVFPQ_SIMD_AVX2,
                                    IVFPQ_SIMD_AVX512, IVFPQ_SIMD_NEON};
    int nlevels = 0;
    size_t top = sizeof all / sizeof all[0];
    const char *env = getenv("IVFPQ_SIMD");
    for (size_t l = 0; env && l < top; l++)
        if (!strcmp(env, ivfpq_simd_name(all[l]))) top = l + 1;
    for (size_t s = 0; s < NSPEC; s++) {
        for (int m = 0; m < 2; m++) {
            ivfpq_metric metric = m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2;
            build ref;
            assert_int_equal(ivfpq_simd_force(IVFPQ_SIMD_SCALAR), IVFPQ_OK);
            make(specs[s], metric, 0, &ref);
            nlevels = 1;
            for (size_t l = 1; l < top; l++) {
                if (!ivfpq_simd_supported(all[l])) {
                    assert_int_equal(ivfpq_simd_force(all[l]), IVFPQ_E_SIMD);
                    continue;
                }
                assert_int_equal(ivfpq_simd_force(all[l]), IVFPQ_OK);
                assert_int_equal(ivfpq_simd_active(), all[l]);
                build b;
                make(specs[s], metric, 0, &b);
                assert_same_build(&ref, &b, ivfpq_simd_name(all[l]), specs[s]);
                drop(&b);
                nlevels++;
            }
            drop(&ref);
        }
    }
    assert_int_equal(ivfpq_simd_force(start), IVFPQ_OK);
    printf("determinism: %zu kinds x 2 metrics identical at %d SIMD levels\n", NSPEC, nlevels);
}

static int setup(void **state)
{
    (void)state;
    g_x = tu_synth(NB + NQ, D, 24, 5);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_x);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_same_bytes),
        cmocka_unit_test(every_simd_level),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* Factory strings: every accepted form, and malformed ones with the error
 * and a message naming the bad component. */
#include <string.h>

#include "testutil.h"

typedef struct ok_case {
    const char *spec;
    int d;
    ivfpq_kind kind;
    size_t nlist, M;
    int by_residual, refine;
    const char *canonical;
} ok_case;

static const ok_case accepted[] = {
    {"Flat", 64, IVFPQ_KIND_FLAT, 1, 0, 0, 0, "Flat"},
    {"IVF1,Flat", 64, IVFPQ_KIND_IVF_FLAT, 1, 0, 0, 0, "IVF1,Flat"},
    {"IVF1024,Flat", 64, IVFPQ_KIND_IVF_FLAT, 1024, 0, 0, 0, "IVF1024,Flat"},
    {"IVF2k,Flat", 64, IVFPQ_KIND_IVF_FLAT, 2048, 0, 0, 0, "IVF2048,Flat"},
    {"IVF1M,Flat", 8, IVFPQ_KIND_IVF_FLAT, 1048576, 0, 0, 0, "IVF1048576,Flat"},
    {"PQ16x4fs", 64, IVFPQ_KIND_PQ4FS, 1, 16, 0, 0, "PQ16x4fs"},
    {"PQ16x4fs_32", 64, IVFPQ_KIND_PQ4FS, 1, 16, 0, 0, "PQ16x4fs"},
    {"PQ64x4fs,RFlat", 64, IVFPQ_KIND_PQ4FS, 1, 64, 0, 1, "PQ64x4fs,RFlat"},
    {"PQ1x4fs", 5, IVFPQ_KIND_PQ4FS, 1, 1, 0, 0, "PQ1x4fs"},
    {"PQ5x4fs", 5, IVFPQ_KIND_PQ4FS, 1, 5, 0, 0, "PQ5x4fs"},
    {"IVF256,PQ32x4fs", 64, IVFPQ_KIND_IVF_PQ4FS, 256, 32, 0, 0, "IVF256,PQ32x4fs"},
    {"IVF256,PQ32x4fsr", 64, IVFPQ_KIND_IVF_PQ4FS, 256, 32, 1, 0, "IVF256,PQ32x4fsr"},
    {"IVF256,PQ32x4fsr_32,RFlat", 64, IVFPQ_KIND_IVF_PQ4FS, 256, 32, 1, 1, "IVF256,PQ32x4fsr,RFlat"},
    {"IVF1024,PQ128x4fs,RFlat", 256, IVFPQ_KIND_IVF_PQ4FS, 1024, 128, 0, 1, "IVF1024,PQ128x4fs,RFlat"},
    {"IVF1k,PQ384x4fs,RFlat", 768, IVFPQ_KIND_IVF_PQ4FS, 1024, 384, 0, 1, "IVF1024,PQ384x4fs,RFlat"},
};

typedef struct bad_case {
    const char *spec;
    int d;
    int status;
    const char *must_mention; /* substring of the logged message */
} bad_case;

static const bad_case rejected[] = {
    {"", 64, IVFPQ_E_PARSE, "empty"},
    {"IVF", 64, IVFPQ_E_PARSE, "'IVF'"},
    {"IVF1024", 64, IVFPQ_E_PARSE, "followed by a code"},
    {"IVF0,Flat", 64, IVFPQ_E_PARSE, "'IVF0'"},
    {"IVF-1,Flat", 64, IVFPQ_E_PARSE, "'IVF-1'"},
    {"IVFabc,Flat", 64, IVFPQ_E_PARSE, "'IVFabc'"},
    {"IVF99999999999999999999,Flat", 64, IVFPQ_E_PARSE, "too many lists"},
    {"IVF1024,", 64, IVFPQ_E_PARSE, "empty component"},
    {",Flat", 64, IVFPQ_E_PARSE, "empty component"},
    {"IVF1024,,PQ16x4fs", 64, IVFPQ_E_PARSE, "empty component"},
    {"IVF64_HNSW32,Flat", 64, IVFPQ_E_PARSE, "'IVF64_HNSW32'"},
    {"PQ0x4fs", 64, IVFPQ_E_PARSE, "'PQ0x4fs'"},
    {"PQ7x4fs", 64, IVFPQ_E_PARSE, "does not divide d=64"},
    {"PQ128x4fs", 64, IVFPQ_E_PARSE, "does not divide d=64"},
    {"PQ16x8fs", 64, IVFPQ_E_PARSE, "'PQ16x8fs'"},
    {"PQ16", 64, IVFPQ_E_PARSE, "'PQ16'"},
    {"PQ16x4", 64, IVFPQ_E_PARSE, "'PQ16x4'"},
    {"PQx4fs", 64, IVFPQ_E_PARSE, "'PQx4fs'"},
    {"PQ16x4fsr", 64, IVFPQ_E_PARSE, "needs an IVF"},
    {"PQ16x4fs_64", 64, IVFPQ_E_PARSE, "block size 64"},
    {"PQ16x4fs_", 64, IVFPQ_E_PARSE, "'PQ16x4fs_'"},
    {"PQ16x4fsz", 64, IVFPQ_E_PARSE, "'PQ16x4fsz'"},
    {"Flat,RFlat", 64, IVFPQ_E_PARSE, "RFlat"},
    {"IVF10,Flat,RFlat", 64, IVFPQ_E_PARSE, "RFlat"},
    {"IVF10,PQ16x4fs,RFlat,RFlat", 64, IVFPQ_E_PARSE, "'RFlat'"},
    {"IVF10,PQ16x4fs,Refine(Flat)", 64, IVFPQ_E_PARSE, "'Refine(Flat)'"},
    {"HNSW32", 64, IVFPQ_E_PARSE, "'HNSW32'"},
    {"OPQ16_64,IVF1024,PQ16x4fs", 64, IVFPQ_E_PARSE, "'OPQ16_64'"},
    {"flat", 64, IVFPQ_E_PARSE, "'flat'"},
    {" Flat", 64, IVFPQ_E_PARSE, "whitespace"},
    {"IVF10, Flat", 64, IVFPQ_E_PARSE, "whitespace"},
    {"IVF10,SQ8", 64, IVFPQ_E_PARSE, "'SQ8'"},
    {"IVF10,PQ8192x4fs", 8192, IVFPQ_E_PARSE, "over the limit"},
    {"Flat", 0, IVFPQ_E_INVALID_ARG, "d = 0"},
    {"Flat", -3, IVFPQ_E_INVALID_ARG, "d = -3"},
    {"Flat", (1 << 20) + 1, IVFPQ_E_INVALID_ARG, "out of range"},
};

static void accepted_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        const ok_case *c = &accepted[i];
        ivfpq_index *idx = NULL;
        int rc = ivfpq_index_factory(&idx, c->d, c->spec, IVFPQ_METRIC_L2, NULL);
        if (rc != IVFPQ_OK) fail_msg("\"%s\" rejected: %s", c->spec, ivfpq_strerror(rc));
        ivfpq_info info;
        assert_int_equal(ivfpq_get_info(idx, &info), IVFPQ_OK);
        assert_int_equal(info.kind, c->kind);
        assert_int_equal(info.nlist, c->nlist);
        assert_int_equal(info.M, c->M);
        assert_int_equal(info.by_residual, c->by_residual);
        assert_int_equal(info.refine, c->refine);
        assert_int_equal(info.d, c->d);
        assert_string_equal(info.factory, c->canonical);
        assert_int_equal(info.is_trained, c->kind == IVFPQ_KIND_FLAT);
        ivfpq_free(idx);
    }
}

static void rejected_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
        const bad_case *c = &rejected[i];
        tu_log log = {0};
        ivfpq_options opt = {0};
        opt.log = tu_log_fn;
        opt.log_user = &log;
        ivfpq_index *idx = (ivfpq_index *)&log; /* must be reset to NULL */
        int rc = ivfpq_index_factory(&idx, c->d, c->spec, IVFPQ_METRIC_L2, &opt);
        if (rc != c->status) fail_msg("\"%s\": got %d, want %d", c->spec, rc, c->status);
        assert_null(idx);
        assert_int_equal(log.nerr, 1);
        assert_int_equal(log.last_status, c->status);
        if (!strstr(log.last, c->must_mention))
            fail_msg("\"%s\": message \"%s\" does not mention %s", c->spec, log.last, c->must_mention);
    }
}

static void bad_arguments(void **state)
{
    (void)state;
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(NULL, 8, "Flat", IVFPQ_METRIC_L2, NULL), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_index_factory(&idx, 8, NULL, IVFPQ_METRIC_L2, NULL), IVFPQ_E_INVALID_ARG);
    assert_null(idx);
    assert_int_equal(ivfpq_index_factory(&idx, 8, "Flat", (ivfpq_metric)7, NULL), IVFPQ_E_INVALID_ARG);
    assert_null(idx);
    ivfpq_options opt = {0};
    opt.coarse_niter = -1;
    assert_int_equal(ivfpq_index_factory(&idx, 8, "IVF4,Flat", IVFPQ_METRIC_L2, &opt), IVFPQ_E_INVALID_ARG);
    assert_null(idx);
    ivfpq_free(NULL); /* NULL-safe */
}

/* Every failure leaves no allocation behind. */
static void no_leak_on_error(void **state)
{
    (void)state;
    tu_alloc a = {0};
    ivfpq_options opt = {0};
    opt.allocator = tu_allocator(&a);
    for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
        ivfpq_index *idx;
        ivfpq_index_factory(&idx, rejected[i].d, rejected[i].spec, IVFPQ_METRIC_L2, &opt);
        assert_int_equal(a.live, 0);
    }
    /* and allocation failures during creation */
    for (long n = 1; n <= 3; n++) {
        a.calls = 0;
        a.fail_at = n;
        ivfpq_index *idx = NULL;
        int rc = ivfpq_index_factory(&idx, 16, "IVF8,PQ4x4fs", IVFPQ_METRIC_L2, &opt);
        if (rc == IVFPQ_OK) {
            ivfpq_free(idx);
        } else {
            assert_int_equal(rc, IVFPQ_E_NOMEM);
            assert_null(idx);
        }
        assert_int_equal(a.live, 0);
    }
}

static void strerror_covers_all(void **state)
{
    (void)state;
    for (int s = 0; s >= IVFPQ_E_VERSION; s--) assert_string_not_equal(ivfpq_strerror(s), "unknown status");
    assert_string_equal(ivfpq_strerror(12345), "unknown status");
    assert_string_equal(ivfpq_version_string(), IVFPQ_VERSION_STRING);
    assert_int_equal(ivfpq_version_number(), IVFPQ_VERSION_NUMBER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepted_forms),   cmocka_unit_test(rejected_forms),
        cmocka_unit_test(bad_arguments),    cmocka_unit_test(no_leak_on_error),
        cmocka_unit_test(strerror_covers_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Bad input gets a clear status and changes nothing; allocation failures
 * and cancellation leave the index valid; the workspace API never
 * allocates.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define D 16
#define NB 2000
#define NQ 20
#define K 5

static float *g_x; /* NQ queries then NB base rows */

static int setup(void **state)
{
    (void)state;
    g_x = tu_synth(NB + NQ, D, 20, 21);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_x);
    return 0;
}

static const float *base(void) { return g_x + NQ * D; }

static ivfpq_index *make(const char *spec, ivfpq_options *opt, int train, int add)
{
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, D, spec, IVFPQ_METRIC_L2, opt), IVFPQ_OK);
    if (train) assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_OK);
    if (add) assert_int_equal(ivfpq_add(idx, NB, base(), NULL), IVFPQ_OK);
    return idx;
}

typedef struct snapshot { float Dd[NQ * K]; int64_t I[NQ * K]; size_t ntotal; } snapshot;

static void snap(const ivfpq_index *idx, snapshot *s)
{
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 3;
    s->ntotal = ivfpq_ntotal(idx);
    assert_int_equal(ivfpq_search(idx, NQ, g_x, K, &p, s->Dd, s->I), IVFPQ_OK);
}

static void same(const ivfpq_index *idx, const snapshot *s)
{
    snapshot t;
    snap(idx, &t);
    assert_int_equal(t.ntotal, s->ntotal);
    assert_memory_equal(t.I, s->I, sizeof t.I);
    assert_memory_equal(t.Dd, s->Dd, sizeof t.Dd);
}

static void null_arguments(void **state)
{
    (void)state;
    float Dd[K];
    int64_t I[K];
    ivfpq_info info;
    assert_int_equal(ivfpq_train(NULL, NB, base()), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_add(NULL, NB, base(), NULL), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_search(NULL, 1, g_x, K, NULL, Dd, I), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_reset(NULL), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_get_info(NULL, &info), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_reconstruct(NULL, 0, Dd), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_check_dim(NULL, D), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_ntotal(NULL), 0);
    assert_int_equal(ivfpq_dim(NULL), 0);
    assert_int_equal(ivfpq_is_trained(NULL), 0);
    ivfpq_index *idx = make("IVF8,PQ4x4fs,RFlat", NULL, 1, 1);
    snapshot s;
    snap(idx, &s);
    assert_int_equal(ivfpq_train(idx, NB, NULL), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_add(idx, 3, NULL, NULL), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_search(idx, 1, NULL, K, NULL, Dd, I), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_search(idx, 1, g_x, K, NULL, NULL, I), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_search(idx, 1, g_x, K, NULL, Dd, NULL), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_get_info(idx, NULL), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_reconstruct(idx, 0, NULL), IVFPQ_E_INVALID_ARG);
    /* zero-sized calls are fine */
    assert_int_equal(ivfpq_add(idx, 0, NULL, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_search(idx, 0, NULL, K, NULL, NULL, NULL), IVFPQ_OK);
    same(idx, &s);
    ivfpq_free(idx);
}

static void bad_search_params(void **state)
{
    (void)state;
    tu_log log = {0};
    ivfpq_options opt = {0};
    opt.log = tu_log_fn;
    opt.log_user = &log;
    ivfpq_index *idx = make("IVF8,PQ4x4fs,RFlat", &opt, 1, 1);
    snapshot s;
    snap(idx, &s);
    float Dd[K];
    int64_t I[K];
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    assert_int_equal(ivfpq_search(idx, 1, g_x, 0, &p, Dd, I), IVFPQ_E_INVALID_ARG);
    assert_string_equal(log.last, "search: k must be >= 1");
    assert_int_equal(ivfpq_search(idx, 1, g_x, K, &p, Dd, NULL), IVFPQ_E_INVALID_ARG);
    assert_string_equal(log.last, "search: queries, distances and labels must not be NULL");
    p.nprobe = 0;
    assert_int_equal(ivfpq_search(idx, 1, g_x, K, &p, Dd, I), IVFPQ_E_INVALID_ARG);
    assert_string_equal(log.last, "search: nprobe must be >= 1");
    p.nprobe = 1;
    const float bad_kf[] = {0.0f, 0.5f, -1.0f, NAN, INFINITY, 1e9f};
    for (size_t i = 0; i < sizeof bad_kf / sizeof bad_kf[0]; i++) {
        p.k_factor = bad_kf[i];
        assert_int_equal(ivfpq_search(idx, 1, g_x, K, &p, Dd, I), IVFPQ_E_INVALID_ARG);
        assert_non_null(strstr(log.last, "search: k_factor must be in [1, 65536] (got "));
    }
    size_t ws;
    assert_int_equal(ivfpq_search_workspace_size(idx, 1, K, &p, &ws), IVFPQ_E_INVALID_ARG);
    /* huge k * k_factor: a clear limit, not an overflow */
    p.k_factor = 65536.0f;
    assert_int_equal(ivfpq_search(idx, 1, g_x, (size_t)1 << 40, &p, Dd, I), IVFPQ_E_LIMIT);
    same(idx, &s);
    ivfpq_free(idx);
    /* without RFlat, k_factor is not used and not checked */
    idx = make("IVF8,Flat", NULL, 1, 1);
    p.k_factor = 0;
    p.nprobe = 2;
    assert_int_equal(ivfpq_search(idx, 1, g_x, K, &p, Dd, I), IVFPQ_OK);
    /* nq * k overflowing size_t */
    assert_int_equal(ivfpq_search(idx, SIZE_MAX / 2, g_x, 4, &p, Dd, I), IVFPQ_E_OVERFLOW);
    ivfpq_free(idx);
}

static void order_of_operations(void **state)
{
    (void)state;
    float Dd[K];
    int64_t I[K];
    ivfpq_index *idx = make("IVF8,PQ4x4fs", NULL, 0, 0);
    assert_int_equal(ivfpq_search(idx, 1, g_x, K, NULL, Dd, I), IVFPQ_E_NOT_TRAINED);
    assert_int_equal(ivfpq_add(idx, NB, base(), NULL), IVFPQ_E_NOT_TRAINED);
    assert_int_equal(ivfpq_ntotal(idx), 0);
    assert_false(ivfpq_is_trained(idx));
    /* fewer points than lists: an error, and the index stays usable */
    assert_int_equal(ivfpq_train(idx, 7, base()), IVFPQ_E_TOO_FEW_POINTS);
    assert_false(ivfpq_is_trained(idx));
    assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, NB, base(), NULL), IVFPQ_OK);
    /* retraining a non-empty index would orphan its codes */
    assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_E_STATE);
    assert_int_equal(ivfpq_reset(idx), IVFPQ_OK);
    assert_int_equal(ivfpq_ntotal(idx), 0);
    assert_true(ivfpq_is_trained(idx));
    size_t found;
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nfound = &found;
    assert_int_equal(ivfpq_search(idx, 1, g_x, K, &p, Dd, I), IVFPQ_OK); /* empty index */
    assert_int_equal(found, 0);
    assert_int_equal(I[0], -1);
    assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_OK);
    ivfpq_free(idx);
    /* PQ needs 16 points, even without IVF */
    idx = make("PQ4x4fs", NULL, 0, 0);
    assert_int_equal(ivfpq_train(idx, 15, base()), IVFPQ_E_TOO_FEW_POINTS);
    assert_int_equal(ivfpq_train(idx, 16, base()), IVFPQ_OK);
    ivfpq_free(idx);
    /* Flat needs no training: train is a no-op */
    idx = make("Flat", NULL, 0, 0);
    assert_true(ivfpq_is_trained(idx));
    assert_int_equal(ivfpq_train(idx, 3, base()), IVFPQ_OK);
    ivfpq_free(idx);
}

static void few_points_warning(void **state)
{
    (void)state;
    tu_log log = {0};
    ivfpq_options opt = {0};
    opt.log = tu_log_fn;
    opt.log_user = &log;
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, D, "IVF32,Flat", IVFPQ_METRIC_L2, &opt), IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, 32 * 38, base()), IVFPQ_OK);
    assert_int_equal(log.nwarn, 1);
    assert_non_null(strstr(log.last, "39 per centroid"));
    assert_int_equal(ivfpq_reset(idx), IVFPQ_OK);
    log.nwarn = 0;
    assert_int_equal(ivfpq_train(idx, 32 * 39, g_x), IVFPQ_OK);
    assert_int_equal(log.nwarn, 0);
    ivfpq_free(idx);
}

static void non_finite_rejected(void **state)
{
    (void)state;
    const float bad[] = {NAN, INFINITY, -INFINITY};
    float *x = malloc(NB * D * sizeof(float));
    for (size_t b = 0; b < 3; b++) {
        tu_log log = {0};
        ivfpq_options opt = {0};
        opt.log = tu_log_fn;
        opt.log_user = &log;
        ivfpq_index *idx = make("IVF8,PQ4x4fsr,RFlat", &opt, 0, 0);
        memcpy(x, base(), NB * D * sizeof(float));
        x[777 * D + 5] = bad[b];
        assert_int_equal(ivfpq_train(idx, NB, x), IVFPQ_E_NONFINITE);
        assert_non_null(strstr(log.last, "row 777, column 5"));
        assert_false(ivfpq_is_trained(idx));
        assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_OK);
        assert_int_equal(ivfpq_add(idx, NB, base(), NULL), IVFPQ_OK);
        snapshot s;
        snap(idx, &s);
        assert_int_equal(ivfpq_add(idx, NB, x, NULL), IVFPQ_E_NONFINITE);
        float q[2 * D], Dd[2 * K];
        int64_t I[2 * K];
        memcpy(q, g_x, sizeof q);
        q[D + 3] = bad[b];
        assert_int_equal(ivfpq_search(idx, 2, q, K, NULL, Dd, I), IVFPQ_E_NONFINITE);
        assert_non_null(strstr(log.last, "row 1, column 3"));
        same(idx, &s);
        ivfpq_free(idx);
    }
    free(x);
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The exact limit: +-2^52, -0.0 and subnormals pass, the next float beyond
 * 2^52, Inf and every NaN (either sign, quiet or signaling, any payload)
 * fail, at every column of rows of many widths (the check runs 8 values per
 * step with a scalar tail) and in any row; the message names the place. */
static void finite_limit_exact(void **state)
{
    (void)state;
    const float lim = 4503599627370496.0f; /* 2^52 */
    const float ok[] = {-0.0f, from_bits(1), from_bits(0x807fffffu), 1e-40f, lim, -lim,
                        nextafterf(lim, 0.0f), -nextafterf(lim, 0.0f)};
    const float bad[] = {nextafterf(lim, INFINITY), -nextafterf(lim, INFINITY), INFINITY, -INFINITY,
                         NAN, from_bits(0xffc00001u), from_bits(0x7f800001u), from_bits(0xff800001u),
                         from_bits(0x7fffffffu), from_bits(0xffffffffu), 3.4e38f, -3.4e38f};
    const int dims[] = {1, 7, 8, 9, 13, 16, 35};
    enum { NQ3 = 3 };
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        int d = dims[di];
        tu_log log = {0};
        ivfpq_options opt = {0};
        opt.log = tu_log_fn;
        opt.log_user = &log;
        ivfpq_index *idx;
        assert_int_equal(ivfpq_index_factory(&idx, d, "Flat", IVFPQ_METRIC_L2, &opt), IVFPQ_OK);
        float q[NQ3 * 35], Dd[NQ3];
        int64_t I[NQ3];
        for (size_t r = 0; r < NQ3; r++)
            for (int j = 0; j < d; j++) {
                for (size_t v = 0; v < sizeof ok / sizeof ok[0]; v++) {
                    memset(q, 0, sizeof q);
                    q[r * (size_t)d + (size_t)j] = ok[v];
                    assert_int_equal(ivfpq_search(idx, NQ3, q, 1, NULL, Dd, I), IVFPQ_OK);
                }
                for (size_t v = 0; v < sizeof bad / sizeof bad[0]; v++) {
                    memset(q, 0, sizeof q);
                    q[r * (size_t)d + (size_t)j] = bad[v];
                    assert_int_equal(ivfpq_search(idx, NQ3, q, 1, NULL, Dd, I), IVFPQ_E_NONFINITE);
                    char where[64];
                    snprintf(where, sizeof where, "search: queries: row %zu, column %d is ", r, j);
                    assert_non_null(strstr(log.last, where));
                }
            }
        ivfpq_free(idx);
    }
}

static void ids_and_dims(void **state)
{
    (void)state;
    ivfpq_index *idx = make("IVF4,Flat", NULL, 1, 0);
    int64_t ids[3] = {5, -7, 9};
    assert_int_equal(ivfpq_add(idx, 3, base(), ids), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_ntotal(idx), 0);
    ids[1] = 5; /* repeated labels are stored as given */
    assert_int_equal(ivfpq_add(idx, 3, base(), ids), IVFPQ_OK);
    assert_int_equal(ivfpq_check_dim(idx, D), IVFPQ_OK);
    assert_int_equal(ivfpq_check_dim(idx, D + 1), IVFPQ_E_DIM);
    assert_int_equal(ivfpq_dim(idx), D);
    ivfpq_free(idx);
}

static void reconstruct(void **state)
{
    (void)state;
    const char *keeps[] = {"Flat", "IVF8,Flat", "PQ4x4fs,RFlat", "IVF8,PQ8x4fsr,RFlat"};
    float out[D], outn[10 * D];
    for (size_t i = 0; i < 4; i++) {
        ivfpq_index *idx = make(keeps[i], NULL, 1, 1);
        assert_int_equal(ivfpq_reconstruct(idx, 1234, out), IVFPQ_OK);
        assert_memory_equal(out, base() + 1234 * D, sizeof out);
        assert_int_equal(ivfpq_reconstruct_n(idx, 100, 10, outn), IVFPQ_OK);
        assert_memory_equal(outn, base() + 100 * D, sizeof outn);
        assert_int_equal(ivfpq_reconstruct(idx, NB, out), IVFPQ_E_NOT_FOUND);
        assert_int_equal(ivfpq_reconstruct(idx, -1, out), IVFPQ_E_INVALID_ARG);
        assert_int_equal(ivfpq_reconstruct_n(idx, NB - 5, 10, outn), IVFPQ_E_NOT_FOUND);
        ivfpq_free(idx);
    }
    ivfpq_index *idx = make("IVF8,PQ4x4fs", NULL, 1, 1);
    assert_int_equal(ivfpq_reconstruct(idx, 0, out), IVFPQ_E_UNSUPPORTED);
    ivfpq_free(idx);
}

static void normalize(void **state)
{
    (void)state;
    float x[3 * 4] = {3, 4, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
    assert_int_equal(ivfpq_normalize_l2(3, 4, x), IVFPQ_OK);
    assert_true(fabsf(x[0] - 0.6f) < 1e-6f && fabsf(x[1] - 0.8f) < 1e-6f);
    for (int j = 4; j < 8; j++) assert_true(x[j] == 0.0f); /* zero rows stay zero */
    for (int j = 8; j < 12; j++) assert_true(fabsf(x[j] - 0.5f) < 1e-6f);
    assert_int_equal(ivfpq_normalize_l2(3, 0, x), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_normalize_l2(3, 4, NULL), IVFPQ_E_INVALID_ARG);
}

/* The caller-workspace path performs no allocation at all. */
static void workspace(void **state)
{
    (void)state;
    const char *specs[] = {"Flat", "IVF8,Flat", "PQ4x4fs", "PQ4x4fs,RFlat", "IVF8,PQ4x4fs",
                           "IVF8,PQ4x4fsr,RFlat"};
    for (size_t i = 0; i < 6; i++) {
        for (int m = 0; m < 2; m++) {
            tu_alloc a = {0};
            ivfpq_options opt = {0};
            opt.allocator = tu_allocator(&a);
            ivfpq_index *idx;
            assert_int_equal(ivfpq_index_factory(&idx, D, specs[i],
                                                 m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2, &opt),
                             IVFPQ_OK);
            assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_OK);
            assert_int_equal(ivfpq_add(idx, NB, base(), NULL), IVFPQ_OK);
            ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
            p.nprobe = 3;
            size_t ws;
            assert_int_equal(ivfpq_search_workspace_size(idx, NQ, K, &p, &ws), IVFPQ_OK);
            unsigned char *buf = malloc(ws + 1);
            float D1[NQ * K], D2[NQ * K];
            int64_t I1[NQ * K], I2[NQ * K];
            assert_int_equal(ivfpq_search(idx, NQ, g_x, K, &p, D1, I1), IVFPQ_OK);
            long calls = a.calls;
            /* exact size, at an odd address */
            assert_int_equal(ivfpq_search_ws(idx, NQ, g_x, K, &p, D2, I2, buf + 1, ws), IVFPQ_OK);
            assert_int_equal(a.calls, calls);
            assert_memory_equal(I1, I2, sizeof I1);
            assert_memory_equal(D1, D2, sizeof D1);
            assert_int_equal(ivfpq_search_ws(idx, NQ, g_x, K, &p, D2, I2, buf, ws - 1), IVFPQ_E_WORKSPACE);
            assert_int_equal(ivfpq_search_ws(idx, NQ, g_x, K, &p, D2, I2, NULL, ws), IVFPQ_E_WORKSPACE);
            free(buf);
            ivfpq_free(idx);
            assert_int_equal(a.live, 0);
        }
    }
}

/* Fail the 1st, 2nd, ... allocation of train, add and search in turn:
 * IVFPQ_E_NOMEM each time, nothing leaked, the index still right. */
static void allocation_failures(void **state)
{
    (void)state;
    const char *specs[] = {"IVF8,Flat", "IVF8,PQ4x4fsr,RFlat", "PQ4x4fs"};
    for (size_t i = 0; i < 3; i++) {
        ivfpq_index *ref = make(specs[i], NULL, 1, 1);
        snapshot want;
        snap(ref, &want);
        tu_alloc a = {0};
        ivfpq_options opt = {0};
        opt.allocator = tu_allocator(&a);
        ivfpq_index *idx;
        assert_int_equal(ivfpq_index_factory(&idx, D, specs[i], IVFPQ_METRIC_L2, &opt), IVFPQ_OK);
        int rc;
        long fails = 0, n;
        for (n = 1;; n++) {
            long live = a.live;
            a.calls = 0;
            a.fail_at = n;
            rc = ivfpq_train(idx, NB, base());
            if (rc == IVFPQ_OK) break;
            assert_int_equal(rc, IVFPQ_E_NOMEM);
            assert_false(ivfpq_is_trained(idx));
            assert_int_equal(a.live, live);
            fails++;
        }
        for (n = 1;; n++) {
            long live = a.live;
            a.calls = 0;
            a.fail_at = n;
            rc = ivfpq_add(idx, NB, base(), NULL);
            if (rc == IVFPQ_OK) break;
            assert_int_equal(rc, IVFPQ_E_NOMEM);
            assert_int_equal(ivfpq_ntotal(idx), 0);
            assert_int_equal(a.live, live);
            fails++;
        }
        float Dd[NQ * K];
        int64_t I[NQ * K];
        ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
        p.nprobe = 3;
        a.calls = 0;
        a.fail_at = 1;
        assert_int_equal(ivfpq_search(idx, NQ, g_x, K, &p, Dd, I), IVFPQ_E_NOMEM);
        a.fail_at = 0;
        same(idx, &want);
        assert_true(fails >= 3);
        ivfpq_free(idx);
        ivfpq_free(ref);
        assert_int_equal(a.live, 0);
    }
}

typedef struct cancel { int calls, stop_at; } cancel;

static int progress_fn(void *user, const char *stage, size_t done, size_t total)
{
    cancel *c = user;
    (void)stage;
    assert_true(done <= total);
    return ++c->calls == c->stop_at;
}

static void cancellation(void **state)
{
    (void)state;
    cancel c = {0, 3};
    ivfpq_options opt = {0};
    opt.progress = progress_fn;
    opt.progress_user = &c;
    ivfpq_index *idx = make("IVF8,PQ4x4fs", &opt, 0, 0);
    assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_E_CANCELED);
    assert_false(ivfpq_is_trained(idx));
    c.stop_at = 0;
    assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_OK);
    c.calls = 0;
    c.stop_at = 1;
    assert_int_equal(ivfpq_add(idx, NB, base(), NULL), IVFPQ_E_CANCELED);
    assert_int_equal(ivfpq_ntotal(idx), 0);
    c.stop_at = 0;
    assert_int_equal(ivfpq_add(idx, NB, base(), NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_ntotal(idx), NB);
    ivfpq_free(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(null_arguments),     cmocka_unit_test(bad_search_params),
        cmocka_unit_test(order_of_operations), cmocka_unit_test(few_points_warning),
        cmocka_unit_test(non_finite_rejected), cmocka_unit_test(finite_limit_exact),
        cmocka_unit_test(ids_and_dims),
        cmocka_unit_test(reconstruct),        cmocka_unit_test(normalize),
        cmocka_unit_test(workspace),          cmocka_unit_test(allocation_failures),
        cmocka_unit_test(cancellation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

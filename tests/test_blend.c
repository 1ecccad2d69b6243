/*
 * ivfpq_search_blend against a straightforward reference: ivfpq_search,
 * then each neighbour fetched by label (ivfpq_reconstruct) and RVC's
 * numpy formula written out literally in float32.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* numpy's w.sum(1) for a float32 row: 0 + pairwise sum; for k <= 15 that
 * is a plain loop below 8 terms, else 8 partial sums then the rest. */
static float ref_sum(const float *w, size_t k)
{
    float s;
    if (k < 8) {
        s = 0.0f;
        for (size_t i = 0; i < k; i++) s = s + w[i];
    } else {
        s = ((w[0] + w[1]) + (w[2] + w[3])) + ((w[4] + w[5]) + (w[6] + w[7]));
        for (size_t i = 8; i < k; i++) s = s + w[i];
    }
    return 0.0f + s;
}

/* Reference of one query from the search results D, I (k <= 15, finite
 * formula): reconstruct by label, weights, sequential weighted sum, mix. */
static void ref_blend(const ivfpq_index *idx, const float *x, size_t d, size_t k,
                      const float *D, const int64_t *I, double rate, float *out)
{
    float w[16], *y = malloc(d * sizeof(float)), *acc = calloc(d, sizeof(float));
    for (size_t i = 0; i < k; i++) {
        float r = 1.0f / D[i];
        w[i] = r * r;
    }
    float s = ref_sum(w, k);
    for (size_t i = 0; i < k; i++) w[i] = w[i] / s;
    for (size_t i = 0; i < k; i++) {
        if (I[i] < 0) continue;
        assert_int_equal(ivfpq_reconstruct(idx, I[i], y), IVFPQ_OK);
        for (size_t j = 0; j < d; j++) {
            float p = y[j] * w[i];
            acc[j] = acc[j] + p;
        }
    }
    float a = (float)rate, b = (float)(1.0 - rate);
    for (size_t j = 0; j < d; j++) {
        float u = a * acc[j], v = b * x[j];
        out[j] = u + v;
    }
    free(y);
    free(acc);
}

/* Bit-exact agreement with the reference for one kind; also the _ws form,
 * in place, and more queries than one internal chunk (256). */
static void check_kind(const char *spec, ivfpq_metric metric, size_t k, size_t nprobe)
{
    const size_t nb = 6000, nq = 300, d = 24;
    double rate = 0.75;
    float *xb = tu_synth(nb + nq, d, 40, 21), *xq = xb + nb * d;
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, spec, metric, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, nb, xb), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, nb, xb, NULL), IVFPQ_OK);
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = nprobe;
    float *D = malloc(nq * k * sizeof(float));
    int64_t *I = malloc(nq * k * sizeof(int64_t));
    float *out = malloc(nq * d * sizeof(float)), *ref = malloc(nq * d * sizeof(float));
    assert_int_equal(ivfpq_search(idx, nq, xq, k, &p, D, I), IVFPQ_OK);
    for (size_t i = 0; i < nq; i++)
        ref_blend(idx, xq + i * d, d, k, D + i * k, I + i * k, rate, ref + i * d);
    assert_int_equal(ivfpq_search_blend(idx, nq, xq, k, &p, rate, out), IVFPQ_OK);
    assert_memory_equal(out, ref, nq * d * sizeof(float));

    size_t ws_size;
    assert_int_equal(ivfpq_search_blend_workspace_size(idx, nq, k, &p, &ws_size), IVFPQ_OK);
    void *ws = malloc(ws_size + 1);
    memset(out, 0, nq * d * sizeof(float));
    /* any alignment is accepted */
    assert_int_equal(ivfpq_search_blend_ws(idx, nq, xq, k, &p, rate, out, (char *)ws + 1, ws_size),
                     IVFPQ_OK);
    assert_memory_equal(out, ref, nq * d * sizeof(float));
    assert_int_equal(ivfpq_search_blend_ws(idx, nq, xq, k, &p, rate, out, ws, ws_size - 1),
                     IVFPQ_E_WORKSPACE);

    float *inplace = malloc(nq * d * sizeof(float));
    memcpy(inplace, xq, nq * d * sizeof(float));
    assert_int_equal(ivfpq_search_blend(idx, nq, inplace, k, &p, rate, inplace), IVFPQ_OK);
    assert_memory_equal(inplace, ref, nq * d * sizeof(float));

    free(inplace);
    free(ws);
    ivfpq_free(idx);
    free(xb);
    free(D);
    free(I);
    free(out);
    free(ref);
}

static void ivf_flat_k8(void **state) { (void)state; check_kind("IVF32,Flat", IVFPQ_METRIC_L2, 8, 1); }
static void ivf_flat_k5(void **state) { (void)state; check_kind("IVF32,Flat", IVFPQ_METRIC_L2, 5, 3); }
static void ivf_flat_k13(void **state) { (void)state; check_kind("IVF32,Flat", IVFPQ_METRIC_L2, 13, 2); }
static void flat_k8(void **state) { (void)state; check_kind("Flat", IVFPQ_METRIC_L2, 8, 1); }
static void ivfpq_rflat_k8(void **state)
{
    (void)state;
    check_kind("IVF32,PQ12x4fs,RFlat", IVFPQ_METRIC_L2, 8, 4);
}
static void ivfpqr_rflat_k8(void **state)
{
    (void)state;
    check_kind("IVF32,PQ12x4fsr,RFlat", IVFPQ_METRIC_L2, 8, 4);
}

/* A query equal to a stored vector: full weight to it, not NaN; two equal
 * stored vectors share it. rate 1: the output is that vector. */
static void exact_match_full_weight(void **state)
{
    (void)state;
    const size_t nb = 2000, d = 16, k = 8;
    float *xb = tu_synth(nb, d, 20, 5);
    memcpy(xb + 7 * d, xb + 3 * d, d * sizeof(float)); /* 3 and 7 are equal */
    const char *specs[] = {"Flat", "IVF16,Flat", "IVF16,PQ4x4fs,RFlat"};
    for (int s = 0; s < 3; s++) {
        ivfpq_index *idx;
        assert_int_equal(ivfpq_index_factory(&idx, (int)d, specs[s], IVFPQ_METRIC_L2, NULL),
                         IVFPQ_OK);
        assert_int_equal(ivfpq_train(idx, nb, xb), IVFPQ_OK);
        assert_int_equal(ivfpq_add(idx, nb, xb, NULL), IVFPQ_OK);
        ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
        p.nprobe = 16;
        float out[2 * 16], q[2 * 16];
        memcpy(q, xb + 3 * d, d * sizeof(float));    /* two exact matches */
        memcpy(q + d, xb + 100 * d, d * sizeof(float)); /* one */
        assert_int_equal(ivfpq_search_blend(idx, 2, q, k, &p, 1.0, out), IVFPQ_OK);
        for (size_t j = 0; j < 2 * d; j++) {
            assert_false(isnan(out[j]));
            assert_true(out[j] == q[j]); /* y/2 + y/2 == y exactly */
        }
        /* rate 0: the query itself, bit for bit */
        assert_int_equal(ivfpq_search_blend(idx, 2, q, k, &p, 0.0, out), IVFPQ_OK);
        for (size_t j = 0; j < 2 * d; j++) assert_true(out[j] == q[j]);
        ivfpq_free(idx);
    }
    free(xb);
}

/* Fewer results than k: missing ones get weight 0 and are not read; no
 * result at all leaves the query unchanged. */
static void missing_results(void **state)
{
    (void)state;
    const size_t d = 8, k = 8;
    float x[3 * 8], q[8], out[8], ref[8];
    for (size_t i = 0; i < 3 * d; i++) x[i] = (float)((i * 37) % 11) - 5.0f;
    for (size_t j = 0; j < d; j++) q[j] = 0.5f * (float)j - 1.0f;
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, "Flat", IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, 3, x, NULL), IVFPQ_OK);
    float D[8];
    int64_t I[8];
    size_t found = 0;
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    assert_int_equal(ivfpq_search(idx, 1, q, k, &p, D, I), IVFPQ_OK);
    assert_int_equal(I[3], -1);
    ref_blend(idx, q, d, k, D, I, 0.6, ref);
    p.nfound = &found;
    assert_int_equal(ivfpq_search_blend(idx, 1, q, k, &p, 0.6, out), IVFPQ_OK);
    assert_int_equal(found, 3);
    assert_memory_equal(out, ref, sizeof out);
    ivfpq_free(idx);

    /* trained, empty IVF index: nothing found, the query comes back */
    float *xb = tu_synth(500, d, 10, 3);
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, "IVF8,Flat", IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, 500, xb), IVFPQ_OK);
    assert_int_equal(ivfpq_search_blend(idx, 1, q, k, NULL, 0.6, out), IVFPQ_OK);
    assert_memory_equal(out, q, sizeof out);
    ivfpq_free(idx);
    free(xb);
}

/* Inner product: neighbours by IP, weights from the exact L2 distance to
 * each stored neighbour (checked in double, to float rounding). On unit
 * vectors, the L2 index gives the same neighbours and nearly equal output. */
static void inner_product_weights(void **state)
{
    (void)state;
    const size_t nb = 3000, nq = 40, d = 20, k = 8;
    float *xb = tu_synth(nb + nq, d, 30, 9), *xq = xb + nb * d;
    assert_int_equal(ivfpq_normalize_l2(nb + nq, (int)d, xb), IVFPQ_OK);
    ivfpq_index *ip, *l2;
    assert_int_equal(ivfpq_index_factory(&ip, (int)d, "Flat", IVFPQ_METRIC_INNER_PRODUCT, NULL),
                     IVFPQ_OK);
    assert_int_equal(ivfpq_index_factory(&l2, (int)d, "Flat", IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_add(ip, nb, xb, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_add(l2, nb, xb, NULL), IVFPQ_OK);
    float *o_ip = malloc(nq * d * sizeof(float)), *o_l2 = malloc(nq * d * sizeof(float));
    float D[8], y[20];
    int64_t I[8];
    assert_int_equal(ivfpq_search_blend(ip, nq, xq, k, NULL, 0.5, o_ip), IVFPQ_OK);
    assert_int_equal(ivfpq_search_blend(l2, nq, xq, k, NULL, 0.5, o_l2), IVFPQ_OK);
    for (size_t i = 0; i < nq; i++) {
        const float *x = xq + i * d;
        assert_int_equal(ivfpq_search(ip, 1, x, k, NULL, D, I), IVFPQ_OK);
        double w[8], ws = 0, b[20] = {0};
        for (size_t t = 0; t < k; t++) {
            assert_int_equal(ivfpq_reconstruct(ip, I[t], y), IVFPQ_OK);
            double s = 0;
            for (size_t j = 0; j < d; j++) s += ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
            w[t] = 1.0 / (s * s);
            ws += w[t];
        }
        for (size_t t = 0; t < k; t++) {
            assert_int_equal(ivfpq_reconstruct(ip, I[t], y), IVFPQ_OK);
            for (size_t j = 0; j < d; j++) b[j] += w[t] / ws * y[j];
        }
        for (size_t j = 0; j < d; j++) {
            double want = 0.5 * b[j] + 0.5 * x[j];
            assert_true(fabs(o_ip[i * d + j] - want) <= 1e-4 * (1 + fabs(want)));
            assert_true(fabs(o_ip[i * d + j] - o_l2[i * d + j]) <= 1e-4);
        }
    }
    free(o_ip);
    free(o_l2);
    ivfpq_free(ip);
    ivfpq_free(l2);
    free(xb);
}

/* Bad input: an error with its code, and out untouched. */
static void errors_change_nothing(void **state)
{
    (void)state;
    const size_t nb = 1000, d = 16;
    float *xb = tu_synth(nb, d, 10, 4);
    tu_log lg;
    memset(&lg, 0, sizeof lg);
    ivfpq_options o;
    memset(&o, 0, sizeof o);
    o.log = tu_log_fn;
    o.log_user = &lg;
    ivfpq_index *pq, *idx;
    float out[4 * 16], keep[4 * 16], q[4 * 16];
    memcpy(q, xb, sizeof q);
    for (size_t j = 0; j < 4 * d; j++) out[j] = keep[j] = 42.0f;

    assert_int_equal(ivfpq_index_factory(&pq, (int)d, "IVF8,PQ4x4fs", IVFPQ_METRIC_L2, &o), IVFPQ_OK);
    assert_int_equal(ivfpq_train(pq, nb, xb), IVFPQ_OK);
    assert_int_equal(ivfpq_add(pq, nb, xb, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_search_blend(pq, 4, q, 8, NULL, 0.5, out), IVFPQ_E_UNSUPPORTED);
    assert_non_null(strstr(lg.last, "RFlat"));
    ivfpq_free(pq);

    assert_int_equal(ivfpq_index_factory(&idx, (int)d, "IVF8,Flat", IVFPQ_METRIC_L2, &o), IVFPQ_OK);
    assert_int_equal(ivfpq_search_blend(idx, 4, q, 8, NULL, 0.5, out), IVFPQ_E_NOT_TRAINED);
    assert_int_equal(ivfpq_train(idx, nb, xb), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, nb, xb, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_search_blend(NULL, 4, q, 8, NULL, 0.5, out), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_search_blend(idx, 4, q, 0, NULL, 0.5, out), IVFPQ_E_INVALID_ARG);
    assert_string_equal(lg.last, "search_blend: k must be >= 1");
    assert_int_equal(ivfpq_search_blend(idx, 4, NULL, 8, NULL, 0.5, out), IVFPQ_E_INVALID_ARG);
    assert_string_equal(lg.last, "search_blend: queries and out must not be NULL");
    assert_int_equal(ivfpq_search_blend(idx, 4, q, 8, NULL, 0.5, NULL), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_search_blend(idx, 4, q, 8, NULL, -0.1, out), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_search_blend(idx, 4, q, 8, NULL, 1.5, out), IVFPQ_E_INVALID_ARG);
    assert_int_equal(ivfpq_search_blend(idx, 4, q, 8, NULL, NAN, out), IVFPQ_E_INVALID_ARG);
    assert_non_null(strstr(lg.last, "rate"));
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 0;
    assert_int_equal(ivfpq_search_blend(idx, 4, q, 8, &p, 0.5, out), IVFPQ_E_INVALID_ARG);
    assert_string_equal(lg.last, "search_blend: nprobe must be >= 1");
    size_t wsz;
    assert_int_equal(ivfpq_search_blend_workspace_size(idx, 4, 8, &p, &wsz), IVFPQ_E_INVALID_ARG);
    assert_string_equal(lg.last, "search_blend: nprobe must be >= 1");
    /* out overlapping the queries without being them */
    float buf[5 * 16];
    memcpy(buf, q, sizeof q);
    assert_int_equal(ivfpq_search_blend(idx, 4, buf, 8, NULL, 0.5, buf + 1), IVFPQ_E_INVALID_ARG);
    /* NaN in the last query: nothing written for the first ones either */
    q[3 * d + 5] = NAN;
    assert_int_equal(ivfpq_search_blend(idx, 4, q, 8, NULL, 0.5, out), IVFPQ_E_NONFINITE);
    assert_memory_equal(out, keep, sizeof out);
    q[3 * d + 5] = 0.0f;
    assert_int_equal(ivfpq_search_blend(idx, 0, NULL, 8, NULL, 0.5, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_search_blend(idx, 4, q, 8, NULL, 0.5, out), IVFPQ_OK);
    ivfpq_free(idx);
    free(xb);
}

/* The _ws form allocates nothing; the other allocates and frees. */
static void ws_no_allocation(void **state)
{
    (void)state;
    const size_t nb = 2000, d = 16, nq = 10;
    float *xb = tu_synth(nb, d, 10, 8);
    tu_alloc ta = {0, 0, 0};
    ivfpq_options o;
    memset(&o, 0, sizeof o);
    o.allocator = tu_allocator(&ta);
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, "IVF16,PQ8x4fs,RFlat", IVFPQ_METRIC_L2, &o),
                     IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, nb, xb), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, nb, xb, NULL), IVFPQ_OK);
    size_t sz;
    assert_int_equal(ivfpq_search_blend_workspace_size(idx, nq, 8, NULL, &sz), IVFPQ_OK);
    void *ws = malloc(sz);
    float out[10 * 16], out2[10 * 16];
    long calls = ta.calls, live = ta.live;
    assert_int_equal(ivfpq_search_blend_ws(idx, nq, xb, 8, NULL, 0.3, out, ws, sz), IVFPQ_OK);
    assert_int_equal(ta.calls, calls);
    ta.fail_at = ta.calls + 1;
    assert_int_equal(ivfpq_search_blend(idx, nq, xb, 8, NULL, 0.3, out2), IVFPQ_E_NOMEM);
    ta.fail_at = 0;
    assert_int_equal(ivfpq_search_blend(idx, nq, xb, 8, NULL, 0.3, out2), IVFPQ_OK);
    assert_int_equal(ta.live, live);
    assert_memory_equal(out, out2, sizeof out);
    free(ws);
    ivfpq_free(idx);
    free(xb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ivf_flat_k8),
        cmocka_unit_test(ivf_flat_k5),
        cmocka_unit_test(ivf_flat_k13),
        cmocka_unit_test(flat_k8),
        cmocka_unit_test(ivfpq_rflat_k8),
        cmocka_unit_test(ivfpqr_rflat_k8),
        cmocka_unit_test(exact_match_full_weight),
        cmocka_unit_test(missing_results),
        cmocka_unit_test(inner_product_weights),
        cmocka_unit_test(errors_change_nothing),
        cmocka_unit_test(ws_no_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Flat and IVF,Flat against an independent brute-force reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void check_flat_exact(ivfpq_metric metric)
{
    const size_t nb = 3000, nq = 50, d = 37, k = 12;
    float *xb = tu_synth(nb + nq, d, 30, 7), *xq = xb + nb * d;
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, "Flat", metric, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, nb, xb, NULL), IVFPQ_OK);
    float *D = malloc(nq * k * sizeof(float)), *RD = malloc(nq * k * sizeof(float));
    int64_t *I = malloc(nq * k * sizeof(int64_t)), *RI = malloc(nq * k * sizeof(int64_t));
    assert_int_equal(ivfpq_search(idx, nq, xq, k, NULL, D, I), IVFPQ_OK);
    tu_bruteforce(xb, nb, xq, nq, d, k, metric, RD, RI);
    assert_memory_equal(I, RI, nq * k * sizeof(int64_t));
    assert_memory_equal(D, RD, nq * k * sizeof(float));
    ivfpq_free(idx);
    free(xb);
    free(D);
    free(RD);
    free(I);
    free(RI);
}

static void flat_l2_exact(void **state) { (void)state; check_flat_exact(IVFPQ_METRIC_L2); }
static void flat_ip_exact(void **state) { (void)state; check_flat_exact(IVFPQ_METRIC_INNER_PRODUCT); }

/* With nprobe = nlist, IVF,Flat visits everything: exact results. */
static void ivf_flat_full_probe_exact(void **state)
{
    (void)state;
    const size_t nb = 4000, nq = 40, d = 32, k = 10;
    float *xb = tu_synth(nb + nq, d, 40, 11), *xq = xb + nb * d;
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, "IVF16,Flat", IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, nb, xb), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, nb, xb, NULL), IVFPQ_OK);
    float D[40 * 10], RD[40 * 10];
    int64_t I[40 * 10], RI[40 * 10];
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 1000; /* clamped to nlist */
    assert_int_equal(ivfpq_search(idx, nq, xq, k, &p, D, I), IVFPQ_OK);
    tu_bruteforce(xb, nb, xq, nq, d, k, IVFPQ_METRIC_L2, RD, RI);
    assert_memory_equal(I, RI, sizeof I);
    assert_memory_equal(D, RD, sizeof D);
    ivfpq_free(idx);
    free(xb);
}

/* k larger than ntotal: padded with -1 / +inf, nfound reports the count. */
static void padding_when_few(void **state)
{
    (void)state;
    const size_t d = 8;
    float x[5 * 8];
    for (size_t i = 0; i < 5 * d; i++) x[i] = (float)(i % 7) - 3.0f;
    for (int m = 0; m < 2; m++) {
        ivfpq_metric metric = m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2;
        ivfpq_index *idx;
        assert_int_equal(ivfpq_index_factory(&idx, (int)d, "Flat", metric, NULL), IVFPQ_OK);
        assert_int_equal(ivfpq_add(idx, 5, x, NULL), IVFPQ_OK);
        float D[2 * 8];
        int64_t I[2 * 8];
        size_t found[2];
        ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
        p.nfound = found;
        assert_int_equal(ivfpq_search(idx, 2, x, 8, &p, D, I), IVFPQ_OK);
        for (int q = 0; q < 2; q++) {
            assert_int_equal(found[q], 5);
            for (int j = 5; j < 8; j++) {
                assert_int_equal(I[q * 8 + j], -1);
                assert_true(isinf(D[q * 8 + j]));
                assert_true(m ? D[q * 8 + j] < 0 : D[q * 8 + j] > 0);
            }
        }
        ivfpq_free(idx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flat_l2_exact),
        cmocka_unit_test(flat_ip_exact),
        cmocka_unit_test(ivf_flat_full_probe_exact),
        cmocka_unit_test(padding_when_few),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

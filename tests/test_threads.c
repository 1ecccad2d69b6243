/*
 * Concurrent searches on one const index give exactly the serial results
 * (run under ThreadSanitizer by `make tsan`). Each thread uses its own
 * parameters, and half of them their own workspace.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define NT 4
#define D 24
#define NB 4000
#define NQ 64
#define K 7

typedef struct job {
    const ivfpq_index *idx;
    const float *q;
    size_t nprobe;
    float kf;
    int use_ws;
    int rounds;
    float Dd[NQ * K];
    int64_t I[NQ * K];
    int rc;
} job;

static void *run(void *arg)
{
    job *j = arg;
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = j->nprobe;
    p.k_factor = j->kf;
    size_t ws = 0;
    void *buf = NULL;
    if (j->use_ws) {
        j->rc = ivfpq_search_workspace_size(j->idx, NQ, K, &p, &ws);
        buf = malloc(ws);
    }
    for (int r = 0; r < j->rounds && j->rc == IVFPQ_OK; r++)
        j->rc = j->use_ws ? ivfpq_search_ws(j->idx, NQ, j->q, K, &p, j->Dd, j->I, buf, ws)
                          : ivfpq_search(j->idx, NQ, j->q, K, &p, j->Dd, j->I);
    free(buf);
    return NULL;
}

static void concurrent_equals_serial(void **state)
{
    (void)state;
    float *x = tu_synth(NB + NQ, D, 30, 31);
    const char *specs[] = {"IVF16,PQ8x4fs,RFlat", "IVF16,Flat", "PQ12x4fs", "IVF16,PQ6x4fsr"};
    for (size_t s = 0; s < 4; s++) {
        ivfpq_index *idx;
        assert_int_equal(ivfpq_index_factory(&idx, D, specs[s], IVFPQ_METRIC_L2, NULL), IVFPQ_OK);
        assert_int_equal(ivfpq_train(idx, NB, x + NQ * D), IVFPQ_OK);
        assert_int_equal(ivfpq_add(idx, NB, x + NQ * D, NULL), IVFPQ_OK);
        job *serial = calloc(NT, sizeof(job)), *par = calloc(NT, sizeof(job));
        for (int t = 0; t < NT; t++) {
            job j = {idx, x, (size_t)(1 + 3 * t), 1.0f + (float)t, t & 1, 1, {0}, {0}, IVFPQ_OK};
            serial[t] = j;
            run(&serial[t]);
            assert_int_equal(serial[t].rc, IVFPQ_OK);
            par[t] = j;
            par[t].rounds = 5;
        }
        pthread_t th[NT];
        for (int t = 0; t < NT; t++) assert_int_equal(pthread_create(&th[t], NULL, run, &par[t]), 0);
        for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
        for (int t = 0; t < NT; t++) {
            assert_int_equal(par[t].rc, IVFPQ_OK);
            assert_memory_equal(par[t].I, serial[t].I, sizeof par[t].I);
            assert_memory_equal(par[t].Dd, serial[t].Dd, sizeof par[t].Dd);
        }
        free(serial);
        free(par);
        ivfpq_free(idx);
    }
    free(x);
}

/* The lazy SIMD probe is raced by first callers: all must agree. */
static void *probe(void *arg)
{
    *(int *)arg = (int)ivfpq_simd_init();
    return NULL;
}

static void concurrent_init(void **state)
{
    (void)state;
    pthread_t th[NT];
    int lv[NT];
    for (int t = 0; t < NT; t++) pthread_create(&th[t], NULL, probe, &lv[t]);
    for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
    for (int t = 1; t < NT; t++) assert_int_equal(lv[t], lv[0]);
    assert_int_equal(lv[0], (int)ivfpq_simd_active());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concurrent_init),
        cmocka_unit_test(concurrent_equals_serial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

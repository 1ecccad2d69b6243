/*
 * Concurrent searches on one const index give exactly the serial results
 * (run under ThreadSanitizer by `make tsan`), for every index kind and
 * metric and every storage: owned lists, a loaded copy and a zero-copy view
 * of a buffer. Each thread uses its own parameters, half of them their own
 * workspace; one more thread meanwhile runs the other const calls (save in
 * both formats, reconstruct, info) and checks their output.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define NT 4
#define D 16
#define NB 1000
#define NQ 32
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

typedef struct bytes { unsigned char *p; size_t len, cap; } bytes;

static int put(void *user, const void *data, size_t len)
{
    bytes *b = user;
    if (b->len + len > b->cap) {
        b->cap = 2 * (b->len + len);
        unsigned char *q = realloc(b->p, b->cap);
        if (!q) return -1;
        b->p = q;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

/* The other const calls, run while the searches are. */
typedef struct reader {
    const ivfpq_index *idx;
    const bytes *native, *faiss;
    const float *row0; /* the vector labelled 0 */
    int ok;
} reader;

static void *read_calls(void *arg)
{
    reader *r = arg;
    r->ok = 1;
    for (int i = 0; i < 2; i++) {
        bytes a = {NULL, 0, 0}, b = {NULL, 0, 0};
        r->ok &= ivfpq_save(r->idx, IVFPQ_FORMAT_NATIVE, put, &a) == IVFPQ_OK && a.len == r->native->len &&
                 !memcmp(a.p, r->native->p, a.len);
        r->ok &= ivfpq_save(r->idx, IVFPQ_FORMAT_FAISS, put, &b) == IVFPQ_OK && b.len == r->faiss->len &&
                 !memcmp(b.p, r->faiss->p, b.len);
        free(a.p);
        free(b.p);
        ivfpq_info info;
        r->ok &= ivfpq_get_info(r->idx, &info) == IVFPQ_OK && info.ntotal == NB;
        float v[D];
        int rc = ivfpq_reconstruct(r->idx, 0, v);
        r->ok &= rc == IVFPQ_E_UNSUPPORTED || (rc == IVFPQ_OK && !memcmp(v, r->row0, sizeof v));
    }
    return NULL;
}

/* Serial results of NT parameter sets, then the same NT searches (and a
 * reader) concurrently: identical. Returns the serial results for
 * comparison across storages. */
static void check_index(const ivfpq_index *idx, const float *x, const bytes *native,
                        const bytes *faiss, job *serial)
{
    job *par = calloc(NT, sizeof(job));
    for (int t = 0; t < NT; t++) {
        job j = {idx, x, (size_t)(1 + 3 * t), 1.0f + (float)t, t & 1, 1, {0}, {0}, IVFPQ_OK};
        serial[t] = j;
        run(&serial[t]);
        assert_int_equal(serial[t].rc, IVFPQ_OK);
        par[t] = j;
        par[t].rounds = 2;
    }
    reader rd = {idx, native, faiss, x + NQ * D, 0};
    pthread_t th[NT + 1];
    for (int t = 0; t < NT; t++) assert_int_equal(pthread_create(&th[t], NULL, run, &par[t]), 0);
    assert_int_equal(pthread_create(&th[NT], NULL, read_calls, &rd), 0);
    for (int t = 0; t <= NT; t++) pthread_join(th[t], NULL);
    assert_true(rd.ok);
    for (int t = 0; t < NT; t++) {
        assert_int_equal(par[t].rc, IVFPQ_OK);
        assert_memory_equal(par[t].I, serial[t].I, sizeof par[t].I);
        assert_memory_equal(par[t].Dd, serial[t].Dd, sizeof par[t].Dd);
    }
    free(par);
}

static void concurrent_equals_serial(void **state)
{
    (void)state;
    float *x = tu_synth(NB + NQ, D, 30, 31);
    const char *specs[] = {"Flat",         "IVF16,Flat",          "PQ8x4fs",        "PQ8x4fs,RFlat",
                           "IVF16,PQ8x4fs", "IVF16,PQ8x4fs,RFlat", "IVF16,PQ4x4fsr", "IVF16,PQ8x4fsr,RFlat"};
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        for (int m = 0; m < 2; m++) {
            ivfpq_index *idx, *copy, *view;
            assert_int_equal(ivfpq_index_factory(&idx, D, specs[s],
                                                 m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2, NULL),
                             IVFPQ_OK);
            assert_int_equal(ivfpq_train(idx, NB, x + NQ * D), IVFPQ_OK);
            assert_int_equal(ivfpq_add(idx, NB, x + NQ * D, NULL), IVFPQ_OK);
            bytes native = {NULL, 0, 0}, faiss = {NULL, 0, 0};
            assert_int_equal(ivfpq_save(idx, IVFPQ_FORMAT_NATIVE, put, &native), IVFPQ_OK);
            assert_int_equal(ivfpq_save(idx, IVFPQ_FORMAT_FAISS, put, &faiss), IVFPQ_OK);
            assert_int_equal(ivfpq_load_from_buffer(&copy, native.p, native.len, 0, NULL), IVFPQ_OK);
            unsigned char *image = aligned_alloc(64, (native.len + 63) / 64 * 64);
            memcpy(image, native.p, native.len);
            assert_int_equal(ivfpq_load_from_buffer(&view, image, native.len, IVFPQ_LOAD_ZERO_COPY, NULL),
                             IVFPQ_OK);
            job *ref = calloc(NT, sizeof(job)), *other = calloc(NT, sizeof(job));
            check_index(idx, x, &native, &faiss, ref);
            const ivfpq_index *storages[2] = {copy, view};
            for (int st = 0; st < 2; st++) {
                check_index(storages[st], x, &native, &faiss, other);
                for (int t = 0; t < NT; t++) {
                    assert_memory_equal(other[t].I, ref[t].I, sizeof ref[t].I);
                    assert_memory_equal(other[t].Dd, ref[t].Dd, sizeof ref[t].Dd);
                }
            }
            free(ref);
            free(other);
            ivfpq_free(view);
            ivfpq_free(copy);
            ivfpq_free(idx);
            free(image);
            free(native.p);
            free(faiss.p);
        }
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

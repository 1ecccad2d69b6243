/*
 * The bad-input matrix: a table of cases, each run against every index kind
 * (8 factory strings x 2 metrics) in the state it needs (untrained, trained
 * but empty, holding vectors) and, for a populated index, in each storage
 * (owned lists, a loaded copy, a zero-copy view of a buffer). Every case has
 * an expected status per kind. After a case that must change nothing, the
 * index is proven unchanged: its native file is byte-identical and its
 * search results are identical to what they were before. At the end every
 * fixture is used again (trained, filled, searched) to show it still works.
 *
 * Policy for non-finite values (documented in ivfpq.h): NaN and +-Inf in
 * training, added or query vectors are rejected with IVFPQ_E_NONFINITE, in
 * every kind (Flat included); denormals and zeros are ordinary finite
 * values and are accepted; finite values whose distances overflow float
 * are rejected the same way rather than producing Inf/NaN distances.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define D 8
#define NB 512
#define NQ 6
#define K 5
#define NPROBE 3
#define KF 2.0f

static float *g_x;  /* NQ queries then NB base rows */
static long g_runs; /* (case, fixture, storage) combinations checked */

static const float *base(void) { return g_x + NQ * D; }

/* ------------------------------------------------------------- fixtures */

static const char *const specs[] = {"Flat",          "IVF8,Flat",          "PQ4x4fs",
                                    "PQ4x4fs,RFlat", "IVF8,PQ4x4fs",       "IVF8,PQ4x4fs,RFlat",
                                    "IVF8,PQ2x4fsr", "IVF8,PQ4x4fsr,RFlat"};
#define NSPEC (sizeof specs / sizeof specs[0])

typedef struct fixture {
    const char *spec;
    ivfpq_metric metric;
    ivfpq_info info;
    ivfpq_index *untrained, *empty, *owned, *copy, *view;
    unsigned char *image; /* 64-byte aligned native image the view searches */
} fixture;

static fixture g_fx[NSPEC * 2];

static tu_bytes save(const ivfpq_index *idx)
{
    tu_bytes b = {NULL, 0, 0};
    assert_int_equal(ivfpq_save(idx, IVFPQ_FORMAT_NATIVE, tu_bytes_put, &b), IVFPQ_OK);
    return b;
}

static ivfpq_index *create(const char *spec, ivfpq_metric metric)
{
    ivfpq_index *idx;
    assert_int_equal(ivfpq_index_factory(&idx, D, spec, metric, NULL), IVFPQ_OK);
    return idx;
}

static int fx_setup(void **state)
{
    (void)state;
    g_x = tu_synth(NB + NQ, D, 12, 77);
    for (size_t s = 0; s < NSPEC; s++) {
        for (int m = 0; m < 2; m++) {
            fixture *f = &g_fx[2 * s + (size_t)m];
            f->spec = specs[s];
            f->metric = m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2;
            f->untrained = create(f->spec, f->metric);
            f->empty = create(f->spec, f->metric);
            assert_int_equal(ivfpq_train(f->empty, NB, base()), IVFPQ_OK);
            f->owned = create(f->spec, f->metric);
            assert_int_equal(ivfpq_train(f->owned, NB, base()), IVFPQ_OK);
            assert_int_equal(ivfpq_add(f->owned, NB, base(), NULL), IVFPQ_OK);
            assert_int_equal(ivfpq_get_info(f->owned, &f->info), IVFPQ_OK);
            tu_bytes b = save(f->owned);
            assert_int_equal(ivfpq_load_from_buffer(&f->copy, b.p, b.len, 0, NULL), IVFPQ_OK);
            f->image = aligned_alloc(64, (b.len + 63) / 64 * 64);
            memcpy(f->image, b.p, b.len);
            assert_int_equal(ivfpq_load_from_buffer(&f->view, f->image, b.len, IVFPQ_LOAD_ZERO_COPY, NULL),
                             IVFPQ_OK);
            free(b.p);
        }
    }
    return 0;
}

static int fx_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSPEC * 2; i++) {
        fixture *f = &g_fx[i];
        ivfpq_free(f->untrained);
        ivfpq_free(f->empty);
        ivfpq_free(f->owned);
        ivfpq_free(f->copy);
        ivfpq_free(f->view);
        free(f->image);
    }
    free(g_x);
    return 0;
}

static int has_ivf(const fixture *f) { return f->info.kind == IVFPQ_KIND_IVF_FLAT || f->info.kind == IVFPQ_KIND_IVF_PQ4FS; }
static int has_pq(const fixture *f) { return f->info.M > 0; }
static int needs_training(const fixture *f) { return has_ivf(f) || has_pq(f); }
static int keeps_vectors(const fixture *f) { return !has_pq(f) || f->info.refine; }

/* ------------------------------------------------------------ the state */

/* Everything observable about an index: its native file and the results of
 * a fixed search (when it can search). */
typedef struct observed {
    tu_bytes file;
    size_t ntotal;
    int trained, rc;
    float Dd[NQ * K];
    int64_t I[NQ * K];
    size_t nfound[NQ];
} observed;

static void observe(const ivfpq_index *idx, observed *o)
{
    memset(o, 0, sizeof *o);
    o->file = save(idx);
    o->ntotal = ivfpq_ntotal(idx);
    o->trained = ivfpq_is_trained(idx);
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = NPROBE;
    p.k_factor = KF;
    p.nfound = o->nfound;
    o->rc = ivfpq_search(idx, NQ, g_x, K, &p, o->Dd, o->I);
}

static int same_observed(const observed *a, const observed *b)
{
    return a->file.len == b->file.len && memcmp(a->file.p, b->file.p, a->file.len) == 0 &&
           a->ntotal == b->ntotal && a->trained == b->trained && a->rc == b->rc &&
           memcmp(a->Dd, b->Dd, sizeof a->Dd) == 0 && memcmp(a->I, b->I, sizeof a->I) == 0 &&
           memcmp(a->nfound, b->nfound, sizeof a->nfound) == 0;
}

/* ------------------------------------------------------------ the cases */

typedef enum target {
    UNTRAINED = 1, /* created, not trained */
    EMPTY = 2,     /* trained, no vectors */
    OWNED = 4,     /* trained + NB vectors, owned lists */
    COPY = 8,      /* loaded copy of OWNED (flat storage) */
    VIEW = 16,     /* zero-copy view of OWNED (read-only) */
    POPULATED = OWNED | COPY | VIEW,
    MUTABLE = OWNED | COPY,
    ALL = UNTRAINED | EMPTY | POPULATED
} target;

typedef struct bad_case {
    const char *name;
    unsigned on; /* targets */
    int (*run)(ivfpq_index *idx, const fixture *f);
    int expect;  /* status, unless expect_fn says otherwise */
    int (*expect_fn)(const fixture *f, target t);
} bad_case;

/* -- shared helpers of the runs */

static int search1(const ivfpq_index *idx, size_t nq, const float *q, size_t k, size_t nprobe,
                   float kf, size_t *nfound)
{
    static float Dd[64 * 64];
    static int64_t I[64 * 64];
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = nprobe;
    p.k_factor = kf;
    p.nfound = nfound;
    return ivfpq_search(idx, nq, q, k, &p, Dd, I);
}

static float *rows_with(float v, size_t row, size_t col, size_t n)
{
    float *x = malloc(n * D * sizeof(float));
    memcpy(x, base(), n * D * sizeof(float));
    x[row * D + col] = v;
    return x;
}

/* -- training */

static int train_n0(ivfpq_index *idx, const fixture *f) { (void)f; return ivfpq_train(idx, 0, base()); }
static int train_null(ivfpq_index *idx, const fixture *f) { (void)f; return ivfpq_train(idx, NB, NULL); }
static int train_too_few(ivfpq_index *idx, const fixture *f) { (void)f; return ivfpq_train(idx, 7, base()); }
/* on a fresh index: a success would retrain the fixture */
static int train_15(ivfpq_index *idx, const fixture *f)
{
    (void)idx;
    ivfpq_index *fresh = create(f->spec, f->metric);
    int rc = ivfpq_train(fresh, 15, base());
    ivfpq_free(fresh);
    return rc;
}
static int train_overflow_nd(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    return ivfpq_train(idx, SIZE_MAX / 2, base()); /* n * d overflows */
}
static int train_overflow_bytes(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    return ivfpq_train(idx, SIZE_MAX / D / 2, base()); /* n * d fits, the bytes do not */
}
static int train_value(ivfpq_index *idx, float v)
{
    float *x = rows_with(v, 300, 3, NB);
    int rc = ivfpq_train(idx, NB, x);
    free(x);
    return rc;
}
static int train_nan(ivfpq_index *idx, const fixture *f) { (void)f; return train_value(idx, NAN); }
static int train_inf(ivfpq_index *idx, const fixture *f) { (void)f; return train_value(idx, INFINITY); }
static int train_minf(ivfpq_index *idx, const fixture *f) { (void)f; return train_value(idx, -INFINITY); }
static int train_huge(ivfpq_index *idx, const fixture *f) { (void)f; return train_value(idx, 3e38f); }

/* -- adding */

static int add_n0(ivfpq_index *idx, const fixture *f) { (void)f; return ivfpq_add(idx, 0, NULL, NULL); }
static int add_null(ivfpq_index *idx, const fixture *f) { (void)f; return ivfpq_add(idx, 4, NULL, NULL); }
static int add_value(ivfpq_index *idx, float v)
{
    float *x = rows_with(v, 17, 0, 40);
    int rc = ivfpq_add(idx, 40, x, NULL);
    free(x);
    return rc;
}
static int add_nan(ivfpq_index *idx, const fixture *f) { (void)f; return add_value(idx, NAN); }
static int add_inf(ivfpq_index *idx, const fixture *f) { (void)f; return add_value(idx, INFINITY); }
static int add_minf(ivfpq_index *idx, const fixture *f) { (void)f; return add_value(idx, -INFINITY); }
static int add_huge(ivfpq_index *idx, const fixture *f) { (void)f; return add_value(idx, -2e38f); }
static int add_negative_id(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    int64_t ids[3] = {5, -1, 9};
    return ivfpq_add(idx, 3, base(), ids);
}
static int add_min_id(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    int64_t ids[2] = {INT64_MIN, 3};
    return ivfpq_add(idx, 2, base(), ids);
}
static int add_overflow_nd(ivfpq_index *idx, const fixture *f) { (void)f; return ivfpq_add(idx, SIZE_MAX / 3, base(), NULL); }
static int add_overflow_bytes(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    return ivfpq_add(idx, SIZE_MAX / D / 2, base(), NULL);
}
static int add_overflow_total(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    return ivfpq_add(idx, SIZE_MAX - 3, base(), NULL);
}
static int reset_it(ivfpq_index *idx, const fixture *f) { (void)f; return ivfpq_reset(idx); }

/* -- searching */

static int search_k0(ivfpq_index *idx, const fixture *f) { (void)f; return search1(idx, NQ, g_x, 0, NPROBE, KF, NULL); }
static int search_nprobe0(ivfpq_index *idx, const fixture *f) { (void)f; return search1(idx, NQ, g_x, K, 0, KF, NULL); }
static int search_kf(ivfpq_index *idx, float kf) { return search1(idx, NQ, g_x, K, NPROBE, kf, NULL); }
static int search_kf0(ivfpq_index *idx, const fixture *f) { (void)f; return search_kf(idx, 0.0f); }
static int search_kf_half(ivfpq_index *idx, const fixture *f) { (void)f; return search_kf(idx, 0.5f); }
static int search_kf_neg(ivfpq_index *idx, const fixture *f) { (void)f; return search_kf(idx, -4.0f); }
static int search_kf_nan(ivfpq_index *idx, const fixture *f) { (void)f; return search_kf(idx, NAN); }
static int search_kf_inf(ivfpq_index *idx, const fixture *f) { (void)f; return search_kf(idx, INFINITY); }
static int search_kf_huge(ivfpq_index *idx, const fixture *f) { (void)f; return search_kf(idx, 1e9f); }
static int search_k_huge(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    return search1(idx, 1, g_x, (size_t)1 << 40, NPROBE, 65536.0f, NULL);
}
static int search_kkf_limit(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    return search1(idx, 1, g_x, (size_t)1 << 12, NPROBE, 65536.0f, NULL); /* 2^28 candidates */
}
static int search_nqk_overflow(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    return search1(idx, SIZE_MAX / 2, g_x, 4, NPROBE, KF, NULL);
}
static int search_nq_huge(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    return search1(idx, SIZE_MAX / 16, g_x, 1, NPROBE, KF, NULL);
}
static int search_null_q(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    float Dd[K];
    int64_t I[K];
    return ivfpq_search(idx, 1, NULL, K, NULL, Dd, I);
}
static int search_null_out(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    float Dd[K];
    int64_t I[K];
    int a = ivfpq_search(idx, 1, g_x, K, NULL, NULL, I), b = ivfpq_search(idx, 1, g_x, K, NULL, Dd, NULL);
    return a == b ? a : 1;
}
static int search_nq0(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    return ivfpq_search(idx, 0, NULL, K, NULL, NULL, NULL);
}
static int search_query(ivfpq_index *idx, float v)
{
    float q[2 * D];
    memcpy(q, g_x, sizeof q);
    q[D + 5] = v;
    return search1(idx, 2, q, K, NPROBE, KF, NULL);
}
static int search_q_nan(ivfpq_index *idx, const fixture *f) { (void)f; return search_query(idx, NAN); }
static int search_q_inf(ivfpq_index *idx, const fixture *f) { (void)f; return search_query(idx, INFINITY); }
static int search_q_minf(ivfpq_index *idx, const fixture *f) { (void)f; return search_query(idx, -INFINITY); }
static int search_q_huge(ivfpq_index *idx, const fixture *f) { (void)f; return search_query(idx, 1e30f); }

/* k > ntotal: all stored vectors are found (every list probed, enough
 * candidates), the rest padded with -1 and the worst distance. */
static int search_k_over_ntotal(ivfpq_index *idx, const fixture *f)
{
    size_t k = ivfpq_ntotal(idx) + 7, nf;
    float *Dd = malloc(k * sizeof(float));
    int64_t *I = malloc(k * sizeof(int64_t));
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 8;
    p.k_factor = 1.0f;
    p.nfound = &nf;
    int rc = ivfpq_search(idx, 1, g_x, k, &p, Dd, I);
    if (rc == IVFPQ_OK) {
        size_t n = ivfpq_ntotal(idx);
        assert_int_equal(nf, n);
        float pad = f->metric == IVFPQ_METRIC_L2 ? INFINITY : -INFINITY;
        for (size_t i = 0; i < k; i++) {
            if (i < n) {
                assert_true(I[i] >= 0 && I[i] < NB);
                assert_true(isfinite(Dd[i]));
            } else {
                assert_int_equal(I[i], -1);
                assert_true(Dd[i] == pad);
            }
        }
    }
    free(Dd);
    free(I);
    return rc;
}

/* nprobe beyond nlist is clamped: the same results as nprobe = nlist. */
static int search_nprobe_over(ivfpq_index *idx, const fixture *f)
{
    float D1[NQ * K], D2[NQ * K];
    int64_t I1[NQ * K], I2[NQ * K];
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = f->info.nlist;
    assert_int_equal(ivfpq_search(idx, NQ, g_x, K, &p, D1, I1), IVFPQ_OK);
    p.nprobe = SIZE_MAX;
    int rc = ivfpq_search(idx, NQ, g_x, K, &p, D2, I2);
    assert_memory_equal(I1, I2, sizeof I1);
    assert_memory_equal(D1, D2, sizeof D1);
    return rc;
}

/* Denormal query values are ordinary values: accepted, finite results. */
static int search_q_denormal(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    float q[D], Dd[K];
    int64_t I[K];
    for (int j = 0; j < D; j++) q[j] = 1e-42f * (float)(j + 1);
    int rc = ivfpq_search(idx, 1, q, K, NULL, Dd, I);
    if (rc == IVFPQ_OK)
        for (int i = 0; i < K; i++)
            assert_true(ivfpq_ntotal(idx) ? I[i] >= 0 && isfinite(Dd[i]) : I[i] == -1);
    return rc;
}

/* A zero query under inner product: every score is 0 (exact kinds), ties
 * broken by label, results still valid. */
static int search_q_zero(ivfpq_index *idx, const fixture *f)
{
    float q[D] = {0}, Dd[K];
    int64_t I[K];
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 8;
    int rc = ivfpq_search(idx, 1, q, K, &p, Dd, I);
    if (rc == IVFPQ_OK && ivfpq_ntotal(idx) >= K) {
        for (int i = 0; i < K; i++) assert_true(I[i] >= 0 && isfinite(Dd[i]));
        if (f->metric == IVFPQ_METRIC_INNER_PRODUCT && keeps_vectors(f))
            for (int i = 0; i < K; i++) assert_true(Dd[i] == 0.0f);
    }
    return rc;
}

static int ws_too_small(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    size_t ws;
    assert_int_equal(ivfpq_search_workspace_size(idx, NQ, K, NULL, &ws), IVFPQ_OK);
    void *buf = malloc(ws);
    float Dd[NQ * K];
    int64_t I[NQ * K];
    int a = ivfpq_search_ws(idx, NQ, g_x, K, NULL, Dd, I, buf, ws - 1);
    int b = ivfpq_search_ws(idx, NQ, g_x, K, NULL, Dd, I, NULL, ws);
    free(buf);
    return a == b ? a : 1;
}
static int ws_size_null(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    return ivfpq_search_workspace_size(idx, NQ, K, NULL, NULL);
}

/* -- stored vectors, inspection, files */

static int recon_missing(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    float out[D];
    return ivfpq_reconstruct(idx, NB + 5, out);
}
static int recon_negative(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    float out[D];
    return ivfpq_reconstruct(idx, -3, out);
}
static int recon_range_overflow(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    float out[D];
    return ivfpq_reconstruct_n(idx, INT64_MAX - 1, 4, out);
}
static int recon_null(ivfpq_index *idx, const fixture *f) { (void)f; return ivfpq_reconstruct(idx, 0, NULL); }
static int info_null(ivfpq_index *idx, const fixture *f) { (void)f; return ivfpq_get_info(idx, NULL); }
static int check_dim_wrong(ivfpq_index *idx, const fixture *f) { (void)f; return ivfpq_check_dim(idx, D + 1); }
static int save_null_writer(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    return ivfpq_save(idx, IVFPQ_FORMAT_NATIVE, NULL, NULL);
}
static int fail_write(void *user, const void *data, size_t len)
{
    (void)data;
    size_t *left = user;
    if (len > *left) return -1;
    *left -= len;
    return 0;
}
static int save_write_fails(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    size_t left = 20;
    int a = ivfpq_save(idx, IVFPQ_FORMAT_NATIVE, fail_write, &left);
    left = 20;
    int b = ivfpq_save(idx, IVFPQ_FORMAT_FAISS, fail_write, &left);
    return a == b ? a : 1;
}
static int save_bad_format(ivfpq_index *idx, const fixture *f)
{
    (void)f;
    tu_bytes b = {NULL, 0, 0};
    int rc = ivfpq_save(idx, (ivfpq_file_format)7, tu_bytes_put, &b);
    free(b.p);
    return rc;
}

/* -- expectations that depend on the kind or the state */

static int ex_train_fresh(const fixture *f, target t, int status)
{
    if (t & POPULATED) return t == VIEW ? IVFPQ_E_READONLY : IVFPQ_E_STATE;
    return needs_training(f) ? status : IVFPQ_OK;
}
static int ex_train_n0(const fixture *f, target t) { return ex_train_fresh(f, t, IVFPQ_E_TOO_FEW_POINTS); }
static int ex_train_few(const fixture *f, target t)
{
    return ex_train_fresh(f, t, IVFPQ_E_TOO_FEW_POINTS);
}
static int ex_train_15(const fixture *f, target t)
{
    /* 15 points: enough for IVF8,Flat, too few for 16 PQ centroids */
    return ex_train_fresh(f, t, has_pq(f) ? IVFPQ_E_TOO_FEW_POINTS : IVFPQ_OK);
}
static int ex_train_checked(const fixture *f, target t, int status)
{
    (void)f;
    if (t == VIEW) return IVFPQ_E_READONLY;
    if (t & MUTABLE) return IVFPQ_E_STATE;
    return status;
}
static int ex_train_nonfinite(const fixture *f, target t) { return ex_train_checked(f, t, IVFPQ_E_NONFINITE); }
static int ex_train_overflow(const fixture *f, target t) { return ex_train_checked(f, t, IVFPQ_E_OVERFLOW); }
static int ex_add(const fixture *f, target t, int status)
{
    (void)f;
    if (t == VIEW) return IVFPQ_E_READONLY;
    if (t == UNTRAINED && needs_training(f)) return IVFPQ_E_NOT_TRAINED;
    return status;
}
static int ex_add_nonfinite(const fixture *f, target t) { return ex_add(f, t, IVFPQ_E_NONFINITE); }
static int ex_add_invalid(const fixture *f, target t) { return ex_add(f, t, IVFPQ_E_INVALID_ARG); }
static int ex_add_overflow(const fixture *f, target t) { return ex_add(f, t, IVFPQ_E_OVERFLOW); }
static int ex_add_n0(const fixture *f, target t) { return ex_add(f, t, IVFPQ_OK); }
static int ex_readonly(const fixture *f, target t)
{
    (void)f;
    return t == VIEW ? IVFPQ_E_READONLY : IVFPQ_OK;
}
static int ex_search(const fixture *f, target t, int status)
{
    if (t == UNTRAINED && needs_training(f)) return IVFPQ_E_NOT_TRAINED;
    return status;
}
static int ex_search_ok(const fixture *f, target t) { return ex_search(f, t, IVFPQ_OK); }
static int ex_search_nonfinite(const fixture *f, target t) { return ex_search(f, t, IVFPQ_E_NONFINITE); }
static int ex_search_kf(const fixture *f, target t)
{
    /* k_factor is checked before anything else, and only for RFlat */
    (void)t;
    return f->info.refine ? IVFPQ_E_INVALID_ARG : ex_search(f, t, IVFPQ_OK);
}
static int ex_search_kkf(const fixture *f, target t)
{
    return ex_search(f, t, f->info.refine ? IVFPQ_E_LIMIT : IVFPQ_OK);
}
static int ex_search_overflow(const fixture *f, target t) { return ex_search(f, t, IVFPQ_E_OVERFLOW); }
static int ex_search_limit(const fixture *f, target t) { return ex_search(f, t, IVFPQ_E_LIMIT); }
static int ex_recon(const fixture *f, target t, int status)
{
    (void)t;
    return keeps_vectors(f) ? status : IVFPQ_E_UNSUPPORTED;
}
static int ex_recon_missing(const fixture *f, target t) { return ex_recon(f, t, IVFPQ_E_NOT_FOUND); }

#define E(fn) 0, fn
#define S(st) st, NULL

static const bad_case cases[] = {
    /* training */
    {"train n=0", ALL, train_n0, E(ex_train_n0)},
    {"train x=NULL", ALL, train_null, S(IVFPQ_E_INVALID_ARG)},
    {"train n < nlist", UNTRAINED | EMPTY, train_too_few, E(ex_train_few)},
    {"train n < 16 (PQ)", UNTRAINED, train_15, E(ex_train_15)},
    {"train n*d overflows size_t", ALL, train_overflow_nd, E(ex_train_overflow)},
    {"train n*d*4 overflows size_t", ALL, train_overflow_bytes, E(ex_train_overflow)},
    {"train with NaN", ALL, train_nan, E(ex_train_nonfinite)},
    {"train with +Inf", ALL, train_inf, E(ex_train_nonfinite)},
    {"train with -Inf", ALL, train_minf, E(ex_train_nonfinite)},
    {"train with 3e38 (distances overflow)", ALL, train_huge, E(ex_train_nonfinite)},
    {"train a read-only view", VIEW, train_n0, S(IVFPQ_E_READONLY)},
    /* adding */
    {"add n=0", ALL, add_n0, E(ex_add_n0)},
    {"add x=NULL", ALL, add_null, S(IVFPQ_E_INVALID_ARG)},
    {"add with NaN", ALL, add_nan, E(ex_add_nonfinite)},
    {"add with +Inf", ALL, add_inf, E(ex_add_nonfinite)},
    {"add with -Inf", ALL, add_minf, E(ex_add_nonfinite)},
    {"add with -2e38 (distances overflow)", ALL, add_huge, E(ex_add_nonfinite)},
    {"add with a negative id", ALL, add_negative_id, E(ex_add_invalid)},
    {"add with id INT64_MIN", ALL, add_min_id, E(ex_add_invalid)},
    {"add n*d overflows size_t", ALL, add_overflow_nd, E(ex_add_overflow)},
    {"add n*d*4 overflows size_t", ALL, add_overflow_bytes, E(ex_add_overflow)},
    {"add ntotal+n overflows", ALL, add_overflow_total, E(ex_add_overflow)},
    {"reset a read-only view", VIEW, reset_it, E(ex_readonly)},
    /* searching */
    {"search k=0", ALL, search_k0, S(IVFPQ_E_INVALID_ARG)},
    {"search nprobe=0", ALL, search_nprobe0, S(IVFPQ_E_INVALID_ARG)},
    {"search k_factor=0", ALL, search_kf0, E(ex_search_kf)},
    {"search k_factor=0.5", ALL, search_kf_half, E(ex_search_kf)},
    {"search k_factor<0", ALL, search_kf_neg, E(ex_search_kf)},
    {"search k_factor=NaN", ALL, search_kf_nan, E(ex_search_kf)},
    {"search k_factor=Inf", ALL, search_kf_inf, E(ex_search_kf)},
    {"search k_factor=1e9", ALL, search_kf_huge, E(ex_search_kf)},
    {"search k=2^40", ALL, search_k_huge, E(ex_search_limit)},
    {"search k*k_factor over the limit", ALL, search_kkf_limit, E(ex_search_kkf)},
    {"search nq*k overflows", ALL, search_nqk_overflow, E(ex_search_overflow)},
    {"search nq too large", ALL, search_nq_huge, E(ex_search_overflow)},
    {"search q=NULL", ALL, search_null_q, S(IVFPQ_E_INVALID_ARG)},
    {"search distances/labels=NULL", ALL, search_null_out, S(IVFPQ_E_INVALID_ARG)},
    {"search nq=0, all NULL", ALL, search_nq0, E(ex_search_ok)},
    {"search query with NaN", ALL, search_q_nan, E(ex_search_nonfinite)},
    {"search query with +Inf", ALL, search_q_inf, E(ex_search_nonfinite)},
    {"search query with -Inf", ALL, search_q_minf, E(ex_search_nonfinite)},
    {"search query with 1e30 (distances overflow)", ALL, search_q_huge, E(ex_search_nonfinite)},
    {"search query of denormals", ALL, search_q_denormal, E(ex_search_ok)},
    {"search zero query", ALL, search_q_zero, E(ex_search_ok)},
    {"search k > ntotal", ALL, search_k_over_ntotal, E(ex_search_ok)},
    {"search nprobe > nlist", EMPTY | POPULATED, search_nprobe_over, S(IVFPQ_OK)},
    {"search_ws workspace too small/NULL", EMPTY | POPULATED, ws_too_small, S(IVFPQ_E_WORKSPACE)},
    {"workspace_size size=NULL", ALL, ws_size_null, S(IVFPQ_E_INVALID_ARG)},
    /* stored vectors, inspection, files */
    {"reconstruct a missing id", EMPTY | POPULATED, recon_missing, E(ex_recon_missing)},
    {"reconstruct id<0", ALL, recon_negative, S(IVFPQ_E_INVALID_ARG)},
    {"reconstruct_n id range overflows", ALL, recon_range_overflow, S(IVFPQ_E_INVALID_ARG)},
    {"reconstruct out=NULL", ALL, recon_null, S(IVFPQ_E_INVALID_ARG)},
    {"get_info info=NULL", ALL, info_null, S(IVFPQ_E_INVALID_ARG)},
    {"check_dim wrong d", ALL, check_dim_wrong, S(IVFPQ_E_DIM)},
    {"save write=NULL", ALL, save_null_writer, S(IVFPQ_E_INVALID_ARG)},
    {"save with a failing writer", ALL, save_write_fails, S(IVFPQ_E_IO)},
    {"save unknown format", ALL, save_bad_format, S(IVFPQ_E_INVALID_ARG)},
};
#define NCASES (sizeof cases / sizeof cases[0])

static ivfpq_index *target_index(const fixture *f, target t)
{
    switch (t) {
    case UNTRAINED: return f->untrained;
    case EMPTY: return f->empty;
    case OWNED: return f->owned;
    case COPY: return f->copy;
    default: return f->view;
    }
}

static const char *target_name(target t)
{
    return t == UNTRAINED ? "untrained" : t == EMPTY ? "empty" : t == OWNED ? "owned" : t == COPY ? "copy" : "view";
}

static void matrix(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t c = 0; c < NCASES; c++) {
        const bad_case *bc = &cases[c];
        for (size_t i = 0; i < NSPEC * 2; i++) {
            const fixture *f = &g_fx[i];
            for (unsigned t = 1; t <= VIEW; t <<= 1) {
                if (!(bc->on & t)) continue;
                ivfpq_index *idx = target_index(f, (target)t);
                observed before, after;
                observe(idx, &before);
                int want = bc->expect_fn ? bc->expect_fn(f, (target)t) : bc->expect;
                int got = bc->run(idx, f);
                observe(idx, &after);
                g_runs++;
                if (got != want) {
                    print_error("case \"%s\" on %s %s (%s): status %d (%s), expected %d (%s)\n", bc->name,
                                f->spec, f->metric == IVFPQ_METRIC_L2 ? "L2" : "IP",
                                target_name((target)t), got, ivfpq_strerror(got), want, ivfpq_strerror(want));
                    failures++;
                } else if (!same_observed(&before, &after)) {
                    print_error("case \"%s\" on %s %s (%s): the index changed\n", bc->name, f->spec,
                                f->metric == IVFPQ_METRIC_L2 ? "L2" : "IP", target_name((target)t));
                    failures++;
                }
                free(before.file.p);
                free(after.file.p);
            }
        }
    }
    assert_int_equal(failures, 0);
}

/* After the whole matrix every fixture still works: the untrained one
 * trains and fills to exactly the populated index, the empty one fills to
 * it, and all storages search identically. */
static void still_usable(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSPEC * 2; i++) {
        fixture *f = &g_fx[i];
        observed want, got;
        observe(f->owned, &want);
        assert_int_equal(want.rc, IVFPQ_OK);
        assert_int_equal(ivfpq_train(f->untrained, NB, base()), IVFPQ_OK);
        assert_int_equal(ivfpq_add(f->untrained, NB, base(), NULL), IVFPQ_OK);
        assert_int_equal(ivfpq_add(f->empty, NB, base(), NULL), IVFPQ_OK);
        ivfpq_index *all[4] = {f->untrained, f->empty, f->copy, f->view};
        for (int j = 0; j < 4; j++) {
            observe(all[j], &got);
            assert_true(same_observed(&want, &got));
            free(got.file.p);
        }
        free(want.file.p);
    }
}

/* ------------------------------------------------- creation (no index yet) */

typedef struct factory_case {
    const char *name;
    int d;
    const char *spec;
    int metric;
    int opt_bad; /* a negative option */
    int expect;
} factory_case;

static const factory_case fcases[] = {
    {"d=0", 0, "Flat", IVFPQ_METRIC_L2, 0, IVFPQ_E_INVALID_ARG},
    {"d<0", -8, "IVF8,Flat", IVFPQ_METRIC_L2, 0, IVFPQ_E_INVALID_ARG},
    {"d over 2^20", (1 << 20) + 1, "Flat", IVFPQ_METRIC_L2, 0, IVFPQ_E_INVALID_ARG},
    {"d not divisible by M", 10, "PQ4x4fs", IVFPQ_METRIC_L2, 0, IVFPQ_E_PARSE},
    {"d not divisible by M (IVF, residual)", 9, "IVF8,PQ2x4fsr,RFlat", IVFPQ_METRIC_L2, 0, IVFPQ_E_PARSE},
    {"M=0", 8, "PQ0x4fs", IVFPQ_METRIC_L2, 0, IVFPQ_E_PARSE},
    {"M > d", 4, "PQ8x4fs", IVFPQ_METRIC_L2, 0, IVFPQ_E_PARSE},
    {"nlist=0", 8, "IVF0,Flat", IVFPQ_METRIC_L2, 0, IVFPQ_E_PARSE},
    {"nlist overflows", 8, "IVF99999999999999999999999,Flat", IVFPQ_METRIC_L2, 0, IVFPQ_E_PARSE},
    {"nlist*1M overflows", 8, "IVF18446744073709551M,Flat", IVFPQ_METRIC_L2, 0, IVFPQ_E_PARSE},
    {"spec NULL", 8, NULL, IVFPQ_METRIC_L2, 0, IVFPQ_E_INVALID_ARG},
    {"spec empty", 8, "", IVFPQ_METRIC_L2, 0, IVFPQ_E_PARSE},
    {"unknown metric", 8, "Flat", 7, 0, IVFPQ_E_INVALID_ARG},
    {"negative option", 8, "IVF8,Flat", IVFPQ_METRIC_L2, 1, IVFPQ_E_INVALID_ARG},
    {"d=1 Flat", 1, "Flat", IVFPQ_METRIC_L2, 0, IVFPQ_OK},
    {"d=1 IVF,PQ", 1, "IVF4,PQ1x4fsr,RFlat", IVFPQ_METRIC_INNER_PRODUCT, 0, IVFPQ_OK},
};

static void creation(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof fcases / sizeof fcases[0]; c++) {
        const factory_case *fc = &fcases[c];
        tu_log log = {0};
        ivfpq_options opt = {0};
        opt.log = tu_log_fn;
        opt.log_user = &log;
        if (fc->opt_bad) opt.coarse_niter = -1;
        ivfpq_index *idx = (ivfpq_index *)&log; /* must be overwritten */
        int rc = ivfpq_index_factory(&idx, fc->d, fc->spec, (ivfpq_metric)fc->metric, &opt);
        if (rc != fc->expect)
            print_error("factory case \"%s\": status %d, expected %d\n", fc->name, rc, fc->expect);
        assert_int_equal(rc, fc->expect);
        if (rc != IVFPQ_OK) {
            assert_null(idx);
            assert_int_equal(log.nerr, 1); /* one readable message */
        }
        ivfpq_free(idx);
        g_runs++;
    }
    assert_int_equal(ivfpq_index_factory(NULL, 8, "Flat", IVFPQ_METRIC_L2, NULL), IVFPQ_E_INVALID_ARG);
}

/* ------------------------------------- degenerate but valid data, every kind */

static void build(const char *spec, ivfpq_metric metric, int d, size_t n, const float *x,
                  ivfpq_index **out)
{
    assert_int_equal(ivfpq_index_factory(out, d, spec, metric, NULL), IVFPQ_OK);
    assert_int_equal(ivfpq_train(*out, n, x), IVFPQ_OK);
    assert_int_equal(ivfpq_add(*out, n, x, NULL), IVFPQ_OK);
}

/* With every list probed and every candidate re-ranked, exact kinds give
 * the Flat answer; PQ-only kinds give valid labels. */
static void compare_with_flat(const char *spec, ivfpq_metric metric, int d, size_t n, const float *x,
                              size_t nq, const float *q)
{
    ivfpq_index *flat, *idx;
    build("Flat", metric, d, n, x, &flat);
    build(spec, metric, d, n, x, &idx);
    size_t k = 10;
    float *D1 = malloc(nq * k * sizeof(float)), *D2 = malloc(nq * k * sizeof(float));
    int64_t *I1 = malloc(nq * k * sizeof(int64_t)), *I2 = malloc(nq * k * sizeof(int64_t));
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 1 << 20;
    p.k_factor = (float)n;
    assert_int_equal(ivfpq_search(flat, nq, q, k, &p, D1, I1), IVFPQ_OK);
    assert_int_equal(ivfpq_search(idx, nq, q, k, &p, D2, I2), IVFPQ_OK);
    ivfpq_info info;
    ivfpq_get_info(idx, &info);
    if (!info.M || info.refine) {
        assert_memory_equal(I1, I2, nq * k * sizeof(int64_t));
        assert_memory_equal(D1, D2, nq * k * sizeof(float));
    }
    for (size_t i = 0; i < nq * k; i++) {
        assert_true(I2[i] >= 0 && (size_t)I2[i] < n);
        assert_true(isfinite(D2[i]));
    }
    free(D1);
    free(D2);
    free(I1);
    free(I2);
    ivfpq_free(flat);
    ivfpq_free(idx);
}

static void degenerate_data(void **state)
{
    (void)state;
    size_t n = 300;
    float *same = malloc(n * D * sizeof(float)), *zeros = calloc(n * D, sizeof(float));
    float *d1 = malloc(n * sizeof(float)), *denorm = malloc(n * D * sizeof(float));
    float *half_zero = malloc(n * D * sizeof(float));
    for (size_t i = 0; i < n * D; i++) same[i] = (float)(i % D) - 3.5f;
    for (size_t i = 0; i < n; i++) d1[i] = (float)((i * 37) % 101) / 10.0f - 5.0f;
    for (size_t i = 0; i < n * D; i++) denorm[i] = (float)(i % 97) * 1e-41f;
    memcpy(half_zero, base(), n * D * sizeof(float));
    memset(half_zero, 0, n / 2 * D * sizeof(float));
    ivfpq_normalize_l2(n, D, half_zero); /* cosine: zero rows stay zero */
    for (size_t i = 0; i < n / 2 * D; i++) assert_true(half_zero[i] == 0.0f);
    for (size_t s = 0; s < NSPEC; s++) {
        for (int m = 0; m < 2; m++) {
            ivfpq_metric metric = m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2;
            compare_with_flat(specs[s], metric, D, n, same, 4, same);                /* all identical */
            compare_with_flat(specs[s], metric, D, n, zeros, 4, base());             /* all zero */
            compare_with_flat(specs[s], metric, D, n, half_zero, 4, half_zero);     /* cosine, zero rows */
            compare_with_flat(specs[s], metric, D, n, denorm, 4, denorm + 40 * D);  /* denormals */
            g_runs += 4;
        }
    }
    const char *d1_specs[] = {"Flat", "IVF4,Flat", "PQ1x4fs", "PQ1x4fs,RFlat", "IVF4,PQ1x4fs,RFlat",
                              "IVF4,PQ1x4fsr,RFlat"};
    for (size_t s = 0; s < 6; s++)
        for (int m = 0; m < 2; m++, g_runs++)
            compare_with_flat(d1_specs[s], m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2, 1, n, d1, 5, d1);
    free(same);
    free(zeros);
    free(d1);
    free(denorm);
    free(half_zero);
}

/* Labels collide: stored as given, every copy found, reconstruct gives the
 * first one added. */
static void colliding_ids(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSPEC; s++) {
        ivfpq_index *idx = create(specs[s], IVFPQ_METRIC_L2);
        assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_OK);
        int64_t ids[NB];
        for (size_t i = 0; i < NB; i++) ids[i] = (int64_t)(i % 7);
        assert_int_equal(ivfpq_add(idx, NB, base(), ids), IVFPQ_OK);
        ids[0] = INT64_MAX;
        assert_int_equal(ivfpq_add(idx, 1, base() + 5 * D, ids), IVFPQ_OK);
        assert_int_equal(ivfpq_ntotal(idx), NB + 1);
        /* query = row 5: its exact copy has label 5 and, second, INT64_MAX */
        float Dd[4];
        int64_t I[4];
        ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
        p.nprobe = 8;
        p.k_factor = 64.0f;
        assert_int_equal(ivfpq_search(idx, 1, base() + 5 * D, 4, &p, Dd, I), IVFPQ_OK);
        for (int i = 0; i < 4; i++) assert_true((I[i] >= 0 && I[i] < 7) || I[i] == INT64_MAX);
        ivfpq_info info;
        ivfpq_get_info(idx, &info);
        if (!info.M || info.refine) {
            assert_int_equal(I[0], 5);
            assert_int_equal(I[1], INT64_MAX);
            assert_true(Dd[0] == 0.0f && Dd[1] == 0.0f);
            /* one of the rows labelled 3 (the first in list order) */
            float out[D];
            assert_int_equal(ivfpq_reconstruct(idx, 3, out), IVFPQ_OK);
            int hit = 0;
            for (size_t r = 3; r < NB; r += 7) hit |= !memcmp(out, base() + r * D, sizeof out);
            assert_true(hit);
        }
        ivfpq_free(idx);
        g_runs++;
    }
}

static void count_report(void **state)
{
    (void)state;
    printf("bad-input matrix: %zu table cases + %zu creation cases, %ld checked runs\n", NCASES,
           sizeof fcases / sizeof fcases[0], g_runs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matrix),         cmocka_unit_test(still_usable),
        cmocka_unit_test(creation),       cmocka_unit_test(degenerate_data),
        cmocka_unit_test(colliding_ids),  cmocka_unit_test(count_report),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}

/*
 * Blended neighbours: the retrieval step of RVC-style voice conversion
 * (search, inverse-squared-distance weights, weighted average of the stored
 * neighbours, mixed with the query). The arithmetic reproduces numpy's
 * float32 evaluation of RVC's formula operation by operation, so results
 * are bit-identical to it wherever it is finite (see ivfpq.h).
 *
 * The stored neighbours are read where the search found them (list,
 * offset: ivfpq__search_where_ws), never looked up by label, and each
 * query is blended as soon as its results are final, from rows the refine
 * has just brought into cache. Queries go by chunks of BLEND_CHUNK so the
 * workspace does not grow with nq.
 */
#include <math.h>

#include "internal.h"
#include "kernels.h"

#define BLEND_CHUNK 256

typedef struct blend_plan {
    size_t C;                     /* queries per chunk */
    size_t search_bytes;          /* ivfpq_search_ws workspace for C queries */
    size_t o_search, o_dist, o_lab, o_where, o_w, o_s, o_acc;
    size_t total;
} blend_plan;

static int reserve(size_t *total, size_t *off, size_t count, size_t elem)
{
    size_t bytes, start = ivfpq__round_up(*total, IVFPQ_ALIGN);
    if (start < *total || !ivfpq__mul(count, elem, &bytes) || !ivfpq__add(start, bytes, total))
        return 0;
    *off = start;
    return 1;
}

static int plan_blend(const ivfpq_index *idx, size_t nq, size_t k,
                      const ivfpq_search_params *params, blend_plan *bp)
{
    memset(bp, 0, sizeof *bp);
    bp->C = nq < BLEND_CHUNK ? nq : BLEND_CHUNK;
    if (bp->C == 0) bp->C = 1;
    int rc = ivfpq_search_workspace_size(idx, bp->C, k, params, &bp->search_bytes);
    if (rc) return rc;
    size_t t = 0, Ck;
    int ok = ivfpq__mul(bp->C, k, &Ck);
    ok = ok && reserve(&t, &bp->o_search, bp->search_bytes, 1);
    ok = ok && reserve(&t, &bp->o_dist, Ck, sizeof(float));
    ok = ok && reserve(&t, &bp->o_lab, Ck, sizeof(int64_t));
    ok = ok && reserve(&t, &bp->o_where, Ck, sizeof(uint64_t));
    ok = ok && reserve(&t, &bp->o_w, k, sizeof(float));
    ok = ok && reserve(&t, &bp->o_s, k, sizeof(float));
    ok = ok && reserve(&t, &bp->o_acc, (size_t)idx->d, sizeof(float));
    if (!ok || !ivfpq__add(t, IVFPQ_ALIGN - 1, &bp->total))
        return ivfpq__fail(&idx->log, IVFPQ_E_OVERFLOW, "search_blend: workspace size overflows");
    return IVFPQ_OK;
}

/* numpy's pairwise summation of float32 (loops_utils.h: plain loop below 8
 * terms, 8 interleaved partial sums up to 128, halving above). */
static float np_pairwise_sum(const float *a, size_t n)
{
    if (n < 8) {
        float r = 0.0f;
        for (size_t i = 0; i < n; i++) r = r + a[i];
        return r;
    }
    if (n <= 128) {
        float r[8];
        size_t i;
        for (i = 0; i < 8; i++) r[i] = a[i];
        for (i = 8; i < n - n % 8; i += 8)
            for (size_t j = 0; j < 8; j++) r[j] = r[j] + a[i + j];
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res = res + a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return np_pairwise_sum(a, n2) + np_pairwise_sum(a + n2, n - n2);
}

/* Normalized weights w[k] from scores s[k] (+inf = missing: weight 0).
 * Returns 0 if no result has a usable weight (caller copies the query). */
static int blend_weights(const float *s, const uint64_t *where, size_t k, float *w)
{
    size_t nfound = 0, ninf = 0;
    for (size_t i = 0; i < k; i++) {
        float r = 1.0f / s[i];
        w[i] = r * r;
        if (where[i] != UINT64_MAX) nfound++;
        if (isinf(w[i])) ninf++;
    }
    if (nfound == 0) return 0;
    float sum = 0.0f + np_pairwise_sum(w, k);
    if (sum > 0.0f && sum <= 3.40282347e38f) {
        for (size_t i = 0; i < k; i++) w[i] = w[i] / sum;
    } else if (ninf > 0) {
        /* zero distances: exact matches share the whole weight */
        float share = 1.0f / (float)ninf;
        for (size_t i = 0; i < k; i++) w[i] = isinf(w[i]) ? share : 0.0f;
    } else if (sum > 0.0f) {
        /* finite weights whose float sum overflows: normalize in double */
        double sd = 0.0;
        for (size_t i = 0; i < k; i++) sd += (double)w[i];
        for (size_t i = 0; i < k; i++) w[i] = (float)((double)w[i] / sd);
    } else {
        /* every result found is at infinite distance */
        float share = 1.0f / (float)nfound;
        for (size_t i = 0; i < k; i++) w[i] = where[i] != UINT64_MAX ? share : 0.0f;
    }
    return 1;
}

/* Element-wise loops over restrict rows, in blocks of 8 that compilers
 * turn into SIMD at -O2 (SLP); each element's operations stay those of
 * numpy, in the same order (no FMA: -ffp-contract=off; the casts round
 * products to float where FLT_EVAL_METHOD != 0). */
static void axpy(float *restrict acc, const float *restrict y, float a, size_t d)
{
    size_t j = 0;
    for (; j + 8 <= d; j += 8)
        for (size_t t = 0; t < 8; t++) acc[j + t] = acc[j + t] + (float)(y[j + t] * a);
    for (; j < d; j++) acc[j] = acc[j] + (float)(y[j] * a);
}

static void mix(float *restrict acc, const float *restrict x, float rf, float rq, size_t d)
{
    size_t j = 0;
    for (; j + 8 <= d; j += 8)
        for (size_t t = 0; t < 8; t++) acc[j + t] = (float)(rf * acc[j + t]) + (float)(rq * x[j + t]);
    for (; j < d; j++) acc[j] = (float)(rf * acc[j]) + (float)(rq * x[j]);
}

static void blend_query(const ivfpq_index *idx, const ivfpq_kernels *K, const float *x,
                        size_t k, const float *dist, const uint64_t *where, float rf,
                        float rq, float *w, float *s, float *acc, float *out)
{
    size_t d = (size_t)idx->d;
    int ip = idx->metric == IVFPQ_METRIC_INNER_PRODUCT;
    for (size_t i = 0; i < k; i++) {
        if (where[i] == UINT64_MAX) {
            s[i] = INFINITY;
        } else if (ip) {
            ivfpq_list_view v;
            ivfpq__list_get(idx, (size_t)(where[i] >> 32), &v);
            K->l2sqr_tile(x, 1, v.vecs + (size_t)(where[i] & 0xffffffffu) * d, 1, d, &s[i], 1);
            if (s[i] != s[i]) s[i] = INFINITY;
        } else {
            s[i] = dist[i];
        }
    }
    if (!blend_weights(s, where, k, w)) {
        if (out != x) memcpy(out, x, d * sizeof(float));
        return;
    }
    for (size_t j = 0; j < d; j++) acc[j] = 0.0f;
    for (size_t i = 0; i < k; i++) {
        if (where[i] == UINT64_MAX) continue;
        ivfpq_list_view v;
        ivfpq__list_get(idx, (size_t)(where[i] >> 32), &v);
        axpy(acc, v.vecs + (size_t)(where[i] & 0xffffffffu) * d, w[i], d);
    }
    mix(acc, x, rf, rq, d);
    memcpy(out, acc, d * sizeof(float)); /* out may be x */
}

static const ivfpq_search_params default_params = IVFPQ_SEARCH_PARAMS_DEFAULT;

static int validate(const ivfpq_index *idx, size_t nq, const float *q, size_t k,
                    const ivfpq_search_params *p, double rate, const float *out)
{
    const ivfpq_log *log = &idx->log;
    int rc = ivfpq__check_search_args(idx, "search_blend", nq, k, p, q && out, "queries and out");
    if (rc) return rc;
    if (!(rate >= 0.0 && rate <= 1.0))
        return ivfpq__fail(log, IVFPQ_E_INVALID_ARG, "search_blend: rate must be in [0, 1] (got %g)",
                           rate);
    if (!ivfpq__keeps_vectors(idx))
        return ivfpq__fail(log, IVFPQ_E_UNSUPPORTED,
                           "search_blend: this index keeps only PQ codes, not the vectors to "
                           "blend; add ,RFlat to the factory string");
    if (!idx->is_trained)
        return ivfpq__fail(log, IVFPQ_E_NOT_TRAINED, "search_blend: the index is not trained");
    size_t bytes;
    if (!ivfpq__mul(nq, (size_t)idx->d * sizeof(float), &bytes))
        return ivfpq__fail(log, IVFPQ_E_OVERFLOW, "search_blend: nq * d overflows");
    if (nq > 0 && out != q) {
        uintptr_t a = (uintptr_t)q, b = (uintptr_t)out;
        if (a < b + bytes && b < a + bytes)
            return ivfpq__fail(log, IVFPQ_E_INVALID_ARG,
                               "search_blend: out overlaps the queries without being them");
    }
    return ivfpq__check_finite(log, "search_blend: queries", nq, (size_t)idx->d, q);
}

/* Blends each query as soon as the search has its results (search.c's
 * hook), while the rows the refine read are still in cache. */
typedef struct blend_ctx {
    const ivfpq_index *idx;
    const ivfpq_kernels *K;
    const float *q;   /* the chunk's first query */
    float *out;       /* and its output row */
    size_t k;
    float rf, rq;
    float *wt, *s, *acc;
} blend_ctx;

static void blend_hook(void *ctx, size_t qi, const float *dist, const uint64_t *where)
{
    const blend_ctx *b = ctx;
    size_t d = (size_t)b->idx->d;
    blend_query(b->idx, b->K, b->q + qi * d, b->k, dist, where, b->rf, b->rq, b->wt, b->s, b->acc,
                b->out + qi * d);
}

int ivfpq_search_blend_workspace_size(const ivfpq_index *idx, size_t nq, size_t k,
                                      const ivfpq_search_params *params, size_t *size)
{
    if (!idx || !size) return IVFPQ_E_INVALID_ARG;
    const ivfpq_search_params *p = params ? params : &default_params;
    int rc = ivfpq__check_search_args(idx, "search_blend", 0, k, p, 1, NULL);
    if (rc) return rc;
    blend_plan bp;
    if ((rc = plan_blend(idx, nq, k, p, &bp)) != IVFPQ_OK) return rc;
    *size = bp.total;
    return IVFPQ_OK;
}

int ivfpq_search_blend_ws(const ivfpq_index *idx, size_t nq, const float *q, size_t k,
                          const ivfpq_search_params *params, double rate, float *out,
                          void *workspace, size_t workspace_size)
{
    if (!idx) return IVFPQ_E_INVALID_ARG;
    const ivfpq_search_params *p = params ? params : &default_params;
    int rc = validate(idx, nq, q, k, p, rate, out);
    if (rc) return rc;
    blend_plan bp;
    if ((rc = plan_blend(idx, nq, k, p, &bp)) != IVFPQ_OK) return rc;
    if (!workspace || workspace_size < bp.total)
        return ivfpq__fail(&idx->log, IVFPQ_E_WORKSPACE,
                           "search_blend: workspace of %zu bytes, %zu needed", workspace_size,
                           bp.total);
    unsigned char *w = (unsigned char *)(((uintptr_t)workspace + IVFPQ_ALIGN - 1) &
                                         ~(uintptr_t)(IVFPQ_ALIGN - 1));
    float *dist = (float *)(void *)(w + bp.o_dist);
    int64_t *lab = (int64_t *)(void *)(w + bp.o_lab);
    uint64_t *where = (uint64_t *)(void *)(w + bp.o_where);
    float *wt = (float *)(void *)(w + bp.o_w), *s = (float *)(void *)(w + bp.o_s);
    float *acc = (float *)(void *)(w + bp.o_acc);
    const ivfpq_kernels *K = ivfpq__kernels();
    size_t d = (size_t)idx->d;
    /* numpy: rate * b with rate rounded to float32, (1 - rate) in double
     * then rounded */
    float rf = (float)rate, rq = (float)(1.0 - rate);
    ivfpq_search_params cp = *p;
    blend_ctx bc = {idx, K, q, out, k, rf, rq, wt, s, acc};
    ivfpq_query_hook hook = {blend_hook, &bc};
    for (size_t c0 = 0; c0 < nq; c0 += bp.C) {
        size_t cn = nq - c0 < bp.C ? nq - c0 : bp.C;
        cp.nfound = p->nfound ? p->nfound + c0 : NULL;
        bc.q = q + c0 * d;
        bc.out = out + c0 * d;
        /* cannot fail: every argument was checked above; chunks after the
         * first (never larger) reuse its coarse prefilter tables */
        rc = ivfpq__search_where_ws(idx, cn, q + c0 * d, k, &cp, dist, lab, where,
                                    w + bp.o_search, bp.search_bytes, c0 > 0, &hook);
        if (rc) return rc;
    }
    return IVFPQ_OK;
}

int ivfpq_search_blend(const ivfpq_index *idx, size_t nq, const float *q, size_t k,
                       const ivfpq_search_params *params, double rate, float *out)
{
    if (!idx) return IVFPQ_E_INVALID_ARG;
    const ivfpq_search_params *p = params ? params : &default_params;
    int rc = validate(idx, nq, q, k, p, rate, out);
    if (rc) return rc;
    blend_plan bp;
    if ((rc = plan_blend(idx, nq, k, p, &bp)) != IVFPQ_OK) return rc;
    void *ws = ivfpq__alloc(&idx->mem, bp.total);
    if (!ws)
        return ivfpq__fail(&idx->log, IVFPQ_E_NOMEM,
                           "search_blend: cannot allocate %zu bytes of workspace", bp.total);
    rc = ivfpq_search_blend_ws(idx, nq, q, k, p, rate, out, ws, bp.total);
    ivfpq__free(&idx->mem, ws);
    return rc;
}

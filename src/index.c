/*
 * The index object: creation from a factory string, training, reset,
 * inspection, stored-vector access.
 */
#include <math.h>

#include "internal.h"
#include "kernels.h"

int ivfpq_index_factory(ivfpq_index **out, int d, const char *spec, ivfpq_metric metric,
                        const ivfpq_options *opt)
{
    ivfpq_log log = {opt ? opt->log : NULL, opt ? opt->log_user : NULL};
    if (!out) return ivfpq__fail(&log, IVFPQ_E_INVALID_ARG, "index_factory: out is NULL");
    *out = NULL;
    if (d <= 0 || d > IVFPQ_MAX_D)
        return ivfpq__fail(&log, IVFPQ_E_INVALID_ARG, "index_factory: d = %d is out of range [1, %d]",
                           d, IVFPQ_MAX_D);
    if (metric != IVFPQ_METRIC_L2 && metric != IVFPQ_METRIC_INNER_PRODUCT)
        return ivfpq__fail(&log, IVFPQ_E_INVALID_ARG,
                           "index_factory: metric %d is neither L2 (1) nor inner product (0)",
                           (int)metric);
    ivfpq_spec s;
    int rc = ivfpq__parse_factory(spec, d, &s, &log);
    if (rc) return rc;
    if (s.M > IVFPQ_MAX_M)
        return ivfpq__fail(&log, IVFPQ_E_PARSE,
                           "factory string \"%s\": M = %zu sub-quantizers is over the limit of %d",
                           spec, s.M, IVFPQ_MAX_M);
    if (opt && (opt->coarse_niter < 0 || opt->pq_niter < 0 || opt->max_points_per_centroid < 0 ||
                opt->min_points_per_centroid < 0))
        return ivfpq__fail(&log, IVFPQ_E_INVALID_ARG, "index_factory: negative option value");

    return ivfpq__index_create(out, d, metric, &s, opt, 1);
}

int ivfpq__index_create(ivfpq_index **out, int d, ivfpq_metric metric, const ivfpq_spec *s,
                        const ivfpq_options *opt, int with_lists)
{
    ivfpq_log log = {opt ? opt->log : NULL, opt ? opt->log_user : NULL};
    ivfpq_mem mem;
    ivfpq__mem_init(&mem, opt ? &opt->allocator : NULL);
    if (!mem.a.alloc) return ivfpq__fail(&log, IVFPQ_E_NOMEM, "%s", ivfpq__no_heap);
    ivfpq_index *idx = ivfpq__calloc(&mem, sizeof *idx);
    if (!idx) return ivfpq__fail(&log, IVFPQ_E_NOMEM, "index_factory: out of memory");
    idx->mem = mem;
    idx->log = log;
    if (opt) {
        idx->progress = opt->progress;
        idx->progress_user = opt->progress_user;
    }
    idx->d = d;
    idx->metric = metric;
    idx->spec = *s;
    idx->nlist = s->nlist;
    idx->M = s->M;
    idx->M2 = (s->M + 1) & ~(size_t)1;
    idx->dsub = s->M ? (size_t)d / s->M : 0;
    idx->block_bytes = IVFPQ_BBS * idx->M2 / 2;
    idx->seed = opt && opt->seed ? opt->seed : IVFPQ_DEFAULT_SEED;
    idx->coarse_niter = opt && opt->coarse_niter ? opt->coarse_niter : 10;
    idx->pq_niter = opt && opt->pq_niter ? opt->pq_niter : 25;
    idx->max_ppc = opt && opt->max_points_per_centroid ? opt->max_points_per_centroid : 256;
    idx->min_ppc = opt && opt->min_points_per_centroid ? opt->min_points_per_centroid : 39;
    idx->pq_train_points = opt && opt->pq_train_points ? opt->pq_train_points : 65536;
    idx->is_trained = !s->has_ivf && !s->has_pq;
    idx->storage = IVFPQ_STORAGE_OWNED;
    if (with_lists) {
        idx->lists = ivfpq__calloc(&mem, s->nlist * sizeof(ivfpq_list));
        if (!idx->lists) {
            ivfpq__free(&mem, idx);
            return ivfpq__fail(&log, IVFPQ_E_NOMEM, "index_factory: out of memory for %zu lists",
                               s->nlist);
        }
    }
    *out = idx;
    return IVFPQ_OK;
}

static void free_model(ivfpq_index *idx)
{
    if (!idx->model_borrowed) {
        ivfpq__free(&idx->mem, idx->centroids);
        ivfpq__free(&idx->mem, idx->cnorms);
        ivfpq__free(&idx->mem, idx->pq_cb);
    }
    idx->centroids = idx->cnorms = idx->pq_cb = NULL;
    idx->model_borrowed = 0;
}

void ivfpq_free(ivfpq_index *idx)
{
    if (!idx) return;
    ivfpq_mem mem = idx->mem;
    ivfpq__free(&mem, idx->cpf_cache);
    ivfpq__lists_free(idx);
    free_model(idx);
    ivfpq__free(&mem, idx->image);
    void (*release)(void *, size_t) = idx->release;
    void *release_ctx = idx->release_ctx;
    size_t release_len = idx->release_len;
    ivfpq__free(&mem, idx);
    if (release) release(release_ctx, release_len); /* e.g. unmaps a zero-copy file */
}

/* Rows for PQ training: a seeded sample, as residuals for x4fsr. */
static int pq_training_set(const ivfpq_index *idx, size_t n, const float *x, const float *cents,
                           const float *cnorms, float **out, size_t *nout)
{
    const ivfpq_mem *mem = &idx->mem;
    size_t d = (size_t)idx->d, np = n < idx->pq_train_points ? n : idx->pq_train_points, bytes;
    if (!ivfpq__mul(np, d * sizeof(float), &bytes)) return IVFPQ_E_OVERFLOW;
    float *buf = ivfpq__alloc(mem, bytes);
    uint32_t *sel = np < n ? ivfpq__alloc(mem, np * sizeof(uint32_t)) : NULL;
    uint32_t *tmp = np < n ? ivfpq__alloc(mem, n * sizeof(uint32_t)) : NULL;
    float *scratch = NULL;
    int32_t a;
    float ad;
    int ok = buf && (np == n || (sel && tmp));
    if (ok && idx->spec.by_residual)
        ok = (scratch = ivfpq__alloc(mem, ivfpq__coarse_scratch_floats(1, idx->nlist) *
                                               sizeof(float))) != NULL;
    if (!ok) {
        ivfpq__free(mem, buf);
        ivfpq__free(mem, sel);
        ivfpq__free(mem, tmp);
        ivfpq__free(mem, scratch);
        return ivfpq__fail(&idx->log, IVFPQ_E_NOMEM, "train pq: out of memory for %zu rows", np);
    }
    if (sel) {
        ivfpq_rng rng;
        ivfpq__rng_seed(&rng, idx->seed ^ 0x7071u);
        ivfpq__rng_sample(&rng, (uint32_t)n, (uint32_t)np, sel, tmp);
        memset(tmp, 0, n * sizeof(uint32_t)); /* back to row order */
        for (size_t i = 0; i < np; i++) tmp[sel[i]] = 1;
        for (size_t i = 0, j = 0; i < n; i++)
            if (tmp[i]) sel[j++] = (uint32_t)i;
    }
    for (size_t i = 0; i < np; i++) {
        const float *xi = x + (size_t)(sel ? sel[i] : i) * d;
        float *o = buf + i * d;
        if (idx->spec.by_residual) {
            ivfpq__coarse_search(xi, 1, d, cents, cnorms, idx->nlist,
                                 idx->metric == IVFPQ_METRIC_INNER_PRODUCT, 1, &a, &ad, scratch);
            const float *c = cents + (size_t)a * d;
            for (size_t t = 0; t < d; t++) o[t] = xi[t] - c[t];
        } else {
            memcpy(o, xi, d * sizeof(float));
        }
    }
    ivfpq__free(mem, sel);
    ivfpq__free(mem, tmp);
    ivfpq__free(mem, scratch);
    *out = buf;
    *nout = np;
    return IVFPQ_OK;
}

/* Bytes of the coarse prefilter cache for this index's shape, 0 where the
 * prefilter never runs. */
static size_t cpf_cache_bytes(const ivfpq_index *idx)
{
    size_t d = (size_t)idx->d;
    return idx->spec.has_ivf && ivfpq__cpf_worth(32, idx->nlist, d, 1)
               ? ivfpq__cpf_bytes(idx->nlist, d)
               : 0;
}

/* Fills a cache buffer from the current centroids; frees it (NULL) when the
 * values do not allow the int16 bounds (searches then use the float path). */
static void *cpf_cache_fill(ivfpq_index *idx, void *buf)
{
    if (buf && !ivfpq__cpf_prepare(buf, idx->centroids, idx->cnorms, idx->nlist, (size_t)idx->d,
                                   idx->metric == IVFPQ_METRIC_INNER_PRODUCT)) {
        ivfpq__free(&idx->mem, buf);
        buf = NULL;
    }
    return buf;
}

int ivfpq_cache_coarse_tables(ivfpq_index *idx, int enable)
{
    if (!idx) return IVFPQ_E_INVALID_ARG;
    if (!enable) {
        ivfpq__free(&idx->mem, idx->cpf_cache);
        idx->cpf_cache = NULL;
        return IVFPQ_OK;
    }
    if (!idx->spec.has_ivf)
        return ivfpq__fail(&idx->log, IVFPQ_E_UNSUPPORTED,
                           "cache_coarse_tables: the index has no coarse quantizer (IVF)");
    if (!idx->is_trained)
        return ivfpq__fail(&idx->log, IVFPQ_E_NOT_TRAINED, "cache_coarse_tables: the index is not trained");
    size_t bytes = cpf_cache_bytes(idx);
    if (bytes == 0 || idx->cpf_cache) return IVFPQ_OK; /* never used, or built already */
    void *buf = ivfpq__alloc(&idx->mem, bytes);
    if (!buf)
        return ivfpq__fail(&idx->log, IVFPQ_E_NOMEM,
                           "cache_coarse_tables: cannot allocate %zu bytes", bytes);
    idx->cpf_cache = cpf_cache_fill(idx, buf);
    return IVFPQ_OK;
}

int ivfpq_train(ivfpq_index *idx, size_t n, const float *x)
{
    if (!idx) return IVFPQ_E_INVALID_ARG;
    const ivfpq_log *log = &idx->log;
    const ivfpq_mem *mem = &idx->mem;
    if (n > 0 && !x) return ivfpq__fail(log, IVFPQ_E_INVALID_ARG, "train: x is NULL");
    if (idx->readonly)
        return ivfpq__fail(log, IVFPQ_E_READONLY, "train: the index is a read-only view of a buffer");
    if (idx->ntotal > 0)
        return ivfpq__fail(log, IVFPQ_E_STATE,
                           "train: the index holds %zu vectors; reset it before training again",
                           idx->ntotal);
    size_t d = (size_t)idx->d, bytes;
    /* an array of n * d floats must fit in memory: checked before x is read */
    if (!ivfpq__mul(n, d * sizeof(float), &bytes))
        return ivfpq__fail(log, IVFPQ_E_OVERFLOW, "train: n * d floats overflows size_t (n = %zu)", n);
    /* the same input policy for every kind, even those with nothing to learn */
    int rc = ivfpq__check_finite(log, "train", n, d, x);
    if (rc) return rc;
    if (!idx->spec.has_ivf && !idx->spec.has_pq) return IVFPQ_OK; /* Flat: nothing to learn */

    float *cents = NULL, *cnorms = NULL, *cb = NULL, *pqx = NULL;
    size_t npq = 0;
    if (idx->spec.has_ivf) {
        size_t kd;
        if (!ivfpq__mul(idx->nlist, d, &kd) || kd > SIZE_MAX / sizeof(float))
            return ivfpq__fail(log, IVFPQ_E_OVERFLOW, "train: nlist * d overflows");
        cents = ivfpq__alloc(mem, kd * sizeof(float));
        cnorms = ivfpq__alloc(mem, idx->nlist * sizeof(float));
        if (!cents || !cnorms) {
            rc = ivfpq__fail(log, IVFPQ_E_NOMEM, "train: out of memory for %zu centroids", idx->nlist);
            goto fail;
        }
        ivfpq_kmeans_cfg cfg = {idx->coarse_niter, idx->max_ppc, idx->min_ppc,
                                idx->metric == IVFPQ_METRIC_INNER_PRODUCT,
                                idx->metric == IVFPQ_METRIC_INNER_PRODUCT, idx->seed, "train coarse"};
        if ((rc = ivfpq__kmeans(idx, &cfg, n, d, x, idx->nlist, cents))) goto fail;
        for (size_t c = 0; c < idx->nlist; c++) cnorms[c] = ivfpq__dot(cents + c * d, cents + c * d, d);
    }
    if (idx->spec.has_pq) {
        if (n < IVFPQ_KSUB) {
            rc = ivfpq__fail(log, IVFPQ_E_TOO_FEW_POINTS,
                             "train pq: %zu training points for 16 centroids per sub-quantizer", n);
            goto fail;
        }
        cb = ivfpq__alloc(mem, d * IVFPQ_KSUB * sizeof(float));
        if (!cb) {
            rc = ivfpq__fail(log, IVFPQ_E_NOMEM, "train pq: out of memory");
            goto fail;
        }
        if ((rc = pq_training_set(idx, n, x, cents, cnorms, &pqx, &npq))) goto fail;
        rc = ivfpq__pq_train(idx, npq, pqx, cb);
        ivfpq__free(mem, pqx);
        if (rc) goto fail;
    }
    /* a kept prefilter cache follows the new centroids: its buffer is taken
     * before anything changes, so running out of memory changes nothing */
    void *cache = NULL;
    if (idx->cpf_cache && cents) {
        size_t cb_bytes = cpf_cache_bytes(idx);
        if (cb_bytes && !(cache = ivfpq__alloc(mem, cb_bytes))) {
            rc = ivfpq__fail(log, IVFPQ_E_NOMEM, "train: out of memory for the kept coarse tables");
            goto fail;
        }
    }
    free_model(idx);
    idx->centroids = cents;
    idx->cnorms = cnorms;
    idx->pq_cb = cb;
    idx->is_trained = 1;
    if (idx->cpf_cache) {
        ivfpq__free(mem, idx->cpf_cache);
        idx->cpf_cache = cpf_cache_fill(idx, cache);
    }
    return IVFPQ_OK;
fail:
    ivfpq__free(mem, cents);
    ivfpq__free(mem, cnorms);
    ivfpq__free(mem, cb);
    return rc;
}

int ivfpq_reset(ivfpq_index *idx)
{
    if (!idx) return IVFPQ_E_INVALID_ARG;
    if (idx->readonly)
        return ivfpq__fail(&idx->log, IVFPQ_E_READONLY, "reset: the index is a read-only view");
    if (idx->storage == IVFPQ_STORAGE_FLAT) {
        ivfpq_list *lists = ivfpq__calloc(&idx->mem, idx->nlist * sizeof(ivfpq_list));
        if (!lists) return ivfpq__fail(&idx->log, IVFPQ_E_NOMEM, "reset: out of memory");
        ivfpq__lists_free(idx);
        idx->lists = lists;
        return IVFPQ_OK;
    }
    for (size_t l = 0; l < idx->nlist; l++) {
        ivfpq_list *L = &idx->lists[l];
        ivfpq__free(&idx->mem, L->ids);
        ivfpq__free(&idx->mem, L->codes);
        ivfpq__free(&idx->mem, L->vecs);
        memset(L, 0, sizeof *L);
    }
    idx->ntotal = 0;
    return IVFPQ_OK;
}

/* ---------------------------------------------------------------- inspect */

int ivfpq_get_info(const ivfpq_index *idx, ivfpq_info *info)
{
    if (!idx || !info) return IVFPQ_E_INVALID_ARG;
    memset(info, 0, sizeof *info);
    info->d = idx->d;
    info->metric = idx->metric;
    info->kind = idx->spec.has_pq ? (idx->spec.has_ivf ? IVFPQ_KIND_IVF_PQ4FS : IVFPQ_KIND_PQ4FS)
                                  : (idx->spec.has_ivf ? IVFPQ_KIND_IVF_FLAT : IVFPQ_KIND_FLAT);
    info->by_residual = idx->spec.by_residual;
    info->refine = idx->spec.refine;
    info->is_trained = idx->is_trained;
    info->nlist = idx->nlist;
    info->M = idx->M;
    info->ntotal = idx->ntotal;
    size_t bytes = sizeof *idx + ivfpq__lists_bytes(idx);
    if (idx->centroids) bytes += idx->nlist * ((size_t)idx->d + 1) * sizeof(float);
    if (idx->pq_cb) bytes += (size_t)idx->d * IVFPQ_KSUB * sizeof(float);
    if (idx->cpf_cache) bytes += ivfpq__cpf_bytes(idx->nlist, (size_t)idx->d);
    info->memory_bytes = bytes;
    ivfpq__spec_string(&idx->spec, info->factory, sizeof info->factory);
    return IVFPQ_OK;
}

int ivfpq_check_dim(const ivfpq_index *idx, int d)
{
    if (!idx) return IVFPQ_E_INVALID_ARG;
    if (d != idx->d)
        return ivfpq__fail(&idx->log, IVFPQ_E_DIM, "dimension mismatch: the index has d=%d, the data d=%d",
                           idx->d, d);
    return IVFPQ_OK;
}

size_t ivfpq_ntotal(const ivfpq_index *idx) { return idx ? idx->ntotal : 0; }
int ivfpq_dim(const ivfpq_index *idx) { return idx ? idx->d : 0; }
int ivfpq_is_trained(const ivfpq_index *idx) { return idx ? idx->is_trained : 0; }

/* ------------------------------------------------------- stored vectors */

int ivfpq_reconstruct_n(const ivfpq_index *idx, int64_t i0, size_t n, float *out)
{
    if (!idx) return IVFPQ_E_INVALID_ARG;
    const ivfpq_log *log = &idx->log;
    if (n > 0 && !out) return ivfpq__fail(log, IVFPQ_E_INVALID_ARG, "reconstruct: out is NULL");
    if (i0 < 0 || (uint64_t)n > (uint64_t)INT64_MAX - (uint64_t)i0)
        return ivfpq__fail(log, IVFPQ_E_INVALID_ARG, "reconstruct: bad id range starting at %lld",
                           (long long)i0);
    if (!ivfpq__keeps_vectors(idx))
        return ivfpq__fail(log, IVFPQ_E_UNSUPPORTED,
                           "reconstruct: %s keeps only PQ codes; add ,RFlat to keep the vectors",
                           "this index");
    if (n == 0) return IVFPQ_OK;
    size_t d = (size_t)idx->d, bytes;
    if (!ivfpq__mul(n, d * sizeof(float), &bytes))
        return ivfpq__fail(log, IVFPQ_E_OVERFLOW, "reconstruct: n * d overflows");
    unsigned char *seen = n > 1 ? ivfpq__calloc(&idx->mem, n) : NULL;
    if (n > 1 && !seen) return ivfpq__fail(log, IVFPQ_E_NOMEM, "reconstruct: out of memory");
    size_t found = 0;
    int seen1 = 0;
    for (size_t l = 0; l < idx->nlist && found < n; l++) {
        ivfpq_list_view v;
        ivfpq__list_get(idx, l, &v);
        for (size_t j = 0; j < v.n; j++) {
            int64_t id = v.ids[j];
            if (id < i0 || (uint64_t)(id - i0) >= (uint64_t)n) continue;
            size_t r = (size_t)(id - i0);
            if (seen ? seen[r] : seen1) continue;
            if (seen) seen[r] = 1;
            else seen1 = 1;
            memcpy(out + r * d, v.vecs + j * d, d * sizeof(float));
            found++;
        }
    }
    ivfpq__free(&idx->mem, seen);
    if (found < n)
        return ivfpq__fail(log, IVFPQ_E_NOT_FOUND,
                           "reconstruct: %zu of the ids %lld..%lld are not in the index", n - found,
                           (long long)i0, (long long)(i0 + (int64_t)n - 1));
    return IVFPQ_OK;
}

int ivfpq_reconstruct(const ivfpq_index *idx, int64_t id, float *out)
{
    return ivfpq_reconstruct_n(idx, id, 1, out);
}

int ivfpq_normalize_l2(size_t n, int d, float *x)
{
    if (d <= 0 || (n > 0 && !x)) return IVFPQ_E_INVALID_ARG;
    for (size_t i = 0; i < n; i++) {
        float *r = x + i * (size_t)d;
        float n2 = ivfpq__dot(r, r, (size_t)d);
        if (n2 > 0.0f && n2 <= 3.4e38f) {
            float inv = 1.0f / sqrtf(n2);
            for (int j = 0; j < d; j++) r[j] *= inv;
        }
    }
    return IVFPQ_OK;
}

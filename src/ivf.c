/*
 * Inverted lists: storage and ivfpq_add.
 *
 * An owned list keeps ids, raw vectors (when the kind keeps them) and PQ
 * codes in the 32-vector block layout of the FastScan kernels, with spare
 * capacity in whole blocks; unused nibbles are zero, as faiss requires.
 * Adding is all-or-nothing: every allocation and all the encoding happen
 * before the first list is touched, so a failure (or a cancel from the
 * progress callback) leaves the index as it was.
 */
#include "internal.h"
#include "kernels.h"

#define ENCODE_CHUNK 1024 /* rows per progress report */

static size_t vec_bytes(const ivfpq_index *idx)
{
    return ivfpq__keeps_vectors(idx) ? (size_t)idx->d * sizeof(float) : 0;
}

static void list_free(const ivfpq_mem *m, ivfpq_list *L)
{
    ivfpq__free(m, L->ids);
    ivfpq__free(m, L->codes);
    ivfpq__free(m, L->vecs);
    memset(L, 0, sizeof *L);
}

void ivfpq__lists_free(ivfpq_index *idx)
{
    if (idx->storage == IVFPQ_STORAGE_OWNED && idx->lists) {
        for (size_t l = 0; l < idx->nlist; l++) list_free(&idx->mem, &idx->lists[l]);
        ivfpq__free(&idx->mem, idx->lists);
    }
    idx->lists = NULL;
    memset(&idx->flat, 0, sizeof idx->flat);
    idx->storage = IVFPQ_STORAGE_OWNED;
    idx->ntotal = 0;
}

size_t ivfpq__lists_bytes(const ivfpq_index *idx)
{
    size_t per = sizeof(int64_t) + vec_bytes(idx), total = 0;
    if (idx->storage == IVFPQ_STORAGE_OWNED) {
        if (!idx->lists) return 0;
        total = idx->nlist * sizeof(ivfpq_list);
        for (size_t l = 0; l < idx->nlist; l++) {
            const ivfpq_list *L = &idx->lists[l];
            total += L->cap * per;
            if (idx->spec.has_pq) total += L->cap / IVFPQ_BBS * idx->block_bytes;
        }
        return total;
    }
    total = (idx->nlist + 1) * sizeof(uint64_t) * (idx->spec.has_pq ? 2 : 1);
    total += idx->ntotal * per;
    if (idx->spec.has_pq) total += (size_t)idx->flat.boff[idx->nlist] * idx->block_bytes;
    return total;
}

/* New buffers of capacity cap holding the first n entries of a view. */
static int list_alloc(const ivfpq_index *idx, size_t cap, ivfpq_list *out)
{
    const ivfpq_mem *m = &idx->mem;
    memset(out, 0, sizeof *out);
    out->cap = cap;
    out->ids = ivfpq__alloc(m, cap * sizeof(int64_t));
    int ok = out->ids != NULL;
    if (idx->spec.has_pq)
        ok &= (out->codes = ivfpq__calloc(m, cap / IVFPQ_BBS * idx->block_bytes)) != NULL;
    if (ivfpq__keeps_vectors(idx)) ok &= (out->vecs = ivfpq__alloc(m, cap * vec_bytes(idx))) != NULL;
    if (!ok) list_free(m, out);
    return ok;
}

static void list_copy(const ivfpq_index *idx, const ivfpq_list_view *v, ivfpq_list *dst)
{
    if (!v->n) return;
    memcpy(dst->ids, v->ids, v->n * sizeof(int64_t));
    if (dst->vecs) memcpy(dst->vecs, v->vecs, v->n * vec_bytes(idx));
    if (dst->codes)
        memcpy(dst->codes, v->codes, (v->n + IVFPQ_BBS - 1) / IVFPQ_BBS * idx->block_bytes);
    dst->n = v->n;
}

int ivfpq__lists_materialize(ivfpq_index *idx)
{
    if (idx->storage == IVFPQ_STORAGE_OWNED && idx->lists) return IVFPQ_OK;
    const ivfpq_mem *m = &idx->mem;
    ivfpq_list *lists = ivfpq__calloc(m, idx->nlist * sizeof(ivfpq_list));
    if (!lists) return ivfpq__fail(&idx->log, IVFPQ_E_NOMEM, "out of memory for %zu lists", idx->nlist);
    if (idx->storage == IVFPQ_STORAGE_FLAT) {
        for (size_t l = 0; l < idx->nlist; l++) {
            ivfpq_list_view v;
            ivfpq__list_get(idx, l, &v);
            if (!v.n) continue;
            if (!list_alloc(idx, ivfpq__round_up(v.n, IVFPQ_BBS), &lists[l])) {
                for (size_t j = 0; j < l; j++) list_free(m, &lists[j]);
                ivfpq__free(m, lists);
                return ivfpq__fail(&idx->log, IVFPQ_E_NOMEM, "out of memory copying list %zu", l);
            }
            list_copy(idx, &v, &lists[l]);
        }
    }
    memset(&idx->flat, 0, sizeof idx->flat);
    idx->lists = lists;
    idx->storage = IVFPQ_STORAGE_OWNED;
    return IVFPQ_OK;
}

/* Packs flat codes (faiss's ceil(M/2)-byte form: sub-quantizer 2i in the
 * low nibble of byte i) into slot v of a block array. */
static void put_code(const ivfpq_index *idx, uint8_t *blocks, size_t v, const uint8_t *flat)
{
    for (size_t m = 0; m < idx->M; m++) {
        unsigned c = (m & 1) ? (unsigned)(flat[m >> 1] >> 4) : (unsigned)(flat[m >> 1] & 15);
        ivfpq__pq4_set(blocks, idx->M2, v, m, c);
    }
}

typedef struct grow { size_t list; ivfpq_list nl; } grow;

int ivfpq_add(ivfpq_index *idx, size_t n, const float *x, const int64_t *ids)
{
    if (!idx) return IVFPQ_E_INVALID_ARG;
    const ivfpq_log *log = &idx->log;
    const ivfpq_mem *mem = &idx->mem;
    if (n > 0 && !x) return ivfpq__fail(log, IVFPQ_E_INVALID_ARG, "add: x is NULL");
    if (idx->readonly)
        return ivfpq__fail(log, IVFPQ_E_READONLY, "add: the index is a read-only view of a buffer");
    if (!idx->is_trained) return ivfpq__fail(log, IVFPQ_E_NOT_TRAINED, "add: train the index first");
    if (n == 0) return IVFPQ_OK;
    size_t d = (size_t)idx->d, total, bytes;
    /* an array of n * d floats must fit in memory: checked before x is read */
    if (!ivfpq__add(idx->ntotal, n, &total) || !ivfpq__mul(n, d * sizeof(float), &bytes))
        return ivfpq__fail(log, IVFPQ_E_OVERFLOW, "add: %zu + %zu vectors is too many", idx->ntotal, n);
    int rc = ivfpq__check_finite(log, "add", n, d, x);
    if (rc) return rc;
    if (ids)
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0)
                return ivfpq__fail(log, IVFPQ_E_INVALID_ARG,
                                   "add: ids[%zu] = %lld is negative (labels < 0 are reserved)", i,
                                   (long long)ids[i]);
    /* a loaded index gets owned copies of its lists; a failure below gives
     * them back, so even its memory use is as before */
    ivfpq_list *old_lists = idx->lists;
    ivfpq_flat_lists old_flat = idx->flat;
    int old_storage = idx->storage;
    if ((rc = ivfpq__lists_materialize(idx)) != IVFPQ_OK) return rc;
    int materialized = idx->lists != old_lists;

    /* 1. prepare: assignments, codes, new list buffers; nothing visible yet */
    size_t cs = (idx->M + 1) / 2;
    int32_t *assign = ivfpq__alloc(mem, n * sizeof(int32_t));
    float *adist = idx->spec.has_ivf ? ivfpq__alloc(mem, n * sizeof(float)) : NULL;
    float *scratch = idx->spec.has_ivf
                         ? ivfpq__alloc(mem, ivfpq__coarse_scratch_floats(n, idx->nlist) * sizeof(float))
                         : NULL;
    size_t *cnt = ivfpq__calloc(mem, idx->nlist * sizeof(size_t));
    int want_cpf = idx->spec.has_ivf && ivfpq__cpf_worth(n, idx->nlist, d, 1);
    /* tables kept in the index (ivfpq_cache_coarse_tables) or built here */
    int own_cpf = want_cpf && !idx->cpf_cache;
    void *cpf = own_cpf ? ivfpq__alloc(mem, ivfpq__cpf_bytes(idx->nlist, d)) : NULL;
    void *cpfs = want_cpf ? ivfpq__alloc(mem, ivfpq__cpf_scratch_bytes(idx->nlist, d)) : NULL;
    uint8_t *codes = NULL, *unpacked = NULL;
    float *lut = NULL, *resid = NULL;
    grow *gr = NULL;
    size_t ngr = 0;
    int ok = assign && cnt && (!idx->spec.has_ivf || (adist && scratch)) && (!own_cpf || cpf) && (!want_cpf || cpfs);
    if (ok && idx->spec.has_pq) {
        size_t cb;
        ok = ivfpq__mul(n, cs, &cb) && (codes = ivfpq__calloc(mem, cb)) != NULL;
        ok = ok && (unpacked = ivfpq__alloc(mem, idx->M)) != NULL;
        ok = ok && (lut = ivfpq__alloc(mem, idx->M * 16 * sizeof(float))) != NULL;
        ok = ok && (resid = ivfpq__alloc(mem, d * sizeof(float))) != NULL;
    }
    if (!ok) {
        rc = ivfpq__fail(log, IVFPQ_E_NOMEM, "add: out of memory preparing %zu vectors", n);
        goto done;
    }
    if (idx->spec.has_ivf) {
        int ip = idx->metric == IVFPQ_METRIC_INNER_PRODUCT;
        /* the same lists, most centroids ruled out in int16 (coarse.c) */
        const void *tabs = own_cpf ? cpf : idx->cpf_cache;
        int pf = want_cpf &&
                 (!own_cpf || ivfpq__cpf_prepare(cpf, idx->centroids, idx->cnorms, idx->nlist, d, ip));
        for (size_t i0 = 0; i0 < n; i0 += 256) {
            size_t g = n - i0 < 256 ? n - i0 : 256;
            if (pf)
                ivfpq__cpf_search(tabs, x + i0 * d, g, d, idx->centroids, idx->cnorms, idx->nlist,
                                  1, assign + i0, adist + i0, cpfs, scratch);
            else
                ivfpq__coarse_search(x + i0 * d, g, d, idx->centroids, idx->cnorms, idx->nlist, ip,
                                     1, assign + i0, adist + i0, scratch);
        }
    } else {
        memset(assign, 0, n * sizeof(int32_t));
    }
    for (size_t i = 0; i < n; i++) cnt[assign[i]]++;
    for (size_t l = 0; l < idx->nlist; l++)
        if (cnt[l] && idx->lists[l].n + cnt[l] > UINT32_MAX) {
            rc = ivfpq__fail(log, IVFPQ_E_LIMIT, "add: list %zu would exceed 2^32-1 vectors", l);
            goto done;
        }
    if (idx->spec.has_pq) {
        for (size_t i = 0; i < n; i++) {
            const float *xi = x + i * d;
            if (idx->spec.by_residual) {
                const float *c = idx->centroids + (size_t)assign[i] * d;
                for (size_t t = 0; t < d; t++) resid[t] = xi[t] - c[t];
                xi = resid;
            }
            ivfpq__pq_encode(idx, 1, xi, unpacked, lut);
            uint8_t *fc = codes + i * cs;
            for (size_t m = 0; m < idx->M; m++) fc[m >> 1] |= (uint8_t)(unpacked[m] << ((m & 1) * 4));
            if (idx->progress && (i + 1) % ENCODE_CHUNK == 0 &&
                idx->progress(idx->progress_user, "add", i + 1, n)) {
                rc = ivfpq__fail(log, IVFPQ_E_CANCELED, "add: canceled after encoding %zu of %zu", i + 1, n);
                goto done;
            }
        }
    }
    size_t nneed = 0;
    for (size_t l = 0; l < idx->nlist; l++)
        if (cnt[l] && idx->lists[l].n + cnt[l] > idx->lists[l].cap) nneed++;
    if (nneed && !(gr = ivfpq__calloc(mem, nneed * sizeof(grow)))) {
        rc = ivfpq__fail(log, IVFPQ_E_NOMEM, "add: out of memory");
        goto done;
    }
    for (size_t l = 0; l < idx->nlist; l++) {
        const ivfpq_list *L = &idx->lists[l];
        if (!cnt[l] || L->n + cnt[l] <= L->cap) continue;
        size_t want = L->n + cnt[l], cap = L->cap + L->cap / 2;
        if (cap < want) cap = want;
        cap = ivfpq__round_up(cap, IVFPQ_BBS);
        gr[ngr].list = l;
        if (!list_alloc(idx, cap, &gr[ngr].nl)) {
            rc = ivfpq__fail(log, IVFPQ_E_NOMEM, "add: out of memory growing list %zu to %zu vectors", l, cap);
            goto done;
        }
        ngr++;
    }

    /* 2. commit: cannot fail from here on */
    for (size_t g = 0; g < ngr; g++) {
        ivfpq_list *L = &idx->lists[gr[g].list];
        ivfpq_list_view v = {L->n, L->ids, L->codes, L->vecs};
        list_copy(idx, &v, &gr[g].nl);
        list_free(mem, L);
        *L = gr[g].nl;
    }
    ngr = 0;
    for (size_t i = 0; i < n; i++) {
        ivfpq_list *L = &idx->lists[assign[i]];
        size_t pos = L->n++;
        L->ids[pos] = ids ? ids[i] : (int64_t)(idx->ntotal + i);
        if (L->vecs) memcpy(L->vecs + pos * d, x + i * d, d * sizeof(float));
        if (L->codes) put_code(idx, L->codes, pos, codes + i * cs);
    }
    idx->ntotal += n;
    if (idx->progress) idx->progress(idx->progress_user, "add", n, n);
    rc = IVFPQ_OK;
done:
    for (size_t g = 0; g < ngr; g++) list_free(mem, &gr[g].nl);
    ivfpq__free(mem, gr);
    ivfpq__free(mem, assign);
    ivfpq__free(mem, adist);
    ivfpq__free(mem, scratch);
    ivfpq__free(mem, cpf);
    ivfpq__free(mem, cpfs);
    ivfpq__free(mem, cnt);
    ivfpq__free(mem, codes);
    ivfpq__free(mem, unpacked);
    ivfpq__free(mem, lut);
    ivfpq__free(mem, resid);
    if (rc != IVFPQ_OK && materialized) {
        for (size_t l = 0; l < idx->nlist; l++) list_free(mem, &idx->lists[l]);
        ivfpq__free(mem, idx->lists);
        idx->lists = old_lists;
        idx->flat = old_flat;
        idx->storage = old_storage;
    }
    return rc;
}

/*
 * Search: coarse quantization -> per-list scan (FastScan or exact) -> top-k
 * -> optional exact refine, for a chunk of queries at a time.
 *
 * All scratch memory comes from one caller-sized workspace (plan_search
 * computes its exact layout), so ivfpq_search_ws never allocates and the
 * index is only read: concurrent searches are safe.
 *
 * Within a chunk, (query, list) pairs are sorted by list, so each list is
 * read once for all the queries that probe it, up to IVFPQ_FS_MAX_NQ
 * queries per FastScan pass (faiss's "qbs" batching). Results do not depend
 * on that grouping: the top-k order is total (see topk.h).
 */
#include <math.h>

#include "internal.h"
#if defined(__SSE2__)
#include <emmintrin.h> /* baseline on x86-64: not a dispatched level */
#endif
#include "kernels.h"
#include "topk.h"

#define QCHUNK 256                     /* queries per chunk, at most */
#define CHUNK_BUDGET ((size_t)64 << 20) /* soft cap on per-chunk scratch bytes */
#define GQ 16                          /* queries per exact-distance tile */
#define TILE_V 256                     /* list vectors per exact-distance tile */
#define MAX_KB ((size_t)1 << 26)       /* candidates per query, at most */
#define FIRST_BLOCKS 64                /* blocks summed ahead for a query's first list */

typedef struct plan {
    size_t C;        /* queries per chunk */
    size_t P;        /* lists probed per query */
    size_t kb;       /* heap capacity per query (k, or k * k_factor with RFlat) */
    int ivf, pq, resid_l2, resid_ip;
    size_t o_plist, o_pdist, o_items, o_cscratch, o_hk, o_ht, o_hr, o_hn, o_cnt;
    int count_sort;  /* (round, list) order by counting instead of a comparison sort */
    size_t o_lut8, o_qlut, o_lutf, o_resid, o_qg, o_tile, o_sums;
    int cpf;         /* coarse prefilter (coarse.c): tables + scratch */
    size_t o_cpf, o_cpfs;
    size_t total;
} plan;

/* Appends an array of count*elem bytes to the layout, 64-byte aligned. */
static int reserve(size_t *total, size_t *off, size_t count, size_t elem)
{
    size_t bytes, start = ivfpq__round_up(*total, IVFPQ_ALIGN);
    if (start < *total || !ivfpq__mul(count, elem, &bytes) || !ivfpq__add(start, bytes, total))
        return 0;
    *off = start;
    return 1;
}

int ivfpq__check_search_args(const ivfpq_index *idx, const char *what, size_t nq, size_t k,
                             const ivfpq_search_params *p, int arrays_given, const char *arrays)
{
    const ivfpq_log *log = &idx->log;
    if (k == 0) return ivfpq__fail(log, IVFPQ_E_INVALID_ARG, "%s: k must be >= 1", what);
    if (p->nprobe == 0)
        return ivfpq__fail(log, IVFPQ_E_INVALID_ARG, "%s: nprobe must be >= 1", what);
    if (idx->spec.refine && !(p->k_factor >= 1.0f && p->k_factor <= 65536.0f))
        return ivfpq__fail(log, IVFPQ_E_INVALID_ARG, "%s: k_factor must be in [1, 65536] (got %g)",
                           what, (double)p->k_factor);
    if (nq > 0 && !arrays_given)
        return ivfpq__fail(log, IVFPQ_E_INVALID_ARG, "%s: %s must not be NULL", what, arrays);
    return IVFPQ_OK;
}

static int plan_search(const ivfpq_index *idx, size_t nq, size_t k,
                       const ivfpq_search_params *p, plan *pl)
{
    memset(pl, 0, sizeof *pl);
    size_t d = (size_t)idx->d;
    pl->ivf = idx->spec.has_ivf;
    pl->pq = idx->spec.has_pq;
    pl->resid_l2 = pl->pq && idx->spec.by_residual && idx->metric == IVFPQ_METRIC_L2;
    pl->resid_ip = pl->pq && idx->spec.by_residual && idx->metric == IVFPQ_METRIC_INNER_PRODUCT;
    pl->P = pl->ivf ? (p->nprobe < idx->nlist ? p->nprobe : idx->nlist) : 1;

    double want = (double)k; /* truncated below, like faiss's (idx_t)(k * k_factor) */
    if (idx->spec.refine) want = (double)k * (double)p->k_factor;
    if (want > (double)MAX_KB)
        return ivfpq__fail(&idx->log, IVFPQ_E_LIMIT,
                           "search: k%s = %g candidates per query is over the limit of %zu",
                           idx->spec.refine ? " * k_factor" : "", want, MAX_KB);
    size_t kb = (size_t)want, avail = idx->ntotal ? idx->ntotal : 1;
    pl->kb = kb < avail ? kb : avail;

    /* bytes that scale with the chunk, to size it */
    size_t perq = pl->kb * 20 + pl->P * 16 + 64;
    if (pl->pq && !pl->resid_l2) perq += idx->M2 * 16 + sizeof(ivfpq_qlut);
    size_t C = nq < QCHUNK ? nq : QCHUNK;
    if (C > 1 && perq * C > CHUNK_BUDGET) C = CHUNK_BUDGET / perq ? CHUNK_BUDGET / perq : 1;
    pl->C = C;

    size_t t = 0;
    int ok = 1;
    /* the prefilter tables first: their place depends on the index alone,
     * so successive calls on one workspace can share them (search_blend) */
    pl->cpf = pl->ivf && ivfpq__cpf_worth(nq, idx->nlist, d, pl->P);
    if (pl->cpf) {
        if (!idx->cpf_cache) ok &= reserve(&t, &pl->o_cpf, ivfpq__cpf_bytes(idx->nlist, d), 1);
        ok &= reserve(&t, &pl->o_cpfs, ivfpq__cpf_scratch_bytes(idx->nlist, d), 1);
    }
    size_t CP;
    ok &= ivfpq__mul(C, pl->P, &CP);
    ok &= reserve(&t, &pl->o_plist, CP, sizeof(int32_t));
    ok &= reserve(&t, &pl->o_pdist, CP, sizeof(float));
    ok &= reserve(&t, &pl->o_items, CP, sizeof(uint64_t));
    /* counters for 2 rounds x nlist lists, unless they would outweigh the items */
    pl->count_sort = pl->ivf && idx->nlist <= ((size_t)1 << 16) && idx->nlist <= 2 * CP + 4096;
    if (pl->count_sort) ok &= reserve(&t, &pl->o_cnt, 2 * idx->nlist + 1, sizeof(uint32_t));
    if (pl->ivf)
        ok &= reserve(&t, &pl->o_cscratch, ivfpq__coarse_scratch_floats(C, idx->nlist), sizeof(float));
    size_t Ckb;
    ok &= ivfpq__mul(C, pl->kb, &Ckb);
    ok &= reserve(&t, &pl->o_hk, Ckb, sizeof(float));
    ok &= reserve(&t, &pl->o_ht, Ckb, sizeof(uint64_t));
    ok &= reserve(&t, &pl->o_hr, Ckb, sizeof(uint64_t));
    ok &= reserve(&t, &pl->o_hn, C, sizeof(size_t));
    if (pl->pq) {
        size_t nl = pl->resid_l2 ? IVFPQ_FS_MAX_NQ : C, lb;
        ok &= ivfpq__mul(nl, idx->M2 * 16, &lb);
        ok &= reserve(&t, &pl->o_lut8, lb, 1);
        ok &= reserve(&t, &pl->o_qlut, nl, sizeof(ivfpq_qlut));
        ok &= reserve(&t, &pl->o_lutf, idx->M * 16, sizeof(float));
        if (pl->resid_l2) ok &= reserve(&t, &pl->o_resid, d, sizeof(float));
        ok &= reserve(&t, &pl->o_sums, (size_t)FIRST_BLOCKS * IVFPQ_BBS, sizeof(uint16_t));
    } else {
        ok &= reserve(&t, &pl->o_qg, (size_t)GQ * d, sizeof(float));
        ok &= reserve(&t, &pl->o_tile, (size_t)GQ * TILE_V, sizeof(float));
    }
    /* + slack to align any workspace pointer to 64 bytes */
    if (!ok || !ivfpq__add(t, IVFPQ_ALIGN - 1, &pl->total))
        return ivfpq__fail(&idx->log, IVFPQ_E_OVERFLOW, "search: workspace size overflows");
    return IVFPQ_OK;
}

/* ------------------------------------------------------------ chunk state */

typedef struct chunk {
    const ivfpq_index *idx;
    const ivfpq_kernels *K;
    const plan *pl;
    const float *q;      /* [C, d] queries of this chunk */
    int32_t *plist;
    float *pdist;
    uint64_t *items;
    uint32_t *cnt;       /* [2 * nlist + 1] with count_sort */
    float *cscratch, *hk;
    uint64_t *ht, *hr;
    size_t *hn;
    uint8_t *lut8;
    ivfpq_qlut *qlut;
    float *lutf, *resid, *qg, *tile;
    uint16_t *sums;      /* [FIRST_BLOCKS * 32] */
    const void *cpf;     /* prepared prefilter tables, or NULL */
    void *cpfs;
    const ivfpq_query_hook *hook; /* or NULL */
    size_t q0;           /* index of this chunk's first query in the call */
} chunk;

static inline uint64_t make_ref(size_t list, size_t off) { return ((uint64_t)list << 32) | off; }

static inline int ctz32(uint32_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctz(x);
#else
    int n = 0;
    while (!(x & 1)) { x >>= 1; n++; }
    return n;
#endif
}

/* In-place heapsort of the (list << 32 | item) keys. */
static void sort_u64(uint64_t *a, size_t n)
{
    for (size_t s = n / 2; s-- > 0;) {
        for (size_t i = s;;) {
            size_t c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && a[c + 1] > a[c]) c++;
            if (a[c] <= a[i]) break;
            uint64_t t = a[i]; a[i] = a[c]; a[c] = t;
            i = c;
        }
    }
    for (size_t end = n; end > 1; end--) {
        uint64_t t = a[0]; a[0] = a[end - 1]; a[end - 1] = t;
        for (size_t i = 0;;) {
            size_t c = 2 * i + 1;
            if (c >= end - 1) break;
            if (c + 1 < end - 1 && a[c + 1] > a[c]) c++;
            if (a[c] <= a[i]) break;
            uint64_t u = a[i]; a[i] = a[c]; a[c] = u;
            i = c;
        }
    }
}

/* ---------------------------------------------------------- FastScan scan */

typedef struct fs_query {
    float *keys;
    uint64_t *ties, *refs;
    size_t *n;
    float bias;            /* estimate = bias + sum * inv */
    ivfpq_qlut qp;
} fs_query;

typedef struct fs_run {
    ivfpq_fs_ctx ctx;      /* first: the kernel hands it back to the sink */
    size_t list, list_n, cap;
    size_t block0;         /* list block of the kernel's block 0 */
    const int64_t *ids;
    fs_query q[IVFPQ_FS_MAX_NQ];
} fs_run;

static int32_t fs_threshold(const fs_query *Q, size_t cap)
{
    if (*Q->n < cap) return 65535;
    return ivfpq__lut_threshold(&Q->qp, Q->bias, Q->keys[0]);
}

static void fs_sink(ivfpq_fs_ctx *ctx, size_t qi, size_t block, uint32_t mask,
                    const uint16_t *sums)
{
    fs_run *R = (fs_run *)ctx;
    fs_query *Q = &R->q[qi];
    size_t base = (R->block0 + block) * IVFPQ_BBS;
    if (R->list_n - base < IVFPQ_BBS) mask &= ((uint32_t)1 << (R->list_n - base)) - 1;
    while (mask) {
        int v = ctz32(mask);
        mask &= mask - 1;
        float D = Q->bias + (float)sums[v] * Q->qp.inv_scale;
        if (D != D) D = INFINITY;
        size_t off = base + (size_t)v;
        ivfpq__topk_push(Q->keys, Q->ties, Q->refs, Q->n, R->cap, D, (uint64_t)R->ids[off],
                         make_ref(R->list, off));
    }
    ctx->thr[qi] = fs_threshold(Q, R->cap);
}

/* Bit v set <=> s[v] <= t, for the 32 sums of a block (t <= 65535). */
static inline uint32_t le_mask(const uint16_t *s, int32_t t)
{
    if (t < 0) return 0;
#if defined(__SSE2__)
    const __m128i vt = _mm_set1_epi16((short)(uint16_t)t), z = _mm_setzero_si128();
    uint32_t m = 0;
    for (int i = 0; i < 4; i++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + 8 * i));
        __m128i le = _mm_cmpeq_epi16(_mm_subs_epu16(v, vt), z); /* v - t saturates to 0 */
        m |= (uint32_t)_mm_movemask_epi8(_mm_packs_epi16(le, z)) << (8 * i);
    }
    return m;
#else
    uint32_t m = 0;
    for (int v = 0; v < IVFPQ_BBS; v++) m |= (uint32_t)((int32_t)s[v] <= t) << v;
    return m;
#endif
}

/* A query's first list, while its top-k is still empty: every lane would
 * pass the kernel's threshold until kb candidates are in, so the sums of
 * the first blocks are computed up front, their kb-th smallest gives the
 * threshold, and only lanes at or below it are offered. Exact: at least kb
 * lanes have an estimate <= that lane's, so no lane above it can be kept
 * (lut_threshold maps the estimate back to the largest sum with an estimate
 * <= it, so equal estimates pass). Returns the blocks done. */
static size_t first_blocks(chunk *ch, fs_run *R, size_t j, const uint8_t *codes, size_t nblocks)
{
    size_t nb = nblocks < FIRST_BLOCKS ? nblocks : FIRST_BLOCKS;
    size_t nl = R->list_n < nb * IVFPQ_BBS ? R->list_n : nb * IVFPQ_BBS;
    fs_query *Q = &R->q[j];
    ch->K->fs_accumulate(codes, nb, ch->idx->M2, R->ctx.lut[j], ch->sums);
    int32_t floor = 65535;
    if (nl >= R->cap) {
        uint32_t s = ch->K->fs_kth(ch->sums, nl, R->cap);
        float D = Q->bias + (float)s * Q->qp.inv_scale;
        if (D == D) floor = ivfpq__lut_threshold(&Q->qp, Q->bias, D);
    }
    R->block0 = 0;
    for (size_t b = 0; b < nb; b++) {
        int32_t t = R->ctx.thr[j] < floor ? R->ctx.thr[j] : floor;
        const uint16_t *sm = ch->sums + b * IVFPQ_BBS;
        uint32_t mask = le_mask(sm, t);
        if (mask) fs_sink(&R->ctx, j, b, mask, sm);
    }
    return nb;
}

static void scan_pq(chunk *ch, size_t list, const uint64_t *items, size_t nitems)
{
    const ivfpq_index *idx = ch->idx;
    const plan *pl = ch->pl;
    ivfpq_list_view v;
    ivfpq__list_get(idx, list, &v);
    if (v.n == 0) return;
    size_t nblocks = (v.n + IVFPQ_BBS - 1) / IVFPQ_BBS, d = (size_t)idx->d, L = idx->M2 * 16;
    fs_run R;
    R.ctx.sink = fs_sink;
    R.list = list;
    R.list_n = v.n;
    R.ids = v.ids;
    R.cap = pl->kb;
    for (size_t g0 = 0; g0 < nitems; g0 += IVFPQ_FS_MAX_NQ) {
        size_t gn = nitems - g0 < IVFPQ_FS_MAX_NQ ? nitems - g0 : IVFPQ_FS_MAX_NQ;
        size_t fresh = 0; /* bit j: query j's top-k is empty */
        for (size_t j = 0; j < gn; j++) {
            size_t it = (size_t)(items[g0 + j] & 0xffffffffu), qi = it / pl->P;
            fs_query *Q = &R.q[j];
            if (pl->resid_l2) {
                const float *x = ch->q + qi * d, *c = idx->centroids + list * d;
                for (size_t t = 0; t < d; t++) ch->resid[t] = x[t] - c[t];
                ivfpq__lut_float(idx, ch->resid, ch->lutf);
                ivfpq__lut_quantize(ch->lutf, idx->M, idx->M2, ch->lut8 + j * L, &ch->qlut[j]);
                R.ctx.lut[j] = ch->lut8 + j * L;
                Q->qp = ch->qlut[j];
                Q->bias = Q->qp.bias;
            } else {
                R.ctx.lut[j] = ch->lut8 + qi * L;
                Q->qp = ch->qlut[qi];
                Q->bias = pl->resid_ip ? Q->qp.bias + ch->pdist[it] : Q->qp.bias;
            }
            Q->keys = ch->hk + qi * pl->kb;
            Q->ties = ch->ht + qi * pl->kb;
            Q->refs = ch->hr + qi * pl->kb;
            Q->n = &ch->hn[qi];
            R.ctx.thr[j] = fs_threshold(Q, pl->kb);
            if (*Q->n == 0) fresh |= (size_t)1 << j;
        }
        if (!fresh) {
            R.block0 = 0;
            R.ctx.nq = gn;
            ch->K->fs_scan(v.codes, nblocks, idx->M2, &R.ctx);
            continue;
        }
        /* fresh queries first take their first blocks alone; the kernel
         * then runs the others over the whole list, the fresh ones over
         * the rest (kernel calls see one block offset each) */
        size_t done = 0;
        for (size_t j = 0; j < gn; j++)
            if (fresh >> j & 1) done = first_blocks(ch, &R, j, v.codes, nblocks);
        int32_t thr[IVFPQ_FS_MAX_NQ];
        memcpy(thr, R.ctx.thr, sizeof thr);
        R.ctx.nq = gn;
        if (fresh != ((size_t)1 << gn) - 1) {
            for (size_t j = 0; j < gn; j++)
                R.ctx.thr[j] = fresh >> j & 1 ? -1 : thr[j];
            R.block0 = 0;
            ch->K->fs_scan(v.codes, nblocks, idx->M2, &R.ctx);
            for (size_t j = 0; j < gn; j++)
                if (fresh >> j & 1) R.ctx.thr[j] = thr[j];
        }
        if (done < nblocks) {
            for (size_t j = 0; j < gn; j++)
                if (!(fresh >> j & 1)) R.ctx.thr[j] = -1;
            R.block0 = done;
            ch->K->fs_scan(v.codes + done * idx->block_bytes, nblocks - done, idx->M2, &R.ctx);
        }
    }
}

/* ---------------------------------------------------------- exact scan */

static void scan_exact(chunk *ch, size_t list, const uint64_t *items, size_t nitems)
{
    const ivfpq_index *idx = ch->idx;
    const plan *pl = ch->pl;
    ivfpq_list_view v;
    ivfpq__list_get(idx, list, &v);
    if (v.n == 0) return;
    size_t d = (size_t)idx->d;
    int ip = idx->metric == IVFPQ_METRIC_INNER_PRODUCT;
    size_t qidx[GQ];
    for (size_t g0 = 0; g0 < nitems; g0 += GQ) {
        size_t gn = nitems - g0 < GQ ? nitems - g0 : GQ;
        for (size_t j = 0; j < gn; j++) {
            qidx[j] = (size_t)(items[g0 + j] & 0xffffffffu) / pl->P;
            memcpy(ch->qg + j * d, ch->q + qidx[j] * d, d * sizeof(float));
        }
        for (size_t v0 = 0; v0 < v.n; v0 += TILE_V) {
            size_t tv = v.n - v0 < TILE_V ? v.n - v0 : TILE_V;
            if (ip) ch->K->dot_tile(ch->qg, gn, v.vecs + v0 * d, tv, d, ch->tile, TILE_V);
            else ch->K->l2sqr_tile(ch->qg, gn, v.vecs + v0 * d, tv, d, ch->tile, TILE_V);
            for (size_t j = 0; j < gn; j++) {
                size_t qi = qidx[j];
                float *keys = ch->hk + qi * pl->kb;
                uint64_t *ties = ch->ht + qi * pl->kb, *refs = ch->hr + qi * pl->kb;
                size_t *n = &ch->hn[qi];
                const float *row = ch->tile + j * TILE_V;
                for (size_t t = 0; t < tv; t++) {
                    float D = ip ? -row[t] : row[t];
                    if (D != D) D = INFINITY;
                    if (*n == pl->kb && D > keys[0]) continue;
                    ivfpq__topk_push(keys, ties, refs, n, pl->kb, D, (uint64_t)v.ids[v0 + t],
                                     make_ref(list, v0 + t));
                }
            }
        }
    }
}

/* ------------------------------------------------------------- finishing */

/* Candidates whose vectors (and ids) are requested ahead of the refine
 * loop (or of the blend): they are random rows of a large array, so the
 * loop waits on memory unless several whole rows are in flight at once. */
#define REFINE_AHEAD 8

/* always_inline: as a separate static function, gcc 12 -O2 drops the
 * prefetches (the call has no visible effect), which silently disabled
 * them; inlined, they stay (checked with objdump). */
IVFPQ_INLINE void prefetch_vector(const ivfpq_index *idx, uint64_t ref)
{
#if defined(__GNUC__) || defined(__clang__)
    ivfpq_list_view v;
    ivfpq__list_get(idx, (size_t)(ref >> 32), &v);
    const char *p = (const char *)(v.vecs + (size_t)(ref & 0xffffffffu) * (size_t)idx->d);
    size_t bytes = (size_t)idx->d * sizeof(float);
    /* into L2, not L1: L1 fill buffers are few, and many more rows can be
     * in flight toward L2 (2-3x faster refine measured on Zen) */
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 2);
    __builtin_prefetch(p + bytes - 1, 0, 2);
    /* and its id, read by finish_query right after the distance: a random
     * line of another array (8 bytes, so into L1) */
    __builtin_prefetch(v.ids + (ref & 0xffffffffu), 0, 3);
#else
    (void)idx;
    (void)ref;
#endif
}

/* Rows still to prefetch: a cursor over all the chunk's candidates, kept
 * REFINE_AHEAD rows ahead of the refine loop across query boundaries, so
 * a query's first rows are already on their way while the previous query
 * is refined. */
typedef struct pf_cursor { size_t q, c, cn; } pf_cursor;

static void pf_advance(chunk *ch, pf_cursor *pc)
{
    while (pc->q < pc->cn && pc->c >= ch->hn[pc->q]) {
        pc->q++;
        pc->c = 0;
    }
    if (pc->q >= pc->cn) return;
    prefetch_vector(ch->idx, ch->hr[pc->q * ch->pl->kb + pc->c]);
    pc->c++;
}

/* RFlat: candidates of each query in memory order (the heap is done with):
 * rows of one list are visited ascending, sharing pages and streams. */
static void sort_by_ref(chunk *ch, size_t qi)
{
    size_t n = ch->hn[qi];
    float *keys = ch->hk + qi * ch->pl->kb;
    uint64_t *refs = ch->hr + qi * ch->pl->kb;
    for (size_t c = 1; c < n; c++) {
        float kv = keys[c];
        uint64_t rv = refs[c];
        size_t j = c;
        for (; j > 0 && refs[j - 1] > rv; j--) {
            keys[j] = keys[j - 1];
            refs[j] = refs[j - 1];
        }
        keys[j] = kv;
        refs[j] = rv;
    }
}

/* Writes query qi's k results: re-ranked exactly (RFlat) or as scanned,
 * ordered by (distance, label). The output arrays double as the heap. */
static size_t finish_query(chunk *ch, size_t qi, size_t k, float *dist, int64_t *lab,
                           uint64_t *where, pf_cursor *pc)
{
    const ivfpq_index *idx = ch->idx;
    const plan *pl = ch->pl;
    size_t n = ch->hn[qi], m = 0, d = (size_t)idx->d;
    float *keys = ch->hk + qi * pl->kb;
    uint64_t *refs = ch->hr + qi * pl->kb;
    uint64_t *ol = (uint64_t *)lab; /* labels are >= 0: same order as uint64 */
    int ip = idx->metric == IVFPQ_METRIC_INNER_PRODUCT;
    const float *x = ch->q + qi * d;
    for (size_t c = 0; c < n; c++) {
        size_t list = (size_t)(refs[c] >> 32), off = (size_t)(refs[c] & 0xffffffffu);
        ivfpq_list_view v;
        ivfpq__list_get(idx, list, &v);
        float D = keys[c];
        pf_advance(ch, pc);
        if (idx->spec.refine) {
            const float *y = v.vecs + off * d;
            float r;
            if (ip) {
                ch->K->dot_tile(x, 1, y, 1, d, &r, 1);
                D = -r;
            } else {
                ch->K->l2sqr_tile(x, 1, y, 1, d, &r, 1);
                D = r;
            }
            if (D != D) D = INFINITY;
        }
        ivfpq__topk_push(dist, ol, where ? where : ol, &m, k, D, (uint64_t)v.ids[off],
                         where ? refs[c] : (uint64_t)v.ids[off]);
    }
    ivfpq__topk_sort(dist, ol, where ? where : ol, m);
    for (size_t j = 0; j < m; j++)
        if (ip) dist[j] = -dist[j];
    for (size_t j = m; j < k; j++) {
        dist[j] = ip ? -INFINITY : INFINITY;
        lab[j] = -1;
        if (where) where[j] = UINT64_MAX;
    }
    return m;
}

static void run_chunk(chunk *ch, size_t cn, size_t k, float *distances, int64_t *labels,
                      uint64_t *where, size_t *nfound)
{
    const ivfpq_index *idx = ch->idx;
    const plan *pl = ch->pl;
    size_t d = (size_t)idx->d, P = pl->P, L = idx->M2 * 16;
    if (pl->ivf && ch->cpf) {
        ivfpq__cpf_search(ch->cpf, ch->q, cn, d, idx->centroids, idx->cnorms, idx->nlist, P,
                          ch->plist, ch->pdist, ch->cpfs, ch->cscratch);
    } else if (pl->ivf) {
        ivfpq__coarse_search(ch->q, cn, d, idx->centroids, idx->cnorms, idx->nlist,
                             idx->metric == IVFPQ_METRIC_INNER_PRODUCT, P, ch->plist, ch->pdist,
                             ch->cscratch);
    } else {
        for (size_t i = 0; i < cn; i++) {
            ch->plist[i] = 0;
            ch->pdist[i] = 0.0f;
        }
    }
    size_t ni = cn * P;
    /* Each query's nearest list is scanned in a first round, the others in
     * a second: the top-k then holds good candidates early, so far fewer
     * FastScan lanes pass the threshold and far fewer top-k updates happen
     * (the kept set does not depend on the order, see topk.h). Bit 63 is
     * the round; list ids are < 2^31. */
    if (pl->count_sort) {
        /* counting sort by (round, list): stable, so items come out in the
         * same (round, list, i) order as the comparison sort below */
        size_t nl = idx->nlist;
        uint32_t *cnt = ch->cnt;
        memset(cnt, 0, (2 * nl + 1) * sizeof(uint32_t));
        for (size_t i = 0; i < ni; i++) cnt[1 + (i % P != 0) * nl + (size_t)ch->plist[i]]++;
        for (size_t b = 1; b <= 2 * nl; b++) cnt[b] += cnt[b - 1];
        for (size_t i = 0; i < ni; i++) {
            size_t r = i % P != 0;
            ch->items[cnt[r * nl + (size_t)ch->plist[i]]++] =
                ((uint64_t)r << 63) | ((uint64_t)(uint32_t)ch->plist[i] << 32) | i;
        }
    } else {
        for (size_t i = 0; i < ni; i++)
            ch->items[i] = ((uint64_t)(i % P != 0) << 63) | ((uint64_t)(uint32_t)ch->plist[i] << 32) | i;
        sort_u64(ch->items, ni);
    }
    memset(ch->hn, 0, cn * sizeof(size_t));
    if (pl->pq && !pl->resid_l2)
        for (size_t i = 0; i < cn; i++) {
            ivfpq__lut_float(idx, ch->q + i * d, ch->lutf);
            ivfpq__lut_quantize(ch->lutf, idx->M, idx->M2, ch->lut8 + i * L, &ch->qlut[i]);
        }
    for (size_t a = 0; a < ni;) {
        uint64_t key = ch->items[a] >> 32; /* round and list */
        size_t list = (size_t)(key & 0x7fffffffu), b = a + 1;
        while (b < ni && ch->items[b] >> 32 == key) b++;
        if (pl->pq) scan_pq(ch, list, ch->items + a, b - a);
        else scan_exact(ch, list, ch->items + a, b - a);
        a = b;
    }
    /* rows are read again by the refine, or by the hook of an index that
     * keeps its vectors (the blend reads each result's row): the cursor
     * runs only then (cn = 0: off) */
    pf_cursor pc = {0, 0, idx->spec.refine || (ch->hook && !pl->pq) ? cn : 0};
    if (idx->spec.refine)
        for (size_t i = 0; i < cn; i++) sort_by_ref(ch, i);
    for (size_t a = 0; a < REFINE_AHEAD; a++) pf_advance(ch, &pc);
    for (size_t i = 0; i < cn; i++) {
        size_t m = finish_query(ch, i, k, distances + i * k, labels + i * k,
                                where ? where + i * k : NULL, &pc);
        if (nfound) nfound[i] = m;
        if (ch->hook) ch->hook->fn(ch->hook->ctx, ch->q0 + i, distances + i * k, where + i * k);
    }
}

/* ---------------------------------------------------------------- public */

static const ivfpq_search_params default_params = IVFPQ_SEARCH_PARAMS_DEFAULT;

static int validate(const ivfpq_index *idx, size_t nq, const float *q, size_t k,
                    const ivfpq_search_params *p, const float *distances,
                    const int64_t *labels)
{
    if (!idx) return IVFPQ_E_INVALID_ARG;
    int rc = ivfpq__check_search_args(idx, "search", nq, k, p, q && distances && labels,
                                      "queries, distances and labels");
    if (rc) return rc;
    if (!idx->is_trained)
        return ivfpq__fail(&idx->log, IVFPQ_E_NOT_TRAINED, "search: the index is not trained");
    size_t nk;
    if (!ivfpq__mul(nq, k, &nk) || nk > SIZE_MAX / sizeof(int64_t) || nq > UINT32_MAX / 2)
        return ivfpq__fail(&idx->log, IVFPQ_E_OVERFLOW, "search: nq * k overflows");
    return IVFPQ_OK;
}

int ivfpq_search_workspace_size(const ivfpq_index *idx, size_t nq, size_t k,
                                const ivfpq_search_params *params, size_t *size)
{
    if (!idx || !size) return IVFPQ_E_INVALID_ARG;
    const ivfpq_search_params *p = params ? params : &default_params;
    int rc = ivfpq__check_search_args(idx, "search", 0, k, p, 1, NULL);
    if (rc) return rc;
    plan pl;
    if ((rc = plan_search(idx, nq, k, p, &pl)) != IVFPQ_OK) return rc;
    *size = pl.total;
    return IVFPQ_OK;
}

int ivfpq_search_ws(const ivfpq_index *idx, size_t nq, const float *q, size_t k,
                    const ivfpq_search_params *params, float *distances, int64_t *labels,
                    void *workspace, size_t workspace_size)
{
    return ivfpq__search_where_ws(idx, nq, q, k, params, distances, labels, NULL, workspace,
                                  workspace_size, 0, NULL);
}

int ivfpq__search_where_ws(const ivfpq_index *idx, size_t nq, const float *q, size_t k,
                           const ivfpq_search_params *params, float *distances,
                           int64_t *labels, uint64_t *where, void *workspace,
                           size_t workspace_size, int cpf_ready,
                           const ivfpq_query_hook *hook)
{
    const ivfpq_search_params *p = params ? params : &default_params;
    int rc = validate(idx, nq, q, k, p, distances, labels);
    if (rc) return rc;
    plan pl;
    if ((rc = plan_search(idx, nq, k, p, &pl)) != IVFPQ_OK) return rc;
    if (!workspace || workspace_size < pl.total)
        return ivfpq__fail(&idx->log, IVFPQ_E_WORKSPACE,
                           "search: workspace of %zu bytes, %zu needed", workspace_size, pl.total);
    if ((rc = ivfpq__check_finite(&idx->log, "search: queries", nq, (size_t)idx->d, q)))
        return rc;

    uintptr_t base = ((uintptr_t)workspace + IVFPQ_ALIGN - 1) & ~(uintptr_t)(IVFPQ_ALIGN - 1);
    unsigned char *w = (unsigned char *)base;
    chunk ch;
    memset(&ch, 0, sizeof ch);
    ch.idx = idx;
    ch.K = ivfpq__kernels();
    ch.pl = &pl;
    ch.hook = where ? hook : NULL;
    ch.plist = (int32_t *)(void *)(w + pl.o_plist);
    ch.pdist = (float *)(void *)(w + pl.o_pdist);
    ch.items = (uint64_t *)(void *)(w + pl.o_items);
    if (pl.count_sort) ch.cnt = (uint32_t *)(void *)(w + pl.o_cnt);
    if (pl.ivf) ch.cscratch = (float *)(void *)(w + pl.o_cscratch);
    ch.hk = (float *)(void *)(w + pl.o_hk);
    ch.ht = (uint64_t *)(void *)(w + pl.o_ht);
    ch.hr = (uint64_t *)(void *)(w + pl.o_hr);
    ch.hn = (size_t *)(void *)(w + pl.o_hn);
    if (pl.pq) {
        ch.lut8 = w + pl.o_lut8;
        ch.qlut = (ivfpq_qlut *)(void *)(w + pl.o_qlut);
        ch.lutf = (float *)(void *)(w + pl.o_lutf);
        if (pl.resid_l2) ch.resid = (float *)(void *)(w + pl.o_resid);
        ch.sums = (uint16_t *)(void *)(w + pl.o_sums);
    } else {
        ch.qg = (float *)(void *)(w + pl.o_qg);
        ch.tile = (float *)(void *)(w + pl.o_tile);
    }
    if (pl.cpf && nq && idx->cpf_cache) { /* kept in the index, built when it was usable */
        ch.cpf = idx->cpf_cache;
        ch.cpfs = w + pl.o_cpfs;
    } else if (pl.cpf && nq &&
               (cpf_ready ? ivfpq__cpf_usable(w + pl.o_cpf, idx->nlist, (size_t)idx->d)
                          : ivfpq__cpf_prepare(w + pl.o_cpf, idx->centroids, idx->cnorms,
                                               idx->nlist, (size_t)idx->d,
                                               idx->metric == IVFPQ_METRIC_INNER_PRODUCT))) {
        ch.cpf = w + pl.o_cpf;
        ch.cpfs = w + pl.o_cpfs;
    }
    size_t d = (size_t)idx->d;
    for (size_t c0 = 0; c0 < nq; c0 += pl.C) {
        size_t cn = nq - c0 < pl.C ? nq - c0 : pl.C;
        ch.q = q + c0 * d;
        ch.q0 = c0;
        run_chunk(&ch, cn, k, distances + c0 * k, labels + c0 * k, where ? where + c0 * k : NULL,
                  p->nfound ? p->nfound + c0 : NULL);
    }
    return IVFPQ_OK;
}

int ivfpq_search(const ivfpq_index *idx, size_t nq, const float *q, size_t k,
                 const ivfpq_search_params *params, float *distances, int64_t *labels)
{
    const ivfpq_search_params *p = params ? params : &default_params;
    int rc = validate(idx, nq, q, k, p, distances, labels);
    if (rc) return rc;
    plan pl;
    if ((rc = plan_search(idx, nq, k, p, &pl)) != IVFPQ_OK) return rc;
    void *ws = ivfpq__alloc(&idx->mem, pl.total);
    if (!ws)
        return ivfpq__fail(&idx->log, IVFPQ_E_NOMEM, "search: cannot allocate %zu bytes of workspace",
                           pl.total);
    rc = ivfpq_search_ws(idx, nq, q, k, p, distances, labels, ws, pl.total);
    ivfpq__free(&idx->mem, ws);
    return rc;
}

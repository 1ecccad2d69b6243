/*
 * k-means for the coarse quantizer and nearest-centroid search.
 *
 * Follows faiss's Clustering defaults: subsample to k * 256 points, k random
 * points as initial centroids, a fixed number of Lloyd iterations, empty
 * clusters split from a populous one, spherical centroids for inner product.
 * The distance work goes through the tile kernels, so assignments (and thus
 * centroids) are bit-identical at every SIMD level; sums are in double, in
 * point order, for the same reason.
 */
#include <math.h>

#include "internal.h"
#include "kernels.h"

#define TILE_X 32     /* query rows per kernel call */
#define TILE_C 512    /* centroids per kernel call: a block stays in L2 */
#define GATHER 256    /* rows gathered per assignment step */

static size_t tile_floats(size_t nx, size_t nlist)
{
    size_t tx = nx < TILE_X ? nx : TILE_X, tc = nlist < TILE_C ? nlist : TILE_C;
    return tx * tc;
}

/* (the selection buffer of row_select, below, comes after the tile) */
static size_t sel_cands(size_t nlist);

size_t ivfpq__coarse_scratch_floats(size_t nx, size_t nlist)
{
    return tile_floats(nx, nlist) + 2 * sel_cands(nlist); /* a cand is 2 floats' bytes */
}

/* worse-than for (dist, list) pairs: larger dist, then larger list id */
static inline int worse(float da, int32_t la, float db, int32_t lb)
{
    return da > db || (da == db && la > lb);
}

static void heap_sift_down(float *d, int32_t *l, size_t n, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && worse(d[c + 1], l[c + 1], d[c], l[c])) c++;
        if (!worse(d[c], l[c], d[i], l[i])) break;
        float td = d[i]; d[i] = d[c]; d[c] = td;
        int32_t tl = l[i]; l[i] = l[c]; l[c] = tl;
        i = c;
    }
}

static void heap_push(float *d, int32_t *l, size_t n, float dv, int32_t lv)
{
    size_t i = n;
    d[i] = dv;
    l[i] = lv;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(d[i], l[i], d[p], l[p])) break;
        float td = d[i]; d[i] = d[p]; d[p] = td;
        int32_t tl = l[i]; l[i] = l[p]; l[p] = tl;
        i = p;
    }
}

/* Sorts the heap in place, best first. */
static void heap_sort(float *d, int32_t *l, size_t n)
{
    for (size_t end = n; end > 1; end--) {
        float td = d[0]; d[0] = d[end - 1]; d[end - 1] = td;
        int32_t tl = l[0]; l[0] = l[end - 1]; l[end - 1] = tl;
        heap_sift_down(d, l, end - 1, 0);
    }
}

/* The nprobe best of n (dist, list) pairs, sorted by (dist, list): the
 * order ivfpq__coarse_search gives (coarse.c ranks its survivors here). */
void ivfpq__coarse_pick(const float *dv, const int32_t *lv, size_t n, size_t nprobe, float *hd,
                        int32_t *hl)
{
    size_t m = 0;
    for (size_t j = 0; j < n; j++) {
        if (m < nprobe) {
            heap_push(hd, hl, m++, dv[j], lv[j]);
        } else if (worse(hd[0], hl[0], dv[j], lv[j])) {
            hd[0] = dv[j];
            hl[0] = lv[j];
            heap_sift_down(hd, hl, m, 0);
        }
    }
    heap_sort(hd, hl, m);
}

/* ------------------------------------------ top-nprobe by bucket selection
 * For SEL_MIN <= nprobe <= SEL_MAX, a heap takes ~nprobe * ln(nlist / nprobe)
 * data-dependent replacements per row (11% of the search time at nprobe 64;
 * below 32 probes the heap is as fast).
 * Instead, each tile row is appended to the row's kept entries; a 256-bucket
 * histogram over [min, max] finds the bucket holding the nprobe-th smallest,
 * the entries above it are dropped (they are strictly worse than every
 * entry kept, as the bucket index is monotone in the distance), and the few
 * left are sorted by (distance, list), the heap's order. NaN counts as +inf
 * here, so the result is the heap's for any finite distances. */
#define SEL_MIN 32
#define SEL_MAX 128

typedef struct cand { float d; int32_t l; } cand;
_Static_assert(sizeof(cand) == 2 * sizeof(float), "a cand takes 2 floats of scratch");

#define SEL_BUCKETS 256

/* Scratch of row_select, in cand units: the candidates it holds at once
 * (kept entries, <= nprobe, + a tile row) and its histogram. In the
 * caller's scratch, not on the stack (6 KB: embedded stacks are small,
 * docs/EMBEDDING.md); none below SEL_MIN lists. */
static size_t sel_cands(size_t nlist)
{
    if (nlist < SEL_MIN) return 0;
    return (nlist < SEL_MAX ? nlist : SEL_MAX) + (nlist < TILE_C ? nlist : TILE_C) +
           SEL_BUCKETS * sizeof(uint32_t) / sizeof(cand);
}

static inline int cand_lt(cand a, cand b) { return a.d < b.d || (a.d == b.d && a.l < b.l); }

static void cand_sort(cand *a, size_t n)
{
    while (n > 16) { /* quicksort: recurse on the smaller part, loop on the larger */
        size_t mid = n / 2, hi = n - 1, st = 0;
        cand t;
        if (cand_lt(a[mid], a[0])) t = a[mid], a[mid] = a[0], a[0] = t;
        if (cand_lt(a[hi], a[0])) t = a[hi], a[hi] = a[0], a[0] = t;
        if (cand_lt(a[mid], a[hi])) t = a[mid], a[mid] = a[hi], a[hi] = t;
        cand pv = a[hi];
        for (size_t i = 0; i < hi; i++)
            if (cand_lt(a[i], pv)) t = a[i], a[i] = a[st], a[st++] = t;
        a[hi] = a[st];
        a[st] = pv;
        if (st < n - st - 1) {
            cand_sort(a, st);
            a += st + 1;
            n -= st + 1;
        } else {
            cand_sort(a + st + 1, n - st - 1);
            n = st;
        }
    }
    for (size_t i = 1; i < n; i++) {
        cand v = a[i];
        size_t j = i;
        for (; j > 0 && cand_lt(v, a[j - 1]); j--) a[j] = a[j - 1];
        a[j] = v;
    }
}

static inline uint32_t bucket_of(float dv, float mn, float scale)
{
    float t = (dv - mn) * scale;
    return t > 0.0f ? (t < 255.0f ? (uint32_t)t : 255u) : 0u;
}

/* Offers one tile row (lists c0..c0+tc) to a row's sorted kept entries
 * hd/hl (*n of them); buf holds sel_cands(nlist) entries. */
static void row_select(const float *row, size_t tc, size_t c0, const float *cnorms,
                       int metric_ip, size_t nprobe, float *hd, int32_t *hl, size_t *n,
                       cand *buf)
{
    size_t m = *n;
    float mn = INFINITY, mx = -INFINITY;
    for (size_t j = 0; j < m; j++) {
        buf[j].d = hd[j];
        buf[j].l = hl[j];
        mn = hd[j] < mn ? hd[j] : mn;
        mx = hd[j] > mx ? hd[j] : mx;
    }
    for (size_t c = 0; c < tc; c++, m++) {
        float dot = row[c], two = dot + dot;
        float dv = metric_ip ? -dot : cnorms[c0 + c] - two;
        if (dv != dv) dv = INFINITY;
        buf[m].d = dv;
        buf[m].l = (int32_t)(c0 + c);
        mn = dv < mn ? dv : mn;
        mx = dv > mx ? dv : mx;
    }
    float span = mx - mn;
    if (m > nprobe && span > 0.0f && span <= 3.0e38f) {
        float scale = 255.0f / span;
        uint32_t *h = (uint32_t *)(void *)(buf + m); /* after the candidates */
        memset(h, 0, SEL_BUCKETS * sizeof(uint32_t));
        for (size_t j = 0; j < m; j++) h[bucket_of(buf[j].d, mn, scale)]++;
        uint32_t b = 0;
        size_t below = 0;
        while (below + h[b] < nprobe) below += h[b++];
        size_t w = 0;
        for (size_t j = 0; j < m; j++)
            if (bucket_of(buf[j].d, mn, scale) <= b) buf[w++] = buf[j];
        m = w;
    }
    cand_sort(buf, m);
    if (m > nprobe) m = nprobe;
    for (size_t j = 0; j < m; j++) {
        hd[j] = buf[j].d;
        hl[j] = buf[j].l;
    }
    *n = m;
}

void ivfpq__coarse_search(const float *x, size_t nx, size_t d, const float *cents,
                          const float *cnorms, size_t nlist, int metric_ip, size_t nprobe,
                          int32_t *lists, float *dists, float *scratch)
{
    const ivfpq_kernels *K = ivfpq__kernels();
    if (nprobe > nlist) nprobe = nlist;
    int sel = nprobe >= SEL_MIN && nprobe <= SEL_MAX;
    cand *buf = (cand *)(void *)(scratch + tile_floats(nx, nlist));
    for (size_t i0 = 0; i0 < nx; i0 += TILE_X) {
        size_t tx = nx - i0 < TILE_X ? nx - i0 : TILE_X;
        size_t filled[TILE_X] = {0};
        for (size_t c0 = 0; c0 < nlist; c0 += TILE_C) {
            size_t tc = nlist - c0 < TILE_C ? nlist - c0 : TILE_C;
            K->dot_tile(x + i0 * d, tx, cents + c0 * d, tc, d, scratch, tc);
            for (size_t i = 0; i < tx; i++) {
                float *hd = dists + (i0 + i) * nprobe;
                int32_t *hl = lists + (i0 + i) * nprobe;
                const float *row = scratch + i * tc;
                if (sel) {
                    row_select(row, tc, c0, cnorms, metric_ip, nprobe, hd, hl, &filled[i], buf);
                    continue;
                }
                size_t n = filled[i], c = 0;
                for (; c < tc && n < nprobe; c++, n++) {
                    float dot = row[c], two = dot + dot;
                    heap_push(hd, hl, n, metric_ip ? -dot : cnorms[c0 + c] - two, (int32_t)(c0 + c));
                }
                /* the heap is full: a candidate must beat its top, which
                 * stays in a register between the (rare) replacements */
                float top = n ? hd[0] : 0.0f;
                for (; c < tc; c++) {
                    float dot = row[c], two = dot + dot;
                    float dv = metric_ip ? -dot : cnorms[c0 + c] - two;
                    if (dv > top) continue; /* strictly worse; NaN falls through */
                    int32_t lv = (int32_t)(c0 + c);
                    if (worse(hd[0], hl[0], dv, lv)) {
                        hd[0] = dv;
                        hl[0] = lv;
                        heap_sift_down(hd, hl, n, 0);
                        top = hd[0];
                    }
                }
                filled[i] = n;
            }
        }
        for (size_t i = 0; i < tx && !sel; i++) /* selected rows are sorted already */
            heap_sort(dists + (i0 + i) * nprobe, lists + (i0 + i) * nprobe, nprobe);
    }
}

/* ---------------------------------------------------------------- k-means */

typedef struct km_buf {
    uint32_t *sel;      /* [nsub] rows of x used, or NULL = all */
    uint32_t *tmp;      /* [n] for sampling */
    int32_t *assign;    /* [nsub] */
    float *adist;       /* [nsub] */
    size_t *counts;     /* [k] */
    double *sums;       /* [k * d] */
    float *cnorms;      /* [k] */
    float *gather;      /* [GATHER * d] */
    float *scratch;     /* coarse scratch */
    void *cpf, *cpfs;   /* coarse prefilter tables and scratch, where it pays */
} km_buf;

static void km_free(const ivfpq_mem *m, km_buf *b)
{
    ivfpq__free(m, b->sel);
    ivfpq__free(m, b->tmp);
    ivfpq__free(m, b->assign);
    ivfpq__free(m, b->adist);
    ivfpq__free(m, b->counts);
    ivfpq__free(m, b->sums);
    ivfpq__free(m, b->cnorms);
    ivfpq__free(m, b->gather);
    ivfpq__free(m, b->scratch);
    ivfpq__free(m, b->cpf);
    ivfpq__free(m, b->cpfs);
}

static const float *row_of(const float *x, const uint32_t *sel, size_t i, size_t d)
{
    return x + (size_t)(sel ? sel[i] : i) * d;
}

/* Moves a random populous cluster's half to each empty one (probability
 * proportional to size - 1), with a small symmetric perturbation so the two
 * copies separate. */
static void split_empty(ivfpq_rng *rng, float *cent, size_t *counts, size_t k, size_t d)
{
    const float eps = 1.0f / 1024.0f;
    for (size_t ci = 0; ci < k; ci++) {
        if (counts[ci] != 0) continue;
        uint64_t excess = 0;
        for (size_t c = 0; c < k; c++) excess += counts[c] > 1 ? counts[c] - 1 : 0;
        if (excess == 0) return;
        uint64_t r = ivfpq__rng_below(rng, excess);
        size_t cj = 0;
        for (;; cj++) {
            uint64_t e = counts[cj] > 1 ? counts[cj] - 1 : 0;
            if (r < e) break;
            r -= e;
        }
        float *a = cent + ci * d, *b = cent + cj * d;
        memcpy(a, b, d * sizeof(float));
        for (size_t j = 0; j < d; j++) {
            float up = 1.0f + eps, down = 1.0f - eps;
            if (j % 2 == 0) { a[j] *= up; b[j] *= down; }
            else { a[j] *= down; b[j] *= up; }
        }
        counts[ci] = counts[cj] / 2;
        counts[cj] -= counts[ci];
    }
}

static void normalize_rows(float *c, size_t k, size_t d)
{
    for (size_t i = 0; i < k; i++) {
        float n2 = ivfpq__dot(c + i * d, c + i * d, d);
        if (n2 > 0) {
            float inv = 1.0f / sqrtf(n2);
            for (size_t j = 0; j < d; j++) c[i * d + j] *= inv;
        }
    }
}

int ivfpq__kmeans(const ivfpq_index *ctx, const ivfpq_kmeans_cfg *cfg, size_t n, size_t d,
                  const float *x, size_t k, float *out)
{
    const ivfpq_mem *mem = &ctx->mem;
    const ivfpq_log *log = &ctx->log;
    if (n < k)
        return ivfpq__fail(log, IVFPQ_E_TOO_FEW_POINTS,
                           "%s: %zu training points for %zu centroids (need at least %zu)",
                           cfg->stage, n, k, k);
    if (n > UINT32_MAX)
        return ivfpq__fail(log, IVFPQ_E_LIMIT, "%s: at most 2^32-1 training points", cfg->stage);
    size_t min_n = 0;
    if (cfg->min_ppc > 0 && ivfpq__mul(k, (size_t)cfg->min_ppc, &min_n) && n < min_n)
        ivfpq__warn(log,
                    "%s: %zu training points for %zu centroids (%zu per centroid); at least "
                    "%d per centroid are recommended",
                    cfg->stage, n, k, n / k, cfg->min_ppc);

    ivfpq_rng rng;
    ivfpq__rng_seed(&rng, cfg->seed);
    km_buf b;
    memset(&b, 0, sizeof b);
    size_t nsub = n, cap;
    if (cfg->max_ppc > 0 && ivfpq__mul(k, (size_t)cfg->max_ppc, &cap) && cap < n) nsub = cap;

    size_t kd, nfl = ivfpq__coarse_scratch_floats(GATHER, k);
    if (!ivfpq__mul(k, d, &kd)) return ivfpq__fail(log, IVFPQ_E_OVERFLOW, "%s: k*d overflows", cfg->stage);
    int ok = 1;
    b.tmp = ivfpq__alloc(mem, n * sizeof(uint32_t));
    ok &= b.tmp != NULL;
    if (nsub < n) ok &= (b.sel = ivfpq__alloc(mem, nsub * sizeof(uint32_t))) != NULL;
    ok &= (b.assign = ivfpq__alloc(mem, nsub * sizeof(int32_t))) != NULL;
    ok &= (b.adist = ivfpq__alloc(mem, nsub * sizeof(float))) != NULL;
    ok &= (b.counts = ivfpq__alloc(mem, k * sizeof(size_t))) != NULL;
    ok &= kd <= SIZE_MAX / sizeof(double) && (b.sums = ivfpq__alloc(mem, kd * sizeof(double))) != NULL;
    ok &= (b.cnorms = ivfpq__alloc(mem, k * sizeof(float))) != NULL;
    ok &= (b.gather = ivfpq__alloc(mem, GATHER * d * sizeof(float))) != NULL;
    ok &= (b.scratch = ivfpq__alloc(mem, nfl * sizeof(float))) != NULL;
    if (ivfpq__cpf_worth(nsub, k, d, 1)) {
        ok &= (b.cpf = ivfpq__alloc(mem, ivfpq__cpf_bytes(k, d))) != NULL;
        ok &= (b.cpfs = ivfpq__alloc(mem, ivfpq__cpf_scratch_bytes(k, d))) != NULL;
    }
    if (!ok) {
        km_free(mem, &b);
        return ivfpq__fail(log, IVFPQ_E_NOMEM, "%s: out of memory for k-means buffers", cfg->stage);
    }

    /* subsample, then k distinct random points as initial centroids */
    uint32_t *init = (uint32_t *)b.assign; /* assign is free until the first step */
    if (b.sel) {
        ivfpq__rng_sample(&rng, (uint32_t)n, (uint32_t)nsub, b.sel, b.tmp);
        /* keep the sample in row order: same set, better locality */
        memset(b.tmp, 0, n * sizeof(uint32_t));
        for (size_t i = 0; i < nsub; i++) b.tmp[b.sel[i]] = 1;
        for (size_t i = 0, j = 0; i < n; i++)
            if (b.tmp[i]) b.sel[j++] = (uint32_t)i;
    }
    ivfpq__rng_sample(&rng, (uint32_t)nsub, (uint32_t)k, init, b.tmp);
    for (size_t c = 0; c < k; c++) memcpy(out + c * d, row_of(x, b.sel, init[c], d), d * sizeof(float));
    if (cfg->spherical) normalize_rows(out, k, d);

    int rc = IVFPQ_OK;
    for (int it = 0; it < cfg->niter; it++) {
        if (!cfg->metric_ip)
            for (size_t c = 0; c < k; c++) b.cnorms[c] = ivfpq__dot(out + c * d, out + c * d, d);
        /* the same assignments, most centroids ruled out in int16 (coarse.c) */
        int pf = b.cpf && ivfpq__cpf_prepare(b.cpf, out, b.cnorms, k, d, cfg->metric_ip);
        for (size_t i0 = 0; i0 < nsub; i0 += GATHER) {
            size_t g = nsub - i0 < GATHER ? nsub - i0 : GATHER;
            const float *xs;
            if (b.sel) {
                for (size_t i = 0; i < g; i++)
                    memcpy(b.gather + i * d, row_of(x, b.sel, i0 + i, d), d * sizeof(float));
                xs = b.gather;
            } else {
                xs = x + i0 * d;
            }
            if (pf)
                ivfpq__cpf_search(b.cpf, xs, g, d, out, b.cnorms, k, 1, b.assign + i0,
                                  b.adist + i0, b.cpfs, b.scratch);
            else
                ivfpq__coarse_search(xs, g, d, out, b.cnorms, k, cfg->metric_ip, 1, b.assign + i0,
                                     b.adist + i0, b.scratch);
        }
        memset(b.counts, 0, k * sizeof(size_t));
        memset(b.sums, 0, kd * sizeof(double));
        for (size_t i = 0; i < nsub; i++) {
            size_t c = (size_t)b.assign[i];
            const float *r = row_of(x, b.sel, i, d);
            double *s = b.sums + c * d;
            for (size_t j = 0; j < d; j++) s[j] += r[j];
            b.counts[c]++;
        }
        for (size_t c = 0; c < k; c++) {
            if (!b.counts[c]) continue;
            double inv = 1.0 / (double)b.counts[c];
            for (size_t j = 0; j < d; j++) out[c * d + j] = (float)(b.sums[c * d + j] * inv);
        }
        split_empty(&rng, out, b.counts, k, d);
        if (cfg->spherical) normalize_rows(out, k, d);
        if (ctx->progress &&
            ctx->progress(ctx->progress_user, cfg->stage, (size_t)it + 1, (size_t)cfg->niter)) {
            rc = ivfpq__fail(log, IVFPQ_E_CANCELED, "%s: canceled at iteration %d", cfg->stage,
                             it + 1);
            break;
        }
    }
    km_free(mem, &b);
    return rc;
}

/*
 * faiss index files (faiss/impl/index_write.cpp, index_read.cpp), read and
 * written field by field: the records a libivfpq index corresponds to.
 *
 *   IxF2 / IxFI   IndexFlat (L2 / inner product)           "Flat"
 *   IwFl + ilar   IndexIVFFlat                              "IVF<n>,Flat"
 *   IPfs          IndexPQFastScan                           "PQ<M>x4fs"
 *   IwPf + ilbl   IndexIVFPQFastScan                        "IVF<n>,PQ<M>x4fs[r]"
 *   IxRF          IndexRefineFlat over IPfs / IwPf          "...,RFlat"
 *   IxMp / IxM2   IndexIDMap / IDMap2 over any of the above (labels)
 *
 * faiss writes host-endian fixed-width fields (little endian in practice),
 * no alignment, no checksum. Everything read is validated as in the 2026
 * faiss hardening and more: sizes overflow-checked and compared with the
 * bytes left before anything is allocated, bool bytes 0/1, counts
 * consistent across records (quantizer ntotal == nlist, list sizes sum to
 * ntotal, code sizes match d, M, bbs), labels >= 0, refine positions a
 * permutation. Search parameters stored in the file (nprobe, k_factor,
 * implem, qbs) are validated and dropped: they are per call here.
 *
 * A loaded faiss index gets the same FLAT storage as a native image: one
 * owned allocation for the list arrays (exact size, nothing padded), the
 * model arrays owned separately. faiss's PQ codebooks are [M][16][dsub],
 * ours [M][dsub][16]: transposed both ways. FastScan codes are faiss's
 * packing already; blocks of bbs > 32 are repacked into blocks of 32.
 */
#include "io.h"
#include "kernels.h"

#define FOURCC_EQ(p, s) (memcmp((p), (s), 4) == 0)
#define MAX_BBS 4096
#define WRITE_K_FACTOR 4.0f /* IVFPQ_SEARCH_PARAMS_DEFAULT's */

static const struct {
    char cc[5];
    const char *name;
} faiss_names[] = {
    {"IxF2", "IndexFlatL2"}, {"IxFI", "IndexFlatIP"}, {"IxFl", "IndexFlat (other metric)"},
    {"IwFl", "IndexIVFFlat"}, {"IPfs", "IndexPQFastScan"}, {"IwPf", "IndexIVFPQFastScan"},
    {"IxRF", "IndexRefine"}, {"IxMp", "IndexIDMap"}, {"IxM2", "IndexIDMap2"},
    {"IxPq", "IndexPQ"}, {"IwPQ", "IndexIVFPQ"}, {"IwQR", "IndexIVFPQR"},
    {"IxSQ", "IndexScalarQuantizer"}, {"IwSq", "IndexIVFScalarQuantizer"},
    {"IxPT", "IndexPreTransform (PCA/OPQ/...)"}, {"IHNf", "IndexHNSWFlat"},
    {"IHNp", "IndexHNSWPQ"}, {"IHNs", "IndexHNSWSQ"}, {"IxHe", "IndexLSH"},
    {"IwFd", "IndexIVFFlatDedup"}, {"IxRq", "IndexResidualQuantizer"},
    {"IxLS", "IndexLocalSearchQuantizer"}, {"IRfs", "IndexResidualQuantizerFastScan"},
    {"IwRQ", "IndexIVFResidualQuantizer"}, {"INSf", "IndexNSGFlat"},
    {"Ixrq", "IndexRaBitQ"}, {"Iwrq", "IndexIVFRaBitQ"}, {"IxRP", "IndexRefinePanorama"},
    {"IBxF", "IndexBinaryFlat"}, {"IBwF", "IndexBinaryIVF"}, {"IBHf", "IndexBinaryHNSW"},
};

static const char *faiss_name(const unsigned char *cc)
{
    for (size_t i = 0; i < sizeof faiss_names / sizeof *faiss_names; i++)
        if (FOURCC_EQ(cc, faiss_names[i].cc)) return faiss_names[i].name;
    return "an index type";
}

/* ================================================================ load */

typedef struct stage {        /* one ilbl list, until the image exists */
    const unsigned char *ids, *codes;
    void *ids_owned, *codes_owned;
    size_t n, code_bytes;
} stage;

typedef struct fl {
    ivfpq_src *s;
    ivfpq_ld *ld;
    const ivfpq_log *log;
    /* the index being described */
    int d, metric, trained, refine, has_ivf, has_pq, by_residual;
    size_t nlist, M, M2;
    uint64_t ntotal;
    /* owned results (ld allocations), handed to the index at the end */
    float *cent, *cnorm, *pq;
    size_t cent_bytes, cnorm_bytes, pq_bytes;
    unsigned char *img;
    size_t img_bytes;
    uint64_t *off, *boff;
    int64_t *ids;
    uint8_t *codes;
    float *vecs;
} fl;

typedef struct fhdr {
    int d, trained, metric;
    uint64_t ntotal;
} fhdr;

#define CORRUPT(...) ivfpq__fail(F->log, IVFPQ_E_CORRUPT, __VA_ARGS__)
#define UNSUPPORTED(...) ivfpq__fail(F->log, IVFPQ_E_UNSUPPORTED, __VA_ARGS__)
#define TRY(x) do { int rc_ = (x); if (rc_) return rc_; } while (0)

static int rd_u8(fl *F, unsigned *v, const char *what)
{
    unsigned char b;
    TRY(ivfpq__src_read(F->s, &b, 1, what));
    *v = b;
    return IVFPQ_OK;
}
static int rd_bool(fl *F, int *v, const char *what)
{
    unsigned b;
    TRY(rd_u8(F, &b, what));
    if (b > 1) return CORRUPT("faiss %s: boolean byte is %u (must be 0 or 1)", what, b);
    *v = (int)b;
    return IVFPQ_OK;
}
static int rd_i32(fl *F, int32_t *v, const char *what)
{
    unsigned char b[4];
    TRY(ivfpq__src_read(F->s, b, 4, what));
    *v = (int32_t)ivfpq__le32(b);
    return IVFPQ_OK;
}
static int rd_u64(fl *F, uint64_t *v, const char *what)
{
    unsigned char b[8];
    TRY(ivfpq__src_read(F->s, b, 8, what));
    *v = ivfpq__le64(b);
    return IVFPQ_OK;
}
static int rd_f32(fl *F, float *v, const char *what)
{
    unsigned char b[4];
    TRY(ivfpq__src_read(F->s, b, 4, what));
    *v = ivfpq__lef32(b);
    return IVFPQ_OK;
}
static int rd_cc(fl *F, unsigned char cc[4], const char *what)
{
    return ivfpq__src_read(F->s, cc, 4, what);
}

/* A vector's element count, which must equal `want`; bounded by the bytes
 * left before anyone allocates for it. */
static int rd_count(fl *F, uint64_t want, size_t elem, const char *what)
{
    uint64_t n;
    TRY(rd_u64(F, &n, what));
    if (n != want)
        return CORRUPT("faiss %s: %llu elements, expected %llu", what, (unsigned long long)n,
                       (unsigned long long)want);
    if (n > ivfpq__src_left(F->s) / elem)
        return ivfpq__fail(F->log, IVFPQ_E_TRUNCATED,
                           "truncated: faiss %s has %llu elements of %zu bytes, only %llu bytes "
                           "are left",
                           what, (unsigned long long)n, elem,
                           (unsigned long long)ivfpq__src_left(F->s));
    return IVFPQ_OK;
}

/* Index header: d, ntotal, 2 unused int64, is_trained, metric. */
static int rd_header(fl *F, fhdr *h, const char *what)
{
    int32_t d, metric;
    uint64_t ntotal, dummy;
    TRY(rd_i32(F, &d, what));
    TRY(rd_u64(F, &ntotal, what));
    TRY(rd_u64(F, &dummy, what));
    TRY(rd_u64(F, &dummy, what));
    TRY(rd_bool(F, &h->trained, what));
    TRY(rd_i32(F, &metric, what));
    if (d < 1 || d > IVFPQ_MAX_D)
        return CORRUPT("faiss %s: dimension d = %d is out of range [1, %d]", what, (int)d, IVFPQ_MAX_D);
    if (ntotal > IVFPQ_MAX_NTOTAL)
        return CORRUPT("faiss %s: ntotal = %lld is negative or over 2^48", what, (long long)ntotal);
    if (metric != IVFPQ_METRIC_L2 && metric != IVFPQ_METRIC_INNER_PRODUCT)
        return UNSUPPORTED("faiss %s: metric type %d is not supported (only L2 = 1 and inner "
                           "product = 0)",
                           what, (int)metric);
    h->d = d;
    h->ntotal = ntotal;
    h->metric = metric;
    return IVFPQ_OK;
}

static int same_header(fl *F, const fhdr *a, const fhdr *b, const char *what)
{
    if (a->d != b->d || a->ntotal != b->ntotal || a->metric != b->metric)
        return CORRUPT("faiss %s: header (d %d, ntotal %llu, metric %d) differs from the inner "
                       "index's (d %d, ntotal %llu, metric %d)",
                       what, a->d, (unsigned long long)a->ntotal, a->metric, b->d,
                       (unsigned long long)b->ntotal, b->metric);
    return IVFPQ_OK;
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] * 0.0f != 0.0f) return 0;
    return 1;
}

/* The list-data image: offsets, labels, codes, vectors, 64-byte aligned.
 * pending = bytes of the source that will fill it and are not read yet:
 * with the refine vectors still to come, they must fit in what is left of
 * a buffer, so that a small input can never cause a large allocation. */
static int img_alloc(fl *F, uint64_t nblocks, uint64_t pending)
{
    uint64_t later = pending, left = ivfpq__src_left(F->s);
    if (F->refine) {
        if (F->ntotal > (left - (later < left ? later : left)) / ((uint64_t)F->d * 4))
            later = UINT64_MAX; /* also avoids overflowing ntotal * d * 4 */
        else
            later += F->ntotal * (uint64_t)F->d * 4;
    }
    if (later > left)
        return ivfpq__fail(F->log, IVFPQ_E_TRUNCATED,
                           "truncated: the index needs %llu more bytes, only %llu are left",
                           (unsigned long long)later, (unsigned long long)ivfpq__src_left(F->s));
    size_t d = (size_t)F->d, n = (size_t)F->ntotal, t = 0, o_off, o_boff = 0, o_ids, o_codes = 0,
           o_vecs = 0, bytes;
    int keeps = !F->has_pq || F->refine, ok = 1;
#define RESERVE(o, count, elem)                                                            \
    do {                                                                                   \
        o = ivfpq__round_up(t, IVFPQ_ALIGN);                                               \
        ok = ok && o >= t && ivfpq__mul((count), (elem), &bytes) && ivfpq__add(o, bytes, &t); \
    } while (0)
    RESERVE(o_off, F->nlist + 1, 8);
    if (F->has_pq) RESERVE(o_boff, F->nlist + 1, 8);
    RESERVE(o_ids, n, 8);
    if (F->has_pq) RESERVE(o_codes, (size_t)nblocks, 16 * F->M2);
    if (keeps) RESERVE(o_vecs, n, d * 4);
#undef RESERVE
    if (!ok || nblocks > SIZE_MAX)
        return ivfpq__fail(F->log, IVFPQ_E_LIMIT, "faiss index: %llu vectors do not fit in memory",
                           (unsigned long long)F->ntotal);
    int rc;
    F->img = ivfpq__ld_alloc(F->ld, t ? t : 1, "the index lists", &rc);
    if (!F->img) return rc;
    F->img_bytes = t ? t : 1;
    memset(F->img, 0, o_ids); /* offset tables (sparse ilar leaves entries unset) */
    F->off = (uint64_t *)(void *)(F->img + o_off);
    F->boff = F->has_pq ? (uint64_t *)(void *)(F->img + o_boff) : NULL;
    F->ids = (int64_t *)(void *)(F->img + o_ids);
    F->codes = F->has_pq ? F->img + o_codes : NULL;
    F->vecs = keeps ? (float *)(void *)(F->img + o_vecs) : NULL;
    if (F->codes) memset(F->codes, 0, (size_t)nblocks * 16 * F->M2);
    return IVFPQ_OK;
}

/* Flat vectors of an IndexFlat record (after its header) into dst, or
 * scattered: vector p goes to row slot_of[p]. */
static int rd_flat_data(fl *F, const fhdr *h, float *dst, const uint64_t *slot_of,
                        const char *what)
{
    size_t d = (size_t)h->d;
    TRY(rd_count(F, h->ntotal * (uint64_t)d, 4, what));
    if (!slot_of) return ivfpq__src_array(F->s, dst, (size_t)h->ntotal * d, 4, what);
    for (size_t p = 0; p < (size_t)h->ntotal; p++)
        TRY(ivfpq__src_array(F->s, dst + (size_t)slot_of[p] * d, d, 4, what));
    return IVFPQ_OK;
}

/* ProductQuantizer: d, M, nbits (size_t each), centroids [M][16][dsub]. */
static int rd_pq(fl *F, const char *what)
{
    uint64_t d, M, nbits;
    TRY(rd_u64(F, &d, what));
    TRY(rd_u64(F, &M, what));
    TRY(rd_u64(F, &nbits, what));
    if (d != (uint64_t)F->d) return CORRUPT("faiss %s: PQ dimension %llu, index d = %d", what, (unsigned long long)d, F->d);
    if (M < 1 || M > IVFPQ_MAX_M || d % M)
        return CORRUPT("faiss %s: M = %llu sub-quantizers is invalid for d = %d (1..%d, dividing d)",
                       what, (unsigned long long)M, F->d, IVFPQ_MAX_M);
    if (nbits != 4)
        return UNSUPPORTED("faiss %s: %llu-bit PQ codes; only 4-bit FastScan is supported", what,
                           (unsigned long long)nbits);
    F->M = (size_t)M;
    F->M2 = (F->M + 1) & ~(size_t)1;
    size_t dsub = (size_t)(d / M), n = (size_t)d * IVFPQ_KSUB;
    TRY(rd_count(F, n, 4, "PQ centroids"));
    const unsigned char *raw;
    void *owned;
    TRY(ivfpq__src_view(F->s, n * 4, &raw, &owned, "PQ centroids"));
    int rc;
    if (F->trained) {
        F->pq = ivfpq__ld_alloc(F->ld, n * 4, "PQ codebooks", &rc);
        if (!F->pq) {
            ivfpq__ld_free(F->ld, owned, n * 4);
            return rc;
        }
        F->pq_bytes = n * 4;
        for (size_t m = 0; m < F->M; m++)
            for (size_t j = 0; j < IVFPQ_KSUB; j++)
                for (size_t t = 0; t < dsub; t++)
                    F->pq[(m * dsub + t) * 16 + j] = ivfpq__lef32(raw + 4 * ((m * 16 + j) * dsub + t));
    }
    ivfpq__ld_free(F->ld, owned, n * 4);
    if (F->pq && !all_finite(F->pq, n)) return CORRUPT("faiss %s: NaN or infinite PQ centroid", what);
    return IVFPQ_OK;
}

/* IVF header after the fourcc: index header, nlist, nprobe, quantizer,
 * direct map. */
static int rd_ivf_header(fl *F, fhdr *h, const char *what)
{
    TRY(rd_header(F, h, what));
    uint64_t nlist, nprobe, qcount;
    TRY(rd_u64(F, &nlist, what));
    TRY(rd_u64(F, &nprobe, what));
    if (nlist < 1 || nlist > IVFPQ_MAX_NLIST)
        return CORRUPT("faiss %s: nlist = %llu is out of range [1, %zu]", what,
                       (unsigned long long)nlist, (size_t)IVFPQ_MAX_NLIST);
    (void)nprobe; /* a search parameter: per call here (RVC files store 1) */
    F->d = h->d;
    F->metric = h->metric;
    F->trained = h->trained;
    F->ntotal = h->ntotal;
    F->nlist = (size_t)nlist;
    F->has_ivf = 1;

    unsigned char cc[4];
    TRY(rd_cc(F, cc, "the IVF coarse quantizer"));
    if (!FOURCC_EQ(cc, "IxF2") && !FOURCC_EQ(cc, "IxFI"))
        return UNSUPPORTED("faiss %s: the coarse quantizer is %s (\"%c%c%c%c\"); only a flat "
                           "quantizer (IVF<n>) is supported",
                           what, faiss_name(cc), cc[0], cc[1], cc[2], cc[3]);
    fhdr q;
    TRY(rd_header(F, &q, "coarse quantizer"));
    if ((FOURCC_EQ(cc, "IxF2") ? IVFPQ_METRIC_L2 : IVFPQ_METRIC_INNER_PRODUCT) != q.metric ||
        q.metric != h->metric)
        return UNSUPPORTED("faiss %s: the coarse quantizer's metric (%d) differs from the index's (%d)",
                           what, q.metric, h->metric);
    if (q.d != h->d) return CORRUPT("faiss %s: quantizer d = %d, index d = %d", what, q.d, h->d);
    if (h->trained ? q.ntotal != nlist : (q.ntotal != 0 && q.ntotal != nlist))
        return CORRUPT("faiss %s: the coarse quantizer holds %llu centroids for nlist = %llu", what,
                       (unsigned long long)q.ntotal, (unsigned long long)nlist);
    qcount = q.ntotal * (uint64_t)q.d;
    TRY(rd_count(F, qcount, 4, "coarse centroids"));
    if (h->trained) {
        int rc;
        F->cent_bytes = (size_t)qcount * 4;
        F->cent = ivfpq__ld_alloc(F->ld, F->cent_bytes, "coarse centroids", &rc);
        if (!F->cent) return rc;
        TRY(ivfpq__src_array(F->s, F->cent, (size_t)qcount, 4, "coarse centroids"));
        if (!all_finite(F->cent, (size_t)qcount))
            return CORRUPT("faiss %s: NaN or infinite coarse centroid", what);
    } else {
        TRY(ivfpq__src_skip(F->s, qcount * 4, "coarse centroids"));
    }
    /* direct map: type byte, int64 array, hash table pairs (unused here) */
    unsigned type;
    uint64_t n;
    TRY(rd_u8(F, &type, "direct map type"));
    if (type > 2) return CORRUPT("faiss %s: direct map type %u (0..2)", what, type);
    TRY(rd_u64(F, &n, "direct map"));
    if (n > ivfpq__src_left(F->s) / 8) return ivfpq__fail(F->log, IVFPQ_E_TRUNCATED, "truncated: faiss direct map of %llu entries", (unsigned long long)n);
    TRY(ivfpq__src_skip(F->s, n * 8, "direct map"));
    if (type == 2) {
        TRY(rd_u64(F, &n, "direct map hash table"));
        if (n > ivfpq__src_left(F->s) / 16) return ivfpq__fail(F->log, IVFPQ_E_TRUNCATED, "truncated: faiss direct map of %llu pairs", (unsigned long long)n);
        TRY(ivfpq__src_skip(F->s, n * 16, "direct map hash table"));
    }
    return IVFPQ_OK;
}

static int list_size_ok(fl *F, size_t l, uint64_t n, uint64_t *sum)
{
    if (n > IVFPQ_MAX_LIST_SIZE || n > F->ntotal - *sum)
        return CORRUPT("faiss inverted lists: list %zu has %llu entries, more than the %llu "
                       "vectors left of ntotal",
                       l, (unsigned long long)n, (unsigned long long)(F->ntotal - *sum));
    *sum += n;
    return IVFPQ_OK;
}

static int check_inv_header(fl *F, const unsigned char cc[4], const char *want)
{
    if (FOURCC_EQ(cc, want)) return IVFPQ_OK;
    if (FOURCC_EQ(cc, "il00"))
        return UNSUPPORTED("faiss inverted lists are not stored in this file (\"il00\": on-disk "
                           "or external lists); only in-file lists can be loaded");
    if (FOURCC_EQ(cc, "ilod"))
        return UNSUPPORTED("faiss OnDiskInvertedLists (\"ilod\") are not supported; merge them "
                           "into the index (faiss: replace_invlists with ArrayInvertedLists)");
    return UNSUPPORTED("faiss inverted lists of type \"%c%c%c%c\" are not supported (expected "
                       "\"%s\")",
                       cc[0], cc[1], cc[2], cc[3], want);
}

/* ArrayInvertedLists of an IndexIVFFlat: sizes, then per list the vectors
 * and the ids, straight into the image. */
static int rd_ilar(fl *F)
{
    unsigned char cc[4];
    uint64_t nlist, code_size, n, sum = 0;
    TRY(rd_cc(F, cc, "inverted lists"));
    TRY(check_inv_header(F, cc, "ilar"));
    TRY(rd_u64(F, &nlist, "inverted lists"));
    TRY(rd_u64(F, &code_size, "inverted lists"));
    if (nlist != F->nlist)
        return CORRUPT("faiss inverted lists: %llu lists, the IVF has %zu", (unsigned long long)nlist, F->nlist);
    if (code_size != (uint64_t)F->d * 4)
        return CORRUPT("faiss inverted lists: code size %llu, an IndexIVFFlat of d = %d needs %d",
                       (unsigned long long)code_size, F->d, F->d * 4);
    if (F->ntotal > ivfpq__src_left(F->s) / (code_size + 8))
        return ivfpq__fail(F->log, IVFPQ_E_TRUNCATED,
                           "truncated: %llu vectors of %llu bytes cannot fit in the %llu bytes left",
                           (unsigned long long)F->ntotal, (unsigned long long)(code_size + 8),
                           (unsigned long long)ivfpq__src_left(F->s));
    TRY(img_alloc(F, 0, 0));
    TRY(rd_cc(F, cc, "list size encoding"));
    uint64_t *sz = F->off + 1; /* sizes first, prefix sums after */
    if (FOURCC_EQ(cc, "full")) {
        TRY(rd_count(F, nlist, 8, "list sizes"));
        for (size_t l = 0; l < F->nlist; l++) {
            TRY(rd_u64(F, &n, "list sizes"));
            TRY(list_size_ok(F, l, n, &sum));
            sz[l] = n;
        }
    } else if (FOURCC_EQ(cc, "sprs")) {
        TRY(rd_u64(F, &n, "sparse list sizes"));
        if (n % 2 || n / 2 > nlist || n > ivfpq__src_left(F->s) / 8)
            return CORRUPT("faiss inverted lists: sparse size table of %llu entries", (unsigned long long)n);
        uint64_t prev = 0;
        for (uint64_t i = 0; i < n; i += 2) {
            uint64_t l, c;
            TRY(rd_u64(F, &l, "sparse list sizes"));
            TRY(rd_u64(F, &c, "sparse list sizes"));
            if (l >= nlist || (i && l <= prev))
                return CORRUPT("faiss inverted lists: sparse entry for list %llu (nlist %llu, after %llu)",
                               (unsigned long long)l, (unsigned long long)nlist, (unsigned long long)prev);
            TRY(list_size_ok(F, (size_t)l, c, &sum));
            sz[l] = c;
            prev = l;
        }
    } else {
        return CORRUPT("faiss inverted lists: unknown list size encoding \"%c%c%c%c\"", cc[0], cc[1], cc[2], cc[3]);
    }
    if (sum != F->ntotal)
        return CORRUPT("faiss inverted lists hold %llu vectors, the index header says %llu",
                       (unsigned long long)sum, (unsigned long long)F->ntotal);
    for (size_t l = 0; l < F->nlist; l++) F->off[l + 1] += F->off[l];
    size_t d = (size_t)F->d;
    for (size_t l = 0; l < F->nlist; l++) {
        size_t o = (size_t)F->off[l], c = (size_t)(F->off[l + 1] - F->off[l]);
        if (!c) continue;
        TRY(ivfpq__src_array(F->s, F->vecs + o * d, c * d, 4, "list vectors"));
        TRY(ivfpq__src_array(F->s, F->ids + o, c, 8, "list ids"));
    }
    return IVFPQ_OK;
}

/* Copies n vectors' codes from faiss blocks of bbs vectors into our blocks
 * of 32 (same layout when bbs == 32), clearing unused nibbles. */
static void repack(fl *F, uint8_t *dst, const unsigned char *src, size_t n, size_t bbs)
{
    size_t M2 = F->M2, piece = 32, per = bbs / 32, nb32 = (n + 31) / 32;
    size_t src_block = bbs * M2 / 2;
    if (bbs == 32) {
        memcpy(dst, src, nb32 * 16 * M2);
    } else {
        for (size_t b = 0; b < nb32; b++) {
            const unsigned char *sb = src + (b / per) * src_block;
            size_t c = b % per;
            for (size_t p = 0; p < M2 / 2; p++)
                memcpy(dst + b * 16 * M2 + p * piece, sb + (p * per + c) * piece, piece);
        }
    }
    /* faiss's padding and odd-M nibbles are zero when it wrote them; make
     * sure, since search ignores them but our own format requires it */
    size_t bb = 16 * M2;
    if (n % 32) {
        unsigned char mask[16];
        uint8_t *last = dst + (n / 32) * bb;
        ivfpq__pq4_tail_mask(n % 32, mask);
        for (size_t i = 0; i < bb; i++) last[i] &= (uint8_t)~mask[i % 16];
    }
    if (F->M & 1) /* the extra sub-quantizer: upper half of each block's last piece */
        for (size_t b = 0; b < nb32; b++) memset(dst + b * bb + bb - 16, 0, 16);
}

static int rd_fs_params(fl *F, int32_t bbs, const char *what)
{
    if (bbs <= 0 || bbs % 32 || bbs > MAX_BBS)
        return CORRUPT("faiss %s: block size bbs = %d (a positive multiple of 32 up to %d)", what,
                       (int)bbs, MAX_BBS);
    return IVFPQ_OK;
}

/* IndexIVFPQFastScan after the fourcc. */
static int rd_iwpf(fl *F, fhdr *h)
{
    const char *what = "IndexIVFPQFastScan";
    TRY(rd_ivf_header(F, h, what));
    uint64_t code_size, M2, qbs2;
    int32_t bbs, implem;
    TRY(rd_bool(F, &F->by_residual, "IVF by_residual"));
    TRY(rd_u64(F, &code_size, what));
    TRY(rd_i32(F, &bbs, what));
    TRY(rd_u64(F, &M2, what));
    TRY(rd_i32(F, &implem, what));
    TRY(rd_u64(F, &qbs2, what));
    TRY(rd_fs_params(F, bbs, what));
    if (implem < 0) return CORRUPT("faiss %s: implem = %d", what, (int)implem);
    F->has_pq = 1;
    TRY(rd_pq(F, what));
    if (code_size != (F->M + 1) / 2)
        return CORRUPT("faiss %s: code size %llu for M = %zu 4-bit codes", what, (unsigned long long)code_size, F->M);
    if (M2 != F->M2) return CORRUPT("faiss %s: M2 = %llu for M = %zu", what, (unsigned long long)M2, F->M);
    (void)qbs2;

    unsigned char cc[4];
    uint64_t nlist, cs, npb, block_size;
    TRY(rd_cc(F, cc, "inverted lists"));
    TRY(check_inv_header(F, cc, "ilbl"));
    TRY(rd_u64(F, &nlist, "inverted lists"));
    TRY(rd_u64(F, &cs, "inverted lists"));
    TRY(rd_u64(F, &npb, "inverted lists"));
    TRY(rd_u64(F, &block_size, "inverted lists"));
    if (nlist != F->nlist)
        return CORRUPT("faiss inverted lists: %llu lists, the IVF has %zu", (unsigned long long)nlist, F->nlist);
    if (cs != UINT64_MAX && cs != code_size)
        return CORRUPT("faiss inverted lists: code size %llu", (unsigned long long)cs);
    if (npb != (uint64_t)bbs || block_size != (uint64_t)bbs * F->M2 / 2)
        return CORRUPT("faiss inverted lists: %llu vectors per block of %llu bytes, expected %d of %zu",
                       (unsigned long long)npb, (unsigned long long)block_size, (int)bbs,
                       (size_t)bbs * F->M2 / 2);

    /* lists are staged (views into a buffer, copies from a stream) until
     * their total block count is known, then copied into the image */
    if (F->nlist > ivfpq__src_left(F->s) / 16) /* two counts per list at least */
        return ivfpq__fail(F->log, IVFPQ_E_TRUNCATED, "truncated: %zu inverted lists cannot fit in %llu bytes",
                           F->nlist, (unsigned long long)ivfpq__src_left(F->s));
    int rc;
    size_t nst = F->nlist * sizeof(stage);
    stage *st = ivfpq__ld_alloc(F->ld, nst, "list staging", &rc);
    if (!st) return rc;
    memset(st, 0, nst);
    uint64_t sum = 0, nblocks = 0;
    for (size_t l = 0; l < F->nlist && !rc; l++) {
        uint64_t n, nc;
        if ((rc = rd_u64(F, &n, "list ids"))) break;
        if ((rc = list_size_ok(F, l, n, &sum))) break;
        if (n > ivfpq__src_left(F->s) / 8) {
            rc = ivfpq__fail(F->log, IVFPQ_E_TRUNCATED, "truncated: list %zu has %llu ids", l, (unsigned long long)n);
            break;
        }
        if ((rc = ivfpq__src_view(F->s, (size_t)n * 8, &st[l].ids, &st[l].ids_owned, "list ids"))) break;
        st[l].n = (size_t)n;
        uint64_t want = (n + (uint64_t)bbs - 1) / (uint64_t)bbs * block_size;
        if ((rc = rd_u64(F, &nc, "list codes"))) break;
        if (nc != want) {
            rc = CORRUPT("faiss inverted lists: list %zu has %llu ids but %llu code bytes (expected %llu)",
                         l, (unsigned long long)n, (unsigned long long)nc, (unsigned long long)want);
            break;
        }
        if ((rc = ivfpq__src_view(F->s, (size_t)nc, &st[l].codes, &st[l].codes_owned, "list codes"))) break;
        st[l].code_bytes = (size_t)nc;
        nblocks += (n + 31) / 32;
    }
    if (!rc && sum != F->ntotal)
        rc = CORRUPT("faiss inverted lists hold %llu vectors, the index header says %llu",
                     (unsigned long long)sum, (unsigned long long)F->ntotal);
    if (!rc) rc = img_alloc(F, nblocks, 0);
    if (!rc) {
        uint64_t o = 0, b = 0;
        for (size_t l = 0; l < F->nlist; l++) {
            F->off[l] = o;
            F->boff[l] = b;
            if (st[l].n) {
                memcpy(F->ids + o, st[l].ids, st[l].n * 8);
#if IVFPQ_BIG_ENDIAN
                ivfpq__bswap_array(F->ids + o, st[l].n, 8);
#endif
                repack(F, F->codes + (size_t)b * 16 * F->M2, st[l].codes, st[l].n, (size_t)bbs);
            }
            o += st[l].n;
            b += (st[l].n + 31) / 32;
        }
        F->off[F->nlist] = o;
        F->boff[F->nlist] = b;
    }
    for (size_t l = 0; l < F->nlist; l++) {
        ivfpq__ld_free(F->ld, st[l].ids_owned, st[l].n * 8);
        ivfpq__ld_free(F->ld, st[l].codes_owned, st[l].code_bytes);
    }
    ivfpq__ld_free(F->ld, st, nst);
    return rc;
}

/* IndexPQFastScan after the fourcc. */
static int rd_ipfs(fl *F, fhdr *h)
{
    const char *what = "IndexPQFastScan";
    TRY(rd_header(F, h, what));
    F->d = h->d;
    F->metric = h->metric;
    F->trained = h->trained;
    F->ntotal = h->ntotal;
    F->nlist = 1;
    F->has_pq = 1;
    TRY(rd_pq(F, what));
    int32_t implem, bbs, qbs;
    uint64_t ntotal2, M2;
    TRY(rd_i32(F, &implem, what));
    TRY(rd_i32(F, &bbs, what));
    TRY(rd_i32(F, &qbs, what));
    TRY(rd_u64(F, &ntotal2, what));
    TRY(rd_u64(F, &M2, what));
    TRY(rd_fs_params(F, bbs, what));
    if (implem < 0 || qbs < 0) return CORRUPT("faiss %s: implem = %d, qbs = %d", what, (int)implem, (int)qbs);
    if (!F->trained && F->ntotal) return CORRUPT("faiss %s: untrained index holding vectors", what);
    uint64_t want2 = (F->ntotal + (uint64_t)bbs - 1) / (uint64_t)bbs * (uint64_t)bbs;
    if (ntotal2 != want2)
        return CORRUPT("faiss %s: ntotal2 = %llu for ntotal = %llu and bbs = %d", what,
                       (unsigned long long)ntotal2, (unsigned long long)F->ntotal, (int)bbs);
    if (M2 != F->M2) return CORRUPT("faiss %s: M2 = %llu for M = %zu", what, (unsigned long long)M2, F->M);
    uint64_t bytes = ntotal2 * F->M2 / 2;
    TRY(rd_count(F, bytes, 1, "PQ codes"));
    size_t n = (size_t)F->ntotal;
    TRY(img_alloc(F, (n + 31) / 32, bytes));
    F->off[1] = n;
    F->boff[1] = (n + 31) / 32;
    for (size_t i = 0; i < n; i++) F->ids[i] = (int64_t)i;
    const unsigned char *raw;
    void *owned;
    TRY(ivfpq__src_view(F->s, (size_t)bytes, &raw, &owned, "PQ codes"));
    repack(F, F->codes, raw, n, (size_t)bbs);
    ivfpq__ld_free(F->ld, owned, (size_t)bytes);
    return IVFPQ_OK;
}

/* Top-level IndexFlat after the fourcc. */
static int rd_flat(fl *F, const unsigned char *cc, fhdr *h)
{
    TRY(rd_header(F, h, "IndexFlat"));
    if ((FOURCC_EQ(cc, "IxF2") ? IVFPQ_METRIC_L2 : IVFPQ_METRIC_INNER_PRODUCT) != h->metric)
        return CORRUPT("faiss IndexFlat: record %c%c%c%c with metric %d", cc[0], cc[1], cc[2], cc[3], h->metric);
    if (!h->trained) return CORRUPT("faiss IndexFlat: is_trained is false");
    F->d = h->d;
    F->metric = h->metric;
    F->trained = 1;
    F->ntotal = h->ntotal;
    F->nlist = 1;
    if (F->ntotal > ivfpq__src_left(F->s) / ((uint64_t)F->d * 4))
        return ivfpq__fail(F->log, IVFPQ_E_TRUNCATED, "truncated: faiss IndexFlat of %llu vectors",
                           (unsigned long long)F->ntotal);
    TRY(img_alloc(F, 0, 0));
    F->off[1] = F->ntotal;
    for (size_t i = 0; i < (size_t)F->ntotal; i++) F->ids[i] = (int64_t)i;
    return rd_flat_data(F, h, F->vecs, NULL, "IndexFlat vectors");
}

static int rd_base(fl *F, const unsigned char *cc, fhdr *h)
{
    if (FOURCC_EQ(cc, "IxF2") || FOURCC_EQ(cc, "IxFI")) {
        if (F->refine)
            return UNSUPPORTED("faiss IndexRefineFlat over an IndexFlat: the base is already "
                               "exact; save the IndexFlat alone");
        return rd_flat(F, cc, h);
    }
    if (FOURCC_EQ(cc, "IwFl")) {
        if (F->refine)
            return UNSUPPORTED("faiss IndexRefineFlat over an IndexIVFFlat is not supported (the "
                               "IVF lists are already exact)");
        TRY(rd_ivf_header(F, h, "IndexIVFFlat"));
        return rd_ilar(F);
    }
    if (FOURCC_EQ(cc, "IPfs")) return rd_ipfs(F, h);
    if (FOURCC_EQ(cc, "IwPf")) return rd_iwpf(F, h);
    if (FOURCC_EQ(cc, "IxRF") || FOURCC_EQ(cc, "IxMp") || FOURCC_EQ(cc, "IxM2"))
        return UNSUPPORTED("faiss %s nested in another wrapper is not supported", faiss_name(cc));
    if (ivfpq__is_faiss_fourcc(cc))
        return UNSUPPORTED("faiss %s (\"%c%c%c%c\") is not supported: libivfpq reads Flat, "
                           "IVF<n>,Flat, PQ<M>x4fs, IVF<n>,PQ<M>x4fs[r], with RFlat and IDMap",
                           faiss_name(cc), cc[0], cc[1], cc[2], cc[3]);
    return CORRUPT("faiss index: unknown record type (bytes %u %u %u %u) at byte %llu", cc[0],
                   cc[1], cc[2], cc[3], (unsigned long long)(F->s->pos - 4));
}

/* The refine IndexFlat of an IxRF: vectors by position = base label. */
static int rd_refine(fl *F, const fhdr *base)
{
    unsigned char cc[4];
    fhdr h;
    TRY(rd_cc(F, cc, "the refine index"));
    if (!FOURCC_EQ(cc, "IxF2") && !FOURCC_EQ(cc, "IxFI"))
        return UNSUPPORTED("faiss IndexRefine with a %s (\"%c%c%c%c\") refine index: only "
                           "IndexRefineFlat is supported",
                           faiss_name(cc), cc[0], cc[1], cc[2], cc[3]);
    TRY(rd_header(F, &h, "refine IndexFlat"));
    if ((FOURCC_EQ(cc, "IxF2") ? IVFPQ_METRIC_L2 : IVFPQ_METRIC_INNER_PRODUCT) != h.metric)
        return CORRUPT("faiss refine IndexFlat: record %c%c%c%c with metric %d", cc[0], cc[1], cc[2], cc[3], h.metric);
    fhdr b = *base;
    b.trained = h.trained;
    TRY(same_header(F, &h, &b, "refine IndexFlat"));
    if (F->ntotal > ivfpq__src_left(F->s) / ((uint64_t)F->d * 4))
        return ivfpq__fail(F->log, IVFPQ_E_TRUNCATED, "truncated: faiss refine IndexFlat of %llu vectors",
                           (unsigned long long)F->ntotal);
    if (!F->has_ivf) return rd_flat_data(F, &h, F->vecs, NULL, "refine vectors");

    /* IVF: entry j of the lists holds base label p = refine position */
    int rc;
    size_t n = (size_t)F->ntotal, bytes = n ? n * 8 : 1;
    uint64_t *slot_of = ivfpq__ld_alloc(F->ld, bytes, "refine position map", &rc);
    if (!slot_of) return rc;
    memset(slot_of, 0xff, n * 8);
    for (size_t j = 0; j < n && !rc; j++) {
        int64_t p = F->ids[j];
        if (p < 0 || (uint64_t)p >= F->ntotal)
            rc = CORRUPT("faiss IndexRefineFlat: list entry %zu refers to refine vector %lld of %zu",
                         j, (long long)p, n);
        else if (slot_of[p] != UINT64_MAX)
            rc = UNSUPPORTED("faiss IndexRefineFlat: refine vector %lld is referenced twice",
                             (long long)p);
        else
            slot_of[p] = j;
    }
    if (!rc) rc = rd_flat_data(F, &h, F->vecs, slot_of, "refine vectors");
    ivfpq__ld_free(F->ld, slot_of, bytes);
    return rc;
}

static int rd_main(fl *F, const unsigned char *cc, fhdr *h)
{
    if (!FOURCC_EQ(cc, "IxRF")) return rd_base(F, cc, h);
    fhdr rh;
    unsigned char bc[4];
    float kf;
    TRY(rd_header(F, &rh, "IndexRefine"));
    F->refine = 1;
    TRY(rd_cc(F, bc, "the refined index"));
    if (!FOURCC_EQ(bc, "IPfs") && !FOURCC_EQ(bc, "IwPf") && !FOURCC_EQ(bc, "IxF2") &&
        !FOURCC_EQ(bc, "IxFI") && !FOURCC_EQ(bc, "IwFl"))
        return UNSUPPORTED("faiss IndexRefine over %s (\"%c%c%c%c\") is not supported", faiss_name(bc),
                           bc[0], bc[1], bc[2], bc[3]);
    TRY(rd_base(F, bc, h));
    if (rh.trained != h->trained) return CORRUPT("faiss IndexRefine: is_trained differs from its base's");
    TRY(same_header(F, &rh, h, "IndexRefine"));
    TRY(rd_refine(F, h));
    TRY(rd_f32(F, &kf, "IndexRefine k_factor"));
    if (!(kf >= 1.0f && kf <= 65536.0f)) /* also NaN */
        return CORRUPT("faiss IndexRefine: k_factor = %g (must be in [1, 65536])", (double)kf);
    return IVFPQ_OK;
}

/* IDMap: labels[j] = id_map[inner label]. */
static int rd_idmap(fl *F, const fhdr *outer, const fhdr *inner)
{
    TRY(same_header(F, outer, inner, "IndexIDMap"));
    if (outer->trained != inner->trained) return CORRUPT("faiss IndexIDMap: is_trained differs from its index's");
    size_t n = (size_t)F->ntotal;
    TRY(rd_count(F, F->ntotal, 8, "IDMap labels"));
    const unsigned char *map;
    void *owned;
    TRY(ivfpq__src_view(F->s, n * 8, &map, &owned, "IDMap labels"));
    int rc = IVFPQ_OK;
    for (size_t j = 0; j < n && !rc; j++) {
        int64_t p = F->ids[j];
        if (p < 0 || (uint64_t)p >= F->ntotal) {
            rc = CORRUPT("faiss IndexIDMap: inner label %lld of entry %zu is not a position in "
                         "[0, %zu)",
                         (long long)p, j, n);
            break;
        }
        int64_t lab = (int64_t)ivfpq__le64(map + 8 * (size_t)p);
        if (lab < 0)
            rc = UNSUPPORTED("faiss IndexIDMap: label %lld is negative (libivfpq labels are >= 0)",
                             (long long)lab);
        F->ids[j] = lab;
    }
    ivfpq__ld_free(F->ld, owned, n * 8);
    return rc;
}

static void fl_free(fl *F)
{
    ivfpq__ld_free(F->ld, F->cent, F->cent_bytes);
    ivfpq__ld_free(F->ld, F->cnorm, F->cnorm_bytes);
    ivfpq__ld_free(F->ld, F->pq, F->pq_bytes);
    ivfpq__ld_free(F->ld, F->img, F->img_bytes);
}

static int fl_finish(fl *F, ivfpq_index **out)
{
    ivfpq_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.has_ivf = F->has_ivf;
    spec.has_pq = F->has_pq;
    spec.by_residual = F->by_residual;
    spec.refine = F->refine;
    spec.nlist = F->nlist;
    spec.M = F->has_pq ? F->M : 0;
    TRY(ivfpq__check_shape(F->ld, "faiss index", F->d, F->metric, &spec));
    if (!F->trained && F->ntotal) return CORRUPT("faiss index: untrained index holding vectors");
    for (size_t j = 0; j < (size_t)F->ntotal; j++)
        if (F->ids[j] < 0)
            return UNSUPPORTED("faiss index: label %lld (entry %zu) is negative; libivfpq labels are >= 0",
                               (long long)F->ids[j], j);
    int rc;
    if (F->cent) {
        F->cnorm_bytes = F->nlist * sizeof(float);
        F->cnorm = ivfpq__ld_alloc(F->ld, F->cnorm_bytes, "centroid norms", &rc);
        if (!F->cnorm) return rc;
        for (size_t c = 0; c < F->nlist; c++) {
            const float *x = F->cent + c * (size_t)F->d;
            F->cnorm[c] = ivfpq__dot(x, x, (size_t)F->d);
        }
    }
    ivfpq_options o;
    memset(&o, 0, sizeof o);
    o.allocator = F->ld->mem.a;
    o.log = F->ld->log.fn;
    o.log_user = F->ld->log.user;
    if (F->ld->max_bytes && F->ld->used + sizeof(ivfpq_index) > F->ld->max_bytes)
        return ivfpq__fail(F->log, IVFPQ_E_LIMIT, "load: max_bytes = %zu is too small", F->ld->max_bytes);
    ivfpq_index *idx;
    TRY(ivfpq__index_create(&idx, F->d, (ivfpq_metric)F->metric, &spec, &o, 0));
    idx->is_trained = F->trained;
    idx->centroids = F->cent;
    idx->cnorms = F->cnorm;
    idx->pq_cb = F->pq;
    idx->model_borrowed = 0;
    idx->image = F->img;
    idx->storage = IVFPQ_STORAGE_FLAT;
    idx->flat.off = F->off;
    idx->flat.boff = F->boff;
    idx->flat.ids = F->ids;
    idx->flat.codes = F->codes;
    idx->flat.vecs = F->vecs;
    idx->ntotal = (size_t)F->ntotal;
    *out = idx;
    return IVFPQ_OK;
}

int ivfpq__faiss_load(ivfpq_index **out, ivfpq_src *s)
{
    fl F;
    memset(&F, 0, sizeof F);
    F.s = s;
    F.ld = s->ld;
    F.log = &s->ld->log;
    unsigned char cc[4];
    fhdr h, inner;
    int rc = rd_cc(&F, cc, "the faiss record type");
    if (!rc && (FOURCC_EQ(cc, "IxMp") || FOURCC_EQ(cc, "IxM2"))) {
        unsigned char ic[4];
        rc = rd_header(&F, &h, "IndexIDMap");
        if (!rc) rc = rd_cc(&F, ic, "the IDMap's index");
        if (!rc) rc = rd_main(&F, ic, &inner);
        if (!rc) rc = rd_idmap(&F, &h, &inner);
    } else if (!rc) {
        rc = rd_main(&F, cc, &h);
    }
    if (!rc) rc = fl_finish(&F, out);
    if (rc) fl_free(&F);
    return rc;
}

/* ================================================================ save */

typedef struct fw {
    const ivfpq_index *idx;
    ivfpq_sink *k;
    int wrap;               /* IDMap2 around everything: base labels are positions */
    const uint64_t *by_label; /* RFlat over IVF, labels a permutation: slot of label p */
} fw;

static int w_bytes(fw *W, const void *p, size_t n) { return ivfpq__sink_put(W->k, p, n); }
static int w_u8(fw *W, unsigned v)
{
    unsigned char b = (unsigned char)v;
    return w_bytes(W, &b, 1);
}
static int w_i32(fw *W, int32_t v)
{
    unsigned char b[4];
    ivfpq__put32(b, (uint32_t)v);
    return w_bytes(W, b, 4);
}
static int w_u64(fw *W, uint64_t v)
{
    unsigned char b[8];
    ivfpq__put64(b, v);
    return w_bytes(W, b, 8);
}
static int w_f32(fw *W, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    unsigned char b[4];
    ivfpq__put32(b, u);
    return w_bytes(W, b, 4);
}
static int w_cc(fw *W, const char *cc) { return w_bytes(W, cc, 4); }

static int w_header(fw *W, uint64_t ntotal, int trained)
{
    const ivfpq_index *idx = W->idx;
    TRY(w_i32(W, idx->d));
    TRY(w_u64(W, ntotal));
    TRY(w_u64(W, (uint64_t)1 << 20)); /* unused fields, faiss's values */
    TRY(w_u64(W, (uint64_t)1 << 20));
    TRY(w_u8(W, (unsigned)trained));
    return w_i32(W, (int32_t)idx->metric);
}

static const char *flat_cc(const ivfpq_index *idx)
{
    return idx->metric == IVFPQ_METRIC_L2 ? "IxF2" : "IxFI";
}

/* Label of the j-th stored vector as the base index records it. */
static int64_t base_label(const fw *W, size_t j, int64_t label)
{
    if (W->wrap) return (int64_t)j;
    return label;
}

/* All stored vectors, in list order (or in label order). */
static int w_vectors(fw *W)
{
    const ivfpq_index *idx = W->idx;
    size_t d = (size_t)idx->d;
    TRY(w_u64(W, (uint64_t)idx->ntotal * d));
    if (W->by_label) {
        for (size_t p = 0; p < idx->ntotal; p++) {
            uint64_t ref = W->by_label[p];
            ivfpq_list_view v;
            ivfpq__list_get(idx, (size_t)(ref >> 32), &v);
            TRY(ivfpq__sink_array(W->k, v.vecs + (size_t)(ref & 0xffffffffu) * d, d, 4));
        }
        return IVFPQ_OK;
    }
    for (size_t l = 0; l < idx->nlist; l++) {
        ivfpq_list_view v;
        ivfpq__list_get(idx, l, &v);
        if (v.n) TRY(ivfpq__sink_array(W->k, v.vecs, v.n * d, 4));
    }
    return IVFPQ_OK;
}

/* Labels of a list (written as the base sees them). */
static int w_list_ids(fw *W, const ivfpq_list_view *v, size_t first)
{
    if (!W->wrap) return ivfpq__sink_array(W->k, v->ids, v->n, 8);
    unsigned char b[8 * 64];
    for (size_t j = 0; j < v->n;) {
        size_t c = 0;
        for (; c < 64 && j < v->n; c++, j++) ivfpq__put64(b + 8 * c, (uint64_t)base_label(W, first + j, v->ids[j]));
        TRY(w_bytes(W, b, 8 * c));
    }
    return IVFPQ_OK;
}

static int w_pq(fw *W)
{
    const ivfpq_index *idx = W->idx;
    size_t d = (size_t)idx->d, dsub = idx->dsub;
    TRY(w_u64(W, d));
    TRY(w_u64(W, idx->M));
    TRY(w_u64(W, 4));
    TRY(w_u64(W, d * IVFPQ_KSUB));
    float row[64];
    size_t nr = 0;
    for (size_t m = 0; m < idx->M; m++)
        for (size_t j = 0; j < IVFPQ_KSUB; j++)
            for (size_t t = 0; t < dsub; t++) {
                row[nr++] = idx->pq_cb ? idx->pq_cb[(m * dsub + t) * 16 + j] : 0.0f;
                if (nr == 64) {
                    TRY(ivfpq__sink_array(W->k, row, nr, 4));
                    nr = 0;
                }
            }
    return ivfpq__sink_array(W->k, row, nr, 4);
}

static int w_ivf_header(fw *W, const char *cc)
{
    const ivfpq_index *idx = W->idx;
    TRY(w_cc(W, cc));
    TRY(w_header(W, idx->ntotal, idx->is_trained));
    TRY(w_u64(W, idx->nlist));
    TRY(w_u64(W, 1)); /* nprobe: faiss's default */
    size_t qn = idx->is_trained ? idx->nlist : 0;
    TRY(w_cc(W, flat_cc(idx)));
    TRY(w_header(W, qn, 1));
    TRY(w_u64(W, (uint64_t)qn * (size_t)idx->d));
    if (qn) TRY(ivfpq__sink_array(W->k, idx->centroids, qn * (size_t)idx->d, 4));
    TRY(w_u8(W, 0)); /* no direct map */
    return w_u64(W, 0);
}

static int w_base(fw *W)
{
    const ivfpq_index *idx = W->idx;
    size_t d = (size_t)idx->d;
    if (!idx->spec.has_ivf && !idx->spec.has_pq) {
        TRY(w_cc(W, flat_cc(idx)));
        TRY(w_header(W, idx->ntotal, 1));
        return w_vectors(W);
    }
    if (!idx->spec.has_ivf) {
        ivfpq_list_view v;
        ivfpq__list_get(idx, 0, &v);
        size_t nb = (v.n + 31) / 32;
        TRY(w_cc(W, "IPfs"));
        TRY(w_header(W, idx->ntotal, idx->is_trained));
        TRY(w_pq(W));
        TRY(w_i32(W, 0));  /* implem */
        TRY(w_i32(W, IVFPQ_BBS));
        TRY(w_i32(W, 0));  /* qbs */
        TRY(w_u64(W, nb * 32));
        TRY(w_u64(W, idx->M2));
        TRY(w_u64(W, nb * idx->block_bytes));
        return nb ? w_bytes(W, v.codes, nb * idx->block_bytes) : IVFPQ_OK;
    }
    if (!idx->spec.has_pq) {
        TRY(w_ivf_header(W, "IwFl"));
        size_t non0 = 0;
        for (size_t l = 0; l < idx->nlist; l++) {
            ivfpq_list_view v;
            ivfpq__list_get(idx, l, &v);
            non0 += v.n > 0;
        }
        TRY(w_cc(W, "ilar"));
        TRY(w_u64(W, idx->nlist));
        TRY(w_u64(W, d * 4));
        int full = non0 > idx->nlist / 2; /* faiss's own choice */
        TRY(w_cc(W, full ? "full" : "sprs"));
        TRY(w_u64(W, full ? idx->nlist : 2 * non0));
        for (size_t l = 0; l < idx->nlist; l++) {
            ivfpq_list_view v;
            ivfpq__list_get(idx, l, &v);
            if (full) {
                TRY(w_u64(W, v.n));
            } else if (v.n) {
                TRY(w_u64(W, l));
                TRY(w_u64(W, v.n));
            }
        }
        size_t first = 0;
        for (size_t l = 0; l < idx->nlist; l++) {
            ivfpq_list_view v;
            ivfpq__list_get(idx, l, &v);
            if (!v.n) continue;
            TRY(ivfpq__sink_array(W->k, v.vecs, v.n * d, 4));
            TRY(w_list_ids(W, &v, first));
            first += v.n;
        }
        return IVFPQ_OK;
    }
    TRY(w_ivf_header(W, "IwPf"));
    TRY(w_u8(W, (unsigned)idx->spec.by_residual));
    TRY(w_u64(W, (idx->M + 1) / 2));
    TRY(w_i32(W, IVFPQ_BBS));
    TRY(w_u64(W, idx->M2));
    TRY(w_i32(W, 0));  /* implem */
    TRY(w_u64(W, 0));  /* qbs2 */
    TRY(w_pq(W));
    TRY(w_cc(W, "ilbl"));
    TRY(w_u64(W, idx->nlist));
    TRY(w_u64(W, UINT64_MAX)); /* code_size: "invalid" for block lists, as faiss */
    TRY(w_u64(W, IVFPQ_BBS));
    TRY(w_u64(W, idx->block_bytes));
    size_t first = 0;
    for (size_t l = 0; l < idx->nlist; l++) {
        ivfpq_list_view v;
        ivfpq__list_get(idx, l, &v);
        size_t cb = (v.n + 31) / 32 * idx->block_bytes;
        TRY(w_u64(W, v.n));
        TRY(w_list_ids(W, &v, first));
        TRY(w_u64(W, cb));
        if (cb) TRY(w_bytes(W, v.codes, cb));
        first += v.n;
    }
    return IVFPQ_OK;
}

/* How labels map to faiss: positions for Flat/PQ/RFlat bases. */
static int plan_labels(fw *W, uint64_t **by_label)
{
    const ivfpq_index *idx = W->idx;
    *by_label = NULL;
    W->wrap = 0;
    W->by_label = NULL;
    int positional = !idx->spec.has_ivf || idx->spec.refine;
    if (!positional || idx->ntotal == 0) return IVFPQ_OK;
    if (!idx->spec.has_ivf) { /* one list: labels must be 0, 1, 2, ... */
        ivfpq_list_view v;
        ivfpq__list_get(idx, 0, &v);
        for (size_t j = 0; j < v.n; j++)
            if (v.ids[j] != (int64_t)j) {
                W->wrap = 1;
                break;
            }
        return IVFPQ_OK;
    }
    /* IVF + RFlat: refine vectors are stored by label if labels are a
     * permutation of 0..ntotal-1 (what faiss makes), else wrap */
    size_t n = idx->ntotal;
    uint64_t *map = ivfpq__alloc(&idx->mem, n * sizeof(uint64_t));
    if (!map) return ivfpq__fail(&idx->log, IVFPQ_E_NOMEM, "save: out of memory for a label map of %zu", n);
    memset(map, 0xff, n * sizeof(uint64_t));
    for (size_t l = 0; l < idx->nlist && !W->wrap; l++) {
        ivfpq_list_view v;
        ivfpq__list_get(idx, l, &v);
        for (size_t j = 0; j < v.n; j++) {
            int64_t lab = v.ids[j];
            if (lab < 0 || (uint64_t)lab >= n || map[lab] != UINT64_MAX) {
                W->wrap = 1;
                break;
            }
            map[lab] = ((uint64_t)l << 32) | j;
        }
    }
    if (W->wrap) {
        ivfpq__free(&idx->mem, map);
        return IVFPQ_OK;
    }
    *by_label = map;
    W->by_label = map;
    return IVFPQ_OK;
}

int ivfpq__faiss_save(const ivfpq_index *idx, ivfpq_sink *k)
{
    fw W;
    memset(&W, 0, sizeof W);
    W.idx = idx;
    W.k = k;
    uint64_t *map;
    TRY(plan_labels(&W, &map));
    int rc = IVFPQ_OK;
    if (W.wrap) {
        rc = w_cc(&W, "IxM2");
        if (!rc) rc = w_header(&W, idx->ntotal, idx->is_trained);
    }
    if (!rc && idx->spec.refine) {
        rc = w_cc(&W, "IxRF");
        if (!rc) rc = w_header(&W, idx->ntotal, idx->is_trained);
    }
    if (!rc) rc = w_base(&W);
    if (!rc && idx->spec.refine) {
        rc = w_cc(&W, flat_cc(idx));
        if (!rc) rc = w_header(&W, idx->ntotal, 1);
        if (!rc) rc = w_vectors(&W);
        if (!rc) rc = w_f32(&W, WRITE_K_FACTOR);
    }
    if (!rc && W.wrap) {
        rc = w_u64(&W, idx->ntotal);
        for (size_t l = 0; l < idx->nlist && !rc; l++) {
            ivfpq_list_view v;
            ivfpq__list_get(idx, l, &v);
            if (v.n) rc = ivfpq__sink_array(k, v.ids, v.n, 8);
        }
    }
    ivfpq__free(&idx->mem, map);
    return rc;
}

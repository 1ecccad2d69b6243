/*
 * The native index format (docs/FORMAT.md) and the public save/load entry
 * points, which detect the format and dispatch to io_faiss.c for faiss.
 *
 * A native file is a header, a section table and 64-byte aligned sections
 * holding exactly the arrays of FLAT storage (internal.h), so a loaded
 * index points into the image instead of rebuilding anything: into an
 * owned copy, or (zero-copy) into the caller's buffer.
 *
 * Loading trusts nothing: the header has its own CRC, then every size is
 * checked against the buffer with overflow-checked arithmetic, every
 * section's CRC is verified, gaps must be zero (so no byte of the file is
 * unchecked), and the cross-field invariants search relies on (offset
 * tables, block counts, padding nibbles, finite model, labels >= 0) are
 * re-established before the index is handed out.
 */
#include "io.h"

#define VERSION_MAJOR 1
#define VERSION_MINOR 0
#define FIXED_BYTES 192   /* header fields + factory string, before the section table */
#define ENTRY_BYTES 32    /* one section table entry */
#define MAX_SECTIONS 64
#define SEC_ALIGN 64
#define KNOWN_FEATURES 0u /* required_features bits this reader understands */

enum { F_IVF = 1, F_PQ = 2, F_RESIDUAL = 4, F_REFINE = 8, F_TRAINED = 16, F_ALL = 31 };

/* Sections of version 1.0, in file order. */
enum { S_CENT, S_CNRM, S_PQCB, S_LOFF, S_BOFF, S_LIDS, S_CODE, S_VECS, NSEC };
static const struct {
    char id[5];
    unsigned elem;
    const char *name;
} sec_info[NSEC] = {
    {"CENT", 4, "coarse centroids"}, {"CNRM", 4, "centroid norms"},
    {"PQCB", 4, "PQ codebooks"},     {"LOFF", 8, "list offsets"},
    {"BOFF", 8, "block offsets"},    {"LIDS", 8, "labels"},
    {"CODE", 1, "PQ codes"},         {"VECS", 4, "raw vectors"},
};

/* What a file of this shape holds: element counts per section, or
 * (uint64_t)-1 for a section that must be absent. */
typedef struct shape {
    int d, metric;
    unsigned flags;
    uint64_t nlist, M, ntotal, nblocks;
} shape;

#define ABSENT UINT64_MAX

static int shape_counts(const shape *sh, uint64_t cnt[NSEC])
{
    int trained = (sh->flags & F_TRAINED) != 0, ivf = (sh->flags & F_IVF) != 0,
        pq = (sh->flags & F_PQ) != 0, keeps = !pq || (sh->flags & F_REFINE);
    uint64_t d = (uint64_t)sh->d, M2 = (sh->M + 1) & ~(uint64_t)1;
    /* every product below is bounded by the shape limits: d <= 2^20,
     * nlist <= 2^26, ntotal <= 2^48, M2 <= 4096, nblocks <= ntotal/32 + nlist */
    cnt[S_CENT] = ivf && trained ? sh->nlist * d : ABSENT;
    cnt[S_CNRM] = ivf && trained ? sh->nlist : ABSENT;
    cnt[S_PQCB] = pq && trained ? d * IVFPQ_KSUB : ABSENT;
    cnt[S_LOFF] = sh->nlist + 1;
    cnt[S_BOFF] = pq ? sh->nlist + 1 : ABSENT;
    cnt[S_LIDS] = sh->ntotal;
    cnt[S_CODE] = pq ? sh->nblocks * 16 * M2 : ABSENT;
    cnt[S_VECS] = keeps ? sh->ntotal * d : ABSENT;
    return IVFPQ_OK;
}

/* ================================================================ save */

typedef int (*put_fn)(void *ctx, const void *p, size_t count, size_t elem);

static int put_crc(void *ctx, const void *p, size_t count, size_t elem)
{
    uint32_t *crc = ctx;
#if IVFPQ_BIG_ENDIAN
    unsigned char tmp[4096];
    const unsigned char *b = p;
    size_t per = sizeof tmp / elem;
    while (count) {
        size_t c = count < per ? count : per;
        memcpy(tmp, b, c * elem);
        ivfpq__bswap_array(tmp, c, elem);
        *crc = ivfpq__crc32c(*crc, tmp, c * elem);
        b += c * elem;
        count -= c;
    }
#else
    *crc = ivfpq__crc32c(*crc, p, count * elem);
#endif
    return IVFPQ_OK;
}

static int put_sink(void *ctx, const void *p, size_t count, size_t elem)
{
    return ivfpq__sink_array(ctx, p, count, elem);
}

/* Feeds section k's bytes (host order) to put, gathering owned lists. */
static int emit_section(const ivfpq_index *idx, int k, put_fn put, void *ctx)
{
    size_t d = (size_t)idx->d;
    int rc = IVFPQ_OK;
    switch (k) {
    case S_CENT: return put(ctx, idx->centroids, idx->nlist * d, 4);
    case S_CNRM: return put(ctx, idx->cnorms, idx->nlist, 4);
    case S_PQCB: return put(ctx, idx->pq_cb, d * IVFPQ_KSUB, 4);
    case S_LOFF:
    case S_BOFF: {
        uint64_t buf[64], acc = 0; /* small: the stack of embedded callers */
        size_t nb = 0;
        buf[nb++] = 0;
        for (size_t l = 0; l < idx->nlist && !rc; l++) {
            ivfpq_list_view v;
            ivfpq__list_get(idx, l, &v);
            acc += k == S_LOFF ? v.n : (v.n + IVFPQ_BBS - 1) / IVFPQ_BBS;
            buf[nb++] = acc;
            if (nb == sizeof buf / sizeof buf[0]) {
                rc = put(ctx, buf, nb, 8);
                nb = 0;
            }
        }
        return rc ? rc : put(ctx, buf, nb, 8);
    }
    default:
        for (size_t l = 0; l < idx->nlist && !rc; l++) {
            ivfpq_list_view v;
            ivfpq__list_get(idx, l, &v);
            if (!v.n) continue;
            if (k == S_LIDS) rc = put(ctx, v.ids, v.n, 8);
            else if (k == S_CODE)
                rc = put(ctx, v.codes, (v.n + IVFPQ_BBS - 1) / IVFPQ_BBS * idx->block_bytes, 1);
            else rc = put(ctx, v.vecs, v.n * d, 4);
        }
        return rc;
    }
}

static void index_shape(const ivfpq_index *idx, shape *sh)
{
    memset(sh, 0, sizeof *sh);
    sh->d = idx->d;
    sh->metric = (int)idx->metric;
    sh->flags = (idx->spec.has_ivf ? F_IVF : 0) | (idx->spec.has_pq ? F_PQ : 0) |
                (idx->spec.by_residual ? F_RESIDUAL : 0) | (idx->spec.refine ? F_REFINE : 0) |
                (idx->is_trained ? F_TRAINED : 0);
    sh->nlist = idx->nlist;
    sh->M = idx->M;
    sh->ntotal = idx->ntotal;
    for (size_t l = 0; l < idx->nlist && idx->spec.has_pq; l++) {
        ivfpq_list_view v;
        ivfpq__list_get(idx, l, &v);
        sh->nblocks += (v.n + IVFPQ_BBS - 1) / IVFPQ_BBS;
    }
}

/* Section offsets for a shape: returns the number of sections present. */
static unsigned plan_sections(const shape *sh, const uint64_t cnt[NSEC], int which[NSEC],
                              uint64_t off[NSEC], uint64_t *header_bytes, uint64_t *file_bytes)
{
    unsigned ns = 0;
    for (int k = 0; k < NSEC; k++)
        if (cnt[k] != ABSENT) which[ns++] = k;
    uint64_t pos = ivfpq__round_up(FIXED_BYTES + (size_t)ns * ENTRY_BYTES, SEC_ALIGN);
    *header_bytes = pos;
    for (unsigned i = 0; i < ns; i++) {
        int k = which[i];
        off[k] = pos;
        pos = (pos + cnt[k] * sec_info[k].elem + SEC_ALIGN - 1) / SEC_ALIGN * SEC_ALIGN;
    }
    (void)sh;
    *file_bytes = pos;
    return ns;
}

uint64_t ivfpq__native_bytes(const ivfpq_spec *s, int d, int trained, uint64_t ntotal,
                             uint64_t nblocks)
{
    shape sh = {d, 0,
                (s->has_ivf ? F_IVF : 0) | (s->has_pq ? F_PQ : 0) | (trained ? F_TRAINED : 0) |
                    (s->refine ? F_REFINE : 0),
                s->nlist, s->M, ntotal, nblocks};
    uint64_t cnt[NSEC], off[NSEC], H, total;
    int which[NSEC];
    shape_counts(&sh, cnt);
    plan_sections(&sh, cnt, which, off, &H, &total);
    return total;
}

int ivfpq__native_save(const ivfpq_index *idx, ivfpq_sink *k)
{
    shape sh;
    uint64_t cnt[NSEC], off[NSEC], H, total;
    int which[NSEC];
    index_shape(idx, &sh);
    shape_counts(&sh, cnt);
    unsigned ns = plan_sections(&sh, cnt, which, off, &H, &total);
    if (total > SIZE_MAX)
        return ivfpq__fail(k->log, IVFPQ_E_OVERFLOW, "save: %llu bytes do not fit in size_t",
                           (unsigned long long)total);

    unsigned char h[FIXED_BYTES + NSEC * ENTRY_BYTES + SEC_ALIGN];
    memset(h, 0, sizeof h);
    memcpy(h, IVFPQ_NATIVE_MAGIC, 8);
    ivfpq__put16(h + 8, VERSION_MAJOR);
    ivfpq__put16(h + 10, VERSION_MINOR);
    ivfpq__put32(h + 12, (uint32_t)H);
    ivfpq__put64(h + 16, total);
    ivfpq__put32(h + 24, 0); /* required features */
    ivfpq__put32(h + 28, ns);
    ivfpq__put32(h + 32, (uint32_t)idx->d);
    ivfpq__put32(h + 36, (uint32_t)idx->metric);
    ivfpq__put32(h + 40, sh.flags);
    ivfpq__put32(h + 44, IVFPQ_BBS);
    ivfpq__put64(h + 48, sh.nlist);
    ivfpq__put64(h + 56, sh.M);
    ivfpq__put64(h + 64, sh.ntotal);
    ivfpq__put64(h + 72, sh.nblocks);
    ivfpq__put64(h + 80, idx->seed);
    ivfpq__put32(h + 88, (uint32_t)idx->coarse_niter);
    ivfpq__put32(h + 92, (uint32_t)idx->pq_niter);
    ivfpq__put32(h + 96, (uint32_t)idx->max_ppc);
    ivfpq__put32(h + 100, (uint32_t)idx->min_ppc);
    ivfpq__put64(h + 104, idx->pq_train_points);
    ivfpq__spec_string(&idx->spec, (char *)h + 128, 64);
    for (unsigned i = 0; i < ns; i++) {
        int s = which[i];
        unsigned char *e = h + FIXED_BYTES + i * ENTRY_BYTES;
        uint32_t crc = 0;
        if (k->write) { /* ivfpq_saved_size only counts */
            int rc = emit_section(idx, s, put_crc, &crc);
            if (rc) return rc;
        }
        memcpy(e, sec_info[s].id, 4);
        ivfpq__put32(e + 4, sec_info[s].elem);
        ivfpq__put64(e + 8, off[s]);
        ivfpq__put64(e + 16, cnt[s] * sec_info[s].elem);
        ivfpq__put32(e + 24, crc);
    }
    ivfpq__put32(h + 124, ivfpq__crc32c(0, h, (size_t)H));

    int rc = ivfpq__sink_put(k, h, (size_t)H);
    for (unsigned i = 0; i < ns && !rc; i++) {
        int s = which[i];
        rc = ivfpq__sink_zeros(k, (size_t)(off[s] - k->pos));
        if (!rc) rc = emit_section(idx, s, put_sink, k);
    }
    if (!rc) rc = ivfpq__sink_zeros(k, (size_t)(total - k->pos));
    return rc;
}

/* ================================================================ load */

typedef struct hdr {
    uint32_t H, ns, req, flags, bbs, cniter, pqniter, maxppc, minppc;
    uint16_t major, minor;
    int d, metric;
    uint64_t file_bytes, nlist, M, ntotal, nblocks, seed, ptp;
} hdr;

#define CORRUPT(...) ivfpq__fail(log, IVFPQ_E_CORRUPT, __VA_ARGS__)

/* Fixed part and table size: p holds avail (>= 8, magic checked) bytes. */
static int parse_header(const ivfpq_ld *ld, const unsigned char *p, size_t avail, hdr *h)
{
    const ivfpq_log *log = &ld->log;
    if (avail < FIXED_BYTES)
        return ivfpq__fail(log, IVFPQ_E_TRUNCATED,
                           "truncated at byte %zu: a libivfpq index header has at least %d bytes",
                           avail, FIXED_BYTES);
    memset(h, 0, sizeof *h);
    h->major = ivfpq__le16(p + 8);
    h->minor = ivfpq__le16(p + 10);
    if (h->major != VERSION_MAJOR)
        return ivfpq__fail(log, IVFPQ_E_VERSION,
                           "libivfpq index format %u.%u: this library reads version %d.x only",
                           h->major, h->minor, VERSION_MAJOR);
    h->H = ivfpq__le32(p + 12);
    h->file_bytes = ivfpq__le64(p + 16);
    h->req = ivfpq__le32(p + 24);
    h->ns = ivfpq__le32(p + 28);
    if (h->ns > MAX_SECTIONS)
        return CORRUPT("index header: %u sections (at most %d)", h->ns, MAX_SECTIONS);
    if (h->H % SEC_ALIGN || h->H < FIXED_BYTES + h->ns * ENTRY_BYTES ||
        h->H > FIXED_BYTES + MAX_SECTIONS * ENTRY_BYTES + SEC_ALIGN)
        return CORRUPT("index header: header size %u is invalid for %u sections", h->H, h->ns);
    if (avail < h->H)
        return ivfpq__fail(log, IVFPQ_E_TRUNCATED,
                           "truncated at byte %zu: the index header has %u bytes", avail, h->H);
    uint32_t stored = ivfpq__le32(p + 124);
    static const unsigned char zero4[4];
    uint32_t crc = ivfpq__crc32c(0, p, 124);
    crc = ivfpq__crc32c(crc, zero4, 4);
    crc = ivfpq__crc32c(crc, p + 128, h->H - 128);
    if (crc != stored)
        return ivfpq__fail(log, IVFPQ_E_CHECKSUM,
                           "checksum mismatch in the index header (stored %u, computed %u): the "
                           "file is damaged",
                           stored, crc);
    if (h->req & ~KNOWN_FEATURES)
        return ivfpq__fail(log, IVFPQ_E_VERSION,
                           "index format %u.%u uses features (bits %u) this library (reads 1.%d) "
                           "does not know",
                           h->major, h->minor, h->req & ~KNOWN_FEATURES, VERSION_MINOR);
    h->d = (int)(ivfpq__le32(p + 32) > (uint32_t)IVFPQ_MAX_D ? -1 : (int)ivfpq__le32(p + 32));
    uint32_t metric = ivfpq__le32(p + 36);
    h->metric = metric > 1 ? -1 : (int)metric;
    h->flags = ivfpq__le32(p + 40);
    h->bbs = ivfpq__le32(p + 44);
    h->nlist = ivfpq__le64(p + 48);
    h->M = ivfpq__le64(p + 56);
    h->ntotal = ivfpq__le64(p + 64);
    h->nblocks = ivfpq__le64(p + 72);
    h->seed = ivfpq__le64(p + 80);
    h->cniter = ivfpq__le32(p + 88);
    h->pqniter = ivfpq__le32(p + 92);
    h->maxppc = ivfpq__le32(p + 96);
    h->minppc = ivfpq__le32(p + 100);
    h->ptp = ivfpq__le64(p + 104);
    if (h->file_bytes < h->H)
        return CORRUPT("index header: file size %llu is smaller than the header",
                       (unsigned long long)h->file_bytes);
    return IVFPQ_OK;
}

/* Semantic checks of the header fields; fills the spec. */
static int check_header(const ivfpq_ld *ld, const hdr *h, ivfpq_spec *spec)
{
    const ivfpq_log *log = &ld->log;
    if (h->flags & ~(unsigned)F_ALL) return CORRUPT("index header: unknown flags %u", h->flags);
    if (h->bbs != IVFPQ_BBS) return CORRUPT("index header: block size %u (must be 32)", h->bbs);
    if (h->nlist > IVFPQ_MAX_NLIST || h->M > IVFPQ_MAX_M)
        return CORRUPT("index header: nlist = %llu or M = %llu out of range",
                       (unsigned long long)h->nlist, (unsigned long long)h->M);
    memset(spec, 0, sizeof *spec);
    spec->has_ivf = (h->flags & F_IVF) != 0;
    spec->has_pq = (h->flags & F_PQ) != 0;
    spec->by_residual = (h->flags & F_RESIDUAL) != 0;
    spec->refine = (h->flags & F_REFINE) != 0;
    spec->nlist = (size_t)h->nlist;
    spec->M = (size_t)h->M;
    int rc = ivfpq__check_shape(ld, "index header", h->d, h->metric, spec);
    if (rc) return rc;
    if (h->ntotal > IVFPQ_MAX_NTOTAL)
        return CORRUPT("index header: ntotal = %llu is over 2^48", (unsigned long long)h->ntotal);
    int trained = (h->flags & F_TRAINED) != 0;
    if (!spec->has_ivf && !spec->has_pq && !trained)
        return CORRUPT("index header: a Flat index is always trained");
    if (!trained && h->ntotal) return CORRUPT("index header: untrained index holding vectors");
    uint64_t maxblocks = h->ntotal / IVFPQ_BBS + h->nlist;
    if (spec->has_pq ? h->nblocks > maxblocks : h->nblocks != 0)
        return CORRUPT("index header: %llu code blocks for %llu vectors in %llu lists",
                       (unsigned long long)h->nblocks, (unsigned long long)h->ntotal,
                       (unsigned long long)h->nlist);
    /* what ivfpq_index_factory can produce: positive ints, seed != 0 */
    if (h->cniter - 1 >= INT32_MAX || h->pqniter - 1 >= INT32_MAX || h->maxppc - 1 >= INT32_MAX ||
        h->minppc - 1 >= INT32_MAX || h->ptp == 0 || h->ptp > SIZE_MAX || h->seed == 0)
        return CORRUPT("index header: training options out of range");
    return IVFPQ_OK;
}

typedef struct sections {
    const unsigned char *p[NSEC]; /* NULL = absent */
    uint64_t count[NSEC];
} sections;

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Section table, gaps and checksums of a whole image img[0, len) whose
 * header passed parse_header and check_header. */
static int check_sections(const ivfpq_ld *ld, const unsigned char *img, const hdr *h,
                          const uint64_t cnt[NSEC], unsigned flags, sections *S)
{
    const ivfpq_log *log = &ld->log;
    memset(S, 0, sizeof *S);
    uint64_t end = h->H;
    for (uint32_t i = 0; i < h->ns; i++) {
        const unsigned char *e = img + FIXED_BYTES + (size_t)i * ENTRY_BYTES;
        uint32_t elem = ivfpq__le32(e + 4), crc = ivfpq__le32(e + 24);
        uint64_t off = ivfpq__le64(e + 8), bytes = ivfpq__le64(e + 16);
        char id[5];
        for (int j = 0; j < 4; j++) id[j] = e[j] >= 0x20 && e[j] < 0x7f ? (char)e[j] : '?';
        id[4] = '\0';
        if (off % SEC_ALIGN || off < end || off > h->file_bytes || bytes > h->file_bytes - off)
            return CORRUPT("section %s: offset %llu / size %llu outside the file (%llu bytes) or "
                           "overlapping",
                           id, (unsigned long long)off, (unsigned long long)bytes,
                           (unsigned long long)h->file_bytes);
        if (!all_zero(img + end, (size_t)(off - end)))
            return CORRUPT("non-zero bytes in the padding before section %s (byte %llu)", id,
                           (unsigned long long)end);
        end = off + bytes;
        int k = -1;
        for (int s = 0; s < NSEC; s++)
            if (memcmp(e, sec_info[s].id, 4) == 0) k = s;
        if (k >= 0) {
            if (cnt[k] == ABSENT) return CORRUPT("section %s (%s) does not belong to this kind of index", id, sec_info[k].name);
            if (S->p[k]) return CORRUPT("section %s appears twice", id);
            if (elem != sec_info[k].elem || bytes != cnt[k] * elem)
                return CORRUPT("section %s (%s): %llu bytes of %u-byte elements, expected %llu "
                               "elements",
                               id, sec_info[k].name, (unsigned long long)bytes, elem,
                               (unsigned long long)cnt[k]);
            S->p[k] = img + off;
            S->count[k] = cnt[k];
        } else if (elem != 1 && elem != 2 && elem != 4 && elem != 8) {
            return CORRUPT("section %s: element size %u", id, elem);
        }
        /* unknown sections (a newer minor version) are skipped, still verified */
        if (!(flags & IVFPQ_LOAD_SKIP_CHECKSUMS) || k < 0) {
            uint32_t c = ivfpq__crc32c(0, img + off, (size_t)bytes);
            if (c != crc)
                return ivfpq__fail(log, IVFPQ_E_CHECKSUM,
                                   "checksum mismatch in section %s (%s, %llu bytes at byte %llu): "
                                   "the file is damaged",
                                   id, k >= 0 ? sec_info[k].name : "unknown",
                                   (unsigned long long)bytes, (unsigned long long)off);
        }
    }
    if (!all_zero(img + end, (size_t)(h->file_bytes - end)))
        return CORRUPT("non-zero bytes after the last section (byte %llu)", (unsigned long long)end);
    for (int k = 0; k < NSEC; k++)
        if (cnt[k] != ABSENT && !S->p[k])
            return CORRUPT("section %s (%s) is missing", sec_info[k].id, sec_info[k].name);
    return IVFPQ_OK;
}

/* Invariants between sections (host-order arrays). */
static int check_contents(const ivfpq_ld *ld, const hdr *h, const ivfpq_spec *spec,
                          const sections *S)
{
    const ivfpq_log *log = &ld->log;
    size_t bad, nlist = spec->nlist, M2 = (spec->M + 1) & ~(size_t)1;
    const float *model[3] = {(const float *)S->p[S_CENT], (const float *)S->p[S_CNRM],
                             (const float *)S->p[S_PQCB]};
    static const int mk[3] = {S_CENT, S_CNRM, S_PQCB};
    static const char kind[3] = {'c', 'n', 'p'};
    static const char *const why[3] = {"NaN or infinite", "NaN or negative", "NaN"};
    for (int i = 0; i < 3; i++)
        if (model[i] && !ivfpq__model_ok(model[i], (size_t)S->count[mk[i]], kind[i], &bad))
            return CORRUPT("%s: value %zu is %s", sec_info[mk[i]].name, bad, why[i]);
    const uint64_t *off = (const uint64_t *)S->p[S_LOFF], *boff = (const uint64_t *)S->p[S_BOFF];
    if (off[0] != 0 || (boff && boff[0] != 0))
        return CORRUPT("list offsets: the first list does not start at 0");
    for (size_t l = 0; l < nlist; l++) {
        if (off[l + 1] < off[l] || off[l + 1] - off[l] > IVFPQ_MAX_LIST_SIZE || off[l + 1] > h->ntotal)
            return CORRUPT("list offsets: list %zu spans [%llu, %llu) of %llu vectors", l,
                           (unsigned long long)off[l], (unsigned long long)off[l + 1],
                           (unsigned long long)h->ntotal);
        if (boff) {
            uint64_t nb = (off[l + 1] - off[l] + IVFPQ_BBS - 1) / IVFPQ_BBS;
            if (boff[l + 1] < boff[l] || boff[l + 1] - boff[l] != nb)
                return CORRUPT("block offsets: list %zu has %llu vectors but %llu blocks", l,
                               (unsigned long long)(off[l + 1] - off[l]),
                               (unsigned long long)(boff[l + 1] - boff[l]));
        }
    }
    if (off[nlist] != h->ntotal)
        return CORRUPT("list offsets: lists hold %llu vectors, the header says %llu",
                       (unsigned long long)off[nlist], (unsigned long long)h->ntotal);
    if (boff && boff[nlist] != h->nblocks)
        return CORRUPT("block offsets: %llu blocks, the header says %llu",
                       (unsigned long long)boff[nlist], (unsigned long long)h->nblocks);
    const int64_t *ids = (const int64_t *)S->p[S_LIDS];
    for (size_t i = 0; i < (size_t)h->ntotal; i++)
        if (ids[i] < 0) return CORRUPT("labels: entry %zu is %lld (labels are >= 0)", i, (long long)ids[i]);
    if (boff) {
        /* unused nibbles are zero (faiss's packing invariant): the tail of
         * each list's last block and the dummy sub-quantizer of odd M */
        const uint8_t *codes = S->p[S_CODE];
        size_t bb = 16 * M2;
        for (size_t l = 0; l < nlist; l++) {
            size_t n = (size_t)(off[l + 1] - off[l]), r = n % IVFPQ_BBS;
            const uint8_t *lc = codes + (size_t)boff[l] * bb;
            if (r) {
                unsigned char mask[16], acc = 0;
                const uint8_t *last = lc + (n / IVFPQ_BBS) * bb;
                ivfpq__pq4_tail_mask(r, mask);
                for (size_t i = 0; i < bb; i++) acc |= last[i] & mask[i % 16];
                if (acc) return CORRUPT("PQ codes: list %zu: the padding after its %zu vectors is not zero", l, n);
            }
            if (spec->M & 1) /* the extra sub-quantizer: upper half of each block's last piece */
                for (size_t b = 0; b < (size_t)(boff[l + 1] - boff[l]); b++)
                    if (!all_zero(lc + b * bb + bb - 16, 16))
                        return CORRUPT("PQ codes: list %zu, block %zu: the unused sub-quantizer of "
                                       "odd M is not zero",
                                       l, b);
        }
    }
    return IVFPQ_OK;
}

/* Turns a validated image into an index. img is the caller's buffer
 * (zero-copy) or an owned copy (image != NULL, freed on failure). */
static int attach(ivfpq_index **out, ivfpq_ld *ld, const hdr *h, const ivfpq_spec *spec,
                  const sections *S, void *image, int readonly)
{
    ivfpq_options o;
    memset(&o, 0, sizeof o);
    o.allocator = ld->mem.a;
    o.log = ld->log.fn;
    o.log_user = ld->log.user;
    o.seed = h->seed;
    o.coarse_niter = (int)h->cniter;
    o.pq_niter = (int)h->pqniter;
    o.max_points_per_centroid = (int)h->maxppc;
    o.min_points_per_centroid = (int)h->minppc;
    o.pq_train_points = (size_t)h->ptp;
    ivfpq_index *idx;
    int rc = IVFPQ_OK;
    if (ld->max_bytes && ld->used + sizeof *idx > ld->max_bytes)
        rc = ivfpq__fail(&ld->log, IVFPQ_E_LIMIT, "load: max_bytes = %zu is too small for the index",
                         ld->max_bytes);
    if (!rc) rc = ivfpq__index_create(&idx, h->d, (ivfpq_metric)h->metric, spec, &o, 0);
    if (rc) {
        ivfpq__ld_free(ld, image, (size_t)h->file_bytes);
        return rc;
    }
    idx->is_trained = (h->flags & F_TRAINED) != 0;
    idx->centroids = (float *)(uintptr_t)S->p[S_CENT];
    idx->cnorms = (float *)(uintptr_t)S->p[S_CNRM];
    idx->pq_cb = (float *)(uintptr_t)S->p[S_PQCB];
    idx->model_borrowed = 1;
    idx->readonly = readonly;
    idx->image = image;
    idx->storage = IVFPQ_STORAGE_FLAT;
    idx->flat.off = (const uint64_t *)S->p[S_LOFF];
    idx->flat.boff = (const uint64_t *)S->p[S_BOFF];
    idx->flat.ids = (const int64_t *)S->p[S_LIDS];
    idx->flat.codes = S->p[S_CODE];
    idx->flat.vecs = (const float *)S->p[S_VECS];
    idx->ntotal = (size_t)h->ntotal;
    *out = idx;
    return IVFPQ_OK;
}

/* Full validation of img[0, h->file_bytes) (header already parsed from it). */
static int validate(const ivfpq_ld *ld, unsigned char *img, const hdr *h, unsigned flags,
                    int swap, ivfpq_spec *spec, sections *S)
{
    int rc = check_header(ld, h, spec);
    if (rc) return rc;
    shape sh = {h->d, h->metric, h->flags, h->nlist, h->M, h->ntotal, h->nblocks};
    uint64_t cnt[NSEC];
    shape_counts(&sh, cnt);
    if ((rc = check_sections(ld, img, h, cnt, flags, S))) return rc;
    if (swap)
        for (int k = 0; k < NSEC; k++)
            if (S->p[k] && sec_info[k].elem > 1)
                ivfpq__bswap_array(img + (S->p[k] - img), (size_t)S->count[k], sec_info[k].elem);
    return check_contents(ld, h, spec, S);
}

/* The copying load, apart from ivfpq__native_load so that its 2 KB header
 * buffer is not on the stack of zero-copy loads (the embedded case). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static int native_load_copy(ivfpq_index **out, ivfpq_src *s, unsigned flags)
{
    ivfpq_ld *ld = s->ld;
    const ivfpq_log *log = &ld->log;
    hdr h;
    ivfpq_spec spec;
    sections S;
    int rc;
    /* copy: header from the source, then everything from the copy */
    unsigned char head[FIXED_BYTES + MAX_SECTIONS * ENTRY_BYTES + SEC_ALIGN];
    size_t have;
    if (s->buf) {
        have = s->len < sizeof head ? s->len : sizeof head;
        memcpy(head, s->buf, have);
    } else {
        if ((rc = ivfpq__src_read(s, head, FIXED_BYTES, "the index header"))) return rc;
        uint32_t H = ivfpq__le32(head + 12);
        have = FIXED_BYTES;
        if (H > FIXED_BYTES && H <= sizeof head && H % SEC_ALIGN == 0 && ivfpq__le16(head + 8) == VERSION_MAJOR) {
            if ((rc = ivfpq__src_read(s, head + FIXED_BYTES, H - FIXED_BYTES, "the section table")))
                return rc;
            have = H;
        }
    }
    if ((rc = parse_header(ld, head, have, &h))) return rc;
    if (s->buf && h.file_bytes > s->len)
        return ivfpq__fail(log, IVFPQ_E_TRUNCATED, "truncated at byte %zu: the index has %llu bytes",
                           s->len, (unsigned long long)h.file_bytes);
    if (h.file_bytes > SIZE_MAX)
        return ivfpq__fail(log, IVFPQ_E_LIMIT, "the index (%llu bytes) does not fit in memory",
                           (unsigned long long)h.file_bytes);
    size_t fb = (size_t)h.file_bytes;
    unsigned char *img = ivfpq__ld_alloc(ld, fb, "the index image", &rc);
    if (!img) return rc;
    if (s->buf) {
        memcpy(img, s->buf, fb);
    } else {
        memcpy(img, head, h.H);
        rc = ivfpq__src_read(s, img + h.H, fb - h.H, "the index sections");
    }
    if (!rc) rc = parse_header(ld, img, fb, &h);
    if (!rc) rc = validate(ld, img, &h, flags, IVFPQ_BIG_ENDIAN, &spec, &S);
    if (rc) {
        ivfpq__ld_free(ld, img, fb);
        return rc;
    }
    return attach(out, ld, &h, &spec, &S, img, 0);
}

int ivfpq__native_load(ivfpq_index **out, ivfpq_src *s, unsigned flags)
{
    ivfpq_ld *ld = s->ld;
    const ivfpq_log *log = &ld->log;
    hdr h;
    ivfpq_spec spec;
    sections S;
    int rc;
    if (s->buf && (flags & IVFPQ_LOAD_ZERO_COPY)) {
        if (IVFPQ_BIG_ENDIAN)
            return ivfpq__fail(log, IVFPQ_E_UNSUPPORTED,
                               "zero-copy load: index files are little-endian and this host is "
                               "big-endian; load without IVFPQ_LOAD_ZERO_COPY (converts a copy)");
        if ((uintptr_t)s->buf % IVFPQ_ZERO_COPY_ALIGN)
            return ivfpq__fail(log, IVFPQ_E_INVALID_ARG,
                               "zero-copy load: the buffer address is not %d-byte aligned (64 "
                               "is best); align it or load a copy",
                               IVFPQ_ZERO_COPY_ALIGN);
        if ((rc = parse_header(ld, s->buf, s->len, &h))) return rc;
        if (h.file_bytes > s->len)
            return ivfpq__fail(log, IVFPQ_E_TRUNCATED,
                               "truncated at byte %zu: the index has %llu bytes", s->len,
                               (unsigned long long)h.file_bytes);
        unsigned char *img = (unsigned char *)(uintptr_t)s->buf; /* never written: no swap */
        if ((rc = validate(ld, img, &h, flags, 0, &spec, &S))) return rc;
        return attach(out, ld, &h, &spec, &S, NULL, 1);
    }
    return native_load_copy(out, s, flags);
}

/* ============================================================ public */

int ivfpq_detect_format(const void *head, size_t len, ivfpq_file_format *fmt)
{
    if ((!head && len) || !fmt) return IVFPQ_E_INVALID_ARG;
    const unsigned char *p = head;
    if (len >= 8 && memcmp(p, IVFPQ_NATIVE_MAGIC, 8) == 0) {
        *fmt = IVFPQ_FORMAT_NATIVE;
        return IVFPQ_OK;
    }
    if (len >= 4 && ivfpq__is_faiss_fourcc(p)) {
        *fmt = IVFPQ_FORMAT_FAISS;
        return IVFPQ_OK;
    }
    return ivfpq__diagnose_format(p, len, NULL);
}

static int load_src(ivfpq_index **out, ivfpq_src *s, unsigned flags)
{
    ivfpq_file_format fmt;
    const unsigned char *p = s->buf ? s->buf : s->head;
    size_t n = s->buf ? s->len : s->head_len;
    int rc = ivfpq_detect_format(p, n, &fmt);
    if (rc) return ivfpq__diagnose_format(p, n, &s->ld->log);
    if (fmt == IVFPQ_FORMAT_NATIVE) return ivfpq__native_load(out, s, flags);
    if (flags & IVFPQ_LOAD_ZERO_COPY)
        return ivfpq__fail(&s->ld->log, IVFPQ_E_UNSUPPORTED,
                           "zero-copy load: this is a faiss index, which must be converted; load "
                           "it without IVFPQ_LOAD_ZERO_COPY, or convert it once with "
                           "ivfpq_save(..., IVFPQ_FORMAT_NATIVE, ...)");
    return ivfpq__faiss_load(out, s);
}

int ivfpq_load_from_buffer(ivfpq_index **out, const void *buf, size_t len, unsigned flags,
                           const ivfpq_load_options *opt)
{
    ivfpq_ld ld;
    ivfpq__ld_init(&ld, opt);
    if (!out) return ivfpq__fail(&ld.log, IVFPQ_E_INVALID_ARG, "load: out is NULL");
    *out = NULL;
    if (!buf && len) return ivfpq__fail(&ld.log, IVFPQ_E_INVALID_ARG, "load: buf is NULL");
    if (flags & ~(IVFPQ_LOAD_ZERO_COPY | IVFPQ_LOAD_SKIP_CHECKSUMS))
        return ivfpq__fail(&ld.log, IVFPQ_E_INVALID_ARG, "load: unknown flags %u", flags);
    static const unsigned char empty[1];
    ivfpq_src s;
    memset(&s, 0, sizeof s);
    s.buf = buf ? buf : empty;
    s.len = len;
    s.ld = &ld;
    return load_src(out, &s, flags);
}

int ivfpq_load(ivfpq_index **out, ivfpq_read_fn read, void *user, const ivfpq_load_options *opt)
{
    ivfpq_ld ld;
    ivfpq__ld_init(&ld, opt);
    if (!out) return ivfpq__fail(&ld.log, IVFPQ_E_INVALID_ARG, "load: out is NULL");
    *out = NULL;
    if (!read) return ivfpq__fail(&ld.log, IVFPQ_E_INVALID_ARG, "load: read callback is NULL");
    ivfpq_src s;
    memset(&s, 0, sizeof s);
    s.read = read;
    s.user = user;
    s.ld = &ld;
    /* 8 bytes tell the format; a stream shorter than that is no index */
    for (; s.head_len < 8; s.head_len++) {
        int rc = read(user, s.head + s.head_len, 1);
        if (rc < 0)
            return ivfpq__fail(&ld.log, IVFPQ_E_IO, "load: read callback failed (%d) at byte %zu",
                               rc, s.head_len);
        if (rc > 0) break;
    }
    ivfpq_file_format fmt;
    if (ivfpq_detect_format(s.head, s.head_len, &fmt) != IVFPQ_OK) /* no index: a few more bytes
                                                                       to say what it is */
        for (; s.head_len < 24 && read(user, s.head + s.head_len, 1) == 0; s.head_len++) {
        }
    return load_src(out, &s, 0);
}

int ivfpq_saved_size(const ivfpq_index *idx, ivfpq_file_format fmt, size_t *size)
{
    if (!idx || !size) return IVFPQ_E_INVALID_ARG;
    ivfpq_sink k = {NULL, NULL, 0, &idx->log};
    int rc;
    if (fmt == IVFPQ_FORMAT_NATIVE) rc = ivfpq__native_save(idx, &k);
    else if (fmt == IVFPQ_FORMAT_FAISS) rc = ivfpq__faiss_save(idx, &k);
    else return ivfpq__fail(&idx->log, IVFPQ_E_INVALID_ARG, "saved_size: unknown format %d", (int)fmt);
    if (rc) return rc;
    if (k.pos > SIZE_MAX) return ivfpq__fail(&idx->log, IVFPQ_E_OVERFLOW, "saved_size: too large");
    *size = (size_t)k.pos;
    return IVFPQ_OK;
}

int ivfpq_save(const ivfpq_index *idx, ivfpq_file_format fmt, ivfpq_write_fn write, void *user)
{
    if (!idx) return IVFPQ_E_INVALID_ARG;
    if (!write) return ivfpq__fail(&idx->log, IVFPQ_E_INVALID_ARG, "save: write callback is NULL");
    ivfpq_sink k = {write, user, 0, &idx->log};
    if (fmt == IVFPQ_FORMAT_NATIVE) return ivfpq__native_save(idx, &k);
    if (fmt == IVFPQ_FORMAT_FAISS) return ivfpq__faiss_save(idx, &k);
    return ivfpq__fail(&idx->log, IVFPQ_E_INVALID_ARG, "save: unknown format %d", (int)fmt);
}

/* faiss index files: real faiss-written fixtures (tests/data, made by
 * tests/data/make_faiss_fixtures.py) searched against faiss's own results
 * and rewritten byte for byte; then hostile records built field by field
 * here (an independent statement of the faiss layout), one bad field at a
 * time, in the spirit of faiss's test_read_index_deserialize.cpp. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "io.h"

static unsigned char *read_file(const char *name, const char *ext, size_t *len)
{
    char path[256];
    const char *dir = getenv("IVFPQ_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s%s", dir ? dir : "tests/data", name, ext);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s (run from the repository root or set IVFPQ_TEST_DATA)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

typedef struct membuf {
    unsigned char *p;
    size_t len, cap;
} membuf;

static int mb_write(void *user, const void *data, size_t len)
{
    membuf *m = user;
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2;
        m->p = realloc(m->p, m->cap);
    }
    memcpy(m->p + m->len, data, len);
    m->len += len;
    return 0;
}

/* ------------------------------------------------------------ fixtures */

static const char *const kFixtures[] = {
    "flat_l2", "flat_ip_idmap2", "ivf8_flat_l2", "ivf64_flat_ip_sparse", "ivf8_flat_trained_only",
    "pq6fs_l2", "pq3fs64_ip", "ivf8_pq6fs_l2", "ivf8_pq6fsr_ip", "ivf8_pq3fsr_rflat_l2",
    "pq6fs_rflat_ip", "idmap_ivf8_pq6fs_rflat_l2",
};

static void fixture(const char *name)
{
    size_t ilen, elen;
    unsigned char *file = read_file(name, ".index", &ilen), *ex = read_file(name, ".expect", &elen);
    uint32_t nq = ivfpq__le32(ex), k = ivfpq__le32(ex + 4), nprobe = ivfpq__le32(ex + 8);
    float kf = ivfpq__lef32(ex + 12);
    uint32_t exact = ivfpq__le32(ex + 16), d = ivfpq__le32(ex + 20);
    assert_int_equal(elen, 24 + (size_t)nq * d * 4 + (size_t)nq * k * 12);
    const float *q = (const float *)(void *)(ex + 24), *fD = q + nq * d;
    const int64_t *fI = (const int64_t *)(void *)(fD + nq * k);

    tu_log lg;
    memset(&lg, 0, sizeof lg);
    ivfpq_load_options o = {{0}, tu_log_fn, &lg, 0};
    ivfpq_index *idx;
    if (ivfpq_load_from_buffer(&idx, file, ilen, 0, &o) != IVFPQ_OK) fail_msg("%s: %s", name, lg.last);
    assert_int_equal(ivfpq_dim(idx), (int)d);
    float *D = malloc(nq * k * sizeof(float));
    int64_t *I = malloc(nq * k * sizeof(int64_t));
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = nprobe;
    p.k_factor = kf;
    assert_int_equal(ivfpq_search(idx, nq, q, k, &p, D, I), IVFPQ_OK);
    size_t same = 0, hits = 0;
    for (size_t i = 0; i < nq; i++)
        for (size_t j = 0; j < k; j++) {
            size_t a = i * k + j;
            if (fI[a] < 0) { /* faiss pads with -1 / FLT_MAX, we with -1 / inf */
                assert_int_equal(I[a], -1);
                continue;
            }
            same += I[a] == fI[a] || fabsf(D[a] - fD[a]) <= 1e-5f * fmaxf(1.0f, fabsf(fD[a]));
            for (size_t jj = 0; jj < k; jj++) hits += I[i * k + jj] == fI[a];
            if (exact) assert_true(fabsf(D[a] - fD[a]) <= 1e-4f * fmaxf(1.0f, fabsf(fD[a])));
        }
    size_t valid = 0;
    for (size_t a = 0; a < nq * k; a++) valid += fI[a] >= 0;
    if (exact && same != valid) fail_msg("%s: %zu of %zu results differ from faiss's", name, valid - same, valid);
    if (!exact && hits < valid * 8 / 10) fail_msg("%s: top-k overlap with faiss %zu / %zu", name, hits, valid);

    /* written back in faiss format: faiss's own bytes (we store k_factor 4,
     * IDMap as IDMap2, blocks of 32) */
    membuf m = {NULL, 0, 0};
    assert_int_equal(ivfpq_save(idx, IVFPQ_FORMAT_FAISS, mb_write, &m), IVFPQ_OK);
    int rflat = strstr(name, "rflat") != NULL, repacked = strstr(name, "64_") != NULL;
    if (!repacked && strncmp(name, "idmap_", 6) != 0) {
        assert_int_equal(m.len, ilen);
        assert_memory_equal(m.p, file, rflat ? ilen - 4 : ilen);
    }
    /* and the rewrite reads back to the same search results */
    ivfpq_index *c;
    assert_int_equal(ivfpq_load_from_buffer(&c, m.p, m.len, 0, &o), IVFPQ_OK);
    float *D2 = malloc(nq * k * sizeof(float));
    int64_t *I2 = malloc(nq * k * sizeof(int64_t));
    assert_int_equal(ivfpq_search(c, nq, q, k, &p, D2, I2), IVFPQ_OK);
    assert_memory_equal(I, I2, nq * k * sizeof(int64_t));
    assert_memory_equal(D, D2, nq * k * sizeof(float));
    ivfpq_free(c);
    free(m.p);
    free(D);
    free(I);
    free(D2);
    free(I2);
    ivfpq_free(idx);
    free(file);
    free(ex);
}

static void faiss_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof kFixtures / sizeof *kFixtures; i++) fixture(kFixtures[i]);
}

/* RVC's added_IVF*.index stores nprobe = 1: ignored, per-call nprobe wins. */
static void stored_nprobe_ignored(void **state)
{
    (void)state;
    size_t len;
    unsigned char *file = read_file("ivf8_flat_l2", ".index", &len);
    assert_int_equal(ivfpq__le64(file + 4 + 33 + 8), 1); /* the stored nprobe */
    ivfpq_index *idx;
    assert_int_equal(ivfpq_load_from_buffer(&idx, file, len, 0, NULL), IVFPQ_OK);
    float q[12] = {0}, D[200];
    int64_t I[200];
    size_t nf;
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 8;
    p.nfound = &nf;
    assert_int_equal(ivfpq_search(idx, 1, q, 200, &p, D, I), IVFPQ_OK);
    assert_int_equal(nf, 200); /* every list visited */
    ivfpq_free(idx);
    free(file);
}

/* ------------------------------------------------- hostile records */

/* A faiss file written field by field, remembering where each named field
 * is so a test can break exactly one. */
typedef struct fb {
    unsigned char p[16384];
    size_t len;
    struct { const char *name; size_t off, size; } f[96];
    int nf;
} fb;

static void put(fb *b, const char *name, const void *v, size_t n)
{
    assert_true(b->len + n <= sizeof b->p);
    if (name) {
        assert_true(b->nf < 96);
        b->f[b->nf].name = name;
        b->f[b->nf].off = b->len;
        b->f[b->nf].size = n;
        b->nf++;
    }
    memcpy(b->p + b->len, v, n);
    b->len += n;
}
static void u8(fb *b, const char *name, unsigned v) { unsigned char c = (unsigned char)v; put(b, name, &c, 1); }
static void i32(fb *b, const char *name, int32_t v) { unsigned char c[4]; ivfpq__put32(c, (uint32_t)v); put(b, name, c, 4); }
static void u64(fb *b, const char *name, uint64_t v) { unsigned char c[8]; ivfpq__put64(c, v); put(b, name, c, 8); }
static void f32(fb *b, const char *name, float v) { uint32_t u; memcpy(&u, &v, 4); unsigned char c[4]; ivfpq__put32(c, u); put(b, name, c, 4); }
static void cc(fb *b, const char *name, const char *s) { put(b, name, s, 4); }

enum { DIM = 8, NLIST = 4, NT = 10, PQM = 4 };

static void header(fb *b, const char *pre, int d, uint64_t ntotal, int metric)
{
    static char names[8][6][24];
    static int slot;
    char (*n)[24] = names[slot++ % 8];
    snprintf(n[0], 24, "%s.d", pre);
    snprintf(n[1], 24, "%s.ntotal", pre);
    snprintf(n[2], 24, "%s.trained", pre);
    snprintf(n[3], 24, "%s.metric", pre);
    i32(b, n[0], d);
    u64(b, n[1], ntotal);
    u64(b, NULL, 1 << 20);
    u64(b, NULL, 1 << 20);
    u8(b, n[2], 1);
    i32(b, n[3], metric);
}

static void floats(fb *b, const char *count_name, size_t n, float base)
{
    u64(b, count_name, n);
    for (size_t i = 0; i < n; i++) f32(b, NULL, base + (float)((i * 37) % 23) * 0.25f);
}

static void ivf_header(fb *b, const char *cc4)
{
    cc(b, "fourcc", cc4);
    header(b, "hdr", DIM, NT, 1);
    u64(b, "ivf.nlist", NLIST);
    u64(b, "ivf.nprobe", 1);
    cc(b, "q.fourcc", "IxF2");
    header(b, "q", DIM, NLIST, 1);
    floats(b, "q.count", NLIST * DIM, -1.0f);
    u8(b, "dm.type", 0);
    u64(b, "dm.count", 0);
}

static const uint64_t kSizes[NLIST] = {3, 0, 5, 2};

/* IndexIVFFlat, sizes "full" or "sprs". */
static void make_ivfflat(fb *b, int sparse)
{
    memset(b, 0, sizeof *b);
    ivf_header(b, "IwFl");
    cc(b, "il.fourcc", "ilar");
    u64(b, "il.nlist", NLIST);
    u64(b, "il.code_size", DIM * 4);
    if (sparse) {
        cc(b, "il.enc", "sprs");
        u64(b, "il.count", 6);
        u64(b, "sp.l0", 0); u64(b, "sp.n0", 3);
        u64(b, "sp.l1", 2); u64(b, "sp.n1", 5);
        u64(b, "sp.l2", 3); u64(b, "sp.n2", 2);
    } else {
        cc(b, "il.enc", "full");
        u64(b, "il.count", NLIST);
        for (int l = 0; l < NLIST; l++) u64(b, l == 2 ? "il.size2" : NULL, kSizes[l]);
    }
    int64_t id = 0;
    for (int l = 0; l < NLIST; l++) {
        for (uint64_t j = 0; j < kSizes[l] * DIM; j++) f32(b, NULL, (float)(l + j % 7));
        for (uint64_t j = 0; j < kSizes[l]; j++) { u64(b, id == 0 ? "id0" : NULL, (uint64_t)(id * 3)); id++; }
    }
}

static void pq_record(fb *b)
{
    u64(b, "pq.d", DIM);
    u64(b, "pq.M", PQM);
    u64(b, "pq.nbits", 4);
    floats(b, "pq.count", DIM * 16, 0.0f);
}

/* One 32-vector block of PQ4 codes for n vectors, padding zero. */
static void codes_block(fb *b, size_t n)
{
    unsigned char blk[32 * PQM / 2];
    memset(blk, 0, sizeof blk);
    for (size_t v = 0; v < n; v++)
        for (size_t m = 0; m < PQM; m++) ivfpq__pq4_set(blk, PQM, v, m, (unsigned)((v + m) % 16));
    put(b, NULL, blk, sizeof blk);
}

/* IxM2( IxRF( IwPf, IxF2 ) ) with labels 100 + position. */
static void make_ivfpq_rflat_idmap(fb *b)
{
    memset(b, 0, sizeof *b);
    cc(b, "idm.fourcc", "IxM2");
    header(b, "idm", DIM, NT, 1);
    cc(b, "rf.fourcc0", "IxRF");
    header(b, "rfh", DIM, NT, 1);
    ivf_header(b, "IwPf");
    u8(b, "bres", 1);
    u64(b, "code_size", PQM / 2);
    i32(b, "bbs", 32);
    u64(b, "M2", PQM);
    i32(b, "implem", 0);
    u64(b, "qbs2", 0);
    pq_record(b);
    cc(b, "il.fourcc", "ilbl");
    u64(b, "il.nlist", NLIST);
    u64(b, "il.code_size", UINT64_MAX);
    u64(b, "il.npb", 32);
    u64(b, "il.block_size", 32 * PQM / 2);
    int64_t pos = 0;
    for (int l = 0; l < NLIST; l++) {
        u64(b, l == 0 ? "ids.count0" : NULL, kSizes[l]);
        for (uint64_t j = 0; j < kSizes[l]; j++) {
            u64(b, pos == 0 ? "pos0" : pos == 1 ? "pos1" : NULL, (uint64_t)pos);
            pos++;
        }
        u64(b, l == 0 ? "codes.count0" : NULL, kSizes[l] ? 32 * PQM / 2 : 0);
        if (kSizes[l]) codes_block(b, kSizes[l]);
    }
    cc(b, "rf.fourcc", "IxF2");
    header(b, "rf", DIM, NT, 1);
    floats(b, "rf.count", NT * DIM, 2.0f);
    f32(b, "kf", 1.0f);
    u64(b, "idm.count", NT);
    for (int i = 0; i < NT; i++) u64(b, i == 0 ? "label0" : NULL, (uint64_t)(100 + i));
}

/* IndexPQFastScan. */
static void make_pqfs(fb *b)
{
    memset(b, 0, sizeof *b);
    cc(b, "fourcc", "IPfs");
    header(b, "hdr", DIM, NT, 1);
    pq_record(b);
    i32(b, "implem", 0);
    i32(b, "bbs", 32);
    i32(b, "qbs", 0);
    u64(b, "ntotal2", 32);
    u64(b, "M2", PQM);
    u64(b, "codes.count", 32 * PQM / 2);
    codes_block(b, NT);
}

typedef enum { IVFFLAT, IVFFLAT_SPARSE, IVFPQ_RFLAT_IDMAP, PQFS } base_kind;

static void make(fb *b, base_kind k)
{
    if (k == IVFFLAT || k == IVFFLAT_SPARSE) make_ivfflat(b, k == IVFFLAT_SPARSE);
    else if (k == IVFPQ_RFLAT_IDMAP) make_ivfpq_rflat_idmap(b);
    else make_pqfs(b);
}

static void patch(fb *b, const char *field, uint64_t v)
{
    for (int i = 0; i < b->nf; i++)
        if (!strcmp(b->f[i].name, field)) {
            for (size_t j = 0; j < b->f[i].size; j++) b->p[b->f[i].off + j] = (unsigned char)(v >> (8 * j));
            return;
        }
    fail_msg("no field %s", field);
}

static int try_load(const unsigned char *p, size_t n, tu_log *lg)
{
    tu_alloc ta = {0, 0, 0};
    ivfpq_load_options o = {tu_allocator(&ta), tu_log_fn, lg, (size_t)1 << 24};
    ivfpq_index *c;
    int rc = ivfpq_load_from_buffer(&c, p, n, 0, &o);
    if (!rc) ivfpq_free(c);
    assert_int_equal(ta.live, 0);
    return rc;
}

static void valid_builds_load(void **state)
{
    (void)state;
    fb b;
    for (int k = 0; k <= PQFS; k++) {
        make(&b, (base_kind)k);
        tu_log lg;
        memset(&lg, 0, sizeof lg);
        if (try_load(b.p, b.len, &lg) != IVFPQ_OK) fail_msg("base %d: %s", k, lg.last);
    }
    /* the labels of the wrapped refine index come from the IDMap */
    make(&b, IVFPQ_RFLAT_IDMAP);
    ivfpq_index *c;
    assert_int_equal(ivfpq_load_from_buffer(&c, b.p, b.len, 0, NULL), IVFPQ_OK);
    float v[DIM];
    assert_int_equal(ivfpq_reconstruct(c, 100, v), IVFPQ_OK);
    assert_true(v[0] == 2.0f); /* refine vector 0 */
    assert_int_equal(ivfpq_reconstruct(c, 0, v), IVFPQ_E_NOT_FOUND);
    ivfpq_free(c);
}

static const struct bad {
    base_kind base;
    const char *field;
    uint64_t value;
    int status;
    const char *needle;
} kBad[] = {
    {IVFFLAT, "hdr.d", 0, IVFPQ_E_CORRUPT, "dimension"},
    {IVFFLAT, "hdr.d", (uint32_t)-8, IVFPQ_E_CORRUPT, "dimension"},
    {IVFFLAT, "hdr.d", (1u << 20) + 1, IVFPQ_E_CORRUPT, "dimension"},
    {IVFFLAT, "hdr.ntotal", UINT64_MAX, IVFPQ_E_CORRUPT, "negative"},
    {IVFFLAT, "hdr.ntotal", NT + 1, IVFPQ_E_CORRUPT, "hold"},
    {IVFFLAT, "hdr.ntotal", NT - 1, IVFPQ_E_CORRUPT, NULL},
    {IVFFLAT, "hdr.trained", 2, IVFPQ_E_CORRUPT, "boolean"},
    {IVFFLAT, "hdr.trained", 0, IVFPQ_E_CORRUPT, NULL},
    {IVFFLAT, "hdr.metric", 2, IVFPQ_E_UNSUPPORTED, "metric"},
    {IVFFLAT, "hdr.metric", 0, IVFPQ_E_UNSUPPORTED, "metric"},
    {IVFFLAT, "ivf.nlist", 0, IVFPQ_E_CORRUPT, "nlist"},
    {IVFFLAT, "ivf.nlist", (uint64_t)1 << 40, IVFPQ_E_CORRUPT, "nlist"},
    {IVFFLAT, "ivf.nlist", NLIST + 1, IVFPQ_E_CORRUPT, "quantizer"},
    {IVFFLAT, "q.fourcc", 0x664e4849 /* IHNf */, IVFPQ_E_UNSUPPORTED, "HNSW"},
    {IVFFLAT, "q.ntotal", NLIST - 1, IVFPQ_E_CORRUPT, "quantizer"},
    {IVFFLAT, "q.ntotal", NLIST + 1, IVFPQ_E_CORRUPT, "quantizer"},
    {IVFFLAT, "q.d", DIM + 1, IVFPQ_E_CORRUPT, "quantizer"},
    {IVFFLAT, "q.count", NLIST * DIM - 1, IVFPQ_E_CORRUPT, "coarse centroids"},
    {IVFFLAT, "q.count", UINT64_MAX, IVFPQ_E_CORRUPT, NULL},
    {IVFFLAT, "q.trained", 7, IVFPQ_E_CORRUPT, "boolean"},
    {IVFFLAT, "dm.type", 3, IVFPQ_E_CORRUPT, "direct map"},
    {IVFFLAT, "dm.count", (uint64_t)1 << 61, IVFPQ_E_TRUNCATED, "direct map"},
    {IVFFLAT, "il.fourcc", 0x30306c69 /* il00 */, IVFPQ_E_UNSUPPORTED, "not stored"},
    {IVFFLAT, "il.fourcc", 0x646f6c69 /* ilod */, IVFPQ_E_UNSUPPORTED, "OnDisk"},
    {IVFFLAT, "il.fourcc", 0x78787878, IVFPQ_E_UNSUPPORTED, "xxxx"},
    {IVFFLAT, "il.nlist", NLIST + 1, IVFPQ_E_CORRUPT, "lists"},
    {IVFFLAT, "il.code_size", DIM * 4 + 4, IVFPQ_E_CORRUPT, "code size"},
    {IVFFLAT, "il.code_size", UINT64_MAX, IVFPQ_E_CORRUPT, "code size"},
    {IVFFLAT, "il.enc", 0x64636261, IVFPQ_E_CORRUPT, "encoding"},
    {IVFFLAT, "il.count", NLIST + 1, IVFPQ_E_CORRUPT, "list sizes"},
    {IVFFLAT, "il.size2", (uint64_t)1 << 40, IVFPQ_E_CORRUPT, "list 2"},
    {IVFFLAT, "il.size2", 4, IVFPQ_E_CORRUPT, "hold"},
    {IVFFLAT, "id0", (uint64_t)-1, IVFPQ_E_UNSUPPORTED, "negative"},
    {IVFFLAT_SPARSE, "il.count", 5, IVFPQ_E_CORRUPT, "sparse"},
    {IVFFLAT_SPARSE, "il.count", (uint64_t)1 << 62, IVFPQ_E_CORRUPT, "sparse"},
    {IVFFLAT_SPARSE, "sp.l1", 0, IVFPQ_E_CORRUPT, "sparse"},
    {IVFFLAT_SPARSE, "sp.l2", NLIST, IVFPQ_E_CORRUPT, "sparse"},
    {IVFFLAT_SPARSE, "sp.n1", 6, IVFPQ_E_CORRUPT, NULL},
    {IVFPQ_RFLAT_IDMAP, "idm.fourcc", 0x704d7849 /* IxMp */, IVFPQ_OK, NULL},
    {IVFPQ_RFLAT_IDMAP, "idm.ntotal", NT + 1, IVFPQ_E_CORRUPT, NULL},
    {IVFPQ_RFLAT_IDMAP, "idm.trained", 0, IVFPQ_E_CORRUPT, NULL},
    {IVFPQ_RFLAT_IDMAP, "rfh.d", DIM * 2, IVFPQ_E_CORRUPT, NULL},
    {IVFPQ_RFLAT_IDMAP, "fourcc", 0x6c467749 /* IwFl */, IVFPQ_E_UNSUPPORTED, "IndexIVFFlat"},
    {IVFPQ_RFLAT_IDMAP, "rf.fourcc0", 0x6c467749 /* IwFl */, IVFPQ_E_CORRUPT, NULL},
    {IVFPQ_RFLAT_IDMAP, "bres", 2, IVFPQ_E_CORRUPT, "boolean"},
    {IVFPQ_RFLAT_IDMAP, "code_size", 3, IVFPQ_E_CORRUPT, "code size"},
    {IVFPQ_RFLAT_IDMAP, "bbs", 0, IVFPQ_E_CORRUPT, "bbs"},
    {IVFPQ_RFLAT_IDMAP, "bbs", 48, IVFPQ_E_CORRUPT, "bbs"},
    {IVFPQ_RFLAT_IDMAP, "bbs", (uint32_t)-32, IVFPQ_E_CORRUPT, "bbs"},
    {IVFPQ_RFLAT_IDMAP, "bbs", 64, IVFPQ_E_CORRUPT, NULL},
    {IVFPQ_RFLAT_IDMAP, "M2", 0, IVFPQ_E_CORRUPT, "M2"},
    {IVFPQ_RFLAT_IDMAP, "M2", 6, IVFPQ_E_CORRUPT, "M2"},
    {IVFPQ_RFLAT_IDMAP, "implem", (uint32_t)-1, IVFPQ_E_CORRUPT, "implem"},
    {IVFPQ_RFLAT_IDMAP, "pq.d", DIM + 1, IVFPQ_E_CORRUPT, "PQ dimension"},
    {IVFPQ_RFLAT_IDMAP, "pq.M", 0, IVFPQ_E_CORRUPT, "M = 0"},
    {IVFPQ_RFLAT_IDMAP, "pq.M", 3, IVFPQ_E_CORRUPT, "M = 3"},
    {IVFPQ_RFLAT_IDMAP, "pq.M", UINT64_MAX, IVFPQ_E_CORRUPT, NULL},
    {IVFPQ_RFLAT_IDMAP, "pq.nbits", 8, IVFPQ_E_UNSUPPORTED, "8-bit"},
    {IVFPQ_RFLAT_IDMAP, "pq.nbits", 0, IVFPQ_E_UNSUPPORTED, NULL},
    {IVFPQ_RFLAT_IDMAP, "pq.count", DIM * 16 + 1, IVFPQ_E_CORRUPT, "PQ centroids"},
    {IVFPQ_RFLAT_IDMAP, "il.fourcc", 0x72616c69 /* ilar */, IVFPQ_E_UNSUPPORTED, "ilbl"},
    {IVFPQ_RFLAT_IDMAP, "il.npb", 64, IVFPQ_E_CORRUPT, "per block"},
    {IVFPQ_RFLAT_IDMAP, "il.block_size", 48, IVFPQ_E_CORRUPT, "per block"},
    {IVFPQ_RFLAT_IDMAP, "il.code_size", 7, IVFPQ_E_CORRUPT, "code size"},
    {IVFPQ_RFLAT_IDMAP, "ids.count0", 4, IVFPQ_E_CORRUPT, NULL},
    {IVFPQ_RFLAT_IDMAP, "ids.count0", (uint64_t)1 << 40, IVFPQ_E_CORRUPT, "list 0"},
    {IVFPQ_RFLAT_IDMAP, "codes.count0", 0, IVFPQ_E_CORRUPT, "code bytes"},
    {IVFPQ_RFLAT_IDMAP, "codes.count0", 128, IVFPQ_E_CORRUPT, "code bytes"},
    {IVFPQ_RFLAT_IDMAP, "pos0", NT, IVFPQ_E_CORRUPT, "refine vector"},
    {IVFPQ_RFLAT_IDMAP, "pos0", (uint64_t)-1, IVFPQ_E_CORRUPT, "refine vector"},
    {IVFPQ_RFLAT_IDMAP, "pos1", 0, IVFPQ_E_UNSUPPORTED, "twice"},
    {IVFPQ_RFLAT_IDMAP, "rf.fourcc", 0x71507849 /* IxPq */, IVFPQ_E_UNSUPPORTED, "IndexRefineFlat"},
    {IVFPQ_RFLAT_IDMAP, "rf.fourcc", 0x49467849 /* IxFI */, IVFPQ_E_CORRUPT, "metric"},
    {IVFPQ_RFLAT_IDMAP, "rf.ntotal", NT - 1, IVFPQ_E_CORRUPT, "refine"},
    {IVFPQ_RFLAT_IDMAP, "rf.metric", 0, IVFPQ_E_CORRUPT, NULL},
    {IVFPQ_RFLAT_IDMAP, "rf.count", NT * DIM + 1, IVFPQ_E_CORRUPT, "refine"},
    {IVFPQ_RFLAT_IDMAP, "kf", 0x7fc00000 /* NaN */, IVFPQ_E_CORRUPT, "k_factor"},
    {IVFPQ_RFLAT_IDMAP, "kf", 0x7f800000 /* inf */, IVFPQ_E_CORRUPT, "k_factor"},
    {IVFPQ_RFLAT_IDMAP, "kf", 0, IVFPQ_E_CORRUPT, "k_factor"},
    {IVFPQ_RFLAT_IDMAP, "kf", 0xbf800000 /* -1 */, IVFPQ_E_CORRUPT, "k_factor"},
    {IVFPQ_RFLAT_IDMAP, "kf", 0x7149f2ca /* 1e30 */, IVFPQ_E_CORRUPT, "k_factor"},
    {IVFPQ_RFLAT_IDMAP, "idm.count", NT - 1, IVFPQ_E_CORRUPT, "IDMap"},
    {IVFPQ_RFLAT_IDMAP, "idm.count", UINT64_MAX, IVFPQ_E_CORRUPT, "IDMap"},
    {IVFPQ_RFLAT_IDMAP, "label0", (uint64_t)-5, IVFPQ_E_UNSUPPORTED, "negative"},
    {PQFS, "hdr.ntotal", 33, IVFPQ_E_CORRUPT, "ntotal2"},
    {PQFS, "hdr.trained", 0, IVFPQ_E_CORRUPT, "untrained"},
    {PQFS, "bbs", 16, IVFPQ_E_CORRUPT, "bbs"},
    {PQFS, "qbs", (uint32_t)-1, IVFPQ_E_CORRUPT, "qbs"},
    {PQFS, "ntotal2", 64, IVFPQ_E_CORRUPT, "ntotal2"},
    {PQFS, "M2", 2, IVFPQ_E_CORRUPT, "M2"},
    {PQFS, "codes.count", 32 * PQM / 2 + 1, IVFPQ_E_CORRUPT, "PQ codes"},
    {PQFS, "fourcc", 0x46527849 /* IxRF */, IVFPQ_E_UNSUPPORTED, NULL},
    {PQFS, "fourcc", 0x71507849 /* IxPq */, IVFPQ_E_UNSUPPORTED, "IndexPQ"},
};

static void hostile_faiss_records(void **state)
{
    (void)state;
    fb b;
    for (size_t i = 0; i < sizeof kBad / sizeof *kBad; i++) {
        const struct bad *c = &kBad[i];
        make(&b, c->base);
        patch(&b, c->field, c->value);
        tu_log lg;
        memset(&lg, 0, sizeof lg);
        int rc = try_load(b.p, b.len, &lg);
        if (rc != c->status || (c->needle && !strstr(lg.last, c->needle)))
            fail_msg("case %zu (%s = %llu): expected %d \"%s\", got %d \"%s\"", i, c->field,
                     (unsigned long long)c->value, c->status, c->needle ? c->needle : "", rc, lg.last);
        /* and every truncation of the broken file fails cleanly too */
        for (size_t cut = 0; cut < b.len; cut += 1 + cut / 16) {
            memset(&lg, 0, sizeof lg);
            assert_int_not_equal(try_load(b.p, cut, &lg), IVFPQ_OK);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(faiss_fixtures),
        cmocka_unit_test(stored_nprobe_ignored),
        cmocka_unit_test(valid_builds_load),
        cmocka_unit_test(hostile_faiss_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

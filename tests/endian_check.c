/*
 * Index files on a big-endian host (`make test-be`: s390x under qemu-user).
 * Files written on a little-endian host must load, search the same and be
 * written back byte for byte; zero-copy must refuse cleanly. No cmocka
 * (none for the cross target): prints failures, exit status 1.
 *
 *   endian_check DATA_DIR    (tests/data plus the files make test-be adds)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivfpq.h"

static int failures;
#define CHECK(c, ...)                                  \
    do {                                               \
        if (!(c)) {                                    \
            failures++;                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);              \
            fputc('\n', stderr);                       \
        }                                              \
    } while (0)

static unsigned char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    if (fread(p, 1, (size_t)n, f) != (size_t)n) n = 0;
    fclose(f);
    *len = (size_t)n;
    return p;
}

static uint32_t le32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const unsigned char *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }
static float lef(const unsigned char *p) { uint32_t u = le32(p); float f; memcpy(&f, &u, 4); return f; }

typedef struct membuf { unsigned char *p; size_t len, cap; } membuf;
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

static void log_fn(void *u, int level, int status, const char *msg)
{
    (void)u;
    if (level == IVFPQ_LOG_ERROR) fprintf(stderr, "  log (%d): %s\n", status, msg);
}

/* A fixture: faiss's results (exact kinds), and our faiss writer gives its bytes back. */
static void fixture(const char *dir, const char *name)
{
    char fn[256];
    size_t ilen, elen;
    snprintf(fn, sizeof fn, "%s.index", name);
    unsigned char *file = slurp(dir, fn, &ilen);
    snprintf(fn, sizeof fn, "%s.expect", name);
    unsigned char *ex = slurp(dir, fn, &elen);
    CHECK(file && ex, "%s: missing", name);
    if (!file || !ex) return;
    uint32_t nq = le32(ex), k = le32(ex + 4), nprobe = le32(ex + 8), exact = le32(ex + 16), d = le32(ex + 20);
    float kf = lef(ex + 12);
    float *q = malloc(nq * d * 4), *D = malloc(nq * k * 4);
    int64_t *I = malloc(nq * k * 8);
    for (size_t i = 0; i < nq * d; i++) q[i] = lef(ex + 24 + 4 * i);
    const unsigned char *fD = ex + 24 + 4 * (size_t)nq * d, *fI = fD + 4 * (size_t)nq * k;
    ivfpq_load_options o = {{0}, log_fn, NULL, 0};
    ivfpq_index *idx;
    int rc = ivfpq_load_from_buffer(&idx, file, ilen, 0, &o);
    CHECK(rc == IVFPQ_OK, "%s: load %d", name, rc);
    if (rc) return;
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = nprobe;
    p.k_factor = kf;
    CHECK(ivfpq_search(idx, nq, q, k, &p, D, I) == IVFPQ_OK, "%s: search", name);
    size_t same = 0, valid = 0;
    for (size_t a = 0; a < (size_t)nq * k; a++) {
        int64_t want = (int64_t)le64(fI + 8 * a);
        if (want < 0) continue;
        valid++;
        float wd = lef(fD + 4 * a), diff = D[a] - wd;
        same += I[a] == want || (diff < 1e-4f && diff > -1e-4f);
    }
    if (exact) CHECK(same == valid, "%s: %zu of %zu results differ from faiss", name, valid - same, valid);
    membuf m = {NULL, 0, 0};
    CHECK(ivfpq_save(idx, IVFPQ_FORMAT_FAISS, mb_write, &m) == IVFPQ_OK, "%s: save", name);
    int rflat = strstr(name, "rflat") != NULL;
    if (!strstr(name, "64_") && strncmp(name, "idmap_", 6))
        CHECK(m.len == ilen && !memcmp(m.p, file, rflat ? ilen - 4 : ilen), "%s: faiss rewrite differs", name);
    free(m.p);
    ivfpq_free(idx);
    free(q);
    free(D);
    free(I);
    free(file);
    free(ex);
    printf("  %-28s ok\n", name);
}

/* A native file written on a little-endian host: same search (against the
 * little-endian host's results), same bytes when saved again. */
static void native(const char *dir, const char *name)
{
    char fn[256];
    size_t len, rlen, qlen;
    snprintf(fn, sizeof fn, "%s.native", name);
    unsigned char *file = slurp(dir, fn, &len);
    snprintf(fn, sizeof fn, "%s.results", name);
    unsigned char *res = slurp(dir, fn, &rlen);
    unsigned char *qb = slurp(dir, "be_queries.f32", &qlen);
    CHECK(file && res && qb, "%s: missing (run make test-be)", name);
    if (!file || !res || !qb) return;
    ivfpq_load_options o = {{0}, log_fn, NULL, 0};
    ivfpq_index *idx;
    CHECK(ivfpq_load_from_buffer(&idx, file, len, IVFPQ_LOAD_ZERO_COPY, NULL) == IVFPQ_E_UNSUPPORTED,
          "%s: zero-copy on big-endian must be refused", name);
    int rc = ivfpq_load_from_buffer(&idx, file, len, 0, &o);
    CHECK(rc == IVFPQ_OK, "%s: load %d", name, rc);
    if (rc) return;
    size_t d = (size_t)ivfpq_dim(idx), nq = qlen / 4 / d, k = 10;
    float *q = malloc(qlen), *D = malloc(nq * k * 4);
    int64_t *I = malloc(nq * k * 8);
    for (size_t i = 0; i < nq * d; i++) q[i] = lef(qb + 4 * i);
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 4;
    p.k_factor = 4.0f;
    CHECK(ivfpq_search(idx, nq, q, k, &p, D, I) == IVFPQ_OK, "%s: search", name);
    CHECK(rlen == nq * k * 12, "%s: results size", name);
    size_t bad = 0;
    for (size_t a = 0; a < nq * k && rlen == nq * k * 12; a++) {
        uint32_t u;
        memcpy(&u, &D[a], 4);
        bad += le32(res + 4 * a) != u || (int64_t)le64(res + 4 * nq * k + 8 * a) != I[a];
    }
    CHECK(bad == 0, "%s: %zu results differ from the little-endian host's (bit for bit)", name, bad);
    membuf m = {NULL, 0, 0};
    CHECK(ivfpq_save(idx, IVFPQ_FORMAT_NATIVE, mb_write, &m) == IVFPQ_OK, "%s: save", name);
    CHECK(m.len == len && !memcmp(m.p, file, len), "%s: native rewrite differs", name);
    /* through faiss format and back */
    m.len = 0;
    CHECK(ivfpq_save(idx, IVFPQ_FORMAT_FAISS, mb_write, &m) == IVFPQ_OK, "%s: save faiss", name);
    ivfpq_index *c;
    CHECK(ivfpq_load_from_buffer(&c, m.p, m.len, 0, &o) == IVFPQ_OK, "%s: load faiss", name);
    membuf m2 = {NULL, 0, 0};
    CHECK(ivfpq_save(c, IVFPQ_FORMAT_NATIVE, mb_write, &m2) == IVFPQ_OK, "%s: save", name);
    CHECK(m2.len == len && !memcmp(m2.p, file, len), "%s: native -> faiss -> native differs", name);
    ivfpq_free(c);
    free(m.p);
    free(m2.p);
    ivfpq_free(idx);
    free(q);
    free(D);
    free(I);
    free(file);
    free(res);
    free(qb);
    printf("  %-28s ok\n", name);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/data";
    const unsigned int one = 1;
    printf("endian_check: %s-endian host\n", *(const unsigned char *)&one ? "little" : "big");
    static const char *const fx[] = {
        "flat_l2", "flat_ip_idmap2", "ivf8_flat_l2", "ivf64_flat_ip_sparse", "ivf8_flat_trained_only",
        "pq6fs_l2", "pq3fs64_ip", "ivf8_pq6fs_l2", "ivf8_pq6fsr_ip", "ivf8_pq3fsr_rflat_l2",
        "pq6fs_rflat_ip", "idmap_ivf8_pq6fs_rflat_l2",
    };
    for (size_t i = 0; i < sizeof fx / sizeof *fx; i++) fixture(dir, fx[i]);
    if (argc > 2)
        for (int i = 2; i < argc; i++) native(dir, argv[i]);
    printf(failures ? "endian_check: %d failures\n" : "endian_check: all passed\n", failures);
    return failures != 0;
}

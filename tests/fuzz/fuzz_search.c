/*
 * Fuzz target: search parameters and query values against fixed small
 * indexes of every kind and metric (built once), owned and zero-copy.
 * The status must be exactly the one the documented checks predict
 * (k, nprobe, k_factor, the candidate limit, non-finite or too large query
 * values), and a successful search must return well-formed results: found
 * labels valid and distinct, padding (-1, +-inf) after them, distances in
 * order; the same as ivfpq_search_ws with the exact workspace, as the
 * zero-copy view of the same index, and, whenever the search is exact
 * (every list probed and, with RFlat, every vector re-ranked), as Flat.
 *
 * Input: kind, nq, k (2 bytes), nprobe (2 bytes), k_factor (4 bytes, raw
 * float bits), then raw float32 query values (missing ones are taken from
 * the base vectors).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ivfpq.h"
#include "synth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define D 8
#define NB 200
#define MAXQ 4
#define MAXK 2048
#define NSPEC 8

static const char *const specs[NSPEC] = {"Flat",          "IVF6,Flat",     "PQ4x4fs",
                                         "PQ4x4fs,RFlat", "IVF6,PQ4x4fs",  "IVF6,PQ4x4fs,RFlat",
                                         "IVF6,PQ2x4fsr", "IVF6,PQ4x4fsr,RFlat"};

typedef struct built {
    ivfpq_index *owned, *view;
    void *image;
} built;

static float g_x[NB * D];
static built g_idx[NSPEC * 2], g_flat[2];

typedef struct bytes { unsigned char *p; size_t len, cap; } bytes;
static int put(void *user, const void *p, size_t len)
{
    bytes *b = user;
    if (b->len + len > b->cap) {
        b->cap = 2 * (b->len + len);
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->len, p, len);
    b->len += len;
    return 0;
}

static void make(const char *spec, ivfpq_metric metric, built *b)
{
    if (ivfpq_index_factory(&b->owned, D, spec, metric, NULL) || ivfpq_train(b->owned, NB, g_x) ||
        ivfpq_add(b->owned, NB, g_x, NULL))
        abort();
    bytes f = {NULL, 0, 0};
    if (ivfpq_save(b->owned, IVFPQ_FORMAT_NATIVE, put, &f)) abort();
    b->image = aligned_alloc(64, (f.len + 63) / 64 * 64);
    memcpy(b->image, f.p, f.len);
    if (ivfpq_load_from_buffer(&b->view, b->image, f.len, IVFPQ_LOAD_ZERO_COPY, NULL)) abort();
    free(f.p);
}

static void init(void)
{
    static int done;
    if (done) return;
    done = 1;
    if (synth_generate(NB, D, 7, 3, g_x)) abort();
    for (int m = 0; m < 2; m++) {
        ivfpq_metric metric = m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2;
        make("Flat", metric, &g_flat[m]);
        for (int s = 0; s < NSPEC; s++) make(specs[s], metric, &g_idx[2 * s + m]);
    }
}

static float Dd[4][MAXQ * MAXK];
static int64_t I[4][MAXQ * MAXK];
static size_t F[4][MAXQ];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 10) return 0;
    init();
    int kind = data[0] % (NSPEC * 2), m = kind & 1, refine = strstr(specs[kind / 2], "RFlat") != NULL;
    int ivf = specs[kind / 2][0] == 'I';
    size_t nq = 1 + data[1] % MAXQ;
    size_t k = ((size_t)data[2] | (size_t)data[3] << 8) % (MAXK + 1);
    size_t nprobe = (size_t)data[4] | (size_t)data[5] << 8;
    float kf;
    memcpy(&kf, data + 6, 4);
    data += 10;
    size -= 10;
    float q[MAXQ * D];
    memcpy(q, g_x + 17 * D, sizeof q);
    memcpy(q, data, size < sizeof q ? size : sizeof q);

    /* the status the documentation predicts, in the order of the checks */
    int want = IVFPQ_OK;
    if (k == 0 || nprobe == 0 || (refine && !(kf >= 1.0f && kf <= 65536.0f))) want = IVFPQ_E_INVALID_ARG;
    else if (refine && (double)k * (double)kf > (double)(1 << 26)) want = IVFPQ_E_LIMIT;
    else
        for (size_t i = 0; i < nq * D; i++)
            if (!(fabsf(q[i]) <= 4503599627370496.0f)) want = IVFPQ_E_NONFINITE;

    const built *b = &g_idx[kind];
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = nprobe;
    p.k_factor = kf;
    p.nfound = F[0];
    int rc = ivfpq_search(b->owned, nq, q, k, &p, Dd[0], I[0]);
    if (rc != want) abort();
    p.nfound = F[1];
    if (ivfpq_search(b->view, nq, q, k, &p, Dd[1], I[1]) != rc) abort();
    size_t ws;
    int wrc = ivfpq_search_workspace_size(b->owned, nq, k, &p, &ws);
    if (rc == IVFPQ_OK || rc == IVFPQ_E_NONFINITE) {
        if (wrc != IVFPQ_OK) abort();
        void *w = malloc(ws ? ws : 1);
        p.nfound = F[2];
        if (ivfpq_search_ws(b->owned, nq, q, k, &p, Dd[2], I[2], w, ws) != rc) abort();
        free(w);
    } else if (wrc != rc) {
        abort();
    }
    if (rc != IVFPQ_OK) return 0;

    size_t nk = nq * k;
    for (int v = 1; v <= 2; v++)
        if (memcmp(I[0], I[v], nk * sizeof(int64_t)) || memcmp(Dd[0], Dd[v], nk * sizeof(float)) ||
            memcmp(F[0], F[v], nq * sizeof(size_t)))
            abort();
    float pad = m ? -INFINITY : INFINITY;
    for (size_t i = 0; i < nq; i++) {
        size_t nf = F[0][i];
        if (nf > k || nf > NB) abort();
        if (!ivf && nf != (k < NB ? k : NB)) abort(); /* one list: every vector is a candidate */
        const int64_t *li = I[0] + i * k;
        const float *di = Dd[0] + i * k;
        for (size_t j = 0; j < k; j++) {
            if (j < nf) {
                if (li[j] < 0 || li[j] >= NB || !isfinite(di[j])) abort();
                if (j > 0 && (m ? di[j] > di[j - 1] : di[j] < di[j - 1])) abort();
                for (size_t t = 0; t < j; t++)
                    if (li[t] == li[j]) abort();
            } else if (li[j] != -1 || di[j] != pad) {
                abort();
            }
        }
    }
    /* exact searches agree with Flat */
    int pq = strstr(specs[kind / 2], "PQ") != NULL;
    int exact = (!ivf || nprobe >= 6) && (!pq || (refine && (double)k * (double)kf >= NB));
    if (exact) {
        p.nfound = F[3];
        if (ivfpq_search(g_flat[m].owned, nq, q, k, &p, Dd[3], I[3]) != IVFPQ_OK) abort();
        if (memcmp(I[0], I[3], nk * sizeof(int64_t)) || memcmp(Dd[0], Dd[3], nk * sizeof(float))) abort();
    }
    return 0;
}

/*
 * 4-bit product quantizer: M sub-quantizers of 16 centroids over dsub = d/M
 * coordinates; training, encoding, decoding, and the packed block layout.
 *
 * Codebooks are stored [M][dsub][16] (centroid index fastest) because that
 * is what the LUT kernels read: one SIMD register holds coordinate t of all
 * 16 centroids. Encoding is "the LUT of the vector itself, then argmin per
 * row", so training, encoding and search share one canonical distance.
 */
#include "internal.h"
#include "kernels.h"

static inline size_t slot_byte(size_t v, size_t m, size_t M2)
{
    size_t w = v & 15;
    size_t b = w < 8 ? 2 * w : 2 * (w - 8) + 1;
    return (v >> 5) * 16 * M2 + (m >> 1) * 32 + (m & 1) * 16 + b;
}

void ivfpq__pq4_set(uint8_t *blocks, size_t M2, size_t v, size_t m, unsigned c)
{
    uint8_t *p = blocks + slot_byte(v, m, M2);
    if (v & 16) *p = (uint8_t)((*p & 0x0f) | (c << 4));
    else *p = (uint8_t)((*p & 0xf0) | (c & 15));
}

unsigned ivfpq__pq4_get(const uint8_t *blocks, size_t M2, size_t v, size_t m)
{
    uint8_t b = blocks[slot_byte(v, m, M2)];
    return (v & 16) ? (unsigned)(b >> 4) : (unsigned)(b & 15);
}

static void argmin_rows(const float *lut, size_t M, uint8_t *codes)
{
    for (size_t m = 0; m < M; m++) {
        const float *r = lut + m * 16;
        unsigned best = 0;
        for (unsigned j = 1; j < 16; j++)
            if (r[j] < r[best]) best = j;
        codes[m] = (uint8_t)best;
    }
}

void ivfpq__pq_encode(const ivfpq_index *idx, size_t n, const float *x, uint8_t *codes,
                      float *lut)
{
    const ivfpq_kernels *K = ivfpq__kernels();
    size_t d = (size_t)idx->d;
    for (size_t i = 0; i < n; i++) {
        K->lut_l2(x + i * d, idx->pq_cb, idx->M, idx->dsub, lut);
        argmin_rows(lut, idx->M, codes + i * idx->M);
    }
}

void ivfpq__pq_decode(const ivfpq_index *idx, const uint8_t *code, float *out)
{
    size_t dsub = idx->dsub;
    for (size_t m = 0; m < idx->M; m++)
        for (size_t t = 0; t < dsub; t++)
            out[m * dsub + t] = idx->pq_cb[(m * dsub + t) * 16 + code[m]];
}

/* Trains on all n rows of x (the caller subsamples and, for x4fsr, passes
 * residuals). Lloyd iterations run for the M sub-quantizers in lockstep:
 * one encode pass per iteration assigns every sub-vector at once. */
int ivfpq__pq_train(const ivfpq_index *idx, size_t n, const float *x, float *cb)
{
    const ivfpq_mem *mem = &idx->mem;
    const ivfpq_log *log = &idx->log;
    const ivfpq_kernels *K = ivfpq__kernels();
    size_t M = idx->M, dsub = idx->dsub, d = (size_t)idx->d;
    if (n < IVFPQ_KSUB)
        return ivfpq__fail(log, IVFPQ_E_TOO_FEW_POINTS,
                           "train pq: %zu training points for 16 centroids per sub-quantizer", n);
    if (n > UINT32_MAX)
        return ivfpq__fail(log, IVFPQ_E_LIMIT, "train pq: at most 2^32-1 training points");
    if (idx->min_ppc > 0 && n < (size_t)IVFPQ_KSUB * (size_t)idx->min_ppc)
        ivfpq__warn(log,
                    "train pq: %zu training points for 16 centroids (%zu per centroid); at "
                    "least %d per centroid are recommended",
                    n, n / IVFPQ_KSUB, idx->min_ppc);

    size_t nc = M * IVFPQ_KSUB;
    float *lut = ivfpq__alloc(mem, nc * sizeof(float));
    uint8_t *code = ivfpq__alloc(mem, M);
    size_t *counts = ivfpq__alloc(mem, nc * sizeof(size_t));
    double *sums = ivfpq__alloc(mem, nc * dsub * sizeof(double));
    float *rows = ivfpq__alloc(mem, nc * dsub * sizeof(float)); /* [M][16][dsub] */
    uint32_t *tmp = ivfpq__alloc(mem, n * sizeof(uint32_t));
    uint32_t init[IVFPQ_KSUB];
    int rc = IVFPQ_OK;
    if (!lut || !code || !counts || !sums || !rows || !tmp) {
        rc = ivfpq__fail(log, IVFPQ_E_NOMEM, "train pq: out of memory");
        goto done;
    }
    ivfpq_rng rng;
    ivfpq__rng_seed(&rng, idx->seed ^ 0x5051u); /* "PQ": independent of the coarse draw */
    ivfpq__rng_sample(&rng, (uint32_t)n, IVFPQ_KSUB, init, tmp);
    for (size_t m = 0; m < M; m++)
        for (size_t j = 0; j < IVFPQ_KSUB; j++)
            for (size_t t = 0; t < dsub; t++)
                cb[(m * dsub + t) * 16 + j] = x[(size_t)init[j] * d + m * dsub + t];

    for (int it = 0; it < idx->pq_niter; it++) {
        memset(counts, 0, nc * sizeof(size_t));
        memset(sums, 0, nc * dsub * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            const float *xi = x + i * d;
            K->lut_l2(xi, cb, M, dsub, lut);
            argmin_rows(lut, M, code);
            for (size_t m = 0; m < M; m++) {
                size_t c = m * 16 + code[m];
                counts[c]++;
                double *s = sums + c * dsub;
                for (size_t t = 0; t < dsub; t++) s[t] += xi[m * dsub + t];
            }
        }
        for (size_t m = 0; m < M; m++) {
            float *r = rows + m * 16 * dsub;
            for (size_t j = 0; j < 16; j++) {
                size_t c = m * 16 + j;
                for (size_t t = 0; t < dsub; t++)
                    r[j * dsub + t] = counts[c]
                                          ? (float)(sums[c * dsub + t] / (double)counts[c])
                                          : cb[(m * dsub + t) * 16 + j];
            }
        }
        /* empty sub-centroids: split a populous one, as in the coarse k-means */
        for (size_t m = 0; m < M; m++) {
            size_t *cnt = counts + m * 16;
            float *r = rows + m * 16 * dsub;
            for (size_t ci = 0; ci < 16; ci++) {
                if (cnt[ci]) continue;
                uint64_t excess = 0;
                for (size_t c = 0; c < 16; c++) excess += cnt[c] > 1 ? cnt[c] - 1 : 0;
                if (!excess) break;
                uint64_t pick = ivfpq__rng_below(&rng, excess);
                size_t cj = 0;
                for (;; cj++) {
                    uint64_t e = cnt[cj] > 1 ? cnt[cj] - 1 : 0;
                    if (pick < e) break;
                    pick -= e;
                }
                for (size_t t = 0; t < dsub; t++) {
                    float v = r[cj * dsub + t], up = 1.0f + 1.0f / 1024, dn = 1.0f - 1.0f / 1024;
                    r[ci * dsub + t] = v * (t % 2 ? dn : up);
                    r[cj * dsub + t] = v * (t % 2 ? up : dn);
                }
                cnt[ci] = cnt[cj] / 2;
                cnt[cj] -= cnt[ci];
            }
        }
        for (size_t m = 0; m < M; m++)
            for (size_t j = 0; j < 16; j++)
                for (size_t t = 0; t < dsub; t++)
                    cb[(m * dsub + t) * 16 + j] = rows[(m * 16 + j) * dsub + t];
        if (idx->progress &&
            idx->progress(idx->progress_user, "train pq", (size_t)it + 1, (size_t)idx->pq_niter)) {
            rc = ivfpq__fail(log, IVFPQ_E_CANCELED, "train pq: canceled at iteration %d", it + 1);
            break;
        }
    }
done:
    ivfpq__free(mem, lut);
    ivfpq__free(mem, code);
    ivfpq__free(mem, counts);
    ivfpq__free(mem, sums);
    ivfpq__free(mem, rows);
    ivfpq__free(mem, tmp);
    return rc;
}

/*
 * Fuzz target: build a small index from fuzzed vectors and compare its
 * search with brute force (a Flat index). When every list is probed and
 * k * k_factor covers the whole index, IVF,Flat and any RFlat kind must give
 * exactly the Flat results (same labels, same distance bits): the exact
 * re-rank sees every vector, and ties rank by label everywhere.
 *
 * Input: 5 parameter bytes, then vector bytes (value = (int8)byte / 8, so
 * duplicates, zeros and ties are common).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivfpq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXN 300

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6) return 0;
    int kind = data[0] % 5;
    ivfpq_metric metric = (data[1] & 1) ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2;
    size_t d = 1 + (size_t)(data[1] >> 1) % 12;
    size_t nlist = 1 + data[2] % 8;
    size_t M = 1;
    for (size_t m = 1 + data[3] % d; m >= 1; m--)
        if (d % m == 0) { M = m; break; }
    size_t k = 1 + data[4] % 12;
    data += 5;
    size -= 5;
    size_t n = size / d;
    if (n > MAXN) n = MAXN;
    if (n == 0) return 0;
    float *x = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < n * d; i++) x[i] = (float)(int8_t)data[i] / 8.0f;

    char spec[64];
    switch (kind) {
    case 0: snprintf(spec, sizeof spec, "IVF%zu,Flat", nlist); break;
    case 1: snprintf(spec, sizeof spec, "IVF%zu,PQ%zux4fs,RFlat", nlist, M); break;
    case 2: snprintf(spec, sizeof spec, "IVF%zu,PQ%zux4fsr,RFlat", nlist, M); break;
    case 3: snprintf(spec, sizeof spec, "PQ%zux4fs,RFlat", M); break;
    default: snprintf(spec, sizeof spec, "Flat"); break;
    }
    ivfpq_index *flat, *idx;
    if (ivfpq_index_factory(&flat, (int)d, "Flat", metric, NULL) ||
        ivfpq_index_factory(&idx, (int)d, spec, metric, NULL))
        abort();
    if (ivfpq_add(flat, n, x, NULL)) abort();
    int rc = ivfpq_train(idx, n, x);
    int need = kind == 0 ? n >= nlist : kind == 3 ? n >= 16 : (n >= nlist && n >= 16);
    if (kind == 4) need = 1;
    if (!need) {
        if (rc != IVFPQ_E_TOO_FEW_POINTS) abort();
        goto done;
    }
    if (rc != IVFPQ_OK || ivfpq_add(idx, n, x, NULL) != IVFPQ_OK) abort();

    size_t nq = n < 7 ? n : 7;
    const float *q = x + (n - nq) * d; /* queries that are in the base: exact matches */
    float D1[7 * 12], D2[7 * 12];
    int64_t I1[7 * 12], I2[7 * 12];
    size_t f1[7], f2[7];
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = nlist;
    p.k_factor = (float)(n / k + 1);
    p.nfound = f1;
    if (ivfpq_search(flat, nq, q, k, &p, D1, I1)) abort();
    p.nfound = f2;
    if (ivfpq_search(idx, nq, q, k, &p, D2, I2)) abort();
    if (memcmp(I1, I2, nq * k * sizeof(int64_t)) || memcmp(D1, D2, nq * k * sizeof(float)) ||
        memcmp(f1, f2, nq * sizeof(size_t)))
        abort();
    for (size_t i = 0; i < nq; i++)
        if (f1[i] != (n < k ? n : k)) abort();
done:
    ivfpq_free(flat);
    ivfpq_free(idx);
    free(x);
    return 0;
}

/*
 * Bounded top-k of (key, ref) pairs, smaller is better, ties broken by the
 * smaller ref. The heap keeps the worst on top. Because the order is total,
 * the kept set does not depend on the order candidates arrive in: any
 * grouping of queries and lists gives the same results.
 */
#ifndef IVFPQ_TOPK_H
#define IVFPQ_TOPK_H

#include <stddef.h>
#include <stdint.h>

static inline int ivfpq__topk_worse(float ka, uint64_t ra, float kb, uint64_t rb)
{
    return ka > kb || (ka == kb && ra > rb);
}

static inline void ivfpq__topk_down(float *k, uint64_t *r, size_t n, size_t i)
{
    float kv = k[i];
    uint64_t rv = r[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ivfpq__topk_worse(k[c + 1], r[c + 1], k[c], r[c])) c++;
        if (!ivfpq__topk_worse(k[c], r[c], kv, rv)) break;
        k[i] = k[c];
        r[i] = r[c];
        i = c;
    }
    k[i] = kv;
    r[i] = rv;
}

/* Offers (key, ref) to a heap of n (<= cap) entries; returns 1 if kept. */
static inline int ivfpq__topk_push(float *k, uint64_t *r, size_t *n, size_t cap, float key,
                                   uint64_t ref)
{
    size_t i = *n;
    if (i < cap) {
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!ivfpq__topk_worse(key, ref, k[p], r[p])) break;
            k[i] = k[p];
            r[i] = r[p];
            i = p;
        }
        k[i] = key;
        r[i] = ref;
        (*n)++;
        return 1;
    }
    if (cap == 0 || !ivfpq__topk_worse(k[0], r[0], key, ref)) return 0;
    k[0] = key;
    r[0] = ref;
    ivfpq__topk_down(k, r, cap, 0);
    return 1;
}

/* Sorts the heap in place, best first. */
static inline void ivfpq__topk_sort(float *k, uint64_t *r, size_t n)
{
    for (size_t end = n; end > 1; end--) {
        float tk = k[0];
        uint64_t tr = r[0];
        k[0] = k[end - 1];
        r[0] = r[end - 1];
        k[end - 1] = tk;
        r[end - 1] = tr;
        ivfpq__topk_down(k, r, end - 1, 0);
    }
}

#endif /* IVFPQ_TOPK_H */

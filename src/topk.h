/*
 * Bounded top-k, smaller key is better. Entries are (key, tie, ref): tie is
 * the label (so equal distances rank by smaller label, as documented), ref
 * where the candidate lives (list << 32 | offset), which also separates
 * repeated labels. The order is total, so the kept set does not depend on
 * the order candidates arrive in: any grouping of queries and lists gives
 * the same results. The heap keeps the worst entry on top. `r` may alias
 * `t` when no separate ref is needed.
 */
#ifndef IVFPQ_TOPK_H
#define IVFPQ_TOPK_H

#include <stddef.h>
#include <stdint.h>

static inline int ivfpq__topk_worse(float ka, uint64_t ta, uint64_t ra, float kb, uint64_t tb,
                                    uint64_t rb)
{
    if (ka != kb) return ka > kb;
    if (ta != tb) return ta > tb;
    return ra > rb;
}

static inline void ivfpq__topk_down(float *k, uint64_t *t, uint64_t *r, size_t n, size_t i)
{
    float kv = k[i];
    uint64_t tv = t[i], rv = r[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ivfpq__topk_worse(k[c + 1], t[c + 1], r[c + 1], k[c], t[c], r[c])) c++;
        if (!ivfpq__topk_worse(k[c], t[c], r[c], kv, tv, rv)) break;
        k[i] = k[c];
        t[i] = t[c];
        r[i] = r[c];
        i = c;
    }
    k[i] = kv;
    t[i] = tv;
    r[i] = rv;
}

/* Offers (key, tie, ref) to a heap of n (<= cap) entries; returns 1 if kept. */
static inline int ivfpq__topk_push(float *k, uint64_t *t, uint64_t *r, size_t *n, size_t cap,
                                   float key, uint64_t tie, uint64_t ref)
{
    size_t i = *n;
    if (i < cap) {
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!ivfpq__topk_worse(key, tie, ref, k[p], t[p], r[p])) break;
            k[i] = k[p];
            t[i] = t[p];
            r[i] = r[p];
            i = p;
        }
        k[i] = key;
        t[i] = tie;
        r[i] = ref;
        (*n)++;
        return 1;
    }
    if (cap == 0 || !ivfpq__topk_worse(k[0], t[0], r[0], key, tie, ref)) return 0;
    k[0] = key;
    t[0] = tie;
    r[0] = ref;
    ivfpq__topk_down(k, t, r, cap, 0);
    return 1;
}

/* Sorts the heap in place, best first. */
static inline void ivfpq__topk_sort(float *k, uint64_t *t, uint64_t *r, size_t n)
{
    for (size_t end = n; end > 1; end--) {
        float tk = k[0];
        uint64_t tt = t[0], tr = r[0];
        k[0] = k[end - 1];
        t[0] = t[end - 1];
        r[0] = r[end - 1];
        k[end - 1] = tk;
        t[end - 1] = tt;
        r[end - 1] = tr;
        ivfpq__topk_down(k, t, r, end - 1, 0);
    }
}

#endif /* IVFPQ_TOPK_H */

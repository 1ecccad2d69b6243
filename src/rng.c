/*
 * Seeded pseudo-random numbers for k-means (subsampling, initialisation,
 * splitting empty clusters): xoshiro256** seeded by splitmix64. Our own, so
 * the same seed gives the same index on every platform and libc.
 */
#include "internal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ivfpq__rng_seed(ivfpq_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ivfpq__rng_next(ivfpq_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t ivfpq__rng_below(ivfpq_rng *r, uint64_t n)
{
    /* rejection keeps it unbiased; expected < 2 draws */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do v = ivfpq__rng_next(r);
    while (v >= limit);
    return v % n;
}

float ivfpq__rng_float(ivfpq_rng *r) { return (float)(ivfpq__rng_next(r) >> 40) * (1.0f / 16777216.0f); }

void ivfpq__rng_sample(ivfpq_rng *r, uint32_t n, uint32_t m, uint32_t *perm, uint32_t *tmp)
{
    for (uint32_t i = 0; i < n; i++) tmp[i] = i;
    for (uint32_t i = 0; i < m; i++) { /* partial Fisher-Yates */
        uint32_t j = i + (uint32_t)ivfpq__rng_below(r, n - i);
        uint32_t t = tmp[i];
        tmp[i] = tmp[j];
        tmp[j] = t;
        perm[i] = tmp[i];
    }
}

#define _POSIX_C_SOURCE 200809L
#include "synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t sm64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void synth_seed(synth_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = sm64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t synth_next(synth_rng *r)
{
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double synth_uniform(synth_rng *r) { return (double)(synth_next(r) >> 11) * (1.0 / 9007199254740992.0); }

double synth_normal(synth_rng *r)
{
    double u = synth_uniform(r), v = synth_uniform(r);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

double synth_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A fixed random rotation: three Householder reflections. */
typedef struct rot { size_t d; double *v[3]; } rot;

static void rotate(const rot *R, double *x)
{
    for (int h = 0; h < 3; h++) {
        double dot = 0;
        for (size_t j = 0; j < R->d; j++) dot += R->v[h][j] * x[j];
        for (size_t j = 0; j < R->d; j++) x[j] -= 2.0 * dot * R->v[h][j];
    }
}

int synth_generate(size_t n, size_t d, size_t nclusters, uint64_t seed, float *out)
{
    synth_rng rng;
    synth_seed(&rng, seed);
    if (nclusters == 0) nclusters = 1;
    const size_t maxr = 48;
    double *centres = malloc(nclusters * d * sizeof(double));
    double *w = malloc(nclusters * sizeof(double));
    size_t *count = calloc(nclusters, sizeof(size_t));
    size_t *perm = malloc(n * sizeof(size_t));
    double *U = malloc(maxr * d * sizeof(double));
    double *x = malloc(d * sizeof(double));
    double *rv = malloc(3 * d * sizeof(double));
    int rc = -1;
    if (!centres || !w || !count || !perm || !U || !x || !rv) goto done;

    rot R = {d, {rv, rv + d, rv + 2 * d}};
    for (int h = 0; h < 3; h++) {
        double nn = 0;
        for (size_t j = 0; j < d; j++) { R.v[h][j] = synth_normal(&rng); nn += R.v[h][j] * R.v[h][j]; }
        nn = 1.0 / sqrt(nn);
        for (size_t j = 0; j < d; j++) R.v[h][j] *= nn;
    }
    double gs2 = 0;
    for (size_t j = 0; j < d; j++) gs2 += 1.0 / (1.0 + (double)j / 8.0);
    double cscale = 4.0 / sqrt(gs2); /* typical centre norm ~4 */
    double wsum = 0;
    for (size_t c = 0; c < nclusters; c++) {
        double *ce = centres + c * d;
        for (size_t j = 0; j < d; j++) ce[j] = synth_normal(&rng) * cscale / sqrt(1.0 + (double)j / 8.0);
        rotate(&R, ce);
        w[c] = exp(synth_normal(&rng)); /* log-normal weights */
        wsum += w[c];
    }
    /* sizes: one point each, the rest drawn by weight */
    for (size_t c = 0; c < nclusters && c < n; c++) count[c] = 1;
    for (size_t c = 1; c < nclusters; c++) w[c] += w[c - 1];
    for (size_t i = nclusters; i < n; i++) {
        double u = synth_uniform(&rng) * wsum;
        size_t lo = 0, hi = nclusters - 1;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (w[mid] > u) hi = mid;
            else lo = mid + 1;
        }
        count[lo]++;
    }
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(synth_next(&rng) % i), t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    size_t pos = 0;
    for (size_t c = 0; c < nclusters; c++) {
        size_t r = 8 + (size_t)(synth_next(&rng) % 41);
        if (r > d) r = d;
        double s0 = 0.8 + 0.8 * synth_uniform(&rng), tail = 0.05 + 0.25 * synth_uniform(&rng);
        double noise = 0.03 + 0.05 * synth_uniform(&rng);
        for (size_t k = 0; k < r; k++) { /* random unit directions, ~orthogonal in high d */
            double *u = U + k * d, nn = 0;
            for (size_t j = 0; j < d; j++) { u[j] = synth_normal(&rng); nn += u[j] * u[j]; }
            double sk = s0 * pow(tail, r > 1 ? (double)k / (double)(r - 1) : 0.0) / sqrt(nn);
            for (size_t j = 0; j < d; j++) u[j] *= sk;
        }
        for (size_t i = 0; i < count[c]; i++) {
            memcpy(x, centres + c * d, d * sizeof(double));
            for (size_t k = 0; k < r; k++) {
                double z = synth_normal(&rng);
                const double *u = U + k * d;
                for (size_t j = 0; j < d; j++) x[j] += z * u[j];
            }
            float *o = out + perm[pos++] * d;
            for (size_t j = 0; j < d; j++) o[j] = (float)(x[j] + noise * synth_normal(&rng));
        }
    }
    rc = 0;
done:
    free(centres);
    free(w);
    free(count);
    free(perm);
    free(U);
    free(x);
    free(rv);
    return rc;
}

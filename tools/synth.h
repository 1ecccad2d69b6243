/*
 * Seeded synthetic "RVC-like" vectors: a mixture of anisotropic Gaussian
 * clusters (random low-rank covariance per cluster, log-normal cluster
 * sizes, centres with a decaying spectrum in a rotated basis), in the spirit
 * of shared/data/make_synth.py. Used by the demo, benchmarks and tests.
 */
#ifndef IVFPQ_SYNTH_H
#define IVFPQ_SYNTH_H

#include <stddef.h>
#include <stdint.h>

/* Fills out [n, d] with n points in random order. Returns 0, or -1 when
 * memory runs out. Same arguments -> same bytes on every platform. */
int synth_generate(size_t n, size_t d, size_t nclusters, uint64_t seed, float *out);

/* Small helpers shared by tools and tests. */
typedef struct synth_rng { uint64_t s[4]; } synth_rng;
void synth_seed(synth_rng *r, uint64_t seed);
uint64_t synth_next(synth_rng *r);
double synth_uniform(synth_rng *r);  /* [0, 1) */
double synth_normal(synth_rng *r);   /* N(0, 1) */

/* Monotonic seconds, for timing in tools. */
double synth_now(void);

#endif

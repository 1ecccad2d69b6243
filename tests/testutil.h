/* Helpers shared by the cmocka tests. */
#ifndef IVFPQ_TESTUTIL_H
#define IVFPQ_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ivfpq.h"

/* Clustered synthetic set: n rows of dimension d (see tools/synth.h). */
float *tu_synth(size_t n, size_t d, size_t nclusters, uint64_t seed);

/* Exact k-NN by the canonical arithmetic of src/kernels.h, written out
 * independently of the library: ties by smaller id. For IP, "distance" is
 * the inner product and larger is better. */
void tu_bruteforce(const float *xb, size_t nb, const float *xq, size_t nq, size_t d, size_t k,
                   ivfpq_metric metric, float *dist, int64_t *ids);

/* Mean |returned top-k ∩ true top-k| / k. */
double tu_recall(const int64_t *I, const int64_t *gt, size_t nq, size_t k, size_t gtk);

/* Log callback that records the last message (and counts warnings). */
typedef struct tu_log {
    char last[512];
    int last_level, last_status, nwarn, nerr;
} tu_log;
void tu_log_fn(void *user, int level, int status, const char *msg);

/* Allocator hooks that count live blocks and can fail the N-th call. */
typedef struct tu_alloc {
    long calls, live, fail_at; /* fail_at: 1-based call number to fail, 0 = never */
} tu_alloc;
ivfpq_allocator tu_allocator(tu_alloc *a);

/* A growable byte buffer for ivfpq_save (an ivfpq_write_fn); free(p) after. */
typedef struct tu_bytes { unsigned char *p; size_t len, cap; } tu_bytes;
int tu_bytes_put(void *user, const void *data, size_t len);

#endif

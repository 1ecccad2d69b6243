#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

float *tu_synth(size_t n, size_t d, size_t nclusters, uint64_t seed)
{
    float *x = malloc(n * d * sizeof(float));
    assert_non_null(x);
    assert_int_equal(synth_generate(n, d, nclusters, seed, x), 0);
    return x;
}

static float canon(const float *x, const float *y, size_t d, int l2)
{
    float acc[16] = {0}, h[8], q[4], p[2];
    for (size_t j = 0; j < d; j++) {
        float t;
        if (l2) {
            float df = x[j] - y[j];
            t = df * df;
        } else {
            t = x[j] * y[j];
        }
        acc[j % 16] = acc[j % 16] + t;
    }
    for (int i = 0; i < 8; i++) h[i] = acc[i] + acc[i + 8];
    for (int i = 0; i < 4; i++) q[i] = h[i] + h[i + 4];
    for (int i = 0; i < 2; i++) p[i] = q[i] + q[i + 2];
    return p[0] + p[1];
}

void tu_bruteforce(const float *xb, size_t nb, const float *xq, size_t nq, size_t d, size_t k,
                   ivfpq_metric metric, float *dist, int64_t *ids)
{
    int l2 = metric == IVFPQ_METRIC_L2;
    float *all = malloc(nb * sizeof(float));
    assert_non_null(all);
    for (size_t q = 0; q < nq; q++) {
        for (size_t i = 0; i < nb; i++) all[i] = canon(xq + q * d, xb + i * d, d, l2);
        for (size_t r = 0; r < k; r++) {
            size_t best = (size_t)-1;
            for (size_t i = 0; i < nb; i++) {
                if (isnan(all[i])) continue;
                if (best == (size_t)-1 || (l2 ? all[i] < all[best] : all[i] > all[best])) best = i;
            }
            if (best == (size_t)-1) {
                ids[q * k + r] = -1;
                dist[q * k + r] = l2 ? INFINITY : -INFINITY;
                continue;
            }
            ids[q * k + r] = (int64_t)best;
            dist[q * k + r] = all[best];
            all[best] = NAN;
        }
    }
    free(all);
}

double tu_recall(const int64_t *I, const int64_t *gt, size_t nq, size_t k, size_t gtk)
{
    size_t hit = 0;
    for (size_t q = 0; q < nq; q++)
        for (size_t a = 0; a < k; a++)
            for (size_t b = 0; b < k; b++)
                if (I[q * k + a] >= 0 && I[q * k + a] == gt[q * gtk + b]) {
                    hit++;
                    break;
                }
    return (double)hit / (double)(nq * k);
}

void tu_log_fn(void *user, int level, int status, const char *msg)
{
    tu_log *l = user;
    strncpy(l->last, msg, sizeof l->last - 1);
    l->last[sizeof l->last - 1] = '\0';
    l->last_level = level;
    l->last_status = status;
    if (level == IVFPQ_LOG_WARNING) l->nwarn++;
    if (level == IVFPQ_LOG_ERROR) l->nerr++;
}

static void *tu_alloc_fn(void *opaque, size_t size)
{
    tu_alloc *a = opaque;
    a->calls++;
    if (a->fail_at && a->calls == a->fail_at) return NULL;
    void *p = malloc(size);
    if (p) a->live++;
    return p;
}

static void tu_free_fn(void *opaque, void *p)
{
    tu_alloc *a = opaque;
    a->live--;
    free(p);
}

ivfpq_allocator tu_allocator(tu_alloc *a)
{
    ivfpq_allocator al = {tu_alloc_fn, tu_free_fn, a};
    return al;
}

int tu_bytes_put(void *user, const void *data, size_t len)
{
    tu_bytes *b = user;
    if (b->len + len > b->cap) {
        b->cap = 2 * (b->len + len);
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

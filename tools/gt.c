/*
 * Loading data, exact ground truth (with an on-disk cache) and recall.
 *
 * The cache file sits beside the queries: <query>.gt-<hash>.ivecs. The hash
 * covers the bytes of both matrices, their shapes, k and the metric, so a
 * changed file (even with the same name, size and time) never reuses a
 * stale answer; the file itself is checked for shape before use.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

int cli_load_vectors(const char *path, int cosine, vec_matrix *m)
{
    char err[768];
    int rc = vec_read_float(path, m, err, sizeof err);
    if (rc == VEC_E_NOMEM) return cli_error(CLI_EXIT_RUNTIME, "%s", err);
    if (rc) return cli_error(CLI_EXIT_INPUT, "%s", err);
    if (cosine) {
        int st = ivfpq_normalize_l2(m->n, (int)m->d, m->data);
        if (st) {
            vec_free(m);
            return cli_error(CLI_EXIT_INPUT, "%s: cannot normalize: %s", path, ivfpq_strerror(st));
        }
    }
    return 0;
}

/* --------------------------------------------------------- exact k-NN */

typedef struct knn_job {
    const ivfpq_index *flat;
    const float *xq;
    size_t nq, d, k, next, done;
    int32_t *out;
    int rc;
    cli_bar *bar;
    pthread_mutex_t mu;
} knn_job;

#define KNN_CHUNK 64 /* queries per call: long enough for the blocked kernel, short for progress */

static void *knn_worker(void *arg)
{
    knn_job *j = arg;
    float *D = malloc(KNN_CHUNK * j->k * sizeof(float));
    int64_t *I = malloc(KNN_CHUNK * j->k * sizeof(int64_t));
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t q0 = j->next;
        if (!D || !I) j->rc = IVFPQ_E_NOMEM;
        int stop = j->rc != 0 || q0 >= j->nq;
        if (!stop) j->next += KNN_CHUNK;
        pthread_mutex_unlock(&j->mu);
        if (stop) break;
        size_t cnt = j->nq - q0 < KNN_CHUNK ? j->nq - q0 : KNN_CHUNK;
        int rc = ivfpq_search(j->flat, cnt, j->xq + q0 * j->d, j->k, NULL, D, I);
        for (size_t i = 0; i < cnt * j->k; i++) j->out[q0 * j->k + i] = (int32_t)I[i];
        pthread_mutex_lock(&j->mu);
        if (rc && !j->rc) j->rc = rc;
        j->done += cnt;
        cli_progress(j->bar, "ground truth", j->done, j->nq);
        pthread_mutex_unlock(&j->mu);
    }
    free(D);
    free(I);
    return NULL;
}

int cli_exact_knn(const float *xb, size_t nb, const float *xq, size_t nq, size_t d, size_t k,
                  ivfpq_metric metric, int threads, int32_t *out)
{
    if (nb > INT32_MAX) return cli_error(CLI_EXIT_INPUT, "%zu base vectors: ids do not fit .ivecs (int32)", nb);
    ivfpq_options opt = {0};
    opt.log = cli_log;
    ivfpq_index *flat;
    int rc = ivfpq_index_factory(&flat, (int)d, "Flat", metric, &opt);
    if (!rc) rc = ivfpq_add(flat, nb, xb, NULL);
    if (rc) {
        ivfpq_free(flat);
        return cli_error(cli_exit_for_status(rc), "exact search: %s", cli_why(rc));
    }
    cli_bar bar;
    cli_bar_init(&bar);
    knn_job j = {flat, xq, nq, d, k, 0, 0, out, 0, &bar, PTHREAD_MUTEX_INITIALIZER};
    if (threads < 1) threads = 1;
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    int started = 0;
    for (int t = 1; tid && t < threads; t++)
        if (pthread_create(&tid[t], NULL, knn_worker, &j) == 0) started = t;
        else break;
    knn_worker(&j);
    for (int t = 1; t <= started; t++) pthread_join(tid[t], NULL);
    free(tid);
    cli_bar_end(&bar);
    ivfpq_free(flat);
    if (j.rc) return cli_error(cli_exit_for_status(j.rc), "exact search: %s", cli_why(j.rc));
    return 0;
}

/* ------------------------------------------------------- ground truth */

/* 64-bit FNV-1a over 8-byte words (plus a final mix): fast enough to hash
 * a few hundred MB in well under a second; not cryptographic. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t gt_key(const vec_matrix *xb, const vec_matrix *xq, size_t k, const char *metric)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint64_t dims[5] = {xb->n, xb->d, xq->n, xq->d, k};
    h = hash_bytes(h, dims, sizeof dims);
    h = hash_bytes(h, metric, strlen(metric));
    h = hash_bytes(h, xb->data, xb->n * xb->d * 4);
    h = hash_bytes(h, xq->data, xq->n * xq->d * 4);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static int read_gt_file(const char *path, size_t nq, size_t k, int prefix_ok, int32_t **gt, size_t *gtk)
{
    vec_matrix m;
    char err[768];
    int rc = vec_read_int(path, &m, err, sizeof err);
    if (rc) return cli_error(rc == VEC_E_NOMEM ? CLI_EXIT_RUNTIME : CLI_EXIT_INPUT, "%s", err);
    int rows_ok = m.n == nq || (prefix_ok && m.n > nq);
    if (!rows_ok || m.d < k) {
        if (!rows_ok) cli_error(CLI_EXIT_INPUT, "%s: %zu rows of ground truth for %zu queries", path, m.n, nq);
        else cli_error(CLI_EXIT_INPUT, "%s: %zu neighbours per query, k = %zu needs at least %zu", path, m.d, k, k);
        vec_free(&m);
        return CLI_EXIT_INPUT;
    }
    *gt = m.data;
    *gtk = m.d;
    return 0;
}

int cli_ground_truth(const char *gt_path, const char *query_path, const char *cache_dir,
                     const vec_matrix *xb, const vec_matrix *xq, size_t k, ivfpq_metric metric,
                     int cosine, int threads, int prefix_ok, int32_t **gt, size_t *gtk)
{
    *gt = NULL;
    *gtk = 0;
    if (gt_path) return read_gt_file(gt_path, xq->n, k, prefix_ok, gt, gtk);

    const char *mname = cli_metric_name(metric, cosine);
    char cache[4096] = "";
    if (!cache_dir || strcmp(cache_dir, "none") != 0) {
        uint64_t key = gt_key(xb, xq, k, mname);
        char qp[2048];
        snprintf(qp, sizeof qp, "%s", query_path);
        size_t l = strlen(qp);
        while (l > 1 && qp[l - 1] == '/') qp[--l] = 0; /* a directory of queries: beside it */
        if (cache_dir) {
            const char *base = strrchr(qp, '/');
            snprintf(cache, sizeof cache, "%s/%s.gt-%016llx.ivecs", cache_dir, base ? base + 1 : qp,
                     (unsigned long long)key);
        } else {
            snprintf(cache, sizeof cache, "%s.gt-%016llx.ivecs", qp, (unsigned long long)key);
        }
        struct stat st;
        if (stat(cache, &st) == 0) {
            vec_matrix m;
            char err[768];
            if (vec_read_int(cache, &m, err, sizeof err) == 0 && m.n == xq->n && m.d == k) {
                cli_note("ground truth from cache %s", cache);
                *gt = m.data;
                *gtk = k;
                return 0;
            }
            if (m.data) vec_free(&m);
            cli_note("ignoring unusable ground-truth cache %s", cache);
        }
    }
    int32_t *out = malloc(xq->n * k * sizeof(int32_t) + 1);
    if (!out) return cli_error(CLI_EXIT_RUNTIME, "out of memory for the ground truth");
    cli_note("computing exact ground truth (%zu queries x %zu base, k = %zu, %s)", xq->n, xb->n, k, mname);
    int rc = cli_exact_knn(xb->data, xb->n, xq->data, xq->n, xb->d, k, metric, threads, out);
    if (rc) {
        free(out);
        return rc;
    }
    if (cache[0]) {
        char err[768];
        if (vec_write(cache, VEC_INT32, out, xq->n, k, err, sizeof err) == 0)
            cli_note("ground truth cached in %s", cache);
        else
            cli_note("cannot cache the ground truth (%s); continuing", err);
    }
    *gt = out;
    *gtk = k;
    return 0;
}

void cli_recall(const int64_t *I, size_t nq, size_t k, const int32_t *gt, size_t gtk, double *r1, double *rk)
{
    size_t hit1 = 0, hitk = 0;
    for (size_t q = 0; q < nq; q++) {
        const int64_t *r = I + q * k;
        const int32_t *g = gt + q * gtk;
        if (r[0] >= 0 && r[0] == g[0]) hit1++;
        for (size_t a = 0; a < k; a++) {
            if (r[a] < 0) continue;
            for (size_t b = 0; b < k; b++)
                if (r[a] == g[b]) {
                    hitk++;
                    break;
                }
        }
    }
    *r1 = nq ? (double)hit1 / (double)nq : 0;
    *rk = nq && k ? (double)hitk / (double)(nq * k) : 0;
}

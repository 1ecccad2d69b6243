/*
 * Timing searches: queries per second (best of several passes, each long
 * enough to measure, optionally split over threads that share the const
 * index) and per-call latency percentiles.
 *
 * Timed calls use ivfpq_search_ws with a workspace allocated beforehand, so
 * the figures are the search itself, not malloc.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "synth.h"

typedef struct pass_job {
    const ivfpq_index *idx;
    const float *xq;
    size_t q0, q1, d, k, batch, reps;
    ivfpq_search_params params;
    float *D;
    int64_t *I;
    void *ws;
    size_t ws_size;
    int rc;
} pass_job;

/* One thread's share: its slice of the queries, `reps` times, in calls of
 * `batch` queries. */
static void *pass_worker(void *arg)
{
    pass_job *j = arg;
    for (size_t r = 0; r < j->reps && !j->rc; r++)
        for (size_t q = j->q0; q < j->q1 && !j->rc; q += j->batch) {
            size_t cnt = j->q1 - q < j->batch ? j->q1 - q : j->batch;
            j->rc = ivfpq_search_ws(j->idx, cnt, j->xq + q * j->d, j->k, &j->params, j->D + q * j->k,
                                    j->I + q * j->k, j->ws, j->ws_size);
        }
    return NULL;
}

typedef struct passes {
    int nt;
    pass_job *jobs;
    float *D;
    int64_t *I;
} passes;

static void passes_free(passes *p)
{
    if (p->jobs)
        for (int t = 0; t < p->nt; t++) free(p->jobs[t].ws);
    free(p->jobs);
    free(p->D);
    free(p->I);
    memset(p, 0, sizeof *p);
}

static int passes_init(passes *p, const ivfpq_index *idx, const float *xq, size_t nq,
                       const cli_search_cfg *cfg, int threads)
{
    memset(p, 0, sizeof *p);
    if (threads < 1) threads = 1;
    if ((size_t)threads > nq) threads = (int)nq;
    size_t batch = cfg->batch ? cfg->batch : nq;
    p->nt = threads;
    p->jobs = calloc((size_t)threads, sizeof *p->jobs);
    p->D = malloc(nq * cfg->k * sizeof(float) + 1);
    p->I = malloc(nq * cfg->k * sizeof(int64_t) + 1);
    if (!p->jobs || !p->D || !p->I) {
        passes_free(p);
        return cli_error(CLI_EXIT_RUNTIME, "out of memory for the search results");
    }
    size_t per = (nq + (size_t)threads - 1) / (size_t)threads;
    for (int t = 0; t < threads; t++) {
        pass_job *j = &p->jobs[t];
        j->idx = idx;
        j->xq = xq;
        j->q0 = (size_t)t * per < nq ? (size_t)t * per : nq;
        j->q1 = j->q0 + per < nq ? j->q0 + per : nq;
        j->d = (size_t)ivfpq_dim(idx);
        j->k = cfg->k;
        j->batch = batch < j->q1 - j->q0 ? batch : j->q1 - j->q0;
        if (!j->batch) j->batch = 1;
        j->params = cfg->params;
        j->params.nfound = NULL;
        j->D = p->D;
        j->I = p->I;
        int rc = ivfpq_search_workspace_size(idx, j->batch, cfg->k, &j->params, &j->ws_size);
        if (rc) {
            passes_free(p);
            return cli_error(cli_exit_for_status(rc), "search: %s", cli_why(rc));
        }
        j->ws = malloc(j->ws_size + 1);
        if (!j->ws) {
            passes_free(p);
            return cli_error(CLI_EXIT_RUNTIME, "out of memory for a search workspace");
        }
    }
    return 0;
}

/* Runs one pass (all threads, `reps` times over the slices); seconds. */
static int passes_run(passes *p, size_t reps, double *secs)
{
    pthread_t tid[256];
    for (int t = 0; t < p->nt; t++) {
        p->jobs[t].reps = reps;
        p->jobs[t].rc = 0;
    }
    double t0 = synth_now();
    int started = 0;
    for (int t = 1; t < p->nt; t++) {
        if (pthread_create(&tid[t], NULL, pass_worker, &p->jobs[t]) != 0) break;
        started = t;
    }
    if (started != p->nt - 1) {
        for (int t = 1; t <= started; t++) pthread_join(tid[t], NULL);
        return cli_error(CLI_EXIT_RUNTIME, "cannot start %d threads", p->nt);
    }
    pass_worker(&p->jobs[0]);
    for (int t = 1; t < p->nt; t++) pthread_join(tid[t], NULL);
    *secs = synth_now() - t0;
    for (int t = 0; t < p->nt; t++)
        if (p->jobs[t].rc) return cli_error(cli_exit_for_status(p->jobs[t].rc), "search: %s", cli_why(p->jobs[t].rc));
    return 0;
}

int cli_search_all(const ivfpq_index *idx, const float *xq, size_t nq, const cli_search_cfg *cfg,
                   float *D, int64_t *I)
{
    passes p;
    int rc = passes_init(&p, idx, xq, nq, cfg, cfg->threads);
    double secs;
    if (!rc) rc = passes_run(&p, 1, &secs);
    if (!rc) {
        if (D) memcpy(D, p.D, nq * cfg->k * sizeof(float));
        memcpy(I, p.I, nq * cfg->k * sizeof(int64_t));
    }
    passes_free(&p);
    return rc;
}

int cli_measure_qps(const ivfpq_index *idx, const float *xq, size_t nq, const cli_search_cfg *cfg,
                    double *qps)
{
    if (cfg->threads > 256) return cli_error(CLI_EXIT_USAGE, "--threads: at most 256");
    passes p;
    int rc = passes_init(&p, idx, xq, nq, cfg, cfg->threads);
    if (rc) return rc;
    double t1;
    if ((rc = passes_run(&p, 1, &t1))) goto out; /* warm-up and calibration */
    size_t reps = 1;
    if (t1 < cfg->min_time) reps = (size_t)ceil(cfg->min_time / (t1 > 1e-7 ? t1 : 1e-7));
    double best = INFINITY;
    int runs = cfg->runs > 0 ? cfg->runs : 3;
    for (int r = 0; r < runs; r++) {
        double s;
        if ((rc = passes_run(&p, reps, &s))) goto out;
        if (s < best) best = s;
    }
    *qps = (double)(nq * reps) / best;
out:
    passes_free(&p);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples. */
static double percentile(const double *s, size_t n, double pct)
{
    size_t r = (size_t)ceil(pct / 100.0 * (double)n);
    if (r < 1) r = 1;
    if (r > n) r = n;
    return s[r - 1];
}

int cli_measure_latency(const ivfpq_index *idx, const float *xq, size_t nq, const cli_search_cfg *cfg,
                        size_t min_samples, double *p50, double *p99)
{
    size_t batch = cfg->batch ? cfg->batch : nq;
    if (batch > nq) batch = nq;
    size_t ws_size, d = (size_t)ivfpq_dim(idx), cap = 1024, n = 0;
    ivfpq_search_params prm = cfg->params;
    prm.nfound = NULL;
    int rc = ivfpq_search_workspace_size(idx, batch, cfg->k, &prm, &ws_size);
    if (rc) return cli_error(cli_exit_for_status(rc), "search: %s", cli_why(rc));
    void *ws = malloc(ws_size + 1);
    float *D = malloc(batch * cfg->k * sizeof(float));
    int64_t *I = malloc(batch * cfg->k * sizeof(int64_t));
    double *s = malloc(cap * sizeof *s);
    if (!ws || !D || !I || !s) {
        rc = cli_error(CLI_EXIT_RUNTIME, "out of memory");
        goto out;
    }
    /* one untimed call warms caches and page tables */
    if ((rc = ivfpq_search_ws(idx, batch, xq, cfg->k, &prm, D, I, ws, ws_size))) goto fail;
    double start = synth_now();
    size_t q = 0;
    while (n < min_samples || synth_now() - start < cfg->min_time) {
        if (n == cap) {
            if (cap >= ((size_t)1 << 20)) break;
            double *ns = realloc(s, 2 * cap * sizeof *s);
            if (!ns) {
                rc = cli_error(CLI_EXIT_RUNTIME, "out of memory");
                goto out;
            }
            s = ns;
            cap *= 2;
        }
        if (q + batch > nq) q = 0; /* cycle through the query set */
        double t0 = synth_now();
        rc = ivfpq_search_ws(idx, batch, xq + q * d, cfg->k, &prm, D, I, ws, ws_size);
        s[n++] = synth_now() - t0;
        if (rc) goto fail;
        q += batch;
    }
    qsort(s, n, sizeof *s, cmp_double);
    *p50 = percentile(s, n, 50);
    *p99 = percentile(s, n, 99);
    goto out;
fail:
    rc = cli_error(cli_exit_for_status(rc), "search: %s", cli_why(rc));
out:
    free(ws);
    free(D);
    free(I);
    free(s);
    return rc;
}

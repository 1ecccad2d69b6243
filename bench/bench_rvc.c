/*
 * make bench-rvc: real-time figures of RVC's retrieval step (issue 8).
 *
 * For each N and d: N synthetic RVC-like vectors (tools/synth.c: mixture of
 * anisotropic Gaussian clusters, N/200 clusters) and chunks of 200 fresh
 * queries from the same mixture; exact 8-NN ground truth from a Flat index;
 * then, single thread:
 *   - RVC's own index, IVF{min(16 sqrt N, N/39)},Flat, at --nprobe-flat
 *   - IVF{4 sqrt N},PQ{d/2}x4fs,RFlat at --nprobe-pq, each k_factor of --k-factor
 *   - IVF{sqrt N},PQ{d/2}x4fs,RFlat likewise (cheaper coarse quantization)
 * and for each: 8-NN recall against exact search (all queries), and the
 * median time of one chunk (200 queries, k = 8) for ivfpq_search_ws and
 * for the whole step ivfpq_search_blend_ws (search + weights + blend),
 * over passes through all the chunks repeated for at least --min-time
 * seconds. Times are this thread's CPU time (not inflated when the shared
 * machine deschedules us), workspaces allocated once and the coarse
 * prefilter's tables kept in the index (ivfpq_cache_coarse_tables), as a
 * real-time caller would.
 *
 * Training is bounded: at most --train-points vectors (a seeded random
 * subsample, as faiss does with max_points_per_centroid; 0 = all N) and
 * --coarse-niter k-means iterations. Lists with few training points per
 * centroid still partition the space; the recall column is measured on the
 * index actually built.
 *
 * Usage: bench_rvc [--n 50000,200000,1000000] [--d 256,768] [--chunks 10]
 *          [--nprobe-flat 1,2,4] [--nprobe-pq 1,2,4,8,16] [--k-factor 4[,2,...]]
 *          [--train-points T] [--coarse-niter I] [--min-time S] [--seed S]
 *          [--csv FILE] (appends one line per measurement)
 *          [--dump DIR] (only write each set as DIR/N-d/{base,query,gt}.npy, for
 *                        bench/bench_rvc_faiss.py: faiss on the same vectors)
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ivfpq.h"
#include "synth.h"
#include "vecio.h"

#include <sys/stat.h>

#define CHUNK 200
#define K 8
#define MAXL 16

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_rvc: %s: %s\n", what, ivfpq_strerror(rc));
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench_rvc: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static size_t parse_list(const char *s, size_t *out)
{
    size_t n = 0;
    while (*s && n < MAXL) {
        char *end;
        out[n++] = (size_t)strtoull(s, &end, 10);
        if (end == s) break;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

static size_t parse_flist(const char *s, double *out)
{
    size_t n = 0;
    while (*s && n < MAXL) {
        char *end;
        out[n++] = strtod(s, &end);
        if (end == s) break;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct cfg {
    size_t chunks, train_points;
    int coarse_niter;
    double min_time, k_factor[MAXL];
    size_t nkf;
    uint64_t seed;
    FILE *csv;
} cfg;

/* Seeded subsample of m rows of x [n, d] (partial Fisher-Yates). */
static float *subsample(const float *x, size_t n, size_t d, size_t m, uint64_t seed)
{
    size_t *perm = xmalloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++) perm[i] = i;
    synth_rng r;
    synth_seed(&r, seed);
    float *out = xmalloc(m * d * sizeof(float));
    for (size_t i = 0; i < m; i++) {
        size_t j = i + (size_t)(synth_next(&r) % (n - i));
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        memcpy(out + i * d, x + perm[i] * d, d * sizeof(float));
    }
    free(perm);
    return out;
}

/* Median chunk time (ms) of search or search+blend, all chunks repeated. */
static double time_chunks(const ivfpq_index *idx, const float *xq, size_t nchunks, size_t d,
                          const ivfpq_search_params *p, int blend, void *ws, size_t wsz,
                          double min_time)
{
    size_t cap = 4096, n = 0;
    double *t = xmalloc(cap * sizeof(double));
    float *D = xmalloc(CHUNK * K * sizeof(float)), *out = xmalloc(CHUNK * d * sizeof(float));
    int64_t *I = xmalloc(CHUNK * K * sizeof(int64_t));
    double start = cpu_now();
    do {
        for (size_t c = 0; c < nchunks && n < cap; c++) {
            const float *q = xq + c * CHUNK * d;
            double t0 = cpu_now();
            int rc = blend ? ivfpq_search_blend_ws(idx, CHUNK, q, K, p, 0.75, out, ws, wsz)
                           : ivfpq_search_ws(idx, CHUNK, q, K, p, D, I, ws, wsz);
            t[n++] = cpu_now() - t0;
            if (rc) die("search", rc);
        }
    } while (cpu_now() - start < min_time && n < cap);
    qsort(t, n, sizeof(double), cmp_double);
    double med = 1e3 * t[n / 2];
    free(t);
    free(D);
    free(out);
    free(I);
    return med;
}

static void run_index(const cfg *c, size_t N, size_t d, const char *spec, const float *xb,
                      const float *xq, const int64_t *gt, const size_t *nprobes, size_t nnp)
{
    size_t nq = c->chunks * CHUNK;
    ivfpq_options o;
    memset(&o, 0, sizeof o);
    o.seed = c->seed;
    o.coarse_niter = c->coarse_niter;
    ivfpq_index *idx;
    int rc = ivfpq_index_factory(&idx, (int)d, spec, IVFPQ_METRIC_L2, &o);
    if (rc) die(spec, rc);
    size_t nt = c->train_points && c->train_points < N ? c->train_points : N;
    float *xt = nt < N ? subsample(xb, N, d, nt, c->seed + 1) : NULL;
    double t0 = cpu_now();
    if ((rc = ivfpq_train(idx, nt, xt ? xt : xb))) die("train", rc);
    double ttrain = cpu_now() - t0;
    free(xt);
    t0 = cpu_now();
    if ((rc = ivfpq_add(idx, N, xb, NULL))) die("add", rc);
    double tadd = cpu_now() - t0;
    /* as a real-time caller would: the coarse prefilter's tables built once */
    if ((rc = ivfpq_cache_coarse_tables(idx, 1))) die("cache_coarse_tables", rc);
    ivfpq_info info;
    ivfpq_get_info(idx, &info);
    float *D = xmalloc(nq * K * sizeof(float));
    int64_t *I = xmalloc(nq * K * sizeof(int64_t));
    /* k_factor only matters with a refine */
    size_t nkf = strstr(spec, "RFlat") ? c->nkf : 1;
    for (size_t a = 0; a < nnp * nkf; a++) {
        ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
        double kf = c->k_factor[a % nkf];
        p.nprobe = nprobes[a / nkf];
        p.k_factor = (float)kf;
        if ((rc = ivfpq_search(idx, nq, xq, K, &p, D, I))) die("search", rc);
        size_t hit = 0;
        for (size_t i = 0; i < nq; i++)
            for (size_t j = 0; j < K; j++)
                for (size_t g = 0; g < K; g++)
                    if (I[i * K + j] == gt[i * K + g]) {
                        hit++;
                        break;
                    }
        double recall = (double)hit / (double)(nq * K);
        size_t s1, s2;
        if ((rc = ivfpq_search_workspace_size(idx, CHUNK, K, &p, &s1))) die("ws", rc);
        if ((rc = ivfpq_search_blend_workspace_size(idx, CHUNK, K, &p, &s2))) die("ws", rc);
        size_t wsz = s1 > s2 ? s1 : s2;
        void *ws = xmalloc(wsz);
        double ms = time_chunks(idx, xq, c->chunks, d, &p, 0, ws, wsz, c->min_time);
        double msb = time_chunks(idx, xq, c->chunks, d, &p, 1, ws, wsz, c->min_time);
        free(ws);
        printf("%8zu %4zu  %-24s %6zu %4g %8.3f %10.3f %10.3f %9.1f %8.1f %8.0f\n", N, d, spec,
               nprobes[a / nkf], kf, recall, ms, msb, ttrain, tadd, (double)info.memory_bytes / (double)N);
        fflush(stdout);
        if (c->csv) {
            fprintf(c->csv, "ivfpq,%zu,%zu,%s,%zu,%g,%.4f,%.4f,%.4f,%.2f,%.2f,%.1f,%zu\n", N, d,
                    spec, nprobes[a / nkf], kf, recall, ms, msb, ttrain, tadd,
                    (double)info.memory_bytes / (double)N, nt);
            fflush(c->csv);
        }
    }
    free(D);
    free(I);
    ivfpq_free(idx);
}

int main(int argc, char **argv)
{
    size_t ns[MAXL] = {50000, 200000, 1000000}, nn = 3;
    size_t ds[MAXL] = {256, 768}, nd = 2;
    size_t npf[MAXL] = {1, 2, 4}, nnpf = 3;
    size_t npq[MAXL] = {1, 2, 4, 8, 16}, nnpq = 5;
    cfg c = {10, 0, 0, 1.0, {4.0}, 1, 1234, NULL};
    const char *dump = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_rvc: %s needs a value (see the comment at the top of bench/bench_rvc.c)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--n")) nn = parse_list(v, ns);
        else if (!strcmp(a, "--d")) nd = parse_list(v, ds);
        else if (!strcmp(a, "--nprobe-flat")) nnpf = parse_list(v, npf);
        else if (!strcmp(a, "--nprobe-pq")) nnpq = parse_list(v, npq);
        else if (!strcmp(a, "--chunks")) c.chunks = (size_t)strtoull(v, NULL, 10);
        else if (!strcmp(a, "--train-points")) c.train_points = (size_t)strtoull(v, NULL, 10);
        else if (!strcmp(a, "--coarse-niter")) c.coarse_niter = atoi(v);
        else if (!strcmp(a, "--min-time")) c.min_time = atof(v);
        else if (!strcmp(a, "--k-factor")) c.nkf = parse_flist(v, c.k_factor);
        else if (!strcmp(a, "--dump")) dump = v;
        else if (!strcmp(a, "--seed")) c.seed = (uint64_t)strtoull(v, NULL, 10);
        else if (!strcmp(a, "--csv")) {
            if (!(c.csv = fopen(v, "a"))) {
                perror(v);
                return 1;
            }
        } else {
            fprintf(stderr, "bench_rvc: unknown option %s\n", a);
            return 2;
        }
    }
    if (c.chunks == 0) c.chunks = 1;
    for (size_t f = 0; f < c.nkf; f++)
        if (!(c.k_factor[f] >= 1.0)) {
            fprintf(stderr, "bench_rvc: --k-factor values must be >= 1\n");
            return 2;
        }
    if (c.nkf == 0) {
        fprintf(stderr, "bench_rvc: --k-factor needs a value\n");
        return 2;
    }
    printf("libivfpq %s, SIMD %s, single thread; chunk = %d queries, k = %d; times = median "
           "thread CPU ms per chunk\n", ivfpq_version_string(), ivfpq_simd_name(ivfpq_simd_init()),
           CHUNK, K);
    printf("%8s %4s  %-24s %6s %4s %8s %10s %10s %9s %8s %8s\n", "N", "d", "index", "nprobe",
           "kf", "R8@8", "search_ms", "blend_ms", "train_s", "add_s", "B/vec");
    for (size_t a = 0; a < nd; a++) {
        for (size_t b = 0; b < nn; b++) {
            size_t N = ns[b], d = ds[a], nq = c.chunks * CHUNK;
            float *x = xmalloc((N + nq) * d * sizeof(float));
            size_t ncl = N / 200 > 100 ? N / 200 : 100;
            double t0 = cpu_now();
            if (synth_generate(N + nq, d, ncl, c.seed, x)) die("synth", IVFPQ_E_NOMEM);
            const float *xq = x + N * d;
            double tgen = cpu_now() - t0;
            /* exact 8-NN ground truth */
            ivfpq_index *flat;
            int rc = ivfpq_index_factory(&flat, (int)d, "Flat", IVFPQ_METRIC_L2, NULL);
            if (rc || (rc = ivfpq_add(flat, N, x, NULL))) die("Flat", rc);
            float *gd = xmalloc(nq * K * sizeof(float));
            int64_t *gt = xmalloc(nq * K * sizeof(int64_t));
            t0 = cpu_now();
            if ((rc = ivfpq_search(flat, nq, xq, K, NULL, gd, gt))) die("ground truth", rc);
            double tgt = cpu_now() - t0;
            printf("# N=%zu d=%zu: %zu clusters, generated in %.1f s, exact 8-NN of %zu queries in "
                   "%.1f s (Flat: %.1f ms per chunk)\n", N, d, ncl, tgen, nq, tgt,
                   1e3 * tgt / (double)c.chunks);
            ivfpq_free(flat);
            free(gd);
            if (dump) {
                char path[4096], err[256];
                int32_t *gt32 = xmalloc(nq * K * sizeof(int32_t));
                for (size_t i = 0; i < nq * K; i++) gt32[i] = (int32_t)gt[i];
                mkdir(dump, 0777);
                snprintf(path, sizeof path, "%s/%zu-%zu", dump, N, d);
                mkdir(path, 0777);
                const char *names[3] = {"base", "query", "gt"};
                for (int f = 0; f < 3; f++) {
                    snprintf(path, sizeof path, "%s/%zu-%zu/%s.npy", dump, N, d, names[f]);
                    int wrc = f == 2 ? vec_write(path, VEC_INT32, gt32, nq, K, err, sizeof err)
                                     : vec_write(path, VEC_FLOAT32, f ? xq : x, f ? nq : N, d, err,
                                                 sizeof err);
                    if (wrc) {
                        fprintf(stderr, "bench_rvc: %s\n", err);
                        return 1;
                    }
                }
                printf("# wrote %s/%zu-%zu/{base,query,gt}.npy\n", dump, N, d);
                free(gt32);
                free(gt);
                free(x);
                continue;
            }
            char spec[64];
            size_t nl_rvc = (size_t)(16.0 * sqrt((double)N));
            if (N / 39 < nl_rvc) nl_rvc = N / 39;
            snprintf(spec, sizeof spec, "IVF%zu,Flat", nl_rvc);
            run_index(&c, N, d, spec, x, xq, gt, npf, nnpf);
            snprintf(spec, sizeof spec, "IVF%zu,PQ%zux4fs,RFlat", (size_t)(4.0 * sqrt((double)N)),
                     d / 2);
            run_index(&c, N, d, spec, x, xq, gt, npq, nnpq);
            /* fewer lists: a cheaper coarse step, which dominates small chunks */
            snprintf(spec, sizeof spec, "IVF%zu,PQ%zux4fs,RFlat", (size_t)sqrt((double)N), d / 2);
            run_index(&c, N, d, spec, x, xq, gt, npq, nnpq);
            free(gt);
            free(x);
        }
    }
    if (c.csv) fclose(c.csv);
    return 0;
}

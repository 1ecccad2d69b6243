/*
 * make bench-search: end-to-end speed of one index kind on a TEXMEX set, at
 * every SIMD level of this CPU (not a test: numbers only).
 *
 * Trains and fills the index once (at the best level; train and add times
 * are printed), then for each level and nprobe runs all queries in one
 * batch, single thread, and keeps the best pass of several lasting at least
 * --min-time seconds in all. Prints QPS, R@1 and k-R@k against gt.ivecs, and
 * checks that every level returns the same ids and distance bits.
 *
 * Usage: bench_search [--data DIR] [--spec S] [--k K] [--k-factor F]
 *          [--nprobe 1,4,16,64] [--levels scalar,avx2,...] [--min-time T]
 *          [--train-levels L,...]   (also time training under these levels)
 *          [--quick]                (2 coarse / 4 PQ iterations: fast A/B runs)
 *          [--index FILE]           (load FILE if it exists, else build and save
 *                                    it there: A/B runs of search changes on one
 *                                    trained index, without retraining)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivfpq.h"
#include "synth.h"
#include "vecio.h"

#include <time.h>

/* CPU seconds of this thread: unlike wall time, not inflated when the
 * shared machine deschedules us. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* FNV-1a of the result arrays: compares runs of different builds. */
static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_search: %s: %s\n", what, ivfpq_strerror(rc));
    exit(1);
}

static int level_of(const char *name)
{
    for (int l = IVFPQ_SIMD_SCALAR; l <= IVFPQ_SIMD_NEON; l++)
        if (!strcmp(name, ivfpq_simd_name((ivfpq_simd_level)l))) return l;
    return -1;
}

/* Comma-separated level names into a bitmask (unknown names: error). */
static unsigned parse_levels(const char *s)
{
    unsigned m = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        int l = level_of(t);
        if (l < 0) { fprintf(stderr, "bench_search: unknown level %s\n", t); exit(2); }
        m |= 1u << l;
    }
    return m;
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp/ivfpq-data/synth-256", *spec = "IVF1024,PQ128x4fs,RFlat";
    const char *probes_s = "1,4,16,64", *index_path = NULL;
    size_t k = 10;
    float kf = 4.0f;
    double min_time = 0.2;
    unsigned levels = ~0u, train_levels = 0;
    ivfpq_options opt;
    memset(&opt, 0, sizeof opt);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) { /* short training, for A/B runs of search changes */
            opt.coarse_niter = 2;
            opt.pq_niter = 4;
            continue;
        }
        if (!v) { fprintf(stderr, "bench_search: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--data")) dir = v;
        else if (!strcmp(a, "--spec")) spec = v;
        else if (!strcmp(a, "--k")) k = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--k-factor")) kf = strtof(v, NULL);
        else if (!strcmp(a, "--nprobe")) probes_s = v;
        else if (!strcmp(a, "--levels")) levels = parse_levels(v);
        else if (!strcmp(a, "--train-levels")) train_levels = parse_levels(v);
        else if (!strcmp(a, "--min-time")) min_time = atof(v);
        else if (!strcmp(a, "--index")) index_path = v;

        else { fprintf(stderr, "bench_search: unknown option %s\n", a); return 2; }
        i++;
    }
    size_t probes[16], np = 0;
    {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", probes_s);
        for (char *t = strtok(buf, ","); t && np < 16; t = strtok(NULL, ","))
            probes[np++] = strtoul(t, NULL, 10);
    }
    char path[512], err[256];
    vec_matrix xb, xq, gt;
    snprintf(path, sizeof path, "%s/base.fvecs", dir);
    if (vec_read_fvecs(path, &xb, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    snprintf(path, sizeof path, "%s/query.fvecs", dir);
    if (vec_read_fvecs(path, &xq, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    snprintf(path, sizeof path, "%s/gt.ivecs", dir);
    if (vec_read_ivecs(path, &gt, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    size_t d = xb.d, nb = xb.n, nq = xq.n;
    const float *b = xb.data, *q = xq.data;
    const int32_t *g = gt.data;
    printf("data %s: %zu x %zu base, %zu queries; index %s, k=%zu, k_factor=%g\n", dir, nb, d, nq,
           spec, k, (double)kf);

    ivfpq_simd_level best = ivfpq_simd_init();
    int rc;
    for (int l = IVFPQ_SIMD_SCALAR; l <= IVFPQ_SIMD_NEON; l++) {
        if (!(train_levels >> l & 1) || ivfpq_simd_force((ivfpq_simd_level)l)) continue;
        ivfpq_index *t;
        if ((rc = ivfpq_index_factory(&t, (int)d, spec, IVFPQ_METRIC_L2, NULL))) die(spec, rc);
        double t0 = synth_now();
        if ((rc = ivfpq_train(t, nb, b))) die("train", rc);
        printf("train at %s: %.2f s\n", ivfpq_simd_name((ivfpq_simd_level)l), synth_now() - t0);
        ivfpq_free(t);
    }
    ivfpq_simd_force(best);
    ivfpq_index *idx;
    FILE *probe = index_path ? fopen(index_path, "rb") : NULL;
    if (probe) {
        fclose(probe);
        double t0 = synth_now();
        if ((rc = ivfpq_load_file(&idx, index_path, 0, NULL))) die(index_path, rc);
        printf("loaded %s in %.2f s (level %s)\n\n", index_path, synth_now() - t0,
               ivfpq_simd_name(best));
    } else {
        if ((rc = ivfpq_index_factory(&idx, (int)d, spec, IVFPQ_METRIC_L2, &opt))) die(spec, rc);
        double t0 = synth_now();
        if ((rc = ivfpq_train(idx, nb, b))) die("train", rc);
        double ttrain = synth_now() - t0;
        t0 = synth_now();
        if ((rc = ivfpq_add(idx, nb, b, NULL))) die("add", rc);
        printf("train %.2f s, add %.2f s (level %s)\n\n", ttrain, synth_now() - t0,
               ivfpq_simd_name(best));
        if (index_path && (rc = ivfpq_save_file(idx, index_path, IVFPQ_FORMAT_NATIVE)))
            die(index_path, rc);
    }
    fflush(stdout); /* a profiler may wait for this line to attach */

    float *D = malloc(nq * k * sizeof(float)), *D0 = malloc(np * nq * k * sizeof(float));
    int64_t *I = malloc(nq * k * sizeof(int64_t)), *I0 = malloc(np * nq * k * sizeof(int64_t));
    int have0 = 0;
    printf("| level | nprobe | R@1 | %zu-R@%zu | QPS | QPS (CPU time) | same as first level | result hash |\n", k, k);
    printf("|---|---:|---:|---:|---:|---:|---|---|\n");
    for (int l = IVFPQ_SIMD_SCALAR; l <= IVFPQ_SIMD_NEON; l++) {
        if (!(levels >> l & 1) || ivfpq_simd_force((ivfpq_simd_level)l)) continue;
        for (size_t pi = 0; pi < np; pi++) {
            ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
            p.nprobe = probes[pi];
            p.k_factor = kf;
            double bt = 1e30, bc = 1e30, tstart = synth_now();
            int reps = 0;
            do {
                double t1 = synth_now(), c1 = cpu_now();
                if ((rc = ivfpq_search(idx, nq, q, k, &p, D, I))) die("search", rc);
                double t = synth_now() - t1, c = cpu_now() - c1;
                if (t < bt) bt = t;
                if (c < bc) bc = c;
                reps++;
            } while (reps < 3 || (synth_now() - tstart < min_time && reps < 1000));
            size_t r1 = 0, rk = 0;
            for (size_t i = 0; i < nq; i++) {
                if (I[i * k] == g[i * gt.d]) r1++;
                for (size_t a = 0; a < k; a++)
                    for (size_t c = 0; c < k && c < gt.d; c++)
                        if (I[i * k + a] == g[i * gt.d + c]) { rk++; break; }
            }
            const char *same = "-";
            if (!have0) {
                memcpy(D0 + pi * nq * k, D, nq * k * sizeof(float));
                memcpy(I0 + pi * nq * k, I, nq * k * sizeof(int64_t));
            } else {
                same = memcmp(D0 + pi * nq * k, D, nq * k * sizeof(float)) ||
                               memcmp(I0 + pi * nq * k, I, nq * k * sizeof(int64_t))
                           ? "DIFFERENT"
                           : "identical";
            }
            uint64_t h = fnv(I, nq * k * sizeof(int64_t), fnv(D, nq * k * sizeof(float), 14695981039346656037ull));
            printf("| %s | %zu | %.3f | %.3f | %.0f | %.0f | %s | %016llx |\n",
                   ivfpq_simd_name((ivfpq_simd_level)l), p.nprobe, (double)r1 / (double)nq,
                   (double)rk / (double)(nq * k), (double)nq / bt, (double)nq / bc, same,
                   (unsigned long long)h);
            fflush(stdout);
        }
        have0 = 1;
    }
    ivfpq_free(idx);
    vec_free(&xb);
    vec_free(&xq);
    vec_free(&gt);
    free(D);
    free(D0);
    free(I);
    free(I0);
    return 0;
}

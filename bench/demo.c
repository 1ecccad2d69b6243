/*
 * make demo: the main job end to end on built-in data.
 *
 * Makes a seeded RVC-like synthetic set (100,000 x 256 in 1000 clusters and
 * 1000 held-out queries), computes exact ground truth with a Flat index,
 * builds IVF1024,PQ128x4fs,RFlat, sweeps nprobe and prints recall and speed.
 * Options: -n N -q NQ -d D -f SPEC -k K --k-factor F --seed S
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivfpq.h"
#include "synth.h"

static void die(const char *what, int rc)
{
    fprintf(stderr, "demo: %s: %s\n", what, ivfpq_strerror(rc));
    exit(1);
}

static void on_log(void *user, int level, int status, const char *msg)
{
    (void)user;
    (void)status;
    fprintf(stderr, "demo: %s: %s\n", level == IVFPQ_LOG_ERROR ? "error" : "warning", msg);
}

int main(int argc, char **argv)
{
    size_t nb = 100000, nq = 1000, d = 256, k = 10;
    float kf = 4.0f;
    uint64_t seed = 42;
    const char *spec = "IVF1024,PQ128x4fs,RFlat";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "demo: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "-n")) nb = strtoul(v, NULL, 10);
        else if (!strcmp(a, "-q")) nq = strtoul(v, NULL, 10);
        else if (!strcmp(a, "-d")) d = strtoul(v, NULL, 10);
        else if (!strcmp(a, "-k")) k = strtoul(v, NULL, 10);
        else if (!strcmp(a, "-f")) spec = v;
        else if (!strcmp(a, "--k-factor")) kf = strtof(v, NULL);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else { fprintf(stderr, "demo: unknown option %s\n", a); return 2; }
        i++;
    }
    printf("libivfpq %s demo, SIMD level: %s\n", ivfpq_version_string(),
           ivfpq_simd_name(ivfpq_simd_init()));
    printf("data: %zu base + %zu held-out queries, d=%zu, 1000 clusters (seed %llu)\n", nb, nq, d,
           (unsigned long long)seed);
    float *all = malloc((nb + nq) * d * sizeof(float));
    if (!all || synth_generate(nb + nq, d, 1000, seed, all)) { fprintf(stderr, "demo: out of memory\n"); return 1; }
    const float *xq = all, *xb = all + nq * d;

    size_t gk = k < 100 ? 100 : k;
    float *gd = malloc(nq * gk * sizeof(float));
    int64_t *gi = malloc(nq * gk * sizeof(int64_t));
    ivfpq_options opt = {0};
    opt.log = on_log;
    ivfpq_index *flat;
    int rc;
    double t0 = synth_now();
    if ((rc = ivfpq_index_factory(&flat, (int)d, "Flat", IVFPQ_METRIC_L2, &opt))) die("Flat", rc);
    if ((rc = ivfpq_add(flat, nb, xb, NULL))) die("add", rc);
    if ((rc = ivfpq_search(flat, nq, xq, gk, NULL, gd, gi))) die("ground truth", rc);
    ivfpq_free(flat);
    printf("exact ground truth: %.2f s\n", synth_now() - t0);

    ivfpq_index *idx;
    if ((rc = ivfpq_index_factory(&idx, (int)d, spec, IVFPQ_METRIC_L2, &opt))) die(spec, rc);
    t0 = synth_now();
    if ((rc = ivfpq_train(idx, nb, xb))) die("train", rc);
    double ttrain = synth_now() - t0;
    t0 = synth_now();
    if ((rc = ivfpq_add(idx, nb, xb, NULL))) die("add", rc);
    double tadd = synth_now() - t0;
    ivfpq_info info;
    ivfpq_get_info(idx, &info);
    printf("index %s: train %.2f s, add %.2f s, %.1f bytes/vector (%.1f MB)\n\n", info.factory,
           ttrain, tadd, (double)info.memory_bytes / (double)nb, (double)info.memory_bytes / 1e6);

    float *D = malloc(nq * k * sizeof(float));
    int64_t *I = malloc(nq * k * sizeof(int64_t));
    printf("| nprobe | k_factor | R@1 | %zu-R@%zu | QPS |\n|---:|---:|---:|---:|---:|\n", k, k);
    static const size_t probes[] = {1, 2, 4, 8, 16, 32, 64};
    for (size_t pi = 0; pi < sizeof probes / sizeof probes[0]; pi++) {
        ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
        p.nprobe = probes[pi];
        p.k_factor = kf;
        double best = 1e30;
        int reps = 0;
        double tstart = synth_now();
        do { /* best of several passes, at least 0.2 s in all */
            t0 = synth_now();
            if ((rc = ivfpq_search(idx, nq, xq, k, &p, D, I))) die("search", rc);
            double t = synth_now() - t0;
            if (t < best) best = t;
            reps++;
        } while (reps < 3 || (synth_now() - tstart < 0.2 && reps < 50));
        size_t r1 = 0, rk = 0;
        for (size_t q = 0; q < nq; q++) {
            if (I[q * k] == gi[q * gk]) r1++;
            for (size_t a = 0; a < k; a++)
                for (size_t b = 0; b < k; b++)
                    if (I[q * k + a] == gi[q * gk + b]) { rk++; break; }
        }
        printf("| %zu | %g | %.3f | %.3f | %.0f |\n", p.nprobe, (double)kf, (double)r1 / (double)nq,
               (double)rk / (double)(nq * k), (double)nq / best);
    }
    ivfpq_free(idx);
    free(all);
    free(gd);
    free(gi);
    free(D);
    free(I);
    return 0;
}

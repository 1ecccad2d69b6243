/*
 * make bench-embedded: the worked example of docs/EMBEDDING.md measured --
 * N x 256-d vectors (default 65,536) as IVF1024,PQ128x4fs without refine:
 * bytes per vector and in total (predicted by ivfpq_footprint_of, then
 * measured), and the latency of one query searched the embedded way: a
 * zero-copy image loaded with ivfpq_load_static, ivfpq_search_ws in a
 * fixed workspace, nq = 1, k = 10, at the scalar and the best SIMD level.
 * Latency is thread CPU time per query (robust on a shared machine):
 * median and 99th percentile over the queries. Not a test: numbers only.
 *
 * Usage: embedded_bench [N] [NQ]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ivfpq.h"
#include "synth.h"

#define D 256
#define K 10
#define SPEC "IVF1024,PQ128x4fs"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "embedded_bench: %s: %s\n", what, ivfpq_strerror(rc));
    exit(1);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct buf { unsigned char *p; size_t len, cap; } buf;
static int put(void *user, const void *data, size_t len)
{
    buf *b = user;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : (size_t)1 << 20;
        while (cap < b->len + len) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 65536, nq = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
    if (n < 1024 || nq < 1) {
        fprintf(stderr, "usage: embedded_bench [N >= 1024] [NQ >= 1]\n");
        return 2;
    }
    float *x = malloc((n + nq) * D * sizeof(float));
    if (!x || synth_generate(n + nq, D, 1000, 7, x)) die("data", IVFPQ_E_NOMEM);
    const float *q = x + n * D;

    printf("== %s, %zu x %d-d, %zu queries, k = %d\n", SPEC, n, D, nq, K);
    double t0 = cpu_now();
    ivfpq_index *idx;
    int rc = ivfpq_index_factory(&idx, D, SPEC, IVFPQ_METRIC_L2, NULL);
    if (!rc) rc = ivfpq_train(idx, n, x);
    if (!rc) rc = ivfpq_add(idx, n, x, NULL);
    if (rc) die("build", rc);
    printf("built in %.1f s CPU (%s)\n", cpu_now() - t0, ivfpq_simd_name(ivfpq_simd_active()));

    /* 1. memory: predicted before anything runs, then measured */
    ivfpq_footprint_query fq;
    memset(&fq, 0, sizeof fq);
    fq.factory = SPEC;
    fq.d = D;
    fq.metric = IVFPQ_METRIC_L2;
    fq.ntotal = n;
    fq.nq = 1;
    fq.k = K;
    fq.params.nprobe = 64;
    fq.params.k_factor = 1.0f;
    ivfpq_footprint fw;
    if ((rc = ivfpq_footprint_of(&fq, &fw))) die("footprint", rc);
    buf img = {0};
    if ((rc = ivfpq_save(idx, IVFPQ_FORMAT_NATIVE, put, &img))) die("save", rc);
    unsigned char *image = aligned_alloc(64, (img.len + 63) / 64 * 64);
    if (!image) die("image", IVFPQ_E_NOMEM);
    memcpy(image, img.p, img.len);
    free(img.p);
    ivfpq_info info;
    ivfpq_get_info(idx, &info);
    printf("\n| figure | predicted (worst case over list sizes) | measured |\n|---|---:|---:|\n");
    printf("| native image, bytes | %zu | %zu |\n", fw.image_bytes, img.len);
    printf("| image bytes per vector | %.2f | %.2f |\n", (double)fw.image_bytes / (double)n,
           (double)img.len / (double)n);
    printf("| index in RAM after one add (memory_bytes) | %zu | %zu |\n", fw.built_bytes, info.memory_bytes);
    printf("| search workspace, nq = 1, k = 10, nprobe <= 64 | %zu | - |\n", fw.workspace_bytes);

    unsigned char *arena = malloc(fw.arena_zero_copy);
    ivfpq_index *z;
    if (!arena || (rc = ivfpq_load_static(&z, arena, fw.arena_zero_copy, image, img.len,
                                          IVFPQ_LOAD_ZERO_COPY, NULL)))
        die("load_static", rc);
    printf("| RAM of the zero-copy index + workspace (ivfpq_load_static arena) | %zu | (fits) |\n\n",
           fw.arena_zero_copy);

    /* 2. latency, one query at a time, as firmware would */
    void *ws = malloc(fw.workspace_bytes);
    double *lat = malloc(nq * sizeof(double));
    if (!ws || !lat) die("workspace", IVFPQ_E_NOMEM);
    ivfpq_simd_level best = ivfpq_simd_active(), levels[2] = {IVFPQ_SIMD_SCALAR, best};
    printf("| SIMD level | nprobe | median us/query | p99 us/query |\n|---|---:|---:|---:|\n");
    for (int li = 0; li < (best == IVFPQ_SIMD_SCALAR ? 1 : 2); li++) {
        if ((rc = ivfpq_simd_force(levels[li]))) die("simd", rc);
        static const size_t probes[] = {1, 4, 16, 64};
        for (size_t pi = 0; pi < 4; pi++) {
            ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
            p.nprobe = probes[pi];
            size_t need;
            if ((rc = ivfpq_search_workspace_size(z, 1, K, &p, &need)) || need > fw.workspace_bytes)
                die("workspace size", rc ? rc : IVFPQ_E_WORKSPACE);
            float Dd[K];
            int64_t I[K];
            for (size_t i = 0; i < nq; i++) {
                double a = cpu_now();
                rc = ivfpq_search_ws(z, 1, q + i * D, K, &p, Dd, I, ws, need);
                lat[i] = (cpu_now() - a) * 1e6;
                if (rc) die("search", rc);
            }
            qsort(lat, nq, sizeof(double), cmp_d);
            printf("| %s | %zu | %.1f | %.1f |\n", ivfpq_simd_name(levels[li]), p.nprobe, lat[nq / 2],
                   lat[(nq * 99) / 100 < nq ? (nq * 99) / 100 : nq - 1]);
        }
    }
    ivfpq_free(z);
    ivfpq_free(idx);
    free(arena);
    free(image);
    free(ws);
    free(lat);
    free(x);
    return 0;
}

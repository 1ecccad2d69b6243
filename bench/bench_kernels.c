/*
 * make bench-kernels: speed of the compute kernels at every SIMD level of
 * this CPU (not a test: numbers only).
 *
 *  - FastScan: fs_scan over a list of 32-vector blocks with thresholds that
 *    nothing passes (pure accumulate + compare), M2 = 32, 64, 128, with 1, 2,
 *    4, 8 queries per pass, thresholds that (almost) nothing passes and
 *    that allow no early exit; ns per block and per code (vector x query), and
 *    the same in core cycles against the bound set by the shuffle port.
 *  - Float tiles: the coarse-quantizer shape (32 queries x 512 centroids,
 *    d = 256) and the refine shape (1 x 1), in GFLOP/s.
 *  - LUT build: lut_l2 for M = 128, dsub = 2.
 *
 * The core clock and the vpshufb throughput are measured here, with
 * dependent-add and independent-shuffle loops (perf counters may be absent
 * in VMs). Times are thread CPU time, median of 7 runs (--stat min: the
 * best). Options: --reps-ms T (time per measurement, default 200),
 * --level NAME (only that level), --what fs,tile,lut (sections).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"
#include "synth.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BENCH_X86 1
#endif

static double g_min_time = 0.2;

static void *xalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) { fprintf(stderr, "bench_kernels: out of memory\n"); exit(1); }
    return p;
}

/* Median of 5 timed runs of fn, each repeated until it lasts g_min_time/5. */
typedef void (*work_fn)(void *arg);
static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static int g_use_min; /* --stat min: best of the runs instead of the median */

/* CPU time of this thread: the machine is shared, and wall time also counts
 * the time other processes hold the core. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double time_per_call(work_fn fn, void *arg)
{
    size_t reps = 1;
    for (;;) { /* calibrate */
        double t0 = cpu_now();
        for (size_t i = 0; i < reps; i++) fn(arg);
        double t = cpu_now() - t0;
        if (t > g_min_time / 20) break;
        reps *= 2;
    }
    double s[7];
    for (int k = 0; k < 7; k++) {
        double t0 = cpu_now();
        for (size_t i = 0; i < reps; i++) fn(arg);
        s[k] = (cpu_now() - t0) / (double)reps;
    }
    qsort(s, 7, sizeof s[0], cmp_d);
    return g_use_min ? s[0] : s[3];
}

/* ------------------------------------------------------- clock, ports */

static volatile uint64_t g_sink;

/* 1-cycle dependent adds: the time per add is the core cycle. */
static void add_chain(void *arg)
{
    uint64_t x = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < 100000; i++) {
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                         : "+r"(x));
    }
    g_sink = x;
}

#ifdef BENCH_X86
/* 12 independent chains of one op, spelled out so they stay in registers. */
#define CHAINS 12
#define PORT_LOOP(T, OP, INIT)                                                          \
    T a0 = INIT, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, \
      a9 = a0, a10 = a0, a11 = a0, kk = a0;                                             \
    for (int i = 0; i < 100000; i++) {                                                  \
        a0 = OP(a0, kk); a1 = OP(a1, kk); a2 = OP(a2, kk); a3 = OP(a3, kk);             \
        a4 = OP(a4, kk); a5 = OP(a5, kk); a6 = OP(a6, kk); a7 = OP(a7, kk);             \
        a8 = OP(a8, kk); a9 = OP(a9, kk); a10 = OP(a10, kk); a11 = OP(a11, kk);         \
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4),         \
                         "+v"(a5), "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10),   \
                         "+v"(a11));                                                    \
    }                                                                                   \
    __asm__ volatile("" ::"v"(a0));                                                     \
    (void)arg;

#define SRL1(a, b) _mm512_srli_epi16(_mm512_or_si512(a, b), 1)
__attribute__((target("avx512bw"))) static void shuf512(void *arg)
{
    PORT_LOOP(__m512i, _mm512_shuffle_epi8, _mm512_set1_epi8(1))
}
__attribute__((target("avx2"))) static void shuf256(void *arg)
{
    PORT_LOOP(__m256i, _mm256_shuffle_epi8, _mm256_set1_epi8(1))
}
__attribute__((target("ssse3"))) static void shuf128(void *arg)
{
    PORT_LOOP(__m128i, _mm_shuffle_epi8, _mm_set1_epi8(1))
}
__attribute__((target("avx512bw"))) static void add512(void *arg)
{
    PORT_LOOP(__m512i, _mm512_add_epi16, _mm512_set1_epi8(1))
}
__attribute__((target("avx512bw"))) static void srl512(void *arg)
{
    PORT_LOOP(__m512i, SRL1, _mm512_set1_epi8(1))
}
__attribute__((target("avx512f"))) static void addps512(void *arg)
{
    PORT_LOOP(__m512, _mm512_add_ps, _mm512_set1_ps(1.0001f))
}
#endif

/* ------------------------------------------------------------ FastScan */

typedef struct fs_arg {
    const ivfpq_kernels *K;
    const uint8_t *codes;
    size_t nblocks, M2, nq;
    const uint8_t *lut[IVFPQ_FS_MAX_NQ];
    uint16_t *out;
} fs_arg;

static size_t g_calls;
static void count_sink(ivfpq_fs_ctx *ctx, size_t qi, size_t block, uint32_t mask,
                       const uint16_t *sums)
{
    (void)ctx; (void)qi; (void)block; (void)mask; (void)sums;
    g_calls++; /* rare: thresholds are ~4.3 sigma below the mean sum */
}

static void run_fs_scan(void *p)
{
    fs_arg *a = p;
    ivfpq_fs_ctx ctx;
    ctx.nq = a->nq;
    ctx.sink = count_sink;
    for (size_t q = 0; q < a->nq; q++) {
        ctx.lut[q] = a->lut[q];
        /* LUT entries are uniform in 1..255: sums are ~128 * M2 +- 74 sqrt(M2),
         * so hardly any lane passes, and partial sums at 3/4 of the
         * sub-quantizers stay below: no early exit either (worst case) */
        ctx.thr[q] = (int32_t)(100 * a->M2);
    }
    a->K->fs_scan(a->codes, a->nblocks, a->M2, &ctx);
}

static void run_fs_acc(void *p)
{
    fs_arg *a = p;
    a->K->fs_accumulate(a->codes, a->nblocks, a->M2, a->lut[0], a->out);
}

/* ---------------------------------------------------------------- tiles */

typedef struct tile_arg {
    const ivfpq_kernels *K;
    const float *x, *y;
    size_t nx, ny, d;
    float *out;
    int l2;
} tile_arg;

static void run_tile(void *p)
{
    tile_arg *a = p;
    (a->l2 ? a->K->l2sqr_tile : a->K->dot_tile)(a->x, a->nx, a->y, a->ny, a->d, a->out, a->ny);
}

/* Refine shape: 1 x 1 over 64 different rows (so loads are not folded). */
static void run_tile11(void *p)
{
    tile_arg *a = p;
    for (size_t j = 0; j < 64; j++)
        (a->l2 ? a->K->l2sqr_tile : a->K->dot_tile)(a->x, 1, a->y + j * a->d, 1, a->d, a->out + j, 1);
}

typedef struct lut_arg {
    const ivfpq_kernels *K;
    const float *q, *cb;
    float *lut;
} lut_arg;

static void run_lut(void *p)
{
    lut_arg *a = p;
    a->K->lut_l2(a->q, a->cb, 128, 2, a->lut);
}

int main(int argc, char **argv)
{
    const char *only = NULL, *what = "fs,tile,lut";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--reps-ms")) g_min_time = atof(argv[i + 1]) / 1000.0;
        else if (!strcmp(argv[i], "--level")) only = argv[i + 1];
        else if (!strcmp(argv[i], "--what")) what = argv[i + 1];
        else if (!strcmp(argv[i], "--stat")) g_use_min = !strcmp(argv[i + 1], "min");
        else { fprintf(stderr, "usage: bench_kernels [--reps-ms T] [--level NAME] [--what fs,tile,lut] [--stat median|min]\n"); return 2; }
    }
    double ns_cycle = time_per_call(add_chain, NULL) / 800000.0 * 1e9;
    double ghz = 1.0 / ns_cycle;
    printf("core clock (dependent adds): %.2f GHz\n", ghz);
    double shuf_zmm = 0, shuf_ymm = 0, shuf_xmm = 0;
#ifdef BENCH_X86
    double per = 100000.0 * CHAINS;
    if (ivfpq_simd_supported(IVFPQ_SIMD_AVX512)) {
        shuf_zmm = per / (time_per_call(shuf512, NULL) * 1e9 / ns_cycle);
        printf("vpshufb zmm: %.2f per cycle; vpaddw zmm: %.2f; vpsrlw zmm: %.2f; vaddps zmm: %.2f\n",
               shuf_zmm, per / (time_per_call(add512, NULL) * 1e9 / ns_cycle),
               per / (time_per_call(srl512, NULL) * 1e9 / ns_cycle),
               per / (time_per_call(addps512, NULL) * 1e9 / ns_cycle));
    }
    if (ivfpq_simd_supported(IVFPQ_SIMD_AVX2)) {
        shuf_ymm = per / (time_per_call(shuf256, NULL) * 1e9 / ns_cycle);
        printf("vpshufb ymm: %.2f per cycle\n", shuf_ymm);
    }
    if (ivfpq_simd_supported(IVFPQ_SIMD_SSE)) {
        shuf_xmm = per / (time_per_call(shuf128, NULL) * 1e9 / ns_cycle);
        printf("pshufb xmm: %.2f per cycle\n", shuf_xmm);
    }
#endif

    synth_rng r;
    synth_seed(&r, 1);
    const size_t nblocks = 64, maxM2 = 128;
    uint8_t *codes = xalloc(nblocks * 16 * maxM2);
    for (size_t i = 0; i < nblocks * 16 * maxM2; i++) codes[i] = (uint8_t)synth_next(&r);
    uint8_t *luts = xalloc(IVFPQ_FS_MAX_NQ * maxM2 * 16);
    for (size_t i = 0; i < IVFPQ_FS_MAX_NQ * maxM2 * 16; i++) luts[i] = (uint8_t)(1 + synth_next(&r) % 255);
    uint16_t *out = xalloc(nblocks * 32 * sizeof(uint16_t));
    const size_t nx = 32, ny = 512, d = 256;
    float *x = xalloc(nx * d * sizeof(float));
    float *y = xalloc(ny * d * sizeof(float));
    float *tout = xalloc(nx * ny * sizeof(float));
    for (size_t i = 0; i < nx * d; i++) x[i] = (float)synth_normal(&r);
    for (size_t i = 0; i < ny * d; i++) y[i] = (float)synth_normal(&r);

    for (int l = IVFPQ_SIMD_SCALAR; l <= IVFPQ_SIMD_NEON; l++) {
        const ivfpq_kernels *K = ivfpq__kernels_for((ivfpq_simd_level)l);
        if (!K || (only && strcmp(only, ivfpq_simd_name(K->level)))) continue;
        printf("\n## level %s\n\n", ivfpq_simd_name(K->level));
        /* shuffles per (query, 32-vector block, 4 sub-quantizers) */
        double shuf_rate = 0, shufs_per4 = 0;
        if (l == IVFPQ_SIMD_AVX512) shuf_rate = shuf_zmm, shufs_per4 = 2;
        if (l == IVFPQ_SIMD_AVX2) shuf_rate = shuf_ymm, shufs_per4 = 4;
        if (l == IVFPQ_SIMD_SSE) shuf_rate = shuf_xmm, shufs_per4 = 8;
        if (strstr(what, "fs")) {
        printf("FastScan fs_scan, %zu blocks (list of %zu vectors), threshold 100*M2 (no lane passes, no early exit)\n\n",
               nblocks, nblocks * 32);
        printf("| M2 | queries/pass | ns/block/query | ns/code | cycles/block/query | shuffle bound (cycles) | ratio |\n");
        printf("|---:|---:|---:|---:|---:|---:|---:|\n");
        static const size_t M2s[] = {32, 64, 128}, nqs[] = {1, 2, 4, 8};
        for (size_t mi = 0; mi < 3; mi++)
            for (size_t qi = 0; qi < 4; qi++) {
                fs_arg a;
                memset(&a, 0, sizeof a);
                a.K = K;
                a.codes = codes;
                a.nblocks = nblocks;
                a.M2 = M2s[mi];
                a.nq = nqs[qi];
                for (size_t q = 0; q < a.nq; q++) a.lut[q] = luts + q * maxM2 * 16;
                if (l == IVFPQ_SIMD_SCALAR && a.nq > 1) continue;
                double t = time_per_call(run_fs_scan, &a);
                double per_bq = t / (double)(nblocks * a.nq) * 1e9;
                double cyc = per_bq / ns_cycle;
                double bound = shuf_rate > 0 ? (double)a.M2 / 4 * shufs_per4 / shuf_rate : 0;
                printf("| %zu | %zu | %.1f | %.3f | %.0f | %.0f | %.2f |\n", a.M2, a.nq, per_bq,
                       per_bq / 32, cyc, bound, bound > 0 ? cyc / bound : 0.0);
            }
        {
            fs_arg a;
            memset(&a, 0, sizeof a);
            a.K = K;
            a.codes = codes;
            a.nblocks = nblocks;
            a.M2 = 128;
            a.lut[0] = luts;
            a.out = out;
            double t = time_per_call(run_fs_acc, &a);
            printf("\nfs_accumulate M2=128: %.1f ns/block (%.0f cycles)\n", t / nblocks * 1e9,
                   t / nblocks * 1e9 / ns_cycle);
        }
        }
        if (strstr(what, "tile")) {
        printf("\nFloat tiles (GFLOP/s counts sub, mul and add each as one)\n\n");
        printf("| kernel | shape | GFLOP/s | ns/call |\n|---|---|---:|---:|\n");
        for (int l2 = 0; l2 < 2; l2++) {
            tile_arg a = {K, x, y, nx, ny, d, tout, l2};
            double t = time_per_call(run_tile, &a);
            double flops = (double)nx * ny * d * (l2 ? 3 : 2);
            printf("| %s | %zux%zu, d=%zu | %.1f | %.0f |\n", l2 ? "l2sqr_tile" : "dot_tile", nx, ny, d,
                   flops / t * 1e-9, t * 1e9);
            t = time_per_call(run_tile11, &a) / 64;
            printf("| %s | 1x1, d=%zu | %.1f | %.1f |\n", l2 ? "l2sqr_tile" : "dot_tile", d,
                   (double)d * (l2 ? 3 : 2) / t * 1e-9, t * 1e9);
        }
        }
        if (strstr(what, "lut")) {
            lut_arg a = {K, x, y, tout};
            double t = time_per_call(run_lut, &a);
            printf("\nlut_l2 M=128 dsub=2: %.0f ns\n", t * 1e9);
        }
    }
    return 0;
}

/*
 * Every SIMD kernel set against the scalar reference, bit for bit: FastScan
 * sums and sink call sequences, float tiles, LUTs, and whole indexes
 * (training and search) built under each level.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"
#include "synth.h"
#include "testutil.h"

static const ivfpq_kernels *ref(void)
{
    const ivfpq_kernels *k = ivfpq__kernels_for(IVFPQ_SIMD_SCALAR);
    assert_non_null(k);
    return k;
}

/* The SIMD levels this build and CPU have (scalar excluded). */
static size_t simd_levels(const ivfpq_kernels **out)
{
    size_t n = 0;
    for (int l = IVFPQ_SIMD_SCALAR + 1; l <= IVFPQ_SIMD_NEON; l++) {
        const ivfpq_kernels *k = ivfpq__kernels_for((ivfpq_simd_level)l);
        if (k) {
            assert_int_equal(k->level, l);
            out[n++] = k;
        }
    }
    return n;
}

static uint32_t rnd(synth_rng *r, uint32_t n) { return (uint32_t)(synth_next(r) % n); }

/* Floats with a wide spread of magnitudes and signs, so that any change in
 * the order of additions shows in the last bits. */
static float rnd_float(synth_rng *r)
{
    float m = (float)(synth_uniform(r) * 2.0 - 1.0);
    return ldexpf(m, (int)rnd(r, 24) - 12);
}

/* Codes at an odd address, to exercise unaligned loads. */
static uint8_t *rnd_bytes(synth_rng *r, size_t n, uint8_t **base)
{
    *base = malloc(n + 1);
    assert_non_null(*base);
    uint8_t *p = *base + 1;
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)synth_next(r);
    return p;
}

/* LUT of M2 rows: rows >= M zero (odd M), values random or all 255. */
static uint8_t *rnd_lut(synth_rng *r, size_t M, size_t M2, int full, uint8_t **base)
{
    uint8_t *lut = rnd_bytes(r, M2 * 16, base);
    if (full) memset(lut, 255, M * 16);
    memset(lut + M * 16, 0, (M2 - M) * 16);
    return lut;
}

static const size_t test_M[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129};

/* ------------------------------------------------------ fs_accumulate */

static void fs_accumulate_matches(void **state)
{
    (void)state;
    const ivfpq_kernels *lv[8];
    size_t nl = simd_levels(lv);
    synth_rng r;
    synth_seed(&r, 101);
    for (size_t mi = 0; mi < sizeof test_M / sizeof test_M[0]; mi++) {
        size_t M = test_M[mi], M2 = (M + 1) & ~(size_t)1;
        for (int full = 0; full < 2; full++) {
            size_t nblocks = 1 + rnd(&r, 5);
            uint8_t *cb, *lb;
            uint8_t *codes = rnd_bytes(&r, nblocks * 16 * M2, &cb);
            uint8_t *lut = rnd_lut(&r, M, M2, full, &lb);
            uint16_t *want = malloc(nblocks * 32 * sizeof(uint16_t));
            uint16_t *got = malloc(nblocks * 32 * sizeof(uint16_t));
            ref()->fs_accumulate(codes, nblocks, M2, lut, want);
            if (full) /* every code hits 255: the sums are known */
                for (size_t v = 0; v < nblocks * 32; v++) assert_int_equal(want[v], 255 * M);
            for (size_t l = 0; l < nl; l++) {
                memset(got, 0xa5, nblocks * 32 * sizeof(uint16_t));
                lv[l]->fs_accumulate(codes, nblocks, M2, lut, got);
                if (memcmp(want, got, nblocks * 32 * sizeof(uint16_t)) != 0)
                    fail_msg("fs_accumulate %s: M2=%zu nblocks=%zu differs from scalar",
                             ivfpq_simd_name(lv[l]->level), M2, nblocks);
            }
            free(cb);
            free(lb);
            free(want);
            free(got);
        }
    }
}

/* The layout itself: a code set with ivfpq__pq4_set comes back in the sum
 * of the right vector, at every level. */
static void fs_layout_single_codes(void **state)
{
    (void)state;
    const ivfpq_kernels *lv[8];
    size_t nl = simd_levels(lv);
    lv[nl++] = ref();
    const size_t M2 = 6;
    uint8_t codes[2 * 16 * 6], lut[6 * 16];
    for (size_t m = 0; m < M2; m++)
        for (size_t j = 0; j < 16; j++) lut[m * 16 + j] = (uint8_t)(j ? 1u << m : 0);
    for (size_t v = 0; v < 64; v += 3) {
        memset(codes, 0, sizeof codes);
        for (size_t m = 0; m < M2; m++) ivfpq__pq4_set(codes, M2, v, m, (unsigned)(1 + (m + v) % 15));
        for (size_t l = 0; l < nl; l++) {
            uint16_t s[64];
            lv[l]->fs_accumulate(codes, 2, M2, lut, s);
            for (size_t u = 0; u < 64; u++) assert_int_equal(s[u], u == v ? 63 : 0);
        }
    }
}

/* ------------------------------------------------------------ fs_scan */

typedef struct call {
    size_t qi, block;
    uint32_t mask;
    uint16_t sums[32];
} call;

typedef struct rec_ctx {
    ivfpq_fs_ctx ctx; /* first */
    call *calls;
    size_t n, cap;
    size_t nblocks;
} rec_ctx;

/* Records the call and lowers the threshold as a top-k would, sometimes
 * retiring the query; deterministic in its inputs. */
static void rec_sink(ivfpq_fs_ctx *ctx, size_t qi, size_t block, uint32_t mask,
                     const uint16_t *sums)
{
    rec_ctx *R = (rec_ctx *)ctx;
    assert_true(R->n < R->cap);
    assert_true(qi < ctx->nq);
    assert_true(block < R->nblocks);
    assert_int_not_equal(mask, 0);
    call *c = &R->calls[R->n++];
    c->qi = qi;
    c->block = block;
    c->mask = mask;
    memcpy(c->sums, sums, sizeof c->sums);
    uint32_t lo = 65535;
    for (int v = 0; v < 32; v++)
        if (mask >> v & 1 && sums[v] < lo) lo = sums[v];
    int32_t t = ctx->thr[qi];
    if ((block + qi + (size_t)lo) % 7 == 3) t = -1;
    else t = ((int32_t)lo + t) / 2;
    ctx->thr[qi] = t;
}

static size_t run_scan(const ivfpq_kernels *K, const uint8_t *codes, size_t nblocks, size_t M2,
                       const uint8_t *const *luts, const int32_t *thr0, size_t nq, call *calls,
                       size_t cap, int32_t *thr_end)
{
    rec_ctx R;
    memset(&R, 0, sizeof R);
    R.ctx.nq = nq;
    R.ctx.sink = rec_sink;
    for (size_t q = 0; q < nq; q++) {
        R.ctx.lut[q] = luts[q];
        R.ctx.thr[q] = thr0[q];
    }
    R.calls = calls;
    R.cap = cap;
    R.nblocks = nblocks;
    K->fs_scan(codes, nblocks, M2, &R.ctx);
    memcpy(thr_end, R.ctx.thr, nq * sizeof(int32_t));
    return R.n;
}

static void fs_scan_matches(void **state)
{
    (void)state;
    const ivfpq_kernels *lv[8];
    size_t nl = simd_levels(lv);
    synth_rng r;
    synth_seed(&r, 202);
    for (int rep = 0; rep < 120; rep++) {
        size_t M = test_M[rnd(&r, sizeof test_M / sizeof test_M[0])], M2 = (M + 1) & ~(size_t)1;
        size_t nblocks = 1 + rnd(&r, 7), nq = 1 + rnd(&r, IVFPQ_FS_MAX_NQ);
        uint8_t *cb, *lb[IVFPQ_FS_MAX_NQ];
        const uint8_t *luts[IVFPQ_FS_MAX_NQ];
        uint8_t *codes = rnd_bytes(&r, nblocks * 16 * M2, &cb);
        int32_t thr0[IVFPQ_FS_MAX_NQ];
        for (size_t q = 0; q < nq; q++) {
            luts[q] = rnd_lut(&r, M, M2, 0, &lb[q]);
            /* around the typical sum, plus the edge cases */
            switch (rnd(&r, 9)) {
            case 0: thr0[q] = -1; break;
            case 1: thr0[q] = 0; break;
            case 2: thr0[q] = 65535; break;
            case 3: thr0[q] = 100000; break; /* above any sum: all lanes pass */
            case 4: /* between the mean partial sums at 1/2 and 3/4: early exits */
                thr0[q] = (int32_t)(M * 80 + rnd(&r, (uint32_t)M * 12 + 1));
                break;
            default: thr0[q] = (int32_t)(M * 128 - M * 16 + rnd(&r, (uint32_t)M * 32 + 1)); break;
            }
        }
        size_t cap = nblocks * nq;
        call *want = calloc(cap, sizeof(call)), *got = calloc(cap, sizeof(call));
        int32_t te_want[IVFPQ_FS_MAX_NQ], te_got[IVFPQ_FS_MAX_NQ];
        size_t nw = run_scan(ref(), codes, nblocks, M2, luts, thr0, nq, want, cap, te_want);

        /* the scalar calls themselves: mask = lanes <= threshold in force */
        uint16_t *all = malloc(nblocks * 32 * sizeof(uint16_t));
        for (size_t i = 0; i < nw; i++) {
            ref()->fs_accumulate(codes, nblocks, M2, luts[want[i].qi], all);
            assert_memory_equal(want[i].sums, all + want[i].block * 32, 64);
        }
        free(all);

        for (size_t l = 0; l < nl; l++) {
            memset(got, 0, cap * sizeof(call));
            size_t ng = run_scan(lv[l], codes, nblocks, M2, luts, thr0, nq, got, cap, te_got);
            if (ng != nw || memcmp(want, got, nw * sizeof(call)) != 0 ||
                memcmp(te_want, te_got, nq * sizeof(int32_t)) != 0)
                fail_msg("fs_scan %s: M2=%zu nblocks=%zu nq=%zu: %zu calls, scalar made %zu",
                         ivfpq_simd_name(lv[l]->level), M2, nblocks, nq, ng, nw);
        }
        free(want);
        free(got);
        free(cb);
        for (size_t q = 0; q < nq; q++) free(lb[q]);
    }
}

/* A sink that checks the mask against the threshold it was computed with. */
typedef struct mask_ctx {
    ivfpq_fs_ctx ctx;
    int32_t seen_thr[IVFPQ_FS_MAX_NQ];
    size_t ncalls;
} mask_ctx;

static void mask_sink(ivfpq_fs_ctx *ctx, size_t qi, size_t block, uint32_t mask,
                      const uint16_t *sums)
{
    mask_ctx *R = (mask_ctx *)ctx;
    (void)block;
    for (int v = 0; v < 32; v++) {
        int pass = (int32_t)sums[v] <= ctx->thr[qi];
        assert_int_equal((mask >> v) & 1, pass);
    }
    R->ncalls++;
    ctx->thr[qi] -= 3; /* may go negative: the query then stops */
}

static void fs_scan_masks(void **state)
{
    (void)state;
    const ivfpq_kernels *lv[8];
    size_t nl = simd_levels(lv);
    lv[nl++] = ref();
    synth_rng r;
    synth_seed(&r, 303);
    const size_t M2 = 8, nblocks = 40;
    uint8_t *cb, *lb;
    uint8_t *codes = rnd_bytes(&r, nblocks * 16 * M2, &cb);
    uint8_t *lut = rnd_lut(&r, M2, M2, 0, &lb);
    for (size_t l = 0; l < nl; l++) {
        mask_ctx R;
        memset(&R, 0, sizeof R);
        R.ctx.nq = IVFPQ_FS_MAX_NQ;
        R.ctx.sink = mask_sink;
        for (size_t q = 0; q < IVFPQ_FS_MAX_NQ; q++) {
            R.ctx.lut[q] = lut;
            R.ctx.thr[q] = (int32_t)(q * 150); /* 0 and small ones retire early */
        }
        lv[l]->fs_scan(codes, nblocks, M2, &R.ctx);
        assert_true(R.ncalls > 0);
    }
    free(cb);
    free(lb);
}

static int cmp_u16(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* fs_kth at every level = the k-th of the sorted values: sizes around the
 * vector widths and past the SSE/NEON lane-count fold (32768 values),
 * spread, crowded, equal and extreme values, odd addresses. */
static void fs_kth_exact(void **state)
{
    (void)state;
    const ivfpq_kernels *lv[8];
    size_t nl = simd_levels(lv);
    lv[nl++] = ref();
    synth_rng r;
    synth_seed(&r, 404);
    static const size_t sizes[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 224, 2048, 40000};
    uint16_t *base = malloc((40000 + 1) * sizeof(uint16_t)), *sorted = malloc(40000 * sizeof(uint16_t));
    assert_non_null(base);
    assert_non_null(sorted);
    uint16_t *v = base + 1;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        for (int kind = 0; kind < 4; kind++) {
            for (size_t i = 0; i < n; i++) {
                uint32_t x = (uint32_t)synth_next(&r);
                v[i] = kind == 0   ? (uint16_t)x                          /* spread */
                       : kind == 1 ? (uint16_t)(30000 + x % 40)           /* crowded */
                       : kind == 2 ? (uint16_t)777                        /* equal */
                                   : (uint16_t)(x & 1 ? 65535 : x % 3);   /* extremes */
            }
            memcpy(sorted, v, n * sizeof(uint16_t));
            qsort(sorted, n, sizeof(uint16_t), cmp_u16);
            size_t ks[] = {1, 2, n / 2, n - 1, n};
            for (size_t ki = 0; ki < 5; ki++) {
                size_t k = ks[ki] < 1 ? 1 : ks[ki] > n ? n : ks[ki];
                for (size_t l = 0; l < nl; l++)
                    assert_int_equal(lv[l]->fs_kth(v, n, k), sorted[k - 1]);
            }
        }
    }
    free(base);
    free(sorted);
}

/* i8_tile of every table that has one (AVX512-VNNI, AVX-VNNI) against
 * int64 sums taken modulo 2^32: full byte ranges, every tile shape, an
 * offset output stride. Part of integer_tiles_exact, which always has the
 * int16 tiles to check. */
static void check_i8_tiles(synth_rng *r)
{
    for (int l = IVFPQ_SIMD_SCALAR; l <= IVFPQ_SIMD_NEON; l++) {
        const ivfpq_kernels *k = ivfpq__kernels_for((ivfpq_simd_level)l);
        if (!k || !k->i8_tile) continue;
        static const size_t dqs[] = {4, 8, 60, 256, 772};
        for (size_t di = 0; di < sizeof dqs / sizeof dqs[0]; di++)
            for (size_t nx = 1; nx <= 9; nx += 4)
                for (size_t nb = 1; nb <= 6; nb++) {
                    size_t dq = dqs[di], rows = nb * 16, ldo = rows + 3;
                    uint8_t *xb, *yb;
                    uint8_t *x = rnd_bytes(r, nx * dq, &xb);
                    int8_t *y = (int8_t *)(void *)rnd_bytes(r, rows * dq, &yb);
                    int32_t *corr = malloc(rows * sizeof(int32_t)), *out = malloc(nx * ldo * sizeof(int32_t));
                    assert_true(corr && out);
                    for (size_t c = 0; c < rows; c++) corr[c] = (int32_t)(synth_next(r) % 2000001) - 1000000;
                    k->i8_tile(x, nx, y, corr, nb, dq, out, ldo);
                    for (size_t i = 0; i < nx; i++)
                        for (size_t c = 0; c < rows; c++) {
                            int64_t want = -(int64_t)corr[c];
                            for (size_t j = 0; j < dq; j++)
                                want += (int64_t)x[i * dq + j] *
                                        y[(c / 16) * dq * 16 + (j / 4) * 64 + (c % 16) * 4 + j % 4];
                            assert_int_equal((uint32_t)out[i * ldo + c], (uint32_t)(uint64_t)want);
                        }
                    free(xb);
                    free(yb);
                    free(corr);
                    free(out);
                }
    }
}

/* ------------------------------------------------------------- floats */

static float *rnd_floats(synth_rng *r, size_t n, float **base)
{
    *base = malloc((n + 1) * sizeof(float));
    assert_non_null(*base);
    float *p = *base + 1; /* not 16-byte aligned */
    for (size_t i = 0; i < n; i++) p[i] = rnd_float(r);
    return p;
}

static void tiles_match(void **state)
{
    (void)state;
    const ivfpq_kernels *lv[8];
    size_t nl = simd_levels(lv);
    synth_rng r;
    synth_seed(&r, 404);
    static const size_t dims[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 47, 48,
                                  63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 300};
    for (int rep = 0; rep < 150; rep++) {
        size_t d = dims[rep % (sizeof dims / sizeof dims[0])];
        size_t nx = 1 + rnd(&r, 11), ny = 1 + rnd(&r, 19), ldo = ny + rnd(&r, 3);
        float *xb, *yb;
        float *x = rnd_floats(&r, nx * d, &xb), *y = rnd_floats(&r, ny * d, &yb);
        float *want = malloc(nx * ldo * sizeof(float)), *got = malloc(nx * ldo * sizeof(float));
        for (int op = 0; op < 2; op++) {
            memset(want, 0x7f, nx * ldo * sizeof(float));
            (op ? ref()->dot_tile : ref()->l2sqr_tile)(x, nx, y, ny, d, want, ldo);
            for (size_t l = 0; l < nl; l++) {
                memset(got, 0x7f, nx * ldo * sizeof(float)); /* padding must stay untouched */
                (op ? lv[l]->dot_tile : lv[l]->l2sqr_tile)(x, nx, y, ny, d, got, ldo);
                if (memcmp(want, got, nx * ldo * sizeof(float)) != 0)
                    fail_msg("%s %s: nx=%zu ny=%zu d=%zu ldo=%zu differs from scalar",
                             op ? "dot_tile" : "l2sqr_tile", ivfpq_simd_name(lv[l]->level), nx, ny,
                             d, ldo);
            }
        }
        free(xb);
        free(yb);
        free(want);
        free(got);
    }
}

/* Large tiles as the coarse quantizer calls them. */
static void tiles_match_large(void **state)
{
    (void)state;
    const ivfpq_kernels *lv[8];
    size_t nl = simd_levels(lv);
    synth_rng r;
    synth_seed(&r, 505);
    const size_t nx = 33, ny = 70, d = 96;
    float *xb, *yb;
    float *x = rnd_floats(&r, nx * d, &xb), *y = rnd_floats(&r, ny * d, &yb);
    float *want = malloc(nx * ny * sizeof(float)), *got = malloc(nx * ny * sizeof(float));
    for (int op = 0; op < 2; op++) {
        (op ? ref()->dot_tile : ref()->l2sqr_tile)(x, nx, y, ny, d, want, ny);
        for (size_t l = 0; l < nl; l++) {
            (op ? lv[l]->dot_tile : lv[l]->l2sqr_tile)(x, nx, y, ny, d, got, ny);
            assert_memory_equal(want, got, nx * ny * sizeof(float));
        }
    }
    free(xb);
    free(yb);
    free(want);
    free(got);
}

/* The coarse prefilter's int16 tile: every level gives the exact integer
 * sums (checked against int64 arithmetic), for values at the edge of the
 * range the prefilter uses (dp * R^2 < 2^31), odd row counts, every block
 * count up to 5 and a padded output stride. */
/* The coarse prefilter's integer tiles: i16_tile of every table (and the
 * plain AVX-512 one) against int64 sums, then the int8 tiles. */
static void integer_tiles_exact(void **state)
{
    (void)state;
    const ivfpq_kernels *lv[8];
    size_t nl = simd_levels(lv);
    synth_rng r;
    synth_seed(&r, 606);
    static const size_t dps[] = {2, 4, 6, 8, 16, 30, 32, 34, 64, 96, 128, 254, 256, 258, 768};
    for (int rep = 0; rep < 120; rep++) {
        size_t dp = dps[rep % (sizeof dps / sizeof dps[0])];
        size_t nx = 1 + rnd(&r, 11), nb = 1 + rnd(&r, 5), ldo = nb * 16 + rnd(&r, 3);
        int32_t R = (int32_t)sqrt(2147483647.0 / (double)dp);
        if (R > 32767) R = 32767;
        int16_t *x = malloc(nx * dp * sizeof(int16_t)), *y = malloc(nb * 16 * dp * sizeof(int16_t));
        int32_t *want = malloc(nx * ldo * sizeof(int32_t)), *got = malloc(nx * ldo * sizeof(int32_t));
        assert_true(x && y && want && got);
        int edge = rep % 3 == 0; /* all values at +-R: the largest sums */
        for (size_t i = 0; i < nx * dp; i++)
            x[i] = (int16_t)(edge ? (rnd(&r, 2) ? R : -R) : (int32_t)rnd(&r, 2 * (uint32_t)R + 1) - R);
        for (size_t i = 0; i < nb * 16 * dp; i++)
            y[i] = (int16_t)(edge ? (i % 7 ? R : -R) : (int32_t)rnd(&r, 2 * (uint32_t)R + 1) - R);
        for (size_t i = 0; i < nx; i++)
            for (size_t c = 0; c < nb * 16; c++) {
                int64_t sum = 0;
                for (size_t j = 0; j < dp; j++)
                    sum += (int64_t)x[i * dp + j] *
                           y[(c / 16) * dp * 16 + (j / 2) * 32 + (c % 16) * 2 + (j & 1)];
                assert_true(sum >= INT32_MIN && sum <= INT32_MAX);
                want[i * ldo + c] = (int32_t)sum;
            }
        /* every table, and the plain AVX-512 tile too: on a CPU with VNNI
         * the avx512 table holds the VNNI one */
        for (size_t l = 0; l <= nl + 1; l++) {
            const ivfpq_kernels *k = l < nl ? lv[l] : ref();
            ivfpq_i16_tile_fn fn = k->i16_tile;
            const char *name = ivfpq_simd_name(k->level);
            if (l == nl + 1) {
#ifdef IVFPQ_HAVE_AVX512
                if (!ivfpq_simd_supported(IVFPQ_SIMD_AVX512)) continue;
                fn = ivfpq__i16_tile_avx512;
                name = "avx512 (no VNNI)";
#else
                continue;
#endif
            }
            memset(got, 0x7f, nx * ldo * sizeof(int32_t));
            fn(x, nx, y, nb, dp, got, ldo);
            for (size_t i = 0; i < nx; i++)
                if (memcmp(want + i * ldo, got + i * ldo, nb * 16 * sizeof(int32_t)) != 0)
                    fail_msg("i16_tile %s: nx=%zu nb=%zu dp=%zu row %zu differs", name, nx, nb, dp,
                             i);
        }
        free(x);
        free(y);
        free(want);
        free(got);
    }
    check_i8_tiles(&r);
}

/* The prefilter's row quantizer keeps its contract at every level (it is
 * not bit-identical across levels, see kernels.h): the exact max |x - mu|,
 * integers in [-R, R] at the documented places (blocked or not), and sums
 * that match a double recomputation from those very integers. */
static void cpf_quant_contract(void **state)
{
    (void)state;
    const ivfpq_kernels *lv[8];
    size_t nl = simd_levels(lv);
    synth_rng r;
    synth_seed(&r, 707);
    for (int rep = 0; rep < 200; rep++) {
        size_t d = 1 + rnd(&r, 300), dp = d + (d & 1);
        int blocked = rep % 2;
        float R = (float)(int)sqrt(2147483647.0 / (double)dp);
        if (R > 32767.0f) R = 32767.0f;
        float *xb, *mb;
        float *x = rnd_floats(&r, d, &xb), *mu = rnd_floats(&r, d, &mb);
        if (rep % 7 == 0) memcpy(mu, x, d * sizeof(float)); /* all zero: scale 0 */
        size_t olen = blocked ? (dp / 2) * 32 : dp;
        int16_t *out = malloc(olen * sizeof(int16_t));
        assert_non_null(out);
        for (size_t l = 0; l <= nl; l++) {
            const ivfpq_kernels *k = l < nl ? lv[l] : ref();
            float sums[5];
            for (size_t i = 0; i < olen; i++) out[i] = INT16_MIN; /* below -R: every slot read must be written */
            float mx = k->cpf_quant(x, mu, d, R, out, blocked, sums);
            float want = 0.0f;
            for (size_t j = 0; j < d; j++) want = fabsf(x[j] - mu[j]) > want ? fabsf(x[j] - mu[j]) : want;
            assert_true(mx == want);
            double s = (double)(mx / R), ref5[5] = {0}, abs5[5] = {0};
            for (size_t j = 0; j < d; j++) {
                int16_t c = out[blocked ? (j / 2) * 32 + (j & 1) : j];
                if (!(c >= -R && c <= R)) fail_msg("cpf_quant %s: d=%zu out of range", ivfpq_simd_name(k->level), d);
                double v = (double)(x[j] - mu[j]), e = v - s * c, p = (double)(mu[j] * x[j]);
                double t[5] = {e * e, v * v, (double)x[j] * x[j], p, fabs(p)};
                for (int q = 0; q < 5; q++) ref5[q] += t[q], abs5[q] += fabs(t[q]);
            }
            /* the error norm: float e_j = v_j - s c_j is within ~2u |v_j|
             * (coarse.c adds 4u |v| to the norm for it) */
            double en = sqrt((double)sums[0]), rn = sqrt(ref5[0]), vn = sqrt(ref5[1]);
            if (fabs(en - rn) > 4.0 / 16777216.0 * vn + 1e-4 * rn + 1e-30)
                fail_msg("cpf_quant %s: d=%zu blocked=%d error norm %g, recomputed %g",
                         ivfpq_simd_name(k->level), d, blocked, en, rn);
            for (int q = 1; q < 5; q++)
                if (fabs(sums[q] - ref5[q]) > 1e-4 * abs5[q] + 1e-30)
                    fail_msg("cpf_quant %s: d=%zu blocked=%d sum %d = %g, recomputed %g",
                             ivfpq_simd_name(k->level), d, blocked, q, (double)sums[q], ref5[q]);
        }
        free(out);
        free(xb);
        free(mb);
    }
}

/* The canonical order, written out here once more: guards the scalar
 * reference itself against drifting. */
static void scalar_is_canonical(void **state)
{
    (void)state;
    synth_rng r;
    synth_seed(&r, 606);
    for (size_t d = 1; d < 70; d += 3) {
        float *xb, *yb;
        float *x = rnd_floats(&r, d, &xb), *y = rnd_floats(&r, d, &yb);
        for (int op = 0; op < 2; op++) {
            float acc[16] = {0}, h[8], q[4], p[2], got;
            for (size_t j = 0; j < d; j++) {
                float t;
                if (op) {
                    t = x[j] * y[j];
                } else {
                    float df = x[j] - y[j];
                    t = df * df;
                }
                acc[j % 16] = acc[j % 16] + t;
            }
            for (int i = 0; i < 8; i++) h[i] = acc[i] + acc[i + 8];
            for (int i = 0; i < 4; i++) q[i] = h[i] + h[i + 4];
            for (int i = 0; i < 2; i++) p[i] = q[i] + q[i + 2];
            float want = p[0] + p[1];
            (op ? ref()->dot_tile : ref()->l2sqr_tile)(x, 1, y, 1, d, &got, 1);
            assert_memory_equal(&want, &got, sizeof want);
        }
        free(xb);
        free(yb);
    }
}

static void luts_match(void **state)
{
    (void)state;
    const ivfpq_kernels *lv[8];
    size_t nl = simd_levels(lv);
    synth_rng r;
    synth_seed(&r, 707);
    static const size_t Ms[] = {1, 2, 3, 7, 16, 33};
    for (size_t dsub = 1; dsub <= 9; dsub++)
        for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
            size_t M = Ms[mi];
            float *qb, *cbb;
            float *q = rnd_floats(&r, M * dsub, &qb), *cb = rnd_floats(&r, M * dsub * 16, &cbb);
            float *want = malloc(M * 16 * sizeof(float)), *got = malloc(M * 16 * sizeof(float));
            for (int op = 0; op < 2; op++) {
                (op ? ref()->lut_ip : ref()->lut_l2)(q, cb, M, dsub, want);
                for (size_t l = 0; l < nl; l++) {
                    memset(got, 0, M * 16 * sizeof(float));
                    (op ? lv[l]->lut_ip : lv[l]->lut_l2)(q, cb, M, dsub, got);
                    if (memcmp(want, got, M * 16 * sizeof(float)) != 0)
                        fail_msg("%s %s: M=%zu dsub=%zu differs from scalar", op ? "lut_ip" : "lut_l2",
                                 ivfpq_simd_name(lv[l]->level), M, dsub);
                }
            }
            free(qb);
            free(cbb);
            free(want);
            free(got);
        }
}

/* ---------------------------------------------------- LUT quantizer */

/* Sum of v[0..n) as lut.c adds spans and minima: lane m % 8, then
 * ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). */
static float sum_lanes8(const float *v, size_t n)
{
    float l[8] = {0};
    for (size_t m = 0; m < n; m++) l[m % 8] += v[m];
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* lut.c's quantizer written out plainly (its SIMD row helpers must agree). */
static void quantize_ref(const float *lut, size_t M, size_t M2, uint8_t *lut8, ivfpq_qlut *qp)
{
    float maxspan = 0.0f, mn[200], mx[200], spans[200];
    for (size_t m = 0; m < M; m++) {
        const float *r = lut + m * 16;
        mn[m] = mx[m] = r[0];
        for (int j = 1; j < 16; j++) {
            if (r[j] < mn[m]) mn[m] = r[j];
            if (r[j] > mx[m]) mx[m] = r[j];
        }
        float span = mx[m] - mn[m];
        if (!(span >= 0.0f) || span > 3.0e38f) span = 0.0f;
        if (span > maxspan) maxspan = span;
        spans[m] = span;
    }
    float sumspan = sum_lanes8(spans, M), a = maxspan > 0.0f ? 255.0f / maxspan : 1.0f;
    float limit = 65535.0f - (float)M2;
    if (sumspan * a > limit) a = limit / sumspan;
    if (!(a > 0.0f)) a = 1.17549435e-38f;
    for (size_t m = 0; m < M; m++) {
        for (int j = 0; j < 16; j++) {
            float v = (lut[m * 16 + (size_t)j] - mn[m]) * a + 0.5f;
            if (!(v >= 0.0f)) v = 0.0f;
            if (v > 255.0f) v = 255.0f;
            lut8[m * 16 + (size_t)j] = (uint8_t)(unsigned)v;
        }
    }
    memset(lut8 + M * 16, 0, (M2 - M) * 16);
    qp->scale = a;
    qp->inv_scale = 1.0f / a;
    qp->bias = sum_lanes8(mn, M);
}

static void lut_quantize_exact(void **state)
{
    (void)state;
    synth_rng r;
    synth_seed(&r, 808);
    static const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, INFINITY, -INFINITY, NAN, 3e38f, 1e-40f};
    for (int rep = 0; rep < 400; rep++) {
        size_t M = 1 + rnd(&r, 199), M2 = (M + 1) & ~(size_t)1;
        float lut[200 * 16]; /* past 64 rows: several kernel calls */
        int kind = rep % 4;
        for (size_t i = 0; i < M * 16; i++) {
            lut[i] = rnd_float(&r);
            if (kind == 1 && rnd(&r, 8) == 0) lut[i] = specials[rnd(&r, 9)];
            if (kind == 2) lut[i] = (float)rnd(&r, 3) - 1.0f; /* many ties and signed zeros */
            if (kind == 3 && rnd(&r, 40) == 0) lut[i] = specials[rnd(&r, 9)];
        }
        if (kind == 2 && rnd(&r, 2)) lut[rnd(&r, (uint32_t)M * 16)] = -0.0f;
        uint8_t want[200 * 16], got[200 * 16];
        ivfpq_qlut qw, qg;
        quantize_ref(lut, M, M2, want, &qw);
        memset(got, 0xcc, sizeof got);
        ivfpq__lut_quantize(lut, M, M2, got, &qg);
        assert_memory_equal(want, got, M2 * 16);
        assert_memory_equal(&qw, &qg, sizeof qw);
    }
}

/* ------------------------------------------------------- end to end */

typedef struct e2e_out {
    size_t ncent;
    float *cent, *cb, *D;
    int64_t *I;
} e2e_out;

static void build_and_search(const char *spec, ivfpq_metric metric, size_t d, const float *xb,
                             size_t nb, const float *xq, size_t nq, size_t k, e2e_out *o)
{
    ivfpq_index *idx;
    ivfpq_options opt;
    memset(&opt, 0, sizeof opt);
    opt.coarse_niter = 6;
    opt.pq_niter = 6;
    opt.min_points_per_centroid = 1;
    assert_int_equal(ivfpq_index_factory(&idx, (int)d, spec, metric, &opt), IVFPQ_OK);
    assert_int_equal(ivfpq_train(idx, nb, xb), IVFPQ_OK);
    assert_int_equal(ivfpq_add(idx, nb, xb, NULL), IVFPQ_OK);
    o->cent = o->cb = NULL;
    o->ncent = idx->centroids ? idx->nlist : 0;
    if (idx->centroids) {
        o->cent = malloc(idx->nlist * d * sizeof(float));
        memcpy(o->cent, idx->centroids, idx->nlist * d * sizeof(float));
    }
    if (idx->pq_cb) {
        o->cb = malloc(d * 16 * sizeof(float));
        memcpy(o->cb, idx->pq_cb, d * 16 * sizeof(float));
    }
    o->D = malloc(nq * k * sizeof(float) * 2);
    o->I = malloc(nq * k * sizeof(int64_t) * 2);
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 3;
    assert_int_equal(ivfpq_search(idx, nq, xq, k, &p, o->D, o->I), IVFPQ_OK);
    /* one query at a time gives the same bits as the batch */
    for (size_t q = 0; q < nq; q++)
        assert_int_equal(ivfpq_search(idx, 1, xq + q * d, k, &p, o->D + (nq + q) * k,
                                      o->I + (nq + q) * k), IVFPQ_OK);
    assert_memory_equal(o->D, o->D + nq * k, nq * k * sizeof(float));
    assert_memory_equal(o->I, o->I + nq * k, nq * k * sizeof(int64_t));
    ivfpq_free(idx);
}

static void free_out(e2e_out *o)
{
    free(o->cent);
    free(o->cb);
    free(o->D);
    free(o->I);
}

static void same_index_at_every_level(void **state)
{
    (void)state;
    static const struct { const char *spec; size_t d; ivfpq_metric metric; } kinds[] = {
        {"Flat", 30, IVFPQ_METRIC_L2},
        {"IVF12,Flat", 30, IVFPQ_METRIC_L2},
        {"IVF12,Flat", 30, IVFPQ_METRIC_INNER_PRODUCT},
        {"PQ10x4fs", 30, IVFPQ_METRIC_L2},
        {"IVF12,PQ15x4fs", 30, IVFPQ_METRIC_L2},
        {"IVF12,PQ15x4fs", 30, IVFPQ_METRIC_INNER_PRODUCT},
        {"IVF12,PQ10x4fsr", 30, IVFPQ_METRIC_L2},
        {"IVF12,PQ6x4fsr,RFlat", 30, IVFPQ_METRIC_INNER_PRODUCT},
        {"IVF8,PQ16x4fs,RFlat", 64, IVFPQ_METRIC_L2},
    };
    const size_t nb = 1500, nq = 20, k = 7;
    ivfpq_simd_level start = ivfpq_simd_active();
    for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++) {
        size_t d = kinds[ki].d;
        float *x = tu_synth(nb + nq, d, 25, 17 + ki), *xq = x + nb * d;
        e2e_out want;
        assert_int_equal(ivfpq_simd_force(IVFPQ_SIMD_SCALAR), IVFPQ_OK);
        build_and_search(kinds[ki].spec, kinds[ki].metric, d, x, nb, xq, nq, k, &want);
        for (int l = IVFPQ_SIMD_SCALAR + 1; l <= IVFPQ_SIMD_NEON; l++) {
            if (ivfpq_simd_force((ivfpq_simd_level)l) != IVFPQ_OK) continue;
            e2e_out got;
            build_and_search(kinds[ki].spec, kinds[ki].metric, d, x, nb, xq, nq, k, &got);
            if (want.cent) assert_memory_equal(want.cent, got.cent, want.ncent * d * sizeof(float));
            if (want.cb) assert_memory_equal(want.cb, got.cb, d * 16 * sizeof(float));
            if (memcmp(want.I, got.I, nq * k * sizeof(int64_t)) ||
                memcmp(want.D, got.D, nq * k * sizeof(float)))
                fail_msg("%s: search results at level %s differ from scalar", kinds[ki].spec,
                         ivfpq_simd_name((ivfpq_simd_level)l));
            free_out(&got);
        }
        free_out(&want);
        free(x);
    }
    assert_int_equal(ivfpq_simd_force(start), IVFPQ_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fs_accumulate_matches),
        cmocka_unit_test(fs_layout_single_codes),
        cmocka_unit_test(fs_scan_matches),
        cmocka_unit_test(fs_scan_masks),
        cmocka_unit_test(fs_kth_exact),
        cmocka_unit_test(scalar_is_canonical),
        cmocka_unit_test(tiles_match),
        cmocka_unit_test(tiles_match_large),
        cmocka_unit_test(integer_tiles_exact),
        cmocka_unit_test(cpf_quant_contract),
        cmocka_unit_test(luts_match),
        cmocka_unit_test(lut_quantize_exact),
        cmocka_unit_test(same_index_at_every_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

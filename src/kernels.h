/*
 * The compute kernels and their run-time dispatch table.
 *
 * Every kernel exists as a scalar reference (fastscan_scalar.c,
 * distance_scalar.c) and per instruction set (fastscan_<isa>.c,
 * distance_<isa>.c, each compiled with its own flags). All variants produce
 * bit-identical results, which is what makes training, indexes and search
 * results identical at every SIMD level. (One exception, by design: the
 * coarse prefilter's row quantizer, cpf_quant below, only has to satisfy
 * a contract; what it feeds is bounds, and coarse.c's output is identical
 * at every level all the same.) That requires one fixed arithmetic
 * order, defined here and followed by every variant:
 *
 * Float tiles (l2sqr_tile, dot_tile), "canonical 16-lane order":
 *   acc[0..15] = +0; for j in 0..d-1: acc[j % 16] = acc[j % 16] + t_j
 *   where t_j = (x_j - y_j) * (x_j - y_j)  (L2; difference rounded, then
 *   the product) or t_j = x_j * y_j (dot). Each operation rounds to float:
 *   no fused multiply-add anywhere (build with -ffp-contract=off).
 *   Then a fixed tree: h[i] = acc[i] + acc[i+8] (i < 8);
 *   q[i] = h[i] + h[i+4] (i < 4); p[i] = q[i] + q[i+2] (i < 2); r = p[0] + p[1].
 *   (The 16 lanes are one AVX-512 register, two AVX2, four SSE/NEON.)
 *
 * PQ look-up tables (lut_l2, lut_ip): one entry per (m, j), summed over the
 *   dsub coordinates in order t = 0..dsub-1 from s = +0:
 *   L2: s = s + (q_t - c_t) * (q_t - c_t);  IP: s = s + q_t * c_t, entry = -s.
 *   (SIMD variants vectorise over the 16 centroids j, not over t.)
 *
 * FastScan: pure integer arithmetic, exact by construction (uint16 sums
 *   that cannot overflow because the LUT quantizer bounds them; the SIMD
 *   even/odd-byte widening is exact modulo 2^16 in any case, like the
 *   scalar wrap-around).
 *
 * Where float identity holds, and what it rests on. Every level computes
 * the same IEEE single-precision operations on the same operands in the
 * same order, so the results are the same bits for all finite inputs,
 * including tails (d % 16 != 0: absent lanes add +0, and an accumulator
 * that starts at +0 can never be -0, so x + 0 == x), overflow to +-inf,
 * and subnormals (scalar and vector instructions obey the same MXCSR/FPCR
 * flush modes of the calling thread). There is no known case where levels
 * differ. It rests on:
 *  - -ffp-contract=off (Makefile): a compiler that fuses a*b + c into an
 *    FMA in one file and not in another breaks identity; so do
 *    -ffast-math / -fassociative-math in CFLAGS. Not promised then.
 *  - x86-64 / AArch64 scalar code using SSE / FP registers (no x87 excess
 *    precision). Other architectures build the scalar level only.
 *  - NaN only from invalid operations on finite data (inf - inf, 0 * inf),
 *    never from inputs: the library rejects non-finite vectors. Generated
 *    NaNs are the platform's default NaN at every level; the search maps
 *    NaN distances to +inf before comparing.
 * The promise is per platform (all levels of one build); x86-64 and
 * AArch64 should agree on finite data too, but that is not tested.
 */
#ifndef IVFPQ_KERNELS_H
#define IVFPQ_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "ivfpq.h"

/* ---------------------------------------------------------- FastScan ---
 * Code layout (identical to faiss's pq4_pack_codes with bbs = 32): a list is
 * a sequence of blocks of 32 vectors; a block is M2/2 pieces of 32 bytes,
 * one per sub-quantizer pair p. In piece p, bytes 0..15 hold sub-quantizer
 * 2p and bytes 16..31 sub-quantizer 2p+1; in each 16-byte half, byte i holds
 * vector perm[i] in its low nibble and vector perm[i] + 16 in its high
 * nibble, perm = 0,8,1,9,2,10,3,11,4,12,5,13,6,14,7,15. So a block is
 * 16 * M2 bytes. A query's LUT is M2 rows of 16 uint8 (rows >= M are 0),
 * i.e. the same [m][16] order, so one 32-byte (64-byte) load of the LUT
 * lines up with one 32-byte (64-byte) load of codes.
 *
 * sum[v] = sum over m < M2 of lut[m*16 + code(v, m)], as uint16.
 */

#define IVFPQ_FS_MAX_NQ 8 /* queries per fs_scan call */

typedef struct ivfpq_fs_ctx ivfpq_fs_ctx;

/* Called for block `block` and query `qi` when at least one lane passed:
 * bit v of mask set <=> sums[v] <= thr[qi]. The sink may lower thr[qi]. */
typedef void (*ivfpq_fs_sink)(ivfpq_fs_ctx *ctx, size_t qi, size_t block, uint32_t mask,
                              const uint16_t *sums);

struct ivfpq_fs_ctx {
    size_t nq;                            /* 1..IVFPQ_FS_MAX_NQ */
    const uint8_t *lut[IVFPQ_FS_MAX_NQ];  /* [M2*16] per query */
    int32_t thr[IVFPQ_FS_MAX_NQ];         /* -1: query needs nothing more */
    ivfpq_fs_sink sink;
};

/* For each block in order, for each query: computes the 32 sums and calls
 * the sink with the mask of lanes <= thr[qi] (re-read before every block).
 * Queries with thr < 0 may be skipped. */
typedef void (*ivfpq_fs_scan_fn)(const uint8_t *codes, size_t nblocks, size_t M2,
                                 ivfpq_fs_ctx *ctx);

/* The k-th smallest of n sums (1 <= k <= n), i.e. the least t with at
 * least k of v[0..n) <= t: the floor of a query's first list (search.c).
 * Exact, so every level returns the same value. */
typedef uint32_t (*ivfpq_fs_kth_fn)(const uint16_t *v, size_t n, size_t k);

/* All sums of one query: out[nblocks * 32]. */
typedef void (*ivfpq_fs_accumulate_fn)(const uint8_t *codes, size_t nblocks, size_t M2,
                                       const uint8_t *lut, uint16_t *out);

/* ------------------------------------------------------------- floats ---
 * x [nx, d] and y [ny, d] row-major (rows contiguous, any alignment);
 * out[i * ldo + j] = L2sqr(x_i, y_j) or dot(x_i, y_j), canonical order. */
typedef void (*ivfpq_tile_fn)(const float *x, size_t nx, const float *y, size_t ny,
                              size_t d, float *out, size_t ldo);

/* q [M * dsub]; cb [M][dsub][16]; lut [M][16] (see the order above). */
typedef void (*ivfpq_lut_fn)(const float *q, const float *cb, size_t M, size_t dsub,
                             float *lut);

/* The LUT quantizer's row work (lut.c drives it and keeps every sum in
 * order): min and max of each of n rows of 16 floats (a row holding a NaN
 * gets the scalar loop's answer; elsewhere only the sign of a zero may
 * differ, which no later value sees, see lut.c), and
 * out[r*16+j] = clamp((lut[r*16+j] - mn[r]) * a + 0.5, 0, 255) truncated, NaN -> 0. */
typedef void (*ivfpq_lut_range_fn)(const float *lut, size_t n, float *mn, float *mx);
typedef void (*ivfpq_lut_u8_fn)(const float *lut, size_t n, const float *mn, float a,
                                uint8_t *out);

/* ------------------------------------------------------ int16 scores ---
 * Exact integer dot products for the coarse prefilter (coarse.c). x is
 * [nx][dp] int16 (dp even); y holds nb blocks of 16 rows with dimensions in
 * pairs: y[(b * dp/2 + t) * 32 + 2 * l + e] = row 16b + l, dimension 2t + e.
 * out[i * ldo + 16 * b + l] = sum_j x[i][j] * row_{16b+l}[j], in int32: the
 * caller bounds the values so that no partial sum can overflow, which makes
 * every summation order give the same integer. */
typedef void (*ivfpq_i16_tile_fn)(const int16_t *x, size_t nx, const int16_t *y, size_t nb,
                                  size_t dp, int32_t *out, size_t ldo);

/* The same with int8 centroids and uint8 queries (AVX512-VNNI only; NULL
 * in the other tables): x is [nx][dq] uint8 (dq a multiple of 4), y holds
 * nb blocks of 16 rows with dimensions in fours:
 * y[(b * dq/4 + t) * 64 + 4 * l + e] = row 16b + l, dimension 4t + e, and
 * out[i * ldo + 16 * b + l] = sum_j x[i][j] * row_{16b+l}[j] - corr[16b+l],
 * exact in int32 arithmetic modulo 2^32 (the caller keeps the true value in
 * range). With x = query + 128 and corr = 128 * the row's sum, that is
 * the signed product. */
typedef void (*ivfpq_i8_tile_fn)(const uint8_t *x, size_t nx, const int8_t *y,
                                 const int32_t *corr, size_t nb, size_t dq, int32_t *out,
                                 size_t ldo);

/* The coarse prefilter's row quantizer: v = fl(x - mu), m = max |v|
 * (returned), s = m / R; out[j] (row-major, or at (j/2)*32 + j%2 when
 * blocked) = some integer in [-R, R] near v_j / s; sums = {sum (v_j -
 * s out_j)^2, sum v_j^2, sum x_j^2, sum mu_j x_j, sum |mu_j x_j|} in float.
 * NOT bit-identical across levels (lane counts, rounding of v_j / s):
 * coarse.c only needs valid bounds, and measures the errors it bounds. */
typedef float (*ivfpq_cpf_quant_fn)(const float *x, const float *mu, size_t d, float R,
                                    int16_t *out, int blocked, float sums[5]);

typedef struct ivfpq_kernels {
    ivfpq_simd_level level;
    ivfpq_tile_fn l2sqr_tile;
    ivfpq_tile_fn dot_tile;
    ivfpq_lut_fn lut_l2;
    ivfpq_lut_fn lut_ip;
    ivfpq_fs_accumulate_fn fs_accumulate;
    ivfpq_fs_scan_fn fs_scan;
    ivfpq_fs_kth_fn fs_kth;
    ivfpq_lut_range_fn lut_range;
    ivfpq_lut_u8_fn lut_u8;
    ivfpq_i16_tile_fn i16_tile;
    ivfpq_cpf_quant_fn cpf_quant;
    ivfpq_i8_tile_fn i8_tile; /* or NULL */
} ivfpq_kernels;

/* The active table (detects the CPU on first use). */
const ivfpq_kernels *ivfpq__kernels(void);
/* The table of a given level, or NULL if this build/CPU lacks it
 * (for tests and benchmarks that compare levels). */
const ivfpq_kernels *ivfpq__kernels_for(ivfpq_simd_level level);

/* Per-ISA entry points (defined in their own files). */
#define IVFPQ_DECLARE_KERNELS(isa)                                                      \
    void ivfpq__l2sqr_tile_##isa(const float *x, size_t nx, const float *y, size_t ny, \
                                 size_t d, float *out, size_t ldo);                    \
    void ivfpq__dot_tile_##isa(const float *x, size_t nx, const float *y, size_t ny,   \
                               size_t d, float *out, size_t ldo);                      \
    void ivfpq__lut_l2_##isa(const float *q, const float *cb, size_t M, size_t dsub,   \
                             float *lut);                                              \
    void ivfpq__lut_ip_##isa(const float *q, const float *cb, size_t M, size_t dsub,   \
                             float *lut);                                              \
    void ivfpq__fs_accumulate_##isa(const uint8_t *codes, size_t nblocks, size_t M2,   \
                                    const uint8_t *lut, uint16_t *out);                \
    void ivfpq__fs_scan_##isa(const uint8_t *codes, size_t nblocks, size_t M2,         \
                              ivfpq_fs_ctx *ctx);                                      \
    uint32_t ivfpq__fs_kth_##isa(const uint16_t *v, size_t n, size_t k);              \
    void ivfpq__lut_range_##isa(const float *lut, size_t n, float *mn, float *mx);     \
    void ivfpq__lut_u8_##isa(const float *lut, size_t n, const float *mn, float a,     \
                             uint8_t *out);                                            \
    void ivfpq__i16_tile_##isa(const int16_t *x, size_t nx, const int16_t *y, size_t nb, \
                               size_t dp, int32_t *out, size_t ldo);

IVFPQ_DECLARE_KERNELS(scalar)
IVFPQ_DECLARE_KERNELS(sse)
IVFPQ_DECLARE_KERNELS(avx2)
IVFPQ_DECLARE_KERNELS(avx512)
IVFPQ_DECLARE_KERNELS(neon)
/* the baseline row quantizer (coarse.c) and its AVX2 / AVX-512 variants */
float ivfpq__cpf_quant_base(const float *x, const float *mu, size_t d, float R, int16_t *out,
                            int blocked, float sums[5]);
float ivfpq__cpf_quant_avx2(const float *x, const float *mu, size_t d, float R, int16_t *out,
                            int blocked, float sums[5]);
float ivfpq__cpf_quant_avx512(const float *x, const float *mu, size_t d, float R, int16_t *out,
                              int blocked, float sums[5]);
/* i16_tile with AVX512-VNNI, for the avx512 table on CPUs that have it */
void ivfpq__i16_tile_avx512vnni(const int16_t *x, size_t nx, const int16_t *y, size_t nb,
                                size_t dp, int32_t *out, size_t ldo);
void ivfpq__i8_tile_avx512vnni(const uint8_t *x, size_t nx, const int8_t *y, const int32_t *corr,
                               size_t nb, size_t dq, int32_t *out, size_t ldo);
/* AVX-VNNI (the VEX form: Alder Lake and later, Zen 5), for the avx2 table
 * on CPUs that have it; compilers older than these lack the intrinsic. */
#if (defined(__clang__) && __clang_major__ >= 12) || \
    (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11)
#define IVFPQ_HAVE_AVXVNNI_KERNEL 1
void ivfpq__i8_tile_avx2vnni(const uint8_t *x, size_t nx, const int8_t *y, const int32_t *corr,
                             size_t nb, size_t dq, int32_t *out, size_t ldo);
#endif

/* For the ISA files: force inlining of the helpers that take compile-time
 * shapes, and fully unroll the loops over them, so that accumulator arrays
 * live in registers (clang ignores "GCC unroll"). */
#define IVFPQ_INLINE static inline __attribute__((always_inline))
#if defined(__clang__)
#define IVFPQ_UNROLL _Pragma("unroll")
#else
#define IVFPQ_UNROLL _Pragma("GCC unroll 16")
#endif

/* fs_kth of the SIMD levels: the answer bit by bit from the top, one
 * count_le pass (how many values are <= t) per bit; each level brings its
 * own vector count_le. */
IVFPQ_INLINE uint32_t ivfpq__kth_by_counting(const uint16_t *v, size_t n, size_t k,
                                             size_t (*count_le)(const uint16_t *, size_t, uint32_t))
{
    uint32_t r = 0;
    for (uint32_t b = 1u << 15; b; b >>= 1)
        if (count_le(v, n, r + b - 1) < k) r += b;
    return r;
}

/* Convenience: single-pair distances through the active table. */
float ivfpq__l2sqr(const float *x, const float *y, size_t d);
float ivfpq__dot(const float *x, const float *y, size_t d);

#endif /* IVFPQ_KERNELS_H */

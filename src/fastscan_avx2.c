/*
 * FastScan, AVX2. One 32-byte load is one sub-quantizer pair of 32
 * vectors (sub-quantizer 2p in the low 128-bit lane, 2p+1 in the high
 * one) and lines up with the query's 32 LUT bytes of that pair; vpshufb
 * looks up within each lane. Widening: the even/odd-byte trick described
 * in fastscan_avx512.c.
 */
#include <immintrin.h>

#include "kernels.h"

/* Queries accumulated together: 4 ymm each. With 3 (12 accumulators of
 * the 16 registers) gcc spills in the loop and is slower than with 2. */
#define GROUP 2

IVFPQ_INLINE void lookup_add(__m256i L, __m256i lo, __m256i hi, __m256i a[4])
{
    __m256i r0 = _mm256_shuffle_epi8(L, lo), r1 = _mm256_shuffle_epi8(L, hi);
    a[0] = _mm256_add_epi16(a[0], r0);
    a[1] = _mm256_add_epi16(a[1], _mm256_srli_epi16(r0, 8));
    a[2] = _mm256_add_epi16(a[2], r1);
    a[3] = _mm256_add_epi16(a[3], _mm256_srli_epi16(r1, 8));
}

/* r[0] = sums of vectors 0-15, r[1] = 16-31. */
IVFPQ_INLINE void finish(const __m256i a[4], __m256i r[2])
{
    __m256i e = _mm256_sub_epi16(a[0], _mm256_slli_epi16(a[1], 8));
    __m256i f = _mm256_sub_epi16(a[2], _mm256_slli_epi16(a[3], 8));
    r[0] = _mm256_add_epi16(_mm256_permute2x128_si256(e, a[1], 0x20),
                            _mm256_permute2x128_si256(e, a[1], 0x31));
    r[1] = _mm256_add_epi16(_mm256_permute2x128_si256(f, a[3], 0x20),
                            _mm256_permute2x128_si256(f, a[3], 0x31));
}

IVFPQ_INLINE void block_sums(const uint8_t *blk, size_t M2, const uint8_t *const *lut,
                             __m256i res[][2], const int NQ)
{
    __m256i acc[GROUP][4];
    const __m256i m4 = _mm256_set1_epi8(0x0f);
IVFPQ_UNROLL
    for (int q = 0; q < NQ; q++)
        acc[q][0] = acc[q][1] = acc[q][2] = acc[q][3] = _mm256_setzero_si256();
    size_t np = M2 / 2;
    for (size_t p = 0; p < np; p++) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(blk + p * 32));
        __m256i lo = _mm256_and_si256(c, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), m4);
IVFPQ_UNROLL
        for (int q = 0; q < NQ; q++)
            lookup_add(_mm256_loadu_si256((const __m256i *)(const void *)(lut[q] + p * 32)), lo, hi,
                       acc[q]);
    }
IVFPQ_UNROLL
    for (int q = 0; q < NQ; q++) finish(acc[q], res[q]);
}

void ivfpq__fs_accumulate_avx2(const uint8_t *codes, size_t nblocks, size_t M2,
                               const uint8_t *lut, uint16_t *out)
{
    for (size_t b = 0; b < nblocks; b++) {
        __m256i r[1][2];
        block_sums(codes + b * 16 * M2, M2, &lut, r, 1);
        _mm256_storeu_si256((__m256i *)(void *)(out + b * 32), r[0][0]);
        _mm256_storeu_si256((__m256i *)(void *)(out + b * 32 + 16), r[0][1]);
    }
}

/* Bit v set <=> lane v <= thr (unsigned). */
IVFPQ_INLINE uint32_t le_mask(const __m256i r[2], uint16_t thr)
{
    __m256i t = _mm256_set1_epi16((short)thr);
    __m256i le0 = _mm256_cmpeq_epi16(_mm256_max_epu16(r[0], t), t);
    __m256i le1 = _mm256_cmpeq_epi16(_mm256_max_epu16(r[1], t), t);
    /* packs interleaves the 128-bit lanes: 0-7, 16-23, 8-15, 24-31 */
    __m256i b = _mm256_permute4x64_epi64(_mm256_packs_epi16(le0, le1), _MM_SHUFFLE(3, 1, 2, 0));
    return (uint32_t)_mm256_movemask_epi8(b);
}

IVFPQ_INLINE void emit(ivfpq_fs_ctx *ctx, size_t b, const size_t *qs, __m256i res[][2], int n)
{
    for (int j = 0; j < n; j++) {
        int32_t t = ctx->thr[qs[j]];
        uint32_t mask = le_mask(res[j], (uint16_t)(t > 65535 ? 65535 : t));
        if (mask) {
            uint16_t sums[32];
            _mm256_storeu_si256((__m256i *)(void *)sums, res[j][0]);
            _mm256_storeu_si256((__m256i *)(void *)(sums + 16), res[j][1]);
            ctx->sink(ctx, qs[j], b, mask, sums);
        }
    }
}

#define GROUP_CASE(N)                     \
    case N:                               \
        block_sums(blk, M2, lut, res, N); \
        emit(ctx, b, qs, res, N);         \
        break;

void ivfpq__fs_scan_avx2(const uint8_t *codes, size_t nblocks, size_t M2, ivfpq_fs_ctx *ctx)
{
    size_t nq = ctx->nq < IVFPQ_FS_MAX_NQ ? ctx->nq : IVFPQ_FS_MAX_NQ;
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t *blk = codes + b * 16 * M2;
        size_t act[IVFPQ_FS_MAX_NQ], na = 0;
        for (size_t q = 0; q < nq; q++)
            if (ctx->thr[q] >= 0) act[na++] = q;
        for (size_t g = 0; g < na; g += GROUP) {
            const size_t *qs = act + g;
            size_t n = na - g < GROUP ? na - g : GROUP;
            const uint8_t *lut[GROUP];
            __m256i res[GROUP][2];
            for (size_t j = 0; j < n; j++) lut[j] = ctx->lut[qs[j]];
            switch (n) {
                GROUP_CASE(1)
                GROUP_CASE(2)
            default: break;
            }
        }
    }
}

/* fs_kth (kernels.h: one counting pass per bit of the answer), with
 * 16 compares per instruction and the mask's popcount as the count. */
static size_t count_le(const uint16_t *v, size_t n, uint32_t t)
{
    const __m256i vt = _mm256_set1_epi16((short)(uint16_t)t);
    size_t i = 0, c = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(v + i));
        unsigned m = (unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi16(_mm256_min_epu16(x, vt), x));
        c += (size_t)__builtin_popcount(m) / 2; /* two mask bits per lane */
    }
    for (; i < n; i++) c += v[i] <= t;
    return c;
}

uint32_t ivfpq__fs_kth_avx2(const uint16_t *v, size_t n, size_t k)
{
    return ivfpq__kth_by_counting(v, n, k, count_le);
}

/*
 * FastScan, SSSE3 + SSE4.1 (faiss has no 128-bit x86 path). Each 16-byte
 * half of a pair piece is one sub-quantizer of 32 vectors and lines up with
 * that sub-quantizer's 16 LUT bytes: pshufb looks up 16 codes. Both halves
 * use the same vector order, so they add into the same accumulators.
 * Widening: the even/odd-byte trick described in fastscan_avx512.c.
 */
#include <smmintrin.h>

#include "kernels.h"

/* Queries accumulated together: 4 xmm each. */
#define GROUP 2

IVFPQ_INLINE void lookup_add(__m128i L, __m128i lo, __m128i hi, __m128i a[4])
{
    __m128i r0 = _mm_shuffle_epi8(L, lo), r1 = _mm_shuffle_epi8(L, hi);
    a[0] = _mm_add_epi16(a[0], r0);
    a[1] = _mm_add_epi16(a[1], _mm_srli_epi16(r0, 8));
    a[2] = _mm_add_epi16(a[2], r1);
    a[3] = _mm_add_epi16(a[3], _mm_srli_epi16(r1, 8));
}

/* r[k] = sums of vectors 8k .. 8k+7. */
IVFPQ_INLINE void block_sums(const uint8_t *blk, size_t M2, const uint8_t *const *lut,
                             __m128i res[][4], const int NQ)
{
    __m128i acc[GROUP][4];
    const __m128i m4 = _mm_set1_epi8(0x0f);
IVFPQ_UNROLL
    for (int q = 0; q < NQ; q++) acc[q][0] = acc[q][1] = acc[q][2] = acc[q][3] = _mm_setzero_si128();
    for (size_t h = 0; h < M2; h++) { /* one sub-quantizer per 16 bytes */
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(blk + h * 16));
        __m128i lo = _mm_and_si128(c, m4), hi = _mm_and_si128(_mm_srli_epi16(c, 4), m4);
IVFPQ_UNROLL
        for (int q = 0; q < NQ; q++)
            lookup_add(_mm_loadu_si128((const __m128i *)(const void *)(lut[q] + h * 16)), lo, hi,
                       acc[q]);
    }
IVFPQ_UNROLL
    for (int q = 0; q < NQ; q++) {
        res[q][0] = _mm_sub_epi16(acc[q][0], _mm_slli_epi16(acc[q][1], 8));
        res[q][1] = acc[q][1];
        res[q][2] = _mm_sub_epi16(acc[q][2], _mm_slli_epi16(acc[q][3], 8));
        res[q][3] = acc[q][3];
    }
}

void ivfpq__fs_accumulate_sse(const uint8_t *codes, size_t nblocks, size_t M2, const uint8_t *lut,
                              uint16_t *out)
{
    for (size_t b = 0; b < nblocks; b++) {
        __m128i r[1][4];
        block_sums(codes + b * 16 * M2, M2, &lut, r, 1);
        for (int k = 0; k < 4; k++) _mm_storeu_si128((__m128i *)(void *)(out + b * 32 + 8 * k), r[0][k]);
    }
}

IVFPQ_INLINE uint32_t le_mask(const __m128i r[4], uint16_t thr)
{
    __m128i t = _mm_set1_epi16((short)thr);
    __m128i l0 = _mm_cmpeq_epi16(_mm_max_epu16(r[0], t), t);
    __m128i l1 = _mm_cmpeq_epi16(_mm_max_epu16(r[1], t), t);
    __m128i l2 = _mm_cmpeq_epi16(_mm_max_epu16(r[2], t), t);
    __m128i l3 = _mm_cmpeq_epi16(_mm_max_epu16(r[3], t), t);
    uint32_t m0 = (uint32_t)_mm_movemask_epi8(_mm_packs_epi16(l0, l1));
    uint32_t m1 = (uint32_t)_mm_movemask_epi8(_mm_packs_epi16(l2, l3));
    return m0 | m1 << 16;
}

IVFPQ_INLINE void emit(ivfpq_fs_ctx *ctx, size_t b, const size_t *qs, __m128i res[][4], int n)
{
    for (int j = 0; j < n; j++) {
        int32_t t = ctx->thr[qs[j]];
        uint32_t mask = le_mask(res[j], (uint16_t)(t > 65535 ? 65535 : t));
        if (mask) {
            uint16_t sums[32];
            for (int k = 0; k < 4; k++) _mm_storeu_si128((__m128i *)(void *)(sums + 8 * k), res[j][k]);
            ctx->sink(ctx, qs[j], b, mask, sums);
        }
    }
}

#define GROUP_CASE(N)                     \
    case N:                               \
        block_sums(blk, M2, lut, res, N); \
        emit(ctx, b, qs, res, N);         \
        break;

void ivfpq__fs_scan_sse(const uint8_t *codes, size_t nblocks, size_t M2, ivfpq_fs_ctx *ctx)
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
            __m128i res[GROUP][4];
            for (size_t j = 0; j < n; j++) lut[j] = ctx->lut[qs[j]];
            switch (n) {
                GROUP_CASE(1)
                GROUP_CASE(2)
            default: break;
            }
        }
    }
}

/* fs_kth (kernels.h: one counting pass per bit of the answer); 8 compares
 * per instruction beat the scalar histogram. Lane counts are int16, so
 * they are folded every 4096 vectors. */
static size_t count_le(const uint16_t *v, size_t n, uint32_t t)
{
    const __m128i vt = _mm_set1_epi16((short)(uint16_t)t), one = _mm_set1_epi16(1);
    size_t i = 0, c = 0;
    while (n - i >= 8) {
        size_t end = n - i > 8 * 4096 ? i + 8 * 4096 : n - (n - i) % 8;
        __m128i acc = _mm_setzero_si128();
        for (; i < end; i += 8) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(v + i));
            acc = _mm_sub_epi16(acc, _mm_cmpeq_epi16(_mm_min_epu16(x, vt), x)); /* x <= t */
        }
        acc = _mm_madd_epi16(acc, one);
        acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0x4e));
        acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0xb1));
        c += (uint32_t)_mm_cvtsi128_si32(acc);
    }
    for (; i < n; i++) c += v[i] <= t;
    return c;
}

uint32_t ivfpq__fs_kth_sse(const uint16_t *v, size_t n, size_t k)
{
    return ivfpq__kth_by_counting(v, n, k, count_le);
}

/*
 * FastScan, AVX-512BW. One 64-byte load covers two sub-quantizer pairs
 * (4 sub-quantizers, one per 128-bit lane) of 32 vectors, and the query's
 * 4 LUT rows for them are the 64 bytes at the same offset of its LUT, so
 * one vpshufb per nibble looks up 64 codes.
 *
 * Widening to uint16 uses the even/odd-byte trick: the layout puts vector w
 * in byte 2w and vector w + 8 in byte 2w + 1 of each lane, so adding the
 * shuffled bytes as uint16 words gives even + 256 * odd, and adding the
 * words shifted right by 8 gives the odd sums alone; the even sums come out
 * as the difference at the end (exact mod 2^16, and the LUT quantizer keeps
 * every true sum below 2^16).
 */
#include <immintrin.h>

#include "kernels.h"

/* Queries accumulated together: 4 zmm each. */
#define GROUP 4

IVFPQ_INLINE void lookup_add(__m512i L, __m512i lo, __m512i hi, __m512i a[4])
{
    __m512i r0 = _mm512_shuffle_epi8(L, lo), r1 = _mm512_shuffle_epi8(L, hi);
    a[0] = _mm512_add_epi16(a[0], r0);
    a[1] = _mm512_add_epi16(a[1], _mm512_srli_epi16(r0, 8));
    a[2] = _mm512_add_epi16(a[2], r1);
    a[3] = _mm512_add_epi16(a[3], _mm512_srli_epi16(r1, 8));
}

/* Folds the 4 lanes (sub-quantizers) of the accumulators into the 32 sums
 * in vector order: lanes of the result = vectors 0-7, 8-15, 16-23, 24-31. */
IVFPQ_INLINE __m512i finish(const __m512i a[4])
{
    __m512i e = _mm512_sub_epi16(a[0], _mm512_slli_epi16(a[1], 8));
    __m512i f = _mm512_sub_epi16(a[2], _mm512_slli_epi16(a[3], 8));
    __m512i s = _mm512_add_epi16(_mm512_shuffle_i64x2(e, a[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_i64x2(e, a[1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512i t = _mm512_add_epi16(_mm512_shuffle_i64x2(f, a[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_i64x2(f, a[3], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_epi16(_mm512_shuffle_i64x2(s, t, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i64x2(s, t, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Sums of one block for NQ (constant after inlining) queries. */
IVFPQ_INLINE void block_sums(const uint8_t *blk, size_t M2, const uint8_t *const *lut,
                             __m512i *res, const int NQ)
{
    __m512i acc[GROUP][4];
    const __m512i m4 = _mm512_set1_epi8(0x0f);
IVFPQ_UNROLL
    for (int q = 0; q < NQ; q++)
        acc[q][0] = acc[q][1] = acc[q][2] = acc[q][3] = _mm512_setzero_si512();
    size_t np = M2 / 2, p = 0;
    for (; p + 2 <= np; p += 2) {
        __m512i c = _mm512_loadu_si512((const void *)(blk + p * 32));
        __m512i lo = _mm512_and_si512(c, m4);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), m4);
IVFPQ_UNROLL
        for (int q = 0; q < NQ; q++)
            lookup_add(_mm512_loadu_si512((const void *)(lut[q] + p * 32)), lo, hi, acc[q]);
    }
    if (p < np) { /* odd pair count: the upper half of code and LUT reads as 0 */
        const __mmask64 m = 0xffffffffu;
        __m512i c = _mm512_maskz_loadu_epi8(m, blk + p * 32);
        __m512i lo = _mm512_and_si512(c, m4);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), m4);
IVFPQ_UNROLL
        for (int q = 0; q < NQ; q++)
            lookup_add(_mm512_maskz_loadu_epi8(m, lut[q] + p * 32), lo, hi, acc[q]);
    }
IVFPQ_UNROLL
    for (int q = 0; q < NQ; q++) res[q] = finish(acc[q]);
}

void ivfpq__fs_accumulate_avx512(const uint8_t *codes, size_t nblocks, size_t M2,
                                 const uint8_t *lut, uint16_t *out)
{
    for (size_t b = 0; b < nblocks; b++) {
        __m512i r;
        block_sums(codes + b * 16 * M2, M2, &lut, &r, 1);
        _mm512_storeu_si512((void *)(out + b * 32), r);
    }
}

/* Thresholds the sums of queries qs[0..n) and hands passing lanes on. */
IVFPQ_INLINE void emit(ivfpq_fs_ctx *ctx, size_t b, const size_t *qs, const __m512i *res, int n)
{
    for (int j = 0; j < n; j++) {
        int32_t t = ctx->thr[qs[j]];
        __m512i thr = _mm512_set1_epi16((short)(uint16_t)(t > 65535 ? 65535 : t));
        uint32_t mask = (uint32_t)_mm512_cmple_epu16_mask(res[j], thr);
        if (mask) {
            uint16_t sums[32];
            _mm512_storeu_si512((void *)sums, res[j]);
            ctx->sink(ctx, qs[j], b, mask, sums);
        }
    }
}

#define GROUP_CASE(N)                                          \
    case N:                                                    \
        block_sums(blk, M2, lut, res, N);                      \
        emit(ctx, b, qs, res, N);                              \
        break;

void ivfpq__fs_scan_avx512(const uint8_t *codes, size_t nblocks, size_t M2, ivfpq_fs_ctx *ctx)
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
            __m512i res[GROUP];
            for (size_t j = 0; j < n; j++) lut[j] = ctx->lut[qs[j]];
            switch (n) {
                GROUP_CASE(1)
                GROUP_CASE(2)
                GROUP_CASE(3)
                GROUP_CASE(4)
            default: break;
            }
        }
    }
}

/* fs_kth (kernels.h: one counting pass per bit of the answer), with
 * 32 compares per instruction into a mask; the tail is a masked load. */
static size_t count_le(const uint16_t *v, size_t n, uint32_t t)
{
    const __m512i vt = _mm512_set1_epi16((short)(uint16_t)t);
    size_t i = 0, c = 0;
    for (; i + 32 <= n; i += 32)
        c += (size_t)__builtin_popcount(
            (unsigned)_mm512_cmple_epu16_mask(_mm512_loadu_si512((const void *)(v + i)), vt));
    if (i < n) {
        __mmask32 live = (__mmask32)((1u << (n - i)) - 1);
        __m512i x = _mm512_maskz_loadu_epi16(live, v + i);
        c += (size_t)__builtin_popcount((unsigned)_mm512_mask_cmple_epu16_mask(live, x, vt));
    }
    return c;
}

uint32_t ivfpq__fs_kth_avx512(const uint16_t *v, size_t n, size_t k)
{
    return ivfpq__kth_by_counting(v, n, k, count_le);
}

/*
 * FastScan, AArch64 Advanced SIMD. Each 16-byte half of a pair piece is one
 * sub-quantizer of 32 vectors; vqtbl1q_u8 looks up its 16 codes in the
 * sub-quantizer's 16 LUT bytes (indices >= 16 would give 0, so the high
 * nibble needs only a byte shift). Widening is native: the lookups of the
 * two sub-quantizers of a pair are added as uint16 with vaddl, keeping
 * the layout's byte order (vectors 0,8,1,9,... in bytes 0..15), which one
 * vuzp undoes at the end.
 */
#include <arm_neon.h>

#include "kernels.h"

/* Queries accumulated together: 4 q registers each, of 32. */
#define GROUP 4

/* r[k] = sums of vectors 8k .. 8k+7. */
IVFPQ_INLINE void block_sums(const uint8_t *blk, size_t M2, const uint8_t *const *lut,
                             uint16x8_t res[][4], const int NQ)
{
    uint16x8_t acc[GROUP][4];
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
IVFPQ_UNROLL
    for (int q = 0; q < NQ; q++) acc[q][0] = acc[q][1] = acc[q][2] = acc[q][3] = vdupq_n_u16(0);
    for (size_t p = 0; p < M2 / 2; p++) {
        uint8x16_t c0 = vld1q_u8(blk + p * 32), c1 = vld1q_u8(blk + p * 32 + 16);
        uint8x16_t lo0 = vandq_u8(c0, m4), hi0 = vshrq_n_u8(c0, 4);
        uint8x16_t lo1 = vandq_u8(c1, m4), hi1 = vshrq_n_u8(c1, 4);
IVFPQ_UNROLL
        for (int q = 0; q < NQ; q++) {
            uint8x16_t L0 = vld1q_u8(lut[q] + p * 32), L1 = vld1q_u8(lut[q] + p * 32 + 16);
            uint8x16_t a = vqtbl1q_u8(L0, lo0), b = vqtbl1q_u8(L1, lo1);
            acc[q][0] = vaddq_u16(acc[q][0], vaddl_u8(vget_low_u8(a), vget_low_u8(b)));
            acc[q][1] = vaddq_u16(acc[q][1], vaddl_high_u8(a, b));
            a = vqtbl1q_u8(L0, hi0);
            b = vqtbl1q_u8(L1, hi1);
            acc[q][2] = vaddq_u16(acc[q][2], vaddl_u8(vget_low_u8(a), vget_low_u8(b)));
            acc[q][3] = vaddq_u16(acc[q][3], vaddl_high_u8(a, b));
        }
    }
    /* lanes of acc[0] are vectors 0,8,1,9,2,10,3,11 and of acc[1] 4,12,...,15 */
IVFPQ_UNROLL
    for (int q = 0; q < NQ; q++) {
        res[q][0] = vuzp1q_u16(acc[q][0], acc[q][1]);
        res[q][1] = vuzp2q_u16(acc[q][0], acc[q][1]);
        res[q][2] = vuzp1q_u16(acc[q][2], acc[q][3]);
        res[q][3] = vuzp2q_u16(acc[q][2], acc[q][3]);
    }
}

void ivfpq__fs_accumulate_neon(const uint8_t *codes, size_t nblocks, size_t M2, const uint8_t *lut,
                               uint16_t *out)
{
    for (size_t b = 0; b < nblocks; b++) {
        uint16x8_t r[1][4];
        block_sums(codes + b * 16 * M2, M2, &lut, r, 1);
        for (int k = 0; k < 4; k++) vst1q_u16(out + b * 32 + 8 * k, r[0][k]);
    }
}

IVFPQ_INLINE uint32_t le_mask(const uint16x8_t r[4], uint16_t thr)
{
    uint16x8_t m = vminq_u16(vminq_u16(r[0], r[1]), vminq_u16(r[2], r[3]));
    if (vminvq_u16(m) > thr) return 0; /* the common case once the top-k is full */
    static const uint8_t bits[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t w = vld1q_u8(bits);
    uint16x8_t t = vdupq_n_u16(thr);
    uint8x16_t a = vcombine_u8(vmovn_u16(vcleq_u16(r[0], t)), vmovn_u16(vcleq_u16(r[1], t)));
    uint8x16_t b = vcombine_u8(vmovn_u16(vcleq_u16(r[2], t)), vmovn_u16(vcleq_u16(r[3], t)));
    a = vandq_u8(a, w);
    b = vandq_u8(b, w);
    return (uint32_t)vaddv_u8(vget_low_u8(a)) | (uint32_t)vaddv_u8(vget_high_u8(a)) << 8 |
           (uint32_t)vaddv_u8(vget_low_u8(b)) << 16 | (uint32_t)vaddv_u8(vget_high_u8(b)) << 24;
}

IVFPQ_INLINE void emit(ivfpq_fs_ctx *ctx, size_t b, const size_t *qs, uint16x8_t res[][4], int n)
{
    for (int j = 0; j < n; j++) {
        int32_t t = ctx->thr[qs[j]];
        uint32_t mask = le_mask(res[j], (uint16_t)(t > 65535 ? 65535 : t));
        if (mask) {
            uint16_t sums[32];
            for (int k = 0; k < 4; k++) vst1q_u16(sums + 8 * k, res[j][k]);
            ctx->sink(ctx, qs[j], b, mask, sums);
        }
    }
}

#define GROUP_CASE(N)                     \
    case N:                               \
        block_sums(blk, M2, lut, res, N); \
        emit(ctx, b, qs, res, N);         \
        break;

void ivfpq__fs_scan_neon(const uint8_t *codes, size_t nblocks, size_t M2, ivfpq_fs_ctx *ctx)
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
            uint16x8_t res[GROUP][4];
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
 * 8 compares per instruction; lane counts folded every 4096 vectors. */
static size_t count_le(const uint16_t *v, size_t n, uint32_t t)
{
    const uint16x8_t vt = vdupq_n_u16((uint16_t)t);
    size_t i = 0, c = 0;
    while (n - i >= 8) {
        size_t end = n - i > 8 * 4096 ? i + 8 * 4096 : n - (n - i) % 8;
        uint16x8_t acc = vdupq_n_u16(0);
        for (; i < end; i += 8) acc = vsubq_u16(acc, vcleq_u16(vld1q_u16(v + i), vt));
        c += vaddlvq_u16(acc);
    }
    for (; i < n; i++) c += v[i] <= t;
    return c;
}

uint32_t ivfpq__fs_kth_neon(const uint16_t *v, size_t n, size_t k)
{
    return ivfpq__kth_by_counting(v, n, k, count_le);
}

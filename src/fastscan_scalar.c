/*
 * Scalar reference of the FastScan kernels: reads the interleaved nibble
 * layout (kernels.h) one code at a time and sums with uint16 wrap-around,
 * which yields exactly the integers of the shuffle kernels.
 */
#include "kernels.h"

/* Byte of a 16-byte half holding vector w (0..15) of that half's nibble:
 * the inverse of perm = 0,8,1,9,...: w < 8 -> 2w, else 2(w-8)+1. */
static inline size_t slot_byte(size_t w) { return w < 8 ? 2 * w : 2 * (w - 8) + 1; }

static void block_sums(const uint8_t *blk, size_t M2, const uint8_t *lut, uint16_t *sums)
{
    for (size_t v = 0; v < 32; v++) {
        size_t w = v & 15, b = slot_byte(w);
        int hi = v >= 16;
        uint16_t s = 0;
        for (size_t m = 0; m < M2; m++) {
            uint8_t byte = blk[(m >> 1) * 32 + (m & 1) * 16 + b];
            unsigned c = hi ? (unsigned)(byte >> 4) : (unsigned)(byte & 15);
            s = (uint16_t)(s + lut[m * 16 + c]);
        }
        sums[v] = s;
    }
}

void ivfpq__fs_accumulate_scalar(const uint8_t *codes, size_t nblocks, size_t M2,
                                 const uint8_t *lut, uint16_t *out)
{
    size_t bb = 16 * M2;
    for (size_t b = 0; b < nblocks; b++) block_sums(codes + b * bb, M2, lut, out + b * 32);
}

void ivfpq__fs_scan_scalar(const uint8_t *codes, size_t nblocks, size_t M2, ivfpq_fs_ctx *ctx)
{
    size_t bb = 16 * M2;
    uint16_t sums[32];
    for (size_t b = 0; b < nblocks; b++) {
        for (size_t qi = 0; qi < ctx->nq; qi++) {
            int32_t thr = ctx->thr[qi];
            if (thr < 0) continue;
            block_sums(codes + b * bb, M2, ctx->lut[qi], sums);
            uint32_t mask = 0;
            for (size_t v = 0; v < 32; v++)
                if ((int32_t)sums[v] <= thr) mask |= (uint32_t)1 << v;
            if (mask) ctx->sink(ctx, qi, b, mask, sums);
        }
    }
}

/* Radix select on the high byte, then the low byte within the chosen
 * bucket; two interleaved histograms, as one list's sums crowd into few
 * buckets and increments of one counter would chain through memory. */
uint32_t ivfpq__fs_kth_scalar(const uint16_t *v, size_t n, size_t k)
{
    uint32_t h[2][256] = {{0}};
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        h[0][v[i] >> 8]++;
        h[1][v[i + 1] >> 8]++;
    }
    if (i < n) h[0][v[i] >> 8]++;
    uint32_t hi = 0;
    size_t below = 0;
    while (below + h[0][hi] + h[1][hi] < k) below += h[0][hi] + h[1][hi], hi++;
    for (size_t b = 0; b < 256; b++) h[0][b] = 0;
    for (i = 0; i < n; i++) h[0][v[i] & 255] += (uint32_t)(v[i] >> 8) == hi;
    uint32_t lo = 0;
    while (below + h[0][lo] < k) below += h[0][lo++];
    return hi << 8 | lo;
}

/*
 * Float kernels, AArch64 Advanced SIMD (vmulq + vaddq, never vfmaq: the
 * canonical order has separate mul and add, and the build has
 * -ffp-contract=off). The 16 canonical lanes of a pair are four q-register
 * groups; a 4 x 4 tile runs one pass per group with 16 accumulators (of 32
 * registers), then the tree adds group 0 + 2 and 1 + 3 (lane i + lane i+8),
 * those two (lane i + lane i+4), and finishes 4 pairs at a time by
 * transposition.
 */
#include <arm_neon.h>
#include <string.h>

#include "kernels.h"

IVFPQ_INLINE float32x4_t term(float32x4_t a, float32x4_t b, int l2)
{
    if (l2) {
        float32x4_t t = vsubq_f32(a, b);
        return vmulq_f32(t, t);
    }
    return vmulq_f32(a, b);
}

IVFPQ_INLINE float32x4_t load_part(const float *p, size_t r)
{
    float b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(b, p, r * sizeof(float));
    return vld1q_f32(b);
}

IVFPQ_INLINE void group_pass(const float *x, const float *y, size_t d, size_t g,
                             float32x4_t acc[4][4], const int RX, const int RY, const int L2)
{
IVFPQ_UNROLL
    for (int i = 0; i < RX; i++)
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) acc[i][j] = vdupq_n_f32(0.0f);
    size_t t = 4 * g;
    for (; t + 4 <= d; t += 16) {
        float32x4_t yv[4];
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) yv[j] = vld1q_f32(y + j * d + t);
IVFPQ_UNROLL
        for (int i = 0; i < RX; i++) {
            float32x4_t xv = vld1q_f32(x + i * d + t);
IVFPQ_UNROLL
            for (int j = 0; j < RY; j++) acc[i][j] = vaddq_f32(acc[i][j], term(xv, yv[j], L2));
        }
    }
    if (t < d) { /* zero lanes add +0: no change to any accumulator */
        float32x4_t yv[4];
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) yv[j] = load_part(y + j * d + t, d - t);
IVFPQ_UNROLL
        for (int i = 0; i < RX; i++) {
            float32x4_t xv = load_part(x + i * d + t, d - t);
IVFPQ_UNROLL
            for (int j = 0; j < RY; j++) acc[i][j] = vaddq_f32(acc[i][j], term(xv, yv[j], L2));
        }
    }
}

/* Last two canonical levels for 4 pairs from their q vectors. */
IVFPQ_INLINE float32x4_t finish4(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t e)
{
    float64x2_t ad = vreinterpretq_f64_f32(a), bd = vreinterpretq_f64_f32(b),
                cd = vreinterpretq_f64_f32(c), ed = vreinterpretq_f64_f32(e);
    float32x4_t s0 = vaddq_f32(vreinterpretq_f32_f64(vzip1q_f64(ad, bd)),
                               vreinterpretq_f32_f64(vzip2q_f64(ad, bd)));
    float32x4_t s1 = vaddq_f32(vreinterpretq_f32_f64(vzip1q_f64(cd, ed)),
                               vreinterpretq_f32_f64(vzip2q_f64(cd, ed)));
    return vaddq_f32(vuzp1q_f32(s0, s1), vuzp2q_f32(s0, s1));
}

IVFPQ_INLINE void tile(const float *x, const float *y, size_t d, float *out, size_t ldo,
                       const int RX, const int RY, const int L2)
{
    float32x4_t g[4][4][4];
IVFPQ_UNROLL
    for (size_t k = 0; k < 4; k++) group_pass(x, y, d, k, g[k], RX, RY, L2);
IVFPQ_UNROLL
    for (int i = 0; i < RX; i++) {
        float32x4_t q[4];
IVFPQ_UNROLL
        for (int j = 0; j < 4; j++) q[j] = vdupq_n_f32(0.0f);
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++)
            q[j] = vaddq_f32(vaddq_f32(g[0][i][j], g[2][i][j]), vaddq_f32(g[1][i][j], g[3][i][j]));
        float32x4_t r = finish4(q[0], q[1], q[2], q[3]);
        if (RY == 4) {
            vst1q_f32(out + i * ldo, r);
        } else {
            float b[4];
            vst1q_f32(b, r);
            memcpy(out + i * ldo, b, (size_t)RY * sizeof(float));
        }
    }
}

#define TILE_CASE(RX, RY, L2) \
    case (RX) * 8 + (RY): tile(xi, yj, d, o, ldo, RX, RY, L2); break;

IVFPQ_INLINE void tiles(const float *x, size_t nx, const float *y, size_t ny, size_t d,
                        float *out, size_t ldo, const int L2)
{
    for (size_t j0 = 0; j0 < ny; j0 += 4) {
        size_t ry = ny - j0 < 4 ? ny - j0 : 4;
        for (size_t i0 = 0; i0 < nx; i0 += 4) {
            size_t rx = nx - i0 < 4 ? nx - i0 : 4;
            const float *xi = x + i0 * d, *yj = y + j0 * d;
            float *o = out + i0 * ldo + j0;
            switch (rx * 8 + ry) {
                TILE_CASE(4, 4, L2) TILE_CASE(4, 3, L2) TILE_CASE(4, 2, L2) TILE_CASE(4, 1, L2)
                TILE_CASE(3, 4, L2) TILE_CASE(3, 3, L2) TILE_CASE(3, 2, L2) TILE_CASE(3, 1, L2)
                TILE_CASE(2, 4, L2) TILE_CASE(2, 3, L2) TILE_CASE(2, 2, L2) TILE_CASE(2, 1, L2)
                TILE_CASE(1, 4, L2) TILE_CASE(1, 3, L2) TILE_CASE(1, 2, L2) TILE_CASE(1, 1, L2)
            default: break;
            }
        }
    }
}

void ivfpq__l2sqr_tile_neon(const float *x, size_t nx, const float *y, size_t ny, size_t d,
                            float *out, size_t ldo)
{
    tiles(x, nx, y, ny, d, out, ldo, 1);
}

void ivfpq__dot_tile_neon(const float *x, size_t nx, const float *y, size_t ny, size_t d,
                          float *out, size_t ldo)
{
    tiles(x, nx, y, ny, d, out, ldo, 0);
}

/* ------------------------------------------------------------------ LUTs */

IVFPQ_INLINE void lut_any(const float *q, const float *cb, size_t M, size_t dsub, float *lut,
                          const int L2)
{
    for (size_t m = 0; m < M; m++) {
        const float *qm = q + m * dsub, *c = cb + m * dsub * 16;
        float32x4_t s[4];
IVFPQ_UNROLL
        for (int k = 0; k < 4; k++) s[k] = vdupq_n_f32(0.0f);
        for (size_t t = 0; t < dsub; t++) {
            float32x4_t qb = vdupq_n_f32(qm[t]);
IVFPQ_UNROLL
            for (int k = 0; k < 4; k++) s[k] = vaddq_f32(s[k], term(qb, vld1q_f32(c + t * 16 + 4 * k), L2));
        }
IVFPQ_UNROLL
        for (int k = 0; k < 4; k++) vst1q_f32(lut + m * 16 + 4 * k, L2 ? s[k] : vnegq_f32(s[k]));
    }
}

void ivfpq__lut_l2_neon(const float *q, const float *cb, size_t M, size_t dsub, float *lut)
{
    lut_any(q, cb, M, dsub, lut, 1);
}

void ivfpq__lut_ip_neon(const float *q, const float *cb, size_t M, size_t dsub, float *lut)
{
    lut_any(q, cb, M, dsub, lut, 0);
}

/* LUT quantizer rows: lut.c's baseline code (SSE2 / NEON) is already as wide. */
void ivfpq__lut_range_neon(const float *lut, size_t n, float *mn, float *mx)
{
    ivfpq__lut_range_scalar(lut, n, mn, mx);
}

void ivfpq__lut_u8_neon(const float *lut, size_t n, const float *mn, float a, uint8_t *out)
{
    ivfpq__lut_u8_scalar(lut, n, mn, a, out);
}

/* ------------------------------------------------------ int16 scores
 * A y block is four int16x8 of 4 rows (each row's dims 2t, 2t+1 side by
 * side). smlal/smlal2 multiply them by (q_2t, q_2t+1, q_2t, q_2t+1) into
 * int32 lanes (row, dim parity); a final pairwise add gives each row's sum.
 * The parity sums are bounded like the whole sum. */
IVFPQ_INLINE void i16_tile(const int16_t *x, size_t dp, const int16_t *y, int32_t *out,
                           size_t ldo, int RQ)
{
    int32x4_t acc[2][8];
IVFPQ_UNROLL
    for (int a = 0; a < RQ; a++)
IVFPQ_UNROLL
        for (int v = 0; v < 8; v++) acc[a][v] = vdupq_n_s32(0);
    for (size_t t = 0; t < dp / 2; t++) {
        int16x8_t yv[4];
IVFPQ_UNROLL
        for (int v = 0; v < 4; v++) yv[v] = vld1q_s16(y + t * 32 + 8 * v);
IVFPQ_UNROLL
        for (int a = 0; a < RQ; a++) {
            int32_t w;
            memcpy(&w, x + (size_t)a * dp + 2 * t, sizeof w);
            int16x4_t qv = vreinterpret_s16_s32(vdup_n_s32(w));
            int16x8_t qq = vcombine_s16(qv, qv);
IVFPQ_UNROLL
            for (int v = 0; v < 4; v++) {
                acc[a][2 * v] = vmlal_s16(acc[a][2 * v], vget_low_s16(yv[v]), qv);
                acc[a][2 * v + 1] = vmlal_high_s16(acc[a][2 * v + 1], yv[v], qq);
            }
        }
    }
IVFPQ_UNROLL
    for (int a = 0; a < RQ; a++)
IVFPQ_UNROLL
        for (int v = 0; v < 4; v++)
            vst1q_s32(out + (size_t)a * ldo + 4 * v, vpaddq_s32(acc[a][2 * v], acc[a][2 * v + 1]));
}

void ivfpq__i16_tile_neon(const int16_t *x, size_t nx, const int16_t *y, size_t nb, size_t dp,
                          int32_t *out, size_t ldo)
{
    for (size_t b = 0; b < nb; b++) {
        const int16_t *yb = y + b * dp * 16;
        size_t i0 = 0;
        for (; i0 + 2 <= nx; i0 += 2) i16_tile(x + i0 * dp, dp, yb, out + i0 * ldo + b * 16, ldo, 2);
        if (i0 < nx) i16_tile(x + i0 * dp, dp, yb, out + i0 * ldo + b * 16, ldo, 1);
    }
}

/*
 * Float kernels, SSE (SSSE3 + SSE4.1; no FMA). The 16 canonical lanes of a
 * pair are four xmm groups (lanes 0-3, 4-7, 8-11, 12-15). A 2 x 4 tile runs
 * one pass per group with 8 accumulators in registers; the tree then adds
 * group 0 + group 2 and group 1 + group 3 (lane i + lane i + 8), those two
 * (lane i + lane i + 4), and finishes 4 pairs at a time by transposition.
 */
#include <smmintrin.h>
#include <string.h>

#include "kernels.h"

IVFPQ_INLINE __m128 term(__m128 a, __m128 b, int l2)
{
    if (l2) {
        __m128 t = _mm_sub_ps(a, b);
        return _mm_mul_ps(t, t);
    }
    return _mm_mul_ps(a, b);
}

/* The first r (< 4) floats of p, zero-filled. */
IVFPQ_INLINE __m128 load_part(const float *p, size_t r)
{
    float b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(b, p, r * sizeof(float));
    return _mm_loadu_ps(b);
}

/* Lanes 4g .. 4g+3 of every 16 for the RX x RY pairs. */
IVFPQ_INLINE void group_pass(const float *x, const float *y, size_t d, size_t g,
                             __m128 acc[2][4], const int RX, const int RY, const int L2)
{
IVFPQ_UNROLL
    for (int i = 0; i < RX; i++)
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) acc[i][j] = _mm_setzero_ps();
    size_t t = 4 * g;
    for (; t + 4 <= d; t += 16) {
        __m128 yv[4];
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) yv[j] = _mm_loadu_ps(y + j * d + t);
IVFPQ_UNROLL
        for (int i = 0; i < RX; i++) {
            __m128 xv = _mm_loadu_ps(x + i * d + t);
IVFPQ_UNROLL
            for (int j = 0; j < RY; j++) acc[i][j] = _mm_add_ps(acc[i][j], term(xv, yv[j], L2));
        }
    }
    if (t < d) { /* zero lanes add +0: no change to any accumulator */
        __m128 yv[4];
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) yv[j] = load_part(y + j * d + t, d - t);
IVFPQ_UNROLL
        for (int i = 0; i < RX; i++) {
            __m128 xv = load_part(x + i * d + t, d - t);
IVFPQ_UNROLL
            for (int j = 0; j < RY; j++) acc[i][j] = _mm_add_ps(acc[i][j], term(xv, yv[j], L2));
        }
    }
}

/* Canonical last two levels for 4 pairs given their q vectors (lane i =
 * q[i]): result lane k = pair k. */
IVFPQ_INLINE __m128 finish4(__m128 a, __m128 b, __m128 c, __m128 e)
{
    __m128d ad = _mm_castps_pd(a), bd = _mm_castps_pd(b), cd = _mm_castps_pd(c),
            ed = _mm_castps_pd(e);
    __m128 s0 = _mm_add_ps(_mm_castpd_ps(_mm_unpacklo_pd(ad, bd)), _mm_castpd_ps(_mm_unpackhi_pd(ad, bd)));
    __m128 s1 = _mm_add_ps(_mm_castpd_ps(_mm_unpacklo_pd(cd, ed)), _mm_castpd_ps(_mm_unpackhi_pd(cd, ed)));
    return _mm_add_ps(_mm_shuffle_ps(s0, s1, _MM_SHUFFLE(2, 0, 2, 0)),
                      _mm_shuffle_ps(s0, s1, _MM_SHUFFLE(3, 1, 3, 1)));
}

IVFPQ_INLINE void tile(const float *x, const float *y, size_t d, float *out, size_t ldo,
                       const int RX, const int RY, const int L2)
{
    __m128 g0[2][4], g1[2][4], g2[2][4], g3[2][4];
    group_pass(x, y, d, 0, g0, RX, RY, L2);
    group_pass(x, y, d, 1, g1, RX, RY, L2);
    group_pass(x, y, d, 2, g2, RX, RY, L2);
    group_pass(x, y, d, 3, g3, RX, RY, L2);
IVFPQ_UNROLL
    for (int i = 0; i < RX; i++) {
        __m128 q[4];
IVFPQ_UNROLL
        for (int j = 0; j < 4; j++) q[j] = _mm_setzero_ps();
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++)
            q[j] = _mm_add_ps(_mm_add_ps(g0[i][j], g2[i][j]), _mm_add_ps(g1[i][j], g3[i][j]));
        __m128 r = finish4(q[0], q[1], q[2], q[3]);
        if (RY == 4) {
            _mm_storeu_ps(out + i * ldo, r);
        } else {
            float b[4];
            _mm_storeu_ps(b, r);
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
        for (size_t i0 = 0; i0 < nx; i0 += 2) {
            size_t rx = nx - i0 < 2 ? nx - i0 : 2;
            const float *xi = x + i0 * d, *yj = y + j0 * d;
            float *o = out + i0 * ldo + j0;
            switch (rx * 8 + ry) {
                TILE_CASE(2, 4, L2) TILE_CASE(2, 3, L2) TILE_CASE(2, 2, L2) TILE_CASE(2, 1, L2)
                TILE_CASE(1, 4, L2) TILE_CASE(1, 3, L2) TILE_CASE(1, 2, L2) TILE_CASE(1, 1, L2)
            default: break;
            }
        }
    }
}

void ivfpq__l2sqr_tile_sse(const float *x, size_t nx, const float *y, size_t ny, size_t d,
                           float *out, size_t ldo)
{
    tiles(x, nx, y, ny, d, out, ldo, 1);
}

void ivfpq__dot_tile_sse(const float *x, size_t nx, const float *y, size_t ny, size_t d,
                         float *out, size_t ldo)
{
    tiles(x, nx, y, ny, d, out, ldo, 0);
}

/* ------------------------------------------------------------------ LUTs */

IVFPQ_INLINE void lut_any(const float *q, const float *cb, size_t M, size_t dsub, float *lut,
                          const int L2)
{
    const __m128 sign = _mm_set1_ps(-0.0f);
    for (size_t m = 0; m < M; m++) {
        const float *qm = q + m * dsub, *c = cb + m * dsub * 16;
        __m128 s[4];
IVFPQ_UNROLL
        for (int k = 0; k < 4; k++) s[k] = _mm_setzero_ps();
        for (size_t t = 0; t < dsub; t++) {
            __m128 qb = _mm_set1_ps(qm[t]);
IVFPQ_UNROLL
            for (int k = 0; k < 4; k++)
                s[k] = _mm_add_ps(s[k], term(qb, _mm_loadu_ps(c + t * 16 + 4 * k), L2));
        }
IVFPQ_UNROLL
        for (int k = 0; k < 4; k++) _mm_storeu_ps(lut + m * 16 + 4 * k, L2 ? s[k] : _mm_xor_ps(s[k], sign));
    }
}

void ivfpq__lut_l2_sse(const float *q, const float *cb, size_t M, size_t dsub, float *lut)
{
    lut_any(q, cb, M, dsub, lut, 1);
}

void ivfpq__lut_ip_sse(const float *q, const float *cb, size_t M, size_t dsub, float *lut)
{
    lut_any(q, cb, M, dsub, lut, 0);
}

/* LUT quantizer rows: lut.c's baseline code (SSE2 / NEON) is already as wide. */
void ivfpq__lut_range_sse(const float *lut, size_t n, float *mn, float *mx)
{
    ivfpq__lut_range_scalar(lut, n, mn, mx);
}

void ivfpq__lut_u8_sse(const float *lut, size_t n, const float *mn, float a, uint8_t *out)
{
    ivfpq__lut_u8_scalar(lut, n, mn, a, out);
}

/* ------------------------------------------------------ int16 scores
 * A y block is four xmm of 4 rows; a query's dimension pair is broadcast
 * and pmaddwd (SSE2) adds both products per row; 2 queries per pass. */
IVFPQ_INLINE void i16_tile(const int16_t *x, size_t dp, const int16_t *y, int32_t *out,
                           size_t ldo, int RQ)
{
    __m128i acc[2][4];
IVFPQ_UNROLL
    for (int a = 0; a < RQ; a++)
IVFPQ_UNROLL
        for (int v = 0; v < 4; v++) acc[a][v] = _mm_setzero_si128();
    for (size_t t = 0; t < dp / 2; t++) {
        __m128i yv[4];
IVFPQ_UNROLL
        for (int v = 0; v < 4; v++)
            yv[v] = _mm_loadu_si128((const __m128i *)(const void *)(y + t * 32 + 8 * v));
IVFPQ_UNROLL
        for (int a = 0; a < RQ; a++) {
            int32_t w;
            memcpy(&w, x + (size_t)a * dp + 2 * t, sizeof w);
            __m128i qv = _mm_set1_epi32(w);
IVFPQ_UNROLL
            for (int v = 0; v < 4; v++)
                acc[a][v] = _mm_add_epi32(acc[a][v], _mm_madd_epi16(qv, yv[v]));
        }
    }
IVFPQ_UNROLL
    for (int a = 0; a < RQ; a++)
IVFPQ_UNROLL
        for (int v = 0; v < 4; v++)
            _mm_storeu_si128((__m128i *)(void *)(out + (size_t)a * ldo + 4 * v), acc[a][v]);
}

void ivfpq__i16_tile_sse(const int16_t *x, size_t nx, const int16_t *y, size_t nb, size_t dp,
                         int32_t *out, size_t ldo)
{
    for (size_t b = 0; b < nb; b++) {
        const int16_t *yb = y + b * dp * 16;
        size_t i0 = 0;
        for (; i0 + 2 <= nx; i0 += 2) i16_tile(x + i0 * dp, dp, yb, out + i0 * ldo + b * 16, ldo, 2);
        if (i0 < nx) i16_tile(x + i0 * dp, dp, yb, out + i0 * ldo + b * 16, ldo, 1);
    }
}

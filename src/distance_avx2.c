/*
 * Float kernels, AVX2 (no FMA: the canonical order has separate mul and
 * add). The 16 canonical lanes of a pair are two ymm: lanes 0-7 and 8-15.
 * A 2 x 4 tile runs two passes, one per half, so that 8 accumulators (plus
 * the 4 y vectors) fit the 16 registers; the first level of the canonical
 * tree (lane i + lane i + 8) is then "half 0 + half 1", and the other three
 * levels run on the 8 pairs at once with transposing shuffles.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels.h"

/* maskload takes the sign bit of each 32-bit lane */
IVFPQ_INLINE __m256i tail_mask(size_t r)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), idx);
}

IVFPQ_INLINE __m256 term(__m256 a, __m256 b, int l2)
{
    if (l2) {
        __m256 t = _mm256_sub_ps(a, b);
        return _mm256_mul_ps(t, t);
    }
    return _mm256_mul_ps(a, b);
}

/* Lanes [0, 8) of the result are pairs 0, 2, 4, 6; lanes [4, 8) are 1, 3,
 * 5, 7; each is the canonical tree applied to (lo[k], hi[k]). */
IVFPQ_INLINE __m256 reduce8(const __m256 lo[8], const __m256 hi[8])
{
    __m256 h[8], q[4], s[2];
IVFPQ_UNROLL
    for (int k = 0; k < 8; k++) h[k] = _mm256_add_ps(lo[k], hi[k]);
IVFPQ_UNROLL
    for (int k = 0; k < 4; k++) {
        __m256 a = h[2 * k], b = h[2 * k + 1];
        q[k] = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
    }
IVFPQ_UNROLL
    for (int k = 0; k < 2; k++) {
        __m256d a = _mm256_castps_pd(q[2 * k]), b = _mm256_castps_pd(q[2 * k + 1]);
        s[k] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(a, b)),
                             _mm256_castpd_ps(_mm256_unpackhi_pd(a, b)));
    }
    return _mm256_add_ps(_mm256_shuffle_ps(s[0], s[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm256_shuffle_ps(s[0], s[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

IVFPQ_INLINE float reduce1(__m256 lo, __m256 hi)
{
    __m256 h = _mm256_add_ps(lo, hi);
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(p, _mm_shuffle_ps(p, p, 1)));
}

/* One half (lanes 8*half .. 8*half+7 of every 16) of the RX x RY pairs. */
IVFPQ_INLINE void half_pass(const float *x, const float *y, size_t d, size_t half,
                            __m256 acc[2][4], const int RX, const int RY, const int L2)
{
IVFPQ_UNROLL
    for (int i = 0; i < RX; i++)
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) acc[i][j] = _mm256_setzero_ps();
    size_t t = 8 * half;
    for (; t + 8 <= d; t += 16) {
        __m256 yv[4];
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) yv[j] = _mm256_loadu_ps(y + j * d + t);
IVFPQ_UNROLL
        for (int i = 0; i < RX; i++) {
            __m256 xv = _mm256_loadu_ps(x + i * d + t);
IVFPQ_UNROLL
            for (int j = 0; j < RY; j++) acc[i][j] = _mm256_add_ps(acc[i][j], term(xv, yv[j], L2));
        }
    }
    if (t < d) { /* zero lanes add +0: no change to any accumulator */
        __m256i m = tail_mask(d - t);
        __m256 yv[4];
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) yv[j] = _mm256_maskload_ps(y + j * d + t, m);
IVFPQ_UNROLL
        for (int i = 0; i < RX; i++) {
            __m256 xv = _mm256_maskload_ps(x + i * d + t, m);
IVFPQ_UNROLL
            for (int j = 0; j < RY; j++) acc[i][j] = _mm256_add_ps(acc[i][j], term(xv, yv[j], L2));
        }
    }
}

IVFPQ_INLINE void tile(const float *x, const float *y, size_t d, float *out, size_t ldo,
                       const int RX, const int RY, const int L2)
{
    __m256 a0[2][4], a1[2][4];
    half_pass(x, y, d, 0, a0, RX, RY, L2);
    half_pass(x, y, d, 1, a1, RX, RY, L2);
    if (RX == 1 && RY == 1) {
        out[0] = reduce1(a0[0][0], a1[0][0]);
        return;
    }
    __m256 lo[8], hi[8];
IVFPQ_UNROLL
    for (int k = 0; k < 8; k++) lo[k] = hi[k] = _mm256_setzero_ps();
    /* pair k = 2j + i, so that row i comes out in 128-bit lane i */
IVFPQ_UNROLL
    for (int i = 0; i < RX; i++)
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) {
            lo[2 * j + i] = a0[i][j];
            hi[2 * j + i] = a1[i][j];
        }
    __m256 r = reduce8(lo, hi);
    const __m128i sm = _mm_cmpgt_epi32(_mm_set1_epi32(RY), _mm_setr_epi32(0, 1, 2, 3));
    _mm_maskstore_ps(out, sm, _mm256_castps256_ps128(r));
    if (RX > 1) _mm_maskstore_ps(out + ldo, sm, _mm256_extractf128_ps(r, 1));
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

void ivfpq__l2sqr_tile_avx2(const float *x, size_t nx, const float *y, size_t ny, size_t d,
                            float *out, size_t ldo)
{
    tiles(x, nx, y, ny, d, out, ldo, 1);
}

void ivfpq__dot_tile_avx2(const float *x, size_t nx, const float *y, size_t ny, size_t d,
                          float *out, size_t ldo)
{
    tiles(x, nx, y, ny, d, out, ldo, 0);
}

/* ------------------------------------------------------------------ LUTs */

IVFPQ_INLINE void lut_any(const float *q, const float *cb, size_t M, size_t dsub, float *lut,
                          const int L2)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (size_t m = 0; m < M; m++) {
        const float *qm = q + m * dsub, *c = cb + m * dsub * 16;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        for (size_t t = 0; t < dsub; t++) {
            __m256 qb = _mm256_set1_ps(qm[t]);
            s0 = _mm256_add_ps(s0, term(qb, _mm256_loadu_ps(c + t * 16), L2));
            s1 = _mm256_add_ps(s1, term(qb, _mm256_loadu_ps(c + t * 16 + 8), L2));
        }
        if (!L2) {
            s0 = _mm256_xor_ps(s0, sign);
            s1 = _mm256_xor_ps(s1, sign);
        }
        _mm256_storeu_ps(lut + m * 16, s0);
        _mm256_storeu_ps(lut + m * 16 + 8, s1);
    }
}

void ivfpq__lut_l2_avx2(const float *q, const float *cb, size_t M, size_t dsub, float *lut)
{
    lut_any(q, cb, M, dsub, lut, 1);
}

void ivfpq__lut_ip_avx2(const float *q, const float *cb, size_t M, size_t dsub, float *lut)
{
    lut_any(q, cb, M, dsub, lut, 0);
}

/* A row holding a NaN: exactly the scalar loop of lut.c. */
static void range_scalar(const float *r, float *mn, float *mx)
{
    float lo = r[0], hi = r[0];
    for (int j = 1; j < 16; j++) {
        if (r[j] < lo) lo = r[j];
        if (r[j] > hi) hi = r[j];
    }
    *mn = lo;
    *mx = hi;
}

void ivfpq__lut_range_avx2(const float *lut, size_t n, float *mn, float *mx)
{
    for (size_t i = 0; i < n; i++) {
        __m256 a = _mm256_loadu_ps(lut + i * 16), b = _mm256_loadu_ps(lut + i * 16 + 8);
        if (_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q))) {
            range_scalar(lut + i * 16, mn + i, mx + i);
            continue;
        }
        __m256 lo8 = _mm256_min_ps(a, b), hi8 = _mm256_max_ps(a, b);
        __m128 lo = _mm_min_ps(_mm256_castps256_ps128(lo8), _mm256_extractf128_ps(lo8, 1));
        __m128 hi = _mm_max_ps(_mm256_castps256_ps128(hi8), _mm256_extractf128_ps(hi8, 1));
        lo = _mm_min_ps(lo, _mm_movehl_ps(lo, lo));
        hi = _mm_max_ps(hi, _mm_movehl_ps(hi, hi));
        mn[i] = _mm_cvtss_f32(_mm_min_ss(lo, _mm_shuffle_ps(lo, lo, 1)));
        mx[i] = _mm_cvtss_f32(_mm_max_ss(hi, _mm_shuffle_ps(hi, hi, 1)));
    }
}

void ivfpq__lut_u8_avx2(const float *lut, size_t n, const float *mn, float a, uint8_t *out)
{
    const __m256 va = _mm256_set1_ps(a), half = _mm256_set1_ps(0.5f),
                 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255.0f);
    for (size_t i = 0; i < n; i++) {
        const __m256 m = _mm256_set1_ps(mn[i]);
        __m256 v0 = _mm256_sub_ps(_mm256_loadu_ps(lut + i * 16), m);
        __m256 v1 = _mm256_sub_ps(_mm256_loadu_ps(lut + i * 16 + 8), m);
        v0 = _mm256_add_ps(_mm256_mul_ps(v0, va), half);
        v1 = _mm256_add_ps(_mm256_mul_ps(v1, va), half);
        v0 = _mm256_min_ps(_mm256_max_ps(v0, zero), top); /* maxps(NaN, 0) = 0 */
        v1 = _mm256_min_ps(_mm256_max_ps(v1, zero), top);
        __m256i q0 = _mm256_cvttps_epi32(v0), q1 = _mm256_cvttps_epi32(v1);
        __m128i w0 = _mm_packs_epi32(_mm256_castsi256_si128(q0), _mm256_extracti128_si256(q0, 1));
        __m128i w1 = _mm_packs_epi32(_mm256_castsi256_si128(q1), _mm256_extracti128_si256(q1, 1));
        _mm_storeu_si128((__m128i *)(void *)(out + i * 16), _mm_packus_epi16(w0, w1));
    }
}

/* ------------------------------------------------------ int16 scores
 * A y block is two ymm (rows 0-7, 8-15); a query's dimension pair is
 * broadcast and vpmaddwd adds both products per row. Up to 4 queries per
 * pass share the block loads (8 accumulators). */
IVFPQ_INLINE void i16_tile(const int16_t *x, size_t dp, const int16_t *y, int32_t *out,
                           size_t ldo, int RQ)
{
    __m256i acc[4][2];
IVFPQ_UNROLL
    for (int a = 0; a < RQ; a++) acc[a][0] = acc[a][1] = _mm256_setzero_si256();
    for (size_t t = 0; t < dp / 2; t++) {
        __m256i y0 = _mm256_loadu_si256((const __m256i *)(const void *)(y + t * 32));
        __m256i y1 = _mm256_loadu_si256((const __m256i *)(const void *)(y + t * 32 + 16));
IVFPQ_UNROLL
        for (int a = 0; a < RQ; a++) {
            int32_t w;
            memcpy(&w, x + (size_t)a * dp + 2 * t, sizeof w);
            __m256i qv = _mm256_set1_epi32(w);
            acc[a][0] = _mm256_add_epi32(acc[a][0], _mm256_madd_epi16(qv, y0));
            acc[a][1] = _mm256_add_epi32(acc[a][1], _mm256_madd_epi16(qv, y1));
        }
    }
IVFPQ_UNROLL
    for (int a = 0; a < RQ; a++) {
        _mm256_storeu_si256((__m256i *)(void *)(out + (size_t)a * ldo), acc[a][0]);
        _mm256_storeu_si256((__m256i *)(void *)(out + (size_t)a * ldo + 8), acc[a][1]);
    }
}

void ivfpq__i16_tile_avx2(const int16_t *x, size_t nx, const int16_t *y, size_t nb, size_t dp,
                          int32_t *out, size_t ldo)
{
    for (size_t b = 0; b < nb; b++) {
        const int16_t *yb = y + b * dp * 16;
        for (size_t i0 = 0; i0 < nx; i0 += 4) {
            const int16_t *xi = x + i0 * dp;
            int32_t *o = out + i0 * ldo + b * 16;
            switch (nx - i0 < 4 ? nx - i0 : 4) {
            case 4: i16_tile(xi, dp, yb, o, ldo, 4); break;
            case 3: i16_tile(xi, dp, yb, o, ldo, 3); break;
            case 2: i16_tile(xi, dp, yb, o, ldo, 2); break;
            default: i16_tile(xi, dp, yb, o, ldo, 1); break;
            }
        }
    }
}

#ifdef IVFPQ_HAVE_AVXVNNI_KERNEL
/* ------------------------------------------------------- int8 scores
 * kernels.h's i8_tile with AVX-VNNI: vpdpbusd adds 4 uint8 x int8 products
 * per lane. A block step is two ymm (rows 0-7, 8-15), the accumulators
 * start at -corr; up to 4 queries share the block loads. */
#define AVXVNNI_ATTR __attribute__((target("avx2,avxvnni")))
AVXVNNI_ATTR static inline __attribute__((always_inline)) void i8_tile(
    const uint8_t *x, size_t dq, const int8_t *y, const int32_t *corr, int32_t *out, size_t ldo,
    int RQ)
{
    __m256i acc[4][2];
    __m256i z = _mm256_setzero_si256();
    __m256i c0 = _mm256_sub_epi32(z, _mm256_loadu_si256((const __m256i *)(const void *)corr));
    __m256i c1 = _mm256_sub_epi32(z, _mm256_loadu_si256((const __m256i *)(const void *)(corr + 8)));
IVFPQ_UNROLL
    for (int a = 0; a < RQ; a++) {
        acc[a][0] = c0;
        acc[a][1] = c1;
    }
    for (size_t t = 0; t < dq / 4; t++) {
        __m256i y0 = _mm256_loadu_si256((const __m256i *)(const void *)(y + t * 64));
        __m256i y1 = _mm256_loadu_si256((const __m256i *)(const void *)(y + t * 64 + 32));
IVFPQ_UNROLL
        for (int a = 0; a < RQ; a++) {
            int32_t w;
            memcpy(&w, x + (size_t)a * dq + 4 * t, sizeof w);
            __m256i qv = _mm256_set1_epi32(w);
            acc[a][0] = _mm256_dpbusd_avx_epi32(acc[a][0], qv, y0);
            acc[a][1] = _mm256_dpbusd_avx_epi32(acc[a][1], qv, y1);
        }
    }
IVFPQ_UNROLL
    for (int a = 0; a < RQ; a++) {
        _mm256_storeu_si256((__m256i *)(void *)(out + (size_t)a * ldo), acc[a][0]);
        _mm256_storeu_si256((__m256i *)(void *)(out + (size_t)a * ldo + 8), acc[a][1]);
    }
}

AVXVNNI_ATTR void ivfpq__i8_tile_avx2vnni(const uint8_t *x, size_t nx, const int8_t *y,
                                          const int32_t *corr, size_t nb, size_t dq, int32_t *out,
                                          size_t ldo)
{
    for (size_t b = 0; b < nb; b++) {
        const int8_t *yb = y + b * dq * 16;
        for (size_t i0 = 0; i0 < nx; i0 += 4) {
            const uint8_t *xi = x + i0 * dq;
            int32_t *o = out + i0 * ldo + b * 16;
            switch (nx - i0 < 4 ? nx - i0 : 4) {
            case 4: i8_tile(xi, dq, yb, corr + b * 16, o, ldo, 4); break;
            case 3: i8_tile(xi, dq, yb, corr + b * 16, o, ldo, 3); break;
            case 2: i8_tile(xi, dq, yb, corr + b * 16, o, ldo, 2); break;
            default: i8_tile(xi, dq, yb, corr + b * 16, o, ldo, 1); break;
            }
        }
    }
}
#endif

/* ------------------------------------------- prefilter row quantizer
 * (kernels.h: ivfpq_cpf_quant_fn; not bit-identical to other levels, as
 * documented there). Tails by masked loads: absent lanes quantize 0 to 0. */
IVFPQ_INLINE __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

IVFPQ_INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}

float ivfpq__cpf_quant_avx2(const float *x, const float *mu, size_t d, float R, int16_t *out,
                            int blocked, float sums[5])
{
    __m256 vm = _mm256_setzero_ps();
    for (size_t j = 0; j < d; j += 8) {
        __m256i m = tail_mask(d - j < 8 ? d - j : 8);
        __m256 v = _mm256_sub_ps(_mm256_maskload_ps(x + j, m), _mm256_maskload_ps(mu + j, m));
        vm = _mm256_max_ps(vm, abs8(v));
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    float mx = _mm_cvtss_f32(_mm_max_ss(h, _mm_shuffle_ps(h, h, 1)));
    float sc = mx / R, inv = mx > 0.0f ? R / mx : 0.0f;
    __m256 vinv = _mm256_set1_ps(inv), vs = _mm256_set1_ps(sc), hi = _mm256_set1_ps(R),
           lo = _mm256_set1_ps(-R);
    __m256 e2 = _mm256_setzero_ps(), v2 = e2, x2 = e2, md = e2, ma = e2;
    for (size_t j = 0; j < d; j += 8) {
        size_t n = d - j < 8 ? d - j : 8;
        __m256i m = tail_mask(n);
        __m256 xv = _mm256_maskload_ps(x + j, m), mv = _mm256_maskload_ps(mu + j, m);
        __m256 v = _mm256_sub_ps(xv, mv);
        __m256 r = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v, vinv), lo), hi);
        __m256i c = _mm256_cvtps_epi32(r);
        __m256 e = _mm256_sub_ps(v, _mm256_mul_ps(vs, _mm256_cvtepi32_ps(c)));
        __m256 p = _mm256_mul_ps(mv, xv);
        e2 = _mm256_add_ps(e2, _mm256_mul_ps(e, e));
        v2 = _mm256_add_ps(v2, _mm256_mul_ps(v, v));
        x2 = _mm256_add_ps(x2, _mm256_mul_ps(xv, xv));
        md = _mm256_add_ps(md, p);
        ma = _mm256_add_ps(ma, abs8(p));
        /* 8 int16 in order: pack within lanes, then gather the low halves */
        __m256i pk = _mm256_permute4x64_epi64(_mm256_packs_epi32(c, c), 0x08);
        int16_t t[8];
        _mm_storeu_si128((__m128i *)(void *)t, _mm256_castsi256_si128(pk));
        if (blocked)
            for (size_t l = 0; l < n; l += 2) memcpy(out + ((j + l) >> 1) * 32, t + l, 4);
        else
            memcpy(out + j, t, n * sizeof(int16_t));
    }
    sums[0] = hsum8(e2);
    sums[1] = hsum8(v2);
    sums[2] = hsum8(x2);
    sums[3] = hsum8(md);
    sums[4] = hsum8(ma);
    return mx;
}

/*
 * Float kernels, AVX-512F: one zmm holds the 16 canonical lanes of one
 * (x row, y row) pair, so the canonical order of kernels.h is simply "one
 * vector accumulator per pair". Tiles of up to 4 x 4 pairs keep 16
 * accumulators in registers; the 16 finished accumulators are reduced
 * together by a transposing tree whose every add is the canonical one.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels.h"

IVFPQ_INLINE __mmask16 tail_mask(size_t r) { return (__mmask16)((1u << r) - 1u); }

/* Canonical reduction of one accumulator. */
IVFPQ_INLINE float reduce1(__m512 a)
{
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a), hi);
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(p, _mm_shuffle_ps(p, p, 1)));
}

/* Canonical reduction of 16 accumulators at once. Each level adds lanes i
 * and i + 8 (then 4, 2, 1) of every input, as the scalar tree does, while
 * shuffling the inputs so that lane 4a + b of the result is v[4b + a]. */
IVFPQ_INLINE __m512 reduce16(const __m512 v[16])
{
    __m512 w[8], u[4], s[2];
IVFPQ_UNROLL
    for (int k = 0; k < 8; k++) {
        __m512 a = v[2 * k], b = v[2 * k + 1];
        w[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    }
IVFPQ_UNROLL
    for (int k = 0; k < 4; k++) {
        __m512 a = w[2 * k], b = w[2 * k + 1];
        u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    }
IVFPQ_UNROLL
    for (int k = 0; k < 2; k++) {
        __m512d a = _mm512_castps_pd(u[2 * k]), b = _mm512_castps_pd(u[2 * k + 1]);
        s[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    return _mm512_add_ps(_mm512_shuffle_ps(s[0], s[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(s[0], s[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

IVFPQ_INLINE __m512 term(__m512 a, __m512 b, int l2)
{
    if (l2) {
        __m512 t = _mm512_sub_ps(a, b);
        return _mm512_mul_ps(t, t);
    }
    return _mm512_mul_ps(a, b);
}

/* out[i * ldo + j] for i < RX, j < RY; RX, RY, L2 are constants after
 * inlining, so acc[][] lives in registers. */
IVFPQ_INLINE void tile(const float *x, const float *y, size_t d, float *out, size_t ldo,
                       const int RX, const int RY, const int L2)
{
    __m512 acc[4][4];
IVFPQ_UNROLL
    for (int i = 0; i < RX; i++)
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) acc[i][j] = _mm512_setzero_ps();
    size_t t = 0;
    for (; t + 16 <= d; t += 16) {
        __m512 yv[4];
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) yv[j] = _mm512_loadu_ps(y + j * d + t);
IVFPQ_UNROLL
        for (int i = 0; i < RX; i++) {
            __m512 xv = _mm512_loadu_ps(x + i * d + t);
IVFPQ_UNROLL
            for (int j = 0; j < RY; j++) acc[i][j] = _mm512_add_ps(acc[i][j], term(xv, yv[j], L2));
        }
    }
    if (t < d) { /* zero lanes add +0, which leaves any accumulator unchanged */
        __mmask16 m = tail_mask(d - t);
        __m512 yv[4];
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) yv[j] = _mm512_maskz_loadu_ps(m, y + j * d + t);
IVFPQ_UNROLL
        for (int i = 0; i < RX; i++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + i * d + t);
IVFPQ_UNROLL
            for (int j = 0; j < RY; j++) acc[i][j] = _mm512_add_ps(acc[i][j], term(xv, yv[j], L2));
        }
    }
    if (RX == 1 && RY == 1) {
        out[0] = reduce1(acc[0][0]);
        return;
    }
    /* v[4j + i] = acc[i][j]: lane group i of the result is row i */
    __m512 v[16];
IVFPQ_UNROLL
    for (int k = 0; k < 16; k++) v[k] = _mm512_setzero_ps();
IVFPQ_UNROLL
    for (int i = 0; i < RX; i++)
IVFPQ_UNROLL
        for (int j = 0; j < RY; j++) v[4 * j + i] = acc[i][j];
    __m512 r = reduce16(v);
    /* extractf32x4 needs an immediate lane index: spelled out */
    __mmask8 cm = (__mmask8)tail_mask((size_t)RY);
    _mm_mask_storeu_ps(out, cm, _mm512_castps512_ps128(r));
    if (RX > 1) _mm_mask_storeu_ps(out + 1 * ldo, cm, _mm512_extractf32x4_ps(r, 1));
    if (RX > 2) _mm_mask_storeu_ps(out + 2 * ldo, cm, _mm512_extractf32x4_ps(r, 2));
    if (RX > 3) _mm_mask_storeu_ps(out + 3 * ldo, cm, _mm512_extractf32x4_ps(r, 3));
}

#define TILE_CASE(RX, RY, L2) \
    case (RX) * 8 + (RY): tile(x, y, d, out, ldo, RX, RY, L2); break;

/* Dispatches a tile of rx x ry (1..4 each) to its specialised body. */
IVFPQ_INLINE void tile_any(const float *x, const float *y, size_t d, float *out, size_t ldo,
                           size_t rx, size_t ry, const int L2)
{
    switch (rx * 8 + ry) {
        TILE_CASE(4, 4, L2) TILE_CASE(4, 3, L2) TILE_CASE(4, 2, L2) TILE_CASE(4, 1, L2)
        TILE_CASE(3, 4, L2) TILE_CASE(3, 3, L2) TILE_CASE(3, 2, L2) TILE_CASE(3, 1, L2)
        TILE_CASE(2, 4, L2) TILE_CASE(2, 3, L2) TILE_CASE(2, 2, L2) TILE_CASE(2, 1, L2)
        TILE_CASE(1, 4, L2) TILE_CASE(1, 3, L2) TILE_CASE(1, 2, L2) TILE_CASE(1, 1, L2)
    default: break;
    }
}

/* y-block outer, x rows inner: the 4 y rows stay in L1 while all x rows
 * (the caller keeps those few) pass over them. */
IVFPQ_INLINE void tiles(const float *x, size_t nx, const float *y, size_t ny, size_t d,
                        float *out, size_t ldo, const int L2)
{
    for (size_t j0 = 0; j0 < ny; j0 += 4) {
        size_t ry = ny - j0 < 4 ? ny - j0 : 4;
        for (size_t i0 = 0; i0 < nx; i0 += 4) {
            size_t rx = nx - i0 < 4 ? nx - i0 : 4;
            tile_any(x + i0 * d, y + j0 * d, d, out + i0 * ldo + j0, ldo, rx, ry, L2);
        }
    }
}

void ivfpq__l2sqr_tile_avx512(const float *x, size_t nx, const float *y, size_t ny, size_t d,
                              float *out, size_t ldo)
{
    tiles(x, nx, y, ny, d, out, ldo, 1);
}

void ivfpq__dot_tile_avx512(const float *x, size_t nx, const float *y, size_t ny, size_t d,
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
        __m512 s = _mm512_setzero_ps();
        for (size_t t = 0; t < dsub; t++)
            s = _mm512_add_ps(s, term(_mm512_set1_ps(qm[t]), _mm512_loadu_ps(c + t * 16), L2));
        if (!L2) s = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(s),
                                                          _mm512_set1_epi32(INT32_MIN)));
        _mm512_storeu_ps(lut + m * 16, s);
    }
}

void ivfpq__lut_l2_avx512(const float *q, const float *cb, size_t M, size_t dsub, float *lut)
{
    lut_any(q, cb, M, dsub, lut, 1);
}

void ivfpq__lut_ip_avx512(const float *q, const float *cb, size_t M, size_t dsub, float *lut)
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

/* Min (or max) of each of 16 rows, halving the vectors each step: 128-bit
 * lanes of row pairs, then 32-bit pairs within lanes; 15 operations and
 * 30 shuffles instead of a 4-step reduction per row. The last vector holds
 * row j + 4e at element 4j + e; `order` puts rows back in place. */
#define RANGE16(OP, v, out)                                                                 \
    do {                                                                                    \
        __m512 w_[8], x_[4], y_[2];                                                         \
        IVFPQ_UNROLL for (int p_ = 0; p_ < 8; p_++)                                         \
            w_[p_] = OP(_mm512_shuffle_f32x4(v[2 * p_], v[2 * p_ + 1], _MM_SHUFFLE(1, 0, 1, 0)), \
                        _mm512_shuffle_f32x4(v[2 * p_], v[2 * p_ + 1], _MM_SHUFFLE(3, 2, 3, 2))); \
        IVFPQ_UNROLL for (int p_ = 0; p_ < 4; p_++)                                         \
            x_[p_] = OP(_mm512_shuffle_f32x4(w_[2 * p_], w_[2 * p_ + 1], _MM_SHUFFLE(2, 0, 2, 0)), \
                        _mm512_shuffle_f32x4(w_[2 * p_], w_[2 * p_ + 1], _MM_SHUFFLE(3, 1, 3, 1))); \
        IVFPQ_UNROLL for (int p_ = 0; p_ < 2; p_++)                                         \
            y_[p_] = OP(_mm512_shuffle_ps(x_[2 * p_], x_[2 * p_ + 1], _MM_SHUFFLE(1, 0, 1, 0)),   \
                        _mm512_shuffle_ps(x_[2 * p_], x_[2 * p_ + 1], _MM_SHUFFLE(3, 2, 3, 2)));  \
        out = _mm512_permutexvar_ps(order,                                                  \
                                    OP(_mm512_shuffle_ps(y_[0], y_[1], _MM_SHUFFLE(2, 0, 2, 0)), \
                                       _mm512_shuffle_ps(y_[0], y_[1], _MM_SHUFFLE(3, 1, 3, 1)))); \
    } while (0)

void ivfpq__lut_range_avx512(const float *lut, size_t n, float *mn, float *mx)
{
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v[16], lo, hi;
        __mmask16 nan = 0;
        IVFPQ_UNROLL for (int r = 0; r < 16; r++) {
            v[r] = _mm512_loadu_ps(lut + (i + r) * 16);
            nan |= _mm512_cmp_ps_mask(v[r], v[r], _CMP_UNORD_Q);
        }
        if (nan) break; /* rows with a NaN: the loop below */
        RANGE16(_mm512_min_ps, v, lo);
        RANGE16(_mm512_max_ps, v, hi);
        _mm512_storeu_ps(mn + i, lo);
        _mm512_storeu_ps(mx + i, hi);
    }
    for (; i < n; i++) {
        __m512 v = _mm512_loadu_ps(lut + i * 16);
        if (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q)) {
            range_scalar(lut + i * 16, mn + i, mx + i);
            continue;
        }
        mn[i] = _mm512_reduce_min_ps(v);
        mx[i] = _mm512_reduce_max_ps(v);
    }
}

void ivfpq__lut_u8_avx512(const float *lut, size_t n, const float *mn, float a, uint8_t *out)
{
    const __m512 va = _mm512_set1_ps(a), half = _mm512_set1_ps(0.5f),
                 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(255.0f);
    for (size_t i = 0; i < n; i++) {
        __m512 v = _mm512_sub_ps(_mm512_loadu_ps(lut + i * 16), _mm512_set1_ps(mn[i]));
        v = _mm512_add_ps(_mm512_mul_ps(v, va), half);
        v = _mm512_min_ps(_mm512_max_ps(v, zero), top); /* maxps(NaN, 0) = 0 */
        _mm_storeu_si128((__m128i *)(void *)(out + i * 16),
                         _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
    }
}

/* ------------------------------------------------------ int16 scores
 * One zmm = the 16 rows of a y block; a query's dimension pair is broadcast
 * and vpmaddwd adds both products per row. Tiles of up to 4 queries x 4
 * blocks keep 16 accumulators in registers; the loop runs over block
 * groups outside and queries inside, so a group (64 rows) stays in L1. */
#define I16_CASE(F, RQ, RB) \
    case (RQ) * 8 + (RB): F(xi, dp, yb, o, ldo, RQ, RB); break;

/* The tile helper FN_tile and the entry point FN for one accumulate step
 * STEP(acc, q, y); ATTR is the functions' target attribute (or nothing). */
#define I16_TILE_FUNCS(FN, ATTR, STEP)                                                          \
    ATTR static inline __attribute__((always_inline)) void FN##_tile(                          \
        const int16_t *x, size_t dp, const int16_t *y, int32_t *out, size_t ldo, int RQ, int RB) \
    {                                                                                           \
        __m512i acc[4][4];                                                                      \
        IVFPQ_UNROLL                                                                            \
        for (int a = 0; a < RQ; a++)                                                            \
            IVFPQ_UNROLL                                                                        \
            for (int b = 0; b < RB; b++) acc[a][b] = _mm512_setzero_si512();                    \
        for (size_t t = 0; t < dp / 2; t++) {                                                   \
            __m512i yv[4];                                                                      \
            IVFPQ_UNROLL                                                                        \
            for (int b = 0; b < RB; b++)                                                        \
                yv[b] = _mm512_loadu_si512((const void *)(y + (size_t)b * dp * 16 + t * 32));   \
            IVFPQ_UNROLL                                                                        \
            for (int a = 0; a < RQ; a++) {                                                      \
                int32_t w;                                                                      \
                memcpy(&w, x + (size_t)a * dp + 2 * t, sizeof w);                               \
                __m512i qv = _mm512_set1_epi32(w);                                              \
                IVFPQ_UNROLL                                                                    \
                for (int b = 0; b < RB; b++) acc[a][b] = STEP(acc[a][b], qv, yv[b]);            \
            }                                                                                   \
        }                                                                                       \
        IVFPQ_UNROLL                                                                            \
        for (int a = 0; a < RQ; a++)                                                            \
            IVFPQ_UNROLL                                                                        \
            for (int b = 0; b < RB; b++)                                                        \
                _mm512_storeu_si512((void *)(out + (size_t)a * ldo + (size_t)b * 16), acc[a][b]); \
    }                                                                                           \
    ATTR void FN(const int16_t *x, size_t nx, const int16_t *y, size_t nb, size_t dp,           \
                 int32_t *out, size_t ldo)                                                      \
    {                                                                                           \
        for (size_t b0 = 0; b0 < nb; b0 += 4) {                                                 \
            int rb = nb - b0 < 4 ? (int)(nb - b0) : 4;                                          \
            const int16_t *yb = y + b0 * dp * 16;                                               \
            for (size_t i0 = 0; i0 < nx; i0 += 4) {                                             \
                int rq = nx - i0 < 4 ? (int)(nx - i0) : 4;                                      \
                const int16_t *xi = x + i0 * dp;                                                \
                int32_t *o = out + i0 * ldo + b0 * 16;                                          \
                switch (rq * 8 + rb) {                                                          \
                    I16_CASE(FN##_tile, 4, 4) I16_CASE(FN##_tile, 4, 3)                         \
                    I16_CASE(FN##_tile, 4, 2) I16_CASE(FN##_tile, 4, 1)                         \
                    I16_CASE(FN##_tile, 3, 4) I16_CASE(FN##_tile, 3, 3)                         \
                    I16_CASE(FN##_tile, 3, 2) I16_CASE(FN##_tile, 3, 1)                         \
                    I16_CASE(FN##_tile, 2, 4) I16_CASE(FN##_tile, 2, 3)                         \
                    I16_CASE(FN##_tile, 2, 2) I16_CASE(FN##_tile, 2, 1)                         \
                    I16_CASE(FN##_tile, 1, 4) I16_CASE(FN##_tile, 1, 3)                         \
                    I16_CASE(FN##_tile, 1, 2) I16_CASE(FN##_tile, 1, 1)                         \
                default: break;                                                                 \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }

#define I16_MADD(acc, q, y) _mm512_add_epi32((acc), _mm512_madd_epi16((q), (y)))
I16_TILE_FUNCS(ivfpq__i16_tile_avx512, , I16_MADD)

/* The same tiles with AVX512-VNNI's vpdpwssd (multiply, add pairs and
 * accumulate in one instruction: half the instructions of vpmaddwd +
 * vpaddd, same integers). Chosen by dispatch.c when the CPU has VNNI;
 * the target attribute keeps -mavx512vnni out of the rest of this file. */
#if defined(__GNUC__) || defined(__clang__)
#define I16_DPWSSD(acc, q, y) _mm512_dpwssd_epi32((acc), (q), (y))
I16_TILE_FUNCS(ivfpq__i16_tile_avx512vnni, __attribute__((target("avx512f,avx512bw,avx512vnni"))),
               I16_DPWSSD)

/* int8 tiles: vpdpbusd multiplies 4 uint8 query bytes by 4 int8 centroid
 * bytes and adds the 4 products to each lane: twice the products of
 * vpdpwssd per instruction. The accumulators start at -corr, so the
 * query's +128 offset never leaves the kernel. */
#define VNNI_ATTR __attribute__((target("avx512f,avx512bw,avx512vnni")))
VNNI_ATTR static inline __attribute__((always_inline)) void i8_tile(
    const uint8_t *x, size_t dq, const int8_t *y, const int32_t *corr, int32_t *out, size_t ldo,
    int RQ, int RB)
{
    __m512i acc[4][4];
    IVFPQ_UNROLL
    for (int b = 0; b < RB; b++) {
        __m512i c = _mm512_sub_epi32(_mm512_setzero_si512(),
                                     _mm512_loadu_si512((const void *)(corr + 16 * b)));
        IVFPQ_UNROLL
        for (int a = 0; a < RQ; a++) acc[a][b] = c;
    }
    for (size_t t = 0; t < dq / 4; t++) {
        __m512i yv[4];
        IVFPQ_UNROLL
        for (int b = 0; b < RB; b++)
            yv[b] = _mm512_loadu_si512((const void *)(y + (size_t)b * dq * 16 + t * 64));
        IVFPQ_UNROLL
        for (int a = 0; a < RQ; a++) {
            int32_t w;
            memcpy(&w, x + (size_t)a * dq + 4 * t, sizeof w);
            __m512i qv = _mm512_set1_epi32(w);
            IVFPQ_UNROLL
            for (int b = 0; b < RB; b++) acc[a][b] = _mm512_dpbusd_epi32(acc[a][b], qv, yv[b]);
        }
    }
    IVFPQ_UNROLL
    for (int a = 0; a < RQ; a++)
        IVFPQ_UNROLL
        for (int b = 0; b < RB; b++)
            _mm512_storeu_si512((void *)(out + (size_t)a * ldo + (size_t)b * 16), acc[a][b]);
}

#define I8_CASE(RQ, RB) \
    case (RQ) * 8 + (RB): i8_tile(xi, dq, yb, cb, o, ldo, RQ, RB); break;

VNNI_ATTR void ivfpq__i8_tile_avx512vnni(const uint8_t *x, size_t nx, const int8_t *y,
                                         const int32_t *corr, size_t nb, size_t dq, int32_t *out,
                                         size_t ldo)
{
    for (size_t b0 = 0; b0 < nb; b0 += 4) {
        int rb = nb - b0 < 4 ? (int)(nb - b0) : 4;
        const int8_t *yb = y + b0 * dq * 16;
        const int32_t *cb = corr + b0 * 16;
        for (size_t i0 = 0; i0 < nx; i0 += 4) {
            int rq = nx - i0 < 4 ? (int)(nx - i0) : 4;
            const uint8_t *xi = x + i0 * dq;
            int32_t *o = out + i0 * ldo + b0 * 16;
            switch (rq * 8 + rb) {
                I8_CASE(4, 4) I8_CASE(4, 3) I8_CASE(4, 2) I8_CASE(4, 1)
                I8_CASE(3, 4) I8_CASE(3, 3) I8_CASE(3, 2) I8_CASE(3, 1)
                I8_CASE(2, 4) I8_CASE(2, 3) I8_CASE(2, 2) I8_CASE(2, 1)
                I8_CASE(1, 4) I8_CASE(1, 3) I8_CASE(1, 2) I8_CASE(1, 1)
            default: break;
            }
        }
    }
}
#endif

/* ------------------------------------------- prefilter row quantizer
 * (kernels.h: ivfpq_cpf_quant_fn; not bit-identical to other levels, as
 * documented there). Tails by masked loads: absent lanes quantize 0 to 0. */
float ivfpq__cpf_quant_avx512(const float *x, const float *mu, size_t d, float R, int16_t *out,
                              int blocked, float sums[5])
{
    __m512 vm = _mm512_setzero_ps();
    for (size_t j = 0; j < d; j += 16) {
        __mmask16 m = d - j >= 16 ? (__mmask16)0xffff : tail_mask(d - j);
        __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j), _mm512_maskz_loadu_ps(m, mu + j));
        vm = _mm512_max_ps(vm, _mm512_abs_ps(v));
    }
    float mx = _mm512_reduce_max_ps(vm);
    float sc = mx / R, inv = mx > 0.0f ? R / mx : 0.0f;
    __m512 vinv = _mm512_set1_ps(inv), vs = _mm512_set1_ps(sc), hi = _mm512_set1_ps(R),
           lo = _mm512_set1_ps(-R);
    __m512 e2 = _mm512_setzero_ps(), v2 = e2, x2 = e2, md = e2, ma = e2;
    const __m256i pair_idx = _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112);
    for (size_t j = 0; j < d; j += 16) {
        __mmask16 m = d - j >= 16 ? (__mmask16)0xffff : tail_mask(d - j);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + j), mv = _mm512_maskz_loadu_ps(m, mu + j);
        __m512 v = _mm512_sub_ps(xv, mv);
        __m512 r = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, vinv), lo), hi);
        __m512i c = _mm512_cvtps_epi32(r);
        __m512 e = _mm512_sub_ps(v, _mm512_mul_ps(vs, _mm512_cvtepi32_ps(c)));
        __m512 p = _mm512_mul_ps(mv, xv);
        e2 = _mm512_add_ps(e2, _mm512_mul_ps(e, e));
        v2 = _mm512_add_ps(v2, _mm512_mul_ps(v, v));
        x2 = _mm512_add_ps(x2, _mm512_mul_ps(xv, xv));
        md = _mm512_add_ps(md, p);
        ma = _mm512_add_ps(ma, _mm512_abs_ps(p));
        __m256i c16 = _mm512_cvtepi32_epi16(c); /* |c| <= R <= 32767 */
        if (blocked) {
            /* pairs (dims 2i, 2i+1) go 64 bytes apart; an odd d's last
             * pair carries the 0 of an absent lane into the pad dimension */
            __mmask8 pm = (__mmask8)((1u << ((d - j + 1) / 2 < 8 ? (d - j + 1) / 2 : 8)) - 1u);
            _mm256_mask_i32scatter_epi32(out + (j >> 1) * 32, pm, pair_idx, c16, 4);
        } else {
            _mm256_mask_storeu_epi16(out + j, m, c16);
        }
    }
    sums[0] = _mm512_reduce_add_ps(e2);
    sums[1] = _mm512_reduce_add_ps(v2);
    sums[2] = _mm512_reduce_add_ps(x2);
    sums[3] = _mm512_reduce_add_ps(md);
    sums[4] = _mm512_reduce_add_ps(ma);
    return mx;
}

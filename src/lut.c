/*
 * Per-query look-up tables: float distances of each sub-vector to the 16
 * centroids of its sub-quantizer, then quantized to uint8 so that the
 * shuffle kernels can sum them in uint16.
 *
 * Quantization (as faiss's quantize_LUT_and_bias, with an airtight bound):
 * row m is shifted by its minimum, all rows share one scale a, so that
 *   sum_m lut8[m][code_m] = round-ish(a * (D - bias)),  D = bias + S / a.
 * a = 255 / max span, lowered when needed so that the largest possible sum,
 * a * sum(spans) + M2/2 of rounding, stays below 65536.
 */
#include "internal.h"
#include "kernels.h"

void ivfpq__lut_float(const ivfpq_index *idx, const float *q, float *lut)
{
    const ivfpq_kernels *K = ivfpq__kernels();
    if (idx->metric == IVFPQ_METRIC_L2) K->lut_l2(q, idx->pq_cb, idx->M, idx->dsub, lut);
    else K->lut_ip(q, idx->pq_cb, idx->M, idx->dsub, lut);
}

static void row_range_scalar(const float *r, float *mn, float *mx)
{
    float lo = r[0], hi = r[0];
    for (int j = 1; j < 16; j++) {
        if (r[j] < lo) lo = r[j];
        if (r[j] > hi) hi = r[j];
    }
    *mn = lo;
    *mx = hi;
}

/*
 * The per-row loops below also exist in SSE2 (baseline on x86-64) and NEON
 * (baseline on AArch64) forms; they are the row kernels of the scalar, SSE
 * and NEON levels, and distance_avx2.c / distance_avx512.c have wider ones
 * under the same rules. The vector forms compute exactly what the scalar
 * lines do: min/max differ from them only in the sign of a zero
 * result, which changes no later value (x - (+0) and x - (-0) round alike
 * after the + 0.5, and sums starting at +0 absorb -0), and rows holding a
 * NaN take the scalar path, whose result depends on where the NaN is.
 */
#if defined(__SSE2__)
#include <emmintrin.h>
#define LUT_SSE2 1
#elif defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#define LUT_NEON 1
#endif

static void row_range(const float *r, float *mn, float *mx)
{
#if defined(LUT_SSE2)
    __m128 a = _mm_loadu_ps(r), b = _mm_loadu_ps(r + 4), c = _mm_loadu_ps(r + 8),
           d = _mm_loadu_ps(r + 12);
    __m128 nan = _mm_or_ps(_mm_cmpunord_ps(a, b), _mm_cmpunord_ps(c, d));
    if (_mm_movemask_ps(nan) == 0) {
        __m128 lo = _mm_min_ps(_mm_min_ps(a, b), _mm_min_ps(c, d));
        __m128 hi = _mm_max_ps(_mm_max_ps(a, b), _mm_max_ps(c, d));
        lo = _mm_min_ps(lo, _mm_movehl_ps(lo, lo));
        hi = _mm_max_ps(hi, _mm_movehl_ps(hi, hi));
        *mn = _mm_cvtss_f32(_mm_min_ss(lo, _mm_shuffle_ps(lo, lo, 1)));
        *mx = _mm_cvtss_f32(_mm_max_ss(hi, _mm_shuffle_ps(hi, hi, 1)));
        return;
    }
#elif defined(LUT_NEON)
    float32x4_t a = vld1q_f32(r), b = vld1q_f32(r + 4), c = vld1q_f32(r + 8), d = vld1q_f32(r + 12);
    uint32x4_t ok = vandq_u32(vandq_u32(vceqq_f32(a, a), vceqq_f32(b, b)),
                              vandq_u32(vceqq_f32(c, c), vceqq_f32(d, d)));
    if (vminvq_u32(ok) != 0) {
        *mn = vminvq_f32(vminq_f32(vminq_f32(a, b), vminq_f32(c, d)));
        *mx = vmaxvq_f32(vmaxq_f32(vmaxq_f32(a, b), vmaxq_f32(c, d)));
        return;
    }
#endif
    row_range_scalar(r, mn, mx);
}

/* out[j] = clamp((r[j] - mn) * a + 0.5, 0, 255) truncated; NaN -> 0. */
static void quantize_row(const float *r, float mn, float a, uint8_t *out)
{
#if defined(LUT_SSE2)
    const __m128 vmn = _mm_set1_ps(mn), va = _mm_set1_ps(a), half = _mm_set1_ps(0.5f),
                 zero = _mm_setzero_ps(), top = _mm_set1_ps(255.0f);
    __m128i q[4];
    for (int k = 0; k < 4; k++) {
        __m128 v = _mm_add_ps(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(r + 4 * k), vmn), va), half);
        v = _mm_min_ps(_mm_max_ps(v, zero), top); /* maxps(NaN, 0) = 0 */
        q[k] = _mm_cvttps_epi32(v);
    }
    __m128i w = _mm_packus_epi16(_mm_packs_epi32(q[0], q[1]), _mm_packs_epi32(q[2], q[3]));
    _mm_storeu_si128((__m128i *)(void *)out, w);
#elif defined(LUT_NEON)
    const float32x4_t vmn = vdupq_n_f32(mn), va = vdupq_n_f32(a), half = vdupq_n_f32(0.5f),
                      zero = vdupq_n_f32(0.0f), top = vdupq_n_f32(255.0f);
    uint32x4_t q[4];
    for (int k = 0; k < 4; k++) {
        float32x4_t v = vaddq_f32(vmulq_f32(vsubq_f32(vld1q_f32(r + 4 * k), vmn), va), half);
        v = vbslq_f32(vcgeq_f32(v, zero), v, zero); /* NaN and negatives -> 0 */
        v = vbslq_f32(vcgtq_f32(v, top), top, v);
        q[k] = vcvtq_u32_f32(v);
    }
    uint16x8_t h0 = vcombine_u16(vmovn_u32(q[0]), vmovn_u32(q[1]));
    uint16x8_t h1 = vcombine_u16(vmovn_u32(q[2]), vmovn_u32(q[3]));
    vst1q_u8(out, vcombine_u8(vmovn_u16(h0), vmovn_u16(h1)));
#else
    for (int j = 0; j < 16; j++) {
        float v = (r[j] - mn) * a + 0.5f;
        if (!(v >= 0.0f)) v = 0.0f;
        if (v > 255.0f) v = 255.0f;
        out[j] = (uint8_t)(unsigned)v;
    }
#endif
}

/* The row primitives of the kernel table's scalar level (also used by the
 * SSE and NEON levels, as this code is already SSE2/NEON there). */
void ivfpq__lut_range_scalar(const float *lut, size_t n, float *mn, float *mx)
{
    for (size_t i = 0; i < n; i++) row_range(lut + i * 16, mn + i, mx + i);
}

void ivfpq__lut_u8_scalar(const float *lut, size_t n, const float *mn, float a, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) quantize_row(lut + i * 16, mn[i], a, out + i * 16);
}

#define ROWS 64 /* rows per kernel call */
#define LANES 8 /* the spans and minima are summed in 8 interleaved lanes */

/* One float addition chain per row would be the quantizer's critical path;
 * row m goes to lane m % 8 and the lanes fold in a fixed tree. */
static float fold8(const float s[LANES])
{
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/*
 * Two passes: the scale needs every row's span before any row is
 * quantized. The first pass parks each row's minimum in the tail of lut8
 * (float m at byte 16*M2 - 4*M + 4*m), so the second does not compute the
 * ranges again; writing rows [0, r) only reaches the minima of rows < r,
 * since 16r <= 16*M2 - 4*M + 4r whenever r <= M <= M2.
 */
void ivfpq__lut_quantize(const float *lut, size_t M, size_t M2, uint8_t *lut8, ivfpq_qlut *qp)
{
    const ivfpq_kernels *K = ivfpq__kernels();
    float maxspan = 0.0f, sumspan[LANES] = {0}, bias[LANES] = {0}, mn[ROWS], mx[ROWS];
    uint8_t *park = lut8 + 16 * M2 - 4 * M;
    for (size_t m0 = 0; m0 < M; m0 += ROWS) {
        size_t n = M - m0 < ROWS ? M - m0 : ROWS;
        K->lut_range(lut + m0 * 16, n, mn, mx);
        memcpy(park + 4 * m0, mn, n * sizeof(float));
        for (size_t j = 0; j < n; j++) {
            float span = mx[j] - mn[j];
            if (!(span >= 0.0f) || span > 3.0e38f) span = 0.0f; /* inf/NaN rows: no information */
            if (span > maxspan) maxspan = span;
            sumspan[(m0 + j) % LANES] += span;
        }
    }
    float total = fold8(sumspan), a = maxspan > 0.0f ? 255.0f / maxspan : 1.0f;
    float limit = 65535.0f - (float)M2;
    if (total * a > limit) a = limit / total;
    if (!(a > 0.0f)) a = 1.17549435e-38f; /* sums overflowed to inf: degenerate but defined */
    for (size_t m0 = 0; m0 < M; m0 += ROWS) {
        size_t n = M - m0 < ROWS ? M - m0 : ROWS;
        memcpy(mn, park + 4 * m0, n * sizeof(float));
        K->lut_u8(lut + m0 * 16, n, mn, a, lut8 + m0 * 16);
        for (size_t j = 0; j < n; j++) bias[(m0 + j) % LANES] += mn[j];
    }
    if (M2 > M) memset(lut8 + M * 16, 0, (M2 - M) * 16);
    qp->scale = a;
    qp->inv_scale = 1.0f / a;
    qp->bias = fold8(bias);
}

static inline float estimate(float bias, float inv, int32_t s) { return bias + (float)s * inv; }

int32_t ivfpq__lut_threshold(const ivfpq_qlut *qp, float bias, float thr)
{
    float inv = qp->inv_scale;
    if (!(estimate(bias, inv, 0) <= thr)) return -1; /* also NaN */
    if (estimate(bias, inv, 65535) <= thr) return 65535;
    /* estimate is monotone in s: guess from the scale, then bisect if off */
    float g = (thr - bias) * qp->scale;
    int32_t s = g >= 0.0f ? (g < 65534.0f ? (int32_t)g : 65534) : 0;
    if (estimate(bias, inv, s) <= thr && !(estimate(bias, inv, s + 1) <= thr)) return s;
    int32_t lo = 0, hi = 65535; /* f(lo) <= thr < f(hi) */
    while (hi - lo > 1) {
        int32_t mid = lo + (hi - lo) / 2;
        if (estimate(bias, inv, mid) <= thr) lo = mid;
        else hi = mid;
    }
    return lo;
}

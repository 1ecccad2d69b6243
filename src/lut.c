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

static void row_range(const float *r, float *mn, float *mx)
{
    float lo = r[0], hi = r[0];
    for (int j = 1; j < 16; j++) {
        if (r[j] < lo) lo = r[j];
        if (r[j] > hi) hi = r[j];
    }
    *mn = lo;
    *mx = hi;
}

void ivfpq__lut_quantize(const float *lut, size_t M, size_t M2, uint8_t *lut8, ivfpq_qlut *qp)
{
    float maxspan = 0.0f, sumspan = 0.0f, bias = 0.0f;
    for (size_t m = 0; m < M; m++) {
        float mn, mx;
        row_range(lut + m * 16, &mn, &mx);
        float span = mx - mn;
        if (!(span >= 0.0f) || span > 3.0e38f) span = 0.0f; /* inf/NaN rows: no information */
        if (span > maxspan) maxspan = span;
        sumspan += span;
    }
    float a = maxspan > 0.0f ? 255.0f / maxspan : 1.0f;
    float limit = 65535.0f - (float)M2;
    if (sumspan * a > limit) a = limit / sumspan;
    if (!(a > 0.0f)) a = 1.17549435e-38f; /* sums overflowed to inf: degenerate but defined */
    for (size_t m = 0; m < M; m++) {
        const float *r = lut + m * 16;
        float mn, mx;
        row_range(r, &mn, &mx);
        for (int j = 0; j < 16; j++) {
            float v = (r[j] - mn) * a + 0.5f;
            if (!(v >= 0.0f)) v = 0.0f;
            if (v > 255.0f) v = 255.0f;
            lut8[m * 16 + (size_t)j] = (uint8_t)(unsigned)v;
        }
        bias += mn;
    }
    if (M2 > M) memset(lut8 + M * 16, 0, (M2 - M) * 16);
    qp->scale = a;
    qp->inv_scale = 1.0f / a;
    qp->bias = bias;
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

/*
 * Scalar reference of the float kernels. The arithmetic order defined in
 * kernels.h is spelled out literally here; every SIMD variant must match it
 * bit for bit.
 */
#include "kernels.h"

static float reduce16(const float acc[16])
{
    float h[8], q[4], p[2];
    for (int i = 0; i < 8; i++) h[i] = acc[i] + acc[i + 8];
    for (int i = 0; i < 4; i++) q[i] = h[i] + h[i + 4];
    for (int i = 0; i < 2; i++) p[i] = q[i] + q[i + 2];
    return p[0] + p[1];
}

static float l2sqr_one(const float *x, const float *y, size_t d)
{
    float acc[16] = {0};
    for (size_t j = 0; j < d; j++) {
        float t = x[j] - y[j];
        float sq = t * t;
        acc[j & 15] = acc[j & 15] + sq;
    }
    return reduce16(acc);
}

static float dot_one(const float *x, const float *y, size_t d)
{
    float acc[16] = {0};
    for (size_t j = 0; j < d; j++) {
        float p = x[j] * y[j];
        acc[j & 15] = acc[j & 15] + p;
    }
    return reduce16(acc);
}

void ivfpq__l2sqr_tile_scalar(const float *x, size_t nx, const float *y, size_t ny,
                              size_t d, float *out, size_t ldo)
{
    for (size_t i = 0; i < nx; i++)
        for (size_t j = 0; j < ny; j++) out[i * ldo + j] = l2sqr_one(x + i * d, y + j * d, d);
}

void ivfpq__dot_tile_scalar(const float *x, size_t nx, const float *y, size_t ny, size_t d,
                            float *out, size_t ldo)
{
    for (size_t i = 0; i < nx; i++)
        for (size_t j = 0; j < ny; j++) out[i * ldo + j] = dot_one(x + i * d, y + j * d, d);
}

void ivfpq__lut_l2_scalar(const float *q, const float *cb, size_t M, size_t dsub, float *lut)
{
    for (size_t m = 0; m < M; m++) {
        const float *qm = q + m * dsub;
        const float *c = cb + m * dsub * 16;
        for (size_t j = 0; j < 16; j++) {
            float s = 0.0f;
            for (size_t t = 0; t < dsub; t++) {
                float diff = qm[t] - c[t * 16 + j];
                float sq = diff * diff;
                s = s + sq;
            }
            lut[m * 16 + j] = s;
        }
    }
}

void ivfpq__lut_ip_scalar(const float *q, const float *cb, size_t M, size_t dsub, float *lut)
{
    for (size_t m = 0; m < M; m++) {
        const float *qm = q + m * dsub;
        const float *c = cb + m * dsub * 16;
        for (size_t j = 0; j < 16; j++) {
            float s = 0.0f;
            for (size_t t = 0; t < dsub; t++) {
                float p = qm[t] * c[t * 16 + j];
                s = s + p;
            }
            lut[m * 16 + j] = -s;
        }
    }
}

void ivfpq__i16_tile_scalar(const int16_t *x, size_t nx, const int16_t *y, size_t nb, size_t dp,
                            int32_t *out, size_t ldo)
{
    for (size_t i = 0; i < nx; i++) {
        const int16_t *xi = x + i * dp;
        for (size_t b = 0; b < nb; b++) {
            const int16_t *yb = y + b * dp * 16;
            for (size_t l = 0; l < 16; l++) {
                int32_t s = 0;
                for (size_t t = 0; t < dp / 2; t++)
                    s += (int32_t)xi[2 * t] * yb[t * 32 + 2 * l] +
                         (int32_t)xi[2 * t + 1] * yb[t * 32 + 2 * l + 1];
                out[i * ldo + b * 16 + l] = s;
            }
        }
    }
}

/*
 * Fuzz target: the vector-file readers of the tools (tools/vecio.c) through
 * their buffer entry point, which runs the same parsers as the file path.
 * Input: 1 byte choosing (format, type), then the file's bytes. Either the
 * parse fails with a one-line message and nothing allocated, or the matrix
 * it returns is exactly what the bytes say: the shape matches the size and
 * every value is the one stored (little-endian host assumed, as in CI).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vecio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct { vec_format fmt; vec_dtype type; } kinds[] = {
    {VEC_FMT_NPY, VEC_FLOAT32},   {VEC_FMT_NPY, VEC_INT32},  {VEC_FMT_FVECS, VEC_FLOAT32},
    {VEC_FMT_IVECS, VEC_INT32},   {VEC_FMT_BVECS, VEC_FLOAT32}, {VEC_FMT_FBIN, VEC_FLOAT32},
    {VEC_FMT_IBIN, VEC_INT32},    {VEC_FMT_U8BIN, VEC_FLOAT32},
};

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t k = data[0] % (sizeof kinds / sizeof kinds[0]);
    data++;
    size--;
    vec_matrix m;
    char err[256];
    err[0] = '\0';
    int rc = vec_read_buffer("fuzz", kinds[k].fmt, kinds[k].type, data, size, &m, err, sizeof err);
    if (rc != VEC_OK) {
        if (m.data || !err[0] || strchr(err, '\n') || (rc != VEC_E_INPUT && rc != VEC_E_NOMEM)) abort();
        return 0;
    }
    if (!m.data || m.n == 0 || m.d == 0 || m.d > VEC_MAX_D || m.type != kinds[k].type) abort();
    size_t n = m.n, d = m.d, nd = n * d;
    const float *f = m.data;
    const int32_t *iv = m.data;
    switch (kinds[k].fmt) {
    case VEC_FMT_FVECS:
    case VEC_FMT_IVECS:
        if (size != n * (4 + 4 * d)) abort();
        for (size_t i = 0; i < n; i++)
            if (le32(data + i * (4 + 4 * d)) != d || memcmp((const char *)m.data + i * d * 4,
                                                           data + i * (4 + 4 * d) + 4, d * 4))
                abort();
        break;
    case VEC_FMT_BVECS:
        if (size != n * (4 + d)) abort();
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                if (f[i * d + j] != (float)data[i * (4 + d) + 4 + j]) abort();
        break;
    case VEC_FMT_FBIN:
    case VEC_FMT_IBIN:
        if (size != 8 + nd * 4 || le32(data) != n || le32(data + 4) != d || memcmp(m.data, data + 8, nd * 4))
            abort();
        break;
    case VEC_FMT_U8BIN:
        if (size != 8 + nd || le32(data) != n || le32(data + 4) != d) abort();
        for (size_t i = 0; i < nd; i++)
            if (f[i] != (float)data[8 + i]) abort();
        break;
    default: /* .npy: the data is the end of the file */
        if (kinds[k].type == VEC_FLOAT32) {
            if (size < nd * 4 || memcmp(m.data, data + size - nd * 4, nd * 4)) abort();
        } else {
            /* '<i4' or '<i8' (values fit int32, so the low word): the last
             * value returned is the last one stored */
            if (size < 10 + 4 * nd ||
                (iv[nd - 1] != (int32_t)le32(data + size - 4) && iv[nd - 1] != (int32_t)le32(data + size - 8)))
                abort();
        }
        break;
    }
    vec_free(&m);
    return 0;
}

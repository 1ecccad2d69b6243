#define _POSIX_C_SOURCE 200809L
#include "vecio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* TEXMEX: every row is an int32 dimension d followed by d 4-byte values. */
static int read_vecs(const char *path, vec_matrix *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int32_t d32;
    long size;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "%s: cannot determine the file size", path);
        fclose(f);
        return -1;
    }
    if (size == 0 || fread(&d32, 4, 1, f) != 1) {
        snprintf(err, errlen, "%s: empty or truncated file", path);
        fclose(f);
        return -1;
    }
    if (d32 <= 0 || d32 > (1 << 20)) {
        snprintf(err, errlen, "%s: bad dimension %d in the first row (not a .fvecs/.ivecs file?)", path, d32);
        fclose(f);
        return -1;
    }
    size_t d = (size_t)d32, row = 4 * (d + 1);
    if ((size_t)size % row != 0) {
        snprintf(err, errlen, "%s: size %ld is not a multiple of the row size %zu (truncated?)", path, size, row);
        fclose(f);
        return -1;
    }
    size_t n = (size_t)size / row;
    unsigned char *data = malloc(n * d * 4 + 1);
    if (!data) {
        snprintf(err, errlen, "%s: out of memory for %zu x %zu", path, n, d);
        fclose(f);
        return -1;
    }
    fseek(f, 0, SEEK_SET);
    for (size_t i = 0; i < n; i++) {
        int32_t di;
        if (fread(&di, 4, 1, f) != 1 || fread(data + i * d * 4, 4, d, f) != d) {
            snprintf(err, errlen, "%s: read error at row %zu", path, i);
            free(data);
            fclose(f);
            return -1;
        }
        if (di != d32) {
            snprintf(err, errlen, "%s: row %zu has dimension %d, the first row %d", path, i, di, d32);
            free(data);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    out->n = n;
    out->d = d;
    out->data = data;
    return 0;
}

int vec_read_fvecs(const char *path, vec_matrix *out, char *err, size_t errlen)
{
    return read_vecs(path, out, err, errlen);
}

int vec_read_ivecs(const char *path, vec_matrix *out, char *err, size_t errlen)
{
    return read_vecs(path, out, err, errlen);
}

int vec_write_ivecs(const char *path, const int32_t *x, size_t n, size_t d, char *err, size_t errlen)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    int32_t d32 = (int32_t)d;
    for (size_t i = 0; i < n; i++)
        if (fwrite(&d32, 4, 1, f) != 1 || fwrite(x + i * d, 4, d, f) != d) {
            snprintf(err, errlen, "%s: write error", path);
            fclose(f);
            return -1;
        }
    if (fclose(f) != 0) {
        snprintf(err, errlen, "%s: write error", path);
        return -1;
    }
    return 0;
}

void vec_free(vec_matrix *m)
{
    free(m->data);
    m->data = NULL;
    m->n = m->d = 0;
}

/*
 * Reading and writing vector files for the tools (never linked into the
 * library core): TEXMEX .fvecs/.ivecs.
 */
#ifndef IVFPQ_VECIO_H
#define IVFPQ_VECIO_H

#include <stddef.h>
#include <stdint.h>

/* Matrix read from a file: n rows of d values (float32 or int32). */
typedef struct vec_matrix {
    size_t n, d;
    void *data; /* malloc'd, n * d * 4 bytes */
} vec_matrix;

/* Reads .fvecs (float32) or .ivecs (int32). Returns 0, or -1 with a one-line
 * message in err naming the file and what is wrong. */
int vec_read_fvecs(const char *path, vec_matrix *out, char *err, size_t errlen);
int vec_read_ivecs(const char *path, vec_matrix *out, char *err, size_t errlen);
int vec_write_ivecs(const char *path, const int32_t *x, size_t n, size_t d, char *err, size_t errlen);
void vec_free(vec_matrix *m);

#endif

/*
 * Reading and writing vector files for the tools (never linked into the
 * library core, which has no stdio).
 *
 * Formats, chosen by the file name's extension and then verified by content:
 *   .npy    NumPy v1/v2/v3 header; float32 '<f4' (ids: '<i4' or '<i8'),
 *           C order, 2-D (n, d); 1-D (d,) is read as one row
 *   .fvecs  TEXMEX: per row int32 d, then d float32
 *   .ivecs  same with int32 values (ground truth, result ids)
 *   .bvecs  same with uint8 values (SIFT1B); read as float
 *   .fbin   big-ann-benchmarks: uint32 n, uint32 d, then n*d float32
 *   .ibin   same with int32; .u8bin same with uint8 (read as float)
 *   DIR     a directory: its *.npy files concatenated in sorted name order
 *           (RVC's per-utterance features); all must have the same d
 * A file with no known extension is read as .npy if it starts with the .npy
 * magic. All little-endian. Errors are one line naming the file and what is
 * wrong.
 */
#ifndef IVFPQ_VECIO_H
#define IVFPQ_VECIO_H

#include <stddef.h>
#include <stdint.h>

typedef enum vec_dtype { VEC_FLOAT32 = 0, VEC_INT32 = 1 } vec_dtype;

/* Matrix read from a file: n rows of d values, row-major. */
typedef struct vec_matrix {
    size_t n, d;
    vec_dtype type;
    void *data; /* malloc'd, n * d * 4 bytes (float or int32_t) */
} vec_matrix;

typedef enum vec_format {
    VEC_FMT_UNKNOWN = 0,
    VEC_FMT_NPY,
    VEC_FMT_FVECS,
    VEC_FMT_IVECS,
    VEC_FMT_BVECS,
    VEC_FMT_FBIN,
    VEC_FMT_IBIN,
    VEC_FMT_U8BIN,
    VEC_FMT_DIR
} vec_format;

/* Status of the functions below. */
enum { VEC_OK = 0, VEC_E_INPUT = -1, VEC_E_NOMEM = -2, VEC_E_WRITE = -3 };

/* Format implied by the path: a directory, else the extension. */
vec_format vec_format_of(const char *path);
const char *vec_format_name(vec_format fmt);

/* Vectors as float32: .npy, .fvecs, .bvecs, .fbin, .u8bin or a directory.
 * Returns VEC_OK, or an error with a one-line message in err. */
int vec_read_float(const char *path, vec_matrix *out, char *err, size_t errlen);

/* Ids as int32: .ivecs, .ibin, or .npy of int32/int64 (values must fit). */
int vec_read_int(const char *path, vec_matrix *out, char *err, size_t errlen);

/* Writes n x d values (float32 or int32) in the format of the path's
 * extension: .fvecs/.ivecs (type must match), .fbin/.ibin, .npy (v1).
 * Written to a temporary name and renamed: no half-written file remains. */
int vec_write(const char *path, vec_dtype type, const void *x, size_t n, size_t d, char *err,
              size_t errlen);

/* The same parsers on bytes in memory (for fuzzing, embedded data): fmt is
 * one of the file formats above (not DIR), want the type to produce; name
 * only labels the error messages. data is copied, never modified. */
int vec_read_buffer(const char *name, vec_format fmt, vec_dtype want, const void *data, size_t size,
                    vec_matrix *out, char *err, size_t errlen);

/* Older entry points, kept for the tools written against them. */
int vec_read_fvecs(const char *path, vec_matrix *out, char *err, size_t errlen);
int vec_read_ivecs(const char *path, vec_matrix *out, char *err, size_t errlen);
int vec_write_ivecs(const char *path, const int32_t *x, size_t n, size_t d, char *err, size_t errlen);

void vec_free(vec_matrix *m);

/* Largest accepted d (the library's limit). */
#define VEC_MAX_D (1u << 20)

#endif

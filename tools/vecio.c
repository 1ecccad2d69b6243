/*
 * Vector file formats for the tools (see vecio.h). Every reader loads the
 * whole file, checks that its size agrees with what the header or first row
 * promises, and only then converts in place: a bad file is reported with the
 * byte where it goes wrong instead of being half-read.
 */
#define _POSIX_C_SOURCE 200809L
#include "vecio.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static int fail(char *err, size_t errlen, int code, const char *path, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err && errlen) snprintf(err, errlen, "%s: %s", path, msg);
    return code;
}

static int host_is_le(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* Files are little-endian; a big-endian host swaps 4-byte words. */
static void le32_fix(void *p, size_t n)
{
    if (host_is_le()) return;
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        unsigned char t0 = b[0], t1 = b[1];
        b[0] = b[3];
        b[1] = b[2];
        b[2] = t1;
        b[3] = t0;
    }
}

static uint32_t get_le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static int64_t get_le64(const unsigned char *b)
{
    uint64_t v = (uint64_t)get_le32(b) | (uint64_t)get_le32(b + 4) << 32;
    return (int64_t)v;
}

static void put_le32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)v;
    b[1] = (unsigned char)(v >> 8);
    b[2] = (unsigned char)(v >> 16);
    b[3] = (unsigned char)(v >> 24);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    if (a < b) return 0;
    for (size_t i = 0; i < b; i++) {
        char c = s[a - b + i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != suf[i]) return 0;
    }
    return 1;
}

vec_format vec_format_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return VEC_FMT_DIR;
    static const struct { const char *ext; vec_format fmt; } map[] = {
        {".npy", VEC_FMT_NPY},     {".fvecs", VEC_FMT_FVECS}, {".ivecs", VEC_FMT_IVECS},
        {".bvecs", VEC_FMT_BVECS}, {".fbin", VEC_FMT_FBIN},   {".ibin", VEC_FMT_IBIN},
        {".u8bin", VEC_FMT_U8BIN},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (has_suffix(path, map[i].ext)) return map[i].fmt;
    return VEC_FMT_UNKNOWN;
}

const char *vec_format_name(vec_format fmt)
{
    switch (fmt) {
    case VEC_FMT_NPY: return "npy";
    case VEC_FMT_FVECS: return "fvecs";
    case VEC_FMT_IVECS: return "ivecs";
    case VEC_FMT_BVECS: return "bvecs";
    case VEC_FMT_FBIN: return "fbin";
    case VEC_FMT_IBIN: return "ibin";
    case VEC_FMT_U8BIN: return "u8bin";
    case VEC_FMT_DIR: return "directory of .npy";
    default: return "unknown";
    }
}

/* The whole file in one malloc'd buffer (one spare byte so a 0-byte file
 * still gets a pointer). */
static int read_all(const char *path, unsigned char **buf, size_t *size, char *err, size_t errlen)
{
    *buf = NULL;
    *size = 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return fail(err, errlen, VEC_E_INPUT, path, "cannot open: %s", strerror(errno));
    if (S_ISDIR(st.st_mode))
        return fail(err, errlen, VEC_E_INPUT, path, "is a directory, expected a file");
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, VEC_E_INPUT, path, "cannot open: %s", strerror(errno));
    size_t cap = st.st_size > 0 ? (size_t)st.st_size : 0, n = 0;
    unsigned char *b = malloc(cap + 1);
    if (!b) {
        fclose(f);
        return fail(err, errlen, VEC_E_NOMEM, path, "out of memory for %zu bytes", cap);
    }
    for (;;) { /* read to EOF even if the size changed under us */
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            unsigned char *nb = realloc(b, ncap + 1);
            if (!nb) {
                free(b);
                fclose(f);
                return fail(err, errlen, VEC_E_NOMEM, path, "out of memory");
            }
            b = nb;
            cap = ncap;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return fail(err, errlen, VEC_E_INPUT, path, "read error");
    }
    *buf = b;
    *size = n;
    return VEC_OK;
}

static const char LFS_MAGIC[] = "version https://git-lfs";

static int is_lfs_pointer(const unsigned char *b, size_t size)
{
    return size < 1024 && size >= sizeof LFS_MAGIC - 1 && !memcmp(b, LFS_MAGIC, sizeof LFS_MAGIC - 1);
}

static int check_lfs(const char *path, const unsigned char *b, size_t size, char *err, size_t errlen)
{
    if (is_lfs_pointer(b, size))
        return fail(err, errlen, VEC_E_INPUT, path,
                    "is a Git LFS pointer, not the data (run `git lfs pull` to fetch it)");
    return VEC_OK;
}

/* Shrinks buf to `bytes` (data already moved to the front) into out. */
static int finish(vec_matrix *out, unsigned char *buf, size_t n, size_t d, vec_dtype type)
{
    size_t bytes = n * d * 4;
    unsigned char *nb = realloc(buf, bytes + 1);
    out->data = nb ? nb : buf;
    out->n = n;
    out->d = d;
    out->type = type;
    return VEC_OK;
}

/* uint8 rows (row i's d values at b + off + i * stride) -> float32 matrix;
 * takes ownership of b. */
static int bytes_to_float(const char *path, unsigned char *b, size_t off, size_t stride, size_t n, size_t d,
                          vec_matrix *out, char *err, size_t errlen)
{
    float *o = malloc(n * d * sizeof(float) + 1);
    if (!o) {
        free(b);
        return fail(err, errlen, VEC_E_NOMEM, path, "out of memory for %zu x %zu floats", n, d);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) o[i * d + j] = (float)b[off + i * stride + j];
    free(b);
    out->data = o;
    out->n = n;
    out->d = d;
    out->type = VEC_FLOAT32;
    return VEC_OK;
}

/* ----------------------------------------------------------------- .npy */

typedef struct npy_header {
    char descr[32];
    int fortran;
    int ndim;
    size_t shape[8];
    size_t data_off;
} npy_header;

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* Finds `'key':` in the dict text and returns the start of its value. */
static const char *npy_value(const char *h, const char *end, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = h; p + kl + 2 < end; p++) {
        if ((*p == '\'' || *p == '"') && p[kl + 1] == *p && !memcmp(p + 1, key, kl)) {
            const char *q = skip_ws(p + kl + 2, end);
            if (q < end && *q == ':') return skip_ws(q + 1, end);
        }
    }
    return NULL;
}

static int parse_npy_header(const char *path, const unsigned char *b, size_t size, npy_header *h,
                            char *err, size_t errlen)
{
    static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    memset(h, 0, sizeof *h);
    if (size < 10 || memcmp(b, magic, 6) != 0)
        return fail(err, errlen, VEC_E_INPUT, path,
                    "not a .npy file (wrong magic: expected \\x93NUMPY, file is %zu bytes)", size);
    unsigned major = b[6], minor = b[7];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12)
            return fail(err, errlen, VEC_E_INPUT, path, "truncated at byte %zu inside the header", size);
        hlen = get_le32(b + 8);
        hoff = 12;
    } else {
        return fail(err, errlen, VEC_E_INPUT, path, "unsupported .npy format version %u.%u", major, minor);
    }
    if (hlen > size - hoff)
        return fail(err, errlen, VEC_E_INPUT, path,
                    "truncated at byte %zu inside the header (header says %zu bytes)", size, hoff + hlen);
    const char *hs = (const char *)b + hoff, *he = hs + hlen;
    h->data_off = hoff + hlen;

    const char *v = npy_value(hs, he, "descr");
    if (!v) return fail(err, errlen, VEC_E_INPUT, path, "bad .npy header: no 'descr'");
    if (*v != '\'' && *v != '"')
        return fail(err, errlen, VEC_E_INPUT, path,
                    "structured dtype is not supported: save a plain float32 array");
    char quote = *v++;
    size_t dl = 0;
    while (v < he && *v != quote && dl + 1 < sizeof h->descr) h->descr[dl++] = *v++;
    if (v >= he || *v != quote) return fail(err, errlen, VEC_E_INPUT, path, "bad .npy header: 'descr'");
    for (size_t i = 0; i < dl; i++) /* it is quoted in messages: printable only, one line */
        if (h->descr[i] < 0x20 || h->descr[i] > 0x7e)
            return fail(err, errlen, VEC_E_INPUT, path, "bad .npy header: 'descr' has a control character");

    v = npy_value(hs, he, "fortran_order");
    if (!v) return fail(err, errlen, VEC_E_INPUT, path, "bad .npy header: no 'fortran_order'");
    if (he - v >= 4 && !memcmp(v, "True", 4)) h->fortran = 1;
    else if (he - v >= 5 && !memcmp(v, "False", 5)) h->fortran = 0;
    else return fail(err, errlen, VEC_E_INPUT, path, "bad .npy header: 'fortran_order'");

    v = npy_value(hs, he, "shape");
    if (!v || *v != '(') return fail(err, errlen, VEC_E_INPUT, path, "bad .npy header: no 'shape' tuple");
    v++;
    for (;;) {
        v = skip_ws(v, he);
        if (v < he && *v == ')') break;
        if (v >= he || *v < '0' || *v > '9')
            return fail(err, errlen, VEC_E_INPUT, path, "bad .npy header: 'shape'");
        size_t x = 0;
        while (v < he && *v >= '0' && *v <= '9') {
            if (x > (SIZE_MAX - 9) / 10)
                return fail(err, errlen, VEC_E_INPUT, path, "bad .npy header: shape too large");
            x = x * 10 + (size_t)(*v++ - '0');
        }
        if (v < he && *v == 'L') v++; /* Python 2 long */
        if (h->ndim == 8) return fail(err, errlen, VEC_E_INPUT, path, "bad .npy header: too many dimensions");
        h->shape[h->ndim++] = x;
        v = skip_ws(v, he);
        if (v < he && *v == ',') v++;
    }
    return VEC_OK;
}

static const char *dtype_name(const char *descr)
{
    static const struct { const char *d, *name; } names[] = {
        {"<f8", "float64"}, {"<f2", "float16"}, {">f4", "big-endian float32"},
        {"|u1", "uint8"},   {"|i1", "int8"},    {"<i4", "int32"},
        {"<i8", "int64"},   {"<u4", "uint32"},  {"<i2", "int16"},
        {"|b1", "bool"},    {"<c8", "complex64"}, {"<f4", "float32"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(descr, names[i].d)) return names[i].name;
    return "unsupported";
}

/* want: VEC_FLOAT32 accepts '<f4'; VEC_INT32 accepts '<i4' and '<i8'. */
/* The parsers below take ownership of b (size bytes + 1 spare, malloc'd)
 * and convert in place: files and buffers go through the same code. */
static int parse_npy(const char *path, unsigned char *b, size_t size, vec_dtype want, vec_matrix *out,
                     char *err, size_t errlen)
{
    int rc;
    if ((rc = check_lfs(path, b, size, err, errlen))) goto bad;
    npy_header h;
    if ((rc = parse_npy_header(path, b, size, &h, err, errlen))) goto bad;
    size_t esize;
    if (want == VEC_FLOAT32 && !strcmp(h.descr, "<f4")) {
        esize = 4;
    } else if (want == VEC_INT32 && (!strcmp(h.descr, "<i4") || !strcmp(h.descr, "<i8"))) {
        esize = h.descr[2] == '8' ? 8 : 4;
    } else {
        rc = fail(err, errlen, VEC_E_INPUT, path, "dtype '%s' (%s) is not %s; convert with %s", h.descr,
                  dtype_name(h.descr), want == VEC_FLOAT32 ? "float32 ('<f4')" : "int32 or int64",
                  want == VEC_FLOAT32 ? "x.astype('float32')" : "x.astype('int32')");
        goto bad;
    }
    if (h.fortran) {
        rc = fail(err, errlen, VEC_E_INPUT, path,
                  "fortran_order is True: save a C-order array (np.ascontiguousarray(x))");
        goto bad;
    }
    size_t n, d;
    if (h.ndim == 2) {
        n = h.shape[0];
        d = h.shape[1];
    } else if (h.ndim == 1) { /* one vector */
        n = 1;
        d = h.shape[0];
    } else {
        char shp[96] = "";
        for (int i = 0; i < h.ndim; i++) {
            size_t l = strlen(shp);
            snprintf(shp + l, sizeof shp - l, i ? ", %zu" : "%zu", h.shape[i]);
        }
        rc = fail(err, errlen, VEC_E_INPUT, path, "bad shape (%s): expected 2-D (n, d)", shp);
        goto bad;
    }
    if (n == 0 || d == 0) {
        rc = fail(err, errlen, VEC_E_INPUT, path, "empty array, shape (%zu, %zu)", n, d);
        goto bad;
    }
    if (d > VEC_MAX_D) {
        rc = fail(err, errlen, VEC_E_INPUT, path, "d = %zu is over the limit of %u", d, VEC_MAX_D);
        goto bad;
    }
    if (n > (SIZE_MAX / 8) / d) {
        rc = fail(err, errlen, VEC_E_INPUT, path, "shape (%zu, %zu) is too large", n, d);
        goto bad;
    }
    size_t need = n * d * esize, have = size - h.data_off;
    if (have < need) {
        rc = fail(err, errlen, VEC_E_INPUT, path,
                  "truncated at byte %zu: shape (%zu, %zu) of %s needs %zu bytes", size, n, d,
                  dtype_name(h.descr), h.data_off + need);
        goto bad;
    }
    if (have > need) {
        rc = fail(err, errlen, VEC_E_INPUT, path, "%zu unexpected bytes after the data (shape (%zu, %zu))",
                  have - need, n, d);
        goto bad;
    }
    if (esize == 8) { /* int64 ids -> int32 */
        int32_t *o = (int32_t *)(void *)b;
        for (size_t i = 0; i < n * d; i++) {
            int64_t x = get_le64(b + h.data_off + i * 8);
            if (x < INT32_MIN || x > INT32_MAX) {
                rc = fail(err, errlen, VEC_E_INPUT, path, "value %lld at index %zu does not fit int32",
                          (long long)x, i);
                goto bad;
            }
            o[i] = (int32_t)x;
        }
    } else {
        memmove(b, b + h.data_off, need);
        le32_fix(b, n * d);
    }
    return finish(out, b, n, d, want);
bad:
    free(b);
    return rc;
}

static int read_npy(const char *path, vec_dtype want, vec_matrix *out, char *err, size_t errlen)
{
    unsigned char *b;
    size_t size;
    int rc = read_all(path, &b, &size, err, errlen);
    return rc ? rc : parse_npy(path, b, size, want, out, err, errlen);
}

/* ------------------------------------------------------ .fvecs / .ivecs */

static int parse_vecs(const char *path, unsigned char *b, size_t size, size_t esize, vec_dtype type,
                      vec_matrix *out, char *err, size_t errlen)
{
    int rc;
    if ((rc = check_lfs(path, b, size, err, errlen))) goto bad;
    if (size >= 6 && !memcmp(b, "\x93NUMPY", 6)) {
        rc = fail(err, errlen, VEC_E_INPUT, path, "is a .npy file, not TEXMEX .%cvecs: rename it to .npy",
                  esize == 1 ? 'b' : type == VEC_FLOAT32 ? 'f' : 'i');
        goto bad;
    }
    if (size < 4) {
        rc = fail(err, errlen, VEC_E_INPUT, path, size ? "truncated at byte %zu: no first row" : "empty file",
                  size);
        goto bad;
    }
    uint32_t d32 = get_le32(b);
    if (d32 == 0 || d32 > VEC_MAX_D) {
        rc = fail(err, errlen, VEC_E_INPUT, path,
                  "first row's dimension %d is not in [1, %u]: not a TEXMEX .vecs file?", (int)d32,
                  VEC_MAX_D);
        goto bad;
    }
    size_t d = d32, row = 4 + d * esize;
    if (size % row != 0) {
        rc = fail(err, errlen, VEC_E_INPUT, path,
                  "truncated at byte %zu: size is not a multiple of the row size %zu (d = %zu)", size, row, d);
        goto bad;
    }
    size_t n = size / row;
    for (size_t i = 0; i < n; i++) {
        uint32_t di = get_le32(b + i * row);
        if (di != d32) {
            rc = fail(err, errlen, VEC_E_INPUT, path, "row %zu (byte %zu) has d = %d, the first row d = %zu",
                      i, i * row, (int)di, d);
            goto bad;
        }
    }
    if (esize == 1) return bytes_to_float(path, b, 4, row, n, d, out, err, errlen);
    for (size_t i = 0; i < n; i++) memmove(b + i * d * 4, b + i * row + 4, d * 4);
    le32_fix(b, n * d);
    return finish(out, b, n, d, type);
bad:
    free(b);
    return rc;
}

static int read_vecs(const char *path, size_t esize, vec_dtype type, vec_matrix *out, char *err,
                     size_t errlen)
{
    unsigned char *b;
    size_t size;
    int rc = read_all(path, &b, &size, err, errlen);
    return rc ? rc : parse_vecs(path, b, size, esize, type, out, err, errlen);
}

/* ------------------------------------------------------ .fbin / .ibin */

static int parse_bin(const char *path, unsigned char *b, size_t size, size_t esize, vec_dtype type,
                     vec_matrix *out, char *err, size_t errlen)
{
    int rc;
    if ((rc = check_lfs(path, b, size, err, errlen))) goto bad;
    if (size < 8) {
        rc = fail(err, errlen, VEC_E_INPUT, path, "truncated at byte %zu: no 8-byte (n, d) header", size);
        goto bad;
    }
    size_t n = get_le32(b), d = get_le32(b + 4);
    if (n == 0 || d == 0 || d > VEC_MAX_D) {
        rc = fail(err, errlen, VEC_E_INPUT, path, "bad header: n = %zu, d = %zu", n, d);
        goto bad;
    }
    if (n > (SIZE_MAX / 8) / d) {
        rc = fail(err, errlen, VEC_E_INPUT, path, "bad header: n = %zu, d = %zu is too large", n, d);
        goto bad;
    }
    size_t need = 8 + n * d * esize;
    if (size < need) {
        rc = fail(err, errlen, VEC_E_INPUT, path, "truncated at byte %zu: header (n = %zu, d = %zu) needs %zu bytes",
                  size, n, d, need);
        goto bad;
    }
    if (size > need) {
        rc = fail(err, errlen, VEC_E_INPUT, path,
                  "%zu unexpected bytes after the data (header says n = %zu, d = %zu)", size - need, n, d);
        goto bad;
    }
    if (esize == 1) return bytes_to_float(path, b, 8, d, n, d, out, err, errlen);
    memmove(b, b + 8, n * d * 4);
    le32_fix(b, n * d);
    return finish(out, b, n, d, type);
bad:
    free(b);
    return rc;
}

static int read_bin(const char *path, size_t esize, vec_dtype type, vec_matrix *out, char *err,
                    size_t errlen)
{
    unsigned char *b;
    size_t size;
    int rc = read_all(path, &b, &size, err, errlen);
    return rc ? rc : parse_bin(path, b, size, esize, type, out, err, errlen);
}

/* ------------------------------------------------------- directories */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_dir(const char *path, vec_matrix *out, char *err, size_t errlen)
{
    DIR *dir = opendir(path);
    if (!dir) return fail(err, errlen, VEC_E_INPUT, path, "cannot open directory: %s", strerror(errno));
    char **names = NULL;
    size_t nn = 0, cap = 0;
    int rc = VEC_OK;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".npy")) continue;
        if (nn == cap) {
            cap = cap ? 2 * cap : 64;
            char **nv = realloc(names, cap * sizeof *names);
            if (!nv) { rc = fail(err, errlen, VEC_E_NOMEM, path, "out of memory"); break; }
            names = nv;
        }
        if (!(names[nn] = strdup(e->d_name))) { rc = fail(err, errlen, VEC_E_NOMEM, path, "out of memory"); break; }
        nn++;
    }
    closedir(dir);
    if (!rc && nn == 0) rc = fail(err, errlen, VEC_E_INPUT, path, "no .npy files in the directory");
    if (!rc) qsort(names, nn, sizeof *names, cmp_str);

    unsigned char *all = NULL;
    size_t n = 0, d = 0, acap = 0; /* acap in rows */
    char *first = NULL;
    for (size_t i = 0; i < nn && !rc; i++) {
        size_t pl = strlen(path) + strlen(names[i]) + 2;
        char *fp = malloc(pl);
        if (!fp) { rc = fail(err, errlen, VEC_E_NOMEM, path, "out of memory"); break; }
        snprintf(fp, pl, "%s%s%s", path, has_suffix(path, "/") ? "" : "/", names[i]);
        vec_matrix m;
        rc = read_npy(fp, VEC_FLOAT32, &m, err, errlen);
        if (rc) {
            free(fp);
            break;
        }
        if (i > 0 && m.d != d)
            rc = fail(err, errlen, VEC_E_INPUT, fp, "d = %zu, but %s has d = %zu (all files must share d)", m.d,
                      first, d);
        if (!rc) {
            if (i == 0) {
                d = m.d;
                first = names[0];
            }
            if (n + m.n > acap) {
                size_t ncap = acap ? acap : 1024;
                while (ncap < n + m.n) ncap *= 2;
                unsigned char *na = realloc(all, ncap * d * 4 + 1);
                if (!na) rc = fail(err, errlen, VEC_E_NOMEM, path, "out of memory for %zu rows", ncap);
                else { all = na; acap = ncap; }
            }
            if (!rc) {
                memcpy(all + n * d * 4, m.data, m.n * d * 4);
                n += m.n;
            }
        }
        vec_free(&m);
        free(fp);
    }
    for (size_t i = 0; i < nn; i++) free(names[i]);
    free(names);
    if (rc) {
        free(all);
        return rc;
    }
    return finish(out, all, n, d, VEC_FLOAT32);
}

/* ------------------------------------------------------------- entry */

/* No known extension: a .npy file is recognised by its magic (numpy
 * writes no other self-describing format); anything else is refused. */
static int sniff_unknown(const char *path, vec_dtype want, vec_matrix *out, char *err, size_t errlen)
{
    unsigned char magic[6] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, VEC_E_INPUT, path, "cannot open: %s", strerror(errno));
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got == sizeof magic && !memcmp(magic, "\x93NUMPY", 6)) return read_npy(path, want, out, err, errlen);
    return fail(err, errlen, VEC_E_INPUT, path,
                "unknown file type: expected .npy, .fvecs, .bvecs, .fbin, .u8bin, .ivecs, .ibin or a directory");
}

int vec_read_float(const char *path, vec_matrix *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    switch (vec_format_of(path)) {
    case VEC_FMT_NPY: return read_npy(path, VEC_FLOAT32, out, err, errlen);
    case VEC_FMT_FVECS: return read_vecs(path, 4, VEC_FLOAT32, out, err, errlen);
    case VEC_FMT_BVECS: return read_vecs(path, 1, VEC_FLOAT32, out, err, errlen);
    case VEC_FMT_FBIN: return read_bin(path, 4, VEC_FLOAT32, out, err, errlen);
    case VEC_FMT_U8BIN: return read_bin(path, 1, VEC_FLOAT32, out, err, errlen);
    case VEC_FMT_DIR: return read_dir(path, out, err, errlen);
    case VEC_FMT_IVECS:
    case VEC_FMT_IBIN:
        return fail(err, errlen, VEC_E_INPUT, path, "holds int32 ids, not float vectors");
    default: return sniff_unknown(path, VEC_FLOAT32, out, err, errlen);
    }
}

int vec_read_int(const char *path, vec_matrix *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    switch (vec_format_of(path)) {
    case VEC_FMT_NPY: return read_npy(path, VEC_INT32, out, err, errlen);
    case VEC_FMT_IVECS: return read_vecs(path, 4, VEC_INT32, out, err, errlen);
    case VEC_FMT_IBIN: return read_bin(path, 4, VEC_INT32, out, err, errlen);
    case VEC_FMT_UNKNOWN: return sniff_unknown(path, VEC_INT32, out, err, errlen);
    default:
        return fail(err, errlen, VEC_E_INPUT, path, "holds float vectors, expected int32 ids (.ivecs, .ibin, .npy)");
    }
}

int vec_read_buffer(const char *name, vec_format fmt, vec_dtype want, const void *data, size_t size,
                    vec_matrix *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    static const struct { vec_format fmt; vec_dtype type; size_t esize; } kinds[] = {
        {VEC_FMT_NPY, VEC_FLOAT32, 4},   {VEC_FMT_NPY, VEC_INT32, 4},
        {VEC_FMT_FVECS, VEC_FLOAT32, 4}, {VEC_FMT_IVECS, VEC_INT32, 4},
        {VEC_FMT_BVECS, VEC_FLOAT32, 1}, {VEC_FMT_FBIN, VEC_FLOAT32, 4},
        {VEC_FMT_IBIN, VEC_INT32, 4},    {VEC_FMT_U8BIN, VEC_FLOAT32, 1},
    };
    size_t k = 0;
    while (k < sizeof kinds / sizeof kinds[0] && (kinds[k].fmt != fmt || kinds[k].type != want)) k++;
    if (k == sizeof kinds / sizeof kinds[0])
        return fail(err, errlen, VEC_E_INPUT, name, "%s does not hold %s", vec_format_name(fmt),
                    want == VEC_FLOAT32 ? "float vectors" : "int32 ids");
    if (size && !data) return fail(err, errlen, VEC_E_INPUT, name, "no data");
    unsigned char *b = malloc(size + 1);
    if (!b) return fail(err, errlen, VEC_E_NOMEM, name, "out of memory for %zu bytes", size);
    if (size) memcpy(b, data, size);
    if (fmt == VEC_FMT_NPY) return parse_npy(name, b, size, want, out, err, errlen);
    if (fmt == VEC_FMT_FVECS || fmt == VEC_FMT_IVECS || fmt == VEC_FMT_BVECS)
        return parse_vecs(name, b, size, kinds[k].esize, want, out, err, errlen);
    return parse_bin(name, b, size, kinds[k].esize, want, out, err, errlen);
}

int vec_read_fvecs(const char *path, vec_matrix *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    return read_vecs(path, 4, VEC_FLOAT32, out, err, errlen);
}

int vec_read_ivecs(const char *path, vec_matrix *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    return read_vecs(path, 4, VEC_INT32, out, err, errlen);
}

/* ------------------------------------------------------------- writing */

static int write_words(FILE *f, const void *x, size_t count)
{
    if (host_is_le()) return fwrite(x, 4, count, f) == count ? 0 : -1;
    const unsigned char *s = x;
    for (size_t i = 0; i < count; i++) {
        uint32_t v;
        memcpy(&v, s + 4 * i, 4);
        unsigned char w[4];
        put_le32(w, v);
        if (fwrite(w, 4, 1, f) != 1) return -1;
    }
    return 0;
}

int vec_write(const char *path, vec_dtype type, const void *x, size_t n, size_t d, char *err, size_t errlen)
{
    vec_format fmt = vec_format_of(path);
    if (fmt == VEC_FMT_DIR) return fail(err, errlen, VEC_E_WRITE, path, "is a directory");
    if (!((fmt == VEC_FMT_FVECS && type == VEC_FLOAT32) || (fmt == VEC_FMT_IVECS && type == VEC_INT32) ||
          (fmt == VEC_FMT_FBIN && type == VEC_FLOAT32) || (fmt == VEC_FMT_IBIN && type == VEC_INT32) ||
          fmt == VEC_FMT_NPY))
        return fail(err, errlen, VEC_E_WRITE, path, "cannot write %s values in this format (use .%s, .%s or .npy)",
                    type == VEC_FLOAT32 ? "float32" : "int32", type == VEC_FLOAT32 ? "fvecs" : "ivecs",
                    type == VEC_FLOAT32 ? "fbin" : "ibin");
    if (d == 0 || d > VEC_MAX_D || n > UINT32_MAX)
        return fail(err, errlen, VEC_E_WRITE, path, "cannot write %zu x %zu", n, d);
    size_t tl = strlen(path) + 32;
    char *tmp = malloc(tl);
    if (!tmp) return fail(err, errlen, VEC_E_NOMEM, path, "out of memory");
    snprintf(tmp, tl, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        free(tmp);
        return fail(err, errlen, VEC_E_WRITE, path, "cannot create: %s", strerror(e));
    }
    int bad = 0;
    unsigned char w[4];
    if (fmt == VEC_FMT_FVECS || fmt == VEC_FMT_IVECS) {
        put_le32(w, (uint32_t)d);
        for (size_t i = 0; i < n && !bad; i++)
            bad = fwrite(w, 4, 1, f) != 1 || write_words(f, (const char *)x + i * d * 4, d);
    } else if (fmt == VEC_FMT_FBIN || fmt == VEC_FMT_IBIN) {
        unsigned char h[8];
        put_le32(h, (uint32_t)n);
        put_le32(h + 4, (uint32_t)d);
        bad = fwrite(h, 8, 1, f) != 1 || write_words(f, x, n * d);
    } else { /* .npy v1: header padded with spaces to a multiple of 64, ends in \n */
        char dict[160];
        int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }",
                          type == VEC_FLOAT32 ? "<f4" : "<i4", n, d);
        size_t total = 10 + (size_t)dl + 1;
        size_t pad = (64 - total % 64) % 64;
        unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
        size_t hlen = (size_t)dl + pad + 1;
        pre[8] = (unsigned char)hlen;
        pre[9] = (unsigned char)(hlen >> 8);
        bad = fwrite(pre, 10, 1, f) != 1 || fwrite(dict, (size_t)dl, 1, f) != 1;
        for (size_t i = 0; i < pad && !bad; i++) bad = fputc(' ', f) == EOF;
        bad = bad || fputc('\n', f) == EOF || write_words(f, x, n * d);
    }
    if (fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        free(tmp);
        return fail(err, errlen, VEC_E_WRITE, path, "write error: %s", strerror(e));
    }
    free(tmp);
    return VEC_OK;
}

int vec_write_ivecs(const char *path, const int32_t *x, size_t n, size_t d, char *err, size_t errlen)
{
    return vec_write(path, VEC_INT32, x, n, d, err, errlen);
}

void vec_free(vec_matrix *m)
{
    free(m->data);
    m->data = NULL;
    m->n = m->d = 0;
}

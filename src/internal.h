/*
 * Internal definitions shared by the library's translation units.
 * Nothing here is part of the public API.
 */
#ifndef IVFPQ_INTERNAL_H
#define IVFPQ_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ivfpq.h"

#define IVFPQ_DEFAULT_SEED 1234u
#define IVFPQ_MAX_D (1 << 20)
#define IVFPQ_MAX_NLIST ((size_t)1 << 20) /* IVF1M: a flat quantizer beyond is unusable */
#define IVFPQ_MAX_M 4096       /* PQ sub-quantizers: keeps the uint16 sum bound meaningful */
#define IVFPQ_MAX_NTOTAL ((uint64_t)1 << 48)
#define IVFPQ_MAX_LIST_SIZE UINT32_MAX /* search refs hold a list offset in 32 bits */
#define IVFPQ_BBS 32           /* vectors per FastScan block */
#define IVFPQ_KSUB 16          /* centroids per 4-bit sub-quantizer */
#define IVFPQ_ALIGN 64         /* alignment of every array the kernels read */

/* ------------------------------------------------------------------ memory */

typedef struct ivfpq_mem {
    ivfpq_allocator a; /* resolved: never NULL functions */
} ivfpq_mem;

void ivfpq__mem_init(ivfpq_mem *m, const ivfpq_allocator *a);
/* 64-byte aligned; NULL on failure or size 0 overflow. */
void *ivfpq__alloc(const ivfpq_mem *m, size_t size);
void *ivfpq__calloc(const ivfpq_mem *m, size_t size);
void ivfpq__free(const ivfpq_mem *m, void *p);
/* The message of an allocation attempted without hooks in an embedded build. */
extern const char ivfpq__no_heap[];

/* Overflow-checked size arithmetic: return 0 on overflow. */
static inline int ivfpq__mul(size_t a, size_t b, size_t *out)
{
#if defined(__GNUC__) || defined(__clang__)
    return !__builtin_mul_overflow(a, b, out);
#else
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
#endif
}
static inline int ivfpq__add(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}
static inline size_t ivfpq__round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* ---------------------------------------------------------- diagnostics */

typedef struct ivfpq_log {
    ivfpq_log_fn fn;
    void *user;
} ivfpq_log;

/* Formats (a small printf subset: %s %c %d %u %ld %lu %lld %llu %zu %zd %g
 * %%, no width) into buf without stdio. Always NUL-terminates. */
size_t ivfpq__format(char *buf, size_t size, const char *fmt, va_list ap);
size_t ivfpq__snprintf(char *buf, size_t size, const char *fmt, ...);

/* Sends a message to the log callback (if any) and returns `status`, so that
 * failures read `return ivfpq__fail(log, IVFPQ_E_DIM, "...", ...)`. */
int ivfpq__fail(const ivfpq_log *log, int status, const char *fmt, ...);
void ivfpq__warn(const ivfpq_log *log, const char *fmt, ...);

/* ----------------------------------------------------------------- rng */

/* splitmix64-seeded xoshiro256**: tiny, fast, identical on every platform. */
typedef struct ivfpq_rng { uint64_t s[4]; } ivfpq_rng;
void ivfpq__rng_seed(ivfpq_rng *r, uint64_t seed);
uint64_t ivfpq__rng_next(ivfpq_rng *r);
/* Uniform in [0, n) without modulo bias. n >= 1. */
uint64_t ivfpq__rng_below(ivfpq_rng *r, uint64_t n);
/* Uniform float in [0, 1). */
float ivfpq__rng_float(ivfpq_rng *r);
/* First m entries of a uniform random permutation of 0..n-1 into perm[m]
 * (m <= n). tmp must hold n uint32. */
void ivfpq__rng_sample(ivfpq_rng *r, uint32_t n, uint32_t m, uint32_t *perm, uint32_t *tmp);

/* --------------------------------------------------------------- index */

/* Factory string, parsed. */
typedef struct ivfpq_spec {
    int has_ivf;      /* IVF<n> prefix */
    int has_pq;       /* PQ<M>x4fs codes (else raw float vectors) */
    int by_residual;  /* x4fsr */
    int refine;       /* ,RFlat */
    size_t nlist;     /* 1 without IVF */
    size_t M;         /* 0 without PQ */
} ivfpq_spec;

/* Allocates an index with every field derived from (d, metric, spec,
 * options), untrained and empty. with_lists = 0 leaves lists NULL (for a
 * loader that attaches FLAT storage: then only the struct is allocated). */
int ivfpq__index_create(ivfpq_index **out, int d, ivfpq_metric metric, const ivfpq_spec *s,
                        const ivfpq_options *opt, int with_lists);

/* Parses spec for dimension d. On error logs a message naming the token. */
int ivfpq__parse_factory(const char *spec, int d, ivfpq_spec *out, const ivfpq_log *log);
/* Canonical string for a parsed spec. */
void ivfpq__spec_string(const ivfpq_spec *s, char *buf, size_t size);

/* An inverted list the index owns. Vector slots [0, n) are used; the PQ
 * codes fill ceil(n/32) blocks of the 32-vector interleaved layout, and the
 * rest of the last block is zero. cap is a multiple of 32. */
typedef struct ivfpq_list {
    size_t n, cap;
    int64_t *ids;      /* [cap] labels */
    uint8_t *codes;    /* [cap/32 * block_bytes] PQ blocks, or NULL */
    float *vecs;       /* [cap * d] raw vectors (IVF,Flat codes or RFlat), or NULL */
} ivfpq_list;

/* A read-only view of one list, whatever the storage. */
typedef struct ivfpq_list_view {
    size_t n;
    const int64_t *ids;
    const uint8_t *codes;
    const float *vecs;
} ivfpq_list_view;

enum ivfpq_storage {
    IVFPQ_STORAGE_OWNED = 0,  /* lists[] with their own growable buffers */
    IVFPQ_STORAGE_FLAT = 1    /* contiguous arrays + offset tables (loaded image) */
};

/* Contiguous list storage, as laid out in an index image. List l holds
 * vectors [off[l], off[l+1]) of ids/vecs and blocks [boff[l], boff[l+1]). */
typedef struct ivfpq_flat_lists {
    const uint64_t *off;   /* [nlist + 1] */
    const uint64_t *boff;  /* [nlist + 1], NULL without PQ */
    const int64_t *ids;    /* [ntotal] */
    const uint8_t *codes;  /* [boff[nlist] * block_bytes] */
    const float *vecs;     /* [ntotal * d] or NULL */
} ivfpq_flat_lists;

struct ivfpq_index {
    ivfpq_mem mem;
    ivfpq_log log;
    ivfpq_progress_fn progress;
    void *progress_user;

    /* configuration */
    int d;
    ivfpq_metric metric;
    ivfpq_spec spec;
    size_t nlist;          /* = spec.nlist */
    size_t M, M2, dsub;    /* PQ shape; M2 = M rounded up to even */
    size_t block_bytes;    /* 32 * M2 / 2 */
    uint64_t seed;
    int coarse_niter, pq_niter, max_ppc, min_ppc;
    size_t pq_train_points;

    /* training */
    int is_trained;
    float *centroids;      /* [nlist * d] (IVF) */
    float *cnorms;         /* [nlist] squared norms of centroids (IVF) */
    float *pq_cb;          /* [M][dsub][16] codebooks: pq_cb[(m*dsub + t)*16 + j] */
    int model_borrowed;    /* the three arrays above point into an image, not ours */
    void *cpf_cache;       /* coarse prefilter tables (ivfpq_cache_coarse_tables), or NULL */
    int readonly;          /* zero-copy view of a caller's buffer: never modified */
    void *image;           /* owned copy of a loaded image (freed with the index), or NULL */
    /* called by ivfpq_free last, e.g. to unmap the file a zero-copy index
     * views (io_file.c); NULL if nothing to do */
    void (*release)(void *ctx, size_t len);
    void *release_ctx;
    size_t release_len;

    /* contents */
    size_t ntotal;
    int storage;
    ivfpq_list *lists;     /* [nlist], IVFPQ_STORAGE_OWNED */
    ivfpq_flat_lists flat; /* IVFPQ_STORAGE_FLAT */
};

static inline int ivfpq__keeps_vectors(const ivfpq_index *idx)
{
    return !idx->spec.has_pq || idx->spec.refine;
}

static inline void ivfpq__list_get(const ivfpq_index *idx, size_t l, ivfpq_list_view *v)
{
    if (idx->storage == IVFPQ_STORAGE_OWNED) {
        const ivfpq_list *L = &idx->lists[l];
        v->n = L->n;
        v->ids = L->ids;
        v->codes = L->codes;
        v->vecs = L->vecs;
    } else {
        const ivfpq_flat_lists *F = &idx->flat;
        size_t o = (size_t)F->off[l];
        v->n = (size_t)(F->off[l + 1] - F->off[l]);
        v->ids = F->ids + o;
        v->codes = F->codes ? F->codes + (size_t)F->boff[l] * idx->block_bytes : NULL;
        v->vecs = F->vecs ? F->vecs + o * (size_t)idx->d : NULL;
    }
}

/* Converts FLAT (loaded) storage into owned, growable lists so the index
 * can be modified. All-or-nothing. */
int ivfpq__lists_materialize(ivfpq_index *idx);
/* Frees the contents (lists) of the index, leaves it empty with nothing
 * allocated for lists. */
void ivfpq__lists_free(ivfpq_index *idx);
/* Bytes held by the lists. */
size_t ivfpq__lists_bytes(const ivfpq_index *idx);

/* Largest accepted |value| of an input vector: 2^52. With d <= 2^20 every
 * squared distance, norm and k-means sum stays below 2^127, so no
 * computation on accepted data overflows float. */
#define IVFPQ_MAX_ABS_VALUE 4503599627370496.0f

/* Checks every value of x [n, d] is finite and within +-IVFPQ_MAX_ABS_VALUE;
 * logs the first bad row and column. */
int ivfpq__check_finite(const ivfpq_log *log, const char *what, size_t n, size_t d,
                        const float *x);

/* ------------------------------------------------------------- search */

/* Argument checks shared by the search entry points (search.c, blend.c),
 * in this order: k >= 1, nprobe >= 1, k_factor in [1, 65536] (RFlat only),
 * then, if nq > 0, the caller's arrays (arrays_given: none is NULL; arrays
 * names them in the message). what names the call in the messages
 * ("search: k must be >= 1"). The index itself must not be NULL. */
int ivfpq__check_search_args(const ivfpq_index *idx, const char *what, size_t nq, size_t k,
                             const ivfpq_search_params *p, int arrays_given, const char *arrays);

typedef struct ivfpq_query_hook {
    void (*fn)(void *ctx, size_t qi, const float *dist, const uint64_t *where);
    void *ctx;
} ivfpq_query_hook;

/* ivfpq_search_ws that also reports where each result is stored: where
 * [nq, k] receives (list << 32 | offset in the list) per result, or
 * UINT64_MAX for a missing one (label -1), so stored vectors are read
 * without looking their labels up (blend.c). where NULL = ivfpq_search_ws.
 * cpf_ready: an earlier call on this workspace, with this index and at
 * least as many queries, built the coarse prefilter's tables (they sit at
 * the workspace's start): use them instead of building them again.
 * hook (non-NULL needs where): called once per query, qi counted from q,
 * as soon as its k results are final, while the stored rows the refine
 * just read are still in cache (blend.c blends there). */
int ivfpq__search_where_ws(const ivfpq_index *idx, size_t nq, const float *q, size_t k,
                           const ivfpq_search_params *params, float *distances,
                           int64_t *labels, uint64_t *where, void *workspace,
                           size_t workspace_size, int cpf_ready, const ivfpq_query_hook *hook);

/* ------------------------------------------------------------- k-means */

typedef struct ivfpq_kmeans_cfg {
    int niter;
    int max_ppc;          /* subsample to k * max_ppc points */
    int min_ppc;          /* warn below */
    int spherical;        /* normalize centroids (inner product) */
    int metric_ip;        /* assign by largest inner product */
    uint64_t seed;
    const char *stage;    /* for progress and messages */
} ivfpq_kmeans_cfg;

/* Clusters x [n, d] into k centroids (out [k, d]). IVFPQ_E_TOO_FEW_POINTS if
 * n < k. Deterministic for a given seed at every SIMD level. */
int ivfpq__kmeans(const ivfpq_index *ctx, const ivfpq_kmeans_cfg *cfg, size_t n, size_t d,
                  const float *x, size_t k, float *out);

/* Nearest `nprobe` centroids of each row of x [nx, d] (coarse quantization
 * and k-means assignment). L2: dist = |c|^2 - 2<x,c> (+|x|^2 when xnorms is
 * given); IP: dist = -<x,c>. Results sorted by (dist, list). scratch holds
 * ivfpq__coarse_scratch_floats(nx, nlist) floats. */
size_t ivfpq__coarse_scratch_floats(size_t nx, size_t nlist);
void ivfpq__coarse_search(const float *x, size_t nx, size_t d, const float *cents,
                          const float *cnorms, size_t nlist, int metric_ip,
                          size_t nprobe, int32_t *lists, float *dists, float *scratch);
void ivfpq__coarse_pick(const float *dv, const int32_t *lv, size_t n, size_t nprobe, float *hd,
                        int32_t *hl);

/* The coarse prefilter (coarse.c): the same lists and distances as
 * ivfpq__coarse_search for a batch, most centroids ruled out by int16
 * arithmetic. Tables (ivfpq__cpf_bytes, built once per call by
 * ivfpq__cpf_prepare, 0 = unusable) and per-chunk scratch
 * (ivfpq__cpf_scratch_bytes) come from the search workspace; fscratch is
 * ivfpq__coarse_scratch_floats(1, nlist) floats for queries it hands back
 * to the float search. */
int ivfpq__cpf_worth(size_t nq, size_t nlist, size_t d, size_t nprobe);
size_t ivfpq__cpf_bytes(size_t nlist, size_t d);
size_t ivfpq__cpf_scratch_bytes(size_t nlist, size_t d);
int ivfpq__cpf_prepare(void *mem, const float *cents, const float *cnorms, size_t nlist, size_t d,
                       int ip);
/* What the last ivfpq__cpf_prepare on these tables returned. */
int ivfpq__cpf_usable(const void *mem, size_t nlist, size_t d);
void ivfpq__cpf_search(const void *tables, const float *x, size_t nx, size_t d, const float *cents,
                       const float *cnorms, size_t nlist, size_t nprobe, int32_t *lists,
                       float *dists, void *scratch, float *fscratch);

/* ------------------------------------------------------------------ PQ */

/* Trains M codebooks of 16 centroids on x [n, d] into cb (layout above). */
int ivfpq__pq_train(const ivfpq_index *idx, size_t n, const float *x, float *cb);
/* Encodes x [n, d] into unpacked codes [n, M] (one code 0..15 per byte).
 * lut scratch: M*16 floats. */
void ivfpq__pq_encode(const ivfpq_index *idx, size_t n, const float *x, uint8_t *codes,
                      float *lut);
/* Sets code `c` of sub-quantizer m for vector slot v of a packed block array. */
void ivfpq__pq4_set(uint8_t *blocks, size_t M2, size_t v, size_t m, unsigned c);
unsigned ivfpq__pq4_get(const uint8_t *blocks, size_t M2, size_t v, size_t m);
/* Decodes one unpacked code vector [M] into out[d]. */
void ivfpq__pq_decode(const ivfpq_index *idx, const uint8_t *code, float *out);

/* ----------------------------------------------------------------- LUT */

/* Float table of one query: lut[m*16 + j] = distance of the query's m-th
 * sub-vector to centroid j, in "smaller is better" form (L2: squared
 * distance, IP: minus the inner product). */
void ivfpq__lut_float(const ivfpq_index *idx, const float *q, float *lut);

/* Quantized table: lut8[M2*16] with sum over m fitting uint16, and the
 * affine map back: estimate = bias + S * inv_scale. */
typedef struct ivfpq_qlut {
    float scale, inv_scale, bias;
} ivfpq_qlut;
void ivfpq__lut_quantize(const float *lut, size_t M, size_t M2, uint8_t *lut8,
                         ivfpq_qlut *qp);

/* Largest S in [0, 65535] with bias + S*inv_scale <= thr, or -1 if none:
 * the exact uint16 form of a float threshold. */
int32_t ivfpq__lut_threshold(const ivfpq_qlut *qp, float bias, float thr);

#endif /* IVFPQ_INTERNAL_H */

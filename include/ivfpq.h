/*
 * libivfpq — approximate nearest-neighbour search of float vectors by
 * IVF + 4-bit product quantization "FastScan" + exact refine.
 *
 * One header, C11, no dependencies beyond libc/libm. MIT licence.
 *
 * Conventions
 *  - Every function that can fail returns an int status: IVFPQ_OK (0) or a
 *    negative IVFPQ_E_* code; ivfpq_strerror() turns it into text. A detailed
 *    message (naming the bad token, row, field...) goes to the log callback
 *    given at creation, if any. There is no global error state.
 *  - A failing call changes nothing: the index is left exactly as it was.
 *  - Distances are squared L2 for IVFPQ_METRIC_L2 and inner products for
 *    IVFPQ_METRIC_INNER_PRODUCT, like faiss. Labels are int64, -1 = no result.
 *  - Input values (train, add, search; every kind): NaN, +-Inf and finite
 *    values beyond +-2^52 (about 4.5e15, where distances could overflow
 *    float) are rejected with IVFPQ_E_NONFINITE, naming the row and column;
 *    nothing is ever computed from them. Zeros and denormals are ordinary
 *    values. Sizes whose byte counts overflow size_t: IVFPQ_E_OVERFLOW,
 *    detected before the data is read.
 *
 * Threads: calls taking a `const ivfpq_index *` (search, search_ws,
 * search_workspace_size, reconstruct, get_info, save, saved_size...) may run
 * concurrently on one index, on owned, loaded and zero-copy indexes alike
 * (tests/test_threads.c, under TSan). Calls that modify an index (train,
 * add, reset, free) need exclusive access: the caller locks, e.g. with a
 * reader-writer lock (searches as readers). Different indexes are
 * independent. Also: the allocator hooks and the log callback of an index
 * searched from several threads are called from those threads (ivfpq_search
 * allocates its workspace), so they must be thread-safe (malloc is);
 * ivfpq_search_ws with one workspace per thread allocates nothing; a
 * zero-copy buffer must not change while the index exists;
 * ivfpq_simd_force must not run concurrently with any other call. The
 * library itself never starts threads. See docs/TESTING.md.
 */
#ifndef IVFPQ_H
#define IVFPQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IVFPQ_VERSION_MAJOR 0
#define IVFPQ_VERSION_MINOR 1
#define IVFPQ_VERSION_PATCH 0
#define IVFPQ_VERSION_NUMBER \
    (IVFPQ_VERSION_MAJOR * 10000 + IVFPQ_VERSION_MINOR * 100 + IVFPQ_VERSION_PATCH)
#define IVFPQ_VERSION_STRING "0.1.0"

#if defined(IVFPQ_BUILDING_LIBRARY) && defined(__GNUC__)
#define IVFPQ_API __attribute__((visibility("default")))
#else
#define IVFPQ_API
#endif

/* ---------------------------------------------------------------- status */

/* Stable values: never renumbered, new codes are appended. */
enum ivfpq_status {
    IVFPQ_OK = 0,
    IVFPQ_E_INVALID_ARG = -1,     /* NULL pointer, d <= 0, k == 0, bad parameter */
    IVFPQ_E_NOMEM = -2,           /* an allocation failed (index unchanged) */
    IVFPQ_E_PARSE = -3,           /* malformed or unsupported factory string */
    IVFPQ_E_NOT_TRAINED = -4,     /* add/search before train */
    IVFPQ_E_STATE = -5,           /* not valid now (e.g. train after add) */
    IVFPQ_E_DIM = -6,             /* dimension mismatch */
    IVFPQ_E_NONFINITE = -7,       /* NaN, infinity or |value| > 2^52 in input vectors */
    IVFPQ_E_TOO_FEW_POINTS = -8,  /* fewer training points than centroids */
    IVFPQ_E_UNSUPPORTED = -9,     /* not available for this index kind */
    IVFPQ_E_NOT_FOUND = -10,      /* no stored vector has that id */
    IVFPQ_E_OVERFLOW = -11,       /* a size computation overflows */
    IVFPQ_E_FORMAT = -12,         /* bytes are not an index of a known format */
    IVFPQ_E_CORRUPT = -13,        /* index data inconsistent */
    IVFPQ_E_TRUNCATED = -14,      /* index data ends early */
    IVFPQ_E_CHECKSUM = -15,       /* section checksum mismatch */
    IVFPQ_E_IO = -16,             /* read/write callback failed */
    IVFPQ_E_LIMIT = -17,          /* caller-set limit exceeded */
    IVFPQ_E_WORKSPACE = -18,      /* caller workspace too small */
    IVFPQ_E_SIMD = -19,           /* SIMD level not available on this CPU/build */
    IVFPQ_E_READONLY = -20,       /* index is a read-only view */
    IVFPQ_E_CANCELED = -21,       /* progress callback asked to stop */
    IVFPQ_E_VERSION = -22         /* format version not supported */
};

/* Short English text for a status; never NULL ("unknown status" otherwise). */
IVFPQ_API const char *ivfpq_strerror(int status);

IVFPQ_API unsigned ivfpq_version_number(void);
IVFPQ_API const char *ivfpq_version_string(void);

/* ------------------------------------------------------------ options */

/* Same numbers as faiss's MetricType. */
typedef enum ivfpq_metric {
    IVFPQ_METRIC_INNER_PRODUCT = 0,
    IVFPQ_METRIC_L2 = 1
} ivfpq_metric;

/* Allocator hooks (zstd's customMem). Both NULL = malloc/free (embedded
 * builds have no default: every allocation fails with IVFPQ_E_NOMEM and a
 * message saying so; see ivfpq_arena). `free` gets
 * the pointers `alloc` returned (and never NULL). Alignment is handled by
 * the library, so any allocator will do, including a bump arena. */
typedef struct ivfpq_allocator {
    void *(*alloc)(void *opaque, size_t size);
    void (*free)(void *opaque, void *ptr);
    void *opaque;
} ivfpq_allocator;

enum ivfpq_log_level { IVFPQ_LOG_ERROR = 1, IVFPQ_LOG_WARNING = 2, IVFPQ_LOG_INFO = 3 };

/* Receives detailed messages: every failure (level ERROR, with its status)
 * and warnings such as too few training points per centroid. Must be
 * thread-safe if the index is searched from several threads. */
typedef void (*ivfpq_log_fn)(void *user, int level, int status, const char *message);

/* Progress of long calls (train, add). `stage` is e.g. "train coarse",
 * "train pq", "add"; `done`/`total` in the stage's own units. Return
 * non-zero to cancel: the call returns IVFPQ_E_CANCELED, index unchanged. */
typedef int (*ivfpq_progress_fn)(void *user, const char *stage, size_t done, size_t total);

/* Creation options. All-zero (or NULL) means the defaults noted. */
typedef struct ivfpq_options {
    ivfpq_allocator allocator;
    ivfpq_log_fn log;
    void *log_user;
    ivfpq_progress_fn progress;
    void *progress_user;
    uint64_t seed;                  /* 0 = 1234; same seed + data = same index */
    int coarse_niter;               /* 0 = 10 k-means iterations (coarse) */
    int pq_niter;                   /* 0 = 25 k-means iterations (PQ) */
    int max_points_per_centroid;    /* 0 = 256: training subsample cap */
    int min_points_per_centroid;    /* 0 = 39: below this, a warning */
    size_t pq_train_points;         /* 0 = 65536: PQ training sample cap */
} ivfpq_options;

/* ------------------------------------------------------------ the index */

typedef struct ivfpq_index ivfpq_index;

/* Creates an empty index from a faiss-style factory string:
 *   "Flat"                exact search
 *   "IVF<n>,Flat"         inverted file, raw vectors in the lists
 *   "PQ<M>x4fs"           4-bit PQ FastScan over all vectors
 *   "IVF<n>,PQ<M>x4fs"    IVF + 4-bit PQ of the raw vectors (faiss's x4fs)
 *   "IVF<n>,PQ<M>x4fsr"   IVF + 4-bit PQ of residuals to the coarse centroid
 *   "...,RFlat"           after a PQ kind: keep raw vectors, re-rank exactly
 * <n> may end in k (x1024) or M (x1048576); "_32" after x4fs[r] is accepted.
 * d = vector dimension (1..1048576); M must divide d.
 * On failure *out is set to NULL and nothing is allocated. */
IVFPQ_API int ivfpq_index_factory(ivfpq_index **out, int d, const char *spec,
                                  ivfpq_metric metric, const ivfpq_options *opt);

/* NULL-safe. */
IVFPQ_API void ivfpq_free(ivfpq_index *idx);

/* Trains the coarse quantizer and PQ codebooks on x [n, d] (row-major
 * float32). Needs n >= nlist (and >= 16 for PQ); warns (log callback) below
 * min_points_per_centroid per centroid. Allowed while the index is empty;
 * retraining an index holding vectors is IVFPQ_E_STATE. Flat kinds need no
 * training (no-op) but check x like the others. NaN/Inf anywhere in x:
 * IVFPQ_E_NONFINITE. */
IVFPQ_API int ivfpq_train(ivfpq_index *idx, size_t n, const float *x);

/* Adds x [n, d]. ids: NULL = ntotal, ntotal+1, ...; else n labels >= 0.
 * Labels are not keys: duplicates are stored as given. May be called any
 * number of times. All-or-nothing. */
IVFPQ_API int ivfpq_add(ivfpq_index *idx, size_t n, const float *x, const int64_t *ids);

/* Removes all vectors, keeps the training. */
IVFPQ_API int ivfpq_reset(ivfpq_index *idx);

/* Batch searches of IVF kinds (>= 32 queries, >= 64 lists, nprobe <= 16)
 * first rank the centroids in int16 with tables built from them, by
 * default once per call in the workspace (for nlist x d = 1282 x 256 about
 * 0.15 ms; linear in nlist x d). enable = 1 builds the tables once and keeps
 * them in the index: about 2 x nlist x d + 20 x nlist + 4 x d bytes (nlist
 * rounded up to 16, d to even; ivfpq_info.memory_bytes counts them exactly),
 * from the index's allocator. Searches then skip
 * the step and their workspace shrinks by that size (ask
 * ivfpq_search_workspace_size again; a workspace sized before still fits,
 * one sized after is too small once the cache is dropped). ivfpq_train
 * keeps the cache up to date. enable = 0 frees it. Results are the same
 * either way. A no-op (IVFPQ_OK, nothing kept) where the tables are never
 * used: fewer than 64 lists, d > 65536, or centroid values too large for
 * the int16 bounds. Not to be called while searches run on the index.
 * Errors: IVFPQ_E_UNSUPPORTED without IVF, IVFPQ_E_NOT_TRAINED,
 * IVFPQ_E_NOMEM (the index is then unchanged). */
IVFPQ_API int ivfpq_cache_coarse_tables(ivfpq_index *idx, int enable);

/* ----------------------------------------------------------- searching */

typedef struct ivfpq_search_params {
    size_t nprobe;    /* lists visited per query (IVF kinds); >= 1, clamped to nlist */
    float k_factor;   /* RFlat: k * k_factor candidates re-ranked; in [1, 65536] */
    size_t *nfound;   /* optional output [nq]: results found per query */
} ivfpq_search_params;

#define IVFPQ_SEARCH_PARAMS_DEFAULT {1, 4.0f, NULL}

/* k nearest neighbours of each of the nq queries q [nq, d]. distances and
 * labels are [nq, k], best first (smallest L2, largest inner product; ties
 * by smaller label). Missing results: label -1, distance +inf (L2) or -inf
 * (inner product). params NULL = defaults. Allocates its workspace through
 * the index's allocator; see ivfpq_search_ws to avoid that. */
IVFPQ_API int ivfpq_search(const ivfpq_index *idx, size_t nq, const float *q, size_t k,
                           const ivfpq_search_params *params, float *distances,
                           int64_t *labels);

/* Exact number of workspace bytes ivfpq_search_ws needs for these
 * arguments (the same for any query values). */
IVFPQ_API int ivfpq_search_workspace_size(const ivfpq_index *idx, size_t nq, size_t k,
                                          const ivfpq_search_params *params,
                                          size_t *size);

/* ivfpq_search with caller-provided workspace: performs no allocation.
 * Any alignment is accepted. Worst-case stack: docs/EMBEDDING.md. */
IVFPQ_API int ivfpq_search_ws(const ivfpq_index *idx, size_t nq, const float *q,
                              size_t k, const ivfpq_search_params *params,
                              float *distances, int64_t *labels, void *workspace,
                              size_t workspace_size);

/* ------------------------------------------------------- stored vectors */

/* Copies the stored vector with label `id` (if labels repeat, the first in
 * list order, which is insertion order within one inverted list)
 * into out[d]. Needs an index that keeps raw vectors (Flat, IVF,Flat, any
 * RFlat): otherwise IVFPQ_E_UNSUPPORTED. Linear in ntotal. */
IVFPQ_API int ivfpq_reconstruct(const ivfpq_index *idx, int64_t id, float *out);

/* out [n, d] receives the vectors with labels i0 .. i0+n-1 (faiss's
 * reconstruct_n); one pass over the index. IVFPQ_E_NOT_FOUND if a label is
 * missing (out is then unspecified). */
IVFPQ_API int ivfpq_reconstruct_n(const ivfpq_index *idx, int64_t i0, size_t n, float *out);

/* ------------------------------------------- blended neighbours (RVC) */

/* The retrieval step of RVC-style voice conversion in one call: for each
 * query x (row of q [nq, d]) search its k neighbours y_1..y_k with scores
 * s_1..s_k, then
 *     w_i = (1/s_i)^2 ;  w_i /= sum_i w_i ;  b = sum_i w_i * y_i
 *     out = rate * b + (1 - rate) * x                     (out [nq, d])
 * computed exactly as numpy does `w = np.square(1/score); w /= w.sum(1,
 * keepdims=True); b = np.sum(big_npy[ix] * w[:, :, None], 1); out = rate*b
 * + (1-rate)*x` on float32 arrays with a Python-float rate (numpy 1.24): all
 * in float32 except 1 - rate (double, then rounded to float); the sum of
 * the weights is 0 + numpy's pairwise sum (8 partial sums for k >= 8), the
 * sum over neighbours is sequential from 0 in result order. Where that
 * formula is finite, out is bit-identical to it; where it is not:
 *  - zero (or tiny, < ~5e-20) distances, whose weight overflows to +inf:
 *    those neighbours share the weight equally, the others get 0 (an exact
 *    match gets full weight: b = the stored vector, not NaN); a weight sum
 *    overflowing with finite weights is normalized in double instead;
 *  - missing results (label -1: fewer than k vectors in the probed lists)
 *    get weight 0 and are not read; if a query has no result at all, its
 *    output row is the query unchanged; if every result found is at
 *    infinite distance, they get equal weights.
 * Inner product indexes: neighbours are the k largest inner products, and
 * s_i is the exact squared L2 distance between x and y_i (computed with
 * the search's own float kernel), since inverse-squared weights of
 * similarities mean nothing; for unit-norm vectors the neighbours are
 * those of L2 search (|x-y|^2 = 2 - 2<x,y>) and the weights the same.
 * Needs stored vectors (Flat, IVF,Flat, any RFlat): else
 * IVFPQ_E_UNSUPPORTED. rate in [0, 1]. out may be q itself (in place) but
 * no other overlap. The stored vectors are read at their location in the
 * index, never looked up by label. Allocates workspace through the index's
 * allocator; see ivfpq_search_blend_ws. */
IVFPQ_API int ivfpq_search_blend(const ivfpq_index *idx, size_t nq, const float *q, size_t k,
                                 const ivfpq_search_params *params, double rate, float *out);

/* Exact workspace bytes for ivfpq_search_blend_ws (independent of the
 * query values; bounded in nq: queries go by chunks). */
IVFPQ_API int ivfpq_search_blend_workspace_size(const ivfpq_index *idx, size_t nq, size_t k,
                                                const ivfpq_search_params *params,
                                                size_t *size);

/* ivfpq_search_blend with caller-provided workspace: no allocation. */
IVFPQ_API int ivfpq_search_blend_ws(const ivfpq_index *idx, size_t nq, const float *q,
                                    size_t k, const ivfpq_search_params *params, double rate,
                                    float *out, void *workspace, size_t workspace_size);

/* ---------------------------------------------------------- inspecting */

typedef enum ivfpq_kind {
    IVFPQ_KIND_FLAT = 0,
    IVFPQ_KIND_IVF_FLAT = 1,
    IVFPQ_KIND_PQ4FS = 2,
    IVFPQ_KIND_IVF_PQ4FS = 3
} ivfpq_kind;

typedef struct ivfpq_info {
    int d;
    ivfpq_metric metric;
    ivfpq_kind kind;
    int by_residual;        /* x4fsr */
    int refine;             /* RFlat */
    int is_trained;
    size_t nlist;           /* 1 without IVF */
    size_t M;               /* PQ sub-quantizers, 0 without PQ */
    size_t ntotal;
    size_t memory_bytes;    /* bytes held by the index (all arrays) */
    char factory[96];       /* canonical factory string */
} ivfpq_info;

IVFPQ_API int ivfpq_get_info(const ivfpq_index *idx, ivfpq_info *info);
/* IVFPQ_OK if d is the index's dimension, else IVFPQ_E_DIM with a message
 * naming both: for bindings and tools whose data carries its own d. */
IVFPQ_API int ivfpq_check_dim(const ivfpq_index *idx, int d);
IVFPQ_API size_t ivfpq_ntotal(const ivfpq_index *idx); /* 0 for NULL */
IVFPQ_API int ivfpq_dim(const ivfpq_index *idx);       /* 0 for NULL */
IVFPQ_API int ivfpq_is_trained(const ivfpq_index *idx);

/* ------------------------------------------------------- saving, loading */

/* Two file formats:
 *  - NATIVE: libivfpq's own format (docs/FORMAT.md): little-endian, a
 *    versioned header, 64-byte aligned sections, a CRC32C per section. It
 *    can be searched in place (zero-copy) from flash, ROM or an mmap.
 *  - FAISS: what faiss.write_index writes, for IndexFlat (IxF2/IxFI),
 *    IndexIVFFlat (IwFl), IndexPQFastScan (IPfs), IndexIVFPQFastScan
 *    (IwPf), IndexRefineFlat (IxRF) over those, and IndexIDMap/IDMap2
 *    (IxMp/IxM2) over any of them. Other faiss index types are refused with
 *    IVFPQ_E_UNSUPPORTED. Always loaded by copy. The search parameters a
 *    faiss file stores (nprobe, k_factor) are validated, then ignored:
 *    they are per call here (ivfpq_search_params). Builds with
 *    -DIVFPQ_NO_FAISS leave this codec out (IVFPQ_E_UNSUPPORTED).
 * Loading detects the format. Saving then loading gives an index whose
 * searches return bit-identical ids and distances. */
typedef enum ivfpq_file_format {
    IVFPQ_FORMAT_NATIVE = 0,
    IVFPQ_FORMAT_FAISS = 1
} ivfpq_file_format;

/* ivfpq_load_from_buffer / ivfpq_load_file flags. */
/* Search the buffer in place: nothing is allocated but the index struct
 * (a few hundred bytes) and nothing is copied. NATIVE format only. The
 * buffer must stay valid and unchanged until ivfpq_free, must be aligned
 * to IVFPQ_ZERO_COPY_ALIGN bytes (64 is best: what mmap and the library's
 * own allocations give), and the host must be little-endian. The index is
 * read-only: train/add/reset return IVFPQ_E_READONLY. */
#define IVFPQ_LOAD_ZERO_COPY 0x1u
/* NATIVE format: do not verify the section checksums (the header's is
 * still verified, and every size, offset and invariant is still checked,
 * so any input stays memory-safe). For trusted images where reading every
 * byte at start-up costs too much (large flash, lazily paged mmap). */
#define IVFPQ_LOAD_SKIP_CHECKSUMS 0x2u
#define IVFPQ_ZERO_COPY_ALIGN 8

typedef struct ivfpq_load_options {
    ivfpq_allocator allocator;  /* used by the loaded index afterwards too */
    ivfpq_log_fn log;           /* every load failure is explained here */
    void *log_user;
    size_t max_bytes;           /* 0 = no limit; else the most memory the load may
                                   allocate in total (IVFPQ_E_LIMIT beyond) */
} ivfpq_load_options;

/* Receives the file's bytes in order. Return 0 on success; anything else
 * stops the save with IVFPQ_E_IO. */
typedef int (*ivfpq_write_fn)(void *user, const void *data, size_t len);
/* Fills data with exactly the next len bytes. Return 0 on success, a
 * positive value if the input ended first (IVFPQ_E_TRUNCATED), a negative
 * value on an I/O error (IVFPQ_E_IO). */
typedef int (*ivfpq_read_fn)(void *user, void *data, size_t len);

/* Writes the index (trained or not, empty or not) through `write`.
 * FAISS: labels that faiss cannot store as positions (Flat, PQ<M>x4fs or
 * RFlat kinds whose labels are not 0..ntotal-1) are kept by wrapping the
 * index in an IndexIDMap2 (IxM2), as faiss would; a written RFlat index
 * gets k_factor 4 (IVFPQ_SEARCH_PARAMS_DEFAULT), IVF kinds nprobe 1. May
 * allocate temporary memory (FAISS only: label maps). */
IVFPQ_API int ivfpq_save(const ivfpq_index *idx, ivfpq_file_format fmt, ivfpq_write_fn write,
                         void *user);
/* Exact number of bytes ivfpq_save would write. */
IVFPQ_API int ivfpq_saved_size(const ivfpq_index *idx, ivfpq_file_format fmt, size_t *size);

/* Reads an index in either format from a stream (detected from its first
 * bytes). Reads exactly the index's bytes, never more. opt may be NULL. */
IVFPQ_API int ivfpq_load(ivfpq_index **out, ivfpq_read_fn read, void *user,
                         const ivfpq_load_options *opt);
/* Loads from memory: a copy (the buffer can be freed afterwards) or, with
 * IVFPQ_LOAD_ZERO_COPY, a view (see above). Bytes after the index are
 * ignored. Any byte string is safe to pass: malformed, truncated or hostile
 * input yields an error (IVFPQ_E_FORMAT, _CORRUPT, _TRUNCATED, _CHECKSUM,
 * _VERSION, _LIMIT, _UNSUPPORTED), never a crash or an over-read. */
IVFPQ_API int ivfpq_load_from_buffer(ivfpq_index **out, const void *buf, size_t len,
                                     unsigned flags, const ivfpq_load_options *opt);
/* Tells the format from the first bytes (8 are enough). IVFPQ_E_FORMAT if
 * neither (also a .npy, a Git LFS pointer...), IVFPQ_E_TRUNCATED if too few
 * bytes to tell. */
IVFPQ_API int ivfpq_detect_format(const void *head, size_t len, ivfpq_file_format *fmt);

#if !defined(IVFPQ_EMBEDDED)
/* Hosted builds only (absent with -DIVFPQ_EMBEDDED). Paths are UTF-8 and
 * go to fopen/open unchanged. The save writes a temporary file next to
 * `path` and renames it, so a crash never leaves a half-written index.
 * ivfpq_load_file with IVFPQ_LOAD_ZERO_COPY maps the file read-only (mmap)
 * and the index searches the mapping; ivfpq_free unmaps it. Without the
 * flag the file is read into memory. */
IVFPQ_API int ivfpq_save_file(const ivfpq_index *idx, const char *path, ivfpq_file_format fmt);
IVFPQ_API int ivfpq_load_file(ivfpq_index **out, const char *path, unsigned flags,
                              const ivfpq_load_options *opt);
#endif

/* ------------------------------------------------------- static memory */

/* Sizing before anything runs, for a fixed memory budget (docs/EMBEDDING.md):
 * what an index of a given shape takes, as a file image and in RAM, and
 * how big a static arena for ivfpq_load_static must be. */
typedef struct ivfpq_footprint_query {
    const char *factory;         /* e.g. "IVF1024,PQ128x4fs" */
    int d;
    ivfpq_metric metric;
    size_t ntotal;               /* vectors stored (the index is trained) */
    /* [nlist] vectors per inverted list, summing to ntotal (as the host
     * that built the index knows them): exact figures. NULL: the worst case
     * over all distributions (same figures, except IVF kinds whose lists
     * are padded to 32-vector blocks). */
    const size_t *list_sizes;
    size_t nq, k;                /* the largest search: up to nq queries (0 = none) */
    ivfpq_search_params params;  /* of that search: nprobe, k_factor */
    ivfpq_log_fn log;            /* optional: what is wrong with a bad query */
    void *log_user;
} ivfpq_footprint_query;

typedef struct ivfpq_footprint {
    size_t image_bytes;      /* its native file (ivfpq_saved_size): flash/ROM of a zero-copy index */
    size_t loaded_bytes;     /* ivfpq_info.memory_bytes once loaded from that file */
    size_t built_bytes;      /* ivfpq_info.memory_bytes after train + one ivfpq_add of all
                                vectors (later adds grow lists by 1.5x and may take more) */
    size_t workspace_bytes;  /* ivfpq_search_workspace_size of the largest search */
    size_t arena_zero_copy;  /* ivfpq_load_static arena: zero-copy load + that ivfpq_search */
    size_t arena_copy;       /* ivfpq_load_static arena: copy load + that ivfpq_search */
} ivfpq_footprint;

/* Fills *out. The same validation as ivfpq_index_factory (IVFPQ_E_PARSE
 * for a bad string...); IVFPQ_E_INVALID_ARG if list_sizes does not sum to
 * ntotal; IVFPQ_E_OVERFLOW if a figure does not fit in size_t. Allocates
 * nothing. */
IVFPQ_API int ivfpq_footprint_of(const ivfpq_footprint_query *q, ivfpq_footprint *out);

/* A bump allocator over a caller's buffer (zstd's static contexts): hand
 * ivfpq_arena_allocator(&a) to ivfpq_options / ivfpq_load_options and the
 * library never touches the heap. Freeing the most recent block gives its
 * bytes back (ivfpq_search's workspace); other frees are no-ops until
 * ivfpq_arena_reset. Blocks are IVFPQ_ARENA_ALIGN-aligned. Fields are for
 * reading: used = bytes in use, peak = most ever used. Not thread-safe:
 * one arena per thread, or searches through ivfpq_search_ws. */
#define IVFPQ_ARENA_ALIGN 16
typedef struct ivfpq_arena {
    unsigned char *base;
    size_t size, used, peak;
    size_t last;  /* offset of the most recent block */
} ivfpq_arena;

IVFPQ_API void ivfpq_arena_init(ivfpq_arena *a, void *mem, size_t size);
IVFPQ_API ivfpq_allocator ivfpq_arena_allocator(ivfpq_arena *a);
/* Forgets every block (the indexes using them must be gone). */
IVFPQ_API void ivfpq_arena_reset(ivfpq_arena *a);

/* Loads an index (ivfpq_load_from_buffer, same flags) with everything it
 * will ever allocate, ivfpq_search's workspace included, taken from
 * mem[0, size): its own arena lives at the start of mem. Size mem with
 * ivfpq_footprint_of (arena_zero_copy / arena_copy); a smaller mem gives
 * IVFPQ_E_NOMEM. mem must outlive the index; ivfpq_free is optional (mem
 * may simply be reused). opt may be NULL; its allocator must be empty. */
IVFPQ_API int ivfpq_load_static(ivfpq_index **out, void *mem, size_t size, const void *buf,
                                size_t len, unsigned flags, const ivfpq_load_options *opt);

/* ------------------------------------------------------------ helpers */

/* Scales each row of x [n, d] to unit L2 norm in place (zero rows stay
 * zero): cosine similarity = inner product on normalized vectors. */
IVFPQ_API int ivfpq_normalize_l2(size_t n, int d, float *x);

/* ---------------------------------------------------------------- SIMD */

/* Kernel sets. The active one is chosen once (first use or
 * ivfpq_simd_init) from the CPU, or from the environment variable
 * IVFPQ_SIMD=scalar|sse|avx2|avx512|neon in hosted builds. Results are
 * bit-identical at every level. */
typedef enum ivfpq_simd_level {
    IVFPQ_SIMD_SCALAR = 0,
    IVFPQ_SIMD_SSE = 1,      /* x86-64: SSSE3 + SSE4.1 */
    IVFPQ_SIMD_AVX2 = 2,     /* x86-64: AVX2 */
    IVFPQ_SIMD_AVX512 = 3,   /* x86-64: AVX-512 F/BW/VL/DQ (no VBMI needed) */
    IVFPQ_SIMD_NEON = 4      /* aarch64: Advanced SIMD */
} ivfpq_simd_level;

/* Detects the CPU and selects the best level (or the IVFPQ_SIMD override).
 * Idempotent; returns the active level. */
IVFPQ_API ivfpq_simd_level ivfpq_simd_init(void);
IVFPQ_API ivfpq_simd_level ivfpq_simd_active(void);
/* 1 if this build has the level and the CPU/OS supports it. */
IVFPQ_API int ivfpq_simd_supported(ivfpq_simd_level level);
/* Forces a level for the whole process. IVFPQ_E_SIMD if unsupported (the
 * active level is then unchanged). Not to be called while searches run. */
IVFPQ_API int ivfpq_simd_force(ivfpq_simd_level level);
/* "scalar", "sse", "avx2", "avx512", "neon"; NULL for an unknown value. */
IVFPQ_API const char *ivfpq_simd_name(ivfpq_simd_level level);

#ifdef __cplusplus
}
#endif

#endif /* IVFPQ_H */

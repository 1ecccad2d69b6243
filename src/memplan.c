/*
 * Static memory: what an index of a given shape takes (ivfpq_footprint_of)
 * and the arena that turns that figure into the only memory the library
 * uses (ivfpq_arena_*, ivfpq_load_static). The two live together because
 * the arena sizes are computed from the arena's own accounting: block
 * sizes here must match what ivfpq__alloc asks the hooks for (mem.c) and
 * what the loaders allocate (io.c: the image copy, then the index struct).
 */
#include "internal.h"
#include "io.h"

#define A IVFPQ_ARENA_ALIGN

/* ------------------------------------------------------------------ arena */

static void *arena_alloc(void *opaque, size_t size)
{
    ivfpq_arena *a = opaque;
    size_t off = a->used; /* a multiple of A: blocks take whole units */
    if (size > a->size - off || a->size - off - size < (A - size % A) % A) return NULL;
    a->last = off;
    a->used = off + ivfpq__round_up(size, A);
    if (a->used > a->peak) a->peak = a->used;
    return a->base + off;
}

static void arena_free(void *opaque, void *p)
{
    ivfpq_arena *a = opaque;
    if (a->last != SIZE_MAX && (unsigned char *)p == a->base + a->last) {
        a->used = a->last;
        a->last = SIZE_MAX; /* one level: the block below is not known */
    }
}

void ivfpq_arena_init(ivfpq_arena *a, void *mem, size_t size)
{
    if (!a) return;
    memset(a, 0, sizeof *a);
    a->last = SIZE_MAX;
    if (!mem) return;
    uintptr_t p = (uintptr_t)mem, q = (p + A - 1) & ~(uintptr_t)(A - 1);
    if (q - p > size) return;
    a->base = (unsigned char *)q;
    a->size = (size - (size_t)(q - p)) & ~(size_t)(A - 1);
}

ivfpq_allocator ivfpq_arena_allocator(ivfpq_arena *a)
{
    ivfpq_allocator al = {arena_alloc, arena_free, a};
    return al;
}

void ivfpq_arena_reset(ivfpq_arena *a)
{
    if (!a) return;
    a->used = 0;
    a->last = SIZE_MAX;
}

/* Arena bytes of one ivfpq__alloc(payload): its alignment over-allocation,
 * rounded to the arena's block alignment. 0 on overflow. */
static size_t arena_block(size_t payload)
{
    size_t t;
    if (!ivfpq__add(payload, IVFPQ_ALIGN + sizeof(void *), &t) || t > SIZE_MAX - A) return 0;
    return ivfpq__round_up(t, A);
}

/* ivfpq_load_static's fixed cost: worst misalignment of mem + its arena. */
static size_t static_overhead(void) { return (A - 1) + ivfpq__round_up(sizeof(ivfpq_arena), A); }

int ivfpq_load_static(ivfpq_index **out, void *mem, size_t size, const void *buf, size_t len,
                      unsigned flags, const ivfpq_load_options *opt)
{
    ivfpq_log log = {opt ? opt->log : NULL, opt ? opt->log_user : NULL};
    if (!out) return ivfpq__fail(&log, IVFPQ_E_INVALID_ARG, "load_static: out is NULL");
    *out = NULL;
    if (opt && (opt->allocator.alloc || opt->allocator.free))
        return ivfpq__fail(&log, IVFPQ_E_INVALID_ARG,
                           "load_static: the arena is the allocator; leave opt->allocator empty");
    if (!mem) return ivfpq__fail(&log, IVFPQ_E_INVALID_ARG, "load_static: mem is NULL");
    uintptr_t p = (uintptr_t)mem, q = (p + A - 1) & ~(uintptr_t)(A - 1);
    size_t ctl = ivfpq__round_up(sizeof(ivfpq_arena), A);
    if (size < (size_t)(q - p) || size - (size_t)(q - p) < ctl)
        return ivfpq__fail(&log, IVFPQ_E_NOMEM,
                           "load_static: %zu bytes of memory, less than the arena itself (%zu)",
                           size, static_overhead());
    ivfpq_arena *a = (ivfpq_arena *)q;
    ivfpq_arena_init(a, (unsigned char *)q + ctl, size - (size_t)(q - p) - ctl);
    ivfpq_load_options o;
    memset(&o, 0, sizeof o);
    if (opt) o = *opt;
    o.allocator = ivfpq_arena_allocator(a);
    int rc = ivfpq_load_from_buffer(out, buf, len, flags, &o);
    if (rc == IVFPQ_E_NOMEM)
        ivfpq__fail(&log, rc, "load_static: %zu bytes of memory are too few for this index "
                              "(ivfpq_footprint_of gives the size)", size);
    return rc;
}

/* -------------------------------------------------------------- footprint */

/* Sum over lists of ceil(n/32): code blocks, and capacity in 32-vector
 * units of lists grown by one add. Worst case over distributions of n
 * vectors in L lists: every non-empty list wastes up to 31 slots, so
 * sum ceil(n_l/32) <= (n + 31 L)/32, reached by giving each list 1 vector
 * (mod 32) -- and never more than n blocks. */
static int count_blocks(const ivfpq_footprint_query *q, size_t L, const ivfpq_log *log,
                        size_t *nb)
{
    size_t n = q->ntotal;
    if (!q->list_sizes) {
        *nb = n <= L ? n : L + (n - L) / IVFPQ_BBS;
        return IVFPQ_OK;
    }
    size_t sum = 0, b = 0;
    for (size_t l = 0; l < L; l++) {
        size_t s = q->list_sizes[l];
        if (!ivfpq__add(sum, s, &sum))
            return ivfpq__fail(log, IVFPQ_E_INVALID_ARG, "footprint: list sizes overflow");
        b += s / IVFPQ_BBS + (s % IVFPQ_BBS != 0);
    }
    if (sum != n)
        return ivfpq__fail(log, IVFPQ_E_INVALID_ARG,
                           "footprint: the %zu list sizes sum to %zu, ntotal is %zu", L, sum, n);
    *nb = b;
    return IVFPQ_OK;
}

/* acc += a * b, overflow-checked (ok cleared on overflow). */
static void acc_mul(size_t *acc, size_t a, size_t b, int *ok)
{
    size_t t;
    if (!ivfpq__mul(a, b, &t) || !ivfpq__add(*acc, t, acc)) *ok = 0;
}

int ivfpq_footprint_of(const ivfpq_footprint_query *q, ivfpq_footprint *out)
{
    if (!q || !out) return IVFPQ_E_INVALID_ARG;
    ivfpq_log log = {q->log, q->log_user};
    int d = q->d;
    if (d <= 0 || d > IVFPQ_MAX_D)
        return ivfpq__fail(&log, IVFPQ_E_INVALID_ARG, "footprint: d = %d is out of range [1, %d]", d,
                           IVFPQ_MAX_D);
    if (q->metric != IVFPQ_METRIC_L2 && q->metric != IVFPQ_METRIC_INNER_PRODUCT)
        return ivfpq__fail(&log, IVFPQ_E_INVALID_ARG, "footprint: metric %d is unknown", (int)q->metric);
    ivfpq_spec s;
    int rc = ivfpq__parse_factory(q->factory, d, &s, &log);
    if (rc) return rc;
    if (s.M > IVFPQ_MAX_M)
        return ivfpq__fail(&log, IVFPQ_E_PARSE, "footprint: M = %zu is over the limit of %d", s.M,
                           IVFPQ_MAX_M);
    uint64_t ntotal = q->ntotal; /* (a variable: always in range where size_t has 32 bits) */
    if (ntotal > IVFPQ_MAX_NTOTAL)
        return ivfpq__fail(&log, IVFPQ_E_LIMIT, "footprint: ntotal = %zu is over 2^48", q->ntotal);
    size_t L = s.nlist, nb = 0, N = q->ntotal, ud = (size_t)d;
    if ((rc = count_blocks(q, L, &log, &nb))) return rc;
    size_t M2 = (s.M + 1) & ~(size_t)1, bb = IVFPQ_BBS * M2 / 2;
    size_t vec = !s.has_pq || s.refine ? ud * sizeof(float) : 0, per = sizeof(int64_t) + vec;

    /* the trained model, as ivfpq_get_info counts it */
    int ok = 1;
    size_t model = 0, loaded = sizeof(ivfpq_index), built = sizeof(ivfpq_index);
    if (s.has_ivf) acc_mul(&model, L, (ud + 1) * sizeof(float), &ok);
    if (s.has_pq) acc_mul(&model, ud, IVFPQ_KSUB * sizeof(float), &ok);
    /* loaded: FLAT storage, list i's vectors packed back to back */
    ok &= ivfpq__add(loaded, model, &loaded);
    acc_mul(&loaded, L + 1, sizeof(uint64_t) * (s.has_pq ? 2 : 1), &ok);
    acc_mul(&loaded, N, per, &ok);
    if (s.has_pq) acc_mul(&loaded, nb, bb, &ok);
    /* built: owned lists, each with capacity rounded up to whole blocks */
    ok &= ivfpq__add(built, model, &built);
    acc_mul(&built, L, sizeof(ivfpq_list), &ok);
    acc_mul(&built, nb, IVFPQ_BBS * per, &ok);
    if (s.has_pq) acc_mul(&built, nb, bb, &ok);
    if (!ok)
        return ivfpq__fail(&log, IVFPQ_E_OVERFLOW, "footprint: %zu vectors of d = %d do not fit in size_t",
                           N, d);
    /* the file: its sections are the loaded arrays (bounded above), plus
     * header and padding, so this cannot overflow 64 bits */
    uint64_t img = ivfpq__native_bytes(&s, d, 1, N, s.has_pq ? nb : 0);
    if (img > SIZE_MAX)
        return ivfpq__fail(&log, IVFPQ_E_OVERFLOW, "footprint: the image (%llu bytes) does not fit in size_t",
                           (unsigned long long)img);

    /* the search planner works from the shape alone: ask it with a
     * stand-in index that has the shape and no arrays */
    size_t ws = 0;
    if (q->nq) {
        ivfpq_index f;
        memset(&f, 0, sizeof f);
        f.log = log;
        f.d = d;
        f.metric = q->metric;
        f.spec = s;
        f.nlist = L;
        f.M = s.M;
        f.M2 = M2;
        f.dsub = s.M ? ud / s.M : 0;
        f.block_bytes = bb;
        f.is_trained = 1;
        f.ntotal = N;
        f.storage = IVFPQ_STORAGE_FLAT;
        if ((rc = ivfpq_search_workspace_size(&f, q->nq, q->k, &q->params, &ws))) return rc;
    }
    size_t bidx = arena_block(sizeof(ivfpq_index)), bws = ws ? arena_block(ws) : 0,
           bimg = arena_block((size_t)img), zc = static_overhead(), cp;
    ok = bimg && (!ws || bws) && ivfpq__add(zc, bidx, &zc) && ivfpq__add(zc, bws, &zc) &&
         ivfpq__add(zc, bimg, &cp);
    if (!ok) return ivfpq__fail(&log, IVFPQ_E_OVERFLOW, "footprint: the arena size overflows");
    out->image_bytes = (size_t)img;
    out->loaded_bytes = loaded;
    out->built_bytes = built;
    out->workspace_bytes = ws;
    out->arena_zero_copy = zc;
    out->arena_copy = cp;
    return IVFPQ_OK;
}

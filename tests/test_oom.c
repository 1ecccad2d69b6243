/*
 * Allocation-failure injection: for every operation that allocates (index
 * creation, train, add to an empty / a populated / a loaded index, search,
 * reconstruct_n, reset of a loaded index, save in both formats, load from a
 * buffer as a copy and zero-copy, load from a stream, in both formats) and
 * every index kind, the 1st, 2nd, ... N-th allocation is made to fail in
 * turn until the call succeeds. Each failure must return IVFPQ_E_NOMEM,
 * leave exactly the blocks and bytes that were live before (nothing
 * leaked), and leave the index as it was: byte-identical native file and
 * identical search results, still searchable. Small data, so it also runs
 * under valgrind and ASan.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define D 8
#define NB 300
#define NQ 4
#define K 4

static float *g_x; /* NQ queries then NB base rows */
static const float *base(void) { return g_x + NQ * D; }

/* ------------------------------------------------------- the allocator */

/* Counts calls, live blocks and live bytes; fails call number fail_at. */
typedef struct oom {
    long calls, fail_at, live;
    size_t bytes;
} oom;

typedef union hdr { size_t size; max_align_t align; } hdr;

static void *oom_alloc(void *opaque, size_t size)
{
    oom *o = opaque;
    o->calls++;
    if (o->fail_at && o->calls == o->fail_at) return NULL;
    hdr *h = malloc(sizeof(hdr) + size);
    if (!h) return NULL;
    h->size = size;
    o->live++;
    o->bytes += size;
    return h + 1;
}

static void oom_free(void *opaque, void *p)
{
    oom *o = opaque;
    hdr *h = (hdr *)p - 1;
    o->live--;
    o->bytes -= h->size;
    free(h);
}

static oom g_oom;
static long g_points; /* failure points exercised in total */

static ivfpq_allocator allocator(void)
{
    ivfpq_allocator a = {oom_alloc, oom_free, &g_oom};
    return a;
}

/* ------------------------------------------------------ observing an index */

typedef struct rd { const unsigned char *p; size_t len, pos; } rd;
static int get(void *user, void *data, size_t len)
{
    rd *r = user;
    if (len > r->len - r->pos) return 1;
    memcpy(data, r->p + r->pos, len);
    r->pos += len;
    return 0;
}

typedef struct observed {
    tu_bytes file;
    int rc;
    float Dd[NQ * K];
    int64_t I[NQ * K];
} observed;

/* Never under failure injection: fail_at is cleared first. */
static void observe(const ivfpq_index *idx, observed *o)
{
    long saved = g_oom.fail_at;
    g_oom.fail_at = 0;
    memset(o, 0, sizeof *o);
    assert_int_equal(ivfpq_save(idx, IVFPQ_FORMAT_NATIVE, tu_bytes_put, &o->file), IVFPQ_OK);
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 3;
    o->rc = ivfpq_search(idx, NQ, g_x, K, &p, o->Dd, o->I);
    g_oom.fail_at = saved;
}

static void assert_same(const observed *a, const observed *b)
{
    assert_int_equal(a->file.len, b->file.len);
    assert_memory_equal(a->file.p, b->file.p, a->file.len);
    assert_int_equal(a->rc, b->rc);
    assert_memory_equal(a->Dd, b->Dd, sizeof a->Dd);
    assert_memory_equal(a->I, b->I, sizeof a->I);
}

/* ------------------------------------------------------------ operations */

typedef struct ctx {
    const char *spec;
    ivfpq_metric metric;
    tu_bytes native, faiss; /* files of the populated index */
    unsigned char *aligned; /* native file, 64-byte aligned (zero-copy) */
    ivfpq_index *made;   /* output of a creating op, freed by the driver */
} ctx;

typedef enum ostate { UNTRAINED, EMPTY, POPULATED, LOADED, NONE } ostate;

typedef struct op {
    const char *name;
    ostate on;
    int (*run)(ivfpq_index *idx, ctx *c);
} op;

static int op_factory(ivfpq_index *idx, ctx *c)
{
    (void)idx;
    ivfpq_options o = {0};
    o.allocator = allocator();
    return ivfpq_index_factory(&c->made, D, c->spec, c->metric, &o);
}
static int op_train(ivfpq_index *idx, ctx *c) { (void)c; return ivfpq_train(idx, NB, base()); }
static int op_add(ivfpq_index *idx, ctx *c) { (void)c; return ivfpq_add(idx, NB, base(), NULL); }
static int op_add_more(ivfpq_index *idx, ctx *c)
{
    (void)c;
    return ivfpq_add(idx, 100, g_x, NULL); /* grows lists past their capacity */
}
static int op_search(ivfpq_index *idx, ctx *c)
{
    (void)c;
    float Dd[NQ * K];
    int64_t I[NQ * K];
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    p.nprobe = 3;
    return ivfpq_search(idx, NQ, g_x, K, &p, Dd, I);
}
static int op_reconstruct_n(ivfpq_index *idx, ctx *c)
{
    (void)c;
    float out[10 * D];
    int rc = ivfpq_reconstruct_n(idx, 20, 10, out);
    return rc == IVFPQ_E_UNSUPPORTED ? IVFPQ_OK : rc;
}
static int op_reset(ivfpq_index *idx, ctx *c) { (void)c; return ivfpq_reset(idx); }
static int save_as(ivfpq_index *idx, ivfpq_file_format fmt)
{
    tu_bytes b = {NULL, 0, 0};
    int rc = ivfpq_save(idx, fmt, tu_bytes_put, &b);
    free(b.p);
    return rc;
}
static int op_save_native(ivfpq_index *idx, ctx *c) { (void)c; return save_as(idx, IVFPQ_FORMAT_NATIVE); }
static int op_save_faiss(ivfpq_index *idx, ctx *c) { (void)c; return save_as(idx, IVFPQ_FORMAT_FAISS); }
static ivfpq_load_options load_opts(void)
{
    ivfpq_load_options o = {{0}, NULL, NULL, 0};
    o.allocator = allocator();
    return o;
}
static int op_load_native(ivfpq_index *idx, ctx *c)
{
    (void)idx;
    ivfpq_load_options o = load_opts();
    return ivfpq_load_from_buffer(&c->made, c->native.p, c->native.len, 0, &o);
}
static int op_load_zero_copy(ivfpq_index *idx, ctx *c)
{
    (void)idx;
    ivfpq_load_options o = load_opts();
    return ivfpq_load_from_buffer(&c->made, c->aligned, c->native.len, IVFPQ_LOAD_ZERO_COPY, &o);
}
static int op_load_faiss(ivfpq_index *idx, ctx *c)
{
    (void)idx;
    ivfpq_load_options o = load_opts();
    return ivfpq_load_from_buffer(&c->made, c->faiss.p, c->faiss.len, 0, &o);
}
static int op_stream_native(ivfpq_index *idx, ctx *c)
{
    (void)idx;
    ivfpq_load_options o = load_opts();
    rd r = {c->native.p, c->native.len, 0};
    return ivfpq_load(&c->made, get, &r, &o);
}
static int op_stream_faiss(ivfpq_index *idx, ctx *c)
{
    (void)idx;
    ivfpq_load_options o = load_opts();
    rd r = {c->faiss.p, c->faiss.len, 0};
    return ivfpq_load(&c->made, get, &r, &o);
}

static const op ops[] = {
    {"index_factory", NONE, op_factory},
    {"train", UNTRAINED, op_train},
    {"add to an empty index", EMPTY, op_add},
    {"add to a populated index", POPULATED, op_add_more},
    {"add to a loaded index", LOADED, op_add_more},
    {"search", POPULATED, op_search},
    {"search a loaded index", LOADED, op_search},
    {"reconstruct_n", POPULATED, op_reconstruct_n},
    {"reset a loaded index", LOADED, op_reset},
    {"save native", POPULATED, op_save_native},
    {"save faiss", POPULATED, op_save_faiss},
    {"load native copy", NONE, op_load_native},
    {"load native zero-copy", NONE, op_load_zero_copy},
    {"load faiss", NONE, op_load_faiss},
    {"load native stream", NONE, op_stream_native},
    {"load faiss stream", NONE, op_stream_faiss},
};
#define NOPS (sizeof ops / sizeof ops[0])

static const char *const specs[] = {"Flat",          "IVF8,Flat",          "PQ4x4fs",
                                    "PQ4x4fs,RFlat", "IVF8,PQ4x4fs",       "IVF8,PQ4x4fs,RFlat",
                                    "IVF8,PQ2x4fsr", "IVF8,PQ4x4fsr,RFlat"};
#define NSPEC (sizeof specs / sizeof specs[0])

/* The index an op starts from, built with the counting allocator. */
static ivfpq_index *prepare(const ctx *c, ostate s)
{
    ivfpq_index *idx = NULL;
    if (s == NONE) return NULL;
    if (s == LOADED) {
        ivfpq_load_options o = load_opts();
        assert_int_equal(ivfpq_load_from_buffer(&idx, c->native.p, c->native.len, 0, &o), IVFPQ_OK);
        return idx;
    }
    ivfpq_options o = {0};
    o.allocator = allocator();
    assert_int_equal(ivfpq_index_factory(&idx, D, c->spec, c->metric, &o), IVFPQ_OK);
    if (s >= EMPTY) assert_int_equal(ivfpq_train(idx, NB, base()), IVFPQ_OK);
    if (s >= POPULATED) assert_int_equal(ivfpq_add(idx, NB, base(), NULL), IVFPQ_OK);
    return idx;
}

/* Fails allocation 1, 2, ... of one op until it succeeds; returns the number
 * of failure points. */
static long inject(const op *o, ctx *c)
{
    ivfpq_index *idx = prepare(c, o->on);
    observed before, after;
    if (idx) observe(idx, &before);
    long points = 0;
    for (long n = 1;; n++) {
        long live = g_oom.live;
        size_t live_bytes = g_oom.bytes;
        c->made = (ivfpq_index *)c; /* must be reset to NULL on failure */
        g_oom.calls = 0;
        g_oom.fail_at = n;
        int rc = o->run(idx, c);
        long calls = g_oom.calls;
        g_oom.fail_at = 0;
        if (rc == IVFPQ_OK) {
            assert_true(calls < n); /* the failure point was never reached */
            break;
        }
        if (rc != IVFPQ_E_NOMEM)
            print_error("%s on %s: allocation %ld failed, status %d (%s)\n", o->name, c->spec, n, rc,
                        ivfpq_strerror(rc));
        assert_int_equal(rc, IVFPQ_E_NOMEM);
        if (g_oom.live != live || g_oom.bytes != live_bytes)
            print_error("%s on %s: allocation %ld failed, %ld blocks / %zu bytes leaked\n", o->name,
                        c->spec, n, g_oom.live - live, g_oom.bytes - live_bytes);
        assert_int_equal(g_oom.live, live);
        assert_int_equal(g_oom.bytes, live_bytes);
        if (o->on == NONE) assert_null(c->made);
        if (idx) {
            observe(idx, &after);
            assert_same(&before, &after);
            free(after.file.p);
        }
        points++;
    }
    if (o->on == NONE) {
        /* what was created works like the original */
        assert_non_null(c->made);
        if (o->run != op_factory) {
            ivfpq_index *ref = prepare(c, LOADED);
            observed want, got;
            observe(ref, &want);
            observe(c->made, &got);
            assert_same(&want, &got);
            free(want.file.p);
            free(got.file.p);
            ivfpq_free(ref);
        }
        ivfpq_free(c->made);
        c->made = NULL;
    }
    if (idx) {
        free(before.file.p);
        ivfpq_free(idx);
    }
    return points;
}

static void every_allocation(void **state)
{
    (void)state;
    long per_op[NOPS] = {0};
    for (size_t s = 0; s < NSPEC; s++) {
        for (int m = 0; m < 2; m++) {
            ctx c;
            memset(&c, 0, sizeof c);
            c.spec = specs[s];
            c.metric = m ? IVFPQ_METRIC_INNER_PRODUCT : IVFPQ_METRIC_L2;
            ivfpq_index *src = prepare(&c, POPULATED);
            assert_int_equal(ivfpq_save(src, IVFPQ_FORMAT_NATIVE, tu_bytes_put, &c.native), IVFPQ_OK);
            assert_int_equal(ivfpq_save(src, IVFPQ_FORMAT_FAISS, tu_bytes_put, &c.faiss), IVFPQ_OK);
            ivfpq_free(src);
            c.aligned = aligned_alloc(64, (c.native.len + 63) / 64 * 64);
            memcpy(c.aligned, c.native.p, c.native.len);
            for (size_t i = 0; i < NOPS; i++) {
                long p = inject(&ops[i], &c);
                per_op[i] += p;
                g_points += p;
            }
            free(c.native.p);
            free(c.faiss.p);
            free(c.aligned);
            assert_int_equal(g_oom.live, 0);
            assert_int_equal(g_oom.bytes, 0);
        }
    }
    printf("allocation failures injected: %ld points over %zu kinds x 2 metrics\n", g_points, NSPEC);
    for (size_t i = 0; i < NOPS; i++) printf("  %-26s %5ld\n", ops[i].name, per_op[i]);
    assert_true(g_points > 500);
}

static int setup(void **state)
{
    (void)state;
    g_x = tu_synth(NB + NQ, D, 10, 91);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_x);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(every_allocation)};
    return cmocka_run_group_tests(tests, setup, teardown);
}

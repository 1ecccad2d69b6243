/*
 * Every allocation of the library goes through the index's allocator hooks.
 * Blocks are over-allocated and aligned here, so the hooks may be anything
 * (malloc, a bump arena, a counting/failing test allocator).
 */
#if !defined(IVFPQ_EMBEDDED) && defined(__linux__)
#define _DEFAULT_SOURCE /* posix_memalign, madvise, MADV_HUGEPAGE */
#include <sys/mman.h>
#endif
#include "internal.h"

#if !defined(IVFPQ_EMBEDDED)
#include <stdlib.h>

#if defined(__linux__) && defined(MADV_HUGEPAGE)
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)8 << 20)
/* Big blocks (the vectors an RFlat refine reads at random, list storage of a
 * loaded index) start on a 2 MB boundary and ask for transparent huge pages,
 * so that random row reads miss the TLB less. Where THP is off this is a
 * plain aligned allocation. On the 2-vCPU VM of bench/RESULTS.md the pages
 * are granted but QPS does not change (paired A/B within +-2%): the guest's
 * 2 MB pages are presumably backed by 4 KB host pages there. */
static void *huge_alloc(size_t size)
{
    void *p;
    if (posix_memalign(&p, HUGE_PAGE, size)) return NULL;
    (void)madvise(p, size, MADV_HUGEPAGE); /* advice only: failure changes nothing */
    return p;
}
#endif

static void *std_alloc(void *opaque, size_t size)
{
    (void)opaque;
#if defined(HUGE_MIN)
    if (size >= HUGE_MIN) return huge_alloc(size);
#endif
    return malloc(size);
}
static void std_free(void *opaque, void *p) { (void)opaque; free(p); }
#endif

void ivfpq__mem_init(ivfpq_mem *m, const ivfpq_allocator *a)
{
    if (a && a->alloc && a->free) {
        m->a = *a;
        return;
    }
#if !defined(IVFPQ_EMBEDDED)
    m->a.alloc = std_alloc;
    m->a.free = std_free;
    m->a.opaque = NULL;
#else
    /* no default heap in embedded builds: every allocation fails */
    m->a.alloc = NULL;
    m->a.free = NULL;
    m->a.opaque = NULL;
#endif
}

const char ivfpq__no_heap[] =
    "no allocator: embedded builds (IVFPQ_EMBEDDED) have no heap; give "
    "ivfpq_options.allocator (e.g. an ivfpq_arena) or use ivfpq_load_static";

/* Layout: [raw ... pad][raw pointer][aligned block]. */
void *ivfpq__alloc(const ivfpq_mem *m, size_t size)
{
    size_t total;
    if (!m->a.alloc || size == 0) return NULL;
    if (!ivfpq__add(size, IVFPQ_ALIGN + sizeof(void *), &total)) return NULL;
    unsigned char *raw = (unsigned char *)m->a.alloc(m->a.opaque, total);
    if (!raw) return NULL;
    uintptr_t p = (uintptr_t)(raw + sizeof(void *));
    p = (p + IVFPQ_ALIGN - 1) & ~(uintptr_t)(IVFPQ_ALIGN - 1);
    void **slot = (void **)(p - sizeof(void *));
    *slot = raw;
    return (void *)p;
}

void *ivfpq__calloc(const ivfpq_mem *m, size_t size)
{
    void *p = ivfpq__alloc(m, size);
    if (p) memset(p, 0, size);
    return p;
}

void ivfpq__free(const ivfpq_mem *m, void *p)
{
    if (!p) return;
    void *raw = ((void **)p)[-1];
    m->a.free(m->a.opaque, raw);
}

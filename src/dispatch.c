/*
 * Run-time choice of the kernel table.
 *
 * The CPU is probed once, lazily (first search/train, or ivfpq_simd_init):
 * no constructors and no work at load time. The table pointer is a C11
 * atomic so concurrent first calls are race-free; they all compute the same
 * answer. Which ISA files exist in this build is told by IVFPQ_HAVE_<ISA>
 * (set by the Makefile); code of an ISA file only ever runs after the probe
 * said the CPU and the OS (XGETBV) support it.
 */
#include <stdatomic.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"

#if !defined(IVFPQ_EMBEDDED)
#include <stdlib.h> /* getenv */
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define IVFPQ_X86 1
#if defined(__GNUC__) || defined(__clang__)
#include <cpuid.h>
#endif
#endif

static const ivfpq_kernels k_scalar = {
    IVFPQ_SIMD_SCALAR,          ivfpq__l2sqr_tile_scalar,    ivfpq__dot_tile_scalar,
    ivfpq__lut_l2_scalar,       ivfpq__lut_ip_scalar,        ivfpq__fs_accumulate_scalar,
    ivfpq__fs_scan_scalar,      ivfpq__fs_kth_scalar,        ivfpq__lut_range_scalar,
    ivfpq__lut_u8_scalar,       ivfpq__i16_tile_scalar,      ivfpq__cpf_quant_base,
    NULL, /* no int8 tile */
};

#define IVFPQ_TABLE(isa, LEVEL)                                                         \
    static const ivfpq_kernels k_##isa = {                                              \
        LEVEL,                     ivfpq__l2sqr_tile_##isa, ivfpq__dot_tile_##isa,      \
        ivfpq__lut_l2_##isa,       ivfpq__lut_ip_##isa,     ivfpq__fs_accumulate_##isa, \
        ivfpq__fs_scan_##isa,      ivfpq__fs_kth_##isa,     ivfpq__lut_range_##isa,     \
        ivfpq__lut_u8_##isa,       ivfpq__i16_tile_##isa,   QUANT_##isa,                \
        NULL, /* no int8 tile */                                                        \
    };
/* the row quantizer: own variants for avx2 / avx512, the baseline else */
#define QUANT_sse ivfpq__cpf_quant_base
#define QUANT_neon ivfpq__cpf_quant_base
#define QUANT_avx2 ivfpq__cpf_quant_avx2
#define QUANT_avx512 ivfpq__cpf_quant_avx512

#ifdef IVFPQ_HAVE_SSE
IVFPQ_TABLE(sse, IVFPQ_SIMD_SSE)
#endif
#ifdef IVFPQ_HAVE_AVX2
IVFPQ_TABLE(avx2, IVFPQ_SIMD_AVX2)
#ifdef IVFPQ_HAVE_AVXVNNI_KERNEL
/* the same level with AVX-VNNI's int8 tile (the prefilter's int8 tables) */
static const ivfpq_kernels k_avx2vnni = {
    IVFPQ_SIMD_AVX2,           ivfpq__l2sqr_tile_avx2,     ivfpq__dot_tile_avx2,
    ivfpq__lut_l2_avx2,        ivfpq__lut_ip_avx2,         ivfpq__fs_accumulate_avx2,
    ivfpq__fs_scan_avx2,       ivfpq__fs_kth_avx2,         ivfpq__lut_range_avx2,
    ivfpq__lut_u8_avx2,        ivfpq__i16_tile_avx2,       ivfpq__cpf_quant_avx2,
    ivfpq__i8_tile_avx2vnni,
};
#define IVFPQ_HAVE_AVXVNNI_TABLE 1
#endif
#endif
#ifdef IVFPQ_HAVE_AVX512
IVFPQ_TABLE(avx512, IVFPQ_SIMD_AVX512)
#if defined(__GNUC__) || defined(__clang__)
/* the same level with AVX512-VNNI's int16 tile (same integers) and its
 * int8 tile (the coarse prefilter's int8 tables, coarse.c) */
static const ivfpq_kernels k_avx512vnni = {
    IVFPQ_SIMD_AVX512,         ivfpq__l2sqr_tile_avx512,   ivfpq__dot_tile_avx512,
    ivfpq__lut_l2_avx512,      ivfpq__lut_ip_avx512,       ivfpq__fs_accumulate_avx512,
    ivfpq__fs_scan_avx512,     ivfpq__fs_kth_avx512,       ivfpq__lut_range_avx512,
    ivfpq__lut_u8_avx512,      ivfpq__i16_tile_avx512vnni, ivfpq__cpf_quant_avx512,
    ivfpq__i8_tile_avx512vnni,
};
#define IVFPQ_HAVE_VNNI_TABLE 1
#endif
#endif

/* Not levels: probe() bits telling that the avx512 table may use
 * AVX512-VNNI and the avx2 table AVX-VNNI. */
#define PROBE_VNNI (1u << 16)
#define PROBE_AVXVNNI (1u << 17)
#ifdef IVFPQ_HAVE_NEON
IVFPQ_TABLE(neon, IVFPQ_SIMD_NEON)
#endif

static _Atomic(const ivfpq_kernels *) g_active;

#ifdef IVFPQ_X86
static uint64_t xgetbv0(void)
{
    uint32_t eax, edx;
    /* xgetbv encoded as bytes: no -mxsave needed in this baseline file */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

/* Bitmask of supported levels. */
static unsigned probe_x86(void)
{
    unsigned ok = 1u << IVFPQ_SIMD_SCALAR;
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return ok;
    unsigned maxleaf = a;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return ok;
    int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (ssse3 && sse41) ok |= 1u << IVFPQ_SIMD_SSE;
    if (!(osxsave && avx) || maxleaf < 7) return ok;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return ok; /* OS saves XMM and YMM state */
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    if (avx2) ok |= 1u << IVFPQ_SIMD_AVX2;
    if (avx2 && a >= 1) { /* leaf 7 has a subleaf 1: AVX-VNNI is its EAX bit 4 */
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        if ((a1 >> 4) & 1) ok |= PROBE_AVXVNNI;
    }
    if (avx2 && f && dq && bw && vl && (xcr0 & 0xe6) == 0xe6) {
        ok |= 1u << IVFPQ_SIMD_AVX512;
        if ((c >> 11) & 1) ok |= PROBE_VNNI;
    }
    return ok;
}
#endif

static unsigned probe(void)
{
    unsigned ok = 1u << IVFPQ_SIMD_SCALAR;
#ifdef IVFPQ_X86
    ok = probe_x86();
#endif
#if defined(__aarch64__)
    ok |= 1u << IVFPQ_SIMD_NEON; /* Advanced SIMD is mandatory on AArch64 */
#endif
    /* keep only what this build compiled */
    unsigned built = 1u << IVFPQ_SIMD_SCALAR;
#ifdef IVFPQ_HAVE_SSE
    built |= 1u << IVFPQ_SIMD_SSE;
#endif
#ifdef IVFPQ_HAVE_AVX2
    built |= 1u << IVFPQ_SIMD_AVX2;
#endif
#ifdef IVFPQ_HAVE_AVX512
    built |= 1u << IVFPQ_SIMD_AVX512;
#endif
#ifdef IVFPQ_HAVE_VNNI_TABLE
    built |= PROBE_VNNI;
#endif
#ifdef IVFPQ_HAVE_AVXVNNI_TABLE
    built |= PROBE_AVXVNNI;
#endif
#ifdef IVFPQ_HAVE_NEON
    built |= 1u << IVFPQ_SIMD_NEON;
#endif
    return ok & built;
}

static const ivfpq_kernels *table_of(ivfpq_simd_level level, unsigned ok)
{
    (void)ok;
    switch (level) {
    case IVFPQ_SIMD_SCALAR: return &k_scalar;
#ifdef IVFPQ_HAVE_SSE
    case IVFPQ_SIMD_SSE: return &k_sse;
#endif
#ifdef IVFPQ_HAVE_AVX2
#ifdef IVFPQ_HAVE_AVXVNNI_TABLE
    case IVFPQ_SIMD_AVX2: return ok & PROBE_AVXVNNI ? &k_avx2vnni : &k_avx2;
#else
    case IVFPQ_SIMD_AVX2: return &k_avx2;
#endif
#endif
#ifdef IVFPQ_HAVE_AVX512
#ifdef IVFPQ_HAVE_VNNI_TABLE
    case IVFPQ_SIMD_AVX512: return ok & PROBE_VNNI ? &k_avx512vnni : &k_avx512;
#else
    case IVFPQ_SIMD_AVX512: return &k_avx512;
#endif
#endif
#ifdef IVFPQ_HAVE_NEON
    case IVFPQ_SIMD_NEON: return &k_neon;
#endif
    default: return NULL;
    }
}

/* Best supported level, not above `cap` on the x86 ladder. */
static ivfpq_simd_level best_level(unsigned ok, int cap)
{
    static const ivfpq_simd_level order[] = {IVFPQ_SIMD_AVX512, IVFPQ_SIMD_AVX2,
                                             IVFPQ_SIMD_SSE, IVFPQ_SIMD_NEON};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        ivfpq_simd_level l = order[i];
        if (!(ok & (1u << l))) continue;
        if (cap >= 0 && l != IVFPQ_SIMD_NEON && (int)l > cap) continue;
        if (cap >= 0 && l == IVFPQ_SIMD_NEON && cap != IVFPQ_SIMD_NEON) continue;
        return l;
    }
    return IVFPQ_SIMD_SCALAR;
}

#if !defined(IVFPQ_EMBEDDED)
static int level_from_name(const char *s)
{
    for (int l = IVFPQ_SIMD_SCALAR; l <= IVFPQ_SIMD_NEON; l++)
        if (strcmp(s, ivfpq_simd_name((ivfpq_simd_level)l)) == 0) return l;
    return -1;
}
#endif

ivfpq_simd_level ivfpq_simd_init(void)
{
    const ivfpq_kernels *k = atomic_load_explicit(&g_active, memory_order_acquire);
    if (k) return k->level;
    int cap = -1;
#if !defined(IVFPQ_EMBEDDED)
    /* An override above what the CPU has degrades to the best level below it:
     * an environment variable has no way to report an error. */
    const char *env = getenv("IVFPQ_SIMD");
    if (env && *env) cap = level_from_name(env);
#endif
    unsigned ok = probe();
    k = table_of(best_level(ok, cap), ok);
    const ivfpq_kernels *expected = NULL;
    if (!atomic_compare_exchange_strong(&g_active, &expected, k)) k = expected;
    return k->level;
}

const ivfpq_kernels *ivfpq__kernels(void)
{
    const ivfpq_kernels *k = atomic_load_explicit(&g_active, memory_order_acquire);
    if (k) return k;
    ivfpq_simd_init();
    return atomic_load_explicit(&g_active, memory_order_acquire);
}

const ivfpq_kernels *ivfpq__kernels_for(ivfpq_simd_level level)
{
    if ((unsigned)level > IVFPQ_SIMD_NEON) return NULL;
    unsigned ok = probe();
    if (!(ok & (1u << level))) return NULL;
    return table_of(level, ok);
}

ivfpq_simd_level ivfpq_simd_active(void) { return ivfpq__kernels()->level; }

int ivfpq_simd_supported(ivfpq_simd_level level) { return ivfpq__kernels_for(level) != NULL; }

int ivfpq_simd_force(ivfpq_simd_level level)
{
    const ivfpq_kernels *k = ivfpq__kernels_for(level);
    if (!k) return IVFPQ_E_SIMD;
    atomic_store_explicit(&g_active, k, memory_order_release);
    return IVFPQ_OK;
}

const char *ivfpq_simd_name(ivfpq_simd_level level)
{
    switch (level) {
    case IVFPQ_SIMD_SCALAR: return "scalar";
    case IVFPQ_SIMD_SSE: return "sse";
    case IVFPQ_SIMD_AVX2: return "avx2";
    case IVFPQ_SIMD_AVX512: return "avx512";
    case IVFPQ_SIMD_NEON: return "neon";
    default: return NULL;
    }
}

float ivfpq__l2sqr(const float *x, const float *y, size_t d)
{
    float r;
    ivfpq__kernels()->l2sqr_tile(x, 1, y, 1, d, &r, 1);
    return r;
}

float ivfpq__dot(const float *x, const float *y, size_t d)
{
    float r;
    ivfpq__kernels()->dot_tile(x, 1, y, 1, d, &r, 1);
    return r;
}

/*
 * CRC32C (Castagnoli), the checksum of every section of the native index
 * format. Same parameters as iSCSI/ext4/RocksDB: reflected polynomial
 * 0x82F63B78, initial value and final xor 0xFFFFFFFF ("123456789" ->
 * 0xE3069283), so files can be checked with any CRC32C tool.
 *
 * Speed matters because a load verifies every byte: x86-64 with SSE4.2 and
 * ARMv8 with the CRC extension use the crc32 instructions on three
 * interleaved streams (up to 8 bytes per cycle); elsewhere slicing-by-8
 * tables (~1-2 GB/s).
 */
#include "io.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CRC_X86 1
#include <cpuid.h>
#include <nmmintrin.h>
#include <stdatomic.h>
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#define CRC_ARM 1
#include <arm_acle.h>
#endif

#include "crc32c_table.h"

static inline uint64_t load_le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

uint32_t ivfpq__crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c = ~crc;
    for (; len && ((uintptr_t)p & 7); len--) c = (c >> 8) ^ crc32c_table[0][(c ^ *p++) & 0xff];
    for (; len >= 8; len -= 8, p += 8) {
        uint64_t w = load_le64(p) ^ c;
        c = crc32c_table[7][w & 0xff] ^ crc32c_table[6][(w >> 8) & 0xff] ^
            crc32c_table[5][(w >> 16) & 0xff] ^ crc32c_table[4][(w >> 24) & 0xff] ^
            crc32c_table[3][(w >> 32) & 0xff] ^ crc32c_table[2][(w >> 40) & 0xff] ^
            crc32c_table[1][(w >> 48) & 0xff] ^ crc32c_table[0][w >> 56];
    }
    while (len--) c = (c >> 8) ^ crc32c_table[0][(c ^ *p++) & 0xff];
    return ~c;
}

#if defined(CRC_X86) || defined(CRC_ARM)
#define LONG 8192
#define SHORT 256

static inline uint32_t shift(const uint32_t t[4][256], uint32_t c)
{
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

/* One crc32 instruction has a latency of 3 cycles and a throughput of 1:
 * three independent streams over consecutive blocks keep it busy, then
 * crc(A B C) = shift_|C|(shift_|B|(crc(A)) ^ crc(B)) ^ crc(C) (raw registers).
 * STEP8/STEP1 are the instructions, ATTR the target attribute if needed. */
#define CRC_HW_BODY(STEP8, STEP1)                                                         \
    const unsigned char *p = data;                                                        \
    uint64_t c = ~crc;                                                                    \
    for (; len && ((uintptr_t)p & 7); len--) c = STEP1((uint32_t)c, *p++);               \
    for (size_t blk = LONG; blk >= SHORT; blk = blk == LONG ? SHORT : 0) {                \
        const uint32_t(*tab)[256] = blk == LONG ? crc32c_shift_8192 : crc32c_shift_256;    \
        while (len >= 3 * blk) {                                                          \
            uint64_t c1 = 0, c2 = 0, w0, w1, w2;                                          \
            for (const unsigned char *end = p + blk; p < end; p += 8) {                   \
                memcpy(&w0, p, 8);                                                        \
                memcpy(&w1, p + blk, 8);                                                  \
                memcpy(&w2, p + 2 * blk, 8);                                              \
                c = STEP8(c, w0);                                                         \
                c1 = STEP8(c1, w1);                                                       \
                c2 = STEP8(c2, w2);                                                       \
            }                                                                             \
            c = shift(tab, shift(tab, (uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;        \
            p += 2 * blk;                                                                 \
            len -= 3 * blk;                                                               \
        }                                                                                 \
    }                                                                                     \
    for (; len >= 8; len -= 8, p += 8) {                                                  \
        uint64_t w;                                                                       \
        memcpy(&w, p, 8);                                                                 \
        c = STEP8(c, w);                                                                  \
    }                                                                                     \
    while (len--) c = STEP1((uint32_t)c, *p++);                                           \
    return ~(uint32_t)c;
#endif

#if defined(CRC_X86)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const void *data,
                                                         size_t len)
{
    CRC_HW_BODY(_mm_crc32_u64, _mm_crc32_u8)
}

/* 0 = not probed yet, 1 = no SSE4.2, 2 = SSE4.2 */
static _Atomic int g_hw;

static int have_hw(void)
{
    int h = atomic_load_explicit(&g_hw, memory_order_relaxed);
    if (!h) {
        unsigned a, b, c, d;
        h = __get_cpuid(1, &a, &b, &c, &d) && ((c >> 20) & 1) ? 2 : 1;
        atomic_store_explicit(&g_hw, h, memory_order_relaxed);
    }
    return h == 2;
}
#elif defined(CRC_ARM)
static uint32_t crc_hw(uint32_t crc, const void *data, size_t len)
{
    CRC_HW_BODY(__crc32cd, __crc32cb)
}
static int have_hw(void) { return 1; }
#endif

int ivfpq__crc32c_hw_available(void)
{
#if defined(CRC_X86) || defined(CRC_ARM)
    return have_hw();
#else
    return 0;
#endif
}

uint32_t ivfpq__crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(CRC_X86) || defined(CRC_ARM)
    if (have_hw()) return crc_hw(crc, data, len);
#endif
    return ivfpq__crc32c_sw(crc, data, len);
}

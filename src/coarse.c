/*
 * Coarse prefilter: the nearest-centroid search of a batch of queries with
 * most centroids ruled out by exact integer arithmetic first, giving the
 * very lists (and distance bits) of the float search in kmeans.c.
 *
 * At nprobe 1 the coarse step is a (queries x centroids x d) float product
 * that runs at the adder's peak already (bench/RESULTS.md). Here both sides
 * are centred on the centroid mean, scaled to int16 (range R, chosen so
 * that no int32 sum can overflow) and multiplied exactly by the i16_tile
 * kernel at twice the float rate. For each (query, centroid) that gives an
 * approximate score V and a bound B on how far the float search's score
 * can be from it (up to a constant per query), from the quantization
 * errors (Cauchy-Schwarz) and the float rounding of both sides:
 *   |q'.c' - s_q s_c <qi, ci>| <= |q^| |e_c| + |e_q| |c'|.
 * Only centroids whose V - B is <= the nprobe-th smallest V + B can be
 * among the float search's nprobe best (ties included); those few get the
 * float search's own score (same kernel, same formula) and are ranked the
 * same way. Every rounding is bounded and the sum inflated by 1.0001 on
 * top, which costs nothing: the int16 errors are ~1e-4 of |q'||c'|, and on
 * the synthetic sets ~1.03 candidates per probe survive. Any value the
 * bounds cannot cover, or a query with too many survivors (ties), goes to
 * the float search. So the result is that of kmeans.c at every SIMD level,
 * bit for bit; only the time differs (tests/test_coarse.c).
 *
 * With AVX512-VNNI or AVX-VNNI (the kernel table's i8_tile) the tables are int8
 * instead (R = 127; queries as uint8 with a +128 offset that the kernel
 * takes back exactly): twice the products per instruction, and bounds ~23x
 * wider at d = 256, which still leave few survivors per query at nprobe 1
 * (measured: 2.2 on a 50k x 256 IVF1282 index, 1.2 on IVF223; int16 1.04;
 * no query handed to the float search). The tables record
 * which they are; searched under a kernel table without i8_tile (after
 * ivfpq_simd_force), int8 tables send every query to the float search.
 *
 * The tables are built per search call in the workspace (no index state,
 * nothing in files, the one-query workspace unchanged): one pass over the
 * centroids, so it is used from 32 queries per call up.
 */
#include <math.h>

#include "internal.h"
#if defined(__SSE2__)
#include <emmintrin.h> /* baseline on x86-64: not a dispatched level */
#endif
#include "kernels.h"

#define U24 (1.0 / 16777216.0) /* float unit roundoff */
#define QG 32 /* queries per i16_tile call: the int16 centroids stream from L3 once per QG
               * queries once they outgrow L2 (4,000 x 256: 2 MB); 8 -> 32 made the
               * coarse step 0.92x there, the same at 1,282 lists */

/* The layout of the prepared tables and of the per-chunk scratch. */
typedef struct cpf_layout {
    size_t nb, dp, dq, rows; /* 16-row blocks, d padded to even / to 4, nb * 16 */
    size_t o_cq, o_corr, o_tmp, o_sc, o_e, o_n, o_h, o_k, o_mu, o_hdr, total;
    size_t s_xq, s_tmp, s_qf, s_sc, s_u, s_lo, s_cl, s_cd, stotal;
} cpf_layout;

typedef struct cpf_hdr {
    int ip, usable;
    int i8; /* int8 tables (the kernel table's i8_tile), else int16 */
    float R;
} cpf_hdr;

/* int8 tables when the kernel table has i8_tile and the int32 sums of
 * uint8 x int8 products cannot wrap around: dq * 255 * 127 < 2^31 */
#define I8_MAX_DQ 16384

static size_t up64(size_t x) { return (x + 63) & ~(size_t)63; }

static void layout(size_t nlist, size_t d, cpf_layout *L)
{
    L->nb = (nlist + 15) / 16;
    L->dp = d + (d & 1);
    L->dq = (d + 3) & ~(size_t)3;
    L->rows = L->nb * 16;
    size_t t = 0, fr = up64(L->rows * sizeof(float));
    /* the centroid codes: int16 [nb][dp/2][16][2], or int8 [nb][dq/4][16][4]
     * then 128 x each row's sum and a row of int16 for the quantizer; the
     * size is the larger, whatever the CPU, so that sizes never depend on it */
    size_t b16 = up64(L->rows * L->dp * sizeof(int16_t));
    size_t b8 = up64(L->rows * L->dq) + up64(L->rows * sizeof(int32_t)) + up64(L->dp * sizeof(int16_t));
    L->o_cq = t;
    L->o_corr = t + up64(L->rows * L->dq);
    L->o_tmp = L->o_corr + up64(L->rows * sizeof(int32_t));
    t += b16 > b8 ? b16 : b8;
    L->o_sc = t; t += fr;
    L->o_e = t; t += fr;
    L->o_n = t; t += fr;
    L->o_h = t; t += fr;
    L->o_k = t; t += fr;
    L->o_mu = t; t += up64(d * sizeof(float));
    L->o_hdr = t; t += up64(sizeof(cpf_hdr));
    L->total = t;
    t = 0;
    L->s_xq = t; t += up64(QG * L->dp * sizeof(int16_t)); /* >= QG * dq bytes */
    L->s_tmp = t; t += up64(L->dp * sizeof(int16_t));
    L->s_qf = t; t += up64(QG * 4 * sizeof(float));
    L->s_sc = t; t += up64(QG * L->rows * sizeof(int32_t));
    L->s_u = t; t += fr;
    L->s_lo = t; t += fr;
    L->s_cl = t; t += up64(nlist * sizeof(int32_t));
    L->s_cd = t; t += up64(nlist * sizeof(float));
    L->stotal = t;
}

int ivfpq__cpf_worth(size_t nq, size_t nlist, size_t d, size_t nprobe)
{
    /* enough queries to pay for the tables, enough lists to prune, few
     * enough probes (above 16, ranking the survivors one by one costs what
     * it saves: nprobe 64 of 1024 was 12% slower), and d small enough for
     * a useful int16 range (R >= 181) */
    return nq >= 32 && nlist >= 64 && nprobe <= 16 && nprobe * 8 <= nlist &&
           d <= ((size_t)1 << 16);
}

size_t ivfpq__cpf_bytes(size_t nlist, size_t d)
{
    cpf_layout L;
    layout(nlist, d, &L);
    return L.total;
}

size_t ivfpq__cpf_scratch_bytes(size_t nlist, size_t d)
{
    cpf_layout L;
    layout(nlist, d, &L);
    return L.stotal;
}

/* The int16 range: dp * R^2 < 2^31, so no sum of products overflows. */
static float range_for(size_t dp)
{
    double r = floor(sqrt(2147483647.0 / (double)dp));
    return (float)(r > 32767.0 ? 32767.0 : r);
}

/* What quant_row learns about a row x (upper bounds as real numbers). */
typedef struct qrow {
    float m;       /* max |v|, v = fl(x - mu) */
    double err;    /* >= |(x - mu) - s ci| */
    double vnorm;  /* >= |x - mu| */
    double xnorm;  /* >= |x| */
    double mx;     /* ~ <mu, x>, within mx_err */
    double mx_err;
} qrow;

/* One element of quant_row: quantizes v, adds to the sums s[5]. */
static inline int16_t quant_one(float xv, float mv, float inv, float sc, float R, float s[5])
{
    float v = xv - mv, r = v * inv;
    r = r > R ? R : r;
    r = r < -R ? -R : r;
    int32_t c = (int32_t)(r + (r >= 0.0f ? 0.5f : -0.5f));
    float e = v - sc * (float)c, p = mv * xv;
    s[0] += e * e;
    s[1] += v * v;
    s[2] += xv * xv;
    s[3] += p;
    s[4] += fabsf(p);
    return (int16_t)c;
}

static inline void put16(int16_t *out, int blocked, size_t j, int16_t c)
{
    out[blocked ? (j >> 1) * 32 + (j & 1) : j] = c;
}

/* The baseline row quantizer of the kernel table (scalar, sse and neon
 * levels; avx2 and avx512 have their own): see ivfpq_cpf_quant_fn in
 * kernels.h. SSE2 where it is baseline (x86-64), scalar elsewhere. */
float ivfpq__cpf_quant_base(const float *x, const float *mu, size_t d, float R, int16_t *out,
                            int blocked, float sums[5])
{
    float mx = 0.0f;
    for (int k = 0; k < 5; k++) sums[k] = 0.0f;
    size_t j0 = 0;
#if defined(__SSE2__)
    size_t d4 = d & ~(size_t)3;
    const __m128 sign = _mm_set1_ps(-0.0f);
    __m128 vm = _mm_setzero_ps();
    for (size_t j = 0; j < d4; j += 4)
        vm = _mm_max_ps(vm, _mm_andnot_ps(sign, _mm_sub_ps(_mm_loadu_ps(x + j), _mm_loadu_ps(mu + j))));
    float l4[4];
    _mm_storeu_ps(l4, vm);
    for (int l = 0; l < 4; l++) mx = l4[l] > mx ? l4[l] : mx;
    j0 = d4;
#endif
    for (size_t j = j0; j < d; j++) {
        float a = fabsf(x[j] - mu[j]);
        mx = a > mx ? a : mx;
    }
    float sc = mx / R, inv = mx > 0.0f ? R / mx : 0.0f;
    j0 = 0;
#if defined(__SSE2__)
    {
        __m128 vinv = _mm_set1_ps(inv), vs = _mm_set1_ps(sc), hi = _mm_set1_ps(R),
               lo = _mm_set1_ps(-R);
        __m128 e2 = _mm_setzero_ps(), v2 = e2, x2 = e2, md = e2, ma = e2;
        for (size_t j = 0; j < d4; j += 4) {
            __m128 xv = _mm_loadu_ps(x + j), mv = _mm_loadu_ps(mu + j);
            __m128 v = _mm_sub_ps(xv, mv);
            __m128 r = _mm_min_ps(_mm_max_ps(_mm_mul_ps(v, vinv), lo), hi);
            __m128i c = _mm_cvtps_epi32(r);
            __m128 e = _mm_sub_ps(v, _mm_mul_ps(vs, _mm_cvtepi32_ps(c))), p = _mm_mul_ps(mv, xv);
            e2 = _mm_add_ps(e2, _mm_mul_ps(e, e));
            v2 = _mm_add_ps(v2, _mm_mul_ps(v, v));
            x2 = _mm_add_ps(x2, _mm_mul_ps(xv, xv));
            md = _mm_add_ps(md, p);
            ma = _mm_add_ps(ma, _mm_andnot_ps(sign, p));
            __m128i c16 = _mm_packs_epi32(c, c); /* |c| <= R <= 32767: exact */
            if (blocked) {
                int32_t w0 = _mm_cvtsi128_si32(c16), w1 = _mm_cvtsi128_si32(_mm_srli_si128(c16, 4));
                memcpy(out + (j >> 1) * 32, &w0, 4);
                memcpy(out + ((j >> 1) + 1) * 32, &w1, 4);
            } else {
                _mm_storel_epi64((__m128i *)(void *)(out + j), c16);
            }
        }
        __m128 acc[5] = {e2, v2, x2, md, ma};
        for (int k = 0; k < 5; k++) {
            _mm_storeu_ps(l4, acc[k]);
            sums[k] = (l4[0] + l4[1]) + (l4[2] + l4[3]);
        }
        j0 = d4;
    }
#endif
    for (size_t j = j0; j < d; j++) put16(out, blocked, j, quant_one(x[j], mu[j], inv, sc, R, sums));
    return mx;
}

/* Quantizes v = fl(x - mu) [d] through the kernel table and turns its sums
 * into bounds: the float sums' rounding (any lane count) is covered by the
 * (d + 16) u factors, that of v and of v - s ci (each within u |v_j|) by
 * the 4 u |v| term. Returns the scale s. */
static float quant_row(const ivfpq_kernels *K, const float *x, const float *mu, size_t d, float R,
                       int16_t *out, int blocked, qrow *o)
{
    float sums[5];
    float mx = K->cpf_quant(x, mu, d, R, out, blocked, sums);
    o->m = mx;
    double g = ((double)d + 16.0) * U24;
    o->vnorm = sqrt(sums[1] * (1.0 + g)) * (1.0 + 4.0 * U24);
    o->err = sqrt(sums[0] * (1.0 + g)) * (1.0 + 4.0 * U24) + o->vnorm * U24 * 4.01;
    o->xnorm = sqrt(sums[2] * (1.0 + g)) * (1.0 + 4.0 * U24);
    o->mx = sums[3];
    o->mx_err = (g + 2.0 * U24) * sums[4] * 1.01;
    return mx / R;
}

/* Builds the tables in mem (ivfpq__cpf_bytes). Returns 0 when the data
 * does not allow it (values too large): then the caller uses kmeans.c. */
int ivfpq__cpf_prepare(void *mem, const float *cents, const float *cnorms, size_t nlist, size_t d,
                       int ip)
{
    cpf_layout L;
    layout(nlist, d, &L);
    unsigned char *w = mem;
    int16_t *cq = (int16_t *)(void *)(w + L.o_cq);
    float *sc = (float *)(void *)(w + L.o_sc), *E = (float *)(void *)(w + L.o_e),
          *N = (float *)(void *)(w + L.o_n), *H = (float *)(void *)(w + L.o_h),
          *K = (float *)(void *)(w + L.o_k), *mu = (float *)(void *)(w + L.o_mu);
    cpf_hdr *hdr = (cpf_hdr *)(void *)(w + L.o_hdr);
    const ivfpq_kernels *Kt = ivfpq__kernels();
    hdr->ip = ip;
    hdr->usable = 0;
    hdr->i8 = Kt->i8_tile && L.dq <= I8_MAX_DQ;
    hdr->R = hdr->i8 ? 127.0f : range_for(L.dp);
    int8_t *cq8 = (int8_t *)(void *)(w + L.o_cq);
    int32_t *corr = (int32_t *)(void *)(w + L.o_corr);
    int16_t *tmp = (int16_t *)(void *)(w + L.o_tmp);

    /* the centre: any vector is valid; the mean of a sample of 64
     * centroids makes |c - mu| small without a pass over all of them (the
     * tables are rebuilt per call, and reading the centroids is most of
     * their cost) */
    size_t ns = nlist < 64 ? nlist : 64;
    {
        float *restrict m = mu; /* no aliasing: lets the compiler vectorize */
        const float *restrict cs = cents;
        for (size_t j = 0; j < d; j++) m[j] = 0.0f;
        for (size_t i = 0; i < ns; i++)
            for (size_t j = 0; j < d; j++) m[j] += cs[(i * nlist / ns) * d + j];
    }
    for (size_t j = 0; j < d; j++) {
        mu[j] /= (float)ns;
        if (!(fabsf(mu[j]) <= 1e30f)) return 0;
    }
    /* zeros where quant_row writes nothing: the last block's padding rows
     * and, for odd d, the pad dimension (scores stay bounded and defined) */
    if (hdr->i8) {
        if (nlist % 16) memset(cq8 + (L.nb - 1) * L.dq * 16, 0, L.dq * 16);
    } else if (nlist % 16) {
        memset(cq + (L.nb - 1) * L.dp * 16, 0, L.dp * 16 * sizeof(int16_t));
    }
    for (size_t c = 0; c < L.rows; c++) {
        if (c >= nlist) { /* padding rows: never looked at */
            sc[c] = E[c] = N[c] = H[c] = K[c] = 0.0f;
            if (hdr->i8) corr[c] = 0;
            continue;
        }
        const float *x = cents + c * d;
        qrow r;
        if (hdr->i8) {
            /* |codes| <= 127: as int8 in fours of dimensions, pads 0 */
            sc[c] = quant_row(Kt, x, mu, d, hdr->R, tmp, 0, &r);
            int8_t *col = cq8 + (c / 16) * L.dq * 16 + (c % 16) * 4;
            int32_t sum = 0;
            for (size_t j = 0; j < L.dq; j++) {
                int8_t v = j < d ? (int8_t)tmp[j] : 0;
                col[(j >> 2) * 64 + (j & 3)] = v;
                sum += v;
            }
            corr[c] = 128 * sum;
        } else {
            int16_t *col = cq + (c / 16) * L.dp * 16 + (c % 16) * 2;
            sc[c] = quant_row(Kt, x, mu, d, hdr->R, col, 1, &r);
            if (d & 1) col[(d >> 1) * 32 + 1] = 0;
        }
        double h = ip ? -r.mx : (double)cnorms[c] - 2.0 * r.mx;
        /* the error of <mu, c>, the float rounding of h and of the float
         * search's last subtraction */
        double kap = (ip ? 1.0 : 2.0) * r.mx_err +
                     16.0 * U24 * (fabs(h) + (ip ? 0.0 : fabs((double)cnorms[c]))) + 1e-30;
        float m = r.m;
        E[c] = (float)(r.err * (1.0 + 1e-6));
        N[c] = (float)((r.vnorm > r.xnorm ? r.vnorm : r.xnorm) * (1.0 + 1e-6));
        H[c] = (float)h;
        K[c] = (float)(kap * 1.0001);
        if (!(m <= 1e30 && fabsf(H[c]) <= 1e36f && N[c] <= 1e18f && E[c] <= 1e18f)) return 0;
    }
    hdr->usable = 1;
    return 1;
}

int ivfpq__cpf_usable(const void *mem, size_t nlist, size_t d)
{
    cpf_layout L;
    layout(nlist, d, &L);
    return ((const cpf_hdr *)(const void *)((const unsigned char *)mem + L.o_hdr))->usable;
}

/* ------------------------------------------------------------- search */

/* The k-th smallest (1-based) of a [n], no NaN: quickselect with a
 * three-way partition (duplicates are common: padding, equal centroids). */
static float kth_smallest(float *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n, t = k - 1;
    while (hi - lo > 1) {
        float pv = a[lo + (hi - lo) / 2], tmp;
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            if (a[i] < pv) {
                tmp = a[lt], a[lt] = a[i], a[i] = tmp;
                lt++, i++;
            } else if (a[i] > pv) {
                gt--;
                tmp = a[gt], a[gt] = a[i], a[i] = tmp;
            } else {
                i++;
            }
        }
        if (t < lt) hi = lt;
        else if (t >= gt) lo = gt;
        else return pv;
    }
    return a[lo];
}

/* U = V + B and Lo = V - B for every centroid of one query, V = H - gq sc
 * row, B = A E + B N + K; *umin = min U. Returns 0 if a U is not finite
 * (NaN included). SSE2 where it is baseline: the compiler leaves these
 * loops scalar (aliasing, float min and flag reductions). */
static int bounds(const int32_t *row, const float *H, const float *sc, const float *E,
                  const float *N, const float *K, size_t n, float gq, float A, float B, float *U,
                  float *Lo, float *umin)
{
    size_t c = 0;
    int fin = 1;
    float mn = INFINITY;
#if defined(__SSE2__)
    __m128 vg = _mm_set1_ps(gq), va = _mm_set1_ps(A), vb = _mm_set1_ps(B),
           big = _mm_set1_ps(3e38f), vmin = _mm_set1_ps(INFINITY);
    __m128 ok = _mm_castsi128_ps(_mm_set1_epi32(-1));
    for (; c + 4 <= n; c += 4) {
        __m128 t = _mm_mul_ps(_mm_mul_ps(vg, _mm_loadu_ps(sc + c)),
                              _mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)(const void *)(row + c))));
        __m128 v = _mm_sub_ps(_mm_loadu_ps(H + c), t);
        __m128 b = _mm_add_ps(_mm_add_ps(_mm_mul_ps(va, _mm_loadu_ps(E + c)),
                                         _mm_mul_ps(vb, _mm_loadu_ps(N + c))),
                              _mm_loadu_ps(K + c));
        __m128 u = _mm_add_ps(v, b);
        _mm_storeu_ps(U + c, u);
        _mm_storeu_ps(Lo + c, _mm_sub_ps(v, b));
        ok = _mm_and_ps(ok, _mm_cmple_ps(u, big));
        vmin = _mm_min_ps(vmin, u);
    }
    float l4[4];
    _mm_storeu_ps(l4, vmin);
    for (int l = 0; l < 4; l++) mn = l4[l] < mn ? l4[l] : mn;
    fin = _mm_movemask_ps(ok) == 15;
#endif
    for (; c < n; c++) {
        float v = H[c] - gq * sc[c] * (float)row[c];
        float b = A * E[c] + B * N[c] + K[c];
        U[c] = v + b;
        Lo[c] = v - b;
        fin &= U[c] <= 3e38f;
        mn = U[c] < mn ? U[c] : mn;
    }
    *umin = mn;
    return fin;
}

/* The centroids with Lo <= tau into cl; returns their count. Few pass:
 * four at a time are skipped on one compare. */
static size_t candidates(const float *Lo, size_t n, float tau, int32_t *cl)
{
    size_t c = 0, nc = 0;
#if defined(__SSE2__)
    __m128 vt = _mm_set1_ps(tau);
    for (; c + 4 <= n; c += 4) {
        int m = _mm_movemask_ps(_mm_cmple_ps(_mm_loadu_ps(Lo + c), vt));
        while (m) {
            int l = __builtin_ctz((unsigned)m);
            cl[nc++] = (int32_t)(c + (size_t)l);
            m &= m - 1;
        }
    }
#endif
    for (; c < n; c++)
        if (Lo[c] <= tau) cl[nc++] = (int32_t)c;
    return nc;
}

void ivfpq__cpf_search(const void *tables, const float *x, size_t nx, size_t d, const float *cents,
                       const float *cnorms, size_t nlist, size_t nprobe, int32_t *lists,
                       float *dists, void *scratch, float *fscratch)
{
    const ivfpq_kernels *Kt = ivfpq__kernels();
    cpf_layout L;
    layout(nlist, d, &L);
    const unsigned char *w = tables;
    const int16_t *cq = (const int16_t *)(const void *)(w + L.o_cq);
    const float *sc = (const float *)(const void *)(w + L.o_sc),
                *E = (const float *)(const void *)(w + L.o_e),
                *N = (const float *)(const void *)(w + L.o_n),
                *H = (const float *)(const void *)(w + L.o_h),
                *K = (const float *)(const void *)(w + L.o_k),
                *mu = (const float *)(const void *)(w + L.o_mu);
    const cpf_hdr *hdr = (const cpf_hdr *)(const void *)(w + L.o_hdr);
    unsigned char *s = scratch;
    int16_t *xq = (int16_t *)(void *)(s + L.s_xq), *tmp = (int16_t *)(void *)(s + L.s_tmp);
    uint8_t *xu = s + L.s_xq; /* the int8 tables' queries, + 128 */
    const int8_t *cq8 = (const int8_t *)(const void *)(w + L.o_cq);
    const int32_t *corr = (const int32_t *)(const void *)(w + L.o_corr);
    float *qf = (float *)(void *)(s + L.s_qf);
    int32_t *isc = (int32_t *)(void *)(s + L.s_sc);
    float *U = (float *)(void *)(s + L.s_u), *Lo = (float *)(void *)(s + L.s_lo);
    int32_t *cl = (int32_t *)(void *)(s + L.s_cl);
    float *cd = (float *)(void *)(s + L.s_cd);
    int ip = hdr->ip;
    float f = ip ? 1.0f : 2.0f, R = hdr->R;
    double gam = ((double)d + 8.0) * U24 * 1.01;
    if (hdr->i8 && !Kt->i8_tile) { /* built under another kernel table: still exact */
        for (size_t i = 0; i < nx; i++)
            ivfpq__coarse_search(x + i * d, 1, d, cents, cnorms, nlist, ip, nprobe,
                                 lists + i * nprobe, dists + i * nprobe, fscratch);
        return;
    }

    for (size_t i0 = 0; i0 < nx; i0 += QG) {
        size_t g = nx - i0 < QG ? nx - i0 : QG;
        if (!hdr->i8) memset(xq, 0, g * L.dp * sizeof(int16_t));
        for (size_t a = 0; a < g; a++) {
            const float *q = x + (i0 + a) * d;
            qrow r;
            float sq;
            if (hdr->i8) {
                sq = quant_row(Kt, q, mu, d, R, tmp, 0, &r);
                uint8_t *u = xu + a * L.dq;
                for (size_t j = 0; j < L.dq; j++) u[j] = (uint8_t)(j < d ? tmp[j] + 128 : 128);
            } else {
                sq = quant_row(Kt, q, mu, d, R, xq + a * L.dp, 0, &r);
            }
            double m = r.m, eq = r.err, qn = r.xnorm, qh = r.vnorm + eq; /* |q^| <= |q'| + |e_q| */
            /* B = a E_c + b N_c + K_c (see the top of the file) */
            qf[a * 4 + 0] = sq * f;
            qf[a * 4 + 1] = (float)(1.0001 * f * qh * (1.0 + 16.0 * U24));
            qf[a * 4 + 2] = (float)(1.0001 * f * (eq + gam * qn + 16.0 * U24 * qh));
            qf[a * 4 + 3] = (float)m;
        }
        if (hdr->i8) Kt->i8_tile(xu, g, cq8, corr, L.nb, L.dq, isc, L.rows);
        else Kt->i16_tile(xq, g, cq, L.nb, L.dp, isc, L.rows);

        for (size_t a = 0; a < g; a++) {
            size_t qi = i0 + a;
            const float *q = x + qi * d;
            const int32_t *row = isc + a * L.rows;
            float gq = qf[a * 4 + 0], A = qf[a * 4 + 1], B = qf[a * 4 + 2];
            int bad = !(qf[a * 4 + 3] <= 1e30f) || !(A <= 1e36f) || !(B <= 1e36f);
            /* bounds V +- B; tau = the nprobe-th smallest upper bound */
            float umin;
            int fin = bounds(row, H, sc, E, N, K, nlist, gq, A, B, U, Lo, &umin);
            size_t nc = 0;
            if (!bad && fin) {
                float tau;
                if (nprobe == 1) {
                    tau = umin;
                } else if (nprobe <= 16) {
                    /* the nprobe smallest in sorted order; few enter */
                    for (size_t j = 0; j < nprobe; j++) cd[j] = INFINITY;
                    for (size_t c = 0; c < nlist; c++) {
                        float u = U[c];
                        if (u >= cd[nprobe - 1]) continue;
                        size_t j = nprobe - 1;
                        for (; j > 0 && cd[j - 1] > u; j--) cd[j] = cd[j - 1];
                        cd[j] = u;
                    }
                    tau = cd[nprobe - 1];
                } else {
                    memcpy(cd, U, nlist * sizeof(float));
                    tau = kth_smallest(cd, nlist, nprobe);
                }
                nc = candidates(Lo, nlist, tau, cl);
                bad = nc < nprobe || nc > nlist / 4;
            }
            bad |= !fin;
            if (bad) {
                ivfpq__coarse_search(q, 1, d, cents, cnorms, nlist, ip, nprobe, lists + qi * nprobe,
                                     dists + qi * nprobe, fscratch);
                continue;
            }
            /* the candidates' scores exactly as kmeans.c computes them */
            for (size_t j = 0; j < nc; j++) {
                size_t c = (size_t)cl[j];
                float dot;
                Kt->dot_tile(q, 1, cents + c * d, 1, d, &dot, 1);
                float two = dot + dot;
                cd[j] = ip ? -dot : cnorms[c] - two;
            }
            ivfpq__coarse_pick(cd, cl, nc, nprobe, dists + qi * nprobe, lists + qi * nprobe);
        }
    }
}

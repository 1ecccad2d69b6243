/*
 * Index-factory strings with faiss's meaning (faiss/index_factory.cpp):
 *
 *   spec   := [coarse ","] code [",RFlat"]
 *   coarse := "IVF" <n> ["k" | "M"]              n >= 1 (k = x1024, M = x2^20)
 *   code   := "Flat" | "PQ" <M> "x4fs" ["r"] ["_32"]
 *
 * Case-sensitive, no spaces, like faiss. "x4fs" encodes raw vectors and
 * "x4fsr" residuals to the coarse centroid (IVF only). RFlat follows a PQ
 * code only. Every error message quotes the offending component.
 */
#include "internal.h"

#define MAX_TOKENS 8

typedef struct tok { const char *s; size_t len; } tok;

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Parses digits at s[*i]; at least one; no overflow beyond max. */
static int parse_num(const char *s, size_t len, size_t *i, size_t max, size_t *out)
{
    size_t v = 0, j = *i;
    if (j >= len || !is_digit(s[j])) return 0;
    for (; j < len && is_digit(s[j]); j++) {
        size_t dgt = (size_t)(s[j] - '0');
        if (v > (max - dgt) / 10) return -1; /* too large */
        v = v * 10 + dgt;
    }
    *i = j;
    *out = v;
    return 1;
}

static int tok_is(const tok *t, const char *lit)
{
    size_t n = strlen(lit);
    return t->len == n && memcmp(t->s, lit, n) == 0;
}

static int tok_prefix(const tok *t, const char *lit)
{
    size_t n = strlen(lit);
    return t->len >= n && memcmp(t->s, lit, n) == 0;
}

#define FAIL(...) ivfpq__fail(log, IVFPQ_E_PARSE, __VA_ARGS__)

static int parse_ivf(const char *spec, const tok *t, size_t *nlist, const ivfpq_log *log)
{
    char name[64];
    size_t i = 3, n = 0;
    int r = parse_num(t->s, t->len, &i, IVFPQ_MAX_NLIST, &n);
    size_t shown = t->len < 48 ? t->len : 48;
    memcpy(name, t->s, shown);
    name[shown] = '\0';
    if (r == 0)
        return FAIL("factory string \"%s\": '%s' needs a number of lists, as in IVF1024", spec,
                    name);
    if (r < 0)
        return FAIL("factory string \"%s\": too many lists in '%s' (at most %zu)", spec, name,
                    (size_t)IVFPQ_MAX_NLIST);
    if (i < t->len && (t->s[i] == 'k' || t->s[i] == 'M')) {
        size_t mult = t->s[i] == 'k' ? 1024 : (size_t)1 << 20;
        if (n > IVFPQ_MAX_NLIST / mult)
            return FAIL("factory string \"%s\": too many lists in '%s' (at most %zu)", spec,
                        name, (size_t)IVFPQ_MAX_NLIST);
        n *= mult;
        i++;
    }
    if (i != t->len)
        return FAIL("factory string \"%s\": unsupported coarse quantizer '%s' (libivfpq has "
                    "IVF<n> with a flat quantizer only)",
                    spec, name);
    if (n == 0) return FAIL("factory string \"%s\": '%s' must have at least 1 list", spec, name);
    *nlist = n;
    return IVFPQ_OK;
}

static int parse_pq(const char *spec, const tok *t, int d, size_t *M, int *residual,
                    const ivfpq_log *log)
{
    char name[64];
    size_t shown = t->len < 48 ? t->len : 48;
    memcpy(name, t->s, shown);
    name[shown] = '\0';
    size_t i = 2, m = 0;
    int r = parse_num(t->s, t->len, &i, (size_t)IVFPQ_MAX_D, &m);
    if (r == 0)
        return FAIL("factory string \"%s\": '%s' needs a number of sub-quantizers, as in "
                    "PQ32x4fs",
                    spec, name);
    if (r < 0) return FAIL("factory string \"%s\": '%s': M too large", spec, name);
    static const char fs[] = "x4fs";
    if (t->len - i < 4 || memcmp(t->s + i, fs, 4) != 0)
        return FAIL("factory string \"%s\": unsupported code '%s' (libivfpq supports 4-bit "
                    "FastScan PQ only: PQ<M>x4fs or PQ<M>x4fsr)",
                    spec, name);
    i += 4;
    *residual = 0;
    if (i < t->len && t->s[i] == 'r') {
        *residual = 1;
        i++;
    }
    if (i < t->len && t->s[i] == '_') {
        size_t bbs = 0;
        i++;
        r = parse_num(t->s, t->len, &i, 1u << 20, &bbs);
        if (r <= 0 || i != t->len)
            return FAIL("factory string \"%s\": bad block size in '%s'", spec, name);
        if (bbs != IVFPQ_BBS)
            return FAIL("factory string \"%s\": block size %zu in '%s' is not supported "
                        "(libivfpq uses 32)",
                        spec, bbs, name);
    }
    if (i != t->len)
        return FAIL("factory string \"%s\": unexpected characters in '%s'", spec, name);
    if (m == 0) return FAIL("factory string \"%s\": '%s' must have M >= 1", spec, name);
    if ((size_t)d % m != 0)
        return FAIL("factory string \"%s\": M=%zu in '%s' does not divide d=%d", spec, m, name,
                    d);
    *M = m;
    return IVFPQ_OK;
}

int ivfpq__parse_factory(const char *spec, int d, ivfpq_spec *out, const ivfpq_log *log)
{
    tok t[MAX_TOKENS];
    size_t nt = 0;
    ivfpq_spec s;
    memset(&s, 0, sizeof s);
    s.nlist = 1;

    if (!spec) return ivfpq__fail(log, IVFPQ_E_INVALID_ARG, "factory string is NULL");
    size_t len = strlen(spec);
    if (len == 0) return FAIL("factory string is empty (try \"IVF1024,PQ32x4fs,RFlat\")");
    if (len > 256) return FAIL("factory string is longer than 256 characters");
    for (size_t a = 0;;) {
        size_t b = a;
        while (b < len && spec[b] != ',') b++;
        if (nt == MAX_TOKENS) return FAIL("factory string \"%s\" has too many components", spec);
        t[nt].s = spec + a;
        t[nt].len = b - a;
        if (b == a)
            return FAIL("factory string \"%s\": empty component at position %zu", spec, nt + 1);
        for (size_t c = a; c < b; c++)
            if (spec[c] == ' ' || spec[c] == '\t')
                return FAIL("factory string \"%s\": whitespace in component %zu", spec, nt + 1);
        nt++;
        if (b == len) break;
        a = b + 1;
    }

    size_t i = 0;
    int rc;
    if (tok_prefix(&t[0], "IVF")) {
        if ((rc = parse_ivf(spec, &t[0], &s.nlist, log)) != IVFPQ_OK) return rc;
        s.has_ivf = 1;
        i = 1;
        if (nt == 1)
            return FAIL("factory string \"%s\": 'IVF' must be followed by a code, as in "
                        "IVF%zu,Flat or IVF%zu,PQ32x4fs",
                        spec, s.nlist, s.nlist);
    }
    char name[64];
    size_t shown = t[i].len < 48 ? t[i].len : 48;
    memcpy(name, t[i].s, shown);
    name[shown] = '\0';
    if (tok_is(&t[i], "Flat")) {
        s.has_pq = 0;
    } else if (tok_prefix(&t[i], "PQ")) {
        if ((rc = parse_pq(spec, &t[i], d, &s.M, &s.by_residual, log)) != IVFPQ_OK) return rc;
        s.has_pq = 1;
        if (s.by_residual && !s.has_ivf)
            return FAIL("factory string \"%s\": '%s' encodes residuals to a coarse centroid, "
                        "which needs an IVF<n> prefix",
                        spec, name);
    } else {
        return FAIL("factory string \"%s\": unknown or unsupported component '%s' (libivfpq "
                    "knows Flat, IVF<n>, PQ<M>x4fs[r], RFlat)",
                    spec, name);
    }
    i++;
    if (i < nt && tok_is(&t[i], "RFlat")) {
        if (!s.has_pq)
            return FAIL("factory string \"%s\": RFlat re-ranks PQ codes, but the codes here are "
                        "already exact (Flat)",
                        spec);
        s.refine = 1;
        i++;
    }
    if (i < nt) {
        shown = t[i].len < 48 ? t[i].len : 48;
        memcpy(name, t[i].s, shown);
        name[shown] = '\0';
        return FAIL("factory string \"%s\": unexpected component '%s'", spec, name);
    }
    *out = s;
    return IVFPQ_OK;
}

void ivfpq__spec_string(const ivfpq_spec *s, char *buf, size_t size)
{
    char ivf[32] = "", code[40];
    if (s->has_ivf) ivfpq__snprintf(ivf, sizeof ivf, "IVF%zu,", s->nlist);
    if (s->has_pq)
        ivfpq__snprintf(code, sizeof code, "PQ%zux4fs%s", s->M, s->by_residual ? "r" : "");
    else
        ivfpq__snprintf(code, sizeof code, "Flat");
    ivfpq__snprintf(buf, size, "%s%s%s", ivf, code, s->refine ? ",RFlat" : "");
}

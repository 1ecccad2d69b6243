/*
 * Helper of tests/cli_test.sh, independent of the tool's own computations:
 *
 *   cli_check gen DIR            small data sets in every format (see below)
 *   cli_check knn BASE QUERY K l2|ip|cos OUT.ivecs
 *                                brute-force k-NN in double precision
 *   cli_check same A.ivecs B.ivecs     exit 0 if the two id files are equal
 *   cli_check perturb GT.ivecs K OUT.ivecs
 *                                a wrong "ground truth" whose R@1 and k-R@k for
 *                                exact results are known; prints them
 *   cli_check json FILE KEY=VAL... [-- FIELD=VALUE...]
 *                                the one row matching KEY=VAL has FIELD=VALUE
 *                                (numbers within 1e-5)
 *   cli_check bad DIR            malformed input files
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "synth.h"

static int die(const char *msg)
{
    fprintf(stderr, "cli_check: %s\n", msg);
    return 1;
}

static int put(const char *dir, const char *name, vec_dtype t, const void *x, size_t n, size_t d)
{
    char path[1024], err[768];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (vec_write(path, t, x, n, d, err, sizeof err)) return die(err);
    return 0;
}

static int put_raw(const char *dir, const char *name, const void *b, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f)) return die(path);
    return 0;
}

static void le32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

/* base/query: clustered floats (no distance ties in practice);
 * ibase.* / iquery: integer values 0..255 in the uint8 formats too. */
static int gen(const char *dir)
{
    const size_t n = 2000, nq = 50, d = 16;
    float *x = malloc((n + nq) * d * sizeof(float));
    if (!x || synth_generate(n + nq, d, 20, 99, x)) return die("out of memory");
    if (put(dir, "base.fvecs", VEC_FLOAT32, x, n, d) || put(dir, "query.fvecs", VEC_FLOAT32, x + n * d, nq, d))
        return 1;
    if (put(dir, "query.npy", VEC_FLOAT32, x + n * d, nq, d)) return 1;
    synth_rng r;
    synth_seed(&r, 5);
    unsigned char *u = malloc((n + nq) * d), *bv = malloc(n * (d + 4)), *ub = malloc(8 + n * d);
    for (size_t i = 0; i < (n + nq) * d; i++) {
        u[i] = (unsigned char)(synth_next(&r) % 256);
        x[i] = (float)u[i];
    }
    for (size_t i = 0; i < n; i++) {
        le32(bv + i * (d + 4), (uint32_t)d);
        memcpy(bv + i * (d + 4) + 4, u + i * d, d);
    }
    le32(ub, (uint32_t)n);
    le32(ub + 4, (uint32_t)d);
    memcpy(ub + 8, u, n * d);
    int rc = put(dir, "ibase.fvecs", VEC_FLOAT32, x, n, d) || put(dir, "ibase.npy", VEC_FLOAT32, x, n, d) ||
             put(dir, "ibase.fbin", VEC_FLOAT32, x, n, d) || put(dir, "iquery.fvecs", VEC_FLOAT32, x + n * d, nq, d) ||
             put_raw(dir, "ibase.bvecs", bv, n * (d + 4)) || put_raw(dir, "ibase.u8bin", ub, 8 + n * d);
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/ibase_dir", dir);
    mkdir(sub, 0755);
    /* uneven parts, names sorted differently from creation order */
    rc = rc || put(sub, "utt_02.npy", VEC_FLOAT32, x + 1500 * d, 500, d) ||
         put(sub, "utt_00.npy", VEC_FLOAT32, x, 700, d) || put(sub, "utt_01.npy", VEC_FLOAT32, x + 700 * d, 800, d);
    free(x);
    free(u);
    free(bv);
    free(ub);
    return rc;
}

static int bad(const char *dir)
{
    /* float64 npy, fortran order, truncated, LFS pointer, dir with d mismatch */
    const char *hdr[] = {"{'descr': '<f8', 'fortran_order': False, 'shape': (4, 16), }",
                         "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 16), }",
                         "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 16), }"};
    const char *names[] = {"f8.npy", "fortran.npy", "trunc.npy"};
    size_t data[] = {4 * 16 * 8, 4 * 16 * 4, 4 * 16 * 4 - 10};
    for (int i = 0; i < 3; i++) {
        unsigned char b[1024] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 118, 0};
        memset(b + 10, ' ', 118);
        memcpy(b + 10, hdr[i], strlen(hdr[i]));
        b[127] = '\n';
        if (put_raw(dir, names[i], b, 128 + data[i])) return 1;
    }
    const char lfs[] = "version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 99\n";
    if (put_raw(dir, "lfs.npy", lfs, sizeof lfs - 1)) return 1;
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/mixdir", dir);
    mkdir(sub, 0755);
    float x[4 * 16] = {0};
    return put(sub, "a.npy", VEC_FLOAT32, x, 4, 16) || put(sub, "b.npy", VEC_FLOAT32, x, 4, 15);
}

typedef struct cand { double dist; int32_t id; } cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int knn(const char *bp, const char *qp, size_t k, const char *metric, const char *out)
{
    vec_matrix b, q;
    char err[768];
    if (vec_read_float(bp, &b, err, sizeof err) || vec_read_float(qp, &q, err, sizeof err)) return die(err);
    int ip = strcmp(metric, "l2") != 0, cosine = !strcmp(metric, "cos");
    const float *xb = b.data, *xq = q.data;
    double *nb = calloc(b.n, sizeof *nb);
    for (size_t i = 0; i < b.n && cosine; i++) {
        double s = 0;
        for (size_t j = 0; j < b.d; j++) s += (double)xb[i * b.d + j] * xb[i * b.d + j];
        nb[i] = s > 0 ? sqrt(s) : 1;
    }
    cand *c = malloc(b.n * sizeof *c);
    int32_t *res = malloc(q.n * k * sizeof *res);
    for (size_t i = 0; i < q.n; i++) {
        for (size_t j = 0; j < b.n; j++) {
            double s = 0;
            for (size_t t = 0; t < b.d; t++) {
                double u = xq[i * q.d + t], v = xb[j * b.d + t];
                s += ip ? u * v : (u - v) * (u - v);
            }
            if (cosine) s /= nb[j]; /* query norm does not change the order */
            c[j].dist = ip ? -s : s;
            c[j].id = (int32_t)j;
        }
        qsort(c, b.n, sizeof *c, cmp_cand);
        for (size_t t = 0; t < k; t++) res[i * k + t] = c[t].id;
    }
    int rc = vec_write(out, VEC_INT32, res, q.n, k, err, sizeof err) ? die(err) : 0;
    free(nb);
    free(c);
    free(res);
    vec_free(&b);
    vec_free(&q);
    return rc;
}

static int same(const char *a, const char *b)
{
    vec_matrix x, y;
    char err[768];
    if (vec_read_int(a, &x, err, sizeof err) || vec_read_int(b, &y, err, sizeof err)) return die(err);
    int eq = x.n == y.n && x.d == y.d && !memcmp(x.data, y.data, x.n * x.d * 4);
    if (!eq) fprintf(stderr, "cli_check: %s and %s differ\n", a, b);
    vec_free(&x);
    vec_free(&y);
    return !eq;
}

/* Query i: even i keeps the true list but rotates it by one (the true first
 * moves to the end: R@1 miss, all k still there); i % 4 == 1 replaces the
 * second half by ids not in the true list; others stay exact. */
static int perturb(const char *in, size_t k, const char *out)
{
    vec_matrix g;
    char err[768];
    if (vec_read_int(in, &g, err, sizeof err)) return die(err);
    if (g.d < k) return die("ground truth narrower than k");
    int32_t *o = malloc(g.n * k * sizeof *o), *gi = g.data;
    size_t hit1 = 0, hitk = 0;
    for (size_t i = 0; i < g.n; i++) {
        int32_t *t = gi + i * g.d, *r = o + i * k;
        if (i % 2 == 0) {
            for (size_t j = 0; j < k; j++) r[j] = t[(j + 1) % k];
            hitk += k;
        } else if (i % 4 == 1) {
            int32_t fresh = 0;
            for (size_t j = 0; j < k; j++) {
                if (j < k / 2) {
                    r[j] = t[j];
                    continue;
                }
                for (;; fresh++) { /* an id outside the true top-k */
                    int in_true = 0;
                    for (size_t u = 0; u < k; u++) in_true |= t[u] == fresh;
                    if (!in_true) break;
                }
                r[j] = fresh++;
            }
            hit1++;
            hitk += k / 2;
        } else {
            memcpy(r, t, k * sizeof *r);
            hit1++;
            hitk += k;
        }
    }
    int rc = vec_write(out, VEC_INT32, o, g.n, k, err, sizeof err) ? die(err) : 0;
    printf("%.6f %.6f\n", (double)hit1 / (double)g.n, (double)hitk / (double)(g.n * k));
    free(o);
    vec_free(&g);
    return rc;
}

static int field_is(const cli_row *r, const char *kv, int *ok)
{
    const char *eq = strchr(kv, '=');
    if (!eq) return -1;
    size_t kl = (size_t)(eq - kv);
    const char *v = eq + 1;
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)kl, kv);
    double num = strtod(v, NULL);
    struct { const char *k; double x; } nums[] = {
        {"nprobe", (double)r->nprobe}, {"k_factor", r->k_factor}, {"threads", r->threads},
        {"recall_at_1", r->recall_at_1}, {"k_recall_at_k", r->k_recall_at_k}, {"k", (double)r->k},
        {"d", (double)r->d}, {"nb", (double)r->nb}, {"nq", (double)r->nq},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (!strcmp(key, nums[i].k)) {
            *ok = fabs(nums[i].x - num) <= 1e-5;
            return 0;
        }
    struct { const char *k; const char *s; } strs[] = {
        {"factory", r->factory}, {"metric", r->metric}, {"engine", r->engine}, {"simd", r->simd}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (!strcmp(key, strs[i].k)) {
            *ok = !strcmp(strs[i].s, v);
            return 0;
        }
    if (!strcmp(key, "qps")) { /* qps=+ : a positive number */
        *ok = isfinite(r->qps) && r->qps > 0;
        return 0;
    }
    return -1;
}

static int json(int argc, char **argv)
{
    cli_row *rows;
    size_t n;
    if (cli_rows_read(argv[0], &rows, &n)) return 1;
    int sep = argc;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) sep = i;
    size_t found = 0, at = 0;
    for (size_t r = 0; r < n; r++) {
        int all = 1;
        for (int i = 1; i < sep; i++) {
            int ok;
            if (field_is(&rows[r], argv[i], &ok)) return die("unknown field");
            all &= ok;
        }
        if (all) {
            found++;
            at = r;
        }
    }
    if (found != 1) {
        fprintf(stderr, "cli_check: %zu rows of %s match the selection\n", found, argv[0]);
        free(rows);
        return 1;
    }
    int rc = 0;
    for (int i = sep + 1; i < argc; i++) {
        int ok;
        if (field_is(&rows[at], argv[i], &ok)) return die("unknown field");
        if (!ok) {
            fprintf(stderr, "cli_check: %s: expected %s (R@1 %.6f, k-R@k %.6f)\n", argv[0], argv[i],
                    rows[at].recall_at_1, rows[at].k_recall_at_k);
            rc = 1;
        }
    }
    free(rows);
    return rc;
}

int main(int argc, char **argv)
{
    cli_prog = "cli_check";
    if (argc >= 3 && !strcmp(argv[1], "gen")) return gen(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "bad")) return bad(argv[2]);
    if (argc == 7 && !strcmp(argv[1], "knn")) return knn(argv[2], argv[3], strtoul(argv[4], NULL, 10), argv[5], argv[6]);
    if (argc == 4 && !strcmp(argv[1], "same")) return same(argv[2], argv[3]);
    if (argc == 5 && !strcmp(argv[1], "perturb")) return perturb(argv[2], strtoul(argv[3], NULL, 10), argv[4]);
    if (argc >= 3 && !strcmp(argv[1], "json")) return json(argc - 2, argv + 2);
    return die("usage: see tests/cli_check.c");
}

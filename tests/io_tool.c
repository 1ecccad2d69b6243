/*
 * Small command-line helper for the faiss interoperability scripts
 * (tests/faiss_interop.py, tests/data/make_faiss_fixtures.py): build,
 * convert and search index files with the public API only. Raw arrays are
 * little-endian float32 / int64 files.
 *
 *   io_tool search  INDEX QUERIES.f32 NQ K NPROBE K_FACTOR OUT   [zerocopy]
 *                   OUT = distances [NQ*K] f32 then labels [NQ*K] i64
 *   io_tool convert IN OUT native|faiss
 *   io_tool build   SPEC METRIC(0 ip|1 l2) VECTORS.f32 N D OUT native|faiss [IDS.i64]
 *   io_tool info    INDEX
 *   io_tool synth   N D SEED OUT.f32        clustered synthetic vectors (tools/synth.c)
 * Exit status 0 on success; errors go to stderr with the library's message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivfpq.h"
#include "synth.h"

static void log_fn(void *user, int level, int status, const char *msg)
{
    (void)user;
    if (level == IVFPQ_LOG_ERROR) fprintf(stderr, "io_tool: %s (%s)\n", msg, ivfpq_strerror(status));
}

static void *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return p;
}

static const ivfpq_load_options kLoad = {{0}, log_fn, NULL, 0};

static int fmt_of(const char *s) { return strcmp(s, "faiss") == 0 ? IVFPQ_FORMAT_FAISS : IVFPQ_FORMAT_NATIVE; }

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: see tests/io_tool.c\n");
        return 2;
    }
    ivfpq_index *idx = NULL;
    int rc = 0;
    if (!strcmp(argv[1], "search") && argc >= 9) {
        unsigned flags = argc > 9 && !strcmp(argv[9], "zerocopy") ? IVFPQ_LOAD_ZERO_COPY : 0;
        if ((rc = ivfpq_load_file(&idx, argv[2], flags, &kLoad))) return 1;
        size_t qlen, nq = strtoul(argv[4], NULL, 10), k = strtoul(argv[5], NULL, 10);
        float *q = read_all(argv[3], &qlen);
        if (!q || qlen != nq * (size_t)ivfpq_dim(idx) * sizeof(float)) {
            fprintf(stderr, "io_tool: bad query file\n");
            return 1;
        }
        ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
        p.nprobe = strtoul(argv[6], NULL, 10);
        p.k_factor = strtof(argv[7], NULL);
        float *D = malloc(nq * k * sizeof(float));
        int64_t *I = malloc(nq * k * sizeof(int64_t));
        if ((rc = ivfpq_search(idx, nq, q, k, &p, D, I))) return 1;
        FILE *f = fopen(argv[8], "wb");
        if (!f || fwrite(D, sizeof(float), nq * k, f) != nq * k ||
            fwrite(I, sizeof(int64_t), nq * k, f) != nq * k || fclose(f))
            return 1;
        free(q);
        free(D);
        free(I);
    } else if (!strcmp(argv[1], "convert") && argc >= 5) {
        if ((rc = ivfpq_load_file(&idx, argv[2], 0, &kLoad))) return 1;
        if ((rc = ivfpq_save_file(idx, argv[3], (ivfpq_file_format)fmt_of(argv[4])))) return 1;
    } else if (!strcmp(argv[1], "build") && argc >= 9) {
        ivfpq_options o;
        memset(&o, 0, sizeof o);
        o.log = log_fn;
        size_t n = strtoul(argv[5], NULL, 10), d = strtoul(argv[6], NULL, 10), len, ilen;
        float *x = read_all(argv[4], &len);
        int64_t *ids = argc > 9 ? read_all(argv[9], &ilen) : NULL;
        if (!x || len != n * d * sizeof(float)) return 1;
        if ((rc = ivfpq_index_factory(&idx, (int)d, argv[2], (ivfpq_metric)atoi(argv[3]), &o)) ||
            (rc = ivfpq_train(idx, n, x)) || (rc = ivfpq_add(idx, n, x, ids)) ||
            (rc = ivfpq_save_file(idx, argv[7], (ivfpq_file_format)fmt_of(argv[8]))))
            return 1;
        free(x);
        free(ids);
    } else if (!strcmp(argv[1], "synth") && argc >= 6) {
        size_t n = strtoul(argv[2], NULL, 10), d = strtoul(argv[3], NULL, 10);
        float *x = malloc(n * d * sizeof(float));
        if (!x || synth_generate(n, d, 10, strtoull(argv[4], NULL, 10), x)) return 1;
        FILE *f = fopen(argv[5], "wb");
        if (!f || fwrite(x, sizeof(float), n * d, f) != n * d || fclose(f)) return 1;
        free(x);
        return 0;
    } else if (!strcmp(argv[1], "info")) {
        if ((rc = ivfpq_load_file(&idx, argv[2], 0, &kLoad))) return 1;
        ivfpq_info in;
        ivfpq_get_info(idx, &in);
        printf("%s d=%d metric=%d ntotal=%zu trained=%d\n", in.factory, in.d, (int)in.metric,
               in.ntotal, in.is_trained);
    } else {
        fprintf(stderr, "io_tool: bad command\n");
        return 2;
    }
    ivfpq_free(idx);
    return 0;
}

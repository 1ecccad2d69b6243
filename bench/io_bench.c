/*
 * Load speed of index files: copy vs zero-copy, native vs faiss, with and
 * without checksum verification; CRC32C throughput.
 *
 *   io_bench build FILE [-n N] [-d D] [-f SPEC]   synthetic RVC-like index -> FILE (native)
 *                                                  and FILE.faiss
 *   io_bench time FILE [-r REPS]                   time the loads (best of REPS)
 *
 * Default: 200,000 x 256, IVF1024,PQ128x4fs,RFlat (~220 MB). Each timed
 * load also runs one query so nothing can be deferred.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h" /* internal: CRC32C paths for the throughput line */
#include "ivfpq.h"
#include "synth.h"

static void die(const char *what, int rc)
{
    fprintf(stderr, "io_bench: %s: %s\n", what, ivfpq_strerror(rc));
    exit(1);
}

static void on_log(void *user, int level, int status, const char *msg)
{
    (void)user;
    (void)status;
    if (level == IVFPQ_LOG_ERROR) fprintf(stderr, "io_bench: %s\n", msg);
}

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) die(path, IVFPQ_E_IO);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = aligned_alloc(64, ((size_t)n + 63) / 64 * 64);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) die("read", IVFPQ_E_IO);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static float g_q[4096];

static void touch(ivfpq_index *idx)
{
    float D[10];
    int64_t I[10];
    ivfpq_search_params p = IVFPQ_SEARCH_PARAMS_DEFAULT;
    int rc = ivfpq_search(idx, 1, g_q, 10, &p, D, I);
    if (rc) die("search", rc);
}

typedef struct job {
    const char *name;
    int from_file;
    const char *path;
    const void *buf;
    size_t len;
    unsigned flags;
} job;

static double run(const job *j, int reps)
{
    ivfpq_load_options o = {{0}, on_log, NULL, 0};
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        ivfpq_index *idx;
        double t0 = synth_now();
        int rc = j->from_file ? ivfpq_load_file(&idx, j->path, j->flags, &o)
                              : ivfpq_load_from_buffer(&idx, j->buf, j->len, j->flags, &o);
        if (rc) die(j->name, rc);
        double t = synth_now() - t0;
        touch(idx);
        ivfpq_free(idx);
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: io_bench build|time FILE [options]\n");
        return 2;
    }
    const char *cmd = argv[1], *path = argv[2], *spec = "IVF1024,PQ128x4fs,RFlat";
    size_t n = 200000, d = 256;
    int reps = 5;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n")) n = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-d")) d = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-f")) spec = argv[i + 1];
        else if (!strcmp(argv[i], "-r")) reps = atoi(argv[i + 1]);
    }
    char fpath[1024];
    snprintf(fpath, sizeof fpath, "%s.faiss", path);
    if (!strcmp(cmd, "build")) {
        float *x = malloc(n * d * sizeof(float));
        if (!x || synth_generate(n, d, 1000, 42, x)) die("synth", IVFPQ_E_NOMEM);
        ivfpq_options o;
        memset(&o, 0, sizeof o);
        o.log = on_log;
        ivfpq_index *idx;
        int rc;
        size_t nt = n < 65536 ? n : 65536;
        if ((rc = ivfpq_index_factory(&idx, (int)d, spec, IVFPQ_METRIC_L2, &o))) die("factory", rc);
        double t0 = synth_now();
        if ((rc = ivfpq_train(idx, nt, x))) die("train", rc);
        if ((rc = ivfpq_add(idx, n, x, NULL))) die("add", rc);
        printf("built %s, %zu x %zu in %.1f s\n", spec, n, d, synth_now() - t0);
        if ((rc = ivfpq_save_file(idx, path, IVFPQ_FORMAT_NATIVE))) die("save", rc);
        if ((rc = ivfpq_save_file(idx, fpath, IVFPQ_FORMAT_FAISS))) die("save faiss", rc);
        ivfpq_free(idx);
        free(x);
        return 0;
    }
    size_t len, flen;
    void *buf = slurp(path, &len), *fbuf = slurp(fpath, &flen);
    printf("native %s: %.1f MB; faiss %s: %.1f MB; best of %d\n", path, len / 1e6, fpath, flen / 1e6, reps);
    job jobs[] = {
        {"memory, copy (native)", 0, NULL, buf, len, 0},
        {"memory, zero-copy (native)", 0, NULL, buf, len, IVFPQ_LOAD_ZERO_COPY},
        {"memory, zero-copy, skip checksums", 0, NULL, buf, len,
         IVFPQ_LOAD_ZERO_COPY | IVFPQ_LOAD_SKIP_CHECKSUMS},
        {"memory, copy (faiss format)", 0, NULL, fbuf, flen, 0},
        {"file, copy (native)", 1, path, NULL, 0, 0},
        {"file, mmap zero-copy (native)", 1, path, NULL, 0, IVFPQ_LOAD_ZERO_COPY},
        {"file, mmap zero-copy, skip checksums", 1, path, NULL, 0,
         IVFPQ_LOAD_ZERO_COPY | IVFPQ_LOAD_SKIP_CHECKSUMS},
        {"file, copy (faiss format)", 1, fpath, NULL, 0, 0},
    };
    for (size_t i = 0; i < sizeof jobs / sizeof *jobs; i++) {
        size_t bytes = jobs[i].len ? jobs[i].len : (jobs[i].path == fpath ? flen : len);
        double t = run(&jobs[i], reps);
        printf("  %-40s %8.2f ms  %6.2f GB/s\n", jobs[i].name, t * 1e3, bytes / t / 1e9);
    }
    double t0 = synth_now();
    uint32_t c = ivfpq__crc32c(0, buf, len);
    double th = synth_now() - t0;
    t0 = synth_now();
    uint32_t c2 = ivfpq__crc32c_sw(0, buf, len);
    double ts = synth_now() - t0;
    printf("  CRC32C %s: %.2f GB/s; tables: %.2f GB/s (%s)\n",
           ivfpq__crc32c_hw_available() ? "instructions" : "(no hardware)", len / th / 1e9,
           len / ts / 1e9, c == c2 ? "same value" : "MISMATCH");
    free(buf);
    free(fbuf);
    return 0;
}

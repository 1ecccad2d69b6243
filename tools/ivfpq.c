/*
 * ivfpq — command-line front end of libivfpq.
 *
 *   ivfpq build   -f SPEC -i BASE -o INDEX      train, add, save
 *   ivfpq search  -x INDEX -q QUERIES -k K ...  search, recall, speed, result ids
 *   ivfpq bench   -i BASE -q QUERIES -f SPEC... sweep (tools/bench.c)
 *   ivfpq info    INDEX | --cpu                 what an index holds; SIMD levels
 *   ivfpq convert IN OUT [--format F]           native <-> faiss index files
 *   ivfpq plot    -o OUT.svg JSONL...           redraw a benchmark plot
 *
 * Index files need the library's ivfpq_save_file/ivfpq_load_file; the
 * Makefile defines CLI_HAVE_IO when include/ivfpq.h declares them.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "synth.h"

static const char MAIN_USAGE[] =
    "usage: ivfpq COMMAND [options]     (ivfpq COMMAND --help for its options)\n"
    "\n"
    "  build    train an index on vectors and save it\n"
    "  search   search an index with query vectors; recall, QPS, latency, result ids\n"
    "  bench    build indexes and sweep nprobe / k_factor; Markdown, JSON lines, SVG plot\n"
    "  info     describe an index file, or this CPU's SIMD levels (--cpu)\n"
    "  convert  rewrite an index file in the native or the faiss format\n"
    "  plot     draw recall vs QPS from JSON lines of bench and compare_faiss.py\n"
    "  version  print the library version\n"
    "\n"
    "Vector files: .npy (float32, C order), .fvecs, .bvecs, .fbin, .u8bin, or a directory of .npy\n"
    "files (concatenated in name order); ids: .ivecs, .ibin, .npy.\n"
    "\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error, 3 bad input file.\n";

static int want_help(const char *a)
{
    return !strcmp(a, "-h") || !strcmp(a, "--help");
}

/* ---------------------------------------------------------------- info */

static const char INFO_USAGE[] =
    "usage: ivfpq info INDEX [--mmap]\n"
    "       ivfpq info --cpu\n"
    "\n"
    "INDEX: kind, dimension, metric, nlist, M, vectors, memory, factory string.\n"
    "--cpu: CPU model, the SIMD levels this build and CPU support, and the one in use\n"
    "       (override with the environment variable IVFPQ_SIMD=scalar|sse|avx2|avx512|neon).\n"
    "\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error, 3 bad input file.\n";

static void print_simd(void)
{
    ivfpq_simd_level act = ivfpq_simd_init();
    printf("simd in use:   %s\n", ivfpq_simd_name(act));
    printf("simd levels:  ");
    for (int l = IVFPQ_SIMD_SCALAR; l <= IVFPQ_SIMD_NEON; l++)
        if (ivfpq_simd_supported((ivfpq_simd_level)l)) printf(" %s", ivfpq_simd_name((ivfpq_simd_level)l));
    printf("\n");
}

#ifdef CLI_HAVE_IO
static const char *kind_name(ivfpq_kind k)
{
    switch (k) {
    case IVFPQ_KIND_FLAT: return "Flat (exact)";
    case IVFPQ_KIND_IVF_FLAT: return "IVF,Flat";
    case IVFPQ_KIND_PQ4FS: return "PQ 4-bit FastScan";
    case IVFPQ_KIND_IVF_PQ4FS: return "IVF + PQ 4-bit FastScan";
    default: return "?";
    }
}

static int load_index(const char *path, int mmap, ivfpq_index **idx)
{
    ivfpq_load_options lo;
    memset(&lo, 0, sizeof lo);
    lo.log = cli_log;
    int st = ivfpq_load_file(idx, path, mmap ? IVFPQ_LOAD_ZERO_COPY : 0, &lo);
    if (st) return cli_error(st == IVFPQ_E_IO ? CLI_EXIT_INPUT : cli_exit_for_status(st), "%s: %s", path,
                             cli_why(st));
    return 0;
}
#endif

#ifndef CLI_HAVE_IO
static int no_io(void)
{
    return cli_error(CLI_EXIT_RUNTIME,
                     "index files are not supported by this build: the library has no ivfpq_save_file/"
                     "ivfpq_load_file yet (use `ivfpq bench`, which builds in memory)");
}
#endif

static int cmd_info(int argc, char **argv)
{
    cli_prog = "ivfpq info";
    const char *path = NULL;
    int cpu = 0, mmap = 0;
    const cli_optdef defs[] = {
        {NULL, "--cpu", CLI_OPT_FLAG, &cpu},
        {NULL, "--mmap", CLI_OPT_FLAG, &mmap},
        {"-q", "--quiet", CLI_OPT_FLAG, &cli_quiet},
        {NULL, NULL, CLI_OPT_FLAG, NULL},
    };
    int prc = cli_parse_args(argc, argv, defs, INFO_USAGE, &path, 1);
    if (prc) return prc < 0 ? 0 : prc;
    if (!cpu && !path) return cli_error(CLI_EXIT_USAGE, "needs an index file or --cpu (see --help)");
    if (cpu) {
        printf("libivfpq:      %s\n", ivfpq_version_string());
        printf("cpu:           %s\n", cli_cpu_model());
        print_simd();
        const char *env = getenv("IVFPQ_SIMD");
        if (env) printf("IVFPQ_SIMD:    %s\n", env);
        printf("compiler:      %s\n", cli_compiler());
    }
    if (!path) return 0;
#ifdef CLI_HAVE_IO
    ivfpq_index *idx;
    int rc = load_index(path, mmap, &idx);
    if (rc) return rc;
    ivfpq_info in;
    ivfpq_get_info(idx, &in);
    if (cpu) printf("\n");
    printf("file:          %s\n", path);
    printf("factory:       %s\n", in.factory);
    printf("kind:          %s%s%s\n", kind_name(in.kind), in.by_residual ? ", residuals" : "",
           in.refine ? ", exact refine (RFlat)" : "");
    printf("d:             %d\n", in.d);
    printf("metric:        %s\n", in.metric == IVFPQ_METRIC_L2 ? "l2 (squared)" : "inner product");
    printf("nlist:         %zu\n", in.nlist);
    printf("M:             %zu\n", in.M);
    printf("ntotal:        %zu\n", in.ntotal);
    printf("trained:       %s\n", in.is_trained ? "yes" : "no");
    printf("memory:        %zu bytes (%.1f MB, %.1f bytes/vector)\n", in.memory_bytes, (double)in.memory_bytes / 1e6,
           in.ntotal ? (double)in.memory_bytes / (double)in.ntotal : 0.0);
    if (!cpu) print_simd();
    ivfpq_free(idx);
    return 0;
#else
    (void)mmap;
    return no_io();
#endif
}

/* --------------------------------------------------------------- build */

static const char BUILD_USAGE[] =
    "usage: ivfpq build -f SPEC -i BASE -o INDEX [options]\n"
    "\n"
    "Trains the index on the base vectors (all, or a seeded sample), adds them all, saves it.\n"
    "\n"
    "  -f, --factory SPEC    e.g. \"IVF1024,PQ128x4fs,RFlat\", \"IVF1024,Flat\", \"Flat\"\n"
    "  -i, --base PATH       .npy, .fvecs, .bvecs, .fbin, .u8bin, or a directory of .npy files\n"
    "  -o, --output PATH     index file to write\n"
    "  -m, --metric M        l2 (default), ip, or cos (normalize, then inner product; search\n"
    "                        with -m cos too)\n"
    "      --train-rows N    train on a seeded random sample of N rows (default: all rows)\n"
    "      --seed S          seed of the sample and of training (default 1234)\n"
    "      --format F        native (default) or faiss\n"
    "  -q, --quiet           no progress bars or notes\n"
    "\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error, 3 bad input file.\n";

static int cmd_build(int argc, char **argv)
{
    cli_prog = "ivfpq build";
    const char *spec = NULL, *base = NULL, *out = NULL, *metric_s = "l2", *format = "native";
    size_t train_rows = 0, seed = 1234;
    const cli_optdef defs[] = {
        {"-f", "--factory", CLI_OPT_STR, &spec},
        {"-i", "--base", CLI_OPT_STR, &base},
        {"-o", "--output", CLI_OPT_STR, &out},
        {"-m", "--metric", CLI_OPT_STR, &metric_s},
        {NULL, "--train-rows", CLI_OPT_SIZE, &train_rows},
        {NULL, "--seed", CLI_OPT_SIZE, &seed},
        {NULL, "--format", CLI_OPT_STR, &format},
        {"-q", "--quiet", CLI_OPT_FLAG, &cli_quiet},
        {NULL, NULL, CLI_OPT_FLAG, NULL},
    };
    int prc = cli_parse_args(argc, argv, defs, BUILD_USAGE, NULL, 0);
    if (prc) return prc < 0 ? 0 : prc;
    if (!spec || !base || !out) return cli_error(CLI_EXIT_USAGE, "needs -f SPEC, -i BASE and -o INDEX (see --help)");
    int cosine;
    ivfpq_metric metric;
    if (cli_parse_metric(metric_s, &cosine, &metric)) return CLI_EXIT_USAGE;
    if (strcmp(format, "native") && strcmp(format, "faiss"))
        return cli_error(CLI_EXIT_USAGE, "--format: \"%s\" is neither native nor faiss", format);
#ifndef CLI_HAVE_IO
    (void)train_rows;
    (void)seed;
    return no_io();
#else
    ivfpq_options opt = {0};
    opt.log = cli_log;
    int st;
    vec_matrix xb;
    int rc = cli_load_vectors(base, cosine, &xb);
    if (rc) return rc;
    cli_bar bar;
    cli_bar_init(&bar);
    opt.progress = cli_progress;
    opt.progress_user = &bar;
    opt.seed = seed;
    ivfpq_index *idx = NULL;
    if ((st = ivfpq_index_factory(&idx, (int)xb.d, spec, metric, &opt))) {
        vec_free(&xb);
        return cli_error(cli_exit_for_status(st), "-f \"%s\" with d = %zu: %s", spec, xb.d, cli_why(st));
    }
    const float *train = xb.data;
    size_t ntrain = xb.n;
    float *sample = NULL;
    if (train_rows && train_rows < xb.n) {
        if (!(sample = cli_sample_rows(&xb, train_rows, seed))) {
            ivfpq_free(idx);
            vec_free(&xb);
            return cli_error(CLI_EXIT_RUNTIME, "out of memory for the training sample");
        }
        train = sample;
        ntrain = train_rows;
    }
    double t0 = synth_now();
    st = ivfpq_train(idx, ntrain, train);
    double ttrain = synth_now() - t0;
    cli_bar_end(&bar);
    free(sample);
    if (!st) {
        t0 = synth_now();
        st = ivfpq_add(idx, xb.n, xb.data, NULL);
        cli_bar_end(&bar);
    }
    double tadd = synth_now() - t0;
    vec_free(&xb);
    if (st) {
        ivfpq_free(idx);
        return cli_error(cli_exit_for_status(st), "%s: %s", spec, cli_why(st));
    }
    st = ivfpq_save_file(idx, out, strcmp(format, "faiss") ? IVFPQ_FORMAT_NATIVE : IVFPQ_FORMAT_FAISS);
    if (st) {
        ivfpq_free(idx);
        return cli_error(cli_exit_for_status(st) == CLI_EXIT_USAGE ? CLI_EXIT_USAGE : CLI_EXIT_RUNTIME, "%s: %s", out,
                         cli_why(st));
    }
    ivfpq_info in;
    ivfpq_get_info(idx, &in);
    printf("%s: %s, %s, %zu vectors of d = %d; train %.2f s (%zu rows), add %.2f s, %.1f bytes/vector\n", out,
           in.factory, cli_metric_name(metric, cosine), in.ntotal, in.d, ttrain, ntrain, tadd,
           (double)in.memory_bytes / (double)(in.ntotal ? in.ntotal : 1));
    ivfpq_free(idx);
    return 0;
#endif
}

/* -------------------------------------------------------------- search */

static const char SEARCH_USAGE[] =
    "usage: ivfpq search -x INDEX -q QUERIES [options]\n"
    "\n"
    "Searches the queries; prints recall (with --gt), QPS and latency; writes result ids with -o.\n"
    "\n"
    "  -x, --index PATH      index file (ivfpq build -o, or a faiss file)\n"
    "  -q, --queries PATH    .npy, .fvecs, .bvecs, .fbin, .u8bin, or a directory of .npy files\n"
    "  -k K                  neighbours per query (default 10)\n"
    "      --nprobe N        lists visited per query (default 1)\n"
    "      --k-factor F      refine k * F candidates exactly (,RFlat indexes; default 4)\n"
    "      --gt PATH         ground truth ids (.ivecs, .ibin, .npy): prints R@1 and k-R@k\n"
    "  -o, --output PATH     result ids as .ivecs (or .ibin, .npy): int32, k per query, -1 = none\n"
    "  -m, --metric cos      normalize the queries (an index built with -m cos)\n"
    "      --threads N       split the queries over N threads (default 1)\n"
    "      --batch B         queries per search call (default: all)\n"
    "      --runs R          timed passes, the best counts (default 3)\n"
    "      --min-time S      seconds per pass at least (default 0.2)\n"
    "      --mmap            map the index file instead of reading it (where supported)\n"
    "      --quiet           no notes\n"
    "\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error, 3 bad input file.\n";

static int cmd_search(int argc, char **argv)
{
    cli_prog = "ivfpq search";
    const char *index = NULL, *query = NULL, *gt_path = NULL, *out = NULL, *metric_s = NULL;
    size_t k = 10, nprobe = 1, threads = 1, batch = 0, runs = 3;
    double kf = 4, min_time = 0.2;
    int mmap = 0;
    const cli_optdef defs[] = {
        {"-x", "--index", CLI_OPT_STR, &index},
        {"-q", "--queries", CLI_OPT_STR, &query},
        {"-k", "--k", CLI_OPT_SIZE, &k},
        {NULL, "--nprobe", CLI_OPT_SIZE, &nprobe},
        {NULL, "--k-factor", CLI_OPT_DOUBLE, &kf},
        {NULL, "--gt", CLI_OPT_STR, &gt_path},
        {"-o", "--output", CLI_OPT_STR, &out},
        {"-m", "--metric", CLI_OPT_STR, &metric_s},
        {NULL, "--threads", CLI_OPT_SIZE, &threads},
        {NULL, "--batch", CLI_OPT_SIZE, &batch},
        {NULL, "--runs", CLI_OPT_SIZE, &runs},
        {NULL, "--min-time", CLI_OPT_DOUBLE, &min_time},
        {NULL, "--mmap", CLI_OPT_FLAG, &mmap},
        {NULL, "--quiet", CLI_OPT_FLAG, &cli_quiet},
        {NULL, NULL, CLI_OPT_FLAG, NULL},
    };
    int prc = cli_parse_args(argc, argv, defs, SEARCH_USAGE, NULL, 0);
    if (prc) return prc < 0 ? 0 : prc;
    if (!index || !query) return cli_error(CLI_EXIT_USAGE, "needs -x INDEX and -q QUERIES (see --help)");
    if (k < 1 || k > 100000) return cli_error(CLI_EXIT_USAGE, "-k: %zu is not in [1, 100000]", k);
    if (nprobe < 1) return cli_error(CLI_EXIT_USAGE, "--nprobe: must be at least 1");
    if (kf < 1 || kf > 65536) return cli_error(CLI_EXIT_USAGE, "--k-factor: %g is not in [1, 65536]", kf);
    if (threads < 1 || threads > 256) return cli_error(CLI_EXIT_USAGE, "--threads: %zu is not in [1, 256]", threads);
    if (runs < 1 || runs > 1000) return cli_error(CLI_EXIT_USAGE, "--runs: %zu is not in [1, 1000]", runs);
    int cosine = 0;
    ivfpq_metric metric = IVFPQ_METRIC_L2;
    if (metric_s && cli_parse_metric(metric_s, &cosine, &metric)) return CLI_EXIT_USAGE;
#ifndef CLI_HAVE_IO
    (void)gt_path;
    (void)out;
    (void)mmap;
    (void)min_time;
    return no_io();
#else
    ivfpq_index *idx;
    int rc = load_index(index, mmap, &idx);
    if (rc) return rc;
    ivfpq_info in;
    ivfpq_get_info(idx, &in);
    if (metric_s && (cosine ? IVFPQ_METRIC_INNER_PRODUCT : metric) != in.metric) {
        ivfpq_free(idx);
        return cli_error(CLI_EXIT_USAGE, "-m %s: the index %s uses %s", metric_s, index,
                         in.metric == IVFPQ_METRIC_L2 ? "l2" : "inner product");
    }
    vec_matrix xq = {0};
    int32_t *gt = NULL;
    int64_t *I = NULL;
    size_t gtk = 0;
    if ((rc = cli_load_vectors(query, cosine, &xq))) goto out;
    if (xq.d != (size_t)in.d) {
        rc = cli_error(CLI_EXIT_INPUT, "%s: d = %zu, but the index %s has d = %d", query, xq.d, index, in.d);
        goto out;
    }
    if (gt_path) {
        vec_matrix dummy = {0, xq.d, VEC_FLOAT32, NULL};
        if ((rc = cli_ground_truth(gt_path, query, "none", &dummy, &xq, k, in.metric, cosine, 1, 0, &gt, &gtk))) goto out;
    }
    cli_search_cfg cfg = {k, IVFPQ_SEARCH_PARAMS_DEFAULT, batch, (int)threads, (int)runs, min_time};
    cfg.params.nprobe = nprobe;
    cfg.params.k_factor = (float)kf;
    if (!(I = malloc(xq.n * k * sizeof(int64_t)))) {
        rc = cli_error(CLI_EXIT_RUNTIME, "out of memory");
        goto out;
    }
    if ((rc = cli_search_all(idx, xq.data, xq.n, &cfg, NULL, I))) goto out;
    printf("index %s (%s, %zu vectors), %zu queries, k = %zu, nprobe = %zu%s, SIMD %s\n", index, in.factory,
           in.ntotal, xq.n, k, nprobe < in.nlist ? nprobe : in.nlist, "", ivfpq_simd_name(ivfpq_simd_active()));
    if (in.refine) printf("k_factor = %g\n", kf);
    if (gt) {
        double r1, rk;
        cli_recall(I, xq.n, k, gt, gtk, &r1, &rk);
        printf("R@1 = %.4f  %zu-R@%zu = %.4f\n", r1, k, k, rk);
    }
    double qps, p50, p99;
    if ((rc = cli_measure_qps(idx, xq.data, xq.n, &cfg, &qps))) goto out;
    printf("QPS = %.0f (%zu thread%s, batch %zu, best of %zu)\n", qps, threads, threads > 1 ? "s" : "",
           batch ? batch : xq.n, runs);
    cli_search_cfg l1 = cfg;
    l1.batch = 1;
    l1.threads = 1;
    if ((rc = cli_measure_latency(idx, xq.data, xq.n, &l1, xq.n < 200 ? xq.n : 200, &p50, &p99))) goto out;
    printf("latency (batch 1): p50 = %.1f us, p99 = %.1f us\n", p50 * 1e6, p99 * 1e6);
    if (out) {
        int32_t *ids = malloc(xq.n * k * sizeof(int32_t) + 1);
        if (!ids) {
            rc = cli_error(CLI_EXIT_RUNTIME, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < xq.n * k; i++) ids[i] = I[i] < 0 || I[i] > INT32_MAX ? -1 : (int32_t)I[i];
        char err[768];
        if (vec_write(out, VEC_INT32, ids, xq.n, k, err, sizeof err)) rc = cli_error(CLI_EXIT_RUNTIME, "%s", err);
        else cli_note("result ids written to %s", out);
        free(ids);
    }
out:
    free(I);
    free(gt);
    vec_free(&xq);
    ivfpq_free(idx);
    return rc;
#endif
}

/* ------------------------------------------------------------- convert */

static const char CONVERT_USAGE[] =
    "usage: ivfpq convert IN OUT [--format native|faiss]\n"
    "\n"
    "Reads an index file (native or faiss) and writes it in the given format (default native).\n"
    "\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error, 3 bad input file.\n";

static int cmd_convert(int argc, char **argv)
{
    cli_prog = "ivfpq convert";
    const char *in = NULL, *out = NULL, *format = "native", *pos[2] = {NULL, NULL};
    const cli_optdef defs[] = {
        {NULL, "--format", CLI_OPT_STR, &format},
        {"-q", "--quiet", CLI_OPT_FLAG, &cli_quiet},
        {NULL, NULL, CLI_OPT_FLAG, NULL},
    };
    int prc = cli_parse_args(argc, argv, defs, CONVERT_USAGE, pos, 2);
    if (prc) return prc < 0 ? 0 : prc;
    in = pos[0];
    out = pos[1];
    if (!in || !out) return cli_error(CLI_EXIT_USAGE, "needs IN and OUT (see --help)");
    if (strcmp(format, "native") && strcmp(format, "faiss"))
        return cli_error(CLI_EXIT_USAGE, "--format: \"%s\" is neither native nor faiss", format);
#ifndef CLI_HAVE_IO
    return no_io();
#else
    ivfpq_index *idx;
    int rc = load_index(in, 0, &idx);
    if (rc) return rc;
    int st = ivfpq_save_file(idx, out, strcmp(format, "faiss") ? IVFPQ_FORMAT_NATIVE : IVFPQ_FORMAT_FAISS);
    ivfpq_free(idx);
    if (st) return cli_error(st == IVFPQ_E_UNSUPPORTED ? CLI_EXIT_USAGE : CLI_EXIT_RUNTIME, "%s: %s", out, cli_why(st));
    cli_note("%s -> %s (%s)", in, out, format);
    return 0;
#endif
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_error(CLI_EXIT_USAGE, "usage: ivfpq COMMAND [options], COMMAND = build, search, bench, info, "
                                         "convert, plot (see ivfpq --help)");
    const char *cmd = argv[1];
    if (want_help(cmd) || !strcmp(cmd, "help")) {
        fputs(MAIN_USAGE, stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("ivfpq (libivfpq) %s\n", ivfpq_version_string());
        return 0;
    }
    ivfpq_simd_init();
    if (!strcmp(cmd, "build")) return cmd_build(argc - 1, argv + 1);
    if (!strcmp(cmd, "search")) return cmd_search(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cli_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "convert")) return cmd_convert(argc - 1, argv + 1);
    if (!strcmp(cmd, "plot")) return cli_cmd_plot(argc - 1, argv + 1);
    return cli_error(CLI_EXIT_USAGE, "unknown command \"%s\" (see ivfpq --help)", cmd);
}

/*
 * `ivfpq bench`: builds each factory string on the base vectors and sweeps
 * nprobe x k_factor over the queries, measuring recall against exact ground
 * truth, single- and multi-thread QPS and per-call latency. Results go to
 * stdout as Markdown, to --json as one object per measured setting, and to
 * --plot as SVG (with faiss's curves from --faiss-json).
 *
 * `ivfpq plot`: redraws the SVG from saved JSON-lines files.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "synth.h"

static const char BENCH_USAGE[] =
    "usage: ivfpq bench -i BASE -q QUERIES -f SPEC [-f SPEC...] [options]\n"
    "\n"
    "Builds each index and sweeps search parameters; prints a Markdown table.\n"
    "\n"
    "  -i, --base PATH        base vectors: .npy, .fvecs, .bvecs, .fbin, .u8bin or a directory of .npy\n"
    "  -q, --queries PATH     query vectors (same formats)\n"
    "  -f, --factory SPEC...  factory strings, e.g. \"IVF1024,PQ128x4fs,RFlat\" \"IVF1024,Flat\"\n"
    "                         (repeat -f, or list several after one -f)\n"
    "      --gt PATH          ground truth ids (.ivecs, .ibin, .npy); default: computed exactly with a\n"
    "                         Flat index and cached as QUERIES.gt-<hash>.ivecs (keyed by the data, k, metric)\n"
    "      --gt-cache DIR     put the cache in DIR instead; \"none\" = no cache\n"
    "  -m, --metric M         l2 (default), ip, or cos (= normalize base and queries, inner product)\n"
    "  -k K                   neighbours per query (default 10)\n"
    "      --nprobe LIST      e.g. 1,2,4,8 or 1-64 (powers of two; default 1-64); clamped to nlist\n"
    "      --k-factor LIST    refine candidates = k * k_factor, for ,RFlat kinds (default 4)\n"
    "      --threads N        also measure QPS with N threads sharing the index (default 1)\n"
    "      --batch B          queries per search call when measuring QPS (default: all)\n"
    "      --runs R           timed passes per setting, the best counts (default 3)\n"
    "      --min-time S       seconds per pass at least; the query set repeats (default 0.2)\n"
    "      --no-latency       skip the latency measurements (batch 1 and batch 200, k=8)\n"
    "      --train-rows N     train on a seeded sample of N rows (default: all)\n"
    "      --max-queries N    use the first N queries only (and the first N rows of --gt)\n"
    "      --seed S           seed of the sample and of training (default 1234)\n"
    "      --json PATH        write one JSON object per measured setting (JSON lines)\n"
    "      --plot PATH        write a recall-vs-QPS SVG plot\n"
    "      --faiss-json PATH  add faiss's results (bench/compare_faiss.py --json) to the plot\n"
    "      --title TEXT       plot title\n"
    "      --quiet            no progress bars or notes\n"
    "\n"
    "Recall: R@1 = share of queries whose true nearest neighbour is ranked first;\n"
    "k-R@k = mean |returned k ∩ true k| / k (faiss's definitions).\n"
    "QPS: best of --runs passes over the query set, each at least --min-time seconds.\n"
    "\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error, 3 bad input file.\n";

typedef struct bench_opts {
    const char *base, *query, *gt, *gt_cache, *json, *plot, *title;
    cli_strs specs, faiss;
    double *nprobe, *kf;
    size_t nnprobe, nkf;
    size_t k, batch, train_rows, max_queries;
    int threads, runs, latency, cosine;
    double min_time;
    uint64_t seed;
    ivfpq_metric metric;
} bench_opts;

static int parse_bench(int argc, char **argv, bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->k = 10;
    o->min_time = 0.2;
    o->metric = IVFPQ_METRIC_L2;
    const char *np = "1-64", *kf = "4", *metric = NULL;
    size_t threads = 1, runs = 3, seed = 1234;
    int no_latency = 0;
    const cli_optdef defs[] = {
        {"-i", "--base", CLI_OPT_STR, &o->base},
        {"-q", "--queries", CLI_OPT_STR, &o->query},
        {"-f", "--factory", CLI_OPT_STRS, &o->specs},
        {NULL, "--gt", CLI_OPT_STR, &o->gt},
        {NULL, "--gt-cache", CLI_OPT_STR, &o->gt_cache},
        {"-m", "--metric", CLI_OPT_STR, &metric},
        {"-k", "--k", CLI_OPT_SIZE, &o->k},
        {NULL, "--nprobe", CLI_OPT_STR, &np},
        {NULL, "--k-factor", CLI_OPT_STR, &kf},
        {NULL, "--threads", CLI_OPT_SIZE, &threads},
        {NULL, "--batch", CLI_OPT_SIZE, &o->batch},
        {NULL, "--runs", CLI_OPT_SIZE, &runs},
        {NULL, "--min-time", CLI_OPT_DOUBLE, &o->min_time},
        {NULL, "--no-latency", CLI_OPT_FLAG, &no_latency},
        {NULL, "--max-queries", CLI_OPT_SIZE, &o->max_queries},
        {NULL, "--train-rows", CLI_OPT_SIZE, &o->train_rows},
        {NULL, "--seed", CLI_OPT_SIZE, &seed},
        {NULL, "--json", CLI_OPT_STR, &o->json},
        {NULL, "--plot", CLI_OPT_STR, &o->plot},
        {NULL, "--faiss-json", CLI_OPT_APPEND, &o->faiss},
        {NULL, "--title", CLI_OPT_STR, &o->title},
        {NULL, "--quiet", CLI_OPT_FLAG, &cli_quiet},
        {NULL, NULL, CLI_OPT_FLAG, NULL},
    };
    int rc = cli_parse_args(argc, argv, defs, BENCH_USAGE, NULL, 0);
    if (rc) return rc;
    o->latency = !no_latency;
    o->seed = seed;
    if (!o->base || !o->query || !o->specs.n)
        return cli_error(CLI_EXIT_USAGE, "needs -i BASE, -q QUERIES and at least one -f SPEC (see --help)");
    if (metric && cli_parse_metric(metric, &o->cosine, &o->metric)) return CLI_EXIT_USAGE;
    if (o->k < 1 || o->k > 100000) return cli_error(CLI_EXIT_USAGE, "-k: %zu is not in [1, 100000]", o->k);
    if (threads < 1 || threads > 256) return cli_error(CLI_EXIT_USAGE, "--threads: %zu is not in [1, 256]", threads);
    if (runs < 1 || runs > 1000) return cli_error(CLI_EXIT_USAGE, "--runs: %zu is not in [1, 1000]", runs);
    if (o->min_time < 0 || o->min_time > 3600)
        return cli_error(CLI_EXIT_USAGE, "--min-time: %g is not in [0, 3600]", o->min_time);
    o->threads = (int)threads;
    o->runs = (int)runs;
    if (cli_parse_list("--nprobe", np, &o->nprobe, &o->nnprobe)) return CLI_EXIT_USAGE;
    if (cli_parse_list("--k-factor", kf, &o->kf, &o->nkf)) return CLI_EXIT_USAGE;
    for (size_t i = 0; i < o->nkf; i++)
        if (o->kf[i] < 1 || o->kf[i] > 65536)
            return cli_error(CLI_EXIT_USAGE, "--k-factor: %g is not in [1, 65536]", o->kf[i]);
    return 0;
}

/* Appends the rows of a JSON-lines file to *all. Exit code. */
static int append_rows(const char *path, cli_row **all, size_t *n)
{
    cli_row *r;
    size_t k;
    int rc = cli_rows_read(path, &r, &k);
    if (rc) return rc;
    cli_row *na = realloc(*all, (*n + k + 1) * sizeof *na);
    if (!na) {
        free(r);
        return cli_error(CLI_EXIT_RUNTIME, "out of memory");
    }
    *all = na;
    if (k) memcpy(*all + *n, r, k * sizeof *r);
    *n += k;
    free(r);
    return 0;
}

float *cli_sample_rows(const vec_matrix *x, size_t n, uint64_t seed)
{
    size_t *perm = malloc(x->n * sizeof *perm);
    float *out = malloc(n * x->d * sizeof(float) + 1);
    if (!perm || !out) {
        free(perm);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < x->n; i++) perm[i] = i;
    synth_rng r;
    synth_seed(&r, seed);
    const float *src = x->data;
    for (size_t i = 0; i < n; i++) { /* partial Fisher-Yates */
        size_t j = i + (size_t)(synth_next(&r) % (uint64_t)(x->n - i)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        memcpy(out + i * x->d, src + perm[i] * x->d, x->d * sizeof(float));
    }
    free(perm);
    return out;
}

typedef struct sweep_ctx {
    const bench_opts *o;
    const vec_matrix *xb, *xq;
    const int32_t *gt;
    size_t gtk;
    FILE *json;
    cli_row *rows;
    size_t nrows, caprows;
} sweep_ctx;

static int keep_row(sweep_ctx *c, const cli_row *r)
{
    if (c->nrows == c->caprows) {
        size_t ncap = c->caprows ? 2 * c->caprows : 64;
        cli_row *nr = realloc(c->rows, ncap * sizeof *nr);
        if (!nr) return cli_error(CLI_EXIT_RUNTIME, "out of memory");
        c->rows = nr;
        c->caprows = ncap;
    }
    c->rows[c->nrows++] = *r;
    if (c->json) cli_row_json(c->json, r, cli_cpu_model(), cli_compiler());
    return 0;
}

static int bench_spec(sweep_ctx *c, const char *spec)
{
    const bench_opts *o = c->o;
    const vec_matrix *xb = c->xb, *xq = c->xq;
    cli_bar bar;
    cli_bar_init(&bar);
    ivfpq_options opt = {0};
    opt.log = cli_log;
    opt.progress = cli_progress;
    opt.progress_user = &bar;
    opt.seed = o->seed;
    ivfpq_index *idx = NULL;
    int st = ivfpq_index_factory(&idx, (int)xb->d, spec, o->metric, &opt);
    if (st) return cli_error(cli_exit_for_status(st), "-f \"%s\": %s", spec, cli_why(st));

    int rc = 0;
    const float *train = xb->data;
    float *sample = NULL;
    size_t ntrain = xb->n;
    if (o->train_rows && o->train_rows < xb->n) {
        if (!(sample = cli_sample_rows(xb, o->train_rows, o->seed))) {
            ivfpq_free(idx);
            return cli_error(CLI_EXIT_RUNTIME, "out of memory for the training sample");
        }
        train = sample;
        ntrain = o->train_rows;
    }
    double t0 = synth_now();
    st = ivfpq_train(idx, ntrain, train);
    double train_s = synth_now() - t0;
    cli_bar_end(&bar);
    free(sample);
    if (st) {
        ivfpq_free(idx);
        return cli_error(cli_exit_for_status(st), "%s: training: %s", spec, cli_why(st));
    }
    t0 = synth_now();
    st = ivfpq_add(idx, xb->n, xb->data, NULL);
    double add_s = synth_now() - t0;
    cli_bar_end(&bar);
    if (st) {
        ivfpq_free(idx);
        return cli_error(cli_exit_for_status(st), "%s: adding: %s", spec, cli_why(st));
    }
    ivfpq_info info;
    ivfpq_get_info(idx, &info);
    int ivf = info.kind == IVFPQ_KIND_IVF_FLAT || info.kind == IVFPQ_KIND_IVF_PQ4FS;
    printf("\n## %s (%s): train %.2f s, add %.2f s, %.1f bytes/vector (%.1f MB)\n\n", spec, info.factory, train_s,
           add_s, (double)info.memory_bytes / (double)info.ntotal, (double)info.memory_bytes / 1e6);
    cli_table_header(stdout, o->k, o->threads, o->latency);
    fflush(stdout);

    cli_row base;
    cli_row_init(&base);
    snprintf(base.engine, sizeof base.engine, "libivfpq");
    snprintf(base.version, sizeof base.version, "%s", ivfpq_version_string());
    snprintf(base.factory, sizeof base.factory, "%s", spec);
    snprintf(base.metric, sizeof base.metric, "%s", cli_metric_name(o->metric, o->cosine));
    snprintf(base.simd, sizeof base.simd, "%s", ivfpq_simd_name(ivfpq_simd_active()));
    snprintf(base.base, sizeof base.base, "%s", o->base);
    snprintf(base.query, sizeof base.query, "%s", o->query);
    base.d = xb->d;
    base.nb = xb->n;
    base.nq = xq->n;
    base.k = o->k;
    base.batch = o->batch ? o->batch : xq->n;
    base.train_s = train_s;
    base.add_s = add_s;
    base.bytes_per_vector = (double)info.memory_bytes / (double)info.ntotal;

    int64_t *I = malloc(xq->n * o->k * sizeof(int64_t) + 1);
    if (!I) {
        ivfpq_free(idx);
        return cli_error(CLI_EXIT_RUNTIME, "out of memory");
    }
    size_t nnp = ivf ? o->nnprobe : 1, nkf = info.refine ? o->nkf : 1;
    size_t prev_np = 0;
    for (size_t a = 0; a < nnp && !rc; a++) {
        size_t np = ivf ? (size_t)o->nprobe[a] : 0;
        if (np > info.nlist) np = info.nlist;
        if (ivf && np == prev_np) continue; /* several values clamped to nlist */
        prev_np = np;
        for (size_t b = 0; b < nkf && !rc; b++) {
            cli_search_cfg cfg = {o->k, IVFPQ_SEARCH_PARAMS_DEFAULT, o->batch, o->threads, o->runs, o->min_time};
            cfg.params.nprobe = np ? np : 1;
            cfg.params.k_factor = info.refine ? (float)o->kf[b] : 1.0f;
            cli_row one = base, many;
            one.nprobe = np;
            one.k_factor = cfg.params.k_factor;
            if ((rc = cli_search_all(idx, xq->data, xq->n, &cfg, NULL, I))) break;
            cli_recall(I, xq->n, o->k, c->gt, c->gtk, &one.recall_at_1, &one.k_recall_at_k);
            cfg.threads = 1;
            if ((rc = cli_measure_qps(idx, xq->data, xq->n, &cfg, &one.qps))) break;
            if (o->latency) {
                cli_search_cfg l1 = cfg, lr = cfg;
                double p50, p99;
                l1.batch = 1;
                size_t ms = xq->n < 200 ? xq->n : 200;
                if ((rc = cli_measure_latency(idx, xq->data, xq->n, &l1, ms, &p50, &p99))) break;
                one.lat1_p50_us = p50 * 1e6;
                one.lat1_p99_us = p99 * 1e6;
                lr.batch = 200; /* RVC: chunks of 200 frames, k = 8 */
                lr.k = 8;
                if ((rc = cli_measure_latency(idx, xq->data, xq->n, &lr, 10, &p50, &p99))) break;
                one.rvc_p50_ms = p50 * 1e3;
                one.rvc_p99_ms = p99 * 1e3;
            }
            if ((rc = keep_row(c, &one))) break;
            if (o->threads > 1) {
                many = one;
                many.threads = o->threads;
                many.lat1_p50_us = many.lat1_p99_us = many.rvc_p50_ms = many.rvc_p99_ms = NAN;
                cfg.threads = o->threads;
                if ((rc = cli_measure_qps(idx, xq->data, xq->n, &cfg, &many.qps))) break;
                if ((rc = keep_row(c, &many))) break;
            }
            cli_table_row(stdout, &one, o->threads > 1 ? &many : NULL, o->latency);
        }
    }
    free(I);
    ivfpq_free(idx);
    return rc;
}

int cli_cmd_bench(int argc, char **argv)
{
    cli_prog = "ivfpq bench";
    bench_opts o;
    int rc = parse_bench(argc, argv, &o);
    if (rc) {
        free(o.specs.v);
        free(o.faiss.v);
        free(o.nprobe);
        free(o.kf);
        return rc < 0 ? 0 : rc;
    }
    vec_matrix xb = {0}, xq = {0};
    int32_t *gt = NULL;
    size_t gtk = 0;
    FILE *json = NULL;
    sweep_ctx c = {&o, &xb, &xq, NULL, 0, NULL, NULL, 0, 0};
    cli_row *frows = NULL;
    size_t nf = 0;

    /* check the cheap things before hours of work: faiss files, output paths */
    for (size_t i = 0; i < o.faiss.n && !rc; i++) rc = append_rows(o.faiss.v[i], &frows, &nf);
    if (!rc && o.json && !(json = fopen(o.json, "w"))) rc = cli_error(CLI_EXIT_RUNTIME, "%s: cannot create", o.json);
    if (!rc) rc = cli_load_vectors(o.base, o.cosine, &xb);
    if (!rc) rc = cli_load_vectors(o.query, o.cosine, &xq);
    if (!rc && o.max_queries && o.max_queries < xq.n) xq.n = o.max_queries; /* rows past n stay unused */
    if (!rc && xq.d != xb.d)
        rc = cli_error(CLI_EXIT_INPUT, "%s: d = %zu, but the base vectors (%s) have d = %zu", o.query, xq.d, o.base,
                       xb.d);
    if (!rc && o.k > xb.n)
        rc = cli_error(CLI_EXIT_USAGE, "-k %zu: more than the %zu base vectors", o.k, xb.n);
    for (size_t i = 0; i < o.specs.n && !rc; i++) { /* bad factory strings fail before the long work */
        ivfpq_options opt = {0};
        opt.log = cli_log;
        ivfpq_index *probe;
        int st = ivfpq_index_factory(&probe, (int)xb.d, o.specs.v[i], o.metric, &opt);
        if (st) rc = cli_error(cli_exit_for_status(st), "-f \"%s\": %s", o.specs.v[i], cli_why(st));
        ivfpq_free(probe);
    }
    if (!rc && o.train_rows && o.train_rows > xb.n)
        cli_note("--train-rows %zu: only %zu rows, training on all", o.train_rows, xb.n);
    if (!rc)
        rc = cli_ground_truth(o.gt, o.query, o.gt_cache, &xb, &xq, o.k, o.metric, o.cosine, o.threads, o.max_queries != 0, &gt, &gtk);
    if (!rc) {
        c.gt = gt;
        c.gtk = gtk;
        c.json = json;
        printf("# ivfpq bench: libivfpq %s, SIMD level %s\n\n", ivfpq_version_string(),
               ivfpq_simd_name(ivfpq_simd_active()));
        printf("- base: %s (%zu x %zu), queries: %s (%zu), metric %s, k = %zu\n", o.base, xb.n, xb.d, o.query, xq.n,
               cli_metric_name(o.metric, o.cosine), o.k);
        printf("- CPU: %s; compiler: %s\n", cli_cpu_model(), cli_compiler());
        printf("- QPS: best of %d passes of >= %.2g s, batch %zu%s; latency: per call, batch 1 (k = %zu) and batch "
               "200 (k = 8)\n", o.runs, o.min_time, o.batch ? o.batch : xq.n, o.batch ? "" : " (all queries)", o.k);
        fflush(stdout);
        for (size_t s = 0; s < o.specs.n && !rc; s++) rc = bench_spec(&c, o.specs.v[s]);
    }
    if (json && fclose(json) != 0 && !rc) rc = cli_error(CLI_EXIT_RUNTIME, "%s: write error", o.json);
    if (!rc && o.plot) {
        cli_row *all = malloc((c.nrows + nf + 1) * sizeof *all);
        if (!all) {
            rc = cli_error(CLI_EXIT_RUNTIME, "out of memory");
        } else {
            if (c.nrows) memcpy(all, c.rows, c.nrows * sizeof *all);
            if (nf) memcpy(all + c.nrows, frows, nf * sizeof *all);
            char title[512];
            snprintf(title, sizeof title, "%s", o.title ? o.title : "");
            if (!o.title) {
                const char *bn = strrchr(o.base, '/');
                snprintf(title, sizeof title, "%s: %zu x %zu, %zu queries, %s, k = %zu", bn ? bn + 1 : o.base, xb.n, xb.d,
                         xq.n, cli_metric_name(o.metric, o.cosine), o.k);
            }
            rc = cli_plot_svg(o.plot, all, c.nrows + nf, title);
            free(all);
            if (!rc) cli_note("plot written to %s", o.plot);
        }
    }
    vec_free(&xb);
    vec_free(&xq);
    free(gt);
    free(c.rows);
    free(frows);
    free(o.specs.v);
    free(o.faiss.v);
    free(o.nprobe);
    free(o.kf);
    return rc;
}

static const char PLOT_USAGE[] =
    "usage: ivfpq plot -o OUT.svg [--title TEXT] RESULTS.jsonl...\n"
    "\n"
    "Draws recall (R@1 and k-R@k) against single-thread QPS from JSON lines written by\n"
    "`ivfpq bench --json` and `bench/compare_faiss.py --json`.\n"
    "\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error, 3 bad input file.\n";

int cli_cmd_plot(int argc, char **argv)
{
    cli_prog = "ivfpq plot";
    const char *out = NULL, *title = "recall vs queries per second";
    const char *files[256] = {NULL};
    const cli_optdef defs[] = {
        {"-o", "--output", CLI_OPT_STR, &out},
        {NULL, "--title", CLI_OPT_STR, &title},
        {NULL, NULL, CLI_OPT_FLAG, NULL},
    };
    int rc = cli_parse_args(argc, argv, defs, PLOT_USAGE, files, 256);
    if (rc) return rc < 0 ? 0 : rc;
    size_t nfiles = 0;
    while (nfiles < 256 && files[nfiles]) nfiles++;
    if (!out || !nfiles) return cli_error(CLI_EXIT_USAGE, "needs -o OUT.svg and at least one JSON-lines file");
    cli_row *all = NULL;
    size_t n = 0;
    for (size_t f = 0; f < nfiles && !rc; f++) rc = append_rows(files[f], &all, &n);
    if (!rc) rc = cli_plot_svg(out, all, n, title);
    free(all);
    return rc;
}

/*
 * Shared parts of the `ivfpq` command-line tool: exit codes, messages,
 * progress bars, loading vectors, ground truth, timing, reports and plots.
 * The tool links the public library like any user; threads (pthreads) live
 * here, never in the library.
 */
#ifndef IVFPQ_CLI_H
#define IVFPQ_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ivfpq.h"
#include "vecio.h"

/* Exit codes (documented in --help and docs/CLI.md). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_RUNTIME = 1, /* the library or the system failed (memory, write...) */
    CLI_EXIT_USAGE = 2,   /* bad command line: unknown option, bad factory string... */
    CLI_EXIT_INPUT = 3    /* an input file is missing, malformed or inconsistent */
};

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* Global switches of one run. */
extern int cli_quiet;        /* --quiet: no progress, no notes */
extern const char *cli_prog; /* "ivfpq build" etc., prefixes messages */

/* One line on stderr: "<prog>: <message>". Returns `code`. */
int cli_error(int code, const char *fmt, ...) CLI_PRINTF(2, 3);
/* A note on stderr unless --quiet. */
void cli_note(const char *fmt, ...) CLI_PRINTF(1, 2);

/* Library log callback: warnings go to stderr at once; an error's detailed
 * message is kept for cli_why, so that each failure prints one line. */
void cli_log(void *user, int level, int status, const char *message);
/* The library's detailed message for the failure just returned (and
 * forgets it), else ivfpq_strerror(status). */
const char *cli_why(int status);
/* Exit code for a library status. */
int cli_exit_for_status(int status);

/* ---------------------------------------------------------- arguments */

/* A command's options as a table: "-k 10", "--k 10" and "--k=10" all work. */
typedef struct cli_strs {
    const char **v;
    size_t n;
} cli_strs;
typedef enum cli_optkind {
    CLI_OPT_FLAG,   /* int *: set to 1, takes no value */
    CLI_OPT_STR,    /* const char ** */
    CLI_OPT_SIZE,   /* size_t * */
    CLI_OPT_DOUBLE, /* double * */
    CLI_OPT_STRS,   /* cli_strs *: repeatable; values that follow without a dash are taken too */
    CLI_OPT_APPEND  /* cli_strs *: repeatable, one value each */
} cli_optkind;
typedef struct cli_optdef {
    const char *shortname, *longname;
    cli_optkind kind;
    void *dst;
} cli_optdef;
/* Parses argv[1..] by the table (ends with a {NULL} entry); other words go to
 * pos (at most npos, in order). -h/--help prints `help` to stdout and
 * returns -1; a bad command line prints one line and returns the usage
 * exit code; 0 otherwise. The caller frees the cli_strs arrays. */
int cli_parse_args(int argc, char **argv, const cli_optdef *defs, const char *help, const char **pos,
                   size_t npos);
int cli_parse_size(const char *opt, const char *s, size_t *out);          /* 0 or usage code */
int cli_parse_double(const char *opt, const char *s, double *out);        /* 0 or usage code */
/* Comma-separated positive numbers, e.g. "1,2,4,8" or "1-64" (powers of 2). */
int cli_parse_list(const char *opt, const char *s, double **out, size_t *n);
int cli_parse_metric(const char *s, int *cosine, ivfpq_metric *metric); /* "l2", "ip", "cos" */
const char *cli_metric_name(ivfpq_metric metric, int cosine);

/* ----------------------------------------------------------- progress */

/* A progress bar on stderr, drawn only when stderr is a terminal and not
 * --quiet. Use cli_progress as the library's progress callback. */
typedef struct cli_bar {
    int enabled;
    double last_draw;
    char stage[40];
    int drawn;
} cli_bar;
void cli_bar_init(cli_bar *b);
int cli_progress(void *user, const char *stage, size_t done, size_t total);
void cli_bar_end(cli_bar *b); /* clears the line */

/* --------------------------------------------------------------- data */

/* Reads vectors (any format of vecio.h); on error prints the one-line
 * message and returns the exit code. With `cosine`, rows are normalized. */
int cli_load_vectors(const char *path, int cosine, vec_matrix *m);

/* n rows of x drawn without replacement by a seeded shuffle (the training
 * sample of --train-rows; the same in build and bench). NULL: no memory. */
float *cli_sample_rows(const vec_matrix *x, size_t n, uint64_t seed);

/* Exact k-NN labels [nq, k] by a Flat index of the library, queries split
 * over `threads` threads. Returns an exit code. */
int cli_exact_knn(const float *xb, size_t nb, const float *xq, size_t nq, size_t d, size_t k,
                  ivfpq_metric metric, int threads, int32_t *out);

/* Ground truth for (base, queries, k, metric): reads it from gt_path when
 * given; else from the cache file beside the queries, keyed by a hash of
 * the data, k and metric (cache_dir overrides the place; "none" disables);
 * else computes it exactly and writes the cache. *gt is [nq, *gtk].
 * prefix_ok: a given file may have more rows (queries were cut to a prefix). */
int cli_ground_truth(const char *gt_path, const char *query_path, const char *cache_dir,
                     const vec_matrix *xb, const vec_matrix *xq, size_t k, ivfpq_metric metric,
                     int cosine, int threads, int prefix_ok, int32_t **gt, size_t *gtk);

/* faiss's definitions: R@1 = share of queries whose true nearest
 * neighbour is ranked first; k-R@k = mean |returned k ∩ true k| / k. */
void cli_recall(const int64_t *I, size_t nq, size_t k, const int32_t *gt, size_t gtk, double *r1,
                double *rk);

/* ------------------------------------------------------------- timing */

typedef struct cli_search_cfg {
    size_t k;
    ivfpq_search_params params;
    size_t batch;    /* queries per call; 0 = all */
    int threads;     /* >= 1 */
    int runs;        /* passes; the best counts */
    double min_time; /* seconds per pass at least (query set repeated) */
} cli_search_cfg;

/* Searches all queries once; I [nq, k] (D may be NULL). Exit code. */
int cli_search_all(const ivfpq_index *idx, const float *xq, size_t nq, const cli_search_cfg *cfg,
                   float *D, int64_t *I);
/* Best-of-runs queries per second. Exit code. */
int cli_measure_qps(const ivfpq_index *idx, const float *xq, size_t nq, const cli_search_cfg *cfg,
                    double *qps);
/* Latency of calls of `cfg->batch` queries (one thread): p50 and p99 in
 * seconds over at least min_samples calls and cfg->min_time. Exit code. */
int cli_measure_latency(const ivfpq_index *idx, const float *xq, size_t nq, const cli_search_cfg *cfg,
                        size_t min_samples, double *p50, double *p99);

/* ----------------------------------------------------------- reports */

/* One measured setting: the fields of the JSON lines. */
typedef struct cli_row {
    char engine[16];   /* "libivfpq" or "faiss" */
    char version[32];
    char factory[96];
    char metric[8];
    size_t d, nb, nq, k, nprobe, batch;
    double k_factor;
    int threads;
    char simd[24];
    double recall_at_1, k_recall_at_k, qps, train_s, add_s, bytes_per_vector;
    double lat1_p50_us, lat1_p99_us;   /* batch 1, k; NAN if not measured */
    double rvc_p50_ms, rvc_p99_ms;     /* batch 200, k = 8; NAN if not measured */
    char base[160], query[160];        /* data set paths */
} cli_row;

void cli_row_init(cli_row *r);
/* One JSON object on one line (JSON-lines). */
void cli_row_json(FILE *f, const cli_row *r, const char *cpu, const char *compiler);
/* Reads the rows of a JSON-lines file (faiss's or ours); unknown fields
 * are ignored. Returns an exit code (message printed). */
int cli_rows_read(const char *path, cli_row **rows, size_t *n);

/* Markdown. */
void cli_table_header(FILE *f, size_t k, int threads, int latency);
void cli_table_row(FILE *f, const cli_row *one, const cli_row *many, int latency);

/* CPU model name ("unknown" if not found) and compiler text. */
const char *cli_cpu_model(void);
const char *cli_compiler(void);

/* -------------------------------------------------------------- plot */

/* Recall (x, two panels: R@1 and k-R@k) against single-thread QPS (y, log)
 * as SVG, one curve per engine + factory + k_factor. Exit code. */
int cli_plot_svg(const char *path, const cli_row *rows, size_t n, const char *title);

/* ------------------------------------------------------- subcommands */
int cli_cmd_bench(int argc, char **argv);
int cli_cmd_plot(int argc, char **argv);

#endif

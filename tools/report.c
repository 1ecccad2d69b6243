/*
 * Reports of the benchmark: Markdown rows on stdout, JSON lines (one object
 * per measured setting) and a reader for JSON lines written by us or by
 * bench/compare_faiss.py. The reader handles flat objects, which is all
 * these files contain; nested values are skipped.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_row_init(cli_row *r)
{
    memset(r, 0, sizeof *r);
    r->recall_at_1 = r->k_recall_at_k = r->qps = NAN;
    r->train_s = r->add_s = r->bytes_per_vector = NAN;
    r->lat1_p50_us = r->lat1_p99_us = r->rvc_p50_ms = r->rvc_p99_ms = NAN;
    r->k_factor = 1;
    r->threads = 1;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, const char *key, double v, int digits)
{
    fprintf(f, ", \"%s\": ", key);
    if (isfinite(v)) fprintf(f, "%.*g", digits, v);
    else fputs("null", f);
}

void cli_row_json(FILE *f, const cli_row *r, const char *cpu, const char *compiler)
{
    fputs("{\"engine\": ", f);
    json_str(f, r->engine);
    fputs(", \"version\": ", f);
    json_str(f, r->version);
    fputs(", \"factory\": ", f);
    json_str(f, r->factory);
    fputs(", \"metric\": ", f);
    json_str(f, r->metric);
    fprintf(f, ", \"d\": %zu, \"nb\": %zu, \"nq\": %zu, \"k\": %zu, \"nprobe\": %zu", r->d, r->nb, r->nq, r->k,
            r->nprobe);
    json_num(f, "k_factor", r->k_factor, 6);
    fprintf(f, ", \"threads\": %d, \"batch\": %zu, \"simd\": ", r->threads, r->batch);
    json_str(f, r->simd);
    json_num(f, "recall_at_1", r->recall_at_1, 6);
    json_num(f, "k_recall_at_k", r->k_recall_at_k, 6);
    json_num(f, "qps", r->qps, 6);
    json_num(f, "train_s", r->train_s, 5);
    json_num(f, "add_s", r->add_s, 5);
    json_num(f, "bytes_per_vector", r->bytes_per_vector, 6);
    json_num(f, "lat1_p50_us", r->lat1_p50_us, 5);
    json_num(f, "lat1_p99_us", r->lat1_p99_us, 5);
    json_num(f, "rvc_p50_ms", r->rvc_p50_ms, 5);
    json_num(f, "rvc_p99_ms", r->rvc_p99_ms, 5);
    fputs(", \"base\": ", f);
    json_str(f, r->base);
    fputs(", \"query\": ", f);
    json_str(f, r->query);
    if (cpu) {
        fputs(", \"cpu\": ", f);
        json_str(f, cpu);
    }
    if (compiler) {
        fputs(", \"compiler\": ", f);
        json_str(f, compiler);
    }
    fputs("}\n", f);
    fflush(f);
}

/* ------------------------------------------------------------- reading */

typedef struct jp {
    const char *p;
} jp;

static void jws(jp *j)
{
    while (isspace((unsigned char)*j->p)) j->p++;
}

/* Parses a string into out (truncated to outlen); 0 or -1. */
static int jstring(jp *j, char *out, size_t outlen)
{
    if (*j->p != '"') return -1;
    j->p++;
    size_t n = 0;
    while (*j->p && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\') {
            c = *j->p++;
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': /* keep ASCII, replace the rest */
                for (int i = 0; i < 4; i++)
                    if (!isxdigit((unsigned char)*j->p++)) return -1;
                c = '?';
                break;
            case 0: return -1;
            default: break; /* \" \\ \/ */
            }
        }
        if (n + 1 < outlen) out[n++] = c;
    }
    if (*j->p != '"') return -1;
    j->p++;
    if (outlen) out[n < outlen ? n : outlen - 1] = 0;
    return 0;
}

/* Skips any value (for nested objects/arrays we do not use). */
static int jskip(jp *j)
{
    jws(j);
    char tmp[8];
    if (*j->p == '"') return jstring(j, tmp, sizeof tmp);
    if (*j->p == '{' || *j->p == '[') {
        int depth = 0;
        do {
            if (*j->p == '"') {
                if (jstring(j, tmp, sizeof tmp)) return -1;
                continue;
            }
            if (*j->p == '{' || *j->p == '[') depth++;
            else if (*j->p == '}' || *j->p == ']') depth--;
            else if (!*j->p) return -1;
            j->p++;
        } while (depth > 0);
        return 0;
    }
    const char *s = j->p;
    while (*j->p && *j->p != ',' && *j->p != '}' && !isspace((unsigned char)*j->p)) j->p++;
    return j->p > s ? 0 : -1;
}

static int jnumber(jp *j, double *v)
{
    jws(j);
    if (!strncmp(j->p, "null", 4)) {
        j->p += 4;
        *v = NAN;
        return 0;
    }
    if (!strncmp(j->p, "NaN", 3)) { /* Python's json writes NaN for float('nan') */
        j->p += 3;
        *v = NAN;
        return 0;
    }
    char *end;
    *v = strtod(j->p, &end);
    if (end == j->p) return -1;
    j->p = end;
    return 0;
}

static int parse_row(const char *line, cli_row *r)
{
    cli_row_init(r);
    jp j = {line};
    jws(&j);
    if (*j.p != '{') return -1;
    j.p++;
    for (;;) {
        jws(&j);
        if (*j.p == '}') return 0;
        char key[64];
        if (jstring(&j, key, sizeof key)) return -1;
        jws(&j);
        if (*j.p != ':') return -1;
        j.p++;
        jws(&j);
        struct { const char *k; char *s; size_t n; } strs[] = {
            {"engine", r->engine, sizeof r->engine},    {"version", r->version, sizeof r->version},
            {"factory", r->factory, sizeof r->factory}, {"metric", r->metric, sizeof r->metric},
            {"simd", r->simd, sizeof r->simd},          {"base", r->base, sizeof r->base},
            {"query", r->query, sizeof r->query},
        };
        struct { const char *k; double *v; } nums[] = {
            {"k_factor", &r->k_factor},       {"recall_at_1", &r->recall_at_1},
            {"k_recall_at_k", &r->k_recall_at_k}, {"qps", &r->qps},
            {"train_s", &r->train_s},         {"add_s", &r->add_s},
            {"bytes_per_vector", &r->bytes_per_vector}, {"lat1_p50_us", &r->lat1_p50_us},
            {"lat1_p99_us", &r->lat1_p99_us}, {"rvc_p50_ms", &r->rvc_p50_ms},
            {"rvc_p99_ms", &r->rvc_p99_ms},
        };
        struct { const char *k; size_t *v; } sizes[] = {
            {"d", &r->d}, {"nb", &r->nb}, {"nq", &r->nq}, {"k", &r->k}, {"nprobe", &r->nprobe}, {"batch", &r->batch},
        };
        int done = 0;
        for (size_t i = 0; !done && i < sizeof strs / sizeof strs[0]; i++)
            if (!strcmp(key, strs[i].k)) {
                if (*j.p == '"' ? jstring(&j, strs[i].s, strs[i].n) : jskip(&j)) return -1;
                done = 1;
            }
        for (size_t i = 0; !done && i < sizeof nums / sizeof nums[0]; i++)
            if (!strcmp(key, nums[i].k)) {
                if (jnumber(&j, nums[i].v)) return -1;
                done = 1;
            }
        for (size_t i = 0; !done && i < sizeof sizes / sizeof sizes[0]; i++)
            if (!strcmp(key, sizes[i].k)) {
                double v;
                if (jnumber(&j, &v)) return -1;
                *sizes[i].v = v >= 0 && isfinite(v) ? (size_t)v : 0;
                done = 1;
            }
        if (!done && !strcmp(key, "threads")) {
            double v;
            if (jnumber(&j, &v)) return -1;
            r->threads = v >= 1 && v < 1e6 ? (int)v : 1;
            done = 1;
        }
        if (!done && jskip(&j)) return -1;
        jws(&j);
        if (*j.p == ',') j.p++;
        else if (*j.p != '}') return -1;
    }
}

int cli_rows_read(const char *path, cli_row **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return cli_error(CLI_EXIT_INPUT, "%s: cannot open", path);
    size_t cap = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        const char *s = line;
        while (isspace((unsigned char)*s)) s++;
        if (!*s || *s == '#') continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            cli_row *nr = realloc(*rows, cap * sizeof **rows);
            if (!nr) {
                rc = cli_error(CLI_EXIT_RUNTIME, "out of memory");
                break;
            }
            *rows = nr;
        }
        if (parse_row(s, &(*rows)[*n])) {
            rc = cli_error(CLI_EXIT_INPUT, "%s: line %zu is not a JSON object of benchmark results", path, lineno);
            break;
        }
        if (!(*rows)[*n].engine[0]) snprintf((*rows)[*n].engine, sizeof (*rows)[*n].engine, "?");
        ++*n;
    }
    free(line);
    fclose(f);
    if (rc) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}

/* ------------------------------------------------------------ Markdown */

void cli_table_header(FILE *f, size_t k, int threads, int latency)
{
    fprintf(f, "| nprobe | k_factor | R@1 | %zu-R@%zu | QPS 1 thread |", k, k);
    if (threads > 1) fprintf(f, " QPS %d threads |", threads);
    if (latency) fputs(" batch 1 p50 µs | p99 µs | batch 200, k=8 p50 ms | p99 ms |", f);
    fputs("\n|---:|---:|---:|---:|---:|", f);
    if (threads > 1) fputs("---:|", f);
    if (latency) fputs("---:|---:|---:|---:|", f);
    fputc('\n', f);
}

void cli_table_row(FILE *f, const cli_row *one, const cli_row *many, int latency)
{
    if (one->nprobe) fprintf(f, "| %zu ", one->nprobe);
    else fputs("| - ", f);
    fprintf(f, "| %g | %.3f | %.3f | %.0f |", one->k_factor, one->recall_at_1, one->k_recall_at_k, one->qps);
    if (many) fprintf(f, " %.0f |", many->qps);
    if (latency)
        fprintf(f, " %.1f | %.1f | %.2f | %.2f |", one->lat1_p50_us, one->lat1_p99_us, one->rvc_p50_ms,
                one->rvc_p99_ms);
    fputc('\n', f);
    fflush(f);
}

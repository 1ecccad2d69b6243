/* Messages, option parsing, progress bars and machine facts for the tool. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "synth.h"

int cli_quiet;
const char *cli_prog = "ivfpq";

int cli_error(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) /* one line, always */
        if (*p == '\n' || *p == '\r') *p = ' ';
    fprintf(stderr, "%s: %s\n", cli_prog, msg);
    return code;
}

void cli_note(const char *fmt, ...)
{
    if (cli_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static pthread_mutex_t why_mu = PTHREAD_MUTEX_INITIALIZER; /* searches log from threads */
static char why_msg[1024];

void cli_log(void *user, int level, int status, const char *message)
{
    (void)user;
    (void)status;
    if (level == IVFPQ_LOG_ERROR) {
        pthread_mutex_lock(&why_mu);
        snprintf(why_msg, sizeof why_msg, "%s", message);
        pthread_mutex_unlock(&why_mu);
        return;
    }
    if (level == IVFPQ_LOG_INFO && cli_quiet) return;
    if (level == IVFPQ_LOG_WARNING && cli_quiet) return;
    fprintf(stderr, "%s: %s: %s\n", cli_prog,
            level == IVFPQ_LOG_ERROR ? "error" : level == IVFPQ_LOG_WARNING ? "warning" : "info", message);
}

const char *cli_why(int status)
{
    static char out[1024];
    pthread_mutex_lock(&why_mu);
    snprintf(out, sizeof out, "%s", why_msg[0] ? why_msg : ivfpq_strerror(status));
    why_msg[0] = 0;
    pthread_mutex_unlock(&why_mu);
    return out;
}

int cli_exit_for_status(int status)
{
    switch (status) {
    case IVFPQ_OK: return CLI_EXIT_OK;
    case IVFPQ_E_PARSE:
    case IVFPQ_E_INVALID_ARG: return CLI_EXIT_USAGE;
    case IVFPQ_E_DIM:
    case IVFPQ_E_NONFINITE:
    case IVFPQ_E_TOO_FEW_POINTS:
    case IVFPQ_E_FORMAT:
    case IVFPQ_E_CORRUPT:
    case IVFPQ_E_TRUNCATED:
    case IVFPQ_E_CHECKSUM:
    case IVFPQ_E_VERSION: return CLI_EXIT_INPUT;
    default: return CLI_EXIT_RUNTIME;
    }
}

/* ---------------------------------------------------------- arguments */

static int strs_add(cli_strs *v, const char *s)
{
    const char **nv = realloc(v->v, (v->n + 1) * sizeof *nv);
    if (!nv) return cli_error(CLI_EXIT_RUNTIME, "out of memory");
    nv[v->n++] = s;
    v->v = nv;
    return 0;
}

int cli_parse_args(int argc, char **argv, const cli_optdef *defs, const char *help, const char **pos,
                   size_t npos)
{
    size_t np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            return -1;
        }
        const cli_optdef *d = defs;
        for (; d->shortname || d->longname; d++) {
            size_t ll = d->longname ? strlen(d->longname) : 0;
            if ((d->shortname && !strcmp(a, d->shortname)) || (d->longname && !strcmp(a, d->longname))) break;
            if (d->longname && d->kind != CLI_OPT_FLAG && !strncmp(a, d->longname, ll) && a[ll] == '=') {
                v = a + ll + 1;
                break;
            }
        }
        if (!d->shortname && !d->longname) {
            if (a[0] == '-' && a[1]) return cli_error(CLI_EXIT_USAGE, "unknown option %s (see --help)", a);
            if (np == npos) return cli_error(CLI_EXIT_USAGE, "unexpected argument %s (see --help)", a);
            pos[np++] = a;
            continue;
        }
        if (d->kind == CLI_OPT_FLAG) {
            *(int *)d->dst = 1;
            continue;
        }
        if (!v) {
            if (i + 1 >= argc) return cli_error(CLI_EXIT_USAGE, "option %s needs a value (see --help)", a);
            v = argv[++i];
        }
        const char *name = d->longname ? d->longname : d->shortname;
        switch (d->kind) {
        case CLI_OPT_STR: *(const char **)d->dst = v; break;
        case CLI_OPT_SIZE:
            if (cli_parse_size(name, v, d->dst)) return CLI_EXIT_USAGE;
            break;
        case CLI_OPT_DOUBLE:
            if (cli_parse_double(name, v, d->dst)) return CLI_EXIT_USAGE;
            break;
        case CLI_OPT_STRS:
        case CLI_OPT_APPEND:
            if (strs_add(d->dst, v)) return CLI_EXIT_RUNTIME;
            while (d->kind == CLI_OPT_STRS && i + 1 < argc && argv[i + 1][0] != '-') /* -f A B C */
                if (strs_add(d->dst, argv[++i])) return CLI_EXIT_RUNTIME;
            break;
        default: break;
        }
    }
    return 0;
}

int cli_parse_size(const char *opt, const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        return cli_error(CLI_EXIT_USAGE, "%s: \"%s\" is not a non-negative integer", opt, s);
    *out = (size_t)v;
    return 0;
}

int cli_parse_double(const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return cli_error(CLI_EXIT_USAGE, "%s: \"%s\" is not a number", opt, s);
    *out = v;
    return 0;
}

int cli_parse_list(const char *opt, const char *s, double **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    double *v = NULL;
    size_t cnt = 0, cap = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double a = strtod(p, &end), b = a;
        if (end == p || !(a > 0)) goto bad;
        p = end;
        if (*p == '-') { /* a-b: powers of two from a to b */
            b = strtod(p + 1, &end);
            if (end == p + 1 || b < a) goto bad;
            p = end;
        }
        for (double x = a; x <= b; x *= 2) {
            if (cnt == cap) {
                cap = cap ? 2 * cap : 16;
                double *nv = realloc(v, cap * sizeof *v);
                if (!nv) {
                    free(v);
                    return cli_error(CLI_EXIT_RUNTIME, "out of memory");
                }
                v = nv;
            }
            v[cnt++] = x;
            if (cnt > 4096) goto bad;
        }
        if (*p == ',') p++;
        else if (*p) goto bad;
    }
    if (!cnt) goto bad;
    *out = v;
    *n = cnt;
    return 0;
bad:
    free(v);
    return cli_error(CLI_EXIT_USAGE, "%s: bad list \"%s\" (expected e.g. 1,2,4,8 or 1-64)", opt, s);
}

int cli_parse_metric(const char *s, int *cosine, ivfpq_metric *metric)
{
    *cosine = 0;
    if (!strcmp(s, "l2") || !strcmp(s, "L2")) *metric = IVFPQ_METRIC_L2;
    else if (!strcmp(s, "ip") || !strcmp(s, "IP") || !strcmp(s, "inner_product")) *metric = IVFPQ_METRIC_INNER_PRODUCT;
    else if (!strcmp(s, "cos") || !strcmp(s, "cosine") || !strcmp(s, "angular")) {
        *metric = IVFPQ_METRIC_INNER_PRODUCT;
        *cosine = 1;
    } else {
        return cli_error(CLI_EXIT_USAGE, "-m: unknown metric \"%s\" (expected l2, ip or cos)", s);
    }
    return 0;
}

const char *cli_metric_name(ivfpq_metric metric, int cosine)
{
    return cosine ? "cos" : metric == IVFPQ_METRIC_L2 ? "l2" : "ip";
}

/* ----------------------------------------------------------- progress */

void cli_bar_init(cli_bar *b)
{
    memset(b, 0, sizeof *b);
    b->enabled = !cli_quiet && isatty(STDERR_FILENO);
}

int cli_progress(void *user, const char *stage, size_t done, size_t total)
{
    cli_bar *b = user;
    if (!b || !b->enabled) return 0;
    double now = synth_now();
    int new_stage = strncmp(b->stage, stage, sizeof b->stage - 1) != 0;
    /* redraw at most 10 times a second, but always the first and last step */
    if (!new_stage && done < total && now - b->last_draw < 0.1) return 0;
    if (new_stage && b->drawn) fputc('\n', stderr);
    snprintf(b->stage, sizeof b->stage, "%s", stage);
    b->last_draw = now;
    const int width = 30;
    int fill = total ? (int)((double)width * (double)done / (double)total) : width;
    if (fill > width) fill = width;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r%-14s [%s] %zu/%zu", stage, bar, done, total);
    fflush(stderr);
    b->drawn = 1;
    return 0;
}

void cli_bar_end(cli_bar *b)
{
    if (b->enabled && b->drawn) {
        fputc('\n', stderr);
        fflush(stderr);
    }
    b->drawn = 0;
    b->stage[0] = 0;
}

/* ------------------------------------------------------- machine facts */

const char *cli_cpu_model(void)
{
    static char model[128];
    if (model[0]) return model;
    snprintf(model, sizeof model, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return model;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t') c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(model, sizeof model, "%s", c);
            }
            break;
        }
    }
    fclose(f);
    return model;
}

const char *cli_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}

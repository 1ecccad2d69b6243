/*
 * Recall-vs-QPS plot as a self-contained SVG (no dependencies): two panels,
 * x = R@1 and x = k-R@k, y = single-thread QPS on a log scale. One curve
 * per engine + factory + k_factor, points along it are nprobe values. A
 * libivfpq curve and the faiss curve of the same setting share a colour;
 * faiss is dashed with square markers.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { PW = 520, PH = 400, ML = 70, MR = 20, MT = 60, MB = 50, GAP = 40 };

static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

typedef struct curve {
    const cli_row *first;
    size_t *pts, n;
    int colour, faiss;
} curve;

static int same_curve(const cli_row *a, const cli_row *b)
{
    return !strcmp(a->engine, b->engine) && !strcmp(a->factory, b->factory) && a->k_factor == b->k_factor &&
           !strcmp(a->metric, b->metric);
}

static int usable(const cli_row *r)
{
    return r->threads == 1 && isfinite(r->qps) && r->qps > 0 && isfinite(r->recall_at_1) &&
           isfinite(r->k_recall_at_k);
}

static const cli_row *g_rows; /* for qsort of point indices */
static int cmp_nprobe(const void *a, const void *b)
{
    size_t x = g_rows[*(const size_t *)a].nprobe, y = g_rows[*(const size_t *)b].nprobe;
    return x < y ? -1 : x > y;
}

int cli_plot_svg(const char *path, const cli_row *rows, size_t n, const char *title)
{
    curve *cv = calloc(n + 1, sizeof *cv);
    size_t ncv = 0;
    if (!cv) return cli_error(CLI_EXIT_RUNTIME, "out of memory");
    double qmin = INFINITY, qmax = 0, rmin = 1;
    for (size_t i = 0; i < n; i++) {
        if (!usable(&rows[i])) continue;
        size_t c = 0;
        while (c < ncv && !same_curve(cv[c].first, &rows[i])) c++;
        if (c == ncv) {
            cv[c].first = &rows[i];
            cv[c].pts = calloc(n, sizeof(size_t));
            if (!cv[c].pts) break;
            cv[c].faiss = !strcmp(rows[i].engine, "faiss");
            ncv++;
        }
        cv[c].pts[cv[c].n++] = i;
        if (rows[i].qps < qmin) qmin = rows[i].qps;
        if (rows[i].qps > qmax) qmax = rows[i].qps;
        if (rows[i].recall_at_1 < rmin) rmin = rows[i].recall_at_1;
        if (rows[i].k_recall_at_k < rmin) rmin = rows[i].k_recall_at_k;
    }
    /* a colour per factory + k_factor, shared by the engines */
    int ncol = 0;
    for (size_t c = 0; c < ncv; c++) {
        cv[c].colour = -1;
        for (size_t e = 0; e < c; e++)
            if (!strcmp(cv[e].first->factory, cv[c].first->factory) && cv[e].first->k_factor == cv[c].first->k_factor)
                cv[c].colour = cv[e].colour;
        if (cv[c].colour < 0) cv[c].colour = ncol++;
        g_rows = rows;
        qsort(cv[c].pts, cv[c].n, sizeof(size_t), cmp_nprobe);
    }
    if (!ncv) {
        free(cv);
        return cli_error(CLI_EXIT_INPUT, "plot: no single-thread rows with recall and QPS to draw");
    }
    double x0 = floor(rmin * 10.0) / 10.0;
    if (x0 > 0.9) x0 = 0.9;
    if (x0 < 0) x0 = 0;
    double ly0 = floor(log10(qmin)), ly1 = ceil(log10(qmax));
    if (ly1 <= ly0) ly1 = ly0 + 1;

    FILE *f = fopen(path, "w");
    if (!f) {
        for (size_t c = 0; c < ncv; c++) free(cv[c].pts);
        free(cv);
        return cli_error(CLI_EXIT_RUNTIME, "%s: cannot create the plot", path);
    }
    int legend_h = 22 * (int)ncv + 20;
    int W = ML + PW + GAP + ML + PW + MR, H = MT + PH + MB + legend_h;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"13\">\n", W, H, W, H);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"26\" font-size=\"16\" font-weight=\"bold\">", ML);
    xml_text(f, title);
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"%d\" y=\"46\" fill=\"#555\">single thread; points along a curve are nprobe values "
               "(labelled on the right); up and right is better</text>\n", ML);

    for (int panel = 0; panel < 2; panel++) {
        int ox = ML + panel * (PW + GAP + ML), oy = MT;
        size_t k = cv[0].first->k;
        char xlabel[64];
        if (panel == 0) snprintf(xlabel, sizeof xlabel, "R@1 (true nearest neighbour ranked first)");
        else snprintf(xlabel, sizeof xlabel, "%zu-R@%zu (share of the true %zu found)", k, k, k);
        /* grid and ticks */
        double xstep = 1.0 - x0 > 0.45 ? 0.1 : 0.05;
        for (double xv = x0; xv <= 1.0 + 1e-9; xv += xstep) {
            double px = ox + (xv - x0) / (1.0 - x0) * PW;
            fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e5e5e5\"/>\n", px, oy, px, oy + PH);
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.2f</text>\n", px, oy + PH + 18, xv);
        }
        for (double e = ly0; e <= ly1 + 1e-9; e += 1) {
            static const double mult[] = {1, 2, 5};
            for (int m = 0; m < 3; m++) {
                double lv = e + log10(mult[m]);
                if (lv > ly1 + 1e-9) break;
                double py = oy + PH - (lv - ly0) / (ly1 - ly0) * PH;
                fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\"/>\n", ox, py, ox + PW, py,
                        m ? "#f0f0f0" : "#d8d8d8");
                double v = pow(10, lv);
                char lab[32];
                if (v >= 1e6) snprintf(lab, sizeof lab, "%gM", v / 1e6);
                else if (v >= 1e3) snprintf(lab, sizeof lab, "%gk", v / 1e3);
                else snprintf(lab, sizeof lab, "%g", v);
                fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"%s\">%s</text>\n", ox - 6, py + 4,
                        m ? "#888" : "#000", lab);
            }
        }
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n", ox, oy, PW, PH);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", ox + PW / 2, oy + PH + 40);
        xml_text(f, xlabel);
        fputs("</text>\n", f);
        fprintf(f, "<text transform=\"translate(%d,%d) rotate(-90)\" text-anchor=\"middle\">queries per second "
                   "(log scale)</text>\n", ox - 52, oy + PH / 2);
        /* curves */
        for (size_t c = 0; c < ncv; c++) {
            const char *col = palette[cv[c].colour % (int)(sizeof palette / sizeof palette[0])];
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", col,
                    cv[c].faiss ? " stroke-dasharray=\"6,4\"" : "");
            for (size_t i = 0; i < cv[c].n; i++) {
                const cli_row *r = &rows[cv[c].pts[i]];
                double xv = panel ? r->k_recall_at_k : r->recall_at_1;
                double px = ox + (xv - x0) / (1.0 - x0) * PW;
                double py = oy + PH - (log10(r->qps) - ly0) / (ly1 - ly0) * PH;
                fprintf(f, "%.1f,%.1f ", px, py);
            }
            fputs("\"/>\n", f);
            for (size_t i = 0; i < cv[c].n; i++) {
                const cli_row *r = &rows[cv[c].pts[i]];
                double xv = panel ? r->k_recall_at_k : r->recall_at_1;
                double px = ox + (xv - x0) / (1.0 - x0) * PW;
                double py = oy + PH - (log10(r->qps) - ly0) / (ly1 - ly0) * PH;
                if (cv[c].faiss)
                    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"7\" height=\"7\" fill=\"white\" stroke=\"%s\"/>\n",
                            px - 3.5, py - 3.5, col);
                else
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", px, py, col);
                if (panel == 1 && !cv[c].faiss && r->nprobe)
                    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"%s\">%zu</text>\n", px + 5, py - 5,
                            col, r->nprobe);
            }
        }
    }
    /* legend */
    int ly = MT + PH + MB + 16;
    for (size_t c = 0; c < ncv; c++) {
        const cli_row *r = cv[c].first;
        const char *col = palette[cv[c].colour % (int)(sizeof palette / sizeof palette[0])];
        int y = ly + 22 * (int)c;
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", ML, y, ML + 40,
                y, col, cv[c].faiss ? " stroke-dasharray=\"6,4\"" : "");
        fprintf(f, "<text x=\"%d\" y=\"%d\">", ML + 50, y + 4);
        char lab[320];
        snprintf(lab, sizeof lab, "%s%s%s: %s, k_factor %g, %s, SIMD %s, %zu x %zu", r->engine, r->version[0] ? " " : "",
                 r->version, r->factory, r->k_factor, r->metric, r->simd[0] ? r->simd : "?", r->nb, r->d);
        xml_text(f, lab);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0) bad = 1;
    for (size_t c = 0; c < ncv; c++) free(cv[c].pts);
    free(cv);
    if (bad) return cli_error(CLI_EXIT_RUNTIME, "%s: write error", path);
    return 0;
}

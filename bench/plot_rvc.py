#!/usr/bin/env python3
"""Recall-vs-latency SVG of bench_rvc.c's CSV (and bench_rvc_faiss.py's).

    python3 bench/plot_rvc.py -o docs/rvc-latency.svg bench/results/rvc.csv
    python3 bench/plot_rvc.py --markdown bench/results/rvc.csv   (the table instead)

One panel per (d, N): x = median time of one 200-query chunk of the whole
RVC step (search + blend), log scale; y = 8-NN recall. One curve per index
family (points = nprobe); with --faiss, faiss rows dashed with square markers. Standard
library only.
"""
import argparse
import csv
import math
from collections import OrderedDict

FIELDS = ["engine", "N", "d", "spec", "nprobe", "k_factor", "recall", "search_ms", "blend_ms",
          "train_s", "add_s", "bytes_per_vec", "train_points"]
COLOURS = {"rvc": "#d62728", "pq4": "#1f77b4", "pq1": "#2ca02c"}
LABELS = {"rvc": "IVF{min(16\u221aN, N/39)},Flat (RVC)", "pq4": "IVF{4\u221aN},PQ{d/2}x4fs,RFlat",
          "pq1": "IVF{\u221aN},PQ{d/2}x4fs,RFlat"}
PW, PH, ML, MR, MT, MB, GAP = 330, 260, 55, 15, 40, 45, 25


def family(row):
    if row["spec"].endswith(",Flat"):
        return "rvc"
    nlist = int(row["spec"][3:row["spec"].index(",")])
    return "pq1" if nlist <= math.isqrt(int(row["N"])) + 1 else "pq4"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", help="SVG to write")
    ap.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    ap.add_argument("--choice", action="store_true",
                    help="print the short Markdown table of docs/RVC.md (libivfpq, nprobe 1, 2, 4)")
    ap.add_argument("--faiss", action="store_true",
                    help="also draw faiss's rows (Debian's generic build: its times stretch the axis)")
    ap.add_argument("csv", nargs="+")
    a = ap.parse_args()
    rows = []
    for path in a.csv:
        with open(path) as f:
            for r in csv.reader(f):
                if r and r[0] in ("ivfpq", "faiss"):
                    # the factory string holds commas and is not quoted
                    r = r[:3] + [",".join(r[3:len(r) - 9])] + r[len(r) - 9:]
                    rows.append(dict(zip(FIELDS, r)))
    if a.choice:
        print("| N | d | index | nprobe | 8-NN recall | ms per chunk |")
        print("|---:|---:|---|---:|---:|---:|")
        key = lambda r: (int(r["d"]), int(r["N"]), ["rvc", "pq1", "pq4"].index(family(r)),
                         int(r["nprobe"]))
        for r in sorted(rows, key=key):
            if r["engine"] != "ivfpq" or int(r["nprobe"]) not in ((1,) if family(r) == "rvc"
                                                                  else (1, 2, 4)):
                continue
            name = r["spec"] + (" (RVC's)" if family(r) == "rvc" else "")
            print("| %s | %s | %s | %s | %.3f | %.1f |" % ("{:,}".format(int(r["N"])), r["d"], name,
                  r["nprobe"], float(r["recall"]), float(r["blend_ms"])))
        return
    if a.markdown:
        print("| N | d | index | nprobe | engine | 8-NN recall | search ms | search+blend ms "
              "| train s | add s | bytes/vector |")
        print("|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|")
        key = lambda r: (int(r["d"]), int(r["N"]), ["rvc", "pq4", "pq1"].index(family(r)),
                         int(r["nprobe"]), r["engine"] != "ivfpq")
        for r in sorted(rows, key=key):
            print("| %s | %s | %s | %s | %s | %.3f | %.2f | %.2f | %.1f | %.1f | %s |" % (
                "{:,}".format(int(r["N"])), r["d"], r["spec"], r["nprobe"], r["engine"],
                float(r["recall"]), float(r["search_ms"]), float(r["blend_ms"]), float(r["train_s"]),
                float(r["add_s"]), ("%.0f" % float(r["bytes_per_vec"])) if r["bytes_per_vec"] else ""))
        return
    if not a.o:
        ap.error("-o FILE.svg or --markdown")
    if not a.faiss:
        rows = [r for r in rows if r["engine"] == "ivfpq"]
    panels = OrderedDict()
    for r in sorted(rows, key=lambda r: (int(r["d"]), int(r["N"]))):
        panels.setdefault((int(r["d"]), int(r["N"])), []).append(r)
    ns = sorted({k[1] for k in panels})
    ds = sorted({k[0] for k in panels})
    W = ML + len(ns) * (PW + GAP) + MR
    H = MT + len(ds) * (PH + MB + GAP) + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="11">' % (W, H), '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="14">RVC retrieval step, one chunk of 200 queries, k=8, '
           'single thread: 8-NN recall vs median time (search + blend)</text>' % ML]
    for (d, N), prs in panels.items():
        x0 = ML + ns.index(N) * (PW + GAP)
        y0 = MT + ds.index(d) * (PH + MB + GAP)
        ms = [float(r["blend_ms"]) for r in prs if r["blend_ms"]]
        lo = 10 ** math.floor(math.log10(min(ms)))
        hi = 10 ** math.ceil(math.log10(max(ms)))
        ylo = max(0.0, math.floor(min(float(r["recall"]) for r in prs) * 10) / 10)

        def X(v):
            return x0 + PW * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

        def Y(v):
            return y0 + PH - PH * (v - ylo) / (1.0 - ylo)
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>'
                   % (x0, y0, PW, PH))
        out.append('<text x="%d" y="%d" font-weight="bold">N = %s, d = %d</text>'
                   % (x0 + 5, y0 - 6, "{:,}".format(N), d))
        dec = lo
        while dec <= hi * 1.0001:
            for m in (1, 2, 5):
                v = dec * m
                if lo <= v <= hi:
                    out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/>'
                               % (X(v), X(v), y0, y0 + PH))
                    out.append('<text x="%.1f" y="%d" text-anchor="middle">%g</text>'
                               % (X(v), y0 + PH + 14, v))
            dec *= 10
        t = ylo
        while t <= 1.0001:
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>'
                       % (x0, x0 + PW, Y(t), Y(t)))
            out.append('<text x="%d" y="%.1f" text-anchor="end">%.1f</text>' % (x0 - 4, Y(t) + 4, t))
            t += 0.1
        out.append('<text x="%d" y="%d" text-anchor="middle">ms per chunk (log)</text>'
                   % (x0 + PW // 2, y0 + PH + 30))
        out.append('<text x="%d" y="%d" transform="rotate(-90 %d %d)" text-anchor="middle">'
                   '8-NN recall</text>' % (x0 - 38, y0 + PH // 2, x0 - 38, y0 + PH // 2))
        curves = OrderedDict()
        for r in prs:
            curves.setdefault((r["engine"], family(r)), []).append(r)
        for (eng, fam), pts in curves.items():
            pts.sort(key=lambda r: int(r["nprobe"]))
            col = COLOURS[fam]
            path = " ".join("%.1f,%.1f" % (X(float(r["blend_ms"])), Y(float(r["recall"]))) for r in pts)
            dash = ' stroke-dasharray="5,3"' if eng == "faiss" else ""
            out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="1.6"%s/>'
                       % (path, col, dash))
            for r in pts:
                x, y = X(float(r["blend_ms"])), Y(float(r["recall"]))
                if eng == "faiss":
                    out.append('<rect x="%.1f" y="%.1f" width="6" height="6" fill="white" stroke="%s"/>'
                               % (x - 3, y - 3, col))
                else:
                    out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (x, y, col))
                out.append('<text x="%.1f" y="%.1f" font-size="9" fill="%s">%s</text>'
                           % (x + 4, y - 4, col, r["nprobe"]))
    ly = H - 18
    lx = ML
    for fam in ("rvc", "pq4", "pq1"):
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/>'
                   % (lx, lx + 20, ly, ly, COLOURS[fam]))
        out.append('<text x="%d" y="%d">%s</text>' % (lx + 25, ly + 4, LABELS[fam]))
        lx += 260
    out.append('<text x="%d" y="%d">%slabels: nprobe</text>' % (
        lx, ly + 4, "solid: libivfpq; dashed, squares: faiss (Debian generic build); " if a.faiss
        else "libivfpq; "))
    out.append("</svg>")
    with open(a.o, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Run the sweep of `ivfpq bench` through faiss on the same files, and merge.

    compare_faiss.py -i BASE -q QUERIES [--gt GT] [-m l2|ip|cos] -f SPEC [SPEC...]
                     [--nprobe 1,2,4] [--k-factor 1,4] [-k 10] [--json faiss.jsonl]
                     [--ivfpq-json ours.jsonl] [--ivfpq build/ivfpq --plot both.svg]
    compare_faiss.py --from-json faiss.jsonl --ivfpq-json ours.jsonl   (merge saved runs only)

Needs numpy and faiss (on Debian: /usr/bin/python3 with python3-faiss).
Same data readers, recall definitions and measurement rules as `ivfpq bench`:
  R@1     share of queries whose true nearest neighbour is ranked first
  k-R@k   mean |returned k ∩ true k| / k
  QPS     one thread (faiss.omp_set_num_threads(1)), best of --runs passes over
          the query set, each at least --min-time seconds (the set repeats)
With --ivfpq-json, prints one table side by side: recall of both (parity), QPS of
both, and the ratio libivfpq/faiss at the same setting and at equal-or-better
k-R@k (the fastest libivfpq setting of the same factory string that reaches
faiss's k-R@k). Exit status: 0 ok, 2 usage error, 3 bad input file.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

try:
    import numpy as np
    import faiss
except ImportError as e:  # pragma: no cover
    sys.exit("compare_faiss.py: needs numpy and faiss (%s); on Debian run it with /usr/bin/python3 "
             "after apt-get install python3-faiss" % e)


def fail(code, msg):
    print("compare_faiss.py: " + msg.replace("\n", " "), file=sys.stderr)
    sys.exit(code)


# ------------------------------------------------------------------ readers

def read_vecs(path, dtype, isize):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size < 4:
        fail(3, "%s: empty or truncated" % path)
    d = int(raw[:4].view("<i4")[0])
    row = 4 + d * isize
    if d <= 0 or raw.size % row:
        fail(3, "%s: truncated at byte %d (d = %d)" % (path, raw.size, d))
    m = raw.reshape(-1, row)
    if not (m[:, :4].copy().view("<i4") == d).all():
        fail(3, "%s: rows of different dimension" % path)
    return m[:, 4:].copy().view(dtype).reshape(-1, d)


def read_bin(path, dtype, isize):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size < 8:
        fail(3, "%s: truncated" % path)
    n, d = (int(v) for v in raw[:8].view("<u4"))
    if raw.size != 8 + n * d * isize:
        fail(3, "%s: size %d does not match n = %d, d = %d" % (path, raw.size, n, d))
    return raw[8:].view(dtype).reshape(n, d)


def read_npy(path):
    try:
        a = np.load(path, mmap_mode=None, allow_pickle=False)
    except Exception as e:
        fail(3, "%s: %s" % (path, e))
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        fail(3, "%s: bad shape %s: expected 2-D (n, d)" % (path, a.shape))
    return a


def read_float(path):
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.endswith(".npy") and not n.startswith("."))
        if not names:
            fail(3, "%s: no .npy files in the directory" % path)
        parts = [read_npy(os.path.join(path, n)) for n in names]
        for n, p in zip(names, parts):
            if p.dtype != np.float32 or p.shape[1] != parts[0].shape[1]:
                fail(3, "%s: dtype %s, d = %d (first file: float32, d = %d)" %
                     (os.path.join(path, n), p.dtype, p.shape[1], parts[0].shape[1]))
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        a = read_npy(path)
        if a.dtype != np.float32:
            fail(3, "%s: dtype %s is not float32" % (path, a.dtype))
    elif ext == ".fvecs":
        a = read_vecs(path, "<f4", 4)
    elif ext == ".bvecs":
        a = read_vecs(path, np.uint8, 1).astype(np.float32)
    elif ext == ".fbin":
        a = read_bin(path, "<f4", 4)
    elif ext == ".u8bin":
        a = read_bin(path, np.uint8, 1).astype(np.float32)
    else:
        fail(3, "%s: unknown file type" % path)
    return np.ascontiguousarray(a, dtype=np.float32)


def read_ids(path):
    ext = os.path.splitext(path)[1].lower()
    if ext == ".ivecs":
        return read_vecs(path, "<i4", 4)
    if ext == ".ibin":
        return read_bin(path, "<i4", 4)
    if ext == ".npy":
        return read_npy(path).astype(np.int64)
    fail(3, "%s: expected .ivecs, .ibin or .npy ground truth" % path)


# ------------------------------------------------------------- measuring

def recalls(I, gt, k):
    r1 = float(np.mean(I[:, 0] == gt[:, 0]))
    hits = sum(len(set(I[i, :k].tolist()) & set(gt[i, :k].tolist()) - {-1}) for i in range(I.shape[0]))
    return r1, hits / float(I.shape[0] * k)


def best_qps(index, xq, k, runs, min_time):
    t0 = time.perf_counter()
    index.search(xq, k)  # warm-up and calibration
    t1 = time.perf_counter() - t0
    reps = max(1, int(math.ceil(min_time / max(t1, 1e-7))))
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(reps):
            index.search(xq, k)
        best = min(best, time.perf_counter() - t0)
    return xq.shape[0] * reps / best


def parse_list(s):
    out = []
    for part in s.split(","):
        if "-" in part:
            a, b = (float(v) for v in part.split("-"))
            while a <= b:
                out.append(a)
                a *= 2
        else:
            out.append(float(part))
    return out


def simd_of(opts):
    for tag in ("AVX512", "AVX2", "NEON", "SVE"):
        if tag in opts:
            return tag.lower()
    return "generic"


# ----------------------------------------------------------------- merge

def merge_table(ours, theirs, k):
    ours = [r for r in ours if r.get("threads", 1) == 1 and r.get("engine") == "libivfpq"]
    theirs = [r for r in theirs if r.get("threads", 1) == 1]
    lines = ["| factory | nprobe | k_factor | R@1 libivfpq | R@1 faiss | %d-R@%d libivfpq | %d-R@%d faiss | "
             "QPS libivfpq | QPS faiss | ratio | best libivfpq at >= faiss %d-R@%d | ratio |" % (k, k, k, k, k, k),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for f in theirs:
        same = [r for r in ours if r["factory"] == f["factory"] and r["nprobe"] == f["nprobe"]
                and abs(r["k_factor"] - f["k_factor"]) < 1e-9]
        o = same[0] if same else None
        better = [r for r in ours if r["factory"] == f["factory"] and r["k_recall_at_k"] >= f["k_recall_at_k"] - 1e-9]
        b = max(better, key=lambda r: r["qps"]) if better else None

        def fmt(v, spec):
            return format(v, spec) if v is not None else "-"
        lines.append("| %s | %s | %g | %s | %.3f | %s | %.3f | %s | %.0f | %s | %s | %s |" % (
            f["factory"], f["nprobe"] or "-", f["k_factor"],
            fmt(o and o["recall_at_1"], ".3f"), f["recall_at_1"],
            fmt(o and o["k_recall_at_k"], ".3f"), f["k_recall_at_k"],
            fmt(o and o["qps"], ".0f"), f["qps"],
            fmt(o and o["qps"] / f["qps"], ".2f"),
            ("nprobe %s, k_factor %g (%.3f)" % (b["nprobe"] or "-", b["k_factor"], b["k_recall_at_k"])) if b else "none",
            fmt(b and b["qps"] / f["qps"], ".2f")))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-i", "--base")
    ap.add_argument("-q", "--queries")
    ap.add_argument("--gt")
    ap.add_argument("-m", "--metric", default="l2", choices=["l2", "ip", "cos"])
    ap.add_argument("-f", "--factory", nargs="+", action="extend")
    ap.add_argument("--from-json", help="do not run faiss: merge its rows saved earlier with --json")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--nprobe", default="1-64")
    ap.add_argument("--k-factor", default="4")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--max-queries", type=int, default=0)
    ap.add_argument("--train-rows", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--json", help="write faiss's rows (JSON lines, same fields as ivfpq bench --json)")
    ap.add_argument("--ivfpq-json", action="append", default=[], help="ivfpq bench --json output to merge")
    ap.add_argument("--ivfpq", help="path of the ivfpq tool, to draw --plot")
    ap.add_argument("--plot", help="SVG with both engines (needs --ivfpq and --ivfpq-json)")
    a = ap.parse_args()

    if a.from_json:
        with open(a.from_json) as f:
            rows = [json.loads(l) for l in f if l.strip()]
        if not rows:
            fail(3, "%s: no rows" % a.from_json)
        opts = rows[0].get("compile_options", "unknown")
        print("# faiss %s rows from %s, compile options: %s" % (rows[0].get("version", "?"), a.from_json, opts))
        report(a, rows, opts, rows[0].get("k", 10), rows[0].get("nb", 0), rows[0].get("d", 0),
               rows[0].get("nq", 0), rows[0].get("metric", "?"), rows[0].get("base", "?"))
        return
    if not (a.base and a.queries and a.factory):
        fail(2, "needs -i BASE, -q QUERIES and -f SPEC (or --from-json)")
    opts = faiss.get_compile_options() if hasattr(faiss, "get_compile_options") else "unknown"
    print("# faiss %s, compile options: %s; numpy %s; python %s" %
          (faiss.__version__, opts, np.__version__, platform.python_version()))
    if "AVX2" not in opts and "AVX512" not in opts and "NEON" not in opts:
        print("# WARNING: this faiss is a GENERIC build (no AVX2/AVX-512): its recall is the reference, its speed "
              "is not. Compare speed with faiss built for the same SIMD level as libivfpq.")
    faiss.omp_set_num_threads(1)

    xb = read_float(a.base)
    xq = read_float(a.queries)
    if a.max_queries and a.max_queries < xq.shape[0]:
        xq = np.ascontiguousarray(xq[:a.max_queries])
    if xq.shape[1] != xb.shape[1]:
        fail(3, "%s: d = %d, but the base vectors have d = %d" % (a.queries, xq.shape[1], xb.shape[1]))
    metric = faiss.METRIC_L2 if a.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    if a.metric == "cos":
        faiss.normalize_L2(xb)
        faiss.normalize_L2(xq)
    nb, d = xb.shape
    nq, k = xq.shape[0], a.k
    if a.gt:
        gt = read_ids(a.gt)
        if gt.shape[0] < nq or gt.shape[1] < k:
            fail(3, "%s: %d x %d ground truth for %d queries, k = %d" % (a.gt, gt.shape[0], gt.shape[1], nq, k))
        gt = gt[:nq, :k]
    else:
        flat = faiss.IndexFlat(d, metric)
        flat.add(xb)
        gt = flat.search(xq, k)[1]
    print("# data: %s (%d x %d), %s (%d queries), metric %s, k = %d; one thread, best of %d passes of >= %g s"
          % (a.base, nb, d, a.queries, nq, a.metric, k, a.runs, a.min_time))

    nprobes = [int(v) for v in parse_list(a.nprobe)]
    kfs = parse_list(a.k_factor)
    out = open(a.json, "w") if a.json else None
    rows = []
    print("\n| factory | nprobe | k_factor | R@1 | %d-R@%d | QPS | train s | add s | bytes/vector |" % (k, k))
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spec in a.factory:
        try:
            index = faiss.index_factory(d, spec, metric)
        except Exception as e:
            fail(2, "-f %s: faiss cannot build it: %s" % (spec, str(e).splitlines()[0]))
        train = xb
        if a.train_rows and a.train_rows < nb:
            rs = np.random.RandomState(a.seed)
            train = xb[np.sort(rs.choice(nb, a.train_rows, replace=False))]
        t0 = time.perf_counter()
        index.train(train)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        index.add(xb)
        add_s = time.perf_counter() - t0
        bpv = len(faiss.serialize_index(index)) / float(nb)  # serialized size as a proxy for memory
        refine = isinstance(index, faiss.IndexRefine)
        inner = faiss.downcast_index(index.base_index) if refine else index
        try:
            ivf = faiss.extract_index_ivf(inner)
        except Exception:
            ivf = None
        ps = faiss.ParameterSpace()
        seen = set()
        for np_ in (nprobes if ivf is not None else [0]):
            npc = min(np_, ivf.nlist) if ivf is not None else 0
            if npc in seen:
                continue
            seen.add(npc)
            for kf in (kfs if refine else [1.0]):
                params = []
                if ivf is not None:
                    params.append("nprobe=%d" % npc)
                if refine:
                    params.append("k_factor_rf=%g" % kf)
                if params:
                    ps.set_index_parameters(index, ",".join(params))
                I = index.search(xq, k)[1]
                r1, rk = recalls(I, gt, k)
                qps = best_qps(index, xq, k, a.runs, a.min_time)
                row = {"engine": "faiss", "version": faiss.__version__, "factory": spec, "metric": a.metric,
                       "d": d, "nb": nb, "nq": nq, "k": k, "nprobe": npc, "k_factor": kf, "threads": 1,
                       "batch": nq, "simd": simd_of(opts), "recall_at_1": r1, "k_recall_at_k": rk, "qps": qps,
                       "train_s": train_s, "add_s": add_s, "bytes_per_vector": bpv,
                       "base": a.base, "query": a.queries, "compile_options": opts}
                rows.append(row)
                if out:
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                print("| %s | %s | %g | %.3f | %.3f | %.0f | %.2f | %.2f | %.1f |" %
                      (spec, npc or "-", kf, r1, rk, qps, train_s, add_s, bpv), flush=True)
    if out:
        out.close()
    report(a, rows, opts, k, nb, d, nq, a.metric, a.base)


def report(a, rows, opts, k, nb, d, nq, metric, base):
    if a.ivfpq_json:
        ours = []
        for p in a.ivfpq_json:
            with open(p) as f:
                ours += [json.loads(l) for l in f if l.strip()]
        print("\n## libivfpq / faiss, same data and settings (one thread)\n")
        simd = sorted({r.get("simd", "?") for r in ours})
        print("libivfpq SIMD level: %s; faiss: %s\n" % (", ".join(simd), simd_of(opts)))
        print(merge_table(ours, rows, k))
    if a.plot:
        faiss_json = a.json or a.from_json
        if not (a.ivfpq and a.ivfpq_json and faiss_json):
            fail(2, "--plot needs --ivfpq, --ivfpq-json and --json (or --from-json)")
        import subprocess
        rc = subprocess.call([a.ivfpq, "plot", "-o", a.plot, "--title",
                              "%s: %d x %d, %d queries, %s, k = %d" % (os.path.basename(base.rstrip("/")), nb, d,
                                                                        nq, metric, k)]
                             + a.ivfpq_json + [faiss_json])
        if rc:
            sys.exit(rc)


if __name__ == "__main__":
    main()

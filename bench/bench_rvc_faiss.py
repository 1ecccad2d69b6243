#!/usr/bin/env python3
"""faiss's figures for bench/bench_rvc.c, on the same vectors.

    ./build/bench_rvc --dump /tmp/ivfpq-rvc --n 50000,200000 --d 256,768
    /usr/bin/python3 bench/bench_rvc_faiss.py /tmp/ivfpq-rvc [--train-points 200000]

For every DIR/N-d/{base,query,gt}.npy: the same three indexes as
bench_rvc.c (RVC's IVF{min(16 sqrt N, N/39)},Flat; IVF{4 sqrt N} and
IVF{sqrt N},PQ{d/2}x4fs,RFlat), trained on the same number of points (a
seeded subsample, --train-points; 10 coarse k-means iterations as ours),
one thread (omp_set_num_threads(1)), and per nprobe: 8-NN recall against
gt.npy, and the median thread-CPU time of one 200-query chunk for
index.search and for search + RVC's numpy blend (big_npy reconstructed
beforehand, as RVC does).

Debian's python3-faiss is a GENERIC build (no AVX2/AVX-512 kernels): its
speed is far below a faiss built for this CPU, so time ratios against it
say little; recall is what compares.
"""
import argparse
import os
import sys
import time

import numpy as np

try:
    import faiss
except ImportError:
    sys.exit("bench_rvc_faiss.py: faiss not installed (Debian: apt-get install python3-faiss)")

CHUNK, K = 200, 8


def blend(big_npy, score, ix, feats, rate=0.75):
    weight = np.square(1 / score)
    weight /= weight.sum(axis=1, keepdims=True)
    npy = np.sum(big_npy[ix] * np.expand_dims(weight, axis=2), axis=1)
    return rate * npy + (1 - rate) * feats


def median_chunk_ms(fn, xq, min_time):
    times = []
    start = time.thread_time()
    while True:
        for c in range(0, len(xq), CHUNK):
            q = xq[c:c + CHUNK]
            t0 = time.thread_time()
            fn(q)
            times.append(time.thread_time() - t0)
        if time.thread_time() - start >= min_time:
            break
    return 1e3 * float(np.median(times))


def run(spec, xb, xq, gt, nprobes, args, csv):
    N, d = xb.shape
    index = faiss.index_factory(d, spec)
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:  # faiss 1.7.3 does not look through IndexRefineFlat
        ivf = faiss.extract_index_ivf(faiss.downcast_index(index.base_index))
    ivf.cp.niter = 10
    nt = min(N, args.train_points) if args.train_points else N
    xt = xb[np.sort(np.random.default_rng(1).choice(N, nt, replace=False))] if nt < N else xb
    ivf.cp.max_points_per_centroid = max(256, (nt + ivf.nlist - 1) // ivf.nlist)  # no 2nd subsample
    t0 = time.thread_time()
    index.train(xt)
    ttrain = time.thread_time() - t0
    t0 = time.thread_time()
    index.add(xb)
    tadd = time.thread_time() - t0
    big_npy = index.reconstruct_n(0, index.ntotal)
    if "RFlat" in spec:
        index.k_factor = args.k_factor
    for nprobe in nprobes:
        ivf.nprobe = nprobe
        I = index.search(xq, K)[1]
        rec = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(I, gt[:, :K])]))
        ms = median_chunk_ms(lambda q: index.search(q, K), xq, args.min_time)

        def step(q):
            D, I = index.search(q, K)
            with np.errstate(divide="ignore", invalid="ignore"):
                return blend(big_npy, D, I, q)
        msb = median_chunk_ms(step, xq, args.min_time)
        print("%8d %4d  %-24s %6d %8.3f %10.3f %10.3f %9.1f %8.1f" %
              (N, d, spec, nprobe, rec, ms, msb, ttrain, tadd), flush=True)
        if csv:
            csv.write("faiss,%d,%d,%s,%d,%g,%.4f,%.4f,%.4f,%.2f,%.2f,,%d\n" %
                      (N, d, spec, nprobe, args.k_factor, rec, ms, msb, ttrain, tadd, nt))
            csv.flush()


def main():
    ap = argparse.ArgumentParser(description="faiss's figures for bench_rvc.c")
    ap.add_argument("dir")
    ap.add_argument("--nprobe-flat", default="1,2,4")
    ap.add_argument("--nprobe-pq", default="1,2,4,8,16")
    ap.add_argument("--k-factor", type=float, default=4.0)
    ap.add_argument("--train-points", type=int, default=200000)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--kinds", default="rvc,pq4,pq1",
                    help="rvc: IVF{min(16 sqrt N, N/39)},Flat; pq4 / pq1: IVF{4 sqrt N} / "
                         "IVF{sqrt N},PQ{d/2}x4fs,RFlat")
    ap.add_argument("--only", help="comma-separated N-d subdirectories (default: all)")
    ap.add_argument("--csv")
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    csv = open(args.csv, "a") if args.csv else None
    npf = [int(v) for v in args.nprobe_flat.split(",")]
    npq = [int(v) for v in args.nprobe_pq.split(",")]
    subs = args.only.split(",") if args.only else sorted(
        os.listdir(args.dir), key=lambda s: tuple(int(v) for v in s.split("-")[::-1]))
    print("faiss %s (Debian generic build), 1 thread; chunk = %d queries, k = %d; times = median "
          "thread CPU ms per chunk" % (faiss.__version__, CHUNK, K))
    print("%8s %4s  %-24s %6s %8s %10s %10s %9s %8s" %
          ("N", "d", "index", "nprobe", "R8@8", "search_ms", "blend_ms", "train_s", "add_s"))
    for sub in subs:
        base = os.path.join(args.dir, sub)
        xb = np.load(os.path.join(base, "base.npy"))
        xq = np.load(os.path.join(base, "query.npy"))
        gt = np.load(os.path.join(base, "gt.npy"))
        N, d = xb.shape
        kinds = args.kinds.split(",")
        if "rvc" in kinds:
            run("IVF%d,Flat" % min(int(16 * np.sqrt(N)), N // 39), xb, xq, gt, npf, args, csv)
        if "pq4" in kinds:
            run("IVF%d,PQ%dx4fs,RFlat" % (int(4 * np.sqrt(N)), d // 2), xb, xq, gt, npq, args, csv)
        if "pq1" in kinds:
            run("IVF%d,PQ%dx4fs,RFlat" % (int(np.sqrt(N)), d // 2), xb, xq, gt, npq, args, csv)
    if csv:
        csv.close()


if __name__ == "__main__":
    main()

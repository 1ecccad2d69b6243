#!/usr/bin/env python3
"""RVC's feature retrieval step with faiss (when installed) and with ivfpq,
and checks that they agree.

What an RVC (Retrieval-based Voice Conversion) user does today:
  training:  the per-utterance HuBERT feature files (.npy, [frames, d],
             d = 256 for v1 models, 768 for v2) are concatenated in
             sorted-name order into big_npy [N, d]; an index
             IVF{min(16 sqrt N, N // 39)},Flat is trained and filled, and
             saved as added_IVF<n>_Flat_....index.
  inference: per audio chunk, the features feats [~100-1000, d] are
             replaced by rate * (inverse-squared-distance weighted mean of
             their 8 nearest stored features) + (1 - rate) * feats.

Run on generated data (default: 40 "utterances" of HuBERT-like clustered
features, d = 256), or on a real feature directory:
    PYTHONPATH=python /usr/bin/python3 examples/rvc_retrieval.py
    PYTHONPATH=python /usr/bin/python3 examples/rvc_retrieval.py \\
        --features logs/mi-test/3_feature768 --queries some_utterance.npy
Exits with status 1 if a check fails.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

import ivfpq

try:
    import faiss
except ImportError:
    faiss = None


def make_features(dirname, d, nfiles, seed):
    """Per-utterance .npy files of clustered features (a speaker's phonetic
    units: a mixture of anisotropic Gaussians), frames per file varying."""
    rng = np.random.default_rng(seed)
    ncl = 64
    centres = rng.standard_normal((ncl, d)) * 2.0
    bases = rng.standard_normal((ncl, 8, d)) * 0.6

    def draw(n):
        c = rng.integers(0, ncl, size=n)
        z = rng.standard_normal((n, 8))
        return (centres[c] + np.einsum("nk,nkd->nd", z, bases[c])
                + 0.2 * rng.standard_normal((n, d))).astype(np.float32)
    for i in range(nfiles):
        np.save(os.path.join(dirname, "%d_utt.npy" % i), draw(int(rng.integers(300, 900))))
    return draw(600)  # the frames of a new utterance to convert


def load_big_npy(dirname):
    """RVC's concatenation: every .npy of the directory in sorted-name order."""
    names = sorted(n for n in os.listdir(dirname) if n.endswith(".npy"))
    if not names:
        sys.exit("no .npy files in %s" % dirname)
    return np.concatenate([np.load(os.path.join(dirname, n)) for n in names], 0).astype(np.float32)


def blend_numpy(big_npy, score, ix, feats, rate):
    """RVC's own formula (NaN where a score is 0)."""
    weight = np.square(1 / score)
    weight /= weight.sum(axis=1, keepdims=True)
    npy = np.sum(big_npy[ix] * np.expand_dims(weight, axis=2), axis=1)
    return rate * npy + (1 - rate) * feats


def recall(I, gt):
    return float(np.mean([len(set(a) & set(b)) / gt.shape[1] for a, b in zip(I, gt)]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", help="directory of per-utterance .npy feature files")
    ap.add_argument("--queries", help=".npy [n, d] features to convert (default: generated)")
    ap.add_argument("--d", type=int, default=256, help="dimension of generated data (256 or 768)")
    ap.add_argument("--files", type=int, default=40, help="generated utterance files")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--rate", type=float, default=0.75, help="RVC's index_rate")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    failures = []

    def check(ok, what):
        print("  %s %s" % ("ok  " if ok else "FAIL", what))
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        fdir = args.features
        feats = None
        if fdir is None:
            fdir = os.path.join(tmp, "3_feature%d" % args.d)
            os.mkdir(fdir)
            feats = make_features(fdir, args.d, args.files, args.seed)
        big_npy = load_big_npy(fdir)
        if args.queries:
            feats = np.load(args.queries).astype(np.float32)
        elif feats is None:
            feats = big_npy[np.random.default_rng(args.seed).choice(len(big_npy), 400)] + 0.01
        N, d = big_npy.shape
        n_ivf = min(int(16 * np.sqrt(N)), N // 39)
        spec = "IVF%d,Flat" % n_ivf
        print("big_npy: %d x %d from %s; queries: %d; RVC's index: %s, nprobe 1, k %d, rate %g"
              % (N, d, fdir, len(feats), spec, args.k, args.rate))

        # exact neighbours, for recall
        flat = ivfpq.index_factory(d, "Flat", "l2")
        flat.add(big_npy)
        gt = flat.search(feats, args.k)[1]

        # ---- ivfpq on its own index
        t0 = time.perf_counter()
        index = ivfpq.index_factory(d, spec, "l2")
        index.train(big_npy)
        index.add(big_npy)
        index.cache_coarse_tables()  # built once, reused by every chunk's search
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = index.search_blend(feats, args.k, args.rate, nprobe=1)
        t_blend = time.perf_counter() - t0
        score, ix = index.search(feats, args.k, nprobe=1)
        print("ivfpq %s: built in %.2f s; search_blend of %d queries %.2f ms; 8-NN recall %.3f"
              % (spec, t_build, len(feats), 1e3 * t_blend, recall(ix, gt)))
        with np.errstate(divide="ignore", invalid="ignore"):
            ref = blend_numpy(index.reconstruct_n(0, index.ntotal), score, ix, feats, args.rate)
        finite = np.isfinite(ref).all(axis=1)
        check(np.array_equal(out[finite], ref[finite]),
              "search_blend == RVC's numpy formula on ivfpq's results, bit for bit (%d/%d rows finite)"
              % (finite.sum(), len(feats)))
        check(np.isfinite(out).all(), "no NaN in search_blend's output")
        path = os.path.join(tmp, "added_%s.ivfpq" % spec.replace(",", "_"))
        ivfpq.write_index(index, path)
        back = ivfpq.read_index(path, zero_copy=True)
        back.cache_coarse_tables()
        check(np.array_equal(back.search_blend(feats, args.k, args.rate), out),
              "same output from the saved index searched in place (zero-copy)")

        # ---- the suggested alternative: more lists probed, PQ + exact re-rank
        alt = "IVF%d,PQ%dx4fs,RFlat" % (min(int(4 * np.sqrt(N)), N // 39), d // 2)
        aidx = ivfpq.index_factory(d, alt, "l2")
        aidx.train(big_npy)
        aidx.add(big_npy)
        for nprobe in (1, 4):
            t0 = time.perf_counter()
            aidx.search_blend(feats, args.k, args.rate, nprobe=nprobe)
            t = time.perf_counter() - t0
            print("ivfpq %s nprobe %d: search_blend %.2f ms; 8-NN recall %.3f"
                  % (alt, nprobe, 1e3 * t, recall(aidx.search(feats, args.k, nprobe=nprobe)[1], gt)))

        # ---- faiss, as RVC does it, and ivfpq reading faiss's file
        if faiss is None:
            print("faiss not installed (Debian: apt-get install python3-faiss): faiss part skipped")
        else:
            t0 = time.perf_counter()
            fi = faiss.index_factory(d, spec)
            fi.train(big_npy)
            for i in range(0, N, 8192):  # RVC adds in batches of 8192
                fi.add(big_npy[i:i + 8192])
            t_build = time.perf_counter() - t0
            fpath = os.path.join(tmp, "added_%s_nprobe_1.index" % spec.replace(",", "_"))
            faiss.write_index(fi, fpath)
            fi = faiss.read_index(fpath)
            fi.nprobe = 1
            t0 = time.perf_counter()
            big = fi.reconstruct_n(0, fi.ntotal)
            fscore, fix = fi.search(feats, args.k)
            with np.errstate(divide="ignore", invalid="ignore"):
                fout = blend_numpy(big, fscore, fix, feats, args.rate)
            t_f = time.perf_counter() - t0
            print("faiss %s: built in %.2f s; search + numpy blend %.2f ms; 8-NN recall %.3f"
                  % (spec, t_build, 1e3 * t_f, recall(fix, gt)))
            check(np.array_equal(big, big_npy), "faiss's reconstruct_n == big_npy")

            loaded = ivfpq.read_index(fpath)  # the faiss file, read by ivfpq
            check(np.array_equal(loaded.reconstruct_n(0, loaded.ntotal), big),
                  "ivfpq.read_index(faiss file).reconstruct_n == faiss's")
            lscore, lix = loaded.search(feats, args.k, nprobe=1)
            same = (lix == fix).mean()
            check(same >= 0.999, "same neighbours as faiss on faiss's file: %.4f of ids" % same)
            check(np.allclose(lscore, fscore, rtol=1e-5, atol=1e-5),
                  "same distances as faiss to float rounding (max diff %.2e)"
                  % np.abs(lscore - fscore).max())
            lout = loaded.search_blend(feats, args.k, args.rate, nprobe=1)
            rows = np.isfinite(fout).all(axis=1) & (lix == fix).all(axis=1)
            diff = np.abs(lout[rows] - fout[rows]).max() if rows.any() else 0.0
            check(diff <= 1e-4 * max(1.0, float(np.abs(fout[rows]).max()) if rows.any() else 1.0),
                  "search_blend on faiss's file == faiss + numpy to float rounding (max diff %.2e, "
                  "%d rows)" % (diff, rows.sum()))
            nan_rows = int((~np.isfinite(fout).all(axis=1)).sum())
            if nan_rows:
                print("  note: faiss + numpy gave NaN on %d rows (zero distances); ivfpq gives "
                      "the exact match full weight there" % nan_rows)

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""faiss <-> libivfpq index files, checked against faiss itself.

Run by `make test` when `/usr/bin/python3 -c "import faiss"` works
(Debian: python3-faiss python3-numpy); usage: faiss_interop.py IO_TOOL.
For every kind x metric:
  1. faiss builds and writes an index; libivfpq loads it (copy and, after
     conversion, zero-copy) and its search matches faiss's;
  2. libivfpq rewrites the faiss file: same bytes as faiss's (or, where
     the encoding legitimately differs, same faiss search results);
  3. libivfpq builds an index and writes it in faiss format: faiss reads
     it and its search matches libivfpq's.
Parity: exact kinds (Flat, IVF-Flat, RFlat re-ranking all probed
candidates) must return the same ids (a swap is allowed only between
near-equal distances); 4-bit PQ without refine quantizes its look-up
tables differently from faiss, so there the top-k sets must overlap.
"""
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")  # shared CI cores: no OpenMP spinning
import faiss
import numpy as np

TOOL = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="ivfpq-interop-")
D, NB, NQ, K = 40, 4000, 100, 10
NPROBE, KF = 4, 256.0  # k * k_factor covers the probed lists: RFlat is exact there

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def data(metric):
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(50, D)).astype("float32") * 4
    x = centers[rng.integers(0, 50, NB + NQ)] + rng.normal(size=(NB + NQ, D)).astype("float32")
    if metric == faiss.METRIC_INNER_PRODUCT:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x[:NB]), np.ascontiguousarray(x[NB:])


def tool(*args):
    r = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("io_tool %s failed: %s" % (" ".join(map(str, args)), r.stderr))
    return r.stdout


def our_search(path, xq, zerocopy=False):
    qf, out = os.path.join(TMP, "q.f32"), os.path.join(TMP, "out.bin")
    xq.astype("<f4").tofile(qf)
    tool("search", path, qf, len(xq), K, NPROBE, KF, out, *(["zerocopy"] if zerocopy else []))
    raw = open(out, "rb").read()
    n = len(xq) * K
    Dd = np.frombuffer(raw[: 4 * n], dtype="<f4").reshape(len(xq), K)
    Ii = np.frombuffer(raw[4 * n :], dtype="<i8").reshape(len(xq), K)
    return Dd, Ii


def unwrap(index):
    """innermost index under IDMap / Refine wrappers (faiss 1.7.3's
    try_extract_index_ivf does not look inside IndexRefine)"""
    index = faiss.downcast_index(index)
    if hasattr(index, "id_map"):
        return unwrap(index.index)
    if hasattr(index, "base_index"):
        return unwrap(index.base_index)
    return index


def faiss_search(index, xq):
    # keep `index` referenced: a downcast proxy does not own the C++ object
    top = faiss.downcast_index(index)
    for sub in (top, faiss.downcast_index(top.index) if hasattr(top, "id_map") else None):
        if sub is not None and hasattr(sub, "k_factor"):
            sub.k_factor = KF
    base = unwrap(top)
    if hasattr(base, "nprobe"):
        base.nprobe = NPROBE
    if getattr(base, "bbs", 32) != 32:
        # faiss 1.7.3 has no multi-query kernel for bbs=64: one query at a time
        res = [top.search(xq[i : i + 1], K) for i in range(len(xq))]
        return np.vstack([r[0] for r in res]), np.vstack([r[1] for r in res])
    return top.search(xq, K)


def same_ids(name, Da, Ia, Db, Ib):
    """ids equal up to swaps of near-equal distances; returns fraction of equal rows"""
    ok_rows = 0
    for q in range(len(Ia)):
        if np.array_equal(Ia[q], Ib[q]):
            ok_rows += 1
            continue
        tol = 1e-4 * max(1.0, float(np.abs(Db[q]).max()))
        if set(Ia[q]) == set(Ib[q]) and np.allclose(np.sort(Da[q]), np.sort(Db[q]), atol=tol):
            ok_rows += 1
        elif np.allclose(Da[q], Db[q], atol=tol):  # different ids at tied distances
            ok_rows += 1
    return ok_rows / len(Ia)


def overlap(Ia, Ib):
    return np.mean([len(set(a) & set(b)) / K for a, b in zip(Ia, Ib)])


def compare(name, spec, Dq, Iq, Df, If):
    exact = "PQ" not in spec or "RFlat" in spec
    if exact:
        frac = same_ids(name, Dq, Iq, Df, If)
        # coarse quantization in float can differ on near-ties between centroids
        check(frac >= 0.99, "%s: same ids for %.3f of queries" % (name, frac))
        m = (If >= 0) & (Iq >= 0)  # missing results: faiss pads with FLT_MAX, we with inf
        check(np.array_equal(If < 0, Iq < 0), "%s: different numbers of results" % name)
        rel = np.abs(Dq[m] - Df[m]) / np.maximum(1.0, np.abs(Df[m]))
        check(np.median(rel) < 1e-5, "%s: distances differ (median rel %.2g)" % (name, np.median(rel)))
        print("  %-40s same ids %.3f" % (name, frac))
    else:
        ov = overlap(Iq, If)
        check(ov >= 0.85, "%s: top-%d overlap %.3f" % (name, K, ov))
        rel = np.abs(Dq - Df) / np.maximum(1e-3, np.abs(Df))
        check(np.median(rel) < 0.02, "%s: approximate distances differ (median rel %.3g)" % (name, np.median(rel)))
        print("  %-40s top-%d overlap %.3f, median rel distance diff %.2g" % (name, K, ov, np.median(rel)))


SPECS = [
    "Flat", "IVF32,Flat", "IVF64,Flat", "PQ20x4fs", "PQ5x4fs_64", "IVF32,PQ20x4fs",
    "IVF32,PQ8x4fsr", "IVF32,PQ5x4fs", "PQ8x4fs,RFlat", "IVF32,PQ20x4fs,RFlat",
    "IVF32,PQ5x4fsr,RFlat", "IDMap2,Flat", "IDMap,IVF32,PQ8x4fs,RFlat",
]


def main():
    for metric, mname in ((faiss.METRIC_L2, "L2"), (faiss.METRIC_INNER_PRODUCT, "IP")):
        xb, xq = data(metric)
        xb.astype("<f4").tofile(os.path.join(TMP, "xb.f32"))
        for spec in SPECS:
            name = "%s %s" % (spec, mname)
            if spec.startswith("IDMap,"):  # faiss 1.7.3's factory puts RFlat outside IDMap
                index = faiss.IndexIDMap(faiss.index_factory(D, spec[6:], metric))
            else:
                index = faiss.index_factory(D, spec, metric)
            index.train(xb)
            if spec.startswith("IDMap"):
                ids = (np.arange(NB) * 7 + 3).astype("int64")
                index.add_with_ids(xb, ids)
            elif spec == "IVF64,Flat":  # few non-empty lists: the sparse "sprs" encoding
                index.add(xb[:20])
            else:
                index.add(xb)
            fpath = os.path.join(TMP, "f.index")
            faiss.write_index(index, fpath)
            Df, If = faiss_search(index, xq)

            # 1. faiss file -> libivfpq
            Dq, Iq = our_search(fpath, xq)
            compare("faiss->ours " + name, spec, Dq, Iq, Df, If)
            npath = os.path.join(TMP, "n.index")
            tool("convert", fpath, npath, "native")
            Dn, In = our_search(npath, xq, zerocopy=True)
            check(np.array_equal(In, Iq) and np.array_equal(Dn.view("u4"), Dq.view("u4")),
                  name + ": native zero-copy search differs from the faiss-file search")

            # 2. libivfpq rewrites the faiss file
            rpath = os.path.join(TMP, "r.index")
            tool("convert", fpath, rpath, "faiss")
            a, b = open(fpath, "rb").read(), open(rpath, "rb").read()
            if "_64" in spec or spec.startswith("IDMap,"):
                # repacked to bbs 32 / IxMp written as IxM2: same search in faiss
                r = faiss.read_index(rpath)
                Dr, Ir = faiss_search(r, xq)
                check(np.array_equal(Ir, If), name + ": faiss search on our rewrite differs")
            elif "RFlat" in spec:  # all but k_factor: we write our default 4, faiss 1
                check(a[:-4] == b[:-4], name + ": our rewrite differs from faiss's file")
            else:
                check(a == b, name + ": our rewrite of the faiss file is not byte-identical")
            print("  %-40s rewrite ok" % name)

            # 3. libivfpq builds, faiss reads
            if spec.startswith("IDMap") or "_64" in spec:
                continue
            ours_f, ours_n = os.path.join(TMP, "of.index"), os.path.join(TMP, "on.index")
            tool("build", spec, metric, os.path.join(TMP, "xb.f32"), NB, D, ours_f, "faiss")
            tool("convert", ours_f, ours_n, "native")
            fi = faiss.read_index(ours_f)
            check(fi.ntotal == NB, name + ": faiss sees ntotal %d" % fi.ntotal)
            Dfo, Ifo = faiss_search(fi, xq)
            Dqo, Iqo = our_search(ours_n, xq)
            compare("ours->faiss " + name, spec, Dqo, Iqo, Dfo, Ifo)
        # arbitrary labels on a positional kind: written through IndexIDMap2
        ids = (np.arange(NB) * 5 + 11).astype("<i8")
        ids.tofile(os.path.join(TMP, "ids.i64"))
        for spec in ("Flat", "PQ8x4fs,RFlat", "IVF32,PQ8x4fs,RFlat"):
            ours_f = os.path.join(TMP, "of.index")
            tool("build", spec, metric, os.path.join(TMP, "xb.f32"), NB, D, ours_f, "faiss",
                 os.path.join(TMP, "ids.i64"))
            fi = faiss.read_index(ours_f)
            check(isinstance(fi, faiss.IndexIDMap2), spec + ": labels not kept by an IDMap2")
            Dfo, Ifo = faiss_search(fi, xq)
            Dqo, Iqo = our_search(ours_f, xq)
            compare("ours->faiss labels " + spec + " " + mname, spec, Dqo, Iqo, Dfo, Ifo)
            check(np.isin(Ifo, ids).all(), spec + ": faiss returns labels we never stored")
    shutil.rmtree(TMP, ignore_errors=True)
    if failures:
        print("%d interop failures" % len(failures))
        sys.exit(1)
    print("faiss interop: all checks passed (faiss %s)" % faiss.__version__)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes the small faiss-written index files tests/test_io_faiss.c reads,
so the faiss reader is tested without faiss installed.

Run from the repository root with Debian's faiss (python3-faiss 1.7.3):
    /usr/bin/python3 tests/data/make_faiss_fixtures.py
For each fixture NAME: tests/data/NAME.index (faiss.write_index) and
tests/data/NAME.expect, faiss's own search results, little-endian:
    u32 nq, u32 k, u32 nprobe, f32 k_factor, u32 exact, u32 d,
    f32 queries [nq*d], f32 distances [nq*k], i64 labels [nq*k]
exact = 1 where libivfpq must return the same labels (Flat, IVF-Flat,
RFlat re-ranking every probed candidate); 0 for 4-bit PQ without refine,
whose look-up-table quantization may differ from faiss's.
Deterministic: same faiss, same bytes.
"""
import os
import struct

os.environ.setdefault("OMP_NUM_THREADS", "1")
import faiss  # noqa: E402
import numpy as np  # noqa: E402

OUT = os.path.dirname(os.path.abspath(__file__))
D, N, NQ, K = 12, 200, 8, 5
L2, IP = faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT

rng = np.random.default_rng(2024)
centers = rng.normal(size=(10, D)).astype("float32") * 3
X = (centers[rng.integers(0, 10, N + NQ)] + rng.normal(size=(N + NQ, D))).astype("float32")
XN = X / np.linalg.norm(X, axis=1, keepdims=True)
IDS = (np.arange(N) * 10 + 5).astype("int64")

# name, factory, metric, vectors added (None = train only), labels, nprobe, k_factor, exact
FIXTURES = [
    ("flat_l2", "Flat", L2, N, None, 1, 1.0, 1),
    ("flat_ip_idmap2", "IDMap2,Flat", IP, N, IDS, 1, 1.0, 1),
    ("ivf8_flat_l2", "IVF8,Flat", L2, N, None, 3, 1.0, 1),
    ("ivf64_flat_ip_sparse", "IVF64,Flat", IP, 20, None, 64, 1.0, 1),
    ("ivf8_flat_trained_only", "IVF8,Flat", L2, None, None, 3, 1.0, 1),
    ("pq6fs_l2", "PQ6x4fs", L2, N, None, 1, 1.0, 0),
    ("pq3fs64_ip", "PQ3x4fs_64", IP, N, None, 1, 1.0, 0),
    ("ivf8_pq6fs_l2", "IVF8,PQ6x4fs", L2, N, None, 3, 1.0, 0),
    ("ivf8_pq6fsr_ip", "IVF8,PQ6x4fsr", IP, N, None, 3, 1.0, 0),
    ("ivf8_pq3fsr_rflat_l2", "IVF8,PQ3x4fsr,RFlat", L2, N, None, 3, 40.0, 1),
    ("pq6fs_rflat_ip", "PQ6x4fs,RFlat", IP, N, None, 1, 40.0, 1),
    ("idmap_ivf8_pq6fs_rflat_l2", "IVF8,PQ6x4fs,RFlat", L2, N, IDS, 3, 40.0, 1),
]


def base_of(index):
    index = faiss.downcast_index(index)
    if hasattr(index, "id_map"):
        return base_of(index.index)
    if hasattr(index, "base_index"):
        return base_of(index.base_index)
    return index


def main():
    for name, spec, metric, n, ids, nprobe, kf, exact in FIXTURES:
        x = XN if metric == IP else X
        xb, xq = x[:N], np.ascontiguousarray(x[N:])
        index = faiss.index_factory(D, spec, metric)
        if ids is not None and not spec.startswith("IDMap"):
            index = faiss.IndexIDMap(index)  # faiss 1.7.3's factory puts RFlat outside IDMap
        index.train(xb)
        if n is not None:
            if ids is not None:
                index.add_with_ids(xb[:n], ids[:n])
            else:
                index.add(xb[:n])
        faiss.write_index(index, os.path.join(OUT, name + ".index"))
        # search with explicit parameters (the stored nprobe/k_factor are ignored by libivfpq)
        top = faiss.downcast_index(index)
        inner = faiss.downcast_index(top.index) if hasattr(top, "id_map") else top
        if hasattr(inner, "k_factor"):
            inner.k_factor = kf
        b = base_of(index)
        if hasattr(b, "nprobe"):
            b.nprobe = nprobe
        if getattr(b, "bbs", 32) != 32:  # faiss 1.7.3: no multi-query bbs=64 kernel
            res = [index.search(xq[i : i + 1], K) for i in range(NQ)]
            Dd, Ii = np.vstack([r[0] for r in res]), np.vstack([r[1] for r in res])
        else:
            Dd, Ii = index.search(xq, K)
        with open(os.path.join(OUT, name + ".expect"), "wb") as f:
            f.write(struct.pack("<IIIfII", NQ, K, nprobe, kf, exact, D))
            f.write(xq.astype("<f4").tobytes())
            f.write(Dd.astype("<f4").tobytes())
            f.write(Ii.astype("<i8").tobytes())
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT) if f.endswith((".index", ".expect")))
    print("wrote %d fixtures (%d bytes) with faiss %s" % (len(FIXTURES), total, faiss.__version__))


if __name__ == "__main__":
    main()

"""The Python module (python/ivfpq): API, errors, files, and RVC's blend
against numpy's own evaluation of RVC's formula, bit for bit. Comparisons
with faiss run when Debian's python3-faiss is installed.

Run from the repository root after `make`:
    PYTHONPATH=python /usr/bin/python3 -m unittest discover -s tests/python -v
"""
import os
import tempfile
import unittest

import numpy as np

import ivfpq

try:
    import faiss
except ImportError:
    faiss = None


def clustered(n, d, ncl, seed):
    """Seeded mixture of Gaussians with per-cluster scales, float32."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ncl, d)) * 4.0
    scales = rng.uniform(0.3, 1.5, size=(ncl, 1))
    a = rng.integers(0, ncl, size=n)
    return (centres[a] + rng.standard_normal((n, d)) * scales[a]).astype(np.float32)


def rvc_numpy(big_npy, score, ix, feats, rate):
    """RVC's step exactly as its pipeline writes it in numpy."""
    weight = np.square(1 / score)
    weight /= weight.sum(axis=1, keepdims=True)
    npy = np.sum(big_npy[ix] * np.expand_dims(weight, axis=2), axis=1)
    return rate * npy + (1 - rate) * feats


def built(spec, x, metric="l2", train=None):
    index = ivfpq.index_factory(x.shape[1], spec, metric)
    index.train(x if train is None else train)
    index.add(x)
    return index


class Blend(unittest.TestCase):
    def check(self, spec, d, k, rate, nprobe, nb=4000, nq=60, seed=1):
        x = clustered(nb + nq, d, 40, seed)
        xb, xq = x[:nb], x[nb:]
        index = built(spec, xb)
        big_npy = index.reconstruct_n(0, index.ntotal)
        D, I = index.search(xq, k, nprobe=nprobe)
        self.assertTrue((I >= 0).all(), "every result found (the formula needs it)")
        want = rvc_numpy(big_npy, D, I, xq, rate)
        self.assertEqual(want.dtype, np.float32)
        got = index.search_blend(xq, k, rate, nprobe=nprobe)
        np.testing.assert_array_equal(got, want)
        # bit for bit, not only ==: same bytes
        self.assertEqual(got.tobytes(), want.tobytes())

    def test_ivf_flat_rvc_shape(self):
        for d in (256, 768):
            self.check("IVF64,Flat", d, 8, 0.75, nprobe=2, nq=40)

    def test_rflat(self):
        self.check("IVF32,PQ16x4fs,RFlat", 64, 8, 0.5, nprobe=4)
        self.check("IVF32,PQ16x4fsr,RFlat", 64, 8, 0.33, nprobe=4)

    def test_every_k(self):
        # numpy's sum of the weights: loop below 8, 8 partial sums to 128,
        # halving above: all reproduced
        for k in (1, 2, 7, 8, 9, 15, 16, 17, 64, 100, 128, 129, 200, 300):
            self.check("Flat", 24, k, 0.6, nprobe=1, nb=1500, nq=20, seed=k)

    def test_rates(self):
        for rate in (0.0, 0.1, 1 / 3, 0.5, 0.9, 1.0):
            self.check("IVF16,Flat", 32, 8, rate, nprobe=16, nb=2000, nq=30)

    def test_exact_match_no_nan(self):
        x = clustered(3000, 32, 20, 4)
        index = built("IVF16,Flat", x)
        out = index.search_blend(x[:50], 8, 1.0, nprobe=16)
        self.assertFalse(np.isnan(out).any())
        np.testing.assert_array_equal(out, x[:50])  # full weight to the match
        with np.errstate(divide="ignore", invalid="ignore"):
            D, I = index.search(x[:50], 8, nprobe=16)
            self.assertTrue(np.isnan(rvc_numpy(index.reconstruct_n(), D, I, x[:50], 1.0)).all())

    def test_kept_coarse_tables(self):
        x = clustered(4200, 32, 40, 9)
        index = built("IVF64,Flat", x[:4000])
        want = index.search_blend(x[4000:], 8, 0.75, nprobe=2)
        before = index.info()["memory_bytes"]
        index.cache_coarse_tables()
        self.assertGreater(index.info()["memory_bytes"], before)
        got = index.search_blend(x[4000:], 8, 0.75, nprobe=2)
        self.assertEqual(got.tobytes(), want.tobytes())
        index.cache_coarse_tables(False)
        self.assertEqual(index.info()["memory_bytes"], before)

    def test_in_place_and_out(self):
        x = clustered(2100, 16, 10, 5)
        index = built("IVF8,Flat", x[:2000])
        want = index.search_blend(x[2000:], 8, 0.7, nprobe=8)
        q = x[2000:].copy()
        index.search_blend(q, 8, 0.7, nprobe=8, out=q)
        np.testing.assert_array_equal(q, want)

    def test_nprobe_attribute_default(self):
        x = clustered(3000, 16, 30, 6)
        index = built("IVF32,Flat", x)
        index.nprobe = 32
        D1, I1 = index.search(x[:20], 8)
        D2, I2 = index.search(x[:20], 8, nprobe=32)
        np.testing.assert_array_equal(I1, I2)
        np.testing.assert_array_equal(index.search_blend(x[:20], 8, 0.5),
                                      index.search_blend(x[:20], 8, 0.5, nprobe=32))


class Api(unittest.TestCase):
    def test_flat_exact_like_numpy(self):
        x = clustered(2050, 20, 10, 7)
        xb, xq = x[:2000], x[2000:]
        for metric, m in (("l2", ivfpq.METRIC_L2), ("ip", ivfpq.METRIC_INNER_PRODUCT)):
            index = ivfpq.index_factory(20, "Flat", m)
            index.add(xb)
            self.assertEqual((index.ntotal, index.d), (2000, 20))
            D, I = index.search(xq, 5)
            self.assertEqual((D.shape, D.dtype, I.shape, I.dtype),
                             ((50, 5), np.float32, (50, 5), np.int64))
            xb64, xq64 = xb.astype(np.float64), xq.astype(np.float64)
            if metric == "l2":
                ref = ((xq64[:, None, :] - xb64[None]) ** 2).sum(-1)
            else:
                ref = -(xq64 @ xb64.T)
            want = np.argsort(ref, axis=1, kind="stable")[:, :5]
            self.assertGreaterEqual((I == want).mean(), 0.99)
            np.testing.assert_allclose(np.abs(D), np.abs(np.take_along_axis(ref, I, 1)),
                                       rtol=1e-4, atol=1e-3)

    def test_ids_reconstruct_and_missing(self):
        x = clustered(100, 8, 5, 8)
        index = ivfpq.index_factory(8, "Flat", "l2")
        index.add(x[:50], ids=np.arange(1000, 1050))
        self.assertEqual(index.reconstruct(1010).tolist(), x[10].tolist())
        np.testing.assert_array_equal(index.reconstruct_n(1000, 50), x[:50])
        with self.assertRaises(ivfpq.Error) as cm:
            index.reconstruct_n(0, 10)
        self.assertEqual(cm.exception.status, -10)
        D, I = index.search(x[:2], 60)
        self.assertTrue((I[:, 50:] == -1).all() and np.isinf(D[:, 50:]).all())

    def test_inputs_converted(self):
        x = clustered(1000, 12, 5, 9)
        index = built("IVF4,Flat", x.astype(np.float64))
        q = np.asfortranarray(x[:10].astype(np.float64))
        D1, I1 = index.search(q, 3, nprobe=4)
        D2, I2 = index.search(x[:10], 3, nprobe=4)
        np.testing.assert_array_equal(I1, I2)
        D3, I3 = index.search(x[:20:2], 3, nprobe=4)  # strided view
        np.testing.assert_array_equal(I3, index.search(x[:20:2].copy(), 3, nprobe=4)[1])
        self.assertEqual(index.search(x[:3].tolist(), 2, nprobe=4)[1].shape, (3, 2))

    def test_errors_carry_library_message(self):
        with self.assertRaises(ivfpq.Error) as cm:
            ivfpq.index_factory(32, "IVF64,PQ5x4fs", "l2")
        self.assertIn("PQ5x4fs", str(cm.exception))
        self.assertEqual(cm.exception.status, -3)
        with self.assertRaises(ivfpq.Error) as cm:
            ivfpq.index_factory(32, "IVF16,Flat,bogus", "l2")
        self.assertIn("bogus", str(cm.exception))
        with self.assertRaises(ValueError):
            ivfpq.index_factory(32, "Flat", "cosine")
        x = clustered(1000, 16, 5, 10)
        index = ivfpq.index_factory(16, "IVF8,PQ4x4fs", "l2")
        with self.assertRaises(ivfpq.Error) as cm:
            index.search(x[:2], 3)
        self.assertEqual(cm.exception.status, -4)
        index.train(x)
        index.add(x)
        with self.assertRaises(ivfpq.Error) as cm:
            index.search(x[:2, :15], 3)
        self.assertIn("d=16", str(cm.exception))
        with self.assertRaises(ivfpq.Error) as cm:
            index.search_blend(x[:2], 8, 0.5)
        self.assertIn("RFlat", str(cm.exception))
        self.assertEqual(cm.exception.status, -9)
        flat = built("Flat", x)
        with self.assertRaises(ivfpq.Error) as cm:
            flat.search_blend(x[:2], 8, 1.5)
        self.assertIn("rate", str(cm.exception))
        bad = x[:2].copy()
        bad[1, 3] = np.nan
        with self.assertRaises(ivfpq.Error) as cm:
            flat.search(bad, 3)
        self.assertEqual(cm.exception.status, -7)
        with self.assertRaises(ValueError):
            flat.search(x[0], 3)  # 1-D: faiss wants [n, d] too

    def test_train_warning(self):
        x = clustered(300, 8, 5, 11)
        index = ivfpq.index_factory(8, "IVF16,Flat", "l2")
        with self.assertWarns(RuntimeWarning):
            index.train(x)

    def test_files_roundtrip(self):
        x = clustered(3000, 32, 20, 12)
        with tempfile.TemporaryDirectory() as tmp:
            for spec in ("IVF16,Flat", "IVF16,PQ8x4fs,RFlat", "Flat"):
                index = built(spec, x)
                D, I = index.search(x[:30], 8, nprobe=4)
                B = index.search_blend(x[:30], 8, 0.75, nprobe=4)
                for fmt in ("native", "faiss"):
                    path = os.path.join(tmp, "i." + fmt)
                    ivfpq.write_index(index, path, format=fmt)
                    for zc in ((False, True) if fmt == "native" else (False,)):
                        back = ivfpq.read_index(path, zero_copy=zc)
                        self.assertEqual(back.info()["factory"], index.info()["factory"])
                        D2, I2 = back.search(x[:30], 8, nprobe=4)
                        np.testing.assert_array_equal(I2, I)
                        np.testing.assert_array_equal(D2, D)
                        np.testing.assert_array_equal(back.search_blend(x[:30], 8, 0.75, nprobe=4), B)
            with open(os.path.join(tmp, "x.npy"), "wb") as f:
                np.save(f, x)
            with self.assertRaises(ivfpq.Error) as cm:
                ivfpq.read_index(os.path.join(tmp, "x.npy"))
            self.assertIn("npy", str(cm.exception))


@unittest.skipUnless(faiss is not None, "faiss not installed (Debian: apt-get install python3-faiss)")
class WithFaiss(unittest.TestCase):
    def test_reads_faiss_ivf_flat(self):
        # what RVC ships: a faiss IVF,Flat file
        x = clustered(6000, 64, 50, 13)
        xb, xq = x[:5800], x[5800:]
        fi = faiss.index_factory(64, "IVF64,Flat")
        fi.train(xb)
        fi.add(xb)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "added_IVF64_Flat.index")
            faiss.write_index(fi, path)
            index = ivfpq.read_index(path)
        self.assertEqual(index.ntotal, 5800)
        for nprobe in (1, 4, 64):
            fi.nprobe = nprobe
            Df, If = fi.search(xq, 8)
            D, I = index.search(xq, 8, nprobe=nprobe)
            self.assertGreaterEqual((I == If).mean(), 0.999)
            np.testing.assert_allclose(D, Df, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(index.reconstruct_n(0, 5800), fi.reconstruct_n(0, 5800))
        # the blended step on faiss's file vs RVC's numpy on faiss's results
        fi.nprobe = 1
        Df, If = fi.search(xq, 8)
        want = rvc_numpy(fi.reconstruct_n(0, fi.ntotal), Df, If, xq, 0.75)
        got = index.search_blend(xq, 8, 0.75, nprobe=1)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    def test_faiss_reads_ours(self):
        x = clustered(3000, 32, 20, 14)
        index = built("IVF16,Flat", x)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ours.index")
            ivfpq.write_index(index, path, format="faiss")
            fi = faiss.read_index(path)
        fi.nprobe = 4
        Df, If = fi.search(x[:40], 8)
        D, I = index.search(x[:40], 8, nprobe=4)
        self.assertGreaterEqual((I == If).mean(), 0.999)

    def test_recall_parity_ivf_flat(self):
        # Same data and parameters, each library's own k-means: 8-NN recall
        # of ours at least faiss's minus 0.02 at every nprobe (k-means
        # differences alone move it by about +-0.01 here).
        x = clustered(20500, 64, 200, 15)
        xb, xq = x[:20000], x[20000:]
        b64, q64 = xb.astype(np.float64), xq.astype(np.float64)
        d2 = (q64 ** 2).sum(1)[:, None] + (b64 ** 2).sum(1)[None] - 2 * q64 @ b64.T
        gt = np.argsort(d2, axis=1)[:, :8]
        fi = faiss.index_factory(64, "IVF128,Flat")
        fi.train(xb)
        fi.add(xb)
        index = built("IVF128,Flat", xb)

        def recall(I):
            return np.mean([len(set(a) & set(b)) / 8 for a, b in zip(I, gt)])
        for nprobe in (1, 2, 4, 8, 16):
            fi.nprobe = nprobe
            rf = recall(fi.search(xq, 8)[1])
            ro = recall(index.search(xq, 8, nprobe=nprobe)[1])
            if os.environ.get("IVFPQ_VERBOSE"):
                print("IVF128,Flat nprobe %d: 8-NN recall ivfpq %.4f, faiss %.4f" % (nprobe, ro, rf))
            self.assertGreaterEqual(ro, rf - 0.02, "nprobe %d: ivfpq %.3f, faiss %.3f" % (nprobe, ro, rf))


if __name__ == "__main__":
    unittest.main()

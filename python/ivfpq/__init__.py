"""libivfpq from Python: ctypes over libivfpq.so, numpy only.

    import ivfpq
    index = ivfpq.index_factory(256, "IVF1024,PQ128x4fs,RFlat", "l2")
    index.train(xb); index.add(xb)
    D, I = index.search(xq, 8, nprobe=4)          # like faiss: float32, int64 [n, k]
    feats = index.search_blend(xq, 8, rate=0.75)  # RVC's retrieval step, one call
    ivfpq.write_index(index, "feats.index")       # read_index reads faiss files too

The shared library is found in this order: $IVFPQ_LIBRARY (a path), the
build/ directory of the source tree this package sits in (after `make`),
then the system's (ldconfig, e.g. after `make install`).

Every library failure raises ivfpq.Error, whose text is the library's own
message (naming the bad token, the dimensions...) and whose .status is the
IVFPQ_E_* code. Inputs are converted to C-contiguous float32 (copied only
when they are not already). Library calls release the GIL; searches on one
index may run from several threads, while train/add/reset need exclusive
access (the C library's thread contract).
"""
import ctypes
import ctypes.util
import os
import threading
import warnings

import numpy as np

__all__ = ["Error", "Index", "index_factory", "read_index", "write_index", "normalize_L2",
           "METRIC_L2", "METRIC_INNER_PRODUCT", "FORMAT_NATIVE", "FORMAT_FAISS",
           "library_path", "version"]

METRIC_INNER_PRODUCT = 0  # same numbers as faiss
METRIC_L2 = 1
FORMAT_NATIVE = 0
FORMAT_FAISS = 1
_LOAD_ZERO_COPY = 0x1
_LOG_ERROR, _LOG_WARNING = 1, 2


class Error(RuntimeError):
    """A libivfpq call failed: .status is the IVFPQ_E_* code (negative)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------ the library

def _find_library():
    env = os.environ.get("IVFPQ_LIBRARY")
    if env:
        return env
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    local = os.path.join(root, "build", "libivfpq.so")
    if os.path.exists(local):
        return local
    found = ctypes.util.find_library("ivfpq")
    if found:
        return found
    raise ImportError("ivfpq: libivfpq.so not found: run `make` in the source tree, "
                      "`make install`, or set IVFPQ_LIBRARY to its path")


library_path = _find_library()
_lib = ctypes.CDLL(library_path)

_c_size = ctypes.c_size_t
_fptr = ctypes.POINTER(ctypes.c_float)
_i64ptr = ctypes.POINTER(ctypes.c_int64)
_LOGFN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_char_p)


class _Allocator(ctypes.Structure):
    _fields_ = [("alloc", ctypes.c_void_p), ("free", ctypes.c_void_p), ("opaque", ctypes.c_void_p)]


class _Options(ctypes.Structure):
    _fields_ = [("allocator", _Allocator), ("log", _LOGFN), ("log_user", ctypes.c_void_p),
                ("progress", ctypes.c_void_p), ("progress_user", ctypes.c_void_p),
                ("seed", ctypes.c_uint64), ("coarse_niter", ctypes.c_int),
                ("pq_niter", ctypes.c_int), ("max_points_per_centroid", ctypes.c_int),
                ("min_points_per_centroid", ctypes.c_int), ("pq_train_points", _c_size)]


class _LoadOptions(ctypes.Structure):
    _fields_ = [("allocator", _Allocator), ("log", _LOGFN), ("log_user", ctypes.c_void_p),
                ("max_bytes", _c_size)]


class _SearchParams(ctypes.Structure):
    _fields_ = [("nprobe", _c_size), ("k_factor", ctypes.c_float),
                ("nfound", ctypes.POINTER(_c_size))]


class _Info(ctypes.Structure):
    _fields_ = [("d", ctypes.c_int), ("metric", ctypes.c_int), ("kind", ctypes.c_int),
                ("by_residual", ctypes.c_int), ("refine", ctypes.c_int),
                ("is_trained", ctypes.c_int), ("nlist", _c_size), ("M", _c_size),
                ("ntotal", _c_size), ("memory_bytes", _c_size), ("factory", ctypes.c_char * 96)]


def _proto(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_vp = ctypes.c_void_p
_idxpp = ctypes.POINTER(ctypes.c_void_p)
_strerror = _proto("ivfpq_strerror", ctypes.c_char_p, ctypes.c_int)
_version = _proto("ivfpq_version_string", ctypes.c_char_p)
_factory = _proto("ivfpq_index_factory", ctypes.c_int, _idxpp, ctypes.c_int, ctypes.c_char_p,
                  ctypes.c_int, ctypes.POINTER(_Options))
_free = _proto("ivfpq_free", None, _vp)
_train = _proto("ivfpq_train", ctypes.c_int, _vp, _c_size, _fptr)
_add = _proto("ivfpq_add", ctypes.c_int, _vp, _c_size, _fptr, _i64ptr)
_reset = _proto("ivfpq_reset", ctypes.c_int, _vp)
_cache_tables = _proto("ivfpq_cache_coarse_tables", ctypes.c_int, _vp, ctypes.c_int)
_search = _proto("ivfpq_search", ctypes.c_int, _vp, _c_size, _fptr, _c_size,
                 ctypes.POINTER(_SearchParams), _fptr, _i64ptr)
_blend = _proto("ivfpq_search_blend", ctypes.c_int, _vp, _c_size, _fptr, _c_size,
                ctypes.POINTER(_SearchParams), ctypes.c_double, _fptr)
_reconstruct_n = _proto("ivfpq_reconstruct_n", ctypes.c_int, _vp, ctypes.c_int64, _c_size, _fptr)
_get_info = _proto("ivfpq_get_info", ctypes.c_int, _vp, ctypes.POINTER(_Info))
_check_dim = _proto("ivfpq_check_dim", ctypes.c_int, _vp, ctypes.c_int)
_ntotal = _proto("ivfpq_ntotal", _c_size, _vp)
_dim = _proto("ivfpq_dim", ctypes.c_int, _vp)
_is_trained = _proto("ivfpq_is_trained", ctypes.c_int, _vp)
_save_file = _proto("ivfpq_save_file", ctypes.c_int, _vp, ctypes.c_char_p, ctypes.c_int)
_load_file = _proto("ivfpq_load_file", ctypes.c_int, _idxpp, ctypes.c_char_p, ctypes.c_uint,
                    ctypes.POINTER(_LoadOptions))
_normalize = _proto("ivfpq_normalize_l2", ctypes.c_int, _c_size, ctypes.c_int, _fptr)


def version():
    return _version().decode()


# Messages arrive through the log callback, in the thread that made the
# call: kept per thread, turned into the exception (or warnings) after it.
_tls = threading.local()


def _on_log(user, level, status, message):
    text = message.decode("utf-8", "replace") if message else ""
    if level == _LOG_ERROR:
        _tls.error = text
    elif level == _LOG_WARNING:
        _tls.warnings = getattr(_tls, "warnings", []) + [text]


_log_cb = _LOGFN(_on_log)  # module-level: lives as long as any index


def _call(fn, *args):
    _tls.error = None
    _tls.warnings = []
    rc = fn(*args)
    for w in _tls.warnings:
        warnings.warn("ivfpq: " + w, RuntimeWarning, stacklevel=3)
    _tls.warnings = []
    if rc != 0:
        msg = _tls.error or _strerror(rc).decode()
        raise Error(rc, "ivfpq: %s (%s)" % (msg, _strerror(rc).decode()))
    return rc


def _metric(metric):
    if isinstance(metric, str):
        m = metric.lower()
        if m in ("l2", "metric_l2"):
            return METRIC_L2
        if m in ("ip", "inner_product", "metric_inner_product"):
            return METRIC_INNER_PRODUCT
        raise ValueError("ivfpq: unknown metric %r (use 'l2' or 'ip')" % metric)
    if metric in (METRIC_L2, METRIC_INNER_PRODUCT):
        return int(metric)
    raise ValueError("ivfpq: unknown metric %r (use METRIC_L2 or METRIC_INNER_PRODUCT)" % (metric,))


def _floats(x, what="x"):
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError("ivfpq: %s must be a 2-D array [n, d], got shape %s" % (what, a.shape))
    return a


def _fp(a):
    return a.ctypes.data_as(_fptr)


# ---------------------------------------------------------------- the index

class Index:
    """A libivfpq index (from index_factory or read_index)."""

    def __init__(self, handle):
        self._h = ctypes.c_void_p(handle)
        self.nprobe = 1       # defaults of search()/search_blend(), like faiss's attributes
        self.k_factor = 4.0

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None and h.value and _free is not None:  # _free: None at interpreter exit
            _free(h)
        self._h = None

    def _handle(self):
        if self._h is None or not self._h.value:
            raise ValueError("ivfpq: the index was freed")
        return self._h

    # -- properties
    @property
    def d(self):
        return _dim(self._handle())

    @property
    def ntotal(self):
        return _ntotal(self._handle())

    @property
    def is_trained(self):
        return bool(_is_trained(self._handle()))

    def info(self):
        """dict: d, metric, kind, by_residual, refine, is_trained, nlist, M,
        ntotal, memory_bytes, factory (canonical string)."""
        inf = _Info()
        _call(_get_info, self._handle(), ctypes.byref(inf))
        out = {name: getattr(inf, name) for name, _ in _Info._fields_}
        out["factory"] = inf.factory.decode()
        return out

    def __repr__(self):
        i = self.info()
        return "<ivfpq.Index %s d=%d ntotal=%d %s>" % (
            i["factory"], i["d"], i["ntotal"], "l2" if i["metric"] == METRIC_L2 else "ip")

    def _rows(self, x, what="x"):
        a = _floats(x, what)
        _call(_check_dim, self._handle(), a.shape[1])
        return a

    def _params(self, nprobe, k_factor):
        p = _SearchParams()
        p.nprobe = int(self.nprobe if nprobe is None else nprobe)
        p.k_factor = float(self.k_factor if k_factor is None else k_factor)
        return p

    # -- building
    def train(self, x):
        a = self._rows(x)
        _call(_train, self._handle(), a.shape[0], _fp(a))

    def add(self, x, ids=None):
        """Adds x [n, d]; ids None = ntotal, ntotal+1, ...; else n int64 labels >= 0."""
        a = self._rows(x)
        idp = None
        if ids is not None:
            ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
            if ids.shape[0] != a.shape[0]:
                raise ValueError("ivfpq: %d ids for %d vectors" % (ids.shape[0], a.shape[0]))
            idp = ids.ctypes.data_as(_i64ptr)
        _call(_add, self._handle(), a.shape[0], _fp(a), idp)

    def add_with_ids(self, x, ids):
        self.add(x, ids)

    def reset(self):
        _call(_reset, self._handle())

    def cache_coarse_tables(self, enable=True):
        """Keeps in the index the int16 tables that batch searches (>= 32
        queries, >= 64 lists, nprobe <= 16) rank the centroids with, so each
        search / search_blend call skips building them (2 * nlist * d bytes
        and a little more; results unchanged). For an index searched chunk
        after chunk, as RVC does. enable=False frees them."""
        _call(_cache_tables, self._handle(), 1 if enable else 0)

    # -- searching
    def search(self, x, k, nprobe=None, k_factor=None):
        """(D, I): float32 and int64 arrays [n, k], best first; missing results
        have label -1 and distance +inf (L2) or -inf (inner product)."""
        a = self._rows(x)
        n, k = a.shape[0], int(k)
        if k <= 0:
            raise ValueError("ivfpq: k must be >= 1")
        D = np.empty((n, k), dtype=np.float32)
        I = np.empty((n, k), dtype=np.int64)
        p = self._params(nprobe, k_factor)
        _call(_search, self._handle(), n, _fp(a), k, ctypes.byref(p), _fp(D),
              I.ctypes.data_as(_i64ptr))
        return D, I

    def search_blend(self, x, k, rate, nprobe=None, k_factor=None, out=None):
        """RVC's retrieval step: the [n, d] float32 array
        rate * (inverse-squared-distance weighted mean of the k neighbours)
        + (1 - rate) * x, bit-identical to RVC's numpy formula where that is
        finite (see ivfpq_search_blend in ivfpq.h for zero distances,
        missing results and inner product). out: optional C-contiguous
        float32 [n, d] array to write into (may be x itself)."""
        a = self._rows(x)
        n, k = a.shape[0], int(k)
        if k <= 0:
            raise ValueError("ivfpq: k must be >= 1")
        if out is None:
            out = np.empty_like(a)
        elif (not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != a.shape
              or not out.flags.c_contiguous or not out.flags.writeable):
            raise ValueError("ivfpq: out must be a writable C-contiguous float32 array of shape %s"
                             % (a.shape,))
        p = self._params(nprobe, k_factor)
        _call(_blend, self._handle(), n, _fp(a), k, ctypes.byref(p), ctypes.c_double(rate),
              _fp(out))
        return out

    # -- stored vectors
    def reconstruct_n(self, i0=0, n=None):
        """The stored vectors with labels i0 .. i0+n-1 as [n, d] float32
        (n None = up to ntotal). Needs an index that keeps vectors."""
        if n is None:
            n = self.ntotal - i0
        n = int(n)
        if n < 0:
            raise ValueError("ivfpq: n must be >= 0")
        out = np.empty((n, self.d), dtype=np.float32)
        _call(_reconstruct_n, self._handle(), int(i0), n, _fp(out))
        return out

    def reconstruct(self, i):
        return self.reconstruct_n(int(i), 1)[0]


# ----------------------------------------------------------- module level

def index_factory(d, spec, metric=METRIC_L2, seed=0, coarse_niter=0, pq_niter=0,
                  max_points_per_centroid=0, min_points_per_centroid=0, pq_train_points=0):
    """A new empty index from a faiss-style factory string ("Flat",
    "IVF1024,Flat", "IVF1024,PQ128x4fs,RFlat", ...). metric: "l2", "ip",
    METRIC_L2 or METRIC_INNER_PRODUCT. The other arguments are
    ivfpq_options (0 = the library's default)."""
    opt = _Options()
    opt.log = _log_cb
    opt.seed = seed
    opt.coarse_niter = coarse_niter
    opt.pq_niter = pq_niter
    opt.max_points_per_centroid = max_points_per_centroid
    opt.min_points_per_centroid = min_points_per_centroid
    opt.pq_train_points = pq_train_points
    h = ctypes.c_void_p()
    _call(_factory, ctypes.byref(h), int(d), spec.encode(), _metric(metric), ctypes.byref(opt))
    return Index(h.value)


def read_index(path, zero_copy=False, max_bytes=0):
    """Loads an index file written by write_index or by faiss.write_index
    (format detected). zero_copy: map the file and search it in place
    (native format only; the index is then read-only)."""
    opt = _LoadOptions()
    opt.log = _log_cb
    opt.max_bytes = max_bytes
    h = ctypes.c_void_p()
    _call(_load_file, ctypes.byref(h), os.fsencode(path), _LOAD_ZERO_COPY if zero_copy else 0,
          ctypes.byref(opt))
    return Index(h.value)


def write_index(index, path, format="native"):
    """Saves to path (atomically: temporary file + rename). format:
    "native" (libivfpq's, zero-copy loadable) or "faiss" (readable by
    faiss.read_index)."""
    fmts = {"native": FORMAT_NATIVE, "faiss": FORMAT_FAISS, FORMAT_NATIVE: FORMAT_NATIVE,
            FORMAT_FAISS: FORMAT_FAISS}
    if format not in fmts:
        raise ValueError("ivfpq: unknown format %r (use 'native' or 'faiss')" % (format,))
    _call(_save_file, index._handle(), os.fsencode(path), fmts[format])


def normalize_L2(x):
    """Scales each row of the C-contiguous float32 array x [n, d] to unit
    norm in place (zero rows stay zero), like faiss.normalize_L2."""
    if not (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == 2
            and x.flags.c_contiguous and x.flags.writeable):
        raise ValueError("ivfpq: normalize_L2 needs a writable C-contiguous float32 [n, d] array")
    _call(_normalize, x.shape[0], x.shape[1], _fp(x))

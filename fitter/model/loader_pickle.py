"""Reading the legacy pickles models are distributed as (FLAME's ``generic_model.pkl``, ``FLAME_masks.pkl``,
DECA's ``landmark_embedding.npy``) without chumpy and without running code from the file.

FLAME's pickles were written by Python 2 with chumpy objects (``chumpy.ch.Ch``) and old scipy sparse matrices
inside. chumpy does not install or import on current numpy, and a pickle may name any callable, so this
unpickler resolves only an allow-list of classes:

- ``chumpy.*`` -> :class:`ChumpyStandIn`. A chumpy object pickles as its ``__dict__`` (``Ch.__getstate__`` is a
  copy of it without the weak-reference caches); a plain ``Ch`` keeps its value in ``'x'``, an ndarray, which
  :meth:`ChumpyStandIn.to_array` returns. Derived chumpy expressions (sums, selections) store no value and
  are reported as unsupported.
- ``scipy.sparse`` csc/csr/coo matrices -> :class:`SparseStandIn`, rebuilt from their stored arrays (the
  attribute names changed over scipy versions: ``_shape``/``shape``, ``row``/``col``/``coords``).
- numpy arrays, dtypes and scalars, and harmless builtins (``set``, ``slice``, ``object`` for
  ``copyreg._reconstructor``, ``_codecs.encode`` for bytes in protocol-2 pickles).

Anything else raises :class:`pickle.UnpicklingError`; callers turn it into a ModelFormatError with the file.
"""
from __future__ import annotations

import functools
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

_BUILTINS = {"object", "set", "frozenset", "slice", "complex", "bytearray", "bytes", "list", "dict", "tuple",
             "int", "float", "str", "bool", "range", "unicode", "long"}
_NUMPY = {
    ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy", "_frombuffer"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}
_SAFE = {("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"), ("_codecs", "encode"),
         ("collections", "OrderedDict"), ("collections", "defaultdict")}
_SPARSE = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}

# What reading a damaged or foreign pickle can raise; loaders turn these into a ModelFormatError.
PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError, IndexError,
                 ImportError, OSError)


class _StandIn:
    """An object of a foreign class rebuilt from a pickle: nothing runs on creation, and the pickled state is
    kept in ``state`` for the subclass to interpret."""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.state = {}
        return obj

    @staticmethod
    def _merged(state: Any) -> Any:
        """A (dict state, slot state) pair as one dict; any other state as it is."""
        if isinstance(state, tuple) and len(state) == 2:
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            return merged
        return state


class ChumpyStandIn(_StandIn):
    """A chumpy object from a pickle: its class name and pickled state (``state['x']`` is the value)."""

    chumpy_class = "chumpy.ch.Ch"

    def __setstate__(self, state: Any) -> None:
        state = self._merged(state)
        self.state = state if isinstance(state, dict) else {"x": state}

    def to_array(self) -> np.ndarray:
        if "x" not in self.state:
            raise ValueError(
                f"a {self.chumpy_class} object stores no value (a derived chumpy expression); only plain "
                "chumpy.Ch arrays can be read without chumpy"
            )
        return np.asarray(resolve(self.state["x"]))


class SparseStandIn(_StandIn):
    """A scipy sparse matrix from a pickle of any scipy version; :meth:`to_sparse` rebuilds it."""

    sparse_class = "csc_matrix"

    def __setstate__(self, state: Any) -> None:
        self.state = dict(self._merged(state))

    def to_sparse(self) -> scipy.sparse.spmatrix:
        s = self.state
        shape = tuple(int(n) for n in s.get("_shape", s.get("shape")))
        fmt = self.sparse_class[:3]
        if fmt in ("csc", "csr"):
            cls = scipy.sparse.csc_matrix if fmt == "csc" else scipy.sparse.csr_matrix
            return cls((np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"])), shape=shape)
        row, col = s["coords"] if "coords" in s else (s["row"], s["col"])
        return scipy.sparse.coo_matrix((np.asarray(s["data"]), (np.asarray(row), np.asarray(col))), shape=shape)


@functools.lru_cache(maxsize=None)
def _stand_in(base: type, qualified: str) -> type:
    attr = "chumpy_class" if base is ChumpyStandIn else "sparse_class"
    value = qualified if base is ChumpyStandIn else qualified.rsplit(".", 1)[1]
    return type(qualified.rsplit(".", 1)[1], (base,), {attr: value, "__module__": __name__})


class LegacyUnpickler(pickle.Unpickler):
    """Unpickler for model files: chumpy and sparse stand-ins, numpy, and nothing that could run code."""

    def __init__(self, file, **kwargs):
        super().__init__(file, encoding="latin1", **kwargs)

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _stand_in(ChumpyStandIn, f"{module}.{name}")
        if module.startswith("scipy.sparse") and name in _SPARSE:
            return _stand_in(SparseStandIn, f"{module}.{name}")
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return super().find_class(module, name)
        if (module, name) in _SAFE:
            return super().find_class(module, name)
        if (module, name) in _NUMPY or (module == "numpy.dtypes" and name.endswith("DType")):
            if module.startswith("numpy.core") and hasattr(np, "_core"):
                module = module.replace("numpy.core", "numpy._core", 1)  # no deprecation warning on numpy 2
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"the pickle refers to {module}.{name}, which a model file should not contain"
        )


def resolve(obj: Any) -> Any:
    """Replace stand-ins by numpy arrays / scipy sparse matrices, recursively through dicts, lists, tuples."""
    if isinstance(obj, ChumpyStandIn):
        return obj.to_array()
    if isinstance(obj, SparseStandIn):
        return obj.to_sparse()
    if isinstance(obj, dict):
        return {(k.decode("latin1") if isinstance(k, bytes) else k): resolve(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(resolve(v) for v in obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        if obj.ndim == 0:
            return resolve(obj.item())
    return obj


def load_legacy_pickle(path: str | Path) -> Any:
    """Unpickle a model file with :class:`LegacyUnpickler` and :func:`resolve` the stand-ins.

    Raises pickle.UnpicklingError (unknown class), ValueError (unsupported chumpy object) or the usual
    EOFError/OSError; loaders wrap these into a ModelFormatError naming the file.
    """
    with open(path, "rb") as fh:
        return resolve(LegacyUnpickler(fh).load())


def load_pickled_npy(path: str | Path) -> Any:
    """A ``.npy`` holding a pickled object (e.g. DECA's ``landmark_embedding.npy``, a dict), read safely."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            _, _, dtype = np.lib.format.read_array_header_2_0(fh)
        if dtype != object:
            fh.seek(0)
            return np.load(io.BytesIO(fh.read()), allow_pickle=False)
        return resolve(LegacyUnpickler(fh).load())

"""Weights packed once: ``fastfc.pack(w, dtype=None)`` -> ``PackedWeights``.

A dense layer at small batch reads each weight once for 2*m flops, so its time is the
time to read W. Packing does once what a call would otherwise do on every call: weights go
into the GEMM micro-kernel's panels (nr columns by all in_features rows, one after the
other: read in long runs at any batch, never packed per call; an (out, in) array is
transposed here, not per call), 64-byte aligned, in the compute dtype or in bfloat16 (half
the bytes to read; activations and accumulation stay float32).

bfloat16 rounding is round-to-nearest-even with NaN made quiet (sign kept), bit for bit as
``ml_dtypes.bfloat16`` does; ml_dtypes itself is not needed.
"""
from typing import Any, Optional, Tuple

import numpy as np

from fastfc import _core

__all__ = ["pack", "PackedWeights", "to_bfloat16_bits", "from_bfloat16_bits"]

_FORMAT = 1          # pickle format of PackedWeights
_ALIGN = 64          # a cache line: vector loads of a row never straddle one at its start
_STORAGES = {"float32": np.float32, "float64": np.float64, "bfloat16": np.float32}


def _aligned_empty(shape: Tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array starting on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def _aligned_copy(a, dtype) -> np.ndarray:
    """a's values in a new C-contiguous array of `dtype` starting on a 64-byte boundary."""
    a = np.asarray(a)
    out = _aligned_empty(a.shape, dtype)
    out[...] = a
    return out


def _is_bfloat16(dtype) -> bool:
    """An ml_dtypes.bfloat16 dtype (without importing ml_dtypes)."""
    return dtype.kind == "V" and dtype.itemsize == 2 and dtype.name == "bfloat16"


def to_bfloat16_bits(x) -> np.ndarray:
    """float32 or float64 values rounded to bfloat16 (nearest, ties to even; NaN quiet
    with its sign, as ml_dtypes), returned as their uint16 bit patterns.

    float64 goes through float32 rounded to odd, which makes the two roundings one.
    """
    x = np.asarray(x)
    if x.dtype.kind == "f" and not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    if x.dtype == np.float64:
        with np.errstate(invalid="ignore", over="ignore"):
            f = x.astype(np.float32)
            up = np.abs(f.astype(np.float64)) > np.abs(x)        # rounded away from zero
            f = np.where(up, np.nextafter(f, np.float32(0)), f)  # -> truncated
            inexact = f.astype(np.float64) != x
        bits = f.view(np.uint32) | (inexact & ~np.isnan(x)).astype(np.uint32)
    elif x.dtype == np.float32:
        bits = x.view(np.uint32)
    else:
        raise TypeError(f"to_bfloat16_bits: expected float32 or float64, got {x.dtype}")
    rounded = (bits + (np.uint32(0x7FFF) + ((bits >> 16) & 1))) >> 16
    nan = (bits & 0x7FFFFFFF) > 0x7F800000
    quiet = ((bits >> 16) & 0x8000) | 0x7FC0
    return np.where(nan, quiet, rounded).astype(np.uint16)


def from_bfloat16_bits(bits) -> np.ndarray:
    """uint16 bfloat16 bit patterns as float32 (exact)."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


def _storage_name(dtype: Any, fn: str) -> Optional[str]:
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype in _STORAGES:
        return dtype
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is not None and _is_bfloat16(dt):
        return "bfloat16"
    if dt is not None and dt in (np.float32, np.float64):
        return dt.name
    raise ValueError(f"{fn}: dtype must be None, 'float32', 'float64' or 'bfloat16', "
                     f"got {dtype!r}")


class PackedWeights:
    """Weights of a dense layer packed once: pass them as ``w`` to ``fastfc.linear`` or as
    ``b`` to ``fastfc.gemm``. ``PackedWeights(w, dtype)`` is ``fastfc.pack(w, dtype)``.

    Immutable and picklable. Attributes: ``shape`` (in_features, out_features); ``dtype``,
    the compute dtype x must have (float32 for bfloat16 weights); ``storage``, the stored
    element type ('float32', 'float64' or 'bfloat16'); ``layout``; ``isa``, the kernel
    path it was packed for. Weights are stored in that path's panels (row-major (in, out)
    when padding out_features to whole panels would add over a quarter); a pickle holds
    the (in, out) values and is packed again for the path that loads it (the values are
    kept, never re-rounded).

    Parameters
    ----------
    w : array_like of shape (in_features, out_features), or PackedWeights
    dtype : {None, "float32", "float64", "bfloat16"}
        As in ``fastfc.pack``.

    Notes
    -----
    bfloat16 error bound: each weight is rounded once, relative error at most
    u = 2**-8, and the float32 sums add at most (k + 1) * 2**-24 relative, so
    ``|linear(x, pack(w, 'bfloat16'), b) - (x @ w + b)| <= (2**-8 + (k + 2) * 2**-24) *
    (|x| @ |w| + |b|)`` elementwise, before the activation (relu, leaky relu, tanh and
    sigmoid are 1-Lipschitz). The same on every path: the kernels widen bfloat16 to
    float32 exactly, so the result is float32's on the rounded weights.
    """

    __slots__ = ("_data", "_storage", "_isa", "_shape")

    def __new__(cls, w: Any, dtype: Any = None) -> "PackedWeights":
        return pack(w, dtype)

    @classmethod
    def _make(cls, data: np.ndarray, storage: str, isa: str,
              shape: Tuple[int, int]) -> "PackedWeights":
        """data: the (in, out) values (bfloat16 bits or floats), or their panels."""
        self = object.__new__(cls)
        data.flags.writeable = False
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_storage", storage)
        object.__setattr__(self, "_isa", isa)
        object.__setattr__(self, "_shape", (int(shape[0]), int(shape[1])))
        return self

    def __setattr__(self, name, value):
        raise AttributeError(f"PackedWeights is immutable (setting {name!r}); pack again")

    def __delattr__(self, name):
        raise AttributeError(f"PackedWeights is immutable (deleting {name!r})")

    @property
    def shape(self) -> Tuple[int, int]:
        return self._shape

    @property
    def layout(self) -> str:
        if self._data.ndim == 2:
            return "(in, out) row-major"
        return f"panels of {self._data.shape[2]} columns by in_features rows"

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(_STORAGES[self._storage])

    @property
    def storage(self) -> str:
        return self._storage

    @property
    def isa(self) -> str:
        return self._isa

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    def _values(self) -> np.ndarray:
        """The stored (in, out) values (bfloat16 bits or floats); a view when row-major."""
        if self._data.ndim == 2:
            return self._data
        k, n = self._shape
        p, _, nr = self._data.shape
        data = self._data[:, :, np.argsort(_bf16_order(nr))] if self._data.dtype == np.uint16 \
            else self._data
        return data.transpose(1, 0, 2).reshape(k, p * nr)[:, :n]

    def unpack(self) -> np.ndarray:
        """The weights as a new (in, out) array of the compute dtype (bfloat16 widened)."""
        if self._storage == "bfloat16":
            return from_bfloat16_bits(self._values())
        return np.array(self._values())

    def __repr__(self) -> str:
        k, n = self.shape
        return (f"PackedWeights(shape=({k}, {n}), storage={self._storage!r}, "
                f"dtype={self.dtype.name!r}, isa={self._isa!r})")

    def __reduce__(self):   # the (in, out) values: panels differ between paths
        return (_restore, (_FORMAT, self._storage, self._isa, np.array(self._values())))

    def __copy__(self):
        return self   # immutable

    def __deepcopy__(self, memo):
        return self


def _restore(fmt: int, storage: str, isa: str, data: np.ndarray) -> PackedWeights:
    if fmt > _FORMAT:
        raise ValueError(f"PackedWeights pickle format {fmt} is newer than this fastfc "
                         f"reads ({_FORMAT}); upgrade fastfc")
    return _panels(data, storage)


def _bf16_order(nr: int) -> np.ndarray:
    """The columns of a bfloat16 panel's row in storage order: i and i + nr/2 side by side,
    one 32-bit word that the kernels widen to two floats with one operation each."""
    return np.arange(nr).reshape(2, nr // 2).T.ravel()


def _panels(a: np.ndarray, storage: str) -> PackedWeights:
    """Weights (in, out) of any strides (floats, or bfloat16 bits) into this path's panels;
    row-major when padding the columns to whole panels would add more than a quarter (a
    10-class head at nr = 32: 3.2x the bytes to read)."""
    k, n = a.shape
    bf16 = storage == "bfloat16"
    dtype = np.uint16 if bf16 else _STORAGES[storage]
    nr = _core.panel_width(_STORAGES[storage])
    panels = (n + nr - 1) // nr
    if 4 * panels * nr > 5 * n:
        return PackedWeights._make(_aligned_copy(a, dtype), storage, _core.ISA, a.shape)
    data = _aligned_empty((panels, k, nr), dtype)
    if bf16:   # bits, moved as they are
        padded = np.zeros((k, panels * nr), np.uint16)
        padded[:, :n] = a
        data[...] = padded.reshape(k, panels, nr)[:, :, _bf16_order(nr)].transpose(1, 0, 2)
    else:
        _core.pack_panels(a, data)
    return PackedWeights._make(data, storage, _core.ISA, a.shape)


def pack(w, dtype=None) -> PackedWeights:
    """Pack dense-layer weights once for ``linear`` (as ``w``) and ``gemm`` (as ``b``).

    Parameters
    ----------
    w : array_like of shape (in_features, out_features), or PackedWeights
        float32, float64 or ``ml_dtypes.bfloat16``; any strides (``W.T`` of a PyTorch
        (out, in) weight is transposed here once). It is copied: changing it afterwards
        changes nothing.
    dtype : {None, "float32", "float64", "bfloat16"} or a NumPy / ml_dtypes dtype
        The stored type; None keeps w's (float32 for float16). "bfloat16" stores half
        the bytes of float32 and computes in float32 (see PackedWeights' error bound).

    Returns
    -------
    PackedWeights

    Raises
    ------
    ValueError
        w not 2-D, or an unknown dtype.
    TypeError
        w complex, integer, boolean or object.

    Examples
    --------
    >>> import numpy as np, fastfc
    >>> pw = fastfc.pack(np.ones((3, 4), np.float32), dtype="bfloat16")
    >>> fastfc.linear(np.ones((2, 3), np.float32), pw)[0, 0]
    np.float32(3.0)
    """
    storage = _storage_name(dtype, "pack")
    if isinstance(w, PackedWeights):
        if storage in (None, w.storage):
            return w
        w = w.unpack()
    a = w if isinstance(w, np.ndarray) else np.asarray(w)
    if a.dtype.kind in "OUSV" and not _is_bfloat16(a.dtype):   # None, a str, records
        raise TypeError(f"pack: w must be a 2-D float array, got {type(w).__name__} "
                        f"(dtype {a.dtype})")
    if a.ndim != 2:
        raise ValueError(f"pack: w must be 2-D (in_features, out_features), got shape "
                         f"{a.shape}")
    if _is_bfloat16(a.dtype):
        bits = a.view(np.uint16) if a.flags.c_contiguous or a.size == 0 else \
            np.ascontiguousarray(a).view(np.uint16)
        if storage in (None, "bfloat16"):
            return _panels(bits, "bfloat16")
        a = from_bfloat16_bits(bits)
    kind = a.dtype.kind
    if kind != "f":
        what = {"c": "complex", "i": "integer", "u": "integer", "b": "boolean",
                "O": "object"}.get(kind, "non-float")
        raise TypeError(f"pack: w must be a float32, float64 or bfloat16 array, got {what} "
                        f"dtype {a.dtype} (shape {a.shape})")
    if a.dtype.itemsize > 8:
        raise TypeError(f"pack: w has dtype {a.dtype}; convert to float64 or float32")
    if not a.dtype.isnative:   # '>f8' is float64: it must not fall through to float32
        a = a.astype(a.dtype.newbyteorder("="))
    if storage is None:
        storage = "float64" if a.dtype == np.float64 else "float32"
    if storage != "bfloat16":
        return _panels(a, storage)
    src = a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)
    return _panels(to_bfloat16_bits(src), storage)

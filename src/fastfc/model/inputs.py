"""The arrays a model is given, checked once at its boundary and converted to its dtype."""
import numpy as np

from fastfc import _core


def as_2d_float(X, name: str, dtype, n_features=None) -> np.ndarray:
    """`X` as a C-contiguous array of `dtype` with a batch axis, or a TypeError/ValueError
    naming `name` (wrong dtype or shape, empty, NaN/Inf, beyond the dtype's range)."""
    given = X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {X.dtype}; expected a real numeric array")
    if X.dtype != dtype or not (X.flags.c_contiguous and X.flags.aligned):
        with np.errstate(over="ignore"):   # values too large for dtype: reported below
            X = np.require(X, dtype, ["C_CONTIGUOUS", "ALIGNED"])   # the C kernels' layout
    if X.ndim < 2:
        raise ValueError(f"{name} must have a batch axis and features, got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    if n_features is not None and X.shape[1:] != n_features:
        raise ValueError(f"{name} has per-sample shape {X.shape[1:]}, the model expects "
                         f"{n_features}")
    if not _core._all_finite(X):
        if given.dtype.kind == "f" and np.isfinite(given).all():
            raise ValueError(f"{name} holds values beyond the range of {X.dtype}")
        raise ValueError(f"{name} contains NaN or Inf")
    return X

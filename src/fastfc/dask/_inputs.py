"""Argument checks shared by inference and training: row-chunked dask arrays."""
import numpy as np


def as_row_chunked(X, name, model=None):
    """`X` as a dask array whose chunks hold whole rows, or a ValueError saying how to
    rechunk. A NumPy array (or anything np.asarray takes) is wrapped with automatic row
    chunks; a dask DataFrame becomes ``X.to_dask_array(lengths=True)``."""
    import dask.array as da
    if not isinstance(X, da.Array):
        if hasattr(X, "to_dask_array"):   # a dask DataFrame or Series
            X = X.to_dask_array(lengths=True)
        else:
            X = np.asarray(X)
            if X.ndim == 0:
                raise ValueError(f"{name} must have one row per sample, got a scalar")
            X = da.from_array(X, chunks=("auto",) + (-1,) * (X.ndim - 1))
    if X.ndim == 0:
        raise ValueError(f"{name} must have one row per sample, got a 0-d dask array")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(f"{name} has unknown row chunk sizes {X.chunks[0]}: compute them "
                         f"with {name}.compute_chunk_sizes() (or df.to_dask_array(lengths=True))")
    split = [axis for axis in range(1, X.ndim) if len(X.chunks[axis]) > 1]
    if split:
        raise ValueError(f"{name} has chunks {X.chunks} that split axis {split[0]} (of size "
                         f"{X.shape[split[0]]}) into {len(X.chunks[split[0]])} pieces: each "
                         f"chunk must hold whole rows; rechunk with "
                         f"{name}.rechunk({{{', '.join(f'{a}: -1' for a in split)}}})")
    if model is not None and tuple(X.shape[1:]) != tuple(model.input_shape):
        raise ValueError(f"{name} has per-sample shape {tuple(X.shape[1:])} (shape {X.shape}) "
                         f"but the model was built for {tuple(model.input_shape)}")
    return X


def targets_like(y, X, name="y"):
    """`y` as a dask array with X's row chunks, or a ValueError naming both."""
    import dask.array as da
    if not isinstance(y, da.Array) and not hasattr(y, "to_dask_array"):
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != X.shape[0]:
            raise ValueError(f"{name} has shape {y.shape} but X has {X.shape[0]} rows")
        return da.from_array(y, chunks=(X.chunks[0],) + (-1,) * (y.ndim - 1))
    y = as_row_chunked(y, name)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"{name} has {y.shape[0]} rows but X has {X.shape[0]}")
    if y.chunks[0] != X.chunks[0]:
        raise ValueError(f"{name}'s row chunks {y.chunks[0]} differ from X's {X.chunks[0]}: "
                         f"rechunk with {name}.rechunk({{0: X.chunks[0]}})")
    return y

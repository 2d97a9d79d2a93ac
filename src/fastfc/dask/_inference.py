"""Lazy inference over a row-chunked dask array: one task per chunk, the model sent once."""
import numpy as np

from fastfc.dask._inputs import as_row_chunked
from fastfc.dask._shipping import ShippedModel, task_threads
from fastfc.model.inputs import as_2d_float


def _model_key(model):
    """The model as one graph dependency: scattered to the cluster when a distributed
    client exists (each worker fetches it once), else one delayed key."""
    import dask
    shipped = ShippedModel(model, inference=True)
    try:
        from distributed import default_client
        client = default_client()
    except (ImportError, ValueError):
        return dask.delayed(shipped, pure=True, traverse=False)
    # a key of its own: re-scattering a hashed key while its last future is being
    # released loses the dependency (Dask reports "lost dependencies")
    return client.scatter(shipped, broadcast=False, hash=False)


def _last_layer(model, layer):
    """The position of `layer` (an int, negative counts from the end) in model.layers."""
    n = len(model.layers)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise TypeError(f"layer must be an int position in model.layers, got {layer!r}")
    if not -n <= layer < n:
        raise ValueError(f"layer={layer} is out of range for a model of {n} layers")
    return int(layer) % n


def _run_block(block, shipped, what, layer):
    task_threads()
    return _outputs(shipped.model(), block, what, layer)


def _outputs(model, block, what, layer):
    """What `what` asks of `model` for the rows of `block` (none: from one row of zeros)."""
    if block.shape[0] == 0:
        return _outputs(model, np.zeros((1,) + block.shape[1:], model.dtype), what, layer)[:0]
    if what == "predict":
        return model.predict(block)
    if what == "predict_proba":
        return model.predict_proba(block)
    x = as_2d_float(block, "X", model.dtype, model.input_shape)   # as predict checks it
    for lay in model.layers[:layer + 1]:
        x = lay.forward(x, False)
    return np.array(x, copy=True)   # a layer's buffer is reused by the next call


def check_model(model, fn, frozen=True):
    """A TypeError naming `fn` unless `model` is a Sequential (or a FrozenModel)."""
    import fastfc
    kinds = (fastfc.Sequential, fastfc.FrozenModel) if frozen else (fastfc.Sequential,)
    if not isinstance(model, kinds):
        hint = (": wrap a scikit-learn style estimator in dask_ml.wrappers.ParallelPostFit "
                "instead" if hasattr(model, "get_params") else "")
        raise TypeError(f"fastfc.dask.{fn}: model must be a fastfc "
                        f"{' or '.join(k.__name__ for k in kinds)}, got "
                        f"{type(model).__name__}{hint}")


def _map(model, X, what, layer=-1):
    if what != "transform":   # transform checked it
        check_model(model, what)
    X = as_row_chunked(X, "X", model)
    # the output's dtype and per-row shape: a layer's from the model's shapes (running the
    # caller's layers would replace the activations a backward reads), else one row run
    meta = (np.zeros((1,) + tuple(model.shapes[layer]), model.dtype) if what == "transform"
            else _outputs(model, np.zeros((1,) + X.shape[1:], model.dtype), what, layer))
    chunks = (X.chunks[0],) + tuple((n,) for n in meta.shape[1:])
    key = _model_key(model)
    # axes of X beyond the output's (all but rows for labels) go
    kw = {"drop_axis": list(range(meta.ndim, X.ndim))} if meta.ndim < X.ndim else {}
    # token, not name: the keys hash the model's bytes and X, so another model, another X
    # or the same model trained since never shares a key with this result
    return X.map_blocks(_run_block, key, what, layer, dtype=meta.dtype, chunks=chunks,
                        meta=meta[:0], token=f"fastfc-{what}", **kw)


def predict(model, X):
    """Class labels (classification losses) or outputs of `model` for each row of `X`,
    as a lazy dask array chunked like X's rows.

    Parameters
    ----------
    model : fastfc.Sequential
        Sent to the workers once (scattered to the cluster when a distributed client
        exists, else one task key), never once per chunk.
    X : dask.array.Array, dask DataFrame or array-like
        Chunks must hold whole rows (``X.rechunk({1: -1})`` otherwise). A NumPy array is
        wrapped with ``dask.array.from_array`` (automatic row chunks); a dask DataFrame
        is taken as ``X.to_dask_array(lengths=True)``.

    Returns
    -------
    dask.array.Array
        Nothing runs until ``.compute()``. On a distributed worker each task runs fastfc
        on the worker's cores // its threads (see docs/distributed.md).

    Examples
    --------
    >>> import dask.array as da, fastfc, fastfc.dask
    >>> model = fastfc.Sequential([fastfc.Dense(4, 3)], seed=0)
    >>> X = da.random.random((100, 4), chunks=(25, 4)).astype("float32")
    >>> fastfc.dask.predict(model, X).compute().shape
    (100,)
    """
    return _map(model, X, "predict")


def predict_proba(model, X):
    """Class probabilities of `model` for each row of `X` as a lazy dask array (see
    `predict` for the arguments)."""
    return _map(model, X, "predict_proba")


def transform(model, X, layer=-1):
    """The output of ``model.layers[layer]`` (evaluation mode) for each row of `X`, as a
    lazy dask array: features from a hidden layer, or the raw outputs (logits) with
    ``layer=-1``. See `predict` for `model` and `X`."""
    check_model(model, "transform", frozen=False)   # before _last_layer reads its layers
    layer = _last_layer(model, layer)
    return _map(model, X, "transform", layer)

"""save() and load(): the weights as .npz arrays plus the architecture and the training
state as JSON (nothing pickled, ``allow_pickle=False``), in the format
"fastfc-sequential-1" that every fastfc so far writes and reads (tests/data holds a file
written before the model package).

Arrays: ``p0, p1...`` the parameters in layer order; ``bn{i}_mean``, ``bn{i}_var`` the
running statistics of the BatchNorm at position i; ``opt0...`` the optimizer's state.
JSON: ``config`` (Sequential.get_config) and ``training`` (the optimizer with its step
count and lr, the epochs done, the shuffling generator's state, each Dropout's call count).
"""
import io
import json
import os
import warnings
import zipfile
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from fastfc import initializers
from fastfc import layers as layers_mod
from fastfc import losses as losses_mod
from fastfc import optim as optim_mod
from fastfc._state import fastfc_version

if TYPE_CHECKING:
    from fastfc.model.sequential import Sequential

FORMAT = "fastfc-sequential-1"
PathLike = Union[str, "os.PathLike[str]"]


def save(model: Any, path: PathLike) -> None:
    """Write `model` to `path` (np.savez appends ``.npz`` when missing)."""
    arrays = {f"p{i}": v for i, v in enumerate(model.parameters())}
    for i, layer in enumerate(model.layers):
        if isinstance(layer, layers_mod.BatchNorm):
            arrays[f"bn{i}_mean"], arrays[f"bn{i}_var"] = layer.running_mean, layer.running_var
    config = model.get_config()   # refuses a custom loss before any warning
    training = training_state(model)
    if training["optimizer"]:
        arrays.update((f"opt{i}", a) for i, a in enumerate(model.optimizer.state or ()))
    np.savez(path, config=np.array(json.dumps(config)),
             training=np.array(json.dumps(training)), **arrays)


def training_state(model: Any) -> dict:
    """Where training stands, as JSON: the optimizer (built-in ones, with their step
    count), the epochs done, the shuffling generator and the dropout streams."""
    opt = model.optimizer
    name = next((k for k, v in optim_mod.OPTIMIZERS.items() if type(opt) is v), None)
    why = (f"{type(opt).__name__} is not a fastfc.optim optimizer" if name is None else
           None if optim_mod.saved_schedule(opt.schedule) else
           f"its schedule {opt.schedule!r} is not a fastfc.optim schedule")
    if why:
        warnings.warn(f"the optimizer is not saved ({why}): pass optimizer= to load() to "
                      f"train on", stacklevel=4)   # the caller of Sequential.save
        name = None
    return {"optimizer": name and {"name": name, "config": opt.get_config(), "t": opt.t,
                                   "lr": opt.lr, "state": len(opt.state or ())},
            "epochs_done": model.epochs_done,
            "shuffle_rng": model._shuffle_rng.bit_generator.state,
            "dropout_calls": [getattr(layer, "calls", None) for layer in model.layers]}


def resume(model: Any, training: dict) -> None:
    """Set the training state saved by save() (the optimizer's is set by load)."""
    model.epochs_done = training["epochs_done"]
    model._shuffle_rng.bit_generator.state = training["shuffle_rng"]
    for layer, calls in zip(model.layers, training["dropout_calls"]):
        if calls is not None:
            layer.calls = calls


def _binary_file(f) -> bool:
    """A file object np.load can read an .npz from: binary, readable, seekable."""
    try:
        return (hasattr(f, "read") and hasattr(f, "seek") and f.seekable() and
                not isinstance(f, io.TextIOBase) and (not hasattr(f, "readable") or f.readable()))
    except (AttributeError, ValueError, OSError):   # no seekable(), or closed
        return False


def load(path: PathLike,
         optimizer: Optional[Union[str, optim_mod.Optimizer]] = None) -> "Sequential":
    """A Sequential saved with ``save`` (np.load with allow_pickle=False), with its
    optimizer and its state unless `optimizer` is given; or a FrozenModel its ``save``
    wrote (`optimizer` is then ignored).

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        The file save() wrote (``.npz`` is appended when `path` lacks it and does not
        exist, as np.savez does), or a file object open for reading at its start.
    optimizer : str or Optimizer, optional
        Train on with this optimizer (fresh state) instead of the saved one.

    Returns
    -------
    Sequential
        The saved layers, weights, BatchNorm running statistics, loss and dtype, and (without
        `optimizer`) the optimizer's state and the point where training stopped.

    Raises
    ------
    ValueError
        When the file is not a fastfc model file.

    Examples
    --------
    >>> import fastfc, tempfile, os
    >>> model = fastfc.Sequential([fastfc.Dense(4, 3)])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> model.save(path)
    >>> loaded = fastfc.load(path)
    """
    from fastfc.model.sequential import Sequential, check_last_layer   # which imports this

    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if isinstance(path, (str, os.PathLike)):
        if not os.path.exists(path) and not os.fspath(path).endswith(".npz"):
            path = os.fspath(path) + ".npz"   # where np.savez put it
        where = path
        if os.path.isfile(path) and not zipfile.is_zipfile(path):   # np.load: "pickled data"
            raise ValueError(f"{path} is not a fastfc model file (not an .npz archive)")
    elif _binary_file(path):
        start = path.tell()
        archive = zipfile.is_zipfile(path)   # which moves the file's position
        path.seek(start)
        where = getattr(path, "name", "the file object")   # in messages, not its repr
        if not archive:
            raise ValueError(f"{where} is not a fastfc model file (not an .npz archive)")
    else:
        raise TypeError(f"load: path must be a str, an os.PathLike or a binary file object "
                        f"open for reading and seekable (an .npz is a zip archive), got "
                        f"{type(path).__name__}")
    with np.load(path, allow_pickle=False) as data:
        if "config" not in data.files:
            raise ValueError(f"{where} is not a fastfc model file (it has no config)")
        cfg = json.loads(str(data["config"]))
        if isinstance(cfg, dict) and cfg.get("format") == "fastfc-frozen-1":
            from fastfc.model.frozen import load_frozen
            return load_frozen(data, cfg)
        fmt = cfg.get("format") if isinstance(cfg, dict) else None
        if isinstance(fmt, str) and fmt.startswith(("fastfc-sequential-", "fastfc-frozen-")) \
                and fmt not in (FORMAT, "fastfc-frozen-1"):
            raise ValueError(f"{where} is in format {fmt!r}, written by a newer fastfc; "
                             f"fastfc {fastfc_version()} reads {FORMAT!r} and "
                             f"'fastfc-frozen-1': upgrade fastfc to load it")
        if fmt != FORMAT:
            raise ValueError(f"{where} is not a fastfc model file")
        layers, p = [], 0
        for spec in cfg["layers"]:
            cls = layers_mod.LAYERS.get(spec["class"])
            if cls is None:
                raise ValueError(f"unknown layer class {spec['class']!r} in {where}")
            conf = dict(spec["config"])
            init = conf.pop("init", None) if cls is layers_mod.Dense else None
            layer = cls(**conf)   # the weights come from the file: no init to run, or warn
            if init is not None:   # the saved one, for the config and init_params
                layer.init, layer._init_fn = init, initializers.get(init)
            layer.params = {}
            for name in layer.param_shapes():
                layer.params[name], p = data[f"p{p}"], p + 1
            layers.append(layer)
        training = json.loads(str(data["training"])) if "training" in data.files else None
        spec = training and training["optimizer"]
        if optimizer is None and spec:   # the saved one, where it stopped
            optimizer = optim_mod.OPTIMIZERS[spec["name"]].from_config(spec["config"])
            optimizer.t, optimizer.lr = spec["t"], spec["lr"]
            if spec["state"]:
                optimizer.state = tuple(data[f"opt{i}"].copy() for i in range(spec["state"]))
        elif optimizer is None and training:
            warnings.warn(f"{where} holds no optimizer (save could not keep it): the model "
                          f"trains on with a new Adam(); pass optimizer= to load()",
                          stacklevel=2)
        loss = losses_mod.get(cfg["loss"])
        try:
            check_last_layer(layers, loss)
        except ValueError as e:   # written before the check: the weights stay reachable
            warnings.warn(f"{where}: {e}. Loaded as saved.", stacklevel=2)
        model = Sequential(layers, loss="mse", optimizer=optimizer, seed=cfg["seed"],
                           input_shape=tuple(cfg["input_shape"]), dtype=cfg["dtype"])
        model.loss = loss
        if training:
            resume(model, training)
        for i, layer in enumerate(model.layers):
            if isinstance(layer, layers_mod.BatchNorm):
                layer.running_mean[...] = data[f"bn{i}_mean"]
                layer.running_var[...] = data[f"bn{i}_var"]
    return model

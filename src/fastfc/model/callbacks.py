"""Callbacks: what fit() does besides stepping, each a small class behind one `Callback`
base (Keras's hooks), run in order by a `CallbackList`.

`History` records the epoch metrics, `EarlyStopping` stops and restores the best weights,
`ProgbarLogger` draws the progress (``fit(verbose=)``), `ModelCheckpoint` saves the model,
`NonFiniteGuard` refuses an update from NaN/Inf gradients (``fit(on_nonfinite=)``). A user's
own callback subclasses `Callback` and overrides the hooks it needs.
"""
import math
import os
import sys
import time
import warnings
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from fastfc import _core
from fastfc._checks import flag, integer, non_negative
from fastfc.model import params

Logs = Optional[Dict[str, Any]]
HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
         "on_train_batch_begin", "on_train_batch_gradients", "on_train_batch_end")


class Callback:
    """Base class: every hook does nothing. fit() sets ``model`` and ``params``
    (``epochs``, ``batch_size``, ``samples``, ``steps`` per epoch, ``initial_epoch``).

    ``epoch`` is the model's epoch number (0-based, counted over all fit calls); ``batch``
    the batch's index in its epoch. Epoch-end logs hold ``loss``, ``accuracy`` (classifiers)
    and ``val_loss``, ``val_accuracy`` (with validation data); batch-end logs the running
    ``loss`` and ``accuracy`` of the epoch so far and ``size``, the samples seen.
    To stop training, set ``self.model.stop_training = True``: in ``on_train_batch_end``
    the epoch ends after that batch (its logs over the batches run), as in Keras.

    Examples
    --------
    >>> import fastfc
    >>> class PrintLoss(fastfc.callbacks.Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(epoch, round(logs["loss"], 3))
    """
    model: Any = None
    params: Dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: Dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: Logs = None) -> None:
        """Before the first epoch."""

    def on_train_end(self, logs: Logs = None) -> None:
        """After the last epoch (not when an error stops fit)."""

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        """Before the first batch of `epoch`."""

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """After `epoch` and its validation; `logs` holds its metrics."""

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Before the forward pass of `batch`."""

    def on_train_batch_gradients(self, batch: int, logs: Logs = None) -> Optional[bool]:
        """After the backward pass of `batch` (the gradients are in
        ``self.model._dtheta``), before the optimizer's update: return False to skip the
        update. ``logs["loss"]`` is the batch's loss."""

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        """After the update of `batch`."""


class CallbackList:
    """Calls each hook of its callbacks in order; a hook nobody overrides costs nothing.

    Parameters
    ----------
    callbacks : iterable of Callback
        Called in this order.
    model : Sequential, optional
        Given to each callback's ``set_model``.
    params : dict, optional
        Given (copied) to each callback's ``set_params``: fit() passes ``epochs``,
        ``batch_size``, ``samples``, ``steps`` and ``initial_epoch``.
    """

    def __init__(self, callbacks: Iterable[Callback], model: Any = None,
                 params: Optional[Dict[str, Any]] = None) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be fastfc.callbacks.Callback instances, got "
                                f"{cb!r}")
            cb.set_model(model)
            cb.set_params(dict(params or {}))
        self._hooks = {hook: [getattr(cb, hook) for cb in self.callbacks
                              if getattr(type(cb), hook) is not getattr(Callback, hook)]
                       for hook in HOOKS}

    def on_train_begin(self, logs: Logs = None) -> None:
        for hook in self._hooks["on_train_begin"]:
            hook(logs)

    def on_train_end(self, logs: Logs = None) -> None:
        for hook in self._hooks["on_train_end"]:
            hook(logs)

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        for hook in self._hooks["on_epoch_begin"]:
            hook(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        for hook in self._hooks["on_epoch_end"]:
            hook(epoch, logs)

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        for hook in self._hooks["on_train_batch_begin"]:
            hook(batch, logs)

    def on_train_batch_gradients(self, batch: int, logs: Logs = None) -> bool:
        """Whether to apply the update: no callback returned False."""
        apply = True
        for hook in self._hooks["on_train_batch_gradients"]:
            apply = hook(batch, logs) is not False and apply
        return apply

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        for hook in self._hooks["on_train_batch_end"]:
            hook(batch, logs)

    def close(self) -> None:
        """Release what callbacks hold open (a progress bar) when fit stops on an error."""
        for cb in self.callbacks:
            if hasattr(cb, "close"):
                cb.close()


class History(Callback):
    """Per-epoch metrics of fit(): ``history.history["loss"]``, ``["val_accuracy"]``...
    ``history.epoch`` numbers the epochs of this call from the model's first (0-based,
    as Keras): a second fit of 3 epochs after one of 2 has epochs [2, 3, 4].
    ``stopped_epoch`` is the model's epoch count when fit returned (5 there)."""

    def __init__(self) -> None:
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []
        self.epochs = 0

    def append(self, epoch: Optional[int] = None, **metrics: float) -> None:
        """Record one epoch's metrics (None values are left out)."""
        for k, v in metrics.items():
            if v is not None:
                self.history.setdefault(k, []).append(float(v))
        self.epoch.append(self.epochs if epoch is None else int(epoch))
        self.epochs += 1

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self.append(epoch, **(logs or {}))

    def on_train_end(self, logs: Logs = None) -> None:
        self.stopped_epoch = self.model.epochs_done

    def __getitem__(self, key: str) -> List[float]:
        return self.history[key]

    def plot(self, path: Union[str, "os.PathLike[str]"]) -> Union[str, "os.PathLike[str]"]:
        """Save the training/validation loss and accuracy curves to `path` (matplotlib)."""
        try:   # a Figure of its own: pyplot's backend and figures stay the user's
            from matplotlib.figure import Figure
        except ImportError as e:
            raise ImportError("History.plot needs matplotlib: pip install matplotlib") from e
        if not self.epoch:
            raise ValueError("History.plot: there is nothing to plot (fit ran 0 epochs)")
        metrics = [m for m in ("loss", "accuracy") if m in self.history]
        fig = Figure(figsize=(5 * len(metrics), 3.5))
        axes = fig.subplots(1, len(metrics), squeeze=False)
        for ax, m in zip(axes[0], metrics):
            for key in (m, "val_" + m):
                if key in self.history:
                    ax.plot([e + 1 for e in self.epoch], self.history[key], label=key)
            ax.set_xlabel("epoch")
            ax.set_title(m)
            ax.legend()
        fig.tight_layout()
        fig.savefig(path)
        return path


def _improves(monitor: Optional[str], mode: str, logs: Logs, best: Optional[float],
              delta: float = 0.0) -> Tuple[bool, float]:
    """(whether the watched metric betters `best` by more than `delta`, its value): the
    metric is `monitor` (by default val_loss, else loss); higher is better when `mode` is
    "max", or "auto" and the metric is an accuracy (as in Keras)."""
    logs = logs or {}
    key = monitor or ("val_loss" if "val_loss" in logs else "loss")
    if logs.get(key) is None:
        raise ValueError(f"the monitored metric {key!r} is not among the epoch's metrics "
                         f"{sorted(k for k, v in logs.items() if v is not None)}")
    value = logs[key]
    up = mode == "max" or mode == "auto" and key.endswith(("accuracy", "acc"))
    fresh = best is None or best == math.inf   # inf: no best yet, in a pickle of 0.1 ones
    better = fresh or (value > best + delta if up else value < best - delta)
    return better and value == value, value   # a NaN epoch is never the best


def _monitor(monitor: Optional[str], mode: str) -> Tuple[Optional[str], str]:
    if monitor is not None and not isinstance(monitor, str):
        raise TypeError(f"monitor must be the name of an epoch metric (a str) or None, got "
                        f"{monitor!r}")
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return monitor, mode


class EarlyStopping(Callback):
    """Stop after `patience` epochs without a better monitored metric, and restore the
    weights and BatchNorm running statistics of the best epoch.

    Parameters
    ----------
    patience : int >= 0
        Epochs without improvement before stopping.
    monitor : str, optional
        An epoch metric; by default ``val_loss`` with validation data, else ``loss``.
    min_delta : float >= 0
        An improvement must better the metric by more than this.
    restore_best_weights : bool, default True
        At the end of training, put back the best epoch's weights.
    mode : {"auto", "min", "max"}, default "auto"
        Whether the metric improves by going down or up; "auto": up for accuracies
        (names ending in "accuracy" or "acc"), down for the others, as in Keras.

    Examples
    --------
    >>> import fastfc
    >>> stop = fastfc.callbacks.EarlyStopping(patience=3)
    """

    mode = "auto"   # for instances pickled before it existed

    def __init__(self, patience: int = 0, monitor: Optional[str] = None,
                 min_delta: float = 0.0, restore_best_weights: bool = True,
                 mode: str = "auto"):
        self.patience = integer(patience, "patience", 0)
        self.monitor, self.mode = _monitor(monitor, mode)
        self.min_delta = non_negative(min_delta, "min_delta")
        self.restore_best_weights = flag(restore_best_weights, "restore_best_weights")

    def on_train_begin(self, logs: Logs = None) -> None:
        self.best: Optional[float] = None
        self.wait = 0
        self.best_state: Optional[params.Snapshot] = None

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        better, value = _improves(self.monitor, self.mode, logs, self.best, self.min_delta)
        if better:
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_state = params.snapshot(self.model.layers, self.model._theta)
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs: Logs = None) -> None:
        if self.best_state is not None:
            params.restore(self.model.layers, self.model._theta, self.best_state)


class ModelCheckpoint(Callback):
    """``model.save(filepath)`` after each epoch, or only when the monitored metric is the
    best so far (`save_best_only`). `filepath` may hold ``{epoch}`` (1-based) and the
    epoch's metrics, formatted as ``str.format`` does: ``"ckpt-{epoch:03d}.npz"``.

    Parameters
    ----------
    filepath : str or os.PathLike
        Where to save (a template, see above).
    monitor : str, optional
        The metric `save_best_only` watches; default ``val_loss`` when the epoch has one,
        else ``loss``.
    save_best_only : bool
        Save only after an epoch whose monitored metric is better than every earlier one.
    mode : {"auto", "min", "max"}, default "auto"
        As in EarlyStopping: "auto" takes accuracies as better when higher.

    Examples
    --------
    >>> import fastfc
    >>> ckpt = fastfc.callbacks.ModelCheckpoint("best.npz", save_best_only=True)
    """

    mode = "auto"   # for instances pickled before it existed

    def __init__(self, filepath: Union[str, "os.PathLike[str]"], monitor: Optional[str] = None,
                 save_best_only: bool = False, mode: str = "auto") -> None:
        self.filepath = os.fspath(filepath)
        self.monitor, self.mode = _monitor(monitor, mode)
        self.save_best_only = flag(save_best_only, "save_best_only")
        self.best: Optional[float] = None

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if self.save_best_only:
            better, value = _improves(self.monitor, self.mode, logs, self.best)
            if not better:
                return
            self.best = value
        fields = {"epoch": epoch + 1, **(logs or {})}
        try:
            path = self.filepath.format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r} does not format "
                             f"with the epoch's fields {sorted(fields)} ({e!r})") from None
        self.model.save(path)


class NonFiniteGuard(Callback):
    """Checks the batch's loss and every gradient for NaN and Inf before the update: in the
    fused C step's call as its backward ends (a model of Dense, Dropout and activations),
    else one C pass over the gradient buffer.

    Parameters
    ----------
    mode : {"raise", "warn"}
        "raise": a FloatingPointError naming the epoch, the batch and the first layer whose
        gradients are not finite; "warn": a RuntimeWarning, and the update is skipped.
        Either way the model keeps its last finite weights (and BatchNorm statistics).
    """

    def __init__(self, mode: str = "raise") -> None:
        if mode not in ("raise", "warn"):
            raise ValueError(f"NonFiniteGuard: mode must be 'raise' or 'warn', got {mode!r}")
        self.mode = mode
        self.epoch = 0
        self._stats: list = []

    def on_train_begin(self, logs: Logs = None) -> None:
        self._batchnorm = bool(params.batchnorms(self.model.layers))
        self.model._check_finite = True   # the fused C step checks as it ends

    def close(self) -> None:
        """At the end of fit, however it ends: the fused step stops checking."""
        self.model._check_finite = False

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        if self._batchnorm:   # a training forward moves them: kept to put back
            self._stats = params.batchnorm_stats(self.model.layers)

    def on_train_batch_gradients(self, batch: int, logs: Logs = None) -> bool:
        loss = (logs or {})["loss"]
        finite = self.model._grads_finite   # checked by the fused C step, or -1
        if finite < 0:
            finite = _core._all_finite(self.model._dtheta)
        if finite and math.isfinite(loss):
            return True
        params.restore_batchnorm_stats(self.model.layers, self._stats)
        bad = params.first_nonfinite(self.model.layers)
        what = (f"the loss is {loss}" if bad is None else
                f"the gradient of {bad[1]!r} of {self.model.layers[bad[0]].describe()} at "
                f"position {bad[0]} (the first such layer) holds NaN or Inf"
                + ("" if math.isfinite(loss) else f", and the loss is {loss}"))
        where = f"fit: epoch {self.epoch}, batch {batch}: {what}"
        if self.mode == "raise":
            raise FloatingPointError(f"{where}; the update was not applied (fit(on_nonfinite="
                                     f"'warn') skips such batches, 'ignore' applies them)")
        # at the caller of Sequential.fit (trainer.fit, _epoch and CallbackList between)
        warnings.warn(f"{where}; the batch is skipped, its update not applied",
                      RuntimeWarning, stacklevel=6)
        return False


def _metrics_text(logs: Dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in logs.items()
                    if v is not None and k not in ("size",))


def interactive() -> bool:
    """Whether progress is shown by default (``verbose="auto"``): stdout is a terminal,
    or a Jupyter kernel runs (its stdout is a pipe, but tqdm draws a widget)."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return bool(sys.stdout.isatty())
    except (AttributeError, ValueError):   # None, or closed
        return False


class ProgbarLogger(Callback):
    """Progress of fit(), as Keras draws it. ``verbose=1``: a bar per epoch with the
    running loss (and accuracy) and the time left, drawn with ``tqdm.auto`` when tqdm is
    installed (a widget in notebooks), a plain line otherwise; ``verbose=2``: one line per
    epoch. Written to ``sys.stdout``; at most 10 redraws a second.

    Parameters
    ----------
    verbose : {1, 2}
        1 a progress bar per epoch, 2 one line per epoch.
    """
    interval = 0.1

    def __init__(self, verbose: int = 1) -> None:
        if verbose not in (1, 2):
            raise ValueError(f"ProgbarLogger: verbose must be 1 or 2, got {verbose!r}")
        self.verbose = verbose
        self._bar = None

    def _title(self, epoch):
        done = epoch - self.params.get("initial_epoch", 0)
        return f"epoch {done + 1}/{self.params.get('epochs', '?')}"

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._t0 = self._shown = time.perf_counter()
        self._title_text = self._title(epoch)
        if self.verbose == 1:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                self._bar = None
            else:
                self._bar = tqdm(total=self.params.get("samples"), desc=self._title_text,
                                 unit="sample", file=sys.stdout, leave=True)
            self._done = 0

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        if self.verbose != 1 or logs is None:
            return
        now = time.perf_counter()
        done, self._done = self._done, logs["size"]
        if self._bar is not None:
            self._bar.update(self._done - done)
            if now - self._shown >= self.interval:
                self._shown = now
                self._bar.set_postfix_str(_metrics_text(logs), refresh=False)
        elif now - self._shown >= self.interval or logs["size"] == self.params.get("samples"):
            self._shown = now
            self._line(logs, now - self._t0, final=False)

    def _line(self, logs, elapsed, final):
        n, done = self.params.get("samples") or 1, logs.get("size", 0)
        fill = int(24 * done / n)
        when = f"{elapsed:.1f}s" if final else f"ETA {elapsed / max(done, 1) * (n - done):.1f}s"
        sys.stdout.write(f"\r{self._title_text} [{'=' * fill}{'.' * (24 - fill)}] {done}/{n} "
                         f"{_metrics_text(logs)} {when}" + ("\n" if final else ""))
        sys.stdout.flush()

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        logs = logs or {}
        elapsed = time.perf_counter() - self._t0
        if self.verbose == 2:
            sys.stdout.write(f"{self._title_text} - {elapsed:.1f}s - {_metrics_text(logs)}\n")
            sys.stdout.flush()
        elif self._bar is not None:
            self._bar.set_postfix_str(_metrics_text(logs), refresh=False)
            self.close()
        else:
            self._line({**logs, "size": self._done}, elapsed, final=True)   # a stop: fewer

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "NonFiniteGuard", "ProgbarLogger"]

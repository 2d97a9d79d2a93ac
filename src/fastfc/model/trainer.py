"""The fit loop: the validation split, shuffling, epochs and batches, and the callbacks.

A step is the model's ``_gradients`` (forward, loss and backward into the gradient buffer)
then, unless a callback refuses it (the non-finite guard), ``_apply_gradients``. Whatever
stops fit (an error in a step or in a callback, Ctrl-C) leaves the model at its last
finished step: a SIGINT that arrives during a step is raised once the step is done.
"""
import signal
import threading
from typing import Any, Iterable, List, Optional, Tuple, Union

import numpy as np

from fastfc import layers as layers_mod
from fastfc._checks import flag, integer, real
from fastfc.model import callbacks as callbacks_mod, params
from fastfc.model.inputs import as_2d_float

ON_NONFINITE = ("raise", "warn", "ignore")


def fit(model: Any, X, y, *, epochs: int = 10, batch_size: int = 32,
        validation_data: Optional[Tuple[Any, Any]] = None, validation_split: float = 0.0,
        shuffle: bool = True, early_stopping: Optional[int] = None,
        verbose: Union[int, str] = "auto",
        callbacks: Optional[Iterable[callbacks_mod.Callback]] = None,
        on_nonfinite: str = "raise") -> callbacks_mod.History:
    """Train `model` (a Sequential); see ``Sequential.fit``."""
    X = as_2d_float(X, "X", model.dtype, model.input_shape)
    y = model.loss.check_targets(y, model.n_outputs, X.shape[0])
    batch_size, epochs = integer(batch_size, "batch_size", 1), integer(epochs, "epochs", 0)
    verbose, shuffle = _verbosity(verbose), flag(shuffle, "shuffle")
    if on_nonfinite not in ON_NONFINITE:
        raise ValueError(f"on_nonfinite must be one of {', '.join(map(repr, ON_NONFINITE))}, "
                         f"got {on_nonfinite!r}")
    extra = []
    if early_stopping is not None:
        extra.append(callbacks_mod.EarlyStopping(integer(early_stopping, "early_stopping", 0)))
    X, y, validation = _split_validation(model, X, y, validation_data, validation_split)
    if epochs:
        _check_batch_norm(model, X.shape[0], batch_size)
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of Callback instances, got "
                        f"{type(callbacks).__name__}")
    history = callbacks_mod.History()
    chain: List[callbacks_mod.Callback] = []
    if on_nonfinite != "ignore":
        chain.append(callbacks_mod.NonFiniteGuard(on_nonfinite))
    chain += [history, *(callbacks or ()), *extra]
    if verbose:
        chain.append(callbacks_mod.ProgbarLogger(verbose))
    n = X.shape[0]
    run = callbacks_mod.CallbackList(chain, model, {
        "epochs": epochs, "batch_size": batch_size, "samples": n,
        "steps": -(-n // batch_size), "initial_epoch": model.epochs_done})
    model.stop_training = False
    undo = _UndoUnfinished(model)
    with _InterruptAfterStep() as interrupt:
        try:
            run.on_train_begin()
            for _ in range(epochs):
                _epoch(model, X, y, validation, batch_size, shuffle, run, interrupt, undo)
                if model.stop_training:
                    break
            run.on_train_end()
        except BaseException:
            undo()
            raise
        finally:
            run.close()
    return history


class _UndoUnfinished:
    """Puts back what an unfinished step changed when fit fails or is interrupted: the
    BatchNorm statistics and Dropout counters (a training forward moves them) and, before
    an epoch's first step is done, the epoch count, the shuffle generator and the learning
    rate (so that going on trains as a fit that stopped at the last finished step)."""

    def __init__(self, model):
        self.model = model
        self.epoch = self.step = None

    def epoch_begins(self):
        m = self.model
        self.epoch = (m.epochs_done, m._shuffle_rng.bit_generator.state, m.optimizer.lr)

    def step_begins(self):
        self.step = params.forward_state(self.model.layers)

    def step_done(self):
        self.step = self.epoch = None

    def __call__(self):
        m = self.model
        if self.step is not None:
            params.restore_forward_state(m.layers, self.step)
        if self.epoch is not None:
            m.epochs_done, m._shuffle_rng.bit_generator.state, m.optimizer.lr = self.epoch
        self.step_done()


def _epoch(model, X, y, validation, batch_size, shuffle, run, interrupt, undo):
    """One pass over the data in batches, then the validation and the epoch's logs."""
    undo.epoch_begins()
    model.optimizer.start_epoch(model.epochs_done)
    epoch = model.epochs_done
    model.epochs_done += 1
    run.on_epoch_begin(epoch)
    n = X.shape[0]
    if shuffle:
        order = model._shuffle_rng.permutation(n)
        X, y = X[order], y[order]
    total, correct, stop = 0.0, 0, 0
    classifier = model.loss.classifier
    for batch, start in enumerate(range(0, n, batch_size)):
        stop = min(start + batch_size, n)
        undo.step_begins()
        run.on_train_batch_begin(batch)
        interrupt.in_step = True
        with model._step_threads.step(stop - start):
            loss, right = model._gradients(X[start:stop], y[start:stop], True)
            if run.on_train_batch_gradients(batch, {"loss": loss}):
                model._apply_gradients()
        undo.step_done()
        interrupt.step_done()
        # running averages over the epoch's batches (before each step), as Keras reports
        total += loss * (stop - start)
        correct += right
        run.on_train_batch_end(batch, {"loss": total / stop,
                                       "accuracy": correct / stop if classifier else None,
                                       "size": stop})
        if model.stop_training:   # set by a callback: the epoch ends here, as in Keras
            break
    logs = {"loss": total / stop, "accuracy": correct / stop if classifier else None}
    if validation is not None:
        v = model.evaluate(*validation)
        logs.update(val_loss=v["loss"], val_accuracy=v["accuracy"])
    run.on_epoch_end(epoch, logs)
    interrupt.step_done()


def _verbosity(verbose) -> int:
    """0, 1 or 2; "auto" is 1 when stdout is a terminal or a notebook's, else 0."""
    if isinstance(verbose, str) and verbose == "auto":
        return 1 if callbacks_mod.interactive() else 0
    if isinstance(verbose, (bool, np.bool_)) or (isinstance(verbose, (int, np.integer))
                                                 and verbose in (0, 1, 2)):
        return int(verbose)
    raise ValueError(f"verbose must be 0 (silent), 1 (a progress bar), 2 (a line per "
                     f"epoch) or 'auto', got {verbose!r}")


def _split_validation(model, X, y, validation_data, validation_split):
    """(X, y, (X_val, y_val) or None): the last `validation_split` of the samples, or the
    pair given, checked."""
    if not 0 <= real(validation_split, "validation_split") < 1:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    if validation_data is None and validation_split:
        n = X.shape[0]
        cut = int(round(n * (1 - validation_split)))
        if not 0 < cut < n:
            raise ValueError(f"validation_split={validation_split} of {n} samples leaves "
                             f"{cut} for training and {n - cut} for validation; both "
                             f"need at least one")
        return X[:cut], y[:cut], (X[cut:], y[cut:])
    if validation_data is None:
        return X, y, None
    if not isinstance(validation_data, (tuple, list)):
        raise TypeError(f"validation_data must be a pair (X_val, y_val), got "
                        f"{type(validation_data).__name__}")
    if len(validation_data) != 2:
        raise ValueError(f"validation_data must be a pair (X_val, y_val), got "
                         f"{len(validation_data)} items")
    Xv = as_2d_float(validation_data[0], "validation X", model.dtype, model.input_shape)
    try:
        yv = model.loss.check_targets(validation_data[1], model.n_outputs, Xv.shape[0])
    except (TypeError, ValueError) as e:
        raise type(e)(f"validation_data: {e}") from None
    return X, y, (Xv, yv)


def _check_batch_norm(model, n, batch_size):
    """A ValueError before training when a batch would give a BatchNorm one value per
    feature (no batch variance)."""
    smallest = n % batch_size or min(n, batch_size)
    shapes = [model.input_shape] + model.shapes
    for layer, shape in zip(model.layers, shapes):
        if isinstance(layer, layers_mod.BatchNorm) and smallest * np.prod(shape[:-1]) < 2:
            fix = "train on more samples" if n < 2 else "choose another batch_size"
            raise ValueError(f"fit: {n} samples in batches of {batch_size} leave a batch "
                             f"of {smallest}, and {layer.describe()} needs two values per "
                             f"feature in training: {fix}")


class _InterruptAfterStep:
    """While fit runs, a SIGINT during a step (between the first forward and the end of
    the update, some of which is NumPy code) is raised as KeyboardInterrupt once the step
    is done; at any other time at once. Only where Python's own handler is installed
    (the main thread; not under a debugger or a host that handles SIGINT itself)."""

    def __init__(self):
        self.in_step = self.pending = False
        self._installed = None

    def _handler(self, signum, frame):
        if not self.in_step:
            raise KeyboardInterrupt
        self.pending = True

    def step_done(self):
        self.in_step = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._installed = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._installed is not None:
            signal.signal(signal.SIGINT, self._installed)
        self.in_step = False

"""Sequential: a list of layers, a loss and an optimizer, trained with fit().

A thin composition: the layers; one flat parameter buffer and one gradient buffer that the
layers' arrays are views into (params.py); the C plans of the layers (plan.py); the fit
loop with its callbacks (trainer.py, callbacks.py); save/load (io.py). Here: building the
model, one step, predict/evaluate, the summary and the config.

A Sequential pickles and deep-copies: the copy trains on exactly as the original would
(optimizer state, step counts, shuffling and dropout streams included), independently.
"""
import threading
import weakref
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from fastfc import layers as layers_mod
from fastfc import losses as losses_mod
from fastfc import optim as optim_mod
from fastfc._checks import integer
from fastfc._state import Plain
from fastfc.model import frozen, io, params, trainer
from fastfc.model.callbacks import Callback, History
from fastfc.model.frozen import FrozenModel
from fastfc.model.inputs import as_2d_float
from fastfc.model.plan import InferencePlans, PlanCache, fused_step, inference_specs
from fastfc.model.step_threads import StepThreads
from fastfc.model.subnormals import flushed_subnormals


def applied_twice(layer: Any, loss: Any) -> Optional[str]:
    """The function ("softmax" or "sigmoid") that `layer` applies and `loss` applies to
    the logits itself again, or None."""
    if isinstance(layer, layers_mod.Softmax) and isinstance(loss, losses_mod.SoftmaxCrossEntropy):
        return "softmax"
    if getattr(layer, "activation", None) == "sigmoid" and \
            isinstance(loss, losses_mod.SigmoidBinaryCrossEntropy):
        return "sigmoid"
    return None


def check_last_layer(layers: List[layers_mod.Layer], loss: losses_mod.Loss) -> None:
    """Refuses a last layer (Dropout aside) that applies the function the loss applies to
    the logits itself: training would see it twice, predict_proba would apply it twice."""
    last = next((l for l in reversed(layers) if not isinstance(l, layers_mod.Dropout)), None)
    what = applied_twice(last, loss)
    if what:
        raise ValueError(f"the last layer, {last.describe()}, applies the {what} that the loss "
                         f"{type(loss).__name__} applies to the logits itself: drop it (the "
                         f"loss's predict_proba gives the probabilities), or use another loss")


def _duplicates(layers):
    """A ValueError when one layer object sits at several positions: layers keep the
    state of their last call (inputs, masks) for backward, so a shared one breaks it."""
    where: Dict[int, List[int]] = {}
    for i, layer in enumerate(layers):
        where.setdefault(id(layer), []).append(i)
    for positions in where.values():
        if len(positions) > 1:
            raise ValueError(f"the same {layers[positions[0]]!r} object is at positions "
                             f"{positions}; create one layer instance per position")


def _check_free(layers, optimizer):
    """A ValueError when another live model owns one of the layers or the optimizer:
    layers are views into their model's parameter buffer and an optimizer's state fits
    its model's, so sharing would train buffers nothing reads."""
    for i, layer in enumerate(layers):
        if _owner(layer) is not None:
            raise ValueError(f"{layer.describe()} at position {i} already belongs to another "
                             f"Sequential: pass copy.deepcopy(layer) or a new layer")
    if _owner(optimizer) is not None:
        raise ValueError(f"the optimizer {optimizer!r} already belongs to another Sequential "
                         f"(its state fits that model's parameters): pass a new one")


def _owner(obj):
    ref = getattr(obj, "_owner", None)
    return ref and ref()


def _cast_running_stats(bn, dtype):
    """A BatchNorm's running statistics in the model dtype (mean 0, var 1 when missing)."""
    n = bn.num_features
    bn.running_mean = np.zeros(n, dtype) if bn.running_mean is None else \
        np.asarray(bn.running_mean, dtype)
    bn.running_var = np.ones(n, dtype) if bn.running_var is None else \
        np.asarray(bn.running_var, dtype)


def count_correct(loss: losses_mod.Loss, z: np.ndarray, y: np.ndarray) -> int:
    """Number of rows of outputs z that `loss` predicts as y (0 for regression losses)."""
    if not loss.classifier:
        return 0
    if y.ndim == 1 and z.shape[1] > 1:   # the common case, in two NumPy calls
        return int(np.count_nonzero(z.argmax(axis=1) == y))
    if y.ndim != 1 and not isinstance(loss, losses_mod.SigmoidBinaryCrossEntropy):
        y = np.argmax(y, axis=1)
    # rows of both as (n, k): a single-output BCE predicts (n,) against y of (n, 1)
    n = z.shape[0]
    got = loss.predict(z).reshape(n, -1)
    return int(np.count_nonzero(np.all(got == y.reshape(n, -1), axis=1)))


class Sequential(Plain):
    """A stack of layers trained with a loss and an optimizer.

    Parameters
    ----------
    layers : list of Layer
        One instance per position (a layer keeps its last call's state for backward) and
        per model (its weights are views into its model's parameter buffer; pass
        ``copy.deepcopy(layer)`` to start a model from another's layer).
        Layers that already have parameters (``Dense.from_conv_kernel``, set by hand) keep
        them; the others are initialized from `seed`.
    loss : str or Loss
        A name in ``fastfc.losses.LOSSES`` (e.g. ``"softmax_cross_entropy"``).
    optimizer : str or Optimizer, default Adam()
        One per model (its state fits the model's parameters).
    seed : int >= 0
        Seeds the initialization, the shuffling and the dropout masks: the same seed gives
        the identical training run.
    input_shape : tuple, optional
        Per-sample input shape; inferred when the first layer is a Dense.
    dtype : float32 or float64

    Raises
    ------
    ValueError
        Among others: a last layer that applies the softmax (sigmoid) that the loss
        ``softmax_cross_entropy`` (``binary_cross_entropy``) applies to the logits itself.

    Examples
    --------
    >>> import numpy as np, fastfc
    >>> model = fastfc.Sequential([fastfc.Dense(4, 8, activation="relu"), fastfc.Dense(8, 3)],
    ...                           loss="softmax_cross_entropy", seed=0)
    >>> x, y = np.random.rand(16, 4).astype(np.float32), np.arange(16) % 3
    >>> loss = model.train_on_batch(x, y)
    """
    # rebuilt from the layers by _link: the flat buffers (the layers' arrays travel),
    # the C plans (pointers into the buffers), the loss-gradient buffer
    _not_copied = ("_theta", "_dtheta", "_plans", "_infer", "_grad_out", "_check_finite",
                   "_grads_finite", "_lock", "_step_threads", "_backward_rows")
    # set by fit's non-finite guard: the fused backward checks the gradients in its C call
    # and leaves 1 (finite) or 0 in _grads_finite; -1: not checked there
    _check_finite = False
    _grads_finite = -1
    # rows of the last forward(training=True) whose activations the layers still hold
    _backward_rows = None

    def __init__(self, layers: Iterable[layers_mod.Layer],
                 loss: Union[str, losses_mod.Loss] = "softmax_cross_entropy",
                 optimizer: Union[str, optim_mod.Optimizer, None] = None, seed: int = 0,
                 input_shape: Optional[Sequence[int]] = None, dtype: Any = np.float32):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Sequential needs at least one layer")
        for layer in self.layers:
            if not isinstance(layer, layers_mod.Layer):
                raise TypeError(f"{layer!r} is not a fastfc layer")
        _duplicates(self.layers)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.loss = losses_mod.get(loss)
        check_last_layer(self.layers, self.loss)
        self.optimizer = optim_mod.get(optimizer if optimizer is not None else "adam")
        self.seed = integer(seed, "seed", 0)
        if input_shape is None and isinstance(self.layers[0], layers_mod.Dense):
            input_shape = (self.layers[0].in_features,)
        if input_shape is None:
            raise ValueError("input_shape is needed when the first layer is not a Dense")
        if not isinstance(input_shape, (tuple, list)):
            raise TypeError(f"input_shape must be a tuple of ints (per sample), got "
                            f"{input_shape!r}")
        self.input_shape = tuple(integer(s, "input_shape", 1) for s in input_shape)
        _check_free(self.layers, self.optimizer)
        self._build()   # and linked: a failed call owns nothing
        # fit() goes on where the last call stopped: the next shuffle, the next epoch of the
        # learning-rate schedule (two calls of one epoch train as one call of two)
        self._shuffle_rng = np.random.default_rng(self.seed + 1)
        self.epochs_done = 0
        self.stop_training = False

    def _build(self):
        """Shapes, initial parameters, dtypes and dropout seeds of the layers; all checked
        before any layer is changed (a failed model leaves its layers as they were)."""
        shape = self.input_shape
        self.shapes = []
        for i, layer in enumerate(self.layers):
            shape = tuple(layer.output_shape(shape))
            self.shapes.append(shape)
            if layer.params:   # weights set before (from_conv_kernel, by hand, load)
                got, want = {k: v.shape for k, v in layer.params.items()}, layer.param_shapes()
                if got != want:
                    raise ValueError(f"{layer.describe()} at position {i} has parameters of "
                                     f"shapes {got}, expected {want}")
        if len(shape) != 1:
            raise ValueError(f"the last layer must output vectors, got per-sample shape {shape}")
        self.n_outputs = shape[0]
        saved = [dict(layer.__dict__) for layer in self.layers]
        try:
            self._init_layers()
            self._link()
        except BaseException:   # an initializer or the link failed: the layers as they came
            for layer, state in zip(self.layers, saved):
                layer.__dict__.clear()
                layer.__dict__.update(state)
            raise

    def _init_layers(self):
        """The layers' parameters, dtypes, running statistics and dropout seeds."""
        rng = np.random.default_rng(self.seed)
        for i, layer in enumerate(self.layers):
            layer.dtype = self.dtype
            if not layer.params:
                layer.init_params(rng, self.dtype)
            else:
                layer.params = {k: layer.params[k] for k in layer.param_shapes()}   # saved order
            if isinstance(layer, layers_mod.BatchNorm):
                _cast_running_stats(layer, self.dtype)
            if isinstance(layer, layers_mod.Dropout):
                # mod 2**64, the C seed's range: any non-negative seed works
                layer.seed = (self.seed * 1_000_003 + i) % 2**64
                layer.calls = 0

    def _link(self):
        """The parameter buffers from the layers' arrays, an empty plan cache, and the
        layers and the optimizer marked as this model's (after building, unpickling or
        copying)."""
        self._theta, self._dtheta = params.link(self.layers, self.dtype)
        self._plans = PlanCache()
        self._step_threads = StepThreads()   # measured on this machine, not saved
        self._infer = None   # InferencePlans on first predict, False without a C path
        self._grad_out = None
        # the layers keep each forward's outputs in their own buffers: one pass at a time
        self._lock = threading.RLock()
        for i, layer in enumerate(self.layers):
            layer.needs_input_grad = i > 0   # nothing needs the gradient of the input
        for obj in self.layers + [self.optimizer]:
            obj._owner = weakref.ref(self)

    def __setstate__(self, state):
        super().__setstate__(state)
        self._link()

    def __deepcopy__(self, memo):
        new = super().__deepcopy__(memo)
        new._link()
        return new

    def __copy__(self):
        raise TypeError("copy.copy(model) would share the layers, whose weights are views "
                        "into one model's buffer: use copy.deepcopy(model)")

    # ------------------------------------------------------------------ fused C passes
    def _plan(self, batch: int):
        """The model's layers as one C plan for this batch size (cached), or None when a
        layer has no fused C path (BatchNorm, Softmax, GlobalAvgPool, N-d activations)."""
        return self._plans.get_plan(self.layers, self.input_shape, batch, self.dtype)

    def _fused_step(self, plan, x, y):
        """Forward, loss and backward in one or two calls into C; the loss and logits."""
        plan[0].check_finite = self._check_finite
        result = fused_step(plan, self.loss, x, y)
        self._grads_finite = plan[0].grads_finite
        return result

    # ------------------------------------------------------------------ core
    def parameters(self) -> List[np.ndarray]:
        """The parameter arrays (views into one flat buffer), in layer order."""
        return [v for layer in self.layers for v in layer.params.values()]

    def _forward(self, x, training=False):
        """The output of the last layer, which may be its buffer (the next call reuses it)."""
        self._backward_rows = x.shape[0] if training else None
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def forward(self, x, training: bool = False) -> np.ndarray:
        """The model's output for `x` (converted to the model dtype), a new array."""
        x = as_2d_float(x, "x", self.dtype, self.input_shape)
        with self._lock:
            return self._forward(x, training).copy()   # the caller's, not a layer's buffer

    __call__ = forward

    def backward(self, grad) -> Optional[np.ndarray]:
        """Backpropagate `grad`, the loss gradient of the output of the last forward
        (training=True), into every layer's grads. Returns the gradient of the model's
        input, or None when the first layer is a Dense (training does not need it)."""
        grad = as_2d_float(grad, "grad", self.dtype, self.shapes[-1])
        with self._lock:
            rows = self._backward_rows
            if rows is None:
                raise ValueError("backward needs the activations of a forward(x, training=True)"
                                 " first (fit, evaluate and forward(x) replace them)")
            if grad.shape[0] != rows:
                raise ValueError(f"grad has {grad.shape[0]} rows; the last forward(x, "
                                 f"training=True) had {rows}")
            return self._backward(grad)

    def _backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def _step(self, x, y, count_correct=False):
        """One training step: the gradients of the batch, then the optimizer's update."""
        with self._step_threads.step(x.shape[0]):
            loss, correct = self._gradients(x, y, count_correct)
            self._apply_gradients()
        return loss, correct

    def _apply_gradients(self):
        """The optimizer's update of the flat parameter buffer from the gradient buffer."""
        with flushed_subnormals(self.optimizer.flushes_subnormals(self.dtype)):
            self.optimizer.step(self._theta, self._dtheta)

    def _gradients(self, x, y, count_correct=False):
        """Forward, loss and backward of a batch into the gradient buffer (no update):
        the mean loss and, when asked, the number of rows predicted right."""
        # the layers' buffers (z among them) hold this batch until it is counted: a
        # predict in another thread would overwrite what backward reads
        with self._lock, flushed_subnormals():
            plan = self._plan(x.shape[0])
            if plan is not None:
                loss, z = self._fused_step(plan, x, y)
            else:
                self._grads_finite = -1
                z = self._forward(x, training=True)
                if self._grad_out is None or self._grad_out.shape != z.shape:
                    self._grad_out = np.empty(z.shape, self.dtype)
                loss = self.loss(z, y, self._grad_out)
                self._backward(self._grad_out)
            correct = self._correct(z, y) if count_correct else 0
            self._backward_rows = None   # the update follows: backward would mix old and new
        return loss, correct

    def _correct(self, z, y):
        """Number of rows of z predicting y right (0 for regression losses)."""
        return count_correct(self.loss, z, y)

    def train_on_batch(self, x, y) -> float:
        """One optimizer step on a batch; returns the loss before the step."""
        x = as_2d_float(x, "X", self.dtype, self.input_shape)
        y = self.loss.check_targets(y, self.n_outputs, x.shape[0])
        moved = params.forward_state(self.layers)
        try:
            return float(self._step(x, y)[0])
        except BaseException:   # the model as it was: a failed step moves nothing
            params.restore_forward_state(self.layers, moved)
            raise

    # ------------------------------------------------------------------ fit / evaluate
    def fit(self, X, y, epochs: int = 10, batch_size: int = 32,
            validation_data: Optional[Tuple[Any, Any]] = None, validation_split: float = 0.0,
            shuffle: bool = True, early_stopping: Optional[int] = None,
            verbose: Union[int, str] = "auto", callbacks: Optional[List[Callback]] = None,
            on_nonfinite: str = "raise") -> History:
        """Train; returns a History of per-epoch loss/accuracy (and validation metrics).

        Parameters
        ----------
        X, y : array-like
            Samples (with the model's per-sample shape) and targets for the loss.
        epochs, batch_size : int
        validation_data : (X_val, y_val), optional
            Evaluated after each epoch (``val_loss``, ``val_accuracy``).
        validation_split : float in [0, 1)
            Without validation_data: the last fraction of the samples, set aside.
        shuffle : bool
            A new order of the samples each epoch (from the model's seed).
        early_stopping : int, optional
            Shortcut for ``callbacks=[EarlyStopping(patience)]``: stop after `patience`
            epochs without a better validation loss (training loss without validation data)
            and restore the best weights and BatchNorm running statistics.
        verbose : 0, 1, 2 or "auto"
            0 silent, 1 a progress bar per epoch, 2 one line per epoch; "auto" (default)
            is 1 when stdout is a terminal or a Jupyter kernel's, else 0 (nothing is
            written to a file or a pipe unless asked).
        callbacks : list of Callback, optional
            Called at the begin and end of training, epochs and batches (see
            ``fastfc.callbacks``).
        on_nonfinite : {"raise", "warn", "ignore"}
            After each backward pass, before the update, the loss and the gradients are
            checked for NaN/Inf: "raise" stops with a FloatingPointError naming the epoch,
            the batch and the first layer whose gradients are not finite, "warn" warns and
            skips the batch; either way the model keeps its last finite weights. "ignore"
            applies the update unchecked. The update itself is not checked: one that
            overflows from finite gradients (an lr near the dtype's largest value) shows
            as a non-finite loss at the next batch.

        Returns
        -------
        History

        Notes
        -----
        A later call goes on where this one stopped (the next shuffles and epochs of the
        learning-rate schedule). Whatever stops fit (an error in a callback, Ctrl-C) leaves
        the model at its last finished step, and the error is raised. Steps compute with
        subnormal numbers flushed to zero (x86's FTZ and DAZ, as TensorFlow trains): such
        gradients are below any update's rounding and ~100x slower to compute with.
        """
        return trainer.fit(self, X, y, epochs=epochs, batch_size=batch_size,
                           validation_data=validation_data, validation_split=validation_split,
                           shuffle=shuffle, early_stopping=early_stopping, verbose=verbose,
                           callbacks=callbacks, on_nonfinite=on_nonfinite)

    def _outputs(self, X, batch_size: Optional[int]) -> np.ndarray:
        """The last layer's outputs for X in evaluation mode: one C call per block of
        rows for a Dense/Dropout/activation stack, layer by layer otherwise."""
        X = as_2d_float(X, "X", self.dtype, self.input_shape)
        if batch_size is not None:
            batch_size = integer(batch_size, "batch_size", 1)
        if self._infer is None:
            specs = inference_specs(self.layers, self.input_shape)
            self._infer = InferencePlans(specs, self.dtype) if specs else False
        if self._infer:
            return self._infer.run(X, batch_size)
        rows = batch_size or 1024
        with self._lock:
            return np.concatenate([self._forward(X[i:i + rows]).copy()
                                   for i in range(0, X.shape[0], rows)])

    def predict_proba(self, X, batch_size: Optional[int] = None) -> np.ndarray:
        """Class probabilities (the loss's output transform) of the samples in `X`, in
        blocks of `batch_size` rows (sized to the caches when None)."""
        return self.loss.proba(self._outputs(X, batch_size))

    def predict(self, X, batch_size: Optional[int] = None) -> np.ndarray:
        """Class labels for classification losses, outputs for regression (blocks of
        `batch_size` rows, sized to the caches when None)."""
        return self.loss.predict(self._outputs(X, batch_size))

    def freeze(self, dtype: Any = None) -> "FrozenModel":
        """The inference form of the model: Dropout dropped, BatchNorm folded into the
        Dense beside it, activations fused, weights packed once (``fastfc.pack``) in
        `dtype` ('float32', 'float64', 'bfloat16'; None keeps the model's). Its
        predict/predict_proba run a Dense/activation stack in one C call per block of rows.
        It does not follow later training of this model: freeze again."""
        return frozen.freeze(self, dtype)

    def evaluate(self, X, y, batch_size: int = 1024) -> Dict[str, Optional[float]]:
        """{"loss": mean loss, "accuracy": fraction correct (None for regression)}."""
        X = as_2d_float(X, "X", self.dtype, self.input_shape)
        y = self.loss.check_targets(y, self.n_outputs, X.shape[0])
        batch_size = integer(batch_size, "batch_size", 1)
        total, correct = 0.0, 0
        with self._lock:
            for i in range(0, X.shape[0], batch_size):
                z = self._forward(X[i:i + batch_size])
                yb = y[i:i + batch_size]
                total += self.loss(z, yb, np.empty(z.shape, self.dtype)) * z.shape[0]
                correct += self._correct(z, yb)
        n = X.shape[0]
        return {"loss": total / n, "accuracy": correct / n if self.loss.classifier else None}

    # ------------------------------------------------------------------ description
    def summary(self) -> str:
        """Layers, output shapes and parameter counts; printed and returned."""
        rows = [("layer", "output shape", "params")]
        for layer, shape in zip(self.layers, self.shapes):
            rows.append((layer.describe(), str((None,) + shape),
                         str(sum(v.size for v in layer.params.values()))))
        w = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{a:<{w[0]}}  {b:<{w[1]}}  {c:>{w[2]}}" for a, b, c in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.append(f"total parameters: {self._theta.size}")
        text = "\n".join(lines)
        print(text)
        return text

    def get_config(self) -> dict:
        """The architecture as JSON-able data (what save() writes beside the weights)."""
        # the exact class: a subclass may compute something else than the name it inherits
        loss = next((k for k, v in losses_mod.LOSSES.items() if type(self.loss) is v), None)
        if loss is None:
            raise TypeError(f"only models with a built-in loss ({', '.join(losses_mod.LOSSES)})"
                            f" can be saved, got {type(self.loss).__name__}")
        return {"format": io.FORMAT, "dtype": self.dtype.name, "seed": self.seed,
                "input_shape": list(self.input_shape), "loss": loss,
                "layers": [{"class": type(l).__name__, "config": l.get_config()}
                           for l in self.layers]}

    def save(self, path) -> None:
        """Weights as .npz arrays plus the architecture and the training state as JSON
        (nothing pickled): a loaded model predicts the same and trains on the same."""
        io.save(self, path)

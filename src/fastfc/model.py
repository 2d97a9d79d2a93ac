"""Sequential: a list of layers, a loss and an optimizer, trained with fit().

All parameters live in one flat buffer and all gradients in another (each layer's arrays
are views into them), so the optimizer step is one pass. A model of Dense, Dropout and
activation layers trains through a C plan of its layers over buffers allocated once per
batch size: forward, softmax cross-entropy and backward are one call into C, the
optimizer update another. Other models run layer by layer.
"""
import json
import os
import sys
import time
import warnings
import weakref

import numpy as np

from fastfc import _core, initializers
from fastfc import layers as layers_mod
from fastfc import losses as losses_mod
from fastfc import optim as optim_mod
from fastfc._checks import integer, real

# Activation layers the fused C passes run (folded into the Dense before them if it has none).
# (exact types: a subclass may compute something else than the activation it names)
_FUSED_ACTIVATIONS = (layers_mod.ReLU, layers_mod.LeakyReLU, layers_mod.Sigmoid, layers_mod.Tanh)


class History:
    """Per-epoch metrics of fit(): ``history.history["loss"]``, ``["val_accuracy"]``...
    ``history.epoch`` numbers the epochs of this call from the model's first (0-based,
    as Keras): a second fit of 3 epochs after one of 2 has epochs [2, 3, 4].
    ``stopped_epoch`` is the model's epoch count when fit returned (5 there)."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.epochs = 0

    def append(self, epoch=None, **metrics):
        for k, v in metrics.items():
            self.history.setdefault(k, []).append(float(v))
        self.epoch.append(self.epochs if epoch is None else int(epoch))
        self.epochs += 1

    def __getitem__(self, key):
        return self.history[key]

    def plot(self, path):
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


def _as_2d_float(X, name, dtype, n_features=None):
    given = X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {X.dtype}; expected a real numeric array")
    if X.dtype != dtype:
        with np.errstate(over="ignore"):   # values too large for dtype: reported below
            X = np.ascontiguousarray(X, dtype=dtype)
    else:
        X = np.ascontiguousarray(X)
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


def _cast_running_stats(bn, dtype):
    """A BatchNorm's running statistics in the model dtype (mean 0, var 1 when missing)."""
    n = bn.num_features
    bn.running_mean = np.zeros(n, dtype) if bn.running_mean is None else \
        np.asarray(bn.running_mean, dtype)
    bn.running_var = np.ones(n, dtype) if bn.running_var is None else \
        np.asarray(bn.running_var, dtype)


def _duplicates(layers):
    """A ValueError when one layer object sits at several positions: layers keep the
    state of their last call (inputs, masks) for backward, so a shared one breaks it."""
    where = {}
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


class Sequential:
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

    Examples
    --------
    >>> import numpy as np, fastfc
    >>> model = fastfc.Sequential([fastfc.Dense(4, 8, activation="relu"), fastfc.Dense(8, 3)],
    ...                           loss="softmax_cross_entropy", seed=0)
    >>> x, y = np.random.rand(16, 4).astype(np.float32), np.arange(16) % 3
    >>> loss = model.train_on_batch(x, y)
    """

    def __init__(self, layers, loss="softmax_cross_entropy", optimizer=None, seed=0,
                 input_shape=None, dtype=np.float32):
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
        self._build()
        for obj in self.layers + [self.optimizer]:   # once built: a failed call owns nothing
            obj._owner = weakref.ref(self)
        # fit() goes on where the last call stopped: the next shuffle, the next epoch of the
        # learning-rate schedule (two calls of one epoch train as one call of two)
        self._shuffle_rng = np.random.default_rng(self.seed + 1)
        self.epochs_done = 0

    def _build(self):
        rng = np.random.default_rng(self.seed)
        shape = self.input_shape
        self.shapes = []
        for i, layer in enumerate(self.layers):
            shape = tuple(layer.output_shape(shape))
            self.shapes.append(shape)
            layer.dtype = self.dtype
            if not layer.params:
                layer.init_params(rng, self.dtype)
            else:   # weights set before (from_conv_kernel, by hand, load)
                got, want = {k: v.shape for k, v in layer.params.items()}, layer.param_shapes()
                if got != want:
                    raise ValueError(f"{layer.describe()} at position {i} has parameters of "
                                     f"shapes {got}, expected {want}")
                layer.params = {k: layer.params[k] for k in want}   # saved in this order
            layer.needs_input_grad = i > 0   # nothing needs the gradient of the input
            if isinstance(layer, layers_mod.BatchNorm):
                _cast_running_stats(layer, self.dtype)
            if isinstance(layer, layers_mod.Dropout):
                # mod 2**64, the C seed's range: any non-negative seed works
                layer.seed = (self.seed * 1_000_003 + i) % 2**64
                layer.calls = 0
        if len(shape) != 1:
            raise ValueError(f"the last layer must output vectors, got per-sample shape {shape}")
        self.n_outputs = shape[0]
        # One flat buffer for all parameters and one for their gradients.
        sizes = [v.size for layer in self.layers for v in layer.params.values()]
        self._theta = np.empty(sum(sizes), self.dtype)
        self._dtheta = np.zeros(sum(sizes), self.dtype)
        off = 0
        for layer in self.layers:
            if not layer.params:
                continue
            params, layer.params, layer.grads = layer.params, {}, {}   # never the class dicts
            for name, value in params.items():
                view = self._theta[off:off + value.size].reshape(value.shape)
                view[...] = value
                layer.params[name] = view
                layer.grads[name] = self._dtheta[off:off + value.size].reshape(value.shape)
                off += value.size
        self._grad_out = None
        self._plans = {}

    # ------------------------------------------------------------------ fused C passes
    def _plan(self, batch):
        """The model's layers as one C plan for this batch size (cached), or None when a
        layer has no fused C path (BatchNorm, Softmax, GlobalAvgPool, N-d activations)."""
        if batch in self._plans:
            return self._plans[batch]
        specs, dropouts = [], []
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            if isinstance(layer, layers_mod.Flatten) and (i == 0 or len(shape) == 1):
                shape = layer.output_shape(shape)
                continue
            if len(shape) != 1:
                specs = None
                break
            if isinstance(layer, layers_mod.Dense):
                specs.append({"kind": "dense", "w": layer.params["W"], "gw": layer.grads["W"],
                              "b": layer.params.get("b"), "gb": layer.grads.get("b"),
                              "act": layer.activation, "slope": layer.negative_slope})
            elif isinstance(layer, layers_mod.Dropout):
                if layer.p:
                    dropouts.append((len(specs), layer))
                    specs.append({"kind": "dropout", "features": shape[0], "p": layer.p,
                                  "seed": layer.seed})
            elif type(layer) in _FUSED_ACTIVATIONS:
                act, slope = layer.activation, layer.negative_slope
                last = specs[-1] if specs else None
                if last and last["kind"] == "dense" and last["act"] in (None, "identity"):
                    last["act"], last["slope"] = act, slope   # Dense then ReLU: one pass
                else:
                    specs.append({"kind": "act", "features": shape[0], "act": act,
                                  "slope": slope})
            else:
                specs = None
                break
            shape = layer.output_shape(shape)
        plan = None
        if specs:
            plan = (_core.MLPPlan(specs, batch, self.dtype), dropouts)
        if len(self._plans) >= 4:       # fit() needs two: full batches and the last one
            self._plans.pop(next(iter(self._plans)))
        self._plans[batch] = plan
        return plan

    def _fused_step(self, plan, x, y):
        """Forward, loss and backward in one or two calls into C; the loss and logits."""
        mlp, dropouts = plan
        for i, layer in dropouts:
            mlp.set_stream(i, layer.calls)
            layer.calls += 1
        x = x.reshape(x.shape[0], -1)
        if isinstance(self.loss, losses_mod.SoftmaxCrossEntropy) and y.ndim == 1:
            return mlp.xent_step(x, y), mlp.output
        z = mlp.forward(x)
        loss = self.loss(z, y, mlp.grad_output)
        mlp.backward(x)
        return loss, z

    # ------------------------------------------------------------------ core
    def parameters(self):
        """The parameter arrays (views into one flat buffer), in layer order."""
        return [v for layer in self.layers for v in layer.params.values()]

    def _forward(self, x, training=False):
        """The output of the last layer, which may be its buffer (the next call reuses it)."""
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def forward(self, x, training=False):
        """The model's output for `x` (converted to the model dtype), a new array."""
        x = _as_2d_float(x, "x", self.dtype, self.input_shape)
        return self._forward(x, training).copy()   # the caller's, not a layer's buffer

    __call__ = forward

    def __deepcopy__(self, memo):
        raise TypeError("a Sequential cannot be deep-copied (its layers are views into its "
                        "parameter buffer): save() it and fastfc.load() the file")

    def backward(self, grad):
        """Backpropagate `grad`, the loss gradient of the output of the last forward
        (training=True), into every layer's grads. Returns the gradient of the model's
        input, or None when the first layer is a Dense (training does not need it)."""
        grad = _as_2d_float(grad, "grad", self.dtype, self.shapes[-1])
        return self._backward(grad)

    def _backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def _step(self, x, y, count_correct=False):
        """One training step: the gradients of the batch, then the optimizer's update."""
        loss, correct = self._gradients(x, y, count_correct)
        self._apply_gradients()
        return loss, correct

    def _apply_gradients(self):
        """The optimizer's update of the flat parameter buffer from the gradient buffer."""
        self.optimizer.step(self._theta, self._dtheta)

    def _gradients(self, x, y, count_correct=False):
        """Forward, loss and backward of a batch into the gradient buffer (no update):
        the mean loss and, when asked, the number of rows predicted right."""
        plan = self._plan(x.shape[0])
        if plan is not None:
            loss, z = self._fused_step(plan, x, y)
        else:
            z = self._forward(x, training=True)
            if self._grad_out is None or self._grad_out.shape != z.shape:
                self._grad_out = np.empty(z.shape, self.dtype)
            loss = self.loss(z, y, self._grad_out)
            self._backward(self._grad_out)
        correct = self._correct(z, y) if count_correct else 0
        return loss, correct

    def _correct(self, z, y):
        """Number of rows of z predicting y right (0 for regression losses)."""
        if not self.loss.classifier:
            return 0
        if y.ndim == 1 and z.shape[1] > 1:   # the common case, in two NumPy calls
            return int(np.count_nonzero(z.argmax(axis=1) == y))
        if y.ndim != 1 and not isinstance(self.loss, losses_mod.SigmoidBinaryCrossEntropy):
            y = np.argmax(y, axis=1)
        # rows of both as (n, k): a single-output BCE predicts (n,) against y of (n, 1)
        n = z.shape[0]
        got = self.loss.predict(z).reshape(n, -1)
        return int(np.count_nonzero(np.all(got == y.reshape(n, -1), axis=1)))

    def train_on_batch(self, x, y):
        """One optimizer step on a batch; returns the loss before the step."""
        x = _as_2d_float(x, "X", self.dtype, self.input_shape)
        y = self.loss.check_targets(y, self.n_outputs, x.shape[0])
        return float(self._step(x, y)[0])

    # ------------------------------------------------------------------ fit / evaluate
    def fit(self, X, y, epochs=10, batch_size=32, validation_data=None, validation_split=0.0,
            shuffle=True, early_stopping=None, verbose=1):
        """Train; returns a History of per-epoch loss/accuracy (and validation metrics).

        ``early_stopping=patience`` stops after `patience` epochs without a better
        validation loss (training loss without validation data) and restores the best
        weights and BatchNorm running statistics. A later call goes on where this one
        stopped (the next shuffles and epochs of the learning-rate schedule)."""
        X = _as_2d_float(X, "X", self.dtype, self.input_shape)
        y = self.loss.check_targets(y, self.n_outputs, X.shape[0])
        batch_size, epochs = integer(batch_size, "batch_size", 1), integer(epochs, "epochs", 0)
        if early_stopping is not None:
            early_stopping = integer(early_stopping, "early_stopping", 0)
        if not 0 <= real(validation_split, "validation_split") < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
        if validation_data is None and validation_split:
            n = X.shape[0]
            cut = int(round(n * (1 - validation_split)))
            if not 0 < cut < n:
                raise ValueError(f"validation_split={validation_split} of {n} samples leaves "
                                 f"{cut} for training and {n - cut} for validation; both "
                                 f"need at least one")
            X, Xv, y, yv = X[:cut], X[cut:], y[:cut], y[cut:]
            validation_data = (Xv, yv)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)):
                raise TypeError(f"validation_data must be a pair (X_val, y_val), got "
                                f"{type(validation_data).__name__}")
            if len(validation_data) != 2:
                raise ValueError(f"validation_data must be a pair (X_val, y_val), got "
                                 f"{len(validation_data)} items")
            Xv = _as_2d_float(validation_data[0], "validation X", self.dtype, self.input_shape)
            try:
                yv = self.loss.check_targets(validation_data[1], self.n_outputs, Xv.shape[0])
            except (TypeError, ValueError) as e:
                raise type(e)(f"validation_data: {e}") from None
        if epochs:
            self._check_batch_norm(X.shape[0], batch_size)
        history, best, best_state, waited = History(), np.inf, None, 0
        n = X.shape[0]
        for epoch in range(epochs):
            self.optimizer.start_epoch(self.epochs_done)
            self.epochs_done += 1
            order = self._shuffle_rng.permutation(n) if shuffle else np.arange(n)
            Xs, ys = (X[order], y[order]) if shuffle else (X, y)
            t0, total, correct = time.perf_counter(), 0.0, 0
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                loss, right = self._step(Xs[start:stop], ys[start:stop], True)
                total += loss * (stop - start)
                correct += right
                if verbose:
                    _progress(epoch, epochs, stop, n, total / stop, time.perf_counter() - t0)
            # running averages over the epoch's batches (before each step), as Keras reports
            metrics = {"loss": total / n,
                       "accuracy": correct / n if self.loss.classifier else None}
            if validation_data is not None:
                v = self.evaluate(Xv, yv)
                metrics.update(val_loss=v["loss"], val_accuracy=v["accuracy"])
            history.append(self.epochs_done - 1,
                           **{k: v for k, v in metrics.items() if v is not None})
            if verbose:
                sys.stdout.write("  " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()
                                                if v is not None) + "\n")
            if early_stopping is not None:
                watched = metrics.get("val_loss", metrics["loss"])
                if watched < best:
                    best, best_state, waited = watched, self._snapshot(), 0
                else:
                    waited += 1
                    if waited >= early_stopping:
                        break
        if early_stopping is not None and best_state is not None:
            self._restore(best_state)
        history.stopped_epoch = self.epochs_done
        return history

    def _check_batch_norm(self, n, batch_size):
        """A ValueError before training when a batch would give a BatchNorm one value per
        feature (no batch variance)."""
        smallest = n % batch_size or min(n, batch_size)
        shapes = [self.input_shape] + self.shapes
        for layer, shape in zip(self.layers, shapes):
            if isinstance(layer, layers_mod.BatchNorm) and smallest * np.prod(shape[:-1]) < 2:
                fix = "train on more samples" if n < 2 else "choose another batch_size"
                raise ValueError(f"fit: {n} samples in batches of {batch_size} leave a batch "
                                 f"of {smallest}, and {layer.describe()} needs two values per "
                                 f"feature in training: {fix}")

    def _batchnorms(self):
        return [l for l in self.layers if isinstance(l, layers_mod.BatchNorm)]

    def _snapshot(self):
        """Copies of the weights and the BatchNorm running statistics (the evaluation-mode
        model is both)."""
        return self._theta.copy(), [(bn.running_mean.copy(), bn.running_var.copy())
                                    for bn in self._batchnorms()]

    def _restore(self, state):
        theta, stats = state
        self._theta[...] = theta    # in place: layers and plans hold views of it
        for bn, (mean, var) in zip(self._batchnorms(), stats):
            bn.running_mean[...], bn.running_var[...] = mean, var

    def predict_proba(self, X, batch_size=1024):
        X = _as_2d_float(X, "X", self.dtype, self.input_shape)
        batch_size = integer(batch_size, "batch_size", 1)
        return np.concatenate([self.loss.proba(self._forward(X[i:i + batch_size]).copy())
                               for i in range(0, X.shape[0], batch_size)])

    def predict(self, X, batch_size=1024):
        """Class labels for classification losses, outputs for regression."""
        X = _as_2d_float(X, "X", self.dtype, self.input_shape)
        batch_size = integer(batch_size, "batch_size", 1)
        return np.concatenate([self.loss.predict(self._forward(X[i:i + batch_size]).copy())
                               for i in range(0, X.shape[0], batch_size)])

    def evaluate(self, X, y, batch_size=1024):
        """{"loss": mean loss, "accuracy": fraction correct (None for regression)}."""
        X = _as_2d_float(X, "X", self.dtype, self.input_shape)
        y = self.loss.check_targets(y, self.n_outputs, X.shape[0])
        batch_size = integer(batch_size, "batch_size", 1)
        total, correct = 0.0, 0
        for i in range(0, X.shape[0], batch_size):
            z = self._forward(X[i:i + batch_size])
            yb = y[i:i + batch_size]
            total += self.loss(z, yb, np.empty(z.shape, self.dtype)) * z.shape[0]
            correct += self._correct(z, yb)
        n = X.shape[0]
        return {"loss": total / n, "accuracy": correct / n if self.loss.classifier else None}

    # ------------------------------------------------------------------ description
    def summary(self):
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

    def get_config(self):
        # the exact class: a subclass may compute something else than the name it inherits
        loss = next((k for k, v in losses_mod.LOSSES.items() if type(self.loss) is v), None)
        if loss is None:
            raise TypeError(f"only models with a built-in loss ({', '.join(losses_mod.LOSSES)})"
                            f" can be saved, got {type(self.loss).__name__}")
        return {"format": "fastfc-sequential-1", "dtype": self.dtype.name, "seed": self.seed,
                "input_shape": list(self.input_shape), "loss": loss,
                "layers": [{"class": type(l).__name__, "config": l.get_config()}
                           for l in self.layers]}

    def _training_state(self):
        """Where training stands, as JSON: the optimizer (built-in ones, with their step
        count), the epochs done, the shuffling generator and the dropout streams."""
        opt = self.optimizer
        name = next((k for k, v in optim_mod.OPTIMIZERS.items() if type(opt) is v), None)
        why = (f"{type(opt).__name__} is not a fastfc.optim optimizer" if name is None else
               None if optim_mod.saved_schedule(opt.schedule) else
               f"its schedule {opt.schedule!r} is not a fastfc.optim schedule")
        if why:
            warnings.warn(f"the optimizer is not saved ({why}): pass optimizer= to load() to "
                          f"train on", stacklevel=3)
            name = None
        return {"optimizer": name and {"name": name, "config": opt.get_config(), "t": opt.t,
                                       "lr": opt.lr, "state": len(opt.state or ())},
                "epochs_done": self.epochs_done,
                "shuffle_rng": self._shuffle_rng.bit_generator.state,
                "dropout_calls": [getattr(l, "calls", None) for l in self.layers]}

    def save(self, path):
        """Weights as .npz arrays plus the architecture and the training state as JSON
        (nothing pickled): a loaded model predicts the same and trains on the same."""
        arrays = {f"p{i}": v for i, v in enumerate(self.parameters())}
        for i, layer in enumerate(self.layers):
            if isinstance(layer, layers_mod.BatchNorm):
                arrays[f"bn{i}_mean"], arrays[f"bn{i}_var"] = layer.running_mean, layer.running_var
        config = self.get_config()   # refuses a custom loss before any warning
        training = self._training_state()
        if training["optimizer"]:
            arrays.update((f"opt{i}", a) for i, a in enumerate(self.optimizer.state or ()))
        np.savez(path, config=np.array(json.dumps(config)),
                 training=np.array(json.dumps(training)), **arrays)

    def _resume(self, training):
        """Set the training state saved by save() (the optimizer's is set in load)."""
        self.epochs_done = training["epochs_done"]
        self._shuffle_rng.bit_generator.state = training["shuffle_rng"]
        for layer, calls in zip(self.layers, training["dropout_calls"]):
            if calls is not None:
                layer.calls = calls


def load(path, optimizer=None):
    """A Sequential saved with ``save`` (np.load with allow_pickle=False), with its
    optimizer and its state unless `optimizer` is given."""
    if isinstance(path, (str, os.PathLike)) and not os.path.exists(path) \
            and not os.fspath(path).endswith(".npz"):
        path = os.fspath(path) + ".npz"   # where np.savez put it
    with np.load(path, allow_pickle=False) as data:
        if "config" not in data.files:
            raise ValueError(f"{path} is not a fastfc model file (it has no config)")
        cfg = json.loads(str(data["config"]))
        if not isinstance(cfg, dict) or cfg.get("format") != "fastfc-sequential-1":
            raise ValueError(f"{path} is not a fastfc model file")
        layers, p = [], 0
        for spec in cfg["layers"]:
            cls = layers_mod.LAYERS.get(spec["class"])
            if cls is None:
                raise ValueError(f"unknown layer class {spec['class']!r} in {path}")
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
            warnings.warn(f"{path} holds no optimizer (save could not keep it): the model "
                          f"trains on with a new Adam(); pass optimizer= to load()",
                          stacklevel=2)
        model = Sequential(layers, loss=cfg["loss"], optimizer=optimizer, seed=cfg["seed"],
                           input_shape=tuple(cfg["input_shape"]), dtype=cfg["dtype"])
        if training:
            model._resume(training)
        for i, layer in enumerate(model.layers):
            if isinstance(layer, layers_mod.BatchNorm):
                layer.running_mean[...] = data[f"bn{i}_mean"]
                layer.running_var[...] = data[f"bn{i}_var"]
    return model


def _progress(epoch, epochs, done, n, loss, elapsed):
    width = 24
    fill = int(width * done / n)
    sys.stdout.write(f"\repoch {epoch + 1}/{epochs} [{'=' * fill}{'.' * (width - fill)}] "
                     f"{done}/{n} loss={loss:.4f} {elapsed:.1f}s")
    if done == n:
        sys.stdout.write("\n")
    sys.stdout.flush()

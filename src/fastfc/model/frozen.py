"""``Sequential.freeze(dtype=None)``: the inference form of a model.

Dropout is dropped, each BatchNorm folded into the Dense beside it (its running statistics
become a scale and shift of that Dense's weights and bias), activation layers fused into the
Dense before them, and each Dense's weights packed once (``fastfc.pack``: float32, float64
or bfloat16). A model of Dense and elementwise activations runs a batch of rows in one C
call (an inference MLPPlan); others run op by op.
"""
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from fastfc import activations, _core
from fastfc import layers as layers_mod
from fastfc import losses as losses_mod
from fastfc._checks import integer
from fastfc._state import writeable
from fastfc.model.inputs import as_2d_float
from fastfc.model.plan import InferencePlans, row_block
from fastfc.packing import PackedWeights, _storage_name, from_bfloat16_bits, pack

FORMAT = "fastfc-frozen-1"
_ELEMENTWISE = (layers_mod.ReLU, layers_mod.LeakyReLU, layers_mod.Sigmoid, layers_mod.Tanh)


def _bn_scale_shift(bn) -> Tuple[np.ndarray, np.ndarray]:
    """BatchNorm in evaluation as x * s + t (float64)."""
    s = bn.params["gamma"].astype(np.float64) / np.sqrt(bn.running_var.astype(np.float64)
                                                         + bn.eps)
    return s, bn.params["beta"].astype(np.float64) - bn.running_mean.astype(np.float64) * s


def _ops(model) -> List[list]:
    """The model's layers as inference ops in float64: ["dense", W, b, act, slope],
    ["act", act, slope], ["affine", s, t], ["softmax"], ["flatten"], ["gap"]."""
    ops: List[list] = []
    pending = None   # a BatchNorm's (s, t) waiting for the Dense after it
    for layer in model.layers:
        if isinstance(layer, layers_mod.Dropout):
            continue   # identity in inference
        if isinstance(layer, layers_mod.BatchNorm):
            s, t = _bn_scale_shift(layer)
            last = ops[-1] if ops else None
            if pending is not None:                   # two in a row: (x s1 + t1) s + t
                pending = (pending[0] * s, pending[1] * s + t)
            elif last and last[0] == "dense" and last[3] in (None, "identity"):
                last[1] = last[1] * s                 # (x W + b) s + t = x (W s) + (b s + t)
                last[2] = (0 if last[2] is None else last[2]) * s + t
            elif len(model.input_shape) == 1:
                pending = (s, t)
            else:
                ops.append(["affine", s, t])
            continue
        if pending is not None and not isinstance(layer, layers_mod.Dense):
            ops.append(["affine", *pending])
            pending = None
        if isinstance(layer, layers_mod.Dense):
            w = layer.params["W"].astype(np.float64)
            b = layer.params.get("b")
            b = None if b is None else b.astype(np.float64)
            if pending is not None:                   # (x s + t) W + b = x (s W) + (t W + b)
                s, t = pending
                b = t @ w + (0 if b is None else b)
                w = s[:, None] * w
                pending = None
            ops.append(["dense", w, b, layer.activation, layer.negative_slope])
        elif type(layer) in _ELEMENTWISE:
            last = ops[-1] if ops else None
            if last and last[0] == "dense" and last[3] in (None, "identity"):
                last[3], last[4] = layer.activation, layer.negative_slope
            else:
                ops.append(["act", layer.activation, layer.negative_slope])
        elif isinstance(layer, layers_mod.Softmax):
            ops.append(["softmax"])
        elif isinstance(layer, layers_mod.Flatten):
            ops.append(["flatten"])
        elif isinstance(layer, layers_mod.GlobalAvgPool):
            ops.append(["gap"])
        else:
            raise TypeError(f"freeze: no inference form for {type(layer).__name__}")
    if pending is not None:
        ops.append(["affine", *pending])
    return ops


class FrozenModel:
    """The inference form of a Sequential: ``model.freeze(dtype)``, or
    ``FrozenModel(model, dtype)``.

    ``predict``, ``predict_proba``, ``evaluate`` and ``forward`` as on the model it came
    from; training it raises. Its weights are PackedWeights (``storage`` 'float32',
    'float64' or 'bfloat16'; inputs are converted to ``dtype``, float32 for bfloat16). It
    pickles, and ``save`` / ``fastfc.load`` keep it as .npz + JSON.

    Parameters
    ----------
    model : Sequential
    dtype : {None, "float32", "float64", "bfloat16"}
        The weights' storage (None: the model's dtype).
    """

    def __new__(cls, model, dtype=None):
        if not hasattr(model, "layers") or not hasattr(model, "input_shape"):
            raise TypeError(f"FrozenModel: model must be a fastfc.Sequential, got "
                            f"{type(model).__name__}")
        return freeze(model, dtype)

    @classmethod
    def _make(cls, ops, input_shape, storage: str, loss) -> "FrozenModel":
        self = object.__new__(cls)
        self.storage = storage
        self.dtype = np.dtype(np.float64 if storage == "float64" else np.float32)
        self.input_shape = tuple(input_shape)
        self.loss = loss
        self._ops = []
        for op in ops:
            if op[0] == "dense":
                w = op[1] if isinstance(op[1], PackedWeights) else pack(op[1], storage)
                b = None if op[2] is None else np.ascontiguousarray(op[2], self.dtype)
                op = ["dense", w, b, op[3], float(op[4])]
            elif op[0] == "affine":
                op = ["affine", np.asarray(op[1], self.dtype), np.asarray(op[2], self.dtype)]
            self._ops.append(op)
        self.n_outputs = self._output_features()
        self._link()
        return self

    def _output_features(self) -> int:
        shape = self.input_shape
        for op in self._ops:
            if op[0] == "dense":
                shape = shape[:-1] + (op[1].shape[1],)
            elif op[0] == "flatten":
                shape = (int(np.prod(shape)),)
            elif op[0] == "gap":
                shape = shape[-1:]
        return shape[-1]

    def _link(self):
        """The C plans of a Dense/activation stack (None for other ops), rebuilt after
        unpickling."""
        specs, features = [], (self.input_shape[0] if len(self.input_shape) == 1 else None)
        ops = self._ops
        if ops and ops[0][0] == "flatten":   # the plan takes rows of the flattened samples
            ops, features = ops[1:], int(np.prod(self.input_shape))
        for op in ops:
            if features is None or op[0] not in ("dense", "act"):
                specs = None
                break
            if op[0] == "dense":
                specs.append({"kind": "dense", "w": op[1], "b": op[2], "act": op[3],
                              "slope": op[4]})
                features = op[1].shape[1]
            else:
                specs.append({"kind": "act", "features": features, "act": op[1],
                              "slope": op[2]})
        self._plans = InferencePlans(specs, self.dtype) if specs else None

    def __reduce__(self):
        state = dict(self.__dict__)
        state.pop("_plans")   # C structs over the arrays: rebuilt on load
        return (_restore, (state,))

    # ------------------------------------------------------------------ inference
    def _run_ops(self, x: np.ndarray) -> np.ndarray:
        for op in self._ops:
            kind = op[0]
            if kind == "dense":
                x = _core.linear(x, op[1], op[2], activation=op[3], negative_slope=op[4])
            elif kind == "act":   # the C functions, as the layer and the C plan
                x = np.require(x, self.dtype, ["C_CONTIGUOUS", "ALIGNED"])
                x = _core._act_forward(x, activations.CODES[op[1]], op[2], np.empty_like(x))
            elif kind == "affine":
                x = x * op[1] + op[2]
            elif kind == "softmax":
                e = np.exp(x - x.max(axis=-1, keepdims=True))
                x = e / e.sum(axis=-1, keepdims=True)
            elif kind == "flatten":
                x = x.reshape(x.shape[0], -1)
            else:
                x = x.mean(axis=(1, 2))
        return x

    def _outputs(self, X, batch_size) -> np.ndarray:
        X = as_2d_float(X, "X", self.dtype, self.input_shape)
        if batch_size is not None:
            batch_size = integer(batch_size, "batch_size", 1)
        if self._plans is not None:
            return self._plans.run(X, batch_size)
        rows = batch_size or row_block(X.shape[0], self._widest(), self.dtype.itemsize)
        return np.concatenate([self._run_ops(X[i:i + rows]) for i in range(0, X.shape[0], rows)])

    def _widest(self) -> int:
        return max([int(np.prod(self.input_shape))] +
                   [max(op[1].shape) for op in self._ops if op[0] == "dense"])

    def forward(self, X, batch_size: Optional[int] = None) -> np.ndarray:
        """The outputs of the last layer for the samples in `X` (rows of `batch_size`, or
        blocks sized to the caches when None)."""
        return self._outputs(X, batch_size)

    __call__ = forward

    def predict(self, X, batch_size: Optional[int] = None) -> np.ndarray:
        """Class labels for classification losses, outputs for regression."""
        return self.loss.predict(self._outputs(X, batch_size))

    def predict_proba(self, X, batch_size: Optional[int] = None) -> np.ndarray:
        """Class probabilities (the loss's output transform)."""
        return self.loss.proba(self._outputs(X, batch_size))

    def evaluate(self, X, y, batch_size: Optional[int] = None) -> Dict[str, Optional[float]]:
        """{"loss": mean loss, "accuracy": fraction correct (None for regression)}."""
        z = self._outputs(X, batch_size)
        y = self.loss.check_targets(y, self.n_outputs, z.shape[0])
        loss = self.loss(z, y, np.empty(z.shape, z.dtype))
        from fastfc.model.sequential import count_correct   # which imports this module
        n = z.shape[0]
        return {"loss": float(loss),
                "accuracy": count_correct(self.loss, z, y) / n if self.loss.classifier else None}

    def fit(self, *args, **kwargs):
        raise TypeError("a FrozenModel is for inference (BatchNorm folded, Dropout dropped, "
                        "weights packed): fit the Sequential it came from, then freeze again")

    train_on_batch = fit

    def __repr__(self) -> str:
        kinds = " -> ".join(op[0] if op[0] != "dense" else f"dense{op[1].shape}"
                            for op in self._ops)
        return f"FrozenModel({kinds}, storage={self.storage!r})"

    # ------------------------------------------------------------------ files
    def save(self, path) -> None:
        """The ops as .npz arrays plus JSON (nothing pickled); ``fastfc.load`` reads it."""
        loss = next((k for k, v in losses_mod.LOSSES.items() if type(self.loss) is v), None)
        if loss is None:
            raise TypeError(f"only models with a built-in loss can be saved, got "
                            f"{type(self.loss).__name__}")
        arrays, ops = {}, []
        for i, op in enumerate(self._ops):
            if op[0] == "dense":
                w = op[1]
                arrays[f"w{i}"] = np.array(w._values())   # bfloat16 bits or floats
                if op[2] is not None:
                    arrays[f"b{i}"] = op[2]
                ops.append(["dense", op[3], op[4]])
            elif op[0] == "affine":
                arrays[f"s{i}"], arrays[f"t{i}"] = op[1], op[2]
                ops.append(["affine"])
            else:
                ops.append(list(op))
        config = {"format": FORMAT, "storage": self.storage, "loss": loss,
                  "input_shape": list(self.input_shape), "ops": ops}
        np.savez(path, config=np.array(json.dumps(config)), **arrays)


def _restore(state: dict) -> FrozenModel:
    self = object.__new__(FrozenModel)
    self.__dict__.update(writeable(state))   # joblib's memory maps: plain arrays for C
    self._link()
    return self


def load_frozen(data, cfg: dict) -> FrozenModel:
    """A FrozenModel from the arrays and config FrozenModel.save wrote."""
    storage = cfg["storage"]
    ops = []
    for i, op in enumerate(cfg["ops"]):
        if op[0] == "dense":
            w = data[f"w{i}"]
            w = pack(from_bfloat16_bits(w), "bfloat16") if storage == "bfloat16" else pack(w)
            b = data[f"b{i}"] if f"b{i}" in data.files else None
            ops.append(["dense", w, b, op[1], op[2]])
        elif op[0] == "affine":
            ops.append(["affine", data[f"s{i}"], data[f"t{i}"]])
        else:
            ops.append(op)
    return FrozenModel._make(ops, cfg["input_shape"], storage,
                             losses_mod.LOSSES[cfg["loss"]]())


def freeze(model, dtype=None) -> FrozenModel:
    """The inference form of `model` (see Sequential.freeze)."""
    storage = _storage_name(dtype, "freeze") or model.dtype.name
    return FrozenModel._make(_ops(model), model.input_shape, storage, model.loss)

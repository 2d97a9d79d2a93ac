"""The C fast path: a model of Dense, Dropout and elementwise activation layers as one
``MLPPlan`` per batch size (buffers allocated once), so that forward, softmax
cross-entropy and backward of a training step are one or two calls into C.

The plans point into the model's parameter buffer: they are not pickled or copied, the
cache is rebuilt on first use.
"""
import threading
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from fastfc import _core
from fastfc import layers as layers_mod
from fastfc import losses as losses_mod
from fastfc.model.team import held_team

# Activation layers the fused C passes run (folded into the Dense before them if it has
# none); exact types: a subclass may compute something else than the activation it names.
FUSED_ACTIVATIONS = (layers_mod.ReLU, layers_mod.LeakyReLU, layers_mod.Sigmoid,
                     layers_mod.Tanh)

Plan = Tuple[Any, list]   # (MLPPlan, [(plan index, Dropout layer)])


def layer_specs(layers: Sequence[layers_mod.Layer],
                input_shape: tuple) -> Optional[Tuple[list, list]]:
    """The MLPPlan specs of the layers and their dropouts, or None when a layer has no
    fused C path (BatchNorm, Softmax, GlobalAvgPool, N-d activations)."""
    specs, dropouts = [], []
    shape = input_shape
    for i, layer in enumerate(layers):
        if isinstance(layer, layers_mod.Flatten) and (i == 0 or len(shape) == 1):
            shape = layer.output_shape(shape)
            continue
        if len(shape) != 1:
            return None
        if isinstance(layer, layers_mod.Dense):
            specs.append({"kind": "dense", "w": layer.params["W"], "gw": layer.grads["W"],
                          "b": layer.params.get("b"), "gb": layer.grads.get("b"),
                          "act": layer.activation, "slope": layer.negative_slope})
        elif isinstance(layer, layers_mod.Dropout):
            if layer.p:
                dropouts.append((len(specs), layer))
                specs.append({"kind": "dropout", "features": shape[0], "p": layer.p,
                              "seed": layer.seed})
        elif type(layer) in FUSED_ACTIVATIONS:
            act, slope = layer.activation, layer.negative_slope
            last = specs[-1] if specs else None
            if last and last["kind"] == "dense" and last["act"] in (None, "identity"):
                last["act"], last["slope"] = act, slope   # Dense then ReLU: one pass
            else:
                specs.append({"kind": "act", "features": shape[0], "act": act,
                              "slope": slope})
        else:
            return None
        shape = layer.output_shape(shape)
    return (specs, dropouts) if specs else None


class PlanCache(dict):
    """batch size -> Plan (or None: no fused path). fit() needs two (full batches and the
    last one); past `keep` the oldest is dropped."""
    keep = 4

    def get_plan(self, layers: Sequence[layers_mod.Layer], input_shape: tuple, batch: int,
                 dtype) -> Optional[Plan]:
        """The cached plan of this batch size, built on first use."""
        if batch in self:
            return self[batch]
        found = layer_specs(layers, input_shape)
        plan = None if found is None else (_core.MLPPlan(found[0], batch, dtype), found[1])
        if len(self) >= self.keep:
            self.pop(next(iter(self)))
        self[batch] = plan
        return plan


def fused_step(plan: Plan, loss: losses_mod.Loss, x: np.ndarray,
               y: np.ndarray) -> Tuple[float, np.ndarray]:
    """Forward, loss and backward in one or two calls into C: (the mean loss, the logits).
    The gradients land in the model's gradient buffer."""
    mlp, dropouts = plan
    for i, layer in dropouts:
        mlp.set_stream(i, layer.calls)
        layer.calls += 1
    x = x.reshape(x.shape[0], -1)
    if isinstance(loss, losses_mod.SoftmaxCrossEntropy) and y.ndim == 1:
        return mlp.xent_step(x, y), mlp.output
    z = mlp.forward(x)
    value = loss(z, y, mlp.grad_output)
    mlp.backward(x)
    return value, z



_CACHES: list = []


def _caches() -> Tuple[int, int]:
    """(L2, L3) bytes of the tuning table, read once (get_config builds a dict per call)."""
    if not _CACHES:
        table = _core.get_config()["tuning"]
        _CACHES[:] = [table["L2"][0], table["L3"][0]]
    return _CACHES[0], _CACHES[1]


def row_block(rows: int, widest: int, itemsize: int) -> int:
    """Rows per pass of an inference forward: all of them while two layers' activations
    fit the L3, else as many as do (at least 256). Smaller passes read or widen the weights
    once more each, which costs more than activations in L3 (docs/tuning.md)."""
    fit = _caches()[1] // (2 * max(widest, 1) * itemsize)
    return max(rows, 1) if rows <= fit else max(256, fit)


class InferencePlans:
    """Inference MLPPlans of one stack of Dense/activation specs (no gradients, weights
    maybe bfloat16), one per row count used (the last `keep` kept), per Python thread: a
    plan's buffers hold one call's activations, so threads serving one model do not share
    them (and each thread holds up to `keep` plans' activations while it lives)."""
    keep = 4

    def __init__(self, specs: list, dtype) -> None:
        self.specs, self.dtype = specs, np.dtype(dtype)
        self._local = threading.local()
        self.n_out = next(s["w"].shape[1] if s["kind"] == "dense" else s["features"]
                          for s in reversed(specs))
        self.widest = max(max(s["w"].shape) if s["kind"] == "dense" else s["features"]
                          for s in specs)

    def plan(self, rows: int):
        plans = self._local.__dict__.setdefault("plans", {})
        if rows not in plans:
            if len(plans) >= self.keep:
                plans.pop(next(iter(plans)))
            plans[rows] = _core.MLPPlan(self.specs, rows, self.dtype)
        return plans[rows]

    def run(self, X: np.ndarray, rows: Optional[int] = None) -> np.ndarray:
        """The outputs for the rows of X (C-contiguous, the plans' dtype): one C call per
        block of `rows` (sized to the caches when None)."""
        n = X.shape[0]
        X = X.reshape(n, -1)
        rows = rows or row_block(n, self.widest, self.dtype.itemsize)
        with held_team(_core.get_num_threads()):   # predict in a loop: calls ~30 us apart
            if n <= rows:   # one block: a small batch's time is mostly this wrapper's
                return self.plan(n).forward(X).copy()
            out = np.empty((n, self.n_out), self.dtype)
            for i in range(0, n, rows):
                xb = X[i:i + rows]
                out[i:i + xb.shape[0]] = self.plan(xb.shape[0]).forward(xb)
            return out


def inference_specs(layers: Sequence[layers_mod.Layer], input_shape: tuple) -> Optional[list]:
    """The specs of an inference plan over the model's live weights (Dropout left out),
    or None when a layer has no fused C path."""
    found = layer_specs(layers, input_shape)
    if found is None:
        return None
    specs = [{k: v for k, v in s.items() if k not in ("gw", "gb")}
             for s in found[0] if s["kind"] != "dropout"]
    return specs or None

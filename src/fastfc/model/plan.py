"""The C fast path: a model of Dense, Dropout and elementwise activation layers as one
``MLPPlan`` per batch size (buffers allocated once), so that forward, softmax
cross-entropy and backward of a training step are one or two calls into C.

The plans point into the model's parameter buffer: they are not pickled or copied, the
cache is rebuilt on first use.
"""
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from fastfc import _core
from fastfc import layers as layers_mod
from fastfc import losses as losses_mod

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


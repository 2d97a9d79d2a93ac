"""The flat parameter buffer: every parameter of a model in one contiguous array and every
gradient in another, each layer's arrays views into them, so that an optimizer step is one
pass over one array (updated in place: the layers and the C plans see it at once).
Snapshots copy it with the BatchNorm running statistics (the evaluation-mode model).
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from fastfc import layers as layers_mod


def link(layers: Sequence[layers_mod.Layer], dtype) -> Tuple[np.ndarray, np.ndarray]:
    """Two new flat buffers (parameters, gradients) holding the layers' values, the layers'
    ``params`` and ``grads`` dicts made views into them (in the order of ``params``).

    Gradients a layer has already are kept (a copied model); missing ones start at 0."""
    sizes = [v.size for layer in layers for v in layer.params.values()]
    theta, dtheta = np.empty(sum(sizes), dtype), np.zeros(sum(sizes), dtype)
    off = 0
    for layer in layers:
        if not layer.params:
            continue
        params, grads, layer.params, layer.grads = layer.params, layer.grads, {}, {}
        for name, value in params.items():   # new dicts: never the class-level ones
            view = theta[off:off + value.size].reshape(value.shape)
            view[...] = value
            layer.params[name] = view
            layer.grads[name] = dtheta[off:off + value.size].reshape(value.shape)
            if grads.get(name) is not None and grads[name].shape == value.shape:
                layer.grads[name][...] = grads[name]
            off += value.size
    return theta, dtheta


def batchnorms(layers: Sequence[layers_mod.Layer]) -> List[layers_mod.BatchNorm]:
    return [layer for layer in layers if isinstance(layer, layers_mod.BatchNorm)]


class Snapshot(NamedTuple):
    """Copies of the parameters and of each BatchNorm's (running_mean, running_var)."""
    theta: np.ndarray
    stats: list


def snapshot(layers: Sequence[layers_mod.Layer], theta: np.ndarray) -> Snapshot:
    """Copies of the weights and the BatchNorm running statistics."""
    return Snapshot(theta.copy(), batchnorm_stats(layers))


def restore(layers: Sequence[layers_mod.Layer], theta: np.ndarray, state: Snapshot) -> None:
    """Put a snapshot back, in place (layers and plans hold views of `theta`)."""
    theta[...] = state.theta
    restore_batchnorm_stats(layers, state.stats)


def batchnorm_stats(layers: Sequence[layers_mod.Layer]) -> list:
    """Copies of each BatchNorm's running statistics (which a training forward moves)."""
    return [(bn.running_mean.copy(), bn.running_var.copy()) for bn in batchnorms(layers)]


def restore_batchnorm_stats(layers: Sequence[layers_mod.Layer], stats: list) -> None:
    for bn, (mean, var) in zip(batchnorms(layers), stats):
        bn.running_mean[...], bn.running_var[...] = mean, var


def forward_state(layers: Sequence[layers_mod.Layer]) -> tuple:
    """What a training forward moves: BatchNorm statistics and Dropout call counts."""
    return (batchnorm_stats(layers),
            [layer.calls for layer in layers if isinstance(layer, layers_mod.Dropout)])


def restore_forward_state(layers: Sequence[layers_mod.Layer], state: tuple) -> None:
    restore_batchnorm_stats(layers, state[0])
    dropouts = [layer for layer in layers if isinstance(layer, layers_mod.Dropout)]
    for layer, calls in zip(dropouts, state[1]):
        layer.calls = calls


def first_nonfinite(layers: Sequence[layers_mod.Layer]) -> Optional[Tuple[int, str]]:
    """(position, parameter name) of the first gradient holding NaN or Inf, or None."""
    for i, layer in enumerate(layers):
        for name, grad in layer.grads.items():
            if not np.isfinite(grad).all():
                return i, name
    return None

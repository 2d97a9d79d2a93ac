"""Keras layers, given as plain specs and the arrays of ``get_weights()`` (Keras itself
is not needed), as a fastfc Sequential.

A spec is a dict: ``{"class": "Dense", "units": 64, "activation": "relu", "use_bias":
True, "weights": [kernel (in, out), bias]}``; Keras's ``{"class_name": ..., "config":
{...}}`` form (``layer.get_config()``) is read too. Classes: Dense, Activation, ReLU,
LeakyReLU, Softmax, Dropout (``rate``), Flatten and BatchNormalization (``epsilon``,
``momentum``, weights [gamma, beta, moving_mean, moving_variance]).
"""
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from fastfc import layers as L
from fastfc.interop._build import built, float_dtype, running_stats, sequential, \
    set_params, unsupported

if TYPE_CHECKING:
    from fastfc.model.sequential import Sequential

SUPPORTED = ("Dense (activation linear/None, relu, tanh, sigmoid, softmax, leaky_relu), "
             "Activation, ReLU, LeakyReLU, Softmax, Dropout, Flatten, BatchNormalization "
             "(center and scale: four weight arrays)")
_ACTS = {None: None, "linear": None, "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid",
         "leaky_relu": "leaky_relu"}


def _activation_layers(act, i):
    """The layers after a Dense (or an Activation layer) for Keras's activation name."""
    if act == "softmax":
        return [L.Softmax()]
    if act not in _ACTS:
        raise unsupported("keras", i, f"activation {act!r}", SUPPORTED)
    return [] if _ACTS[act] is None else [
        {"relu": L.ReLU, "tanh": L.Tanh, "sigmoid": L.Sigmoid,
         "leaky_relu": lambda: L.LeakyReLU(0.2)}[_ACTS[act]]()]   # keras's leaky_relu: 0.2


def _layers(spec, i):
    if not isinstance(spec, dict):
        raise TypeError(f"keras layer {i}: a spec must be a dict, got {type(spec).__name__}")
    cfg = {**spec.get("config", {}), **spec}
    kind = cfg.get("class", cfg.get("class_name"))
    weights = [np.asarray(w) for w in cfg.get("weights", [])]
    if kind == "Dense":
        use_bias = cfg.get("use_bias", True)
        if len(weights) != 1 + bool(use_bias) or weights[0].ndim != 2:
            raise ValueError(f"keras layer {i} (Dense): expected weights [kernel (in, out)"
                             f"{', bias' if use_bias else ''}], got shapes "
                             f"{[w.shape for w in weights]}")
        units = cfg.get("units", weights[0].shape[1])
        dense = L.Dense(weights[0].shape[0], units, use_bias=use_bias)
        arrays = {"W": weights[0]}
        if use_bias:
            arrays["b"] = weights[1]
        return [set_params(dense, i, "keras", **arrays)] + \
            _activation_layers(cfg.get("activation"), i)
    if kind == "Activation":
        return _activation_layers(cfg.get("activation"), i)
    if kind == "ReLU" and not cfg.get("max_value") and not cfg.get("threshold") \
            and not cfg.get("negative_slope"):
        return [L.ReLU()]
    if kind == "LeakyReLU":
        slope = cfg.get("negative_slope", cfg.get("alpha", 0.3))
        return [built(lambda: L.LeakyReLU(slope), f"LeakyReLU with negative_slope {slope!r}",
                      "keras", i, SUPPORTED)]
    if kind == "Softmax" and cfg.get("axis", -1) == -1:
        return [L.Softmax()]
    if kind == "Dropout":
        rate = cfg.get("rate", 0.5)
        return [built(lambda: L.Dropout(rate), f"Dropout with rate {rate!r}", "keras", i,
                      SUPPORTED)]
    if kind == "Flatten":
        return [L.Flatten()]
    if kind == "BatchNormalization" and cfg.get("axis", -1) in (-1, [-1]):
        if len(weights) != 4:
            raise ValueError(f"keras layer {i} (BatchNormalization): expected the four "
                             f"arrays [gamma, beta, moving_mean, moving_variance], got "
                             f"{len(weights)}")
        gamma, beta, mean, var = weights
        # Keras: moving = momentum * moving + (1 - momentum) * batch
        bn = built(lambda: L.BatchNorm(gamma.shape[0], momentum=1 - cfg.get("momentum", 0.99),
                                       eps=cfg.get("epsilon", 1e-3)),
                   "BatchNormalization", "keras", i, SUPPORTED)
        set_params(bn, i, "keras", gamma=gamma, beta=beta)
        running_stats(bn, i, "keras", mean, var)
        return [bn]
    raise unsupported("keras", i, f"{kind}", SUPPORTED)


def from_keras(specs: Sequence[Any], input_shape: Optional[Sequence[int]] = None,
               loss: Any = "mse") -> "Sequential":
    """A fastfc Sequential of Keras layer specs (see the module docstring).

    Parameters
    ----------
    specs : list of dict
        One spec per Keras layer: ``class`` ("Dense", "Dropout", "BatchNormalization",
        "Flatten", "Activation"...), ``units``, ``activation``, ``use_bias`` and
        ``weights``, the arrays of its ``get_weights()`` (BatchNormalization's four).
    input_shape : tuple, optional
        Per-sample input shape; needed when the first layer is not a Dense.
    loss : str, default "mse"
        The Sequential's loss (for further training). One that applies the last
        Softmax (softmax_cross_entropy) or Sigmoid (binary_cross_entropy) itself takes
        the logits: that layer is left out, so predict_proba is the source's output.

    Returns
    -------
    Sequential
        float64 for float64 weights, else float32. A ValueError names the layer, its
        index and what is supported when a spec cannot be honoured.

    Examples
    --------
    >>> import numpy as np, fastfc
    >>> model = fastfc.from_keras([{"class": "Dense", "units": 2, "activation": "relu",
    ...                             "weights": [np.ones((3, 2)), np.zeros(2)]}])
    """
    if isinstance(specs, (dict, str)):
        raise TypeError(f"from_keras takes a list of layer specs (dicts), got one "
                        f"{type(specs).__name__}: pass [spec]")
    pairs = [(i, layer) for i, spec in enumerate(specs) for layer in _layers(spec, i)]
    layers = [layer for _, layer in pairs]
    dtypes = [v.dtype for layer in layers for v in layer.params.values()]
    dtype = float_dtype(dtypes[0]) if dtypes else np.float32
    return sequential(layers, "keras", dtype, input_shape, loss, [i for i, _ in pairs])

"""PyTorch nn.Sequential <-> fastfc Sequential: Linear (weights (out, in), transposed on
the way), ReLU, Tanh, Sigmoid, LeakyReLU, Dropout, BatchNorm1d, Flatten and Softmax."""
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from fastfc import layers as L
from fastfc.interop._build import (built, exportable, proba_activation, running_stats,
                                   sequential, set_params, unsupported)

if TYPE_CHECKING:
    from fastfc.model.sequential import Sequential

SUPPORTED = ("Linear, ReLU, Tanh, Sigmoid, LeakyReLU, Dropout, BatchNorm1d (affine or not, "
             "with running statistics), Flatten (start_dim=1, end_dim=-1), Softmax (dim=-1 "
             "or 1)")


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError("fastfc.from_torch/to_torch need PyTorch: pip install "
                          "fastfc[torch]") from e
    return torch


def _array(t):
    t = t.detach().cpu()
    # numpy has no bfloat16: float32 holds it exactly (float16 becomes float32 later too)
    return (t.float() if t.dtype == _torch().bfloat16 else t).numpy()


def _layer(module, i, nn):
    """The fastfc layer of one torch module, or a ValueError."""
    name = type(module).__name__
    if type(module) is nn.Linear:
        layer = L.Dense(module.in_features, module.out_features,
                        use_bias=module.bias is not None)
        arrays = {"W": _array(module.weight).T}
        if module.bias is not None:
            arrays["b"] = _array(module.bias)
        return set_params(layer, i, "torch", **arrays)
    simple = {nn.ReLU: L.ReLU, nn.Tanh: L.Tanh, nn.Sigmoid: L.Sigmoid}
    if type(module) in simple:
        return simple[type(module)]()
    if type(module) is nn.LeakyReLU:
        return built(lambda: L.LeakyReLU(module.negative_slope),
                     f"LeakyReLU with negative_slope {module.negative_slope!r}", "torch", i,
                     SUPPORTED)
    if type(module) is nn.Dropout:
        return built(lambda: L.Dropout(module.p), f"Dropout with p {module.p!r}", "torch", i,
                     SUPPORTED)
    if type(module) is nn.Flatten and module.start_dim == 1 and module.end_dim == -1:
        return L.Flatten()
    if type(module) is nn.Softmax and module.dim in (-1, 1):
        return L.Softmax()
    if type(module) is nn.BatchNorm1d and module.track_running_stats \
            and module.momentum is not None:
        bn = built(lambda: L.BatchNorm(module.num_features, momentum=module.momentum,
                                       eps=module.eps), "BatchNorm1d", "torch", i, SUPPORTED)
        n = module.num_features
        gamma = _array(module.weight) if module.affine else np.ones(n)
        beta = _array(module.bias) if module.affine else np.zeros(n)
        set_params(bn, i, "torch", gamma=gamma, beta=beta)
        running_stats(bn, i, "torch", _array(module.running_mean), _array(module.running_var))
        return bn
    raise unsupported("torch", i, f"{name}: {module!r}", SUPPORTED)


def from_torch(module: Any, input_shape: Optional[Sequence[int]] = None,
               loss: Any = "mse") -> "Sequential":
    """A fastfc Sequential computing what the torch ``nn.Sequential`` computes in eval mode.

    Parameters
    ----------
    module : torch.nn.Sequential
    input_shape : tuple, optional
        Per-sample input shape; needed when the first module is not a Linear.
    loss : str, default "mse"
        The Sequential's loss (for further training). One that applies the last
        Softmax (softmax_cross_entropy) or Sigmoid (binary_cross_entropy) itself takes
        the logits: that layer is left out, so predict_proba is the source's output.


    Returns
    -------
    Sequential
        float64 for float64 weights, else float32. A ValueError names the module, its
        index and what is supported for anything else.

    Examples
    --------
    >>> import torch, fastfc
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> model = fastfc.from_torch(net)
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"from_torch takes a torch.nn.Sequential, got {type(module).__name__}")
    layers = [_layer(m, i, nn) for i, m in enumerate(module)]
    params = list(module.parameters())
    dtype = np.float64 if params and params[0].dtype == torch.float64 else np.float32
    model = sequential(layers, "torch", dtype, input_shape, loss)
    for i, (m, in_shape) in enumerate(zip(module, [model.input_shape] + model.shapes)):
        # torch's dim 1 is fastfc's last axis only for samples of one axis
        if isinstance(m, (nn.BatchNorm1d, nn.Softmax)) and len(in_shape) != 1 and \
                not (isinstance(m, nn.Softmax) and m.dim == -1):
            raise unsupported("torch", i, f"{type(m).__name__} over dim 1 of samples of "
                              f"shape {in_shape}", SUPPORTED + " on samples of one axis")
    return model


def to_torch(model: "Sequential", logits: bool = False) -> Any:
    """The torch ``nn.Sequential`` of a fastfc Sequential.

    Parameters
    ----------
    model : Sequential
        Or a fitted MLPClassifier/MLPRegressor, exported as ``from_sklearn`` builds it.
    logits : bool, default False
        With a loss that applies a Softmax (softmax_cross_entropy) or Sigmoid
        (binary_cross_entropy) to the layers' outputs, the network ends with it, so that
        it outputs predict_proba; True leaves it off (logits, for torch's
        CrossEntropyLoss / BCEWithLogitsLoss).

    Returns
    -------
    torch.nn.Sequential
        In eval mode and the model's dtype; a Dense with a fused activation becomes a
        Linear and the activation module.
    """
    torch = _torch()
    model = exportable(model, "to_torch")
    nn = torch.nn
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    last = proba_activation(model, logits)
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    modules = []
    for i, layer in enumerate(model.layers):
        kind = type(layer)
        if kind is L.Dense:
            lin = nn.Linear(layer.in_features, layer.out_features, bias=layer.use_bias,
                            dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.params["W"].T)))
                if layer.use_bias:
                    lin.bias.copy_(torch.from_numpy(layer.params["b"].copy()))
            modules.append(lin)
            if layer.activation in acts:
                modules.append(acts[layer.activation]())
            elif layer.activation == "leaky_relu":
                modules.append(nn.LeakyReLU(layer.negative_slope))
        elif kind in (L.ReLU, L.Tanh, L.Sigmoid):
            modules.append({L.ReLU: nn.ReLU, L.Tanh: nn.Tanh, L.Sigmoid: nn.Sigmoid}[kind]())
        elif kind is L.LeakyReLU:
            modules.append(nn.LeakyReLU(layer.negative_slope))
        elif kind is L.Softmax:
            modules.append(nn.Softmax(dim=-1))
        elif kind is L.Dropout:
            modules.append(nn.Dropout(layer.p))
        elif kind is L.Flatten:
            modules.append(nn.Flatten())
        elif kind is L.BatchNorm:
            bn = nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=layer.momentum,
                                dtype=dtype)
            with torch.no_grad():
                for name, value in (("weight", layer.params["gamma"]),
                                    ("bias", layer.params["beta"]),
                                    ("running_mean", layer.running_mean),
                                    ("running_var", layer.running_var)):
                    getattr(bn, name).copy_(torch.from_numpy(np.array(value)))
            modules.append(bn)
        else:
            raise unsupported("fastfc", i, layer.describe(),
                              "Dense, ReLU, Tanh, Sigmoid, LeakyReLU, Softmax, Dropout, "
                              "Flatten, BatchNorm")
    if last:
        modules.append(nn.Softmax(dim=-1) if last == "softmax" else nn.Sigmoid())
    return nn.Sequential(*modules).eval()


"""The one activation table: per name, its C code, its NumPy forward and its derivative.

The codes are the values of ``enum fastfc_act`` (csrc/include/fastfc.h), which the compiled
module checks at import. Derivatives are written in terms of the layer's *output* ``y``, as
in scikit-learn's ``DERIVATIVES``, so nothing else is kept for the backward pass; they have
the C kernels' semantics (csrc/epilogue/act.h): ReLU keeps NaN, and its gradient is 0
wherever ``y <= 0``, whatever the incoming gradient holds. The layers (``fastfc.ReLU``...),
the reference (``fastfc.reference``) and the model's fused plan read this table.

This module imports only NumPy: the compiled module takes its codes from here.
"""
from types import MappingProxyType
from typing import Callable, NamedTuple, Optional

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))``, split by sign so that exp never overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _into(out: Optional[np.ndarray], value: np.ndarray) -> np.ndarray:
    if out is None:
        return value
    out[...] = value
    return out


def _identity(z, slope, out=None):
    return _into(out, z)


def _identity_derivative(y, grad, slope, out=None):
    return _into(out, grad)


def _relu(z, slope, out=None):
    return np.maximum(z, 0, out=out)   # np.maximum keeps NaN, as the C kernels do


def _relu_derivative(y, grad, slope, out=None):
    if out is None:
        return np.where(y > 0, grad, grad.dtype.type(0))
    out[...] = 0
    np.copyto(out, grad, where=y > 0)
    return out


def _leaky_relu(z, slope, out=None):
    out = np.multiply(z, z.dtype.type(slope), out=out)
    np.copyto(out, z, where=~(z < 0))
    return out


def _leaky_relu_derivative(y, grad, slope, out=None):
    out = np.multiply(grad, grad.dtype.type(slope), out=out)
    np.copyto(out, grad, where=y > 0)
    return out


def _sigmoid(z, slope, out=None):
    return _into(out, sigmoid(z))


def _sigmoid_derivative(y, grad, slope, out=None):
    return np.multiply(grad, y * (1 - y), out=out)


def _tanh(z, slope, out=None):
    return np.tanh(z, out=out)


def _tanh_derivative(y, grad, slope, out=None):
    return np.multiply(grad, 1 - y * y, out=out)


class Activation(NamedTuple):
    """One row of the table.

    Attributes
    ----------
    name : str
    code : int
        The value of ``enum fastfc_act`` the C kernels take.
    forward : callable
        ``forward(z, negative_slope, out=None)`` -> ``act(z)`` (in `out` when given).
    derivative : callable
        ``derivative(y, grad, negative_slope, out=None)`` -> ``grad * act'(z)`` from the
        output ``y = act(z)``.
    """
    name: str
    code: int
    forward: Callable[..., np.ndarray]
    derivative: Callable[..., np.ndarray]


TABLE = MappingProxyType({a.name: a for a in (
    Activation("identity", 0, _identity, _identity_derivative),
    Activation("relu", 1, _relu, _relu_derivative),
    Activation("leaky_relu", 2, _leaky_relu, _leaky_relu_derivative),
    Activation("sigmoid", 3, _sigmoid, _sigmoid_derivative),
    Activation("tanh", 4, _tanh, _tanh_derivative),
)})

#: name -> the C code (``fastfc.ACTIVATIONS``).
CODES = MappingProxyType({name: a.code for name, a in TABLE.items()})


def get(name: Optional[str]) -> Activation:
    """The row of `name` (None is identity), or a ValueError listing the valid names.

    Examples
    --------
    >>> import numpy as np
    >>> from fastfc import activations
    >>> activations.get("relu").forward(np.array([-1.0, 2.0]), 0.0)
    array([0., 2.])
    """
    if name is None:
        return TABLE["identity"]
    try:
        return TABLE[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; valid: "
                         f"{', '.join(repr(k) for k in TABLE)} or None") from None

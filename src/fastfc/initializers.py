"""Weight initializers: a dictionary from names to classes, as in scikit-learn.

An initializer is called as ``init(rng, shape, fan_in, fan_out, dtype)`` and returns a new
array. ``get("he_normal")`` looks a name up; parameterized ones are made by calling the
class, e.g. ``normal(std=0.05)`` (the lower-case names are the classes). Initializers are
plain objects, so a model that holds them pickles.
"""
from typing import Any, Callable

import numpy as np

from fastfc._checks import positive


class Initializer:
    """Base class: ``__call__(rng, shape, fan_in, fan_out, dtype)`` returns the weights."""
    all_zero = False

    def __call__(self, rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int,
                 dtype) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """All zeros; Dense warns (its neurons would stay identical)."""
    all_zero = True

    def __call__(self, rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int,
                 dtype) -> np.ndarray:
        return np.zeros(shape, dtype)


class Normal(Initializer):
    """N(0, std^2).

    Parameters
    ----------
    std : float > 0
        The standard deviation.
    """

    def __init__(self, std: float = 0.01) -> None:
        self.std = positive(std, "normal: std")

    def __call__(self, rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int,
                 dtype) -> np.ndarray:
        return (rng.standard_normal(shape) * self.std).astype(dtype)


class Uniform(Initializer):
    """U(-limit, limit).

    Parameters
    ----------
    limit : float > 0
        The bound of the interval.
    """

    def __init__(self, limit: float = 0.05) -> None:
        self.limit = positive(limit, "uniform: limit")

    def __call__(self, rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int,
                 dtype) -> np.ndarray:
        return rng.uniform(-self.limit, self.limit, shape).astype(dtype)


class XavierNormal(Initializer):
    """Glorot & Bengio (2010): std = sqrt(2 / (fan_in + fan_out))."""

    def __call__(self, rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int,
                 dtype) -> np.ndarray:
        return (rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


class XavierUniform(Initializer):
    """Glorot & Bengio (2010): U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""

    def __call__(self, rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int,
                 dtype) -> np.ndarray:
        a = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, shape).astype(dtype)


class HeNormal(Initializer):
    """He et al. (2015), for ReLU layers: std = sqrt(2 / fan_in)."""

    def __call__(self, rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int,
                 dtype) -> np.ndarray:
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


class HeUniform(Initializer):
    """He et al. (2015): U(-a, a), a = sqrt(6 / fan_in)."""

    def __call__(self, rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int,
                 dtype) -> np.ndarray:
        a = np.sqrt(6.0 / fan_in)
        return rng.uniform(-a, a, shape).astype(dtype)


zeros, normal, uniform = Zeros, Normal, Uniform
xavier_normal, xavier_uniform, he_normal, he_uniform = (XavierNormal, XavierUniform,
                                                        HeNormal, HeUniform)

INITIALIZERS = {
    "zeros": Zeros, "normal": Normal, "uniform": Uniform,
    "xavier_normal": XavierNormal, "xavier_uniform": XavierUniform,
    "glorot_normal": XavierNormal, "glorot_uniform": XavierUniform,
    "he_normal": HeNormal, "he_uniform": HeUniform,
    "kaiming_normal": HeNormal, "kaiming_uniform": HeUniform,
}


def get(init: Any) -> Callable[..., np.ndarray]:
    """An initializer from a name in INITIALIZERS, one of their classes (made with its
    defaults) or a callable ``init(rng, shape, fan_in, fan_out, dtype)``.

    Parameters
    ----------
    init : str, Initializer class or callable
        A name (e.g. ``"he_normal"``), a class of INITIALIZERS, or a callable, returned as
        it is (an Initializer instance such as ``normal(std=0.05)`` is one).

    Returns
    -------
    callable
        ``init(rng, shape, fan_in, fan_out, dtype)``, which returns a new array.

    Raises
    ------
    ValueError
        For an unknown name or anything else that is not callable.

    Examples
    --------
    >>> from fastfc import initializers
    >>> initializers.get("he_normal")
    HeNormal()
    >>> initializers.get(initializers.normal)
    Normal(std=0.01)
    """
    if any(init is cls for cls in INITIALIZERS.values()):
        return init()
    if callable(init):
        return init
    if isinstance(init, str) and init in INITIALIZERS:
        return INITIALIZERS[init]()
    raise ValueError(f"unknown initializer {init!r}; valid: {', '.join(INITIALIZERS)} "
                     f"or a callable")

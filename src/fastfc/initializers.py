"""Weight initializers: a dictionary from names to functions, as in scikit-learn.

Each initializer is called as ``init(rng, shape, fan_in, fan_out, dtype)`` and returns a
new array. ``get("he_normal")`` looks a name up; parameterized ones are made by calling
the factory, e.g. ``normal(std=0.05)``.
"""
import numpy as np

from fastfc._checks import positive


def zeros():
    """All zeros; Dense warns (its neurons would stay identical)."""
    def init(rng, shape, fan_in, fan_out, dtype):
        return np.zeros(shape, dtype)
    init.all_zero = True
    return init


def normal(std=0.01):
    std = positive(std, "normal: std")

    def init(rng, shape, fan_in, fan_out, dtype):
        return (rng.standard_normal(shape) * std).astype(dtype)
    return init


def uniform(limit=0.05):
    limit = positive(limit, "uniform: limit")

    def init(rng, shape, fan_in, fan_out, dtype):
        return rng.uniform(-limit, limit, shape).astype(dtype)
    return init


def xavier_normal():
    """Glorot & Bengio (2010): std = sqrt(2 / (fan_in + fan_out))."""
    def init(rng, shape, fan_in, fan_out, dtype):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)
    return init


def xavier_uniform():
    """Glorot & Bengio (2010): U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    def init(rng, shape, fan_in, fan_out, dtype):
        a = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, shape).astype(dtype)
    return init


def he_normal():
    """He et al. (2015), for ReLU layers: std = sqrt(2 / fan_in)."""
    def init(rng, shape, fan_in, fan_out, dtype):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
    return init


def he_uniform():
    """He et al. (2015): U(-a, a), a = sqrt(6 / fan_in)."""
    def init(rng, shape, fan_in, fan_out, dtype):
        a = np.sqrt(6.0 / fan_in)
        return rng.uniform(-a, a, shape).astype(dtype)
    return init


INITIALIZERS = {
    "zeros": zeros, "normal": normal, "uniform": uniform,
    "xavier_normal": xavier_normal, "xavier_uniform": xavier_uniform,
    "glorot_normal": xavier_normal, "glorot_uniform": xavier_uniform,
    "he_normal": he_normal, "he_uniform": he_uniform,
    "kaiming_normal": he_normal, "kaiming_uniform": he_uniform,
}


def get(init):
    """An initializer from a name in INITIALIZERS, one of their factories (called with its
    defaults) or a callable ``init(rng, shape, fan_in, fan_out, dtype)``."""
    if any(init is factory for factory in INITIALIZERS.values()):
        return init()
    if callable(init):
        return init
    if isinstance(init, str) and init in INITIALIZERS:
        return INITIALIZERS[init]()
    raise ValueError(f"unknown initializer {init!r}; valid: {', '.join(INITIALIZERS)} "
                     f"or a callable")

"""The argument checks every module shares (the Cython boundary calls real() too)."""
import numpy as np


def real(v, name):
    """v as a float, or a TypeError naming the argument (a ValueError when it overflows a
    float): whatever float() takes, except
    bools, complex numbers, strings (float("0.5") parses them; NumPy arithmetic refuses
    them), arrays of one or more dimensions and NumPy values that are not numbers."""
    if isinstance(v, (bool, complex)) or (isinstance(v, (np.ndarray, np.generic))
                                         and v.dtype.kind not in "iuf"):
        raise TypeError(f"{name} must be a real number, got {v!r}")
    if isinstance(v, np.ndarray) and v.ndim:
        raise TypeError(f"{name} must be a real number, got an array of shape {v.shape}")
    if not isinstance(v, (str, bytes)):
        try:
            return float(v)
        except OverflowError:
            raise ValueError(f"{name} is beyond the range of a float") from None
        except (TypeError, ValueError):
            pass
    raise TypeError(f"{name} must be a real number, got {type(v).__name__}")


def bounded(v, name, ok, expected):
    """v as a float, or a TypeError (not a real number) / ValueError (not `expected`)."""
    x = real(v, name)
    if not ok(x):    # NaN fails every comparison
        raise ValueError(f"{name} must be {expected}, got {v}")
    return x


def non_negative(v, name):
    return bounded(v, name, lambda x: 0 <= x < np.inf, ">= 0 and finite")


def positive(v, name):
    return bounded(v, name, lambda x: 0 < x < np.inf, "> 0 and finite")


def slope(v, name):
    """leaky_relu's slope for negative inputs as a float: finite and >= 0, since its
    derivative is taken from the sign of the output, which a negative slope flips."""
    return non_negative(v, name)


def flag(v, name):
    """A yes/no argument: a bool (or 0 / 1), not any object that happens to be truthy
    (the string "false" is)."""
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, np.integer)) and v in (0, 1)):
        return bool(v)
    raise TypeError(f"{name} must be True or False, got {v!r}")


def integer(v, name, low):
    """v as an int >= low, or a TypeError/ValueError naming the argument."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < low:
        raise ValueError(f"{name} must be >= {low}, got {v}")
    return int(v)

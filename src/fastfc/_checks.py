"""The real-number check every module shares (the Cython boundary calls it too)."""
import numpy as np


def real(v, name):
    """v as a float, or a TypeError naming the argument: whatever float() takes, except
    bools, complex numbers, strings (float("0.5") parses them; NumPy arithmetic refuses
    them) and arrays of one or more dimensions."""
    if isinstance(v, (bool, np.bool_, complex, np.complexfloating)):
        raise TypeError(f"{name} must be a real number, got {v!r}")
    if isinstance(v, np.ndarray) and v.ndim:
        raise TypeError(f"{name} must be a real number, got an array of shape {v.shape}")
    if not isinstance(v, (str, bytes)):
        try:
            return float(v)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"{name} must be a real number, got {type(v).__name__}")

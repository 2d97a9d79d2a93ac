"""The argument check the model modules share."""
import numpy as np


def real(v, name):
    """v as a float, or a TypeError naming the argument (bools and strings are not numbers)."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
    return float(v)

"""Losses of the model output z: a dictionary from names to classes, as in scikit-learn.

``loss(z, y, grad)`` returns the mean loss over the batch (mse: over all elements) and
writes d loss / d z into the preallocated ``grad``. The fused pairs (softmax +
cross-entropy, sigmoid + binary cross-entropy) take logits: their gradient is
``(p - y) / batch``, stable for any z.
"""
from typing import Union

import numpy as np

from fastfc import _core
from fastfc.activations import sigmoid


class Loss:
    """Base class: ``loss(z, y, grad)`` returns the mean loss of the outputs z against the
    targets y and writes its gradient with respect to z into `grad`."""
    classifier = True

    def check_targets(self, y, n_out, n):
        """y as the array this loss needs, or a ValueError naming what is wrong."""
        raise NotImplementedError

    def predict(self, z):
        return z

    def proba(self, z):
        return z

    def __repr__(self):
        return f"{type(self).__name__}()"


def _rows(y, n):
    """y as an ndarray with one row per sample, or a ValueError."""
    y = np.asarray(y)
    if y.ndim == 0:
        raise ValueError(f"y must have one row per sample, got the scalar {y.item()!r}")
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} rows but X has {n}")
    return y


def _labels(y, n_out, n):
    y = _rows(y, n)
    if y.ndim == 2 and y.shape[1] == 1 and n_out > 1:   # a column of labels, as Keras takes
        y = y[:, 0]
    if y.ndim == 2 and y.shape[1] == n_out and n_out > 1:  # one-hot / probabilities
        if y.dtype.kind not in "biuf":
            raise TypeError(f"y has dtype {y.dtype}; expected one-hot or probability rows")
        if n and not np.isfinite(y).all():
            raise ValueError("y contains NaN or Inf")
        if n and y.min() < 0:
            raise ValueError(f"one-hot or probability rows of y must be >= 0, got {y.min()}")
        return np.ascontiguousarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be integer labels of shape ({n},) or one-hot ({n}, {n_out}),"
                         f" got shape {y.shape}")
    given = y
    if y.dtype.kind == "f":
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError("y holds non-integer labels")
        y = np.clip(y, -1, n_out)   # castable to int64; a label out of range stays out
    elif y.dtype.kind not in "iub":
        raise TypeError(f"y has dtype {y.dtype}; expected integer class labels")
    # the fused C step reads the labels in place: int64 and contiguous (np.require, 0.7 us,
    # only when they are not); uint64 labels past the int64 range turn negative, out of range
    labels = (y if y.dtype == np.int64 and y.flags.c_contiguous and y.flags.aligned
              else np.require(y, np.int64, ["C_CONTIGUOUS", "ALIGNED"]))
    if n and not _core._labels_in_range(labels, n_out):
        raise ValueError(f"labels must be in [0, {n_out}), got values in "
                         f"[{given.min()}, {given.max()}]")
    return labels


def _float_targets(y, n_out, n):
    """Real-valued targets as an (n, n_out) array."""
    y = _rows(y, n)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y has dtype {y.dtype}; expected real-valued targets")
    cols = int(np.prod(y.shape[1:], dtype=np.int64))   # 1 for a 1-D y
    if cols != n_out:   # before the copy: y may be a zero-stride view of a shape
        raise ValueError(f"y has {cols} columns, the model outputs {n_out}")
    y = np.ascontiguousarray(y, np.float64).reshape(n, cols)
    if not _core._all_finite(y):   # one C pass, as for X
        raise ValueError("y contains NaN or Inf")
    return y


class SoftmaxCrossEntropy(Loss):
    """Softmax + cross-entropy, fused: lse = m + log sum exp(z - m), loss = lse - z_y."""

    def check_targets(self, y, n_out, n):
        return _labels(y, n_out, n)

    def __call__(self, z, y, grad):
        n = z.shape[0]
        if y.ndim == 1:
            return _core._softmax_xent(z, y, grad, None, 1.0 / n) / n
        # one-hot or probability rows: d/dz sum_j y_j (lse - z_j) = (sum_j y_j) p - y
        _core._softmax_xent(z, np.zeros(n, np.int64), None, grad, 1.0)
        zmax = z.max(axis=1, keepdims=True)
        lse = zmax + np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))
        loss = float(np.sum(y * (lse - z)) / n)
        np.multiply(grad, y.sum(axis=1, keepdims=True), out=grad)
        grad -= y
        grad /= n
        return loss

    def predict(self, z):
        return np.argmax(z, axis=1)

    def proba(self, z):
        p = np.empty_like(z)
        _core._softmax_xent(z, np.zeros(z.shape[0], np.int64), None, p, 1.0)
        return p


class SigmoidBinaryCrossEntropy(Loss):
    """Sigmoid + binary cross-entropy from logits: max(z, 0) - z*y + log1p(exp(-|z|))."""

    def check_targets(self, y, n_out, n):
        y = _float_targets(y, n_out, n)
        if n and (y.min() < 0 or y.max() > 1):
            raise ValueError("binary cross-entropy targets must be in [0, 1]")
        return y

    def __call__(self, z, y, grad):
        loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        np.subtract(sigmoid(z), y, out=grad)
        grad /= z.shape[0]
        return float(loss.sum() / z.shape[0])

    def predict(self, z):
        labels = (z > 0).astype(np.int64)
        return labels[:, 0] if labels.shape[1] == 1 else labels

    def proba(self, z):
        return sigmoid(z)


class MeanSquaredError(Loss):
    """Mean over all elements of (z - y)^2."""
    classifier = False

    def check_targets(self, y, n_out, n):
        return _float_targets(y, n_out, n)

    def __call__(self, z, y, grad):
        np.subtract(z, y, out=grad)
        loss = float(np.vdot(grad, grad) / grad.size)
        grad *= 2.0 / grad.size
        return loss


class MulticlassHinge(Loss):
    """Multiclass SVM loss (Weston-Watkins): sum over j != y of max(0, z_j - z_y + 1)."""

    def check_targets(self, y, n_out, n):
        y = _labels(y, n_out, n)
        if y.ndim != 1:
            y = np.argmax(y, axis=1)
        return y

    def __call__(self, z, y, grad):
        n = z.shape[0]
        rows = np.arange(n)
        margins = z - z[rows, y][:, None] + 1
        margins[rows, y] = 0
        active = margins > 0
        loss = float(np.sum(margins * active) / n)
        grad[...] = active
        grad[rows, y] = -active.sum(axis=1)
        grad /= n
        return loss

    def predict(self, z):
        return np.argmax(z, axis=1)


LOSSES = {
    "softmax_cross_entropy": SoftmaxCrossEntropy, "cross_entropy": SoftmaxCrossEntropy,
    "binary_cross_entropy": SigmoidBinaryCrossEntropy, "mse": MeanSquaredError,
    "hinge": MulticlassHinge,
}


def get(loss: Union[str, Loss]) -> Loss:
    """A loss from a name in LOSSES (a new instance) or a Loss.

    Parameters
    ----------
    loss : str or Loss
        A name (e.g. ``"softmax_cross_entropy"``) or an instance, returned as it is.

    Returns
    -------
    Loss

    Raises
    ------
    ValueError
        For an unknown name or an object that is not a Loss.

    Examples
    --------
    >>> from fastfc import losses
    >>> losses.get("mse")
    MeanSquaredError()
    """
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")

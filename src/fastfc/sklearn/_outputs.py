"""Output activations and losses as scikit-learn's MLP defines them, as a fastfc Loss.

The last Dense of the estimator's model has no activation; ``_OutputLoss`` applies the
output activation to its logits, returns scikit-learn's (weighted) loss and writes
``sample_weight * (act(z) - y) / sum(sample_weight)``: the gradient of the loss for the
canonical pairs (softmax + log-loss, logistic + binary log-loss, identity + squared error,
exp + Poisson deviance), the delta scikit-learn backpropagates. Unweighted softmax
batches given as integer labels take fastfc's fused softmax cross-entropy (the exact loss,
where scikit-learn's clips probabilities to [eps, 1 - eps]: a difference below eps per row).
"""
import numpy as np
from scipy.special import expit, xlogy

from fastfc import losses as fastfc_losses


def softmax(z):
    """Row-wise softmax, a new array (each row computed on its own: batch invariant)."""
    p = z - z.max(axis=1, keepdims=True)
    np.exp(p, out=p)
    p /= p.sum(axis=1, keepdims=True)
    return p


OUT_ACTIVATIONS = {"softmax": softmax, "logistic": expit, "identity": np.array, "exp": np.exp}


def _log_loss(y, p, w):
    eps = np.finfo(p.dtype).eps
    return -np.average(xlogy(y, np.clip(p, eps, 1 - eps)), weights=w, axis=0).sum()


def _binary_log_loss(y, p, w):
    eps = np.finfo(p.dtype).eps
    p = np.clip(p, eps, 1 - eps)
    return -np.average(xlogy(y, p) + xlogy(1 - y, 1 - p), weights=w, axis=0).sum()


def _squared_loss(y, p, w):
    return 0.5 * np.average((y - p) ** 2, weights=w, axis=0).mean()


def _poisson_loss(y, p, w):
    return np.average(xlogy(y, y / p) - y + p, weights=w, axis=0).sum()


# the loss scikit-learn pairs with each output activation
LOSSES = {"softmax": _log_loss, "logistic": _binary_log_loss, "identity": _squared_loss,
          "exp": _poisson_loss}


class OutputLoss(fastfc_losses.SoftmaxCrossEntropy):
    """scikit-learn's output activation and loss on the model's logits, for targets as
    rows (one-hot, indicators or values). Set ``sample_weight`` (None or one weight per row
    of the next batch) before each call. 1-D integer labels (softmax only) are the fused
    softmax cross-entropy of the parent class."""

    def __init__(self, out_activation, classifier):
        self.out_activation = out_activation
        self.classifier = classifier
        self.sample_weight = None

    def __call__(self, z, y, grad):
        if y.ndim == 1:
            return super().__call__(z, y, grad)
        p = OUT_ACTIVATIONS[self.out_activation](z)
        w = self.sample_weight
        loss = LOSSES[self.out_activation](y, p, w)
        np.subtract(p, y, out=grad)
        if w is None:
            grad /= z.shape[0]
        else:
            grad *= (w / w.sum()).astype(grad.dtype)[:, None]
        return float(loss)

    def predict(self, z):
        return z

    def proba(self, z):
        return OUT_ACTIVATIONS[self.out_activation](z)

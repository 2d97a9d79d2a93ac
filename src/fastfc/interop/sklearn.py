"""A fitted scikit-learn MLPClassifier/MLPRegressor (scikit-learn's or fastfc.sklearn's) as
a fastfc Sequential: its coefs_ and intercepts_, hidden activation and out_activation_."""
from typing import TYPE_CHECKING, Any

import numpy as np

from fastfc import layers as L
from fastfc.interop._build import sequential, set_params, unsupported

if TYPE_CHECKING:
    from fastfc.model.sequential import Sequential

_HIDDEN = {"identity": None, "relu": "relu", "tanh": "tanh", "logistic": "sigmoid"}
_OUTPUT = {"identity": None, "softmax": L.Softmax, "logistic": L.Sigmoid}


def from_sklearn(estimator: Any, loss: Any = "mse") -> "Sequential":
    """A fastfc Sequential computing a fitted scikit-learn MLP.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        Fitted (scikit-learn's or fastfc.sklearn's).
    loss : str, default "mse"
        The Sequential's loss (for further training). One that applies the last
        Softmax (softmax_cross_entropy) or Sigmoid (binary_cross_entropy) itself takes
        the logits: that layer is left out, so predict_proba is the source's output.

    Returns
    -------
    Sequential
        Its output is the estimator's output activation (``predict_proba`` for
        multiclass, its positive column for binary classifiers, ``predict`` for
        regressors), in the dtype of its ``coefs_``.

    Examples
    --------
    >>> from sklearn.neural_network import MLPClassifier
    >>> import fastfc
    >>> est = MLPClassifier(max_iter=5).fit([[0, 1], [1, 0], [1, 1]], [0, 1, 2])
    >>> model = fastfc.from_sklearn(est)
    """
    coefs = getattr(estimator, "coefs_", None)
    if coefs is None or not hasattr(estimator, "out_activation_"):
        raise ValueError(f"from_sklearn takes a fitted MLPClassifier or MLPRegressor, got "
                         f"{type(estimator).__name__} without coefs_/out_activation_")
    if getattr(estimator, "batch_norm", False):
        raise unsupported("sklearn", 0, "fastfc.sklearn estimator with batch_norm=True: its "
                          "coefs_ are not the whole network", "MLPs of Dense layers")
    hidden = estimator.activation
    if hidden not in _HIDDEN:
        raise unsupported("sklearn", 0, f"activation={hidden!r}", ", ".join(_HIDDEN))
    layers, last = [], len(coefs) - 1
    for i, (w, b) in enumerate(zip(coefs, estimator.intercepts_)):
        w = np.asarray(w)
        dense = L.Dense(w.shape[0], w.shape[1], activation=None if i == last else
                        _HIDDEN[hidden])
        layers.append(set_params(dense, i, "sklearn", W=w, b=b))
    out = estimator.out_activation_
    if out not in _OUTPUT:
        raise unsupported("sklearn", last, f"out_activation_={out!r}", ", ".join(_OUTPUT))
    if _OUTPUT[out] is not None:
        layers.append(_OUTPUT[out]())
    return sequential(layers, "sklearn", np.asarray(coefs[0]).dtype, loss=loss)

"""MLPClassifier and MLPRegressor: scikit-learn's, trained by fastfc."""
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from fastfc.sklearn._base import BaseMLP

def _store_params(estimator, args):
    """__init__ stores its arguments, as scikit-learn's estimators do, and nothing else."""
    for name, value in args.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


_SHARED_DOC = """
    Same parameters, defaults, fitted attributes and errors as scikit-learn's
    ``sklearn.neural_network.{name}`` (the same Glorot-uniform initial weights from
    `random_state`, the same Adam/SGD updates, learning-rate schedules, stopping rules and
    L-BFGS run through ``scipy.optimize``); the network trains on fastfc's kernels.
    See scikit-learn's documentation for those parameters. fastfc adds:

    dropout : float in [0, 1), default=0.0
        Inverted dropout after each hidden layer in training (stochastic solvers only).
    batch_norm : bool, default=False
        A BatchNorm between each hidden Dense and its activation.
    dtype : {{"float32", "float64"}}, default="float32"
        The precision of the weights and of training. float32 is about twice as fast;
        ``dtype="float64"`` gives scikit-learn's precision (and its float64 results).
    n_threads : int or None, default=None
        Threads for fit and predict (None: ``fastfc.get_num_threads()``).

    Notes
    -----
    A fit treats the training set as a weighted multiset: rows of weight 0 are dropped
    and, when rows repeat or weights are not all 1, identical (x, y) rows are merged into
    one row of their summed weight, in a canonical order (with ``shuffle=True`` and for
    ``solver="lbfgs"``). A ``sample_weight`` of k is then exactly k copies of a row, and
    ``t_`` counts the total weight seen. Sparse input is not supported.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from fastfc.sklearn import {name}
    >>> X, y = load_digits(return_X_y=True)
    >>> est = {name}(hidden_layer_sizes=(64,), max_iter=20, random_state=0).fit(X / 16, y)
"""


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = "Multi-layer perceptron classifier: a drop-in for scikit-learn's.\n" + \
        _SHARED_DOC.format(name="MLPClassifier")

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, batch_norm=False, dtype="float32", n_threads=None) -> None:
        _store_params(self, locals())

    _parameter_constraints = {k: v for k, v in BaseMLP._parameter_constraints.items()
                              if k != "loss"}
    loss = "log_loss"     # scikit-learn's classifier has it as a fixed attribute

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32),
                             reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. `self.classes_` "
                                 f"has {self.classes_}. 'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None) -> Any:
        """One epoch over X, y. `classes` (all the classes of the data) is required on
        the first call."""
        self._validate_params()
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _proba(self, X):
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        p = self._output(self._as_dtype(X, "X"))
        return p.ravel() if self.n_outputs_ == 1 else p

    def predict(self, X: Any) -> np.ndarray:
        """The predicted classes (an indicator matrix for multilabel)."""
        check_is_fitted(self)
        return self._label_binarizer.inverse_transform(self._proba(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities of the classes in the order of ``classes_``."""
        check_is_fitted(self)
        p = self._proba(X)
        return np.vstack([1 - p, p]).T if p.ndim == 1 else p

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """log(predict_proba(X))."""
        p = self.predict_proba(X)
        return np.log(p, out=p)

    def _validation_score(self, X, Y, sample_weight):
        p = self._output(X)
        labels = self._label_binarizer.inverse_transform(p.ravel() if p.shape[1] == 1 else p)
        if np.issubdtype(p.dtype, np.floating) and not np.isfinite(p).all():
            return np.nan
        return accuracy_score(self._label_binarizer.inverse_transform(Y), labels,
                              sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = "Multi-layer perceptron regressor: a drop-in for scikit-learn's.\n" + \
        _SHARED_DOC.format(name="MLPRegressor")

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, batch_norm=False, dtype="float32", n_threads=None) -> None:
        _store_params(self, locals())

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None) -> Any:
        """One epoch over X, y."""
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted values, (n_samples,) for one target."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        p = self._output(self._as_dtype(X, "X"))
        return p.ravel() if p.shape[1] == 1 else p

    def _validation_score(self, X, Y, sample_weight):
        p = self._output(X)
        if not np.isfinite(p).all():
            return np.nan
        return r2_score(Y, p, sample_weight=sample_weight)

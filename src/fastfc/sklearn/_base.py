"""The fitting machinery shared by MLPClassifier and MLPRegressor: scikit-learn's MLP
(same parameters, initialization, solvers, stopping rules and fitted attributes) on a
fastfc Sequential whose flat parameter buffer holds ``coefs_`` and ``intercepts_``."""
import threading
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor as _SklearnMLPRegressor
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight

import fastfc
from fastfc.model import params
from fastfc.model.inputs import as_2d_float
from fastfc.sklearn import _solvers
from fastfc.sklearn._outputs import OUT_ACTIVATIONS, OutputLoss

# scikit-learn's names of the hidden activations -> fastfc's
_HIDDEN = {"identity": None, "relu": "relu", "tanh": "tanh", "logistic": "sigmoid"}


def _batch_norm_eval(bn, h):
    scale = bn.params["gamma"] / np.sqrt(bn.running_var + bn.eps)
    return (h - bn.running_mean) * scale + bn.params["beta"]


# each layer the estimator builds, in evaluation mode
_EVAL = {
    fastfc.Dense: lambda l, h: fastfc.linear(h, l.params["W"], l.params["b"],
                                             activation=l.activation),
    fastfc.BatchNorm: _batch_norm_eval,
    fastfc.Dropout: lambda l, h: h,
    fastfc.ReLU: lambda l, h: np.maximum(h, 0),
    fastfc.Tanh: lambda l, h: np.tanh(h),
    fastfc.Sigmoid: lambda l, h: expit(h),
}


class _Threads:
    """Runs a block on n_threads threads (None: fastfc's setting). The setting is
    process-wide: the first block to enter saves it and the last to leave restores it, so
    estimators used from several Python threads at once leave it as it was (results are
    the same bits on any thread count)."""
    _lock = threading.Lock()
    _depth = 0
    _saved = 0

    def __init__(self, n_threads):
        self.n_threads = n_threads

    def __enter__(self):
        with _Threads._lock:
            saved = fastfc.get_num_threads()
            if self.n_threads is not None:   # a bad value raises before anything is counted
                fastfc.set_num_threads(self.n_threads)
            if _Threads._depth == 0:
                _Threads._saved = saved
            _Threads._depth += 1

    def __exit__(self, *exc):
        with _Threads._lock:
            _Threads._depth -= 1
            if _Threads._depth == 0:
                fastfc.set_num_threads(_Threads._saved)


def merge_rows(X, Y, sample_weight):
    """The training set as a weighted multiset: zero-weight rows dropped and, when rows
    repeat or weights differ from one, identical (x, y) rows merged into one row carrying
    their summed weight, in a canonical (byte-sorted) order. A weight of k is then the
    same computation as k copies of the row. Returns X, Y and the weights (None when all
    are one)."""
    if sample_weight is not None:
        keep = sample_weight > 0     # _check_sample_weight saw one at least
        if not keep.all():
            X, Y, sample_weight = X[keep], Y[keep], sample_weight[keep]
    rows = np.ascontiguousarray(np.hstack([X, Y.astype(X.dtype)]))
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    weight = np.bincount(inverse.ravel(), weights=sample_weight, minlength=first.size)
    if first.size == X.shape[0] and np.all(weight == 1):
        return X, Y, None            # distinct and unweighted: the order the caller gave
    return X[first], Y[first], weight


class BaseMLP(BaseEstimator):
    """scikit-learn's BaseMultilayerPerceptron on fastfc (see MLPClassifier)."""

    _parameter_constraints: dict = {
        **_SklearnMLPRegressor._parameter_constraints,
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "dtype": [StrOptions({"float32", "float64"}), Options(type, {np.float32, np.float64})],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    }

    # ------------------------------------------------------------------ the model
    def _build_model(self, layer_units, dtype=None):
        """The fastfc Sequential of layer_units: Dense layers with the hidden activation
        (then BatchNorm and Dropout when asked) and a last Dense without activation (the
        output activation is the loss's), in `dtype` (default: the dtype parameter)."""
        act, layers = _HIDDEN[self.activation], []
        for i, (n_in, n_out) in enumerate(zip(layer_units[:-1], layer_units[1:])):
            hidden = i < len(layer_units) - 2
            if hidden and self.batch_norm:
                layers.append(fastfc.Dense(n_in, n_out))
                layers.append(fastfc.BatchNorm(n_out))
                if act is not None:
                    layers.append({"relu": fastfc.ReLU, "tanh": fastfc.Tanh,
                                   "sigmoid": fastfc.Sigmoid}[act]())
            else:
                layers.append(fastfc.Dense(n_in, n_out, activation=act if hidden else None))
            if hidden and self.dropout:
                layers.append(fastfc.Dropout(self.dropout))
        self._loss_fn = OutputLoss(self.out_activation_, is_classifier(self))
        seed = self._dropout_seed if self.dropout else 0
        self._model = fastfc.Sequential(layers, loss=self._loss_fn, seed=seed,
                                        dtype=np.dtype(self.dtype if dtype is None else dtype))
        dense = [l for l in self._model.layers if isinstance(l, fastfc.Dense)]
        self.coefs_ = [l.params["W"] for l in dense]            # views into _model._theta
        self.intercepts_ = [l.params["b"] for l in dense]
        self._grad_views = [l.grads["W"] for l in dense]

    def _initialize(self, y, layer_units):
        """scikit-learn's _initialize: the attributes of a first fit and Glorot-uniform
        weights drawn from its random state in its order (the same initial weights)."""
        self.n_iter_, self.t_ = 0, 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        init = []
        for n_in, n_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt((2.0 if self.activation == "logistic" else 6.0) / (n_in + n_out))
            init.append((self._random_state.uniform(-bound, bound, (n_in, n_out)),
                         self._random_state.uniform(-bound, bound, n_out)))
        self._dropout_seed = int(self._random_state.randint(2**31)) if self.dropout else 0
        self._layer_units = list(layer_units)
        self._build_model(layer_units)
        for w, b, (w0, b0) in zip(self.coefs_, self.intercepts_, init):
            w[...], b[...] = w0, b0
        self._best_state = (params.snapshot(self._model.layers, self._model._theta)
                            if self.early_stopping else None)
        if self.solver in ("sgd", "adam"):
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    # ------------------------------------------------------------------ loss + gradient
    def _loss_and_gradient(self, X, Y, sample_weight):
        """The regularized loss of a batch (scikit-learn's: the data loss plus
        alpha / 2 ||W||^2 / sum(sample_weight)) and its gradient in _model._dtheta."""
        self._loss_fn.sample_weight = sample_weight
        loss, _ = self._model._gradients(X, Y)
        sw_sum = X.shape[0] if sample_weight is None else float(sample_weight.sum())
        if self.alpha:
            scale, squares = self.alpha / sw_sum, 0.0
            for w, g in zip(self.coefs_, self._grad_views):
                squares += float(np.vdot(w, w))
                g += scale * w
            loss += 0.5 * self.alpha * squares / sw_sum
        return loss, self._model._dtheta

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """Fit the model to X and y (class labels or a label indicator matrix for the
        classifier, one or several real targets for the regressor); returns self.
        sample_weight: a weight of k counts as k copies of the row; a negative one (which
        scikit-learn's MLP takes) raises ValueError."""
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in ("sgd", "adam"):
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "%s is not stochastic." % self.solver)
        return True

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes)
        if self.dropout and self.solver == "lbfgs":
            raise ValueError("dropout needs a stochastic solver ('adam' or 'sgd'): L-BFGS's "
                             "line search needs one deterministic loss")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if self.batch_norm and X.shape[0] < 2:   # worded as scikit-learn's checks expect
            raise ValueError(f"batch_norm=True needs a batch variance: at least 2 samples, "
                             f"got n_samples = {X.shape[0]}")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        X, Y = self._as_dtype(X, "X"), self._as_dtype(y, "y")
        layer_units = [X.shape[1]] + hidden_layer_sizes + [y.shape[1]]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units)
        elif layer_units != self._layer_units:
            raise ValueError(f"warm_start/partial_fit: the network has layer sizes "
                             f"{self._layer_units}, this call needs {layer_units}")
        elif np.dtype(self.dtype) != self._model._theta.dtype:
            raise ValueError(f"warm_start/partial_fit: the network is "
                             f"{self._model._theta.dtype}, dtype is now {np.dtype(self.dtype)}; "
                             f"set dtype back or fit from scratch (warm_start=False)")
        self.n_outputs_ = y.shape[1]
        with _Threads(self.n_threads):
            if self.solver == "lbfgs":
                self._fit_lbfgs(X, Y, sample_weight)
            else:
                self._fit_stochastic(X, Y, sample_weight, incremental)
        if not np.isfinite(self._model._theta).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.")
        return self

    def _targets(self, Y, sample_weight):
        """Y as the loss takes it: integer labels for unweighted softmax (the fused C
        softmax cross-entropy), else rows."""
        if self.out_activation_ == "softmax" and sample_weight is None:
            return np.ascontiguousarray(Y.argmax(axis=1), dtype=np.int64)
        return Y

    def _fit_lbfgs(self, X, Y, sample_weight):
        X, Y, sample_weight = merge_rows(X, Y, sample_weight)
        T = self._targets(Y, sample_weight)
        self.n_iter_, self.loss_ = _solvers.lbfgs(
            self, lambda: self._loss_and_gradient(X, T, sample_weight), self._model._theta)

    def _make_optimizer(self):
        if self.solver == "sgd":
            return _solvers.SGD(self.learning_rate_init, self.learning_rate, self.momentum,
                                self.nesterovs_momentum, self.power_t)
        return _solvers.Adam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)

    def _split_validation(self, X, Y, sample_weight):
        """scikit-learn's early-stopping split (stratified for one-output classifiers)."""
        stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
        parts = train_test_split(*arrays, random_state=self._random_state,
                                 test_size=self.validation_fraction, stratify=stratify)
        if parts[1].shape[0] < 2:
            raise ValueError("The validation set is too small. Increase "
                             "'validation_fraction' or the size of your dataset.")
        return tuple(parts) + (None, None) * (sample_weight is None)

    def _fit_stochastic(self, X, Y, sample_weight, incremental):
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if self.shuffle:
            X, Y, sample_weight = merge_rows(X, Y, sample_weight)
        early_stopping = self.early_stopping
        if early_stopping:
            X, X_val, Y, Y_val, sample_weight, sw_val = self._split_validation(
                X, Y, sample_weight)
        n_samples = X.shape[0]
        if self.batch_norm and n_samples < 2:   # equal rows merged, or a validation split
            raise ValueError(f"batch_norm=True needs a batch variance: at least 2 distinct "
                             f"training samples, got n_samples = {n_samples}")
        total_weight = n_samples if sample_weight is None else float(sample_weight.sum())
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than "
                              "sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        sample_idx = np.arange(n_samples)
        theta, optimizer = self._model._theta, self._optimizer
        T = self._targets(Y, sample_weight)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:   # sklearn.utils.shuffle's draw, without its overhead
                    order = np.arange(n_samples)
                    self._random_state.shuffle(order)
                    sample_idx = sample_idx[order]
                accumulated = 0.0
                # a last batch of one row joins the one before: BatchNorm needs a variance
                for batch in gen_batches(n_samples, batch_size,
                                         min_batch_size=2 if self.batch_norm else 0):
                    idx = sample_idx[batch] if self.shuffle else batch
                    w = None if sample_weight is None else sample_weight[idx]
                    with self._model._step_threads.step(batch.stop - batch.start):
                        loss, grad = self._loss_and_gradient(X[idx], T[idx], w)
                        optimizer.step(theta, grad)
                    accumulated += loss * (batch.stop - batch.start if w is None else w.sum())
                self.n_iter_ += 1
                self.loss_ = accumulated / total_weight
                self.t_ += total_weight
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(early_stopping, X_val if early_stopping
                                                  else None, Y_val if early_stopping else None,
                                                  sw_val if early_stopping else None)
                optimizer.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = ("Validation score did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    if optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                                  "the optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if early_stopping and self._best_state is not None:
            params.restore(self._model.layers, self._model._theta,
                           self._best_state)     # the best validation score's weights

    def _update_no_improvement_count(self, early_stopping, X_val, Y_val, sw_val):
        if early_stopping:
            score = self._validation_score(X_val, Y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_state = params.snapshot(self._model.layers, self._model._theta)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # ------------------------------------------------------------------ predict
    def _as_dtype(self, X, name):
        """Validated X in the model's dtype: a float64 value past float32's range is a
        ValueError naming `name`, not an Inf that predicts NaN."""
        return as_2d_float(X, name, self.dtype)

    def _output(self, X):
        """The output activation of the model for validated X of the model dtype. Calls
        fastfc.linear layer by layer, writing into no shared buffer (the model's layers
        keep theirs for backward): threads may predict with one estimator at once."""
        h = X
        with _Threads(self.n_threads):
            for layer in self._model.layers:
                h = _EVAL[type(layer)](layer, h)
        return OUT_ACTIVATIONS[self.out_activation_](h)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        """Plain arrays: the model is rebuilt from them (its layers are views into its
        parameter buffer and hold a reference to it)."""
        state = dict(super().__getstate__())   # object's is the live __dict__
        model = state.pop("_model", None)
        if model is not None:
            for name in ("coefs_", "intercepts_", "_grad_views", "_loss_fn"):
                state.pop(name, None)
            state["_model_state"] = (*params.snapshot(model.layers, model._theta),
                                     [getattr(l, "calls", None) for l in model.layers])
        return state

    def __setstate__(self, state):
        model_state = state.pop("_model_state", None)
        super().__setstate__(state)
        if model_state is not None:
            theta, stats, calls = model_state
            # in the weights' dtype: the dtype parameter may have been set since
            self._build_model(self._layer_units, theta.dtype)
            params.restore(self._model.layers, self._model._theta,
                           params.Snapshot(theta, stats))
            for layer, c in zip(self._model.layers, calls):
                if c is not None:
                    layer.calls = c

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
